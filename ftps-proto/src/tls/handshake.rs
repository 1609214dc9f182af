//! What a completed handshake did ([`TlsInfo`]), for either side's session: the server's
//! policy checks, and the client's control connection.

use crate::boundary::{TlsInfo, TlsVersion};
use rustls::CommonState;
use rustls::client::ClientConnection;
use rustls::server::ServerConnection;

/// What a completed server handshake did, for the session's policy checks.
pub fn handshake_info(conn: &ServerConnection) -> TlsInfo {
    info(conn, conn.server_name().map(str::to_owned))
}

/// What a completed client handshake did. `sni` is the server name the client sent, if
/// it sent one (rustls sends a DNS name, never an IP address, and only with
/// `enable_sni`): the connection does not keep it.
pub fn client_handshake_info(conn: &ClientConnection, sni: Option<&str>) -> TlsInfo {
    info(conn, sni.map(str::to_owned))
}

fn info(state: &CommonState, sni: Option<String>) -> TlsInfo {
    TlsInfo {
        version: match state.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_2) => TlsVersion::Tls12,
            _ => TlsVersion::Tls13,
        },
        resumed: state.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        alpn: state.alpn_protocol().map(<[u8]>::to_vec),
        sni,
        peer_certificates: state
            .peer_certificates()
            .map(|chain| chain.iter().map(|c| c.as_ref().to_vec()).collect())
            .unwrap_or_default(),
    }
}
