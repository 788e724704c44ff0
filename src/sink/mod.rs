//! The sink: the one owner of what the user reads during and after a run:
//! the results file, the progress display and the summary. Every command
//! writes the same record, one row per input record, in input order; the
//! engine hands outcomes over unordered and [`write_in_order`] puts them
//! back in order.

mod changed;
mod chart;
mod kinds;
mod metrics;
mod problems;
mod progress;
mod report;
mod summary;
mod writer;

use std::path::Path;

pub(crate) use crate::engine::events::{Outcome, RateReport, Report};
pub(crate) use crate::engine::timeline::Timeline;
pub(crate) use metrics::{Figures, MetricsRun};
pub(crate) use problems::ProblemRows;
pub(crate) use progress::set_no_progress;
pub use progress::{Progress, ProgressMode};
pub(crate) use report::ReportContext;
pub use summary::*;
pub use writer::*;

use crate::table::input::is_read_only_column;

/// `1 page`, `2 pages`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The note about columns skipped by `--ignore-unknown-columns`.
pub(crate) fn note_ignored_columns(ignored: &[impl AsRef<str>]) {
    let (read_only, unknown): (Vec<&str>, Vec<&str>) = ignored
        .iter()
        .map(AsRef::as_ref)
        .partition(|name| is_read_only_column(name));
    if !unknown.is_empty() {
        // A sheet of thousands of columns makes a note of one line still.
        const SHOWN: usize = 12;
        let mut names = unknown[..unknown.len().min(SHOWN)].join(", ");
        if unknown.len() > SHOWN {
            names.push_str(&format!(" and {} more", unknown.len() - SHOWN));
        }
        crate::say!("note: ignoring the columns {names}");
    }
    if !read_only.is_empty() {
        let (columns, are) = match read_only.len() {
            1 => ("column", "is"),
            _ => ("columns", "are"),
        };
        crate::say!(
            "note: the {columns} {} {are} read-only (as export writes them); they are not sent",
            read_only.join(", ")
        );
    }
}

/// The note for an input with a header and no rows (not an error: an empty
/// batch is normal for a scheduled job).
pub(crate) fn note_no_rows(input: &Path) {
    crate::say!(
        "note: {} has a header but no rows: no row to send",
        input.display()
    );
}
#[cfg(test)]
mod tests {
    use super::kinds::{kind_of, merged};
    use super::*;
    use crate::table::results::{ResultRecord, Status};

    /// A group's message keeps what its rows' messages share: the example
    /// a message gives (it showed `[{"…": 2, "…": "…"}]`).
    #[test]
    fn a_groups_message_keeps_the_values_its_rows_share() {
        let one = r#"groups: must be a list such as [{"id": 2, "name": "Users"}], not "x""#;
        let two = r#"groups: must be a list such as [{"id": 2, "name": "Users"}], not "y""#;
        assert_eq!(
            merged(one, two).unwrap(),
            r#"groups: must be a list such as [{"id": 2, "name": "Users"}], not "…""#
        );
        let three = merged(&merged(one, two).unwrap(), one).unwrap();
        assert!(three.ends_with(r#"not "…""#), "{three}");
        assert_eq!(merged(one, "another message"), None);
        assert_eq!(merged(r#"cut "a"#, r#"cut "b"#).unwrap(), r#"cut "…"#);
    }

    #[test]
    fn problems_are_grouped_by_their_kind_not_their_values() {
        let cases = [
            (
                r#"lang: "xx" is not a language"#,
                r#"lang: "…" is not a language"#,
            ),
            (
                r#"email: "a\"b" is not an address"#,
                r#"email: "…" is not an address"#,
            ),
            ("HTTP 404 Not Found", "HTTP 404 Not Found"),
            (r#"cut "short"#, r#"cut "…"#),
        ];
        for (error, want) in cases {
            assert_eq!(kind_of(error), want, "{error}");
        }
        let mut summary = Summary::default();
        for (row, value) in (2..22).zip(["xx", "yy", "zz", "ww", "vv"].iter().cycle()) {
            summary.record(
                &ResultRecord {
                    row,
                    user_id: row.to_string(),
                    status: Status::INVALID,
                    http_status: None,
                    attempts: 0,
                    error: format!("lang: {value:?} is not a language"),
                    request: String::new(),
                    changes: String::new(),
                    user: None,
                },
                true,
            );
        }
        let quoted = summary.quoted();
        assert_eq!(quoted.len(), 1);
        assert_eq!(quoted[0].count, 20);
        assert_eq!(quoted[0].error, r#"lang: "…" is not a language"#);
    }
}
