//! The results file and the summary: the one owner of what the user reads
//! after a run. Every command writes the same columns, one row per input
//! record, in input order.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

use crate::api::User;
use crate::config::OutputTarget;
use crate::error::Fatal;

/// The columns of the results file, in order.
pub const COLUMNS: [&str; 25] = [
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

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Valid; a dry run would send `request`.
    WouldUpdate,
    /// Sent, and the API answered with the user's new state.
    Updated,
    /// The user already had these values (filled by the plan against live data).
    Unchanged,
    /// Valid, but there was nothing to do (`error` says why).
    Skipped,
    /// The row has problems (`error` lists them); nothing was sent.
    Invalid,
    /// Sent, and the API refused it or never answered (`error`, `http_status`).
    Failed,
    /// Valid, but not sent (another row was invalid, or the run stopped).
    NotAttempted,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::WouldUpdate,
        Status::Updated,
        Status::Unchanged,
        Status::Skipped,
        Status::Invalid,
        Status::Failed,
        Status::NotAttempted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::WouldUpdate => "would_update",
            Status::Updated => "updated",
            Status::Unchanged => "unchanged",
            Status::Skipped => "skipped",
            Status::Invalid => "invalid",
            Status::Failed => "failed",
            Status::NotAttempted => "not_attempted",
        }
    }

    /// Rows with these statuses make the run exit 1.
    pub fn is_problem(self) -> bool {
        matches!(
            self,
            Status::Invalid | Status::Failed | Status::NotAttempted
        )
    }

    fn index(self) -> usize {
        Status::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }
}

/// One row of the results file, borrowed from whoever produced it.
#[derive(Debug, Clone, Copy)]
pub struct ResultRow<'a> {
    pub row: u64,
    pub user_id: &'a str,
    pub status: Status,
    pub http_status: Option<u16>,
    pub attempts: u32,
    pub error: &'a str,
    pub request: &'a str,
    pub changes: &'a str,
    pub user: Option<&'a User>,
}

/// Counts per status and the first problems, for the summary.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    counts: [u64; Status::ALL.len()],
    first_problems: Vec<(u64, String)>,
}

impl Summary {
    /// How many problems the summary quotes.
    const QUOTED: usize = 5;

    pub fn count(&self, status: Status) -> u64 {
        self.counts[status.index()]
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn record(&mut self, row: &ResultRow) {
        self.counts[row.status.index()] += 1;
        if row.status.is_problem()
            && !row.error.is_empty()
            && self.first_problems.len() < Self::QUOTED
        {
            self.first_problems.push((row.row, row.error.to_string()));
        }
    }

    /// 0 when no row is invalid, failed or not attempted; 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        let problem = Status::ALL
            .iter()
            .any(|status| status.is_problem() && self.count(*status) > 0);
        u8::from(problem)
    }

    /// The lines printed on stderr at the end of a run.
    pub fn render(&self, results: &str) -> String {
        let mut text = String::new();
        let counts: Vec<String> = Status::ALL
            .iter()
            .filter(|status| self.count(**status) > 0)
            .map(|status| format!("{} {}", self.count(*status), status.as_str()))
            .collect();
        let rows = if self.total() == 1 { "row" } else { "rows" };
        let _ = write!(text, "{} {rows}", self.total());
        if !counts.is_empty() {
            let _ = write!(text, ": {}", counts.join(", "));
        }
        text.push('\n');
        let problems = Status::ALL
            .iter()
            .filter(|status| status.is_problem())
            .map(|status| self.count(*status))
            .sum::<u64>();
        if !self.first_problems.is_empty() {
            let heading = if problems as usize > self.first_problems.len() {
                format!("first {} problems:", self.first_problems.len())
            } else {
                "problems:".to_string()
            };
            let _ = writeln!(text, "{heading}");
            for (row, error) in &self.first_problems {
                let _ = writeln!(text, "  row {row}: {error}");
            }
        }
        let _ = writeln!(text, "results: {results}");
        text
    }
}

/// Writes the results file as rows come, and keeps the summary.
pub struct ResultsWriter {
    csv: csv::Writer<Box<dyn Write>>,
    path: PathBuf,
    summary: Summary,
}

impl ResultsWriter {
    pub fn create(target: &OutputTarget) -> Result<ResultsWriter, Fatal> {
        let path = target.display_path();
        let sink: Box<dyn Write> = match target {
            OutputTarget::Stdout => Box::new(io::stdout().lock()),
            OutputTarget::File(path) => {
                let file = File::create(path).map_err(|source| Fatal::Output {
                    path: path.clone(),
                    source,
                })?;
                Box::new(file)
            }
        };
        let mut writer = ResultsWriter {
            csv: csv::WriterBuilder::new()
                .buffer_capacity(1 << 16)
                .from_writer(sink),
            path,
            summary: Summary::default(),
        };
        writer.write_record(COLUMNS.iter().copied())?;
        Ok(writer)
    }

    pub fn path(&self) -> &PathBuf {
        &self.path
    }

    pub fn write(&mut self, row: &ResultRow) -> Result<(), Fatal> {
        self.summary.record(row);
        let (mut row_number, mut http_status, mut attempts) = (
            itoa::Buffer::new(),
            itoa::Buffer::new(),
            itoa::Buffer::new(),
        );
        let cells: [&str; 8] = [
            row_number.format(row.row),
            row.user_id,
            row.status.as_str(),
            row.http_status
                .map_or("", |status| http_status.format(status)),
            attempts.format(row.attempts),
            row.error,
            row.request,
            row.changes,
        ];
        let result = match row.user {
            Some(user) => {
                let user_cells = user_cells(user);
                let user_cells = user_cells.iter().map(String::as_str);
                self.csv
                    .write_record(cells.iter().copied().chain(user_cells))
            }
            None => self.csv.write_record(cells.iter().copied().chain([""; 17])),
        };
        result.map_err(|e| self.output_error(e))
    }

    /// Flushes the file and hands back the summary.
    pub fn finish(mut self) -> Result<Summary, Fatal> {
        let flushed = self.csv.flush();
        flushed.map_err(|source| Fatal::Output {
            path: self.path.clone(),
            source,
        })?;
        Ok(self.summary)
    }

    fn write_record<'a>(&mut self, cells: impl IntoIterator<Item = &'a str>) -> Result<(), Fatal> {
        let result = self.csv.write_record(cells);
        result.map_err(|e| self.output_error(e))
    }

    fn output_error(&self, error: csv::Error) -> Fatal {
        let source = match error.into_kind() {
            csv::ErrorKind::Io(io) => io,
            other => io::Error::other(format!("{other:?}")),
        };
        Fatal::Output {
            path: self.path.clone(),
            source,
        }
    }
}

/// The 17 user columns, from `id` to `client_and_roles`.
fn user_cells(user: &User) -> [String; 17] {
    fn text<T: ToString>(value: &Option<T>) -> String {
        value.as_ref().map(T::to_string).unwrap_or_default()
    }
    let groups = user.groups.as_ref().map(|groups| {
        groups
            .iter()
            .map(|group| group.name.as_str())
            .collect::<Vec<_>>()
            .join(";")
    });
    let client_and_roles = user
        .client_and_roles
        .as_ref()
        .map(|list| serde_json::to_string(list).unwrap_or_default());
    [
        text(&user.id),
        text(&user.email),
        text(&user.name),
        text(&user.lang),
        text(&user.phone),
        text(&user.company),
        text(&user.reseller),
        text(&user.client),
        text(&user.deleted),
        groups.unwrap_or_default(),
        text(&user.activated),
        text(&user.sso_auth),
        text(&user.two_fa),
        user.auth_types
            .as_ref()
            .map(|a| a.join(";"))
            .unwrap_or_default(),
        text(&user.user_type),
        text(&user.is_active),
        client_and_roles.unwrap_or_default(),
    ]
}
