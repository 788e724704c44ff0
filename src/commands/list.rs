//! Reading the account's whole user list, by the pages of `GET /iam/users`
//! through the one engine (rate, retries, pause, stops): what `export`
//! writes, and what resolves rows that name users by `current_email`.

use std::collections::HashSet;
use std::sync::mpsc as std_mpsc;

use tokio::sync::{mpsc, watch};

use crate::engine::operations::ListPages;
use crate::engine::{self, Channels, Ended, Job, Work};
use crate::error::Fatal;
use crate::http::Client;
use crate::model::api::{User, UserPage};
use crate::policy::SendPolicy;
use crate::signals::Interrupt;
use crate::sink::{Progress, ProgressMode, Report};
use crate::table::results::Status;

/// The account's users as listed, and how the listing went.
pub(super) struct Listed {
    /// Each user once, in the order of the list.
    pub users: Vec<User>,
    pub tally: Tally,
    /// Why the list is not whole, if it is not: a stop, pages not read, or
    /// a count that does not match the users listed.
    pub problem: Option<String>,
    pub ended: Ended,
}

/// Every user of the account: the first page says how many there are and
/// how many a page holds; the rest are read together. `mode`: the progress
/// display (counting users).
pub(super) async fn list_users(
    client: &Client,
    policy: &SendPolicy,
    page_size: u64,
    interrupt: &Interrupt,
    mode: ProgressMode,
) -> Result<Listed, Fatal> {
    let mut tally = Tally::default();
    let mut progress = Progress::counting(ProgressMode::Quiet, 0, "users");
    let first = fetch(client, policy, page_size, vec![0], interrupt, &mut progress);
    let first = tally.add(first.await)?;
    let (count, per_page) = match first.pages.first() {
        Some((_, page)) => (page.count, page.results.len() as u64),
        None => (0, 0),
    };
    let mut pages = first.pages;
    let mut ended = first.ended;
    if ended == Ended::Finished && per_page > 0 && count > per_page {
        let offsets: Vec<u64> = (per_page..count).step_by(per_page as usize).collect();
        progress = Progress::counting(mode, count, "users");
        progress.advance(per_page);
        let rest = fetch(client, policy, page_size, offsets, interrupt, &mut progress);
        let rest = tally.add(rest.await)?;
        pages.extend(rest.pages);
        ended = rest.ended;
    }
    progress.finish();
    tally.failed.sort_by_key(|(offset, _)| *offset);
    let mut problem = match (&ended, tally.failed.first()) {
        (Ended::Stopped(why), _) => Some(format!("the listing stopped: {why}")),
        (_, Some((offset, error))) => Some(format!(
            "{} of the pages could not be read (the first, at offset {offset}: {error})",
            tally.failed.len()
        )),
        _ => None,
    };
    pages.sort_by_key(|(offset, _)| *offset);
    let users = unique(pages.into_iter().flat_map(|(_, page)| page.results));
    if problem.is_none() && users.len() as u64 != count {
        problem = Some(format!(
            "the account counts {count} users but {} were listed (users added or removed \
             meanwhile?)",
            users.len()
        ));
    }
    Ok(Listed {
        users,
        tally,
        problem,
        ended,
    })
}

/// What the page runs came to.
#[derive(Default)]
pub(super) struct Tally {
    pub pages: u64,
    pub retries: u64,
    pub throttled: u64,
    /// Pages that could not be read: their offset and why.
    pub failed: Vec<(u64, String)>,
}

impl Tally {
    fn add(&mut self, fetched: Result<Fetched, Fatal>) -> Result<Fetched, Fatal> {
        let mut fetched = fetched?;
        self.pages += fetched.pages.len() as u64;
        self.retries += fetched.retries;
        self.throttled += fetched.throttled;
        self.failed.append(&mut fetched.failed);
        Ok(fetched)
    }
}

struct Fetched {
    pages: Vec<(u64, UserPage)>,
    failed: Vec<(u64, String)>,
    retries: u64,
    throttled: u64,
    ended: Ended,
}

/// Reads the pages at `offsets` through the engine (one job per page).
async fn fetch(
    client: &Client,
    policy: &SendPolicy,
    limit: u64,
    offsets: Vec<u64>,
    interrupt: &Interrupt,
    progress: &mut Progress,
) -> Result<Fetched, Fatal> {
    let (work_tx, work_rx) = mpsc::channel(1);
    let (report_tx, report_rx) = std_mpsc::channel();
    let (written_tx, written_rx) = watch::channel(0u64);
    let (pages_tx, pages_rx) = std_mpsc::channel();
    let jobs: Vec<Work> = offsets
        .iter()
        .enumerate()
        .map(|(seq, offset)| {
            let seq = seq as u64;
            // Its number in the account's list, for the notes and `-v`.
            let page = offset / limit.max(1) + 1;
            Work::Send(Job::new(
                seq,
                page,
                *offset,
                offset.to_string(),
                String::new(),
            ))
        })
        .collect();
    let _ = work_tx.send(jobs).await;
    drop(work_tx);
    let channels = Channels {
        work: work_rx,
        reports: report_tx,
        written: written_rx,
    };
    let operation = ListPages {
        limit,
        pages: pages_tx,
    };
    let policy = policy.clone();
    let client = client.clone();
    let cancel = interrupt.clone().wait();
    let engine = tokio::spawn(async move {
        engine::dispatch(&policy, Some((operation, client)), channels, cancel).await
    });
    // The outcomes, in any order: each page went to `pages_rx` first.
    let mut fetched = Fetched {
        pages: Vec::new(),
        failed: Vec::new(),
        retries: 0,
        throttled: 0,
        ended: Ended::Finished,
    };
    // The reports are read on a thread of their own: the run's runtime has
    // one thread, and the engine needs it. The progress display goes along.
    let mut shown = std::mem::replace(progress, Progress::counting(ProgressMode::Quiet, 0, ""));
    let collecting = tokio::task::spawn_blocking(move || {
        let mut done = 0;
        let progress = &mut shown;
        for report in report_rx {
            match report {
                Report::Note(text) => progress.note(&text),
                Report::Attempt(text) => progress.attempt(&text),
                // The list's rate is not reported: its summary is one line.
                Report::Rate(_) | Report::Timeline(_) => {}
                Report::Row(outcome) => {
                    done += 1;
                    let _ = written_tx.send(done);
                    fetched.retries += u64::from(outcome.retries);
                    fetched.throttled += u64::from(outcome.throttled);
                    if outcome.record.status != Status::Updated {
                        fetched.failed.push((
                            outcome.record.user_id.parse().unwrap_or_default(),
                            outcome.record.error,
                        ));
                    }
                    for (offset, page) in pages_rx.try_iter() {
                        progress.advance(page.results.len() as u64);
                        fetched.pages.push((offset, page));
                    }
                }
            }
        }
        (fetched, shown)
    });
    let (mut fetched, shown) = collecting
        .await
        .expect("collecting the pages does not panic");
    *progress = shown;
    fetched.ended = engine.await.expect("the engine does not panic");
    Ok(fetched)
}

/// The users, each once (the first time it is listed: a user added while
/// the export ran can shift another onto the next page too).
fn unique(users: impl Iterator<Item = User>) -> Vec<User> {
    let mut seen = HashSet::new();
    users
        .filter(|user| user.id.is_none_or(|id| seen.insert(id)))
        .collect()
}

/// How many users the account counts and how many a page of `page_size`
/// holds, from one request; `None` when that page cannot be read.
pub(super) async fn count_users(
    client: &Client,
    policy: &SendPolicy,
    page_size: u64,
    interrupt: &Interrupt,
) -> Result<Option<(u64, u64)>, Fatal> {
    let mut progress = Progress::counting(ProgressMode::Quiet, 0, "users");
    let first = fetch(client, policy, page_size, vec![0], interrupt, &mut progress).await?;
    Ok(first
        .pages
        .first()
        .map(|(_, page)| (page.count, page.results.len() as u64)))
}
