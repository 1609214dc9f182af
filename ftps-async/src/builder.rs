//! [`ServerBuilder`]: storage, users, the protocol configuration, TLS, passive ports and
//! the limits a server is built from.

use crate::budget::Budget;
use crate::gate::Gate;
use crate::hooks::HookQueue;
use crate::limits::{ListenerCaps, SessionLimits};
use crate::lockout::{LocalLockout, Lockout};
use crate::proxy::TrustedProxies;
use crate::server::Server;
use crate::shared::ServerShared;
use ftps_backend::{Authenticator, Hooks, Quoted, Storage};
use ftps_proto::server::ServerConfig;
use std::marker::PhantomData;
use std::ops::RangeInclusive;
use std::sync::Arc;

/// Builds a [`Server`] on runtime `R`, or what a runtime crate wraps it in (`T`:
/// `ftps_blocking::Server`, say).
pub struct ServerBuilder<R, S, A, T = Server<R, S, A>> {
    storage: S,
    auth: A,
    config: ServerConfig,
    tls: Option<rustls::ServerConfig>,
    passive_ports: Option<RangeInclusive<u16>>,
    max_sessions: usize,
    max_sessions_per_ip: usize,
    max_before_login: Option<usize>,
    max_passive_per_ip: usize,
    max_passive_per_user: Option<usize>,
    transfer_buffers: usize,
    lockout: Arc<dyn Lockout>,
    auth_timeout: std::time::Duration,
    blocking_auth_checks: Option<usize>,
    hooks: Option<Arc<dyn Hooks>>,
    proxies: Option<TrustedProxies>,
    storage_timeout: std::time::Duration,
    server: PhantomData<fn() -> (R, T)>,
}

impl<R, S, A, T> ServerBuilder<R, S, A, T> {
    /// A server on `storage` and `auth`, with the default configuration (TLS required on
    /// control and data, session reuse checked), at most 1000 sessions and 50 per address.
    pub fn new(storage: S, auth: A) -> Self {
        ServerBuilder {
            storage,
            auth,
            config: ServerConfig::default(),
            tls: None,
            passive_ports: None,
            max_sessions: 1000,
            max_sessions_per_ip: 50,
            max_before_login: None,
            max_passive_per_ip: 16,
            max_passive_per_user: None,
            transfer_buffers: 64 << 20,
            lockout: Arc::new(LocalLockout::default()),
            auth_timeout: std::time::Duration::from_secs(30),
            blocking_auth_checks: None,
            hooks: None,
            proxies: None,
            storage_timeout: std::time::Duration::from_secs(120),
            server: PhantomData,
        }
    }

    /// At most `n` blocking login checks ([`Check::Blocking`](ftps_backend::Check)) at
    /// once (default: twice the cores, at least 4). Each holds a thread until it ends,
    /// also past the authentication timeout; past the bound, logins wait for a place
    /// (and time out with 421), so a directory service that hangs cannot take every
    /// thread the server's file operations need.
    pub fn max_blocking_auth_checks(mut self, n: usize) -> Self {
        self.blocking_auth_checks = Some(n);
        self
    }

    /// Tells `hooks` of what users do, after the fact: logins, uploads and downloads
    /// finished (an upload is `ok` only once committed and answered 226), deletes, renames,
    /// directories made and removed. The calls are made in order, one at a time, by a task
    /// of the server's on the runtime's blocking pool — never by a session, so a slow hook
    /// never stalls one; it delays the events after it, and past
    /// [`HOOK_QUEUE`](ftps_backend::HOOK_QUEUE) waiting events new ones are dropped (with
    /// a warning). A hook must return quickly: spawn your own work for anything long.
    pub fn hooks(mut self, hooks: impl Hooks) -> Self {
        self.hooks = Some(Arc::new(hooks));
        self
    }

    /// How long one login check may take, whatever the authenticator waits on (default
    /// 30 s; a check waiting for its turn behind other password hashes counts): past it,
    /// the client gets 421 and the session closes, and the login is not counted as failed.
    pub fn auth_timeout(mut self, limit: std::time::Duration) -> Self {
        self.auth_timeout = limit;
        self
    }

    /// How long one storage call may take (default 120 s): past it the client gets 451
    /// and the session goes on (the call's future is dropped: an async storage's request
    /// is abandoned, a blocking storage's thread runs to its end on the pool). HASH is not
    /// bounded by it (its time grows with the file; it has its own gates), nor are a
    /// transfer's reads and writes (a transfer that stalls is aborted by the data-stall
    /// timeout); an upload's commit is.
    pub fn storage_timeout(mut self, limit: std::time::Duration) -> Self {
        self.storage_timeout = limit;
        self
    }

    /// Counts failed logins with `lockout` instead of in this process: a fleet's nodes
    /// sharing one (`ftps_fleet::RedisLockout`) lock an address out on every node at once.
    /// Replaces what [`login_lockout`](Self::login_lockout) set.
    pub fn lockout(mut self, lockout: impl Lockout) -> Self {
        self.lockout = Arc::new(lockout);
        self
    }

    /// Accepts the PROXY protocol (HAProxy's, versions 1 and 2) from `trusted` (a load
    /// balancer's addresses), on control connections and passive data connections alike:
    /// a connection from them must start with a header, and the client it names is the
    /// peer for everything (see [`TrustedProxies`]). Behind a balancer without it, every
    /// client would be the balancer: one address's lockout would lock everyone out.
    pub fn proxy_protocol(mut self, trusted: TrustedProxies) -> Self {
        self.proxies = Some(trusted);
        self
    }

    /// The protocol configuration (policies, timeouts, limits). Its `tls_available` is set
    /// from whether [`tls`](Self::tls) was given.
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// The TLS configuration (see [`ftps_proto::tls`] and [`ftps_backend::files`]).
    pub fn tls(mut self, config: rustls::ServerConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// The ports passive listeners use; by default any free port.
    pub fn passive_ports(mut self, ports: RangeInclusive<u16>) -> Self {
        self.passive_ports = Some(ports);
        self
    }

    /// At most `total` sessions at once, and `per_ip` from one address (421 beyond). An
    /// IPv6 client counts by its /64.
    pub fn max_sessions(mut self, total: usize, per_ip: usize) -> Self {
        self.max_sessions = total;
        self.max_sessions_per_ip = per_ip;
        self
    }

    /// At most `n` sessions waiting to log in (default: `max_sessions`, so only a full
    /// server evicts). Past it — or when the server is full — a new connection evicts the
    /// oldest waiting session of the address with the most of them, so connections that
    /// never log in cannot keep users out. A lower bound keeps
    /// room for logged-in sessions, but evicts logins in progress from a legitimate burst
    /// larger than it.
    pub fn max_sessions_before_login(mut self, n: usize) -> Self {
        self.max_before_login = Some(n);
        self
    }

    /// At most `per_ip` passive listeners open at once for one client address (default
    /// 16; beyond, PASV/EPSV get 425). Each session holds at most one, and one that no
    /// transfer uses within the data-connect timeout is closed.
    pub fn max_passive_listeners_per_ip(mut self, per_ip: usize) -> Self {
        self.max_passive_per_ip = per_ip;
        self
    }

    /// At most `per_user` passive listeners open at once for one user, whatever addresses
    /// its sessions come from (default: a quarter of the [`passive_ports`](Self::passive_ports)
    /// range, at least one; 1024 with no range).
    pub fn max_passive_listeners_per_user(mut self, per_user: usize) -> Self {
        self.max_passive_per_user = Some(per_user);
        self
    }

    /// What transfers' large buffers may hold together, server-wide (default 64 MiB): past
    /// it, transfers use 64 KiB buffers.
    pub fn max_transfer_buffers(mut self, bytes: usize) -> Self {
        self.transfer_buffers = bytes;
        self
    }

    /// Locks an address out for `lock` after `failures` failed logins within `window`
    /// (default: 10 in 10 minutes, 5 minutes).
    pub fn login_lockout(
        mut self,
        failures: u32,
        window: std::time::Duration,
        lock: std::time::Duration,
    ) -> Self {
        self.lockout = Arc::new(LocalLockout::new(failures, window, lock));
        self
    }
}

impl<R, S, A, T> ServerBuilder<R, S, A, T>
where
    S: Storage,
    A: Authenticator,
    T: From<Server<R, S, A>>,
{
    /// Builds the server.
    pub fn build(mut self) -> T {
        self.config.tls_available = self.tls.is_some();
        self.config.storage = self.storage.capabilities();
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let passive_per_user = self.max_passive_per_user.unwrap_or_else(|| {
            self.passive_ports.as_ref().map_or(1024, |r| {
                let span = usize::from(*r.end()).saturating_sub(usize::from(*r.start())) + 1;
                (span / 4).max(1)
            })
        });
        let shared = Arc::new(ServerShared {
            storage: Arc::new(Quoted::new(self.storage)),
            auth: Arc::new(self.auth),
            config: Arc::new(self.config),
            tls: self.tls,
            passive_ports: self.passive_ports,
            limits: SessionLimits::new(
                self.max_sessions,
                self.max_sessions_per_ip,
                self.max_before_login.unwrap_or(self.max_sessions),
            ),
            passive_listeners: ListenerCaps::new(self.max_passive_per_ip, passive_per_user),
            warnings: Arc::default(),
            proxies: self.proxies.map(Arc::new),
            drain: Arc::default(),
            storage_timeout: self.storage_timeout,
            lockout: self.lockout,
            transfer_buffers: Budget::new(self.transfer_buffers),
            login_gate: Arc::new(Gate::new(cores)),
            blocking_gate: Arc::new(Gate::new(
                self.blocking_auth_checks.unwrap_or((2 * cores).max(4)),
            )),
            auth_timeout: self.auth_timeout,
            stat_gate: Gate::new(cores),
            hash_gate: Gate::new(cores),
            hashing: crate::gate::OnePerName::default(),
            hooks: self.hooks.map(HookQueue::new),
        });
        T::from(Server::new(shared))
    }
}
