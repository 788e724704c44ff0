//! The undo file of `apply --undo-file`: before a row's PATCH is sent, the
//! user's current values of the fields it changes, in the input format, so
//! that `apply UNDO.csv` puts them back. Each row is handed to the
//! operating system before its PATCH leaves, so a crash (even `kill -9`)
//! never sends a change the file does not know how to undo.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::input_format::{InputWriter, sayable};
use super::record::{last_line_break, open_private};
use super::results::ends_with_newline;
use crate::model::api::User;
use crate::model::change::FieldSet;
use crate::model::patch::Field;

/// The null token of every undo file.
pub const NULL_TOKEN: &str = "#null";

pub struct UndoLog {
    path: PathBuf,
    inner: Mutex<Inner>,
}

struct Inner {
    writer: InputWriter<File>,
    /// Users already in the file: their first entry holds the state before
    /// any run changed them, so later ones are not written.
    seen: HashSet<u64>,
    /// Rows with a value the input format cannot say: an empty list, an
    /// empty text or one with spaces at either end, text that reads as the
    /// null token. Such a cell is left empty (or trimmed) and not put back.
    unrestorable: u64,
}

impl UndoLog {
    /// Creates the file (`continuing`: goes on after what an earlier run
    /// of the same record wrote, cutting off a last line that a crash left
    /// half written, and never writing a user twice). Null is written as
    /// `#null` whatever the run's `--null-token`, so that `apply UNDO`
    /// needs no flag.
    pub fn open(path: &Path, continuing: bool) -> io::Result<UndoLog> {
        let null_token = NULL_TOKEN;
        let mut file = open_private(path)?;
        let mut seen = HashSet::new();
        let fresh = !continuing || file.metadata()?.len() == 0;
        if fresh {
            file.set_len(0)?;
        } else {
            if !ends_with_newline(&mut file)? {
                let whole = last_line_break(&mut file)?.map_or(0, |at| at + 1);
                file.set_len(whole)?;
            }
            file.rewind()?;
            let mut reader = csv::ReaderBuilder::new()
                .flexible(true)
                .from_reader(BufReader::new(&mut file));
            for record in reader.records() {
                let record = record.map_err(io::Error::other)?;
                if let Some(Ok(id)) = record.get(0).map(|id| id.trim().parse()) {
                    seen.insert(id);
                }
            }
            drop(reader);
            file.seek(SeekFrom::End(0))?;
        }
        let mut writer = InputWriter::new(file, null_token, fresh)?;
        writer.flush()?;
        Ok(UndoLog {
            path: path.to_path_buf(),
            inner: Mutex::new(Inner {
                writer,
                seen,
                unrestorable: 0,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the values `before` has for `fields`, and hands the row to
    /// the operating system, unless the user is in the file already.
    pub fn record(&self, user_id: u64, before: &User, fields: FieldSet) -> io::Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !inner.seen.insert(user_id) {
            return Ok(());
        }
        // Each field the row changes, unless its value cannot be said.
        let mut said = FieldSet::default();
        let mut lost = false;
        for field in Field::ALL.into_iter().filter(|f| fields.contains(*f)) {
            let sayable = match field {
                Field::Email => sayable(before.email.as_deref(), false, NULL_TOKEN),
                Field::Name => sayable(before.name.as_deref(), true, NULL_TOKEN),
                Field::Lang => before.lang.is_some(),
                Field::Phone => sayable(before.phone.as_deref(), true, NULL_TOKEN),
                Field::Company => sayable(before.company.as_deref(), false, NULL_TOKEN),
                Field::Groups => before.groups.as_ref().is_some_and(|g| !g.is_empty()),
                Field::AuthTypes => before.auth_types.as_ref().is_some_and(|a| !a.is_empty()),
            };
            if sayable {
                said = said.with(field);
            } else {
                lost = true;
            }
        }
        if lost {
            inner.unrestorable += 1;
        }
        let id = itoa::Buffer::new().format(user_id).to_string();
        inner.writer.write_fields(&id, before, Some(said))?;
        inner.writer.flush()
    }

    /// Rows with a value that cannot be put back (see [`Inner`]).
    pub fn unrestorable(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unrestorable
    }
}
