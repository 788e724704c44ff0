//! Resume and crash safety, end to end: the built binary against the
//! sandbox on loopback, interrupted by SIGINT or killed with SIGKILL at
//! random moments, then run again with --resume until it is done. The
//! sandbox's counters say which users were patched, and how often.

use crate::common;

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use common::{WITHIN, kill, lang_rows, read_results_file, spawn_apply, start_sandbox, until, wait};
use gcore_iam_bulk::sandbox::{Faults, RunningSandbox};
use rand::{RngExt, SeedableRng};

async fn start(faults: Faults) -> RunningSandbox {
    start_sandbox("resume-key", 3, faults).await
}

fn spawn(dir: &Path, sandbox: &RunningSandbox, flags: &[&str]) -> Child {
    spawn_apply(dir, "in.csv", &sandbox.base_url(), sandbox.api_key(), flags)
}

async fn run(dir: &Path, sandbox: &RunningSandbox, flags: &[&str]) -> (i32, String) {
    let out = wait(spawn(dir, sandbox, flags)).await;
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every row of the results file is updated, once, in order, and the
/// sandbox holds the change of every user.
fn assert_done(dir: &Path, sandbox: &RunningSandbox, rows: u64) {
    let (results, _) = read_results_file(&dir.join("in.results.csv"));
    assert_eq!(results.len() as u64, rows);
    for (i, row) in results.iter().enumerate() {
        assert_eq!(row["row"], (i + 2).to_string(), "in input order");
        assert_eq!(row["status"], "updated", "{row:?}");
        assert_eq!(row["id"], row["user_id"], "{row:?}");
    }
    let stats = sandbox.stats();
    for id in 1..=rows {
        assert!(
            stats.patches_per_user.get(&id).copied().unwrap_or(0) >= 1,
            "user {id} was never patched"
        );
    }
    assert!(
        !dir.join("in.results.csv.journal").exists(),
        "the journal is removed when done"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_resumes_without_sending_a_row_twice() {
    let sandbox = start(Faults {
        latency_ms: 40,
        ..Faults::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), lang_rows(60)).unwrap();
    let child = spawn(
        dir.path(),
        &sandbox,
        &["--rate", "40", "--concurrency", "4"],
    );
    // Stopped once a user is patched: 1.5 s of rows at 40 a second to go.
    until("the first PATCH", WITHIN, || {
        !sandbox.stats().patches_per_user.is_empty()
    })
    .await;
    kill(child.id(), "INT");
    let out = wait(child).await;
    assert_eq!(out.status.code(), Some(130));
    let (first, _) = read_results_file(&dir.path().join("in.results.csv"));
    let updated = first.iter().filter(|r| r["status"] == "updated").count();
    assert!((1..60).contains(&updated), "{updated}");

    let before = sandbox.stats().requests;
    let flags = ["--rate", "0", "--resume", "--metrics-file", "resume.prom"];
    let (code, stderr) = run(dir.path(), &sandbox, &flags).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!("{updated} rows already updated")),
        "{stderr}"
    );
    // The resumed run's figures are its own: the kept rows' requests were
    // the first run's.
    let prom = std::fs::read_to_string(dir.path().join("resume.prom")).unwrap();
    let sent = sandbox.stats().requests - before;
    assert!(
        prom.contains(&format!(
            "gcore_iam_bulk_requests{{command=\"apply\",input=\"in.csv\"}} {sent}\n"
        )),
        "{sent} requests: {prom}"
    );
    assert_done(dir.path(), &sandbox, 60);
    let stats = sandbox.stats();
    assert!(
        stats.patches_per_user.values().all(|n| *n == 1),
        "a row was sent twice: {:?}",
        stats.patches_per_user
    );
    // Resuming a finished run sends nothing more.
    let (code, stderr) = run(dir.path(), &sandbox, &["--resume"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(sandbox.stats().requests, stats.requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_then_resume_until_done() {
    let sandbox = start(Faults {
        latency_ms: 5,
        jitter_ms: 60,
        slow_rate: 0.02,
        slow_ms: 1500,
        ..Faults::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let rows = 400;
    std::fs::write(dir.path().join("in.csv"), lang_rows(rows)).unwrap();
    let flags = ["--rate", "200", "--concurrency", "8", "--timeout", "5"];
    let mut kills = 0;
    let mut first = true;
    // The moments are random, and the same at every run of the test.
    let mut moments = rand_chacha::ChaCha8Rng::seed_from_u64(22);
    for attempt in 0..40 {
        let mut args = flags.to_vec();
        if !first {
            args.push("--resume");
        }
        first = false;
        let child = spawn(dir.path(), &sandbox, &args);
        if attempt < 4 {
            let ms = 150 + moments.random_range(0..900);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            if child_running(&child) {
                kill(child.id(), "KILL");
                kills += 1;
            }
        }
        let out = wait(child).await;
        if out.status.code() == Some(0) {
            break;
        }
    }
    assert!(kills >= 1, "no run was killed");
    assert_done(dir.path(), &sandbox, rows);
    // Repeats: at most the requests in flight and the answers of the last
    // tenth of a second, per kill (8 in flight + 200/s x 0.1 s = 28).
    let total: u64 = sandbox.stats().patches_per_user.values().sum();
    eprintln!("{kills} kills, {} repeated PATCHes", total - rows);
    assert!(
        total - rows <= kills * 28,
        "{} repeated PATCHes after {kills} kills",
        total - rows
    );
}

fn child_running(child: &Child) -> bool {
    Path::new(&format!("/proc/{}", child.id())).exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_refuses_an_input_that_is_not_the_one_recorded() {
    let sandbox = start(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), lang_rows(5)).unwrap();
    let (code, stderr) = run(dir.path(), &sandbox, &["--rate", "0"]).await;
    assert_eq!(code, 0, "{stderr}");
    let record = std::fs::read(dir.path().join("in.results.csv")).unwrap();
    let sent = sandbox.stats().requests;
    std::fs::write(
        dir.path().join("in.csv"),
        "user_id,lang\n1,ru\n2,en\n3,ru\n4,zh\n5,az\n",
    )
    .unwrap();
    let (code, stderr) = run(dir.path(), &sandbox, &["--resume"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("row 2 of in.csv is not the row the run recorded"),
        "{stderr}"
    );
    assert_eq!(sandbox.stats().requests, sent, "nothing was sent");
    assert_eq!(
        std::fs::read(dir.path().join("in.results.csv")).unwrap(),
        record,
        "the record is untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_with_no_record_is_a_fresh_run_and_sends_failed_and_new_rows() {
    let sandbox = start(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    // Users 1001 and 1002 do not exist: failed with 404.
    std::fs::write(
        dir.path().join("in.csv"),
        "user_id,lang\n1,de\n1001,de\n2,en\n",
    )
    .unwrap();
    let (code, stderr) = run(dir.path(), &sandbox, &["--resume", "--rate", "0"]).await;
    assert_eq!(code, 1, "{stderr}");
    // Said (a forgotten -o of the first run looks the same), then not again.
    assert!(
        stderr.contains("note: --resume: no record in in.results.csv yet, so this is a fresh run"),
        "{stderr}"
    );
    // The failed row is fixed and a row is added at the end.
    std::fs::write(
        dir.path().join("in.csv"),
        "user_id,lang\n1,de\n3,de\n2,en\n4,ru\n",
    )
    .unwrap();
    let (code, stderr) = run(dir.path(), &sandbox, &["--resume", "--rate", "0"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("no record"), "{stderr}");
    assert_done_rows(dir.path(), &["1", "3", "2", "4"]);
    let stats = sandbox.stats();
    for id in [1, 2, 3, 4] {
        assert_eq!(stats.patches_per_user.get(&id), Some(&1), "user {id}");
    }
}

fn assert_done_rows(dir: &Path, user_ids: &[&str]) {
    let (results, _) = read_results_file(&dir.join("in.results.csv"));
    let got: Vec<(&str, &str)> = results
        .iter()
        .map(|r| (r["user_id"].as_str(), r["status"].as_str()))
        .collect();
    let want: Vec<(&str, &str)> = user_ids.iter().map(|id| (*id, "updated")).collect();
    assert_eq!(got, want);
}

/// A journal with rows is the record of a run that sent requests even when
/// the results file has no row yet (the first row was slow when the run was
/// killed): no command replaces it without --overwrite, and --resume keeps
/// its rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_alone_is_a_record_no_command_replaces() {
    let sandbox = start(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), lang_rows(6)).unwrap();
    let (code, stderr) = run(dir.path(), &sandbox, &["--rate", "0"]).await;
    assert_eq!(code, 0, "{stderr}");
    // As a crash leaves it: the answers in the journal, the results file
    // with its header only.
    let results = dir.path().join("in.results.csv");
    let text = std::fs::read_to_string(&results).unwrap();
    let header = text.lines().next().unwrap();
    std::fs::write(dir.path().join("in.results.csv.journal"), &text).unwrap();
    std::fs::write(&results, format!("{header}\n")).unwrap();
    let sent = sandbox.stats().requests;
    for args in [&["--rate", "0"][..], &["--dry-run"][..]] {
        let (code, stderr) = run(dir.path(), &sandbox, args).await;
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains("records a run that sent requests"),
            "{stderr}"
        );
    }
    let (code, stderr) = run(dir.path(), &sandbox, &["--resume"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("6 rows already updated"), "{stderr}");
    assert_eq!(sandbox.stats().requests, sent, "nothing sent again");
    assert_done(dir.path(), &sandbox, 6);
}

/// --resume refuses an input that lost a row the earlier run updated:
/// removed at the end, the file cut to its header, or the row now blank.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_refuses_an_input_that_lost_an_updated_row() {
    let sandbox = start(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let full = lang_rows(5);
    std::fs::write(dir.path().join("in.csv"), &full).unwrap();
    let (code, stderr) = run(dir.path(), &sandbox, &["--rate", "0"]).await;
    assert_eq!(code, 0, "{stderr}");
    let record = std::fs::read(dir.path().join("in.results.csv")).unwrap();
    let lines: Vec<&str> = full.lines().collect();
    let cases = [
        (lines[..5].join("\n") + "\n", 6),
        ("user_id,lang\n".to_string(), 2),
        (
            format!("{}\n{}\n\n{}\n{}\n", lines[0], lines[1], lines[3], lines[4]) + lines[5],
            3,
        ),
    ];
    for (input, row) in cases {
        std::fs::write(dir.path().join("in.csv"), &input).unwrap();
        let (code, stderr) = run(dir.path(), &sandbox, &["--resume"]).await;
        assert_eq!(code, 2, "{input:?}: {stderr}");
        assert!(
            stderr.contains(&format!("row {row} was updated by the run recorded in")),
            "{input:?}: {stderr}"
        );
        assert_eq!(
            std::fs::read(dir.path().join("in.results.csv")).unwrap(),
            record
        );
    }
}

/// A resume with another account (another base URL, or the same URL with
/// another key: another --profile) is refused before anything is sent: the
/// kept rows are the first account's. The record keeps the key only as a
/// salted HMAC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_refuses_another_account_than_the_records() {
    let first = start(Faults::default()).await;
    let second = start_sandbox("another-accounts-key", 3, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "user_id,lang\n1,de\n1001,de\n").unwrap();
    let (code, stderr) = run(dir.path(), &first, &["--rate", "0"]).await;
    assert_eq!(code, 1, "{stderr}");
    let kept = std::fs::read_to_string(dir.path().join("in.results.csv.account")).unwrap();
    assert!(
        kept.contains(&first.base_url().trim_end_matches('/').to_string()),
        "{kept}"
    );
    assert!(!kept.contains(first.api_key()), "{kept}");

    let other_url = spawn_apply(
        dir.path(),
        "in.csv",
        &second.base_url(),
        second.api_key(),
        &["--resume", "--rate", "0"],
    );
    let out = wait(other_url).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("records a run against http://127.0.0.1:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("give the same --profile or key"),
        "{stderr}"
    );

    let other_key = spawn_apply(
        dir.path(),
        "in.csv",
        &first.base_url(),
        "another-accounts-key",
        &["--resume", "--rate", "0"],
    );
    let out = wait(other_key).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("another API key than this run's (key from GCORE_API_KEY)"),
        "{stderr}"
    );
    assert_eq!(
        second.stats().patches_per_user.len(),
        0,
        "nothing sent to the other"
    );

    std::fs::write(dir.path().join("in.csv"), "user_id,lang\n1,de\n2,de\n").unwrap();
    let (code, stderr) = run(dir.path(), &first, &["--resume", "--rate", "0"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_done_rows(dir.path(), &["1", "2"]);
}

/// A results file whose rows were sorted since (by status, in a
/// spreadsheet) is refused for what it is: it was blamed on the input
/// ("row 2 was updated ... and in.csv no longer has it"), whose fix, a
/// start over with --overwrite, throws the record away (hostile round,
/// 2026-12-06).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_results_file_sorted_since_is_refused_as_out_of_order() {
    let sandbox = start(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    // User 1001 does not exist: failed, so a resume has rows to send.
    std::fs::write(
        dir.path().join("in.csv"),
        "user_id,lang\n1,de\n1001,de\n2,en\n",
    )
    .unwrap();
    let (code, stderr) = run(dir.path(), &sandbox, &["--rate", "0"]).await;
    assert_eq!(code, 1, "{stderr}");
    let path = dir.path().join("in.results.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    // Sorted by status: failed first.
    lines[1..].sort_by_key(|line| !line.contains(",failed,"));
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let before = sandbox.stats().requests;
    let (code, stderr) = run(dir.path(), &sandbox, &["--resume", "--rate", "0"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("row 2 comes after row 3 in it: its rows are no longer in the order"),
        "{stderr}"
    );
    assert!(!stderr.contains("no longer has it"), "{stderr}");
    assert_eq!(sandbox.stats().requests, before, "nothing sent");
}

/// A reviewed plan named as the record of `--resume` is refused and left
/// as it is: it was read as a record that kept no row, and replaced by the
/// run's results (hostile round, 2026-12-06).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_named_as_the_record_to_resume_is_refused_and_kept() {
    let sandbox = start(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "user_id,lang\n1,de\n2,en\n").unwrap();
    let mut plan = common::command_in(dir.path(), sandbox.api_key());
    plan.args(["plan", "in.csv", "--base-url", &sandbox.base_url()]);
    let planned = tokio::task::spawn_blocking(move || plan.output().unwrap())
        .await
        .unwrap();
    assert_eq!(
        planned.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&planned.stderr)
    );
    let plan_path = dir.path().join("in.plan.csv");
    let reviewed = std::fs::read(&plan_path).unwrap();
    let before = sandbox.stats().requests;
    let flags = ["--resume", "-o", "in.plan.csv", "--rate", "0"];
    let (code, stderr) = run(dir.path(), &sandbox, &flags).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("it is a plan (written by plan"), "{stderr}");
    assert_eq!(
        std::fs::read(&plan_path).unwrap(),
        reviewed,
        "the plan is kept"
    );
    assert_eq!(sandbox.stats().requests, before, "nothing sent");
}
