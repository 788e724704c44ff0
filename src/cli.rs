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
pub struct SandboxArgs {}
