//! A CSV writer for the results file, byte for byte what the csv crate's
//! `Writer` writes with its defaults (`,`, `"` doubled, fields quoted when
//! they hold `,`, `"`, `\r` or `\n`, and a lone empty field quoted; `\n`
//! after each record), at about a third of its cost per field: the results
//! file writes 25 columns a row, and the csv crate's field writer was the
//! largest part of the tool's own work per row (issue 22, "no slower").
//! A property test holds it to the csv crate's output.

use std::io::{self, Write};

/// The bytes that make a field quoted.
const SPECIAL: [bool; 256] = {
    let mut special = [false; 256];
    special[b',' as usize] = true;
    special[b'"' as usize] = true;
    special[b'\r' as usize] = true;
    special[b'\n' as usize] = true;
    special
};

/// Buffers records and hands them to `W` when the buffer is full, on
/// [`CsvOut::flush`], and when dropped (as the csv crate's writer does).
pub(crate) struct CsvOut<W: Write> {
    buffer: Vec<u8>,
    capacity: usize,
    /// `None` only after [`CsvOut::into_inner`].
    sink: Option<W>,
    /// A write of `sink` failed or panicked: nothing more is written on drop.
    broken: bool,
}

impl<W: Write> CsvOut<W> {
    /// A writer that hands `sink` about `capacity` bytes at a time.
    pub(crate) fn new(sink: W, capacity: usize) -> CsvOut<W> {
        CsvOut {
            buffer: Vec::with_capacity(capacity),
            capacity,
            sink: Some(sink),
            broken: false,
        }
    }

    /// Writes one record: its fields, separated by commas, then `\n`.
    pub(crate) fn write_record<I, F>(&mut self, fields: I) -> io::Result<()>
    where
        I: IntoIterator<Item = F>,
        F: AsRef<[u8]>,
    {
        let mut count = 0usize;
        let mut lone_empty = false;
        for field in fields {
            let field = field.as_ref();
            if count > 0 {
                self.buffer.push(b',');
            }
            count += 1;
            lone_empty = field.is_empty();
            push_field(&mut self.buffer, field);
        }
        // A record of one empty field would read as an empty line.
        if count == 1 && lone_empty {
            self.buffer.extend_from_slice(b"\"\"");
        }
        self.buffer.push(b'\n');
        if self.buffer.len() >= self.capacity {
            self.write_buffer()?;
        }
        Ok(())
    }

    /// Hands everything buffered to the sink, and flushes the sink.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.write_buffer()?;
        self.sink_mut().flush()
    }

    /// The sink, after everything buffered was handed to it.
    #[cfg(test)]
    pub(crate) fn into_inner(mut self) -> io::Result<W> {
        self.flush()?;
        Ok(self.sink.take().expect("the sink is taken only here"))
    }

    fn sink_mut(&mut self) -> &mut W {
        self.sink
            .as_mut()
            .expect("the sink is taken only at the end")
    }

    fn write_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.broken = true;
        let sink = self
            .sink
            .as_mut()
            .expect("the sink is taken only at the end");
        sink.write_all(&self.buffer)?;
        self.broken = false;
        self.buffer.clear();
        Ok(())
    }
}

impl<W: Write> Drop for CsvOut<W> {
    fn drop(&mut self) {
        if self.sink.is_some() && !self.broken {
            let _ = self.flush();
        }
    }
}

/// Appends `field`, quoted when it needs to be.
fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    if !needs_quotes(field) {
        out.extend_from_slice(field);
        return;
    }
    // A byte at a time: JSON cells quote every few bytes, where a search
    // per quote costs more than it skips.
    out.reserve(field.len() + field.len() / 4 + 2);
    out.push(b'"');
    for &byte in field {
        if byte == b'"' {
            out.push(b'"');
        }
        out.push(byte);
    }
    out.push(b'"');
}

/// Whether `field` holds a byte that makes it quoted: a table look-up
/// a byte for short fields, memchr's vector search for longer ones.
fn needs_quotes(field: &[u8]) -> bool {
    if field.len() < 24 {
        return field.iter().any(|&b| SPECIAL[usize::from(b)]);
    }
    memchr::memchr3(b',', b'"', b'\n', field).is_some() || memchr::memchr(b'\r', field).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ours(records: &[Vec<String>], capacity: usize) -> Vec<u8> {
        let mut out = CsvOut::new(Vec::new(), capacity);
        for record in records {
            out.write_record(record).unwrap();
        }
        out.into_inner().unwrap()
    }

    fn theirs(records: &[Vec<String>]) -> Vec<u8> {
        let mut out = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(Vec::new());
        for record in records {
            out.write_record(record).unwrap();
        }
        out.into_inner().unwrap()
    }

    #[test]
    fn the_awkward_fields_are_written_as_the_csv_crate_writes_them() {
        let records: Vec<Vec<String>> = [
            vec![""],
            vec!["", ""],
            vec!["a,b", "say \"hi\"", "two\nlines", "cr\r", "\"", "plain"],
            vec!["{\"name\":\"A\"}", "'=1+1", " lead", "tail "],
        ]
        .iter()
        .map(|record| record.iter().map(ToString::to_string).collect())
        .collect();
        assert_eq!(ours(&records, 1 << 16), theirs(&records));
        assert_eq!(
            String::from_utf8(ours(&records[..1], 1)).unwrap(),
            "\"\"\n",
            "a lone empty field is quoted"
        );
    }

    #[test]
    fn drop_hands_on_what_is_buffered_and_a_full_buffer_goes_at_once() {
        let mut sink = Vec::new();
        {
            let mut out = CsvOut::new(&mut sink, 8);
            out.write_record(["ab", "cd"]).unwrap();
            assert_eq!(
                out.sink.as_deref().unwrap(),
                b"",
                "under the capacity: kept"
            );
            out.write_record(["0123456789"]).unwrap();
            assert_eq!(out.sink.as_deref().unwrap(), b"ab,cd\n0123456789\n");
            out.write_record(["x"]).unwrap();
        }
        assert_eq!(sink, b"ab,cd\n0123456789\nx\n");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, rng_seed: proptest::test_runner::RngSeed::Fixed(22), ..ProptestConfig::default() })]
        #[test]
        fn any_records_are_written_as_the_csv_crate_writes_them(
            records in prop::collection::vec(
                prop::collection::vec("[a-z,\"\r\n é'=]{0,40}", 1..6),
                0..8,
            ),
            capacity in 1usize..64,
        ) {
            prop_assert_eq!(ours(&records, capacity), theirs(&records));
        }
    }
}
