use super::*;

fn user(id: u64) -> User {
    User {
        id: Some(id),
        ..User::default()
    }
}

fn page(count: u64, ids: impl IntoIterator<Item = u64>) -> UserPage {
    UserPage {
        count,
        results: ids.into_iter().map(user).collect(),
        left_out: Vec::new(),
    }
}

fn ids(users: &[User]) -> Vec<u64> {
    users.iter().map(|user| user.id.unwrap()).collect()
}

#[test]
fn bounds() {
    assert_eq!(pages_for(0, 0), Ok(1));
    assert_eq!(pages_for(500, 500), Ok(1));
    assert_eq!(pages_for(1000, 500), Ok(3));
    assert_eq!(pages_for(999, 500), Ok(2));
    assert_eq!(pages_for(1001, 500), Ok(3));
    assert_eq!(pages_for(MAX_LIST_USERS, 500), Ok(2005));
    assert!(matches!(
        pages_for(MAX_LIST_USERS + 1, 500),
        Err(ListProblem::Broken(_))
    ));
    assert!(matches!(
        pages_for(u64::MAX, 0),
        Err(ListProblem::Broken(_))
    ));
    assert!(matches!(pages_for(3, 1), Err(ListProblem::Broken(_))));
    assert!(matches!(pages_for(1, 1), Ok(1)));
    // Pages of 5 for a million users: 250,000 pages.
    assert!(matches!(
        pages_for(MAX_LIST_USERS, 5),
        Err(ListProblem::Broken(_))
    ));
    assert_eq!(pages_for(MAX_LIST_USERS, 12), Ok(90_909));
}

#[test]
fn pages_that_fit_together_give_every_user_once() {
    // 10 users in pages of 4: offsets 0, 3, 6; each page after the
    // first begins with the last user of the one before.
    let pages = vec![
        (0, page(10, 1..=4)),
        (3, page(10, 4..=7)),
        (6, page(10, 7..=10)),
    ];
    let (users, partial, without_id, problem) = check(10, 4, pages);
    assert_eq!(ids(&users), (1..=10).collect::<Vec<_>>());
    assert!(partial.is_empty());
    assert_eq!(without_id, 0);
    assert_eq!(problem, None);
}

#[test]
fn a_list_that_moved_or_cannot_deliver_its_count_is_told() {
    let cases: Vec<(Vec<(u64, UserPage)>, &str)> = vec![
        // User 1 removed and user 11 added after the first page: user
        // 5 would be missed.
        (
            vec![
                (0, page(10, 1..=4)),
                (3, page(10, 5..=8)),
                (6, page(10, 8..=11)),
            ],
            "moved: the page at offset 3 begins with user 5, not with user 4",
        ),
        // A user added before the second page: users 3 and 4 twice.
        (
            vec![
                (0, page(11, 1..=4)),
                (3, page(11, 3..=6)),
                (6, page(11, 6..=9)),
            ],
            "moved: the page at offset 3 begins with user 3, not with user 4",
        ),
        (
            vec![
                (0, page(10, 1..=4)),
                (3, page(9, 4..=7)),
                (6, page(10, 7..=10)),
            ],
            "moved: it counted 10 users on the first page and 9 on the page at offset 3",
        ),
        (
            vec![
                (0, page(10, 1..=4)),
                (3, page(10, 4..=7)),
                (6, page(10, [])),
            ],
            "broken: the account's list counts 10 users, but the page at offset 6 came back \
             with 0 users where 4 were due",
        ),
        (
            vec![
                (0, page(10, 1..=4)),
                (3, page(10, 4..=6)),
                (6, page(10, 6..=9)),
            ],
            "broken: the account's list counts 10 users, but the page at offset 3",
        ),
    ];
    for (pages, want) in cases {
        let count = pages[0].1.count;
        let (_, _, _, problem) = check(count, 4, pages);
        let got = match problem {
            Some(ListProblem::Moved(why)) => format!("moved: {why}"),
            Some(ListProblem::Broken(why)) => format!("broken: {why}"),
            other => format!("{other:?}"),
        };
        assert!(got.starts_with(want), "{got}\nwant: {want}");
    }
}

#[test]
fn entries_that_leave_out_fields_or_their_id_are_counted() {
    let mut first = page(5, 1..=3);
    first.left_out = vec![(1, vec!["phone"])];
    let mut second = page(5, 3..=5);
    second.results[2].id = None;
    second.left_out = vec![(0, vec!["email"]), (1, vec!["groups", "lang"])];
    let (users, partial, without_id, problem) = check(5, 3, vec![(0, first), (2, second)]);
    assert_eq!(users.len(), 5);
    assert_eq!(without_id, 1);
    // The second page's copy of user 3 is not the one kept.
    assert_eq!(
        partial,
        BTreeMap::from([(2, vec!["phone"]), (4, vec!["groups", "lang"])])
    );
    assert_eq!(problem, None);
}
