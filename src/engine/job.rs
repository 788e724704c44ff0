//! A job: a valid row on its way through the operation's requests; the
//! work the check stage hands the engine; and what an answer means for a
//! job (its [`Step`]).

use crate::model::action::Action;
use crate::model::api::User;
use crate::model::change::Change;
use crate::model::patch::PatchBody;
use crate::policy::Mark;
use crate::table::results::{ResultRecord, Status};

use super::events::Outcome;

/// A valid row on its way through the operation's requests.
#[derive(Debug, Clone)]
pub struct Job {
    /// 0-based position among the input's records: the writer's order.
    pub seq: u64,
    /// What the job is about: a row and its user, or a page of a list.
    pub subject: Subject,
    /// The `user_id` cell as written (a page's: its offset), for the results.
    pub(crate) user_id_text: String,
    /// The JSON body of the row's change, as the results show it.
    pub request: String,
    /// Which of the operation's requests comes next (0: the first).
    pub step: u32,
    /// Requests sent for this job, every step together (the results' `attempts`).
    pub attempts: u32,
    /// Attempts of the current step: what the retry policy counts.
    pub(crate) step_attempts: u32,
    pub throttled: u32,
    /// The row's last throttle, for telling one about the row alone from
    /// one about the run's rate (see `policy::slowdown`).
    pub(crate) mark: Mark,
    /// Throttles the row waited out with the run (not among its retries).
    pub(crate) waited: u32,
    /// Attempts that were retries of an earlier one (of any step).
    pub retries: u32,
    /// Attempts that never left this machine: no connection could be made,
    /// or the server's certificate was refused before the request went.
    pub(crate) unsent: u32,
    /// The status and error of the last retryable attempt, for the results
    /// when the job is not retried after all.
    pub(crate) last_failure: Option<(Option<u16>, String)>,
    /// The user's state as an earlier step read it.
    pub before: Option<Box<User>>,
    /// The row's change, for operations that compare it with the live
    /// state (kept only for them: see `Checks::keep_body`).
    pub body: Option<Box<PatchBody>>,
    /// What an earlier step found the row changes.
    pub changes: Vec<Change>,
    /// Whether [`Operation::decide`](super::Operation::decide) has seen the job.
    pub(crate) decided: bool,
    /// What a dry run says of the job (the operation's word: see
    /// [`crate::check::Rows::planned`]).
    pub planned: Status,
    /// What the row does to the account: its `action` (update, invite,
    /// remove).
    pub action: Action,
    /// When the state the row was compared with was read, when it came
    /// from a page of the account's list (an operation that checks, just
    /// before it sends, that it is still recent: `apply --plan`).
    pub(crate) page_read_at: Option<std::time::Instant>,
    /// What an earlier step of the job already did to the account (an
    /// invitation answered: `invited`): the row says so whatever becomes
    /// of the steps after it (a stop, a failure).
    pub landed: Option<Status>,
    /// Whether an earlier attempt of the current step may have been
    /// carried out (a timeout, a dropped connection, a 5xx), not only
    /// refused before it arrived (a 429, no connection).
    pub maybe_arrived: bool,
    /// A reviewed plan's row (`apply --plan`): what is left of it is done
    /// by a new plan, not by `--resume`.
    pub(crate) from_plan: bool,
}

impl Job {
    pub fn new(seq: u64, row: u64, user_id: u64, user_id_text: String, request: String) -> Job {
        Job {
            seq,
            subject: Subject::Row { row, user_id },
            user_id_text,
            request,
            step: 0,
            attempts: 0,
            step_attempts: 0,
            throttled: 0,
            mark: Mark::default(),
            waited: 0,
            retries: 0,
            unsent: 0,
            last_failure: None,
            before: None,
            body: None,
            changes: Vec::new(),
            decided: false,
            planned: Status::WOULD_UPDATE,
            action: Action::Update,
            page_read_at: None,
            landed: None,
            maybe_arrived: false,
            from_plan: false,
        }
    }
}

impl Job {
    /// The job of the page at `offset` of a list, `number` in its order
    /// (the first is 1).
    pub(crate) fn page(seq: u64, number: u64, offset: u64) -> Job {
        let mut job = Job::new(seq, number, 0, offset.to_string(), String::new());
        job.subject = Subject::Page { number, offset };
        job
    }

    /// The number messages give the job: its row, or its page's.
    pub fn row(&self) -> u64 {
        match self.subject {
            Subject::Row { row, .. } => row,
            Subject::Page { number, .. } => number,
        }
    }

    /// The user is known now (an invitation's answer named them): the
    /// results row and the next requests name them.
    pub fn set_user(&mut self, user_id: u64) {
        if let Subject::Row { row, .. } = self.subject {
            self.subject = Subject::Row { row, user_id };
            self.user_id_text = user_id.to_string();
        }
    }

    /// The row's user (0 for a page).
    pub fn user_id(&self) -> u64 {
        match self.subject {
            Subject::Row { user_id, .. } => user_id,
            Subject::Page { .. } => 0,
        }
    }

    /// The page's first user in the list (0 for a row).
    pub fn offset(&self) -> u64 {
        match self.subject {
            Subject::Page { offset, .. } => offset,
            Subject::Row { .. } => 0,
        }
    }
}

/// What a job is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A row of the input (`row`: its number as a spreadsheet shows it)
    /// and the user it names.
    Row { row: u64, user_id: u64 },
    /// A page of a list: `number` in the list's order (1 first), and the
    /// `offset` of its first user.
    Page { number: u64, offset: u64 },
}

/// What the check stage hands the engine, in input order.
#[derive(Debug)]
pub enum Work {
    Send(Job),
    /// Already decided (skipped, invalid, not attempted): only written.
    Done(Outcome),
}

impl Work {
    /// A row decided without a request: only written.
    pub(crate) fn decided(seq: u64, record: ResultRecord) -> Work {
        Work::Done(Outcome {
            seq,
            throttled: 0,
            retries: 0,
            changes: Vec::new(),
            record,
            kept: false,
            landed: None,
        })
    }

    /// A row an earlier run did, kept as recorded (`--resume`).
    pub(crate) fn kept(seq: u64, record: ResultRecord) -> Work {
        let mut work = Work::decided(seq, record);
        if let Work::Done(outcome) = &mut work {
            outcome.kept = true;
        }
        work
    }

    pub(super) fn seq(&self) -> u64 {
        match self {
            Work::Send(job) => job.seq,
            Work::Done(outcome) => outcome.seq,
        }
    }
}

/// What a successful answer means for a job.
#[derive(Debug)]
pub enum Step {
    /// The job is finished.
    Done {
        status: Status,
        error: String,
        /// What the row changes (or would change) in the user's state.
        changes: Vec<Change>,
        user: Option<Box<User>>,
    },
    /// Send the operation's next request for this job; the operation has
    /// advanced `job.step` (and kept what it needs, as `job.before`).
    Next,
    /// Something every row needs is broken (the undo file cannot be
    /// written): this row is not sent, and the run stops as after Ctrl-C.
    Halt { error: String },
    /// The job is finished with `status` and `error`, and the run stops
    /// as after [`Step::Halt`]: what the request did is recorded (a user
    /// invited whose way back the undo file could not take).
    DoneThenHalt { status: Status, error: String },
}
