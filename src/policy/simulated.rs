//! The pacer against a model of the sandbox's limit, in simulated time: a
//! token bucket of `limit` requests a second and `burst`, answering 429
//! with `Retry-After` in whole seconds (at least 1) when it is empty, as
//! `sandbox::faults` does. Deterministic, so the tests can hold the
//! adaptive rate to figures; the benchmark (`bench/rate.sh`) measures the
//! real thing.

use std::num::NonZeroU32;
use std::time::Duration;

use tokio::time::Instant;

use super::{Pacer, Rate};

pub(super) struct Outcome {
    pub seconds: f64,
    pub requests: u64,
    pub throttled: u64,
    pub(crate) rate_ended: Option<f64>,
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
    run_changing(rate, rows, |_| limit, burst, latency).0
}

/// [`run`] against a limit that changes over time (`limit_at(seconds)`);
/// also the rows done in each second.
pub(crate) fn run_changing(
    rate: &Rate,
    rows: u64,
    limit_at: impl Fn(f64) -> f64,
    burst: f64,
    latency: Duration,
) -> (Outcome, Vec<u64>) {
    let start = Instant::now();
    let mut per_second: Vec<u64> = Vec::new();
    let mut pacer = Pacer::starting(rate, start);
    let (mut tokens, mut refilled) = (burst, start);
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let (mut now, mut done, mut requests, mut throttled) = (start, 0, 0, 0);
    while done < rows {
        if let Err(until) = pacer.try_admit(now) {
            now = until;
            continue;
        }
        requests += 1;
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let jitter = Duration::from_micros((seed >> 33) % 1000);
        let arrives = now + jitter;
        let elapsed = arrives.saturating_duration_since(refilled).as_secs_f64();
        let second = arrives.saturating_duration_since(start).as_secs_f64();
        let limit = limit_at(second);
        tokens = (tokens + elapsed * limit).min(burst);
        refilled = refilled.max(arrives);
        let answered = arrives + latency;
        if tokens >= 1.0 {
            tokens -= 1.0;
            done += 1;
            let index = second as usize;
            if per_second.len() <= index {
                per_second.resize(index + 1, 0);
            }
            per_second[index] += 1;
            pacer.answered(answered, false);
        } else {
            throttled += 1;
            let wait = ((1.0 - tokens) / limit).ceil().max(1.0);
            pacer.answered(answered, true);
            pacer.pause(answered + Duration::from_secs_f64(wait));
        }
    }
    let outcome = Outcome {
        seconds: now.saturating_duration_since(start).as_secs_f64(),
        requests,
        throttled,
        rate_ended: pacer.rate().0,
    };
    (outcome, per_second)
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
            assert!(outcome.throttled * 100 < outcome.requests, "under 1% 429s");
        }
    }
}

/// A limit far below `--rate` is found in seconds, not at one drop of 0.8
/// a second with a pause each time (a hostile test saw 5 rows/s against a
/// limit of 30 for the first 8 s, and 11.5% of requests answered 429).
#[test]
fn a_limit_far_below_the_rate_is_found_in_seconds() {
    let rate = Rate::new(200.0, NonZeroU32::new(5).unwrap()).unwrap();
    let (outcome, per_second) = run_changing(&rate, 600, |_| 30.0, 5.0, Duration::from_millis(2));
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
    let (outcome, per_second) = run_changing(&rate, 7_000, limit, 5.0, Duration::from_millis(2));
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
    let (_, per_second) = run_changing(&rate, 4_000, |_| 100.0, 5.0, latency);
    let late: u64 = per_second[per_second.len() - 11..per_second.len() - 1]
        .iter()
        .sum();
    assert!(late >= 800, "{per_second:?}: up to 100/s again");
}
