//! The problems of one cell: a JSON text where plain text goes, a value a
//! spreadsheet stored as a number, a date or a formula, a user on several
//! rows, bytes that are not UTF-8.

use crate::model::patch::Problem;
use crate::model::patch::{Field, PatchBody};
pub(super) use crate::table::cells::looks_like_json;
use crate::table::input::{ACTION, Column, VERBATIM};
use crate::table::sheet::{CellNote, Stored};

/// What is wrong with a workbook's cell that was not stored as text, in
/// the column it is in; `None` when its text can be read as it is (a
/// number in `user_id`, `lang`, `groups`; any formula's value).
pub(super) fn stored_problem(column: &Column, note: &CellNote, cell: &str) -> Option<Problem> {
    let name = match column {
        Column::UserId => "user_id",
        Column::CurrentEmail => "current_email",
        Column::Field(field) => field.name(),
        Column::Verbatim => VERBATIM,
        Column::Action => ACTION,
        Column::Unnamed | Column::Ignored(_) => return None,
    };
    let at = note.reference();
    if note.ruby {
        return Some(Problem::in_column(
            name,
            format!(
                "{at} holds ruby (phonetic) text, shown above the text but read into the value \
                 ({cell:?}); remove the ruby (Format > Asian Phonetic Guide) and save the file"
            ),
        ));
    }
    if note.escaped {
        return Some(Problem::in_column(
            name,
            format!(
                "{at} is stored with an escape such as _x0041_, which Excel shows as the \
                 character it codes (read here as {cell:?}) and LibreOffice shows as it is: \
                 which one is meant cannot be told; type the value again in the spreadsheet \
                 and save the file"
            ),
        ));
    }
    if let (Column::UserId, Some(format)) = (column, &note.format) {
        return Some(Problem::in_column(
            name,
            format!(
                "{at} shows the number {cell} as {format}, not as a user ID (a percentage shows \
                 500% for 5, a currency 9,00 € for 9); format the cell as text (or General) and \
                 type the ID as it is"
            ),
        ));
    }
    let message = match &note.stored {
        Stored::Text => return None,
        Stored::Error(error) => format!(
            "{at} holds the error {error}: a formula that failed; fix the formula or type the \
             value"
        ),
        Stored::Date(shown) => format!(
            "{at} holds {shown}, not text: a spreadsheet turns some values into dates and \
             times as they are typed; format the cell as text and type the value again"
        ),
        Stored::Unsaved => format!(
            "{at} holds the formula {cell}, whose value is empty or was never saved: paste the \
             values (or open and save a file written by a program that does not calculate)"
        ),
        Stored::Logical => format!(
            "{at} holds the logical value {cell}, not text; format the cell as text and type the \
             value again"
        ),
        Stored::Number { whole, exact } => match column {
            Column::UserId if !*exact => format!(
                "{at} holds the ID as a number of 16 or more digits, which a spreadsheet cannot \
                 keep exactly: it may have lost digits; format the column as text and type the \
                 ID again (or export the users again as .xlsx)"
            ),
            Column::UserId if !*whole => {
                format!("{at} holds the number {cell}, not a whole user ID; type the ID as it is")
            }
            Column::UserId => return None,
            Column::CurrentEmail
            | Column::Field(Field::Email | Field::Name | Field::Phone | Field::Company)
                if note.formula =>
            {
                format!(
                    "{at} holds a formula whose value is the number {cell}, not text; make the \
                     formula give text, or type the value in a column formatted as text"
                )
            }
            Column::CurrentEmail
            | Column::Field(Field::Email | Field::Name | Field::Phone | Field::Company) => {
                let lost = match column {
                    Column::Field(Field::Phone) => "drops a leading + or 0",
                    _ => "drops leading zeros (007 becomes 7)",
                };
                format!(
                    "{at} holds {cell} as a number, not text: a spreadsheet that stores a value \
                     as a number {lost}{}; format the column as text and type the value again \
                     (an export to .xlsx has text cells)",
                    if *exact {
                        ""
                    } else {
                        " and keeps only 15 digits"
                    }
                )
            }
            // A group named by its ID must be typed as text: a number cell
            // may be a formula's TRUE (1, Administrators), a percentage or
            // an amount that only looks like another number.
            Column::Field(Field::Groups) => format!(
                "{at} holds the number {cell}, not text: a group is named by its name, or by \
                 its ID typed as text (a number cell may be a formula's TRUE, a percentage or \
                 an amount, and 1 is Administrators); format the column as text and type the \
                 groups again"
            ),
            // lang, auth_types: a number is read as the text shown, and
            // checked as any text is (and refused).
            Column::Field(_) if *exact => return None,
            Column::Field(_) => format!(
                "{at} holds a number of 16 or more digits, which a spreadsheet cannot keep \
                 exactly; format the column as text and type the value again"
            ),
            Column::Verbatim | Column::Action | Column::Unnamed | Column::Ignored(_) => {
                return None;
            }
        },
    };
    Some(Problem::in_column(name, message))
}

/// How many of the other rows of a repeated user a row's problem lists.
pub(super) const OTHERS_SHOWN: usize = 5;

pub(super) fn duplicate_problem(id: u64, others: &[u64], count: usize) -> Problem {
    let mut list: Vec<String> = others.iter().map(u64::to_string).collect();
    if count > others.len() {
        list.push(format!("and {} more", count - others.len()));
    }
    let rows = if count == 1 { "row" } else { "rows" };
    Problem::in_column(
        "user_id",
        format!(
            "{id} is also on {rows} {}; give each user one row",
            list.join(", ")
        ),
    )
}

pub(super) fn not_utf8(column: &Column, index: usize, bytes: &[u8]) -> Problem {
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
        Column::CurrentEmail => Problem::in_column("current_email", message),
        Column::Field(field) => Problem::in_column(field.name(), message),
        Column::Verbatim => Problem::in_column(VERBATIM, message),
        Column::Action => Problem::in_column(ACTION, message),
        Column::Unnamed | Column::Ignored(_) => {
            Problem::in_row(format!("column {}: {message}", index + 1))
        }
    }
}

/// What an invitation lacks: an address (`email`) and a group (`groups`,
/// whose first is the invitation's role).
pub(super) fn invitation_problems(body: &PatchBody) -> Vec<Problem> {
    let mut problems = Vec::new();
    if body.email.is_none() {
        problems.push(Problem::in_column(
            "email",
            "is empty: an invite row needs the new user's address".to_string(),
        ));
    }
    if body.groups.as_ref().is_none_or(Vec::is_empty) {
        problems.push(Problem::in_column(
            "groups",
            "is empty: an invite row needs the new user's group (the first one listed is the \
             invitation's role, e.g. Users)"
                .to_string(),
        ));
    }
    problems
}

/// The name messages give a column of the user's.
pub(super) fn column_name(column: &Column) -> &'static str {
    match column {
        Column::CurrentEmail => "current_email",
        _ => "user_id",
    }
}
