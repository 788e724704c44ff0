//! Reading the account's list, end to end with the built binary and the
//! sandbox's list faults (issue 20): a count no account has is refused at
//! once in bounded memory, an account that changes while its pages are read
//! is read again (or the run says so and writes nothing), `plan` falls back
//! to a GET per row, and a field the list leaves out is never taken as null.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use common::{BIN, read_results_file};
use gcore_iam_bulk::model::api::User;
use gcore_iam_bulk::sandbox::{Faults, RunningSandbox, SandboxConfig};

const KEY: &str = "account-reads-test-key-0123";

async fn sandbox(faults: Faults) -> RunningSandbox {
    let config = SandboxConfig {
        users: 1000,
        api_key: KEY.to_string(),
        seed: 20,
        faults,
        given: None,
    };
    gcore_iam_bulk::sandbox::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// The command `gcore-iam-bulk ARGS --base-url ... --rate 0` in `dir`,
/// with a clean environment. Its address space is capped at 1 GiB and its
/// CPU time at 60 s: a run that allocates as the API's count says, or reads
/// pages without end, fails instead of taking the machine down.
fn command(sandbox: &RunningSandbox, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    common::clean(&mut cmd);
    cmd.current_dir(dir)
        .arg("-c")
        .arg("ulimit -v 1048576 && ulimit -t 60 && exec \"$0\" \"$@\"")
        .arg(BIN)
        .args(args)
        .args(["--base-url", &sandbox.base_url(), "--rate", "0"])
        .env("GCORE_API_KEY", KEY)
        .env_remove("GCORE_BASE_URL")
        .env_remove("GCORE_PROFILE")
        .env_remove("HTTPS_PROXY")
        .env_remove("HTTP_PROXY")
        .env_remove("ALL_PROXY");
    cmd
}

async fn run(sandbox: &RunningSandbox, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = command(sandbox, dir, args);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The user as `GET /iam/users/{id}` shows it (the list may leave fields out).
async fn get_user(sandbox: &RunningSandbox, id: u64) -> User {
    common::http()
        .get(format!("{}/iam/users/{id}", sandbox.base_url()))
        .header("Authorization", format!("apikey {KEY}"))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The exported file's rows: `user_id` -> the row's cells by column.
fn exported(dir: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(dir.join("users.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    reader
        .records()
        .map(|record| {
            header
                .iter()
                .cloned()
                .zip(record.unwrap().iter().map(String::from))
                .collect()
        })
        .collect()
}

fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_count_no_account_has_is_refused_at_once_in_bounded_memory() {
    let sandbox = sandbox(Faults {
        list_count: Some(1_000_000_000_000),
        ..Faults::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let output = run(&sandbox, dir.path(), &["export"]).await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("the account's list counts 1000000000000 users")
            && text.contains("more than the 1000000 this tool reads"),
        "{text}"
    );
    assert!(text.contains("nothing written to users.csv"), "{text}");
    assert!(files_in(dir.path()).is_empty());
    // One page read, no more.
    assert_eq!(sandbox.stats().requests, 1);

    // Rows by current_email need the list: the run stops before sending.
    let address = get_user(&sandbox, 3).await.email.unwrap();
    std::fs::write(
        dir.path().join("in.csv"),
        format!("current_email,lang\n{address},de\n"),
    )
    .unwrap();
    let before = sandbox.stats().requests;
    let output = run(&sandbox, dir.path(), &["plan", "in.csv"]).await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("the rows name users by current_email")
            && text.contains("counts 1000000000000 users"),
        "{text}"
    );
    assert_eq!(sandbox.stats().requests - before, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_pages_than_the_bound_are_refused_before_any_is_read() {
    // A million users (no more than the bound) in pages of 5: 250,000 pages.
    let sandbox = sandbox(Faults {
        list_count: Some(1_000_000),
        ..Faults::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let output = run(&sandbox, dir.path(), &["export", "--page-size", "5"]).await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("more than the 100000 pages this tool reads") && text.contains("--page-size"),
        "{text}"
    );
    assert!(files_in(dir.path()).is_empty());
    assert_eq!(sandbox.stats().requests, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_count_the_pages_cannot_deliver_writes_nothing() {
    // 5,000 said, 1,000 there: the pages past the thousandth user are empty.
    let sandbox = sandbox(Faults {
        list_count: Some(5000),
        ..Faults::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let output = run(&sandbox, dir.path(), &["export"]).await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("nothing written to users.csv"), "{text}");
    assert!(
        text.contains("the page at offset 998 came back with 2 users where 500 were due"),
        "{text}"
    );
    assert!(files_in(dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_reads_again_when_the_account_changes_between_pages() {
    let sandbox = sandbox(Faults {
        list_churn: 1,
        ..Faults::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let output = run(&sandbox, dir.path(), &["export"]).await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("reading it again"), "{text}");
    assert!(text.contains("exported 1000 users"), "{text}");
    // Every user, once: the read that moved was thrown away.
    let ids: Vec<u64> = exported(dir.path())
        .iter()
        .map(|row| row["user_id"].parse().unwrap())
        .collect();
    assert_eq!(ids, (1..=1000).collect::<Vec<u64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_of_an_account_that_never_settles_writes_nothing() {
    let sandbox = sandbox(Faults {
        list_churn: 1000,
        ..Faults::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        &sandbox,
        dir.path(),
        &["export", "--summary-json", "s.json"],
    )
    .await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("nothing written to users.csv"), "{text}");
    assert!(
        text.contains("the account changed while its list was read, 3 times"),
        "{text}"
    );
    assert!(!text.contains("exported"), "{text}");
    assert_eq!(files_in(dir.path()), ["s.json"]);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("s.json")).unwrap()).unwrap();
    assert_eq!(summary["users"], serde_json::Value::Null);
    assert_eq!(summary["exit_code"], 1);
}

/// `user_id,lang` rows for users 1..=300, half of them a change.
async fn lang_rows(sandbox: &RunningSandbox) -> (String, Vec<&'static str>) {
    let mut input = String::from("user_id,lang\n");
    let mut expected = Vec::new();
    for id in 1..=300 {
        let lang = get_user(sandbox, id).await.lang.unwrap();
        let (lang, status) = match id % 2 {
            0 => (lang.clone(), "unchanged"),
            _ => (
                if lang == "de" { "en" } else { "de" }.to_string(),
                "would_update",
            ),
        };
        input.push_str(&format!("{id},{lang}\n"));
        expected.push(status);
    }
    (input, expected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_falls_back_to_a_get_per_row_when_the_list_moves() {
    let sandbox = sandbox(Faults {
        list_churn: 1000,
        ..Faults::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (input, expected) = lang_rows(&sandbox).await;
    std::fs::write(dir.path().join("many.csv"), input).unwrap();
    let before = sandbox.stats().requests;
    let output = run(&sandbox, dir.path(), &["plan", "many.csv"]).await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("the account changed while its list was read")
            && text.contains("one GET for each row"),
        "{text}"
    );
    let (rows, _) = read_results_file(&dir.path().join("many.plan.csv"));
    let got: Vec<&str> = rows.iter().map(|r| r["status"].as_str()).collect();
    assert_eq!(got, expected);
    // Each row was read on its own, after the list's three pages.
    assert!(rows.iter().all(|r| r["http_status"] == "200"), "{rows:?}");
    assert_eq!(sandbox.stats().requests - before, 3 + 300);
    assert!(!sandbox.stats().by_method_status.contains_key("PATCH"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_by_email_read_the_list_again_or_stop_before_sending() {
    // The first read moves; the second is whole: user 501 (who a reader
    // paging by offset misses on the first read) is resolved.
    let sandbox = sandbox(Faults {
        list_churn: 1,
        ..Faults::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let address = get_user(&sandbox, 501).await.email.unwrap();
    std::fs::write(
        dir.path().join("in.csv"),
        format!("current_email,lang\n{address},de\n"),
    )
    .unwrap();
    let output = run(&sandbox, dir.path(), &["plan", "in.csv"]).await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("reading it again"), "{text}");
    let (rows, _) = read_results_file(&dir.path().join("in.plan.csv"));
    assert_eq!(rows[0]["user_id"], "501", "{rows:?}");

    // An account that never settles: nothing is sent, and the run says why.
    let sandbox = self::sandbox(Faults {
        list_churn: 1000,
        ..Faults::default()
    })
    .await;
    let output = run(&sandbox, dir.path(), &["apply", "in.csv", "-o", "a.csv"]).await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("the rows name users by current_email")
            && text.contains("the account changed while its list was read, 3 times")
            && text.contains("nothing was sent"),
        "{text}"
    );
    assert!(!sandbox.stats().by_method_status.contains_key("PATCH"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_the_list_leaves_out_is_read_by_get_never_taken_as_null() {
    let sandbox = sandbox(Faults {
        list_omit: vec!["phone".to_string()],
        ..Faults::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    // 300 rows (the list is read: 3 requests, not 300) setting each phone
    // to the one the user has: every row unchanged.
    let mut input = String::from("user_id,phone\n");
    let mut with_phone = 0;
    for id in 1..=300 {
        let phone = get_user(&sandbox, id).await.phone;
        with_phone += u32::from(phone.is_some());
        input.push_str(&format!(
            "{id},{}\n",
            phone.unwrap_or_else(|| "#null".to_string())
        ));
    }
    assert!(with_phone > 100, "{with_phone}");
    std::fs::write(dir.path().join("phones.csv"), input).unwrap();
    let output = run(&sandbox, dir.path(), &["plan", "phones.csv"]).await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("reading the account's 1000 users"), "{text}");
    let (rows, _) = read_results_file(&dir.path().join("phones.plan.csv"));
    assert_eq!(rows.len(), 300);
    assert!(
        rows.iter().all(|r| r["status"] == "unchanged"),
        "{:?}",
        rows.iter().find(|r| r["status"] != "unchanged")
    );

    let output = run(
        &sandbox,
        dir.path(),
        &["apply", "phones.csv", "--skip-unchanged"],
    )
    .await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    let (rows, _) = read_results_file(&dir.path().join("phones.results.csv"));
    assert!(
        rows.iter().all(|r| r["status"] == "unchanged"),
        "{:?}",
        rows.iter().find(|r| r["status"] != "unchanged")
    );
    assert!(!sandbox.stats().by_method_status.contains_key("PATCH"));

    // The export writes each user's true phone.
    let output = run(&sandbox, dir.path(), &["export"]).await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("exported 1000 users"), "{text}");
    let rows = exported(dir.path());
    assert_eq!(rows.len(), 1000);
    for id in [1, 2, 3, 500, 999, 1000] {
        let phone = get_user(&sandbox, id).await.phone;
        assert_eq!(
            rows[id as usize - 1]["phone"],
            phone.unwrap_or_else(|| "#null".to_string()),
            "user {id}"
        );
    }
    let with_phone = rows.iter().filter(|r| r["phone"] != "#null").count();
    assert!(with_phone > 400, "{with_phone}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_entries_without_an_id_fail_the_export() {
    let sandbox = sandbox(Faults {
        list_omit: vec!["id".to_string()],
        ..Faults::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let output = run(&sandbox, dir.path(), &["export"]).await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("nothing written to users.csv"), "{text}");
    assert!(
        text.contains("1000 entries of the account's list have no id"),
        "{text}"
    );
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn the_list_faults_are_flags_of_the_sandbox_command() {
    let output = common::bin()
        .args([
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "--list-omit",
            "phone,nope",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.contains("--list-omit \"nope\" is not a field of the user object"),
        "{text}"
    );
}

/// Ctrl-C while the account's list is read stops the run as a signal
/// does (exit 130, nothing sent), not as a list that cannot be read (2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_while_the_list_is_read_exits_130() {
    let sandbox = sandbox(Faults {
        latency_ms: 600,
        ..Faults::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), common::lang_rows(40)).unwrap();
    let mut child = common::bin()
        .current_dir(dir.path())
        .args([
            "plan",
            "in.csv",
            "--rate",
            "0",
            "--base-url",
            &sandbox.base_url(),
        ])
        .env("GCORE_API_KEY", KEY)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    // The count came back; the list's second page is on its way.
    let said = tokio::task::spawn_blocking(move || {
        let said =
            common::read_until_line(&mut stderr, "reading the account's 1000 users by pages");
        (said, stderr)
    })
    .await
    .unwrap();
    common::kill(child.id(), "INT");
    let (said, mut stderr) = said;
    let out = common::wait(child).await;
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert_eq!(out.status.code(), Some(130), "{said}{rest}");
    assert!(
        rest.contains("stopped while the account's list was read, before any row was sent"),
        "{said}{rest}"
    );
    // Not said as read (it said "read the account's list: 1000 users").
    assert!(!rest.contains("read the account's list"), "{said}{rest}");
    let stats = sandbox.stats();
    assert_eq!(stats.by_method_status.get("PATCH"), None);
}

/// SIGTERM while the users are read one by one before anything is sent (an
/// undo file needs the fields the list leaves out) stops the run as a
/// signal does: 143, nothing sent, and the same command runs again. (It
/// ended with 2, "the users could not be read".)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_the_users_are_read_before_sending_exits_143() {
    let sandbox = sandbox(Faults {
        latency_ms: 150,
        list_omit: vec!["phone".to_string()],
        ..Faults::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let rows: String = (2..20).map(|id| format!("{id},+1 555 {id}\n")).collect();
    std::fs::write(dir.path().join("in.csv"), format!("user_id,phone\n{rows}")).unwrap();
    let args = ["apply", "in.csv", "--undo-file", "undo.csv", "--rate", "0"];
    let mut child = common::bin()
        .current_dir(dir.path())
        .args(args)
        .args(["--base-url", &sandbox.base_url()])
        .env("GCORE_API_KEY", KEY)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap());
    let said = tokio::task::spawn_blocking(move || {
        let said = common::read_until_line(&mut lines, "before anything is sent, to check");
        (said, lines)
    })
    .await
    .unwrap();
    common::kill(child.id(), "TERM");
    let (said, mut lines) = said;
    let out = common::wait(child).await;
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut lines, &mut rest).unwrap();
    assert_eq!(out.status.code(), Some(143), "{said}{rest}");
    assert!(
        rest.contains("stopped while the users were read before sending, before any row was sent"),
        "{said}{rest}"
    );
    assert_eq!(sandbox.stats().by_method_status.get("PATCH"), None);
    // The same command again: not blocked by what the stopped run left.
    let mut again = common::bin();
    again
        .current_dir(dir.path())
        .args(args)
        .args(["--base-url", &sandbox.base_url()])
        .env("GCORE_API_KEY", KEY);
    let out = tokio::task::spawn_blocking(move || again.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Runs that only read the account (`export`, `plan`, the latter with rows
/// that each need a GET of their own: users the list does not show) end
/// quietly with exit 0 when the reader of `-o -` stops early (`| head -1`).
/// They ended with exit 2 (`export`) and with exit 74 saying "the changes
/// those requests made are in effect" (`plan`: its GETs were counted as
/// changes) (hostile round, 2026-12-06).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_only_reads_ends_quietly_when_the_reader_of_dash_o_stops_early() {
    let sandbox = sandbox(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    // 1,200 rows: the first 200 name users the account does not have, whose
    // GETs go out before the results are written.
    let rows: String = (1001..=1200)
        .chain(1..=1000)
        .map(|id| format!("{id},de\n"))
        .collect();
    std::fs::write(dir.path().join("in.csv"), format!("user_id,lang\n{rows}")).unwrap();
    for args in [
        &["export", "-o", "-"][..],
        &["plan", "in.csv", "-o", "-"][..],
    ] {
        let mut cmd = command(&sandbox, dir.path(), args);
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let output = tokio::task::spawn_blocking(move || {
            let mut child = cmd.spawn().unwrap();
            let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
            let mut first = String::new();
            std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
            assert!(!first.is_empty(), "a line of results");
            // As `head -1` does: one line, then the pipe is closed.
            drop(stdout);
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap();
        let stderr = stderr(&output);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("error"), "{args:?}: {stderr}");
    }
}

/// An `action` column whose cells invite nobody (every undo file has one,
/// mostly empty) reads no list of the account: it read the whole list,
/// saying "the rows invite users" (hostile round, 2026-12-06).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_column_that_invites_nobody_reads_no_list() {
    let sandbox = sandbox(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.csv"),
        "user_id,lang,action\n3,de,\n4,en,Update\n",
    )
    .unwrap();
    let output = run(&sandbox, dir.path(), &["apply", "in.csv"]).await;
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("reading the account"), "{stderr}");
    let (results, _) = read_results_file(&dir.path().join("in.results.csv"));
    assert_eq!(results.len(), 2);
    assert!(
        results.iter().all(|row| row["status"] == "updated"),
        "{results:?}"
    );
    // Two PATCHes, and nothing else: no page of the list.
    assert_eq!(sandbox.stats().requests, 2, "{stderr}");
}
