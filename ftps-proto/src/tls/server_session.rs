//! The server's per-session TLS configurations, which bind data connections to their
//! control connection (RFC 4217 §10.2).

use super::bound_tickets::BoundTickets;
use super::session_ids::SessionIds;
use crate::boundary::ALPN_FTP;
use rustls::server::ClientHello;
use std::sync::Arc;

/// The configurations for one control connection and for its data connections.
///
/// All share a session cache made for this control connection alone, and a ticketer that
/// accepts only tickets it issued for this control connection (a tag sealed in each, under
/// the server's ticket key: `BoundTickets`), so a data connection can resume only a
/// session of this control connection (TLS 1.2 session IDs or tickets, TLS 1.3 tickets).
/// A ticketer in the server's configuration (keys shared by a fleet's nodes, say) is used
/// as that key, and must be authenticated encryption (rustls' are) for the tag to bind;
/// without one, one made for the process. A data connection passes a session on (a new
/// ticket, a stored session ID) only if it resumed one itself (`resumed_only`).
///
/// TLS 1.3 clients that use each ticket once (OpenSSL, rustls) need a fresh ticket from
/// every data connection for the next one, so data connections issue one, except uploads
/// from clients that never read: curl writes its upload, sends close_notify and closes
/// without reading, and closing a socket with unread bytes (the ticket) makes the kernel
/// send a reset that throws away whatever of the upload is still in curl's send buffer
/// (measured: 114,688 of 2,000,000 bytes arrived). An upload gets a ticket only if its
/// client offered ALPN `ftp`, the sign of a client that reads to the end (ours does).
#[derive(Debug, Clone)]
pub struct SessionTls {
    /// For the control connection.
    pub control: Arc<rustls::ServerConfig>,
    /// For its data connections.
    pub data: DataTls,
}

/// The data connections' configurations, made from the control connection's when a data
/// connection asks (see [`SessionTls`]): an idle session holds one configuration, not
/// three (each ~770 bytes, measured with heaptrack); a data connection pays for one
/// clone of the configuration (reference counts and the ALPN list) beside its handshake.
#[derive(Debug, Clone)]
pub struct DataTls {
    control: Arc<rustls::ServerConfig>,
}

impl SessionTls {
    /// Fresh configurations for one control connection, from the server's `base`.
    ///
    /// A `base` that picks suites in its own order (`ignore_client_order`, as the
    /// configurations of `tls::server_config` do) follows the client's order for a
    /// client that lists ChaCha20-Poly1305 before every AES-GCM suite, on the control
    /// connection and its data connections alike ([`SessionTls::control_for`]).
    pub fn new(base: &rustls::ServerConfig) -> Result<SessionTls, rustls::Error> {
        let mut control = base.clone();
        // Only this session's data connections resume from it (TLS 1.3 tickets come from
        // the ticketer, so this holds TLS 1.2 session IDs): a few entries, allocated with
        // the first (rustls' cache allocates its table up front, in every idle session).
        control.session_storage = Arc::new(SessionIds::default());
        // TLS 1.3 (and TLS 1.2 ticket) resumption: the server's ticketer if its
        // configuration has one, else the process's, with this session's tag sealed in.
        let shared = if base.ticketer.enabled() {
            Some(base.ticketer.clone())
        } else {
            super::bound_tickets::process_ticketer()?
        };
        if let Some(shared) = shared {
            let random = base.crypto_provider().secure_random;
            control.ticketer = Arc::new(BoundTickets::new(shared, random)?);
        }
        if control.alpn_protocols.is_empty() {
            control.alpn_protocols = vec![ALPN_FTP.to_vec()];
        }
        // A few spare tickets for clients that upload several files in a row.
        control.send_tls13_tickets = 4;
        let control = Arc::new(control);
        Ok(SessionTls {
            data: DataTls {
                control: control.clone(),
            },
            control,
        })
    }
}

impl SessionTls {
    /// The configuration for the control connection whose ClientHello is `hello`: the
    /// server's order of cipher suites, unless the client puts ChaCha20 first (see
    /// `suite_choice`; rustls' `Acceptor` gives the ClientHello).
    pub fn control_for(&self, hello: &ClientHello<'_>) -> Arc<rustls::ServerConfig> {
        super::suite_choice::for_hello(&self.control, hello)
    }
}

impl DataTls {
    /// The configuration for a data connection whose ClientHello is `hello` (see
    /// [`SessionTls`]).
    pub fn choose(&self, hello: &ClientHello<'_>, upload: bool) -> Arc<rustls::ServerConfig> {
        let reads_to_end = hello
            .alpn()
            .is_some_and(|mut protocols| protocols.any(|p| p == ALPN_FTP));
        let mut config = (*self.control).clone();
        // The same suite as the control connection's (see `SessionTls::control_for`).
        config.ignore_client_order &= !super::suite_choice::prefers_chacha20(hello);
        config.send_tls13_tickets = if upload && !reads_to_end { 0 } else { 1 };
        // A full handshake here is refused (522) but completes first: it must not carry
        // a session of this control connection away.
        super::resumed_only::resumed_only(&mut config);
        Arc::new(config)
    }
}
