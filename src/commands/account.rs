//! Reading the account around a run: the first pass over the input (and
//! the account's list, to resolve addresses), the users a comparing run
//! needs, as few requests as it takes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::*;
use crate::model::action::Action;
use crate::table::members_log::Earlier;

/// What the first pass hands on: the input, what it found, and the index
/// that resolves `current_email` (when the input has that column and the
/// run reads the account).
pub(crate) struct FirstPass {
    pub(super) input: Arc<Input>,
    pub(super) preflight: Preflight,
    pub(super) emails: Option<Arc<EmailIndex>>,
    /// The account's users, when they were read to resolve addresses.
    pub(super) users: Option<AccountList>,
}

/// The account's users as a whole read of its list gave them.
pub(super) struct AccountList {
    pub(super) users: Vec<User>,
    /// Users whose list entry leaves out a field a row can set, with the
    /// fields: their values for those fields are unknown, not null.
    pub(super) partial: BTreeMap<u64, Vec<&'static str>>,
}

/// Opens the input (spooling standard input) and reads it once, off the
/// runtime's workers; says what the user should know before anything runs.
/// `count_invalid`: a run that may send needs to know before it starts.
/// `account`: where to read the user list when rows name users by
/// `current_email` (a dry run passes `None`: addresses stay unresolved).
pub(super) async fn first_pass(
    settings: &InputSettings,
    count_invalid: bool,
    quiet: bool,
    interrupt: &Interrupt,
    account: Option<(&Client, &SendPolicy)>,
    earlier: Option<Arc<Earlier>>,
) -> Result<FirstPass, Fatal> {
    // A pipe may never end: a signal while it is read ends the process.
    interrupt.reading_input(true);
    let opened = {
        let settings = settings.clone();
        tokio::task::spawn_blocking(move || Input::open(&settings)).await
    };
    interrupt.reading_input(false);
    let input = opened.expect("reading the input does not panic")?;
    if !quiet {
        for note in input.notes()? {
            // A note may quote a cell or a sheet's name.
            crate::say!("note: {}", crate::visible::visible(&note));
        }
    }
    let header = input.rows()?.header().clone();
    // An `action` column alone (every undo file has one) is no reason to
    // read the account: only a row that invites is.
    let (input, invites) = match header.action {
        Some(column) => tokio::task::spawn_blocking(move || {
            any_invitation(&input, column).map(|invites| (input, invites))
        })
        .await
        .expect("reading the input does not panic")?,
        None => (input, false),
    };
    let by_email = header.current_email.is_some() || invites;
    let users = match account {
        Some((client, policy)) if by_email => {
            let why = match header.current_email {
                Some(_) => "the rows name users by current_email",
                None => "the rows invite users, whose addresses must be new to the account",
            };
            let mut list = whole_list(client, policy, interrupt, quiet, why).await?;
            // An address the list leaves out is read on its own: the index
            // must hold every user's.
            let unaddressed: Vec<u64> = list
                .partial
                .iter()
                .filter(|(_, fields)| fields.contains(&"email"))
                .map(|(id, _)| *id)
                .collect();
            if !unaddressed.is_empty() {
                if !quiet {
                    crate::say!(
                        "the account's list leaves out the address of {}: reading each with a GET",
                        crate::sink::count(unaddressed.len() as u64, "user", "users")
                    );
                }
                let mode = ProgressMode::detect(quiet, false, false);
                let (users, partial) = (&mut list.users, &mut list.partial);
                list::fill_in(client, policy, interrupt, mode, users, partial, unaddressed)
                    .await?
                    .map_err(|problem| {
                        Fatal::Usage(format!(
                            "{why}, and the list leaves out addresses that could not be read                              one by one ({problem}); nothing was sent"
                        ))
                    })?;
            }
            Some(list)
        }
        _ => None,
    };
    let emails = users
        .as_ref()
        .map(|list| Arc::new(EmailIndex::new(&list.users)));
    let null_token = settings.null_token.clone();
    let index = emails.clone();
    let (input, preflight) = tokio::task::spawn_blocking(move || {
        let preflight = Preflight::scan_with(
            &input,
            &null_token,
            count_invalid,
            index.as_deref(),
            earlier.as_deref(),
        )?;
        Ok::<_, Fatal>((input, preflight))
    })
    .await
    .expect("the first pass does not panic")?;
    if !quiet {
        sink::note_ignored_columns(&preflight.ignored);
        if preflight.rows == 0 {
            sink::note_no_rows(&input.display_path());
        }
    }
    Ok(FirstPass {
        input: Arc::new(input),
        preflight,
        emails,
        users,
    })
}

/// Whether a row of `input` invites (its `action` cell, in `column`).
fn any_invitation(input: &Input, column: usize) -> Result<bool, Fatal> {
    let mut rows = input.rows()?;
    while let Some(raw) = rows.next_row()? {
        let cell = raw.cells.get(column).unwrap_or_default();
        let cell = String::from_utf8_lossy(cell);
        if Action::parse(&cell) == Ok(Action::Invite) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Every user of the account, read by pages (again while the account
/// changes during the read, up to [`list::LIST_READS`] reads); a list that
/// cannot be read whole stops the run before anything is sent (`why` says
/// what it was for): an address missing from it would be reported as
/// unknown.
pub(super) async fn whole_list(
    client: &Client,
    policy: &SendPolicy,
    interrupt: &Interrupt,
    quiet: bool,
    why: &str,
) -> Result<AccountList, Fatal> {
    if !quiet {
        crate::say!("reading the account's users: {why}");
    }
    let mode = ProgressMode::detect(quiet, false, false);
    let started = std::time::Instant::now();
    let how = list::Reading {
        page_size: LIST_PAGE_SIZE,
        mode,
        reads: list::LIST_READS,
        quiet,
    };
    let listed = list::list_users(client, policy, interrupt, how, None).await?;
    // A read a signal cut short is said as stopped, not as read.
    stopped_by_a_signal(interrupt)?;
    say_list_read(&listed, started, quiet);
    match (&listed.ended, &listed.problem) {
        (Ended::Finished, None) => {}
        (_, problem) => {
            return Err(Fatal::Usage(format!(
                "{why}, and the account's user list could not be read whole ({}); nothing was sent",
                problem
                    .as_ref()
                    .map_or_else(|| "stopped".to_string(), ToString::to_string)
            )));
        }
    }
    if listed.without_id > 0 && !quiet {
        crate::say!(
            "note: {} of the account's list {} no id; {} cannot be named by current_email",
            listed.without_id,
            if listed.without_id == 1 {
                "entry has"
            } else {
                "entries have"
            },
            if listed.without_id == 1 {
                "that user"
            } else {
                "those users"
            },
        );
    }
    Ok(AccountList {
        users: listed.users,
        partial: listed.partial,
    })
}

/// A Ctrl-C or SIGTERM while the account's list was read stops the run
/// with its exit code (130, 143), nothing sent.
pub(super) fn stopped_by_a_signal(interrupt: &Interrupt) -> Result<(), Fatal> {
    match interrupt.signal() {
        Some(signal) => Err(Fatal::Stopped {
            signal,
            what: "while the account's list was read",
        }),
        None => Ok(()),
    }
}

/// The line that says what a read of the list took (its requests are not
/// in the run's summary).
pub(super) fn say_list_read(listed: &list::Listed, started: std::time::Instant, quiet: bool) {
    note_reads(
        listed.tally.pages + listed.tally.retries,
        listed.tally.retries,
        listed.tally.throttled,
    );
    note_read_time(started.elapsed());
    if !quiet {
        crate::say!(
            "read the account's list: {}, {}, {} retries, {:.1} s",
            crate::sink::count(listed.users.len() as u64, "user", "users"),
            crate::sink::count(listed.tally.pages, "page", "pages"),
            listed.tally.retries,
            started.elapsed().as_secs_f64()
        );
    }
}

/// The account's users as listed, for a run that compares rows with them,
/// when reading the list takes fewer requests than a GET per row (the first
/// page's count tells, and is the list's first page; rows that name users
/// by address had the list read already). `None`: a GET per row, also when
/// the list is beyond the bounds or changes while it is read. A user whose
/// list entry leaves out a field a row can set is left out of the snapshot:
/// its row reads it with a GET.
pub(super) async fn live_snapshot(
    users: Option<AccountList>,
    preflight: &Preflight,
    client: &Client,
    policy: &SendPolicy,
    interrupt: &Interrupt,
    quiet: bool,
) -> Result<Option<Arc<HashMap<u64, User>>>, Fatal> {
    // Rows known to be invalid are never compared (a plan does not count them).
    let valid = preflight.rows - preflight.invalid;
    let list = live_list(users, valid, client, policy, interrupt, quiet).await?;
    Ok(list.map(|AccountList { users, partial }| {
        Arc::new(
            users
                .into_iter()
                .filter_map(|user| Some((user.id?, user)))
                .filter(|(id, _)| !partial.contains_key(id))
                .collect(),
        )
    }))
}

/// The account's users as listed, in the list's order, when reading the
/// list takes fewer requests than a GET for each of `valid` rows (see
/// [`live_snapshot`]); `None`: a GET per row. Says which users the list
/// leaves a field out of.
pub(super) async fn live_list(
    users: Option<AccountList>,
    valid: u64,
    client: &Client,
    policy: &SendPolicy,
    interrupt: &Interrupt,
    quiet: bool,
) -> Result<Option<AccountList>, Fatal> {
    let instead = "reading each row's user with one GET for each row instead";
    let list = match users {
        Some(list) => Some(list),
        // One row or two: no list can take fewer requests.
        None if valid <= 2 => None,
        None => match list::first_page(client, policy, LIST_PAGE_SIZE, interrupt).await? {
            None => None,
            Some(first) => {
                // The count's request: the list's read counts it with its
                // pages when the list is read; here when it is not.
                let count_only = || note_reads(1, 0, 0);
                let (count, per_page) = (first.count, first.results.len() as u64);
                match list::pages_for(count, per_page) {
                    Err(problem) => {
                        count_only();
                        if !quiet {
                            crate::say!("note: {problem}; {instead}");
                        }
                        None
                    }
                    // The first page is read: the count's request is the first of the pages.
                    Ok(pages) if pages < valid => {
                        if !quiet {
                            crate::say!(
                                "reading the account's {count} users by pages ({} with the \
                                 count) rather than one GET for each of {valid} rows",
                                crate::sink::count(pages, "request", "requests")
                            );
                        }
                        let mode = ProgressMode::detect(quiet, false, false);
                        let started = std::time::Instant::now();
                        let how = list::Reading {
                            page_size: LIST_PAGE_SIZE,
                            mode,
                            reads: 1,
                            quiet,
                        };
                        let listed =
                            list::list_users(client, policy, interrupt, how, Some(first)).await?;
                        stopped_by_a_signal(interrupt)?;
                        say_list_read(&listed, started, quiet);
                        match listed.problem {
                            None if listed.ended == Ended::Finished => Some(AccountList {
                                users: listed.users,
                                partial: listed.partial,
                            }),
                            // A read that stopped (Ctrl-C, a refused key) or
                            // lost pages stops the run, as before it started.
                            None | Some(list::ListProblem::Unread(_)) => {
                                return Err(Fatal::Usage(format!(
                                    "the run compares rows with the account's list, and the \
                                     account's user list could not be read whole ({}); nothing \
                                     was sent",
                                    listed
                                        .problem
                                        .as_ref()
                                        .map_or_else(|| "stopped".to_string(), ToString::to_string)
                                )));
                            }
                            // GETs see each user as it is: the run goes on.
                            Some(problem) => {
                                if !quiet {
                                    crate::say!("note: {problem}; {instead}");
                                }
                                None
                            }
                        }
                    }
                    Ok(_) => {
                        count_only();
                        None
                    }
                }
            }
        },
    };
    if let Some(AccountList { partial, .. }) = &list
        && !partial.is_empty()
        && !quiet
    {
        crate::say!(
            "note: the account's list leaves out {} of {}: a row naming one of them reads it \
             with a GET",
            left_out_fields(partial),
            crate::sink::count(partial.len() as u64, "user", "users"),
        );
    }
    Ok(list)
}

/// The users of the input's valid rows, for a run that compares them with
/// the live state before it sends: those of `snapshot` (the account's
/// list, when it was read) that hold every field their rows change, and
/// a GET for each other one. A user that cannot be read is left out: its
/// row reads it again, and says why it could not.
pub(super) async fn read_rows_users(
    input: &Arc<Input>,
    null_token: &str,
    emails: Option<Arc<EmailIndex>>,
    snapshot: Option<Arc<HashMap<u64, User>>>,
    (client, policy): (&Client, &SendPolicy),
    interrupt: &Interrupt,
    quiet: bool,
) -> Result<HashMap<u64, User>, Fatal> {
    let users = snapshot
        .map(|snapshot| Arc::try_unwrap(snapshot).unwrap_or_else(|shared| (*shared).clone()))
        .unwrap_or_default();
    let (input, null_token) = (Arc::clone(input), null_token.to_string());
    let (to_read, users) = tokio::task::spawn_blocking(move || {
        let ids = crate::check::LiveCheck::to_read(&input, &null_token, emails.as_deref(), &users);
        (ids, users)
    })
    .await
    .expect("checking the rows does not panic");
    let (to_read, mut users) = (to_read?, users);
    if to_read.is_empty() {
        return Ok(users);
    }
    if !quiet {
        crate::say!(
            "reading {} before anything is sent, to check every row against the live state",
            crate::sink::count(to_read.len() as u64, "user", "users")
        );
    }
    let mode = ProgressMode::detect(quiet, false, false);
    let read = users::read_users(client, policy, to_read, &mut users, interrupt, mode).await;
    // Ctrl-C or SIGTERM: 130 or 143, as at any moment of a run.
    if let Some(signal) = interrupt.signal() {
        return Err(Fatal::Stopped {
            signal,
            what: "while the users were read before sending",
        });
    }
    read.map_err(|why| {
        Fatal::Usage(format!(
            "the users could not be read before sending ({why}); nothing was sent"
        ))
    })?;
    Ok(users)
}

/// `phone and groups`: the fields the list leaves out of some user.
pub(super) fn left_out_fields(partial: &BTreeMap<u64, Vec<&'static str>>) -> String {
    let mut fields: Vec<&str> = partial.values().flatten().copied().collect();
    fields.sort_unstable();
    fields.dedup();
    match fields.split_last() {
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Users asked for per page when a run reads the account's list.
pub(super) const LIST_PAGE_SIZE: u64 = 500;

/// What the reads of the account before the rows took (its list, the
/// count): the run's summary counts them with its rows' own requests, so
/// that the 429s of a plan's list read reach `--metrics-file` too.
static READS: std::sync::Mutex<[u64; 3]> = std::sync::Mutex::new([0; 3]);

/// Counts `requests` (retries included), `retries` and `throttled` of a
/// read before the rows.
pub(super) fn note_reads(requests: u64, retries: u64, throttled: u64) {
    let mut reads = READS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    reads[0] += requests;
    reads[1] += retries;
    reads[2] += throttled;
}

/// What the reads before the rows took: requests, retries, 429s.
pub(super) fn reads() -> [u64; 3] {
    *READS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How long the reads of the account's list before the rows took.
static READ_TIME: std::sync::Mutex<std::time::Duration> =
    std::sync::Mutex::new(std::time::Duration::ZERO);

pub(super) fn note_read_time(took: std::time::Duration) {
    *READ_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) += took;
}

pub(super) fn read_time() -> std::time::Duration {
    *READ_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
