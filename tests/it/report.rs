//! `--report FILE.html` end to end: the built binary against the sandbox
//! writes the page, and the real browser (Debian's `chromium`, headless,
//! installed by `.ci/run`) opens it. The browser goes through a recording
//! proxy on loopback, so every request the page makes is seen, wherever it
//! would go; a harness page beside the report clicks its filters and
//! measures what was drawn.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gcore_iam_bulk::sandbox::{Faults, RunningSandbox};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::common;

use common::{read_results_file, start_sandbox};

/// Runs `args` with the sandbox's key and base URL in `dir`, off the runtime
/// the sandbox serves on.
async fn run(dir: &Path, sandbox: Option<&RunningSandbox>, args: &[&str]) -> Output {
    let mut command = common::bin();
    command
        .current_dir(dir)
        .args(args)
        .env_remove("GCORE_API_KEY")
        .env_remove("GCORE_BASE_URL")
        .env_remove("HTTPS_PROXY")
        .env_remove("HTTP_PROXY")
        .env_remove("ALL_PROXY");
    if let Some(sandbox) = sandbox {
        command
            .env("GCORE_API_KEY", sandbox.api_key())
            .args(["--base-url", &sandbox.base_url()]);
    }
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What the page must show as text, never as markup: a name that would load
/// an image and run a script if it were not escaped.
const HOSTILE_NAME: &str =
    "<script>document.title='owned'</script><img src=http://canary.invalid/report-canary.png>";

/// 100 users to change, two rows the check refuses, two users that do not
/// exist (one with the hostile name).
fn input() -> String {
    let mut csv = String::from("user_id,name,lang\n");
    for id in 1..=100 {
        let lang = ["en", "de", "ru"][id % 3];
        csv.push_str(&format!("{id},User {id},{lang}\n"));
        if id % 40 == 0 {
            csv.push_str(&format!("{},Wrong,xx\n", 500 + id));
        }
    }
    csv.push_str("90001,Nobody,en\n");
    csv.push_str(&format!("90002,\"{HOSTILE_NAME}\",en\n"));
    csv
}

/// `chromium`, or a failure that says how to install it: the page is
/// tested in the browser people open it with.
fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            && out.status.success()
        {
            return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        }
    }
    panic!(
        "these tests open the report in Chromium, which is not installed: run .ci/run, or \
         apt-get install chromium"
    );
}

/// A recording HTTP server on loopback: it serves `pages` by name and, as
/// the browser's proxy, sees (and refuses) every other request the browser
/// makes, wherever it would go.
struct Recorder {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    async fn start(pages: BTreeMap<&'static str, Vec<u8>>) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let pages = Arc::new(pages);
        let task = tokio::spawn({
            let seen = Arc::clone(&seen);
            async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let (seen, pages) = (Arc::clone(&seen), Arc::clone(&pages));
                    tokio::spawn(async move {
                        let mut stream = BufReader::new(stream);
                        let mut first = String::new();
                        if stream.read_line(&mut first).await.unwrap_or(0) == 0 {
                            return;
                        }
                        loop {
                            let mut line = String::new();
                            let read = stream.read_line(&mut line).await.unwrap_or(0);
                            if read == 0 || line == "\r\n" || line == "\n" {
                                break;
                            }
                        }
                        let first = first.trim_end().to_string();
                        seen.lock().unwrap().push(first.clone());
                        let local = format!("http://127.0.0.1:{port}/");
                        let target = first.split(' ').nth(1).unwrap_or("");
                        let name = target
                            .strip_prefix(&local)
                            .or_else(|| target.strip_prefix('/'))
                            .unwrap_or("");
                        let answer = match pages.get(name) {
                            Some(body) if first.starts_with("GET ") => {
                                let mut answer = format!(
                                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; \
                                     charset=utf-8\r\nContent-Length: {}\r\nConnection: \
                                     close\r\n\r\n",
                                    body.len()
                                )
                                .into_bytes();
                                answer.extend_from_slice(body);
                                answer
                            }
                            _ => b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: \
                                   close\r\n\r\n"
                                .to_vec(),
                        };
                        let _ = stream.get_mut().write_all(&answer).await;
                        let _ = stream.get_mut().shutdown().await;
                    });
                }
            }
        });
        Recorder { port, seen, task }
    }

    fn url(&self, page: &str) -> String {
        format!("http://127.0.0.1:{}/{page}", self.port)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The browser's own services (its clock, updates, sign-in), which it
/// calls whatever page it shows: not requests of the page.
fn browser_service(line: &str) -> bool {
    let target = line.split(' ').nth(1).unwrap_or("");
    let host = target
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    ["google.com", "googleapis.com", "gvt1.com", "gstatic.com"]
        .iter()
        .any(|service| host == *service || host.ends_with(&format!(".{service}")))
}

/// The harness: loads the report in a frame, then measures its chart,
/// clicks each filter and counts the rows shown, and writes what it found
/// (base64 JSON) where `--dump-dom` shows it. It also asks for an image
/// from a host that does not exist, to show that the recorder sees such a
/// request.
const HARNESS: &str = r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head><body>
<img src="http://canary.invalid/harness-canary.png" alt="">
<pre id="out">pending</pre>
<iframe id="report" src="/report.html" width="1100" height="900"></iframe>
<script>
document.getElementById('report').addEventListener('load', () => {
  const d = document.getElementById('report').contentDocument;
  const found = { title: d.title, active: d.querySelectorAll('script, img, iframe, object, embed').length };
  found.text = d.body.textContent;
  const visible = () => [...d.querySelectorAll('table.rows tbody tr')].filter(r => r.getClientRects().length > 0);
  found.rows = visible().length;
  found.filters = {};
  for (const input of d.querySelectorAll('.filters input')) {
    const label = d.querySelector('label[for="' + input.id + '"]');
    label.click();
    const shown = visible();
    found.filters[input.id] = {
      label: label.textContent,
      shown: shown.length,
      statuses: [...new Set(shown.map(r => r.querySelector('.status').textContent))].sort(),
    };
  }
  // "Who changed": each field's filter, the rows it shows and their e-mails.
  const changes = () => [...d.querySelectorAll('table.changes tbody tr')].filter(r => r.getClientRects().length > 0);
  found.changes = { shown: changes().length, fields: {}, order: [...d.querySelectorAll('.field-filters input')].map(i => i.id) };
  for (const input of d.querySelectorAll('.field-filters input')) {
    const label = d.querySelector('label[for="' + input.id + '"]');
    label.click();
    const shown = changes();
    found.changes.fields[input.id] = {
      label: label.textContent,
      shown: shown.length,
      first: shown.slice(0, 5).map(r => [...r.querySelectorAll('td')].map(c => c.textContent)),
    };
  }
  const svg = d.querySelector('#timeline svg');
  found.chart = null;
  if (svg) {
    found.chart = { width: svg.getBoundingClientRect().width, series: {} };
    for (const name of ['success', 'error', 'no-answer', 'throttled', 'pause', 'rate', 'mean', 'slowest']) {
      const boxes = [...svg.querySelectorAll('.' + name)].map(e => e.getBBox());
      found.chart.series[name] = {
        count: boxes.length,
        width: Math.max(0, ...boxes.map(b => b.width)),
        height: Math.max(0, ...boxes.map(b => b.height)),
      };
    }
  }
  document.getElementById('out').textContent = btoa(unescape(encodeURIComponent(JSON.stringify(found))));
});
</script>
</body></html>
"#;

/// What the browser made of the report.
struct Opened {
    /// What the harness found.
    found: Value,
    /// Every request the recorder saw.
    requests: Vec<String>,
    /// `http://127.0.0.1:PORT/`: where the recorder served the pages.
    local: String,
}

/// Opens `report` in headless Chromium through the recorder.
async fn open_in_browser(report: &[u8]) -> Opened {
    let pages = BTreeMap::from([
        ("harness.html", HARNESS.as_bytes().to_vec()),
        ("report.html", report.to_vec()),
    ]);
    let recorder = Recorder::start(pages).await;
    let profile = tempfile::tempdir().unwrap();
    let mut command = Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--proxy-server=http://127.0.0.1:{}", recorder.port))
        // Loopback goes through the proxy too.
        .arg("--proxy-bypass-list=<-loopback>")
        .arg("--dump-dom")
        .arg(recorder.url("harness.html"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = tokio::task::spawn_blocking(move || {
        let child = command.spawn().expect("chromium starts");
        let pid = child.id();
        // Its output is read while it runs: a page's DOM is more than a
        // pipe holds, and a browser blocked on a full pipe never exits.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(child.wait_with_output());
        });
        match finished.recv_timeout(Duration::from_secs(120)) {
            Ok(out) => out.unwrap(),
            Err(_) => {
                common::kill(pid, "KILL");
                panic!("chromium did not finish within 120 s");
            }
        }
    })
    .await
    .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let found = dom
        .split("<pre id=\"out\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_else(|| panic!("no harness output in:\n{dom}\n{}", stderr(&out)));
    use base64::Engine;
    let json = base64::engine::general_purpose::STANDARD
        .decode(found.trim())
        .unwrap_or_else(|_| panic!("the harness did not finish: {found}"));
    Opened {
        found: serde_json::from_slice(&json).unwrap(),
        requests: recorder.seen(),
        local: recorder.url(""),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_renders_in_chromium_filters_its_rows_and_fetches_nothing() {
    // A limit below --rate (429s and pauses), server errors and dropped
    // connections (retries), refused rows and missing users.
    let sandbox = start_sandbox(
        "report-key",
        3,
        Faults {
            rate: Some((60.0, 2)),
            error_rate: 0.05,
            drop_rate: 0.02,
            ..Faults::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), input()).unwrap();
    let out = run(
        dir.path(),
        Some(&sandbox),
        &[
            "apply",
            "in.csv",
            "--rate",
            "120",
            "--skip-invalid",
            "--report",
            "run.html",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let (results, _) = read_results_file(&dir.path().join("in.results.csv"));
    let count = |status: &str| results.iter().filter(|r| r["status"] == status).count();
    let (invalid, failed) = (count("invalid"), count("failed"));
    assert_eq!((invalid, failed, count("updated")), (2, 2, 100));
    let page = std::fs::read(dir.path().join("run.html")).unwrap();
    let text = String::from_utf8_lossy(&page);
    assert!(!text.contains("report-key"), "the key is in the report");

    let Opened {
        found,
        requests,
        local,
    } = open_in_browser(&page).await;

    // Nothing but the two pages was asked for; the harness's own image
    // from nowhere shows that a request the page made would be seen.
    let page_requests: Vec<&String> = requests.iter().filter(|r| !browser_service(r)).collect();
    assert!(
        page_requests
            .iter()
            .any(|r| r.contains("canary.invalid/harness-canary.png")),
        "the recorder did not see the harness's own request: {requests:?}"
    );
    let unexpected: Vec<&&String> = page_requests
        .iter()
        .filter(|r| {
            !(r.starts_with(&format!("GET {local}harness.html"))
                || r.starts_with(&format!("GET {local}report.html"))
                || r.contains("harness-canary.png"))
        })
        .collect();
    assert!(unexpected.is_empty(), "the report asked for {unexpected:?}");
    assert!(
        page_requests
            .iter()
            .any(|r| r.starts_with(&format!("GET {local}report.html"))),
        "{requests:?}"
    );

    // The hostile name is text, not markup.
    assert_eq!(found["active"], 0, "the report holds active elements");
    assert_eq!(found["title"], "gcore-iam-bulk apply: in.csv");
    assert!(found["text"].as_str().unwrap().contains(HOSTILE_NAME));

    // Every problem row is listed; each filter shows its status alone.
    let problems = (invalid + failed) as u64;
    assert_eq!(found["rows"], problems, "rows shown before any filter");
    let filters = &found["filters"];
    assert_eq!(filters["show-all"]["shown"], problems);
    for (status, expected) in [("invalid", invalid), ("failed", failed)] {
        let filter = &filters[format!("show-{status}")];
        assert_eq!(filter["shown"], expected as u64, "{status}: {filter}");
        assert_eq!(filter["statuses"], serde_json::json!([status]));
        assert_eq!(filter["label"], format!("{status} ({expected})"));
    }
    assert!(filters.get("show-not_attempted").is_none(), "{filters}");

    // The chart is drawn: bars of answers and of 429s, the rate's line,
    // the pauses and the answer times, at the page's width.
    let chart = &found["chart"];
    assert!(chart["width"].as_f64().unwrap() > 500.0, "{chart}");
    for series in ["success", "throttled", "pause", "rate", "mean", "slowest"] {
        let drawn = &chart["series"][series];
        assert!(drawn["count"].as_u64().unwrap() >= 1, "{series}: {drawn}");
        assert!(drawn["width"].as_f64().unwrap() > 0.0, "{series}: {drawn}");
    }
    // Bars and pauses have a height; the answers' bars reach up the panel.
    assert!(chart["series"]["success"]["height"].as_f64().unwrap() > 50.0);
    assert!(chart["series"]["pause"]["height"].as_f64().unwrap() > 50.0);
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_that_cannot_be_written_is_refused_before_anything_is_sent() {
    let sandbox = start_sandbox("report-key", 1, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "user_id,lang\n1,de\n").unwrap();
    std::fs::create_dir(dir.path().join("reports.html")).unwrap();
    // The key's file and a certificate named like pages must survive.
    std::fs::write(dir.path().join("key.html"), "report-key\n").unwrap();
    let ca = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.path().join("ca.html"), ca.cert.pem()).unwrap();
    // Someone's page, not this tool's.
    std::fs::write(dir.path().join("index.html"), "<p>precious</p>").unwrap();
    let long = format!("{}.html", "a".repeat(300));
    let cases: [(&str, &[&str], &str); 9] = [
        ("run.csv", &[], "give it a name that ends in .html"),
        ("in.csv", &[], "give it a name that ends in .html"),
        (
            "missing/run.html",
            &[],
            "cannot write the report missing/run.html",
        ),
        (
            "reports.html",
            &[],
            "is a directory (a folder), not a regular file",
        ),
        ("x.html/", &[], "is not a file name"),
        (&long, &[], "File name too long"),
        (
            "key.html",
            &["--api-key-file", "key.html"],
            "is the API key's file",
        ),
        (
            "ca.html",
            &["--ca-cert", "ca.html"],
            "is the certificate file",
        ),
        ("index.html", &[], "is not a page of gcore-iam-bulk"),
    ];
    for (report, flags, expected) in cases {
        let mut args = vec!["apply", "in.csv", "--report", report];
        args.extend_from_slice(flags);
        let out = run(dir.path(), Some(&sandbox), &args).await;
        assert_eq!(out.status.code(), Some(2), "{report}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected),
            "{report}: {}",
            stderr(&out)
        );
        assert!(
            !stderr(&out).contains(".gcore-iam-bulk"),
            "{}",
            stderr(&out)
        );
    }
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    assert_eq!(read("key.html"), "report-key\n");
    assert_eq!(read("index.html"), "<p>precious</p>");
    // The results file as the report, on every command that takes one.
    for command in ["apply", "plan", "validate"] {
        let out = run(
            dir.path(),
            Some(&sandbox).filter(|_| command != "validate"),
            &[command, "in.csv", "-o", "x.html", "--report", "x.html"],
        )
        .await;
        assert_eq!(out.status.code(), Some(2), "{command}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("the report x.html is the results file"),
            "{command}: {}",
            stderr(&out)
        );
    }
    assert_eq!(sandbox.stats().requests, 0, "something was sent");
    assert!(!dir.path().join("run.html").exists());
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_early_says_why_and_lists_the_rows_not_sent() {
    let sandbox = start_sandbox("report-key", 1, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), common::lang_rows(30)).unwrap();
    let mut command = common::bin();
    command
        .current_dir(dir.path())
        .args(["apply", "in.csv", "--report", "run.html"])
        .args(["--base-url", &sandbox.base_url(), "--concurrency", "1"])
        .env("GCORE_API_KEY", "not-the-key");
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let page = std::fs::read_to_string(dir.path().join("run.html")).unwrap();
    assert!(
        page.contains("Stopped early: the API refused the key (HTTP 401 on row 2)"),
        "{page}"
    );
    assert!(page.contains("not_attempted (29)"), "{page}");
    assert!(page.contains(r#"<label for="show-failed">failed (1)</label>"#));
    assert!(!page.contains("not-the-key"), "the key is in the report");
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_names_who_changed_by_field_rarest_first() {
    // The newcomer's job: a company rename for all 1,000 users, and three
    // people out of Administrators, planned and then applied as planned.
    let sandbox = start_sandbox("report-key", 1000, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("user_id,company,groups\n");
    let mut moved = Vec::new();
    for id in 1..=1000u64 {
        let user = sandbox_user(&sandbox, id).await;
        let admin = user["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|group| group["id"] == 1);
        let groups = if admin && moved.len() < 3 {
            moved.push(user["email"].as_str().unwrap().to_string());
            "Users".to_string()
        } else {
            let names: Vec<&str> = user["groups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|group| group["name"].as_str().unwrap())
                .collect();
            names.join(";")
        };
        csv.push_str(&format!("{id},Renamed GmbH,{groups}\n"));
    }
    assert_eq!(moved.len(), 3, "the sandbox has three administrators");
    std::fs::write(dir.path().join("in.csv"), csv).unwrap();
    let out = run(
        dir.path(),
        Some(&sandbox),
        &["plan", "in.csv", "--rate", "0", "--report", "plan.html"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The terminal names them too, rarest field first.
    let said = stderr(&out);
    let groups_at = said.find("  groups (3 users):").expect(&said);
    let company_at = said.find("  company (1000 users):").expect(&said);
    assert!(groups_at < company_at, "{said}");
    for email in &moved {
        assert!(said.contains(email.as_str()), "{email}: {said}");
    }
    let out = run(
        dir.path(),
        Some(&sandbox),
        &[
            "apply",
            "--plan",
            "in.plan.csv",
            "--rate",
            "0",
            "--report",
            "run.html",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The plan compared every row with the account's list: no request of
    // its own, which its page says instead of "no request was answered".
    let plan_page = std::fs::read_to_string(dir.path().join("plan.html")).unwrap();
    assert!(
        plan_page.contains("No request was sent for the rows"),
        "{plan_page}"
    );
    assert!(!plan_page.contains("sending took"));
    assert!(!plan_page.contains("No request was answered"));
    for page in ["plan.html", "run.html"] {
        let html = std::fs::read(dir.path().join(page)).unwrap();
        let found = open_in_browser(&html).await.found;
        let changes = &found["changes"];
        let fields = &changes["fields"];
        // Every changed user is on the page, under each field it changed.
        assert_eq!(fields["field-all"]["shown"], 1003, "{page}: {changes}");
        assert_eq!(fields["field-company"]["label"], "company (1000)", "{page}");
        assert_eq!(fields["field-company"]["shown"], 1000, "{page}");
        let groups = &fields["field-groups"];
        assert_eq!(groups["label"], "groups (3)", "{page}: {groups}");
        assert_eq!(groups["shown"], 3, "{page}: {groups}");
        let emails: Vec<&str> = groups["first"]
            .as_array()
            .unwrap()
            .iter()
            .map(|cells| cells[3].as_str().unwrap())
            .collect();
        assert_eq!(emails, moved, "{page}: {groups}");
        for cells in groups["first"].as_array().unwrap() {
            assert_eq!(cells[0], "groups");
            assert!(
                cells[5].as_str().unwrap().contains("Administrators"),
                "{cells}"
            );
            assert_eq!(cells[6], "Users", "{cells}");
        }
        // The rare field's filter comes first.
        assert_eq!(
            changes["order"],
            serde_json::json!(["field-all", "field-groups", "field-company"]),
            "{page}"
        );
    }
    sandbox.stop().await;
}

/// The user `id` as the sandbox serves it.
async fn sandbox_user(sandbox: &RunningSandbox, id: u64) -> Value {
    common::http()
        .get(format!("{}/iam/users/{id}", sandbox.base_url()))
        .header("Authorization", format!("APIKey {}", sandbox.api_key()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_and_a_dry_run_write_their_own_page() {
    let sandbox = start_sandbox("report-key", 1, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.csv"),
        "user_id,lang\n1,de\n2,en\n3,xx\n",
    )
    .unwrap();
    // A plan reads each user: its page has a timeline of GETs.
    let out = run(
        dir.path(),
        Some(&sandbox),
        &["plan", "in.csv", "--report", "plan.html"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let page = std::fs::read_to_string(dir.path().join("plan.html")).unwrap();
    assert!(page.contains("<title>gcore-iam-bulk plan: in.csv</title>"));
    assert!(page.contains(r#"id="timeline""#), "a plan sends GETs");
    assert!(page.contains(r#"<label for="show-invalid">invalid (1)</label>"#));
    // A dry run sends nothing: no timeline, and the invalid row listed.
    for command in [&["apply", "--dry-run"][..], &["validate"][..]] {
        let mut args = command.to_vec();
        args.extend(["in.csv", "--overwrite", "--report", "dry.html"]);
        let out = run(dir.path(), None, &args).await;
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let page = std::fs::read_to_string(dir.path().join("dry.html")).unwrap();
        assert!(page.contains("(dry run)"), "{args:?}");
        assert!(!page.contains(r#"id="timeline""#), "{args:?}");
        assert!(
            page.contains("lang: &#34;xx&#34;") || page.contains("lang: &quot;xx&quot;"),
            "{page}"
        );
    }
    // Every row valid: the verdict says so.
    std::fs::write(dir.path().join("good.csv"), "user_id,lang\n1,de\n").unwrap();
    let out = run(
        dir.path(),
        None,
        &["validate", "good.csv", "--report", "good.html"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let page = std::fs::read_to_string(dir.path().join("good.html")).unwrap();
    assert!(
        page.contains("The one row is valid; nothing was sent."),
        "{page}"
    );
    assert!(page.contains("None: every row is valid."));
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_this_tool_is_replaced_and_another_file_only_with_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "user_id,lang\n1,de\n").unwrap();
    for _ in 0..2 {
        let out = run(
            dir.path(),
            None,
            &["validate", "in.csv", "--report", "run.html"],
        )
        .await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    std::fs::write(dir.path().join("index.html"), "<p>precious</p>").unwrap();
    let args = [
        "validate",
        "in.csv",
        "--report",
        "index.html",
        "--overwrite",
    ];
    let out = run(dir.path(), None, &args).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let page = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    assert!(page.contains("gcore-iam-bulk validate: in.csv"));
    // Nothing is left beside the pages.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["in.csv", "in.results.csv", "index.html", "run.html"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_error_is_accounted_for_on_the_page() {
    // Seven kinds of invalid row: the page quotes five and says so. Rows
    // whose messages differ only by the value they quote (x5 and -7 as a
    // user_id) are one kind.
    let dir = tempfile::tempdir().unwrap();
    let csv = "user_id,lang,email,groups,auth_types\n1,xa,,,\n2,,bad,,\n3,,a@,,\n\
               4,,,nogroup,\nx5,de,,,\n6,,,,nope\n-7,de,,,\n8,,@b,,\n";
    std::fs::write(dir.path().join("in.csv"), csv).unwrap();
    let out = run(
        dir.path(),
        None,
        &["validate", "in.csv", "--report", "v.html"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let page = std::fs::read_to_string(dir.path().join("v.html")).unwrap();
    assert!(
        page.contains("The first 5 kinds of error, for 6 of the 8 rows with a problem"),
        "{page}"
    );
    assert!(page.contains(r#"<label for="show-invalid">invalid (8)</label>"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_never_replaces_a_file_the_settings_came_from() {
    // Even with --overwrite: a certificate named by GCORE_CA_CERT, a key's
    // file named by a profile.
    let sandbox = start_sandbox("report-key", 1, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "user_id,lang\n1,de\n").unwrap();
    let ca = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.path().join("ca.html"), ca.cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.html"), "report-key\n").unwrap();
    let config = dir.path().join("config/gcore-iam-bulk");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        format!(
            "[profiles.p]\nbase_url = \"{}\"\napi_key_file = \"{}\"\n",
            sandbox.base_url(),
            dir.path().join("key.html").display()
        ),
    )
    .unwrap();
    // (environment, flags, report, what the refusal says)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str, &'a str);
    let cases: [Case; 2] = [
        (
            &[
                ("GCORE_CA_CERT", "ca.html"),
                ("GCORE_API_KEY", "report-key"),
            ],
            &["--base-url", &sandbox.base_url()],
            "ca.html",
            "is the certificate file",
        ),
        (
            &[],
            &["--profile", "p"],
            "key.html",
            "is the API key's file",
        ),
    ];
    for (env, flags, report, expected) in cases {
        let mut command = common::bin();
        command
            .current_dir(dir.path())
            .args(["apply", "in.csv", "--overwrite", "--report", report])
            .args(flags)
            .env_remove("GCORE_API_KEY")
            .env_remove("GCORE_BASE_URL")
            .env_remove("GCORE_PROFILE")
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .envs(env.iter().copied());
        let out = tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{report}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected),
            "{report}: {}",
            stderr(&out)
        );
    }
    assert_eq!(sandbox.stats().requests, 0, "something was sent");
    let key = std::fs::read_to_string(dir.path().join("key.html")).unwrap();
    assert_eq!(key, "report-key\n");
    let pem = std::fs::read_to_string(dir.path().join("ca.html")).unwrap();
    assert_eq!(pem, ca.cert.pem());
    sandbox.stop().await;
}
