//! `plan`: check every row as `validate` does, then read each valid row's
//! user and write what the row would change (`would_update` and the
//! `changes` column) or that the user already has every value
//! (`unchanged`). Only GETs are sent.

use super::rows::{Keeps, RowsFlags, RowsRun, Sending, Started};
use super::{Next, live_snapshot};
use crate::cli::PlanArgs;
use crate::error::Fatal;
use crate::exit::Exit;
use crate::operations::plan::PlanRows;
use crate::settings::PLAN_SUFFIX;

pub(super) fn run(mut args: PlanArgs) -> Result<Exit, Fatal> {
    // A plan or a dry run is replaced; the record of a run that sent
    // changes only with --overwrite, even under the plan's default name.
    let mut run = RowsRun::new(
        RowsFlags {
            command: "plan",
            input: &args.input,
            output: &args.output,
            sending: Some((&args.api, &mut args.run)),
            summary_json: None,
            suffix: PLAN_SUFFIX,
            next: Next::Nothing,
            keeps: Keeps::Plan,
            rehearsal: None,
            members: (&args.members).into(),
        },
        PlanRows::default(),
    )?;
    run.changes_exit = args.exit_code;
    let allow_number_changes = args.allow_number_changes;
    run.send_rows(async |started: &mut Started<'_>| {
        let snapshot = live_snapshot(
            started.first.users.take(),
            &started.first.preflight,
            started.client,
            started.send,
            started.interrupt,
            started.quiet,
        )
        .await?;
        Ok(Sending {
            operation: PlanRows {
                snapshot,
                allow_number_changes,
            },
            keep_body: true,
            live: None,
        })
    })
}

/// The arguments of `plan`, with its help (the command's, in `--help`).
pub(crate) type Args = crate::cli::PlanArgs;

impl super::Run for Args {
    fn no_progress(&self) -> bool {
        self.output.no_progress
    }

    fn run(self) -> Result<Exit, Fatal> {
        run(self)
    }
}
