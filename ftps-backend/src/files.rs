//! TLS material from the host: PEM files and the platform's root certificates.

use ftps_proto::tls::{self, TlsConfigError};
use std::path::Path;

fn read(path: &Path) -> Result<Vec<u8>, TlsConfigError> {
    std::fs::read(path).map_err(|e| TlsConfigError(format!("{}: {e}", path.display())))
}

/// A server configuration from a PEM certificate chain file and a PEM key file.
pub fn server_config_from_pem_files(
    cert: &Path,
    key: &Path,
) -> Result<rustls::ServerConfig, TlsConfigError> {
    tls::server_config_from_pem(&read(cert)?, &read(key)?)
}

/// A client configuration trusting the certificates of a PEM file: a private CA, or the
/// server's own self-signed certificate, even one marked CA:TRUE as `openssl req -x509`
/// makes them (see [`tls::ServerTrust::from_pem`]).
pub fn client_config_from_pem_file(path: &Path) -> Result<rustls::ClientConfig, TlsConfigError> {
    tls::client_config_from_pem(&read(path)?, tls::BOTH)
}

/// A client identity from a PEM chain file and a PEM key file.
pub fn identity_from_pem_files(
    chain: &Path,
    key: &Path,
) -> Result<tls::ClientIdentity, TlsConfigError> {
    tls::ClientIdentity::from_pem(&read(chain)?, &read(key)?)
        .map_err(|e| TlsConfigError(e.to_string()))
}

/// Where a client's default trust comes from (see [`platform_trust`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrustSource {
    /// The operating system's verifier and roots (`rustls-platform-verifier`).
    Platform,
    /// The Mozilla roots compiled into ftps (`webpki-roots`): the system had none (a
    /// minimal container image, say).
    Bundled,
}

/// The default trust of a client: the operating system's verifier
/// (`rustls-platform-verifier`: the system's roots, and revocation where the OS checks
/// it: Windows, macOS), or, where the system has no roots at all, the Mozilla roots
/// compiled in (`webpki-roots`), said on the log. Dates, the name and, on refusal, the
/// certificate's fingerprint as with every [`tls::ServerTrust`].
pub fn platform_trust() -> (tls::ServerTrust, TrustSource) {
    match rustls_platform_verifier::Verifier::new(tls::provider()) {
        Ok(verifier) => (
            tls::ServerTrust::delegated(std::sync::Arc::new(verifier)),
            TrustSource::Platform,
        ),
        Err(e) => {
            tracing::warn!(
                "no platform trust ({e}): verifying against the Mozilla roots compiled in"
            );
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            (tls::ServerTrust::roots(roots), TrustSource::Bundled)
        }
    }
}

/// A client configuration with the [`platform_trust`].
pub fn platform_client_config() -> Result<rustls::ClientConfig, TlsConfigError> {
    tls::client_config_with_trust(platform_trust().0, tls::BOTH)
}

/// The platform's root certificates (an error if there are none).
pub fn platform_roots() -> Result<rustls::RootCertStore, TlsConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(TlsConfigError("no platform root certificates found".into()));
    }
    Ok(roots)
}
