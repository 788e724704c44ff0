use std::process::ExitCode;

use clap::Parser;
use gcore_iam_bulk::cli::Cli;

/// Requests are built on one thread and their buffers freed on another;
/// mimalloc handles that far better than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match gcore_iam_bulk::run(cli) {
        Ok(code) => code,
        Err(fatal) => {
            eprintln!("error: {}", gcore_iam_bulk::error_chain(&fatal));
            ExitCode::from(fatal.exit_code())
        }
    }
}
