//! What a person sees of a sheet, beyond its cells' values: merged cells
//! (whose covered cells a spreadsheet does not show), hidden rows and
//! columns, and how numbers are formatted (a percentage, a currency, `;;;`
//! that shows nothing). calamine gives merges and formats of `.xlsx`; the
//! rest is read here from the file's XML parts, through readers bounded by
//! [`super::zipped`]. An `.ods` file is scanned here before calamine reads
//! it, so that its repeated rows and stray cells are refused before they
//! are expanded in memory.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Seek};

use quick_xml::events::{BytesStart, Event};
use zip::ZipArchive;

use super::sheet::column_letters;
use crate::model::patch::show;

/// A rectangle of cells, 0-based, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub top: u32,
    pub left: u32,
    pub bottom: u32,
    pub right: u32,
}

/// What a person sees of one cell instead of (or besides) its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// Covered by a merge: not shown.
    Covered,
    /// Holds ruby (phonetic) text, shown above the text but read into the
    /// value.
    Ruby,
    /// A number shown through a format: `a percentage`, `a currency`, or
    /// the format's code.
    Format(String),
    /// A number format that shows nothing (`;;;`).
    FormatHides,
    /// A number format whose text part (its fourth) shows text other than
    /// the cell holds (`0;-0;0;` shows none, `0;0;0;"Users"` another).
    FormatText,
    /// Text that holds `_x0041_`, which Excel (and calamine) read as the
    /// character it codes (`A`) and LibreOffice shows as it is.
    Escaped,
}

/// The layout of the sheet read.
#[derive(Debug, Default)]
pub struct Layout {
    /// Merged regions (from `<mergeCells>`; an `.ods` marks covered cells
    /// itself).
    pub merges: Vec<Region>,
    /// Sorted ranges, both ends included.
    pub hidden_rows: Vec<(u32, u32)>,
    pub hidden_columns: Vec<(u32, u32)>,
    /// Marks of single cells (an `.ods` file's, each a cell that holds
    /// something).
    pub marks: HashMap<(u32, u32), Mark>,
}

/// Whether `at` falls in one of the sorted `ranges`.
pub fn in_ranges(ranges: &[(u32, u32)], at: u32) -> bool {
    let after = ranges.partition_point(|&(start, _)| start <= at);
    after > 0 && ranges[after - 1].1 >= at
}

/// Sorts and joins ranges.
fn tidy(mut ranges: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
    ranges.sort_unstable();
    let mut joined: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match joined.last_mut() {
            Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
            _ => joined.push((start, end)),
        }
    }
    joined
}

/// Finds the merged region that covers a cell, for cells visited in row
/// order: regions are taken in as their top row is reached and dropped
/// after their bottom one, and the active ones are kept by left column
/// (merges never overlap), so each look-up is a logarithm.
pub struct MergeSweep {
    pending: Vec<Region>,
    next: usize,
    active: BTreeMap<u32, Region>,
}

impl MergeSweep {
    pub fn new(mut regions: Vec<Region>) -> MergeSweep {
        regions.sort_unstable_by_key(|region| (region.top, region.left));
        MergeSweep {
            pending: regions,
            next: 0,
            active: BTreeMap::new(),
        }
    }

    /// The region that covers `(row, column)` and does not start there.
    pub fn covering(&mut self, row: u32, column: u32) -> Option<Region> {
        while let Some(region) = self.pending.get(self.next).filter(|r| r.top <= row) {
            self.active.insert(region.left, *region);
            self.next += 1;
        }
        // Regions ended above this row are dropped as they are met (a loop:
        // a file may hold tens of thousands of them in a row).
        loop {
            let (_, region) = self.active.range(..=column).next_back()?;
            let region = *region;
            if region.bottom < row {
                self.active.remove(&region.left);
                continue;
            }
            let covers = column <= region.right && (row, column) != (region.top, region.left);
            return covers.then_some(region);
        }
    }
}

/// The parts an `.xlsx` names its sheets with, read to find the part of
/// `sheet`, and its hidden rows and columns.
pub fn xlsx_hidden<R: Read + Seek>(file: R, sheet: &str) -> Result<Layout, String> {
    let mut layout = Layout::default();
    let Ok(mut zip) = ZipArchive::new(file) else {
        return Ok(layout);
    };
    let Some(part) = xlsx_sheet_part(&mut zip, sheet) else {
        return Ok(layout);
    };
    let escaped = escaped_shared_strings(&mut zip);
    let Ok(entry) = zip.by_name(&part) else {
        return Ok(layout);
    };
    let mut xml = quick_xml::Reader::from_reader(BufReader::new(entry));
    let mut buf = Vec::new();
    let mut rows = Vec::new();
    let mut columns = Vec::new();
    let mut row: u32 = 0;
    // The current cell: its position and type, and whether its value or
    // inline text is being read.
    let mut cell: Option<((u32, u32), String)> = None;
    let mut column: u32 = 0;
    let mut in_value = false;
    // `<sheetFormatPr zeroHeight="1">`: rows are hidden unless a row says
    // a height of its own.
    let mut zero_height = false;
    let size = |e: &quick_xml::events::BytesStart, name: &str| {
        attr(e, name).and_then(|value| value.trim().parse::<f64>().ok())
    };
    loop {
        let event = xml
            .read_event_into(&mut buf)
            .map_err(|error| format!("cannot read the sheet {sheet:?}: {error}"))?;
        match &event {
            Event::Start(e) | Event::Empty(e) => match e.local_name().into_inner() {
                "sheetFormatPr" => zero_height = truthy(e, "zeroHeight"),
                "col" => {
                    let min = number(e, "min").unwrap_or(1).max(1);
                    let max = number(e, "max").unwrap_or(min).max(min);
                    // Width 0: Excel shows nothing of the column.
                    if truthy(e, "hidden") || size(e, "width") == Some(0.0) {
                        columns.push((min - 1, max - 1));
                    }
                }
                "row" => {
                    row = number(e, "r").map_or(row + 1, |r| r.max(1));
                    column = 0;
                    let height = size(e, "ht");
                    let own_height = truthy(e, "customHeight") && height.is_some_and(|h| h > 0.0);
                    if truthy(e, "hidden") || height == Some(0.0) || (zero_height && !own_height) {
                        rows.push((row - 1, row - 1));
                    }
                }
                "c" => {
                    let at = attr(e, "r")
                        .and_then(|r| cell_position(&r))
                        .unwrap_or((row.saturating_sub(1), column));
                    column = at.1 + 1;
                    cell = Some((at, attr(e, "t").unwrap_or_default()));
                }
                "v" | "t" => in_value = true,
                _ => {}
            },
            Event::Text(text) if in_value => {
                if let Some((at, kind)) = &cell {
                    let coded = match kind.as_str() {
                        "s" => text
                            .trim()
                            .parse::<usize>()
                            .is_ok_and(|index| escaped.contains(&index)),
                        "inlineStr" => has_escape(text),
                        _ => false,
                    };
                    if coded {
                        layout.marks.insert(*at, Mark::Escaped);
                    }
                }
            }
            Event::End(e) if matches!(e.local_name().into_inner(), "v" | "t") => in_value = false,
            Event::End(e) if e.local_name().into_inner() == "c" => cell = None,
            Event::End(e) if e.local_name().into_inner() == "sheetData" => break,
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    layout.hidden_rows = tidy(rows);
    layout.hidden_columns = tidy(columns);
    Ok(layout)
}

/// `B7` as `(6, 1)`, 0-based.
fn cell_position(reference: &str) -> Option<(u32, u32)> {
    let digits = reference.find(|c: char| c.is_ascii_digit())?;
    let (letters, number) = reference.split_at(digits);
    let mut column: u32 = 0;
    for letter in letters.bytes() {
        if !letter.is_ascii_uppercase() {
            return None;
        }
        column = column
            .checked_mul(26)?
            .checked_add(u32::from(letter - b'A') + 1)?;
    }
    let row: u32 = number.parse().ok()?;
    Some((row.checked_sub(1)?, column.checked_sub(1)?))
}

/// Whether `text` holds `_xHHHH_`, the OOXML escape of a character.
fn has_escape(text: &str) -> bool {
    text.as_bytes().windows(7).any(|w| {
        w[0] == b'_' && w[1] == b'x' && w[2..6].iter().all(u8::is_ascii_hexdigit) && w[6] == b'_'
    })
}

/// The indexes of the shared strings that hold `_xHHHH_` as the file
/// stores them.
fn escaped_shared_strings<R: Read + Seek>(
    zip: &mut ZipArchive<R>,
) -> std::collections::HashSet<usize> {
    let mut found = std::collections::HashSet::new();
    let Ok(entry) = zip.by_name("xl/sharedStrings.xml") else {
        return found;
    };
    let mut xml = quick_xml::Reader::from_reader(BufReader::new(entry));
    let mut buf = Vec::new();
    let mut index: Option<usize> = None;
    loop {
        match xml.read_event_into(&mut buf) {
            Ok(Event::Start(e)) if e.local_name().into_inner() == "si" => {
                index = Some(index.map_or(0, |i| i + 1));
            }
            Ok(Event::Empty(e)) if e.local_name().into_inner() == "si" => {
                index = Some(index.map_or(0, |i| i + 1));
            }
            Ok(Event::Text(text)) if has_escape(&text) => {
                if let Some(index) = index {
                    found.insert(index);
                }
            }
            Ok(Event::Eof) | Err(_) => return found,
            _ => {}
        }
        buf.clear();
    }
}

fn xlsx_sheet_part<R: Read + Seek>(zip: &mut ZipArchive<R>, sheet: &str) -> Option<String> {
    let mut id = None;
    each_start(zip, "xl/workbook.xml", |e| {
        if e.local_name().into_inner() == "sheet" && attr(e, "name").as_deref() == Some(sheet) {
            id = attr(e, "r:id");
        }
    })?;
    let id = id?;
    let mut target = None;
    each_start(zip, "xl/_rels/workbook.xml.rels", |e| {
        if e.local_name().into_inner() == "Relationship" && attr(e, "Id").as_deref() == Some(&id) {
            target = attr(e, "Target");
        }
    })?;
    let target = target?;
    Some(match target.strip_prefix('/') {
        Some(absolute) => absolute.to_string(),
        None => format!("xl/{target}"),
    })
}

fn each_start<R: Read + Seek>(
    zip: &mut ZipArchive<R>,
    part: &str,
    mut visit: impl FnMut(&BytesStart),
) -> Option<()> {
    let entry = zip.by_name(part).ok()?;
    let mut xml = quick_xml::Reader::from_reader(BufReader::new(entry));
    let mut buf = Vec::new();
    loop {
        match xml.read_event_into(&mut buf).ok()? {
            Event::Start(e) | Event::Empty(e) => visit(&e),
            Event::Eof => return Some(()),
            _ => {}
        }
        buf.clear();
    }
}

fn attr(e: &BytesStart, key: &str) -> Option<String> {
    let found = e.try_get_attribute(key).ok()??;
    // `R&amp;D` is the sheet R&D.
    let value = quick_xml::escape::unescape(&found.value).ok()?.into_owned();
    Some(value)
}

fn number(e: &BytesStart, key: &str) -> Option<u32> {
    attr(e, key)?.trim().parse().ok()
}

fn truthy(e: &BytesStart, key: &str) -> bool {
    matches!(attr(e, key).as_deref(), Some("1" | "true"))
}

/// The most cells an `.ods` sheet may span (from its first row that holds
/// something to its last, from column A to its rightmost), and the sheets
/// of an `.xls` file together, and each sheet of an `.xlsb` file (from its
/// first cell to its last, both ways): calamine holds the whole rectangle,
/// 32 bytes a cell, and more while it reads.
pub const SPAN_MAX_CELLS: u64 = 5_000_000;

/// The most times an `.ods` row that holds something may repeat
/// (`table:number-rows-repeated`): a table of users has each user once.
pub const ODS_MAX_REPEATS: u64 = 1_000;

/// Scans the `content.xml` of an `.ods` file in `file`: every sheet's
/// layout, by name. Refuses a sheet that spans more than
/// [`SPAN_MAX_CELLS`], or repeats a row that holds something more than
/// [`ODS_MAX_REPEATS`] times, before anything expands it.
pub fn ods_layouts<R: Read + Seek>(file: R) -> Result<HashMap<String, Layout>, String> {
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
fn shows_number(shown: &str, value: &str) -> bool {
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

/// How an `.xlsx` number format shows a number, by its code and its id:
/// the built-in formats the standard leaves to the locale (5 to 8, a
/// currency; 23 to 36 and 50 and above, dates and Asian formats) come
/// with no code, and calamine gives them as `General`.
pub fn xlsx_number_format_mark(code: &str, id: Option<u32>) -> Option<Mark> {
    match id {
        Some(5..=8) => Some(Mark::Format("a currency".into())),
        Some(id @ (23..=36 | 50..=163)) if code.eq_ignore_ascii_case("general") => {
            Some(Mark::Format(format!("the built-in format {id}")))
        }
        _ => xlsx_format_mark(code),
    }
}

/// How an `.xlsx` number format shows a number, when it is not as the
/// plain number: `Some(Mark::FormatHides)` for `;;;`, a percentage, a
/// currency, or another format by its code.
pub fn xlsx_format_mark(code: &str) -> Option<Mark> {
    let plain = ["general", "0", "@", "0.00", "#,##0", "#,##0.00"];
    let trimmed = code.trim();
    if plain.contains(&trimmed.to_ascii_lowercase().as_str()) {
        return None;
    }
    // Outside quoted literals and backslash escapes.
    let mut bare = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in trimmed.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            _ if !quoted => bare.push(c),
            _ => {}
        }
    }
    let sections: Vec<&str> = trimmed.split(';').collect();
    if sections.len() >= 3 && sections[..3].iter().all(|s| s.trim().is_empty()) {
        return Some(Mark::FormatHides);
    }
    // The text part, split outside quoted literals: anything but `@`
    // alone shows a text cell otherwise than it is.
    let mut parts = vec![String::new()];
    let mut quoted = false;
    for c in trimmed.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                parts.last_mut().expect("one part at least").push(c);
            }
            ';' if !quoted => parts.push(String::new()),
            _ => parts.last_mut().expect("one part at least").push(c),
        }
    }
    if parts.len() >= 4 && parts[3].trim() != "@" {
        return Some(Mark::FormatText);
    }
    // Digits, padded or grouped (`000000`, `#,##0.00`), show the number
    // itself; a comma at the end would divide it by 1,000.
    if trimmed.chars().all(|c| matches!(c, '0' | '#' | ',' | '.')) && !trimmed.ends_with(',') {
        return None;
    }
    if bare.contains('%') {
        return Some(Mark::Format("a percentage".into()));
    }
    if bare.contains(['$', '€', '£', '¥']) || bare.contains("[$") {
        return Some(Mark::Format("a currency".into()));
    }
    // A code can be long (a forged one, 100 KB): a message shows its start.
    Some(Mark::Format(format!("the format {}", show(trimmed))))
}

#[cfg(test)]
mod tests;
