//! [`ServerShared`]: what a server's sessions share, built by
//! [`ServerBuilder`](crate::ServerBuilder).

use crate::budget::Budget;
use crate::gate::Gate;
use crate::limits::{ListenerCaps, LoginGuard, SessionLimits};
use crate::warnings::Warnings;
use ftps_backend::Authenticator;
use ftps_proto::server::{LoginAnswer, ServerConfig};
use std::ops::RangeInclusive;
use std::sync::Arc;

/// Everything a server's sessions share, read-only.
pub(crate) struct ServerShared<S, A> {
    /// The files.
    pub(crate) storage: Arc<S>,
    /// The users.
    pub(crate) auth: Arc<A>,
    /// The protocol configuration (`tls_available` set from `tls`).
    pub(crate) config: Arc<ServerConfig>,
    /// The TLS configuration each session's own configurations are made from.
    pub(crate) tls: Option<rustls::ServerConfig>,
    /// The ports passive listeners use; any free port if `None`.
    pub(crate) passive_ports: Option<RangeInclusive<u16>>,
    /// Session caps.
    pub(crate) limits: Arc<SessionLimits>,
    /// Caps on open passive listeners per client address and per user (each session has
    /// at most one; these bound what one address or one account can hold of a passive
    /// port range).
    pub(crate) passive_listeners: Arc<ListenerCaps>,
    /// Warnings a peer can repeat at will, throttled server-wide.
    pub(crate) warnings: Arc<Warnings>,
    /// Failed logins per address, across sessions.
    pub(crate) login_guard: LoginGuard,
    /// Bounds the password checks running at once (one per core): each Argon2 check takes
    /// about 19 MiB, so a thousand logins arriving together must not run a thousand of
    /// them. The driver enters it around [`check_login`](Self::check_login).
    pub(crate) login_gate: Gate,
    /// What transfers' large buffers may hold together (see [`Budget`]): 64 MiB.
    pub(crate) transfer_buffers: Arc<Budget>,
    /// Bounds the STAT listings built at once (one per core; each holds up to
    /// [`ftps_backend::STAT_ENTRIES`] entries and their reply; hundreds at once held GBs). The
    /// driver enters it around a [`StorageRequest::List`](ftps_proto::server::StorageRequest::List).
    pub(crate) stat_gate: Gate,
}

impl<S, A: Authenticator> ServerShared<S, A> {
    /// Checks a login (blocking: Argon2), unless its address is locked out after too many
    /// failures; records and logs the outcome.
    pub(crate) fn check_login(&self, request: &ftps_proto::server::LoginRequest) -> LoginAnswer {
        let ip = request.peer.ip();
        let now = std::time::Instant::now();
        if !self.login_guard.allows(ip, now) {
            self.warnings.locked_out(ip);
            return LoginAnswer::Rejected;
        }
        let answer = self.auth.authenticate(request);
        let accepted = matches!(answer, LoginAnswer::Accepted { .. });
        self.login_guard.record(ip, now, accepted);
        // One line per login checked: a session has a few failures before it is closed,
        // an address a few more before it is locked out (then a line a second at most),
        // and a session at most 16 logins. Anonymous logins, which anybody can repeat at
        // will, a line a second.
        if accepted && request.user == "anonymous" {
            self.warnings.anonymous_login(ip);
        } else {
            tracing::info!(
                user = %ftps_proto::Printable(&request.user),
                peer = %ip,
                accepted,
                "login"
            );
        }
        answer
    }
}
