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

    fn answered(&self, _job: &mut Job, reply: Result<Reply, String>) -> Step {
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
