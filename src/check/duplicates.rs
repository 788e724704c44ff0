//! User IDs on more than one row, found in a first pass: each of those
//! rows names the others.

use std::collections::HashMap;

use super::cells::OTHERS_SHOWN;
use super::{EmailIndex, user_of};
use crate::error::Fatal;
use crate::table::input::Input;

/// User IDs that appear on more than one row, with those rows; and the
/// addresses invited on more than one row (lower case), with those rows.
#[derive(Debug, Default)]
pub struct Duplicates {
    rows: HashMap<u64, Vec<u64>>,
    invited: HashMap<String, Vec<u64>>,
}

impl Duplicates {
    /// From the user IDs that a pass over `input` already collected (see
    /// [`user_of`]); reads the file again only when some ID repeats.
    pub(crate) fn from_ids(
        input: &Input,
        mut ids: Vec<u64>,
        emails: Option<&EmailIndex>,
    ) -> Result<Duplicates, Fatal> {
        ids.sort_unstable();
        let repeated: Vec<u64> = ids
            .windows(2)
            .filter(|pair| pair[0] == pair[1])
            .map(|pair| pair[0])
            .collect();
        drop(ids);
        let mut rows_of: HashMap<u64, Vec<u64>> =
            repeated.into_iter().map(|id| (id, Vec::new())).collect();
        if !rows_of.is_empty() {
            let mut rows = input.rows()?;
            let header = rows.header().clone();
            while let Some(raw) = rows.next_row()? {
                if let Some(list) =
                    user_of(&raw, &header, emails).and_then(|id| rows_of.get_mut(&id))
                {
                    list.push(raw.row);
                }
            }
        }
        Ok(Duplicates {
            rows: rows_of,
            invited: HashMap::new(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.invited.is_empty()
    }

    /// Keeps the addresses of `invitations` (address, row, whether the
    /// row invites: else an update row gives the address) that more than
    /// one row has, one of them an invitation.
    pub(crate) fn with_invitations(
        mut self,
        mut invitations: Vec<(String, u64, bool)>,
    ) -> Duplicates {
        invitations.sort_unstable();
        for same in invitations.chunk_by(|a, b| a.0 == b.0) {
            if same.len() > 1 && same.iter().any(|(_, _, invite)| *invite) {
                let rows = same.iter().map(|(_, row, _)| *row).collect();
                self.invited.insert(same[0].0.clone(), rows);
            }
        }
        self
    }

    /// The other rows that invite `email` (the first few).
    pub(crate) fn invited_elsewhere(&self, email: &str, row: u64) -> Vec<u64> {
        (self
            .invited
            .get(&email.trim().to_lowercase())
            .into_iter()
            .flatten())
        .copied()
        .filter(|other| *other != row)
        .take(OTHERS_SHOWN)
        .collect()
    }

    /// The first few other rows that hold `user_id` (at most
    /// [`OTHERS_SHOWN`]) and how many there are: constant work per row, so
    /// that one user on 150,000 rows is checked in linear time.
    pub(super) fn others(&self, user_id: u64, row: u64) -> (Vec<u64>, usize) {
        let Some(rows) = self.rows.get(&user_id) else {
            return (Vec::new(), 0);
        };
        let shown = rows
            .iter()
            .copied()
            .filter(|&other| other != row)
            .take(OTHERS_SHOWN)
            .collect();
        // The rows are in order and each is listed once.
        let this_one = usize::from(rows.binary_search(&row).is_ok());
        (shown, rows.len() - this_one)
    }
}
