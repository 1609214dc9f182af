//! rustls configurations for FTPS, client and server: TLS 1.2 and 1.3 only, the crypto
//! provider of [`provider`], ALPN `ftp` (RFC 9110's registry entry for FTP, which ALPACA-style
//! cross-protocol attacks cannot answer).

use super::trust::ServerTrust;
use crate::boundary::ALPN_FTP;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::sync::Arc;

/// Why a TLS configuration could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfigError(pub String);

impl std::fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsConfigError {}

fn err(e: impl std::fmt::Display) -> TlsConfigError {
    TlsConfigError(e.to_string())
}

/// The crypto provider every configuration here uses: the process default, if the
/// application installed one (`CryptoProvider::install_default`: a FIPS build of
/// aws-lc-rs, say), else the one this crate was built with — aws-lc-rs with the
/// `aws-lc-rs` feature (the runtime crates' default, as rustls' own), ring with `ring`.
///
/// # Panics
///
/// Built with neither feature and no process default installed: there is no provider to
/// use (rustls' own `ClientConfig::builder()` panics the same way).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    match rustls::crypto::CryptoProvider::get_default() {
        Some(p) => p.clone(),
        None => built_in(),
    }
}

/// The provider of the client configurations built here: the process default as the
/// application installed it (its suites and their order untouched), else the built-in
/// provider with [`aes_128_gcm_first`].
fn client_provider() -> Arc<rustls::crypto::CryptoProvider> {
    match rustls::crypto::CryptoProvider::get_default() {
        Some(p) => p.clone(),
        None => Arc::new(aes_128_gcm_first(built_in().as_ref().clone())),
    }
}

/// `provider` with its AES-128-GCM suites (TLS 1.3's `TLS_AES_128_GCM_SHA256`, TLS 1.2's
/// ECDHE ones) moved first, the others after them in their order; no suite added or
/// removed.
///
/// rustls' providers list AES-256-GCM first. For bulk data AES-128-GCM is the better
/// default: it is the suite every TLS 1.3 implementation must have (RFC 8446 §9.1), its
/// 128-bit strength matches the X25519 key exchange that protects its key (RFC 7748 §1),
/// it is what browsers and Go offer first, and with AES-NI it encrypts 1.25-1.3× as fast
/// here (`openssl speed -evp`: 2.7 against 2.1 GB/s on one core). A client's order is
/// what a TLS 1.3 server follows unless it imposes its own (rustls, OpenSSL by default).
pub fn aes_128_gcm_first(
    mut provider: rustls::crypto::CryptoProvider,
) -> rustls::crypto::CryptoProvider {
    use rustls::CipherSuite as C;
    provider.cipher_suites.sort_by_key(|suite| {
        !matches!(
            suite.suite(),
            C::TLS13_AES_128_GCM_SHA256
                | C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    });
    provider
}

#[cfg(feature = "aws-lc-rs")]
fn built_in() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
fn built_in() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(not(any(feature = "aws-lc-rs", feature = "ring")))]
fn built_in() -> Arc<rustls::crypto::CryptoProvider> {
    panic!(
        "ftps-proto has no crypto provider: enable its `aws-lc-rs` or `ring` feature, or \
         install a process default with rustls::crypto::CryptoProvider::install_default"
    )
}

/// A ticketer for TLS 1.3 session tickets (and TLS 1.2's), from the provider this crate
/// was built with; `None` built with neither (the configuration's own is kept).
pub(crate) fn ticketer() -> Result<Option<Arc<dyn rustls::server::ProducesTickets>>, rustls::Error>
{
    #[cfg(feature = "aws-lc-rs")]
    return rustls::crypto::aws_lc_rs::Ticketer::new().map(Some);
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    return rustls::crypto::ring::Ticketer::new().map(Some);
    #[cfg(not(any(feature = "aws-lc-rs", feature = "ring")))]
    return Ok(None);
}

/// TLS 1.3 and 1.2, the versions FTPS uses here.
pub const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A server configuration from PEM data (the chain, end-entity first, and its key).
/// A client offering ALPN without `ftp` fails the handshake.
pub fn server_config_from_pem(
    cert_chain_pem: &[u8],
    key_pem: &[u8],
) -> Result<rustls::ServerConfig, TlsConfigError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsConfigError(format!("certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(TlsConfigError("no certificate in the PEM data".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| TlsConfigError(format!("private key PEM: {e}")))?;
    server_config(certs, key)
}

/// A server certificate that can be replaced while the server runs (a renewal): new
/// handshakes present the new one, connections under way keep theirs.
#[derive(Debug)]
pub struct ReloadableCert(std::sync::RwLock<Arc<rustls::sign::CertifiedKey>>);

impl ReloadableCert {
    /// The certificate of PEM data (the chain, end-entity first) and its key; the key must
    /// match the certificate.
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsConfigError> {
        Ok(ReloadableCert(std::sync::RwLock::new(Arc::new(
            certified_key(cert_chain_pem, key_pem)?,
        ))))
    }

    /// Replaces the certificate; on an error the one in force stays.
    pub fn reload_pem(&self, cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<(), TlsConfigError> {
        let new = Arc::new(certified_key(cert_chain_pem, key_pem)?);
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = new;
        Ok(())
    }
}

impl rustls::server::ResolvesServerCert for ReloadableCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(
            self.0
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }
}

/// A chain and key from PEM, checked to belong together.
fn certified_key(
    cert_chain_pem: &[u8],
    key_pem: &[u8],
) -> Result<rustls::sign::CertifiedKey, TlsConfigError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsConfigError(format!("certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(TlsConfigError("no certificate in the PEM data".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| TlsConfigError(format!("private key PEM: {e}")))?;
    rustls::sign::CertifiedKey::from_der(certs, key, &provider()).map_err(err)
}

/// A server configuration whose certificate is [`ReloadableCert`]'s (or any resolver's),
/// otherwise as [`server_config`].
pub fn server_config_with_resolver(
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
) -> Result<rustls::ServerConfig, TlsConfigError> {
    let (provider, server_order) = server_provider();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(BOTH)
        .map_err(err)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![ALPN_FTP.to_vec()];
    config.ignore_client_order = server_order;
    Ok(config)
}

/// A server configuration from DER certificates and key.
///
/// Without a process default provider, the server picks the cipher suite in its own
/// order, AES-128-GCM first (see [`aes_128_gcm_first`]); `ignore_client_order = false` on
/// the result follows the client's order instead.
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<rustls::ServerConfig, TlsConfigError> {
    let (provider, server_order) = server_provider();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(BOTH)
        .map_err(err)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(err)?;
    config.alpn_protocols = vec![ALPN_FTP.to_vec()];
    config.ignore_client_order = server_order;
    Ok(config)
}

/// The provider of the server configurations built here, and whether the server should
/// pick suites in its own order (`ServerConfig::ignore_client_order`).
///
/// The process default as the application installed it, following the client's order
/// (rustls' default: the application chose the suites); else the built-in provider with
/// [`aes_128_gcm_first`], in the server's order. A TLS 1.3 server chooses the suite
/// (RFC 8446 §4.1.1: "the server [...] selects a cipher suite"); OpenSSL-based clients
/// (curl, lftp, Python, vsftpd's and Pure-FTPd's peers) offer AES-256-GCM first, and
/// choosing AES-128-GCM when they also offer it costs the server less per byte sent: the
/// same strength as the X25519 exchange behind its key (see [`aes_128_gcm_first`]),
/// and, measured here (the tokio server serving curl, 1 GiB PROT P transfers, medians of 8
/// alternating runs), 0.49 server CPU s/GiB instead of 0.54 for a download, 1.11 instead
/// of 1.35 for an upload. A client offering only AES-256-GCM or
/// ChaCha20 still gets it. The data connections follow the control connection's
/// configuration, so both pick the same suite and the data connections can resume the
/// control connection's session (rustls resumes only under the same suite).
fn server_provider() -> (Arc<rustls::crypto::CryptoProvider>, bool) {
    match rustls::crypto::CryptoProvider::get_default() {
        Some(p) => (p.clone(), false),
        None => (
            Arc::new(aes_128_gcm_first(built_in().as_ref().clone())),
            true,
        ),
    }
}

/// A client configuration trusting `roots` (TLS 1.2 and 1.3, session resumption on,
/// ALPN `ftp`).
pub fn client_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, TlsConfigError> {
    client_config_with_versions(roots, BOTH)
}

/// [`client_config`] limited to the given TLS versions.
pub fn client_config_with_versions(
    roots: rustls::RootCertStore,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<rustls::ClientConfig, TlsConfigError> {
    client_config_with_trust(ServerTrust::roots(roots), versions)
}

/// A client configuration trusting the certificates of PEM data (a private CA, or the
/// server's own self-signed certificate, even one marked CA:TRUE as `openssl req -x509`
/// makes them; see [`ServerTrust::from_pem`]), limited to the given TLS versions.
pub fn client_config_from_pem(
    pem: &[u8],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<rustls::ClientConfig, TlsConfigError> {
    client_config_with_trust(ServerTrust::from_pem(pem)?, versions)
}

/// A client configuration that trusts server certificates as `trust` says, limited to
/// the given TLS versions (TLS 1.2 and 1.3: [`BOTH`]).
pub fn client_config_with_trust(
    trust: ServerTrust,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<rustls::ClientConfig, TlsConfigError> {
    let provider = client_provider();
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(err)?
        .dangerous()
        .with_custom_certificate_verifier(trust.verifier(provider))
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_FTP.to_vec()];
    Ok(config)
}

/// The certificates of PEM data as trust roots (a private CA or a self-signed server
/// certificate).
pub fn roots_from_pem(pem: &[u8]) -> Result<rustls::RootCertStore, TlsConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| TlsConfigError(format!("certificate PEM: {e}")))?;
        roots.add(cert).map_err(err)?;
    }
    if roots.is_empty() {
        return Err(TlsConfigError("no certificate in the PEM data".into()));
    }
    Ok(roots)
}

/// A client configuration that does **not** verify the server's certificate: anyone on the
/// path can impersonate the server. For testing only; say so loudly to the user.
pub fn insecure_client_config() -> Result<rustls::ClientConfig, TlsConfigError> {
    insecure_client_config_with_versions(BOTH)
}

/// [`insecure_client_config`] limited to the given TLS versions.
pub fn insecure_client_config_with_versions(
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<rustls::ClientConfig, TlsConfigError> {
    let provider = client_provider();
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(err)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_FTP.to_vec()];
    Ok(config)
}

/// Accepts any server certificate (the handshake's signatures are still checked).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(any(feature = "aws-lc-rs", feature = "ring"))]
    fn aes_128_gcm_comes_first_and_no_suite_is_added_or_lost() {
        let original = built_in();
        let reordered = aes_128_gcm_first(original.as_ref().clone());
        let names = |p: &rustls::crypto::CryptoProvider| {
            p.cipher_suites
                .iter()
                .map(|s| s.suite())
                .collect::<Vec<_>>()
        };
        let (before, after) = (names(&original), names(&reordered));
        assert_eq!(
            after.first(),
            Some(&rustls::CipherSuite::TLS13_AES_128_GCM_SHA256)
        );
        assert_ne!(before, after, "the built-in order puts AES-256 first");
        let (mut b, mut a) = (before.clone(), after.clone());
        b.sort_by_key(|s| u16::from(*s));
        a.sort_by_key(|s| u16::from(*s));
        assert_eq!(a, b);
        // The configurations built here use it (no process default in this test binary).
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let config =
                client_config(rustls::RootCertStore::empty()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(names(config.crypto_provider()), after);
            // The server's too, and it picks in its own order.
            let (server, own_order) = server_provider();
            assert_eq!(names(&server), after);
            assert!(own_order);
        }
    }
}
