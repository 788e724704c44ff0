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
use std::time::Duration;

use serde::Deserialize;

use crate::error::Fatal;
use crate::files::folder_of;

mod command;
mod mistakes;

pub(crate) use command::*;
use mistakes::*;

/// The environment variable that names the profile when `--profile` does not.
pub(crate) const PROFILE_ENV: &str = "GCORE_PROFILE";

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
pub(crate) enum ChosenBy {
    Flag,
    Environment,
}

/// One profile, checked, and where it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub(crate) chosen_by: ChosenBy,
    pub file: PathBuf,
    pub base_url: Option<String>,
    pub key: Option<KeyFrom>,
    /// As `--rate` takes it: a number or `auto`.
    pub rate: Option<String>,
    pub burst: Option<u32>,
    pub concurrency: Option<usize>,
    /// How long `api_key_command` may take.
    pub(crate) key_command_timeout: Duration,
}

/// How long an `api_key_command` may run by default: a password manager
/// that asks for a passphrase needs a moment, one that hangs is stopped.
pub(crate) const DEFAULT_KEY_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest `api_key_command_timeout` taken.
pub(crate) const MAX_KEY_COMMAND_TIMEOUT: f64 = 600.0;
/// The most of a config file that is read: profiles take a few hundred bytes.
const MAX_CONFIG_FILE: u64 = 1 << 20;
/// The most an `api_key_command` may print, as a key file may hold.
pub(crate) const MAX_KEY_OUTPUT: usize = 4096;

/// The config file's place: `<config folder>/gcore-iam-bulk/config.toml`.
pub(crate) fn config_path() -> Option<PathBuf> {
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
            "{from} {name}: the config file {} {why}; profiles live there (see docs/REFERENCE.md, \
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
pub(crate) fn key_path_shown(path: &Path) -> String {
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
pub(crate) fn command_shown(command: &str) -> Option<String> {
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

#[cfg(test)]
mod tests;
