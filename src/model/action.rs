//! What a row does to the account's membership: the `action` column.

/// What a row does to the account (its `action` cell).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    /// `update`, or no action: change the user's fields.
    #[default]
    Update,
    /// `invite`: a new user of the account.
    Invite,
    /// `remove`: the user leaves the account.
    Remove,
}

impl Action {
    /// The action a cell names (any case; empty is `update`).
    pub(crate) fn parse(cell: &str) -> Result<Action, String> {
        match cell.trim().to_ascii_lowercase().as_str() {
            "" | "update" => Ok(Action::Update),
            "invite" => Ok(Action::Invite),
            "remove" => Ok(Action::Remove),
            _ => Err(format!(
                "{} is not an action: write update (or leave it empty) to change the user, \
                 invite for a new user, or remove for a user who leaves the account",
                crate::model::patch::show(cell.trim())
            )),
        }
    }
}
