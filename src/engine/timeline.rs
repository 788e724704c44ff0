//! What the engine saw, second by second, for `--report`: answers by kind,
//! answer times, the rate it sent at and its pauses after a 429. Counted
//! in fixed-size buckets: a run of days keeps at most [`Timeline::MAX_BUCKETS`]
//! of them, each covering more seconds as the run goes on, so memory stays
//! flat whatever the number of rows.

use std::time::{Duration, Instant};

/// What came back for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// A 2xx answer.
    Success,
    /// HTTP 429.
    Throttled,
    /// Any other HTTP status (a refused change, a server error).
    Error,
    /// No HTTP answer: a timeout, a refused connection, a refused certificate.
    NoAnswer,
}

/// One bucket of the timeline.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bucket {
    pub success: u32,
    pub throttled: u32,
    pub error: u32,
    pub no_answer: u32,
    /// Sum and count of the answer times, in microseconds, for the mean.
    took_sum_us: u64,
    took_count: u32,
    /// The slowest answer, in microseconds.
    took_max_us: u64,
    /// The rate the engine was at when the bucket's last answer came
    /// (`None`: no answer in the bucket; `Some(None)`: no limit).
    rate: Option<Option<f64>>,
}

impl Bucket {
    pub fn answers(&self) -> u32 {
        self.success + self.throttled + self.error + self.no_answer
    }

    /// The mean answer time, if any request was answered.
    pub(crate) fn mean_took(&self) -> Option<Duration> {
        (self.took_count > 0)
            .then(|| Duration::from_micros(self.took_sum_us / u64::from(self.took_count)))
    }

    pub fn max_took(&self) -> Option<Duration> {
        (self.took_count > 0).then(|| Duration::from_micros(self.took_max_us))
    }

    /// The engine's rate at the bucket's last answer: `None` when nothing was
    /// answered in it, `Some(None)` for no limit.
    pub fn rate(&self) -> Option<Option<f64>> {
        self.rate
    }

    fn merge(&mut self, later: &Bucket) {
        self.success += later.success;
        self.throttled += later.throttled;
        self.error += later.error;
        self.no_answer += later.no_answer;
        self.took_sum_us += later.took_sum_us;
        self.took_count += later.took_count;
        self.took_max_us = self.took_max_us.max(later.took_max_us);
        if later.rate.is_some() {
            self.rate = later.rate;
        }
    }
}

/// Counters per stretch of the run, from the engine's start.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    started: Instant,
    /// Seconds per bucket: 1, then doubled whenever the buckets run out.
    width: u64,
    buckets: Vec<Bucket>,
    /// The run-wide pauses after a 429: (start, length) from `started`.
    pauses: Vec<(Duration, Duration)>,
    /// Pauses not kept (beyond [`Timeline::MAX_PAUSES`]).
    pauses_left_out: u64,
    /// When the last answer came, or the sending ended if later, from
    /// `started`.
    last: Duration,
}

impl Timeline {
    /// At most this many buckets: half an hour at one second each.
    pub(crate) const MAX_BUCKETS: usize = 1800;
    /// At most this many pauses are kept for the chart.
    pub(crate) const MAX_PAUSES: usize = 2000;

    pub fn new(started: Instant) -> Timeline {
        Timeline {
            started,
            width: 1,
            buckets: Vec::new(),
            pauses: Vec::new(),
            pauses_left_out: 0,
            last: Duration::ZERO,
        }
    }

    /// Seconds per bucket.
    pub fn width(&self) -> u64 {
        self.width
    }

    pub(crate) fn buckets(&self) -> &[Bucket] {
        &self.buckets
    }

    pub fn pauses(&self) -> &[(Duration, Duration)] {
        &self.pauses
    }

    pub(crate) fn pauses_left_out(&self) -> u64 {
        self.pauses_left_out
    }

    /// From the first bucket's start to the end of the sending (or the
    /// last answer, before [`Timeline::ended`]).
    pub fn span(&self) -> Duration {
        self.last
    }

    /// Answers of every kind, over the whole run.
    pub fn total(&self) -> Bucket {
        let mut total = Bucket::default();
        for bucket in &self.buckets {
            total.merge(bucket);
        }
        total
    }

    /// The sending ended at `at`: a run that waited out a long pause after
    /// its last answer shows that wait.
    pub fn ended(&mut self, at: Instant) {
        self.last = self.last.max(at.saturating_duration_since(self.started));
    }

    /// An answer at `at`, `took` after its request was sent, while the
    /// engine's rate was `rate` (`None`: no limit).
    pub fn answered(&mut self, at: Instant, took: Duration, kind: AnswerKind, rate: Option<f64>) {
        let since = at.saturating_duration_since(self.started);
        self.last = self.last.max(since);
        let bucket = self.bucket(since);
        match kind {
            AnswerKind::Success => bucket.success += 1,
            AnswerKind::Throttled => bucket.throttled += 1,
            AnswerKind::Error => bucket.error += 1,
            AnswerKind::NoAnswer => bucket.no_answer += 1,
        }
        bucket.rate = Some(rate);
        // Answer times are of answers: a timeout or a refused connection
        // is counted above, not timed.
        if kind == AnswerKind::NoAnswer {
            return;
        }
        let took = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        bucket.took_sum_us = bucket.took_sum_us.saturating_add(took);
        bucket.took_count += 1;
        bucket.took_max_us = bucket.took_max_us.max(took);
    }

    /// A run-wide pause after a 429, from `at` for `length`.
    pub fn paused(&mut self, at: Instant, length: Duration) {
        if length.is_zero() {
            return;
        }
        let since = at.saturating_duration_since(self.started);
        // A pause that extends the one before is one stretch on the chart.
        if let Some((start, old)) = self.pauses.last_mut()
            && *start + *old >= since
        {
            *old = (*old).max(since + length - *start);
            return;
        }
        if self.pauses.len() < Self::MAX_PAUSES {
            self.pauses.push((since, length));
        } else {
            self.pauses_left_out += 1;
        }
    }

    /// The bucket for `since`, merging pairs of buckets (and doubling their
    /// width) until it fits.
    fn bucket(&mut self, since: Duration) -> &mut Bucket {
        let mut index = since.as_secs() / self.width;
        while index >= Self::MAX_BUCKETS as u64 {
            self.buckets = self
                .buckets
                .chunks(2)
                .map(|pair| {
                    let mut merged = pair[0];
                    if let Some(second) = pair.get(1) {
                        merged.merge(second);
                    }
                    merged
                })
                .collect();
            self.width *= 2;
            index = since.as_secs() / self.width;
        }
        let index = index as usize;
        if self.buckets.len() <= index {
            self.buckets.resize(index + 1, Bucket::default());
        }
        &mut self.buckets[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, seconds: f64) -> Instant {
        start + Duration::from_secs_f64(seconds)
    }

    #[test]
    fn answers_are_counted_in_the_second_they_came() {
        let start = Instant::now();
        let mut timeline = Timeline::new(start);
        let ms = Duration::from_millis;
        timeline.answered(at(start, 0.2), ms(10), AnswerKind::Success, Some(10.0));
        timeline.answered(at(start, 0.9), ms(30), AnswerKind::Success, Some(10.0));
        timeline.answered(at(start, 2.5), ms(5), AnswerKind::Throttled, Some(8.0));
        timeline.answered(at(start, 2.6), ms(700), AnswerKind::NoAnswer, Some(8.0));
        let buckets = timeline.buckets();
        assert_eq!(buckets.len(), 3);
        assert_eq!(buckets[0].success, 2);
        assert_eq!(buckets[0].mean_took(), Some(ms(20)));
        assert_eq!(buckets[0].max_took(), Some(ms(30)));
        assert_eq!(buckets[1].answers(), 0);
        assert_eq!(buckets[1].rate(), None);
        assert_eq!((buckets[2].throttled, buckets[2].no_answer), (1, 1));
        assert_eq!(buckets[2].rate(), Some(Some(8.0)));
        assert_eq!(timeline.total().answers(), 4);
        // No answer is not an answer time.
        assert_eq!(buckets[2].max_took(), Some(ms(5)));
        assert_eq!(timeline.span(), Duration::from_millis(2600));
        // A wait after the last answer is part of the run.
        timeline.ended(at(start, 9.0));
        assert_eq!(timeline.span(), Duration::from_secs(9));
        assert_eq!(timeline.buckets().len(), 3);
    }

    #[test]
    fn a_long_run_keeps_a_bounded_number_of_wider_buckets() {
        let start = Instant::now();
        let mut timeline = Timeline::new(start);
        // Ten hours, one answer a second.
        let seconds = 36_000;
        for second in 0..seconds {
            let kind = if second % 100 == 0 {
                AnswerKind::Throttled
            } else {
                AnswerKind::Success
            };
            timeline.answered(
                at(start, second as f64 + 0.5),
                Duration::from_millis(1 + second % 7),
                kind,
                None,
            );
        }
        assert!(timeline.buckets().len() <= Timeline::MAX_BUCKETS);
        assert!(timeline.width() >= 20, "width {}", timeline.width());
        assert!(timeline.width().is_power_of_two());
        // Nothing is lost in the merging.
        let total = timeline.total();
        assert_eq!(total.answers(), seconds as u32);
        assert_eq!(total.throttled, (seconds / 100) as u32);
        assert_eq!(total.max_took(), Some(Duration::from_millis(7)));
    }

    #[test]
    fn pauses_that_overlap_are_one_stretch() {
        let start = Instant::now();
        let mut timeline = Timeline::new(start);
        let s = Duration::from_secs;
        timeline.paused(at(start, 1.0), s(2));
        timeline.paused(at(start, 2.0), s(2));
        timeline.paused(at(start, 10.0), s(1));
        timeline.paused(at(start, 12.0), Duration::ZERO);
        assert_eq!(timeline.pauses(), &[(s(1), s(3)), (s(10), s(1))]);
    }
}
