//! The sandbox's memory: the seeded users, each behind its own lock so that
//! PATCHes to different users never wait for each other, and the counters
//! behind `GET /sandbox/stats`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::model::api::User;
use crate::model::change::apply;
use crate::model::field::Field;
use crate::model::patch::PatchBody;
use serde_json::{Value, json};

use super::Stats;
use super::seed::{Account, seeded_user};

/// One user, the number of PATCHes it has taken, and whether it was
/// removed from the account (it answers 404 and leaves the list).
struct Slot {
    user: User,
    patches: u64,
    removed: bool,
}

/// The users, in the order they joined the account.
struct Table {
    slots: Vec<Mutex<Slot>>,
    /// Given users: ID -> index in `slots`. `None`: IDs 1..=N at `id - 1`.
    index: Option<HashMap<u64, usize>>,
}

/// The account's users in the order of their IDs: 1..=N stored at index
/// `id - 1` when seeded at random, or given users (any IDs) found by an
/// index; an invited user joins at the end, with the next ID.
pub(crate) struct Users {
    /// Read-locked for every request, write-locked to invite a user.
    table: RwLock<Table>,
    /// The account's ID (`client`): what `GET /iam/clients/me` answers,
    /// and the `client_id` of invitations and removals.
    client_id: u64,
    /// Values the account's users held when given, which a PATCH may set
    /// again though the input rules would refuse them (the API takes back
    /// its own values); and each group's name in the account.
    known: Known,
    /// Changes made so far (PATCHes that found their user).
    changes: AtomicU64,
}

/// See [`Users::known`].
#[derive(Default)]
pub(crate) struct Known {
    /// `(field, JSON value)` of the text fields, each list item of
    /// `auth_types`, and each group object.
    values: HashSet<(Field, String)>,
    group_names: HashMap<u64, String>,
}

impl Known {
    /// The name the account gives group `id`, if one of its users holds it.
    pub(crate) fn group_name(&self, id: u64) -> Option<String> {
        self.group_names.get(&id).cloned()
    }

    fn of(users: &[User]) -> Known {
        let mut known = Known::default();
        for user in users {
            for field in Field::ALL {
                match (field, user.value(field)) {
                    (Field::Groups | Field::AuthTypes, Some(Value::Array(items))) => {
                        for item in items {
                            known.values.insert((field, item.to_string()));
                        }
                    }
                    (_, Some(value)) => {
                        known.values.insert((field, value.to_string()));
                    }
                    (_, None) => {}
                }
            }
            for group in user.groups.iter().flatten() {
                known
                    .group_names
                    .entry(group.id)
                    .or_insert_with(|| group.name.clone());
            }
        }
        known
    }

    /// Whether a PATCH may set `field` to `value` because the account
    /// holds it (for a list: every item).
    pub(crate) fn accepts(&self, field: Field, value: &Value) -> bool {
        let holds = |value: &Value| self.values.contains(&(field, value.to_string()));
        match (field, value) {
            (Field::Groups, Value::Array(items)) => items.iter().all(|item| {
                holds(item) || PatchBody::from_json(&json!({"groups": [item]})).is_ok()
            }),
            (Field::AuthTypes, Value::Array(items)) => items.iter().all(|item| {
                holds(item) || PatchBody::from_json(&json!({"auth_types": [item]})).is_ok()
            }),
            _ => holds(value),
        }
    }
}

impl Users {
    pub(crate) fn seeded(count: u64, seed: u64) -> Users {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let account = Account::seeded(&mut rng);
        let slots = (1..=count)
            .map(|id| {
                Mutex::new(Slot {
                    user: seeded_user(&mut rng, &account, id),
                    patches: 0,
                    removed: false,
                })
            })
            .collect();
        Users {
            table: RwLock::new(Table { slots, index: None }),
            client_id: account.client,
            known: Known::default(),
            changes: AtomicU64::new(0),
        }
    }

    /// The given users, in the order of their IDs (each has one, once:
    /// [`check_given`]).
    pub(crate) fn given(users: &[User]) -> Users {
        let mut users = users.to_vec();
        users.sort_by_key(|user| user.id);
        let known = Known::of(&users);
        let index = users
            .iter()
            .enumerate()
            .filter_map(|(at, user)| Some((user.id?, at)))
            .collect();
        // The account is the one its users name (the first that does).
        let client_id = users
            .iter()
            .find_map(|user| user.client.as_ref()?.as_u64())
            .unwrap_or(DEFAULT_CLIENT);
        let slots = users
            .into_iter()
            .map(|user| {
                Mutex::new(Slot {
                    user,
                    patches: 0,
                    removed: false,
                })
            })
            .collect();
        Users {
            table: RwLock::new(Table {
                slots,
                index: Some(index),
            }),
            client_id,
            known,
            changes: AtomicU64::new(0),
        }
    }

    pub(crate) fn known(&self) -> &Known {
        &self.known
    }

    /// The account's ID.
    pub(crate) fn client_id(&self) -> u64 {
        self.client_id
    }

    /// Its first user (the key's, here), as `GET /iam/clients/me`
    /// names the account's `currentUser`, `email` and `companyName`.
    pub(crate) fn first_user(&self) -> Option<User> {
        let table = self.read();
        table.slots.iter().find_map(|slot| {
            let slot = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            (!slot.removed).then(|| slot.user.clone())
        })
    }

    /// The users of the account now (the removed ones left out).
    pub(crate) fn count(&self) -> u64 {
        let table = self.read();
        table
            .slots
            .iter()
            .filter(|slot| !lock(slot).removed)
            .count() as u64
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        self.with_slot(id, |_| ()).is_some()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.table
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `f` of the slot of user `id`, if the account has that user.
    fn with_slot<R>(&self, id: u64, f: impl FnOnce(&mut Slot) -> R) -> Option<R> {
        let table = self.read();
        let index = match &table.index {
            None => usize::try_from(id.checked_sub(1)?).ok()?,
            Some(index) => *index.get(&id)?,
        };
        let mut slot = lock(table.slots.get(index)?);
        (!slot.removed).then(|| f(&mut slot))
    }

    /// The user as `GET /iam/users/{id}` shows it: without `client_and_roles`.
    pub(crate) fn get(&self, id: u64) -> Option<User> {
        self.with_slot(id, |slot| without_roles(&slot.user))
    }

    /// Users `offset..offset + limit` (all when `limit` is `None`), as the list shows them.
    pub(crate) fn page(&self, offset: u64, limit: Option<u64>) -> Vec<User> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let take = limit.map_or(usize::MAX, |limit| {
            usize::try_from(limit).unwrap_or(usize::MAX)
        });
        let table = self.read();
        table
            .slots
            .iter()
            .map(|slot| lock(slot))
            .filter(|slot| !slot.removed)
            .skip(start)
            .take(take)
            .map(|slot| without_roles(&slot.user))
            .collect()
    }

    /// Applies a checked body and answers the whole user, as PATCH does. A
    /// group is named as the account names it.
    pub(crate) fn patch(&self, id: u64, body: &PatchBody) -> Option<User> {
        let user = self.with_slot(id, |slot| {
            apply(&mut slot.user, body);
            let groups = slot.user.groups.iter_mut().flatten();
            for group in groups.filter(|_| body.groups.is_some()) {
                if let Some(name) = self.known.group_names.get(&group.id) {
                    group.name.clone_from(name);
                }
            }
            slot.patches += 1;
            slot.user.clone()
        })?;
        self.changes.fetch_add(1, Ordering::Relaxed);
        Some(user)
    }

    /// Whether the account has a user with the address `email` (the API
    /// compares addresses without regard to case).
    pub(crate) fn has_email(&self, email: &str) -> bool {
        let table = self.read();
        table.slots.iter().any(|slot| {
            let slot = lock(slot);
            !slot.removed
                && (slot.user.email.as_deref())
                    .is_some_and(|own| own.trim().to_lowercase() == email.trim().to_lowercase())
        })
    }

    /// Adds `user` to the account with the next ID (after every ID it ever
    /// had), and gives the ID.
    pub(crate) fn invite(&self, mut user: User) -> u64 {
        let mut table = self
            .table
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let id = match &table.index {
            None => table.slots.len() as u64 + 1,
            Some(index) => index.keys().max().map_or(1, |max| max + 1),
        };
        user.id = Some(id);
        user.client = Some(self.client_id.into());
        // The account's reseller and company name, as its users show them.
        let account = table.slots.first().map(|slot| {
            let slot = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let company = (slot.user.client_and_roles.as_ref())
                .and_then(|roles| roles.first())
                .map(|entry| entry.client_company_name.clone());
            (slot.user.reseller, company)
        });
        let (reseller, company) = account.unwrap_or_default();
        user.reseller = reseller.or(Some(0));
        user.company.get_or_insert_with(String::new);
        let roles = (user.groups.iter().flatten())
            .map(|group| group.id.to_string())
            .collect();
        user.client_and_roles = Some(vec![crate::model::api::ClientAndRoles {
            client_id: self.client_id,
            client_company_name: company.unwrap_or_default(),
            user_roles: roles,
            user_id: id,
        }]);
        let at = table.slots.len();
        if let Some(index) = &mut table.index {
            index.insert(id, at);
        }
        table.slots.push(Mutex::new(Slot {
            user,
            patches: 0,
            removed: false,
        }));
        self.changes.fetch_add(1, Ordering::Relaxed);
        id
    }

    /// Removes user `id` from the account; whether it had that user.
    pub(crate) fn remove(&self, id: u64) -> bool {
        let removed = self.with_slot(id, |slot| slot.removed = true).is_some();
        if removed {
            self.changes.fetch_add(1, Ordering::Relaxed);
        }
        removed
    }

    /// How many changes were made so far.
    pub(crate) fn changes(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    /// Every user, whole (`client_and_roles` too), in the order of their IDs.
    pub(crate) fn all(&self) -> Vec<User> {
        let table = self.read();
        table
            .slots
            .iter()
            .map(|slot| lock(slot))
            .filter(|slot| !slot.removed)
            .map(|slot| slot.user.clone())
            .collect()
    }

    fn patches_per_user(&self) -> BTreeMap<u64, u64> {
        let table = self.read();
        table
            .slots
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| {
                let slot = lock(slot);
                let id = slot.user.id.unwrap_or(index as u64 + 1);
                (slot.patches > 0).then_some((id, slot.patches))
            })
            .collect()
    }
}

/// A poisoned lock only means another request panicked mid-update; the user
/// is still a valid value, so keep serving it.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The account's ID when its given users name none.
const DEFAULT_CLIENT: u64 = 1;

fn without_roles(user: &User) -> User {
    User {
        client_and_roles: None,
        ..user.clone()
    }
}

/// Requests by method and status, and the largest number in flight. The map
/// lock is held for one increment, never across an await.
#[derive(Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    by_method_status: Mutex<HashMap<(String, u16), u64>>,
    tls_failures: AtomicU64,
}

impl Counters {
    /// Counts a request that has arrived; the guard records its answer.
    pub(crate) fn begin<'a>(&'a self, method: &str) -> InFlight<'a> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.max_in_flight.fetch_max(now, Ordering::Relaxed);
        InFlight {
            counters: self,
            method: method.to_string(),
            status: None,
        }
    }

    /// Counts a connection whose TLS handshake failed (no request came).
    pub(crate) fn tls_failed(&self) {
        self.tls_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, users: &Users) -> Stats {
        let mut by_method_status: BTreeMap<String, BTreeMap<u16, u64>> = BTreeMap::new();
        for ((method, status), count) in lock(&self.by_method_status).iter() {
            by_method_status
                .entry(method.clone())
                .or_default()
                .insert(*status, *count);
        }
        Stats {
            requests: self.requests.load(Ordering::Relaxed),
            by_method_status,
            patches_per_user: users.patches_per_user(),
            max_in_flight: self.max_in_flight.load(Ordering::Relaxed),
            tls_failures: self.tls_failures.load(Ordering::Relaxed),
        }
    }
}

/// A request being served. Dropped without [`InFlight::answered`] (the
/// connection was dropped, or the client gave up first), it counts as status 0.
pub(crate) struct InFlight<'a> {
    counters: &'a Counters,
    method: String,
    status: Option<u16>,
}

impl InFlight<'_> {
    pub(crate) fn answered(&mut self, status: u16) {
        self.status = Some(status);
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        let key = (std::mem::take(&mut self.method), self.status.unwrap_or(0));
        *lock(&self.counters.by_method_status)
            .entry(key)
            .or_default() += 1;
    }
}

/// Refuses given users the sandbox cannot serve: none, too many, one
/// without an ID (or with 0), an ID given twice.
pub(crate) fn check_given(users: &[User], max: u64) -> Result<(), String> {
    if users.is_empty() || users.len() as u64 > max {
        return Err(format!(
            "the users file holds {} users; a sandbox holds 1 to {max}",
            users.len()
        ));
    }
    let mut seen = HashSet::new();
    for (at, user) in users.iter().enumerate() {
        match user.id {
            None | Some(0) => {
                return Err(format!(
                    "user {} of the users file has no id (a whole number from 1)",
                    at + 1
                ));
            }
            Some(id) if !seen.insert(id) => {
                return Err(format!("the users file holds user {id} twice"));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::api::Lang;

    #[test]
    fn seeding_is_reproducible_and_fills_every_field() {
        let a = Users::seeded(50, 7);
        let b = Users::seeded(50, 7);
        let c = Users::seeded(50, 8);
        assert_eq!(a.page(0, None), b.page(0, None));
        assert_ne!(a.page(0, None), c.page(0, None));
        for id in 1..=50 {
            let user = a.with_slot(id, |slot| slot.user.clone()).unwrap();
            let value = serde_json::to_value(&user).unwrap();
            let object = value.as_object().unwrap();
            assert_eq!(object.len(), 17, "{value}");
            for (key, field) in object {
                let nullable = key == "name" || key == "phone";
                assert!(nullable || !field.is_null(), "user {id}: {key} is null");
            }
            assert_eq!(user.id, Some(id));
            assert!(crate::model::patch::check_email(user.email.as_deref().unwrap()).is_ok());
            assert!(Lang::parse(user.lang.as_deref().unwrap()).is_some());
        }
    }

    #[test]
    fn some_names_and_phones_are_null() {
        let users = Users::seeded(1000, 1).page(0, None);
        assert!(users.iter().any(|user| user.name.is_none()));
        assert!(users.iter().any(|user| user.phone.is_none()));
        assert!(users.iter().any(|user| user.name.is_some()));
    }

    #[test]
    fn patches_change_only_the_given_fields() {
        let users = Users::seeded(3, 1);
        let before = users.with_slot(2, |slot| slot.user.clone()).unwrap();
        let body = PatchBody::from_json(&json!({"name": null, "lang": "zh",
            "groups": [{"id": 5}, {"id": 1}]}))
        .unwrap();
        let after = users.patch(2, &body).unwrap();
        assert_eq!(after.name, None);
        assert_eq!(after.lang.as_deref(), Some("zh"));
        assert_eq!(after.groups.as_ref().unwrap()[0].name, "Engineers");
        assert_eq!(
            after.client_and_roles.as_ref().unwrap()[0].user_roles,
            ["5", "1"]
        );
        assert_eq!(after.email, before.email);
        assert_eq!(after.phone, before.phone);
        assert_eq!(users.get(2).unwrap().client_and_roles, None);
        assert_eq!(users.patches_per_user(), BTreeMap::from([(2, 1)]));
        assert!(users.patch(4, &body).is_none());
        assert!(users.get(0).is_none());
    }

    #[test]
    fn pages() {
        let users = Users::seeded(5, 1);
        let ids = |page: Vec<User>| page.iter().map(|u| u.id.unwrap()).collect::<Vec<_>>();
        assert_eq!(ids(users.page(0, Some(2))), [1, 2]);
        assert_eq!(ids(users.page(4, Some(2))), [5]);
        assert_eq!(ids(users.page(9, Some(2))), Vec::<u64>::new());
        assert_eq!(ids(users.page(u64::MAX, Some(u64::MAX))), Vec::<u64>::new());
        assert_eq!(ids(users.page(0, None)).len(), 5);
    }
}
