//! The input-format writer and the input reader agree: users written in the
//! input format read back, through the same reader and checks as any input,
//! as bodies that would change nothing about those users.

use gcore_iam_bulk::check::{Checker, Duplicates, Verdict};
use gcore_iam_bulk::model::api::{Group, User};
use gcore_iam_bulk::model::change::{apply, diff};
use gcore_iam_bulk::table::input::{Input, InputSettings, InputSource};
use gcore_iam_bulk::table::input_format::InputWriter;
use gcore_iam_bulk::table::xlsx;

fn users() -> Vec<User> {
    vec![
        User {
            id: Some(1),
            email: Some("anna.schmidt@example.com".into()),
            name: Some("=Anna \"Ann\" Schmidt, Dr.".into()),
            lang: Some("de".into()),
            phone: Some("+49 30 1234567".into()),
            company: Some("'@Example; GmbH".into()),
            groups: Some(vec![
                Group {
                    id: 2,
                    name: "Users".into(),
                },
                Group {
                    id: 3022,
                    name: "Purge and Prefetch only (API)".into(),
                },
            ]),
            auth_types: Some(vec!["password".into(), "google-oauth2".into()]),
            ..User::default()
        },
        User {
            id: Some(9_000_000_001),
            email: Some("chen.wei@example.cn".into()),
            name: None,
            lang: Some("zh".into()),
            phone: None,
            company: Some("陈氏".into()),
            groups: Some(vec![Group {
                id: 1,
                name: "Administrators".into(),
            }]),
            auth_types: Some(vec!["sso".into()]),
            ..User::default()
        },
    ]
}

/// Reads the users back from `path` through the input reader and the
/// checks, and asserts every row is a body that changes nothing about the
/// user it was written from.
fn assert_reads_back(path: std::path::PathBuf, users: &[User]) {
    let settings = InputSettings {
        source: InputSource::File(path),
        delimiter: None,
        encoding: None,
        null_token: "#null".into(),
        sheet: None,
        send_hidden_cells: false,
        ignore_unknown_columns: false,
    };
    let input = Input::open(&settings).unwrap();
    let mut rows = input.rows().unwrap();
    let header = rows.header().clone();
    let duplicates = Duplicates::default();
    let checker = Checker::new(&header, "#null", &duplicates);
    let mut read = Vec::new();
    while let Some(raw) = rows.next_row().unwrap() {
        read.push(checker.check(&raw));
    }
    assert_eq!(read.len(), users.len());
    for (checked, user) in read.into_iter().zip(users) {
        assert_eq!(checked.user_id, user.id);
        let Verdict::Send(body) = checked.verdict else {
            panic!("row {}: {:?}", checked.row, checked.verdict);
        };
        assert!(diff(&body, user).is_empty(), "{:?}", diff(&body, user));
        let mut rebuilt = User {
            id: user.id,
            ..User::default()
        };
        apply(&mut rebuilt, &body);
        assert_eq!(&rebuilt, user);
    }
}

#[test]
fn users_written_in_the_input_format_read_back_as_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.csv");
    let mut writer = InputWriter::export(Vec::new(), "#null").unwrap();
    for user in users() {
        writer.write_user(&user).unwrap();
    }
    std::fs::write(&path, writer.finish().unwrap()).unwrap();
    assert_reads_back(path, &users());
}

/// What a spreadsheet would take for numbers survives an `.xlsx` export:
/// its cells are text.
#[test]
fn users_exported_as_xlsx_read_back_as_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.xlsx");
    let mut users = users();
    users.push(User {
        id: Some(3),
        email: Some("x@example.com".into()),
        name: Some("007".into()),
        lang: Some("en".into()),
        phone: Some("+49301234567".into()),
        company: Some("0123".into()),
        groups: Some(vec![]),
        auth_types: Some(vec!["password".into()]),
        ..User::default()
    });
    users[2].groups = None;
    let mut file = std::fs::File::create(&path).unwrap();
    xlsx::write_users(&mut file, &users, "#null").unwrap();
    drop(file);
    assert_reads_back(path, &users);
}
