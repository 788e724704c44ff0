//! What a run over rows that invite and remove users needs before it
//! sends: the guard against a sheet cut short (`--max-removals`), and the
//! account's id that invitations and removals name (read once, checked
//! against `--account-id`).

use super::list;
use crate::check::{Preflight, REMOVALS_NAMED};
use crate::cli::MembersArgs;
use crate::error::Fatal;
use crate::http::Client;
use crate::operations::members::Account;
use crate::policy::SendPolicy;
use crate::signals::Interrupt;

/// The settings of invitations and removals (`validate` takes the defaults).
#[derive(Debug, Clone)]
pub(crate) struct Members {
    pub(crate) max_removals: u64,
    pub(crate) account_id: Option<u64>,
}

impl Default for Members {
    fn default() -> Members {
        Members {
            max_removals: 10,
            account_id: None,
        }
    }
}

impl From<&MembersArgs> for Members {
    fn from(args: &MembersArgs) -> Members {
        Members {
            max_removals: args.max_removals,
            account_id: args.account_id,
        }
    }
}

impl Members {
    /// Refuses a run (`plan`: a plan) whose rows would remove more users
    /// than `--max-removals`. A dry run is not refused: it says, even under
    /// `-q` (its exit code cannot), that a run that sends would be.
    /// An undo file (or an export: a file with a `verbatim` column) is
    /// named as one.
    pub(crate) fn guard_rows(
        &self,
        preflight: &Preflight,
        (plan, dry_run): (bool, bool),
    ) -> Result<(), Fatal> {
        let unsent = match (plan, dry_run) {
            (true, _) => "no plan was written",
            (false, false) => "nothing was sent",
            (false, true) => "a run that sends would stop there, with nothing sent (exit 2)",
        };
        // An undo file removes the users its run invited: no sheet was cut.
        let (what, why) = match preflight.verbatim {
            true => (
                "the undo file",
                "It takes back the invitations of the run that wrote it",
            ),
            false => ("the file", CUT_SHORT),
        };
        match self.guard(preflight, &[], (what, unsent, why)) {
            Err(refused) if dry_run => {
                crate::say!("warning: {refused}");
                Ok(())
            }
            guarded => guarded,
        }
    }

    /// The account's id when some row invites or removes a user (they
    /// name it), or `--account-id` was given (a key of another account
    /// stops any run, one of updates too); `None` otherwise.
    pub(crate) async fn account_for(
        &self,
        preflight: &Preflight,
        client: &Client,
        policy: &SendPolicy,
        interrupt: &Interrupt,
    ) -> Result<Option<Account>, Fatal> {
        let members = (preflight.invites, preflight.removals);
        self.account_when(members, client, policy, interrupt).await
    }

    /// [`Members::account_for`], for `members` rows that invite and remove.
    /// A run that removes must know the user the key acts as.
    pub(crate) async fn account_when(
        &self,
        (invites, removals): (u64, u64),
        client: &Client,
        policy: &SendPolicy,
        interrupt: &Interrupt,
    ) -> Result<Option<Account>, Fatal> {
        if invites + removals == 0 && self.account_id.is_none() {
            return Ok(None);
        }
        let account = self.account_id(client, policy, interrupt).await?;
        if removals > 0 {
            acting_user_known(&account)?;
        }
        Ok(Some(account))
    }

    /// Refuses a run that would remove more users than `--max-removals`:
    /// the rows' removals (`preflight`) and `more` (a plan's
    /// `--remove-missing`), naming the first few; nothing is sent then.
    pub(crate) fn guard(
        &self,
        preflight: &Preflight,
        more: &[(u64, String)],
        what: (&str, &str, &str),
    ) -> Result<(), Fatal> {
        let count = preflight.removals + more.len() as u64;
        let named: Vec<(u64, String)> = (preflight.removed.iter()).chain(more).cloned().collect();
        self.guard_count(count, &named, what)
    }

    /// Refuses `count` removals (the first few `named`: row and user) when
    /// they are more than `--max-removals`: `what` would remove them,
    /// `unsent` says what was not done, `why` what such a file may be.
    pub(crate) fn guard_count(
        &self,
        count: u64,
        named: &[(u64, String)],
        (what, unsent, why): (&str, &str, &str),
    ) -> Result<(), Fatal> {
        if count <= self.max_removals {
            return Ok(());
        }
        let named: Vec<String> = (named.iter())
            .take(REMOVALS_NAMED)
            .map(|(row, user)| match *row {
                0 => user.clone(),
                row => format!("row {row} ({user})"),
            })
            .collect();
        let others = count - named.len() as u64;
        Err(Fatal::Usage(format!(
            "{what} would remove {count} users, more than --max-removals {} allows: {}{}; \
             {unsent}. {why}; if every removal is meant, pass --max-removals {count}",
            self.max_removals,
            named.join(", "),
            match others {
                0 => String::new(),
                n => format!(" and {n} more"),
            }
        )))
    }

    /// The account's id, read once (`GET /iam/clients/me`) and checked
    /// against `--account-id`.
    pub(crate) async fn account_id(
        &self,
        client: &Client,
        policy: &SendPolicy,
        interrupt: &Interrupt,
    ) -> Result<Account, Fatal> {
        let read = list::account_id(client, policy, interrupt).await?;
        let account = read.map_err(|why| {
            Fatal::Usage(format!(
                "the account's id could not be read (GET /iam/clients/me: {why}); invitations \
                 and removals name it, and --account-id is checked against it, so nothing was \
                 sent"
            ))
        })?;
        let id = account.id;
        if id == 0 {
            return Err(Fatal::Usage(
                "the API gave the account's id as 0 (GET /iam/clients/me), which names no \
                 account: nothing was sent"
                    .to_string(),
            ));
        }
        match self.account_id {
            Some(given) if given != id => Err(Fatal::Usage(format!(
                "--account-id {given} is not the account of this key (the API says {id}): \
                 nothing was sent; check the key or the profile"
            ))),
            _ => Ok(account),
        }
    }
}

/// What the guard says a file that removes too many users may be.
pub(crate) const CUT_SHORT: &str =
    "A sheet cut short (rows lost in a copy, a filter left on) looks like this";

/// A run that removes users refuses to start when the account's answer
/// does not name the user the key acts as (`currentUser` missing, or not a
/// user ID): it could not keep from removing them.
pub(crate) fn acting_user_known(account: &Account) -> Result<(), Fatal> {
    match account.current_user {
        Some(_) => Ok(()),
        None => Err(Fatal::Usage(
            "the account's answer (GET /iam/clients/me) does not say which user the key acts as \
             (its currentUser is missing or not a user ID), so a run that removes users could \
             remove that one and lock the key out: nothing was sent. Remove users with a key \
             whose account answer names its user, or by hand"
                .to_string(),
        )),
    }
}
