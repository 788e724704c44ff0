//! What an operation makes of the checked rows before anything is sent:
//! which rows it sends and which it decides at once, what a dry run says of
//! a row it would send, and how `--resume` knows a row it recorded. The
//! same in a dry run, which has no sender, as in a run that sends; each
//! operation implements [`Rows`] next to its requests (`src/operations/`),
//! and takes the defaults where they fit (the PATCH of a row's changes).

use super::resume::sent_part_of;
use super::{CheckedRow, Verdict};
use crate::table::results::{ResultRecord, Status};

/// See the module's documentation.
pub trait Rows: Send + Sync {
    /// A valid row decided without a request: `Some((status, why))` is
    /// written so; `None` makes it a job. By default a row that changes
    /// nothing (it only names its user) is `skipped`; an operation whose
    /// rows need no change (say, a re-sent invitation) sends them.
    fn decided(&self, row: &CheckedRow) -> Option<(Status, String)> {
        match &row.verdict {
            Verdict::Skip(reason) => Some((Status::SKIPPED, reason.to_string())),
            _ => None,
        }
    }

    /// The operation's own status words (`invited`), besides every run's:
    /// a results file with them is read back (`--resume`).
    fn statuses(&self) -> &'static [Status] {
        &[]
    }

    /// What a dry run says of a row it would send: by default its action's
    /// word (`would_update`, `would_invite`, `would_remove`).
    fn planned(&self, row: &CheckedRow) -> Status {
        match row.verdict {
            Verdict::Invite(_) => Status::WOULD_INVITE,
            Verdict::Remove => Status::WOULD_REMOVE,
            _ => Status::WOULD_UPDATE,
        }
    }

    /// Whether `recorded`, a row an earlier run changed, is `row` of the
    /// input now (its user already matched): `--resume` keeps it as
    /// recorded, and refuses to go on otherwise. By default the row sends
    /// the same request, or the part of it that run sent (`--skip-unchanged`
    /// sends only what differs).
    fn same_row(&self, recorded: &ResultRecord, row: &CheckedRow) -> bool {
        match &row.verdict {
            Verdict::Send(body) => {
                recorded.request == serde_json::to_string(body).expect("a body always serialises")
                    || sent_part_of(body, recorded)
            }
            Verdict::Invite(body) => {
                recorded.status == Status::INVITED
                    && recorded.request
                        == serde_json::to_string(body).expect("a body always serialises")
            }
            Verdict::Remove => recorded.status == Status::REMOVED,
            _ => false,
        }
    }

    /// The request a row would send, as the results file writes it (empty
    /// for a row without a body).
    fn request(&self, row: &CheckedRow) -> String {
        match &row.verdict {
            Verdict::Send(body) | Verdict::Invite(body) => {
                serde_json::to_string(body).expect("a body always serialises")
            }
            _ => String::new(),
        }
    }
}
