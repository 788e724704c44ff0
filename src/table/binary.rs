//! The bounds on reading a binary workbook (`.xls`, `.xlsb`), checked
//! before calamine reads it.
//!
//! calamine holds each sheet of these formats as the whole rectangle its
//! cells span, sets memory aside by the size a sheet's record declares, and
//! copies a shared string into every cell that names it; a forged file of a
//! few kilobytes can so ask for terabytes, and the process aborts (a failed
//! allocation is not a panic that can be caught). Its compound-file reader
//! follows a sector chain that loops for as long as the stream's declared
//! length, and for ever for the directory.
//!
//! So this module walks the records calamine will walk, the way it walks
//! them (the compound file's sector chains; the BIFF records with the
//! CONTINUE records it joins to them; the `.xlsb` records read into one
//! buffer that keeps a longer record's bytes, which calamine reads strings
//! from), adds up what calamine would hold, and refuses the file with the
//! sheet, cell or record named before calamine is called. Where calamine
//! would itself stop with an error, the walk stops too and lets it say why.

use std::collections::VecDeque;
use std::io::{self, BufReader, Read};

use super::layout::SPAN_MAX_CELLS;
use super::sheet::column_letters;
use super::zipped::{inflate_limit, show_size};

/// The most CONTINUE records one BIFF record may have joined to it.
/// calamine takes them from the front of a list one by one (quadratic in
/// their number); Excel writes one for each 8,224 bytes of a record, so
/// this is 160 MB of one record (the shared strings).
pub const MAX_CONTINUES: usize = 20_000;

/// Why the walk ended early.
enum Halt {
    /// calamine stops here too, with its own error (or a panic, which is
    /// caught): nothing to guard past this point.
    Unread,
    /// The file is refused: a sentence for the user.
    Refused(String),
}

type Walk<T> = Result<T, Halt>;

fn refused<T>(message: String) -> Walk<T> {
    Err(Halt::Refused(message))
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// What calamine would hold for the sheets walked so far.
struct Held {
    /// The text budget: [`inflate_limit`] of the file's size, as for the
    /// cells of every workbook.
    text_limit: u64,
    file_len: u64,
    text: u64,
    /// Cells of the rectangles held at once.
    span: u64,
}

impl Held {
    fn new(file_len: u64) -> Held {
        Held {
            text_limit: inflate_limit(file_len),
            file_len,
            text: 0,
            span: 0,
        }
    }

    /// `bytes` more of text copied, by `what` (`its sheet "users"`).
    fn add_text(&mut self, bytes: u64, what: impl FnOnce() -> String) -> Walk<()> {
        self.text = self.text.saturating_add(bytes);
        if self.text > self.text_limit {
            return refused(format!(
                "{} repeats its text to more than {} in all, the limit for a file of {} (100 \
                 times its size plus 16 MiB, at most 1 GiB): a workbook of users holds no such \
                 text (it may be made to exhaust memory); save the sheet again as .xlsx or CSV \
                 UTF-8",
                what(),
                show_size(self.text_limit),
                show_size(self.file_len),
            ));
        }
        Ok(())
    }
}

/// The rows and columns a sheet's cells reach, 0-based.
#[derive(Default)]
struct Reach {
    rows: Option<(u32, u32)>,
    columns: Option<(u32, u32)>,
}

impl Reach {
    fn add(&mut self, row: u32, column: u32) {
        let widen = |range: &mut Option<(u32, u32)>, at: u32| {
            *range = Some(match *range {
                None => (at, at),
                Some((low, high)) => (low.min(at), high.max(at)),
            });
        };
        widen(&mut self.rows, row);
        widen(&mut self.columns, column);
    }

    /// How many cells the rectangle spans.
    fn cells(&self) -> u64 {
        match (self.rows, self.columns) {
            (Some((top, bottom)), Some((left, right))) => {
                (u64::from(bottom - top) + 1).saturating_mul(u64::from(right - left) + 1)
            }
            _ => 0,
        }
    }

    /// Adds the rectangle to `held`, refusing past [`SPAN_MAX_CELLS`].
    fn hold(&self, held: &mut Held, sheet: &str) -> Walk<()> {
        let cells = self.cells();
        held.span = held.span.saturating_add(cells);
        if held.span <= SPAN_MAX_CELLS {
            return Ok(());
        }
        let (Some((top, bottom)), Some((left, right))) = (self.rows, self.columns) else {
            return Ok(());
        };
        refused(format!(
            "{sheet} spans {cells} cells, from row {} to row {} and from column {} to column {}, \
             more than the {SPAN_MAX_CELLS} such a sheet is read with (the reader holds the whole \
             rectangle; the sheets of an .xls file count together): a stray cell far below or \
             right of the table makes it so; delete it and save the file, or save the sheet as \
             .xlsx, which is read cell by cell",
            top + 1,
            bottom + 1,
            column_letters(left as usize),
            column_letters(right as usize),
        ))
    }
}

/// Checks a workbook's bytes before calamine reads them: an `.xls`
/// (compound file) or an `.xlsb` (a ZIP archive with binary parts; other
/// archives pass). The error is a sentence for the user.
pub fn check(bytes: &[u8]) -> Result<(), String> {
    let walked = if bytes.starts_with(super::sheet::OLE_MAGIC) {
        check_xls(bytes)
    } else if bytes.starts_with(super::sheet::ZIP_MAGIC) {
        check_xlsb(bytes)
    } else {
        Ok(())
    };
    match walked {
        Ok(()) | Err(Halt::Unread) => Ok(()),
        Err(Halt::Refused(message)) => Err(message),
    }
}

// ---- The compound file (`.xls`) ----

const RESERVED_SECTORS: u32 = 0xFFFF_FFFA;
const DIFSECT: u32 = 0xFFFF_FFFC;
const ENDOFCHAIN: u32 = 0xFFFF_FFFE;

/// The sectors of a compound file, as calamine reads them: sector `id`
/// starts `id` sectors after the header.
struct Sectors<'a> {
    data: &'a [u8],
    size: usize,
    maxid: u32,
    /// The mini sectors only: whether past `data` calamine would read
    /// whatever follows in the file instead.
    mini: bool,
}

fn damaged<T>(what: &str) -> Walk<T> {
    refused(format!(
        "its container (an OLE compound file) is damaged: {what}; a file saved by a \
         spreadsheet never is: open it in a spreadsheet and save it again as .xlsx, or as CSV \
         UTF-8"
    ))
}

impl<'a> Sectors<'a> {
    fn get(&self, id: u32) -> Walk<&'a [u8]> {
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
    fn chain(&self, mut id: u32, fats: &[u32], len: usize) -> Walk<Vec<u8>> {
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

fn words(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|word| u32::from_le_bytes(word.try_into().expect("four bytes")))
}

/// The `Workbook` (or `Book`) stream of a compound file, as calamine's own
/// reader finds it.
fn workbook_stream(file: &[u8]) -> Walk<Vec<u8>> {
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
struct Record<'a> {
    typ: u16,
    data: &'a [u8],
    cont: VecDeque<&'a [u8]>,
}

impl<'a> Record<'a> {
    fn continue_record(&mut self) -> bool {
        match self.cont.pop_front() {
            Some(next) => {
                self.data = next;
                true
            }
            None => false,
        }
    }

    fn skip(&mut self, mut len: usize) -> Walk<()> {
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
struct Records<'a> {
    stream: &'a [u8],
    /// Where `stream` starts in the whole stream, for messages.
    offset: usize,
}

impl<'a> Records<'a> {
    fn next(&mut self) -> Walk<Option<Record<'a>>> {
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

    fn advance(&mut self, by: usize) {
        self.stream = &self.stream[by..];
        self.offset += by;
    }
}

/// The number of characters of each string of a shared string table
/// (SST), walked as calamine reads it.
fn shared_lengths(record: &mut Record<'_>) -> Walk<Vec<u64>> {
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
fn sheet_name(data: &[u8]) -> String {
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
fn check_xls(file: &[u8]) -> Walk<()> {
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
fn reserve(data: &[u8], what: &dyn Fn() -> String) -> Walk<()> {
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

// ---- The binary workbook (`.xlsb`) ----

/// The last row and column of any sheet (0-based): Excel's limits.
const XLSB_LAST_ROW: u32 = 1_048_575;
const XLSB_LAST_COLUMN: u32 = 16_383;

/// Reads `.xlsb` records as calamine does: into one buffer that grows to
/// the longest record and is never cleared, so a short record leaves a
/// longer one's bytes behind it, and calamine reads strings from them.
struct BinRecords<R: Read> {
    reader: R,
    /// Bytes of the part not yet read.
    left: u64,
    buf: Vec<u8>,
    part: String,
}

impl<R: Read> BinRecords<R> {
    fn byte(&mut self) -> Walk<u8> {
        let mut one = [0u8];
        self.reader.read_exact(&mut one).map_err(|_| Halt::Unread)?;
        self.left = self.left.saturating_sub(1);
        Ok(one[0])
    }

    fn read_type(&mut self) -> Walk<u16> {
        let first = self.byte()?;
        Ok(match first & 0x80 {
            0 => u16::from(first),
            _ => u16::from(first & 0x7F) + (u16::from(self.byte()? & 0x7F) << 7),
        })
    }

    fn fill_buffer(&mut self) -> Walk<usize> {
        let mut byte = self.byte()?;
        let mut len = (byte & 0x7F) as usize;
        for shift in 1..4 {
            if byte & 0x80 == 0 {
                break;
            }
            byte = self.byte()?;
            len += ((byte & 0x7F) as usize) << (7 * shift);
        }
        if len as u64 > self.left {
            return refused(format!(
                "its part {:?} holds a record of {} with only {} left in the part (a damaged or \
                 forged file; the reader would set that memory aside first); open it in a \
                 spreadsheet and save it again as .xlsx, or as CSV UTF-8",
                self.part,
                show_size(len as u64),
                show_size(self.left),
            ));
        }
        if self.buf.len() < len {
            self.buf.resize(len, 0);
        }
        self.reader
            .read_exact(&mut self.buf[..len])
            .map_err(|_| Halt::Unread)?;
        self.left -= len as u64;
        Ok(len)
    }

    fn next_skip_blocks(&mut self, wanted: u16, bounds: &[(u16, Option<u16>)]) -> Walk<()> {
        loop {
            let typ = self.read_type()?;
            self.fill_buffer()?;
            if typ == wanted {
                return Ok(());
            }
            if let Some(end) = bounds.iter().find(|b| b.0 == typ).and_then(|b| b.1) {
                while self.read_type()? != end {
                    self.fill_buffer()?;
                }
                self.fill_buffer()?;
            }
        }
    }

    /// The length in UTF-16 units of the wide string calamine reads at
    /// `at` of the buffer, if it reads one.
    fn wide_len(&self, at: usize) -> Option<u64> {
        let rest = self.buf.get(at..)?;
        let len = u64::from(u32_at(rest, 0)?);
        (rest.len() as u64 >= 4 + len * 2).then_some(len)
    }
}

type Part<'a, 'z> = BinRecords<BufReader<zip::read::ZipFile<'a, io::Cursor<&'z [u8]>>>>;

/// The records of the part `name`, if the archive has it.
fn open<'a, 'z>(
    archive: &'a mut zip::ZipArchive<io::Cursor<&'z [u8]>>,
    name: &str,
) -> Option<Part<'a, 'z>> {
    let part = archive.by_name(name).ok()?;
    let left = part.size();
    Some(BinRecords {
        reader: BufReader::new(part),
        left,
        buf: Vec::new(),
        part: name.to_string(),
    })
}

fn check_xlsb(bytes: &[u8]) -> Walk<()> {
    let Ok(mut archive) = zip::ZipArchive::new(io::Cursor::new(bytes)) else {
        return Ok(());
    };
    let names: Vec<String> = archive
        .file_names()
        .filter_map(|name| name.ok().map(|name| name.into_owned()))
        .collect();
    if !names
        .iter()
        .any(|name| name.eq_ignore_ascii_case("xl/workbook.bin"))
    {
        return Ok(());
    }
    let mut held = Held::new(bytes.len() as u64);
    // The shared strings, which calamine reads when it opens the file.
    let mut shared = Vec::new();
    if let Some(name) = names
        .iter()
        .find(|name| name.eq_ignore_ascii_case("xl/sharedStrings.bin"))
        && let Some(mut records) = open(&mut archive, name)
    {
        match xlsb_shared(&mut records, &mut shared) {
            Err(Halt::Unread) => {}
            walked => walked?,
        }
        let text: u64 = shared.iter().map(|units| units * 3).sum();
        held.add_text(text, || format!("its part {name:?}"))?;
    }
    // Every other binary part read as a sheet, as calamine reads one;
    // one sheet is held at a time.
    for name in &names {
        let lower = name.to_ascii_lowercase();
        if !lower.ends_with(".bin") || lower == "xl/sharedstrings.bin" {
            continue;
        }
        let Some(mut records) = open(&mut archive, name) else {
            continue;
        };
        let mut reach = Reach::default();
        match xlsb_sheet(&mut records, &shared, &mut reach, &mut held) {
            Err(Halt::Unread) | Ok(()) => {}
            Err(refusal) => return Err(refusal),
        }
        held.span = 0;
        reach.hold(&mut held, &format!("its part {name:?}"))?;
    }
    Ok(())
}

fn xlsb_shared<R: Read>(records: &mut BinRecords<R>, shared: &mut Vec<u64>) -> Walk<()> {
    records.next_skip_blocks(0x009F, &[])?;
    let count = u32_at(&records.buf, 4).ok_or(Halt::Unread)?;
    for _ in 0..count {
        records.next_skip_blocks(0x0013, &[(0x0023, Some(0x0024))])?;
        shared.push(records.wide_len(1).ok_or(Halt::Unread)?);
    }
    Ok(())
}

fn xlsb_sheet<R: Read>(
    records: &mut BinRecords<R>,
    shared: &[u64],
    reach: &mut Reach,
    held: &mut Held,
) -> Walk<()> {
    records.next_skip_blocks(0x0094, &[(0x0081, None), (0x0093, None)])?;
    records.next_skip_blocks(
        0x0091,
        &[
            (0x0085, Some(0x0086)),
            (0x0025, Some(0x0026)),
            (0x01E5, None),
            (0x0186, Some(0x0187)),
        ],
    )?;
    let part = records.part.clone();
    let what = || format!("its part {part:?}");
    let mut row = 0u32;
    loop {
        let typ = records.read_type()?;
        records.fill_buffer()?;
        let text = match typ {
            0x0000 => {
                row = u32_at(&records.buf, 0).ok_or(Halt::Unread)?;
                if row > XLSB_LAST_ROW {
                    return refused(format!(
                        "{} names row {}, past any sheet's 1048576 rows (the reader would drop \
                         every row after it): a damaged or forged file; open it in a \
                         spreadsheet and save it again as .xlsx, or as CSV UTF-8",
                        what(),
                        u64::from(row) + 1
                    ));
                }
                continue;
            }
            0x0092 => return Ok(()),
            0x0002..=0x0005 | 0x0009 | 0x000A => 0,
            0x0006 | 0x0008 => records.wide_len(8).ok_or(Halt::Unread)? * 3,
            0x0007 => {
                let index = u32_at(&records.buf, 8).ok_or(Halt::Unread)?;
                shared.get(index as usize).ok_or(Halt::Unread)? * 3
            }
            _ => continue,
        };
        let column = u32_at(&records.buf, 0).ok_or(Halt::Unread)?;
        if column > XLSB_LAST_COLUMN {
            return refused(format!(
                "{} names a cell in column {} of row {}, past any sheet's 16384 columns (XFD): \
                 a damaged or forged file; open it in a spreadsheet and save it again as .xlsx, \
                 or as CSV UTF-8",
                what(),
                u64::from(column) + 1,
                u64::from(row) + 1
            ));
        }
        reach.add(row, column);
        held.add_text(text, what)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(typ: u16, data: &[u8]) -> Vec<u8> {
        let mut out = typ.to_le_bytes().to_vec();
        out.extend((data.len() as u16).to_le_bytes());
        out.extend_from_slice(data);
        out
    }

    fn refusal<T>(walked: Walk<T>) -> String {
        match walked {
            Err(Halt::Refused(message)) => message,
            Err(Halt::Unread) => panic!("not refused: left to calamine"),
            Ok(_) => panic!("not refused"),
        }
    }

    #[test]
    fn continue_records_are_joined_and_capped() {
        let mut stream = record(0x00FC, b"12345678");
        for _ in 0..3 {
            stream.extend(record(0x003C, b"ab"));
        }
        stream.extend(record(0x000A, b""));
        let mut records = Records {
            stream: &stream,
            offset: 0,
        };
        let Ok(Some(first)) = records.next() else {
            panic!("a record")
        };
        assert_eq!((first.typ, first.cont.len()), (0x00FC, 3));
        assert!(matches!(
            records.next(),
            Ok(Some(Record { typ: 0x000A, .. }))
        ));
        assert!(matches!(records.next(), Ok(None)));

        let mut stream = record(0x00FC, b"12345678");
        for _ in 0..=MAX_CONTINUES {
            stream.extend(record(0x003C, b"a"));
        }
        let mut records = Records {
            stream: &stream,
            offset: 0,
        };
        assert!(refusal(records.next()).contains("continued more than 20000 times"));
    }

    /// A string of the shared string table that goes on in a CONTINUE
    /// record, which starts with its own flag for two-byte characters.
    #[test]
    fn shared_strings_are_walked_across_continue_records() {
        // Two strings: "abc" (one byte a character), then 4 characters of
        // which 2 are in the record and 2, two bytes each, in a CONTINUE.
        let mut data = vec![0; 8];
        data.extend([3, 0, 0]);
        data.extend(b"abc");
        data.extend([4, 0, 0]);
        data.extend(b"de");
        let more = [1u8, b'f', 0, b'g', 0];
        let mut record = Record {
            typ: 0x00FC,
            data: &data,
            cont: VecDeque::from([&more[..]]),
        };
        assert_eq!(shared_lengths(&mut record).ok(), Some(vec![3, 4]));
    }

    #[test]
    fn a_size_record_is_refused_when_backwards_or_too_large() {
        let what = || "its sheet 1 (\"users\")".to_string();
        let size = |first: u32, past: u32, columns: u16| {
            let mut data = first.to_le_bytes().to_vec();
            data.extend(past.to_le_bytes());
            data.extend(0u16.to_le_bytes());
            data.extend(columns.to_le_bytes());
            data.extend([0, 0]);
            data
        };
        assert!(reserve(&size(0, 65_536, 8), &what).is_ok());
        assert!(reserve(&size(0, 0, 0), &what).is_ok());
        assert!(refusal(reserve(&size(10, 5, 8), &what)).contains("of rows 11 to 5"));
        assert!(refusal(reserve(&size(0, 65_536, 256), &what)).contains("16777216 cells"));
    }

    #[test]
    fn a_rectangle_is_the_cells_between_the_far_corners() {
        let mut reach = Reach::default();
        assert_eq!(reach.cells(), 0);
        reach.add(4, 2);
        reach.add(1, 7);
        assert_eq!(reach.cells(), 4 * 6);
        let mut held = Held::new(1000);
        assert!(reach.hold(&mut held, "its sheet").is_ok());
        reach.add(65_535, 255);
        let message = refusal(reach.hold(&mut held, "its sheet"));
        assert!(message.contains("from row 2 to row 65536 and from column C to column IV"));
    }
}
