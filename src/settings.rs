//! Checked settings: the only code that reads flags, the environment and
//! the key file. `cli` holds what was typed; this module turns it into real
//! types once (a delimiter byte, an encoding, a results target, a redacted
//! key, the send policy), and refuses what cannot work with a message that
//! says what to type instead.

use std::ffi::OsStr;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::time::Duration;

use encoding_rs::Encoding;
use rand::RngExt;
use reqwest::Url;
use rustls::pki_types::CertificateDer;

use crate::cli::{ApiArgs, InputArgs, OutputArgs, RunArgs, SandboxArgs};
use crate::error::Fatal;
use crate::policy::{MAX_CONCURRENCY, MAX_WINDOW, Rate, RetryPolicy, SendPolicy};
use crate::profile::{
    ChosenBy, DEFAULT_KEY_COMMAND_TIMEOUT, KeyFrom, Profile, key_path_shown, run_key_command,
};
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
pub struct InputSettings {
    pub source: InputSource,
    /// `None`: guess from the header line (comma, else semicolon or tab).
    pub delimiter: Option<u8>,
    /// `None`: UTF-8, checked row by row (a UTF-16 byte-order mark is honoured).
    pub encoding: Option<&'static Encoding>,
    pub null_token: String,
    pub ignore_unknown_columns: bool,
    /// The sheet of a workbook to read (the first visible one if `None`).
    pub sheet: Option<String>,
    /// Send what hidden cells of a workbook hold, rather than refuse it.
    pub send_hidden_cells: bool,
}

impl InputSettings {
    pub fn from_args(args: &InputArgs) -> Result<Self, Fatal> {
        let Some(path) = &args.path else {
            return Err(Fatal::Usage(
                "give the INPUT file of changes (or - for standard input)".to_string(),
            ));
        };
        let source = if path.as_os_str() == "-" {
            InputSource::Stdin
        } else {
            InputSource::File(path.clone())
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
        Ok(InputSettings {
            source,
            delimiter,
            encoding: encoding.flatten(),
            null_token,
            ignore_unknown_columns: args.ignore_unknown_columns,
            sheet: args.sheet.clone(),
            send_hidden_cells: args.send_hidden_cells,
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

/// Whether the file name says workbook (`.xlsx`, `.xlsm`, `.xlsb`, `.xls`,
/// `.ods`, any case): results and undo files, which are written as the run
/// goes, cannot be one; a CSV named `.xlsx` is read as a CSV, with a note.
pub fn named_like_workbook(path: &Path) -> bool {
    path.extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| {
            ["xlsx", "xlsm", "xlsb", "xls", "ods"]
                .iter()
                .any(|known| known.eq_ignore_ascii_case(ext))
        })
}

/// Where the results file goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    Stdout,
    File(PathBuf),
}

impl OutputTarget {
    /// `suffix` names the default file after the input's stem:
    /// [`RESULTS_SUFFIX`], or the own file of a plan or a rehearsal, never a
    /// real run's.
    pub fn from_args(args: &OutputArgs, input: &InputSource, suffix: &str) -> Result<Self, Fatal> {
        let target = match &args.output {
            Some(path) if path.as_os_str() == "-" => OutputTarget::Stdout,
            Some(path) => OutputTarget::File(path.clone()),
            None => OutputTarget::File(default_output(input, suffix)),
        };
        if let OutputTarget::File(out) = &target
            && named_like_workbook(out)
        {
            return Err(Fatal::Usage(format!(
                "{} is named like a workbook, but results are a CSV file: each row's record is \
                 written as the run goes, so that a crash loses none of it, and a workbook can \
                 only be written whole at the end; name it .csv (every spreadsheet opens it)",
                out.display()
            )));
        }
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

    /// The results of a run that sent changes are its only record of what was
    /// done; a later run does not replace them unless asked to.
    pub fn refuse_to_replace(&self) -> Result<(), Fatal> {
        match self {
            OutputTarget::File(path) if path.exists() => Err(Fatal::Usage(format!(
                "the results file {} already exists and may be the record of an earlier run; \
                 go on from it with --resume, move it away, choose another file with -o, or \
                 pass --overwrite",
                path.display()
            ))),
            _ => Ok(()),
        }
    }

    /// Whether the results go to a terminal (`-o -` without a redirection).
    pub fn on_terminal(&self) -> bool {
        use std::io::IsTerminal;
        matches!(self, OutputTarget::Stdout) && std::io::stdout().is_terminal()
    }

    pub fn display_path(&self) -> PathBuf {
        match self {
            OutputTarget::Stdout => PathBuf::from("<stdout>"),
            OutputTarget::File(path) => path.clone(),
        }
    }
}

/// The default results file of `validate` and `apply`, after the input's stem.
pub const RESULTS_SUFFIX: &str = ".results.csv";
/// The default results file of `apply --sandbox`.
pub const REHEARSAL_SUFFIX: &str = ".rehearsal.csv";
/// The default results file of `plan`.
pub const PLAN_SUFFIX: &str = ".plan.csv";

/// `<input stem><suffix>` in the current directory (`stdin` as the stem
/// when the input is standard input).
fn default_output(input: &InputSource, suffix: &str) -> PathBuf {
    let stem = match input {
        InputSource::Stdin => OsStr::new("stdin"),
        InputSource::File(path) => path.file_stem().unwrap_or(OsStr::new("input")),
    };
    let mut name = stem.to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// Whether two paths name one file: by device and inode when both exist
/// (so a hard link or a symbolic link to the input is caught), else by
/// where they lead once every symbolic link is followed, even a link to a
/// file not created yet (two outputs, one a link to the other's name).
pub fn same_file(a: &Path, b: &Path) -> bool {
    if let Ok(same) = same_file::is_same_file(a, b) {
        return same;
    }
    leads_to(a) == leads_to(b)
}

/// The absolute path `path` leads to: its folder made canonical, and a
/// symbolic link followed (to at most 40 links, as the kernel does), also
/// when what it names does not exist yet.
pub fn leads_to(path: &Path) -> PathBuf {
    let absolute = |path: &Path| {
        let parent = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        parent
            .canonicalize()
            .unwrap_or(parent)
            .join(path.file_name().unwrap_or_default())
    };
    let mut current = absolute(path);
    for _ in 0..40 {
        match std::fs::read_link(&current) {
            Ok(target) => {
                let folder = current.parent().map(Path::to_path_buf).unwrap_or_default();
                current = absolute(&folder.join(target));
            }
            Err(_) => break,
        }
    }
    current
}

/// Refuses a file named by `flag` that is the input or the results file:
/// writing it would destroy them.
fn not_input_or_results(
    path: &Path,
    what: &str,
    flag: &str,
    input: &InputSource,
    output: &OutputTarget,
) -> Result<(), Fatal> {
    let clash = |other: &str| {
        Fatal::Usage(format!(
            "the {what} {} is the {other}; choose another {flag}",
            path.display()
        ))
    };
    if let InputSource::File(input) = input
        && same_file(path, input)
    {
        return Err(clash("input file"));
    }
    if let OutputTarget::File(results) = output
        && same_file(path, results)
    {
        return Err(clash("results file"));
    }
    Ok(())
}

/// Checks `--undo-file` before anything is sent: it is not the input, the
/// results or the summary file, and an existing one (the way back from an
/// earlier run) is only gone on with by `--resume` of that run's record
/// (`continuing`). `--overwrite` does not replace it: it is the results
/// file's flag, and an undo file lost cannot be made again.
pub fn check_undo_path(
    undo: &Path,
    (input, output, summary): (&InputSource, &OutputTarget, Option<&Path>),
    continuing: bool,
) -> Result<(), Fatal> {
    if named_like_workbook(undo) {
        return Err(Fatal::Usage(format!(
            "the undo file {} is named like a workbook, but it is a CSV file: each user's line \
             is written before the change is sent, so that a crash loses none of it, and a \
             workbook can only be written whole at the end; name it .csv (a spreadsheet opens \
             it, and apply reads it as it is)",
            undo.display()
        )));
    }
    refuse_named_pipe(undo, "--undo-file")?;
    not_input_or_results(undo, "undo file", "--undo-file", input, output)?;
    if let Some(summary) = summary
        && same_file(undo, summary)
    {
        return Err(Fatal::Usage(format!(
            "the undo file {} is the summary file; choose another --undo-file",
            undo.display()
        )));
    }
    let exists = std::fs::metadata(undo).is_ok_and(|m| m.len() > 0);
    if exists && !continuing {
        return Err(Fatal::Usage(format!(
            "the undo file {} already exists and may be the only way back from an earlier run \
             (--overwrite does not replace it); move it away or choose another --undo-file \
             (--resume goes on with it only together with that run's results file)",
            undo.display()
        )));
    }
    Ok(())
}

/// Checks `--summary-json` before anything is sent: it is neither the input
/// nor the results file, and it can be written (its folder exists and takes
/// a new file, or the file exists and can be written).
/// A named pipe given for a file the run writes: opening it waits for a
/// reader, out of reach of Ctrl-C, so it is refused before that.
fn refuse_named_pipe(path: &Path, flag: &str) -> Result<(), Fatal> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo()) {
            return Err(Fatal::Usage(format!(
                "{flag} {} is a named pipe; the run would wait for a reader before it could \
                 start; give a regular file",
                path.display()
            )));
        }
    }
    let _ = (path, flag);
    Ok(())
}

pub fn check_summary_path(
    summary: &Path,
    input: &InputSource,
    output: &OutputTarget,
) -> Result<(), Fatal> {
    refuse_named_pipe(summary, "--summary-json")?;
    not_input_or_results(summary, "summary file", "--summary-json", input, output)?;
    let probe = if summary.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .open(summary)
            .map(drop)
    } else {
        probe_new_file(summary)
    };
    probe.map_err(|source| Fatal::SummaryJson {
        path: summary.to_path_buf(),
        source: plain_io_error(source),
    })
}

/// The mark a page of this tool carries, near its top: a file without it is
/// not replaced without `--overwrite`.
pub const REPORT_MARK: &str = r#"<meta name="generator" content="gcore-iam-bulk">"#;

/// What `--report` is checked against besides the input and the results:
/// the other files the run reads or writes (`None`: not given).
pub type OtherFiles<'a> = &'a [(Option<&'a Path>, &'a str)];

/// Checks `--report` before anything is sent: an `.html` file name (a
/// browser opens it by its name), not a file the run reads or writes
/// otherwise (the key's file, a certificate, the summary...), a regular file
/// if it exists, and a page of this tool unless `overwrite`; a new one must
/// be creatable under that very name (made and removed at once). The page
/// itself is written at the end, beside its place, then renamed there.
pub fn check_report_path(
    report: &Path,
    (input, output, others): (&InputSource, &OutputTarget, OtherFiles),
    overwrite: bool,
) -> Result<(), Fatal> {
    let usage = |why: String| Fatal::Usage(format!("the report {} {why}", report.display()));
    let text = report.as_os_str().to_string_lossy();
    if text.ends_with('/') || text.ends_with("/.") || report.file_name().is_none() {
        return Err(usage(
            "is not a file name; give one that ends in .html (--report run.html)".to_string(),
        ));
    }
    let html = report
        .extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| ext.eq_ignore_ascii_case("html") || ext.eq_ignore_ascii_case("htm"));
    if !html {
        return Err(usage(
            "is a web page; give it a name that ends in .html, so that a browser opens it \
             (--report run.html)"
                .to_string(),
        ));
    }
    refuse_named_pipe(report, "--report")?;
    not_input_or_results(report, "report", "--report", input, output)?;
    for (other, what) in others {
        if let Some(other) = other
            && same_file(report, other)
        {
            return Err(usage(format!("is the {what}; choose another --report")));
        }
    }
    let cannot = |source: std::io::Error| Fatal::Report {
        path: report.to_path_buf(),
        source: plain_io_error(source),
    };
    let dangling = std::fs::symlink_metadata(report).is_ok() && std::fs::metadata(report).is_err();
    if dangling {
        return Err(usage(
            "is a link to a file that does not exist; give the file's own name".to_string(),
        ));
    }
    match std::fs::metadata(report) {
        Ok(meta) if meta.is_dir() => Err(usage(format!(
            "is a folder; give a file name (--report {}/run.html)",
            report.display()
        ))),
        Ok(meta) if !meta.is_file() => Err(usage(
            "is not a regular file (a socket or a device?); give a file name".to_string(),
        )),
        Ok(meta) => {
            if !overwrite && meta.len() > 0 && !is_our_page(report) {
                return Err(usage(
                    "exists and is not a page of gcore-iam-bulk; choose another --report, or \
                     pass --overwrite to replace it"
                        .to_string(),
                ));
            }
            // Replaced by a rename at the end, or written over where the
            // folder does not allow that (a sticky folder): either way, it
            // must take writing.
            std::fs::OpenOptions::new()
                .write(true)
                .open(report)
                .map(drop)
                .map_err(cannot)?;
            probe_new_file(report).map_err(cannot)
        }
        Err(_) => {
            // Made under its very name and removed: a name too long, a
            // folder that does not exist or takes no file, are seen now.
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(report)
                .map_err(cannot)?;
            std::fs::remove_file(report).map_err(cannot)
        }
    }
}

/// Whether `path` starts like a page this tool wrote.
fn is_our_page(path: &Path) -> bool {
    let mut start = vec![0u8; 2048];
    let read =
        std::fs::File::open(path).and_then(|mut file| std::io::Read::read(&mut file, &mut start));
    read.is_ok_and(|n| String::from_utf8_lossy(&start[..n]).contains(REPORT_MARK))
}

/// An error as the operating system says it, without the path of a
/// temporary file that the crate adds (the message names the real file).
pub fn plain_io_error(error: std::io::Error) -> std::io::Error {
    match error.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => error,
    }
}

pub use crate::profile::folder_of;

/// Whether the folder of `path` takes a new file (made and removed at once).
fn probe_new_file(path: &Path) -> std::io::Result<()> {
    tempfile::Builder::new()
        .prefix(".gcore-iam-bulk-probe")
        .tempfile_in(folder_of(path))
        .map(drop)
}

/// The environment variable that holds the API key.
pub const API_KEY_ENV: &str = "GCORE_API_KEY";
/// The environment variable that may hold the base URL.
pub const BASE_URL_ENV: &str = "GCORE_BASE_URL";
pub const DEFAULT_BASE_URL: &str = "https://api.gcore.com";
/// Connecting should take milliseconds; a host that does not accept within
/// this is down or unreachable, and waiting the full `--timeout` would only
/// slow the retries.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The API key. `Debug` and `Display` print `***`, so the key cannot reach a
/// message, a log line or the results file by accident; [`ApiKey::expose`] is
/// the one way to read it, used once, to build the `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Refuses an empty key and anything that cannot go in an HTTP header.
    pub fn new(key: &str) -> Result<ApiKey, String> {
        let key = key.trim();
        if key.is_empty() {
            return Err("is empty".to_string());
        }
        if key.bytes().any(|b| b.is_ascii_control() || !b.is_ascii()) {
            return Err("holds control or non-ASCII characters; copy the key again".to_string());
        }
        Ok(ApiKey(key.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where the key comes from, as [`resolve`] chose it.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyChoice {
    /// `--api-key-file`.
    FlagFile(PathBuf),
    /// `GCORE_API_KEY`.
    Environment,
    /// The profile's file or command.
    Profile { name: String, key: KeyFrom },
    /// None anywhere; `Some`: the explicit profile that names none.
    Missing(Option<String>),
}

impl KeyChoice {
    /// Where the key came from in a few words, never the key: said at the
    /// start of a run, in a refusal (401) and by `config`.
    pub fn describe(&self) -> String {
        match self {
            KeyChoice::FlagFile(_) => "--api-key-file".to_string(),
            KeyChoice::Environment => API_KEY_ENV.to_string(),
            KeyChoice::Profile {
                name,
                key: KeyFrom::File(_),
            } => format!("profile {name} (api_key_file)"),
            KeyChoice::Profile {
                name,
                key: KeyFrom::Command(_),
            } => format!("profile {name} (api_key_command)"),
            KeyChoice::Missing(_) => "nowhere".to_string(),
        }
    }
}

/// Where the base URL and the key come from: the one precedence, used by
/// a run and by `config` alike.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub base_url: String,
    /// `--base-url`, `GCORE_BASE_URL`, `profile NAME` or `default`.
    pub base_from: String,
    pub key: KeyChoice,
    /// The environment's variables an explicit `--profile` set aside.
    pub set_aside: Vec<&'static str>,
}

/// The process environment as a run and `config` read it: one reader, so
/// that both see a variable alike (set but empty included).
pub fn from_environment(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The precedence: flags first; then a profile named by `--profile` (an
/// explicit choice: its key and base URL, or the defaults, and never
/// `GCORE_API_KEY` or `GCORE_BASE_URL`, which could send one account's key
/// to another's host); then the environment; then a profile named by
/// `GCORE_PROFILE`; then the defaults.
pub fn resolve(
    args: &ApiArgs,
    profile: Option<&Profile>,
    env: &impl Fn(&str) -> Option<String>,
) -> Resolved {
    let explicit = profile.filter(|p| p.chosen_by == ChosenBy::Flag);
    let env_base = env(BASE_URL_ENV).filter(|url| !url.trim().is_empty());
    // Set but empty (`GCORE_API_KEY=$(cat a-missing-file)`) is as unset: a
    // profile's key is then used; with none, the run says it is empty.
    let env_key = env(API_KEY_ENV).filter(|key| !key.trim().is_empty());
    let mut set_aside = Vec::new();
    let from_profile = |p: &Profile| format!("profile {}", p.name);
    let (base_url, base_from) = match (&args.base_url, explicit, env_base) {
        (Some(url), _, _) => (url.clone(), "--base-url".to_string()),
        (None, Some(p), env_base) => {
            if env_base.is_some() {
                set_aside.push(BASE_URL_ENV);
            }
            match &p.base_url {
                Some(url) => (url.clone(), from_profile(p)),
                None => (DEFAULT_BASE_URL.to_string(), "default".to_string()),
            }
        }
        (None, None, Some(url)) => (url, BASE_URL_ENV.to_string()),
        (None, None, None) => match profile.and_then(|p| p.base_url.clone().map(|u| (u, p))) {
            Some((url, p)) => (url, from_profile(p)),
            None => (DEFAULT_BASE_URL.to_string(), "default".to_string()),
        },
    };
    let of_profile = |p: &Profile| match &p.key {
        Some(key) => KeyChoice::Profile {
            name: p.name.clone(),
            key: key.clone(),
        },
        None => KeyChoice::Missing(explicit.map(|p| p.name.clone())),
    };
    let key = match (&args.api_key_file, explicit, env_key) {
        (Some(path), _, _) => KeyChoice::FlagFile(path.clone()),
        (None, Some(p), env_key) => {
            if env_key.is_some() {
                set_aside.push(API_KEY_ENV);
            }
            of_profile(p)
        }
        (None, None, Some(_)) => KeyChoice::Environment,
        (None, None, None) => profile.map_or(KeyChoice::Missing(None), of_profile),
    };
    Resolved {
        base_url,
        base_from,
        key,
        set_aside,
    }
}

/// Where the API is, the key, the per-attempt timeouts, and the network
/// path: extra certificate authorities and the proxy.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub base_url: Url,
    pub api_key: ApiKey,
    /// Where the key came from ([`KeyChoice::describe`]).
    pub key_from: String,
    /// The environment's variables an explicit `--profile` set aside.
    pub set_aside: Vec<&'static str>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Trusted besides the system's store and the bundled roots.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// `None`: straight to the API.
    pub proxy: Option<ProxyRoute>,
    /// The files these settings were read from (the key's file, the
    /// certificate files), whichever flag, variable or profile named them,
    /// with what each is: no output of the run may be one of them.
    pub files_read: Vec<(PathBuf, &'static str)>,
}

/// A key file that cannot be read, named as [`key_path_shown`] allows.
fn key_file_error(path: &Path, named_by: &str, source: std::io::Error) -> Fatal {
    if std::fs::symlink_metadata(path).is_err() {
        return Fatal::Usage(format!(
            "the API key file ({named_by}) is {}; give the path of the file that holds the key",
            key_path_shown(path)
        ));
    }
    Fatal::KeyFile {
        path: path.to_path_buf(),
        source,
    }
}

/// The key from a file, checked.
fn key_from_file(path: &Path, named_by: &str) -> Result<ApiKey, Fatal> {
    let text = read_key_file(path).map_err(|source| key_file_error(path, named_by, source))?;
    ApiKey::new(&text).map_err(|problem| {
        Fatal::Usage(format!(
            "the API key in {} ({named_by}) {problem}",
            path.display()
        ))
    })
}

impl ApiSettings {
    /// `env` reads an environment variable; tests pass a map instead of
    /// changing the process environment.
    pub fn from_args(
        args: &ApiArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ApiSettings, Fatal> {
        ApiSettings::with_profile(args, None, env)
    }

    /// [`ApiSettings::from_args`], with a profile: the base URL and the key
    /// come as [`resolve`] says.
    pub fn with_profile(
        args: &ApiArgs,
        profile: Option<&Profile>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ApiSettings, Fatal> {
        let timeout = seconds("--timeout", args.timeout)?;
        let resolved = resolve(args, profile, &env);
        let base_url = parse_base_url(&resolved.base_url, &resolved.base_from)?;
        let proxy_env = (!args.no_proxy).then_some(&env as &EnvReader);
        let proxy = choose_proxy(args.proxy.as_deref(), &base_url, proxy_env)?;
        refuse_plain_http(&base_url, proxy.as_ref(), args.allow_insecure_http)?;
        let ca_files = match (args.ca_cert.is_empty(), env(CA_CERT_ENV)) {
            (true, Some(path)) if !path.trim().is_empty() => {
                vec![(PathBuf::from(path.trim()), CA_CERT_ENV)]
            }
            _ => args
                .ca_cert
                .iter()
                .map(|p| (p.clone(), "--ca-cert"))
                .collect(),
        };
        let extra_roots = read_ca_files(&ca_files)?;
        let mut files_read: Vec<(PathBuf, &'static str)> = ca_files
            .iter()
            .map(|(path, _)| (path.clone(), "certificate file"))
            .collect();
        check_trust_store_env(&env)?;
        let key_from = resolved.key.describe();
        let api_key = match &resolved.key {
            KeyChoice::FlagFile(path) => {
                files_read.push((path.clone(), "API key's file"));
                key_from_file(path, "--api-key-file")?
            }
            KeyChoice::Environment => {
                let text = env(API_KEY_ENV).unwrap_or_default();
                ApiKey::new(&text).map_err(|problem| {
                    Fatal::Usage(format!("the API key in {API_KEY_ENV} {problem}"))
                })?
            }
            KeyChoice::Profile {
                name,
                key: KeyFrom::File(path),
            } => {
                files_read.push((path.clone(), "API key's file"));
                key_from_file(path, &format!("api_key_file of profile {name}"))?
            }
            KeyChoice::Profile {
                name,
                key: KeyFrom::Command(command),
            } => {
                let timeout =
                    profile.map_or(DEFAULT_KEY_COMMAND_TIMEOUT, |p| p.key_command_timeout);
                let text = run_key_command(name, command, timeout)?;
                ApiKey::new(&text).map_err(|problem| {
                    Fatal::Usage(format!(
                        "the API key printed by the api_key_command of profile {name} {problem}"
                    ))
                })?
            }
            KeyChoice::Missing(Some(name)) => {
                return Err(Fatal::Usage(format!(
                    "no API key: profile {name} names none, and a profile chosen with --profile \
                     does not take {API_KEY_ENV}; add api_key_file or api_key_command to the \
                     profile, or pass --api-key-file PATH"
                )));
            }
            KeyChoice::Missing(None) => {
                return Err(match env(API_KEY_ENV) {
                    Some(_) => Fatal::Usage(format!(
                        "the API key in {API_KEY_ENV} is empty; set it to the key, or give one \
                         with --api-key-file or a profile"
                    )),
                    None => Fatal::MissingKey,
                });
            }
        };
        Ok(ApiSettings {
            base_url,
            api_key,
            key_from,
            set_aside: resolved.set_aside,
            connect_timeout: CONNECT_TIMEOUT.min(timeout),
            timeout,
            extra_roots,
            proxy,
            files_read,
        })
    }
}

impl ApiSettings {
    /// The settings for a sandbox started by `apply --sandbox`: its URL and
    /// key, with the timeouts the user asked for, trusting the sandbox's own
    /// certificate authority (`ca_pem`, for a TLS sandbox) and any
    /// `--ca-cert`. The environment's proxy is not used: the sandbox is in
    /// this process, and a company proxy could not reach it; `--proxy` is.
    pub fn for_sandbox(
        args: &ApiArgs,
        base_url: &str,
        key: &str,
        ca_pem: Option<&str>,
    ) -> Result<ApiSettings, Fatal> {
        let timeout = seconds("--timeout", args.timeout)?;
        let base_url = parse_base_url(base_url, "the sandbox")?;
        let mut extra_roots = match ca_pem {
            Some(pem) => parse_ca_pem(pem.as_bytes())
                .map_err(|why| Fatal::Usage(format!("the sandbox's certificate {why}")))?,
            None => Vec::new(),
        };
        let files: Vec<_> = args
            .ca_cert
            .iter()
            .map(|p| (p.clone(), "--ca-cert"))
            .collect();
        extra_roots.extend(read_ca_files(&files)?);
        let files_read = files
            .into_iter()
            .map(|(path, _)| (path, "certificate file"))
            .collect();
        Ok(ApiSettings {
            files_read,
            proxy: choose_proxy(args.proxy.as_deref(), &base_url, None)?,
            base_url,
            api_key: ApiKey::new(key).map_err(Fatal::Usage)?,
            key_from: "the sandbox".to_string(),
            set_aside: Vec::new(),
            connect_timeout: CONNECT_TIMEOUT.min(timeout),
            timeout,
            extra_roots,
        })
    }
}

/// The environment variable that may name a PEM file of extra certificate
/// authorities (as `--ca-cert` does).
pub const CA_CERT_ENV: &str = "GCORE_CA_CERT";

/// The most a CA file may hold: a system bundle of every public root is
/// about 200 KiB.
const MAX_CA_FILE: u64 = 16 << 20;

/// `SSL_CERT_FILE` and `SSL_CERT_DIR` replace the system's trust store
/// (the bundled roots stay); one that names nothing usable would leave a
/// company authority untrusted without a word, so it is refused.
fn check_trust_store_env(env: &impl Fn(&str) -> Option<String>) -> Result<(), Fatal> {
    let refuse = |name: &str, path: &str, why: String| {
        Fatal::Usage(format!(
            "{name} names {path}, which {why}; fix it or unset it (it replaces the system's \
             trust store)"
        ))
    };
    if let Some(file) = env("SSL_CERT_FILE").filter(|f| !f.trim().is_empty()) {
        match std::fs::metadata(&file) {
            Ok(metadata) if !metadata.is_file() => {
                return Err(refuse("SSL_CERT_FILE", &file, "is not a file".to_string()));
            }
            Ok(metadata) if metadata.len() > MAX_CA_FILE => {
                return Err(refuse("SSL_CERT_FILE", &file, "is too large".to_string()));
            }
            Ok(_) => {}
            Err(e) => {
                return Err(refuse(
                    "SSL_CERT_FILE",
                    &file,
                    format!("cannot be read ({e})"),
                ));
            }
        }
        // A system bundle may hold a certificate rustls cannot use (they are
        // skipped); one with no certificate at all is a mistake.
        let bytes = std::fs::read(&file)
            .map_err(|e| refuse("SSL_CERT_FILE", &file, format!("cannot be read ({e})")))?;
        if let Err(why) = holds_certificates(&bytes) {
            return Err(refuse("SSL_CERT_FILE", &file, why));
        }
    }
    if let Some(dirs) = env("SSL_CERT_DIR") {
        for dir in dirs.split(':').filter(|d| !d.trim().is_empty()) {
            if !Path::new(dir).is_dir() {
                return Err(refuse("SSL_CERT_DIR", dir, "is not a folder".to_string()));
            }
        }
    }
    Ok(())
}

/// The certificates of every `(file, where it was named)`, checked.
fn read_ca_files(files: &[(PathBuf, &str)]) -> Result<Vec<CertificateDer<'static>>, Fatal> {
    let mut roots = Vec::new();
    for (path, named_by) in files {
        let fail = |why: String| {
            Fatal::Usage(format!(
                "the certificate file {} ({named_by}) {why}",
                path.display()
            ))
        };
        let metadata = std::fs::metadata(path).map_err(|e| fail(format!("cannot be read: {e}")))?;
        if !metadata.is_file() {
            return Err(fail("is not a regular file".to_string()));
        }
        if metadata.len() > MAX_CA_FILE {
            return Err(fail(format!(
                "holds more than {} MiB; give the certificate of the authority to trust",
                MAX_CA_FILE >> 20
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot be read: {e}")))?;
        roots.extend(parse_ca_pem(&bytes).map_err(fail)?);
    }
    Ok(roots)
}

/// Whether a PEM file holds at least one certificate; if not, what it is.
fn holds_certificates(bytes: &[u8]) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if CertificateDer::pem_slice_iter(bytes).any(|cert| cert.is_ok()) {
        return Ok(());
    }
    Err(not_a_certificate(bytes))
}

/// What a file that holds no PEM certificate holds instead.
fn not_a_certificate(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if bytes.first() == Some(&0x30) {
        "is binary (DER), not PEM; convert it with: openssl x509 -inform der -in FILE -out FILE.pem"
            .to_string()
    } else if text.contains("PRIVATE KEY") {
        "holds a private key, not a certificate; give the authority's certificate (never a key)"
            .to_string()
    } else {
        "holds no certificate; a PEM certificate starts with -----BEGIN CERTIFICATE-----"
            .to_string()
    }
}

/// A PEM reading error as a person reads it.
fn pem_problem(error: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as E;
    match error {
        E::MissingSectionEnd { .. } => {
            "holds a certificate cut short (no -----END CERTIFICATE----- line)".to_string()
        }
        E::IllegalSectionStart { .. } => "holds a broken -----BEGIN line".to_string(),
        E::Base64Decode(_) => {
            "holds a certificate whose text is damaged (not valid base64)".to_string()
        }
        other => format!("is not valid PEM ({other})"),
    }
}

/// The certificates of a PEM file, each checked to be usable as a root.
/// Says what the file is instead when it holds none (DER, a private key).
fn parse_ca_pem(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    // Notepad saves a byte-order mark.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut certs = Vec::new();
    for (n, cert) in CertificateDer::pem_slice_iter(bytes).enumerate() {
        let cert = cert.map_err(|e| pem_problem(&e))?;
        rustls::RootCertStore::empty()
            .add(cert.clone())
            .map_err(|e| {
                format!(
                    "holds a certificate (number {}) that cannot be used as an authority ({e})",
                    n + 1
                )
            })?;
        certs.push(cert);
    }
    if !certs.is_empty() {
        return Ok(certs);
    }
    Err(not_a_certificate(bytes))
}

/// The proxy a run goes through, and where it was named.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyRoute {
    /// With any user name and password.
    url: Url,
    /// `--proxy`, or the environment variable.
    source: String,
}

impl ProxyRoute {
    /// The URL with its password; only to build the client.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Whether a password came on the command line (`--proxy`), where
    /// `ps` and the shell's history show it.
    pub fn password_on_command_line(&self) -> bool {
        self.source == "--proxy" && self.url.password().is_some()
    }

    /// The password, as written in the URL and decoded, to blank it out
    /// of any message that might echo it.
    pub fn secrets(&self) -> Vec<String> {
        let Some(password) = self.url.password() else {
            return Vec::new();
        };
        let mut secrets = vec![password.to_string()];
        if let Ok(decoded) = percent_encoding::percent_decode_str(password).decode_utf8()
            && decoded != password
        {
            secrets.push(decoded.into_owned());
        }
        secrets
    }
}

/// `http://user:***@proxy:3128 (from HTTPS_PROXY)`: never the password.
impl fmt::Display for ProxyRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password as ***; a user name alone as *** too: it may be the
        // password (user:pass with the user left out) or a key pasted
        // before the @.
        let mut shown = self.url.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("***"));
        } else if !shown.username().is_empty() {
            let _ = shown.set_username("***");
        }
        let shown = shown.as_str().trim_end_matches('/').to_string();
        write!(f, "{shown} (from {})", self.source)
    }
}

impl fmt::Debug for ProxyRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Reads an environment variable (a map in tests).
type EnvReader<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// The proxy to the API: `--proxy`, else (when `env` is given) the first of
/// `HTTPS_PROXY`/`https_proxy` (`HTTP_PROXY`/`http_proxy` for an `http://`
/// base URL) and `ALL_PROXY`/`all_proxy` that is set and not empty, unless
/// `NO_PROXY`/`no_proxy` names the API's host. NO_PROXY is matched by the
/// same code reqwest uses (hyper-util's), so what is said is what is done.
fn choose_proxy(
    flag: Option<&str>,
    base: &Url,
    env: Option<&EnvReader<'_>>,
) -> Result<Option<ProxyRoute>, Fatal> {
    if let Some(text) = flag {
        return parse_proxy(text, "--proxy").map(Some);
    }
    let Some(env) = env else {
        return Ok(None);
    };
    let first = |names: [&'static str; 2]| {
        names
            .into_iter()
            .find_map(|name| env(name).map(|value| (name, value)))
            .filter(|(_, value)| !value.trim().is_empty())
    };
    let specific = match base.scheme() {
        "https" => first(["HTTPS_PROXY", "https_proxy"]),
        _ => first(["HTTP_PROXY", "http_proxy"]),
    };
    let Some((name, value)) = specific.or_else(|| first(["ALL_PROXY", "all_proxy"])) else {
        return Ok(None);
    };
    let route = parse_proxy(&value, name)?;
    let no_proxy = first(["NO_PROXY", "no_proxy"])
        .map(|(_, value)| value)
        .unwrap_or_default();
    let entries: Vec<String> = no_proxy.split(',').map(no_proxy_entry).collect();
    // `*` is every host; hyper-util reads it for names only, not addresses.
    if entries.iter().any(|entry| entry == "*") {
        return Ok(None);
    }
    let matcher = hyper_util::client::proxy::matcher::Matcher::builder()
        .all(route.url.to_string())
        .no(entries.join(","))
        .build();
    let uri: hyper::Uri = base
        .as_str()
        .parse()
        .map_err(|e| Fatal::Usage(format!("the base URL {base} cannot be used ({e})")))?;
    Ok(matcher.intercept(&uri).map(|_| route))
}

/// A `NO_PROXY` entry as hyper-util's matcher reads it: without a port
/// (`localhost:8080`, `[::1]:8080`) or the brackets of an IPv6 address, and
/// `*.example.com` as `.example.com` (both mean its subdomains).
fn no_proxy_entry(entry: &str) -> String {
    let entry = entry.trim();
    let entry = entry
        .strip_prefix("*.")
        .map_or(entry.to_string(), |rest| format!(".{rest}"));
    if let Some(rest) = entry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default().to_string();
    }
    match entry.rsplit_once(':') {
        // One colon and digits after it: a port. (An IPv6 address has more.)
        Some((host, port))
            if !host.contains(':')
                && !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            host.to_string()
        }
        _ => entry,
    }
}

/// A proxy URL as users write it: `HOST:PORT` means `http://HOST:PORT`.
fn parse_proxy(text: &str, source: &str) -> Result<ProxyRoute, Fatal> {
    let text = text.trim();
    let with_scheme = if text.contains("://") {
        text.to_string()
    } else {
        format!("http://{text}")
    };
    // Shown without what may be a password, even when it does not parse:
    // `user:secret` with no `@host` reads as a host and a port that is not one.
    let shown = match with_scheme.split_once("://") {
        Some((scheme, rest)) if rest.contains('@') => {
            let host = &rest[rest.rfind('@').map_or(0, |at| at + 1)..];
            format!("{scheme}://***@{host}")
        }
        Some((scheme, rest)) => match rest.trim_end_matches('/').rsplit_once(':') {
            Some((host, port)) if !port.bytes().all(|b| b.is_ascii_digit()) => {
                format!("{scheme}://{host}:***")
            }
            _ => with_scheme.clone(),
        },
        None => with_scheme.clone(),
    };
    let bad = |why: &str| {
        Fatal::Usage(format!(
            "the proxy {shown} (from {source}) {why}; give one like http://proxy.example:3128"
        ))
    };
    let url = Url::parse(&with_scheme).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    match url.scheme() {
        "http" | "https" => {}
        scheme if scheme.starts_with("socks") => {
            return Err(bad("is a SOCKS proxy, which this tool does not support"));
        }
        _ => return Err(bad("must start with http:// or https://")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    Ok(ProxyRoute {
        url,
        source: source.to_string(),
    })
}

/// Whether `host` (a URL's host) is this machine.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The most a key file may hold: a key is a few dozen characters.
const MAX_KEY_FILE: u64 = 4096;

/// A key file as editors save it: a UTF-8 byte-order mark (Notepad) and a
/// trailing line break (CRLF too) are dropped later by [`ApiKey::new`] or
/// here. Only a regular file of at most [`MAX_KEY_FILE`] bytes is read, so
/// `/dev/zero` or a pipe cannot make the tool read forever.
pub(crate) fn read_key_file(path: &Path) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Read};
    let not_regular = || {
        Error::new(
            ErrorKind::InvalidInput,
            "it is not a regular file; save the key in a file of its own",
        )
    };
    // Looked at before it is opened: opening a named pipe with no writer
    // waits for one, out of reach of Ctrl-C.
    if !std::fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(not_regular());
    }
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_KEY_FILE {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("it holds more than {MAX_KEY_FILE} bytes; it should hold the key alone"),
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        Error::new(
            ErrorKind::InvalidData,
            "it is not UTF-8 text; save it as UTF-8 (or plain ASCII)",
        )
    })?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(&text).to_string())
}

/// Plain `http://` sends the key and the users' data unencrypted: only to
/// this machine (a sandbox, a local proxy), unless the user says otherwise.
/// Through a proxy, plain `http://` reaches the proxy as it is, so the
/// proxy must be on this machine too.
fn refuse_plain_http(url: &Url, proxy: Option<&ProxyRoute>, allowed: bool) -> Result<(), Fatal> {
    if url.scheme() != "http" || allowed {
        return Ok(());
    }
    if !is_loopback(url.host_str().unwrap_or_default()) {
        return Err(Fatal::Usage(format!(
            "the base URL {} is plain http:// to another machine: the API key and the users' \
             data would cross the network unencrypted; use https://, or pass \
             --allow-insecure-http if the network is trusted",
            url_shown(url.as_str())
        )));
    }
    if let Some(proxy) = proxy
        && proxy.url.scheme() == "http"
        && !is_loopback(proxy.url.host_str().unwrap_or_default())
    {
        return Err(Fatal::Usage(format!(
            "the base URL {} is plain http:// and would go through the proxy {proxy}, \
             another machine: the API key would cross the network unencrypted; set NO_PROXY to \
             the base URL's host, use https://, or pass --allow-insecure-http",
            url_shown(url.as_str())
        )));
    }
    Ok(())
}

/// A base URL as messages and `config` show it: its scheme, host and port
/// only. A user name or password (a key pasted as
/// `https://KEY@api.gcore.com`) is shown as `***`, a path, query or
/// fragment as `…` (a key pasted there), and text that is no URL with a
/// host (a key pasted as the URL) is not shown at all.
pub fn url_shown(text: &str) -> String {
    const NOT_SHOWN: &str =
        "(not shown: not a URL with a host, it may be a key pasted in the wrong place)";
    // An `@` anywhere: what stands before the last one may be a key, even
    // where a `/` in it makes the rest read as a path.
    let (userinfo, rest) = match text.trim().rsplit_once('@') {
        Some((before, host)) => match before.split_once("://") {
            Some((scheme, _)) => (true, format!("{scheme}://{host}")),
            None => (true, format!("http://{host}")),
        },
        None => (false, text.trim().to_string()),
    };
    // A scheme other than http or https may be a key pasted there.
    let scheme_shown = |scheme: &str| match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => scheme.to_string(),
        _ => "…".to_string(),
    };
    let unparsed = || match (userinfo, rest.split_once("://")) {
        (true, Some((scheme, _))) => format!("{}://***@…", scheme_shown(scheme)),
        _ => NOT_SHOWN.to_string(),
    };
    let Ok(url) = Url::parse(&rest) else {
        return unparsed();
    };
    let Some(host) = url.host_str().filter(|_| !url.cannot_be_a_base()) else {
        return unparsed();
    };
    let port = url
        .port()
        .map(|port| format!(":{port}"))
        .unwrap_or_default();
    let user = if userinfo || !url.username().is_empty() || url.password().is_some() {
        "***@"
    } else {
        ""
    };
    let more = url.path() != "/" || url.query().is_some() || url.fragment().is_some();
    format!(
        "{}://{user}{host}{port}{}",
        scheme_shown(url.scheme()),
        if more { "/…" } else { "" }
    )
}

/// `from` names where the URL came from (`--base-url`, `GCORE_BASE_URL`,
/// `profile NAME`, `default`), for the message that refuses it.
fn parse_base_url(text: &str, from: &str) -> Result<Url, Fatal> {
    let shown = url_shown(text);
    let bad = |why: String| {
        Fatal::Usage(format!(
            "the base URL {shown:?} (from {from}) {why}; give one like {DEFAULT_BASE_URL}"
        ))
    };
    let url = Url::parse(text.trim()).map_err(|e| bad(format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must start with https:// or http://".to_string()));
    }
    if url.cannot_be_a_base() || url.host_str().is_none() {
        return Err(bad("has no host".to_string()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not hold a query or a fragment".to_string()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "must not hold a user name or password; the key goes in GCORE_API_KEY, a key file \
             or a profile"
                .to_string(),
        ));
    }
    Ok(url)
}

fn seconds(flag: &str, value: f64) -> Result<Duration, Fatal> {
    if value.is_finite() && value > 0.0 && value <= 86_400.0 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(Fatal::Usage(format!(
            "{flag} {value:?} must be a number of seconds above 0 and at most 86400"
        )))
    }
}

/// `--concurrency` and `--rate` when neither a flag nor a profile sets them.
pub const DEFAULT_CONCURRENCY: usize = 8;
pub const DEFAULT_RATE: &str = "10";
pub const DEFAULT_BURST: u32 = 1;

/// How `apply` sends, and what it does around sending.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub send: SendPolicy,
    pub summary_json: Option<PathBuf>,
}

impl RunSettings {
    pub fn from_args(args: &RunArgs) -> Result<RunSettings, Fatal> {
        let requested = args.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        let concurrency = NonZeroUsize::new(requested)
            .filter(|n| n.get() <= MAX_CONCURRENCY)
            .ok_or_else(|| {
                Fatal::Usage(format!(
                    "--concurrency {requested} must be between 1 and {MAX_CONCURRENCY}"
                ))
            })?;
        let burst = NonZeroU32::new(args.burst.unwrap_or(DEFAULT_BURST))
            .ok_or_else(|| Fatal::Usage("--burst must be at least 1".to_string()))?;
        let rate = match args.rate.as_deref().unwrap_or(DEFAULT_RATE).trim() {
            auto if auto.eq_ignore_ascii_case("auto") => Rate::auto(args.max_rate, burst),
            number => {
                if args.max_rate.is_some() {
                    return Err(Fatal::Usage(
                        "--max-rate goes with --rate auto; with --rate R, R is the ceiling"
                            .to_string(),
                    ));
                }
                let per_second: f64 = number.parse().map_err(|_| {
                    Fatal::Usage(format!(
                        "--rate {number:?} is not a number of requests per second, nor auto"
                    ))
                })?;
                Rate::new(per_second, burst)
            }
        }
        .map_err(Fatal::Usage)?;
        let max_wait = seconds("--max-wait", args.max_wait)?;
        let retry = RetryPolicy {
            max_retries: args.max_retries,
            max_wait,
            ..RetryPolicy::default()
        };
        let window = args
            .window
            .map(|rows| {
                NonZeroUsize::new(rows)
                    .filter(|n| n.get() <= MAX_WINDOW)
                    .ok_or_else(|| {
                        Fatal::Usage(format!(
                            "--window {rows} must be between 1 and {MAX_WINDOW}"
                        ))
                    })
            })
            .transpose()?;
        let mut send = SendPolicy::new(concurrency, rate, retry, window);
        send.verbose = args.verbose;
        Ok(RunSettings {
            send,
            summary_json: args.summary_json.clone(),
        })
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
        let given = match &args.users_file {
            None => None,
            Some(path) => Some(std::sync::Arc::new(
                crate::sandbox::given::read(path).map_err(|why| {
                    Fatal::Usage(format!("--users-file {}: {why}", path.display()))
                })?,
            )),
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
                latency_ms: args.latency_ms,
                jitter_ms: args.jitter_ms,
                error_rate: args.error_rate,
                drop_rate: args.drop_rate,
                slow_rate: args.slow_rate,
                slow_ms: args.slow_ms,
                list_omit: args.list_omit.clone(),
                list_churn: args.list_churn,
                list_count: args.list_count,
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

pub(crate) fn random_key() -> String {
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
        assert_eq!(
            default_output(&input, ".results.csv"),
            PathBuf::from("batch.results.csv")
        );
        assert_eq!(
            default_output(&InputSource::Stdin, ".results.csv"),
            PathBuf::from("stdin.results.csv")
        );
        assert_eq!(
            default_output(&input, REHEARSAL_SUFFIX),
            PathBuf::from("batch.rehearsal.csv")
        );
    }

    #[test]
    fn a_named_pipe_as_the_key_file_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("key.fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|status| status.success()) {
            return; // no mkfifo here: nothing to test
        }
        let error = read_key_file(&fifo).unwrap_err().to_string();
        assert!(error.contains("not a regular file"), "{error}");
        let input = InputSource::File(dir.path().join("in.csv"));
        let output = OutputTarget::File(dir.path().join("out.csv"));
        let summary = check_summary_path(&fifo, &input, &output)
            .unwrap_err()
            .to_string();
        assert!(summary.contains("is a named pipe"), "{summary}");
        let undo = check_undo_path(&fifo, (&input, &output, None), false)
            .unwrap_err()
            .to_string();
        assert!(undo.contains("is a named pipe"), "{undo}");
    }

    fn api_args(base_url: Option<&str>, key_file: Option<PathBuf>) -> ApiArgs {
        ApiArgs {
            profile: None,
            api_key_file: key_file,
            base_url: base_url.map(str::to_string),
            timeout: 30.0,
            allow_insecure_http: false,
            ca_cert: Vec::new(),
            proxy: None,
            no_proxy: false,
        }
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn the_key_comes_from_the_environment_or_a_file_and_never_prints() {
        let config =
            ApiSettings::from_args(&api_args(None, None), env_of(&[(API_KEY_ENV, "s3cret\n")]))
                .unwrap();
        assert_eq!(config.api_key.expose(), "s3cret");
        assert_eq!(config.base_url.as_str(), "https://api.gcore.com/");
        assert!(!format!("{config:?}").contains("s3cret"));
        assert_eq!(config.api_key.to_string(), "***");

        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, b"from-file\n").unwrap();
        let config = ApiSettings::from_args(
            &api_args(None, Some(file.path().to_path_buf())),
            env_of(&[(API_KEY_ENV, "from-env")]),
        )
        .unwrap();
        assert_eq!(config.api_key.expose(), "from-file");
    }

    #[test]
    fn key_files_as_editors_save_them_and_files_that_are_not_key_files() {
        let dir = tempfile::tempdir().unwrap();
        let notepad = dir.path().join("notepad.txt");
        std::fs::write(&notepad, b"\xEF\xBB\xBFs3cret-key\r\n").unwrap();
        let config = ApiSettings::from_args(&api_args(None, Some(notepad)), env_of(&[])).unwrap();
        assert_eq!(config.api_key.expose(), "s3cret-key");

        let big = dir.path().join("big.txt");
        std::fs::write(&big, "k".repeat(5000)).unwrap();
        let cases = [
            (big, "more than 4096 bytes"),
            (PathBuf::from("/dev/zero"), "not a regular file"),
            (dir.path().to_path_buf(), "not a regular file"),
        ];
        for (path, want) in cases {
            let error = ApiSettings::from_args(&api_args(None, Some(path.clone())), env_of(&[]))
                .unwrap_err();
            let text = crate::error::error_chain(&error);
            assert!(text.contains(want), "{}: {text}", path.display());
        }
    }

    #[test]
    fn an_explicit_profile_beats_the_environment_and_gcore_profile_does_not() {
        let profile = |chosen_by, base: Option<&str>, key: bool| Profile {
            name: "b".to_string(),
            chosen_by,
            file: PathBuf::from("/c/config.toml"),
            base_url: base.map(str::to_string),
            key: key.then(|| KeyFrom::File(PathBuf::from("/c/b.key"))),
            rate: None,
            burst: None,
            concurrency: None,
            key_command_timeout: DEFAULT_KEY_COMMAND_TIMEOUT,
        };
        let env = env_of(&[(API_KEY_ENV, "a-key"), (BASE_URL_ENV, "https://a.example")]);
        let args = api_args(None, None);
        let b_file = KeyChoice::Profile {
            name: "b".to_string(),
            key: KeyFrom::File(PathBuf::from("/c/b.key")),
        };
        // --profile b: b's host and key, the environment's set aside.
        let flag = profile(ChosenBy::Flag, Some("https://b.example"), true);
        let got = resolve(&args, Some(&flag), &env);
        assert_eq!(
            (got.base_url.as_str(), &got.key),
            ("https://b.example", &b_file)
        );
        assert_eq!(got.set_aside, [BASE_URL_ENV, API_KEY_ENV]);
        // A profile without a base URL does not take the environment's.
        let flag = profile(ChosenBy::Flag, None, true);
        assert_eq!(resolve(&args, Some(&flag), &env).base_url, DEFAULT_BASE_URL);
        // Nor its key.
        let keyless = profile(ChosenBy::Flag, Some("https://b.example"), false);
        let got = resolve(&args, Some(&keyless), &env);
        assert_eq!(got.key, KeyChoice::Missing(Some("b".to_string())));
        // GCORE_PROFILE=b: the environment's credentials win.
        let implicit = profile(ChosenBy::Environment, Some("https://b.example"), true);
        let got = resolve(&args, Some(&implicit), &env);
        assert_eq!(
            (got.base_url.as_str(), &got.key),
            ("https://a.example", &KeyChoice::Environment)
        );
        assert!(got.set_aside.is_empty());
        let got = resolve(&args, Some(&implicit), &env_of(&[]));
        assert_eq!(
            (got.base_url.as_str(), &got.key),
            ("https://b.example", &b_file)
        );
        // Flags beat everything.
        let flags = api_args(Some("https://f.example"), Some(PathBuf::from("/f.key")));
        let flag = profile(ChosenBy::Flag, Some("https://b.example"), true);
        let got = resolve(&flags, Some(&flag), &env);
        assert_eq!(got.base_url, "https://f.example");
        assert_eq!(got.key, KeyChoice::FlagFile(PathBuf::from("/f.key")));
        assert_eq!(got.base_from, "--base-url");
    }

    #[test]
    fn a_missing_or_empty_key_says_how_to_set_it() {
        let error = ApiSettings::from_args(&api_args(None, None), env_of(&[])).unwrap_err();
        assert!(error.to_string().contains(API_KEY_ENV), "{error}");
        assert!(error.to_string().contains("--api-key-file"), "{error}");
        let error = ApiSettings::from_args(&api_args(None, None), env_of(&[(API_KEY_ENV, " \n")]))
            .unwrap_err();
        assert!(error.to_string().contains("is empty"), "{error}");
    }

    #[test]
    fn base_urls() {
        let key = [(API_KEY_ENV, "k")];
        let from_env = ApiSettings::from_args(
            &api_args(None, None),
            env_of(&[(API_KEY_ENV, "k"), (BASE_URL_ENV, "http://127.0.0.1:9/")]),
        )
        .unwrap();
        assert_eq!(from_env.base_url.as_str(), "http://127.0.0.1:9/");
        let flag_wins = ApiSettings::from_args(
            &api_args(Some("https://example.test/api"), None),
            env_of(&[(API_KEY_ENV, "k"), (BASE_URL_ENV, "http://127.0.0.1:9/")]),
        )
        .unwrap();
        assert_eq!(flag_wins.base_url.as_str(), "https://example.test/api");
        for bad in [
            "api.gcore.com",
            "ftp://x",
            "https://",
            "https://u:p@x",
            "https://x/?q=1",
        ] {
            let error =
                ApiSettings::from_args(&api_args(Some(bad), None), env_of(&key)).unwrap_err();
            assert!(error.to_string().contains("base URL"), "{bad}: {error}");
        }
        // A key pasted as the URL's user name (or password) is never echoed,
        // whether the URL parses or not.
        for bad in [
            "https://SECRETKEY@api.gcore.com",
            "http://SECRETKEY@127.0.0.1:1",
            "https://SECRETKEY:SECRETKEY@api.gcore.com",
            "https://SECRETKEY@exa mple.com",
        ] {
            let error =
                ApiSettings::from_args(&api_args(Some(bad), None), env_of(&key)).unwrap_err();
            let text = error.to_string();
            assert!(!text.contains("SECRETKEY"), "{bad}: {text}");
            assert!(text.contains("***@"), "{bad}: {text}");
        }
    }

    #[test]
    fn the_proxy_comes_from_the_flag_then_the_environment_unless_no_proxy_names_the_host() {
        let https = Url::parse("https://api.gcore.com").unwrap();
        let http = Url::parse("http://127.0.0.1:8080").unwrap();
        let local = Url::parse("https://127.0.0.1:8443").unwrap();
        let v6 = Url::parse("https://[::1]:8443").unwrap();
        let choose = |flag: Option<&str>, base: &Url, pairs: &[(&str, &str)]| {
            let env = env_of(pairs);
            choose_proxy(flag, base, Some(&env)).map(|route| route.map(|r| r.to_string()))
        };
        type Case<'a> = (
            Option<&'a str>,
            &'a Url,
            &'a [(&'a str, &'a str)],
            Option<&'a str>,
        );
        let cases: &[Case] = &[
            (None, &https, &[], None),
            (
                None,
                &https,
                &[("HTTPS_PROXY", "http://p:3128")],
                Some("http://p:3128 (from HTTPS_PROXY)"),
            ),
            (
                None,
                &https,
                &[("https_proxy", "p:3128")],
                Some("http://p:3128 (from https_proxy)"),
            ),
            // HTTP_PROXY is for http:// base URLs only.
            (None, &https, &[("HTTP_PROXY", "http://p:3128")], None),
            (
                None,
                &http,
                &[("HTTP_PROXY", "http://127.0.0.1:3128")],
                Some("http://127.0.0.1:3128 (from HTTP_PROXY)"),
            ),
            (
                None,
                &https,
                &[
                    ("ALL_PROXY", "http://all:1"),
                    ("HTTPS_PROXY", "http://one:2"),
                ],
                Some("http://one:2 (from HTTPS_PROXY)"),
            ),
            (
                None,
                &https,
                &[("HTTPS_PROXY", " "), ("all_proxy", "http://all:1")],
                Some("http://all:1 (from all_proxy)"),
            ),
            (
                None,
                &https,
                &[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "gcore.com")],
                None,
            ),
            (
                None,
                &https,
                &[
                    ("HTTPS_PROXY", "http://p:1"),
                    ("no_proxy", ".gcore.com, 10.0.0.0/8"),
                ],
                None,
            ),
            (
                None,
                &https,
                &[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "*")],
                None,
            ),
            (
                None,
                &https,
                &[
                    ("HTTPS_PROXY", "http://p:1"),
                    ("NO_PROXY", "notgcore.com,example.com"),
                ],
                Some("http://p:1 (from HTTPS_PROXY)"),
            ),
            (
                Some("http://u:pw@flag:8080"),
                &https,
                &[("HTTPS_PROXY", "http://p:1")],
                Some("http://u:***@flag:8080 (from --proxy)"),
            ),
            // NO_PROXY as people write it: `*` for addresses too, ports,
            // brackets, `*.domain`.
            (
                None,
                &local,
                &[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "*")],
                None,
            ),
            (
                None,
                &local,
                &[
                    ("HTTPS_PROXY", "http://p:1"),
                    ("NO_PROXY", "example.com, 127.0.0.1:8443"),
                ],
                None,
            ),
            (
                None,
                &https,
                &[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "*.gcore.com")],
                None,
            ),
            (
                None,
                &v6,
                &[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "[::1]:8443")],
                None,
            ),
        ];
        for (flag, base, env, want) in cases {
            let got = choose(*flag, base, env).unwrap();
            assert_eq!(got.as_deref(), *want, "{flag:?} {base} {env:?}");
        }
        // An in-process sandbox takes no proxy from the environment.
        assert_eq!(choose_proxy(None, &https, None).unwrap(), None);
    }

    #[test]
    fn proxy_urls_that_cannot_work_are_refused_without_showing_a_password() {
        let cases = [
            ("socks5://u:hunter2@p:1080", "SOCKS"),
            ("ftp://p:21", "must start with http://"),
            ("http://u:hunter2@", "empty host"),
            ("http://u:hunter2@p:99999", "is not a URL"),
            ("http://", "is not a URL"),
            // `user:password` without `@host` reads as a host and a bad port.
            ("u:hunter2", "is not a URL"),
        ];
        for (text, want) in cases {
            let error = parse_proxy(text, "HTTPS_PROXY").unwrap_err().to_string();
            assert!(error.contains(want), "{text}: {error}");
            assert!(error.contains("HTTPS_PROXY"), "{text}: {error}");
            assert!(!error.contains("hunter2"), "{text}: {error}");
        }
        let route = parse_proxy("http://user:p%40ss%3Aword@p:1", "--proxy").unwrap();
        assert_eq!(route.secrets(), ["p%40ss%3Aword", "p@ss:word"]);
        assert!(!format!("{route:?}").contains("ss"));
    }

    #[test]
    fn plain_http_through_a_proxy_on_another_machine_is_refused() {
        let base = Url::parse("http://127.0.0.1:8080").unwrap();
        let far = parse_proxy("http://u:pw@proxy.example:3128", "HTTP_PROXY").unwrap();
        let near = parse_proxy("http://127.0.0.1:3128", "HTTP_PROXY").unwrap();
        let error = refuse_plain_http(&base, Some(&far), false)
            .unwrap_err()
            .to_string();
        assert!(error.contains("NO_PROXY"), "{error}");
        assert!(!error.contains("pw@"), "{error}");
        assert!(refuse_plain_http(&base, Some(&near), false).is_ok());
        assert!(refuse_plain_http(&base, Some(&far), true).is_ok());
        let https = Url::parse("https://api.gcore.com").unwrap();
        assert!(refuse_plain_http(&https, Some(&far), false).is_ok());
    }

    #[test]
    fn a_trust_store_variable_that_names_nothing_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.pem");
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(&file, ca.cert.pem()).unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "x").unwrap();
        let der = dir.path().join("ca.der");
        std::fs::write(&der, ca.cert.der()).unwrap();
        let (file, folder) = (file.to_str().unwrap(), dir.path().to_str().unwrap());
        let (junk, der) = (junk.to_str().unwrap(), der.to_str().unwrap());
        assert!(check_trust_store_env(&env_of(&[("SSL_CERT_FILE", file)])).is_ok());
        assert!(check_trust_store_env(&env_of(&[("SSL_CERT_DIR", folder)])).is_ok());
        let cases = [
            ("SSL_CERT_FILE", "/nonexistent/ca.pem", "cannot be read"),
            ("SSL_CERT_FILE", folder, "is not a file"),
            ("SSL_CERT_DIR", file, "is not a folder"),
            ("SSL_CERT_FILE", junk, "holds no certificate"),
            ("SSL_CERT_FILE", der, "DER"),
        ];
        for (name, value, want) in cases {
            let error = check_trust_store_env(&env_of(&[(name, value)]))
                .unwrap_err()
                .to_string();
            assert!(error.contains(want) && error.contains(name), "{error}");
        }
    }

    #[test]
    fn ca_files_are_read_as_pem_with_any_line_ends() {
        let tls = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let pem = tls.cert.pem();
        let two = format!("{pem}{pem}");
        assert_eq!(parse_ca_pem(two.as_bytes()).unwrap().len(), 2);
        let windows = format!("\u{feff}{}", pem.replace('\n', "\r\n"));
        assert_eq!(parse_ca_pem(windows.as_bytes()).unwrap().len(), 1);
        let error = parse_ca_pem(tls.signing_key.serialize_pem().as_bytes()).unwrap_err();
        assert!(error.contains("private key"), "{error}");
        let error = parse_ca_pem(tls.cert.der()).unwrap_err();
        assert!(error.contains("DER"), "{error}");
        let cut = &pem[..pem.len() / 2];
        let error = parse_ca_pem(cut.as_bytes()).unwrap_err();
        assert!(error.contains("cut short"), "{error}");
        let damaged = pem.replacen("MII", "M!I", 1);
        let error = parse_ca_pem(damaged.as_bytes()).unwrap_err();
        assert!(error.contains("damaged"), "{error}");
    }

    fn run_args() -> RunArgs {
        RunArgs {
            concurrency: None,
            rate: None,
            max_rate: None,
            burst: None,
            max_retries: 5,
            max_wait: 300.0,
            summary_json: None,
            verbose: false,
            window: None,
        }
    }

    #[test]
    fn run_settings_are_checked() {
        let config = RunSettings::from_args(&run_args()).unwrap();
        assert_eq!(config.send.concurrency.get(), 8);
        assert_eq!(config.send.window.get(), 300);
        let unlimited = RunSettings::from_args(&RunArgs {
            rate: Some("0".into()),
            ..run_args()
        })
        .unwrap();
        assert_eq!(unlimited.send.rate.per_second(), None);
        assert_eq!(unlimited.send.window.get(), MAX_WINDOW);
        let auto = RunSettings::from_args(&RunArgs {
            rate: Some("auto".into()),
            max_rate: Some(200.0),
            ..run_args()
        })
        .unwrap();
        assert!(auto.send.rate.is_auto());
        assert_eq!(auto.send.rate.per_second(), Some(200.0));
        for bad in [
            RunArgs {
                concurrency: Some(0),
                ..run_args()
            },
            RunArgs {
                rate: Some("-1".into()),
                ..run_args()
            },
            RunArgs {
                rate: Some("NaN".into()),
                ..run_args()
            },
            RunArgs {
                rate: Some("fast".into()),
                ..run_args()
            },
            RunArgs {
                max_rate: Some(50.0),
                ..run_args()
            },
            RunArgs {
                rate: Some("auto".into()),
                max_rate: Some(0.0),
                ..run_args()
            },
            RunArgs {
                burst: Some(0),
                ..run_args()
            },
            RunArgs {
                max_wait: 0.0,
                ..run_args()
            },
            RunArgs {
                window: Some(0),
                ..run_args()
            },
        ] {
            assert!(RunSettings::from_args(&bad).is_err(), "{bad:?}");
        }
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
