//! `plan`: check every row as `validate` does, then read each valid row's
//! user and write what the row would change (`would_update` and the
//! `changes` column) or that the user already has every value
//! (`unchanged`). Only GETs are sent.

use std::sync::Arc;
use std::time::SystemTime;

use super::{
    Ending, Threads, connect, finish, first_pass, guard_results, input_name, live_snapshot,
    note_input_changed, runtime,
};
use super::{read_by, with_profile};
use crate::cli::PlanArgs;
use crate::error::Fatal;
use crate::exit::Exit;
use crate::operations::plan::PlanRows;
use crate::pipeline::{self, Checks, Disposition, Source};
use crate::settings::{
    ApiSettings, InputSettings, OutputTarget, PLAN_SUFFIX, RunSettings, check_report_path,
    check_summary_path,
};
use crate::signals::Interrupt;
use crate::sink::{Keeping, ProgressMode, ResultsWriter};

pub fn run(mut args: PlanArgs) -> Result<Exit, Fatal> {
    // The key and the base URL first (see `apply`).
    let profile = with_profile(&args.api, &mut args.run)?;
    let api = ApiSettings::with_profile(
        &args.api,
        profile.as_ref(),
        crate::settings::from_environment,
    )?;
    let settings = InputSettings::from_args(&args.input)?;
    let target = OutputTarget::from_args(&args.output, &settings.source, PLAN_SUFFIX)?;
    let mut run = RunSettings::from_args(&args.run)?;
    run.send.key_from = Some(api.key_from.clone());
    if let Some(summary) = &run.summary_json {
        check_summary_path(summary, &settings.source, &target)?;
    }
    if let Some(report) = &args.output.report {
        let mut others = vec![(run.summary_json.as_deref(), "summary file")];
        others.extend(read_by(&api));
        check_report_path(
            report,
            (&settings.source, &target, &others),
            args.output.overwrite,
        )?;
        run.send.timeline = true;
    }
    // A plan or a dry run is replaced; the record of a run that sent
    // changes only with --overwrite, even under the plan's default name.
    super::check_distinct(
        &settings.source,
        &target,
        &[
            (
                run.summary_json.as_deref(),
                "summary file",
                "--summary-json",
            ),
            (args.output.report.as_deref(), "report", "--report"),
        ],
    )?;
    guard_results(&target, args.output.overwrite, super::Next::Nothing)?;
    let quiet = args.output.quiet;
    runtime(Threads::One)?.block_on(async {
        let interrupt = Interrupt::install();
        let (client, route) = connect(&api, run.send.concurrency.get(), quiet, "reading")?;
        let account = Some((&client, &run.send));
        let first = first_pass(&settings, false, quiet, &interrupt, account).await?;
        let (input, preflight) = (first.input, first.preflight);
        let snapshot = live_snapshot(
            first.users,
            &preflight,
            &client,
            &run.send,
            &interrupt,
            quiet,
        )
        .await?;
        // When, and how many rows: a plan cut at its end is seen.
        let planned_at = format!(
            "{}; {} rows",
            httpdate::fmt_http_date(SystemTime::now()),
            preflight.rows
        );
        let results =
            ResultsWriter::create(&target, Keeping::Plan(planned_at), args.output.raw_output)?
                .for_report(args.output.report.is_some());
        let checks = Checks {
            input: Arc::clone(&input),
            null_token: settings.null_token.clone(),
            duplicates: preflight.duplicates.into(),
            disposition: Disposition::Go,
            previous: None,
            keep_body: true,
            emails: first.emails,
            live: None,
        };
        let progress = (
            ProgressMode::detect(quiet, false, target.on_terminal()),
            preflight.rows,
        );
        let finished = pipeline::run(
            Source::Rows(checks),
            results,
            progress,
            &run.send,
            Some((
                PlanRows {
                    snapshot,
                    allow_number_changes: args.allow_number_changes,
                },
                client,
            )),
            interrupt.clone(),
        )
        .await;
        note_input_changed(&input);
        let ending = Ending {
            command: "plan",
            dry_run: false,
            input: Some(input_name(&settings.source)),
            signal: interrupt.signal(),
            summary_json: run.summary_json.as_deref(),
            report: args.output.report.as_deref(),
            route: Some(&route),
            changes_exit: args.exit_code,
        };
        finish(finished, &ending)
    })
}

impl super::Run for PlanArgs {
    fn no_progress(&self) -> bool {
        self.output.no_progress
    }

    fn run(self) -> Result<Exit, Fatal> {
        run(self)
    }
}
