//! What every runtime's server is built from: [`ServerBuilder`] gathers storage, users,
//! the protocol configuration, TLS, passive ports and session limits into a
//! [`ServerShared`], from which the runtime makes its `Server`.

use crate::{Authenticator, ListenerCaps, LoginGuard, SessionLimits, Storage, Warnings};
use ftps_proto::server::LoginAnswer;
use ftps_proto::server::ServerConfig;
use std::marker::PhantomData;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Builds a runtime's server `T` (`ftps_tokio::Server`, `ftps_blocking::Server`, ...).
pub struct ServerBuilder<S, A, T> {
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
    login_guard: LoginGuard,
    server: PhantomData<fn() -> T>,
}

/// Everything a server's sessions share, read-only.
pub struct ServerShared<S, A> {
    /// The files.
    pub storage: Arc<S>,
    /// The users.
    pub auth: Arc<A>,
    /// The protocol configuration (`tls_available` set from `tls`).
    pub config: Arc<ServerConfig>,
    /// The TLS configuration each session's own configurations are made from.
    pub tls: Option<rustls::ServerConfig>,
    /// The ports passive listeners use; any free port if `None`.
    pub passive_ports: Option<RangeInclusive<u16>>,
    /// Session caps.
    pub limits: Arc<SessionLimits>,
    /// Caps on open passive listeners per client address and per user (each session has
    /// at most one; these bound what one address or one account can hold of a passive
    /// port range).
    pub passive_listeners: Arc<ListenerCaps>,
    /// Warnings a peer can repeat at will, throttled server-wide.
    pub warnings: Arc<Warnings>,
    /// Failed logins per address, across sessions.
    pub login_guard: LoginGuard,
    /// Bounds the password checks running at once (one per core): each Argon2 check takes
    /// about 19 MiB, so a thousand logins arriving together must not run a thousand of
    /// them. The driver enters it around [`check_login`](Self::check_login).
    pub login_gate: Gate,
    /// What transfers' large buffers may hold together (see [`crate::Budget`]): 64 MiB.
    pub transfer_buffers: Arc<crate::Budget>,
    /// Bounds the STAT listings built at once (one per core; each holds up to
    /// [`crate::STAT_ENTRIES`] entries and their reply; hundreds at once held GBs). The
    /// driver enters it around a [`StorageRequest::List`](ftps_proto::server::StorageRequest::List).
    pub stat_gate: Gate,
}

/// A counting semaphore that async and blocking drivers share: at most `n` holders of a
/// [`Permit`] at once. Async code waits in [`enter`](Self::enter) without holding a thread
/// (a thousand logins arriving together must not take a thousand blocking threads);
/// blocking code in [`enter_blocking`](Self::enter_blocking).
#[derive(Debug)]
pub struct Gate {
    tx: async_channel::Sender<()>,
    rx: async_channel::Receiver<()>,
}

/// A place in a [`Gate`], given back when dropped.
#[derive(Debug)]
pub struct Permit<'a>(&'a Gate);

impl Gate {
    /// At most `n` holders (at least one).
    pub fn new(n: usize) -> Gate {
        let (tx, rx) = async_channel::bounded(n.max(1));
        Gate { tx, rx }
    }

    /// Waits for a place.
    pub async fn enter(&self) -> Permit<'_> {
        let _ = self.tx.send(()).await;
        Permit(self)
    }

    /// Waits for a place, blocking the thread.
    pub fn enter_blocking(&self) -> Permit<'_> {
        let _ = self.tx.send_blocking(());
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let _ = self.0.rx.try_recv();
    }
}

impl<S, A: Authenticator> ServerShared<S, A> {
    /// Checks a login (blocking: Argon2), unless its address is locked out after too many
    /// failures; records and logs the outcome.
    pub fn check_login(&self, request: &ftps_proto::server::LoginRequest) -> LoginAnswer {
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

impl<S: Storage, A: Authenticator, T: From<Arc<ServerShared<S, A>>>> ServerBuilder<S, A, T> {
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
            login_guard: LoginGuard::default(),
            server: PhantomData,
        }
    }

    /// The protocol configuration (policies, timeouts, limits). Its `tls_available` is set
    /// from whether [`tls`](Self::tls) was given.
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// The TLS configuration (see [`ftps_proto::tls`] and [`crate::files`]).
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
    /// IPv6 client counts by its /64 (see [`crate::client_key`]).
    pub fn max_sessions(mut self, total: usize, per_ip: usize) -> Self {
        self.max_sessions = total;
        self.max_sessions_per_ip = per_ip;
        self
    }

    /// At most `n` sessions waiting to log in (default: `max_sessions`, so only a full
    /// server evicts). Past it — or when the server is full — a new connection evicts the
    /// oldest waiting session of the address with the most of them, so connections that
    /// never log in cannot keep users out (see [`SessionLimits`]). A lower bound keeps
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

    /// What transfers' large buffers may hold together, server-wide (default 64 MiB; see
    /// [`crate::Budget`]): past it, transfers use 64 KiB buffers.
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
        self.login_guard = LoginGuard::new(failures, window, lock);
        self
    }

    /// Builds the server.
    pub fn build(mut self) -> T {
        self.config.tls_available = self.tls.is_some();
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let passive_per_user = self.max_passive_per_user.unwrap_or_else(|| {
            self.passive_ports.as_ref().map_or(1024, |r| {
                let span = usize::from(*r.end()).saturating_sub(usize::from(*r.start())) + 1;
                (span / 4).max(1)
            })
        });
        T::from(Arc::new(ServerShared {
            storage: Arc::new(self.storage),
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
            login_guard: self.login_guard,
            transfer_buffers: crate::Budget::new(self.transfer_buffers),
            login_gate: Gate::new(cores),
            stat_gate: Gate::new(cores),
        }))
    }
}

/// The data connection an open request of the core names, if any (the file it opens is
/// kept for that connection).
pub fn opened_for(
    request: &ftps_proto::server::StorageRequest,
) -> Option<ftps_proto::server::DataId> {
    use ftps_proto::server::StorageRequest as R;
    match request {
        R::OpenRead { id, .. } | R::OpenWrite { id, .. } | R::OpenListing { id, .. } => Some(*id),
        _ => None,
    }
}

/// What a session tells one of its data connections (every runtime's data task or
/// thread takes these).
pub enum DataOrder<S: Storage> {
    /// Start the connection, with TLS if configurations are given, receiving an upload
    /// at once if one is given (with its TYPE A flag).
    Open {
        /// The data TLS configurations, under PROT P.
        tls: Option<ftps_proto::tls::DataTls>,
        /// An upload to start receiving into at once, with its TYPE A flag.
        early: Option<(S::Upload, bool)>,
    },
    /// Move the bytes: a payload (a listing), or the opened file.
    Transfer {
        /// A listing's bytes.
        payload: Option<Vec<u8>>,
        /// The file opened for this transfer.
        file: Option<crate::OpenedFile<S>>,
        /// TYPE A conversion.
        ascii: bool,
    },
    /// The session's verdict after the data ended: publish an upload or not.
    Finish {
        /// Publish the upload.
        commit: bool,
    },
}

/// What a data connection moves, decided from the session's orders.
pub enum Work<S: Storage> {
    /// Receive an upload into this file.
    Receive(S::Upload),
    /// Send these bytes (a listing).
    SendBytes(Vec<u8>),
    /// Send this file.
    SendFile(S::Reader),
    /// Send this listing, made as it is sent.
    SendListing(crate::ListingReader),
    /// Nothing was given: a failure to report.
    Nothing,
}

impl<S: Storage> Work<S> {
    /// What a data connection does, given the upload opened for it (if any, with its TYPE
    /// A flag) and the session's first order once the connection is up (`None`: the
    /// session dropped it). `None` means the connection was refused or aborted: end it
    /// (an upload, dropped, is discarded).
    ///
    /// An upload is received only on the session's go-ahead (a `Transfer` order), never as
    /// soon as its connection is up: the session may still refuse the connection (TLS
    /// session not resumed, no TLS under PROT P, wrong ALPN, a foreign peer), and an
    /// append or a resumed upload writes in place, so bytes taken before the verdict would
    /// stay in the file (issue 13's second review: a refused APPE still appended).
    pub fn start(
        early: Option<(S::Upload, bool)>,
        first: Option<DataOrder<S>>,
    ) -> Option<(Work<S>, bool)> {
        match (early, first) {
            (Some((up, ascii)), Some(DataOrder::Transfer { .. })) => {
                Some((Work::Receive(up), ascii))
            }
            (Some(_), _) | (None, None) => None,
            (None, Some(order)) => Work::from_order(order),
        }
    }

    /// The work of a `Transfer` order, with its TYPE A flag; `None` for any other order
    /// (which ends the connection).
    pub fn from_order(order: DataOrder<S>) -> Option<(Work<S>, bool)> {
        let DataOrder::Transfer {
            payload,
            file,
            ascii,
        } = order
        else {
            return None;
        };
        let work = match (file, payload) {
            (Some(crate::Opened::Write(up)), _) => Work::Receive(up),
            (_, Some(bytes)) => Work::SendBytes(bytes),
            (Some(crate::Opened::Read(r)), None) => Work::SendFile(r),
            (Some(crate::Opened::Listing(l)), None) => Work::SendListing(l),
            (None, None) => Work::Nothing,
        };
        Some((work, ascii))
    }
}

/// Counts a transfer's bytes and says when to report progress (the session's stall timer
/// runs on those reports): after 8 MiB, or a quarter second after the last report if any byte moved — so a
/// transfer stalls only when no byte moves for the stall time, however slow it is.
#[derive(Debug)]
pub struct Meter {
    total: u64,
    reported: u64,
    at: Instant,
}

impl Default for Meter {
    fn default() -> Self {
        Meter {
            total: 0,
            reported: 0,
            at: Instant::now(),
        }
    }
}

impl Meter {
    const EVERY: u64 = 8 * 1024 * 1024;
    /// Well under any sensible stall time (a second or more), cheap (four events a second).
    const AT_LEAST_EVERY: Duration = Duration::from_millis(250);

    /// Counts `n` more bytes; returns the total when a progress report is due.
    pub fn add(&mut self, n: usize) -> Option<u64> {
        self.total += n as u64;
        let moved = self.total - self.reported;
        if moved == 0 {
            return None;
        }
        let due = moved >= Self::EVERY || self.at.elapsed() >= Self::AT_LEAST_EVERY;
        due.then(|| {
            self.reported = self.total;
            self.at = Instant::now();
            self.total
        })
    }

    /// Part of a chunk (counted later by [`add`](Self::add)) moved: returns the total when
    /// a report is due by time, so a chunk that takes long to write still shows progress.
    pub fn moved(&mut self) -> Option<u64> {
        (self.at.elapsed() >= Self::AT_LEAST_EVERY).then(|| {
            self.reported = self.total;
            self.at = Instant::now();
            self.total
        })
    }

    /// The bytes counted.
    pub fn total(&self) -> u64 {
        self.total
    }
}

/// How an upload's data connection ended, from the error its read gave: rustls reports a
/// TCP close without close_notify as `UnexpectedEof`, which the core judges (the upload
/// may be cut short); anything else is a failed connection.
pub fn upload_read_end(e: &std::io::Error, tls: bool) -> ftps_proto::server::DataEnd {
    use ftps_proto::server::DataEnd;
    if tls && e.kind() == std::io::ErrorKind::UnexpectedEof {
        DataEnd::Complete {
            close_notify: false,
        }
    } else {
        DataEnd::Failed(e.to_string())
    }
}

/// The storage error for a failed read of what a download sends (a file, or a listing
/// cut at the session's bound: [`crate::ListingCut`]).
pub fn read_error(e: &std::io::Error) -> ftps_proto::server::StorageError {
    use ftps_proto::server::StorageError;
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<crate::ListingCut>())
    {
        Some(cut) => StorageError::ListingTooLong { max: cut.max },
        None => StorageError::Other(format!("reading the file: {e}")),
    }
}

/// The storage error for a failed write of an upload.
pub fn write_error(e: &std::io::Error) -> ftps_proto::server::StorageError {
    use ftps_proto::server::StorageError;
    match e.kind() {
        std::io::ErrorKind::StorageFull => StorageError::InsufficientStorage,
        std::io::ErrorKind::QuotaExceeded => StorageError::QuotaExceeded,
        _ => StorageError::Other(e.to_string()),
    }
}
