//! The account's rate limit, remembered between runs: a run whose rate a
//! 429 (or a throttling 5xx) lowered writes where it ended (what the server
//! let through) to the state folder (`$XDG_STATE_HOME/gcore-iam-bulk/
//! limits.json`, else `~/.local/state/...`), keyed by the base URL's host
//! and a keyed hash of the API key (never the key); the next run of that
//! account starts just below it instead of finding it again. An entry is
//! forgotten after [`STALE_AFTER`]; `--forget-rate` forgets it at once.
//! Best effort: a folder that cannot be written only means starting afresh.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::settings::ApiSettings;

/// How long a remembered limit is trusted: an account's limit may change.
pub(super) const STALE_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// How many accounts the file keeps (the oldest go first).
const KEPT: usize = 100;

/// The largest file read back (a hundred accounts take a few KiB).
const MAX_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    /// Random, made once: the keyed hash of an API key cannot be matched
    /// against guesses without it.
    salt: String,
    limits: Vec<Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    account: String,
    host: String,
    rate: f64,
    /// Seconds since the Unix epoch.
    at: u64,
}

/// The remembered limit of one account (host and key).
pub(super) struct Remembered {
    folder: PathBuf,
    key: String,
    host: String,
}

impl Remembered {
    /// The memory of `api`'s account; `None` when this machine has no
    /// state folder.
    pub(super) fn of(api: &ApiSettings) -> Option<Remembered> {
        let folder = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
            Some(state) => PathBuf::from(state).join("gcore-iam-bulk"),
            None => directories::BaseDirs::new()?
                .home_dir()
                .join(".local/state/gcore-iam-bulk"),
        };
        Some(Remembered {
            folder,
            key: api.api_key.expose().trim().to_string(),
            host: api.base_url.host_str().unwrap_or_default().to_string(),
        })
    }

    fn path(&self) -> PathBuf {
        self.folder.join("limits.json")
    }

    fn read(&self) -> Option<File> {
        use std::io::Read;
        let mut text = String::new();
        std::fs::File::open(self.path())
            .ok()?
            .take(MAX_BYTES)
            .read_to_string(&mut text)
            .ok()?;
        serde_json::from_str(&text).ok()
    }

    fn account(&self, salt: &str) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, salt.as_bytes());
        let tag = ring::hmac::sign(&key, self.key.as_bytes());
        tag.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The limit the account's runs met, and how long ago, unless stale.
    pub(super) fn recall(&self) -> Option<(f64, Duration)> {
        let file = self.read()?;
        let account = self.account(&file.salt);
        let now = seconds(SystemTime::now());
        let entry = (file.limits.iter()).find(|e| e.account == account && e.host == self.host)?;
        let age = Duration::from_secs(now.saturating_sub(entry.at));
        (age < STALE_AFTER && entry.rate.is_finite() && entry.rate > 0.0)
            .then_some((entry.rate, age))
    }

    /// Remembers `rate` as the account's limit (`None`: forgets it).
    pub(super) fn remember(&self, rate: Option<f64>) {
        let _ = self.write(rate);
    }

    fn write(&self, rate: Option<f64>) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.folder)?;
        // One run at a time reads and writes the file.
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.folder.join("limits.lock"))?;
        lock.lock()?;
        let mut file = self.read().unwrap_or_default();
        if file.salt.is_empty() {
            let mut salt = [0u8; 16];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
                .map_err(|_| std::io::Error::other("no random numbers"))?;
            file.salt = salt.iter().map(|b| format!("{b:02x}")).collect();
            file.limits.clear();
        }
        let account = self.account(&file.salt);
        file.limits
            .retain(|e| !(e.account == account && e.host == self.host));
        if let Some(rate) = rate {
            file.limits.push(Entry {
                account,
                host: self.host.clone(),
                rate,
                at: seconds(SystemTime::now()),
            });
        }
        file.limits.sort_by_key(|e| std::cmp::Reverse(e.at));
        file.limits.truncate(KEPT);
        let text = serde_json::to_string_pretty(&file).map_err(std::io::Error::other)?;
        let temporary = tempfile::NamedTempFile::new_in(&self.folder)?;
        std::fs::write(temporary.path(), text)?;
        temporary.persist(self.path()).map_err(|e| e.error)?;
        Ok(())
    }
}

fn seconds(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The memory of `api`'s account's limit, and the run's `rate` started
/// from it when it holds one (and says so); `forget`: `--forget-rate`.
pub(super) fn recall_limit(
    api: &ApiSettings,
    rate: &mut crate::policy::Rate,
    forget: bool,
    quiet: bool,
) -> Option<Remembered> {
    let memory = Remembered::of(api)?;
    if forget {
        memory.remember(None);
        return Some(memory);
    }
    if let Some((limit, age)) = memory.recall() {
        *rate = rate.clone().starting_from(limit);
        if rate.remembered().is_some() && !quiet {
            let hours = age.as_secs() / 3600;
            crate::say!(
                "rate: starting just below {limit:.1} requests/s, the limit this account's runs \
                 met {} ago (--forget-rate starts afresh)",
                match hours {
                    0 => format!("{} min", age.as_secs() / 60),
                    1..48 => format!("{hours} h"),
                    _ => format!("{} days", hours / 24),
                }
            );
        }
    }
    Some(memory)
}
