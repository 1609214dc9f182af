//! Warnings a peer can cause at will, said at most once a second server-wide with the
//! count of those held back ([`Warnings`], built on [`Throttled`]), so that no flood of
//! connections or commands can flood the log.

use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The server's warnings that a peer can repeat at will, each throttled server-wide (one
/// line a second, with the count held back since): a per-listener or per-session limit is
/// not enough, as a session can open a listener per command and an address many sessions
/// (issue 13, finding 14 and its second review's finding I).
#[derive(Debug, Default)]
pub(crate) struct Warnings {
    foreign: Gate,
    listen: Gate,
    locked_out: Gate,
    accept: Gate,
    anonymous: Gate,
    unavailable: Gate,
    storage: Gate,
    proxy: Gate,
}

/// One kind of line, throttled.
#[derive(Debug)]
struct Gate(Mutex<Throttled>);

impl Default for Gate {
    fn default() -> Self {
        Gate(Mutex::new(Throttled::new(Duration::from_secs(1))))
    }
}

impl Gate {
    /// Whether to log now; if so, how many were held back since the last line.
    fn allow(&self) -> Option<u64> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .allow()
    }
}

impl Warnings {
    /// A passive listener refused a data connection from `peer`, a foreign address.
    pub(crate) fn foreign_data_connection(&self, peer: SocketAddr) {
        if let Some(held) = self.foreign.allow() {
            tracing::warn!(%peer, held, "data connection from a foreign address refused");
        }
    }

    /// A login from `peer` was refused unchecked: its address is locked out after too
    /// many failures (each attempt is not logged: the lockout is when an address tries
    /// hardest).
    pub(crate) fn locked_out(&self, peer: std::net::IpAddr) {
        if let Some(held) = self.locked_out.allow() {
            tracing::warn!(%peer, held, "login refused: address locked out");
        }
    }

    /// An accept failed (out of descriptors, say: it repeats as fast as the loop turns).
    pub(crate) fn accept_failed(&self, error: &std::io::Error) {
        if let Some(held) = self.accept.allow() {
            tracing::warn!(held, "accept: {error}");
        }
    }

    /// An anonymous login from `peer` was accepted: anybody can repeat it at will (no
    /// password to check, no lockout), so it is said at most once a second (at info).
    pub(crate) fn anonymous_login(&self, peer: std::net::IpAddr) {
        if let Some(held) = self.anonymous.allow() {
            tracing::info!(%peer, held, "anonymous login");
        }
    }

    /// A login from `peer` could not be checked: the authenticator said it is unavailable,
    /// or did not answer within the authentication timeout (not a failed login, so not
    /// bounded by the lockout: said at most once a second).
    pub(crate) fn login_unavailable(&self, peer: std::net::IpAddr, why: &str) {
        if let Some(held) = self.unavailable.allow() {
            tracing::warn!(%peer, held, "login not checked: {why}");
        }
    }

    /// The storage failed on its side (not a missing file or a refusal: an I/O error, a
    /// full disk, an object store that does not answer): the reason the user's 451 or 452
    /// does not give, said at most once a second (review15d finding 6).
    pub(crate) fn storage_failed(&self, op: &str, error: &ftps_proto::server::StorageError) {
        use ftps_proto::server::StorageError as E;
        if matches!(error, E::Other(_) | E::Busy | E::InsufficientStorage)
            && let Some(held) = self.storage.allow()
        {
            tracing::warn!(op, held, "storage failed: {error:?}");
        }
    }

    /// A trusted balancer's connection from `peer` brought no valid PROXY header: closed
    /// unanswered. Said (throttled) because it is how a balancer configured without
    /// `send-proxy` shows.
    pub(crate) fn bad_proxy_header(&self, peer: SocketAddr, error: &std::io::Error) {
        if let Some(held) = self.proxy.allow() {
            tracing::warn!(%peer, held, "closed: {error}");
        }
    }

    /// A connection from `peer`, not trusted to send a PROXY header, sent one: closed.
    pub(crate) fn untrusted_proxy_header(&self, peer: SocketAddr) {
        if let Some(held) = self.proxy.allow() {
            tracing::warn!(%peer, held, "closed: a PROXY header from an address not trusted to send one");
        }
    }

    /// A passive listener could not be opened.
    pub(crate) fn passive_listener_failed(&self, error: &std::io::Error) {
        if let Some(held) = self.listen.allow() {
            tracing::warn!(held, "passive listener: {error}");
        }
    }
}

/// A warning that may repeat fast (a failing accept loop, say): said at most once per
/// interval, with the count of those held back since.
#[derive(Debug)]
pub(crate) struct Throttled {
    every: std::time::Duration,
    last: Option<std::time::Instant>,
    held: u64,
}

impl Throttled {
    /// At most one line per `every`.
    pub(crate) fn new(every: std::time::Duration) -> Self {
        Throttled {
            every,
            last: None,
            held: 0,
        }
    }

    /// Whether to log now; if so, how many were held back since the last line.
    pub(crate) fn allow(&mut self) -> Option<u64> {
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < self.every)
        {
            self.held += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }
}

#[cfg(test)]
mod tests {
    use super::Throttled;
    use std::time::Duration;

    #[test]
    fn a_throttled_warning_is_said_once_an_interval_with_the_count_held_back() {
        let mut t = Throttled::new(Duration::from_millis(200));
        assert_eq!(t.allow(), Some(0));
        assert!((0..1000).all(|_| t.allow().is_none()));
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(t.allow(), Some(1000));
    }
}
