//! The dispatch loop: one task owns admission (the rate limiter, the run-wide
//! pause after a 429 and the concurrency limit), hands rows to requests in
//! flight, and decides retries. Its policies are values passed in (`Rate`,
//! `RetryPolicy`, the reorder window) and the attempt itself is a function,
//! so later stages (a plan that GETs users first, an adaptive rate) reuse the
//! same loop. Outcomes go, unordered, to the one results writer.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::client::Answer;
use crate::config::RunConfig;
use crate::results::{Outcome, Report, Status};

/// Requests per second for the whole run, retries included, and the burst.
#[derive(Debug, Clone, PartialEq)]
pub struct Rate {
    per_second: Option<f64>,
    burst: NonZeroU32,
}

impl Rate {
    /// Faster than this is "no limit" in all but name; it also keeps the
    /// limiter's period above a nanosecond.
    pub const MAX: f64 = 1_000_000.0;

    /// `per_second` 0 means no limit.
    pub fn new(per_second: f64, burst: NonZeroU32) -> Result<Rate, String> {
        if !per_second.is_finite() || !(0.0..=Self::MAX).contains(&per_second) {
            return Err(format!(
                "--rate {per_second} must be between 0 (no limit) and {}",
                Self::MAX
            ));
        }
        Ok(Rate {
            per_second: (per_second > 0.0).then_some(per_second),
            burst,
        })
    }

    pub fn unlimited() -> Rate {
        Rate {
            per_second: None,
            burst: NonZeroU32::MIN,
        }
    }

    pub fn per_second(&self) -> Option<f64> {
        self.per_second
    }

    /// The governor quota: one request every 1/R s, and the burst set
    /// explicitly (`Quota::per_second(n)` alone would let n through at once).
    ///
    /// One request of a burst above 1 is kept in reserve: a server whose
    /// bucket has the same rate and burst sees requests a little later or
    /// earlier than they were sent (new connections, scheduling), and a tool
    /// that spends its whole burst runs exactly at the bucket's edge, where
    /// the smallest jitter costs a 429 and a pause of the whole run. The
    /// reserve costs one request at the start and nothing after.
    fn quota(&self) -> Option<Quota> {
        let per_second = self.per_second?;
        let period = Duration::from_secs_f64(1.0 / per_second);
        let burst = NonZeroU32::new(self.burst.get() - 1).unwrap_or(NonZeroU32::MIN);
        Quota::with_period(period).map(|quota| quota.allow_burst(burst))
    }
}

/// When and how often to try a row again.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The first backoff ceiling; it doubles after each failure...
    pub base: Duration,
    /// ...up to this. The wait is drawn uniformly below the ceiling (full jitter).
    pub cap: Duration,
    /// The longest wait a server may ask for (`Retry-After`); beyond it the
    /// row fails rather than holding the run.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            max_wait: Duration::from_secs(300),
        }
    }
}

/// What to do after a retryable answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    RetryIn(Duration),
    /// Why not: appended to the row's error.
    GiveUp(String),
}

impl RetryPolicy {
    /// The backoff ceiling after `failures` failed attempts (1 = the first).
    pub fn ceiling(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// After `attempts` attempts, the last of them retryable; `retry_after` is
    /// what the server asked for, obeyed even above the cap (up to `max_wait`).
    pub fn decide(&self, attempts: u32, retry_after: Option<Duration>) -> Decision {
        if attempts > self.max_retries {
            let tries = if attempts == 1 { "attempt" } else { "attempts" };
            return Decision::GiveUp(format!("gave up after {attempts} {tries}"));
        }
        match retry_after {
            Some(wait) if wait > self.max_wait => Decision::GiveUp(format!(
                "the server asked to wait {:.0} s, more than --max-wait {:.0} s",
                wait.as_secs_f64(),
                self.max_wait.as_secs_f64()
            )),
            Some(wait) => Decision::RetryIn(wait),
            None => {
                let ceiling = self.ceiling(attempts);
                Decision::RetryIn(ceiling.mul_f64(rand::random_range(0.0..=1.0)))
            }
        }
    }
}

/// Admission for the whole run: the rate limiter and the pause a 429 imposes.
/// Owned by the dispatcher alone, so no request waits on it by itself.
pub struct Pacer {
    limiter: Option<DefaultDirectRateLimiter>,
    paused_until: Option<Instant>,
}

impl Pacer {
    pub fn new(rate: &Rate) -> Pacer {
        Pacer {
            limiter: rate.quota().map(RateLimiter::direct),
            paused_until: None,
        }
    }

    /// `Ok` takes a slot to send now; `Err` says when to ask again.
    pub fn try_admit(&mut self, now: Instant) -> Result<(), Instant> {
        if let Some(until) = self.paused_until {
            if until > now {
                return Err(until);
            }
            self.paused_until = None;
        }
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter
            .check()
            .map_err(|not_until| now + not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Holds every admission until `until`; returns true when this starts or
    /// extends a pause.
    pub fn pause(&mut self, until: Instant) -> bool {
        if self.paused_until.is_some_and(|current| current >= until) {
            return false;
        }
        self.paused_until = Some(until);
        true
    }
}

/// A row to send.
#[derive(Debug, Clone)]
pub struct Job {
    /// 0-based position among the input's records: the writer's order.
    pub seq: u64,
    pub row: u64,
    pub user_id: u64,
    pub user_id_text: String,
    /// The JSON body, sent as is on every attempt.
    pub request: String,
    pub attempts: u32,
    pub throttled: u32,
    /// The status and error of the last retryable attempt, for the results
    /// when the row is not retried after all.
    pub last_failure: Option<(Option<u16>, String)>,
}

/// What the check stage hands the dispatcher, in input order.
#[derive(Debug)]
pub enum Work {
    Send(Job),
    /// Already decided (skipped, invalid, not attempted): only written.
    Done(Outcome),
}

impl Work {
    fn seq(&self) -> u64 {
        match self {
            Work::Send(job) => job.seq,
            Work::Done(outcome) => outcome.seq,
        }
    }
}

/// A row waiting for its retry.
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

/// Runs every row through admission, the attempt and the retry policy until
/// the input is exhausted and nothing is in flight or waiting. After `cancel`
/// completes nothing new is sent: requests in flight finish, rows waiting for
/// a retry fail, rows not sent yet are `not_attempted`.
///
/// Returns early only when the writer is gone (it failed; it reports why).
pub async fn dispatch<A, F>(
    config: &RunConfig,
    attempt: A,
    channels: Channels,
    cancel: impl Future<Output = ()>,
) where
    A: Fn(&Job) -> F,
    F: Future<Output = Answer> + Send + 'static,
{
    let Channels {
        mut work,
        reports,
        mut written,
    } = channels;
    let concurrency = config.concurrency.get();
    let window = config.window.get() as u64;
    let policy = &config.retry;
    let mut pacer = Pacer::new(&config.rate);
    let mut in_flight = FuturesUnordered::new();
    let mut retries: BinaryHeap<Reverse<Delayed>> = BinaryHeap::new();
    let mut next: Option<Work> = None;
    let mut queued: VecDeque<Work> = VecDeque::new();
    let mut source_open = true;
    // Why nothing new is sent any more: Ctrl-C, or a 429 asking for a wait
    // beyond --max-wait (every other row would be refused too).
    let mut stopped: Option<String> = None;
    let mut last_pause_note: Option<Instant> = None;
    let cancel = cancel;
    tokio::pin!(cancel);

    let send = |report: Report| reports.send(report).is_ok();

    loop {
        let now = Instant::now();
        let mut wake: Option<Instant> = None;
        let mut window_full = false;

        // Admit what can go now: due retries first (they are older and hold
        // the window), then the next row of the input.
        loop {
            if next.is_none() {
                if queued.is_empty() && source_open {
                    match work.try_recv() {
                        Ok(batch) => queued.extend(batch),
                        Err(mpsc::error::TryRecvError::Empty) => {}
                        Err(mpsc::error::TryRecvError::Disconnected) => source_open = false,
                    }
                }
                next = queued.pop_front();
            }
            if let Some(why) = &stopped {
                while let Some(Reverse(delayed)) = retries.pop() {
                    if !send(Report::Row(interrupted(delayed.job, why))) {
                        return;
                    }
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
                        if !send(Report::Row(outcome)) {
                            return;
                        }
                        continue;
                    }
                    Some(Work::Send(job)) if stopped.is_some() => {
                        let why = stopped.as_deref().unwrap_or_default();
                        if !send(Report::Row(not_attempted(job, why))) {
                            return;
                        }
                        continue;
                    }
                    other => next = other,
                }
            }
            let has_candidate = retry_due || matches!(next, Some(Work::Send(_)) if !window_full);
            if !has_candidate || in_flight.len() >= concurrency {
                break;
            }
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
            // Each attempt is a task of its own, so the runtime's workers drive
            // the requests and the dispatcher only admits and decides.
            let answer = attempt(&job);
            in_flight.push(tokio::spawn(async move { (job, answer.await) }));
        }
        if let Some(Reverse(first)) = retries.peek()
            && first.due > now
            && in_flight.len() < concurrency
        {
            wake = Some(wake.map_or(first.due, |at| at.min(first.due)));
        }
        if !source_open
            && next.is_none()
            && queued.is_empty()
            && retries.is_empty()
            && in_flight.is_empty()
        {
            return;
        }

        tokio::select! {
            biased;
            () = &mut cancel, if stopped.is_none() => {
                stopped = Some("the run was interrupted".to_string());
                let note = "interrupted: finishing the requests in flight; press Ctrl-C again to \
                            quit at once";
                if !send(Report::Note(note.to_string())) {
                    return;
                }
            }
            Some(joined) = in_flight.next(), if !in_flight.is_empty() => {
                let (mut job, answer) = joined.expect("an attempt does not panic");
                job.attempts += 1;
                let now = Instant::now();
                let report = match answer {
                    Answer::Updated { status, user } => Some(updated(job, status, user)),
                    Answer::Failed { status, error } => {
                        if let Some(why) = stops_the_run(status, job.row)
                            && stopped.is_none()
                        {
                            if !send(Report::Note(format!("stopping: {why}"))) {
                                return;
                            }
                            stopped = Some(why);
                        }
                        Some(failed(job, Some(status), error))
                    }
                    Answer::Retryable { status, retry_after, error } => {
                        let throttled = status == Some(429);
                        if throttled {
                            job.throttled += 1;
                        }
                        let decision = if let Some(why) = &stopped {
                            Decision::GiveUp(format!("not retried: {why}"))
                        } else {
                            policy.decide(job.attempts, retry_after)
                        };
                        if throttled {
                            // The whole run waits, not just this row.
                            let wait = match &decision {
                                Decision::RetryIn(wait) => *wait,
                                Decision::GiveUp(_) => Duration::ZERO,
                            };
                            if let Some(asked) = retry_after.filter(|w| *w > policy.max_wait)
                                && stopped.is_none()
                            {
                                let why = format!(
                                    "the server throttled the run for {:.0} s (HTTP 429 on row {}), \
                                     more than --max-wait {:.0} s",
                                    asked.as_secs_f64(),
                                    job.row,
                                    policy.max_wait.as_secs_f64()
                                );
                                if !send(Report::Note(format!("stopping: {why}"))) {
                                    return;
                                }
                                stopped = Some(why);
                            }
                            let started = pacer.pause(now + wait);
                            let quiet_since = last_pause_note
                                .is_none_or(|at| now.duration_since(at) >= PAUSE_NOTE_EVERY);
                            if started && wait >= PAUSE_NOTE_MIN && quiet_since {
                                last_pause_note = Some(now);
                                let note = format!(
                                    "throttled (HTTP 429 on row {}): pausing all requests for {:.1} s",
                                    job.row,
                                    wait.as_secs_f64()
                                );
                                if !send(Report::Note(note)) {
                                    return;
                                }
                            }
                        }
                        match decision {
                            Decision::RetryIn(wait) => {
                                job.last_failure = Some((status, error));
                                retries.push(Reverse(Delayed { due: now + wait, job }));
                                None
                            }
                            Decision::GiveUp(why) => Some(failed(job, status, format!("{error}; {why}"))),
                        }
                    }
                };
                if let Some(outcome) = report
                    && !send(Report::Row(outcome))
                {
                    return;
                }
            }
            batch = work.recv(), if next.is_none() && queued.is_empty() && source_open => {
                match batch {
                    Some(batch) => {
                        queued.extend(batch);
                        next = queued.pop_front();
                    }
                    None => source_open = false,
                }
            }
            changed = written.changed(), if window_full => {
                if changed.is_err() {
                    return;
                }
            }
            () = sleep_until(wake), if wake.is_some() => {}
        }
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

/// A refusal that every other row would meet too. A 401 means the key
/// itself is refused: sending the rest of a million rows would only fail them
/// one by one (and hammer the API), so the run stops as after Ctrl-C. A 403
/// does not stop it: it may concern one user only.
fn stops_the_run(status: u16, row: u64) -> Option<String> {
    (status == 401).then(|| {
        format!(
            "the API refused the key (HTTP 401 on row {row}); check GCORE_API_KEY or \
             --api-key-file"
        )
    })
}

fn outcome(job: Job, status: Status) -> Outcome {
    Outcome {
        seq: job.seq,
        row: job.row,
        user_id: job.user_id_text,
        status,
        http_status: None,
        attempts: job.attempts,
        throttled: job.throttled,
        error: String::new(),
        request: job.request,
        user: None,
    }
}

fn updated(job: Job, status: u16, user: Result<Box<crate::api::User>, String>) -> Outcome {
    let mut outcome = outcome(job, Status::Updated);
    outcome.http_status = Some(status);
    match user {
        Ok(user) => outcome.user = Some(user),
        Err(error) => outcome.error = error,
    }
    outcome
}

fn failed(job: Job, status: Option<u16>, error: String) -> Outcome {
    Outcome {
        http_status: status,
        error,
        ..outcome(job, Status::Failed)
    }
}

/// A row waiting for a retry when the run stopped: it was sent and failed.
fn interrupted(mut job: Job, why: &str) -> Outcome {
    let (status, error) = job.last_failure.take().unwrap_or_default();
    failed(job, status, format!("{error}; not retried: {why}"))
}

fn not_attempted(job: Job, why: &str) -> Outcome {
    Outcome {
        error: format!("not sent: {why}"),
        ..outcome(job, Status::NotAttempted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_full_jitter() {
        let policy = RetryPolicy::default();
        let ceilings: Vec<f64> = (1..=9).map(|n| policy.ceiling(n).as_secs_f64()).collect();
        assert_eq!(ceilings, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]);
        assert_eq!(policy.ceiling(1000), policy.cap);
        for attempts in 1..=5 {
            match policy.decide(attempts, None) {
                Decision::RetryIn(wait) => assert!(wait <= policy.ceiling(attempts)),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn retry_after_is_obeyed_above_the_cap_up_to_max_wait() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.decide(1, Some(Duration::from_secs(120))),
            Decision::RetryIn(Duration::from_secs(120))
        );
        let Decision::GiveUp(why) = policy.decide(1, Some(Duration::from_secs(301))) else {
            panic!("a wait over --max-wait fails the row");
        };
        assert!(why.contains("--max-wait 300 s"), "{why}");
        let Decision::GiveUp(why) = policy.decide(6, Some(Duration::from_secs(1))) else {
            panic!("the sixth attempt is the last of 1 + 5 retries");
        };
        assert_eq!(why, "gave up after 6 attempts");
        let none = RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        };
        assert!(matches!(none.decide(1, None), Decision::GiveUp(_)));
    }

    #[test]
    fn rates_are_checked_and_the_burst_is_explicit() {
        let one = NonZeroU32::MIN;
        assert_eq!(Rate::new(0.0, one).unwrap().per_second(), None);
        assert!(Rate::new(-1.0, one).is_err());
        assert!(Rate::new(f64::INFINITY, one).is_err());
        let quota = Rate::new(10.0, NonZeroU32::new(3).unwrap())
            .unwrap()
            .quota()
            .unwrap();
        assert_eq!(quota.replenish_interval(), Duration::from_millis(100));
        assert_eq!(quota.burst_size().get(), 2, "one request in reserve");
        let slow = Rate::new(0.5, one).unwrap().quota().unwrap();
        assert_eq!(slow.replenish_interval(), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn the_pacer_holds_the_burst_then_paces_and_pauses() {
        let mut pacer = Pacer::new(&Rate::new(10.0, NonZeroU32::new(3).unwrap()).unwrap());
        let now = Instant::now();
        assert!(pacer.try_admit(now).is_ok());
        assert!(pacer.try_admit(now).is_ok());
        let again = pacer.try_admit(now).unwrap_err();
        assert!(again > now && again <= now + Duration::from_millis(110));
        let mut unlimited = Pacer::new(&Rate::unlimited());
        assert!((0..1000).all(|_| unlimited.try_admit(now).is_ok()));
        assert!(unlimited.pause(now + Duration::from_secs(2)));
        assert!(!unlimited.pause(now + Duration::from_secs(1)));
        assert_eq!(unlimited.try_admit(now), Err(now + Duration::from_secs(2)));
        assert!(unlimited.try_admit(now + Duration::from_secs(2)).is_ok());
    }
}
