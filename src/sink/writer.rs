//! The results file, written in input order: [`ResultsWriter`] owns the
//! file (locked, with its journal or its replacement), and
//! [`write_in_order`] takes the engine's outcomes as they come and writes
//! each in its turn.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::error::Fatal;
use crate::table::record::{Journal, OutputTarget, Replacement, open_private};
use crate::table::results::{RecordWriter, ResultRecord};

use super::*;

/// Writes the results file as rows come, and keeps the summary.
pub struct ResultsWriter {
    pub(super) records: RecordWriter<Box<dyn Write + Send>>,
    pub(super) path: PathBuf,
    pub(super) summary: Summary,
    /// Runs that send keep a journal of answered rows beside the file.
    pub(super) journal: Option<Journal>,
    /// A resumed run writes a new file that replaces the old one at the end.
    pub(super) replacement: Option<Replacement>,
    /// The locked results file (kept open: the lock lasts as long).
    pub(super) locked: Option<File>,
}

/// What a run keeps on disk besides its results file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keeping {
    /// A dry run sends nothing: no journal.
    DryRun,
    /// A plan reads users and changes nothing: no journal, and a
    /// `planned_at` column (this HTTP date) that marks the file as a plan.
    Plan(String),
    /// A run that sends, from the start: a new journal.
    Fresh,
    /// A run that resumes an earlier one: its journal goes on, and its
    /// results file is replaced only once the new one is complete.
    Resume,
}

impl ResultsWriter {
    /// `raw`: cells as they are, formulas included (`--raw-output`).
    pub fn create(
        target: &OutputTarget,
        keeping: Keeping,
        raw: bool,
    ) -> Result<ResultsWriter, Fatal> {
        let path = target.display_path();
        let output_error = |source| Fatal::Output {
            path: path.clone(),
            source,
        };
        let (sink, journal, replacement, locked): (Box<dyn Write + Send>, _, _, _) = match target {
            OutputTarget::Stdout => (
                Box::new(BufWriter::with_capacity(1 << 16, io::stdout())),
                None,
                None,
                None,
            ),
            OutputTarget::File(file_path) => {
                let resume = keeping == Keeping::Resume;
                // A resumed run and a plan are written beside their place
                // and put there whole: a plan cut short by a crash never
                // passes for a whole one.
                let replace = resume || matches!(keeping, Keeping::Plan(_));
                let locked = open_locked(file_path, !replace)?;
                let journal = match keeping {
                    Keeping::DryRun | Keeping::Plan(_) => None,
                    Keeping::Fresh | Keeping::Resume => {
                        // Named as itself: a journal in the way is not the
                        // results file's fault.
                        let journal = crate::table::record::journal_path(file_path);
                        let opened =
                            Journal::open(file_path, resume).map_err(|source| Fatal::Journal {
                                path: journal,
                                source,
                            })?;
                        Some(opened)
                    }
                };
                if replace {
                    let replacement = Replacement::new(file_path).map_err(output_error)?;
                    let file = replacement.file().map_err(output_error)?;
                    (
                        Box::new(file) as Box<dyn Write + Send>,
                        journal,
                        Some(replacement),
                        Some(locked),
                    )
                } else {
                    let file = locked.try_clone().map_err(output_error)?;
                    (
                        Box::new(file) as Box<dyn Write + Send>,
                        journal,
                        None,
                        Some(locked),
                    )
                }
            }
        };
        let planned_at = match keeping {
            Keeping::Plan(at) => Some(at),
            _ => None,
        };
        let mut records = RecordWriter::with_plan(sink, planned_at).map_err(output_error)?;
        if raw {
            records = records.raw();
        }
        // The header at once: a run killed before its first row leaves a
        // valid, empty results file.
        records.flush().map_err(output_error)?;
        Ok(ResultsWriter {
            records,
            path,
            summary: Summary::default(),
            journal,
            replacement,
            locked,
        })
    }

    pub fn path(&self) -> &PathBuf {
        &self.path
    }

    /// With `--report` (`report`), keeps the rows with a problem for the
    /// page's table.
    pub(crate) fn for_report(mut self, report: bool) -> ResultsWriter {
        if report {
            self.summary.problem_rows = Some(ProblemRows::default());
            self.summary.changed_users =
                super::changed::ChangedUsers::keeping(super::changed::ChangedUsers::PAGE);
        }
        self
    }

    /// Whether the results go to standard output (no file, no record).
    pub(crate) fn to_stdout(&self) -> bool {
        self.locked.is_none()
    }

    pub fn write(&mut self, record: &ResultRecord) -> Result<(), Fatal> {
        self.write_counted(record, true)
    }

    /// [`ResultsWriter::write`]; `own`: the row's requests are this run's
    /// (a kept row's, on `--resume`, were an earlier run's: this run's
    /// figures, rows sent, requests, rows/s, leave them out).
    fn write_counted(&mut self, record: &ResultRecord, own: bool) -> Result<(), Fatal> {
        self.summary.record(record, own);
        let written = self.records.write(record);
        written.map_err(|source| self.output_error(source))
    }

    /// Hands what is buffered (the journal's too) to the operating system.
    pub fn flush(&mut self) -> Result<(), Fatal> {
        let mut flushed = self.records.flush();
        if let Some(journal) = &mut self.journal
            && flushed.is_ok()
        {
            flushed = journal.flush();
        }
        flushed.map_err(|source| self.output_error(source))
    }

    /// Flushes the file and hands back the summary. With every row written
    /// for good (on disk, and in place for a resumed run), the journal is
    /// no longer needed.
    pub fn finish(mut self) -> Result<Summary, Fatal> {
        self.flush()?;
        let output_error = |source| Fatal::Output {
            path: self.path.clone(),
            source,
        };
        if let Some(replacement) = self.replacement.take() {
            replacement.commit().map_err(output_error)?;
        } else if let (Some(file), Some(_)) = (&self.locked, &self.journal) {
            file.sync_all().map_err(output_error)?;
        }
        if let Some(journal) = self.journal.take() {
            journal.remove().map_err(output_error)?;
        }
        Ok(self.summary)
    }

    /// Notes a row's answer in the journal (a row waiting for its turn).
    pub(super) fn journal(&mut self, record: &ResultRecord) -> Result<(), Fatal> {
        let Some(journal) = &mut self.journal else {
            return Ok(());
        };
        let written = journal.append(record);
        written.map_err(|source| self.output_error(source))
    }

    pub(super) fn output_error(&self, source: io::Error) -> Fatal {
        Fatal::Output {
            path: self.path.clone(),
            source,
        }
    }
}

/// Opens the results file for one run: locked (an OS lock, released when
/// the process ends, however it ends), and emptied (`truncate`) only once
/// the lock is held, so that a second run on the same file changes nothing
/// of the first.
pub(super) fn open_locked(path: &Path, truncate: bool) -> Result<File, Fatal> {
    let output_error = |source| Fatal::Output {
        path: path.to_path_buf(),
        source,
    };
    let file = open_private(path).map_err(output_error)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(Fatal::Usage(format!(
                "the results file {} is in use by another run of gcore-iam-bulk; wait for it to \
                 end, or choose another file with -o",
                path.display()
            )));
        }
        Err(std::fs::TryLockError::Error(source)) => return Err(output_error(source)),
    }
    // Only a regular file is emptied: /dev/null and the like cannot be.
    if truncate && file.metadata().map_err(output_error)?.is_file() {
        file.set_len(0).map_err(output_error)?;
    }
    Ok(file)
}

/// How often the results file is handed to the operating system while a
/// run that sends goes (with the journal, what a crash can lose); a dry run
/// flushes every second.
pub(super) const FLUSH_EVERY: Duration = Duration::from_millis(100);
pub(super) const DRY_RUN_FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How long the writer lets outcomes gather after writing a batch.
pub(super) const GATHER: Duration = Duration::from_millis(1);

/// Writes one row in its turn and counts it.
pub(super) fn write_one(
    results: &mut ResultsWriter,
    progress: &mut Progress,
    outcome: &Outcome,
) -> Result<(), Fatal> {
    results.summary.throttled += u64::from(outcome.throttled);
    results.summary.retries += u64::from(outcome.retries);
    results.summary.changed(outcome);
    results.write_counted(&outcome.record, !outcome.kept)?;
    progress.row(outcome.record.status);
    Ok(())
}

/// The writer's side of a run: takes outcomes in any order and writes them in
/// input order, holding those that finished early. The dispatcher admits a
/// row only when it is less than `window` rows ahead of `written`, so the
/// rows held here never exceed the window, whatever the size of the input.
/// Also drives the progress display and counts for the summary. Runs on its
/// own thread until every sender of `reports` is gone. `timed`: the summary
/// says how long it took (runs that send).
pub fn write_in_order(
    mut results: ResultsWriter,
    reports: mpsc::Receiver<Report>,
    written: watch::Sender<u64>,
    mut progress: Progress,
    timed: bool,
) -> Result<Summary, Fatal> {
    let started = Instant::now();
    // Rows answered before their turn, and whether the journal has them.
    let mut held: VecDeque<Option<(Outcome, bool)>> = VecDeque::new();
    let mut next_seq: u64 = 0;
    let mut flushed = Instant::now();
    loop {
        // Rows reach the operating system within a tenth of a second in a
        // run that sends (a second for a dry run): with the journal, all a
        // crash can lose; on standard output, which has no journal, what
        // its reader has not seen yet (it was a second there too).
        let every = if results.journal.is_some() || timed {
            FLUSH_EVERY
        } else {
            DRY_RUN_FLUSH_EVERY
        };
        if flushed.elapsed() >= every {
            // Rows still waiting for their turn go into the journal now, so
            // that the disk has every answer but those of the last interval.
            // (A row that gets its turn within the interval never needs it.)
            for (outcome, journaled) in held.iter_mut().flatten() {
                if !*journaled && outcome.record.attempts > 0 {
                    results.journal(&outcome.record)?;
                    *journaled = true;
                }
            }
            results.flush()?;
            flushed = Instant::now();
        }
        let mut report = match reports.recv_timeout(every.min(Progress::TICK)) {
            Ok(report) => Some(report),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                progress.tick();
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let before = next_seq;
        // Everything that has arrived, then a short nap: the writer wakes
        // once per batch of outcomes rather than once per row.
        while let Some(current) = report.take() {
            // Fetched first, so that `continue` below cannot skip it.
            report = reports.try_recv().ok();
            match current {
                Report::Note(text) => progress.note(&text),
                Report::Attempt(text) => progress.attempt(&text),
                Report::Rate(report) => results.summary.rate = Some(report),
                Report::Timeline(timeline) => results.summary.timeline = Some(timeline),
                Report::Row(outcome) => {
                    // A resumed run writes its results beside the old file
                    // until the end: every answer goes to the journal at once.
                    let journaled = results.replacement.is_some() && outcome.record.attempts > 0;
                    if journaled {
                        results.journal(&outcome.record)?;
                    }
                    let Some(offset) = outcome.seq.checked_sub(next_seq) else {
                        debug_assert!(false, "row {} was reported twice", outcome.record.row);
                        continue;
                    };
                    let offset = usize::try_from(offset).expect("the window fits in memory");
                    if offset == 0 && held.is_empty() {
                        // The next row in order, nothing held: the common case.
                        write_one(&mut results, &mut progress, &outcome)?;
                        next_seq += 1;
                        continue;
                    }
                    if held.len() <= offset {
                        held.resize(offset + 1, None);
                    }
                    held[offset] = Some((outcome, journaled));
                    while let Some(Some(_)) = held.front() {
                        let (outcome, _) = held.pop_front().flatten().expect("the front is filled");
                        write_one(&mut results, &mut progress, &outcome)?;
                        next_seq += 1;
                    }
                }
            }
        }
        if next_seq != before {
            // The dispatcher may be gone already; that is fine.
            let _ = written.send(next_seq);
        }
        std::thread::sleep(GATHER);
    }
    debug_assert!(held.iter().all(Option::is_none), "outcomes left unwritten");
    results.summary.elapsed = timed.then(|| started.elapsed());
    progress.finish();
    results.finish()
}
