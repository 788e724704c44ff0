//! The bounds on reading a workbook stored as a ZIP archive (`.xlsx`,
//! `.xlsm`, `.xlsb`, `.ods`): before any reader inflates a part, every part
//! is inflated once here through a counting reader, so that a few
//! kilobytes that inflate to gigabytes (a "ZIP bomb") are refused with the
//! part named before memory or disk follow them.

use std::io::{self, Read, Seek};

use zip::ZipArchive;

/// What the parts of a workbook may inflate to, together: this many times
/// the file's size on disk, plus [`INFLATE_BASE`], and never more than
/// [`INFLATE_CAP`]. Spreadsheets compress their XML 5 to 20 times; 100
/// leaves room for sheets of one value repeated, and deflate's own limit
/// is about 1,000.
pub(crate) const INFLATE_MULTIPLE: u64 = 100;
pub(crate) const INFLATE_BASE: u64 = 16 << 20;
pub(crate) const INFLATE_CAP: u64 = 1 << 30;

/// The most bytes an XML part may hold between two tags: a cell holds at
/// most 32,767 characters (Excel's limit), 640 KB at most as escaped
/// UTF-8; a longer run (whitespace, one giant text) would be buffered whole
/// by the XML reader.
pub(crate) const MAX_RUN: u64 = 4 << 20;

/// The bytes the parts of a workbook of `file_len` bytes may inflate to;
/// also the most text its cells may hold together.
pub(crate) fn inflate_limit(file_len: u64) -> u64 {
    file_len
        .saturating_mul(INFLATE_MULTIPLE)
        .saturating_add(INFLATE_BASE)
        .min(INFLATE_CAP)
}

/// `123456789` as `118 MiB`, `2048` as `2.0 KiB`.
pub(crate) fn show_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["bytes", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} bytes"),
        _ if value < 10.0 => format!("{value:.1} {}", UNITS[unit]),
        _ => format!("{value:.0} {}", UNITS[unit]),
    }
}

/// Inflates every part of the archive in `file` (of `file_len` bytes) once,
/// counting, and stops at the first that takes the total past
/// [`inflate_limit`]: its declared size is checked first, and then the
/// bytes actually inflated, which a forged header cannot hide. Memory
/// stays at one buffer. The error is a sentence for the user; an archive
/// the zip reader cannot open passes (the workbook reader says why).
pub(crate) fn check_parts<R: Read + Seek>(file: R, file_len: u64) -> Result<(), String> {
    let Ok(mut archive) = ZipArchive::new(file) else {
        return Ok(());
    };
    let limit = inflate_limit(file_len);
    let over = |part: &str, size: String| {
        format!(
            "its part {part:?} inflates to {size}, past the limit for a file of {}: all its \
             parts together may hold at most {} ({INFLATE_MULTIPLE} times the file's size \
             plus {}, at most {}); a workbook compressed this far holds no table of users \
             (it may be made to exhaust memory): save the sheet again as .xlsx or CSV UTF-8",
            show_size(file_len),
            show_size(limit),
            show_size(INFLATE_BASE),
            show_size(INFLATE_CAP),
        )
    };
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let Ok(mut part) = archive.by_index(index) else {
            // A part that cannot be read is the workbook reader's to report.
            continue;
        };
        let name = part
            .name()
            .map(|name| name.into_owned())
            .unwrap_or_default();
        let room = limit - total;
        if part.size() > room {
            return Err(over(&name, show_size(part.size())));
        }
        let xml = name.ends_with(".xml") || name.ends_with(".rels");
        let mut runs = RunWatch {
            xml,
            ..RunWatch::default()
        };
        let copied = io::copy(&mut (&mut part).take(room + 1), &mut runs);
        if xml && runs.longest > MAX_RUN {
            return Err(format!(
                "its part {name:?} holds more than {} with no XML tag (from byte {}), more \
                 than any cell's text can take: it may be made to exhaust memory; save the \
                 sheet again as .xlsx or CSV UTF-8",
                show_size(MAX_RUN),
                runs.longest_at,
            ));
        }
        let inflated = match copied {
            Ok(inflated) => inflated,
            // The zip reader stops at the declared size (so does calamine's):
            // a part that goes on is forged or damaged.
            Err(error) if error.to_string().contains("declared") => {
                return Err(format!(
                    "its part {name:?} inflates past the {} bytes its headers declare: the \
                     file is damaged (or made to mislead readers); save the sheet again as \
                     .xlsx or CSV UTF-8",
                    part.size()
                ));
            }
            // A damaged part: the workbook reader says so, if it reads it.
            Err(_) => continue,
        };
        if inflated > room {
            return Err(over(&name, format!("more than {}", show_size(room))));
        }
        if xml && let Some(why) = runs.counts.refusal() {
            return Err(format!(
                "its part {name:?} {why}: a reader would set aside memory for it that the file \
                 does not hold (a damaged or forged file); save the sheet again as .xlsx or \
                 CSV UTF-8"
            ));
        }
        total += inflated;
    }
    Ok(())
}

/// Counts the bytes written and the longest run between two XML tag
/// marks (`<`, `>`).
#[derive(Default)]
struct RunWatch {
    /// An XML part: stop at the first run past [`MAX_RUN`].
    xml: bool,
    /// Numbers that readers size memory by, found in the part's XML.
    counts: Counts,
    at: u64,
    run: u64,
    run_at: u64,
    longest: u64,
    longest_at: u64,
}

impl io::Write for RunWatch {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.xml {
            self.counts.scan(buf);
        }
        let mut start = 0;
        for mark in memchr::memchr2_iter(b'<', b'>', buf) {
            self.end_run(mark - start);
            start = mark + 1;
            self.run_at = self.at + start as u64;
        }
        let rest = (buf.len() - start) as u64;
        self.run += rest;
        if self.run > self.longest {
            self.longest = self.run;
            self.longest_at = self.run_at;
        }
        self.at += buf.len() as u64;
        if self.xml && self.longest > MAX_RUN {
            return Err(io::Error::other("a run without a tag"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The numbers in a part's XML that a reader sets memory aside by, before
/// it has read what they count: `uniqueCount` of the shared strings, a
/// shared formula's `si`, an OpenDocument run of spaces (`text:c`); and
/// how many shared strings (`<si`) the part holds.
#[derive(Default)]
struct Counts {
    /// The last bytes of the previous buffer, so that a token split across
    /// two buffers is seen.
    tail: Vec<u8>,
    unique_count: u64,
    shared_index: u64,
    spaces: u64,
    strings: u64,
    bytes: u64,
    /// A cell reference or range out of any sheet (`B3:B2`, row 0 or past
    /// 1,048,576, a column past XFD), as found.
    bad_reference: Option<String>,
}

/// The rows and columns of the largest sheet (Excel's and LibreOffice's).
const MAX_ROW: u64 = 1_048_576;
const MAX_COLUMN: u64 = 16_384;

/// A cell reference (`B7`, `$B$7`) as its column and row, both from 1;
/// `None` when it is none, or out of any sheet.
fn cell_at(text: &str) -> Option<(u64, u64)> {
    let text = text.replace('$', "");
    let split = text.find(|c: char| c.is_ascii_digit())?;
    let (letters, digits) = text.split_at(split);
    if letters.is_empty() || letters.len() > 3 || !letters.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let column = letters
        .bytes()
        .fold(0u64, |n, b| n * 26 + u64::from(b - b'A' + 1));
    let row: u64 = digits.parse().ok()?;
    ((1..=MAX_COLUMN).contains(&column) && (1..=MAX_ROW).contains(&row)).then_some((column, row))
}

/// Whether a `ref` (`A1`, `A1:C9`) names cells of a sheet, in order.
fn range_ok(text: &str) -> bool {
    // A sheet's name before it (`users!B2:B3`) is not the range's.
    let text = text.rsplit_once('!').map_or(text, |(_, range)| range);
    match text.split_once(':') {
        None => cell_at(text).is_some(),
        Some((from, to)) => match (cell_at(from), cell_at(to)) {
            (Some(from), Some(to)) => from.0 <= to.0 && from.1 <= to.1,
            _ => false,
        },
    }
}

/// The most shared strings, and the largest shared formula index, a
/// workbook may have: a sheet holds at most 10,000,000 cells here.
pub(crate) const MAX_SHARED: u64 = 10_000_000;

/// The most characters a cell holds (Excel's limit): one run of spaces of
/// an OpenDocument cell can hold no more.
const MAX_CELL_CHARS: u64 = 32_767;

impl Counts {
    fn scan(&mut self, buf: &[u8]) {
        self.bytes += buf.len() as u64;
        let mut window = std::mem::take(&mut self.tail);
        let joined = window.len();
        window.extend_from_slice(&buf[..buf.len().min(64)]);
        self.scan_in(&window, joined);
        self.scan_in(buf, 0);
        let keep = buf.len().saturating_sub(32);
        self.tail = buf[keep..].to_vec();
    }

    /// The tokens of `bytes`; with `joined` (the length of the previous
    /// buffer's tail at its start) only those split across the two
    /// buffers, for the sums (the maxima may see one twice).
    fn scan_in(&mut self, bytes: &[u8], joined: usize) {
        let number = |at: usize| -> u64 {
            bytes[at..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .take(20)
                .fold(0u64, |n, b| {
                    n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
                })
        };
        let split = |at: usize, len: usize| joined == 0 || (at < joined && at + len > joined);
        let maxed = |at: usize| joined == 0 || at < joined;
        for at in memchr::memmem::find_iter(bytes, b"uniqueCount=\"") {
            if maxed(at) {
                self.unique_count = self.unique_count.max(number(at + 13));
            }
        }
        for at in memchr::memmem::find_iter(bytes, b" si=\"") {
            if maxed(at) {
                self.shared_index = self.shared_index.max(number(at + 5));
            }
        }
        for at in memchr::memmem::find_iter(bytes, b"text:c=\"") {
            let run = number(at + 8);
            if run > MAX_CELL_CHARS {
                self.spaces = u64::MAX;
            } else if split(at, 8) {
                self.spaces = self.spaces.saturating_add(run.max(1));
            }
        }
        if self.bad_reference.is_none() && joined == 0 {
            let value = |at: usize| -> Option<&str> {
                let rest = &bytes[at..bytes.len().min(at + 48)];
                let end = rest.iter().position(|b| *b == b'"')?;
                std::str::from_utf8(&rest[..end]).ok()
            };
            for at in memchr::memmem::find_iter(bytes, b" ref=\"") {
                if let Some(text) = value(at + 6)
                    && !text.contains(' ')
                    && !range_ok(text)
                {
                    self.bad_reference = Some(format!("a range {text:?}"));
                }
            }
            for at in memchr::memmem::find_iter(bytes, b"<row r=\"") {
                if let Some(text) = value(at + 8)
                    && !text
                        .parse::<u64>()
                        .is_ok_and(|row| (1..=MAX_ROW).contains(&row))
                {
                    self.bad_reference = Some(format!("a row {text:?}"));
                }
            }
        }
        for at in memchr::memmem::find_iter(bytes, b"<si") {
            let next = bytes.get(at + 3);
            if split(at, 4) && matches!(next, Some(b'>' | b'/' | b' ' | b'\t' | b'\n' | b'\r')) {
                self.strings += 1;
            }
        }
    }

    fn refusal(&self) -> Option<String> {
        if let Some(reference) = &self.bad_reference {
            return Some(format!(
                "names {reference}, out of any sheet's {MAX_ROW} rows and {MAX_COLUMN} columns \
                 (or backwards)"
            ));
        }
        // Each string needs at least `<si/>`: 5 bytes.
        if self.unique_count > MAX_SHARED || self.unique_count > self.bytes / 5 + 1 {
            return Some(format!(
                "declares {} shared strings (uniqueCount), more than it holds or than the {} \
                 a workbook may have here",
                self.unique_count, MAX_SHARED
            ));
        }
        if self.strings > MAX_SHARED {
            return Some(format!(
                "holds more than {MAX_SHARED} shared strings, more than a sheet of at most \
                 {MAX_SHARED} cells needs"
            ));
        }
        if self.shared_index > MAX_SHARED {
            return Some(format!(
                "numbers a shared formula {} (si), past the {MAX_SHARED} a sheet may have",
                self.shared_index
            ));
        }
        if self.spaces > MAX_SHARED.saturating_mul(10) {
            return Some(format!(
                "holds runs of spaces (text:c) of more than {MAX_CELL_CHARS} characters in a \
                 cell, or more than {} in all",
                MAX_SHARED * 10
            ));
        }
        None
    }
}

impl RunWatch {
    fn end_run(&mut self, tail: usize) {
        self.run += tail as u64;
        if self.run > self.longest {
            self.longest = self.run;
            self.longest_at = self.run_at;
        }
        self.run = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_a_person_says_them() {
        let cases = [
            (512, "512 bytes"),
            (2048, "2.0 KiB"),
            (116_000_000, "111 MiB"),
            (1 << 30, "1.0 GiB"),
        ];
        for (bytes, want) in cases {
            assert_eq!(show_size(bytes), want);
        }
    }

    #[test]
    fn the_limit_grows_with_the_file_up_to_the_cap() {
        assert_eq!(inflate_limit(0), INFLATE_BASE);
        assert_eq!(inflate_limit(1_000_000), 100_000_000 + INFLATE_BASE);
        assert_eq!(inflate_limit(1 << 40), INFLATE_CAP);
    }

    fn archive(parts: &[(&str, &[u8], usize)]) -> Vec<u8> {
        let mut out = io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        for (name, chunk, times) in parts {
            zip.start_file(*name, options).unwrap();
            for _ in 0..*times {
                std::io::Write::write_all(&mut zip, chunk).unwrap();
            }
        }
        zip.finish().unwrap();
        out.into_inner()
    }

    /// A part whose headers declare 1,000 bytes and that inflates to 40
    /// MiB: the zip reader stops at the declared size, and the part is
    /// refused by name.
    #[test]
    fn a_forged_declared_size_does_not_hide_a_bomb() {
        let chunk = [b'a'; 1 << 16];
        let forge = |bytes: &mut Vec<u8>, signature: &[u8], offset: usize| {
            let at = bytes
                .windows(4)
                .position(|w| w == signature)
                .expect("a header");
            bytes[at + offset..at + offset + 4].copy_from_slice(&1000u32.to_le_bytes());
        };
        // Without large_file(true): the sizes are in the headers' own fields.
        let mut plain = io::Cursor::new(Vec::new());
        {
            let mut zip = zip::ZipWriter::new(&mut plain);
            let options = zip::write::SimpleFileOptions::default();
            zip.start_file("xl/sharedStrings.xml", options).unwrap();
            for _ in 0..640 {
                std::io::Write::write_all(&mut zip, &chunk).unwrap();
            }
            zip.finish().unwrap();
        }
        let mut bytes = plain.into_inner();
        forge(&mut bytes, b"PK\x03\x04", 22);
        forge(&mut bytes, b"PK\x01\x02", 24);
        let error = check_parts(io::Cursor::new(&bytes), bytes.len() as u64).unwrap_err();
        assert!(
            error.contains("\"xl/sharedStrings.xml\" inflates past the 1000 bytes its headers"),
            "{error}"
        );
    }

    #[test]
    fn a_long_run_without_a_tag_is_refused() {
        let spaces = [b' '; 1 << 16];
        let mut out = io::Cursor::new(Vec::new());
        {
            let mut zip = zip::ZipWriter::new(&mut out);
            let options = zip::write::SimpleFileOptions::default();
            zip.start_file("xl/worksheets/sheet1.xml", options).unwrap();
            std::io::Write::write_all(&mut zip, b"<sheet><a>").unwrap();
            for _ in 0..80 {
                std::io::Write::write_all(&mut zip, &spaces).unwrap();
            }
            std::io::Write::write_all(&mut zip, b"</a></sheet>").unwrap();
            zip.finish().unwrap();
        }
        let bytes = out.into_inner();
        let error = check_parts(io::Cursor::new(&bytes), 100 << 20).unwrap_err();
        assert!(
            error.contains("holds more than 4.0 MiB with no XML tag (from byte 10)"),
            "{error}"
        );
    }

    #[test]
    fn a_part_that_inflates_past_the_limit_is_named() {
        let small = archive(&[("xl/workbook.xml", b"<workbook/>", 1)]);
        assert_eq!(
            check_parts(io::Cursor::new(&small), small.len() as u64),
            Ok(())
        );
        let zeros = [b' '; 1 << 16];
        let bomb = archive(&[
            ("xl/workbook.xml", b"<workbook/>", 1),
            ("xl/sharedStrings.xml", &zeros, 600),
        ]);
        assert!(bomb.len() < 100_000, "{}", bomb.len());
        let error = check_parts(io::Cursor::new(&bomb), bomb.len() as u64).unwrap_err();
        assert!(error.contains("\"xl/sharedStrings.xml\""), "{error}");
        assert!(error.contains("100 times"), "{error}");
    }
}
