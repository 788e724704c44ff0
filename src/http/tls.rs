//! Why a server's certificate was not trusted, told from rustls's and
//! webpki's errors, and the message that says what to do about it.

/// Why a server's certificate was not trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CertProblem {
    UnknownIssuer,
    Expired,
    NotValidYet,
    WrongName,
    Revoked,
    /// The server presented none.
    Missing,
    /// The server presented a certificate authority's certificate as its
    /// own (a self-signed CA certificate).
    CaAsServer,
    /// The certificate cannot be read.
    Unreadable,
    /// Its signature does not check out against the authority's key.
    BadSignature,
    /// A server's own certificate stands where an authority's should (a
    /// --ca-cert file with the server's certificate, a chain out of order).
    ServerAsCa,
    /// Anything else rustls refuses a certificate for, as it says it.
    Other(String),
}

/// The certificate problem somewhere in an error's chain, if it is one.
pub(crate) fn certificate_problem(
    error: &(dyn std::error::Error + 'static),
) -> Option<CertProblem> {
    use rustls::CertificateError as C;
    match tls_error(error)? {
        rustls::Error::InvalidCertificate(problem) => Some(match problem {
            C::UnknownIssuer => CertProblem::UnknownIssuer,
            C::Expired | C::ExpiredContext { .. } => CertProblem::Expired,
            C::NotValidYet | C::NotValidYetContext { .. } => CertProblem::NotValidYet,
            C::NotValidForName | C::NotValidForNameContext { .. } => CertProblem::WrongName,
            C::Revoked => CertProblem::Revoked,
            C::BadEncoding => CertProblem::Unreadable,
            C::BadSignature => CertProblem::BadSignature,
            C::Other(other) => match other.0.downcast_ref::<webpki::Error>() {
                Some(webpki::Error::CaUsedAsEndEntity) => CertProblem::CaAsServer,
                Some(webpki::Error::EndEntityUsedAsCa) => CertProblem::ServerAsCa,
                Some(webpki::Error::InvalidSignatureForPublicKey) => CertProblem::BadSignature,
                _ => CertProblem::Other(other.to_string()),
            },
            other => CertProblem::Other(other.to_string()),
        }),
        rustls::Error::NoCertificatesPresented => Some(CertProblem::Missing),
        // Not about the certificate: a protocol error, for instance.
        _ => None,
    }
}

/// The TLS error somewhere in an error's chain.
pub(super) fn tls_error<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // An `io::Error` wrapping another error does not give it as its
        // `source()`; it is opened instead (TLS errors come wrapped twice).
        next = match error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    None
}

/// The one line a certificate error stops a run with: the server, the
/// problem, and what to do.
/// `extra_roots`: `--ca-cert` (or `GCORE_CA_CERT`) gave authorities.
pub(crate) fn untrusted_message(server: &str, problem: &CertProblem, extra_roots: bool) -> String {
    let (what, fix) = match problem {
        CertProblem::UnknownIssuer if extra_roots => (
            "it is signed by a certificate authority that neither the system's trust store nor \
             the --ca-cert files hold"
                .to_string(),
            "give --ca-cert the certificate of the authority that issued the server's \
             certificate (the company's root), not the server's own certificate",
        ),
        CertProblem::UnknownIssuer => (
            "it is signed by a certificate authority this machine does not trust".to_string(),
            "if a company proxy or firewall inspects TLS, give its root certificate with \
             --ca-cert FILE (or GCORE_CA_CERT), or add it to the system's trust store \
             (SSL_CERT_FILE and SSL_CERT_DIR name another store)",
        ),
        CertProblem::Expired => (
            "it has expired".to_string(),
            "check this machine's date and time; if they are right, the server's (or an \
             inspecting proxy's) certificate must be renewed",
        ),
        CertProblem::NotValidYet => (
            "it is not valid yet".to_string(),
            "check this machine's date and time",
        ),
        CertProblem::WrongName => (
            "it was issued for another host name".to_string(),
            "check the host in --base-url (or GCORE_BASE_URL); a proxy that inspects TLS must \
             issue certificates for that host",
        ),
        CertProblem::Revoked => (
            "it has been revoked".to_string(),
            "the server's certificate must be replaced",
        ),
        CertProblem::Missing => (
            "the server presented none".to_string(),
            "check --base-url (or GCORE_BASE_URL) and any proxy",
        ),
        CertProblem::CaAsServer => (
            "the server presents a certificate authority's own certificate (self-signed) \
             instead of a server certificate"
                .to_string(),
            "the server must be given a certificate issued for its name",
        ),
        CertProblem::Unreadable => (
            "it cannot be read (damaged encoding)".to_string(),
            "check --base-url and any proxy; the server's certificate is broken",
        ),
        CertProblem::BadSignature => (
            "its signature does not match the key of the authority said to have signed it"
                .to_string(),
            "check that --ca-cert holds the authority that really issued the server's \
             certificate (not another with the same name), and any proxy on the way",
        ),
        CertProblem::ServerAsCa => (
            "a server's own certificate stands where an authority's should (in the server's \
             chain, or in a --ca-cert file)"
                .to_string(),
            "give --ca-cert the certificate of the authority (the root), not a server's \
             certificate; the server must send its chain in order",
        ),
        CertProblem::Other(why) => (
            format!("it was refused ({why})"),
            "check --base-url, any proxy, and --ca-cert",
        ),
    };
    format!("the certificate of {server} is not trusted: {what}; {fix}")
}
