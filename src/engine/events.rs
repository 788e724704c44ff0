//! What the engine tells the sink: the outcome of each row, notes, the
//! attempts of `-v`, the rate it ended at and its timeline. The engine owns
//! these types; the sink reads them (as nextest's reporter reads its
//! runner's events).

use crate::model::change::Change;
use crate::table::results::{ResultRecord, Status};

use super::timeline::Timeline;

/// What happened to a row: its record, with where it goes in the file;
/// owned, so it can cross to the writer's thread.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// 0-based position among the input's records: the order of the file.
    pub seq: u64,
    /// How many of the attempts were answered 429.
    pub throttled: u32,
    /// How many of the attempts were retries.
    pub retries: u32,
    /// What the row changes (or would change), field by field, from what
    /// to what: for the summary and the report (empty for a row that was
    /// not compared with its user).
    pub changes: Vec<Change>,
    pub record: ResultRecord,
    /// A row an earlier run did, kept as recorded (`--resume`): written,
    /// but none of its requests are this run's.
    pub kept: bool,
    /// What a row that did not finish did to the account all the same (an
    /// invitation answered, its next step failed: `invited`): the row is
    /// `failed` (`--resume` finishes it), and the user is among those the
    /// run changed.
    pub landed: Option<Status>,
}

/// What the writer receives.
#[derive(Debug)]
pub enum Report {
    Row(Outcome),
    /// A line for the user (printed through the progress display).
    Note(String),
    /// `-v`: one attempt, printed even with `-q` (it was asked for).
    Attempt(String),
    /// The rate the engine ended at (sent once, at the end).
    Rate(RateReport),
    /// What the engine saw, second by second (sent once, at the end, with
    /// `--report`).
    Timeline(Box<Timeline>),
}

/// The rate a run settled at (`None`: no limit) and how often a 429 made it
/// drop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateReport {
    /// The pacer's rate at the end (`None`: no limit), as set or as it
    /// adapted; what the server let through is `most_ok`.
    pub rate: Option<f64>,
    pub drops: u64,
    pub auto: bool,
    /// The most 2xx answers in any one second of the run.
    pub most_ok: u64,
}

impl RateReport {
    /// The rate limit the run met, `throttled` times answered 429: where
    /// its rate ended, when a 429 (or a throttling 5xx) lowered it; `None`
    /// when nothing did (a rate that was never refused is no limit).
    pub(crate) fn learned(&self, throttled: u64) -> Option<f64> {
        // With `--rate auto`, any 429 says the run found a limit: one about
        // a row alone too (a run at the limit may meet only those, too few
        // to be a share), and the rate ended is never above what the
        // server let through. (Below a ceiling that was never lowered, the
        // run did not look for one.)
        // Next to nothing through (a run of a few rows, one of them
        // throttled on its own): nothing learned, or the next runs for a
        // week would start at its crawl; far below its best: half the best.
        let learned = (self.drops > 0 || (self.auto && throttled > 0))
            .then_some(self.rate)
            .flatten()
            .filter(|_| self.most_ok >= MIN_OK_TO_LEARN)?;
        // Never above what the server was seen to let through (a rate that
        // climbed with no 429 since is no limit the account has).
        let learned = learned.min(self.most_ok as f64);
        Some(learned.max(self.most_ok as f64 / 2.0))
    }
}

/// The fewest 2xx answers in the run's best second for its rate to say
/// anything of the account's limit (a limit below it is found again by
/// each run, from the start rate).
const MIN_OK_TO_LEARN: u64 = 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_that_got_next_to_nothing_through_learns_nothing() {
        let report = |most_ok| RateReport {
            rate: Some(1.0),
            drops: 1,
            auto: false,
            most_ok,
        };
        // One row, throttled: no limit for the next week's runs.
        assert_eq!(report(1).learned(1), None);
        assert_eq!(report(4).learned(1), None);
        assert_eq!(report(5).learned(1), Some(2.5));
        assert_eq!(report(40).learned(3), Some(20.0));
    }
}
