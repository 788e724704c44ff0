//! `.xls`: the compound file's sectors and streams as calamine's own reader
//! finds them, and the Workbook stream's BIFF records walked as calamine
//! parses them.

use std::collections::VecDeque;

use super::super::layout::SPAN_MAX_CELLS;
use super::super::sheet::column_letters;
use super::super::zipped::show_size;

use super::*;

pub(super) const RESERVED_SECTORS: u32 = 0xFFFF_FFFA;
pub(super) const DIFSECT: u32 = 0xFFFF_FFFC;
pub(super) const ENDOFCHAIN: u32 = 0xFFFF_FFFE;

/// The sectors of a compound file, as calamine reads them: sector `id`
/// starts `id` sectors after the header.
pub(super) struct Sectors<'a> {
    pub(super) data: &'a [u8],
    pub(super) size: usize,
    pub(super) maxid: u32,
    /// The mini sectors only: whether past `data` calamine would read
    /// whatever follows in the file instead.
    pub(super) mini: bool,
}

pub(super) fn damaged<T>(what: &str) -> Walk<T> {
    refused(format!(
        "its container (an OLE compound file) is damaged: {what}; a file saved by a \
         spreadsheet never is: open it in a spreadsheet and save it again as .xlsx, or as CSV \
         UTF-8"
    ))
}

impl<'a> Sectors<'a> {
    pub(super) fn get(&self, id: u32) -> Walk<&'a [u8]> {
        if id > self.maxid {
            return Err(Halt::Unread);
        }
        let start = id as usize * self.size;
        let end = start + self.size;
        if end <= self.data.len() {
            return Ok(&self.data[start..end]);
        }
        // A last sector cut short is read as far as the file goes; past it
        // calamine reads zeros or another part of the file.
        if start < self.data.len() && !self.mini {
            return Ok(&self.data[start..]);
        }
        damaged(match self.mini {
            true => "a stream in its mini stream lies past the mini stream's end",
            false => "a sector chain goes past the end of the file (the file may be cut short)",
        })
    }

    /// The bytes of the chain from `start`, at most `len`; a chain that
    /// comes back to a sector before `len` bytes is refused (calamine
    /// would follow it round until `len`, or for ever).
    pub(super) fn chain(&self, mut id: u32, fats: &[u32], len: usize) -> Walk<Vec<u8>> {
        let mut chain = Vec::new();
        let mut seen = vec![false; self.maxid as usize + 1];
        while id != ENDOFCHAIN {
            let sector = self.get(id)?;
            if std::mem::replace(&mut seen[id as usize], true) {
                return damaged("a chain of sectors loops");
            }
            let take = sector.len().min(len - chain.len());
            chain.extend_from_slice(&sector[..take]);
            if chain.len() >= len {
                break;
            }
            id = *fats.get(id as usize).ok_or(Halt::Unread)?;
        }
        Ok(chain)
    }
}

pub(super) fn words(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|word| u32::from_le_bytes(word.try_into().expect("four bytes")))
}

/// The `Workbook` (or `Book`) stream of a compound file, as calamine's own
/// reader finds it.
pub(super) fn workbook_stream(file: &[u8]) -> Walk<Vec<u8>> {
    let header = file.get(..512).ok_or(Halt::Unread)?;
    let version = u16_at(header, 26).ok_or(Halt::Unread)?;
    let size: usize = match u16_at(header, 30) {
        Some(0x0009) => 512,
        Some(0x000C) => 4096,
        _ => return Err(Halt::Unread),
    };
    if u16_at(header, 32) != Some(0x0006) || file.len() < size {
        return Err(Halt::Unread);
    }
    let get = |at| u32_at(header, at).ok_or(Halt::Unread);
    let dir_start = get(48)?;
    let mini_fat_start = get(60)?;
    let mini_fat_len = get(64)? as usize;
    let difat_start = get(68)?;
    let maxid = file.len() / size;
    let sectors = Sectors {
        data: &file[size..],
        size,
        maxid: maxid as u32,
        mini: false,
    };
    let mut difat: Vec<u32> = words(&header[76..512]).collect();
    let mut id = difat_start;
    let mut difat_sectors = 0usize;
    while id < RESERVED_SECTORS {
        difat_sectors += 1;
        if difat_sectors > maxid.saturating_add(1) {
            return Err(Halt::Unread);
        }
        difat.extend(words(sectors.get(id)?));
        id = difat.pop().ok_or(Halt::Unread)?;
    }
    let mut fats = Vec::new();
    for id in difat.into_iter().filter(|id| *id < DIFSECT) {
        fats.extend(words(sectors.get(id)?));
    }
    let directory = sectors.chain(dir_start, &fats, usize::MAX)?;
    // Each entry: the name (UTF-16, 64 bytes), its start and its length.
    let entries: Vec<(String, u32, usize)> = directory
        .chunks_exact(128)
        .map(|entry| {
            let units = entry[..64]
                .chunks_exact(2)
                .map(|unit| u16::from_le_bytes([unit[0], unit[1]]));
            let name: String = char::decode_utf16(units)
                .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                .take_while(|c| *c != '\0')
                .collect();
            let start = u32_at(entry, 116).expect("128 bytes");
            let len = match size {
                512 => u64::from(u32_at(entry, 120).expect("128 bytes")),
                _ => u64_at(entry, 120).expect("128 bytes"),
            };
            (name, start, len as usize)
        })
        .collect();
    let Some(root) = entries.first() else {
        return Err(Halt::Unread);
    };
    if version != 3 && root.1 == ENDOFCHAIN {
        return Err(Halt::Unread);
    }
    let (mini_fats, ministream) = match mini_fat_len {
        0 => (Vec::new(), Vec::new()),
        _ => {
            let ministream = sectors.chain(root.1, &fats, root.2)?;
            let minifat =
                sectors.chain(mini_fat_start, &fats, mini_fat_len.saturating_mul(size))?;
            (words(&minifat).collect::<Vec<_>>(), ministream)
        }
    };
    let mini = Sectors {
        data: &ministream,
        size: 64,
        maxid: (maxid * 8) as u32,
        mini: true,
    };
    let stream = |name: &str| -> Walk<Vec<u8>> {
        let (_, start, len) = entries
            .iter()
            .find(|entry| entry.0.eq_ignore_ascii_case(name))
            .ok_or(Halt::Unread)?;
        match *len < 4096 {
            true => mini.chain(*start, &mini_fats, *len),
            false => sectors.chain(*start, &fats, *len),
        }
    };
    match stream("Workbook") {
        Err(Halt::Unread) => stream("Book"),
        found => found,
    }
}

/// A BIFF record and the CONTINUE records joined to it, as calamine's
/// record reader gives them.
pub(super) struct Record<'a> {
    pub(super) typ: u16,
    pub(super) data: &'a [u8],
    pub(super) cont: VecDeque<&'a [u8]>,
}

impl<'a> Record<'a> {
    pub(super) fn continue_record(&mut self) -> bool {
        match self.cont.pop_front() {
            Some(next) => {
                self.data = next;
                true
            }
            None => false,
        }
    }

    pub(super) fn skip(&mut self, mut len: usize) -> Walk<()> {
        while len > 0 {
            if self.data.is_empty() && !self.continue_record() {
                return Err(Halt::Unread);
            }
            let step = len.min(self.data.len());
            self.data = &self.data[step..];
            len -= step;
        }
        Ok(())
    }
}

/// The records of `stream`, from its start.
pub(super) struct Records<'a> {
    pub(super) stream: &'a [u8],
    /// Where `stream` starts in the whole stream, for messages.
    pub(super) offset: usize,
}

impl<'a> Records<'a> {
    pub(super) fn next(&mut self) -> Walk<Option<Record<'a>>> {
        if self.stream.len() < 4 {
            return match self.stream.is_empty() {
                true => Ok(None),
                false => Err(Halt::Unread),
            };
        }
        let typ = u16_at(self.stream, 0).expect("4 bytes");
        let len = u16_at(self.stream, 2).expect("4 bytes") as usize;
        if self.stream.len() < len + 4 {
            return Err(Halt::Unread);
        }
        let at = self.offset;
        let data = &self.stream[4..len + 4];
        self.advance(len + 4);
        let mut cont = VecDeque::new();
        while self.stream.len() > 4 && u16_at(self.stream, 0) == Some(0x003C) {
            let len = u16_at(self.stream, 2).expect("4 bytes") as usize;
            if self.stream.len() < len + 4 {
                return Err(Halt::Unread);
            }
            cont.push_back(&self.stream[4..len + 4]);
            self.advance(len + 4);
            if cont.len() > MAX_CONTINUES {
                return refused(format!(
                    "its record at byte {at} of the workbook stream is continued more than \
                     {MAX_CONTINUES} times (a damaged or forged file); open it in a spreadsheet \
                     and save it again as .xlsx, or as CSV UTF-8"
                ));
            }
        }
        Ok(Some(Record { typ, data, cont }))
    }

    pub(super) fn advance(&mut self, by: usize) {
        self.stream = &self.stream[by..];
        self.offset += by;
    }
}

/// The number of characters of each string of a shared string table
/// (SST), walked as calamine reads it.
pub(super) fn shared_lengths(record: &mut Record<'_>) -> Walk<Vec<u64>> {
    let mut lengths = Vec::new();
    record.data = record.data.get(8..).ok_or(Halt::Unread)?;
    while !record.data.is_empty() || record.continue_record() {
        if record.data.is_empty() {
            lengths.push(0);
            continue;
        }
        let cch = u16_at(record.data, 0).ok_or(Halt::Unread)? as usize;
        let flags = *record.data.get(2).ok_or(Halt::Unread)?;
        record.data = &record.data[3..];
        let mut high = flags & 0x1 != 0;
        let mut runs = 0;
        let mut extended = 0;
        if flags & 0x8 != 0 {
            runs = u16_at(record.data, 0).ok_or(Halt::Unread)? as usize;
            record.data = &record.data[2..];
        }
        if flags & 0x4 != 0 {
            extended = u32_at(record.data, 0).ok_or(Halt::Unread)? as i32 as usize;
            record.data = &record.data[4..];
        }
        let mut left = cch;
        while left > 0 {
            let width = if high { 2 } else { 1 };
            let taken = (record.data.len() / width).min(left);
            record.data = &record.data[taken * width..];
            left -= taken;
            if left > 0 {
                if !record.continue_record() {
                    return Err(Halt::Unread);
                }
                high = *record.data.first().ok_or(Halt::Unread)? & 0x1 != 0;
                record.data = &record.data[1..];
            }
        }
        record.skip(runs.saturating_mul(4))?;
        record.skip(extended)?;
        lengths.push(cch as u64);
    }
    Ok(lengths)
}

/// A sheet's name from its BoundSheet8 record, for messages: the BIFF8
/// spelling (a length, a flag for two-byte characters, the characters);
/// control characters are dropped.
pub(super) fn sheet_name(data: &[u8]) -> String {
    let count = data.get(6).copied().unwrap_or(0) as usize;
    let wide = data.get(7).is_some_and(|flags| flags & 0x1 != 0);
    let chars = data.get(8..).unwrap_or_default();
    let name: String = match wide {
        true => char::decode_utf16(
            chars
                .chunks_exact(2)
                .take(count)
                .map(|unit| u16::from_le_bytes([unit[0], unit[1]])),
        )
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect(),
        false => chars.iter().take(count).map(|b| char::from(*b)).collect(),
    };
    name.chars()
        .filter(|c| !crate::visible::hidden(*c))
        .collect()
}

/// Walks the workbook stream of an `.xls` file as calamine parses it.
pub(super) fn check_xls(file: &[u8]) -> Walk<()> {
    let stream = workbook_stream(file)?;
    let mut held = Held::new(file.len() as u64);
    // The workbook's own records, up to their end: the sheets and the
    // shared strings.
    let mut sheets = Vec::new();
    let mut shared = Vec::new();
    let mut records = Records {
        stream: &stream,
        offset: 0,
    };
    while let Some(mut record) = records.next()? {
        match record.typ {
            0x0085 => {
                let at = u32_at(record.data, 0).ok_or(Halt::Unread)? as usize;
                sheets.push((at, sheet_name(record.data)));
            }
            0x00FC => shared = shared_lengths(&mut record)?,
            0x000A => break,
            _ => {}
        }
    }
    let shared_text: u64 = shared.iter().map(|cch| cch * 3).sum();
    held.add_text(shared_text, || "its shared string table".to_string())?;
    let mut walked = 0usize;
    for (index, (at, name)) in sheets.iter().enumerate() {
        let what = || format!("its sheet {} ({name:?})", index + 1);
        let Some(sheet) = stream.get(*at..) else {
            return Err(Halt::Unread);
        };
        let mut records = Records {
            stream: sheet,
            offset: *at,
        };
        let mut reach = Reach::default();
        let mut seen_bof = false;
        let mut depth = 0usize;
        let mut formula_at = (0u32, 0u32);
        while let Some(record) = records.next()? {
            let data = record.data;
            if depth > 0 {
                match record.typ {
                    0x0809 => depth += 1,
                    0x000A => depth -= 1,
                    _ => {}
                }
                continue;
            }
            let row = u16_at(data, 0).map(u32::from);
            let column = u16_at(data, 2).map(u32::from);
            match record.typ {
                0x0809 if seen_bof => depth += 1,
                0x0809 => seen_bof = true,
                0x0200 => reserve(data, &what)?,
                0x0203 | 0x0204 | 0x00D6 | 0x0205 | 0x027E => {
                    if let (Some(row), Some(column)) = (row, column) {
                        reach.add(row, column);
                    }
                }
                0x0006 => {
                    if let (Some(row), Some(column)) = (row, column) {
                        formula_at = (row, column);
                        reach.add(row, column);
                    }
                }
                0x0207 => reach.add(formula_at.0, formula_at.1),
                0x00FD => {
                    if let (Some(row), Some(column), Some(index)) = (row, column, u32_at(data, 6)) {
                        // calamine reads a cell that names no shared string
                        // as empty, without a word.
                        let Some(cch) = shared.get(index as usize) else {
                            return refused(format!(
                                "{} has a cell, {}{}, that names shared string {index} of {} (a \
                                 damaged or forged file: it would read as empty); open it in a \
                                 spreadsheet and save it again as .xlsx, or as CSV UTF-8",
                                what(),
                                column_letters(column as usize),
                                u64::from(row) + 1,
                                shared.len()
                            ));
                        };
                        reach.add(row, column);
                        held.add_text(cch * 3, what)?;
                    }
                }
                0x00BD => {
                    if let (Some(row), Some(first), Some(last)) = (
                        row,
                        column,
                        data.len().checked_sub(2).and_then(|at| u16_at(data, at)),
                    ) {
                        let last = u32::from(last);
                        reach.add(row, first.min(last));
                        reach.add(row, first.max(last));
                    }
                }
                0x000A => break,
                _ => {}
            }
        }
        reach.hold(&mut held, &what())?;
        walked += records.offset - at;
        if walked > stream.len().saturating_mul(2) {
            return refused(format!(
                "its sheets' records overlap ({} sheets read {} from a stream of {}): a damaged \
                 or forged file; open it in a spreadsheet and save it again as .xlsx, or as CSV \
                 UTF-8",
                sheets.len(),
                show_size(walked as u64),
                show_size(stream.len() as u64),
            ));
        }
    }
    Ok(())
}

/// A sheet's size record (DIMENSIONS), by which calamine sets memory aside
/// before it reads a cell.
pub(super) fn reserve(data: &[u8], what: &dyn Fn() -> String) -> Walk<()> {
    let read16 = |at| u32::from(u16_at(data, at).expect("length checked"));
    let (first_row, past_row, mut first_column, past_column) = match data.len() {
        10 => (read16(0), read16(2), read16(4), read16(6)),
        14 | 16 => (
            u32_at(data, 0).expect("length checked"),
            u32_at(data, 4).expect("length checked"),
            read16(8),
            read16(10),
        ),
        _ => return Err(Halt::Unread),
    };
    if first_column > 0xFF || past_column < first_column {
        first_column = 0;
    }
    if past_row == 0 || past_column == 0 {
        return Ok(());
    }
    let backwards = past_row - 1 < first_row;
    let cells = u64::from((past_row - 1).wrapping_sub(first_row).wrapping_add(1))
        .saturating_mul(u64::from(past_column - first_column));
    if backwards || cells > SPAN_MAX_CELLS {
        return refused(format!(
            "{} declares a size (its DIMENSIONS record) of rows {} to {} and {} columns, {}; \
             the reader sets memory aside by it: a damaged or forged file; open it in a \
             spreadsheet and save it again as .xlsx, or as CSV UTF-8",
            what(),
            u64::from(first_row) + 1,
            past_row,
            past_column - first_column,
            match backwards {
                true => "backwards".to_string(),
                false =>
                    format!("{cells} cells, more than the {SPAN_MAX_CELLS} a sheet is read with"),
            },
        ));
    }
    Ok(())
}
