//! Checked settings. `cli` holds what was typed; this module turns it into
//! real types once (a delimiter byte, an encoding, a results target), and
//! refuses what cannot work with a message that says what to type instead.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use encoding_rs::Encoding;

use crate::cli::{InputArgs, OutputArgs};
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
pub struct InputConfig {
    pub source: InputSource,
    /// `None`: guess from the header line (comma, else semicolon or tab).
    pub delimiter: Option<u8>,
    /// `None`: UTF-8, checked row by row (a UTF-16 byte-order mark is honoured).
    pub encoding: Option<&'static Encoding>,
    pub null_token: String,
    pub ignore_unknown_columns: bool,
}

impl InputConfig {
    pub fn from_args(args: &InputArgs) -> Result<Self, Fatal> {
        let source = if args.path.as_os_str() == "-" {
            InputSource::Stdin
        } else {
            InputSource::File(args.path.clone())
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
        Ok(InputConfig {
            source,
            delimiter,
            encoding: encoding.flatten(),
            null_token,
            ignore_unknown_columns: args.ignore_unknown_columns,
        })
    }
}

fn parse_delimiter(text: &str) -> Result<u8, Fatal> {
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
fn parse_encoding(label: &str) -> Result<Option<&'static Encoding>, Fatal> {
    match Encoding::for_label(label.trim().as_bytes()) {
        Some(encoding) if encoding == encoding_rs::UTF_8 => Ok(None),
        Some(encoding) => Ok(Some(encoding)),
        None => Err(Fatal::Usage(format!(
            "--encoding {label:?} is not a known encoding; try utf-8, windows-1252 (Excel on Western \
             Windows), windows-1251 (Cyrillic) or utf-16"
        ))),
    }
}

/// Where the results file goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    Stdout,
    File(PathBuf),
}

impl OutputTarget {
    pub fn from_args(args: &OutputArgs, input: &InputSource) -> Result<Self, Fatal> {
        let target = match &args.output {
            Some(path) if path.as_os_str() == "-" => OutputTarget::Stdout,
            Some(path) => OutputTarget::File(path.clone()),
            None => OutputTarget::File(default_output(input)),
        };
        if let (OutputTarget::File(out), InputSource::File(inp)) = (&target, input)
            && same_file(out, inp)
        {
            return Err(Fatal::Usage(format!(
                "the results file {} is the input file; choose another with -o",
                out.display()
            )));
        }
        Ok(target)
    }

    pub fn display_path(&self) -> PathBuf {
        match self {
            OutputTarget::Stdout => PathBuf::from("<stdout>"),
            OutputTarget::File(path) => path.clone(),
        }
    }
}

/// `<input stem>.results.csv` in the current directory; `stdin.results.csv`
/// when the input is standard input.
fn default_output(input: &InputSource) -> PathBuf {
    let stem = match input {
        InputSource::Stdin => OsStr::new("stdin"),
        InputSource::File(path) => path.file_stem().unwrap_or(OsStr::new("input")),
    };
    let mut name = stem.to_os_string();
    name.push(".results.csv");
    PathBuf::from(name)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters() {
        for (text, want) in [
            (",", b','),
            (";", b';'),
            ("tab", b'\t'),
            ("\\t", b'\t'),
            ("|", b'|'),
        ] {
            assert_eq!(parse_delimiter(text).unwrap(), want, "{text}");
        }
        let error = parse_delimiter("::").unwrap_err().to_string();
        assert!(error.contains("use one of"), "{error}");
    }

    #[test]
    fn encodings() {
        assert_eq!(parse_encoding("UTF-8").unwrap(), None);
        assert_eq!(
            parse_encoding("cp1252").unwrap(),
            Some(encoding_rs::WINDOWS_1252)
        );
        assert_eq!(
            parse_encoding("latin1").unwrap(),
            Some(encoding_rs::WINDOWS_1252)
        );
        assert!(
            parse_encoding("klingon")
                .unwrap_err()
                .to_string()
                .contains("windows-1252")
        );
    }

    #[test]
    fn default_output_is_named_after_the_input_in_the_current_directory() {
        let input = InputSource::File(PathBuf::from("/data/batch.csv"));
        assert_eq!(default_output(&input), PathBuf::from("batch.results.csv"));
        assert_eq!(
            default_output(&InputSource::Stdin),
            PathBuf::from("stdin.results.csv")
        );
    }
}
