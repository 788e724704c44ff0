//! Reading a workbook (`.xlsx`, `.xlsm`, `.xlsb`, `.xls`, `.ods`) with the
//! calamine crate: one sheet becomes the text of its cells, written as a
//! CSV to the run's private copy of the input, so that every pass, the row
//! numbers and the header rules are those of a CSV input. What the text
//! cannot carry (a cell stored as a number, a date, a logical value, an
//! error or a formula) is kept beside it as [`CellNote`]s, for the checker
//! to judge by the column the cell is in.
//!
//! Row and column numbers are the sheet's own: the rows above the first
//! filled one are written as blank lines and the columns left of it as
//! empty cells, so row 7 of the sheet is row 7 of every message.

use std::io::{self, Read, Seek, Write};

pub use crate::settings::named_like_workbook;
use calamine::{Data, Reader, SheetType, SheetVisible, Sheets, open_workbook_auto_from_rs};

/// What a workbook file starts with: a ZIP archive (`.xlsx`, `.xlsm`,
/// `.xlsb`, `.ods`) or an OLE compound file (`.xls`; also an encrypted
/// `.xlsx`).
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
const OLE_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

/// Whether `start` (the first bytes of a file) is a workbook's.
pub fn looks_like_workbook(start: &[u8]) -> bool {
    start.starts_with(ZIP_MAGIC) || start.starts_with(OLE_MAGIC)
}

/// How a cell was stored, when it was not text.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    /// Text (or nothing): only noted when the cell holds a formula, whose
    /// value may be stale, or was never saved by a program that wrote the
    /// file without calculating it (the cell then reads as empty, "leave
    /// unchanged", and nothing wrong is sent).
    Text,
    /// A number; the CSV cell holds it as a plain number (`49301234567`,
    /// `42`, `1.5`).
    Number { whole: bool, exact: bool },
    /// A logical value (`TRUE`, `FALSE`).
    Logical,
    /// A date or a time; the text is how the note shows it.
    Date(String),
    /// An error value (`#REF!`, `#N/A`): a formula that failed.
    Error(String),
}

/// A cell that was not plain text, or held a formula.
#[derive(Debug, Clone, PartialEq)]
pub struct CellNote {
    /// 1-based, as the sheet numbers them.
    pub row: u64,
    /// 0-based, as the header's columns.
    pub column: usize,
    pub stored: Stored,
    pub formula: bool,
}

impl CellNote {
    /// The cell's name in a spreadsheet: `B7`.
    pub fn reference(&self) -> String {
        format!("{}{}", column_letters(self.column), self.row)
    }
}

/// `0` is `A`, `25` is `Z`, `26` is `AA`.
pub fn column_letters(mut column: usize) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (column % 26) as u8);
        if column < 26 {
            break;
        }
        column = column / 26 - 1;
    }
    letters.reverse();
    String::from_utf8(letters).expect("ASCII letters")
}

/// What was read from the workbook, besides the cells' text.
#[derive(Debug, Clone)]
pub struct SheetRead {
    /// `xlsx`, `xls`, `xlsb` or `ods`.
    pub format: &'static str,
    /// The sheet read, and every worksheet's name in order.
    pub sheet: String,
    pub sheets: Vec<String>,
    /// Sorted by row, then column.
    pub notes: Vec<CellNote>,
}

impl SheetRead {
    /// The notes of one row.
    pub fn notes_of(&self, row: u64) -> &[CellNote] {
        let start = self.notes.partition_point(|note| note.row < row);
        let end = start + self.notes[start..].partition_point(|note| note.row == row);
        &self.notes[start..end]
    }
}

/// Reads one sheet of the workbook in `file` (the first visible worksheet,
/// or the one named `wanted`) and writes its cells' text to `out` as a
/// UTF-8 CSV. The error is a sentence for the user.
pub fn convert<R: Read + Seek + Clone, W: Write>(
    file: R,
    wanted: Option<&str>,
    out: W,
) -> Result<SheetRead, String> {
    let mut workbook = open_workbook_auto_from_rs(file).map_err(|error| {
        format!(
            "it looks like a workbook but cannot be read as one ({error}); a workbook saved with \
             a password is stored this way too: save it without one, or save the sheet as .xlsx \
             or CSV UTF-8"
        )
    })?;
    let format = match &workbook {
        Sheets::Xls(_) => "xls",
        Sheets::Xlsx(_) => "xlsx",
        Sheets::Xlsb(_) => "xlsb",
        Sheets::Ods(_) => "ods",
    };
    let worksheets: Vec<_> = workbook
        .sheets_metadata()
        .iter()
        .filter(|sheet| sheet.typ == SheetType::WorkSheet)
        .cloned()
        .collect();
    let names: Vec<String> = worksheets.iter().map(|sheet| sheet.name.clone()).collect();
    let sheet = match wanted {
        Some(wanted) => names
            .iter()
            .find(|name| name.as_str() == wanted)
            .or_else(|| {
                let mut loose = names
                    .iter()
                    .filter(|name| name.trim().eq_ignore_ascii_case(wanted.trim()));
                match (loose.next(), loose.next()) {
                    (Some(one), None) => Some(one),
                    _ => None,
                }
            })
            .cloned()
            .ok_or_else(|| {
                format!(
                    "the workbook has no sheet named {wanted:?}; its sheets are {}",
                    quoted_list(&names)
                )
            })?,
        None => worksheets
            .iter()
            .find(|sheet| sheet.visible == SheetVisible::Visible)
            .or(worksheets.first())
            .map(|sheet| sheet.name.clone())
            .ok_or_else(|| "the workbook has no worksheet".to_string())?,
    };
    let range = workbook
        .worksheet_range(&sheet)
        .map_err(|error| format!("cannot read the sheet {sheet:?}: {error}"))?;
    // Only some formats can tell formulas; where none can be read, the
    // values are all there is.
    let formulas = workbook.worksheet_formula(&sheet).ok();
    let mut formula_at = std::collections::HashSet::new();
    if let Some(formulas) = &formulas
        && let Some((top, left)) = formulas.start()
    {
        for (row, column, formula) in formulas.used_cells() {
            if !formula.is_empty() {
                formula_at.insert((top as usize + row, left as usize + column));
            }
        }
    }

    let mut out = out;
    let mut notes = Vec::new();
    let copy_failed = |error: &dyn std::fmt::Display| format!("cannot copy the sheet: {error}");
    let (top, left) = range
        .start()
        .map_or((0, 0), |(top, left)| (top as usize, left as usize));
    // The rows above the first filled one: blank lines, so that row
    // numbers are the sheet's.
    for _ in 0..top {
        out.write_all(b"\n").map_err(|e| copy_failed(&e))?;
    }
    let mut csv = csv::WriterBuilder::new().flexible(true).from_writer(out);
    let mut record = Vec::new();
    for (i, cells) in range.rows().enumerate() {
        let row = top + i;
        record.clear();
        record.extend(std::iter::repeat_n(String::new(), left));
        for (j, cell) in cells.iter().enumerate() {
            let column = left + j;
            let formula = formula_at.contains(&(row, column));
            let (text, mut stored) = text_of(cell);
            // An OpenDocument file keeps a failed formula's value as its
            // text (`#DIV/0!`, `Err:502`).
            if formula && stored == Stored::Text && is_error_text(&text) {
                stored = Stored::Error(text.clone());
            }
            if formula || stored != Stored::Text {
                notes.push(CellNote {
                    row: row as u64 + 1,
                    column,
                    stored,
                    formula,
                });
            }
            record.push(text);
        }
        // A row of empty cells is `,,,`: a blank row, as in a CSV.
        csv.write_record(&record).map_err(|e| copy_failed(&e))?;
    }
    csv.flush().map_err(|e| copy_failed(&e))?;
    Ok(SheetRead {
        format,
        sheet,
        sheets: names,
        notes,
    })
}

/// Whether `text` is what a spreadsheet shows for a formula that failed.
fn is_error_text(text: &str) -> bool {
    const ERRORS: [&str; 9] = [
        "#DIV/0!", "#N/A", "#NAME?", "#NULL!", "#NUM!", "#REF!", "#VALUE!", "#DATA!", "#SPILL!",
    ];
    ERRORS.contains(&text)
        || text
            .strip_prefix("Err:")
            .is_some_and(|code| !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit()))
}

fn quoted_list(names: &[String]) -> String {
    names
        .iter()
        .map(|name| format!("{name:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The largest whole number a spreadsheet stores exactly: Excel and
/// LibreOffice keep 15 significant digits.
const EXACT_DIGITS: f64 = 1e15;

/// A cell's text, as the CSV copy holds it, and how it was stored.
fn text_of(cell: &Data) -> (String, Stored) {
    match cell {
        Data::Empty => (String::new(), Stored::Text),
        Data::String(text) => (text.clone(), Stored::Text),
        Data::Int(number) => (
            number.to_string(),
            Stored::Number {
                whole: true,
                exact: true,
            },
        ),
        Data::Float(number) => {
            let whole = number.fract() == 0.0 && number.is_finite();
            let exact = number.abs() < EXACT_DIGITS;
            let text = if whole && exact {
                format!("{}", *number as i64)
            } else {
                format!("{number}")
            };
            (text, Stored::Number { whole, exact })
        }
        Data::Bool(value) => (
            if *value { "TRUE" } else { "FALSE" }.to_string(),
            Stored::Logical,
        ),
        Data::DateTime(date) => {
            let (year, month, day, hour, minute, second, _) = date.to_ymd_hms_milli();
            let shown = if date.is_duration() {
                format!("{}", date.as_f64())
            } else if (hour, minute, second) == (0, 0, 0) {
                format!("{year:04}-{month:02}-{day:02}")
            } else {
                format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}")
            };
            (shown.clone(), Stored::Date(shown))
        }
        Data::DateTimeIso(text) | Data::DurationIso(text) => {
            (text.clone(), Stored::Date(text.clone()))
        }
        Data::Error(error) => {
            let shown = error.to_string();
            (shown.clone(), Stored::Error(shown))
        }
    }
}

/// Reads all of `reader` into memory: calamine needs to seek, and the
/// reader it is given must be clonable.
pub fn in_memory(mut reader: impl Read) -> io::Result<io::Cursor<std::sync::Arc<[u8]>>> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes)?;
    Ok(io::Cursor::new(std::sync::Arc::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_letters_count_as_a_spreadsheet_does() {
        let cases = [(0, "A"), (1, "B"), (25, "Z"), (26, "AA"), (27, "AB")];
        for (column, want) in cases {
            assert_eq!(column_letters(column), want);
        }
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
    }

    #[test]
    fn numbers_read_as_the_number_shown() {
        assert_eq!(text_of(&Data::Float(42.0)).0, "42");
        assert_eq!(text_of(&Data::Float(49301234567.0)).0, "49301234567");
        assert_eq!(text_of(&Data::Float(1.5)).0, "1.5");
        assert!(matches!(
            text_of(&Data::Float(1.5)).1,
            Stored::Number { whole: false, .. }
        ));
        assert!(matches!(
            text_of(&Data::Float(1e16)).1,
            Stored::Number { exact: false, .. }
        ));
        assert_eq!(text_of(&Data::Int(7)).0, "7");
        assert_eq!(
            text_of(&Data::Bool(true)),
            ("TRUE".to_string(), Stored::Logical)
        );
    }
}
