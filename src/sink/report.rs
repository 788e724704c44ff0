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

use super::timeline::{Bucket, Timeline};
use super::{RunInfo, Summary, count};
use crate::error::Fatal;
use crate::exit::Exit;
use crate::settings::folder_of;
use crate::table::results::{ResultRecord, Status};

/// A row of the page's table: a row that is invalid, failed or not attempted.
#[derive(Debug, Clone, PartialEq)]
pub struct ProblemRow {
    row: u64,
    user_id: String,
    status: Status,
    http_status: Option<u16>,
    attempts: u32,
    error: String,
    request: String,
}

impl ProblemRow {
    pub fn row(&self) -> u64 {
        self.row
    }
    pub fn user_id(&self) -> &str {
        &self.user_id
    }
    pub fn status(&self) -> &'static str {
        self.status.as_str()
    }
    pub fn http_status(&self) -> String {
        self.http_status.map_or(String::new(), |s| s.to_string())
    }
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
    pub fn error(&self) -> &str {
        &self.error
    }
    pub fn request(&self) -> &str {
        &self.request
    }
}

/// The rows the page's table lists: the first [`ProblemRows::MAX`] problems
/// (a page of a million rows opens in no browser), and how many more there are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProblemRows {
    rows: Vec<ProblemRow>,
    left_out: u64,
}

impl ProblemRows {
    pub const MAX: usize = 10_000;
    /// Longer errors and requests are cut (the results file has them whole).
    const CELL: usize = 600;

    pub fn note(&mut self, record: &ResultRecord) {
        if !record.status.is_problem() {
            return;
        }
        if self.rows.len() >= Self::MAX {
            self.left_out += 1;
            return;
        }
        self.rows.push(ProblemRow {
            row: record.row,
            user_id: cut(&record.user_id, 80),
            status: record.status,
            http_status: record.http_status,
            attempts: record.attempts,
            error: cut(&record.error, Self::CELL),
            request: cut(&record.request, Self::CELL),
        });
    }
}

/// `text`, cut to `max` characters with an ellipsis.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
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
    /// The statuses with problem rows: the table's filters.
    filters: Vec<StatusCount>,
    rows: &'a [ProblemRow],
    /// How many problem rows the table lists, and a note when it is cut.
    listed: usize,
    rows_note: Option<String>,
}

/// The page for a finished run.
pub fn render(summary: &Summary, context: &ReportContext) -> String {
    let run = context.run;
    let input = run.input.as_deref().unwrap_or("-");
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
            value: input.to_string(),
        },
        Fact {
            name: "results file",
            value: context.results.to_string(),
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
        let value = match rate.rate {
            Some(per_second) => format!("{per_second:.1} requests/s"),
            None => "no limit".to_string(),
        };
        let why = match (rate.auto, rate.drops) {
            (true, 0) => " (--rate auto, no 429 met)".to_string(),
            (_, 0) => String::new(),
            (auto, drops) => format!(
                " (lowered {} for 429s{})",
                count(drops, "time", "times"),
                if auto { ", --rate auto" } else { "" }
            ),
        };
        facts.push(Fact {
            name: "rate at the end",
            value: format!("{value}{why}"),
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
            (Some(chart(timeline)), chart_notes(timeline))
        }
        Some(_) => (
            None,
            vec!["No request was answered during the run.".to_string()],
        ),
        None => (None, Vec::new()),
    };
    let groups = summary
        .quoted()
        .into_iter()
        .map(|problem| ErrorGroup {
            status: problem.status.as_str(),
            rows: problem.rows_text(),
            error: problem.error.clone(),
        })
        .collect();
    let empty = ProblemRows::default();
    let table = summary.problem_rows.as_ref().unwrap_or(&empty);
    let filters = Status::ALL
        .iter()
        .filter(|status| status.is_problem() && summary.count(**status) > 0)
        .map(|status| StatusCount {
            status: status.as_str(),
            count: table.rows.iter().filter(|r| r.status == *status).count() as u64,
        })
        .collect();
    let rows_note = (table.left_out > 0).then(|| {
        format!(
            "The first {} rows with a problem are listed; {} more are in the results file.",
            table.rows.len(),
            table.left_out
        )
    });
    Page {
        title,
        verdict,
        tone,
        facts,
        counts,
        chart,
        chart_notes,
        groups,
        filters,
        rows: &table.rows,
        listed: table.rows.len(),
        rows_note,
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
        source,
    };
    let mut file = tempfile::Builder::new()
        .prefix(".gcore-iam-bulk-report")
        .tempfile_in(folder_of(path))
        .map_err(report_error)?;
    file.write_all(page.as_bytes()).map_err(report_error)?;
    file.persist(path)
        .map_err(|persist| report_error(persist.error))?;
    Ok(())
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
    let problems: u64 = Status::ALL
        .iter()
        .filter(|status| status.is_problem())
        .map(|status| summary.count(*status))
        .sum();
    let total = summary.total();
    if let Some(why) = &context.stopped {
        let rows = count(total, "row", "rows");
        return ("stopped", format!("Stopped early: {why}. {rows} in all."));
    }
    let (subject, is, was) = match total {
        1 => ("The one row".to_string(), "is", "was"),
        _ => (format!("All {total} rows"), "are", "were"),
    };
    let would = summary.count(Status::WouldUpdate);
    let unchanged = summary.count(Status::Unchanged);
    let (them, are) = match problems {
        1 => ("it is", "is"),
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
            slowest.as_millis(),
            total.mean_took().unwrap_or_default().as_millis()
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

/// The series of the requests panel, bottom to top, with their colours
/// (the template's legend uses the same classes).
/// How many answers of one kind a bucket holds.
type Count = fn(&Bucket) -> u32;

const SERIES: [(&str, Count); 4] = [
    ("success", |b| b.success),
    ("error", |b| b.error),
    ("no-answer", |b| b.no_answer),
    ("throttled", |b| b.throttled),
];

/// The timeline as SVG: answers per second stacked by kind, the engine's
/// rate and its pauses above; the mean and slowest answer time below.
fn chart(timeline: &Timeline) -> String {
    let width = timeline.width() as f64;
    let buckets = timeline.buckets();
    // The chart ends with the last answer; the last bucket covers only the
    // part of it the run lasted (half of it at least: a bucket of one
    // answer in its first millisecond is no spike).
    let last = buckets.len().saturating_sub(1) as f64 * width;
    let last_covers = (timeline.span().as_secs_f64() - last).clamp(width / 2.0, width);
    let covers = |i: usize| match i + 1 == buckets.len() {
        true => last_covers,
        false => width,
    };
    let span = (last + last_covers).max(1.0);
    let x = |seconds: f64| LEFT + (RIGHT - LEFT) * seconds / span;
    let per_second = |n: u32, i: usize| f64::from(n) / covers(i);

    let highest = buckets
        .iter()
        .enumerate()
        .map(|(i, b)| per_second(b.answers(), i))
        .chain(buckets.iter().filter_map(|b| b.rate().flatten()))
        .fold(0.0, f64::max);
    let (top, step) = nice_axis(highest);
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
            let _ = write!(
                path,
                "{}{centre:.2} {:.2}",
                if drawing { "L" } else { "M" },
                ty(ms)
            );
            drawing = true;
        }
        if !path.is_empty() {
            let _ = write!(svg, r#"<path class="{class}" d="{path}"/>"#);
        }
    }
    time_axis(&mut svg, span, &x);
    svg.push_str("</svg>");
    svg
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
        let text = if step < 1.0 {
            format!("{value:.2}")
        } else {
            format!("{value:.0}")
        };
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
        assert_eq!(nice_axis(f64::NAN), (1.0, 0.25));
        let (top, step) = nice_axis(1234.0);
        assert!(top >= 1234.0 && top / step <= 6.0, "{top} {step}");
    }

    #[test]
    fn long_cells_are_cut_on_a_character() {
        assert_eq!(cut("ééé", 2), "éé…");
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(clock(3725.0), "1:02:05");
        assert_eq!(clock(65.0), "1:05");
    }
}
