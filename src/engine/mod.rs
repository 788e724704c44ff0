//! The engine: one dispatch loop for every command. One task owns admission
//! (the rate limiter, the run-wide pause after a 429 and the concurrency
//! limit), hands jobs to requests in flight, and decides retries. What a job
//! sends and what an answer means is the [`Operation`]'s business (a PATCH,
//! or a GET then a PATCH); the policies are values ([`SendPolicy`](crate::policy::SendPolicy)); the
//! requests go through a [`Transport`]. With no operation the engine is a
//! dry run: every valid row is decided at once. Outcomes go, unordered, to
//! the one results writer; the loop returns why it ended.
//!
//! The loop is cut in named steps (`dispatch.rs`): a `Dispatcher` holds its
//! state and decides (admit, on answer, on retry, stop), and
//! [`dispatch_counting`] drives the steps from one `select!`, with the
//! requests in flight, the channels, the timer and Ctrl-C around it.

mod dispatch;
pub mod events;
mod job;
mod outcome;
pub mod timeline;

use std::future::Future;
use std::sync::mpsc as std_mpsc;

use tokio::sync::{mpsc, watch};

use crate::http::{Answer, Call, Reply, Transport};
use crate::policy::StopReason;
use crate::table::results::Status;
use events::Report;

pub use dispatch::dispatch;
pub(crate) use dispatch::dispatch_counting;
pub use job::{Job, Step, Subject, Work};

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
    /// The job's request is about to leave (the rate and a free slot
    /// admitted it): the last moment to decide on what it read, and to
    /// write what must be written before a change is sent (the undo file),
    /// so that a row stopped before its turn leaves nothing behind.
    /// `None` (or `Some(Next)`, with `job.step` moved) sends the current
    /// step's request; `Done` and `Halt` end the job without it.
    fn at_send(&self, _job: &mut Job) -> Option<Step> {
        None
    }
    /// A refusal (a 4xx not retried) of the job's current step: `Some`
    /// says what it means instead of `failed` (a DELETE retried after an
    /// answer that was lost, answered 404: the first attempt removed the
    /// user).
    fn refused(&self, _job: &mut Job, _status: u16) -> Option<Step> {
        None
    }
    /// The job's current request did not arrive (no connection could be
    /// made; a 429 said so): an operation that noted it as sent says it
    /// did nothing.
    fn not_arrived(&self, _job: &Job) {}
    /// Whether the job's current request is sent again after a failure
    /// that leaves unsure whether it was carried out (a timeout, a dropped
    /// connection, a 5xx); a 429 or a request that never left is always
    /// retried. An invitation is not: a second one would be refused (the
    /// address is in the account by then), and `--resume` finds out.
    fn retry_unsure(&self, _job: &Job) -> bool {
        true
    }
    /// What a job is, in messages: `row` (`page` for a list's pages).
    fn noun(&self) -> &'static str {
        "row"
    }
    /// Where a message puts a job: `row 7`, `page 3`.
    fn at(&self, job: &Job) -> String {
        format!("{} {}", self.noun(), job.row())
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
