//! `validate` and `apply --dry-run`: check every row and write the results
//! file with the body each valid row would send. Nothing is sent.

use std::path::Path;

use super::{
    Ending, Threads, finish, first_pass, guard_results, input_name, note_input_changed, runtime,
};
use crate::cli::{InputArgs, OutputArgs};
use crate::engine::Never;
use crate::error::Fatal;
use crate::exit::Exit;
use crate::pipeline::{self, Checks, Disposition, Source};
use crate::policy::SendPolicy;
use crate::settings::{
    InputSettings, OutputTarget, RESULTS_SUFFIX, check_report_path, check_summary_path,
};
use crate::signals::Interrupt;
use crate::sink::{Keeping, ProgressMode, ResultsWriter};
use std::sync::Arc;

/// `summary_json`: also write the summary there; `command`: what the
/// user ran (`validate`, or `apply` for `apply --dry-run`).
pub fn run(
    input: &InputArgs,
    output: &OutputArgs,
    summary_json: Option<&Path>,
    command: &'static str,
) -> Result<Exit, Fatal> {
    let settings = InputSettings::from_args(input)?;
    let target = OutputTarget::from_args(output, &settings.source, RESULTS_SUFFIX)?;
    if let Some(summary) = summary_json {
        check_summary_path(summary, &settings.source, &target)?;
    }
    if let Some(report) = &output.report {
        let others = [(summary_json, "summary file")];
        check_report_path(
            report,
            (&settings.source, &target, &others),
            output.overwrite,
        )?;
    }
    super::check_distinct(
        &settings.source,
        &target,
        &[
            (summary_json, "summary file", "--summary-json"),
            (output.report.as_deref(), "report", "--report"),
        ],
    )?;
    guard_results(&target, output.overwrite, super::Next::Nothing)?;
    let quiet = output.quiet;
    runtime(Threads::One)?.block_on(async {
        let interrupt = Interrupt::install();
        let first = first_pass(&settings, false, quiet, &interrupt, None).await?;
        let (input, preflight) = (first.input, first.preflight);
        let results = ResultsWriter::create(&target, Keeping::DryRun, output.raw_output)?
            .for_report(output.report.is_some());
        let checks = Checks {
            input: Arc::clone(&input),
            null_token: settings.null_token.clone(),
            duplicates: preflight.duplicates.into(),
            disposition: Disposition::Go,
            previous: None,
            keep_body: false,
            emails: None,
            live: None,
        };
        let progress = (
            ProgressMode::detect(quiet, true, target.on_terminal()),
            preflight.rows,
        );
        let no_sender: Option<(Never, Never)> = None;
        let finished = pipeline::run(
            Source::Rows(checks),
            results,
            progress,
            &SendPolicy::dry_run(),
            no_sender,
            interrupt.clone(),
        )
        .await;
        note_input_changed(&input);
        let ending = Ending {
            command,
            dry_run: true,
            input: Some(input_name(&settings.source)),
            signal: interrupt.signal(),
            summary_json,
            report: output.report.as_deref(),
            ..Ending::default()
        };
        finish(finished, &ending)
    })
}

impl super::Run for crate::cli::ValidateArgs {
    fn no_progress(&self) -> bool {
        self.output.no_progress
    }

    fn run(self) -> Result<Exit, Fatal> {
        run(
            &self.input,
            &self.output,
            self.summary_json.as_deref(),
            "validate",
        )
    }
}
