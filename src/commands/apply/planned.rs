//! `apply --plan PLAN`: the changes a reviewed plan showed, for the users
//! still as it read them.

use super::*;
use crate::check::EmailIndex;
use crate::commands::limits::recall_limit;
use crate::commands::members::{CUT_SHORT, Members};
use crate::commands::{LIST_PAGE_SIZE, live_list, whole_list};
use crate::operations::members::Membership;
use crate::operations::pages::LivePages;
use crate::table::members_log::MembersLog;
use crate::table::results::Status;

/// `apply --plan PLAN`: the changes a reviewed plan showed, for the users
/// still as it read them.
pub(super) fn run_planned(
    args: &ApplyArgs,
    plan_path: &Path,
    api: ApiSettings,
) -> Result<Exit, Fatal> {
    if args.resume {
        return Err(Fatal::Usage(
            "--resume does not go with --plan: a plan is not resumed; to finish one that \
             stopped, apply it again to another file with -o (and another --undo-file, keeping \
             the first): the rows it changed already are unchanged"
                .to_string(),
        ));
    }
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
    if let OutputTarget::File(out) = &target {
        crate::settings::refuse_special(out, "-o", crate::settings::RESULTS_INSTEAD)?;
    }
    let mut run = RunSettings::from_args(&args.run)?;
    run.send.key_from = Some(api.key_from.clone());
    let quiet = args.output.quiet;
    let memory = (args.run.forget_rate, !args.run.no_share);
    let limit = recall_limit(&api, &mut run.send, memory, quiet);
    if let Some(summary) = &run.summary_json {
        check_summary_path(summary, (&source, &target), args.output.overwrite)?;
    }
    if let Some(metrics) = &run.metrics_file {
        crate::settings::check_metrics_path(metrics, (&source, &target), args.output.overwrite)?;
    }
    distinct_files(args, &source, &target, &run)?;
    if let Some(undo) = &args.undo_file {
        if std::fs::metadata(undo).is_ok_and(|m| m.len() > 0)
            && crate::table::undo::holds_a_way_back(undo)
        {
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
    guard_results(
        &target,
        args.output.overwrite,
        Next::PlanAgain,
        &Status::MEMBERSHIP,
    )?;
    let members = Members::from(&args.members);
    members.guard_count(
        plan.removals,
        &plan.removed,
        ("the plan", "nothing was sent", CUT_SHORT),
    )?;
    if args.undo_file.is_some() && !args.accept_partial_undo {
        refuse_unreversible(&plan.unreversible)?;
    }
    let quiet = args.output.quiet;
    runtime(Threads::One)?.block_on(async {
        let interrupt =
            Interrupt::install_saying("apply the plan again to another file with -o to finish it");
        let (client, route) = connect(&api, run.send.concurrency.get(), quiet, "sending")?;
        // Invitations and removals name the account; read first, so that a
        // run it refuses (`--account-id` of another) leaves no file.
        let account = (members)
            .account_when(
                (plan.invites, plan.removals),
                &client,
                &run.send,
                &interrupt,
            )
            .await?;
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
        let undo = open_undo(
            args.undo_file.as_deref(),
            args.accept_partial_undo,
            false,
            &target,
        )?;
        mark_account(&target, &api)?;
        // The users by pages of the account's list, when that takes fewer
        // requests than a GET per row; each page read again when a row
        // needs it after PAGE_FRESH.
        let read_at = std::time::Instant::now();
        // A plan that invites reads the whole list: an address in the
        // account now (the plan applied before, cut short) is not invited
        // again.
        let whole = match plan.invites {
            0 => None,
            _ => Some(
                whole_list(
                    &client,
                    &run.send,
                    &interrupt,
                    quiet,
                    "the plan invites users (an address in the account since the plan was made \
                     is not invited again)",
                )
                .await?,
            ),
        };
        let (existing, planned_against) = match &whole {
            Some(list) => (
                Some(Arc::new(EmailIndex::new(&list.users))),
                // Only the users of the addresses it invites: a copy of the
                // whole list would double the run's memory.
                Some(Arc::new(
                    (list.users.iter())
                        .filter(|user| {
                            let email = user.email.as_deref().unwrap_or_default();
                            plan.invited.contains(&email.trim().to_lowercase())
                        })
                        .filter_map(|user| Some((user.id?, user.clone())))
                        .collect::<std::collections::HashMap<_, _>>(),
                )),
            ),
            None => (None, None),
        };
        // With an undo file each row reads its user with a GET just before
        // its PATCH (as `apply --undo-file`): the line holds what the PATCH
        // replaces, not what a page read up to 5 s before showed.
        let listed = match &undo {
            Some(_) => None,
            None => live_list(whole, plan.changes, &client, &run.send, &interrupt, quiet).await?,
        };
        let pages = listed.map(|list| {
            Arc::new(LivePages::new(
                list.users,
                &list.partial,
                LIST_PAGE_SIZE,
                read_at,
                PAGE_FRESH,
            ))
        });
        let update = ApplyRows::Planned(PatchAsPlanned {
            undo: undo.clone(),
            pages,
        });
        let log = match (plan.invites + plan.removals, &target) {
            (0, _) | (_, OutputTarget::Stdout) => None,
            (_, OutputTarget::File(results)) => Some(Arc::new(
                MembersLog::open(results, false).map_err(|source| Fatal::Record {
                    path: results.clone(),
                    source,
                })?,
            )),
        };
        let membership = Membership {
            client_id: account.map(|account| account.id),
            current_user: account.and_then(|account| account.current_user),
            undo: undo.clone(),
            accept_partial_undo: args.accept_partial_undo,
            log,
            existing,
            planned_against,
            ..Membership::default()
        };
        let mut operation = ByAction::new(update, membership);
        // A removal is sent only for a user still as the plan read them.
        operation.remove.as_planned = true;
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
            metrics: run.metrics_file.as_deref(),
            report: args.output.report.as_deref(),
            route: Some(&route),
            changes_exit: false,
        };
        let learned = (finished.as_ref().ok()).and_then(|f| f.summary.learned_limit());
        let exit = finish(finished, &ending);
        if let Some(memory) = &limit {
            memory.learned(learned);
        }
        if let Some(undo) = &undo {
            note_undo(undo);
        }
        if matches!(exit, Ok(Exit::Interrupted | Exit::Terminated)) {
            // A plan is not resumed: it is applied again.
            crate::say!(
                "note: to finish the plan, apply it again to another results file (and another \
                 --undo-file: keep this one): gcore-iam-bulk apply --plan {} -o OTHER.csv; the \
                 rows it changed already are unchanged",
                plan_path.display()
            );
        }
        exit
    })
}

/// How old a page of the account's list may be for `apply --plan` to
/// compare a row with it rather than read the user again: the window in
/// which a change made by someone else to a planned user goes unseen.
pub(super) const PAGE_FRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// A plan at least this old is applied with a note of its age.
pub(super) const PLAN_AGE_NOTE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

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
        (run.metrics_file.as_deref(), "metrics file"),
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
            (
                run.metrics_file.as_deref(),
                "metrics file",
                "--metrics-file",
            ),
            (args.output.report.as_deref(), "report", "--report"),
        ],
    )
}

/// A plan's removals that the undo file could not take back stop the run
/// before anything is sent, as such rows stop `apply`: the user is removed
/// only if still as the plan read them, so the plan's values decide.
fn refuse_unreversible((first, count): &(Option<(u64, String)>, u64)) -> Result<(), Fatal> {
    let Some((row, why)) = first else {
        return Ok(());
    };
    let others = match count - 1 {
        0 => String::new(),
        1 => " (and 1 more row)".to_string(),
        n => format!(" (and {n} more rows)"),
    };
    Err(Fatal::Usage(format!(
        "row {row} of the plan removes a user the undo file could not invite back ({why}){others}; \
         nothing was sent. Pass --accept-partial-undo to remove them without a way back, or take \
         such rows out of the input and plan again"
    )))
}
