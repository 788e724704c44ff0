//! A command over the rows of an input, from its flags to its exit code:
//! the settings made once and checked ([`RowsRun::new`]), then one path
//! ([`RowsRun::send_rows`]): the first pass (nothing is sent while a row
//! is invalid), the operation, the engine, the results file, the summary,
//! the report and the exit code. The dry run is the same path without a
//! sender, so every command over rows has one. `validate` and `plan` run
//! through it, and so does any new command whose operation sends a request
//! (or a few) per row; `apply` has its own, for resume, the undo file and
//! the rehearsal.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{
    Ending, FirstPass, Next, Route, Threads, check_distinct, connect, finish, first_pass,
    guard_results, input_name, note_input_changed, read_by, runtime, with_profile,
};
use crate::check::Rows;
use crate::cli::{ApiArgs, InputArgs, OutputArgs, RunArgs};
use crate::engine::{Never, Operation};
use crate::error::Fatal;
use crate::exit::Exit;
use crate::http::Client;
use crate::pipeline::{self, Checks, Disposition, Source};
use crate::policy::SendPolicy;
use crate::settings::{
    ApiSettings, InputSettings, OutputTarget, RunSettings, check_report_path, check_summary_path,
};
use crate::signals::Interrupt;
use crate::sink::{Keeping, ProgressMode, ResultsWriter};

/// The settings of a command over rows, each made once from the flags,
/// the environment and the profile, and every file of the run checked
/// distinct before anything is read.
pub(crate) struct RowsRun {
    /// What the user ran (`validate`, `plan`, ...), for the summary JSON.
    pub command: &'static str,
    /// The API and the sending settings; `None`: a dry run, which reads no
    /// account and needs no key.
    pub api: Option<(ApiSettings, RunSettings)>,
    pub input: InputSettings,
    pub target: OutputTarget,
    pub summary_json: Option<PathBuf>,
    /// `--report`: the run's page.
    pub report: Option<PathBuf>,
    pub quiet: bool,
    pub(crate) raw_output: bool,
    /// `--exit-code`: a row that would change ends the run with 3.
    pub(crate) changes_exit: bool,
}

/// The flags a command over rows is made from.
pub(crate) struct RowsFlags<'a> {
    pub command: &'static str,
    pub input: &'a InputArgs,
    pub output: &'a OutputArgs,
    /// The API's flags and the sending flags; `None` for a dry run.
    pub sending: Option<(&'a ApiArgs, &'a mut RunArgs)>,
    /// `--summary-json` of a dry run (a sending run has it in its `RunArgs`).
    pub summary_json: Option<&'a Path>,
    /// The results file's default name: `<stem><suffix>`.
    pub(crate) suffix: &'a str,
    /// What a results file in the way says to do instead.
    pub next: Next,
}

impl RowsRun {
    pub(super) fn new(flags: RowsFlags<'_>) -> Result<RowsRun, Fatal> {
        // The key and the base URL first: without them nothing else
        // matters, and a user who fixes one problem should not meet a more
        // basic one next.
        let api = match flags.sending {
            Some((api, run)) => {
                let profile = with_profile(api, run)?;
                let api = ApiSettings::with_profile(
                    api,
                    profile.as_ref(),
                    crate::settings::from_environment,
                )?;
                Some((api, run))
            }
            None => None,
        };
        let input = InputSettings::from_args(flags.input)?;
        let target = OutputTarget::from_args(flags.output, &input.source, flags.suffix)?;
        let api = match api {
            Some((api, run)) => {
                let mut run = RunSettings::from_args(run)?;
                run.send.key_from = Some(api.key_from.clone());
                run.send.timeline = flags.output.report.is_some();
                Some((api, run))
            }
            None => None,
        };
        let summary_json = match &api {
            Some((_, run)) => run.summary_json.clone(),
            None => flags.summary_json.map(Path::to_path_buf),
        };
        if let Some(summary) = &summary_json {
            check_summary_path(summary, &input.source, &target)?;
        }
        let report = flags.output.report.clone();
        if let Some(report) = &report {
            let mut others = vec![(summary_json.as_deref(), "summary file")];
            if let Some((api, _)) = &api {
                others.extend(read_by(api));
            }
            check_report_path(
                report,
                (&input.source, &target, &others),
                flags.output.overwrite,
            )?;
        }
        check_distinct(
            &input.source,
            &target,
            &[
                (summary_json.as_deref(), "summary file", "--summary-json"),
                (report.as_deref(), "report", "--report"),
            ],
        )?;
        guard_results(&target, flags.output.overwrite, flags.next)?;
        Ok(RowsRun {
            command: flags.command,
            api,
            input,
            target,
            summary_json,
            report,
            quiet: flags.output.quiet,
            raw_output: flags.output.raw_output,
            changes_exit: false,
        })
    }

    /// Runs every row: the first pass; then what `rules` (the operation's
    /// rules for its rows, the same with or without a sender) makes of each
    /// valid row; then, for a run that sends, the operation `start` makes
    /// once the account is reached (it may read the account first:
    /// [`Started`]), through the engine; for a dry run, every row it would
    /// send decided at once. Then the summary, the report and the exit code.
    pub(crate) fn send_rows<O, F>(self, rules: impl Rows + 'static, start: F) -> Result<Exit, Fatal>
    where
        O: Operation + 'static,
        F: AsyncFnOnce(&mut Started<'_>) -> Result<Sending<O>, Fatal>,
    {
        let quiet = self.quiet;
        runtime(Threads::One)?.block_on(async {
            let interrupt = Interrupt::install();
            let (api, send) = match &self.api {
                Some((api, run)) => (Some(api), run.send.clone()),
                None => (None, SendPolicy::dry_run()),
            };
            let connected = match api {
                Some(api) => Some(connect(api, send.concurrency.get(), quiet, "reading")?),
                None => None,
            };
            let account = connected.as_ref().map(|(client, _)| (client, &send));
            let first = first_pass(&self.input, false, quiet, &interrupt, account).await?;
            let input = Arc::clone(&first.input);
            let rows = first.preflight.rows;
            // The operation starts only where there is an account to send to.
            let (sending, first) = match &connected {
                Some((client, _)) => {
                    let mut started = Started {
                        client,
                        send: &send,
                        interrupt: &interrupt,
                        quiet,
                        first,
                    };
                    (Some(start(&mut started).await?), started.first)
                }
                None => (None, first),
            };
            let keeping = sending
                .as_ref()
                .map_or(Keeping::DryRun, |sending| sending.keeping.clone());
            let results = ResultsWriter::create(&self.target, keeping, self.raw_output)?
                .for_report(self.report.is_some());
            let checks = Checks {
                input: Arc::clone(&input),
                null_token: self.input.null_token.clone(),
                duplicates: first.preflight.duplicates.into(),
                disposition: Disposition::Go,
                previous: None,
                keep_body: sending.as_ref().is_some_and(|sending| sending.keep_body),
                emails: sending.as_ref().and(first.emails),
                live: None,
                operation: Arc::new(rules),
            };
            let dry_run = sending.is_none();
            let progress = (
                ProgressMode::detect(quiet, dry_run, self.target.on_terminal()),
                rows,
            );
            let source = Source::Rows(checks);
            let finished = match (sending, connected.as_ref()) {
                (Some(sending), Some((client, _))) => {
                    let sender = Some((sending.operation, client.clone()));
                    pipeline::run(source, results, progress, &send, sender, interrupt.clone()).await
                }
                _ => {
                    let sender: Option<(Never, Never)> = None;
                    pipeline::run(source, results, progress, &send, sender, interrupt.clone()).await
                }
            };
            note_input_changed(&input);
            let route: Option<&Route> = connected.as_ref().map(|(_, route)| route);
            let ending = Ending {
                command: self.command,
                dry_run,
                input: Some(input_name(&self.input.source)),
                signal: interrupt.signal(),
                summary_json: self.summary_json.as_deref(),
                report: self.report.as_deref(),
                route,
                changes_exit: self.changes_exit,
            };
            finish(finished, &ending)
        })
    }
}

/// A run over rows once the account is reached and the first pass done:
/// what its operation may use (and take) to start.
pub(super) struct Started<'a> {
    pub client: &'a Client,
    pub send: &'a SendPolicy,
    pub(crate) interrupt: &'a Interrupt,
    pub quiet: bool,
    pub first: FirstPass,
}

/// What a run over rows sends with.
pub(crate) struct Sending<O> {
    pub operation: O,
    /// How the results file is kept (a plan's, a run that sent).
    pub(crate) keeping: Keeping,
    /// Hand each job its row's body, for an operation that compares it
    /// with the live state.
    pub(crate) keep_body: bool,
}
