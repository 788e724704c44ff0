//! `export`: every user of the account, by the pages of `GET /iam/users`,
//! written in the input format (the file to edit, plan and apply). The
//! pages go through the one engine, under the run's rate limit, retries and
//! pause; the file appears only once every page is in, so an export cut
//! short leaves nothing that could pass for the whole account.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::list::{LIST_READS, Listed, Reading, fill_in, list_users};
use super::with_profile;
use super::{Threads, connect, runtime};
use crate::cli::ExportArgs;
use crate::engine::Ended;
use crate::error::Fatal;
use crate::exit::Exit;
use crate::model::api::User;
use crate::model::field::{Field, FieldSet};
use crate::policy::StopReason;
use crate::settings::{ApiSettings, InputSource, OutputTarget, RunSettings, check_summary_path};
use crate::signals::Interrupt;
use crate::sink::{Figures, MetricsRun, ProgressMode, RunInfo, write_summary_json};
use crate::table::input_format::{InputWriter, odd_fields};
use crate::table::sheet::named_like_workbook;
use crate::table::xlsx::{self, is_xlsx_path};

/// The most users one page may ask for.
const MAX_PAGE_SIZE: u64 = 10_000;

pub(super) fn run(mut args: ExportArgs) -> Result<Exit, Fatal> {
    // The key and the base URL first (see `apply`).
    let profile = with_profile(&args.api, &mut args.run)?;
    let api = ApiSettings::with_profile(
        &args.api,
        profile.as_ref(),
        crate::settings::from_environment,
    )?;
    let to_stdout = args.output.as_os_str() == "-";
    if !to_stdout && args.output.exists() && !args.overwrite {
        return Err(Fatal::Usage(format!(
            "{} already exists (an edited spreadsheet, perhaps); choose another file with -o, \
             or pass --overwrite to replace it",
            args.output.display()
        )));
    }
    if !to_stdout && named_like_workbook(&args.output) && !is_xlsx_path(&args.output) {
        return Err(Fatal::Usage(format!(
            "export writes an .xlsx workbook or a CSV file, and {} is neither; name it .xlsx \
             (LibreOffice and every other spreadsheet open it) or .csv",
            args.output.display()
        )));
    }
    if !to_stdout
        && let Some(folder) = args.output.parent()
        && !folder.as_os_str().is_empty()
        && !folder.is_dir()
    {
        return Err(Fatal::Usage(format!(
            "the folder {} does not exist; create it, or choose another -o",
            folder.display()
        )));
    }
    // Each page after the first repeats the last user of the one before
    // (to check that the pages fit together): a page holds 2 at least.
    if !(2..=MAX_PAGE_SIZE).contains(&args.page_size) {
        return Err(Fatal::Usage(format!(
            "--page-size {} must be between 2 and {MAX_PAGE_SIZE}",
            args.page_size
        )));
    }
    let null_token = args.null_token.trim().to_string();
    if null_token.is_empty() {
        return Err(Fatal::Usage("--null-token cannot be empty".to_string()));
    }
    let mut run = RunSettings::from_args(&args.run)?;
    run.send.key_from = Some(api.key_from.clone());
    // The account's limit, remembered and shared with its other runs: the
    // pages are read from just below it; the limit its reading met (or
    // split with other runs) is remembered for the next run.
    let memory = (args.run.forget_rate, !args.run.no_share);
    let limit = super::limits::recall_limit(&api, &mut run.send, memory, args.quiet);
    // Every file of the run its own, checked before anything is read: the
    // export is not the key's file or a certificate, the summary is not
    // the export (and can be written).
    let target = match to_stdout {
        true => OutputTarget::Stdout,
        false => OutputTarget::File(args.output.clone()),
    };
    if !to_stdout {
        crate::settings::refuse_special(
            &args.output,
            "-o",
            "the export is written beside the file and renamed over it: name a file, or give \
             -o - for standard output",
        )?;
    }
    if let Some(summary) = &run.summary_json {
        check_summary_path(summary, (&InputSource::Stdin, &target), args.overwrite)?;
    }
    if let Some(metrics) = &run.metrics_file {
        crate::settings::check_metrics_path(
            metrics,
            (&InputSource::Stdin, &target),
            args.overwrite,
        )?;
        if run.summary_json.as_deref() == Some(metrics.as_path()) {
            return Err(Fatal::Usage(format!(
                "--metrics-file {} is also the --summary-json file; each file of a run must be a \
                 file of its own",
                metrics.display()
            )));
        }
    }
    let written = [
        (!to_stdout).then_some((args.output.as_path(), "export", "-o")),
        (run.summary_json.as_deref()).map(|path| (path, "summary file", "--summary-json")),
        (run.metrics_file.as_deref()).map(|path| (path, "metrics file", "--metrics-file")),
    ];
    for (path, what, flag) in written.into_iter().flatten() {
        if let Some((_, read)) = api
            .files_read
            .iter()
            .find(|(file, _)| crate::settings::same_file(path, file))
        {
            return Err(Fatal::Usage(format!(
                "the {what} {} is the {read} this run reads; choose another {flag}",
                path.display()
            )));
        }
    }
    let quiet = args.quiet;
    runtime(Threads::One)?.block_on(async {
        let interrupt = Interrupt::install();
        let (client, route) = connect(&api, run.send.concurrency.get(), quiet, "reading")?;
        let started = Instant::now();
        let mode = ProgressMode::detect(quiet, false, false);
        let how = Reading {
            page_size: args.page_size,
            mode,
            reads: LIST_READS,
            quiet,
        };
        let listed = list_users(&client, &run.send, &interrupt, how, None).await?;
        let Listed {
            mut users,
            mut partial,
            without_id,
            mut tally,
            problem,
            mut ended,
        } = listed;
        let mut problem = problem.map(|problem| problem.to_string());
        // Entries without an ID would be rows no run can apply.
        if problem.is_none() && without_id > 0 {
            problem = Some(format!(
                "{without_id} {} of the account's list {} no id; a row without a user_id \
                 cannot be applied, so nothing was written: the API's list answer is broken",
                if without_id == 1 { "entry" } else { "entries" },
                if without_id == 1 { "has" } else { "have" },
            ));
        }
        // A field the list leaves out is not null: those users are read
        // one by one before anything is written.
        if problem.is_none() && !partial.is_empty() {
            if !quiet {
                crate::say!(
                    "the account's list leaves out {} of {}: reading each with a GET",
                    super::left_out_fields(&partial),
                    crate::sink::count(partial.len() as u64, "user", "users")
                );
            }
            let ids: Vec<u64> = partial.keys().copied().collect();
            let filled = fill_in(
                &client,
                &run.send,
                &interrupt,
                mode,
                &mut users,
                &mut partial,
                ids,
            )
            .await?;
            match filled {
                Ok(read) => {
                    tally.retries += read.retries;
                    tally.throttled += read.throttled;
                    tally.learned = read.learned.or(tally.learned);
                }
                Err(why) => {
                    problem = Some(format!(
                        "the list leaves out fields of some users, and {why}; nothing was written"
                    ));
                    if interrupt.signal().is_some() {
                        ended = Ended::Stopped(StopReason::Interrupted);
                    }
                }
            }
        }
        let signal = interrupt.signal();
        // Only a whole, consistent list is written: a listing cut short,
        // one that moved while it was read, or one that cannot be the
        // account's writes nothing.
        let mut written = None;
        if problem.is_none() && ended == Ended::Finished {
            write(&args.output, to_stdout, args.overwrite, &null_token, &users)?;
            written = Some(users.len() as u64);
            if !quiet {
                note_odd_values(&users, &null_token);
            }
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
        if let Some(proxy) = &route.proxy {
            text.push_str(&format!("through the proxy {proxy}\n"));
        }
        match written {
            Some(users) => text.push_str(&format!(
                "exported {} ({}) to {shown}\n",
                crate::sink::count(users, "user", "users"),
                crate::sink::count(tally.pages, "page", "pages")
            )),
            None => text.push_str(&format!("nothing written to {shown}\n")),
        }
        if let Some(problem) = &problem {
            let problem = crate::visible::visible(problem);
            text.push_str(&format!("problem: {problem}\n"));
        }
        let elapsed = started.elapsed().as_secs_f64();
        text.push_str(&format!(
            "retries: {}, throttled (429): {}, elapsed: {elapsed:.1} s\n",
            tally.retries, tally.throttled
        ));
        let _ = std::io::stderr().write_all(text.as_bytes());
        let mut run_info = RunInfo::new("export", false, None, super::started());
        run_info.account = Some(route.account.clone());
        let summary_file = run.summary_json.as_deref().map(|path| {
            let run_info = &run_info;
            let (problem, shown, proxy) = (problem.as_deref(), &shown, route.proxy.as_deref());
            move |exit: Exit| {
                let summary = ExportSummary {
                    run: run_info.clone(),
                    users: written,
                    pages: tally.pages,
                    retries: tally.retries,
                    throttled: tally.throttled,
                    elapsed_seconds: elapsed,
                    problem,
                    exit_code: exit.code(),
                    results: shown,
                    proxy,
                };
                write_summary_json(path, &summary)
            }
        });
        let metrics_file = run.metrics_file.as_deref().map(|path| {
            let shown = &shown;
            move |exit: Exit| {
                let figures = Figures {
                    rows: vec![("exported", written.unwrap_or(0))],
                    requests: tally.pages + tally.retries,
                    retries: tally.retries,
                    throttled: tally.throttled,
                };
                let run = MetricsRun {
                    command: "export",
                    input: shown,
                    exit,
                    duration: super::started().elapsed().unwrap_or_default(),
                    now: std::time::SystemTime::now(),
                };
                figures.write_metrics(path, &run)
            }
        });
        // The export is written: a file monitoring reads that cannot be is
        // said, and the run ends with 74 (it ended with 2, "nothing sent").
        let exit = super::ending::write_end_files(exit, false, summary_file, metrics_file)?;
        if let Some(memory) = &limit {
            memory.learned(tally.learned);
        }
        Ok(exit)
    })
}

/// Says, per field, which users hold values the input rules would refuse
/// or change, whose rows the export writes as the API's own values (JSON
/// cells, marked `verbatim`), and what to do to change them.
fn note_odd_values(users: &[User], null_token: &str) {
    let mut odd: Vec<(Field, Vec<u64>)> = Field::ALL.iter().map(|f| (*f, Vec::new())).collect();
    let mut rows = 0;
    for user in users {
        let fields: FieldSet = odd_fields(user, null_token);
        rows += u64::from(!fields.is_empty());
        for field in fields.iter() {
            odd[field as usize].1.push(user.id.unwrap_or_default());
        }
    }
    if rows == 0 {
        return;
    }
    let kinds: Vec<String> = odd
        .iter()
        .filter(|(_, ids)| !ids.is_empty())
        .map(|(field, ids)| {
            let shown: Vec<String> = ids.iter().take(3).map(u64::to_string).collect();
            format!(
                "{} of {} (user {}{})",
                field.name(),
                crate::sink::count(ids.len() as u64, "user", "users"),
                shown.join(", "),
                if ids.len() > 3 { ", ..." } else { "" }
            )
        })
        .collect();
    crate::say!(
        "note: {} {} values the input rules would refuse or change ({}): {} rows hold the \
         API's own values as JSON, marked json in the verbatim column, and apply as they are \
         (changing nothing); to change such a user, edit the JSON, or empty the verbatim cell \
         and type plain values in every cell of the row",
        crate::sink::count(rows, "user", "users"),
        if rows == 1 { "holds" } else { "hold" },
        kinds.join("; "),
        if rows == 1 { "its" } else { "their" }
    );
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
    let failed = |source| Fatal::Export {
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
    let mut temp = tempfile::Builder::new()
        .prefix(".gcore-iam-bulk-export-")
        .tempfile_in(&folder)
        .map_err(failed)?;
    if is_xlsx_path(path) {
        let mut sink = std::io::BufWriter::new(temp.as_file_mut());
        xlsx::write_users(&mut sink, users, null_token).map_err(|message| Fatal::Workbook {
            path: path.to_path_buf(),
            message,
        })?;
        sink.flush().map_err(failed)?;
    } else {
        let mut writer =
            InputWriter::export(std::io::BufWriter::new(temp.as_file_mut()), null_token)
                .map_err(failed)?;
        for user in users {
            writer.write_user(user).map_err(failed)?;
        }
        writer.finish().map_err(failed)?.flush().map_err(failed)?;
    }
    temp.as_file().sync_all().map_err(failed)?;
    let placed = match overwrite {
        true => temp.persist(path).map(drop),
        false => temp.persist_noclobber(path).map(drop),
    };
    placed.map_err(|e| failed(e.error))
}

#[derive(Serialize)]
struct ExportSummary<'a> {
    #[serde(flatten)]
    run: RunInfo,
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

/// The arguments of `export`, with its help (the command's, in `--help`).
pub(crate) type Args = crate::cli::ExportArgs;

impl super::Run for Args {
    fn no_progress(&self) -> bool {
        self.no_progress
    }

    fn run(self) -> Result<Exit, Fatal> {
        run(self)
    }
}
