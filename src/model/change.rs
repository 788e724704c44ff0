//! What a PATCH body does to a user: [`apply`] changes exactly the fields the
//! body carries (the sandbox answers with it), and [`diff`] says which of them
//! would change a user's live state (the plan, `--skip-unchanged` and the
//! undo file build on it). Pure, so both are tested without a server.

use std::fmt;

use super::api::{Group, User};
use super::patch::{Field, PatchBody};

/// What differs between two states of a user in the fields a row can
/// set (a field `before` leaves out is not compared): a plan's removal is
/// sent only for a user still as the plan read them.
pub fn same_user(before: &User, now: &User) -> Vec<Change> {
    let mut body = PatchBody::default();
    for field in Field::ALL {
        if let Some(value) = before.value(field) {
            // A value no PATCH takes (a null address) is compared as absent.
            let _ = body.set_verbatim(field, &value);
        }
    }
    diff(&body, now)
}

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

pub(crate) use super::field::FieldSet;

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
pub(crate) fn only_fields(body: &PatchBody, set: FieldSet) -> PatchBody {
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
pub(crate) fn number_damage(body: &PatchBody, user: &User) -> Vec<(Field, String)> {
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
mod tests;
