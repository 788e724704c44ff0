//! `apply`: the pipeline check -> dispatch -> write. The whole input is
//! checked first (nothing is sent when a row is invalid, unless
//! `--skip-invalid`); then a checking thread feeds rows in order to the
//! dispatcher (`runner`), which sends them, and the results thread writes
//! them back in order (`results`). Each stage holds a bounded number of rows.

use std::future::Future;
use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, mpsc as std_mpsc};

use tokio::sync::{mpsc, watch};

use crate::check::{CheckedRow, Checker, Duplicates, Verdict, user_id_of};
use crate::client::Client;
use crate::config::{ApiConfig, InputConfig, OutputTarget, RunConfig};
use crate::error::Fatal;
use crate::input::Input;
use crate::patch::describe;
use crate::results::{self, Outcome, Progress, ProgressMode, ResultsWriter, Status};
use crate::runner::{self, Channels, Job, Work};

/// Rows are handed to the dispatcher in batches of this many, so that the
/// check thread and the dispatcher wake each other once per batch.
const BATCH: usize = 256;
/// Batches read ahead of the dispatcher: enough to never starve it, few
/// enough not to matter.
const READ_AHEAD: usize = 4;

/// What the first pass found.
#[derive(Debug, Clone, Copy, Default)]
struct Plan {
    rows: u64,
    invalid: u64,
}

/// Whether valid rows are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Send,
    /// Some rows are invalid and `--skip-invalid` was not given.
    Refuse {
        invalid: u64,
    },
}

/// Runs `apply` against the API in `api`. `cancel` completing (Ctrl-C) stops
/// sending; the results file still gets every row.
pub async fn run(
    input: &InputConfig,
    output: &OutputTarget,
    quiet: bool,
    api: &ApiConfig,
    config: &RunConfig,
    cancel: impl Future<Output = ()> + Send + 'static,
) -> Result<ExitCode, Fatal> {
    let client = Client::new(api, config.concurrency.get())?;
    let input_config = input.clone();
    let null_token = input.null_token.clone();
    let (input, duplicates, plan, ignored) = tokio::task::spawn_blocking(move || {
        let input = Input::open(&input_config)?;
        let (duplicates, plan, ignored) = first_pass(&input, &input_config.null_token)?;
        Ok::<_, Fatal>((Arc::new(input), Arc::new(duplicates), plan, ignored))
    })
    .await
    .expect("the check stage does not panic")?;

    let mode = if plan.invalid > 0 && !config.skip_invalid {
        Mode::Refuse {
            invalid: plan.invalid,
        }
    } else {
        Mode::Send
    };
    let progress_mode = ProgressMode::detect(quiet);
    if !quiet {
        results::note_ignored_columns(&ignored);
        if plan.rows == 0 {
            results::note_no_rows(&input.display_path());
        }
    }
    if let Mode::Refuse { invalid } = mode {
        eprintln!(
            "nothing sent: {invalid} {} invalid; fix {} (see the results file), or pass \
             --skip-invalid to send the valid rows anyway",
            if invalid == 1 { "row is" } else { "rows are" },
            if invalid == 1 { "it" } else { "them" },
        );
    }

    let results = ResultsWriter::create(output)?;
    let results_path = results.path().display().to_string();
    let (work_tx, work_rx) = mpsc::channel(READ_AHEAD);
    let (report_tx, report_rx) = std_mpsc::channel();
    let (written_tx, written_rx) = watch::channel(0u64);

    let check_stage = tokio::task::spawn_blocking({
        let input = Arc::clone(&input);
        let duplicates = Arc::clone(&duplicates);
        move || second_pass(&input, &null_token, &duplicates, mode, work_tx)
    });
    let progress = Progress::new(progress_mode, plan.rows);
    let writer = std::thread::Builder::new()
        .name("results".to_string())
        .spawn(move || results::write_in_order(results, report_rx, written_tx, progress))
        .map_err(Fatal::Runtime)?;

    let attempt = move |job: &Job| {
        let client = client.clone();
        let user_id = job.user_id;
        let body = job.request.clone();
        async move { client.patch(user_id, body).await }
    };
    let channels = Channels {
        work: work_rx,
        reports: report_tx,
        written: written_rx,
    };
    // The dispatcher runs as a task on the runtime's workers, next to the
    // requests it starts, rather than on the thread that waits for the run.
    let dispatcher = tokio::spawn({
        let config = config.clone();
        async move { runner::dispatch(&config, attempt, channels, cancel).await }
    });
    dispatcher.await.expect("the dispatcher does not panic");

    let summary = writer.join().expect("the results thread does not panic");
    // A failed writer stops the dispatcher, which stops the check stage: its
    // error (if any) is secondary to the writer's.
    let checked = check_stage.await.expect("the check stage does not panic");
    let summary = summary?;
    checked?;

    let _ = std::io::stderr().write_all(summary.render(&results_path).as_bytes());
    if let Some(path) = &config.summary_json {
        summary.write_json(path, &results_path)?;
    }
    Ok(ExitCode::from(summary.exit_code()))
}

/// Checks every row once, counting the invalid ones, and collects the user
/// IDs to find repeated ones in the same pass. Only when some ID repeats
/// (a file that is refused anyway, or sent with --skip-invalid) is the file
/// read again: to find those rows, and to count the invalid rows exactly.
fn first_pass(input: &Input, null_token: &str) -> Result<(Duplicates, Plan, Vec<String>), Fatal> {
    let mut rows = input.rows()?;
    let header = rows.header().clone();
    let ignored = header.ignored().into_iter().map(str::to_string).collect();
    let no_duplicates = Duplicates::default();
    let checker = Checker::new(&header, null_token, &no_duplicates);
    let mut plan = Plan::default();
    let mut ids = Vec::new();
    while let Some(raw) = rows.next_row()? {
        plan.rows += 1;
        if let Some(id) = user_id_of(&raw, header.user_id) {
            ids.push(id);
        }
        if matches!(checker.check(&raw).verdict, Verdict::Invalid(_)) {
            plan.invalid += 1;
        }
    }
    let duplicates = Duplicates::from_ids(input, ids)?;
    if !duplicates.is_empty() {
        plan.invalid = count_invalid(input, null_token, &duplicates)?;
    }
    Ok((duplicates, plan, ignored))
}

fn count_invalid(input: &Input, null_token: &str, duplicates: &Duplicates) -> Result<u64, Fatal> {
    let mut rows = input.rows()?;
    let header = rows.header().clone();
    let checker = Checker::new(&header, null_token, duplicates);
    let mut invalid = 0;
    while let Some(raw) = rows.next_row()? {
        if matches!(checker.check(&raw).verdict, Verdict::Invalid(_)) {
            invalid += 1;
        }
    }
    Ok(invalid)
}

/// Checks every row again and hands it on, in order. Stops early when the
/// dispatcher is gone.
fn second_pass(
    input: &Input,
    null_token: &str,
    duplicates: &Duplicates,
    mode: Mode,
    work: mpsc::Sender<Vec<Work>>,
) -> Result<(), Fatal> {
    let mut rows = input.rows()?;
    let header = rows.header().clone();
    let checker = Checker::new(&header, null_token, duplicates);
    let mut seq = 0;
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(raw) = rows.next_row()? {
        batch.push(to_work(seq, checker.check(&raw), mode));
        seq += 1;
        if batch.len() == BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if work.blocking_send(full).is_err() {
                return Ok(());
            }
        }
    }
    if !batch.is_empty() {
        let _ = work.blocking_send(batch);
    }
    Ok(())
}

/// A checked row becomes a request, or an outcome decided without one.
fn to_work(seq: u64, checked: CheckedRow, mode: Mode) -> Work {
    let CheckedRow {
        row,
        user_id,
        user_id_text,
        verdict,
    } = checked;
    let done = |status: Status, error: String, request: String| {
        Work::Done(Outcome {
            seq,
            row,
            user_id: user_id_text.clone(),
            status,
            http_status: None,
            attempts: 0,
            throttled: 0,
            error,
            request,
            user: None,
        })
    };
    match verdict {
        Verdict::Send(body) => {
            let request = serde_json::to_string(&body).expect("a body always serialises");
            match (mode, user_id) {
                (Mode::Send, Some(user_id)) => Work::Send(Job {
                    seq,
                    row,
                    user_id,
                    user_id_text,
                    request,
                    attempts: 0,
                    throttled: 0,
                    last_failure: None,
                }),
                (Mode::Refuse { invalid }, _) => done(
                    Status::NotAttempted,
                    format!(
                        "not sent: {invalid} {} invalid",
                        if invalid == 1 { "row is" } else { "rows are" }
                    ),
                    request,
                ),
                (Mode::Send, None) => unreachable!("a row to send has a valid user ID"),
            }
        }
        Verdict::Skip(reason) => done(Status::Skipped, reason.to_string(), String::new()),
        Verdict::Invalid(problems) => done(Status::Invalid, describe(&problems), String::new()),
    }
}
