//! `apply`: check the whole file first (nothing is sent when a row is
//! invalid, unless `--skip-invalid`), then send one PATCH per valid row
//! through the engine, to the API or to an in-process sandbox (`--sandbox`).

mod files;
mod planned;

use super::{
    Ending, Threads, connect, finish, first_pass, guard_results, input_name, live_snapshot,
    note_input_changed, runtime, sandbox,
};
use super::{Next, check_distinct, read_by, read_rows_users, with_profile};
use crate::check::{LiveCheck, Rows, verify_kept};
use crate::cli::ApplyArgs;
use crate::error::Fatal;
use crate::exit::Exit;
use crate::operations::patch::{ApplyRows, PatchChanged, PatchRows};
use crate::operations::planned::PatchAsPlanned;
use crate::pipeline::{self, Checks, Disposition, Plan, Source};
use crate::settings::{
    ApiSettings, InputSettings, InputSource, OutputTarget, REHEARSAL_SUFFIX, RESULTS_SUFFIX,
    RunSettings, check_report_path, check_summary_path, check_undo_path,
};
use crate::signals::Interrupt;
use crate::sink::{Keeping, ProgressMode, ResultsWriter};
use crate::table::record::{self, Account, Previous, SameAccount};
use crate::table::undo::{self, UndoLog};
use files::*;
use planned::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What `apply` makes of its rows, the same for each of its operations
/// (a PATCH of each row's changes: the defaults of [`Rows`]).
const RULES: PatchRows = PatchRows;

pub(super) fn run(mut args: ApplyArgs) -> Result<Exit, Fatal> {
    // clap's `requires` takes a flag's default for "given", so these are checked here.
    for (given, flag) in [
        (args.tls, "--tls"),
        (args.sandbox_users.is_some(), "--sandbox-users"),
    ] {
        if given && !args.sandbox {
            return Err(Fatal::Usage(format!(
                "{flag} goes with --sandbox (the in-process rehearsal); to trust a server's \
                 certificate use --ca-cert"
            )));
        }
    }
    if args.dry_run {
        if !args.output.quiet && (args.skip_unchanged || args.undo_file.is_some()) {
            crate::say!(
                "note: a dry run reads no account, so --skip-unchanged and --undo-file change \
                 nothing here; `plan` shows what differs from the live account"
            );
        }
        return super::validate::run(
            &args.input,
            &args.output,
            args.run.summary_json.as_deref(),
            "apply",
        );
    }
    // The key and the base URL first: without them nothing else matters,
    // and a user who fixes one problem should not meet a more basic one next.
    let profile = with_profile(&args.api, &mut args.run)?;
    let api = match args.sandbox {
        true => None,
        false => Some(ApiSettings::with_profile(
            &args.api,
            profile.as_ref(),
            crate::settings::from_environment,
        )?),
    };
    if let Some(plan) = args.plan.clone() {
        let api = api.expect("apply --plan is not a rehearsal");
        return run_planned(&args, &plan, api);
    }
    let settings = InputSettings::from_args(&args.input)?;
    let suffix = match args.sandbox {
        true => REHEARSAL_SUFFIX,
        false => RESULTS_SUFFIX,
    };
    let target = OutputTarget::from_args(&args.output, &settings.source, suffix)?;
    let mut run = RunSettings::from_args(&args.run)?;
    run.send.key_from = api.as_ref().map(|api| api.key_from.clone());
    if let Some(summary) = &run.summary_json {
        check_summary_path(summary, &settings.source, &target)?;
    }
    check_report(&args, (&settings.source, &target), api.as_ref(), &mut run)?;
    let previous = match (&target, args.resume) {
        (OutputTarget::Stdout, true) => {
            return Err(Fatal::Usage(
                "--resume needs the results file of the earlier run; -o - writes none".to_string(),
            ));
        }
        (OutputTarget::File(path), true) => Previous::open(path, RULES.statuses())
            .map_err(|source| Fatal::Record {
                path: path.clone(),
                source,
            })?
            .map(Arc::new),
        (_, false) => None,
    };
    // A resume goes on with the account of the run it resumes.
    if let (Some(_), Some(api), OutputTarget::File(results)) = (&previous, &api, &target) {
        same_account(results, api)?;
    }
    // A resume goes on with the undo file its record remembers.
    if let (Some(_), OutputTarget::File(results)) = (&previous, &target) {
        args.undo_file = resumed_undo(results, args.undo_file.take(), args.output.quiet)?;
    }
    distinct_files(&args, &settings.source, &target, &run)?;
    if let Some(undo) = &args.undo_file {
        // Only the run whose record is resumed goes on with its undo file.
        let paths = (&settings.source, &target, run.summary_json.as_deref());
        check_undo_path(undo, paths, previous.is_some())?;
    }
    // A rehearsal's own file (<stem>.rehearsal.csv) is replaced at every rehearsal.
    let own_rehearsal_file = args.sandbox && args.output.output.is_none();
    if !args.resume && !own_rehearsal_file {
        guard_results(&target, args.output.overwrite, Next::Resume)?;
    }
    let quiet = args.output.quiet;
    runtime(if args.sandbox {
        Threads::PerCore
    } else {
        Threads::One
    })?
    .block_on(async {
        let interrupt = Interrupt::install();
        let rehearsal = match args.sandbox {
            true => {
                Some(sandbox::rehearsal(args.sandbox_users.unwrap_or(1000), args.tls, quiet).await?)
            }
            false => None,
        };
        let api = match &rehearsal {
            Some(running) => ApiSettings::for_sandbox(
                &args.api,
                &running.base_url(),
                running.api_key(),
                running.ca_pem(),
            )?,
            None => api.expect("a run that is not a rehearsal has its API settings"),
        };
        let (client, route) = connect(&api, run.send.concurrency.get(), quiet, "sending")?;
        let account = Some((&client, &run.send));
        let first = first_pass(&settings, true, quiet, &interrupt, account).await?;
        let (input, mut preflight) = (first.input, first.preflight);
        let mut resuming = None;
        if let Some(previous) = &previous {
            let kept = verify_kept(
                &input,
                &settings.null_token,
                &preflight.duplicates,
                first.emails.as_deref(),
                previous,
                &RULES,
            )?;
            // A kept row by an address the run itself changed is not invalid.
            preflight.invalid -= kept.refused_now.min(preflight.invalid);
            resuming = Some((previous.path().display().to_string(), kept.rows));
        }
        let keeping = if previous.is_some() {
            Keeping::Resume
        } else {
            Keeping::Fresh
        };
        let results = ResultsWriter::create(&target, keeping, args.output.raw_output)?
            .for_report(args.output.report.is_some());
        // Opened once the results file is ours, so two runs never share it.
        let undo = open_undo(&args, previous.is_some(), &target)?;
        if rehearsal.is_none() {
            mark_account(&target, &api)?;
        }
        let comparing = args.skip_unchanged || undo.is_some();
        // A comparing run reads every row's user before it sends anything,
        // so that a row the live state makes invalid stops the run as any
        // invalid row does.
        let live = match comparing {
            false => None,
            true => {
                let snapshot = live_snapshot(
                    first.users,
                    &preflight,
                    &client,
                    &run.send,
                    &interrupt,
                    quiet,
                )
                .await?;
                let users = read_rows_users(
                    &input,
                    &settings.null_token,
                    first.emails.clone(),
                    snapshot,
                    (&client, &run.send),
                    &interrupt,
                    quiet,
                )
                .await?;
                Some(Arc::new(LiveCheck {
                    users: Arc::new(users),
                    allow_number_changes: args.allow_number_changes,
                    skip_unchanged: args.skip_unchanged,
                    undo: undo.clone(),
                }))
            }
        };
        let mut invalid = preflight.invalid;
        if let Some(live) = &live {
            let (live, input) = (Arc::clone(live), Arc::clone(&input));
            let (null_token, emails) = (settings.null_token.clone(), first.emails.clone());
            let duplicates = std::mem::take(&mut preflight.duplicates);
            let (refused, duplicates) = tokio::task::spawn_blocking(move || {
                let refused = live.count(&input, &null_token, &duplicates, emails.as_deref());
                (refused, duplicates)
            })
            .await
            .expect("checking the rows does not panic");
            preflight.duplicates = duplicates;
            invalid += refused?;
        }
        let disposition = match invalid {
            invalid if invalid > 0 && !args.skip_invalid => {
                refuse_note(invalid);
                Disposition::Refuse { invalid }
            }
            _ => Disposition::Go,
        };
        let operation = match (comparing, &live) {
            (true, Some(live)) => ApplyRows::Changed(PatchChanged {
                skip_unchanged: args.skip_unchanged,
                undo: undo.clone(),
                allow_number_changes: args.allow_number_changes,
                snapshot: Some(Arc::clone(&live.users)),
            }),
            _ => ApplyRows::Patch(PatchRows),
        };
        // Said once the results file is ours (locked).
        if let Some((path, kept)) = resuming
            && !quiet
        {
            crate::say!(
                "resuming from {path}: {kept} {} already updated, kept as recorded",
                if kept == 1 { "row" } else { "rows" }
            );
        }
        let checks = Checks {
            input: Arc::clone(&input),
            null_token: settings.null_token.clone(),
            duplicates: preflight.duplicates.into(),
            disposition,
            previous,
            keep_body: matches!(operation, ApplyRows::Changed(_)),
            emails: first.emails,
            live,
            operation: Arc::new(RULES),
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
            Some((operation, client)),
            interrupt.clone(),
        )
        .await;
        if let Some(running) = rehearsal {
            running.stop().await;
        }
        note_input_changed(&input);
        let ending = Ending {
            command: "apply",
            dry_run: false,
            input: Some(input_name(&settings.source)),
            signal: interrupt.signal(),
            summary_json: run.summary_json.as_deref(),
            report: args.output.report.as_deref(),
            route: Some(&route),
            changes_exit: false,
        };
        let exit = finish(finished, &ending);
        if let Some(undo) = &undo {
            note_undo(undo);
        }
        exit
    })
}

/// Checks `--report` against the other files of the run, and has the
/// engine count what the page's timeline shows.
/// `api`: the settings of a run against the API (`None` for a rehearsal),
/// whose key and certificate files the page must not replace.
fn check_report(
    args: &ApplyArgs,
    (input, target): (&InputSource, &OutputTarget),
    api: Option<&ApiSettings>,
    run: &mut RunSettings,
) -> Result<(), Fatal> {
    let Some(report) = &args.output.report else {
        return Ok(());
    };
    let mut others = vec![
        (run.summary_json.as_deref(), "summary file"),
        (args.undo_file.as_deref(), "undo file"),
        (args.plan.as_deref(), "plan"),
    ];
    match api {
        Some(api) => others.extend(read_by(api)),
        // A rehearsal's only files are the certificates it is told to trust.
        None => others.extend(
            args.api
                .ca_cert
                .iter()
                .map(|ca| (Some(ca.as_path()), "certificate file")),
        ),
    }
    check_report_path(report, (input, target, &others), args.output.overwrite)?;
    run.send.timeline = true;
    Ok(())
}

/// The files of the run are files of their own (see [`check_distinct`]).
fn distinct_files(
    args: &ApplyArgs,
    input: &InputSource,
    target: &OutputTarget,
    run: &RunSettings,
) -> Result<(), Fatal> {
    check_distinct(
        input,
        target,
        &[
            (args.undo_file.as_deref(), "undo file", "--undo-file"),
            (
                run.summary_json.as_deref(),
                "summary file",
                "--summary-json",
            ),
            (args.output.report.as_deref(), "report", "--report"),
        ],
    )
}

/// Printed even with `--quiet`: it explains why nothing was sent.
fn refuse_note(invalid: u64) {
    crate::say!(
        "nothing sent: {invalid} {} invalid; fix {} (see the results file), or pass \
         --skip-invalid to send the valid rows anyway",
        if invalid == 1 { "row is" } else { "rows are" },
        if invalid == 1 { "it" } else { "them" },
    );
}

impl super::Run for ApplyArgs {
    fn no_progress(&self) -> bool {
        self.output.no_progress
    }

    fn run(self) -> Result<Exit, Fatal> {
        run(self)
    }
}
