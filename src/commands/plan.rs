//! `plan`: check every row as `validate` does, then read each valid row's
//! user and write what the row would change (`would_update` and the
//! `changes` column) or that the user already has every value
//! (`unchanged`). Only GETs are sent.

use std::time::SystemTime;

use super::rows::{RowsFlags, RowsRun, Sending, Started};
use super::{Next, live_snapshot};
use crate::cli::PlanArgs;
use crate::error::Fatal;
use crate::exit::Exit;
use crate::operations::plan::PlanRows;
use crate::settings::PLAN_SUFFIX;
use crate::sink::Keeping;

pub(super) fn run(mut args: PlanArgs) -> Result<Exit, Fatal> {
    // A plan or a dry run is replaced; the record of a run that sent
    // changes only with --overwrite, even under the plan's default name.
    let mut run = RowsRun::new(RowsFlags {
        command: "plan",
        input: &args.input,
        output: &args.output,
        sending: Some((&args.api, &mut args.run)),
        summary_json: None,
        suffix: PLAN_SUFFIX,
        next: Next::Nothing,
    })?;
    run.changes_exit = args.exit_code;
    let allow_number_changes = args.allow_number_changes;
    run.send_rows(PlanRows::default(), async |started: &mut Started<'_>| {
        let snapshot = live_snapshot(
            started.first.users.take(),
            &started.first.preflight,
            started.client,
            started.send,
            started.interrupt,
            started.quiet,
        )
        .await?;
        // When, and how many rows: a plan cut at its end is seen.
        let planned_at = format!(
            "{}; {} rows",
            httpdate::fmt_http_date(SystemTime::now()),
            started.first.preflight.rows
        );
        Ok(Sending {
            operation: PlanRows {
                snapshot,
                allow_number_changes,
            },
            keeping: Keeping::Plan(planned_at),
            keep_body: true,
        })
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
