//! The scan of an `.ods` file's `content.xml` before calamine reads it:
//! every sheet's layout, and a refusal for a sheet whose repeats or stray
//! cells would expand too far in memory.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Seek};

use quick_xml::events::{BytesStart, Event};
use zip::ZipArchive;

use super::column_letters;
use super::*;
use crate::model::patch::show;

/// The most cells an `.ods` sheet may span (from its first row that holds
/// something to its last, from column A to its rightmost), and the sheets
/// of an `.xls` file together, and each sheet of an `.xlsb` file (from its
/// first cell to its last, both ways): calamine holds the whole rectangle,
/// 32 bytes a cell, and more while it reads.
pub(crate) const SPAN_MAX_CELLS: u64 = 5_000_000;

/// The most times an `.ods` row that holds something may repeat
/// (`table:number-rows-repeated`): a table of users has each user once.
pub(crate) const ODS_MAX_REPEATS: u64 = 1_000;

/// Scans the `content.xml` of an `.ods` file in `file`: every sheet's
/// layout, by name. Refuses a sheet that spans more than
/// [`SPAN_MAX_CELLS`], or repeats a row that holds something more than
/// [`ODS_MAX_REPEATS`] times, before anything expands it.
pub(crate) fn ods_layouts<R: Read + Seek>(file: R) -> Result<HashMap<String, Layout>, String> {
    let mut layouts = HashMap::new();
    let Ok(mut zip) = ZipArchive::new(file) else {
        return Ok(layouts);
    };
    let Ok(entry) = zip.by_name("content.xml") else {
        return Ok(layouts);
    };
    OdsScan::default().run(BufReader::new(entry), &mut layouts)?;
    Ok(layouts)
}

/// A cell of an `.ods` row: its column, how many times it repeats, and its
/// mark.
type OdsCell = (u32, u32, Option<Mark>);

/// The state of the scan of one `.ods` table.
#[derive(Default)]
struct OdsScan {
    name: String,
    layout: Layout,
    hidden_columns: Vec<(u32, u32)>,
    hidden_rows: Vec<(u32, u32)>,
    column: u32,
    row: u64,
    row_repeats: u64,
    row_hidden: bool,
    /// Cells of the current row that hold something: (column, repeats,
    /// mark).
    row_cells: Vec<OdsCell>,
    /// The current cell, while its content is read, and whether it holds
    /// something (a value type, a formula, or text).
    cell: Option<(OdsCell, bool)>,
    /// The current cell's number (`office:value` of a float), and the text
    /// it shows (what LibreOffice saved as its display), up to 64 bytes.
    cell_value: Option<String>,
    cell_shown: String,
    filled: Option<(u64, u64, u32)>,
}

/// Whether `shown` (the text an `.ods` cell shows) is the number `value`
/// (its `office:value`): as written (`5`, `5.0`), or its whole digits with
/// grouping and decimal marks of any locale and decimal zeros (`1,234`,
/// `1.234,00`, `0006`).
pub(super) fn shows_number(shown: &str, value: &str) -> bool {
    let Ok(number) = value.trim().parse::<f64>() else {
        return true;
    };
    let shown = shown.trim();
    if shown.parse::<f64>() == Ok(number) {
        return true;
    }
    if number.fract() != 0.0 || !(0.0..1e15).contains(&number) {
        return false;
    }
    let marks = [',', '.', ' ', '\'', '\u{a0}', '\u{202f}'];
    if !shown
        .chars()
        .all(|c| c.is_ascii_digit() || marks.contains(&c))
    {
        return false;
    }
    let whole = format!("{}", number as u64);
    // Digits in groups of three after the first (`1,234,567`), or none.
    let is_whole = |text: &str| {
        let groups: Vec<&str> = text.split(|c| marks.contains(&c)).collect();
        let grouped = groups.len() == 1
            || (groups
                .first()
                .is_some_and(|first| (1..=3).contains(&first.len()))
                && groups[1..].iter().all(|group| group.len() == 3));
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        grouped && digits.trim_start_matches('0') == whole.trim_start_matches('0')
    };
    // Grouped (`1,234`), or with decimal zeros after the last mark
    // (`1.234,00`).
    is_whole(shown)
        || shown.rfind([',', '.']).is_some_and(|at| {
            let decimals = &shown[at + 1..];
            (1..=4).contains(&decimals.len())
                && decimals.chars().all(|c| c == '0')
                && is_whole(&shown[..at])
        })
}

/// What LibreOffice calls a row or column hidden: collapsed, or filtered
/// out.
fn hidden_visibility(e: &BytesStart) -> bool {
    matches!(
        attr(e, "table:visibility").as_deref(),
        Some("collapse" | "filter")
    )
}

impl OdsScan {
    fn run<B: BufRead>(
        mut self,
        source: B,
        layouts: &mut HashMap<String, Layout>,
    ) -> Result<(), String> {
        let mut xml = quick_xml::Reader::from_reader(source);
        let mut buf = Vec::new();
        loop {
            let event = xml
                .read_event_into(&mut buf)
                .map_err(|error| format!("cannot read its content.xml: {error}"))?;
            match &event {
                Event::Start(e) => self.start(e, false)?,
                Event::Empty(e) => self.start(e, true)?,
                // Text alone makes a cell hold something too.
                Event::Text(text) if !text.trim().is_empty() => {
                    if let Some((_, holds)) = &mut self.cell {
                        *holds = true;
                        if self.cell_shown.len() < 64 {
                            self.cell_shown.push_str(text.as_ref());
                        }
                    }
                }
                Event::End(e) => match e.name().into_inner() {
                    "table:table-cell" | "table:covered-table-cell" => self.end_cell()?,
                    "table:table-row" => self.end_row()?,
                    "table:table" => {
                        let scan = std::mem::take(&mut self);
                        layouts.insert(scan.name.clone(), scan.finish()?);
                    }
                    _ => {}
                },
                Event::Eof => return Ok(()),
                _ => {}
            }
            buf.clear();
        }
    }

    fn start(&mut self, e: &BytesStart, empty: bool) -> Result<(), String> {
        let repeats = |key: &str| u64::from(number(e, key).unwrap_or(1).max(1));
        match e.name().into_inner() {
            "table:table" => {
                *self = OdsScan {
                    name: attr(e, "table:name").unwrap_or_default(),
                    ..OdsScan::default()
                };
            }
            "table:table-column" => {
                let count = repeats("table:number-columns-repeated").min(1 << 14) as u32;
                if hidden_visibility(e) {
                    let end = self.column.saturating_add(count - 1);
                    self.hidden_columns.push((self.column, end));
                }
                self.column = self.column.saturating_add(count);
            }
            "table:table-row" => {
                self.column = 0;
                self.row_repeats = repeats("table:number-rows-repeated");
                self.row_hidden = hidden_visibility(e);
                self.row_cells.clear();
                if empty {
                    self.end_row()?;
                }
            }
            name @ ("table:table-cell" | "table:covered-table-cell") => {
                let count = repeats("table:number-columns-repeated").min(1 << 14) as u32;
                let holds = e
                    .try_get_attribute("office:value-type")
                    .ok()
                    .flatten()
                    .is_some()
                    || e.try_get_attribute("table:formula")
                        .ok()
                        .flatten()
                        .is_some();
                let mark = if name == "table:covered-table-cell" {
                    Some(Mark::Covered)
                } else {
                    match attr(e, "office:value-type").as_deref() {
                        Some("percentage") => Some(Mark::Format("a percentage".into())),
                        Some("currency") => Some(Mark::Format("a currency".into())),
                        _ => None,
                    }
                };
                // A cell merged down several rows: only its top row holds
                // the value (the note says so, as for an .xlsx file's).
                let rows_spanned = number(e, "table:number-rows-spanned").unwrap_or(1);
                if name == "table:table-cell"
                    && rows_spanned > 1
                    && self.layout.merged_down.len() < MERGED_DOWN_KEPT
                {
                    let columns = number(e, "table:number-columns-spanned").unwrap_or(1);
                    let top = u32::try_from(self.row).unwrap_or(u32::MAX);
                    self.layout.merged_down.push(Region {
                        top,
                        left: self.column,
                        bottom: top.saturating_add(rows_spanned - 1),
                        right: self.column.saturating_add(columns.max(1) - 1),
                    });
                }
                let cell = (self.column, count, mark);
                self.column = self.column.saturating_add(count);
                self.cell = Some((cell, holds));
                self.cell_shown.clear();
                self.cell_value = match attr(e, "office:value-type").as_deref() {
                    Some("float") => attr(e, "office:value"),
                    _ => None,
                };
                if empty {
                    self.end_cell()?;
                }
            }
            "text:ruby" => {
                if let Some((cell, _)) = &mut self.cell {
                    cell.2 = Some(Mark::Ruby);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Ends the current cell; one that holds something past column XFD
    /// is refused: no spreadsheet shows it (LibreOffice drops it, with a
    /// warning) and calamine drops it without one.
    fn end_cell(&mut self) -> Result<(), String> {
        if let Some((mut cell, true)) = self.cell.take() {
            if let Some(value) = self.cell_value.take()
                && cell.2.is_none()
                && !self.cell_shown.is_empty()
                && !shows_number(&self.cell_shown, &value)
            {
                // A number shown as other text (a currency by its data
                // style, or a display that is not its value): a user ID
                // in it is refused, as a person reads the text.
                let shown = crate::visible::visible(self.cell_shown.trim());
                cell.2 = Some(Mark::Format(format!("the text {}", show(&shown))));
            }
            if cell.0 >= 1 << 14 {
                return Err(format!(
                    "its sheet {:?} has a cell that holds something in row {}, past column XFD \
                     (a sheet's last, the 16384th), where no spreadsheet shows it and the \
                     reader would drop it: the repeats before it \
                     (table:number-columns-repeated) put it there; open the file in a \
                     spreadsheet, check the row and save it again",
                    self.name,
                    self.row + 1
                ));
            }
            self.row_cells.push(cell);
        }
        Ok(())
    }

    fn end_row(&mut self) -> Result<(), String> {
        let top = self.row;
        self.row = self.row.saturating_add(self.row_repeats);
        let Some(right) = self.row_cells.iter().map(|(c, n, _)| c + n - 1).max() else {
            return Ok(());
        };
        if self.row_repeats > ODS_MAX_REPEATS {
            return Err(format!(
                "its sheet {:?} repeats row {} {} times (table:number-rows-repeated), more than \
                 the {ODS_MAX_REPEATS} a table of users can need (each user has one row): delete \
                 the repeated rows and save the file",
                self.name,
                top + 1,
                self.row_repeats
            ));
        }
        let bottom = self.row - 1;
        self.filled = Some(match self.filled {
            None => (top, bottom, right),
            Some((first, _, widest)) => (first, bottom, widest.max(right)),
        });
        let (first, last, widest) = self.filled.expect("just set");
        let spanned = (last - first + 1).saturating_mul(u64::from(widest) + 1);
        if spanned > SPAN_MAX_CELLS || last >= 1 << 20 {
            return Err(format!(
                "its sheet {:?} spans {spanned} cells, from row {} to row {} and from column A to \
                 column {} (reached at {}{}), more than the {SPAN_MAX_CELLS} an .ods sheet is \
                 read with: a stray cell far below or right of the table makes it so; delete it \
                 and save the file, or save the sheet as .xlsx, which is read cell by cell",
                self.name,
                first + 1,
                last + 1,
                column_letters(widest as usize),
                column_letters(right as usize),
                bottom + 1,
            ));
        }
        if self.row_hidden {
            self.hidden_rows.push((top as u32, bottom as u32));
        }
        for (column, count, mark) in self.row_cells.drain(..) {
            let Some(mark) = mark else { continue };
            for row in top..=bottom {
                for column in column..column + count {
                    self.layout.marks.insert((row as u32, column), mark.clone());
                }
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Layout, String> {
        self.layout.hidden_rows = tidy(self.hidden_rows);
        self.layout.hidden_columns = tidy(self.hidden_columns);
        Ok(self.layout)
    }
}
