//! Helpers shared by the black-box tests: the built binary, reading a
//! results file, inputs, signals, and waiting on an event (never for a
//! fixed time). Each test file uses a part of them.

pub(crate) mod proxy;

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant};

/// The built binary.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_gcore-iam-bulk");

/// A results row as a map from column to cell.
pub(crate) type Row = HashMap<String, String>;

/// The rows of a results file's text; checks that it has the 25 columns
/// (and a plan's `read_as`, `planned_at` and `plan_check`).
pub(crate) fn read_results(bytes: &[u8]) -> Vec<Row> {
    let mut reader = csv::Reader::from_reader(bytes);
    let headers = reader.headers().unwrap().clone();
    // A plan has three more: read_as, planned_at and plan_check.
    let plan = headers.len() == 28
        && &headers[25] == "read_as"
        && &headers[26] == "planned_at"
        && &headers[27] == "plan_check";
    assert!(headers.len() == 25 || plan, "results columns: {headers:?}");
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            headers
                .iter()
                .map(String::from)
                .zip(record.iter().map(String::from))
                .collect()
        })
        .collect()
}

/// How many rows a results file's text holds, and its first `first` rows
/// (checked as [`read_results`] checks them): a file of 150,000 rows took
/// seconds to read whole into maps in a debug build. (A results file's rows
/// hold no line breaks: the tests that call this write none.)
pub(crate) fn count_results(bytes: &[u8], first: usize) -> (usize, Vec<Row>) {
    let count = csv::Reader::from_reader(bytes).records().count();
    let head: Vec<u8> = bytes
        .split_inclusive(|&byte| byte == b'\n')
        .take(first + 1)
        .flatten()
        .copied()
        .collect();
    (count, read_results(&head))
}

/// The rows of the results file at `path` and its text; nothing when there
/// is no file.
pub(crate) fn read_results_file(path: &Path) -> (Vec<Row>, String) {
    match std::fs::read_to_string(path) {
        Ok(text) => (read_results(text.as_bytes()), text),
        Err(_) => (Vec::new(), String::new()),
    }
}

/// `user_id,lang` rows for users 1..=rows.
pub(crate) fn lang_rows(rows: u64) -> String {
    let mut text = String::from("user_id,lang\n");
    for id in 1..=rows {
        let lang = ["de", "en", "ru", "zh", "az"][(id % 5) as usize];
        text.push_str(&format!("{id},{lang}\n"));
    }
    text
}

/// The built binary run in `dir` with `key` in `GCORE_API_KEY` and no
/// proxy or base URL from the environment of whoever runs the tests.
pub(crate) fn command_in(dir: &Path, key: &str) -> std::process::Command {
    let mut command = bin();
    command.current_dir(dir).env("GCORE_API_KEY", key);
    command
}

/// The one way the tests start the binary: nothing of the developer's
/// environment reaches it: no `GCORE_*` variable, no proxy or trust-store
/// variable, and an empty config folder (a test that needs a config file
/// sets `XDG_CONFIG_HOME` again).
pub(crate) fn bin() -> std::process::Command {
    let mut command = std::process::Command::new(BIN);
    clean(&mut command);
    command
}

/// What [`bin`] leaves out of the environment, for a command that starts
/// the binary another way (through `sh` under limits).
pub(crate) fn clean(command: &mut std::process::Command) {
    static EMPTY_CONFIG: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let config = EMPTY_CONFIG.get_or_init(|| tempfile::tempdir().unwrap());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("GCORE_") {
            command.env_remove(name);
        }
    }
    for name in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ] {
        command.env_remove(name);
    }
    command.env("XDG_CONFIG_HOME", config.path());
    // No remembered rate limit reaches a run, and none is kept: the state
    // folder is a plain file, where no folder can be made (a test of the
    // memory sets XDG_STATE_HOME again).
    static NO_STATE: std::sync::OnceLock<tempfile::NamedTempFile> = std::sync::OnceLock::new();
    let no_state = NO_STATE.get_or_init(|| tempfile::NamedTempFile::new().unwrap());
    command.env("XDG_STATE_HOME", no_state.path());
}

/// Sends `signal` (`INT`, `TERM`, `KILL`) to the process `pid`, at once:
/// no `kill` process to start first (a test that signals on an event has
/// the signal land within microseconds of it).
pub(crate) fn kill(pid: u32, signal: &str) {
    let number = match signal {
        "INT" => libc::SIGINT,
        "TERM" => libc::SIGTERM,
        "KILL" => libc::SIGKILL,
        other => panic!("no signal {other} here"),
    };
    let target = libc::pid_t::try_from(pid).unwrap();
    // SAFETY: kill(2) takes two integers and touches no memory of this process.
    let sent = unsafe { libc::kill(target, number) };
    assert_eq!(
        sent,
        0,
        "kill -{signal} {pid}: {}",
        std::io::Error::last_os_error()
    );
}

/// How long a test waits for what it waits on before it fails.
pub(crate) const WITHIN: Duration = Duration::from_secs(30);

/// Waits until `done` holds, looking every 10 ms, for at most `within`
/// (then the test fails, saying `what` it waited for). A test waits for
/// what it needs (a request the server saw, a process blocked on a pipe),
/// never for a fixed time that a loaded machine may not keep to.
pub(crate) async fn until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "waited {within:?} for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What a process waits on a pipe for.
pub(crate) enum Pipe {
    Read,
    Write,
}

/// Whether a thread of the process `pid` waits in the kernel to read or
/// write a pipe: its wait channel (Linux) names it, as `pipe_read` or
/// `pipe_write`, `pipe_wait_readable` or `pipe_wait_writable`, `anon_`
/// before them, or `pipe_wait` alone (kernels before 5.x), by version.
pub(crate) fn waits_on_pipe(pid: u32, to: Pipe) -> bool {
    let word = match to {
        Pipe::Read => "read",
        Pipe::Write => "writ",
    };
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    threads.flatten().any(|thread| {
        std::fs::read_to_string(thread.path().join("wchan")).is_ok_and(|channel| {
            channel.contains("pipe") && (channel.contains(word) || channel.trim() == "pipe_wait")
        })
    })
}

/// Reads `stderr` until a line that contains `wanted`, and returns the
/// text read; fails the test if the stream ends first.
pub(crate) fn read_until_line(stderr: &mut impl BufRead, wanted: &str) -> String {
    let mut text = String::new();
    loop {
        let before = text.len();
        let read = stderr.read_line(&mut text).unwrap();
        assert!(read > 0, "no line with {wanted:?} in:\n{text}");
        if text[before..].contains(wanted) {
            return text;
        }
    }
}

/// A client for the sandbox over plain HTTP. `reqwest::Client::new()`
/// reads the machine's root certificates, 26 ms a client in a debug
/// build, which a test that asks for 300 users paid 300 times; no proxy
/// from the environment either.
pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .no_proxy()
        .build()
        .unwrap()
}

/// Spawns `apply INPUT ARGS... --base-url URL` in `dir` with `key` in
/// `GCORE_API_KEY`; stderr is captured.
pub(crate) fn spawn_apply(
    dir: &Path,
    input: &str,
    base_url: &str,
    key: &str,
    args: &[&str],
) -> std::process::Child {
    bin()
        .current_dir(dir)
        .args(["apply", input, "--base-url", base_url])
        .args(args)
        .env("GCORE_API_KEY", key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a child process off the async runtime.
pub(crate) async fn wait(child: std::process::Child) -> std::process::Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
}

/// A sandbox of 1,000 users on a free loopback port, with `key` and `seed`.
pub(crate) async fn start_sandbox(
    key: &str,
    seed: u64,
    faults: gcore_iam_bulk::sandbox::Faults,
) -> gcore_iam_bulk::sandbox::RunningSandbox {
    let config = gcore_iam_bulk::sandbox::SandboxConfig {
        users: 1000,
        api_key: key.to_string(),
        seed,
        faults,
        given: None,
    };
    gcore_iam_bulk::sandbox::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}
