//! Where the rows come from and how they are read, from the flags: the
//! input's source, delimiter and encoding, checked. The options themselves
//! are the table's ([`InputSettings`], [`InputSource`]).

use encoding_rs::Encoding;

use crate::cli::InputArgs;
use crate::error::Fatal;

pub use crate::table::input::{InputSettings, InputSource};
pub(crate) use crate::table::sheet::named_like_workbook;

impl InputSettings {
    pub(crate) fn from_args(args: &InputArgs) -> Result<Self, Fatal> {
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
