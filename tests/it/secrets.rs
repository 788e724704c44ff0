//! The key never shows, and a server cannot write to the terminal: the
//! built binary with the usual config slips, a server (wiremock on
//! loopback, port 0) that echoes the key in other spellings and sends
//! escape sequences, and a key command that hangs.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common;

use common::{kill, lang_rows};

/// A key with the characters each encoding escapes.
const KEY: &str = "12345$SecretKey/abc+def=ghi&jkl";

/// The binary in `dir`, `dir/config` as the config folder, and nothing of
/// the developer's environment.
fn command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = common::bin();
    command
        .current_dir(dir)
        .args(args)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env_remove("GCORE_API_KEY")
        .env_remove("GCORE_BASE_URL")
        .env_remove("GCORE_PROFILE")
        .env_remove("HTTPS_PROXY")
        .env_remove("HTTP_PROXY")
        .env_remove("ALL_PROXY")
        .envs(env.iter().copied());
    command
}

async fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = command(dir, args, env);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let folder = dir.join("config").join("gcore-iam-bulk");
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Everything a run left for a person to see: stdout, stderr and the
/// files it wrote.
fn everything(dir: &Path, output: &Output) -> String {
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    for file in ["out.csv", "summary.json", "run.html"] {
        text.push_str(&std::fs::read_to_string(dir.join(file)).unwrap_or_default());
    }
    text
}

/// The key's spellings no output may hold: as written, its start, and
/// percent-encoded, JSON- and HTML-escaped.
fn spellings(key: &str) -> Vec<String> {
    let url_upper: String = key
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    vec![
        key.to_string(),
        key[..12].to_string(),
        url_upper.clone(),
        url_upper.to_lowercase(),
        key.replace('/', "\\/"),
        key.replace('&', "&amp;"),
    ]
}

fn assert_no_key(key: &str, text: &str, what: &str) {
    for form in spellings(key) {
        assert!(!text.contains(&form), "{what}: {form:?} shows in\n{text}");
    }
}

#[tokio::test]
async fn the_usual_config_slips_never_show_the_key() {
    // `$` would be expanded by sh in a command; a plain key too.
    for key in [KEY, "plainSecretKey0123456789"] {
        let slips = [
            format!("[profiles.a]\napi_key = {key}\n"),
            format!("[profiles.a]\napi_key = \"{key}\"\n"),
            format!("[profiles.a]\ntoken = \"{key}\"\n"),
            format!("[profiles.a]\napi_key_file = \"{key}\"\n"),
            format!("[profiles.a]\napi_key_command = \"{key}\"\n"),
            format!(
                "[profiles.a]\nbase_url = \"https://{key}@api.gcore.com\"\napi_key_command = \"{key}\"\n"
            ),
            format!("[profiles.a]\nrate = 5\n{key}\n"),
            // A command that prints the key where errors go, or is `echo KEY`.
            format!("[profiles.a]\napi_key_command = \"echo {key} >&2; exit 3\"\n"),
            format!("[profiles.a]\napi_key_command = \"echo {key} >&2\"\n"),
            "[profiles.a]\napi_key_command = \"cat keyfile >&2; exit 1\"\n".to_string(),
            // The key pasted as the base URL, in its query, or as the rate.
            format!("[profiles.a]\nbase_url = \"{key}\"\napi_key_file = \"k\"\n"),
            format!(
                "[profiles.a]\nbase_url = \"https://api.example/?k={key}\"\napi_key_file = \"k\"\n"
            ),
            format!("[profiles.a]\nrate = \"{key}\"\napi_key_file = \"k\"\n"),
            // The key pasted as a profile's name: the list of profiles.
            format!("[profiles.\"{key}\"]\nrate = 5\n"),
        ];
        for slip in slips {
            let dir = tempfile::tempdir().unwrap();
            let dir = dir.path();
            std::fs::write(dir.join("in.csv"), lang_rows(2)).unwrap();
            std::fs::write(dir.join("keyfile"), key).unwrap();
            write_config(dir, &slip);
            let args = [
                "apply",
                "in.csv",
                "--profile",
                "a",
                "-o",
                "out.csv",
                "--summary-json",
                "summary.json",
            ];
            let applied = run(dir, &args, &[]).await;
            assert_eq!(applied.status.code(), Some(2), "{slip}");
            assert_no_key(key, &everything(dir, &applied), &slip);
            let shown = run(dir, &["config", "--profile", "a"], &[]).await;
            assert_no_key(key, &everything(dir, &shown), &slip);
        }
        // The key pasted as the proxy's user name. The proxy cannot be
        // reached: each row fails at its first attempt (no backoff to wait
        // through), and as many rows as it takes to stop the run put its
        // stopping note in the output too.
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        // Five failed connections, none answered, stop a run
        // (`StopReason::UNREACHABLE_AFTER`).
        let rows = 5;
        std::fs::write(dir.join("in.csv"), lang_rows(rows)).unwrap();
        let proxy = format!("http://{key}@127.0.0.1:9");
        let env = [("HTTPS_PROXY", proxy.as_str()), ("GCORE_API_KEY", "k")];
        let args = [
            "apply",
            "in.csv",
            "--base-url",
            "https://api.example",
            "-o",
            "out.csv",
            "--rate",
            "0",
            "--max-retries",
            "0",
        ];
        let applied = run(dir, &args, &env).await;
        let shown = everything(dir, &applied);
        assert!(
            shown.contains("stopping: the API cannot be reached"),
            "{shown}"
        );
        assert_no_key(key, &shown, "the proxy's user");
        // The key pasted as the proxy itself, the key in use too.
        let env = [("HTTPS_PROXY", key), ("GCORE_API_KEY", key)];
        let args = [
            "apply",
            "in.csv",
            "--base-url",
            "https://api.example",
            "-o",
            "out.csv",
            "--summary-json",
            "summary.json",
            "--rate",
            "0",
            "--max-retries",
            "0",
        ];
        let applied = run(dir, &args, &env).await;
        assert_no_key(key, &everything(dir, &applied), "the proxy");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_echoes_the_key_and_sends_escapes_shows_neither() {
    let server = MockServer::start().await;
    let url: String = KEY
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => char::from(b).to_string(),
            _ => format!("%{b:02x}"),
        })
        .collect();
    let html = KEY.replace('&', "&amp;");
    // The echoes a plain search misses: a run cut from the left, the key
    // upper-cased, encoded twice, and in base64 as a Basic header.
    let twice = url.replace('%', "%25");
    let basic = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("user:{KEY}"))
    };
    let message = format!(
        "key {url} or {html} or {}… refused \u{1b}[2J\u{1b}]0;owned\u{7} \u{202e}txt.exe \
         zero\u{200b}width, hangul\u{3164}filler; also …{} and {} and {twice} from \
         Authorization: Basic {basic}",
        &KEY[..14],
        &KEY[KEY.len() - 14..],
        KEY.to_uppercase(),
    );
    Mock::given(method("PATCH"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(serde_json::json!({ "message": message })),
        )
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("in.csv"), lang_rows(3)).unwrap();
    let ran = run(
        dir,
        &[
            "apply",
            "in.csv",
            "--base-url",
            &server.uri(),
            "--rate",
            "0",
            "-v",
            "-o",
            "out.csv",
            "--summary-json",
            "summary.json",
            "--report",
            "run.html",
        ],
        &[("GCORE_API_KEY", KEY)],
    )
    .await;
    assert_eq!(ran.status.code(), Some(1));
    let seen = everything(dir, &ran);
    assert_no_key(KEY, &seen, "an echoing server");
    let basic_key = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(KEY)
    };
    for form in [
        &KEY[KEY.len() - 12..],
        &KEY[8..20],
        &KEY.to_uppercase()[..12],
        "12345%2524",
        &basic[..16],
        &basic_key[..16],
    ] {
        assert!(!seen.contains(form), "{form:?} shows in\n{seen}");
    }
    let stderr = String::from_utf8_lossy(&ran.stderr);
    for raw in ['\u{1b}', '\u{7}', '\u{202e}', '\u{200b}', '\u{3164}'] {
        assert!(
            !stderr.contains(raw),
            "{raw:?} reached the terminal:\n{stderr}"
        );
    }
    assert!(stderr.contains("\\u{1b}[2J"), "{stderr}");
    assert!(stderr.contains("\\u{202e}txt.exe"), "{stderr}");
    assert!(
        stderr.contains("account: 127.0.0.1:") && stderr.contains("key from GCORE_API_KEY"),
        "{stderr}"
    );
    let report = std::fs::read_to_string(dir.join("run.html")).unwrap();
    assert!(
        !report.contains('\u{200b}'),
        "U+200B left raw in the report"
    );
}

/// The second hostile round's leaks: a 200 answer whose user fields spell
/// the key through JSON escapes (`\u0025` for the `%` of its URL
/// encoding, base64 letters as `\u00XX`), a short key quoted by the note
/// on an answer that is not a user, the key as a profile's name, as a
/// plain-http base URL's path, as a URL's scheme, and as the base URL's
/// host in `config`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_spelled_through_json_escapes_names_and_urls_never_show() {
    let server = MockServer::start().await;
    let escaped_url: String = KEY
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => char::from(b).to_string(),
            _ => format!("\\u0025{b:02X}"),
        })
        .collect();
    let base64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(KEY)
    };
    let escaped_base64: String = base64.bytes().map(|b| format!("\\u{b:04x}")).collect();
    let body = format!(
        r#"{{"id": 1, "email": "a@example.com", "name": "{escaped_url}", "company": "{escaped_base64}", "lang": "en", "groups": []}}"#
    );
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("in.csv"), lang_rows(1)).unwrap();
    let args = [
        "apply",
        "in.csv",
        "--base-url",
        &server.uri(),
        "--rate",
        "0",
        "-o",
        "out.csv",
        "--summary-json",
        "summary.json",
        "--report",
        "run.html",
    ];
    let ran = run(dir, &args, &[("GCORE_API_KEY", KEY)]).await;
    let seen = everything(dir, &ran);
    assert_eq!(ran.status.code(), Some(0), "{seen}");
    assert_no_key(KEY, &seen, "JSON-escaped echoes");
    let results = std::fs::read_to_string(dir.join("out.csv")).unwrap();
    assert!(
        results.contains(",***,"),
        "the echoes were blanked: {results}"
    );
    assert!(!seen.contains(&base64[..16]), "base64 shows in\n{seen}");

    // A short key, quoted by the note on an answer whose id is a string.
    let short = "aB3$dE6/gH9";
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            format!(r#"{{"id": "{short}", "email": "a@example.com"}}"#),
            "application/json",
        ))
        .mount(&server)
        .await;
    let args = [
        "apply",
        "in.csv",
        "--base-url",
        &server.uri(),
        "--rate",
        "0",
        "-o",
        "out.csv",
        "--summary-json",
        "summary.json",
        "--overwrite",
    ];
    let ran = run(dir, &args, &[("GCORE_API_KEY", short)]).await;
    let seen = everything(dir, &ran);
    assert!(seen.contains("not a user object"), "{seen}");
    assert!(!seen.contains(short), "the short key shows in\n{seen}");

    // The key as a profile's name, with a key file.
    let config = write_config(
        dir,
        &format!("[profiles.\"{KEY}\"]\napi_key_file = \"k\"\n"),
    );
    std::fs::write(config.with_file_name("k"), KEY).unwrap();
    let args = [
        "apply",
        "in.csv",
        "--profile",
        KEY,
        "--base-url",
        &server.uri(),
        "--rate",
        "0",
        "-o",
        "out.csv",
        "--summary-json",
        "summary.json",
        "--overwrite",
    ];
    let ran = run(dir, &args, &[]).await;
    let seen = everything(dir, &ran);
    assert!(seen.contains("account: 127.0.0.1:"), "{seen}");
    assert_no_key(KEY, &seen, "the key as a profile's name");
    // Its key file gone: the message names the profile, not the key.
    std::fs::remove_file(config.with_file_name("k")).unwrap();
    let ran = run(dir, &args, &[]).await;
    let seen = everything(dir, &ran);
    assert_eq!(ran.status.code(), Some(2), "{seen}");
    assert!(
        seen.contains("(a name not shown: it may be a key)"),
        "{seen}"
    );
    assert_no_key(KEY, &seen, "the key as a profile's name, its file gone");
    std::fs::write(config.with_file_name("k"), KEY).unwrap();
    let shown = run(dir, &["config", "--profile", KEY], &[]).await;
    assert_no_key(
        KEY,
        &everything(dir, &shown),
        "config, the key as a profile's name",
    );

    // The key in a plain-http base URL's path, as its scheme, as its host.
    let plain = "plainSecretKey0123456789";
    for base in [
        format!("http://example.com/{plain}"),
        format!("{plain}://127.0.0.1/"),
        format!("http://{plain}@example.com"),
    ] {
        let args = ["apply", "in.csv", "--base-url", &base, "-o", "o2.csv"];
        let ran = run(dir, &args, &[("GCORE_API_KEY", plain)]).await;
        assert_eq!(ran.status.code(), Some(2), "{base}");
        let seen = everything(dir, &ran).to_lowercase();
        assert!(!seen.contains(&plain.to_lowercase()), "{base}: {seen}");
    }
    let host = format!("https://{plain}");
    let shown = run(
        dir,
        &["config"],
        &[("GCORE_API_KEY", plain), ("GCORE_BASE_URL", &host)],
    )
    .await;
    let seen = everything(dir, &shown).to_lowercase();
    assert!(seen.contains("base url:"), "{seen}");
    assert!(!seen.contains(&plain.to_lowercase()), "config: {seen}");
}

/// Whether the process `pid` is gone (or a zombie left for its reaper),
/// polled for a few seconds at most.
fn gone(pid: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat)
                if stat
                    .rsplit(')')
                    .next()
                    .is_some_and(|s| s.trim_start().starts_with('Z')) =>
            {
                return true;
            }
            Ok(_) if Instant::now() > deadline => return false,
            Ok(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// A profile whose command starts a child that would live for 1000 s,
/// writing its pid to `dir/pid`.
fn hanging_profile(dir: &Path, timeout: f64) {
    let path = write_config(
        dir,
        &format!(
            "[profiles.hang]\napi_key_command = \"sleep 1000 & echo $! > pid; wait\"\n\
             api_key_command_timeout = {timeout}\n"
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    for place in [&path, &path.parent().unwrap().to_path_buf()] {
        let mode = std::fs::metadata(place).unwrap().permissions().mode() & !0o022;
        std::fs::set_permissions(place, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

#[tokio::test]
async fn a_hanging_key_command_times_out_and_leaves_no_process_behind() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("in.csv"), lang_rows(2)).unwrap();
    hanging_profile(dir, 0.5);
    let started = Instant::now();
    let ran = run(dir, &["apply", "in.csv", "--profile", "hang"], &[]).await;
    assert_eq!(ran.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(stderr.contains("did not finish within 0.5 s"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30));
    let pid = std::fs::read_to_string(dir.join("pid")).unwrap();
    assert!(
        gone(pid.trim()),
        "the command's child {pid} outlived the run"
    );
}

#[tokio::test]
async fn sigterm_while_the_key_command_runs_stops_it_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("in.csv"), lang_rows(2)).unwrap();
    hanging_profile(dir, 60.0);
    let child = command(dir, &["apply", "in.csv", "--profile", "hang"], &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command has started its child once the pid file holds a line.
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid = loop {
        let text = std::fs::read_to_string(dir.join("pid")).unwrap_or_default();
        if text.ends_with('\n') {
            break text.trim().to_string();
        }
        assert!(Instant::now() < deadline, "the key command never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    kill(child.id(), "TERM");
    let out = common::wait(child).await;
    assert_eq!(
        out.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(gone(&pid), "the command's child {pid} outlived the run");
}

/// A proxy whose own error page repeats its password, as written and in
/// the `Basic` credentials it was sent (hostile round, 2026-12-06: it
/// showed on the terminal and in the results, the summary JSON and the
/// report); and a key pasted as the proxy, which is no URL: neither shows.
#[tokio::test]
async fn a_proxy_that_repeats_its_password_in_its_error_page_does_not_show_it() {
    const PASSWORD: &str = "Pr0xy-Pass$%&word-77";
    let proxy = MockServer::start().await;
    let basic = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("user:{PASSWORD}"))
    };
    Mock::given(method("PATCH"))
        .respond_with(
            ResponseTemplate::new(502)
                .set_body_string(format!("proxy denied Basic {basic} for user:{PASSWORD}")),
        )
        .mount(&proxy)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("in.csv"), lang_rows(2)).unwrap();
    let encoded = PASSWORD
        .replace('$', "%24")
        .replace('%', "%25")
        .replace("%2524", "%24");
    let proxy_url = format!(
        "http://user:{}@{}",
        encoded.replace('&', "%26"),
        proxy.address()
    );
    let args = [
        "apply",
        "in.csv",
        "--base-url",
        "http://127.0.0.1:9",
        "-o",
        "out.csv",
        "--max-retries",
        "0",
        "--summary-json",
        "summary.json",
        "--report",
        "run.html",
    ];
    let env = [("HTTP_PROXY", proxy_url.as_str()), ("GCORE_API_KEY", KEY)];
    let ran = run(dir, &args, &env).await;
    let text = everything(dir, &ran);
    assert!(
        text.contains("502"),
        "the proxy's answer is reported: {text}"
    );
    assert_no_key(PASSWORD, &text, "a proxy's page");
    assert!(!text.contains(&basic), "{text}");
    // A key pasted as the proxy, which is no URL: refused before anything
    // is sent, and not shown.
    let other = "Other-Key-Pasted$%&here";
    let env = [("HTTP_PROXY", other), ("GCORE_API_KEY", KEY)];
    let args = [
        "apply",
        "in.csv",
        "-o",
        "other.csv",
        "--base-url",
        "http://127.0.0.1:9",
    ];
    let refused = run(dir, &args, &env).await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("Other-Key"), "{stderr}");
    assert!(stderr.contains("HTTP_PROXY"), "{stderr}");
}
