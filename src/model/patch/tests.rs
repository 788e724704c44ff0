use super::*;
use serde_json::json;

fn body_of(cells: &[(Field, &str)]) -> Result<String, String> {
    let mut body = PatchBody::default();
    for (field, cell) in cells {
        body.set_cell(*field, cell, "#null")?;
    }
    Ok(serde_json::to_string(&body).unwrap())
}

#[test]
fn cells_become_body_fields() {
    use Field::*;
    let cases: &[(&[(Field, &str)], &str)] = &[
        (&[(Email, "a@example.com")], r#"{"email":"a@example.com"}"#),
        (&[(Name, "Ann Lee")], r#"{"name":"Ann Lee"}"#),
        (&[(Name, "#null")], r#"{"name":null}"#),
        (&[(Phone, "#NULL")], r#"{"phone":null}"#),
        (&[(Lang, "DE")], r#"{"lang":"de"}"#),
        (&[(Company, "Acme")], r#"{"company":"Acme"}"#),
        (
            &[(Groups, "users; 5")],
            r#"{"groups":[{"id":2,"name":"Users"},{"id":5,"name":"Engineers"}]}"#,
        ),
        (
            &[(Groups, "Purge and Prefetch only (API+Web)|1")],
            r#"{"groups":[{"id":3009,"name":"Purge and Prefetch only (API+Web)"},{"id":1,"name":"Administrators"}]}"#,
        ),
        (
            &[(AuthTypes, "password;Google-OAuth2")],
            r#"{"auth_types":["password","google-oauth2"]}"#,
        ),
        (
            &[(Lang, "en"), (Email, "b@example.org")],
            r#"{"email":"b@example.org","lang":"en"}"#,
        ),
    ];
    for (cells, want) in cases {
        assert_eq!(body_of(cells).as_deref(), Ok(*want), "{cells:?}");
    }
}

#[test]
fn bad_cells_say_what_is_wrong() {
    use Field::*;
    let long = "x".repeat(256);
    let cases: &[(Field, &str, &str)] = &[
        (Lang, "fr", r#""fr" is not one of de, en, ru, zh, az"#),
        (Email, "x@", r#""x@" is not a valid address"#),
        (Email, "ann@localhost", "too few parts in the domain"),
        (Email, "Ann <ann@example.com>", "not a valid address"),
        (Email, "#null", "only name and phone can be cleared"),
        (Company, "#null", "only name and phone can be cleared"),
        (Groups, "Admins", r#"did you mean "Administrators"?"#),
        (Groups, "4", r#""4" is not an IAM group"#),
        (Groups, "Users;;", "item 2 is empty"),
        (Groups, "Users;users", r#""users" is listed twice"#),
        (
            AuthTypes,
            "saml",
            r#""saml" is not one of password, sso, github, google-oauth2"#,
        ),
        (Name, "a\u{0}b", "control character (U+0000)"),
        (Name, "two\nlines", "control character (U+000A)"),
        (
            Name,
            &long,
            "is 256 characters long; at most 255 are allowed",
        ),
        (Phone, "+49 30 1234567890 1234567890 12345", "at most 32"),
    ];
    for (field, cell, want) in cases {
        let error = body_of(&[(*field, cell)]).unwrap_err();
        assert!(error.contains(want), "{field:?} {cell:?}: {error}");
    }
}

#[test]
fn the_null_token_can_be_changed() {
    let mut body = PatchBody::default();
    body.set_cell(Field::Name, "NULL", "null").unwrap();
    assert_eq!(body.name, Some(None));
    assert!(body.set_cell(Field::Name, "#null", "null").is_ok());
    assert_eq!(body.name, Some(Some("#null".to_string())));
}

#[test]
fn numbers_a_spreadsheet_wrote_in_scientific_notation() {
    for text in [
        "4.93E+10", "4,93E+10", "1e5", " 1.2E-3 ", "-4.9E+10", "49E10",
    ] {
        assert!(scientific(text), "{text}");
    }
    for text in [
        "+49 30 1234",
        "E10",
        "1.E5",
        "4.9E",
        "e",
        "name@example.com",
        "1e5x",
    ] {
        assert!(!scientific(text), "{text}");
    }
    let mut body = PatchBody::default();
    let error = body
        .set_cell(Field::Phone, "4.93E+10", "#null")
        .unwrap_err();
    assert!(error.contains("format the phone column as text"), "{error}");
    assert!(body.set_cell(Field::Phone, "+49 30 1234", "#null").is_ok());
}

#[test]
fn user_ids() {
    let cases: &[(&str, Result<u64, &str>)] = &[
        ("7", Ok(7)),
        (" 7 ", Ok(7)),
        ("007", Ok(7)),
        ("9223372036854775807", Ok(MAX_USER_ID)),
        ("0", Err("0 is not a user ID")),
        ("-1", Err(r#""-1" is not a positive whole number"#)),
        ("1.5", Err(r#""1.5" is not a positive whole number"#)),
        ("+7", Err("is not a positive whole number")),
        ("", Err("is empty")),
        ("9223372036854775808", Err("is too large")),
        ("99999999999999999999", Err("is too large")),
    ];
    for (text, want) in cases {
        match (parse_user_id(text), want) {
            (Ok(got), Ok(want)) => assert_eq!(got, *want, "{text:?}"),
            (Err(got), Err(want)) => assert!(got.contains(want), "{text:?}: {got}"),
            (got, want) => panic!("{text:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn json_bodies_are_checked_like_cells() {
    let ok = json!({"name": null, "lang": "ru", "groups": [{"id": 2, "name": "Users"}, {"id": 1}]});
    let body = PatchBody::from_json(&ok).unwrap();
    assert_eq!(body.name, Some(None));
    assert_eq!(body.lang.as_deref(), Some("ru"));
    assert_eq!(body.groups.unwrap().len(), 2);

    let bad = json!({"email": "x@", "lang": "FR", "company": null, "colour": 1,
                     "phone": 5, "groups": [{"id": 3}], "auth_types": ["Password"]});
    let problems = PatchBody::from_json(&bad).unwrap_err();
    let text = describe(&problems);
    for want in [
        "email: \"x@\" is not a valid address",
        "lang: \"FR\" is not one of",
        "company: cannot be null",
        "colour: is not a field of this endpoint",
        "phone: must be a string or null, not a number",
        "groups: item 1: 3 is not an IAM group ID",
        "auth_types: item 1: \"Password\" is not one of",
    ] {
        assert!(text.contains(want), "missing {want:?} in {text}");
    }
    assert_eq!(problems.len(), 7);

    let upper = PatchBody::from_json(&json!({"lang": "DE"})).unwrap_err();
    assert_eq!(
        upper[0].to_string(),
        "lang: \"DE\" is not one of de, en, ru, zh, az (lowercase)"
    );

    let not_object = PatchBody::from_json(&json!([1])).unwrap_err();
    assert_eq!(
        not_object[0].to_string(),
        "the body must be a JSON object, not an array"
    );
}

#[test]
fn messages_cut_long_values() {
    let shown = show(&"é".repeat(1000));
    assert!(shown.chars().count() < 50, "{shown}");
    assert_eq!(show("a\"b"), r#""a\"b""#);
}

#[test]
fn closest_finds_typos_only() {
    let columns = ["email", "name", "lang"];
    assert_eq!(closest("emial", columns), Some("email"));
    assert_eq!(closest("Nmae", columns), Some("name"));
    assert_eq!(closest("department", columns), None);
}
