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
pub mod sandbox;
mod validate;

use std::process::ExitCode;

use cli::{Cli, Command};
use config::{InputConfig, KeySource, OutputTarget, SandboxSettings};
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
        Command::Sandbox(args) => {
            let env_key = std::env::var("GCORE_API_KEY").ok();
            let settings = SandboxSettings::from_args(&args, env_key)?;
            run_sandbox(settings)
        }
    }
}

/// Serves until Ctrl-C or SIGTERM, then exits 0.
fn run_sandbox(settings: SandboxSettings) -> Result<ExitCode, Fatal> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Fatal::Runtime { source })?;
    let SandboxSettings {
        listen,
        config,
        key_source,
    } = settings;
    let users = config.users;
    let seed = config.seed;
    let served = runtime.block_on(sandbox::serve_until_signal(config, listen, |sandbox| {
        let key = match key_source {
            KeySource::Generated | KeySource::Flag => sandbox.api_key().to_string(),
            KeySource::Environment => "(the value of GCORE_API_KEY)".to_string(),
        };
        println!("Sandbox of the Gcore IAM users API: {users} users (seed {seed})");
        println!("  base URL: {}", sandbox.base_url());
        println!("  API key:  {key}");
        println!(
            "Stats at {}/sandbox/stats. Stop with Ctrl-C.",
            sandbox.base_url()
        );
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }));
    served.map_err(|source| Fatal::Listen {
        addr: listen,
        source,
    })?;
    eprintln!("sandbox stopped");
    Ok(ExitCode::SUCCESS)
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
