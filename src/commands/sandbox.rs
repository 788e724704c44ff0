//! `sandbox`: serve a local stand-in of the API until Ctrl-C or SIGTERM; and
//! the in-process sandbox that `apply --sandbox` rehearses against.

use std::io::Write;
use std::net::SocketAddr;

use super::runtime;
use crate::cli::SandboxArgs;
use crate::error::Fatal;
use crate::exit::Exit;
use crate::sandbox::{self, RunningSandbox, SandboxConfig};
use crate::settings::{KeySource, SandboxSettings, random_key};

/// Serves until Ctrl-C or SIGTERM, then exits 0.
pub fn run(args: &SandboxArgs) -> Result<Exit, Fatal> {
    let env_key = std::env::var("GCORE_API_KEY").ok();
    let SandboxSettings {
        listen,
        config,
        key_source,
    } = SandboxSettings::from_args(args, env_key)?;
    let (users, seed) = (config.users, config.seed);
    let served = runtime(false)?.block_on(sandbox::serve_until_signal(config, listen, |sandbox| {
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
        let _ = std::io::stdout().flush();
    }));
    served.map_err(|source| Fatal::Listen {
        addr: listen,
        source,
    })?;
    eprintln!("sandbox stopped");
    Ok(Exit::Success)
}

/// Starts the in-process sandbox of `apply --sandbox` on a free loopback port.
pub async fn rehearsal(users: u64, quiet: bool) -> Result<RunningSandbox, Fatal> {
    if !(1..=sandbox::MAX_USERS).contains(&users) {
        return Err(Fatal::Usage(format!(
            "--sandbox-users {users} is out of range; use 1 to {}",
            sandbox::MAX_USERS
        )));
    }
    let config = SandboxConfig {
        users,
        api_key: random_key(),
        ..SandboxConfig::default()
    };
    config.check().map_err(Fatal::Usage)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
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
