//! Spreadsheet safety for the files this tool writes (OWASP "CSV
//! injection"): a cell that a spreadsheet would take for a formula (it
//! begins with `=`, `@`, a tab or a carriage return, or with `+` or `-`
//! but is not a number or a phone number) is written with a leading `'`,
//! which spreadsheets show as "text". A cell that itself begins with `'`
//! before such a mark (or another `'`) gets one more, so that [`restore`]
//! undoes exactly what [`neutralise`] did (`'Ann` is written as it is), and
//! the files this tool writes in its input format read back as they were.

use std::borrow::Cow;

/// The cell as written to a file a spreadsheet may open.
pub(crate) fn neutralise(cell: &str) -> Cow<'_, str> {
    if needs_quote(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// Whether a plain cell is a JSON text or null as the undo file writes
/// them (`"Ann Lee"`, `null`): such a row lost its `verbatim` column, and
/// its cells would be sent with their quotes, or as the text "null". The
/// reader refuses such a cell, so `export` writes none (it marks the row).
pub(crate) fn looks_like_json(cell: &str) -> bool {
    cell == "null"
        || (cell.len() >= 2
            && cell.starts_with('"')
            && cell.ends_with('"')
            && serde_json::from_str::<String>(cell).is_ok())
}

/// The cell as it was before [`neutralise`]: one leading `'` is dropped
/// before `=`, `+`, `-`, `@`, a tab, a carriage return or another `'` (what
/// neutralising adds, and what a person types to keep `+49...` as text).
/// Any other cell is left alone (a name such as `'Ann` stays as typed).
pub(crate) fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if starts_like_a_formula(rest) => rest,
        _ => cell,
    }
}

/// A `'` before these marks a cell as text in a spreadsheet: a person who
/// types `'+49 30 1234567` means the phone, not the `'`.
fn starts_like_a_formula(cell: &str) -> bool {
    matches!(
        cell.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r' | b'\'')
    )
}

/// The cell as written where formulas are no danger (a workbook's text
/// cell) but is read back through [`restore`]: only a cell that `restore`
/// would change gets its leading `'`, so that it reads back as it was.
pub(crate) fn keep_through_restore(cell: &str) -> Cow<'_, str> {
    if restore(cell).len() != cell.len() {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

fn needs_quote(cell: &str) -> bool {
    match cell.as_bytes().first() {
        Some(b'=' | b'@' | b'\t' | b'\r') => true,
        // A name such as `'Ann` runs nothing and reads back as it is: only
        // a `'` that [`restore`] would drop needs one more.
        Some(b'\'') => starts_like_a_formula(&cell[1..]),
        Some(b'+' | b'-') => !looks_like_a_number(cell),
        _ => false,
    }
}

/// `+49 30 1234567`, `-5`, `+1 (555) 010-0199`: digits and the marks of a
/// phone number only, which no spreadsheet reads as a formula that runs.
fn looks_like_a_number(cell: &str) -> bool {
    cell.bytes().any(|b| b.is_ascii_digit())
        && cell.bytes().all(|b| {
            b.is_ascii_digit() || matches!(b, b'+' | b'-' | b' ' | b'(' | b')' | b'.' | b'/')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_quoted_and_numbers_are_not() {
        let cases = [
            ("=1+2", "'=1+2"),
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("+SUM(A1)", "'+SUM(A1)"),
            ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'quoted", "'quoted"),
            ("'=1", "''=1"),
            ("''x", "'''x"),
            ("+49 30 1234567", "+49 30 1234567"),
            ("+1 (555) 010-0199", "+1 (555) 010-0199"),
            ("-5", "-5"),
            ("Anna Schmidt", "Anna Schmidt"),
            ("O'Neil", "O'Neil"),
            ("", ""),
            ("-", "'-"),
        ];
        for (cell, written) in cases {
            assert_eq!(neutralise(cell), written, "{cell:?}");
            assert_eq!(restore(&neutralise(cell)), cell, "{cell:?} round trip");
            assert_eq!(restore(&keep_through_restore(cell)), cell, "{cell:?} kept");
        }
        // In a workbook's text cell, a formula-like value is written as it is.
        assert_eq!(keep_through_restore("=1+2"), "=1+2");
        assert_eq!(keep_through_restore("'=1+2"), "''=1+2");
        // Typed by a person, not written by this tool: left alone.
        assert_eq!(restore("'Ann"), "'Ann");
        // Typed by a person to keep a phone as text: the phone is meant.
        assert_eq!(restore("'+49 30 1234567"), "+49 30 1234567");
        assert_eq!(restore("'-5"), "-5");
    }
}
