//! Every way a run ends, and its exit code: the one place that knows the
//! numbers cron and monitoring read.

use std::process::ExitCode;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every row is `updated`, `would_update`, `unchanged` or `skipped`.
    Success,
    /// Some row is `invalid`, `failed` or `not_attempted`; the results file says which.
    RowProblems,
    /// Nothing was done: a bad flag, an unusable input, key or results file.
    CannotStart,
    /// Ctrl-C or SIGTERM: the run stopped early, and still wrote every row.
    Interrupted,
    /// A second Ctrl-C: the process quit at once; the results file may lack
    /// its last second of rows.
    Aborted,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::RowProblems | Exit::Interrupted => 1,
            Exit::CannotStart => 2,
            Exit::Aborted => 130,
        }
    }

    /// How a run that went to its end ended: `interrupted` when a signal
    /// stopped it, `problems` when some row is invalid, failed or not attempted.
    pub fn of_run(interrupted: bool, problems: bool) -> Exit {
        match (interrupted, problems) {
            (true, _) => Exit::Interrupted,
            (false, true) => Exit::RowProblems,
            (false, false) => Exit::Success,
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
            (Exit::of_run(false, false), 0),
            (Exit::of_run(false, true), 1),
            (Exit::of_run(true, false), 1),
            (Exit::of_run(true, true), 1),
            (Exit::CannotStart, 2),
            (Exit::Aborted, 130),
        ];
        for (exit, code) in cases {
            assert_eq!(exit.code(), code, "{exit:?}");
        }
    }
}
