//! The outcome of a job: its record in the results, however it ended.

use crate::model::api::User;
use crate::model::change::{Change, describe};
use crate::policy::StopReason;
use crate::table::results::{ResultRecord, Status};

use super::Job;
use super::events::Outcome;

/// The row's outcome. `attempts` counts the requests that left this
/// machine; a row none of whose requests did is `not_attempted`, whatever
/// went wrong on the way.
pub(super) fn finish(
    job: Job,
    status: Status,
    http_status: Option<u16>,
    error: String,
    changes: Vec<Change>,
    user: Option<Box<User>>,
) -> Outcome {
    let attempts = job.attempts.saturating_sub(job.unsent);
    // A step that already changed the account is what the row did; what
    // became of the rest is said after it.
    // The row is not done (`--resume` finishes it), and says what was.
    if let (Some(landed), Status::FAILED | Status::NOT_ATTEMPTED) = (job.landed, status) {
        // A plan is not resumed; planned again, the invitation is invalid
        // (the address is in the account now): the row must become an update.
        let id = job.user_id();
        let next = match job.from_plan {
            true => format!(
                "make the row an update of user {id} (action empty, user_id {id}), then plan \
                 again and apply the new plan"
            ),
            false => "--resume finishes it".to_string(),
        };
        let error = format!(
            "{} as user {}, but the rest of the row was not done ({error}); {next}",
            landed.as_str(),
            job.user_id()
        );
        let mut outcome = decided(job, Status::FAILED, http_status, error, changes, user);
        outcome.landed = Some(landed);
        return outcome;
    }
    let status = match status {
        Status::FAILED if attempts == 0 => Status::NOT_ATTEMPTED,
        status => status,
    };
    let error = match status {
        Status::NOT_ATTEMPTED if !error.starts_with("not sent") => format!("not sent: {error}"),
        _ => error,
    };
    decided(job, status, http_status, error, changes, user)
}

/// The row's outcome as its operation decided it, word for word: a row
/// decided before any request ([`super::Operation::decide`]) that failed
/// its operation's check is `failed`, not `not_attempted`.
pub(super) fn decided(
    job: Job,
    status: Status,
    http_status: Option<u16>,
    error: String,
    changes: Vec<Change>,
    user: Option<Box<User>>,
) -> Outcome {
    let attempts = job.attempts.saturating_sub(job.unsent);
    Outcome {
        seq: job.seq,
        throttled: job.throttled,
        retries: job.retries,
        record: ResultRecord {
            row: job.row(),
            user_id: job.user_id_text,
            status,
            http_status,
            attempts,
            error,
            request: job.request,
            changes: describe(&changes),
            user,
        },
        changes,
        kept: false,
        landed: None,
    }
}

pub(super) fn failed(job: Job, status: Option<u16>, error: String) -> Outcome {
    finish(job, Status::FAILED, status, error, Vec::new(), None)
}

/// A job waiting when the run stopped: `failed` when its last request
/// failed, `not_attempted` when its next step was never sent.
pub(super) fn interrupted(mut job: Job, why: &StopReason) -> Outcome {
    // The retry it waited for was counted when it was planned, and never
    // sent.
    job.retries = job.retries.saturating_sub(1);
    match job.last_failure.take() {
        Some((status, error)) => failed(job, status, format!("{error}; not retried: {why}")),
        None => not_attempted(job, why),
    }
}

pub(super) fn not_attempted(job: Job, why: &StopReason) -> Outcome {
    let error = format!("not sent: {why}");
    finish(job, Status::NOT_ATTEMPTED, None, error, Vec::new(), None)
}

pub(super) fn would_update(job: Job) -> Outcome {
    let planned = job.planned;
    finish(job, planned, None, String::new(), Vec::new(), None)
}
