//! The real spreadsheet in the loop: LibreOffice (headless, Debian's
//! `libreoffice-calc-nogui`, which `.ci/run` installs) opens and saves the
//! files this tool writes, as a user's spreadsheet would, and the tool
//! reads what comes back:
//! - an `.xlsx` export saved again plans as all `unchanged`, with no PATCH;
//! - a `.csv` export saved again (phones lose their `+`) is stopped by
//!   `apply --skip-unchanged`, with no phone sent;
//! - a results file opened with formula evaluation holds no formula cell.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use calamine::Reader;
use common::{command_in, read_results_file, start_sandbox};
use gcore_iam_bulk::sandbox::{Faults, RunningSandbox};

const KEY: &str = "libreoffice-test-key-0123456789";

/// `soffice`, or a failure that says how to install it: these tests are
/// part of the suite, not optional.
fn soffice() -> PathBuf {
    for name in ["soffice", "libreoffice"] {
        if let Ok(output) = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            && output.status.success()
        {
            return PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
        }
    }
    panic!(
        "LibreOffice is needed for these tests: apt-get install libreoffice-calc-nogui \
         (.ci/run installs it when it is missing)"
    );
}

/// Opens `file` in LibreOffice and saves it as `format` (`xlsx`, `csv`)
/// into `out`, as File > Save As would: a CSV is read as UTF-8 with
/// commas, and its formulas are evaluated (LibreOffice's default). Each
/// call has its own profile, so tests can run side by side.
fn convert(file: &Path, format: &str, out: &Path) -> PathBuf {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(soffice())
        .arg(format!(
            "-env:UserInstallation=file://{}",
            profile.path().display()
        ))
        .args(["--headless", "--norestore", "--convert-to", format])
        .arg("--infilter=CSV:44,34,76,1")
        .arg("--outdir")
        .arg(out)
        .arg(file)
        .output()
        .unwrap();
    let stem = file.file_stem().unwrap().to_string_lossy();
    let saved = out.join(format!("{stem}.{format}"));
    assert!(
        output.status.success() && saved.exists(),
        "LibreOffice did not save {}: {}{}",
        saved.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    saved
}

fn run(dir: &Path, sandbox: &RunningSandbox, args: &[&str]) -> Output {
    command_in(dir, KEY)
        .args(args)
        .args(["--base-url", &sandbox.base_url(), "--rate", "0"])
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn patches(sandbox: &RunningSandbox) -> u64 {
    sandbox
        .stats()
        .by_method_status
        .get("PATCH")
        .map_or(0, |by_status| by_status.values().sum())
}

/// Sets the phones of users 1 to 10 to numbers a spreadsheet reads as
/// numbers (`+4930123450` ... and `0301234561` ...).
fn phones_a_spreadsheet_mangles(dir: &Path, sandbox: &RunningSandbox) {
    let mut csv = String::from("user_id,phone\n");
    for id in 1..=10 {
        match id % 2 {
            0 => csv.push_str(&format!("{id},+493012345{id:02}\n")),
            _ => csv.push_str(&format!("{id},03012345{id:02}\n")),
        }
    }
    std::fs::write(dir.join("phones.csv"), csv).unwrap();
    let output = run(
        dir,
        sandbox,
        &["apply", "phones.csv", "-o", "phones.results.csv"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xlsx_export_saved_by_libreoffice_plans_as_unchanged() {
    let sandbox = start_sandbox(KEY, 21, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let sandbox = tokio::task::spawn_blocking(move || {
        phones_a_spreadsheet_mangles(&path, &sandbox);
        let export = run(&path, &sandbox, &["export", "-o", "users.xlsx"]);
        assert_eq!(export.status.code(), Some(0), "{}", stderr(&export));
        std::fs::create_dir(path.join("saved")).unwrap();
        let saved = convert(&path.join("users.xlsx"), "xlsx", &path.join("saved"));
        let before = patches(&sandbox);
        let plan = run(
            &path,
            &sandbox,
            &["plan", saved.to_str().unwrap(), "-o", "plan.csv"],
        );
        assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
        let (rows, _) = read_results_file(&path.join("plan.csv"));
        assert_eq!(rows.len(), 1000);
        let changed: Vec<_> = rows.iter().filter(|r| r["status"] != "unchanged").collect();
        assert!(changed.is_empty(), "{changed:?}");
        // The phones came through the spreadsheet as they were.
        let ten = rows.iter().find(|r| r["user_id"] == "10").unwrap();
        assert_eq!(ten["phone"], "+49301234510");
        let one = rows.iter().find(|r| r["user_id"] == "1").unwrap();
        assert_eq!(one["phone"], "0301234501");
        assert_eq!(patches(&sandbox), before, "a plan sends nothing");
        sandbox
    })
    .await
    .unwrap();
    drop(sandbox);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_export_saved_by_libreoffice_sends_no_mangled_phone() {
    let sandbox = start_sandbox(KEY, 22, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let sandbox = tokio::task::spawn_blocking(move || {
        phones_a_spreadsheet_mangles(&path, &sandbox);
        let export = run(&path, &sandbox, &["export", "-o", "users.csv"]);
        assert_eq!(export.status.code(), Some(0), "{}", stderr(&export));
        std::fs::create_dir(path.join("saved")).unwrap();
        let saved = convert(&path.join("users.csv"), "csv", &path.join("saved"));
        let text = std::fs::read_to_string(&saved).unwrap();
        assert!(
            text.lines().any(|line| line.contains(",49301234510,")),
            "LibreOffice dropped the + as it does for users: {}",
            &text[..text.len().min(600)]
        );
        let before = patches(&sandbox);
        let apply = run(
            &path,
            &sandbox,
            &[
                "apply",
                saved.to_str().unwrap(),
                "--skip-unchanged",
                "-o",
                "results.csv",
            ],
        );
        let err = stderr(&apply);
        assert_eq!(apply.status.code(), Some(1), "{err}");
        let (rows, _) = read_results_file(&path.join("results.csv"));
        assert_eq!(rows.len(), 1000);
        for id in 1..=10 {
            let row = rows
                .iter()
                .find(|r| r["user_id"] == id.to_string())
                .unwrap();
            assert_eq!(row["status"], "invalid", "{row:?}");
            let lost = if id % 2 == 0 {
                "its leading +"
            } else {
                "its leading zeros"
            };
            assert!(row["error"].contains(lost), "{row:?}");
        }
        // Invalid rows stop the run: nothing is sent for the others.
        let others: Vec<_> = rows
            .iter()
            .filter(|r| r["status"] != "not_attempted" && r["status"] != "invalid")
            .collect();
        assert!(others.is_empty(), "{others:?}");
        assert!(err.contains("10 rows"), "the summary counts them: {err}");
        assert_eq!(patches(&sandbox), before, "no phone was sent");
        sandbox
    })
    .await
    .unwrap();
    drop(sandbox);
}

/// Names a spreadsheet would run as formulas, written to a results file
/// (the user's state as the API answered it) and opened in LibreOffice,
/// which evaluates formulas in a CSV it opens: none of them becomes one.
/// With `--raw-output` they do, which shows the check can fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_results_file_opened_in_libreoffice_holds_no_formula() {
    let sandbox = start_sandbox(KEY, 23, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let sandbox = tokio::task::spawn_blocking(move || {
        let names = [
            "=1+2",
            "=HYPERLINK(\"http://example.com\";\"x\")",
            "@SUM(1;2)",
            "+SUM(1;2)",
            "-2+3",
        ];
        let mut csv = String::from("user_id,name,company\n");
        for (i, name) in names.iter().enumerate() {
            let quoted = name.replace('"', "\"\"");
            csv.push_str(&format!("{},\"{quoted}\",\"{quoted}\"\n", i + 1));
        }
        std::fs::write(path.join("names.csv"), csv).unwrap();
        let formulas_in = |results: &str, raw: bool| {
            let mut args = vec!["apply", "names.csv", "-o", results];
            if raw {
                args.push("--raw-output");
            }
            let output = run(&path, &sandbox, &args);
            assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
            let out = path.join(format!("lo-{raw}"));
            std::fs::create_dir(&out).unwrap();
            let saved = convert(&path.join(results), "xlsx", &out);
            let mut book = calamine::open_workbook_auto(&saved).unwrap();
            let sheet = book.sheet_names()[0].clone();
            let formulas = book.worksheet_formula(&sheet).unwrap();
            let values = book.worksheet_range(&sheet).unwrap();
            let texts: Vec<String> = values.used_cells().map(|(_, _, c)| c.to_string()).collect();
            (
                formulas
                    .used_cells()
                    .filter(|(_, _, f)| !f.is_empty())
                    .count(),
                texts,
            )
        };
        let (safe, texts) = formulas_in("results.csv", false);
        assert_eq!(safe, 0, "a formula cell in {texts:?}");
        // The values are all there, as text.
        for name in names {
            assert!(
                texts
                    .iter()
                    .any(|text| text.trim_start_matches('\'') == name),
                "{name} in {texts:?}"
            );
        }
        let (raw, _) = formulas_in("raw.csv", true);
        assert!(raw > 0, "--raw-output writes cells as they are");
        sandbox
    })
    .await
    .unwrap();
    drop(sandbox);
}

/// Opens `file` in LibreOffice and saves it as `format` into `out`, with
/// the import filter LibreOffice picks for it.
fn save_as(file: &Path, format: &str, out: &Path) -> PathBuf {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(soffice())
        .arg(format!(
            "-env:UserInstallation=file://{}",
            profile.path().display()
        ))
        .args(["--headless", "--norestore", "--convert-to", format])
        .arg("--outdir")
        .arg(out)
        .arg(file)
        .output()
        .unwrap();
    let stem = file.file_stem().unwrap().to_string_lossy();
    let saved = out.join(format!("{stem}.{format}"));
    assert!(
        output.status.success() && saved.exists(),
        "LibreOffice did not save {}: {}{}",
        saved.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    saved
}

/// A merge whose covered cell keeps a value, and a hidden column, saved
/// by LibreOffice as .ods and as .xlsx: the covered value is read as
/// empty (and noted), and the hidden column's value is refused by cell.
#[test]
fn merged_and_hidden_cells_saved_by_libreoffice_are_read_as_seen() {
    use rust_xlsxwriter::{Format, Workbook};
    let dir = tempfile::tempdir().unwrap();
    let made = dir.path().join("made");
    std::fs::create_dir(&made).unwrap();
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "user_id").unwrap();
    sheet.write_string(0, 1, "groups").unwrap();
    sheet.write_string(0, 2, "company").unwrap();
    for id in 1..=3u32 {
        sheet.write_string(id, 0, id.to_string()).unwrap();
    }
    sheet
        .merge_range(1, 1, 3, 1, "Users", &Format::new())
        .unwrap();
    // What "keep the contents of the hidden cells" keeps.
    sheet.write_string(2, 1, "Administrators").unwrap();
    sheet.write_string(1, 2, "ACME").unwrap();
    sheet.set_column_hidden(2).unwrap();
    let source = made.join("users.xlsx");
    book.save(&source).unwrap();
    let ods = save_as(&source, "ods", dir.path());
    let xlsx = save_as(&ods, "xlsx", &made.join("again"));
    for file in [&ods, &xlsx] {
        let output = command_in(dir.path(), KEY)
            .arg("validate")
            .arg(file)
            .args(["-o", "-"])
            .output()
            .unwrap();
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{}: {err}", file.display());
        assert!(
            err.contains("C2 (in a hidden column)"),
            "{}: {err}",
            file.display()
        );
        let output = command_in(dir.path(), KEY)
            .arg("validate")
            .arg(file)
            .args(["--send-hidden-cells", "-o", "-"])
            .output()
            .unwrap();
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(0), "{}: {err}", file.display());
        assert!(
            err.contains("hold values nobody sees (B3)"),
            "{}: {err}",
            file.display()
        );
        assert!(
            err.contains("cells merged down several rows (B2:B4)"),
            "{}: {err}",
            file.display()
        );
        let results = String::from_utf8_lossy(&output.stdout);
        assert!(!results.contains("Administrators"), "{results}");
    }
}

/// A name that starts with U+FEFF, saved by LibreOffice as .xls: calamine
/// drops the mark, and the run says so; the same sheet as .ods keeps it.
#[test]
fn an_xls_that_holds_a_leading_feff_is_noted() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bom.csv");
    std::fs::write(&csv, "user_id,name\n1,\u{feff}Ann\n").unwrap();
    for (format, noted) in [("xls", true), ("ods", false)] {
        let saved = convert(&csv, format, dir.path());
        let output = command_in(dir.path(), KEY)
            .arg("validate")
            .arg(&saved)
            .args(["-o", "-"])
            .output()
            .unwrap();
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(0), "{format}: {err}");
        assert_eq!(
            err.contains("starts with the invisible mark U+FEFF"),
            noted,
            "{format}: {err}"
        );
        // Hidden rows and columns of an .xls are not seen: said.
        assert_eq!(
            err.contains("whose hidden rows and columns and number formats this tool cannot see"),
            noted,
            "{format}: {err}"
        );
    }
}

/// A sheet LibreOffice saves as flat XML (`.fods`) or as a web page is no
/// CSV: refused for what it is, with the fix (it was read as a CSV whose
/// first column was `<?xml ...`).
#[test]
fn a_flat_ods_or_a_web_page_is_refused_for_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("users.csv");
    std::fs::write(&csv, "user_id,lang\n1,en\n").unwrap();
    for (format, kind) in [
        ("fods", "a flat OpenDocument spreadsheet (.fods)"),
        ("html", "a web page (HTML)"),
    ] {
        let saved = convert(&csv, format, dir.path());
        let output = command_in(dir.path(), KEY)
            .arg("validate")
            .arg(&saved)
            .args(["-o", "out.csv"])
            .output()
            .unwrap();
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{format}: {err}");
        assert!(err.contains(kind), "{format}: {err}");
        assert!(
            err.contains("save it as .xlsx, .ods or CSV UTF-8"),
            "{format}: {err}"
        );
        assert!(
            !dir.path().join("out.csv").exists(),
            "{format}: a results file"
        );
    }
}
