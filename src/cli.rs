//! What the user types: clap's types and nothing else. `config` turns these
//! raw values into checked settings; the rest of the crate never sees them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "gcore-iam-bulk",
    version,
    about = "Apply bulk changes from a CSV file to the users of a Gcore account",
    after_help = "Exit codes: 0 every row is fine, 1 some row is invalid or failed, 2 the run could not start."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every row of INPUT and write the results file; sends nothing.
    Validate(ValidateArgs),
    /// Send the changes of INPUT to the API (with --dry-run: the same as validate).
    Apply(ApplyArgs),
    /// Serve a local stand-in of the Gcore IAM users API, for rehearsals and tests.
    Sandbox(SandboxArgs),
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Check the file and write the results without sending anything (needs no API key).
    #[arg(long)]
    pub dry_run: bool,
}

/// How to read the input file.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// The CSV file of changes, or - for standard input.
    #[arg(value_name = "INPUT")]
    pub path: PathBuf,
    /// Field separator: ',' ';' '|' or 'tab'. Default: ',' unless the header holds ';' (or tabs) and no ','.
    #[arg(long, value_name = "CHAR")]
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
}

/// Where the results go and how much is said on the terminal.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// The results CSV, or - for standard output. Default: <input stem>.results.csv in the current directory.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Print only errors and the summary.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Settings of the local API stand-in.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Address to listen on; port 0 picks a free port (the real one is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Number of seeded users, with IDs 1..N.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub users: u64,
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
}
