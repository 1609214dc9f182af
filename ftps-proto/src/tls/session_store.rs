//! A rustls session store for one FTP session.
//!
//! RFC 4217 §10.2 lets a server demand that every data connection's TLS session be the
//! control connection's session resumed; vsftpd (`require_ssl_reuse=YES`), ProFTPD (by
//! default) and FileZilla Server check it. A store shared by several control connections
//! to one host (rustls' default is one cache per `ClientConfig`) would let a data
//! connection resume *another* control connection's session, which those servers refuse
//! with 425/522. So each FTP session gets its own [`SessionStore`], and data connections
//! resume only what its control connection and its earlier data connections received.
//!
//! TLS 1.3 tickets are single-use in rustls (RFC 8446 §C.4 recommends it), so the store
//! also counts them: a server that hands out no new ticket on some data connections
//! (ProFTPD 1.3.8 issues none on uploads) can leave the session with none, and the next
//! data connection could not be resumed. [`SessionStore::tls13_tickets`] and
//! [`SessionStore::tls13_tickets_received`] let the runtime see that coming.

use rustls::NamedGroup;
use rustls::client::{ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue};
use rustls::pki_types::ServerName;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

/// How many TLS 1.3 tickets are kept; servers send one or two per connection.
const MAX_TLS13_TICKETS: usize = 8;

/// The TLS sessions of one FTP session (see the module documentation).
#[derive(Debug, Default)]
pub struct SessionStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    kx_hint: Option<NamedGroup>,
    tls12: Option<Tls12ClientSessionValue>,
    tls13: VecDeque<Tls13ClientSessionValue>,
    tls13_received: u64,
}

impl SessionStore {
    /// An empty store.
    pub fn new() -> Arc<SessionStore> {
        Arc::new(SessionStore::default())
    }

    /// How many unused TLS 1.3 tickets the session holds.
    pub fn tls13_tickets(&self) -> usize {
        self.lock().tls13.len()
    }

    /// How many TLS 1.3 tickets the server has sent in this session; 0 means it does not
    /// offer TLS 1.3 resumption at all (Pure-FTPd), so running out of tickets is no sign
    /// that the next data connection will be refused.
    pub fn tls13_tickets_received(&self) -> u64 {
        self.lock().tls13_received
    }

    /// Whether the next protected data connection of a TLS 1.3 session could not be
    /// resumed: the server hands out tickets (it resumes sessions) and none is left. The
    /// client then opens the control connection again rather than fail the transfer.
    pub fn needs_renewal(&self, tls13: bool) -> bool {
        let inner = self.lock();
        tls13 && inner.tls13.is_empty() && inner.tls13_received > 0
    }

    /// Whether a TLS 1.2 session is held (it can be resumed any number of times).
    pub fn has_tls12_session(&self) -> bool {
        self.lock().tls12.is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The data is plain values: a panic elsewhere cannot leave it inconsistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Every connection of the session goes to the one server, so the server name is not a
/// key: the store holds one server's sessions.
impl ClientSessionStore for SessionStore {
    fn set_kx_hint(&self, _: ServerName<'static>, group: NamedGroup) {
        self.lock().kx_hint = Some(group);
    }

    fn kx_hint(&self, _: &ServerName<'_>) -> Option<NamedGroup> {
        self.lock().kx_hint
    }

    fn set_tls12_session(&self, _: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.lock().tls12 = Some(value);
    }

    fn tls12_session(&self, _: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.lock().tls12.clone()
    }

    fn remove_tls12_session(&self, _: &ServerName<'static>) {
        self.lock().tls12 = None;
    }

    fn insert_tls13_ticket(&self, _: ServerName<'static>, value: Tls13ClientSessionValue) {
        let mut inner = self.lock();
        if inner.tls13.len() == MAX_TLS13_TICKETS {
            inner.tls13.pop_front();
        }
        inner.tls13.push_back(value);
        inner.tls13_received += 1;
    }

    fn take_tls13_ticket(&self, _: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        self.lock().tls13.pop_back()
    }
}

/// A copy of `config` whose connections use `store` for resumption (and no other store).
pub fn with_session_store(
    config: &rustls::ClientConfig,
    store: Arc<SessionStore>,
) -> rustls::ClientConfig {
    let mut config = config.clone();
    config.resumption = rustls::client::Resumption::store(store);
    config
}
