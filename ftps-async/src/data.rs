//! One task per data connection: listen or connect, TLS, move the bytes, finish. It only
//! executes what the session decided and reports back as [`IoEvent`]s.

use crate::blocking::{self, Chunk, Pending};
use crate::budget::Budget;
use crate::ending::{read_end, read_error, write_error};
use crate::limits::passive_ports;
use crate::meter::Meter;
use crate::order::{Job, Order, Work};
use crate::proxy::{self, TrustedProxies};
use crate::runtime::{Closer, Runtime, timeout};
use crate::stream;
use crate::tls::TlsStream;
use crate::warnings::Warnings;
use ftps_backend::Storage;
use ftps_proto::ascii::{FromNetwork, ToNetwork};
use ftps_proto::boundary::{DataEnd, DataId};
use ftps_proto::server::{IoEvent, StorageError};
use ftps_proto::{TransportError, TransportErrorKind};
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Stream<R> = stream::Stream<<R as Runtime>::Tcp>;

/// An upload's buffers when the server-wide budget has no room for
/// [`UPLOAD_BUFFER`]-sized ones.
const BUFFER_SMALL: usize = 64 * 1024;

/// An upload's two buffers when the budget has room; a chunk goes to the file (one trip
/// to the blocking pool, two thread wake-ups) once half of one has arrived. At 256 KiB
/// (a trip per 128 KiB) the tokio server's CPU for a 1 GiB PROT P upload by curl had a
/// median of 2.87 s; at 1 MiB, 1.99 s, and 365 -> 479 MB/s (nine uploads each, three
/// alternating rounds, `perf`: a third of its CPU had been wake-ups and task switches).
const UPLOAD_BUFFER: usize = 1024 * 1024;

/// A download's file reads start at this size and double per read up to the runtime's
/// [`Runtime::SEND_CHUNK_MAX`]: a small file costs a small buffer, a large one few reads.
const SEND_CHUNK_FIRST: usize = 64 * 1024;

/// How long an upload the session refused or aborted is read (and discarded) to its end.
const REFUSED_DRAIN: Duration = Duration::from_secs(2);

/// What a data task needs from its session.
pub(crate) struct DataContext<S: Storage> {
    pub(crate) id: DataId,
    pub(crate) events: async_channel::Sender<IoEvent>,
    pub(crate) storage: Arc<S>,
    pub(crate) warnings: Arc<Warnings>,
    /// What transfers' large buffers may hold together, server-wide.
    pub(crate) transfer_buffers: Arc<Budget>,
    pub(crate) handshake_timeout: Duration,
    /// How long an active-mode connection may take to come up (the configured
    /// `data_connect`, as on every runtime).
    pub(crate) connect_timeout: Duration,
    /// Where the task's socket is held for an abort.
    pub(crate) kill: Kill,
    /// The balancers trusted to send a PROXY header first (see [`TrustedProxies`]).
    pub(crate) proxies: Option<Arc<TrustedProxies>>,
    /// How long an upload's commit may take.
    pub(crate) storage_timeout: Duration,
}

impl<S: Storage> DataContext<S> {
    fn report(&self, event: IoEvent) {
        let _ = self.events.try_send(event);
    }
}

/// A data task's socket (its listener, then its connection), held for the session to
/// shut down: an abort must reach a task that is inside a socket call, and on the
/// blocking runtime nothing else can. The session first drops the task's order channel,
/// which ends it properly (our close_notify, the client's bytes drained: see
/// `end_refused`); it shuts the socket down only if the task is still there after
/// [`KILL_GRACE`].
#[derive(Clone, Default)]
pub(crate) struct Kill(Arc<Mutex<KillState>>, Arc<AtomicBool>);

/// How long an aborted data task has to end properly before its socket is shut down.
pub(crate) const KILL_GRACE: Duration = Duration::from_secs(3);

#[derive(Default)]
struct KillState {
    close: Option<Closer>,
    /// What is held is a passive listener still waiting for its connection.
    listening: bool,
    killed: bool,
}

impl Kill {
    /// Holds the closer of the task's socket; closes it at once if the task was killed
    /// already.
    fn hold(&self, close: io::Result<Closer>, listening: bool) {
        let Ok(close) = close else {
            return;
        };
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // A listener whose task was aborted before it got here has nothing to wait for.
        if state.killed || (self.aborted() && listening) {
            state.killed = true;
            close();
        } else {
            state.close = Some(close);
            state.listening = listening;
        }
    }

    /// Marks the task aborted; closes at once one still waiting for its connection (it
    /// has nothing to end properly) and then returns true.
    pub(crate) fn abort(&self) -> bool {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        self.1.store(true, Ordering::Relaxed);
        if !state.listening {
            return false;
        }
        state.killed = true;
        if let Some(close) = state.close.take() {
            close();
        }
        true
    }

    /// Shuts the task's socket down: its socket calls fail from now on.
    pub(crate) fn kill(&self) {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        state.killed = true;
        if let Some(close) = state.close.take() {
            close();
        }
    }

    fn killed(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).killed
    }

    /// The session aborted the task: it stops at its next chunk (where its order
    /// channel cannot be raced against a socket call: the blocking runtime). An atomic,
    /// not the lock: it is read per chunk.
    fn aborted(&self) -> bool {
        self.1.load(Ordering::Relaxed)
    }

    /// The error a transfer stops with once aborted.
    fn check(&self) -> io::Result<()> {
        match self.aborted() {
            true => Err(io::Error::other("aborted by the session")),
            false => Ok(()),
        }
    }

    /// Lets the socket go when the task ends (dropped): a later kill finds nothing.
    fn guard(&self) -> KillGuard<'_> {
        KillGuard(self)
    }
}

/// See [`Kill::guard`].
struct KillGuard<'a>(&'a Kill);

impl Drop for KillGuard<'_> {
    fn drop(&mut self) {
        let mut state = (self.0).0.lock().unwrap_or_else(|e| e.into_inner());
        state.close = None;
    }
}

/// Binds a listener on `ip`, in `ports` if given (trying them from a spread-out start),
/// else on any free port.
pub(crate) async fn bind<R: Runtime>(
    ip: IpAddr,
    ports: Option<&RangeInclusive<u16>>,
    seed: u64,
) -> io::Result<R::Listener> {
    let Some(range) = ports else {
        return R::bind(SocketAddr::new(ip, 0)).await;
    };
    let mut last = io::Error::new(io::ErrorKind::AddrInUse, "no free passive port");
    for port in passive_ports(range, seed) {
        match R::bind(SocketAddr::new(ip, port)).await {
            Ok(l) => return Ok(l),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Where a header read puts the connection whose header names the session's client.
type Found<T> = Arc<Mutex<Option<(T, SocketAddr)>>>;

/// PROXY headers a passive listener reads at once, at most: past it, a new trusted
/// connection closes the oldest still silent (review16a finding 7: read one at a time,
/// two silent connections ahead of the client's own failed its transfer).
const HEADER_READS: usize = 4;

/// A passive listener's connections from trusted balancers whose headers are being read,
/// each on a task of its own, and the first whose header names the session's client.
struct Headers {
    reading: Mutex<std::collections::VecDeque<(u64, Closer)>>,
    next: std::sync::atomic::AtomicU64,
}

/// A passive data connection: accept (only from `accept_from`), then run. A connection
/// from a trusted balancer has its PROXY header read on a task of its own (at most
/// [`HEADER_READS`] at once, the oldest closed past it); the first that names the
/// session's client is taken, the listener then closed to wake the accept under way.
pub(crate) async fn passive<R: Runtime, S: Storage>(
    ctx: DataContext<S>,
    listener: R::Listener,
    accept_from: Option<IpAddr>,
    cmds: async_channel::Receiver<Order<S>>,
) {
    use futures_lite::future::{or, pending};
    enum Next<T, O> {
        Accepted(io::Result<(T, SocketAddr)>),
        Order(Option<O>),
        Found,
    }
    let kill = ctx.kill.clone();
    let _held = kill.guard();
    kill.hold(R::listener_closer(&listener), true);
    let found: Found<R::Tcp> = Arc::default();
    // Told when a header read found the client: an async accept is not woken by the
    // listener's shutdown on every runtime (the blocking one's is, and needs it).
    let (found_tx, found_rx) = async_channel::bounded::<()>(1);
    let headers = Arc::new(Headers {
        reading: Mutex::default(),
        next: std::sync::atomic::AtomicU64::new(0),
    });
    let mut accepted: Option<(R::Tcp, SocketAddr)> = None;
    let mut open: Option<Job<S>> = None;
    loop {
        if accepted.is_none() {
            accepted = found.lock().unwrap_or_else(|e| e.into_inner()).take();
        }
        // Checked after the take: a client found by a header read after the transfer's
        // order came has nothing more to wait for (waiting on here held the transfer to
        // its data-connection timeout, then 425).
        if accepted.is_some() && open.is_some() {
            break;
        }
        let waiting = accepted.is_none();
        let accept = async {
            if waiting {
                Next::Accepted(R::accept(&listener).await)
            } else {
                pending().await
            }
        };
        let order = async { Next::Order(cmds.recv().await.ok()) };
        let told = async {
            match found_rx.recv().await {
                Ok(()) => Next::Found,
                Err(_) => pending().await,
            }
        };
        match or(accept, or(order, told)).await {
            Next::Found => {}
            Next::Accepted(Ok((stream, peer))) => {
                // Through a trusted balancer: the client is who its header names, and it
                // must be the session's (as any data connection's peer must).
                if ctx.proxies.as_ref().is_some_and(|t| t.trusts(peer.ip())) {
                    let to = (&found, &found_tx);
                    read_header_apart::<R>(
                        &ctx,
                        &headers,
                        to,
                        &listener,
                        stream,
                        peer,
                        accept_from,
                    );
                    continue;
                }
                if accept_from.is_some_and(|ip| ip != peer.ip()) {
                    ctx.warnings.foreign_data_connection(peer);
                    continue;
                }
                accepted = Some((stream, peer));
            }
            Next::Accepted(Err(_)) if ctx.kill.killed() || cmds.is_closed() => return,
            // Closed by a header read that found the client: it is in `found`.
            Next::Accepted(Err(_)) if found.lock().is_ok_and(|f| f.is_some()) => {}
            Next::Accepted(Err(e)) => tracing::debug!("accept failed: {e}"),
            Next::Order(Some(Order::Open(job))) => open = Some(job),
            Next::Order(_) => return,
        }
    }
    drop(listener);
    // Header reads still under way have nothing to find any more.
    for (_, close) in headers
        .reading
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
    {
        close();
    }
    if let (Some((stream, peer)), Some(job)) = (accepted, open) {
        run::<R, S>(ctx, stream, peer, job, cmds).await;
    }
}

/// Reads a trusted connection's PROXY header on a task of its own (see [`passive`]).
fn read_header_apart<R: Runtime>(
    ctx: &DataContext<impl Storage>,
    headers: &Arc<Headers>,
    (found, told): (&Found<R::Tcp>, &async_channel::Sender<()>),
    listener: &R::Listener,
    mut stream: R::Tcp,
    balancer: SocketAddr,
    accept_from: Option<IpAddr>,
) {
    let (Ok(close), Ok(wake)) = (R::closer(&stream), R::listener_closer(listener)) else {
        return;
    };
    let id = headers.next.fetch_add(1, Ordering::Relaxed);
    {
        let mut reading = headers.reading.lock().unwrap_or_else(|e| e.into_inner());
        while reading.len() >= HEADER_READS {
            if let Some((_, oldest)) = reading.pop_front() {
                oldest();
            }
        }
        reading.push_back((id, close));
    }
    let (headers, found, told) = (headers.clone(), found.clone(), told.clone());
    let (warnings, limit) = (ctx.warnings.clone(), ctx.handshake_timeout);
    R::spawn_detached(async move {
        let read = proxy::read_header::<R, _>(&mut stream, limit).await;
        headers
            .reading
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(i, _)| *i != id);
        let peer = match read {
            Ok(header) => header.source.unwrap_or(balancer),
            Err(e) => return warnings.bad_proxy_header(balancer, &e),
        };
        if accept_from.is_some_and(|ip| ip != peer.ip()) {
            return warnings.foreign_data_connection(peer);
        }
        let mut slot = found.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some((stream, peer));
            drop(slot);
            // The accept under way ends: told (async runtimes), and the listener shut
            // down (the blocking runtime's accept holds its thread); its work is done.
            let _ = told.try_send(());
            wake();
        }
    });
}

/// An active data connection: connect to `addr`, then run.
pub(crate) async fn active<R: Runtime, S: Storage>(
    ctx: DataContext<S>,
    addr: SocketAddr,
    job: Job<S>,
    cmds: async_channel::Receiver<Order<S>>,
) {
    let kill = ctx.kill.clone();
    let _held = kill.guard();
    match timeout::<R, _>(ctx.connect_timeout, R::connect(addr, None)).await {
        Ok(Ok(stream)) => run::<R, S>(ctx, stream, addr, job, cmds).await,
        Ok(Err(e)) => ctx.report(IoEvent::DataFailed {
            id: ctx.id,
            reason: TransportError::from(e).context(format!("connecting to {addr}")),
        }),
        Err(_) => ctx.report(IoEvent::DataFailed {
            id: ctx.id,
            reason: TransportError::new(TransportErrorKind::TimedOut, "connect timed out"),
        }),
    }
}

async fn run<R: Runtime, S: Storage>(
    ctx: DataContext<S>,
    tcp: R::Tcp,
    peer: SocketAddr,
    job: Job<S>,
    cmds: async_channel::Receiver<Order<S>>,
) {
    let _ = R::set_nodelay(&tcp);
    ctx.kill.hold(R::closer(&tcp), false);
    let Job {
        tls: data_tls,
        work,
        ascii,
    } = job;
    let tls = data_tls.is_some();
    let upload = work.is_upload();
    let (mut stream, info) = if let Some(data_tls) = data_tls {
        // The ClientHello picks the configuration (see `ftps_proto::tls::SessionTls`).
        let choose = |hello: &rustls::server::ClientHello<'_>| data_tls.choose(hello, upload);
        let handshake = TlsStream::accept_choosing(tcp, choose);
        match timeout::<R, _>(ctx.handshake_timeout, handshake).await {
            Ok(Ok(s)) => {
                let info = s.server_info();
                (stream::Stream::tls(s), info)
            }
            Ok(Err(e)) => {
                ctx.report(IoEvent::DataFailed {
                    id: ctx.id,
                    reason: TransportError::from(e).context("the data connection's TLS handshake"),
                });
                return;
            }
            Err(_) => {
                ctx.report(IoEvent::DataFailed {
                    id: ctx.id,
                    reason: TransportError::new(
                        TransportErrorKind::TimedOut,
                        "TLS handshake timed out",
                    ),
                });
                return;
            }
        }
    } else {
        (stream::Stream::Plain(tcp), None)
    };
    ctx.report(IoEvent::DataConnected {
        id: ctx.id,
        peer,
        tls: info,
    });

    // Nothing moves before the session's go-ahead (`Transfer`): the session may still
    // refuse the connection (TLS session not resumed, no TLS under PROT P, wrong ALPN, a
    // foreign peer), and an append or a resumed upload writes in place, so bytes taken
    // before the verdict would stay in the file (issue 13's second review: a refused APPE
    // still appended). Refused or aborted: end the connection properly (our close_notify,
    // then the client's bytes read to their end for a moment), so that the client reads a
    // clean end and then the reply that says why (Python's ftplib otherwise failed the
    // handshake's aftermath and read that reply as the answer to its next command).
    if !matches!(cmds.recv().await, Ok(Order::Transfer)) {
        end_refused::<R>(&mut stream).await;
        return;
    }
    let pumped = {
        let work = async {
            match work {
                Work::Receive(up) => receive::<R, S>(&ctx, &mut stream, up, ascii, tls).await,
                Work::SendFile(reader) => {
                    let read = |r, buf| ctx.storage.read(r, buf);
                    let (n, end) =
                        send::<R, S, _>(&ctx, &mut stream, reader, read, ascii, R::SEND_CHUNK_MAX)
                            .await;
                    (None, n, end)
                }
                Work::SendListing(listing) => {
                    let (n, end) =
                        // Listings keep to the first, small buffer: a session's listing
                        // costs that much whatever the directory's size.
                        send::<R, S, _>(
                            &ctx,
                            &mut stream,
                            listing,
                            blocking::fill::<R, _>,
                            ascii,
                            SEND_CHUNK_FIRST,
                        )
                        .await;
                    (None, n, end)
                }
                Work::Nothing => (None, 0, DataEnd::Failed("nothing to transfer".into())),
            }
        };
        let mut work = std::pin::pin!(work);
        enum Step<T, O> {
            Done(T),
            Order(Option<O>),
        }
        loop {
            let done = async { Step::Done(work.as_mut().await) };
            let order = async { Step::Order(cmds.recv().await.ok()) };
            match futures_lite::future::or(done, order).await {
                Step::Done(r) => break Some(r),
                // A repeated go-ahead changes nothing.
                Step::Order(Some(Order::Transfer)) => continue,
                // Anything else, or the session dropping us, aborts.
                Step::Order(_) => break None,
            }
        }
    };
    // Aborted by the session (ABOR, or a refusal such as a TLS session not resumed): an
    // upload in progress is dropped unpublished (dropping an upload discards it; see
    // `Storage::Upload`). An upload's connection still ends properly — our close_notify,
    // then what the client sends read to its end, for a moment — so that the client
    // finishes cleanly and reads the reply that says why (dropped at once, Python's
    // ftplib got a reset and then read that reply as the answer to its next command:
    // issue 13's second review, finding G).
    let Some((received, bytes, end)) = pumped else {
        if upload {
            end_refused::<R>(&mut stream).await;
        }
        return;
    };
    if let DataEnd::Storage(e) = &end {
        let op = if upload { "write" } else { "read" };
        ctx.warnings.storage_failed(op, e);
    }
    ctx.report(IoEvent::DataEnded {
        id: ctx.id,
        bytes,
        end,
    });
    // A download is over: its connection was closed as it ended (see `send`).
    if !upload {
        return;
    }
    let commit = loop {
        match cmds.recv().await {
            Ok(Order::FinishUpload { commit }) => break commit,
            Ok(Order::Transfer) => continue,
            _ => break false,
        }
    };
    let result = match received {
        Some(up) => {
            // Answer the client's close_notify with ours before closing.
            let _ = timeout::<R, _>(Duration::from_secs(5), stream.close()).await;
            let limit = ctx.storage_timeout;
            match timeout::<R, _>(limit, ctx.storage.commit(up, commit)).await {
                Ok(done) => done,
                Err(_) => {
                    // Abandoned, the commit may still publish the file (a blocking
                    // storage's thread runs on): no reply could be true, so the session
                    // ends without one, as if the connection broke (review16b finding 4).
                    let e = crate::calls::timed_out(limit);
                    ctx.warnings.storage_failed("commit", &e);
                    ctx.report(IoEvent::ControlClosed);
                    return;
                }
            }
        }
        None => Ok(()),
    };
    if let Err(e) = &result {
        ctx.warnings.storage_failed("commit", e);
    }
    ctx.report(IoEvent::UploadFinished { id: ctx.id, result });
}

/// Ends a refused or aborted connection properly: close_notify (under TLS) and FIN, then
/// what the client still sends is read and discarded to its end, for at most
/// [`REFUSED_DRAIN`].
async fn end_refused<R: Runtime>(stream: &mut Stream<R>) {
    let drain = async {
        let _ = stream.close().await;
        let mut sink = vec![0u8; 16 * 1024];
        while matches!(stream.read(&mut sink).await, Ok(1..)) {}
    };
    let _ = timeout::<R, _>(REFUSED_DRAIN, drain).await;
}

/// Writes `bytes` as the socket takes them, reporting progress by time as pieces go (see
/// [`Meter::moved`]): a slow client that keeps taking bytes is not a stalled one.
async fn write_counted<R: Runtime, S: Storage>(
    ctx: &DataContext<S>,
    stream: &mut Stream<R>,
    mut bytes: &[u8],
    meter: &mut Meter,
) -> io::Result<()> {
    while !bytes.is_empty() {
        ctx.kill.check()?;
        let n = stream.write(bytes).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
        if let Some(total) = meter.moved() {
            ctx.report(IoEvent::DataProgress {
                id: ctx.id,
                bytes: total,
            });
        }
    }
    Ok(())
}

/// Sends what `read` reads from `reader` (the storage's reads of a file; a listing's on
/// the blocking pool).
async fn send<'c, R: Runtime, S: Storage, F: Send + 'static>(
    ctx: &'c DataContext<S>,
    stream: &mut Stream<R>,
    reader: F,
    read: impl Fn(F, Vec<u8>) -> Pending<'c, F>,
    ascii: bool,
    chunk_max: usize,
) -> (u64, DataEnd) {
    let mut meter = Meter::default();
    let mut conv = ascii.then(ToNetwork::default);
    let mut converted = Vec::new();
    let result: io::Result<()> = async {
        // The next chunk is read from the file while this one is sent; a chunk
        // shorter than its buffer was the last.
        let mut size = SEND_CHUNK_FIRST;
        let mut taken = Vec::new();
        let mut next = Some(read(reader, vec![0u8; size]));
        let mut spare = Vec::new();
        while let Some(pending) = next.take() {
            let Chunk {
                io: reader,
                buf,
                result,
                then,
            } = pending.await;
            let n = match result {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => return Err(io::Error::other(StorageFailure(e))),
            };
            if n == buf.len() && then.is_none() {
                // Larger buffers (two at a time: one sent, one filled) only with
                // bytes from the server-wide budget.
                let grown = (size * 2).min(chunk_max);
                if grown > size
                    && let Some(t) = ctx.transfer_buffers.take(2 * (grown - size))
                {
                    taken.push(t);
                    size = grown;
                }
                let mut into = std::mem::take(&mut spare);
                if into.len() < size {
                    into.resize(size, 0);
                }
                next = Some(read(reader, into));
            }
            match conv.as_mut() {
                Some(c) => {
                    converted.clear();
                    c.convert(&buf[..n], &mut converted);
                    write_counted::<R, S>(ctx, stream, &converted, &mut meter).await?;
                }
                None => write_counted::<R, S>(ctx, stream, &buf[..n], &mut meter).await?,
            }
            spare = buf;
            if let Some(bytes) = meter.add(n) {
                ctx.report(IoEvent::DataProgress { id: ctx.id, bytes });
            }
            if let Some(e) = then {
                // The bytes before the failure went out; now the failure.
                stream.flush().await?;
                return Err(io::Error::other(StorageFailure(e)));
            }
        }
        stream.flush().await
    }
    .await;
    let storage_failed = result
        .as_ref()
        .err()
        .and_then(|e| e.get_ref())
        .is_some_and(|i| i.is::<StorageFailure>());
    if result.is_ok() || storage_failed {
        // close_notify (under TLS) and FIN. Every byte is written by now, and a client that
        // counted the bytes may already have closed: a failure here loses nothing. After a
        // failed read of the file the connection is sound: what was sent arrives whole, and
        // the final reply says it is not all (a listing cut at its bound, say).
        let _ = timeout::<R, _>(Duration::from_secs(5), stream.close()).await;
    }
    match result {
        Ok(()) => (meter.total(), DataEnd::Complete { close_notify: true }),
        Err(e) => match e.get_ref().and_then(|i| i.downcast_ref::<StorageFailure>()) {
            Some(failure) => (meter.total(), DataEnd::Storage(read_error(&failure.0))),
            None => (meter.total(), DataEnd::Failed(e.into())),
        },
    }
}

/// Marks a read error of the file rather than of the connection.
#[derive(Debug)]
struct StorageFailure(io::Error);

impl std::fmt::Display for StorageFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "reading the file: {}", self.0)
    }
}

impl std::error::Error for StorageFailure {}

/// Receives an upload into `upload`; returns it (unless writing it failed) with the byte
/// count and how the stream ended. Chunks of at least half a buffer go to the file on
/// the blocking pool while the next one arrives: one handoff (a thread wakeup) per 128
/// KiB, not one per TLS record.
async fn receive<R: Runtime, S: Storage>(
    ctx: &DataContext<S>,
    stream: &mut Stream<R>,
    upload: S::Upload,
    ascii: bool,
    tls: bool,
) -> (Option<S::Upload>, u64, DataEnd) {
    let mut meter = Meter::default();
    let mut conv = ascii.then(FromNetwork::default);
    // `buf` fills from the connection while the previous chunk is written.
    // Two buffers of UPLOAD_BUFFER bytes from the server-wide budget, else small ones; a chunk
    // goes to the file once half a buffer has arrived.
    let taken = ctx
        .transfer_buffers
        .take(2 * (UPLOAD_BUFFER - BUFFER_SMALL));
    let size = if taken.is_some() {
        UPLOAD_BUFFER
    } else {
        BUFFER_SMALL
    };
    let handoff = size / 2;
    let mut buf = vec![0u8; size];
    let mut filled = 0;
    let mut writing: Option<Pending<'_, S::Upload>> = None;
    // Binary uploads swap `buf` and the spare, both kept at full length (never zeroed
    // again); TYPE A converts into the spare instead.
    let mut idle = Some((upload, vec![0u8; size]));
    // Waits for the write in flight; gives back the file and its buffer.
    async fn settle<W: Send + 'static>(
        writing: &mut Option<Pending<'_, W>>,
        idle: &mut Option<(W, Vec<u8>)>,
    ) -> Result<(), StorageError> {
        if let Some(w) = writing.take() {
            let Chunk {
                io, buf, result, ..
            } = w.await;
            *idle = Some((io, buf));
            result.map(drop).map_err(|e| write_error(&e))?;
        }
        Ok(())
    }
    // The chunk `buf[..filled]` as (buffer, length) to write: converted into the spare
    // under TYPE A, else `buf` itself, the spare taking its place.
    let chunk =
        |buf: &mut Vec<u8>, filled: usize, mut spare: Vec<u8>, conv: &mut Option<FromNetwork>| {
            match conv.as_mut() {
                Some(c) => {
                    spare.clear();
                    c.convert(&buf[..filled], &mut spare);
                    let len = spare.len();
                    (spare, len)
                }
                None => (std::mem::replace(buf, spare), filled),
            }
        };
    let end = loop {
        if let Err(e) = ctx.kill.check() {
            return (None, meter.total(), DataEnd::Failed(e.into()));
        }
        match stream.read(&mut buf[filled..]).await {
            Ok(0) => break DataEnd::Complete { close_notify: true },
            Ok(n) => {
                filled += n;
                if let Some(bytes) = meter.add(n) {
                    ctx.report(IoEvent::DataProgress { id: ctx.id, bytes });
                }
                if filled < handoff {
                    continue;
                }
                if let Err(e) = settle(&mut writing, &mut idle).await {
                    return (failed(idle), meter.total(), DataEnd::Storage(e));
                }
                let Some((up, spare)) = idle.take() else {
                    return (None, meter.total(), DataEnd::Failed("upload lost".into()));
                };
                let (out, len) = chunk(&mut buf, filled, spare, &mut conv);
                filled = 0;
                writing = Some(ctx.storage.write(up, out, len, false));
            }
            Err(e) => break read_end(&e, tls),
        }
    };
    if let Err(e) = settle(&mut writing, &mut idle).await {
        return (failed(idle), meter.total(), DataEnd::Storage(e));
    }
    let Some((up, spare)) = idle.take() else {
        return (None, meter.total(), DataEnd::Failed("upload lost".into()));
    };
    let (mut out, len) = chunk(&mut buf, filled, spare, &mut conv);
    out.truncate(len);
    if let Some(c) = conv.as_mut() {
        c.finish(&mut out);
    }
    let len = out.len();
    let Chunk { io: up, result, .. } = ctx.storage.write(up, out, len, true).await;
    match result {
        Ok(_) => (Some(up), meter.total(), end),
        Err(e) => (Some(up), meter.total(), DataEnd::Storage(write_error(&e))),
    }
}

/// The upload whose write failed, given back to be committed as not kept (the session
/// says so for a storage error) rather than dropped: the storage learns that it ended,
/// and can count what a write in place left in the file (review16a, finding 3).
fn failed<W>(idle: Option<(W, Vec<u8>)>) -> Option<W> {
    idle.map(|(up, _)| up)
}
