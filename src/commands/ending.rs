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
    // A file monitoring reads that cannot be written (a full disk) after
    // the run read or changed the account: said, the other files still
    // written, and a run that would have ended well ends with 74, so that
    // cron sees it (a dry run stops here: nothing was sent).
    let unwritten = |fatal: Fatal, exit: &mut Exit| {
        if dry_run {
            return Err(fatal);
        }
        crate::say!(
            "error: {}; the run itself ended as the summary above says (its results file is \
             complete)",
            crate::error::error_chain(&fatal)
        );
        if matches!(exit, Exit::Success | Exit::WouldChange) {
            *exit = Exit::RecordLost;
        }
        Ok(())
    };
    if let Some(path) = summary_json
        && let Err(fatal) = summary.write_json(path, &run, results_path, exit, proxy)
    {
        unwritten(fatal, &mut exit)?;
    }
    if let Some(path) = metrics {
        let run = MetricsRun {
            command,
            input: input.as_deref().unwrap_or("-"),
            exit,
            duration: started().elapsed().unwrap_or_default(),
            now: SystemTime::now(),
        };
        if let Err(fatal) = summary.figures().write_metrics(path, &run) {
            unwritten(fatal, &mut exit)?;
        }
    }
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
