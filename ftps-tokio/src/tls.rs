//! rustls glue: loading certificates, the per-session configuration that binds data
//! connections to their control session, and what a handshake did.

use ftps_proto::server::{ALPN_FTP, TlsInfo, TlsVersion};
use rustls::server::{ServerConnection, ServerSessionMemoryCache};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// Why a TLS configuration could not be built.
#[derive(Debug)]
pub struct TlsConfigError(pub(crate) String);

impl std::fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsConfigError {}

/// A rustls server configuration for FTPS from PEM data: TLS 1.2 and 1.3 only, ALPN
/// `ftp` (a client offering ALPN without it fails the handshake), ring as the crypto
/// provider.
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

/// [`server_config_from_pem`] reading the two files.
pub fn server_config_from_pem_files(
    cert: &Path,
    key: &Path,
) -> Result<rustls::ServerConfig, TlsConfigError> {
    let read =
        |p: &Path| std::fs::read(p).map_err(|e| TlsConfigError(format!("{}: {e}", p.display())));
    server_config_from_pem(&read(cert)?, &read(key)?)
}

/// A rustls server configuration for FTPS from DER certificates and key.
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<rustls::ServerConfig, TlsConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsConfigError(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsConfigError(e.to_string()))?;
    config.alpn_protocols = vec![ALPN_FTP.to_vec()];
    Ok(config)
}

/// The configurations for one control connection and for its data connections.
///
/// All share a session cache and a ticket key made for this control connection alone, so
/// a data connection can resume only a session of this control connection (TLS 1.2 session
/// IDs or tickets, TLS 1.3 tickets).
///
/// TLS 1.3 clients that use each ticket once (OpenSSL, rustls) need a fresh ticket from
/// every data connection for the next one, so data connections issue one, except uploads
/// from clients that never read: curl writes its upload, sends close_notify and closes
/// without reading, and closing a socket with unread bytes (the ticket) makes the kernel
/// send a reset that throws away whatever of the upload is still in curl's send buffer
/// (measured: 114,688 of 2,000,000 bytes arrived). An upload gets a ticket only if its
/// client offered ALPN `ftp`, the sign of a client that reads to the end (ours does).
pub(crate) struct SessionTls {
    pub(crate) control: Arc<rustls::ServerConfig>,
    pub(crate) data: DataTls,
}

/// The two data-connection configurations; see [`SessionTls`].
#[derive(Clone)]
pub(crate) struct DataTls {
    ticketing: Arc<rustls::ServerConfig>,
    quiet: Arc<rustls::ServerConfig>,
}

pub(crate) fn per_session(base: &rustls::ServerConfig) -> Result<SessionTls, rustls::Error> {
    let mut control = base.clone();
    control.session_storage = ServerSessionMemoryCache::new(64);
    control.ticketer = rustls::crypto::ring::Ticketer::new()?;
    if control.alpn_protocols.is_empty() {
        control.alpn_protocols = vec![ALPN_FTP.to_vec()];
    }
    // A few spare tickets for clients that upload several files in a row.
    control.send_tls13_tickets = 4;
    let mut ticketing = control.clone();
    ticketing.send_tls13_tickets = 1;
    let mut quiet = control.clone();
    quiet.send_tls13_tickets = 0;
    Ok(SessionTls {
        control: Arc::new(control),
        data: DataTls {
            ticketing: Arc::new(ticketing),
            quiet: Arc::new(quiet),
        },
    })
}

/// The server side of a data connection's TLS handshake, choosing whether to issue a
/// ticket from the ClientHello (see [`SessionTls`]).
pub(crate) async fn accept_data(
    tcp: tokio::net::TcpStream,
    tls: &DataTls,
    upload: bool,
) -> std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    let start =
        tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp).await?;
    let reads_to_end = start
        .client_hello()
        .alpn()
        .is_some_and(|mut protocols| protocols.any(|p| p == ALPN_FTP));
    let config = if upload && !reads_to_end {
        tls.quiet.clone()
    } else {
        tls.ticketing.clone()
    };
    start.into_stream(config).await
}

/// What a completed server handshake did.
pub(crate) fn info(conn: &ServerConnection) -> TlsInfo {
    TlsInfo {
        version: match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_2) => TlsVersion::Tls12,
            _ => TlsVersion::Tls13,
        },
        resumed: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        sni: conn.server_name().map(str::to_owned),
    }
}
