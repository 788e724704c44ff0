//! The results file's record: one row per input record, the same 25 columns
//! for every command. [`RecordWriter`] writes it; [`RecordReader`] reads it
//! back by column name (resume starts from it), and tells a last line cut
//! short by a crash from a whole one.

use crate::model::api::User;

mod plan;
mod reader;
mod writer;

pub use plan::*;
pub use reader::*;
pub(crate) use writer::*;

/// The columns of the results file, in order.
pub(crate) const COLUMNS: [&str; 25] = [
    "row",
    "user_id",
    "status",
    "http_status",
    "attempts",
    "error",
    "request",
    "changes",
    "id",
    "email",
    "name",
    "lang",
    "phone",
    "company",
    "reseller",
    "client",
    "deleted",
    "groups",
    "activated",
    "sso_auth",
    "two_fa",
    "auth_types",
    "user_type",
    "is_active",
    "client_and_roles",
];

/// The first of the user columns, from `id` to `client_and_roles`.
const FIRST_USER_COLUMN: usize = 8;

pub use super::status::Status;
pub(crate) use super::status::{Counts, Kind};

/// One row of the results file.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRecord {
    /// The row number a spreadsheet shows for the input record.
    pub row: u64,
    /// The `user_id` cell as written (trimmed).
    pub user_id: String,
    pub status: Status,
    /// The last HTTP status received; `None` when nothing was sent.
    pub http_status: Option<u16>,
    /// How many times a request was sent.
    pub attempts: u32,
    pub error: String,
    /// The JSON body sent, or that would be sent.
    pub request: String,
    /// What the row changes in the user's live state (the plan).
    pub changes: String,
    /// The user as the API answered.
    pub user: Option<Box<User>>,
}

impl ResultRecord {
    /// A row decided without a request.
    pub(crate) fn decided(
        row: u64,
        user_id: String,
        status: Status,
        error: String,
    ) -> ResultRecord {
        ResultRecord {
            row,
            user_id,
            status,
            http_status: None,
            attempts: 0,
            error,
            request: String::new(),
            changes: String::new(),
            user: None,
        }
    }
}

use super::into_io;

#[cfg(test)]
mod tests;
