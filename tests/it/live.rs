//! Against the live state, end to end with the built binary and the
//! sandbox: `plan` (and `--exit-code`), `apply --skip-unchanged`, and the
//! undo file that puts every user back.

use crate::common;

use std::path::Path;
use std::process::Output;

use common::{WITHIN, read_results_file, start_sandbox};
use gcore_iam_bulk::model::api::User;
use gcore_iam_bulk::sandbox::{Faults, RunningSandbox};

const KEY: &str = "live-test-key-0123456789";

/// `gcore-iam-bulk COMMAND INPUT --base-url ... ARGS` in `dir`, off the runtime.
async fn run(sandbox: &RunningSandbox, dir: &Path, command: &str, args: &[&str]) -> Output {
    let mut cmd = common::bin();
    cmd.current_dir(dir)
        .args([command])
        .args(args)
        .args(["--base-url", &sandbox.base_url()])
        .args(if args.contains(&"--rate") {
            &[][..]
        } else {
            &["--rate", "0"][..]
        })
        .env("GCORE_API_KEY", KEY)
        .env_remove("HTTPS_PROXY")
        .env_remove("HTTP_PROXY")
        .env_remove("ALL_PROXY");
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every user of the sandbox, by its list pages.
async fn users(sandbox: &RunningSandbox) -> Vec<User> {
    #[derive(serde::Deserialize)]
    struct Page {
        count: u64,
        results: Vec<User>,
    }
    let client = common::http();
    let mut all = Vec::new();
    loop {
        let url = format!(
            "{}/iam/users?limit=100&offset={}",
            sandbox.base_url(),
            all.len()
        );
        // The sandbox's faults answer some requests with 5xx: asked again.
        let response = client
            .get(url)
            .header("Authorization", format!("apikey {KEY}"))
            .send()
            .await;
        let Ok(response) = response.and_then(|r| r.error_for_status()) else {
            continue;
        };
        let page: Page = response.json().await.unwrap();
        let done = page.results.is_empty();
        all.extend(page.results);
        if done || all.len() as u64 >= page.count {
            return all;
        }
    }
}

fn other_lang(lang: &str) -> &'static str {
    if lang == "de" { "en" } else { "de" }
}

async fn sandbox(faults: Faults) -> RunningSandbox {
    start_sandbox(KEY, 11, faults).await
}

async fn start_sandbox_of(users: u64, faults: Faults) -> RunningSandbox {
    let config = gcore_iam_bulk::sandbox::SandboxConfig {
        users,
        api_key: KEY.to_string(),
        seed: 12,
        faults,
        given: None,
    };
    gcore_iam_bulk::sandbox::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_marks_exactly_the_rows_that_differ_and_changes_nothing() {
    let sandbox = sandbox(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let before = users(&sandbox).await;
    // Even users get another language; odd ones the one they have.
    let mut input = String::from("user_id,lang\n");
    for user in &before[..40] {
        let lang = user.lang.as_deref().unwrap();
        let id = user.id.unwrap();
        let want = if id % 2 == 0 { other_lang(lang) } else { lang };
        input.push_str(&format!("{id},{want}\n"));
    }
    input.push_str("999999,de\n");
    std::fs::write(dir.path().join("in.csv"), &input).unwrap();

    let output = run(&sandbox, dir.path(), "plan", &["in.csv", "--exit-code"]).await;
    let text = stderr(&output);
    // A user that does not exist is a problem, which outranks "would change".
    assert_eq!(output.status.code(), Some(1), "{text}");
    let (rows, _) = read_results_file(&dir.path().join("in.plan.csv"));
    assert_eq!(rows.len(), 41);
    for (row, user) in rows[..40].iter().zip(&before) {
        let id = user.id.unwrap();
        let lang = user.lang.as_deref().unwrap();
        if id % 2 == 0 {
            assert_eq!(row["status"], "would_update", "{row:?}");
            assert_eq!(
                row["changes"],
                format!("lang: {lang} -> {}", other_lang(lang))
            );
        } else {
            assert_eq!(row["status"], "unchanged", "{row:?}");
            assert_eq!(row["changes"], "");
        }
        // The user columns hold the live state the plan compared with.
        assert_eq!(row["lang"], lang);
        assert!(!row["planned_at"].is_empty());
    }
    assert_eq!(rows[40]["status"], "failed");
    assert!(rows[40]["error"].contains("404"), "{:?}", rows[40]);
    assert!(text.contains("fields that would change: lang 20"), "{text}");
    // Who would change, by ID and e-mail: the first users of the field.
    assert!(
        text.contains("who would change, rarest field first")
            && text.contains("  lang (20 users):\n    user 2 "),
        "{text}"
    );

    // In sync: exit 0; some row would change: exit 3.
    let in_sync: String = input
        .lines()
        .take(41)
        .filter(|l| !l.starts_with("999999"))
        .map(|l| match l.split_once(',') {
            Some((id, _)) if id != "user_id" => {
                let user = before
                    .iter()
                    .find(|u| u.id.unwrap().to_string() == id)
                    .unwrap();
                format!("{id},{}\n", user.lang.as_deref().unwrap())
            }
            _ => format!("{l}\n"),
        })
        .collect();
    std::fs::write(dir.path().join("sync.csv"), &in_sync).unwrap();
    let output = run(
        &sandbox,
        dir.path(),
        "plan",
        &["sync.csv", "--exit-code", "-o", "p.csv"],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let drift: String = input
        .lines()
        .filter(|l| !l.starts_with("999999"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.path().join("drift.csv"), drift).unwrap();
    // The earlier plan in p.csv is replaced without --overwrite.
    let output = run(
        &sandbox,
        dir.path(),
        "plan",
        &["drift.csv", "--exit-code", "-o", "p.csv"],
    )
    .await;
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    // Without --exit-code, a plan with changes and no problem is a success.
    let output = run(&sandbox, dir.path(), "plan", &["drift.csv", "-o", "p.csv"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let stats = sandbox.stats();
    assert!(!stats.by_method_status.contains_key("PATCH"), "{stats:?}");
    assert_eq!(users(&sandbox).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_unchanged_sends_only_the_fields_that_differ() {
    let sandbox = sandbox(Faults {
        error_rate: 0.2,
        ..Faults::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let before = users(&sandbox).await;
    let mut input = String::from("user_id,lang,company\n");
    for user in &before[..30] {
        let id = user.id.unwrap();
        let lang = user.lang.as_deref().unwrap();
        let company = user.company.as_deref().unwrap();
        // Every third user: a new company; the rest: what they have.
        let new_company = if id % 3 == 0 { "Contoso Ltd" } else { company };
        input.push_str(&format!("{id},{lang},{new_company}\n"));
    }
    std::fs::write(dir.path().join("in.csv"), &input).unwrap();
    let output = run(
        &sandbox,
        dir.path(),
        "apply",
        &["in.csv", "--skip-unchanged", "--max-retries", "20"],
    )
    .await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    let (rows, _) = read_results_file(&dir.path().join("in.results.csv"));
    for (row, user) in rows.iter().zip(&before) {
        let id = user.id.unwrap();
        if id % 3 == 0 && user.company.as_deref() != Some("Contoso Ltd") {
            assert_eq!(row["status"], "updated", "{row:?}");
            assert_eq!(row["request"], r#"{"company":"Contoso Ltd"}"#);
            assert_eq!(
                row["changes"],
                format!(
                    "company: {:?} -> \"Contoso Ltd\"",
                    user.company.as_deref().unwrap()
                )
            );
            assert_eq!(row["company"], "Contoso Ltd");
        } else {
            assert_eq!(row["status"], "unchanged", "{row:?}");
        }
    }
    let patched = sandbox.stats().patches_per_user;
    let want: Vec<u64> = (1..=30).filter(|id| id % 3 == 0).collect();
    assert_eq!(patched.keys().copied().collect::<Vec<_>>(), want);
    assert!(patched.values().all(|n| *n == 1), "{patched:?}");
    assert!(text.contains("fields that changed: company 10"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_undo_file_puts_every_user_back_as_it_was() {
    let sandbox = sandbox(Faults {
        error_rate: 0.1,
        drop_rate: 0.05,
        ..Faults::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let before = users(&sandbox).await;
    // Every field, cleared, set, grown and shrunk, over 100 users.
    let mut input = String::from("user_id,email,name,lang,phone,company,groups,auth_types\n");
    for id in 1..=100u64 {
        let row = match id % 5 {
            0 => format!("{id},new{id}@example.com,#null,,,,,"),
            1 => format!("{id},,Renamed {id},ru,#null,,Engineers;Users,github"),
            2 => format!("{id},,,,+49 30 {id},Fabrikam,Administrators,password;sso"),
            3 => format!("{id},,,zh,,,,"),
            _ => format!("{id},,#null,,,,Users,"),
        };
        input.push_str(&row);
        input.push('\n');
    }
    std::fs::write(dir.path().join("in.csv"), &input).unwrap();
    let output = run(
        &sandbox,
        dir.path(),
        "apply",
        &["in.csv", "--undo-file", "undo.csv", "--max-retries", "20"],
    )
    .await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("undo: undo.csv"), "{text}");
    assert_ne!(users(&sandbox).await, before);

    // The undo file refuses to be replaced by the next run...
    let again = run(
        &sandbox,
        dir.path(),
        "apply",
        &["in.csv", "--undo-file", "undo.csv", "-o", "r2.csv"],
    )
    .await;
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("only way back"),
        "{}",
        stderr(&again)
    );

    // ...and puts every user back.
    let output = run(
        &sandbox,
        dir.path(),
        "apply",
        &["undo.csv", "--max-retries", "20"],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // Every field equal; groups and auth types as sets (their order means
    // nothing to the API, and a row that kept the same set sent it reordered).
    let sets = |mut user: User| {
        if let Some(groups) = &mut user.groups {
            groups.sort_by_key(|g| g.id);
        }
        if let Some(auth) = &mut user.auth_types {
            auth.sort();
        }
        user
    };
    let after = users(&sandbox).await;
    assert_eq!(after.len(), before.len());
    for (a, b) in after.into_iter().zip(before) {
        let id = b.id;
        assert_eq!(sets(a), sets(b), "user {id:?}");
    }
}

/// `export` in `dir` (`args` after it).
async fn export(sandbox: &RunningSandbox, dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--page-size", "300"];
    all.extend_from_slice(args);
    run(sandbox, dir, "export", &all).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_lists_every_user_and_a_plan_of_it_changes_nothing() {
    let sandbox = start_sandbox_of(
        2500,
        Faults {
            error_rate: 0.1,
            ..Faults::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let output = export(
        &sandbox,
        dir.path(),
        &["--summary-json", "export.json", "--max-retries", "20"],
    )
    .await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("exported 2500 users (9 pages) to users.csv"),
        "{text}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("export.json")).unwrap())
            .unwrap();
    assert_eq!(summary["users"], 2500);
    assert_eq!(summary["pages"], 9);
    assert_eq!(summary["command"], "export");
    assert_eq!(summary["dry_run"], false);
    assert_eq!(summary["input"], serde_json::Value::Null);
    assert_eq!(summary["version"], env!("CARGO_PKG_VERSION"));
    assert!(summary["started_at"].as_str().unwrap().ends_with('Z'));

    // Every user, once, in the order of the list, with every field.
    let exported = std::fs::read_to_string(dir.path().join("users.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(exported.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "user_id",
            "email",
            "name",
            "lang",
            "phone",
            "company",
            "groups",
            "auth_types",
            "verbatim",
            "activated",
            "deleted",
            "is_active",
            "two_fa",
            "sso_auth",
            "user_type"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let live = users(&sandbox).await;
    assert_eq!(rows.len(), live.len());
    for (row, user) in rows.iter().zip(&live) {
        assert_eq!(row[0], user.id.unwrap().to_string());
        assert_eq!(&row[1], user.email.as_deref().unwrap());
        assert_eq!(&row[2], user.name.as_deref().unwrap_or("#null"));
        assert_eq!(&row[4], user.phone.as_deref().unwrap_or("#null"));
        assert_eq!(&row[14], user.user_type.as_deref().unwrap());
    }

    // An existing file is not replaced.
    let again = export(&sandbox, dir.path(), &[]).await;
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(stderr(&again).contains("--overwrite"));

    // The export is a valid input as it stands, and the account already
    // has every value in it: every row unchanged, no PATCH.
    let plan = run(
        &sandbox,
        dir.path(),
        "plan",
        &["users.csv", "--exit-code", "--max-retries", "20"],
    )
    .await;
    let text = stderr(&plan);
    assert_eq!(plan.status.code(), Some(0), "{text}");
    assert!(text.contains("are read-only"), "{text}");
    let (rows, _) = read_results_file(&dir.path().join("users.plan.csv"));
    assert_eq!(rows.len(), 2500);
    assert!(
        rows.iter().all(|r| r["status"] == "unchanged"),
        "{:?}",
        rows.iter().find(|r| r["status"] != "unchanged")
    );
    assert!(!sandbox.stats().by_method_status.contains_key("PATCH"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_cut_short_writes_nothing() {
    let sandbox = start_sandbox_of(
        1000,
        Faults {
            error_rate: 1.0,
            ..Faults::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let output = export(&sandbox, dir.path(), &["--max-retries", "1"]).await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("nothing written to users.csv"), "{text}");
    assert!(text.contains("could not be read"), "{text}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exports_notes_and_verbose_lines_speak_of_pages() {
    // One request a second: the second page meets a 429 and a pause.
    let sandbox = start_sandbox_of(
        1000,
        Faults {
            rate: Some((1.0, 1)),
            ..Faults::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let output = export(&sandbox, dir.path(), &["--rate", "20", "-v"]).await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("throttled (HTTP 429 on page "), "{text}");
    // Pages are numbered as in the list: each page after the first begins
    // with the last user of the one before, so page 2 is at offset 299.
    assert!(
        text.contains(" page 2 GET /iam/users?limit=300&offset=299 -> "),
        "{text}"
    );
    assert!(text.contains(": page read"), "{text}");
    assert!(!text.contains(" row "), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_by_email_resolve_across_pages_and_say_which_address_is_wrong() {
    let sandbox = start_sandbox_of(
        1200,
        Faults {
            error_rate: 0.1,
            ..Faults::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let live = users(&sandbox).await;
    let email = |id: u64| live[id as usize - 1].email.clone().unwrap();
    // User 7 takes user 8's address: that address now names two users.
    let taken = email(8);
    set(&sandbox, 7, serde_json::json!({ "email": taken })).await;
    let input = format!(
        "current_email,user_id,lang\n\
         {},,ru\n\
         {},,zh\n\
         {},1150,az\n\
         {taken},,de\n\
         nobody@example.com,,de\n\
         {},,en\n",
        email(1190).to_uppercase(),
        email(3),
        email(1150),
        email(1190),
    );
    std::fs::write(dir.path().join("in.csv"), input).unwrap();
    let output = run(
        &sandbox,
        dir.path(),
        "apply",
        &["in.csv", "--skip-invalid", "--max-retries", "20"],
    )
    .await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let (rows, _) = read_results_file(&dir.path().join("in.results.csv"));
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["user_id"].as_str(), r["status"].as_str()))
        .collect();
    // Any case; across pages (users 1150 and 1190 are on the third page of
    // 500); user_id and address agreeing; two users with one address, an
    // unknown one, and two rows naming user 1190 are invalid.
    assert_eq!(
        got,
        [
            ("1190", "invalid"),
            ("3", "updated"),
            ("1150", "updated"),
            ("", "invalid"),
            ("", "invalid"),
            ("1190", "invalid"),
        ]
    );
    assert!(
        rows[0]["error"].contains("1190 is also on row 7"),
        "{:?}",
        rows[0]
    );
    assert!(
        rows[3]["error"].contains("2 users of the account have the address")
            && rows[3]["error"].contains("IDs 7, 8"),
        "{:?}",
        rows[3]
    );
    assert!(rows[4]["error"].contains("no user of the account has the address"));
    assert_eq!(rows[1]["lang"], "zh");
    assert_eq!(rows[2]["lang"], "az");
    let patched = sandbox.stats().patches_per_user;
    assert_eq!(patched.keys().copied().collect::<Vec<_>>(), [3, 7, 1150]);

    // A user_id that disagrees with the address is caught.
    std::fs::write(
        dir.path().join("both.csv"),
        format!("user_id,current_email,lang\n4,{},de\n", email(5)),
    )
    .unwrap();
    let output = run(&sandbox, dir.path(), "plan", &["both.csv"]).await;
    assert_eq!(output.status.code(), Some(1));
    let (rows, _) = read_results_file(&dir.path().join("both.plan.csv"));
    assert!(
        rows[0]["error"].contains("is user 5, but user_id says 4"),
        "{:?}",
        rows[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_plan_sends_what_the_plan_showed_and_nothing_for_users_changed_since() {
    let sandbox = sandbox(Faults {
        error_rate: 0.1,
        ..Faults::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let before = users(&sandbox).await;
    let mut input = String::from("user_id,lang,company\n");
    for user in &before[..20] {
        let id = user.id.unwrap();
        let lang = other_lang(user.lang.as_deref().unwrap());
        // Every fourth row changes nothing the user does not have already.
        match id % 4 {
            0 => input.push_str(&format!("{id},{},\n", user.lang.as_deref().unwrap())),
            _ => input.push_str(&format!("{id},{lang},Planned Co\n")),
        }
    }
    std::fs::write(dir.path().join("in.csv"), &input).unwrap();
    let output = run(
        &sandbox,
        dir.path(),
        "plan",
        &["in.csv", "--max-retries", "20"],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    // Behind the plan's back: user 2's language, user 3's company (to the
    // planned value), and user 4 (planned unchanged) gets another language.
    for (id, body) in [
        (2, serde_json::json!({"lang": "az"})),
        (3, serde_json::json!({"company": "Planned Co"})),
        (4, serde_json::json!({"lang": "zh"})),
    ] {
        set(&sandbox, id, body).await;
    }
    let output = run(
        &sandbox,
        dir.path(),
        "apply",
        &["--plan", "in.plan.csv", "--max-retries", "20"],
    )
    .await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let (rows, _) = read_results_file(&dir.path().join("in.results.csv"));
    assert_eq!(rows.len(), 20);
    for row in &rows {
        let id: u64 = row["user_id"].parse().unwrap();
        let want = match id {
            2 | 3 => "failed",
            _ if id.is_multiple_of(4) => "unchanged",
            _ => "updated",
        };
        assert_eq!(row["status"], want, "{row:?}");
    }
    assert!(
        rows[1]["error"].contains("changed since the plan, nothing sent: lang: "),
        "{:?}",
        rows[1]
    );
    assert!(rows[1]["error"].contains(" now"), "{:?}", rows[1]);
    assert!(
        rows[2]["error"].contains("already \"Planned Co\", the planned value"),
        "{:?}",
        rows[2]
    );
    // Only the planned fields were sent, and only to users still as planned.
    let patched = sandbox.stats().patches_per_user;
    for id in 1..=20u64 {
        let by_test = [2, 3, 4].contains(&id) as u64;
        let by_apply = (id % 4 != 0 && id != 2 && id != 3) as u64;
        assert_eq!(
            patched.get(&id).copied().unwrap_or(0),
            by_test + by_apply,
            "user {id}"
        );
    }
    assert!(
        text.contains("fields that changed: lang 13, company 13"),
        "{text}"
    );

    // The same plan again (after a run cut short, say): the users it changed
    // are already as planned, unchanged, and nothing is sent to them.
    let patches = sandbox.stats().patches_per_user;
    let again = run(
        &sandbox,
        dir.path(),
        "apply",
        &[
            "--plan",
            "in.plan.csv",
            "-o",
            "again.csv",
            "--max-retries",
            "20",
        ],
    )
    .await;
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    let (rows, _) = read_results_file(&dir.path().join("again.csv"));
    let updated_before = rows
        .iter()
        .filter(|r| r["error"] == "already as the plan would make it")
        .count();
    assert_eq!(updated_before, 13, "{rows:?}");
    assert!(rows.iter().all(|r| r["status"] != "updated"));
    assert_eq!(sandbox.stats().patches_per_user, patches);

    // Only a whole plan made by plan is taken.
    let results = dir.path().join("in.results.csv");
    let whole = std::fs::read_to_string(dir.path().join("in.plan.csv")).unwrap();
    std::fs::write(dir.path().join("cut.csv"), &whole[..whole.len() - 10]).unwrap();
    let edited = whole.replacen(r#"{""lang"":"#, r#"{""langue"":"#, 1);
    std::fs::write(dir.path().join("edited.csv"), edited).unwrap();
    // A row said unchanged made would_update, with a body nobody reviewed.
    let promoted = whole.replacen(",unchanged,", ",would_update,", 1);
    std::fs::write(dir.path().join("promoted.csv"), promoted).unwrap();
    let mut lines: Vec<&str> = whole.lines().collect();
    lines.remove(5);
    std::fs::write(dir.path().join("removed.csv"), lines.join("\n") + "\n").unwrap();
    std::fs::write(dir.path().join("semicolons.csv"), whole.replace(',', ";")).unwrap();
    // Columns renamed in the header: user IDs read from another column.
    let renamed = whole.replacen("row,user_id", "user_id,row", 1);
    std::fs::write(dir.path().join("renamed.csv"), renamed).unwrap();
    // The last row removed, the file still ending with a line break.
    let mut lines: Vec<&str> = whole.lines().collect();
    lines.pop();
    std::fs::write(dir.path().join("tail.csv"), lines.join("\n") + "\n").unwrap();
    // Saved again with CRLF line ends and the fourth line (row 4) edited:
    // named at line 4 (it was named at line 3, the csv crate's count).
    let mut lines: Vec<String> = whole.lines().map(str::to_string).collect();
    lines[3] = lines[3].replacen(r#"{""lang"":"#, r#"{""langue"":"#, 1);
    std::fs::write(dir.path().join("crlf.csv"), lines.join("\r\n") + "\r\n").unwrap();
    let row = lines[3].split(',').next().unwrap().to_string();
    let crlf = format!("line 4 (row {row}) is not as plan wrote it");
    for (file, want) in [
        ("crlf.csv", crlf.as_str()),
        ("in.results.csv", "not the results file of `plan`"),
        ("cut.csv", "is not as plan wrote it"),
        ("edited.csv", "is not as plan wrote it"),
        ("promoted.csv", "is not as plan wrote it"),
        ("removed.csv", "is not as plan wrote it"),
        ("semicolons.csv", "saved again with semicolons"),
        ("renamed.csv", "is not as plan wrote it"),
        ("tail.csv", "rows were removed"),
        ("in.csv", "not the results file of `plan`"),
    ] {
        let output = run(
            &sandbox,
            dir.path(),
            "apply",
            &["--plan", file, "-o", "x.csv"],
        )
        .await;
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{file}: {text}");
        assert!(text.contains(want), "{file}: {text}");
    }
    assert!(results.exists());
    // --resume with --plan: what to do instead (it was clap's bare conflict).
    let args = ["--plan", "in.plan.csv", "--resume"];
    let output = run(&sandbox, dir.path(), "apply", &args).await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("--resume does not go with --plan: a plan is not resumed; to finish one")
            && text.contains("apply it again to another file with -o"),
        "{text}"
    );
}

/// PATCHes `body` to user `id` of the sandbox, until it is accepted.
async fn set(sandbox: &RunningSandbox, id: u64, body: serde_json::Value) {
    let client = common::http();
    loop {
        let sent = client
            .patch(format!("{}/iam/users/{id}", sandbox.base_url()))
            .header("Authorization", format!("apikey {KEY}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        if sent.status().is_success() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skip_unchanged_run_resumes_and_an_edited_unsent_field_is_caught() {
    let sandbox = sandbox(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let before = users(&sandbox).await;
    let lang = before[99].lang.clone().unwrap();
    // Row 2: lang already right (not sent), company new; row 3: no such user.
    let input = format!("user_id,lang,company\n100,{lang},Resume Co\n999999,en,X\n");
    std::fs::write(dir.path().join("in.csv"), &input).unwrap();
    let first = run(
        &sandbox,
        dir.path(),
        "apply",
        &["in.csv", "--skip-unchanged"],
    )
    .await;
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    let again = run(
        &sandbox,
        dir.path(),
        "apply",
        &["in.csv", "--skip-unchanged", "--resume"],
    )
    .await;
    let text = stderr(&again);
    assert_eq!(again.status.code(), Some(1), "{text}");
    assert!(
        text.contains("1 row already updated, kept as recorded"),
        "{text}"
    );
    let (rows, _) = read_results_file(&dir.path().join("in.results.csv"));
    assert_eq!(rows[0]["request"], r#"{"company":"Resume Co"}"#);
    assert_eq!(sandbox.stats().patches_per_user.get(&100), Some(&1));
    // The value of the field not sent edited since: not the row recorded.
    let edited = input.replacen(&format!(",{lang},"), &format!(",{},", other_lang(&lang)), 1);
    std::fs::write(dir.path().join("in.csv"), edited).unwrap();
    let edited = run(
        &sandbox,
        dir.path(),
        "apply",
        &["in.csv", "--skip-unchanged", "--resume"],
    )
    .await;
    assert_eq!(edited.status.code(), Some(2), "{}", stderr(&edited));
    assert!(stderr(&edited).contains("is not the row the run recorded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_undo_file_is_kept_from_every_other_run_and_holds_odd_values_exactly() {
    let sandbox = sandbox(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    set(&sandbox, 1, serde_json::json!({"name": "  spaced  "})).await;
    set(&sandbox, 2, serde_json::json!({"company": "#NULL"})).await;
    let before = users(&sandbox).await;
    let input = "user_id,name,company,lang\n1,New One,,\n2,,NewCo,\n3,,,zh\n";
    std::fs::write(dir.path().join("in.csv"), input).unwrap();
    let output = run(
        &sandbox,
        dir.path(),
        "apply",
        &["in.csv", "--undo-file", "undo.csv", "--null-token", "NULL"],
    )
    .await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(!text.contains("cannot"), "{text}");
    let undo = std::fs::read_to_string(dir.path().join("undo.csv")).unwrap();
    // The API's own values as JSON, marked verbatim, whatever the
    // --null-token: spaces and "#NULL" come back as they were.
    // Lines come in the order the users were answered: sorted by user here.
    let mut rows: Vec<Vec<String>> = csv::Reader::from_reader(undo.as_bytes())
        .records()
        .map(|record| record.unwrap().iter().map(String::from).collect())
        .collect();
    rows.sort_by(|a, b| a[0].cmp(&b[0]));
    assert_eq!(rows[0][..3], ["1", "", "\"  spaced  \""], "{undo}");
    assert_eq!(rows[0][8], "json", "{undo}");
    assert_eq!(rows[1][5], "\"#NULL\"", "{undo}");
    assert_eq!(rows[2][..3], ["3", "", ""], "{undo}");
    assert!(rows[2][3].starts_with('"'), "{undo}");
    assert!(!undo.contains(",NULL"), "{undo}");

    for (args, want) in [
        (
            vec![
                "in.csv",
                "--undo-file",
                "undo.csv",
                "-o",
                "two.csv",
                "--overwrite",
            ],
            "(--overwrite does not replace it)",
        ),
        (
            vec![
                "in.csv",
                "--undo-file",
                "undo.csv",
                "-o",
                "fresh.csv",
                "--resume",
            ],
            "already exists",
        ),
        (
            vec![
                "in.csv",
                "--undo-file",
                "s.json",
                "--summary-json",
                "s.json",
                "-o",
                "x.csv",
            ],
            "is also the undo file",
        ),
    ] {
        let output = run(&sandbox, dir.path(), "apply", &args).await;
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {text}");
        assert!(text.contains(want), "{args:?}: {text}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("undo.csv")).unwrap(),
        undo
    );
    let output = common::bin()
        .current_dir(dir.path())
        .args(["apply", "in.csv", "--sandbox", "--undo-file", "u2.csv"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));

    // The undo file applies with no flag, exactly, and plan does not
    // replace a run's record.
    let output = run(&sandbox, dir.path(), "apply", &["undo.csv"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(users(&sandbox).await[..3], before[..3]);
    let output = run(
        &sandbox,
        dir.path(),
        "apply",
        &["in.csv", "-o", "in.plan.csv"],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let output = run(&sandbox, dir.path(), "plan", &["in.csv"]).await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("records a run that sent requests"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_reads_the_list_when_that_takes_fewer_requests_than_a_get_per_row() {
    let sandbox = sandbox(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let before = users(&sandbox).await;
    let requests_before = sandbox.stats().requests;
    // 300 rows of a 1,000-user account: 1 request for the count, 2 pages.
    let mut input = String::from("user_id,lang\n");
    for user in &before[..300] {
        input.push_str(&format!(
            "{},{}\n",
            user.id.unwrap(),
            other_lang(user.lang.as_deref().unwrap())
        ));
    }
    std::fs::write(dir.path().join("many.csv"), &input).unwrap();
    let output = run(&sandbox, dir.path(), "plan", &["many.csv"]).await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains(
            "reading the account's 1000 users by pages (3 requests with the count) rather than \
             one GET for each of 300 rows"
        ),
        "{text}"
    );
    assert_eq!(sandbox.stats().requests - requests_before, 3);
    let (rows, _) = read_results_file(&dir.path().join("many.plan.csv"));
    assert!(
        rows.iter().all(|r| r["status"] == "would_update"),
        "{rows:?}"
    );
    // apply --skip-unchanged --undo-file of the same rows: the list, then
    // for each row that changes a GET just before its PATCH (the undo line
    // holds what the PATCH replaces); and the undo file puts them back.
    let requests_before = sandbox.stats().requests;
    let output = run(
        &sandbox,
        dir.path(),
        "apply",
        &["many.csv", "--skip-unchanged", "--undo-file", "undo.csv"],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(sandbox.stats().requests - requests_before, 3 + 2 * 300);
    let output = run(&sandbox, dir.path(), "apply", &["undo.csv"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(users(&sandbox).await, before);
    // 2 rows: a GET each, no list.
    std::fs::write(dir.path().join("few.csv"), "user_id,lang\n1,de\n2,de\n").unwrap();
    let requests_before = sandbox.stats().requests;
    let output = run(&sandbox, dir.path(), "plan", &["few.csv"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(sandbox.stats().requests - requests_before, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_killed_or_with_invalid_rows_sends_nothing() {
    let sandbox = sandbox(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    // Killed while it reads: no plan passes for a whole one.
    // Two rows: a GET each, the second 2 s after the first; killed once
    // the first has come.
    std::fs::write(dir.path().join("in.csv"), common::lang_rows(2)).unwrap();
    let mut planning = common::bin()
        .current_dir(dir.path())
        .args([
            "plan",
            "in.csv",
            "--rate",
            "0.5",
            "--base-url",
            &sandbox.base_url(),
        ])
        .env("GCORE_API_KEY", KEY)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    common::until("the plan's first GET", WITHIN, || {
        sandbox.stats().requests >= 1
    })
    .await;
    common::kill(planning.id(), "KILL");
    let _ = planning.wait();
    let output = run(&sandbox, dir.path(), "apply", &["--plan", "in.plan.csv"]).await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(!sandbox.stats().by_method_status.contains_key("PATCH"));

    // A plan with an invalid row sends nothing, unless --skip-invalid.
    std::fs::write(
        dir.path().join("bad.csv"),
        "user_id,lang\n1,zh\n2,xx\n3,zh\n",
    )
    .unwrap();
    let output = run(&sandbox, dir.path(), "plan", &["bad.csv"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let output = run(&sandbox, dir.path(), "apply", &["--plan", "bad.plan.csv"]).await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("nothing sent: 1 row is of the plan invalid")
            || text.contains("nothing sent: 1 row is"),
        "{text}"
    );
    assert!(!sandbox.stats().by_method_status.contains_key("PATCH"));
    let output = run(
        &sandbox,
        dir.path(),
        "apply",
        &["--plan", "bad.plan.csv", "--skip-invalid", "-o", "skip.csv"],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let patched = sandbox.stats().patches_per_user;
    assert_eq!(patched.keys().copied().collect::<Vec<_>>(), [1, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_changed_after_the_list_was_read_is_named_in_its_row() {
    let sandbox = sandbox(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let before = users(&sandbox).await;
    // 20 rows: the language each user has (not sent), a new company (sent).
    let mut input = String::from("user_id,lang,company\n");
    for user in &before[..20] {
        let lang = user.lang.as_deref().unwrap();
        input.push_str(&format!("{},{lang},Drift Co\n", user.id.unwrap()));
    }
    std::fs::write(dir.path().join("in.csv"), &input).unwrap();
    let running = run(
        &sandbox,
        dir.path(),
        "apply",
        &["in.csv", "--skip-unchanged", "--rate", "10"],
    );
    // The run reads the list at once, then sends a PATCH every 0.1 s: user
    // 18's language changes once the first PATCH has come, 1.6 s before
    // its turn.
    let change = async {
        common::until("the first PATCH", WITHIN, || {
            sandbox.stats().by_method_status.contains_key("PATCH")
        })
        .await;
        let lang = other_lang(before[17].lang.as_deref().unwrap());
        set(&sandbox, 18, serde_json::json!({ "lang": lang })).await;
    };
    let (output, ()) = tokio::join!(running, change);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let (rows, _) = read_results_file(&dir.path().join("in.results.csv"));
    assert_eq!(rows[17]["status"], "updated");
    assert!(
        rows[17]["error"].starts_with("updated, but the user now differs from the row: lang: "),
        "{:?}",
        rows[17]
    );
    assert!(rows[..17].iter().all(|r| r["error"].is_empty()), "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spreadsheets_damage_to_numbers_is_stopped_unless_allowed() {
    let sandbox = sandbox(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    set(&sandbox, 1, serde_json::json!({"phone": "+49301234567"})).await;
    set(&sandbox, 2, serde_json::json!({"phone": "0301234567"})).await;
    set(&sandbox, 3, serde_json::json!({"name": "007"})).await;
    // What a spreadsheet's "save as CSV" makes of them, and a real change.
    let input = "user_id,phone,name\n1,49301234567,\n2,301234567,\n3,,7\n4,+1 555 0100,\n";
    std::fs::write(dir.path().join("in.csv"), input).unwrap();
    let output = run(&sandbox, dir.path(), "plan", &["in.csv"]).await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("3 rows stopped: the change looks like a spreadsheet's damage to a number"),
        "{text}"
    );
    let (rows, _) = read_results_file(&dir.path().join("in.plan.csv"));
    let statuses: Vec<&str> = rows.iter().map(|r| r["status"].as_str()).collect();
    assert_eq!(statuses, ["invalid", "invalid", "invalid", "would_update"]);
    assert!(
        rows[0]["error"].contains("lost its leading +"),
        "{:?}",
        rows[0]
    );
    assert!(
        rows[1]["error"].contains("lost its leading zeros"),
        "{:?}",
        rows[1]
    );
    assert!(
        rows[2]["error"].starts_with("name: \"007\" would become \"7\""),
        "{:?}",
        rows[2]
    );

    // apply --skip-unchanged stops them too, before anything is sent:
    // invalid rows stop the run, as they do in any run.
    let output = run(
        &sandbox,
        dir.path(),
        "apply",
        &["in.csv", "--skip-unchanged", "-o", "stopped.csv"],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("nothing sent: 3 rows are invalid"));
    let (rows, _) = read_results_file(&dir.path().join("stopped.csv"));
    let statuses: Vec<&str> = rows.iter().map(|r| r["status"].as_str()).collect();
    assert_eq!(statuses, ["invalid", "invalid", "invalid", "not_attempted"]);
    assert_eq!(sandbox.stats().patches_per_user.get(&4), None);
    // With --skip-invalid, the real change goes.
    let output = run(
        &sandbox,
        dir.path(),
        "apply",
        &["in.csv", "--skip-unchanged", "--skip-invalid"],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let patched = sandbox.stats().patches_per_user;
    assert_eq!(patched.get(&4), Some(&1));
    assert_eq!(
        [1, 2, 3].map(|id| patched[&id]),
        [1, 1, 1],
        "only the test's own PATCHes"
    );

    // Meant: allowed.
    let output = run(
        &sandbox,
        dir.path(),
        "plan",
        &["in.csv", "--allow-number-changes", "-o", "p2.csv"],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// The files of an export are checked before anything is read: a summary
/// that is the export, or that cannot be written, stops it at once, with
/// nothing written and no temporary name in the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exports_files_are_checked_before_anything_is_read() {
    let sandbox = start_sandbox_of(20, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let same = export(
        &sandbox,
        dir.path(),
        &["-o", "u.csv", "--summary-json", "u.csv"],
    )
    .await;
    let text = stderr(&same);
    assert_eq!(same.status.code(), Some(2), "{text}");
    assert!(text.contains("u.csv is the results file"), "{text}");
    assert!(!dir.path().join("u.csv").exists());
    let missing = dir.path().join("no-such-folder").join("s.json");
    let missing = missing.to_str().unwrap();
    let unwritable = export(&sandbox, dir.path(), &["--summary-json", missing]).await;
    let text = stderr(&unwritable);
    assert_eq!(unwritable.status.code(), Some(2), "{text}");
    assert!(text.contains("s.json"), "{text}");
    assert!(!text.contains("probe"), "a temporary name: {text}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A page of the largest size `--page-size` allows is read whole: the
/// bound on an answer grows with the users it asks for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_thousands_of_users_is_read() {
    let sandbox = start_sandbox_of(5000, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        &sandbox,
        dir.path(),
        "export",
        &["--page-size", "10000", "-o", "all.csv"],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = std::fs::read_to_string(dir.path().join("all.csv")).unwrap();
    assert_eq!(text.lines().count(), 5001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_plan_reads_the_list_by_pages_not_each_user() {
    // 1,200 users, every one planned: the account's list in three pages,
    // then a PATCH per row, where a GET per row doubled the requests.
    let sandbox = start_sandbox_of(1200, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let before = users(&sandbox).await;
    let mut input = String::from("user_id,lang\n");
    for user in &before {
        let lang = other_lang(user.lang.as_deref().unwrap());
        input.push_str(&format!("{},{lang}\n", user.id.unwrap()));
    }
    std::fs::write(dir.path().join("in.csv"), &input).unwrap();
    let output = run(&sandbox, dir.path(), "plan", &["in.csv"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // Behind the plan's back, before apply reads the list: seen, not sent.
    set(&sandbox, 7, serde_json::json!({"lang": "az"})).await;
    let gets_before = sandbox.stats().by_method_status["GET"]
        .values()
        .sum::<u64>();
    let output = run(&sandbox, dir.path(), "apply", &["--plan", "in.plan.csv"]).await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let stats = sandbox.stats();
    let gets = stats.by_method_status["GET"].values().sum::<u64>() - gets_before;
    let patches = stats.by_method_status["PATCH"].values().sum::<u64>();
    let (rows, _) = read_results_file(&dir.path().join("in.results.csv"));
    let attempts: u64 = rows
        .iter()
        .map(|row| row["attempts"].parse::<u64>().unwrap())
        .sum();
    // The list's three pages (500 users each), then the rows' own requests:
    // a PATCH each (user 7's none), and a page read again by a row when its
    // page got older than 5 s on a slow machine (its attempts say so).
    assert_eq!(gets + patches - 1, 3 + attempts, "{text}");
    assert!(
        attempts < 1200 + 20,
        "about one request per row: {attempts}"
    );
    for row in &rows {
        let status = match row["user_id"].as_str() {
            "7" => "failed",
            _ => "updated",
        };
        assert_eq!(row["status"], status, "{row:?}");
    }
    let seven = rows.iter().find(|row| row["user_id"] == "7").unwrap();
    assert!(
        seven["error"].contains("changed since the plan, nothing sent: lang: "),
        "{seven:?}"
    );
    assert!(
        text.contains("reading the account's 1200 users by pages"),
        "{text}"
    );
}
