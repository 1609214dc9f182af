//! How the client decides to trust a server's certificate: [`ServerTrust`].
//!
//! Three ways, each still checking the certificate's validity dates, that it names the
//! host, and the handshake's signature:
//!
//! - **A chain to a trust anchor** (platform roots or a private CA), as webpki checks it.
//! - **A certificate the user gave, byte for byte.** FTPS servers are commonly set up with
//!   a self-signed certificate made by `openssl req -x509`, whose defaults mark it
//!   `basicConstraints CA:TRUE`; webpki refuses a CA certificate as the end entity
//!   (`CaUsedAsEndEntity`) even when it is the trust anchor itself. When the server's
//!   end-entity certificate is exactly one the user gave as trusted, that objection does
//!   not apply: the user vouched for this very certificate, not for what it may sign.
//! - **A pin**: the SHA-256 fingerprint of the certificate, checked out of band (as
//!   WinSCP's `-certificate`, or `openssl x509 -noout -fingerprint -sha256`). With pins,
//!   the certificate must match one of them and no chain is consulted.
//!
//! Every refusal names the server certificate's fingerprint, so a user can compare it
//! out of band and pin it.

use super::config::TlsConfigError;
use rustls::CertificateError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use std::fmt;
use std::sync::Arc;

/// The SHA-256 fingerprint of a certificate (of its whole DER encoding, as
/// `openssl x509 -noout -fingerprint -sha256` prints it).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of `cert`, hashed with `provider`'s SHA-256 (an error if it has
    /// none).
    pub fn of(
        provider: &CryptoProvider,
        cert: &CertificateDer<'_>,
    ) -> Result<Self, TlsConfigError> {
        let sha256 = provider
            .cipher_suites
            .iter()
            .map(|suite| match suite {
                rustls::SupportedCipherSuite::Tls12(s) => s.common.hash_provider,
                rustls::SupportedCipherSuite::Tls13(s) => s.common.hash_provider,
            })
            .find(|h| h.algorithm() == rustls::crypto::hash::HashAlgorithm::SHA256)
            .ok_or_else(|| TlsConfigError("the crypto provider has no SHA-256".into()))?;
        let digest = sha256.hash(cert.as_ref());
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        Ok(Fingerprint(bytes))
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// `sha256:` and the bytes in upper-case hex separated by colons, as OpenSSL prints them.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Parses 64 hex digits, in either case, with or without colons between the bytes, after
/// an optional `sha256:` (or `SHA256:`) prefix, or OpenSSL's `sha256 Fingerprint=`.
impl std::str::FromStr for Fingerprint {
    type Err = TlsConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            TlsConfigError(format!(
                "{s:?} is not a SHA-256 fingerprint (sha256: then 64 hex digits, colons allowed)"
            ))
        };
        // Also as OpenSSL prints it: `sha256 Fingerprint=AB:CD:...`.
        let s = s.trim();
        let hex = s
            .strip_prefix("sha256:")
            .or_else(|| s.strip_prefix("SHA256:"))
            .or_else(|| s.strip_prefix("sha256 Fingerprint="))
            .or_else(|| s.strip_prefix("SHA256 Fingerprint="))
            .unwrap_or(s);
        let digits: Vec<u8> = hex.bytes().filter(|&b| b != b':').collect();
        if digits.len() != 64 {
            return Err(bad());
        }
        let mut bytes = [0u8; 32];
        for (out, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
            let text = std::str::from_utf8(pair).map_err(|_| bad())?;
            *out = u8::from_str_radix(text, 16).map_err(|_| bad())?;
        }
        Ok(Fingerprint(bytes))
    }
}

/// What the client trusts a server's certificate by: a chain to trust anchors; a
/// certificate the user gave, byte for byte, even one marked CA:TRUE (as `openssl req
/// -x509` makes them); or pins (SHA-256 fingerprints; no chain consulted). Dates, name
/// and the handshake signature are checked in every case, and a refusal names the
/// certificate's fingerprint.
#[derive(Debug, Clone)]
pub struct ServerTrust {
    roots: Arc<rustls::RootCertStore>,
    /// Certificates the user gave: each trusted as itself, byte for byte.
    given: Vec<CertificateDer<'static>>,
    pins: Vec<Fingerprint>,
    /// A verifier the chain check is left to (the platform's), instead of `roots`.
    delegate: Option<Arc<dyn ServerCertVerifier>>,
}

impl ServerTrust {
    /// Certificates `verifier` accepts: the operating system's verifier, say
    /// (`rustls-platform-verifier`: its roots, and revocation where the OS checks it). A
    /// refusal still names the certificate's fingerprint.
    pub fn delegated(verifier: Arc<dyn ServerCertVerifier>) -> Self {
        ServerTrust {
            roots: Arc::new(rustls::RootCertStore::empty()),
            given: Vec::new(),
            pins: Vec::new(),
            delegate: Some(verifier),
        }
    }

    /// Certificates that chain to `roots`.
    pub fn roots(roots: rustls::RootCertStore) -> Self {
        ServerTrust {
            roots: Arc::new(roots),
            given: Vec::new(),
            pins: Vec::new(),
            delegate: None,
        }
    }

    /// The certificates of PEM data (a private CA, or the server's own self-signed
    /// certificate): each is a trust anchor, and a server presenting exactly one of them
    /// is trusted even if it is marked as a CA.
    pub fn from_pem(pem: &[u8]) -> Result<Self, TlsConfigError> {
        let given: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| TlsConfigError(format!("certificate PEM: {e}")))?;
        if given.is_empty() {
            return Err(TlsConfigError("no certificate in the PEM data".into()));
        }
        let mut roots = rustls::RootCertStore::empty();
        for cert in &given {
            roots
                .add(cert.clone())
                .map_err(|e| TlsConfigError(format!("certificate: {e}")))?;
        }
        Ok(ServerTrust {
            roots: Arc::new(roots),
            given,
            pins: Vec::new(),
            delegate: None,
        })
    }

    /// Only certificates with one of these fingerprints (no chain is consulted).
    pub fn pinned(pins: Vec<Fingerprint>) -> Self {
        ServerTrust {
            roots: Arc::new(rustls::RootCertStore::empty()),
            given: Vec::new(),
            pins,
            delegate: None,
        }
    }

    /// The verifier rustls calls, hashing and checking signatures with `provider`.
    pub fn verifier(self, provider: Arc<CryptoProvider>) -> Arc<dyn ServerCertVerifier> {
        Arc::new(Verifier {
            trust: self,
            provider,
        })
    }
}

/// [`ServerTrust`] as rustls' verifier.
#[derive(Debug)]
struct Verifier {
    trust: ServerTrust,
    provider: Arc<CryptoProvider>,
}

impl Verifier {
    fn algorithms(&self) -> &[&'static dyn rustls::pki_types::SignatureVerificationAlgorithm] {
        self.provider.signature_verification_algorithms.all
    }

    /// The chain check, with the exception for a certificate the user gave: whether it
    /// was that certificate itself that was trusted.
    fn chained(
        &self,
        cert: &ParsedCertificate<'_>,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<Trusted, rustls::Error> {
        match rustls::client::verify_server_cert_signed_by_trust_anchor(
            cert,
            &self.trust.roots,
            intermediates,
            now,
            self.algorithms(),
        ) {
            Ok(()) => Ok(Trusted::Chain),
            // webpki checks an end entity's own properties (validity dates first, then
            // basic constraints) before it looks for an issuer, so these refusals mean the
            // dates passed (the tests hold webpki to that order). A self-signed CA:TRUE
            // certificate stops at `CaUsedAsEndEntity`; a certificate from a CA the user
            // did not give stops at `UnknownIssuer`.
            Err(e) if self.given(end_entity) && past_own_checks(&e) => Ok(Trusted::Itself),
            Err(e) => Err(e),
        }
    }

    fn given(&self, end_entity: &CertificateDer<'_>) -> bool {
        self.trust
            .given
            .iter()
            .any(|c| c.as_ref() == end_entity.as_ref())
    }

    /// A pinned certificate: its fingerprint, then its own checks (validity dates first).
    fn pinned(
        &self,
        cert: &ParsedCertificate<'_>,
        fingerprint: Option<Fingerprint>,
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        if !fingerprint.is_some_and(|f| self.trust.pins.contains(&f)) {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(Message(
                    "its fingerprint is not one of the pinned ones".into(),
                ))),
            )));
        }
        // webpki checks the end entity's own properties (its dates first, then its basic
        // constraints and key purposes) before it looks for an issuer. Against an anchor no
        // issuer can match, a certificate that passes them ends at `UnknownIssuer`; a
        // CA:TRUE one stops at `CaUsedAsEndEntity`, past its dates. (The tests hold webpki
        // to this order.)
        let nobody = rustls::RootCertStore {
            roots: vec![rustls::pki_types::TrustAnchor {
                subject: rustls::pki_types::Der::from_slice(NO_ISSUER),
                subject_public_key_info: rustls::pki_types::Der::from_slice(&[]),
                name_constraints: None,
            }],
        };
        match rustls::client::verify_server_cert_signed_by_trust_anchor(
            cert,
            &nobody,
            &[],
            now,
            self.algorithms(),
        ) {
            Err(e) if past_own_checks(&e) => Ok(()),
            Err(e) => Err(e),
            Ok(()) => Err(rustls::Error::General(
                "a certificate chained to an anchor that matches no issuer".into(),
            )),
        }
    }

    /// The name check. A certificate trusted as itself (given or pinned) that has no
    /// subjectAltName at all may name the host in its subject's common name instead, as
    /// self-signed certificates made with `openssl req -x509 -subj /CN=host` do (the
    /// legacy rule of RFC 6125 §6.4.4, accepted only for a certificate the user vouched
    /// for; a chain-trusted one must carry a subjectAltName, as webpki requires).
    fn named(
        cert: &ParsedCertificate<'_>,
        end_entity: &CertificateDer<'_>,
        server_name: &ServerName<'_>,
        trusted: Trusted,
    ) -> Result<(), rustls::Error> {
        match rustls::client::verify_server_name(cert, server_name) {
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                presented,
                ..
            })) if trusted == Trusted::Itself
                && presented.is_empty()
                && common_name_is(end_entity, server_name) =>
            {
                Ok(())
            }
            other => other,
        }
    }
}

/// How a certificate came to be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trusted {
    /// By a chain to a trust anchor.
    Chain,
    /// As itself: a certificate the user gave, or a pinned one.
    Itself,
}

/// Whether webpki's refusal came after the end entity's own checks (its dates): it is a
/// CA certificate used as the end entity, or its issuer is not trusted.
fn past_own_checks(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
    ) || ca_used_as_end_entity(e)
}

/// Whether the certificate's subject common name is `server_name` (DNS names compared
/// without regard to ASCII case; no wildcards).
fn common_name_is(end_entity: &CertificateDer<'_>, server_name: &ServerName<'_>) -> bool {
    let Ok(cert) = webpki::EndEntityCert::try_from(end_entity) else {
        return false;
    };
    let Some(cn) = common_name(cert.subject()) else {
        return false;
    };
    match server_name {
        ServerName::DnsName(name) => cn.eq_ignore_ascii_case(name.as_ref()),
        ServerName::IpAddress(ip) => cn.parse::<std::net::IpAddr>().ok() == Some((*ip).into()),
        _ => false,
    }
}

/// The common name (OID 2.5.4.3) in a DER `RDNSequence`'s contents, if it is a string
/// type that holds ASCII or UTF-8 (RFC 5280 §4.1.2.4).
fn common_name(mut subject: &[u8]) -> Option<&str> {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    while !subject.is_empty() {
        let (set, rest) = der(subject, 0x31)?;
        subject = rest;
        let mut set = set;
        while !set.is_empty() {
            let (attribute, rest) = der(set, 0x30)?;
            set = rest;
            let (oid, value) = der(attribute, 0x06)?;
            if oid == CN {
                let (&tag, _) = value.split_first()?;
                // UTF8String, PrintableString, IA5String.
                if matches!(tag, 0x0c | 0x13 | 0x16) {
                    let (text, _) = der(value, tag)?;
                    return std::str::from_utf8(text).ok();
                }
                return None;
            }
        }
    }
    None
}

/// One DER element with tag `tag` at the start of `input`: its contents and what follows.
fn der(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 3 || rest.len() < count {
            return None;
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b))
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// The subject of an anchor that no certificate's issuer matches: not even DER of a name.
const NO_ISSUER: &[u8] = b"ftps: the issuer of no certificate";

/// Whether webpki refused a CA certificate used as the end entity.
fn ca_used_as_end_entity(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(CertificateError::Other(other))
            if matches!(
                other.0.downcast_ref::<webpki::Error>(),
                Some(webpki::Error::CaUsedAsEndEntity)
            )
    )
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fingerprint = Fingerprint::of(&self.provider, end_entity).ok();
        let delegated = match (&self.trust.delegate, self.trust.pins.is_empty()) {
            (Some(delegate), true) => Some(
                delegate
                    .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
                    .map(drop),
            ),
            _ => None,
        };
        let checked = delegated.unwrap_or_else(|| {
            ParsedCertificate::try_from(end_entity).and_then(|cert| {
                let trusted = if self.trust.pins.is_empty() {
                    self.chained(&cert, end_entity, intermediates, now)?
                } else {
                    self.pinned(&cert, fingerprint, now)?;
                    Trusted::Itself
                };
                Self::named(&cert, end_entity, server_name, trusted)
            })
        });
        match checked {
            Ok(()) => Ok(ServerCertVerified::assertion()),
            Err(e) => Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(Untrusted {
                    reason: e,
                    fingerprint,
                })),
            ))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A server certificate refused, with its fingerprint. rustls shows the errors of
/// certificate checks with `Debug`, so `Debug` reads as a sentence too.
struct Untrusted {
    reason: rustls::Error,
    fingerprint: Option<Fingerprint>,
}

impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = match &self.reason {
            e if ca_used_as_end_entity(e) => {
                "it is a self-signed certificate (marked as a CA) that is not one of the trusted ones"
                    .to_owned()
            }
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
                "it is not signed by a trusted authority, nor one of the trusted certificates"
                    .to_owned()
            }
            rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
                other.0.to_string()
            }
            rustls::Error::InvalidCertificate(e) => e.to_string(),
            other => other.to_string(),
        };
        write!(f, "the server's certificate is not trusted: {reason}")?;
        if let Some(fingerprint) = &self.fingerprint {
            write!(f, "; its fingerprint is {fingerprint}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Untrusted {}

/// A reason in words.
struct Message(String);

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_in_every_spelling_and_print_as_openssl_does() {
        let hex = "ab".repeat(32);
        let plain: Fingerprint = hex.parse().unwrap_or_else(|e| panic!("{e}"));
        let colons = (0..32).map(|_| "AB").collect::<Vec<_>>().join(":");
        for spelling in [
            format!("sha256 Fingerprint={colons}"),
            format!("sha256:{hex}"),
            format!("SHA256:{colons}"),
            colons.clone(),
        ] {
            assert_eq!(spelling.parse::<Fingerprint>().ok(), Some(plain));
        }
        assert_eq!(plain.to_string(), format!("sha256:{colons}"));
        for bad in ["", "sha256:", "ab", &"zz".repeat(32), &"ab".repeat(33)] {
            assert!(bad.parse::<Fingerprint>().is_err(), "{bad}");
        }
    }
}
