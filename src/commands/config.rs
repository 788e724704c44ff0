//! `config`: the settings a run would use and where each comes from, the
//! key never shown. Reads what a run reads (flags, environment, profile),
//! and runs no key command.

use std::fmt::Write as _;

use crate::cli::ConfigArgs;
use crate::error::Fatal;
use crate::exit::Exit;
use crate::profile::{self, KeyFrom, PROFILE_ENV, key_path_shown};
use crate::settings::{
    self, API_KEY_ENV as KEY_ENV, ApiSettings, KeyChoice, RunSettings, SendingChoice, url_shown,
};

/// Prints the settings; when a run would stop on them, says why after
/// them, as the run would, and exits as the run would (2): `config` is the
/// check before a cron job, and must not pass what the run refuses.
pub(super) fn show(args: &ConfigArgs) -> Result<Exit, Fatal> {
    let shown = describe(
        args,
        settings::from_environment,
        profile::config_path().as_deref(),
    )?;
    print!("{}", shown.text);
    match shown.refused {
        Some(why) => Err(why),
        None => Ok(Exit::Success),
    }
}

/// What `config` shows, and what a run with these settings would stop on
/// before sending anything (`None`: nothing `config` can tell; a key
/// command is not run here).
struct Shown {
    text: String,
    refused: Option<Fatal>,
}

/// What `config` prints: the settings from `args`, the environment as
/// `env` reads it and the config file at `path`, resolved as a run
/// resolves them.
fn describe(
    args: &ConfigArgs,
    env: impl Fn(&str) -> Option<String>,
    path: Option<&std::path::Path>,
) -> Result<Shown, Fatal> {
    let path = path.map(std::path::Path::to_path_buf);
    let chosen = profile::select(args.api.profile.as_deref(), &env, path.as_deref())?;
    let from_profile = |name: &str| format!("profile {name}");
    let mut text = String::new();
    let file = match &path {
        Some(path) if path.exists() => format!("{} (exists)", path.display()),
        Some(path) => format!("{} (none there)", path.display()),
        None => "none (this system has no config folder)".to_string(),
    };
    let _ = writeln!(text, "config file:  {file}");
    let profile_line = match (&chosen, &args.api.profile) {
        (Some(p), Some(_)) => format!("{} (from --profile)", p.name),
        (Some(p), None) => format!("{} (from {PROFILE_ENV})", p.name),
        (None, _) => "none".to_string(),
    };
    let _ = writeln!(text, "profile:      {profile_line}");

    let profile_name = chosen.as_ref().map(|p| p.name.as_str()).unwrap_or_default();
    // The precedence a run uses, from the one function that decides it.
    let resolved = settings::resolve(&args.api, chosen.as_ref(), &env);
    let _ = writeln!(
        text,
        "base URL:     {} (from {})",
        url_shown(&resolved.base_url),
        resolved.base_from
    );
    let key = match &resolved.key {
        KeyChoice::FlagFile(path) => {
            format!("read from {} (from --api-key-file)", key_path_shown(path))
        }
        KeyChoice::Environment => format!("set (from {KEY_ENV}; not shown)"),
        KeyChoice::Profile {
            key: KeyFrom::File(path),
            ..
        } => format!(
            "read from {} (from {})",
            key_path_shown(path),
            from_profile(profile_name)
        ),
        KeyChoice::Profile {
            key: KeyFrom::Command(command),
            ..
        } => match profile::command_shown(command) {
            Some(shown) => format!(
                "printed by `{shown}` (from {}; not run here)",
                from_profile(profile_name)
            ),
            None => format!(
                "printed by the api_key_command of {} (not shown: it does not start with a \
                 program found on PATH, and may be a key pasted in the wrong place; not run here)",
                from_profile(profile_name)
            ),
        },
        KeyChoice::Missing(Some(name)) => format!(
            "none: profile {name} names none (add api_key_file or api_key_command), or pass \
             --api-key-file; a profile chosen with --profile does not take {KEY_ENV}"
        ),
        KeyChoice::Missing(None) if env(KEY_ENV).is_some() => format!(
            "none: {KEY_ENV} is set but empty (a run stops); set it to the key, pass \
             --api-key-file, or name a key in a profile"
        ),
        KeyChoice::Missing(None) => {
            format!("none: set {KEY_ENV}, pass --api-key-file, or name a key in a profile")
        }
    };
    let _ = writeln!(text, "API key:      {key}");
    if !resolved.set_aside.is_empty() {
        let _ = writeln!(
            text,
            "not used:     {} (--profile wins over the environment)",
            resolved.set_aside.join(", ")
        );
    }

    // Sending: flag, else profile, else default (the run's own choice);
    // then checked as a run would.
    let choice = SendingChoice::new(&args.run, chosen.as_ref());
    let (rate, rate_from) = choice.rate.clone();
    let (burst, burst_from) = choice.burst.clone();
    let (concurrency, concurrency_from) = choice.concurrency.clone();
    let rate_shown = match rate.trim() {
        auto if auto.eq_ignore_ascii_case("auto") => "auto (finds the account's limit)".to_string(),
        zero if zero.parse::<f64>().is_ok_and(|rate| rate == 0.0) => {
            format!("{zero} (no limit until a 429)")
        }
        rate => format!("{rate} requests/s"),
    };
    let _ = writeln!(text, "rate:         {rate_shown} (from {rate_from})");
    let _ = writeln!(text, "burst:        {burst} (from {burst_from})");
    let _ = writeln!(
        text,
        "concurrency:  {concurrency} (from {concurrency_from})"
    );
    // The values as a run would check them: the key's, the base URL's
    // and the network's (a key command is not run), then the sending's.
    let mut run = args.run.clone();
    run.summary_json = None;
    choice.fill(&mut run);
    let refused = ApiSettings::check(&args.api, chosen.as_ref(), &env)
        .and_then(|()| RunSettings::from_args(&run).map(drop))
        .err();
    // The key at hand (the environment's, or a key file's: never a key
    // command, which `config` does not run) is blanked out of every line,
    // in any ASCII case: a key pasted as a host or a profile's name.
    let at_hand = match &resolved.key {
        KeyChoice::Environment => env(KEY_ENV),
        KeyChoice::FlagFile(path)
        | KeyChoice::Profile {
            key: KeyFrom::File(path),
            ..
        } => settings::read_key_file(path).ok(),
        _ => None,
    };
    let text = match at_hand {
        Some(key) => crate::secret::Blanker::new(&key)
            .blank(text.into())
            .into_owned(),
        None => text,
    };
    Ok(Shown { text, refused })
}

/// The arguments of `config`, with its help (the command's, in `--help`).
pub(crate) type Args = crate::cli::ConfigArgs;

impl super::Run for Args {
    fn run(self) -> Result<Exit, Fatal> {
        show(&self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cli, Command};
    use clap::Parser;
    use std::collections::HashMap;

    /// The line of `config`'s text that starts with `label`.
    fn line_of(shown: &str, label: &str) -> String {
        shown
            .lines()
            .find(|line| line.starts_with(label))
            .unwrap_or_else(|| panic!("{label} in {shown}"))
            .to_string()
    }

    fn config_args(flags: &[&str]) -> ConfigArgs {
        let mut argv = vec!["gcore-iam-bulk", "config"];
        argv.extend_from_slice(flags);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Config(args) => args,
            _ => unreachable!("config"),
        }
    }

    /// `config` and a run resolve the key and the base URL alike, over
    /// flags, the environment (set, empty, unset) and profiles chosen by
    /// `--profile` or `GCORE_PROFILE`: for each case, the source `config`
    /// names is the one the run's settings came from, and the URL the same.
    #[test]
    fn config_and_a_run_agree_on_every_values_source() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            "[profiles.a]\napi_key_file = \"a.key\"\nbase_url = \"https://a.example\"\n\
             [profiles.b]\nbase_url = \"https://b.example\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("a.key"), "key-of-profile-a-0123456789").unwrap();
        let flag_key = dir.path().join("flag.key");
        std::fs::write(&flag_key, "key-of-the-flag-0123456789").unwrap();
        let flag_key = flag_key.to_string_lossy().into_owned();
        // (flags, environment, the key's source, the base URL) or None:
        // the run stops for want of a key.
        type Case<'a> = (
            Vec<&'a str>,
            Vec<(&'a str, &'a str)>,
            Option<(&'a str, &'a str)>,
        );
        let env_key = ("GCORE_API_KEY", "key-of-the-environment-0123456789");
        let env_url = ("GCORE_BASE_URL", "https://env.example");
        let cases: Vec<Case> = vec![
            (
                vec![],
                vec![env_key],
                Some(("GCORE_API_KEY", "https://api.gcore.com")),
            ),
            (
                vec![],
                vec![env_key, env_url],
                Some(("GCORE_API_KEY", "https://env.example")),
            ),
            (
                vec!["--profile", "a"],
                vec![env_key, env_url],
                Some(("profile a", "https://a.example")),
            ),
            (
                vec!["--profile", "a"],
                vec![],
                Some(("profile a", "https://a.example")),
            ),
            (
                vec![],
                vec![("GCORE_PROFILE", "a")],
                Some(("profile a", "https://a.example")),
            ),
            (
                vec![],
                vec![("GCORE_PROFILE", "a"), env_key],
                Some(("GCORE_API_KEY", "https://a.example")),
            ),
            (
                vec![],
                vec![("GCORE_PROFILE", "a"), env_key, env_url],
                Some(("GCORE_API_KEY", "https://env.example")),
            ),
            // Set but empty is as unset: the profile's key.
            (
                vec![],
                vec![("GCORE_PROFILE", "a"), ("GCORE_API_KEY", "")],
                Some(("profile a", "https://a.example")),
            ),
            (vec![], vec![("GCORE_API_KEY", "")], None),
            (vec!["--profile", "b"], vec![env_key], None),
            (
                vec!["--api-key-file", &flag_key, "--profile", "a"],
                vec![env_key],
                Some(("--api-key-file", "https://a.example")),
            ),
            (
                vec!["--base-url", "https://flag.example", "--profile", "a"],
                vec![env_url],
                Some(("profile a", "https://flag.example")),
            ),
            (vec![], vec![], None),
        ];
        for (flags, env, expected) in cases {
            let env: HashMap<&str, &str> = env.into_iter().collect();
            let read = |name: &str| env.get(name).map(|value| value.to_string());
            let args = config_args(&flags);
            let described = describe(&args, read, Some(&config)).unwrap();
            let shown = described.text;
            let line = |label: &str| line_of(&shown, label);
            let chosen =
                crate::profile::select(args.api.profile.as_deref(), read, Some(&config)).unwrap();
            let run = ApiSettings::with_profile(&args.api, chosen.as_ref(), read);
            let case = format!("{flags:?} {env:?}");
            match expected {
                Some((source, url)) => {
                    let run = run.unwrap_or_else(|e| panic!("{case}: {e}"));
                    assert!(
                        run.key_from.starts_with(source),
                        "{case}: run {}",
                        run.key_from
                    );
                    assert!(
                        line("API key:").contains(&format!("(from {source}")),
                        "{case}: {shown}"
                    );
                    assert_eq!(run.base_url.origin().ascii_serialization(), url, "{case}");
                    assert!(line("base URL:").contains(url), "{case}: {shown}");
                    assert!(described.refused.is_none(), "{case}: config refuses");
                }
                None => {
                    let run = run
                        .err()
                        .unwrap_or_else(|| panic!("{case}: the run has a key"));
                    assert!(line("API key:").contains("none"), "{case}: {shown}");
                    // config stops on what the run stops on, saying the same.
                    let refused = described
                        .refused
                        .unwrap_or_else(|| panic!("{case}: config passes"));
                    assert_eq!(refused.to_string(), run.to_string(), "{case}");
                }
            }
        }
    }

    /// `--rate 0` is no limit (until a 429), not zero requests a second.
    #[test]
    fn a_rate_of_zero_is_shown_as_no_limit() {
        let none = |_: &str| None;
        for (flag, want) in [
            ("0", "rate:         0 (no limit until a 429) (from flag)"),
            (
                "0.0",
                "rate:         0.0 (no limit until a 429) (from flag)",
            ),
            ("7", "rate:         7 requests/s (from flag)"),
        ] {
            let args = config_args(&["--rate", flag]);
            let shown = describe(&args, none, None).unwrap().text;
            assert_eq!(line_of(&shown, "rate:"), want, "{shown}");
        }
    }

    /// `config` and a run take the rate, the burst and the concurrency
    /// alike, over flags and a profile chosen by `--profile` or
    /// `GCORE_PROFILE`: the value and the source `config` prints are the
    /// run's, as checked.
    #[test]
    fn config_and_a_run_agree_on_the_sending_values() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            "[profiles.s]\nrate = 25\nburst = 4\nconcurrency = 3\n\
             [profiles.auto]\nrate = \"auto\"\n[profiles.none]\n",
        )
        .unwrap();
        // (flags, environment, (rate, its source), (burst, ...), (concurrency, ...))
        type Case<'a> = (
            Vec<&'a str>,
            Vec<(&'a str, &'a str)>,
            (&'a str, &'a str),
            (u32, &'a str),
            (usize, &'a str),
        );
        let cases: Vec<Case> = vec![
            (
                vec![],
                vec![],
                ("10", "default"),
                (1, "default"),
                (8, "default"),
            ),
            (
                vec!["--rate", "5", "--burst", "2", "--concurrency", "6"],
                vec![],
                ("5", "flag"),
                (2, "flag"),
                (6, "flag"),
            ),
            (
                vec!["--profile", "s"],
                vec![],
                ("25", "profile s"),
                (4, "profile s"),
                (3, "profile s"),
            ),
            (
                vec![],
                vec![("GCORE_PROFILE", "s")],
                ("25", "profile s"),
                (4, "profile s"),
                (3, "profile s"),
            ),
            (
                vec!["--profile", "s", "--rate", "7"],
                vec![],
                ("7", "flag"),
                (4, "profile s"),
                (3, "profile s"),
            ),
            (
                vec!["--concurrency", "2"],
                vec![("GCORE_PROFILE", "s")],
                ("25", "profile s"),
                (4, "profile s"),
                (2, "flag"),
            ),
            (
                vec!["--profile", "auto"],
                vec![],
                ("auto", "profile auto"),
                (1, "default"),
                (8, "default"),
            ),
            (
                vec!["--profile", "none"],
                vec![],
                ("10", "default"),
                (1, "default"),
                (8, "default"),
            ),
        ];
        for (flags, env, rate, burst, concurrency) in cases {
            let env: HashMap<&str, &str> = env.into_iter().collect();
            let read = |name: &str| env.get(name).map(|value| value.to_string());
            let args = config_args(&flags);
            let case = format!("{flags:?} {env:?}");
            let described = describe(&args, read, Some(&config)).unwrap();
            let shown = described.text;
            let line = |label: &str| line_of(&shown, label);
            // The run: the profile chosen as a run chooses it, the flags
            // filled from the one choice, then checked.
            let chosen =
                crate::profile::select(args.api.profile.as_deref(), read, Some(&config)).unwrap();
            let mut run_args = args.run.clone();
            SendingChoice::new(&args.run, chosen.as_ref()).fill(&mut run_args);
            let run = RunSettings::from_args(&run_args).unwrap();
            let send = &run.send;
            match rate.0 {
                "auto" => assert!(send.rate.is_auto(), "{case}"),
                number => assert_eq!(
                    send.rate.per_second(),
                    Some(number.parse().unwrap()),
                    "{case}"
                ),
            }
            assert!(
                line("rate:").starts_with(&format!("rate:         {}", rate.0)),
                "{case}: {shown}"
            );
            assert!(
                line("rate:").ends_with(&format!("(from {})", rate.1)),
                "{case}: {shown}"
            );
            assert_eq!(send.rate.burst().get(), burst.0, "{case}");
            assert_eq!(
                line("burst:"),
                format!("burst:        {} (from {})", burst.0, burst.1),
                "{case}"
            );
            assert_eq!(send.concurrency.get(), concurrency.0, "{case}");
            assert_eq!(
                line("concurrency:"),
                format!("concurrency:  {} (from {})", concurrency.0, concurrency.1),
                "{case}"
            );
        }
    }
}
