//! gcore-iam-bulk: bulk changes to the users of a Gcore account, from a CSV file.
//!
//! `main` parses the command line and calls [`run`]; everything else lives
//! here so that tests can drive it in-process.

pub mod api;
pub mod check;
pub mod cli;
pub mod config;
pub mod error;
pub mod input;
pub mod patch;
pub mod results;
mod validate;

use std::process::ExitCode;

use cli::{Cli, Command};
use config::{InputConfig, OutputTarget};
use error::Fatal;

/// Runs one command. `Ok` carries the exit code of a run that went to the
/// end (0 or 1); `Err` is a fatal error, exit code 2.
pub fn run(cli: Cli) -> Result<ExitCode, Fatal> {
    match cli.command {
        Command::Validate(args) => {
            let input = InputConfig::from_args(&args.input)?;
            let output = OutputTarget::from_args(&args.output, &input.source)?;
            validate::run(&input, &output, args.output.quiet)
        }
        Command::Apply(args) => {
            let input = InputConfig::from_args(&args.input)?;
            let output = OutputTarget::from_args(&args.output, &input.source)?;
            if !args.dry_run {
                return Err(Fatal::Usage(
                    "sending is not available in this version yet; use `apply --dry-run` or `validate`"
                        .to_string(),
                ));
            }
            validate::run(&input, &output, args.output.quiet)
        }
        Command::Sandbox(_) => Err(Fatal::Usage(
            "the sandbox is not available in this version yet".to_string(),
        )),
    }
}

/// An error and its causes on one line: `cannot read x.csv: No such file or directory`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
