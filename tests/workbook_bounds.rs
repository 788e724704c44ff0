//! Workbooks made to exhaust the reader (ZIP bombs, a header to column
//! XFD, one user on many rows), generated here with the zip crate and read
//! by the built binary under a memory and file-size limit, so that a
//! regression fails the test instead of the machine.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Output;

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
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="users" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
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

/// A shared string that inflates to 256 MB from a file of about 250 KB
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
            times: 256,
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

/// 256 MB of whitespace between the sheet's rows.
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
            times: 256,
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

fn column_letters(mut column: usize) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (column % 26) as u8);
        if column < 26 {
            break;
        }
        column = column / 26 - 1;
    }
    letters.reverse();
    String::from_utf8(letters).unwrap()
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
    let rows = common::read_results(&output.stdout);
    assert_eq!(rows.len(), 150_000);
    assert!(
        rows[0]["error"].contains("42 is also on rows 3, 4, 5, 6, 7, and 149994 more"),
        "{:?}",
        rows[0]
    );
    // Quadratic took 30 s in a release build; linear takes well under 1 s.
    assert!(took.as_secs() < 20, "{took:?}");
}
