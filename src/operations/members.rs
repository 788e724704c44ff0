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
use crate::table::members_log::{Earlier, MembersLog};
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

/// What invitations and removals are sent with.
#[derive(Clone, Default)]
pub(crate) struct Membership {
    /// The account's id (`GET /iam/clients/me`); `None` when no row
    /// invites or removes.
    pub(crate) client_id: Option<u64>,
    pub(crate) undo: Option<Arc<UndoLog>>,
    /// `--accept-partial-undo`.
    pub(crate) accept_partial_undo: bool,
    /// The account's users by address, as read at the start.
    pub(crate) existing: Option<Arc<EmailIndex>>,
    /// Where each invitation and removal is noted before it is sent.
    pub(crate) log: Option<Arc<MembersLog>>,
    /// A resumed run: what the runs of its record invited and removed.
    pub(crate) earlier: Option<Arc<Earlier>>,
    /// `apply --plan` of invitations: the account's users whose address
    /// it invites, as read at the start (see [`Invite::planned_against`]).
    pub(crate) planned_against:
        Option<Arc<std::collections::HashMap<u64, crate::model::api::User>>>,
    /// The user the key acts as: never removed with it.
    pub(crate) current_user: Option<u64>,
}

impl<O> ByAction<O> {
    /// `update` for the update rows; invitations and removals as
    /// `membership` says.
    pub(crate) fn new(update: O, membership: Membership) -> ByAction<O> {
        let Membership {
            client_id,
            undo,
            accept_partial_undo,
            existing,
            log,
            earlier,
            planned_against,
            current_user,
        } = membership;
        let client_id = client_id.unwrap_or_default();
        ByAction {
            update,
            invite: Invite {
                client_id,
                undo: undo.clone(),
                existing,
                log: log.clone(),
                earlier: earlier.clone(),
                planned_against,
            },
            remove: Remove {
                client_id,
                undo,
                accept_partial_undo,
                as_planned: false,
                log,
                earlier,
                current_user,
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
            Action::Remove => self.remove.decide(job),
        }
    }

    fn at_send(&self, job: &mut Job) -> Option<Step> {
        match job.action {
            Action::Update => self.update.at_send(job),
            Action::Invite => self.invite.at_send(job),
            Action::Remove => self.remove.at_send(job),
        }
    }

    fn refused(&self, job: &mut Job, status: u16) -> Option<Step> {
        match job.action {
            Action::Update => self.update.refused(job, status),
            Action::Invite => self.invite.refused(job),
            Action::Remove => self.remove.refused(job, status),
        }
    }

    fn not_arrived(&self, job: &Job) {
        match job.action {
            Action::Update => self.update.not_arrived(job),
            Action::Invite => self.invite.not_arrived(job),
            Action::Remove => self.remove.not_arrived(job),
        }
    }

    fn retry_unsure(&self, job: &Job) -> bool {
        match job.action {
            Action::Update => self.update.retry_unsure(job),
            Action::Invite => self.invite.retry_unsure(job),
            Action::Remove => true,
        }
    }
}

/// `GET /iam/clients/me`: the account.
pub(crate) fn account_overview() -> Call {
    Call::get("iam/clients/me")
}

/// Reads the account's id, handing it to `id` before the job is done.
pub(crate) struct AccountId {
    pub(crate) id: std::sync::mpsc::Sender<(u64, Account)>,
}

/// What `GET /iam/clients/me` says of the account: its id, and the user
/// the key acts as (`currentUser`), when it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Account {
    pub(crate) id: u64,
    pub(crate) current_user: Option<u64>,
}

impl Operation for AccountId {
    fn noun(&self) -> &'static str {
        "account"
    }

    /// The account's read has no row: its request names it.
    fn at(&self, _: &Job) -> String {
        "GET /iam/clients/me".to_string()
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
        let account = reply.and_then(|reply| reply.json::<serde_json::Value>());
        let read = |account: serde_json::Value| {
            let field = |name| account.get(name).and_then(serde_json::Value::as_u64);
            let current_user = field("currentUser").filter(|id| *id > 0);
            field("id").map(|id| Account { id, current_user })
        };
        match account.map(read) {
            Ok(Some(account)) => {
                // The receiver is gone only when the reading is over.
                let _ = self.id.send((0, account));
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
