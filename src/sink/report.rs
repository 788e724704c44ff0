//! `--report FILE.html`: the run on one page, for whoever asked for it. The
//! page is self-contained: its style is inline, its chart is inline SVG,
//! it runs no script, and its Content-Security-Policy forbids fetching
//! anything, so it opens the same from a mail attachment as from a disk.
//! Every text that comes from the input or the server is escaped by the
//! template (askama); the chart is built here from numbers alone.

use std::io::Write as _;
use std::path::Path;

use askama::Template;

use super::{RunInfo, Summary, count};
use crate::error::Fatal;
use crate::exit::Exit;
use crate::files::{REPORT_MARK, folder_of, plain_io_error};
use crate::table::results::Status;

use super::changed::{ChangedUser, ChangedUsers};
use super::chart::{chart, chart_notes};
use super::problems::{ProblemRow, ProblemRows, cut, visible};

/// What the page says besides the summary's figures.
pub(crate) struct ReportContext<'a> {
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
    /// Who changed: the fields, rarest first, each with its users.
    changed_fields: Vec<ChangedField<'a>>,
    changes_heading: &'static str,
    changes_note: String,
    /// Said instead when rows changed but were not compared with their users.
    changes_unknown: Option<&'static str>,
}

/// A field of "Who changed": its name (a column's, safe in an ID), its
/// filter's label and the users listed.
struct ChangedField<'a> {
    name: &'static str,
    label: String,
    users: &'a [ChangedUser],
}

/// A filter button: the status and its label (`failed (3)`, or
/// `failed (5000 of 12000)` when not every row is listed).
struct Filter {
    status: &'static str,
    label: String,
}

/// The page for a finished run.
pub(crate) fn render(summary: &Summary, context: &ReportContext) -> String {
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
        let done = summary.count(Status::WOULD_UPDATE) > 0;
        facts.push(Fact {
            name: if done {
                "fields that would change"
            } else {
                "fields changed"
            },
            value: format!("{fields} (rows)"),
        });
    }
    if let Some(elapsed) = summary.elapsed.filter(|_| summary.sent > 0) {
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

    let counts = summary
        .counts
        .iter()
        .filter(|(_, count)| *count > 0)
        .map(|(status, count)| StatusCount {
            status: status.as_str(),
            count,
        })
        .collect();
    let (chart, chart_notes) = match &summary.timeline {
        Some(timeline) if timeline.total().answers() > 0 => {
            let (svg, mut notes) = chart(timeline);
            notes.extend(chart_notes(timeline));
            (Some(svg), notes)
        }
        // Every row decided without a request of its own: a plan that
        // compared them all with the account's list, read before.
        Some(_) if summary.sent == 0 => (
            None,
            vec![
                "No request was sent for the rows: each was decided without one (a plan \
                 compares them with the account's list, read before)."
                    .to_string(),
            ],
        ),
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
    let filters = summary
        .counts
        .iter()
        .filter(|(status, count)| status.is_problem() && *count > 0)
        .map(|(status, _)| Filter {
            status: status.as_str(),
            label: label(status.as_str(), table.listed(status), summary.count(status)),
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
    } else if summary.count(Status::WOULD_UPDATE) + summary.count(Status::UNCHANGED) > 0 {
        "None: every row was read."
    } else {
        "None: every row went through."
    };
    let planned = summary.planned() > 0;
    let changed_fields: Vec<ChangedField> = summary
        .changed_users
        .rarest_first(&summary.fields)
        .into_iter()
        .map(|(field, count, users)| ChangedField {
            name: field,
            label: label(field, users.len() as u64, count),
            users,
        })
        .collect();
    let cut_fields: Vec<&str> = changed_fields
        .iter()
        .filter(|field| field.label.contains(" of "))
        .map(|field| field.name)
        .collect();
    let changes_note = format!(
        "Per field, the rarest first; a row that changes two fields is under each. Each field \
         lists up to {} users{}; the results file has every row, its changes column says what \
         changed.",
        ChangedUsers::PAGE,
        match cut_fields.is_empty() {
            true => String::new(),
            false => format!(" ({} cut there)", cut_fields.join(", ")),
        }
    );
    let changed_rows = summary.counts.of_kind(crate::table::results::Kind::Changed);
    let changes_unknown = (changed_fields.is_empty() && changed_rows > 0 && !run.dry_run)
        .then_some(
            "This run did not compare its rows with the users before sending (apply without \
         --skip-unchanged or --undo-file): what each row sent is in the results file's request \
         column. plan, then apply --plan, names who changed and from what.",
        );
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
        changed_fields,
        changes_heading: if planned {
            "Who would change"
        } else {
            "Who changed"
        },
        changes_note,
        changes_unknown,
    }
    .render()
    .expect("the report's template renders")
}

impl Summary {
    /// Writes the run's page (`--report`) to `path`.
    pub(crate) fn write_report(&self, path: &Path, context: &ReportContext) -> Result<(), Fatal> {
        write(path, self, context)
    }
}

/// Writes the page to `path`, whole or not at all: it is written beside its
/// place and renamed there, readable by its owner only (it names users).
pub(super) fn write(path: &Path, summary: &Summary, context: &ReportContext) -> Result<(), Fatal> {
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
    let would = summary.count(Status::WOULD_UPDATE);
    let unchanged = summary.count(Status::UNCHANGED);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::timeline::Timeline;
    use crate::sink::chart::*;
    use crate::table::results::ResultRecord;
    use std::time::Duration;

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
            rows.note(&record(row, Status::INVALID, "lang"));
        }
        for row in 0..3 {
            rows.note(&record(row, Status::FAILED, "HTTP 400"));
        }
        rows.note(&record(9, Status::UPDATED, ""));
        assert_eq!(rows.listed(Status::INVALID), per);
        assert_eq!(rows.listed(Status::FAILED), 3);
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
