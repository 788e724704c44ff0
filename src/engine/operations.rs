//! The operations the engine runs: what each job sends, step by step, and
//! what a successful answer means.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Job, Operation, Step};
use crate::http::{Call, Reply};
use crate::model::api::User;
use crate::model::change::{Change, FieldSet, describe, diff, number_damage, only};
use crate::model::patch::Field;
use crate::model::patch::PatchBody;
use crate::table::results::Status;
use crate::table::undo::UndoLog;

/// `apply`: one PATCH per row, with the row's body; the answer is the user's
/// new state.
#[derive(Debug, Clone, Copy, Default)]
pub struct PatchRows;

impl Operation for PatchRows {
    fn call(&self, job: &Job) -> Call {
        Call::Patch {
            user_id: job.user_id,
            body: job.request.clone(),
        }
    }

    fn answered(&self, job: &mut Job, reply: Result<Reply, String>) -> Step {
        patched(job, reply)
    }
}

/// What a 2xx to a PATCH means: `updated`, whatever its body says, unless it
/// describes another user.
fn patched(job: &mut Job, reply: Result<Reply, String>) -> Step {
    if let Some(step) = another_user(job, &reply, "the change may have landed on") {
        return step;
    }
    let (user, error) = match reply {
        // A row compared with the user first (`--skip-unchanged`, the
        // undo file) is checked against the answer: a field it did not
        // send that differs now was changed by someone else meanwhile (the
        // list it was compared with was read at the start).
        Ok(Reply::User(user)) => {
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
        Ok(Reply::Page(_)) => (
            None,
            "the change was accepted but the answer is a list, not the user".to_string(),
        ),
        Err(error) => (None, error),
    };
    Step::Done {
        status: Status::Updated,
        error,
        changes: std::mem::take(&mut job.changes),
        user,
    }
}

/// A GET of the row's user, then the PATCH (the operations that compare).
fn get_then_patch(job: &Job) -> Call {
    match job.step {
        0 => Call::GetUser {
            user_id: job.user_id,
        },
        _ => Call::Patch {
            user_id: job.user_id,
            body: job.request.clone(),
        },
    }
}

/// Writes the values of the fields the PATCH sends (`sent`) to the undo
/// file, if there is one, before the PATCH: every field sent, not only
/// those that differ by the comparison (a list with an item twice is the
/// same set, and still replaced). `Err`: the step that ends the row (a
/// value no PATCH can put back: invalid) or stops the run (the file cannot
/// be written), since no change is sent without its way back.
fn undo_first(
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
            status: Status::Invalid,
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
fn another_user(job: &Job, reply: &Result<Reply, String>, what: &str) -> Option<Step> {
    let Ok(Reply::User(user)) = reply else {
        return None;
    };
    let other = user.id.filter(|id| *id != job.user_id)?;
    Some(Step::Done {
        status: Status::Failed,
        error: format!(
            "the API answered with user {other}, not user {}: {what} user {other}; check both users",
            job.user_id
        ),
        changes: Vec::new(),
        user: None,
    })
}

/// The user a GET answered with, or the step that ends the job instead.
fn read_user(job: &Job, reply: Result<Reply, String>) -> Result<Box<User>, Step> {
    if let Some(step) = another_user(job, &reply, "nothing was changed; the API may confuse") {
        return Err(step);
    }
    match reply {
        Ok(Reply::User(user)) => Ok(user),
        Ok(Reply::Page(_)) => Err(unreadable(job, "the answer is a list, not the user")),
        Err(error) => Err(unreadable(job, &error)),
    }
}

fn unreadable(job: &Job, why: &str) -> Step {
    Step::Done {
        status: Status::Failed,
        error: format!(
            "the user's current state could not be read ({why}); nothing was sent for user {}",
            job.user_id
        ),
        changes: Vec::new(),
        user: None,
    }
}

/// `plan`: one GET per row, or the user from the account's list read at
/// the start (`snapshot`, when that took fewer requests); the row's change
/// against the user's state: `would_update` with the changes, or
/// `unchanged`. Nothing is written.
#[derive(Debug, Clone, Default)]
pub struct PlanRows {
    pub snapshot: Option<Arc<HashMap<u64, User>>>,
    /// `--allow-number-changes`: send what looks like a spreadsheet's damage.
    pub allow_number_changes: bool,
}

/// The row invalid when it would only make a spreadsheet's damage to a
/// number (see [`number_damage`]), unless allowed.
fn damaged(body: &PatchBody, user: Box<User>, allowed: bool) -> Result<Box<User>, Step> {
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
        status: Status::Invalid,
        error: problems.join("; "),
        changes: Vec::new(),
        user: Some(user),
    })
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
            true => Status::Unchanged,
            false => Status::WouldUpdate,
        };
        Step::Done {
            status,
            error: String::new(),
            changes,
            user: Some(user),
        }
    }
}

impl Operation for PlanRows {
    fn decide(&self, job: &mut Job) -> Option<Step> {
        // A user not in the list (added since) is read on its own.
        let user = self.snapshot.as_ref()?.get(&job.user_id)?;
        Some(self.compare(job, Box::new(user.clone())))
    }

    fn call(&self, job: &Job) -> Call {
        Call::GetUser {
            user_id: job.user_id,
        }
    }

    fn answered(&self, job: &mut Job, reply: Result<Reply, String>) -> Step {
        match read_user(job, reply) {
            Ok(user) => self.compare(job, user),
            Err(step) => step,
        }
    }
}

/// `apply --skip-unchanged` and `--undo-file`: a GET, then the PATCH. With
/// `skip_unchanged` the PATCH carries only the fields that differ, and a
/// row already right sends none. With an undo log, the values about to
/// change are written to it before the PATCH goes.
#[derive(Clone, Default)]
pub struct PatchChanged {
    pub skip_unchanged: bool,
    pub undo: Option<Arc<UndoLog>>,
    /// The account's users as listed at the start, when reading the list
    /// took fewer requests than a GET per row.
    pub snapshot: Option<Arc<HashMap<u64, User>>>,
    /// `--allow-number-changes`: send what looks like a spreadsheet's damage.
    pub allow_number_changes: bool,
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
                        status: Status::Invalid,
                        error,
                        changes,
                        user,
                    } if self.snapshot.is_some() => Step::Done {
                        status: Status::Failed,
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

    fn decide(&self, job: &mut Job) -> Option<Step> {
        // A user not in the list (added since) is read on its own.
        let user = self.snapshot.as_ref()?.get(&job.user_id)?;
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
                status: Status::Unchanged,
                error: String::new(),
                changes,
                user: Some(user),
            };
        }
        let sent = match self.skip_unchanged {
            true => {
                let sent = only(&body, &changes);
                job.request = serde_json::to_string(&sent).expect("a body always serialises");
                sent.fields()
            }
            false => body.fields(),
        };
        if let Err(halt) = undo_first(&self.undo, job.user_id, &user, sent, &changes) {
            return halt;
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
pub enum ApplyRows {
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
}

/// `export`: one `GET /iam/users?limit=L&offset=O` per job, whose
/// `user_id` holds the offset. Each page goes to `pages` (with its offset)
/// before the job is reported done.
pub struct ListPages {
    pub limit: u64,
    pub pages: std::sync::mpsc::Sender<(u64, crate::model::api::UserPage)>,
}

impl Operation for ListPages {
    fn noun(&self) -> &'static str {
        "page"
    }

    fn ended_as(&self, status: Status) -> &'static str {
        match status {
            Status::Updated => "read",
            other => other.as_str(),
        }
    }

    fn call(&self, job: &Job) -> Call {
        Call::ListPage {
            limit: self.limit,
            offset: job.user_id,
        }
    }

    fn answered(&self, job: &mut Job, reply: Result<Reply, String>) -> Step {
        let failed = |error: String| Step::Done {
            status: Status::Failed,
            error,
            changes: Vec::new(),
            user: None,
        };
        match reply {
            Ok(Reply::Page(page)) => {
                // The receiver is gone only when the export is over.
                let _ = self.pages.send((job.user_id, page));
                Step::Done {
                    status: Status::Updated,
                    error: String::new(),
                    changes: Vec::new(),
                    user: None,
                }
            }
            Ok(Reply::User(_)) => failed("the answer is one user, not a page of users".into()),
            Err(error) => failed(error),
        }
    }
}

/// `apply --plan`: a GET, then the PATCH of the changes the plan showed,
/// only while the user still has every value the plan read; a user
/// changed since is `failed`, nothing sent. With an undo log, the values
/// about to change are written to it before the PATCH goes.
#[derive(Clone, Default)]
pub struct PatchAsPlanned {
    pub undo: Option<Arc<UndoLog>>,
}

impl Operation for PatchAsPlanned {
    fn call(&self, job: &Job) -> Call {
        get_then_patch(job)
    }

    fn answered(&self, job: &mut Job, reply: Result<Reply, String>) -> Step {
        if job.step > 0 {
            return patched(job, reply);
        }
        let user = match read_user(job, reply) {
            Ok(user) => user,
            Err(step) => return step,
        };
        let body = job.body.take().expect("a planned row keeps its body");
        // The user the plan read is still the one its row names: a row by
        // current_email found this user by an address that has moved on.
        let planned_email = job.before.as_ref().and_then(|before| before.email.clone());
        if body.email.is_none() && planned_email.is_some() && planned_email != user.email {
            return Step::Done {
                status: Status::Failed,
                error: format!(
                    "changed since the plan, nothing sent: email: {} in the plan, {} now (a row \
                     that names the user by current_email may name another user now); plan again",
                    show_text(planned_email.as_deref()),
                    show_text(user.email.as_deref())
                ),
                changes: std::mem::take(&mut job.changes),
                user: Some(user),
            };
        }
        let now = diff(&body, &user);
        // Already as the plan would make it (the plan applied before, by a
        // run cut short, say): nothing to send, nothing overwritten.
        if now.is_empty() {
            return Step::Done {
                status: Status::Unchanged,
                error: "already as the plan would make it".to_string(),
                changes: Vec::new(),
                user: Some(user),
            };
        }
        if now != job.changes {
            return Step::Done {
                status: Status::Failed,
                error: format!(
                    "changed since the plan, nothing sent: {}; plan again",
                    drift(&job.changes, &now)
                ),
                changes: std::mem::take(&mut job.changes),
                user: Some(user),
            };
        }
        let sent = FieldSet::of(&job.changes);
        if let Err(halt) = undo_first(&self.undo, job.user_id, &user, sent, &job.changes) {
            return halt;
        }
        job.before = Some(user);
        job.step = 1;
        Step::Next
    }
}

fn show_text(text: Option<&str>) -> String {
    text.map_or_else(|| "null".to_string(), |text| format!("{text:?}"))
}

/// How the user differs from what the plan read, field by field:
/// `lang: en in the plan, de now`.
fn drift(planned: &[Change], now: &[Change]) -> String {
    let mut parts = Vec::new();
    for field in Field::ALL {
        let was = planned.iter().find(|c| c.field == field);
        let is = now.iter().find(|c| c.field == field);
        let text = match (was, is) {
            (Some(was), Some(is)) if was.from != is.from => {
                format!(
                    "{}: {} in the plan, {} now",
                    field.name(),
                    was.from,
                    is.from
                )
            }
            (Some(was), None) => format!(
                "{}: {} in the plan, {} (the planned value) now",
                field.name(),
                was.from,
                was.to
            ),
            (None, Some(is)) => format!(
                "{}: {} in the plan (no change planned), {} now",
                field.name(),
                is.to,
                is.from
            ),
            _ => continue,
        };
        parts.push(text);
    }
    parts.join("; ")
}

/// The users a run compares rows with and that the account's list did not
/// give whole: one GET per user, each answer to `users` before the job is
/// reported done (`read`), so that every row is checked against the live
/// state before anything is sent.
pub struct ReadUsers {
    pub users: std::sync::mpsc::Sender<Box<User>>,
}

impl Operation for ReadUsers {
    fn noun(&self) -> &'static str {
        "user"
    }

    fn ended_as(&self, status: Status) -> &'static str {
        match status {
            Status::Updated => "read",
            other => other.as_str(),
        }
    }

    fn call(&self, job: &Job) -> Call {
        Call::GetUser {
            user_id: job.user_id,
        }
    }

    fn answered(&self, job: &mut Job, reply: Result<Reply, String>) -> Step {
        match read_user(job, reply) {
            Ok(user) => {
                // The receiver is gone only when the reading is over.
                let _ = self.users.send(user);
                Step::Done {
                    status: Status::Updated,
                    error: String::new(),
                    changes: Vec::new(),
                    user: None,
                }
            }
            Err(step) => step,
        }
    }
}
