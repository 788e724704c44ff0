//! The input's bytes before they are records: the first bytes peeked (to
//! tell a workbook and guess the delimiter), the reader that notices the
//! end of the file, the bound on one line ([`MAX_LINE_BYTES`], following
//! CSV quoting), and old Mac line ends read as line feeds.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// The first 64 KiB of `reader`, and the reader to go on from.
pub(super) fn peek<R: Read>(mut reader: R) -> io::Result<(Vec<u8>, R)> {
    let mut start = Vec::with_capacity(1 << 16);
    (&mut reader).take(1 << 16).read_to_end(&mut start)?;
    Ok((start, reader))
}

/// Comma unless the first line holds no comma but a semicolon (Excel in
/// many European locales) or a tab (Excel's "Unicode text").
pub(super) fn sniff_delimiter(start: &[u8]) -> u8 {
    let first_line = start.split(|&b| b == b'\n').next().unwrap_or_default();
    let has = |byte| first_line.contains(&byte);
    if has(b',') {
        b','
    } else if has(b';') {
        b';'
    } else if has(b'\t') {
        b'\t'
    } else {
        b','
    }
}

/// Remembers whether the input has ended and its last byte: a last record
/// without a line break after it ends one line earlier than the reader's
/// line count suggests.
#[derive(Clone, Default)]
pub(super) struct EndWatch(pub(super) Arc<AtomicU32>);

impl EndWatch {
    /// Bits 0-7: the last byte read; 16-23: the last byte that is not a
    /// line break (CR or LF).
    const EOF: u32 = 1 << 8;
    const SOME: u32 = 1 << 9;
    const SOME_TEXT: u32 = 1 << 24;

    /// Whether the last record was ended by the end of the input rather than
    /// by a line break.
    pub(super) fn ended_without_newline(&self) -> bool {
        let state = self.0.load(Ordering::Relaxed);
        state & Self::EOF != 0 && !(state & Self::SOME != 0 && state as u8 == b'\n')
    }

    pub(super) fn at_eof(&self) -> bool {
        self.0.load(Ordering::Relaxed) & Self::EOF != 0
    }

    /// The last byte of the input that is not a line break.
    pub(super) fn last_text_byte(&self) -> Option<u8> {
        let state = self.0.load(Ordering::Relaxed);
        (state & Self::SOME_TEXT != 0).then_some((state >> 16) as u8)
    }
}

pub(super) struct WatchedRead<R> {
    pub(super) inner: R,
    pub(super) end: EndWatch,
}

impl<R: Read> Read for WatchedRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            let before = self.end.0.load(Ordering::Relaxed);
            let text = match buf[..n].iter().rposition(|b| !matches!(b, b'\n' | b'\r')) {
                Some(at) => (u32::from(buf[at]) << 16) | EndWatch::SOME_TEXT,
                None => before & (0xFF << 16 | EndWatch::SOME_TEXT),
            };
            let last = u32::from(buf[n - 1]) | EndWatch::SOME | text;
            self.end.0.store(last, Ordering::Relaxed);
        } else if !buf.is_empty() {
            self.end.0.fetch_or(EndWatch::EOF, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// The most bytes a line of the input may hold: a row of the widest
/// sheet with every cell at its longest is far below it, and the CSV
/// reader buffers a line whole (a 1 GB line would be held in memory).
pub(crate) const MAX_LINE_BYTES: u64 = 4 << 20;

/// Stops the reading at a record longer than [`MAX_LINE_BYTES`], with an
/// error that names its line: a long line, or a quote opened and never
/// closed (the CSV reader would hold the rest of the file as one cell).
/// It follows the reader's quoting: a `"` opens a quoted cell only at the
/// cell's start, `""` inside one is a quote, and only a line break outside
/// one ends the record.
pub(super) struct LineCap<R> {
    inner: R,
    delimiter: u8,
    since_end: u64,
    line: u64,
    record_line: u64,
    quote: Quote,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Quote {
    CellStart,
    Plain,
    Quoted,
    /// A `"` inside a quoted cell: its end, or the first of `""`.
    ClosingOrDoubled,
}

impl<R> LineCap<R> {
    pub(super) fn new(inner: R, delimiter: u8) -> LineCap<R> {
        LineCap {
            inner,
            delimiter,
            since_end: 0,
            line: 1,
            record_line: 1,
            quote: Quote::CellStart,
        }
    }
}

impl<R> LineCap<R> {
    /// One byte through the quoting state machine.
    fn step(&mut self, byte: u8) {
        self.since_end += 1;
        self.quote = match (self.quote, byte) {
            (Quote::Quoted, b'\n') => {
                self.line += 1;
                Quote::Quoted
            }
            (_, b'\n') => {
                self.line += 1;
                self.record_line = self.line;
                self.since_end = 0;
                Quote::CellStart
            }
            (Quote::Quoted, b'"') => Quote::ClosingOrDoubled,
            (Quote::Quoted, _) => Quote::Quoted,
            (Quote::ClosingOrDoubled, b'"') => Quote::Quoted,
            (_, byte) if byte == self.delimiter => Quote::CellStart,
            (Quote::CellStart, b'"') => Quote::Quoted,
            _ => Quote::Plain,
        };
    }

    /// Takes the bytes from the start of `bytes` that need no look at each
    /// byte, and says how many it took: all up to the next line break or
    /// quote (outside a quoted cell, the state after them follows from
    /// their last byte: a delimiter starts a cell). Each call looks only as
    /// far as it takes, so a line of quotes costs no more than one without.
    /// (The reader's every byte went through [`LineCap::step`]: a tenth of
    /// the first pass's time.)
    fn skip(&mut self, bytes: &[u8]) -> usize {
        match self.quote {
            Quote::Plain | Quote::CellStart => {
                let upto = memchr::memchr2(b'\n', b'"', bytes).unwrap_or(bytes.len());
                let Some(&last) = bytes[..upto].last() else {
                    return 0;
                };
                self.since_end += upto as u64;
                self.quote = match last == self.delimiter {
                    true => Quote::CellStart,
                    false => Quote::Plain,
                };
                upto
            }
            Quote::Quoted => {
                let skipped = memchr::memchr2(b'\n', b'"', bytes).unwrap_or(bytes.len());
                self.since_end += skipped as u64;
                skipped
            }
            Quote::ClosingOrDoubled => 0,
        }
    }

    fn too_long(&self) -> io::Error {
        // A quoted cell that has taken in line breaks is one never closed;
        // on one line, it is only a long line (the quotes may all close).
        let spans_lines = self.line > self.record_line;
        let why = match self.quote {
            Quote::Quoted | Quote::ClosingOrDoubled if spans_lines => format!(
                "a quote opened in line {} is not closed within {} MiB (the rest of the \
                 file would be one cell); close the quote (or remove it) and check that \
                 row",
                self.record_line,
                MAX_LINE_BYTES >> 20
            ),
            _ => format!(
                "line {} is longer than {} MiB, more than any row of users holds (not a \
                 table?); check the file",
                self.line,
                MAX_LINE_BYTES >> 20
            ),
        };
        io::Error::new(io::ErrorKind::InvalidData, why)
    }
}

impl<R: Read> Read for LineCap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let skipped = self.skip(rest);
            rest = &rest[skipped..];
            if let Some((&byte, after)) = rest.split_first() {
                self.step(byte);
                rest = after;
            }
            if self.since_end > MAX_LINE_BYTES {
                return Err(self.too_long());
            }
        }
        Ok(n)
    }
}

/// Old Mac files end lines with CR alone: read as LF, so rows and row
/// numbers come out as in any other file.
pub(super) struct CrAsLf<R>(pub(super) R);

impl<R: Read> Read for CrAsLf<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        for byte in &mut buf[..n] {
            if *byte == b'\r' {
                *byte = b'\n';
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The state after `chunks`, read through [`LineCap`], and the
    /// position of the first error (`None`: none).
    fn read_through(chunks: &[Vec<u8>], delimiter: u8) -> (u64, u64, u64, Quote, Option<usize>) {
        let all: Vec<u8> = chunks.concat();
        let mut cap = LineCap::new(&all[..], delimiter);
        let mut failed = None;
        for (i, chunk) in chunks.iter().enumerate() {
            let mut buf = vec![0; chunk.len()];
            if cap.read(&mut buf).is_err() {
                failed = Some(i);
                break;
            }
        }
        (cap.since_end, cap.line, cap.record_line, cap.quote, failed)
    }

    /// The same, a byte at a time through [`LineCap::step`] (the reader as
    /// it was).
    fn stepped(chunks: &[Vec<u8>], delimiter: u8) -> (u64, u64, u64, Quote, Option<usize>) {
        let mut cap = LineCap::new((), delimiter);
        for (i, chunk) in chunks.iter().enumerate() {
            for &byte in chunk {
                cap.step(byte);
                if cap.since_end > MAX_LINE_BYTES {
                    return (cap.since_end, cap.line, cap.record_line, cap.quote, Some(i));
                }
            }
        }
        (cap.since_end, cap.line, cap.record_line, cap.quote, None)
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            rng_seed: proptest::test_runner::RngSeed::Fixed(22),
            ..ProptestConfig::default()
        })]
        /// Skipping ordinary bytes reads any file as a byte at a time did.
        #[test]
        fn skipping_ordinary_bytes_reads_as_a_byte_at_a_time(
            chunks in prop::collection::vec(
                prop::collection::vec(prop::sample::select(b"ab,;\"\n\r x".to_vec()), 0..40),
                0..12,
            ),
            delimiter in prop::sample::select(b",;\t\"".to_vec()),
        ) {
            // Chunks as they come from the file (the inner reader gives
            // each read at most its buffer).
            let (a, b) = (read_through(&chunks, delimiter), stepped(&chunks, delimiter));
            prop_assert_eq!(&a.1, &b.1);
            prop_assert_eq!(&a.2, &b.2);
            prop_assert_eq!(&a.3, &b.3);
            prop_assert_eq!(&a.0, &b.0);
            prop_assert_eq!(a.4, b.4);
        }
    }

    #[test]
    fn a_line_over_the_bound_is_refused_in_the_read_that_passes_it() {
        let mut long = vec![b'x'; (MAX_LINE_BYTES + 10) as usize];
        long.insert(0, b'\n');
        let chunks: Vec<Vec<u8>> = long.chunks(1 << 20).map(<[u8]>::to_vec).collect();
        let (_, line, _, _, failed) = read_through(&chunks, b',');
        assert_eq!(failed, Some(4), "the fifth MiB passes 4 MiB");
        assert_eq!(line, 2);
        let refusal = |bytes: &[u8]| {
            let mut cap = LineCap::new(bytes, b',');
            let mut buf = vec![0; bytes.len()];
            cap.read(&mut buf).unwrap_err().to_string()
        };
        // A quote never closed: the rest of the file, lines and all.
        let mut quoted = b"user_id,name\n1,\"".to_vec();
        quoted.extend(b"y\n".repeat((MAX_LINE_BYTES / 2 + 1) as usize));
        let error = refusal(&quoted);
        assert!(
            error.contains("a quote opened in line 2 is not closed"),
            "{error}"
        );
        // One long line of quoted cells, each closed: a long line, and
        // nothing said of a quote.
        let mut line = b"user_id,name\n".to_vec();
        line.extend(b"\"a\"\"b\",".repeat((MAX_LINE_BYTES / 7 + 1) as usize));
        let error = refusal(&line);
        assert!(error.contains("line 2 is longer than 4 MiB"), "{error}");
        assert!(!error.contains("quote"), "{error}");
    }
}
