//! The results file's record: one row per input record, the same 25 columns
//! for every command. [`RecordWriter`] writes it; [`RecordReader`] reads it
//! back by column name (resume starts from it), and tells a last line cut
//! short by a crash from a whole one.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::cells::{neutralise, restore};
use crate::model::api::{ClientAndRoles, Group, IamGroup, User};

/// The columns of the results file, in order.
pub const COLUMNS: [&str; 25] = [
    "row",
    "user_id",
    "status",
    "http_status",
    "attempts",
    "error",
    "request",
    "changes",
    "id",
    "email",
    "name",
    "lang",
    "phone",
    "company",
    "reseller",
    "client",
    "deleted",
    "groups",
    "activated",
    "sso_auth",
    "two_fa",
    "auth_types",
    "user_type",
    "is_active",
    "client_and_roles",
];

/// The first of the user columns, from `id` to `client_and_roles`.
const FIRST_USER_COLUMN: usize = 8;

pub use super::status::{Counts, Kind, Status};

/// One row of the results file.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRecord {
    /// The row number a spreadsheet shows for the input record.
    pub row: u64,
    /// The `user_id` cell as written (trimmed).
    pub user_id: String,
    pub status: Status,
    /// The last HTTP status received; `None` when nothing was sent.
    pub http_status: Option<u16>,
    /// How many times a request was sent.
    pub attempts: u32,
    pub error: String,
    /// The JSON body sent, or that would be sent.
    pub request: String,
    /// What the row changes in the user's live state (the plan).
    pub changes: String,
    /// The user as the API answered.
    pub user: Option<Box<User>>,
}

impl ResultRecord {
    /// A row decided without a request.
    pub fn decided(row: u64, user_id: String, status: Status, error: String) -> ResultRecord {
        ResultRecord {
            row,
            user_id,
            status,
            http_status: None,
            attempts: 0,
            error,
            request: String::new(),
            changes: String::new(),
            user: None,
        }
    }
}

/// Writes records as CSV, the header first. Text cells are made safe to
/// open in a spreadsheet ([`neutralise`]) unless [`RecordWriter::raw`].
pub struct RecordWriter<W: Write> {
    csv: csv::Writer<W>,
    safe: bool,
    /// The value of [`PLANNED_AT`] in every row of a plan.
    planned_at: Option<String>,
    /// The [`PLAN_CHECK`] of the plan's last row written.
    last_check: String,
}

/// The last column of a plan: a check of the row's cells and the check of
/// the row before (see [`plan_check`]).
pub const PLAN_CHECK: &str = "plan_check";

/// The check of one row of a plan: the first 16 bytes, in hex, of the
/// SHA-256 of the previous row's check and the row's cells as written
/// (each followed by a unit separator).
pub fn plan_check<'a>(previous: &str, cells: impl Iterator<Item = &'a str>) -> String {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    digest.update(previous.as_bytes());
    digest.update(b"\x1e");
    for cell in cells {
        digest.update(cell.as_bytes());
        digest.update(b"\x1f");
    }
    let sum = digest.finish();
    sum.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A plan's column after the user's: the user's input fields as the plan
/// read them, as JSON ([`User::fields_json`]), so that `apply --plan`
/// compares with exactly what the plan saw (the user cells cannot tell
/// `""` from null, or say a group's ID).
pub const READ_AS: &str = "read_as";

/// The column a plan's results file has after the others: when the plan
/// read the live state (an HTTP date). It tells a plan from a run's record.
pub const PLANNED_AT: &str = "planned_at";

impl<W: Write> RecordWriter<W> {
    pub fn new(sink: W) -> io::Result<RecordWriter<W>> {
        RecordWriter::with_plan(sink, None)
    }

    /// A plan's results (`planned_at`: when it started), or a run's (`None`).
    pub fn with_plan(sink: W, planned_at: Option<String>) -> io::Result<RecordWriter<W>> {
        let mut writer = RecordWriter {
            csv: csv::WriterBuilder::new()
                .buffer_capacity(1 << 16)
                .from_writer(sink),
            safe: true,
            planned_at,
            last_check: String::new(),
        };
        match &writer.planned_at {
            Some(_) => {
                let header = || {
                    COLUMNS
                        .iter()
                        .copied()
                        .chain([READ_AS, PLANNED_AT, PLAN_CHECK])
                };
                // The header starts the chain: a column renamed or moved is seen.
                writer.last_check = plan_check("", header());
                writer.csv.write_record(header())
            }
            None => writer.csv.write_record(COLUMNS),
        }
        .map_err(into_io)?;
        Ok(writer)
    }

    /// Goes on writing records after those already in `sink` (no header).
    pub fn continuing(sink: W) -> RecordWriter<W> {
        RecordWriter {
            csv: csv::WriterBuilder::new()
                .buffer_capacity(1 << 16)
                .from_writer(sink),
            safe: true,
            planned_at: None,
            last_check: String::new(),
        }
    }

    /// Cells as they are, formulas included (`--raw-output`).
    pub fn raw(mut self) -> RecordWriter<W> {
        self.safe = false;
        self
    }

    pub fn write<'a>(&mut self, record: &'a ResultRecord) -> io::Result<()> {
        let (mut row_number, mut http_status, mut attempts) = (
            itoa::Buffer::new(),
            itoa::Buffer::new(),
            itoa::Buffer::new(),
        );
        let safe = |cell: &'a str| -> Cow<'a, str> {
            if self.safe {
                neutralise(cell)
            } else {
                Cow::Borrowed(cell)
            }
        };
        let (user_id, error, request, changes) = (
            safe(&record.user_id),
            safe(&record.error),
            safe(&record.request),
            safe(&record.changes),
        );
        let cells: [&str; FIRST_USER_COLUMN] = [
            row_number.format(record.row),
            &user_id,
            record.status.as_str(),
            record
                .http_status
                .map_or("", |status| http_status.format(status)),
            attempts.format(record.attempts),
            &error,
            &request,
            &changes,
        ];
        let user_cells = record.user.as_deref().map(user_cells);
        let safe_cells: Option<[Cow<str>; COLUMNS.len() - FIRST_USER_COLUMN]> =
            user_cells.as_ref().map(|user_cells| {
                std::array::from_fn(|i| {
                    if self.safe {
                        neutralise(&user_cells[i])
                    } else {
                        Cow::Borrowed(user_cells[i].as_ref())
                    }
                })
            });
        let row_cells = || {
            let user = safe_cells
                .iter()
                .flat_map(|safe| safe.iter().map(|cell| cell.as_ref()));
            // No user: the user columns empty.
            let blanks = safe_cells
                .is_none()
                .then_some([""; COLUMNS.len() - FIRST_USER_COLUMN])
                .into_iter()
                .flatten();
            cells.iter().copied().chain(user).chain(blanks)
        };
        let written = match &self.planned_at {
            None => self.csv.write_record(row_cells()),
            // A plan's row ends with when it was made and a check that
            // chains it to the rows before: an edit, a row removed or added,
            // is seen by `apply --plan`.
            Some(planned_at) => {
                let read_as = record
                    .user
                    .as_deref()
                    .map(User::fields_json)
                    .unwrap_or_default();
                let read_as = match self.safe {
                    true => neutralise(&read_as).into_owned(),
                    false => read_as,
                };
                let ending = [read_as.as_str(), planned_at.as_str()];
                let check = plan_check(&self.last_check, row_cells().chain(ending));
                let written = self
                    .csv
                    .write_record(row_cells().chain(ending).chain([check.as_str()]));
                self.last_check = check;
                written
            }
        };
        written.map_err(into_io)
    }

    /// Hands what is buffered to the operating system.
    pub fn flush(&mut self) -> io::Result<()> {
        self.csv.flush()
    }
}

fn into_io(error: csv::Error) -> io::Error {
    match error.into_kind() {
        csv::ErrorKind::Io(io) => io,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// The 17 user columns, from `id` to `client_and_roles`.
fn user_cells(user: &User) -> [Cow<'_, str>; COLUMNS.len() - FIRST_USER_COLUMN] {
    fn text(value: &Option<String>) -> Cow<'_, str> {
        Cow::Borrowed(value.as_deref().unwrap_or_default())
    }
    fn flag(value: Option<bool>) -> Cow<'static, str> {
        Cow::Borrowed(match value {
            Some(true) => "true",
            Some(false) => "false",
            None => "",
        })
    }
    fn number<T: ToString>(value: &Option<T>) -> Cow<'static, str> {
        Cow::Owned(value.as_ref().map(T::to_string).unwrap_or_default())
    }
    let groups = user.groups.as_ref().map(|groups| {
        groups
            .iter()
            .map(|group| group.name.as_str())
            .collect::<Vec<_>>()
            .join(";")
    });
    let client_and_roles = user
        .client_and_roles
        .as_ref()
        .map(|list| serde_json::to_string(list).unwrap_or_default());
    [
        number(&user.id),
        text(&user.email),
        text(&user.name),
        text(&user.lang),
        text(&user.phone),
        text(&user.company),
        number(&user.reseller),
        number(&user.client),
        flag(user.deleted),
        Cow::Owned(groups.unwrap_or_default()),
        flag(user.activated),
        flag(user.sso_auth),
        flag(user.two_fa),
        Cow::Owned(
            user.auth_types
                .as_ref()
                .map(|a| a.join(";"))
                .unwrap_or_default(),
        ),
        text(&user.user_type),
        flag(user.is_active),
        Cow::Owned(client_and_roles.unwrap_or_default()),
    ]
}

/// Where each of [`COLUMNS`] is in a file, found by name, and the status
/// words its rows may have besides [`Status::ALL`] (an operation's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns([usize; COLUMNS.len()], Option<usize>, &'static [Status]);

impl Columns {
    /// [`COLUMNS`], each required, and a plan's [`READ_AS`] if there.
    fn from_header(header: &csv::StringRecord) -> io::Result<Columns> {
        let mut index = [0; COLUMNS.len()];
        for (slot, name) in index.iter_mut().zip(COLUMNS) {
            *slot = header.iter().position(|h| h == name).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("this is not a results file of this tool: it has no {name} column"),
                )
            })?;
        }
        let read_as = header.iter().position(|h| h == READ_AS);
        Ok(Columns(index, read_as, &[]))
    }
}

/// Reads a results file back, record by record, by column name (the order
/// of the columns does not matter; a missing one is an error).
///
/// Every record this tool writes ends with a line break, so a last record
/// without one was cut short (a crash, `kill -9`, a full disk) and is not
/// returned: [`RecordReader::torn`] says so. What a cell cannot say comes
/// back as absent: an empty text or an empty list of the user reads as
/// `None`.
pub struct RecordReader<R: Read> {
    csv: csv::Reader<R>,
    columns: Columns,
    ends_with_newline: bool,
    /// The record read ahead (with its byte offset), to know which one is the last.
    ahead: Option<(u64, csv::StringRecord)>,
    torn: bool,
    /// Whether the file is a plan (it has a [`PLANNED_AT`] column).
    planned: bool,
}

/// Whether a file's last byte is a line break (an empty file: yes).
pub fn ends_with_newline(file: &mut File) -> io::Result<bool> {
    let whole = match file.seek(SeekFrom::End(-1)) {
        Ok(_) => {
            let mut last = [0u8; 1];
            file.read_exact(&mut last)?;
            last[0] == b'\n'
        }
        // Shorter than one byte: empty.
        Err(_) => true,
    };
    file.rewind()?;
    Ok(whole)
}

impl RecordReader<BufReader<File>> {
    pub fn open(path: &Path) -> io::Result<RecordReader<BufReader<File>>> {
        let mut file = File::open(path)?;
        let ends = ends_with_newline(&mut file)?;
        RecordReader::new(BufReader::new(file), ends)
    }
}

impl<R: Read> RecordReader<R> {
    /// `ends_with_newline`: whether the input's last byte is a line break.
    pub fn new(reader: R, ends_with_newline: bool) -> io::Result<RecordReader<R>> {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(reader);
        let headers = csv.headers().map_err(into_io)?.clone();
        Ok(RecordReader {
            planned: headers.iter().any(|name| name == PLANNED_AT),
            columns: Columns::from_header(&headers)?,
            csv,
            ends_with_newline,
            ahead: None,
            torn: false,
        })
    }

    pub fn columns(&self) -> Columns {
        self.columns
    }

    /// The reader, reading the status words `more` (an operation's own)
    /// besides those of every run.
    pub fn with_statuses(mut self, more: &'static [Status]) -> RecordReader<R> {
        self.columns.2 = more;
        self
    }

    /// Whether the file is a plan's results.
    pub fn is_plan(&self) -> bool {
        self.planned
    }

    /// Whether the last line was cut short (and left out). Known once
    /// [`RecordReader::next_record`] has returned `None`.
    pub fn torn(&self) -> bool {
        self.torn
    }

    /// The next whole record; `Err` names the line and the cell that cannot
    /// be read.
    pub fn next_record(&mut self) -> Option<Result<ResultRecord, String>> {
        self.next_entry().map(|(_, record)| record)
    }

    /// The next whole record with the byte offset where its line starts.
    pub fn next_entry(&mut self) -> Option<(u64, Result<ResultRecord, String>)> {
        let (offset, current) = match self.ahead.take() {
            Some(entry) => entry,
            None => match self.read()? {
                Ok(entry) => entry,
                Err(error) => return Some((0, Err(error))),
            },
        };
        match self.read() {
            Some(Ok(next)) => self.ahead = Some(next),
            Some(Err(error)) => return Some((offset, Err(error))),
            None if !self.ends_with_newline => {
                self.torn = true;
                return None;
            }
            None => {}
        }
        Some((offset, parse(&current, &self.columns)))
    }

    fn read(&mut self) -> Option<Result<(u64, csv::StringRecord), String>> {
        let mut record = csv::StringRecord::new();
        let offset = self.csv.position().byte();
        match self.csv.read_record(&mut record) {
            Ok(true) => Some(Ok((offset, record))),
            Ok(false) => None,
            Err(error) => Some(Err(error.to_string())),
        }
    }
}

/// The record whose line starts at `offset` of `file` (from
/// [`RecordReader::next_entry`]), read with `columns`.
pub fn read_at(file: &mut File, offset: u64, columns: &Columns) -> io::Result<ResultRecord> {
    file.seek(SeekFrom::Start(offset))?;
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(BufReader::new(&mut *file));
    let mut record = csv::StringRecord::new();
    if !csv.read_record(&mut record).map_err(into_io)? {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("no record at byte {offset}"),
        ));
    }
    parse(&record, columns).map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
}

fn parse(record: &csv::StringRecord, columns: &Columns) -> Result<ResultRecord, String> {
    let line = record.position().map_or(0, |p| p.line());
    // Cells come back as they were before the writer made them safe.
    let cell = |column: usize| restore(record.get(columns.0[column]).unwrap_or_default());
    let bad = |column: usize, why: &str| {
        format!(
            "line {line}, column {}: {:?} {why}",
            COLUMNS[column],
            cell(column)
        )
    };
    if record.len() < COLUMNS.len() {
        return Err(format!(
            "line {line} has {} cells, not {}",
            record.len(),
            COLUMNS.len()
        ));
    }
    let number = |column: usize| -> Result<Option<u64>, String> {
        match cell(column) {
            "" => Ok(None),
            text => text
                .parse()
                .map(Some)
                .map_err(|_| bad(column, "is not a whole number")),
        }
    };
    let row = number(0)?.ok_or_else(|| bad(0, "is empty"))?;
    let status = Status::parse(cell(2), columns.2).ok_or_else(|| bad(2, "is not a status"))?;
    let http_status = number(3)?
        .map(|status| u16::try_from(status).map_err(|_| bad(3, "is not an HTTP status")))
        .transpose()?;
    let attempts = number(4)?
        .map(|n| u32::try_from(n).map_err(|_| bad(4, "is too large")))
        .transpose()?
        .unwrap_or(0);
    let user_cells: Vec<&str> = (FIRST_USER_COLUMN..COLUMNS.len()).map(cell).collect();
    let mut user = if user_cells.iter().all(|cell| cell.is_empty()) {
        None
    } else {
        Some(Box::new(parse_user(&user_cells).map_err(
            |(offset, why)| bad(FIRST_USER_COLUMN + offset, why),
        )?))
    };
    // A plan's exact record of the input fields it read.
    let read_as = columns
        .1
        .map(|column| restore(record.get(column).unwrap_or_default()))
        .filter(|cell| !cell.is_empty());
    if let (Some(user), Some(read_as)) = (user.as_deref_mut(), read_as) {
        user.set_fields_json(read_as)
            .map_err(|why| format!("line {line}, column {READ_AS}: {why}"))?;
    }
    Ok(ResultRecord {
        row,
        user_id: cell(1).to_string(),
        status,
        http_status,
        attempts,
        error: cell(5).to_string(),
        request: cell(6).to_string(),
        changes: cell(7).to_string(),
        user,
    })
}

/// The user from its 17 cells; `Err` has the offset of the bad cell and why.
fn parse_user(cells: &[&str]) -> Result<User, (usize, &'static str)> {
    fn text(cell: &str) -> Option<String> {
        (!cell.is_empty()).then(|| cell.to_string())
    }
    fn parsed<T: std::str::FromStr>(
        cell: &str,
        offset: usize,
        why: &'static str,
    ) -> Result<Option<T>, (usize, &'static str)> {
        match cell {
            "" => Ok(None),
            text => text.parse().map(Some).map_err(|_| (offset, why)),
        }
    }
    let flag = |offset: usize| parsed::<bool>(cells[offset], offset, "is not true or false");
    let groups = match cells[9] {
        "" => None,
        names => Some(
            names
                .split(';')
                .map(|name| Group {
                    // A group the API knows and this tool does not is kept by
                    // name (its ID is not in the file): the cell reads back
                    // as it was written.
                    id: IamGroup::by_name(name).map_or(0, |group| group.id),
                    name: name.to_string(),
                })
                .collect(),
        ),
    };
    let client = match cells[7] {
        "" => None,
        text => Some(serde_json::from_str(text).map_err(|_| (7, "is not a number"))?),
    };
    let client_and_roles = match cells[16] {
        "" => None,
        text => Some(
            serde_json::from_str::<Vec<ClientAndRoles>>(text)
                .map_err(|_| (16, "is not the JSON list the API answers"))?,
        ),
    };
    Ok(User {
        id: parsed(cells[0], 0, "is not a whole number")?,
        email: text(cells[1]),
        name: text(cells[2]),
        lang: text(cells[3]),
        phone: text(cells[4]),
        company: text(cells[5]),
        reseller: parsed(cells[6], 6, "is not a whole number")?,
        client,
        deleted: flag(8)?,
        groups,
        activated: flag(10)?,
        sso_auth: flag(11)?,
        two_fa: flag(12)?,
        auth_types: text(cells[13]).map(|list| list.split(';').map(str::to_string).collect()),
        user_type: text(cells[14]),
        is_active: flag(15)?,
        client_and_roles,
        absent: Default::default(),
    })
}

#[cfg(test)]
mod tests;
