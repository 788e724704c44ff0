//! `plan`: the row against the user's live state, nothing written.

use std::collections::HashMap;
use std::sync::Arc;

use super::invite::invited_user;
use super::remove::{own_user, planned_removal};
use super::{damaged, get_user, read_user};
use crate::check::Rows;
use crate::engine::{Job, Operation, Step};
use crate::http::{Call, Reply};
use crate::model::action::Action;
use crate::model::api::User;
use crate::model::change::diff;
use crate::table::results::Status;

/// `plan`: one GET per row, or the user from the account's list read at
/// the start (`snapshot`, when that took fewer requests); the row's change
/// against the user's state: `would_update` with the changes, or
/// `unchanged`. Nothing is written.
#[derive(Debug, Clone, Default)]
pub(crate) struct PlanRows {
    pub(crate) snapshot: Option<Arc<HashMap<u64, User>>>,
    /// `--allow-number-changes`: send what looks like a spreadsheet's damage.
    pub(crate) allow_number_changes: bool,
    /// The user the key acts as: a removal of them is `invalid`.
    pub(crate) current_user: Option<u64>,
}

impl PlanRows {
    fn compare(&self, job: &mut Job, user: Box<User>) -> Step {
        let body = job.body.as_deref().expect("a plan keeps each row's body");
        let user = match damaged(body, user, self.allow_number_changes) {
            Ok(user) => user,
            Err(step) => return step,
        };
        let changes = diff(body, &user);
        let status = match changes.is_empty() {
            true => Status::UNCHANGED,
            false => Status::WOULD_UPDATE,
        };
        Step::Done {
            status,
            error: String::new(),
            changes,
            user: Some(user),
        }
    }
}

/// A plan reads the rows `apply` would send (the defaults), invitations
/// and removals too.
impl Rows for PlanRows {
    fn statuses(&self) -> &'static [Status] {
        &Status::MEMBERSHIP
    }
}

impl Operation for PlanRows {
    fn decide(&self, job: &mut Job) -> Option<Step> {
        if job.action == Action::Invite {
            // Its address was checked new to the account with the rows.
            let body = job.body.as_deref().expect("an invitation keeps its body");
            return Some(Step::Done {
                status: Status::WOULD_INVITE,
                error: String::new(),
                changes: Vec::new(),
                user: Some(Box::new(invited_user(body))),
            });
        }
        if job.action == Action::Remove
            && let Some(step) = own_user(job, self.current_user)
        {
            return Some(step);
        }
        // A user not in the list (added since) is read on its own.
        let user = self.snapshot.as_ref()?.get(&job.user_id())?;
        if job.action == Action::Remove {
            return Some(planned_removal(Box::new(user.clone())));
        }
        Some(self.compare(job, Box::new(user.clone())))
    }

    fn call(&self, job: &Job) -> Call {
        get_user(job.user_id())
    }

    fn answered(&self, job: &mut Job, reply: Result<Reply, String>) -> Step {
        match read_user(job, reply) {
            Ok(user) if job.action == Action::Remove => planned_removal(user),
            Ok(user) => self.compare(job, user),
            Err(step) => step,
        }
    }
}
