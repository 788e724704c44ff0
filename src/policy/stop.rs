//! Why a run stops sending before its end, and how it says so.

use std::fmt;
use std::time::Duration;

use super::wait_text;

/// Why a run stopped sending before its end. Rows not sent yet become
/// `not_attempted` ("not sent: REASON"), rows waiting for a retry `failed`.
#[derive(Debug, Clone, PartialEq)]
pub enum StopReason {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// A 401: the key itself is refused, so every other row would be too.
    /// `at`: where (`row 7`, or `page 3` for a list).
    KeyRefused {
        at: String,
        /// Where the key came from, if known.
        key_from: Option<String>,
    },
    /// A redirect (3xx): the API never redirects, so the base URL is not
    /// the API's (a web page, `http://` for `https://`), for every row alike.
    Redirected { at: String, status: u16 },
    /// The first attempts all failed to connect, and none got an answer:
    /// the base URL, the network or a proxy is wrong, for every row alike.
    Unreachable { attempts: u32 },
    /// The server's certificate is not trusted: no request can pass until
    /// the trust is fixed. `message` names the host, the problem, the fix.
    Untrusted { message: String },
    /// Something every row needs is broken (the undo file cannot be written).
    Halted { message: String },
    /// Attempt after attempt got no answer at all (timeouts, dropped or
    /// failed connections) for a long while: the API stopped answering.
    Silent { attempts: u32, seconds: u64 },
    /// No connection could be made, for longer than `--max-wait`, to an API
    /// that answered before (a proxy or the network down).
    Outage { seconds: u64 },
    /// Nothing but 429s about the run's rate for longer than `--max-wait`,
    /// however low the rate went, and with the run waiting between them:
    /// the account is blocked, or its limit is spent by another client.
    /// (A quota window shorter than that is waited out.)
    ThrottledAlways { seconds: u64, rate: Option<f64> },
    /// A 429 asking for a wait beyond `--max-wait`.
    ThrottledTooLong {
        at: String,
        asked: Duration,
        max_wait: Duration,
    },
}

impl StopReason {
    /// Failed connections, with no answer at all before them, that stop the
    /// run: a few seconds of retries rather than hours for a large file.
    pub(crate) const UNREACHABLE_AFTER: u32 = 5;

    /// Attempts in a row with no answer at all, over at least
    /// [`StopReason::SILENT_FOR`], that stop the run: a server that takes
    /// connections and never answers (or a network gone) fails the rest of
    /// the file in a minute rather than in days of retries.
    pub(crate) const SILENT_AFTER: u32 = 20;
    pub(crate) const SILENT_FOR: Duration = Duration::from_secs(30);

    /// A refusal that every other row would meet too. A 401 means the key
    /// itself is refused, a 3xx that the base URL is not the API's: sending
    /// the rest of a million rows would only fail them one by one (and
    /// hammer the server), so the run stops as after Ctrl-C. A 403 does not
    /// stop it: it may concern one user only.
    pub(crate) fn for_refusal(
        status: u16,
        at: impl FnOnce() -> String,
        key_from: Option<&str>,
    ) -> Option<StopReason> {
        match status {
            401 => Some(StopReason::KeyRefused {
                at: at(),
                key_from: key_from.map(str::to_string),
            }),
            300..=399 => Some(StopReason::Redirected { at: at(), status }),
            _ => None,
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Interrupted => f.write_str("the run was interrupted"),
            StopReason::Outage { seconds } => write!(
                f,
                "no connection could be made to the API for {seconds} s (more than --max-wait), \
                 after it had answered: check the network and any proxy, then go on with --resume"
            ),
            StopReason::Silent { attempts, seconds } => write!(
                f,
                "the API stopped answering ({attempts} attempts in a row over {seconds} s got no \
                 answer: timeouts or lost connections); check the API's status and the network, \
                 then go on with --resume"
            ),
            StopReason::Redirected { at, status } => write!(
                f,
                "the server answered with a redirect (HTTP {status} on {at}), which the API \
                 never does: the base URL is not the API's; check --base-url (or \
                 GCORE_BASE_URL): https://api.gcore.com"
            ),
            StopReason::Unreachable { attempts } => write!(
                f,
                "the API cannot be reached ({attempts} attempts failed to connect, none got an \
                 answer); check --base-url (or GCORE_BASE_URL), the network and any proxy"
            ),
            StopReason::KeyRefused {
                at,
                key_from: Some(from),
            } => write!(
                f,
                "the API refused the key (HTTP 401 on {at}); it came from {from}: check it \
                 there, and that it is the key of this account"
            ),
            StopReason::KeyRefused { at, key_from: None } => write!(
                f,
                "the API refused the key (HTTP 401 on {at}); check GCORE_API_KEY or \
                 --api-key-file"
            ),
            StopReason::Untrusted { message } | StopReason::Halted { message } => {
                f.write_str(message)
            }
            StopReason::ThrottledAlways { seconds, rate } => write!(
                f,
                "the server answered only 429 (throttled) for {seconds} s, more than \
                 --max-wait, although the run waited between them and the rate was lowered to \
                 {}; the account may be blocked or its limit spent by another client: try again \
                 later (--resume), or with a lower --rate or a longer --max-wait",
                rate.map_or("no limit".to_string(), |rate| format!(
                    "{rate:.1} requests/s"
                ))
            ),
            StopReason::ThrottledTooLong {
                at,
                asked,
                max_wait,
            } => write!(
                f,
                "the server throttled the run for {} (HTTP 429 on {at}), more than \
                 --max-wait {:.0} s",
                wait_text(*asked),
                max_wait.as_secs_f64()
            ),
        }
    }
}
