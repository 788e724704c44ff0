//! `.xlsb`: the binary parts of the archive read record by record as
//! calamine reads them (one buffer that keeps a longer record's bytes).

use std::io::{self, BufReader, Read};

use super::super::zipped::show_size;

use super::*;

/// The last row and column of any sheet (0-based): Excel's limits.
pub(super) const XLSB_LAST_ROW: u32 = 1_048_575;
pub(super) const XLSB_LAST_COLUMN: u32 = 16_383;

/// Reads `.xlsb` records as calamine does: into one buffer that grows to
/// the longest record and is never cleared, so a short record leaves a
/// longer one's bytes behind it, and calamine reads strings from them.
pub(super) struct BinRecords<R: Read> {
    pub(super) reader: R,
    /// Bytes of the part not yet read.
    pub(super) left: u64,
    pub(super) buf: Vec<u8>,
    pub(super) part: String,
}

impl<R: Read> BinRecords<R> {
    pub(super) fn byte(&mut self) -> Walk<u8> {
        let mut one = [0u8];
        self.reader.read_exact(&mut one).map_err(|_| Halt::Unread)?;
        self.left = self.left.saturating_sub(1);
        Ok(one[0])
    }

    pub(super) fn read_type(&mut self) -> Walk<u16> {
        let first = self.byte()?;
        Ok(match first & 0x80 {
            0 => u16::from(first),
            _ => u16::from(first & 0x7F) + (u16::from(self.byte()? & 0x7F) << 7),
        })
    }

    pub(super) fn fill_buffer(&mut self) -> Walk<usize> {
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

    pub(super) fn next_skip_blocks(
        &mut self,
        wanted: u16,
        bounds: &[(u16, Option<u16>)],
    ) -> Walk<()> {
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
    pub(super) fn wide_len(&self, at: usize) -> Option<u64> {
        let rest = self.buf.get(at..)?;
        let len = u64::from(u32_at(rest, 0)?);
        (rest.len() as u64 >= 4 + len * 2).then_some(len)
    }
}

pub(super) type Part<'a, 'z> = BinRecords<BufReader<zip::read::ZipFile<'a, io::Cursor<&'z [u8]>>>>;

/// The records of the part `name`, if the archive has it.
pub(super) fn open<'a, 'z>(
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

pub(super) fn check_xlsb(bytes: &[u8]) -> Walk<()> {
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

pub(super) fn xlsb_shared<R: Read>(records: &mut BinRecords<R>, shared: &mut Vec<u64>) -> Walk<()> {
    records.next_skip_blocks(0x009F, &[])?;
    let count = u32_at(&records.buf, 4).ok_or(Halt::Unread)?;
    for _ in 0..count {
        records.next_skip_blocks(0x0013, &[(0x0023, Some(0x0024))])?;
        shared.push(records.wide_len(1).ok_or(Halt::Unread)?);
    }
    Ok(())
}

pub(super) fn xlsb_sheet<R: Read>(
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
