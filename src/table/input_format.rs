//! Writes users in the input format (`user_id` and the seven field columns),
//! so that what this tool writes is a valid input as it stands: the export
//! of an account and the undo file of a run build on it.

use std::io::{self, Write};

use super::cells::neutralise;
use super::input::READ_ONLY_COLUMNS;
use crate::model::api::User;
use crate::model::change::FieldSet;
use crate::model::patch::Field;

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
