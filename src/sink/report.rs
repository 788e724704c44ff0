//! `--report FILE.html`: the run on one page, for whoever asked for it. The
//! page is self-contained: its style is inline, its chart is inline SVG,
//! it runs no script, and its Content-Security-Policy forbids fetching
//! anything, so it opens the same from a mail attachment as from a disk.
//! Every text that comes from the input or the server is escaped by the
//! template (askama); the chart is built here from numbers alone.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use askama::Template;

use super::{RunInfo, Summary, count};
use crate::engine::timeline::{Bucket, Timeline};
use crate::error::Fatal;
use crate::exit::Exit;
use crate::settings::{REPORT_MARK, folder_of, plain_io_error};
use crate::table::results::{ResultRecord, Status};

/// A row of the page's table: a row that is invalid, failed or not attempted.
#[derive(Debug, Clone, PartialEq)]
pub struct ProblemRow {
    row: u64,
    user_id: String,
    status: &'static str,
    /// Empty when nothing was answered.
    http_status: String,
    attempts: u32,
    error: String,
    request: String,
}

/// The rows the page's table lists: the first [`ProblemRows::PER_STATUS`]
/// of each problem status (a page of a million rows opens in no browser;
/// and ten thousand invalid rows must not hide the three that failed), and
/// how many more there are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProblemRows {
    rows: Vec<ProblemRow>,
    /// Rows listed, per status (in [`Status::ALL`]'s order).
    listed: [u64; Status::ALL.len()],
    left_out: u64,
}

impl ProblemRows {
    pub const PER_STATUS: u64 = 5_000;
    /// Longer errors and requests are cut (the results file has them whole).
    const ERROR: usize = 400;
    const REQUEST: usize = 300;

    pub fn note(&mut self, record: &ResultRecord) {
        if !record.status.is_problem() {
            return;
        }
        let listed = &mut self.listed[record.status.index()];
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

    fn listed(&self, status: Status) -> u64 {
        self.listed[status.index()]
    }
}

/// `text`, cut to `max` characters with an ellipsis.
fn cut(text: &str, max: usize) -> String {
    crate::visible::cut(text, max).into_owned()
}

/// The one escaping of text from a server or a file (see
/// [`crate::visible`]), owned for the page's fields.
fn visible(text: &str) -> String {
    crate::visible::visible(text).into_owned()
}

/// What the page says besides the summary's figures.
pub struct ReportContext<'a> {
    pub run: &'a RunInfo,
    pub results: &'a str,
    pub exit: Exit,
    pub proxy: Option<&'a str>,
    /// Why the run stopped sending early, if it did.
    pub stopped: Option<String>,
}

/// One figure of the summary table.
struct Fact {
    name: &'static str,
    value: String,
}

/// A status and how many rows have it (the filters and the counts).
struct StatusCount {
    status: &'static str,
    count: u64,
}

/// Rows that share an error, as the summary quotes them.
struct ErrorGroup {
    status: &'static str,
    rows: String,
    error: String,
}

#[derive(Template)]
#[template(path = "report.html")]
struct Page<'a> {
    /// The generator tag that marks the page as this tool's.
    mark: &'static str,
    title: String,
    verdict: String,
    /// `ok`, `problems` or `stopped`: the verdict's colour.
    tone: &'static str,
    facts: Vec<Fact>,
    counts: Vec<StatusCount>,
    /// The timeline's SVG (numbers and fixed labels only), if requests were sent.
    chart: Option<String>,
    chart_notes: Vec<String>,
    groups: Vec<ErrorGroup>,
    /// Said under the groups when they are not every kind of error.
    groups_note: Option<String>,
    /// The statuses with problem rows: the table's filters.
    filters: Vec<Filter>,
    rows: &'a [ProblemRow],
    /// How many problem rows the table lists, and a note when it is cut.
    listed: usize,
    /// The label of the filter that shows every listed row.
    all_label: String,
    rows_note: Option<String>,
    /// What the section says when no row has a problem.
    none_text: &'static str,
}

/// A filter button: the status and its label (`failed (3)`, or
/// `failed (5000 of 12000)` when not every row is listed).
struct Filter {
    status: &'static str,
    label: String,
}

/// The page for a finished run.
pub fn render(summary: &Summary, context: &ReportContext) -> String {
    let run = context.run;
    let input = visible(run.input.as_deref().unwrap_or("-"));
    let title = format!("gcore-iam-bulk {}: {input}", run.command);
    let (tone, verdict) = verdict(summary, context);

    let mut facts = vec![
        Fact {
            name: "command",
            value: format!(
                "gcore-iam-bulk {}{}",
                run.command,
                if run.dry_run { " (dry run)" } else { "" }
            ),
        },
        Fact {
            name: "input",
            value: input.clone(),
        },
        Fact {
            name: "results file",
            value: visible(context.results),
        },
        Fact {
            name: "started",
            value: run.started_at.clone(),
        },
        Fact {
            name: "finished",
            value: run.finished_at.clone(),
        },
    ];
    if let Some(fields) = summary.fields_text() {
        let done = summary.count(Status::WouldUpdate) > 0;
        facts.push(Fact {
            name: if done {
                "fields that would change"
            } else {
                "fields changed"
            },
            value: format!("{fields} (rows)"),
        });
    }
    if let Some(elapsed) = summary.elapsed {
        facts.push(Fact {
            name: "sending took",
            value: format!("{:.1} s", elapsed.as_secs_f64()),
        });
    }
    if summary.sent > 0
        && let Some(rate) = summary.rows_per_second()
    {
        facts.push(Fact {
            name: "rows sent per second",
            value: format!("{rate:.1} (over the whole run)"),
        });
    }
    if let Some(rate) = summary.rate {
        let why = rate.why().map_or(String::new(), |why| format!(" ({why})"));
        facts.push(Fact {
            name: "rate at the end",
            value: format!("{}{why}", rate.rate_text()),
        });
    }
    if summary.elapsed.is_some() {
        facts.push(Fact {
            name: "retries",
            value: summary.retries.to_string(),
        });
        facts.push(Fact {
            name: "throttled (HTTP 429)",
            value: summary.throttled.to_string(),
        });
    }
    if let Some(account) = &context.run.account {
        facts.push(Fact {
            name: "account",
            value: account.clone(),
        });
    }
    if let Some(proxy) = context.proxy {
        facts.push(Fact {
            name: "proxy",
            value: proxy.to_string(),
        });
    }
    facts.push(Fact {
        name: "exit code",
        value: format!("{} ({})", context.exit.code(), exit_meaning(context.exit)),
    });
    facts.push(Fact {
        name: "version",
        value: run.version.to_string(),
    });

    let counts = Status::ALL
        .iter()
        .filter(|status| summary.count(**status) > 0)
        .map(|status| StatusCount {
            status: status.as_str(),
            count: summary.count(*status),
        })
        .collect();
    let (chart, chart_notes) = match &summary.timeline {
        Some(timeline) if timeline.total().answers() > 0 => {
            let (svg, mut notes) = chart(timeline);
            notes.extend(chart_notes(timeline));
            (Some(svg), notes)
        }
        Some(_) => (
            None,
            vec!["No request was answered during the run.".to_string()],
        ),
        None => (None, Vec::new()),
    };
    let quoted = summary.quoted();
    let covered: u64 = quoted.iter().map(|problem| problem.count).sum();
    let problems = summary.problems();
    let groups = quoted
        .into_iter()
        .map(|problem| ErrorGroup {
            status: problem.status.as_str(),
            rows: problem.rows_text(),
            error: visible(&cut(&problem.error, ProblemRows::ERROR)),
        })
        .collect::<Vec<_>>();
    let groups_note = (problems > covered).then(|| {
        format!(
            "The first {} kinds of error, for {covered} of the {problems} rows with a problem; \
             the table below lists the rows.",
            groups.len()
        )
    });
    let empty = ProblemRows::default();
    let table = summary.problem_rows.as_ref().unwrap_or(&empty);
    let label = |name: &str, listed: u64, all: u64| match listed == all {
        true => format!("{name} ({all})"),
        false => format!("{name} ({listed} of {all})"),
    };
    let filters = Status::ALL
        .iter()
        .filter(|status| status.is_problem() && summary.count(**status) > 0)
        .map(|status| Filter {
            status: status.as_str(),
            label: label(
                status.as_str(),
                table.listed(*status),
                summary.count(*status),
            ),
        })
        .collect();
    let all_label = label("all", table.rows.len() as u64, problems);
    let rows_note = (table.left_out > 0).then(|| {
        format!(
            "The first {} rows of each status are listed; {} more {} in the results file.",
            ProblemRows::PER_STATUS,
            table.left_out,
            if table.left_out == 1 { "is" } else { "are" }
        )
    });
    let none_text = if run.dry_run {
        "None: every row is valid."
    } else if summary.count(Status::WouldUpdate) + summary.count(Status::Unchanged) > 0 {
        "None: every row was read."
    } else {
        "None: every row went through."
    };
    Page {
        mark: REPORT_MARK,
        title,
        verdict,
        tone,
        facts,
        counts,
        chart,
        chart_notes,
        groups,
        groups_note,
        filters,
        rows: &table.rows,
        listed: table.rows.len(),
        all_label,
        rows_note,
        none_text,
    }
    .render()
    .expect("the report's template renders")
}

/// Writes the page to `path`, whole or not at all: it is written beside its
/// place and renamed there, readable by its owner only (it names users).
pub fn write(path: &Path, summary: &Summary, context: &ReportContext) -> Result<(), Fatal> {
    let page = render(summary, context);
    let report_error = |source| Fatal::Report {
        path: path.to_path_buf(),
        source: plain_io_error(source),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".gcore-iam-bulk-report")
        .tempfile_in(folder_of(path))
        .map_err(report_error)?;
    // On disk before it takes the old page's place: a power cut leaves the
    // old page or the new one, never an empty one.
    file.write_all(page.as_bytes())
        .and_then(|()| file.as_file().sync_all())
        .map_err(report_error)?;
    match file.persist(path) {
        Ok(_) => Ok(()),
        // A folder where only a file's owner may rename over it (the
        // sticky bit of /tmp) still lets a file writable by all be written.
        Err(persist) if persist.error.kind() == std::io::ErrorKind::PermissionDenied => {
            drop(persist.file);
            let mut old = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(path)
                .map_err(|_| report_error(persist.error))?;
            old.write_all(page.as_bytes())
                .and_then(|()| old.sync_all())
                .map_err(report_error)
        }
        Err(persist) => Err(report_error(persist.error)),
    }
}

/// What an exit code tells, as the README's table says it.
fn exit_meaning(exit: Exit) -> &'static str {
    match exit {
        Exit::Success => "no row has a problem",
        Exit::RowProblems => "some row needs a look",
        Exit::WouldChange => "some row would change",
        Exit::CannotStart => "nothing was sent",
        Exit::RecordLost => "the record could not be written",
        Exit::Interrupted | Exit::Aborted => "interrupted",
        Exit::Terminated => "terminated",
    }
}

/// The headline: how the run ended, in words.
fn verdict(summary: &Summary, context: &ReportContext) -> (&'static str, String) {
    let problems = summary.problems();
    let total = summary.total();
    if let Some(why) = &context.stopped {
        let rows = count(total, "row", "rows");
        return ("stopped", format!("Stopped early: {why}. {rows} in all."));
    }
    if total == 0 {
        return ("ok", "The input has no rows; nothing was sent.".to_string());
    }
    // Ten thousand invalid rows are not all listed: the first of each status are.
    let listed = summary
        .problem_rows
        .as_ref()
        .is_some_and(|rows| rows.left_out > 0);
    let (subject, is, was) = match total {
        1 => ("The one row".to_string(), "is", "was"),
        _ => (format!("All {total} rows"), "are", "were"),
    };
    let would = summary.count(Status::WouldUpdate);
    let unchanged = summary.count(Status::Unchanged);
    let (them, are) = match (problems, listed) {
        (_, true) => ("the first of each status are", "are"),
        (1, false) => ("it is", "is"),
        _ => ("they are", "are"),
    };
    let some = count(problems, "row", "rows");
    match problems {
        0 if context.run.dry_run => ("ok", format!("{subject} {is} valid; nothing was sent.")),
        0 if would > 0 || unchanged > 0 => (
            "ok",
            format!("{subject} {was} read: {would} would change, {unchanged} already as asked."),
        ),
        0 => ("ok", format!("{subject} went through.")),
        _ if context.run.dry_run => (
            "problems",
            format!("{some} of the {total} {are} invalid; {them} listed below."),
        ),
        _ => (
            "problems",
            format!("{some} of the {total} did not go through; {them} listed below."),
        ),
    }
}

/// What the chart's reader should know that the chart does not show.
fn chart_notes(timeline: &Timeline) -> Vec<String> {
    let mut notes = Vec::new();
    if timeline.width() > 1 {
        notes.push(format!(
            "Each bar covers {} seconds; its height is the mean per second.",
            timeline.width()
        ));
    }
    if timeline.pauses_left_out() > 0 {
        notes.push(format!(
            "The first {} pauses are shaded; {} more are not.",
            timeline.pauses().len(),
            timeline.pauses_left_out()
        ));
    }
    let total = timeline.total();
    if let Some(slowest) = total.max_took() {
        notes.push(format!(
            "The slowest answer took {} ms; the mean was {} ms.",
            ms_text(slowest),
            ms_text(total.mean_took().unwrap_or_default())
        ));
    }
    notes
}

// The chart's geometry, in SVG units.
const WIDTH: f64 = 960.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 944.0;
/// The requests panel.
const TOP: f64 = 24.0;
const BOTTOM: f64 = 224.0;
/// The answer-time panel.
const TIME_TOP: f64 = 284.0;
const TIME_BOTTOM: f64 = 404.0;
const HEIGHT: f64 = 440.0;

/// How many answers of one kind a bucket holds.
type Count = fn(&Bucket) -> u32;

/// The series of the requests panel, bottom to top, with their colours
/// (the template's legend uses the same classes).
const SERIES: [(&str, Count); 4] = [
    ("success", |b| b.success),
    ("error", |b| b.error),
    ("no-answer", |b| b.no_answer),
    ("throttled", |b| b.throttled),
];

/// The timeline as SVG: answers per second stacked by kind, the engine's
/// rate and its pauses above; the mean and slowest answer time below. With
/// it, what the reader should know of its scales.
fn chart(timeline: &Timeline) -> (String, Vec<String>) {
    let mut notes = Vec::new();
    let width = timeline.width() as f64;
    let buckets = timeline.buckets();
    // The chart ends where the sending ended. The bucket it ends in
    // covers only the part the run lasted (half of it at least: a bucket
    // of one answer in its first millisecond is no spike).
    let end = timeline.span().as_secs_f64();
    let covers = |i: usize| (end - i as f64 * width).clamp(width / 2.0, width);
    let last = buckets.len().saturating_sub(1);
    let span = end.max(last as f64 * width + covers(last)).max(1.0);
    let x = |seconds: f64| LEFT + (RIGHT - LEFT) * seconds / span;
    let per_second = |n: u32, i: usize| f64::from(n) / covers(i);

    // The scale follows the answers; the rate joins it unless it is far
    // above them (--rate 100000 would flatten every bar).
    let answers_high = buckets
        .iter()
        .enumerate()
        .map(|(i, b)| per_second(b.answers(), i))
        .fold(0.0, f64::max);
    let rate_high = buckets
        .iter()
        .filter_map(|b| b.rate().flatten())
        .fold(0.0, f64::max);
    let highest = match rate_high <= 2.0 * answers_high {
        true => answers_high.max(rate_high),
        false => answers_high,
    };
    let (top, step) = nice_axis(highest);
    if rate_high > top * 1.05 {
        notes.push(format!(
            "The tool's rate went up to {rate_high:.1} requests/s, above the scale; where it \
             was, its line runs along the top edge."
        ));
    }
    let y = |value: f64| BOTTOM - (BOTTOM - TOP) * (value / top).min(1.05);

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title"><title id="chart-title">Requests answered per second, and answer times, over the run</title>"#
    );
    // Pauses first, behind everything.
    for (start, length) in timeline.pauses() {
        let (from, to) = (x(start.as_secs_f64()), x((*start + *length).as_secs_f64()));
        let _ = write!(
            svg,
            r#"<rect class="pause" x="{from:.1}" y="{TOP}" width="{:.2}" height="{}"/>"#,
            (to.min(RIGHT) - from).max(0.5),
            BOTTOM - TOP
        );
    }
    axis(&mut svg, (TOP, BOTTOM), top, step, "requests/s", &y);
    // Stacked bars, one path per kind.
    let bar = |i: usize| (x(covers(i)) - x(0.0)).max(0.3);
    let mut base: Vec<f64> = vec![0.0; buckets.len()];
    for (class, value) in SERIES {
        let mut path = String::new();
        for (i, bucket) in buckets.iter().enumerate() {
            let n = value(bucket);
            if n == 0 {
                continue;
            }
            let (low, high) = (base[i], base[i] + per_second(n, i));
            base[i] = high;
            let _ = write!(
                path,
                "M{:.2} {:.2}V{:.2}h{:.2}V{:.2}Z",
                x(i as f64 * width),
                y(low),
                y(high),
                bar(i),
                y(low)
            );
        }
        if !path.is_empty() {
            let _ = write!(svg, r#"<path class="{class}" d="{path}"/>"#);
        }
    }
    // The rate, as a step line; carried over buckets with no answer.
    let mut rate_path = String::new();
    let mut last: Option<f64> = None;
    for (i, bucket) in buckets.iter().enumerate() {
        let rate = match bucket.rate() {
            Some(rate) => rate,
            None => last,
        };
        let (left, right) = (x(i as f64 * width), x(i as f64 * width + covers(i)));
        match (rate, last) {
            (Some(rate), Some(_)) => {
                let _ = write!(rate_path, "V{:.2}H{right:.2}", y(rate));
            }
            (Some(rate), None) => {
                let _ = write!(rate_path, "M{left:.2} {:.2}H{right:.2}", y(rate));
            }
            (None, _) => {}
        }
        last = rate;
    }
    if last.is_some() {
        // Carried to the end of the sending.
        let _ = write!(rate_path, "H{:.2}", x(span));
    }
    if !rate_path.is_empty() {
        let _ = write!(svg, r#"<path class="rate" d="{rate_path}"/>"#);
    }

    // Answer times: the scale fits the means and most of the slowest
    // answers; an outlier is drawn at the top edge.
    let mut slowest: Vec<f64> = buckets
        .iter()
        .filter_map(|b| b.max_took())
        .map(millis)
        .collect();
    slowest.sort_by(f64::total_cmp);
    let typical = slowest
        .get(slowest.len().saturating_sub(1) * 95 / 100)
        .copied()
        .unwrap_or(0.0);
    let mean_high = buckets
        .iter()
        .filter_map(|b| b.mean_took())
        .map(millis)
        .fold(0.0, f64::max);
    let (time_top, time_step) = nice_axis(typical.max(mean_high));
    if slowest.last().is_some_and(|ms| *ms > time_top) {
        notes.push(format!(
            "Answers slower than {} ms are drawn at the top edge of the answer times.",
            tick(time_top, time_step)
        ));
    }
    let ty = |ms: f64| TIME_BOTTOM - (TIME_BOTTOM - TIME_TOP) * (ms / time_top).min(1.0);
    axis(
        &mut svg,
        (TIME_TOP, TIME_BOTTOM),
        time_top,
        time_step,
        "answer time, ms",
        &ty,
    );
    for (class, took) in [
        (
            "slowest",
            Bucket::max_took as fn(&Bucket) -> Option<Duration>,
        ),
        ("mean", Bucket::mean_took),
    ] {
        let mut path = String::new();
        let mut drawing = false;
        for (i, bucket) in buckets.iter().enumerate() {
            let Some(ms) = took(bucket).map(millis) else {
                drawing = false;
                continue;
            };
            let centre = x(i as f64 * width + covers(i) / 2.0);
            // A point alone (no answer on either side) is a dot: a line of
            // no length, drawn with round ends.
            let _ = write!(
                path,
                "{}{centre:.2} {:.2}{}",
                if drawing { "L" } else { "M" },
                ty(ms),
                if drawing { "" } else { "h0.01" }
            );
            drawing = true;
        }
        if !path.is_empty() {
            let _ = write!(svg, r#"<path class="{class}" d="{path}"/>"#);
        }
    }
    time_axis(&mut svg, span, &x);
    svg.push_str("</svg>");
    (svg, notes)
}

/// A tick's label: `10`, `2.5`, `0.25`.
fn tick(value: f64, step: f64) -> String {
    let decimals = (0..3)
        .find(|d| {
            let scale = 10f64.powi(*d);
            ((step * scale).round() - step * scale).abs() < 1e-9
        })
        .unwrap_or(3) as usize;
    format!("{value:.decimals$}")
}

/// `1234`, or `3.8` under ten milliseconds (as the chart shows them).
fn ms_text(duration: Duration) -> String {
    let ms = millis(duration);
    match ms < 10.0 {
        true => format!("{ms:.1}"),
        false => format!("{ms:.0}"),
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A round top for an axis from 0 to above `highest`, and its tick step.
fn nice_axis(highest: f64) -> (f64, f64) {
    if !highest.is_finite() || highest <= 0.0 {
        return (1.0, 0.25);
    }
    let rough = highest / 4.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= rough)
        .unwrap_or(10.0 * magnitude);
    ((highest / step).ceil().max(1.0) * step, step)
}

/// The horizontal grid lines and labels of a panel.
fn axis(
    svg: &mut String,
    (top, bottom): (f64, f64),
    max: f64,
    step: f64,
    label: &str,
    y: &dyn Fn(f64) -> f64,
) {
    let mut value = 0.0;
    while value <= max + step / 2.0 {
        let at = y(value);
        let text = tick(value, step);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" x2="{RIGHT}" y1="{at:.1}" y2="{at:.1}"/><text class="tick" x="{}" y="{:.1}" text-anchor="end">{text}</text>"#,
            LEFT - 6.0,
            at + 4.0
        );
        value += step;
    }
    let _ = write!(
        svg,
        r#"<text class="label" x="{LEFT}" y="{:.1}">{label}</text>"#,
        top - 8.0
    );
    let _ = write!(
        svg,
        r#"<line class="axis" x1="{LEFT}" x2="{RIGHT}" y1="{bottom}" y2="{bottom}"/>"#
    );
}

/// The time axis under both panels: round ticks, labelled in seconds or as
/// a clock for long runs.
fn time_axis(svg: &mut String, span: f64, x: &dyn Fn(f64) -> f64) {
    const STEPS: [f64; 16] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
        21600.0, 43200.0,
    ];
    let step = STEPS
        .iter()
        .copied()
        .find(|step| span / step <= 10.0)
        .unwrap_or(86400.0);
    let mut at = 0.0;
    while at <= span + 1e-9 {
        let px = x(at);
        let label = if span < 120.0 {
            format!("{at:.0} s")
        } else {
            clock(at)
        };
        for (from, to) in [(BOTTOM, BOTTOM + 5.0), (TIME_BOTTOM, TIME_BOTTOM + 5.0)] {
            let _ = write!(
                svg,
                r#"<line class="axis" x1="{px:.1}" x2="{px:.1}" y1="{from}" y2="{to}"/>"#
            );
        }
        for base in [BOTTOM, TIME_BOTTOM] {
            let _ = write!(
                svg,
                r#"<text class="tick" x="{px:.1}" y="{}" text-anchor="middle">{label}</text>"#,
                base + 18.0
            );
        }
        at += step;
    }
}

/// `1:05` or `2:03:05`.
fn clock(seconds: f64) -> String {
    let total = seconds.round() as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers_above_the_highest_value() {
        assert_eq!(nice_axis(97.0), (100.0, 25.0));
        assert_eq!(nice_axis(10.0), (10.0, 2.5));
        assert_eq!(nice_axis(3.2), (4.0, 1.0));
        assert_eq!(nice_axis(0.0), (1.0, 0.25));
        assert_eq!(tick(7.5, 2.5), "7.5");
        assert_eq!(tick(10.0, 2.5), "10.0");
        assert_eq!(tick(100.0, 25.0), "100");
        assert_eq!(tick(0.5, 0.25), "0.50");
        assert_eq!(nice_axis(f64::NAN), (1.0, 0.25));
        let (top, step) = nice_axis(1234.0);
        assert!(top >= 1234.0 && top / step <= 6.0, "{top} {step}");
    }

    fn record(row: u64, status: Status, error: &str) -> ResultRecord {
        ResultRecord {
            row,
            user_id: row.to_string(),
            status,
            http_status: None,
            attempts: 0,
            error: error.to_string(),
            request: String::new(),
            changes: String::new(),
            user: None,
        }
    }

    #[test]
    fn many_rows_of_one_status_do_not_hide_another() {
        let mut rows = ProblemRows::default();
        let per = ProblemRows::PER_STATUS;
        for row in 0..per + 1000 {
            rows.note(&record(row, Status::Invalid, "lang"));
        }
        for row in 0..3 {
            rows.note(&record(row, Status::Failed, "HTTP 400"));
        }
        rows.note(&record(9, Status::Updated, ""));
        assert_eq!(rows.listed(Status::Invalid), per);
        assert_eq!(rows.listed(Status::Failed), 3);
        assert_eq!(rows.left_out, 1000);
        assert_eq!(rows.rows.len() as u64, per + 3);
    }

    #[test]
    fn control_characters_are_shown_not_sent_to_the_page() {
        assert_eq!(visible("a\u{1b}[31mb\0c"), "a\\u{1b}[31mb\\u{0}c");
        assert_eq!(visible("two\nlines\tand a tab"), "two lines and a tab");
        assert_eq!(visible("plain é"), "plain é");
        assert_eq!(visible("4\u{202e}21"), "4\\u{202e}21");
    }

    #[test]
    fn a_single_answer_is_a_dot_and_the_wait_after_it_is_on_the_chart() {
        use crate::engine::timeline::AnswerKind;
        let start = std::time::Instant::now();
        let mut timeline = Timeline::new(start);
        let at = start + Duration::from_millis(300);
        timeline.answered(
            at,
            Duration::from_millis(20),
            AnswerKind::Success,
            Some(10.0),
        );
        timeline.ended(start + Duration::from_secs(60));
        let (svg, _) = chart(&timeline);
        assert!(svg.contains(r#"<path class="mean" d="M"#), "{svg}");
        assert!(svg.contains("h0.01"), "{svg}");
        // The time axis reaches a minute.
        assert!(svg.contains(">60 s</text>"), "{svg}");
    }

    #[test]
    fn a_rate_far_above_the_answers_does_not_flatten_them() {
        use crate::engine::timeline::AnswerKind;
        let start = std::time::Instant::now();
        let mut timeline = Timeline::new(start);
        for i in 0..80 {
            let at = start + Duration::from_millis(10 * i);
            timeline.answered(
                at,
                Duration::from_millis(5),
                AnswerKind::Success,
                Some(100000.0),
            );
        }
        timeline.ended(start + Duration::from_secs(1));
        let (svg, notes) = chart(&timeline);
        assert!(
            svg.contains(">80</text>"),
            "the scale follows the answers: {svg}"
        );
        assert!(!svg.contains(">100000"), "{svg}");
        assert!(
            notes[0].contains("100000.0 requests/s, above the scale"),
            "{notes:?}"
        );
    }

    #[test]
    fn long_cells_are_cut_on_a_character() {
        assert_eq!(cut("ééé", 2), "éé…");
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(clock(3725.0), "1:02:05");
        assert_eq!(clock(65.0), "1:05");
    }
}
