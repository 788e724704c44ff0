//! `validate` and `apply --dry-run`: check every row and write the results
//! file with the body each valid row would send. Nothing is sent.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::check::{Checker, Duplicates, Verdict};
use crate::config::{InputConfig, OutputTarget};
use crate::error::Fatal;
use crate::input::Input;
use crate::patch::describe;
use crate::results::{self, ResultRow, ResultsWriter, Status};

/// `summary_json`: also write the summary there (`apply --dry-run --summary-json`).
pub fn run(
    config: &InputConfig,
    output: &OutputTarget,
    quiet: bool,
    summary_json: Option<&Path>,
) -> Result<ExitCode, Fatal> {
    let input = Input::open(config)?;
    let duplicates = Duplicates::scan(&input)?;
    let mut rows = input.rows()?;
    let header = rows.header().clone();
    let ignored = header.ignored();
    if !quiet {
        results::note_ignored_columns(&ignored);
    }
    let checker = Checker::new(&header, &config.null_token, &duplicates);
    let mut results = ResultsWriter::create(output)?;
    let mut request = Vec::with_capacity(256);
    while let Some(raw) = rows.next_row()? {
        let checked = checker.check(&raw);
        request.clear();
        let (status, error) = match &checked.verdict {
            Verdict::Send(body) => {
                serde_json::to_writer(&mut request, body).expect("a body always serialises");
                (Status::WouldUpdate, String::new())
            }
            Verdict::Skip(reason) => (Status::Skipped, reason.to_string()),
            Verdict::Invalid(problems) => (Status::Invalid, describe(problems)),
        };
        results.write(&ResultRow {
            row: checked.row,
            user_id: &checked.user_id_text,
            status,
            http_status: None,
            attempts: 0,
            error: &error,
            request: std::str::from_utf8(&request).expect("JSON is UTF-8"),
            changes: "",
            user: None,
        })?;
    }
    let results_path = results.path().display().to_string();
    let summary = results.finish()?;
    if summary.total() == 0 && !quiet {
        results::note_no_rows(&input.display_path());
    }
    let _ = std::io::stderr().write_all(summary.render(&results_path).as_bytes());
    if let Some(path) = summary_json {
        summary.write_json(path, &results_path)?;
    }
    Ok(ExitCode::from(summary.exit_code()))
}
