//! Where the rows come from and how they are read: the input's source,
//! delimiter and encoding, checked.

use std::path::{Path, PathBuf};

use encoding_rs::Encoding;

use crate::cli::InputArgs;
use crate::error::Fatal;

/// Where the rows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    Stdin,
    File(PathBuf),
}

impl InputSource {
    /// How messages name the input.
    pub fn display_path(&self) -> PathBuf {
        match self {
            InputSource::Stdin => PathBuf::from("<stdin>"),
            InputSource::File(path) => path.clone(),
        }
    }
}

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

impl InputSettings {
    pub fn from_args(args: &InputArgs) -> Result<Self, Fatal> {
        let Some(path) = &args.path else {
            return Err(Fatal::Usage(
                "give the INPUT file of changes (or - for standard input)".to_string(),
            ));
        };
        let source = if path.as_os_str() == "-" {
            InputSource::Stdin
        } else {
            InputSource::File(path.clone())
        };
        let delimiter = args.delimiter.as_deref().map(parse_delimiter).transpose()?;
        let encoding = args.encoding.as_deref().map(parse_encoding).transpose()?;
        let null_token = args.null_token.trim().to_string();
        if null_token.is_empty() {
            return Err(Fatal::Usage(
                "--null-token cannot be empty: an empty cell already means \"leave unchanged\""
                    .to_string(),
            ));
        }
        Ok(InputSettings {
            source,
            delimiter,
            encoding: encoding.flatten(),
            null_token,
            ignore_unknown_columns: args.ignore_unknown_columns,
            sheet: args.sheet.clone(),
            send_hidden_cells: args.send_hidden_cells,
        })
    }
}

pub(super) fn parse_delimiter(text: &str) -> Result<u8, Fatal> {
    match text {
        "," | "comma" => Ok(b','),
        ";" | "semicolon" => Ok(b';'),
        "|" | "pipe" => Ok(b'|'),
        "\t" | "\\t" | "tab" => Ok(b'\t'),
        other => Err(Fatal::Usage(format!(
            "--delimiter {other:?} is not supported; use one of ',' ';' '|' 'tab'"
        ))),
    }
}

/// `Some(None)` is UTF-8: no transcoding, invalid bytes reported per row.
pub(super) fn parse_encoding(label: &str) -> Result<Option<&'static Encoding>, Fatal> {
    match Encoding::for_label(label.trim().as_bytes()) {
        Some(encoding) if encoding == encoding_rs::UTF_8 => Ok(None),
        Some(encoding) => Ok(Some(encoding)),
        None => Err(Fatal::Usage(format!(
            "--encoding {label:?} is not a known encoding; try utf-8, windows-1252 (Excel on Western \
             Windows), windows-1251 (Cyrillic) or utf-16"
        ))),
    }
}

/// Whether the file name says workbook (`.xlsx`, `.xlsm`, `.xlsb`, `.xls`,
/// `.ods`, any case): results and undo files, which are written as the run
/// goes, cannot be one; a CSV named `.xlsx` is read as a CSV, with a note.
pub fn named_like_workbook(path: &Path) -> bool {
    path.extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| {
            ["xlsx", "xlsm", "xlsb", "xls", "ods"]
                .iter()
                .any(|known| known.eq_ignore_ascii_case(ext))
        })
}
