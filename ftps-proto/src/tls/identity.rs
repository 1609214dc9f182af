//! A client certificate: TLS client authentication (RFC 4217 §9, where a server may also
//! take the certificate as the user's credentials).

use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use std::sync::Arc;

/// A certificate chain and its private key, presented to servers that ask for one, on the
/// control connection and on every data connection that does a full handshake.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    key: Arc<CertifiedKey>,
}

/// Why a [`ClientIdentity`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityError(String);

impl std::fmt::Display for IdentityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "client certificate: {}", self.0)
    }
}

impl std::error::Error for IdentityError {}

impl ClientIdentity {
    /// From PEM data: the chain (end-entity certificate first) and its private key (PKCS#8,
    /// PKCS#1 or SEC1). The key must match the certificate.
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<ClientIdentity, IdentityError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| IdentityError(format!("certificate PEM: {e}")))?;
        if chain.is_empty() {
            return Err(IdentityError("no certificate in the PEM data".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| IdentityError(format!("private key PEM: {e}")))?;
        let provider = super::config::provider();
        let key = CertifiedKey::from_der(chain, key, &provider)
            .map_err(|e| IdentityError(e.to_string()))?;
        Ok(ClientIdentity { key: Arc::new(key) })
    }

    /// Makes `config` present this identity.
    pub fn apply(&self, config: &mut rustls::ClientConfig) {
        config.client_auth_cert_resolver = Arc::new(self.clone());
    }
}

impl ResolvesClientCert for ClientIdentity {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.key.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
