//! The pacer against models of servers that throttle, in simulated time:
//! a token bucket of `limit` requests a second (which may change over
//! time) answering 429 with `Retry-After` in whole seconds (at least 1) as
//! `sandbox::faults` does; a share of random 429s whatever the rate; some
//! users always throttled; a fixed quota window answering 429 without
//! `Retry-After`. Rows are retried as the dispatcher retries them: after a
//! 429 about the run's rate, when the run's pause ends; after one about the
//! row, on its own backoff, failing after six attempts. Deterministic, so
//! the tests can hold the adaptive rate to figures; the benchmark
//! (`bench/rate.sh`) measures the real thing. `SIM_TRACE=1 cargo test --lib
//! simulated -- --nocapture` prints each 429 and what it was taken for.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::num::NonZeroU32;
use std::time::Duration;

use tokio::time::Instant;

use super::{Mark, Pacer, Rate, RetryPolicy, Slowdown};

/// A server's throttling.
pub(crate) struct Server {
    /// The token bucket's rate at a second of the run; `None`: none.
    limit: Option<Box<dyn Fn(f64) -> f64>>,
    burst: f64,
    tokens: f64,
    refilled: f64,
    /// Share of requests answered 429 (`Retry-After: 1`) whatever the rate.
    noise: f64,
    seed: u64,
    /// Rows whose number this divides are always answered 429.
    every: Option<u64>,
    /// At most this many requests in each window of so many seconds,
    /// beyond it 429 without `Retry-After`; the window's number and count.
    window: Option<(u64, f64)>,
    in_window: (u64, u64),
}

impl Server {
    pub(crate) fn bucket(limit: f64, burst: f64) -> Server {
        Server::changing(move |_| limit, burst)
    }

    pub(crate) fn changing(limit: impl Fn(f64) -> f64 + 'static, burst: f64) -> Server {
        Server {
            limit: Some(Box::new(limit)),
            burst,
            tokens: burst,
            ..Server::unlimited()
        }
    }

    pub(crate) fn unlimited() -> Server {
        Server {
            limit: None,
            burst: 0.0,
            tokens: 0.0,
            refilled: 0.0,
            noise: 0.0,
            seed: 0x2545_f491_4f6c_dd1d,
            every: None,
            window: None,
            in_window: (0, 0),
        }
    }

    pub(crate) fn noise(mut self, share: f64) -> Server {
        self.noise = share;
        self
    }

    pub(crate) fn every(mut self, n: u64) -> Server {
        self.every = Some(n);
        self
    }

    pub(crate) fn window(mut self, requests: u64, seconds: f64) -> Server {
        self.window = Some((requests, seconds));
        self
    }

    /// The answer to a request about `row` arriving at `at` seconds:
    /// `None` for a success, else the 429's `Retry-After`, if any.
    fn reply(&mut self, at: f64, row: u64) -> Option<Option<f64>> {
        if self.every.is_some_and(|n| row.is_multiple_of(n)) {
            return Some(Some(1.0));
        }
        self.seed = self
            .seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        if ((self.seed >> 11) as f64 / (1u64 << 53) as f64) < self.noise {
            return Some(Some(1.0));
        }
        if let Some((most, seconds)) = self.window {
            let window = (at / seconds) as u64;
            if self.in_window.0 != window {
                self.in_window = (window, 0);
            }
            if self.in_window.1 >= most {
                return Some(None);
            }
            self.in_window.1 += 1;
        }
        if let Some(limit) = &self.limit {
            let limit = limit(at);
            self.tokens = (self.tokens + (at - self.refilled).max(0.0) * limit).min(self.burst);
            self.refilled = self.refilled.max(at);
            if self.tokens < 1.0 {
                return Some(Some(((1.0 - self.tokens) / limit).ceil().max(1.0)));
            }
            self.tokens -= 1.0;
        }
        None
    }
}

pub(super) struct Outcome {
    pub seconds: f64,
    pub requests: u64,
    pub throttled: u64,
    /// Rows that failed (throttled on every attempt), and rows not sent
    /// because the run stopped.
    pub failed: u64,
    pub stopped: bool,
    pub(crate) rate_ended: Option<f64>,
    /// When the last row went through, in seconds.
    pub last_through: f64,
    /// Rows done in each second.
    pub per_second: Vec<u64>,
}

impl Outcome {
    pub(crate) fn share_of(&self, rows: u64, limit: f64) -> f64 {
        rows as f64 / self.seconds / limit
    }
}

/// `rows` rows through `rate` against a server of `limit`/s and `burst`;
/// each answer takes `latency`, and a request reaches the server between
/// 0 and 1 ms late (a pseudo-random, repeatable jitter).
pub(super) fn run(rate: &Rate, rows: u64, limit: f64, burst: f64, latency: Duration) -> Outcome {
    simulate(rate, rows, &mut Server::bucket(limit, burst), latency)
}

/// [`run`] against a limit that changes over time (`limit_at(seconds)`).
pub(crate) fn run_changing(
    rate: &Rate,
    rows: u64,
    limit_at: impl Fn(f64) -> f64 + 'static,
    burst: f64,
    latency: Duration,
) -> Outcome {
    simulate(rate, rows, &mut Server::changing(limit_at, burst), latency)
}

/// `rows` rows through `rate` against `server`, retried as the dispatcher
/// does (the default retry policy, its backoff at half its ceiling).
pub(crate) fn simulate(rate: &Rate, rows: u64, server: &mut Server, latency: Duration) -> Outcome {
    let retry = RetryPolicy::default();
    let start = Instant::now();
    let seconds = |at: Instant| at.saturating_duration_since(start).as_secs_f64();
    let mut pacer = Pacer::starting(rate, start);
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    // Rows waiting for a retry: when, which, after how many attempts.
    let mut waiting: BinaryHeap<Reverse<(Instant, u64, u32, Mark)>> = BinaryHeap::new();
    let (mut now, mut next_row) = (start, 0);
    let mut outcome = Outcome {
        seconds: 0.0,
        requests: 0,
        throttled: 0,
        failed: 0,
        stopped: false,
        rate_ended: None,
        last_through: 0.0,
        per_second: Vec::new(),
    };
    loop {
        let due = waiting.peek().is_some_and(|Reverse((at, ..))| *at <= now);
        let (row, attempts, mut mark) = if due {
            let Reverse((_, row, attempts, mark)) = waiting.pop().expect("peeked");
            (row, attempts, mark)
        } else if next_row < rows {
            next_row += 1;
            (next_row, 0, Mark::default())
        } else if let Some(Reverse((at, ..))) = waiting.peek() {
            now = *at;
            continue;
        } else {
            break;
        };
        if let Err(until) = pacer.try_admit(now) {
            waiting.push(Reverse((now, row, attempts, mark)));
            now = until;
            continue;
        }
        outcome.requests += 1;
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let arrives = now + Duration::from_micros((seed >> 33) % 1000);
        let answered = arrives + latency;
        let Some(retry_after) = server.reply(seconds(arrives), row) else {
            let index = seconds(arrives) as usize;
            if outcome.per_second.len() <= index {
                outcome.per_second.resize(index + 1, 0);
            }
            outcome.per_second[index] += 1;
            outcome.last_through = seconds(answered);
            pacer.answered(answered, false, &mut mark);
            continue;
        };
        outcome.throttled += 1;
        let asked = retry_after.map(Duration::from_secs_f64);
        let kind = pacer.answered(answered, true, &mut mark);
        if std::env::var("SIM_TRACE").is_ok() {
            eprintln!(
                "{:.3} row {row} att {attempts} {kind:?} rate {:?}",
                seconds(answered),
                pacer.rate().0
            );
        }
        match kind {
            Some(Slowdown::Rate { shared }) if shared || attempts < retry.max_retries => {
                if pacer
                    .throttled_for(answered)
                    .is_some_and(|lasted| lasted > retry.max_wait)
                {
                    outcome.stopped = true;
                    outcome.failed += rows - next_row + waiting.len() as u64 + 1;
                    break;
                }
                let wait = asked.unwrap_or_else(|| retry.ceiling(pacer.bursts_in_a_row()));
                pacer.pause(answered + wait);
                let attempts = attempts + u32::from(!shared);
                waiting.push(Reverse((answered + wait, row, attempts, mark)));
            }
            _ if attempts + 1 > retry.max_retries => outcome.failed += 1,
            _ => {
                let wait = asked.unwrap_or_else(|| retry.ceiling(attempts + 1) / 2);
                waiting.push(Reverse((answered + wait, row, attempts + 1, mark)));
            }
        }
    }
    outcome.seconds = seconds(now);
    outcome.rate_ended = pacer.rate().0;
    outcome
}

#[test]
fn the_adaptive_rate_settles_near_a_servers_limit() {
    let burst = NonZeroU32::new(5).unwrap();
    let latency = Duration::from_millis(2);
    for rows in [2_000, 10_000] {
        for rate in [
            Rate::new(150.0, burst).unwrap(),
            Rate::auto(None, burst).unwrap(),
            Rate::new(0.0, burst).unwrap(),
        ] {
            let outcome = run(&rate, rows, 100.0, 5.0, latency);
            let share = outcome.share_of(rows, 100.0);
            eprintln!(
                "{rows} rows, {:?}: {:.1} s, {:.1}% of the limit, {} of {} requests 429, ended at {:?}",
                rate.start(),
                outcome.seconds,
                100.0 * share,
                outcome.throttled,
                outcome.requests,
                outcome.rate_ended
            );
            // Wide of the figures printed (90-93% at 10,000 rows): the
            // model is deterministic, but the tests are not its benchmark.
            let least = if rows == 2_000 { 0.65 } else { 0.85 };
            assert!(share >= least, "{share}");
            // Under 2%: a run probing above a limit meets a few 429s before
            // they are a share it takes for the limit (`slowdown`), each
            // retried on its own; none pauses the run.
            assert!(outcome.throttled * 50 < outcome.requests, "under 2% 429s");
            assert_eq!(outcome.failed, 0);
        }
    }
}

/// A limit far below `--rate` is found in seconds, not at one drop of 0.8
/// a second with a pause each time (a hostile test saw 5 rows/s against a
/// limit of 30 for the first 8 s, and 11.5% of requests answered 429).
#[test]
fn a_limit_far_below_the_rate_is_found_in_seconds() {
    let rate = Rate::new(200.0, NonZeroU32::new(5).unwrap()).unwrap();
    let outcome = run_changing(&rate, 600, |_| 30.0, 5.0, Duration::from_millis(2));
    let per_second = &outcome.per_second;
    eprintln!(
        "{per_second:?}, {} of {} requests 429",
        outcome.throttled, outcome.requests
    );
    let from_5_s: u64 = per_second[5..15].iter().sum();
    assert!(
        from_5_s >= 240,
        "{per_second:?}: seconds 5 to 15 at 80% of 30/s"
    );
    assert!(outcome.throttled * 20 < outcome.requests, "under 5% 429s");
}

/// A limit that drops, then rises far above where it was, is followed both
/// ways: down within seconds, up within 20 s (the curve passes the rate of
/// the last 429 by 10% and probes from there as for an unknown limit). A
/// hostile test had seen the run stay at 30% of a raised limit for half a
/// minute and more.
#[test]
fn a_limit_that_falls_then_rises_is_followed() {
    let rate = Rate::new(200.0, NonZeroU32::new(5).unwrap()).unwrap();
    let limit = |t: f64| match t {
        t if t < 10.0 => 100.0,
        t if t < 20.0 => 30.0,
        _ => 150.0,
    };
    let outcome = run_changing(&rate, 7_000, limit, 5.0, Duration::from_millis(2));
    let per_second = &outcome.per_second;
    eprintln!(
        "{per_second:?}, {} of {} requests 429",
        outcome.throttled, outcome.requests
    );
    let low: u64 = per_second[13..20].iter().sum();
    assert!(low >= 7 * 12, "{per_second:?}: 30/s followed down");
    let after_low: u64 = per_second[21..40].iter().sum();
    assert!(after_low >= 19 * 27, "{per_second:?}: settled near 30/s");
    let risen = per_second[40..50].iter().sum::<u64>();
    assert!(risen >= 10 * 110, "{per_second:?}: 150/s found within 20 s");
    assert!(outcome.throttled * 20 < outcome.requests, "under 5% 429s");
}

/// A run that starts from the limit an earlier run of the account met
/// (issue 25: a second run of 2,000 rows against 100/s at >= 90 rows/s
/// overall; from nothing, `--rate auto` reached 87% and `--rate 150` 76%).
#[test]
fn a_remembered_limit_is_the_start_of_the_next_run() {
    let burst = NonZeroU32::new(5).unwrap();
    let latency = Duration::from_millis(2);
    for rate in [
        Rate::auto(None, burst).unwrap(),
        Rate::new(150.0, burst).unwrap(),
    ] {
        let fresh = run(&rate, 2_000, 100.0, 5.0, latency);
        let learned = fresh.rate_ended.unwrap();
        let next = run(
            &rate.clone().starting_from(learned),
            2_000,
            100.0,
            5.0,
            latency,
        );
        eprintln!(
            "{:?}: fresh {:.1}% of the limit (ended at {learned:.1}), next {:.1}%, {} of {} \
             requests 429",
            rate.start(),
            100.0 * fresh.share_of(2_000, 100.0),
            100.0 * next.share_of(2_000, 100.0),
            next.throttled,
            next.requests
        );
        assert!(next.share_of(2_000, 100.0) >= 0.9, "{:?}", rate.start());
        assert!(next.throttled * 20 < next.requests, "under 5% 429s");
    }
    // A limit that rose since is found from there: probing goes on.
    let rate = Rate::auto(None, burst).unwrap().starting_from(50.0);
    let per_second = run_changing(&rate, 4_000, |_| 100.0, 5.0, latency).per_second;
    let late: u64 = per_second[per_second.len() - 11..per_second.len() - 1]
        .iter()
        .sum();
    assert!(late >= 800, "{per_second:?}: up to 100/s again");
}

/// Issue 25, items 1 and 2: 429s that are not about the run's rate (2% of
/// answers at random; every 50th user always) leave the rate alone: at
/// `--rate 100` the run stays near 100 rows/s (it fell to 28 and to 2
/// when every 429 lowered the rate and paused the run).
#[test]
fn throttles_not_about_the_rate_leave_it_alone() {
    let burst = NonZeroU32::new(5).unwrap();
    let latency = Duration::from_millis(2);
    for rate in [
        Rate::new(100.0, burst).unwrap(),
        Rate::auto(Some(100.0), burst).unwrap(),
    ] {
        let noisy = simulate(&rate, 3_000, &mut Server::unlimited().noise(0.02), latency);
        eprintln!(
            "{:?}, 2% noise: {:.1} rows/s, {} of {} requests 429, {} failed, ended at {:?}",
            rate.start(),
            3_000.0 / noisy.seconds,
            noisy.throttled,
            noisy.requests,
            noisy.failed,
            noisy.rate_ended
        );
        // `--rate auto` meets a 429 in its first second or so, too early to
        // tell it from the limit: it starts again from a few rows/s.
        let least = if rate.is_auto() { 65.0 } else { 85.0 };
        assert!(3_000.0 / noisy.seconds >= least, "{:?}", rate.start());
        let least = if rate.is_auto() { 75.0 } else { 85.0 };
        assert_eq!(noisy.failed, 0);
        let every = simulate(&rate, 3_000, &mut Server::unlimited().every(50), latency);
        let others = (3_000 - 60) as f64 / every.last_through;
        eprintln!(
            "{:?}, every 50th: {:.1} rows/s of the others, {} of {} requests 429, {} failed, \
             ended at {:?}",
            rate.start(),
            others,
            every.throttled,
            every.requests,
            every.failed,
            every.rate_ended
        );
        assert!(others >= least, "{:?}", rate.start());
        assert_eq!(
            every.failed, 60,
            "the throttled users fail, after six attempts each"
        );
    }
}

/// Issue 25, item 4: a quota of 600 requests a minute, 429 without
/// `Retry-After` while it is spent: waited out (the run's pause grows to
/// 30 s), not taken for a blocked account; 1,300 rows in under 3 minutes.
#[test]
fn a_quota_window_is_waited_out() {
    let rate = Rate::new(100.0, NonZeroU32::new(5).unwrap()).unwrap();
    let mut server = Server::unlimited().window(600, 60.0);
    let outcome = simulate(&rate, 1_300, &mut server, Duration::from_millis(2));
    eprintln!(
        "{:.1} s, {} of {} requests 429, {} failed, rate ended at {:?}",
        outcome.seconds, outcome.throttled, outcome.requests, outcome.failed, outcome.rate_ended
    );
    assert!(!outcome.stopped);
    assert_eq!(outcome.failed, 0);
    assert!(outcome.seconds < 180.0, "{}", outcome.seconds);
    assert!(outcome.throttled < 100, "{} 429s", outcome.throttled);
    // A window that never opens is an account blocked: the run stops after
    // --max-wait (300 s) of nothing but 429s.
    let mut never = Server::unlimited().window(10, 1e9);
    let blocked = simulate(&rate, 100, &mut never, Duration::from_millis(2));
    assert!(blocked.stopped);
    assert!(
        (300.0..400.0).contains(&blocked.seconds),
        "{}",
        blocked.seconds
    );
}
