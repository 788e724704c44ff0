//! The rules for a PATCH body: a cell of the input becomes a field of the body,
//! or a problem that names the column. Pure, no I/O. The sandbox checks the
//! JSON it receives with the same rules, so the tool and its stand-in agree.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::api::{AuthType, Group, IAM_GROUPS, IamGroup, Lang};

/// Longest `name` and `company` accepted, in characters. The API publishes no
/// limit; 255 is the common column size behind such fields, far above any real
/// name, and it stops a pasted paragraph or a stray 1 MB cell from being sent.
pub(crate) const MAX_TEXT_CHARS: usize = 255;
/// Longest `phone`: E.164 numbers have at most 15 digits; 32 leaves room for
/// spaces, dashes, parentheses and a short extension.
pub(crate) const MAX_PHONE_CHARS: usize = 32;
/// Longest `email`: the 254-character limit of an SMTP path (RFC 5321).
pub(crate) const MAX_EMAIL_CHARS: usize = 254;
/// Largest user ID accepted: the largest integer that JSON servers commonly
/// parse without loss (a signed 64-bit integer).
pub(crate) const MAX_USER_ID: u64 = i64::MAX as u64;

pub use super::field::Field;
pub(crate) use super::field::FieldSet;

/// One thing wrong with a row or a request body. `column` is `None` for
/// problems of the whole row (say, a wrong number of cells).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub column: Option<Cow<'static, str>>,
    pub message: String,
}

impl Problem {
    pub(crate) fn in_column(
        column: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            column: Some(column.into()),
            message: message.into(),
        }
    }

    pub(crate) fn in_row(message: impl Into<String>) -> Self {
        Problem {
            column: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(column) => write!(f, "{column}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Joins problems the way every message of this tool shows them:
/// `lang: "fr" is not one of ...; email: "x@" is not a valid address`.
pub fn describe(problems: &[Problem]) -> String {
    let mut text = String::new();
    for (i, problem) in problems.iter().enumerate() {
        if i > 0 {
            text.push_str("; ");
        }
        text.push_str(&problem.to_string());
    }
    text
}

/// The body of `PATCH /iam/users/{userId}`. A field that is `None` is not
/// sent and stays as it is; `Some(None)` on a nullable field sends `null`.
///
/// Values are held as the API spells them (`"de"`, `{"id": 2, "name":
/// "Users"}`, `"google-oauth2"`): a cell is checked against the input rules
/// and becomes the API's spelling, and a verbatim cell (the undo file's own
/// values, see [`PatchBody::set_verbatim`]) is taken as the API gave it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PatchBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<Group>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_types: Option<Vec<String>>,
}

impl PatchBody {
    pub fn is_empty(&self) -> bool {
        *self == PatchBody::default()
    }

    /// The fields the body carries.
    pub fn fields(&self) -> FieldSet {
        let carried = [
            (Field::Email, self.email.is_some()),
            (Field::Name, self.name.is_some()),
            (Field::Lang, self.lang.is_some()),
            (Field::Phone, self.phone.is_some()),
            (Field::Company, self.company.is_some()),
            (Field::Groups, self.groups.is_some()),
            (Field::AuthTypes, self.auth_types.is_some()),
        ];
        carried
            .into_iter()
            .filter(|(_, carried)| *carried)
            .fold(Default::default(), |set, (field, _)| set.with(field))
    }

    /// Sets `field` from a spreadsheet cell that is already trimmed and not
    /// empty. `null_token` (any case) clears a nullable field.
    pub(crate) fn set_cell(
        &mut self,
        field: Field,
        cell: &str,
        null_token: &str,
    ) -> Result<(), String> {
        if cell.eq_ignore_ascii_case(null_token) {
            return if field.nullable() {
                self.set_null(field);
                Ok(())
            } else {
                Err(format!(
                    "{null_token} clears a field, and only name and phone can be cleared; \
                     leave the cell empty to keep the current {}",
                    field.name()
                ))
            };
        }
        match field {
            Field::Email => self.email = Some(check_email(cell)?),
            Field::Name => self.name = Some(Some(check_text(cell, MAX_TEXT_CHARS)?)),
            Field::Phone if scientific(cell) => {
                return Err(format!(
                    "{} is a number in scientific notation, as a spreadsheet writes a long \
                     number it stores as a number: digits (and a leading + or 0) are lost; \
                     format the phone column as text and type the numbers again",
                    show(cell)
                ));
            }
            Field::Phone => self.phone = Some(Some(check_text(cell, MAX_PHONE_CHARS)?)),
            Field::Company => self.company = Some(check_text(cell, MAX_TEXT_CHARS)?),
            Field::Lang => self.lang = Some(parse_lang(cell)?.as_str().to_string()),
            Field::Groups => {
                let groups = parse_list(cell, parse_group)?;
                self.groups = Some(groups.into_iter().map(IamGroup::to_group).collect());
            }
            Field::AuthTypes => {
                let auth_types = parse_list(cell, parse_auth_type)?;
                self.auth_types = Some(
                    auth_types
                        .into_iter()
                        .map(|auth| auth.as_str().to_string())
                        .collect(),
                );
            }
        }
        Ok(())
    }

    fn set_null(&mut self, field: Field) {
        match field {
            Field::Name => self.name = Some(None),
            Field::Phone => self.phone = Some(None),
            _ => unreachable!("only nullable fields are cleared"),
        }
    }

    /// Sets `field` to a value the API itself gave (a verbatim cell of the
    /// undo file), sent back as it is: only its JSON type is checked (text,
    /// or null where the field is nullable; a list of texts; a list of
    /// groups, each with a whole-number `id` and a text `name`), never the
    /// input rules, which the API's own values need not meet.
    pub(crate) fn set_verbatim(&mut self, field: Field, value: &Value) -> Result<(), String> {
        let text = || match value {
            Value::String(text) => Ok(text.clone()),
            other => Err(format!("must be a JSON text, not {}", json_kind(other))),
        };
        match (field, value) {
            (field, Value::Null) if field.nullable() => self.set_null(field),
            (Field::Email, _) => self.email = Some(text()?),
            (Field::Name, _) => self.name = Some(Some(text()?)),
            (Field::Lang, _) => self.lang = Some(text()?),
            (Field::Phone, _) => self.phone = Some(Some(text()?)),
            (Field::Company, _) => self.company = Some(text()?),
            (Field::Groups, _) => {
                let groups: Vec<Group> = serde_json::from_value(value.clone()).map_err(|_| {
                    format!(
                        "must be a JSON list of groups such as [{{\"id\": 2, \"name\": \
                         \"Users\"}}], not {}",
                        show(&value.to_string())
                    )
                })?;
                self.groups = Some(groups);
            }
            (Field::AuthTypes, _) => {
                let auth_types: Vec<String> =
                    serde_json::from_value(value.clone()).map_err(|_| {
                        format!(
                            "must be a JSON list of texts such as [\"password\"], not {}",
                            show(&value.to_string())
                        )
                    })?;
                self.auth_types = Some(auth_types);
            }
        }
        Ok(())
    }

    /// Checks a request body as the API would: every problem, each naming its
    /// field. Text is checked as sent, without trimming.
    /// What an invitation carries of a user (the address, and the
    /// language and the name when given), checked by a row's rules, as the
    /// API checks them there: the problems, joined, when it would refuse.
    pub(crate) fn invitation_problems(
        email: Option<&str>,
        lang: Option<&str>,
        name: Option<&str>,
    ) -> Option<String> {
        let mut invitation = serde_json::json!({ "email": email });
        if let Some(lang) = lang {
            invitation["lang"] = Value::String(lang.to_string());
        }
        if let Some(name) = name {
            invitation["name"] = Value::String(name.to_string());
        }
        let problems = PatchBody::from_json(&invitation).err()?;
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        Some(text.join("; "))
    }

    pub(crate) fn from_json(body: &Value) -> Result<PatchBody, Vec<Problem>> {
        PatchBody::from_json_accepting(body, |_, _| false)
    }

    /// As [`PatchBody::from_json`], and a value that breaks the rules is
    /// still taken when `accept` says so (the sandbox takes back the values
    /// its account holds, as the API takes back its own).
    pub(crate) fn from_json_accepting(
        body: &Value,
        accept: impl Fn(Field, &Value) -> bool,
    ) -> Result<PatchBody, Vec<Problem>> {
        let Value::Object(map) = body else {
            return Err(vec![Problem::in_row(format!(
                "the body must be a JSON object, not {}",
                json_kind(body)
            ))]);
        };
        let mut patch = PatchBody::default();
        let mut problems = Vec::new();
        for (key, value) in map {
            let Some(field) = Field::from_name(key) else {
                problems.push(Problem::in_column(
                    key.clone(),
                    format!(
                        "is not a field of this endpoint; the fields are {}",
                        field_list()
                    ),
                ));
                continue;
            };
            if let Err(message) = patch.set_json(field, value) {
                if accept(field, value) && patch.set_verbatim(field, value).is_ok() {
                    continue;
                }
                problems.push(Problem::in_column(field.name(), message));
            }
        }
        if problems.is_empty() {
            Ok(patch)
        } else {
            Err(problems)
        }
    }

    fn set_json(&mut self, field: Field, value: &Value) -> Result<(), String> {
        if value.is_null() {
            return if field.nullable() {
                self.set_null(field);
                Ok(())
            } else {
                Err("cannot be null".to_string())
            };
        }
        let want_string = || {
            value.as_str().ok_or_else(|| {
                let or_null = if field.nullable() { " or null" } else { "" };
                format!("must be a string{or_null}, not {}", json_kind(value))
            })
        };
        let want_array = || {
            value
                .as_array()
                .ok_or_else(|| format!("must be an array, not {}", json_kind(value)))
        };
        match field {
            Field::Email => self.email = Some(check_email(want_string()?)?),
            Field::Name => self.name = Some(Some(check_text(want_string()?, MAX_TEXT_CHARS)?)),
            Field::Phone => self.phone = Some(Some(check_text(want_string()?, MAX_PHONE_CHARS)?)),
            Field::Company => self.company = Some(check_text(want_string()?, MAX_TEXT_CHARS)?),
            Field::Lang => {
                // A cell may say "DE"; the API's enum is lowercase, so a body must too
                // (as with auth_types below).
                let text = want_string()?;
                let lang = parse_lang(text)?;
                if lang.as_str() != text {
                    return Err(format!(
                        "{} is not one of de, en, ru, zh, az (lowercase)",
                        show(text)
                    ));
                }
                self.lang = Some(lang.as_str().to_string());
            }
            Field::Groups => {
                let items = want_array()?;
                let mut groups: Vec<&'static IamGroup> = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let group = json_group(item).map_err(|e| format!("item {}: {e}", i + 1))?;
                    if groups.contains(&group) {
                        return Err(format!(
                            "item {}: group {} is listed twice",
                            i + 1,
                            group.id
                        ));
                    }
                    groups.push(group);
                }
                self.groups = Some(groups.into_iter().map(IamGroup::to_group).collect());
            }
            Field::AuthTypes => {
                let items = want_array()?;
                let mut auth_types = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let text = item
                        .as_str()
                        .ok_or_else(|| format!("item {}: must be a string", i + 1))?;
                    let auth = AuthType::ALL
                        .into_iter()
                        .find(|auth| auth.as_str() == text)
                        .ok_or_else(|| format!("item {}: {}", i + 1, auth_type_error(text)))?;
                    auth_types.push(auth.as_str().to_string());
                }
                self.auth_types = Some(auth_types);
            }
        }
        Ok(())
    }
}

fn json_group(item: &Value) -> Result<&'static IamGroup, String> {
    let Value::Object(map) = item else {
        return Err("must be an object such as {\"id\": 2, \"name\": \"Users\"}".to_string());
    };
    let id = map
        .get("id")
        .ok_or("needs an \"id\"")?
        .as_u64()
        .ok_or("\"id\" must be a positive integer")?;
    let group = IamGroup::by_id(id).ok_or_else(|| format!("{id} is not an IAM group ID"))?;
    if let Some(name) = map.get("name")
        && name.as_str() != Some(group.name)
    {
        return Err(format!("group {id} is named {:?}, not {name}", group.name));
    }
    if let Some(key) = map.keys().find(|key| *key != "id" && *key != "name") {
        return Err(format!(
            "unknown key {key:?} (a group has \"id\" and \"name\")"
        ));
    }
    Ok(group)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn field_list() -> String {
    let names: Vec<_> = Field::ALL.iter().map(|field| field.name()).collect();
    names.join(", ")
}

/// A user ID as people write it: digits only, surrounding spaces allowed.
/// Whether `text` is a number in scientific notation (`4.93E+10`, `1e5`):
/// what a spreadsheet saves for a long number it stores as a number, with
/// digits lost.
pub fn scientific(text: &str) -> bool {
    let text = text.trim();
    let Some((mantissa, exponent)) = text.split_once(['e', 'E']) else {
        return false;
    };
    let mantissa = mantissa.strip_prefix(['+', '-']).unwrap_or(mantissa);
    let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once(['.', ',']) {
        Some((whole, part)) => digits(whole) && digits(part),
        None => digits(mantissa),
    };
    mantissa_ok && digits(exponent)
}

pub(crate) fn parse_user_id(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("is empty; every row needs the ID of the user to change".to_string());
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{} is not a positive whole number", show(text)));
    }
    match text.parse::<u64>() {
        Ok(0) => Err("0 is not a user ID; IDs start at 1".to_string()),
        Ok(id) if id <= MAX_USER_ID => Ok(id),
        _ => Err(format!(
            "{} is too large; user IDs go up to {MAX_USER_ID}",
            show(text)
        )),
    }
}

pub(crate) fn check_email(text: &str) -> Result<String, String> {
    if text.chars().count() > MAX_EMAIL_CHARS {
        return Err(too_long(text, MAX_EMAIL_CHARS));
    }
    let options = email_address::Options {
        minimum_sub_domains: 2,
        allow_domain_literal: false,
        allow_display_text: false,
        allow_long_local_parts: false,
    };
    match email_address::EmailAddress::parse_with_options(text, options) {
        Ok(_) => Ok(text.to_string()),
        Err(reason) => {
            let reason = reason.to_string();
            let reason = reason.trim_end_matches('.');
            Err(format!(
                "{} is not a valid address ({})",
                show(text),
                reason.to_lowercase()
            ))
        }
    }
}

/// Free text (name, phone, company): no control characters, at most `max` characters.
pub(crate) fn check_text(text: &str, max: usize) -> Result<String, String> {
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(format!(
            "contains a control character (U+{:04X}); remove it, or the line break inside the cell",
            c as u32
        ));
    }
    if text.chars().count() > max {
        return Err(too_long(text, max));
    }
    Ok(text.to_string())
}

fn too_long(text: &str, max: usize) -> String {
    format!(
        "is {} characters long; at most {max} are allowed",
        text.chars().count()
    )
}

pub(crate) fn parse_lang(text: &str) -> Result<Lang, String> {
    Lang::parse(text.trim()).ok_or_else(|| {
        let all: Vec<_> = Lang::ALL.iter().map(|lang| lang.as_str()).collect();
        format!("{} is not one of {}", show(text), all.join(", "))
    })
}

fn parse_group(item: &str) -> Result<&'static IamGroup, String> {
    let found = if item.bytes().all(|b| b.is_ascii_digit()) {
        item.parse().ok().and_then(IamGroup::by_id)
    } else {
        IamGroup::by_name(item)
    };
    found.ok_or_else(|| {
        let known: Vec<_> = IAM_GROUPS
            .iter()
            .map(|group| format!("{} ({})", group.name, group.id))
            .collect();
        let names = IAM_GROUPS.iter().map(|group| group.name);
        let hint = match closest(item, names) {
            Some(name) => format!("did you mean {name:?}? "),
            None => String::new(),
        };
        format!(
            "{} is not an IAM group; {hint}use a name or ID of: {}",
            show(item),
            known.join(", ")
        )
    })
}

fn parse_auth_type(item: &str) -> Result<AuthType, String> {
    AuthType::parse(item).ok_or_else(|| auth_type_error(item))
}

fn auth_type_error(item: &str) -> String {
    let all: Vec<_> = AuthType::ALL.iter().map(|auth| auth.as_str()).collect();
    format!("{} is not one of {}", show(item), all.join(", "))
}

/// A `;`- or `|`-separated list. Items are trimmed; an empty item or one given
/// twice is an error, since it usually means a typo in the cell.
fn parse_list<T: PartialEq>(
    cell: &str,
    parse_item: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for (i, item) in cell.split([';', '|']).enumerate() {
        let item = item.trim();
        if item.is_empty() {
            errors.push(format!(
                "item {} is empty (a doubled or trailing separator?)",
                i + 1
            ));
            continue;
        }
        match parse_item(item) {
            Ok(value) if items.contains(&value) => {
                errors.push(format!("{} is listed twice", show(item)));
            }
            Ok(value) => items.push(value),
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        Ok(items)
    } else {
        Err(errors.join(", "))
    }
}

/// The candidate closest to `input`, when it is close enough to be a typo.
pub(crate) fn closest<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let input = input.to_lowercase();
    candidates
        .into_iter()
        .map(|candidate| {
            (
                strsim::jaro_winkler(&input, &candidate.to_lowercase()),
                candidate,
            )
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// A value quoted for a message: escaped, and cut short so that a 1 MB cell
/// does not flood the terminal.
pub fn show(text: &str) -> String {
    const MAX: usize = 40;
    match crate::visible::prefix(text, MAX) {
        Some(prefix) => format!("{prefix:?}…"),
        None => format!("{text:?}"),
    }
}

#[cfg(test)]
mod tests;
