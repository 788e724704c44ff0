//! `apply` end to end: the built binary against wiremock on port 0. Timing
//! assertions are one-sided and wide; speed is measured in benchmarks.

use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::common;

use common::{Row, read_results_file};

const KEY: &str = "test-key-5f1c9a7e";

struct Run {
    output: Output,
    results: Vec<Row>,
    results_text: String,
    dir: tempfile::TempDir,
}

impl Run {
    fn code(&self) -> i32 {
        self.output.status.code().expect("exited")
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    fn row(&self, row: u64) -> &Row {
        self.results
            .iter()
            .find(|r| r["row"] == row.to_string())
            .unwrap_or_else(|| panic!("no results row {row}"))
    }
    fn summary_json(&self) -> Value {
        let text = std::fs::read_to_string(self.dir.path().join("summary.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }
    /// The key must never reach what the user or a log collector reads.
    fn assert_no_key(&self) {
        for (what, text) in [
            ("stdout", self.stdout()),
            ("stderr", self.stderr()),
            ("results", self.results_text.clone()),
        ] {
            assert!(!text.contains(KEY), "the key leaked into {what}:\n{text}");
        }
    }
}

/// Runs `apply` on `csv` with the key in the environment (unless `key` is
/// false) and the base URL of `server`.
async fn apply(csv: &str, server: Option<&MockServer>, key: bool, flags: &[&str]) -> Run {
    apply_with_key(csv, server, key.then_some(KEY), flags).await
}

async fn apply_with_key(
    csv: &str,
    server: Option<&MockServer>,
    key: Option<&str>,
    flags: &[&str],
) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("batch.csv");
    std::fs::write(&input, csv).unwrap();
    let results = dir.path().join("batch.results.csv");
    let mut command = common::bin();
    command
        .arg("apply")
        .arg(&input)
        .arg("-o")
        .arg(&results)
        .arg("--summary-json")
        .arg(dir.path().join("summary.json"))
        .args(flags)
        .env_remove("GCORE_API_KEY")
        .env_remove("GCORE_BASE_URL");
    if let Some(server) = server {
        command.arg("--base-url").arg(server.uri());
    }
    if let Some(key) = key {
        command.env("GCORE_API_KEY", key);
    }
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let (results, results_text) = read_results_file(&results);
    Run {
        output,
        results,
        results_text,
        dir,
    }
}

/// The user the fake API answers with: the ID from the path and the fields
/// of the body, as the real API echoes the new state.
fn user_for(request: &Request) -> Value {
    let id: u64 = request
        .url
        .path()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut user = json!({
        "id": id, "email": format!("user{id}@example.com"), "name": "Someone", "lang": "en",
        "phone": null, "company": "Example", "reseller": 1, "client": 42, "deleted": false,
        "groups": [{"id": 2, "name": "Users"}], "activated": true, "sso_auth": false,
        "two_fa": false, "auth_types": ["password"], "user_type": "common", "is_active": true
    });
    if let Ok(Value::Object(body)) = request.body_json::<Value>() {
        for (k, v) in body {
            user[k] = v;
        }
    }
    user
}

/// Answers like the API, after `delay`, and notes when each request came.
#[derive(Clone, Default)]
struct Echo {
    seen: Arc<Mutex<Vec<(Instant, String)>>>,
    max_delay_ms: u64,
}

impl Echo {
    fn random_latency(max_delay_ms: u64) -> Echo {
        Echo {
            max_delay_ms,
            ..Echo::default()
        }
    }
    fn times_for(&self, path: &str) -> Vec<Instant> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|(_, p)| p == path)
            .map(|(t, _)| *t)
            .collect()
    }
    fn all(&self) -> Vec<(Instant, String)> {
        self.seen.lock().unwrap().clone()
    }
}

impl Respond for Echo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.seen
            .lock()
            .unwrap()
            .push((Instant::now(), request.url.path().to_string()));
        let mut template = ResponseTemplate::new(200).set_body_json(user_for(request));
        if self.max_delay_ms > 0 {
            // Spread as if at random, and the same at every run: a
            // multiplicative hash of the user's id.
            let id: u64 = request
                .url
                .path()
                .rsplit('/')
                .next()
                .and_then(|id| id.parse().ok())
                .unwrap_or(0);
            let ms = (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % (self.max_delay_ms + 1);
            template = template.set_delay(Duration::from_millis(ms));
        }
        template
    }
}

/// Notes when requests came, then answers with `template`.
struct Timed {
    seen: Arc<Mutex<Vec<(Instant, String)>>>,
    template: ResponseTemplate,
}

impl Respond for Timed {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.seen
            .lock()
            .unwrap()
            .push((Instant::now(), request.url.path().to_string()));
        self.template.clone()
    }
}

async fn echo_server() -> (MockServer, Echo) {
    let server = MockServer::start().await;
    let echo = Echo::default();
    Mock::given(method("PATCH"))
        .and(path_regex(r"^/iam/users/\d+$"))
        .respond_with(echo.clone())
        .mount(&server)
        .await;
    (server, echo)
}

/// Answers the first `times` requests for `user_path` with `first`, then
/// everything like the API; returns the latter to see when requests came.
async fn first_then_echo(
    server: &MockServer,
    user_path: &str,
    first: impl Respond + 'static,
    times: u64,
) -> Echo {
    Mock::given(method("PATCH"))
        .and(path(user_path))
        .respond_with(first)
        .up_to_n_times(times)
        .with_priority(1)
        .expect(times)
        .mount(server)
        .await;
    let echo = Echo::default();
    Mock::given(method("PATCH"))
        .respond_with(echo.clone())
        .with_priority(2)
        .mount(server)
        .await;
    echo
}

async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

const HEADER: &str = "user_id,email,name,lang,phone,company,groups,auth_types\n";

#[tokio::test]
async fn each_row_is_one_exact_patch_and_the_results_show_the_answer() {
    let (server, _) = echo_server().await;
    let csv = format!(
        "{HEADER}\
         11,anna@example.com,Anna Schmidt,DE,,\"Acme, Inc.\",Users;engineers,password|github\n\
         12,,#null,,#NULL,,,\n\
         13,,,,,,,\n\
         14,,,zh,,,3009,\n"
    );
    let run = apply(&csv, Some(&server), true, &["--rate", "0"]).await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    run.assert_no_key();

    let mut requests = received(&server).await;
    requests.sort_by_key(|r| r.url.path().to_string());
    assert_eq!(requests.len(), 3, "the row without changes is not sent");
    let bodies: Vec<(String, Value)> = requests
        .iter()
        .map(|r| (r.url.path().to_string(), r.body_json().unwrap()))
        .collect();
    assert_eq!(
        bodies,
        [
            (
                "/iam/users/11".to_string(),
                json!({"email": "anna@example.com", "name": "Anna Schmidt", "lang": "de",
                       "company": "Acme, Inc.",
                       "groups": [{"id": 2, "name": "Users"}, {"id": 5, "name": "Engineers"}],
                       "auth_types": ["password", "github"]})
            ),
            (
                "/iam/users/12".to_string(),
                json!({"name": null, "phone": null})
            ),
            (
                "/iam/users/14".to_string(),
                json!({"lang": "zh",
                       "groups": [{"id": 3009, "name": "Purge and Prefetch only (API+Web)"}]})
            ),
        ]
    );
    for request in &requests {
        assert_eq!(request.method.as_str(), "PATCH");
        let header = |name: &str| request.headers.get(name).unwrap().to_str().unwrap();
        assert_eq!(header("authorization"), format!("apikey {KEY}"));
        assert_eq!(header("content-type"), "application/json");
        assert_eq!(
            header("user-agent"),
            format!("gcore-iam-bulk/{}", env!("CARGO_PKG_VERSION"))
        );
    }

    let rows: Vec<&str> = run.results.iter().map(|r| r["row"].as_str()).collect();
    assert_eq!(rows, ["2", "3", "4", "5"]);
    let anna = run.row(2);
    assert_eq!(anna["status"], "updated");
    assert_eq!(anna["http_status"], "200");
    assert_eq!(anna["attempts"], "1");
    assert_eq!(anna["email"], "anna@example.com");
    assert_eq!(anna["groups"], "Users;Engineers");
    assert_eq!(anna["auth_types"], "password;github");
    assert_eq!(anna["id"], "11");
    assert_eq!(
        serde_json::from_str::<Value>(&anna["request"]).unwrap(),
        bodies[0].1
    );
    assert_eq!(run.row(3)["name"], "", "a cleared name reads empty");
    assert_eq!(run.row(4)["status"], "skipped");
    assert_eq!(run.row(4)["error"], "no changes");
    assert_eq!(run.row(4)["attempts"], "0");
    let summary = run.summary_json();
    assert_eq!(summary["counts"]["updated"], 3);
    assert_eq!(summary["counts"]["skipped"], 1);
    assert_eq!(summary["exit_code"], 0);
    assert_eq!(summary["command"], "apply");
    assert_eq!(summary["dry_run"], false);
    assert!(summary["input"].as_str().unwrap().ends_with("batch.csv"));
    // The account, as the run's first line says it, for monitoring.
    let account = summary["account"].as_str().unwrap();
    assert!(account.starts_with("127.0.0.1:"), "{account}");
    assert!(account.ends_with(", key from GCORE_API_KEY"), "{account}");
    assert!(
        run.stderr().contains(&format!("account: {account}")),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains("3 updated"), "{}", run.stderr());
}

#[tokio::test]
async fn a_429_pauses_the_whole_run_for_its_retry_after() {
    let server = MockServer::start().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let throttle = Timed {
        seen: Arc::clone(&seen),
        template: ResponseTemplate::new(429)
            .insert_header("Retry-After", "1")
            .set_body_string("slow down"),
    };
    let echo = first_then_echo(&server, "/iam/users/1", throttle, 1).await;
    let csv = format!("{HEADER}1,,,de,,,,\n2,,,de,,,,\n3,,,de,,,,\n4,,,de,,,,\n");
    let run = apply(
        &csv,
        Some(&server),
        true,
        &["--rate", "0", "--concurrency", "1"],
    )
    .await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    run.assert_no_key();

    let throttled_at = seen.lock().unwrap()[0].0;
    let retried_at = echo.times_for("/iam/users/1");
    assert_eq!(retried_at.len(), 1);
    assert!(
        retried_at[0].duration_since(throttled_at) >= Duration::from_millis(900),
        "the retry came {:?} after the 429",
        retried_at[0].duration_since(throttled_at)
    );
    // The others were not sent during the pause, although a slot was free.
    for (at, path) in echo.all() {
        assert!(
            at.duration_since(throttled_at) >= Duration::from_millis(900),
            "{path} was sent {:?} after the 429",
            at.duration_since(throttled_at)
        );
    }
    assert_eq!(run.row(2)["status"], "updated");
    assert_eq!(run.row(2)["attempts"], "2");
    let summary = run.summary_json();
    assert_eq!(summary["throttled"], 1);
    assert_eq!(summary["retries"], 1);
    assert_eq!(summary["counts"]["updated"], 4);
}

/// A `Retry-After` date is read against the answer's own `Date`: a server
/// whose clock runs ten minutes ahead, asking for one second, is waited
/// one second, not ten minutes (beyond `--max-wait`, which stopped the run).
#[tokio::test]
async fn a_retry_after_date_is_read_by_the_servers_clock() {
    let server = MockServer::start().await;
    let ahead = std::time::SystemTime::now() + Duration::from_secs(600);
    let throttle = ResponseTemplate::new(429)
        .insert_header("Date", httpdate::fmt_http_date(ahead).as_str())
        .insert_header(
            "Retry-After",
            httpdate::fmt_http_date(ahead + Duration::from_secs(1)).as_str(),
        )
        .set_body_string("slow down");
    first_then_echo(&server, "/iam/users/1", throttle, 1).await;
    let csv = format!("{HEADER}1,,,de,,,,\n2,,,de,,,,\n");
    let run = apply(&csv, Some(&server), true, &["--rate", "0"]).await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(run.row(2)["status"], "updated");
    assert_eq!(run.summary_json()["throttled"], 1);
}

/// A 5xx is retried until the row is updated: the smoke test over the
/// binary (every kind of failure, at concurrency, is tests/it/engine.rs's).
#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let server = MockServer::start().await;
    let busy = ResponseTemplate::new(503).set_body_string("busy");
    first_then_echo(&server, "/iam/users/1", busy, 2).await;
    let csv = format!("{HEADER}1,,,de,,,,\n2,,,en,,,,\n");
    let run = apply(&csv, Some(&server), true, &["--rate", "0"]).await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(run.row(2)["status"], "updated");
    assert_eq!(run.row(2)["attempts"], "3");
    assert_eq!(run.row(3)["attempts"], "1");
    assert_eq!(run.summary_json()["retries"], 2);
}

/// An answer slower than `--timeout` is given up on and the row sent
/// again: the smoke test over the binary (the retries are
/// tests/it/engine.rs's).
#[tokio::test]
async fn a_slow_answer_beyond_the_timeout_is_retried() {
    let server = MockServer::start().await;
    let slow = ResponseTemplate::new(200).set_delay(Duration::from_secs(5));
    first_then_echo(&server, "/iam/users/1", slow, 1).await;
    let csv = format!("{HEADER}1,,,de,,,,\n");
    let started = Instant::now();
    let run = apply(&csv, Some(&server), true, &["--timeout", "0.5"]).await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(run.row(2)["status"], "updated");
    assert_eq!(run.row(2)["attempts"], "2");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the slow answer was awaited"
    );
}

#[tokio::test]
async fn client_errors_fail_the_row_without_a_retry() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path("/iam/users/1"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"message": "  Invalid lang\n value  "})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/iam/users/2"))
        .respond_with(ResponseTemplate::new(404).set_body_string("User not found\n"))
        .expect(1)
        .mount(&server)
        .await;
    // A server that echoes the key in its error must not put it in the results.
    Mock::given(method("PATCH"))
        .and(path("/iam/users/3"))
        .respond_with(|request: &Request| {
            let auth = request.headers.get("authorization").unwrap();
            ResponseTemplate::new(403)
                .set_body_string(format!("key {} has no access", auth.to_str().unwrap()))
        })
        .expect(1)
        .mount(&server)
        .await;
    let csv = format!("{HEADER}1,,,de,,,,\n2,,,de,,,,\n3,,,de,,,,\n");
    let run = apply(&csv, Some(&server), true, &["--rate", "0"]).await;
    assert_eq!(run.code(), 1, "{}", run.stderr());
    run.assert_no_key();
    let bad = run.row(2);
    assert_eq!(bad["status"], "failed");
    assert_eq!(bad["http_status"], "400");
    assert_eq!(bad["attempts"], "1");
    assert_eq!(bad["error"], "HTTP 400 Bad Request: Invalid lang value");
    let missing = run.row(3);
    assert_eq!(missing["status"], "failed");
    assert_eq!(missing["http_status"], "404");
    assert_eq!(missing["attempts"], "1");
    assert_eq!(missing["error"], "HTTP 404 Not Found: User not found");
    assert_eq!(
        run.row(4)["error"],
        "HTTP 403 Forbidden: key apikey *** has no access"
    );
    assert_eq!(run.summary_json()["counts"]["failed"], 3);
    assert!(run.stderr().contains("row 3: HTTP 404"), "{}", run.stderr());
}

#[tokio::test]
async fn a_missing_key_stops_before_anything_is_sent() {
    let (server, _) = echo_server().await;
    let run = apply(&format!("{HEADER}1,,,de,,,,\n"), Some(&server), false, &[]).await;
    assert_eq!(run.code(), 2);
    let stderr = run.stderr();
    assert!(
        stderr.contains("GCORE_API_KEY") && stderr.contains("--api-key-file"),
        "{stderr}"
    );
    assert!(received(&server).await.is_empty());
}

#[tokio::test]
async fn the_key_can_come_from_a_file() {
    let (server, _) = echo_server().await;
    let key_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key_file.path(), format!("{KEY}\n")).unwrap();
    let key_path = key_file.path().to_str().unwrap().to_string();
    let run = apply(
        &format!("{HEADER}1,,,de,,,,\n"),
        Some(&server),
        false,
        &["--api-key-file", &key_path],
    )
    .await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let requests = received(&server).await;
    assert_eq!(
        requests[0].headers.get("authorization").unwrap(),
        &format!("apikey {KEY}")
    );
}

#[tokio::test]
async fn a_bad_base_url_stops_with_a_clear_message() {
    let run = apply(
        &format!("{HEADER}1,,,de,,,,\n"),
        None,
        true,
        &["--base-url", "api.gcore.com"],
    )
    .await;
    assert_eq!(run.code(), 2);
    assert!(run.stderr().contains("base URL"), "{}", run.stderr());
}

#[tokio::test]
async fn one_invalid_row_means_nothing_is_sent() {
    let (server, _) = echo_server().await;
    let csv = format!("{HEADER}1,,,de,,,,\n2,,,fr,,,,\n3,,,,,,,\n4,x@,,en,,,,\n");
    let run = apply(&csv, Some(&server), true, &[]).await;
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(received(&server).await.is_empty(), "a request was sent");
    let statuses: Vec<&str> = run.results.iter().map(|r| r["status"].as_str()).collect();
    assert_eq!(statuses, ["not_attempted", "invalid", "skipped", "invalid"]);
    assert!(run.row(3)["error"].contains("lang"), "{:?}", run.row(3));
    assert_eq!(run.row(2)["request"], r#"{"lang":"de"}"#);
    assert!(run.stderr().contains("--skip-invalid"), "{}", run.stderr());

    let run = apply(&csv, Some(&server), true, &["--skip-invalid"]).await;
    assert_eq!(run.code(), 1, "invalid rows still make the run exit 1");
    let statuses: Vec<&str> = run.results.iter().map(|r| r["status"].as_str()).collect();
    assert_eq!(statuses, ["updated", "invalid", "skipped", "invalid"]);
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn results_keep_the_input_order_under_random_latency() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .respond_with(Echo::random_latency(150))
        .mount(&server)
        .await;
    let mut csv = HEADER.to_string();
    for id in 1..=120 {
        csv.push_str(&format!("{id},,,en,,,,\n"));
    }
    // A window smaller than the rows in flight can finish out of order.
    let run = apply(
        &csv,
        Some(&server),
        true,
        &["--rate", "0", "--concurrency", "16", "--window", "20"],
    )
    .await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(run.results.len(), 120);
    for (i, row) in run.results.iter().enumerate() {
        assert_eq!(row["row"], (i + 2).to_string());
        assert_eq!(row["user_id"], (i + 1).to_string());
        assert_eq!(row["id"], row["user_id"], "the answer is on its own row");
        assert_eq!(row["status"], "updated");
    }
}

#[tokio::test]
async fn dry_run_needs_no_key_and_sends_nothing() {
    let (server, _) = echo_server().await;
    let run = apply(
        &format!("{HEADER}1,,,de,,,,\n"),
        Some(&server),
        false,
        &["--dry-run"],
    )
    .await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(run.row(2)["status"], "would_update");
    assert_eq!(run.summary_json()["counts"]["would_update"], 1);
    assert!(received(&server).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_stops_the_run_instead_of_failing_every_row() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path_regex(r"^/iam/users/\d+$"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"message": "Invalid API key"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let rows: String = (1..=10).map(|id| format!("{id},,,de,,,,\n")).collect();
    let csv = format!("{HEADER}{rows}");
    let flags = ["--rate", "0", "--concurrency", "1"];
    let run = apply(&csv, Some(&server), true, &flags).await;
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert_eq!(run.results.len(), 10);
    let first = run.row(2);
    assert_eq!(first["status"], "failed");
    assert_eq!(first["http_status"], "401");
    for row in 3..=11 {
        let rest = run.row(row);
        assert_eq!(rest["status"], "not_attempted", "{rest:?}");
        assert!(
            rest["error"].contains("the API refused the key"),
            "{rest:?}"
        );
    }
    assert!(
        run.stderr()
            .contains("stopping: the API refused the key (HTTP 401 on row 2)"),
        "{}",
        run.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_results_of_an_earlier_run_are_not_replaced_unless_asked() {
    let (server, _echo) = echo_server().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("batch.csv"),
        format!("{HEADER}1,,,de,,,,\n"),
    )
    .unwrap();
    let earlier = "row,user_id,status\n2,1,updated\n";
    std::fs::write(dir.path().join("batch.results.csv"), earlier).unwrap();
    let run = |extra: &'static [&'static str]| {
        let mut command = common::bin();
        command
            .current_dir(dir.path())
            .args([
                "apply",
                "batch.csv",
                "--rate",
                "0",
                "--base-url",
                &server.uri(),
            ])
            .args(extra)
            .env("GCORE_API_KEY", KEY);
        tokio::task::spawn_blocking(move || command.output().unwrap())
    };
    let refused = run(&[]).await.unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("batch.results.csv already exists"),
        "{stderr}"
    );
    assert!(stderr.contains("--overwrite"), "{stderr}");
    let kept = std::fs::read_to_string(dir.path().join("batch.results.csv")).unwrap();
    assert_eq!(kept, earlier);
    assert!(received(&server).await.is_empty(), "nothing is sent");

    let replaced = run(&["--overwrite"]).await.unwrap();
    assert_eq!(replaced.status.code(), Some(0));
    let (rows, _) = read_results_file(&dir.path().join("batch.results.csv"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "updated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_user_id_is_invalid_on_both_rows_and_nothing_is_sent() {
    let (server, _echo) = echo_server().await;
    let csv = format!("{HEADER}1,,,de,,,,\n7,,,de,,,,\n2,,,xx,,,,\n7,,,en,,,,\n");
    let run = apply(&csv, Some(&server), true, &["--rate", "0"]).await;
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(
        run.stderr().contains("nothing sent: 3 rows are invalid"),
        "{}",
        run.stderr()
    );
    assert_eq!(run.row(2)["status"], "not_attempted");
    assert_eq!(
        run.row(3)["error"],
        "user_id: 7 is also on row 5; give each user one row"
    );
    assert_eq!(
        run.row(5)["error"],
        "user_id: 7 is also on row 3; give each user one row"
    );
    assert_eq!(run.row(4)["status"], "invalid");
    assert!(received(&server).await.is_empty());

    let run = apply(
        &csv,
        Some(&server),
        true,
        &["--rate", "0", "--skip-invalid"],
    )
    .await;
    assert_eq!(run.row(2)["status"], "updated");
    for row in [3, 4, 5] {
        assert_eq!(run.row(row)["status"], "invalid");
    }
    assert_eq!(received(&server).await.len(), 1);
}

/// A redirect means the base URL is wrong; following it could turn the
/// PATCH into a GET elsewhere. The row fails with the 3xx, nothing else is
/// requested, it is not retried, and the run stops there: every other row
/// would meet it too (each failed with a bare "HTTP 301").
#[tokio::test]
async fn a_redirect_is_not_followed() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path("/iam/users/1"))
        .respond_with(
            ResponseTemplate::new(301)
                .insert_header("Location", format!("{}/elsewhere/1", server.uri())),
        )
        .mount(&server)
        .await;
    let (elsewhere, _) = echo_server().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1})))
        .mount(&elsewhere)
        .await;
    let rows: String = (1..=50).map(|id| format!("{id},de\n")).collect();
    let input = format!("user_id,lang\n{rows}");
    let run = apply(&input, Some(&server), true, &["--concurrency", "1"]).await;
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let row = run.row(2);
    assert_eq!(row["status"], "failed");
    assert_eq!(row["http_status"], "301");
    assert_eq!(row["attempts"], "1");
    let requests = received(&server).await;
    assert_eq!(requests[0].url.path(), "/iam/users/1");
    assert!(
        requests.len() < 50,
        "the run stopped: {} requests",
        requests.len()
    );
    assert_eq!(run.row(51)["status"], "not_attempted");
    assert!(
        run.stderr()
            .contains("answered with a redirect (HTTP 301 on row 2)")
            && run.stderr().contains("check --base-url"),
        "{}",
        run.stderr()
    );
}

/// `-q` prints only errors and the summary: no notes, no progress.
#[tokio::test]
async fn quiet_prints_only_the_summary() {
    let (server, _) = echo_server().await;
    let csv = "user_id,lang,department\n1,de,Sales\n2,xx,Sales\n";
    let flags = ["--ignore-unknown-columns", "--skip-invalid", "--rate", "0"];
    let loud = apply(csv, Some(&server), true, &flags).await;
    assert!(
        loud.stderr()
            .contains("note: ignoring the columns department"),
        "{}",
        loud.stderr()
    );
    let mut quiet_flags = flags.to_vec();
    quiet_flags.push("-q");
    let quiet = apply(csv, Some(&server), true, &quiet_flags).await;
    assert_eq!(quiet.code(), 1);
    let stderr = quiet.stderr();
    assert!(!stderr.contains("note:"), "{stderr}");
    assert!(!stderr.contains("progress:"), "{stderr}");
    assert!(
        stderr.starts_with("2 rows: 1 updated, 1 invalid\n"),
        "{stderr}"
    );
    assert!(stderr.contains("row 3: lang:"), "{stderr}");
    assert!(stderr.contains("results: "), "{stderr}");
}

// A server that lies or misbehaves: absurd waits, huge bodies, answers about
// another user, the key echoed back in another spelling.

#[tokio::test]
async fn an_absurd_retry_after_fails_or_stops_instead_of_panicking() {
    for (status, header) in [
        (429, "retry-after"),
        (503, "retry-after-ms"),
        (429, "retry-after-ms"),
    ] {
        let server = MockServer::start().await;
        let absurd = ResponseTemplate::new(status).insert_header(header, "1e30");
        first_then_echo(&server, "/iam/users/1", absurd, 1).await;
        let run = apply(
            "user_id,lang\n1,de\n2,de\n3,de\n",
            Some(&server),
            true,
            &["--concurrency", "1"],
        )
        .await;
        let what = format!("{status} {header}: {}", run.stderr());
        assert_eq!(run.code(), 1, "{what}");
        assert_eq!(run.results.len(), 3, "{what}");
        let row = run.row(2);
        assert_eq!(row["status"], "failed", "{what}");
        assert!(row["error"].contains("more than a year"), "{what}: {row:?}");
        assert!(
            run.stderr().contains("results: "),
            "the summary is printed: {what}"
        );
    }
}

#[tokio::test]
async fn a_rate_out_of_range_is_refused_in_a_few_words() {
    // A number too small, too large or below zero: said as the user would
    // write it, not as 300 digits, and not taken for a flag.
    for (given, said) in [
        (
            "1e-18",
            "--rate 1e-18 must be 0 (no limit) or between 0.001 and 1000000",
        ),
        (
            "1e300",
            "--rate 1e300 must be 0 (no limit) or between 0.001 and 1000000",
        ),
        (
            "-1",
            "--rate -1.0 must be 0 (no limit) or between 0.001 and 1000000",
        ),
    ] {
        let run = apply("user_id,lang\n1,de\n", None, true, &["--rate", given]).await;
        assert_eq!(run.code(), 2, "{given}");
        assert!(run.stderr().contains(said), "{given}: {}", run.stderr());
    }
    let run = apply(
        "user_id,lang\n1,de\n",
        None,
        true,
        &["--rate", "auto", "--max-rate", "1e300"],
    )
    .await;
    assert!(
        run.stderr()
            .contains("--max-rate 1e300 must be between 0.001 and 1000000"),
        "{}",
        run.stderr()
    );
    let run = apply("user_id,lang\n1,de\n", None, true, &["--max-wait", "-1"]).await;
    assert!(
        run.stderr()
            .contains("--max-wait -1.0 must be a number of seconds above 0"),
        "{}",
        run.stderr()
    );
}

#[tokio::test]
async fn answers_over_a_mebibyte_are_not_read_and_not_recorded() {
    let server = MockServer::start().await;
    let huge = "x".repeat(3 << 20);
    Mock::given(method("PATCH"))
        .and(path("/iam/users/1"))
        .respond_with(ResponseTemplate::new(200).set_body_string(huge.clone()))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/iam/users/2"))
        .respond_with(ResponseTemplate::new(400).set_body_string(huge))
        .mount(&server)
        .await;
    let run = apply("user_id,lang\n1,de\n2,de\n", Some(&server), true, &[]).await;
    assert_eq!(run.code(), 1, "{}", run.stderr());
    // Whether a 2xx too large to read is the user is not known: failed,
    // and --resume sends it again (it was `updated`).
    assert_eq!(run.row(2)["status"], "failed");
    assert_eq!(
        run.row(2)["error"],
        "the API answered 2xx, but not with user 1 (the answer was over 1 MiB and was not \
         read): the change may not have landed; --resume sends it again (the same values: \
         harmless)"
    );
    assert_eq!(run.row(3)["status"], "failed");
    assert_eq!(
        run.row(3)["error"],
        "HTTP 400 Bad Request (the answer was over 1 MiB and was not read)"
    );
    assert!(
        run.results_text.len() < 10_000,
        "{} bytes",
        run.results_text.len()
    );
}

/// A 2xx that is not the row's user (a proxy's maintenance page, `{}`)
/// is `failed`, since whether the change landed is not known, and
/// `--resume` sends it again. (It was `updated`, exit 0, though nothing had
/// reached the API.)
#[tokio::test]
async fn a_2xx_that_is_not_the_user_is_a_failure_resume_sends_again() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path("/iam/users/1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw("<html>Maintenance</html>", "text/html"),
        )
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/iam/users/2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/iam/users/3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 3, "lang": "de"})))
        .mount(&server)
        .await;
    let run = apply("user_id,lang\n1,de\n2,de\n3,de\n", Some(&server), true, &[]).await;
    assert_eq!(run.code(), 1, "{}", run.stderr());
    for (row, why) in [
        (2, "the answer is not a user object"),
        (3, "the answer is a JSON object without the user's id"),
    ] {
        assert_eq!(run.row(row)["status"], "failed", "{}", run.results_text);
        let error = &run.row(row)["error"];
        assert!(
            error.contains("the API answered 2xx, but not with user")
                && error.contains(why)
                && error.contains("--resume sends it again"),
            "{error}"
        );
    }
    assert_eq!(run.row(4)["status"], "updated");
}

#[tokio::test]
async fn an_answer_about_another_user_is_a_failure_that_names_it() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path("/iam/users/1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 424242, "lang": "de"})))
        .mount(&server)
        .await;
    let run = apply("user_id,lang\n1,de\n", Some(&server), true, &[]).await;
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let row = run.row(2);
    assert_eq!(row["status"], "failed");
    assert_eq!(row["http_status"], "200");
    assert!(
        row["error"].starts_with("the API answered with user 424242, not user 1"),
        "{row:?}"
    );
    assert_eq!(
        row["id"], "",
        "another user's state is not shown as this row's"
    );
}

#[tokio::test]
async fn a_key_echoed_in_json_escapes_is_still_blanked() {
    let key = "k3y/with/slashes";
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(400).set_body_raw(
            r#"{"message":"key k3y\/with\/slashes is not allowed here"}"#,
            "application/json",
        ))
        .mount(&server)
        .await;
    let run = apply_with_key("user_id,lang\n1,de\n", Some(&server), Some(key), &[]).await;
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert_eq!(
        run.row(2)["error"],
        "HTTP 400 Bad Request: key *** is not allowed here"
    );
    let summary = std::fs::read_to_string(run.dir.path().join("summary.json")).unwrap();
    for (what, text) in [
        ("stderr", run.stderr()),
        ("results", run.results_text.clone()),
        ("summary", summary),
    ] {
        assert!(!text.contains(key), "the key leaked into {what}:\n{text}");
        assert!(
            !text.contains("k3y\\/with"),
            "the escaped key leaked into {what}:\n{text}"
        );
    }
}

/// When the check refuses the file, the summary names the invalid row first,
/// not the rows that were only held back because of it.
#[tokio::test]
async fn a_refused_file_names_its_invalid_rows_first() {
    let mut csv = String::from("user_id,lang\n");
    for id in 1..=11 {
        csv.push_str(&format!("{id},{}\n", if id == 9 { "fr" } else { "de" }));
    }
    let run = apply(&csv, None, true, &[]).await;
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let stderr = run.stderr();
    let problems: Vec<&str> = stderr
        .lines()
        .skip_while(|line| !line.ends_with("problems:"))
        .skip(1)
        .take_while(|line| line.starts_with("  row"))
        .collect();
    assert_eq!(
        problems,
        [
            "  row 10: lang: \"fr\" is not one of de, en, ru, zh, az",
            "  rows 2, 3, 4, 5, 6 and 5 more: not sent: 1 row is invalid",
        ],
        "{stderr}"
    );
    let summary = run.summary_json();
    assert_eq!(summary["first_problems"][0]["row"], 10);
    assert_eq!(summary["first_problems"][1]["count"], 10);
    assert_eq!(summary["first_problems"][1]["rows"], json!([2, 3, 4, 5, 6]));
}

// Outputs never destroy data, and are known good before anything is sent.

#[tokio::test]
async fn outputs_that_would_overwrite_the_input_or_each_other_are_refused() {
    let (server, _) = echo_server().await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let text = "user_id,lang\n1,de\n";
    std::fs::write(&input, text).unwrap();
    let link = dir.path().join("link.csv");
    std::fs::hard_link(&input, &link).unwrap();
    let inp = input.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["-o", link.to_str().unwrap()], "is the input file"),
        (&["--summary-json", inp], "the summary file"),
        (
            &["-o", "out.csv", "--summary-json", "./out.csv"],
            "is the results file",
        ),
        (
            &["--summary-json", "missing/folder/s.json"],
            "cannot write the summary file missing/folder/s.json",
        ),
    ];
    for (flags, want) in cases {
        let out = common::bin()
            .current_dir(dir.path())
            .args(["apply", inp, "--base-url", &server.uri()])
            .args(*flags)
            .env("GCORE_API_KEY", KEY)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(want), "{flags:?}: {stderr}");
        assert_eq!(std::fs::read_to_string(&input).unwrap(), text, "{flags:?}");
    }
    assert!(received(&server).await.is_empty(), "nothing was sent");
}

#[cfg(unix)]
#[tokio::test]
async fn the_files_it_creates_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (server, _) = echo_server().await;
    let run = apply("user_id,lang\n1,de\n", Some(&server), true, &[]).await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    for name in ["batch.results.csv", "summary.json"] {
        let mode = std::fs::metadata(run.dir.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}: {mode:o}");
    }
}

/// An API that cannot be reached stops the run within seconds, however large
/// the file, and says so once instead of once per row.
#[tokio::test]
async fn an_api_that_cannot_be_reached_stops_the_run_early() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut csv = String::from("user_id,lang\n");
    for id in 1..=2000 {
        csv.push_str(&format!("{id},de\n"));
    }
    let started = Instant::now();
    let run = apply(&csv, None, true, &["--base-url", &url, "--rate", "0"]).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert_eq!(run.results.len(), 2000);
    let stderr = run.stderr();
    assert_eq!(
        stderr
            .matches("stopping: the API cannot be reached")
            .count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("check --base-url"), "{stderr}");
    let not_attempted = run
        .results
        .iter()
        .filter(|r| r["status"] == "not_attempted")
        .count();
    // Nothing left this machine: every row is not_attempted, none counts an
    // attempt, and no row is said to have been sent.
    assert_eq!(not_attempted, 2000);
    assert!(run.results.iter().all(|r| r["attempts"] == "0"));
    assert!(
        !stderr.contains("rows sent/s"),
        "no rate for rows never sent: {stderr}"
    );
    assert!(
        stderr.contains(" more: not sent: the API cannot be reached"),
        "grouped, not one line a row: {stderr}"
    );
    assert!(stderr.lines().count() < 20, "{stderr}");
}

/// The record of a run that sent requests is replaced by no command without
/// --overwrite; a dry run's results are replaced freely, so `validate` then
/// `apply` needs no flag.
#[tokio::test]
async fn no_command_replaces_the_record_of_a_run_that_sent_requests() {
    let (server, _) = echo_server().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("batch.csv"), "user_id,lang\n1,de\n").unwrap();
    let run = |args: &[&str]| {
        let out = common::bin()
            .current_dir(dir.path())
            .args(args)
            .args(if args[0] == "apply" {
                vec!["--base-url".to_string(), server.uri()]
            } else {
                Vec::new()
            })
            .env("GCORE_API_KEY", KEY)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let results = dir.path().join("batch.results.csv");
    let apply_args = ["apply", "batch.csv", "--rate", "0"];
    // validate, then apply: the dry run's file is replaced without a flag.
    let (code, stderr) = run(&["validate", "batch.csv"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stderr) = run(&apply_args);
    assert_eq!(code, 0, "{stderr}");
    let record = std::fs::read_to_string(&results).unwrap();
    assert!(record.contains(",updated,"), "{record}");
    // Now neither validate, nor apply, nor apply --dry-run replaces it.
    for args in [
        &["validate", "batch.csv"][..],
        &["apply", "batch.csv", "--dry-run"][..],
        &apply_args[..],
    ] {
        let (code, stderr) = run(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains("records a run that sent requests"),
            "{args:?}: {stderr}"
        );
        assert_eq!(
            std::fs::read_to_string(&results).unwrap(),
            record,
            "{args:?}"
        );
    }
    let (code, stderr) = run(&["validate", "batch.csv", "--overwrite"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        std::fs::read_to_string(&results)
            .unwrap()
            .contains(",would_update,")
    );
}

/// Values from the server that a spreadsheet would run as a formula are
/// written with a leading quote; phone numbers stay as they are;
/// --raw-output writes them raw.
#[tokio::test]
async fn formulas_from_the_server_cannot_run_in_a_spreadsheet() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 1, "name": "=HYPERLINK(\"http://evil.example\",\"x\")",
            "company": "@SUM(A1)", "phone": "+49 30 1234567"
        })))
        .mount(&server)
        .await;
    let run = apply("user_id,lang\n1,de\n", Some(&server), true, &[]).await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let row = run.row(2);
    assert_eq!(row["name"], "'=HYPERLINK(\"http://evil.example\",\"x\")");
    assert_eq!(row["company"], "'@SUM(A1)");
    assert_eq!(row["phone"], "+49 30 1234567");
    let raw = apply(
        "user_id,lang\n1,de\n",
        Some(&server),
        true,
        &["--raw-output"],
    )
    .await;
    assert_eq!(raw.row(2)["company"], "@SUM(A1)");
}

/// The record reads back whatever the API answered, a group this tool does
/// not know included: --resume goes on from it and keeps the row as it was.
#[tokio::test]
async fn resume_reads_back_a_group_this_tool_does_not_know() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 1, "lang": "de", "groups": [{"id": 7, "name": "Support"}, {"id": 2, "name": "Users"}]
        })))
        .mount(&server)
        .await;
    let run = apply("user_id,lang\n1,de\n", Some(&server), true, &[]).await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(run.row(2)["groups"], "Support;Users");
    let record = run.results_text.clone();
    let dir = run.dir;
    let out = common::bin()
        .current_dir(dir.path())
        .args(["apply", "batch.csv", "-o", "batch.results.csv", "--resume"])
        .args(["--base-url", &server.uri()])
        .env("GCORE_API_KEY", KEY)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = std::fs::read_to_string(dir.path().join("batch.results.csv")).unwrap();
    assert_eq!(again, record, "the kept row is written back as it was");
    assert_eq!(received(&server).await.len(), 1, "nothing sent again");
}

/// A short key is blanked out of error messages, but not out of the users
/// the API answers with, where it would change a name ("demo user").
#[tokio::test]
async fn a_short_key_does_not_change_the_users_recorded() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path("/iam/users/1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": 1, "name": "demo user"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/iam/users/2"))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(json!({"message": "key demo may not"})),
        )
        .mount(&server)
        .await;
    let run = apply_with_key(
        "user_id,lang\n1,de\n2,de\n",
        Some(&server),
        Some("demo"),
        &[],
    )
    .await;
    assert_eq!(run.row(2)["name"], "demo user");
    assert_eq!(run.row(3)["error"], "HTTP 403 Forbidden: key *** may not");
}

/// A server that answers nothing but 429: after --max-wait of them, with
/// no other answer, the run stops instead of waiting for a window that
/// never opens (a quota window shorter than --max-wait is waited out:
/// `policy::simulated::a_quota_window_is_waited_out`).
#[tokio::test]
async fn a_server_that_only_throttles_stops_the_run() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_string("slow down"),
        )
        .mount(&server)
        .await;
    let mut csv = HEADER.to_string();
    for id in 1..=40 {
        csv.push_str(&format!("{id},,,de,,,,\n"));
    }
    let started = std::time::Instant::now();
    let run = apply(
        &csv,
        Some(&server),
        true,
        &[
            "--rate",
            "1000",
            "--concurrency",
            "2",
            "--max-retries",
            "100",
            "--max-wait",
            "4",
        ],
    )
    .await;
    let elapsed = started.elapsed();
    let stderr = run.stderr();
    assert_eq!(run.code(), 1, "{stderr}");
    assert!(
        stderr.contains("stopping: the server answered only 429 (throttled) for 4 s, more than"),
        "{stderr}"
    );
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}: {stderr}");
    assert!(run.results.iter().all(|r| r["status"] != "updated"));
    assert_eq!(run.results.len(), 40, "every row has its line");
    let requests = server.received_requests().await.unwrap().len();
    assert!(requests < 100, "{requests} requests");
}

/// A journal that cannot be made (a folder in its place) is named as the
/// journal, not as the results file, and nothing is sent.
#[tokio::test]
async fn a_journal_in_the_way_is_named_as_such() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.csv"), "user_id,lang\n1,de\n").unwrap();
    std::fs::create_dir(dir.path().join("a.results.csv.journal")).unwrap();
    let mut command = common::bin();
    command
        .current_dir(dir.path())
        .args(["apply", "a.csv", "--base-url", &server.uri()])
        .env("GCORE_API_KEY", "journal-test-key");
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot write the results file's journal a.results.csv.journal"),
        "{stderr}"
    );
    assert!(received(&server).await.is_empty());
}
