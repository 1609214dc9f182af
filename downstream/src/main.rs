//! Builds rustls configurations the way an application does, with an ftps crate in the
//! same binary, and one of ours; prints the provider each uses. Exits non-zero (a panic)
//! if rustls cannot pick a provider on its own.

#![forbid(unsafe_code)]

fn main() {
    // The application's own configurations, with no provider installed by hand.
    let roots = rustls::RootCertStore::empty();
    let client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let server = rustls::ServerConfig::builder().with_no_client_auth();
    // And ours, beside them, for a client session.
    let options = ftps_tokio::ClientOptions::new("127.0.0.1", 21, "user", "password")
        .expect("options")
        .with_tls(Some(std::sync::Arc::new(client)));
    let ours = options
        .tls_config(ftps_tokio::proto::tls::SessionStore::new())
        .expect("our TLS configuration");
    let provider = ftps_tokio::proto::tls::provider();
    println!(
        "ok: rustls picked a provider on its own ({} cipher suites); ours uses one with {} \
         ({} ALPN protocol(s)); the server's builder too ({} ALPN)",
        rustls::crypto::CryptoProvider::get_default().map_or(0, |p| p.cipher_suites.len()),
        provider.cipher_suites.len(),
        ours.alpn_protocols.len(),
        server
            .with_cert_resolver(std::sync::Arc::new(NoCert))
            .alpn_protocols
            .len(),
    );
}

/// A certificate resolver with nothing to offer (the server's configuration is built, not
/// used).
#[derive(Debug)]
struct NoCert;

impl rustls::server::ResolvesServerCert for NoCert {
    fn resolve(
        &self,
        _: rustls::server::ClientHello<'_>,
    ) -> Option<std::sync::Arc<rustls::sign::CertifiedKey>> {
        None
    }
}
