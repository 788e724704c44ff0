//! The adaptive rate's tests, fed fixed timestamps.

use super::*;

fn at(start: Instant, seconds: f64) -> Instant {
    start + Duration::from_secs_f64(seconds)
}

/// Answers at `per_second` from `from` to `to` s, none throttled.
fn steady(adaptive: &mut Adaptive, start: Instant, from: f64, to: f64, per_second: f64) {
    let mut t = from;
    while t < to {
        adaptive.answered(at(start, t), false);
        t += 1.0 / per_second;
    }
}

#[test]
fn a_ceiling_holds_until_a_429_then_drops_and_climbs_back_by_the_curve() {
    let start = Instant::now();
    let mut adaptive = Adaptive::new(Start::Ceiling(150.0), start);
    assert_eq!(adaptive.rate(), Some(150.0));
    // The server allows 100/s: the run achieves 100/s, then a 429.
    steady(&mut adaptive, start, 0.0, 5.0, 100.0);
    assert_eq!(adaptive.rate(), Some(150.0), "no 429, no change");
    adaptive.answered(at(start, 5.0), true);
    let dropped = adaptive.rate().unwrap();
    assert!(
        (79.0..=81.0).contains(&dropped),
        "0.8 x the 100/s achieved: {dropped}"
    );
    // The other 429s of the same burst do not drop it again.
    adaptive.answered(at(start, 5.2), true);
    adaptive.answered(at(start, 5.9), true);
    assert_eq!(adaptive.rate(), Some(dropped));
    assert_eq!(adaptive.drops(), 1);
    // Most of the way back after 1.5 s (the curve is steep at first).
    steady(&mut adaptive, start, 5.0, 6.5, 80.0);
    let climbing = adaptive.rate().unwrap();
    assert!((88.0..=96.0).contains(&climbing), "{climbing}");
    // At the plateau, 0.97 x the rate of the 429, about 4 s after it.
    steady(&mut adaptive, start, 6.5, 9.0, 95.0);
    let plateau = adaptive.rate().unwrap();
    assert!((96.0..=98.0).contains(&plateau), "{plateau}");
    // The limit is not known yet: the probe above it comes soon.
    steady(&mut adaptive, start, 9.0, 11.5, 101.0);
    let probing = adaptive.rate().unwrap();
    assert!((100.5..110.0).contains(&probing), "{probing}");
    // A second 429 near the first: the limit is known, the drop is
    // smaller (0.9) and the plateau lasts.
    adaptive.answered(at(start, 11.5), true);
    assert_eq!(adaptive.drops(), 2);
    let known = adaptive.rate().unwrap();
    assert!((89.0..=92.0).contains(&known), "0.9 x 101: {known}");
    for until in [31.0, 38.0] {
        steady(&mut adaptive, start, until - 7.0, until, 97.0);
        let flat = adaptive.rate().unwrap();
        assert!((97.0..=99.5).contains(&flat), "at {until} s: {flat}");
    }
    // Probing above it later, but never above the ceiling.
    steady(&mut adaptive, start, 38.0, 100.0, 100.0);
    assert_eq!(adaptive.rate(), Some(150.0));
    // A later 429 is a new burst.
    adaptive.answered(at(start, 100.0), true);
    assert_eq!(adaptive.drops(), 3);
}

#[test]
fn auto_doubles_each_second_until_the_first_429_and_respects_max_rate() {
    let start = Instant::now();
    let mut adaptive = Adaptive::new(Start::Auto { max: None }, start);
    assert_eq!(adaptive.rate(), Some(AUTO_START));
    let mut t = 0.0;
    let mut rates = Vec::new();
    for second in 1..=4 {
        // Answers at the rate allowed.
        let rate = adaptive.rate().unwrap();
        steady(&mut adaptive, start, t, f64::from(second), rate);
        t = f64::from(second);
        adaptive.answered(at(start, t), false);
        rates.push(adaptive.rate().unwrap());
    }
    assert_eq!(rates, [10.0, 20.0, 40.0, 80.0]);
    adaptive.answered(at(start, 4.01), true);
    let dropped = adaptive.rate().unwrap();
    assert!(dropped <= 80.0 * 0.8 + 0.5, "{dropped}");
    // After the first 429, no more doubling: the curve.
    steady(&mut adaptive, start, 4.01, 6.0, dropped);
    assert!(adaptive.rate().unwrap() < 80.0, "{:?}", adaptive.rate());

    let mut capped = Adaptive::new(Start::Auto { max: Some(12.0) }, start);
    steady(&mut capped, start, 0.0, 5.0, 12.0);
    assert_eq!(capped.rate(), Some(12.0));
    let mut slow = Adaptive::new(Start::Auto { max: Some(2.0) }, start);
    assert_eq!(slow.rate(), Some(2.0), "--max-rate below the start");
    slow.answered(at(start, 3.0), false);
    assert_eq!(slow.rate(), Some(2.0));
}

#[test]
fn no_limit_until_a_429_then_the_rate_achieved_is_the_base() {
    let start = Instant::now();
    let mut adaptive = Adaptive::new(Start::Unlimited, start);
    steady(&mut adaptive, start, 0.0, 2.0, 400.0);
    assert_eq!(adaptive.rate(), None);
    adaptive.answered(at(start, 2.0), true);
    let dropped = adaptive.rate().unwrap();
    assert!((310.0..=330.0).contains(&dropped), "0.8 x 400: {dropped}");
    // A 429 on the very first answer: the base is what was achieved.
    let mut first = Adaptive::new(Start::Unlimited, start);
    first.answered(at(start, 0.01), true);
    assert!(first.rate().unwrap() >= MIN_RATE);
}

#[test]
fn a_run_that_sends_less_stops_the_climb_without_losing_its_rate() {
    let start = Instant::now();
    let mut adaptive = Adaptive::new(Start::Ceiling(1000.0), start);
    steady(&mut adaptive, start, 0.0, 2.0, 100.0);
    adaptive.answered(at(start, 2.0), true);
    // The run only achieves 10/s from here (few rows left, say): the
    // rate does not climb towards 1000, and is not lowered either
    // (only a 429 lowers it, so the summary tells the rate reached).
    steady(&mut adaptive, start, 2.0, 60.0, 10.0);
    let rate = adaptive.rate().unwrap();
    assert!((80.0..=90.0).contains(&rate), "{rate}");
    let mut low = Adaptive::new(Start::Ceiling(1.0), start);
    for i in 0..20 {
        low.answered(at(start, f64::from(i) * 1.5), true);
    }
    assert!(low.rate().unwrap() >= MIN_RATE);
}

mod more {
    use super::*;

    #[test]
    fn a_429_in_the_first_milliseconds_of_an_unlimited_run_starts_a_slow_start() {
        let start = Instant::now();
        let mut adaptive = Adaptive::new(Start::Unlimited, start);
        // 12 answers in 2 ms, the last a 429: no bucket has closed.
        for i in 0..11 {
            adaptive.answered(start + Duration::from_micros(150 * i), false);
        }
        adaptive.answered(start + Duration::from_millis(2), true);
        let restart = adaptive.rate().unwrap();
        assert!((AUTO_START..=30.0).contains(&restart), "{restart}");
        // Then it doubles each second while the answers keep up.
        let mut t = 0.002;
        for _ in 0..4 {
            let rate = adaptive.rate().unwrap();
            let mut s = t;
            while s < t + 1.0 {
                adaptive.answered(start + Duration::from_secs_f64(s), false);
                s += 1.0 / rate;
            }
            t += 1.0;
            adaptive.answered(start + Duration::from_secs_f64(t), false);
        }
        assert!(
            adaptive.rate().unwrap() >= restart * 8.0,
            "{:?}",
            adaptive.rate()
        );
    }

    #[test]
    fn a_pause_is_not_measured_as_a_slow_rate() {
        let start = Instant::now();
        let mut adaptive = Adaptive::new(Start::Ceiling(300.0), start);
        let mut t = 0.0;
        while t < 2.0 {
            adaptive.answered(start + Duration::from_secs_f64(t), false);
            t += 0.005;
        }
        adaptive.answered(start + Duration::from_secs_f64(2.0), true);
        let dropped = adaptive.rate().unwrap();
        // The run is held for a second; one answer comes in the pause.
        adaptive.hold_until(
            start + Duration::from_secs_f64(2.0),
            start + Duration::from_secs_f64(3.0),
        );
        adaptive.answered(start + Duration::from_secs_f64(2.5), false);
        let mut t = 3.0;
        while t < 5.0 {
            adaptive.answered(start + Duration::from_secs_f64(t), false);
            t += 1.0 / dropped;
        }
        assert!(adaptive.rate().unwrap() >= dropped, "{:?}", adaptive.rate());
        // The drops counted are only the ones that lowered the rate.
        let mut floor = Adaptive::new(Start::Ceiling(0.5), start);
        floor.answered(start + Duration::from_secs(1), true);
        floor.answered(start + Duration::from_secs(3), true);
        assert_eq!(floor.drops(), 0, "at the floor, nothing is lowered");
    }
}
