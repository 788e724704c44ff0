//! `sandbox`: serve a local stand-in of the API until Ctrl-C or SIGTERM; and
//! the in-process sandbox that `apply --sandbox` rehearses against.

use std::io::Write;
use std::net::SocketAddr;

use super::{Threads, runtime};
use crate::cli::SandboxArgs;
use crate::error::Fatal;
use crate::exit::Exit;
use crate::sandbox::{self, Keeper, RunningSandbox, SandboxConfig};
use crate::settings::{KeySource, SandboxSettings, random_key};

/// Serves until Ctrl-C or SIGTERM, then exits 0.
pub(super) fn run(args: &SandboxArgs) -> Result<Exit, Fatal> {
    let env_key = std::env::var("GCORE_API_KEY").ok();
    let SandboxSettings {
        listen,
        config,
        key_source,
        state,
        resumed,
    } = SandboxSettings::from_args(args, env_key)?;
    let (users, seed) = (config.users, config.seed);
    // One sandbox keeps its users in a state file at a time: a second one
    // would write over the first's changes.
    let lock = state.as_deref().map(lock_state).transpose()?;
    // The authority's certificate, for clients to trust; removed at the end.
    let mut ca_file = None;
    // `--state`: the users written again within 2 s of a change, and when
    // the sandbox stops.
    let mut kept = None;
    let keep = state.as_ref().map(|path| {
        let path = path.clone();
        let tick = move |keeper: &Keeper| {
            let changes = keeper.changes();
            if kept == Some(changes) {
                return;
            }
            match write_state(&path, &keeper.users_json()) {
                Ok(()) => kept = Some(changes),
                Err(error) => crate::say!(
                    "error: cannot keep the sandbox's users in {}: {error}",
                    path.display()
                ),
            }
        };
        (STATE_EVERY, tick)
    });
    let served = runtime(Threads::PerCore)?.block_on(sandbox::serve_until_signal(
        config,
        listen,
        args.tls,
        |sandbox| {
            if let Some(pem) = sandbox.ca_pem() {
                ca_file = Some(write_ca_file(pem)?);
            }
            let key = match key_source {
                KeySource::Generated | KeySource::Flag => sandbox.api_key().to_string(),
                KeySource::Environment => "(the value of GCORE_API_KEY)".to_string(),
            };
            match (&state, resumed) {
                (Some(path), true) => println!(
                    "Sandbox of the Gcore IAM users API: {users} users, as kept in {} (remove \
                     it to start afresh)",
                    path.display()
                ),
                _ => match &args.users_file {
                    Some(file) => println!(
                        "Sandbox of the Gcore IAM users API: {users} users from {}",
                        file.display()
                    ),
                    None => {
                        println!("Sandbox of the Gcore IAM users API: {users} users (seed {seed})")
                    }
                },
            }
            println!("  base URL: {}", sandbox.base_url());
            println!("  API key:  {key}");
            if let Some(file) = &ca_file {
                println!(
                    "  CA certificate: {} (trust it with --ca-cert; removed when the sandbox stops)",
                    file.path().display()
                );
            }
            if let Some(path) = &state {
                println!("  users kept in: {}", path.display());
            }
            // What a shell needs to point the tool at it (a key from the
            // environment is not shown: it is set already).
            // Quoted for the shell: a key with `&` or `$` pasted bare
            // would run `export` in the background, or lose its `$...`.
            let quoted = |text: &str| {
                shlex::try_quote(text).map_or_else(|_| "''".to_string(), |quoted| quoted.into())
            };
            println!("To use it from another shell:");
            println!(
                "  export GCORE_BASE_URL={}",
                quoted(&sandbox.base_url())
            );
            match key_source {
                KeySource::Environment => {
                    println!("  (GCORE_API_KEY: the one this sandbox was started with)")
                }
                _ => println!("  export GCORE_API_KEY={}", quoted(&key)),
            }
            if let Some(file) = &ca_file {
                println!(
                    "  export GCORE_CA_CERT={}",
                    quoted(&file.path().display().to_string())
                );
            }
            println!(
                "Stats at {}/sandbox/stats. Stop with Ctrl-C.",
                sandbox.base_url()
            );
            let _ = std::io::stdout().flush();
            Ok(())
        },
        keep,
    ));
    drop(ca_file);
    if let (Some(path), Some(_)) = (&state, lock) {
        let _ = std::fs::remove_file(lock_path(path));
    }
    served.map_err(|source| match source.kind() {
        // Another sandbox (or anything else) has the port: say how to get
        // a free one.
        std::io::ErrorKind::AddrInUse => Fatal::Usage(format!(
            "cannot serve the sandbox on {listen}: the port is in use (another sandbox?); \
             pass --listen 127.0.0.1:0 for a free port (the one taken is printed)"
        )),
        _ => Fatal::Listen {
            addr: listen,
            source,
        },
    })?;
    match &state {
        Some(path) => crate::say!("sandbox stopped; its users are kept in {}", path.display()),
        None => crate::say!("sandbox stopped"),
    }
    Ok(Exit::Success)
}

/// Where a sandbox that keeps its users in `state` holds its lock.
fn lock_path(state: &std::path::Path) -> std::path::PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(".lock");
    name.into()
}

/// Takes the lock of the state file, or says which sandbox holds it.
fn lock_state(state: &std::path::Path) -> Result<std::fs::File, Fatal> {
    let path = lock_path(state);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|error| {
            Fatal::Usage(format!(
                "--state {}: cannot take its lock {} ({error})",
                state.display(),
                path.display()
            ))
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Fatal::Usage(format!(
            "--state {}: another sandbox keeps its users there; stop it first, or give \
             --state another file",
            state.display()
        ))),
        Err(std::fs::TryLockError::Error(error)) => Err(Fatal::Usage(format!(
            "--state {}: cannot take its lock {} ({error})",
            state.display(),
            path.display()
        ))),
    }
}

/// How often `--state` looks for changes to write.
const STATE_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Writes `json` to `path` whole: a new file beside it, then renamed over
/// it, so that a sandbox killed meanwhile leaves the last state whole.
fn write_state(path: &std::path::Path, json: &str) -> std::io::Result<()> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => std::path::Path::new("."),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".gcore-iam-bulk-state-")
        .tempfile_in(folder)?;
    file.write_all(json.as_bytes())?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|error| error.error)?;
    Ok(())
}

/// The sandbox's CA certificate in a file of its own in the temporary
/// folder, readable by anyone (it is public), deleted when dropped.
fn write_ca_file(pem: &str) -> std::io::Result<tempfile::NamedTempFile> {
    let write = || {
        let mut file = tempfile::Builder::new()
            .prefix("gcore-iam-bulk-sandbox-ca-")
            .suffix(".pem")
            .tempfile()?;
        file.write_all(pem.as_bytes())?;
        file.flush()?;
        Ok::<_, std::io::Error>(file)
    };
    write().map_err(|e| {
        std::io::Error::other(format!(
            "cannot write the CA certificate in {}: {e}",
            std::env::temp_dir().display()
        ))
    })
}

/// Starts the in-process sandbox of `apply --sandbox` on a free loopback
/// port, speaking HTTPS when `tls`.
pub(super) async fn rehearsal(users: u64, tls: bool, quiet: bool) -> Result<RunningSandbox, Fatal> {
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
    let started = match tls {
        true => sandbox::start_tls(config, addr).await,
        false => sandbox::start(config, addr).await,
    };
    let running = started.map_err(|source| Fatal::Listen { addr, source })?;
    if !quiet {
        crate::say!(
            "rehearsal: sending to a local sandbox of the API with {users} users at {}; \
             nothing leaves this machine",
            running.base_url()
        );
    }
    Ok(running)
}

/// The arguments of `sandbox`, with its help (the command's, in `--help`).
pub(crate) type Args = crate::cli::SandboxArgs;

impl super::Run for Args {
    fn run(self) -> Result<Exit, Fatal> {
        run(&self)
    }
}
