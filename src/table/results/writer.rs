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
