//! What the runs of one account share: each run's dispatcher says what it
//! gets through and the limit it met; a coordinator (`commands/share.rs`,
//! through the state folder) counts the account's live runs, works out the
//! account's limit, and hands each run its part. Pure: no files here.
//!
//! The split: with `n` runs alive and the account's limit `L` known (met
//! by a run of it: the rate that run let through when throttled, plus what
//! the others got through then; or remembered), each run sends at most
//! `L / n`, starting just below it; alone again (the others ended or died),
//! a run starts just below `L` itself. Two runs that each found the limit
//! on their own split it 72 to 27 rows/s for 40 s (issue 25), and the one
//! left over stayed at 27 long after the other ended.

use std::sync::Mutex;

/// The state one run shares with its coordinator.
#[derive(Debug, Default)]
pub struct Shared {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Inner {
    /// The run's: successful answers a second, lately.
    pub ok_per_second: f64,
    /// The run's: the rate it let through when its rate last dropped, and
    /// how many drops there were.
    pub met: Option<(f64, u64)>,
    /// The coordinator's: the account's limit and how many runs share it,
    /// and a number that changes with them.
    pub split: Option<Split>,
    pub version: u64,
}

/// The account's limit, and the runs alive that share it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Split {
    pub limit: f64,
    pub runs: usize,
}

impl Split {
    /// This run's part: the limit over the runs.
    pub(crate) fn part(&self) -> f64 {
        (self.limit / self.runs.max(1) as f64).max(MIN_LIMIT)
    }
}

impl Shared {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The dispatcher's side: what this run gets through and met; back,
    /// the split when it changed since `seen` (a version).
    pub(crate) fn report(
        &self,
        ok_per_second: f64,
        met: Option<(f64, u64)>,
        seen: u64,
    ) -> Option<(Option<Split>, u64)> {
        self.with(|inner| {
            inner.ok_per_second = ok_per_second;
            inner.met = met;
            (inner.version != seen).then_some((inner.split, inner.version))
        })
    }

    /// The split as it stands.
    #[cfg(test)]
    pub(crate) fn split(&self) -> Option<Split> {
        self.with(|inner| inner.split)
    }

    /// The coordinator's side: what the run said.
    pub fn run_said(&self) -> (f64, Option<(f64, u64)>) {
        self.with(|inner| (inner.ok_per_second, inner.met))
    }

    /// The coordinator's side: the account's limit and its runs (a change
    /// of less than 2% in the limit is no change).
    pub fn set_split(&self, limit: Option<f64>, runs: usize) {
        let split = limit.map(|limit| Split { limit, runs });
        self.with(|inner| {
            let same = match (inner.split, split) {
                (Some(a), Some(b)) => {
                    a.runs == b.runs && (a.limit - b.limit).abs() <= 0.02 * a.limit
                }
                (a, b) => a == b,
            };
            if !same {
                inner.split = split;
                inner.version += 1;
            }
        });
    }
}

/// What one run knows of its account's runs, beat after beat: the
/// coordinator's reckoning, apart from how it reads and writes the others'
/// leases (`commands/share.rs`; the simulation does it in memory).
#[derive(Debug, Default, Clone)]
pub struct Reckoning {
    /// The account's limit this run met or probes, and when (ms).
    own: Option<Limit>,
    /// The drops of the run's rate seen so far.
    drops: u64,
    /// What the other runs got through, at the last beat.
    others_ok: f64,
    /// The newest limit any run met or probes, or the remembered one (at 0).
    known: Option<Limit>,
    /// The newest limit a run measured (not a probe), when (ms).
    measured: Option<(u64, f64)>,
    /// The account's limit while other runs shared it.
    pub with_others: Option<f64>,
    /// The split heard last, and since when (ms) its limit is the same;
    /// how long until the next probe.
    split: Option<Split>,
    since: u64,
    probe_in: u64,
}

/// While runs share a limit at their parts with no 429, the account's
/// limit is raised by [`PROBE`]: a limit met low (or raised since) is
/// found again, as one run alone probes above its rate, and the first 429s
/// measure it anew. The first probe comes [`PROBE_AFTER`] ms after the
/// limit was met ([`PROBE_AFTER_AGAIN`] after a limit measured within 10%
/// of the one measured before: each probe above a limit that holds costs
/// every run a pause and a restart below its part); each probe that met
/// no 429 brings the next one sooner
/// (half as long, down to [`PROBE_SOONEST`]): a limit far above is found
/// in seconds, one just met is probed rarely (each probe above it costs a
/// pause of every run).
const PROBE: f64 = 1.1;
/// Limits outside these are not believed (a lease that lies): below, a
/// part under the rate's floor would stall a run; above, no limit at all.
const MIN_LIMIT: f64 = 0.5;
const MAX_LIMIT: f64 = 1_000_000.0;
const PROBE_AFTER: u64 = 10_000;
const PROBE_AFTER_AGAIN: u64 = 20_000;
const AGAIN_WITHIN: f64 = 0.1;
/// A probe this soon after a measure was made without hearing of it.
const PROBE_HEARD: u64 = 1_000;
/// The share of the limit the runs together get through for a probe: each
/// starts at 0.9 of its part and climbs to 0.97 of it in about 18 s, and
/// gets a little less through than it sends (at 0.9, two runs that met 84/s
/// of a 100/s limit each sent 36/s for 80 s, never probed).
const PROBE_WHEN: f64 = 0.8;
const PROBE_SOONEST: u64 = 2_000;

/// What a run tells the others at a beat: what it gets through, and the
/// limit it knows (met, at a time in ms; or remembered, at 0).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Told {
    pub ok: f64,
    pub limit: Option<f64>,
    pub limit_at: u64,
    /// The limit is a probe above the one met, not a measure.
    pub probe: bool,
}

/// A limit a run knows: met (or probed) at a time in ms, or remembered (0).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Limit {
    limit: f64,
    at: u64,
    probe: bool,
}

impl Reckoning {
    pub fn new(remembered: Option<f64>) -> Reckoning {
        Reckoning {
            known: remembered.map(|limit| Limit {
                limit,
                at: 0,
                probe: false,
            }),
            probe_in: PROBE_AFTER,
            ..Reckoning::default()
        }
    }

    /// What this run tells the others now (`now` in ms), from what the
    /// run said (`shared`).
    pub fn tell(&mut self, now: u64, shared: &Shared) -> Told {
        let (ok, met) = shared.run_said();
        if let Some((met, drops)) = met
            && drops > self.drops
        {
            // Throttled just now: the account's limit is what this run let
            // through and what the others got through meanwhile.
            self.drops = drops;
            self.own = Some(Limit {
                limit: met + self.others_ok,
                at: now,
                probe: false,
            });
        } else if let Some(split) = self.split
            && split.runs >= 2
            && ok + self.others_ok >= PROBE_WHEN * split.limit
            && now.saturating_sub(self.since) >= self.probe_in.max(PROBE_SOONEST)
        {
            // The runs get most of the limit through, and nobody was
            // throttled for a while: probe above. (One run getting more
            // than its part while another gets less is no sign of more.)
            self.own = Some(Limit {
                limit: split.limit * PROBE,
                at: now,
                probe: true,
            });
            self.probe_in = (self.probe_in / 2).max(PROBE_SOONEST);
        }
        Told {
            ok,
            limit: self.own.map(|own| own.limit).or(self.remembered()),
            limit_at: self.own.map_or(0, |own| own.at),
            probe: self.own.is_some_and(|own| own.probe),
        }
    }

    fn remembered(&self) -> Option<f64> {
        self.known
            .filter(|known| known.at == 0)
            .map(|known| known.limit)
    }

    /// The others alive told `others`: the split this run takes, handed to
    /// it through `shared`.
    pub fn heard(&mut self, now: u64, others: &[Told], shared: &Shared) {
        self.others_ok = others.iter().map(|other| other.ok).sum();
        // The newest limit met by any run, kept when its run ends.
        let limits: Vec<Limit> = (others.iter())
            .filter_map(|other| {
                let limit = other.limit?;
                let (at, probe) = (other.limit_at, other.probe);
                Some(Limit { limit, at, probe })
            })
            .chain(self.own)
            .chain(self.known)
            .filter(|known| (MIN_LIMIT..=MAX_LIMIT).contains(&known.limit))
            .collect();
        let measure = (limits.iter().copied())
            .filter(|limit| !limit.probe)
            .max_by_key(|limit| limit.at);
        // A probe made before its run could hear of a newer measure (a
        // beat or two after it) was made on a split that no longer holds:
        // the measure wins. (A run probed half a second after the other
        // had measured the limit, and the probe stood.)
        let heard_by = measure.map_or(0, |measure| measure.at + PROBE_HEARD);
        let outdated = |limit: &Limit| limit.probe && limit.at < heard_by;
        if self.own.as_ref().is_some_and(outdated) {
            self.own = None;
        }
        self.known = (limits.into_iter())
            .filter(|limit| !outdated(limit))
            .max_by_key(|limit| limit.at);
        // A new measure (by any run): the next probe after the usual
        // wait, or a longer one when it found the limit where it was.
        if let Some(measure) = measure
            && measure.at > 0
            && self.measured.is_none_or(|(at, _)| measure.at > at)
        {
            let again = (self.measured)
                .is_some_and(|(_, before)| (measure.limit - before).abs() <= AGAIN_WITHIN * before);
            self.probe_in = if again {
                PROBE_AFTER_AGAIN
            } else {
                PROBE_AFTER
            };
            self.measured = Some((measure.at, measure.limit));
        }
        let newest = self.known.map(|known| known.limit);
        let runs = 1 + others.len();
        if runs >= 2 && newest.is_some() {
            self.with_others = newest;
        }
        let split = newest.map(|limit| Split { limit, runs });
        if split.map(|s| s.limit) != self.split.map(|s| s.limit) {
            self.since = now;
        }
        self.split = split;
        shared.set_split(newest, runs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A probe made before its run could hear of another run's newer
    /// measure is outdated (the measure stands); a later one counts; a
    /// limit measured again within 10% is probed again after 20 s, not 10.
    #[test]
    fn a_probe_made_before_hearing_a_measure_loses_and_a_measure_again_waits_longer() {
        let shared = Shared::default();
        let mut run = Reckoning::new(None);
        let other = |ok: f64, limit: f64, at: u64, probe: bool| Told {
            ok,
            limit: Some(limit),
            limit_at: at,
            probe,
        };
        let split = |shared: &Shared| shared.split().map(|split| split.limit);
        // The other run measured 100 at 1 s.
        run.tell(1_000, &shared);
        run.heard(1_000, &[other(45.0, 100.0, 1_000, false)], &shared);
        assert_eq!(split(&shared), Some(100.0));
        // Its probe half a second later was made on an older split: lost.
        run.heard(1_500, &[other(45.0, 110.0, 1_500, true)], &shared);
        assert_eq!(split(&shared), Some(100.0));
        // One made after it could have heard: it counts.
        run.heard(2_500, &[other(45.0, 110.0, 2_500, true)], &shared);
        assert_eq!(split(&shared), Some(110.0));
        // Measured again at 102 (within 10% of 100): the next probe comes
        // 20 s later, while both runs get most of it through.
        run.heard(3_000, &[other(50.0, 102.0, 3_000, false)], &shared);
        assert_eq!(split(&shared), Some(102.0));
        shared.report(50.0, None, 0);
        let told = |run: &mut Reckoning, now| run.tell(now, &shared);
        assert!(!told(&mut run, 13_500).probe, "not after 10 s");
        run.heard(13_500, &[other(50.0, 102.0, 3_000, false)], &shared);
        assert!(!told(&mut run, 22_500).probe, "not before 20 s");
        run.heard(22_500, &[other(50.0, 102.0, 3_000, false)], &shared);
        let probe = told(&mut run, 23_000);
        assert!(probe.probe, "{probe:?}");
        assert!((probe.limit.unwrap() - 112.2).abs() < 0.01, "{probe:?}");
    }

    #[test]
    fn a_split_reaches_the_run_once_and_small_changes_are_none() {
        let shared = Shared::default();
        assert_eq!(shared.report(10.0, None, 0), None);
        shared.set_split(Some(100.0), 2);
        let (split, version) = shared.report(12.0, Some((50.0, 1)), 0).unwrap();
        assert_eq!(split.unwrap().part(), 50.0);
        assert_eq!(shared.run_said(), (12.0, Some((50.0, 1))));
        assert_eq!(shared.report(12.0, None, version), None);
        shared.set_split(Some(101.0), 2);
        assert_eq!(shared.report(12.0, None, version), None, "1% is no change");
        shared.set_split(Some(101.0), 1);
        let (split, _) = shared.report(12.0, None, version).unwrap();
        assert_eq!(split.unwrap().part(), 101.0);
    }
}
