//! The rows of an input with an `action` column: each job goes to its
//! action's operation (an update's, [`Invite`], [`Remove`]); and the read
//! of the account's id that invitations and removals name
//! (`GET /iam/clients/me`, the official SDK's `get_account_overview`).

use std::sync::Arc;

use super::done;
use super::invite::Invite;
use super::remove::Remove;
use crate::check::EmailIndex;
use crate::engine::{Job, Operation, Step};
use crate::http::{Call, Reply};
use crate::model::action::Action;
use crate::table::results::Status;
use crate::table::undo::UndoLog;

/// A run whose rows may invite and remove users as well as update them:
/// `update` is the operation of the update rows.
#[derive(Clone)]
pub(crate) struct ByAction<O> {
    pub(crate) update: O,
    pub(crate) invite: Invite,
    pub(crate) remove: Remove,
}

impl<O> ByAction<O> {
    /// `update` for the update rows; invitations and removals in account
    /// `client_id` (0 when no row needs it), their ways back in `undo`.
    /// `resumed`: the account's users by address in a resumed run.
    pub(crate) fn new(
        update: O,
        client_id: Option<u64>,
        undo: Option<Arc<UndoLog>>,
        accept_partial_undo: bool,
        resumed: Option<Arc<EmailIndex>>,
    ) -> ByAction<O> {
        let client_id = client_id.unwrap_or_default();
        ByAction {
            update,
            invite: Invite {
                client_id,
                undo: undo.clone(),
                resumed,
            },
            remove: Remove {
                client_id,
                undo,
                accept_partial_undo,
                as_planned: false,
            },
        }
    }
}

impl<O: Operation> Operation for ByAction<O> {
    fn call(&self, job: &Job) -> Call {
        match job.action {
            Action::Update => self.update.call(job),
            Action::Invite => self.invite.call(job),
            Action::Remove => self.remove.call(job),
        }
    }

    fn answered(&self, job: &mut Job, reply: Result<Reply, String>) -> Step {
        match job.action {
            Action::Update => self.update.answered(job, reply),
            Action::Invite => self.invite.answered(job, reply),
            Action::Remove => self.remove.answered(job, reply),
        }
    }

    fn decide(&self, job: &mut Job) -> Option<Step> {
        match job.action {
            Action::Update => self.update.decide(job),
            Action::Invite => self.invite.decide(job),
            Action::Remove => None,
        }
    }

    fn at_send(&self, job: &mut Job) -> Option<Step> {
        match job.action {
            Action::Update => self.update.at_send(job),
            Action::Invite => None,
            Action::Remove => self.remove.at_send(job),
        }
    }
}

/// `GET /iam/clients/me`: the account.
pub(crate) fn account_overview() -> Call {
    Call::get("iam/clients/me")
}

/// Reads the account's id, handing it to `id` before the job is done.
pub(crate) struct AccountId {
    pub(crate) id: std::sync::mpsc::Sender<(u64, u64)>,
}

impl Operation for AccountId {
    fn noun(&self) -> &'static str {
        "account"
    }

    fn ended_as(&self, status: Status) -> &'static str {
        match status {
            Status::UPDATED => "read",
            other => other.as_str(),
        }
    }

    fn call(&self, _: &Job) -> Call {
        account_overview()
    }

    fn answered(&self, _: &mut Job, reply: Result<Reply, String>) -> Step {
        let id = reply.and_then(|reply| reply.json::<serde_json::Value>());
        match id.map(|account| account.get("id").and_then(serde_json::Value::as_u64)) {
            Ok(Some(id)) => {
                // The receiver is gone only when the reading is over.
                let _ = self.id.send((0, id));
                done(Status::UPDATED, String::new())
            }
            Ok(None) => done(Status::FAILED, "the account's answer has no id".to_string()),
            Err(error) => done(
                Status::FAILED,
                format!("the answer is not the account: {error}"),
            ),
        }
    }
}
