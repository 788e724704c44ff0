//! Checking rows: a record of the input becomes a PATCH body to send, a row
//! to skip, or the list of its problems. Duplicated user IDs are found in a
//! first pass over the file, so that both rows can name each other.

use std::collections::HashMap;

use crate::error::Fatal;
use crate::model::api::User;
use crate::model::patch::{PatchBody, Problem, check_email, parse_user_id, scientific, show};
use crate::table::cells::restore;
use crate::table::input::{Column, Header, Input, RawRow, VERBATIM, VERBATIM_JSON};

mod cells;
mod live;
mod resume;
mod rows;

use cells::*;
pub use live::*;
pub(crate) use resume::*;
pub use rows::Rows;

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
    pub(crate) user_id_text: String,
    pub verdict: Verdict,
}

/// The account's users by address, to resolve rows that name a user by
/// `current_email` (any case).
#[derive(Debug, Default)]
pub struct EmailIndex {
    ids: HashMap<String, Vec<u64>>,
}

impl EmailIndex {
    pub fn new(users: &[User]) -> EmailIndex {
        let mut ids: HashMap<String, Vec<u64>> = HashMap::new();
        for user in users {
            if let (Some(id), Some(email)) = (user.id, &user.email) {
                ids.entry(email.trim().to_lowercase()).or_default().push(id);
            }
        }
        EmailIndex { ids }
    }

    /// The users with this address.
    pub(crate) fn lookup(&self, email: &str) -> &[u64] {
        self.ids
            .get(&email.trim().to_lowercase())
            .map_or(&[], Vec::as_slice)
    }
}

/// A row's user: its `user_id` cell when that holds an ID, else the one
/// user its `current_email` resolves to (with an index).
pub fn user_of(raw: &RawRow, header: &Header, emails: Option<&EmailIndex>) -> Option<u64> {
    let cell = |column: Option<usize>| {
        std::str::from_utf8(raw.cells.get(column?)?)
            .ok()
            .map(str::trim)
    };
    if let Some(id) = cell(header.user_id).and_then(|text| parse_user_id(text).ok()) {
        return Some(id);
    }
    match (cell(header.current_email), emails) {
        (Some(address), Some(emails)) if !address.is_empty() => match emails.lookup(address) {
            [id] => Some(*id),
            _ => None,
        },
        _ => None,
    }
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
        Preflight::scan_with(input, null_token, count_invalid, None)
    }

    /// [`Preflight::scan`], resolving `current_email` with `emails`.
    pub(crate) fn scan_with(
        input: &Input,
        null_token: &str,
        count_invalid: bool,
        emails: Option<&EmailIndex>,
    ) -> Result<Preflight, Fatal> {
        let mut rows = input.rows()?;
        let header = rows.header().clone();
        let ignored = header.ignored().into_iter().map(str::to_string).collect();
        let no_duplicates = Duplicates::default();
        let checker = Checker::new(&header, null_token, &no_duplicates).with_emails(emails);
        let mut found = Preflight {
            ignored,
            ..Preflight::default()
        };
        let mut ids = Vec::new();
        while let Some(raw) = rows.next_row()? {
            found.rows += 1;
            if let Some(id) = user_of(&raw, &header, emails) {
                ids.push(id);
            }
            if count_invalid && matches!(checker.check(&raw).verdict, Verdict::Invalid(_)) {
                found.invalid += 1;
            }
        }
        found.duplicates = Duplicates::from_ids(input, ids, emails)?;
        if count_invalid && !found.duplicates.is_empty() {
            found.invalid = count_invalid_rows(input, null_token, &found.duplicates, emails)?;
        }
        Ok(found)
    }
}

fn count_invalid_rows(
    input: &Input,
    null_token: &str,
    duplicates: &Duplicates,
    emails: Option<&EmailIndex>,
) -> Result<u64, Fatal> {
    let mut invalid = 0;
    each_checked(input, null_token, duplicates, emails, |checked| {
        if matches!(checked.verdict, Verdict::Invalid(_)) {
            invalid += 1;
        }
    })?;
    Ok(invalid)
}

/// Checks every row of `input` again, handing each to `seen`.
fn each_checked(
    input: &Input,
    null_token: &str,
    duplicates: &Duplicates,
    emails: Option<&EmailIndex>,
    mut seen: impl FnMut(CheckedRow),
) -> Result<(), Fatal> {
    let mut rows = input.rows()?;
    let header = rows.header().clone();
    let checker = Checker::new(&header, null_token, duplicates).with_emails(emails);
    while let Some(raw) = rows.next_row()? {
        seen(checker.check(&raw));
    }
    Ok(())
}

/// User IDs that appear on more than one row, with those rows.
#[derive(Debug, Default)]
pub struct Duplicates {
    rows: HashMap<u64, Vec<u64>>,
}

impl Duplicates {
    /// From the user IDs that a pass over `input` already collected (see
    /// [`user_of`]); reads the file again only when some ID repeats.
    pub(crate) fn from_ids(
        input: &Input,
        mut ids: Vec<u64>,
        emails: Option<&EmailIndex>,
    ) -> Result<Duplicates, Fatal> {
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
            let header = rows.header().clone();
            while let Some(raw) = rows.next_row()? {
                if let Some(list) =
                    user_of(&raw, &header, emails).and_then(|id| rows_of.get_mut(&id))
                {
                    list.push(raw.row);
                }
            }
        }
        Ok(Duplicates { rows: rows_of })
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The first few other rows that hold `user_id` (at most
    /// [`OTHERS_SHOWN`]) and how many there are: constant work per row, so
    /// that one user on 150,000 rows is checked in linear time.
    fn others(&self, user_id: u64, row: u64) -> (Vec<u64>, usize) {
        let Some(rows) = self.rows.get(&user_id) else {
            return (Vec::new(), 0);
        };
        let shown = rows
            .iter()
            .copied()
            .filter(|&other| other != row)
            .take(OTHERS_SHOWN)
            .collect();
        // The rows are in order and each is listed once.
        let this_one = usize::from(rows.binary_search(&row).is_ok());
        (shown, rows.len() - this_one)
    }
}

/// Checks rows against the header, the null token and the duplicates found.
pub struct Checker<'a> {
    header: &'a Header,
    null_token: &'a str,
    duplicates: &'a Duplicates,
    /// Resolves `current_email`; without it (a dry run) an address is only
    /// checked to be one.
    emails: Option<&'a EmailIndex>,
}

impl<'a> Checker<'a> {
    pub fn new(header: &'a Header, null_token: &'a str, duplicates: &'a Duplicates) -> Self {
        Checker {
            header,
            null_token,
            duplicates,
            emails: None,
        }
    }

    pub(crate) fn with_emails(mut self, emails: Option<&'a EmailIndex>) -> Self {
        self.emails = emails;
        self
    }

    pub fn check(&self, raw: &RawRow) -> CheckedRow {
        let mut problems = Vec::new();
        let mut body = PatchBody::default();
        let user_id_cell = self
            .header
            .user_id
            .and_then(|column| raw.cells.get(column))
            .unwrap_or_default();
        let mut user_id_text = String::from_utf8_lossy(user_id_cell).trim().to_string();
        let mut user_id = None;
        let mut current_email = None;
        // A user_id or current_email cell with a problem already reported.
        let mut named_badly = false;

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
            // A row of the API's own values (an undo file's): its field
            // cells are JSON, sent as they are.
            let verbatim = match self.header.verbatim.and_then(|c| raw.cells.get(c)) {
                None => false,
                Some(cell) => match String::from_utf8_lossy(cell).trim() {
                    "" => false,
                    word if word.eq_ignore_ascii_case(VERBATIM_JSON) => true,
                    word => {
                        problems.push(Problem::in_column(
                            VERBATIM,
                            format!(
                                "{} is not {VERBATIM_JSON}; leave it empty for a row of plain \
                                 cells, or write {VERBATIM_JSON} for a row whose field cells are \
                                 the API's own values as JSON (as an undo file writes them)",
                                show(word)
                            ),
                        ));
                        false
                    }
                },
            };
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
                if let Some(problem) = raw
                    .notes
                    .iter()
                    .find(|note| note.column == i)
                    .and_then(|note| stored_problem(column, note, cell))
                {
                    named_badly |= matches!(column, Column::UserId | Column::CurrentEmail);
                    problems.push(problem);
                    continue;
                }
                match column {
                    // Without a user_id column, the address alone names the user.
                    Column::UserId if cell.is_empty() && self.header.current_email.is_some() => {}
                    Column::UserId if scientific(cell) => {
                        named_badly = true;
                        problems.push(Problem::in_column(
                            "user_id",
                            format!(
                                "{} is a number in scientific notation, as a spreadsheet writes \
                                 a long ID it stores as a number: the ID may have lost digits; \
                                 format the column as text (or export the users again)",
                                show(cell)
                            ),
                        ));
                    }
                    Column::UserId => match parse_user_id(cell) {
                        Ok(id) => user_id = Some(id),
                        Err(message) => {
                            named_badly = true;
                            problems.push(Problem::in_column("user_id", message));
                        }
                    },
                    Column::CurrentEmail if cell.is_empty() => {}
                    Column::CurrentEmail => match check_email(restore(cell)) {
                        Ok(address) => current_email = Some(address),
                        Err(message) => {
                            named_badly = true;
                            problems.push(Problem::in_column("current_email", message));
                        }
                    },
                    Column::Field(_) | Column::Unnamed if cell.is_empty() => {}
                    Column::Verbatim => {}
                    Column::Field(field) if verbatim => {
                        let set = serde_json::from_str::<serde_json::Value>(restore(cell))
                            .map_err(|_| {
                                format!(
                                    "{} is not JSON, and the row says {VERBATIM_JSON} in its \
                                     {VERBATIM} column (its cells are the API's values as \
                                     JSON: \"text\", null, [...]); write the value as JSON, or \
                                     empty the {VERBATIM} cell to write plain cells",
                                    show(cell)
                                )
                            })
                            .and_then(|value| body.set_verbatim(*field, &value));
                        if let Err(message) = set {
                            problems.push(Problem::in_column(field.name(), message));
                        }
                    }
                    Column::Field(field) if !verbatim && looks_like_json(cell) => {
                        problems.push(Problem::in_column(
                            field.name(),
                            format!(
                                "{} is a JSON value, as an undo file or an export writes the \
                                 API's own values in a row marked {VERBATIM_JSON} in its \
                                 {VERBATIM} column; put that column back (with {VERBATIM_JSON} \
                                 in this row), or type the value plainly ({} to clear a name \
                                 or phone)",
                                show(cell),
                                self.null_token
                            ),
                        ));
                    }
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

        if raw.cells.len() == self.header.width() && !named_badly {
            match self.resolve(user_id, current_email.as_deref()) {
                Ok(Some(id)) => {
                    if user_id.is_none() {
                        user_id_text = id.to_string();
                    }
                    user_id = Some(id);
                }
                Ok(None) => {}
                Err(problem) => problems.push(problem),
            }
        }

        if let Some(id) = user_id {
            let (others, count) = self.duplicates.others(id, raw.row);
            if count > 0 {
                problems.insert(0, duplicate_problem(id, &others, count));
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

impl Checker<'_> {
    /// The row's user from its `user_id` and `current_email` cells: one
    /// of them, or both naming the same user. `Ok(None)`: no user yet (an
    /// address that a dry run does not resolve, or a user_id problem
    /// already reported).
    fn resolve(&self, user_id: Option<u64>, email: Option<&str>) -> Result<Option<u64>, Problem> {
        let problem = |message: String| Problem::in_column("current_email", message);
        let Some(email) = email else {
            return match (user_id, self.header.user_id) {
                (Some(id), _) => Ok(Some(id)),
                (None, None) => Err(problem(
                    "is empty, and the file has no user_id column: give the user's current \
                     address"
                        .to_string(),
                )),
                (None, Some(_)) => Err(Problem::in_column(
                    "user_id",
                    "is empty, and so is current_email: give the user's ID or current address"
                        .to_string(),
                )),
            };
        };
        let Some(emails) = self.emails else {
            return Ok(user_id);
        };
        let resolved = match emails.lookup(email) {
            [id] => *id,
            [] => {
                return Err(problem(format!(
                    "no user of the account has the address {}; check it, or give user_id",
                    show(email)
                )));
            }
            several => {
                let ids: Vec<String> = several.iter().map(u64::to_string).collect();
                return Err(problem(format!(
                    "{} users of the account have the address {} (IDs {}); give user_id",
                    several.len(),
                    show(email),
                    ids.join(", ")
                )));
            }
        };
        match user_id {
            Some(id) if id != resolved => Err(problem(format!(
                "{} is user {resolved}, but user_id says {id}; make them agree, or leave one empty",
                show(email)
            ))),
            _ => Ok(Some(resolved)),
        }
    }
}
