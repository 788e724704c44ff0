//! Checking rows: a record of the input becomes a PATCH body to send, a row
//! to skip, or the list of its problems. Duplicated user IDs are found in a
//! first pass over the file, so that both rows can name each other.

use std::collections::HashMap;

use crate::error::Fatal;
use crate::model::patch::{PatchBody, Problem, describe, parse_user_id, show};
use crate::table::cells::restore;
use crate::table::input::{Column, Header, Input, RawRow};
use crate::table::record::Previous;
use crate::table::results::Status;

/// What to do with a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Send(PatchBody),
    /// Valid, but nothing to do; the text is the reason.
    Skip(&'static str),
    Invalid(Vec<Problem>),
}

/// A row after checking.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedRow {
    pub row: u64,
    /// The user ID when it is valid.
    pub user_id: Option<u64>,
    /// The `user_id` cell as written (trimmed), for the results file.
    pub user_id_text: String,
    pub verdict: Verdict,
}

/// What a first pass over the input found, before any row is sent.
#[derive(Debug, Default)]
pub struct Preflight {
    /// Records that are not blank.
    pub rows: u64,
    /// Rows a check finds invalid (counted when asked for).
    pub invalid: u64,
    pub duplicates: Duplicates,
    /// Columns skipped by `--ignore-unknown-columns`.
    pub ignored: Vec<String>,
}

impl Preflight {
    /// One pass that counts the rows and collects the user IDs to find
    /// repeated ones. With `count_invalid` (a run that may send) it also
    /// checks every row; only when some ID repeats (a file that is refused
    /// anyway, or sent with --skip-invalid) is the file read again: to find
    /// those rows, and to count the invalid rows exactly. Memory: 8 bytes
    /// per row for the IDs (8 MB for a million rows), then only the
    /// repeated ones are kept.
    pub fn scan(input: &Input, null_token: &str, count_invalid: bool) -> Result<Preflight, Fatal> {
        let mut rows = input.rows()?;
        let header = rows.header().clone();
        let ignored = header.ignored().into_iter().map(str::to_string).collect();
        let no_duplicates = Duplicates::default();
        let checker = Checker::new(&header, null_token, &no_duplicates);
        let mut found = Preflight {
            ignored,
            ..Preflight::default()
        };
        let mut ids = Vec::new();
        while let Some(raw) = rows.next_row()? {
            found.rows += 1;
            if let Some(id) = user_id_of(&raw, header.user_id) {
                ids.push(id);
            }
            if count_invalid && matches!(checker.check(&raw).verdict, Verdict::Invalid(_)) {
                found.invalid += 1;
            }
        }
        found.duplicates = Duplicates::from_ids(input, ids)?;
        if count_invalid && !found.duplicates.is_empty() {
            found.invalid = count_invalid_rows(input, null_token, &found.duplicates)?;
        }
        Ok(found)
    }
}

fn count_invalid_rows(
    input: &Input,
    null_token: &str,
    duplicates: &Duplicates,
) -> Result<u64, Fatal> {
    let mut rows = input.rows()?;
    let header = rows.header().clone();
    let checker = Checker::new(&header, null_token, duplicates);
    let mut invalid = 0;
    while let Some(raw) = rows.next_row()? {
        if matches!(checker.check(&raw).verdict, Verdict::Invalid(_)) {
            invalid += 1;
        }
    }
    Ok(invalid)
}

/// User IDs that appear on more than one row, with those rows.
#[derive(Debug, Default)]
pub struct Duplicates {
    rows: HashMap<u64, Vec<u64>>,
}

impl Duplicates {
    /// From the user IDs that a pass over `input` already collected (see
    /// [`user_id_of`]); reads the file again only when some ID repeats.
    pub fn from_ids(input: &Input, mut ids: Vec<u64>) -> Result<Duplicates, Fatal> {
        ids.sort_unstable();
        let repeated: Vec<u64> = ids
            .windows(2)
            .filter(|pair| pair[0] == pair[1])
            .map(|pair| pair[0])
            .collect();
        drop(ids);
        let mut rows_of: HashMap<u64, Vec<u64>> =
            repeated.into_iter().map(|id| (id, Vec::new())).collect();
        if !rows_of.is_empty() {
            let mut rows = input.rows()?;
            let column = rows.header().user_id;
            while let Some(raw) = rows.next_row()? {
                if let Some(list) = user_id_of(&raw, column).and_then(|id| rows_of.get_mut(&id)) {
                    list.push(raw.row);
                }
            }
        }
        Ok(Duplicates { rows: rows_of })
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The other rows that hold `user_id`, if any.
    fn others(&self, user_id: u64, row: u64) -> Vec<u64> {
        self.rows.get(&user_id).map_or_else(Vec::new, |rows| {
            rows.iter().copied().filter(|&other| other != row).collect()
        })
    }
}

/// The row's user ID, when its cell holds a valid one.
pub fn user_id_of(raw: &RawRow, column: usize) -> Option<u64> {
    let cell = std::str::from_utf8(raw.cells.get(column)?).ok()?;
    parse_user_id(cell).ok()
}

/// Checks rows against the header, the null token and the duplicates found.
pub struct Checker<'a> {
    header: &'a Header,
    null_token: &'a str,
    duplicates: &'a Duplicates,
}

impl<'a> Checker<'a> {
    pub fn new(header: &'a Header, null_token: &'a str, duplicates: &'a Duplicates) -> Self {
        Checker {
            header,
            null_token,
            duplicates,
        }
    }

    pub fn check(&self, raw: &RawRow) -> CheckedRow {
        let mut problems = Vec::new();
        let mut body = PatchBody::default();
        let user_id_cell = raw.cells.get(self.header.user_id).unwrap_or_default();
        let user_id_text = String::from_utf8_lossy(user_id_cell).trim().to_string();
        let mut user_id = None;

        if raw.cells.len() != self.header.width() {
            problems.push(Problem::in_row(format!(
                "has {} cells but the header has {} columns; check for a missing or extra \
                 delimiter, or a quote that is not closed",
                raw.cells.len(),
                self.header.width()
            )));
        } else {
            // One UTF-8 check for the whole record; a cell is then UTF-8 when it
            // starts and ends on character boundaries (`str::get` checks that).
            let whole = std::str::from_utf8(raw.cells.as_slice()).ok();
            let mut end = 0;
            for (i, (column, bytes)) in self.header.columns.iter().zip(raw.cells).enumerate() {
                let start = end;
                end += bytes.len();
                if matches!(column, Column::Ignored(_)) {
                    continue;
                }
                let text = match whole.and_then(|whole| whole.get(start..end)) {
                    Some(text) => text,
                    None => match std::str::from_utf8(bytes) {
                        Ok(text) => text,
                        Err(_) => {
                            problems.push(not_utf8(column, i, bytes));
                            continue;
                        }
                    },
                };
                let cell = text.trim();
                match column {
                    Column::UserId => match parse_user_id(cell) {
                        Ok(id) => user_id = Some(id),
                        Err(message) => problems.push(Problem::in_column("user_id", message)),
                    },
                    Column::Field(_) | Column::Unnamed if cell.is_empty() => {}
                    Column::Field(field) => {
                        // A cell this tool wrote safe for a spreadsheet ('=x)
                        // reads as it was (=x).
                        let cell = restore(cell);
                        if let Err(message) = body.set_cell(*field, cell, self.null_token) {
                            problems.push(Problem::in_column(field.name(), message));
                        }
                    }
                    Column::Unnamed => problems.push(Problem::in_row(format!(
                        "column {} has no name in the header but holds {}; name the column or \
                         empty the cell",
                        i + 1,
                        show(cell)
                    ))),
                    Column::Ignored(_) => unreachable!("ignored columns are passed over"),
                }
            }
        }

        if let Some(id) = user_id {
            let others = self.duplicates.others(id, raw.row);
            if !others.is_empty() {
                problems.insert(0, duplicate_problem(id, &others));
            }
        }

        let verdict = if !problems.is_empty() {
            Verdict::Invalid(problems)
        } else if body.is_empty() {
            Verdict::Skip("no changes")
        } else {
            Verdict::Send(body)
        };
        CheckedRow {
            row: raw.row,
            user_id: user_id.filter(|_| !matches!(verdict, Verdict::Invalid(_))),
            user_id_text,
            verdict,
        }
    }
}

fn duplicate_problem(id: u64, others: &[u64]) -> Problem {
    const SHOWN: usize = 5;
    let mut list: Vec<String> = others.iter().take(SHOWN).map(u64::to_string).collect();
    if others.len() > SHOWN {
        list.push(format!("and {} more", others.len() - SHOWN));
    }
    let rows = if others.len() == 1 { "row" } else { "rows" };
    Problem::in_column(
        "user_id",
        format!(
            "{id} is also on {rows} {}; give each user one row",
            list.join(", ")
        ),
    )
}

fn not_utf8(column: &Column, index: usize, bytes: &[u8]) -> Problem {
    let error = std::str::from_utf8(bytes).unwrap_err();
    let at = error.valid_up_to();
    let message = format!(
        "byte 0x{:02X} at position {} is not UTF-8; save the file as \"CSV UTF-8\", or pass \
         --encoding windows-1252 (or the file's encoding)",
        bytes[at],
        at + 1
    );
    match column {
        Column::UserId => Problem::in_column("user_id", message),
        Column::Field(field) => Problem::in_column(field.name(), message),
        Column::Unnamed | Column::Ignored(_) => {
            Problem::in_row(format!("column {}: {message}", index + 1))
        }
    }
}

/// Before a resumed run sends anything: every row the earlier run
/// `updated` must be the same row now (same `user_id`, same request), or
/// the record would say something false about the input. Returns how many
/// rows are kept; the first row that differs is a fatal error that names it.
pub fn verify_kept(
    input: &Input,
    null_token: &str,
    duplicates: &Duplicates,
    previous: &Previous,
) -> Result<u64, Fatal> {
    let record_error = |source| Fatal::Record {
        path: previous.path().to_path_buf(),
        source,
    };
    let mut cursor = previous.cursor().map_err(record_error)?;
    let mut rows = input.rows()?;
    let header = rows.header().clone();
    let checker = Checker::new(&header, null_token, duplicates);
    let mut kept = 0;
    while let Some(raw) = rows.next_row()? {
        let Some(record) = cursor.take(raw.row).map_err(record_error)? else {
            continue;
        };
        if record.status != Status::Updated {
            continue;
        }
        let checked = checker.check(&raw);
        let request = match &checked.verdict {
            Verdict::Send(body) => serde_json::to_string(body).expect("a body always serialises"),
            Verdict::Skip(_) => "no change to send".to_string(),
            Verdict::Invalid(problems) => format!("problems: {}", describe(problems)),
        };
        if checked.user_id_text != record.user_id || request != record.request {
            return Err(Fatal::Usage(format!(
                "row {} of {} is not the row the run recorded in {} sent (user_id {} with {}; the \
                 input now has user_id {} with {}); --resume goes on only with the same input: \
                 restore it, or start over with --overwrite",
                raw.row,
                input.display_path().display(),
                previous.path().display(),
                show(&record.user_id),
                show(&record.request),
                show(&checked.user_id_text),
                show(&request),
            )));
        }
        kept += 1;
    }
    if let Some(row) = cursor.missing_updated().map_err(record_error)? {
        return Err(Fatal::Usage(format!(
            "row {row} was updated by the run recorded in {}, and {} no longer has it (removed, \
             or blank now); --resume goes on only with the same input: restore it, or start \
             over with --overwrite",
            previous.path().display(),
            input.display_path().display(),
        )));
    }
    Ok(kept)
}
