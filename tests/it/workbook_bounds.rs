//! Workbooks made to exhaust the reader (ZIP bombs, a header to column
//! XFD, one user on many rows), generated here with the zip crate and read
//! by the built binary under a memory and file-size limit, so that a
//! regression fails the test instead of the machine.

use crate::common;

use std::io::Write;
use std::path::Path;
use std::process::Output;

use gcore_iam_bulk::table::sheet::column_letters;

const KEY: &str = "workbook-bounds-test-key-0123456789";

/// The binary's memory (virtual, KiB) and file-size (KiB) limits.
const MEMORY_KIB: u64 = 2_000_000;
const FILE_KIB: u64 = 200_000;

/// Runs the binary in `dir` under the limits.
fn run_limited(dir: &Path, args: &[&str]) -> Output {
    let script = format!("ulimit -v {MEMORY_KIB}; ulimit -f {FILE_KIB}; exec \"$0\" \"$@\"");
    let mut command = common::command_in(dir, KEY);
    let program = command.get_program().to_owned();
    let mut limited = std::process::Command::new("sh");
    common::clean(&mut limited);
    limited
        .current_dir(dir)
        .env("GCORE_API_KEY", KEY)
        .env("TMPDIR", dir)
        .args(["-c", &script])
        .arg(program)
        .args(args);
    let _ = &mut command;
    limited.output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// One part of a generated archive: its name, a chunk, how many times the
/// chunk repeats, and what closes it.
struct Part<'a> {
    name: &'a str,
    open: &'a [u8],
    chunk: &'a [u8],
    times: usize,
    close: &'a [u8],
}

fn part<'a>(name: &'a str, text: &'a [u8]) -> Part<'a> {
    Part {
        name,
        open: text,
        chunk: b"",
        times: 0,
        close: b"",
    }
}

fn archive(path: &Path, parts: &[Part]) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9))
        .large_file(true);
    for part in parts {
        zip.start_file(part.name, options).unwrap();
        zip.write_all(part.open).unwrap();
        for _ in 0..part.times {
            zip.write_all(part.chunk).unwrap();
        }
        zip.write_all(part.close).unwrap();
    }
    zip.finish().unwrap();
}

const CONTENT_TYPES: &[u8] = br#"<?xml version="1.0" encoding="UTF-8"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>"#;
const RELS: &[u8] = br#"<?xml version="1.0" encoding="UTF-8"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;
const WORKBOOK: &[u8] = br#"<?xml version="1.0" encoding="UTF-8"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="R&amp;D users" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
const WORKBOOK_RELS: &[u8] = br#"<?xml version="1.0" encoding="UTF-8"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#;
const SHEET_OPEN: &[u8] = br#"<?xml version="1.0" encoding="UTF-8"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#;
const SHEET_CLOSE: &[u8] = b"</sheetData></worksheet>";

/// An `.xlsx` of one sheet: `sheet` and `strings` are the parts as given
/// (each a [`Part`] whose name is filled in here).
fn xlsx(path: &Path, sheet: Part, strings: Part) {
    let sheet = Part {
        name: "xl/worksheets/sheet1.xml",
        ..sheet
    };
    let strings = Part {
        name: "xl/sharedStrings.xml",
        ..strings
    };
    archive(
        path,
        &[
            part("[Content_Types].xml", CONTENT_TYPES),
            part("_rels/.rels", RELS),
            part("xl/workbook.xml", WORKBOOK),
            part("xl/_rels/workbook.xml.rels", WORKBOOK_RELS),
            sheet,
            strings,
        ],
    );
}

const USERS_SHEET: &[u8] = br#"<row r="1"><c r="A1" t="inlineStr"><is><t>user_id</t></is></c><c r="B1" t="inlineStr"><is><t>company</t></is></c></row><row r="2"><c r="A2"><v>5</v></c><c r="B2" t="s"><v>0</v></c></row>"#;
const NO_STRINGS: &[u8] = br#"<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>ACME</t></si></sst>"#;

fn file_kib(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len() / 1024
}

/// A shared string that inflates to 64 MB from a file of about 64 KB
/// (the issue's was 1 GB from 1 MB: the same ratio).
#[test]
fn a_shared_string_that_inflates_past_the_limit_is_refused_by_its_part() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.xlsx");
    let chunk = vec![b'a'; 1 << 20];
    xlsx(
        &path,
        Part {
            open: SHEET_OPEN,
            close: SHEET_CLOSE,
            ..part("", USERS_SHEET)
        },
        Part {
            open:
                br#"<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>"#,
            chunk: &chunk,
            times: 64,
            close: b"</t></si></sst>",
            name: "",
        },
    );
    assert!(file_kib(&path) < 1024, "{} KiB", file_kib(&path));
    let output = run_limited(dir.path(), &["validate", "bomb.xlsx", "-o", "-"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("\"xl/sharedStrings.xml\" inflates to"),
        "{err}"
    );
    assert!(err.contains("100 times the file's size"), "{err}");
}

/// 64 MB of whitespace between the sheet's rows.
#[test]
fn whitespace_that_inflates_past_the_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spaces.xlsx");
    let chunk = vec![b' '; 1 << 20];
    let mut open = SHEET_OPEN.to_vec();
    open.extend_from_slice(USERS_SHEET);
    xlsx(
        &path,
        Part {
            open: &open,
            chunk: &chunk,
            times: 64,
            close: SHEET_CLOSE,
            name: "",
        },
        part("", NO_STRINGS),
    );
    let output = run_limited(dir.path(), &["validate", "spaces.xlsx", "-o", "-"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("\"xl/worksheets/sheet1.xml\" inflates to"),
        "{err}"
    );
}

/// A header that reaches column XFD and one cell on row 1,048,576: the
/// sheet's copy holds two rows and blank lines, not 17 GB of commas.
#[test]
fn a_header_to_column_xfd_with_a_cell_on_the_last_row_is_copied_small() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.xlsx");
    let mut sheet = SHEET_OPEN.to_vec();
    sheet.extend_from_slice(br#"<row r="1"><c r="A1" t="inlineStr"><is><t>user_id</t></is></c>"#);
    for column in 1..16_384usize {
        let letters = column_letters(column);
        write!(
            sheet,
            r#"<c r="{letters}1" t="inlineStr"><is><t>c{column}</t></is></c>"#
        )
        .unwrap();
    }
    sheet.extend_from_slice(br#"</row><row r="1048576"><c r="A1048576"><v>7</v></c></row>"#);
    sheet.extend_from_slice(SHEET_CLOSE);
    xlsx(&path, part("", &sheet), part("", NO_STRINGS));
    let output = run_limited(
        dir.path(),
        &[
            "validate",
            "wide.xlsx",
            "--ignore-unknown-columns",
            "-o",
            "-",
        ],
    );
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    let rows = common::read_results(&output.stdout);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["row"], "1048576");
    // The spool lived in the test's folder (TMPDIR) and is gone.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(left, ["wide.xlsx"], "{left:?}");
}

/// One user on 150,000 rows: each row's problem lists five of the others
/// and counts the rest, in linear time.
#[test]
fn one_user_on_many_rows_is_checked_in_linear_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("user_id,lang\n");
    for _ in 0..150_000 {
        csv.push_str("42,en\n");
    }
    std::fs::write(dir.path().join("same.csv"), csv).unwrap();
    let started = std::time::Instant::now();
    let output = run_limited(dir.path(), &["validate", "same.csv", "-o", "-"]);
    let took = started.elapsed();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    let (count, rows) = common::count_results(&output.stdout, 1);
    assert_eq!(count, 150_000);
    assert!(
        rows[0]["error"].contains("42 is also on rows 3, 4, 5, 6, 7, and 149994 more"),
        "{:?}",
        rows[0]
    );
    // Quadratic took 30 s in a release build; linear takes well under 1 s.
    assert!(took.as_secs() < 20, "{took:?}");
}

const STYLES: &str = r##"<?xml version="1.0" encoding="UTF-8"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><numFmts count="4"><numFmt numFmtId="164" formatCode=";;;"/><numFmt numFmtId="165" formatCode="0%"/><numFmt numFmtId="166" formatCode="#,##0.00\ [$€-407]"/><numFmt numFmtId="167" formatCode="0;-0;0;&quot;Users&quot;"/></numFmts><fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts><fills count="1"><fill><patternFill patternType="none"/></fill></fills><borders count="1"><border/></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="6"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="166" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="167" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="7" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs></styleSheet>"##;

/// An `.xlsx` whose sheet is `rows` (the XML of `<row>`s) with `before`
/// (`<cols>`) and `after` (`<mergeCells>`) around its data; its styles are
/// [`STYLES`]: `s="1"` shows nothing, `s="2"` a percentage, `s="3"` euros,
/// `s="4"` shows a text cell as "Users" whatever it holds, `s="5"` the
/// built-in currency format 7, whose code the file does not hold.
fn users_xlsx(path: &Path, before: &str, rows: &str, after: &str) {
    let sheet = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">{before}<sheetData>{rows}</sheetData>{after}</worksheet>"#
    );
    let rels = String::from_utf8(WORKBOOK_RELS.to_vec()).unwrap().replace(
        "</Relationships>",
        r#"<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>"#,
    );
    archive(
        path,
        &[
            part("[Content_Types].xml", CONTENT_TYPES),
            part("_rels/.rels", RELS),
            part("xl/workbook.xml", WORKBOOK),
            part("xl/_rels/workbook.xml.rels", rels.as_bytes()),
            part("xl/styles.xml", STYLES.as_bytes()),
            part("xl/worksheets/sheet1.xml", sheet.as_bytes()),
            part("xl/sharedStrings.xml", NO_STRINGS),
        ],
    );
}

fn text(at: &str, value: &str) -> String {
    format!(r#"<c r="{at}" t="inlineStr"><is><t>{value}</t></is></c>"#)
}

fn header_row() -> String {
    format!(
        r#"<row r="1">{}{}</row>"#,
        text("A1", "user_id"),
        text("B1", "groups")
    )
}

/// LibreOffice's "keep the contents of the hidden cells": B3 under the
/// merge B2:B4 holds Administrators, which nobody sees.
#[test]
fn covered_cells_of_a_merge_read_as_empty_and_the_note_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let rows = format!(
        r#"{}<row r="2"><c r="A2"><v>1</v></c>{}</row><row r="3"><c r="A3"><v>2</v></c>{}</row><row r="4"><c r="A4"><v>3</v></c></row>"#,
        header_row(),
        text("B2", "Users"),
        text("B3", "Administrators"),
    );
    users_xlsx(
        &dir.path().join("merged.xlsx"),
        "",
        &rows,
        r#"<mergeCells count="1"><mergeCell ref="B2:B4"/></mergeCells>"#,
    );
    let output = run_limited(dir.path(), &["validate", "merged.xlsx", "-o", "-"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(
        err.contains(
            "cells covered by merged cells hold values nobody sees (B3): they are read as empty"
        ),
        "{err}"
    );
    let results = String::from_utf8_lossy(&output.stdout);
    assert!(!results.contains("Administrators"), "{results}");
}

/// A hidden column, a hidden row and a `;;;` cell that would be sent are
/// refused by name; --send-hidden-cells sends them, and says so.
#[test]
fn hidden_cells_that_would_be_sent_are_refused_unless_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "column.xlsx",
            r#"<cols><col min="2" max="2" width="0" hidden="1"/></cols>"#,
            format!(r#"<row r="2"><c r="A2"><v>1</v></c>{}</row>"#, text("B2", "Administrators")),
            "B2 (in a hidden column)",
        ),
        (
            "row.xlsx",
            "",
            format!(r#"<row r="2" hidden="1"><c r="A2"><v>1</v></c>{}</row>"#, text("B2", "Administrators")),
            "A2 (in a hidden row), B2 (in a hidden row)",
        ),
        (
            "format.xlsx",
            "",
            r#"<row r="2"><c r="A2"><v>1</v></c><c r="B2" s="1" t="inlineStr"><is><t>Administrators</t></is></c></row>"#.to_string(),
            "B2 (formatted to show nothing (;;;))",
        ),
        (
            "zero-height.xlsx",
            r#"<sheetFormatPr defaultRowHeight="15" zeroHeight="1"/>"#,
            format!(r#"<row r="2"><c r="A2"><v>1</v></c>{}</row>"#, text("B2", "Administrators")),
            "B2 (in a hidden row)",
        ),
        (
            "height-0.xlsx",
            "",
            format!(r#"<row r="2" ht="0" customHeight="1"><c r="A2"><v>1</v></c>{}</row>"#, text("B2", "Administrators")),
            "B2 (in a hidden row)",
        ),
        (
            "width-0.xlsx",
            r#"<cols><col min="2" max="2" width="0" customWidth="1"/></cols>"#,
            format!(r#"<row r="2"><c r="A2"><v>1</v></c>{}</row>"#, text("B2", "Administrators")),
            "B2 (in a hidden column)",
        ),
        (
            "text-part.xlsx",
            "",
            r#"<row r="2"><c r="A2"><v>1</v></c><c r="B2" s="4" t="inlineStr"><is><t>Administrators</t></is></c></row>"#.to_string(),
            "B2 (formatted to show other text than it holds (its format's text part))",
        ),
    ];
    for (name, before, row, want) in cases {
        users_xlsx(
            &dir.path().join(name),
            before,
            &format!("{}{row}", header_row()),
            "",
        );
        let output = run_limited(dir.path(), &["validate", name, "-o", "-"]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
        assert!(err.contains("--send-hidden-cells"), "{name}: {err}");
        let output = run_limited(
            dir.path(),
            &["validate", name, "--send-hidden-cells", "-o", "-"],
        );
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(0), "{name}: {err}");
        assert!(
            err.contains("sent as they are (--send-hidden-cells)"),
            "{name}: {err}"
        );
        assert!(err.contains(want), "{name}: {err}");
    }
}

/// A user_id shown as 500% or 9,00 € is not the user 5 or 9.
#[test]
fn a_user_id_shown_as_a_percentage_or_a_currency_is_refused_by_cell() {
    let dir = tempfile::tempdir().unwrap();
    let rows = format!(
        r#"{}<row r="2"><c r="A2" s="2"><v>5</v></c>{}</row><row r="3"><c r="A3" s="3"><v>9</v></c>{}</row><row r="4"><c r="A4" s="5"><v>12</v></c>{}</row>"#,
        header_row(),
        text("B2", "Users"),
        text("B3", "Users"),
        text("B4", "Users"),
    );
    users_xlsx(&dir.path().join("formats.xlsx"), "", &rows, "");
    let output = run_limited(dir.path(), &["validate", "formats.xlsx", "-o", "-"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    let rows = common::read_results(&output.stdout);
    assert!(
        rows[0]["error"].contains("A2 shows the number 5 as a percentage"),
        "{rows:?}"
    );
    assert!(
        rows[1]["error"].contains("A3 shows the number 9 as a currency"),
        "{rows:?}"
    );
    assert!(
        rows[2]["error"].contains("A4 shows the number 12 as a currency"),
        "{rows:?}"
    );
}

/// An `.ods` of one sheet whose `<table:table>` holds `body`.
fn ods(path: &Path, body: &str) {
    let content = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.3"><office:body><office:spreadsheet><table:table table:name="users">{body}</table:table></office:spreadsheet></office:body></office:document-content>"#
    );
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("mimetype", stored).unwrap();
    zip.write_all(b"application/vnd.oasis.opendocument.spreadsheet")
        .unwrap();
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9));
    zip.start_file("META-INF/manifest.xml", deflated).unwrap();
    zip.write_all(br#"<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#).unwrap();
    zip.start_file("content.xml", deflated).unwrap();
    zip.write_all(content.as_bytes()).unwrap();
    zip.finish().unwrap();
}

fn ods_text(value: &str) -> String {
    format!(
        r#"<table:table-cell office:value-type="string"><text:p>{value}</text:p></table:table-cell>"#
    )
}

fn ods_number(value: u64, kind: &str) -> String {
    format!(
        r#"<table:table-cell office:value-type="{kind}" office:value="{value}"><text:p>{value}</text:p></table:table-cell>"#
    )
}

const ODS_HEADER: &str = r#"<table:table-row><table:table-cell office:value-type="string"><text:p>user_id</text:p></table:table-cell><table:table-cell office:value-type="string"><text:p>groups</text:p></table:table-cell></table:table-row>"#;

#[test]
fn ods_covered_hidden_formatted_and_ruby_cells_are_read_as_seen() {
    let dir = tempfile::tempdir().unwrap();
    // B2 spans B2:B3; the covered B3 keeps Administrators.
    let merged = format!(
        r#"{ODS_HEADER}<table:table-row>{}<table:table-cell table:number-rows-spanned="2" office:value-type="string"><text:p>Users</text:p></table:table-cell></table:table-row><table:table-row>{}<table:covered-table-cell office:value-type="string"><text:p>Administrators</text:p></table:covered-table-cell></table:table-row>"#,
        ods_number(1, "float"),
        ods_number(2, "float"),
    );
    ods(&dir.path().join("merged.ods"), &merged);
    let output = run_limited(dir.path(), &["validate", "merged.ods", "-o", "-"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(err.contains("hold values nobody sees (B3)"), "{err}");
    // The merge itself is said, as for an .xlsx file (it was not: a
    // person sees Users on both rows, the run changes one).
    assert!(
        err.contains("cells merged down several rows (B2:B3)"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("Administrators"));

    let hidden = format!(
        r#"<table:table-column/><table:table-column table:visibility="collapse"/>{ODS_HEADER}<table:table-row>{}{}</table:table-row>"#,
        ods_number(1, "float"),
        ods_text("Administrators"),
    );
    ods(&dir.path().join("hidden.ods"), &hidden);
    let output = run_limited(dir.path(), &["validate", "hidden.ods", "-o", "-"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("B2 (in a hidden column)"), "{err}");

    let formats = format!(
        r#"{ODS_HEADER}<table:table-row>{}{}</table:table-row><table:table-row>{}{}</table:table-row>"#,
        ods_number(5, "percentage"),
        ods_text("Users"),
        ods_number(9, "currency"),
        ods_text("Users"),
    ) + &format!(
        // A number whose display is not its value, and a float shown as
        // a currency by its data style: a person reads the text.
        r#"<table:table-row><table:table-cell office:value-type="float" office:value="5"><text:p>7</text:p></table:table-cell>{}</table:table-row><table:table-row><table:table-cell office:value-type="float" office:value="9"><text:p>9,00 €</text:p></table:table-cell>{}</table:table-row><table:table-row><table:table-cell office:value-type="float" office:value="1234"><text:p>1.234</text:p></table:table-cell>{}</table:table-row>"#,
        ods_text("Users"),
        ods_text("Users"),
        ods_text("Users"),
    );
    ods(&dir.path().join("formats.ods"), &formats);
    let output = run_limited(dir.path(), &["validate", "formats.ods", "-o", "-"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    let rows = common::read_results(&output.stdout);
    assert!(
        rows[0]["error"].contains("A2 shows the number 5 as a percentage"),
        "{rows:?}"
    );
    assert!(
        rows[1]["error"].contains("A3 shows the number 9 as a currency"),
        "{rows:?}"
    );
    assert!(
        rows[2]["error"].contains(r#"A4 shows the number 5 as the text "7""#),
        "{rows:?}"
    );
    assert!(
        rows[3]["error"].contains(r#"A5 shows the number 9 as the text "9,00 €""#),
        "{rows:?}"
    );
    assert_eq!(rows[4]["status"], "would_update", "{rows:?}");

    let ruby = format!(
        r#"{ODS_HEADER}<table:table-row>{}<table:table-cell office:value-type="string"><text:p><text:ruby><text:ruby-base>Users</text:ruby-base><text:ruby-text>ユーザー</text:ruby-text></text:ruby></text:p></table:table-cell></table:table-row>"#,
        ods_number(1, "float"),
    );
    ods(&dir.path().join("ruby.ods"), &ruby);
    let output = run_limited(dir.path(), &["validate", "ruby.ods", "-o", "-"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    let rows = common::read_results(&output.stdout);
    assert!(
        rows[0]["error"].contains("B2 holds ruby (phonetic) text"),
        "{rows:?}"
    );
}

/// A 1 KB `.ods` that repeats a row a million times, and one with a stray
/// cell far below and right: refused before calamine expands them.
#[test]
fn ods_repeats_and_stray_cells_are_refused_before_they_are_expanded() {
    let dir = tempfile::tempdir().unwrap();
    let repeated = format!(
        r#"{ODS_HEADER}<table:table-row table:number-rows-repeated="1000000">{}{}</table:table-row>"#,
        ods_number(42, "float"),
        ods_text("Users"),
    );
    ods(&dir.path().join("repeated.ods"), &repeated);
    let started = std::time::Instant::now();
    let output = run_limited(dir.path(), &["validate", "repeated.ods", "-o", "-"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("repeats row 2 1000000 times"), "{err}");
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());

    let stray = format!(
        r#"{ODS_HEADER}<table:table-row>{}{}</table:table-row><table:table-row table:number-rows-repeated="1048000"><table:table-cell table:number-columns-repeated="1024"/></table:table-row><table:table-row><table:table-cell table:number-columns-repeated="16000"/>{}</table:table-row>"#,
        ods_number(1, "float"),
        ods_text("Users"),
        ods_text("x"),
    );
    ods(&dir.path().join("stray.ods"), &stray);
    assert!(file_kib(&dir.path().join("stray.ods")) < 2);
    let output = run_limited(dir.path(), &["validate", "stray.ods", "-o", "-"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("more than the 5000000 an .ods sheet is read with"),
        "{err}"
    );

    // A cell pushed past column XFD by the repeats before it: calamine
    // dropped it, and with it the row (user 7 into Administrators).
    let pushed = format!(
        r#"{ODS_HEADER}<table:table-row>{}{}</table:table-row><table:table-row><table:table-cell table:number-columns-repeated="4294967295"/>{}{}</table:table-row>"#,
        ods_number(2, "float"),
        ods_text("Users"),
        ods_number(7, "float"),
        ods_text("Administrators"),
    );
    ods(&dir.path().join("pushed.ods"), &pushed);
    let output = run_limited(dir.path(), &["validate", "pushed.ods", "-o", "-"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            r#"its sheet "users" has a cell that holds something in row 3, past column XFD"#
        ),
        "{err}"
    );
}

/// `_x0041_` in a shared string: Excel (and calamine) read `A`,
/// LibreOffice shows `_x0041_`; a cell that is sent is refused by name.
#[test]
fn an_escape_that_excel_and_libreoffice_show_differently_is_refused_where_sent() {
    let dir = tempfile::tempdir().unwrap();
    let strings = br#"<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>Users</t></si><si><t>_x0041_CME</t></si></sst>"#;
    let sheet = format!(
        r#"{}<row r="1">{}{}{}</row><row r="2"><c r="A2"><v>1</v></c><c r="B2" t="s"><v>1</v></c><c r="C2" t="s"><v>1</v></c></row>{}"#,
        String::from_utf8_lossy(SHEET_OPEN),
        text("A1", "user_id"),
        text("B1", "company"),
        text("C1", "notes"),
        String::from_utf8_lossy(SHEET_CLOSE),
    );
    xlsx(
        &dir.path().join("escaped.xlsx"),
        part("", sheet.as_bytes()),
        part("", strings),
    );
    let output = run_limited(
        dir.path(),
        &[
            "validate",
            "escaped.xlsx",
            "--ignore-unknown-columns",
            "-o",
            "-",
        ],
    );
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    let rows = common::read_results(&output.stdout);
    assert!(
        rows[0]["error"].contains("company: B2 is stored with an escape such as _x0041_"),
        "{rows:?}"
    );
    assert!(!rows[0]["error"].contains("C2"), "{rows:?}");
}

/// Numbers a reader sets memory aside by before it reads what they count
/// (a shared strings count, a shared formula's index, an OpenDocument run
/// of spaces), and references out of any sheet's range that trip the
/// workbook reader: refused, naming the part, in a few megabytes.
#[test]
fn forged_counts_and_references_are_refused_not_crashed_on() {
    let dir = tempfile::tempdir().unwrap();
    let strings = br#"<?xml version="1.0" encoding="UTF-8"?>
<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="100000000"><si><t>x</t></si></sst>"#;
    users_xlsx(&dir.path().join("plain.xlsx"), "", &header_row(), "");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![(
        "unique.xlsx",
        strings.to_vec(),
        "declares 100000000 shared strings (uniqueCount)",
    )];
    for (name, sst, want) in cases {
        let sheet = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{}</sheetData></worksheet>"#,
            header_row()
        );
        xlsx(
            &dir.path().join(name),
            part("xl/worksheets/sheet1.xml", sheet.as_bytes()),
            part("xl/sharedStrings.xml", &sst),
        );
        let output = run_limited(dir.path(), &["validate", name, "-o", "-"]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
    }
    for (name, rows, after, want) in [
        (
            "shared.xlsx",
            format!(
                r#"{}<row r="2"><c r="A2"><f t="shared" ref="A2:A3" si="4000000000">1</f><v>1</v></c></row>"#,
                header_row()
            ),
            "",
            "numbers a shared formula 4000000000 (si)",
        ),
        (
            "merge.xlsx",
            format!(r#"{}<row r="2"><c r="A2"><v>1</v></c></row>"#, header_row()),
            r#"<mergeCells count="1"><mergeCell ref="B3:B2"/></mergeCells>"#,
            r#"names a range "B3:B2", out of any sheet's"#,
        ),
        (
            "row.xlsx",
            format!(
                r#"{}<row r="99999999999"><c r="A2"><v>1</v></c></row>"#,
                header_row()
            ),
            "",
            r#"names a row "99999999999""#,
        ),
    ] {
        users_xlsx(&dir.path().join(name), "", &rows, after);
        let output = run_limited(dir.path(), &["validate", name, "-o", "-"]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    ods(
        &dir.path().join("spaces.ods"),
        r#"<table:table-row><table:table-cell office:value-type="string"><text:p>user_id<text:s text:c="2000000000"/></text:p></table:table-cell></table:table-row>"#,
    );
    let output = run_limited(dir.path(), &["validate", "spaces.ods", "-o", "-"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("runs of spaces (text:c)"), "{err}");
}

/// A CSV line longer than any row (a quote never closed, a file that is
/// no table) is refused, naming the line, before the reader holds it.
#[test]
fn a_csv_line_past_the_bound_is_refused_by_its_number() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("user_id,name\n1,Ann\n2,");
    text.push_str(&"x".repeat(5 << 20));
    text.push('\n');
    std::fs::write(dir.path().join("long.csv"), text).unwrap();
    let output = run_limited(dir.path(), &["validate", "long.csv", "-o", "-"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("line 3 is longer than 4 MiB"), "{err}");
    // A quote never closed: refused at 4 MiB, not held to the end.
    let mut text = String::from("user_id,name\n1,\"Ann\n");
    for _ in 0..(6 << 20) / 32 {
        text.push_str("2,a line that is not one  \"\"\n");
    }
    std::fs::write(dir.path().join("open.csv"), text).unwrap();
    let output = run_limited(dir.path(), &["validate", "open.csv", "-o", "-"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("a quote opened in line 2 is not closed within 4 MiB"),
        "{err}"
    );
    // Quotes inside plain cells, and quoted cells over lines, are not it.
    let mut text = String::from("user_id,name\n");
    for id in 1..300_000 {
        text.push_str(&format!("{id},Ann \"5\" Lee\n"));
    }
    text.push_str("300000,\"two\nlines\"\n");
    std::fs::write(dir.path().join("quotes.csv"), text).unwrap();
    let output = run_limited(dir.path(), &["validate", "quotes.csv", "-o", "q.csv"]);
    let err = stderr(&output);
    assert!(!err.contains("MiB"), "{err}");
    let wide = format!("user_id{}\n", ",".repeat(20_000));
    std::fs::write(dir.path().join("wide.csv"), wide).unwrap();
    let output = run_limited(dir.path(), &["validate", "wide.csv", "-o", "-"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the header has 20001 columns; at most 16384"),
        "{err}"
    );
}

/// `tests/fixtures/spreadsheet.xls` (saved by LibreOffice) with `patch`
/// applied to its bytes, written to `dir/name`.
fn forged_xls(dir: &Path, name: &str, patch: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spreadsheet.xls"))
            .unwrap();
    patch(&mut bytes);
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// Where the first record of `typ` with `len` bytes of data starts (its
/// data, past the 4-byte header): the fixture's workbook stream lies in
/// the file in one piece.
fn record_at(bytes: &[u8], typ: u16, len: u16) -> usize {
    let mut header = typ.to_le_bytes().to_vec();
    header.extend(len.to_le_bytes());
    let at = bytes
        .windows(4)
        .position(|window| window == header.as_slice())
        .unwrap_or_else(|| panic!("no record {typ:#x} of {len} bytes"));
    at + 4
}

/// A forged `.xls` (a size record or a cell past the format's 65,536 rows
/// and 256 columns, a sector chain that loops) made calamine ask for
/// terabytes and the process abort; each is now refused, naming the sheet
/// or the container, before calamine reads it.
#[test]
fn forged_xls_records_are_refused_before_the_reader_sets_memory_aside() {
    let dir = tempfile::tempdir().unwrap();
    forged_xls(dir.path(), "plain.xls", |_| {});
    forged_xls(dir.path(), "size.xls", |bytes| {
        // DIMENSIONS (0x0200): rows from 0 to 0xFFFFFFFF.
        let at = record_at(bytes, 0x0200, 14);
        bytes[at + 4..at + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    });
    forged_xls(dir.path(), "corner.xls", |bytes| {
        // A LabelSst (0x00FD) moved to the last row and column of a sheet.
        let at = record_at(bytes, 0x00FD, 10);
        bytes[at..at + 2].copy_from_slice(&0xFFFFu16.to_le_bytes());
        bytes[at + 2..at + 4].copy_from_slice(&0x00FFu16.to_le_bytes());
    });
    forged_xls(dir.path(), "column.xls", |bytes| {
        let at = record_at(bytes, 0x00FD, 10);
        bytes[at..at + 4].copy_from_slice(&[0xFF; 4]);
    });
    forged_xls(dir.path(), "index.xls", |bytes| {
        // A LabelSst naming a shared string the table does not hold.
        let at = record_at(bytes, 0x00FD, 10);
        bytes[at + 6..at + 10].copy_from_slice(&60_000u32.to_le_bytes());
    });
    forged_xls(dir.path(), "loop.xls", |bytes| {
        // The directory's first sector points back to itself in the FAT.
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let (directory, fat) = (word(48), word(76));
        let entry = (fat as usize + 1) * 512 + directory as usize * 4;
        bytes[entry..entry + 4].copy_from_slice(&directory.to_le_bytes());
    });
    let output = run_limited(dir.path(), &["validate", "plain.xls", "-o", "-"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    for (name, want) in [
        (
            "size.xls",
            "declares a size (its DIMENSIONS record) of rows 1 to 4294967295",
        ),
        (
            "corner.xls",
            "spans 16777216 cells, from row 1 to row 65536 and from column A to column IV",
        ),
        ("column.xls", "spans 4294967296 cells"),
        ("index.xls", "that names shared string 60000 of"),
        (
            "loop.xls",
            "its container (an OLE compound file) is damaged: a chain of sectors loops",
        ),
    ] {
        let output = run_limited(dir.path(), &["validate", name, "-o", "-"]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
        assert!(
            err.contains("sheet 1 (\"spreadsheet\")") || name == "loop.xls",
            "{name}: {err}"
        );
    }
}

/// One `.xlsb` record: its type and length as calamine reads them (7 bits
/// a byte), then its data.
fn xlsb_record(typ: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (mut value, most) in [(typ as usize, 2), (data.len(), 4)] {
        for _ in 0..most {
            let byte = (value & 0x7F) as u8;
            value >>= 7;
            out.push(if value > 0 { byte | 0x80 } else { byte });
            if value == 0 {
                break;
            }
        }
    }
    out.extend_from_slice(data);
    out
}

fn wide(text: &str) -> Vec<u8> {
    let units: Vec<u16> = text.encode_utf16().collect();
    let mut out = (units.len() as u32).to_le_bytes().to_vec();
    out.extend(units.iter().flat_map(|unit| unit.to_le_bytes()));
    out
}

/// A text cell (BrtCellSt) and a number cell (BrtCellReal) at `column`.
fn xlsb_text(column: u32, text: &str) -> Vec<u8> {
    let mut data = column.to_le_bytes().to_vec();
    data.extend([0; 4]);
    data.extend(wide(text));
    xlsb_record(0x0006, &data)
}

fn xlsb_number(column: u32, value: f64) -> Vec<u8> {
    let mut data = column.to_le_bytes().to_vec();
    data.extend([0; 4]);
    data.extend(value.to_le_bytes());
    xlsb_record(0x0005, &data)
}

/// A row header (BrtRowHdr) for the cells after it.
fn xlsb_row(row: u32) -> Vec<u8> {
    let mut data = row.to_le_bytes().to_vec();
    data.extend([0; 13]);
    xlsb_record(0x0000, &data)
}

/// An `.xlsb` of one sheet "users" whose cell records are `cells`.
fn xlsb(path: &Path, cells: &[u8]) {
    xlsb_with(path, cells, "users", b"");
}

/// [`xlsb`], its sheet named `name`, with `book_extra` among the
/// workbook's records.
fn xlsb_with(path: &Path, cells: &[u8], name: &str, book_extra: &[u8]) {
    let mut book = xlsb_record(0x0083, b"");
    book.extend(xlsb_record(0x008F, b""));
    let mut sheet = vec![0; 8];
    sheet.extend(wide("rId1"));
    sheet.extend(wide(name));
    book.extend(xlsb_record(0x009C, &sheet));
    book.extend(xlsb_record(0x0090, b""));
    book.extend_from_slice(book_extra);
    book.extend(xlsb_record(0x0084, b""));
    let mut dimension = Vec::new();
    for value in [0u32, 2, 0, 2] {
        dimension.extend(value.to_le_bytes());
    }
    let mut data = xlsb_record(0x0081, b"");
    data.extend(xlsb_record(0x0094, &dimension));
    data.extend(xlsb_record(0x0091, b""));
    data.extend_from_slice(cells);
    data.extend(xlsb_record(0x0092, b""));
    data.extend(xlsb_record(0x0082, b""));
    let types = br#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="bin" ContentType="application/vnd.ms-excel.sheet.binary.macroEnabled.main"/><Override PartName="/xl/worksheets/sheet1.bin" ContentType="application/vnd.ms-excel.worksheet"/></Types>"#;
    let rels = br#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.bin"/></Relationships>"#;
    let book_rels = br#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.bin"/></Relationships>"#;
    archive(
        path,
        &[
            part("[Content_Types].xml", types),
            part("_rels/.rels", rels),
            part("xl/_rels/workbook.bin.rels", book_rels),
            part("xl/workbook.bin", &book),
            part("xl/worksheets/sheet1.bin", &data),
        ],
    );
}

/// The cell records of a sheet of one user: `user_id,company` / `2,ACME`.
fn xlsb_users() -> Vec<u8> {
    let mut table = xlsb_row(0);
    table.extend(xlsb_text(0, "user_id"));
    table.extend(xlsb_text(1, "company"));
    table.extend(xlsb_row(1));
    table.extend(xlsb_number(0, 2.0));
    table.extend(xlsb_text(1, "ACME"));
    table
}

/// A forged `.xlsb`: a cell far from the table (calamine holds the
/// rectangle: 17 billion cells), a row header past the last row (calamine
/// drops every row after it, silently), and short text cells that read
/// their text from a longer record's bytes left in calamine's buffer (a
/// file of 3 KB took 5.8 GB, then aborted). Each is refused; the same file
/// without the forgery is read.
#[test]
fn forged_xlsb_records_are_refused_before_the_reader_sets_memory_aside() {
    let dir = tempfile::tempdir().unwrap();
    let table = xlsb_users();
    xlsb(&dir.path().join("plain.xlsb"), &table);
    let mut far = table.clone();
    far.extend(xlsb_row(1_048_575));
    far.extend(xlsb_text(16_383, "x"));
    xlsb(&dir.path().join("far.xlsb"), &far);
    let mut row = table.clone();
    row.extend(xlsb_row(0x7FFF_FFFF));
    row.extend(xlsb_text(1, "x"));
    row.extend(xlsb_row(2));
    row.extend(xlsb_number(0, 3.0));
    xlsb(&dir.path().join("row.xlsb"), &row);
    let mut stale = table.clone();
    stale.extend(xlsb_row(2));
    stale.extend(xlsb_text(1, &"A".repeat(500_000)));
    let mut short = 1u32.to_le_bytes().to_vec();
    short.extend([0; 4]);
    for _ in 0..20_000 {
        stale.extend(xlsb_record(0x0006, &short));
    }
    xlsb(&dir.path().join("stale.xlsb"), &stale);

    let output = run_limited(dir.path(), &["validate", "plain.xlsb", "-o", "-"]);
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(out.contains("would_update"), "{out}");
    for (name, want) in [
        (
            "far.xlsb",
            "spans 17179869184 cells, from row 1 to row 1048576",
        ),
        (
            "row.xlsb",
            "names row 2147483648, past any sheet's 1048576 rows",
        ),
        ("stale.xlsb", "repeats its text to more than 16 MiB in all"),
    ] {
        let output = run_limited(dir.path(), &["validate", name, "-o", "-"]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
        assert!(
            err.contains(r#"its part "xl/worksheets/sheet1.bin""#),
            "{name}: {err}"
        );
    }
}

/// A workbook whose reading no check in front of calamine foresees (here:
/// a sheet named by a million characters that a BrtExternSheet record
/// copies 2,000 times, 6 GB from 30 KB) is read in a child process under a
/// bound of memory and processor time: the child stops, and the run
/// refuses the file with the bound named, instead of aborting.
#[test]
fn a_reader_that_runs_out_of_its_bound_stops_alone() {
    let dir = tempfile::tempdir().unwrap();
    let table = xlsb_users();
    let mut copies = 2000u32.to_le_bytes().to_vec();
    for _ in 0..2000 {
        copies.extend([0u8; 12]);
    }
    let name = "\u{4e00}".repeat(1_000_000);
    xlsb_with(
        &dir.path().join("copies.xlsb"),
        &table,
        &name,
        &xlsb_record(0x016A, &copies),
    );
    assert!(file_kib(&dir.path().join("copies.xlsb")) < 100);
    let output = run_limited(dir.path(), &["validate", "copies.xlsb", "-o", "-"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("the workbook reader stopped on it"), "{err}");
    assert!(err.contains("of memory or 40 s of processor time"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
