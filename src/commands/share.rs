//! Runs of one account find each other through the state folder and split
//! its limit (the rule: `policy/share.rs`). Each run keeps a lease,
//! `runs/<account>-<pid>-<nonce>.json` beside `limits.json` (the account
//! is the same keyed hash of the API key, never the key), locked for as
//! long as the run lives, and rewritten every [`BEAT`] with what the run
//! gets through and the account's limit it met. Every beat a run reads the
//! others' leases: one it can lock belongs to a run that is gone (ended,
//! or killed: the lock goes with the process) and is removed; one not
//! rewritten for [`STALE`] is not counted (a run stopped with Ctrl-Z).
//! Best effort, as the memory is: a folder that cannot be written only
//! means not sharing. `--no-share` opts out: the run neither counts nor is
//! counted.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::policy::{Reckoning, Shared, Told};

/// How often a run rewrites its lease and reads the others'.
pub(super) const BEAT: Duration = Duration::from_millis(500);
/// A lease not rewritten for this long is not counted.
const STALE: Duration = Duration::from_secs(5);
/// The largest lease read back.
const MAX_LEASE: u64 = 4096;
/// Leases read at most in a beat (a folder filled by something else).
const MAX_LEASES: usize = 256;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Lease {
    pid: u32,
    /// Successful answers a second, lately.
    ok: f64,
    /// The account's limit this run met, and when (ms since the epoch).
    limit: Option<f64>,
    limit_at: u64,
    /// The limit is a probe above the one met (absent: measured).
    #[serde(default)]
    probe: bool,
    /// When the lease was last rewritten (ms since the epoch).
    beat_at: u64,
}

/// A run's part in the sharing: stops it (and removes its lease) when
/// dropped.
pub(super) struct Sharing {
    stop: Option<Sender<()>>,
    thread: Option<std::thread::JoinHandle<Option<f64>>>,
    /// The account's limit as the split last had it with other runs.
    shared_limit: Option<f64>,
}

impl Sharing {
    /// Starts sharing in `folder` for `account`, from the `remembered`
    /// limit if any; `None` when the folder cannot hold a lease.
    pub(super) fn start(
        folder: &Path,
        account: &str,
        remembered: Option<f64>,
        shared: Arc<Shared>,
    ) -> Option<Sharing> {
        let runs = folder.join("runs");
        std::fs::create_dir_all(&runs).ok()?;
        let nonce: u32 = rand::random();
        let prefix = format!("{account}-");
        let path = runs.join(format!("{prefix}{}-{nonce:08x}.json", std::process::id()));
        let file = File::options()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)
            .ok()?;
        file.try_lock().ok()?;
        let (stop, stopped) = std::sync::mpsc::channel();
        let mut beat = Beat {
            runs,
            prefix,
            path,
            file,
            shared,
            reckoning: Reckoning::new(remembered),
            heard: HashMap::new(),
        };
        let thread = std::thread::Builder::new()
            .name("share".to_string())
            .spawn(move || beat.run(stopped))
            .ok()?;
        Some(Sharing {
            stop: Some(stop),
            thread: Some(thread),
            shared_limit: None,
        })
    }

    /// Stops sharing; the account's limit as split with other runs, if it
    /// was (what the run should remember rather than its own part).
    pub(super) fn end(&mut self) -> Option<f64> {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            self.shared_limit = thread.join().ok().flatten();
        }
        self.shared_limit
    }
}

impl Drop for Sharing {
    fn drop(&mut self) {
        self.end();
    }
}

struct Beat {
    runs: PathBuf,
    prefix: String,
    path: PathBuf,
    file: File,
    shared: Arc<Shared>,
    reckoning: Reckoning,
    /// What each other run's lease said when last read whole: a lease
    /// caught being rewritten counts for that (read as nothing through, it
    /// halved the account's limit whenever two runs beat at the same time).
    heard: HashMap<PathBuf, Lease>,
}

impl Beat {
    fn run(&mut self, stopped: Receiver<()>) -> Option<f64> {
        loop {
            self.beat();
            match stopped.recv_timeout(BEAT) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => break,
            }
        }
        let _ = std::fs::remove_file(&self.path);
        self.reckoning.with_others
    }

    fn beat(&mut self) {
        let now = millis(SystemTime::now());
        let told = self.reckoning.tell(now, &self.shared);
        let lease = Lease {
            pid: std::process::id(),
            ok: told.ok,
            limit: told.limit,
            limit_at: told.limit_at,
            probe: told.probe,
            beat_at: now,
        };
        let _ = self.write(&lease);
        let others: Vec<Told> = (self.others(now).iter())
            .map(|lease| Told {
                ok: lease.ok,
                limit: lease.limit,
                limit_at: lease.limit_at,
                probe: lease.probe,
            })
            .collect();
        self.reckoning.heard(now, &others, &self.shared);
    }

    /// Rewrites the lease in place, then cuts what the last one left
    /// over: never empty for a reader meanwhile.
    fn write(&mut self, lease: &Lease) -> std::io::Result<()> {
        let text = serde_json::to_vec(lease).map_err(std::io::Error::other)?;
        self.file.rewind()?;
        self.file.write_all(&text)?;
        self.file.set_len(text.len() as u64)
    }

    /// The leases of the account's other runs alive; the leases of runs
    /// gone are removed.
    fn others(&mut self, now: u64) -> Vec<Lease> {
        use std::os::unix::fs::MetadataExt;
        let Ok(entries) = std::fs::read_dir(&self.runs) else {
            return Vec::new();
        };
        let own = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        let stale = STALE.as_millis() as u64;
        let mut alive = Vec::new();
        let mut heard = HashMap::new();
        let ours = entries
            .flatten()
            .filter(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&self.prefix)
            })
            .take(MAX_LEASES);
        for entry in ours {
            let path = entry.path();
            // Regular files only, never through a link: a FIFO would block
            // the reading, a link to this run's own lease count it twice.
            let regular = entry.file_type().is_ok_and(|kind| kind.is_file());
            if !regular || path == self.path {
                continue;
            }
            let Ok(mut file) = File::options().read(true).write(true).open(&path) else {
                continue;
            };
            let Ok(meta) = file.metadata() else {
                continue;
            };
            if !meta.is_file() || own == Some((meta.dev(), meta.ino())) {
                continue;
            }
            if file.try_lock().is_ok() {
                // Nobody holds it: its run is gone.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let mut text = String::new();
            let read = (&mut file).take(MAX_LEASE).read_to_string(&mut text);
            // A lease being rewritten reads cut: alive if the file changed
            // lately, saying what it said when last read whole.
            let changed = meta.modified().map_or(0, millis);
            let whole = read
                .ok()
                .and_then(|_| serde_json::from_str::<Lease>(&text).ok());
            if let Some(whole) = &whole {
                heard.insert(path.clone(), whole.clone());
            }
            let mut lease = whole.unwrap_or_else(|| {
                let last = self.heard.get(&path).cloned().unwrap_or_default();
                heard.insert(path.clone(), last.clone());
                Lease {
                    beat_at: changed,
                    ..last
                }
            });
            // Times from the future (a clock or a file that lies) are not
            // believed: such a lease would count, or its limit win, for ever.
            if lease.limit_at > now + stale {
                lease.limit = None;
            }
            let fresh = now.abs_diff(lease.beat_at) <= stale;
            if fresh && lease.ok.is_finite() && lease.ok >= 0.0 {
                alive.push(lease);
            }
        }
        self.heard = heard;
        alive
    }
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two runs of one account see each other within a beat, split the
    /// limit one of them met, and the one left takes it whole when the
    /// other ends; a lease whose run died (its lock gone) is removed.
    #[test]
    fn runs_of_one_account_find_each_other_and_split_the_limit() {
        let folder = tempfile::tempdir().unwrap();
        let (a, b) = (Arc::new(Shared::default()), Arc::new(Shared::default()));
        let mut first = Sharing::start(folder.path(), "acc", Some(100.0), a.clone()).unwrap();
        let split = |shared: &Shared| shared.split();
        let until = |shared: &Shared, runs: usize| {
            for _ in 0..100 {
                if split(shared).is_some_and(|s| s.runs == runs) {
                    return split(shared).unwrap();
                }
                std::thread::sleep(BEAT / 5);
            }
            panic!("never {runs} runs: {:?}", split(shared));
        };
        assert_eq!(until(&a, 1).part(), 100.0);
        let other = Sharing::start(folder.path(), "acc", None, b.clone()).unwrap();
        let _stranger = Sharing::start(folder.path(), "another", None, Arc::default()).unwrap();
        assert_eq!(until(&a, 2).part(), 50.0);
        assert_eq!(until(&b, 2).part(), 50.0);
        // b meets the limit: 40 through for it, and a's 45 meanwhile.
        a.report(45.0, None, 0);
        std::thread::sleep(BEAT * 2);
        b.report(40.0, Some((40.0, 1)), 0);
        for _ in 0..100 {
            if split(&a).is_some_and(|s| s.limit != 100.0) {
                break;
            }
            std::thread::sleep(BEAT / 5);
        }
        let limit = split(&a).unwrap().limit;
        assert!((84.0..=86.0).contains(&limit), "{limit}");
        drop(other);
        assert!((84.0..=86.0).contains(&until(&a, 1).limit));
        assert_eq!(first.end(), Some(limit), "the account's, not its part");
        // A lease nobody holds (its run killed) is removed and not counted.
        let dead = folder.path().join("runs/acc-1-dead.json");
        std::fs::write(
            &dead,
            r#"{"pid":1,"ok":5.0,"limit":null,"limit_at":0,"beat_at":0}"#,
        )
        .unwrap();
        let c = Arc::new(Shared::default());
        let _alone = Sharing::start(folder.path(), "acc", Some(60.0), c.clone()).unwrap();
        assert_eq!(until(&c, 1).part(), 60.0);
        for _ in 0..50 {
            if !dead.exists() {
                break;
            }
            std::thread::sleep(BEAT / 5);
        }
        assert!(!dead.exists());
    }

    /// A lease caught being rewritten (read empty or cut) counts for what
    /// it said when last read whole: read as a run with nothing through,
    /// it made the other run take its own rate for the account's limit,
    /// and two runs sat at a third of it each for half a minute.
    #[test]
    fn a_lease_caught_being_rewritten_counts_for_what_it_said_last() {
        let folder = tempfile::tempdir().unwrap();
        let runs = folder.path().join("runs");
        std::fs::create_dir_all(&runs).unwrap();
        let other = runs.join("acc-7-other.json");
        let said = |ok: f64| {
            format!(
                r#"{{"pid":7,"ok":{ok},"limit":90.0,"limit_at":5,"beat_at":{}}}"#,
                millis(SystemTime::now())
            )
        };
        std::fs::write(&other, said(48.0)).unwrap();
        let other_file = File::options().read(true).write(true).open(&other).unwrap();
        other_file.try_lock().unwrap();
        let own = runs.join("acc-8-own.json");
        let file = File::options()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&own)
            .unwrap();
        file.try_lock().unwrap();
        let mut beat = Beat {
            runs,
            prefix: "acc-".to_string(),
            path: own,
            file,
            shared: Arc::default(),
            reckoning: Reckoning::new(None),
            heard: HashMap::new(),
        };
        let now = || millis(SystemTime::now());
        let heard = |leases: Vec<Lease>| -> Vec<(f64, Option<f64>)> {
            leases.iter().map(|lease| (lease.ok, lease.limit)).collect()
        };
        assert_eq!(heard(beat.others(now())), [(48.0, Some(90.0))]);
        // Caught empty, then cut, as its run rewrites it.
        other_file.set_len(0).unwrap();
        assert_eq!(heard(beat.others(now())), [(48.0, Some(90.0))]);
        std::fs::write(&other, &said(50.0)[..20]).unwrap();
        assert_eq!(heard(beat.others(now())), [(48.0, Some(90.0))]);
        // Whole again: what it says now.
        std::fs::write(&other, said(50.0)).unwrap();
        assert_eq!(heard(beat.others(now())), [(50.0, Some(90.0))]);
        // A run's own lease is never empty while it is rewritten.
        beat.write(&Lease {
            pid: 8,
            ok: 123.0,
            ..Lease::default()
        })
        .unwrap();
        beat.write(&Lease {
            pid: 8,
            ok: 1.0,
            ..Lease::default()
        })
        .unwrap();
        let text = std::fs::read_to_string(&beat.path).unwrap();
        assert_eq!(
            serde_json::from_str::<Lease>(&text).unwrap().ok,
            1.0,
            "{text}"
        );
        drop(other_file);
    }

    /// What a hostile folder holds is not counted and stops nothing: a FIFO
    /// named like a lease (reading it would block the beat for ever), a
    /// link to this run's own lease (it would count twice), a lease whose
    /// limit is tiny (a part under the floor stalled a run) or claims a
    /// time in the future (it would win for ever).
    #[test]
    fn a_hostile_runs_folder_counts_for_nothing() {
        let folder = tempfile::tempdir().unwrap();
        let runs = folder.path().join("runs");
        std::fs::create_dir_all(&runs).unwrap();
        let fifo = runs.join("acc-1-fifo.json");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        // Held open for writing and locked by someone alive (this test).
        let held = File::options().read(true).write(true).open(&fifo).unwrap();
        held.try_lock().unwrap();
        let liar = runs.join("acc-2-liar.json");
        let lie = format!(
            r#"{{"pid":2,"ok":1.0,"limit":1e-300,"limit_at":{},"beat_at":{}}}"#,
            u64::MAX / 2,
            millis(SystemTime::now())
        );
        std::fs::write(&liar, lie).unwrap();
        let liar_file = File::options().read(true).write(true).open(&liar).unwrap();
        liar_file.try_lock().unwrap();
        let shared = Arc::new(Shared::default());
        let mut sharing = Sharing::start(folder.path(), "acc", Some(80.0), shared.clone()).unwrap();
        let own = std::fs::read_dir(&runs)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p != &fifo && p != &liar)
            .unwrap();
        std::os::unix::fs::symlink(&own, runs.join("acc-3-link.json")).unwrap();
        std::fs::hard_link(&own, runs.join("acc-4-hard.json")).unwrap();
        for _ in 0..6 {
            std::thread::sleep(BEAT);
            let split = shared.split().unwrap();
            // The liar is alive (locked, fresh) but its limit is not believed.
            assert_eq!(split.runs, 2, "{split:?}");
            assert_eq!(split.limit, 80.0);
            assert!(split.part() >= 0.5);
        }
        assert_eq!(sharing.end(), Some(80.0), "the beat was never blocked");
        drop((held, liar_file));
    }
}
