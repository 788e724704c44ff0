//! How a run sends: the rate, the burst, the concurrency, the retries,
//! checked once from flags (and a profile, through them).

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::RunArgs;
use crate::error::Fatal;
use crate::policy::{MAX_CONCURRENCY, MAX_WINDOW, Rate, RetryPolicy, SendPolicy};

pub(super) fn seconds(flag: &str, value: f64) -> Result<Duration, Fatal> {
    if value.is_finite() && value > 0.0 && value <= 86_400.0 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(Fatal::Usage(format!(
            "{flag} {value:?} must be a number of seconds above 0 and at most 86400"
        )))
    }
}

/// `--concurrency` and `--rate` when neither a flag nor a profile sets them.
pub(crate) const DEFAULT_CONCURRENCY: usize = 8;
pub(crate) const DEFAULT_RATE: &str = "10";
pub(crate) const DEFAULT_BURST: u32 = 1;

/// Where a sending value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ValueFrom {
    Flag,
    /// The profile of this name.
    Profile(String),
    Default,
}

impl std::fmt::Display for ValueFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueFrom::Flag => f.write_str("flag"),
            ValueFrom::Profile(name) => write!(f, "profile {name}"),
            ValueFrom::Default => f.write_str("default"),
        }
    }
}

/// The rate, burst and concurrency a run uses, before they are checked:
/// each from its flag, else the profile, else the default, with where it
/// came from. The one precedence of these values: a run fills its flags
/// from it ([`SendingChoice::fill`]) and `config` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SendingChoice {
    /// As `--rate` takes it: a number or `auto`.
    pub rate: (String, ValueFrom),
    pub burst: (u32, ValueFrom),
    pub concurrency: (usize, ValueFrom),
}

impl SendingChoice {
    pub(crate) fn new(run: &RunArgs, profile: Option<&crate::profile::Profile>) -> SendingChoice {
        fn pick<T>(flag: Option<T>, profile: Option<(T, &str)>, default: T) -> (T, ValueFrom) {
            match (flag, profile) {
                (Some(value), _) => (value, ValueFrom::Flag),
                (None, Some((value, name))) => (value, ValueFrom::Profile(name.to_string())),
                (None, None) => (default, ValueFrom::Default),
            }
        }
        SendingChoice {
            rate: pick(
                run.rate.clone(),
                profile.and_then(|p| p.rate.clone().map(|rate| (rate, p.name.as_str()))),
                DEFAULT_RATE.to_string(),
            ),
            burst: pick(
                run.burst,
                profile.and_then(|p| p.burst.map(|burst| (burst, p.name.as_str()))),
                DEFAULT_BURST,
            ),
            concurrency: pick(
                run.concurrency,
                profile.and_then(|p| p.concurrency.map(|n| (n, p.name.as_str()))),
                DEFAULT_CONCURRENCY,
            ),
        }
    }

    /// `run` with these values in its flags, as the run checks them.
    pub(crate) fn fill(&self, run: &mut RunArgs) {
        run.rate = Some(self.rate.0.clone());
        run.burst = Some(self.burst.0);
        run.concurrency = Some(self.concurrency.0);
        run.filled_from = [
            ("rate", &self.rate.1),
            ("burst", &self.burst.1),
            ("concurrency", &self.concurrency.1),
        ]
        .into_iter()
        .filter_map(|(setting, from)| match from {
            ValueFrom::Profile(name) => Some((setting, name.clone())),
            _ => None,
        })
        .collect();
    }
}

/// How `apply` sends, and what it does around sending.
#[derive(Debug, Clone)]
pub(crate) struct RunSettings {
    pub send: SendPolicy,
    pub summary_json: Option<PathBuf>,
    /// `--metrics-file`: the summary in the Prometheus text format.
    pub metrics_file: Option<PathBuf>,
}

impl RunSettings {
    pub(crate) fn from_args(args: &RunArgs) -> Result<RunSettings, Fatal> {
        RunSettings::checked(args).map_err(|fatal| match fatal {
            // A value a profile gave: the message names it, not the flag.
            Fatal::Usage(message) => {
                let from = (args.filled_from.iter())
                    .find(|(setting, _)| message.starts_with(&format!("--{setting} ")));
                Fatal::Usage(match from {
                    Some((setting, profile)) => format!(
                        "{message} (it is the `{setting}` of profile {profile}, in the config \
                         file: fix it there, or give --{setting})"
                    ),
                    None => message,
                })
            }
            other => other,
        })
    }

    fn checked(args: &RunArgs) -> Result<RunSettings, Fatal> {
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
            metrics_file: args.metrics_file.clone(),
        })
    }
}
