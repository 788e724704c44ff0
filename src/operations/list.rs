//! Reading the account: the pages of the user list (`export`, and the
//! list a run compares rows with), and users one GET each.

use super::{done, get_user, list_page, read_user};
use crate::engine::{Job, Operation, Step};
use crate::http::{Call, Reply};
use crate::model::api::{User, UserPage};
use crate::table::results::Status;

/// `export`: one `GET /iam/users?limit=L&offset=O` per job, whose
/// subject is the page. Each page goes to `pages` (with its offset)
/// before the job is reported done.
pub(crate) struct ListPages {
    pub limit: u64,
    pub pages: std::sync::mpsc::Sender<(u64, UserPage)>,
}

impl Operation for ListPages {
    fn noun(&self) -> &'static str {
        "page"
    }

    fn ended_as(&self, status: Status) -> &'static str {
        match status {
            Status::UPDATED => "read",
            other => other.as_str(),
        }
    }

    fn call(&self, job: &Job) -> Call {
        list_page(self.limit, job.offset())
    }

    fn answered(&self, job: &mut Job, reply: Result<Reply, String>) -> Step {
        let page = reply.and_then(|reply| {
            super::page_in(&reply)
                .map_err(|error| format!("the answer is not a page of users: {error}"))
        });
        match page {
            Ok(page) => {
                // The receiver is gone only when the export is over.
                let _ = self.pages.send((job.offset(), page));
                done(Status::UPDATED, String::new())
            }
            Err(error) => done(Status::FAILED, error),
        }
    }
}

/// The users a run compares rows with and that the account's list did not
/// give whole: one GET per user, each answer to `users` before the job is
/// reported done (`read`), so that every row is checked against the live
/// state before anything is sent.
pub(crate) struct ReadUsers {
    /// Each user read, with the id the job asked for.
    pub users: std::sync::mpsc::Sender<(u64, Box<User>)>,
}

impl Operation for ReadUsers {
    fn noun(&self) -> &'static str {
        "user"
    }

    fn ended_as(&self, status: Status) -> &'static str {
        match status {
            Status::UPDATED => "read",
            other => other.as_str(),
        }
    }

    fn call(&self, job: &Job) -> Call {
        get_user(job.user_id())
    }

    fn answered(&self, job: &mut Job, reply: Result<Reply, String>) -> Step {
        match read_user(job, reply) {
            Ok(user) => {
                // The receiver is gone only when the reading is over.
                let _ = self.users.send((job.user_id(), user));
                done(Status::UPDATED, String::new())
            }
            Err(step) => step,
        }
    }
}
