//! A `remove` row: a GET of the user (the results row and the undo file
//! hold them as they were), then `DELETE
//! /iam/clients/{clientId}/client-users/{userId}` (the official SDK's
//! `users.delete`): the user leaves the account (one with no other account
//! is deleted). A plan's removal is sent only if the user is still as the
//! plan read them.

use std::sync::Arc;

use super::{get_user, read_user};
use crate::engine::{Job, Step};
use crate::http::{Call, Reply};
use crate::model::change::{describe, same_user};
use crate::table::members_log::{Earlier, MembersLog};
use crate::table::results::Status;
use crate::table::undo::UndoLog;

/// `DELETE /iam/clients/{client_id}/client-users/{user_id}`: an empty answer.
pub(crate) fn remove_user(client_id: u64, user_id: u64) -> Call {
    Call::new(
        reqwest::Method::DELETE,
        format!("iam/clients/{client_id}/client-users/{user_id}"),
        None,
    )
}

/// See the module's documentation.
#[derive(Clone, Default)]
pub(crate) struct Remove {
    /// The account's id (`GET /iam/clients/me`, or `--account-id`).
    pub(crate) client_id: u64,
    pub(crate) undo: Option<Arc<UndoLog>>,
    /// `--accept-partial-undo`: remove a user whom the undo file cannot
    /// invite back (the answer left out their address or groups).
    pub(crate) accept_partial_undo: bool,
    /// `apply --plan`: each job holds the user as the plan read them
    /// (`job.before`), and is sent only if they are still so.
    pub(crate) as_planned: bool,
    /// Where each removal is noted before it is sent.
    pub(crate) log: Option<Arc<MembersLog>>,
    /// A resumed run: the users the runs of its record removed.
    pub(crate) earlier: Option<Arc<Earlier>>,
    /// The user the key acts as (`currentUser` of `GET /iam/clients/me`):
    /// not removed with this key.
    pub(crate) current_user: Option<u64>,
}

/// Why the user the key acts as is not removed with it, or `None` for
/// any other user.
pub(crate) fn own_user(job: &Job, current_user: Option<u64>) -> Option<Step> {
    let id = current_user.filter(|id| *id == job.user_id())?;
    Some(Step::Done {
        status: Status::INVALID,
        error: crate::check::own_user_refused(id),
        changes: Vec::new(),
        user: None,
    })
}

impl Remove {
    /// The user the key acts as is not removed (see [`own_user`]).
    pub(crate) fn decide(&self, job: &mut Job) -> Option<Step> {
        own_user(job, self.current_user)
    }

    pub(crate) fn call(&self, job: &Job) -> Call {
        match job.step {
            0 => get_user(job.user_id()),
            _ => remove_user(self.client_id, job.user_id()),
        }
    }

    pub(crate) fn answered(&self, job: &mut Job, reply: Result<Reply, String>) -> Step {
        if job.step > 0 {
            // The answer is empty; the user as they were is the row's.
            return Step::Done {
                status: Status::REMOVED,
                error: String::new(),
                changes: Vec::new(),
                user: job.before.take(),
            };
        }
        let user = match read_user(job, reply) {
            Ok(user) => user,
            Err(step) => return step,
        };
        if self.as_planned
            && let Some(planned) = job.before.as_deref()
        {
            // From the plan's values to the values now.
            let changed = same_user(&user, planned);
            if !changed.is_empty() {
                return Step::Done {
                    status: Status::FAILED,
                    error: format!(
                        "not removed: the user changed since the plan read them ({}); plan again",
                        describe(&changed)
                    ),
                    changes: Vec::new(),
                    user: Some(user),
                };
            }
        }
        job.before = Some(user);
        job.step = 1;
        Step::Next
    }

    /// The undo line, written when the DELETE is about to leave: a row
    /// stopped before its turn leaves none.
    pub(crate) fn at_send(&self, job: &mut Job) -> Option<Step> {
        if job.step == 0 {
            return None;
        }
        if let Some(step) = self.undo_line(job) {
            return Some(step);
        }
        let log = self.log.as_ref()?;
        log.remove(job.user_id()).err().map(|error| Step::Halt {
            error: format!(
                "{} cannot be written ({error}); no user is removed without its note",
                log.path().display()
            ),
        })
    }

    /// A 404: to the GET of a user a run of this record removed, or to a
    /// DELETE sent again after an answer that was lost, the user is gone
    /// because of this run.
    pub(crate) fn refused(&self, job: &mut Job, status: u16) -> Option<Step> {
        // Not removed: the undo file's row that would invite them back goes,
        // and a resumed run must not take the user's absence for this run's.
        let retract = |job: &Job| {
            let Some(user) = job.before.as_deref().filter(|_| job.step == 1) else {
                return;
            };
            if let Some(undo) = &self.undo {
                undo.retract_removal(user);
            }
            if let Some(log) = &self.log {
                let email = user.email.as_deref().unwrap_or_default();
                let _ = log.remove_refused(job.user_id(), email);
            }
        };
        if status != 404 {
            // Not removed: the undo file's row that would invite them back goes.
            retract(job);
            return None;
        }
        let why = match job.step {
            // The plan applied again after it was cut short, or the user
            // left meanwhile: the account is as the plan would make it.
            0 if self.as_planned => {
                return Some(Step::Done {
                    status: Status::UNCHANGED,
                    error: "already as the plan would make it: the user is no longer in the \
                            account"
                        .to_string(),
                    changes: Vec::new(),
                    user: None,
                });
            }
            0 if self.earlier.as_ref()?.removed(job.user_id()) => {
                "removed by the run cut short (its answer was not recorded)"
            }
            // An earlier attempt may have arrived (a timeout, a 5xx): it did it.
            1 if job.maybe_arrived => {
                "its DELETE was sent again after an answer that was lost, and the user was gone: \
                 the first one removed them"
            }
            _ => {
                retract(job);
                return None;
            }
        };
        Some(Step::Done {
            status: Status::REMOVED,
            error: why.to_string(),
            changes: Vec::new(),
            user: job.before.take(),
        })
    }

    /// A DELETE that did not arrive (no connection, a 429) removed nobody:
    /// noted, so that a resumed run does not take the user's absence for
    /// this run's doing.
    pub(crate) fn not_arrived(&self, job: &Job) {
        if let (1, Some(log), Some(user)) = (job.step, &self.log, job.before.as_deref()) {
            let email = user.email.as_deref().unwrap_or_default();
            let _ = log.remove_refused(job.user_id(), email);
        }
    }

    /// The undo file's way back from the removal: `Some` ends the row (no
    /// way back: not sent) or the run (the file cannot be written).
    fn undo_line(&self, job: &mut Job) -> Option<Step> {
        let (Some(undo), Some(user)) = (&self.undo, job.before.as_deref()) else {
            return None;
        };
        match undo.record_removed(user) {
            Ok(()) => None,
            Err(error)
                if error.kind() == std::io::ErrorKind::InvalidData && self.accept_partial_undo =>
            {
                None
            }
            Err(error) if error.kind() == std::io::ErrorKind::InvalidData => Some(Step::Done {
                status: Status::INVALID,
                error: crate::table::undo::removal_refused(job.user_id(), &error.to_string()),
                changes: Vec::new(),
                user: job.before.take(),
            }),
            Err(error) => Some(Step::Halt {
                error: format!(
                    "the undo file {} cannot be written ({error}); no user is removed without it",
                    undo.path().display()
                ),
            }),
        }
    }
}

/// What a plan says of a removal: the user as read now.
pub(crate) fn planned_removal(user: Box<crate::model::api::User>) -> Step {
    Step::Done {
        status: Status::WOULD_REMOVE,
        error: String::new(),
        changes: Vec::new(),
        user: Some(user),
    }
}
