//! What the user types: clap's types of the arguments and nothing else.
//! The list of commands is in `commands` (each runs from its own file);
//! `settings` turns these raw values into checked settings; the rest of
//! the crate never sees them.

use std::path::PathBuf;

use clap::Args;

/// Show the settings a run would use (base URL, key, rate, burst, concurrency) and where
/// each comes from: a flag, the environment, the profile, or the default. The key is never shown.
/// Exits 2, with the run's message, when a run would stop on these settings.
#[derive(Debug, Args)]
#[command(
    display_order = 7,
    after_help = "Examples:
  gcore-iam-bulk config                            # what a run with no flags would use
  gcore-iam-bulk config --profile reseller-b --rate 5"
)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Print the completion script for SHELL to standard output (see docs/REFERENCE.md for where it goes).
#[derive(Debug, Args)]
#[command(
    display_order = 5,
    after_help = "Examples:
  gcore-iam-bulk completions bash > ~/.local/share/bash-completion/completions/gcore-iam-bulk
  gcore-iam-bulk completions zsh > ~/.zfunc/_gcore-iam-bulk"
)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, powershell or elvish.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Check every row of INPUT and write the results file; sends nothing.
#[derive(Debug, Args)]
#[command(
    display_order = 0,
    after_help = "Examples:
  gcore-iam-bulk validate users.csv                # writes users.results.csv: what would be sent
  gcore-iam-bulk validate users.xlsx --sheet Changes
  cat users.csv | gcore-iam-bulk validate - -o -   # from a pipe, results to the terminal"
)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Also write the summary as JSON to this file, for monitoring.
    #[arg(long, value_name = "PATH")]
    pub summary_json: Option<PathBuf>,
}

/// Write every user of the account to an .xlsx workbook or a CSV in the input format: a file to
/// edit and apply.
#[derive(Debug, Args)]
#[command(
    display_order = 1,
    after_help = "Examples:
  gcore-iam-bulk export -o users.xlsx              # a workbook to edit, every cell text
  gcore-iam-bulk export                            # users.csv
  gcore-iam-bulk export -o - | grep example.com"
)]
pub struct ExportArgs {
    /// The file to write, or - for standard output. An existing file is never replaced without
    /// --overwrite.
    #[arg(short, long, value_name = "PATH", default_value = "users.csv")]
    pub output: PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    pub overwrite: bool,
    /// Print only errors and the summary.
    #[arg(short, long)]
    pub quiet: bool,
    /// No progress bar and no progress lines; notes and the summary are still printed.
    #[arg(long)]
    pub(crate) no_progress: bool,
    /// The cell text written for a null name or phone (as the input reads it).
    #[arg(long, value_name = "TEXT", default_value = "#null")]
    pub null_token: String,
    /// Users asked for per page of GET /iam/users (the API may answer fewer).
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub(crate) page_size: u64,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Compare every valid row of INPUT with the user's live state and write what would change;
/// sends no change (only reads).
#[derive(Debug, Args)]
#[command(
    display_order = 2,
    after_help = "Examples:
  gcore-iam-bulk plan users.csv                    # writes users.plan.csv: what would change
  gcore-iam-bulk plan users.csv --exit-code        # exit 3 when something would change
  gcore-iam-bulk apply --plan users.plan.csv       # then apply exactly what it showed"
)]
pub struct PlanArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Compare as usual, but let a change that looks like a spreadsheet's damage to a number
    /// (a phone's leading + or 0 dropped, 007 -> 7, 1000 -> 1.00E+03) through.
    #[arg(long)]
    pub(crate) allow_number_changes: bool,
    /// Exit with 3 when some row would change (and no row has a problem), 0 when every row is
    /// already right: for a job that watches the account for changes made elsewhere.
    #[arg(long)]
    pub exit_code: bool,
    /// The sheet is the whole account (as `export` writes it): every user of the account that no
    /// row names is planned for removal (`would_remove`), within --max-removals.
    #[arg(long)]
    pub remove_missing: bool,
    #[command(flatten)]
    pub members: MembersArgs,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Send the changes of INPUT to the API (with --dry-run: the same as validate).
#[derive(Debug, Args)]
#[command(mut_arg("path", |arg| arg.required(false).required_unless_present("plan")))]
#[command(
    display_order = 3,
    after_help = "Examples:
  gcore-iam-bulk apply users.csv --sandbox         # rehearse against a local stand-in of the API
  gcore-iam-bulk plan users.xlsx                   # the recommended order: see what would change,
  gcore-iam-bulk apply --plan users.plan.csv --undo-file undo.csv  # apply what it showed, with a way back
  GCORE_API_KEY=... gcore-iam-bulk apply users.csv --rate auto
  gcore-iam-bulk apply users.csv --skip-unchanged --undo-file undo.csv
  gcore-iam-bulk apply users.csv --resume          # go on after Ctrl-C, a crash or kill -9
  gcore-iam-bulk apply users.csv --report run.html # and the run on one page, to hand over"
)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Check the file and write the results without sending anything (needs no API key).
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub run: RunArgs,
    /// Rehearse: start a local sandbox of the API in-process, with a generated key, and send
    /// to it instead of Gcore. Nothing leaves this machine. The results go to
    /// <input stem>.rehearsal.csv (replaced at every rehearsal) unless -o says otherwise.
    #[arg(long, conflicts_with_all = ["api_key_file", "base_url", "dry_run"])]
    pub sandbox: bool,
    /// Go on from the run recorded in the results file (and its journal): keep the rows already
    /// updated, send the rest. Without a record yet, a fresh run.
    #[arg(long, conflicts_with_all = ["dry_run", "overwrite", "sandbox"])]
    pub resume: bool,
    /// Send the valid rows even when some rows are invalid (by default nothing is sent then).
    #[arg(long)]
    pub(crate) skip_invalid: bool,
    /// Apply exactly what a reviewed plan (the results file of `plan`) would change, only for
    /// users still as the plan read them; instead of INPUT.
    #[arg(long, value_name = "PLAN", conflicts_with_all = ["path", "dry_run", "sandbox", "skip_unchanged"])]
    pub plan: Option<PathBuf>,
    /// Read each user first and send only the fields that differ; a row already right is
    /// `unchanged` and sends nothing. The `changes` column says what changed.
    #[arg(long)]
    pub(crate) skip_unchanged: bool,
    /// With --skip-unchanged or --undo-file: send a change that looks like a spreadsheet's damage
    /// to a number (a phone's leading + or 0 dropped, 007 -> 7); by default such a row is invalid.
    #[arg(long)]
    pub(crate) allow_number_changes: bool,
    /// Before each PATCH, write the user's current values of the fields it changes to this file,
    /// in the input format: `apply UNDO` puts them back exactly. Reads each user first.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["dry_run", "sandbox"])]
    pub(crate) undo_file: Option<PathBuf>,
    /// With --undo-file: change a field even when its current value cannot be put back (the API
    /// left it out of the user, or holds a null that PATCH does not take); by default such a row
    /// is invalid and nothing is sent.
    #[arg(long, requires = "undo_file")]
    pub(crate) accept_partial_undo: bool,
    /// Users seeded in the --sandbox, with IDs 1..N (default 1000); rows naming other IDs fail
    /// with 404.
    #[arg(long, value_name = "N")]
    pub(crate) sandbox_users: Option<u64>,
    /// With --sandbox: the sandbox speaks HTTPS, with a certificate from a throwaway
    /// certificate authority that this run trusts (the whole TLS path, rehearsed).
    #[arg(long)]
    pub tls: bool,
    #[command(flatten)]
    pub members: MembersArgs,
}

/// Rows that invite and remove users (an `action` column).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Invitations and removals")]
pub struct MembersArgs {
    /// The most users a run (or a plan applied) may remove: more, and nothing is sent (exit 2),
    /// so that a sheet cut short never empties the account.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_removals: u64,
    /// The account's id, checked against the one the API gives (GET /iam/clients/me) before
    /// anything is sent: a key of another account stops the run. Default: the API's answer.
    #[arg(long, value_name = "ID")]
    pub account_id: Option<u64>,
}

/// Where the API is and how to reach it. The key is never a flag value: it
/// would show in `ps` and in shell history.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "API and network")]
pub struct ApiArgs {
    /// Use this profile of the config file (base URL, key file or command, rate, burst,
    /// concurrency): flags win over it, and it wins over GCORE_API_KEY and GCORE_BASE_URL. Default:
    /// GCORE_PROFILE, below those two.
    #[arg(long, value_name = "NAME", value_hint = clap::ValueHint::Other)]
    pub profile: Option<String>,
    /// Read the API key from this file (a trailing newline is ignored). Default: the GCORE_API_KEY environment variable, else the profile's key.
    #[arg(long, value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,
    /// The API's base URL. Default: the GCORE_BASE_URL environment variable, else https://api.gcore.com.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Seconds to wait for each answer (per attempt, not per run).
    #[arg(
        long,
        value_name = "SECS",
        default_value = "30",
        allow_negative_numbers = true
    )]
    pub timeout: f64,
    /// Allow a plain http:// base URL to a host that is not this machine (the key and the
    /// users' data then cross the network unencrypted).
    #[arg(long)]
    pub(crate) allow_insecure_http: bool,
    /// Also trust the certificate authorities in this PEM file (a company root that inspects
    /// TLS, say), besides the system's trust store and the bundled roots. May be repeated.
    /// Default: the GCORE_CA_CERT environment variable.
    #[arg(long, value_name = "FILE")]
    pub(crate) ca_cert: Vec<PathBuf>,
    /// Send through this HTTP proxy (http://[USER:PASSWORD@]HOST:PORT) for this run. Default:
    /// HTTPS_PROXY (HTTP_PROXY for an http:// base URL), else ALL_PROXY, unless NO_PROXY
    /// names the API's host.
    #[arg(long, value_name = "URL", conflicts_with = "no_proxy")]
    pub proxy: Option<String>,
    /// Go straight to the API for this run, whatever HTTPS_PROXY and the like say.
    #[arg(long)]
    pub no_proxy: bool,
}

/// How fast and how stubbornly to send.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Sending")]
pub struct RunArgs {
    /// The settings a profile filled in (`rate`, `burst`, `concurrency`),
    /// with its name: a message about one of them names the profile, not
    /// a flag that was never given. Not a flag.
    #[arg(skip)]
    pub(crate) filled_from: Vec<(&'static str, String)>,
    /// Requests in flight at most (default: the profile's, else 8).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub concurrency: Option<usize>,
    /// Requests per second for the whole run, retries included: a ceiling the run adapts below after a 429; 0: no limit until a 429; auto: find the account's limit (see --max-rate). Default: the profile's, else 10.
    #[arg(long, value_name = "R|auto", allow_negative_numbers = true)]
    pub rate: Option<String>,
    /// With --rate auto: never above this many requests per second.
    #[arg(long, value_name = "R", allow_negative_numbers = true)]
    pub(crate) max_rate: Option<f64>,
    /// Requests that may start back to back after an idle moment (the limiter's burst; default: the profile's, else 1).
    #[arg(long, value_name = "B", allow_negative_numbers = true)]
    pub burst: Option<u32>,
    /// Retries per row after the first attempt, for 408, 409, 429, 5xx, timeouts and connection errors.
    #[arg(
        long,
        value_name = "N",
        default_value = "5",
        allow_negative_numbers = true
    )]
    pub max_retries: u32,
    /// The longest wait the server may ask for (Retry-After) before the row is failed instead, in seconds.
    #[arg(
        long,
        value_name = "SECS",
        default_value = "300",
        allow_negative_numbers = true
    )]
    pub max_wait: f64,
    /// Also write the summary as JSON to this file, for monitoring.
    #[arg(long, value_name = "PATH")]
    pub summary_json: Option<PathBuf>,
    /// Also write the summary in the Prometheus text format to this file (FILE.prom, for
    /// node_exporter's textfile collector): rows by status, requests, 429s, duration, exit
    /// code, and the last run that ended well. Replaced whole at the end of each run.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// One line per request on stderr: time, row, method and path, status, duration, what happens next (never a header, a body or the key).
    #[arg(short, long)]
    pub verbose: bool,
    /// Rows that may finish ahead of the oldest unfinished row (the reorder window). Default: from the rate, see docs/REFERENCE.md.
    #[arg(long, value_name = "ROWS", hide_short_help = true)]
    pub window: Option<usize>,
    /// Start afresh: forget the rate limit this account's runs met before (remembered for 7 days
    /// in the state folder, see docs/REFERENCE.md).
    #[arg(long)]
    pub forget_rate: bool,
    /// Do not split the account's rate limit with its other runs on this machine (found through
    /// the state folder, see docs/REFERENCE.md): this run neither counts nor is counted.
    #[arg(long)]
    pub no_share: bool,
}

/// How to read the input file.
#[derive(Debug, Args)]
#[command(next_help_heading = "Input")]
pub struct InputArgs {
    /// The file of changes: a CSV, or a workbook (.xlsx, .xls, .ods), or - for standard input.
    #[arg(value_name = "INPUT", required = true)]
    pub path: Option<PathBuf>,
    /// The sheet of a workbook INPUT to read. Default: the visible sheet whose header names user_id (or current_email), else the first visible sheet.
    #[arg(long, value_name = "NAME", value_hint = clap::ValueHint::Other)]
    pub sheet: Option<String>,
    /// Field separator: ',' ';' '|' or 'tab'. Default: ',' unless the header holds ';' (or tabs) and no ','.
    #[arg(long, value_name = "CHAR", value_hint = clap::ValueHint::Other)]
    pub delimiter: Option<String>,
    /// Character encoding of INPUT, such as windows-1252 or windows-1251 (any WHATWG label). Default: UTF-8; a UTF-16 byte-order mark is honoured.
    #[arg(long, value_name = "LABEL")]
    pub encoding: Option<String>,
    /// The cell text that clears a nullable field (name, phone) by sending null. Matched in any case.
    #[arg(long, value_name = "TEXT", default_value = "#null")]
    pub null_token: String,
    /// Skip columns this tool does not know instead of refusing the file.
    #[arg(long)]
    pub ignore_unknown_columns: bool,
    /// Send the values of workbook cells a person does not see (in a hidden row or column, or formatted ;;;) instead of refusing the file.
    #[arg(long)]
    pub send_hidden_cells: bool,
}

/// Where the results go and how much is said on the terminal.
#[derive(Debug, Args)]
#[command(next_help_heading = "Results")]
pub struct OutputArgs {
    /// The results CSV, or - for standard output. Default: <input stem>.results.csv in the current directory (.plan.csv for plan, .rehearsal.csv with --sandbox).
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Print only errors and the summary.
    #[arg(short, long)]
    pub quiet: bool,
    /// No progress bar and no progress lines; notes and the summary are still printed.
    #[arg(long)]
    pub(crate) no_progress: bool,
    /// Replace a results file that records a run that sent requests, or a file that is not a
    /// results file of this tool. A dry run's results file is replaced without it.
    #[arg(long)]
    pub overwrite: bool,
    /// Also write the run on one web page (.html): the summary, a timeline of requests, 429s
    /// and answer times, and the rows with a problem, filterable by status. Self-contained: it
    /// fetches nothing and runs no script.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Write cells as they are, even those a spreadsheet would run as a formula (=, +, -, @);
    /// by default such a cell gets a leading ' (see docs/REFERENCE.md).
    #[arg(long)]
    pub(crate) raw_output: bool,
}

/// Serve a local stand-in of the Gcore IAM users API, for rehearsals and tests.
#[derive(Debug, Args)]
#[command(
    display_order = 4,
    after_help = "Examples:
  gcore-iam-bulk sandbox                           # 1000 users on 127.0.0.1:8080
  gcore-iam-bulk sandbox --listen 127.0.0.1:0      # on a free loopback port (printed)
  gcore-iam-bulk sandbox --users-file users.xlsx --state copy.json  # a copy of an export, kept
  gcore-iam-bulk sandbox --users 5000 --rate 100 --burst 5 --error-rate 0.05"
)]
pub struct SandboxArgs {
    /// Address to listen on; port 0 picks a free port (the real one is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Number of seeded users, with IDs 1..N.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub users: u64,
    /// Serve these users instead of seeded ones: a file that `export` wrote (.xlsx or CSV), or
    /// JSON (a list of user objects, or a page {"count": N, "results": [...]}), odd values and
    /// all.
    #[arg(long, value_name = "FILE", conflicts_with = "users")]
    pub(crate) users_file: Option<PathBuf>,
    /// Keep the users in FILE (JSON) across restarts: written within 2 s of a change and when
    /// the sandbox stops; served instead of --users/--users-file when it exists (remove it to
    /// start afresh).
    #[arg(long, value_name = "FILE")]
    pub(crate) state: Option<PathBuf>,
    /// The key clients must send (Authorization: apikey KEY). Default: $GCORE_API_KEY (not printed), else a random key (printed at start).
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,
    /// Seeds the users and every fault decision: the same seed gives the same run.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// Requests per second allowed over all requests; beyond it 429 with Retry-After.
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// Requests allowed at once above --rate (token bucket size). Default: --rate rounded up.
    #[arg(long, value_name = "B", requires = "rate")]
    pub burst: Option<u32>,
    /// The status of an answer beyond --rate: 429, or 503 as some front ends throttle (with
    /// Retry-After either way).
    #[arg(long, value_name = "STATUS", requires = "rate", value_parser = ["429", "503"])]
    pub rate_status: Option<String>,
    /// Answers beyond --rate also give the exact wait in a retry-after-ms header (milliseconds),
    /// besides Retry-After in whole seconds.
    #[arg(long, requires = "rate")]
    pub retry_after_ms: bool,
    /// Answers beyond --rate say nothing of when to come back (no Retry-After): with
    /// --rate-status 503, a server that fails under load.
    #[arg(long, requires = "rate", conflicts_with = "retry_after_ms")]
    pub no_retry_after: bool,
    /// Delay before every answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub latency_ms: u64,
    /// Up to this many milliseconds more, drawn per request.
    #[arg(long, value_name = "J", default_value_t = 0)]
    pub jitter_ms: u64,
    /// Share (0 to 1) of answers that are 500, 502 or 503; nothing is changed.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub error_rate: f64,
    /// Share (0 to 1) of requests whose connection is closed without an answer.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Share (0 to 1) of answers held --slow-ms after the change is made.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub slow_rate: f64,
    /// How long a slow answer is held, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    pub slow_ms: u64,
    /// List answers (GET /iam/users) leave this field of the user object out of every user
    /// (GET /iam/users/{id} keeps it); repeat it, or separate fields with commas.
    #[arg(long, value_name = "FIELD", value_delimiter = ',')]
    pub list_omit: Vec<String>,
    /// The first N reads of the list that go past the first page see the account change
    /// meanwhile: pages after the first answer as if the first user had been removed and one
    /// added at the end (the same count, everyone one place earlier).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub list_churn: u64,
    /// List answers say the account has N users, whatever it holds.
    #[arg(long, value_name = "N")]
    pub list_count: Option<u64>,
    /// Share of requests answered 429 (Retry-After: 1) whatever the rate: a server that throttles
    /// by something else than this client's rate (0 to 1).
    #[arg(long, value_name = "SHARE", default_value_t = 0.0)]
    pub throttle_share: f64,
    /// Answer 429 (Retry-After: 1) to every request about a user whose ID N divides: throttles
    /// that concern some users only.
    #[arg(long, value_name = "N")]
    pub throttle_every: Option<u64>,
    /// At most N requests in each window of S seconds (counted from the start), beyond it 429
    /// without Retry-After, as a per-minute quota that does not say when it opens: N/S, such as
    /// 600/60.
    #[arg(long, value_name = "N/S", value_parser = parse_quota)]
    pub quota: Option<(u64, f64)>,
    /// Speak HTTPS, with a certificate for localhost, 127.0.0.1 and ::1 from a certificate
    /// authority made at start; its certificate is written to a file whose path is printed
    /// (give it to apply with --ca-cert). The authority's key never leaves this process.
    #[arg(long)]
    pub tls: bool,
}

/// Print the manual page (roff) to standard output: `gcore-iam-bulk man > gcore-iam-bulk.1`.
#[derive(Debug, Args)]
#[command(display_order = 6)]
pub struct ManArgs {}

/// `--quota N/S`: N requests in each window of S seconds.
fn parse_quota(text: &str) -> Result<(u64, f64), String> {
    let usage =
        || format!("{text:?} is not N/S: give requests per window and its seconds, such as 600/60");
    let (most, seconds) = text.split_once('/').ok_or_else(usage)?;
    let most: u64 = most.trim().parse().map_err(|_| usage())?;
    let seconds: f64 = seconds.trim().parse().map_err(|_| usage())?;
    Ok((most, seconds))
}
