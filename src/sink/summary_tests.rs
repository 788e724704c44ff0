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
