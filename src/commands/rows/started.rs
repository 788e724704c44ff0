//! What a command's operation is given once the account is reached and
//! the first pass is done ([`Started`]), and what it hands back to send
//! with ([`Sending`]).

use std::sync::Arc;

use crate::check::LiveCheck;
use crate::commands::FirstPass;
use crate::http::Client;
use crate::operations::members::Membership;
use crate::policy::SendPolicy;
use crate::signals::Interrupt;
use crate::table::members_log::{Earlier, MembersLog};
use crate::table::results::ResultRecord;
use crate::table::undo::UndoLog;

/// A run over rows once the account is reached and the first pass done:
/// what its operation may use (and take) to start.
pub(crate) struct Started<'a> {
    pub client: &'a Client,
    pub send: &'a SendPolicy,
    pub(crate) interrupt: &'a Interrupt,
    pub quiet: bool,
    /// `--null-token`: the cell that sets a field to null.
    pub(crate) null_token: &'a str,
    /// The undo file of a record, opened (`--undo-file`).
    pub(crate) undo: Option<Arc<UndoLog>>,
    pub first: FirstPass,
    /// The account's id, read when some row invites or removes a user.
    pub(crate) account_id: Option<u64>,
    /// The user the key acts as (`currentUser`), when the account was read
    /// and says: never removed by this key.
    pub(crate) current_user: Option<u64>,
    /// A resumed run: what the runs of its record invited and removed.
    pub(crate) earlier: Option<Arc<Earlier>>,
    /// The record of the invitations and removals this run sends.
    pub(crate) members: Option<Arc<MembersLog>>,
}

/// What a run over rows sends with.
pub(crate) struct Sending<O> {
    pub operation: O,
    /// Hand each job its row's body, for an operation that compares it
    /// with the live state.
    pub(crate) keep_body: bool,
    /// The rows' users as read before anything is sent: a row the live
    /// state makes invalid stops the run as any invalid row does.
    pub(crate) live: Option<Arc<LiveCheck>>,
    /// Rows after the input's, already decided (a plan's removals of the
    /// users no row names: `--remove-missing`).
    pub(crate) extra: Vec<ResultRecord>,
}

impl Started<'_> {
    /// What this run's invitations and removals are sent with.
    pub(crate) fn membership(&self, accept_partial_undo: bool) -> Membership {
        Membership {
            client_id: self.account_id,
            undo: self.undo.clone(),
            accept_partial_undo,
            existing: self.first.emails.clone(),
            log: self.members.clone(),
            earlier: self.earlier.clone(),
            planned_against: None,
            current_user: self.current_user,
        }
    }
}
