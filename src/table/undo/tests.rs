use super::*;

fn user(id: u64, email: &str) -> User {
    let mut user: User = serde_json::from_value(serde_json::json!({
        "id": id, "email": email, "name": "N", "lang": "en", "phone": null,
        "company": "C", "groups": [{"id": 2, "name": "Users"}], "auth_types": ["password"]
    }))
    .unwrap();
    user.id = Some(id);
    user
}

/// A removal refused takes its row out when the run ends; a row written
/// after it for the same address (another user, removed since) stays.
#[test]
fn a_retracted_row_goes_and_a_later_one_for_the_address_stays() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("undo.csv");
    let log = UndoLog::open(&path, false, false).unwrap();
    log.record_removed(&user(5, "e@example.com")).unwrap();
    // A DELETE sent again: no second row.
    log.record_removed(&user(5, "e@example.com")).unwrap();
    log.retract_invitation_of("E@example.com");
    log.record_removed(&user(11, "e@example.com")).unwrap();
    log.finish().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let invites: Vec<&str> = text.lines().filter(|l| l.ends_with(",invite")).collect();
    assert_eq!(invites.len(), 1, "{text}");
    assert_eq!(log.members(), [0, 1]);
}
