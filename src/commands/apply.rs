//! `apply`: check the whole file first (nothing is sent when a row is
//! invalid, unless `--skip-invalid`), then send one PATCH per valid row
//! through the engine, to the API or to an in-process sandbox (`--sandbox`).

use super::{
    Ending, Threads, connect, finish, first_pass, guard_results, input_name, live_snapshot,
    note_input_changed, runtime, sandbox,
};
use super::{Next, check_distinct, read_by, read_rows_users, with_profile};
use crate::check::{LiveCheck, verify_kept};
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
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub fn run(mut args: ApplyArgs) -> Result<Exit, Fatal> {
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
        (OutputTarget::File(path), true) => Previous::open(path)
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

/// `apply --plan PLAN`: the changes a reviewed plan showed, for the users
/// still as it read them.
fn run_planned(args: &ApplyArgs, plan_path: &Path, api: ApiSettings) -> Result<Exit, Fatal> {
    let mut plan = Plan::open(plan_path)?;
    if plan.invalid > 0 && !args.skip_invalid {
        crate::say!(
            "nothing sent: {} {} invalid in the plan; fix the input and plan again, or pass \
             --skip-invalid to apply the rest",
            plan.invalid,
            if plan.invalid == 1 {
                "row is"
            } else {
                "rows are"
            }
        );
        plan = plan.refuse();
    }
    if let Some(age) = plan
        .planned_at
        .and_then(|at| std::time::SystemTime::now().duration_since(at).ok())
        .filter(|age| *age >= PLAN_AGE_NOTE)
    {
        // Printed even with --quiet: the reviewer looked at an old state.
        let hours = age.as_secs() / 3600;
        crate::say!(
            "note: the plan {} was made {} ago; users it would change that changed since are \
             failed, nothing sent, but the account may have changed in other ways (a plan of \
             today shows the account as it is)",
            plan_path.display(),
            match hours {
                0..48 => format!("{hours} hours"),
                _ => format!("{} days", hours / 24),
            }
        );
    }
    let source = InputSource::File(plan_path.to_path_buf());
    // users.plan.csv -> users.results.csv
    let target = match &args.output.output {
        None => {
            let stem = plan_path.file_stem().unwrap_or_default().to_string_lossy();
            let stem = stem.strip_suffix(".plan").unwrap_or(&stem);
            OutputTarget::File(PathBuf::from(format!("{stem}{RESULTS_SUFFIX}")))
        }
        Some(_) => OutputTarget::from_args(&args.output, &source, RESULTS_SUFFIX)?,
    };
    let mut run = RunSettings::from_args(&args.run)?;
    run.send.key_from = Some(api.key_from.clone());
    if let Some(summary) = &run.summary_json {
        check_summary_path(summary, &source, &target)?;
    }
    distinct_files(args, &source, &target, &run)?;
    if let Some(undo) = &args.undo_file {
        if std::fs::metadata(undo).is_ok_and(|m| m.len() > 0) {
            return Err(Fatal::Usage(format!(
                "the undo file {} already exists and may be the only way back from an earlier \
                 run; a plan is not resumed: to go on after an apply --plan that stopped, apply \
                 the plan again with another --undo-file and -o (the rows it changed already are \
                 unchanged, and write no undo line), and keep both undo files",
                undo.display()
            )));
        }
        check_undo_path(undo, (&source, &target, run.summary_json.as_deref()), false)?;
    }
    check_report(args, (&source, &target), Some(&api), &mut run)?;
    guard_results(&target, args.output.overwrite, Next::PlanAgain)?;
    let quiet = args.output.quiet;
    runtime(Threads::One)?.block_on(async {
        let interrupt = Interrupt::install();
        let (client, route) = connect(&api, run.send.concurrency.get(), quiet, "sending")?;
        if !quiet {
            crate::say!(
                "applying the plan {}: {} of its {} rows would change, each only if the user is \
                 still as the plan read it",
                plan_path.display(),
                plan.changes,
                plan.rows
            );
        }
        let results = ResultsWriter::create(&target, Keeping::Fresh, args.output.raw_output)?
            .for_report(args.output.report.is_some());
        let undo = open_undo(args, false, &target)?;
        mark_account(&target, &api)?;
        let operation = ApplyRows::Planned(PatchAsPlanned { undo: undo.clone() });
        let progress = (
            ProgressMode::detect(quiet, false, target.on_terminal()),
            plan.rows,
        );
        let finished = pipeline::run(
            Source::Plan(plan),
            results,
            progress,
            &run.send,
            Some((operation, client)),
            interrupt.clone(),
        )
        .await;
        let ending = Ending {
            command: "apply",
            dry_run: false,
            input: Some(plan_path.display().to_string()),
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

/// The account of a run that sends, as its record keeps it.
fn account_of(api: &ApiSettings) -> (String, &str) {
    (
        api.base_url.origin().ascii_serialization(),
        api.api_key.expose(),
    )
}

/// Keeps which account the run talks to beside its results file.
fn mark_account(target: &OutputTarget, api: &ApiSettings) -> Result<(), Fatal> {
    let OutputTarget::File(results) = target else {
        return Ok(());
    };
    let (url, key) = account_of(api);
    Account { url: &url, key }
        .mark(results)
        .map_err(|source| Fatal::Record {
            path: record::account_path(results),
            source,
        })
}

/// Refuses to resume the record at `results` with another account than
/// the run that wrote it: its kept rows are of that account.
fn same_account(results: &Path, api: &ApiSettings) -> Result<(), Fatal> {
    let (url, key) = account_of(api);
    let found = Account { url: &url, key }
        .compare(results)
        .map_err(|source| Fatal::Record {
            path: record::account_path(results),
            source,
        })?;
    let other = match found {
        SameAccount::Unknown | SameAccount::Same => return Ok(()),
        SameAccount::OtherUrl(was) => format!(
            "records a run against {was}, and this run talks to {url} (key from {})",
            api.key_from
        ),
        SameAccount::OtherKey => format!(
            "records a run with another API key than this run's (key from {}), at the same \
             {url}: it may be another account",
            api.key_from
        ),
    };
    Err(Fatal::Usage(format!(
        "the results file {} {other}; a resume goes on with the account of the run it resumes \
         (its rows are that account's): give the same --profile or key, or write this run's \
         results to another file with -o",
        results.display()
    )))
}

/// The undo file of `--undo-file`, if asked for (`resume`: going on), and
/// remembered by the results file (a run without one forgets an earlier
/// run's), before anything is sent.
fn open_undo(
    args: &ApplyArgs,
    resume: bool,
    target: &OutputTarget,
) -> Result<Option<Arc<UndoLog>>, Fatal> {
    if let OutputTarget::File(results) = target {
        undo::remember(results, args.undo_file.as_deref()).map_err(|source| Fatal::Record {
            path: undo::remembered_path(results),
            source,
        })?;
    }
    let Some(path) = &args.undo_file else {
        return Ok(None);
    };
    UndoLog::open(path, resume, args.accept_partial_undo)
        .map(|log| Some(Arc::new(log)))
        .map_err(|source| Fatal::UndoFile {
            path: path.clone(),
            source,
        })
}

/// The undo file a resume goes on with: the one the record at `results`
/// remembers (said, unless `quiet`), which `given` must be if given; or
/// `given` for a record that remembers none.
fn resumed_undo(
    results: &Path,
    given: Option<PathBuf>,
    quiet: bool,
) -> Result<Option<PathBuf>, Fatal> {
    let remembered = undo::remembered(results).map_err(|source| Fatal::Record {
        path: undo::remembered_path(results),
        source,
    })?;
    let remembered = match (remembered, &given) {
        (undo::Remembered::File(path), _) => path,
        (undo::Remembered::None, Some(given)) => {
            if !quiet {
                crate::say!(
                    "note: the run being resumed kept no undo file: {} holds the changes of this \
                     run only, not of the rows that run updated",
                    given.display()
                );
            }
            return Ok(Some(given.clone()));
        }
        (undo::Remembered::Unknown, None) => {
            // Printed even with --quiet: it may be a way back left behind.
            crate::say!(
                "note: {} does not say whether the run being resumed kept an undo file ({} is \
                 missing), and this run keeps none: if that run kept one, resume with \
                 --undo-file FILE to go on with it",
                results.display(),
                undo::remembered_path(results).display()
            );
            return Ok(None);
        }
        (_, given) => return Ok(given.clone()),
    };
    if let Some(given) = &given
        && !crate::settings::same_file(given, &remembered)
    {
        return Err(Fatal::Usage(format!(
            "the run being resumed kept its undo file at {}, and --undo-file names {}; resume \
             with --undo-file {} (or without --undo-file), so that one file holds the way back",
            remembered.display(),
            given.display(),
            remembered.display()
        )));
    }
    if !remembered.exists() {
        return Err(Fatal::Usage(format!(
            "the run being resumed kept its undo file at {}, which is gone: put it back before \
             resuming (without it, the changes of that run have no way back)",
            remembered.display()
        )));
    }
    if given.is_none() && !quiet {
        crate::say!(
            "going on with the undo file of the run being resumed: {}",
            remembered.display()
        );
    }
    Ok(Some(remembered))
}

/// Where the way back is, and what it cannot put back. Printed even with
/// `--quiet`: it is part of the run's record.
fn note_undo(undo: &UndoLog) {
    crate::say!(
        "undo: {} (gcore-iam-bulk apply {} puts back the values this run changed)",
        undo.path().display(),
        undo.path().display()
    );
    if let Err(error) = undo.finish() {
        crate::say!(
            "error: the undo file {} could not be merged into one row per user ({error}); it \
             holds every value, but a user with two rows is refused when it is applied: run \
             the same command with --resume to merge it",
            undo.path().display()
        );
    }
    let partial = undo.partial();
    if !partial.is_empty() {
        let shown: Vec<String> = partial
            .iter()
            .take(5)
            .map(|(id, fields)| format!("user {id} ({})", fields.names()))
            .collect();
        crate::say!(
            "note: --accept-partial-undo: the undo file cannot put back {} {} whose value no \
             PATCH can send back (left out by the API, or null): {}{}",
            partial.len(),
            if partial.len() == 1 {
                "user's field"
            } else {
                "users' fields"
            },
            shown.join(", "),
            if partial.len() > 5 { ", ..." } else { "" }
        );
    }
}

/// A plan at least this old is applied with a note of its age.
const PLAN_AGE_NOTE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

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
