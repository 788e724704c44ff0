//! Reading a results file back: [`RecordReader`], by column name, and
//! [`read_at`], one record where its line starts.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::*;
use crate::model::api::{ClientAndRoles, Group, IamGroup, User};
use crate::table::cells::restore;

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
pub(crate) struct RecordReader<R: Read> {
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
pub(crate) fn ends_with_newline(file: &mut File) -> io::Result<bool> {
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
    pub(crate) fn open(path: &Path) -> io::Result<RecordReader<BufReader<File>>> {
        let mut file = File::open(path)?;
        let ends = ends_with_newline(&mut file)?;
        RecordReader::new(BufReader::new(file), ends)
    }
}

impl<R: Read> RecordReader<R> {
    /// `ends_with_newline`: whether the input's last byte is a line break.
    pub(crate) fn new(reader: R, ends_with_newline: bool) -> io::Result<RecordReader<R>> {
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

    pub(crate) fn columns(&self) -> Columns {
        self.columns
    }

    /// The reader, reading the status words `more` (an operation's own)
    /// besides those of every run.
    pub(crate) fn with_statuses(mut self, more: &'static [Status]) -> RecordReader<R> {
        self.columns.2 = more;
        self
    }

    /// Whether the file is a plan's results.
    pub(crate) fn is_plan(&self) -> bool {
        self.planned
    }

    /// Whether the last line was cut short (and left out). Known once
    /// [`RecordReader::next_record`] has returned `None`.
    pub(crate) fn torn(&self) -> bool {
        self.torn
    }

    /// The next whole record; `Err` names the line and the cell that cannot
    /// be read.
    pub(crate) fn next_record(&mut self) -> Option<Result<ResultRecord, String>> {
        self.next_entry().map(|(_, record)| record)
    }

    /// The next whole record with the byte offset where its line starts.
    pub(crate) fn next_entry(&mut self) -> Option<(u64, Result<ResultRecord, String>)> {
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
pub(crate) fn read_at(file: &mut File, offset: u64, columns: &Columns) -> io::Result<ResultRecord> {
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
        blanked: Default::default(),
    })
}
