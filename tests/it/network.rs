//! The real network path, end to end with the built binary: HTTPS to a
//! sandbox whose certificate a throwaway authority signed, trust given by
//! `--ca-cert`, `GCORE_CA_CERT` or `SSL_CERT_FILE`, a certificate that is not
//! trusted stopping the run before anything is sent, and a CONNECT proxy
//! named by `HTTPS_PROXY` or `--proxy` (whose password never shows).

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use common::proxy::{ConnectProxy, basic};
use common::{kill, lang_rows, read_results_file};
use gcore_iam_bulk::sandbox::{RunningSandbox, SandboxConfig, start_tls};

const KEY: &str = "network-test-key-0123456789";

/// A TLS sandbox of 1,000 users, and its authority's certificate in `dir`.
async fn tls_sandbox(dir: &Path) -> (RunningSandbox, PathBuf) {
    let config = SandboxConfig {
        users: 1000,
        api_key: KEY.to_string(),
        seed: 3,
        faults: Default::default(),
        given: None,
    };
    let sandbox = start_tls(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    assert!(sandbox.base_url().starts_with("https://127.0.0.1:"));
    let ca = dir.join("sandbox-ca.pem");
    std::fs::write(&ca, sandbox.ca_pem().unwrap()).unwrap();
    (sandbox, ca)
}

/// `apply in.csv --base-url BASE --rate 0 ARGS...` in `dir` with `vars` set
/// and no other network variable; run off the runtime, which serves the
/// sandbox. No test here is about the rate: at the default 10/s, 30 rows
/// took 3 s a run.
async fn apply(dir: &Path, base: &str, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = common::bin();
    command
        .current_dir(dir)
        .args(["apply", "in.csv", "--base-url", base, "--overwrite"])
        .args(["--rate", "0"])
        .args(args)
        .env("GCORE_API_KEY", KEY);
    for (name, value) in vars {
        command.env(name, value);
    }
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn setup(rows: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), lang_rows(rows)).unwrap();
    dir
}

fn statuses(dir: &Path) -> Vec<String> {
    let (rows, _) = read_results_file(&dir.join("in.results.csv"));
    rows.iter().map(|row| row["status"].clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_authority_stops_the_run_before_anything_is_sent() {
    let dir = setup(40);
    let (sandbox, _ca) = tls_sandbox(dir.path()).await;
    let output = apply(
        dir.path(),
        &sandbox.base_url(),
        &["--concurrency", "4"],
        &[],
    )
    .await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let stops: Vec<&str> = text.lines().filter(|l| l.contains("stopping:")).collect();
    assert_eq!(stops.len(), 1, "{text}");
    for want in [
        "the certificate of 127.0.0.1 is not trusted",
        "signed by a certificate authority this machine does not trust",
        "--ca-cert",
        "SSL_CERT_FILE",
    ] {
        assert!(stops[0].contains(want), "{want}: {text}");
    }
    let (rows, _) = read_results_file(&dir.path().join("in.results.csv"));
    assert_eq!(rows.len(), 40);
    // No request left: every row is not_attempted, with no attempt counted;
    // only those already on their way met the error (and say it).
    assert!(
        rows.iter()
            .all(|r| r["status"] == "not_attempted" && r["attempts"] == "0"),
        "{rows:?}"
    );
    let met = rows
        .iter()
        .filter(|r| r["error"].starts_with("not sent: the certificate of 127.0.0.1"))
        .count();
    assert_eq!(met, 40, "every row says why it was not sent");
    assert!(
        !text.contains("rows sent/s"),
        "no rate for rows never sent: {text}"
    );
    let stats = sandbox.stats();
    assert_eq!(stats.requests, 0, "{stats:?}");
    assert!((1..=4).contains(&stats.tls_failures), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authority_is_trusted_by_flag_by_gcore_ca_cert_and_by_ssl_cert_file() {
    let dir = setup(30);
    let (sandbox, ca) = tls_sandbox(dir.path()).await;
    let ca = ca.to_str().unwrap();
    let base = sandbox.base_url();
    type Way<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);
    let ways: [Way; 3] = [
        (&["--ca-cert", ca], &[]),
        (&[], &[("GCORE_CA_CERT", ca)]),
        (&[], &[("SSL_CERT_FILE", ca)]),
    ];
    for (args, vars) in ways {
        let output = apply(dir.path(), &base, args, vars).await;
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?} {vars:?}: {}",
            stderr(&output)
        );
        assert!(statuses(dir.path()).iter().all(|s| s == "updated"));
        assert_eq!(statuses(dir.path()).len(), 30);
    }
    let stats = sandbox.stats();
    assert_eq!(stats.by_method_status["PATCH"][&200], 90, "{stats:?}");
    assert_eq!(stats.tls_failures, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_goes_through_the_proxy_of_https_proxy_and_never_shows_its_password() {
    let dir = setup(25);
    let (sandbox, ca) = tls_sandbox(dir.path()).await;
    let credentials = ("proxyuser", "pr0xy-s3cret");
    let proxy = ConnectProxy::start(Some(credentials)).await;
    let summary = dir.path().join("summary.json");
    let output = apply(
        dir.path(),
        &sandbox.base_url(),
        &[
            "--ca-cert",
            ca.to_str().unwrap(),
            "--summary-json",
            summary.to_str().unwrap(),
        ],
        &[("HTTPS_PROXY", &proxy.url(Some(credentials)))],
    )
    .await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert_eq!(statuses(dir.path()).len(), 25);
    assert!(statuses(dir.path()).iter().all(|s| s == "updated"));
    let shown = format!("http://proxyuser:***@{} (from HTTPS_PROXY)", proxy.addr);
    assert!(
        text.contains(&format!("sending through the proxy {shown}")),
        "{text}"
    );
    // The summary's first line says it.
    let summary_start = text.lines().position(|l| l.starts_with("25 rows")).unwrap();
    assert_eq!(
        text.lines().nth(summary_start - 1).unwrap(),
        format!("through the proxy {shown}"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(json["proxy"], shown.as_str());
    // The proxy saw the tunnels, with the credentials; the sandbox the requests.
    let seen = proxy.seen();
    assert!(!seen.is_empty());
    let target = format!("CONNECT {} HTTP/1.1", sandbox.addr());
    for request in &seen {
        assert_eq!(request.line, target, "{seen:?}");
        assert_eq!(
            request.authorization.as_deref(),
            Some(basic("proxyuser", "pr0xy-s3cret").as_str())
        );
    }
    assert_eq!(sandbox.stats().by_method_status["PATCH"][&200], 25);
    let results = std::fs::read_to_string(dir.path().join("in.results.csv")).unwrap();
    for place in [&text, &results, &std::fs::read_to_string(&summary).unwrap()] {
        assert!(!place.contains("pr0xy-s3cret"), "{place}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_proxy_bypasses_the_environments_proxy_and_the_flag_names_one_for_a_run() {
    let dir = setup(10);
    let (sandbox, ca) = tls_sandbox(dir.path()).await;
    let ca = ca.to_str().unwrap();
    let proxy = ConnectProxy::start(None).await;
    let base = sandbox.base_url();

    for no_proxy in [
        ("NO_PROXY", "127.0.0.1"),
        ("no_proxy", "localhost,127.0.0.0/8"),
    ] {
        let vars = [
            ("HTTPS_PROXY", proxy.url(None)),
            (no_proxy.0, no_proxy.1.into()),
        ];
        let vars: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let output = apply(dir.path(), &base, &["--ca-cert", ca], &vars).await;
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(0), "{text}");
        assert!(!text.contains("proxy"), "{text}");
        assert!(proxy.seen().is_empty(), "{:?}", proxy.seen());
    }

    // Lower case is honoured, and ALL_PROXY when nothing more specific is set.
    for var in ["https_proxy", "ALL_PROXY"] {
        let before = proxy.seen().len();
        let url = proxy.url(None);
        let output = apply(dir.path(), &base, &["--ca-cert", ca], &[(var, &url)]).await;
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(0), "{var}: {text}");
        assert!(text.contains(&format!("(from {var})")), "{text}");
        assert!(proxy.seen().len() > before, "{var}");
    }

    let before = proxy.seen().len();
    let flag = proxy.addr.to_string(); // HOST:PORT means http://HOST:PORT
    let output = apply(
        dir.path(),
        &base,
        &["--ca-cert", ca, "--proxy", &flag],
        &[("NO_PROXY", "*")],
    )
    .await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("through the proxy http://{flag} (from --proxy)")),
        "{text}"
    );
    assert!(proxy.seen().len() > before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_refuses_or_cannot_be_reached_never_shows_the_password() {
    let dir = setup(5);
    let (sandbox, ca) = tls_sandbox(dir.path()).await;
    let ca = ca.to_str().unwrap();
    let proxy = ConnectProxy::start(Some(("user", "right-password"))).await;
    let wrong = proxy.url(Some(("user", "wr0ng-p4ssword")));
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!(
            "http://user:wr0ng-p4ssword@{}",
            listener.local_addr().unwrap()
        )
    };
    for (url, refused) in [(wrong, true), (closed, false)] {
        let output = apply(
            dir.path(),
            &sandbox.base_url(),
            &["--ca-cert", ca, "--max-retries", "1"],
            &[("HTTPS_PROXY", &url)],
        )
        .await;
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{url}: {text}");
        assert!(text.contains("http://user:***@127.0.0.1:"), "{text}");
        let results = std::fs::read_to_string(dir.path().join("in.results.csv")).unwrap();
        assert!(
            statuses(dir.path()).iter().all(|s| s != "updated"),
            "{results}"
        );
        for place in [&text, &results] {
            assert!(!place.contains("wr0ng-p4ssword"), "{place}");
        }
        // A refused password stops the run at once and says so (not "the
        // API cannot be reached ... check --base-url").
        if refused {
            assert!(
                text.contains("the proxy refused the user and password (407")
                    && !text.contains("check --base-url"),
                "{text}"
            );
        }
    }
    assert_eq!(sandbox.stats().requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rehearsal_over_tls_trusts_its_own_sandbox_and_takes_only_the_proxy_flag() {
    let dir = setup(12);
    let proxy = ConnectProxy::start(None).await;
    let mut command = common::bin();
    command
        .current_dir(dir.path())
        .args([
            "apply",
            "in.csv",
            "--sandbox",
            "--tls",
            "--proxy",
            &proxy.url(None),
        ])
        // The in-process sandbox is out of reach of the environment's proxy.
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env_remove("SSL_CERT_FILE");
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("at https://127.0.0.1:"), "{text}");
    assert!(text.contains("(from --proxy)"), "{text}");
    assert!(!proxy.seen().is_empty());
    assert!(
        proxy
            .seen()
            .iter()
            .all(|s| s.line.starts_with("CONNECT 127.0.0.1:"))
    );
    let (rows, _) = read_results_file(&dir.path().join("in.rehearsal.csv"));
    assert_eq!(rows.len(), 12);
    assert!(
        rows.iter().all(|row| row["status"] == "updated"),
        "{rows:?}"
    );
}

#[test]
fn sandbox_tls_prints_its_authoritys_file_and_removes_it_at_the_end() {
    let dir = setup(8);
    let mut sandbox = common::bin()
        .args([
            "sandbox",
            "--tls",
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            KEY,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(sandbox.stdout.take().unwrap()).lines();
    let (mut base, mut ca) = (None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(url) = line.trim().strip_prefix("base URL:") {
            base = Some(url.trim().to_string());
        }
        if let Some(rest) = line.trim().strip_prefix("CA certificate:") {
            ca = Some(PathBuf::from(rest.split_whitespace().next().unwrap()));
        }
        if line.starts_with("Stats at") {
            break;
        }
    }
    let (base, ca) = (base.unwrap(), ca.unwrap());
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let pem = std::fs::read_to_string(&ca).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert!(!pem.contains("PRIVATE KEY"));

    let mut command = common::bin();
    command
        .current_dir(dir.path())
        .args(["apply", "in.csv", "--base-url", &base])
        .args(["--ca-cert", ca.to_str().unwrap()])
        .env("GCORE_API_KEY", KEY);
    let output = command.output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(statuses(dir.path()).iter().all(|s| s == "updated"));

    kill(sandbox.id(), "TERM");
    assert!(sandbox.wait().unwrap().success());
    assert!(!ca.exists(), "{} is left behind", ca.display());
}

#[test]
fn certificate_files_that_cannot_serve_are_refused_before_anything_is_sent() {
    let dir = setup(3);
    let path = |name: &str| dir.path().join(name);
    std::fs::write(path("empty.pem"), "").unwrap();
    std::fs::write(
        path("key.pem"),
        "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::write(path("der.cer"), [0x30, 0x82, 0x01, 0x0a, 0x02]).unwrap();
    let cases = [
        ("missing.pem", "cannot be read"),
        (".", "is not a regular file"),
        ("empty.pem", "holds no certificate"),
        ("key.pem", "holds a private key, not a certificate"),
        ("der.cer", "openssl x509 -inform der"),
    ];
    for (name, want) in cases {
        let output = common::bin()
            .current_dir(dir.path())
            .args([
                "apply",
                "in.csv",
                "--base-url",
                "https://127.0.0.1:9",
                "--ca-cert",
                name,
            ])
            .env("GCORE_API_KEY", KEY)
            .output()
            .unwrap();
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{name}: {text}");
        assert!(text.contains(want), "{name}: {text}");
        assert!(text.contains("--ca-cert"), "{name}: {text}");
        assert!(!path("in.results.csv").exists());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_file_of_another_authority_is_named_in_the_message() {
    let dir = setup(3);
    let (sandbox, _ca) = tls_sandbox(dir.path()).await;
    // A certificate of another authority (or the server's own would be): not the issuer.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.path().join("other.pem"), other.cert.pem()).unwrap();
    let output = apply(
        dir.path(),
        &sandbox.base_url(),
        &["--ca-cert", "other.pem"],
        &[],
    )
    .await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("neither the system's trust store nor the --ca-cert files hold"),
        "{text}"
    );
    assert!(text.contains("not the server's own certificate"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_that_does_not_speak_tls_or_never_finishes_the_handshake_is_said_so() {
    let dir = setup(2);
    // A plain-HTTP sandbox asked for https://.
    let plain = common::start_sandbox(KEY, 1, Default::default()).await;
    let https = plain.base_url().replace("http://", "https://");
    let output = apply(dir.path(), &https, &["--max-retries", "0"], &[]).await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("does not speak TLS on this port"), "{text}");
    assert!(
        statuses(dir.path()).iter().all(|s| s == "not_attempted"),
        "{text}"
    );

    // A port that takes the connection and never answers the handshake.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("https://{}", silent.local_addr().unwrap());
    let output = apply(
        dir.path(),
        &base,
        &["--max-retries", "0", "--timeout", "60"],
        &[],
    )
    .await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("no connection (TCP and TLS) within 5 s"),
        "{text}"
    );
    assert!(!text.contains("no answer within"), "{text}");
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_proxy_flag_and_star_bypass_the_environments_proxy() {
    let dir = setup(4);
    let (sandbox, ca) = tls_sandbox(dir.path()).await;
    let ca = ca.to_str().unwrap();
    let proxy = ConnectProxy::start(None).await;
    let url = proxy.url(None);
    for (args, vars) in [
        (
            vec!["--ca-cert", ca, "--no-proxy"],
            vec![("HTTPS_PROXY", url.as_str())],
        ),
        (
            vec!["--ca-cert", ca],
            vec![("HTTPS_PROXY", url.as_str()), ("NO_PROXY", "*")],
        ),
    ] {
        let output = apply(dir.path(), &sandbox.base_url(), &args, &vars).await;
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert!(proxy.seen().is_empty(), "{args:?} {vars:?}");
    }
    // A password in --proxy is a password in `ps`: the run says so.
    let with_password = proxy.url(Some(("u", "pw-on-the-command-line")));
    let output = apply(
        dir.path(),
        &sandbox.base_url(),
        &["--ca-cert", ca, "--proxy", &with_password],
        &[],
    )
    .await;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("put the proxy URL in HTTPS_PROXY instead"),
        "{text}"
    );
    assert!(!text.contains("pw-on-the-command-line"), "{text}");
}

#[test]
fn tls_and_sandbox_users_go_only_with_sandbox() {
    let dir = setup(1);
    for flag in [["--tls", ""], ["--sandbox-users", "5"]] {
        let output = common::bin()
            .current_dir(dir.path())
            .args(["apply", "in.csv", "--dry-run"])
            .args(flag.iter().filter(|a| !a.is_empty()))
            .output()
            .unwrap();
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{flag:?}: {text}");
        assert!(text.contains("goes with --sandbox"), "{text}");
    }
}
