//! `completions SHELL` and `man`, run as a user would: every subcommand and
//! every long flag of each is in every shell's script and in the page.

use std::io::Read;
use std::process::{Command, Stdio};

use clap::CommandFactory;
use gcore_iam_bulk::Cli;

fn run(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_gcore-iam-bulk"))
        .args(args)
        .output()
        .expect("the binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).expect("UTF-8"),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `(subcommand, its long flags)` for every subcommand but clap's `help`.
fn surface() -> Vec<(String, Vec<String>)> {
    let mut cli = Cli::command();
    cli.build();
    cli.get_subcommands()
        .filter(|sub| sub.get_name() != "help")
        .map(|sub| {
            let flags = sub
                .get_arguments()
                .filter_map(|arg| arg.get_long().map(str::to_string))
                .collect();
            (sub.get_name().to_string(), flags)
        })
        .collect()
}

#[test]
fn every_shell_completes_every_subcommand_and_flag() {
    let surface = surface();
    assert!(surface.len() >= 7, "{surface:?}");
    assert!(
        surface
            .iter()
            .any(|(name, flags)| name == "apply" && flags.iter().any(|f| f == "max-rate"))
    );
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let (code, script, stderr) = run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {stderr}");
        for (name, flags) in &surface {
            assert!(script.contains(name.as_str()), "{shell}: no {name}");
            for flag in flags {
                // fish spells a long flag `-l rate`; the others `--rate`.
                let spelled = match shell {
                    "fish" => format!("-l {flag}"),
                    _ => format!("--{flag}"),
                };
                assert!(script.contains(&spelled), "{shell}: no {spelled} ({name})");
            }
        }
    }
    let (code, _, stderr) = run(&["completions", "tcsh"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("possible values: bash"), "{stderr}");
}

#[test]
fn the_man_page_has_a_section_for_every_subcommand_with_its_flags() {
    let (code, page, stderr) = run(&["man"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        page.starts_with(".ie") || page.contains(".TH gcore-iam-bulk 1"),
        "{page}"
    );
    assert!(page.contains(".SH \"EXIT STATUS\""));
    for (name, flags) in surface() {
        let heading = format!(".SH \"GCORE-IAM-BULK {}\"", name.to_uppercase());
        let start = page
            .find(&heading)
            .unwrap_or_else(|| panic!("no section {heading}"));
        let section = &page[start + heading.len()..];
        let section = &section[..section.find(".SH ").unwrap_or(section.len())];
        for flag in flags {
            // roff writes each `-` as `\-`.
            let spelled = format!("\\-\\-{}", flag.replace('-', "\\-"));
            assert!(section.contains(&spelled), "{name}: no {spelled}");
        }
    }
    // The page as `man` shows it.
    if Command::new("man").arg("--version").output().is_ok() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gcore-iam-bulk.1");
        std::fs::write(&file, &page).unwrap();
        let shown = Command::new("man")
            .arg("-l")
            .arg(&file)
            .env("MANWIDTH", "100")
            .env("MANPAGER", "cat")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&shown.stdout);
        assert!(text.contains("--skip-unchanged"), "{text}");
        assert!(text.contains("EXIT STATUS"), "{text}");
    }
}

#[test]
fn a_reader_that_stops_early_is_no_error() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gcore-iam-bulk"))
        .arg("man")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read nothing and close the pipe, as `| head -0` would.
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn bash_completes_subcommands_and_their_flags_for_real() {
    let (code, script, _) = run(&["completions", "bash"]);
    assert_eq!(code, 0);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gcore-iam-bulk.bash");
    std::fs::write(&file, script).unwrap();
    // What bash asks the completion function when TAB is pressed after LINE.
    let complete = |line: &str| {
        let program = r#"source "$1"; complete -p gcore-iam-bulk >/dev/null || exit 9
            read -ra W <<< "$2"; [[ "$2" == *" " ]] && W+=("")
            COMP_WORDS=("${W[@]}"); COMP_CWORD=$((${#W[@]} - 1))
            func=$(complete -p gcore-iam-bulk | sed -E 's/.*-F ([^ ]+).*/\1/')
            "$func" gcore-iam-bulk "${W[-1]}" "${W[-2]}"; echo "${COMPREPLY[*]}""#;
        let output = Command::new("bash")
            .args(["-c", program, "bash"])
            .arg(&file)
            .arg(line)
            .output()
            .expect("bash runs");
        assert!(output.status.success(), "{line}: {output:?}");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    assert_eq!(complete("gcore-iam-bulk ap"), "apply");
    assert_eq!(
        complete("gcore-iam-bulk apply --max-r"),
        "--max-rate --max-retries --max-removals"
    );
    assert_eq!(complete("gcore-iam-bulk export --page-s"), "--page-size");
    let shells = complete("gcore-iam-bulk completions ");
    assert!(
        shells.contains("bash") && shells.contains("powershell"),
        "{shells}"
    );
}

/// Every example in a subcommand's help is a command line the tool accepts.
#[test]
fn the_examples_in_the_help_parse() {
    use clap::Parser;
    let mut examples = 0;
    for (name, _) in surface() {
        let (code, help, _) = run(&[&name, "--help"]);
        assert_eq!(code, 0);
        let Some((_, section)) = help.split_once("Examples:\n") else {
            assert!(name == "man", "{name} has no examples:\n{help}");
            continue;
        };
        for line in section.lines().take_while(|line| line.starts_with("  ")) {
            let command = line.split(" #").next().unwrap();
            let start = command.find("gcore-iam-bulk ").expect("names the tool");
            let command = &command[start..];
            let command = command
                .split(" |")
                .next()
                .unwrap()
                .split(" >")
                .next()
                .unwrap();
            let words: Vec<&str> = command.split_whitespace().collect();
            if let Err(error) = Cli::try_parse_from(&words) {
                panic!("{name}: the example `{command}` does not parse: {error}");
            }
            examples += 1;
        }
    }
    assert!(examples >= 15, "{examples}");
}

/// The help texts as a user sees them: a change to any is a reviewed change.
#[test]
fn help_texts() {
    for (name, _) in surface() {
        let (code, short, _) = run(&[&name, "-h"]);
        assert_eq!(code, 0);
        let (_, long, _) = run(&[&name, "--help"]);
        insta::assert_snapshot!(format!("{name}-h"), short);
        insta::assert_snapshot!(format!("{name}--help"), long);
    }
    let (_, top, _) = run(&["--help"]);
    insta::assert_snapshot!("top--help", top);
}

/// The scheduled-run recipe of docs/REFERENCE.md, run as written (its
/// folders moved to a temporary one, the key and the base URL from the
/// environment) against the sandbox: a first run stopped by SIGTERM after
/// its first change, a second that finishes the batch (the same plan
/// applied again: what the first did is `unchanged`, its invitation and
/// removal too) and archives it, a third with no batch. (The recipe said
/// `--resume` went on after a crash, which `apply --plan` refuses; then a
/// second run planned the batch again and stopped for good at a removal
/// done: exit 1, a user not found.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nightly_recipe_recovers_from_a_crash_and_runs_a_batch_once() {
    use std::os::unix::process::CommandExt;
    let reference = include_str!("../../docs/REFERENCE.md");
    let start = (reference.find("#!/bin/sh\n# /usr/local/bin/iam-nightly")).expect("the recipe");
    let script = &reference[start..];
    let script = &script[..script.find("```").expect("the recipe's end")];
    let dir = tempfile::tempdir().unwrap();
    let [work, textfile, bin] = ["srv", "textfile", "bin"].map(|name| dir.path().join(name));
    for folder in [&work, &textfile, &bin] {
        std::fs::create_dir(folder).unwrap();
    }
    std::os::unix::fs::symlink(crate::common::BIN, bin.join("gcore-iam-bulk")).unwrap();
    let script = (script.replace("cd /srv/iam", &format!("cd '{}'", work.display())))
        .replace(
            "/var/lib/node_exporter/textfile",
            &textfile.display().to_string(),
        )
        .replace(
            "export GCORE_API_KEY=\"$(cat /etc/gcore-iam-bulk/key)\"",
            ":",
        );
    assert!(
        !script.contains("cd /srv") && !script.contains("/etc/") && !script.contains("/var/"),
        "{script}"
    );
    std::fs::write(dir.path().join("nightly.sh"), &script).unwrap();
    let faults = gcore_iam_bulk::sandbox::Faults {
        latency_ms: 100,
        ..Default::default()
    };
    let sandbox = crate::common::start_sandbox("nightly-key", 3, faults).await;
    let batch = "action,user_id,email,name,lang,groups\n\
                 ,1,,,de,\n,2,,,zh,\n,3,,,de,\n,4,,,zh,\n\
                 remove,6,,,,\n\
                 invite,,newbie@example.com,New Bie,en,Users\n";
    std::fs::write(work.join("changes.csv"), batch).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let night = |stop: bool| {
        let mut command = Command::new("sh");
        crate::common::clean(&mut command);
        command
            .arg(dir.path().join("nightly.sh"))
            .env("PATH", &path)
            .env("GCORE_API_KEY", "nightly-key")
            .env("GCORE_BASE_URL", sandbox.base_url())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        let child = command.spawn().unwrap();
        (child, stop)
    };
    let changes = |sandbox: &gcore_iam_bulk::sandbox::RunningSandbox| {
        let stats = sandbox.stats();
        (["PATCH", "POST", "DELETE"].iter())
            .filter_map(|verb| stats.by_method_status.get(*verb))
            .flat_map(|by| by.values())
            .sum::<u64>()
    };
    // The first run, stopped (the script's process group: the tool and its
    // shell) once its first change went out.
    let (child, _) = night(true);
    let mut waited = 0;
    while changes(&sandbox) == 0 {
        assert!(waited < 2000, "no change within 20 s");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        waited += 1;
    }
    let group = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) with a process group's ID takes two integers.
    assert_eq!(unsafe { libc::kill(-group, libc::SIGTERM) }, 0);
    let first = crate::common::wait(child).await;
    assert_ne!(first.status.code(), Some(0), "the first run was stopped");
    assert!(work.join("changes.csv").exists(), "the batch stays");
    // The second: the same plan again, to the next files; the batch then goes.
    for round in [2, 3] {
        let (child, _) = night(false);
        let out = crate::common::wait(child).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "run {round}: {stderr}");
    }
    let mut names: Vec<String> = (std::fs::read_dir(&work).unwrap())
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let count = |kind: &str| {
        let files = names.iter().filter(|name| name.ends_with(".csv"));
        files.filter(|name| name.starts_with(kind)).count()
    };
    // One plan (and no part left), two results and undo files, the batch kept.
    assert_eq!(count("plan-"), 1, "{names:?}");
    assert_eq!(count("results-"), 2, "{names:?}");
    assert_eq!(count("undo-"), 2, "{names:?}");
    assert_eq!(count("changes-"), 1, "{names:?}");
    assert!(!work.join("changes.csv").exists(), "{names:?}");
    // Each change went once: the invitation and the removal too.
    let stats = sandbox.stats();
    let sent =
        |verb: &str| (stats.by_method_status.get(verb)).map_or(0, |by| by.values().sum::<u64>());
    assert_eq!(sent("POST"), 1, "{stats:?}");
    assert_eq!(sent("DELETE"), 1, "{stats:?}");
    let second = (names.iter())
        .find(|name| name.starts_with("results-") && name.ends_with("-2.csv"))
        .unwrap();
    let results = std::fs::read_to_string(work.join(second)).unwrap();
    assert!(!results.contains(",failed,"), "{results}");
    assert!(textfile.join("iam-apply.prom").exists());
    sandbox.stop().await;
}
