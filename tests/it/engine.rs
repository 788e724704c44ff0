//! The engine and the ordered writer in-process, with a fake transport in
//! place of HTTP: the reorder window, cancellation, the rate, giving up, a
//! dry run, an operation of two steps, and why the loop ended. Timing
//! assertions are one-sided and wide.

use std::collections::HashMap;
use std::future::Future;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gcore_iam_bulk::engine::{self, Channels, Ended, Job, Never, Operation, Step, Work};
use gcore_iam_bulk::http::Method;
use gcore_iam_bulk::http::{Answer, Call, Reply, Transport};
use gcore_iam_bulk::model::change::Change;
use gcore_iam_bulk::model::patch::Field;
use gcore_iam_bulk::operations::patch::PatchRows;
use gcore_iam_bulk::operations::{get_user, patch_user, user_in};
use gcore_iam_bulk::policy::{Rate, RetryPolicy, SendPolicy, StopReason};
use gcore_iam_bulk::settings::OutputTarget;
use gcore_iam_bulk::sink::{self, Keeping, Progress, ProgressMode, ResultsWriter, Summary};
use gcore_iam_bulk::table::results::Status;
use tokio::sync::{mpsc, watch};

fn policy(concurrency: usize, window: usize) -> SendPolicy {
    SendPolicy {
        concurrency: NonZeroUsize::new(concurrency).unwrap(),
        rate: Rate::unlimited(),
        retry: RetryPolicy {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(5),
            ..RetryPolicy::default()
        },
        window: NonZeroUsize::new(window).unwrap(),
        verbose: false,
        timeline: false,
        key_from: None,
        share: None,
    }
}

fn job(seq: u64) -> Job {
    Job::new(
        seq,
        seq + 2,
        seq + 1,
        (seq + 1).to_string(),
        r#"{"lang":"en"}"#.to_string(),
    )
}

fn ok(user_id: u64) -> Answer {
    Answer::Success {
        status: 200,
        reply: Ok(Reply::new(200, format!(r#"{{"id":{user_id}}}"#))),
    }
}

fn unavailable(retry_after: Option<Duration>, status: u16) -> Answer {
    Answer::Retryable {
        status: Some(status),
        retry_after,
        error: format!("HTTP {status}"),
        unreachable: false,
    }
}

/// Answers each call with `answer(call, n)`, `n` counting the earlier calls
/// for the same user (0 for the first), after the delay it gives; records
/// every call in order.
struct Fake<F> {
    answer: F,
    calls: Arc<Mutex<Vec<Call>>>,
    counts: Mutex<HashMap<u64, u32>>,
}

fn fake<F>(answer: F) -> (Fake<F>, Arc<Mutex<Vec<Call>>>)
where
    F: Fn(&Call, u32) -> (Duration, Answer) + Send + Sync + 'static,
{
    let calls = Arc::new(Mutex::new(Vec::new()));
    let fake = Fake {
        answer,
        calls: Arc::clone(&calls),
        counts: Mutex::new(HashMap::new()),
    };
    (fake, calls)
}

/// The user a call names (`iam/users/7`), 0 for the list.
fn user_of(call: &Call) -> u64 {
    call.path
        .strip_prefix("iam/users/")
        .map_or(0, |id| id.parse().unwrap())
}

fn is_get(call: &Call) -> bool {
    call.method == Method::GET
}

impl<F> Transport for Fake<F>
where
    F: Fn(&Call, u32) -> (Duration, Answer) + Send + Sync + 'static,
{
    fn send(&self, call: Call) -> impl Future<Output = Answer> + Send + 'static {
        let n = {
            let mut counts = self.counts.lock().unwrap();
            let count = counts.entry(user_of(&call)).or_default();
            *count += 1;
            *count - 1
        };
        let (delay, answer) = (self.answer)(&call, n);
        self.calls.lock().unwrap().push(call);
        async move {
            tokio::time::sleep(delay).await;
            answer
        }
    }
}

/// At once, with `answer`.
fn now(answer: Answer) -> (Duration, Answer) {
    (Duration::ZERO, answer)
}

struct Ran {
    /// (status, attempts, error) per row, in the file's order.
    rows: Vec<(String, String, String)>,
    summary: Summary,
    ended: Ended,
}

/// Runs `rows` jobs through the engine (`sender` `None`: a dry run) and the
/// writer, and reads the results file back.
async fn pipeline<O, T>(
    policy: SendPolicy,
    rows: u64,
    sender: Option<(O, T)>,
    cancel: impl Future<Output = ()>,
) -> Ran
where
    O: Operation + 'static,
    T: Transport,
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.csv");
    let writer =
        ResultsWriter::create(&OutputTarget::File(path.clone()), Keeping::Fresh, false).unwrap();
    let (work_tx, work_rx) = mpsc::channel(8);
    let (report_tx, report_rx) = std_mpsc::channel();
    let (written_tx, written_rx) = watch::channel(0);
    let progress = Progress::new(ProgressMode::Quiet, rows);
    let writer = std::thread::spawn(move || {
        sink::write_in_order(writer, report_rx, written_tx, progress, true)
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
    let ended = engine::dispatch(&policy, sender, channels, cancel).await;
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
    Ran {
        rows: out,
        summary,
        ended,
    }
}

fn never() -> impl Future<Output = ()> {
    std::future::pending()
}

#[tokio::test]
async fn a_row_in_a_long_retry_holds_only_the_rows_beyond_the_window() {
    let (transport, calls) = fake(|call, n| {
        let user = user_of(call);
        if user == 1 && n == 0 {
            now(unavailable(Some(Duration::from_millis(300)), 503))
        } else {
            now(ok(user))
        }
    });
    let ran = pipeline(policy(8, 4), 12, Some((PatchRows, transport)), never()).await;
    assert!(ran.rows.iter().all(|(status, ..)| status == "updated"));
    assert_eq!(ran.rows[0].1, "2");
    assert_eq!(ran.ended, Ended::Finished);
    let order: Vec<u64> = calls.lock().unwrap().iter().map(user_of).collect();
    // Users 2..4 (inside the window) go while user 1 waits; user 5 waits for user 1.
    let retry_at = order.iter().rposition(|&user| user == 1).unwrap();
    let mut before: Vec<u64> = order[..retry_at].to_vec();
    before.sort();
    assert_eq!(before, [1, 2, 3, 4], "{order:?}");
    assert_eq!(&order[retry_at + 1..], [5, 6, 7, 8, 9, 10, 11, 12]);
}

#[tokio::test]
async fn retries_give_up_after_max_retries_and_long_waits_fail_the_row() {
    let policy = SendPolicy {
        retry: RetryPolicy {
            max_retries: 2,
            max_wait: Duration::from_secs(1),
            base: Duration::from_millis(1),
            cap: Duration::from_millis(5),
        },
        ..policy(4, 64)
    };
    let (transport, _) = fake(|call, _| match user_of(call) {
        1 => now(unavailable(None, 503)),
        // A 500 that asks for a wait is no throttling (a 503 would be, and
        // would stop the run as a 429 does).
        _ => now(unavailable(Some(Duration::from_secs(3600)), 500)),
    });
    let started = Instant::now();
    let ran = pipeline(policy, 2, Some((PatchRows, transport)), never()).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(ran.rows[0].0, "failed");
    assert_eq!(ran.rows[0].1, "3");
    assert_eq!(ran.rows[0].2, "HTTP 503; gave up after 3 attempts");
    assert_eq!(ran.rows[1].1, "1");
    assert_eq!(
        ran.rows[1].2,
        "HTTP 500; the server asked to wait 3600 s, more than --max-wait 1 s"
    );
    assert_eq!(ran.summary.retries(), 2);
    assert_eq!(ran.ended, Ended::Finished, "a 5xx does not stop the run");
}

/// The retry matrix in-process: each answer that is retried (a 5xx, a
/// connection closed with no answer, an answer that did not come in
/// time), on some rows once or more, four requests at a time. Every row
/// is updated, in input order, with its attempts counted, and nothing is
/// sent but the rows and their retries. Over the binary, one smoke test
/// each: a 503 and a slow answer in apply.rs, dropped connections in
/// apply_sandbox.rs (which also held 30% of 5xx and of slow answers from
/// the sandbox to the same checks, at 3 s a test).
#[tokio::test]
async fn each_retried_failure_is_retried_until_every_row_lands() {
    // How many attempts of each user fail before one succeeds: 0 to 3.
    fn failures(user: u64) -> u32 {
        [0, 1, 0, 2, 0, 0, 3, 1][(user % 8) as usize]
    }
    fn no_answer(error: &str) -> Answer {
        Answer::Retryable {
            status: None,
            retry_after: None,
            error: error.to_string(),
            unreachable: false,
        }
    }
    // What the server answers (or not) when an attempt fails.
    type Failure = fn() -> Answer;
    let kinds: [(&str, Failure); 5] = [
        ("500", || unavailable(None, 500)),
        ("502", || unavailable(None, 502)),
        ("503", || unavailable(None, 503)),
        ("no answer", || {
            no_answer("connection closed before an answer")
        }),
        ("too late", || no_answer("no answer within 0.5 s")),
    ];
    let rows = 30;
    let retried: u32 = (1..=rows).map(failures).sum();
    for (kind, failure) in kinds {
        let (transport, calls) = fake(move |call, n| {
            let user = user_of(call);
            match n < failures(user) {
                true => now(failure()),
                false => now(ok(user)),
            }
        });
        let ran = pipeline(policy(4, 64), rows, Some((PatchRows, transport)), never()).await;
        assert_eq!(ran.rows.len() as u64, rows, "{kind}");
        for (at, (status, attempts, _)) in ran.rows.iter().enumerate() {
            assert_eq!(status, "updated", "{kind}: row {at}");
            let want = failures(at as u64 + 1) + 1;
            assert_eq!(attempts, &want.to_string(), "{kind}: row {at}");
        }
        let sent = calls.lock().unwrap().len() as u64;
        assert_eq!(sent, rows + u64::from(retried), "{kind}");
        assert_eq!(ran.summary.retries(), u64::from(retried), "{kind}");
        assert_eq!(ran.ended, Ended::Finished, "{kind}");
    }
}

#[tokio::test]
async fn a_cancelled_run_writes_every_row_and_sends_nothing_new() {
    let (transport, calls) = fake(|call, _| (Duration::from_millis(40), ok(user_of(call))));
    // The stop comes once the sixth request is on its way (two at a time,
    // 40 ms each): after three rounds, whatever the machine's speed.
    let sent = Arc::clone(&calls);
    let cancel = async move {
        while sent.lock().unwrap().len() < 6 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let ran = pipeline(policy(2, 64), 50, Some((PatchRows, transport)), cancel).await;
    assert_eq!(ran.rows.len(), 50);
    let updated = ran.rows.iter().take_while(|(s, ..)| s == "updated").count();
    assert!((2..50).contains(&updated), "{updated} rows updated");
    assert_eq!(
        calls.lock().unwrap().len(),
        updated,
        "nothing sent after the stop"
    );
    for (status, attempts, error) in &ran.rows[updated..] {
        assert_eq!(status, "not_attempted");
        assert_eq!(attempts, "0");
        assert_eq!(error, "not sent: the run was interrupted");
    }
    assert!(ran.summary.has_problems());
    assert_eq!(ran.ended, Ended::Stopped(StopReason::Interrupted));
}

#[tokio::test]
async fn the_rate_holds_across_the_run() {
    let policy = SendPolicy {
        rate: Rate::new(20.0, NonZeroU32::MIN).unwrap(),
        ..policy(8, 64)
    };
    let (transport, _) = fake(|call, _| now(ok(user_of(call))));
    let started = Instant::now();
    let ran = pipeline(policy, 11, Some((PatchRows, transport)), never()).await;
    assert_eq!(ran.rows.len(), 11);
    // 11 requests at 20/s with a burst of 1: ten intervals of 50 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_429_without_retry_after_still_pauses_and_is_counted() {
    let (transport, _) = fake(|call, n| {
        let user = user_of(call);
        if user == 1 && n == 0 {
            now(unavailable(None, 429))
        } else {
            now(ok(user))
        }
    });
    let ran = pipeline(policy(1, 64), 3, Some((PatchRows, transport)), never()).await;
    assert!(ran.rows.iter().all(|(status, ..)| status == "updated"));
    assert_eq!(ran.summary.throttled(), 1);
    assert_eq!(ran.summary.retries(), 1);
}

#[tokio::test]
async fn a_429_asking_for_more_than_max_wait_stops_the_run() {
    let (transport, _) = fake(|call, _| match user_of(call) {
        2 => now(unavailable(Some(Duration::from_secs(3600)), 429)),
        user => now(ok(user)),
    });
    let started = Instant::now();
    let ran = pipeline(policy(1, 64), 5, Some((PatchRows, transport)), never()).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(ran.rows[0].0, "updated");
    assert_eq!(ran.rows[1].0, "failed");
    assert!(
        ran.rows[1].2.contains("more than --max-wait"),
        "{}",
        ran.rows[1].2
    );
    for (status, attempts, error) in &ran.rows[2..] {
        assert_eq!(status, "not_attempted");
        assert_eq!(attempts, "0");
        assert!(
            error.starts_with("not sent: the server throttled the run for 3600 s"),
            "{error}"
        );
    }
    assert_eq!(ran.summary.throttled(), 1);
    assert!(matches!(
        ran.ended,
        Ended::Stopped(StopReason::ThrottledTooLong { ref at, .. }) if at == "row 3"
    ));
}

#[tokio::test]
async fn a_refused_key_stops_the_run_and_says_so() {
    let (transport, calls) = fake(|_, _| {
        now(Answer::Failed {
            status: 401,
            error: "HTTP 401 Unauthorized".to_string(),
        })
    });
    let ran = pipeline(policy(1, 64), 4, Some((PatchRows, transport)), never()).await;
    assert_eq!(calls.lock().unwrap().len(), 1);
    assert_eq!(ran.rows[0].0, "failed");
    assert!(
        ran.rows[1..]
            .iter()
            .all(|(status, ..)| status == "not_attempted")
    );
    assert_eq!(
        ran.ended,
        Ended::Stopped(StopReason::KeyRefused {
            at: "row 2".to_string(),
            key_from: None,
        })
    );
}

#[tokio::test]
async fn a_dry_run_decides_every_row_at_once_and_stops_like_a_real_one() {
    let ran = pipeline(policy(1, 64), 300, None::<(Never, Never)>, never()).await;
    assert_eq!(ran.rows.len(), 300);
    assert!(
        ran.rows
            .iter()
            .all(|(status, attempts, _)| status == "would_update" && attempts == "0")
    );
    assert_eq!(ran.summary.count(Status::WOULD_UPDATE), 300);
    assert_eq!(ran.ended, Ended::Finished);

    // Interrupted before the first row: every valid row is not attempted.
    let ran = pipeline(
        policy(1, 64),
        5,
        None::<(Never, Never)>,
        std::future::ready(()),
    )
    .await;
    assert!(
        ran.rows
            .iter()
            .all(|(status, _, error)| status == "not_attempted"
                && error == "not sent: the run was interrupted")
    );
    assert_eq!(ran.ended, Ended::Stopped(StopReason::Interrupted));
}

/// A GET of the user, then a PATCH: the shape of `plan`, `--skip-unchanged`
/// and the undo file. A user whose language is already right is `unchanged`.
struct GetThenPatch;

impl Operation for GetThenPatch {
    fn call(&self, job: &Job) -> Call {
        match job.step {
            0 => get_user(job.user_id()),
            _ => patch_user(job.user_id(), job.request.clone()),
        }
    }

    fn answered(&self, job: &mut Job, reply: Result<Reply, String>) -> Step {
        match (job.step, user_in(reply)) {
            (0, Ok(user)) if user.lang.as_deref() == Some("en") => Step::Done {
                status: Status::UNCHANGED,
                error: String::new(),
                changes: Vec::new(),
                user: Some(user),
            },
            (0, Ok(user)) => {
                job.before = Some(user);
                job.step = 1;
                Step::Next
            }
            (_, reply) => Step::Done {
                status: Status::UPDATED,
                error: String::new(),
                changes: vec![Change {
                    field: Field::Lang,
                    from: job
                        .before
                        .as_ref()
                        .and_then(|u| u.lang.clone())
                        .unwrap_or_default(),
                    to: "en".to_string(),
                }],
                user: reply.ok(),
            },
        }
    }
}

#[tokio::test]
async fn an_operation_of_two_steps_goes_through_the_same_retries() {
    let (transport, calls) = fake(|call, n| {
        let user = user_of(call);
        match call {
            // The first GET of user 2 is throttled, then answered.
            call if is_get(call) && user == 2 && n == 0 => now(unavailable(None, 503)),
            call if is_get(call) => {
                let lang = if user == 3 { "en" } else { "de" };
                now(Answer::Success {
                    status: 200,
                    reply: Ok(Reply::new(
                        200,
                        format!(r#"{{"id":{user},"lang":"{lang}"}}"#),
                    )),
                })
            }
            _ => now(ok(user)),
        }
    });
    let ran = pipeline(policy(2, 64), 3, Some((GetThenPatch, transport)), never()).await;
    let statuses: Vec<&str> = ran.rows.iter().map(|(s, ..)| s.as_str()).collect();
    assert_eq!(statuses, ["updated", "updated", "unchanged"]);
    let attempts: Vec<&str> = ran.rows.iter().map(|(_, a, _)| a.as_str()).collect();
    assert_eq!(
        attempts,
        ["2", "3", "1"],
        "a GET and a PATCH, plus one retry for user 2"
    );
    let calls = calls.lock().unwrap();
    for user in [1, 2] {
        let kinds: Vec<&str> = calls
            .iter()
            .filter(|call| user_of(call) == user)
            .map(|call| match is_get(call) {
                true => "get",
                false => "patch",
            })
            .collect();
        let want: &[&str] = if user == 2 {
            &["get", "get", "patch"]
        } else {
            &["get", "patch"]
        };
        assert_eq!(kinds, want, "user {user}");
    }
    assert!(!calls.iter().any(|call| !is_get(call) && user_of(call) == 3));
}

#[tokio::test]
async fn a_stop_asked_for_before_the_first_row_sends_nothing() {
    let (transport, calls) = fake(|call, _| now(ok(user_of(call))));
    let ran = pipeline(
        policy(4, 64),
        20,
        Some((PatchRows, transport)),
        std::future::ready(()),
    )
    .await;
    assert!(calls.lock().unwrap().is_empty(), "sent after the stop");
    assert_eq!(ran.rows.len(), 20);
    assert!(
        ran.rows
            .iter()
            .all(|(status, ..)| status == "not_attempted")
    );
    assert_eq!(ran.ended, Ended::Stopped(StopReason::Interrupted));
}

/// Answers user 2 with a panic while its request is sent.
struct Panicky;

impl Transport for Panicky {
    fn send(&self, call: Call) -> impl Future<Output = Answer> + Send + 'static {
        let user = user_of(&call);
        async move {
            assert!(user != 2, "a bug in the request of user 2");
            ok(user)
        }
    }
}

#[tokio::test]
async fn a_panic_in_one_request_fails_its_row_and_the_run_goes_on() {
    let ran = pipeline(policy(2, 64), 4, Some((PatchRows, Panicky)), never()).await;
    let statuses: Vec<&str> = ran.rows.iter().map(|(s, ..)| s.as_str()).collect();
    assert_eq!(statuses, ["updated", "failed", "updated", "updated"]);
    assert!(
        ran.rows[1]
            .2
            .starts_with("this tool failed while sending the request (a panic)"),
        "{}",
        ran.rows[1].2
    );
    assert_eq!(ran.ended, Ended::Finished);
}

#[tokio::test]
async fn an_api_that_cannot_be_reached_stops_the_run_after_a_few_attempts() {
    let (transport, calls) = fake(|_, _| {
        now(Answer::Retryable {
            status: None,
            retry_after: None,
            error: "cannot connect: Connection refused".to_string(),
            unreachable: true,
        })
    });
    let ran = pipeline(policy(2, 64), 50, Some((PatchRows, transport)), never()).await;
    let sent = calls.lock().unwrap().len();
    assert!((5..=6).contains(&sent), "{sent} attempts");
    assert_eq!(ran.rows.len(), 50);
    assert!(ran.rows.iter().all(|(status, ..)| status != "updated"));
    assert!(
        ran.rows[10]
            .2
            .starts_with("not sent: the API cannot be reached (5 attempts")
    );
    assert_eq!(
        ran.ended,
        Ended::Stopped(StopReason::Unreachable { attempts: 5 })
    );
}

#[tokio::test]
async fn the_reports_timeline_counts_every_answer_by_kind_and_the_pauses() {
    // Four users each: at once a success, a refusal, no answer first, a
    // 503 first, a 429 first. The 429s come last: a 429 in a run's first
    // half second starts it again from what it achieved, and 20 answers
    // in milliseconds make that fast (the first row's 429 made it 5/s, and
    // the test took 4 s for its 32 answers).
    let (transport, calls) = fake(|call, n| {
        let user = user_of(call);
        match ((user - 1) / 4, n) {
            (1, _) => now(Answer::Failed {
                status: 404,
                error: "HTTP 404".to_string(),
            }),
            (2, 0) => now(Answer::Retryable {
                status: None,
                retry_after: None,
                error: "connection closed".to_string(),
                unreachable: false,
            }),
            (3, 0) => now(unavailable(None, 503)),
            (4, 0) => now(unavailable(None, 429)),
            _ => now(ok(user)),
        }
    });
    let mut reporting = policy(2, 64);
    reporting.timeline = true;
    let ran = pipeline(reporting, 20, Some((PatchRows, transport)), never()).await;
    let timeline = ran.summary.timeline().expect("a timeline was asked for");
    let total = timeline.total();
    // 20 rows: 4 at once, 4 refused, and 12 answered twice.
    assert_eq!(calls.lock().unwrap().len(), 32);
    assert_eq!(total.answers(), 32);
    assert_eq!(total.throttled, 4);
    assert_eq!(total.error, 4 + 4, "the 503s and the 404s");
    assert_eq!(total.no_answer, 4);
    assert_eq!(total.success, 4 * 3 + 4);
    assert_eq!(u64::from(total.throttled), ran.summary.throttled());
    assert!(total.max_took().is_some());
    // Each 429 paused the run (they may make one stretch).
    assert!(!timeline.pauses().is_empty());
    // Without --report, nothing is kept.
    let (transport, _) = fake(|call, _| now(ok(user_of(call))));
    let ran = pipeline(policy(1, 64), 3, Some((PatchRows, transport)), never()).await;
    assert!(ran.summary.timeline().is_none());
}
