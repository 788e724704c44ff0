use super::*;
use std::time::Instant;

const T: Duration = Duration::from_secs(30);

fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn pick(text: &str, name: &str) -> Result<Option<Profile>, String> {
    let (_dir, path) = write(text);
    select(Some(name), |_| None, Some(&path)).map_err(|e| e.to_string())
}

#[test]
fn a_profile_is_read_and_named_by_flag_or_environment() {
    let text = "[profiles.a]\nbase_url = \"https://a.example\"\nrate = 20\nburst = 5\n\
                concurrency = 4\napi_key_command = \"echo k\"\n\n[profiles.b]\nrate = \"auto\"\n";
    let a = pick(text, "a").unwrap().unwrap();
    assert_eq!(a.base_url.as_deref(), Some("https://a.example"));
    assert_eq!(a.rate.as_deref(), Some("20"));
    assert_eq!((a.burst, a.concurrency), (Some(5), Some(4)));
    assert_eq!(a.key, Some(KeyFrom::Command("echo k".to_string())));
    assert_eq!(
        pick(text, "b").unwrap().unwrap().rate.as_deref(),
        Some("auto")
    );
    let (_dir, path) = write(text);
    let by_env = select(
        None,
        |name| (name == PROFILE_ENV).then(|| "b".into()),
        Some(&path),
    );
    assert_eq!(by_env.unwrap().unwrap().name, "b");
    assert_eq!(select(None, |_| None, Some(&path)).unwrap(), None);
}

#[test]
fn mistakes_name_the_file_the_line_and_the_key() {
    let unknown = pick("[profiles.a]\nrate = 5\nbase_ulr = \"x\"\n", "a").unwrap_err();
    assert!(unknown.contains("config.toml has a mistake"), "{unknown}");
    assert!(unknown.contains("line 3"), "{unknown}");
    assert!(unknown.contains("base_ulr"), "{unknown}");
    let syntax = pick("[profiles.a\nrate = 5\n", "a").unwrap_err();
    assert!(syntax.contains("line 1"), "{syntax}");
    assert!(!syntax.contains('\n'), "{syntax}");
    let missing = pick("[profiles.a]\n[profiles.b]\n", "c").unwrap_err();
    assert!(
        missing.contains("no such profile") && missing.contains("a, b"),
        "{missing}"
    );
    // The usual slips with a key: never quoted back.
    let secret = "12345$Secret/Key+xyzw";
    for text in [
        format!("[profiles.a]\napi_key = \"{secret}\"\n"),
        format!("[profiles.a]\napi_key = {secret}\n"),
        format!("[profiles.a]\ntoken = \"{secret}\"\n"),
        format!("[profiles.a]\nrate = 5\n{secret}\n"),
        format!("[profiles.a]\nburst = \"{secret}\"\n"),
        format!("[profiles.a]\nbase_url = {secret}\n"),
        format!("[profiles.a]\n{secret} = 1\n"),
    ] {
        let error = pick(&text, "a").unwrap_err();
        assert!(!error.contains("Secret"), "{text}: {error}");
        assert!(error.contains("config.toml"), "{text}: {error}");
    }
    let key = pick(&format!("[profiles.a]\napi_key = {secret}\n"), "a").unwrap_err();
    assert!(key.contains("a key never goes in the config file"), "{key}");
    assert!(key.contains("line 2"), "{key}");
    let both = pick(
        "[profiles.a]\napi_key_file = \"k\"\napi_key_command = \"echo\"\n",
        "a",
    )
    .unwrap_err();
    assert!(both.contains("keep one"), "{both}");
    let wrong_type = pick("[profiles.a]\nburst = \"five\"\n", "a").unwrap_err();
    assert!(wrong_type.contains("burst"), "{wrong_type}");
    let absent = select(
        Some("a"),
        |_| None,
        Some(Path::new("/nonexistent/config.toml")),
    )
    .unwrap_err()
    .to_string();
    assert!(absent.contains("cannot be read"), "{absent}");
}

#[test]
fn the_key_command_runs_once_and_its_failures_are_clear() {
    assert_eq!(run_key_command("a", "printf ' k3y \\n'", T).unwrap(), "k3y");
    // What it printed (here "secret-out") is not quoted; the command is.
    let failed = run_key_command("a", "printf 'sec%s' ret-out; exit 3", T)
        .unwrap_err()
        .to_string();
    assert!(failed.contains("exited with 3"), "{failed}");
    assert!(!failed.contains("secret-out"), "{failed}");
    let empty = run_key_command("a", "true", T).unwrap_err().to_string();
    assert!(empty.contains("printed nothing"), "{empty}");
    // Output is capped as a key file is.
    let flood = run_key_command("a", "yes", T).unwrap_err().to_string();
    assert!(flood.contains("more than 4096 bytes"), "{flood}");
    // A command that is a key pasted in the wrong place is not quoted.
    let pasted = run_key_command("a", "12345$Secret/Key+xyzw", T)
        .unwrap_err()
        .to_string();
    assert!(!pasted.contains("Secret"), "{pasted}");
    assert!(pasted.contains("not shown"), "{pasted}");
}

#[test]
fn a_hanging_key_command_is_stopped_with_its_processes_at_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let command = format!("sleep 1000 & echo $! > '{}'; wait", pid_file.display());
    let started = Instant::now();
    let error = run_key_command("a", &command, Duration::from_millis(300))
        .unwrap_err()
        .to_string();
    assert!(error.contains("did not finish within 0.3 s"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(
        gone(pid.trim()),
        "the command's child {pid} is still running"
    );
}

/// Whether a process is gone (or a zombie waiting for its reaper),
/// polled for a few seconds at most: SIGKILL is delivered at once, the
/// reaping by init may take a moment.
fn gone(pid: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"));
        match state {
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

#[test]
fn a_config_file_others_may_write_runs_no_command_and_special_files_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let text = "[profiles.a]\napi_key_command = \"echo k\"\n";
    let (dir, path) = write(text);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let error = select(Some("a"), |_| None, Some(&path))
        .unwrap_err()
        .to_string();
    assert!(error.contains("chmod go-w"), "{error}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let error = select(Some("a"), |_| None, Some(&path))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("config folder") && error.contains("chmod go-w"),
        "{error}"
    );
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(select(Some("a"), |_| None, Some(&path)).is_ok());
    // A key file is fine in a loose folder: nothing is run.
    let fifo = dir.path().join("fifo.toml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|status| status.success()) {
        let error = select(Some("a"), |_| None, Some(&fifo))
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a regular file"), "{error}");
    }
}

#[test]
fn a_relative_key_file_is_found_beside_the_config_file() {
    let (_dir, path) = write("[profiles.a]\napi_key_file = \"a.key\"\n");
    let a = select(Some("a"), |_| None, Some(&path)).unwrap().unwrap();
    assert_eq!(
        a.key,
        Some(KeyFrom::File(path.parent().unwrap().join("a.key")))
    );
    assert_eq!(a.chosen_by, ChosenBy::Flag);
    assert_eq!(a.key_command_timeout, DEFAULT_KEY_COMMAND_TIMEOUT);
    let shown = key_path_shown(&path.parent().unwrap().join("12345$Secret"));
    assert!(
        !shown.contains("Secret") && shown.contains("not shown"),
        "{shown}"
    );
}

#[test]
fn a_value_with_quotes_or_escapes_in_it_is_never_shown() {
    let secret = r#"W\e<R%t&Y+u=I/o$P7a8S9d0F1g2H3j4K5"#;
    let escaped = secret.replace('\\', "\\\\");
    for line in [
        format!(r#"burst = "q\"{escaped}""#),
        format!("burst = 'q\"{secret}'"),
        format!(r#"api_key_command_timeout = "a\"{escaped}""#),
        format!(r#"concurrency = "a\"{escaped}""#),
        format!(r#"burst = """x"{escaped}""""#),
        format!("burst = '''x'{secret}'''"),
        format!("burst = \"\"\"x\n\"{escaped}\"\"\""),
        format!(r#"burst = "x`{escaped}`""#),
        format!(r#"burst = "x\u0022{escaped}""#),
        format!(r#""x`\"{escaped}" = 1"#),
    ] {
        let text = format!("[profiles.p]\napi_key_file = \"k\"\n{line}\n");
        let error = pick(&text, "p").unwrap_err();
        for piece in ["W\\", "e<R", "I/o", "P7a8", "4K5"] {
            assert!(!error.contains(piece), "{line}: {error}");
        }
        assert!(error.contains("line 3"), "{line}: {error}");
        assert!(!error.contains('\n'), "{line}: {error}");
    }
    let text = format!("[profiles.p]\nburst = \"q\\\"{escaped}\"\n");
    let error = pick(&text, "p").unwrap_err();
    assert!(
        error.ends_with("(`burst`): invalid type: string (not shown), expected u32"),
        "{error}"
    );
    // What toml says is kept where it says nothing of a value.
    let cases = [
        (
            "invalid type: integer `12`, expected a string",
            "invalid type: integer `12`, expected a string",
        ),
        (
            "invalid basic string, expected `\"`",
            "invalid basic string, expected `\"`",
        ),
        (
            "unknown field `base_ulr`, expected one of `base_url`, `rate`",
            "unknown field `base_ulr`, expected one of `base_url`, `rate`",
        ),
        (
            "unknown field `Ab$12345678901`, there are no fields",
            "unknown field (not shown), there are no fields",
        ),
        (
            "data did not match any variant of untagged enum RateValue",
            "data did not match any variant of untagged enum RateValue",
        ),
        (
            "invalid value: string \"x\\\"y",
            "invalid value: string (not shown)",
        ),
        (
            "invalid type: string \"a, expected x`Y`\"",
            "invalid type: string (not shown)",
        ),
        (
            "invalid value: integer `123456789012`, expected u32",
            "invalid value: integer (not shown), expected u32",
        ),
        (
            "unclosed array\nexpected `]`",
            "unclosed array; expected `]`",
        ),
    ];
    for (message, shown) in cases {
        assert_eq!(without_values(message), shown, "{message}");
    }
}

/// A value as a TOML basic string spells it, escapes and all; the
/// multi-line one (`"""`) keeps its line ends.
fn basic(value: &str, multi_line: bool) -> String {
    value
        .chars()
        .map(|c| match c {
            '"' | '\\' => format!("\\{c}"),
            '\n' if multi_line => "\n".to_string(),
            '\n' => "\\n".to_string(),
            c if c.is_control() => format!("\\u{:04X}", u32::from(c)),
            c => c.to_string(),
        })
        .collect()
}

#[test]
fn no_run_of_a_value_is_in_any_message_whatever_it_holds() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 300,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    // Every class of character, the quotes and escapes TOML and serde
    // use among them; a piece that is not a lowercase word every few
    // characters, so that no run of 12 reads as a name, which a
    // message may show (`shown_name`).
    let other = prop_oneof![
        "[A-Z]{1,3}",
        "[0-9]{1,3}",
        "[!-,./:-@\\[-^`{-~]",
        Just("\"\"\"".to_string()),
        Just("'''".to_string()),
        Just("\\\"".to_string()),
        Just("\\u0022".to_string()),
        Just("\n".to_string()),
        Just("\\n".to_string()),
        Just("\t".to_string()),
        "[éü€𝄞\u{200b}ß]",
    ];
    let value = prop::collection::vec(("[a-z_-]{0,5}", other), 4..14)
        .prop_map(|pieces| pieces.into_iter().map(|(a, b)| a + &b).collect::<String>());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    runner
        .run(&value, |value| {
            // Each run of 12 characters, as written and as Rust's
            // `{:?}` (serde's) escapes it.
            let debug = format!("{value:?}");
            let runs: Vec<String> = [value.as_str(), &debug[1..debug.len() - 1]]
                .iter()
                .flat_map(|text| {
                    let chars: Vec<char> = text.chars().collect();
                    chars.windows(12).map(String::from_iter).collect::<Vec<_>>()
                })
                .collect();
            let leaks = |shown: &str| runs.iter().any(|run| shown.contains(run.as_str()));
            // As toml's and serde's messages quote a value: escaped or
            // not, at the end, in single quotes, as a name.
            for message in [
                format!("invalid type: string {value:?}, expected u32"),
                format!("invalid type: string {value:?}"),
                format!("invalid value: string \"{value}\", expected u32"),
                format!("invalid value: '{value}'"),
                format!("unknown field `{value}`, expected one of `rate`, `burst`"),
                format!("unknown field `{value}`, there are no fields"),
                format!("unknown variant `{value}`, expected `auto`"),
            ] {
                let shown = without_values(&message);
                prop_assert!(!leaks(&shown), "{message:?} shown as {shown:?}");
            }
            // In a config file, where a type is wrong or the file does
            // not parse.
            let escaped = basic(&value, false);
            let mut quoted = vec![
                format!("\"{escaped}\""),
                format!("\"\"\"{}\"\"\"", basic(&value, true)),
                // Not escaped: where it breaks the string, the file
                // does not parse.
                format!("\"{value}\""),
                value.clone(),
            ];
            if !value.contains(['\'', '\n', '\t']) {
                quoted.push(format!("'{value}'"));
            }
            if !value.contains("'''") && !value.ends_with('\'') && !value.contains('\t') {
                quoted.push(format!("'''{value}'''"));
            }
            let mut lines = vec![format!("\"{escaped}\" = 1"), format!("{value} = 1")];
            for quoted in &quoted {
                lines.extend([
                    format!("burst = {quoted}"),
                    format!("concurrency = {quoted}"),
                    format!("api_key_command_timeout = {quoted}"),
                    format!("rate = {quoted}"),
                    format!("burst = [1, {quoted}]"),
                    format!("burst = {{ a = {quoted} }}"),
                    format!("burst = {quoted} 5"),
                    format!("base_url = {quoted}\nburst = x"),
                ]);
            }
            for line in lines {
                let text = format!("[profiles.p]\napi_key_file = \"k\"\n{line}\n");
                // A new file each time: ext4 writes a file cut to nothing
                // and written again out to the disk when it is closed
                // (auto_da_alloc), which took most of this test's time.
                let _ = std::fs::remove_file(&path);
                std::fs::write(&path, &text).unwrap();
                let Err(error) = select(Some("p"), |_| None, Some(&path)) else {
                    continue;
                };
                let error = error.to_string();
                prop_assert!(!leaks(&error), "{text:?} said {error:?}");
            }
            Ok(())
        })
        .unwrap();
}
