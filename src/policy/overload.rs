//! Server errors that rise with the rate. A server that fails under load
//! serves what it can and answers 500-504 without `Retry-After` to the
//! rest: the share of errors grows with the excess (two thirds at 150/s
//! against 50/s), and a rate below what it served meets none. A server
//! that fails for reasons of its own (a broken backend, one bad node) keeps
//! the same share whatever the rate. So a 5xx without `Retry-After` (with
//! one it is a throttle, `slowdown`) lowers the rate, as a 429 does, when
//! more than [`SHARE`] of the recent answers (at least [`TOO_FEW`]) are
//! such errors. The drop goes to 0.8 of what the server let through over
//! the last second when that was measured: an overloaded server answers
//! that without errors. Errors still above [`SHARE`] over the
//! [`TOO_FEW`] answers after such a drop are the server's own, and lower
//! the rate no more until their share is back under [`SHARE`]. (After a
//! drop that could not measure, at a run's first half second, they may
//! lower it again.) Either way the row is retried on its own backoff, as
//! any 5xx is; nothing pauses the run (the server asked for no wait).
//! Figures: the README's "When the API throttles".

use tokio::time::Instant;

use super::slowdown::Window;
/// Fewer answers than this say nothing.
pub(crate) const TOO_FEW: usize = 50;
/// Above this share of 5xx among the recent answers, they may be the rate's.
pub(crate) const SHARE: f64 = 0.1;

/// The recent answers, whether each was a server error; and the last drop
/// they caused, with the answers since.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overload {
    /// The recent answers, as for 429s (`slowdown`); marked: an error.
    answers: Window,
    /// The share that caused the last drop; answers and errors since.
    dropped: Option<Dropped>,
    /// Errors that did not fall with the rate: the server's own.
    own: bool,
}

#[derive(Debug, Clone, Copy)]
struct Dropped {
    measured: bool,
    answers: usize,
    errors: usize,
}

impl Overload {
    /// One more answer at `now` (`error`: a 5xx without `Retry-After`);
    /// true when it may be about the run's rate, and the rate should drop
    /// (the caller says when it did: [`Overload::lowered`]).
    pub(crate) fn answered(&mut self, now: Instant, error: bool) -> bool {
        self.answers.push(now, error);
        if let Some(dropped) = &mut self.dropped {
            dropped.answers += 1;
            dropped.errors += usize::from(error);
            if dropped.answers == TOO_FEW {
                let since = dropped.errors as f64 / dropped.answers as f64;
                if since <= SHARE || dropped.measured {
                    // The drop ended them, or they are the server's own.
                    self.own = since > SHARE;
                    self.dropped = None;
                }
            }
        }
        let share = self.answers.share();
        let few = self.answers.len() < TOO_FEW || share <= SHARE;
        if !few && !error {
            return false;
        }
        if few {
            // Back to few errors: whatever comes next starts afresh.
            self.own &= self.answers.len() < TOO_FEW;
            return false;
        }
        // The last drop's effect is not measured yet.
        let waiting = self
            .dropped
            .is_some_and(|dropped| dropped.answers < TOO_FEW);
        !self.own && !waiting
    }

    /// The rate dropped for these errors; `measured`: to 0.8 of what the
    /// server let through, which an overloaded server serves.
    pub(crate) fn lowered(&mut self, measured: bool) {
        self.dropped = Some(Dropped {
            measured,
            answers: 0,
            errors: 0,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A server that serves `capacity` a second and fails the rest, or
    /// (`capacity` 0) fails every `noise`th answer, answered at `rate` for
    /// `seconds` from `from`. The rate at the end, and the drops.
    fn run(
        overload: &mut Overload,
        start: Instant,
        (from, seconds): (f64, f64),
        mut rate: f64,
        (capacity, noise): (f64, u64),
    ) -> (f64, usize) {
        let (mut t, mut credit, mut i, mut drops) = (from, 1.0, 0u64, 0);
        while t < from + seconds {
            credit = (credit + capacity / rate).min(2.0);
            let error = if capacity > 0.0 {
                let served = credit >= 1.0;
                credit -= f64::from(u8::from(served));
                !served
            } else {
                noise > 0 && i % noise == 0
            };
            if overload.answered(start + Duration::from_secs_f64(t), error) {
                // As the adaptive rate drops: to 0.8 of what went through.
                let through = match (capacity, noise) {
                    (0.0, 0) => rate,
                    (0.0, noise) => rate * (1.0 - 1.0 / noise as f64),
                    (capacity, _) => rate.min(capacity),
                };
                drops += 1;
                overload.lowered(true);
                rate = 0.8 * through;
            }
            t += 1.0 / rate;
            i += 1;
        }
        (rate, drops)
    }

    #[test]
    fn errors_that_fall_with_the_rate_lower_it_until_they_are_gone() {
        let start = Instant::now();
        let mut overload = Overload::default();
        // 150/s against a server that serves 50: below it, in one drop.
        let (rate, drops) = run(&mut overload, start, (0.0, 20.0), 150.0, (50.0, 0));
        assert_eq!((rate, drops), (40.0, 1));
    }

    #[test]
    fn errors_that_stay_whatever_the_rate_are_the_servers_own() {
        let start = Instant::now();
        let mut overload = Overload::default();
        // A fifth of answers fail whatever the rate: one drop, then none.
        let (rate, drops) = run(&mut overload, start, (0.0, 20.0), 100.0, (0.0, 5));
        assert_eq!((rate, drops), (64.0, 1));
        // Gone for a while, then back: the first of them count again.
        assert_eq!(run(&mut overload, start, (20.0, 3.0), 80.0, (0.0, 0)).1, 0);
        assert_eq!(run(&mut overload, start, (23.0, 5.0), 80.0, (0.0, 2)).1, 1);
    }

    #[test]
    fn after_a_drop_that_could_not_measure_errors_may_lower_it_again() {
        let start = Instant::now();
        let at = |i: u64| start + Duration::from_millis(10 * i);
        let mut overload = Overload::default();
        let candidates: Vec<u64> = (0..300)
            .filter(|&i| {
                let candidate = overload.answered(at(i), i % 2 == 0);
                if candidate {
                    overload.lowered(false);
                }
                candidate
            })
            .collect();
        // At the 50th answer, then each 50 answers after (the errors never
        // fell, but no drop measured what went through).
        assert_eq!(candidates, [50, 100, 150, 200, 250]);
    }

    #[test]
    fn a_few_answers_or_a_small_share_say_nothing() {
        let start = Instant::now();
        let mut overload = Overload::default();
        assert_eq!(run(&mut overload, start, (0.0, 1.0), 40.0, (0.0, 1)).1, 0);
        assert_eq!(run(&mut overload, start, (1.0, 1.0), 40.0, (0.0, 1)).1, 1);
        let mut overload = Overload::default();
        assert_eq!(
            run(&mut overload, start, (0.0, 30.0), 100.0, (0.0, 20)).1,
            0
        );
    }
}
