//! One classification of every answer (done, worth retrying, failed), the
//! server's message in a few words, and `Retry-After` read.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::model::api::{User, UserPage};

use super::*;

/// What a successful answer's body should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    User,
    Page,
}

/// Sorts an answer by its status. Pure, so it is tested without a server.
pub fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &str,
    expect: Expect,
) -> Answer {
    if status.is_success() {
        let reply = match expect {
            Expect::User => serde_json::from_str::<Box<User>>(body)
                .map(Reply::User)
                .map_err(|error| {
                    format!("the change was accepted but the answer is not a user object: {error}")
                }),
            Expect::Page => parse_page(body)
                .map(Reply::Page)
                .map_err(|error| format!("the answer is not a page of users: {error}")),
        };
        return Answer::Success {
            status: status.as_u16(),
            reply,
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

/// A page of the list, noting which entries leave out a field a row can
/// set (`UserPage::left_out`): after parsing, a missing field and a null
/// one are both `None`, and a list that leaves out `phone` must not pass
/// for one that says the phone is empty.
pub(super) fn parse_page(body: &str) -> Result<UserPage, serde_json::Error> {
    use serde::Deserialize;
    let json: serde_json::Value = serde_json::from_str(body)?;
    let mut page = UserPage::deserialize(&json)?;
    let entries = json.get("results").and_then(serde_json::Value::as_array);
    for (index, entry) in entries.into_iter().flatten().enumerate() {
        let Some(fields) = entry.as_object() else {
            continue;
        };
        let missing: Vec<&'static str> = crate::model::patch::Field::ALL
            .iter()
            .map(|field| field.name())
            .filter(|name| !fields.contains_key(*name))
            .collect();
        if !missing.is_empty() {
            page.left_out.push((index, missing));
        }
    }
    Ok(page)
}

/// `HTTP 404 Not Found: user not found`: the status and the server's own
/// message, taken from a JSON error body when there is one, on one line and
/// cut to [`MAX_MESSAGE_CHARS`].
pub fn describe_status(status: StatusCode, body: &str) -> String {
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
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A server's number of seconds as a wait: an absurd one (`1e30`, `inf`)
/// is the longest wait there is, never a panic; it then exceeds `--max-wait`.
pub(super) fn saturating_seconds(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
}
