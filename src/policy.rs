//! Policies of a run, as values the engine is handed: the rate and the pause
//! after a 429 (admission), when to try a request again (retry), how much may
//! be in flight and ahead of the writer (`SendPolicy`), and the reasons a run
//! stops early. Pure apart from the clock; imports nothing of this crate.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use tokio::time::Instant;

mod adaptive;
mod overload;
mod share;
mod slowdown;
mod stop;
pub(crate) use share::Split;
pub use share::{Reckoning, Shared, Told};
pub(crate) use slowdown::{Mark, Slowdown};
pub use stop::StopReason;
#[cfg(test)]
mod simulated;

use adaptive::{Adaptive, Start};
use overload::Overload;
use slowdown::Recent;

/// Requests per second for the whole run, retries included, and the burst:
/// a ceiling the run adapts below after a 429 (see [`adaptive`]), or
/// `auto`, which finds the rate itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Rate {
    per_second: Option<f64>,
    burst: NonZeroU32,
    /// `--rate auto`: `per_second` is `--max-rate`, if any.
    auto: bool,
    /// The limit this account's runs met before (remembered): the run
    /// starts just below it and probes up from there, rather than from
    /// the start (`auto`) or above it (a ceiling).
    from: Option<f64>,
}

impl Rate {
    /// Faster than this is "no limit" in all but name; it also keeps the
    /// limiter's period above a nanosecond.
    pub const MAX: f64 = 1_000_000.0;

    /// Slower than this is a mistake (one request every 1,000 s); it also
    /// keeps every wait of the limiter far from the clock's limits.
    pub const MIN: f64 = 0.001;

    /// `per_second` 0 means no limit.
    pub fn new(per_second: f64, burst: NonZeroU32) -> Result<Rate, String> {
        let limited = (Self::MIN..=Self::MAX).contains(&per_second);
        if per_second != 0.0 && !limited {
            return Err(format!(
                "--rate {per_second:?} must be 0 (no limit) or between {} and {}",
                Self::MIN,
                Self::MAX
            ));
        }
        Ok(Rate {
            per_second: (per_second > 0.0).then_some(per_second),
            burst,
            auto: false,
            from: None,
        })
    }

    /// `--rate auto`, up to `max` (`--max-rate`) if given.
    pub fn auto(max: Option<f64>, burst: NonZeroU32) -> Result<Rate, String> {
        if let Some(max) = max
            && !(Self::MIN..=Self::MAX).contains(&max)
        {
            return Err(format!(
                "--max-rate {max:?} must be between {} and {}",
                Self::MIN,
                Self::MAX
            ));
        }
        Ok(Rate {
            per_second: max,
            burst,
            auto: true,
            from: None,
        })
    }

    pub fn unlimited() -> Rate {
        Rate {
            per_second: None,
            burst: NonZeroU32::MIN,
            auto: false,
            from: None,
        }
    }

    /// The ceiling: `--rate R`, or `--max-rate` with `auto`.
    pub(crate) fn per_second(&self) -> Option<f64> {
        self.per_second
    }

    pub(crate) fn is_auto(&self) -> bool {
        self.auto
    }

    /// This rate, starting from `limit`, the limit this account's runs met
    /// before, when that is below where it would start (or climb to).
    pub(crate) fn starting_from(mut self, limit: f64) -> Rate {
        let below = match (self.auto, self.per_second) {
            (_, None) => true,
            (true, Some(max)) | (false, Some(max)) => limit < max,
        };
        if below && (Self::MIN..=Self::MAX).contains(&limit) {
            self.from = Some(limit);
        }
        self
    }

    /// The remembered limit the run starts from, if any.
    pub(crate) fn remembered(&self) -> Option<f64> {
        self.from
    }

    /// Requests that may go at once after a pause.
    pub fn burst(&self) -> NonZeroU32 {
        self.burst
    }

    fn start(&self) -> Start {
        match (self.auto, self.per_second) {
            (true, max) => Start::Auto { max },
            (false, Some(rate)) => Start::Ceiling(rate),
            (false, None) => Start::Unlimited,
        }
    }

    /// The token bucket's size: the burst, less one request kept in
    /// reserve, and at least one.
    ///
    /// One request of a burst above 1 is kept in reserve: a server whose
    /// bucket has the same rate and burst sees requests a little later or
    /// earlier than they were sent (new connections, scheduling), and a tool
    /// that spends its whole burst runs exactly at the bucket's edge, where
    /// the smallest jitter costs a 429 and a pause of the whole run. The
    /// reserve costs one request at the start and nothing after.
    fn capacity(&self) -> f64 {
        f64::from(self.burst.get().saturating_sub(1).max(1))
    }
}

/// When and how often to try a row again.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The first backoff ceiling; it doubles after each failure...
    pub base: Duration,
    /// ...up to this. The wait is drawn uniformly below the ceiling (full jitter).
    pub cap: Duration,
    /// The longest wait a server may ask for (`Retry-After`); beyond it the
    /// row fails rather than holding the run.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            max_wait: Duration::from_secs(300),
        }
    }
}

/// What to do after a retryable answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    RetryIn(Duration),
    /// Why not: appended to the row's error.
    GiveUp(String),
}

impl RetryPolicy {
    /// The backoff ceiling after `failures` failed attempts (1 = the first).
    pub(crate) fn ceiling(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// After `attempts` attempts, the last of them retryable; `retry_after` is
    /// what the server asked for, obeyed even above the cap (up to `max_wait`).
    pub(crate) fn decide(&self, attempts: u32, retry_after: Option<Duration>) -> Decision {
        if attempts > self.max_retries {
            let tries = if attempts == 1 { "attempt" } else { "attempts" };
            return Decision::GiveUp(format!("gave up after {attempts} {tries}"));
        }
        match retry_after {
            Some(wait) if wait > self.max_wait => Decision::GiveUp(format!(
                "the server asked to wait {}, more than --max-wait {:.0} s",
                wait_text(wait),
                self.max_wait.as_secs_f64()
            )),
            // "Retry at once" from a server that is throttling: the backoff
            // keeps the run from hammering it.
            Some(wait) if !wait.is_zero() => Decision::RetryIn(wait),
            _ => {
                let ceiling = self.ceiling(attempts);
                Decision::RetryIn(ceiling.mul_f64(rand::random_range(0.0..=1.0)))
            }
        }
    }
}

/// Admission for the whole run: a token bucket filled at the adapted rate,
/// and the pause a 429 imposes. Owned by the dispatcher alone, so no
/// request waits on it by itself. (The bucket is this tool's own, not
/// governor's: governor's rate cannot change once the limiter is made.)
pub(crate) struct Pacer {
    adaptive: Adaptive,
    start: Start,
    recent: Recent,
    overload: Overload,
    /// This run's part of the account's limit, shared with its other runs
    /// (see `share`), and the split it came from.
    cap: Option<f64>,
    split: Option<Split>,
    /// Drops of the rate, and drops that measured the limit, before the
    /// adaptation restarted at a new part (they go on counting).
    dropped: u64,
    measured: u64,
    capacity: f64,
    tokens: f64,
    refilled: Instant,
    paused_until: Option<Instant>,
}

impl Pacer {
    pub(crate) fn new(rate: &Rate) -> Pacer {
        Pacer::starting(rate, Instant::now())
    }

    /// A pacer whose clock starts at `now` (the simulation feeds its own).
    fn starting(rate: &Rate, now: Instant) -> Pacer {
        let capacity = rate.capacity();
        Pacer {
            adaptive: match rate.from {
                Some(limit) => Adaptive::below(rate.start(), limit, now),
                None => Adaptive::new(rate.start(), now),
            },
            start: rate.start(),
            recent: Recent::default(),
            overload: Overload::default(),
            cap: None,
            split: None,
            dropped: 0,
            measured: 0,
            capacity,
            tokens: capacity,
            refilled: now,
            paused_until: None,
        }
    }

    /// `Ok` takes a slot to send now; `Err` says when to ask again.
    pub(crate) fn try_admit(&mut self, now: Instant) -> Result<(), Instant> {
        if let Some(until) = self.paused_until {
            if until > now {
                return Err(until);
            }
            self.paused_until = None;
        }
        let Some(rate) = self.rate().0 else {
            self.refilled = now;
            return Ok(());
        };
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(self.capacity);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            // At least a microsecond: a wait rounded down to nothing would
            // ask again at the same instant and find the same fraction.
            let wait = Duration::from_secs_f64((1.0 - self.tokens) / rate);
            Err(later(now, wait.max(Duration::from_micros(1))))
        }
    }

    /// An answer from the server (not a connection that failed): a 429
    /// about the run's rate lowers it (see [`slowdown`] for which are),
    /// other answers let it climb back. For a 429, what it is about.
    pub(crate) fn answered(
        &mut self,
        now: Instant,
        throttled: bool,
        mark: &mut Mark,
    ) -> Option<Slowdown> {
        let slowdown = self.recent.answered(now, throttled, mark);
        self.overload.answered(now, false);
        let before = self.adaptive.rate();
        match slowdown {
            Some(Slowdown::Row) => self.adaptive.background(now),
            rate => self.adaptive.answered(now, rate.is_some()),
        }
        self.limited(now, before);
        slowdown
    }

    /// A server error (500-504 without `Retry-After`): when such errors
    /// rise with the rate (see [`overload`]), the rate drops as for a 429,
    /// without a pause; true when it did.
    pub(crate) fn server_error(&mut self, now: Instant, mark: &mut Mark) -> bool {
        self.recent.answered(now, false, mark);
        let about_the_rate = self.overload.answered(now, true);
        let before = self.adaptive.rate();
        let dropped = self.adaptive.errored(now, about_the_rate);
        if let Some(measured) = dropped {
            self.overload.lowered(measured);
        }
        self.limited(now, before);
        dropped.is_some()
    }

    /// Tokens gathered at an unlimited rate are not kept once it is limited.
    fn limited(&mut self, now: Instant, before: Option<f64>) {
        if before.is_none() && self.adaptive.rate().is_some() {
            self.tokens = self.tokens.min(1.0);
            self.refilled = now;
        }
    }

    /// How long only 429s about the run's rate have come, if they have.
    pub(crate) fn throttled_for(&self, now: Instant) -> Option<Duration> {
        self.adaptive.throttled_for(now)
    }

    /// Bursts of 429s in a row with no other answer (see
    /// [`StopReason::THROTTLED_ALWAYS_AFTER`]).
    pub(crate) fn bursts_in_a_row(&self) -> u32 {
        self.adaptive.bursts_in_a_row()
    }

    /// The rate admitted now (`None`: no limit), and how many times a 429
    /// lowered it.
    pub(crate) fn rate(&self) -> (Option<f64>, u64) {
        let rate = match (self.adaptive.rate(), self.cap) {
            (Some(rate), Some(cap)) => Some(rate.min(cap)),
            (rate, cap) => rate.or(cap),
        };
        (rate, self.dropped + self.adaptive.drops())
    }

    /// The rate the server let through when the rate last dropped, and how
    /// many drops there were (for the account's other runs).
    pub(crate) fn met(&self) -> Option<(f64, u64)> {
        (self.adaptive.met()).map(|(met, n)| (met, self.measured + n))
    }

    /// The runs of the account the split last counted (1: alone).
    pub(crate) fn runs(&self) -> usize {
        self.split.map_or(1, |split| split.runs)
    }

    /// The account's limit and the runs alive that share it: with others,
    /// this run sends at most its part, starting just below it; alone
    /// again, it starts just below the whole limit. (Alone from the start,
    /// nothing changes: it started from the remembered limit already.)
    pub(crate) fn share(&mut self, now: Instant, split: Option<Split>) {
        let before = std::mem::replace(&mut self.split, split);
        let shared_before = before.is_some_and(|before| before.runs >= 2);
        let restart = match split {
            Some(split) if split.runs >= 2 => {
                self.cap = Some(split.part());
                Some(split.part())
            }
            // Alone again: the whole limit. (Alone all along, the run's
            // own adaptation goes on: the limit it met is its own.)
            Some(split) if shared_before => {
                self.cap = None;
                Some(split.limit)
            }
            _ => {
                self.cap = None;
                None
            }
        };
        if let Some(limit) = restart {
            self.dropped += self.adaptive.drops();
            self.measured += self.adaptive.met().map_or(0, |(_, n)| n);
            self.adaptive = Adaptive::below(self.start, limit, now);
        }
    }

    /// Holds every admission from `now` until `until`; returns true when this starts or
    /// extends a pause.
    pub(crate) fn pause(&mut self, now: Instant, until: Instant) -> bool {
        if self.paused_until.is_some_and(|current| current >= until) {
            return false;
        }
        self.paused_until = Some(until);
        self.adaptive.hold_until(now, until);
        true
    }
}

/// More in flight than this only adds sockets: the API is one host.
pub(crate) const MAX_CONCURRENCY: usize = 1024;
/// The reorder window's bounds. Each waiting outcome holds a row's answer
/// (about 1 KB), so 16384 rows keep the results stage under ~16 MiB.
pub(crate) const MIN_WINDOW: usize = 64;
pub(crate) const MAX_WINDOW: usize = 16_384;

/// How a run sends: in flight at most, the rate, the retries, and the
/// reorder window (rows that may finish ahead of the oldest unwritten one).
#[derive(Debug, Clone)]
pub struct SendPolicy {
    pub concurrency: NonZeroUsize,
    pub rate: Rate,
    pub retry: RetryPolicy,
    pub window: NonZeroUsize,
    /// `-v`: one line per attempt on stderr.
    pub verbose: bool,
    /// `--report`: count answers second by second for the page's timeline.
    pub timeline: bool,
    /// Where the key came from (`GCORE_API_KEY`, `profile b (api_key_file)`),
    /// for the message that stops the run on a 401; `None`: said generally.
    pub key_from: Option<String>,
    /// What this run shares with the account's other runs (their part of
    /// the limit), when it does.
    pub share: Option<std::sync::Arc<Shared>>,
}

impl SendPolicy {
    /// `window` `None`: [`default_window`].
    pub fn new(
        concurrency: NonZeroUsize,
        rate: Rate,
        retry: RetryPolicy,
        window: Option<NonZeroUsize>,
    ) -> SendPolicy {
        let window = window.unwrap_or_else(|| default_window(&rate, concurrency, &retry));
        SendPolicy {
            concurrency,
            rate,
            retry,
            window,
            verbose: false,
            timeline: false,
            key_from: None,
            share: None,
        }
    }

    /// A dry run sends nothing: every row is decided as it comes, so nothing
    /// waits on the rate and the window never fills.
    pub fn dry_run() -> SendPolicy {
        SendPolicy::new(
            NonZeroUsize::MIN,
            Rate::unlimited(),
            RetryPolicy::default(),
            None,
        )
    }
}

/// Enough rows to keep sending at the full rate while one row waits out the
/// longest backoff (the cap), within [`MIN_WINDOW`, `MAX_WINDOW`] and never
/// below 4 x the concurrency. Without a rate limit: the maximum.
pub(crate) fn default_window(
    rate: &Rate,
    concurrency: NonZeroUsize,
    retry: &RetryPolicy,
) -> NonZeroUsize {
    let by_rate = match rate.per_second() {
        Some(per_second) => (per_second * retry.cap.as_secs_f64()).ceil() as usize,
        None => MAX_WINDOW,
    };
    let rows = by_rate
        .max(4 * concurrency.get())
        .clamp(MIN_WINDOW, MAX_WINDOW);
    NonZeroUsize::new(rows).expect("the window is at least MIN_WINDOW")
}

/// A wait a server asked for, in seconds; an absurd one says so.
fn wait_text(wait: Duration) -> String {
    const YEAR: u64 = 365 * 24 * 3600;
    if wait.as_secs() > YEAR {
        "more than a year".to_string()
    } else {
        format!("{:.0} s", wait.as_secs_f64())
    }
}

/// A moment `wait` after `now`, at most a year after it: the clock cannot
/// overflow, whatever a server or a setting asks for.
pub(crate) fn later(now: Instant, wait: Duration) -> Instant {
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    now + wait.min(YEAR)
}

#[cfg(test)]
mod tests;
