//! Who changed: per field, the users a run changed (or a plan would
//! change), with the value before and after, kept as the rows are written:
//! a few per field for the terminal's summary, more for `--report`'s page.
//! The fields go rarest first: the three users who lost a group must not
//! drown under the thousand whose company changed.

use std::fmt::Write as _;

use crate::engine::events::Outcome;
use crate::model::patch::Field;
use crate::table::results::Kind;

use super::problems::{cut, visible};

/// One user a field changed for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChangedUser {
    /// The row of the input.
    pub(super) row: u64,
    pub(super) user_id: String,
    /// As the run last read the user (empty when it did not).
    pub(super) email: String,
    pub(super) name: String,
    pub(super) from: String,
    pub(super) to: String,
}

/// See the module's documentation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChangedUsers {
    /// In [`Field::ALL`]'s order: the users kept for each field.
    users: Vec<Vec<ChangedUser>>,
    /// How many are kept per field.
    keep: usize,
}

impl Default for ChangedUsers {
    fn default() -> ChangedUsers {
        ChangedUsers::keeping(ChangedUsers::TERMINAL)
    }
}

impl ChangedUsers {
    /// Users per field the terminal's summary names.
    pub(crate) const TERMINAL: usize = 3;
    /// Users per field the report's page lists (the results file has them
    /// all): eight fields of a thousand rows keep a page light.
    pub(crate) const PAGE: usize = 1_000;
    /// Longer values are cut (the results file has them whole).
    const VALUE: usize = 200;

    pub(crate) fn keeping(keep: usize) -> ChangedUsers {
        ChangedUsers {
            users: vec![Vec::new(); Field::ALL.len()],
            keep,
        }
    }

    /// Notes what a row changed (or would change), if it did.
    pub(crate) fn note(&mut self, outcome: &Outcome) {
        let kind = outcome.record.status.kind();
        if !matches!(kind, Kind::Changed | Kind::Planned) {
            return;
        }
        let user = outcome.record.user.as_deref();
        for change in &outcome.changes {
            let Some(at) = Field::ALL.iter().position(|field| *field == change.field) else {
                continue;
            };
            let kept = &mut self.users[at];
            if kept.len() >= self.keep {
                continue;
            }
            let text = |value: Option<&str>| visible(&cut(value.unwrap_or_default(), 120));
            kept.push(ChangedUser {
                row: outcome.record.row,
                user_id: visible(&cut(&outcome.record.user_id, 40)),
                email: text(user.and_then(|user| user.email.as_deref())),
                name: text(user.and_then(|user| user.name.as_deref())),
                from: visible(&cut(&change.from, Self::VALUE)),
                to: visible(&cut(&change.to, Self::VALUE)),
            });
        }
    }

    /// The fields changed, rarest first (`counts`: rows per field, in
    /// [`Field::ALL`]'s order), each with how many rows and the users kept.
    pub(crate) fn rarest_first<'a>(
        &'a self,
        counts: &[u64],
    ) -> Vec<(Field, u64, &'a [ChangedUser])> {
        let mut fields: Vec<(Field, u64, &[ChangedUser])> = Field::ALL
            .iter()
            .zip(counts)
            .zip(&self.users)
            .filter(|((_, count), _)| **count > 0)
            .map(|((field, count), users)| (*field, *count, users.as_slice()))
            .collect();
        // Stable: equal counts keep the order of the columns.
        fields.sort_by_key(|(_, count, _)| *count);
        fields
    }

    /// The terminal's lines: per field, rarest first, up to
    /// [`ChangedUsers::TERMINAL`] users by ID and e-mail with the change.
    pub(crate) fn render(&self, counts: &[u64], verb: &str) -> String {
        let fields = self.rarest_first(counts);
        let mut text = String::new();
        if fields.iter().all(|(_, _, users)| users.is_empty()) {
            return text;
        }
        let _ = writeln!(
            text,
            "who {verb}, rarest field first (the results file has every row):"
        );
        for (field, count, users) in fields {
            let _ = writeln!(
                text,
                "  {} ({count} {}):",
                field.name(),
                if count == 1 { "user" } else { "users" }
            );
            let shown = users.iter().take(Self::TERMINAL);
            for user in shown {
                let _ = write!(text, "    user {}", user.user_id);
                if !user.email.is_empty() {
                    let _ = write!(text, " {}", user.email);
                }
                let _ = writeln!(text, ": {} -> {}", cut(&user.from, 60), cut(&user.to, 60));
            }
            let more = count.saturating_sub(users.len().min(Self::TERMINAL) as u64);
            if more > 0 {
                let _ = writeln!(text, "    and {more} more");
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::api::User;
    use crate::model::change::Change;
    use crate::table::results::{ResultRecord, Status};

    fn outcome(row: u64, status: Status, changes: &[(Field, &str, &str)]) -> Outcome {
        let mut record = ResultRecord::decided(row, row.to_string(), status, String::new());
        record.user = Some(Box::new(User {
            email: Some(format!("u{row}@example.com")),
            ..User::default()
        }));
        Outcome {
            seq: row,
            throttled: 0,
            retries: 0,
            changes: changes
                .iter()
                .map(|(field, from, to)| Change {
                    field: *field,
                    from: from.to_string(),
                    to: to.to_string(),
                })
                .collect(),
            record,
        }
    }

    #[test]
    fn rarest_field_first_a_few_each_and_only_rows_that_changed() {
        let mut users = ChangedUsers::keeping(2);
        for row in 1..=5 {
            let mut changes = vec![(Field::Company, "A", "B")];
            if row == 4 {
                changes.push((Field::Groups, "Administrators", "Users"));
            }
            users.note(&outcome(row, Status::UPDATED, &changes));
        }
        // A row that failed changed nothing it can vouch for.
        users.note(&outcome(9, Status::FAILED, &[(Field::Lang, "en", "de")]));
        let mut counts = [0u64; Field::ALL.len()];
        let at = |field| Field::ALL.iter().position(|f| *f == field).unwrap();
        counts[at(Field::Company)] = 5;
        counts[at(Field::Groups)] = 1;
        let fields = users.rarest_first(&counts);
        let names: Vec<&str> = fields.iter().map(|(field, _, _)| field.name()).collect();
        assert_eq!(names, ["groups", "company"]);
        assert_eq!(fields[0].2[0].email, "u4@example.com");
        assert_eq!(fields[1].2.len(), 2, "two kept of five");
        let text = users.render(&counts, "changed");
        assert!(
            text.contains(
                "  groups (1 user):\n    user 4 u4@example.com: Administrators -> Users\n"
            ),
            "{text}"
        );
        assert!(text.contains("    and 3 more\n"), "{text}");
        assert!(!text.contains("lang"), "{text}");
    }
}
