//! [`Threads`]: std threads and blocking sockets as an [`ftps_async`] runtime, so that
//! the one client and server driver runs here too. No reactor and no executor pool:
//!
//! - a task is a thread, its future run by a parking `block_on`;
//! - a socket read, write, connect or accept blocks its thread; it never returns
//!   `Pending`, so the driver never races IO against anything on this runtime;
//! - a [`Runtime::timeout`] is a deadline on the task's thread that every blocking socket
//!   call under it honours (as `SO_RCVTIMEO`/`SO_SNDTIMEO`, `TimedOut` once it passes),
//!   and a timer for what waits on channels;
//! - timers are one thread that wakes sleeping futures at their deadline;
//! - work for the "blocking pool" runs inline: the task's thread is the pool.

use ftps_async::runtime::{BoxFuture, Closer, Elapsed, Runtime};
use futures_io::{AsyncRead, AsyncSeek, AsyncWrite};
use std::cell::Cell;
use std::future::Future;
use std::io::{self, Read, Seek, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The std-threads runtime (see the module doc).
#[derive(Debug, Clone, Copy)]
pub struct Threads;

thread_local! {
    /// The nearest deadline of the [`Runtime::timeout`]s the task's current poll is under.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// How long a blocking call under the current deadline may wait; `TimedOut` if it has
/// passed.
fn time_left() -> io::Result<Option<Duration>> {
    match DEADLINE.get() {
        None => Ok(None),
        Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(Some(left)),
            _ => Err(io::ErrorKind::TimedOut.into()),
        },
    }
}

/// Runs `future` to its end on this thread.
pub(crate) fn block_on<T>(future: impl Future<Output = T>) -> T {
    futures_lite::future::block_on(future)
}

/// A TCP stream whose calls block (bounded by the task's deadline, if any).
#[derive(Debug)]
pub struct Tcp {
    /// Shared by the halves of a split stream and its closer.
    tcp: Arc<TcpStream>,
    /// The read timeout set on the socket now, in nanoseconds (0: none).
    read_timeout: AtomicU64,
    /// The same for writes. Reads and writes keep their own: the halves of a split
    /// stream share one socket, and one half's deadline must not bound the other's calls.
    write_timeout: AtomicU64,
}

impl Tcp {
    pub(crate) fn new(tcp: TcpStream) -> Tcp {
        Self::shared(Arc::new(tcp))
    }

    fn shared(tcp: Arc<TcpStream>) -> Tcp {
        Tcp {
            tcp,
            read_timeout: AtomicU64::new(0),
            write_timeout: AtomicU64::new(0),
        }
    }

    /// Sets the socket's timeout for the next call (`set`: the read or the write one) so
    /// that the call cannot block past the current deadline, and leaves it as it is where
    /// it already does that: a stream read chunk by chunk under a deadline renewed on
    /// each (the stall bound) costs no syscall a chunk. A timeout set shorter than what
    /// is left only ends a wait early ([`Tcp::call`] then calls again); one under half
    /// of it is set anew, so that a call wakes early at most once.
    fn bound(
        current: &AtomicU64,
        set: impl FnOnce(Option<Duration>) -> io::Result<()>,
    ) -> io::Result<()> {
        let set_now = current.load(Ordering::Relaxed);
        let wanted = match time_left()? {
            None if set_now == 0 => return Ok(()),
            None => None,
            Some(left) => {
                let left_ns = u64::try_from(left.as_nanos()).unwrap_or(u64::MAX).max(1);
                if set_now != 0 && set_now <= left_ns && set_now >= left_ns / 2 {
                    return Ok(());
                }
                Some(left_ns)
            }
        };
        set(wanted.map(Duration::from_nanos))?;
        current.store(wanted.unwrap_or(0), Ordering::Relaxed);
        Ok(())
    }

    /// One blocking call under the current deadline (see [`Tcp::bound`]): a wait the
    /// socket's timeout ended before the deadline is called again; past the deadline it
    /// is `TimedOut`.
    fn call<T>(
        current: &AtomicU64,
        set: impl Fn(Option<Duration>) -> io::Result<()>,
        mut call: impl FnMut() -> io::Result<T>,
    ) -> io::Result<T> {
        loop {
            Tcp::bound(current, &set)?;
            match call() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if time_left()?.is_none() {
                        // A timeout without a deadline: not ours; the socket says so.
                        return Err(e);
                    }
                }
                other => return other,
            }
        }
    }
}

impl AsyncRead for Tcp {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        Poll::Ready(Tcp::call(
            &this.read_timeout,
            |t| this.tcp.set_read_timeout(t),
            || (&*this.tcp).read(buf),
        ))
    }
}

impl AsyncWrite for Tcp {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        Poll::Ready(Tcp::call(
            &this.write_timeout,
            |t| this.tcp.set_write_timeout(t),
            || (&*this.tcp).write(buf),
        ))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        Poll::Ready(Tcp::call(
            &this.write_timeout,
            |t| this.tcp.set_write_timeout(t),
            || (&*this.tcp).write_vectored(bufs),
        ))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.tcp.shutdown(std::net::Shutdown::Write))
    }
}

/// A file, or a caller's reader or writer, as async IO: every call runs inline.
#[derive(Debug)]
pub struct Inline<T>(pub T);

/// A local file.
pub type File = Inline<std::fs::File>;

impl<T: Read + Unpin> AsyncRead for Inline<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.get_mut().0.read(buf))
    }
}

impl<T: Write + Unpin> AsyncWrite for Inline<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.get_mut().0.write(buf))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().0.flush())
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().0.flush())
    }
}

impl<T: Seek + Unpin> AsyncSeek for Inline<T> {
    fn poll_seek(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        pos: io::SeekFrom,
    ) -> Poll<io::Result<u64>> {
        Poll::Ready(self.get_mut().0.seek(pos))
    }
}

/// A task: a thread; awaiting it gives the future's output. Dropping it detaches the
/// thread, which runs on to its end (every wait in it is bounded).
pub struct Task<T>(BoxFuture<'static, Option<std::thread::Result<T>>>);

impl<T> std::fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Task")
    }
}

impl<T> Future for Task<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match self.0.as_mut().poll(cx) {
            Poll::Ready(Some(Ok(v))) => Poll::Ready(v),
            Poll::Ready(Some(Err(panic))) => std::panic::resume_unwind(panic),
            Poll::Ready(None) => panic!("a task's thread could not be started"),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Runs `future` on a thread of its own.
fn spawn_thread<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> Task<T> {
    let (tx, rx) = async_channel::bounded(1);
    let run = move || {
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| block_on(future)));
        let _ = tx.try_send(out);
    };
    if let Err(e) = std::thread::Builder::new().name("ftps".into()).spawn(run) {
        tracing::warn!("could not start a thread: {e}");
    }
    Task(Box::pin(async move { rx.recv().await.ok() }))
}

/// The sleeping futures, woken at their deadlines by one timer thread. A list: there
/// are about as many entries as tasks sleeping (one per session thread), and the timer
/// thread scans it once per wake-up.
struct Timers {
    sleeping: Mutex<Vec<(Instant, u64, Waker)>>,
    changed: Condvar,
}

static TIMERS: LazyLock<Arc<Timers>> = LazyLock::new(|| {
    let timers = Arc::new(Timers {
        sleeping: Mutex::new(Vec::new()),
        changed: Condvar::new(),
    });
    let t = timers.clone();
    let _ = std::thread::Builder::new()
        .name("ftps-timers".into())
        .spawn(move || t.run());
    timers
});

/// Ids of sleeping futures.
static NEXT_SLEEP: AtomicU64 = AtomicU64::new(0);

impl Timers {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Instant, u64, Waker)>> {
        self.sleeping.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run(&self) {
        let mut sleeping = self.lock();
        loop {
            let now = Instant::now();
            sleeping.retain(|(at, _, waker)| {
                if *at <= now {
                    waker.wake_by_ref();
                }
                *at > now
            });
            let next = sleeping.iter().map(|(at, ..)| *at).min();
            let wait = next.map_or(Duration::from_secs(3600), |t| t - now);
            sleeping = self
                .changed
                .wait_timeout(sleeping, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// Completes at its deadline.
struct Sleep {
    deadline: Instant,
    id: u64,
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        let mut sleeping = TIMERS.lock();
        match sleeping.iter_mut().find(|(_, id, _)| *id == self.id) {
            Some(entry) => entry.2 = cx.waker().clone(),
            None => sleeping.push((self.deadline, self.id, cx.waker().clone())),
        }
        TIMERS.changed.notify_one();
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        TIMERS.lock().retain(|(_, id, _)| *id != self.id);
    }
}

fn sleep(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        id: NEXT_SLEEP.fetch_add(1, Ordering::Relaxed),
    }
}

/// Connects to `addrs` in turn within the current deadline.
fn connect_any(addrs: impl Iterator<Item = SocketAddr>) -> io::Result<Tcp> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address to connect to");
    for addr in addrs {
        let tried = match time_left()? {
            Some(left) => TcpStream::connect_timeout(&addr, left),
            None => TcpStream::connect(addr),
        };
        match tried {
            Ok(tcp) => return Ok(Tcp::new(tcp)),
            Err(e) => last = e,
        }
    }
    Err(last)
}

impl Runtime for Threads {
    type Tcp = Tcp;
    type Listener = Arc<TcpListener>;
    type Task<T: Send + 'static> = Task<T>;
    type ReadHalf = Tcp;
    type WriteHalf = Tcp;
    type File = File;

    fn split(tcp: Self::Tcp) -> io::Result<(Self::ReadHalf, Self::WriteHalf)> {
        // A std socket reads and writes through a shared reference. The reading half
        // takes over the read timeout the socket has now: one left by a read before the
        // split (a PROXY header's, under its deadline) would otherwise end the reader's
        // undeadlined waits, a half that believes no timeout is set never clearing it.
        let read = Tcp::shared(tcp.tcp.clone());
        read.read_timeout
            .store(tcp.read_timeout.load(Ordering::Relaxed), Ordering::Relaxed);
        Ok((read, tcp))
    }

    fn closer(tcp: &Self::Tcp) -> io::Result<Closer> {
        let tcp = tcp.tcp.clone();
        Ok(Arc::new(move || {
            let _ = tcp.shutdown(std::net::Shutdown::Both);
        }))
    }

    fn listener_closer(listener: &Self::Listener) -> io::Result<Closer> {
        let listener = listener.clone();
        Ok(Arc::new(move || {
            // Ends an accept under way (Linux).
            let _ = socket2::SockRef::from(&*listener).shutdown(std::net::Shutdown::Both);
        }))
    }

    fn connect(
        addr: SocketAddr,
        from: Option<IpAddr>,
    ) -> BoxFuture<'static, io::Result<Self::Tcp>> {
        Box::pin(async move {
            let Some(from) = from else {
                return connect_any(std::iter::once(addr));
            };
            let socket = ftps_async::bound_socket(addr, from)?;
            match time_left()? {
                Some(left) => socket.connect_timeout(&addr.into(), left)?,
                None => socket.connect(&addr.into())?,
            }
            Ok(Tcp::new(socket.into()))
        })
    }

    fn connect_host(host: String, port: u16) -> BoxFuture<'static, io::Result<Self::Tcp>> {
        Box::pin(async move { connect_any((host.as_str(), port).to_socket_addrs()?) })
    }

    fn bind(addr: SocketAddr) -> BoxFuture<'static, io::Result<Self::Listener>> {
        Box::pin(async move { TcpListener::bind(addr).map(Arc::new) })
    }

    fn accept(listener: &Self::Listener) -> BoxFuture<'_, io::Result<(Self::Tcp, SocketAddr)>> {
        Box::pin(async move {
            // SO_RCVTIMEO bounds accept(2) too (Linux).
            socket2::SockRef::from(listener).set_read_timeout(time_left()?)?;
            let (tcp, peer) = listener.accept().map_err(|e| match e.kind() {
                io::ErrorKind::WouldBlock => io::ErrorKind::TimedOut.into(),
                _ => e,
            })?;
            Ok((Tcp::new(tcp), peer))
        })
    }

    fn listener_addr(listener: &Self::Listener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    fn addrs(tcp: &Self::Tcp) -> io::Result<(SocketAddr, SocketAddr)> {
        Ok((tcp.tcp.local_addr()?, tcp.tcp.peer_addr()?))
    }

    fn set_nodelay(tcp: &Self::Tcp) -> io::Result<()> {
        tcp.tcp.set_nodelay(true)
    }

    fn socket(tcp: &Self::Tcp) -> socket2::SockRef<'_> {
        socket2::SockRef::from(&tcp.tcp)
    }

    fn sleep_until(deadline: Instant) -> BoxFuture<'static, ()> {
        Box::pin(sleep(deadline))
    }

    fn spawn<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> Self::Task<T> {
        spawn_thread(future)
    }

    fn spawn_detached(future: impl Future<Output = ()> + Send + 'static) {
        drop(spawn_thread(future));
    }

    fn unblock<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> BoxFuture<'static, T> {
        Box::pin(async move { f() })
    }

    // `unblock` runs inline (the task's own thread is the pool), where no timeout can end
    // the wait: a check that must be bounded gets a thread of its own.
    fn unblock_apart<T: Send + 'static>(
        f: impl FnOnce() -> T + Send + 'static,
    ) -> BoxFuture<'static, T> {
        // The task's panic, if any, comes out of the await.
        Box::pin(spawn_thread(async move { f() }))
    }

    /// Nothing to let run: every session has its own threads.
    fn pause() -> impl std::future::Future<Output = ()> + Send {
        std::future::ready(())
    }

    // A file read costs no handoff here: reads of 256 KiB, which stay in the cache
    // between the read and the encryption (1 MiB ones cost ~0.05 s/GiB more CPU on a
    // PROT P download; a pool of threads to read ahead cost ~0.1 more; measured).
    const SEND_CHUNK_MAX: usize = 256 * 1024;

    fn file_from_std(file: std::fs::File) -> Self::File {
        Inline(file)
    }

    fn poll_until<T>(deadline: Instant, poll: impl FnOnce() -> T) -> T {
        let outer = DEADLINE.get();
        DEADLINE.set(Some(outer.map_or(deadline, |o| o.min(deadline))));
        let polled = poll();
        DEADLINE.set(outer);
        polled
    }

    fn timeout<T>(
        limit: Duration,
        future: impl Future<Output = T> + Send,
    ) -> impl Future<Output = Result<T, Elapsed>> + Send {
        let deadline = Instant::now() + limit;
        // Its blocking calls honour the deadline; its waits on channels end at the timer.
        let mut future = Box::pin(future);
        let bounded =
            std::future::poll_fn(move |cx| Self::poll_until(deadline, || future.as_mut().poll(cx)));
        async move {
            let out = futures_lite::future::or(async { Some(bounded.await) }, async {
                sleep(deadline).await;
                None
            })
            .await;
            match out {
                Some(v) if Instant::now() < deadline => Ok(v),
                _ => Err(Elapsed),
            }
        }
    }
}
