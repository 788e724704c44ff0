use super::*;
use crate::model::api::{ClientAndRoles, Lang};

fn ann() -> User {
    User {
        id: Some(7),
        email: Some("ann@example.com".into()),
        name: Some("Ann".into()),
        lang: Some("en".into()),
        phone: None,
        company: Some("Acme".into()),
        groups: Some(vec![Group {
            id: 2,
            name: "Users".into(),
        }]),
        auth_types: Some(vec!["password".into(), "sso".into()]),
        client_and_roles: Some(vec![ClientAndRoles {
            client_id: 1,
            client_company_name: "Acme".into(),
            user_roles: vec!["2".into()],
            user_id: 7,
        }]),
        ..User::default()
    }
}

fn body(cells: &[(Field, &str)]) -> PatchBody {
    let mut body = PatchBody::default();
    for (field, cell) in cells {
        body.set_cell(*field, cell, "#null").unwrap();
    }
    body
}

#[test]
fn diffs_read_as_the_plan_shows_them() {
    use Field::*;
    let cases: &[(&[(Field, &str)], &str)] = &[
        (&[(Lang, "de")], "lang: en -> de"),
        (&[(Lang, "EN")], ""),
        (&[(Name, "#null")], "name: \"Ann\" -> null"),
        (&[(Phone, "+49 30 1")], "phone: null -> \"+49 30 1\""),
        (&[(Phone, "#null")], ""),
        (
            &[(Groups, "Users;Engineers")],
            "groups: Users -> Users;Engineers",
        ),
        (&[(Groups, "users")], ""),
        (&[(AuthTypes, "sso;password")], ""),
        (
            &[(AuthTypes, "github")],
            "auth_types: password;sso -> github",
        ),
        (&[(Company, "Acme")], ""),
        (
            &[(Email, "a@example.org"), (Lang, "ru")],
            "email: \"ann@example.com\" -> \"a@example.org\"; lang: en -> ru",
        ),
    ];
    for (cells, want) in cases {
        assert_eq!(describe(&diff(&body(cells), &ann())), *want, "{cells:?}");
    }
    let nobody = User::default();
    assert_eq!(
        describe(&diff(&body(&[(Groups, "1")]), &nobody)),
        "groups: (none) -> Administrators"
    );
}

#[test]
fn applying_a_body_leaves_nothing_to_diff_and_moves_the_roles() {
    let change = body(&[
        (Field::Name, "#null"),
        (Field::Lang, "de"),
        (Field::Groups, "Engineers;1"),
        (Field::AuthTypes, "github"),
    ]);
    let mut user = ann();
    apply(&mut user, &change);
    assert!(diff(&change, &user).is_empty());
    assert_eq!(user.name, None);
    assert_eq!(user.lang.as_deref(), Some(Lang::De.as_str()));
    assert_eq!(user.email, ann().email, "fields not in the body stay");
    assert_eq!(
        user.client_and_roles.unwrap()[0].user_roles,
        ["5".to_string(), "1".to_string()]
    );
}

#[test]
fn a_spreadsheets_damage_to_numbers_is_told_from_a_change() {
    let user = |phone: &str, name: &str| User {
        phone: Some(phone.into()),
        name: Some(name.into()),
        ..User::default()
    };
    let cases: &[(&str, &str, &str, &str, Option<&str>)] = &[
        (
            "+49301234567",
            "x",
            "49301234567",
            "",
            Some("its leading +"),
        ),
        (
            "0301234567",
            "x",
            "301234567",
            "",
            Some("its leading zeros"),
        ),
        ("+49301234567", "x", "+49301234568", "", None),
        ("+49 30 1234567", "x", "+49 30 7654321", "", None),
        ("1", "007", "", "7", Some("its leading zeros")),
        ("1", "1000", "", "1.00E+03", Some("scientific notation")),
        (
            "1",
            "12345678901234567",
            "",
            "12345678901234600",
            Some("digits"),
        ),
        ("1", "Ann", "", "Bob", None),
        // Repairs and a person's edits, not damage: a + or zeros added,
        // the 00 international prefix, a decimal made longer.
        ("4930123", "x", "+4930123", "", None),
        ("+49301234567", "x", "0049301234567", "", None),
        ("1", "0", "", "00", None),
        ("1", "1.5", "", "1.50", None),
        ("1", "12", "", "12.0", None),
        ("1", "1.50", "", "1.5", Some("digits")),
        ("1", "-5.00", "", "-5", Some("digits")),
        ("1", "1e3", "", "1E3", None),
        // What LibreOffice does to a CSV it opens and saves.
        (
            "1",
            "1e3",
            "",
            "1.00E+03",
            Some("scientific notation written again"),
        ),
        ("1", "1,234", "", "1234", Some("its thousands separators")),
        ("1", "-0", "", "0", Some("its minus sign")),
        ("1", "50%", "", "50.00%", Some("a percentage written again")),
        ("1", "3/4", "", "03/04/26", Some("read the name as a date")),
        ("1", "3-4", "", "2026-03-04", Some("as a date")),
        // A person's edits.
        ("1", "3/4", "", "3/5", None),
        ("1", "1,234", "", "1,235", None),
        ("1", "50%", "", "60%", None),
        ("1", "1,5", "", "1.5", None),
    ];
    for (phone, name, new_phone, new_name, want) in cases {
        let mut cells = Vec::new();
        if !new_phone.is_empty() {
            cells.push((Field::Phone, *new_phone));
        }
        if !new_name.is_empty() {
            cells.push((Field::Name, *new_name));
        }
        let damage = number_damage(&body(&cells), &user(phone, name));
        match want {
            Some(lost) => {
                assert_eq!(damage.len(), 1, "{phone} {name}");
                assert!(damage[0].1.contains(lost), "{}", damage[0].1);
                assert!(damage[0].1.contains("--allow-number-changes"));
            }
            None => assert!(damage.is_empty(), "{damage:?}"),
        }
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// A cell for each field, or none: every kind of value the input takes.
    fn cells() -> impl Strategy<Value = Vec<(Field, String)>> {
        let text = "[A-Za-z0-9 +'.-]{1,24}";
        let email = "[a-z0-9]{1,6}(\\.[a-z0-9]{1,6})?@[a-z]{1,8}\\.example\\.(com|org)";
        let groups = proptest::sample::subsequence(
            vec!["Administrators", "Users", "Engineers", "3009", "3022"],
            1..=5,
        )
        .prop_shuffle()
        .prop_map(|g| g.join(";"));
        let auth = proptest::sample::subsequence(
            vec!["password", "sso", "github", "google-oauth2"],
            1..=4,
        )
        .prop_shuffle()
        .prop_map(|a| a.join(";"));
        let nullable = |t: &'static str| prop_oneof![Just("#null".to_string()), t.prop_map(|s| s)];
        (
            proptest::option::of(email.prop_map(|s| s)),
            proptest::option::of(nullable(text)),
            proptest::option::of(prop_oneof![
                Just("de".to_string()),
                Just("EN".to_string()),
                Just("ru".to_string()),
                Just("zh".to_string()),
                Just("az".to_string())
            ]),
            proptest::option::of(nullable(text)),
            proptest::option::of(text.prop_map(|s| s)),
            proptest::option::of(groups),
            proptest::option::of(auth),
        )
            .prop_map(|(e, n, l, p, c, g, a)| {
                use Field::*;
                [
                    (Email, e),
                    (Name, n),
                    (Lang, l),
                    (Phone, p),
                    (Company, c),
                    (Groups, g),
                    (AuthTypes, a),
                ]
                .into_iter()
                .filter_map(|(field, cell)| Some((field, cell?.trim().to_string())))
                .filter(|(_, cell)| !cell.is_empty())
                .collect::<Vec<_>>()
            })
            // Only cells the input takes make a body: a phone such as
            // "0E0" reads as a number a spreadsheet wrote in scientific
            // notation and is refused (issue 11). Drawn at random, one
            // made the test fail now and then.
            .prop_filter("a cell the input refuses", |cells| {
                let mut body = PatchBody::default();
                cells
                    .iter()
                    .all(|(field, cell)| body.set_cell(*field, cell, "#null").is_ok())
            })
    }

    proptest! {
        // The same cases at every run: a failure is found again by anyone.
        #![proptest_config(ProptestConfig {
            rng_seed: proptest::test_runner::RngSeed::Fixed(22),
            ..ProptestConfig::default()
        })]

        #[test]
        fn the_diff_of_a_body_against_the_user_it_made_is_empty(
            cells in cells(),
            start in cells(),
        ) {
            let to_body = |cells: &[(Field, String)]| {
                let mut body = PatchBody::default();
                for (field, cell) in cells {
                    body.set_cell(*field, cell, "#null").unwrap();
                }
                body
            };
            // Any user: one a first body made from the seeded one.
            let mut user = ann();
            apply(&mut user, &to_body(&start));
            let body = to_body(&cells);
            let changes = diff(&body, &user);
            // Only the fields the diff names need sending...
            let mut partly = user.clone();
            apply(&mut partly, &only(&body, &changes));
            prop_assert!(diff(&body, &partly).is_empty());
            // ...and the whole body leaves nothing to change.
            apply(&mut user, &body);
            prop_assert!(diff(&body, &user).is_empty());
            prop_assert_eq!(FieldSet::of(&diff(&body, &user)), FieldSet::default());
        }
    }
}
