//! The files around the record of a run that changes the account: the
//! account its results belong to (a resume goes on with the same one), and
//! the undo file (opened, found again on a resume, and said at the end).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Fatal;
use crate::settings::{ApiSettings, OutputTarget};
use crate::table::members_log::{Earlier, MembersLog, members_path};
use crate::table::record::{self, Account, Previous, SameAccount};
use crate::table::results::{Kind, Status};
use crate::table::undo::{self, UndoLog};

/// The account of a run that sends, as its record keeps it.
pub(super) fn account_of(api: &ApiSettings) -> (String, &str) {
    (
        api.base_url.origin().ascii_serialization(),
        api.api_key.expose(),
    )
}

/// Keeps which account the run talks to beside its results file.
pub(super) fn mark_account(target: &OutputTarget, api: &ApiSettings) -> Result<(), Fatal> {
    let OutputTarget::File(results) = target else {
        return Ok(());
    };
    let (url, key) = account_of(api);
    Account { url: &url, key }
        .mark(results)
        .map_err(|source| Fatal::Record {
            path: record::account_path(results),
            source,
        })
}

/// Refuses to resume the record at `results` with another account than
/// the run that wrote it: its kept rows are of that account.
pub(super) fn same_account(results: &Path, api: &ApiSettings) -> Result<(), Fatal> {
    let (url, key) = account_of(api);
    let found = Account { url: &url, key }
        .compare(results)
        .map_err(|source| Fatal::Record {
            path: record::account_path(results),
            source,
        })?;
    let other = match found {
        SameAccount::Unknown | SameAccount::Same => return Ok(()),
        SameAccount::OtherUrl(was) => format!(
            "records a run against {was}, and this run talks to {url} (key from {})",
            api.key_from
        ),
        SameAccount::OtherKey => format!(
            "records a run with another API key than this run's (key from {}), at the same \
             {url}: it may be another account",
            api.key_from
        ),
    };
    Err(Fatal::Usage(format!(
        "the results file {} {other}; a resume goes on with the account of the run it resumes \
         (its rows are that account's): give the same --profile or key, or write this run's \
         results to another file with -o",
        results.display()
    )))
}

/// The undo file of `--undo-file`, if asked for (`resume`: going on), and
/// remembered by the results file (a run without one forgets an earlier
/// run's), before anything is sent.
/// `accept_partial`: `--accept-partial-undo`.
pub(super) fn open_undo(
    undo_file: Option<&Path>,
    accept_partial: bool,
    resume: bool,
    target: &OutputTarget,
) -> Result<Option<Arc<UndoLog>>, Fatal> {
    if let OutputTarget::File(results) = target {
        undo::remember(results, undo_file).map_err(|source| Fatal::Record {
            path: undo::remembered_path(results),
            source,
        })?;
    }
    let Some(path) = undo_file else {
        return Ok(None);
    };
    UndoLog::open(path, resume, accept_partial)
        .map(|log| Some(Arc::new(log)))
        .map_err(|source| Fatal::UndoFile {
            path: path.to_path_buf(),
            source,
        })
}

/// The undo file a resume goes on with: the one the record at `results`
/// remembers (said, unless `quiet`), which `given` must be if given; or
/// `given` for a record that remembers none.
pub(super) fn resumed_undo(
    results: &Path,
    given: Option<PathBuf>,
    quiet: bool,
) -> Result<Option<PathBuf>, Fatal> {
    let remembered = undo::remembered(results).map_err(|source| Fatal::Record {
        path: undo::remembered_path(results),
        source,
    })?;
    let remembered = match (remembered, &given) {
        (undo::Remembered::File(path), _) => path,
        (undo::Remembered::None, Some(given)) => {
            if !quiet {
                crate::say!(
                    "note: the run being resumed kept no undo file: {} holds the changes of this \
                     run only, not of the rows that run updated",
                    given.display()
                );
            }
            return Ok(Some(given.clone()));
        }
        (undo::Remembered::Unknown, None) => {
            // Printed even with --quiet: it may be a way back left behind.
            crate::say!(
                "note: {} does not say whether the run being resumed kept an undo file ({} is \
                 missing), and this run keeps none: if that run kept one, resume with \
                 --undo-file FILE to go on with it",
                results.display(),
                undo::remembered_path(results).display()
            );
            return Ok(None);
        }
        (_, given) => return Ok(given.clone()),
    };
    if let Some(given) = &given
        && !crate::settings::same_file(given, &remembered)
    {
        return Err(Fatal::Usage(format!(
            "the run being resumed kept its undo file at {}, and --undo-file names {}; resume \
             with --undo-file {} (or without --undo-file), so that one file holds the way back",
            remembered.display(),
            given.display(),
            remembered.display()
        )));
    }
    if !remembered.exists() {
        return Err(Fatal::Usage(format!(
            "the run being resumed kept its undo file at {}, which is gone: put it back before \
             resuming (without it, the changes of that run have no way back)",
            remembered.display()
        )));
    }
    if given.is_none() && !quiet {
        crate::say!(
            "going on with the undo file of the run being resumed: {}",
            remembered.display()
        );
    }
    Ok(Some(remembered))
}

/// Where the way back is, and what it cannot put back. Printed even with
/// `--quiet`: it is part of the run's record.
pub(super) fn note_undo(undo: &UndoLog) {
    match undo.is_empty() {
        true => crate::say!(
            "undo: {} holds no change: this run changed nothing (the file may be given to a \
             run again)",
            undo.path().display()
        ),
        false => crate::say!(
            "undo: {} (gcore-iam-bulk apply {} puts back the values this run changed)",
            undo.path().display(),
            undo.path().display()
        ),
    }
    let [invited, removed] = undo.members();
    let users = |count: u64| match count {
        1 => "1 user".to_string(),
        count => format!("{count} users"),
    };
    let mut parts = Vec::new();
    if invited > 0 {
        parts.push(format!("removes the {} this run invited", users(invited)));
    }
    if removed > 0 {
        parts.push(format!(
            "invites again the {} it removed (their fields as they were; a user invited again \
             gets a new ID, and sets a password before they are active again: passwords, \
             activation and SSO sign-in cannot come back)",
            users(removed)
        ));
    }
    if !parts.is_empty() {
        crate::say!(
            "note: the undo file {}{}",
            parts.join(", and "),
            match invited > 10 {
                true => format!("; apply it with --max-removals {invited}"),
                false => String::new(),
            }
        );
    }
    if let Err(error) = undo.finish() {
        crate::say!(
            "error: the undo file {} could not be merged into one row per user ({error}); it \
             holds every value, but a user with two rows is refused when it is applied: run \
             the same command with --resume to merge it",
            undo.path().display()
        );
    }
    let partial = undo.partial();
    if !partial.is_empty() {
        let shown: Vec<String> = partial
            .iter()
            .take(5)
            .map(|(id, fields)| format!("user {id} ({})", fields.names()))
            .collect();
        crate::say!(
            "note: --accept-partial-undo: the undo file cannot put back {} {} whose value no \
             PATCH can send back (left out by the API, or null): {}{}",
            partial.len(),
            if partial.len() == 1 {
                "user's field"
            } else {
                "users' fields"
            },
            shown.join(", "),
            if partial.len() > 5 { ", ..." } else { "" }
        );
    }
}

/// The record of the earlier run a `--resume` goes on from, if there is one.
pub(super) fn open_previous(
    target: &OutputTarget,
    statuses: &'static [Status],
) -> Result<Option<Previous>, Fatal> {
    let path = match target {
        OutputTarget::Stdout => {
            return Err(Fatal::Usage(
                "--resume needs the results file of the earlier run; -o - writes none".to_string(),
            ));
        }
        OutputTarget::File(path) => path,
    };
    Previous::open(path, statuses).map_err(|source| Fatal::Record {
        path: path.clone(),
        source,
    })
}

/// `--resume` with no record at `results`: a fresh run, said, since a
/// forgotten `-o` of the first run looks the same.
pub(super) fn note_fresh_resume(target: &OutputTarget) {
    let OutputTarget::File(results) = target else {
        return;
    };
    crate::say!(
        "note: --resume: no record in {} yet, so this is a fresh run: every row is sent (a \
         first run that wrote its results elsewhere is resumed with -o naming that file)",
        results.display()
    );
}

/// What a resumed run keeps of its record: `kept` rows already changed, in
/// the operation's word for a changed row (`updated`) among `statuses`.
pub(super) fn note_resuming(path: &str, kept: u64, statuses: &[Status], members: bool) {
    let changed = match members {
        false => (statuses.iter())
            .filter(|status| !Status::MEMBERSHIP.contains(status))
            .find(|status| status.kind() == Kind::Changed)
            .unwrap_or(&Status::UPDATED)
            .as_str(),
        true => "done (updated, invited or removed)",
    };
    crate::say!(
        "resuming from {path}: {kept} {} already {changed}, kept as recorded",
        if kept == 1 { "row" } else { "rows" }
    );
}

/// Printed even with `--quiet`: it explains why nothing was sent.
pub(super) fn refuse_note(invalid: u64) {
    crate::say!(
        "nothing sent: {invalid} {} invalid; fix {} (see the results file), or pass \
         --skip-invalid to send the valid rows anyway",
        if invalid == 1 { "row is" } else { "rows are" },
        if invalid == 1 { "it" } else { "them" },
    );
}

/// What the runs of the record at `results` invited and removed (a
/// resumed run's invitations of addresses in the account now are its own).
pub(super) fn read_earlier(results: &Path) -> Result<Earlier, Fatal> {
    Earlier::read(results).map_err(|source| Fatal::Record {
        path: members_path(results),
        source,
    })
}

/// The record of the invitations and removals a run sends, when some row
/// invites or removes and the results go to a file.
pub(super) fn open_members(
    target: &OutputTarget,
    preflight: &crate::check::Preflight,
    continuing: bool,
) -> Result<Option<Arc<MembersLog>>, Fatal> {
    let OutputTarget::File(results) = target else {
        return Ok(None);
    };
    if preflight.invites + preflight.removals == 0 {
        return Ok(None);
    }
    MembersLog::open(results, continuing)
        .map(|log| Some(Arc::new(log)))
        .map_err(|source| Fatal::MembersFile {
            path: members_path(results),
            source,
        })
}
