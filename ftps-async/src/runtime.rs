//! What the client and server need from an async runtime: TCP, a timer, tasks, a
//! blocking pool and files. `ftps-smol` and `ftps-tokio` implement it; everything else is
//! written once, here.

use futures_io::{AsyncRead, AsyncSeek, AsyncWrite};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// Shuts a stream (or listener) down from anywhere — an eviction, an abort, the end of
/// a session: its socket calls under way fail at once. Where a runtime's socket is a
/// shared handle, it holds no descriptor of its own.
pub type Closer = std::sync::Arc<dyn Fn() + Send + Sync>;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An async runtime, as the client and server use it.
pub trait Runtime: Send + Sync + 'static {
    /// A connected TCP stream.
    type Tcp: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static;
    /// A listening TCP socket.
    type Listener: Send + Sync + 'static;
    /// A spawned task: awaiting it gives its output; dropping it cancels it.
    type Task<T: Send + 'static>: Future<Output = T> + Unpin + Send + 'static;
    /// The reading half of a [`Tcp`](Self::Tcp) stream.
    type ReadHalf: AsyncRead + Unpin + Send + 'static;
    /// The writing half of a [`Tcp`](Self::Tcp) stream.
    type WriteHalf: AsyncWrite + Unpin + Send + Sync + 'static;
    /// A local file.
    type File: AsyncRead + AsyncWrite + AsyncSeek + Unpin + Send + 'static;

    /// Connects to `addr`; from the local address `from` if given (bound before the
    /// connect, port chosen by the system; see [`crate::bound_socket`]), else from
    /// whichever the system's routes choose.
    fn connect(addr: SocketAddr, from: Option<IpAddr>)
    -> BoxFuture<'static, io::Result<Self::Tcp>>;
    /// Connects to `host:port` (resolving the name), from whichever local address the
    /// system's routes choose. [`connect_named`] adds a chosen one.
    fn connect_host(host: String, port: u16) -> BoxFuture<'static, io::Result<Self::Tcp>>;
    /// Binds a listener.
    fn bind(addr: SocketAddr) -> BoxFuture<'static, io::Result<Self::Listener>>;
    /// Accepts a connection.
    fn accept(listener: &Self::Listener) -> BoxFuture<'_, io::Result<(Self::Tcp, SocketAddr)>>;
    /// Splits a stream into halves that two tasks can use at once.
    fn split(tcp: Self::Tcp) -> io::Result<(Self::ReadHalf, Self::WriteHalf)>;
    /// A [`Closer`] for a stream.
    fn closer(tcp: &Self::Tcp) -> io::Result<Closer>;
    /// A [`Closer`] for a listener (its accept under way ends).
    fn listener_closer(listener: &Self::Listener) -> io::Result<Closer>;
    /// The address a listener is bound to.
    fn listener_addr(listener: &Self::Listener) -> io::Result<SocketAddr>;
    /// A stream's (local, peer) addresses.
    fn addrs(tcp: &Self::Tcp) -> io::Result<(SocketAddr, SocketAddr)>;
    /// Disables Nagle's algorithm.
    fn set_nodelay(tcp: &Self::Tcp) -> io::Result<()>;
    /// The stream's socket, for socket options.
    fn socket(tcp: &Self::Tcp) -> socket2::SockRef<'_>;
    /// Completes at `deadline`.
    fn sleep_until(deadline: Instant) -> BoxFuture<'static, ()>;
    /// Runs `future` as a task of its own.
    fn spawn<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> Self::Task<T>;
    /// Runs `future` as a task of its own, detached: it runs to its end on its own.
    fn spawn_detached(future: impl Future<Output = ()> + Send + 'static);
    /// Runs `f` on the runtime's blocking pool.
    fn unblock<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> BoxFuture<'static, T>;
    /// Runs `f` apart from the task that awaits it, so that a timeout around the wait ends
    /// the wait while `f` goes on (a login check that hangs on a service). The default is
    /// [`unblock`](Self::unblock), whose pool runs `f` apart already; a runtime whose
    /// `unblock` runs `f` inline runs it on a thread of its own here.
    fn unblock_apart<T: Send + 'static>(
        f: impl FnOnce() -> T + Send + 'static,
    ) -> BoxFuture<'static, T> {
        Self::unblock(f)
    }
    /// The largest file read a download makes at once (reads start at 64 KiB and double
    /// up to it). Where each read is a handoff to a blocking pool, few large ones cost
    /// less (fixed 1 MiB reads gave our client about 1.5 GB/s where 256 KiB gave 1.2, and
    /// curl 1.1 where 256 KiB gave 1.0: medians of alternating `ftps-bench fetch` and curl
    /// runs against one tokio server here); a runtime that reads inline wants less.
    const SEND_CHUNK_MAX: usize = 1024 * 1024;
    /// Lets the runtime run other tasks after work that did not wait (a download's chunk
    /// read at once, see [`OnPool`](crate::OnPool)): without it, a download whose socket
    /// never fills keeps its thread until it ends. The default yields every time; tokio
    /// yields only once the task's cooperative budget is spent, so the task stays on the
    /// core that holds the bytes it just read (a yield per 1 MiB chunk cost the tokio
    /// server 2-10 % more CPU per GiB than no pause, in three batches of 8-12 interleaved
    /// downloads, medians; the budget cost nothing measurable).
    fn pause() -> impl Future<Output = ()> + Send {
        futures_lite::future::yield_now()
    }
    /// A local file opened already (with `std`), for async IO.
    fn file_from_std(file: std::fs::File) -> Self::File;
    /// Opens a local file: to read, or to write (created; truncated if `truncate`), on
    /// the blocking pool.
    fn open_file(
        path: PathBuf,
        write: bool,
        truncate: bool,
    ) -> BoxFuture<'static, io::Result<Self::File>> {
        Box::pin(async move {
            let opened = Self::unblock(move || {
                std::fs::OpenOptions::new()
                    .read(!write)
                    .write(write)
                    .create(write)
                    .truncate(write && truncate)
                    .open(path)
            });
            Ok(Self::file_from_std(opened.await?))
        })
    }

    /// Runs one poll of a socket with `deadline` in force: on a runtime whose socket calls
    /// block, a call in it that would wait past the deadline fails with `TimedOut`. On an
    /// async runtime (the default) calls never wait, and `poll` runs as it is: its
    /// deadlines are timers.
    fn poll_until<T>(deadline: Instant, poll: impl FnOnce() -> T) -> T {
        let _ = deadline;
        poll()
    }

    /// Runs `future` for at most `limit`. The default races it against
    /// [`sleep_until`](Self::sleep_until); a runtime whose socket calls block (and so
    /// cannot be raced) bounds them by the deadline instead.
    fn timeout<T>(
        limit: Duration,
        future: impl Future<Output = T> + Send,
    ) -> impl Future<Output = Result<T, Elapsed>> + Send {
        let deadline = Instant::now() + limit;
        futures_lite::future::or(async { Ok(future.await) }, async move {
            Self::sleep_until(deadline).await;
            Err(Elapsed)
        })
    }
}

/// What [`timeout`] gives when time ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// Runs `future` for at most `limit` (see [`Runtime::timeout`]).
pub async fn timeout<R: Runtime, T>(
    limit: Duration,
    future: impl Future<Output = T> + Send,
) -> Result<T, Elapsed> {
    R::timeout(limit, future).await
}

/// Connects to `host:port` from the local address `from` if given: the name resolved (on
/// the blocking pool), then its addresses of `from`'s family tried in order, the first
/// that connects kept (an IPv4 source cannot reach an IPv6 address, nor the reverse); an
/// IP address is connected to as it is.
/// Without `from`, [`Runtime::connect_host`].
pub async fn connect_named<R: Runtime>(
    host: String,
    port: u16,
    from: Option<IpAddr>,
) -> io::Result<R::Tcp> {
    let Some(from) = from else {
        return R::connect_host(host, port).await;
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return R::connect(SocketAddr::new(ip, port), Some(from)).await;
    }
    let name = host.clone();
    let resolved =
        R::unblock(move || (name.as_str(), port).to_socket_addrs().map(Vec::from_iter)).await?;
    let mut last = io::Error::new(
        io::ErrorKind::AddrNotAvailable,
        format!(
            "{host} has no {} address to reach from {from}",
            if from.is_ipv4() { "IPv4" } else { "IPv6" }
        ),
    );
    for addr in resolved
        .into_iter()
        .filter(|a| a.is_ipv4() == from.is_ipv4())
    {
        match R::connect(addr, Some(from)).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = e,
        }
    }
    Err(last)
}
