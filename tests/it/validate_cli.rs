//! Black-box tests of `validate` (and `apply --dry-run`): the built binary on
//! real files, its exit code, its messages and the results file it writes.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common;

use common::read_results;

const HEADER: &str = "user_id,email,name,lang,phone,company,groups,auth_types";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    results: Vec<HashMap<String, String>>,
}

impl Run {
    fn row(&self, row: u64) -> &HashMap<String, String> {
        self.results
            .iter()
            .find(|r| r["row"] == row.to_string())
            .unwrap_or_else(|| panic!("no results row {row} in {:?}", self.results))
    }
}

/// Runs the binary in a fresh directory holding `input` as `in.csv`.
fn run_on(input: &[u8], args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), input).unwrap();
    run_in(dir.path(), args, None)
}

fn run_in(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut child = common::bin()
        .args(args)
        .current_dir(dir)
        .env_remove("GCORE_API_KEY")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let results_path = dir.join("in.results.csv");
    let results = if args.contains(&"-") && args.contains(&"-o") {
        read_results(stdout.as_bytes())
    } else if results_path.exists() {
        read_results(&std::fs::read(results_path).unwrap()[..])
    } else {
        Vec::new()
    };
    Run {
        code: out.status.code().unwrap(),
        stdout,
        stderr: String::from_utf8(out.stderr).unwrap(),
        results,
    }
}

fn validate(input: &str) -> Run {
    run_on(input.as_bytes(), &["validate", "in.csv"])
}

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

#[test]
fn the_users_sample_is_valid_and_shows_the_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let input = samples().join("users.csv");
    let run = run_in(dir.path(), &["validate", input.to_str().unwrap()], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let results = read_results(&std::fs::read(dir.path().join("users.results.csv")).unwrap());
    assert_eq!(results.len(), 12);
    let statuses: Vec<&str> = results.iter().map(|r| r["status"].as_str()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "would_update").count(),
        11
    );
    assert_eq!(results[0]["row"], "2");
    assert_eq!(
        results[0]["request"],
        r#"{"email":"anna.schmidt@example.com","name":"Anna Schmidt","lang":"de","phone":"+49 30 1234567","company":"Example GmbH","groups":[{"id":2,"name":"Users"}],"auth_types":["password"]}"#
    );
    assert!(
        run.stderr.contains("12 rows: 11 would_update, 1 skipped"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_broken_sample_exits_1_and_says_what_is_wrong_per_row() {
    let dir = tempfile::tempdir().unwrap();
    let input = samples().join("broken.csv");
    let run = run_in(
        dir.path(),
        &["validate", input.to_str().unwrap(), "-o", "out.csv"],
        None,
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let results = read_results(&std::fs::read(dir.path().join("out.csv")).unwrap());
    assert!(
        results.iter().all(|r| r["status"] == "invalid"),
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .all(|r| !r["error"].is_empty() && r["request"].is_empty())
    );
    assert!(
        run.stderr.contains("row 2: user_id: 0 is not a user ID"),
        "{}",
        run.stderr
    );
}

#[test]
fn bodies_send_only_what_the_row_sets() {
    let run = validate(&format!(
        "{HEADER}\n1,,#null,,,,,\n2,,,EN,,,,\n3,,,,#NULL,,,\n4,,,,,,,\n5, a@example.com ,,,,,,\n"
    ));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.row(2)["request"], r#"{"name":null}"#);
    assert_eq!(run.row(3)["request"], r#"{"lang":"en"}"#);
    assert_eq!(run.row(4)["request"], r#"{"phone":null}"#);
    assert_eq!(run.row(5)["status"], "skipped");
    assert_eq!(run.row(5)["error"], "no changes");
    assert_eq!(run.row(6)["request"], r#"{"email":"a@example.com"}"#);
    assert_eq!(run.row(2)["status"], "would_update");
}

#[test]
fn a_missing_column_leaves_the_field_alone() {
    let run = validate("id,lang\n7,de\n");
    assert_eq!(run.code, 0);
    assert_eq!(run.row(2)["request"], r#"{"lang":"de"}"#);
    assert_eq!(run.row(2)["user_id"], "7");
}

#[test]
fn an_invalid_row_lists_every_problem_with_its_column() {
    let run = validate("user_id,email,lang,groups\n5,x@,fr,Users;;\n");
    assert_eq!(run.code, 1);
    let error = &run.row(2)["error"];
    assert!(
        error.starts_with(r#"email: "x@" is not a valid address"#),
        "{error}"
    );
    assert!(
        error.contains(r#"; lang: "fr" is not one of de, en, ru, zh, az"#),
        "{error}"
    );
    assert!(error.contains("; groups: item 2 is empty"), "{error}");
    assert!(run.stderr.contains("row 2: email:"), "{}", run.stderr);
}

#[test]
fn user_id_mistakes() {
    let run = validate(
        "user_id,lang\n0,de\n-1,de\n1.5,de\n 7 ,de\n99999999999999999999,de\n,de\nabc,de\n",
    );
    assert_eq!(run.code, 1);
    assert!(run.row(2)["error"].contains("0 is not a user ID"));
    assert!(run.row(3)["error"].contains(r#""-1" is not a positive whole number"#));
    assert!(run.row(4)["error"].contains(r#""1.5" is not a positive whole number"#));
    assert_eq!(
        run.row(5)["status"],
        "would_update",
        "spaces around an ID are fine"
    );
    assert_eq!(run.row(5)["user_id"], "7");
    assert!(run.row(6)["error"].contains("is too large"));
    assert!(run.row(7)["error"].contains("user_id: is empty"));
    assert_eq!(
        run.row(8)["user_id"],
        "abc",
        "the cell is kept so the user can find it"
    );
}

#[test]
fn a_duplicated_user_id_is_an_error_on_every_row_naming_the_others() {
    let run = validate("user_id,lang\n7,de\n8,de\n7,en\n 7,ru\n");
    assert_eq!(run.code, 1);
    assert_eq!(
        run.row(2)["error"],
        "user_id: 7 is also on rows 4, 5; give each user one row"
    );
    assert_eq!(
        run.row(4)["error"],
        "user_id: 7 is also on rows 2, 5; give each user one row"
    );
    assert_eq!(
        run.row(5)["error"],
        "user_id: 7 is also on rows 2, 4; give each user one row"
    );
    assert_eq!(run.row(3)["status"], "would_update");
}

#[test]
fn field_mistakes() {
    let run = validate(
        "user_id,email,groups,auth_types,name\n1,#null,,,\n2,,Admins,,\n3,,,saml,\n4,,,,a\u{0}b\n5,,1|Engineers,,\n",
    );
    assert!(run.row(2)["error"].contains("only name and phone can be cleared"));
    assert!(run.row(3)["error"].contains(r#"did you mean "Administrators"?"#));
    assert!(run.row(4)["error"].contains(r#"auth_types: "saml" is not one of"#));
    assert!(run.row(5)["error"].contains("name: contains a control character (U+0000)"));
    assert_eq!(
        run.row(6)["request"],
        r#"{"groups":[{"id":1,"name":"Administrators"},{"id":5,"name":"Engineers"}]}"#
    );
}

#[test]
fn a_row_with_too_many_or_too_few_cells_is_invalid_alone() {
    let run = validate("user_id,lang,name\n1,de\n2,de,Ann,extra\n3,de,Ann\n");
    assert_eq!(run.code, 1);
    assert!(run.row(2)["error"].contains("has 2 cells but the header has 3 columns"));
    assert!(run.row(3)["error"].contains("has 4 cells but the header has 3 columns"));
    assert_eq!(run.row(4)["status"], "would_update");
}

#[test]
fn a_one_megabyte_cell_is_refused_without_flooding_the_terminal() {
    let big = "x".repeat(1 << 20);
    let run = validate(&format!("user_id,name\n1,{big}\n2,Ann\n"));
    assert_eq!(run.code, 1);
    assert!(run.row(2)["error"].contains("is 1048576 characters long; at most 255"));
    assert!(
        run.stderr.len() < 2000,
        "stderr is {} bytes",
        run.stderr.len()
    );
    assert_eq!(run.row(3)["status"], "would_update");
}

#[test]
fn rfc4180_quotes_crlf_and_blank_lines() {
    let input = "user_id,name,company\r\n1,\"Mark \"\"MJ\"\" Jones\",\"Acme, Inc.\"\r\n\r\n2,\"Ann\r\nLee\",\r\n3,Bo,\r\n\r\n";
    let run = validate(input);
    assert_eq!(run.results.len(), 3);
    assert_eq!(
        run.row(2)["request"],
        r#"{"name":"Mark \"MJ\" Jones","company":"Acme, Inc."}"#
    );
    // The blank line is row 3 in a spreadsheet; the record with a line break stays one row.
    assert!(
        run.row(4)["error"].contains("control character (U+000D)"),
        "{:?}",
        run.results
    );
    assert_eq!(run.row(5)["user_id"], "3");
}

#[test]
fn excel_files_just_work() {
    // UTF-8 with a byte-order mark, semicolons, and a list in a quoted cell.
    let run = run_on(
        b"\xEF\xBB\xBFuser_id;name;groups\n1;Jos\xC3\xA9;\"Users;Engineers\"\n",
        &["validate", "in.csv"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.row(2)["request"],
        r#"{"name":"José","groups":[{"id":2,"name":"Users"},{"id":5,"name":"Engineers"}]}"#
    );
    // UTF-16 with a byte-order mark, tab-separated (Excel's "Unicode text").
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in "user_id\tname\r\n1\tZoë\r\n".encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    let run = run_on(&utf16, &["validate", "in.csv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.row(2)["request"], r#"{"name":"Zoë"}"#);
}

#[test]
fn bytes_that_are_not_utf8_name_the_row_and_the_fix() {
    let latin1 = b"user_id,name\n1,Ann\n2,Jos\xE9\n";
    let run = run_on(latin1, &["validate", "in.csv"]);
    assert_eq!(run.code, 1);
    let error = &run.row(3)["error"];
    assert!(
        error.starts_with("name: byte 0xE9 at position 4 is not UTF-8"),
        "{error}"
    );
    assert!(error.contains("--encoding windows-1252"), "{error}");
    assert!(
        run.stderr.contains("row 3: name: byte 0xE9"),
        "{}",
        run.stderr
    );
    assert_eq!(run.row(2)["status"], "would_update");

    let run = run_on(
        latin1,
        &["validate", "in.csv", "--encoding", "windows-1252"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.row(3)["request"], r#"{"name":"José"}"#);
}

#[test]
fn explicit_delimiters() {
    let run = run_on(
        b"user_id\tlang\n1\tde\n",
        &["validate", "in.csv", "--delimiter", "tab"],
    );
    assert_eq!(run.row(2)["request"], r#"{"lang":"de"}"#);
    let run = run_on(
        b"user_id|lang\n1|de\n",
        &["validate", "in.csv", "--delimiter", "|"],
    );
    assert_eq!(run.row(2)["request"], r#"{"lang":"de"}"#);
    let run = run_on(
        b"user_id,lang\n1,de\n",
        &["validate", "in.csv", "--delimiter", "::"],
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("use one of"), "{}", run.stderr);
}

#[test]
fn the_null_token_can_be_changed() {
    let run = run_on(
        b"user_id,name\n1,NULL\n2,#null\n",
        &["validate", "in.csv", "--null-token", "null"],
    );
    assert_eq!(run.row(2)["request"], r#"{"name":null}"#);
    assert_eq!(run.row(3)["request"], r##"{"name":"#null"}"##);
}

#[test]
fn files_that_cannot_be_used_exit_2_with_one_line_that_says_what_to_fix() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "is empty: the first line must be a header"),
        (b"\n\n", "is empty"),
        (
            b"email,name\nx@example.com,Ann\n",
            "no user_id column (found: email, name)",
        ),
        (
            b"user_id,emial\n1,x@example.com\n",
            "unknown column \"emial\" (column 2): did you mean \"email\"?",
        ),
        (
            b"user_id,email,email\n1,a@b.cd,a@b.cd\n",
            "names email twice (columns 2 and 3)",
        ),
        (b"user_id,n\xE9\n", "the header is not valid UTF-8"),
    ];
    for (input, want) in cases {
        let run = run_on(input, &["validate", "in.csv"]);
        assert_eq!(run.code, 2, "{want}: {}", run.stderr);
        assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
        assert!(run.stderr.contains(want), "want {want:?} in {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    }
    let dir = tempfile::tempdir().unwrap();
    let run = run_in(dir.path(), &["validate", "missing.csv"], None);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("cannot read missing.csv: No such file"),
        "{}",
        run.stderr
    );
}

#[test]
fn unknown_columns_can_be_ignored() {
    let run = run_on(
        b"user_id,department,lang\n1,Sales,de\n",
        &["validate", "in.csv", "--ignore-unknown-columns"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.row(2)["request"], r#"{"lang":"de"}"#);
    assert!(
        run.stderr.contains("ignoring the columns department"),
        "{}",
        run.stderr
    );
}

#[test]
fn unnamed_trailing_columns_are_fine_while_empty() {
    let run = validate("user_id,lang,,\n1,de,,\n2,en,oops,\n");
    assert_eq!(run.row(2)["status"], "would_update");
    assert!(run.row(3)["error"].contains("column 3 has no name in the header"));
}

#[test]
fn a_header_without_rows_has_nothing_to_do() {
    let run = validate("user_id,email\n");
    assert_eq!(run.code, 0);
    assert!(run.results.is_empty());
    assert!(
        run.stderr.contains("has a header but no rows"),
        "{}",
        run.stderr
    );
}

#[test]
fn standard_input_and_output() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_in(
        dir.path(),
        &["validate", "-", "-o", "-"],
        Some(b"user_id,lang\n1,de\n1,en\n"),
    );
    assert_eq!(run.code, 1);
    assert_eq!(run.results.len(), 2, "stdout: {}", run.stdout);
    assert!(run.results[0]["error"].contains("also on row 3"));
    let run = run_in(
        dir.path(),
        &["validate", "-"],
        Some(b"user_id,lang\n1,de\n"),
    );
    assert_eq!(run.code, 0);
    assert!(dir.path().join("stdin.results.csv").exists());
}

#[test]
fn apply_dry_run_is_validate_and_needs_no_key() {
    let run = run_on(
        b"user_id,lang\n1,de\n2,xx\n",
        &["apply", "in.csv", "--dry-run"],
    );
    assert_eq!(run.code, 1);
    assert_eq!(run.row(2)["status"], "would_update");
    assert_eq!(run.row(3)["status"], "invalid");
}

#[test]
fn the_output_may_not_overwrite_the_input() {
    let run = run_on(
        b"user_id,lang\n1,de\n",
        &["validate", "in.csv", "-o", "in.csv"],
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("is the input file"), "{}", run.stderr);
}

#[test]
fn an_unwritable_results_file_or_an_unreadable_input_exits_2() {
    let run = run_on(
        b"user_id,lang\n1,de\n",
        &["validate", "in.csv", "-o", "/dev/full"],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("-o /dev/full is a device or another special file, not a regular file"),
        "{}",
        run.stderr
    );

    let run = run_on(
        b"user_id,lang\n1,de\n",
        &["validate", "in.csv", "-o", "no/such/dir/out.csv"],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("cannot write the results file no/such/dir/out.csv"),
        "{}",
        run.stderr
    );

    let dir = tempfile::tempdir().unwrap();
    let run = run_in(dir.path(), &["validate", "."], None);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("cannot read ."), "{}", run.stderr);
}

/// A named pipe (or a process substitution, `<(cat users.csv)`) reads like a
/// file: it is copied once, then checked.
#[cfg(unix)]
#[test]
fn a_named_pipe_reads_like_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.csv");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            std::fs::write(fifo, "user_id,lang\n1,de\n2,xx\n").unwrap();
        })
    };
    let run = run_in(dir.path(), &["validate", "pipe.csv"], None);
    writer.join().unwrap();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let results = read_results(&std::fs::read(dir.path().join("pipe.results.csv")).unwrap());
    let statuses: Vec<&str> = results.iter().map(|r| r["status"].as_str()).collect();
    assert_eq!(statuses, ["would_update", "invalid"]);
}

/// A quote opened and never closed swallows every row after it into one
/// cell: the run stops (nothing is checked or sent) and names the row where
/// the quote opened, instead of calling the cell "a control character" and
/// losing the rows.
#[test]
fn an_unclosed_quote_is_named_with_its_row() {
    let run = run_on(
        b"user_id,name\n1,Ann\n2,\"Bob\n3,Cy\n4,Dee\n",
        &["validate", "in.csv"],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("a quote opened in row 3 is never closed, so the 3 lines after it"),
        "{}",
        run.stderr
    );
    // A quoted cell on several lines that is closed is no such thing.
    let run = run_on(b"user_id,name\n1,\"Ann\nLee\"", &["validate", "in.csv"]);
    assert!(!run.stderr.contains("never closed"), "{}", run.stderr);
}

/// Old Mac files end lines with a carriage return alone: read as lines,
/// with the row numbers a spreadsheet shows.
#[test]
fn lines_ended_by_cr_alone_are_read() {
    let run = run_on(b"user_id,lang\r1,de\r\r3,xx\r", &["validate", "in.csv"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let rows: Vec<(&str, &str)> = run
        .results
        .iter()
        .map(|r| (r["row"].as_str(), r["status"].as_str()))
        .collect();
    assert_eq!(rows, [("2", "would_update"), ("4", "invalid")]);
}

/// What a spreadsheet does to long numbers it stores as numbers: saved as
/// CSV they come out in scientific notation, digits lost. Such a phone or
/// user ID is refused with what happened and how to fix it.
#[test]
fn numbers_a_spreadsheet_wrote_in_scientific_notation_are_refused() {
    let input = "user_id,phone\n4.93E+10,+49 30 1\n7,4.93E+10\n8,+4930123\n";
    let run = run_on(input.as_bytes(), &["validate", "in.csv"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let id = &run.row(2)["error"];
    assert!(
        id.starts_with("user_id: \"4.93E+10\" is a number in scientific notation"),
        "{id}"
    );
    assert!(id.contains("format the column as text"), "{id}");
    let phone = &run.row(3)["error"];
    assert!(
        phone.starts_with("phone: \"4.93E+10\" is a number in scientific notation"),
        "{phone}"
    );
    assert!(phone.contains("a leading + or 0"), "{phone}");
    assert_eq!(run.row(4)["status"], "would_update");
}

/// `validate --summary-json` and `apply --dry-run --summary-json` say which
/// run they describe: version, command, dry run, input, start and end.
#[test]
fn the_summary_json_names_the_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "user_id,lang\n1,de\n2,xx\n").unwrap();
    let before = std::time::SystemTime::now();
    let mut seen = Vec::new();
    for (args, command) in [
        (
            &["validate", "in.csv", "--summary-json", "s.json"][..],
            "validate",
        ),
        (
            &["apply", "in.csv", "--dry-run", "--summary-json", "s.json"][..],
            "apply",
        ),
    ] {
        let run = run_in(dir.path(), args, None);
        assert_eq!(run.code, 1, "{}", run.stderr);
        let text = std::fs::read_to_string(dir.path().join("s.json")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(json["command"], command);
        assert_eq!(json["dry_run"], true);
        assert_eq!(json["input"], "in.csv");
        assert_eq!(json["rows"], 2);
        assert_eq!(json["exit_code"], 1);
        for field in ["started_at", "finished_at"] {
            let at = json[field].as_str().unwrap();
            let parsed = humantime::parse_rfc3339(at).unwrap_or_else(|e| panic!("{at}: {e}"));
            // RFC 3339, UTC, to the second: within this test's run.
            assert!(at.ends_with('Z') && at.len() == 20, "{at}");
            let slack = std::time::Duration::from_secs(1);
            assert!(parsed + slack >= before, "{at}");
            assert!(parsed <= std::time::SystemTime::now(), "{at}");
        }
        assert!(json["started_at"].as_str() <= json["finished_at"].as_str());
        seen.push(json["command"].clone());
    }
    assert_eq!(seen, ["validate", "apply"]);
    // Standard input is named as given.
    let run = run_in(
        dir.path(),
        &["validate", "-", "--summary-json", "in.json"],
        Some(b"user_id,lang\n1,de\n"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("in.json")).unwrap())
            .unwrap();
    assert_eq!(json["input"], "-");
}

/// Setup problems come most fundamental first: with no key, the key is
/// what the user hears about, not the results file in the way (which
/// would be the next run's error).
#[test]
fn the_missing_key_is_reported_before_the_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "user_id,lang\n1,de\n").unwrap();
    std::fs::write(dir.path().join("in.results.csv"), "not ours\n").unwrap();
    std::fs::write(dir.path().join("in.plan.csv"), "not ours\n").unwrap();
    std::fs::write(dir.path().join("users.csv"), "an edited export\n").unwrap();
    for args in [
        &["apply", "in.csv"][..],
        &["plan", "in.csv"][..],
        &["export"][..],
        &["apply", "--plan", "in.plan.csv"][..],
    ] {
        let run = common::bin()
            .args(args)
            .current_dir(dir.path())
            .env_remove("GCORE_API_KEY")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: no API key"),
            "{args:?}: {stderr}"
        );
    }
    // With the key, the file is the problem.
    let run = common::bin()
        .args(["apply", "in.csv"])
        .current_dir(dir.path())
        .env("GCORE_API_KEY", "a-key-for-the-test")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("in.results.csv already exists"), "{stderr}");
}

/// Standard output and error both a pipe whose reader is gone (`... 2>&1
/// | head -c 10` after head quit): the run ends with its own exit code
/// (0: a run that sends nothing ends quietly when its reader is gone), not
/// with a panic (101) when a line cannot be printed either.
#[test]
fn output_to_a_closed_pipe_ends_with_the_runs_exit_code_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "user_id,name\n1,Ann\n").unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let run = common::bin()
        .args(["validate", "in.csv", "-o", "-"])
        .current_dir(dir.path())
        .env("GCORE_API_KEY", "a-key-for-the-test")
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .status()
        .unwrap();
    assert_eq!(run.code(), Some(0));
}

/// `--summary-json -` is no standard output (that carries the results with
/// `-o -`): it is refused, rather than writing a file named `-`.
#[test]
fn a_summary_to_a_dash_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "user_id,lang\n1,de\n").unwrap();
    let run = run_in(
        dir.path(),
        &["validate", "in.csv", "--summary-json", "-"],
        None,
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("--summary-json summary.json"),
        "{}",
        run.stderr
    );
    assert!(!dir.path().join("-").exists());
    assert!(!dir.path().join("in.results.csv").exists());
}

/// A sandbox whose port is taken says how to get a free one.
#[test]
fn a_sandbox_on_a_port_in_use_says_how_to_get_a_free_one() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = common::bin()
        .args(["sandbox", "--listen", &addr])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the port is in use"), "{stderr}");
    assert!(stderr.contains("--listen 127.0.0.1:0"), "{stderr}");
    drop(taken);
}

/// Under a file-size limit (`ulimit -f`) the run's copy of its input stops
/// with an error that names the file, not with SIGXFSZ killing it.
#[test]
fn a_file_size_limit_is_an_error_not_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("user_id,lang\n");
    for id in 1..=40_000 {
        csv.push_str(&format!("{id},de\n"));
    }
    std::fs::write(dir.path().join("in.csv"), &csv).unwrap();
    // 200 blocks of 1 KiB: below the input (about 330 KB).
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("ulimit -f 200 && exec \"$0\" validate in.csv")
        .arg(env!("CARGO_BIN_EXE_gcore-iam-bulk"))
        .current_dir(dir.path())
        .stdin(Stdio::null());
    common::clean(&mut command);
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot read in.csv"), "{stderr}");
    assert!(stderr.contains("File too large"), "{stderr}");
}

/// `validate -o - | head`: the reader stops early, and a run that sends
/// nothing ends without an error, exit 0, as `man | head` does (it said
/// "error: cannot write the results file <stdout>: Broken pipe", exit 2).
/// The same for `apply --dry-run`.
#[test]
fn a_reader_of_dash_o_that_stops_early_ends_a_dry_run_quietly() {
    let dir = tempfile::tempdir().unwrap();
    // Far more results than a pipe holds: the run is still writing.
    std::fs::write(dir.path().join("in.csv"), common::lang_rows(20_000)).unwrap();
    for args in [
        &["validate", "in.csv", "-o", "-"][..],
        &["apply", "in.csv", "--dry-run", "-o", "-"][..],
    ] {
        let mut child = common::bin()
            .current_dir(dir.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut header = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut header).unwrap();
        assert!(header.starts_with("row,user_id,status"), "{header}");
        // As `head -1` does: one line, then the pipe is closed.
        drop(stdout);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("error"), "{args:?}: {stderr}");
    }
}

/// A UTF-16 file without its byte-order mark reads as a header of letters
/// with NUL between them: the message says which --encoding reads it (it
/// listed "unknown columns \0u\0s\0e\0r..." with no hint), and that flag
/// does.
#[test]
fn utf_16_without_a_byte_order_mark_is_named_with_the_flag_that_reads_it() {
    let text = "user_id,lang\n1,de\n";
    let big: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let little: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    for (bytes, label) in [(big, "utf-16be"), (little, "utf-16le")] {
        let refused = run_on(&bytes, &["validate", "in.csv"]);
        assert_eq!(refused.code, 2, "{}", refused.stderr);
        assert!(
            refused.stderr.contains("UTF-16 without a byte-order mark")
                && refused.stderr.contains(&format!("--encoding {label}")),
            "{}",
            refused.stderr
        );
        let read = run_on(&bytes, &["validate", "in.csv", "--encoding", label]);
        assert_eq!(read.code, 0, "{}", read.stderr);
        assert_eq!(read.row(2)["status"], "would_update");
    }
}
