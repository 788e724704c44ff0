//! `--metrics-file`: the summary in the Prometheus text format, read back
//! by a parser of that format (the `prometheus-parse` crate), over the
//! binary against the sandbox.

use std::path::Path;
use std::process::Output;

use gcore_iam_bulk::sandbox::{Faults, RunningSandbox};
use prometheus_parse::{Scrape, Value};

use crate::common::{self, start_sandbox};

async fn run(dir: &Path, sandbox: &RunningSandbox, args: &[&str]) -> Output {
    let mut command = common::command_in(dir, sandbox.api_key());
    command.args(args).args(["--base-url", &sandbox.base_url()]);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// The file parsed: every sample, by metric name and its `status` label.
fn parse(path: &Path) -> Scrape {
    let text = std::fs::read_to_string(path).unwrap();
    let lines = text.lines().map(|line| Ok(line.to_string()));
    Scrape::parse(lines).unwrap_or_else(|e| panic!("not the text format ({e}):\n{text}"))
}

fn value(scrape: &Scrape, name: &str, status: Option<&str>) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|sample| {
            sample.metric == name
                && status.is_none_or(|status| sample.labels.get("status") == Some(status))
        })
        .map(|sample| match sample.value {
            Value::Gauge(value) | Value::Counter(value) | Value::Untyped(value) => value,
            _ => panic!("{name} is not a plain value"),
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_parse_and_keep_the_last_success() {
    let sandbox = start_sandbox("metrics-key", 5, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let prom = dir.path().join("job.prom");
    let prom_arg = prom.to_str().unwrap();

    // A good run: every figure, and its time as the last success.
    std::fs::write(
        dir.path().join("in.csv"),
        "user_id,lang\n1,de\n2,en\n3,ru\n",
    )
    .unwrap();
    let out = run(
        dir.path(),
        &sandbox,
        &["apply", "in.csv", "--metrics-file", prom_arg],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let good = parse(&prom);
    assert_eq!(
        value(&good, "gcore_iam_bulk_rows", Some("updated")),
        Some(3.0)
    );
    assert_eq!(
        value(&good, "gcore_iam_bulk_rows", Some("failed")),
        Some(0.0)
    );
    // Every status, the invitations' and removals' too: a series that
    // comes and goes between runs would break an alert on it.
    for status in ["would_invite", "invited", "would_remove", "removed"] {
        assert_eq!(
            value(&good, "gcore_iam_bulk_rows", Some(status)),
            Some(0.0),
            "{status}"
        );
    }
    assert_eq!(value(&good, "gcore_iam_bulk_requests", None), Some(3.0));
    assert_eq!(value(&good, "gcore_iam_bulk_throttled", None), Some(0.0));
    assert_eq!(value(&good, "gcore_iam_bulk_exit_code", None), Some(0.0));
    assert!(value(&good, "gcore_iam_bulk_duration_seconds", None).unwrap() > 0.0);
    let success = value(&good, "gcore_iam_bulk_last_success_timestamp_seconds", None).unwrap();
    let last_run = value(&good, "gcore_iam_bulk_last_run_timestamp_seconds", None).unwrap();
    assert_eq!(success, last_run);
    let sample = &good.samples[0];
    assert_eq!(sample.labels.get("command"), Some("apply"));
    assert_eq!(sample.labels.get("input"), Some("in.csv"));
    // Every metric has its help and type, as the collector wants them.
    let text = std::fs::read_to_string(&prom).unwrap();
    for name in [
        "rows",
        "requests",
        "retries",
        "throttled",
        "duration_seconds",
        "exit_code",
    ] {
        assert!(
            text.contains(&format!("# TYPE gcore_iam_bulk_{name} gauge\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("# HELP gcore_iam_bulk_{name} ")),
            "{text}"
        );
    }

    // The same job goes wrong (a row with a problem): exit 1, and the last
    // success is still the good run's, so an alert on its age fires.
    std::fs::write(dir.path().join("in.csv"), "user_id,lang\n1,de\n2,xx\n").unwrap();
    let out = run(
        dir.path(),
        &sandbox,
        &["apply", "in.csv", "--overwrite", "--metrics-file", prom_arg],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let bad = parse(&prom);
    assert_eq!(value(&bad, "gcore_iam_bulk_exit_code", None), Some(1.0));
    assert_eq!(
        value(&bad, "gcore_iam_bulk_rows", Some("invalid")),
        Some(1.0)
    );
    assert_eq!(
        value(&bad, "gcore_iam_bulk_last_success_timestamp_seconds", None),
        Some(success)
    );
    // The next night's input has another name (plan-$day.csv): its failure
    // keeps the success too (it was kept for the same input only, so the
    // series left the file and an alert on its age never fired).
    std::fs::write(dir.path().join("night2.csv"), "user_id,lang\n2,xx\n").unwrap();
    let args = ["apply", "night2.csv", "--metrics-file", prom_arg];
    let out = run(dir.path(), &sandbox, &args).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let night = parse(&prom);
    assert_eq!(
        value(
            &night,
            "gcore_iam_bulk_last_success_timestamp_seconds",
            None
        ),
        Some(success)
    );
    assert_eq!(night.samples[0].labels.get("input"), Some("night2.csv"));

    // plan --exit-code finding drift (3) is a run that worked.
    let out = run(
        dir.path(),
        &sandbox,
        &[
            "plan",
            "in.csv",
            "--exit-code",
            "--metrics-file",
            "plan.prom",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    std::fs::write(dir.path().join("drift.csv"), "user_id,lang\n4,zh\n").unwrap();
    let out = run(
        dir.path(),
        &sandbox,
        &[
            "plan",
            "drift.csv",
            "--exit-code",
            "--metrics-file",
            "plan.prom",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let plan = parse(&dir.path().join("plan.prom"));
    assert_eq!(value(&plan, "gcore_iam_bulk_exit_code", None), Some(3.0));
    assert_eq!(
        value(&plan, "gcore_iam_bulk_rows", Some("would_update")),
        Some(1.0)
    );
    assert!(value(&plan, "gcore_iam_bulk_last_success_timestamp_seconds", None).is_some());

    // A plan that reads the account's list for its rows counts that read,
    // though no row sent a request of its own: the metric is what the
    // server saw.
    std::fs::write(
        dir.path().join("five.csv"),
        "user_id,lang\n1,de\n2,de\n3,de\n4,de\n5,de\n",
    )
    .unwrap();
    let seen = sandbox.stats().requests;
    let out = run(
        dir.path(),
        &sandbox,
        &["plan", "five.csv", "--metrics-file", "five.prom"],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let seen = sandbox.stats().requests - seen;
    let five = parse(&dir.path().join("five.prom"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("by pages"),
        "{out:?}"
    );
    assert_eq!(
        value(&five, "gcore_iam_bulk_requests", None),
        Some(seen as f64)
    );

    // The metrics file is a file of its own.
    let out = run(
        dir.path(),
        &sandbox,
        &[
            "apply",
            "in.csv",
            "-o",
            "same.csv",
            "--metrics-file",
            "same.csv",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // Nor is a file of another kind replaced by a slip in a cron line (an
    // undo file, a run's results): the summary's and the metrics' both,
    // unless --overwrite.
    for (flag, out_file) in [("--summary-json", "p1.csv"), ("--metrics-file", "p2.csv")] {
        let before = "user_id,lang\n1,en\n";
        std::fs::write(dir.path().join("undo.csv"), before).unwrap();
        let refused = ["plan", "in.csv", "-o", out_file, flag, "undo.csv"];
        let out = run(dir.path(), &sandbox, &refused).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {stderr}");
        assert!(
            stderr.contains(&format!("{flag} undo.csv exists and is not a"))
                && stderr.contains("pass --overwrite to replace it"),
            "{stderr}"
        );
        let kept = std::fs::read_to_string(dir.path().join("undo.csv")).unwrap();
        assert_eq!(kept, before, "{flag}");
        let args = [
            "plan",
            "in.csv",
            "-o",
            out_file,
            "--overwrite",
            flag,
            "undo.csv",
        ];
        let out = run(dir.path(), &sandbox, &args).await;
        assert_ne!(out.status.code(), Some(2), "{flag}: {out:?}");
        let replaced = std::fs::read_to_string(dir.path().join("undo.csv")).unwrap();
        assert_ne!(replaced, before, "{flag}");
    }
    sandbox.stop().await;
}

/// The reads before the rows are the run's requests, their 429s too: a
/// plan whose first request (the list's count) meets a 429 counts it and
/// its retry, as the sandbox saw them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_on_the_lists_first_page_is_counted() {
    let sandbox = start_sandbox(
        "metrics-key",
        5,
        Faults {
            // One request, then one a second.
            rate: Some((1.0, 1)),
            ..Faults::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.csv"),
        "user_id,lang\n1,de\n2,en\n3,ru\n4,zh\n",
    )
    .unwrap();
    // The sandbox's one request of the second spent just before.
    let url = format!("{}/iam/users/1", sandbox.base_url());
    let answer = common::http()
        .get(url)
        .header("Authorization", "apikey metrics-key")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let before = sandbox.stats();
    let args = [
        "plan",
        "in.csv",
        "--metrics-file",
        "plan.prom",
        "--summary-json",
        "plan.json",
        "--rate",
        "0",
    ];
    let out = run(dir.path(), &sandbox, &args).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let after = sandbox.stats();
    let throttled = |stats: &gcore_iam_bulk::sandbox::Stats| {
        (stats.by_method_status.values())
            .map(|by| by.get(&429).copied().unwrap_or(0))
            .sum::<u64>()
    };
    let seen_429 = throttled(&after) - throttled(&before);
    assert!(
        seen_429 >= 1,
        "the list's first request met a 429: {after:?}"
    );
    let scrape = parse(&dir.path().join("plan.prom"));
    assert_eq!(
        value(&scrape, "gcore_iam_bulk_requests", None),
        Some((after.requests - before.requests) as f64),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        value(&scrape, "gcore_iam_bulk_throttled", None),
        Some(seen_429 as f64)
    );
    // The summary JSON's time is the summary's: the list's read (its
    // pause after the 429, about a second) included.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("plan.json")).unwrap()).unwrap();
    let elapsed = json["elapsed_seconds"].as_f64().unwrap();
    assert!(elapsed >= 0.5, "{json}");
    assert_eq!(json["throttled"].as_u64(), Some(seen_429));
}

/// A summary file that cannot be written once the run changed the account
/// (a full disk: `/dev/full`) is said, the metrics are still written, and
/// the run ends with 74, not 2 ("nothing was sent", which was false).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_summary_that_cannot_be_written_after_the_run_is_said_and_ends_with_74() {
    let sandbox = start_sandbox("metrics-key", 5, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "user_id,lang\n1,de\n").unwrap();
    let args = [
        "apply",
        "in.csv",
        "--summary-json",
        "/dev/full",
        "--metrics-file",
        "job.prom",
    ];
    let out = run(dir.path(), &sandbox, &args).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(74), "{stderr}");
    assert!(
        stderr.contains("cannot write the summary file /dev/full")
            && stderr.contains("the run itself ended as the summary above says"),
        "{stderr}"
    );
    let metrics = parse(&dir.path().join("job.prom"));
    assert_eq!(
        value(&metrics, "gcore_iam_bulk_exit_code", None),
        Some(74.0)
    );
    assert_eq!(
        value(&metrics, "gcore_iam_bulk_rows", Some("updated")),
        Some(1.0)
    );
    // export alike (it ended with 2, "nothing was sent", the metrics unwritten).
    let args = ["export", "-o", "e.csv", "--summary-json", "/dev/full"];
    let more = ["--metrics-file", "e.prom"];
    let out = run(dir.path(), &sandbox, &[&args[..], &more].concat()).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(74), "{stderr}");
    assert!(
        stderr.contains("cannot write the summary file /dev/full"),
        "{stderr}"
    );
    let metrics = parse(&dir.path().join("e.prom"));
    assert_eq!(
        value(&metrics, "gcore_iam_bulk_exit_code", None),
        Some(74.0)
    );
    sandbox.stop().await;
}

/// A metrics file reached by a symbolic link (the collector's folder
/// linking to the job's file) is replaced where the link leads; the link
/// stays. (The rename put a plain file in the link's place, and the file it
/// led to kept the run before.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_file_behind_a_link_is_written_where_it_leads() {
    let sandbox = start_sandbox("metrics-key", 5, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("real")).unwrap();
    std::fs::write(dir.path().join("in.csv"), "user_id,lang\n1,de\n").unwrap();
    let args = ["apply", "in.csv", "--metrics-file", "real/job.prom"];
    assert_eq!(
        run(dir.path(), &sandbox, &args).await.status.code(),
        Some(0)
    );
    std::os::unix::fs::symlink("real/job.prom", dir.path().join("job.prom")).unwrap();
    std::fs::write(dir.path().join("in.csv"), "user_id,lang\n1,de\n2,xx\n").unwrap();
    let args = [
        "apply",
        "in.csv",
        "--overwrite",
        "--metrics-file",
        "job.prom",
    ];
    assert_eq!(
        run(dir.path(), &sandbox, &args).await.status.code(),
        Some(1)
    );
    let link = std::fs::symlink_metadata(dir.path().join("job.prom")).unwrap();
    assert!(link.is_symlink(), "the link stays");
    let metrics = parse(&dir.path().join("real/job.prom"));
    assert_eq!(value(&metrics, "gcore_iam_bulk_exit_code", None), Some(1.0));
    sandbox.stop().await;
}
