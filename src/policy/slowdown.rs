//! Which "slow down" is about the run's rate. A 429 (or a 502-504 with
//! `Retry-After`) may say the run sends too fast for the account's limit,
//! or something else: a server that throttles a small share of requests
//! whatever the rate (noise), or throttles some users only. Only the first
//! kind should lower the whole run's rate and pause every request; the
//! others are the row's own business, retried on its backoff while the
//! rest goes on.
//!
//! The rule, from how the two look from the client: sending above a limit
//! makes the share of throttled answers grow with the excess (a token
//! bucket answers `(sent - limit) / sent` of them 429: a third at 150/s
//! against 100/s), and quickly, as every request meets the empty bucket;
//! throttles about something else keep a small share whatever the rate
//! (2% for a noisy server; one user in 50). So a throttle is the rate's
//! when, among the recent answers (the last [`WINDOW`], and at least the
//! last [`AT_LEAST`] answers), there are fewer than [`TOO_FEW`] answers to
//! tell, or more than [`SHARE`] of them throttled; else it is the row's.
//! Figures (`policy/simulated.rs`, the README's benchmark table): against
//! 2% random 429s at `--rate 100`, counting each as the rate's held the run
//! at 28 rows/s; with this rule it runs near 100. Above a real limit the
//! share passes 5% within a fraction of a second, so the run still drops
//! its rate on the same burst of 429s (a few more rows wait on their own).
//! A server throttling more than 5% of requests for reasons of its own is
//! taken for a limit: the run slows down, as before this rule.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The span of answers the share is taken over...
pub(crate) const WINDOW: Duration = Duration::from_secs(2);
/// ...and at least this many of the last answers, however old (at a low
/// rate two seconds hold too few), up to [`OLDEST`].
pub(crate) const AT_LEAST: usize = 100;
const OLDEST: Duration = Duration::from_secs(30);
/// Fewer answers than this say nothing: a throttle is the rate's.
pub(crate) const TOO_FEW: usize = 50;
/// Above this share of throttled answers, a throttle is the rate's.
pub(crate) const SHARE: f64 = 0.05;
/// [`CLUSTER`] throttled among the last [`LAST`] answers are the rate's
/// whatever the share: the first 429s of a bucket gone empty come
/// together (a third of them at 150/s against 100/s), where 2% noise
/// puts three among ten once in a thousand.
const LAST: usize = 10;
const CLUSTER: usize = 3;
/// Answers kept at most (at high rates the window is shorter).
const KEPT: usize = 8192;

/// What a throttling answer is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slowdown {
    /// The run's rate: the rate drops and the whole run pauses. `shared`:
    /// other rows were throttled since this one's last throttle, and none
    /// went through (a quota spent): the row waits with the run, and the
    /// attempt is not one of its retries. Its first throttle counts. (A row
    /// throttled again with nothing else answered since, alone, as the
    /// last rows of a run may be, is the row's own: it ends after its
    /// retries.)
    Rate { shared: bool },
    /// This request only: the row waits on its own backoff.
    Row,
}

/// A row's memory of its last throttle: how many answers had come through
/// for the run, and how many were throttled, then; and whether it is
/// throttled on its own account. A row throttled again after others came
/// through is (a user the API throttles), whatever the share, and stays
/// so: its throttles no longer count as the run's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Mark {
    last: Option<(u64, u64)>,
    own: bool,
}

/// The recent answers: when, and whether throttled.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recent {
    answers: Window,
    /// Answers through (not throttled), and throttled, since the start.
    through: u64,
    throttles: u64,
}

impl Recent {
    /// One more answer at `now` to a row marked `mark`; for a throttling
    /// one, what it is about.
    pub(crate) fn answered(
        &mut self,
        now: Instant,
        throttled: bool,
        mark: &mut Mark,
    ) -> Option<Slowdown> {
        if !throttled {
            self.through += 1;
            self.answers.push(now, false);
            return None;
        }
        let last = mark.last;
        mark.own |= last.is_some_and(|(through, _)| self.through > through);
        if mark.own {
            // Throttled again while others went through: its own, and not
            // counted (it says nothing of the run's rate).
            mark.last = Some((self.through, self.throttles));
            return Some(Slowdown::Row);
        }
        // Throttled again with nothing else answered since: alone (the last
        // rows of a run), it says nothing of the rate either.
        let alone = last.is_some_and(|(_, throttles)| throttles == self.throttles);
        self.throttles += 1;
        mark.last = Some((self.through, self.throttles));
        if alone {
            return Some(Slowdown::Row);
        }
        self.answers.push(now, true);
        let answers = self.answers.len();
        let share = self.answers.share();
        let lately = self.answers.last(LAST);
        Some(if answers < TOO_FEW || share > SHARE || lately >= CLUSTER {
            Slowdown::Rate {
                shared: last.is_some(),
            }
        } else {
            Slowdown::Row
        })
    }
}

/// The recent answers (the last [`WINDOW`], and at least the last
/// [`AT_LEAST`] however old, up to [`OLDEST`]), each marked or not (a
/// throttle, a server error): what a share of them is taken over.
#[derive(Debug, Clone, Default)]
pub(super) struct Window {
    answers: VecDeque<(Instant, bool)>,
    marked: usize,
}

impl Window {
    pub(super) fn push(&mut self, now: Instant, marked: bool) {
        self.answers.push_back((now, marked));
        self.marked += usize::from(marked);
        while let Some(&(at, was)) = self.answers.front() {
            let age = now.saturating_duration_since(at);
            let old = age > OLDEST || (age > WINDOW && self.answers.len() > AT_LEAST);
            if !old && self.answers.len() <= KEPT {
                break;
            }
            self.answers.pop_front();
            self.marked -= usize::from(was);
        }
    }

    pub(super) fn len(&self) -> usize {
        self.answers.len()
    }

    /// The share of them marked (0 when there are none).
    pub(super) fn share(&self) -> f64 {
        self.marked as f64 / self.answers.len().max(1) as f64
    }

    /// How many of the last `n` are marked.
    pub(super) fn last(&self, n: usize) -> usize {
        let last = self.answers.iter().rev().take(n);
        last.filter(|(_, marked)| *marked).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_share_is_the_rows_and_a_growing_one_the_rates() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut recent = Recent::default();
        let mut answered = |at, throttled| recent.answered(at, throttled, &mut Mark::default());
        // Too few answers to tell: the rate's.
        assert_eq!(
            answered(at(0), true),
            Some(Slowdown::Rate { shared: false })
        );
        for ms in 1..200 {
            assert_eq!(answered(at(ms * 10), false), None);
        }
        // One in 200 throttled over the last two seconds: the row's.
        assert_eq!(answered(at(2000), true), Some(Slowdown::Row));
        // Every request meets the empty bucket: within ten, the rate's.
        let mut kinds = Vec::new();
        for ms in 0..10 {
            kinds.push(answered(at(2001 + ms), true));
        }
        assert_eq!(kinds.first(), Some(&Some(Slowdown::Row)));
        assert_eq!(kinds.last(), Some(&Some(Slowdown::Rate { shared: false })));
        // Two seconds of successes later, one 429 is the row's again.
        for ms in 0..200 {
            answered(at(2100 + ms * 10), false);
        }
        assert_eq!(answered(at(4200), true), Some(Slowdown::Row));
    }

    #[test]
    fn a_row_throttled_again_after_others_went_through_is_throttled_alone() {
        let start = Instant::now();
        let mut recent = Recent::default();
        let (mut user, mut other, mut third) = (Mark::default(), Mark::default(), Mark::default());
        let rate = |shared| Some(Slowdown::Rate { shared });
        // Too few answers to tell: the first 429 is the rate's...
        assert_eq!(recent.answered(start, true, &mut user), rate(false));
        // ...a second with nothing else answered between, alone: its own.
        assert_eq!(recent.answered(start, true, &mut user), Some(Slowdown::Row));
        // Others throttled meanwhile, none through (a quota spent): shared.
        assert_eq!(recent.answered(start, true, &mut other), rate(false));
        assert_eq!(recent.answered(start, true, &mut user), rate(true));
        recent.answered(start, false, &mut third);
        // Others went through since: this row's own.
        assert_eq!(recent.answered(start, true, &mut user), Some(Slowdown::Row));
        assert_eq!(
            recent.answered(start, true, &mut other),
            Some(Slowdown::Row)
        );
        assert_eq!(recent.answered(start, true, &mut third), rate(false));
    }

    #[test]
    fn at_a_low_rate_the_last_hundred_answers_count() {
        let start = Instant::now();
        let mut recent = Recent::default();
        let mut answered = |at, throttled| recent.answered(at, throttled, &mut Mark::default());
        // 5 answers a second for 20 s: two seconds hold only ten.
        for i in 0..100 {
            answered(start + Duration::from_millis(200 * i), false);
        }
        let late = start + Duration::from_secs(20);
        assert_eq!(answered(late, true), Some(Slowdown::Row));
        // After 30 s of silence nothing is left to tell by.
        let later = late + Duration::from_secs(31);
        assert_eq!(
            answered(later, true),
            Some(Slowdown::Rate { shared: false })
        );
    }
}
