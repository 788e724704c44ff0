//! Every way a run ends, and its exit code: the one place that knows the
//! numbers cron and monitoring read.

use std::process::ExitCode;

/// The signal that asked a run to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Ctrl-C (SIGINT).
    Interrupt,
    /// SIGTERM: cron's timeout, systemd, `kill`.
    Terminate,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every row is `updated`, `would_update`, `unchanged` or `skipped`.
    Success,
    /// Some row is `invalid`, `failed` or `not_attempted`; the results file says which.
    RowProblems,
    /// `plan --exit-code`: some row would change, and no row has a problem.
    WouldChange,
    /// Nothing was done: a bad flag, an unusable input, key or results file.
    CannotStart,
    /// Requests were sent, then the run's record could not be written (a
    /// full disk, a closed pipe): the run stopped; the message says how many.
    RecordLost,
    /// Ctrl-C: the run stopped early, and still wrote every row.
    Interrupted,
    /// SIGTERM (cron's timeout, systemd, `kill`): the same, by another signal.
    Terminated,
    /// A second Ctrl-C: the process quit at once; the results file may lack
    /// its last second of rows.
    Aborted,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::RowProblems => 1,
            Exit::CannotStart => 2,
            Exit::WouldChange => 3,
            // EX_IOERR of sysexits.h: an input/output error on a file.
            Exit::RecordLost => 74,
            // The shell's convention: 128 + the signal's number.
            Exit::Interrupted | Exit::Aborted => 130,
            Exit::Terminated => 143,
        }
    }

    /// How a run that went to its end ended: `stopped_by` the signal that
    /// stopped it, `problems` when some row is invalid, failed or not attempted.
    pub(crate) fn of_run(stopped_by: Option<Signal>, problems: bool) -> Exit {
        match (stopped_by, problems) {
            (Some(Signal::Interrupt), _) => Exit::Interrupted,
            (Some(Signal::Terminate), _) => Exit::Terminated,
            (None, true) => Exit::RowProblems,
            (None, false) => Exit::Success,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_ones() {
        let cases = [
            (Exit::of_run(None, false), 0),
            (Exit::of_run(None, true), 1),
            (Exit::CannotStart, 2),
            (Exit::WouldChange, 3),
            (Exit::RecordLost, 74),
            (Exit::of_run(Some(Signal::Interrupt), false), 130),
            (Exit::of_run(Some(Signal::Interrupt), true), 130),
            (Exit::Aborted, 130),
            (Exit::of_run(Some(Signal::Terminate), true), 143),
        ];
        for (exit, code) in cases {
            assert_eq!(exit.code(), code, "{exit:?}");
        }
    }
}
