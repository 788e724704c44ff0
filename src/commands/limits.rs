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

use super::share::Sharing;

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
    /// This run's part in the account's runs (see `share`).
    sharing: std::sync::Mutex<Option<Sharing>>,
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
            sharing: std::sync::Mutex::new(None),
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
        // Under 0.5/s (the adaptive rate's floor) a figure is no limit to
        // start from: a run that crawled should not make the next one crawl.
        (age < STALE_AFTER && entry.rate.is_finite() && entry.rate >= 0.5)
            .then_some((entry.rate, age))
    }

    /// Remembers `rate` as the account's limit (`None`: forgets it).
    pub(super) fn remember(&self, rate: Option<f64>) {
        let _ = self.write(Some(rate));
    }

    /// At the end of a run: stops sharing, and remembers the limit it
    /// learned, `own` (where its rate ended, if a 429 lowered it); when it
    /// shared the account with other runs, the account's limit they split
    /// instead (its own rate was only its part).
    pub(super) fn learned(&self, own: Option<f64>) {
        let sharing = self
            .sharing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let shared = sharing.and_then(|mut sharing| sharing.end());
        if let Some(limit) = shared.or(own) {
            self.remember(Some(limit));
        }
    }

    /// Shares the account's limit with its other runs alive (see `share`),
    /// from `remembered`, through `shared`.
    fn share(&self, remembered: Option<f64>, shared: std::sync::Arc<crate::policy::Shared>) {
        let Ok(salt) = self.write(None) else {
            return;
        };
        let account = format!("{}-{}", self.account(&salt), host_name(&self.host));
        let sharing = Sharing::start(&self.folder, &account, remembered, shared);
        *self.sharing.lock().unwrap_or_else(|e| e.into_inner()) = sharing;
    }

    /// Writes the account's entry: `Some(rate)` sets it (`None` in it
    /// forgets it), `None` leaves it; the salt, made when there is none.
    fn write(&self, rate: Option<Option<f64>>) -> std::io::Result<String> {
        std::fs::create_dir_all(&self.folder)?;
        // One run at a time reads and writes the file.
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.folder.join("limits.lock"))?;
        lock.lock()?;
        let mut file = self.read().unwrap_or_default();
        let made = file.salt.is_empty();
        if made {
            let mut salt = [0u8; 16];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
                .map_err(|_| std::io::Error::other("no random numbers"))?;
            file.salt = salt.iter().map(|b| format!("{b:02x}")).collect();
            file.limits.clear();
        }
        match rate {
            Some(rate) => {
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
            }
            // Only the salt is wanted, and it was there.
            None if !made => return Ok(file.salt),
            None => {}
        }
        file.limits.sort_by_key(|e| std::cmp::Reverse(e.at));
        file.limits.truncate(KEPT);
        let text = serde_json::to_string_pretty(&file).map_err(std::io::Error::other)?;
        let temporary = tempfile::NamedTempFile::new_in(&self.folder)?;
        std::fs::write(temporary.path(), text)?;
        temporary.persist(self.path()).map_err(|e| e.error)?;
        Ok(file.salt)
    }
}

/// A host as a file name may hold it (letters, digits, dots and dashes).
fn host_name(host: &str) -> String {
    host.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' => c,
            _ => '_',
        })
        .take(64)
        .collect()
}

fn seconds(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The memory of `api`'s account's limit, and the run's rate started from
/// it when it holds one (and says so); `forget`: `--forget-rate`; `share`:
/// not `--no-share` (the run splits the limit with the account's other
/// runs alive).
pub(super) fn recall_limit(
    api: &ApiSettings,
    send: &mut crate::policy::SendPolicy,
    (forget, share): (bool, bool),
    quiet: bool,
) -> Option<Remembered> {
    let memory = Remembered::of(api)?;
    let rate = &mut send.rate;
    let recalled = if forget {
        memory.remember(None);
        None
    } else {
        memory.recall()
    };
    if share {
        let shared = std::sync::Arc::new(crate::policy::Shared::default());
        memory.share(recalled.map(|(limit, _)| limit), shared.clone());
        send.share = Some(shared);
    }
    if let Some((limit, age)) = recalled {
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
