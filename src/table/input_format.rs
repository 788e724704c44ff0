//! Writes users in the input format (`user_id` and the seven field columns),
//! so that what this tool writes is a valid input as it stands: the export
//! of an account and the undo file of a run build on it.

use std::io::{self, Write};

use super::cells::neutralise;
use crate::model::api::User;
use crate::model::patch::Field;

/// A CSV of users in the input format. Null is written as the null token;
/// lists are `;`-joined and groups named, as the input reader reads them.
/// Two values cannot round-trip and come back as "leave unchanged": an empty
/// list and a field the API left out.
pub struct InputWriter<W: Write> {
    csv: csv::Writer<W>,
    null_token: String,
}

impl<W: Write> InputWriter<W> {
    pub fn new(sink: W, null_token: &str) -> io::Result<InputWriter<W>> {
        let mut csv = csv::Writer::from_writer(sink);
        let header = std::iter::once("user_id").chain(Field::ALL.iter().map(|field| field.name()));
        csv.write_record(header).map_err(io::Error::other)?;
        Ok(InputWriter {
            csv,
            null_token: null_token.to_string(),
        })
    }

    pub fn write_user(&mut self, user: &User) -> io::Result<()> {
        let nullable = |value: &Option<String>| match value {
            Some(text) => text.clone(),
            None => self.null_token.clone(),
        };
        let id = user.id.map(|id| id.to_string()).unwrap_or_default();
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
        let cells = [
            id,
            user.email.clone().unwrap_or_default(),
            nullable(&user.name),
            user.lang.clone().unwrap_or_default(),
            nullable(&user.phone),
            user.company.clone().unwrap_or_default(),
            groups,
            auth_types,
        ];
        // Made safe to open in a spreadsheet; the input reader undoes it.
        let cells = cells.iter().map(|cell| neutralise(cell));
        self.csv
            .write_record(cells.map(|cell| cell.into_owned()))
            .map_err(io::Error::other)
    }

    /// Flushes and hands back the sink.
    pub fn finish(self) -> io::Result<W> {
        self.csv
            .into_inner()
            .map_err(|error| io::Error::other(error.to_string()))
    }
}
