//! HTTPS for the sandbox: a throwaway certificate authority made at start,
//! and a server certificate it signs for `localhost`, `127.0.0.1` and `::1`.
//! The authority's private key lives only in this process, so its
//! certificate (the one a client is told to trust) can vouch for nothing
//! once the sandbox stops.

use std::io;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// What a TLS sandbox serves with, and what its clients must trust.
pub(crate) struct SandboxTls {
    pub(crate) acceptor: TlsAcceptor,
    /// The authority's certificate, PEM.
    pub(crate) ca_pem: String,
}

/// The names the server certificate is valid for: a sandbox listens on loopback.
const NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl SandboxTls {
    pub(crate) fn generate() -> io::Result<SandboxTls> {
        let failed = |e: rcgen::Error| io::Error::other(format!("cannot make a certificate: {e}"));
        let ca_key = KeyPair::generate().map_err(failed)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.distinguished_name
            .push(DnType::CommonName, "gcore-iam-bulk sandbox CA (throwaway)");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).map_err(failed)?;
        let issuer = Issuer::new(ca, ca_key);

        let server_key = KeyPair::generate().map_err(failed)?;
        let mut server =
            CertificateParams::new(NAMES.map(str::to_string).to_vec()).map_err(failed)?;
        server
            .distinguished_name
            .push(DnType::CommonName, "gcore-iam-bulk sandbox");
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server.signed_by(&server_key, &issuer).map_err(failed)?;

        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(vec![server_cert.der().clone()], key)
            .map_err(io::Error::other)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(SandboxTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            ca_pem: ca_cert.pem(),
        })
    }
}
