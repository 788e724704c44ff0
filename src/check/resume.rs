//! What `--resume` checks before it keeps a recorded row: the same row in
//! the input now, sending the same thing ([`verify_kept`]).

use crate::error::Fatal;
use crate::model::change::{diff, only_fields};
use crate::model::patch::{PatchBody, describe, show};
use crate::table::input::Input;
use crate::table::members_log::Earlier;
use crate::table::record::Previous;
use crate::table::results::{Kind, ResultRecord};

use super::*;

/// Whether `record` (an `updated` row) is `body` sent in part: its request
/// holds some of the body's fields with the same values, and the user it
/// answered with already has every value of the body (the others were
/// right before the change). An edited value of a field not sent is
/// caught: the recorded user does not have it.
pub(super) fn sent_part_of(body: &PatchBody, record: &ResultRecord) -> bool {
    let Some(user) = &record.user else {
        return false;
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&record.request) else {
        return false;
    };
    let Ok(sent) = PatchBody::from_json(&json) else {
        return false;
    };
    let fields = sent.fields();
    only_fields(body, fields) == sent && diff(body, user).is_empty()
}

/// Before a resumed run sends anything: every row the earlier run
/// `updated` must be the same row now (same `user_id`, same request), or
/// the record would say something false about the input. Returns how many
/// rows are kept; the first row that differs is a fatal error that names it.
/// A run with `--skip-unchanged` recorded only the fields it sent: such a
/// row is the same when the input asks for those values still and the user,
/// as the API answered after the change, has every value the row asks for.
pub(crate) fn verify_kept(
    input: &Input,
    null_token: &str,
    duplicates: &Duplicates,
    emails: Option<&EmailIndex>,
    previous: &Previous,
    operation: &dyn Rows,
    earlier: Option<&Earlier>,
) -> Result<Kept, Fatal> {
    let record_error = |source| Fatal::Record {
        path: previous.path().to_path_buf(),
        source,
    };
    let mut cursor = previous.cursor().map_err(record_error)?;
    let mut rows = input.rows()?;
    let header = rows.header().clone();
    let checker = Checker::new(&header, null_token, duplicates)
        .with_emails(emails)
        .with_earlier(earlier)
        .of_recorded_rows();
    // The row as the first pass read it (an invitation of an address in
    // the account now, with no note of this record's, is invalid there).
    let first_pass = Checker::new(&header, null_token, duplicates)
        .with_emails(emails)
        .with_earlier(earlier);
    // The row as it reads without resolving its address.
    let unresolved = Checker::new(&header, null_token, duplicates);
    let (mut kept, mut refused_now) = (0, 0);
    while let Some(raw) = rows.next_row()? {
        let Some(record) = cursor.take(raw.row).map_err(record_error)? else {
            continue;
        };
        if record.status.kind() != Kind::Changed {
            continue;
        }
        let checked = checker.check(&raw);
        // The operation knows its rows: the same request, or the part of
        // it sent, for a PATCH.
        let decided = operation.decided(&checked).is_some();
        let request = match &checked.verdict {
            Verdict::Invalid(problems) => format!("problems: {}", describe(problems)),
            Verdict::Skip(_) if decided => "no change to send".to_string(),
            _ => operation.request(&checked),
        };
        let same_row = !matches!(checked.verdict, Verdict::Invalid(_))
            && !decided
            && operation.same_row(&record, &checked);
        // An invitation's row names no user; its record, the new one.
        let same_user =
            checked.user_id_text == record.user_id || matches!(checked.verdict, Verdict::Invite(_));
        if (!same_user || !same_row)
            && header.current_email.is_some()
            && moved_by_the_run(&unresolved.check(&raw), &record)
        {
            // The row names its user by the address the run itself
            // changed: the same row, which the account's list now resolves
            // to nobody (or to another user, who took the old address).
            kept += 1;
            refused_now += u64::from(matches!(checked.verdict, Verdict::Invalid(_)));
            continue;
        }
        if !same_user || !same_row {
            return Err(Fatal::Usage(format!(
                "row {} of {} is not the row the run recorded in {} sent (user_id {} with {}; the \
                 input now has user_id {} with {}); --resume goes on only with the same input: \
                 restore it, or start over with --overwrite",
                raw.row,
                input.display_path().display(),
                previous.path().display(),
                show(&record.user_id),
                show(&record.request),
                show(&checked.user_id_text),
                show(&request),
            )));
        }
        // Kept as recorded: not invalid, whatever the first pass said.
        if matches!(checked.verdict, Verdict::Invite(_)) {
            let counted = first_pass.check(&raw);
            refused_now += u64::from(matches!(counted.verdict, Verdict::Invalid(_)));
        }
        kept += 1;
    }
    if let Some(row) = cursor.missing_updated().map_err(record_error)? {
        return Err(Fatal::Usage(format!(
            "row {row} was updated by the run recorded in {}, and {} no longer has it (removed, \
             or blank now); --resume goes on only with the same input: restore it, or start \
             over with --overwrite",
            previous.path().display(),
            input.display_path().display(),
        )));
    }
    Ok(Kept {
        rows: kept,
        refused_now,
    })
}

/// What [`verify_kept`] found: the rows kept as recorded, and how many of
/// them the first pass counted invalid only because their address moved
/// with the run's own change (not invalid: kept).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Kept {
    pub rows: u64,
    pub(crate) refused_now: u64,
}

/// Whether `checked` (the row read without resolving its `current_email`)
/// is the row of `record` whose user the run itself gave a new address:
/// the same body as sent, and the user as answered has the row's new
/// address.
pub(super) fn moved_by_the_run(checked: &CheckedRow, record: &ResultRecord) -> bool {
    let Verdict::Send(body) = &checked.verdict else {
        return false;
    };
    // The row's user_id cell, if it has one, is the recorded user's.
    if !checked.user_id_text.is_empty() && checked.user_id_text != record.user_id {
        return false;
    }
    let Some(email) = &body.email else {
        return false;
    };
    let request = serde_json::to_string(body).expect("a body always serialises");
    let same = request == record.request || sent_part_of(body, record);
    same && record.user.as_ref().is_some_and(|user| {
        user.email.as_ref() == Some(email)
            && user.id.map(|id| id.to_string()) == Some(record.user_id.clone())
    })
}
