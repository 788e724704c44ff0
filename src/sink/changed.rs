//! Who changed: per field, the users a run changed (or a plan would
//! change), with the value before and after, kept as the rows are written:
//! a few per field for the terminal's summary, more for `--report`'s page.
//! The fields go rarest first: the three users who lost a group must not
//! drown under the thousand whose company changed.

use std::fmt::Write as _;

use crate::engine::events::Outcome;
use crate::model::patch::Field;
use crate::table::results::{Kind, Status};

use super::problems::{cut, visible};

/// One user a field changed for.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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
    /// The users invited and removed (or a plan would), kept as for a
    /// field, and how many there are.
    members: [Vec<ChangedUser>; 2],
    member_counts: [u64; 2],
}

/// The names invitations and removals go by, beside the fields.
const MEMBERSHIP: [&str; 2] = ["invited", "removed"];

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
            members: [Vec::new(), Vec::new()],
            member_counts: [0; 2],
        }
    }

    /// Invitations and removals on the terminal: every one up to this
    /// many (removals are bounded by `--max-removals` anyway).
    const MEMBERS_TERMINAL: usize = 25;

    /// Notes a user invited or removed (or whom a plan would).
    fn note_member(&mut self, outcome: &Outcome) -> bool {
        let status = outcome.landed.unwrap_or(outcome.record.status);
        let at = match status {
            Status::INVITED | Status::WOULD_INVITE => 0,
            Status::REMOVED | Status::WOULD_REMOVE => 1,
            _ => return false,
        };
        self.member_counts[at] += 1;
        let keep = self.keep.max(Self::MEMBERS_TERMINAL);
        if self.members[at].len() >= keep {
            return true;
        }
        // A dry run read no user: an invitation's row says who.
        let asked = match (&outcome.record.user, at) {
            (None, 0) => serde_json::from_str::<crate::model::api::User>(&outcome.record.request)
                .ok()
                .map(Box::new),
            _ => None,
        };
        let user = outcome.record.user.as_deref().or(asked.as_deref());
        let text = |value: Option<&str>| visible(&cut(value.unwrap_or_default(), 120));
        let groups = user
            .and_then(|user| user.groups.as_ref())
            .map(|groups| {
                let names: Vec<&str> = groups.iter().map(|group| group.name.as_str()).collect();
                names.join(";")
            })
            .unwrap_or_default();
        let groups = visible(&cut(&groups, Self::VALUE));
        let (from, to) = match at {
            0 => (String::new(), groups),
            _ => (groups, String::new()),
        };
        self.members[at].push(ChangedUser {
            row: outcome.record.row,
            user_id: visible(&cut(&outcome.record.user_id, 40)),
            email: text(user.and_then(|user| user.email.as_deref())),
            name: text(user.and_then(|user| user.name.as_deref())),
            from,
            to,
        });
        true
    }

    /// Notes what a row changed (or would change), if it did.
    pub(crate) fn note(&mut self, outcome: &Outcome) {
        // A row that failed after its invitation went out changed the
        // account all the same: its user is listed.
        let kind = outcome.landed.unwrap_or(outcome.record.status).kind();
        if !matches!(kind, Kind::Changed | Kind::Planned) || self.note_member(outcome) {
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

    /// The users invited and removed (or that would be), as kept: for each,
    /// its name (`invited`, `removed`), how many there are, and the first
    /// ones (the summary JSON's `members`).
    pub(crate) fn members(&self) -> Vec<(&'static str, u64, &[ChangedUser])> {
        (MEMBERSHIP.iter().zip(self.member_counts).zip(&self.members))
            .filter(|((_, count), _)| *count > 0)
            .map(|((name, count), users)| (*name, count, users.as_slice()))
            .collect()
    }

    /// The users invited and removed (`invited`, `removed`), then the
    /// fields changed, rarest first (`counts`: rows per field, in
    /// [`Field::ALL`]'s order), each with how many rows and the users kept.
    pub(crate) fn rarest_first<'a>(
        &'a self,
        counts: &[u64],
    ) -> Vec<(&'static str, u64, &'a [ChangedUser])> {
        let mut fields: Vec<(&'static str, u64, &[ChangedUser])> = Field::ALL
            .iter()
            .zip(counts)
            .zip(&self.users)
            .filter(|((_, count), _)| **count > 0)
            .map(|((field, count), users)| (field.name(), *count, users.as_slice()))
            .collect();
        // Stable: equal counts keep the order of the columns.
        fields.sort_by_key(|(_, count, _)| *count);
        let members = (MEMBERSHIP.iter().zip(self.member_counts).zip(&self.members))
            .filter(|((_, count), _)| *count > 0)
            .map(|((name, count), users)| (*name, count, users.as_slice()));
        members.chain(fields).collect()
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
                "  {field} ({count} {}):",
                if count == 1 { "user" } else { "users" }
            );
            let member = MEMBERSHIP.contains(&field);
            let shown = match member {
                true => Self::MEMBERS_TERMINAL,
                false => Self::TERMINAL,
            };
            for user in users.iter().take(shown) {
                let _ = match user.user_id.is_empty() {
                    true => write!(text, "    row {}", user.row),
                    false => write!(text, "    user {}", user.user_id),
                };
                if !user.email.is_empty() {
                    let _ = write!(text, " {}", user.email);
                }
                let _ = match member {
                    true => match format!("{}{}", user.from, user.to) {
                        groups if groups.is_empty() => writeln!(text),
                        groups => writeln!(text, " ({})", cut(&groups, 60)),
                    },
                    false => {
                        writeln!(text, ": {} -> {}", cut(&user.from, 60), cut(&user.to, 60))
                    }
                };
            }
            let more = count.saturating_sub(users.len().min(shown) as u64);
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
            kept: false,
            landed: None,
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
        let names: Vec<&str> = fields.iter().map(|(field, _, _)| *field).collect();
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
