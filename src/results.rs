//! The results file, the progress display and the summary: the one owner of
//! what the user reads during and after a run. Every command writes the same
//! columns, one row per input record, in input order; `apply` hands outcomes
//! over unordered and [`write_in_order`] puts them back in order.

mod progress;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

pub use progress::{Progress, ProgressMode};

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
    /// Attempts beyond the first, over all rows.
    retries: u64,
    /// HTTP 429 answers seen.
    throttled: u64,
    /// Set by runs that send: how long sending took.
    elapsed: Option<Duration>,
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

    pub fn retries(&self) -> u64 {
        self.retries
    }

    pub fn throttled(&self) -> u64 {
        self.throttled
    }

    /// Rows sent (updated or failed) per second of the run, for runs that
    /// send. Rows decided without a request (skipped, invalid, not attempted)
    /// would flatter the figure, so they are left out.
    pub fn rows_per_second(&self) -> Option<f64> {
        let elapsed = self.elapsed?.as_secs_f64();
        let sent = self.count(Status::Updated) + self.count(Status::Failed);
        (elapsed > 0.0).then(|| sent as f64 / elapsed)
    }

    fn record(&mut self, row: &ResultRow) {
        self.counts[row.status.index()] += 1;
        self.retries += u64::from(row.attempts.saturating_sub(1));
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
        if let Some(elapsed) = self.elapsed {
            let _ = writeln!(
                text,
                "retries: {}, throttled (429): {}, elapsed: {:.1} s, {:.1} rows sent/s",
                self.retries,
                self.throttled,
                elapsed.as_secs_f64(),
                self.rows_per_second().unwrap_or(0.0)
            );
        }
        let _ = writeln!(text, "results: {results}");
        text
    }

    /// The same figures as [`Summary::render`], for `--summary-json`.
    pub fn to_json<'a>(&'a self, results: &'a str) -> impl Serialize + 'a {
        /// Every status, in the order of [`Status::ALL`].
        struct Counts<'a>(&'a Summary);
        impl Serialize for Counts<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = serializer.serialize_map(Some(Status::ALL.len()))?;
                for status in Status::ALL {
                    map.serialize_entry(status.as_str(), &self.0.count(status))?;
                }
                map.end()
            }
        }
        #[derive(Serialize)]
        struct Problem<'a> {
            row: u64,
            error: &'a str,
        }
        #[derive(Serialize)]
        struct Json<'a> {
            rows: u64,
            counts: Counts<'a>,
            retries: u64,
            throttled: u64,
            elapsed_seconds: Option<f64>,
            rows_per_second: Option<f64>,
            exit_code: u8,
            first_problems: Vec<Problem<'a>>,
            results: &'a str,
        }
        Json {
            rows: self.total(),
            counts: Counts(self),
            retries: self.retries,
            throttled: self.throttled,
            elapsed_seconds: self.elapsed.map(|e| e.as_secs_f64()),
            rows_per_second: self.rows_per_second(),
            exit_code: self.exit_code(),
            first_problems: self
                .first_problems
                .iter()
                .map(|(row, error)| Problem { row: *row, error })
                .collect(),
            results,
        }
    }

    /// Writes [`Summary::to_json`] to `path`.
    pub fn write_json(&self, path: &Path, results: &str) -> Result<(), Fatal> {
        let mut text =
            serde_json::to_string_pretty(&self.to_json(results)).expect("the summary serialises");
        text.push('\n');
        std::fs::write(path, text).map_err(|source| Fatal::SummaryJson {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Writes the results file as rows come, and keeps the summary.
pub struct ResultsWriter {
    csv: csv::Writer<Box<dyn Write + Send>>,
    path: PathBuf,
    summary: Summary,
}

impl ResultsWriter {
    pub fn create(target: &OutputTarget) -> Result<ResultsWriter, Fatal> {
        let path = target.display_path();
        let sink: Box<dyn Write + Send> = match target {
            OutputTarget::Stdout => Box::new(BufWriter::with_capacity(1 << 16, io::stdout())),
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
                let user_cells = user_cells.iter().map(|cell| cell.as_ref());
                self.csv
                    .write_record(cells.iter().copied().chain(user_cells))
            }
            None => self.csv.write_record(cells.iter().copied().chain([""; 17])),
        };
        result.map_err(|e| self.output_error(e))
    }

    /// Hands what is buffered to the operating system.
    pub fn flush(&mut self) -> Result<(), Fatal> {
        let flushed = self.csv.flush();
        flushed.map_err(|source| Fatal::Output {
            path: self.path.clone(),
            source,
        })
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

/// What happened to a row in a run that sends; owned, so it can cross to the
/// writer's thread.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// 0-based position among the input's records: the order of the file.
    pub seq: u64,
    pub row: u64,
    pub user_id: String,
    pub status: Status,
    pub http_status: Option<u16>,
    pub attempts: u32,
    /// How many of the attempts were answered 429.
    pub throttled: u32,
    pub error: String,
    pub request: String,
    pub user: Option<Box<User>>,
}

/// What the writer receives.
#[derive(Debug)]
pub enum Report {
    Row(Outcome),
    /// A line for the user (printed through the progress display).
    Note(String),
}

/// The note about columns skipped by `--ignore-unknown-columns`.
pub fn note_ignored_columns(ignored: &[impl AsRef<str>]) {
    if !ignored.is_empty() {
        let names: Vec<&str> = ignored.iter().map(AsRef::as_ref).collect();
        eprintln!("note: ignoring the columns {}", names.join(", "));
    }
}

/// The note for an input with a header and no rows (not an error: an empty
/// batch is normal for a scheduled job).
pub fn note_no_rows(input: &Path) {
    eprintln!(
        "note: {} has a header but no rows; nothing to do",
        input.display()
    );
}

/// How often the results file is flushed while `apply` runs.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How long the writer lets outcomes gather after writing a batch.
const GATHER: Duration = Duration::from_millis(1);

/// The writer's side of a run: takes outcomes in any order and writes them in
/// input order, holding those that finished early. The dispatcher admits a
/// row only when it is less than `window` rows ahead of `written`, so the
/// rows held here never exceed the window, whatever the size of the input.
/// Also drives the progress display and counts for the summary. Runs on its
/// own thread until every sender of `reports` is gone.
pub fn write_in_order(
    mut results: ResultsWriter,
    reports: mpsc::Receiver<Report>,
    written: watch::Sender<u64>,
    mut progress: Progress,
) -> Result<Summary, Fatal> {
    let started = Instant::now();
    let mut held: VecDeque<Option<Outcome>> = VecDeque::new();
    let mut next_seq: u64 = 0;
    let mut flushed = Instant::now();
    loop {
        // Rows reach the disk within about a second, so an interrupted or
        // killed run leaves a results file that is at most that far behind.
        if flushed.elapsed() >= FLUSH_EVERY {
            results.flush()?;
            flushed = Instant::now();
        }
        let mut report = match reports.recv_timeout(Progress::TICK) {
            Ok(report) => Some(report),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                progress.tick();
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let before = next_seq;
        // Everything that has arrived, then a short nap: the writer wakes
        // once per batch of outcomes rather than once per row.
        while let Some(current) = report.take() {
            match current {
                Report::Note(text) => progress.note(&text),
                Report::Row(outcome) => {
                    let Some(offset) = outcome.seq.checked_sub(next_seq) else {
                        debug_assert!(false, "row {} was reported twice", outcome.row);
                        continue;
                    };
                    let offset = usize::try_from(offset).expect("the window fits in memory");
                    if held.len() <= offset {
                        held.resize(offset + 1, None);
                    }
                    held[offset] = Some(outcome);
                    while let Some(Some(_)) = held.front() {
                        let outcome = held.pop_front().flatten().expect("the front is filled");
                        results.summary.throttled += u64::from(outcome.throttled);
                        results.write(&ResultRow {
                            row: outcome.row,
                            user_id: &outcome.user_id,
                            status: outcome.status,
                            http_status: outcome.http_status,
                            attempts: outcome.attempts,
                            error: &outcome.error,
                            request: &outcome.request,
                            changes: "",
                            user: outcome.user.as_deref(),
                        })?;
                        progress.row(outcome.status);
                        next_seq += 1;
                    }
                }
            }
            report = reports.try_recv().ok();
        }
        if next_seq != before {
            // The dispatcher may be gone already; that is fine.
            let _ = written.send(next_seq);
        }
        std::thread::sleep(GATHER);
    }
    debug_assert!(held.iter().all(Option::is_none), "outcomes left unwritten");
    results.summary.elapsed = Some(started.elapsed());
    progress.finish();
    results.finish()
}

/// The 17 user columns, from `id` to `client_and_roles`.
fn user_cells(user: &User) -> [Cow<'_, str>; 17] {
    fn text(value: &Option<String>) -> Cow<'_, str> {
        Cow::Borrowed(value.as_deref().unwrap_or_default())
    }
    fn flag(value: Option<bool>) -> Cow<'static, str> {
        Cow::Borrowed(match value {
            Some(true) => "true",
            Some(false) => "false",
            None => "",
        })
    }
    fn number<T: ToString>(value: &Option<T>) -> Cow<'static, str> {
        Cow::Owned(value.as_ref().map(T::to_string).unwrap_or_default())
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
        number(&user.id),
        text(&user.email),
        text(&user.name),
        text(&user.lang),
        text(&user.phone),
        text(&user.company),
        number(&user.reseller),
        number(&user.client),
        flag(user.deleted),
        Cow::Owned(groups.unwrap_or_default()),
        flag(user.activated),
        flag(user.sso_auth),
        flag(user.two_fa),
        Cow::Owned(
            user.auth_types
                .as_ref()
                .map(|a| a.join(";"))
                .unwrap_or_default(),
        ),
        text(&user.user_type),
        flag(user.is_active),
        Cow::Owned(client_and_roles.unwrap_or_default()),
    ]
}
