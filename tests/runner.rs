//! The dispatch loop and the ordered writer in-process, with a fake attempt in
//! place of HTTP: the reorder window, cancellation, the rate, giving up.
//! Timing assertions are one-sided and wide.

use std::future::Future;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gcore_iam_bulk::api::User;
use gcore_iam_bulk::client::Answer;
use gcore_iam_bulk::config::{OutputTarget, RunConfig};
use gcore_iam_bulk::results::{self, Progress, ProgressMode, ResultsWriter, Summary};
use gcore_iam_bulk::runner::{self, Channels, Job, Rate, RetryPolicy, Work};
use tokio::sync::{mpsc, watch};

fn config(concurrency: usize, window: usize) -> RunConfig {
    RunConfig {
        concurrency: NonZeroUsize::new(concurrency).unwrap(),
        rate: Rate::unlimited(),
        retry: RetryPolicy {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(5),
            ..RetryPolicy::default()
        },
        window: NonZeroUsize::new(window).unwrap(),
        skip_invalid: false,
        summary_json: None,
    }
}

fn job(seq: u64) -> Job {
    Job {
        seq,
        row: seq + 2,
        user_id: seq + 1,
        user_id_text: (seq + 1).to_string(),
        request: r#"{"lang":"en"}"#.to_string(),
        attempts: 0,
        throttled: 0,
        last_failure: None,
    }
}

fn ok(user_id: u64) -> Answer {
    Answer::Updated {
        status: 200,
        user: Ok(Box::new(User {
            id: Some(user_id),
            ..User::default()
        })),
    }
}

fn unavailable(retry_after: Option<Duration>, status: u16) -> Answer {
    Answer::Retryable {
        status: Some(status),
        retry_after,
        error: format!("HTTP {status}"),
    }
}

/// Runs `rows` rows through the dispatcher and the writer; returns the
/// results file as (status, attempts, error) per row, and the summary.
async fn pipeline<A, F>(
    config: RunConfig,
    rows: u64,
    attempt: A,
    cancel: impl Future<Output = ()>,
) -> (Vec<(String, String, String)>, Summary)
where
    A: Fn(&Job) -> F,
    F: Future<Output = Answer> + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.csv");
    let writer = ResultsWriter::create(&OutputTarget::File(path.clone())).unwrap();
    let (work_tx, work_rx) = mpsc::channel(8);
    let (report_tx, report_rx) = std_mpsc::channel();
    let (written_tx, written_rx) = watch::channel(0);
    let progress = Progress::new(ProgressMode::Quiet, rows);
    let writer = std::thread::spawn(move || {
        results::write_in_order(writer, report_rx, written_tx, progress)
    });
    let feeder = tokio::spawn(async move {
        for seq in 0..rows {
            if work_tx.send(vec![Work::Send(job(seq))]).await.is_err() {
                break;
            }
        }
    });
    let channels = Channels {
        work: work_rx,
        reports: report_tx,
        written: written_rx,
    };
    runner::dispatch(&config, attempt, channels, cancel).await;
    feeder.await.unwrap();
    let summary = writer.join().unwrap().unwrap();
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.unwrap();
        assert_eq!(
            &record[0],
            (i as u64 + 2).to_string(),
            "rows in input order"
        );
        out.push((
            record[2].to_string(),
            record[4].to_string(),
            record[5].to_string(),
        ));
    }
    (out, summary)
}

fn never() -> impl Future<Output = ()> {
    std::future::pending()
}

#[tokio::test]
async fn a_row_in_a_long_retry_holds_only_the_rows_beyond_the_window() {
    let order = Arc::new(Mutex::new(Vec::new()));
    let attempt = {
        let order = Arc::clone(&order);
        move |job: &Job| {
            order.lock().unwrap().push(job.seq);
            let (seq, first) = (job.seq, job.attempts == 0);
            async move {
                if seq == 0 && first {
                    unavailable(Some(Duration::from_millis(300)), 503)
                } else {
                    ok(seq + 1)
                }
            }
        }
    };
    let (rows, _) = pipeline(config(8, 4), 12, attempt, never()).await;
    assert!(rows.iter().all(|(status, ..)| status == "updated"));
    assert_eq!(rows[0].1, "2");
    let order = order.lock().unwrap().clone();
    // Rows 1..3 (inside the window) go while row 0 waits; row 4 waits for row 0.
    let retry_at = order.iter().rposition(|&seq| seq == 0).unwrap();
    let mut before: Vec<u64> = order[..retry_at].to_vec();
    before.sort();
    assert_eq!(before, [0, 1, 2, 3], "{order:?}");
    assert_eq!(&order[retry_at + 1..], [4, 5, 6, 7, 8, 9, 10, 11]);
}

#[tokio::test]
async fn retries_give_up_after_max_retries_and_long_waits_fail_the_row() {
    let config = RunConfig {
        retry: RetryPolicy {
            max_retries: 2,
            max_wait: Duration::from_secs(1),
            base: Duration::from_millis(1),
            cap: Duration::from_millis(5),
        },
        ..config(4, 64)
    };
    let attempt = |job: &Job| {
        let seq = job.seq;
        async move {
            match seq {
                0 => unavailable(None, 503),
                _ => unavailable(Some(Duration::from_secs(3600)), 503),
            }
        }
    };
    let started = Instant::now();
    let (rows, summary) = pipeline(config, 2, attempt, never()).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(rows[0].0, "failed");
    assert_eq!(rows[0].1, "3");
    assert_eq!(rows[0].2, "HTTP 503; gave up after 3 attempts");
    assert_eq!(rows[1].1, "1");
    assert_eq!(
        rows[1].2,
        "HTTP 503; the server asked to wait 3600 s, more than --max-wait 1 s"
    );
    assert_eq!(summary.retries(), 2);
}

#[tokio::test]
async fn a_cancelled_run_writes_every_row_and_sends_nothing_new() {
    let attempt = |job: &Job| {
        let seq = job.seq;
        async move {
            tokio::time::sleep(Duration::from_millis(40)).await;
            ok(seq + 1)
        }
    };
    let cancel = tokio::time::sleep(Duration::from_millis(100));
    let (rows, summary) = pipeline(config(2, 64), 50, attempt, cancel).await;
    assert_eq!(rows.len(), 50);
    let updated = rows.iter().take_while(|(s, ..)| s == "updated").count();
    assert!((2..50).contains(&updated), "{updated} rows updated");
    for (status, attempts, error) in &rows[updated..] {
        assert_eq!(status, "not_attempted");
        assert_eq!(attempts, "0");
        assert_eq!(error, "not sent: the run was interrupted");
    }
    assert_eq!(summary.exit_code(), 1);
}

#[tokio::test]
async fn the_rate_holds_across_the_run() {
    let config = RunConfig {
        rate: Rate::new(20.0, NonZeroU32::MIN).unwrap(),
        ..config(8, 64)
    };
    let attempt = |job: &Job| {
        let seq = job.seq;
        async move { ok(seq + 1) }
    };
    let started = Instant::now();
    let (rows, _) = pipeline(config, 11, attempt, never()).await;
    assert_eq!(rows.len(), 11);
    // 11 requests at 20/s with a burst of 1: ten intervals of 50 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_429_without_retry_after_still_pauses_and_is_counted() {
    let attempt = |job: &Job| {
        let (seq, first) = (job.seq, job.attempts == 0);
        async move {
            if seq == 0 && first {
                unavailable(None, 429)
            } else {
                ok(seq + 1)
            }
        }
    };
    let (rows, summary) = pipeline(config(1, 64), 3, attempt, never()).await;
    assert!(rows.iter().all(|(status, ..)| status == "updated"));
    assert_eq!(summary.throttled(), 1);
    assert_eq!(summary.retries(), 1);
}

#[tokio::test]
async fn a_429_asking_for_more_than_max_wait_stops_the_run() {
    let attempt = |job: &Job| {
        let seq = job.seq;
        async move {
            if seq == 1 {
                unavailable(Some(Duration::from_secs(3600)), 429)
            } else {
                ok(seq + 1)
            }
        }
    };
    let started = Instant::now();
    let (rows, summary) = pipeline(config(1, 64), 5, attempt, never()).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(rows[0].0, "updated");
    assert_eq!(rows[1].0, "failed");
    assert!(rows[1].2.contains("more than --max-wait"), "{}", rows[1].2);
    for (status, attempts, error) in &rows[2..] {
        assert_eq!(status, "not_attempted");
        assert_eq!(attempts, "0");
        assert!(
            error.starts_with("not sent: the server throttled the run for 3600 s"),
            "{error}"
        );
    }
    assert_eq!(summary.throttled(), 1);
}
