//! The dispatcher's steps, driven one at a time without a runtime: the clock
//! is a value handed to each step, the channels are written and read at
//! once, and nothing is sent (the test answers each job it admits).

use std::num::NonZeroUsize;
use std::ops::Range;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::answer::Answered;
use super::{Admission, Dispatcher, INTERRUPTED_NOTE};
use crate::engine::events::Report;
use crate::engine::{Channels, Ended, Job, Operation, Step, Work};
use crate::http::{Answer, Call, Reply};
use crate::policy::{Rate, RetryPolicy, SendPolicy, StopReason};
use crate::table::results::Status;

/// One request a job; a 2xx ends it `updated`.
struct Get;

impl Operation for Get {
    fn call(&self, job: &Job) -> Call {
        Call::get(format!("iam/users/{}", job.user_id()))
    }
    fn answered(&self, _: &mut Job, _: Result<Reply, String>) -> Step {
        Step::Done {
            status: Status::UPDATED,
            error: String::new(),
            changes: Vec::new(),
            user: None,
        }
    }
}

fn policy(concurrency: usize, window: usize) -> SendPolicy {
    SendPolicy {
        concurrency: NonZeroUsize::new(concurrency).unwrap(),
        rate: Rate::unlimited(),
        retry: RetryPolicy::default(),
        window: NonZeroUsize::new(window).unwrap(),
        verbose: false,
        timeline: false,
        key_from: None,
        share: None,
    }
}

/// The other ends of the dispatcher's channels: the check stage's and the
/// writer's.
struct Ends {
    work: mpsc::Sender<Vec<Work>>,
    reports: std_mpsc::Receiver<Report>,
    written: watch::Sender<u64>,
}

impl Ends {
    /// Rows `seqs` of the input, as one batch.
    fn rows(&self, seqs: Range<u64>) {
        let batch = seqs.map(|seq| Work::Send(job(seq))).collect();
        self.work.try_send(batch).unwrap();
    }

    /// What the dispatcher reported since the last look.
    fn reports(&self) -> Vec<Report> {
        self.reports.try_iter().collect()
    }
}

/// A dispatcher (`operation` `None`: of a dry run) with rows `first` of
/// the input come, the other ends of its channels, and the clock's start.
fn dispatcher<'a>(
    policy: &'a SendPolicy,
    operation: Option<&'a Get>,
    first: Range<u64>,
) -> (Dispatcher<'a, Get>, Ends, Instant) {
    let (work_tx, work) = mpsc::channel(8);
    let (reports_tx, reports) = std_mpsc::channel();
    let (written_tx, written) = watch::channel(0);
    let channels = Channels {
        work,
        reports: reports_tx,
        written,
    };
    let ends = Ends {
        work: work_tx,
        reports,
        written: written_tx,
    };
    ends.rows(first);
    (
        Dispatcher::new(policy, operation, channels),
        ends,
        Instant::now(),
    )
}

/// Row `seq + 2` of the file (after its header), for user `seq + 1`.
fn job(seq: u64) -> Job {
    let user = seq + 1;
    Job::new(seq, seq + 2, user, user.to_string(), "{}".to_string())
}

/// The job admission hands out at `now`.
fn send(d: &mut Dispatcher<'_, Get>, now: Instant) -> Job {
    match d.admit(now).unwrap() {
        Admission::Send(job) => job,
        other => panic!("expected a job to send, got {other:?}"),
    }
}

/// Admission at `now` sends nothing: until when (`None`: no time named).
fn wait(d: &mut Dispatcher<'_, Get>, now: Instant) -> Option<Instant> {
    match d.admit(now).unwrap() {
        Admission::Wait(until) => until,
        Admission::Send(job) => panic!("expected to wait, got row {} to send", job.row()),
    }
}

/// Answers `job` at `now` with HTTP `status`, worth another try (after
/// `retry_after`, if the server asks).
fn retryable(
    d: &mut Dispatcher<'_, Get>,
    now: Instant,
    job: Job,
    status: u16,
    retry_after: Option<Duration>,
) {
    let answer = Answer::Retryable {
        status: Some(status),
        retry_after,
        error: format!("HTTP {status}"),
        unreachable: false,
    };
    let answered = Answered {
        job,
        traced: None,
        answer: Ok(answer),
    };
    d.on_answer(now, answered).unwrap();
}

/// (seq, status, attempts, error) of each row reported.
fn rows(reports: &[Report]) -> Vec<(u64, Status, u32, String)> {
    let row = |report: &Report| match report {
        Report::Row(outcome) => Some((
            outcome.seq,
            outcome.record.status,
            outcome.record.attempts,
            outcome.record.error.clone(),
        )),
        _ => None,
    };
    reports.iter().filter_map(row).collect()
}

fn notes(reports: &[Report]) -> Vec<&str> {
    let mut notes = Vec::new();
    for report in reports {
        if let Report::Note(note) = report {
            notes.push(note.as_str());
        }
    }
    notes
}

#[test]
fn a_retryable_answer_waits_the_delay_asked_then_goes_before_new_rows() {
    let policy = policy(1, 64);
    let (mut d, ends, t0) = dispatcher(&policy, Some(&Get), 0..1);
    let first = send(&mut d, t0);
    let asked = Duration::from_secs(2);
    retryable(&mut d, t0, first, 500, Some(asked));
    assert!(ends.reports().is_empty(), "the row is not done");

    let t1 = t0 + Duration::from_secs(1);
    assert_eq!(wait(&mut d, t1), None);
    assert_eq!(d.wake(t1, None), Some(t0 + asked), "wakes when it is due");

    ends.rows(1..2);
    let again = send(&mut d, t0 + asked);
    assert_eq!((again.seq, again.attempts, again.retries), (0, 1, 1));
    assert_eq!(
        again.last_failure,
        Some((Some(500), "HTTP 500".to_string()))
    );
    assert_eq!(wait(&mut d, t0 + asked), None, "one in flight");
    assert_eq!(d.next.as_ref().map(|work| work.seq()), Some(1));
}

#[test]
fn without_retry_after_the_delay_is_drawn_below_the_backoff_ceiling() {
    let policy = policy(1, 64);
    let (mut d, _ends, t0) = dispatcher(&policy, Some(&Get), 0..1);
    let first = send(&mut d, t0);
    retryable(&mut d, t0, first, 503, None);
    let ceiling = policy.retry.ceiling(1);
    assert!(d.wake(t0, None).is_none_or(|at| at <= t0 + ceiling));
    let again = send(&mut d, t0 + ceiling);
    assert_eq!((again.seq, again.retries), (0, 1));
}

#[test]
fn a_429_with_retry_after_pauses_admission_for_every_row() {
    let policy = policy(4, 64);
    let (mut d, ends, t0) = dispatcher(&policy, Some(&Get), 0..2);
    let first = send(&mut d, t0);
    let _second = send(&mut d, t0);
    let asked = Duration::from_secs(5);
    retryable(&mut d, t0, first, 429, Some(asked));
    let reports = ends.reports();
    assert_eq!(
        notes(&reports),
        ["throttled (HTTP 429 on row 2): pausing all requests for 5.0 s"]
    );
    assert!(d.pacer.rate().0.is_some(), "a 429 sets a rate");

    // A new row, with room in flight, waits out the pause too.
    ends.rows(2..3);
    let t1 = t0 + Duration::from_secs(1);
    assert_eq!(wait(&mut d, t1), Some(t0 + asked));
    let again = send(&mut d, t0 + asked);
    assert_eq!((again.seq, again.throttled, again.retries), (0, 1, 1));
}

#[test]
fn a_stop_ends_the_jobs_waiting_and_the_rows_not_sent() {
    let policy = policy(2, 64);
    let (mut d, ends, t0) = dispatcher(&policy, Some(&Get), 0..3);
    let first = send(&mut d, t0);
    let second = send(&mut d, t0);
    assert_eq!(wait(&mut d, t0), None, "two in flight at most");
    let in_a_second = Some(Duration::from_secs(1));
    retryable(&mut d, t0, first, 500, in_a_second);

    d.stop(StopReason::Interrupted).unwrap();
    let halted = StopReason::Halted {
        message: "later".to_string(),
    };
    d.stop(halted).unwrap();
    assert_eq!(notes(&ends.reports()), [INTERRUPTED_NOTE], "the first told");

    // In flight: it finishes, and is not retried.
    retryable(&mut d, t0, second, 500, in_a_second);
    // Waiting, and not sent yet: they end at the next admission.
    assert_eq!(wait(&mut d, t0), None);
    let not_retried = "HTTP 500; not retried: the run was interrupted".to_string();
    let not_sent = "not sent: the run was interrupted".to_string();
    assert_eq!(
        rows(&ends.reports()),
        [
            (1, Status::FAILED, 1, not_retried.clone()),
            (0, Status::FAILED, 1, not_retried),
            (2, Status::NOT_ATTEMPTED, 0, not_sent),
        ]
    );

    drop(ends.work);
    assert_eq!(wait(&mut d, t0), None);
    assert!(d.idle());
    assert_eq!(d.end().unwrap(), Ended::Stopped(StopReason::Interrupted));
}

#[test]
fn a_dry_run_decides_rows_at_once_within_the_window() {
    let policy = policy(1, 2);
    let (mut d, ends, t0) = dispatcher(&policy, None, 0..3);
    assert_eq!(wait(&mut d, t0), None);
    let would_update = |seq| (seq, Status::WOULD_UPDATE, 0, String::new());
    assert_eq!(rows(&ends.reports()), [would_update(0), would_update(1)]);
    assert!(d.window_full, "row 2 waits for the writer");

    ends.written.send(1).unwrap();
    assert_eq!(wait(&mut d, t0), None);
    assert_eq!(rows(&ends.reports()), [would_update(2)]);
    assert!(!d.window_full);
}

/// Answers `job` at `now` with no answer at all: a timeout, or
/// (`unreachable`) no connection could be made.
fn no_answer(d: &mut Dispatcher<'_, Get>, now: Instant, job: Job, unreachable: bool) {
    let error = match unreachable {
        true => "cannot connect through the proxy: connection refused",
        false => "no answer within 2 s",
    };
    let answer = Answer::Retryable {
        status: None,
        retry_after: None,
        error: error.to_string(),
        unreachable,
    };
    let answered = Answered {
        job,
        traced: None,
        answer: Ok(answer),
    };
    d.on_answer(now, answered).unwrap();
}

#[test]
fn a_server_that_never_answers_stops_the_run_after_a_while() {
    let policy = policy(1, 64);
    let (mut d, ends, t0) = dispatcher(&policy, Some(&Get), 0..200);
    let step = Duration::from_secs(2);
    let mut now = t0;
    // Attempts without an answer, one fewer than stops, over longer than
    // the time: the run goes on.
    for _ in 1..StopReason::SILENT_AFTER {
        let job = send(&mut d, now);
        now += step;
        no_answer(&mut d, now, job, false);
        if let Some(due) = d.wake(now, None) {
            now = now.max(due);
        }
    }
    assert!(d.stopped.is_none(), "{:?}", d.stopped);
    assert!(now - t0 >= StopReason::SILENT_FOR);
    // An answer (any status) starts the count again.
    let job = send(&mut d, now);
    retryable(&mut d, now, job, 500, Some(Duration::ZERO));
    assert!(d.silent.is_none());
    // Then attempt after attempt without an answer for long enough: stopped.
    let since = now;
    while d.stopped.is_none() {
        assert!(now - since < Duration::from_secs(600), "never stopped");
        let job = send(&mut d, now);
        now += step;
        no_answer(&mut d, now, job, false);
        if let Some(due) = d.wake(now, None) {
            now = now.max(due);
        }
    }
    assert!(
        matches!(d.stopped, Some(StopReason::Silent { attempts, .. }) if attempts >= StopReason::SILENT_AFTER),
        "{:?}",
        d.stopped
    );
    assert!(now - since >= StopReason::SILENT_FOR);
    // The rows not sent yet end at once, saying why.
    assert_eq!(wait(&mut d, now), None);
    let reports = ends.reports();
    let ended = rows(&reports);
    let (_, status, _, error) = ended.last().unwrap();
    assert_eq!(*status, Status::NOT_ATTEMPTED);
    assert!(error.contains("the API stopped answering"), "{error}");
}

/// Answers `job` at `now`: a 200 (`success`), else no connection.
fn connect(d: &mut Dispatcher<'_, Get>, now: Instant, job: Job, success: bool) {
    if !success {
        return no_answer(d, now, job, true);
    }
    let answer = Answer::Success {
        status: 200,
        reply: Ok(Reply::new(200, "{}")),
    };
    let answered = Answered {
        job,
        traced: None,
        answer: Ok(answer),
    };
    d.on_answer(now, answered).unwrap();
}

#[test]
fn an_outage_after_the_api_answered_pauses_the_run_instead_of_failing_rows() {
    let policy = policy(1, 64);
    let (mut d, ends, t0) = dispatcher(&policy, Some(&Get), 0..2);
    let first = send(&mut d, t0);
    connect(&mut d, t0, first, true);
    // Then the proxy goes: far more failures than --max-retries, over 40 s.
    let mut now = t0;
    let mut failures = 0;
    while now - t0 < Duration::from_secs(40) {
        let job = send(&mut d, now);
        connect(&mut d, now, job, false);
        failures += 1;
        let due = d.wake(now, None).expect("the row waits for its retry");
        assert!(due > now, "the run pauses");
        now = due;
    }
    assert!(failures > policy.retry.max_retries, "{failures}");
    assert!(d.stopped.is_none(), "{:?}", d.stopped);
    // Back: the row goes through.
    let job = send(&mut d, now);
    connect(&mut d, now, job, true);
    let reports = ends.reports();
    let ended = rows(&reports);
    assert_eq!(ended.len(), 2, "{ended:?}");
    assert!(
        ended
            .iter()
            .all(|(_, status, _, _)| *status == Status::UPDATED),
        "{ended:?}"
    );
    assert!(
        notes(&reports)
            .iter()
            .any(|note| note.contains("pausing all requests"))
    );

    // An outage longer than --max-wait stops the run.
    let (mut d, _ends, t0) = dispatcher(&policy, Some(&Get), 0..2);
    let first = send(&mut d, t0);
    connect(&mut d, t0, first, true);
    let mut now = t0;
    while d.stopped.is_none() {
        assert!(now - t0 < policy.retry.max_wait * 2, "never stopped");
        let job = send(&mut d, now);
        connect(&mut d, now, job, false);
        now = d.wake(now, None).unwrap_or(now);
    }
    assert!(
        matches!(d.stopped, Some(StopReason::Outage { .. })),
        "{:?}",
        d.stopped
    );
}
