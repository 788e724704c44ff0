//! `plan`: check every row as `validate` does, then read each valid row's
//! user and write what the row would change (`would_update` and the
//! `changes` column) or that the user already has every value
//! (`unchanged`). Only GETs are sent.

use std::collections::HashSet;

use super::members::Members;
use super::rows::{Keeps, RowsFlags, RowsRun, Sending, Started};
use super::{AccountList, Next, live_snapshot, whole_list};
use crate::check::named_users;
use crate::cli::PlanArgs;
use crate::error::Fatal;
use crate::exit::Exit;
use crate::operations::plan::PlanRows;
use crate::settings::PLAN_SUFFIX;
use crate::table::results::{ResultRecord, Status};

pub(super) fn run(mut args: PlanArgs) -> Result<Exit, Fatal> {
    // A plan or a dry run is replaced; the record of a run that sent
    // changes only with --overwrite, even under the plan's default name.
    let mut run = RowsRun::new(
        RowsFlags {
            command: "plan",
            input: &args.input,
            output: &args.output,
            sending: Some((&args.api, &mut args.run)),
            summary_json: None,
            suffix: PLAN_SUFFIX,
            next: Next::Nothing,
            keeps: Keeps::Plan,
            rehearsal: None,
            members: (&args.members).into(),
        },
        PlanRows::default(),
    )?;
    run.changes_exit = args.exit_code;
    let allow_number_changes = args.allow_number_changes;
    let remove_missing = args.remove_missing;
    let members = Members::from(&args.members);
    run.send_rows(async |started: &mut Started<'_>| {
        let mut users = started.first.users.take();
        let mut extra = Vec::new();
        // The user the key acts as is never planned for removal.
        let current_user = match (remove_missing, started.current_user) {
            (true, None) => {
                let (client, send) = (started.client, started.send);
                let account = members.account_id(client, send, started.interrupt).await?;
                super::members::acting_user_known(&account)?;
                account.current_user
            }
            (_, known) => known,
        };
        if remove_missing {
            let list = match users.take() {
                Some(list) => list,
                None => {
                    let why = "--remove-missing plans the removal of every user no row names";
                    let (client, send) = (started.client, started.send);
                    whole_list(client, send, started.interrupt, started.quiet, why).await?
                }
            };
            extra = missing(started, &list, current_user).await?;
            let named: Vec<(u64, String)> = (extra.iter())
                .map(|record| (0, format!("user {}", record.user_id)))
                .collect();
            let what = (
                "the plan (with --remove-missing)",
                "no plan was written",
                super::members::CUT_SHORT,
            );
            members.guard(&started.first.preflight, &named, what)?;
            users = Some(list);
        }
        let snapshot = live_snapshot(
            users,
            &started.first.preflight,
            started.client,
            started.send,
            started.interrupt,
            started.quiet,
        )
        .await?;
        Ok(Sending {
            operation: PlanRows {
                snapshot,
                allow_number_changes,
                current_user,
            },
            keep_body: true,
            live: None,
            extra,
        })
    })
}

/// The plan's removals of the users of `list` that no row of the input
/// names (`--remove-missing`), in the list's order.
async fn missing(
    started: &Started<'_>,
    list: &AccountList,
    current_user: Option<u64>,
) -> Result<Vec<ResultRecord>, Fatal> {
    // A user on two rows (a typo of another's ID) leaves that other unnamed.
    if !started.first.preflight.duplicates.is_empty() {
        return Err(Fatal::Usage(
            "with --remove-missing every row must name its own user, and some user is named on \
             more than one row (a typo of another user's ID leaves that user planned for \
             removal): see plan without --remove-missing for the rows, fix them, then plan \
             again; no plan was written"
                .to_string(),
        ));
    }
    let input = std::sync::Arc::clone(&started.first.input);
    let emails = started.first.emails.clone();
    let named = tokio::task::spawn_blocking(move || named_users(&input, emails.as_deref()))
        .await
        .expect("reading the rows does not panic")?;
    // A row whose user cannot be told would have its user removed.
    let named: HashSet<u64> = named.map_err(|(rows, count)| {
        let rows: Vec<String> = rows.iter().map(u64::to_string).collect();
        Fatal::Usage(format!(
            "with --remove-missing every row must name its user, and {count} {} no user of the \
             account that can be told (row {}{}: a user_id that is no ID, an address that no \
             user or several users have, or neither); their users would be planned for \
             removal: fix those rows (see plan without --remove-missing), then plan again; no \
             plan was written",
            if count == 1 { "names" } else { "name" },
            rows.join(", "),
            if count as usize > rows.len() {
                " and more"
            } else {
                ""
            }
        ))
    })?;
    // A user_id that is no user of the account (a typo) would leave the
    // user it was meant for unnamed, and planned for removal.
    let listed: HashSet<u64> = list.users.iter().filter_map(|user| user.id).collect();
    let mut unknown: Vec<u64> = named.difference(&listed).copied().collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        let shown: Vec<String> = unknown.iter().take(5).map(u64::to_string).collect();
        return Err(Fatal::Usage(format!(
            "with --remove-missing every row must name a user of the account, and user_id {}{} \
             is none (a typo leaves the user it meant planned for removal): fix those rows, \
             then plan again; no plan was written",
            shown.join(", "),
            match unknown.len() > shown.len() {
                true => format!(" and {} more", unknown.len() - shown.len()),
                false => String::new(),
            }
        )));
    }
    Ok((list.users.iter())
        .filter_map(|user| Some((user.id?, user)))
        .filter(|(id, _)| !named.contains(id))
        // The key's own user: no run with this key removes them.
        .filter(|(id, _)| Some(*id) != current_user)
        .map(|(id, user)| {
            let mut record = ResultRecord::decided(
                0,
                id.to_string(),
                Status::WOULD_REMOVE,
                "no row names this user of the account (--remove-missing)".to_string(),
            );
            record.user = Some(Box::new(user.clone()));
            record
        })
        .collect())
}

/// The arguments of `plan`, with its help (the command's, in `--help`).
pub(crate) type Args = crate::cli::PlanArgs;

impl super::Run for Args {
    fn no_progress(&self) -> bool {
        self.output.no_progress
    }

    fn run(self) -> Result<Exit, Fatal> {
        run(self)
    }
}
