//! One short orchestration per subcommand: each wires the stages together
//! (settings, the first pass, the pipeline, the summary) and says how the
//! run ended.

mod apply;
mod config;
mod docs;
mod export;
mod list;
mod plan;
mod rows;
mod sandbox;
mod users;
mod validate;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use crate::check::{EmailIndex, Preflight};
use crate::cli::{
    ApiArgs, ApplyArgs, CompletionsArgs, ConfigArgs, ExportArgs, ManArgs, PlanArgs, RunArgs,
    SandboxArgs, ValidateArgs,
};
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
use crate::sink::{ProgressMode, ReportContext, RunInfo};
use crate::table::input::Input;
use crate::table::record::{Existing, existing};

/// What runs a command: each command's arguments implement it in the
/// command's own file (`validate.rs` for [`ValidateArgs`], ...).
pub trait Run {
    /// Whether the command was asked to print no progress (`--no-progress`).
    fn no_progress(&self) -> bool {
        false
    }
    /// Runs the command; `Err` is a fatal error (the run could not start).
    fn run(self) -> Result<Exit, Fatal>;
}

/// The commands, each once: the variant of [`Command`] clap parses, with
/// its help, and the arguments whose [`Run`] runs it. A new command is one
/// line here (and its file).
macro_rules! commands {
    ($($(#[$meta:meta])* $name:ident($args:ty),)*) => {
        #[derive(Debug, clap::Subcommand)]
        pub enum Command {
            $($(#[$meta])* $name($args),)*
        }

        /// Runs one command; `Err` is a fatal error (the run could not start).
        pub fn run(cli: Cli) -> Result<Exit, Fatal> {
            started();
            match cli.command {
                $(Command::$name(args) => {
                    sink::set_no_progress(args.no_progress());
                    args.run()
                })*
            }
        }
    };
}

#[derive(Debug, clap::Parser)]
#[command(
    name = "gcore-iam-bulk",
    version,
    about = "Apply bulk changes from a CSV file to the users of a Gcore account",
    after_help = "Exit codes: 0 every row is fine, 1 some row is invalid or failed, 2 the run could not \
                  start (nothing was sent), 3 plan --exit-code: some row would change, 130 Ctrl-C, 143 SIGTERM (every row is still in the results \
                  file), 74 the results could not be written after requests were sent."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

commands! {
/// Check every row of INPUT and write the results file; sends nothing.
#[command(after_help = "Examples:
  gcore-iam-bulk validate users.csv                # writes users.results.csv: what would be sent
  gcore-iam-bulk validate users.xlsx --sheet Changes
  cat users.csv | gcore-iam-bulk validate - -o -   # from a pipe, results to the terminal")]
Validate(ValidateArgs),
/// Write every user of the account to a CSV in the input format: a file to edit and apply.
#[command(after_help = "Examples:
  gcore-iam-bulk export -o users.xlsx              # a workbook to edit, every cell text
  gcore-iam-bulk export                            # users.csv
  gcore-iam-bulk export -o - | grep example.com")]
Export(ExportArgs),
/// Compare every valid row of INPUT with the user's live state and write what would change;
/// sends no change (only reads).
#[command(after_help = "Examples:
  gcore-iam-bulk plan users.csv                    # writes users.plan.csv: what would change
  gcore-iam-bulk plan users.csv --exit-code        # exit 3 when something would change
  gcore-iam-bulk apply --plan users.plan.csv       # then apply exactly what it showed")]
Plan(PlanArgs),
/// Send the changes of INPUT to the API (with --dry-run: the same as validate).
#[command(after_help = "Examples:
  gcore-iam-bulk apply users.csv --sandbox         # rehearse against a local stand-in of the API
  GCORE_API_KEY=... gcore-iam-bulk apply users.csv --rate auto
  gcore-iam-bulk apply users.csv --skip-unchanged --undo-file undo.csv
  gcore-iam-bulk apply users.csv --resume          # go on after Ctrl-C, a crash or kill -9
  gcore-iam-bulk apply users.csv --report run.html # and the run on one page, to hand over")]
Apply(ApplyArgs),
/// Serve a local stand-in of the Gcore IAM users API, for rehearsals and tests.
#[command(after_help = "Examples:
  gcore-iam-bulk sandbox                           # 1000 users on a free loopback port
  gcore-iam-bulk sandbox --users 5000 --rate 100 --burst 5 --error-rate 0.05")]
Sandbox(SandboxArgs),
/// Print the completion script for SHELL to standard output (see the README for where it goes).
#[command(after_help = "Examples:
  gcore-iam-bulk completions bash > ~/.local/share/bash-completion/completions/gcore-iam-bulk
  gcore-iam-bulk completions zsh > ~/.zfunc/_gcore-iam-bulk")]
Completions(CompletionsArgs),
/// Print the manual page (roff) to standard output: `gcore-iam-bulk man > gcore-iam-bulk.1`.
Man(ManArgs),
/// Show the settings a run would use (base URL, key, rate, burst, concurrency) and where
/// each comes from: a flag, the environment, the profile, or the default. The key is never shown.
#[command(after_help = "Examples:
  gcore-iam-bulk config                            # what a run with no flags would use
  gcore-iam-bulk config --profile reseller-b --rate 5")]
Config(ConfigArgs),}

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

/// What the first pass hands on: the input, what it found, and the index
/// that resolves `current_email` (when the input has that column and the
/// run reads the account).
pub(crate) struct FirstPass {
    input: Arc<Input>,
    preflight: Preflight,
    emails: Option<Arc<EmailIndex>>,
    /// The account's users, when they were read to resolve addresses.
    users: Option<AccountList>,
}

/// The account's users as a whole read of its list gave them.
struct AccountList {
    users: Vec<User>,
    /// Users whose list entry leaves out a field a row can set, with the
    /// fields: their values for those fields are unknown, not null.
    partial: BTreeMap<u64, Vec<&'static str>>,
}

/// Opens the input (spooling standard input) and reads it once, off the
/// runtime's workers; says what the user should know before anything runs.
/// `count_invalid`: a run that may send needs to know before it starts.
/// `account`: where to read the user list when rows name users by
/// `current_email` (a dry run passes `None`: addresses stay unresolved).
async fn first_pass(
    settings: &InputSettings,
    count_invalid: bool,
    quiet: bool,
    interrupt: &Interrupt,
    account: Option<(&Client, &SendPolicy)>,
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
    let by_email = input.rows()?.header().current_email.is_some();
    let users = match account {
        Some((client, policy)) if by_email => {
            if !quiet {
                crate::say!("reading the account's users to resolve current_email");
            }
            let why = "the rows name users by current_email";
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
        let preflight = Preflight::scan_with(&input, &null_token, count_invalid, index.as_deref())?;
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

/// Every user of the account, read by pages (again while the account
/// changes during the read, up to [`list::LIST_READS`] reads); a list that
/// cannot be read whole stops the run before anything is sent (`why` says
/// what it was for): an address missing from it would be reported as
/// unknown.
async fn whole_list(
    client: &Client,
    policy: &SendPolicy,
    interrupt: &Interrupt,
    quiet: bool,
    why: &str,
) -> Result<AccountList, Fatal> {
    let mode = ProgressMode::detect(quiet, false, false);
    let started = std::time::Instant::now();
    let how = list::Reading {
        page_size: LIST_PAGE_SIZE,
        mode,
        reads: list::LIST_READS,
        quiet,
    };
    let listed = list::list_users(client, policy, interrupt, how, None).await?;
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

/// The line that says what a read of the list took (its requests are not
/// in the run's summary).
fn say_list_read(listed: &list::Listed, started: std::time::Instant, quiet: bool) {
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
async fn live_snapshot(
    users: Option<AccountList>,
    preflight: &Preflight,
    client: &Client,
    policy: &SendPolicy,
    interrupt: &Interrupt,
    quiet: bool,
) -> Result<Option<Arc<HashMap<u64, User>>>, Fatal> {
    // Rows known to be invalid are never compared (a plan does not count them).
    let valid = preflight.rows - preflight.invalid;
    let instead = "reading each row's user with one GET for each row instead";
    let list = match users {
        Some(list) => Some(list),
        // One row or two: no list can take fewer requests.
        None if valid <= 2 => None,
        None => match list::first_page(client, policy, LIST_PAGE_SIZE, interrupt).await? {
            None => None,
            Some(first) => {
                let (count, per_page) = (first.count, first.results.len() as u64);
                match list::pages_for(count, per_page) {
                    Err(problem) => {
                        if !quiet {
                            crate::say!("note: {problem}; {instead}");
                        }
                        None
                    }
                    // The first page is read: the count's request is the first of the pages.
                    Ok(pages) if pages < valid => {
                        if !quiet {
                            crate::say!(
                                "reading the account's {count} users by pages ({pages} requests \
                                 with the count) rather than one GET for each of {valid} rows"
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
                    Ok(_) => None,
                }
            }
        },
    };
    Ok(list.map(|AccountList { users, partial }| {
        if !partial.is_empty() && !quiet {
            crate::say!(
                "note: the account's list leaves out {} of {}: a row naming one of them reads it \
                 with a GET",
                left_out_fields(&partial),
                crate::sink::count(partial.len() as u64, "user", "users"),
            );
        }
        Arc::new(
            users
                .into_iter()
                .filter_map(|user| Some((user.id?, user)))
                .filter(|(id, _)| !partial.contains_key(id))
                .collect(),
        )
    }))
}

/// The users of the input's valid rows, for a run that compares them with
/// the live state before it sends: those of `snapshot` (the account's
/// list, when it was read) that hold every field their rows change, and
/// a GET for each other one. A user that cannot be read is left out: its
/// row reads it again, and says why it could not.
async fn read_rows_users(
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
    users::read_users(client, policy, to_read, &mut users, interrupt, mode)
        .await
        .map_err(|why| {
            Fatal::Usage(format!(
                "the users could not be read before sending ({why}); nothing was sent"
            ))
        })?;
    Ok(users)
}

/// `phone and groups`: the fields the list leaves out of some user.
fn left_out_fields(partial: &BTreeMap<u64, Vec<&'static str>>) -> String {
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
const LIST_PAGE_SIZE: u64 = 500;

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
/// the command goes on from the record.
fn guard_results(target: &OutputTarget, overwrite: bool, next: Next) -> Result<(), Fatal> {
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
    match existing(path) {
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
pub fn check_distinct(
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

/// What decides how a run ends, besides its rows.
#[derive(Default)]
struct Ending<'a> {
    /// `validate`, `apply` or `plan`, for the summary JSON.
    command: &'static str,
    dry_run: bool,
    /// The input as given.
    input: Option<String>,
    /// The signal that came, if any.
    signal: Option<Signal>,
    summary_json: Option<&'a Path>,
    /// `--report`: the run's page.
    report: Option<&'a Path>,
    /// The account and proxy of a run that talked to the API.
    route: Option<&'a Route>,
    /// `plan --exit-code`: a row that would change ends the run with 3.
    changes_exit: bool,
}

/// Prints the summary, writes it as JSON when asked, and says how the run
/// ended.
fn finish(finished: Result<Finished, Fatal>, ending: &Ending) -> Result<Exit, Fatal> {
    let finished = match finished {
        Ok(finished) => finished,
        Err(fatal) => {
            // The page needs the run's record; say so rather than leave an
            // old page (or none) to pass for this run's.
            if let Some(report) = ending.report {
                crate::say!(
                    "note: no report was written to {}: the run did not end with its record \
                     complete (see the error below)",
                    report.display()
                );
            }
            return Err(fatal);
        }
    };
    let Finished {
        summary,
        ended,
        results_path,
    } = &finished;
    let Ending {
        command,
        dry_run,
        ref input,
        signal,
        summary_json,
        report,
        route,
        changes_exit,
    } = *ending;
    let proxy = route.and_then(|route| route.proxy.as_deref());
    let stopped_by = signal.filter(|_| matches!(ended, Ended::Stopped(StopReason::Interrupted)));
    let mut exit = Exit::of_run(stopped_by, summary.has_problems());
    if changes_exit && exit == Exit::Success && summary.planned() > 0 {
        exit = Exit::WouldChange;
    }
    let _ = std::io::stderr().write_all(summary.render(results_path, proxy).as_bytes());
    let mut run = RunInfo::new(command, dry_run, input.clone(), started());
    run.account = route.map(|route| route.account.clone());
    if let Some(path) = summary_json {
        summary.write_json(path, &run, results_path, exit, proxy)?;
    }
    if let Some(path) = report {
        let stopped = match ended {
            Ended::Stopped(why) => Some(why.to_string()),
            Ended::Finished | Ended::SinkGone { .. } => None,
        };
        let context = ReportContext {
            run: &run,
            results: results_path,
            exit,
            proxy,
            stopped,
        };
        // The rows' fate is what the exit code tells; a page that could not
        // be written (checked before the run, so a full disk) is said, and
        // changes nothing of it.
        match summary.write_report(path, &context) {
            Ok(()) => {}
            Err(fatal) => crate::say!(
                "error: {}; the run itself ended as the summary above says",
                crate::error::error_chain(&fatal)
            ),
        }
    }
    Ok(exit)
}
