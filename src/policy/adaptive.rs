//! The rate a run sends at, adapted to the server's throttling (HTTP 429):
//! CUBIC on a token bucket, as the AWS SDKs' adaptive retry mode does
//! (botocore `retries/adaptive.py`, aws-smithy-runtime
//! `client_rate_limiter.rs`; see the README). A pure function of the
//! answers and their times: the tests feed fixed timestamps.
//!
//! - Answers are counted in half-second buckets; the rate achieved is
//!   smoothed over them (`0.8 * latest + 0.2 * before`).
//! - On a 429 the rate drops to `beta` times the lower of the rate set and
//!   the rate the server let through over the last second (successful
//!   answers only; the smoothed rate when there is less than half a second
//!   since a pause): 0.8 while the limit is unknown, 0.9 once a 429 has come
//!   within 10% of the last one's rate (the limit is known). That rate is
//!   `W_max`. The 429s of one burst (every request in flight meets the
//!   limit at once) count as one: no second drop within a second.
//! - After it, the rate follows the CUBIC curve `C (t - K)^3 + P`: back
//!   towards the plateau `P` = 0.97 `W_max` quickly, flat near it, then
//!   probing above it. `C` is `W_max (1 - beta) / T^3`, `T` 4 s while the
//!   limit is unknown and 20 s once it is known, and `K` the time the curve
//!   takes from the drop to `P`. Where AWS has `beta` 0.7, `C` 0.4 and the
//!   plateau at `W_max` itself: here every 429 also pauses the whole run for
//!   its `Retry-After` (a second or more), so a 429 costs far more than in
//!   AWS's model, and the run does best just below the rate of the last
//!   429, probing above it rarely. Measured against the sandbox limited to
//!   100/s (README, Performance) and in the model of it in
//!   `policy/simulated.rs`: AWS's constants gave 63 rows/s with a 429 every
//!   5 s; the first version of this one (0.8, one `K` of 10 s, the plateau
//!   at `W_max`) 84%, with a 429 every 9 s; this one over 90%, a 429 every
//!   30 s or so.
//! - A 429 that ends `--rate auto`'s doubling lowers the rate no further
//!   than the rate before the last doubling, which went a second without.
//! - Only a 429 about the run's rate counts here (`policy/slowdown.rs`
//!   tells them apart); one about a request alone is an answer counted in
//!   the rate achieved, nothing more, except that one while the rate is
//!   above the last limit met keeps that limit from being taken for gone.
//! - A 429 with no successful answer since the last drop (a quota window
//!   closed: everything is throttled until it opens) lowers the rate no
//!   further: a minute of them took the rate to the floor, and the run
//!   crawled when the window opened.
//! - 10% above the last limit met with no 429 at all, that limit is gone
//!   (raised, or another client stopped): the rate doubles each second
//!   from there, as `--rate auto` starts, until the next 429.
//! - The curve's clock stops during the pauses within 3 s of a drop that
//!   measured the server (see [`Adaptive::hold_until`]): a limit that fell
//!   is followed within seconds.
//! - Never above the ceiling (`--rate R`, or `--max-rate` with `--rate
//!   auto`), never above twice the rate achieved, never below 0.5/s.
//! - `--rate auto` starts at [`AUTO_START`] and doubles every second until
//!   the first 429 (TCP's slow start); `--rate 0` has no limit until then.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

const BETA: f64 = 0.8;
const BETA_KNOWN: f64 = 0.9;
/// Above this times the rate of the last 429, with no new one, that
/// limit is gone.
const LIMIT_GONE: f64 = 1.1;
/// The drop when throttled again before a second could be measured.
const HALVE: f64 = 0.5;
/// A 429 within this share of the last one's rate: the limit is known.
const KNOWN_WITHIN: f64 = 0.1;
/// Where the curve flattens, as a share of the rate of the last 429.
const PLATEAU: f64 = 0.97;
/// The curve's time scale (see the module's notes), limit unknown...
const K: f64 = 4.0;
/// ...and known.
const K_KNOWN: f64 = 20.0;
/// A 429 this soon after the last drop is the run being throttled again.
const THROTTLED_AGAIN_WITHIN: Duration = Duration::from_secs(3);
/// The times of the last successful answers kept (a second's worth up to
/// 4,096 a second; at higher rates the span they cover).
const SUCCESSES_KEPT: usize = 4096;
const SMOOTH: f64 = 0.8;
const MIN_RATE: f64 = 0.5;
const BUCKET: Duration = Duration::from_millis(500);
/// 429s within this of the last drop are the same burst...
const SAME_BURST: Duration = Duration::from_secs(1);
/// ...unless they come this long after the pause that followed it ended.
const AFTER_PAUSE: Duration = Duration::from_millis(100);
/// Where `--rate auto` starts: slow enough for any account, and 10 s of
/// doubling from there passes 5,000 requests a second.
pub(crate) const AUTO_START: f64 = 5.0;

/// How the rate was set: the starting point of the adaptation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Start {
    /// `--rate R`: R until the first 429, and never above it.
    Ceiling(f64),
    /// `--rate 0`: no limit until the first 429.
    Unlimited,
    /// `--rate auto [--max-rate M]`: from [`AUTO_START`], doubling each
    /// second until the first 429 (or M).
    Auto { max: Option<f64> },
}

#[derive(Debug, Clone)]
pub(crate) struct Adaptive {
    ceiling: Option<f64>,
    /// The rate now; `None`: no limit.
    rate: Option<f64>,
    slow_start: bool,
    last_doubling: Instant,
    /// The last drop, `W_max` and `C` of the curve since.
    dropped_at: Option<Instant>,
    /// Where the curve's time starts: the last drop, or where a limit
    /// that is gone was given up.
    curve_from: Option<Instant>,
    successes: VecDeque<Instant>,
    counting_since: Instant,
    w_max: f64,
    k: f64,
    target: f64,
    c: f64,
    /// The achieved rate, smoothed, and the bucket being counted.
    measured: f64,
    bucket_start: Instant,
    bucket_count: u32,
    /// Answers since the start, for a drop before the first bucket closed.
    started: Instant,
    answers: u64,
    drops: u64,
    /// Bursts of 429s since the last other answer, and when the last began.
    bursts_in_a_row: u32,
    last_burst: Option<Instant>,
    /// The first 429 since the last other answer.
    throttled_since: Option<Instant>,
    /// A successful answer came since the last drop: a 429 without one
    /// between (a quota window closed, every request throttled) lowers the
    /// rate no further, or a minute of them would take it to the floor.
    through_since_drop: bool,
    /// A 429 about one request only came while the rate was above the
    /// last limit met, since the last drop: that limit may still be there,
    /// so it is not taken for gone.
    throttled_above: bool,
    /// The end of the first pause after the last drop: 429s to requests
    /// sent after it are no longer that drop's burst.
    burst_paused: Option<Instant>,
    /// What the server let through at the last drop that measured it, and
    /// how many such drops there were.
    met: Option<(f64, u64)>,
    /// The end of the last pause: the curve's clock stops while every
    /// request is held.
    held_until: Option<Instant>,
    /// The last drop that measured what the server let through: the
    /// pauses within seconds of it stop the curve's clock.
    measured_at: Option<Instant>,
}

impl Adaptive {
    pub(super) fn new(start: Start, now: Instant) -> Adaptive {
        let (ceiling, rate, slow_start) = match start {
            Start::Ceiling(rate) => (Some(rate), Some(rate), false),
            Start::Unlimited => (None, None, false),
            Start::Auto { max } => (
                max,
                Some(max.map_or(AUTO_START, |max| max.min(AUTO_START))),
                true,
            ),
        };
        Adaptive {
            ceiling,
            rate,
            slow_start,
            last_doubling: now,
            dropped_at: None,
            curve_from: None,
            successes: VecDeque::new(),
            counting_since: now,
            w_max: 0.0,
            k: K,
            target: 0.0,
            c: 0.0,
            measured: 0.0,
            bucket_start: now,
            bucket_count: 0,
            started: now,
            answers: 0,
            drops: 0,
            bursts_in_a_row: 0,
            last_burst: None,
            throttled_since: None,
            through_since_drop: true,
            throttled_above: false,
            burst_paused: None,
            met: None,
            held_until: None,
            measured_at: None,
        }
    }

    /// As [`Adaptive::new`], starting from `limit`, a limit this account's
    /// runs met before: as just after a 429 at that limit (a little below
    /// it, the curve back up to it, then probing beyond, gently), instead
    /// of doubling from the start or sending above it.
    pub(super) fn below(start: Start, limit: f64, now: Instant) -> Adaptive {
        let mut adaptive = Adaptive::new(start, now);
        let base = adaptive.capped(limit.max(MIN_RATE));
        let lowered = adaptive.capped((base * BETA_KNOWN).max(MIN_RATE));
        adaptive.w_max = base;
        adaptive.target = (base * PLATEAU).max(lowered);
        adaptive.c = base * (1.0 - BETA_KNOWN) / K_KNOWN.powi(3);
        adaptive.k = ((adaptive.target - lowered) / adaptive.c).cbrt();
        adaptive.curve_from = Some(now);
        adaptive.slow_start = false;
        adaptive.rate = Some(lowered);
        adaptive
    }

    /// The rate to send at now; `None`: no limit.
    pub(super) fn rate(&self) -> Option<f64> {
        self.rate
    }

    /// How many times a 429 made the rate drop.
    pub(super) fn drops(&self) -> u64 {
        self.drops
    }

    /// What the server let through when the rate last dropped (measured
    /// over a second), and how many such drops there were.
    pub(super) fn met(&self) -> Option<(f64, u64)> {
        self.met
    }

    /// Bursts of 429s (each a second or more after the last) with no other
    /// answer since: the server throttles whatever the rate.
    pub(crate) fn bursts_in_a_row(&self) -> u32 {
        self.bursts_in_a_row
    }

    /// How long only 429s have come (since the first after the last other
    /// answer), if they have.
    pub(crate) fn throttled_for(&self, now: Instant) -> Option<Duration> {
        self.throttled_since
            .map(|since| now.saturating_duration_since(since))
    }

    /// A 429 about one request only (see `slowdown`): an answer counted in
    /// the rate achieved, but no signal either way.
    pub(super) fn background(&mut self, now: Instant) {
        self.count(now);
        if self.w_max > 0.0 && self.rate.is_some_and(|rate| rate > self.w_max) {
            self.throttled_above = true;
        }
    }

    /// An answer from the server at `now`: `throttled` for a 429 about the
    /// run's rate.
    pub(super) fn answered(&mut self, now: Instant, throttled: bool) {
        self.count(now);
        if !throttled {
            self.through_since_drop = true;
            self.throttled_since = None;
            if self.successes.len() == SUCCESSES_KEPT {
                self.successes.pop_front();
            }
            self.successes.push_back(now);
        }
        if throttled {
            if self
                .last_burst
                .is_none_or(|at| now.saturating_duration_since(at) >= SAME_BURST)
            {
                self.last_burst = Some(now);
                self.bursts_in_a_row += 1;
            }
            self.throttled_since.get_or_insert(now);
            if self.through_since_drop {
                self.drop_rate(now);
            }
        } else {
            self.bursts_in_a_row = 0;
            self.grow(now);
        }
    }

    /// A server error (a 5xx without `Retry-After`): an answer, but not
    /// one through; `about_the_rate` (see `overload`) lowers the rate, as
    /// a 429 does, when something went through since the last drop.
    /// When the rate dropped, whether it went below what the server was
    /// measured to let through.
    pub(super) fn errored(&mut self, now: Instant, about_the_rate: bool) -> Option<bool> {
        self.count(now);
        self.bursts_in_a_row = 0;
        self.throttled_since = None;
        let drops = self.drops;
        if about_the_rate && self.through_since_drop {
            self.drop_rate(now);
        } else if self.w_max > 0.0 && self.rate.is_some_and(|rate| rate > self.w_max) {
            // Errors above the last limit met keep it from being taken for
            // gone, as a 429 about one row does.
            self.throttled_above = true;
        }
        // Measured: lowered below what the server let through (a drop in
        // `--rate auto`'s doubling keeps at least half the rate, which may
        // still be above it).
        let below_through = (self.rate)
            .zip(self.met)
            .is_some_and(|(rate, (through, _))| rate <= through);
        (self.drops > drops).then(|| self.measured_at == Some(now) && below_through)
    }

    fn count(&mut self, now: Instant) {
        self.answers += 1;
        self.bucket_count += 1;
        let elapsed = now.saturating_duration_since(self.bucket_start);
        if elapsed >= BUCKET {
            // A bucket that spans a pause (every request held for a 429's
            // Retry-After) measures the pause, not the rate: it is dropped.
            if elapsed <= 2 * BUCKET {
                let rate = f64::from(self.bucket_count) / elapsed.as_secs_f64();
                self.measured = if self.measured > 0.0 {
                    SMOOTH * rate + (1.0 - SMOOTH) * self.measured
                } else {
                    rate
                };
            }
            self.bucket_start = now;
            self.bucket_count = 0;
        }
    }

    /// The rate achieved: the smoothed one, or before a bucket has closed,
    /// the answers since the start.
    fn achieved(&self, now: Instant) -> f64 {
        if self.measured > 0.0 {
            return self.measured;
        }
        let elapsed = now.saturating_duration_since(self.started).as_secs_f64();
        self.answers as f64 / elapsed.max(BUCKET.as_secs_f64())
    }

    /// Successful answers a second over the last second (since the last
    /// pause, if later), when that is half a second or more: what the
    /// server let through just before it throttled.
    fn let_through(&mut self, now: Instant) -> Option<f64> {
        let from = now
            .checked_sub(Duration::from_secs(1))
            .unwrap_or(self.started)
            .max(self.counting_since);
        while self.successes.front().is_some_and(|&at| at <= from) {
            self.successes.pop_front();
        }
        let from = match self.successes.front() {
            Some(&first) if self.successes.len() == SUCCESSES_KEPT => first,
            _ => from,
        };
        let span = now.saturating_duration_since(from);
        // None through at all says nothing of the limit (the last rows of
        // a run may all be users throttled on their own account).
        let through = !self.successes.is_empty();
        (span >= BUCKET && through).then(|| self.successes.len() as f64 / span.as_secs_f64())
    }

    fn drop_rate(&mut self, now: Instant) {
        // The 429s of one burst: within a second of the drop, and before
        // the requests sent after the pause could come back. (A server
        // that asks for a few milliseconds, `retry-after-ms`, ends the
        // pause at once: the 429s after it are the lowered rate's.)
        let pause_over = self.burst_paused.map(|until| until + AFTER_PAUSE);
        if self.dropped_at.is_some_and(|at| {
            now.saturating_duration_since(at) < SAME_BURST && pause_over.is_none_or(|t| now < t)
        }) {
            return;
        }
        self.burst_paused = None;
        let previous_drop = self.dropped_at;
        // Before a bucket has closed the rate achieved is a guess (a burst
        // of the first milliseconds): the rate set is the better base, and
        // without one the run starts again from what it achieved, doubling
        // each second as `--rate auto` does, rather than trust the guess.
        let measured = self.measured > 0.0;
        if self.rate.is_none() && !measured {
            let start = self.capped(self.achieved(now).max(AUTO_START));
            self.rate = Some(start);
            self.slow_start = true;
            self.last_doubling = now;
            self.dropped_at = Some(now);
            self.curve_from = Some(now);
            self.through_since_drop = false;
            self.drops += 1;
            return;
        }
        // Throttled again within seconds of the last drop, too soon after a
        // pause to measure a second: the run is still far above the limit
        // (the smoothed rate predates the throttling, and the pauses hide
        // the server's own rate). The rate halves then, as TCP's does on
        // repeated loss; at 0.8 a drop, one drop and one pause a second, a
        // limit far below the rate took ten seconds to reach.
        let throttled_again = previous_drop
            .is_some_and(|at| now.saturating_duration_since(at) < THROTTLED_AGAIN_WITHIN);
        let through = self.let_through(now);
        let halve = through.is_none() && throttled_again && self.rate.is_some();
        let achieved = through.or(measured.then_some(self.measured));
        let base = match (self.rate, achieved) {
            (Some(rate), _) if halve => rate,
            (Some(rate), Some(achieved)) => rate.min(achieved),
            (Some(rate), None) => rate,
            (None, achieved) => achieved.unwrap_or(self.measured),
        }
        .max(MIN_RATE);
        let known = self.w_max > 0.0 && (base - self.w_max).abs() <= KNOWN_WITHIN * self.w_max;
        let (beta, k) = match (halve, known) {
            (true, _) => (HALVE, K),
            (false, true) => (BETA_KNOWN, K_KNOWN),
            (false, false) => (BETA, K),
        };
        let mut lowered = base * beta;
        if self.slow_start
            && let Some(rate) = self.rate
        {
            // The rate before the last doubling went a second without a 429.
            lowered = lowered.max(rate / 2.0);
        }
        let lowered = self.capped(lowered.max(MIN_RATE));
        self.w_max = base;
        if let Some(through) = through {
            // Measured: what the server let through, for the account's
            // other runs (numbered, so that each is told once).
            self.met = Some((through, self.met.map_or(1, |(_, n)| n + 1)));
            self.measured_at = Some(now);
        }
        self.target = (base * PLATEAU).max(lowered);
        self.c = base * (1.0 - beta) / k.powi(3);
        self.k = ((self.target - lowered) / self.c).cbrt();
        self.dropped_at = Some(now);
        self.curve_from = Some(now);
        self.slow_start = false;
        self.through_since_drop = false;
        self.throttled_above = false;
        if self.rate.is_none_or(|rate| lowered < rate) {
            self.drops += 1;
        }
        self.rate = Some(lowered);
    }

    /// Every request is held from `now` until `until` (a 429's
    /// `Retry-After`): the bucket being counted starts again then, so that
    /// the pause is not measured as a slow rate. Within seconds of a drop
    /// that measured what the server let through (a limit that fell under
    /// a rate it had held), the curve's clock stops meanwhile: it ran on,
    /// the run climbed back during each pause to where it was throttled
    /// and met the next 429 in the first tenth of a second after it (from
    /// 100 to 30/s, 4 to 7 rows a second for 5 s; now 15 or more from the
    /// fourth second). It runs on in other pauses: a run that has measured
    /// nothing yet (its start, or a run that came second to an account
    /// another run keeps busy) climbs back during them, or halving without
    /// a measure would keep it at the floor.
    pub(crate) fn hold_until(&mut self, now: Instant, until: Instant) {
        if self.dropped_at.is_some() && self.burst_paused.is_none() {
            self.burst_paused = Some(until);
        }
        let from = self.held_until.map_or(now, |held| held.max(now));
        if let Some(curve_from) = self.curve_from
            && until > from
            && self
                .measured_at
                .is_some_and(|at| now.saturating_duration_since(at) < THROTTLED_AGAIN_WITHIN)
        {
            self.curve_from = Some(curve_from + (until - from));
        }
        self.held_until = Some(self.held_until.map_or(until, |held| held.max(until)));
        self.bucket_start = until;
        self.bucket_count = 0;
        self.counting_since = until;
    }

    fn grow(&mut self, now: Instant) {
        if self.slow_start {
            let since = now.saturating_duration_since(self.last_doubling);
            if since >= Duration::from_secs(1) {
                self.last_doubling = now;
                let doubled = self.rate.map(|rate| self.capped(rate * 2.0));
                // Doubling what is not achieved probes nothing.
                let achieved = self.achieved(now);
                if achieved >= self.rate.unwrap_or(0.0) * 0.5 {
                    self.rate = doubled;
                }
            }
            return;
        }
        let Some(curve_from) = self.curve_from else {
            return;
        };
        let t = now.saturating_duration_since(curve_from).as_secs_f64();
        let curve = self.c * (t - self.k).powi(3) + self.target;
        // Well above the rate of the last 429 with no new one: that limit
        // is gone (raised, or another client stopped). Probe from here by
        // doubling each second, as `--rate auto` starts, rather than creep
        // on the curve (from 20/s, 1.1 times every 3 s took a minute to
        // reach 100/s).
        if self.w_max > 0.0 && curve > self.w_max * LIMIT_GONE && !self.throttled_above {
            self.w_max = 0.0;
            self.slow_start = true;
            self.last_doubling = now;
        }
        // Twice the rate achieved stops the climb (a run that sends less
        // than it may, near its end, say, learns nothing by going higher),
        // but never lowers the rate: only a 429 does.
        let current = self.rate.unwrap_or(MIN_RATE);
        let limit = (2.0 * self.achieved(now)).max(current);
        self.rate = Some(self.capped(curve.min(limit).max(MIN_RATE)));
    }

    fn capped(&self, rate: f64) -> f64 {
        match self.ceiling {
            Some(ceiling) => rate.min(ceiling),
            None => rate,
        }
    }
}

#[cfg(test)]
mod tests;
