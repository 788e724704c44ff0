//! Workbooks as input and as export, with the built binary: `.xlsx` files
//! made here with rust_xlsxwriter, the committed `.ods` and `.xls` that
//! LibreOffice saved (tests/fixtures/README.md), broken workbooks, and an
//! `.xlsx` export that plans as unchanged against the sandbox.

use crate::common;

use std::path::Path;
use std::process::Output;

use calamine::{Data, Reader};
use common::{Row, command_in, read_results_file, start_sandbox};
use gcore_iam_bulk::sandbox::Faults;
use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook};

const KEY: &str = "spreadsheet-test-key-0123456789";

fn run(dir: &Path, args: &[&str]) -> Output {
    command_in(dir, KEY).args(args).output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn row(rows: &[Row], number: u64) -> &Row {
    rows.iter()
        .find(|r| r["row"] == number.to_string())
        .unwrap_or_else(|| panic!("no results row {number} in {rows:?}"))
}

/// A workbook of two sheets: a hidden `Readme` first, then `Users`, whose
/// header is on row 3 and starts in column B; its cells hold text,
/// numbers, a formula, a logical value and a date.
fn workbook(path: &Path) {
    let mut book = Workbook::new();
    let readme = book.add_worksheet();
    readme.set_name("Readme").unwrap();
    readme.write_string(0, 0, "user_id").unwrap();
    readme.write_string(0, 1, "lang").unwrap();
    readme.write_string(1, 0, "7").unwrap();
    readme.write_string(1, 1, "de").unwrap();
    readme.set_hidden(true);
    let users = book.add_worksheet();
    users.set_name("Users").unwrap();
    // The active sheet cannot be hidden.
    users.set_active(true);
    // Row 3 (index 2), columns B to F.
    for (i, name) in ["user_id", "name", "phone", "company", "lang"]
        .iter()
        .enumerate()
    {
        users.write_string(2, 1 + i as u16, *name).unwrap();
    }
    // Row 4: text where text belongs, the ID a number.
    users.write_number(3, 1, 1).unwrap();
    users.write_string(3, 2, "Anna").unwrap();
    users.write_string(3, 3, "+49301234567").unwrap();
    users.write_string(3, 5, "de").unwrap();
    // Row 5: the phone a number, the name a number (007 became 7).
    users.write_number(4, 1, 2).unwrap();
    users.write_number(4, 2, 7).unwrap();
    users.write_number(4, 3, 49301234567.0).unwrap();
    // Row 6: a formula that gives text.
    users.write_string(5, 1, "3").unwrap();
    users
        .write_formula(5, 2, Formula::new("=UPPER(\"ann\")").set_result("ANN"))
        .unwrap();
    // Row 7 is empty. Row 8: a logical value in lang.
    users.write_number(7, 1, 4).unwrap();
    users.write_boolean(7, 5, true).unwrap();
    // Row 9: a date in company.
    users.write_number(8, 1, 5).unwrap();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    users
        .write_datetime_with_format(8, 4, ExcelDateTime::from_ymd(2024, 1, 5).unwrap(), &date)
        .unwrap();
    // Row 10: an ID too long for a spreadsheet's number.
    users.write_number(9, 1, 12345678901234567.0).unwrap();
    users.write_string(9, 5, "en").unwrap();
    // Row 11: the ID a number with a format that shows it as 000006.
    let zeros = Format::new().set_num_format("000000");
    users.write_number_with_format(10, 1, 6, &zeros).unwrap();
    users.write_string(10, 5, "en").unwrap();
    book.save(path).unwrap();
}

#[test]
fn a_workbooks_cells_are_read_by_what_they_hold() {
    let dir = tempfile::tempdir().unwrap();
    workbook(&dir.path().join("users.xlsx"));
    let output = run(dir.path(), &["validate", "users.xlsx"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("reading the sheet \"Users\" of users.xlsx (2 sheets; --sheet NAME"),
        "{err}"
    );
    assert!(
        err.contains("1 cell whose value is sent holds a formula (C6)"),
        "{err}"
    );
    let (rows, _) = read_results_file(&dir.path().join("users.results.csv"));
    let numbers: Vec<&str> = rows.iter().map(|r| r["row"].as_str()).collect();
    assert_eq!(numbers, ["4", "5", "6", "8", "9", "10", "11"]);

    let anna = row(&rows, 4);
    assert_eq!(anna["status"], "would_update");
    assert_eq!(anna["user_id"], "1");
    assert!(
        anna["request"].contains("\"phone\":\"+49301234567\""),
        "{anna:?}"
    );

    let numbers = row(&rows, 5);
    assert_eq!(numbers["status"], "invalid");
    let error = &numbers["error"];
    assert!(
        error.contains("phone: D5 holds 49301234567 as a number, not text")
            && error.contains("drops a leading + or 0")
            && error.contains("format the column as text"),
        "{error}"
    );
    assert!(error.contains("name: C5 holds 7 as a number"), "{error}");

    let formula = row(&rows, 6);
    assert_eq!(formula["status"], "would_update", "{formula:?}");
    assert!(
        formula["request"].contains("\"name\":\"ANN\""),
        "{formula:?}"
    );

    assert!(row(&rows, 8)["error"].contains("lang: F8 holds the logical value TRUE"));
    assert!(row(&rows, 9)["error"].contains("company: E9 holds the date 2024-01-05, not text"));
    let long = &row(&rows, 10)["error"];
    assert!(
        long.contains("user_id: B10 holds the ID as a number of 16 or more digits"),
        "{long}"
    );
    assert_eq!(
        row(&rows, 11)["error"],
        "",
        "an ID typed as a number is read"
    );
}

#[test]
fn sheet_chooses_the_sheet_by_name() {
    let dir = tempfile::tempdir().unwrap();
    workbook(&dir.path().join("users.xlsx"));
    // The hidden sheet, named in another case.
    let output = run(
        dir.path(),
        &["validate", "users.xlsx", "--sheet", "readme", "-o", "-"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // Read as asked, and said to be hidden (it was read silently).
    assert!(
        stderr(&output).contains("the sheet \"Readme\" is hidden in"),
        "{}",
        stderr(&output)
    );
    let rows = common::read_results(&output.stdout);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["row"], "2");
    assert!(rows[0]["request"].contains("\"lang\":\"de\""));
    let visible = run(
        dir.path(),
        &["validate", "users.xlsx", "--sheet", "Users", "-o", "-"],
    );
    assert!(
        !stderr(&visible).contains("is hidden"),
        "{}",
        stderr(&visible)
    );

    let output = run(dir.path(), &["validate", "users.xlsx", "--sheet", "Nope"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("users.xlsx: the workbook has no sheet named \"Nope\"; its sheets are \"Readme\", \"Users\""),
        "{err}"
    );
    assert!(!dir.path().join("users.results.csv").exists());
}

/// The `.ods` and `.xls` LibreOffice saved from tests/fixtures/spreadsheet.csv.
#[test]
fn opendocument_and_old_excel_files_are_read() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (file, example) in [("spreadsheet.ods", true), ("spreadsheet.xls", false)] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(fixtures.join(file), dir.path().join(file)).unwrap();
        let output = run(dir.path(), &["validate", file, "-o", "-"]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{file}: {err}");
        assert!(
            err.contains("2 cells whose values are sent hold formulas (D4, D5)"),
            "{err}"
        );
        let rows = common::read_results(&output.stdout);
        assert_eq!(rows.len(), 4, "{file}");
        let anna = row(&rows, 2);
        assert_eq!(anna["status"], "would_update", "{file}: {anna:?}");
        assert!(anna["request"].contains("\"phone\":\"+49 30 1234567\""));
        assert!(
            row(&rows, 3)["error"].contains("phone: C3 holds 301234567 as a number, not text"),
            "{file}: {:?}",
            row(&rows, 3)
        );
        assert!(
            row(&rows, 4)["error"].contains("company: D4 holds the error #DIV/0!"),
            "{file}: {:?}",
            row(&rows, 4)
        );
        let last = row(&rows, 5);
        if example {
            assert!(
                last["request"].contains("\"company\":\"Example\""),
                "{last:?}"
            );
        } else {
            assert!(
                last["error"].contains("D5 holds a formula whose value is the number 0"),
                "{last:?}"
            );
        }
    }
}

#[test]
fn broken_workbooks_and_misplaced_flags_are_refused_before_anything_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &[&str], &str); 5] = [
        (
            "zip.xlsx",
            b"PK\x03\x04 not really a workbook",
            &[],
            "zip.xlsx: it looks like an .xlsx workbook but cannot be read as one",
        ),
        (
            "ole.xls",
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1 and nothing after",
            &[],
            "save it again without a password, as .xlsx or CSV UTF-8",
        ),
        (
            "users.csv",
            b"user_id,lang\n1,de\n",
            &["--sheet", "Users"],
            "--sheet is for workbooks (.xlsx, .xls, .ods), and users.csv is a CSV file",
        ),
        (
            "book.xlsx",
            b"",
            &["--delimiter", ";"],
            "--delimiter is for CSV input, and book.xlsx is a workbook",
        ),
        (
            "in.csv",
            b"user_id,lang\n1,de\n",
            &["-o", "results.xlsx"],
            "results.xlsx is named like a workbook, but results are a CSV file",
        ),
    ];
    workbook(&dir.path().join("book.xlsx"));
    for (file, bytes, args, want) in cases {
        if !bytes.is_empty() {
            std::fs::write(dir.path().join(file), bytes).unwrap();
        }
        let mut all = vec!["validate", file];
        all.extend_from_slice(args);
        let output = run(dir.path(), &all);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{file} {args:?}: {err}");
        assert!(err.contains(want), "{file} {args:?}: {err}");
        assert!(err.lines().count() <= 2, "{err}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.contains("results"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The undo file is written line by line, so it stays a CSV.
    let output = run(
        dir.path(),
        &[
            "apply",
            "users.csv",
            "--undo-file",
            "undo.xlsx",
            "--base-url",
            "http://127.0.0.1:9",
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output)
            .contains("the undo file undo.xlsx is named like a workbook, but it is a CSV"),
        "{}",
        stderr(&output)
    );
    assert!(!dir.path().join("undo.xlsx").exists());

    // A CSV named .xlsx is read as the CSV it is, with a note.
    std::fs::write(dir.path().join("text.xlsx"), "user_id,lang\n1,de\n").unwrap();
    let output = run(dir.path(), &["validate", "text.xlsx", "-o", "-"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).contains("text.xlsx is named like a workbook but holds text"));
}

/// An export to `.xlsx` holds text cells only, with the header first, and
/// plans as unchanged: nothing a spreadsheet does to numbers can happen to
/// it. Other workbook names are refused before anything is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xlsx_export_is_text_and_plans_as_unchanged() {
    let sandbox = start_sandbox(KEY, 5, Faults::default()).await;
    let base = sandbox.base_url();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        let export = run(&path, &["export", "-o", "users.xlsx", "--base-url", &base]);
        let ods = run(&path, &["export", "-o", "users.ods", "--base-url", &base]);
        let plan = run(
            &path,
            &["plan", "users.xlsx", "--base-url", &base, "--rate", "0"],
        );
        (export, ods, plan)
    })
    .await
    .unwrap();
    let (export, ods, plan) = output;
    assert_eq!(export.status.code(), Some(0), "{}", stderr(&export));
    assert_eq!(ods.status.code(), Some(2), "{}", stderr(&ods));
    assert!(stderr(&ods).contains("export writes an .xlsx workbook or a CSV file"));
    assert!(!dir.path().join("users.ods").exists());

    let mut book = calamine::open_workbook_auto(dir.path().join("users.xlsx")).unwrap();
    let range = book.worksheet_range("users").unwrap();
    assert_eq!(range.height(), 1001);
    let header: Vec<String> = range
        .rows()
        .next()
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(&header[..3], ["user_id", "email", "name"]);
    assert!(
        range
            .used_cells()
            .all(|(_, _, cell)| matches!(cell, Data::String(_))),
        "every cell is text"
    );

    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    let (rows, _) = read_results_file(&dir.path().join("users.plan.csv"));
    assert_eq!(rows.len(), 1000);
    assert!(rows.iter().all(|r| r["status"] == "unchanged"));
    assert_eq!(sandbox.stats().by_method_status.get("PATCH"), None);
}

fn fixture(name: &str, dir: &Path) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    std::fs::copy(fixtures.join(name), dir.join(name)).unwrap();
}

/// Formulas saved without their values (openpyxl, pandas) make their rows
/// invalid, naming the cell and the formula; no row is lost as blank.
#[test]
fn formulas_without_saved_values_make_their_rows_invalid() {
    let dir = tempfile::tempdir().unwrap();
    fixture("formulas-unsaved.xlsx", dir.path());
    // Its sheet `source` has an `id` column too: the sheet is named.
    let output = run(
        dir.path(),
        &[
            "validate",
            "formulas-unsaved.xlsx",
            "--sheet",
            "changes",
            "-o",
            "-",
        ],
    );
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    let rows = common::read_results(&output.stdout);
    let numbers: Vec<&str> = rows.iter().map(|r| r["row"].as_str()).collect();
    assert_eq!(numbers, ["2", "3", "4", "5", "6"]);
    for row in &rows {
        assert_eq!(row["status"], "invalid");
        let n = &row["row"];
        assert!(
            row["error"].contains(&format!(
                "user_id: A{n} holds the formula =source!A{n}, whose value is empty or was never saved"
            )) && row["error"].contains("paste the values"),
            "{row:?}"
        );
    }
    assert!(
        !err.contains("hold formulas"),
        "unsaved formulas are not in the note: {err}"
    );
}

#[test]
fn sheets_that_cannot_be_chosen_are_refused_with_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    fixture("sheets-in-two-cases.xlsx", dir.path());
    fixture("hidden-sheet-only.xlsx", dir.path());
    fixture("formulas-unsaved.xlsx", dir.path());
    let mut empty_first = Workbook::new();
    empty_first.add_worksheet().set_name("Notes").unwrap();
    let users = empty_first.add_worksheet();
    users.set_name("Users").unwrap();
    users.write_string(0, 0, "user_id").unwrap();
    empty_first
        .save(dir.path().join("empty-first.xlsx"))
        .unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["sheets-in-two-cases.xlsx", "--sheet", "Users"],
            "\"Users\" matches the sheets \"users\" and \"USERS\" in another case; give the exact name",
        ),
        (
            &["hidden-sheet-only.xlsx"],
            "the workbook has no visible worksheet (its sheets, all hidden, are \"old_backup\"); choose one with --sheet NAME",
        ),
        (
            &["empty-first.xlsx", "--sheet", "Notes"],
            "the sheet \"Notes\" is empty; the workbook's sheets are \"Notes\", \"Users\": choose one with --sheet NAME",
        ),
        // Without --sheet, the sheet whose header names the users is read.
        (
            &["empty-first.xlsx"],
            "reading the sheet \"Users\" of empty-first.xlsx (2 sheets",
        ),
        (
            &["formulas-unsaved.xlsx"],
            "the sheets \"changes\", \"source\" all have a user_id (or current_email) column; choose the one to read with --sheet NAME",
        ),
    ];
    for (args, want) in cases {
        let mut all = vec!["validate"];
        all.extend_from_slice(args);
        let output = run(dir.path(), &all);
        let err = stderr(&output);
        // The Users sheet has a header and no rows: a run with nothing to do.
        let code = if want.contains("reading the sheet") {
            0
        } else {
            2
        };
        assert_eq!(output.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // Named exactly, the hidden sheet is read.
    let output = run(
        dir.path(),
        &[
            "validate",
            "hidden-sheet-only.xlsx",
            "--sheet",
            "old_backup",
            "-o",
            "-",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// A stray value far from the table: a space is nothing; text far right of
/// the header is refused by name, without reading millions of empty cells;
/// text far below is an ordinary row. Merged cells that span rows get a
/// note.
#[test]
fn stray_cells_and_merged_cells() {
    let dir = tempfile::tempdir().unwrap();
    let sheet = |name: &str, stray: Option<(u32, u16, &str)>, merge: bool| {
        let mut book = Workbook::new();
        let users = book.add_worksheet();
        users.write_string(0, 0, "user_id").unwrap();
        users.write_string(0, 1, "company").unwrap();
        for id in 1..=3u32 {
            users.write_string(id, 0, id.to_string()).unwrap();
        }
        if merge {
            users
                .merge_range(1, 1, 3, 1, "ACME", &Format::new())
                .unwrap();
        } else {
            users.write_string(1, 1, "ACME").unwrap();
        }
        if let Some((row, column, text)) = stray {
            users.write_string(row, column, text).unwrap();
        }
        book.save(dir.path().join(name)).unwrap();
    };
    sheet("space.xlsx", Some((1_048_575, 16_383, " ")), false);
    sheet("far-right.xlsx", Some((1_048_575, 16_383, "x")), false);
    sheet("far-below.xlsx", Some((99_999, 1, "x")), false);
    sheet("merged.xlsx", None, true);

    let output = run(dir.path(), &["validate", "space.xlsx", "-o", "-"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(common::read_results(&output.stdout).len(), 3);

    let output = run(dir.path(), &["validate", "far-right.xlsx", "-o", "-"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the cell XFD1048576 holds \"x\", far right of the header (which ends at B1)"),
        "{err}"
    );

    let output = run(dir.path(), &["validate", "far-below.xlsx", "-o", "-"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let rows = common::read_results(&output.stdout);
    let last = rows.last().unwrap();
    assert_eq!(last["row"], "100000");
    assert!(last["error"].contains("user_id: is empty"), "{last:?}");

    let output = run(dir.path(), &["validate", "merged.xlsx", "-o", "-"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(
        err.contains("cells merged down several rows (B2:B4): only the top row holds the value"),
        "{err}"
    );
}

/// A plan saved by a spreadsheet as a workbook is not the plan reviewed.
#[test]
fn a_plan_saved_as_a_workbook_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    workbook(&dir.path().join("users.plan.xlsx"));
    let output = run(
        dir.path(),
        &[
            "apply",
            "--plan",
            "users.plan.xlsx",
            "--base-url",
            "http://127.0.0.1:9",
        ],
    );
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("users.plan.xlsx cannot be applied as a plan: it is a workbook; a plan is the CSV file that plan wrote"),
        "{err}"
    );
}

/// A group named by its ID is typed as text: a number cell (a formula's
/// TRUE saved as 1, a percentage, an amount) never becomes group 1,
/// Administrators.
#[test]
fn a_number_in_groups_is_never_taken_for_a_group_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut book = Workbook::new();
    let users = book.add_worksheet();
    users.write_string(0, 0, "user_id").unwrap();
    users.write_string(0, 1, "groups").unwrap();
    users.write_string(1, 0, "1").unwrap();
    users.write_number(1, 1, 1).unwrap();
    users.write_string(2, 0, "2").unwrap();
    users
        .write_formula(2, 1, Formula::new("=1=1").set_result("1"))
        .unwrap();
    users.write_string(3, 0, "3").unwrap();
    users.write_string(3, 1, "3009").unwrap();
    book.save(dir.path().join("groups.xlsx")).unwrap();
    let output = run(dir.path(), &["validate", "groups.xlsx", "-o", "-"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let rows = common::read_results(&output.stdout);
    for number in [2, 3] {
        let row = row(&rows, number);
        assert_eq!(row["status"], "invalid", "{row:?}");
        assert!(
            row["error"].contains(&format!("groups: B{number} holds the number 1, not text"))
                && row["error"].contains("1 is Administrators"),
            "{row:?}"
        );
    }
    // An ID typed as text names its group.
    assert!(row(&rows, 4)["request"].contains("\"id\":3009"));
}

/// Rewrites the first sheet's XML of the `.xlsx` at `path`.
fn edit_sheet_xml(path: &Path, edit: impl Fn(String) -> String) {
    use std::io::{Read, Write};
    let bytes = std::fs::read(path).unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        let name = file.name().unwrap().to_string();
        let mut content = Vec::new();
        file.read_to_end(&mut content).unwrap();
        if name == "xl/worksheets/sheet1.xml" {
            content = edit(String::from_utf8(content).unwrap()).into_bytes();
        }
        out.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        out.write_all(&content).unwrap();
    }
    std::fs::write(path, out.finish().unwrap().into_inner()).unwrap();
}

/// Files no spreadsheet writes: a cell twice, a cell past column XFD.
/// Refused as damaged, fast and in little memory, never a row lost.
#[test]
fn damaged_sheets_are_refused_not_half_read() {
    let dir = tempfile::tempdir().unwrap();
    let make = |name: &str| {
        let mut book = Workbook::new();
        let users = book.add_worksheet();
        users.write_string(0, 0, "user_id").unwrap();
        users.write_string(0, 1, "lang").unwrap();
        users.write_string(1, 0, "1").unwrap();
        users.write_string(1, 1, "de").unwrap();
        let path = dir.path().join(name);
        book.save(&path).unwrap();
        path
    };
    let twice = make("twice.xlsx");
    edit_sheet_xml(&twice, |xml| {
        let start = xml.find("<row r=\"2\"").unwrap();
        let end = xml[start..].find("</row>").unwrap() + start + "</row>".len();
        let row = xml[start..end].to_string();
        format!("{}{row}{}", &xml[..end], &xml[end..])
    });
    let past = make("past-xfd.xlsx");
    edit_sheet_xml(&past, |xml| xml.replace("r=\"B2\"", "r=\"AZMLXX2\""));
    for (file, want) in [
        ("twice.xlsx", "holds the cell A2 twice: the file is damaged"),
        (
            "past-xfd.xlsx",
            "beyond the last cell a sheet can have (XFD1048576)",
        ),
    ] {
        let output = run(dir.path(), &["validate", file, "-o", "-"]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{file}: {err}");
        assert!(err.contains(want), "{file}: {err}");
    }
}

/// A hidden column that holds only its header sends nothing: the run goes
/// on (it stopped, naming the header cell B1, which is never sent); one
/// that holds a value is refused naming that cell alone (hostile round,
/// 2026-12-06).
#[test]
fn a_hidden_column_with_only_its_header_sends_nothing_and_stops_nothing() {
    use rust_xlsxwriter::Workbook;
    let dir = tempfile::tempdir().unwrap();
    for (name, hidden_value) in [("header-only.xlsx", None), ("with-value.xlsx", Some("de"))] {
        let mut book = Workbook::new();
        let sheet = book.add_worksheet();
        for (column, title) in ["user_id", "lang", "company"].iter().enumerate() {
            sheet.write_string(0, column as u16, *title).unwrap();
        }
        for id in 1..=2u32 {
            sheet.write_string(id, 0, id.to_string()).unwrap();
            sheet.write_string(id, 2, "ACME").unwrap();
        }
        if let Some(value) = hidden_value {
            sheet.write_string(1, 1, value).unwrap();
        }
        sheet.set_column_hidden(1).unwrap();
        book.save(dir.path().join(name)).unwrap();
        let output = run(dir.path(), &["validate", name, "-o", "-"]);
        let err = stderr(&output);
        match hidden_value {
            None => assert_eq!(output.status.code(), Some(0), "{name}: {err}"),
            Some(_) => {
                assert_eq!(output.status.code(), Some(2), "{name}: {err}");
                assert!(
                    err.contains("would be sent: B2 (in a hidden column);"),
                    "{err}"
                );
            }
        }
        assert!(!err.contains("B1 ("), "{name}: {err}");
    }
}
