//! gcore-iam-bulk: bulk changes to the users of a Gcore account, from a CSV file.
//!
//! `main` parses the command line and calls [`run`]; everything else lives
//! here so that tests can drive it in-process. Data flows one way: settings,
//! input, check, engine, sink; `commands` wires them per subcommand.

/// `eprintln!` that never panics: a line for a stderr that is gone (a
/// pipe whose reader quit) is dropped, and the exit code still tells how
/// the run ended (`eprintln!` would end it with a panic, exit 101).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod check;
pub mod cli;
mod commands;
pub mod engine;
pub mod environment;
pub mod error;
pub mod exit;
pub mod files;
pub mod http;
pub mod model;
pub mod operations;
pub mod pipeline;
pub mod policy;
pub mod profile;
pub mod sandbox;
pub mod secret;
pub mod settings;
pub mod signals;
pub mod sink;
pub mod table;
pub mod visible;

pub use commands::{Cli, Command};
use error::Fatal;
use exit::Exit;

/// Runs one command. `Ok` says how a run that went to its end ended; `Err`
/// is a fatal error ([`Exit::CannotStart`]).
pub fn run(cli: Cli) -> Result<Exit, Fatal> {
    commands::run(cli)
}
