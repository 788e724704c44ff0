//! What a person sees of a sheet, beyond its cells' values: merged cells
//! (whose covered cells a spreadsheet does not show), hidden rows and
//! columns, and how numbers are formatted (a percentage, a currency, `;;;`
//! that shows nothing). calamine gives merges and formats of `.xlsx`; the
//! rest is read here from the file's XML parts, through readers bounded by
//! [`super::zipped`]. An `.ods` file is scanned here before calamine reads
//! it, so that its repeated rows and stray cells are refused before they
//! are expanded in memory.

use std::collections::{BTreeMap, HashMap};

use quick_xml::events::BytesStart;

mod number_format;
mod ods;
mod xlsx;

pub(crate) use number_format::*;
pub(crate) use ods::*;
pub(crate) use xlsx::*;

/// A rectangle of cells, 0-based, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub top: u32,
    pub left: u32,
    pub(crate) bottom: u32,
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
    pub(crate) merges: Vec<Region>,
    /// Sorted ranges, both ends included.
    pub(crate) hidden_rows: Vec<(u32, u32)>,
    pub(crate) hidden_columns: Vec<(u32, u32)>,
    /// Marks of single cells (an `.ods` file's, each a cell that holds
    /// something).
    pub marks: HashMap<(u32, u32), Mark>,
    /// An `.ods` file's cells merged down several rows (its
    /// `table:number-rows-spanned`), the first [`MERGED_DOWN_KEPT`]: the
    /// note names a few (calamine gives an `.xlsx` file's).
    pub(crate) merged_down: Vec<Region>,
}

/// How many merged-down regions of an `.ods` sheet are kept for the note.
pub(crate) const MERGED_DOWN_KEPT: usize = 100;

/// Whether `at` falls in one of the sorted `ranges`.
pub(crate) fn in_ranges(ranges: &[(u32, u32)], at: u32) -> bool {
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
pub(crate) struct MergeSweep {
    pending: Vec<Region>,
    next: usize,
    active: BTreeMap<u32, Region>,
}

impl MergeSweep {
    pub(crate) fn new(mut regions: Vec<Region>) -> MergeSweep {
        regions.sort_unstable_by_key(|region| (region.top, region.left));
        MergeSweep {
            pending: regions,
            next: 0,
            active: BTreeMap::new(),
        }
    }

    /// The region that covers `(row, column)` and does not start there.
    pub(crate) fn covering(&mut self, row: u32, column: u32) -> Option<Region> {
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

#[cfg(test)]
mod tests;
