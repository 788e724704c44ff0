//! `sandbox --users-file FILE`: the users a sandbox serves instead of
//! seeded ones, so that a person can rehearse on a copy of their account
//! (an `export` file) and tests can start from odd live values (JSON).

use std::io::Read;
use std::path::Path;

use crate::model::api::{User, UserPage};
use crate::model::field::Field;
use crate::model::patch::PatchBody;

/// The largest users file read: a million users of about 1 KiB each.
pub(crate) const MAX_FILE_BYTES: u64 = 1 << 30;

/// Reads `path`: a JSON list of user objects, a JSON page of the list
/// (`{"count": N, "results": [...]}`), or a CSV file that `export` wrote
/// (its `user_id`, field and read-only columns; `#null` is null).
pub fn read(path: &Path) -> Result<Vec<User>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot be opened ({e})"))?;
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    if size > MAX_FILE_BYTES {
        return Err(format!(
            "is {size} bytes; a users file may hold at most {MAX_FILE_BYTES} bytes (a million \
             users)"
        ));
    }
    let mut text = String::new();
    file.take(MAX_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot be read as UTF-8 text ({e})"))?;
    let text = text.trim_start_matches('\u{feff}');
    match text.trim_start().as_bytes().first() {
        Some(b'[') => serde_json::from_str::<Vec<User>>(text)
            .map_err(|e| format!("is not a JSON list of users ({e})")),
        Some(b'{') => serde_json::from_str::<UserPage>(text)
            .map(|page| page.results)
            .map_err(|e| format!("is not a JSON page of users ({e})")),
        Some(_) => from_export(text),
        None => Err("is empty".to_string()),
    }
}

/// The users of an `export` CSV file (or of a workbook's sheet that
/// `export` wrote, as CSV text).
pub(crate) fn from_export(text: &str) -> Result<Vec<User>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    let column = |name: &str| header.iter().position(|h| h == name);
    let Some(id_column) = column("user_id") else {
        return Err(
            "is neither JSON nor a CSV file that export wrote (it has no user_id column)"
                .to_string(),
        );
    };
    let verbatim = column("verbatim");
    let mut users = Vec::new();
    for (at, record) in reader.records().enumerate() {
        let line = at + 2;
        let record = record.map_err(|e| format!("line {line}: {e}"))?;
        let cell = |index: Option<usize>| {
            index
                .and_then(|index| record.get(index))
                .map(str::trim)
                .unwrap_or_default()
        };
        let id = cell(Some(id_column))
            .parse::<u64>()
            .map_err(|_| format!("line {line}: the user_id is not a whole number"))?;
        let json = verbatim.is_some_and(|_| cell(verbatim).eq_ignore_ascii_case("json"));
        let mut body = PatchBody::default();
        for field in Field::ALL {
            let text = unquoted(cell(column(field.name())));
            if text.is_empty() {
                continue;
            }
            let set = match json {
                true => serde_json::from_str(text)
                    .map_err(|e| e.to_string())
                    .and_then(|value| body.set_verbatim(field, &value)),
                false => body.set_cell(field, text, "#null"),
            };
            set.map_err(|e| format!("line {line}, column {}: {e}", field.name()))?;
        }
        let mut user = User {
            id: Some(id),
            ..User::default()
        };
        crate::model::change::apply(&mut user, &body);
        let flag = |name: &str| match cell(column(name)) {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        };
        user.activated = flag("activated");
        user.deleted = flag("deleted");
        user.is_active = flag("is_active");
        user.two_fa = flag("two_fa");
        user.sso_auth = flag("sso_auth");
        user.user_type = Some(cell(column("user_type")))
            .filter(|text| !text.is_empty())
            .map(str::to_string);
        users.push(user);
    }
    Ok(users)
}

/// A cell as `export` wrote it before it made it safe for a spreadsheet:
/// one leading `'` dropped before `=`, `+`, `-`, `@`, a tab, a carriage
/// return or another `'`.
fn unquoted(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']) => rest,
        _ => cell,
    }
}
