//! The way back is exact (issue 20): against a sandbox started from given
//! users (odd live values and all), with the built binary. An undo file
//! puts every user back as they were, whatever the API held; what cannot
//! be put back stops the change before anything is sent; a resume keeps
//! the way back whole; plan and apply agree.

use crate::common;

use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use common::read_results_file;
use gcore_iam_bulk::model::api::User;
use gcore_iam_bulk::sandbox::{Faults, RunningSandbox, SandboxConfig};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Value, json};

const KEY: &str = "undo-test-key-0123456789";

async fn start(users: Vec<Value>) -> RunningSandbox {
    let users: Vec<User> = serde_json::from_value(Value::Array(users)).unwrap();
    let config = SandboxConfig {
        users: users.len() as u64,
        api_key: KEY.to_string(),
        seed: 1,
        faults: Faults::default(),
        given: Some(Arc::new(users)),
    };
    gcore_iam_bulk::sandbox::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// `gcore-iam-bulk COMMAND ARGS --base-url ...` in `dir`, off the runtime.
async fn run(sandbox: &RunningSandbox, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = common::bin();
    cmd.current_dir(dir)
        .args(args)
        .args(["--base-url", &sandbox.base_url(), "--rate", "0"])
        .env("GCORE_API_KEY", KEY)
        .env_remove("HTTPS_PROXY")
        .env_remove("HTTP_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("GCORE_PROFILE");
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every user as the sandbox lists them, as JSON (what a person would
/// compare: every field as the API gives it).
async fn listed(sandbox: &RunningSandbox) -> Vec<Value> {
    let page: Value = common::http()
        .get(format!("{}/iam/users?limit=1000", sandbox.base_url()))
        .header("Authorization", format!("apikey {KEY}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["results"].as_array().unwrap().clone()
}

async fn patch(sandbox: &RunningSandbox, id: u64, body: Value) {
    let status = common::http()
        .patch(format!("{}/iam/users/{id}", sandbox.base_url()))
        .header("Authorization", format!("apikey {KEY}"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "{status}");
}

fn user(id: u64, fields: Value) -> Value {
    let mut user = json!({
        "id": id, "email": format!("user{id}@example.com"), "name": format!("User {id}"),
        "lang": "en", "phone": null, "company": "Acme",
        "groups": [{"id": 2, "name": "Users"}], "auth_types": ["password"],
        "deleted": false, "activated": true, "is_active": true, "user_type": "common",
    });
    for (key, value) in fields.as_object().unwrap() {
        user[key] = value.clone();
    }
    user
}

/// A value the API may hold for each input field, odd ones above all: what
/// the input rules would refuse or change (an address without a dot, `EN`,
/// `fr`, a tab, `""`, spaces at either end, `#null` as text, a group of the
/// account outside the five or named in another language, an item twice,
/// an empty list, an auth type this tool does not know).
fn live_values(users_group_name: &'static str) -> impl Strategy<Value = Value> {
    let email = prop::sample::select(vec![
        json!("odd@localhost"),
        json!("Mixed.Case@Example.COM"),
        json!("plain@example.com"),
    ]);
    let name = prop::sample::select(vec![
        json!(null),
        json!(""),
        json!("  spaced  "),
        json!("Tab\there"),
        json!("#null"),
        json!("Ann Lee"),
        json!("=1+2"),
        json!("x".repeat(300)),
    ]);
    let lang = prop::sample::select(vec![json!("en"), json!("EN"), json!("fr"), json!("zh")]);
    let phone = prop::sample::select(vec![
        json!(null),
        json!(""),
        json!("+49 30 1234"),
        json!("1e5"),
        json!(" 007 "),
    ]);
    let company = prop::sample::select(vec![
        json!("Acme"),
        json!(""),
        json!("#NULL"),
        json!(" Acme "),
    ]);
    let group = prop::sample::select(vec![
        json!({"id": 2, "name": users_group_name}),
        json!({"id": 1, "name": "Administrators"}),
        json!({"id": 777, "name": "Custom group"}),
        json!({"id": 5, "name": "Engineers"}),
    ]);
    let groups = prop::collection::vec(group, 0..4).prop_map(Value::from);
    let auth = prop::sample::select(vec![
        json!("password"),
        json!("sso"),
        json!("saml"),
        json!("SSO"),
    ]);
    let auth_types = prop::collection::vec(auth, 0..4).prop_map(Value::from);
    (email, name, lang, phone, company, groups, auth_types).prop_map(
        |(email, name, lang, phone, company, groups, auth_types)| {
            json!({"email": email, "name": name, "lang": lang, "phone": phone,
                   "company": company, "groups": groups, "auth_types": auth_types})
        },
    )
}

/// A change of some of a user's fields, as a person types it.
fn changes() -> impl Strategy<Value = [Option<&'static str>; 7]> {
    let pick = |values: Vec<&'static str>| prop::option::of(prop::sample::select(values));
    (
        pick(vec!["new@example.org"]),
        pick(vec!["New Name", "#null"]),
        pick(vec!["de", "az"]),
        pick(vec!["+1 555 0100", "#null"]),
        pick(vec!["NewCo"]),
        pick(vec!["Engineers", "Users;Administrators"]),
        pick(vec!["github", "password;google-oauth2"]),
    )
        .prop_map(|(a, b, c, d, e, f, g)| [a, b, c, d, e, f, g])
}

/// Any before-state, any change: apply with an undo file, apply the undo
/// file (no flag), and every user is as before, field for field.
#[test]
fn an_undo_file_puts_back_any_before_state_exactly() {
    let config = Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let strategy = prop::sample::select(vec!["Users", "Пользователи"])
        .prop_flat_map(|name| prop::collection::vec((live_values(name), changes()), 1..12));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runner
        .run(&strategy, |cases| {
            runtime.block_on(round_trip(cases));
            Ok(())
        })
        .unwrap();
}

async fn round_trip(cases: Vec<(Value, [Option<&'static str>; 7])>) {
    let users: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(at, (fields, _))| user(at as u64 + 10, fields.clone()))
        .collect();
    let sandbox = start(users).await;
    let before = listed(&sandbox).await;
    let dir = tempfile::tempdir().unwrap();
    let mut input = String::from("user_id,email,name,lang,phone,company,groups,auth_types\n");
    for (at, (_, change)) in cases.iter().enumerate() {
        let id = at as u64 + 10;
        let cells: Vec<String> = change
            .iter()
            .map(|cell| match cell {
                Some("new@example.org") => format!("new{id}@example.org"),
                Some(cell) => cell.to_string(),
                None => String::new(),
            })
            .collect();
        input.push_str(&format!("{id},{}\n", cells.join(",")));
    }
    std::fs::write(dir.path().join("in.csv"), &input).unwrap();
    let forward = run(
        &sandbox,
        dir.path(),
        &["apply", "in.csv", "--undo-file", "undo.csv"],
    )
    .await;
    assert_eq!(forward.status.code(), Some(0), "{}", stderr(&forward));
    let undo = run(&sandbox, dir.path(), &["apply", "undo.csv", "-o", "u.csv"]).await;
    let undo_text = std::fs::read_to_string(dir.path().join("undo.csv")).unwrap();
    assert_eq!(
        undo.status.code(),
        Some(0),
        "{}\n{undo_text}",
        stderr(&undo)
    );
    assert_eq!(
        listed(&sandbox).await,
        before,
        "input:\n{input}\nundo file:\n{undo_text}"
    );
}

/// A value no PATCH can send back (a null where PATCH takes none; a field
/// the API's answer leaves out) stops the change before anything is sent,
/// naming the user and the field; --accept-partial-undo sends it and says
/// what the undo file cannot put back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_that_cannot_be_put_back_stops_the_run_unless_accepted() {
    let mut no_lang = user(3, json!({}));
    no_lang.as_object_mut().unwrap().remove("lang");
    let sandbox = start(vec![
        user(1, json!({"company": null})),
        user(2, json!({})),
        no_lang,
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.csv"),
        "user_id,company,lang\n1,NewCo,\n2,NewCo,\n3,,de\n",
    )
    .unwrap();
    let before = listed(&sandbox).await;
    let refused = run(
        &sandbox,
        dir.path(),
        &["apply", "in.csv", "--undo-file", "undo.csv"],
    )
    .await;
    let text = stderr(&refused);
    assert_eq!(refused.status.code(), Some(1), "{text}");
    assert!(text.contains("nothing sent: 2 rows are invalid"), "{text}");
    let (rows, _) = read_results_file(&dir.path().join("in.results.csv"));
    let statuses: Vec<&str> = rows.iter().map(|r| r["status"].as_str()).collect();
    assert_eq!(statuses, ["invalid", "not_attempted", "invalid"]);
    assert!(
        rows[0]["error"].contains("user 1's company (null, which PATCH does not take back)"),
        "{:?}",
        rows[0]
    );
    assert!(
        rows[2]["error"].contains("user 3's lang (null, which PATCH does not take back)"),
        "{:?}",
        rows[2]
    );
    assert!(rows[0]["error"].contains("--accept-partial-undo"));
    assert_eq!(listed(&sandbox).await, before, "nothing was sent");

    let accepted = run(
        &sandbox,
        dir.path(),
        &[
            "apply",
            "in.csv",
            "--undo-file",
            "undo2.csv",
            "--accept-partial-undo",
            "-o",
            "two.csv",
        ],
    )
    .await;
    let text = stderr(&accepted);
    assert_eq!(accepted.status.code(), Some(0), "{text}");
    assert!(
        text.contains("cannot put back 2 users' fields") && text.contains("user 1 (company)"),
        "{text}"
    );
    let undo = std::fs::read_to_string(dir.path().join("undo2.csv")).unwrap();
    assert_eq!(
        undo.lines().skip(1).collect::<Vec<_>>(),
        [r#"2,,,,,"""Acme""",,,json,"#],
        "{undo}"
    );
}

/// A resume keeps the way back whole: it goes on with the undo file its
/// record remembers (and says so), and a row corrected to change one more
/// field adds that field; the undo file then puts everything back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_goes_on_with_the_remembered_undo_file_and_adds_new_fields() {
    let sandbox = start((1..=3).map(|id| user(id, json!({"lang": "EN"}))).collect()).await;
    let before = listed(&sandbox).await;
    let dir = tempfile::tempdir().unwrap();
    // Row 3 names a group the tool takes as the API's own value and the
    // sandbox refuses: it fails, after its undo line was written.
    let input = "user_id,name,groups,verbatim\n\
                 1,One,,\n\
                 2,Two,,\n\
                 3,,\"[{\"\"id\"\": 4242, \"\"name\"\": \"\"Nope\"\"}]\",json\n";
    std::fs::write(dir.path().join("in.csv"), input).unwrap();
    // The undo file is reached through a link: its merge replaces the file
    // the link leads to, and the link stays.
    std::fs::create_dir(dir.path().join("kept")).unwrap();
    std::os::unix::fs::symlink("kept/undo.csv", dir.path().join("undo.csv")).unwrap();
    let first = run(
        &sandbox,
        dir.path(),
        &["apply", "in.csv", "--undo-file", "undo.csv"],
    )
    .await;
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    let (rows, _) = read_results_file(&dir.path().join("in.results.csv"));
    assert_eq!(rows[2]["status"], "failed", "{:?}", rows[2]);

    // Corrected: a group of the five, and a language too.
    let input = "user_id,name,groups,lang,verbatim\n1,One,,,\n2,Two,,,\n3,,Engineers,de,\n";
    std::fs::write(dir.path().join("in.csv"), input).unwrap();
    let resumed = run(&sandbox, dir.path(), &["apply", "in.csv", "--resume"]).await;
    let text = stderr(&resumed);
    assert_eq!(resumed.status.code(), Some(0), "{text}");
    assert!(
        text.contains("going on with the undo file of the run being resumed"),
        "{text}"
    );
    let undo = std::fs::read_to_string(dir.path().join("undo.csv")).unwrap();
    assert_eq!(
        undo.lines().filter(|line| line.starts_with("3,")).count(),
        1,
        "one row per user again: {undo}"
    );
    let link = std::fs::symlink_metadata(dir.path().join("undo.csv")).unwrap();
    assert!(link.file_type().is_symlink(), "the link stays a link");

    // Another undo file for the same record is refused, before anything is sent.
    let other = run(
        &sandbox,
        dir.path(),
        &["apply", "in.csv", "--resume", "--undo-file", "other.csv"],
    )
    .await;
    assert_eq!(other.status.code(), Some(2), "{}", stderr(&other));
    assert!(stderr(&other).contains("kept its undo file at"));

    let back = run(&sandbox, dir.path(), &["apply", "undo.csv", "-o", "b.csv"]).await;
    assert_eq!(back.status.code(), Some(0), "{}\n{undo}", stderr(&back));
    assert_eq!(listed(&sandbox).await, before, "{undo}");
}

/// Every output of a run is a file of its own: an undo file named like the
/// results' journal (which the run deletes at its end) is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undo_file_that_is_another_output_is_refused() {
    let sandbox = start(vec![user(1, json!({}))]).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "user_id,name\n1,New\n").unwrap();
    for (link, target) in [
        ("to-journal.csv", "in.results.csv.journal"),
        ("to-results.csv", "in.results.csv"),
        ("to-summary.csv", "s.json"),
        ("to-memory.csv", "in.results.csv.undo"),
    ] {
        std::os::unix::fs::symlink(target, dir.path().join(link)).unwrap();
    }
    for (undo, want) in [
        (
            "in.results.csv.journal",
            "the undo file in.results.csv.journal is also the results file's journal",
        ),
        ("in.results.csv", "is also the results file"),
        ("s.json", "is also the undo file"),
        // Links to files not created yet lead to the same files.
        (
            "to-journal.csv",
            "to-journal.csv is also the results file's journal",
        ),
        ("to-results.csv", "to-results.csv is also the results file;"),
        (
            "to-summary.csv",
            "the summary file s.json is also the undo file",
        ),
        (
            "to-memory.csv",
            "is also the file where the results remember their undo file",
        ),
        // `-` is standard input or output elsewhere: no file named so.
        ("-", "--undo-file - would write a file named -"),
    ] {
        let output = run(
            &sandbox,
            dir.path(),
            &[
                "apply",
                "in.csv",
                "--undo-file",
                undo,
                "--summary-json",
                "s.json",
            ],
        )
        .await;
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{undo}: {text}");
        assert!(text.contains(want), "{undo}: {text}");
    }
    let args = ["apply", "in.csv", "--metrics-file", "-"];
    let output = run(&sandbox, dir.path(), &args).await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("--metrics-file - would write a file named -"),
        "{text}"
    );
    assert!(!dir.path().join("-").exists());
    assert_eq!(sandbox.stats().patches_per_user.len(), 0);
}

/// Plan and apply use one comparison: `""` is not null, and a group the
/// API names in another language is the same group by its ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_and_apply_agree_on_empty_text_and_localised_groups() {
    let sandbox = start(vec![
        user(
            1,
            json!({"phone": "", "groups": [{"id": 5, "name": "Engineers"}]}),
        ),
        user(2, json!({"groups": [{"id": 2, "name": "Пользователи"}]})),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.csv"),
        "user_id,phone,groups,lang\n1,#null,,\n2,,Users,de\n",
    )
    .unwrap();
    let plan = run(&sandbox, dir.path(), &["plan", "in.csv"]).await;
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    let (rows, _) = read_results_file(&dir.path().join("in.plan.csv"));
    assert_eq!(rows[0]["status"], "would_update");
    assert_eq!(rows[0]["changes"], r#"phone: "" -> null"#);
    assert_eq!(rows[1]["changes"], "lang: en -> de", "groups are the same");
    let apply = run(&sandbox, dir.path(), &["apply", "--plan", "in.plan.csv"]).await;
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    let (rows, _) = read_results_file(&dir.path().join("in.results.csv"));
    assert_eq!(rows[0]["status"], "updated", "{:?}", rows[0]);
    assert_eq!(rows[1]["request"], r#"{"lang":"de"}"#);
    let users = listed(&sandbox).await;
    assert_eq!(users[0]["phone"], Value::Null);
    assert_eq!(
        users[1]["groups"],
        json!([{"id": 2, "name": "Пользователи"}])
    );
}

/// A row by current_email is applied only to the user the plan found by
/// that address: moved to another user since, nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_plan_checks_the_users_identity_again() {
    let sandbox = start(vec![user(1, json!({})), user(2, json!({}))]).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.csv"),
        "current_email,company\nuser1@example.com,NewCo\n",
    )
    .unwrap();
    let plan = run(&sandbox, dir.path(), &["plan", "in.csv"]).await;
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    // The address moves from user 1 to user 2.
    patch(&sandbox, 1, json!({"email": "left@example.com"})).await;
    patch(&sandbox, 2, json!({"email": "user1@example.com"})).await;
    let before = listed(&sandbox).await;
    let apply = run(&sandbox, dir.path(), &["apply", "--plan", "in.plan.csv"]).await;
    assert_eq!(apply.status.code(), Some(1), "{}", stderr(&apply));
    let (rows, _) = read_results_file(&dir.path().join("in.results.csv"));
    assert_eq!(rows[0]["status"], "failed");
    assert!(
        rows[0]["error"]
            .contains(r#"email: "user1@example.com" in the plan, "left@example.com" now"#),
        "{:?}",
        rows[0]
    );
    assert_eq!(listed(&sandbox).await, before, "nothing was sent");
}

/// The undo file says null as #null whatever --null-token the forward or
/// the undo run is given: a name comes back as null, never as text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_undo_files_null_is_its_own() {
    let sandbox = start(vec![user(1, json!({"name": null}))]).await;
    let before = listed(&sandbox).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "user_id,name\n1,Named\n").unwrap();
    let forward = run(
        &sandbox,
        dir.path(),
        &[
            "apply",
            "in.csv",
            "--undo-file",
            "undo.csv",
            "--null-token",
            "NULL",
        ],
    )
    .await;
    assert_eq!(forward.status.code(), Some(0), "{}", stderr(&forward));
    let back = run(
        &sandbox,
        dir.path(),
        &["apply", "undo.csv", "--null-token", "NULL", "-o", "b.csv"],
    )
    .await;
    assert_eq!(back.status.code(), Some(0), "{}", stderr(&back));
    assert_eq!(listed(&sandbox).await, before);
}

/// An export is a valid input as it stands, odd values and all: a user
/// with values the input rules would refuse or change gets a row of the
/// API's own values (JSON, marked verbatim), the note says which, and a
/// plan of the file (CSV or workbook) changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_with_odd_values_plans_as_unchanged() {
    let sandbox = start(vec![
        user(1, json!({})),
        user(
            2,
            json!({"lang": "EN", "name": "  spaced  ", "phone": "",
                   "groups": [{"id": 2, "name": "Пользователи"}, {"id": 777, "name": "Custom"}],
                   "auth_types": ["saml"], "email": "odd@localhost"}),
        ),
        user(3, json!({"name": null, "company": "#null"})),
        // Names the reader takes for JSON when plain (an undo file's row
        // that lost its verbatim column): written as JSON too. (They were
        // written plain, and the export's own rows were invalid.)
        user(4, json!({"name": "\"null\"", "company": "null"})),
        user(5, json!({"name": "\"q\""})),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    for file in ["users.csv", "users.xlsx"] {
        let export = run(&sandbox, dir.path(), &["export", "-o", file]).await;
        let text = stderr(&export);
        assert_eq!(export.status.code(), Some(0), "{text}");
        assert!(
            text.contains("note: 4 users hold values the input rules would refuse or change"),
            "{text}"
        );
        assert!(text.contains("groups of 1 user (user 2)"), "{text}");
        assert!(text.contains("company of 2 users (user 3, 4)"), "{text}");
        let plan = run(&sandbox, dir.path(), &["plan", file, "-o", "p.csv"]).await;
        assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
        let (rows, _) = read_results_file(&dir.path().join("p.csv"));
        let statuses: Vec<&str> = rows.iter().map(|r| r["status"].as_str()).collect();
        assert_eq!(statuses, ["unchanged"; 5], "{file}: {rows:?}");
    }
    let csv = std::fs::read_to_string(dir.path().join("users.csv")).unwrap();
    let line = csv.lines().find(|line| line.starts_with("2,")).unwrap();
    assert!(line.contains(",json,"), "{line}");
    let line = csv.lines().find(|line| line.starts_with("1,")).unwrap();
    assert!(
        line.contains("User 1,en,#null,Acme,Users,password,,"),
        "{line}"
    );
}

/// A resume keeps a row by current_email whose address the run itself
/// changed: the address now names nobody (or another user), and the row
/// is still the one the run recorded, not "a changed input".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_keeps_a_row_whose_address_the_run_changed() {
    let sandbox = start(vec![user(1, json!({})), user(2, json!({}))]).await;
    let dir = tempfile::tempdir().unwrap();
    // Row 3 fails (a group the sandbox does not know), so the run can be resumed.
    let input = "current_email,email,groups,verbatim\n\
                 user1@example.com,moved@example.com,,\n\
                 user2@example.com,,\"[{\"\"id\"\": 4242, \"\"name\"\": \"\"Nope\"\"}]\",json\n";
    std::fs::write(dir.path().join("in.csv"), input).unwrap();
    let first = run(&sandbox, dir.path(), &["apply", "in.csv"]).await;
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    let input = "current_email,email,groups,verbatim\n\
                 user1@example.com,moved@example.com,,\n\
                 user2@example.com,,Engineers,\n";
    std::fs::write(dir.path().join("in.csv"), input).unwrap();
    let resumed = run(&sandbox, dir.path(), &["apply", "in.csv", "--resume"]).await;
    let text = stderr(&resumed);
    assert_eq!(resumed.status.code(), Some(0), "{text}");
    assert!(
        text.contains("1 row already updated, kept as recorded"),
        "{text}"
    );
    let (rows, _) = read_results_file(&dir.path().join("in.results.csv"));
    let statuses: Vec<&str> = rows.iter().map(|r| r["status"].as_str()).collect();
    assert_eq!(statuses, ["updated", "updated"]);
    assert_eq!(
        sandbox.stats().patches_per_user.get(&1),
        Some(&1),
        "sent once"
    );
}

/// A field the account's list leaves out is unknown, never null: a run
/// that reads the list (many rows) reads those users by GET before it
/// writes their undo lines, so the undo file is the same whatever the
/// number of rows, and puts every phone back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_the_list_leaves_out_is_put_back_by_the_undo_file() {
    let users: Vec<Value> = (1..=60)
        .map(|id| user(id, json!({"phone": format!("+49 30 {id:04}")})))
        .collect();
    let users: Vec<User> = serde_json::from_value(Value::Array(users)).unwrap();
    let config = SandboxConfig {
        users: users.len() as u64,
        api_key: KEY.to_string(),
        seed: 1,
        faults: Faults {
            list_omit: vec!["phone".to_string()],
            ..Faults::default()
        },
        given: Some(Arc::new(users)),
    };
    let sandbox = gcore_iam_bulk::sandbox::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let before: Vec<Value> = {
        let mut all = Vec::new();
        for id in 1..=60 {
            let user: Value = common::http()
                .get(format!("{}/iam/users/{id}", sandbox.base_url()))
                .header("Authorization", format!("apikey {KEY}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            all.push(user);
        }
        all
    };
    let dir = tempfile::tempdir().unwrap();
    let mut input = String::from("user_id,phone\n");
    for id in 1..=60 {
        input.push_str(&format!("{id},+1 555 {id:04}\n"));
    }
    std::fs::write(dir.path().join("in.csv"), &input).unwrap();
    let forward = run(
        &sandbox,
        dir.path(),
        &["apply", "in.csv", "--undo-file", "undo.csv"],
    )
    .await;
    let text = stderr(&forward);
    assert_eq!(forward.status.code(), Some(0), "{text}");
    assert!(
        text.contains("reading 60 users before anything is sent"),
        "{text}"
    );
    let undo = std::fs::read_to_string(dir.path().join("undo.csv")).unwrap();
    assert!(undo.contains(r#"1,,,,"""+49 30 0001""",,,,json"#), "{undo}");
    let back = run(&sandbox, dir.path(), &["apply", "undo.csv", "-o", "b.csv"]).await;
    assert_eq!(back.status.code(), Some(0), "{}", stderr(&back));
    for (id, user) in (1..=60).zip(&before) {
        let now: Value = common::http()
            .get(format!("{}/iam/users/{id}", sandbox.base_url()))
            .header("Authorization", format!("apikey {KEY}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(&now, user);
    }
}

/// The undo file holds what each PATCH replaced: a user a colleague
/// changes after the run read it (and before its PATCH) is read again just
/// before the PATCH, so the undo puts back the colleague's value, and the
/// `changes` column says what was replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_undo_file_holds_what_each_patch_replaced() {
    let sandbox = start((1..=3).map(|id| user(id, json!({}))).collect()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.csv"),
        "user_id,company\n1,C\n2,C\n3,C\n",
    )
    .unwrap();
    let mut cmd = common::bin();
    cmd.current_dir(dir.path())
        .args([
            "apply",
            "in.csv",
            "--undo-file",
            "undo.csv",
            "--concurrency",
            "1",
        ])
        .args([
            "--base-url",
            &sandbox.base_url(),
            "--rate",
            "2",
            "--burst",
            "1",
        ])
        .env("GCORE_API_KEY", KEY)
        .env_remove("HTTPS_PROXY")
        .env_remove("HTTP_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("GCORE_PROFILE");
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once user 1 is changed, a colleague changes user 3 (read at the
    // start, sent last: a second later at least, at 2 requests a second).
    let mut polls = 0;
    while !sandbox.stats().patches_per_user.contains_key(&1) {
        polls += 1;
        assert!(polls < 3000, "the run never sent its first PATCH");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    patch(&sandbox, 3, json!({"company": "Colleague"})).await;
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let (rows, _) = read_results_file(&dir.path().join("in.results.csv"));
    assert_eq!(rows[2]["changes"], r#"company: "Colleague" -> "C""#);
    let undo = std::fs::read_to_string(dir.path().join("undo.csv")).unwrap();
    assert!(undo.contains(r#"3,,,,,"""Colleague""",,,json"#), "{undo}");
    let back = run(&sandbox, dir.path(), &["apply", "undo.csv", "-o", "b.csv"]).await;
    assert_eq!(back.status.code(), Some(0), "{}", stderr(&back));
    assert_eq!(listed(&sandbox).await[2]["company"], "Colleague");
}

/// An undo file cut down in a spreadsheet that lost its `verbatim` column
/// is refused, not sent with quotes and the text "null".
#[test]
fn an_undo_file_without_its_verbatim_column_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("undo.csv"),
        "user_id,name,phone,company\n10,null,null,\"\"\"Acme\"\"\"\n",
    )
    .unwrap();
    let output = common::bin()
        .current_dir(dir.path())
        .args(["validate", "undo.csv"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let (rows, _) = read_results_file(&dir.path().join("undo.results.csv"));
    assert_eq!(rows[0]["status"], "invalid");
    assert!(
        rows[0]["error"].contains(r#"company: "\"Acme\"" is a JSON value, as an undo file"#),
        "{:?}",
        rows[0]
    );
    assert!(rows[0]["error"].contains("name: \"null\" is a JSON value"));
}

/// A plan a day old or more is applied with a note of its age (the plan
/// is made, then its `planned_at` set two days back and its chain of
/// checks made again, as `plan` would have written it then).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_plan_is_applied_with_a_note_of_its_age() {
    use gcore_iam_bulk::table::results::plan_check;
    let sandbox = start(vec![user(1, json!({}))]).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "user_id,lang\n1,de\n").unwrap();
    let plan = run(&sandbox, dir.path(), &["plan", "in.csv"]).await;
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    let text = std::fs::read_to_string(dir.path().join("in.plan.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let then = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 24 * 3600);
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&header).unwrap();
    let mut previous = plan_check("", header.iter().map(String::as_str));
    for record in reader.records() {
        let mut cells: Vec<String> = record.unwrap().iter().map(String::from).collect();
        let at = cells.len() - 2;
        let rows = cells[at].rsplit_once("; ").unwrap().1.to_string();
        cells[at] = format!("{}; {rows}", httpdate::fmt_http_date(then));
        let check = plan_check(
            &previous,
            cells[..cells.len() - 1].iter().map(String::as_str),
        );
        *cells.last_mut().unwrap() = check.clone();
        previous = check;
        writer.write_record(&cells).unwrap();
    }
    std::fs::write(dir.path().join("in.plan.csv"), writer.into_inner().unwrap()).unwrap();
    let apply = run(
        &sandbox,
        dir.path(),
        &["apply", "--plan", "in.plan.csv", "--quiet"],
    )
    .await;
    let text = stderr(&apply);
    assert_eq!(apply.status.code(), Some(0), "{text}");
    assert!(
        text.contains("note: the plan in.plan.csv was made 2 days ago"),
        "{text}"
    );
}

/// A plan of rows the export wrote as the API's own values (`EN`, a group
/// of the account outside the five), with only the company edited, is
/// applied as planned: its requests hold those values back, as plan took
/// them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_of_rows_with_the_apis_own_values_applies() {
    let sandbox = start(
        (1..=4)
            .map(|id| {
                user(
                    id,
                    json!({"lang": "EN", "groups": [{"id": 77, "name": "Auditors"}]}),
                )
            })
            .collect(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = run(&sandbox, dir.path(), &["export", "-o", "users.csv"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Find & Replace on the company column, the verbatim rows left as they are.
    let text = std::fs::read_to_string(dir.path().join("users.csv")).unwrap();
    assert!(text.contains(",json"), "written verbatim: {text}");
    let edited = text.replace("\"\"\"Acme\"\"\"", "\"\"\"Renamed Co\"\"\"");
    assert_ne!(edited, text, "{text}");
    std::fs::write(dir.path().join("users.csv"), edited).unwrap();
    let out = run(&sandbox, dir.path(), &["plan", "users.csv"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(&sandbox, dir.path(), &["apply", "--plan", "users.plan.csv"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for user in listed(&sandbox).await {
        assert_eq!(user["company"], "Renamed Co", "{user}");
        assert_eq!(user["lang"], "EN", "{user}");
        assert_eq!(user["groups"][0]["id"], 77, "{user}");
    }
}

/// A row stopped before its turn under the rate leaves no undo line (the
/// line is written as its PATCH leaves): after Ctrl-C, the undo file holds
/// exactly the users the run changed, so applying it cannot overwrite a
/// later change to a user the run never touched. (A page gone old while
/// its row waited: `operations::planned`'s unit test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_rows_that_sent_have_undo_lines_after_ctrl_c() {
    let users: Vec<Value> = (1..=6)
        .map(|id| user(id, json!({"company": "Old"})))
        .collect();
    let sandbox = start(users).await;
    let dir = tempfile::tempdir().unwrap();
    let mut sheet = String::from("user_id,company\n");
    for id in 1..=6 {
        sheet.push_str(&format!("{id},New\n"));
    }
    std::fs::write(dir.path().join("in.csv"), sheet).unwrap();
    let out = run(&sandbox, dir.path(), &["plan", "in.csv"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // One request a second: row 1 is compared with the page read first;
    // its PATCH goes at once, the next ones a second apart.
    let mut cmd = common::bin();
    cmd.current_dir(dir.path())
        .args(["apply", "--plan", "in.plan.csv", "--undo-file", "undo.csv"])
        .args(["--base-url", &sandbox.base_url(), "--rate", "1"])
        .env("GCORE_API_KEY", KEY)
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let patched = |sandbox: &RunningSandbox| sandbox.stats().patches_per_user.len();
    common::until("the first PATCH", common::WITHIN, || patched(&sandbox) >= 1).await;
    common::kill(child.id(), "INT");
    let out = common::wait(child).await;
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    // A plan is not resumed: the run says how to finish it.
    assert!(
        stderr(&out).contains(
            "note: to finish the plan, apply it again to another results file (and another \
             --undo-file: keep this one): gcore-iam-bulk apply --plan in.plan.csv -o OTHER.csv"
        ),
        "{}",
        stderr(&out)
    );
    let (rows, text) = read_results_file(&dir.path().join("in.results.csv"));
    let updated: Vec<&str> = rows
        .iter()
        .filter(|row| row["status"] == "updated")
        .map(|row| row["user_id"].as_str())
        .collect();
    let undo = std::fs::read_to_string(dir.path().join("undo.csv")).unwrap();
    let undone: Vec<&str> = undo
        .lines()
        .skip(1)
        .map(|line| line.split(',').next().unwrap())
        .collect();
    assert_eq!(
        undone, updated,
        "undo lines for the rows sent only: {undo}\n{text}"
    );
    assert_eq!(
        sandbox.stats().patches_per_user.len(),
        updated.len(),
        "{text}"
    );
}

/// A user whose address, name or language an invitation would refuse
/// (values the API holds but takes back only as a PATCH: `EN`, a tab in
/// the name) has no way back once removed: the removal is not sent (the
/// row `invalid`, as for an answer without an address), unless
/// `--accept-partial-undo`. (It was sent, and the undo file's invitation
/// failed: the users were gone for good.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_whose_user_no_invitation_takes_back_is_not_sent() {
    // User 1 is the key's own (never removed with it).
    let sandbox = start(vec![
        user(1, json!({})),
        user(2, json!({"lang": "EN"})),
        user(3, json!({"name": "Tab\there"})),
        user(4, json!({})),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rm.csv"),
        "action,user_id\nremove,2\nremove,3\nremove,4\n",
    )
    .unwrap();
    // Every row's user is read before anything is sent: the run stops as
    // for any invalid row (an update row goes with it, never sent).
    std::fs::write(
        dir.path().join("rm.csv"),
        "action,user_id,lang\nremove,2,\nremove,3,\nremove,4,\n,1,de\n",
    )
    .unwrap();
    let args = ["apply", "rm.csv", "--undo-file", "undo.csv"];
    let output = run(&sandbox, dir.path(), &args).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let (rows, text) = common::read_results_file(&dir.path().join("rm.results.csv"));
    assert_eq!(rows[2]["status"], "not_attempted", "{text}");
    assert_eq!(rows[3]["status"], "not_attempted", "{text}");
    assert_eq!(rows[0]["attempts"], "0", "{text}");
    assert!(!sandbox.stats().by_method_status.contains_key("DELETE"));
    assert_eq!(sandbox.stats().patches_per_user.len(), 0);
    let args = [
        "apply",
        "rm.csv",
        "--undo-file",
        "undo.csv",
        "--skip-invalid",
        "--overwrite",
    ];
    let output = run(&sandbox, dir.path(), &args).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let (rows, text) = common::read_results_file(&dir.path().join("rm.results.csv"));
    for (row, want) in [(0, "lang"), (1, "control character")] {
        assert_eq!(rows[row]["status"], "invalid", "{text}");
        let error = &rows[row]["error"];
        assert!(
            error.contains("nothing sent: the undo file could not invite user")
                && error.contains("an invitation would not take their values back")
                && error.contains(want)
                && error.contains("--accept-partial-undo"),
            "{text}"
        );
    }
    assert_eq!(rows[2]["status"], "removed", "{text}");
    let left: Vec<u64> = (listed(&sandbox).await.iter())
        .map(|user| user["id"].as_u64().unwrap())
        .collect();
    assert_eq!(left, [1, 2, 3]);
    // The way back brings back the one removed.
    let args = ["apply", "undo.csv", "-o", "undo.results.csv"];
    let output = run(&sandbox, dir.path(), &args).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let emails: Vec<String> = (listed(&sandbox).await.iter())
        .map(|user| user["email"].as_str().unwrap().to_string())
        .collect();
    assert!(
        emails.contains(&"user4@example.com".to_string()),
        "the one removed is back: {emails:?}"
    );
}

/// `apply --plan` with an undo file refuses, before anything is sent, a
/// plan that removes a user no invitation would take back (the plan holds
/// the user as read, and the removal goes only if they are still so), as
/// `apply` stops for such a row. (Its other rows were sent, and that row
/// alone ended `invalid` at its DELETE.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_that_removes_a_user_no_invitation_takes_back_is_refused_whole() {
    let sandbox = start(vec![
        user(1, json!({})),
        user(2, json!({"lang": "EN"})),
        user(3, json!({})),
        user(4, json!({})),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rm.csv"),
        "action,user_id,lang\n,3,de\nremove,4,\nremove,2,\n",
    )
    .unwrap();
    let output = run(&sandbox, dir.path(), &["plan", "rm.csv"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let args = ["apply", "--plan", "rm.plan.csv", "--undo-file", "undo.csv"];
    let output = run(&sandbox, dir.path(), &args).await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("row 4 of the plan removes a user the undo file could not invite back")
            && text.contains("an invitation would not take their values back")
            && text.contains("nothing was sent")
            && text.contains("--accept-partial-undo"),
        "{text}"
    );
    let stats = sandbox.stats();
    assert!(!stats.by_method_status.contains_key("DELETE"), "{stats:?}");
    assert_eq!(stats.patches_per_user.len(), 0);
    // Accepted, the plan goes whole.
    let args = [
        "apply",
        "--plan",
        "rm.plan.csv",
        "--undo-file",
        "undo.csv",
        "--accept-partial-undo",
    ];
    let output = run(&sandbox, dir.path(), &args).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let left: Vec<u64> = (listed(&sandbox).await.iter())
        .map(|user| user["id"].as_u64().unwrap())
        .collect();
    assert_eq!(left, [1, 3]);
}

/// A run refused for an invalid row (nothing sent) leaves an undo file of
/// its header alone, says it holds no change, and the same command runs
/// once the row is fixed (it was refused: "already exists and may be the
/// only way back").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undo_file_of_a_run_that_sent_nothing_may_be_given_again() {
    let sandbox = start(vec![user(1, json!({})), user(2, json!({}))]).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "user_id,lang\n2,xx\n").unwrap();
    let args = ["apply", "in.csv", "--undo-file", "undo.csv", "--overwrite"];
    let output = run(&sandbox, dir.path(), &args).await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("undo: undo.csv holds no change"), "{text}");
    std::fs::write(dir.path().join("in.csv"), "user_id,lang\n2,de\n").unwrap();
    let output = run(&sandbox, dir.path(), &args).await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("puts back the values this run changed"),
        "{text}"
    );
    let undo = std::fs::read_to_string(dir.path().join("undo.csv")).unwrap();
    assert!(undo.lines().any(|line| line.starts_with("2,")), "{undo}");
    // A file that holds a way back is never replaced, nor any other file
    // of one line (only an undo file's header alone may be given again).
    let output = run(&sandbox, dir.path(), &args).await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("may be the only way back"));
    for notes in [
        "my important notes line 1\n",
        "no line break",
        "user_id,lang\n",
    ] {
        std::fs::write(dir.path().join("notes.txt"), notes).unwrap();
        let args = ["apply", "in.csv", "--undo-file", "notes.txt", "--overwrite"];
        let output = run(&sandbox, dir.path(), &args).await;
        assert_eq!(
            output.status.code(),
            Some(2),
            "{notes}: {}",
            stderr(&output)
        );
        let kept = std::fs::read_to_string(dir.path().join("notes.txt")).unwrap();
        assert_eq!(kept, notes);
    }
}

/// A user's value that holds the API key is blanked (`***`) as the answer
/// is read, so it is not known: it is never written back (`export` leaves
/// its cell empty), and the undo file cannot put it back: a row that
/// changes it is `invalid`, nothing sent. (The export held `***`, and the
/// undo file wrote `***` back to the account.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_that_holds_the_key_is_never_written_back_as_stars() {
    let sandbox = start(vec![
        user(1, json!({})),
        user(2, json!({"name": KEY, "company": format!("Co {KEY}")})),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let output = run(&sandbox, dir.path(), &["export", "-o", "users.csv"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let export = std::fs::read_to_string(dir.path().join("users.csv")).unwrap();
    assert!(!export.contains("***") && !export.contains(KEY), "{export}");
    let row = export.lines().find(|line| line.starts_with("2,")).unwrap();
    assert!(row.starts_with("2,user2@example.com,,en,"), "{row}");

    std::fs::write(dir.path().join("in.csv"), "user_id,name,lang\n2,Ann,de\n").unwrap();
    let args = ["apply", "in.csv", "--undo-file", "undo.csv"];
    let output = run(&sandbox, dir.path(), &args).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let (rows, text) = common::read_results_file(&dir.path().join("in.results.csv"));
    assert_eq!(rows[0]["status"], "invalid", "{text}");
    assert!(
        rows[0]["error"].contains("name (it holds the API key, shown as ***"),
        "{text}"
    );
    assert!(!text.contains(KEY), "{text}");
    assert_eq!(sandbox.stats().patches_per_user.len(), 0);
}

/// `apply --plan --undo-file` reads each user with a GET just before its
/// PATCH: a colleague's change to a planned field after the run started is
/// seen (the row is `failed`, nothing sent, no undo line), not overwritten
/// with an undo line that holds the plan's older value. (The run compared
/// with a page of the list read up to 5 s before: the PATCH replaced the
/// colleague's value and the undo file could never bring it back.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_applied_with_an_undo_file_reads_each_user_just_before() {
    let sandbox = start((1..=8).map(|id| user(id, json!({}))).collect()).await;
    let dir = tempfile::tempdir().unwrap();
    let rows: String = (2..=8).map(|id| format!("{id},New{id}\n")).collect();
    std::fs::write(
        dir.path().join("in.csv"),
        format!("user_id,company\n{rows}"),
    )
    .unwrap();
    let output = run(&sandbox, dir.path(), &["plan", "in.csv"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // Four requests a second: user 8 is read 3 s after the first PATCH.
    let child = common::bin()
        .current_dir(dir.path())
        .args(["apply", "--plan", "in.plan.csv", "--undo-file", "undo.csv"])
        .args(["--base-url", &sandbox.base_url(), "--rate", "4"])
        .env("GCORE_API_KEY", KEY)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let patched = |sandbox: &RunningSandbox| {
        let stats = sandbox.stats();
        (stats.by_method_status.get("PATCH")).map_or(0, |by| by.values().sum::<u64>())
    };
    let mut waited = 0;
    while patched(&sandbox) == 0 {
        assert!(waited < 1000, "no PATCH within 10 s");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        waited += 1;
    }
    let colleague = common::http()
        .patch(format!("{}/iam/users/8", sandbox.base_url()))
        .header("Authorization", format!("apikey {KEY}"))
        .json(&json!({"company": "Colleague"}))
        .send()
        .await
        .unwrap();
    assert!(colleague.status().is_success());
    let out = common::wait(child).await;
    assert_eq!(out.status.code(), Some(1));
    let (rows, text) = read_results_file(&dir.path().join("in.results.csv"));
    assert_eq!(rows[6]["user_id"], "8", "{text}");
    assert_eq!(rows[6]["status"], "failed", "{text}");
    assert!(
        rows[6]["error"].contains("changed since the plan"),
        "{text}"
    );
    let undo = std::fs::read_to_string(dir.path().join("undo.csv")).unwrap();
    assert!(!undo.lines().any(|line| line.starts_with("8,")), "{undo}");
    assert_eq!(undo.lines().count(), 7, "{undo}");
    let users = listed(&sandbox).await;
    assert_eq!(users[7]["company"], "Colleague");
}
