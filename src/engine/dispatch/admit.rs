//! Admission: which job goes next, when, and what becomes of the rows that
//! need no request (decided before, a dry run's, decided by the operation,
//! or not sent after a stop).

use std::cmp::Reverse;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::http::Call;
use crate::policy::StopReason;

use super::super::events::Report;
use super::super::outcome::{decided, interrupted, not_attempted, would_update};
use super::{Admission, Dispatcher, Gone, Job, Operation, Step, Traced, Work};

impl<O: Operation> Dispatcher<'_, O> {
    /// The next job to send at `now`, if any: due retries and next steps
    /// first (they are older, and hold the window), then the input's next
    /// row, within the window, the concurrency limit, the rate and the pause
    /// after a 429. On the way it reports the rows that need no request:
    /// those decided before (`Work::Done`), those of a dry run, those the
    /// operation decides alone, and after a stop every row not sent yet.
    pub(super) fn admit(&mut self, now: Instant) -> Result<Admission, Gone> {
        loop {
            self.take_input();
            let retry_due = self.on_retry(now)?;
            if !retry_due && self.settle_next()? {
                continue;
            }
            let row_ready = matches!(self.next, Some(Work::Send(_))) && !self.window_full;
            if !(retry_due || row_ready) || self.in_flight >= self.policy.concurrency.get() {
                return Ok(Admission::Wait(None));
            }
            if let Err(at) = self.pacer.try_admit(now) {
                return Ok(Admission::Wait(Some(at)));
            }
            let mut job = if retry_due {
                self.retries.pop().expect("a retry is due").0.job
            } else {
                match self.next.take() {
                    Some(Work::Send(job)) => job,
                    _ => unreachable!("the candidate is a row to send"),
                }
            };
            let operation = self.operation.expect("a run that sends has an operation");
            let step = operation.at_send(&mut job);
            let Some(job) = self.settle(job, step)? else {
                continue;
            };
            self.in_flight += 1;
            return Ok(Admission::Send(job));
        }
    }

    /// A retry (or a job's next step) coming due: whether the first job
    /// waiting is due by `now`; it goes before the input's next row. After
    /// a stop none is sent: every job waiting ends, `failed` when its last
    /// attempt failed and `not_attempted` when its next step never went.
    pub(super) fn on_retry(&mut self, now: Instant) -> Result<bool, Gone> {
        if let Some(why) = &self.stopped {
            while let Some(Reverse(delayed)) = self.retries.pop() {
                self.report(Report::Row(interrupted(delayed.job, why)))?;
            }
        }
        Ok(self.retries.peek().is_some_and(|r| r.0.due <= now))
    }

    /// Takes the input's next row, if there is none yet and one has come.
    fn take_input(&mut self) {
        if self.next.is_some() {
            return;
        }
        if self.queued.len() == 0 && self.source_open {
            match self.work.try_recv() {
                Ok(batch) => self.queued = batch.into_iter(),
                Err(mpsc::error::TryRecvError::Empty) => {}
                Err(mpsc::error::TryRecvError::Disconnected) => self.source_open = false,
            }
        }
        self.next = self.queued.next();
    }

    /// Whether the loop waits for the input (nothing of it is left here).
    pub(super) fn wants_input(&self) -> bool {
        self.next.is_none() && self.queued.len() == 0 && self.source_open
    }

    /// A batch from the input, or `None`: the input is exhausted.
    pub(super) fn on_batch(&mut self, batch: Option<Vec<Work>>) {
        match batch {
            Some(batch) => {
                self.queued = batch.into_iter();
                self.next = self.queued.next();
            }
            None => self.source_open = false,
        }
    }

    /// Reports the input's next row if it needs no request; true when it did
    /// (there may be another). A row beyond the window waits for the writer.
    fn settle_next(&mut self) -> Result<bool, Gone> {
        let window = self.policy.window.get() as u64;
        self.window_full = false;
        match self.next.take() {
            Some(item) if item.seq() >= *self.written.borrow_and_update() + window => {
                self.next = Some(item);
                self.window_full = true;
                return Ok(false);
            }
            Some(Work::Done(outcome)) => self.report(Report::Row(outcome))?,
            Some(Work::Send(job)) if self.stopped.is_some() => {
                let why = self.stopped.as_ref().expect("the run stopped");
                self.report(Report::Row(not_attempted(job, why)))?;
            }
            Some(Work::Send(job)) if self.operation.is_none() => {
                self.report(Report::Row(would_update(job)))?;
            }
            // A job the operation can decide without a request (a plan from
            // the account's list) never waits for one.
            Some(Work::Send(mut job)) if !job.decided => {
                job.decided = true;
                let operation = self.operation.expect("a run that sends has an operation");
                let step = operation.decide(&mut job);
                if let Some(job) = self.settle(job, step)? {
                    self.next = Some(Work::Send(job));
                    return Ok(false);
                }
            }
            other => {
                self.next = other;
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// What the operation decided of a job before its request (`decide`,
    /// `at_send`): the job back when it is to be sent (`Next`, `None`);
    /// else its row is reported here, and the run stops if it said so.
    fn settle(&mut self, job: Job, step: Option<Step>) -> Result<Option<Job>, Gone> {
        let outcome = match step {
            None | Some(Step::Next) => return Ok(Some(job)),
            Some(Step::Done {
                status,
                error,
                changes,
                user,
            }) => decided(job, status, None, error, changes, user),
            Some(Step::Halt { error }) => {
                self.stop(StopReason::Halted { message: error })?;
                let why = self.stopped.as_ref().expect("the run stopped");
                not_attempted(job, why)
            }
            Some(Step::DoneThenHalt { status, error }) => {
                self.stop(StopReason::Halted {
                    message: error.clone(),
                })?;
                decided(job, status, None, error, Vec::new(), None)
            }
        };
        self.report(Report::Row(outcome))?;
        Ok(None)
    }

    /// The request for a job just admitted, and when it went (for `-v` and
    /// the report's answer times).
    pub(super) fn request(&mut self, job: &Job) -> (Call, Option<Traced>) {
        let operation = self.operation.expect("a dry run has nothing to send");
        let call = operation.call(job);
        let timed = self.policy.verbose || self.timeline.is_some();
        let traced = timed.then(|| {
            let what = if self.policy.verbose {
                call.describe()
            } else {
                String::new()
            };
            (what, Instant::now())
        });
        // A read changes nothing: a run whose record is lost after reads
        // alone (a plan's GETs) lost no change.
        if call.method != reqwest::Method::GET {
            self.sent += 1;
        }
        (call, traced)
    }

    /// When to look again if nothing else comes first: when the rate or the
    /// pause admits (`paced`), or the first job waiting comes due (if there
    /// is room to send it).
    pub(super) fn wake(&self, now: Instant, paced: Option<Instant>) -> Option<Instant> {
        match self.retries.peek() {
            Some(Reverse(first))
                if first.due > now && self.in_flight < self.policy.concurrency.get() =>
            {
                Some(paced.map_or(first.due, |at| at.min(first.due)))
            }
            _ => paced,
        }
    }
}
