//! What a PATCH body does to a user: [`apply`] changes exactly the fields the
//! body carries (the sandbox answers with it), and [`diff`] says which of them
//! would change a user's live state (the plan, `--skip-unchanged` and the
//! undo file build on it). Pure, so both are tested without a server.

use std::fmt;

use super::api::{Group, User};
use super::patch::{Field, PatchBody};

/// Changes exactly the fields the body carries, like the API.
pub fn apply(user: &mut User, body: &PatchBody) {
    if let Some(email) = &body.email {
        user.email = Some(email.clone());
    }
    if let Some(name) = &body.name {
        user.name = name.clone();
    }
    if let Some(lang) = &body.lang {
        user.lang = Some(lang.clone());
    }
    if let Some(phone) = &body.phone {
        user.phone = phone.clone();
    }
    if let Some(company) = &body.company {
        user.company = Some(company.clone());
    }
    if let Some(groups) = &body.groups {
        // The seed page shows `user_roles: ["2"]` for a member of group 2:
        // the roles in the account follow the groups.
        if let Some(roles) = &mut user.client_and_roles {
            for entry in roles.iter_mut() {
                entry.user_roles = groups.iter().map(|group| group.id.to_string()).collect();
            }
        }
        user.groups = Some(groups.clone());
    }
    if let Some(auth_types) = &body.auth_types {
        user.auth_types = Some(auth_types.clone());
    }
    user.absent = user.absent.without(body.fields());
}

/// One field the body would change, with the values shown as a person reads
/// them: `lang: en -> de`, `name: "Ann" -> null`, `groups: Users -> Users;Engineers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub field: Field,
    pub from: String,
    pub to: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} -> {}", self.field.name(), self.from, self.to)
    }
}

pub use super::field::FieldSet;

impl FieldSet {
    pub fn of(changes: &[Change]) -> FieldSet {
        changes.iter().map(|change| change.field).collect()
    }
}

/// The part of `body` that `changes` name: what a PATCH must carry to make
/// those changes and no other.
pub fn only(body: &PatchBody, changes: &[Change]) -> PatchBody {
    only_fields(body, FieldSet::of(changes))
}

/// The part of `body` in `set`.
pub fn only_fields(body: &PatchBody, set: FieldSet) -> PatchBody {
    PatchBody {
        email: body.email.clone().filter(|_| set.contains(Field::Email)),
        name: body.name.clone().filter(|_| set.contains(Field::Name)),
        lang: body.lang.clone().filter(|_| set.contains(Field::Lang)),
        phone: body.phone.clone().filter(|_| set.contains(Field::Phone)),
        company: body
            .company
            .clone()
            .filter(|_| set.contains(Field::Company)),
        groups: body.groups.clone().filter(|_| set.contains(Field::Groups)),
        auth_types: body
            .auth_types
            .clone()
            .filter(|_| set.contains(Field::AuthTypes)),
    }
}

/// A change a spreadsheet likely made rather than a person: the new value
/// is the old one as a number (`+49301234567` -> `49301234567`, `0301` ->
/// `301`, `007` -> `7`, `1000` -> `1.00E+03`, a long number rounded to 15
/// digits). One message per field, naming the likely cause and the fix.
pub fn number_damage(body: &PatchBody, user: &User) -> Vec<(Field, String)> {
    let fields = [
        (
            Field::Name,
            body.name.as_ref().and_then(Option::as_deref),
            user.name.as_deref(),
        ),
        (
            Field::Phone,
            body.phone.as_ref().and_then(Option::as_deref),
            user.phone.as_deref(),
        ),
        (
            Field::Company,
            body.company.as_deref(),
            user.company.as_deref(),
        ),
    ];
    fields
        .into_iter()
        .filter_map(|(field, to, from)| {
            let (to, from) = (to?, from?);
            if to != from && read_as_date(from, to) {
                return Some((
                    field,
                    format!(
                        "{from:?} would become {to:?}: a spreadsheet read the {} as a date; \
                         format the column as text and put the value back, or pass \
                         --allow-number-changes if the change is meant",
                        field.name()
                    ),
                ));
            }
            let lost = (to != from && same_number(from, to))
                .then(|| what_was_lost(from, to))
                .flatten()?;
            Some((
                field,
                format!(
                    "{from:?} would become {to:?}: a spreadsheet that stored the {} as a \
                     number lost {lost}; format the column as text and put the value back, or \
                     pass --allow-number-changes if the change is meant",
                    field.name()
                ),
            ))
        })
        .collect()
}

/// What a change between two texts of the same number lost, if it is what
/// a spreadsheet does (it drops, never adds): a leading `+` (not for the
/// `00` international prefix), leading zeros, digits (rounding, trailing
/// decimal zeros), or the written form (to scientific notation). `None`: a
/// change a person made (a `+` or zeros added, `12` -> `12.0`).
fn what_was_lost(from: &str, to: &str) -> Option<&'static str> {
    let (from, to) = (from.trim(), to.trim());
    if from.starts_with('+') && !to.starts_with('+') && !to.starts_with("00") {
        return Some("its leading +");
    }
    let zeros = |text: &str| {
        text.trim_start_matches(['+', '-'])
            .bytes()
            .take_while(|b| *b == b'0')
            .count()
    };
    let digits = |text: &str| {
        let mantissa = text.split(['e', 'E']).next().unwrap_or_default();
        let significant = mantissa
            .trim_start_matches(['+', '-'])
            .trim_start_matches(['0', '.']);
        // An integer's trailing zeros are not digits a spreadsheet can
        // drop; a decimal's are.
        let significant = match mantissa.contains(['.', ',']) {
            true => significant,
            false => significant.trim_end_matches('0'),
        };
        significant.bytes().filter(u8::is_ascii_digit).count()
    };
    let scientific = |text: &str| text.contains(['e', 'E']);
    if zeros(to) < zeros(from) && zeros(from) > 0 && !from.contains('.') {
        Some("its leading zeros")
    } else if scientific(to) && !scientific(from) {
        Some("its written form (scientific notation)")
    } else if scientific(from) && (to.contains("E+") || to.contains("E-")) {
        Some("its written form (scientific notation written again)")
    } else if from.ends_with('%') && to.ends_with('%') {
        Some("its written form (a percentage written again)")
    } else if from.contains(',') && !to.contains(',') {
        Some("its thousands separators")
    } else if from.starts_with('-') && !to.starts_with('-') {
        Some("its minus sign")
    } else if digits(to) < digits(from) {
        Some("digits (rounded, or trailing zeros dropped)")
    } else {
        None
    }
}

/// Whether `to` is a date (`03/04/26`, `2026-03-04`, `4.3.2026`) that a
/// spreadsheet made of `from`, a text of two numbers (`3/4`, `3-4`) or a
/// month and a day it read as one.
fn read_as_date(from: &str, to: &str) -> bool {
    fn groups(text: &str) -> Option<usize> {
        let text = text.trim();
        let separator = text.bytes().find(|b| matches!(b, b'/' | b'-' | b'.'))?;
        let parts: Vec<&str> = text.split(separator as char).collect();
        parts
            .iter()
            .all(|part| (1..=4).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit()))
            .then_some(parts.len())
    }
    groups(from) == Some(2) && groups(to) == Some(3)
}

/// Whether both texts are numbers and the same number to 15 significant
/// digits (what a spreadsheet keeps). A number may have thousands
/// separators (`1,234`) or be a percentage (`50%`, the same as `50.00%`).
fn same_number(a: &str, b: &str) -> bool {
    fn number(text: &str) -> Option<(f64, bool)> {
        let text = text.trim();
        let (text, percent) = match text.strip_suffix('%') {
            Some(rest) => (rest.trim_end(), true),
            None => (text, false),
        };
        let grouped = text.trim_start_matches(['+', '-']);
        let whole = grouped.split('.').next().unwrap_or_default();
        let groups: Vec<&str> = whole.split(',').collect();
        let thousands = groups.len() > 1
            && (1..=3).contains(&groups[0].len())
            && groups[1..].iter().all(|group| group.len() == 3);
        let ungrouped;
        let text = if thousands {
            ungrouped = text.replace(',', "");
            ungrouped.as_str()
        } else {
            text
        };
        plain_number(text).map(|value| (value, percent))
    }
    fn plain_number(text: &str) -> Option<f64> {
        let text = text.trim();
        let plain = text.strip_prefix(['+', '-']).unwrap_or(text);
        let looks = !plain.is_empty()
            && plain.bytes().next().is_some_and(|b| b.is_ascii_digit())
            && plain
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
        let sign = if text.starts_with('-') { -1.0 } else { 1.0 };
        looks
            .then(|| plain.parse::<f64>().ok())
            .flatten()
            .map(|value| sign * value)
    }
    match (number(a), number(b)) {
        (Some((a, a_percent)), Some((b, b_percent))) => {
            // `+ 0.0` makes -0 the 0 a spreadsheet writes for it.
            let (a, b) = (a + 0.0, b + 0.0);
            a_percent == b_percent && format!("{a:.14e}") == format!("{b:.14e}")
        }
        _ => false,
    }
}

/// The changes joined as the `changes` column shows them.
pub fn describe(changes: &[Change]) -> String {
    let parts: Vec<String> = changes.iter().map(Change::to_string).collect();
    parts.join("; ")
}

/// The fields of `body` whose value differs from the user's, in the order of
/// [`Field::ALL`]: the one comparison of the plan, `--skip-unchanged`,
/// `apply --plan` and the undo file. Groups compare by ID and lists as
/// sets (the API keeps no order that matters, and a group's name may be
/// in another language); text, `lang` included, compares exactly as the
/// API stores it, and null is not `""` (the API keeps them apart). A field
/// the user's answer left out is a change from an unknown value. Empty
/// when the user already has every value.
pub fn diff(body: &PatchBody, user: &User) -> Vec<Change> {
    let mut changes = Vec::new();
    for field in body.fields().iter() {
        let unknown = user.absent.contains(field);
        let (from, to, same) = match field {
            Field::Email => text(body.email.as_deref(), user.email.as_deref()),
            Field::Name => text(
                body.name.as_ref().and_then(Option::as_deref),
                user.name.as_deref(),
            ),
            // Shown bare, as people write it: `lang: en -> de`.
            Field::Lang => (
                user.lang.clone().unwrap_or_else(|| "null".to_string()),
                body.lang.clone().unwrap_or_default(),
                body.lang == user.lang,
            ),
            Field::Phone => text(
                body.phone.as_ref().and_then(Option::as_deref),
                user.phone.as_deref(),
            ),
            Field::Company => text(body.company.as_deref(), user.company.as_deref()),
            Field::Groups => {
                let want = body.groups.as_deref().unwrap_or_default();
                let have = user.groups.as_deref();
                let ids = |groups: &[Group]| {
                    let mut ids: Vec<u64> = groups.iter().map(|group| group.id).collect();
                    ids.sort_unstable();
                    ids.dedup();
                    ids
                };
                let names = |groups: &[Group]| {
                    list(&groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>())
                };
                (
                    have.map_or_else(|| list(&[]), names),
                    names(want),
                    have.is_some_and(|have| ids(have) == ids(want)),
                )
            }
            Field::AuthTypes => {
                let want = body.auth_types.as_deref().unwrap_or_default();
                let have = user.auth_types.as_deref();
                fn set(items: &[String]) -> Vec<&str> {
                    let mut items: Vec<&str> = items.iter().map(String::as_str).collect();
                    items.sort_unstable();
                    items.dedup();
                    items
                }
                let shown =
                    |items: &[String]| list(&items.iter().map(String::as_str).collect::<Vec<_>>());
                (
                    have.map_or_else(|| list(&[]), shown),
                    shown(want),
                    have.is_some_and(|have| set(have) == set(want)),
                )
            }
        };
        if unknown {
            changes.push(Change {
                field,
                from: "(not in the answer)".to_string(),
                to,
            });
        } else if !same {
            changes.push(Change { field, from, to });
        }
    }
    changes
}

/// A text field's values as shown, and whether they are the same value:
/// texts compare exactly, and null is a value of its own (not `""`).
fn text(to: Option<&str>, from: Option<&str>) -> (String, String, bool) {
    (quoted(from), quoted(to), to == from)
}

fn quoted(value: Option<&str>) -> String {
    match value {
        Some(text) => format!("{text:?}"),
        None => "null".to_string(),
    }
}

/// A list as the input writes it (`;`-joined); `(none)` for an empty one.
fn list(items: &[&str]) -> String {
    if items.is_empty() {
        "(none)".to_string()
    } else {
        items.join(";")
    }
}

#[cfg(test)]
mod tests {
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
            let nullable =
                |t: &'static str| prop_oneof![Just("#null".to_string()), t.prop_map(|s| s)];
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
                    .collect()
                })
        }

        proptest! {
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
}
