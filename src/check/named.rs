//! Which user a row names: by its `user_id`, or by its `current_email`
//! through the account's users by address; and the users a whole input
//! names (`plan --remove-missing`).

use std::collections::HashMap;

use super::REMOVALS_NAMED;
use crate::error::Fatal;
use crate::model::action::Action;
use crate::model::api::User;
use crate::model::patch::parse_user_id;
use crate::table::input::{Header, Input, RawRow};

/// The account's users by address, to resolve rows that name a user by
/// `current_email` (any case).
#[derive(Debug, Default)]
pub struct EmailIndex {
    ids: HashMap<String, Vec<u64>>,
    /// Every user listed, with an address or not.
    users: std::collections::HashSet<u64>,
}

impl EmailIndex {
    pub fn new(users: &[User]) -> EmailIndex {
        let mut ids: HashMap<String, Vec<u64>> = HashMap::new();
        for user in users {
            if let (Some(id), Some(email)) = (user.id, &user.email) {
                ids.entry(email.trim().to_lowercase()).or_default().push(id);
            }
        }
        let users = users.iter().filter_map(|user| user.id).collect();
        EmailIndex { ids, users }
    }

    /// Whether user `id` was listed.
    pub(crate) fn has_id(&self, id: u64) -> bool {
        self.users.contains(&id)
    }

    /// The users with this address.
    pub(crate) fn lookup(&self, email: &str) -> &[u64] {
        self.ids
            .get(&email.trim().to_lowercase())
            .map_or(&[], Vec::as_slice)
    }
}

/// A row's user: its `user_id` cell when that holds an ID, else the one
/// user its `current_email` resolves to (with an index).
pub fn user_of(raw: &RawRow, header: &Header, emails: Option<&EmailIndex>) -> Option<u64> {
    let cell = |column: Option<usize>| {
        std::str::from_utf8(raw.cells.get(column?)?)
            .ok()
            .map(str::trim)
    };
    if let Some(id) = cell(header.user_id).and_then(|text| parse_user_id(text).ok()) {
        return Some(id);
    }
    match (cell(header.current_email), emails) {
        (Some(address), Some(emails)) if !address.is_empty() => match emails.lookup(address) {
            [id] => Some(*id),
            _ => None,
        },
        _ => None,
    }
}

/// The first rows that name no user that can be told, and how many.
pub(crate) type Unnamed = (Vec<u64>, u64);

/// The users the rows of `input` name (by `user_id`, or by
/// `current_email` with `emails`), valid rows or not; `Err`: the first
/// rows (up to [`REMOVALS_NAMED`]) that are not invitations and name no
/// user that can be told (an ID that is no ID, an address no user or
/// several users have), and how many there are.
pub(crate) fn named_users(
    input: &Input,
    emails: Option<&EmailIndex>,
) -> Result<Result<std::collections::HashSet<u64>, Unnamed>, Fatal> {
    let mut rows = input.rows()?;
    let header = rows.header().clone();
    let mut named = std::collections::HashSet::new();
    let (mut unnamed, mut count) = (Vec::new(), 0);
    while let Some(raw) = rows.next_row()? {
        match user_of(&raw, &header, emails) {
            Some(id) => {
                named.insert(id);
            }
            None => {
                let action = header.action.and_then(|column| raw.cells.get(column));
                let action = action.map(|cell| String::from_utf8_lossy(cell).into_owned());
                if Action::parse(action.as_deref().unwrap_or_default()) != Ok(Action::Invite) {
                    count += 1;
                    if unnamed.len() < REMOVALS_NAMED {
                        unnamed.push(raw.row);
                    }
                }
            }
        }
    }
    Ok(match count {
        0 => Ok(named),
        _ => Err((unnamed, count)),
    })
}
