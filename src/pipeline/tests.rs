//! The one path with an operation of another kind than a PATCH: its rules
//! for its rows (a row that changes nothing is sent), its own status words,
//! and its dry run, through the real input, check stage, engine and
//! results file, with a fake transport in place of HTTP.

use std::future::Future;
use std::path::Path;

use super::*;
use crate::check::Preflight;
use crate::engine::{Job, Never, Step};
use crate::http::{Answer, Call, Reply};
use crate::operations::patch::PatchRows;
use crate::operations::{done, get_user};
use crate::sink::Keeping;
use crate::table::input::{InputSettings, InputSource};
use crate::table::record::OutputTarget;
use crate::table::results::{Kind, RecordReader};

const TOUCHED: Status = Status::new("touched", Kind::Changed);
const WOULD_TOUCH: Status = Status::new("would_touch", Kind::Planned);

/// Touches the row's user: a GET, whatever the row changes, or nothing.
struct Touch;

impl Rows for Touch {
    fn decided(&self, _: &CheckedRow) -> Option<(Status, String)> {
        None
    }

    fn planned(&self, _: &CheckedRow) -> Status {
        WOULD_TOUCH
    }

    fn statuses(&self) -> &'static [Status] {
        &[TOUCHED, WOULD_TOUCH]
    }
}

impl Operation for Touch {
    fn call(&self, job: &Job) -> Call {
        get_user(job.user_id())
    }

    fn answered(&self, _: &mut Job, _: Result<Reply, String>) -> Step {
        done(TOUCHED, String::new())
    }
}

/// Answers every call with a 200 and an empty object.
struct Fake;

impl Transport for Fake {
    fn send(&self, _: Call) -> impl Future<Output = Answer> + Send + 'static {
        std::future::ready(Answer::Success {
            status: 200,
            reply: Ok(Reply::new(200, "{}")),
        })
    }
}

/// The statuses of the results file `run` writes for `rows` (a CSV's
/// lines after its header), with `rules` and, unless a dry run, `sender`.
fn statuses<O: Operation + 'static>(
    dir: &Path,
    rows: &str,
    rules: impl Rows + 'static,
    sender: Option<(O, Fake)>,
) -> (Vec<String>, Summary) {
    let csv = dir.join("in.csv");
    std::fs::write(&csv, format!("user_id,lang\n{rows}")).unwrap();
    let settings = InputSettings {
        source: InputSource::File(csv),
        delimiter: None,
        encoding: None,
        null_token: "NULL".to_string(),
        ignore_unknown_columns: false,
        sheet: None,
        send_hidden_cells: false,
    };
    let input = Arc::new(Input::open(&settings).unwrap());
    let preflight = Preflight::scan(&input, "NULL", false).unwrap();
    let out = dir.join("out.csv");
    let keeping = match sender {
        Some(_) => Keeping::Fresh,
        None => Keeping::DryRun,
    };
    let results = ResultsWriter::create(&OutputTarget::File(out.clone()), keeping, false).unwrap();
    let checks = Checks {
        earlier: None,
        extra: Vec::new(),
        input,
        null_token: "NULL".to_string(),
        duplicates: preflight.duplicates.into(),
        disposition: Disposition::Go,
        previous: None,
        keep_body: false,
        emails: None,
        live: None,
        operation: Arc::new(rules),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let finished = runtime
        .block_on(run(
            Source::Rows(checks),
            results,
            (ProgressMode::Quiet, preflight.rows),
            &SendPolicy::dry_run(),
            sender,
            crate::signals::Interrupt::never(),
        ))
        .unwrap();
    let mut reader = RecordReader::open(&out)
        .unwrap()
        .with_statuses(&[TOUCHED, WOULD_TOUCH]);
    let mut statuses = Vec::new();
    // An operation's own words are read back as any others.
    while let Some(record) = reader.next_record() {
        let record = record.unwrap();
        statuses.push(record.status.as_str().to_string());
    }
    (statuses, finished.summary)
}

#[test]
fn an_operation_sends_the_rows_it_takes_and_writes_its_own_words() {
    let dir = tempfile::tempdir().unwrap();
    // Row 2 only names its user: a PATCH would skip it, a touch sends it.
    let rows = "1,\n2,de\n3,NOT-A-LANGUAGE\n";
    let (sent, summary) = statuses(dir.path(), rows, Touch, Some((Touch, Fake)));
    assert_eq!(sent, ["touched", "touched", "invalid"]);
    assert_eq!(summary.count(TOUCHED), 2);
    let (dry, summary) = statuses(dir.path(), rows, Touch, None::<(Never, Fake)>);
    assert_eq!(dry, ["would_touch", "would_touch", "invalid"]);
    assert_eq!(summary.planned(), 2);
    // The same rows with the PATCH's rules: the defaults.
    let (patch, _) = statuses(dir.path(), rows, PatchRows, None::<(Never, Fake)>);
    assert_eq!(patch, ["skipped", "would_update", "invalid"]);
}

#[test]
fn a_results_file_with_an_operations_words_is_this_tools_record() {
    use crate::table::record::{Existing, existing};
    let dir = tempfile::tempdir().unwrap();
    statuses(dir.path(), "1,de\n", Touch, Some((Touch, Fake)));
    let out = dir.path().join("out.csv");
    // Read with the operation's words: the record of a run that sent,
    // which a new run does not replace without --overwrite.
    assert!(matches!(
        existing(&out, &[TOUCHED, WOULD_TOUCH]),
        Existing::Sent
    ));
    // Without them, its words are unknown: not a results file of this tool.
    assert!(matches!(existing(&out, &[]), Existing::Foreign(_)));
}
