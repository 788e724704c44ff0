//! The undo file of `apply --undo-file`: before a row's PATCH is sent, the
//! user's current values of the fields it changes, in the input format, so
//! that `apply UNDO.csv` puts them back exactly. Each row is handed to the
//! operating system before its PATCH leaves, so a crash (even `kill -9`)
//! never sends a change the file does not know how to undo.
//!
//! A value the input rules would read back as it is (a name, `de`,
//! `Users;Engineers`, `#null`) is written as a plain cell. A user with any
//! value they would refuse or change (a group of the account outside the
//! five, a group named in another language, an auth type this tool does
//! not know, an address without a dot, `EN`, a tab in a name, `""`, a list
//! with an item twice) gets a row of the API's own values as JSON, marked
//! `json` in the `verbatim` column, which the input reader sends as it is.
//! A value no PATCH can send back (a field the API left out of the user,
//! a null where the field takes none) is refused before the change is
//! sent ([`cannot_restore`]), unless the run accepts it.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;

use super::cells::restore;
use super::input::{ACTION, VERBATIM_JSON};
use super::input_format::{header_names, json_cells};
use super::record::{last_line_break, open_private};
use super::results::ends_with_newline;
use crate::model::api::User;
use crate::model::field::{Field, FieldSet};
use crate::model::patch::PatchBody;

/// The null token of every undo file, whatever the run's `--null-token`
/// (a file with a `verbatim` column is always read with it).
pub(crate) const NULL_TOKEN: &str = "#null";

pub struct UndoLog {
    path: PathBuf,
    /// `--accept-partial-undo`: a value that cannot be put back does not
    /// stop the row (its field is left out of the file, and said).
    accept_partial: bool,
    inner: Mutex<Inner>,
}

struct Inner {
    writer: csv::Writer<File>,
    /// The fields the file holds for each user: their first value is the
    /// state before any run changed them, so they are not written again;
    /// a field not held yet gets a row of its own.
    held: HashMap<u64, FieldSet>,
    /// Users with more than one row (a resume added fields): merged into
    /// one row when the run ends ([`UndoLog::finish`]).
    split: bool,
    /// Users whose row leaves out a field the run changed, because no
    /// PATCH can send its value back (`--accept-partial-undo`).
    partial: Vec<(u64, FieldSet)>,
    /// The membership rows the file holds (`remove 21`, `invite
    /// a@example.com`): one is never written twice (a DELETE sent again,
    /// a resumed run).
    membership: HashSet<String>,
    /// Membership rows to take out when the run ends (a removal refused).
    /// (How many of the first rows with a key go: a row written for the
    /// same address later, for another user, stays.)
    retracted: HashMap<String, usize>,
}

impl UndoLog {
    /// Why the row's change of `fields` must not be sent: a value that no
    /// PATCH can put back, unless the run accepts it. `None`: go ahead.
    pub fn refuses(&self, user_id: u64, before: &User, fields: FieldSet) -> Option<String> {
        if self.accept_partial {
            return None;
        }
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let new = fields.without(inner.held.get(&user_id).copied().unwrap_or_default());
        let lost = cannot_restore(before, new);
        (!lost.is_empty()).then(|| {
            format!(
                "nothing sent: the undo file could not put back user {user_id}'s {}; fix the \
                 user's value first, leave the field out of this row, or pass \
                 --accept-partial-undo to change it without a way back",
                why_not_restorable(before, lost)
            )
        })
    }
}

/// The fields of `fields` whose value in `before` no PATCH can send back:
/// a field the API's answer left out (its value is unknown), or a null
/// in a field that PATCH does not let be null (email, lang, company,
/// groups, auth_types).
pub(crate) fn cannot_restore(before: &User, fields: FieldSet) -> FieldSet {
    fields
        .iter()
        .filter(|field| match before.value(*field) {
            None => true,
            Some(Value::Null) => !field.nullable(),
            Some(_) => false,
        })
        .collect()
}

/// Why [`cannot_restore`] found `lost` in `before`, for a message.
pub(crate) fn why_not_restorable(before: &User, lost: FieldSet) -> String {
    lost.iter()
        .map(|field| match before.value(field) {
            None if before.blanked.contains(field) => format!(
                "{} (it holds the API key, shown as ***: the file never holds the key)",
                field.name()
            ),
            None => format!("{} (the API's answer left it out)", field.name()),
            _ => format!("{} (null, which PATCH does not take back)", field.name()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl UndoLog {
    /// Creates the file (`continuing`: goes on after what an earlier run
    /// of the same record wrote, cutting off a last line that a crash left
    /// half written, and never writing a user's field twice).
    pub fn open(path: &Path, continuing: bool, accept_partial: bool) -> io::Result<UndoLog> {
        let mut file = open_private(path)?;
        let mut held = HashMap::new();
        let mut membership = HashSet::new();
        let fresh = !continuing || file.metadata()?.len() == 0;
        let mut split = false;
        if fresh {
            file.set_len(0)?;
        } else {
            if !ends_with_newline(&mut file)? {
                let whole = last_line_break(&mut file)?.map_or(0, |at| at + 1);
                file.set_len(whole)?;
            }
            file.rewind()?;
            let rows = read_rows(&mut file)?;
            for row in &rows {
                let UndoRow::Update(id, fields, _) = row else {
                    if let UndoRow::Membership(cells) = row {
                        membership.extend(membership_key(cells));
                    }
                    continue;
                };
                let entry = held.entry(*id).or_insert_with(FieldSet::default);
                split |= !entry.is_empty();
                *entry = entry.with_all(*fields);
            }
            file.seek(SeekFrom::End(0))?;
        }
        let mut writer = csv::Writer::from_writer(file);
        if fresh {
            writer
                .write_record(undo_header())
                .map_err(io::Error::other)?;
        }
        writer.flush()?;
        let log = UndoLog {
            path: path.to_path_buf(),
            accept_partial,
            inner: Mutex::new(Inner {
                writer,
                held,
                split: false,
                partial: Vec::new(),
                membership,
                retracted: HashMap::new(),
            }),
        };
        if split {
            log.merge()?;
        }
        Ok(log)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the values `before` has for `fields` (those the file does
    /// not hold yet for the user), and hands the row to the operating
    /// system. A field [`cannot_restore`] finds is left out and counted
    /// (the run accepted it).
    pub fn record(&self, user_id: u64, before: &User, fields: FieldSet) -> io::Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let held = inner.held.get(&user_id).copied();
        let new = fields.without(held.unwrap_or_default());
        if new.is_empty() {
            return Ok(());
        }
        let lost = cannot_restore(before, new);
        if !lost.is_empty() {
            inner.partial.push((user_id, lost));
        }
        let said = new.without(lost);
        if said.is_empty() {
            return Ok(());
        }
        let cells = row_cells(user_id, before, said);
        inner
            .writer
            .write_record(&cells)
            .map_err(io::Error::other)?;
        inner.writer.flush()?;
        inner.split |= held.is_some_and(|held| !held.is_empty());
        let entry = inner.held.entry(user_id).or_default();
        *entry = entry.with_all(said);
        Ok(())
    }

    /// Users whose row leaves out a field the run changed, and which.
    pub fn partial(&self) -> Vec<(u64, FieldSet)> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .partial
            .clone()
    }

    /// Ends the file: a user with several rows (a resume that changed
    /// more of a user already in it) gets one row again, so the file
    /// applies as it is.
    pub fn finish(&self) -> io::Result<()> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let rewrite = inner.split || !inner.retracted.is_empty();
        drop(inner);
        if rewrite { self.merge() } else { Ok(()) }
    }

    /// The removal of the user `before` was refused (the DELETE answered
    /// 403 or 404): the row that would invite them back is taken out of the
    /// file when the run ends (applying it would be refused: the address
    /// is in the account).
    pub fn retract_removal(&self, before: &User) {
        self.retract_invitation_of(before.email.as_deref().unwrap_or_default());
    }

    /// Takes the row that would invite `email` back out of the file when
    /// the run ends (its removal was refused, as an earlier run heard).
    pub fn retract_invitation_of(&self, email: &str) {
        let key = format!("invite {}", email.trim().to_lowercase());
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.membership.remove(&key) {
            *inner.retracted.entry(key).or_default() += 1;
        }
    }

    /// Rewrites the file with one row per user (the first value of each
    /// field wins: it is the state before any change), through a copy
    /// renamed over it, so that a crash leaves the old file or the new.
    fn merge(&self) -> io::Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.writer.flush()?;
        let mut file = File::open(&self.path)?;
        let rows = read_rows(&mut file)?;
        let mut order = Vec::new();
        let mut merged: HashMap<u64, (FieldSet, Vec<Value>, bool)> = HashMap::new();
        for row in rows {
            let (id, fields, cells) = match row {
                UndoRow::Update(id, fields, cells) => (id, fields, cells),
                UndoRow::Membership(cells) => {
                    let retracted = membership_key(&cells)
                        .and_then(|key| inner.retracted.get_mut(&key))
                        .filter(|left| **left > 0)
                        .map(|left| *left -= 1)
                        .is_some();
                    if !retracted {
                        order.push(Err(cells));
                    }
                    continue;
                }
            };
            let entry = merged.entry(id).or_insert_with(|| {
                order.push(Ok(id));
                (
                    FieldSet::default(),
                    vec![Value::Null; Field::ALL.len()],
                    false,
                )
            });
            for field in fields.without(entry.0).iter() {
                entry.1[field as usize] = cells[field as usize].clone();
            }
            entry.0 = entry.0.with_all(fields);
        }
        // Through a symbolic link, the file it leads to is replaced, not the link.
        let real = std::fs::canonicalize(&self.path)?;
        let folder = real.parent().map(Path::to_path_buf).unwrap_or_default();
        // Created readable by its owner only (tempfile's default), beside the file.
        let temporary = tempfile::Builder::new()
            .prefix(".gcore-iam-bulk-undo-")
            .tempfile_in(folder)?;
        {
            let mut writer = csv::Writer::from_writer(temporary.as_file());
            writer
                .write_record(undo_header())
                .map_err(io::Error::other)?;
            for entry in &order {
                let cells = match entry {
                    Ok(id) => {
                        let (fields, values, _) = &merged[id];
                        let mut user = User::default();
                        for field in fields.iter() {
                            set_value(&mut user, field, &values[field as usize]);
                        }
                        row_cells(*id, &user, *fields)
                    }
                    Err(cells) => cells.clone(),
                };
                writer.write_record(&cells).map_err(io::Error::other)?;
            }
            writer.flush()?;
        }
        temporary.as_file().sync_all()?;
        temporary.persist(&real).map_err(|e| e.error)?;
        let mut file = open_private(&real)?;
        file.seek(SeekFrom::End(0))?;
        inner.writer = csv::Writer::from_writer(file);
        inner.split = false;
        Ok(())
    }
}

/// The row of user `id` holding `before`'s values of `fields` as the API
/// gave them (JSON cells, the others empty), marked `verbatim`: read back
/// as exactly those values whatever the values and whatever `--null-token`
/// the undo run is given.
fn row_cells(id: u64, before: &User, fields: FieldSet) -> Vec<String> {
    std::iter::once(id.to_string())
        .chain(json_cells(before, fields))
        .chain([VERBATIM_JSON.to_string(), String::new()])
        .collect()
}

/// Sets `field` of `user` to a JSON value of [`User::value`]'s kind.
fn set_value(user: &mut User, field: Field, value: &Value) {
    let mut body = PatchBody::default();
    if body.set_verbatim(field, value).is_ok() {
        crate::model::change::apply(user, &body);
    }
}

/// Each row of an undo file: the user, the fields it holds, and their
/// values (JSON, by [`Field`] index); or a row that invites or removes a
/// user, kept as it is.
enum UndoRow {
    Update(u64, FieldSet, Vec<Value>),
    Membership(Vec<String>),
}

/// The undo file's header: the input's columns, `verbatim`, then `action`.
pub(super) fn undo_header() -> Vec<&'static str> {
    let mut names = header_names(false);
    names.push(ACTION);
    names
}

/// What makes a membership row of an undo file the same as another: its
/// action and its user (an ID to remove, an address to invite).
fn membership_key(cells: &[String]) -> Option<String> {
    let cell = |at: usize| cells.get(at).map(|cell| cell.trim()).unwrap_or_default();
    match cell(ACTION_AT) {
        "remove" => Some(format!("remove {}", cell(0))),
        "invite" => {
            let email = cell(1 + Field::Email as usize);
            let email = serde_json::from_str::<String>(email).unwrap_or_else(|_| email.to_string());
            Some(format!("invite {}", email.trim().to_lowercase()))
        }
        _ => None,
    }
}

/// Where a row's `action` is, in an undo file.
const ACTION_AT: usize = Field::ALL.len() + 2;

impl UndoLog {
    /// The way back from the invitation of user `user_id`: a row that
    /// removes them, handed to the operating system before the run goes
    /// on with the row.
    pub fn record_invited(&self, user_id: u64) -> io::Result<()> {
        if self.holds(format!("remove {user_id}")) {
            return Ok(());
        }
        let mut cells = vec![String::new(); ACTION_AT + 1];
        cells[0] = user_id.to_string();
        cells[ACTION_AT] = "remove".to_string();
        self.write_membership(&cells)
    }

    /// Whether the file holds the membership row of `key` already (and
    /// notes it when not).
    fn holds(&self, key: String) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        !inner.membership.insert(key)
    }

    /// How many rows the file holds that remove an invited user, and that
    /// invite a removed one (an earlier run's of the record too).
    /// Why removing `before` must not be sent: no invitation could bring
    /// them back, unless the run accepts it. `None`: go ahead.
    pub(crate) fn refuses_removal(&self, before: &User) -> Option<String> {
        if self.accept_partial {
            return None;
        }
        let why = invitation_back(before).err()?;
        Some(removal_refused(before.id.unwrap_or_default(), &why))
    }

    /// Whether the file holds no way back at all: nothing was changed.
    pub(crate) fn is_empty(&self) -> bool {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.held.is_empty() && inner.membership.is_empty()
    }

    pub fn members(&self) -> [u64; 2] {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let count = |action: &str| {
            (inner.membership.iter())
                .filter(|key| key.starts_with(action))
                .count() as u64
        };
        [count("remove "), count("invite ")]
    }

    /// The way back from the removal of `before`: a row that invites them
    /// again with everything read of them (address, name, language,
    /// groups, phone, company, auth types), as the API gave it; their
    /// password and activation cannot come back. Written before the
    /// removal is sent. `Err` of kind `InvalidData`: no invitation can
    /// bring them back (the answer left out the address or the groups, or
    /// an invitation would refuse the address, the name or the language
    /// they have).
    pub fn record_removed(&self, before: &User) -> io::Result<()> {
        invitation_back(before).map_err(|why| io::Error::new(io::ErrorKind::InvalidData, why))?;
        let email = before.email.as_deref().unwrap_or_default();
        if self.holds(format!("invite {}", email.trim().to_lowercase())) {
            return Ok(());
        }
        let fields = FieldSet::ALL.without(cannot_restore(before, FieldSet::ALL));
        let mut cells: Vec<String> = std::iter::once(String::new())
            .chain(json_cells(before, fields))
            .chain([VERBATIM_JSON.to_string()])
            .collect();
        cells.push("invite".to_string());
        self.write_membership(&cells)
    }

    fn write_membership(&self, cells: &[String]) -> io::Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.writer.write_record(cells).map_err(io::Error::other)?;
        inner.writer.flush()
    }
}

fn read_rows(file: &mut File) -> io::Result<Vec<UndoRow>> {
    file.rewind()?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(BufReader::new(&mut *file));
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(io::Error::other)?;
        if record
            .get(ACTION_AT)
            .is_some_and(|cell| !cell.trim().is_empty())
        {
            rows.push(UndoRow::Membership(
                record.iter().map(str::to_string).collect(),
            ));
            continue;
        }
        let Some(Ok(id)) = record.get(0).map(|id| id.trim().parse::<u64>()) else {
            continue;
        };
        let verbatim = record
            .get(Field::ALL.len() + 1)
            .is_some_and(|cell| cell.trim().eq_ignore_ascii_case(VERBATIM_JSON));
        let mut fields = FieldSet::default();
        let mut values = vec![Value::Null; Field::ALL.len()];
        for field in Field::ALL {
            let cell = record.get(1 + field as usize).unwrap_or_default().trim();
            if cell.is_empty() {
                continue;
            }
            let value = match verbatim {
                true => serde_json::from_str(cell).ok(),
                false => {
                    let mut body = PatchBody::default();
                    body.set_cell(field, restore(cell), NULL_TOKEN)
                        .ok()
                        .map(|_| {
                            let mut user = User::default();
                            crate::model::change::apply(&mut user, &body);
                            user.value(field).unwrap_or(Value::Null)
                        })
                }
            };
            if let Some(value) = value {
                fields = fields.with(field);
                values[field as usize] = value;
            }
        }
        rows.push(UndoRow::Update(id, fields, values));
    }
    Ok(rows)
}

/// Why no invitation can bring `before` back, if none can: the answer
/// left out their address or groups, or an invitation would refuse the
/// address, the name or the language they have (the API checks them there
/// as a row's: `EN`, a name with a tab).
pub(crate) fn invitation_back(before: &User) -> Result<(), String> {
    if before.email.is_none() || before.groups.as_ref().is_none_or(Vec::is_empty) {
        return Err(
            "the API's answer leaves out the user's address or groups, which an \
                    invitation needs"
                .to_string(),
        );
    }
    if !before.blanked.is_empty() {
        return Err(format!(
            "their {} held the API key, shown as ***: the file never holds the key",
            before.blanked.names()
        ));
    }
    let (lang, name) = (before.lang.as_deref(), before.name.as_deref());
    match PatchBody::invitation_problems(before.email.as_deref(), lang, name) {
        Some(problems) => Err(format!(
            "an invitation would not take their values back: {problems}"
        )),
        None => Ok(()),
    }
}

/// The row's error when the removal of user `id` is not sent for want of a
/// way back (`why`).
pub(crate) fn removal_refused(id: u64, why: &str) -> String {
    format!(
        "nothing sent: the undo file could not invite user {id} back ({why}); pass \
         --accept-partial-undo to remove them without a way back"
    )
}

mod remembered;
pub use remembered::remember;
pub(crate) use remembered::{Remembered, holds_a_way_back, remembered, remembered_path};

#[cfg(test)]
mod tests;
