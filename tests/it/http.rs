//! The HTTP client's three calls against the sandbox over real HTTP on
//! loopback: PATCH a user, GET a user, and the pages of the user list.

use std::time::Duration;

use gcore_iam_bulk::http::{Answer, Client};
use gcore_iam_bulk::model::api::{User, UserPage};
use gcore_iam_bulk::operations::{get_user, list_page, patch_user, user_in};
use gcore_iam_bulk::sandbox::{self, RunningSandbox, SandboxConfig};
use gcore_iam_bulk::settings::{ApiKey, ApiSettings};

async fn start(users: u64) -> RunningSandbox {
    let config = SandboxConfig {
        users,
        api_key: "http-test-key".to_string(),
        ..SandboxConfig::default()
    };
    sandbox::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn client(sandbox: &RunningSandbox, key: &str) -> Client {
    let api = ApiSettings {
        base_url: sandbox.base_url().parse().unwrap(),
        api_key: ApiKey::new(key).unwrap(),
        key_from: "the sandbox".to_string(),
        set_aside: Vec::new(),
        timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(5),
        extra_roots: Vec::new(),
        proxy: None,
        files_read: Vec::new(),
    };
    Client::new(&api.client(), 4).unwrap()
}

fn user(answer: Answer) -> Box<User> {
    match answer {
        Answer::Success {
            status: 200,
            reply: Ok(reply),
        } => user_in(Ok(reply)).unwrap(),
        other => panic!("not a user: {other:?}"),
    }
}

#[tokio::test]
async fn a_patch_then_a_get_show_the_change() {
    let sandbox = start(20).await;
    let client = client(&sandbox, sandbox.api_key());
    let before = user(client.call(get_user(7)).await);
    assert_eq!(before.id, Some(7));
    assert!(
        before.client_and_roles.is_none(),
        "GET leaves the roles out"
    );
    let lang = if before.lang.as_deref() == Some("az") {
        "de"
    } else {
        "az"
    };
    let patched = user(
        client
            .call(patch_user(7, format!(r#"{{"lang":"{lang}"}}"#)))
            .await,
    );
    assert_eq!(patched.lang.as_deref(), Some(lang));
    assert!(
        patched.client_and_roles.is_some(),
        "PATCH answers the whole user"
    );
    let after = user(client.call(get_user(7)).await);
    assert_eq!(after.lang.as_deref(), Some(lang));
    assert_eq!(after.email, before.email);
}

#[tokio::test]
async fn the_pages_of_the_list_hold_every_user_once() {
    let sandbox = start(23).await;
    let client = client(&sandbox, sandbox.api_key());
    let mut ids = Vec::new();
    let mut offset = 0;
    loop {
        let page = match client.call(list_page(5, offset)).await {
            Answer::Success {
                reply: Ok(reply), ..
            } => reply.read(UserPage::parse).unwrap(),
            other => panic!("not a page: {other:?}"),
        };
        assert_eq!(page.count, 23);
        assert!(page.results.len() <= 5);
        offset += page.results.len() as u64;
        ids.extend(page.results.iter().map(|user| user.id.unwrap()));
        if page.results.is_empty() || offset >= page.count {
            break;
        }
    }
    assert_eq!(ids, (1..=23).collect::<Vec<u64>>());
}

#[tokio::test]
async fn refusals_are_classified_the_same_for_every_call() {
    let sandbox = start(5).await;
    let good = client(&sandbox, sandbox.api_key());
    for answer in [
        good.call(get_user(6)).await,
        good.call(patch_user(6, r#"{"lang":"de"}"#.to_string()))
            .await,
    ] {
        assert!(
            matches!(&answer, Answer::Failed { status: 404, error } if error.starts_with("HTTP 404 Not Found")),
            "{answer:?}"
        );
    }
    let bad = client(&sandbox, "wrong-key");
    for answer in [
        bad.call(get_user(1)).await,
        bad.call(list_page(2, 0)).await,
        bad.call(patch_user(1, r#"{"lang":"de"}"#.to_string()))
            .await,
    ] {
        assert!(
            matches!(answer, Answer::Failed { status: 401, .. }),
            "{answer:?}"
        );
    }
    assert_eq!(sandbox.stats().patches_per_user.len(), 0);
}
