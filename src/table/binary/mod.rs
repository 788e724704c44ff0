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

use super::layout::SPAN_MAX_CELLS;
use super::sheet::column_letters;
use super::zipped::{inflate_limit, show_size};

mod xls;
mod xlsb;

use xls::*;
use xlsb::*;

/// The most CONTINUE records one BIFF record may have joined to it.
/// calamine takes them from the front of a list one by one (quadratic in
/// their number); Excel writes one for each 8,224 bytes of a record, so
/// this is 160 MB of one record (the shared strings).
pub(crate) const MAX_CONTINUES: usize = 20_000;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

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
