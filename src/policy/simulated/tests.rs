//! The adaptive rate against the servers of `simulated`, held to figures.

use std::num::NonZeroU32;
use std::time::Duration;

use super::*;

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
    // Issue 25, item 6: settled within about 5 s at no less than half
    // the new limit (the curve's clock ran on during each pause, and the
    // run sent 4 to 7 rows a second for 5 s, 17 in the sixth).
    let settled = &per_second[14..20];
    assert!(
        settled.iter().all(|&second| second >= 15),
        "{per_second:?}: 30/s followed down within 5 s"
    );
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

/// Issue 25, item 7: two runs of one account against 100/s, the second
/// starting 5 s after the first. Splitting the limit through their leases,
/// they get >= 85 rows/s together, neither below 35/s while both run, and
/// under 3% of requests 429; on their own they split it unevenly (72 to 27
/// measured over HTTP).
#[test]
fn two_runs_of_one_account_split_its_limit() {
    let burst = NonZeroU32::new(5).unwrap();
    let latency = Duration::from_millis(2);
    for share in [false, true] {
        let runs = [
            Run {
                rate: Rate::new(150.0, burst).unwrap(),
                rows: 4_000,
                from: 0.0,
            },
            Run {
                rate: Rate::new(150.0, burst).unwrap(),
                rows: 2_000,
                from: 5.0,
            },
        ];
        let outcomes = simulate_runs(&runs, &mut Server::bucket(100.0, 5.0), latency, share);
        let (first, second) = (&outcomes[0], &outcomes[1]);
        // While both run: seconds 10 to 25 of the first (5 to 20 of the second).
        let both = |outcome: &Outcome, from: usize| -> f64 {
            outcome.per_second[from..from + 15].iter().sum::<u64>() as f64 / 15.0
        };
        let (a, b) = (both(first, 10), both(second, 5));
        let requests = first.requests + second.requests;
        let throttled = first.throttled + second.throttled;
        eprintln!(
            "share {share}: {a:.1} + {b:.1} rows/s while both run, {} + {} failed, {throttled} of {requests} \
             requests 429; first {:?}\nsecond {:?}",
            first.failed, second.failed, first.per_second, second.per_second
        );
        // The first takes the whole limit once the second ended: its
        // second and third seconds after.
        let ended = (5.0 + second.seconds).ceil() as usize;
        let after = first
            .per_second
            .get(ended + 1..ended + 3)
            .map_or(0.0, |after| after.iter().sum::<u64>() as f64 / 2.0);
        eprintln!("the first, once alone: {after:.1} rows/s");
        if share {
            assert!(a + b >= 85.0, "{a} + {b}");
            assert!(a.min(b) >= 35.0, "{a}, {b}");
            assert!(throttled * 100 < 3 * requests, "{throttled} of {requests}");
            assert!(after >= 80.0, "{after}");
        }
    }
}

/// Two runs that share a limit they met low (the account's limit fell to
/// 10/s for 6 s, then came back to 100/s) find it raised again within
/// about 20 s (issue 25: "a raise found within about 20 s"), through the
/// probes of the split and their own rates' climb: 8 s in this model.
/// (A lease that keeps claiming a fresh low measure, which only a forged
/// one does, holds them down instead: see the README's sharing section.)
#[test]
fn runs_that_met_a_low_limit_find_it_raised_again_within_about_20_s() {
    let burst = NonZeroU32::new(5).unwrap();
    let latency = Duration::from_millis(2);
    let runs = [0.0, 0.0].map(|from| Run {
        rate: Rate::new(150.0, burst).unwrap(),
        rows: 3_000,
        from,
    });
    let limit = |t: f64| {
        if (10.0..16.0).contains(&t) {
            10.0
        } else {
            100.0
        }
    };
    let outcomes = simulate_runs(&runs, &mut Server::changing(limit, 5.0), latency, true);
    let (first, second) = (&outcomes[0], &outcomes[1]);
    let together = |second_: usize| {
        first.per_second.get(second_).copied().unwrap_or(0)
            + second.per_second.get(second_).copied().unwrap_or(0)
    };
    let seconds: Vec<u64> = (0..first.per_second.len().max(second.per_second.len()))
        .map(together)
        .collect();
    eprintln!("together, second by second: {seconds:?}");
    // From 36 s (20 s after the limit came back), both runs together get
    // most of it through while both run.
    let found = (16..seconds.len()).find(|&s| seconds[s] >= 80);
    assert!(
        found.is_some_and(|s| s <= 36),
        "the raised limit found at {found:?} s: {seconds:?}"
    );
}
