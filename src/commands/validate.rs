//! `validate` and `apply --dry-run`: check every row and write the results
//! file with the body each valid row would send. Nothing is sent.

use std::path::Path;

use super::Next;
use super::rows::{Keeps, RowsFlags, RowsRun, Sending, Started};
use crate::cli::{InputArgs, OutputArgs};
use crate::error::Fatal;
use crate::exit::Exit;
use crate::operations::patch::PatchRows;
use crate::settings::RESULTS_SUFFIX;

/// `summary_json`: also write the summary there; `command`: what the
/// user ran (`validate`, or `apply` for `apply --dry-run`).
pub(super) fn run(
    input: &InputArgs,
    output: &OutputArgs,
    summary_json: Option<&Path>,
    command: &'static str,
) -> Result<Exit, Fatal> {
    let run = RowsRun::new(
        RowsFlags {
            command,
            input,
            output,
            sending: None,
            summary_json,
            suffix: RESULTS_SUFFIX,
            next: Next::Nothing,
            keeps: Keeps::Record(Default::default()),
            rehearsal: None,
            members: Default::default(),
        },
        PatchRows,
    )?;
    // The dry run of apply's operation: without a sender it is never
    // started, and every valid row is decided at once.
    run.send_rows(async |_: &mut Started<'_>| {
        Ok(Sending {
            operation: PatchRows,
            keep_body: false,
            live: None,
            extra: Vec::new(),
        })
    })
}

/// The arguments of `validate`, with its help (the command's, in `--help`).
pub(crate) type Args = crate::cli::ValidateArgs;

impl super::Run for Args {
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
