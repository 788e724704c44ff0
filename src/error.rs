//! Fatal errors: the run cannot start or cannot go on. Each maps to an exit
//! code. Problems of a single row are not here: they are data, written to the
//! results file (see `model::patch::Problem` and `table::results::Status`).

use std::io;
use std::path::PathBuf;

use crate::exit::Exit;

#[derive(Debug, thiserror::Error)]
pub enum Fatal {
    #[error("cannot read {path}")]
    InputOpen {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {path}")]
    InputRead {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error("{path} is empty: the first line must be a header such as user_id,email,name")]
    InputEmpty { path: PathBuf },
    #[error("{path}: {message}")]
    Header { path: PathBuf, message: String },
    /// A workbook that cannot be read, or has no such sheet.
    #[error("{path}: {message}")]
    Workbook { path: PathBuf, message: String },
    #[error("cannot write the export {path}")]
    Export {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write to standard output")]
    Stdout(#[source] io::Error),
    #[error("cannot write the results file {path}")]
    Output {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the results file's journal {path} (kept beside it for --resume)")]
    Journal {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "no API key: set the environment variable GCORE_API_KEY, or pass --api-key-file PATH \
         (a file that holds the key); --dry-run needs no key"
    )]
    MissingKey,
    #[error("cannot read the API key file {path}")]
    KeyFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the record of the earlier run ({path})")]
    Record {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file where a run notes its invitations and removals before it
    /// sends them (`<results>.members`).
    #[error(
        "cannot write {path}, where the run notes each invitation and removal before it sends it"
    )]
    MembersFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the undo file {path}")]
    UndoFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the report {path}")]
    Report {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the summary file {path}")]
    SummaryJson {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the metrics file {path}")]
    Metrics {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the run stopped after {sent} {} had been sent, because its record could not be \
         written (the changes {} made are in effect); {next}",
        if *sent == 1 { "request that changes the account" } else { "requests that change the account" },
        if *sent == 1 { "it" } else { "those requests" }
    )]
    RecordLost {
        sent: u64,
        /// What to do next: resume from the record, or (results on standard
        /// output) check the users, since no record is left to resume from.
        next: &'static str,
        #[source]
        cause: Box<Fatal>,
    },
    #[error("cannot start the HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("cannot start the async runtime")]
    Runtime(#[source] io::Error),
    #[error("{0}")]
    Usage(String),
    /// Ctrl-C or SIGTERM before the rows were sent (while the account's
    /// list was read): nothing was sent.
    #[error("stopped {what}, before any row was sent; run the same command again")]
    Stopped {
        signal: crate::exit::Signal,
        what: &'static str,
    },
    #[error("cannot serve the sandbox on {addr}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: io::Error,
    },
}

impl Fatal {
    /// The reader of standard output went away (`-o - | head`): for a run
    /// that changed nothing, no error, as for `man | head` (and ripgrep).
    /// (After changes went out it is [`Fatal::RecordLost`] instead.)
    pub fn reader_gone(&self) -> bool {
        let to_stdout = |path: &PathBuf| path.as_os_str() == "<stdout>" || path.as_os_str() == "-";
        match self {
            Fatal::Stdout(source) => source.kind() == io::ErrorKind::BrokenPipe,
            Fatal::Output { path, source } | Fatal::Export { path, source } => {
                to_stdout(path) && source.kind() == io::ErrorKind::BrokenPipe
            }
            _ => false,
        }
    }

    /// A fatal error before anything was sent is [`Exit::CannotStart`]: the
    /// file or the settings could not be used. One after requests went out
    /// is [`Exit::RecordLost`].
    pub fn exit(&self) -> Exit {
        match self {
            Fatal::RecordLost { .. } => Exit::RecordLost,
            Fatal::Stopped {
                signal: crate::exit::Signal::Interrupt,
                ..
            } => Exit::Interrupted,
            Fatal::Stopped { .. } => Exit::Terminated,
            _ => Exit::CannotStart,
        }
    }
}

/// An error and its causes on one line: `cannot read x.csv: No such file or directory`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
