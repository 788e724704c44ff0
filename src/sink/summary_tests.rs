//! The summary's figures and its text.

use super::*;

#[test]
fn rows_a_second_are_said_only_over_half_a_second_or_more() {
    let summary = |millis| Summary {
        elapsed: Some(Duration::from_millis(millis)),
        sent: 6,
        ..Summary::default()
    };
    assert_eq!(summary(10).rows_per_second(), None, "6 rows in 0.01 s");
    assert_eq!(summary(2000).rows_per_second(), Some(3.0));
    assert!(!summary(10).render("r.csv", None).contains("rows sent/s"));
}

#[test]
fn the_time_spent_reading_the_account_is_in_the_elapsed_time_and_said_apart() {
    let mut summary = Summary {
        elapsed: Some(Duration::from_millis(500)),
        ..Summary::default()
    };
    summary.add_reads(5, 4, 2, Duration::from_secs(10));
    let text = summary.render("plan.csv", None);
    assert!(
        text.contains(
            "retries: 4, throttled (429): 2, elapsed: 10.5 s (10.0 s reading the account's list)"
        ),
        "{text}"
    );
    assert_eq!(summary.figures().requests, 5);
}

/// What a run keeps as the account's limit: nothing when nothing went
/// through (a run that met only 429s once kept 120/s), never less than
/// half the most it got through in a second (users throttled on their own
/// account at the end of a file once left 0.95/s for the next run), and
/// with `--rate auto` also when no 429 lowered the rate.
#[test]
fn the_limit_learned_is_bounded_by_what_went_through() {
    let summary = |rate: f64, drops, auto, most_ok, throttled| Summary {
        rate: Some(RateReport {
            rate: Some(rate),
            drops,
            auto,
            most_ok,
        }),
        throttled,
        ..Summary::default()
    };
    assert_eq!(summary(95.0, 3, false, 104, 9).learned_limit(), Some(95.0));
    assert_eq!(summary(120.0, 3, false, 0, 40).learned_limit(), None);
    assert_eq!(
        summary(0.95, 28, false, 100, 90).learned_limit(),
        Some(50.0)
    );
    assert_eq!(summary(96.0, 0, true, 100, 6).learned_limit(), Some(96.0));
    assert_eq!(summary(96.0, 0, false, 100, 6).learned_limit(), None);
}
