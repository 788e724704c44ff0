use std::process::ExitCode;

use clap::Parser;
use gcore_iam_bulk::cli::Cli;
use gcore_iam_bulk::error::error_chain;

/// Requests are built on one thread and their buffers freed on another;
/// mimalloc handles that far better than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match gcore_iam_bulk::run(cli) {
        Ok(exit) => exit.into(),
        Err(fatal) => {
            eprintln!("error: {}", error_chain(&fatal));
            fatal.exit().into()
        }
    }
}
