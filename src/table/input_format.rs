//! Writes users in the input format (`user_id` and the seven field columns),
//! so that what this tool writes is a valid input as it stands: the export
//! of an account and the undo file of a run build on it.

use std::io::{self, Write};

use serde_json::Value;

use super::cells::{neutralise, restore};
use super::input::READ_ONLY_COLUMNS;
use crate::model::api::User;
use crate::model::change::FieldSet;
use crate::model::patch::{Field, PatchBody};

/// Whether the input format can say this text value exactly: a null only
/// in a nullable field; text not empty, without spaces at either end (the
/// reader trims them), and not the null token (which would read as null).
pub fn sayable(value: Option<&str>, nullable: bool, null_token: &str) -> bool {
    match value {
        None => nullable,
        Some(text) => {
            !text.is_empty() && text.trim() == text && !text.eq_ignore_ascii_case(null_token)
        }
    }
}

/// Whether every text field of `user` can be said exactly (see [`sayable`]).
pub fn user_sayable(user: &User, null_token: &str) -> bool {
    sayable(user.email.as_deref(), false, null_token)
        && sayable(user.name.as_deref(), true, null_token)
        && sayable(user.phone.as_deref(), true, null_token)
        && sayable(user.company.as_deref(), false, null_token)
}

/// `user`'s values of `fields` as the seven field cells (the others empty),
/// and whether they are JSON: plain cells when each reads back as exactly
/// the API's value (tried, as the input reader reads it), else every cell
/// of the row is the value as JSON, for a row marked `verbatim`. A field
/// the user's answer left out stays empty.
pub fn exact_cells(user: &User, fields: FieldSet, null_token: &str) -> (Vec<String>, bool) {
    let values: Vec<(Field, Value)> = fields
        .iter()
        .filter_map(|field| Some((field, user.value(field)?)))
        .collect();
    let plain: Option<Vec<(Field, String)>> = values
        .iter()
        .map(|(field, value)| Some((*field, plain_cell(*field, value, null_token)?)))
        .collect();
    let mut cells = vec![String::new(); Field::ALL.len()];
    let verbatim = plain.is_none();
    match plain {
        Some(plain) => {
            for (field, cell) in plain {
                cells[field as usize] = cell;
            }
        }
        None => {
            for (field, value) in values {
                cells[field as usize] = value.to_string();
            }
        }
    }
    (cells, verbatim)
}

/// The plain cell that the input reader turns into exactly `value`, if
/// there is one.
fn plain_cell(field: Field, value: &Value, null_token: &str) -> Option<String> {
    let cell = match value {
        Value::Null => null_token.to_string(),
        Value::String(text) => text.clone(),
        Value::Array(items) => {
            let names: Option<Vec<&str>> = items
                .iter()
                .map(|item| match field {
                    Field::Groups => item.get("name")?.as_str(),
                    _ => item.as_str(),
                })
                .collect();
            names?.join(";")
        }
        _ => return None,
    };
    if cell.is_empty() || cell.trim() != cell {
        return None;
    }
    let mut body = PatchBody::default();
    body.set_cell(field, restore(&neutralise(&cell)), null_token)
        .ok()?;
    let mut read = User::default();
    crate::model::change::apply(&mut read, &body);
    (read.value(field).as_ref() == Some(value)).then_some(cell)
}

/// The header of the input format: `user_id` and the field columns, then
/// (`read_only`, as `export` writes) [`READ_ONLY_COLUMNS`].
pub fn header_names(read_only: bool) -> Vec<&'static str> {
    let read_only_columns = if read_only {
        &READ_ONLY_COLUMNS[..]
    } else {
        &[]
    };
    std::iter::once("user_id")
        .chain(Field::ALL.iter().map(|f| f.name()))
        .chain(read_only_columns.iter().copied())
        .collect()
}

/// A user's cells in the input format, as text to be written as it is (a
/// CSV writer neutralises them; a workbook's text cells need not): the
/// values of `only` these fields (every field when `None`) and empty cells
/// for the others, which the input reads as "leave unchanged". Null is the
/// null token; lists are `;`-joined and groups named.
pub fn user_cells(
    id: &str,
    user: &User,
    only: Option<FieldSet>,
    null_token: &str,
    read_only: bool,
) -> Vec<String> {
    let nullable = |value: &Option<String>| match value {
        Some(text) => text.clone(),
        None => null_token.to_string(),
    };
    let groups = user
        .groups
        .iter()
        .flatten()
        .map(|group| group.name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let auth_types = user
        .auth_types
        .iter()
        .flatten()
        .cloned()
        .collect::<Vec<_>>()
        .join(";");
    let values = [
        user.email.clone().unwrap_or_default(),
        nullable(&user.name),
        user.lang.clone().unwrap_or_default(),
        nullable(&user.phone),
        user.company.clone().unwrap_or_default(),
        groups,
        auth_types,
    ];
    let fields = Field::ALL
        .iter()
        .zip(values)
        .map(|(field, value)| match only {
            Some(set) if !set.contains(*field) => String::new(),
            _ => value,
        });
    let flag = |value: Option<bool>| value.map(|b| b.to_string()).unwrap_or_default();
    let read_only = read_only
        .then(|| {
            [
                flag(user.activated),
                flag(user.deleted),
                flag(user.is_active),
                flag(user.two_fa),
                flag(user.sso_auth),
                user.user_type.clone().unwrap_or_default(),
            ]
        })
        .into_iter()
        .flatten();
    std::iter::once(id.to_string())
        .chain(fields)
        .chain(read_only)
        .collect()
}

/// A CSV of users in the input format. Null is written as the null token;
/// lists are `;`-joined and groups named, as the input reader reads them.
/// Two values cannot round-trip and come back as "leave unchanged": an empty
/// list and a field the API left out.
pub struct InputWriter<W: Write> {
    csv: csv::Writer<W>,
    null_token: String,
    /// Also write [`READ_ONLY_COLUMNS`] after the input columns (export).
    read_only: bool,
}

impl<W: Write> InputWriter<W> {
    /// `header`: write the header line first (not when going on after an
    /// earlier writer's rows).
    pub fn new(sink: W, null_token: &str, header: bool) -> io::Result<InputWriter<W>> {
        let mut csv = csv::Writer::from_writer(sink);
        if header {
            csv.write_record(header_names(false))
                .map_err(io::Error::other)?;
        }
        Ok(InputWriter {
            csv,
            null_token: null_token.to_string(),
            read_only: false,
        })
    }

    /// The writer of `export`: the input columns, then the read-only
    /// fields that help a person sort and filter ([`READ_ONLY_COLUMNS`]),
    /// which the input reader passes over.
    pub fn export(sink: W, null_token: &str) -> io::Result<InputWriter<W>> {
        let mut csv = csv::Writer::from_writer(sink);
        csv.write_record(header_names(true))
            .map_err(io::Error::other)?;
        Ok(InputWriter {
            csv,
            null_token: null_token.to_string(),
            read_only: true,
        })
    }

    pub fn write_user(&mut self, user: &User) -> io::Result<()> {
        let id = user.id.map(|id| id.to_string()).unwrap_or_default();
        self.write_fields(&id, user, None)
    }

    /// A row for user `id` with the user's values of `only` these fields
    /// (every field when `None`); the other cells are left empty, which
    /// the input reads as "leave unchanged".
    pub fn write_fields(
        &mut self,
        id: &str,
        user: &User,
        only: Option<FieldSet>,
    ) -> io::Result<()> {
        let cells = user_cells(id, user, only, &self.null_token, self.read_only);
        // Made safe to open in a spreadsheet; the input reader undoes it.
        let cells = cells.iter().map(|cell| neutralise(cell).into_owned());
        self.csv.write_record(cells).map_err(io::Error::other)
    }

    /// Hands what is buffered to the operating system.
    pub fn flush(&mut self) -> io::Result<()> {
        self.csv.flush()
    }

    /// Flushes and hands back the sink.
    pub fn finish(self) -> io::Result<W> {
        self.csv
            .into_inner()
            .map_err(|error| io::Error::other(error.to_string()))
    }
}
