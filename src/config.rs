//! Checked settings. `cli` holds what was typed; this module turns it into
//! real types once (a delimiter byte, an encoding, a results target), and
//! refuses what cannot work with a message that says what to type instead.

use std::ffi::OsStr;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use encoding_rs::Encoding;
use rand::RngExt;

use crate::cli::{InputArgs, OutputArgs, SandboxArgs};
use crate::error::Fatal;
use crate::sandbox::{Faults, SandboxConfig};

/// Where the rows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    Stdin,
    File(PathBuf),
}

impl InputSource {
    /// How messages name the input.
    pub fn display_path(&self) -> PathBuf {
        match self {
            InputSource::Stdin => PathBuf::from("<stdin>"),
            InputSource::File(path) => path.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct InputConfig {
    pub source: InputSource,
    /// `None`: guess from the header line (comma, else semicolon or tab).
    pub delimiter: Option<u8>,
    /// `None`: UTF-8, checked row by row (a UTF-16 byte-order mark is honoured).
    pub encoding: Option<&'static Encoding>,
    pub null_token: String,
    pub ignore_unknown_columns: bool,
}

impl InputConfig {
    pub fn from_args(args: &InputArgs) -> Result<Self, Fatal> {
        let source = if args.path.as_os_str() == "-" {
            InputSource::Stdin
        } else {
            InputSource::File(args.path.clone())
        };
        let delimiter = args.delimiter.as_deref().map(parse_delimiter).transpose()?;
        let encoding = args.encoding.as_deref().map(parse_encoding).transpose()?;
        let null_token = args.null_token.trim().to_string();
        if null_token.is_empty() {
            return Err(Fatal::Usage(
                "--null-token cannot be empty: an empty cell already means \"leave unchanged\""
                    .to_string(),
            ));
        }
        Ok(InputConfig {
            source,
            delimiter,
            encoding: encoding.flatten(),
            null_token,
            ignore_unknown_columns: args.ignore_unknown_columns,
        })
    }
}

fn parse_delimiter(text: &str) -> Result<u8, Fatal> {
    match text {
        "," | "comma" => Ok(b','),
        ";" | "semicolon" => Ok(b';'),
        "|" | "pipe" => Ok(b'|'),
        "\t" | "\\t" | "tab" => Ok(b'\t'),
        other => Err(Fatal::Usage(format!(
            "--delimiter {other:?} is not supported; use one of ',' ';' '|' 'tab'"
        ))),
    }
}

/// `Some(None)` is UTF-8: no transcoding, invalid bytes reported per row.
fn parse_encoding(label: &str) -> Result<Option<&'static Encoding>, Fatal> {
    match Encoding::for_label(label.trim().as_bytes()) {
        Some(encoding) if encoding == encoding_rs::UTF_8 => Ok(None),
        Some(encoding) => Ok(Some(encoding)),
        None => Err(Fatal::Usage(format!(
            "--encoding {label:?} is not a known encoding; try utf-8, windows-1252 (Excel on Western \
             Windows), windows-1251 (Cyrillic) or utf-16"
        ))),
    }
}

/// Where the results file goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    Stdout,
    File(PathBuf),
}

impl OutputTarget {
    pub fn from_args(args: &OutputArgs, input: &InputSource) -> Result<Self, Fatal> {
        let target = match &args.output {
            Some(path) if path.as_os_str() == "-" => OutputTarget::Stdout,
            Some(path) => OutputTarget::File(path.clone()),
            None => OutputTarget::File(default_output(input)),
        };
        if let (OutputTarget::File(out), InputSource::File(inp)) = (&target, input)
            && same_file(out, inp)
        {
            return Err(Fatal::Usage(format!(
                "the results file {} is the input file; choose another with -o",
                out.display()
            )));
        }
        Ok(target)
    }

    pub fn display_path(&self) -> PathBuf {
        match self {
            OutputTarget::Stdout => PathBuf::from("<stdout>"),
            OutputTarget::File(path) => path.clone(),
        }
    }
}

/// `<input stem>.results.csv` in the current directory; `stdin.results.csv`
/// when the input is standard input.
fn default_output(input: &InputSource) -> PathBuf {
    let stem = match input {
        InputSource::Stdin => OsStr::new("stdin"),
        InputSource::File(path) => path.file_stem().unwrap_or(OsStr::new("input")),
    };
    let mut name = stem.to_os_string();
    name.push(".results.csv");
    PathBuf::from(name)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The `sandbox` command's settings, checked.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    pub listen: SocketAddr,
    pub config: SandboxConfig,
    pub key_source: KeySource,
}

/// Where the sandbox's key came from, which decides whether it is printed:
/// a key taken from the environment may be a real one and is not shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    Flag,
    Environment,
    Generated,
}

impl SandboxSettings {
    /// `env_key` is the value of `GCORE_API_KEY`, passed in so tests need no
    /// environment.
    pub fn from_args(args: &SandboxArgs, env_key: Option<String>) -> Result<Self, Fatal> {
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
        let config = SandboxConfig {
            users: args.users,
            api_key,
            seed: args.seed,
            faults: Faults {
                rate,
                latency_ms: args.latency_ms,
                jitter_ms: args.jitter_ms,
                error_rate: args.error_rate,
                drop_rate: args.drop_rate,
                slow_rate: args.slow_rate,
                slow_ms: args.slow_ms,
            },
        };
        config.check().map_err(Fatal::Usage)?;
        Ok(SandboxSettings {
            listen,
            config,
            key_source,
        })
    }
}

fn parse_listen(text: &str) -> Result<SocketAddr, Fatal> {
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

fn random_key() -> String {
    let suffix: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("sandbox-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters() {
        for (text, want) in [
            (",", b','),
            (";", b';'),
            ("tab", b'\t'),
            ("\\t", b'\t'),
            ("|", b'|'),
        ] {
            assert_eq!(parse_delimiter(text).unwrap(), want, "{text}");
        }
        let error = parse_delimiter("::").unwrap_err().to_string();
        assert!(error.contains("use one of"), "{error}");
    }

    #[test]
    fn encodings() {
        assert_eq!(parse_encoding("UTF-8").unwrap(), None);
        assert_eq!(
            parse_encoding("cp1252").unwrap(),
            Some(encoding_rs::WINDOWS_1252)
        );
        assert_eq!(
            parse_encoding("latin1").unwrap(),
            Some(encoding_rs::WINDOWS_1252)
        );
        assert!(
            parse_encoding("klingon")
                .unwrap_err()
                .to_string()
                .contains("windows-1252")
        );
    }

    #[test]
    fn default_output_is_named_after_the_input_in_the_current_directory() {
        let input = InputSource::File(PathBuf::from("/data/batch.csv"));
        assert_eq!(default_output(&input), PathBuf::from("batch.results.csv"));
        assert_eq!(
            default_output(&InputSource::Stdin),
            PathBuf::from("stdin.results.csv")
        );
    }
}

#[cfg(test)]
mod sandbox_tests {
    use super::*;
    use clap::Parser;

    fn settings(args: &[&str], env_key: Option<&str>) -> Result<SandboxSettings, String> {
        let mut argv = vec!["gcore-iam-bulk", "sandbox"];
        argv.extend_from_slice(args);
        let cli = crate::cli::Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        let crate::cli::Command::Sandbox(args) = cli.command else {
            unreachable!()
        };
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
