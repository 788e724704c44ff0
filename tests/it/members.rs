//! The account's membership from the sheet, end to end with the built
//! binary: invitations and removals (the `action` column) with the official
//! SDK's request bodies, `plan --remove-missing` and its guard against a
//! sheet cut short, the undo file's way back, and a resume after `kill -9`
//! that invites nobody twice.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{WITHIN, bin, kill, read_results_file, until, wait};
use gcore_iam_bulk::sandbox::{Faults, RunningSandbox};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "members-key";

/// The binary in `dir` against `base_url`, its exit code and stderr.
async fn run_in(dir: &Path, base_url: &str, args: &[&str]) -> (i32, String) {
    let child = bin()
        .current_dir(dir)
        .args(args)
        .args(["--base-url", base_url])
        .env("GCORE_API_KEY", KEY)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait(child).await;
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn user(id: u64, email: &str) -> Value {
    json!({
        "id": id, "email": email, "name": format!("User {id}"), "lang": "en", "phone": null,
        "company": "Acme", "reseller": 1, "client": 4242, "deleted": false,
        "groups": [{"id": 2, "name": "Users"}], "activated": true, "sso_auth": false,
        "two_fa": false, "auth_types": ["password"], "user_type": "common", "is_active": true
    })
}

#[tokio::test]
async fn invitations_and_removals_send_the_sdks_requests_exactly_once() {
    let server = MockServer::start().await;
    // The account's list (the sheet has an action column), then its id.
    Mock::given(method("GET"))
        .and(path("/iam/users"))
        .and(query_param("offset", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "count": 2,
            "results": [user(9, "leaver@example.com"), user(10, "stays@example.com")]
        })))
        .mount(&server)
        .await;
    // Each call once, with exactly this body (`None`: no body).
    let once = |verb: &str, at: &str, body: Option<Value>, answer: ResponseTemplate| {
        let mock = Mock::given(method(verb)).and(path(at));
        let mock = match body {
            Some(body) => mock.and(body_json(body)),
            None => mock,
        };
        mock.respond_with(answer).expect(1)
    };
    let ok = |body: Value| ResponseTemplate::new(200).set_body_json(body);
    let invited = |id: u64| ok(json!({"status": "ok", "user_id": id}));
    let calls = [
        once(
            "GET",
            "/iam/clients/me",
            None,
            ok(json!({"id": 4242, "currentUser": 1})),
        ),
        // The SDK's shape: client_id, email, user_role {id, name}, lang, name.
        once(
            "POST",
            "/iam/clients/invite_user",
            Some(json!({
                "client_id": 4242, "email": "new.one@example.com",
                "user_role": {"id": 2, "name": "Users"}, "lang": "de", "name": "New One"
            })),
            invited(501),
        ),
        once(
            "POST",
            "/iam/clients/invite_user",
            Some(json!({
                "client_id": 4242, "email": "bare@example.com",
                "user_role": {"id": 1, "name": "Administrators"}
            })),
            invited(502),
        ),
        // The fields an invitation cannot carry, by a PATCH of the new user.
        once(
            "PATCH",
            "/iam/users/501",
            Some(json!({
                "phone": "+49 30 1", "company": "Contoso",
                "groups": [{"id": 2, "name": "Users"}, {"id": 5, "name": "Engineers"}]
            })),
            ok(user(501, "new.one@example.com")),
        ),
        once(
            "GET",
            "/iam/users/502",
            None,
            ok(user(502, "bare@example.com")),
        ),
        // A removal by address: the user read, then the DELETE.
        once(
            "GET",
            "/iam/users/9",
            None,
            ok(user(9, "leaver@example.com")),
        ),
        once(
            "DELETE",
            "/iam/clients/4242/client-users/9",
            None,
            ResponseTemplate::new(204),
        ),
    ];
    for call in calls {
        call.mount(&server).await;
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("team.csv"),
        "Action,user_id,current_email,email,name,lang,phone,company,groups\n\
         invite,,,new.one@example.com,New One,de,+49 30 1,Contoso,Users;Engineers\n\
         INVITE,,,bare@example.com,,,,,Administrators\n\
         remove,,leaver@example.com,,,,,,\n",
    )
    .unwrap();
    let args = ["apply", "team.csv", "--summary-json", "s.json"];
    let (code, stderr) = run_in(dir.path(), &server.uri(), &args).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("3 rows: 2 invited, 1 removed"), "{stderr}");
    // The summary JSON names them too.
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("s.json")).unwrap()).unwrap();
    assert_eq!(summary["counts"]["invited"], 2, "{summary}");
    assert_eq!(summary["members"]["invited"]["count"], 2, "{summary}");
    assert_eq!(
        summary["members"]["invited"]["users"][0]["email"], "new.one@example.com",
        "{summary}"
    );
    assert_eq!(
        summary["members"]["removed"]["users"][0]["user_id"], "9",
        "{summary}"
    );
    assert!(
        stderr.contains("  invited (2 users):\n    user 501 new.one@example.com")
            && stderr.contains("  removed (1 user):\n    user 9 leaver@example.com (Users)"),
        "the summary names who joined and who left: {stderr}"
    );
    let (rows, text) = read_results_file(&dir.path().join("team.results.csv"));
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|row| (row["status"].as_str(), row["user_id"].as_str()))
        .collect();
    assert_eq!(
        got,
        [("invited", "501"), ("invited", "502"), ("removed", "9")],
        "{text}"
    );
    // Each mock's `expect(1)` is checked when the server goes.
    server.verify().await;
}

/// `GET path` of the sandbox, with its key: the JSON answer.
async fn get(sandbox: &RunningSandbox, path: &str) -> Value {
    common::http()
        .get(format!("{}{path}", sandbox.base_url()))
        .header("Authorization", format!("apikey {KEY}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Requests of `method` the sandbox answered, whatever their status.
fn answered(sandbox: &RunningSandbox, method: &str) -> u64 {
    let stats = sandbox.stats();
    (stats.by_method_status.get(method)).map_or(0, |by| by.values().sum::<u64>())
}

/// The sandbox's users by address: the fields a row can set, and whether
/// activated.
async fn members(sandbox: &RunningSandbox) -> BTreeMap<String, (Value, bool)> {
    let page = get(sandbox, "/iam/users?limit=1000&offset=0").await;
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| {
            let fields = json!([
                user["name"],
                user["lang"],
                user["phone"],
                user["company"],
                user["groups"],
                user["auth_types"]
            ]);
            let activated = user["activated"].as_bool().unwrap_or(false);
            (
                user["email"].as_str().unwrap().to_string(),
                (fields, activated),
            )
        })
        .collect()
}

async fn started(users: u64, faults: Faults) -> RunningSandbox {
    let config = gcore_iam_bulk::sandbox::SandboxConfig {
        users,
        api_key: KEY.to_string(),
        seed: 24,
        faults,
        given: None,
    };
    gcore_iam_bulk::sandbox::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// The address of user `id`.
async fn email_of(sandbox: &RunningSandbox, id: u64) -> String {
    let user = get(sandbox, &format!("/iam/users/{id}")).await;
    user["email"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_then_undo_gives_the_same_membership_and_fields() {
    let sandbox = started(30, Faults::default()).await;
    let before = members(&sandbox).await;
    let dir = tempfile::tempdir().unwrap();
    let email_of_7 = email_of(&sandbox, 7).await;
    std::fs::write(
        dir.path().join("team.csv"),
        format!(
            "action,user_id,current_email,email,name,lang,phone,company,groups,auth_types\n\
             invite,,,ann@example.com,Ann,de,+49 1,Contoso,Engineers;Users,password;sso\n\
             invite,,,bob@example.com,,,,,Users,\n\
             invite,,,cy@example.com,Cy,zh,,,Administrators,\n\
             remove,3,,,,,,,,\n\
             remove,,{email_of_7},,,,,,,\n\
             ,12,,,,,,Renamed,,\n"
        ),
    )
    .unwrap();
    let url = sandbox.base_url();
    let args = ["apply", "team.csv", "--undo-file", "undo.csv"];
    let (code, stderr) = run_in(dir.path(), &url, &args).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("6 rows: 1 updated, 3 invited, 2 removed"),
        "{stderr}"
    );
    let during = members(&sandbox).await;
    assert_eq!(during.len(), before.len() + 1, "three in, two out");
    assert_eq!(
        during["ann@example.com"].0,
        json!(["Ann", "de", "+49 1", "Contoso",
               [{"id": 5, "name": "Engineers"}, {"id": 2, "name": "Users"}],
               ["password", "sso"]]),
        "the invitation and the PATCH after it"
    );
    assert!(!during["ann@example.com"].1, "not activated yet");
    assert!(!during.contains_key(&email_of_7));
    assert!(
        stderr.contains("passwords, activation and SSO sign-in cannot come back"),
        "{stderr}"
    );

    let args = ["apply", "undo.csv", "-o", "undo.results.csv"];
    let (code, stderr) = run_in(dir.path(), &url, &args).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("6 rows: 1 updated, 3 removed, 2 invited")
            || stderr.contains("6 rows: 1 updated, 2 invited, 3 removed"),
        "{stderr}"
    );
    let after = members(&sandbox).await;
    let fields = |map: &BTreeMap<String, (Value, bool)>| -> BTreeMap<String, Value> {
        map.iter()
            .map(|(email, (fields, _))| (email.clone(), fields.clone()))
            .collect()
    };
    assert_eq!(
        fields(&after),
        fields(&before),
        "the same people, with the same fields"
    );
    // Invited again: they set a password before they are active.
    assert!(!after[&email_of_7].1);
}

/// The undo file of a run that invited more users than --max-removals
/// allows is refused as such (it said "a sheet cut short looks like this"),
/// and goes with the number it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undo_file_that_takes_back_many_invitations_is_guarded_as_one() {
    let sandbox = started(2, Faults::default()).await;
    let url = sandbox.base_url();
    let dir = tempfile::tempdir().unwrap();
    let rows: String = (1..=11)
        .map(|n| format!("invite,new{n}@example.com,Users\n"))
        .collect();
    std::fs::write(
        dir.path().join("in.csv"),
        format!("action,email,groups\n{rows}"),
    )
    .unwrap();
    let args = ["apply", "in.csv", "--undo-file", "undo.csv"];
    let (code, stderr) = run_in(dir.path(), &url, &args).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("--max-removals 11"), "{stderr}");
    let args = ["apply", "undo.csv", "-o", "back.csv"];
    let (code, stderr) = run_in(dir.path(), &url, &args).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("the undo file would remove 11 users, more than --max-removals 10")
            && stderr.contains("It takes back the invitations of the run that wrote it")
            && stderr.contains("pass --max-removals 11")
            && !stderr.contains("cut short"),
        "{stderr}"
    );
    assert_eq!(members(&sandbox).await.len(), 13);
    let args = [
        "apply",
        "undo.csv",
        "-o",
        "back.csv",
        "--max-removals",
        "11",
    ];
    let (code, stderr) = run_in(dir.path(), &url, &args).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(members(&sandbox).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_remove_missing_plans_the_rows_cut_and_refuses_a_sheet_cut_short() {
    let sandbox = started(30, Faults::default()).await;
    let url = sandbox.base_url();
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = run_in(dir.path(), &url, &["export", "-o", "all.csv"]).await;
    assert_eq!(code, 0, "{stderr}");
    let all = std::fs::read_to_string(dir.path().join("all.csv")).unwrap();
    let lines: Vec<&str> = all.lines().collect();
    // Users 4, 5 and 6 (lines 5..=7) deleted from the sheet.
    let three: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(at, _)| !(4..=6).contains(at))
        .map(|(_, line)| *line)
        .collect();
    std::fs::write(dir.path().join("three.csv"), three.join("\n") + "\n").unwrap();
    let args = ["plan", "three.csv", "--remove-missing"];
    let (code, stderr) = run_in(dir.path(), &url, &args).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("30 rows: 27 unchanged, 3 would_remove"),
        "{stderr}"
    );
    let (rows, text) = read_results_file(&dir.path().join("three.plan.csv"));
    let removed: Vec<&str> = rows
        .iter()
        .filter(|row| row["status"] == "would_remove")
        .map(|row| row["user_id"].as_str())
        .collect();
    assert_eq!(removed, ["4", "5", "6"], "{text}");

    // Twelve rows gone: refused, no plan, nothing but reads sent.
    let twelve: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(at, _)| !(10..22).contains(at))
        .map(|(_, line)| *line)
        .collect();
    std::fs::write(dir.path().join("twelve.csv"), twelve.join("\n") + "\n").unwrap();
    let args = ["plan", "twelve.csv", "--remove-missing"];
    let (code, stderr) = run_in(dir.path(), &url, &args).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("would remove 12 users, more than --max-removals 10 allows: user 10,")
            && stderr.contains("and 7 more; no plan was written")
            // An export's sheet (it has a verbatim column) is no undo file.
            && stderr.contains("A sheet cut short")
            && stderr.contains("pass --max-removals 12"),
        "{stderr}"
    );
    assert!(!dir.path().join("twelve.plan.csv").exists());
    let writes = |sandbox: &RunningSandbox| {
        ["PATCH", "POST", "DELETE"]
            .iter()
            .map(|verb| answered(sandbox, verb))
            .sum::<u64>()
    };
    assert_eq!(writes(&sandbox), 0);

    // The reviewed plan of three, applied: those three leave.
    let args = ["apply", "--plan", "three.plan.csv"];
    let (code, stderr) = run_in(dir.path(), &url, &args).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("30 rows: 27 unchanged, 3 removed"),
        "{stderr}"
    );
    assert_eq!(members(&sandbox).await.len(), 27);
    let deletes = &sandbox.stats().by_method_status["DELETE"];
    assert_eq!(deletes.get(&204), Some(&3), "{deletes:?}");
    // An input that removes more than allowed is refused before anything is sent.
    let mut sheet = String::from("action,user_id\n");
    for id in 10..=21 {
        sheet.push_str(&format!("remove,{id}\n"));
    }
    std::fs::write(dir.path().join("leavers.csv"), sheet).unwrap();
    let (code, stderr) = run_in(dir.path(), &url, &["apply", "leavers.csv"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("the file would remove 12 users")
            && stderr.contains("row 2 (user 10), row 3 (user 11)")
            && stderr.contains("nothing was sent"),
        "{stderr}"
    );
    assert_eq!(members(&sandbox).await.len(), 27);
    // A dry run does what it is asked (exit 0), and warns, even under -q,
    // that the run that sends would stop.
    let warned = |code: i32, stderr: &str| {
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stderr.contains("warning: the file would remove 12 users")
                && stderr.contains("a run that sends would stop there, with nothing sent (exit 2)"),
            "{stderr}"
        );
    };
    let args = ["apply", "leavers.csv", "--dry-run", "-q", "--overwrite"];
    let (code, stderr) = run_in(dir.path(), &url, &args).await;
    warned(code, &stderr);
    let validated = bin()
        .current_dir(dir.path())
        .args(["validate", "leavers.csv", "-q", "--overwrite"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&validated.stderr);
    warned(validated.status.code().unwrap(), &stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_invitations_then_resume_invites_nobody_twice() {
    let sandbox = started(
        30,
        Faults {
            latency_ms: 20,
            ..Faults::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut sheet = String::from("action,email,groups,company\n");
    for n in 1..=40 {
        sheet.push_str(&format!("invite,new.{n}@example.com,Users,Team {n}\n"));
    }
    std::fs::write(dir.path().join("in.csv"), sheet).unwrap();
    let url = sandbox.base_url();
    let child = common::spawn_apply(
        dir.path(),
        "in.csv",
        &url,
        KEY,
        &["--rate", "40", "--concurrency", "4"],
    );
    let posts = |sandbox: &RunningSandbox| answered(sandbox, "POST");
    until("five invitations", WITHIN, || posts(&sandbox) >= 5).await;
    kill(child.id(), "KILL");
    let _ = wait(child).await;
    // What the killed run had on the wire has landed (or never will).
    let mut last = sandbox.stats().requests;
    until("the sandbox to settle", WITHIN, || {
        std::thread::sleep(Duration::from_millis(100));
        let now = sandbox.stats().requests;
        std::mem::replace(&mut last, now) == now
    })
    .await;
    let (code, stderr) = run_in(
        dir.path(),
        &url,
        &["apply", "in.csv", "--resume", "--rate", "0"],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let (rows, text) = read_results_file(&dir.path().join("in.results.csv"));
    assert_eq!(rows.len(), 40, "{text}");
    for row in &rows {
        assert_eq!(row["status"], "invited", "{row:?}");
        assert_eq!(
            row["company"],
            format!("Team {}", row["row"].parse::<u64>().unwrap() - 1)
        );
    }
    let stats = sandbox.stats();
    let post = &stats.by_method_status["POST"];
    assert_eq!(post.get(&200), Some(&40), "each invited once: {post:?}");
    assert_eq!(post.get(&400), None, "nobody invited twice: {post:?}");
    let everyone = members(&sandbox).await;
    for n in 1..=40 {
        assert!(
            everyone.contains_key(&format!("new.{n}@example.com")),
            "{n}"
        );
    }
}

#[tokio::test]
async fn a_membership_row_gone_wrong_names_its_column_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("team.csv"),
        "action,user_id,email,company,groups\n\
         invite,5,a@example.com,,Users\n\
         invite,,b@example.com,,\n\
         invite,,,,Users\n\
         remove,6,,Acme,\n\
         delete,7,,,\n\
         Invite,,ok@example.com,Acme,Engineers\n\
         REMOVE,8,,,\n\
         invite,,twice@example.com,,Users\n\
         invite,,Twice@Example.com,,Users\n\
         invite,,brand@new.com,,Users\n\
         ,3,Brand@New.com,,\n",
    )
    .unwrap();
    let out = bin()
        .current_dir(dir.path())
        .args(["validate", "team.csv"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("11 rows: 1 would_update, 8 invalid, 1 would_invite, 1 would_remove")
            && stderr.contains("  invited (1 user):\n    row 7 ok@example.com (Engineers)\n")
            && stderr.contains("  removed (1 user):\n    user 8\n"),
        "{stderr}"
    );
    let (rows, text) = read_results_file(&dir.path().join("team.results.csv"));
    let error = |row: usize| rows[row]["error"].as_str();
    assert!(
        error(0).starts_with("user_id: is \"5\", but an invite row names no user yet"),
        "{text}"
    );
    assert!(
        error(1).contains("groups: is empty: an invite row needs the new user's group"),
        "{text}"
    );
    assert!(
        error(2).contains("email: is empty: an invite row needs the new user's address"),
        "{text}"
    );
    assert!(
        error(3).contains("action: is remove, and the row sets company: a user who leaves"),
        "{text}"
    );
    assert!(
        error(4).contains("action: \"delete\" is not an action: write update"),
        "{text}"
    );
    assert!(
        error(7).contains("email: \"twice@example.com\" is also on row 10 (invited, or an")
            && error(8).contains("is also on row 9"),
        "{text}"
    );
    // An address an update row gives to user 3 is not invited too.
    assert!(error(9).contains("is also on row 12"), "{text}");
    assert_eq!(rows[10]["status"], "would_update", "{text}");
    // A sheet of newcomers needs no user_id column.
    std::fs::write(
        dir.path().join("new.csv"),
        "action,email,groups\ninvite,c@example.com,Users\n",
    )
    .unwrap();
    let out = bin()
        .current_dir(dir.path())
        .args(["validate", "new.csv"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("1 row: 1 would_invite"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_of_an_address_in_the_account_is_invalid_before_anything_is_sent() {
    let sandbox = started(10, Faults::default()).await;
    let url = sandbox.base_url();
    let taken = email_of(&sandbox, 4).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("team.csv"),
        format!("action,email,groups\ninvite,new@example.com,Users\ninvite,{taken},Users\n"),
    )
    .unwrap();
    for command in ["plan", "apply"] {
        let (code, stderr) = run_in(dir.path(), &url, &[command, "team.csv"]).await;
        assert_eq!(code, 1, "{stderr}");
        let suffix = if command == "plan" { "plan" } else { "results" };
        let (rows, text) = read_results_file(&dir.path().join(format!("team.{suffix}.csv")));
        assert_eq!(rows[1]["status"], "invalid", "{text}");
        assert!(
            rows[1]["error"]
                .contains("already belongs to user 4 of the account: make the row an update"),
            "{text}"
        );
    }
    // A key of another account: --account-id says which account is meant.
    std::fs::write(
        dir.path().join("one.csv"),
        "action,email,groups\ninvite,new@example.com,Users\n",
    )
    .unwrap();
    let args = ["apply", "one.csv", "--account-id", "1"];
    let (code, stderr) = run_in(dir.path(), &url, &args).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--account-id 1 is not the account of this key (the API says"),
        "{stderr}"
    );
    assert_eq!(sandbox.stats().by_method_status.get("POST"), None);
    assert_eq!(members(&sandbox).await.len(), 10);
    // A run refused so leaves no file (a results file of its header, its
    // journal and notes were left).
    let left = |dir: &std::path::Path| {
        let mut names: Vec<String> = (std::fs::read_dir(dir).unwrap())
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("one.results") || name.starts_with("langs.results"))
            .collect();
        names.sort();
        names
    };
    assert_eq!(left(dir.path()), Vec::<String>::new());
    // A file of updates only is checked alike (it was sent: only rows
    // that invite or remove read the account), and so is its plan.
    std::fs::write(
        dir.path().join("langs.csv"),
        "user_id,lang
5,de
",
    )
    .unwrap();
    for args in [
        &["apply", "langs.csv", "--account-id", "1"][..],
        &["plan", "langs.csv", "--account-id", "1"],
    ] {
        let (code, stderr) = run_in(dir.path(), &url, args).await;
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains("--account-id 1 is not the account"),
            "{stderr}"
        );
        assert_eq!(left(dir.path()), Vec::<String>::new(), "{args:?}");
    }
    let (code, stderr) = run_in(dir.path(), &url, &["plan", "langs.csv"]).await;
    assert_eq!(code, 0, "{stderr}");
    let args = ["apply", "--plan", "langs.plan.csv", "--account-id", "1"];
    let (code, stderr) = run_in(dir.path(), &url, &args).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--account-id 1 is not the account"),
        "{stderr}"
    );
    assert_eq!(left(dir.path()), Vec::<String>::new());
    assert_eq!(sandbox.stats().by_method_status.get("PATCH"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_never_takes_over_an_address_that_was_someone_elses() {
    let sandbox = started(10, Faults::default()).await;
    let url = sandbox.base_url();
    let taken = email_of(&sandbox, 4).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.csv"),
        format!(
            "action,email,groups,company\ninvite,new@example.com,Users,Acme\n\
             invite,{taken},Users;Administrators,Evil Corp\n"
        ),
    )
    .unwrap();
    let before = members(&sandbox).await[&taken].clone();
    let (code, stderr) = run_in(dir.path(), &url, &["apply", "in.csv", "--skip-invalid"]).await;
    assert_eq!(code, 1, "{stderr}");
    for _ in 0..2 {
        let (code, stderr) = run_in(dir.path(), &url, &["apply", "in.csv", "--resume"]).await;
        assert_eq!(code, 1, "{stderr}");
        let (rows, text) = read_results_file(&dir.path().join("in.results.csv"));
        assert_eq!(rows[0]["status"], "invited", "{text}");
        assert_eq!(rows[1]["status"], "invalid", "{text}");
        assert!(
            rows[1]["error"].contains("already belongs to user 4"),
            "{text}"
        );
    }
    assert_eq!(members(&sandbox).await[&taken], before, "user 4 untouched");
    assert_eq!(sandbox.stats().by_method_status["POST"].get(&200), Some(&1));
}

/// An invitation whose answer is lost (a timeout) is not sent again: the
/// row says so, and --resume finds the user the invitation made and
/// finishes the row; nobody is invited twice, and the undo file has every
/// invited user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_whose_answer_is_lost_is_finished_by_resume_not_sent_twice() {
    let sandbox = started(
        10,
        Faults {
            // About a third of the answers come after the client gave up.
            slow_rate: 0.3,
            slow_ms: 1500,
            ..Faults::default()
        },
    )
    .await;
    let url = sandbox.base_url();
    let dir = tempfile::tempdir().unwrap();
    let mut sheet = String::from("action,email,groups,company\n");
    for n in 1..=20 {
        sheet.push_str(&format!("invite,lost.{n}@example.com,Users,Team {n}\n"));
    }
    std::fs::write(dir.path().join("in.csv"), sheet).unwrap();
    let flags = ["--rate", "0", "--timeout", "0.5", "--max-retries", "30"];
    let mut args = vec!["apply", "in.csv", "--undo-file", "undo.csv"];
    args.extend(flags);
    let (code, stderr) = run_in(dir.path(), &url, &args).await;
    assert_eq!(code, 1, "some invitation's answer was lost: {stderr}");
    let (rows, text) = read_results_file(&dir.path().join("in.results.csv"));
    assert!(
        rows.iter().any(|row| row["status"] == "failed"
            && row["error"].contains("not retried: it may have been carried out")),
        "{text}"
    );
    let mut args = vec!["apply", "in.csv", "--resume"];
    args.extend(flags);
    let (code, stderr) = run_in(dir.path(), &url, &args).await;
    assert_eq!(code, 0, "{stderr}");
    let (rows, text) = read_results_file(&dir.path().join("in.results.csv"));
    assert!(rows.iter().all(|row| row["status"] == "invited"), "{text}");
    assert!(
        rows.iter()
            .any(|row| row["error"].contains("by an earlier run of this record")),
        "{text}"
    );
    let post = &sandbox.stats().by_method_status["POST"];
    assert_eq!(post.get(&400), None, "nobody invited twice: {post:?}");
    // Every POST the sandbox carried out made one user.
    assert_eq!(members(&sandbox).await.len(), 30);
    let undo = std::fs::read_to_string(dir.path().join("undo.csv")).unwrap();
    assert_eq!(
        undo.lines()
            .filter(|line| line.ends_with(",remove"))
            .count(),
        20,
        "{undo}"
    );
}

/// A server that lies: an invitation answered with the ID of a user who
/// was in the account already changes nobody (no PATCH); a DELETE whose
/// first answer was a 500 and whose retry meets 404 removed the user.
#[tokio::test]
async fn an_answer_naming_an_old_user_changes_nobody_and_a_retried_delete_that_meets_404_removed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/iam/users"))
        .and(query_param("offset", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "count": 3,
            "results": [
                user(9, "old@example.com"),
                user(10, "leaver@example.com"),
                user(11, "gone@example.com")
            ]
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/iam/clients/me"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": 4242, "currentUser": 1})),
        )
        .mount(&server)
        .await;
    // User 11 leaves between the GET and the DELETE (someone else's doing).
    Mock::given(method("GET"))
        .and(path("/iam/users/11"))
        .respond_with(ResponseTemplate::new(200).set_body_json(user(11, "gone@example.com")))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/iam/clients/4242/client-users/11"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "no user"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/iam/clients/invite_user"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"status": "ok", "user_id": 9})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/iam/users/10"))
        .respond_with(ResponseTemplate::new(200).set_body_json(user(10, "leaver@example.com")))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/iam/clients/4242/client-users/10"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/iam/clients/4242/client-users/10"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "no user"})))
        .with_priority(2)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.csv"),
        "action,user_id,email,groups,company\n\
         invite,,new@example.com,Users,NewCo\n\
         remove,10,,,\n\
         remove,11,,,\n",
    )
    .unwrap();
    let args = ["apply", "in.csv", "--rate", "0", "--undo-file", "undo.csv"];
    let (code, stderr) = run_in(dir.path(), &server.uri(), &args).await;
    assert_eq!(code, 1, "{stderr}");
    let (rows, text) = read_results_file(&dir.path().join("in.results.csv"));
    assert_eq!(rows[0]["status"], "failed", "{text}");
    assert!(
        rows[0]["error"].contains("answered with user 9, who was in the account before it"),
        "{text}"
    );
    assert_eq!(rows[1]["status"], "removed", "{text}");
    assert!(
        rows[1]["error"].contains("the first one removed them"),
        "{text}"
    );
    let undo = std::fs::read_to_string(dir.path().join("undo.csv")).unwrap();
    assert!(!undo.contains("9,,,,,,,,,remove"), "{undo}");
    assert_eq!(undo.matches("leaver@example.com").count(), 1, "{undo}");
    // Not removed by this run: no row invites them back.
    assert_eq!(rows[2]["status"], "failed", "{text}");
    assert!(!undo.contains("gone@example.com"), "{undo}");
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_missing_refuses_a_sheet_whose_rows_do_not_all_name_their_user() {
    let sandbox = started(6, Faults::default()).await;
    let url = sandbox.base_url();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sheet.csv"),
        "user_id,company\n1,A\n2,A\n3.0,A\n6e0,A\n4,A\n5,A\n6,A\n",
    )
    .unwrap();
    let (code, stderr) = run_in(dir.path(), &url, &["plan", "sheet.csv", "--remove-missing"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("with --remove-missing every row must name its user, and 2 name")
            && stderr.contains("(row 4, 5:")
            && stderr.contains("no plan was written"),
        "{stderr}"
    );
    assert!(!dir.path().join("sheet.plan.csv").exists());
}

/// The answers of a fake account for [`a_refusal_is_never_taken_for_this_runs_doing_on_resume`].
async fn mount(server: &MockServer, users: Vec<Value>, calls: Vec<Mock>) {
    server.reset().await;
    let count = users.len();
    Mock::given(method("GET"))
        .and(path("/iam/users"))
        .and(query_param("offset", "0"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"count": count, "results": users})),
        )
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/iam/clients/me"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": 4242, "currentUser": 1})),
        )
        .mount(server)
        .await;
    for call in calls {
        call.mount(server).await;
    }
}

/// A plan's invitation whose next step fails says how to finish it: a
/// new plan (`apply --plan` is not resumed), not `--resume`.
#[tokio::test]
async fn a_planned_invitation_whose_next_step_fails_says_to_plan_again() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.csv"),
        "action,email,groups,company\ninvite,new@example.com,Users,NewCo\n",
    )
    .unwrap();
    mount(&server, vec![user(5, "five@example.com")], vec![]).await;
    let (code, stderr) = run_in(dir.path(), &server.uri(), &["plan", "in.csv"]).await;
    assert_eq!(code, 0, "{stderr}");
    let invite = ResponseTemplate::new(200).set_body_json(json!({"status": "ok", "user_id": 501}));
    let refused = ResponseTemplate::new(400).set_body_json(json!({"message": "not now"}));
    mount(
        &server,
        vec![user(5, "five@example.com")],
        vec![
            Mock::given(method("POST")).respond_with(invite).expect(1),
            (Mock::given(method("PATCH")).and(path("/iam/users/501")))
                .respond_with(refused)
                .expect(1),
        ],
    )
    .await;
    let args = ["apply", "--plan", "in.plan.csv", "--rate", "0"];
    let (code, stderr) = run_in(dir.path(), &server.uri(), &args).await;
    assert_eq!(code, 1, "{stderr}");
    let (rows, text) = read_results_file(&dir.path().join("in.results.csv"));
    assert_eq!(rows[0]["status"], "failed", "{text}");
    let error = &rows[0]["error"];
    assert!(
        error.contains("invited as user 501, but the rest of the row was not done")
            && error.contains(
                "make the row an update of user 501 (action empty, user_id 501), then plan again"
            )
            && !error.contains("--resume"),
        "{text}"
    );
    server.verify().await;
}

/// A run that removes users refuses to start when the account's answer
/// does not name the key's own user as a user ID (a string, missing, null):
/// it could not keep from removing them. (The guard switched off silently,
/// and the key's own user was removed.) A run that only invites goes on.
#[tokio::test]
async fn a_removal_needs_to_know_the_keys_own_user() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rm.csv"), "action,user_id\nremove,1\n").unwrap();
    for me in [
        json!({"id": 4242, "currentUser": "1"}),
        json!({"id": 4242}),
        json!({"id": 4242, "currentUser": null}),
    ] {
        server.reset().await;
        Mock::given(method("GET"))
            .and(path("/iam/clients/me"))
            .respond_with(ResponseTemplate::new(200).set_body_json(me.clone()))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/iam/users/1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(user(1, "me@example.com")))
            .mount(&server)
            .await;
        Mock::given(method("DELETE"))
            .respond_with(ResponseTemplate::new(204))
            .expect(0)
            .mount(&server)
            .await;
        for command in ["apply", "plan"] {
            let args = [command, "rm.csv", "--rate", "0", "--overwrite"];
            let (code, stderr) = run_in(dir.path(), &server.uri(), &args).await;
            assert_eq!(code, 2, "{me}: {stderr}");
            assert!(
                stderr.contains("does not say which user the key acts as")
                    && stderr.contains("nothing was sent"),
                "{stderr}"
            );
        }
        server.verify().await;
    }
}

/// A redirect on the account's read names that read, not "account 1" (it
/// has no row), and says to check the base URL.
#[tokio::test]
async fn a_redirect_on_the_accounts_read_names_it() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rm.csv"), "action,user_id\nremove,1\n").unwrap();
    Mock::given(method("GET"))
        .and(path("/iam/clients/me"))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", "/login"))
        .mount(&server)
        .await;
    let args = ["apply", "rm.csv", "--rate", "0"];
    let (code, stderr) = run_in(dir.path(), &server.uri(), &args).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("HTTP 302 on GET /iam/clients/me") && stderr.contains("check --base-url"),
        "{stderr}"
    );
}

/// What a resumed run takes for its own doing, and what it never does: an
/// invitation whose next step failed is finished (its fields set, not
/// invited again); a removal the API refused (404) is not "removed" on
/// resume, and its undo row goes.
#[tokio::test]
async fn a_refusal_is_never_taken_for_this_runs_doing_on_resume() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.csv"),
        "action,user_id,email,groups,company\n\
         invite,,new@example.com,Users,NewCo\n\
         remove,5,,,\n",
    )
    .unwrap();
    let patch = |answer: ResponseTemplate| {
        Mock::given(method("PATCH"))
            .and(path("/iam/users/501"))
            .and(body_json(json!({"company": "NewCo"})))
            .respond_with(answer)
            .expect(1)
    };
    // The first run: the invitation goes, its PATCH fails; user 5 is gone
    // between the GET and the DELETE (someone else's doing).
    mount(
        &server,
        vec![user(5, "five@example.com")],
        vec![
            Mock::given(method("POST"))
                .respond_with(
                    ResponseTemplate::new(200)
                        .set_body_json(json!({"status": "ok", "user_id": 501})),
                )
                .expect(1),
            patch(ResponseTemplate::new(400).set_body_json(json!({"message": "not now"}))),
            Mock::given(method("GET"))
                .and(path("/iam/users/5"))
                .respond_with(
                    ResponseTemplate::new(200).set_body_json(user(5, "five@example.com")),
                ),
            Mock::given(method("DELETE"))
                .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "no"})))
                .expect(1),
        ],
    )
    .await;
    let args = [
        "apply",
        "in.csv",
        "--rate",
        "0",
        "--undo-file",
        "undo.csv",
        "--summary-json",
        "s.json",
    ];
    let (code, stderr) = run_in(dir.path(), &server.uri(), &args).await;
    assert_eq!(code, 1, "{stderr}");
    let (rows, text) = read_results_file(&dir.path().join("in.results.csv"));
    assert_eq!(rows[0]["status"], "failed", "{text}");
    assert!(
        rows[0]["error"].contains("invited as user 501, but the rest of the row was not done"),
        "{text}"
    );
    // The user exists all the same: among those the run changed, as the
    // undo file's note says.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("s.json")).unwrap()).unwrap();
    let invited = &summary["members"]["invited"];
    assert_eq!(invited["count"], 1, "{summary}");
    assert_eq!(invited["users"][0]["user_id"], "501", "{summary}");
    assert!(
        stderr.contains("the undo file removes the 1 user this run invited"),
        "{stderr}"
    );
    assert_eq!(rows[1]["status"], "failed", "{text}");
    server.verify().await;

    // The resume: user 501 is in the account, user 5 is not.
    mount(
        &server,
        vec![user(501, "new@example.com")],
        vec![
            Mock::given(method("POST"))
                .respond_with(ResponseTemplate::new(500))
                .expect(0),
            patch(ResponseTemplate::new(200).set_body_json(user(501, "new@example.com"))),
            Mock::given(method("GET"))
                .and(path("/iam/users/5"))
                .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "no"}))),
        ],
    )
    .await;
    let args = ["apply", "in.csv", "--rate", "0", "--resume"];
    let (code, stderr) = run_in(dir.path(), &server.uri(), &args).await;
    assert_eq!(code, 1, "{stderr}");
    let (rows, text) = read_results_file(&dir.path().join("in.results.csv"));
    assert_eq!(
        rows[0]["status"], "invited",
        "finished, not invited again: {text}"
    );
    assert_eq!(rows[1]["status"], "failed", "not this run's doing: {text}");
    let undo = std::fs::read_to_string(dir.path().join("undo.csv")).unwrap();
    assert!(undo.contains("501,,,,,,,,,remove"), "{undo}");
    assert!(!undo.contains("five@example.com"), "{undo}");
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_does_not_take_over_an_address_whose_invitation_was_refused() {
    let sandbox = started(10, Faults::default()).await;
    let url = sandbox.base_url();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.csv"),
        "action,email,groups,company\ninvite,first@example.com,Users,Acme\n\
         invite,victim@example.com,Users;Engineers,Acme\n",
    )
    .unwrap();
    let child = bin()
        .current_dir(dir.path())
        .args(["apply", "in.csv", "--rate", "1", "--base-url", &url])
        .env("GCORE_API_KEY", KEY)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let posts = |sandbox: &RunningSandbox| answered(sandbox, "POST");
    until("the first invitation", WITHIN, || posts(&sandbox) >= 1).await;
    // Someone else invites the second address before the run does.
    let client_id = get(&sandbox, "/iam/clients/me").await;
    let invited = common::http()
        .post(format!("{url}/iam/clients/invite_user"))
        .header("Authorization", format!("apikey {KEY}"))
        .json(
            &json!({"client_id": client_id["id"], "email": "victim@example.com",
                      "user_role": {"id": 2, "name": "Users"}, "name": "Someone Else"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(invited.status(), 200);
    let out = wait(child).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = members(&sandbox).await["victim@example.com"].clone();
    let (code, stderr) = run_in(dir.path(), &url, &["apply", "in.csv", "--resume"]).await;
    assert_eq!(code, 1, "{stderr}");
    let (rows, text) = read_results_file(&dir.path().join("in.results.csv"));
    assert_eq!(rows[1]["status"], "invalid", "{text}");
    assert!(
        rows[1]["error"].contains("already belongs to user"),
        "{text}"
    );
    assert_eq!(
        members(&sandbox).await["victim@example.com"],
        before,
        "untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_missing_refuses_a_user_id_that_is_no_user_and_a_members_file_that_is_no_file() {
    let sandbox = started(6, Faults::default()).await;
    let url = sandbox.base_url();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sheet.csv"),
        "user_id,company\n1,A\n2,A\n999,A\n4,A\n5,A\n6,A\n",
    )
    .unwrap();
    let (code, stderr) = run_in(dir.path(), &url, &["plan", "sheet.csv", "--remove-missing"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("user_id 999 is none"), "{stderr}");
    // A FIFO where a resumed run reads its members file: refused, not a hang.
    std::fs::write(
        dir.path().join("in.csv"),
        "action,email,groups\ninvite,x@example.com,Users\n",
    )
    .unwrap();
    let (code, stderr) = run_in(dir.path(), &url, &["apply", "in.csv"]).await;
    assert_eq!(code, 0, "{stderr}");
    let members_file = dir.path().join("in.results.csv.members");
    std::fs::remove_file(&members_file).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&members_file)
        .status()
        .unwrap();
    assert!(made.success());
    let (code, stderr) = run_in(dir.path(), &url, &["apply", "in.csv", "--resume"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not a plain file"), "{stderr}");
}

/// Requests that did not arrive (a 429) did nothing: an invitation
/// answered 429 to the end is not taken for this run's when someone else
/// invites the address; a DELETE answered 429 then 404 (someone else
/// removed the user meanwhile) is failed, not removed, and its undo row
/// goes.
#[tokio::test]
async fn a_request_that_did_not_arrive_is_never_taken_for_this_runs_doing() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.csv"),
        "action,user_id,email,groups\ninvite,,x@example.com,Users\nremove,5,,\n",
    )
    .unwrap();
    let throttled = || ResponseTemplate::new(429).insert_header("Retry-After", "0");
    mount(
        &server,
        vec![user(5, "five@example.com")],
        vec![
            Mock::given(method("POST")).respond_with(throttled()),
            Mock::given(method("GET"))
                .and(path("/iam/users/5"))
                .respond_with(
                    ResponseTemplate::new(200).set_body_json(user(5, "five@example.com")),
                ),
            Mock::given(method("DELETE"))
                .respond_with(throttled())
                .up_to_n_times(1)
                .with_priority(1),
            Mock::given(method("DELETE"))
                .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "no"})))
                .with_priority(2),
        ],
    )
    .await;
    let args = [
        "apply",
        "in.csv",
        "--rate",
        "0",
        "--max-retries",
        "1",
        "--undo-file",
        "undo.csv",
    ];
    let (code, stderr) = run_in(dir.path(), &server.uri(), &args).await;
    assert_eq!(code, 1, "{stderr}");
    let (rows, text) = read_results_file(&dir.path().join("in.results.csv"));
    assert_eq!(rows[0]["status"], "failed", "{text}");
    assert_eq!(rows[1]["status"], "failed", "{text}");
    let undo = std::fs::read_to_string(dir.path().join("undo.csv")).unwrap();
    assert!(!undo.contains("five@example.com"), "{undo}");

    // Someone else invites x@example.com; the resume leaves them alone.
    mount(
        &server,
        vec![user(77, "x@example.com")],
        vec![
            Mock::given(method("POST"))
                .respond_with(throttled())
                .expect(0),
            Mock::given(method("PATCH"))
                .respond_with(throttled())
                .expect(0),
            Mock::given(method("GET"))
                .and(path("/iam/users/5"))
                .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "no"}))),
        ],
    )
    .await;
    let args = ["apply", "in.csv", "--resume", "--skip-invalid"];
    let (code, stderr) = run_in(dir.path(), &server.uri(), &args).await;
    assert_eq!(code, 1, "{stderr}");
    let (rows, text) = read_results_file(&dir.path().join("in.results.csv"));
    assert_eq!(rows[0]["status"], "invalid", "{text}");
    assert!(
        rows[0]["error"].contains("already belongs to user 77"),
        "{text}"
    );
    // Gone now, but not by this run: failed, not removed.
    assert_eq!(rows[1]["status"], "failed", "{text}");
    server.verify().await;
}

/// Rows the record says were invited are kept on --resume even when the
/// members file is gone (their addresses in the account are the record's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_invitations_are_kept_without_the_members_file() {
    let sandbox = started(10, Faults::default()).await;
    let url = sandbox.base_url();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.csv"),
        "action,email,groups\ninvite,one@example.com,Users\ninvite,two@example.com,Users\n",
    )
    .unwrap();
    let (code, stderr) = run_in(dir.path(), &url, &["apply", "in.csv"]).await;
    assert_eq!(code, 0, "{stderr}");
    std::fs::remove_file(dir.path().join("in.results.csv.members")).unwrap();
    let (code, stderr) = run_in(dir.path(), &url, &["apply", "in.csv", "--resume"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("2 rows already done (updated, invited or removed)"),
        "{stderr}"
    );
    assert_eq!(sandbox.stats().by_method_status["POST"].get(&200), Some(&2));
}

/// The manual's way to finish an `apply --plan` that stopped: apply the
/// plan again, with another `-o` and `--undo-file`. Its invitations and
/// removals already done are `unchanged` and sent again to nobody (an
/// invitation was sent twice and refused, a removal's GET answered 404:
/// both `failed`, exit 1); an address invited since whose user differs
/// from the row is not invited either, and says to plan again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_applied_again_finds_its_invitations_and_removals_done() {
    let sandbox = started(20, Faults::default()).await;
    let url = sandbox.base_url();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("m.csv"),
        "action,user_id,email,groups,company,lang\n\
         invite,,n1@example.com,Users,NewCo,\n\
         invite,,n2@example.com,Users,,\n\
         remove,11,,,,\n\
         remove,12,,,,\n\
         ,13,,,,de\n",
    )
    .unwrap();
    let (code, stderr) = run_in(dir.path(), &url, &["plan", "m.csv"]).await;
    assert_eq!(code, 0, "{stderr}");
    // The plan applied, the Nth time: results rN.csv, undo file uN.csv.
    let apply_plan = |n: &str| {
        let (results, undo) = (format!("r{n}.csv"), format!("u{n}.csv"));
        let (dir, url) = (dir.path().to_path_buf(), url.clone());
        async move {
            let args = [
                "apply",
                "--plan",
                "m.plan.csv",
                "-o",
                &results,
                "--undo-file",
                &undo,
            ];
            run_in(&dir, &url, &args).await
        }
    };
    let (code, stderr) = apply_plan("1").await;
    assert_eq!(code, 0, "{stderr}");
    let writes = |sandbox: &RunningSandbox| {
        ["PATCH", "POST", "DELETE"]
            .iter()
            .map(|verb| answered(sandbox, verb))
            .sum::<u64>()
    };
    let before = writes(&sandbox);

    let (code, stderr) = apply_plan("2").await;
    assert_eq!(code, 0, "{stderr}");
    let (rows, text) = read_results_file(&dir.path().join("r2.csv"));
    for row in &rows {
        assert_eq!(row["status"], "unchanged", "{text}");
    }
    assert!(
        rows[0]["error"].contains("already as the plan would make it"),
        "{text}"
    );
    assert!(
        rows[2]["error"].contains("no longer in the account"),
        "{text}"
    );
    assert_eq!(writes(&sandbox), before, "nothing sent again");

    // n1 is changed by someone else since: not invited, not updated either.
    let n1 = members(&sandbox).await;
    assert!(n1.contains_key("n1@example.com"));
    std::fs::write(
        dir.path().join("other.csv"),
        "current_email,company\nn1@example.com,Other\n",
    )
    .unwrap();
    let (code, stderr) = run_in(dir.path(), &url, &["apply", "other.csv"]).await;
    assert_eq!(code, 0, "{stderr}");
    let before = writes(&sandbox);
    let (code, stderr) = apply_plan("3").await;
    assert_eq!(code, 1, "{stderr}");
    let (rows, text) = read_results_file(&dir.path().join("r3.csv"));
    assert_eq!(rows[0]["status"], "failed", "{text}");
    assert!(
        rows[0]["error"].contains("not invited: the address belongs to user")
            && rows[0]["error"].contains("company")
            && rows[0]["error"].contains("plan again"),
        "{text}"
    );
    assert_eq!(rows[1]["status"], "unchanged", "{text}");
    assert_eq!(writes(&sandbox), before, "nothing sent");
}

/// The user the key acts as (`currentUser` of `GET /iam/clients/me`, user
/// 1 in the sandbox) is never removed with it: a row that removes them is
/// `invalid` in the plan and in the run (nothing sent for it), and
/// `--remove-missing` leaves them out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keys_own_user_is_never_removed_with_it() {
    let sandbox = started(6, Faults::default()).await;
    let url = sandbox.base_url();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rm.csv"),
        "action,user_id\nremove,1\nremove,2\n",
    )
    .unwrap();
    let own = "user 1 is the user this API key acts as";
    let (code, stderr) = run_in(dir.path(), &url, &["plan", "rm.csv"]).await;
    assert_eq!(code, 1, "{stderr}");
    let (rows, text) = read_results_file(&dir.path().join("rm.plan.csv"));
    assert_eq!(rows[0]["status"], "invalid", "{text}");
    assert!(rows[0]["error"].contains(own), "{text}");
    assert_eq!(rows[1]["status"], "would_remove", "{text}");
    // Known once the account is read, before anything is sent: the run
    // stops as for any invalid row, unless --skip-invalid.
    let (code, stderr) = run_in(dir.path(), &url, &["apply", "rm.csv"]).await;
    assert_eq!(code, 1, "{stderr}");
    let (rows, text) = read_results_file(&dir.path().join("rm.results.csv"));
    assert_eq!(rows[0]["status"], "invalid", "{text}");
    assert!(rows[0]["error"].contains(own), "{text}");
    assert_eq!(rows[1]["status"], "not_attempted", "{text}");
    assert_eq!(answered(&sandbox, "DELETE"), 0);
    let args = ["apply", "rm.csv", "--skip-invalid", "--overwrite"];
    let (code, stderr) = run_in(dir.path(), &url, &args).await;
    assert_eq!(code, 1, "{stderr}");
    let (rows, text) = read_results_file(&dir.path().join("rm.results.csv"));
    assert_eq!(rows[0]["status"], "invalid", "{text}");
    assert_eq!(rows[1]["status"], "removed", "{text}");
    let left = members(&sandbox).await;
    assert_eq!(left.len(), 5, "{left:?}");
    assert_eq!(answered(&sandbox, "DELETE"), 1);

    // --remove-missing: every user no row names but the key's own.
    std::fs::write(dir.path().join("keep3.csv"), "user_id,lang\n3,de\n").unwrap();
    let args = ["plan", "keep3.csv", "--remove-missing"];
    let (code, stderr) = run_in(dir.path(), &url, &args).await;
    assert_eq!(code, 0, "{stderr}");
    let (rows, text) = read_results_file(&dir.path().join("keep3.plan.csv"));
    let removed: Vec<&str> = (rows.iter())
        .filter(|row| row["status"] == "would_remove")
        .map(|row| row["user_id"].as_str())
        .collect();
    assert_eq!(removed, ["4", "5", "6"], "{text}");
}
