use std::process::ExitCode;

use clap::Parser;
use gcore_iam_bulk::Cli;
use gcore_iam_bulk::error::error_chain;

/// Requests are built on one thread and their buffers freed on another;
/// mimalloc handles that far better than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Under a file-size limit (`ulimit -f`), a write past it must fail as
    // an error the run reports (the file named, exit 2 or 74), not kill
    // the process with SIGXFSZ halfway through a file.
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to "ignore" before any thread
    // starts; no handler runs.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    // Started as the workbook reader of a run: read it, and nothing else.
    if let Some(code) = gcore_iam_bulk::table::isolated::child_main() {
        return code;
    }
    // This very program, even if its file was replaced while it runs.
    let this = std::path::PathBuf::from("/proc/self/exe");
    let program = match cfg!(target_os = "linux") && this.exists() {
        true => Some(this),
        false => std::env::current_exe().ok(),
    };
    if let Some(program) = program {
        gcore_iam_bulk::table::isolated::isolate_in(program);
    }
    let cli = Cli::parse();
    match gcore_iam_bulk::run(cli) {
        Ok(exit) => exit.into(),
        Err(fatal) => {
            gcore_iam_bulk::say!("error: {}", one_line(&error_chain(&fatal)));
            fatal.exit().into()
        }
    }
}

/// A fatal message is one line of bounded length, whatever it quotes, with
/// what would act on the terminal shown instead.
fn one_line(text: &str) -> String {
    const MAX: usize = 2000;
    let line = gcore_iam_bulk::visible::visible(text).into_owned();
    match gcore_iam_bulk::visible::prefix(&line, MAX) {
        Some(prefix) => format!("{prefix}… (cut)"),
        None => line,
    }
}
