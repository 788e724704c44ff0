//! `export`: every user of the account, by the pages of `GET /iam/users`,
//! written in the input format (the file to edit, plan and apply). The
//! pages go through the one engine, under the run's rate limit, retries and
//! pause; the file appears only once every page is in, so an export cut
//! short leaves nothing that could pass for the whole account.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::Instant;

use serde::Serialize;
use tokio::sync::{mpsc, watch};

use super::{connect, runtime};
use crate::cli::ExportArgs;
use crate::engine::operations::ListPages;
use crate::engine::{self, Channels, Ended, Job, Work};
use crate::error::Fatal;
use crate::exit::Exit;
use crate::http::Client;
use crate::model::api::{User, UserPage};
use crate::policy::{SendPolicy, StopReason};
use crate::settings::{ApiSettings, RunSettings};
use crate::signals::Interrupt;
use crate::sink::{Progress, ProgressMode, Report};
use crate::table::input_format::InputWriter;
use crate::table::record::open_private;
use crate::table::results::Status;

/// The most users one page may ask for.
const MAX_PAGE_SIZE: u64 = 10_000;

pub fn run(args: ExportArgs) -> Result<Exit, Fatal> {
    let to_stdout = args.output.as_os_str() == "-";
    if !to_stdout && args.output.exists() && !args.overwrite {
        return Err(Fatal::Usage(format!(
            "{} already exists (an edited spreadsheet, perhaps); choose another file with -o, \
             or pass --overwrite to replace it",
            args.output.display()
        )));
    }
    if !(1..=MAX_PAGE_SIZE).contains(&args.page_size) {
        return Err(Fatal::Usage(format!(
            "--page-size {} must be between 1 and {MAX_PAGE_SIZE}",
            args.page_size
        )));
    }
    let null_token = args.null_token.trim().to_string();
    if null_token.is_empty() {
        return Err(Fatal::Usage("--null-token cannot be empty".to_string()));
    }
    let run = RunSettings::from_args(&args.run)?;
    let quiet = args.quiet;
    runtime(false)?.block_on(async {
        let interrupt = Interrupt::install();
        let api = ApiSettings::from_args(&args.api, |name| std::env::var(name).ok())?;
        let (client, proxy) = connect(&api, run.send.concurrency.get(), quiet, "reading")?;
        let started = Instant::now();
        let mode = ProgressMode::detect(quiet, false, false);
        let mut tally = Tally::default();

        // The first page says how many users there are and how many a page holds.
        let mut progress = Progress::counting(ProgressMode::Quiet, 0, "users");
        let first = fetch(
            &client,
            &run.send,
            args.page_size,
            vec![0],
            &interrupt,
            &mut progress,
        );
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
            let rest = fetch(
                &client,
                &run.send,
                args.page_size,
                offsets,
                &interrupt,
                &mut progress,
            );
            let rest = tally.add(rest.await)?;
            pages.extend(rest.pages);
            ended = rest.ended;
        }
        progress.finish();
        let signal = interrupt.signal();
        let mut problem = match (&ended, tally.failed.first()) {
            (Ended::Stopped(why), _) => Some(format!("the export stopped: {why}")),
            (_, Some((offset, error))) => Some(format!(
                "{} of the pages could not be read (the first, at offset {offset}: {error})",
                tally.failed.len()
            )),
            _ => None,
        };
        let mut written = None;
        if problem.is_none() {
            pages.sort_by_key(|(offset, _)| *offset);
            let users = unique(pages.into_iter().flat_map(|(_, page)| page.results));
            if users.len() as u64 != count {
                problem = Some(format!(
                    "the account counts {count} users but {} were listed (users added or \
                     removed while the export ran?); the file holds those listed",
                    users.len()
                ));
            }
            write(&args.output, to_stdout, args.overwrite, &null_token, &users)?;
            written = Some(users.len() as u64);
        }
        let exit = match (signal, &problem) {
            (Some(signal), _) if matches!(ended, Ended::Stopped(StopReason::Interrupted)) => {
                Exit::of_run(Some(signal), true)
            }
            (_, Some(_)) => Exit::RowProblems,
            _ => Exit::Success,
        };
        let shown = match to_stdout {
            true => "<stdout>".to_string(),
            false => args.output.display().to_string(),
        };
        let mut text = String::new();
        if let Some(proxy) = &proxy {
            text.push_str(&format!("through the proxy {proxy}\n"));
        }
        match written {
            Some(users) => text.push_str(&format!(
                "exported {users} users ({} pages) to {shown}\n",
                tally.pages
            )),
            None => text.push_str(&format!("nothing written to {shown}\n")),
        }
        if let Some(problem) = &problem {
            text.push_str(&format!("problem: {problem}\n"));
        }
        let elapsed = started.elapsed().as_secs_f64();
        text.push_str(&format!(
            "retries: {}, throttled (429): {}, elapsed: {elapsed:.1} s\n",
            tally.retries, tally.throttled
        ));
        let _ = std::io::stderr().write_all(text.as_bytes());
        if let Some(path) = &run.summary_json {
            let summary = ExportSummary {
                command: "export",
                users: written,
                pages: tally.pages,
                retries: tally.retries,
                throttled: tally.throttled,
                elapsed_seconds: elapsed,
                problem: problem.as_deref(),
                exit_code: exit.code(),
                results: &shown,
                proxy: proxy.as_deref(),
            };
            write_summary(path, &summary)?;
        }
        Ok(exit)
    })
}

/// What the page runs came to.
#[derive(Default)]
struct Tally {
    pages: u64,
    retries: u64,
    throttled: u64,
    /// Pages that could not be read: their offset and why.
    failed: Vec<(u64, String)>,
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
            Work::Send(Job::new(
                seq,
                seq + 1,
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
    let mut done = 0;
    let collected = tokio::task::block_in_place(|| {
        for report in report_rx {
            match report {
                Report::Note(text) => progress.note(&text),
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
        fetched
    });
    let mut fetched = collected;
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

/// Writes the export beside its place and moves it there complete (never
/// over an existing file without `overwrite`), or to standard output.
fn write(
    path: &Path,
    to_stdout: bool,
    overwrite: bool,
    null_token: &str,
    users: &[User],
) -> Result<(), Fatal> {
    let failed = |source| Fatal::Output {
        path: path.to_path_buf(),
        source,
    };
    if to_stdout {
        let mut writer =
            InputWriter::export(std::io::stdout().lock(), null_token).map_err(failed)?;
        for user in users {
            writer.write_user(user).map_err(failed)?;
        }
        return writer.finish().map(drop).map_err(failed);
    }
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(".gcore-iam-bulk-export-")
        .tempfile_in(&folder)
        .map_err(failed)?;
    let mut writer =
        InputWriter::export(std::io::BufWriter::new(temp), null_token).map_err(failed)?;
    for user in users {
        writer.write_user(user).map_err(failed)?;
    }
    let temp = writer
        .finish()
        .map_err(failed)?
        .into_inner()
        .map_err(|e| failed(e.into_error()))?;
    temp.as_file().sync_all().map_err(failed)?;
    let placed = match overwrite {
        true => temp.persist(path).map(drop),
        false => temp.persist_noclobber(path).map(drop),
    };
    placed.map_err(|e| failed(e.error))
}

#[derive(Serialize)]
struct ExportSummary<'a> {
    command: &'static str,
    /// Users written; `null` when nothing was written.
    users: Option<u64>,
    pages: u64,
    retries: u64,
    throttled: u64,
    elapsed_seconds: f64,
    problem: Option<&'a str>,
    exit_code: u8,
    results: &'a str,
    proxy: Option<&'a str>,
}

fn write_summary(path: &Path, summary: &ExportSummary) -> Result<(), Fatal> {
    let mut text = serde_json::to_string_pretty(summary).expect("the summary serialises");
    text.push('\n');
    let written = open_private(path).and_then(|mut file| {
        file.set_len(0)?;
        file.write_all(text.as_bytes())
    });
    written.map_err(|source| Fatal::SummaryJson {
        path: path.to_path_buf(),
        source,
    })
}
