//! Throttles that are not about the run's rate (issue 25, items 1, 2 and
//! 4), and server errors that are, over HTTP against the sandbox: the
//! wiring of `policy::slowdown` and `policy::overload` into the
//! dispatcher. The controller's figures are the simulation's
//! (`policy::simulated`) and the benchmark's (`bench/rate.sh`); these tests
//! count what the run did (drops of the rate, pauses, requests, rows).

use gcore_iam_bulk::sandbox::Faults;

use crate::apply_sandbox::{Run, apply, patches_with, start};
use crate::common::lang_rows;

fn count(run: &Run, key: &str) -> u64 {
    run.summary[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key}: {}", run.summary))
}

fn pauses(run: &Run) -> usize {
    run.stderr.matches("pausing all requests").count()
}

/// Every 25th user always answered 429: those rows fail on their own after
/// their retries, saying so, and the others go on at the run's rate: the
/// rate is lowered at most once (a 429 in the first 50 answers cannot be
/// told from a limit) instead of at every throttled attempt (issue 25:
/// every 50th user took the run to 2 rows/s and the 0.5/s floor).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_throttled_on_their_own_fail_alone_and_the_rate_holds() {
    let sandbox = start(Faults {
        throttle_every: Some(25),
        ..Faults::default()
    })
    .await;
    let run = apply(
        Some(&sandbox),
        &lang_rows(300),
        &["--rate", "200", "--burst", "5", "--max-retries", "3"],
    )
    .await;
    assert_eq!(run.code, 1, "rows failed: {}", run.stderr);
    for row in &run.results {
        let id: u64 = row["user_id"].parse().unwrap();
        if id.is_multiple_of(25) {
            assert_eq!(row["status"], "failed", "{row:?}");
            assert!(
                row["error"].contains("throttled each time while other rows went through"),
                "{row:?}"
            );
            assert_eq!(row["attempts"], "4", "{row:?}");
        } else {
            assert_eq!(row["status"], "updated", "{row:?}");
        }
    }
    // Four attempts of each of the 12, and nothing else throttled.
    assert_eq!(patches_with(&sandbox.stats(), 429), 48);
    assert!(count(&run, "rate_drops") <= 1, "{}", run.summary);
    assert!(pauses(&run) <= 1, "{}", run.stderr);
}

/// 2% of requests answered 429 at random, whatever the rate: the run keeps
/// its rate (issue 25: `--rate 100` averaged 8.8-12.9 rows/s when each
/// such 429 lowered it and paused the run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_429s_leave_the_rate_alone() {
    let sandbox = start(Faults {
        throttle_share: 0.02,
        ..Faults::default()
    })
    .await;
    let run = apply(
        Some(&sandbox),
        &lang_rows(1000),
        &["--rate", "400", "--burst", "5"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.results.iter().all(|row| row["status"] == "updated"));
    let throttled = count(&run, "throttled");
    assert!(throttled >= 5, "the noise was met: {}", run.summary);
    // A 429 among the first 50 answers is taken for a limit; none after.
    assert!(count(&run, "rate_drops") <= 1, "{}", run.summary);
    assert!(pauses(&run) <= 1, "{}", run.stderr);
}

/// A quota of 30 requests in each window of 3 s, answered 429 without
/// `Retry-After` when spent: the run waits for the next window (its pauses
/// growing from 0.5 s), rows do not spend their retries waiting, and
/// nothing says the account is blocked (issue 25: ten 429s in a row ended
/// the run 29 s into a per-minute quota).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_window_without_retry_after_is_waited_out() {
    let sandbox = start(Faults {
        window: Some((30, 3.0)),
        ..Faults::default()
    })
    .await;
    let run = apply(
        Some(&sandbox),
        &lang_rows(75),
        &["--rate", "100", "--burst", "5", "--max-retries", "2"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.results.iter().all(|row| row["status"] == "updated"));
    assert!(!run.stderr.contains("only 429"), "{}", run.stderr);
    assert!(count(&run, "throttled") >= 2, "{}", run.summary);
    // The rate lowered once for the quota, not once a burst.
    assert!(count(&run, "rate_drops") <= 3, "{}", run.summary);
}

/// Two runs of one account at once (one state folder, one key): the second
/// finds the first through its lease and both take half of the limit the
/// first met; when the second ends, the first takes the whole limit again
/// (issue 25, item 7). Waits on events: the first's lease holding a limit,
/// the processes' ends. The rows/s figures are the simulation's
/// (`policy::simulated::two_runs_of_one_account_split_its_limit`) and the
/// benchmark's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_of_one_account_split_its_limit() {
    let sandbox = start(Faults {
        rate: Some((100.0, 5)),
        ..Faults::default()
    })
    .await;
    let state = tempfile::tempdir().unwrap();
    let runs = state.path().join("gcore-iam-bulk/runs");
    let spawn = |rows: u64, name: &str| {
        let dir = state.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("in.csv"), lang_rows(rows)).unwrap();
        crate::common::command_in(&dir, sandbox.api_key())
            .args(["apply", "in.csv", "--base-url", &sandbox.base_url()])
            .args(["--rate", "150", "--burst", "5", "--max-retries", "10"])
            .env("XDG_STATE_HOME", state.path())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = spawn(600, "first");
    // The first's lease says the limit it met (its first 429s).
    let met = std::time::Instant::now();
    loop {
        let leases: Vec<String> = std::fs::read_dir(&runs)
            .map(|dir| {
                dir.flatten()
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        if leases
            .iter()
            .any(|lease| lease.contains("\"limit\":") && !lease.contains("\"limit\":null"))
        {
            break;
        }
        assert!(
            met.elapsed() < crate::common::WITHIN,
            "no limit met: {leases:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let second = spawn(150, "second");
    let wait = |child: std::process::Child| {
        tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
    };
    let second = wait(second).await.unwrap();
    let first = wait(first).await.unwrap();
    let (first_err, second_err) = (
        String::from_utf8_lossy(&first.stderr),
        String::from_utf8_lossy(&second.stderr),
    );
    assert_eq!(second.status.code(), Some(0), "{second_err}");
    assert_eq!(first.status.code(), Some(0), "{first_err}");
    for stderr in [&first_err, &second_err] {
        assert!(
            stderr.contains("rate: 1 other run of this account is running: this run takes"),
            "{stderr}"
        );
    }
    assert!(
        first_err.contains("rate: the other runs of this account ended: this run takes its whole"),
        "{first_err}"
    );
    // Both gone: no lease is left behind.
    assert_eq!(std::fs::read_dir(&runs).unwrap().count(), 0);
}

/// A server that says the exact wait in `retry-after-ms` (a few
/// milliseconds): the run's pause ends at once, so the 429s after it are
/// the lowered rate's, not the same burst, and lower it again: under 5% of
/// the requests of the first 150 rows are answered 429 (issue 25, item 11:
/// 6.7% in the first seconds; 16% of them when every 429 of the second
/// after a drop counted as that drop's burst).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_ms_keeps_429s_under_five_percent() {
    let sandbox = start(Faults {
        rate: Some((100.0, 5)),
        retry_after_ms: true,
        ..Faults::default()
    })
    .await;
    let run = apply(
        Some(&sandbox),
        &lang_rows(150),
        &["--rate", "150", "--burst", "5", "--max-retries", "10"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let stats = sandbox.stats();
    let throttled = patches_with(&stats, 429);
    assert!(throttled >= 1, "the limit was met: {stats:?}");
    eprintln!("{throttled} of {} answered 429", stats.requests);
    assert!(
        throttled * 20 < stats.requests,
        "{throttled} of {} answered 429",
        stats.requests
    );
}

/// A server that fails under load (beyond 50 requests a second, 503
/// without `Retry-After`): its errors rise with the rate, and lower it as
/// 429s do. Before, `--rate 150` sent at 150/s to the end, 64% of requests
/// answered 503 and rows failed after their retries; a server failing a
/// fifth of requests whatever the rate lowers it once or twice, then no
/// more (every error taken for the rate's would take it to the floor).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_that_rise_with_the_rate_lower_it() {
    let sandbox = start(Faults {
        rate: Some((50.0, 5)),
        rate_status: Some(503),
        no_retry_after: true,
        ..Faults::default()
    })
    .await;
    let flags = ["--rate", "150", "--burst", "5", "--max-retries", "5"];
    let run = apply(Some(&sandbox), &lang_rows(300), &flags).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let errors = patches_with(&sandbox.stats(), 503);
    assert!(errors >= 10, "the limit was met: {}", run.summary);
    assert!(errors < 150, "{errors} answered 503: {}", run.summary);
    assert!(count(&run, "rate_drops") >= 1, "{}", run.summary);
    assert_eq!(pauses(&run), 0, "no wait was asked: {}", run.stderr);
    // With no limit (`--rate 0`) the first drops come while doubling,
    // which keeps half the rate: only a drop below what went through
    // tells the server's own errors apart (rows failed before that).
    let sandbox = start(Faults {
        rate: Some((50.0, 5)),
        rate_status: Some(503),
        no_retry_after: true,
        ..Faults::default()
    })
    .await;
    let flags = ["--rate", "0", "--max-retries", "5"];
    let run = apply(Some(&sandbox), &lang_rows(300), &flags).await;
    assert_eq!(run.code, 0, "{}", run.stderr);

    let sandbox = start(Faults {
        error_rate: 0.2,
        ..Faults::default()
    })
    .await;
    let flags = ["--rate", "200", "--burst", "5", "--max-retries", "10"];
    let run = apply(Some(&sandbox), &lang_rows(600), &flags).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Once or twice: a drop in the first half second cannot measure what
    // went through, and errors after it may lower the rate once more.
    let drops = count(&run, "rate_drops");
    assert!((1..=2).contains(&drops), "{}", run.summary);
}
