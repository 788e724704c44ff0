//! Named profiles in a config file, for people with more than one Gcore
//! account: `gcore-iam-bulk/config.toml` in the platform's config folder
//! (`$XDG_CONFIG_HOME`, else `~/.config`, on Linux), chosen with
//! `--profile NAME` or `GCORE_PROFILE`. A profile fills what the command
//! line and the environment leave unset: flags, then environment, then
//! the profile, then the defaults. A key never sits in the file itself:
//! a profile names a file that holds it, or a command that prints it.
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
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

/// One profile, checked, and where it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub file: PathBuf,
    pub base_url: Option<String>,
    pub key: Option<KeyFrom>,
    /// As `--rate` takes it: a number or `auto`.
    pub rate: Option<String>,
    pub burst: Option<u32>,
    pub concurrency: Option<usize>,
}

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
    let (name, from) = match (flag, env(PROFILE_ENV)) {
        (Some(name), _) => (name.to_string(), "--profile"),
        (None, Some(name)) if !name.trim().is_empty() => (name.trim().to_string(), PROFILE_ENV),
        _ => return Ok(None),
    };
    let Some(path) = path else {
        return Err(Fatal::Usage(format!(
            "{from} {name}: this system has no config folder (set XDG_CONFIG_HOME or HOME)"
        )));
    };
    let text = std::fs::read_to_string(path).map_err(|error| {
        Fatal::Usage(format!(
            "{from} {name}: cannot read the config file {}: {error}; profiles live there \
             (see the README, Profiles)",
            path.display()
        ))
    })?;
    let mistake = |error: toml::de::Error| {
        Fatal::Usage(format!(
            "the config file {} has a mistake: {}",
            path.display(),
            one_line(&error.to_string())
        ))
    };
    // A key in the file gets its own message, before the general check
    // (which would list `api_key` among the keys it expects).
    let table: toml::Table = toml::from_str(&text).map_err(mistake)?;
    let profiles = table.get("profiles").and_then(toml::Value::as_table);
    for (holder, profile) in profiles.into_iter().flatten() {
        if profile
            .as_table()
            .is_some_and(|p| p.contains_key("api_key"))
        {
            return Err(Fatal::Usage(format!(
                "{} (profile {holder}): a key never goes in the config file, where backups \
                 and screen shares see it; name a file that holds it (api_key_file) or a \
                 command that prints it (api_key_command)",
                path.display()
            )));
        }
    }
    let mut config: ConfigFile = toml::from_str(&text).map_err(mistake)?;
    let Some(raw) = config.profiles.remove(&name) else {
        let known: Vec<&str> = config.profiles.keys().map(String::as_str).collect();
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
        (Some(file), None) => Some(KeyFrom::File(expand_home(&file))),
        (None, Some(command)) if command.trim().is_empty() => {
            return Err(Fatal::Usage(at("api_key_command is empty")));
        }
        (None, Some(command)) => Some(KeyFrom::Command(command)),
        (None, None) => None,
    };
    let rate = match raw.rate {
        Some(RateValue::Number(rate)) => Some(rate.to_string()),
        Some(RateValue::Text(text)) => Some(text),
        None => None,
    };
    Ok(Some(Profile {
        name,
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

/// toml's messages quote the line with a caret under it: one line here,
/// as every error of this tool is.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.chars().all(|c| "|^ ".contains(c)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Runs a profile's `api_key_command` once (with `sh -c`, standard input
/// closed, its error output shown) and returns what it printed, trimmed.
/// What it printed is never quoted in an error: it may be the key.
pub fn run_key_command(profile: &str, command: &str) -> Result<String, Fatal> {
    let fail = |why: String| {
        Fatal::Usage(format!(
            "the api_key_command of profile {profile} ({command}) {why}; run it yourself to see"
        ))
    };
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|error| fail(format!("could not start: {error}")))?;
    if !output.status.success() {
        let how = match output.status.code() {
            Some(code) => format!("exited with {code}"),
            None => "was killed by a signal".to_string(),
        };
        return Err(fail(how));
    }
    let text = String::from_utf8(output.stdout)
        .map_err(|_| fail("printed something that is not UTF-8 text".to_string()))?;
    let key = text.trim();
    if key.is_empty() {
        return Err(fail("printed nothing".to_string()));
    }
    Ok(key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn pick(text: &str, name: &str) -> Result<Option<Profile>, String> {
        let (_dir, path) = write(text);
        select(Some(name), |_| None, Some(&path)).map_err(|e| e.to_string())
    }

    #[test]
    fn a_profile_is_read_and_named_by_flag_or_environment() {
        let text = "[profiles.a]\nbase_url = \"https://a.example\"\nrate = 20\nburst = 5\n\
                    concurrency = 4\napi_key_command = \"echo k\"\n\n[profiles.b]\nrate = \"auto\"\n";
        let a = pick(text, "a").unwrap().unwrap();
        assert_eq!(a.base_url.as_deref(), Some("https://a.example"));
        assert_eq!(a.rate.as_deref(), Some("20"));
        assert_eq!((a.burst, a.concurrency), (Some(5), Some(4)));
        assert_eq!(a.key, Some(KeyFrom::Command("echo k".to_string())));
        assert_eq!(
            pick(text, "b").unwrap().unwrap().rate.as_deref(),
            Some("auto")
        );
        let (_dir, path) = write(text);
        let by_env = select(
            None,
            |name| (name == PROFILE_ENV).then(|| "b".into()),
            Some(&path),
        );
        assert_eq!(by_env.unwrap().unwrap().name, "b");
        assert_eq!(select(None, |_| None, Some(&path)).unwrap(), None);
    }

    #[test]
    fn mistakes_name_the_file_the_line_and_the_key() {
        let unknown = pick("[profiles.a]\nrate = 5\nbase_ulr = \"x\"\n", "a").unwrap_err();
        assert!(unknown.contains("config.toml has a mistake"), "{unknown}");
        assert!(unknown.contains("line 3"), "{unknown}");
        assert!(unknown.contains("base_ulr"), "{unknown}");
        let syntax = pick("[profiles.a\nrate = 5\n", "a").unwrap_err();
        assert!(syntax.contains("line 1"), "{syntax}");
        assert!(!syntax.contains('\n'), "{syntax}");
        let missing = pick("[profiles.a]\n[profiles.b]\n", "c").unwrap_err();
        assert!(
            missing.contains("no such profile") && missing.contains("a, b"),
            "{missing}"
        );
        let key = pick("[profiles.a]\napi_key = \"secret-123\"\n", "a").unwrap_err();
        assert!(key.contains("a key never goes in the config file"), "{key}");
        assert!(!key.contains("secret-123"), "{key}");
        let both = pick(
            "[profiles.a]\napi_key_file = \"k\"\napi_key_command = \"echo\"\n",
            "a",
        )
        .unwrap_err();
        assert!(both.contains("keep one"), "{both}");
        let wrong_type = pick("[profiles.a]\nburst = \"five\"\n", "a").unwrap_err();
        assert!(wrong_type.contains("burst"), "{wrong_type}");
        let absent = select(
            Some("a"),
            |_| None,
            Some(Path::new("/nonexistent/config.toml")),
        )
        .unwrap_err()
        .to_string();
        assert!(absent.contains("cannot read the config file"), "{absent}");
    }

    #[test]
    fn the_key_command_runs_once_and_its_failures_are_clear() {
        assert_eq!(run_key_command("a", "printf ' k3y \\n'").unwrap(), "k3y");
        // What it printed (here "secret-out") is not quoted; the command is.
        let failed = run_key_command("a", "printf 'sec%s' ret-out; exit 3")
            .unwrap_err()
            .to_string();
        assert!(failed.contains("exited with 3"), "{failed}");
        assert!(!failed.contains("secret-out"), "{failed}");
        let empty = run_key_command("a", "true").unwrap_err().to_string();
        assert!(empty.contains("printed nothing"), "{empty}");
    }
}
