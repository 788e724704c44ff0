//! The summary of a run: its figures as rows are written (counts, problems
//! grouped by kind, fields changed, the rate), printed at the end, and as
//! JSON for `--summary-json`.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::changed::ChangedUsers;
use super::kinds::{kind_of, merged};
use crate::error::Fatal;
use crate::exit::Exit;
use crate::model::patch::{Field, FieldSet};
use crate::table::record::open_private;
use crate::table::results::{Counts, Kind, ResultRecord, Status};

use super::problems::ProblemRows;
use super::{Outcome, RateReport, Timeline, count};

/// Rows that share a status and an error, quoted once.
#[derive(Debug, Clone)]
pub(super) struct Problem {
    pub(super) status: Status,
    /// The first rows (up to [`Summary::QUOTED`]).
    pub(super) rows: Vec<u64>,
    pub(super) count: u64,
    /// The first row's message; the kind once rows with other values join.
    pub(super) error: String,
    /// The message with its quoted values taken out ([`kind_of`]): rows
    /// are grouped by it, so one kind of problem is one line whatever the
    /// values.
    pub(super) kind: String,
}

impl Problem {
    /// `row 7`, or `rows 7, 9, 12 and 4988 more`.
    pub(super) fn rows_text(&self) -> String {
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
    pub(super) counts: Counts,
    /// The first few problems of each kind; rows with the same error are one.
    pub(super) first_problems: Vec<Problem>,
    /// Attempts that repeated an earlier one, over all rows.
    pub(super) retries: u64,
    /// HTTP 429 answers seen.
    pub(super) throttled: u64,
    /// Set by runs that send: how long sending took.
    pub(super) elapsed: Option<Duration>,
    /// How long reading the account's list took before the rows.
    pub(super) reading: Duration,
    /// Rows that change (or would change) each field, in [`Field::ALL`]'s order.
    pub(super) fields: [u64; Field::ALL.len()],
    /// Who changed (or would change), per field: a few for the terminal,
    /// more for `--report`.
    pub(super) changed_users: ChangedUsers,
    /// Rows that sent at least one request (in this run).
    pub(super) sent: u64,
    /// Requests that left this machine, over all rows (every attempt).
    pub(super) requests: u64,
    /// Rows stopped because their change looks like a spreadsheet's damage.
    pub(super) number_damage: u64,
    /// The rate the run ended at and its drops (429s, 5xx), when it adapted
    /// (a 429 came, or `--rate auto`).
    pub(super) rate: Option<RateReport>,
    /// What the engine saw second by second (`--report`, runs that send).
    pub(super) timeline: Option<Box<Timeline>>,
    /// The rows with a problem, for `--report`'s table (`None`: no report).
    pub(super) problem_rows: Option<ProblemRows>,
}

impl RateReport {
    /// `12.5 requests/s`, or `no limit`.
    pub(super) fn rate_text(&self) -> String {
        self.rate.map_or("no limit".to_string(), |rate| {
            format!("{rate:.1} requests/s")
        })
    }

    /// Why the rate is what it is, when it adapted (`None`: it stayed as
    /// asked).
    pub(super) fn why(&self) -> Option<String> {
        match (self.auto, self.drops) {
            (true, 0) => Some("--rate auto, never lowered".to_string()),
            (false, 0) => None,
            (auto, drops) => Some(format!(
                "lowered {} when throttled{}",
                count(drops, "time", "times"),
                if auto { ", --rate auto" } else { "" }
            )),
        }
    }
}

impl Summary {
    /// How many problems the summary quotes.
    const QUOTED: usize = 5;

    /// Counts the fields a row changes (or would change).
    pub(super) fn changed(&mut self, outcome: &Outcome) {
        // A row that failed changed nothing it could vouch for.
        // (One whose invitation went out before it failed changed who is
        // in the account: its user is listed all the same.)
        let status = outcome.landed.unwrap_or(outcome.record.status);
        let counts = matches!(status.kind(), Kind::Changed | Kind::Planned);
        if !counts {
            return;
        }
        if outcome.changes.is_empty() {
            // Invitations and removals change who is in the account.
            self.changed_users.note(outcome);
            return;
        }
        let changed = FieldSet::of(&outcome.changes);
        for (count, field) in self.fields.iter_mut().zip(Field::ALL) {
            if changed.contains(field) {
                *count += 1;
            }
        }
        self.changed_users.note(outcome);
    }

    /// `lang 5, groups 2`: how many rows change each field, or `None`.
    pub(super) fn fields_text(&self) -> Option<String> {
        let parts: Vec<String> = Field::ALL
            .iter()
            .zip(self.fields)
            .filter(|(_, count)| *count > 0)
            .map(|(field, count)| format!("{} {count}", field.name()))
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    pub fn count(&self, status: Status) -> u64 {
        self.counts.get(status)
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().map(|(_, count)| count).sum()
    }

    pub fn retries(&self) -> u64 {
        self.retries
    }

    /// Counts the requests of reads made before the rows (the account's
    /// list), which the rows' outcomes do not hold.
    pub(crate) fn add_reads(
        &mut self,
        requests: u64,
        retries: u64,
        throttled: u64,
        took: Duration,
    ) {
        self.requests += requests;
        self.retries += retries;
        self.throttled += throttled;
        self.reading += took;
    }

    pub fn throttled(&self) -> u64 {
        self.throttled
    }

    /// What the engine saw second by second, when `--report` asked for it.
    pub fn timeline(&self) -> Option<&Timeline> {
        self.timeline.as_deref()
    }

    /// The rate limit this run met (see [`RateReport::learned`]).
    pub(crate) fn learned_limit(&self) -> Option<f64> {
        self.rate.as_ref()?.learned(self.throttled)
    }

    /// Rows sent (at least one request) per second of the run, for runs
    /// that send. Rows decided without a request (skipped, invalid, not
    /// attempted) would flatter the figure, so they are left out.
    /// Rows this run sent a second: none over too short a time to say
    /// (under half a second: 6 rows in 0.01 s are no rate).
    pub(crate) fn rows_per_second(&self) -> Option<f64> {
        let elapsed = self.elapsed?.as_secs_f64();
        (elapsed >= 0.5).then(|| self.sent as f64 / elapsed)
    }

    /// Counts a row written. `own`: its requests are this run's (not a
    /// row kept as an earlier run recorded it, on `--resume`).
    pub(super) fn record(&mut self, row: &ResultRecord, own: bool) {
        if own {
            if row.attempts > 0 {
                self.sent += 1;
            }
            self.requests += u64::from(row.attempts);
        }
        if let Some(rows) = &mut self.problem_rows {
            rows.note(row);
        }
        if row.status == Status::INVALID && row.error.contains("--allow-number-changes") {
            self.number_damage += 1;
        }
        *self.counts.entry(row.status) += 1;
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
                        problem.error = merged(&problem.error, &row.error)
                            .unwrap_or_else(|| problem.kind.clone());
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
    pub(super) fn quoted(&self) -> Vec<&Problem> {
        let order = [Status::INVALID, Status::FAILED, Status::NOT_ATTEMPTED];
        let mut quoted: Vec<&Problem> = self.first_problems.iter().collect();
        quoted.sort_by_key(|p| (order.iter().position(|s| *s == p.status), p.rows[0]));
        quoted.truncate(Self::QUOTED);
        quoted
    }

    /// Rows a dry run or a plan would change.
    pub fn planned(&self) -> u64 {
        self.counts.of_kind(Kind::Planned)
    }

    /// Rows that are invalid, failed or not attempted.
    pub(super) fn problems(&self) -> u64 {
        self.counts
            .iter()
            .filter(|(status, _)| status.is_problem())
            .map(|(_, count)| count)
            .sum()
    }

    /// Whether some row is invalid, failed or not attempted.
    pub fn has_problems(&self) -> bool {
        self.problems() > 0
    }

    /// The lines printed on stderr at the end of a run; the first says
    /// which proxy the run went through, if one.
    pub(crate) fn render(&self, results: &str, proxy: Option<&str>) -> String {
        let mut text = String::new();
        if let Some(proxy) = proxy {
            let _ = writeln!(text, "through the proxy {proxy}");
        }
        let counts: Vec<String> = self
            .counts
            .iter()
            .filter(|(_, count)| *count > 0)
            .map(|(status, count)| format!("{count} {}", status.as_str()))
            .collect();
        let rows = if self.total() == 1 { "row" } else { "rows" };
        let _ = write!(text, "{} {rows}", self.total());
        if !counts.is_empty() {
            let _ = write!(text, ": {}", counts.join(", "));
        }
        text.push('\n');
        if let Some(fields) = self.fields_text() {
            let verb = match self.counts.of_kind(Kind::Planned) > 0 {
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
        let verb = match self.counts.of_kind(Kind::Planned) > 0 {
            true => "would change",
            false => "changed",
        };
        text.push_str(&self.changed_users.render(&self.fields, verb));
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
                (elapsed + self.reading).as_secs_f64(),
            );
            // The account's list read first: said apart, so the rate of
            // the rows is read against the time they took.
            if self.reading >= Duration::from_millis(100) {
                let _ = write!(
                    text,
                    " ({:.1} s reading the account's list)",
                    self.reading.as_secs_f64()
                );
            }
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
    pub(crate) fn to_json<'a>(
        &'a self,
        run: &'a RunInfo,
        results: &'a str,
        exit: Exit,
        proxy: Option<&'a str>,
    ) -> impl Serialize + 'a {
        /// Every status of every run, in the order of [`Status::ALL`],
        /// then the operation's own words counted.
        struct Counts<'a>(&'a Summary);
        impl Serialize for Counts<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = serializer.serialize_map(None)?;
                for (status, count) in self.0.counts.iter() {
                    map.serialize_entry(status.as_str(), &count)?;
                }
                map.end()
            }
        }
        #[derive(Serialize)]
        struct Members<'a> {
            count: u64,
            users: &'a [super::changed::ChangedUser],
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
            /// Who was invited and removed (or would be): how many, and the
            /// first of them (all with `--report`, up to 1,000).
            members: std::collections::BTreeMap<&'static str, Members<'a>>,
        }
        Json {
            run,
            rows: self.total(),
            counts: Counts(self),
            retries: self.retries,
            throttled: self.throttled,
            // As the summary says it: the reading of the account's list
            // before the rows included.
            elapsed_seconds: self.elapsed.map(|e| (e + self.reading).as_secs_f64()),
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
            members: (self.changed_users.members().into_iter())
                .map(|(name, count, users)| (name, Members { count, users }))
                .collect(),
            fields: Field::ALL
                .iter()
                .zip(self.fields)
                .filter(|(_, count)| *count > 0)
                .map(|(field, count)| (field.name(), count))
                .collect(),
        }
    }

    /// Writes [`Summary::to_json`] to `path`.
    pub(crate) fn write_json(
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
pub(crate) struct RunInfo {
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
    pub(crate) fn new(
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
pub(crate) fn write_summary_json(path: &Path, summary: &impl Serialize) -> Result<(), Fatal> {
    let mut text = serde_json::to_string_pretty(summary).expect("the summary serialises");
    text.push('\n');
    let written = open_private(path).and_then(|mut file| {
        if file.metadata()?.is_file() {
            file.set_len(0)?;
        }
        file.write_all(text.as_bytes())
    });
    written.map_err(|source| {
        // Not half a summary for a monitor to read (a full disk): none.
        if std::fs::metadata(path).is_ok_and(|meta| meta.is_file()) {
            let _ = std::fs::remove_file(path);
        }
        Fatal::SummaryJson {
            path: path.to_path_buf(),
            source,
        }
    })
}

#[cfg(test)]
#[path = "summary_tests.rs"]
mod reading_tests;
