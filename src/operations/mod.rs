//! The operations the engine runs, one file each: what a job sends, step by
//! step, and what a successful answer means. The engine owns the rest (the
//! rate, retries, the pause after a 429, the results); an operation builds
//! its requests as data ([`Call`]) and reads the answers it needs
//! ([`Reply`]). What several share is here, public to them: the users
//! endpoint's requests, reading a user from an answer, the checks of an
//! answer against its row, the undo file's line before a change.
//!
//! To add one: a file here with a type implementing
//! [`crate::engine::Operation`], and `pub mod NAME;` below.

pub(crate) mod invite;
pub mod list;
pub(crate) mod members;
pub(crate) mod pages;
pub mod patch;
pub mod plan;
pub mod planned;
pub(crate) mod remove;

use std::sync::Arc;

use crate::engine::{Job, Step};
use crate::http::{Call, Reply};
use crate::model::api::{User, UserPage};
use crate::model::change::{Change, FieldSet, describe, diff, number_damage};
use crate::model::patch::PatchBody;
use crate::table::results::Status;
use crate::table::undo::UndoLog;

/// `GET /iam/users/{user_id}`: answers the user.
pub fn get_user(user_id: u64) -> Call {
    Call::get(format!("iam/users/{user_id}"))
}

/// `PATCH /iam/users/{user_id}` with the JSON text `body`: answers the
/// whole user.
pub fn patch_user(user_id: u64, body: String) -> Call {
    Call::patch(format!("iam/users/{user_id}"), body)
}

/// `GET /iam/users?limit=L&offset=O`: answers a page of the list, read up
/// to 1 MiB and 2 KiB a user more (a user object is about 500 bytes; a
/// page of the 10,000 users `--page-size` allows at the most, up to 21 MiB).
pub fn list_page(limit: u64, offset: u64) -> Call {
    let bound = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_mul(PAGE_BYTES_PER_USER)
        .saturating_add(crate::http::MAX_BODY);
    Call::get("iam/users")
        .with_query("limit", limit)
        .with_query("offset", offset)
        .with_max_body(bound)
}

/// What a page of the list may take for each user it asks for.
const PAGE_BYTES_PER_USER: usize = 2048;

/// The user a 2xx answer holds; `Err` says why it holds none.
/// The page of users in a successful answer (see
/// [`UserPage::forget_blanked`]).
pub(crate) fn page_in(reply: &Reply) -> Result<UserPage, String> {
    let mut page = reply.read(UserPage::parse)?;
    if reply.blanked() {
        page.forget_blanked(crate::secret::BLANK);
    }
    Ok(page)
}

pub fn user_in(reply: Result<Reply, String>) -> Result<Box<User>, String> {
    let reply = reply?;
    let mut user = (reply.json::<Box<User>>())
        .map_err(|error| format!("the answer is not a user object: {error}"))?;
    if reply.blanked() {
        user.forget_blanked(crate::secret::BLANK);
    }
    Ok(user)
}

/// A job that ends with `status` and `error`, with nothing else to say.
pub fn done(status: Status, error: String) -> Step {
    Step::Done {
        status,
        error,
        changes: Vec::new(),
        user: None,
    }
}

/// What a 2xx to a PATCH means: `updated` when its body is the row's user
/// (the API answers with the whole user); `failed` when it describes
/// another user, or none (a proxy's or a portal's page, `{}`, a body too
/// large to read): whether the change landed is not known, and `--resume`
/// sends it again, which a PATCH of the same values makes harmless.
pub fn patched(job: &mut Job, reply: Result<Reply, String>) -> Step {
    let user = match reply {
        Ok(reply) => reply
            .json::<Box<User>>()
            .map_err(|error| format!("the answer is not a user object: {error}")),
        Err(error) => Err(error),
    };
    if let Some(step) = another_user(job, &user, "the change may have landed on") {
        return step;
    }
    let unknown = match &user {
        Ok(user) if user.id.is_some() => None,
        Ok(_) => Some("the answer is a JSON object without the user's id".to_string()),
        Err(error) => Some(error.clone()),
    };
    if let Some(why) = unknown {
        let next = match job.from_plan {
            true => "plan again and apply the new plan",
            false => "--resume sends it again (the same values: harmless)",
        };
        return Step::Done {
            status: Status::FAILED,
            error: format!(
                "the API answered 2xx, but not with user {} ({why}): the change may not have \
                 landed; {next}",
                job.user_id()
            ),
            changes: std::mem::take(&mut job.changes),
            user: None,
        };
    }
    let (user, error) = match user {
        // A row compared with the user first (`--skip-unchanged`, the
        // undo file) is checked against the answer: a field it did not
        // send that differs now was changed by someone else meanwhile (the
        // list it was compared with was read at the start).
        Ok(user) => {
            let differs = job
                .body
                .as_deref()
                .map(|body| diff(body, &user))
                .unwrap_or_default();
            let note = match differs.is_empty() {
                true => String::new(),
                false => format!(
                    "updated, but the user now differs from the row: {} (changed by someone \
                     else meanwhile?); plan again",
                    describe(&differs)
                ),
            };
            (Some(user), note)
        }
        Err(error) => (None, error),
    };
    Step::Done {
        status: Status::UPDATED,
        error,
        changes: std::mem::take(&mut job.changes),
        user,
    }
}

/// A GET of the row's user, then the PATCH (the operations that compare).
pub(crate) fn get_then_patch(job: &Job) -> Call {
    match job.step {
        0 => get_user(job.user_id()),
        _ => patch_user(job.user_id(), job.request.clone()),
    }
}

/// Writes the values of the fields the PATCH sends (`sent`) to the undo
/// file, if there is one, before the PATCH: every field sent, not only
/// those that differ by the comparison (a list with an item twice is the
/// same set, and still replaced). `Err`: the step that ends the row (a
/// value no PATCH can put back: invalid) or stops the run (the file cannot
/// be written), since no change is sent without its way back.
pub(crate) fn undo_first(
    undo: &Option<Arc<UndoLog>>,
    user_id: u64,
    before: &User,
    sent: FieldSet,
    changes: &[Change],
) -> Result<(), Step> {
    let Some(undo) = undo else {
        return Ok(());
    };
    if let Some(refusal) = undo.refuses(user_id, before, sent) {
        return Err(Step::Done {
            status: Status::INVALID,
            error: refusal,
            changes: changes.to_vec(),
            user: Some(Box::new(before.clone())),
        });
    }
    undo.record(user_id, before, sent)
        .map_err(|error| Step::Halt {
            error: format!(
                "the undo file {} cannot be written ({error}); no change is sent without it",
                undo.path().display()
            ),
        })
}

/// An answer about another user than the row's: `failed`, naming both,
/// since calling it anything else would hide it.
pub(crate) fn another_user(
    job: &Job,
    user: &Result<Box<User>, String>,
    what: &str,
) -> Option<Step> {
    let Ok(user) = user else {
        return None;
    };
    let other = user.id.filter(|id| *id != job.user_id())?;
    Some(done(
        Status::FAILED,
        format!(
            "the API answered with user {other}, not user {}: {what} user {other}; check both users",
            job.user_id()
        ),
    ))
}

/// The user a GET answered with, or the step that ends the job instead.
pub(crate) fn read_user(job: &Job, reply: Result<Reply, String>) -> Result<Box<User>, Step> {
    let user = user_in(reply);
    if let Some(step) = another_user(job, &user, "nothing was changed; the API may confuse") {
        return Err(step);
    }
    user.map_err(|error| unreadable(job, &error))
}

fn unreadable(job: &Job, why: &str) -> Step {
    done(
        Status::FAILED,
        format!(
            "the user's current state could not be read ({why}); nothing was sent for user {}",
            job.user_id()
        ),
    )
}

/// The row invalid when it would only make a spreadsheet's damage to a
/// number (see [`number_damage`]), unless allowed.
pub fn damaged(body: &PatchBody, user: Box<User>, allowed: bool) -> Result<Box<User>, Step> {
    let damage = if allowed {
        Vec::new()
    } else {
        number_damage(body, &user)
    };
    if damage.is_empty() {
        return Ok(user);
    }
    let problems: Vec<String> = damage
        .into_iter()
        .map(|(field, message)| format!("{}: {message}", field.name()))
        .collect();
    Err(Step::Done {
        status: Status::INVALID,
        error: problems.join("; "),
        changes: Vec::new(),
        user: Some(user),
    })
}
