//! The seeded users of a sandbox: an account (its company and reseller)
//! and users drawn from it, the same for the same seed.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::model::api::{AuthType, ClientAndRoles, Group, IAM_GROUPS, Lang, User, UserType};

/// What every user of one account shares.
pub(super) struct Account {
    pub(super) client: u64,
    reseller: i64,
    company: &'static str,
    domain: &'static str,
}

impl Account {
    pub(super) fn seeded(rng: &mut ChaCha8Rng) -> Account {
        let (company, domain) = COMPANIES[rng.random_range(0..COMPANIES.len())];
        Account {
            client: rng.random_range(100_000..1_000_000),
            reseller: rng.random_range(1..100),
            company,
            domain,
        }
    }
}

const COMPANIES: [(&str, &str); 6] = [
    ("Northwind Traders", "northwind.example.com"),
    ("Contoso Media", "contoso.example.org"),
    ("Fabrikam Streaming", "fabrikam.example.net"),
    ("Adatum Games", "adatum.example.com"),
    ("Tailspin Logistics", "tailspin.example.org"),
    ("Wingtip Retail", "wingtip.example.net"),
];

/// First and last names by language, so that a user's `lang` fits the name.
const NAMES: [(Lang, &[&str], &[&str]); 5] = [
    (
        Lang::En,
        &[
            "Olivia", "James", "Emma", "Liam", "Ava", "Noah", "Grace", "Henry", "Chloe", "Jack",
        ],
        &[
            "Smith", "Johnson", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Clarke",
        ],
    ),
    (
        Lang::De,
        &[
            "Anna", "Lukas", "Mia", "Jonas", "Lea", "Felix", "Hanna", "Paul", "Sophie", "Max",
        ],
        &[
            "Müller",
            "Schmidt",
            "Schneider",
            "Fischer",
            "Weber",
            "Becker",
            "Wagner",
            "Hoffmann",
        ],
    ),
    (
        Lang::Ru,
        &[
            "Анна",
            "Иван",
            "Мария",
            "Дмитрий",
            "Елена",
            "Сергей",
            "Ольга",
            "Алексей",
        ],
        &[
            "Иванов",
            "Смирнов",
            "Кузнецов",
            "Попов",
            "Соколов",
            "Лебедев",
            "Козлов",
        ],
    ),
    (
        Lang::Zh,
        &["伟", "芳", "娜", "敏", "静", "磊", "洋", "婷"],
        &["王", "李", "张", "刘", "陈", "杨", "赵", "黄"],
    ),
    (
        Lang::Az,
        &[
            "Aysel", "Elvin", "Leyla", "Rashad", "Nigar", "Tural", "Sevinj", "Orkhan",
        ],
        &[
            "Aliyev",
            "Mammadov",
            "Hasanov",
            "Huseynov",
            "Guliyev",
            "Ismayilov",
        ],
    ),
];

/// Latin spellings for the e-mail local part of names in other scripts.
const LATIN_LOCAL_PARTS: [&str; 8] = [
    "user", "staff", "ops", "dev", "support", "admin", "team", "member",
];

pub(super) fn seeded_user(rng: &mut ChaCha8Rng, account: &Account, id: u64) -> User {
    // Mostly English speakers, as in most accounts.
    let lang_index = match rng.random_range(0..100) {
        0..55 => 0,
        55..70 => 1,
        70..82 => 2,
        82..92 => 3,
        _ => 4,
    };
    let (lang, first_names, last_names) = NAMES[lang_index];
    let first = first_names[rng.random_range(0..first_names.len())];
    let last = last_names[rng.random_range(0..last_names.len())];
    let local = if first.is_ascii() && last.is_ascii() {
        format!("{}.{}", first.to_lowercase(), last.to_lowercase())
    } else {
        LATIN_LOCAL_PARTS[rng.random_range(0..LATIN_LOCAL_PARTS.len())].to_string()
    };
    let email = format!("{local}.{id}@{}", account.domain);
    let name = match lang {
        Lang::Zh => format!("{last}{first}"),
        _ => format!("{first} {last}"),
    };
    let name = (!rng.random_bool(0.05)).then_some(name);
    let phone = rng.random_bool(0.6).then(|| {
        format!(
            "+{} {}",
            rng.random_range(1..999),
            rng.random_range(1_000_000..99_999_999)
        )
    });

    let groups = seeded_groups(rng);
    let auth_types = seeded_auth_types(rng);
    let user_roles = groups.iter().map(|group| group.id.to_string()).collect();
    User {
        id: Some(id),
        email: Some(email),
        name,
        lang: Some(lang.as_str().to_string()),
        phone,
        company: Some(account.company.to_string()),
        reseller: Some(account.reseller),
        client: Some(account.client.into()),
        deleted: Some(false),
        groups: Some(groups),
        activated: Some(rng.random_bool(0.9)),
        sso_auth: Some(auth_types.contains(&AuthType::Sso)),
        two_fa: Some(rng.random_bool(0.3)),
        auth_types: Some(
            auth_types
                .iter()
                .map(|auth| auth.as_str().to_string())
                .collect(),
        ),
        user_type: Some(user_type_str(UserType::Common).to_string()),
        is_active: Some(rng.random_bool(0.95)),
        client_and_roles: Some(vec![ClientAndRoles {
            client_id: account.client,
            client_company_name: account.company.to_string(),
            user_roles,
            user_id: id,
        }]),
        absent: Default::default(),
        blanked: Default::default(),
    }
}

fn user_type_str(user_type: UserType) -> &'static str {
    match user_type {
        UserType::Common => "common",
        UserType::Reseller => "reseller",
        UserType::Seller => "seller",
    }
}

/// Most users are in Users; some are administrators or engineers, a few have
/// a purge-only group, now and then with a second group.
fn seeded_groups(rng: &mut ChaCha8Rng) -> Vec<Group> {
    let first = match rng.random_range(0..100) {
        0..60 => &IAM_GROUPS[1],
        60..75 => &IAM_GROUPS[0],
        75..92 => &IAM_GROUPS[2],
        92..96 => &IAM_GROUPS[3],
        _ => &IAM_GROUPS[4],
    };
    let mut groups = vec![first];
    if rng.random_bool(0.1) {
        let second = &IAM_GROUPS[rng.random_range(0..IAM_GROUPS.len())];
        if second != first {
            groups.push(second);
        }
    }
    groups
        .into_iter()
        .map(|group| Group {
            id: group.id,
            name: group.name.to_string(),
        })
        .collect()
}

fn seeded_auth_types(rng: &mut ChaCha8Rng) -> Vec<AuthType> {
    let mut auth_types = vec![AuthType::Password];
    for (extra, share) in [
        (AuthType::Sso, 0.15),
        (AuthType::Github, 0.1),
        (AuthType::GoogleOauth2, 0.2),
    ] {
        if rng.random_bool(share) {
            auth_types.push(extra);
        }
    }
    auth_types
}
