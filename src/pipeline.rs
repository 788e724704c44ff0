//! The one path every run takes after the first pass: a checking thread
//! turns each record into work, in order; the engine sends it (or, in a dry
//! run, decides it at once); the results thread writes it back in order.
//! Each stage holds a bounded number of rows, so memory does not grow with
//! the file.

use std::sync::{Arc, mpsc as std_mpsc};

use tokio::sync::{mpsc, watch};

use std::path::{Path, PathBuf};

use crate::check::{CheckedRow, Checker, Duplicates, EmailIndex, LiveCheck, Rows, Verdict};
use crate::engine::{self, Channels, Ended, Job, Operation, Work};
use crate::error::Fatal;
use crate::http::Transport;
use crate::model::action::Action;
use crate::model::change::{diff, only};
use crate::model::patch::PatchBody;
use crate::model::patch::describe;
use crate::policy::SendPolicy;
use crate::signals::Interrupt;
use crate::sink::{self, Progress, ProgressMode, ResultsWriter, Summary};
use crate::table::input::Input;
use crate::table::record::Previous;
use crate::table::results::{Kind, ResultRecord, Status};
use crate::table::results::{PLAN_CHECK, RecordReader, plan_check};

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
    /// A resumed run (an invitation's address in the account now may be
    /// the run's own).
    pub(crate) resumed: bool,
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

/// A plan's results file, as `apply --plan` takes it: checked whole before
/// anything is sent, then read again row by row.
pub struct Plan {
    path: PathBuf,
    /// Rows in the plan.
    pub rows: u64,
    /// Rows it would change.
    pub changes: u64,
    /// Rows the plan found invalid.
    pub invalid: u64,
    /// When the plan read the account (its `planned_at`).
    pub planned_at: Option<std::time::SystemTime>,
    refuse: bool,
}

impl Plan {
    /// Opens the plan at `path` and checks every row: it must be the whole
    /// results file of a plan, every row read (none `not_attempted`), and
    /// every row it would change readable (its request and the user it
    /// compared with). Anything else is refused, naming the row.
    pub fn open(path: &Path) -> Result<Plan, Fatal> {
        let refuse = |why: String| {
            Fatal::Usage(format!(
                "{} cannot be applied as a plan: {why}",
                path.display()
            ))
        };
        let mut start = [0u8; 8];
        let read = std::fs::File::open(path)
            .and_then(|mut file| std::io::Read::read(&mut file, &mut start));
        if let Ok(read) = read
            && crate::table::sheet::looks_like_workbook(&start[..read])
        {
            return Err(refuse(
                "it is a workbook; a plan is the CSV file that plan wrote (saved by a \
                 spreadsheet, it is no longer the plan that was reviewed): give that file, or \
                 make a plan again with: gcore-iam-bulk plan INPUT"
                    .to_string(),
            ));
        }
        let planned_at = verify_chain(path).map_err(refuse)?;
        let mut reader = RecordReader::open(path)
            .map_err(|e| refuse(format!("{e}; make a plan with: gcore-iam-bulk plan INPUT")))?;
        if !reader.is_plan() {
            return Err(refuse(
                "it is not the results file of `plan` (it has no planned_at column); make one \
                 with: gcore-iam-bulk plan INPUT"
                    .to_string(),
            ));
        }
        let (mut rows, mut changes, mut invalid) = (0, 0, 0);
        while let Some(record) = reader.next_record() {
            let record = record.map_err(refuse)?;
            rows += 1;
            match record.status {
                Status::NOT_ATTEMPTED => {
                    return Err(refuse(format!(
                        "row {} was not read by the plan (it was cut short); run plan again",
                        record.row
                    )));
                }
                Status::WOULD_UPDATE => {
                    planned_job(0, &record).map_err(refuse)?;
                    changes += 1;
                }
                Status::INVALID => invalid += 1,
                Status::UNCHANGED | Status::SKIPPED | Status::FAILED => {}
                other => {
                    return Err(refuse(format!(
                        "row {} is {}, which no plan writes; was the file edited?",
                        record.row,
                        other.as_str()
                    )));
                }
            }
        }
        if reader.torn() {
            return Err(refuse(
                "its last line is cut short (the plan did not finish); run plan again".to_string(),
            ));
        }
        Ok(Plan {
            path: path.to_path_buf(),
            rows,
            changes,
            invalid,
            planned_at,
            refuse: false,
        })
    }

    /// Sends nothing when the plan has invalid rows: its would_update rows
    /// become not_attempted (as `apply` does without `--skip-invalid`).
    pub fn refuse(mut self) -> Plan {
        self.refuse = true;
        self
    }

    /// Hands every row on, in order: the rows it would change as jobs, the
    /// others as the plan decided them.
    fn feed(self, work: mpsc::Sender<Vec<Work>>) -> Result<(), Fatal> {
        let failed = |e: String| Fatal::Record {
            path: self.path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        };
        let mut reader = RecordReader::open(&self.path).map_err(|e| failed(e.to_string()))?;
        let mut seq = 0;
        let mut batch = Batches::new(work);
        while let Some(record) = reader.next_record() {
            let record = record.map_err(failed)?;
            let decided = |status, error: String| {
                let mut done =
                    ResultRecord::decided(record.row, record.user_id.clone(), status, error);
                done.request = record.request.clone();
                Work::decided(seq, done)
            };
            batch.push(match record.status {
                Status::WOULD_UPDATE if self.refuse => decided(
                    Status::NOT_ATTEMPTED,
                    format!(
                        "not sent: {} {} invalid in the plan",
                        self.invalid,
                        if self.invalid == 1 {
                            "row is"
                        } else {
                            "rows are"
                        }
                    ),
                ),
                Status::WOULD_UPDATE => Work::Send(planned_job(seq, &record).map_err(failed)?),
                Status::FAILED => decided(
                    Status::NOT_ATTEMPTED,
                    format!(
                        "not sent: the plan could not read this user ({})",
                        record.error
                    ),
                ),
                status => decided(status, record.error.clone()),
            });
            seq += 1;
            if !batch.flush_if_full() {
                return Ok(());
            }
        }
        batch.finish();
        Ok(())
    }
}

/// Checks that the plan is as `plan` wrote it: every row's `plan_check`
/// matches its cells and the row before, so an edit, a row added, removed
/// or moved is refused. `Ok`: when the plan read the account, as its
/// `planned_at` says.
fn verify_chain(path: &Path) -> Result<Option<std::time::SystemTime>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(std::io::BufReader::new(file));
    let header = reader.headers().map_err(|e| e.to_string())?.clone();
    let names: Vec<&str> = header.iter().collect();
    if names.len() == 1 && names[0].contains(';') {
        return Err(
            "it was saved again with semicolons (by a spreadsheet?); apply the plan \
                    file as plan wrote it, or plan again"
                .to_string(),
        );
    }
    if names.last() != Some(&PLAN_CHECK) {
        return Err(
            "it is not the results file of `plan` (it has no plan_check column at \
                    the end); make one with: gcore-iam-bulk plan INPUT"
                .to_string(),
        );
    }
    // The header starts the chain; every row's planned_at says how many
    // rows the plan has, so rows removed at the end are seen too.
    let mut previous = plan_check("", header.iter());
    let mut rows = 0u64;
    let mut planned_rows = None;
    let mut planned_at = None;
    for record in reader.records() {
        let record = record.map_err(|e| e.to_string())?;
        let line = record.position().map_or(0, |p| p.line());
        let cells: Vec<&str> = record.iter().collect();
        let Some((check, row)) = cells.split_last() else {
            continue;
        };
        let expected = plan_check(&previous, row.iter().copied());
        if *check != expected {
            return Err(format!(
                "line {line} (row {}) is not as plan wrote it (its plan_check does not \
                 match: a cell was edited, or a row added, removed or moved); a plan is applied \
                 as plan wrote it: plan again",
                row.first().filter(|cell| !cell.is_empty()).unwrap_or(&"?")
            ));
        }
        previous = expected;
        rows += 1;
        if planned_rows.is_none() {
            let at_and_count = row.last().and_then(|at| at.rsplit_once("; "));
            planned_at = at_and_count.and_then(|(at, _)| httpdate::parse_http_date(at).ok());
            planned_rows = at_and_count
                .and_then(|(_, count)| count.strip_suffix(" rows"))
                .and_then(|count| count.parse::<u64>().ok());
        }
    }
    match planned_rows {
        Some(planned) if planned != rows => Err(format!(
            "it holds {rows} rows, and plan wrote {planned}: rows were removed; a plan is \
             applied as plan wrote it: plan again"
        )),
        None if rows > 0 => {
            Err("its planned_at does not say how many rows the plan has; plan again".to_string())
        }
        _ => Ok(planned_at),
    }
}

/// The job of a row the plan would change: its body, the user as the plan
/// read it, the changes it showed, and a request of those changes alone.
fn planned_job(seq: u64, record: &ResultRecord) -> Result<Job, String> {
    let row = record.row;
    let bad = |why: &str| format!("row {row} {why}; was the file edited?");
    let user_id: u64 = record.user_id.parse().map_err(|_| bad("has no user ID"))?;
    let json: serde_json::Value =
        serde_json::from_str(&record.request).map_err(|_| bad("has a request that is not JSON"))?;
    // The API's own values (a row `verbatim` at plan time: `EN`, a custom
    // group) are taken back as the check took them: the plan's chain of
    // checks has already shown the row is as plan wrote it.
    let body = PatchBody::from_json_accepting(&json, |_, _| true).map_err(|problems| {
        bad(&format!(
            "has a request that is not valid ({})",
            describe(&problems)
        ))
    })?;
    let before = record
        .user
        .clone()
        .ok_or_else(|| bad("does not hold the user the plan read"))?;
    let planned = diff(&body, &before);
    if planned.is_empty() {
        return Err(bad("would change nothing in the user the plan read"));
    }
    let request = serde_json::to_string(&only(&body, &planned)).expect("a body always serialises");
    let mut job = Job::new(seq, row, user_id, record.user_id.clone(), request);
    job.body = Some(Box::new(body));
    job.before = Some(before);
    job.changes = planned;
    Ok(job)
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
        .resumed(checks.resumed);
    let record_error = |previous: &Previous| {
        let path = previous.path().to_path_buf();
        move |source| Fatal::Record { path, source }
    };
    let mut previous = match &checks.previous {
        Some(previous) => Some((previous.cursor().map_err(record_error(previous))?, previous)),
        None => None,
    };
    let mut seq = 0;
    let mut batch = Batches::new(work);
    while let Some(raw) = rows.next_row()? {
        // A row the resumed run updated is kept as recorded (checked to be
        // the same row beforehand); every other row is checked again.
        let kept = match &mut previous {
            Some((cursor, previous)) => cursor
                .take(raw.row)
                .map_err(record_error(previous))?
                .filter(|record| record.status.kind() == Kind::Changed),
            None => None,
        };
        batch.push(match kept {
            Some(record) => Work::decided(seq, record),
            None => to_work(seq, checker.check(&raw), checks),
        });
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

#[cfg(test)]
mod tests;
