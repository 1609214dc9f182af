//! # ftps-tokio
//!
//! An FTPS server and client (FTP over TLS, explicit and implicit) on tokio and rustls.
//! Every protocol decision is made by [`ftps_proto::ServerSession`] and
//! [`ftps_proto::ClientSession`]; [`ftps_async`] runs them over any runtime, and this
//! crate binds it to tokio.
//!
//! ```no_run
//! use ftps_proto::server::{ServerConfig, TlsMode};
//! use ftps_tokio::{LocalFs, Server, StaticUsers, tls};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let tls = tls::server_config_from_pem_files("cert.pem".as_ref(), "key.pem".as_ref())?;
//! let server = Server::builder(LocalFs::new("./ftp-root")?, StaticUsers::new().with_password("alice", "secret"))
//!     .config(ServerConfig::default()) // TLS required on control and data, session reuse checked
//!     .tls(tls)
//!     .passive_ports(50000..=50100)
//!     .build();
//! let explicit = tokio::net::TcpListener::bind("127.0.0.1:2121").await?;
//! let implicit = tokio::net::TcpListener::bind("127.0.0.1:9990").await?;
//! tokio::try_join!(server.serve(explicit, TlsMode::Explicit), server.serve(implicit, TlsMode::Implicit))?;
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
mod runtime;
pub mod tls;

#[cfg(feature = "client")]
pub use client::{Client, ClientOptions, DataReader, DataWriter, FtpUrl, PlaintextOffer, Target};
#[cfg(feature = "server")]
pub use ftps_async::{ConnectionInfo, TrustedProxies};
pub use ftps_backend::download;
/// Hashing local files the way the server hashes stored ones (checking a download
/// against `Client::hash`).
pub use ftps_backend::hash;
#[cfg(feature = "server")]
pub use ftps_backend::{
    Authenticator, BadHash, BlockingAuthenticator, BlockingStorage, Check, LocalFs, LocalUpload,
    Quota, StaticUsers, Storage, Unblocked, User, Verdict, hash_password,
};
/// The protocol core (codec, sessions, TLS configurations: `proto::tls`), as this crate
/// was built with it.
pub use ftps_proto as proto;
pub use runtime::{Tcp, Tokio};

#[cfg(feature = "server")]
/// The FTPS server on tokio: [`ftps_async::Server`] on the [`Tokio`] runtime. Sessions
/// and data connections are tokio tasks; storage calls and password checks run on the
/// blocking pool.
pub type Server<S, A> = ftps_async::Server<Tokio, S, A>;

#[cfg(feature = "server")]
/// Builds a [`Server`].
pub type ServerBuilder<S, A> = ftps_async::ServerBuilder<Tokio, S, A>;

#[cfg(feature = "server")]
/// A [`BlockingStorage`] run on tokio's blocking pool: what [`Server::builder`] serves
/// (`Server<OnPool<LocalFs>, StaticUsers>`).
pub type OnPool<S> = ftps_async::OnPool<Tokio, S>;

/// The README's examples, compiled and run as doctests.
#[cfg(all(doctest, feature = "client", feature = "server"))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
