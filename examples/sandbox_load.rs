//! How many PATCHes a second the sandbox answers on loopback.
//!
//! cargo run --release --example sandbox_load -- [WORKERS] [REQUESTS] [URL KEY [BODIES]]
//!
//! Without URL it starts a sandbox in-process (1000 users, no faults) on a
//! runtime of its own; with URL and KEY it loads that one (say, a running
//! `gcore-iam-bulk sandbox`). Only loopback addresses are accepted. The run
//! is bounded: REQUESTS in all (default 50000), and 60 seconds at most.
//!
//! Without BODIES, request n PATCHes `{"lang": ...}` to user n % 1000 + 1.
//! With BODIES, a results file of `gcore-iam-bulk validate` (or
//! `apply --dry-run`), request n sends the `request` column of its row
//! n % rows to its `user_id`: the very requests `apply` sends for that input,
//! in the same order, so the two can be compared (`bench/apply.sh`). Either
//! way the requests carry the headers `apply` sends (`Authorization`,
//! `Content-Type`, `Accept`, a `User-Agent`), on `WORKERS` kept-alive
//! connections; answers are read whole but not parsed. The client runs on
//! one thread, as `apply` does; `CLIENT_THREADS=per-core` gives it a worker
//! per core. `CLIENT=hyper` sends with hyper's own client instead of reqwest
//! (same headers, a timeout per request too): what of the loop's CPU is
//! reqwest's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{self, HeaderMap, HeaderValue};

use gcore_iam_bulk::sandbox::{self, SandboxConfig};

const TIME_CAP: Duration = Duration::from_secs(60);

/// The same allocator as the tool, so that the comparison measures the tool's
/// own work and not the allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let workers: u64 = args.first().map_or(64, |n| n.parse().expect("WORKERS"));
    let requests: u64 = args.get(1).map_or(50_000, |n| n.parse().expect("REQUESTS"));
    let external = args.get(2).map(|url| {
        let key = args.get(3).expect("URL needs KEY too").clone();
        (url.trim_end_matches('/').to_string(), key)
    });
    let bodies = args.get(4).map(|path| Arc::new(read_bodies(path)));

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

    // One thread, as `apply` sends (the reference for its CPU per row);
    // CLIENT_THREADS=per-core for a worker per core.
    let client_runtime = match std::env::var("CLIENT_THREADS").as_deref() {
        Ok("per-core") => tokio::runtime::Runtime::new().unwrap(),
        Ok("1") | Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        Ok(other) => panic!("CLIENT_THREADS: 1 or per-core, not {other}"),
    };
    let cpu_before = process_cpu_seconds();
    let (elapsed, ok, failed) =
        client_runtime.block_on(load(&url, &key, workers, requests, bodies));
    let cpu = process_cpu_seconds() - cpu_before;
    let rate = ok as f64 / elapsed.as_secs_f64();
    println!(
        "{ok} PATCH answered 200 ({failed} other) in {:.3} s with {workers} workers: {rate:.0} PATCH/s",
        elapsed.as_secs_f64()
    );
    // The CPU of the requests alone: reading BODIES beforehand is not sending.
    println!(
        "client CPU while sending: {cpu:.2} s, {:.2} us per request",
        1e6 * cpu / (ok + failed).max(1) as f64
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

/// User plus system CPU time of this process so far, in seconds (from
/// `/proc/self/stat`, in clock ticks of 1/100 s on Linux; 0 elsewhere).
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => 0.0,
    }
}

/// `(user_id, body)` of every row of a results file that has a request.
fn read_bodies(path: &str) -> Vec<(u64, String)> {
    let mut reader = csv::Reader::from_path(path).expect("BODIES: a readable results file");
    let headers = reader.headers().expect("BODIES: a header").clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("BODIES: no {name} column"))
    };
    let (id_column, request_column) = (column("user_id"), column("request"));
    let bodies: Vec<(u64, String)> = reader
        .records()
        .map(|record| record.expect("BODIES: a readable row"))
        .filter(|record| !record[request_column].is_empty())
        .map(|record| {
            let id = record[id_column]
                .parse()
                .expect("BODIES: a numeric user_id");
            (id, record[request_column].to_string())
        })
        .collect();
    assert!(!bodies.is_empty(), "BODIES: no row with a request");
    bodies
}

/// The client a worker sends with: reqwest as `apply` uses it, or hyper's
/// own client without reqwest's layers (`CLIENT=hyper`, to see what of the
/// bare loop's CPU is reqwest's).
enum Sender {
    Reqwest(reqwest::Client),
    Hyper(Box<HyperSender>),
}

/// hyper's client and the headers every request carries.
struct HyperSender {
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        String,
    >,
    headers: HeaderMap,
}

impl Sender {
    fn new(key: &str, workers: u64) -> Sender {
        // The headers `apply` sends, so both put the same bytes on the wire.
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("apikey {key}")).expect("KEY fits in a header"),
        );
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        const AGENT: &str = "gcore-iam-bulk/sandbox-load";
        match std::env::var("CLIENT").as_deref() {
            Ok("reqwest") | Err(_) => Sender::Reqwest(
                reqwest::Client::builder()
                    .no_proxy()
                    .user_agent(AGENT)
                    .default_headers(headers)
                    .pool_max_idle_per_host(workers as usize)
                    .tcp_nodelay(true)
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap(),
            ),
            Ok("hyper") => {
                let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
                connector.set_nodelay(true);
                let client = hyper_util::client::legacy::Client::builder(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .pool_max_idle_per_host(workers as usize)
                .build(connector);
                headers.insert(header::USER_AGENT, HeaderValue::from_static(AGENT));
                Sender::Hyper(Box::new(HyperSender { client, headers }))
            }
            Ok(other) => panic!("CLIENT: reqwest or hyper, not {other}"),
        }
    }

    /// One PATCH, its answer read whole: whether it was a success.
    async fn patch(&self, url: String, body: String) -> bool {
        match self {
            Sender::Reqwest(client) => match client.patch(url).body(body).send().await {
                Ok(response) => {
                    let status = response.status();
                    response.bytes().await.is_ok() && status.is_success()
                }
                Err(_) => false,
            },
            Sender::Hyper(hyper) => {
                let HyperSender { client, headers } = &**hyper;
                let mut request = hyper::Request::new(body);
                *request.method_mut() = hyper::Method::PATCH;
                *request.uri_mut() = url.parse().expect("a URL");
                *request.headers_mut() = headers.clone();
                let answer = async {
                    let response = client.request(request).await.ok()?;
                    let status = response.status();
                    let mut body = response.into_body();
                    let mut bytes = Vec::new();
                    while let Some(frame) = std::future::poll_fn(|cx| {
                        hyper::body::Body::poll_frame(std::pin::Pin::new(&mut body), cx)
                    })
                    .await
                    {
                        if let Ok(data) = frame.ok()?.into_data() {
                            bytes.extend_from_slice(&data);
                        }
                    }
                    Some(status.is_success())
                };
                matches!(
                    tokio::time::timeout(Duration::from_secs(10), answer).await,
                    Ok(Some(true))
                )
            }
        }
    }
}

async fn load(
    url: &str,
    key: &str,
    workers: u64,
    requests: u64,
    bodies: Option<Arc<Vec<(u64, String)>>>,
) -> (Duration, u64, u64) {
    let sender = Arc::new(Sender::new(key, workers));
    let next = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (sender, next, ok, failed) = (sender.clone(), next.clone(), ok.clone(), failed.clone());
        let (url, bodies) = (url.to_string(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= requests || started.elapsed() > TIME_CAP {
                    break;
                }
                let (user_id, body) = match &bodies {
                    Some(bodies) => {
                        let (user_id, body) = &bodies[(n % bodies.len() as u64) as usize];
                        (*user_id, body.clone())
                    }
                    None => {
                        let lang = ["en", "de", "ru", "zh", "az"][(n % 5) as usize];
                        (n % 1000 + 1, format!(r#"{{"lang":"{lang}"}}"#))
                    }
                };
                let good = sender
                    .patch(format!("{url}/iam/users/{user_id}"), body)
                    .await;
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
