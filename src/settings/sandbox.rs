//! The `sandbox` command's settings, checked.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use rand::RngExt;

use crate::cli::SandboxArgs;
use crate::error::Fatal;
use crate::sandbox::{Faults, SandboxConfig};

/// The `sandbox` command's settings, checked.
#[derive(Debug, Clone)]
pub(crate) struct SandboxSettings {
    pub listen: SocketAddr,
    pub config: SandboxConfig,
    pub(crate) key_source: KeySource,
    /// `--state FILE`: where the users are kept across restarts.
    pub(crate) state: Option<PathBuf>,
    /// Whether the users come from the state an earlier sandbox kept.
    pub(crate) resumed: bool,
}

/// Where the sandbox's key came from, which decides whether it is printed:
/// a key taken from the environment may be a real one and is not shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeySource {
    Flag,
    Environment,
    Generated,
}

impl SandboxSettings {
    /// `env_key` is the value of `GCORE_API_KEY`, passed in so tests need no
    /// environment.
    pub(crate) fn from_args(args: &SandboxArgs, env_key: Option<String>) -> Result<Self, Fatal> {
        let listen = parse_listen(&args.listen)?;
        let (api_key, key_source) = match (&args.api_key, env_key) {
            (Some(key), _) => (key.clone(), KeySource::Flag),
            (None, Some(key)) if !key.trim().is_empty() => {
                (key.trim().to_string(), KeySource::Environment)
            }
            (None, _) => (random_key(), KeySource::Generated),
        };
        let rate = args.rate.map(|rate| {
            let burst = args
                .burst
                .unwrap_or_else(|| rate.ceil().clamp(1.0, u32::MAX as f64) as u32);
            (rate, burst)
        });
        if let Some(path) = &args.state {
            check_state_path(path, args.users_file.as_deref())?;
        }
        // A state kept by an earlier run wins: its users are the account
        // as that run left it.
        let state = match &args.state {
            Some(path) if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) => Some(path),
            _ => None,
        };
        let given = match (state, &args.users_file) {
            (Some(path), _) => Some(std::sync::Arc::new(
                crate::sandbox::given::read(path).map_err(|why| {
                    Fatal::Usage(format!(
                        "--state {}: {why}; if an earlier sandbox kept its users there and you \
                         want to start afresh, remove it; else give --state another file",
                        path.display()
                    ))
                })?,
            )),
            (None, Some(path)) => Some(std::sync::Arc::new(read_users_file(path)?)),
            (None, None) => None,
        };
        let config = SandboxConfig {
            users: given
                .as_ref()
                .map_or(args.users, |given| given.len() as u64),
            given,
            api_key,
            seed: args.seed,
            faults: Faults {
                rate,
                rate_status: args.rate_status.as_deref().and_then(|s| s.parse().ok()),
                retry_after_ms: args.retry_after_ms,
                no_retry_after: args.no_retry_after,
                latency_ms: args.latency_ms,
                jitter_ms: args.jitter_ms,
                error_rate: args.error_rate,
                drop_rate: args.drop_rate,
                slow_rate: args.slow_rate,
                slow_ms: args.slow_ms,
                list_omit: args.list_omit.clone(),
                list_churn: args.list_churn,
                list_count: args.list_count,
                throttle_share: args.throttle_share,
                throttle_every: args.throttle_every,
                window: args.quota,
            },
        };
        config.check().map_err(Fatal::Usage)?;
        Ok(SandboxSettings {
            listen,
            config,
            key_source,
            state: args.state.clone(),
            resumed: state.is_some(),
        })
    }
}

/// `--state FILE` is a file of its own that only a sandbox wrote: not the
/// users file, no device or folder, in a folder that takes a new file, and,
/// when it holds something, a JSON list (a CSV there is someone's export,
/// plan or undo file, which the sandbox would replace with its users).
fn check_state_path(path: &Path, users_file: Option<&Path>) -> Result<(), Fatal> {
    let usage = |why: String| Fatal::Usage(format!("--state {} {why}", path.display()));
    crate::settings::refuse_special(
        path,
        "--state",
        "the users are kept in a file of their own: name one (state.json)",
    )?;
    if let Some(users_file) = users_file
        && crate::settings::same_file(path, users_file)
    {
        return Err(usage(
            "is also the --users-file; the state is the sandbox's own file, written over as \
             the users change: give it another name (state.json)"
                .to_string(),
        ));
    }
    if let Ok(start) = crate::files::read_start(path, 4096) {
        let first = start.iter().find(|byte| !byte.is_ascii_whitespace());
        if first.is_some_and(|byte| *byte != b'[') {
            return Err(usage(
                "holds something other than the users a sandbox kept (a JSON list): it may \
                 be an export, a plan or an undo file, which the sandbox would replace; give \
                 --state a new file (state.json)"
                    .to_string(),
            ));
        }
    }
    crate::settings::probe_folder(path).map_err(|error| {
        usage(format!(
            "cannot be written: its folder takes no new file ({error}); the users would be \
             kept nowhere"
        ))
    })
}

/// `--users-file`: JSON or an `export` CSV ([`crate::sandbox::given::read`]),
/// or a workbook that `export` wrote, read as any input workbook is (in a
/// child process, under the same bounds) and then as its CSV.
fn read_users_file(path: &Path) -> Result<Vec<crate::model::api::User>, Fatal> {
    let fail = |why: String| Fatal::Usage(format!("--users-file {}: {why}", path.display()));
    let start = {
        use std::io::Read;
        let mut start = [0u8; 8];
        let read = std::fs::File::open(path).and_then(|mut file| file.read(&mut start));
        start[..read.unwrap_or(0)].to_vec()
    };
    if !crate::table::sheet::looks_like_workbook(&start) {
        return crate::sandbox::given::read(path).map_err(fail);
    }
    let input = crate::table::input::Input::open(&crate::table::input::InputSettings {
        source: crate::table::input::InputSource::File(path.to_path_buf()),
        delimiter: None,
        encoding: None,
        null_token: "#null".to_string(),
        ignore_unknown_columns: true,
        sheet: None,
        send_hidden_cells: true,
    })?;
    let text = input
        .text(crate::sandbox::given::MAX_FILE_BYTES)?
        .ok_or_else(|| {
            fail(format!(
                "its sheet is over {} bytes as CSV (a million users)",
                crate::sandbox::given::MAX_FILE_BYTES
            ))
        })?;
    crate::sandbox::given::from_export(&text).map_err(fail)
}

pub(super) fn parse_listen(text: &str) -> Result<SocketAddr, Fatal> {
    let usage = || {
        Fatal::Usage(format!(
            "--listen {text:?} is not an address to listen on; use HOST:PORT such as 127.0.0.1:8080 \
             (port 0 picks a free port)"
        ))
    };
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    // `localhost:8080` and the like; resolved from the hosts file.
    text.to_socket_addrs()
        .map_err(|_| usage())?
        .next()
        .ok_or_else(usage)
}

pub(crate) fn random_key() -> String {
    let suffix: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("sandbox-{suffix}")
}

#[cfg(test)]
mod sandbox_tests {
    use super::*;
    use clap::Parser;

    fn settings(args: &[&str], env_key: Option<&str>) -> Result<SandboxSettings, String> {
        /// The sandbox's flags alone, as clap reads them.
        #[derive(clap::Parser)]
        struct Sandbox {
            #[command(flatten)]
            args: SandboxArgs,
        }
        let mut argv = vec!["sandbox"];
        argv.extend_from_slice(args);
        let args = Sandbox::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .args;
        SandboxSettings::from_args(&args, env_key.map(str::to_string)).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let s = settings(&[], None).unwrap();
        assert_eq!(s.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(s.config.users, 1000);
        assert_eq!(s.config.seed, 1);
        assert_eq!(s.key_source, KeySource::Generated);
        assert!(s.config.api_key.starts_with("sandbox-"));
        assert_ne!(
            settings(&[], None).unwrap().config.api_key,
            s.config.api_key
        );
        assert!(s.config.faults.rate.is_none());
    }

    #[test]
    fn the_key_comes_from_the_flag_then_the_environment() {
        let s = settings(&["--api-key", "flag"], Some("env")).unwrap();
        assert_eq!(
            (s.config.api_key.as_str(), s.key_source),
            ("flag", KeySource::Flag)
        );
        let s = settings(&[], Some("env")).unwrap();
        assert_eq!(
            (s.config.api_key.as_str(), s.key_source),
            ("env", KeySource::Environment)
        );
        let s = settings(&[], Some("  ")).unwrap();
        assert_eq!(s.key_source, KeySource::Generated);
        assert!(!format!("{s:?}").contains("flag"));
    }

    #[test]
    fn faults_are_checked() {
        let s = settings(
            &[
                "--rate",
                "2.5",
                "--error-rate",
                "1",
                "--listen",
                "localhost:0",
            ],
            None,
        )
        .unwrap();
        assert_eq!(s.config.faults.rate, Some((2.5, 3)));
        assert_eq!(s.config.faults.error_rate, 1.0);
        assert_eq!(s.listen.port(), 0);
        let s = settings(&["--rate", "5", "--burst", "1"], None).unwrap();
        assert_eq!(s.config.faults.rate, Some((5.0, 1)));
        let cases: &[(&[&str], &str)] = &[
            (&["--error-rate", "1.5"], "--error-rate 1.5 is not a share"),
            (&["--drop-rate=-0.1"], "--drop-rate -0.1 is not a share"),
            (&["--slow-rate", "NaN"], "--slow-rate NaN is not a share"),
            (&["--rate", "0"], "--rate 0 must be"),
            (&["--rate", "inf"], "--rate inf must be"),
            (
                &["--rate", "5", "--burst", "0"],
                "--burst must be at least 1",
            ),
            (&["--burst", "5"], "--rate"),
            (&["--users", "0"], "--users 0 is out of range"),
            (
                &["--listen", "nowhere"],
                "--listen \"nowhere\" is not an address",
            ),
            (&["--api-key", "a b"], "no spaces"),
        ];
        for (args, want) in cases {
            let error = settings(args, None).unwrap_err();
            assert!(error.contains(want), "{args:?}: {error}");
        }
    }
}
