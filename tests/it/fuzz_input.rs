//! Any bytes at all, read as an input file and checked row by row: never a
//! panic, only rows and row problems, or one fatal error that says what is
//! wrong with the file. A property test (proptest) over CSV-like bytes:
//! quotes, separators, line breaks, byte-order marks, invalid UTF-8.
//!
//! 256 cases run with `cargo test`; a million:
//! `PROPTEST_CASES=1000000 cargo test --release --test it fuzz_input::`.

use gcore_iam_bulk::check::{Checker, Preflight};
use gcore_iam_bulk::table::input::{Input, InputSettings, InputSource};
use proptest::prelude::*;

/// Bytes that make CSV interesting, mixed with any byte at all.
fn csv_bytes() -> impl Strategy<Value = Vec<u8>> {
    let header = prop_oneof![
        Just(b"user_id,email,name,lang,phone,company,groups,auth_types\n".to_vec()),
        Just(b"user_id;lang\r\n".to_vec()),
        Just(b"\xEF\xBB\xBFid\tname\n".to_vec()),
        Just(b"\xFF\xFEu\0s\0e\0r\0_\0i\0d\0\n\0".to_vec()),
        Just(Vec::new()),
    ];
    let piece = prop_oneof![
        4 => prop::sample::select(vec![
            b",".to_vec(), b";".to_vec(), b"\"".to_vec(), b"\"\"".to_vec(), b"\n".to_vec(),
            b"\r\n".to_vec(), b"\r".to_vec(), b"7".to_vec(), b"#null".to_vec(), b"de".to_vec(),
            b"a@b.example".to_vec(), b"Users;5".to_vec(), b"password|sso".to_vec(),
            b"=1+2".to_vec(), b"'=x".to_vec(), b" ".to_vec(), b"\t".to_vec(),
            "Zo\u{eb}".as_bytes().to_vec(), b"\xE9".to_vec(), b"\xEF\xBB\xBF".to_vec(),
        ]),
        1 => prop::collection::vec(any::<u8>(), 1..8),
    ];
    (header, prop::collection::vec(piece, 0..60))
        .prop_map(|(header, pieces)| [header, pieces.concat()].concat())
}

fn settings(path: std::path::PathBuf, delimiter: Option<u8>) -> InputSettings {
    InputSettings {
        source: InputSource::File(path),
        delimiter,
        encoding: None,
        null_token: "#null".into(),
        sheet: None,
        send_hidden_cells: false,
        ignore_unknown_columns: true,
    }
}

proptest! {
    #[test]
    fn any_bytes_check_without_a_panic(bytes in csv_bytes(), semicolon in any::<bool>()) {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, &bytes).unwrap();
        let delimiter = semicolon.then_some(b';');
        let Ok(input) = Input::open(&settings(file.path().to_path_buf(), delimiter)) else {
            return Ok(());
        };
        // A fatal error (an empty file, a bad header, an unclosed quote) is
        // an answer too; a panic is not.
        let Ok(preflight) = Preflight::scan(&input, "#null", true) else {
            return Ok(());
        };
        let Ok(mut rows) = input.rows() else {
            return Ok(());
        };
        let header = rows.header().clone();
        let checker = Checker::new(&header, "#null", &preflight.duplicates);
        let mut last_row = 1;
        let mut checked = 0;
        while let Ok(Some(raw)) = rows.next_row() {
            prop_assert!(raw.row > last_row, "row numbers grow: {} after {}", raw.row, last_row);
            last_row = raw.row;
            let row = checker.check(&raw);
            prop_assert_eq!(row.row, raw.row);
            checked += 1;
        }
        prop_assert!(checked <= preflight.rows);
    }
}

/// A small valid workbook: a header and two rows, text and numbers.
fn small_workbook() -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (column, name) in ["user_id", "name", "phone"].iter().enumerate() {
        sheet.write_string(0, column as u16, *name).unwrap();
    }
    sheet.write_number(1, 0, 1).unwrap();
    sheet.write_string(1, 1, "Anna").unwrap();
    sheet.write_number(1, 2, 49301234567.0).unwrap();
    sheet.write_string(2, 0, "2").unwrap();
    sheet.write_string(2, 1, "Boris").unwrap();
    book.save_to_buffer().unwrap()
}

proptest! {
    /// A damaged workbook (bytes changed, the end cut off) is an error or
    /// rows, never a panic.
    #[test]
    fn damaged_workbooks_read_without_a_panic(
        changes in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
        cut_it in any::<bool>(),
    ) {
        let mut bytes = small_workbook();
        for (at, value) in changes {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        if cut_it {
            bytes.truncate(cut.index(bytes.len()).max(4));
        }
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, &bytes).unwrap();
        let Ok(input) = Input::open(&settings(file.path().to_path_buf(), None)) else {
            return Ok(());
        };
        let Ok(mut rows) = input.rows() else {
            return Ok(());
        };
        let header = rows.header().clone();
        let duplicates = Default::default();
        let checker = Checker::new(&header, "#null", &duplicates);
        while let Ok(Some(raw)) = rows.next_row() {
            let row = checker.check(&raw);
            prop_assert_eq!(row.row, raw.row);
        }
    }
}
