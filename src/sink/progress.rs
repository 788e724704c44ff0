//! What the user sees while a run goes: an indicatif bar on a terminal, a
//! plain line every few seconds otherwise (cron, CI), nothing with `--quiet`.
//! Notes go through here too, so they never tear the bar.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::table::results::{Kind, Status};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    Bar,
    Lines,
    /// No progress display, but notes (a dry run: it takes seconds).
    Notes,
    Quiet,
}

/// `--no-progress`, for the whole process: set once from the command line.
static NO_PROGRESS: AtomicBool = AtomicBool::new(false);

/// `--no-progress`: no bar and no progress lines (notes and the summary stay).
pub(crate) fn set_no_progress(no_progress: bool) {
    NO_PROGRESS.store(no_progress, Ordering::Relaxed);
}

impl ProgressMode {
    /// Notes only for a dry run, else a bar when stderr is a terminal,
    /// lines when it is not. `results_on_terminal`: the results go to a
    /// terminal too (`-o -`), where a bar redrawn on the same screen would
    /// erase result lines: plain lines then.
    pub(crate) fn detect(quiet: bool, dry_run: bool, results_on_terminal: bool) -> ProgressMode {
        ProgressMode::choose(&Display {
            quiet,
            no_progress: NO_PROGRESS.load(Ordering::Relaxed),
            dry_run,
            results_on_terminal,
            stderr_terminal: std::io::stderr().is_terminal(),
            term: std::env::var("TERM").ok().as_deref(),
        })
    }

    /// The choice itself, from what [`ProgressMode::detect`] reads.
    fn choose(display: &Display) -> ProgressMode {
        // A dumb terminal (Emacs' shell, some CI consoles) cannot redraw a
        // line: plain lines there.
        let dumb = display.term == Some("dumb");
        if display.quiet {
            ProgressMode::Quiet
        } else if display.dry_run || display.no_progress {
            ProgressMode::Notes
        } else if display.stderr_terminal && !display.results_on_terminal && !dumb {
            ProgressMode::Bar
        } else {
            ProgressMode::Lines
        }
    }
}

/// What the progress display depends on.
#[derive(Clone, Copy)]
struct Display<'a> {
    quiet: bool,
    no_progress: bool,
    dry_run: bool,
    results_on_terminal: bool,
    stderr_terminal: bool,
    term: Option<&'a str>,
}

/// `NO_COLOR` set to anything but the empty string: no colour
/// (<https://no-color.org>).
fn colour() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

pub struct Progress {
    mode: ProgressMode,
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
    /// Rows the operation did (or, a plan, would do), under `changed_word`.
    changed: u64,
    /// The word of the rows counted in `changed`.
    changed_word: &'static str,
    failed: u64,
    started: Instant,
    last_line: Instant,
    /// What is counted: `rows` (with updated and failed), or `users`.
    unit: &'static str,
}

impl Progress {
    /// How often the writer wakes when no outcome comes, to keep lines going.
    pub(crate) const TICK: Duration = Duration::from_millis(500);
    /// Plain lines at most this often...
    pub(crate) const LINE_EVERY: Duration = Duration::from_secs(5);

    /// ...or as `GCORE_IAM_BULK_PROGRESS_EVERY_MS` says: a hidden setting,
    /// for the tests only (not in `--help` nor in the README), so that a
    /// test of the lines need not run for 5 s. Read here alone, once.
    fn line_every() -> Duration {
        static EVERY: OnceLock<Duration> = OnceLock::new();
        *EVERY.get_or_init(|| {
            std::env::var("GCORE_IAM_BULK_PROGRESS_EVERY_MS")
                .ok()
                .and_then(|ms| ms.parse().ok())
                .map_or(Self::LINE_EVERY, Duration::from_millis)
        })
    }

    pub fn new(mode: ProgressMode, total: u64) -> Progress {
        Progress::counting(mode, total, "rows")
    }

    /// A display that counts `unit` (`rows`: with the updated and failed
    /// counts; anything else, such as `users`: the count alone).
    pub fn counting(mode: ProgressMode, total: u64, unit: &'static str) -> Progress {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let bar_style = if colour() {
                "bar:30.cyan/blue"
            } else {
                "bar:30"
            };
            let template =
                format!("{{{bar_style}}} {{pos}}/{{len}} {unit}  {{rate}}  eta {{left}}  {{msg}}");
            // No rate and no time left until a second of rows has gone by:
            // the first rows' rate is a spike, and no rows means no end in
            // sight. After it, indicatif's estimate, a moving average.
            let settled = |state: &indicatif::ProgressState| {
                state.pos() > 0 && state.elapsed() >= Duration::from_secs(1)
            };
            bar.set_style(
                ProgressStyle::with_template(&template)
                    .expect("the template is valid")
                    .with_key(
                        "rate",
                        move |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = match settled(state) {
                                true => write!(w, "{:.1} {unit}/s", state.per_sec()),
                                false => write!(w, "- {unit}/s"),
                            };
                        },
                    )
                    .with_key(
                        "left",
                        move |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = match settled(state) {
                                true => write!(w, "{:#}", indicatif::HumanDuration(state.eta())),
                                false => write!(w, "-"),
                            };
                        },
                    )
                    .progress_chars("=> "),
            );
            if unit == "rows" {
                bar.set_message("0 updated, 0 failed");
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Progress {
            mode,
            bar,
            total,
            done: 0,
            changed: 0,
            changed_word: "updated",
            failed: 0,
            started: now,
            last_line: now,
            unit,
        }
    }

    /// `count` more units done (export's users, a page at a time).
    pub(crate) fn advance(&mut self, count: u64) {
        self.done += count;
        if let Some(bar) = &self.bar {
            bar.set_position(self.done);
        }
        self.tick();
    }

    /// A row was written.
    pub fn row(&mut self, status: Status) {
        self.done += 1;
        match status.kind() {
            // What the run did, or a plan would do, under its word.
            Kind::Changed | Kind::Planned => {
                // The operation's word (`updated`), or `done` when a run
                // has several.
                self.changed_word = match (self.changed, self.changed_word) {
                    (0, _) => status.as_str(),
                    (_, word) if word == status.as_str() => word,
                    _ => "done",
                };
                self.changed += 1;
            }
            Kind::Failed => self.failed += 1,
            _ => {}
        }
        if let Some(bar) = &self.bar {
            bar.set_position(self.done);
            if matches!(status.kind(), Kind::Changed | Kind::Planned | Kind::Failed) {
                bar.set_message(format!(
                    "{} {}, {} failed",
                    self.changed, self.changed_word, self.failed
                ));
            }
        }
        self.tick();
    }

    /// Prints a plain line when one is due.
    pub(crate) fn tick(&mut self) {
        if self.mode != ProgressMode::Lines || self.last_line.elapsed() < Self::line_every() {
            return;
        }
        self.last_line = Instant::now();
        let line = self.line();
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }

    fn line(&self) -> String {
        let elapsed = self.started.elapsed().as_secs_f64();
        let rate = if elapsed > 0.0 {
            self.done as f64 / elapsed
        } else {
            0.0
        };
        let percent = if self.total > 0 {
            100.0 * self.done as f64 / self.total as f64
        } else {
            100.0
        };
        let unit = self.unit;
        let mut line = format!(
            "progress: {} of {} {unit} ({percent:.0}%), {rate:.1} {unit}/s",
            self.done, self.total
        );
        if unit == "rows" {
            line.push_str(&format!(
                ", {} {}, {} failed",
                self.changed, self.changed_word, self.failed
            ));
        }
        if rate > 0.0 && self.done < self.total {
            let left = (self.total - self.done) as f64 / rate;
            line.push_str(&format!(", about {} left", human(left)));
        }
        line
    }

    /// A message for the user; dropped with `--quiet`.
    pub fn note(&self, text: &str) {
        // A stop reason may quote a server's message.
        let text = crate::visible::visible(text);
        match (&self.bar, self.mode) {
            (_, ProgressMode::Quiet) => {}
            (Some(bar), _) => bar.println(format!("note: {text}")),
            (None, _) => {
                let _ = writeln!(std::io::stderr().lock(), "note: {text}");
            }
        }
    }

    /// One attempt (`-v`): above the bar when there is one, whatever the mode.
    pub fn attempt(&self, text: &str) {
        let text = crate::visible::visible(text);
        let text = text.as_ref();
        match &self.bar {
            Some(bar) => bar.println(text),
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{text}");
            }
        }
    }

    /// Clears the bar so the summary prints on a clean line.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

fn human(seconds: f64) -> String {
    let seconds = seconds.round() as u64;
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m {:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h {:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_display_follows_the_flags_and_the_terminal() {
        let base = Display {
            quiet: false,
            no_progress: false,
            dry_run: false,
            results_on_terminal: false,
            stderr_terminal: true,
            term: Some("xterm-256color"),
        };
        let mode = |change: &dyn Fn(&mut Display)| {
            let mut display = base;
            change(&mut display);
            ProgressMode::choose(&display)
        };
        assert_eq!(mode(&|_| {}), ProgressMode::Bar);
        assert_eq!(mode(&|d| d.stderr_terminal = false), ProgressMode::Lines);
        assert_eq!(mode(&|d| d.term = Some("dumb")), ProgressMode::Lines);
        assert_eq!(mode(&|d| d.term = None), ProgressMode::Bar);
        assert_eq!(mode(&|d| d.results_on_terminal = true), ProgressMode::Lines);
        assert_eq!(mode(&|d| d.no_progress = true), ProgressMode::Notes);
        assert_eq!(mode(&|d| d.dry_run = true), ProgressMode::Notes);
        let quiet = |d: &mut Display| {
            d.quiet = true;
            d.no_progress = true;
        };
        assert_eq!(mode(&quiet), ProgressMode::Quiet);
    }
    use super::*;

    #[test]
    fn durations_read_like_a_person_wrote_them() {
        assert_eq!(human(4.4), "4s");
        assert_eq!(human(380.0), "6m 20s");
        assert_eq!(human(7300.0), "2h 01m");
    }

    #[test]
    fn the_plain_line_counts_rows() {
        let mut progress = Progress::new(ProgressMode::Quiet, 4);
        progress.row(Status::UPDATED);
        progress.row(Status::FAILED);
        let line = progress.line();
        assert!(line.starts_with("progress: 2 of 4 rows (50%)"), "{line}");
        assert!(line.contains("1 updated, 1 failed"), "{line}");
    }
}
