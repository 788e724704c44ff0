//! The engine: one dispatch loop for every command. One task owns admission
//! (the rate limiter, the run-wide pause after a 429 and the concurrency
//! limit), hands jobs to requests in flight, and decides retries. What a job
//! sends and what an answer means is the [`Operation`]'s business (a PATCH,
//! or a GET then a PATCH); the policies are values ([`SendPolicy`]); the
//! requests go through a [`Transport`]. With no operation the engine is a
//! dry run: every valid row is decided at once. Outcomes go, unordered, to
//! the one results writer; the loop returns why it ended.

pub mod events;
pub mod timeline;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::http::{Answer, Call, Reply, Transport};
use crate::model::api::User;
use crate::model::change::{Change, FieldSet, describe};
use crate::model::patch::PatchBody;
use crate::policy::{Decision, Pacer, SendPolicy, StopReason, later};
use crate::table::results::{ResultRecord, Status};
use events::{Outcome, RateReport, Report};
use timeline::{AnswerKind, Timeline};

/// A valid row on its way through the operation's requests.
#[derive(Debug, Clone)]
pub struct Job {
    /// 0-based position among the input's records: the writer's order.
    pub seq: u64,
    pub row: u64,
    pub user_id: u64,
    pub user_id_text: String,
    /// The JSON body of the row's change, as the results show it.
    pub request: String,
    /// Which of the operation's requests comes next (0: the first).
    pub step: u32,
    /// Requests sent for this job, every step together (the results' `attempts`).
    pub attempts: u32,
    /// Attempts of the current step: what the retry policy counts.
    pub step_attempts: u32,
    pub throttled: u32,
    /// Attempts that were retries of an earlier one (of any step).
    pub retries: u32,
    /// Attempts that never left this machine: no connection could be made,
    /// or the server's certificate was refused before the request went.
    pub unsent: u32,
    /// The status and error of the last retryable attempt, for the results
    /// when the job is not retried after all.
    pub last_failure: Option<(Option<u16>, String)>,
    /// The user's state as an earlier step read it.
    pub before: Option<Box<User>>,
    /// The row's change, for operations that compare it with the live
    /// state (kept only for them: see `Checks::keep_body`).
    pub body: Option<Box<PatchBody>>,
    /// What an earlier step found the row changes.
    pub changes: Vec<Change>,
    /// Whether [`Operation::decide`] has seen the job.
    pub decided: bool,
}

impl Job {
    pub fn new(seq: u64, row: u64, user_id: u64, user_id_text: String, request: String) -> Job {
        Job {
            seq,
            row,
            user_id,
            user_id_text,
            request,
            step: 0,
            attempts: 0,
            step_attempts: 0,
            throttled: 0,
            retries: 0,
            unsent: 0,
            last_failure: None,
            before: None,
            body: None,
            changes: Vec::new(),
            decided: false,
        }
    }
}

/// What the check stage hands the engine, in input order.
#[derive(Debug)]
pub enum Work {
    Send(Job),
    /// Already decided (skipped, invalid, not attempted): only written.
    Done(Outcome),
}

impl Work {
    /// A row decided without a request: only written.
    pub fn decided(seq: u64, record: ResultRecord) -> Work {
        Work::Done(Outcome {
            seq,
            throttled: 0,
            retries: 0,
            changed: FieldSet::default(),
            record,
        })
    }

    fn seq(&self) -> u64 {
        match self {
            Work::Send(job) => job.seq,
            Work::Done(outcome) => outcome.seq,
        }
    }
}

/// What a successful answer means for a job.
#[derive(Debug)]
pub enum Step {
    /// The job is finished.
    Done {
        status: Status,
        error: String,
        /// What the row changes (or would change) in the user's state.
        changes: Vec<Change>,
        user: Option<Box<User>>,
    },
    /// Send the operation's next request for this job; the operation has
    /// advanced `job.step` (and kept what it needs, as `job.before`).
    Next,
    /// Something every row needs is broken (the undo file cannot be
    /// written): this row is not sent, and the run stops as after Ctrl-C.
    Halt { error: String },
}

/// What a job sends, step by step, and what each successful answer means.
/// Failures, retries, the rate and the pause after a 429 are the engine's,
/// the same for every step.
pub trait Operation: Send + Sync {
    /// The request for the job's current step.
    fn call(&self, job: &Job) -> Call;
    /// A 2xx answer to it (`Err`: its body could not be read).
    fn answered(&self, job: &mut Job, reply: Result<Reply, String>) -> Step;
    /// Decides a job before its first request, when the operation knows
    /// enough without one: `Done` ends it, `Next` (with `job.step` moved
    /// on) or `None` sends. Called once per job.
    fn decide(&self, _job: &mut Job) -> Option<Step> {
        None
    }
    /// What a job is, in messages: `row` (`page` for a list's pages).
    fn noun(&self) -> &'static str {
        "row"
    }
    /// How `-v` says a job ended with `status`.
    fn ended_as(&self, status: Status) -> &'static str {
        status.as_str()
    }
}

/// No operation: the engine of a dry run.
#[derive(Debug, Clone, Copy)]
pub enum Never {}

impl Operation for Never {
    fn call(&self, _: &Job) -> Call {
        match *self {}
    }
    fn answered(&self, _: &mut Job, _: Result<Reply, String>) -> Step {
        match *self {}
    }
}

impl Transport for Never {
    fn send(&self, _: Call) -> impl Future<Output = Answer> + Send + 'static {
        let never = *self;
        async move { match never {} }
    }
}

/// Why the loop ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    /// Every row went through.
    Finished,
    /// Something stopped the sending (the first reason); every row was still
    /// written.
    Stopped(StopReason),
    /// The results writer is gone: it failed, and reports why. `sent`:
    /// requests sent until then (their changes may be in effect).
    SinkGone { sent: u64 },
}

const INTERRUPTED_NOTE: &str =
    "interrupted: finishing the requests in flight; press Ctrl-C again to quit at once";

/// How long a pause must be before the user hears of it, and how often.
const PAUSE_NOTE_MIN: Duration = Duration::from_secs(1);
const PAUSE_NOTE_EVERY: Duration = Duration::from_secs(10);

/// The pipes around the dispatcher.
pub struct Channels {
    /// Rows from the check stage, in input order, in batches: one hand-over
    /// (and one wake-up) per batch rather than per row.
    pub work: mpsc::Receiver<Vec<Work>>,
    /// Outcomes and notes to the results writer.
    pub reports: std_mpsc::Sender<Report>,
    /// How many rows the writer has written: rows at or beyond this plus the
    /// window wait (the rows, never the requests in flight).
    pub written: watch::Receiver<u64>,
}

/// Runs every job through admission, the operation's requests and the retry
/// policy until the input is exhausted and nothing is in flight or waiting.
/// `sender` `None` is a dry run. After `cancel` completes (or the run stops
/// for another reason) nothing new is sent: requests in flight finish, jobs
/// waiting for a retry fail, jobs not sent yet are `not_attempted`.
pub async fn dispatch<O, T>(
    policy: &SendPolicy,
    sender: Option<(O, T)>,
    channels: Channels,
    cancel: impl Future<Output = ()>,
) -> Ended
where
    O: Operation,
    T: Transport,
{
    dispatch_counting(policy, sender, channels, cancel, &mut 0).await
}

/// [`dispatch`], also saying in `sent_out` how many requests it sent, however
/// it ends: a results writer that fails after the last request (a reader
/// of `-o -` gone late) must not pass for a run that sent nothing.
pub async fn dispatch_counting<O, T>(
    policy: &SendPolicy,
    sender: Option<(O, T)>,
    channels: Channels,
    cancel: impl Future<Output = ()>,
    sent_out: &mut u64,
) -> Ended
where
    O: Operation,
    T: Transport,
{
    let sender = sender.as_ref();
    // `row 7`, or `page 3` for a list: where a note says a thing happened.
    let noun = sender.map_or("row", |(operation, _)| operation.noun());
    let at = |job: &Job| format!("{noun} {}", job.row);
    let Channels {
        mut work,
        reports,
        mut written,
    } = channels;
    let concurrency = policy.concurrency.get();
    let window = policy.window.get() as u64;
    let retry = &policy.retry;
    let mut pacer = Pacer::new(&policy.rate);
    let mut in_flight = FuturesUnordered::new();
    let mut retries: BinaryHeap<Reverse<Delayed>> = BinaryHeap::new();
    let mut next: Option<Work> = None;
    // The batch being taken apart, without moving its rows again.
    let mut queued: std::vec::IntoIter<Work> = Vec::new().into_iter();
    let mut source_open = true;
    // Why nothing new is sent any more: Ctrl-C, a refused key, or a 429
    // asking for a wait beyond --max-wait (every other row would meet it too).
    let mut stopped: Option<StopReason> = None;
    let mut last_pause_note: Option<Instant> = None;
    // Whether any request got an answer, and the failed connections before one did.
    let mut reached = false;
    let mut unreachable_attempts = 0;
    // Requests sent, for the message when the record cannot be written.
    let mut sent: u64 = 0;
    // `--report`: answers second by second, handed to the writer at the end.
    let mut timeline = policy
        .timeline
        .then(|| Box::new(Timeline::new(Instant::now().into_std())));
    let cancel = cancel;
    tokio::pin!(cancel);

    let send = |report: Report| reports.send(report).is_ok();
    macro_rules! report {
        ($report:expr) => {
            if !send($report) {
                {
                    *sent_out = sent;
                    return Ended::SinkGone { sent };
                }
            }
        };
    }

    loop {
        // A stop asked for before this turn (even before the first row)
        // holds before anything more is admitted.
        if stopped.is_none() && futures::poll!(&mut cancel).is_ready() {
            stopped = Some(StopReason::Interrupted);
            report!(Report::Note(INTERRUPTED_NOTE.to_string()));
        }
        let now = Instant::now();
        let mut wake: Option<Instant> = None;
        let mut window_full = false;

        // Admit what can go now: due retries and next steps first (they are
        // older and hold the window), then the next row of the input.
        loop {
            if next.is_none() {
                if queued.len() == 0 && source_open {
                    match work.try_recv() {
                        Ok(batch) => queued = batch.into_iter(),
                        Err(mpsc::error::TryRecvError::Empty) => {}
                        Err(mpsc::error::TryRecvError::Disconnected) => source_open = false,
                    }
                }
                next = queued.next();
            }
            if let Some(why) = &stopped {
                while let Some(Reverse(delayed)) = retries.pop() {
                    report!(Report::Row(interrupted(delayed.job, why)));
                }
            }
            let retry_due = retries.peek().is_some_and(|r| r.0.due <= now);
            if !retry_due {
                match next.take() {
                    Some(item) if item.seq() >= *written.borrow_and_update() + window => {
                        next = Some(item);
                        window_full = true;
                    }
                    Some(Work::Done(outcome)) => {
                        report!(Report::Row(outcome));
                        continue;
                    }
                    Some(Work::Send(job)) if stopped.is_some() => {
                        let why = stopped.as_ref().expect("the run stopped");
                        report!(Report::Row(not_attempted(job, why)));
                        continue;
                    }
                    Some(Work::Send(job)) if sender.is_none() => {
                        report!(Report::Row(would_update(job)));
                        continue;
                    }
                    // A job the operation can decide without a request (a
                    // plan from the account's list) never waits for one.
                    Some(Work::Send(mut job)) if !job.decided => {
                        job.decided = true;
                        let (operation, _) = sender.expect("a run that sends has an operation");
                        match operation.decide(&mut job) {
                            Some(Step::Done {
                                status,
                                error,
                                changes,
                                user,
                            }) => {
                                report!(Report::Row(finish(
                                    job, status, None, error, &changes, user
                                )));
                                continue;
                            }
                            Some(Step::Halt { error }) => {
                                let why = StopReason::Halted { message: error };
                                report!(Report::Note(format!("stopping: {why}")));
                                report!(Report::Row(not_attempted(job, &why)));
                                stopped = Some(why);
                                continue;
                            }
                            Some(Step::Next) | None => next = Some(Work::Send(job)),
                        }
                    }
                    other => next = other,
                }
            }
            let has_candidate = retry_due || matches!(next, Some(Work::Send(_)) if !window_full);
            if !has_candidate || in_flight.len() >= concurrency {
                break;
            }
            let Some((operation, transport)) = sender else {
                unreachable!("a dry run has nothing to send")
            };
            if let Err(at) = pacer.try_admit(now) {
                wake = Some(at);
                break;
            }
            let job = if retry_due {
                retries.pop().expect("a retry is due").0.job
            } else {
                match next.take() {
                    Some(Work::Send(job)) => job,
                    _ => unreachable!("the candidate is a row to send"),
                }
            };
            // The requests are polled here, with the dispatcher, on the
            // run's one thread: a task each cost CPU (issue 12) and bought
            // nothing with one thread to run them. The job stays with the
            // dispatcher: a panic while its request is sent fails its row
            // instead of losing it.
            let call = operation.call(&job);
            // When it went, for `-v` and the report's answer times.
            let timed = policy.verbose || timeline.is_some();
            let traced = timed.then(|| {
                let what = if policy.verbose {
                    call.describe()
                } else {
                    String::new()
                };
                (what, Instant::now())
            });
            let request = AssertUnwindSafe(transport.send(call)).catch_unwind();
            sent += 1;
            in_flight.push(async move { (job, traced, request.await) });
        }
        if let Some(Reverse(first)) = retries.peek()
            && first.due > now
            && in_flight.len() < concurrency
        {
            wake = Some(wake.map_or(first.due, |at| at.min(first.due)));
        }
        if !source_open
            && next.is_none()
            && queued.len() == 0
            && retries.is_empty()
            && in_flight.is_empty()
        {
            if let Some(mut timeline) = timeline.take() {
                timeline.ended(Instant::now().into_std());
                report!(Report::Timeline(timeline));
            }
            if sender.is_some() {
                let (rate, drops) = pacer.rate();
                report!(Report::Rate(RateReport {
                    rate,
                    drops,
                    auto: policy.rate.is_auto(),
                }));
            }
            *sent_out = sent;
            return match stopped {
                Some(why) => Ended::Stopped(why),
                None => Ended::Finished,
            };
        }

        tokio::select! {
            biased;
            () = &mut cancel, if stopped.is_none() => {
                stopped = Some(StopReason::Interrupted);
                report!(Report::Note(INTERRUPTED_NOTE.to_string()));
            }
            Some(joined) = in_flight.next(), if !in_flight.is_empty() => {
                let (mut job, traced, answer) = joined;
                let kind = answer_kind(&answer);
                let now = Instant::now();
                let took = traced.as_ref().map(|(_, sent)| now.duration_since(*sent));
                if let (Some(timeline), Some(took)) = (&mut timeline, took) {
                    timeline.answered(now.into_std(), took, kind, pacer.rate().0);
                }
                // `-v`: what was sent and what came back; what happens next
                // is added below, once it is decided. Made for `-v` only: no
                // text is made per answer otherwise.
                let attempt = traced.filter(|_| policy.verbose).map(|(what, _)| {
                    let took = took.unwrap_or_default();
                    (at(&job), what, took, answer_text(&answer))
                });
                let mut next_step = None;
                let Some((operation, _)) = sender else {
                    unreachable!("a dry run sends nothing")
                };
                job.attempts += 1;
                job.step_attempts += 1;
                // Every answer from the server steers the rate: a 429 lowers
                // it, the others let it climb back.
                let throttled_answer = match kind {
                    AnswerKind::Success | AnswerKind::Error => Some(false),
                    AnswerKind::Throttled => Some(true),
                    AnswerKind::NoAnswer => None,
                };
                if let Some(throttled) = throttled_answer {
                    pacer.answered(now, throttled);
                    let bursts = pacer.bursts_in_a_row();
                    if bursts >= StopReason::THROTTLED_ALWAYS_AFTER && stopped.is_none() {
                        let why = StopReason::ThrottledAlways {
                            bursts,
                            rate: pacer.rate().0,
                        };
                        report!(Report::Note(format!("stopping: {why}")));
                        stopped = Some(why);
                    }
                }
                let report = match answer {
                    Err(_panic) => {
                        let error = "this tool failed while sending the request (a panic); the \
                                     change may or may not have been made"
                            .to_string();
                        Some(failed(job, None, error))
                    }
                    Ok(Answer::Success { status, reply }) => {
                        reached = true;
                        match operation.answered(&mut job, reply) {
                            Step::Done { status: row_status, error, changes, user } => {
                                Some(finish(job, row_status, Some(status), error, &changes, user))
                            }
                            Step::Halt { error } => {
                                if stopped.is_none() {
                                    let why = StopReason::Halted { message: error };
                                    report!(Report::Note(format!("stopping: {why}")));
                                    stopped = Some(why);
                                }
                                let why = stopped.as_ref().expect("the run has stopped");
                                Some(not_attempted(job, why))
                            }
                            Step::Next => {
                                next_step = Some("the next request of the row".to_string());
                                job.step_attempts = 0;
                                job.last_failure = None;
                                retries.push(Reverse(Delayed { due: now, job }));
                                None
                            }
                        }
                    }
                    Ok(Answer::Failed { status, error }) => {
                        reached = true;
                        if let Some(why) = StopReason::for_refusal(status, || at(&job), policy.key_from.as_deref())
                            && stopped.is_none()
                        {
                            report!(Report::Note(format!("stopping: {why}")));
                            stopped = Some(why);
                        }
                        Some(failed(job, Some(status), error))
                    }
                    Ok(Answer::Untrusted { error }) => {
                        job.unsent += 1;
                        // The request never left: the connection was refused first.
                        if stopped.is_none() {
                            let why = StopReason::Untrusted { message: error.clone() };
                            report!(Report::Note(format!("stopping: {why}")));
                            stopped = Some(why);
                        }
                        Some(failed(job, None, error))
                    }
                    Ok(Answer::Retryable { status, retry_after, error, unreachable }) => {
                        if unreachable {
                            job.unsent += 1;
                        }
                        reached |= !unreachable;
                        if unreachable && !reached {
                            unreachable_attempts += 1;
                            if unreachable_attempts >= StopReason::UNREACHABLE_AFTER
                                && stopped.is_none()
                            {
                                let why = StopReason::Unreachable { attempts: unreachable_attempts };
                                report!(Report::Note(format!("stopping: {why}")));
                                stopped = Some(why);
                            }
                        }
                        let throttled = status == Some(429);
                        if throttled {
                            job.throttled += 1;
                        }
                        let decision = if let Some(why) = &stopped {
                            Decision::GiveUp(format!("not retried: {why}"))
                        } else {
                            retry.decide(job.step_attempts, retry_after)
                        };
                        if throttled {
                            // The whole run waits, not just this row.
                            let wait = match &decision {
                                Decision::RetryIn(wait) => *wait,
                                Decision::GiveUp(_) => Duration::ZERO,
                            };
                            if let Some(asked) = retry_after.filter(|w| *w > retry.max_wait)
                                && stopped.is_none()
                            {
                                let why = StopReason::ThrottledTooLong {
                                    at: at(&job),
                                    asked,
                                    max_wait: retry.max_wait,
                                };
                                report!(Report::Note(format!("stopping: {why}")));
                                stopped = Some(why);
                            }
                            let started = pacer.pause(later(now, wait));
                            if let Some(timeline) = &mut timeline {
                                timeline.paused(now.into_std(), wait);
                            }
                            let quiet_since = last_pause_note
                                .is_none_or(|at| now.duration_since(at) >= PAUSE_NOTE_EVERY);
                            if started && wait >= PAUSE_NOTE_MIN && quiet_since {
                                last_pause_note = Some(now);
                                let note = format!(
                                    "throttled (HTTP 429 on {}): pausing all requests for {:.1} s",
                                    at(&job),
                                    wait.as_secs_f64()
                                );
                                report!(Report::Note(note));
                            }
                        }
                        match decision {
                            Decision::RetryIn(wait) => {
                                next_step = Some(format!("retry in {:.1} s", wait.as_secs_f64()));
                                job.retries += 1;
                                job.last_failure = Some((status, error));
                                retries.push(Reverse(Delayed { due: later(now, wait), job }));
                                None
                            }
                            Decision::GiveUp(why) => Some(failed(job, status, format!("{error}; {why}"))),
                        }
                    }
                };
                if let Some((row, what, took, status)) = attempt {
                    let next = match (&report, next_step) {
                        (Some(outcome), _) => {
                            format!("{noun} {}", operation.ended_as(outcome.record.status))
                        }
                        (None, Some(step)) => step,
                        (None, None) => "-".to_string(),
                    };
                    let when = humantime::format_rfc3339_millis(std::time::SystemTime::now());
                    report!(Report::Attempt(format!(
                        "{when} {row} {what} -> {status} in {} ms: {next}",
                        took.as_millis()
                    )));
                }
                if let Some(outcome) = report {
                    report!(Report::Row(outcome));
                }
            }
            batch = work.recv(), if next.is_none() && queued.len() == 0 && source_open => {
                match batch {
                    Some(batch) => {
                        queued = batch.into_iter();
                        next = queued.next();
                    }
                    None => source_open = false,
                }
            }
            changed = written.changed(), if window_full => {
                if changed.is_err() {
                    {
                    *sent_out = sent;
                    return Ended::SinkGone { sent };
                }
                }
            }
            () = sleep_until(wake), if wake.is_some() => {}
        }
    }
}

/// What kind of answer it is: what steers the rate, and what the report's
/// timeline counts.
fn answer_kind<E>(answer: &Result<Answer, E>) -> AnswerKind {
    match answer {
        Ok(Answer::Success { .. }) => AnswerKind::Success,
        Ok(Answer::Retryable {
            status: Some(429), ..
        }) => AnswerKind::Throttled,
        Ok(
            Answer::Failed { .. }
            | Answer::Retryable {
                status: Some(_), ..
            },
        ) => AnswerKind::Error,
        Ok(Answer::Retryable { status: None, .. } | Answer::Untrusted { .. }) | Err(_) => {
            AnswerKind::NoAnswer
        }
    }
}

/// How `-v` tells an answer: its status, or what came instead.
fn answer_text<E>(answer: &Result<Answer, E>) -> String {
    match answer {
        Ok(Answer::Success { status, .. } | Answer::Failed { status, .. }) => status.to_string(),
        Ok(Answer::Retryable {
            status: Some(status),
            ..
        }) => status.to_string(),
        Ok(Answer::Retryable { error, .. }) => format!("no answer ({error})"),
        Ok(Answer::Untrusted { .. }) => "certificate not trusted".to_string(),
        Err(_) => "a panic in this tool".to_string(),
    }
}

/// A job waiting for a retry or its next step.
struct Delayed {
    due: Instant,
    job: Job,
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.job.seq) == (other.due, other.job.seq)
    }
}
impl Eq for Delayed {}
impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Delayed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.job.seq).cmp(&(other.due, other.job.seq))
    }
}

/// Sleeps until `at`, to a fraction of a millisecond. tokio's timer fires on
/// whole milliseconds, up to one late, and at high rates that lateness is
/// lost rate: with a burst of 1, every late slot moves the next one back
/// (--rate 200 gave 164/s). So the last stretch is slept on a blocking thread
/// with the operating system's precise sleep.
async fn sleep_until(at: Option<Instant>) {
    const COARSE_MARGIN: Duration = Duration::from_millis(2);
    let Some(at) = at else { return };
    if let Some(coarse) = at.checked_sub(COARSE_MARGIN)
        && coarse > Instant::now()
    {
        tokio::time::sleep_until(coarse).await;
    }
    let remaining = at.saturating_duration_since(Instant::now());
    if !remaining.is_zero() {
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(remaining)).await;
    }
}

/// The row's outcome. `attempts` counts the requests that left this
/// machine; a row none of whose requests did is `not_attempted`, whatever
/// went wrong on the way.
fn finish(
    job: Job,
    status: Status,
    http_status: Option<u16>,
    error: String,
    changes: &[Change],
    user: Option<Box<User>>,
) -> Outcome {
    let attempts = job.attempts.saturating_sub(job.unsent);
    let status = match status {
        Status::FAILED if attempts == 0 => Status::NOT_ATTEMPTED,
        status => status,
    };
    let error = match status {
        Status::NOT_ATTEMPTED if !error.starts_with("not sent") => format!("not sent: {error}"),
        _ => error,
    };
    Outcome {
        seq: job.seq,
        throttled: job.throttled,
        retries: job.retries,
        changed: FieldSet::of(changes),
        record: ResultRecord {
            row: job.row,
            user_id: job.user_id_text,
            status,
            http_status,
            attempts,
            error,
            request: job.request,
            changes: describe(changes),
            user,
        },
    }
}

fn failed(job: Job, status: Option<u16>, error: String) -> Outcome {
    finish(job, Status::FAILED, status, error, &[], None)
}

/// A job waiting when the run stopped: `failed` when its last request
/// failed, `not_attempted` when its next step was never sent.
fn interrupted(mut job: Job, why: &StopReason) -> Outcome {
    // The retry it waited for was counted when it was planned, and never
    // sent.
    job.retries = job.retries.saturating_sub(1);
    match job.last_failure.take() {
        Some((status, error)) => failed(job, status, format!("{error}; not retried: {why}")),
        None => not_attempted(job, why),
    }
}

fn not_attempted(job: Job, why: &StopReason) -> Outcome {
    let error = format!("not sent: {why}");
    finish(job, Status::NOT_ATTEMPTED, None, error, &[], None)
}

fn would_update(job: Job) -> Outcome {
    finish(job, Status::WOULD_UPDATE, None, String::new(), &[], None)
}
