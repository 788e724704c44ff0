//! Writing users in the input format as an `.xlsx` workbook (the
//! rust_xlsxwriter crate), for `export -o users.xlsx`. Every cell is text,
//! and every column is formatted as text, so that a spreadsheet keeps a
//! phone's `+`, leading zeros and long IDs through any edit and save: the
//! damage a CSV suffers on its way through a spreadsheet cannot happen.
//! The header row is bold, frozen and filterable; the columns are as wide
//! as their contents (within reason).

use std::io::Write;

use rust_xlsxwriter::{ColNum, Format, RowNum, Workbook};

use super::cells::keep_through_restore;
use super::input_format::{header_names, user_cells};
use crate::model::api::User;

/// The most rows a sheet holds (Excel's and LibreOffice's limit), the
/// header's included.
pub(crate) const MAX_ROWS: u64 = 1_048_576;

/// The most characters a cell holds (Excel's limit, which rust_xlsxwriter
/// enforces).
pub(crate) const MAX_CELL_CHARS: usize = 32_767;

/// The widest a column is made, in characters; longer values wrap out of
/// sight until the column is widened.
const MAX_WIDTH: usize = 50;

/// The name of the one sheet.
pub(crate) const SHEET_NAME: &str = "users";

/// Writes `users` to `sink` as an `.xlsx` workbook with one sheet. The
/// error is a sentence for the user.
pub fn write_users<W: Write + Send>(
    sink: W,
    users: &[User],
    null_token: &str,
) -> Result<(), String> {
    if users.len() as u64 >= MAX_ROWS {
        return Err(format!(
            "{} users do not fit in one sheet (at most {} rows); export to a .csv file instead",
            users.len(),
            MAX_ROWS - 1
        ));
    }
    let failed = |error: rust_xlsxwriter::XlsxError| format!("cannot write the workbook: {error}");
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name(SHEET_NAME).map_err(failed)?;
    let text = Format::new().set_num_format("@");
    let bold = Format::new().set_num_format("@").set_bold();
    let names = header_names(true);
    let mut widths: Vec<usize> = names.iter().map(|name| name.chars().count()).collect();
    for (column, name) in names.iter().enumerate() {
        let column = column as ColNum;
        // New cells typed into the column are text too.
        sheet.set_column_format(column, &text).map_err(failed)?;
        sheet
            .write_string_with_format(0, column, *name, &bold)
            .map_err(failed)?;
    }
    for (i, user) in users.iter().enumerate() {
        let row = i as RowNum + 1;
        let id = user.id.map(|id| id.to_string()).unwrap_or_default();
        for (column, cell) in user_cells(&id, user, null_token, true)
            .into_iter()
            .enumerate()
        {
            if cell.is_empty() {
                continue;
            }
            // Text cells run no formula; only what the reader's undoing of
            // a CSV's neutralising would change needs a mark.
            let cell = keep_through_restore(&cell);
            let length = cell.chars().count();
            if length > MAX_CELL_CHARS {
                return Err(format!(
                    "the user {} has a {} of {length} characters, more than the {MAX_CELL_CHARS} \
                     a spreadsheet cell holds; export to a .csv file instead",
                    if id.is_empty() { "without an ID" } else { &id },
                    names[column],
                ));
            }
            widths[column] = widths[column].max(length);
            sheet
                .write_string_with_format(row, column as ColNum, cell, &text)
                .map_err(failed)?;
        }
    }
    for (column, width) in widths.iter().enumerate() {
        let width = (*width).clamp(6, MAX_WIDTH) + 2;
        sheet
            .set_column_width(column as ColNum, width as f64)
            .map_err(failed)?;
    }
    sheet.set_freeze_panes(1, 0).map_err(failed)?;
    sheet
        .autofilter(0, 0, users.len() as RowNum, (names.len() - 1) as ColNum)
        .map_err(failed)?;
    workbook.save_to_writer(sink).map_err(failed)
}

/// Whether `path` names an `.xlsx` file (any case).
pub(crate) fn is_xlsx_path(path: &std::path::Path) -> bool {
    path.extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| ext.eq_ignore_ascii_case("xlsx"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_too_long_for_a_cell_names_the_user_and_field() {
        let user: User = serde_json::from_value(serde_json::json!({
            "id": 17,
            "name": "x".repeat(40_000),
        }))
        .unwrap();
        let error = write_users(std::io::Cursor::new(Vec::new()), &[user], "#null").unwrap_err();
        assert!(
            error.contains("the user 17 has a name of 400")
                && error.contains("more than the 32767"),
            "{error}"
        );
    }
}
