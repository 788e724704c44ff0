//! Named profiles in a config file, for people with more than one Gcore
//! account: `gcore-iam-bulk/config.toml` in the platform's config folder
//! (`$XDG_CONFIG_HOME`, else `~/.config`, on Linux), chosen with
//! `--profile NAME` or `GCORE_PROFILE`. Flags win; a profile named by
//! `--profile` then wins over `GCORE_API_KEY` and `GCORE_BASE_URL` (an
//! explicit choice beats the environment, as with the AWS CLI), and one
//! named by `GCORE_PROFILE` only fills what the environment leaves unset
//! (see `settings::resolve`). A key never sits in the file itself: a
//! profile names a file that holds it, or a command that prints it; no
//! message quotes a line's value, a key file's name that names no file,
//! or a command that does not start with a program.
//!
//! ```toml
//! [profiles.reseller-a]
//! base_url = "https://api.gcore.com"
//! api_key_file = "~/.config/gcore/reseller-a.key"
//! rate = 20            # or "auto"
//! burst = 5
//! concurrency = 8
//!
//! [profiles.reseller-b]
//! api_key_command = "pass show gcore/reseller-b"
//! api_key_command_timeout = 30   # seconds (default 30, at most 600)
//! ```

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::error::Fatal;

/// The environment variable that names the profile when `--profile` does not.
pub const PROFILE_ENV: &str = "GCORE_PROFILE";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    profiles: BTreeMap<String, RawProfile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    base_url: Option<String>,
    api_key_file: Option<PathBuf>,
    api_key_command: Option<String>,
    api_key_command_timeout: Option<f64>,
    rate: Option<RateValue>,
    burst: Option<u32>,
    concurrency: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RateValue {
    Number(f64),
    Text(String),
}

/// Where a profile's key comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyFrom {
    File(PathBuf),
    Command(String),
}

/// How the profile was named: an explicit `--profile` wins over the
/// environment's key and base URL, `GCORE_PROFILE` does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChosenBy {
    Flag,
    Environment,
}

/// One profile, checked, and where it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub chosen_by: ChosenBy,
    pub file: PathBuf,
    pub base_url: Option<String>,
    pub key: Option<KeyFrom>,
    /// As `--rate` takes it: a number or `auto`.
    pub rate: Option<String>,
    pub burst: Option<u32>,
    pub concurrency: Option<usize>,
    /// How long `api_key_command` may take.
    pub key_command_timeout: Duration,
}

/// How long an `api_key_command` may run by default: a password manager
/// that asks for a passphrase needs a moment, one that hangs is stopped.
pub const DEFAULT_KEY_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest `api_key_command_timeout` taken.
pub const MAX_KEY_COMMAND_TIMEOUT: f64 = 600.0;
/// The most of a config file that is read: profiles take a few hundred bytes.
const MAX_CONFIG_FILE: u64 = 1 << 20;
/// The most an `api_key_command` may print, as a key file may hold.
pub const MAX_KEY_OUTPUT: usize = 4096;

/// The config file's place: `<config folder>/gcore-iam-bulk/config.toml`.
pub fn config_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "gcore-iam-bulk")
        .map(|dirs| dirs.config_dir().join("config.toml"))
}

/// The profile a run uses: `flag` (`--profile`), else `GCORE_PROFILE`
/// (read by `env`); `None` when neither names one.
pub fn select(
    flag: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
    path: Option<&Path>,
) -> Result<Option<Profile>, Fatal> {
    let (name, from, chosen_by) = match (flag, env(PROFILE_ENV)) {
        (Some(name), _) => (name.to_string(), "--profile", ChosenBy::Flag),
        (None, Some(name)) if !name.trim().is_empty() => {
            (name.trim().to_string(), PROFILE_ENV, ChosenBy::Environment)
        }
        _ => return Ok(None),
    };
    // The name as messages and the account line show it: one that does
    // not read as a profile's name may be a key typed as one.
    let (name, looked_up) = match profile_like(&name) {
        true => (name.clone(), name),
        false => ("(a name not shown: it may be a key)".to_string(), name),
    };
    let Some(path) = path else {
        return Err(Fatal::Usage(format!(
            "{from} {name}: this system has no config folder (set XDG_CONFIG_HOME or HOME)"
        )));
    };
    let text = read_config(path).map_err(|why| {
        Fatal::Usage(format!(
            "{from} {name}: the config file {} {why}; profiles live there (see the README, \
             Profiles)",
            path.display()
        ))
    })?;
    let mistake = |error: toml::de::Error| {
        Fatal::Usage(format!(
            "the config file {} has a mistake {}",
            path.display(),
            describe_mistake(&text, &error)
        ))
    };
    // A key in the file gets its own message, before the general check
    // (which would list `api_key` among the keys it expects).
    let table: toml::Table = toml::from_str(&text).map_err(mistake)?;
    let profiles = table.get("profiles").and_then(toml::Value::as_table);
    for (holder, profile) in profiles.into_iter().flatten() {
        let Some(keys) = profile.as_table() else {
            continue;
        };
        if let Some(field) = keys.keys().find(|key| names_a_key(key)) {
            return Err(Fatal::Usage(format!(
                "{} (profile {holder}): {} looks like a key; {KEY_NOT_IN_FILE}",
                path.display(),
                shown_name(field)
            )));
        }
    }
    let mut config: ConfigFile = toml::from_str(&text).map_err(mistake)?;
    let Some(raw) = config.profiles.remove(&looked_up) else {
        // Names that read as names (lowercase letters, digits, `-`, `_`, at
        // most 32); another may be a key pasted as a profile's name.
        let hidden = config.profiles.keys().filter(|n| !profile_like(n)).count();
        let mut known: Vec<&str> = config
            .profiles
            .keys()
            .map(String::as_str)
            .filter(|n| profile_like(n))
            .collect();
        let not_shown = format!("{hidden} more not shown (they may be keys)");
        if hidden > 0 {
            known.push(&not_shown);
        }
        return Err(Fatal::Usage(format!(
            "{from} {name}: no such profile in {}; {}",
            path.display(),
            match known.is_empty() {
                true => "it has none".to_string(),
                false => format!("it has {}", known.join(", ")),
            }
        )));
    };
    let at = |what: &str| format!("{} (profile {name}): {what}", path.display());
    let key = match (raw.api_key_file, raw.api_key_command) {
        (Some(_), Some(_)) => {
            return Err(Fatal::Usage(at(
                "api_key_file and api_key_command both given; keep one",
            )));
        }
        (Some(file), None) => Some(KeyFrom::File(beside(path, &expand_home(&file)))),
        (None, Some(command)) if command.trim().is_empty() => {
            return Err(Fatal::Usage(at("api_key_command is empty")));
        }
        (None, Some(command)) => {
            refuse_open_to_others(path).map_err(|why| Fatal::Usage(at(&why)))?;
            Some(KeyFrom::Command(command))
        }
        (None, None) => None,
    };
    let rate = match raw.rate {
        Some(RateValue::Number(rate)) => Some(rate.to_string()),
        // Any other text is refused here, unquoted: it may be a key pasted
        // on the wrong line.
        Some(RateValue::Text(text)) if text.trim().eq_ignore_ascii_case("auto") => Some(text),
        Some(RateValue::Text(_)) => {
            return Err(Fatal::Usage(at(
                "rate must be a number of requests per second or \"auto\" (the value is not \
                 shown)",
            )));
        }
        None => None,
    };
    let key_command_timeout = match raw.api_key_command_timeout {
        None => DEFAULT_KEY_COMMAND_TIMEOUT,
        Some(seconds)
            if seconds.is_finite() && seconds > 0.0 && seconds <= MAX_KEY_COMMAND_TIMEOUT =>
        {
            Duration::from_secs_f64(seconds)
        }
        Some(_) => {
            return Err(Fatal::Usage(at(&format!(
                "api_key_command_timeout must be a number of seconds above 0 and at most \
                 {MAX_KEY_COMMAND_TIMEOUT}"
            ))));
        }
    };
    Ok(Some(Profile {
        name,
        chosen_by,
        key_command_timeout,
        file: path.to_path_buf(),
        base_url: raw.base_url,
        key,
        rate,
        burst: raw.burst,
        concurrency: raw.concurrency,
    }))
}

/// `~/x` as the shell would read it (the file is written by hand).
fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), directories::BaseDirs::new()) {
        (Ok(rest), Some(dirs)) => dirs.home_dir().join(rest),
        _ => path.to_path_buf(),
    }
}

/// Said wherever a key is found in the config file.
const KEY_NOT_IN_FILE: &str = "a key never goes in the config file, where backups and screen \
                               shares see it; name a file that holds it (api_key_file) or a \
                               command that prints it (api_key_command)";

/// The names a profile may hold.
const FIELDS: [&str; 7] = [
    "base_url",
    "api_key_file",
    "api_key_command",
    "api_key_command_timeout",
    "rate",
    "burst",
    "concurrency",
];

/// Names under which people paste a key itself.
fn names_a_key(name: &str) -> bool {
    let name = name.to_ascii_lowercase().replace('-', "_");
    [
        "api_key",
        "apikey",
        "key",
        "token",
        "api_token",
        "secret",
        "password",
        "auth",
    ]
    .contains(&name.as_str())
}

/// Whether a profile's name reads as one (see its use).
fn profile_like(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A name from the file as a message shows it: a known one, or one that
/// reads as a word (lowercase letters and `_`, at most 24); anything else
/// may be a key pasted as a line of its own, and is not shown.
fn shown_name(name: &str) -> String {
    let word = !name.is_empty()
        && name.len() <= 24
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'-');
    match FIELDS.contains(&name) || word {
        true => format!("`{name}`"),
        false => "a name (not shown: it may be a key)".to_string(),
    }
}

/// A config file is read only if it is a regular file of at most
/// [`MAX_CONFIG_FILE`] bytes: a named pipe would wait for a writer, out of
/// reach of Ctrl-C, and a device would never end.
fn read_config(path: &Path) -> Result<String, String> {
    let not_regular = || {
        "is not a regular file (a named pipe, a device or a folder?); make it a plain text file"
            .to_string()
    };
    let metadata = std::fs::metadata(path).map_err(|e| format!("cannot be read: {e}"))?;
    if !metadata.is_file() {
        return Err(not_regular());
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot be read: {e}"))?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Err(not_regular());
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot be read: {e}"))?;
    if bytes.len() as u64 > MAX_CONFIG_FILE {
        return Err(format!(
            "holds more than {} MiB; it should hold a few profiles",
            MAX_CONFIG_FILE >> 20
        ));
    }
    String::from_utf8(bytes).map_err(|_| "is not UTF-8 text; save it as UTF-8".to_string())
}

/// A TOML mistake by its line and the name on that line, never the value:
/// toml's own message quotes the line, and the line may be a key pasted
/// where it does not belong (`api_key = 1234$abcd...` unquoted).
fn describe_mistake(text: &str, error: &toml::de::Error) -> String {
    let mut place = String::new();
    if let Some(span) = error.span() {
        let start = span.start.min(text.len());
        let line = text[..start].matches('\n').count() + 1;
        place = format!("at line {line}");
        let line_text = text.lines().nth(line - 1).unwrap_or_default();
        if let Some((name, _)) = line_text.split_once('=') {
            let name = name.trim().trim_matches(['"', '\'']);
            place.push_str(&format!(" ({})", shown_name(name)));
            if names_a_key(name) {
                return format!("{place}: {KEY_NOT_IN_FILE}");
            }
        }
    }
    let what = without_values(error.message());
    match place.is_empty() {
        true => format!(": {what}"),
        false => format!("{place}: {what}"),
    }
}

/// toml's message with nothing in it that may be a value or a name from the
/// file, on one line.
///
/// toml and serde quote a value (`string "…"`, with its own escapes;
/// `integer \`5\``) and a name (`unknown field \`…\``), but no quoting can
/// be trusted to end where the value does: the value may hold the quote
/// characters, escaped or not. So the message is read from its start only
/// as long as it reads as toml's own phrasing ([`phrasing`]); at the first
/// `"` or `'` (where a value starts), or anything else the phrasing has
/// not, the rest is left out, but for its last `, expected …` when that
/// reads as phrasing to its end: what the value should have been.
fn without_values(message: &str) -> String {
    if let Some(named) = without_name(message) {
        return named;
    }
    let (mut out, cut) = phrasing(message);
    if let Some(rest) = cut {
        out.push_str("(not shown)");
        let expected = rest.rfind(", expected ").map(|at| phrasing(&rest[at..]));
        if let Some((expected, None)) = expected {
            out.push_str(&expected);
        }
    }
    out.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// serde's messages about a name (`unknown field \`…\`, expected one of
/// \`rate\`, …`), with the name shown as [`backticked`] allows, else left
/// out. The name runs to the last place where serde's own words take
/// over, so a backtick inside it cannot end it early; `None` for another
/// message.
fn without_name(message: &str) -> Option<String> {
    let (about, name) = [
        "unknown field",
        "unknown variant",
        "missing field",
        "duplicate field",
    ]
    .into_iter()
    .find_map(|about| Some((about, message.strip_prefix(about)?.strip_prefix(" `")?)))?;
    let (name, after) = match ["`, expected ", "`, there are no "]
        .into_iter()
        .filter_map(|after| name.rfind(after))
        .max()
    {
        Some(end) => (&name[..end], &name[end + 1..]),
        None => (name.strip_suffix('`')?, ""),
    };
    let name = backticked(name).map_or("(not shown)".to_string(), |name| format!("`{name}`"));
    let after = match phrasing(after) {
        (after, None) => after,
        (_, Some(_)) => String::new(),
    };
    Some(format!("{about} {name}{after}"))
}

/// The start of `text` that reads as toml's phrasing, and the rest of
/// `text`, from where it stops reading so, if it does.
///
/// The phrasing is words ([`phrasing_word`]), spaces and a little
/// punctuation (`,:;().-`), and tokens in backticks that [`backticked`]
/// shows, each followed by a space, a comma, `;`, `)` or the end. Whatever
/// is shown is made of these pieces only, so a value that confuses the
/// reading (a backtick or a quote inside it) shows no more than they allow.
fn phrasing(text: &str) -> (String, Option<&str>) {
    let mut out = String::new();
    let mut at = 0;
    while let Some(c) = text[at..].chars().next() {
        let rest = &text[at..];
        if c == '`' {
            let token = rest[1..].find('`').and_then(|end| {
                let ends_well = rest[end + 2..]
                    .chars()
                    .next()
                    .is_none_or(|next| " \n,;)".contains(next));
                backticked(&rest[1..1 + end])
                    .filter(|_| ends_well)
                    .map(|inner| (inner, end + 2))
            });
            let Some((inner, len)) = token else {
                return (out, Some(rest));
            };
            out.push_str(&format!("`{inner}`"));
            at += len;
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if !phrasing_word(&rest[..len]) {
                return (out, Some(rest));
            }
            out.push_str(&rest[..len]);
            at += len;
        } else if " \n,:;().-".contains(c) {
            out.push(c);
            at += 1;
        } else {
            return (out, Some(rest));
        }
    }
    (out, None)
}

/// A word toml's and serde's messages are made of: lowercase (`invalid`,
/// `usize`), a small number (a length), a Rust number type (`u32`), or a
/// type of this file's (`untagged enum RateValue`).
fn phrasing_word(word: &str) -> bool {
    let lowercase = word.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    let number = word.bytes().all(|b| b.is_ascii_digit());
    (lowercase && word.len() <= 24)
        || (number && word.len() <= 4)
        || [
            "u8",
            "u16",
            "u32",
            "u64",
            "u128",
            "i8",
            "i16",
            "i32",
            "i64",
            "i128",
            "f32",
            "f64",
            "RateValue",
            "RawProfile",
            "ConfigFile",
            "Option",
        ]
        .contains(&word)
}

/// What toml's message puts in backticks, when it is shown: a field of a
/// profile, a name as [`shown_name`] shows one, a short literal (`]]`,
/// `"`, `0x`), a short number (`integer \`5\``); `None` for anything else.
fn backticked(inner: &str) -> Option<&str> {
    let literal = inner.len() <= 3 && !inner.bytes().any(|b| b.is_ascii_alphanumeric());
    let number = inner.len() <= 11
        && inner.bytes().any(|b| b.is_ascii_digit())
        && inner
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-._eE".contains(&b));
    let name = shown_name(inner).starts_with('`');
    (literal || number || name || ["0x", "0o", "0b", "inf", "nan"].contains(&inner))
        .then_some(inner)
}

/// A profile's path, relative to the config file's folder when relative
/// (it is read from the file, not typed in the current directory).
fn beside(config: &Path, path: &Path) -> PathBuf {
    match path.is_relative() {
        true => folder_of(config).join(path),
        false => path.to_path_buf(),
    }
}

/// As ssh refuses its config: a file (or its folder) that another user may
/// write, or that another user owns, would run that user's command as this
/// one. Says how to fix it.
fn refuse_open_to_others(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        // SAFETY: getuid has no preconditions and cannot fail.
        let me = unsafe { libc::getuid() };
        let folder = folder_of(path);
        for (place, what) in [(path, "file"), (folder, "folder")] {
            let Ok(metadata) = std::fs::metadata(place) else {
                continue;
            };
            let mode = metadata.permissions().mode();
            let sticky = mode & 0o1000 != 0;
            if mode & 0o022 != 0 && !(what == "folder" && sticky) {
                return Err(format!(
                    "api_key_command is not run: the config {what} {} may be written by other \
                     users (mode {:o}), who could make it run their command; fix it with \
                     chmod go-w {}",
                    place.display(),
                    mode & 0o7777,
                    place.display()
                ));
            }
            if metadata.uid() != me && metadata.uid() != 0 {
                return Err(format!(
                    "api_key_command is not run: the config {what} {} belongs to another user; \
                     fix it with chown $(id -u) {}",
                    place.display(),
                    place.display()
                ));
            }
        }
    }
    let _ = path;
    Ok(())
}

/// How messages and `config` name a key file: a path that names no file
/// may be the key itself, pasted as `api_key_file`, so only its folder is
/// shown then.
pub fn key_path_shown(path: &Path) -> String {
    if std::fs::symlink_metadata(path).is_ok() {
        return path.display().to_string();
    }
    let hidden = "(its name is not shown: it names no file, and may be a key pasted in the \
                  wrong place)";
    match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() && folder.is_dir() => {
            format!(
                "a file in {} that does not exist {hidden}",
                folder.display()
            )
        }
        _ => format!("a file that does not exist {hidden}"),
    }
}

/// The command as `config` and messages show it: only when its first word
/// (after `VAR=value` words) is a program found on `PATH`, a path to one,
/// or a word of the shell; anything else may be a key pasted as the command.
pub fn command_shown(command: &str) -> Option<String> {
    let first = command
        .split_whitespace()
        .find(|word| !word.contains('=') || word.starts_with('='))?;
    const SHELL: &[&str] = &[
        "if", "for", "while", "until", "case", "{", "(", "!", "exec", "command", "eval", "cd", ".",
        "source", "exit", "true", "false", ":", "echo", "printf", "test", "[", "export", "set",
        "unset", "read", "umask", "ulimit", "trap", "wait",
    ];
    let found = SHELL.contains(&first)
        || match first.contains('/') {
            true => Path::new(first).is_file(),
            false => std::env::var_os("PATH").is_some_and(|paths| {
                std::env::split_paths(&paths).any(|dir| dir.join(first).is_file())
            }),
        };
    // The program only: the rest may hold the key (`echo <KEY>`).
    let more = command.split_whitespace().count() > 1 || first != command.trim();
    found.then(|| match more {
        true => format!("{first} …"),
        false => first.to_string(),
    })
}

/// The signal that came while a key command ran (0: none).
static SIGNALLED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

#[cfg(unix)]
extern "C" fn note_signal(signal: libc::c_int) {
    SIGNALLED.store(signal, std::sync::atomic::Ordering::SeqCst);
}

/// SIGINT and SIGTERM noted instead of acted on while it lives, and the
/// handlers before it put back after: the command's process group must be
/// stopped before this process ends.
#[cfg(unix)]
struct NoteSignals {
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

#[cfg(unix)]
impl NoteSignals {
    fn install() -> NoteSignals {
        SIGNALLED.store(0, std::sync::atomic::Ordering::SeqCst);
        let mut previous = Vec::new();
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: a zeroed sigaction is valid; the handler only stores
            // to an atomic, which is async-signal-safe.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = note_signal as *const () as libc::sighandler_t;
                libc::sigemptyset(&mut action.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, &action, &mut old) == 0 {
                    previous.push((signal, old));
                }
            }
        }
        NoteSignals { previous }
    }
}

#[cfg(unix)]
impl Drop for NoteSignals {
    fn drop(&mut self) {
        for (signal, old) in &self.previous {
            // SAFETY: puts back the action read by `install`.
            unsafe {
                libc::sigaction(*signal, old, std::ptr::null_mut());
            }
        }
    }
}

/// Stops a command and every process it started in its group.
fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        // SAFETY: the child leads its own process group (`process_group(0)`),
        // so its id is the group's; it is not reaped yet, so the id is ours.
        unsafe {
            libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Reads at most `max` bytes of `from` on a thread of its own, then
/// discards the rest (so the command never blocks on a full pipe); says
/// whether there was more.
fn read_capped(
    mut from: impl std::io::Read + Send + 'static,
    max: usize,
) -> std::sync::mpsc::Receiver<(Vec<u8>, bool)> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let _ = (&mut from).take(max as u64 + 1).read_to_end(&mut kept);
        let more = kept.len() > max;
        kept.truncate(max);
        // Sent at once when over the cap: the command is stopped then.
        if more {
            let _ = tx.send((kept, true));
            let _ = std::io::copy(&mut from, &mut std::io::sink());
        } else {
            let _ = tx.send((kept, false));
        }
    });
    rx
}

/// Runs a profile's `api_key_command` once and returns what it printed,
/// trimmed. With `sh -c`, standard input closed, in a process group of its
/// own, which is killed whole when the command takes longer than `timeout`,
/// prints more than [`MAX_KEY_OUTPUT`] bytes, or this process gets SIGINT
/// or SIGTERM. What it printed is never shown, nor its error output (which
/// may hold the key: `sh: 1: <a key>: not found` for a key pasted as the
/// command); only that there was some.
pub fn run_key_command(profile: &str, command: &str, timeout: Duration) -> Result<String, Fatal> {
    use std::process::{Command, Stdio};
    let named = match command_shown(command) {
        Some(shown) => format!("the api_key_command of profile {profile} ({shown})"),
        None => format!(
            "the api_key_command of profile {profile} (not shown: it does not start with a \
             program found on PATH, and may be a key pasted in the wrong place)"
        ),
    };
    let fail = |why: String| Fatal::Usage(format!("{named} {why}"));
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        sh.process_group(0);
    }
    #[cfg(unix)]
    let signals = NoteSignals::install();
    let mut child = sh
        .spawn()
        .map_err(|error| fail(format!("could not start: {error}")))?;
    let stdout = read_capped(child.stdout.take().expect("piped"), MAX_KEY_OUTPUT);
    let stderr = read_capped(child.stderr.take().expect("piped"), MAX_KEY_OUTPUT);
    let deadline = Instant::now() + timeout;
    let (mut printed, mut status) = (None, None);
    // Polled, every 20 ms at most: the child's end, its output, the
    // deadline and a signal are four sources std cannot wait on at once.
    let stopped = loop {
        if printed.is_none() {
            match stdout.try_recv() {
                Ok((_, true)) => break Some(format!("printed more than {MAX_KEY_OUTPUT} bytes")),
                Ok(output) => printed = Some(output.0),
                Err(_) => {}
            }
        }
        if status.is_none() {
            status = child.try_wait().ok().flatten();
        }
        if let (Some(_), Some(_)) = (&printed, &status) {
            break None;
        }
        let signal = SIGNALLED.load(std::sync::atomic::Ordering::SeqCst);
        if signal != 0 {
            kill_group(&mut child);
            #[cfg(unix)]
            drop(signals);
            let signal = match signal {
                libc::SIGTERM => crate::exit::Signal::Terminate,
                _ => crate::exit::Signal::Interrupt,
            };
            crate::say!(
                "interrupted while the api_key_command of profile {profile} ran: it was \
                 stopped with the processes it started; nothing was sent"
            );
            std::process::exit(i32::from(
                crate::exit::Exit::of_run(Some(signal), false).code(),
            ));
        }
        if Instant::now() >= deadline {
            break Some(format!(
                "did not finish within {} s (api_key_command_timeout in the profile); it was \
                 stopped with the processes it started",
                timeout.as_secs_f64()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if stopped.is_some() {
        kill_group(&mut child);
    }
    #[cfg(unix)]
    drop(signals);
    let printed = printed.unwrap_or_default();
    let errors = stderr
        .recv_timeout(Duration::from_millis(200))
        .map(|(bytes, _)| bytes)
        .unwrap_or_default();
    show_error_output(&errors);
    if let Some(why) = stopped {
        return Err(fail(why));
    }
    let status = status.expect("the loop ends with a status");
    if !status.success() {
        let how = match status.code() {
            Some(code) => format!("exited with {code}"),
            None => "was killed by a signal".to_string(),
        };
        return Err(fail(format!("{how}; run it yourself to see why")));
    }
    let text = String::from_utf8(printed)
        .map_err(|_| fail("printed something that is not UTF-8 text".to_string()))?;
    let key = text.trim();
    if key.is_empty() {
        return Err(fail("printed nothing".to_string()));
    }
    Ok(key.to_string())
}

/// The command's error output on stderr is not shown: it may hold the key
/// (a command that prints it there by mistake, or a shell that quotes a
/// key pasted as the command), and nothing can tell. Only that there was
/// some is said, and how to read it.
fn show_error_output(errors: &[u8]) {
    if String::from_utf8_lossy(errors).trim().is_empty() {
        return;
    }
    crate::say!(
        "api_key_command: it wrote {} bytes to its error output, not shown here (they may hold \
         the key); run the command yourself to read them",
        errors.len()
    );
}

/// The folder a file named `path` goes in (`.` for a bare name).
pub fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests;
