//! `apply`: a PATCH per row; or, when the run compares (`--skip-unchanged`)
//! or keeps an undo file, a GET of the user first.

use std::collections::HashMap;
use std::sync::Arc;

use super::planned::PatchAsPlanned;
use super::{damaged, get_then_patch, patch_user, patched, read_user, undo_first};
use crate::check::Rows;
use crate::engine::{Job, Operation, Step};
use crate::http::{Call, Reply};
use crate::model::api::User;
use crate::model::change::{diff, only};
use crate::table::results::Status;
use crate::table::undo::UndoLog;

/// `apply`: one PATCH per row, with the row's body; the answer is the user's
/// new state.
#[derive(Debug, Clone, Copy, Default)]
pub struct PatchRows;

/// A row sends its changes; one without any is skipped (the defaults);
/// a row may invite or remove a user instead (its `action`).
impl Rows for PatchRows {
    fn statuses(&self) -> &'static [Status] {
        &Status::MEMBERSHIP
    }
}

impl Rows for PatchChanged {}

impl Rows for ApplyRows {}

impl Operation for PatchRows {
    fn call(&self, job: &Job) -> Call {
        patch_user(job.user_id(), job.request.clone())
    }

    fn answered(&self, job: &mut Job, reply: Result<Reply, String>) -> Step {
        patched(job, reply)
    }
}

/// `apply --skip-unchanged` and `--undo-file`: a GET, then the PATCH. With
/// `skip_unchanged` the PATCH carries only the fields that differ, and a
/// row already right sends none. With an undo log, the values about to
/// change are written to it before the PATCH goes.
#[derive(Clone, Default)]
pub(crate) struct PatchChanged {
    pub(crate) skip_unchanged: bool,
    pub undo: Option<Arc<UndoLog>>,
    /// The account's users as listed at the start, when reading the list
    /// took fewer requests than a GET per row.
    pub(crate) snapshot: Option<Arc<HashMap<u64, User>>>,
    /// `--allow-number-changes`: send what looks like a spreadsheet's damage.
    pub(crate) allow_number_changes: bool,
}

impl Operation for PatchChanged {
    fn call(&self, job: &Job) -> Call {
        get_then_patch(job)
    }

    fn answered(&self, job: &mut Job, reply: Result<Reply, String>) -> Step {
        if job.step > 0 {
            return patched(job, reply);
        }
        match read_user(job, reply) {
            Ok(user) => {
                let step = self.compared(job, user);
                // Every row passed its check against the users read before
                // the run: one that fails it now was changed meanwhile.
                match step {
                    Step::Done {
                        status: Status::INVALID,
                        error,
                        changes,
                        user,
                    } if self.snapshot.is_some() => Step::Done {
                        status: Status::FAILED,
                        error: format!(
                            "the user changed while the run went on, nothing sent: {error}"
                        ),
                        changes,
                        user,
                    },
                    step => step,
                }
            }
            Err(step) => step,
        }
    }

    /// The undo line, written when the PATCH is about to leave: a row
    /// stopped before its turn leaves none.
    fn at_send(&self, job: &mut Job) -> Option<Step> {
        if job.step == 0 || self.undo.is_none() {
            return None;
        }
        let body = job.body.as_deref()?;
        let sent = match self.skip_unchanged {
            true => only(body, &job.changes).fields(),
            false => body.fields(),
        };
        let before = job.before.as_deref()?;
        undo_first(&self.undo, job.user_id(), before, sent, &job.changes).err()
    }

    fn decide(&self, job: &mut Job) -> Option<Step> {
        // A user not in the list (added since) is read on its own.
        let user = self.snapshot.as_ref()?.get(&job.user_id())?;
        if self.undo.is_some() {
            // The undo file holds the values a PATCH replaces, read just
            // before it (a colleague's change since the start is what it
            // replaces): only a row already right is decided here.
            let body = job.body.as_deref()?;
            let unchanged = self.skip_unchanged && diff(body, user).is_empty();
            return unchanged.then(|| self.compared(job, Box::new(user.clone())));
        }
        Some(self.compared(job, Box::new(user.clone())))
    }
}

impl PatchChanged {
    /// The row against the user's state (read now, or from the list read
    /// at the start): `unchanged`, or the PATCH next, after the undo line.
    fn compared(&self, job: &mut Job, user: Box<User>) -> Step {
        // Kept on the job: the PATCH's answer is checked against it.
        let body = job
            .body
            .clone()
            .expect("a comparing run keeps each row's body");
        let user = match damaged(&body, user, self.allow_number_changes) {
            Ok(user) => user,
            Err(step) => return step,
        };
        let changes = diff(&body, &user);
        if changes.is_empty() && self.skip_unchanged {
            return Step::Done {
                status: Status::UNCHANGED,
                error: String::new(),
                changes,
                user: Some(user),
            };
        }
        if self.skip_unchanged {
            let sent = only(&body, &changes);
            job.request = serde_json::to_string(&sent).expect("a body always serialises");
        }
        job.changes = changes;
        job.before = Some(user);
        job.step = 1;
        Step::Next
    }
}

/// What `apply` runs: a PATCH per row, or a GET first when the run compares
/// (`--skip-unchanged`) or keeps an undo file.
#[derive(Clone)]
pub(crate) enum ApplyRows {
    Patch(PatchRows),
    Changed(PatchChanged),
    Planned(PatchAsPlanned),
}

impl Operation for ApplyRows {
    fn call(&self, job: &Job) -> Call {
        match self {
            ApplyRows::Patch(operation) => operation.call(job),
            ApplyRows::Changed(operation) => operation.call(job),
            ApplyRows::Planned(operation) => operation.call(job),
        }
    }

    fn answered(&self, job: &mut Job, reply: Result<Reply, String>) -> Step {
        match self {
            ApplyRows::Patch(operation) => operation.answered(job, reply),
            ApplyRows::Changed(operation) => operation.answered(job, reply),
            ApplyRows::Planned(operation) => operation.answered(job, reply),
        }
    }

    fn decide(&self, job: &mut Job) -> Option<Step> {
        match self {
            ApplyRows::Patch(operation) => operation.decide(job),
            ApplyRows::Changed(operation) => operation.decide(job),
            ApplyRows::Planned(operation) => operation.decide(job),
        }
    }

    fn at_send(&self, job: &mut Job) -> Option<Step> {
        match self {
            ApplyRows::Patch(operation) => operation.at_send(job),
            ApplyRows::Changed(operation) => operation.at_send(job),
            ApplyRows::Planned(operation) => operation.at_send(job),
        }
    }
}
