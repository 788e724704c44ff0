//! What an `.xlsx` file's XML parts tell beyond calamine: a sheet's part
//! (by its name in the workbook), its hidden rows and columns, and its
//! text that holds an `_xHHHH_` escape.

use std::io::{BufReader, Read, Seek};

use quick_xml::events::{BytesStart, Event};
use zip::ZipArchive;

use super::*;

/// The parts an `.xlsx` names its sheets with, read to find the part of
/// `sheet`, and its hidden rows and columns.
pub(crate) fn xlsx_hidden<R: Read + Seek>(file: R, sheet: &str) -> Result<Layout, String> {
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
pub(super) fn cell_position(reference: &str) -> Option<(u32, u32)> {
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
pub(super) fn has_escape(text: &str) -> bool {
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
