//! The check against the account as it is ([`LiveCheck`]): values no PATCH
//! can put back, and numbers a spreadsheet damaged, counted as invalid
//! before anything is sent.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::Fatal;
use crate::model::api::User;
use crate::model::change::{FieldSet, diff, number_damage};
use crate::model::patch::PatchBody;
use crate::table::input::Input;
use crate::table::undo::UndoLog;

use super::*;

/// The check of a valid row against its user's live state, for a run that
/// compares (`--skip-unchanged`, `--undo-file`): what it would send must
/// not look like a spreadsheet's damage to a number, and with an undo file
/// every value it replaces must be one a PATCH can put back. Made before
/// anything is sent, for every row, so that such a row stops the run as
/// any invalid row does.
pub struct LiveCheck {
    /// The users of the rows, as read before the run (the account's list,
    /// and a GET for each user it did not give whole).
    pub users: Arc<HashMap<u64, User>>,
    pub(crate) allow_number_changes: bool,
    /// `--skip-unchanged`: only the fields that differ are sent.
    pub(crate) skip_unchanged: bool,
    pub undo: Option<Arc<UndoLog>>,
    /// The user the key acts as: a row that removes them is refused.
    pub(crate) current_user: Option<u64>,
}

impl LiveCheck {
    /// Why the row must not be sent, if it must not: `None` also when the
    /// user was not read (its row reads it, and fails if it cannot).
    pub fn problem(&self, user_id: u64, body: &PatchBody) -> Option<String> {
        let user = self.users.get(&user_id)?;
        if !self.allow_number_changes {
            let damage = number_damage(body, user);
            if !damage.is_empty() {
                let problems: Vec<String> = damage
                    .into_iter()
                    .map(|(field, message)| format!("{}: {message}", field.name()))
                    .collect();
                return Some(problems.join("; "));
            }
        }
        let sent = match self.skip_unchanged {
            true => FieldSet::of(&diff(body, user)),
            false => body.fields(),
        };
        self.undo.as_ref()?.refuses(user_id, user, sent)
    }

    /// Why the removal of user `user_id` must not be sent, if it must not:
    /// they are the user the key acts as, or the undo file could not
    /// invite them back (`None` also when the user was not read: its row
    /// reads it, and the undo line is checked then).
    pub fn removal_problem(&self, user_id: u64) -> Option<String> {
        if self.current_user == Some(user_id) {
            return Some(own_user_refused(user_id));
        }
        let user = self.users.get(&user_id)?;
        self.undo.as_ref()?.refuses_removal(user)
    }

    /// Why the checked row must not be sent, if it must not.
    pub(crate) fn row_problem(&self, checked: &CheckedRow) -> Option<String> {
        match (&checked.verdict, checked.user_id) {
            (Verdict::Send(body), Some(id)) => self.problem(id, body),
            (Verdict::Remove, Some(id)) => self.removal_problem(id),
            _ => None,
        }
    }

    /// The users of the valid rows of `input` that are not read whole for
    /// the fields their rows change: each once, to be read by GET.
    pub(crate) fn to_read(
        input: &Input,
        null_token: &str,
        emails: Option<&EmailIndex>,
        users: &HashMap<u64, User>,
    ) -> Result<Vec<u64>, Fatal> {
        let mut ids = Vec::new();
        each_checked(
            input,
            null_token,
            &Duplicates::default(),
            emails,
            |checked| {
                // A removal's undo line takes every field of its user.
                let fields = match &checked.verdict {
                    Verdict::Send(body) => body.fields(),
                    Verdict::Remove => FieldSet::ALL,
                    _ => return,
                };
                let Some(id) = checked.user_id else { return };
                let whole = users
                    .get(&id)
                    .is_some_and(|user| user.absent.and(fields).is_empty());
                if !whole {
                    ids.push(id);
                }
            },
        )?;
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// How many valid rows of `input` [`LiveCheck::problem`] refuses.
    pub fn count(
        &self,
        input: &Input,
        null_token: &str,
        duplicates: &Duplicates,
        emails: Option<&EmailIndex>,
    ) -> Result<u64, Fatal> {
        let mut refused = 0;
        each_checked(input, null_token, duplicates, emails, |checked| {
            if self.row_problem(&checked).is_some() {
                refused += 1;
            }
        })?;
        Ok(refused)
    }
}

/// The row's error when it would remove user `id`, the key's own.
pub(crate) fn own_user_refused(id: u64) -> String {
    format!(
        "nothing sent: user {id} is the user this API key acts as (currentUser of GET \
         /iam/clients/me), and a run with this key does not remove them (the key would lose its \
         access partway through the run); remove them with another user's key, or in the \
         Customer Portal"
    )
}
