//! The one path every run takes after the first pass: a checking thread
//! turns each record into work, in order; the engine sends it (or, in a dry
//! run, decides it at once); the results thread writes it back in order.
//! Each stage holds a bounded number of rows, so memory does not grow with
//! the file.

use std::sync::{Arc, mpsc as std_mpsc};

use tokio::sync::{mpsc, watch};

use crate::check::{CheckedRow, Checker, Duplicates, EmailIndex, LiveCheck, Rows, Verdict};
use crate::engine::{self, Channels, Ended, Job, Operation, Work};
use crate::error::Fatal;
use crate::http::Transport;
use crate::model::action::Action;
use crate::model::patch::describe;
use crate::policy::SendPolicy;
use crate::signals::Interrupt;
use crate::sink::{self, Progress, ProgressMode, ResultsWriter, Summary};
use crate::table::input::Input;
use crate::table::members_log::Earlier;
use crate::table::record::Previous;
use crate::table::results::{Kind, ResultRecord, Status};

/// Rows are handed to the engine in batches of this many, so that the check
/// thread and the engine wake each other once per batch.
const BATCH: usize = 256;
/// Batches read ahead of the engine: enough to never starve it, few enough
/// not to matter.
const READ_AHEAD: usize = 4;

/// What becomes of the valid rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Handed to the engine (sent, or decided by a dry run).
    Go,
    /// Not sent, because this many rows are invalid (no `--skip-invalid`).
    Refuse { invalid: u64 },
}

/// How the rows are checked.
pub struct Checks {
    pub input: Arc<Input>,
    pub null_token: String,
    pub duplicates: Arc<Duplicates>,
    pub(crate) disposition: Disposition,
    /// The record of the run being resumed: its `updated` rows are kept
    /// as they are (checked to match the input beforehand).
    pub previous: Option<Arc<Previous>>,
    /// Hand each job its row's body as well as its JSON text, for an
    /// operation that compares it with the live state.
    pub(crate) keep_body: bool,
    /// Resolves rows that name users by `current_email`.
    pub(crate) emails: Option<Arc<EmailIndex>>,
    /// A resumed run: what the runs of its record invited (an address in
    /// the account now may be the run's own).
    pub(crate) earlier: Option<Arc<Earlier>>,
    /// Rows after the input's, already decided (a plan's removals of the
    /// users no row names), numbered on from the input's last row.
    pub(crate) extra: Vec<ResultRecord>,
    /// A comparing run's check of each valid row against its user's live
    /// state (a row it refuses is invalid).
    pub live: Option<Arc<LiveCheck>>,
    /// What the operation makes of a checked row: sent, or decided at once
    /// (and what a dry run says of it).
    pub operation: Arc<dyn Rows>,
}

/// Where the rows come from: the input, checked; or a reviewed plan.
pub enum Source {
    Rows(Checks),
    Plan(Plan),
}

/// What the run said and how it ended.
pub struct Finished {
    pub summary: Summary,
    pub ended: Ended,
    /// How messages name the results file.
    pub results_path: String,
}

/// Runs every row through the check, the engine and the writer. `sender`
/// `None` is a dry run; `total_rows` sizes the progress display.
pub async fn run<O, T>(
    source: Source,
    results: ResultsWriter,
    progress: (ProgressMode, u64),
    policy: &SendPolicy,
    sender: Option<(O, T)>,
    interrupt: Interrupt,
) -> Result<Finished, Fatal>
where
    O: Operation + 'static,
    T: Transport,
{
    let dry_run = sender.is_none();
    let planned = matches!(source, Source::Plan(_));
    let results_path = results.path().display().to_string();
    let to_stdout = results.to_stdout();
    let (work_tx, work_rx) = mpsc::channel(READ_AHEAD);
    let (report_tx, report_rx) = std_mpsc::channel();
    let (written_tx, written_rx) = watch::channel(0u64);

    let check_stage = tokio::task::spawn_blocking(move || match source {
        Source::Rows(checks) => feed(&checks, work_tx),
        Source::Plan(plan) => plan.feed(work_tx),
    });
    let progress = Progress::new(progress.0, progress.1);
    let writer = std::thread::Builder::new()
        .name("results".to_string())
        .spawn(move || sink::write_in_order(results, report_rx, written_tx, progress, !dry_run))
        .map_err(Fatal::Runtime)?;

    let channels = Channels {
        work: work_rx,
        reports: report_tx,
        written: written_rx,
    };
    // The engine runs as a task on the runtime's workers, next to the
    // requests it starts, rather than on the thread that waits for the run.
    let policy = policy.clone();
    let engine = tokio::spawn(async move {
        let mut sent = 0;
        let ended =
            engine::dispatch_counting(&policy, sender, channels, interrupt.wait(), &mut sent).await;
        (ended, sent)
    });
    let (ended, sent) = engine.await.expect("the engine does not panic");

    // Joined off the runtime's thread: a writer stuck on a reader of
    // `-o -` that stopped reading (`| less`, never scrolled) must not keep
    // the signal handler from running, so that a second Ctrl-C still quits.
    let summary = tokio::task::spawn_blocking(move || writer.join())
        .await
        .expect("the join does not panic")
        .expect("the results thread does not panic");
    // A failed writer stops the engine, which stops the check stage: its
    // error (if any) is secondary to the writer's.
    let checked = check_stage.await.expect("the check stage does not panic");
    let summary = match (summary, &ended) {
        (Ok(summary), _) => summary,
        // Requests went out, and their record could not be written: not a
        // run that "could not start".
        (Err(cause), _) if sent > 0 => {
            let next = if to_stdout {
                "the results went to standard output, so no record is left to resume from: \
                 check those users before running the file again"
            } else if planned {
                "fix what follows, then apply the plan again to another file with -o (a plan is \
                 not resumed; the rows it changed already are unchanged)"
            } else {
                "fix what follows, then run again with --resume"
            };
            return Err(Fatal::RecordLost {
                sent,
                next,
                cause: Box::new(cause),
            });
        }
        (Err(cause), _) => return Err(cause),
    };
    checked?;
    Ok(Finished {
        summary,
        ended,
        results_path,
    })
}

/// Checks every row and hands it on, in order. Stops early when the engine
/// is gone.
fn feed(checks: &Checks, work: mpsc::Sender<Vec<Work>>) -> Result<(), Fatal> {
    let mut rows = checks.input.rows()?;
    let header = rows.header().clone();
    let checker = Checker::new(&header, &checks.null_token, &checks.duplicates)
        .with_emails(checks.emails.as_deref())
        .with_earlier(checks.earlier.as_deref());
    // A row the earlier run found invalid sent nothing: an address of it
    // in the account now is not that run's doing.
    let sent_nothing = Checker::new(&header, &checks.null_token, &checks.duplicates)
        .with_emails(checks.emails.as_deref());
    let record_error = |previous: &Previous| {
        let path = previous.path().to_path_buf();
        move |source| Fatal::Record { path, source }
    };
    let mut previous = match &checks.previous {
        Some(previous) => Some((previous.cursor().map_err(record_error(previous))?, previous)),
        None => None,
    };
    let mut seq = 0;
    let mut last_row = 1;
    let mut batch = Batches::new(work);
    while let Some(raw) = rows.next_row()? {
        last_row = raw.row;
        // A row the resumed run updated is kept as recorded (checked to be
        // the same row beforehand); every other row is checked again.
        let recorded = match &mut previous {
            Some((cursor, previous)) => cursor.take(raw.row).map_err(record_error(previous))?,
            None => None,
        };
        batch.push(match recorded {
            Some(record) if record.status.kind() == Kind::Changed => Work::kept(seq, record),
            Some(record) if record.status == Status::INVALID => {
                to_work(seq, sent_nothing.check(&raw), checks)
            }
            _ => to_work(seq, checker.check(&raw), checks),
        });
        seq += 1;
        if !batch.flush_if_full() {
            return Ok(());
        }
    }
    for mut record in checks.extra.iter().cloned() {
        last_row += 1;
        record.row = last_row;
        batch.push(Work::decided(seq, record));
        seq += 1;
        if !batch.flush_if_full() {
            return Ok(());
        }
    }
    batch.finish();
    Ok(())
}

/// Rows handed to the engine a batch at a time.
struct Batches {
    work: mpsc::Sender<Vec<Work>>,
    batch: Vec<Work>,
}

impl Batches {
    fn new(work: mpsc::Sender<Vec<Work>>) -> Batches {
        Batches {
            work,
            batch: Vec::with_capacity(BATCH),
        }
    }

    fn push(&mut self, work: Work) {
        self.batch.push(work);
    }

    /// Hands a full batch on; `false` when the engine is gone.
    fn flush_if_full(&mut self) -> bool {
        if self.batch.len() < BATCH {
            return true;
        }
        let full = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.work.blocking_send(full).is_ok()
    }

    /// Hands the last rows on.
    fn finish(self) {
        if !self.batch.is_empty() {
            let _ = self.work.blocking_send(self.batch);
        }
    }
}

/// A checked row becomes a job, or an outcome decided without a request.
fn to_work(seq: u64, checked: CheckedRow, checks: &Checks) -> Work {
    let CheckedRow {
        row,
        user_id,
        user_id_text,
        verdict,
    } = checked;
    let done = |record: ResultRecord| Work::decided(seq, record);
    let live_problem = match (&verdict, user_id, &checks.live) {
        (Verdict::Send(body), Some(id), Some(live)) => live.problem(id, body),
        (Verdict::Remove, Some(id), Some(live)) => live.removal_problem(id),
        _ => None,
    };
    if let Some(problem) = live_problem {
        let mut record = ResultRecord::decided(row, user_id_text, Status::INVALID, problem);
        if let Verdict::Send(body) = &verdict {
            record.request = serde_json::to_string(body).expect("a body always serialises");
        }
        return done(record);
    }
    if let Verdict::Invalid(problems) = &verdict {
        return done(ResultRecord::decided(
            row,
            user_id_text,
            Status::INVALID,
            describe(problems),
        ));
    }
    // A valid row: the operation's to send, or to decide at once.
    let checked = CheckedRow {
        row,
        user_id,
        user_id_text,
        verdict,
    };
    if let Some((status, why)) = checks.operation.decided(&checked) {
        return done(ResultRecord::decided(
            row,
            checked.user_id_text,
            status,
            why,
        ));
    }
    let request = checks.operation.request(&checked);
    let planned = checks.operation.planned(&checked);
    let CheckedRow {
        user_id_text,
        verdict,
        ..
    } = checked;
    let (body, action) = match verdict {
        Verdict::Send(body) => (Some(body), Action::Update),
        Verdict::Invite(body) => (Some(body), Action::Invite),
        Verdict::Remove => (None, Action::Remove),
        _ => (None, Action::Update),
    };
    match (checks.disposition, user_id) {
        // No user only for a row by address in a dry run, which does
        // not read the account: it sends nothing, so no ID is needed.
        (Disposition::Go, user_id) => {
            let user_id = user_id.unwrap_or(0);
            let mut job = Job::new(seq, row, user_id, user_id_text, request);
            // An invitation is made of its row's fields.
            if checks.keep_body || action == Action::Invite {
                job.body = body.map(Box::new);
            }
            job.planned = planned;
            job.action = action;
            Work::Send(job)
        }
        (Disposition::Refuse { invalid }, _) => {
            let error = format!(
                "not sent: {invalid} {} invalid",
                if invalid == 1 { "row is" } else { "rows are" }
            );
            let mut record = ResultRecord::decided(row, user_id_text, Status::NOT_ATTEMPTED, error);
            record.request = request;
            done(record)
        }
    }
}

mod plan;
pub use plan::Plan;

#[cfg(test)]
mod tests;
