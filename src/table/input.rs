//! Reading the input CSV: decoding, the delimiter, the header and its column
//! names, and the row number a spreadsheet shows for each record. The input
//! is copied to a temporary file when the run starts, so that every pass
//! reads the same rows (duplicates are found in a first pass).

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use csv::ByteRecord;
use encoding_rs::Encoding;
use encoding_rs_io::DecodeReaderBytesBuilder;

use super::sheet::{self, CellNote, SheetRead, Stored};
use super::spool::Spool;
use super::{isolated, zipped};
use crate::error::Fatal;

use super::bytes::*;
pub use super::header::*;

/// Where the rows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    Stdin,
    File(PathBuf),
}

impl InputSource {
    /// How messages name the input.
    pub(crate) fn display_path(&self) -> PathBuf {
        match self {
            InputSource::Stdin => PathBuf::from("<stdin>"),
            InputSource::File(path) => path.clone(),
        }
    }
}

/// How the input is read: its source, delimiter and encoding, checked
/// (`settings` builds them from the flags).
#[derive(Debug, Clone)]
pub struct InputSettings {
    pub source: InputSource,
    /// `None`: guess from the header line (comma, else semicolon or tab).
    pub delimiter: Option<u8>,
    /// `None`: UTF-8, checked row by row (a UTF-16 byte-order mark is honoured).
    pub encoding: Option<&'static Encoding>,
    pub null_token: String,
    pub ignore_unknown_columns: bool,
    /// The sheet of a workbook to read (the first visible one if `None`).
    pub sheet: Option<String>,
    /// Send what hidden cells of a workbook hold, rather than refuse it.
    pub send_hidden_cells: bool,
}

/// The input, ready to be read from the start as often as needed: a private
/// copy taken when the run starts, so that every pass (the first pass, the
/// check of what is sent) reads the same bytes, whatever happens to the
/// file meanwhile, and so that a pipe or a process substitution
/// (`<(cat users.csv)`) reads like a file. The copy is deleted with it.
pub struct Input {
    config: InputSettings,
    spool: Spool,
    /// The file as it was when copied, to tell whether it changed since.
    original: Option<Fingerprint>,
    /// A workbook: the sheet read (the spool holds its cells as a CSV) and
    /// what its cells held besides text.
    sheet: Option<Arc<SheetRead>>,
    /// A file named like a workbook that holds text, read as a CSV.
    csv_named_like_workbook: bool,
}

/// What tells a file changed: its size, its modification time, its inode.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    modified: Option<std::time::SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64),
}

impl Fingerprint {
    fn of(metadata: &std::fs::Metadata) -> Fingerprint {
        Fingerprint {
            len: metadata.len(),
            modified: metadata.modified().ok(),
            #[cfg(unix)]
            inode: {
                use std::os::unix::fs::MetadataExt;
                (metadata.dev(), metadata.ino())
            },
        }
    }
}

impl Input {
    /// Copies the input (a file, a pipe, standard input) to a private
    /// temporary file.
    pub fn open(config: &InputSettings) -> Result<Input, Fatal> {
        let open_error = |source| Fatal::InputOpen {
            path: config.source.display_path(),
            source,
        };
        let mut spool = Spool::new().map_err(open_error)?;
        let original = match &config.source {
            InputSource::File(path) => {
                let mut file = File::open(path).map_err(open_error)?;
                let metadata = file.metadata().map_err(open_error)?;
                if metadata.is_dir() {
                    return Err(open_error(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "it is a folder, not a file",
                    )));
                }
                let fingerprint = metadata.is_file().then(|| Fingerprint::of(&metadata));
                io::copy(&mut file, &mut spool.writer()).map_err(open_error)?;
                fingerprint
            }
            InputSource::Stdin => {
                io::copy(&mut io::stdin().lock(), &mut spool.writer()).map_err(open_error)?;
                None
            }
        };
        let mut config = config.clone();
        // The first bytes tell a workbook (the same peek as every pass's).
        let (start, _) = peek(spool.reader()).map_err(open_error)?;
        let named_like_workbook = match &config.source {
            InputSource::File(path) => sheet::named_like_workbook(path),
            InputSource::Stdin => false,
        };
        let workbook = sheet::looks_like_workbook(&start);
        if let Some(kind) = sheet::markup_kind(&start).filter(|_| !workbook) {
            return Err(Fatal::Usage(format!(
                "{} is {kind}, not a CSV file or a workbook this tool reads; open it in a \
                 spreadsheet and save it as .xlsx, .ods or CSV UTF-8",
                config.source.display_path().display()
            )));
        }
        let mut read = None;
        if workbook {
            let path = config.source.display_path();
            for (flag, given) in [
                ("--delimiter", config.delimiter.is_some()),
                ("--encoding", config.encoding.is_some()),
            ] {
                if given {
                    return Err(Fatal::Usage(format!(
                        "{flag} is for CSV input, and {} is a workbook; leave {flag} out",
                        path.display()
                    )));
                }
            }
            let refused = |message| Fatal::Workbook {
                path: path.clone(),
                message,
            };
            let file_len = spool.size().map_err(open_error)?;
            zipped::check_parts(spool.reader(), file_len).map_err(refused)?;
            let bytes = sheet::in_memory(spool.reader()).map_err(open_error)?;
            let raw = Arc::clone(bytes.get_ref());
            let mut converted = Spool::new().map_err(open_error)?;
            let mut sheet_read = isolated::convert(
                &spool,
                Arc::clone(&raw),
                config.sheet.as_deref(),
                &mut converted,
            )
            .map_err(refused)?;
            sheet_read.may_drop_bom = sheet_read.format == "xls" && sheet::xls_may_hold_bom(&raw);
            spool = converted;
            config.delimiter = Some(b',');
            read = Some(Arc::new(sheet_read));
        } else if config.sheet.is_some() {
            return Err(Fatal::Usage(format!(
                "--sheet is for workbooks (.xlsx, .xls, .ods), and {} is a CSV file; leave \
                 --sheet out",
                config.source.display_path().display()
            )));
        }
        let input = Input {
            config,
            spool,
            original,
            sheet: read,
            csv_named_like_workbook: named_like_workbook && !workbook,
        };
        input.refuse_hidden_cells()?;
        Ok(input)
    }

    /// The hidden cells of a workbook whose values would be sent: refused
    /// unless `--send-hidden-cells` accepts them (a person checks what is
    /// shown, not what the file keeps).
    fn refuse_hidden_cells(&self) -> Result<(), Fatal> {
        let Some(read) = &self.sheet else {
            return Ok(());
        };
        if read.hidden.is_empty() || self.config.send_hidden_cells {
            return Ok(());
        }
        // A header the run cannot use is reported by the run itself.
        let Ok(rows) = self.rows() else {
            return Ok(());
        };
        let header = rows.header();
        let sent: Vec<String> = read
            .hidden
            .iter()
            .filter(|cell| feeds(header, cell.column))
            .map(|cell| format!("{} ({})", cell.reference(), cell.why))
            .collect();
        if sent.is_empty() {
            return Ok(());
        }
        Err(Fatal::Workbook {
            path: self.display_path(),
            message: format!(
                "{} of the sheet {:?} that a person does not see would be sent: {}; show the \
                 rows and columns (and give the cells a format that shows them) and check \
                 them, or clear them, or pass --send-hidden-cells to send them as they are",
                match sent.len() {
                    1 => "1 cell".to_string(),
                    n => format!("{n} cells"),
                },
                read.sheet,
                first_few(&sent)
            ),
        })
    }

    /// The workbook's sheet that was read, when the input is a workbook.
    pub fn sheet(&self) -> Option<&SheetRead> {
        self.sheet.as_deref()
    }

    /// What the user should know about how the input was read: which
    /// sheet of a workbook, the cells that feed requests from formulas, a
    /// file named `.xlsx` that holds text.
    pub fn notes(&self) -> Result<Vec<String>, Fatal> {
        let path = self.display_path();
        let mut notes = Vec::new();
        if self.csv_named_like_workbook {
            notes.push(format!(
                "{} is named like a workbook but holds text; it is read as a CSV file",
                path.display()
            ));
        }
        let Some(read) = &self.sheet else {
            return Ok(notes);
        };
        if read.sheets.len() > 1 {
            notes.push(format!(
                "reading the sheet {:?} of {} ({} sheets; --sheet NAME reads another)",
                read.sheet,
                path.display(),
                read.sheets.len()
            ));
        }
        if read.sheet_hidden {
            notes.push(format!(
                "the sheet {:?} is hidden in {}: a person who opens the file does not see it; \
                 check that it is the one meant",
                read.sheet,
                path.display()
            ));
        }
        if read.format == "xls" {
            notes.push(format!(
                "{} is an .xls file, whose hidden rows and columns and number formats this \
                 tool cannot see: a value hidden there would be sent; save the sheet as .xlsx \
                 (or .ods) to have hidden cells found",
                path.display()
            ));
        }
        if read.may_drop_bom {
            notes.push(format!(
                "{} seems to hold text that starts with the invisible mark U+FEFF, which \
                 cannot be read from an .xls file (it is dropped, so a value that starts with \
                 it is sent without it); to keep it, save the sheet as .xlsx or .ods",
                path.display()
            ));
        }
        if !read.covered.is_empty() {
            notes.push(format!(
                "cells covered by merged cells hold values nobody sees ({}): they are read as \
                 empty (\"leave unchanged\"); unmerge them and fill each cell to send values",
                first_few(&read.covered)
            ));
        }
        if !read.hidden.is_empty() {
            let listed: Vec<String> = read
                .hidden
                .iter()
                .map(|cell| format!("{} ({})", cell.reference(), cell.why))
                .collect();
            let what = match self.config.send_hidden_cells {
                true => "sent as they are (--send-hidden-cells)",
                false => "in columns that are not sent",
            };
            notes.push(format!(
                "cells a person does not see hold values, {what}: {}",
                first_few(&listed)
            ));
        }
        if !read.merged_down.is_empty() {
            notes.push(format!(
                "cells merged down several rows ({}): only the top row holds the value, and the \
                 rows below read as empty (\"leave unchanged\"); unmerge them and fill every \
                 row to change them all",
                first_few(&read.merged_down)
            ));
        }
        // A header the run cannot use is reported by the run itself, after
        // the note that says which sheet was read.
        let Ok(rows) = self.rows() else {
            return Ok(notes);
        };
        let header = rows.header();
        let feeds = |column: usize| feeds(header, column);
        let formulas: Vec<String> = read
            .notes
            .iter()
            .filter(|note| note.formula && note.stored != Stored::Unsaved && feeds(note.column))
            .map(CellNote::reference)
            .collect();
        if !formulas.is_empty() {
            let what = match formulas.len() {
                1 => "1 cell whose value is sent holds a formula".to_string(),
                n => format!("{n} cells whose values are sent hold formulas"),
            };
            notes.push(format!(
                "{what} ({}): the values the spreadsheet last saved are read; open and save the \
                 file in a spreadsheet to bring them up to date, or paste the values",
                first_few(&formulas)
            ));
        }
        Ok(notes)
    }

    /// Whether the input file was changed (rewritten, replaced, removed)
    /// since the run copied it.
    pub fn changed(&self) -> bool {
        match (&self.original, &self.config.source) {
            (Some(original), InputSource::File(path)) => std::fs::metadata(path)
                .map(|now| Fingerprint::of(&now) != *original)
                .unwrap_or(true),
            _ => false,
        }
    }

    pub(crate) fn display_path(&self) -> PathBuf {
        self.config.source.display_path()
    }

    /// The whole input as the CSV text the passes read (a workbook's sheet
    /// as its reader wrote it), up to `max` bytes: `None` past them.
    pub(crate) fn text(&self, max: u64) -> Result<Option<String>, Fatal> {
        let mut text = String::new();
        let read = self
            .spool
            .reader()
            .take(max.saturating_add(1))
            .read_to_string(&mut text);
        read.map_err(|source| Fatal::InputOpen {
            path: self.display_path(),
            source,
        })?;
        Ok((text.len() as u64 <= max).then_some(text))
    }

    /// Starts a pass over the rows: reads and checks the header.
    pub fn rows(&self) -> Result<RowReader, Fatal> {
        let path = self.display_path();
        let open_error = |source| Fatal::InputOpen {
            path: path.clone(),
            source,
        };
        // A file of its own for each pass: passes never share an offset.
        let file = self.spool.reader();
        // Peek at the start: a byte-order mark decides the decoding, the first
        // line the delimiter. Plain UTF-8 is read as it is, without a decoder.
        let (mut start, rest) = peek(file).map_err(open_error)?;
        let utf16 = start.starts_with(&[0xFF, 0xFE]) || start.starts_with(&[0xFE, 0xFF]);
        let source: Box<dyn Read + Send> = if self.config.encoding.is_some() || utf16 {
            let decoded = DecodeReaderBytesBuilder::new()
                .encoding(self.config.encoding)
                .utf8_passthru(true)
                .strip_bom(true)
                .bom_override(true)
                .build(io::Cursor::new(start).chain(rest));
            let (decoded_start, decoded_rest) = peek(decoded).map_err(open_error)?;
            start = decoded_start;
            Box::new(io::Cursor::new(start.clone()).chain(decoded_rest))
        } else {
            let bom = if start.starts_with(b"\xEF\xBB\xBF") {
                3
            } else {
                0
            };
            Box::new(io::Cursor::new(start[bom..].to_vec()).chain(rest))
        };
        let delimiter = match self.config.delimiter {
            Some(delimiter) => delimiter,
            None => sniff_delimiter(&start),
        };
        // CR alone ends the lines (classic Mac OS): read it as LF.
        let source: Box<dyn Read + Send> = if start.contains(&b'\r') && !start.contains(&b'\n') {
            Box::new(CrAsLf(source))
        } else {
            source
        };
        let end = EndWatch::default();
        let watched = WatchedRead {
            inner: LineCap::new(source, delimiter),
            end: end.clone(),
        };
        let csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            // Only LF ends a record: a CR before it stays in the last cell, which
            // is trimmed. This way the reader's line count tells the row number.
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(1 << 16)
            .from_reader(Box::new(watched) as Box<dyn Read + Send>);
        RowReader::start(
            csv,
            path,
            end,
            self.config.ignore_unknown_columns,
            self.sheet.clone(),
        )
    }
}

/// The first five of `items` and how many more: `B2, B7 and 3 more`.
fn first_few(items: &[String]) -> String {
    let mut text = items.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > 5 {
        text.push_str(&format!(" and {} more", items.len() - 5));
    }
    text
}

/// One record of the input with the row number a spreadsheet shows for it.
pub struct RawRow<'a> {
    pub row: u64,
    pub cells: &'a ByteRecord,
    /// From a workbook: the cells of this row that were not plain text.
    pub notes: &'a [CellNote],
}

/// One pass over the records after the header.
pub struct RowReader {
    csv: csv::Reader<Box<dyn Read + Send>>,
    end: EndWatch,
    path: PathBuf,
    header: Header,
    record: ByteRecord,
    /// Row number of the last record returned.
    row: u64,
    /// The line just after the last record returned: blank lines between it
    /// and the next record are rows of the spreadsheet too.
    next_line: u64,
    sheet: Option<Arc<SheetRead>>,
}

impl RowReader {
    fn start(
        csv: csv::Reader<Box<dyn Read + Send>>,
        path: PathBuf,
        end: EndWatch,
        ignore_unknown: bool,
        sheet: Option<Arc<SheetRead>>,
    ) -> Result<RowReader, Fatal> {
        let mut reader = RowReader {
            csv,
            end,
            path,
            header: Header {
                columns: Vec::new(),
                user_id: None,
                current_email: None,
                verbatim: None,
                action: None,
            },
            record: ByteRecord::new(),
            row: 0,
            next_line: 1,
            sheet,
        };
        if !reader.advance()? {
            return Err(Fatal::InputEmpty {
                path: reader.path.clone(),
            });
        }
        let header_error = |message: String| Fatal::Header {
            path: reader.path.clone(),
            message,
        };
        let mut names = Vec::with_capacity(reader.record.len());
        for cell in reader.record.iter() {
            names.push(std::str::from_utf8(cell).map_err(|_| {
                header_error(
                    "the header is not valid UTF-8; save the file as \"CSV UTF-8\", or pass \
                     --encoding windows-1252 (or the file's encoding)"
                        .to_string(),
                )
            })?);
        }
        let header = Header::parse(&names, ignore_unknown).map_err(header_error)?;
        reader.header = header;
        Ok(reader)
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next record, or `None` at the end. An I/O error is fatal; a record
    /// of the wrong width is not (the checker reports it for its row).
    pub fn next_row(&mut self) -> Result<Option<RawRow<'_>>, Fatal> {
        if !self.advance()? {
            return Ok(None);
        }
        let notes = match &self.sheet {
            Some(sheet) => sheet.notes_of(self.row),
            None => &[],
        };
        Ok(Some(RawRow {
            row: self.row,
            cells: &self.record,
            notes,
        }))
    }

    /// Reads the next record that is not blank, keeping the row number: blank
    /// lines, and records whose cells are all empty (Excel writes `,,,` for an
    /// empty row), are rows of the spreadsheet but carry nothing to do.
    fn advance(&mut self) -> Result<bool, Fatal> {
        loop {
            let more = self
                .csv
                .read_byte_record(&mut self.record)
                .map_err(|source| Fatal::InputRead {
                    path: self.path.clone(),
                    source,
                })?;
            if !more {
                return Ok(false);
            }
            let after = self.csv.position().line();
            let end_line = after - u64::from(!self.end.ended_without_newline());
            let inner_newlines = memchr::memchr_iter(b'\n', self.record.as_slice()).count() as u64;
            let start_line = end_line.saturating_sub(inner_newlines);
            self.row += 1 + start_line.saturating_sub(self.next_line);
            self.next_line = end_line + 1;
            // A record that spans lines and runs to the very end of the input
            // without a closing quote: a quote was opened and never closed,
            // and every row after it was swallowed into one cell.
            if inner_newlines > 0 && self.end.at_eof() && self.end.last_text_byte() != Some(b'"') {
                return Err(Fatal::Header {
                    path: self.path.clone(),
                    message: format!(
                        "a quote opened in row {} is never closed, so the {} lines after it \
                         were read as one cell; close the quote (or remove it) and check that \
                         row",
                        self.row, inner_newlines
                    ),
                });
            }
            let blank = self
                .record
                .iter()
                .all(|cell| cell.iter().all(u8::is_ascii_whitespace));
            if !blank {
                return Ok(true);
            }
        }
    }
}

#[cfg(test)]
mod tests;
