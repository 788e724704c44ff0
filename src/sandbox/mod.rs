//! A local stand-in of the Gcore IAM users API, for rehearsals, tests and
//! benchmarks: seeded users in memory, the same validation rules as the
//! tool, and failures on demand. Start it with [`start`]; the `sandbox`
//! command is [`serve_until_signal`] around the same function.

mod faults;
pub mod given;
mod membership;
mod routes;
mod seed;
mod state;
mod tls;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use faults::FaultPlan;
use routes::{App, DropConnection, Peer};
use state::Users;

use crate::model::api::User;

/// The most users a sandbox holds: about 1 KiB each, so at most ~1 GiB.
pub(crate) const MAX_USERS: u64 = 1_000_000;

/// How long [`RunningSandbox::stop`] lets requests in flight finish.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// What a sandbox serves and how it misbehaves.
#[derive(Clone)]
pub struct SandboxConfig {
    /// Users 1..=users are seeded.
    pub users: u64,
    /// The key clients must send as `Authorization: apikey <key>`.
    pub api_key: String,
    /// Seeds the users and every fault decision.
    pub seed: u64,
    pub faults: Faults,
    /// Serve these users instead of `users` seeded ones (`--users-file`):
    /// a copy of an account, odd values and all.
    pub given: Option<Arc<Vec<User>>>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            users: 1000,
            api_key: "sandbox-key".to_string(),
            seed: 1,
            faults: Faults::default(),
            given: None,
        }
    }
}

/// The key stays out of logs and panic messages.
impl fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("users", &self.users)
            .field("api_key", &"***")
            .field("seed", &self.seed)
            .field("faults", &self.faults)
            .field("given", &self.given.as_ref().map(|users| users.len()))
            .finish()
    }
}

impl SandboxConfig {
    /// Refuses settings that cannot work, naming the flag that sets them.
    pub fn check(&self) -> Result<(), String> {
        if let Some(given) = &self.given {
            state::check_given(given, MAX_USERS)?;
        } else if self.users == 0 || self.users > MAX_USERS {
            return Err(format!(
                "--users {} is out of range; use 1 to {MAX_USERS}",
                self.users
            ));
        }
        if self.api_key.trim().is_empty() || self.api_key.chars().any(char::is_whitespace) {
            return Err("the API key must be non-empty and hold no spaces".to_string());
        }
        self.faults.check()
    }
}

/// Failures to put on, each off by default. Shares are in 0..=1.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Requests per second and burst: a token bucket over all requests;
    /// beyond it 429 with `Retry-After` (whole seconds, at least 1).
    pub rate: Option<(f64, u32)>,
    /// Answers beyond `rate` also say the exact wait in `retry-after-ms`
    /// (as Azure's and OpenAI's APIs do), besides whole seconds.
    pub retry_after_ms: bool,
    /// Answers beyond `rate` have no `Retry-After`: with `rate_status` 503,
    /// a server that fails under load rather than throttling.
    pub no_retry_after: bool,
    /// The status of an answer beyond `rate`: 429 (`None`), or another,
    /// such as 503, as front ends that throttle with it do (`Retry-After`
    /// either way).
    pub rate_status: Option<u16>,
    /// Every answer waits `latency_ms` plus up to `jitter_ms` more.
    pub latency_ms: u64,
    pub jitter_ms: u64,
    /// Share of answers that are 500, 502 or 503 (nothing is changed).
    pub error_rate: f64,
    /// Share of requests whose connection is closed without an answer.
    pub drop_rate: f64,
    /// Share of answers held `slow_ms` after the change is made.
    pub slow_rate: f64,
    pub slow_ms: u64,
    /// Fields of the user object that list answers (`GET /iam/users`)
    /// leave out of every user, as an API whose list is lighter than its
    /// `GET /iam/users/{id}` would; `GET` of one user keeps them.
    pub list_omit: Vec<String>,
    /// The first `list_churn` reads of the list that go past its first page
    /// see the account change meanwhile: every page at an offset above 0
    /// answers as if the first user had been removed and one added at the
    /// end (the same count, everyone shifted by one place), so a reader
    /// that pages by offset misses a user. A read starts with the page at
    /// offset 0; later reads see the account as it is.
    pub list_churn: u64,
    /// List answers say the account has this many users, whatever it holds.
    pub list_count: Option<u64>,
    /// Share of requests answered 429 (`Retry-After: 1`) whatever the rate:
    /// a server that throttles by something else than this client's rate.
    pub throttle_share: f64,
    /// Every request about a user whose ID this divides is answered 429
    /// (`Retry-After: 1`): throttles that concern some users only.
    pub throttle_every: Option<u64>,
    /// At most this many requests in each window of so many seconds (from
    /// the sandbox's start); beyond it 429 without `Retry-After`, as a
    /// per-minute quota that does not say when it opens again.
    pub window: Option<(u64, f64)>,
}

/// The fields of the user object, as `--list-omit` may name them.
pub(crate) const USER_FIELDS: [&str; 16] = [
    "id",
    "email",
    "name",
    "lang",
    "phone",
    "company",
    "reseller",
    "client",
    "deleted",
    "groups",
    "activated",
    "sso_auth",
    "two_fa",
    "auth_types",
    "user_type",
    "is_active",
];

impl Faults {
    pub fn check(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.throttle_share) {
            return Err(format!(
                "--throttle-share {} must be a share between 0 and 1",
                self.throttle_share
            ));
        }
        if self.throttle_every == Some(0) {
            return Err("--throttle-every 0 names no user; give N of 1 or more".to_string());
        }
        if let Some((_, seconds)) = self.window
            && !(seconds.is_finite() && (0.001..=86_400.0).contains(&seconds))
        {
            return Err(format!(
                "--quota's window of {seconds} s is out of range; give 0.001 to 86400 seconds"
            ));
        }
        if let Some((rate, burst)) = self.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(format!(
                    "--rate {rate} must be a number of requests per second above 0"
                ));
            }
            if burst == 0 {
                return Err("--burst must be at least 1".to_string());
            }
        }
        for (flag, share) in [
            ("--error-rate", self.error_rate),
            ("--drop-rate", self.drop_rate),
            ("--slow-rate", self.slow_rate),
        ] {
            if !(0.0..=1.0).contains(&share) {
                return Err(format!(
                    "{flag} {share} is not a share; use a number from 0 to 1, such as 0.05"
                ));
            }
        }
        if let Some(field) = self
            .list_omit
            .iter()
            .find(|field| !USER_FIELDS.contains(&field.as_str()))
        {
            return Err(format!(
                "--list-omit {} is not a field of the user object; use one of {}",
                crate::model::patch::show(field),
                USER_FIELDS.join(", ")
            ));
        }
        Ok(())
    }
}

/// What `GET /sandbox/stats` answers.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Stats {
    /// Requests to the API endpoints (not to /sandbox/stats).
    pub requests: u64,
    /// `"PATCH" -> {200: n}`. Status 0: no answer was sent (a dropped
    /// connection, or the client gave up first).
    pub by_method_status: BTreeMap<String, BTreeMap<u16, u64>>,
    /// User ID -> PATCHes applied to it (users never patched are left out).
    pub patches_per_user: BTreeMap<u64, u64>,
    /// The most requests in flight at one moment.
    pub max_in_flight: u64,
    /// Connections to a TLS sandbox whose handshake failed: a client that
    /// does not trust the sandbox's certificate, or that does not speak TLS.
    #[serde(default)]
    pub tls_failures: u64,
}

/// A sandbox serving on a tokio runtime. Dropping it stops the server too,
/// without waiting; [`RunningSandbox::stop`] waits until it has stopped.
pub struct RunningSandbox {
    addr: SocketAddr,
    app: Arc<App>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    /// The certificate of the authority that signed a TLS sandbox's own (PEM).
    ca_pem: Option<String>,
}

impl RunningSandbox {
    /// The address actually bound (port 0 is replaced by the real port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (`https://` for a TLS sandbox), without a
    /// trailing slash.
    pub fn base_url(&self) -> String {
        let host = match self.addr.ip() {
            ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
            ip if ip.is_unspecified() => "[::1]".to_string(),
            std::net::IpAddr::V4(ip) => ip.to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        };
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{host}:{}", self.addr.port())
    }

    /// For a TLS sandbox, the PEM certificate of the throwaway authority
    /// that signed its certificate: what a client must trust.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    pub fn api_key(&self) -> &str {
        &self.app.api_key
    }

    pub fn stats(&self) -> Stats {
        self.app.counters.snapshot(&self.app.users)
    }

    /// What keeps the users beyond the server's life (`sandbox --state`).
    pub(crate) fn keeper(&self) -> Keeper {
        Keeper(Arc::clone(&self.app))
    }

    /// Stops accepting, lets requests in flight finish for up to a second,
    /// then closes what is left.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Binds `addr` and serves plain HTTP on the current tokio runtime until
/// [`RunningSandbox::stop`]. Settings that [`SandboxConfig::check`] refuses
/// are an `InvalidInput` error.
pub async fn start(config: SandboxConfig, addr: SocketAddr) -> io::Result<RunningSandbox> {
    launch(config, addr, None).await
}

/// As [`start`], serving HTTPS with a certificate for `localhost`,
/// `127.0.0.1` and `::1` signed by a certificate authority made for this
/// sandbox alone ([`RunningSandbox::ca_pem`]).
pub async fn start_tls(config: SandboxConfig, addr: SocketAddr) -> io::Result<RunningSandbox> {
    let tls = tls::SandboxTls::generate()?;
    launch(config, addr, Some(tls)).await
}

async fn launch(
    config: SandboxConfig,
    addr: SocketAddr,
    tls: Option<tls::SandboxTls>,
) -> io::Result<RunningSandbox> {
    config
        .check()
        .map_err(|message| io::Error::new(io::ErrorKind::InvalidInput, message))?;
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let users = match &config.given {
        Some(given) => Users::given(given),
        None => Users::seeded(config.users, config.seed),
    };
    let plan = FaultPlan::new(config.faults, config.seed);
    let app = Arc::new(App::new(users, config.api_key, plan));
    let router = routes::router(app.clone(), membership::router());
    let (stop, stopped) = oneshot::channel();
    let (acceptor, ca_pem) = match tls {
        Some(tls) => (Some(tls.acceptor), Some(tls.ca_pem)),
        None => (None, None),
    };
    let task = tokio::spawn(accept_loop(
        listener,
        router,
        app.clone(),
        acceptor,
        stopped,
    ));
    Ok(RunningSandbox {
        addr,
        app,
        stop,
        task,
        ca_pem,
    })
}

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// One task per connection, served by hyper directly (rather than
/// `axum::serve`) so that a request can end its connection without an
/// answer. With TLS, each connection's task does its own handshake, so a
/// slow or failing client holds up no other.
async fn accept_loop(
    listener: TcpListener,
    router: axum::Router,
    app: Arc<App>,
    tls: Option<TlsAcceptor>,
    mut stopped: oneshot::Receiver<()>,
) {
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(_) => {
                        // Out of file descriptors and the like: wait, don't spin.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let router = router.clone();
                let graceful = graceful.watcher();
                match &tls {
                    None => {
                        connections.spawn(serve_connection(stream, peer, router, graceful));
                    }
                    Some(acceptor) => {
                        let (acceptor, app) = (acceptor.clone(), Arc::clone(&app));
                        connections.spawn(async move {
                            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                            match handshake.await {
                                Ok(Ok(stream)) => serve_connection(stream, peer, router, graceful).await,
                                _ => app.counters.tls_failed(),
                            }
                        });
                    }
                }
            }
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(STOP_GRACE, graceful.shutdown()).await;
    connections.shutdown().await;
}

/// Serves the requests of one connection until it closes.
async fn serve_connection<S>(stream: S, peer: SocketAddr, router: axum::Router, graceful: Watcher)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(Peer(peer));
        let router = router.clone();
        async move {
            let response = router.oneshot(request.map(axum::body::Body::new)).await;
            let response = match response {
                Ok(response) => response,
                Err(infallible) => match infallible {},
            };
            // An error from the service makes hyper close the
            // connection without writing a response.
            match response.extensions().get::<DropConnection>() {
                Some(_) => Err(DropConnection),
                None => Ok(response),
            }
        }
    });
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    let _ = graceful.watch(connection).await;
}

/// The users of a sandbox, read while it serves and after it stopped.
pub(crate) struct Keeper(Arc<App>);

impl Keeper {
    /// Changes made so far: the users need keeping again when it moved.
    pub(crate) fn changes(&self) -> u64 {
        self.0.users.changes()
    }

    /// Every user, whole, as a JSON list (what `--users-file` reads back).
    pub(crate) fn users_json(&self) -> String {
        serde_json::to_string(&self.0.users.all()).expect("a user always serialises")
    }
}

/// The `sandbox` command: serve (HTTPS when `tls`) until Ctrl-C or SIGTERM.
/// `on_start` is told the running sandbox once it listens (the command
/// prints its address); an error from it stops the sandbox. `every`: a
/// period and what to do at each while serving (keep the users), done once
/// more after the sandbox stopped.
pub(crate) async fn serve_until_signal(
    config: SandboxConfig,
    addr: SocketAddr,
    tls: bool,
    on_start: impl FnOnce(&RunningSandbox) -> io::Result<()>,
    mut every: Option<(Duration, impl FnMut(&Keeper))>,
) -> io::Result<()> {
    let sandbox = match tls {
        true => start_tls(config, addr).await?,
        false => start(config, addr).await?,
    };
    let signal = shutdown_signal()?;
    tokio::pin!(signal);
    on_start(&sandbox)?;
    let keeper = sandbox.keeper();
    match &mut every {
        None => signal.await?,
        Some((period, tick)) => {
            let mut ticks = tokio::time::interval(*period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    stopped = &mut signal => { stopped?; break; }
                    _ = ticks.tick() => tick(&keeper),
                }
            }
        }
    }
    sandbox.stop().await;
    if let Some((_, tick)) = &mut every {
        tick(&keeper);
    }
    Ok(())
}

/// Ctrl-C, SIGTERM or SIGHUP, listened for from the moment this returns:
/// a signal that comes as soon as the sandbox says it is ready stops it
/// cleanly too (its state written, its lock let go).
#[cfg(unix)]
fn shutdown_signal() -> io::Result<impl std::future::Future<Output = io::Result<()>>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    // A closed terminal or a dropped ssh session: stop cleanly too.
    let mut hangup = signal(SignalKind::hangup())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => Ok(()),
            _ = terminate.recv() => Ok(()),
            _ = hangup.recv() => Ok(()),
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> io::Result<impl std::future::Future<Output = io::Result<()>>> {
    Ok(async { tokio::signal::ctrl_c().await })
}
