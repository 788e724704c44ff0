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
    if let Some(lang) = body.lang {
        user.lang = Some(lang.as_str().to_string());
    }
    if let Some(phone) = &body.phone {
        user.phone = phone.clone();
    }
    if let Some(company) = &body.company {
        user.company = Some(company.clone());
    }
    if let Some(groups) = &body.groups {
        let groups: Vec<Group> = groups
            .iter()
            .map(|group| Group {
                id: group.id,
                name: group.name.to_string(),
            })
            .collect();
        // The seed page shows `user_roles: ["2"]` for a member of group 2:
        // the roles in the account follow the groups.
        if let Some(roles) = &mut user.client_and_roles {
            for entry in roles.iter_mut() {
                entry.user_roles = groups.iter().map(|group| group.id.to_string()).collect();
            }
        }
        user.groups = Some(groups);
    }
    if let Some(auth_types) = &body.auth_types {
        user.auth_types = Some(
            auth_types
                .iter()
                .map(|auth| auth.as_str().to_string())
                .collect(),
        );
    }
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

/// The changes joined as the `changes` column shows them.
pub fn describe(changes: &[Change]) -> String {
    let parts: Vec<String> = changes.iter().map(Change::to_string).collect();
    parts.join("; ")
}

/// The fields of `body` whose value differs from the user's, in the order of
/// [`Field::ALL`]. Lists compare as sets (the API keeps no order that
/// matters); text compares exactly. Empty when the user already has every value.
pub fn diff(body: &PatchBody, user: &User) -> Vec<Change> {
    let text = |field: Field, to: Option<Option<&str>>, from: Option<&str>| {
        to.filter(|to| *to != from).map(|to| Change {
            field,
            from: quoted(from),
            to: quoted(to),
        })
    };
    let lang = body
        .lang
        .filter(|lang| user.lang.as_deref() != Some(lang.as_str()))
        .map(|lang| Change {
            field: Field::Lang,
            from: user.lang.clone().unwrap_or_else(|| "null".to_string()),
            to: lang.as_str().to_string(),
        });
    let mut changes: Vec<Change> = [
        text(
            Field::Email,
            body.email.as_deref().map(Some),
            user.email.as_deref(),
        ),
        text(
            Field::Name,
            body.name.as_ref().map(Option::as_deref),
            user.name.as_deref(),
        ),
        lang,
        text(
            Field::Phone,
            body.phone.as_ref().map(Option::as_deref),
            user.phone.as_deref(),
        ),
        text(
            Field::Company,
            body.company.as_deref().map(Some),
            user.company.as_deref(),
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Some(groups) = &body.groups {
        let mut want: Vec<u64> = groups.iter().map(|group| group.id).collect();
        let mut have: Vec<u64> = user.groups.iter().flatten().map(|g| g.id).collect();
        want.sort_unstable();
        have.sort_unstable();
        if want != have {
            let from: Vec<&str> = user
                .groups
                .iter()
                .flatten()
                .map(|g| g.name.as_str())
                .collect();
            let to: Vec<&str> = groups.iter().map(|group| group.name).collect();
            changes.push(Change {
                field: Field::Groups,
                from: list(&from),
                to: list(&to),
            });
        }
    }
    if let Some(auth_types) = &body.auth_types {
        let mut want: Vec<&str> = auth_types.iter().map(|auth| auth.as_str()).collect();
        let mut have: Vec<&str> = user
            .auth_types
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let to = list(&want);
        let from = list(&have);
        want.sort_unstable();
        have.sort_unstable();
        if want != have {
            changes.push(Change {
                field: Field::AuthTypes,
                from,
                to,
            });
        }
    }
    changes
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
}
