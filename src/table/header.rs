//! The input's header: the column names this tool knows (and their
//! spellings), the read-only columns of an export, and the checked
//! [`Header`] with its messages for unknown and repeated columns.

use crate::model::patch::{Field, closest, show};

/// Whether the cells of `column` feed requests (name users or hold
/// fields).
pub(super) fn feeds(header: &Header, column: usize) -> bool {
    matches!(
        header.columns.get(column),
        Some(Column::UserId | Column::CurrentEmail | Column::Field(_) | Column::Action)
    )
}

/// What a header column holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    UserId,
    /// The user's address now (`current_email`): names the user instead of,
    /// or as well as, `user_id`; resolved from the account's user list.
    CurrentEmail,
    Field(Field),
    /// `verbatim`: a row that says `json` here holds, in its field cells,
    /// JSON values the API itself gave (the undo file's rows whose values
    /// the input rules would refuse), sent as they are.
    Verbatim,
    /// `action`: what a row does to the account's membership: `update`
    /// (or empty: change the user's fields), `invite` (a new user) or
    /// `remove` (the user leaves the account).
    Action,
    /// A column with an empty name (Excel leaves these after the last column);
    /// its cells must be empty.
    Unnamed,
    /// A column skipped: one of [`READ_ONLY_COLUMNS`], or an unknown one
    /// with `--ignore-unknown-columns`.
    Ignored(String),
}

/// Fields of a user that this endpoint cannot change, which `export` writes
/// after the input columns to sort and filter by: the input reader always
/// passes over them (and says so), so an export is a valid input as it is.
pub(crate) const READ_ONLY_COLUMNS: [&str; 6] = [
    "activated",
    "deleted",
    "is_active",
    "two_fa",
    "sso_auth",
    "user_type",
];

/// Whether `name` is one of [`READ_ONLY_COLUMNS`] (any case).
pub(crate) fn is_read_only_column(name: &str) -> bool {
    READ_ONLY_COLUMNS
        .iter()
        .any(|known| known.eq_ignore_ascii_case(name.trim()))
}

/// The header names of the `user_id` column, and of `current_email`
/// (lowercase).
pub(super) const ID_NAMES: [&str; 3] = ["user_id", "id", "userid"];
pub(super) const EMAIL_NAMES: [&str; 2] = ["current_email", "currentemail"];
/// The header name of the [`Column::Verbatim`] column.
pub(crate) const VERBATIM: &str = "verbatim";
/// The header name of the [`Column::Action`] column.
pub(crate) const ACTION: &str = "action";
/// What a row says in [`VERBATIM`] when its field cells are JSON.
pub(crate) const VERBATIM_JSON: &str = "json";

/// Whether a header cell names the users' column (`user_id` or
/// `current_email`, as [`Header`] reads them): a sheet with one holds users.
pub(crate) fn names_the_user(name: &str) -> bool {
    let lower = name
        .trim_start_matches('\u{feff}')
        .trim()
        .to_ascii_lowercase();
    ID_NAMES.contains(&lower.as_str()) || EMAIL_NAMES.contains(&lower.as_str())
}

/// The most columns a header may have: the width of a spreadsheet.
pub(crate) const MAX_COLUMNS: usize = 16_384;

/// The header, mapped to columns.
#[derive(Debug, Clone)]
pub struct Header {
    pub columns: Vec<Column>,
    /// The `user_id` column; a header has it, `current_email`, or both.
    pub user_id: Option<usize>,
    pub current_email: Option<usize>,
    /// The [`Column::Verbatim`] column, in a file that has one (an undo
    /// file, an export).
    pub verbatim: Option<usize>,
    /// The [`Column::Action`] column: rows that invite or remove users.
    pub action: Option<usize>,
}

impl Header {
    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// The names of the columns that were skipped, for a note to the user.
    pub fn ignored(&self) -> Vec<&str> {
        self.columns
            .iter()
            .filter_map(|column| match column {
                Column::Ignored(name) => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    pub(super) fn parse(names: &[&str], ignore_unknown: bool) -> Result<Header, String> {
        if names.len() > MAX_COLUMNS {
            return Err(format!(
                "the header has {} columns; at most {MAX_COLUMNS} are read (a spreadsheet's \
                 width): the file is not a table of users, or its delimiter is not what it \
                 seems",
                names.len()
            ));
        }
        let mut columns = Vec::with_capacity(names.len());
        let mut unknown = Vec::new();
        for (i, raw) in names.iter().enumerate() {
            let name = raw.trim_start_matches('\u{feff}').trim();
            let lower = name.to_ascii_lowercase();
            let column = if name.is_empty() {
                Column::Unnamed
            } else if ID_NAMES.contains(&lower.as_str()) {
                Column::UserId
            } else if EMAIL_NAMES.contains(&lower.as_str()) {
                Column::CurrentEmail
            } else if let Some(field) = Field::from_name(&lower) {
                Column::Field(field)
            } else if lower == VERBATIM {
                Column::Verbatim
            } else if lower == ACTION {
                Column::Action
            } else {
                if !ignore_unknown && !is_read_only_column(name) {
                    unknown.push((i, name));
                }
                Column::Ignored(name.to_string())
            };
            if matches!(
                column,
                Column::UserId
                    | Column::CurrentEmail
                    | Column::Field(_)
                    | Column::Verbatim
                    | Column::Action
            ) && let Some(first) = columns.iter().position(|seen| *seen == column)
            {
                return Err(format!(
                    "the header names {} twice (columns {} and {}); keep one of them",
                    column_label(&column),
                    first + 1,
                    i + 1
                ));
            }
            columns.push(column);
        }
        if !unknown.is_empty() {
            return Err(unknown_columns_message(&unknown));
        }
        let user_id = columns.iter().position(|c| *c == Column::UserId);
        let current_email = columns.iter().position(|c| *c == Column::CurrentEmail);
        let action = columns.iter().position(|c| *c == Column::Action);
        // A sheet of invitations names no user yet.
        if user_id.is_none() && current_email.is_none() && action.is_none() {
            let short = |name: &str| crate::visible::cut(name, 40).into_owned();
            let mut found: Vec<String> = names.iter().take(SHOWN).map(|n| short(n)).collect();
            if names.len() > SHOWN {
                found.push(format!("and {} more", names.len() - SHOWN));
            }
            return Err(format!(
                "the header has no user_id column (found: {}); name the column of user IDs \
                 user_id (or id, userId), or name users by their address in a current_email \
                 column (a sheet of new users to invite has an action column instead)",
                found.join(", ")
            ));
        }
        let verbatim = columns.iter().position(|c| *c == Column::Verbatim);
        Ok(Header {
            columns,
            user_id,
            current_email,
            verbatim,
            action,
        })
    }
}

pub(super) fn column_label(column: &Column) -> &str {
    match column {
        Column::UserId => "user_id (or id, userId)",
        Column::CurrentEmail => "current_email",
        Column::Field(field) => field.name(),
        Column::Verbatim => VERBATIM,
        Column::Action => ACTION,
        Column::Unnamed => "an unnamed column",
        Column::Ignored(name) => name,
    }
}

/// How many names a message about the header quotes: a header of 100,000
/// columns still makes a message of one short line.
pub(super) const SHOWN: usize = 8;

pub(super) fn unknown_columns_message(unknown: &[(usize, &str)]) -> String {
    // NUL between the letters: UTF-16 without its byte-order mark, read as
    // UTF-8 (the first byte NUL: big-endian).
    if let Some((_, first)) = unknown.iter().find(|(_, name)| name.contains('\0')) {
        let label = match first.starts_with('\0') {
            true => "utf-16be",
            false => "utf-16le",
        };
        return format!(
            "the header has a NUL character between its letters ({}): the file looks like \
             UTF-16 without a byte-order mark; pass --encoding {label}, or save it as UTF-8",
            show(first)
        );
    }
    // Excel's directive for the delimiter, which it hides: the header is
    // the line after it.
    if let [(0, first)] = unknown
        && first.trim().to_ascii_lowercase().starts_with("sep=")
    {
        // `sep=;` read with `;` as the delimiter is the cell `sep=`.
        let delimiter = first.trim()[4..].chars().next().unwrap_or(';');
        let found = match delimiter {
            ',' | ';' | '\t' => "the delimiter is found by itself".to_string(),
            other => format!("then pass --delimiter '{other}'"),
        };
        return format!(
            "the first line is Excel's sep= line (its note of the delimiter), not the header; \
             delete that line ({found})"
        );
    }
    let known: Vec<&str> = std::iter::once("user_id")
        .chain(Field::ALL.iter().map(|field| field.name()))
        .chain([ACTION, "current_email", VERBATIM])
        .collect();
    let mut parts = Vec::new();
    for (i, name) in unknown.iter().take(SHOWN) {
        let mut part = format!("{} (column {})", show(name), i + 1);
        if let Some(guess) = closest(name, known.iter().copied()) {
            part.push_str(&format!(": did you mean {guess:?}?"));
        }
        parts.push(part);
    }
    if unknown.len() > SHOWN {
        parts.push(format!("and {} more", unknown.len() - SHOWN));
    }
    format!(
        "unknown column{} {}; the known columns are user_id (or id, userId), {}; \
         fix the header, or pass --ignore-unknown-columns to skip the others",
        if unknown.len() > 1 { "s" } else { "" },
        parts.join(", "),
        known[1..].join(", ")
    )
}
