//! What happened to a row: a word in the results file (`updated`,
//! `would_update`, ...) and the kind of outcome it is, which decides how it
//! is counted, shown and what exit code it makes. The words are open: an
//! operation names its own (`invited`, say) as a constant of its file,
//! with one of the kinds; nothing here lists them.

/// The kind of outcome a status word is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Valid; a dry run or a plan would send it.
    Planned,
    /// Sent, and the API did it (the user's new state is in the row).
    Changed,
    /// The user already was as the row says.
    Unchanged,
    /// Valid, but there was nothing to do (`error` says why).
    Skipped,
    /// The row has problems (`error` lists them); nothing was sent.
    Invalid,
    /// Sent, and the API refused it or never answered.
    Failed,
    /// Valid, but not sent (another row was invalid, or the run stopped).
    NotAttempted,
}

/// What happened to a row: its word and its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status {
    word: &'static str,
    kind: Kind,
}

impl Status {
    /// Valid; a dry run would send `request`.
    pub const WOULD_UPDATE: Status = Status::new("would_update", Kind::Planned);
    /// Sent, and the API answered with the user's new state.
    pub const UPDATED: Status = Status::new("updated", Kind::Changed);
    /// The user already had these values (filled by the plan against live data).
    pub const UNCHANGED: Status = Status::new("unchanged", Kind::Unchanged);
    /// Valid, but there was nothing to do (`error` says why).
    pub(crate) const SKIPPED: Status = Status::new("skipped", Kind::Skipped);
    /// The row has problems (`error` lists them); nothing was sent.
    pub(crate) const INVALID: Status = Status::new("invalid", Kind::Invalid);
    /// Sent, and the API refused it or never answered (`error`, `http_status`).
    pub(crate) const FAILED: Status = Status::new("failed", Kind::Failed);
    /// Valid, but not sent (another row was invalid, or the run stopped).
    pub(crate) const NOT_ATTEMPTED: Status = Status::new("not_attempted", Kind::NotAttempted);

    /// A new user was invited (an `invite` row): the results row holds the
    /// new user's ID.
    pub const INVITED: Status = Status::new("invited", Kind::Changed);
    /// The user left the account (a `remove` row): the results row holds
    /// the user as they were.
    pub const REMOVED: Status = Status::new("removed", Kind::Changed);
    /// Valid; a dry run or a plan would invite the new user.
    pub const WOULD_INVITE: Status = Status::new("would_invite", Kind::Planned);
    /// Valid; a dry run or a plan would remove the user.
    pub const WOULD_REMOVE: Status = Status::new("would_remove", Kind::Planned);
    /// The words of the rows that invite and remove users: an operation
    /// over an input with an `action` column lists them among its own.
    pub(crate) const MEMBERSHIP: [Status; 4] = [
        Status::WOULD_INVITE,
        Status::INVITED,
        Status::WOULD_REMOVE,
        Status::REMOVED,
    ];

    /// The statuses of every run, whatever its operation, in the order
    /// summaries list them.
    pub(crate) const ALL: [Status; 7] = [
        Status::WOULD_UPDATE,
        Status::UPDATED,
        Status::UNCHANGED,
        Status::SKIPPED,
        Status::INVALID,
        Status::FAILED,
        Status::NOT_ATTEMPTED,
    ];

    /// A status with the word `word` (lower case, `_` between words, as
    /// the results file writes it) of the kind `kind`.
    pub const fn new(word: &'static str, kind: Kind) -> Status {
        Status { word, kind }
    }

    pub fn as_str(self) -> &'static str {
        self.word
    }

    pub fn kind(self) -> Kind {
        self.kind
    }

    /// The status whose word is `text`, among [`Status::ALL`] and `more`
    /// (an operation's own).
    pub fn parse(text: &str, more: &[Status]) -> Option<Status> {
        Status::ALL
            .iter()
            .chain(more)
            .copied()
            .find(|status| status.word == text)
    }

    /// Rows with these statuses make the run exit 1.
    pub(crate) fn is_problem(self) -> bool {
        matches!(self.kind, Kind::Invalid | Kind::Failed | Kind::NotAttempted)
    }
}

/// A count per status, in the order of [`Status::ALL`], then of the
/// invitations' and removals' (every run's too: a series of the metrics
/// file must not come and go between runs), then of the other words as
/// they were first counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Counts {
    counts: Vec<(Status, u64)>,
}

impl Default for Counts {
    fn default() -> Counts {
        Counts {
            counts: (Status::ALL.iter().chain(&Status::MEMBERSHIP))
                .map(|status| (*status, 0))
                .collect(),
        }
    }
}

impl Counts {
    /// The count of `status`, 0 if never counted.
    pub(crate) fn get(&self, status: Status) -> u64 {
        self.counts
            .iter()
            .find(|(counted, _)| *counted == status)
            .map_or(0, |(_, count)| *count)
    }

    /// The count of `status`, to change.
    pub(crate) fn entry(&mut self, status: Status) -> &mut u64 {
        let at = match self
            .counts
            .iter()
            .position(|(counted, _)| *counted == status)
        {
            Some(at) => at,
            None => {
                self.counts.push((status, 0));
                self.counts.len() - 1
            }
        };
        &mut self.counts[at].1
    }

    /// The statuses of a kind, counted together.
    pub(crate) fn of_kind(&self, kind: Kind) -> u64 {
        self.counts
            .iter()
            .filter(|(status, _)| status.kind == kind)
            .map(|(_, count)| count)
            .sum()
    }

    /// Every status with its count: those of every run (counted or not)
    /// first, then the others counted.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Status, u64)> + '_ {
        self.counts.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operations_own_word_is_parsed_counted_and_kept_apart() {
        const INVITED: Status = Status::new("resent", Kind::Changed);
        assert_eq!(Status::parse("updated", &[]), Some(Status::UPDATED));
        assert_eq!(Status::parse("resent", &[]), None);
        assert_eq!(Status::parse("resent", &[INVITED]), Some(INVITED));
        let mut counts = Counts::default();
        *counts.entry(INVITED) += 2;
        *counts.entry(Status::UPDATED) += 1;
        assert_eq!(counts.get(INVITED), 2);
        assert_eq!(counts.of_kind(Kind::Changed), 3);
        let words: Vec<&str> = counts.iter().map(|(status, _)| status.as_str()).collect();
        assert_eq!(words.last(), Some(&"resent"));
        assert_eq!(words.len(), 12);
        assert!(!INVITED.is_problem());
        assert!(Status::NOT_ATTEMPTED.is_problem());
    }
}
