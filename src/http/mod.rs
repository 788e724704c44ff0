//! HTTP: one reqwest client for the whole run, the three calls this tool
//! makes (`PATCH` a user, `GET` a user, `GET` a page of users), and one
//! classification of every answer (done, worth retrying, failed), with the
//! key blanked out of anything the server echoes. It knows nothing of rates,
//! retries or rows: the engine decides what to do with an answer.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use reqwest::Method;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};

use crate::error::{Fatal, error_chain};
use crate::secret::Blanker;

mod answer;
mod tls;

pub use answer::*;
pub(crate) use tls::*;

/// The most of a server's message kept in the results file.
pub(crate) const MAX_MESSAGE_CHARS: usize = 300;

/// One request of the API, as data: the method, the path below the base
/// URL, the query and the JSON body. Operations build them; the client
/// only sends them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: Method,
    /// Below the base URL, without a leading slash: `iam/users/7`. Each
    /// `/`-separated segment is percent-encoded as it is sent.
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    /// The JSON text sent as the body, if any.
    pub body: Option<String>,
    /// The most of the answer's body that is read ([`MAX_BODY`] unless
    /// the call expects more: a page of many users).
    pub max_body: usize,
}

impl Call {
    /// A `GET` of `path`.
    pub fn get(path: impl Into<String>) -> Call {
        Call::new(Method::GET, path, None)
    }

    /// A `PATCH` of `path` with the JSON text `body`.
    pub fn patch(path: impl Into<String>, body: String) -> Call {
        Call::new(Method::PATCH, path, Some(body))
    }

    pub fn new(method: Method, path: impl Into<String>, body: Option<String>) -> Call {
        Call {
            method,
            path: path.into(),
            query: Vec::new(),
            body,
            max_body: MAX_BODY,
        }
    }

    /// The call, reading up to `bytes` of its answer.
    pub fn with_max_body(mut self, bytes: usize) -> Call {
        self.max_body = bytes;
        self
    }

    /// The call with `name=value` added to its query.
    pub(crate) fn with_query(mut self, name: &'static str, value: impl ToString) -> Call {
        self.query.push((name, value.to_string()));
        self
    }

    /// `PATCH /iam/users/7`: the method and the path below the base URL,
    /// as `-v` shows an attempt (never a header, a body or the key).
    pub fn describe(&self) -> String {
        let mut text = format!("{} /{}", self.method, self.path);
        for (at, (name, value)) in self.query.iter().enumerate() {
            text.push(if at == 0 { '?' } else { '&' });
            text.push_str(name);
            text.push('=');
            text.push_str(value);
        }
        text
    }
}

/// A successful answer as it came: its status, its headers and its body
/// (as text; blanked of any echo of the key). The operation that sent the
/// call reads what it needs of it ([`Reply::json`]).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    body: String,
    /// Blanks the key out of what a parse error quotes of the body.
    blanker: Option<Arc<Blanker>>,
    /// Whether the body held the key, blanked (`***`) before it was kept:
    /// a value read from it that holds `***` is not the user's.
    blanked: bool,
}

impl Reply {
    /// An answer with `status` and `body` and no header (the engine's
    /// tests give these).
    pub fn new(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            headers: HeaderMap::new(),
            body: body.into(),
            blanker: None,
            blanked: false,
        }
    }

    /// Whether the body held the key (see [`Reply::blanked`]'s field).
    pub fn blanked(&self) -> bool {
        self.blanked
    }

    /// The body, as text.
    pub fn text(&self) -> &str {
        &self.body
    }

    /// The body as JSON of type `T`; `Err` says why it is not, without
    /// the key if the body echoed it.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        self.read(|text| serde_json::from_str(text))
    }

    /// The body as `parse` reads it; `Err` says why it could not, without
    /// the key if the body echoed it.
    pub fn read<T, E: std::fmt::Display>(
        &self,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, String> {
        parse(&self.body).map_err(|error| {
            let text = error.to_string();
            match &self.blanker {
                Some(blanker) if blanker.finds_in(&text) => {
                    blanker.blank(Cow::Borrowed(text.as_str())).into_owned()
                }
                _ => text,
            }
        })
    }
}

/// What one attempt came to.
#[derive(Debug)]
pub enum Answer {
    /// 2xx. What the body says; `Err` says why it could not be read (for a
    /// PATCH the change was still accepted).
    Success {
        status: u16,
        reply: Result<Reply, String>,
    },
    /// 408, 409, 429, 5xx, a timeout or a connection error: worth another try.
    Retryable {
        /// `None` when no answer came at all.
        status: Option<u16>,
        /// How long the server asked to wait (`retry-after-ms`, `Retry-After`).
        retry_after: Option<Duration>,
        error: String,
        /// No connection could be made: the server was not reached at all.
        unreachable: bool,
    },
    /// Any other status: the server refused the request; retrying won't help.
    Failed { status: u16, error: String },
    /// The server's certificate is not trusted (unknown authority, expired,
    /// another name), or the proxy refused its credentials (407): no
    /// request was sent, and none will pass until that is fixed. `error`
    /// names the host, the problem and the fix.
    Untrusted { error: String },
}

/// Whatever sends a [`Call`] and answers: the HTTP [`Client`], or a fake in
/// the engine's tests. The future owns what it needs, so each attempt can
/// run as a task of its own.
pub trait Transport: Send + Sync + 'static {
    fn send(&self, call: Call) -> impl Future<Output = Answer> + Send + 'static;
}

/// What the client needs to reach the API, made once per command by
/// `settings` from flags, environment and profile.
#[derive(Debug, Clone)]
pub struct ClientConfig<'a> {
    pub base_url: &'a Url,
    /// The key itself, for the `Authorization` header and to blank its echoes.
    pub api_key: &'a str,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Trusted besides the system's store and the bundled roots.
    pub extra_roots: &'a [rustls::pki_types::CertificateDer<'static>],
    /// `None`: straight to the API.
    pub proxy: Option<ProxyConfig>,
}

/// The proxy a client goes through.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// With any user name and password.
    pub url: Url,
    /// How messages name it: `http://user:***@proxy:3128 (from HTTPS_PROXY)`.
    pub shown: String,
    /// Its password, as written and decoded: blanked out of messages.
    pub secrets: Vec<String>,
}

/// The API over HTTP. Cheap to clone: clones share the connection pool.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    base_url: Url,
    timeout: Duration,
    /// Blanks the key out of server text that echoes it back, in every
    /// spelling (see [`crate::secret`]).
    blanker: Arc<Blanker>,
    /// Whether the key is long enough to be blanked out of user objects too.
    long_key: bool,
    /// The proxy's password (as written and decoded), blanked out of
    /// connection errors and of error answers (a proxy's own page may
    /// repeat it), in every spelling the key's blanker knows.
    proxy_secrets: Vec<Blanker>,
    /// Whether `--ca-cert` gave authorities (certificate errors say so).
    extra_roots: bool,
    connect_timeout: Duration,
    /// How certificate errors name the server: `api.gcore.com` or
    /// `api.gcore.com, through the proxy http://proxy:3128 (from HTTPS_PROXY)`.
    server: String,
}

impl Client {
    /// `pool` is the number of idle connections kept open; keep it at least
    /// the concurrency, or connections churn.
    pub fn new(api: &ClientConfig<'_>, pool: usize) -> Result<Client, Fatal> {
        let mut headers = HeaderMap::new();
        let mut auth = HeaderValue::from_str(&format!("apikey {}", api.api_key))
            .map_err(|_| Fatal::Usage("the API key cannot go in an HTTP header".to_string()))?;
        auth.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, auth);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let mut builder = reqwest::Client::builder();
        // The system's trust store (SSL_CERT_FILE, SSL_CERT_DIR) and the
        // bundled roots are trusted by reqwest's features; these are more.
        for root in api.extra_roots {
            let root = reqwest::Certificate::from_der(root).map_err(Fatal::Client)?;
            builder = builder.add_root_certificate(root);
        }
        // The settings chose the proxy (flag, environment, NO_PROXY): no other.
        builder = match &api.proxy {
            Some(route) => {
                let proxy = reqwest::Proxy::all(route.url.as_str()).map_err(Fatal::Client)?;
                builder.proxy(proxy)
            }
            None => builder.no_proxy(),
        };
        let host = api.base_url.host_str().unwrap_or_default().to_string();
        let server = match &api.proxy {
            Some(route) => format!("{host}, through the proxy {}", route.shown),
            None => host,
        };
        let http = builder
            .user_agent(concat!("gcore-iam-bulk/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .timeout(api.timeout)
            .connect_timeout(api.connect_timeout)
            .pool_max_idle_per_host(pool)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            // A redirected PATCH may turn into a GET; a redirect means the base URL is wrong.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(Fatal::Client)?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base_url: api.base_url.clone(),
                timeout: api.timeout,
                blanker: Arc::new(Blanker::new(api.api_key)),
                long_key: api.api_key.len() >= MIN_KEY_IN_DATA,
                extra_roots: !api.extra_roots.is_empty(),
                connect_timeout: api.connect_timeout,
                proxy_secrets: (api.proxy.iter())
                    .flat_map(|route| &route.secrets)
                    .filter(|secret| !secret.trim().is_empty())
                    .map(|secret| Blanker::new(secret))
                    .collect(),
                server,
            }),
        })
    }

    /// `{base}/{call.path}?{call.query}`, keeping any path the base URL has.
    pub fn url(&self, call: &Call) -> Url {
        let mut url = self.inner.base_url.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .expect("the base URL was checked to be a base");
            segments.pop_if_empty().extend(call.path.split('/'));
        }
        if !call.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in &call.query {
                pairs.append_pair(name, value);
            }
        }
        url
    }

    /// One attempt of any call.
    pub async fn call(&self, call: Call) -> Answer {
        let inner = &self.inner;
        let call_max_body = call.max_body;
        let mut request = inner.http.request(call.method.clone(), self.url(&call));
        if let Some(body) = call.body {
            request = request.body(body);
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) => return self.transport_error(error),
        };
        let status = response.status();
        let retry_after = retry_after(response.headers(), SystemTime::now());
        // Read up to the call's bound: a server that answers 50 MB must
        // not cost 50 MB a request.
        let max_body = call_max_body;
        let mut too_large = response
            .content_length()
            .is_some_and(|length| length > max_body as u64);
        let mut bytes = Vec::with_capacity(
            response
                .content_length()
                .map_or(0, |length| length.min(max_body as u64) as usize),
        );
        while !too_large {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(error) => return self.transport_error(error),
            };
            too_large = bytes.len() + chunk.len() > max_body;
            if !too_large {
                bytes.extend_from_slice(&chunk);
            }
        }
        if too_large {
            return too_large_answer(status, retry_after, max_body);
        }
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
        };
        // An error message is always searched for the key. A user object is
        // only for a key long enough not to be a piece of a name or an
        // address: blanking `demo` would turn "demo user" into "*** user",
        // and the record would lie about the user.
        let before = text.len();
        let text = if !status.is_success() || inner.long_key {
            inner.blanker.blank(Cow::Owned(text))
        } else {
            Cow::Owned(text)
        };
        // Whether an echo was blanked: the key is longer than its blank.
        let mut blanked = text.len() != before;
        // A proxy's own error page may repeat its password (plainly, or in
        // the `Basic` credentials it was sent).
        let text = match status.is_success() {
            true => text,
            false => (inner.proxy_secrets.iter()).fold(text, |text, proxy| proxy.blank(text)),
        };
        // JSON escapes (`\u0025`) can spell an echo the raw text does not
        // show: the strings are blanked again as they decode.
        let text = match status.is_success() && inner.long_key && text.contains('\\') {
            true => {
                let (decoded, found) = blank_decoded(&inner.blanker, text);
                blanked |= found;
                decoded
            }
            false => text,
        };
        if status.is_success() {
            return Answer::Success {
                status: status.as_u16(),
                reply: Ok(Reply {
                    status: status.as_u16(),
                    headers: std::mem::take(response.headers_mut()),
                    body: text.into_owned(),
                    blanker: Some(Arc::clone(&inner.blanker)),
                    blanked: blanked && inner.long_key,
                }),
            };
        }
        let mut answer = classify(status, retry_after, &text);
        // The message as decoded from JSON may spell the key plainly.
        if let Answer::Failed { error, .. } | Answer::Retryable { error, .. } = &mut answer
            && inner.blanker.finds_in(error)
        {
            *error = inner
                .blanker
                .blank(Cow::Borrowed(error.as_str()))
                .into_owned();
        }
        answer
    }

    fn transport_error(&self, error: reqwest::Error) -> Answer {
        let error = error.without_url();
        if let Some(problem) = certificate_problem(&error) {
            return Answer::Untrusted {
                error: untrusted_message(&self.inner.server, &problem, self.inner.extra_roots),
            };
        }
        let not_tls = matches!(
            tls_error(&error),
            Some(rustls::Error::InvalidMessage(
                rustls::InvalidMessage::InvalidContentType
            ))
        );
        let mut text = if not_tls {
            "cannot connect: the server does not speak TLS on this port (is the base URL \
             http://, or the port another one?)"
                .to_string()
        } else if error.is_timeout() && error.is_connect() {
            format!(
                "cannot connect: no connection (TCP and TLS) within {} s",
                self.inner.connect_timeout.as_secs_f64()
            )
        } else if error.is_timeout() {
            format!("no answer within {} s", self.inner.timeout.as_secs_f64())
        } else if error.is_connect() {
            let chain = error_chain(&error);
            let chain = chain.trim_start_matches("error sending request: ");
            let chain = chain.trim_start_matches("client error (Connect): ");
            match chain.strip_prefix("tunnel error: ") {
                // No request passes until the credentials are fixed.
                Some(why) if why.contains("proxy authorization required") => {
                    return Answer::Untrusted {
                        error: format!(
                            "the proxy refused the user and password (407 Proxy Authentication \
                             Required) for {}: check the credentials in --proxy or HTTPS_PROXY \
                             (USER:PASSWORD@HOST:PORT); nothing was sent through it",
                            self.inner.server
                        ),
                    };
                }
                Some(why) => format!("cannot connect through the proxy: {why}"),
                None => format!("cannot connect: {chain}"),
            }
        } else {
            error_chain(&error)
        };
        if self.inner.blanker.finds_in(&text) {
            text = self.inner.blanker.blank(Cow::Borrowed(&text)).into_owned();
        }
        for proxy in &self.inner.proxy_secrets {
            if proxy.finds_in(&text) {
                text = proxy.blank(Cow::Borrowed(&text)).into_owned();
            }
        }
        Answer::Retryable {
            status: None,
            retry_after: None,
            error: text,
            unreachable: error.is_connect(),
        }
    }
}

impl Transport for Client {
    fn send(&self, call: Call) -> impl Future<Output = Answer> + Send + 'static {
        let client = self.clone();
        async move { client.call(call).await }
    }
}

/// The most of an answer's body that is read: far above a user object
/// (about 1 KB) or a page of them.
pub(crate) const MAX_BODY: usize = 1 << 20;

/// An answer whose body is over `max` bytes: classified by its status alone.
fn too_large_answer(status: StatusCode, retry_after: Option<Duration>, max: usize) -> Answer {
    let bound = match max % (1 << 20) {
        0 => format!("{} MiB", max >> 20),
        _ => format!("{} KiB", max.div_ceil(1024)),
    };
    let note = format!("the answer was over {bound} and was not read");
    if status.is_success() {
        return Answer::Success {
            status: status.as_u16(),
            reply: Err(note),
        };
    }
    match classify(status, retry_after, "") {
        Answer::Retryable {
            status,
            retry_after,
            error,
            unreachable,
        } => Answer::Retryable {
            status,
            retry_after,
            error: format!("{error} ({note})"),
            unreachable,
        },
        Answer::Failed { status, error } => Answer::Failed {
            status,
            error: format!("{error} ({note})"),
        },
        success => success,
    }
}

/// `text` (a JSON answer) with every string and key that decodes to an
/// echo of the key blanked, written again; as it was when nothing is, or
/// when it is not JSON (the reader then says so); and whether it blanked
/// anything.
fn blank_decoded<'a>(blanker: &Blanker, text: Cow<'a, str>) -> (Cow<'a, str>, bool) {
    /// Blanks `text` in place; whether it held an echo.
    fn blank(blanker: &Blanker, text: &mut String) -> bool {
        let found = blanker.finds_in(text);
        if found {
            *text = blanker.blank(Cow::Borrowed(text.as_str())).into_owned();
        }
        found
    }
    fn walk(blanker: &Blanker, value: &mut serde_json::Value) -> bool {
        match value {
            serde_json::Value::String(text) => blank(blanker, text),
            serde_json::Value::Array(items) => items
                .iter_mut()
                .fold(false, |changed, item| walk(blanker, item) | changed),
            serde_json::Value::Object(map) => {
                let mut changed = map
                    .values_mut()
                    .fold(false, |changed, item| walk(blanker, item) | changed);
                // A key is rarely an echo: only those are taken out and put back.
                let echoed: Vec<String> = map
                    .keys()
                    .filter(|key| blanker.finds_in(key))
                    .cloned()
                    .collect();
                for key in echoed {
                    let value = map.remove(&key).expect("a key of the map");
                    let mut key = key;
                    changed |= blank(blanker, &mut key);
                    map.insert(key, value);
                }
                changed
            }
            _ => false,
        }
    }
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(&text) else {
        return (text, false);
    };
    match walk(blanker, &mut value) {
        true => (Cow::Owned(value.to_string()), true),
        false => (text, false),
    }
}

/// Keys shorter than this are not blanked out of the users an API answers
/// with (real API keys are far longer).
const MIN_KEY_IN_DATA: usize = crate::secret::MIN_RUN;

#[cfg(test)]
mod tests;
