//! The vocabulary of the boundary between the protocol cores and the adapters that both
//! the client and the server use: what a TLS handshake did ([`TlsInfo`]) and the ALPN id
//! of FTP. (The rest of the IO vocabulary — data ids, data ends — is still per role;
//! issue 14 brings it here.)

/// TLS protocol versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// What a completed TLS handshake did, as the adapter saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// The negotiated version.
    pub version: TlsVersion,
    /// True if the handshake resumed a session of *this* control connection (the adapter
    /// keeps a session cache per control connection, so a resumption can only be of it).
    pub resumed: bool,
    /// The ALPN protocol agreed, if any.
    pub alpn: Option<Vec<u8>>,
    /// The server name the client sent (SNI), if any.
    pub sni: Option<String>,
}

/// The ALPN protocol id of FTP (RFC 7301; "ftp" is registered for FTP). The server
/// advertises and requires it; a client offering ALPN without it must fail the handshake
/// (ALPACA).
pub const ALPN_FTP: &[u8] = b"ftp";
