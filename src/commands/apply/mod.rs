//! `apply`: check the whole file first (nothing is sent when a row is
//! invalid, unless `--skip-invalid`), then send one PATCH per valid row
//! through the engine, to the API or to an in-process sandbox (`--sandbox`).

mod planned;

use super::record::{mark_account, note_undo, open_undo};
use super::rows::{Keeps, RecordFlags, RowsFlags, RowsRun, Sending, Started};
use super::{
    Ending, Next, Threads, check_distinct, connect, finish, guard_results, live_snapshot, read_by,
    read_rows_users, runtime, with_profile,
};
use crate::check::LiveCheck;
use crate::cli::ApplyArgs;
use crate::error::Fatal;
use crate::exit::Exit;
use crate::operations::members::ByAction;
use crate::operations::patch::{ApplyRows, PatchChanged, PatchRows};
use crate::operations::planned::PatchAsPlanned;
use crate::pipeline::{self, Plan, Source};
use crate::settings::{
    ApiSettings, InputSource, OutputTarget, REHEARSAL_SUFFIX, RESULTS_SUFFIX, RunSettings,
    check_report_path, check_summary_path, check_undo_path,
};
use crate::signals::Interrupt;
use crate::sink::{Keeping, ProgressMode, ResultsWriter};
use planned::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What `apply` makes of its rows, the same for each of its operations
/// (a PATCH of each row's changes: the defaults of [`crate::check::Rows`]).
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
        if args.run.metrics_file.is_some() {
            crate::say!(
                "note: --metrics-file is for runs that read the account; a dry run writes none \
                 (--summary-json has its figures)"
            );
        }
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
    if let Some(plan) = args.plan.clone() {
        // The key and the base URL first: without them nothing else
        // matters, and a user who fixes one problem should not meet a more
        // basic one next (`RowsRun::new` does the same).
        let profile = with_profile(&args.api, &mut args.run)?;
        let api = ApiSettings::with_profile(
            &args.api,
            profile.as_ref(),
            crate::settings::from_environment,
        )?;
        return run_planned(&args, &plan, api);
    }
    let (skip_unchanged, allow_number_changes) = (args.skip_unchanged, args.allow_number_changes);
    let accept_partial_undo = args.accept_partial_undo;
    let run = RowsRun::new(
        RowsFlags {
            command: "apply",
            input: &args.input,
            output: &args.output,
            sending: Some((&args.api, &mut args.run)),
            summary_json: None,
            suffix: match args.sandbox {
                true => REHEARSAL_SUFFIX,
                false => RESULTS_SUFFIX,
            },
            next: Next::Resume,
            keeps: Keeps::Record(RecordFlags {
                resume: args.resume,
                undo_file: args.undo_file.clone(),
                accept_partial_undo: args.accept_partial_undo,
                skip_invalid: args.skip_invalid,
            }),
            rehearsal: args
                .sandbox
                .then(|| (args.sandbox_users.unwrap_or(1000), args.tls)),
            members: (&args.members).into(),
        },
        RULES,
    )?;
    run.send_rows(async |started: &mut Started<'_>| {
        // A comparing run reads every row's user before it sends anything,
        // so that a row the live state makes invalid stops the run as any
        // invalid row does.
        let undo = started.undo.clone();
        // Each row goes to its action's operation (an update's, an
        // invitation's, a removal's).
        let membership = started.membership(accept_partial_undo);
        let by_action = move |update| ByAction::new(update, membership);
        // A row that removes the key's own user stops the run as any
        // invalid row does (known once the account is read).
        let current_user = started.current_user;
        if !skip_unchanged && undo.is_none() {
            let removes = started.first.preflight.removals > 0 && current_user.is_some();
            return Ok(Sending {
                operation: by_action(ApplyRows::Patch(PatchRows)),
                keep_body: false,
                live: removes.then(|| {
                    Arc::new(LiveCheck {
                        users: Arc::default(),
                        allow_number_changes: true,
                        skip_unchanged: false,
                        undo: None,
                        current_user,
                    })
                }),
                extra: Vec::new(),
            });
        }
        let first = &mut started.first;
        let snapshot = live_snapshot(
            first.users.take(),
            &first.preflight,
            started.client,
            started.send,
            started.interrupt,
            started.quiet,
        )
        .await?;
        let users = read_rows_users(
            &first.input,
            started.null_token,
            first.emails.clone(),
            snapshot,
            (started.client, started.send),
            started.interrupt,
            started.quiet,
        )
        .await?;
        let users = Arc::new(users);
        Ok(Sending {
            operation: by_action(ApplyRows::Changed(PatchChanged {
                skip_unchanged,
                undo: undo.clone(),
                allow_number_changes,
                snapshot: Some(Arc::clone(&users)),
            })),
            keep_body: true,
            live: Some(Arc::new(LiveCheck {
                users,
                allow_number_changes,
                skip_unchanged,
                undo,
                current_user,
            })),
            extra: Vec::new(),
        })
    })
}

/// The arguments of `apply`, with its help (the command's, in `--help`).
pub(crate) type Args = crate::cli::ApplyArgs;

impl super::Run for Args {
    fn no_progress(&self) -> bool {
        self.output.no_progress
    }

    fn run(self) -> Result<Exit, Fatal> {
        run(self)
    }
}
