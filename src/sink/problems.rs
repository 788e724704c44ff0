//! The rows with a problem, kept as the rows are written, for the table of
//! `--report`'s page: the summary keeps them, the page lists them.

use crate::table::results::{Counts, ResultRecord, Status};

/// A row of the page's table: a row that is invalid, failed or not attempted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProblemRow {
    pub(super) row: u64,
    pub(super) user_id: String,
    pub(super) status: &'static str,
    /// Empty when nothing was answered.
    pub(super) http_status: String,
    pub(super) attempts: u32,
    pub(super) error: String,
    pub(super) request: String,
}

/// The rows the page's table lists: the first [`ProblemRows::PER_STATUS`]
/// of each problem status (a page of a million rows opens in no browser;
/// and ten thousand invalid rows must not hide the three that failed), and
/// how many more there are.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ProblemRows {
    pub(super) rows: Vec<ProblemRow>,
    /// Rows listed, per status.
    listed: Counts,
    pub(super) left_out: u64,
}

impl ProblemRows {
    pub(crate) const PER_STATUS: u64 = 5_000;
    /// Longer errors and requests are cut (the results file has them whole).
    pub(super) const ERROR: usize = 400;
    const REQUEST: usize = 300;

    pub(crate) fn note(&mut self, record: &ResultRecord) {
        if !record.status.is_problem() {
            return;
        }
        let listed = self.listed.entry(record.status);
        if *listed >= Self::PER_STATUS {
            self.left_out += 1;
            return;
        }
        *listed += 1;
        self.rows.push(ProblemRow {
            row: record.row,
            user_id: visible(&cut(&record.user_id, 80)),
            status: record.status.as_str(),
            http_status: record.http_status.map_or(String::new(), |s| s.to_string()),
            attempts: record.attempts,
            error: visible(&cut(&record.error, Self::ERROR)),
            request: visible(&cut(&record.request, Self::REQUEST)),
        });
    }

    pub(super) fn listed(&self, status: Status) -> u64 {
        self.listed.get(status)
    }
}

/// `text`, cut to `max` characters with an ellipsis.
pub(super) fn cut(text: &str, max: usize) -> String {
    crate::visible::cut(text, max).into_owned()
}

/// The one escaping of text from a server or a file (see
/// [`crate::visible`]), owned for the page's fields.
pub(super) fn visible(text: &str) -> String {
    crate::visible::visible(text).into_owned()
}
