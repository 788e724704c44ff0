//! Writing the results file: [`RecordWriter`], a run's record or a plan's
//! (whose rows end with [`READ_AS`], [`PLANNED_AT`] and [`PLAN_CHECK`]).

use std::borrow::Cow;
use std::io::{self, Write};

use super::*;
use crate::table::cells::neutralise;
use crate::table::csv_out::CsvOut;

/// Writes records as CSV, the header first. Text cells are made safe to
/// open in a spreadsheet ([`neutralise`]) unless [`RecordWriter::raw`].
pub(crate) struct RecordWriter<W: Write> {
    pub(super) csv: CsvOut<W>,
    safe: bool,
    /// The value of [`PLANNED_AT`] in every row of a plan.
    planned_at: Option<String>,
    /// The [`PLAN_CHECK`] of the plan's last row written.
    last_check: String,
    scratch: Scratch,
}

impl<W: Write> RecordWriter<W> {
    pub(crate) fn new(sink: W) -> io::Result<RecordWriter<W>> {
        RecordWriter::with_plan(sink, None)
    }

    /// A plan's results (`planned_at`: when it started), or a run's (`None`).
    pub(crate) fn with_plan(sink: W, planned_at: Option<String>) -> io::Result<RecordWriter<W>> {
        let mut writer = RecordWriter {
            csv: CsvOut::new(sink, 1 << 16),
            safe: true,
            planned_at,
            last_check: String::new(),
            scratch: Scratch::default(),
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
        }?;
        Ok(writer)
    }

    /// Goes on writing records after those already in `sink` (no header).
    pub(crate) fn continuing(sink: W) -> RecordWriter<W> {
        RecordWriter {
            csv: CsvOut::new(sink, 1 << 16),
            safe: true,
            planned_at: None,
            last_check: String::new(),
            scratch: Scratch::default(),
        }
    }

    /// Cells as they are, formulas included (`--raw-output`).
    pub(crate) fn raw(mut self) -> RecordWriter<W> {
        self.safe = false;
        self
    }

    pub(crate) fn write<'a>(&mut self, record: &'a ResultRecord) -> io::Result<()> {
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
        let user_cells = (record.user.as_deref()).map(|user| user_cells(user, &mut self.scratch));
        let safe_cells: Option<[Cow<str>; COLUMNS.len() - FIRST_USER_COLUMN]> =
            user_cells.as_ref().map(|user_cells| {
                std::array::from_fn(|i| {
                    if self.safe {
                        neutralise(user_cells[i])
                    } else {
                        Cow::Borrowed(user_cells[i])
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
        match &self.planned_at {
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
        }
    }

    /// Hands what is buffered to the operating system.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.csv.flush()
    }
}

/// The buffers the user columns are made in, kept from row to row: a row
/// costs no allocation for them once the longest was seen.
#[derive(Default)]
pub(super) struct Scratch {
    id: itoa::Buffer,
    reseller: itoa::Buffer,
    client: itoa::Buffer,
    /// `client`, when it is not a whole number.
    client_text: String,
    groups: String,
    auth_types: String,
    client_and_roles: Vec<u8>,
}

/// The 17 user columns, from `id` to `client_and_roles`.
fn user_cells<'a>(
    user: &'a User,
    scratch: &'a mut Scratch,
) -> [&'a str; COLUMNS.len() - FIRST_USER_COLUMN] {
    fn text(value: &Option<String>) -> &str {
        value.as_deref().unwrap_or_default()
    }
    fn flag(value: Option<bool>) -> &'static str {
        match value {
            Some(true) => "true",
            Some(false) => "false",
            None => "",
        }
    }
    fn joined<'s>(into: &'s mut String, parts: impl Iterator<Item = &'s str>) -> &'s str {
        into.clear();
        for (i, part) in parts.enumerate() {
            if i > 0 {
                into.push(';');
            }
            into.push_str(part);
        }
        into
    }
    let Scratch {
        id,
        reseller,
        client,
        client_text,
        groups,
        auth_types,
        client_and_roles,
    } = scratch;
    let client = match &user.client {
        None => "",
        Some(number) => match (number.as_u64(), number.as_i64()) {
            (Some(whole), _) => client.format(whole),
            (None, Some(negative)) => client.format(negative),
            (None, None) => {
                *client_text = number.to_string();
                client_text
            }
        },
    };
    let groups = match &user.groups {
        Some(list) => joined(groups, list.iter().map(|group| group.name.as_str())),
        None => "",
    };
    let auth_types = match &user.auth_types {
        Some(list) => joined(auth_types, list.iter().map(String::as_str)),
        None => "",
    };
    client_and_roles.clear();
    if let Some(list) = &user.client_and_roles
        && serde_json::to_writer(&mut *client_and_roles, list).is_err()
    {
        client_and_roles.clear();
    }
    [
        user.id.map_or("", |value| id.format(value)),
        text(&user.email),
        text(&user.name),
        text(&user.lang),
        text(&user.phone),
        text(&user.company),
        user.reseller.map_or("", |value| reseller.format(value)),
        client,
        flag(user.deleted),
        groups,
        flag(user.activated),
        flag(user.sso_auth),
        flag(user.two_fa),
        auth_types,
        text(&user.user_type),
        flag(user.is_active),
        std::str::from_utf8(client_and_roles).expect("serde_json writes UTF-8"),
    ]
}
