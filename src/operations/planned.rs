//! `apply --plan`: the changes a reviewed plan showed, each only while the
//! user is still as the plan read them.

use std::sync::Arc;

use std::time::Instant;

use super::pages::{LivePages, Lookup};
use super::{get_then_patch, patched, read_user, undo_first};
use crate::engine::{Job, Operation, Step};
use crate::http::{Call, Reply};
use crate::model::api::User;
use crate::model::change::{Change, FieldSet, diff};
use crate::model::patch::Field;
use crate::table::results::Status;
use crate::table::undo::UndoLog;

/// `apply --plan`: the user read just before (its page of the account's
/// list when that was read less than [`LivePages::fresh`] ago, else a GET),
/// then the PATCH of the changes the plan showed, only while the user
/// still has every value the plan read; a user changed since is `failed`,
/// nothing sent. With an undo log, the values about to change are written
/// to it before the PATCH goes.
#[derive(Clone, Default)]
pub(crate) struct PatchAsPlanned {
    pub undo: Option<Arc<UndoLog>>,
    /// The account's list by pages, when reading it took fewer requests
    /// than a GET per row.
    pub pages: Option<Arc<LivePages>>,
}

/// The steps: the user's GET (0), the PATCH (1), its page read again (2).
const GET: u32 = 0;
const PATCH: u32 = 1;
const PAGE: u32 = 2;

impl Operation for PatchAsPlanned {
    fn call(&self, job: &Job) -> Call {
        match (job.step, &self.pages) {
            (PAGE, Some(pages)) => pages.call(job.user_id()),
            _ => get_then_patch(job),
        }
    }

    /// A user its page shows, read less than a window ago, is compared at
    /// once; an older page is read again by this row.
    fn decide(&self, job: &mut Job) -> Option<Step> {
        match self.pages.as_ref()?.lookup(job.user_id()) {
            Lookup::Fresh(user, read_at) => {
                job.page_read_at = Some(read_at);
                Some(self.compare(job, user))
            }
            Lookup::Refresh => {
                job.step = PAGE;
                None
            }
            Lookup::Get => None,
        }
    }

    fn at_send(&self, job: &mut Job) -> Option<Step> {
        self.patch_now(job)
    }

    fn answered(&self, job: &mut Job, reply: Result<Reply, String>) -> Step {
        match job.step {
            PATCH => {
                // The answer is checked against the plan's changes alone.
                job.body = None;
                return patched(job, reply);
            }
            PAGE => return self.page_read(job, reply),
            _ => {}
        }
        job.page_read_at = None;
        let user = match read_user(job, reply) {
            Ok(user) => user,
            Err(step) => return step,
        };
        self.compare(job, user)
    }
}

impl PatchAsPlanned {
    /// The page of the row's user, read again: the user compared, or read
    /// with a GET when the page no longer shows it whole.
    fn page_read(&self, job: &mut Job, reply: Result<Reply, String>) -> Step {
        let pages = self.pages.as_ref().expect("a page is read only with pages");
        let page = reply.and_then(|reply| super::page_in(&reply));
        let found = match page {
            // As of when it was sent, at the latest: a tenth of the window
            // earlier than its answer.
            Ok(page) => {
                let now = Instant::now();
                let read_at = now.checked_sub(pages.fresh() / 10).unwrap_or(now);
                job.page_read_at = Some(read_at);
                pages.refreshed(job.user_id(), page, read_at)
            }
            Err(_) => {
                pages.unread(job.user_id());
                None
            }
        };
        match found {
            Some(user) => self.compare(job, user),
            None => {
                job.step = GET;
                Step::Next
            }
        }
    }

    /// The user as read just now against what the plan read and would
    /// change: the PATCH next, or the row ended (already done, or changed
    /// since the plan).
    fn compare(&self, job: &mut Job, user: Box<User>) -> Step {
        let body = job.body.clone().expect("a planned row keeps its body");
        // The user the plan read is still the one its row names: a row by
        // current_email found this user by an address that has moved on.
        let planned_email = job.before.as_ref().and_then(|before| before.email.clone());
        if body.email.is_none() && planned_email.is_some() && planned_email != user.email {
            return Step::Done {
                status: Status::FAILED,
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
                status: Status::UNCHANGED,
                error: "already as the plan would make it".to_string(),
                changes: Vec::new(),
                user: Some(user),
            };
        }
        if now != job.changes {
            return Step::Done {
                status: Status::FAILED,
                error: format!(
                    "changed since the plan, nothing sent: {}; plan again",
                    drift(&job.changes, &now)
                ),
                changes: std::mem::take(&mut job.changes),
                user: Some(user),
            };
        }
        job.before = Some(user);
        job.step = PATCH;
        Step::Next
    }

    /// Just before the PATCH leaves: a row compared with a page of the
    /// list that is no longer recent (it waited for its turn under the
    /// rate) reads its user again with a GET, in this turn; then the
    /// values about to change go to the undo file. A row compared with a
    /// GET's answer is sent as it is: the GET was its own, as recent as
    /// the rate lets a PATCH follow it.
    fn patch_now(&self, job: &mut Job) -> Option<Step> {
        if job.step != PATCH {
            return None;
        }
        let fresh = self.pages.as_ref().map(|pages| pages.fresh());
        if let (Some(read_at), Some(fresh)) = (job.page_read_at, fresh)
            && read_at.elapsed() >= fresh
        {
            job.page_read_at = None;
            job.step = GET;
            return Some(Step::Next);
        }
        let sent = FieldSet::of(&job.changes);
        let before = job.before.as_deref()?;
        undo_first(&self.undo, job.user_id(), before, sent, &job.changes).err()
    }
}

fn show_text(text: Option<&str>) -> String {
    text.map_or_else(|| "null".to_string(), |text| format!("{text:?}"))
}

/// How the user differs from what the plan read, field by field:
/// `lang: en in the plan, de now`. A field already at its planned value
/// (the plan applied before, or someone else) is said so; then the fields
/// still as the plan read them are named too (changed back since, when an
/// earlier run applied the plan): a user half as planned is what a
/// reviewer needs to see whole.
fn drift(planned: &[Change], now: &[Change]) -> String {
    let mut parts = Vec::new();
    let mut pending = Vec::new();
    let mut applied = false;
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
            (Some(was), Some(_)) => {
                pending.push(format!(
                    "{}: still {}, as the plan read it (to become {})",
                    field.name(),
                    was.from,
                    was.to
                ));
                continue;
            }
            (Some(was), None) => {
                applied = true;
                format!(
                    "{}: already {}, the planned value (set by an earlier run of this plan, or by \
                     someone else)",
                    field.name(),
                    was.to
                )
            }
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
    if applied {
        parts.extend(pending);
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(field: Field, from: &str, to: &str) -> Change {
        Change {
            field,
            from: from.to_string(),
            to: to.to_string(),
        }
    }

    /// A row compared with a page of the list waits for its turn under
    /// the rate; if the page is no longer recent when the PATCH would
    /// leave, the turn reads the user with a GET instead (and writes no
    /// undo line); a row compared with its own GET is sent.
    #[test]
    fn a_page_gone_old_while_the_row_waited_is_read_again_first() {
        use std::collections::BTreeMap;
        use std::time::Duration;
        let fresh = Duration::from_secs(5);
        let pages = LivePages::new(Vec::new(), &BTreeMap::new(), 10, Instant::now(), fresh);
        let operation = PatchAsPlanned {
            undo: None,
            pages: Some(Arc::new(pages)),
        };
        let mut job = Job::new(0, 2, 7, "7".to_string(), String::new());
        job.step = PATCH;
        job.before = Some(Box::new(User::default()));
        job.page_read_at = Some(Instant::now() - Duration::from_secs(6));
        assert!(matches!(operation.at_send(&mut job), Some(Step::Next)));
        assert_eq!(job.step, GET);
        assert_eq!(operation.call(&job).describe(), "GET /iam/users/7");
        // Compared again with the GET's answer: sent at its turn.
        job.step = PATCH;
        assert!(operation.at_send(&mut job).is_none());
        // A page still recent: sent.
        job.page_read_at = Some(Instant::now());
        assert!(operation.at_send(&mut job).is_none());
        assert_eq!(job.step, PATCH);
    }

    #[test]
    fn a_plan_applied_then_partly_undone_names_both_fields() {
        // Planned: company and groups. Applied; then someone put the
        // groups back. Now only the groups differ from the plan's values.
        let planned = [
            change(Field::Company, "\"A\"", "\"B\""),
            change(Field::Groups, "Administrators", "Users"),
        ];
        let now = [change(Field::Groups, "Administrators", "Users")];
        let text = drift(&planned, &now);
        assert_eq!(
            text,
            "company: already \"B\", the planned value (set by an earlier run of this plan, or \
             by someone else); groups: still Administrators, as the plan read it (to become Users)"
        );
        // A field changed by someone else is named as before, alone.
        let now = [
            change(Field::Company, "\"C\"", "\"B\""),
            change(Field::Groups, "Administrators", "Users"),
        ];
        assert_eq!(
            drift(&planned, &now),
            "company: \"A\" in the plan, \"C\" now"
        );
    }
}
