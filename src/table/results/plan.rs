//! The columns a plan's results file has after the others, and the check
//! that chains its rows.

/// The last column of a plan: a check of the row's cells and the check of
/// the row before (see [`plan_check`]).
pub(crate) const PLAN_CHECK: &str = "plan_check";

/// The check of one row of a plan: the first 16 bytes, in hex, of the
/// SHA-256 of the previous row's check and the row's cells as written
/// (each followed by a unit separator).
pub fn plan_check<'a>(previous: &str, cells: impl Iterator<Item = &'a str>) -> String {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    digest.update(previous.as_bytes());
    digest.update(b"\x1e");
    for cell in cells {
        digest.update(cell.as_bytes());
        digest.update(b"\x1f");
    }
    let sum = digest.finish();
    sum.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A plan's column after the user's: the user's input fields as the plan
/// read them, as JSON ([`User::fields_json`]), so that `apply --plan`
/// compares with exactly what the plan saw (the user cells cannot tell
/// `""` from null, or say a group's ID).
///
/// [`User::fields_json`]: crate::model::api::User::fields_json
pub(crate) const READ_AS: &str = "read_as";

/// The column a plan's results file has after the others: when the plan
/// read the live state (an HTTP date). It tells a plan from a run's record.
pub(crate) const PLANNED_AT: &str = "planned_at";
