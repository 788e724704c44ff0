//! Writes users in the input format (`user_id` and the seven field columns),
//! so that what this tool writes is a valid input as it stands: the export
//! of an account and the undo file of a run build on it.

use std::io::{self, Write};

use serde_json::Value;

use super::cells::{looks_like_json, neutralise, restore};
use super::input::{READ_ONLY_COLUMNS, VERBATIM, VERBATIM_JSON};
use crate::model::api::User;
use crate::model::change::FieldSet;
use crate::model::patch::{Field, PatchBody};

/// `user`'s values of `fields` as the seven field cells (the others empty),
/// and whether they are JSON: plain cells when each reads back as exactly
/// the API's value (tried, as the input reader reads it with
/// `null_token`), else every cell of the row is the value as JSON, for a
/// row marked `verbatim`. A field the user's answer left out stays empty.
pub(crate) fn exact_cells(user: &User, fields: FieldSet, null_token: &str) -> (Vec<String>, bool) {
    let plain: Option<Vec<(Field, String)>> = fields
        .iter()
        .filter_map(|field| Some((field, sayable_value(user, field)?)))
        .map(|(field, value)| Some((field, plain_cell(field, &value, null_token)?)))
        .collect();
    match plain {
        Some(plain) => {
            let mut cells = vec![String::new(); Field::ALL.len()];
            for (field, cell) in plain {
                cells[field as usize] = cell;
            }
            (cells, false)
        }
        None => (json_cells(user, fields), true),
    }
}

/// `user`'s values of `fields` as JSON cells (the others, and a field the
/// answer left out, empty): what a `verbatim` row holds.
pub(crate) fn json_cells(user: &User, fields: FieldSet) -> Vec<String> {
    let mut cells = vec![String::new(); Field::ALL.len()];
    for field in fields.iter() {
        if let Some(value) = sayable_value(user, field) {
            cells[field as usize] = value.to_string();
        }
    }
    cells
}

/// The user's value of `field`, unless no row can say it: a field the
/// answer left out, or a null where a PATCH takes none (its cell is left
/// empty: "leave unchanged").
fn sayable_value(user: &User, field: Field) -> Option<Value> {
    user.value(field)
        .filter(|value| !value.is_null() || field.nullable())
}

/// The fields of `user` whose values no plain cell can say (the input
/// rules would refuse or change them): `export` writes such a user's row
/// as JSON, and says so.
pub(crate) fn odd_fields(user: &User, null_token: &str) -> FieldSet {
    FieldSet::ALL
        .iter()
        .filter(|field| {
            sayable_value(user, *field)
                .is_some_and(|value| plain_cell(*field, &value, null_token).is_none())
        })
        .collect()
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
    // The reader refuses a plain cell that looks like JSON (`"null"`).
    if cell.is_empty() || cell.trim() != cell || looks_like_json(&neutralise(&cell)) {
        return None;
    }
    let mut body = PatchBody::default();
    body.set_cell(field, restore(&neutralise(&cell)), null_token)
        .ok()?;
    let mut read = User::default();
    crate::model::change::apply(&mut read, &body);
    (read.value(field).as_ref() == Some(value)).then_some(cell)
}

/// The header of the input format: `user_id`, the field columns and
/// [`VERBATIM`], then (`read_only`, as `export` writes) [`READ_ONLY_COLUMNS`].
pub(crate) fn header_names(read_only: bool) -> Vec<&'static str> {
    let read_only_columns = if read_only {
        &READ_ONLY_COLUMNS[..]
    } else {
        &[]
    };
    std::iter::once("user_id")
        .chain(Field::ALL.iter().map(|f| f.name()))
        .chain([VERBATIM])
        .chain(read_only_columns.iter().copied())
        .collect()
}

/// A user's cells in the input format, as text to be written as it is (a
/// CSV writer neutralises them; a workbook's text cells need not): every
/// field exactly ([`exact_cells`]), the `verbatim` cell, then (`read_only`)
/// the read-only fields.
pub(crate) fn user_cells(id: &str, user: &User, null_token: &str, read_only: bool) -> Vec<String> {
    let (fields, json) = exact_cells(user, FieldSet::ALL, null_token);
    let verbatim = match json {
        true => VERBATIM_JSON.to_string(),
        false => String::new(),
    };
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
        .chain([verbatim])
        .chain(read_only)
        .collect()
}

/// A CSV of users in the input format, as `export` writes it: the input
/// columns, then the read-only fields that help a person sort and filter
/// ([`READ_ONLY_COLUMNS`]), which the input reader passes over. Every
/// value reads back as exactly the API's ([`exact_cells`]), so the file
/// applied as it stands changes nothing.
pub struct InputWriter<W: Write> {
    csv: csv::Writer<W>,
    null_token: String,
}

impl<W: Write> InputWriter<W> {
    pub fn export(sink: W, null_token: &str) -> io::Result<InputWriter<W>> {
        let mut csv = csv::Writer::from_writer(sink);
        csv.write_record(header_names(true))
            .map_err(super::into_io)?;
        Ok(InputWriter {
            csv,
            null_token: null_token.to_string(),
        })
    }

    pub fn write_user(&mut self, user: &User) -> io::Result<()> {
        let id = user.id.map(|id| id.to_string()).unwrap_or_default();
        let cells = user_cells(&id, user, &self.null_token, true);
        // Made safe to open in a spreadsheet; the input reader undoes it.
        let cells = cells.iter().map(|cell| neutralise(cell).into_owned());
        self.csv.write_record(cells).map_err(super::into_io)
    }

    /// Flushes and hands back the sink.
    pub fn finish(self) -> io::Result<W> {
        self.csv.into_inner().map_err(|error| error.into_error())
    }
}
