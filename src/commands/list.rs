//! Reading the account's whole user list, by the pages of `GET /iam/users`
//! through the one engine (rate, retries, pause, stops): what `export`
//! writes, and what resolves rows that name users by `current_email`.
//!
//! A read is bounded before it starts: the first page's count and length
//! say how many pages follow, and a count beyond [`MAX_LIST_USERS`] or a
//! read of more than [`MAX_LIST_PAGES`] pages is refused before anything
//! grows with the count. A read is checked when it ends: pages overlap by
//! one user, so that each page must begin with the user the page before it
//! ended with; every page must give the first page's count and hold as many
//! users as it is due; no user may be listed twice. While the list keeps
//! its order (by ID, or by when users were added), a read that passes holds
//! every user who was in the account throughout the read, each once; a
//! user added or removed meanwhile may be in it or not. A read that fails
//! the check says why, and the caller reads again or does without.

mod fetch;

use fetch::*;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::mpsc as std_mpsc;

use tokio::sync::{mpsc, watch};

use crate::engine::{self, Channels, Ended, Job, Operation, Subject, Work};
use crate::error::Fatal;
use crate::http::Client;
use crate::model::api::{User, UserPage};
use crate::operations::list::{ListPages, ReadUsers};
use crate::policy::SendPolicy;
use crate::signals::Interrupt;
use crate::sink::{Progress, ProgressMode, Report};
use crate::table::results::Status;

/// The most users a read of the list accepts. No account this tool serves
/// has more (the sandbox holds at most as many, `sandbox::MAX_USERS`); a
/// larger count is a broken answer, and believing it would have the tool
/// plan pages, and memory, for users that are not there.
pub(super) const MAX_LIST_USERS: u64 = 1_000_000;

/// The most pages one read of the list takes (a million users in pages of
/// 500 is 2,005): beyond it the API answers pages too small to read the
/// list in a reasonable time.
pub(super) const MAX_LIST_PAGES: u64 = 100_000;

/// How many times `export` and rows by `current_email` read a list that
/// moved while it was read before giving up.
pub(super) const LIST_READS: u32 = 3;

/// The account's users as listed, and how the listing went.
pub(super) struct Listed {
    /// Each user once, in the order of the list.
    pub users: Vec<User>,
    /// Users whose list entry leaves out a field a row can set: their ID
    /// and the fields. Their values for those fields are unknown (not null).
    pub partial: BTreeMap<u64, Vec<&'static str>>,
    /// Entries without an ID (they are in `users` too).
    pub(crate) without_id: u64,
    pub(crate) tally: Tally,
    /// Why the list is not whole, if it is not.
    pub problem: Option<ListProblem>,
    pub ended: Ended,
}

/// Why a read of the list is not the account's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ListProblem {
    /// The read stopped, or pages could not be read after their retries.
    Unread(String),
    /// The pages do not fit together: the account changed while they were
    /// read. Reading again may find it settled.
    Moved(String),
    /// The answers cannot be the account's list, however often it is read:
    /// a count beyond the bounds, or pages that cannot deliver it.
    Broken(String),
    /// Every one of `reads` reads moved; `last`: how the last one did.
    Unsettled { reads: u32, last: String },
}

impl fmt::Display for ListProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListProblem::Unread(why) | ListProblem::Broken(why) => f.write_str(why),
            ListProblem::Moved(why) => {
                write!(f, "the account changed while its list was read: {why}")
            }
            ListProblem::Unsettled { reads, last } => write!(
                f,
                "the account changed while its list was read, {reads} times (the last: {last}); \
                 users are being added or removed: try again when that is done"
            ),
        }
    }
}

/// How many pages a list of `count` users in pages of `per_page` takes
/// (each page after the first begins with the last user of the one before
/// it), or why it is not read at all.
pub(super) fn pages_for(count: u64, per_page: u64) -> Result<u64, ListProblem> {
    if count > MAX_LIST_USERS {
        return Err(ListProblem::Broken(format!(
            "the account's list counts {count} users, more than the {MAX_LIST_USERS} this tool \
             reads; no real account has that many, so the API's answer is not to be believed: \
             check --base-url"
        )));
    }
    if count <= per_page {
        return Ok(1);
    }
    if per_page < 2 {
        return Err(ListProblem::Broken(format!(
            "the API answers {per_page} user a page for a list of {count}: pages of at least 2 \
             users are needed to check that they fit together (ask for more with --page-size)"
        )));
    }
    let pages = 1 + (count - per_page).div_ceil(per_page - 1);
    if pages > MAX_LIST_PAGES {
        return Err(ListProblem::Broken(format!(
            "the account's list of {count} users takes {pages} pages of {per_page}, more than \
             the {MAX_LIST_PAGES} pages this tool reads; ask for larger pages with --page-size"
        )));
    }
    Ok(pages)
}

/// How to read the list.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reading {
    /// Users asked for per page.
    pub(crate) page_size: u64,
    /// The progress display (counting users).
    pub mode: ProgressMode,
    /// Reads made in all while the account changes during the read.
    pub reads: u32,
    /// No note when the list is read again.
    pub quiet: bool,
}

/// Every user of the account, read again while the account changes during
/// the read (see [`Reading`]). `first`: the list's first page, when it was
/// read already (to count the users).
pub(super) async fn list_users(
    client: &Client,
    policy: &SendPolicy,
    interrupt: &Interrupt,
    how: Reading,
    first: Option<UserPage>,
) -> Result<Listed, Fatal> {
    let Reading {
        page_size,
        mode,
        reads,
        quiet,
    } = how;
    let mut first = first;
    let mut tally = Tally::default();
    let mut read = 1;
    loop {
        let mut listed =
            read_once(client, policy, page_size, interrupt, mode, first.take()).await?;
        tally.merge(std::mem::take(&mut listed.tally));
        match &listed.problem {
            Some(ListProblem::Moved(why)) if read < reads => {
                if !quiet {
                    crate::say!(
                        "note: the account changed while its list was read ({why}); reading it \
                         again ({} of {reads} reads)",
                        read + 1
                    );
                }
                read += 1;
            }
            Some(ListProblem::Moved(why)) if reads > 1 => {
                listed.problem = Some(ListProblem::Unsettled {
                    reads,
                    last: why.clone(),
                });
                listed.tally = tally;
                return Ok(listed);
            }
            _ => {
                listed.tally = tally;
                return Ok(listed);
            }
        }
    }
}

/// One read of the list, checked (see the module's comment).
async fn read_once(
    client: &Client,
    policy: &SendPolicy,
    page_size: u64,
    interrupt: &Interrupt,
    mode: ProgressMode,
    first: Option<UserPage>,
) -> Result<Listed, Fatal> {
    let mut tally = Tally::default();
    let mut progress = Progress::counting(ProgressMode::Quiet, 0, "users");
    let mut ended = Ended::Finished;
    let first = match first {
        Some(page) => {
            // Read to count the users: one of this read's pages.
            tally.pages += 1;
            Some(page)
        }
        None => {
            let first = vec![(0, 1)];
            let fetched = fetch_pages(client, policy, page_size, first, interrupt, &mut progress);
            let mut fetched = tally.add(fetched.await?);
            ended = fetched.ended.clone();
            fetched.items.pop().map(|(_, page)| page)
        }
    };
    let unread = |tally: Tally, ended: Ended, problem: ListProblem| Listed {
        users: Vec::new(),
        partial: BTreeMap::new(),
        without_id: 0,
        tally,
        problem: Some(problem),
        ended,
    };
    let Some(first) = first else {
        let problem = unread_problem(&ended, &mut tally);
        return Ok(unread(tally, ended, problem));
    };
    let (count, per_page) = (first.count, first.results.len() as u64);
    let pages = match pages_for(count, per_page) {
        Ok(pages) => pages,
        Err(problem) => return Ok(unread(tally, ended, problem)),
    };
    let mut read = vec![(0, first)];
    if pages > 1 {
        // Page k + 1 (as `-v` and the notes number it) at offset
        // k * (per_page - 1); no more than MAX_LIST_PAGES.
        let offsets: Vec<(u64, u64)> = (1..pages)
            .map(|page| (page * (per_page - 1), page + 1))
            .collect();
        progress = Progress::counting(mode, count, "users");
        progress.advance(per_page);
        let rest = fetch_pages(client, policy, page_size, offsets, interrupt, &mut progress);
        let rest = tally.add(rest.await?);
        read.extend(rest.items);
        ended = rest.ended;
    }
    progress.finish();
    if ended != Ended::Finished || !tally.failed.is_empty() {
        let problem = unread_problem(&ended, &mut tally);
        return Ok(unread(tally, ended, problem));
    }
    read.sort_by_key(|(offset, _)| *offset);
    let (users, partial, without_id, problem) = check(count, per_page, read);
    Ok(Listed {
        users,
        partial,
        without_id,
        tally,
        problem,
        ended,
    })
}

/// Why a read that stopped, or lost pages, is not whole.
fn unread_problem(ended: &Ended, tally: &mut Tally) -> ListProblem {
    tally.failed.sort_by_key(|(offset, _)| *offset);
    match (ended, tally.failed.first()) {
        (Ended::Stopped(why), _) => ListProblem::Unread(format!("the listing stopped: {why}")),
        (_, Some((offset, error))) => ListProblem::Unread(format!(
            "{} of the pages could not be read (the first, at offset {offset}: {error})",
            tally.failed.len()
        )),
        _ => ListProblem::Unread("the first page of the list could not be read".to_string()),
    }
}

/// The users of the pages (each page after the first without the user it
/// shares with the one before), and whether the pages fit together:
/// `pages` sorted by offset, each the same count, as many users as due,
/// each beginning where the one before ended, no user twice.
#[expect(
    clippy::type_complexity,
    reason = "the four results are named where they are taken apart"
)]
fn check(
    count: u64,
    per_page: u64,
    pages: Vec<(u64, UserPage)>,
) -> (
    Vec<User>,
    BTreeMap<u64, Vec<&'static str>>,
    u64,
    Option<ListProblem>,
) {
    let mut problem = None;
    let mut note = |found: ListProblem| {
        // The first problem found is the one told; a moved list wins, as
        // reading again may help.
        match (&problem, &found) {
            (None, _) | (Some(ListProblem::Broken(_)), ListProblem::Moved(_)) => {
                problem = Some(found)
            }
            _ => {}
        }
    };
    let last = pages.len() - 1;
    let mut users = Vec::with_capacity(count as usize);
    let mut partial = BTreeMap::new();
    let mut seen = HashSet::new();
    let mut without_id = 0;
    // The ID of the last user of the page before.
    let mut previous_last: Option<u64> = None;
    for (index, (offset, page)) in pages.into_iter().enumerate() {
        let due = match index == last {
            true => count.saturating_sub(offset),
            false => per_page,
        };
        let got = page.results.len() as u64;
        if page.count != count {
            note(ListProblem::Moved(format!(
                "it counted {count} users on the first page and {} on the page at offset \
                 {offset}",
                page.count
            )));
        } else if got != due {
            note(ListProblem::Broken(format!(
                "the account's list counts {count} users, but the page at offset {offset} came \
                 back with {got} users where {due} were due; the API's pages cannot deliver its \
                 count"
            )));
        }
        let first_id = page.results.first().and_then(|user| user.id);
        if let (Some(before), Some(now)) = (previous_last, first_id)
            && index > 0
            && before != now
        {
            note(ListProblem::Moved(format!(
                "the page at offset {offset} begins with user {now}, not with user {before} as \
                 the page before it ended: users were added or removed before it"
            )));
        }
        previous_last = page.results.last().and_then(|user| user.id);
        let left_out: BTreeMap<usize, Vec<&'static str>> = page.left_out.into_iter().collect();
        // Each page after the first repeats the last user of the one before.
        let skip = usize::from(index > 0);
        for (at, user) in page.results.into_iter().enumerate().skip(skip) {
            match user.id {
                None => without_id += 1,
                Some(id) => {
                    if !seen.insert(id) {
                        note(ListProblem::Moved(format!("user {id} is listed twice")));
                        continue;
                    }
                    if let Some(fields) = left_out.get(&at) {
                        partial.insert(id, fields.clone());
                    }
                }
            }
            users.push(user);
        }
    }
    (users, partial, without_id, problem)
}

/// What the page runs came to.
#[derive(Default)]
pub(super) struct Tally {
    pub pages: u64,
    pub retries: u64,
    pub throttled: u64,
    /// Jobs that could not be done: their offset (or user ID) and why.
    pub failed: Vec<(u64, String)>,
    /// The account's limit the last read that met one met.
    pub learned: Option<f64>,
}

impl Tally {
    fn add<T>(&mut self, mut fetched: Fetched<T>) -> Fetched<T> {
        self.pages += fetched.items.len() as u64;
        self.retries += fetched.retries;
        self.throttled += fetched.throttled;
        self.failed.append(&mut fetched.failed);
        self.learned = fetched.learned.or(self.learned);
        fetched
    }

    fn merge(&mut self, mut other: Tally) {
        self.pages += other.pages;
        self.retries += other.retries;
        self.throttled += other.throttled;
        self.failed.append(&mut other.failed);
        self.learned = other.learned.or(self.learned);
    }
}

/// Reads the pages at `offsets` (each with its number in the list, for
/// the notes and `-v`) through the engine, one job per page.
async fn fetch_pages(
    client: &Client,
    policy: &SendPolicy,
    limit: u64,
    offsets: Vec<(u64, u64)>,
    interrupt: &Interrupt,
    progress: &mut Progress,
) -> Result<Fetched<UserPage>, Fatal> {
    let (pages_tx, pages_rx) = std_mpsc::channel();
    let operation = ListPages {
        limit,
        pages: pages_tx,
    };
    let jobs = offsets
        .into_iter()
        .map(|(offset, number)| Subject::Page { number, offset })
        .collect();
    let weight = |page: &UserPage| page.results.len() as u64;
    fetch(
        client, policy, operation, jobs, pages_rx, weight, interrupt, progress,
    )
    .await
}

/// Reads the users `ids` one `GET /iam/users/{id}` each, through the
/// engine: the users whose list entries leave out fields.
async fn read_users(
    client: &Client,
    policy: &SendPolicy,
    ids: Vec<u64>,
    interrupt: &Interrupt,
    mode: ProgressMode,
) -> Result<(Vec<(u64, Box<User>)>, Tally, Ended), Fatal> {
    let (users_tx, users_rx) = std_mpsc::channel();
    let mut progress = Progress::counting(mode, ids.len() as u64, "users");
    let jobs = ids
        .into_iter()
        .map(|id| Subject::Row {
            row: id,
            user_id: id,
        })
        .collect();
    let operation = ReadUsers { users: users_tx };
    let fetched = fetch(
        client,
        policy,
        operation,
        jobs,
        users_rx,
        |_| 1,
        interrupt,
        &mut progress,
    )
    .await?;
    progress.finish();
    let tally = Tally {
        pages: 0,
        retries: fetched.retries,
        throttled: fetched.throttled,
        failed: fetched.failed,
        learned: fetched.learned,
    };
    Ok((fetched.items, tally, fetched.ended))
}

/// Reads the users `ids` one by one and puts each in place of its list
/// entry in `users` (no longer `partial`); `Err` says why some could not be
/// read (the list is then left as it was for them).
pub(super) async fn fill_in(
    client: &Client,
    policy: &SendPolicy,
    interrupt: &Interrupt,
    mode: ProgressMode,
    users: &mut [User],
    partial: &mut BTreeMap<u64, Vec<&'static str>>,
    ids: Vec<u64>,
) -> Result<Result<Tally, String>, Fatal> {
    let (read, mut tally, ended) = read_users(client, policy, ids, interrupt, mode).await?;
    let mut read: std::collections::HashMap<u64, Box<User>> = read.into_iter().collect();
    for user in users.iter_mut() {
        if let Some(id) = user.id
            && let Some(whole) = read.remove(&id)
        {
            *user = *whole;
            partial.remove(&id);
        }
    }
    tally.failed.sort_by_key(|(id, _)| *id);
    Ok(match (&ended, tally.failed.first()) {
        (Ended::Stopped(why), _) => Err(format!("the reading stopped: {why}")),
        (_, Some((id, error))) => Err(format!(
            "{} could not be read (the first, user {id}: {error})",
            crate::sink::count(tally.failed.len() as u64, "user", "users")
        )),
        _ => Ok(tally),
    })
}

/// The list's first page (how many users the account counts, and how many
/// a page of `page_size` holds), from one request; `None` when it cannot
/// be read.
pub(super) async fn first_page(
    client: &Client,
    policy: &SendPolicy,
    page_size: u64,
    interrupt: &Interrupt,
) -> Result<Option<UserPage>, Fatal> {
    let mut progress = Progress::counting(ProgressMode::Quiet, 0, "users");
    let first = vec![(0, 1)];
    let first = fetch_pages(client, policy, page_size, first, interrupt, &mut progress).await?;
    // Its retries (and 429s) are the run's requests: the page itself is
    // counted with the list's pages, or as the count's request.
    super::note_reads(first.retries, first.retries, first.throttled);
    let page = first.items.into_iter().next().map(|(_, page)| page);
    if page.is_none() {
        super::note_reads(1, 0, 0);
    }
    Ok(page)
}

/// The account's id (`GET /iam/clients/me`), from one job through the
/// engine (its rate, retries and pause); `Ok(Err)`: why it is unknown.
/// Counted with the reads before the rows.
pub(super) async fn account_id(
    client: &Client,
    policy: &SendPolicy,
    interrupt: &Interrupt,
) -> Result<Result<crate::operations::members::Account, String>, Fatal> {
    let mut progress = Progress::counting(ProgressMode::Quiet, 0, "accounts");
    let (id, ids) = std_mpsc::channel();
    let operation = crate::operations::members::AccountId { id };
    let job = vec![Subject::Row { row: 1, user_id: 0 }];
    let fetched = fetch(
        client,
        policy,
        operation,
        job,
        ids,
        |_| 0,
        interrupt,
        &mut progress,
    )
    .await?;
    let retries = fetched.retries;
    super::note_reads(1 + retries, retries, fetched.throttled);
    Ok(match (fetched.items.first(), &fetched.ended) {
        (Some((_, id)), _) => Ok(*id),
        (None, Ended::Stopped(why)) => Err(format!("the reading stopped: {why}")),
        (None, _) => Err(fetched
            .failed
            .first()
            .map(|(_, error)| error.clone())
            .unwrap_or_else(|| "no answer".to_string())),
    })
}

#[cfg(test)]
mod tests;
