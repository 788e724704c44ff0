//! One short orchestration per subcommand: each wires the stages together
//! (settings, the first pass, the pipeline, the summary) and says how the
//! run ended.

// What the commands share.
mod account;
mod ending;
mod limits;
mod list;
mod members;
mod record;
mod rows;
mod share;
mod users;

// The commands, one module each: a command is its file and its `mod` line
// here. build.rs reads these lines, up to the blank line after them, and
// makes clap's `Command` and the dispatch (`commands!` below) of them: the
// module `plan` is the variant `Plan(plan::Args)`, whose help and place in
// the list of commands are its `Args`'s (doc comment, `display_order`).
mod apply;
mod completions;
mod config;
mod export;
mod man;
mod plan;
mod sandbox;
mod validate;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::check::{EmailIndex, Preflight};
use crate::cli::{ApiArgs, RunArgs};
use crate::engine::Ended;
use crate::error::Fatal;
use crate::exit::{Exit, Signal};
use crate::http::Client;
use crate::model::api::User;
use crate::pipeline::Finished;
use crate::policy::SendPolicy;
use crate::policy::StopReason;
use crate::profile::Profile;
use crate::settings::{ApiSettings, InputSettings, InputSource, OutputTarget};
use crate::signals::Interrupt;
use crate::sink;
use crate::sink::{MetricsRun, ProgressMode, ReportContext, RunInfo};
use crate::table::input::Input;
use crate::table::record::{Existing, existing};
use crate::table::results::Status;

use account::*;
use ending::*;

/// The name the completions are registered for: the binary's.
const BIN: &str = "gcore-iam-bulk";

/// To standard output; a reader that stops early (`| head`) is no error
/// ([`Fatal::reader_gone`], for every command, in [`run`]).
pub(super) fn print(bytes: &[u8]) -> Result<Exit, Fatal> {
    let mut stdout = io::stdout().lock();
    (stdout.write_all(bytes).and_then(|()| stdout.flush()))
        .map(|()| Exit::Success)
        .map_err(Fatal::Stdout)
}

/// What runs a command: each command's arguments implement it in the
/// command's own file (`validate.rs` for its `Args`, ...).
pub(crate) trait Run {
    /// Whether the command was asked to print no progress (`--no-progress`).
    fn no_progress(&self) -> bool {
        false
    }
    /// Runs the command; `Err` is a fatal error (the run could not start).
    fn run(self) -> Result<Exit, Fatal>;
}

/// The commands, each once (build.rs lists the command modules): the
/// variant of [`Command`] clap parses and the arguments whose [`Run`] runs
/// it (each module's `Args`, with the command's help).
macro_rules! commands {
    ($($name:ident($args:ty),)*) => {
        #[derive(Debug, clap::Subcommand)]
        pub enum Command {
            $($name($args),)*
        }

        /// Runs one command; `Err` is a fatal error (the run could not start).
        pub(crate) fn run(cli: Cli) -> Result<Exit, Fatal> {
            started();
            match cli.command {
                $(Command::$name(args) => {
                    sink::set_no_progress(args.no_progress());
                    match args.run() {
                        Err(fatal) if fatal.reader_gone() => Ok(Exit::Success),
                        ended => ended,
                    }
                })*
            }
        }
    };
}

#[derive(Debug, clap::Parser)]
#[command(
    name = "gcore-iam-bulk",
    version,
    about = "Apply bulk changes from a CSV file or a spreadsheet (.xlsx, .ods, .xls) to the users \
             of a Gcore account",
    after_help = "The recommended order: export -o users.xlsx, edit it in a spreadsheet, plan \
                  users.xlsx (what would change), apply --plan users.plan.csv --undo-file undo.csv \
                  (exactly that, with a way back), plan users.xlsx --exit-code (0: done). Rehearse \
                  it first against `sandbox --users-file users.xlsx`.\n\n\
                  Exit codes: 0 every row is fine, 1 some row is invalid or failed, 2 the run could not \
                  start (nothing was sent), 3 plan --exit-code: some row would change, 130 Ctrl-C, 143 SIGTERM (every row is still in the results \
                  file), 74 the results could not be written after requests were sent."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// clap's `Command` and the dispatch, from the command modules above
// (build.rs reads them).
include!(concat!(env!("OUT_DIR"), "/commands.rs"));

/// Reads the profile `--profile` or `GCORE_PROFILE` names, if any, and
/// fills the sending flags left unset with its values; the API settings
/// take the rest from it (after flags and environment).
fn with_profile(api: &ApiArgs, run: &mut RunArgs) -> Result<Option<Profile>, Fatal> {
    let path = crate::profile::config_path();
    let profile = crate::profile::select(
        api.profile.as_deref(),
        crate::settings::from_environment,
        path.as_deref(),
    )?;
    crate::settings::SendingChoice::new(run, profile.as_ref()).fill(run);
    Ok(profile)
}

/// The runtime of a run: one thread drives the engine and every request
/// (the check and the results file have threads of their own), which sends
/// as fast on loopback as a worker per core for about a quarter less CPU
/// per row (issue 12; README, Performance). A rehearsal's in-process
/// sandbox, and the sandbox itself, get a worker per core: the server must
/// not wait on the client's thread.
fn runtime(threads: Threads) -> Result<tokio::runtime::Runtime, Fatal> {
    let mut builder = match threads {
        Threads::One => tokio::runtime::Builder::new_current_thread(),
        Threads::PerCore => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().build().map_err(Fatal::Runtime)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Threads {
    One,
    PerCore,
}

/// Which account a run talks to and through what, as shown (never the
/// key): for the summary JSON and the report.
struct Route {
    /// `api.gcore.com, key from profile b`.
    account: String,
    /// The proxy, password blanked, if one.
    proxy: Option<String>,
}

/// The client of a run that talks to the API, and its [`Route`] (said at
/// once unless `quiet`: `verb` is what the run does through the proxy).
fn connect(
    api: &ApiSettings,
    concurrency: usize,
    quiet: bool,
    verb: &str,
) -> Result<(Client, Route), Fatal> {
    let client = Client::new(&api.client(), concurrency)?;
    // The key pasted where a host or a proxy goes is not shown either (a
    // URL's host is lowercased: the blanker matches any ASCII case).
    let key = crate::secret::Blanker::new(api.api_key.expose());
    let blank = |text: String| key.blank(text.into()).into_owned();
    // Which account: the host and where the key came from, never the key.
    let host = api.base_url.host_str().unwrap_or_default();
    let host = match api.base_url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    // (A key pasted as a profile's name is blanked from where it came.)
    let account = format!(
        "{}, key from {}",
        blank(host),
        blank(api.key_from.to_string())
    );
    if !quiet {
        crate::say!("account: {account}");
        if !api.set_aside.is_empty() {
            crate::say!(
                "note: {} not used: --profile wins over the environment",
                api.set_aside.join(" and ")
            );
        }
    }
    let proxy = api.proxy.as_ref().map(|proxy| blank(proxy.to_string()));
    if let Some(proxy) = &proxy
        && !quiet
    {
        crate::say!("{verb} through the proxy {proxy}");
    }
    if api
        .proxy
        .as_ref()
        .is_some_and(|route| route.password_on_command_line())
    {
        crate::say!(
            "note: the proxy's password in --proxy can be read by other users of this machine \
             (ps) and stays in the shell's history; put the proxy URL in HTTPS_PROXY instead"
        );
    }
    Ok((client, Route { account, proxy }))
}

/// How a command goes on after a run whose record it would replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// `apply INPUT --resume`.
    Resume,
    /// `apply --plan` again, to another results file.
    PlanAgain,
    /// A command that does not go on from a record.
    Nothing,
}

/// A results file that records a run that sent requests is the only account
/// of what that run changed, and a file that is not a results file may be
/// anything: neither is replaced unless `overwrite`. A dry run's results are
/// replaced freely (so `validate` then `apply` needs no flag). `next`: how
/// the command goes on from the record; `statuses`: the words of the
/// command's operation besides every run's.
fn guard_results(
    target: &OutputTarget,
    overwrite: bool,
    next: Next,
    statuses: &'static [Status],
) -> Result<(), Fatal> {
    let OutputTarget::File(path) = target else {
        return Ok(());
    };
    if overwrite {
        return Ok(());
    }
    let resume = match next {
        Next::Resume => "go on from it with --resume, ",
        Next::PlanAgain => {
            "a plan is not resumed: apply it again to another file with -o (the rows it changed \
             already are unchanged), "
        }
        Next::Nothing => "",
    };
    match existing(path, statuses) {
        Existing::Nothing | Existing::DryRun | Existing::Plan => Ok(()),
        Existing::Sent => Err(Fatal::Usage(format!(
            "the results file {} already exists and records a run that sent requests, the only \
             account of what it changed; {resume}move it away, choose another file with -o, or \
             pass --overwrite",
            path.display()
        ))),
        Existing::Foreign(why) => Err(Fatal::Usage(format!(
            "{} already exists and is not a results file of this tool ({}); choose another file \
             with -o, or pass --overwrite to replace it",
            path.display(),
            crate::model::patch::show(&why)
        ))),
    }
}

/// Checks, before anything is read or sent, that the files of a run are
/// pairwise different files (by name and by inode): the input, the results
/// and their journal, the undo file and the file that remembers it, the
/// plan, the summary, the report. `others`: the run's other files as
/// `(path, what it is, the flag that names it)`, `None` when not given.
pub(crate) fn check_distinct(
    input: &InputSource,
    output: &OutputTarget,
    others: &[(Option<&Path>, &str, &str)],
) -> Result<(), Fatal> {
    let mut files: Vec<(PathBuf, String, &str)> = Vec::new();
    if let InputSource::File(input) = input {
        files.push((input.clone(), "input file".to_string(), "the input"));
    }
    if let OutputTarget::File(results) = output {
        files.push((results.clone(), "results file".to_string(), "-o"));
        files.push((
            crate::table::record::journal_path(results),
            "results file's journal".to_string(),
            "-o",
        ));
        files.push((
            crate::table::undo::remembered_path(results),
            "file where the results remember their undo file".to_string(),
            "-o",
        ));
        files.push((
            crate::table::record::account_path(results),
            "file where the results remember their account".to_string(),
            "-o",
        ));
    }
    for (path, what, flag) in others {
        if let Some(path) = path {
            files.push((path.to_path_buf(), what.to_string(), flag));
        }
    }
    for (at, (path, what, flag)) in files.iter().enumerate() {
        for (other, other_what, _) in &files[..at] {
            if crate::settings::same_file(path, other) {
                return Err(Fatal::Usage(format!(
                    "the {what} {} is also the {other_what}; each file of a run must be a \
                     file of its own: choose another {flag}",
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

/// Says when the input file changed while the run went on: the run used the
/// copy it took at the start (the rows checked are the rows sent).
fn note_input_changed(input: &Input) {
    if input.changed() {
        crate::say!(
            "note: {} changed while the run went on; the run checked and sent the rows the file \
             held when it started, and the results are about those",
            input.display_path().display()
        );
    }
}

/// When this process started its command, for `started_at`.
static STARTED: std::sync::OnceLock<SystemTime> = std::sync::OnceLock::new();

fn started() -> SystemTime {
    *STARTED.get_or_init(SystemTime::now)
}

/// The input as a summary names it: `-` for standard input.
fn input_name(source: &InputSource) -> String {
    match source {
        InputSource::Stdin => "-".to_string(),
        InputSource::File(path) => path.display().to_string(),
    }
}

/// The files the API settings were read from, as the output checks take
/// them (`--report` must not replace the key's file or a certificate).
fn read_by(api: &ApiSettings) -> impl Iterator<Item = (Option<&Path>, &'static str)> {
    api.files_read
        .iter()
        .map(|(path, what)| (Some(path.as_path()), *what))
}
