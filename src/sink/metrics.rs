//! `--metrics-file FILE.prom`: the summary in the Prometheus text format
//! (version 0.0.4), for node_exporter's textfile collector, so that a
//! scheduled run is watched by what already watches the machine. Every
//! value is the last run's (gauges); the time of the last run that ended
//! well is kept from the file's earlier value when this one did not, so an
//! alert on its age catches every kind of failure, a run that could not
//! start (and wrote nothing) included.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::Summary;
use crate::error::Fatal;
use crate::exit::Exit;
use crate::files::{folder_of, plain_io_error};

/// The name every metric starts with.
const PREFIX: &str = "gcore_iam_bulk";
/// The most of an earlier metrics file that is read (for its last success).
const PREVIOUS_MAX: u64 = 64 * 1024;
/// The metric that keeps its value across runs.
const LAST_SUCCESS: &str = "gcore_iam_bulk_last_success_timestamp_seconds";

/// What the metrics say of the run besides its rows.
pub(crate) struct MetricsRun<'a> {
    /// `apply`, `plan`.
    pub command: &'a str,
    /// The input as given (a label: two jobs that share a folder of
    /// metrics files stay apart).
    pub input: &'a str,
    pub exit: Exit,
    /// From the start of the command to its end.
    pub duration: Duration,
    /// When it ended.
    pub now: SystemTime,
}

/// The figures of a run: its rows by status (`exported` users for
/// `export`) and its requests.
pub(crate) struct Figures {
    pub rows: Vec<(&'static str, u64)>,
    pub requests: u64,
    pub retries: u64,
    pub throttled: u64,
}

impl Summary {
    /// This run's [`Figures`].
    pub(crate) fn figures(&self) -> Figures {
        Figures {
            rows: (self.counts.iter())
                .map(|(status, count)| (status.as_str(), count))
                .collect(),
            requests: self.requests,
            retries: self.retries,
            throttled: self.throttled,
        }
    }
}

impl Figures {
    /// The page of metrics for this run; `previous`: the file's text from
    /// an earlier run, if any (its last success is kept).
    pub(crate) fn metrics(&self, run: &MetricsRun, previous: Option<&str>) -> String {
        let labels = format!(
            "command=\"{}\",input=\"{}\"",
            escape(run.command),
            escape(run.input)
        );
        let now = seconds(run.now);
        // A run that ended well: every row fine, or plan --exit-code
        // finding something to change.
        let succeeded = matches!(run.exit, Exit::Success | Exit::WouldChange);
        let last_success = match succeeded {
            true => Some(now),
            false => previous.and_then(|text| last_success(text, run.command)),
        };
        let mut text = String::new();
        let mut gauge = |name: &str, help: &str, samples: &[(String, f64)]| {
            let _ = writeln!(text, "# HELP {PREFIX}_{name} {help}");
            let _ = writeln!(text, "# TYPE {PREFIX}_{name} gauge");
            for (labels, value) in samples {
                let _ = writeln!(text, "{PREFIX}_{name}{{{labels}}} {value}");
            }
        };
        let by_status: Vec<(String, f64)> = (self.rows.iter())
            .map(|(status, count)| (format!("{labels},status=\"{status}\""), *count as f64))
            .collect();
        gauge("rows", "Rows of the last run, by status.", &by_status);
        let one = |value: f64| [(labels.clone(), value)];
        gauge(
            "requests",
            "Requests the last run sent (every attempt, retries included).",
            &one(self.requests as f64),
        );
        gauge(
            "retries",
            "Attempts of the last run that repeated an earlier one.",
            &one(self.retries as f64),
        );
        gauge(
            "throttled",
            "Answers 429 (too many requests) the last run met.",
            &one(self.throttled as f64),
        );
        gauge(
            "duration_seconds",
            "How long the last run took, from start to end.",
            &one(run.duration.as_secs_f64()),
        );
        gauge(
            "exit_code",
            "The exit code of the last run (0 fine, 1 some row invalid or failed, 3 plan \
             --exit-code: some row would change, 130/143 interrupted, 74 record lost).",
            &one(f64::from(run.exit.code())),
        );
        gauge(
            "last_run_timestamp_seconds",
            "When the last run ended (Unix time).",
            &one(now),
        );
        if let Some(at) = last_success {
            gauge(
                "last_success_timestamp_seconds",
                "When a run last ended with exit 0 (or 3 for plan --exit-code) (Unix time).",
                &one(at),
            );
        }
        text
    }

    /// Writes [`Figures::metrics`] to `path` whole: beside it, then renamed
    /// over it (the collector never reads half a file). A symbolic link is
    /// followed: the file it leads to is replaced, not the link.
    pub(crate) fn write_metrics(&self, path: &Path, run: &MetricsRun) -> Result<(), Fatal> {
        let linked = std::fs::symlink_metadata(path).is_ok_and(|meta| meta.is_symlink());
        let target = match linked {
            true => std::fs::canonicalize(path).ok(),
            false => None,
        };
        let path = target.as_deref().unwrap_or(path);
        let error = |source| Fatal::Metrics {
            path: path.to_path_buf(),
            source: plain_io_error(source),
        };
        // The last success, from the file an earlier run wrote: a page of
        // metrics is a few kilobytes, and more is not this tool's.
        let previous = std::fs::File::open(path).ok().and_then(|file| {
            use std::io::Read;
            let mut text = String::new();
            file.take(PREVIOUS_MAX).read_to_string(&mut text).ok()?;
            Some(text)
        });
        let page = self.metrics(run, previous.as_deref());
        let mut file = tempfile::Builder::new()
            .prefix(".gcore-iam-bulk-metrics")
            .tempfile_in(folder_of(path))
            .map_err(error)?;
        file.write_all(page.as_bytes()).map_err(error)?;
        // Readable by the collector, which often runs as another user: the
        // figures name no user and no key.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let readable = std::fs::Permissions::from_mode(0o644);
            std::fs::set_permissions(file.path(), readable).map_err(error)?;
        }
        file.persist(path).map_err(|persist| error(persist.error))?;
        Ok(())
    }
}

/// The last success an earlier run of the same command wrote to the file,
/// whatever its input: the file is one job's, and a nightly job's input
/// may change every night (`plan-$day.csv`); a success kept only for the
/// same input would be gone from the file on the first night that fails,
/// and an alert on its age would have nothing to fire on.
fn last_success(text: &str, command: &str) -> Option<f64> {
    let start = format!("{LAST_SUCCESS}{{command=\"{}\",", escape(command));
    text.lines()
        .filter(|line| line.starts_with(start.as_str()))
        .find_map(|line| line.rsplit_once(' '))
        .and_then(|(_, value)| value.trim().parse().ok())
        .filter(|value: &f64| value.is_finite())
}

fn seconds(at: SystemTime) -> f64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs() as f64)
}

/// A label's value as the text format writes it: `\`, `"` and a line feed
/// escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
