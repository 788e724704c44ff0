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
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Mark, Pacer, Rate, Reckoning, RetryPolicy, Shared, Slowdown, Told};

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
    let runs = [Run {
        rate: rate.clone(),
        rows,
        from: 0.0,
    }];
    simulate_runs(&runs, server, latency, false).remove(0)
}

/// One run of several on one server: its rate, its rows, and when it
/// starts (seconds).
pub(crate) struct Run {
    pub rate: Rate,
    pub rows: u64,
    pub from: f64,
}

/// `runs` against one `server` at once; `share`: they split the account's
/// limit as runs of one account do (`policy/share.rs`, a beat every half
/// second, in memory instead of the state folder).
pub(crate) fn simulate_runs(
    runs: &[Run],
    server: &mut Server,
    latency: Duration,
    share: bool,
) -> Vec<Outcome> {
    let start = Instant::now();
    let mut clients: Vec<Client> = (runs.iter().enumerate())
        .map(|(i, run)| Client::new(run, i as u64, start, share))
        .collect();
    let mut next_beat = start;
    while let Some(client) = (clients.iter_mut())
        .filter(|client| !client.finished)
        .min_by_key(|client| client.now)
    {
        if share && client.now >= next_beat {
            beat(&mut clients, next_beat, start);
            next_beat += Duration::from_millis(500);
            continue;
        }
        client.step(server, start, latency);
    }
    clients.into_iter().map(|client| client.outcome).collect()
}

/// The coordinators' beat: each run alive tells the others, then hears them.
fn beat(clients: &mut [Client], now: Instant, start: Instant) {
    let ms = now.saturating_duration_since(start).as_millis() as u64 + 1;
    let alive = |client: &Client| !client.finished && client.now >= client.from;
    let told: Vec<Option<Told>> = (clients.iter_mut())
        .map(|client| {
            let shared = client.shared.clone()?;
            alive(client).then(|| client.reckoning.tell(ms, &shared))
        })
        .collect();
    for (i, client) in clients.iter_mut().enumerate() {
        let (Some(shared), Some(_)) = (client.shared.clone(), told[i]) else {
            continue;
        };
        let others: Vec<Told> = (told.iter().enumerate())
            .filter(|(j, _)| *j != i)
            .filter_map(|(_, told)| *told)
            .collect();
        client.reckoning.heard(ms, &others, &shared);
    }
}

struct Client {
    pacer: Pacer,
    rows: u64,
    /// Its rows' numbers start after this (runs have users of their own).
    first: u64,
    from: Instant,
    now: Instant,
    next_row: u64,
    finished: bool,
    seed: u64,
    /// Rows waiting for a retry: when, which, after how many attempts.
    waiting: BinaryHeap<Reverse<(Instant, u64, u32, Mark)>>,
    outcome: Outcome,
    /// Sharing: what the dispatcher tells its coordinator, and the latter.
    shared: Option<Arc<Shared>>,
    reckoning: Reckoning,
    seen: u64,
    told_at: Instant,
    ok: VecDeque<Instant>,
}

impl Client {
    fn new(run: &Run, index: u64, start: Instant, share: bool) -> Client {
        let from = start + Duration::from_secs_f64(run.from);
        Client {
            pacer: Pacer::starting(&run.rate, from),
            rows: run.rows,
            first: index * 1_000_000_000,
            from,
            now: from,
            next_row: 0,
            finished: false,
            seed: 0x9e37_79b9_7f4a_7c15 ^ index,
            waiting: BinaryHeap::new(),
            outcome: Outcome {
                seconds: 0.0,
                requests: 0,
                throttled: 0,
                failed: 0,
                stopped: false,
                rate_ended: None,
                last_through: 0.0,
                per_second: Vec::new(),
            },
            shared: share.then(Arc::default),
            reckoning: Reckoning::new(run.rate.remembered()),
            seen: 0,
            told_at: from,
            ok: VecDeque::new(),
        }
    }

    /// One request, or a wait, of this run.
    fn step(&mut self, server: &mut Server, start: Instant, latency: Duration) {
        let retry = RetryPolicy::default();
        let seconds = |at: Instant| at.saturating_duration_since(start).as_secs_f64();
        let now = self.now;
        let due = (self.waiting.peek()).is_some_and(|Reverse((at, ..))| *at <= now);
        let (row, attempts, mut mark) = if due {
            let Reverse((_, row, attempts, mark)) = self.waiting.pop().expect("peeked");
            (row, attempts, mark)
        } else if self.next_row < self.rows {
            self.next_row += 1;
            (self.first + self.next_row, 0, Mark::default())
        } else if let Some(Reverse((at, ..))) = self.waiting.peek() {
            self.now = *at;
            return;
        } else {
            self.finished = true;
            self.outcome.seconds = seconds(now) - seconds(self.from);
            self.outcome.rate_ended = self.pacer.rate().0;
            return;
        };
        if let Err(until) = self.pacer.try_admit(now) {
            self.waiting.push(Reverse((now, row, attempts, mark)));
            self.now = until;
            return;
        }
        self.outcome.requests += 1;
        self.seed = self
            .seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let arrives = now + Duration::from_micros((self.seed >> 33) % 1000);
        let answered = arrives + latency;
        self.share(answered);
        let outcome = &mut self.outcome;
        let Some(retry_after) = server.reply(seconds(arrives), row) else {
            let index = (seconds(arrives) - seconds(self.from)) as usize;
            if outcome.per_second.len() <= index {
                outcome.per_second.resize(index + 1, 0);
            }
            outcome.per_second[index] += 1;
            outcome.last_through = seconds(answered) - seconds(self.from);
            self.ok.push_back(answered);
            self.pacer.answered(answered, false, &mut mark);
            return;
        };
        outcome.throttled += 1;
        let asked = retry_after.map(Duration::from_secs_f64);
        let kind = self.pacer.answered(answered, true, &mut mark);
        if std::env::var("SIM_TRACE").is_ok() {
            eprintln!(
                "{:.3} row {row} att {attempts} {kind:?} rate {:?}",
                seconds(answered),
                self.pacer.rate().0
            );
        }
        match kind {
            Some(Slowdown::Rate { shared }) if shared || attempts < retry.max_retries => {
                if (self.pacer.throttled_for(answered))
                    .is_some_and(|lasted| lasted > retry.max_wait)
                {
                    outcome.stopped = true;
                    outcome.failed += self.rows - self.next_row + self.waiting.len() as u64 + 1;
                    self.waiting.clear();
                    self.next_row = self.rows;
                    return;
                }
                let wait = asked.unwrap_or_else(|| retry.ceiling(self.pacer.bursts_in_a_row()));
                self.pacer.pause(answered, answered + wait);
                let attempts = attempts + u32::from(!shared);
                self.waiting
                    .push(Reverse((answered + wait, row, attempts, mark)));
            }
            _ if attempts + 1 > retry.max_retries => outcome.failed += 1,
            _ => {
                let wait = asked.unwrap_or_else(|| retry.ceiling(attempts + 1) / 2);
                self.waiting
                    .push(Reverse((answered + wait, row, attempts + 1, mark)));
            }
        }
    }

    /// As the dispatcher does: every quarter of a second, what it gets
    /// through and met, and its part of the limit back.
    fn share(&mut self, now: Instant) {
        let Some(shared) = &self.shared else {
            return;
        };
        while self
            .ok
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) >= Duration::from_secs(1))
        {
            self.ok.pop_front();
        }
        if now.saturating_duration_since(self.told_at) < Duration::from_millis(250) {
            return;
        }
        self.told_at = now;
        if let Some((split, version)) =
            shared.report(self.ok.len() as f64, self.pacer.met(), self.seen)
        {
            self.seen = version;
            self.pacer.share(now, split);
        }
    }
}

#[cfg(test)]
mod tests;
