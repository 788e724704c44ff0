//! The network path to the API: extra certificate authorities, the proxy
//! (flag, environment, `NO_PROXY`), plain `http://` refused off this
//! machine, and a base URL parsed and shown without what may be a key.

use std::fmt;
use std::path::{Path, PathBuf};

use reqwest::Url;
use rustls::pki_types::CertificateDer;

use crate::error::Fatal;

use super::*;

/// The environment variable that may name a PEM file of extra certificate
/// authorities (as `--ca-cert` does).
pub(crate) const CA_CERT_ENV: &str = "GCORE_CA_CERT";

/// The most a CA file may hold: a system bundle of every public root is
/// about 200 KiB.
pub(super) const MAX_CA_FILE: u64 = 16 << 20;

/// `SSL_CERT_FILE` and `SSL_CERT_DIR` replace the system's trust store
/// (the bundled roots stay); one that names nothing usable would leave a
/// company authority untrusted without a word, so it is refused.
pub(super) fn check_trust_store_env(env: &impl Fn(&str) -> Option<String>) -> Result<(), Fatal> {
    let refuse = |name: &str, path: &str, why: String| {
        Fatal::Usage(format!(
            "{name} names {path}, which {why}; fix it or unset it (it replaces the system's \
             trust store)"
        ))
    };
    if let Some(file) = env("SSL_CERT_FILE").filter(|f| !f.trim().is_empty()) {
        match std::fs::metadata(&file) {
            Ok(metadata) if !metadata.is_file() => {
                return Err(refuse("SSL_CERT_FILE", &file, "is not a file".to_string()));
            }
            Ok(metadata) if metadata.len() > MAX_CA_FILE => {
                return Err(refuse("SSL_CERT_FILE", &file, "is too large".to_string()));
            }
            Ok(_) => {}
            Err(e) => {
                return Err(refuse(
                    "SSL_CERT_FILE",
                    &file,
                    format!("cannot be read ({e})"),
                ));
            }
        }
        // A system bundle may hold a certificate rustls cannot use (they are
        // skipped); one with no certificate at all is a mistake.
        let bytes = std::fs::read(&file)
            .map_err(|e| refuse("SSL_CERT_FILE", &file, format!("cannot be read ({e})")))?;
        if let Err(why) = holds_certificates(&bytes) {
            return Err(refuse("SSL_CERT_FILE", &file, why));
        }
    }
    if let Some(dirs) = env("SSL_CERT_DIR") {
        for dir in dirs.split(':').filter(|d| !d.trim().is_empty()) {
            if !Path::new(dir).is_dir() {
                return Err(refuse("SSL_CERT_DIR", dir, "is not a folder".to_string()));
            }
        }
    }
    Ok(())
}

/// The certificates of every `(file, where it was named)`, checked.
pub(super) fn read_ca_files(
    files: &[(PathBuf, &str)],
) -> Result<Vec<CertificateDer<'static>>, Fatal> {
    let mut roots = Vec::new();
    for (path, named_by) in files {
        let fail = |why: String| {
            Fatal::Usage(format!(
                "the certificate file {} ({named_by}) {why}",
                path.display()
            ))
        };
        let metadata = std::fs::metadata(path).map_err(|e| fail(format!("cannot be read: {e}")))?;
        if !metadata.is_file() {
            return Err(fail("is not a regular file".to_string()));
        }
        if metadata.len() > MAX_CA_FILE {
            return Err(fail(format!(
                "holds more than {} MiB; give the certificate of the authority to trust",
                MAX_CA_FILE >> 20
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot be read: {e}")))?;
        roots.extend(parse_ca_pem(&bytes).map_err(fail)?);
    }
    Ok(roots)
}

/// Whether a PEM file holds at least one certificate; if not, what it is.
pub(super) fn holds_certificates(bytes: &[u8]) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if CertificateDer::pem_slice_iter(bytes).any(|cert| cert.is_ok()) {
        return Ok(());
    }
    Err(not_a_certificate(bytes))
}

/// What a file that holds no PEM certificate holds instead.
pub(super) fn not_a_certificate(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if bytes.first() == Some(&0x30) {
        "is binary (DER), not PEM; convert it with: openssl x509 -inform der -in FILE -out FILE.pem"
            .to_string()
    } else if text.contains("PRIVATE KEY") {
        "holds a private key, not a certificate; give the authority's certificate (never a key)"
            .to_string()
    } else {
        "holds no certificate; a PEM certificate starts with -----BEGIN CERTIFICATE-----"
            .to_string()
    }
}

/// A PEM reading error as a person reads it.
pub(super) fn pem_problem(error: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as E;
    match error {
        E::MissingSectionEnd { .. } => {
            "holds a certificate cut short (no -----END CERTIFICATE----- line)".to_string()
        }
        E::IllegalSectionStart { .. } => "holds a broken -----BEGIN line".to_string(),
        E::Base64Decode(_) => {
            "holds a certificate whose text is damaged (not valid base64)".to_string()
        }
        other => format!("is not valid PEM ({other})"),
    }
}

/// The certificates of a PEM file, each checked to be usable as a root.
/// Says what the file is instead when it holds none (DER, a private key).
pub(super) fn parse_ca_pem(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    // Notepad saves a byte-order mark.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut certs = Vec::new();
    for (n, cert) in CertificateDer::pem_slice_iter(bytes).enumerate() {
        let cert = cert.map_err(|e| pem_problem(&e))?;
        rustls::RootCertStore::empty()
            .add(cert.clone())
            .map_err(|e| {
                format!(
                    "holds a certificate (number {}) that cannot be used as an authority ({e})",
                    n + 1
                )
            })?;
        certs.push(cert);
    }
    if !certs.is_empty() {
        return Ok(certs);
    }
    Err(not_a_certificate(bytes))
}

/// The proxy a run goes through, and where it was named.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyRoute {
    /// With any user name and password.
    url: Url,
    /// `--proxy`, or the environment variable.
    source: String,
}

impl ProxyRoute {
    /// The URL with its password; only to build the client.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Whether a password came on the command line (`--proxy`), where
    /// `ps` and the shell's history show it.
    pub(crate) fn password_on_command_line(&self) -> bool {
        self.source == "--proxy" && self.url.password().is_some()
    }

    /// The password, as written in the URL and decoded, to blank it out
    /// of any message that might echo it.
    pub fn secrets(&self) -> Vec<String> {
        let Some(password) = self.url.password() else {
            return Vec::new();
        };
        let mut secrets = vec![password.to_string()];
        if let Ok(decoded) = percent_encoding::percent_decode_str(password).decode_utf8()
            && decoded != password
        {
            secrets.push(decoded.into_owned());
        }
        secrets
    }
}

/// `http://user:***@proxy:3128 (from HTTPS_PROXY)`: never the password.
impl fmt::Display for ProxyRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password as ***; a user name alone as *** too: it may be the
        // password (user:pass with the user left out) or a key pasted
        // before the @.
        let mut shown = self.url.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("***"));
        } else if !shown.username().is_empty() {
            let _ = shown.set_username("***");
        }
        let shown = shown.as_str().trim_end_matches('/').to_string();
        write!(f, "{shown} (from {})", self.source)
    }
}

impl fmt::Debug for ProxyRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Reads an environment variable (a map in tests).
pub(super) type EnvReader<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// The proxy to the API: `--proxy`, else (when `env` is given) the first of
/// `HTTPS_PROXY`/`https_proxy` (`HTTP_PROXY`/`http_proxy` for an `http://`
/// base URL) and `ALL_PROXY`/`all_proxy` that is set and not empty, unless
/// `NO_PROXY`/`no_proxy` names the API's host. NO_PROXY is matched by the
/// same code reqwest uses (hyper-util's), so what is said is what is done.
pub(super) fn choose_proxy(
    flag: Option<&str>,
    base: &Url,
    env: Option<&EnvReader<'_>>,
) -> Result<Option<ProxyRoute>, Fatal> {
    if let Some(text) = flag {
        return parse_proxy(text, "--proxy").map(Some);
    }
    let Some(env) = env else {
        return Ok(None);
    };
    let first = |names: [&'static str; 2]| {
        names
            .into_iter()
            .find_map(|name| env(name).map(|value| (name, value)))
            .filter(|(_, value)| !value.trim().is_empty())
    };
    let specific = match base.scheme() {
        "https" => first(["HTTPS_PROXY", "https_proxy"]),
        _ => first(["HTTP_PROXY", "http_proxy"]),
    };
    let Some((name, value)) = specific.or_else(|| first(["ALL_PROXY", "all_proxy"])) else {
        return Ok(None);
    };
    let route = parse_proxy(&value, name)?;
    let no_proxy = first(["NO_PROXY", "no_proxy"])
        .map(|(_, value)| value)
        .unwrap_or_default();
    let entries: Vec<String> = no_proxy.split(',').map(no_proxy_entry).collect();
    // `*` is every host; hyper-util reads it for names only, not addresses.
    if entries.iter().any(|entry| entry == "*") {
        return Ok(None);
    }
    let matcher = hyper_util::client::proxy::matcher::Matcher::builder()
        .all(route.url.to_string())
        .no(entries.join(","))
        .build();
    let uri: hyper::Uri = base
        .as_str()
        .parse()
        .map_err(|e| Fatal::Usage(format!("the base URL {base} cannot be used ({e})")))?;
    Ok(matcher.intercept(&uri).map(|_| route))
}

/// A `NO_PROXY` entry as hyper-util's matcher reads it: without a port
/// (`localhost:8080`, `[::1]:8080`) or the brackets of an IPv6 address, and
/// `*.example.com` as `.example.com` (both mean its subdomains).
pub(super) fn no_proxy_entry(entry: &str) -> String {
    let entry = entry.trim();
    let entry = entry
        .strip_prefix("*.")
        .map_or(entry.to_string(), |rest| format!(".{rest}"));
    if let Some(rest) = entry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default().to_string();
    }
    match entry.rsplit_once(':') {
        // One colon and digits after it: a port. (An IPv6 address has more.)
        Some((host, port))
            if !host.contains(':')
                && !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            host.to_string()
        }
        _ => entry,
    }
}

/// A proxy URL as users write it: `HOST:PORT` means `http://HOST:PORT`.
pub(super) fn parse_proxy(text: &str, source: &str) -> Result<ProxyRoute, Fatal> {
    let text = text.trim();
    let with_scheme = if text.contains("://") {
        text.to_string()
    } else {
        format!("http://{text}")
    };
    // Shown without what may be a password, even when it does not parse:
    // `user:secret` with no `@host` reads as a host and a port that is not one.
    let shown = match with_scheme.split_once("://") {
        Some((scheme, rest)) if rest.contains('@') => {
            let host = &rest[rest.rfind('@').map_or(0, |at| at + 1)..];
            format!("{scheme}://***@{host}")
        }
        Some((scheme, rest)) => match rest.trim_end_matches('/').rsplit_once(':') {
            Some((host, port)) if !port.bytes().all(|b| b.is_ascii_digit()) => {
                format!("{scheme}://{host}:***")
            }
            _ => with_scheme.clone(),
        },
        None => with_scheme.clone(),
    };
    let bad = |why: &str| {
        Fatal::Usage(format!(
            "the proxy {shown} (from {source}) {why}; give one like http://proxy.example:3128"
        ))
    };
    // Text that does not parse is not shown at all: it may be a key pasted
    // in the wrong place (as the base URL's message does).
    let url = Url::parse(&with_scheme).map_err(|e| {
        Fatal::Usage(format!(
            "the proxy in {source} (not shown: not a URL, it may be a key pasted in the wrong \
             place) is not a URL ({e}); give one like http://proxy.example:3128"
        ))
    })?;
    match url.scheme() {
        "http" | "https" => {}
        scheme if scheme.starts_with("socks") => {
            return Err(bad("is a SOCKS proxy, which this tool does not support"));
        }
        _ => return Err(bad("must start with http:// or https://")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    Ok(ProxyRoute {
        url,
        source: source.to_string(),
    })
}

/// Whether `host` (a URL's host) is this machine.
pub(super) fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Plain `http://` sends the key and the users' data unencrypted: only to
/// this machine (a sandbox, a local proxy), unless the user says otherwise.
/// Through a proxy, plain `http://` reaches the proxy as it is, so the
/// proxy must be on this machine too.
pub(super) fn refuse_plain_http(
    url: &Url,
    proxy: Option<&ProxyRoute>,
    allowed: bool,
) -> Result<(), Fatal> {
    if url.scheme() != "http" || allowed {
        return Ok(());
    }
    if !is_loopback(url.host_str().unwrap_or_default()) {
        return Err(Fatal::Usage(format!(
            "the base URL {} is plain http:// to another machine: the API key and the users' \
             data would cross the network unencrypted; use https://, or pass \
             --allow-insecure-http if the network is trusted",
            url_shown(url.as_str())
        )));
    }
    if let Some(proxy) = proxy
        && proxy.url.scheme() == "http"
        && !is_loopback(proxy.url.host_str().unwrap_or_default())
    {
        return Err(Fatal::Usage(format!(
            "the base URL {} is plain http:// and would go through the proxy {proxy}, \
             another machine: the API key would cross the network unencrypted; set NO_PROXY to \
             the base URL's host, use https://, or pass --allow-insecure-http",
            url_shown(url.as_str())
        )));
    }
    Ok(())
}

/// A base URL as messages and `config` show it: its scheme, host and port
/// only. A user name or password (a key pasted as
/// `https://KEY@api.gcore.com`) is shown as `***`, a path, query or
/// fragment as `…` (a key pasted there), and text that is no URL with a
/// host (a key pasted as the URL) is not shown at all.
pub(crate) fn url_shown(text: &str) -> String {
    const NOT_SHOWN: &str =
        "(not shown: not a URL with a host, it may be a key pasted in the wrong place)";
    // An `@` anywhere: what stands before the last one may be a key, even
    // where a `/` in it makes the rest read as a path.
    let (userinfo, rest) = match text.trim().rsplit_once('@') {
        Some((before, host)) => match before.split_once("://") {
            Some((scheme, _)) => (true, format!("{scheme}://{host}")),
            None => (true, format!("http://{host}")),
        },
        None => (false, text.trim().to_string()),
    };
    // A scheme other than http or https may be a key pasted there.
    let scheme_shown = |scheme: &str| match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => scheme.to_string(),
        _ => "…".to_string(),
    };
    let unparsed = || match (userinfo, rest.split_once("://")) {
        (true, Some((scheme, _))) => format!("{}://***@…", scheme_shown(scheme)),
        _ => NOT_SHOWN.to_string(),
    };
    let Ok(url) = Url::parse(&rest) else {
        return unparsed();
    };
    let Some(host) = url.host_str().filter(|_| !url.cannot_be_a_base()) else {
        return unparsed();
    };
    let port = url
        .port()
        .map(|port| format!(":{port}"))
        .unwrap_or_default();
    let user = if userinfo || !url.username().is_empty() || url.password().is_some() {
        "***@"
    } else {
        ""
    };
    let more = url.path() != "/" || url.query().is_some() || url.fragment().is_some();
    format!(
        "{}://{user}{host}{port}{}",
        scheme_shown(url.scheme()),
        if more { "/…" } else { "" }
    )
}

/// `from` names where the URL came from (`--base-url`, `GCORE_BASE_URL`,
/// `profile NAME`, `default`), for the message that refuses it.
pub(super) fn parse_base_url(text: &str, from: &str) -> Result<Url, Fatal> {
    let shown = url_shown(text);
    let bad = |why: String| {
        Fatal::Usage(format!(
            "the base URL {shown:?} (from {from}) {why}; give one like {DEFAULT_BASE_URL}"
        ))
    };
    let url = Url::parse(text.trim()).map_err(|e| bad(format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must start with https:// or http://".to_string()));
    }
    if url.cannot_be_a_base() || url.host_str().is_none() {
        return Err(bad("has no host".to_string()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not hold a query or a fragment".to_string()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "must not hold a user name or password; the key goes in GCORE_API_KEY, a key file \
             or a profile"
                .to_string(),
        ));
    }
    Ok(url)
}
