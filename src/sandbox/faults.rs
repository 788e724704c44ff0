//! The failures the sandbox can put on: a fixed quota over all requests
//! (governor's rate limiter, the server side of a rate limit),
//! latency, 5xx answers, dropped connections and answers held too long.
//! Every random choice is a pure function of the seed and the request's
//! arrival number, so a run with the same `--seed` fails the same way.
//! Besides, the list's own faults: fields left out, a count that lies, and
//! an account that changes while its pages are read.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use super::Faults;

/// What the fault layer decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Answer the throttling status (429, or `rate_status`) with
    /// `Retry-After` of this many seconds (none with `no_retry_after`), and
    /// `retry-after-ms` of so many milliseconds when `retry_after_ms` is on.
    Throttle(Option<u64>, u16, Option<u64>),
    /// Answer 429 without `Retry-After`: the quota window is spent.
    QuotaSpent,
    /// Close the connection without an answer.
    Drop,
    /// Answer this 5xx status without touching any user.
    Fail(u16),
    /// Serve it, then hold the answer this long (zero: answer at once).
    Serve(Duration),
}

pub(crate) struct FaultPlan {
    faults: Faults,
    seed: u64,
    quota: Option<Limiter>,
    /// `window`: when the sandbox started, and the window counted now
    /// (its number and the requests it admitted).
    started: std::time::Instant,
    window: Mutex<(u64, u64)>,
    reads: Mutex<ListReads>,
}

/// Which reads of the list see the account change (`list_churn`).
#[derive(Debug, Default)]
struct ListReads {
    /// Pages at offset 0 served so far: each starts a read.
    started: u64,
    /// Reads that went past their first page and saw the account change.
    churned: u64,
    /// The read that saw it last.
    last_churned: Option<u64>,
}

impl FaultPlan {
    pub(crate) fn new(faults: Faults, seed: u64) -> FaultPlan {
        let quota = faults
            .rate
            .and_then(|(rate, burst)| limiter(rate, burst, DefaultClock::default()));
        FaultPlan {
            faults,
            seed,
            quota,
            started: std::time::Instant::now(),
            window: Mutex::new((0, 0)),
            reads: Mutex::new(ListReads::default()),
        }
    }

    /// Whether the page of the list at `offset` answers as if the account
    /// had changed since its read began (`list_churn`): each page at offset 0
    /// starts a read; of the reads that ask for more pages, the first
    /// `list_churn` see every page after the first shifted by one.
    pub(crate) fn list_churns(&self, offset: u64) -> bool {
        let mut reads = self.reads.lock().unwrap_or_else(|e| e.into_inner());
        if offset == 0 {
            reads.started += 1;
            return false;
        }
        let read = reads.started;
        if reads.last_churned == Some(read) {
            return true;
        }
        if reads.churned < self.faults.list_churn {
            reads.churned += 1;
            reads.last_churned = Some(read);
            return true;
        }
        false
    }

    /// The fields list answers leave out.
    pub(crate) fn list_omit(&self) -> &[String] {
        &self.faults.list_omit
    }

    /// The count list answers give instead of the true one.
    pub(crate) fn list_count(&self) -> Option<u64> {
        self.faults.list_count
    }

    /// The delay before any answer: `latency_ms` plus up to `jitter_ms`.
    pub(crate) fn latency(&self, request: u64) -> Duration {
        let jitter = if self.faults.jitter_ms > 0 {
            (self.unit(request, Salt::Jitter) * (self.faults.jitter_ms + 1) as f64) as u64
        } else {
            0
        };
        Duration::from_millis(self.faults.latency_ms + jitter.min(self.faults.jitter_ms))
    }

    /// Decides the fate of request number `request`, in the order a real
    /// front end would: the rate limit first, then the network, then the server.
    /// `user`: the user the request is about (its path's), if any.
    pub(crate) fn verdict(&self, request: u64, user: Option<u64>) -> Verdict {
        if self
            .faults
            .throttle_every
            .is_some_and(|n| user.is_some_and(|id| id % n == 0))
        {
            return Verdict::Throttle(Some(1), 429, None);
        }
        if self.faults.throttle_share > 0.0
            && self.unit(request, Salt::Throttle) < self.faults.throttle_share
        {
            return Verdict::Throttle(Some(1), 429, None);
        }
        if let Some((most, seconds)) = self.faults.window {
            let number = (self.started.elapsed().as_secs_f64() / seconds) as u64;
            let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
            if window.0 != number {
                *window = (number, 0);
            }
            if window.1 >= most {
                return Verdict::QuotaSpent;
            }
            window.1 += 1;
        }
        if let Some(quota) = &self.quota
            && let Err(wait) = take(quota)
        {
            let status = self.faults.rate_status.unwrap_or(429);
            let ms = (self.faults.retry_after_ms).then(|| wait.as_millis().max(1) as u64);
            let seconds = (!self.faults.no_retry_after).then(|| retry_after_seconds(wait));
            return Verdict::Throttle(seconds, status, ms);
        }
        if self.unit(request, Salt::Drop) < self.faults.drop_rate {
            return Verdict::Drop;
        }
        if self.unit(request, Salt::Error) < self.faults.error_rate {
            const STATUSES: [u16; 3] = [500, 502, 503];
            let pick = (self.unit(request, Salt::ErrorStatus) * 3.0) as usize;
            return Verdict::Fail(STATUSES[pick.min(2)]);
        }
        if self.unit(request, Salt::Slow) < self.faults.slow_rate {
            return Verdict::Serve(Duration::from_millis(self.faults.slow_ms));
        }
        Verdict::Serve(Duration::ZERO)
    }

    /// A number in [0, 1) drawn for one purpose of one request.
    fn unit(&self, request: u64, salt: Salt) -> f64 {
        let mixed =
            splitmix64(self.seed ^ splitmix64(request.wrapping_mul(8).wrapping_add(salt as u64)));
        (mixed >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone, Copy)]
enum Salt {
    Jitter = 1,
    Drop = 2,
    Error = 3,
    ErrorStatus = 4,
    Slow = 5,
    Throttle = 6,
}

/// SplitMix64's finaliser: a good scramble of a counter, with no state to lock.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `Retry-After` is whole seconds; a client told 0 would retry at once and
/// be throttled again, so the least is 1.
fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// A fixed quota on `C`'s clock.
type Limiter<C = DefaultClock> =
    RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// `rate` requests a second, at most `burst` at once (governor's GCRA,
/// which is a token bucket's arithmetic without its lock); `None` for a
/// rate no quota can hold (zero, or one request in less than a
/// nanosecond).
fn limiter<C: Clock>(rate: f64, burst: u32, clock: C) -> Option<Limiter<C>> {
    let period = Duration::try_from_secs_f64(1.0 / rate).ok()?;
    let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::new(burst.max(1))?);
    Some(RateLimiter::direct_with_clock(quota, clock))
}

/// Admits one request, or says how long until the quota admits the next.
fn take<C: Clock>(limiter: &Limiter<C>) -> Result<(), Duration> {
    limiter
        .check()
        .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_allows_a_burst_then_the_rate() {
        let clock = governor::clock::FakeRelativeClock::default();
        let quota = limiter(2.0, 3, clock.clone()).unwrap();
        for _ in 0..3 {
            assert!(take(&quota).is_ok());
        }
        let wait = take(&quota).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        clock.advance(Duration::from_millis(500));
        assert!(take(&quota).is_ok());
        assert!(take(&quota).is_err());
        // A long pause saves up no more than the burst.
        clock.advance(Duration::from_secs(60));
        for _ in 0..3 {
            assert!(take(&quota).is_ok());
        }
        assert!(take(&quota).is_err());
        assert!(limiter(0.0, 3, clock.clone()).is_none());
        assert!(limiter(0.5, 0, clock).is_some(), "a burst of 0 is 1");
    }

    #[test]
    fn retry_after_is_whole_seconds_and_at_least_one() {
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1000)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1001)), 2);
    }

    #[test]
    fn shares_are_roughly_right_and_reproducible() {
        let faults = Faults {
            error_rate: 0.2,
            drop_rate: 0.1,
            ..Faults::default()
        };
        let plan = FaultPlan::new(faults.clone(), 42);
        let verdicts: Vec<_> = (0..10_000).map(|n| plan.verdict(n, None)).collect();
        let drops = verdicts.iter().filter(|v| **v == Verdict::Drop).count();
        let fails = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Fail(_)))
            .count();
        assert!((800..1200).contains(&drops), "{drops}");
        // 20% of the 90% not dropped.
        assert!((1550..2050).contains(&fails), "{fails}");
        for status in [500, 502, 503] {
            assert!(verdicts.contains(&Verdict::Fail(status)));
        }
        let again = FaultPlan::new(faults.clone(), 42);
        assert!((0..10_000).all(|n| again.verdict(n, None) == verdicts[n as usize]));
        let other = FaultPlan::new(faults, 43);
        assert!((0..10_000).any(|n| other.verdict(n, None) != verdicts[n as usize]));
    }

    #[test]
    fn all_or_nothing() {
        let always = FaultPlan::new(
            Faults {
                error_rate: 1.0,
                ..Faults::default()
            },
            1,
        );
        let never = FaultPlan::new(Faults::default(), 1);
        for n in 0..1000 {
            assert!(matches!(always.verdict(n, None), Verdict::Fail(_)));
            assert_eq!(never.verdict(n, None), Verdict::Serve(Duration::ZERO));
            assert_eq!(never.latency(n), Duration::ZERO);
        }
    }

    #[test]
    fn the_first_reads_past_page_one_churn_and_later_ones_do_not() {
        let plan = FaultPlan::new(
            Faults {
                list_churn: 2,
                ..Faults::default()
            },
            1,
        );
        // A read of one page only (a count) does not use up a churn.
        assert!(!plan.list_churns(0));
        // Two reads of three pages: every page after the first shifts.
        for _ in 0..2 {
            assert!(!plan.list_churns(0));
            assert!(plan.list_churns(500));
            assert!(plan.list_churns(1000));
        }
        assert!(!plan.list_churns(0));
        assert!(!plan.list_churns(500));
        let never = FaultPlan::new(Faults::default(), 1);
        assert!(!never.list_churns(0) && !never.list_churns(500));
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let plan = FaultPlan::new(
            Faults {
                latency_ms: 10,
                jitter_ms: 5,
                ..Faults::default()
            },
            1,
        );
        let delays: Vec<_> = (0..1000).map(|n| plan.latency(n).as_millis()).collect();
        assert!(delays.iter().all(|ms| (10..=15).contains(ms)));
        assert!(delays.contains(&10) && delays.contains(&15));
    }
}
