//! How many PATCHes a second the sandbox answers on loopback.
//!
//! cargo run --release --example sandbox_load -- [WORKERS] [REQUESTS] [URL KEY]
//!
//! Without URL it starts a sandbox in-process (1000 users, no faults) on a
//! runtime of its own; with URL and KEY it loads that one (say, a running
//! `gcore-iam-bulk sandbox`). Only loopback addresses are accepted. The run
//! is bounded: REQUESTS in all (default 50000), and 60 seconds at most.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gcore_iam_bulk::sandbox::{self, SandboxConfig};

const TIME_CAP: Duration = Duration::from_secs(60);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let workers: u64 = args.first().map_or(64, |n| n.parse().expect("WORKERS"));
    let requests: u64 = args.get(1).map_or(50_000, |n| n.parse().expect("REQUESTS"));
    let external = args.get(2).map(|url| {
        let key = args.get(3).expect("URL needs KEY too").clone();
        (url.trim_end_matches('/').to_string(), key)
    });

    // The server gets its own runtime, so client and server threads are
    // scheduled by the OS as two programs would be.
    let server_runtime = tokio::runtime::Runtime::new().unwrap();
    let (url, key, running) = match external {
        Some((url, key)) => (url, key, None),
        None => {
            let config = SandboxConfig::default();
            let running = server_runtime
                .block_on(sandbox::start(config, "127.0.0.1:0".parse().unwrap()))
                .unwrap();
            (
                running.base_url(),
                running.api_key().to_string(),
                Some(running),
            )
        }
    };
    let host = url
        .trim_start_matches("http://")
        .split(':')
        .next()
        .unwrap_or("");
    assert!(
        host == "127.0.0.1" || host == "localhost" || host == "[::1]",
        "loopback only: {url}"
    );

    let client_runtime = tokio::runtime::Runtime::new().unwrap();
    let (elapsed, ok, failed) = client_runtime.block_on(load(&url, &key, workers, requests));
    let rate = ok as f64 / elapsed.as_secs_f64();
    println!(
        "{ok} PATCH answered 200 ({failed} other) in {:.2} s with {workers} workers: {rate:.0} PATCH/s",
        elapsed.as_secs_f64()
    );
    if let Some(running) = running {
        let stats = running.stats();
        println!(
            "server saw {} requests, at most {} in flight",
            stats.requests, stats.max_in_flight
        );
        server_runtime.block_on(running.stop());
    }
}

async fn load(url: &str, key: &str, workers: u64, requests: u64) -> (Duration, u64, u64) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(workers as usize)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let next = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (client, next, ok, failed) = (client.clone(), next.clone(), ok.clone(), failed.clone());
        let (url, key) = (url.to_string(), format!("apikey {key}"));
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= requests || started.elapsed() > TIME_CAP {
                    break;
                }
                let user_id = n % 1000 + 1;
                let lang = ["en", "de", "ru", "zh", "az"][(n % 5) as usize];
                let result = client
                    .patch(format!("{url}/iam/users/{user_id}"))
                    .header("Authorization", &key)
                    .json(&serde_json::json!({"lang": lang}))
                    .send()
                    .await;
                let good = match result {
                    Ok(response) => {
                        let status = response.status();
                        response.bytes().await.is_ok() && status.is_success()
                    }
                    Err(_) => false,
                };
                if good {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    (
        started.elapsed(),
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    )
}
