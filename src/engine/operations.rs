//! The operations the engine runs: what each job sends, step by step, and
//! what a successful answer means.

use super::{Job, Operation, Step};
use crate::http::{Call, Reply};
use crate::table::results::Status;

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
        // An answer about another user: the change may have been made to
        // that user; calling it `updated` would hide it.
        if let Ok(Reply::User(user)) = &reply
            && let Some(other) = user.id.filter(|id| *id != job.user_id)
        {
            return Step::Done {
                status: Status::Failed,
                error: format!(
                    "the API answered with user {other}, not user {}: the change may have \
                     landed on user {other}; check both users",
                    job.user_id
                ),
                changes: String::new(),
                user: None,
            };
        }
        // A 2xx means the change was made, whatever its body says.
        let (user, error) = match reply {
            Ok(Reply::User(user)) => (Some(user), String::new()),
            Ok(Reply::Page(_)) => (
                None,
                "the change was accepted but the answer is a list, not the user".to_string(),
            ),
            Err(error) => (None, error),
        };
        Step::Done {
            status: Status::Updated,
            error,
            changes: String::new(),
            user,
        }
    }
}
