//! The shapes of the Gcore IAM users API: the user object, its enumerations and
//! the five IAM groups. The client, the results file and the sandbox all use
//! these types, so they agree on every field name and spelling.

use serde::{Deserialize, Serialize};

use super::field::{Field, FieldSet};

/// The languages the API accepts for `lang`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    De,
    En,
    Ru,
    Zh,
    Az,
}

impl Lang {
    pub(crate) const ALL: [Lang; 5] = [Lang::De, Lang::En, Lang::Ru, Lang::Zh, Lang::Az];

    pub fn as_str(self) -> &'static str {
        match self {
            Lang::De => "de",
            Lang::En => "en",
            Lang::Ru => "ru",
            Lang::Zh => "zh",
            Lang::Az => "az",
        }
    }

    /// Any case is accepted: spreadsheets capitalise the first letter of a cell.
    pub fn parse(text: &str) -> Option<Lang> {
        Lang::ALL
            .into_iter()
            .find(|lang| lang.as_str().eq_ignore_ascii_case(text))
    }
}

/// The ways a user may log in (`auth_types`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum AuthType {
    #[serde(rename = "password")]
    Password,
    #[serde(rename = "sso")]
    Sso,
    #[serde(rename = "github")]
    Github,
    #[serde(rename = "google-oauth2")]
    GoogleOauth2,
}

impl AuthType {
    pub(crate) const ALL: [AuthType; 4] = [
        AuthType::Password,
        AuthType::Sso,
        AuthType::Github,
        AuthType::GoogleOauth2,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AuthType::Password => "password",
            AuthType::Sso => "sso",
            AuthType::Github => "github",
            AuthType::GoogleOauth2 => "google-oauth2",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<AuthType> {
        AuthType::ALL
            .into_iter()
            .find(|auth| auth.as_str().eq_ignore_ascii_case(text))
    }
}

/// `user_type` of the user object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum UserType {
    Common,
    Reseller,
    Seller,
}

/// One of the five IAM groups, whose IDs are fixed across Gcore.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub(crate) struct IamGroup {
    pub id: u64,
    pub name: &'static str,
}

pub(crate) const IAM_GROUPS: [IamGroup; 5] = [
    IamGroup {
        id: 1,
        name: "Administrators",
    },
    IamGroup {
        id: 2,
        name: "Users",
    },
    IamGroup {
        id: 5,
        name: "Engineers",
    },
    IamGroup {
        id: 3009,
        name: "Purge and Prefetch only (API+Web)",
    },
    IamGroup {
        id: 3022,
        name: "Purge and Prefetch only (API)",
    },
];

impl IamGroup {
    pub(crate) fn by_id(id: u64) -> Option<&'static IamGroup> {
        IAM_GROUPS.iter().find(|group| group.id == id)
    }

    /// The group as the API lists it.
    pub(crate) fn to_group(&self) -> Group {
        Group {
            id: self.id,
            name: self.name.to_string(),
        }
    }

    /// Names match in any case, as people type them.
    pub(crate) fn by_name(name: &str) -> Option<&'static IamGroup> {
        IAM_GROUPS
            .iter()
            .find(|group| group.name.eq_ignore_ascii_case(name))
    }
}

/// A group as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: u64,
    pub name: String,
}

/// One entry of `client_and_roles`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientAndRoles {
    pub client_id: u64,
    pub client_company_name: String,
    pub user_roles: Vec<String>,
    pub user_id: u64,
}

/// The user object the API answers with.
///
/// Enumerated fields are kept as text and every field may be missing: when the
/// live API returns a value this tool does not know yet, the row was still
/// updated, and the results file must say so rather than call it a failure.
/// A field the answer left out is `None` like a null, and [`User::absent`]
/// tells them apart for the seven fields of the input: a value missing from
/// an answer is unknown, never taken as null.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, from = "UserWire")]
pub struct User {
    pub id: Option<u64>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub lang: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub reseller: Option<i64>,
    pub client: Option<serde_json::Number>,
    pub deleted: Option<bool>,
    pub groups: Option<Vec<Group>>,
    pub activated: Option<bool>,
    pub sso_auth: Option<bool>,
    pub two_fa: Option<bool>,
    pub auth_types: Option<Vec<String>>,
    pub user_type: Option<String>,
    pub is_active: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_and_roles: Option<Vec<ClientAndRoles>>,
    /// The input fields the answer did not carry at all (not even as null).
    #[serde(skip)]
    pub absent: FieldSet,
    /// The input fields whose value held the API key, blanked (`***`) as
    /// the answer was read: unknown, as [`User::absent`] ones (among them).
    #[serde(skip)]
    pub blanked: FieldSet,
}

impl User {
    /// What the user holds in `field`, as the API wrote it (JSON null for
    /// a null), or `None` when the answer left the field out.
    pub fn value(&self, field: Field) -> Option<serde_json::Value> {
        use serde_json::Value;
        if self.absent.contains(field) {
            return None;
        }
        let text = |value: &Option<String>| value.clone().map_or(Value::Null, Value::String);
        Some(match field {
            Field::Email => text(&self.email),
            Field::Name => text(&self.name),
            Field::Lang => text(&self.lang),
            Field::Phone => text(&self.phone),
            Field::Company => text(&self.company),
            Field::Groups => serde_json::to_value(&self.groups).unwrap_or(Value::Null),
            Field::AuthTypes => serde_json::to_value(&self.auth_types).unwrap_or(Value::Null),
        })
    }
}

impl User {
    /// An answer that held the API key was blanked before it was read
    /// (`blank`, `***`, in its place): a field whose value now holds it is
    /// not known, and is taken as left out (never written back, never put
    /// in an undo file, an export or a comparison as the user's value).
    pub(crate) fn forget_blanked(&mut self, blank: &str) {
        for field in Field::ALL {
            let blanked =
                (self.value(field)).is_some_and(|value| value.to_string().contains(blank));
            if blanked {
                self.absent = self.absent.with(field);
                self.blanked = self.blanked.with(field);
            }
        }
    }

    /// The input fields as one JSON object, as the API gave them (a field
    /// the answer left out is left out): an exact record of the user's
    /// values, which the results file's cells cannot be (`""` and null
    /// read alike there, and groups by name).
    pub(crate) fn fields_json(&self) -> String {
        let object: serde_json::Map<String, serde_json::Value> = Field::ALL
            .into_iter()
            .filter_map(|field| Some((field.name().to_string(), self.value(field)?)))
            .collect();
        serde_json::Value::Object(object).to_string()
    }

    /// Takes the input fields from [`User::fields_json`]'s object: a field
    /// it lacks is absent.
    pub(crate) fn set_fields_json(&mut self, json: &str) -> Result<(), String> {
        use serde_json::Value;
        let Ok(Value::Object(object)) = serde_json::from_str::<Value>(json) else {
            return Err("is not a JSON object".to_string());
        };
        let text = |value: &Value| match value {
            Value::Null => Ok(None),
            Value::String(text) => Ok(Some(text.clone())),
            _ => Err("holds a field that is not text or null".to_string()),
        };
        let mut absent = FieldSet::default();
        for field in Field::ALL {
            let Some(value) = object.get(field.name()) else {
                absent = absent.with(field);
                continue;
            };
            match field {
                Field::Email => self.email = text(value)?,
                Field::Name => self.name = text(value)?,
                Field::Lang => self.lang = text(value)?,
                Field::Phone => self.phone = text(value)?,
                Field::Company => self.company = text(value)?,
                Field::Groups => {
                    self.groups = serde_json::from_value(value.clone())
                        .map_err(|_| "holds groups that are not a list of groups".to_string())?
                }
                Field::AuthTypes => {
                    self.auth_types = serde_json::from_value(value.clone())
                        .map_err(|_| "holds auth_types that are not a list of texts".to_string())?
                }
            }
        }
        self.absent = absent;
        Ok(())
    }
}

/// The user object as it arrives: each input field knows whether it came
/// at all (`None`), or came as null (`Some(None)`).
#[derive(Deserialize, Default)]
#[serde(default)]
struct UserWire {
    id: Option<u64>,
    #[serde(deserialize_with = "present")]
    email: Option<Option<String>>,
    #[serde(deserialize_with = "present")]
    name: Option<Option<String>>,
    #[serde(deserialize_with = "present")]
    lang: Option<Option<String>>,
    #[serde(deserialize_with = "present")]
    phone: Option<Option<String>>,
    #[serde(deserialize_with = "present")]
    company: Option<Option<String>>,
    reseller: Option<i64>,
    client: Option<serde_json::Number>,
    deleted: Option<bool>,
    #[serde(deserialize_with = "present")]
    groups: Option<Option<Vec<Group>>>,
    activated: Option<bool>,
    sso_auth: Option<bool>,
    two_fa: Option<bool>,
    #[serde(deserialize_with = "present")]
    auth_types: Option<Option<Vec<String>>>,
    user_type: Option<String>,
    is_active: Option<bool>,
    client_and_roles: Option<Vec<ClientAndRoles>>,
}

/// A field that is there, null or not (serde calls this only for a key
/// the object has; `default` makes a missing key `None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

impl From<UserWire> for User {
    fn from(wire: UserWire) -> User {
        let mut absent = FieldSet::default();
        let mut take = |field: Field, value: Option<Option<String>>| {
            if value.is_none() {
                absent = absent.with(field);
            }
            value.flatten()
        };
        let email = take(Field::Email, wire.email);
        let name = take(Field::Name, wire.name);
        let lang = take(Field::Lang, wire.lang);
        let phone = take(Field::Phone, wire.phone);
        let company = take(Field::Company, wire.company);
        if wire.groups.is_none() {
            absent = absent.with(Field::Groups);
        }
        if wire.auth_types.is_none() {
            absent = absent.with(Field::AuthTypes);
        }
        User {
            id: wire.id,
            email,
            name,
            lang,
            phone,
            company,
            reseller: wire.reseller,
            client: wire.client,
            deleted: wire.deleted,
            groups: wire.groups.flatten(),
            activated: wire.activated,
            sso_auth: wire.sso_auth,
            two_fa: wire.two_fa,
            auth_types: wire.auth_types.flatten(),
            user_type: wire.user_type,
            is_active: wire.is_active,
            client_and_roles: wire.client_and_roles,
            absent,
            blanked: FieldSet::default(),
        }
    }
}

/// One page of `GET /iam/users?limit=L&offset=O`: the account's user count
/// and the users of the page. The next page's offset is offset + the length
/// of `results`, until it reaches `count`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserPage {
    pub count: u64,
    pub results: Vec<User>,
    /// The entries of `results` that leave out a field a row can set (one
    /// of the seven of the input format), by their index, with the fields
    /// left out: a field missing from the list is not a null one. [`User`]
    /// cannot tell missing from null, so the client notes it where it
    /// parses the page; never sent, never read from JSON.
    #[serde(skip)]
    pub(crate) left_out: Vec<(usize, Vec<&'static str>)>,
}

impl UserPage {
    /// [`User::forget_blanked`] for each user of a page whose answer held
    /// the API key; such a user is noted as one the list leaves fields
    /// out of (read again, whole, where a run needs them).
    pub(crate) fn forget_blanked(&mut self, blank: &str) {
        for (index, user) in self.results.iter_mut().enumerate() {
            user.forget_blanked(blank);
            if !user.blanked.is_empty() {
                let names = user.blanked.iter().map(Field::name).collect();
                self.left_out.push((index, names));
            }
        }
    }

    /// A page of the list, noting which entries leave out a field a row can
    /// set (`UserPage::left_out`): after parsing, a missing field and a null
    /// one are both `None`, and a list that leaves out `phone` must not pass
    /// for one that says the phone is empty.
    pub fn parse(body: &str) -> Result<UserPage, serde_json::Error> {
        use serde::Deserialize;
        let json: serde_json::Value = serde_json::from_str(body)?;
        let mut page = UserPage::deserialize(&json)?;
        let entries = json.get("results").and_then(serde_json::Value::as_array);
        for (index, entry) in entries.into_iter().flatten().enumerate() {
            let Some(fields) = entry.as_object() else {
                continue;
            };
            let missing: Vec<&'static str> = Field::ALL
                .iter()
                .map(|field| field.name())
                .filter(|name| !fields.contains_key(*name))
                .collect();
            if !missing.is_empty() {
                page.left_out.push((index, missing));
            }
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_page_example_deserialises() {
        let body = r#"{"id":123,"email":"jsmith@example.com","name":"<string>","lang":"de",
            "phone":"<string>","company":"<string>","reseller":123,"client":123,"deleted":true,
            "groups":[{"id":1,"name":"Administrators"}],"activated":true,"sso_auth":true,
            "two_fa":true,"auth_types":["password"],"user_type":"common","is_active":true,
            "client_and_roles":[{"client_id":123,"client_company_name":"<string>",
            "user_roles":["2"],"user_id":123}]}"#;
        let user: User = serde_json::from_str(body).unwrap();
        assert_eq!(user.id, Some(123));
        assert_eq!(user.groups.as_ref().unwrap()[0].name, "Administrators");
        assert_eq!(user.client.as_ref().unwrap().to_string(), "123");
        assert_eq!(user.client_and_roles.as_ref().unwrap()[0].user_roles, ["2"]);
    }

    #[test]
    fn unknown_enum_values_and_missing_fields_still_deserialise() {
        let user: User = serde_json::from_str(r#"{"id":7,"lang":"fr","name":null}"#).unwrap();
        assert_eq!(user.lang.as_deref(), Some("fr"));
        assert_eq!(user.name, None);
        assert_eq!(user.email, None);
        assert!(user.absent.contains(Field::Email));
        assert!(!user.absent.contains(Field::Name));
        assert_eq!(user.value(Field::Name), Some(serde_json::Value::Null));
        assert_eq!(user.value(Field::Phone), None);
        assert_eq!(user.value(Field::Lang), Some(serde_json::json!("fr")));
    }

    #[test]
    fn lookups_ignore_case() {
        assert_eq!(Lang::parse("DE"), Some(Lang::De));
        assert_eq!(Lang::parse("fr"), None);
        assert_eq!(
            AuthType::parse("Google-OAuth2"),
            Some(AuthType::GoogleOauth2)
        );
        assert_eq!(IamGroup::by_name("engineers").unwrap().id, 5);
        assert_eq!(
            IamGroup::by_id(3022).unwrap().name,
            "Purge and Prefetch only (API)"
        );
        assert_eq!(IamGroup::by_id(4), None);
    }

    #[test]
    fn a_page_notes_the_fields_its_entries_leave_out_and_not_the_null_ones() {
        let body = r#"{"count": 3, "results": [
            {"id": 1, "email": "a@x.io", "name": null, "lang": "en", "phone": null,
             "company": "", "groups": [], "auth_types": []},
            {"id": 2, "email": "b@x.io", "name": "B", "lang": "en",
             "company": "", "groups": [], "auth_types": []},
            {"id": 3}
        ]}"#;
        let page = UserPage::parse(body).unwrap();
        assert_eq!(page.count, 3);
        assert_eq!(page.results.len(), 3);
        assert_eq!(page.results[0].phone, None);
        assert_eq!(page.results[1].phone, None);
        assert_eq!(
            page.left_out,
            [
                (1, vec!["phone"]),
                (
                    2,
                    vec![
                        "email",
                        "name",
                        "lang",
                        "phone",
                        "company",
                        "groups",
                        "auth_types"
                    ]
                )
            ]
        );
        assert!(UserPage::parse(r#"{"count": 1}"#).is_err());
        assert!(UserPage::parse("[]").is_err());
    }
}
