//! A sheet's cells read and copied as CSV: each cell's text and how it
//! was stored (a note when not text), the bounds on cells and text held,
//! and what a person does not see (merges, hidden rows and columns,
//! formats that hide).

use std::io::{Read, Seek, Write};

use super::super::layout::{self, Layout, Mark, MergeSweep};
use calamine::{Data, Reader, Sheets, StyleRange};

use crate::model::patch::show;

use super::*;

/// A cell that holds something, or a formula: 0-based position, its
/// value, and whether a formula computed it.
pub(super) struct SheetCell {
    pub(super) row: u32,
    pub(super) column: u32,
    pub(super) value: Data,
    pub(super) formula: Option<String>,
}

impl SheetCell {
    /// Nothing a person would see (empty, or spaces only) and no formula.
    pub(super) fn blank(&self) -> bool {
        blank_value(&self.value, self.formula.as_deref())
    }
}

pub(super) fn blank_value(value: &Data, formula: Option<&str>) -> bool {
    formula.is_none()
        && match value {
            Data::Empty => true,
            Data::String(text) => text.trim().is_empty(),
            _ => false,
        }
}

/// The size of a sheet in Excel and LibreOffice: 1,048,576 rows, columns A
/// to XFD.
pub(super) const MAX_SHEET_ROWS: u32 = 1 << 20;
pub(super) const MAX_SHEET_COLUMNS: u32 = 1 << 14;

/// The cells of `sheet` that hold something, in row order. An `.xlsx`
/// sheet is read cell by cell, so memory follows the cells it holds (a
/// stray value in the sheet's last cell costs nothing); the other formats
/// are read by calamine as a whole rectangle.
/// `first_only`: stop after the first row that holds something (an `.xlsx`
/// is read no further).
pub(super) fn cells_of<RS: Read + Seek>(
    workbook: &mut Sheets<RS>,
    sheet: &str,
    first_only: bool,
    budget: &Budget,
) -> Result<Vec<SheetCell>, String> {
    let failed =
        |error: &dyn std::fmt::Display| format!("cannot read the sheet {sheet:?}: {error}");
    let mut cells = Vec::new();
    let mut held = Held::default();
    if let Sheets::Xlsx(xlsx) = workbook {
        let mut reader = xlsx.worksheet_cells_reader(sheet).map_err(|e| failed(&e))?;
        let mut filled_row = None;
        while let Some(cell) = reader.next_cell_with_formula().map_err(|e| failed(&e))? {
            let formula = cell.formula.filter(|text| !text.is_empty());
            let value = Data::from(cell.value);
            if value == Data::Empty && formula.is_none() {
                continue;
            }
            let (row, column) = cell.pos;
            if row >= MAX_SHEET_ROWS || column >= MAX_SHEET_COLUMNS {
                return Err(format!(
                    "the sheet {sheet:?} has a cell at row {}, column {}, beyond the last cell a \
                     sheet can have (XFD1048576): the file is damaged; open it in a spreadsheet \
                     and save it again",
                    u64::from(row) + 1,
                    u64::from(column) + 1
                ));
            }
            held.add(&value, formula.as_deref(), (row, column), sheet, budget)?;
            if first_only {
                match filled_row {
                    Some(first) if row > first => break,
                    None if !blank_value(&value, formula.as_deref()) => filled_row = Some(row),
                    _ => {}
                }
            }
            cells.push(SheetCell {
                row: cell.pos.0,
                column: cell.pos.1,
                value,
                formula,
            });
        }
    } else {
        let range = workbook.worksheet_range(sheet).map_err(|e| failed(&e))?;
        // Only some formats can tell formulas; where none can be read, the
        // values are all there is.
        let mut formulas = std::collections::HashMap::new();
        if let Ok(found) = workbook.worksheet_formula(sheet)
            && let Some((top, left)) = found.start()
        {
            for (row, column, formula) in found.used_cells() {
                if !formula.is_empty() {
                    let at = (top + row as u32, left + column as u32);
                    formulas.insert(at, formula.clone());
                }
            }
        }
        let (top, left) = range.start().unwrap_or((0, 0));
        for (row, column, value) in range.used_cells() {
            let at = (top + row as u32, left + column as u32);
            held.add(
                value,
                formulas.get(&at).map(String::as_str),
                at,
                sheet,
                budget,
            )?;
            cells.push(SheetCell {
                row: at.0,
                column: at.1,
                value: value.clone(),
                formula: formulas.remove(&at),
            });
        }
        // Formulas whose value was never saved.
        for ((row, column), formula) in formulas {
            cells.push(SheetCell {
                row,
                column,
                value: Data::Empty,
                formula: Some(formula),
            });
        }
    }
    // In place: a stable sort would take half the cells again in memory.
    cells.sort_unstable_by_key(|cell| (cell.row, cell.column));
    if let Some(twice) = cells
        .windows(2)
        .find(|pair| (pair[0].row, pair[0].column) == (pair[1].row, pair[1].column))
    {
        return Err(format!(
            "the sheet {sheet:?} holds the cell {}{} twice: the file is damaged (no spreadsheet \
             writes that); open it in a spreadsheet and save it again",
            column_letters(twice[0].column as usize),
            twice[0].row + 1
        ));
    }
    Ok(cells)
}

/// The most cells the CSV copy of a sheet may hold, empty ones included
/// (each row that holds a cell is copied as wide as the widest row; a row
/// with none is a blank line): a stray cell far right of the header, or a
/// header that reaches column XFD, is refused rather than copied as
/// millions of empty cells. The copy takes at most this many bytes of
/// commas, plus the cells' text ([`Budget`]).
pub(crate) const MAX_COPIED_CELLS: u64 = 50_000_000;

/// The most cells that hold something a sheet is read with: about 70 bytes
/// of memory each while the sheet is copied.
pub(crate) const MAX_CELLS: u64 = 10_000_000;

/// What reading one workbook may hold: the text of its cells together is
/// at most [`crate::table::zipped::inflate_limit`] of the file's size.
pub(super) struct Budget {
    pub(super) text: u64,
    pub(super) file_len: u64,
}

/// What the cells read so far hold.
#[derive(Default)]
pub(super) struct Held {
    pub(super) cells: u64,
    pub(super) text: u64,
}

impl Held {
    pub(super) fn add(
        &mut self,
        value: &Data,
        formula: Option<&str>,
        (row, column): (u32, u32),
        sheet: &str,
        budget: &Budget,
    ) -> Result<(), String> {
        let text = match value {
            Data::String(text) | Data::DateTimeIso(text) | Data::DurationIso(text) => text.len(),
            _ => 0,
        } + formula.map_or(0, str::len);
        self.cells += 1;
        self.text += text as u64;
        let cell = format!("{}{}", column_letters(column as usize), u64::from(row) + 1);
        if self.cells > MAX_CELLS {
            return Err(format!(
                "the sheet {sheet:?} holds more than {MAX_CELLS} cells (reached at {cell}), \
                 the most a sheet is read with; split it into several files"
            ));
        }
        if self.text > budget.text {
            return Err(format!(
                "the cells of the sheet {sheet:?} hold more than {} of text together (reached \
                 at {cell}, which holds {}), the limit for a file of {} ({} times its size \
                 plus {}, at most {}); a cell this long holds no user's field: delete it and \
                 save the file",
                crate::table::zipped::show_size(budget.text),
                crate::table::zipped::show_size(text as u64),
                crate::table::zipped::show_size(budget.file_len),
                crate::table::zipped::INFLATE_MULTIPLE,
                crate::table::zipped::show_size(crate::table::zipped::INFLATE_BASE),
                crate::table::zipped::show_size(crate::table::zipped::INFLATE_CAP),
            ));
        }
        Ok(())
    }
}

/// Writes `cells` as CSV rows: row numbers and column letters are the
/// sheet's (blank lines above the header, empty cells left of it), every
/// row as wide as the rightmost cell that holds something. `None`: the
/// sheet holds nothing.
pub(super) fn copy_cells<W: Write>(
    cells: &[SheetCell],
    seen: &Layout,
    styles: Option<&StyleRange>,
    out: W,
) -> Result<Option<Copied>, String> {
    let filled: Vec<&SheetCell> = cells.iter().filter(|cell| !cell.blank()).collect();
    let Some(first) = filled.first() else {
        return Ok(None);
    };
    let header_row = first.row;
    let header_end = filled
        .iter()
        .take_while(|cell| cell.row == header_row)
        .map(|cell| cell.column + 1)
        .max()
        .unwrap_or(0);
    let widest = filled
        .iter()
        .max_by_key(|cell| cell.column)
        .expect("a filled cell");
    let width = widest.column + 1;
    let last_row = filled.last().expect("a filled cell").row;
    let mut filled_rows: u64 = 0;
    let mut previous = None;
    for cell in cells.iter().filter(|cell| cell.row >= header_row) {
        if previous != Some(cell.row) {
            filled_rows += 1;
            previous = Some(cell.row);
        }
    }
    let copied_cells = u64::from(width) * filled_rows;
    // A stray cell far right of the header would widen every row of the
    // table: refused by name, as a person would delete it.
    let spanned = u64::from(width) * u64::from(last_row - header_row + 1);
    if width > header_end && spanned > MAX_COPIED_CELLS {
        return Err(format!(
            "the cell {}{} holds {}, far right of the header (which ends at {}{}): every \
             row would be read {width} columns wide; delete that cell (and any others out \
             there) and save the file",
            column_letters(widest.column as usize),
            widest.row + 1,
            show_value(&widest.value, widest.formula.as_deref()),
            column_letters(header_end as usize - 1),
            header_row + 1
        ));
    }
    if copied_cells > MAX_COPIED_CELLS {
        return Err(format!(
            "the header reaches column {} ({width} columns) and {filled_rows} rows hold \
             cells: the sheet's copy would hold {copied_cells} cells, more than the \
             {MAX_COPIED_CELLS} a sheet is read with; delete the columns the users do not \
             need (right of the table too) and save the file",
            column_letters(header_end.max(1) as usize - 1),
        ));
    }
    let copy_failed = |error: &dyn std::fmt::Display| format!("cannot copy the sheet: {error}");
    let mut out = out;
    // The rows above the header: blank lines, so that row numbers are the
    // sheet's.
    for _ in 0..header_row {
        out.write_all(b"\n").map_err(|e| copy_failed(&e))?;
    }
    let mut csv = csv::WriterBuilder::new().flexible(true).from_writer(out);
    let mut notes = Vec::new();
    let mut covered = Vec::new();
    let mut hidden = Vec::new();
    let mut merges = MergeSweep::new(seen.merges.clone());
    let mut record = vec![String::new(); width as usize];
    let mut at = 0;
    for row in header_row..=last_row {
        if cells.get(at).is_none_or(|cell| cell.row > row) {
            // No cell on the row: a blank line, whatever the width.
            csv.write_record(std::iter::empty::<&[u8]>())
                .map_err(|e| copy_failed(&e))?;
            continue;
        }
        record.iter_mut().for_each(String::clear);
        while let Some(cell) = cells.get(at).filter(|cell| cell.row <= row) {
            at += 1;
            if cell.row < row || cell.column >= width {
                // Above the header, or blank cells far right: nothing to read.
                continue;
            }
            let at = (cell.row, cell.column);
            let reference = || format!("{}{}", column_letters(at.1 as usize), u64::from(at.0) + 1);
            let mark = seen.marks.get(&at).cloned().or_else(|| {
                let format = styles?.get(at)?.number_format.as_ref()?;
                layout::xlsx_number_format_mark(&format.format_code, format.format_id)
            });
            if mark == Some(Mark::Covered) || merges.covering(at.0, at.1).is_some() {
                // A merge shows its first cell only: the others are empty
                // to a person, whatever the file keeps in them.
                if !cell.blank() {
                    covered.push(reference());
                }
                continue;
            }
            // The header is never sent: a hidden column that holds only its
            // header sends nothing (it stopped the run, naming C1).
            if !cell.blank() && row != header_row {
                let why = if layout::in_ranges(&seen.hidden_rows, at.0) {
                    Some("in a hidden row")
                } else if layout::in_ranges(&seen.hidden_columns, at.1) {
                    Some("in a hidden column")
                } else if mark == Some(Mark::FormatHides) {
                    Some("formatted to show nothing (;;;)")
                } else if mark == Some(Mark::FormatText) && matches!(cell.value, Data::String(_)) {
                    Some("formatted to show other text than it holds (its format's text part)")
                } else {
                    None
                };
                if let Some(why) = why {
                    hidden.push(HiddenCell {
                        row: u64::from(at.0) + 1,
                        column: at.1 as usize,
                        why: why.to_string(),
                    });
                }
            }
            let ruby = mark == Some(Mark::Ruby);
            let escaped = mark == Some(Mark::Escaped);
            let format = match (&mark, &cell.value) {
                (Some(Mark::Format(kind)), Data::Int(_) | Data::Float(_)) => Some(kind.clone()),
                _ => None,
            };
            let (text, stored) = match (&cell.value, &cell.formula) {
                // A formula whose value was never saved (or is empty): its
                // text stands in the cell, so that the row is not taken for a
                // blank one, and the note makes it invalid where it is sent.
                (Data::Empty, Some(formula)) => (formula_text(formula), Stored::Unsaved),
                (Data::String(text), Some(formula)) if text.is_empty() => {
                    (formula_text(formula), Stored::Unsaved)
                }
                (value, formula) => {
                    let (text, mut stored) = text_of(value);
                    // An OpenDocument file keeps a failed formula's value as
                    // its text (`#DIV/0!`, `Err:502`).
                    if formula.is_some() && stored == Stored::Text && is_error_text(&text) {
                        stored = Stored::Error(text.clone());
                    }
                    (text, stored)
                }
            };
            if cell.formula.is_some()
                || stored != Stored::Text
                || ruby
                || escaped
                || format.is_some()
            {
                notes.push(CellNote {
                    row: u64::from(row) + 1,
                    column: cell.column as usize,
                    stored,
                    formula: cell.formula.is_some(),
                    format,
                    ruby,
                    escaped,
                });
            }
            record[cell.column as usize] = text;
        }
        // A row of empty cells is `,,,`: a blank row, as in a CSV.
        csv.write_record(&record).map_err(|e| copy_failed(&e))?;
    }
    csv.flush().map_err(|e| copy_failed(&e))?;
    Ok(Some((notes, covered, hidden)))
}

/// The notes of a sheet's copy, the covered cells that held values, and
/// the hidden cells that hold something.
pub(super) type Copied = (Vec<CellNote>, Vec<String>, Vec<HiddenCell>);

/// A formula as a person types it: `=A1+1` (OpenDocument keeps `of:=...`).
pub(super) fn formula_text(formula: &str) -> String {
    let formula = formula.strip_prefix("of:").unwrap_or(formula);
    match formula.starts_with('=') {
        true => formula.to_string(),
        false => format!("={formula}"),
    }
}

/// A value for a message: quoted text, or the number or formula as shown.
pub(super) fn show_value(value: &Data, formula: Option<&str>) -> String {
    match (value, formula) {
        (Data::Empty, Some(formula)) => format!("the formula {}", formula_text(formula)),
        (value, _) => {
            let text = text_of(value).0;
            show(&text)
        }
    }
}

/// Whether `text` is what a spreadsheet shows for a formula that failed.
pub(super) fn is_error_text(text: &str) -> bool {
    const ERRORS: [&str; 9] = [
        "#DIV/0!", "#N/A", "#NAME?", "#NULL!", "#NUM!", "#REF!", "#VALUE!", "#DATA!", "#SPILL!",
    ];
    ERRORS.contains(&text)
        || text
            .strip_prefix("Err:")
            .is_some_and(|code| !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit()))
}

/// The largest whole number a spreadsheet stores exactly: Excel and
/// LibreOffice keep 15 significant digits.
pub(super) const EXACT_DIGITS: f64 = 1e15;

/// A cell's text, as the CSV copy holds it, and how it was stored.
pub(super) fn text_of(cell: &Data) -> (String, Stored) {
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
            let serial = date.as_f64();
            let (what, text) = if date.is_duration() {
                ("the duration", format!("{serial} days"))
            } else if serial < 1.0 {
                ("the time", format!("{hour:02}:{minute:02}:{second:02}"))
            } else if (hour, minute, second) == (0, 0, 0) {
                ("the date", format!("{year:04}-{month:02}-{day:02}"))
            } else {
                (
                    "the date and time",
                    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}"),
                )
            };
            let shown = format!("{what} {text}");
            (text, Stored::Date(shown))
        }
        Data::DateTimeIso(text) => (text.clone(), Stored::Date(format!("the date {text}"))),
        Data::DurationIso(text) => (text.clone(), Stored::Date(format!("the duration {text}"))),
        Data::Error(error) => {
            let shown = error.to_string();
            (shown.clone(), Stored::Error(shown))
        }
    }
}
