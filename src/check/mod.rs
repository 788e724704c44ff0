//! Checking rows: a record of the input becomes a PATCH body to send, a row
//! to skip, or the list of its problems. Duplicated user IDs are found in a
//! first pass over the file, so that both rows can name each other.

use crate::error::Fatal;
use crate::model::action::Action;
use crate::model::patch::{PatchBody, Problem, check_email, parse_user_id, scientific, show};
use crate::table::cells::restore;
use crate::table::input::{ACTION, Column, Header, Input, RawRow, VERBATIM, VERBATIM_JSON};
use crate::table::members_log::Earlier;

mod cells;
mod duplicates;
mod live;
mod named;
mod resume;
mod rows;

use cells::*;
pub use duplicates::Duplicates;
pub use live::*;
pub use named::*;
pub(crate) use resume::*;
pub use rows::Rows;

/// What to do with a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Send(PatchBody),
    /// Valid, but nothing to do; the text is the reason.
    Skip(&'static str),
    Invalid(Vec<Problem>),
    /// `action` `invite`: a new user with these fields (`email` and
    /// `groups` at least; the first group is the invitation's role).
    Invite(PatchBody),
    /// `action` `remove`: the row's user leaves the account.
    Remove,
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
    /// Rows whose `action` is `invite`.
    pub invites: u64,
    /// Rows whose `action` is `remove`, and the first few of them (their
    /// row and how they name the user), for the guard's message.
    pub removals: u64,
    pub(crate) removed: Vec<(u64, String)>,
    /// The file has a `verbatim` column: an undo file (or an export).
    pub(crate) verbatim: bool,
}

/// How many removals the guard's message names.
pub(crate) const REMOVALS_NAMED: usize = 5;

impl Preflight {
    /// One pass that counts the rows and collects the user IDs to find
    /// repeated ones. With `count_invalid` (a run that may send) it also
    /// checks every row; only when some ID repeats (a file that is refused
    /// anyway, or sent with --skip-invalid) is the file read again: to find
    /// those rows, and to count the invalid rows exactly. Memory: 8 bytes
    /// per row for the IDs (8 MB for a million rows), then only the
    /// repeated ones are kept.
    pub fn scan(input: &Input, null_token: &str, count_invalid: bool) -> Result<Preflight, Fatal> {
        Preflight::scan_with(input, null_token, count_invalid, None, None)
    }

    /// [`Preflight::scan`], resolving `current_email` with `emails`.
    pub(crate) fn scan_with(
        input: &Input,
        null_token: &str,
        count_invalid: bool,
        emails: Option<&EmailIndex>,
        earlier: Option<&Earlier>,
    ) -> Result<Preflight, Fatal> {
        let mut rows = input.rows()?;
        let header = rows.header().clone();
        let ignored = header.ignored().into_iter().map(str::to_string).collect();
        let no_duplicates = Duplicates::default();
        let checker = Checker::new(&header, null_token, &no_duplicates)
            .with_emails(emails)
            .with_earlier(earlier);
        let cell = |raw: &RawRow, column: Option<usize>| -> String {
            column
                .and_then(|column| raw.cells.get(column))
                .map(|cell| String::from_utf8_lossy(cell).trim().to_string())
                .unwrap_or_default()
        };
        let mut found = Preflight {
            ignored,
            verbatim: header.verbatim.is_some(),
            ..Preflight::default()
        };
        let mut ids = Vec::new();
        // Addresses of invite rows (and of update rows, in a sheet with
        // invitations): one invited twice, or invited and given to a user,
        // is refused.
        let mut invitations = Vec::new();
        let email_column = (header.columns.iter())
            .position(|column| *column == Column::Field(crate::model::field::Field::Email));
        while let Some(raw) = rows.next_row()? {
            found.rows += 1;
            if let Some(id) = user_of(&raw, &header, emails) {
                ids.push(id);
            }
            let action = Action::parse(&cell(&raw, header.action));
            // In a sheet that invites, an address given to a user by an
            // update row may not be invited too.
            if header.action.is_some() && matches!(action, Ok(Action::Invite | Action::Update)) {
                let address = cell(&raw, email_column).to_lowercase();
                if !address.is_empty() {
                    invitations.push((address, raw.row, action == Ok(Action::Invite)));
                }
            }
            match action {
                Ok(Action::Invite) => found.invites += 1,
                Ok(Action::Remove) => {
                    found.removals += 1;
                    if found.removed.len() < REMOVALS_NAMED {
                        let named = match cell(&raw, header.user_id) {
                            id if !id.is_empty() => format!("user {id}"),
                            _ => cell(&raw, header.current_email),
                        };
                        found.removed.push((raw.row, named));
                    }
                }
                _ => {}
            }
            if count_invalid && matches!(checker.check(&raw).verdict, Verdict::Invalid(_)) {
                found.invalid += 1;
            }
        }
        found.duplicates = Duplicates::from_ids(input, ids, emails)?.with_invitations(invitations);
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

/// Checks rows against the header, the null token and the duplicates found.
pub struct Checker<'a> {
    header: &'a Header,
    null_token: &'a str,
    duplicates: &'a Duplicates,
    /// Resolves `current_email`; without it (a dry run) an address is only
    /// checked to be one.
    emails: Option<&'a EmailIndex>,
    /// A resumed run: what the runs of its record invited. An invitation
    /// of an address in the account now that one of them sent is the
    /// run's own (see `operations::invite`), not invalid.
    earlier: Option<&'a Earlier>,
    /// Rows a record says were done (`--resume`'s check of them): an
    /// invitation's address in the account is the run's own.
    recorded: bool,
}

impl<'a> Checker<'a> {
    pub fn new(header: &'a Header, null_token: &'a str, duplicates: &'a Duplicates) -> Self {
        Checker {
            header,
            null_token,
            duplicates,
            emails: None,
            earlier: None,
            recorded: false,
        }
    }

    pub(crate) fn with_earlier(mut self, earlier: Option<&'a Earlier>) -> Self {
        self.earlier = earlier;
        self
    }

    /// For rows a record says were done (see [`Checker::recorded`]).
    pub(crate) fn of_recorded_rows(mut self) -> Self {
        self.recorded = true;
        self
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
        let mut action = Action::Update;

        if raw.cells.len() != self.header.width() {
            let (cells, width) = (raw.cells.len(), self.header.width());
            problems.push(Problem::in_row(format!(
                "has {cells} {} but the header has {width} {}; check for a missing or extra \
                 delimiter, or a quote that is not closed",
                if cells == 1 { "cell" } else { "cells" },
                if width == 1 { "column" } else { "columns" },
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
            if let Some(cell) = self.header.action.and_then(|c| raw.cells.get(c)) {
                match Action::parse(&String::from_utf8_lossy(cell)) {
                    Ok(parsed) => action = parsed,
                    Err(message) => {
                        named_badly = true;
                        problems.push(Problem::in_column(ACTION, message));
                    }
                }
            }
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
                    // A new user has no ID yet, nor a current address.
                    Column::UserId | Column::CurrentEmail if action == Action::Invite => {
                        if !cell.is_empty() {
                            named_badly = true;
                            problems.push(Problem::in_column(
                                column_name(column),
                                format!(
                                    "is {}, but an invite row names no user yet (the new \
                                     user's ID comes back from the invitation): empty it, and \
                                     give the new user's address in email; to change a user \
                                     of the account, make the row an update",
                                    show(cell)
                                ),
                            ));
                        }
                    }
                    Column::Action => {}
                    // Without a user_id column, the address alone names the user.
                    Column::UserId if cell.is_empty() && self.header.current_email.is_some() => {}
                    // A sheet of invitations may have no user_id column.
                    Column::UserId if cell.is_empty() && action == Action::Invite => {}
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

        if action == Action::Invite {
            named_badly = true;
            // A column whose cell has a problem already is not said empty.
            let named: Vec<Problem> = invitation_problems(&body)
                .into_iter()
                .filter(|problem| !problems.iter().any(|p| p.column == problem.column))
                .collect();
            problems.extend(named);
            if let Some(email) = &body.email {
                let others = self.duplicates.invited_elsewhere(email, raw.row);
                if !others.is_empty() {
                    let rows: Vec<String> = others.iter().map(u64::to_string).collect();
                    problems.push(Problem::in_column(
                        "email",
                        format!(
                            "{} is also on row {} (invited, or an update's new address); give each \
                             address one row",
                            show(email),
                            rows.join(", ")
                        ),
                    ));
                }
            }
            let ours = |email: &str| {
                self.recorded || self.earlier.is_some_and(|earlier| earlier.invited(email))
            };
            if let (Some(emails), Some(email)) = (self.emails, &body.email)
                && !ours(email)
                && let [id, ..] = emails.lookup(email)
            {
                problems.push(Problem::in_column(
                    "email",
                    format!(
                        "{} already belongs to user {id} of the account: make the row an \
                         update (action empty, user_id {id}), or remove the row",
                        show(email)
                    ),
                ));
            }
        }
        if action == Action::Remove && !body.is_empty() {
            let fields = body.fields().names();
            problems.push(Problem::in_column(
                "action",
                format!(
                    "is remove, and the row sets {fields}: a user who leaves the account keeps \
                     no field; empty the {fields} cells, or make the row an update"
                ),
            ));
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
        } else if action == Action::Invite {
            Verdict::Invite(body)
        } else if action == Action::Remove {
            Verdict::Remove
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
