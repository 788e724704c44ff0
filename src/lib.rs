//! gcore-iam-bulk: bulk changes to the users of a Gcore account, from a CSV file.
//!
//! `main` parses the command line and calls [`run`]; everything else lives
//! here so that tests can drive it in-process.

pub mod api;
mod apply;
pub mod check;
pub mod cli;
pub mod client;
pub mod config;
pub mod error;
pub mod input;
pub mod patch;
pub mod results;
pub mod runner;
pub mod sandbox;
mod validate;

use std::process::ExitCode;

use cli::{Cli, Command};
use config::{ApiConfig, InputConfig, KeySource, OutputTarget, RunConfig, SandboxSettings};
use error::Fatal;

/// Runs one command. `Ok` carries the exit code of a run that went to the
/// end (0 or 1); `Err` is a fatal error, exit code 2.
pub fn run(cli: Cli) -> Result<ExitCode, Fatal> {
    match cli.command {
        Command::Validate(args) => {
            let input = InputConfig::from_args(&args.input)?;
            let output = OutputTarget::from_args(&args.output, &input.source)?;
            validate::run(&input, &output, args.output.quiet, None)
        }
        Command::Apply(args) => run_apply(args),
        Command::Sandbox(args) => {
            let env_key = std::env::var("GCORE_API_KEY").ok();
            let settings = SandboxSettings::from_args(&args, env_key)?;
            run_sandbox(settings)
        }
    }
}

/// `apply`: a dry run is `validate`; otherwise the run is sent, to the API or
/// to an in-process sandbox (`--sandbox`), on a tokio runtime.
fn run_apply(args: cli::ApplyArgs) -> Result<ExitCode, Fatal> {
    let input = InputConfig::from_args(&args.input)?;
    let output = OutputTarget::from_args(&args.output, &input.source)?;
    if args.dry_run {
        return validate::run(
            &input,
            &output,
            args.output.quiet,
            args.run.summary_json.as_deref(),
        );
    }
    let run_config = RunConfig::from_args(&args.run)?;
    if !args.sandbox && !args.overwrite {
        output.refuse_to_replace()?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Fatal::Runtime)?;
    runtime.block_on(async {
        let sandbox = if args.sandbox {
            Some(start_rehearsal(args.sandbox_users, args.output.quiet).await?)
        } else {
            None
        };
        let api = match &sandbox {
            Some(running) => {
                ApiConfig::for_sandbox(&args.api, &running.base_url(), running.api_key())?
            }
            None => ApiConfig::from_args(&args.api, |name| std::env::var(name).ok())?,
        };
        let code = apply::run(
            &input,
            &output,
            args.output.quiet,
            &api,
            &run_config,
            interrupted(),
        )
        .await;
        if let Some(running) = sandbox {
            running.stop().await;
        }
        code
    })
}

/// Serves until Ctrl-C or SIGTERM, then exits 0.
fn run_sandbox(settings: SandboxSettings) -> Result<ExitCode, Fatal> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Fatal::Runtime)?;
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

/// Starts the in-process sandbox of `apply --sandbox` on a free loopback port.
async fn start_rehearsal(users: u64, quiet: bool) -> Result<sandbox::RunningSandbox, Fatal> {
    if !(1..=sandbox::MAX_USERS).contains(&users) {
        return Err(Fatal::Usage(format!(
            "--sandbox-users {users} is out of range; use 1 to {}",
            sandbox::MAX_USERS
        )));
    }
    let config = sandbox::SandboxConfig {
        users,
        api_key: config::random_key(),
        ..sandbox::SandboxConfig::default()
    };
    config.check().map_err(Fatal::Usage)?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let running = sandbox::start(config, addr)
        .await
        .map_err(|source| Fatal::Listen { addr, source })?;
    if !quiet {
        eprintln!(
            "rehearsal: sending to a local sandbox of the API with {users} users at {}; \
             nothing leaves this machine",
            running.base_url()
        );
    }
    Ok(running)
}

/// Completes on the first Ctrl-C; the run then stops sending and still
/// writes every row. A second Ctrl-C ends the process at once (the default).
/// SIGTERM (cron's timeout, systemd, `kill`) counts as a first Ctrl-C.
async fn interrupted() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No signal handling here: never complete, the run goes to its end.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tokio::spawn(async {
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("interrupted again: quitting; the results file is incomplete");
        std::process::exit(130);
    });
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
