//! An `invite` row: `POST /iam/clients/invite_user` with the account's id,
//! the address, the first group as the role, the language and the name
//! (the official SDK's `users.invite`); then the new user's other fields
//! (phone, company, auth types, further groups) by a PATCH, or, with none,
//! a GET of the new user: the results row holds the user as the API has
//! them, with the new ID. Both steps go through the engine's rate, retries
//! and pause.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::{done, get_user, patch_user};
use crate::check::EmailIndex;
use crate::engine::{Job, Step};
use crate::http::{Call, Reply};
use crate::model::api::User;
use crate::model::change::{describe, diff};
use crate::model::patch::PatchBody;
use crate::table::members_log::{Earlier, MembersLog};
use crate::table::results::Status;
use crate::table::undo::UndoLog;

/// `POST /iam/clients/invite_user`: answers `{"status", "user_id"}`.
pub(crate) fn invite_user(body: String) -> Call {
    Call::new(reqwest::Method::POST, "iam/clients/invite_user", Some(body))
}

/// The invitation of a row's new user to account `client_id`.
pub(crate) fn invitation(client_id: u64, body: &PatchBody) -> Value {
    let role = body.groups.as_ref().and_then(|groups| groups.first());
    let mut invitation = json!({
        "client_id": client_id,
        "email": body.email,
        "user_role": role.map(|group| json!({"id": group.id, "name": group.name})),
    });
    if let Some(lang) = &body.lang {
        invitation["lang"] = Value::String(lang.clone());
    }
    if let Some(Some(name)) = &body.name {
        invitation["name"] = Value::String(name.clone());
    }
    invitation
}

/// What the invitation cannot carry, set by a PATCH of the new user:
/// phone, company, auth types, and the groups when there are more than
/// the role.
pub(crate) fn after_invitation(body: &PatchBody) -> PatchBody {
    PatchBody {
        phone: body.phone.clone().filter(Option::is_some),
        company: body.company.clone(),
        auth_types: body.auth_types.clone(),
        groups: body.groups.clone().filter(|groups| groups.len() > 1),
        ..PatchBody::default()
    }
}

/// The steps of an invitation.
const INVITE: u32 = 0;
/// The PATCH of the fields the invitation does not carry (or the GET of
/// the new user, when there are none).
const SET_THE_REST: u32 = 1;
/// A resumed run's row whose user the run it resumes already invited:
/// only the PATCH of the other fields (or the GET).
const ALREADY_INVITED: u32 = 2;

/// See the module's documentation.
#[derive(Clone, Default)]
pub(crate) struct Invite {
    /// The account's id (`GET /iam/clients/me`, or `--account-id`).
    pub(crate) client_id: u64,
    pub(crate) undo: Option<Arc<UndoLog>>,
    /// The account's users by address, as read at the start: an answer
    /// that names one of them is not a new user.
    pub(crate) existing: Option<Arc<EmailIndex>>,
    /// Where each invitation is noted before it is sent.
    pub(crate) log: Option<Arc<MembersLog>>,
    /// A resumed run: the addresses the runs of its record invited. Such an
    /// address in the account now was invited by the run cut short (before
    /// its answer was recorded): not invited again.
    pub(crate) earlier: Option<Arc<Earlier>>,
    /// `apply --plan`: the users of the account as read at the start whose
    /// address the plan invites, by ID. An
    /// address the plan invites that belongs to one of them now (the plan
    /// applied before and cut short, or someone else's invitation) is not
    /// invited again: `unchanged` when the user is as the row would make
    /// them, else `failed`, plan again.
    pub(crate) planned_against: Option<Arc<HashMap<u64, User>>>,
}

impl Invite {
    fn body(job: &Job) -> &PatchBody {
        job.body
            .as_deref()
            .expect("an invitation keeps its row's body")
    }

    /// The request of the job's step.
    pub(crate) fn call(&self, job: &Job) -> Call {
        let body = Invite::body(job);
        match job.step {
            INVITE => invite_user(invitation(self.client_id, body).to_string()),
            _ => {
                let rest = after_invitation(body);
                match rest.is_empty() {
                    true => get_user(job.user_id()),
                    false => patch_user(
                        job.user_id(),
                        serde_json::to_string(&rest).expect("a body always serialises"),
                    ),
                }
            }
        }
    }

    /// A resumed run: the address already belongs to a user of the
    /// account, who is not invited again.
    pub(crate) fn decide(&self, job: &mut Job) -> Option<Step> {
        let email = Invite::body(job).email.clone()?;
        if let Some(users) = &self.planned_against {
            return self.decide_planned(job, &email, users);
        }
        if !self.earlier.as_ref()?.invited(&email) {
            return None;
        }
        let id = match self.existing.as_deref()?.lookup(&email) {
            [id] => *id,
            [] => return None,
            several => {
                return Some(done(
                    Status::FAILED,
                    format!(
                        "{} users of the account have the address {email} now: nothing was sent",
                        several.len()
                    ),
                ));
            }
        };
        job.set_user(id);
        job.landed = Some(Status::INVITED);
        // Its way back, if the run cut short could not write it.
        if let Some(step) = self.undo_line(job, id) {
            return Some(step);
        }
        job.step = ALREADY_INVITED;
        Some(Step::Next)
    }

    /// `apply --plan`: an address in the account now is not invited again
    /// (see [`Invite::planned_against`]); nothing is sent for its row.
    fn decide_planned(
        &self,
        job: &mut Job,
        email: &str,
        users: &HashMap<u64, User>,
    ) -> Option<Step> {
        let id = match self.existing.as_deref()?.lookup(email) {
            [] => return None,
            [id] => *id,
            several => {
                return Some(done(
                    Status::FAILED,
                    format!(
                        "not invited: {} users of the account have the address {email} now; \
                         nothing was sent",
                        several.len()
                    ),
                ));
            }
        };
        let user = users.get(&id)?;
        let differs = diff(Invite::body(job), user);
        job.set_user(id);
        let (status, error) = match differs.is_empty() {
            true => (
                Status::UNCHANGED,
                format!(
                    "already as the plan would make it: the address belongs to user {id}, with \
                     the row's values (invited since the plan was made)"
                ),
            ),
            false => (
                Status::FAILED,
                format!(
                    "not invited: the address belongs to user {id} now (invited since the plan \
                     was made: by this plan cut short, or by someone else), whose values differ \
                     from the row's ({}); nothing was sent: plan again, and the row becomes an \
                     update of that user",
                    describe(&differs)
                ),
            ),
        };
        Some(Step::Done {
            status,
            error,
            changes: Vec::new(),
            user: Some(Box::new(user.clone())),
        })
    }

    /// Notes the invitation before it is sent, so that a resumed run
    /// knows it went.
    pub(crate) fn at_send(&self, job: &mut Job) -> Option<Step> {
        let (INVITE, Some(log)) = (job.step, &self.log) else {
            return None;
        };
        let email = Invite::body(job).email.clone().unwrap_or_default();
        log.invite(&email).err().map(|error| Step::Halt {
            error: format!(
                "{} cannot be written ({error}); no invitation is sent without its note",
                log.path().display()
            ),
        })
    }

    /// A refusal of the invitation (a 4xx) is noted: it made no user, and
    /// a resumed run must not take one with that address for its own.
    pub(crate) fn refused(&self, job: &mut Job) -> Option<Step> {
        if let (INVITE, Some(log)) = (job.step, &self.log) {
            let email = Invite::body(job).email.clone().unwrap_or_default();
            if let Err(error) = log.invite_refused(&email) {
                return Some(Step::Halt {
                    error: format!("{} cannot be written ({error})", log.path().display()),
                });
            }
        }
        None
    }

    /// An invitation that did not arrive (no connection, a 429) made no
    /// user: noted, so that a resumed run does not take one with its
    /// address for its own.
    pub(crate) fn not_arrived(&self, job: &Job) {
        if let (INVITE, Some(log)) = (job.step, &self.log) {
            let email = Invite::body(job).email.clone().unwrap_or_default();
            let _ = log.invite_refused(&email);
        }
    }

    /// An invitation is sent once: one whose answer was lost is not sent
    /// again (`--resume` finds the user).
    pub(crate) fn retry_unsure(&self, job: &Job) -> bool {
        job.step != INVITE
    }

    /// The undo file's way back from user `id`'s invitation; `Some`: the
    /// run stops (the file cannot be written).
    fn undo_line(&self, job: &Job, id: u64) -> Option<Step> {
        let undo = self.undo.as_ref()?;
        let error = undo.record_invited(id).err()?;
        Some(Step::DoneThenHalt {
            status: Status::INVITED,
            error: format!(
                "invited as user {id}, but the undo file {} cannot be written ({error}): the run \
                 stops, since nothing is sent without its way back; remove user {id} by hand to \
                 undo row {}",
                undo.path().display(),
                job.row()
            ),
        })
    }

    pub(crate) fn answered(&self, job: &mut Job, reply: Result<Reply, String>) -> Step {
        if job.step == INVITE {
            return self.invited(job, reply);
        }
        let user = super::user_in(reply);
        if let Some(step) = super::another_user(job, &user, "the new user's fields went to") {
            return step;
        }
        let (status, note) = match job.step {
            ALREADY_INVITED => (
                Status::INVITED,
                format!(
                    "invited as user {} by an earlier run of this record: not invited again{}",
                    job.user_id(),
                    match after_invitation(Invite::body(job)).is_empty() {
                        true => "",
                        false => "; the row's other fields are set now",
                    }
                ),
            ),
            _ => (Status::INVITED, String::new()),
        };
        match user {
            Ok(user) => Step::Done {
                status,
                error: note,
                changes: Vec::new(),
                user: Some(user),
            },
            // The invitation stands: the row says so, and why the rest is unknown.
            Err(error) => done(
                Status::INVITED,
                format!(
                    "invited as user {}, but the answer after it is unreadable ({error}); \
                     check the user's fields",
                    job.user_id()
                ),
            ),
        }
    }

    /// The invitation's answer: the new user's ID, then its way back in
    /// the undo file, then the next step.
    fn invited(&self, job: &mut Job, reply: Result<Reply, String>) -> Step {
        let id = reply.and_then(|reply| reply.json::<Value>()).map(|answer| {
            answer
                .get("user_id")
                .and_then(Value::as_u64)
                .filter(|id| *id > 0)
        });
        let id = match id {
            Ok(Some(id)) => id,
            Ok(None) | Err(_) => {
                let email = Invite::body(job).email.clone().unwrap_or_default();
                return done(
                    Status::FAILED,
                    format!(
                        "the invitation was accepted, but its answer names no user_id that can \
                         be read: {email} is likely in the account now; --resume finds the user \
                         and finishes the row without inviting again"
                    ),
                );
            }
        };
        // An answer naming a user who was in the account already is no
        // new user: nothing more is sent for the row.
        if self
            .existing
            .as_ref()
            .is_some_and(|existing| existing.has_id(id))
        {
            return done(
                Status::FAILED,
                format!(
                    "the invitation was answered with user {id}, who was in the account before \
                     it: nothing more was sent for this row (no field set, no undo line); check \
                     user {id} and the address"
                ),
            );
        }
        job.set_user(id);
        job.landed = Some(Status::INVITED);
        if let Some(step) = self.undo_line(job, id) {
            return step;
        }
        job.step = SET_THE_REST;
        Step::Next
    }
}

/// A user as an invitation would make them, for a plan's row: the row's
/// fields, not yet activated.
pub(crate) fn invited_user(body: &PatchBody) -> User {
    let mut user = User::default();
    crate::model::change::apply(&mut user, body);
    user
}
