//! The retry policy, the rate's checks and the pacer.

use super::*;

#[test]
fn backoff_doubles_up_to_the_cap_with_full_jitter() {
    let policy = RetryPolicy::default();
    let ceilings: Vec<f64> = (1..=9).map(|n| policy.ceiling(n).as_secs_f64()).collect();
    assert_eq!(ceilings, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]);
    assert_eq!(policy.ceiling(1000), policy.cap);
    for attempts in 1..=5 {
        match policy.decide(attempts, None) {
            Decision::RetryIn(wait) => assert!(wait <= policy.ceiling(attempts)),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn retry_after_is_obeyed_above_the_cap_up_to_max_wait() {
    let policy = RetryPolicy::default();
    assert_eq!(
        policy.decide(1, Some(Duration::from_secs(120))),
        Decision::RetryIn(Duration::from_secs(120))
    );
    let Decision::GiveUp(why) = policy.decide(1, Some(Duration::from_secs(301))) else {
        panic!("a wait over --max-wait fails the row");
    };
    assert!(why.contains("--max-wait 300 s"), "{why}");
    let Decision::GiveUp(why) = policy.decide(1, Some(Duration::MAX)) else {
        panic!("an absurd wait fails the row");
    };
    assert!(
        why.starts_with("the server asked to wait more than a year"),
        "{why}"
    );
    let Decision::GiveUp(why) = policy.decide(6, Some(Duration::from_secs(1))) else {
        panic!("the sixth attempt is the last of 1 + 5 retries");
    };
    assert_eq!(why, "gave up after 6 attempts");
    // "Retry at once" from a throttling server: the backoff instead.
    match policy.decide(3, Some(Duration::ZERO)) {
        Decision::RetryIn(wait) => assert!(wait <= policy.ceiling(3)),
        other => panic!("{other:?}"),
    }
    let none = RetryPolicy {
        max_retries: 0,
        ..RetryPolicy::default()
    };
    assert!(matches!(none.decide(1, None), Decision::GiveUp(_)));
}

#[test]
fn rates_are_checked_and_the_burst_is_explicit() {
    let one = NonZeroU32::MIN;
    assert_eq!(Rate::new(0.0, one).unwrap().per_second(), None);
    assert!(Rate::new(-1.0, one).is_err());
    assert!(Rate::new(f64::INFINITY, one).is_err());
    assert!(Rate::new(f64::NAN, one).is_err());
    let tiny = Rate::new(1e-18, one).unwrap_err();
    assert!(tiny.contains("between 0.001 and 1000000"), "{tiny}");
    assert!(Rate::new(0.001, one).is_ok());
    let three = Rate::new(10.0, NonZeroU32::new(3).unwrap()).unwrap();
    assert_eq!(three.capacity(), 2.0, "one request in reserve");
    assert_eq!(Rate::new(0.5, one).unwrap().capacity(), 1.0);
    assert!(Rate::auto(Some(0.0), one).is_err());
    let auto = Rate::auto(None, one).unwrap();
    assert!(auto.is_auto() && auto.per_second().is_none());
}

#[tokio::test]
async fn the_pacer_holds_the_burst_then_paces_and_pauses() {
    let mut pacer = Pacer::new(&Rate::new(10.0, NonZeroU32::new(3).unwrap()).unwrap());
    let now = Instant::now();
    assert!(pacer.try_admit(now).is_ok());
    assert!(pacer.try_admit(now).is_ok());
    let again = pacer.try_admit(now).unwrap_err();
    assert!(again > now && again <= now + Duration::from_millis(110));
    let mut unlimited = Pacer::new(&Rate::unlimited());
    assert!((0..1000).all(|_| unlimited.try_admit(now).is_ok()));
    assert!(unlimited.pause(now, now + Duration::from_secs(2)));
    assert!(!unlimited.pause(now, now + Duration::from_secs(1)));
    assert_eq!(unlimited.try_admit(now), Err(now + Duration::from_secs(2)));
    assert!(unlimited.try_admit(now + Duration::from_secs(2)).is_ok());
}

#[tokio::test]
async fn a_shared_limit_caps_the_part_and_alone_the_run_adapts_on_its_own() {
    let mut pacer = Pacer::new(&Rate::new(150.0, NonZeroU32::new(5).unwrap()).unwrap());
    let now = Instant::now();
    assert_eq!(
        pacer.answered(now, true, &mut Mark::default()),
        Some(Slowdown::Rate { shared: false })
    );
    assert_eq!(pacer.rate(), (Some(120.0), 1));
    // Alone, a limit met by itself changes nothing: its own adaptation.
    pacer.share(
        now,
        Some(Split {
            limit: 100.0,
            runs: 1,
        }),
    );
    assert_eq!(pacer.rate(), (Some(120.0), 1));
    // Two runs: at most half, starting just below it; drops still counted.
    pacer.share(
        now,
        Some(Split {
            limit: 100.0,
            runs: 2,
        }),
    );
    let (rate, drops) = pacer.rate();
    assert!((44.0..=45.0).contains(&rate.unwrap()), "{rate:?}");
    assert_eq!(drops, 1);
    // Alone again: just below the whole limit, and no cap.
    pacer.share(
        now,
        Some(Split {
            limit: 100.0,
            runs: 1,
        }),
    );
    let rate = pacer.rate().0.unwrap();
    assert!((89.0..=90.0).contains(&rate), "{rate}");
    pacer.share(now, None);
    assert_eq!(pacer.rate().0, Some(rate));
}
