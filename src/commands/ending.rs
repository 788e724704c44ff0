//! How a run ends: the summary printed, written as JSON and as a page,
//! and the exit code.

use super::*;

/// What decides how a run ends, besides its rows.
#[derive(Default)]
pub(super) struct Ending<'a> {
    /// `validate`, `apply` or `plan`, for the summary JSON.
    pub(super) command: &'static str,
    pub(super) dry_run: bool,
    /// The input as given.
    pub(super) input: Option<String>,
    /// The signal that came, if any.
    pub(super) signal: Option<Signal>,
    pub(super) summary_json: Option<&'a Path>,
    /// `--metrics-file`: the summary for Prometheus.
    pub(super) metrics: Option<&'a Path>,
    /// `--report`: the run's page.
    pub(super) report: Option<&'a Path>,
    /// The account and proxy of a run that talked to the API.
    pub(super) route: Option<&'a Route>,
    /// `plan --exit-code`: a row that would change ends the run with 3.
    pub(super) changes_exit: bool,
}

/// Prints the summary, writes it as JSON when asked, and says how the run
/// ended.
pub(super) fn finish(finished: Result<Finished, Fatal>, ending: &Ending) -> Result<Exit, Fatal> {
    let finished = match finished {
        Ok(finished) => finished,
        Err(fatal) => {
            // The page needs the run's record; say so rather than leave an
            // old page (or none) to pass for this run's. (A reader of
            // `-o -` gone early ends the run quietly: no error follows.)
            if let Some(report) = ending.report
                && !fatal.reader_gone()
            {
                crate::say!(
                    "note: no report was written to {}: the run did not end with its record \
                     complete (see the error below)",
                    report.display()
                );
            }
            return Err(fatal);
        }
    };
    let mut finished = finished;
    // The reads of the account before the rows are requests of the run.
    let [requests, retries, throttled] = reads();
    finished
        .summary
        .add_reads(requests, retries, throttled, read_time());
    let Finished {
        summary,
        ended,
        results_path,
    } = &finished;
    let Ending {
        command,
        dry_run,
        ref input,
        signal,
        summary_json,
        metrics,
        report,
        route,
        changes_exit,
    } = *ending;
    let proxy = route.and_then(|route| route.proxy.as_deref());
    let stopped_by = signal.filter(|_| matches!(ended, Ended::Stopped(StopReason::Interrupted)));
    let mut exit = Exit::of_run(stopped_by, summary.has_problems());
    if changes_exit && exit == Exit::Success && summary.planned() > 0 {
        exit = Exit::WouldChange;
    }
    let _ = std::io::stderr().write_all(summary.render(results_path, proxy).as_bytes());
    let mut run = RunInfo::new(command, dry_run, input.clone(), started());
    run.account = route.map(|route| route.account.clone());
    let info = &run;
    let summary_file = summary_json
        .map(|path| move |exit: Exit| summary.write_json(path, info, results_path, exit, proxy));
    let metrics_file = metrics.map(|path| {
        move |exit: Exit| {
            let run = MetricsRun {
                command,
                input: input.as_deref().unwrap_or("-"),
                exit,
                duration: started().elapsed().unwrap_or_default(),
                now: SystemTime::now(),
            };
            summary.figures().write_metrics(path, &run)
        }
    });
    exit = write_end_files(exit, dry_run, summary_file, metrics_file)?;
    if let Some(path) = report {
        let stopped = match ended {
            Ended::Stopped(why) => Some(why.to_string()),
            Ended::Finished | Ended::SinkGone { .. } => None,
        };
        let context = ReportContext {
            run: &run,
            results: results_path,
            exit,
            proxy,
            stopped,
        };
        // The rows' fate is what the exit code tells; a page that could not
        // be written (checked before the run, so a full disk) is said, and
        // changes nothing of it.
        match summary.write_report(path, &context) {
            Ok(()) => {}
            Err(fatal) => crate::say!(
                "error: {}; the run itself ended as the summary above says",
                crate::error::error_chain(&fatal)
            ),
        }
    }
    Ok(exit)
}

/// Writes the files monitoring reads at the end of a run (`summary`,
/// `metrics`: each writes its file for an exit code), and returns the
/// run's exit code. One that cannot be written (a full disk) after the run
/// read or changed the account is said, the other still written, and a run
/// that would have ended well ends with 74, so that cron sees it; a summary
/// written before the metrics failed is written again with that code. A
/// dry run stops at the first (exit 2: nothing was sent).
pub(super) fn write_end_files(
    mut exit: Exit,
    dry_run: bool,
    summary: Option<impl Fn(Exit) -> Result<(), Fatal>>,
    metrics: Option<impl Fn(Exit) -> Result<(), Fatal>>,
) -> Result<Exit, Fatal> {
    let unwritten = |fatal: Fatal, exit: &mut Exit| {
        if dry_run {
            return Err(fatal);
        }
        crate::say!(
            "error: {}; the run itself ended as the summary above says (its results are \
             complete)",
            crate::error::error_chain(&fatal)
        );
        if matches!(exit, Exit::Success | Exit::WouldChange) {
            *exit = Exit::RecordLost;
        }
        Ok(())
    };
    let mut summary_written = false;
    if let Some(write) = &summary {
        match write(exit) {
            Ok(()) => summary_written = true,
            Err(fatal) => unwritten(fatal, &mut exit)?,
        }
    }
    if let Some(write) = &metrics {
        let before = exit;
        if let Err(fatal) = write(exit) {
            unwritten(fatal, &mut exit)?;
        }
        if let (true, Some(write)) = (summary_written && exit != before, &summary)
            && let Err(fatal) = write(exit)
        {
            unwritten(fatal, &mut exit)?;
        }
    }
    Ok(exit)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// The metrics that cannot be written: 74, and the summary, written
    /// before, written again with it (it said 0). A dry run stops at once.
    #[test]
    fn a_summary_written_before_the_metrics_failed_says_74() {
        let written = RefCell::new(Vec::new());
        let summary = Some(|exit: Exit| {
            written.borrow_mut().push(exit);
            Ok(())
        });
        let full = || {
            Err(Fatal::Usage(
                "cannot write the metrics file m.prom".to_string(),
            ))
        };
        let metrics = Some(|_: Exit| full());
        let exit = write_end_files(Exit::Success, false, summary, metrics).unwrap();
        assert_eq!(exit, Exit::RecordLost);
        assert_eq!(*written.borrow(), [Exit::Success, Exit::RecordLost]);
        // A run with problems keeps its code (1 says it already).
        let summary = Some(|_: Exit| full());
        let metrics = Some(|_: Exit| Ok(()));
        let exit = write_end_files(Exit::RowProblems, false, summary, metrics).unwrap();
        assert_eq!(exit, Exit::RowProblems);
        let summary = Some(|_: Exit| full());
        assert!(write_end_files(Exit::Success, true, summary, None::<fn(Exit) -> _>).is_err());
    }
}
