//! # ftps-conformance
//!
//! One conformance suite for every runtime: [`run`] drives a [`ClientRuntime`] against a
//! [`ServerRuntime`] through every operation, in every mode the case names. The runtime
//! crates' clients and servers are wrapped behind two small object-safe traits
//! ([`runtimes`]), so the suite is written once and the test matrix
//! (`tests/matrix.rs`) instantiates it for each pair. [`scripted`] is a small FTPS server
//! that ends data connections in a chosen order, for the clients' tests of what real
//! servers do there (`tests/data_endings.rs`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod balancer;
pub mod garage;
pub mod hostile;
pub mod memory;
pub mod peers;
pub mod quota;
pub mod raw;
pub mod redis;
pub mod runtimes;
pub mod scripted;
pub mod storage;
mod suite;

pub use suite::{Case, Fixture, behaviours, run};

use ftps_backend::client::ClientOptions;
use ftps_proto::server::ServerConfig;
use std::net::SocketAddr;
use std::path::PathBuf;

/// What went wrong, in words (the suite reports, it does not recover).
pub type Failure = String;

/// A connected client session of some runtime, with blocking calls.
pub trait Session {
    /// STOR (at `offset`) or APPE; the bytes sent.
    fn store(&mut self, path: &str, data: &[u8], offset: u64, append: bool)
    -> Result<u64, Failure>;
    /// RETR from `offset`.
    fn retrieve(&mut self, path: &str, offset: u64) -> Result<Vec<u8>, Failure>;
    /// A download through the runtime's data-stream type, read to the end and finished.
    fn retrieve_streamed(&mut self, path: &str) -> Result<Vec<u8>, Failure>;
    /// An upload through the runtime's data-stream type, finished.
    fn store_streamed(&mut self, path: &str, data: &[u8]) -> Result<u64, Failure>;
    /// `get_file`: downloads `path` into the local file `local` (continuing it if
    /// `resume`).
    fn get_file(
        &mut self,
        path: &str,
        local: &std::path::Path,
        resume: bool,
    ) -> Result<u64, Failure>;
    /// Starts a download, reads `first` bytes, aborts (ABOR).
    fn abort_download(&mut self, path: &str, first: usize) -> Result<(), Failure>;
    /// NLST names.
    fn nlst(&mut self) -> Result<Vec<ftps_proto::Pathname>, Failure>;
    /// LIST, parsed: the names.
    fn list(&mut self) -> Result<Vec<String>, Failure>;
    /// MLSD, parsed: (name, size).
    fn mlsd(&mut self) -> Result<Vec<(String, Option<u64>)>, Failure>;
    /// SIZE.
    fn size(&mut self, path: &str) -> Result<u64, Failure>;
    /// MDTM, as `YYYYMMDDHHMMSS`.
    fn modified(&mut self, path: &str) -> Result<String, Failure>;
    /// MKD.
    fn mkdir(&mut self, path: &str) -> Result<(), Failure>;
    /// RMD.
    fn rmdir(&mut self, path: &str) -> Result<(), Failure>;
    /// DELE.
    fn delete(&mut self, path: &str) -> Result<(), Failure>;
    /// RNFR + RNTO.
    fn rename(&mut self, from: &str, to: &str) -> Result<(), Failure>;
    /// CWD.
    fn cwd(&mut self, path: &str) -> Result<(), Failure>;
    /// PWD.
    fn pwd(&mut self) -> Result<String, Failure>;
    /// Whether the control connection is protected.
    fn is_secure(&self) -> bool;
    /// QUIT.
    fn quit(self: Box<Self>) -> Result<(), Failure>;
}

/// A runtime's client.
pub trait ClientRuntime {
    /// The runtime's name, for messages.
    fn name(&self) -> &'static str;
    /// Connects and logs in.
    fn connect(&self, options: ClientOptions) -> Result<Box<dyn Session>, Failure>;
}

/// What a server serves.
pub struct ServerSetup {
    /// The directory served.
    pub root: PathBuf,
    /// The protocol configuration.
    pub config: ServerConfig,
    /// The TLS configuration.
    pub tls: rustls::ServerConfig,
    /// One user: name and password.
    pub user: (String, String),
    /// Session caps: in total, and per client address.
    pub max_sessions: (usize, usize),
    /// Failed-login lockout per address: failures, window, lock time (the default if
    /// `None`).
    pub login_lockout: Option<(u32, std::time::Duration, std::time::Duration)>,
    /// A byte limit on each upload, to simulate a full disk (none if `None`).
    pub upload_quota: Option<u64>,
    /// Listings fail after this many entries (a storage failing part-way).
    pub listing_fails_after: Option<usize>,
    /// Sessions waiting to log in, at most (the builder's default if `None`).
    pub max_sessions_before_login: Option<usize>,
    /// Passive listeners per user, at most (the builder's default if `None`).
    pub max_passive_per_user: Option<usize>,
    /// The passive port range (any free port if `None`).
    pub passive_ports: Option<std::ops::RangeInclusive<u16>>,
    /// The transfers' buffer budget (the builder's default if `None`).
    pub transfer_buffers: Option<usize>,
    /// More users, with their homes and permissions, and their passwords.
    pub users: Vec<(ftps_backend::User, String)>,
    /// Every login check waits this long, as one asking a slow service would, instead of
    /// hashing ([`SuiteAuth`](crate::auth::SuiteAuth)); `None`: Argon2id hashes.
    pub auth_wait: Option<std::time::Duration>,
    /// With [`auth_wait`](Self::auth_wait): the check blocks its thread for the wait
    /// ([`Check::Blocking`](ftps_backend::Check::Blocking), a synchronous directory
    /// client) instead of awaiting a timer.
    pub auth_blocking: bool,
    /// The server's authentication timeout (the builder's default if `None`).
    pub auth_timeout: Option<std::time::Duration>,
    /// Blocking login checks at once, at most (the builder's default if `None`).
    pub blocking_auth_checks: Option<usize>,
    /// The application's hooks, told what users do (none if `None`).
    pub hooks: Option<std::sync::Arc<dyn ftps_backend::Hooks>>,
    /// Serve this async storage (`Server::builder_async`) instead of `root` through
    /// `LocalFs` on the blocking pool.
    pub memory: Option<memory::MemoryStorage>,
    /// The balancers trusted to send a PROXY header (none if `None`).
    pub proxies: Option<ftps_async::TrustedProxies>,
    /// How long one storage call may take (the builder's default if `None`).
    pub storage_timeout: Option<std::time::Duration>,
}

/// A server of some runtime, serving explicit and implicit FTPS until dropped.
pub trait RunningServer {
    /// The explicit-FTPS listener.
    fn explicit(&self) -> SocketAddr;
    /// The implicit-FTPS listener.
    fn implicit(&self) -> SocketAddr;
    /// Drains the server (`Server::drain`): how many sessions had to be closed.
    fn drain(&self, grace: std::time::Duration) -> usize;
}

/// A runtime's server.
pub trait ServerRuntime {
    /// The runtime's name, for messages.
    fn name(&self) -> &'static str;
    /// Starts serving `setup` on two loopback listeners.
    fn start(&self, setup: ServerSetup) -> Box<dyn RunningServer>;
}
