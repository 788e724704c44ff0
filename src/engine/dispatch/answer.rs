//! The answer to an attempt: what it does to the rate, to the run (a reason
//! to stop) and to its job (ended, retried, or on to its next request).

use std::cmp::Reverse;
use std::time::Duration;

use tokio::time::Instant;

use crate::http::{Answer, Reply};
use crate::policy::{Decision, Slowdown, StopReason, later};

use super::super::events::{Outcome, Report};
use super::super::outcome::{failed, finish, not_attempted};
use super::super::timeline::AnswerKind;
use super::{Delayed, Dispatcher, Gone, Job, Operation, Step};

/// Throttles a row may wait out with the run, beyond its retries: with the
/// pause growing 0.5, 1, 2 ... 30 s, about a minute (a per-minute quota).
const WAITS_WITH_THE_RUN: u32 = 8;

/// How long a pause must be before the user hears of it, and how often.
const PAUSE_NOTE_MIN: Duration = Duration::from_secs(1);
const PAUSE_NOTE_EVERY: Duration = Duration::from_secs(10);

/// What was sent (for `-v`, else empty) and when.
pub(super) type Traced = (String, Instant);

/// An attempt come back: its job, when its request went, and the answer
/// (`Err`: this tool panicked while sending it).
pub(super) struct Answered {
    pub job: Job,
    pub(crate) traced: Option<Traced>,
    pub answer: std::thread::Result<Answer>,
}

/// What an answer made of its job.
enum After {
    /// It ended, as this.
    Ended(Outcome),
    /// It waits: for a retry, or to send its next request (`-v` says which).
    Waits(String),
}

impl<O: Operation> Dispatcher<'_, O> {
    /// The answer to an attempt, come at `now`. Every answer from the server
    /// steers the rate; a 2xx goes to the operation, which ends the job or
    /// moves it to its next request; a refusal fails it; a retryable answer
    /// is retried after the policy's delay, unless the run stopped or the
    /// policy gives up, and after a 429 the whole run pauses. Some answers
    /// stop the run (a 401, an untrusted certificate, no connection ever
    /// made, 429s without end).
    pub(super) fn on_answer(&mut self, now: Instant, answered: Answered) -> Result<(), Gone> {
        let Answered {
            mut job,
            traced,
            answer,
        } = answered;
        self.in_flight -= 1;
        let kind = answer_kind(&answer);
        let took = traced.as_ref().map(|(_, sent)| now.duration_since(*sent));
        if let (Some(timeline), Some(took)) = (&mut self.timeline, took) {
            timeline.answered(now.into_std(), took, kind, self.pacer.rate().0);
        }
        // `-v`: what was sent and what came back; what happens next is
        // added below, once it is decided. Made for `-v` only: no text is
        // made per answer otherwise.
        let attempt = traced.filter(|_| self.policy.verbose).map(|(what, _)| {
            let took = took.unwrap_or_default();
            (self.at(&job), what, took, answer_text(&answer))
        });
        job.attempts += 1;
        job.step_attempts += 1;
        // No connection where there was one (a proxy or network outage):
        // the run waits for it (see `outage`), which is no silence.
        let outage = self.reached
            && matches!(
                answer,
                Ok(Answer::Retryable {
                    unreachable: true,
                    ..
                })
            );
        let server_error = matches!(answer, Ok(Answer::Retryable {
            status: Some(status @ 500..=599),
            retry_after,
            ..
        }) if !throttles(Some(status), retry_after));
        let slowdown = match outage {
            true => None,
            false => self.steer(now, (kind, server_error), &mut job)?,
        };
        self.share(now);
        let after = match answer {
            Err(_panic) => {
                let error = "this tool failed while sending the request (a panic); the change \
                             may or may not have been made"
                    .to_string();
                After::Ended(failed(job, None, error))
            }
            Ok(Answer::Success { status, reply }) => self.on_success(now, job, status, reply)?,
            Ok(Answer::Failed { status, error }) => {
                self.reached = true;
                let key_from = self.policy.key_from.as_deref();
                if let Some(why) = StopReason::for_refusal(status, || self.at(&job), key_from) {
                    self.stop(why)?;
                }
                let operation = self.operation.expect("a dry run sends nothing");
                match operation.refused(&mut job, status) {
                    Some(Step::Done {
                        status: row_status,
                        error: why,
                        changes,
                        user,
                    }) => After::Ended(finish(job, row_status, Some(status), why, changes, user)),
                    _ => After::Ended(failed(job, Some(status), error)),
                }
            }
            Ok(Answer::Untrusted { error }) => {
                job.unsent += 1;
                // The request never left: the connection was refused first.
                self.stop(StopReason::Untrusted {
                    message: error.clone(),
                })?;
                After::Ended(failed(job, None, error))
            }
            Ok(Answer::Retryable {
                status,
                retry_after,
                error,
                unreachable,
            }) => {
                let why = (status, retry_after, slowdown);
                self.on_retryable(now, job, why, error, unreachable)?
            }
        };
        if let Some((at, what, took, status)) = attempt {
            let next = match &after {
                After::Ended(outcome) => {
                    let operation = self.operation.expect("a dry run sends nothing");
                    format!(
                        "{} {}",
                        self.noun,
                        operation.ended_as(outcome.record.status)
                    )
                }
                After::Waits(step) => step.clone(),
            };
            let when = humantime::format_rfc3339_millis(std::time::SystemTime::now());
            self.report(Report::Attempt(format!(
                "{when} {at} {what} -> {status} in {} ms: {next}",
                took.as_millis()
            )))?;
        }
        if let After::Ended(outcome) = after {
            self.report(Report::Row(outcome))?;
        }
        Ok(())
    }

    /// Every answer from the server steers the rate: a 429 about the run's
    /// rate lowers it, and so do server errors (`server_error`: a 5xx
    /// without `Retry-After`) that rise with the rate; the others let it
    /// climb back. For a 429, what it is about. Nothing but 429s for longer
    /// than `--max-wait` stops the run.
    fn steer(
        &mut self,
        now: Instant,
        (kind, server_error): (AnswerKind, bool),
        job: &mut Job,
    ) -> Result<Option<Slowdown>, Gone> {
        let throttled = match kind {
            AnswerKind::Success | AnswerKind::Error => false,
            AnswerKind::Throttled => true,
            AnswerKind::NoAnswer => return self.silence(now).map(|()| None),
        };
        self.silent = None;
        self.outage = None;
        if server_error {
            self.pacer.server_error(now, &mut job.mark);
            return Ok(None);
        }
        let slowdown = self.pacer.answered(now, throttled, &mut job.mark);
        if let Some(lasted) = self.pacer.throttled_for(now)
            && lasted > self.policy.retry.max_wait
            && self.stopped.is_none()
        {
            let rate = self.pacer.rate().0;
            let seconds = lasted.as_secs();
            self.stop(StopReason::ThrottledAlways { seconds, rate })?;
        }
        Ok(slowdown)
    }

    /// A 2xx: the operation says what it means for the job.
    fn on_success(
        &mut self,
        now: Instant,
        mut job: Job,
        status: u16,
        reply: Result<Reply, String>,
    ) -> Result<After, Gone> {
        self.reached = true;
        self.recent_ok.push_back(now);
        while self
            .recent_ok
            .front()
            .is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(1))
        {
            self.recent_ok.pop_front();
        }
        self.most_ok = self.most_ok.max(self.recent_ok.len());
        let operation = self.operation.expect("a dry run sends nothing");
        Ok(match operation.answered(&mut job, reply) {
            Step::Done {
                status: row_status,
                error,
                changes,
                user,
            } => After::Ended(finish(job, row_status, Some(status), error, changes, user)),
            Step::Halt { error } => {
                self.stop(StopReason::Halted { message: error })?;
                let why = self.stopped.as_ref().expect("the run has stopped");
                After::Ended(not_attempted(job, why))
            }
            Step::DoneThenHalt {
                status: row_status,
                error,
            } => {
                self.stop(StopReason::Halted {
                    message: error.clone(),
                })?;
                let changes = Vec::new();
                After::Ended(finish(job, row_status, Some(status), error, changes, None))
            }
            Step::Next => {
                job.step_attempts = 0;
                job.last_failure = None;
                job.maybe_arrived = false;
                self.retries.push(Reverse(Delayed { due: now, job }));
                After::Waits("the next request of the row".to_string())
            }
        })
    }

    /// An answer worth another try (408, 409, 429, 5xx, a timeout, no
    /// connection): the job waits the retry policy's delay, or fails. A
    /// throttle about the run's rate (`slowdown`) pauses the whole run, and
    /// the job waits with it: that attempt is not one of its retries (a
    /// quota window is waited out; nothing but 429s for longer than
    /// `--max-wait` stops the run instead). A throttle about the row alone
    /// is retried on the row's own backoff, as an error is.
    fn on_retryable(
        &mut self,
        now: Instant,
        mut job: Job,
        (status, retry_after, slowdown): (Option<u16>, Option<Duration>, Option<Slowdown>),
        error: String,
        unreachable: bool,
    ) -> Result<After, Gone> {
        if unreachable {
            job.unsent += 1;
        }
        self.reached |= !unreachable;
        if unreachable && !self.reached {
            self.unreachable_attempts += 1;
            let attempts = self.unreachable_attempts;
            if attempts >= StopReason::UNREACHABLE_AFTER {
                self.stop(StopReason::Unreachable { attempts })?;
            }
        }
        let operation = self.operation.expect("a dry run sends nothing");
        let throttled = throttles(status, retry_after);
        let unsure = !unreachable && !throttled;
        match unsure {
            true => job.maybe_arrived = true,
            false => operation.not_arrived(&job),
        }
        if unreachable && self.reached && self.stopped.is_none() {
            return self.outage(now, job, error);
        }
        if throttled {
            job.throttled += 1;
        }
        let the_runs = throttled && matches!(slowdown, Some(Slowdown::Rate { .. }));
        // At most WAITS_WITH_THE_RUN such waits a row: the last rows of a
        // file, all users throttled on their own account, look like a
        // quota spent (nothing goes through), and would never end.
        let shared = throttled
            && slowdown == Some(Slowdown::Rate { shared: true })
            && job.waited < WAITS_WITH_THE_RUN;
        let max_wait = self.policy.retry.max_wait;
        let decision = match &self.stopped {
            Some(why) => Decision::GiveUp(format!("not retried: {why}")),
            None if unsure && !operation.retry_unsure(&job) => Decision::GiveUp(
                "not retried: it may have been carried out, and a second one would not be the \
                 same; --resume finds out"
                    .to_string(),
            ),
            None if shared && retry_after.is_none_or(|asked| asked <= max_wait) => {
                job.step_attempts -= 1;
                job.waited += 1;
                let backoff = self.policy.retry.ceiling(self.pacer.bursts_in_a_row());
                let asked = retry_after.filter(|asked| !asked.is_zero());
                Decision::RetryIn(asked.unwrap_or(backoff))
            }
            None => match self.policy.retry.decide(job.step_attempts, retry_after) {
                Decision::GiveUp(why)
                    if slowdown == Some(Slowdown::Row) && job.throttled >= job.step_attempts =>
                {
                    Decision::GiveUp(format!(
                        "{why}, throttled each time while other rows went through: the API \
                         throttles this one; try it again later"
                    ))
                }
                decision => decision,
            },
        };
        if the_runs {
            self.pause(now, &job, (status, retry_after), &decision)?;
        }
        Ok(match decision {
            Decision::RetryIn(wait) => {
                let waits = format!("retry in {:.1} s", wait.as_secs_f64());
                job.retries += 1;
                job.last_failure = Some((status, error));
                let due = later(now, wait);
                self.retries.push(Reverse(Delayed { due, job }));
                After::Waits(waits)
            }
            Decision::GiveUp(why) => After::Ended(failed(job, status, format!("{error}; {why}"))),
        })
    }

    /// No connection can be made to an API that answered before (a proxy
    /// or the network is down): the whole run waits, as after a 429, with
    /// a backoff that grows to 30 s, rather than each row spending its
    /// retries and failing; the row's attempt is not one of its retries.
    /// An outage longer than `--max-wait` stops the run.
    fn outage(&mut self, now: Instant, mut job: Job, error: String) -> Result<After, Gone> {
        let (since, attempts) = self.outage.get_or_insert((now, 0));
        *attempts += 1;
        let (since, attempts) = (*since, *attempts);
        let lasted = now.duration_since(since);
        if lasted > self.policy.retry.max_wait {
            self.stop(StopReason::Outage {
                seconds: lasted.as_secs(),
            })?;
            let why = self.stopped.as_ref().expect("the run stopped");
            return Ok(After::Ended(failed(
                job,
                None,
                format!("{error}; not retried: {why}"),
            )));
        }
        let wait = self
            .policy
            .retry
            .ceiling(attempts)
            .max(Duration::from_millis(500));
        job.step_attempts = job.step_attempts.saturating_sub(1);
        job.retries += 1;
        job.last_failure = Some((None, error.clone()));
        if self.pacer.pause(now, later(now, wait)) && wait >= PAUSE_NOTE_MIN {
            let note = format!(
                "no connection to the API for {:.0} s ({error}): pausing all requests for {:.1} s",
                lasted.as_secs_f64(),
                wait.as_secs_f64()
            );
            self.report(Report::Note(note))?;
        }
        let due = later(now, wait);
        self.retries.push(Reverse(Delayed { due, job }));
        Ok(After::Waits(format!(
            "retry in {:.1} s",
            wait.as_secs_f64()
        )))
    }

    /// One more attempt without an answer: [`StopReason::SILENT_AFTER`] in
    /// a row over at least [`StopReason::SILENT_FOR`] stop the run (a
    /// server that accepts connections and never answers would otherwise
    /// take every row's retries: days for a large file).
    fn silence(&mut self, now: Instant) -> Result<(), Gone> {
        let (since, attempts) = self.silent.get_or_insert((now, 0));
        *attempts += 1;
        let (since, attempts) = (*since, *attempts);
        let long = now.duration_since(since) >= StopReason::SILENT_FOR;
        if attempts >= StopReason::SILENT_AFTER && long && self.stopped.is_none() {
            let seconds = now.duration_since(since).as_secs();
            self.stop(StopReason::Silent { attempts, seconds })?;
        }
        Ok(())
    }

    /// After a 429 the whole run waits, not just this row: as long as the
    /// job will (not at all when it is not retried). A wait asked beyond
    /// --max-wait stops the run.
    fn pause(
        &mut self,
        now: Instant,
        job: &Job,
        (status, retry_after): (Option<u16>, Option<Duration>),
        decision: &Decision,
    ) -> Result<(), Gone> {
        let wait = match decision {
            Decision::RetryIn(wait) => *wait,
            Decision::GiveUp(_) => Duration::ZERO,
        };
        let max_wait = self.policy.retry.max_wait;
        if let Some(asked) = retry_after.filter(|asked| *asked > max_wait) {
            let at = self.at(job);
            self.stop(StopReason::ThrottledTooLong {
                at,
                asked,
                max_wait,
            })?;
        }
        let started = self.pacer.pause(now, later(now, wait));
        if let Some(timeline) = &mut self.timeline {
            timeline.paused(now.into_std(), wait);
        }
        let quiet_since = self
            .last_pause_note
            .is_none_or(|at| now.duration_since(at) >= PAUSE_NOTE_EVERY);
        if started && wait >= PAUSE_NOTE_MIN && quiet_since {
            self.last_pause_note = Some(now);
            let note = format!(
                "throttled (HTTP {} on {}): pausing all requests for {:.1} s",
                status.unwrap_or(429),
                self.at(job),
                wait.as_secs_f64()
            );
            self.report(Report::Note(note))?;
        }
        Ok(())
    }
}

/// What kind of answer it is: what steers the rate, and what the report's
/// timeline counts.
/// Whether an answer says "slow down": a 429, or a 502, 503 or 504 that
/// asks for a wait (`Retry-After`), as front ends that throttle with them
/// do. Such an answer pauses the run and lowers its rate like a 429.
pub(super) fn throttles(status: Option<u16>, retry_after: Option<Duration>) -> bool {
    match status {
        Some(429) => true,
        Some(502..=504) => retry_after.is_some(),
        _ => false,
    }
}

fn answer_kind<E>(answer: &Result<Answer, E>) -> AnswerKind {
    match answer {
        Ok(Answer::Success { .. }) => AnswerKind::Success,
        Ok(Answer::Retryable {
            status,
            retry_after,
            ..
        }) if throttles(*status, *retry_after) => AnswerKind::Throttled,
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
