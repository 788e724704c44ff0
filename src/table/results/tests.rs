use super::*;
use crate::model::api::{ClientAndRoles, Group};

fn user(id: u64) -> User {
    User {
        id: Some(id),
        email: Some(format!("user.{id}@example.com")),
        name: Some("Zoë \"Z\" O'Neil, Jr.".into()),
        lang: Some("de".into()),
        phone: None,
        company: Some("Acme; Ltd\nSecond line".into()),
        reseller: Some(-3),
        client: Some(serde_json::Number::from(123456u64)),
        deleted: Some(false),
        groups: Some(vec![
            Group {
                id: 2,
                name: "Users".into(),
            },
            Group {
                id: 3009,
                name: "Purge and Prefetch only (API+Web)".into(),
            },
        ]),
        activated: Some(true),
        sso_auth: None,
        two_fa: Some(true),
        auth_types: Some(vec!["password".into(), "google-oauth2".into()]),
        user_type: Some("common".into()),
        is_active: Some(true),
        client_and_roles: Some(vec![ClientAndRoles {
            client_id: 123456,
            client_company_name: "Acme, \"quoted\"".into(),
            user_roles: vec!["2".into(), "3009".into()],
            user_id: id,
        }]),
        absent: Default::default(),
        blanked: Default::default(),
    }
}

fn records() -> Vec<ResultRecord> {
    vec![
        ResultRecord {
            row: 2,
            user_id: "7".into(),
            status: Status::UPDATED,
            http_status: Some(200),
            attempts: 3,
            error: String::new(),
            request: r#"{"name":"Zoë \"Z\" O'Neil, Jr.","lang":"de"}"#.into(),
            changes: "lang: en -> de".into(),
            user: Some(Box::new(user(7))),
        },
        ResultRecord::decided(
            4,
            "x7".into(),
            Status::INVALID,
            "user_id: \"x7\" is not a positive whole number".into(),
        ),
        ResultRecord {
            row: 5,
            user_id: " 9".into(),
            status: Status::FAILED,
            http_status: Some(503),
            attempts: 6,
            error: "HTTP 503 Service Unavailable; gave up after 6 attempts".into(),
            request: r#"{"phone":null}"#.into(),
            changes: String::new(),
            user: None,
        },
    ]
}

fn written(records: &[ResultRecord]) -> Vec<u8> {
    let mut writer = RecordWriter::new(Vec::new()).unwrap();
    for record in records {
        writer.write(record).unwrap();
    }
    writer.flush().unwrap();
    writer.csv.into_inner().unwrap()
}

fn read_back(bytes: &[u8]) -> (Vec<Result<ResultRecord, String>>, bool) {
    let ends = bytes.last().is_none_or(|b| *b == b'\n');
    let mut reader = RecordReader::new(bytes, ends).unwrap();
    let mut records = Vec::new();
    while let Some(record) = reader.next_record() {
        records.push(record);
    }
    (records, reader.torn())
}

#[test]
fn the_record_reads_back_what_it_writes() {
    let records = records();
    let bytes = written(&records);
    let (read, torn) = read_back(&bytes);
    let read: Vec<ResultRecord> = read.into_iter().map(Result::unwrap).collect();
    assert!(!torn);
    assert_eq!(read, records);
}

#[test]
fn formulas_from_the_server_are_written_safe_and_read_back_as_they_were() {
    let mut record = records().remove(0);
    let user = record.user.as_mut().unwrap();
    user.name = Some("=HYPERLINK(\"http://evil\",\"x\")".into());
    user.company = Some("@SUM(A1)".into());
    user.phone = Some("+49 30 1234567".into());
    let bytes = written(std::slice::from_ref(&record));
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.contains("\"'=HYPERLINK("), "{text}");
    assert!(text.contains(",'@SUM(A1),"), "{text}");
    assert!(text.contains(",+49 30 1234567,"), "{text}");
    let (read, _) = read_back(&bytes);
    assert_eq!(read[0].as_ref().unwrap(), &record);

    let mut raw = RecordWriter::new(Vec::new()).unwrap().raw();
    raw.write(&record).unwrap();
    let raw = String::from_utf8(raw.csv.into_inner().unwrap()).unwrap();
    assert!(raw.contains(",@SUM(A1),"), "{raw}");
}

#[test]
fn a_last_line_cut_anywhere_is_left_out_and_reported() {
    let records = records();
    let bytes = written(&records);
    let whole_two = bytes.len()
        - bytes
            .iter()
            .rev()
            .skip(1)
            .position(|b| *b == b'\n')
            .unwrap()
        - 1;
    // Every cut inside the last line: the first two records, torn.
    for cut in whole_two + 1..bytes.len() {
        let (read, torn) = read_back(&bytes[..cut]);
        let read: Vec<ResultRecord> = read.into_iter().map(Result::unwrap).collect();
        assert!(torn, "cut at {cut}");
        assert_eq!(read, records[..2], "cut at {cut}");
    }
    // A cut just after a line break is a whole, shorter file.
    let (read, torn) = read_back(&bytes[..whole_two]);
    assert!(!torn);
    assert_eq!(read.len(), 2);
}

#[test]
fn columns_are_found_by_name_and_bad_cells_named() {
    let text = format!(
        "{}\n",
        COLUMNS.iter().rev().copied().collect::<Vec<_>>().join(",")
    );
    let mut row: Vec<&str> = vec![""; COLUMNS.len()];
    // Reversed order: `row` is the last column, `status` the third from last.
    row[COLUMNS.len() - 1] = "12";
    row[COLUMNS.len() - 3] = "skipped";
    let text = format!("{text}{}\n", row.join(","));
    let (read, _) = read_back(text.as_bytes());
    let record = read[0].clone().unwrap();
    assert_eq!((record.row, record.status), (12, Status::SKIPPED));

    row[COLUMNS.len() - 3] = "done";
    let text = format!(
        "{}\n{}\n",
        COLUMNS.iter().rev().copied().collect::<Vec<_>>().join(","),
        row.join(",")
    );
    let (read, _) = read_back(text.as_bytes());
    assert_eq!(
        read[0].clone().unwrap_err(),
        "line 2, column status: \"done\" is not a status"
    );

    let error = RecordReader::new("user_id,email\n".as_bytes(), true)
        .err()
        .unwrap();
    assert!(error.to_string().contains("no row column"), "{error}");
}

/// The user columns are made in buffers kept from row to row: a row after
/// a longer one shows its own values only, and a `client` that is not a
/// whole number is written as JSON writes it.
#[test]
fn user_columns_made_in_kept_buffers_show_each_rows_own_values() {
    let mut long = records().remove(0);
    let mut short = long.clone();
    let user = short.user.as_mut().unwrap();
    user.groups = Some(vec![Group {
        id: 2,
        name: "Users".into(),
    }]);
    user.auth_types = Some(vec!["sso".into()]);
    user.client = serde_json::Number::from_f64(1.5);
    user.client_and_roles = None;
    short.row = 3;
    long.user.as_mut().unwrap().client = Some(serde_json::Number::from(-7i64));
    let bytes = written(&[long.clone(), short.clone(), long.clone()]);
    let rows = crate::table::results::tests::cells(&bytes);
    let column = |name: &str| COLUMNS.iter().position(|c| *c == name).unwrap();
    assert_eq!(
        rows[1][column("groups")],
        "Users;Purge and Prefetch only (API+Web)"
    );
    assert_eq!(rows[2][column("groups")], "Users");
    assert_eq!(rows[2][column("auth_types")], "sso");
    assert_eq!(rows[2][column("client")], "1.5");
    assert_eq!(rows[1][column("client")], "-7");
    assert_eq!(rows[2][column("client_and_roles")], "");
    assert_eq!(rows[1], rows[3], "the same row, written twice alike");
    let (read, _) = read_back(&bytes);
    assert_eq!(read[1].as_ref().unwrap(), &short);
}

fn cells(bytes: &[u8]) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes)
        .records()
        .map(|record| record.unwrap().iter().map(str::to_string).collect())
        .collect()
}
