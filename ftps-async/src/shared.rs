//! [`ServerShared`]: what a server's sessions share, built by
//! [`ServerBuilder`](crate::ServerBuilder).

use crate::budget::Budget;
use crate::gate::Gate;
use crate::hooks::HookQueue;
use crate::limits::{ListenerCaps, SessionLimits, client_key};
use crate::observe;
use crate::runtime::Runtime;
use crate::warnings::Warnings;
use ftps_backend::{Authenticator, Check, User, Verdict};
use ftps_proto::server::{LoginAnswer, LoginRequest, ServerConfig};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

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
    /// How long one storage call may take (see
    /// [`ServerBuilder::storage_timeout`](crate::ServerBuilder::storage_timeout)).
    pub(crate) storage_timeout: Duration,
    /// The drain signals (see [`Server::drain`](crate::Server::drain)).
    pub(crate) drain: Arc<crate::drain::Drain>,
    /// The balancers trusted to send a PROXY header (none: no connection may send one).
    pub(crate) proxies: Option<Arc<crate::proxy::TrustedProxies>>,
    /// Failed logins per address, across sessions (and, shared, across nodes).
    pub(crate) lockout: Arc<dyn crate::lockout::Lockout>,
    /// Bounds the CPU-bound login checks running at once ([`Check::Compute`]: one per
    /// core): each Argon2 check takes about 19 MiB, so a thousand logins arriving
    /// together must not run a thousand of them. Checks that wait on a service are not
    /// bound by it.
    pub(crate) login_gate: Arc<Gate>,
    /// Bounds the blocking login checks running at once ([`Check::Blocking`]; see
    /// [`ServerBuilder::max_blocking_auth_checks`](crate::ServerBuilder::max_blocking_auth_checks)).
    pub(crate) blocking_gate: Arc<Gate>,
    /// How long a login check may take, whatever its kind; past it the client gets 421.
    pub(crate) auth_timeout: Duration,
    /// What transfers' large buffers may hold together (see [`Budget`]): 64 MiB.
    pub(crate) transfer_buffers: Arc<Budget>,
    /// Bounds the STAT listings built at once (one per core; each holds up to
    /// [`ftps_backend::STAT_ENTRIES`] entries and their reply; hundreds at once held GBs). The
    /// driver enters it around a [`StorageRequest::List`](ftps_proto::server::StorageRequest::List).
    pub(crate) stat_gate: Gate,
    /// Bounds the file hashes computed at once (HASH; one per core): each reads a file
    /// to its end and keeps a core busy, so a crowd of sessions asking for hashes of large
    /// files waits its turn instead of taking every core. The driver enters it around a
    /// [`StorageRequest::Hash`](ftps_proto::server::StorageRequest::Hash).
    pub(crate) hash_gate: Gate,
    /// The users computing a hash now: one each (a second HASH of the same user meanwhile
    /// gets 450), so one user cannot hold every place of `hash_gate`.
    pub(crate) hashing: crate::gate::OnePerName,
    /// The application's hooks, if any, behind their queue.
    pub(crate) hooks: Option<HookQueue>,
}

impl<S: Send + Sync, A: Authenticator> ServerShared<S, A> {
    /// Checks a login, unless its address is locked out after too many failures, within
    /// the authentication timeout; records and logs the outcome. Returns the core's answer
    /// and, when accepted, the user for the storage.
    pub(crate) async fn check_login<R: Runtime>(
        &self,
        request: &LoginRequest,
    ) -> (LoginAnswer, Option<User>) {
        let ip = request.peer.ip();
        let key = client_key(ip);
        if !self.allows::<R>(key).await {
            self.warnings.locked_out(ip);
            observe::login("locked_out");
            return (LoginAnswer::Rejected, None);
        }
        let verdict = match R::timeout(self.auth_timeout, self.run_check::<R>(request)).await {
            Ok(verdict) => verdict,
            Err(_) => {
                self.warnings
                    .login_unavailable(ip, "the authenticator did not answer in time");
                observe::login("unavailable");
                return (LoginAnswer::Unavailable, None);
            }
        };
        // Other sessions from the address may have failed while this check waited or ran
        // (they are not one at a time): once the address is locked out, no check's answer
        // is given, whatever it is, or parallel sessions would each get a guess past the
        // lockout's bound.
        if !self.allows::<R>(key).await {
            self.warnings.locked_out(ip);
            observe::login("locked_out");
            return (LoginAnswer::Rejected, None);
        }
        let user = match verdict {
            Verdict::Accepted(user) => Some(user),
            Verdict::Rejected => None,
            _ => {
                self.warnings
                    .login_unavailable(ip, "the authenticator is unavailable");
                observe::login("unavailable");
                return (LoginAnswer::Unavailable, None);
            }
        };
        let accepted = user.is_some();
        if !accepted {
            // Bounded as the check is: a lockout that does not answer holds no login
            // (review16b finding 7).
            let failed = self.lockout.failed(key);
            if R::timeout(self.auth_timeout, failed).await.is_err() {
                self.warnings
                    .login_unavailable(ip, "the lockout did not answer in time");
            }
        }
        observe::login(if accepted { "accepted" } else { "rejected" });
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
                result = if accepted { "accepted" } else { "rejected" },
                "login"
            );
        }
        match user {
            Some(user) => {
                let answer = LoginAnswer::Accepted {
                    control_tls: user.control_tls,
                    data_tls: user.data_tls,
                    grants: Some(user.grants.clone()),
                };
                (answer, Some(user))
            }
            None => (LoginAnswer::Rejected, None),
        }
    }

    /// Whether the lockout allows a login from `key`, within the authentication timeout:
    /// one that does not answer in time allows it (fails open, as a lockout must: see
    /// [`Lockout`](crate::Lockout)) and is warned of (review16b finding 7: a hung lockout
    /// left PASS unanswered for good).
    async fn allows<R: Runtime>(&self, key: std::net::IpAddr) -> bool {
        match R::timeout(self.auth_timeout, self.lockout.allows(key)).await {
            Ok(allowed) => allowed,
            Err(_) => {
                self.warnings
                    .login_unavailable(key, "the lockout did not answer in time");
                true
            }
        }
    }

    /// Runs the authenticator's check where its kind belongs (see [`Check`]).
    async fn run_check<R: Runtime>(&self, request: &LoginRequest) -> Verdict {
        match self.auth.authenticate(request) {
            Check::Done(verdict) => verdict,
            Check::Wait(check) => check.await,
            Check::Blocking(check) => {
                // Bounded like CPU-bound checks, by a gate of its own: a check that hangs
                // (a directory service that does not answer) keeps its thread past the
                // timeout, so without a bound, logins could take every thread of the pool
                // (review15, finding 6). Past the bound, logins wait and time out (421).
                let permit = self.blocking_gate.clone().enter_owned().await;
                R::unblock_apart(move || {
                    let verdict = check();
                    drop(permit);
                    verdict
                })
                .await
            }
            Check::Compute(check) => {
                // The place goes with the check: one whose waiter timed out still holds
                // it until it ends, so no more than one a core ever run.
                let permit = self.login_gate.clone().enter_owned().await;
                // Locked out while it waited for its place: not worth a hash.
                if !self.allows::<R>(client_key(request.peer.ip())).await {
                    return Verdict::Rejected;
                }
                R::unblock_apart(move || {
                    let verdict = check();
                    drop(permit);
                    verdict
                })
                .await
            }
        }
    }
}
