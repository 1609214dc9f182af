//! # ftps-smol
//!
//! The FTPS client and server on smol: [`ftps_async`]'s runtime-independent client and
//! server bound to smol's
//! sockets, timer, tasks and blocking pool (the server's sessions and data connections
//! are tasks on smol's global executor). Its futures and data streams
//! (`futures_io::AsyncRead` / `AsyncWrite`) run under any executor that drives
//! async-io, async-std's included (async-std is discontinued, RUSTSEC-2025-0052; it is
//! only a dev-dependency here, for the test that proves the compatibility).
//!
//! ```no_run
//! use ftps_smol::{Client, ClientOptions};
//!
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! smol::block_on(async {
//!     let mut client = Client::connect(ClientOptions::new("ftp.example.com", 21, "alice", "secret")?).await?;
//!     for entry in client.list(None).await? {
//!         println!("{} {:?}", entry.name, entry.size);
//!     }
//!     client.quit().await?;
//!     Ok(())
//! })
//! # }
//! ```

//!
//! Features: `client` and `server` (both on by default) build each half; a client-only
//! build (`default-features = false, features = ["client", "aws-lc-rs"]`) compiles no
//! server code and no Argon2, and builds where `std::os::unix` does not exist (the server
//! is Unix-only). `aws-lc-rs` (default) or `ring` choose the crypto provider used when
//! the process installed none.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use ftps_async::runtime::{BoxFuture, Closer, Runtime};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

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

/// The smol runtime, for [`ftps_async`].
#[derive(Debug, Clone, Copy)]
pub struct Smol;

#[cfg(feature = "client")]
/// The FTPS client on smol.
pub type Client = ftps_async::Client<Smol>;
#[cfg(feature = "client")]
/// A download's data stream.
pub type DataReader<'c> = ftps_async::DataReader<'c, Smol>;
#[cfg(feature = "client")]
/// An upload's data stream.
pub type DataWriter<'c> = ftps_async::DataWriter<'c, Smol>;
#[cfg(feature = "client")]
/// Explicit-if-available found no TLS.
pub type PlaintextOffer = ftps_async::PlaintextOffer<Smol>;
#[cfg(feature = "client")]
/// Why a client call failed.
pub type Error = ftps_async::client::Error<Smol>;
#[cfg(feature = "server")]
/// The FTPS server on smol.
pub type Server<S, A> = ftps_async::Server<Smol, S, A>;
#[cfg(feature = "server")]
/// Builds a [`Server`].
pub type ServerBuilder<S, A> = ftps_async::ServerBuilder<Smol, S, A>;
#[cfg(feature = "server")]
/// A [`BlockingStorage`] run on smol's blocking pool: what [`Server::builder`] serves
/// (`Server<OnPool<LocalFs>, StaticUsers>`).
pub type OnPool<S> = ftps_async::OnPool<Smol, S>;

impl Runtime for Smol {
    type Tcp = smol::net::TcpStream;
    type Listener = smol::net::TcpListener;
    type Task<T: Send + 'static> = smol::Task<T>;
    type ReadHalf = smol::net::TcpStream;
    type WriteHalf = smol::net::TcpStream;
    type File = smol::fs::File;

    fn split(tcp: Self::Tcp) -> io::Result<(Self::ReadHalf, Self::WriteHalf)> {
        // smol's stream is a shared handle: a clone reads and writes the same socket.
        Ok((tcp.clone(), tcp))
    }

    fn closer(tcp: &Self::Tcp) -> io::Result<Closer> {
        // A clone shares the socket.
        let tcp = tcp.clone();
        Ok(std::sync::Arc::new(move || {
            let _ = tcp.shutdown(std::net::Shutdown::Both);
        }))
    }

    fn listener_closer(listener: &Self::Listener) -> io::Result<Closer> {
        let listener = listener.clone();
        Ok(std::sync::Arc::new(move || {
            let _ = socket2::SockRef::from(&listener).shutdown(std::net::Shutdown::Both);
        }))
    }

    fn connect(
        addr: SocketAddr,
        from: Option<IpAddr>,
    ) -> BoxFuture<'static, io::Result<Self::Tcp>> {
        match from {
            None => Box::pin(smol::net::TcpStream::connect(addr)),
            Some(from) => Box::pin(connect_from(addr, from)),
        }
    }

    fn connect_host(host: String, port: u16) -> BoxFuture<'static, io::Result<Self::Tcp>> {
        Box::pin(async move { smol::net::TcpStream::connect((host.as_str(), port)).await })
    }

    fn bind(addr: SocketAddr) -> BoxFuture<'static, io::Result<Self::Listener>> {
        Box::pin(smol::net::TcpListener::bind(addr))
    }

    fn accept(listener: &Self::Listener) -> BoxFuture<'_, io::Result<(Self::Tcp, SocketAddr)>> {
        Box::pin(listener.accept())
    }

    fn listener_addr(listener: &Self::Listener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    fn addrs(tcp: &Self::Tcp) -> io::Result<(SocketAddr, SocketAddr)> {
        Ok((tcp.local_addr()?, tcp.peer_addr()?))
    }

    fn set_nodelay(tcp: &Self::Tcp) -> io::Result<()> {
        tcp.set_nodelay(true)
    }

    fn socket(tcp: &Self::Tcp) -> socket2::SockRef<'_> {
        socket2::SockRef::from(tcp)
    }

    fn sleep_until(deadline: Instant) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            smol::Timer::at(deadline).await;
        })
    }

    fn spawn<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> Self::Task<T> {
        smol::spawn(future)
    }

    fn spawn_detached(future: impl Future<Output = ()> + Send + 'static) {
        smol::spawn(future).detach();
    }

    fn unblock<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> BoxFuture<'static, T> {
        Box::pin(smol::unblock(f))
    }

    fn file_from_std(file: std::fs::File) -> Self::File {
        smol::fs::File::from(file)
    }
}

/// Connects to `addr` from `from`: a bound socket, connected without blocking, then
/// awaited until writable (the connect's outcome is then its pending error, if any).
async fn connect_from(addr: SocketAddr, from: IpAddr) -> io::Result<smol::net::TcpStream> {
    let socket = ftps_async::bound_socket(addr, from)?;
    socket.set_nonblocking(true)?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock || in_progress(&e) => {}
        Err(e) => return Err(e),
    }
    let stream = smol::Async::new(std::net::TcpStream::from(socket))?;
    stream.writable().await?;
    if let Some(e) = stream.get_ref().take_error()? {
        return Err(e);
    }
    // Writable without a pending error, yet not connected: refused and the error read
    // already by someone else; `peer_addr` says so.
    stream.get_ref().peer_addr()?;
    Ok(smol::net::TcpStream::from(stream))
}

/// Whether a non-blocking connect's error only says it goes on (`EINPROGRESS`, which
/// `std` does not yet name on stable).
#[cfg(unix)]
fn in_progress(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINPROGRESS)
}

/// Whether a non-blocking connect's error only says it goes on (Windows says
/// `WSAEWOULDBLOCK`, which is `WouldBlock`).
#[cfg(not(unix))]
fn in_progress(_: &io::Error) -> bool {
    false
}
