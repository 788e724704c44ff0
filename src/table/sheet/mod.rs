//! Reading a workbook (`.xlsx`, `.xlsm`, `.xlsb`, `.xls`, `.ods`) with the
//! calamine crate: one sheet becomes the text of its cells, written as a
//! CSV to the run's private copy of the input, so that every pass, the row
//! numbers and the header rules are those of a CSV input. What the text
//! cannot carry (a cell stored as a number, a date, a logical value, an
//! error or a formula) is kept beside it as [`CellNote`]s, for the checker
//! to judge by the column the cell is in.
//!
//! Row and column numbers are the sheet's own: the rows above the first
//! filled one are written as blank lines and the columns left of it as
//! empty cells, so row 7 of the sheet is row 7 of every message.

use std::io::{self, Read, Seek, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::header::names_the_user;
pub use super::layout::column_letters;
use super::layout::{self, Layout, Region};
mod copy;

use calamine::{
    Data, Ods, OdsError, Reader, SheetType, SheetVisible, Sheets, Xls, Xlsx,
    open_workbook_auto_from_rs, open_workbook_from_rs,
};
use copy::*;

/// What a workbook file starts with: a ZIP archive (`.xlsx`, `.xlsm`,
/// `.xlsb`, `.ods`) or an OLE compound file (`.xls`; also an encrypted
/// `.xlsx`).
pub(super) const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
pub(super) const OLE_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

/// Whether `start` (the first bytes of a file) is a workbook's.
pub(crate) fn looks_like_workbook(start: &[u8]) -> bool {
    start.starts_with(ZIP_MAGIC) || start.starts_with(OLE_MAGIC)
}

/// What a file that starts as markup is, when it is no CSV: a flat
/// OpenDocument spreadsheet (`.fods`), an Excel 2003 XML spreadsheet, a
/// web page a spreadsheet saved, another XML file. (No input starts with
/// `<`: its first cell would be a column name.)
pub(crate) fn markup_kind(start: &[u8]) -> Option<&'static str> {
    let text = start.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(start);
    let text = String::from_utf8_lossy(&text[..text.len().min(4096)]).to_ascii_lowercase();
    let text = text.trim_start();
    let has = |needle: &str| text.contains(needle);
    if text.starts_with("<?xml") {
        return Some(if has("office:document") {
            "a flat OpenDocument spreadsheet (.fods)"
        } else if has("urn:schemas-microsoft-com:office:spreadsheet") {
            "an Excel 2003 XML spreadsheet"
        } else {
            "an XML file"
        });
    }
    (text.starts_with("<!doctype html") || text.starts_with("<html")).then_some("a web page (HTML)")
}

/// Whether the file name says workbook (`.xlsx`, `.xlsm`, `.xlsb`, `.xls`,
/// `.ods`, any case): results and undo files, which are written as the run
/// goes, cannot be one; a CSV named `.xlsx` is read as a CSV, with a note.
pub(crate) fn named_like_workbook(path: &Path) -> bool {
    path.extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| {
            ["xlsx", "xlsm", "xlsb", "xls", "ods"]
                .iter()
                .any(|known| known.eq_ignore_ascii_case(ext))
        })
}

/// How a cell was stored, when it was not text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Stored {
    /// Text: only noted when the cell holds a formula, whose value may be
    /// stale.
    Text,
    /// A number; the CSV cell holds it as a plain number (`49301234567`,
    /// `42`, `1.5`).
    Number { whole: bool, exact: bool },
    /// A logical value (`TRUE`, `FALSE`).
    Logical,
    /// A date, a time or a duration; the text is how a message shows it
    /// (`the date 2024-01-05`).
    Date(String),
    /// An error value (`#REF!`, `#N/A`): a formula that failed.
    Error(String),
    /// A formula whose value is empty or was never saved (a file written
    /// by a program that does not calculate); the CSV cell holds the
    /// formula.
    Unsaved,
}

/// A cell that was not plain text, or held a formula.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellNote {
    /// 1-based, as the sheet numbers them.
    pub row: u64,
    /// 0-based, as the header's columns.
    pub column: usize,
    pub stored: Stored,
    pub formula: bool,
    /// How a number format shows the cell when it is not the plain number
    /// (`a percentage`, `a currency`, `the format "000"`).
    pub format: Option<String>,
    /// The cell holds ruby (phonetic) text, which is read into its value.
    pub ruby: bool,
    /// The file stores the text with `_xHHHH_`, which Excel shows as the
    /// character it codes and LibreOffice as it is.
    pub escaped: bool,
}

impl CellNote {
    /// The cell's name in a spreadsheet: `B7`.
    pub fn reference(&self) -> String {
        format!("{}{}", column_letters(self.column), self.row)
    }
}

/// What was read from the workbook, besides the cells' text (written as
/// JSON by the reader's child process, see [`super::isolated`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SheetRead {
    /// `xlsx`, `xls`, `xlsb` or `ods`.
    pub format: String,
    /// The sheet read, and every worksheet's name in order.
    pub sheet: String,
    /// The sheet read is hidden in the workbook (chosen with `--sheet`).
    #[serde(default)]
    pub(crate) sheet_hidden: bool,
    pub sheets: Vec<String>,
    /// Sorted by row, then column.
    pub notes: Vec<CellNote>,
    /// Merged cells that span rows (`C2:C4`): the value is the top row's
    /// only, and the rows below read as empty.
    pub(crate) merged_down: Vec<String>,
    /// Cells covered by a merge that hold a value nobody sees: read as
    /// empty.
    pub covered: Vec<String>,
    /// An `.xls` file that seems to hold text starting with U+FEFF, which
    /// calamine drops (it decodes each string as if the mark were a
    /// byte-order mark).
    pub(crate) may_drop_bom: bool,
    /// Cells that hold something a person does not see: in a hidden row or
    /// column, or formatted to show nothing. Sorted by row.
    pub hidden: Vec<HiddenCell>,
}

/// A cell that holds something a person does not see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HiddenCell {
    /// 1-based, as the sheet numbers them.
    pub row: u64,
    /// 0-based, as the header's columns.
    pub column: usize,
    /// `in a hidden row`, `in a hidden column`, `formatted to show nothing
    /// (;;;)`.
    pub why: String,
}

impl HiddenCell {
    /// The cell's name in a spreadsheet: `B7`.
    pub fn reference(&self) -> String {
        format!("{}{}", column_letters(self.column), self.row)
    }
}

impl SheetRead {
    /// The notes of one row.
    pub(crate) fn notes_of(&self, row: u64) -> &[CellNote] {
        let start = self.notes.partition_point(|note| note.row < row);
        let end = start + self.notes[start..].partition_point(|note| note.row == row);
        &self.notes[start..end]
    }
}

/// [`convert`], and a panic of the workbook reader (calamine trips on some
/// forged references, `B3:B2`, a row number past any sheet) a refusal
/// rather than a crash. The panic's own message is not printed.
pub(crate) fn convert_guarded<R: Read + Seek + Clone, W: Write>(
    file: R,
    wanted: Option<&str>,
    out: W,
) -> Result<SheetRead, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let read =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| convert(file, wanted, out)));
    std::panic::set_hook(hook);
    read.unwrap_or_else(|_| {
        Err(
            "the workbook reader stopped on it: it holds a reference or a number out of any \
             sheet's range (a damaged or forged file); open it in a spreadsheet and save it \
             again as .xlsx, or as CSV UTF-8"
                .to_string(),
        )
    })
}

/// Reads one sheet of the workbook in `file` (the first visible worksheet,
/// or the one named `wanted`) and writes its cells' text to `out` as a
/// UTF-8 CSV. The error is a sentence for the user.
pub fn convert<R: Read + Seek + Clone, W: Write>(
    file: R,
    wanted: Option<&str>,
    out: W,
) -> Result<SheetRead, String> {
    let file_len = file.clone().seek(io::SeekFrom::End(0)).unwrap_or(0);
    let budget = Budget {
        text: crate::table::zipped::inflate_limit(file_len),
        file_len,
    };
    // An .ods file is scanned before calamine expands its repeated rows.
    let mut ods_layouts = layout::ods_layouts(file.clone())?;
    let mut workbook = match open_workbook_auto_from_rs(file.clone()) {
        Ok(workbook) => workbook,
        Err(_) => return Err(why_unreadable(file)),
    };
    let format = match &workbook {
        Sheets::Xls(_) => "xls",
        Sheets::Xlsx(_) => "xlsx",
        Sheets::Xlsb(_) => "xlsb",
        Sheets::Ods(_) => "ods",
    };
    let worksheets: Vec<_> = workbook
        .sheets_metadata()
        .iter()
        .filter(|sheet| sheet.typ == SheetType::WorkSheet)
        .cloned()
        .collect();
    let names: Vec<String> = worksheets.iter().map(|sheet| sheet.name.clone()).collect();
    let sheet = match wanted {
        Some(wanted) => {
            let other_kind = workbook
                .sheets_metadata()
                .iter()
                .any(|sheet| sheet.typ != SheetType::WorkSheet && sheet.name == wanted);
            if other_kind && !names.iter().any(|name| name == wanted) {
                return Err(format!(
                    "{wanted:?} is a chart (or macro) sheet, not a sheet of cells; its \
                     worksheets are {}",
                    quoted_list(&names)
                ));
            }
            choose_sheet(&names, wanted)?
        }
        None => {
            let visible: Vec<String> = worksheets
                .iter()
                .filter(|sheet| sheet.visible == SheetVisible::Visible)
                .map(|sheet| sheet.name.clone())
                .collect();
            if visible.is_empty() {
                return Err(match names.is_empty() {
                    true => "the workbook has no worksheet".to_string(),
                    false => format!(
                        "the workbook has no visible worksheet (its sheets, all hidden, are \
                         {}); choose one with --sheet NAME",
                        quoted_list(&names)
                    ),
                });
            }
            sheet_of_users(&mut workbook, &visible, &budget)?
        }
    };
    let merged = match &mut workbook {
        Sheets::Xlsx(xlsx) => xlsx.merge_cells_by_sheet_name(&sheet).unwrap_or_default(),
        Sheets::Xls(xls) => xls.merge_cells_by_sheet_name(&sheet).unwrap_or_default(),
        _ => Vec::new(),
    };
    let mut seen = match &workbook {
        Sheets::Xlsx(_) => layout::xlsx_hidden(file.clone(), &sheet)?,
        Sheets::Ods(_) => ods_layouts.remove(&sheet).unwrap_or_default(),
        _ => Layout::default(),
    };
    seen.merges = merged
        .iter()
        .map(|region| Region {
            top: region.start.0,
            left: region.start.1,
            bottom: region.end.0,
            right: region.end.1,
        })
        .collect();
    let styles = match &mut workbook {
        Sheets::Xlsx(xlsx) => xlsx.worksheet_style(&sheet).ok(),
        _ => None,
    };
    // An .ods file's merges come from its own layout (calamine gives
    // none): the cells it covers are marked there, the regions kept apart.
    let ods_merged_down = std::mem::take(&mut seen.merged_down);
    let merged_down = (seen.merges.iter())
        .chain(&ods_merged_down)
        .filter(|region| region.bottom > region.top)
        .map(|region| {
            format!(
                "{}{}:{}{}",
                column_letters(region.left as usize),
                region.top + 1,
                column_letters(region.right as usize),
                region.bottom + 1
            )
        })
        .collect();
    let cells = cells_of(&mut workbook, &sheet, false, &budget)?;
    let copied = copy_cells(&cells, &seen, styles.as_ref(), out)?;
    let Some((copied, covered, hidden)) = copied else {
        let others = match names.len() {
            1 => String::new(),
            _ => format!(
                "; the workbook's sheets are {}: choose one with --sheet NAME",
                quoted_list(&names)
            ),
        };
        return Err(format!("the sheet {sheet:?} is empty{others}"));
    };
    let sheet_hidden =
        (worksheets.iter()).any(|meta| meta.name == sheet && meta.visible != SheetVisible::Visible);
    Ok(SheetRead {
        format: format.to_string(),
        sheet_hidden,
        sheet,
        sheets: names,
        notes: copied,
        merged_down,
        covered,
        hidden,
        may_drop_bom: false,
    })
}

/// Why a file that starts like a workbook cannot be read, in words: each
/// reader its first bytes call for is asked, and the one whose format the
/// file is tells what is wrong.
fn why_unreadable<R: Read + Seek + Clone>(mut file: R) -> String {
    let mut magic = [0u8; 8];
    let is_zip = file.read_exact(&mut magic).is_ok() && magic.starts_with(ZIP_MAGIC);
    let _ = file.rewind();
    let not_this_format = |error: &str| error.contains("not found") || error.contains("NotFound");
    if !is_zip {
        let error = match open_workbook_from_rs::<Xls<R>, R>(file) {
            Err(error) => error.to_string(),
            Ok(_) => "unknown error".to_string(),
        };
        return format!(
            "it looks like an .xls workbook but cannot be read as one ({error}); an .xlsx saved \
             with a password is stored this way too: save it again without a password, as \
             .xlsx or CSV UTF-8"
        );
    }
    let xlsx = match open_workbook_from_rs::<Xlsx<R>, R>(file.clone()) {
        Err(error) => error.to_string(),
        Ok(_) => "unknown error".to_string(),
    };
    if !not_this_format(&xlsx) {
        return format!(
            "it looks like an .xlsx workbook but cannot be read as one ({xlsx}); it may be \
             damaged: open it in a spreadsheet and save it again"
        );
    }
    match open_workbook_from_rs::<Ods<R>, R>(file) {
        Err(OdsError::CellLimitExceeded { requested, .. }) => format!(
            "the sheet reaches {requested} cells, far beyond any table: a stray cell far below \
             or right of the data makes it so; delete it (select the rows and columns beyond \
             the table and delete them) and save the file, or save it as .xlsx"
        ),
        Err(error) if !not_this_format(&format!("{error} {error:?}")) => format!(
            "it looks like an .ods workbook but cannot be read as one ({error}); it may be \
             damaged: open it in a spreadsheet and save it again"
        ),
        _ => "it is a ZIP archive but not a workbook (.xlsx, .ods): a .docx or .zip named \
              like one? Give the workbook, or save the sheet as .xlsx or CSV UTF-8"
            .to_string(),
    }
}

/// The visible sheet to read when none is named: the one whose header
/// names the users (`user_id`, `current_email`), else the first. Two such
/// sheets (a copy beside the one edited, say) are refused: reading the
/// wrong one would silently drop the edits.
fn sheet_of_users<RS: Read + Seek>(
    workbook: &mut Sheets<RS>,
    visible: &[String],
    budget: &Budget,
) -> Result<String, String> {
    if visible.len() == 1 {
        return Ok(visible[0].clone());
    }
    let mut with_users = Vec::new();
    for name in visible {
        let cells = first_row(workbook, name, budget)?;
        if cells
            .iter()
            .any(|cell| matches!(&cell.value, Data::String(text) if names_the_user(text)))
        {
            with_users.push(name.clone());
        }
    }
    match with_users.as_slice() {
        [] => Ok(visible[0].clone()),
        [one] => Ok(one.clone()),
        several => Err(format!(
            "the sheets {} all have a user_id (or current_email) column; choose the one to \
             read with --sheet NAME",
            quoted_list(several)
        )),
    }
}

/// The first row of `sheet` that holds something.
fn first_row<RS: Read + Seek>(
    workbook: &mut Sheets<RS>,
    sheet: &str,
    budget: &Budget,
) -> Result<Vec<SheetCell>, String> {
    let mut cells = cells_of(workbook, sheet, true, budget)?;
    let Some(first) = cells.iter().find(|cell| !cell.blank()).map(|cell| cell.row) else {
        return Ok(Vec::new());
    };
    cells.retain(|cell| cell.row == first);
    Ok(cells)
}

/// The sheet `wanted` names: the exact name, else the one name that
/// matches in any case (and with spaces at either end trimmed).
fn choose_sheet(names: &[String], wanted: &str) -> Result<String, String> {
    if let Some(exact) = names.iter().find(|name| name.as_str() == wanted) {
        return Ok(exact.clone());
    }
    let folded = wanted.trim().to_lowercase();
    let loose: Vec<&String> = names
        .iter()
        .filter(|name| name.trim().to_lowercase() == folded)
        .collect();
    match loose.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(format!(
            "the workbook has no sheet named {wanted:?}; its sheets are {}",
            quoted_list(names)
        )),
        several => Err(format!(
            "{wanted:?} matches the sheets {} in another case; give the exact name",
            several
                .iter()
                .map(|name| format!("{name:?}"))
                .collect::<Vec<_>>()
                .join(" and ")
        )),
    }
}

/// The names quoted, the first 20 of them (a workbook of hundreds of
/// sheets still makes a message of a few lines).
fn quoted_list(names: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut list = names
        .iter()
        .take(SHOWN)
        .map(|name| format!("{name:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        list.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    list
}

/// Whether the bytes of an `.xls` file seem to hold a string that starts
/// with U+FEFF: a BIFF8 string header whose flags say UTF-16, followed by
/// the bytes FF FE. A guess (the bytes could be part of a number), made
/// for a note only.
pub(crate) fn xls_may_hold_bom(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().any(|(at, &flags)| {
        // UTF-16 (bit 0), then the run count of rich text (bit 3, 2
        // bytes) and the size of the phonetic block (bit 2, 4 bytes).
        let skip = 1 + usize::from(flags & 0x08 != 0) * 2 + usize::from(flags & 0x04 != 0) * 4;
        flags & 0xF2 == 0
            && flags & 0x01 != 0
            && bytes.get(at + skip..at + skip + 2) == Some(&[0xFF, 0xFE][..])
    })
}

/// Reads all of `reader` into memory: calamine needs to seek, and the
/// reader it is given must be clonable.
pub(crate) fn in_memory(mut reader: impl Read) -> io::Result<io::Cursor<std::sync::Arc<[u8]>>> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes)?;
    Ok(io::Cursor::new(std::sync::Arc::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_letters_count_as_a_spreadsheet_does() {
        let cases = [(0, "A"), (1, "B"), (25, "Z"), (26, "AA"), (27, "AB")];
        for (column, want) in cases {
            assert_eq!(column_letters(column), want);
        }
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
    }

    #[test]
    fn markup_is_told_from_a_csv() {
        let excel_2003 = "<?xml version=\"1.0\"?>\n<Workbook \
            xmlns=\"urn:schemas-microsoft-com:office:spreadsheet\">";
        let cases: [(&[u8], Option<&str>); 7] = [
            (b"user_id,lang\n1,en\n", None),
            (b"<email>,name\n", None),
            (excel_2003.as_bytes(), Some("an Excel 2003 XML spreadsheet")),
            (
                b"\xEF\xBB\xBF  <?XML version=\"1.0\"?><x/>",
                Some("an XML file"),
            ),
            (b"\n<!DOCTYPE html>\n<html>", Some("a web page (HTML)")),
            (b"<HTML><body>", Some("a web page (HTML)")),
            (
                b"<?xml version=\"1.0\"?>\n<office:document office:mimetype=\"x\">",
                Some("a flat OpenDocument spreadsheet (.fods)"),
            ),
        ];
        for (start, want) in cases {
            assert_eq!(
                markup_kind(start),
                want,
                "{}",
                String::from_utf8_lossy(start)
            );
        }
    }

    #[test]
    fn numbers_read_as_the_number_shown() {
        assert_eq!(text_of(&Data::Float(42.0)).0, "42");
        assert_eq!(text_of(&Data::Float(49301234567.0)).0, "49301234567");
        assert_eq!(text_of(&Data::Float(1.5)).0, "1.5");
        assert!(matches!(
            text_of(&Data::Float(1.5)).1,
            Stored::Number { whole: false, .. }
        ));
        assert!(matches!(
            text_of(&Data::Float(1e16)).1,
            Stored::Number { exact: false, .. }
        ));
        assert_eq!(text_of(&Data::Int(7)).0, "7");
        assert_eq!(
            text_of(&Data::Bool(true)),
            ("TRUE".to_string(), Stored::Logical)
        );
    }
}
