//! The HTTP face of the sandbox: the three users endpoints, authentication,
//! the fault layer in front of them, and `GET /sandbox/stats` beside them.
//! Every error answer has one shape: `{"message": "...", "errors": {...}}`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde::Serialize;
use serde_json::Value;

use super::faults::{FaultPlan, Verdict};
use super::state::{Counters, Users};
use crate::model::api::UserPage;
use crate::model::patch::{self, PatchBody, Problem};

/// Largest PATCH body read. A user's body is well under 2 KiB; 64 KiB leaves
/// room for odd clients and still refuses a runaway upload after one chunk.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// Everything the handlers share.
pub(crate) struct App {
    pub(crate) users: Users,
    pub(crate) api_key: String,
    pub(crate) counters: Counters,
    pub(crate) plan: FaultPlan,
    next_request: AtomicU64,
}

impl App {
    pub(crate) fn new(users: Users, api_key: String, plan: FaultPlan) -> App {
        App {
            users,
            api_key,
            counters: Counters::default(),
            plan,
            next_request: AtomicU64::new(0),
        }
    }
}

/// The peer of the connection, put on each request by the connection loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) SocketAddr);

/// Put on a response to have the connection closed instead of answered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the sandbox's drop-rate fault")
    }
}

impl std::error::Error for DropConnection {}

/// The API's routes (the users', and `more`: the account's membership),
/// behind the key and the faults, and the sandbox's stats beside them.
pub(crate) fn router(app: Arc<App>, more: Router<Arc<App>>) -> Router {
    let users_api = Router::new()
        .route(
            "/iam/users",
            get(list_users).fallback(|| async { method_not_allowed("GET") }),
        )
        .route(
            "/iam/users/",
            any(|| async {
                error(
                    StatusCode::NOT_FOUND,
                    "no user ID in the path; use /iam/users/{userId}",
                )
            }),
        )
        .route(
            "/iam/users/{user_id}",
            get(get_user)
                .patch(patch_user)
                .fallback(|| async { method_not_allowed("GET, PATCH") }),
        )
        .merge(more)
        .route_layer(middleware::from_fn_with_state(app.clone(), authenticate))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(app.clone(), front))
        .with_state(app.clone());
    Router::new()
        .route(
            "/sandbox/stats",
            get(stats).fallback(|| async { method_not_allowed("GET") }),
        )
        .with_state(app)
        .fallback_service(users_api)
}

/// The error shape of every 4xx and 5xx answer.
#[derive(Serialize)]
struct ErrorBody {
    message: String,
    errors: BTreeMap<String, String>,
}

/// An error answer not yet turned into a response.
pub(crate) struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError::with_errors(status, message, BTreeMap::new())
    }

    fn with_errors(
        status: StatusCode,
        message: impl Into<String>,
        errors: BTreeMap<String, String>,
    ) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                message: message.into(),
                errors,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    ApiError::new(status, message).into_response()
}

fn error_with(
    status: StatusCode,
    message: impl Into<String>,
    errors: BTreeMap<String, String>,
) -> Response {
    ApiError::with_errors(status, message, errors).into_response()
}

/// A 400 that names each bad field under `errors`.
fn invalid(problems: &[Problem]) -> Response {
    let mut errors: BTreeMap<String, String> = BTreeMap::new();
    for problem in problems {
        if let Some(column) = &problem.column {
            errors
                .entry(column.to_string())
                .and_modify(|text| {
                    text.push_str("; ");
                    text.push_str(&problem.message);
                })
                .or_insert_with(|| problem.message.clone());
        }
    }
    error_with(StatusCode::BAD_REQUEST, patch::describe(problems), errors)
}

pub(super) fn method_not_allowed(allow: &'static str) -> Response {
    let message = format!("method not allowed here; allowed: {allow}");
    let api_error = ApiError::new(StatusCode::METHOD_NOT_ALLOWED, message);
    ([(header::ALLOW, allow)], api_error).into_response()
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!(
            "no such endpoint: {method} {}; the sandbox serves GET /iam/users, \
             GET and PATCH /iam/users/{{userId}}, GET /iam/clients/me, POST \
             /iam/clients/invite_user, DELETE /iam/clients/{{clientId}}/client-users/{{userId}}, \
             GET /sandbox/stats",
            uri.path()
        ),
    )
}

/// The user a request's path is about: `/iam/users/{id}` or
/// `/iam/clients/{client}/client-users/{id}`.
fn user_of_path(path: &str) -> Option<u64> {
    let id = path
        .strip_prefix("/iam/users/")
        .or_else(|| path.split_once("/client-users/").map(|(_, id)| id))?;
    id.parse().ok()
}

/// Counts the request, then applies the faults: latency, rate limit, drop,
/// 5xx, slow answer. Outside everything else so that faults hit 401s and
/// 404s too, as a real front end's would.
async fn front(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let mut in_flight = app.counters.begin(request.method().as_str());
    let number = app.next_request.fetch_add(1, Ordering::Relaxed);
    let latency = app.plan.latency(number);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = match app.plan.verdict(number, user_of_path(request.uri().path())) {
        Verdict::Throttle(seconds, status, ms) => {
            let message = match seconds {
                Some(seconds) => format!("too many requests; retry after {seconds} s"),
                None => "too many requests".to_string(),
            };
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
            let api_error = ApiError::new(status, message);
            let mut response = api_error.into_response();
            if let Some(seconds) = seconds {
                (response.headers_mut())
                    .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
            }
            if let Some(ms) = ms {
                response
                    .headers_mut()
                    .insert("retry-after-ms", header::HeaderValue::from(ms));
            }
            response
        }
        Verdict::QuotaSpent => {
            let message = "too many requests: the quota of this window is spent";
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, message.to_string()).into_response()
        }
        Verdict::Drop => {
            let mut response = Response::new(Body::empty());
            response.extensions_mut().insert(DropConnection);
            // Not `answered`: no status reaches the client, so it counts as 0.
            return response;
        }
        Verdict::Fail(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error(
                status,
                format!("sandbox fault: {status} (error-rate); nothing was changed"),
            )
        }
        Verdict::Serve(hold) => {
            let response = next.run(request).await;
            if !hold.is_zero() {
                tokio::time::sleep(hold).await;
            }
            response
        }
    };
    in_flight.answered(response.status().as_u16());
    response
}

/// `Authorization: apikey <key>`, the scheme word in any case.
async fn authenticate(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    match check_key(&headers, &app.api_key) {
        Ok(()) => next.run(request).await,
        Err(message) => {
            let api_error = ApiError::new(StatusCode::UNAUTHORIZED, message);
            ([(header::WWW_AUTHENTICATE, "apikey")], api_error).into_response()
        }
    }
}

fn check_key(headers: &HeaderMap, api_key: &str) -> Result<(), &'static str> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err("authentication required: send the header Authorization: apikey <key>");
    };
    let value = value.to_str().unwrap_or("");
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("apikey") {
        return Err("the Authorization header must read: apikey <key>");
    }
    if token.trim() != api_key {
        return Err("the API key is not valid");
    }
    Ok(())
}

pub(crate) fn user_id(text: &str, users: &Users) -> Result<u64, ApiError> {
    // The path has no room for spaces or signs: digits only, then the
    // crate's own rules (not zero, not past the largest ID).
    let checked = if text.bytes().all(|b| b.is_ascii_digit()) {
        patch::parse_user_id(text)
    } else {
        Err(format!(
            "{} is not a positive whole number",
            patch::show(text)
        ))
    };
    let id = checked.map_err(|message| {
        let errors = BTreeMap::from([("userId".to_string(), message.clone())]);
        ApiError::with_errors(
            StatusCode::BAD_REQUEST,
            format!("userId: {message}"),
            errors,
        )
    })?;
    if !users.contains(id) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("user {id} not found"),
        ));
    }
    Ok(id)
}

async fn get_user(State(app): State<Arc<App>>, Path(user_id_text): Path<String>) -> Response {
    let id = match user_id(&user_id_text, &app.users) {
        Ok(id) => id,
        Err(api_error) => return api_error.into_response(),
    };
    match app.users.get(id) {
        Some(user) => Json(user).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("user {id} not found")),
    }
}

async fn patch_user(
    State(app): State<Arc<App>>,
    Path(user_id_text): Path<String>,
    request: Request,
) -> Response {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        )
    };
    // A declared length over the limit is refused before a byte is read;
    // a chunked body is cut off once it passes the limit.
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    let headers = request.headers().clone();
    let body = match Bytes::from_request(request, &()).await {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return too_large();
        }
        Err(rejection) => {
            return error(
                rejection.status(),
                format!("cannot read the body: {}", rejection.body_text()),
            );
        }
    };
    let id = match user_id(&user_id_text, &app.users) {
        Ok(id) => id,
        Err(api_error) => return api_error.into_response(),
    };
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let essence = content_type.to_str().unwrap_or("").split(';').next();
        if !essence.is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json")) {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type {} is not supported; send application/json",
                    patch::show(content_type.to_str().unwrap_or("?"))
                ),
            );
        }
    }
    let json: Value = match serde_json::from_slice(&body) {
        Ok(json) => json,
        Err(parse_error) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body is not valid JSON: {parse_error}"),
            );
        }
    };
    let known = app.users.known();
    let patch_body =
        match PatchBody::from_json_accepting(&json, |field, value| known.accepts(field, value)) {
            Ok(patch_body) => patch_body,
            Err(problems) => return invalid(&problems),
        };
    match app.users.patch(id, &patch_body) {
        Some(user) => Json(user).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("user {id} not found")),
    }
}

async fn list_users(State(app): State<Arc<App>>, uri: axum::http::Uri) -> Response {
    let mut limit = None;
    let mut offset = None;
    let mut errors = BTreeMap::new();
    for pair in uri.query().unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match key {
            "limit" => &mut limit,
            "offset" => &mut offset,
            _ => continue,
        };
        match value.parse::<u64>() {
            Ok(number) => *slot = Some(number),
            Err(_) => {
                errors.insert(
                    key.to_string(),
                    format!("{} is not a whole number of 0 or more", patch::show(value)),
                );
            }
        }
    }
    if !errors.is_empty() {
        let message = errors
            .iter()
            .map(|(key, message)| format!("{key}: {message}"))
            .collect::<Vec<_>>()
            .join("; ");
        return error_with(StatusCode::BAD_REQUEST, message, errors);
    }
    match limit {
        // Without `limit` the API does not paginate (and ignores `offset`).
        None => list_answer(&app, app.users.page(0, None)),
        Some(limit) => {
            let offset = offset.unwrap_or(0);
            let results = match app.plan.list_churns(offset) {
                true => shifted_page(&app.users, offset, limit),
                false => app.users.page(offset, Some(limit)),
            };
            let page = UserPage {
                count: app.plan.list_count().unwrap_or(app.users.count()),
                results,
                ..UserPage::default()
            };
            list_answer(&app, page)
        }
    }
}

/// A list answer, without the fields `--list-omit` names.
fn list_answer(app: &App, answer: impl Serialize) -> Response {
    let omit = app.plan.list_omit();
    if omit.is_empty() {
        return Json(answer).into_response();
    }
    let mut json = serde_json::to_value(answer).unwrap_or_default();
    let users = match &mut json {
        Value::Array(users) => Some(users),
        Value::Object(page) => page.get_mut("results").and_then(Value::as_array_mut),
        _ => None,
    };
    for user in users.into_iter().flatten() {
        if let Value::Object(fields) = user {
            for field in omit {
                fields.remove(field);
            }
        }
    }
    Json(json).into_response()
}

/// The page at `offset` of the account as it would be had its first user
/// been removed and one added at the end (`--list-churn`): the same count,
/// every user one place earlier, the new one last.
fn shifted_page(users: &Users, offset: u64, limit: u64) -> Vec<crate::model::api::User> {
    let count = users.count();
    let mut page = users.page(offset.saturating_add(1), Some(limit));
    if (page.len() as u64) < limit
        && offset < count
        && let Some(mut added) = users.get(count)
    {
        let id = count + 1;
        added.id = Some(id);
        added.email = Some(format!("added.during.list.{id}@example.com"));
        page.push(added);
    }
    page
}

/// Open from loopback; from elsewhere (a sandbox listening on 0.0.0.0) it
/// needs the key like the rest.
async fn stats(State(app): State<Arc<App>>, headers: HeaderMap, request: Request) -> Response {
    let from_loopback = request
        .extensions()
        .get::<Peer>()
        .is_none_or(|peer| peer.0.ip().is_loopback());
    if !from_loopback && let Err(message) = check_key(&headers, &app.api_key) {
        return error(StatusCode::UNAUTHORIZED, message);
    }
    Json(app.counters.snapshot(&app.users)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn keys() {
        let key = "k3y";
        let cases: &[(Option<&str>, bool)] = &[
            (Some("apikey k3y"), true),
            (Some("APIKey k3y"), true),
            (Some("ApiKey  k3y "), true),
            (Some("apikey wrong"), false),
            (Some("Bearer k3y"), false),
            (Some("k3y"), false),
            (Some("apikey"), false),
            (Some(""), false),
            (None, false),
        ];
        for (value, ok) in cases {
            let mut headers = HeaderMap::new();
            if let Some(value) = value {
                headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            }
            assert_eq!(check_key(&headers, key).is_ok(), *ok, "{value:?}");
        }
    }
}
