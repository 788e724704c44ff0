//! The sink: the one owner of what the user reads during and after a run:
//! the results file, the progress display and the summary. Every command
//! writes the same record, one row per input record, in input order; the
//! engine hands outcomes over unordered and [`write_in_order`] puts them
//! back in order.

mod progress;
mod report;
mod timeline;

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use tokio::sync::watch;

pub use progress::{Progress, ProgressMode, set_no_progress};
pub use report::{ProblemRows, ReportContext};
pub use timeline::{AnswerKind, Timeline};

use crate::error::Fatal;
use crate::exit::Exit;
use crate::model::change::FieldSet;
use crate::model::patch::Field;
use crate::settings::OutputTarget;
use crate::table::input::is_read_only_column;
use crate::table::record::{Journal, Replacement, open_private};
use crate::table::results::{RecordWriter, ResultRecord, Status};

/// Rows that share a status and an error, quoted once.
#[derive(Debug, Clone)]
struct Problem {
    status: Status,
    /// The first rows (up to [`Summary::QUOTED`]).
    rows: Vec<u64>,
    count: u64,
    /// The first row's message; the kind once rows with other values join.
    error: String,
    /// The message with its quoted values taken out ([`kind_of`]): rows
    /// are grouped by it, so one kind of problem is one line whatever the
    /// values.
    kind: String,
}

/// `lang: "xx" is not a language` -> `lang: "…" is not a language`: a
/// message without the values it quotes (as `{:?}` quotes them).
fn kind_of(error: &str) -> String {
    let mut kind = String::with_capacity(error.len());
    let mut chars = error.chars();
    while let Some(c) = chars.next() {
        kind.push(c);
        if c != '"' {
            continue;
        }
        // Up to the closing quote, skipping escaped ones.
        let mut closed = false;
        while let Some(inner) = chars.next() {
            match inner {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    closed = true;
                    break;
                }
                _ => {}
            }
        }
        kind.push('…');
        if closed {
            kind.push('"');
        }
    }
    kind
}

impl Problem {
    /// `row 7`, or `rows 7, 9, 12 and 4988 more`.
    fn rows_text(&self) -> String {
        if self.count == 1 {
            return format!("row {}", self.rows[0]);
        }
        let list: Vec<String> = self.rows.iter().map(u64::to_string).collect();
        let more = self.count - self.rows.len() as u64;
        if more > 0 {
            format!("rows {} and {more} more", list.join(", "))
        } else {
            format!("rows {}", list.join(", "))
        }
    }
}

/// Counts per status and the first problems, for the summary.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    counts: [u64; Status::ALL.len()],
    /// The first few problems of each kind; rows with the same error are one.
    first_problems: Vec<Problem>,
    /// Attempts that repeated an earlier one, over all rows.
    retries: u64,
    /// HTTP 429 answers seen.
    throttled: u64,
    /// Set by runs that send: how long sending took.
    elapsed: Option<Duration>,
    /// Rows that change (or would change) each field, in [`Field::ALL`]'s order.
    fields: [u64; Field::ALL.len()],
    /// The first few rows a plan would change, with their changes.
    examples: Vec<(u64, String)>,
    /// Rows that sent at least one request.
    sent: u64,
    /// Rows stopped because their change looks like a spreadsheet's damage.
    number_damage: u64,
    /// The rate the run ended at and the drops for 429s, when it adapted
    /// (a 429 came, or `--rate auto`).
    rate: Option<RateReport>,
    /// What the engine saw second by second (`--report`, runs that send).
    timeline: Option<Box<Timeline>>,
    /// The rows with a problem, for `--report`'s table (`None`: no report).
    problem_rows: Option<ProblemRows>,
}

/// The rate a run settled at (`None`: no limit) and how often a 429 made it
/// drop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateReport {
    pub rate: Option<f64>,
    pub drops: u64,
    pub auto: bool,
}

impl RateReport {
    /// `12.5 requests/s`, or `no limit`.
    fn rate_text(&self) -> String {
        self.rate.map_or("no limit".to_string(), |rate| {
            format!("{rate:.1} requests/s")
        })
    }

    /// Why the rate is what it is, when it adapted (`None`: it stayed as
    /// asked).
    fn why(&self) -> Option<String> {
        match (self.auto, self.drops) {
            (true, 0) => Some("--rate auto, no 429 met".to_string()),
            (false, 0) => None,
            (auto, drops) => Some(format!(
                "lowered {} for 429s{}",
                count(drops, "time", "times"),
                if auto { ", --rate auto" } else { "" }
            )),
        }
    }
}

impl Summary {
    /// How many problems the summary quotes.
    const QUOTED: usize = 5;
    /// How many rows a plan's summary shows as examples.
    const EXAMPLES: usize = 3;

    /// Counts the fields a row changes (or would change).
    fn changed(&mut self, outcome: &Outcome) {
        // A row that failed changed nothing it could vouch for.
        let counts = matches!(outcome.record.status, Status::Updated | Status::WouldUpdate);
        if outcome.changed.is_empty() || !counts {
            return;
        }
        for (count, field) in self.fields.iter_mut().zip(Field::ALL) {
            if outcome.changed.contains(field) {
                *count += 1;
            }
        }
        if outcome.record.status == Status::WouldUpdate && self.examples.len() < Self::EXAMPLES {
            self.examples
                .push((outcome.record.row, outcome.record.changes.clone()));
        }
    }

    /// `lang 5, groups 2`: how many rows change each field, or `None`.
    fn fields_text(&self) -> Option<String> {
        let parts: Vec<String> = Field::ALL
            .iter()
            .zip(self.fields)
            .filter(|(_, count)| *count > 0)
            .map(|(field, count)| format!("{} {count}", field.name()))
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }

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

    /// What the engine saw second by second, when `--report` asked for it.
    pub fn timeline(&self) -> Option<&Timeline> {
        self.timeline.as_deref()
    }

    /// Rows sent (at least one request) per second of the run, for runs
    /// that send. Rows decided without a request (skipped, invalid, not
    /// attempted) would flatter the figure, so they are left out.
    pub fn rows_per_second(&self) -> Option<f64> {
        let elapsed = self.elapsed?.as_secs_f64();
        (elapsed > 0.0).then(|| self.sent as f64 / elapsed)
    }

    fn record(&mut self, row: &ResultRecord) {
        if row.attempts > 0 {
            self.sent += 1;
        }
        if let Some(rows) = &mut self.problem_rows {
            rows.note(row);
        }
        if row.status == Status::Invalid && row.error.contains("--allow-number-changes") {
            self.number_damage += 1;
        }
        self.counts[row.status.index()] += 1;
        if row.status.is_problem() && !row.error.is_empty() {
            let kind = kind_of(&row.error);
            let same = self
                .first_problems
                .iter_mut()
                .find(|p| p.status == row.status && p.kind == kind);
            match same {
                Some(problem) => {
                    problem.count += 1;
                    if problem.error != row.error {
                        problem.error.clone_from(&problem.kind);
                    }
                    if problem.rows.len() < Self::QUOTED {
                        problem.rows.push(row.row);
                    }
                }
                None => {
                    let kept = self
                        .first_problems
                        .iter()
                        .filter(|p| p.status == row.status)
                        .count();
                    if kept < Self::QUOTED {
                        self.first_problems.push(Problem {
                            status: row.status,
                            rows: vec![row.row],
                            count: 1,
                            error: row.error.clone(),
                            kind,
                        });
                    }
                }
            }
        }
    }

    /// The problems the summary quotes: what needs fixing first. Invalid rows
    /// come before failed ones, and both before rows not attempted, which
    /// are only the consequence of the others (or of a stop).
    fn quoted(&self) -> Vec<&Problem> {
        let order = [Status::Invalid, Status::Failed, Status::NotAttempted];
        let mut quoted: Vec<&Problem> = self.first_problems.iter().collect();
        quoted.sort_by_key(|p| (order.iter().position(|s| *s == p.status), p.rows[0]));
        quoted.truncate(Self::QUOTED);
        quoted
    }

    /// Rows that are invalid, failed or not attempted.
    fn problems(&self) -> u64 {
        Status::ALL
            .iter()
            .filter(|status| status.is_problem())
            .map(|status| self.count(*status))
            .sum()
    }

    /// Whether some row is invalid, failed or not attempted.
    pub fn has_problems(&self) -> bool {
        self.problems() > 0
    }

    /// The lines printed on stderr at the end of a run; the first says
    /// which proxy the run went through, if one.
    pub fn render(&self, results: &str, proxy: Option<&str>) -> String {
        let mut text = String::new();
        if let Some(proxy) = proxy {
            let _ = writeln!(text, "through the proxy {proxy}");
        }
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
        if let Some(fields) = self.fields_text() {
            let verb = match self.count(Status::WouldUpdate) > 0 {
                true => "would change",
                false => "changed",
            };
            let _ = writeln!(text, "fields that {verb}: {fields}");
        }
        if self.number_damage > 0 {
            let rows = if self.number_damage == 1 {
                "row"
            } else {
                "rows"
            };
            let _ = writeln!(
                text,
                "{} {rows} stopped: the change looks like a spreadsheet's damage to a number (a \
                 phone's + or leading 0 lost); see their error, or pass --allow-number-changes \
                 (an export to .xlsx keeps numbers as text through a spreadsheet)",
                self.number_damage
            );
        }
        if !self.examples.is_empty() {
            let _ = writeln!(text, "for example:");
            for (row, changes) in &self.examples {
                let _ = writeln!(text, "  row {row}: {changes}");
            }
        }
        let problems = self.problems();
        let quoted = self.quoted();
        if !quoted.is_empty() {
            let covered: u64 = quoted.iter().map(|p| p.count).sum();
            let heading = if problems > covered {
                format!("first {} problems:", quoted.len())
            } else {
                "problems:".to_string()
            };
            let _ = writeln!(text, "{heading}");
            for problem in &quoted {
                let _ = writeln!(
                    text,
                    "  {}: {}",
                    problem.rows_text(),
                    crate::visible::visible(&problem.error)
                );
            }
        }
        if let Some(report) = self.rate
            && let Some(why) = report.why()
        {
            let _ = writeln!(text, "rate: ended at {} ({why})", report.rate_text());
        }
        if let Some(elapsed) = self.elapsed {
            let _ = write!(
                text,
                "retries: {}, throttled (429): {}, elapsed: {:.1} s",
                self.retries,
                self.throttled,
                elapsed.as_secs_f64(),
            );
            // A run whose rows sent nothing (a plan read from the list, a
            // closed port) has no rate to speak of.
            // Nor does a run of a moment (a few rows, a stop at once).
            let long_enough = elapsed >= Duration::from_millis(500);
            match self
                .rows_per_second()
                .filter(|_| self.sent > 0 && long_enough)
            {
                Some(rate) => {
                    let _ = writeln!(text, ", {rate:.1} rows sent/s");
                }
                None => text.push('\n'),
            }
        }
        let _ = writeln!(text, "results: {results}");
        text
    }

    /// The same figures as [`Summary::render`], for `--summary-json`, with
    /// the exit code the run ends with.
    pub fn to_json<'a>(
        &'a self,
        run: &'a RunInfo,
        results: &'a str,
        exit: Exit,
        proxy: Option<&'a str>,
    ) -> impl Serialize + 'a {
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
        struct Quoted<'a> {
            /// The first row with this error.
            row: u64,
            error: &'a str,
            /// Up to five rows with this error, and how many there are.
            rows: &'a [u64],
            count: u64,
        }
        #[derive(Serialize)]
        struct Json<'a> {
            #[serde(flatten)]
            run: &'a RunInfo,
            rows: u64,
            counts: Counts<'a>,
            retries: u64,
            throttled: u64,
            elapsed_seconds: Option<f64>,
            rows_per_second: Option<f64>,
            exit_code: u8,
            first_problems: Vec<Quoted<'a>>,
            results: &'a str,
            /// The proxy the run went through (password blanked), if one.
            proxy: Option<&'a str>,
            /// Rows that change (or would change) each field.
            fields: std::collections::BTreeMap<&'static str, u64>,
            /// The rate (requests/s) the run ended at, when it adapted;
            /// `null` also for no limit.
            rate_ended_at: Option<f64>,
            /// How many times a 429 lowered the rate.
            rate_drops: u64,
        }
        Json {
            run,
            rows: self.total(),
            counts: Counts(self),
            retries: self.retries,
            throttled: self.throttled,
            elapsed_seconds: self.elapsed.map(|e| e.as_secs_f64()),
            rows_per_second: self.rows_per_second(),
            exit_code: exit.code(),
            first_problems: self
                .quoted()
                .into_iter()
                .map(|p| Quoted {
                    row: p.rows[0],
                    error: &p.error,
                    rows: &p.rows,
                    count: p.count,
                })
                .collect(),
            results,
            proxy,
            rate_ended_at: self.rate.and_then(|r| r.rate),
            rate_drops: self.rate.map_or(0, |r| r.drops),
            fields: Field::ALL
                .iter()
                .zip(self.fields)
                .filter(|(_, count)| *count > 0)
                .map(|(field, count)| (field.name(), count))
                .collect(),
        }
    }

    /// Writes the run's page (`--report`) to `path`.
    pub fn write_report(&self, path: &Path, context: &ReportContext) -> Result<(), Fatal> {
        report::write(path, self, context)
    }

    /// Writes [`Summary::to_json`] to `path`.
    pub fn write_json(
        &self,
        path: &Path,
        run: &RunInfo,
        results: &str,
        exit: Exit,
        proxy: Option<&str>,
    ) -> Result<(), Fatal> {
        write_summary_json(path, &self.to_json(run, results, exit, proxy))
    }
}

/// What run a `--summary-json` describes: the first fields of every
/// command's JSON, so that monitoring can tell runs apart.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    /// This tool's version.
    pub version: &'static str,
    /// `validate`, `apply`, `plan` or `export`.
    pub command: &'static str,
    /// Nothing was sent (`validate`, `apply --dry-run`).
    pub dry_run: bool,
    /// The input as given (`-` for standard input); `null` for `export`.
    pub input: Option<String>,
    /// When the command started and when the summary was written, RFC 3339
    /// in UTC to the second.
    pub started_at: String,
    pub finished_at: String,
    /// The account a run talked to, as its first line said (`api.gcore.com,
    /// key from profile b`); `null` for a run that sent nothing.
    pub account: Option<String>,
}

impl RunInfo {
    /// A run of `command` that started at `started`, finished now.
    pub fn new(
        command: &'static str,
        dry_run: bool,
        input: Option<String>,
        started: SystemTime,
    ) -> RunInfo {
        RunInfo {
            version: env!("CARGO_PKG_VERSION"),
            command,
            dry_run,
            input,
            started_at: humantime::format_rfc3339_seconds(started).to_string(),
            finished_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            account: None,
        }
    }
}

/// Writes a summary as pretty JSON to `path` (`--summary-json`), readable by
/// its owner only, replacing what a regular file held.
pub fn write_summary_json(path: &Path, summary: &impl Serialize) -> Result<(), Fatal> {
    let mut text = serde_json::to_string_pretty(summary).expect("the summary serialises");
    text.push('\n');
    let written = open_private(path).and_then(|mut file| {
        if file.metadata()?.is_file() {
            file.set_len(0)?;
        }
        file.write_all(text.as_bytes())
    });
    written.map_err(|source| Fatal::SummaryJson {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes the results file as rows come, and keeps the summary.
pub struct ResultsWriter {
    records: RecordWriter<Box<dyn Write + Send>>,
    path: PathBuf,
    summary: Summary,
    /// Runs that send keep a journal of answered rows beside the file.
    journal: Option<Journal>,
    /// A resumed run writes a new file that replaces the old one at the end.
    replacement: Option<Replacement>,
    /// The locked results file (kept open: the lock lasts as long).
    locked: Option<File>,
}

/// What a run keeps on disk besides its results file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keeping {
    /// A dry run sends nothing: no journal.
    DryRun,
    /// A plan reads users and changes nothing: no journal, and a
    /// `planned_at` column (this HTTP date) that marks the file as a plan.
    Plan(String),
    /// A run that sends, from the start: a new journal.
    Fresh,
    /// A run that resumes an earlier one: its journal goes on, and its
    /// results file is replaced only once the new one is complete.
    Resume,
}

impl ResultsWriter {
    /// `raw`: cells as they are, formulas included (`--raw-output`).
    pub fn create(
        target: &OutputTarget,
        keeping: Keeping,
        raw: bool,
    ) -> Result<ResultsWriter, Fatal> {
        let path = target.display_path();
        let output_error = |source| Fatal::Output {
            path: path.clone(),
            source,
        };
        let (sink, journal, replacement, locked): (Box<dyn Write + Send>, _, _, _) = match target {
            OutputTarget::Stdout => (
                Box::new(BufWriter::with_capacity(1 << 16, io::stdout())),
                None,
                None,
                None,
            ),
            OutputTarget::File(file_path) => {
                let resume = keeping == Keeping::Resume;
                // A resumed run and a plan are written beside their place
                // and put there whole: a plan cut short by a crash never
                // passes for a whole one.
                let replace = resume || matches!(keeping, Keeping::Plan(_));
                let locked = open_locked(file_path, !replace)?;
                let journal = match keeping {
                    Keeping::DryRun | Keeping::Plan(_) => None,
                    Keeping::Fresh | Keeping::Resume => {
                        Some(Journal::open(file_path, resume).map_err(output_error)?)
                    }
                };
                if replace {
                    let replacement = Replacement::new(file_path).map_err(output_error)?;
                    let file = replacement.file().map_err(output_error)?;
                    (
                        Box::new(file) as Box<dyn Write + Send>,
                        journal,
                        Some(replacement),
                        Some(locked),
                    )
                } else {
                    let file = locked.try_clone().map_err(output_error)?;
                    (
                        Box::new(file) as Box<dyn Write + Send>,
                        journal,
                        None,
                        Some(locked),
                    )
                }
            }
        };
        let planned_at = match keeping {
            Keeping::Plan(at) => Some(at),
            _ => None,
        };
        let mut records = RecordWriter::with_plan(sink, planned_at).map_err(output_error)?;
        if raw {
            records = records.raw();
        }
        // The header at once: a run killed before its first row leaves a
        // valid, empty results file.
        records.flush().map_err(output_error)?;
        Ok(ResultsWriter {
            records,
            path,
            summary: Summary::default(),
            journal,
            replacement,
            locked,
        })
    }

    pub fn path(&self) -> &PathBuf {
        &self.path
    }

    /// With `--report` (`report`), keeps the rows with a problem for the
    /// page's table.
    pub fn for_report(mut self, report: bool) -> ResultsWriter {
        if report {
            self.summary.problem_rows = Some(ProblemRows::default());
        }
        self
    }

    /// Whether the results go to standard output (no file, no record).
    pub fn to_stdout(&self) -> bool {
        self.locked.is_none()
    }

    pub fn write(&mut self, record: &ResultRecord) -> Result<(), Fatal> {
        self.summary.record(record);
        let written = self.records.write(record);
        written.map_err(|source| self.output_error(source))
    }

    /// Hands what is buffered (the journal's too) to the operating system.
    pub fn flush(&mut self) -> Result<(), Fatal> {
        let mut flushed = self.records.flush();
        if let Some(journal) = &mut self.journal
            && flushed.is_ok()
        {
            flushed = journal.flush();
        }
        flushed.map_err(|source| self.output_error(source))
    }

    /// Flushes the file and hands back the summary. With every row written
    /// for good (on disk, and in place for a resumed run), the journal is
    /// no longer needed.
    pub fn finish(mut self) -> Result<Summary, Fatal> {
        self.flush()?;
        let output_error = |source| Fatal::Output {
            path: self.path.clone(),
            source,
        };
        if let Some(replacement) = self.replacement.take() {
            replacement.commit().map_err(output_error)?;
        } else if let (Some(file), Some(_)) = (&self.locked, &self.journal) {
            file.sync_all().map_err(output_error)?;
        }
        if let Some(journal) = self.journal.take() {
            journal.remove().map_err(output_error)?;
        }
        Ok(self.summary)
    }

    /// Notes a row's answer in the journal (a row waiting for its turn).
    fn journal(&mut self, record: &ResultRecord) -> Result<(), Fatal> {
        let Some(journal) = &mut self.journal else {
            return Ok(());
        };
        let written = journal.append(record);
        written.map_err(|source| self.output_error(source))
    }

    fn output_error(&self, source: io::Error) -> Fatal {
        Fatal::Output {
            path: self.path.clone(),
            source,
        }
    }
}

/// Opens the results file for one run: locked (an OS lock, released when
/// the process ends, however it ends), and emptied (`truncate`) only once
/// the lock is held, so that a second run on the same file changes nothing
/// of the first.
fn open_locked(path: &Path, truncate: bool) -> Result<File, Fatal> {
    let output_error = |source| Fatal::Output {
        path: path.to_path_buf(),
        source,
    };
    let file = open_private(path).map_err(output_error)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(Fatal::Usage(format!(
                "the results file {} is in use by another run of gcore-iam-bulk; wait for it to \
                 end, or choose another file with -o",
                path.display()
            )));
        }
        Err(std::fs::TryLockError::Error(source)) => return Err(output_error(source)),
    }
    // Only a regular file is emptied: /dev/null and the like cannot be.
    if truncate && file.metadata().map_err(output_error)?.is_file() {
        file.set_len(0).map_err(output_error)?;
    }
    Ok(file)
}

/// What happened to a row: its record, with where it goes in the file;
/// owned, so it can cross to the writer's thread.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// 0-based position among the input's records: the order of the file.
    pub seq: u64,
    /// How many of the attempts were answered 429.
    pub throttled: u32,
    /// How many of the attempts were retries.
    pub retries: u32,
    /// The fields the row changes (or would change), for the summary.
    pub changed: FieldSet,
    pub record: ResultRecord,
}

/// What the writer receives.
#[derive(Debug)]
pub enum Report {
    Row(Outcome),
    /// A line for the user (printed through the progress display).
    Note(String),
    /// `-v`: one attempt, printed even with `-q` (it was asked for).
    Attempt(String),
    /// The rate the engine ended at (sent once, at the end).
    Rate(RateReport),
    /// What the engine saw, second by second (sent once, at the end, with
    /// `--report`).
    Timeline(Box<Timeline>),
}

/// `1 page`, `2 pages`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The note about columns skipped by `--ignore-unknown-columns`.
pub fn note_ignored_columns(ignored: &[impl AsRef<str>]) {
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
pub fn note_no_rows(input: &Path) {
    crate::say!(
        "note: {} has a header but no rows; nothing to do",
        input.display()
    );
}

/// How often the results file is handed to the operating system while a
/// run that sends goes (with the journal, what a crash can lose); a dry run
/// flushes every second.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
const DRY_RUN_FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How long the writer lets outcomes gather after writing a batch.
const GATHER: Duration = Duration::from_millis(1);

/// Writes one row in its turn and counts it.
fn write_one(
    results: &mut ResultsWriter,
    progress: &mut Progress,
    outcome: &Outcome,
) -> Result<(), Fatal> {
    results.summary.throttled += u64::from(outcome.throttled);
    results.summary.retries += u64::from(outcome.retries);
    results.summary.changed(outcome);
    results.write(&outcome.record)?;
    progress.row(outcome.record.status);
    Ok(())
}

/// The writer's side of a run: takes outcomes in any order and writes them in
/// input order, holding those that finished early. The dispatcher admits a
/// row only when it is less than `window` rows ahead of `written`, so the
/// rows held here never exceed the window, whatever the size of the input.
/// Also drives the progress display and counts for the summary. Runs on its
/// own thread until every sender of `reports` is gone. `timed`: the summary
/// says how long it took (runs that send).
pub fn write_in_order(
    mut results: ResultsWriter,
    reports: mpsc::Receiver<Report>,
    written: watch::Sender<u64>,
    mut progress: Progress,
    timed: bool,
) -> Result<Summary, Fatal> {
    let started = Instant::now();
    // Rows answered before their turn, and whether the journal has them.
    let mut held: VecDeque<Option<(Outcome, bool)>> = VecDeque::new();
    let mut next_seq: u64 = 0;
    let mut flushed = Instant::now();
    loop {
        // Rows reach the operating system within a tenth of a second (a
        // second for a dry run): with the journal, all a crash can lose.
        let every = if results.journal.is_some() {
            FLUSH_EVERY
        } else {
            DRY_RUN_FLUSH_EVERY
        };
        if flushed.elapsed() >= every {
            // Rows still waiting for their turn go into the journal now, so
            // that the disk has every answer but those of the last interval.
            // (A row that gets its turn within the interval never needs it.)
            for (outcome, journaled) in held.iter_mut().flatten() {
                if !*journaled && outcome.record.attempts > 0 {
                    results.journal(&outcome.record)?;
                    *journaled = true;
                }
            }
            results.flush()?;
            flushed = Instant::now();
        }
        let mut report = match reports.recv_timeout(every.min(Progress::TICK)) {
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
            // Fetched first, so that `continue` below cannot skip it.
            report = reports.try_recv().ok();
            match current {
                Report::Note(text) => progress.note(&text),
                Report::Attempt(text) => progress.attempt(&text),
                Report::Rate(report) => results.summary.rate = Some(report),
                Report::Timeline(timeline) => results.summary.timeline = Some(timeline),
                Report::Row(outcome) => {
                    // A resumed run writes its results beside the old file
                    // until the end: every answer goes to the journal at once.
                    let journaled = results.replacement.is_some() && outcome.record.attempts > 0;
                    if journaled {
                        results.journal(&outcome.record)?;
                    }
                    let Some(offset) = outcome.seq.checked_sub(next_seq) else {
                        debug_assert!(false, "row {} was reported twice", outcome.record.row);
                        continue;
                    };
                    let offset = usize::try_from(offset).expect("the window fits in memory");
                    if offset == 0 && held.is_empty() {
                        // The next row in order, nothing held: the common case.
                        write_one(&mut results, &mut progress, &outcome)?;
                        next_seq += 1;
                        continue;
                    }
                    if held.len() <= offset {
                        held.resize(offset + 1, None);
                    }
                    held[offset] = Some((outcome, journaled));
                    while let Some(Some(_)) = held.front() {
                        let (outcome, _) = held.pop_front().flatten().expect("the front is filled");
                        write_one(&mut results, &mut progress, &outcome)?;
                        next_seq += 1;
                    }
                }
            }
        }
        if next_seq != before {
            // The dispatcher may be gone already; that is fine.
            let _ = written.send(next_seq);
        }
        std::thread::sleep(GATHER);
    }
    debug_assert!(held.iter().all(Option::is_none), "outcomes left unwritten");
    results.summary.elapsed = timed.then(|| started.elapsed());
    progress.finish();
    results.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

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
            summary.record(&ResultRecord {
                row,
                user_id: row.to_string(),
                status: Status::Invalid,
                http_status: None,
                attempts: 0,
                error: format!("lang: {value:?} is not a language"),
                request: String::new(),
                changes: String::new(),
                user: None,
            });
        }
        let quoted = summary.quoted();
        assert_eq!(quoted.len(), 1);
        assert_eq!(quoted[0].count, 20);
        assert_eq!(quoted[0].error, r#"lang: "…" is not a language"#);
    }
}
