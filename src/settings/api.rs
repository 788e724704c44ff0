//! Where the API is and the key: the one precedence of flags, profile and
//! environment ([`resolve`]), the key read from a file, the environment or
//! a profile's command, and the API's settings built once.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use rustls::pki_types::CertificateDer;

use crate::cli::ApiArgs;
use crate::error::Fatal;
use crate::profile::{
    ChosenBy, DEFAULT_KEY_COMMAND_TIMEOUT, KeyFrom, Profile, key_path_shown, run_key_command,
};

use super::*;

/// The environment variable that holds the API key (named in a leaf: the
/// workbook reader's child process is started without it).
pub(crate) use crate::environment::API_KEY_ENV;
/// The environment variable that may hold the base URL.
pub(crate) const BASE_URL_ENV: &str = "GCORE_BASE_URL";
pub(crate) const DEFAULT_BASE_URL: &str = "https://api.gcore.com";
/// Connecting should take milliseconds; a host that does not accept within
/// this is down or unreachable, and waiting the full `--timeout` would only
/// slow the retries.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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
        if key.contains('\n') {
            return Err(
                "holds more than one line; give the key alone, on one line (a key file holds \
                 nothing else)"
                    .to_string(),
            );
        }
        if key.bytes().any(|b| b.is_ascii_control() || !b.is_ascii()) {
            return Err("holds control or non-ASCII characters; copy the key again".to_string());
        }
        // Pasted with what goes around it: the header and its scheme, a
        // shell's line, quotes. A key is one word of printable characters.
        let alone = "give the key alone (the tool writes the header \"Authorization: apikey \
                     KEY\" itself)";
        let lower = key.to_ascii_lowercase();
        let pasted = [
            "authorization",
            "apikey",
            "bearer",
            "export ",
            "set ",
            "$env:",
            "gcore_api_key",
        ]
        .into_iter()
        .find(|start| {
            lower.starts_with(start)
                && (start.ends_with([' ', ':'])
                    || lower[start.len()..].starts_with([' ', ':', '=']))
        });
        if let Some(start) = pasted {
            let shown = key[..start.len()].trim_end();
            return Err(format!("starts with \"{shown}\"; {alone}"));
        }
        if key.len() >= 2
            && (key.starts_with('"') || key.starts_with('\''))
            && key.ends_with(&key[..1])
        {
            return Err(format!("is in quotes; {alone}"));
        }
        if key.contains([' ', '\t']) {
            return Err(format!("holds a space (an API key has none); {alone}"));
        }
        Ok(ApiKey(key.to_string()))
    }

    pub(crate) fn expose(&self) -> &str {
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
pub(crate) enum KeyChoice {
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
    pub(crate) fn describe(&self) -> String {
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
pub(crate) struct Resolved {
    pub base_url: String,
    /// `--base-url`, `GCORE_BASE_URL`, `profile NAME` or `default`.
    pub(crate) base_from: String,
    pub key: KeyChoice,
    /// The environment's variables an explicit `--profile` set aside.
    pub set_aside: Vec<&'static str>,
}

/// The process environment as a run and `config` read it: one reader, so
/// that both see a variable alike (set but empty included).
pub(crate) fn from_environment(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The precedence: flags first; then a profile named by `--profile` (an
/// explicit choice: its key and base URL, or the defaults, and never
/// `GCORE_API_KEY` or `GCORE_BASE_URL`, which could send one account's key
/// to another's host); then the environment; then a profile named by
/// `GCORE_PROFILE`; then the defaults.
pub(crate) fn resolve(
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

impl ApiSettings {
    /// What the HTTP client takes of these settings.
    pub fn client(&self) -> crate::http::ClientConfig<'_> {
        crate::http::ClientConfig {
            base_url: &self.base_url,
            api_key: self.api_key.expose(),
            timeout: self.timeout,
            connect_timeout: self.connect_timeout,
            extra_roots: &self.extra_roots,
            proxy: self.proxy.as_ref().map(|route| crate::http::ProxyConfig {
                url: route.url().clone(),
                shown: route.to_string(),
                secrets: route.secrets(),
            }),
        }
    }
}

/// A key file that cannot be read, named as [`key_path_shown`] allows.
pub(super) fn key_file_error(path: &Path, named_by: &str, source: std::io::Error) -> Fatal {
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
pub(super) fn key_from_file(path: &Path, named_by: &str) -> Result<ApiKey, Fatal> {
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
    #[cfg(test)]
    pub(crate) fn from_args(
        args: &ApiArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ApiSettings, Fatal> {
        ApiSettings::with_profile(args, None, env)
    }

    /// [`ApiSettings::from_args`], with a profile: the base URL and the key
    /// come as [`resolve`] says.
    pub(crate) fn with_profile(
        args: &ApiArgs,
        profile: Option<&Profile>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ApiSettings, Fatal> {
        let settled = ApiSettings::settle(args, profile, env, KeyCommand::Run)?;
        Ok(settled.expect("a key command was run"))
    }

    /// What [`ApiSettings::with_profile`] checks, without running a
    /// profile's key command (`config` runs none): `Err` is what a run
    /// would stop on; `Ok(None)` a key that only its command can tell.
    pub(crate) fn check(
        args: &ApiArgs,
        profile: Option<&Profile>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(), Fatal> {
        ApiSettings::settle(args, profile, env, KeyCommand::Skip).map(drop)
    }

    fn settle(
        args: &ApiArgs,
        profile: Option<&Profile>,
        env: impl Fn(&str) -> Option<String>,
        key_command: KeyCommand,
    ) -> Result<Option<ApiSettings>, Fatal> {
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
                key: KeyFrom::Command(_),
                ..
            } if key_command == KeyCommand::Skip => return Ok(None),
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
        Ok(Some(ApiSettings {
            base_url,
            api_key,
            key_from,
            set_aside: resolved.set_aside,
            connect_timeout: CONNECT_TIMEOUT.min(timeout),
            timeout,
            extra_roots,
            proxy,
            files_read,
        }))
    }
}

/// Whether a profile's `api_key_command` is run to get the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyCommand {
    Run,
    Skip,
}

impl ApiSettings {
    /// The settings for a sandbox started by `apply --sandbox`: its URL and
    /// key, with the timeouts the user asked for, trusting the sandbox's own
    /// certificate authority (`ca_pem`, for a TLS sandbox) and any
    /// `--ca-cert`. The environment's proxy is not used: the sandbox is in
    /// this process, and a company proxy could not reach it; `--proxy` is.
    pub(crate) fn for_sandbox(
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

/// The most a key file may hold: a key is a few dozen characters.
pub(super) const MAX_KEY_FILE: u64 = 4096;

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
