//! A data connection passes its control connection's TLS session on only if it resumed it.
//!
//! RFC 4217 §10.2: the server must make sure a data connection belongs to its control
//! connection; here a data connection must resume a TLS session of the control
//! connection (else 522). But a full handshake on a data port completes before the 522:
//! without this, it would end with a ticket sealed for the control connection's session
//! (TLS 1.3, or TLS 1.2 tickets) or a session ID stored in that session's cache (TLS 1.2),
//! handed to whoever made it. Someone who won the race to a data port (from the client's
//! own address, behind the same NAT) would be refused once, then resume that session on
//! the next race and be let in.
//!
//! [`resumed_only`] gives each data connection a ticketer and a session store that issue
//! and store nothing until that connection's handshake has resumed a session (a ticket
//! that opened, or a session ID found). rustls looks the offered session up before it
//! issues or stores one, in TLS 1.2 and 1.3 alike. Clients that spend each ticket once
//! (OpenSSL, rustls) still get a fresh ticket from every data connection that resumed.

use rustls::server::{ProducesTickets, StoresServerSessions};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A ticketer or session store for one data connection (see the module's documentation).
#[derive(Debug)]
struct IfResumed<T: ?Sized> {
    inner: Arc<T>,
    resumed: Arc<AtomicBool>,
}

impl<T: ?Sized> IfResumed<T> {
    /// `found`, noting that the handshake resumed when it is something.
    fn note(&self, found: Option<Vec<u8>>) -> Option<Vec<u8>> {
        if found.is_some() {
            self.resumed.store(true, Ordering::Relaxed);
        }
        found
    }

    fn resumed(&self) -> bool {
        self.resumed.load(Ordering::Relaxed)
    }
}

impl ProducesTickets for IfResumed<dyn ProducesTickets> {
    fn enabled(&self) -> bool {
        self.inner.enabled()
    }

    fn lifetime(&self) -> u32 {
        self.inner.lifetime()
    }

    /// No ticket (rustls then sends none, or an empty one in TLS 1.2) after a full
    /// handshake.
    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        if self.resumed() {
            self.inner.encrypt(plain)
        } else {
            None
        }
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.note(self.inner.decrypt(cipher))
    }
}

impl StoresServerSessions for IfResumed<dyn StoresServerSessions> {
    /// Not stored after a full handshake.
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.resumed() && self.inner.put(key, value)
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.note(self.inner.get(key))
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.note(self.inner.take(key))
    }

    fn can_cache(&self) -> bool {
        self.inner.can_cache()
    }
}

/// `config`'s ticketer and session store, wrapped for one data connection: they pass a
/// session on only once its handshake resumed one (see the module's documentation).
pub(crate) fn resumed_only(config: &mut rustls::ServerConfig) {
    let resumed = Arc::new(AtomicBool::new(false));
    config.ticketer = Arc::new(IfResumed {
        inner: config.ticketer.clone(),
        resumed: resumed.clone(),
    });
    config.session_storage = Arc::new(IfResumed {
        inner: config.session_storage.clone(),
        resumed,
    });
}

#[cfg(all(test, any(feature = "aws-lc-rs", feature = "ring")))]
#[allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
mod tests {
    use super::*;
    use rustls::server::ServerSessionMemoryCache;

    fn config() -> rustls::ServerConfig {
        let mut c = rustls::ServerConfig::builder_with_provider(crate::tls::config::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(rustls::server::ResolvesServerCertUsingSni::new()));
        c.ticketer = super::super::bound_tickets::process_ticketer()
            .unwrap()
            .unwrap();
        c.session_storage = ServerSessionMemoryCache::new(4);
        c
    }

    #[test]
    fn nothing_is_issued_or_stored_until_a_session_resumed() {
        let base = config();
        let ticket = base.ticketer.encrypt(b"state").unwrap();
        assert!(base.session_storage.put(b"id".to_vec(), b"state".to_vec()));

        // A full handshake: looked up, found nothing; issues and stores nothing.
        let mut full = base.clone();
        resumed_only(&mut full);
        assert_eq!(full.ticketer.decrypt(b"not a ticket"), None);
        assert_eq!(full.session_storage.get(b"other"), None);
        assert_eq!(full.ticketer.encrypt(b"new"), None);
        assert!(!full.session_storage.put(b"new".to_vec(), b"new".to_vec()));
        assert_eq!(base.session_storage.get(b"new"), None, "nothing stored");
        assert!(full.ticketer.enabled(), "tickets are still offered");

        // Resumed from a ticket: a fresh one is issued.
        let mut by_ticket = base.clone();
        resumed_only(&mut by_ticket);
        assert!(by_ticket.ticketer.decrypt(&ticket).is_some());
        assert!(by_ticket.ticketer.encrypt(b"next").is_some());

        // Resumed from a session ID: a session may be stored.
        let mut by_id = base.clone();
        resumed_only(&mut by_id);
        assert!(by_id.session_storage.get(b"id").is_some());
        assert!(by_id.session_storage.put(b"new".to_vec(), b"new".to_vec()));

        // Each data connection starts over.
        let mut next = base.clone();
        resumed_only(&mut next);
        assert_eq!(next.ticketer.encrypt(b"x"), None);
    }
}
