use super::*;
use crate::model::api::User;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}

#[test]
fn certificate_problems_are_found_inside_the_wrapped_errors_they_come_in() {
    use rustls::CertificateError as C;
    use std::io::{Error, ErrorKind};
    // As reqwest's connector hands them over: io::Error in io::Error.
    let wrapped = |tls: rustls::Error| Error::other(Error::new(ErrorKind::InvalidData, tls));
    let cases = [
        (C::UnknownIssuer, CertProblem::UnknownIssuer),
        (C::Expired, CertProblem::Expired),
        (C::NotValidYet, CertProblem::NotValidYet),
        (C::NotValidForName, CertProblem::WrongName),
        (C::Revoked, CertProblem::Revoked),
        (C::BadSignature, CertProblem::BadSignature),
        (
            C::Other(rustls::OtherError(std::sync::Arc::new(
                webpki::Error::EndEntityUsedAsCa,
            ))),
            CertProblem::ServerAsCa,
        ),
    ];
    for (error, want) in cases {
        let error = wrapped(rustls::Error::InvalidCertificate(error));
        assert_eq!(certificate_problem(&error), Some(want));
    }
    let none = wrapped(rustls::Error::NoCertificatesPresented);
    assert_eq!(certificate_problem(&none), Some(CertProblem::Missing));
    // Not about a certificate: retried like any connection error.
    let protocol = wrapped(rustls::Error::General("x".to_string()));
    assert_eq!(certificate_problem(&protocol), None);
    let refused = Error::new(ErrorKind::ConnectionRefused, "refused");
    assert_eq!(certificate_problem(&refused), None);
}

#[test]
fn an_untrusted_certificate_names_the_server_the_problem_and_the_fix() {
    let cases = [
        (CertProblem::UnknownIssuer, "--ca-cert"),
        (CertProblem::Expired, "date and time"),
        (CertProblem::WrongName, "--base-url"),
    ];
    for (problem, fix) in cases {
        let text = untrusted_message("api.gcore.com", &problem, false);
        assert!(
            text.starts_with("the certificate of api.gcore.com is not trusted: "),
            "{text}"
        );
        assert!(text.contains(fix), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }
}

#[test]
fn retry_after_forms() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let date = httpdate::fmt_http_date(now + Duration::from_secs(42));
    let past = httpdate::fmt_http_date(now - Duration::from_secs(42));
    // A server whose clock is 600 s ahead of this machine's, asking for 1 s.
    let ahead = httpdate::fmt_http_date(now + Duration::from_secs(600));
    let ahead_and_one = httpdate::fmt_http_date(now + Duration::from_secs(601));
    type Case<'a> = (&'a [(&'static str, &'a str)], Option<Duration>);
    let cases: [Case; 15] = [
        (
            &[("date", &ahead), ("retry-after", &ahead_and_one)],
            Some(Duration::from_secs(1)),
        ),
        // A Date that is no date: the local clock.
        (
            &[("date", "yesterday"), ("retry-after", &date)],
            Some(Duration::from_secs(42)),
        ),
        (&[("retry-after", "1e30")], Some(Duration::MAX)),
        (&[("retry-after", "inf")], Some(Duration::MAX)),
        (&[("retry-after", "NaN")], None),
        (&[("retry-after-ms", "1e30")], Some(Duration::MAX)),
        (
            &[("retry-after-ms", "-1"), ("retry-after", "2")],
            Some(Duration::from_secs(2)),
        ),
        (&[], None),
        (&[("retry-after", "3")], Some(Duration::from_secs(3))),
        (
            &[("retry-after", " 1.5 ")],
            Some(Duration::from_millis(1500)),
        ),
        (&[("retry-after", &date)], Some(Duration::from_secs(42))),
        (&[("retry-after", &past)], Some(Duration::ZERO)),
        (&[("retry-after", "soon")], None),
        (&[("retry-after", "-5")], None),
        (
            &[("retry-after-ms", "250"), ("retry-after", "9")],
            Some(Duration::from_millis(250)),
        ),
    ];
    for (pairs, want) in cases {
        assert_eq!(retry_after(&headers(pairs), now), want, "{pairs:?}");
    }
}

#[test]
fn statuses_are_sorted() {
    let user = r#"{"id":7,"name":"Ann"}"#;
    assert!(matches!(
        classify(StatusCode::OK, None, user),
        Answer::Success { status: 200, reply: Ok(reply) }
            if reply.status == 200 && reply.text() == user
    ));
    for code in [408, 409, 429, 500, 502, 503, 504] {
        let status = StatusCode::from_u16(code).unwrap();
        assert!(
            matches!(classify(status, None, ""), Answer::Retryable { status: Some(c), .. } if c == code),
            "{code}"
        );
    }
    for code in [301, 400, 401, 403, 404, 422] {
        let status = StatusCode::from_u16(code).unwrap();
        assert!(
            matches!(classify(status, None, ""), Answer::Failed { status: c, .. } if c == code),
            "{code}"
        );
    }
}

#[test]
fn a_reply_is_read_by_the_operation_and_its_errors_never_show_the_key() {
    let reply = Reply::new(200, r#"{"id":7,"name":"Ann"}"#);
    let user: Box<User> = reply.json().unwrap();
    assert_eq!(user.id, Some(7));
    assert!(reply.json::<Vec<u64>>().is_err());
    let key = "k3y-0123456789abcdef";
    let reply = Reply {
        blanker: Some(Arc::new(Blanker::new(key))),
        ..Reply::new(200, format!(r#"{{"id":"{key}"}}"#))
    };
    let error = reply.json::<Box<User>>().unwrap_err();
    assert!(error.contains("invalid type"), "{error}");
    assert!(!error.contains(key), "{error}");
    assert!(error.contains("***"), "{error}");
}

#[test]
fn a_call_is_described_and_addressed_below_the_base_url() {
    let call = Call::get("iam/users")
        .with_query("limit", 300)
        .with_query("offset", 600);
    assert_eq!(call.describe(), "GET /iam/users?limit=300&offset=600");
    let call = Call::patch("iam/users/7", "{}".to_string());
    assert_eq!(call.describe(), "PATCH /iam/users/7");
    assert_eq!(call.body.as_deref(), Some("{}"));
}

#[test]
fn an_answer_too_large_to_read_is_classified_by_its_status() {
    assert!(matches!(
        too_large_answer(StatusCode::OK, None, MAX_BODY),
        Answer::Success { status: 200, reply: Err(e) } if e.contains("over 1 MiB")
    ));
    assert!(matches!(
        too_large_answer(StatusCode::SERVICE_UNAVAILABLE, None, MAX_BODY),
        Answer::Retryable { status: Some(503), error, .. } if error.ends_with("(the answer was over 1 MiB and was not read)")
    ));
    assert!(matches!(
        too_large_answer(StatusCode::NOT_FOUND, None, MAX_BODY),
        Answer::Failed { status: 404, .. }
    ));
}

#[test]
fn server_messages_are_trimmed() {
    assert_eq!(
        describe_status(
            StatusCode::NOT_FOUND,
            "  {\"message\": \"User not found\"}\n"
        ),
        "HTTP 404 Not Found: User not found"
    );
    assert_eq!(
        describe_status(StatusCode::BAD_REQUEST, "bad\n  lang\n"),
        "HTTP 400 Bad Request: bad lang"
    );
    assert_eq!(
        describe_status(StatusCode::BAD_REQUEST, r#"{"errors":{"lang":["bad"]}}"#),
        r#"HTTP 400 Bad Request: {"lang":["bad"]}"#
    );
    assert_eq!(
        describe_status(StatusCode::FORBIDDEN, ""),
        "HTTP 403 Forbidden"
    );
    let long = "x".repeat(5000);
    let text = describe_status(StatusCode::BAD_REQUEST, &long);
    assert!(
        text.chars().count() < MAX_MESSAGE_CHARS + 40,
        "{}",
        text.len()
    );
}
