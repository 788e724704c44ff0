//! The dispatch loop, in named steps. A [`Dispatcher`] holds the loop's
//! state and decides; [`dispatch_counting`] owns what it waits on (the
//! requests in flight, the input, the writer's progress, the timer, Ctrl-C)
//! and drives the steps from one `select!`:
//! - [`Dispatcher::admit`]: the next job to send, through the window, the
//!   concurrency limit, the rate and the run-wide pause after a 429
//!   (`admit.rs`);
//! - [`Dispatcher::on_retry`]: a retry (or a job's next step) coming due
//!   (`admit.rs`);
//! - [`Dispatcher::on_answer`]: the answer to an attempt (`answer.rs`);
//! - [`Dispatcher::stop`]: a reason to send nothing new.
//!
//! Each step reports to the results writer as it goes; `Err(Gone)` says the
//! writer is gone, and ends the loop.

mod admit;
mod answer;
#[cfg(test)]
mod tests;

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

use crate::http::Transport;
use crate::policy::{Pacer, SendPolicy, StopReason};

use super::events::{RateReport, Report};
use super::timeline::Timeline;
use super::{Channels, Ended, Job, Operation, Step, Work};
use answer::{Answered, Traced};

/// Said on Ctrl-C and on SIGTERM alike (cron's timeout has no terminal):
/// only SIGINT quits at once after either.
const INTERRUPTED_NOTE: &str =
    "interrupted: finishing the requests in flight; a Ctrl-C (SIGINT) now quits at once";

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

/// [`dispatch`], also saying in `sent_out` how many requests that may
/// change the account it sent (reads are not counted), however it ends: a
/// results writer that fails after the last request (a reader of `-o -`
/// gone late) must not pass for a run that changed nothing.
pub(crate) async fn dispatch_counting<O, T>(
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
    let operation = sender.as_ref().map(|(operation, _)| operation);
    let transport = sender.as_ref().map(|(_, transport)| transport);
    let mut dispatcher = Dispatcher::new(policy, operation, channels);
    let ended = drive(&mut dispatcher, transport, cancel).await;
    *sent_out = dispatcher.sent;
    ended.unwrap_or(Ended::SinkGone {
        sent: dispatcher.sent,
    })
}

/// The loop: admits what can go, then waits for whatever comes first.
async fn drive<O, T>(
    d: &mut Dispatcher<'_, O>,
    transport: Option<&T>,
    cancel: impl Future<Output = ()>,
) -> Result<Ended, Gone>
where
    O: Operation,
    T: Transport,
{
    tokio::pin!(cancel);
    let mut in_flight = FuturesUnordered::new();
    loop {
        // A stop asked for before this turn (even before the first row)
        // holds before anything more is admitted.
        if d.stopped.is_none() && futures::poll!(&mut cancel).is_ready() {
            d.stop(StopReason::Interrupted)?;
        }
        let now = Instant::now();
        let paced = loop {
            match d.admit(now)? {
                Admission::Send(job) => {
                    // The requests are polled here, with the dispatcher, on
                    // the run's one thread: a task each cost CPU (issue 12)
                    // and bought nothing with one thread to run them. The
                    // job stays with the dispatcher: a panic while its
                    // request is sent fails its row instead of losing it.
                    let transport = transport.expect("a run that sends has a transport");
                    let (call, traced) = d.request(&job);
                    let answer = AssertUnwindSafe(transport.send(call)).catch_unwind();
                    in_flight.push(async move {
                        let answer = answer.await;
                        Answered {
                            job,
                            traced,
                            answer,
                        }
                    });
                }
                Admission::Wait(paced) => break paced,
            }
        };
        let wake = d.wake(now, paced);
        if d.idle() {
            return d.end();
        }

        tokio::select! {
            biased;
            () = &mut cancel, if d.stopped.is_none() => d.stop(StopReason::Interrupted)?,
            Some(answered) = in_flight.next(), if !in_flight.is_empty() => {
                d.on_answer(Instant::now(), answered)?;
            }
            batch = d.work.recv(), if d.wants_input() => d.on_batch(batch),
            changed = d.written.changed(), if d.window_full => changed.map_err(|_| Gone)?,
            () = sleep_until(wake), if wake.is_some() => {}
        }
    }
}

/// The results writer is gone (it failed, and reports why): the loop ends.
#[derive(Debug)]
struct Gone;

/// What admission decided.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "the job moves once per request; a box would cost an allocation per request"
)]
enum Admission {
    /// Send the job's current request now; it counts as in flight.
    Send(Job),
    /// Nothing more for now. `Some`: the rate or the pause after a 429
    /// admits again then.
    Wait(Option<Instant>),
}

/// The loop's state: the input's next rows, the jobs in flight and waiting,
/// the rate, and why nothing new is sent any more.
struct Dispatcher<'a, O> {
    policy: &'a SendPolicy,
    /// `None`: a dry run.
    operation: Option<&'a O>,
    /// `row`, or `page` for a list: where a note says a thing happened.
    noun: &'static str,
    reports: std_mpsc::Sender<Report>,
    work: mpsc::Receiver<Vec<Work>>,
    written: watch::Receiver<u64>,
    /// The batch being taken apart, without moving its rows again.
    queued: std::vec::IntoIter<Work>,
    /// The input's next row, not admitted yet.
    next: Option<Work>,
    source_open: bool,
    /// The next row waits for the writer: it is beyond the window.
    window_full: bool,
    pacer: Pacer,
    /// Jobs admitted whose answer has not come yet.
    in_flight: usize,
    /// Jobs waiting for a retry or their next step, the first due on top.
    retries: BinaryHeap<Reverse<Delayed>>,
    /// Why nothing new is sent any more: Ctrl-C, a refused key, or a 429
    /// asking for a wait beyond --max-wait (every other row would meet it
    /// too).
    stopped: Option<StopReason>,
    last_pause_note: Option<Instant>,
    /// Whether any request got an answer, and the failed connections before
    /// one did.
    reached: bool,
    unreachable_attempts: u32,
    /// Attempts in a row that got no answer at all (timeouts, dropped or
    /// failed connections), and since when: a server that never answers
    /// stops the run ([`StopReason::Silent`]).
    silent: Option<(Instant, u32)>,
    /// Since when no connection can be made to the API that answered
    /// before, and the attempts since (a proxy or network outage).
    outage: Option<(Instant, u32)>,
    /// The 2xx answers of the last second, and the most there were in any
    /// second: the rate the server let through, which the rate reported
    /// at the end never exceeds.
    recent_ok: std::collections::VecDeque<Instant>,
    most_ok: usize,
    /// Requests sent that may change the account (not reads), for the
    /// message when the record cannot be written.
    sent: u64,
    /// The account's other runs (`SendPolicy::share`): the version of the
    /// split last applied, and when this run last told its part.
    shared_seen: u64,
    shared_told: Option<Instant>,
    /// `--report`: answers second by second, handed to the writer at the end.
    timeline: Option<Box<Timeline>>,
}

impl<'a, O: Operation> Dispatcher<'a, O> {
    fn new(policy: &'a SendPolicy, operation: Option<&'a O>, channels: Channels) -> Self {
        let Channels {
            work,
            reports,
            written,
        } = channels;
        Dispatcher {
            policy,
            operation,
            noun: operation.map_or("row", |operation| operation.noun()),
            reports,
            work,
            written,
            queued: Vec::new().into_iter(),
            next: None,
            source_open: true,
            window_full: false,
            pacer: Pacer::new(&policy.rate),
            in_flight: 0,
            retries: BinaryHeap::new(),
            stopped: None,
            last_pause_note: None,
            reached: false,
            unreachable_attempts: 0,
            silent: None,
            outage: None,
            recent_ok: std::collections::VecDeque::new(),
            most_ok: 0,
            sent: 0,
            shared_seen: 0,
            shared_told: None,
            timeline: policy
                .timeline
                .then(|| Box::new(Timeline::new(Instant::now().into_std()))),
        }
    }

    /// Every quarter of a second, tells the account's other runs what this
    /// one gets through and met, and takes its part of the limit when it
    /// changed (see `policy::share`).
    fn share(&mut self, now: Instant) {
        let Some(shared) = &self.policy.share else {
            return;
        };
        if self
            .shared_told
            .is_some_and(|at| now.duration_since(at) < SHARE_EVERY)
        {
            return;
        }
        self.shared_told = Some(now);
        let ok = self.recent_ok.len() as f64;
        let Some((split, version)) = shared.report(ok, self.pacer.met(), self.shared_seen) else {
            return;
        };
        self.shared_seen = version;
        let before = self.pacer.runs();
        self.pacer.share(now, split);
        let note = match split {
            Some(split) if split.runs >= 2 && before != split.runs => format!(
                "rate: {} other run{} of this account {} running: this run takes {:.1} of its \
                 {:.1} requests/s",
                split.runs - 1,
                if split.runs == 2 { "" } else { "s" },
                if split.runs == 2 { "is" } else { "are" },
                split.part(),
                split.limit
            ),
            Some(split) if split.runs == 1 && before >= 2 => format!(
                "rate: the other runs of this account ended: this run takes its whole {:.1} \
                 requests/s",
                split.limit
            ),
            _ => return,
        };
        let _ = self.report(Report::Note(note));
    }

    fn report(&self, report: Report) -> Result<(), Gone> {
        self.reports.send(report).map_err(|_| Gone)
    }

    /// `row 7`, or `page 3` for a list: where a note says a thing happened.
    fn at(&self, job: &Job) -> String {
        match self.operation {
            Some(operation) => operation.at(job),
            None => format!("{} {}", self.noun, job.row()),
        }
    }

    /// Stops the sending for `why`, unless it stopped already (the first
    /// reason is the one told). From then on nothing new is sent: requests
    /// in flight finish, and a retryable answer to one is not retried; jobs
    /// waiting end at the next admission ([`Self::on_retry`]); rows not sent
    /// yet are `not_attempted` as they come ([`Self::settle_next`]).
    fn stop(&mut self, why: StopReason) -> Result<(), Gone> {
        if self.stopped.is_some() {
            return Ok(());
        }
        let note = match why {
            StopReason::Interrupted => INTERRUPTED_NOTE.to_string(),
            _ => format!("stopping: {why}"),
        };
        self.report(Report::Note(note))?;
        self.stopped = Some(why);
        Ok(())
    }

    /// Whether every job went through: the input is exhausted, and nothing
    /// is in flight or waiting.
    fn idle(&self) -> bool {
        !self.source_open
            && self.next.is_none()
            && self.queued.len() == 0
            && self.retries.is_empty()
            && self.in_flight == 0
    }

    /// The last reports (the timeline, the rate), and why the loop ended.
    fn end(&mut self) -> Result<Ended, Gone> {
        if let Some(mut timeline) = self.timeline.take() {
            timeline.ended(Instant::now().into_std());
            self.report(Report::Timeline(timeline))?;
        }
        if self.operation.is_some() {
            let (rate, drops) = self.pacer.rate();
            self.report(Report::Rate(RateReport {
                rate,
                drops,
                most_ok: self.most_ok as u64,
                auto: self.policy.rate.is_auto(),
            }))?;
        }
        Ok(match self.stopped.take() {
            Some(why) => Ended::Stopped(why),
            None => Ended::Finished,
        })
    }
}

/// How often a run tells the account's other runs how it does.
const SHARE_EVERY: Duration = Duration::from_millis(250);

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
