//! One classification of every answer (done, worth retrying, failed), the
//! server's message in a few words, and `Retry-After` read.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::*;

/// Sorts an answer by its status. Pure, so it is tested without a server.
/// A success's body is the operation's to read; this one is handed the
/// body for the message of a refusal.
pub(crate) fn classify(status: StatusCode, retry_after: Option<Duration>, body: &str) -> Answer {
    if status.is_success() {
        return Answer::Success {
            status: status.as_u16(),
            reply: Ok(Reply::new(status.as_u16(), body)),
        };
    }
    let error = describe_status(status, body);
    let code = status.as_u16();
    if matches!(code, 408 | 409 | 429) || status.is_server_error() {
        Answer::Retryable {
            status: Some(code),
            retry_after,
            error,
            unreachable: false,
        }
    } else {
        Answer::Failed {
            status: code,
            error,
        }
    }
}

/// `HTTP 404 Not Found: user not found`: the status and the server's own
/// message, taken from a JSON error body when there is one, on one line and
/// cut to [`MAX_MESSAGE_CHARS`].
pub(crate) fn describe_status(status: StatusCode, body: &str) -> String {
    let mut text = format!("HTTP {}", status.as_u16());
    if let Some(reason) = status.canonical_reason() {
        text.push(' ');
        text.push_str(reason);
    }
    let message = server_message(body);
    if !message.is_empty() {
        text.push_str(": ");
        text.push_str(&message);
    }
    text
}

pub(super) fn server_message(body: &str) -> String {
    let body = body.trim();
    let from_json = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|value| {
            ["message", "detail", "error", "errors"]
                .iter()
                .find_map(|key| value.get(key).cloned())
        })
        .map(|value| match value {
            serde_json::Value::String(text) => text,
            other => other.to_string(),
        });
    let message = from_json.unwrap_or_else(|| body.to_string());
    let one_line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::visible::cut(&one_line, MAX_MESSAGE_CHARS).into_owned()
}

/// The wait a server asks for: `retry-after-ms` (milliseconds, as the
/// official SDK reads it), else `Retry-After` in seconds or as an HTTP date.
/// A date is read against the answer's own `Date` when it has one (a
/// server whose clock is ten minutes ahead that asks for one second means
/// one second), else against `now`.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| headers.get(name)?.to_str().ok().map(str::trim);
    if let Some(ms) = text("retry-after-ms").and_then(|t| t.parse::<f64>().ok())
        && ms >= 0.0
    {
        return Some(saturating_seconds(ms / 1000.0));
    }
    let value = text("retry-after")?;
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds >= 0.0).then(|| saturating_seconds(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    let server_now = text("date")
        .and_then(|date| httpdate::parse_http_date(date).ok())
        .unwrap_or(now);
    Some(date.duration_since(server_now).unwrap_or(Duration::ZERO))
}

/// A server's number of seconds as a wait: an absurd one (`1e30`, `inf`)
/// is the longest wait there is, never a panic; it then exceeds `--max-wait`.
pub(super) fn saturating_seconds(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
}
