//! # ftps-blocking
//!
//! An FTPS client and server (FTP over TLS, explicit and implicit) on std threads and
//! blocking sockets, for programs without an async runtime. Every protocol decision is
//! made by [`ftps_proto::ServerSession`] and [`ftps_proto::ClientSession`], and every
//! piece of session bookkeeping by the one driver in [`ftps_async`], shared with the
//! tokio and smol crates; this crate only supplies [`threads::Threads`], the runtime it
//! runs on: a thread per task (the server: per session, per control reader and per data
//! connection; the client: the caller's thread, plus its control reader and data
//! connections being set up), blocking socket calls bounded by deadlines, one timer
//! thread. No async runtime (no reactor, no executor pool) is pulled in.
//!
//! ```no_run
//! use ftps_blocking::{Client, ClientOptions, LocalFs, Server, StaticUsers};
//! use ftps_proto::server::TlsMode;
//!
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let tls = ftps_backend::files::server_config_from_pem_files("cert.pem".as_ref(), "key.pem".as_ref())?;
//! let server = Server::builder(LocalFs::new("./ftp-root")?, StaticUsers::new().with_password("alice", "secret"))
//!     .tls(tls)
//!     .build();
//! let listener = std::net::TcpListener::bind("127.0.0.1:2121")?;
//! std::thread::spawn(move || server.serve(listener, TlsMode::Explicit));
//!
//! let mut options = ClientOptions::new("localhost", 2121, "alice", "secret")?;
//! options.tls = Some(std::sync::Arc::new(ftps_backend::files::client_config_from_pem_file("cert.pem".as_ref())?));
//! let mut client = Client::connect(options)?;
//! let mut data = Vec::new();
//! client.retrieve("notes.txt", 0, &mut data)?;
//! client.quit()?;
//! # Ok(()) }
//! ```

//!
//! Features: `client` and `server` (both on by default) build each half; a client-only
//! build (`default-features = false, features = ["client", "aws-lc-rs"]`) compiles no
//! server code and no Argon2, and builds where `std::os::unix` does not exist (the server
//! is Unix-only). `aws-lc-rs` (default) or `ring` choose the crypto provider used when
//! the process installed none.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "server")]
mod server;
pub mod threads;

#[cfg(feature = "client")]
pub use client::{Client, DataReader, DataWriter, PlaintextOffer};
/// What a listing or STAT names: text, bytes, a `Pathname`, or `None`.
#[cfg(feature = "client")]
pub use ftps_async::client::ListTarget;
#[cfg(feature = "server")]
pub use ftps_async::{ConnectionInfo, TrustedProxies};
pub use ftps_backend::client::{ClientOptions, FtpUrl, report};
pub use ftps_backend::download;
/// Hashing local files the way the server hashes stored ones (checking a download
/// against `Client::hash`).
pub use ftps_backend::hash;
#[cfg(feature = "server")]
pub use ftps_backend::{
    Authenticator, BlockingAuthenticator, BlockingStorage, Check, LocalFs, Quota, StaticUsers,
    Storage, Unblocked, User, Verdict,
};
/// The protocol core (codec, sessions, TLS configurations: `proto::tls`), as this crate
/// was built with it.
pub use ftps_proto as proto;
pub use ftps_proto::client::listing::Listing;
#[cfg(feature = "server")]
pub use server::{Server, ServerBuilder};
#[cfg(feature = "server")]
/// A [`BlockingStorage`] as the server runs it: what [`Server::builder`] serves
/// (`Server<OnPool<LocalFs>, StaticUsers>`); on threads, its calls run on the session's.
pub type OnPool<S> = ftps_async::OnPool<threads::Threads, S>;
