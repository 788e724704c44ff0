//! A reviewed plan as `apply --plan` takes it: checked whole (its chain
//! of `plan_check`s, every row it would change readable) before anything
//! is sent, then handed on row by row: its changes, invitations and
//! removals as jobs, the rest as the plan decided them.

use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use super::Batches;
use crate::engine::{Job, Work};
use crate::error::Fatal;
use crate::model::action::Action;
use crate::model::change::{diff, only};
use crate::model::patch::{PatchBody, describe};
use crate::table::results::{PLAN_CHECK, RecordReader, ResultRecord, Status, plan_check};

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
    /// Of the rows it would change: users it would invite, and remove.
    pub invites: u64,
    pub removals: u64,
    /// The first few removals (row, user), for the guard's message.
    pub(crate) removed: Vec<(u64, String)>,
    /// The removals no undo file could take back (the user as the plan
    /// read them, whom an invitation could not bring back): the first
    /// (row, why), and how many. A removal is sent only if the user is
    /// still so, so these are known before anything is sent.
    pub(crate) unreversible: (Option<(u64, String)>, u64),
    /// The addresses it invites (trimmed, lowercase): the users the run
    /// keeps of the account's list to compare them with.
    pub(crate) invited: std::collections::HashSet<String>,
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
        if let Ok(start) = crate::files::read_start(path, 8)
            && crate::table::sheet::looks_like_workbook(&start)
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
            .map_err(|e| refuse(format!("{e}; make a plan with: gcore-iam-bulk plan INPUT")))?
            .with_statuses(&Status::MEMBERSHIP);
        if !reader.is_plan() {
            return Err(refuse(
                "it is not the results file of `plan` (it has no planned_at column); make one \
                 with: gcore-iam-bulk plan INPUT"
                    .to_string(),
            ));
        }
        let (mut rows, mut changes, mut invalid) = (0, 0, 0);
        let (mut invites, mut removals, mut removed) = (0, 0, Vec::new());
        let mut unreversible = (None, 0);
        let mut invited = std::collections::HashSet::new();
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
                Status::WOULD_INVITE => {
                    let job = planned_invitation(0, &record).map_err(refuse)?;
                    let email = job.body.as_deref().and_then(|body| body.email.as_deref());
                    invited.extend(email.map(|email| email.trim().to_lowercase()));
                    changes += 1;
                    invites += 1;
                }
                Status::WOULD_REMOVE => {
                    let job = planned_removal(0, &record).map_err(refuse)?;
                    let user = job.before.as_deref();
                    if let Some(Err(why)) = user.map(crate::table::undo::invitation_back) {
                        unreversible.0.get_or_insert((record.row, why));
                        unreversible.1 += 1;
                    }
                    changes += 1;
                    removals += 1;
                    if removed.len() < crate::check::REMOVALS_NAMED {
                        removed.push((record.row, format!("user {}", record.user_id)));
                    }
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
            invites,
            removals,
            removed,
            unreversible,
            invited,
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
    pub(super) fn feed(self, work: mpsc::Sender<Vec<Work>>) -> Result<(), Fatal> {
        let failed = |e: String| Fatal::Record {
            path: self.path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        };
        let mut reader = RecordReader::open(&self.path)
            .map_err(|e| failed(e.to_string()))?
            .with_statuses(&Status::MEMBERSHIP);
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
            let changes = matches!(
                record.status,
                Status::WOULD_UPDATE | Status::WOULD_INVITE | Status::WOULD_REMOVE
            );
            batch.push(match record.status {
                _ if changes && self.refuse => decided(
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
                Status::WOULD_INVITE => {
                    Work::Send(planned_invitation(seq, &record).map_err(failed)?)
                }
                Status::WOULD_REMOVE => Work::Send(planned_removal(seq, &record).map_err(failed)?),
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

/// The line of the file where the record at byte `offset` starts (the
/// first is 1), counted by line feeds: after CRLF line ends (a plan saved
/// again on Windows) a record's offset is the line feed after the carriage
/// return that ended the one before, and the csv crate's own count is one
/// short.
fn line_at(path: &Path, offset: u64) -> u64 {
    match crate::files::read_start(path, offset + 1) {
        Ok(before) => 1 + before.iter().filter(|&&byte| byte == b'\n').count() as u64,
        Err(_) => 0,
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
        let cells: Vec<&str> = record.iter().collect();
        let Some((check, row)) = cells.split_last() else {
            continue;
        };
        let expected = plan_check(&previous, row.iter().copied());
        if *check != expected {
            let line = line_at(path, record.position().map_or(0, |p| p.byte()));
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

/// A job of the plan's row (see [`Job::from_plan`]).
fn plan_job(seq: u64, row: u64, user_id: u64, user_id_text: String, request: String) -> Job {
    let mut job = Job::new(seq, row, user_id, user_id_text, request);
    job.from_plan = true;
    job
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
    let mut job = plan_job(seq, row, user_id, record.user_id.clone(), request);
    job.body = Some(Box::new(body));
    job.before = Some(before);
    job.changes = planned;
    Ok(job)
}

/// The job of a user the plan would invite: the row's fields, as the plan
/// checked them.
fn planned_invitation(seq: u64, record: &ResultRecord) -> Result<Job, String> {
    let row = record.row;
    let bad = |why: &str| format!("row {row} {why}; was the file edited?");
    let json: serde_json::Value =
        serde_json::from_str(&record.request).map_err(|_| bad("has a request that is not JSON"))?;
    let body = PatchBody::from_json_accepting(&json, |_, _| true).map_err(|problems| {
        bad(&format!(
            "has an invitation that is not valid ({})",
            describe(&problems)
        ))
    })?;
    if body.email.is_none() || body.groups.as_ref().is_none_or(Vec::is_empty) {
        return Err(bad("has an invitation without an address or a group"));
    }
    let mut job = plan_job(seq, row, 0, String::new(), record.request.clone());
    job.body = Some(Box::new(body));
    job.action = Action::Invite;
    Ok(job)
}

/// The job of a user the plan would remove: the user as the plan read
/// them (removed only if still so).
fn planned_removal(seq: u64, record: &ResultRecord) -> Result<Job, String> {
    let row = record.row;
    let bad = |why: &str| format!("row {row} {why}; was the file edited?");
    let user_id: u64 = record.user_id.parse().map_err(|_| bad("has no user ID"))?;
    let before = record
        .user
        .clone()
        .ok_or_else(|| bad("does not hold the user the plan read"))?;
    let mut job = plan_job(seq, row, user_id, record.user_id.clone(), String::new());
    job.before = Some(before);
    job.action = Action::Remove;
    Ok(job)
}
