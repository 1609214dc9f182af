//! TLS for the tokio adapter: the configuration builders (from `ftps-proto` and
//! `ftps-backend`, shared by every runtime) and the data connection's handshake, which
//! picks its configuration from the ClientHello.

pub use ftps_backend::files::server_config_from_pem_files;
use ftps_proto::tls::DataTls;
pub use ftps_proto::tls::{TlsConfigError, server_config, server_config_from_pem};

/// The server side of a data connection's TLS handshake (see
/// [`ftps_proto::tls::SessionTls`] for why the ClientHello decides the configuration).
pub(crate) async fn accept_data(
    tcp: tokio::net::TcpStream,
    tls: &DataTls,
    upload: bool,
) -> std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    let start =
        tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp).await?;
    let config = tls.choose(&start.client_hello(), upload);
    start.into_stream(config).await
}
