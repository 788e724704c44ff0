//! Where a run's files go (results, undo file, summary, report), each
//! checked before anything is sent: distinct from the input and from each
//! other, not a named pipe, in a folder that takes a new file.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::cli::OutputArgs;
use crate::error::Fatal;

use super::*;

// The results target is the results file's (`table::record`), the page's
// mark and the file helpers a leaf's (`files`): settings build and check
// them, and re-export them for the commands.
pub(crate) use crate::files::{REPORT_MARK, folder_of, plain_io_error};
pub use crate::table::record::OutputTarget;

impl OutputTarget {
    /// `suffix` names the default file after the input's stem:
    /// [`RESULTS_SUFFIX`], or the own file of a plan or a rehearsal, never a
    /// real run's.
    pub(crate) fn from_args(
        args: &OutputArgs,
        input: &InputSource,
        suffix: &str,
    ) -> Result<Self, Fatal> {
        let target = match &args.output {
            Some(path) if path.as_os_str() == "-" => OutputTarget::Stdout,
            Some(path) => OutputTarget::File(path.clone()),
            None => OutputTarget::File(default_output(input, suffix)),
        };
        if let OutputTarget::File(out) = &target {
            refuse_special(out, "-o", RESULTS_INSTEAD)?;
        }
        if let OutputTarget::File(out) = &target
            && named_like_workbook(out)
        {
            return Err(Fatal::Usage(format!(
                "{} is named like a workbook, but results are a CSV file: each row's record is \
                 written as the run goes, so that a crash loses none of it, and a workbook can \
                 only be written whole at the end; name it .csv (every spreadsheet opens it)",
                out.display()
            )));
        }
        if let (OutputTarget::File(out), InputSource::File(inp)) = (&target, input)
            && same_file(out, inp)
        {
            return Err(Fatal::Usage(format!(
                "the results file {} is the input file; choose another with -o",
                out.display()
            )));
        }
        Ok(target)
    }
}

/// The default results file of `validate` and `apply`, after the input's stem.
pub(crate) const RESULTS_SUFFIX: &str = ".results.csv";
/// The default results file of `apply --sandbox`.
pub(crate) const REHEARSAL_SUFFIX: &str = ".rehearsal.csv";
/// The default results file of `plan`.
pub(crate) const PLAN_SUFFIX: &str = ".plan.csv";

/// `<input stem><suffix>` in the current directory (`stdin` as the stem
/// when the input is standard input).
pub(super) fn default_output(input: &InputSource, suffix: &str) -> PathBuf {
    let stem = match input {
        InputSource::Stdin => OsStr::new("stdin"),
        InputSource::File(path) => path.file_stem().unwrap_or(OsStr::new("input")),
    };
    let mut name = stem.to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// Whether two paths name one file: by device and inode when both exist
/// (so a hard link or a symbolic link to the input is caught), else by
/// where they lead once every symbolic link is followed, even a link to a
/// file not created yet (two outputs, one a link to the other's name).
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    if let Ok(same) = same_file::is_same_file(a, b) {
        return same;
    }
    leads_to(a) == leads_to(b)
}

/// The absolute path `path` leads to: its folder made canonical, and a
/// symbolic link followed (to at most 40 links, as the kernel does), also
/// when what it names does not exist yet.
pub(crate) fn leads_to(path: &Path) -> PathBuf {
    let absolute = |path: &Path| {
        let parent = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        parent
            .canonicalize()
            .unwrap_or(parent)
            .join(path.file_name().unwrap_or_default())
    };
    let mut current = absolute(path);
    for _ in 0..40 {
        match std::fs::read_link(&current) {
            Ok(target) => {
                let folder = current.parent().map(Path::to_path_buf).unwrap_or_default();
                current = absolute(&folder.join(target));
            }
            Err(_) => break,
        }
    }
    current
}

/// Refuses a file named by `flag` that is the input or the results file:
/// writing it would destroy them.
pub(super) fn not_input_or_results(
    path: &Path,
    what: &str,
    flag: &str,
    input: &InputSource,
    output: &OutputTarget,
) -> Result<(), Fatal> {
    let clash = |other: &str| {
        Fatal::Usage(format!(
            "the {what} {} is the {other}; choose another {flag}",
            path.display()
        ))
    };
    if let InputSource::File(input) = input
        && same_file(path, input)
    {
        return Err(clash("input file"));
    }
    if let OutputTarget::File(results) = output
        && same_file(path, results)
    {
        return Err(clash("results file"));
    }
    Ok(())
}

/// Checks `--undo-file` before anything is sent: it is not the input, the
/// results or the summary file, and an existing one (the way back from an
/// earlier run) is only gone on with by `--resume` of that run's record
/// (`continuing`). `--overwrite` does not replace it: it is the results
/// file's flag, and an undo file lost cannot be made again.
pub(crate) fn check_undo_path(
    undo: &Path,
    (input, output, summary): (&InputSource, &OutputTarget, Option<&Path>),
    continuing: bool,
) -> Result<(), Fatal> {
    if named_like_workbook(undo) {
        return Err(Fatal::Usage(format!(
            "the undo file {} is named like a workbook, but it is a CSV file: each user's line \
             is written before the change is sent, so that a crash loses none of it, and a \
             workbook can only be written whole at the end; name it .csv (a spreadsheet opens \
             it, and apply reads it as it is)",
            undo.display()
        )));
    }
    refuse_dash(
        undo,
        "--undo-file",
        "the undo file is a file of its own",
        "undo.csv",
    )?;
    refuse_special(
        undo,
        "--undo-file",
        "the undo file is a file of its own: name one",
    )?;
    not_input_or_results(undo, "undo file", "--undo-file", input, output)?;
    if let Some(summary) = summary
        && same_file(undo, summary)
    {
        return Err(Fatal::Usage(format!(
            "the undo file {} is the summary file; choose another --undo-file",
            undo.display()
        )));
    }
    let exists = std::fs::metadata(undo).is_ok_and(|m| m.len() > 0);
    if exists && !continuing && crate::table::undo::holds_a_way_back(undo) {
        return Err(Fatal::Usage(format!(
            "the undo file {} already exists and may be the only way back from an earlier run \
             (--overwrite does not replace it); move it away or choose another --undo-file \
             (--resume goes on with it only together with that run's results file)",
            undo.display()
        )));
    }
    Ok(())
}

/// Checks `--summary-json` before anything is sent: it is neither the input
/// nor the results file, and it can be written (its folder exists and takes
/// a new file, or the file exists and can be written).
/// A named pipe given for a file the run writes: opening it waits for a
/// reader, out of reach of Ctrl-C, so it is refused before that.
/// Refuses `path` when it exists and is not a regular file (a device such
/// as /dev/null, a directory, a socket): a file of the run is written
/// beside itself and renamed over, or locked and synced, and run as root a
/// rename would put a plain file in a device's place. `what`: the file's
/// part in the run, `instead`: what to give instead.
pub(crate) fn refuse_special(path: &Path, flag: &str, instead: &str) -> Result<(), Fatal> {
    refuse_named_pipe(path, flag)?;
    let Ok(metadata) = std::fs::metadata(path) else {
        return Ok(());
    };
    let kind = metadata.file_type();
    if kind.is_file() {
        return Ok(());
    }
    let what = if kind.is_dir() {
        "a directory (a folder)"
    } else {
        "a device or another special file"
    };
    Err(Fatal::Usage(format!(
        "{flag} {} is {what}, not a regular file; {instead}",
        path.display()
    )))
}

/// `-` names standard input or output elsewhere (`apply -`, `-o -`); a
/// file of the run's own (the undo file, the summary, the metrics) would
/// be written under that name, and `apply -` would not read it back.
fn refuse_dash(path: &Path, flag: &str, what: &str, example: &str) -> Result<(), Fatal> {
    match path.as_os_str() == "-" {
        true => Err(Fatal::Usage(format!(
            "{flag} - would write a file named -; {what}: name one ({flag} {example})"
        ))),
        false => Ok(()),
    }
}

pub(super) fn refuse_named_pipe(path: &Path, flag: &str) -> Result<(), Fatal> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo()) {
            return Err(Fatal::Usage(format!(
                "{flag} {} is a named pipe; the run would wait for a reader before it could \
                 start; give a regular file",
                path.display()
            )));
        }
    }
    let _ = (path, flag);
    Ok(())
}

pub(crate) fn check_summary_path(
    summary: &Path,
    (input, output): (&InputSource, &OutputTarget),
    overwrite: bool,
) -> Result<(), Fatal> {
    refuse_dash(
        summary,
        "--summary-json",
        "the summary goes to a file",
        "summary.json",
    )?;
    refuse_named_pipe(summary, "--summary-json")?;
    not_input_or_results(summary, "summary file", "--summary-json", input, output)?;
    refuse_foreign(
        summary,
        ("--summary-json", "summary"),
        SUMMARY_MARK,
        overwrite,
    )?;
    let probe = if summary.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .open(summary)
            .map(drop)
    } else {
        probe_new_file(summary)
    };
    probe.map_err(|source| Fatal::SummaryJson {
        path: summary.to_path_buf(),
        source: plain_io_error(source),
    })
}

/// `--metrics-file`: as [`check_summary_path`], for the summary in the
/// Prometheus text format.
pub(crate) fn check_metrics_path(
    metrics: &Path,
    (input, output): (&InputSource, &OutputTarget),
    overwrite: bool,
) -> Result<(), Fatal> {
    refuse_dash(
        metrics,
        "--metrics-file",
        "the metrics go to a file",
        "iam.prom",
    )?;
    refuse_special(
        metrics,
        "--metrics-file",
        "the metrics are written beside the file and renamed over it: name a file (FILE.prom)",
    )?;
    not_input_or_results(metrics, "metrics file", "--metrics-file", input, output)?;
    refuse_foreign(
        metrics,
        ("--metrics-file", "metrics file"),
        METRICS_MARK,
        overwrite,
    )?;
    // Written beside itself and renamed over: its folder must take a file.
    let probe = probe_new_file(metrics);
    probe.map_err(|source| Fatal::Metrics {
        path: metrics.to_path_buf(),
        source: plain_io_error(source),
    })
}

/// What `--report` is checked against besides the input and the results:
/// the other files the run reads or writes (`None`: not given).
pub(crate) type OtherFiles<'a> = &'a [(Option<&'a Path>, &'a str)];

/// Checks `--report` before anything is sent: an `.html` file name (a
/// browser opens it by its name), not a file the run reads or writes
/// otherwise (the key's file, a certificate, the summary...), a regular file
/// if it exists, and a page of this tool unless `overwrite`; a new one must
/// be creatable under that very name (made and removed at once). The page
/// itself is written at the end, beside its place, then renamed there.
pub(crate) fn check_report_path(
    report: &Path,
    (input, output, others): (&InputSource, &OutputTarget, OtherFiles),
    overwrite: bool,
) -> Result<(), Fatal> {
    let usage = |why: String| Fatal::Usage(format!("the report {} {why}", report.display()));
    let text = report.as_os_str().to_string_lossy();
    if text.ends_with('/') || text.ends_with("/.") || report.file_name().is_none() {
        return Err(usage(
            "is not a file name; give one that ends in .html (--report run.html)".to_string(),
        ));
    }
    let html = report
        .extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| ext.eq_ignore_ascii_case("html") || ext.eq_ignore_ascii_case("htm"));
    if !html {
        return Err(usage(
            "is a web page; give it a name that ends in .html, so that a browser opens it \
             (--report run.html)"
                .to_string(),
        ));
    }
    refuse_special(
        report,
        "--report",
        "the report is a file of its own: name one (run.html)",
    )?;
    not_input_or_results(report, "report", "--report", input, output)?;
    for (other, what) in others {
        if let Some(other) = other
            && same_file(report, other)
        {
            return Err(usage(format!("is the {what}; choose another --report")));
        }
    }
    let cannot = |source: std::io::Error| Fatal::Report {
        path: report.to_path_buf(),
        source: plain_io_error(source),
    };
    let dangling = std::fs::symlink_metadata(report).is_ok() && std::fs::metadata(report).is_err();
    if dangling {
        return Err(usage(
            "is a link to a file that does not exist; give the file's own name".to_string(),
        ));
    }
    match std::fs::metadata(report) {
        Ok(meta) if meta.is_dir() => Err(usage(format!(
            "is a folder; give a file name (--report {}/run.html)",
            report.display()
        ))),
        Ok(meta) if !meta.is_file() => Err(usage(
            "is not a regular file (a socket or a device?); give a file name".to_string(),
        )),
        Ok(meta) => {
            if !overwrite && meta.len() > 0 && !is_our_page(report) {
                return Err(usage(
                    "exists and is not a page of gcore-iam-bulk; choose another --report, or \
                     pass --overwrite to replace it"
                        .to_string(),
                ));
            }
            // Replaced by a rename at the end, or written over where the
            // folder does not allow that (a sticky folder): either way, it
            // must take writing.
            std::fs::OpenOptions::new()
                .write(true)
                .open(report)
                .map(drop)
                .map_err(cannot)?;
            probe_new_file(report).map_err(cannot)
        }
        Err(_) => {
            // Made under its very name and removed: a name too long, a
            // folder that does not exist or takes no file, are seen now.
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(report)
                .map_err(cannot)?;
            std::fs::remove_file(report).map_err(cannot)
        }
    }
}

/// How a summary file of this tool starts (serde_json's pretty print of
/// [`crate::sink::write_summary_json`]'s object, `version` first).
const SUMMARY_MARK: &str = "{\n  \"version\": \"";

/// How a metrics file of this tool starts.
const METRICS_MARK: &str = "# HELP gcore_iam_bulk_";

/// Refuses to replace, without `overwrite`, a file at `path` that does not
/// start with `mark` (a file of this tool of that kind): an undo file or
/// a run's results given by a slip of the keyboard is the only record of a
/// change. An empty file, or none, is taken, and anything but a regular
/// file (`/dev/stdout` is not read: it may be a pipe this process writes).
fn refuse_foreign(
    path: &Path,
    (flag, what): (&str, &str),
    mark: &str,
    overwrite: bool,
) -> Result<(), Fatal> {
    if !std::fs::metadata(path).is_ok_and(|meta| meta.is_file()) {
        return Ok(());
    }
    match crate::files::read_start(path, mark.len() as u64) {
        Ok(start) if !overwrite && !start.is_empty() && start != mark.as_bytes() => {
            Err(Fatal::Usage(format!(
                "{flag} {} exists and is not a {what} of gcore-iam-bulk (it may be the only \
                 record of a change: an undo file, a run's results); choose another {flag}, or \
                 pass --overwrite to replace it",
                path.display()
            )))
        }
        _ => Ok(()),
    }
}

/// Whether `path` starts like a page this tool wrote.
pub(super) fn is_our_page(path: &Path) -> bool {
    let start = crate::files::read_start(path, 2048);
    start.is_ok_and(|start| String::from_utf8_lossy(&start).contains(REPORT_MARK))
}

/// Whether the folder of `path` takes a new file (made and removed at once).
pub(crate) fn probe_folder(path: &Path) -> std::io::Result<()> {
    probe_new_file(path).map_err(plain_io_error)
}

pub(super) fn probe_new_file(path: &Path) -> std::io::Result<()> {
    tempfile::Builder::new()
        .prefix(".gcore-iam-bulk-probe")
        .tempfile_in(folder_of(path))
        .map(drop)
}

/// What a results file that is not a regular file is refused with.
pub(crate) const RESULTS_INSTEAD: &str = "the results are the record of the run, a file of its own: name one, or give -o - for \
     standard output";

#[cfg(test)]
mod special_tests {
    use super::*;

    #[test]
    fn a_device_or_a_folder_is_no_file_of_the_run() {
        // Only looked at, never written: /dev/null stays what it is.
        let refused = refuse_special(Path::new("/dev/null"), "-o", RESULTS_INSTEAD).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("-o /dev/null is a device or another special file"),
            "{refused}"
        );
        let dir = tempfile::tempdir().unwrap();
        let refused = refuse_special(dir.path(), "--report", "name one").unwrap_err();
        assert!(refused.to_string().contains("is a directory"), "{refused}");
        let file = dir.path().join("run.csv");
        assert!(
            refuse_special(&file, "-o", RESULTS_INSTEAD).is_ok(),
            "a new file"
        );
        std::fs::write(&file, "x").unwrap();
        assert!(
            refuse_special(&file, "-o", RESULTS_INSTEAD).is_ok(),
            "a regular file"
        );
    }
}
