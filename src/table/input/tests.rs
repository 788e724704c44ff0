use super::*;
use crate::model::field::Field;

fn header(line: &str, ignore: bool) -> Result<Header, String> {
    let names: Vec<&str> = line.split(',').collect();
    Header::parse(&names, ignore)
}

#[test]
fn header_names_match_loosely() {
    let parsed = header(
        "\u{feff} UserId ,EMAIL, Name,lang,phone,company,groups,auth_types,",
        false,
    )
    .unwrap();
    assert_eq!(parsed.user_id, Some(0));
    assert_eq!(parsed.columns[1], Column::Field(Field::Email));
    assert_eq!(parsed.columns[8], Column::Unnamed);
    assert_eq!(header("id,name", false).unwrap().user_id, Some(0));
    let by_email = header("lang,Current_Email,is_active", false).unwrap();
    assert_eq!((by_email.user_id, by_email.current_email), (None, Some(1)));
    assert_eq!(by_email.ignored(), ["is_active"]);
}

#[test]
fn header_mistakes() {
    let cases = [
        (
            "user_id,emial",
            "unknown column \"emial\" (column 2): did you mean \"email\"?",
        ),
        ("user_id,emial", "--ignore-unknown-columns"),
        // Excel's line for the delimiter, before the header.
        ("sep=;", "the first line is Excel's sep= line"),
        ("sep=;", "(the delimiter is found by itself)"),
        ("sep=|", "delete that line (then pass --delimiter '|')"),
        ("user_id,verbatm", "did you mean \"verbatim\"?"),
        ("user_id,x", "action, current_email, verbatim;"),
        ("email,name", "no user_id column (found: email, name)"),
        ("user_id,email,Email", "names email twice (columns 2 and 3)"),
        (
            "email,name",
            "or name users by their address in a current_email column",
        ),
        (
            "current_email,currentEmail",
            "names current_email twice (columns 1 and 2)",
        ),
        (
            "id,user_id",
            "names user_id (or id, userId) twice (columns 1 and 2)",
        ),
    ];
    for (line, want) in cases {
        let error = header(line, false).unwrap_err();
        assert!(error.contains(want), "{line}: {error}");
    }
    let wide: Vec<String> = (0..16_000).map(|i| format!("column{i}")).collect();
    let mut names: Vec<&str> = vec!["user_id"];
    names.extend(wide.iter().map(String::as_str));
    let error = Header::parse(&names, false).unwrap_err();
    assert!(error.len() < 600, "{} bytes", error.len());
    assert!(error.contains("and 15992 more"), "{error}");
    let error = Header::parse(&names[1..], false).unwrap_err();
    assert!(error.len() < 600, "{} bytes", error.len());
    let wider: Vec<&str> = vec!["x"; MAX_COLUMNS + 1];
    let error = Header::parse(&wider, true).unwrap_err();
    assert!(
        error.contains("the header has 16385 columns; at most 16384"),
        "{error}"
    );
    let skipped = header("user_id,department", true).unwrap();
    assert_eq!(skipped.ignored(), ["department"]);
}

/// The row number of each user_id, as a spreadsheet shows them.
fn rows_of(text: &str) -> Vec<(u64, String)> {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
    let config = InputSettings {
        source: InputSource::File(file.path().to_path_buf()),
        delimiter: None,
        encoding: None,
        null_token: "#null".into(),
        ignore_unknown_columns: false,
        sheet: None,
        send_hidden_cells: false,
    };
    let input = Input::open(&config).unwrap();
    let mut reader = input.rows().unwrap();
    let mut rows = Vec::new();
    while let Some(raw) = reader.next_row().unwrap() {
        let id = String::from_utf8_lossy(&raw.cells[0]).trim().to_string();
        rows.push((raw.row, id));
    }
    rows
}

#[test]
fn row_numbers_match_the_spreadsheet() {
    let cases: &[(&str, &[(u64, &str)])] = &[
        ("id\n1\n2\n", &[(2, "1"), (3, "2")]),
        ("id\n1\n2", &[(2, "1"), (3, "2")]),
        ("id\r\n1\r\n2\r\n", &[(2, "1"), (3, "2")]),
        ("id\n1\n\n2", &[(2, "1"), (4, "2")]),
        ("id\n1\n\n\n2\n\n", &[(2, "1"), (5, "2")]),
        ("id\r\n1\r\n\r\n2\r\n", &[(2, "1"), (4, "2")]),
        ("\nid\n1\n", &[(3, "1")]),
        ("id,name\n1,\"a\nb\nc\"\n2,x\n", &[(2, "1"), (3, "2")]),
        ("id,name\r\n1,\"a\r\nb\"\r\n\r\n2,x", &[(2, "1"), (4, "2")]),
        ("id,name\n1,x\n,\n ,  \n2,x\n", &[(2, "1"), (5, "2")]),
    ];
    for (text, want) in cases {
        let got = rows_of(text);
        let want: Vec<(u64, String)> = want.iter().map(|(r, id)| (*r, id.to_string())).collect();
        assert_eq!(got, want, "{text:?}");
    }
}

#[test]
fn delimiter_is_guessed_from_the_header_line() {
    assert_eq!(sniff_delimiter(b"user_id,email\n1;2"), b',');
    assert_eq!(sniff_delimiter(b"user_id;email\n1,2"), b';');
    assert_eq!(sniff_delimiter(b"user_id\temail"), b'\t');
    assert_eq!(sniff_delimiter(b"user_id"), b',');
}
