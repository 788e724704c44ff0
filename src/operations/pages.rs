//! The account's users as its list last showed them, page by page, for an
//! operation that must compare each row with its user just before it
//! sends (`apply --plan`): a row is compared with its user's entry while
//! that page was read less than [`LivePages::fresh`] ago; an older page is
//! read again by the first row that needs it (one request for the users of
//! a whole page, where a GET reads one), and meanwhile the other rows of
//! that page read their user with a GET. A user the list leaves a field out
//! of, or no longer shows where it was, is read with a GET as well.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::http::Call;
use crate::model::api::{User, UserPage};

use super::list_page;

/// See the module's documentation.
pub(crate) struct LivePages {
    /// How many users a page holds (the list's `limit`).
    page_size: u64,
    /// How old a page may be for a row to be compared with it.
    fresh: Duration,
    inner: Mutex<Inner>,
}

struct Inner {
    /// Each user the list showed whole: its page, and its entry.
    users: HashMap<u64, (usize, Box<User>)>,
    /// When each page was read, and whether a row is reading it again
    /// (since when).
    pages: Vec<(Instant, Option<Instant>)>,
    /// The users each page holds (their entries in `users`).
    held: Vec<Vec<u64>>,
}

/// What a row's user is, as far as the pages know.
pub(crate) enum Lookup {
    /// Read less than [`LivePages::fresh`] ago (at the instant given):
    /// compare with it.
    Fresh(Box<User>, Instant),
    /// Its page is old: this row reads it again ([`LivePages::call`]).
    Refresh,
    /// Read it with a GET (not in the list whole, or its page is being
    /// read by another row).
    Get,
}

impl LivePages {
    /// `users`: the whole list in its order, read from `read_at` on, by
    /// pages of `page_size`; `partial`: users whose entry leaves a field out.
    pub(crate) fn new(
        users: Vec<User>,
        partial: &BTreeMap<u64, Vec<&'static str>>,
        page_size: u64,
        read_at: Instant,
        fresh: Duration,
    ) -> LivePages {
        let size = usize::try_from(page_size.max(1)).unwrap_or(usize::MAX);
        let pages = users.len().div_ceil(size);
        let users: HashMap<u64, (usize, Box<User>)> = users
            .into_iter()
            .enumerate()
            .filter_map(|(at, user)| Some((user.id?, (at / size, Box::new(user)))))
            .filter(|(id, _)| !partial.contains_key(id))
            .collect();
        let mut held = vec![Vec::new(); pages];
        for (id, (page, _)) in &users {
            held[*page].push(*id);
        }
        LivePages {
            page_size: page_size.max(1),
            fresh,
            inner: Mutex::new(Inner {
                users,
                pages: vec![(read_at, None); pages],
                held,
            }),
        }
    }

    /// How old a page may be for a row to be compared with it.
    pub(crate) fn fresh(&self) -> Duration {
        self.fresh
    }

    /// What to do for the row of `user_id` now; [`Lookup::Refresh`] marks
    /// its page as being read (by this row).
    pub(crate) fn lookup(&self, user_id: u64) -> Lookup {
        let mut inner = self.lock();
        let Some((page, user)) = inner.users.get(&user_id) else {
            return Lookup::Get;
        };
        let (page, user) = (*page, user.clone());
        let now = Instant::now();
        let (read_at, reading) = &mut inner.pages[page];
        if now.duration_since(*read_at) < self.fresh {
            return Lookup::Fresh(user, *read_at);
        }
        // A read that has not come back within two windows is given up on
        // (its row failed, say): the next row reads the page again.
        if reading.is_some_and(|since| now.duration_since(since) < self.fresh * 2) {
            return Lookup::Get;
        }
        *reading = Some(now);
        Lookup::Refresh
    }

    /// The request that reads the page of `user_id` again.
    pub(crate) fn call(&self, user_id: u64) -> Call {
        let page = self.lock().users.get(&user_id).map_or(0, |(page, _)| *page);
        list_page(self.page_size, page as u64 * self.page_size)
    }

    /// Takes in the page of `user_id` as read again (`read_at`: when its
    /// request was sent, or later), and gives the user's entry if the page
    /// still shows it whole. Users the page held and no longer shows (the
    /// list moved, or the page came back shorter) lose their entry: their
    /// rows read them with a GET.
    pub(crate) fn refreshed(
        &self,
        user_id: u64,
        page: UserPage,
        read_at: Instant,
    ) -> Option<Box<User>> {
        let mut inner = self.lock();
        let index = inner.users.get(&user_id)?.0;
        inner.pages[index] = (read_at, None);
        let left_out: Vec<usize> = page.left_out.iter().map(|(at, _)| *at).collect();
        let mut found = None;
        let mut shown = Vec::new();
        for (at, user) in page.results.into_iter().enumerate() {
            let Some(id) = user.id else { continue };
            let whole = !left_out.contains(&at);
            match inner.users.get_mut(&id) {
                // Only users this page held before: one that moved here from
                // another page is as fresh as that page says.
                Some((held_by, entry)) if *held_by == index && whole => {
                    **entry = user;
                    shown.push(id);
                    if id == user_id {
                        found = Some(entry.clone());
                    }
                }
                Some((held_by, _)) if *held_by == index => {
                    inner.users.remove(&id);
                }
                _ => {}
            }
        }
        // Not on their page any more (the list moved), or not whole: a GET.
        let gone: Vec<u64> = (inner.held[index].iter())
            .filter(|id| !shown.contains(id))
            .copied()
            .collect();
        for id in gone {
            inner.users.remove(&id);
        }
        inner.held[index] = shown;
        found
    }

    /// The page of `user_id` could not be read: its next row tries again.
    pub(crate) fn unread(&self, user_id: u64) {
        let mut inner = self.lock();
        if let Some(index) = inner.users.get(&user_id).map(|(page, _)| *page) {
            inner.pages[index].1 = None;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: u64, lang: &str) -> User {
        User {
            id: Some(id),
            lang: Some(lang.to_string()),
            ..User::default()
        }
    }

    #[test]
    fn a_fresh_page_answers_an_old_one_is_read_again_by_one_row() {
        let users = (1..=5).map(|id| user(id, "en")).collect();
        let long_ago = Instant::now() - Duration::from_secs(60);
        let pages = LivePages::new(
            users,
            &BTreeMap::new(),
            2,
            long_ago,
            Duration::from_secs(10),
        );
        // Page 1 (users 3 and 4) is old: the first row reads it, the next
        // reads its user with a GET meanwhile.
        assert!(matches!(pages.lookup(3), Lookup::Refresh));
        assert!(matches!(pages.lookup(4), Lookup::Get));
        assert_eq!(pages.call(3).describe(), "GET /iam/users?limit=2&offset=2");
        let page = UserPage {
            count: 5,
            results: vec![user(3, "de"), user(4, "ru")],
            left_out: Vec::new(),
        };
        let found = pages.refreshed(3, page, Instant::now()).unwrap();
        assert_eq!(found.lang.as_deref(), Some("de"));
        // Now fresh: user 4 answers from it, with the value read again.
        match pages.lookup(4) {
            Lookup::Fresh(user, _) => assert_eq!(user.lang.as_deref(), Some("ru")),
            _ => panic!("page 1 was just read"),
        }
        // A user the page no longer shows is read with a GET.
        assert!(matches!(pages.lookup(5), Lookup::Refresh));
        let moved = UserPage {
            count: 4,
            results: Vec::new(),
            left_out: Vec::new(),
        };
        assert!(pages.refreshed(5, moved, Instant::now()).is_none());
        assert!(matches!(pages.lookup(5), Lookup::Get));
        // Not in the list whole: a GET.
        assert!(matches!(pages.lookup(99), Lookup::Get));
        // A page read again without one of its users (one before it left
        // the account, and the list moved up): that user is read with a
        // GET, not compared with the entry of the first read.
        let users = (1..=4).map(|id| user(id, "en")).collect();
        let pages = LivePages::new(
            users,
            &BTreeMap::new(),
            2,
            long_ago,
            Duration::from_secs(10),
        );
        assert!(matches!(pages.lookup(3), Lookup::Refresh));
        let shifted = UserPage {
            count: 3,
            results: vec![user(4, "de")],
            left_out: Vec::new(),
        };
        assert!(pages.refreshed(3, shifted, Instant::now()).is_none());
        assert!(matches!(pages.lookup(3), Lookup::Get));
        assert!(matches!(pages.lookup(4), Lookup::Fresh(..)));
    }
}
