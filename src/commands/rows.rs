//! A command over the rows of an input, from its flags to its exit code:
//! the settings made once and checked ([`RowsRun::new`]), then one path
//! ([`RowsRun::send_rows`]): the first pass (nothing is sent while a row
//! is invalid), the record of a run that changes the account (`--resume`,
//! the undo file, the account it belongs to), the operation, the engine,
//! the results file, the summary, the report and the exit code. The dry
//! run is the same path without a sender, so every command over rows has
//! one. `validate`, `plan` and `apply` (but `apply --plan`, whose rows are
//! a plan's) run through it, and so does any new command whose operation
//! sends a request (or a few) per row.

mod started;
pub(crate) use started::{Sending, Started};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use super::limits::{Remembered, recall_limit};
use super::members::Members;
use super::record::{
    mark_account, note_fresh_resume, note_resuming, note_undo, open_members, open_previous,
    open_undo, read_earlier, refuse_note, resumed_undo, same_account,
};
use super::{
    Ending, Next, Route, Threads, check_distinct, connect, finish, first_pass, guard_results,
    input_name, note_input_changed, read_by, runtime, sandbox, with_profile,
};
use crate::check::{Rows, verify_kept};
use crate::cli::{ApiArgs, InputArgs, OutputArgs, RunArgs};
use crate::engine::{Never, Operation};
use crate::error::Fatal;
use crate::exit::Exit;
use crate::pipeline::{self, Checks, Disposition, Source};
use crate::policy::SendPolicy;
use crate::settings::{
    ApiSettings, InputSettings, OutputTarget, RunSettings, check_metrics_path, check_report_path,
    check_summary_path, check_undo_path,
};
use crate::signals::Interrupt;
use crate::sink::{Keeping, ProgressMode, ResultsWriter};
use crate::table::members_log::Earlier;
use crate::table::record::Previous;

/// The settings of a command over rows, each made once from the flags,
/// the environment and the profile, and every file of the run checked
/// distinct before anything is read.
pub(crate) struct RowsRun {
    /// What the user ran (`validate`, `plan`, ...), for the summary JSON.
    pub command: &'static str,
    /// The operation's rules for its rows (the same with or without a
    /// sender; `--resume` reads its words back).
    rules: Arc<dyn Rows>,
    /// Where the run sends, and how; `None`: a dry run, which reads no
    /// account and needs no key.
    sending: Option<(Account, RunSettings)>,
    pub input: InputSettings,
    pub target: OutputTarget,
    pub summary_json: Option<PathBuf>,
    /// `--metrics-file`: the summary for Prometheus (runs that send).
    metrics: Option<PathBuf>,
    /// `--report`: the run's page.
    pub report: Option<PathBuf>,
    pub quiet: bool,
    raw_output: bool,
    /// `--exit-code`: a row that would change ends the run with 3.
    pub(crate) changes_exit: bool,
    keeps: Kept,
    /// `--max-removals`, `--account-id`.
    members: Members,
    /// The account's rate limit as its runs met it (not for a rehearsal).
    limit: Option<Remembered>,
}

/// The account a run sends to.
enum Account {
    Api(Box<ApiSettings>),
    /// An in-process sandbox of `users` users, started when the run starts
    /// (`--sandbox`): its address and key are known only then.
    Rehearsal {
        api: ApiArgs,
        users: u64,
        tls: bool,
    },
}

/// What the results file of a run that sends is.
pub(crate) enum Keeps {
    /// A plan: what the rows would do, replaced whole at the end; the run
    /// only reads.
    Plan,
    /// The record of a run that changes the account: it can be resumed,
    /// it remembers its account and its undo file.
    Record(RecordFlags),
}

/// The flags of a record (`apply`'s; a new command takes the default).
#[derive(Default)]
pub(crate) struct RecordFlags {
    /// `--resume`: go on from the results file.
    pub resume: bool,
    /// `--undo-file`.
    pub undo_file: Option<PathBuf>,
    /// `--accept-partial-undo`.
    pub accept_partial_undo: bool,
    /// `--skip-invalid`: send the valid rows even when some row is invalid.
    pub skip_invalid: bool,
}

/// [`Keeps`], checked: a record's earlier run opened, its undo file found.
enum Kept {
    Plan,
    Record {
        previous: Option<Arc<Previous>>,
        /// What the runs of the record being resumed invited and removed.
        earlier: Option<Arc<Earlier>>,
        undo_file: Option<PathBuf>,
        accept_partial_undo: bool,
        skip_invalid: bool,
    },
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
    /// A plan or a record (a dry run keeps neither).
    pub keeps: Keeps,
    /// `--sandbox` (`--sandbox-users`, `--tls`): send to an in-process
    /// sandbox instead of the API.
    pub(crate) rehearsal: Option<(u64, bool)>,
    /// Invitations and removals: `--max-removals`, `--account-id`.
    pub(crate) members: Members,
}

impl RowsRun {
    /// `rules`: the operation's rules for its rows.
    pub(super) fn new(flags: RowsFlags<'_>, rules: impl Rows + 'static) -> Result<RowsRun, Fatal> {
        // The key and the base URL first: without them nothing else
        // matters, and a user who fixes one problem should not meet a more
        // basic one next.
        let sending = match flags.sending {
            Some((api, run)) => {
                let profile = with_profile(api, run)?;
                let account = match flags.rehearsal {
                    Some((users, tls)) => Account::Rehearsal {
                        api: api.clone(),
                        users,
                        tls,
                    },
                    None => Account::Api(Box::new(ApiSettings::with_profile(
                        api,
                        profile.as_ref(),
                        crate::settings::from_environment,
                    )?)),
                };
                Some((account, run))
            }
            None => None,
        };
        let input = InputSettings::from_args(flags.input)?;
        let target = OutputTarget::from_args(flags.output, &input.source, flags.suffix)?;
        let mut limit = None;
        let sending = match sending {
            Some((account, run)) => {
                let memory = (run.forget_rate, !run.no_share);
                let mut run = RunSettings::from_args(run)?;
                if let Account::Api(api) = &account {
                    run.send.key_from = Some(api.key_from.clone());
                    limit = recall_limit(api, &mut run.send, memory, flags.output.quiet);
                }
                run.send.timeline = flags.output.report.is_some();
                Some((account, run))
            }
            None => None,
        };
        let summary_json = match &sending {
            Some((_, run)) => run.summary_json.clone(),
            None => flags.summary_json.map(Path::to_path_buf),
        };
        if let Some(summary) = &summary_json {
            check_summary_path(summary, (&input.source, &target), flags.output.overwrite)?;
        }
        let metrics = sending
            .as_ref()
            .and_then(|(_, run)| run.metrics_file.clone());
        if let Some(metrics) = &metrics {
            check_metrics_path(metrics, (&input.source, &target), flags.output.overwrite)?;
        }
        let resume = matches!(&flags.keeps, Keeps::Record(record) if record.resume);
        let mut keeps = match flags.keeps {
            Keeps::Plan => Kept::Plan,
            Keeps::Record(record) => Kept::Record {
                previous: None,
                earlier: None,
                undo_file: record.undo_file,
                accept_partial_undo: record.accept_partial_undo,
                skip_invalid: record.skip_invalid,
            },
        };
        let report = flags.output.report.clone();
        if let Some(report) = &report {
            let mut others = vec![
                (summary_json.as_deref(), "summary file"),
                (metrics.as_deref(), "metrics file"),
            ];
            if let Kept::Record { undo_file, .. } = &keeps {
                others.push((undo_file.as_deref(), "undo file"));
            }
            match &sending {
                Some((Account::Api(api), _)) => others.extend(read_by(api)),
                // A rehearsal's only files are the certificates it is told to trust.
                Some((Account::Rehearsal { api, .. }, _)) => others.extend(
                    api.ca_cert
                        .iter()
                        .map(|ca| (Some(ca.as_path()), "certificate file")),
                ),
                None => {}
            }
            check_report_path(
                report,
                (&input.source, &target, &others),
                flags.output.overwrite,
            )?;
        }
        if let Kept::Record {
            previous,
            undo_file,
            earlier,
            ..
        } = &mut keeps
            && resume
        {
            // (No results file: nothing to go on from, the run starts afresh.)
            *previous = open_previous(&target, rules.statuses())?.map(Arc::new);
            if previous.is_none() && !flags.output.quiet {
                note_fresh_resume(&target);
            }
            // A resume goes on with the account of the run it resumes, and
            // with the undo file its record remembers.
            if let (Some(_), OutputTarget::File(results)) = (&previous, &target) {
                if let Some((Account::Api(api), _)) = &sending {
                    same_account(results, api)?;
                }
                *undo_file = resumed_undo(results, undo_file.take(), flags.output.quiet)?;
                *earlier = Some(Arc::new(read_earlier(results)?));
            }
        }
        let (undo_file, continuing) = match &keeps {
            Kept::Record {
                undo_file,
                previous,
                ..
            } => (undo_file.clone(), previous.is_some()),
            Kept::Plan => (None, false),
        };
        check_distinct(
            &input.source,
            &target,
            &[
                (undo_file.as_deref(), "undo file", "--undo-file"),
                (summary_json.as_deref(), "summary file", "--summary-json"),
                (metrics.as_deref(), "metrics file", "--metrics-file"),
                (report.as_deref(), "report", "--report"),
            ],
        )?;
        if let Some(undo) = &undo_file {
            // Only the run whose record is resumed goes on with its undo file.
            let paths = (&input.source, &target, summary_json.as_deref());
            check_undo_path(undo, paths, continuing)?;
        }
        // A rehearsal's own file (<stem>.rehearsal.csv) is replaced at every rehearsal.
        let own_rehearsal_file = flags.rehearsal.is_some() && flags.output.output.is_none();
        if !resume && !own_rehearsal_file {
            guard_results(
                &target,
                flags.output.overwrite,
                flags.next,
                rules.statuses(),
            )?;
        }
        Ok(RowsRun {
            command: flags.command,
            rules: Arc::new(rules),
            sending,
            input,
            target,
            summary_json,
            metrics,
            report,
            quiet: flags.output.quiet,
            raw_output: flags.output.raw_output,
            changes_exit: false,
            keeps,
            members: flags.members,
            limit,
        })
    }

    /// Runs every row: the first pass; then what the rules make of each
    /// valid row; then, for a run that sends, the operation `start` makes
    /// once the account is reached (it may read the account first:
    /// [`Started`]), through the engine; for a dry run, every row it would
    /// send decided at once. Then the summary, the report and the exit code.
    pub(crate) fn send_rows<O, F>(self, start: F) -> Result<Exit, Fatal>
    where
        O: Operation + 'static,
        F: AsyncFnOnce(&mut Started<'_>) -> Result<Sending<O>, Fatal>,
    {
        let quiet = self.quiet;
        let rehearsal = match &self.sending {
            Some((Account::Rehearsal { users, tls, .. }, _)) => Some((*users, *tls)),
            _ => None,
        };
        let threads = match rehearsal {
            Some(_) => Threads::PerCore,
            None => Threads::One,
        };
        runtime(threads)?.block_on(async {
            let interrupt = Interrupt::install();
            let running = match rehearsal {
                Some((users, tls)) => Some(sandbox::rehearsal(users, tls, quiet).await?),
                None => None,
            };
            let for_sandbox = match (&self.sending, &running) {
                (Some((Account::Rehearsal { api, .. }, _)), Some(running)) => {
                    Some(ApiSettings::for_sandbox(
                        api,
                        &running.base_url(),
                        running.api_key(),
                        running.ca_pem(),
                    )?)
                }
                _ => None,
            };
            let api = match &self.sending {
                Some((Account::Api(api), _)) => Some(&**api),
                _ => for_sandbox.as_ref(),
            };
            let send = match &self.sending {
                Some((_, run)) => run.send.clone(),
                None => SendPolicy::dry_run(),
            };
            let verb = match self.keeps {
                Kept::Plan => "reading",
                Kept::Record { .. } => "sending",
            };
            let connected = match api {
                Some(api) => Some(connect(api, send.concurrency.get(), quiet, verb)?),
                None => None,
            };
            let account = connected.as_ref().map(|(client, _)| (client, &send));
            // A run that may change the account needs to know before it starts.
            let count_invalid = connected.is_some() && matches!(self.keeps, Kept::Record { .. });
            let earlier = match &self.keeps {
                Kept::Record { earlier, .. } => earlier.clone(),
                Kept::Plan => None,
            };
            let mut first = first_pass(
                &self.input,
                count_invalid,
                quiet,
                &interrupt,
                account,
                earlier.clone(),
            )
            .await?;
            // A sheet cut short must not empty the account: refused before
            // anything is sent (a dry run says that a run would be).
            let plan = matches!(self.keeps, Kept::Plan);
            let run = (plan, connected.is_none());
            (self.members).guard_rows(&first.preflight, run)?;
            let input = Arc::clone(&first.input);
            let rows = first.preflight.rows;
            let (previous, resuming) = match &self.keeps {
                Kept::Record {
                    previous: Some(previous),
                    ..
                } => {
                    let kept = verify_kept(
                        &input,
                        &self.input.null_token,
                        &first.preflight.duplicates,
                        first.emails.as_deref(),
                        previous,
                        &*self.rules,
                        earlier.as_deref(),
                    )?;
                    // A kept row by an address the run itself changed is not invalid.
                    first.preflight.invalid -= kept.refused_now.min(first.preflight.invalid);
                    let resuming = (previous.path().display().to_string(), kept.rows);
                    (Some(Arc::clone(previous)), Some(resuming))
                }
                _ => (None, None),
            };
            // The account is read first (a run it refuses, `--account-id`
            // of another account, leaves no file); then a record's results
            // file is made (and locked) before the undo file is opened; a
            // plan's once the account's users are read.
            let account = match &connected {
                Some((client, _)) => {
                    (self.members)
                        .account_for(&first.preflight, client, &send, &interrupt)
                        .await?
                }
                None => None,
            };
            let mut results = None;
            let mut undo = None;
            let mut members = None;
            if let (
                Some((client_api, _)),
                Kept::Record {
                    undo_file,
                    accept_partial_undo,
                    ..
                },
            ) = (api.zip(connected.as_ref()), &self.keeps)
            {
                let keeping = match previous {
                    Some(_) => Keeping::Resume,
                    None => Keeping::Fresh,
                };
                results = Some(self.results_writer(keeping)?);
                // Opened once the results file is ours, so two runs never share it.
                undo = open_undo(
                    undo_file.as_deref(),
                    *accept_partial_undo,
                    previous.is_some(),
                    &self.target,
                )?;
                // Removals an earlier run heard refused left no user to invite back.
                if let (Some(undo), Some(earlier)) = (&undo, &earlier) {
                    earlier
                        .kept()
                        .for_each(|email| undo.retract_invitation_of(email));
                }
                if running.is_none() {
                    mark_account(&self.target, client_api)?;
                }
                let continuing = previous.is_some();
                members = open_members(&self.target, &first.preflight, continuing)?;
            }
            // The operation starts only where there is an account to send to.
            let (mut sending, first) = match &connected {
                Some((client, _)) => {
                    let mut started = Started {
                        account_id: account.map(|account| account.id),
                        current_user: account.and_then(|account| account.current_user),
                        earlier: earlier.clone(),
                        members: members.clone(),
                        client,
                        send: &send,
                        interrupt: &interrupt,
                        quiet,
                        null_token: &self.input.null_token,
                        undo: undo.clone(),
                        first,
                    };
                    (Some(start(&mut started).await?), started.first)
                }
                None => (None, first),
            };
            // A plan's removals of users no row names (`--remove-missing`)
            // come after the input's rows.
            let extra = sending
                .as_mut()
                .map(|sending| std::mem::take(&mut sending.extra))
                .unwrap_or_default();
            let rows = rows + extra.len() as u64;
            let results = match results {
                Some(results) => results,
                None => {
                    let keeping = match (&sending, &self.keeps) {
                        (None, _) => Keeping::DryRun,
                        // When, and how many rows: a plan cut at its end is seen.
                        (Some(_), Kept::Plan) => Keeping::Plan(format!(
                            "{}; {} rows",
                            httpdate::fmt_http_date(SystemTime::now()),
                            rows
                        )),
                        (Some(_), Kept::Record { .. }) => Keeping::Fresh,
                    };
                    self.results_writer(keeping)?
                }
            };
            let mut preflight = first.preflight;
            let live = sending.as_ref().and_then(|sending| sending.live.clone());
            let mut invalid = preflight.invalid;
            if let Some(live) = &live {
                let (live, input) = (Arc::clone(live), Arc::clone(&input));
                let (null_token, emails) = (self.input.null_token.clone(), first.emails.clone());
                let duplicates = std::mem::take(&mut preflight.duplicates);
                let (refused, duplicates) = tokio::task::spawn_blocking(move || {
                    let refused = live.count(&input, &null_token, &duplicates, emails.as_deref());
                    (refused, duplicates)
                })
                .await
                .expect("checking the rows does not panic");
                preflight.duplicates = duplicates;
                invalid += refused?;
            }
            let refuse = match self.keeps {
                Kept::Record { skip_invalid, .. } => sending.is_some() && !skip_invalid,
                Kept::Plan => false,
            };
            let disposition = match invalid {
                invalid if invalid > 0 && refuse => {
                    refuse_note(invalid);
                    Disposition::Refuse { invalid }
                }
                _ => Disposition::Go,
            };
            // Said once the results file is ours (locked).
            if let Some((path, kept)) = resuming
                && !quiet
            {
                let members = preflight.invites + preflight.removals > 0;
                note_resuming(&path, kept, self.rules.statuses(), members);
            }
            let checks = Checks {
                input: Arc::clone(&input),
                null_token: self.input.null_token.clone(),
                duplicates: preflight.duplicates.into(),
                disposition,
                earlier,
                extra,
                previous,
                keep_body: sending.as_ref().is_some_and(|sending| sending.keep_body),
                emails: sending.as_ref().and(first.emails),
                live,
                operation: Arc::clone(&self.rules),
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
            if let Some(running) = running {
                running.stop().await;
            }
            note_input_changed(&input);
            let route: Option<&Route> = connected.as_ref().map(|(_, route)| route);
            let ending = Ending {
                command: self.command,
                dry_run,
                input: Some(input_name(&self.input.source)),
                signal: interrupt.signal(),
                summary_json: self.summary_json.as_deref(),
                metrics: self.metrics.as_deref(),
                report: self.report.as_deref(),
                route,
                changes_exit: self.changes_exit,
            };
            let learned = (finished.as_ref().ok()).and_then(|f| f.summary.learned_limit());
            let exit = finish(finished, &ending);
            if let Some(memory) = &self.limit {
                memory.learned(learned);
            }
            if let Some(undo) = &undo {
                note_undo(undo);
            }
            exit
        })
    }

    fn results_writer(&self, keeping: Keeping) -> Result<ResultsWriter, Fatal> {
        Ok(
            ResultsWriter::create(&self.target, keeping, self.raw_output)?
                .for_report(self.report.is_some()),
        )
    }
}
