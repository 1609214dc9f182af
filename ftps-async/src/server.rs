//! The server: a builder, the accept loop, and the per-session driver that runs a
//! [`ServerSession`] over any [`Runtime`]'s sockets.

use crate::builder::ServerBuilder;
use crate::control::{self, Control, Taken, Woke};
use crate::data::{self, DataContext, Kill};
use crate::desk::{DataDesk, TaskGone, opened_for};
use crate::hooks::HookEvent;
use crate::limits::{Evict, ListenerSlot, SessionSlot};
use crate::observe;
use crate::on_pool::OnPool;
use crate::order::Order;
use crate::proxy;
use crate::release::ReleaseEmpty;
use crate::runtime::{Closer, Runtime, timeout};
use crate::shared::ServerShared;
use crate::signal::Signal;
use crate::socket::{control_socket, out_of_descriptors};
use ftps_backend::{Actor, Authenticator, BlockingStorage, Quoted, Storage, Transferred, User};
use ftps_proto::boundary::{DataId, MAX_CONTROL_INPUT};
use ftps_proto::proxy::Proxied;
use ftps_proto::server::{
    Action, Event, IoEvent, StorageError, StorageRequest, TlsMode, TransferKind,
};
use ftps_proto::tls::{DataTls, SessionTls};
use ftps_proto::{Printable, Reply, ReplyCode, ServerSession};
use ftps_proto::{TransportError, TransportErrorKind};
use futures_lite::io::AsyncWriteExt;
use std::collections::HashMap;
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;
use tracing::Instrument;

/// How long a refused connection may take to accept its 421.
const REFUSAL_WRITE: Duration = Duration::from_secs(5);

/// Aborted data tasks a session lets end in their grace at once, at most.
const MAX_DYING: usize = 4;

type Shared<S, A> = ServerShared<S, A>;

/// An FTPS server. Cheap to clone; all clones serve the same storage and users.
pub struct Server<R, S, A> {
    /// The storage with every user's quota enforced ([`Quoted`]), whatever it is.
    shared: Arc<Shared<Quoted<S>, A>>,
    /// Set by [`Server::shutdown`]; every `serve` loop waits on it.
    stop: Arc<Signal>,
    /// The listeners `serve` loops accept on, shut down by [`Server::shutdown`] (an
    /// accept under way must end, and on the blocking runtime nothing else ends it).
    listeners: Arc<std::sync::Mutex<Vec<Closer>>>,
    runtime: PhantomData<fn() -> R>,
}

impl<R, S, A> Clone for Server<R, S, A> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            stop: self.stop.clone(),
            listeners: self.listeners.clone(),
            runtime: PhantomData,
        }
    }
}

impl<R, S, A> Server<R, S, A> {
    /// A server of sessions that share `shared`.
    pub(crate) fn new(shared: Arc<ServerShared<Quoted<S>, A>>) -> Self {
        Server {
            shared,
            stop: Arc::default(),
            listeners: Arc::default(),
            runtime: PhantomData,
        }
    }
}

impl<R: Runtime, S: BlockingStorage, A: Authenticator> Server<R, OnPool<R, S>, A> {
    /// Starts building a server on `storage`, whose calls block (a file system:
    /// [`LocalFs`](ftps_backend::LocalFs)), and `auth`: the storage's calls run on the
    /// runtime's blocking pool ([`OnPool`]).
    pub fn builder(storage: S, auth: A) -> ServerBuilder<R, OnPool<R, S>, A> {
        ServerBuilder::new(OnPool::new(storage), auth)
    }
}

impl<R: Runtime, S: Storage, A: Authenticator> Server<R, S, A> {
    /// Starts building a server on an async `storage` (see [`Storage`]) and `auth`: its
    /// calls are awaited on the sessions' tasks.
    pub fn builder_async(storage: S, auth: A) -> ServerBuilder<R, S, A> {
        ServerBuilder::new(storage, auth)
    }

    /// Sessions open now.
    pub fn open_sessions(&self) -> usize {
        self.shared.limits.open()
    }

    /// Stops every `serve` loop from accepting (their listeners are shut down); sessions
    /// in progress run to their end.
    pub fn shutdown(&self) {
        self.stop.set();
        let listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        for close in listeners.iter() {
            close();
        }
    }

    /// Drains the server before it goes away (a rolling restart): stops accepting, as
    /// [`shutdown`](Self::shutdown) does, and tells every session: an idle one gets 421
    /// ("Server shutting down") and closes at once; one moving a file or waiting on a
    /// login check or the storage finishes that (a transfer with its final reply) and then
    /// gets 421. Completes once every session has ended, or once `grace` has passed, when
    /// the sessions left are closed; returns how many had to be.
    pub async fn drain(&self, grace: Duration) -> usize {
        self.shared.drain.start();
        self.shutdown();
        let deadline = Instant::now() + grace;
        while self.open_sessions() > 0 && Instant::now() < deadline {
            R::sleep_until((Instant::now() + Duration::from_millis(20)).min(deadline)).await;
        }
        let left = self.open_sessions();
        if left > 0 {
            tracing::info!(left, "drain: grace period over, closing the sessions left");
            self.shared.drain.force();
            // They end at once (their tasks are dropped); a moment for it.
            let gone = Instant::now() + Duration::from_secs(2);
            while self.open_sessions() > 0 && Instant::now() < gone {
                R::sleep_until(Instant::now() + Duration::from_millis(20)).await;
            }
        }
        left
    }

    /// Whether [`drain`](Self::drain) has started (for a health check: a balancer should
    /// stop sending new clients).
    pub fn is_draining(&self) -> bool {
        self.shared.drain.is_draining()
    }

    /// Accepts connections on `listener` as `mode` sessions until [`shutdown`](Self::shutdown).
    ///
    /// Give the listener a backlog as large as the clients that may connect at once (for
    /// tokio, `TcpSocket::listen(4096)`; `TcpListener::bind` gives 1024): FTP servers speak
    /// first, so a connection the kernel drops from a full accept queue leaves its client
    /// waiting for a greeting until its own timeout.
    pub async fn serve(&self, listener: R::Listener, mode: TlsMode) -> io::Result<()> {
        enum Next<T> {
            Accepted(io::Result<(T, SocketAddr)>),
            Stop,
        }
        if let Some(hooks) = &self.shared.hooks {
            hooks.start::<R>();
        }
        let close = R::listener_closer(&listener)?;
        self.listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(close);
        loop {
            if self.stop.is_set() {
                return Ok(());
            }
            let next = futures_lite::future::or(
                async { Next::Accepted(R::accept(&listener).await) },
                async {
                    self.stop.wait().await;
                    Next::Stop
                },
            )
            .await;
            let (tcp, peer) = match next {
                Next::Stop => return Ok(()),
                Next::Accepted(Ok(x)) => x,
                // Shut down by `shutdown` (the blocking runtime's accept ends so).
                Next::Accepted(Err(_)) if self.stop.is_set() => return Ok(()),
                Next::Accepted(Err(e)) => {
                    // Out of descriptors: a session waiting to log in gives way.
                    if out_of_descriptors(&e) {
                        self.shared.limits.make_room();
                    }
                    self.shared.warnings.accept_failed(&e);
                    R::sleep_until(Instant::now() + Duration::from_millis(50)).await;
                    continue;
                }
            };
            if let Err(e) = control_socket(R::socket(&tcp)) {
                tracing::debug!(%peer, "control socket: {e}");
                continue;
            }
            match &self.shared.proxies {
                // A balancer's connection: its header first, on a task of its own (the
                // accept loop never waits on a peer), then the session of the client it
                // names.
                Some(trusted) if trusted.trusts(peer.ip()) => {
                    // Counted while it waits (at most as many as may wait to log in, the
                    // oldest closed to make room): not a session yet, but a task, a
                    // descriptor and, on the blocking runtime, a thread.
                    let close = match R::closer(&tcp) {
                        Ok(c) => c,
                        Err(e) => {
                            if out_of_descriptors(&e) {
                                self.shared.limits.make_room();
                            }
                            tracing::debug!(%peer, "control socket: {e}");
                            continue;
                        }
                    };
                    let waiting = self.shared.limits.await_header(close);
                    let server = self.clone();
                    R::spawn_detached(async move {
                        let mut tcp = tcp;
                        let limit = server.shared.config.timeouts.tls_handshake;
                        let header = proxy::read_header::<R, _>(&mut tcp, limit).await;
                        drop(waiting);
                        match header {
                            Ok(header) => {
                                let info = ConnectionInfo::proxied(peer, header, mode);
                                // A task of its own, as a direct connection's: awaited
                                // here, the session would be held beside this task's
                                // header state for its whole life (7.2 KiB a session
                                // instead of 3.5 with the tokio server, idle or not).
                                if let Some(session) = server.admit(tcp, info) {
                                    R::spawn_detached(session);
                                }
                            }
                            Err(e) => server.shared.warnings.bad_proxy_header(peer, &e),
                        }
                    });
                }
                _ => {
                    let local = R::addrs(&tcp).map_or(peer, |(local, _)| local);
                    if let Some(session) = self.admit(tcp, ConnectionInfo::new(peer, local, mode)) {
                        R::spawn_detached(session);
                    }
                }
            }
        }
    }

    /// Serves one connection accepted by the application (its own accept loop, socket
    /// activation, a balancer of its own), as [`serve`](Self::serve) serves those it
    /// accepts: counted against the session caps (421 past them), then a session until
    /// it ends. `info` says who the client is (after any PROXY header the application
    /// read itself), the address it connected to (PASV names it unless an advertised
    /// address is configured) and the TLS mode.
    pub async fn serve_connection(&self, tcp: R::Tcp, info: ConnectionInfo) -> io::Result<()> {
        control_socket(R::socket(&tcp))?;
        if let Some(session) = self.admit(tcp, info) {
            session.await;
        }
        Ok(())
    }

    /// Counts a connection against the session caps: its session, to run, or `None` when
    /// it was refused (its 421 is sent on a task of its own).
    fn admit(
        &self,
        tcp: R::Tcp,
        info: ConnectionInfo,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let ConnectionInfo { peer, mode, .. } = info;
        // Evicting a session (to make room before it logs in) sets this signal, which
        // its driver watches, and shuts its socket down: a write or read under
        // way fails at once (on the blocking runtime the driver is in it).
        let evicted = Arc::new(Signal::default());
        let close = match R::closer(&tcp) {
            Ok(c) => c,
            Err(e) => {
                if out_of_descriptors(&e) {
                    self.shared.limits.make_room();
                }
                tracing::debug!(%peer, "control socket: {e}");
                return None;
            }
        };
        let closing = close.clone();
        let evict: Evict = Arc::new({
            let evicted = evicted.clone();
            move || {
                evicted.set();
                closing();
            }
        });
        let Some(slot) = self.shared.limits.admit(peer.ip(), evict) else {
            R::spawn_detached(async move {
                let mut tcp = tcp;
                if mode == TlsMode::Explicit {
                    let reply = ftps_proto::server::too_many_sessions_reply().to_bytes();
                    let _ = timeout::<R, _>(REFUSAL_WRITE, tcp.write_all(&reply)).await;
                }
            });
            return None;
        };
        let shared = self.shared.clone();
        let shared_drain = self.shared.drain.clone();
        // Every event of the session carries its id, peer and (once logged in) user.
        let id = observe::session_id();
        let span = tracing::info_span!(
            "session",
            id,
            %peer,
            ?mode,
            user = tracing::field::Empty
        );
        let started =
            span.in_scope(|| start_session::<R, Quoted<S>, A>(shared, tcp, close, info, slot, id));
        let (d, control_rx, reader) = match started {
            Ok(Some(started)) => started,
            Ok(None) => return None,
            Err(e) => {
                span.in_scope(|| tracing::debug!("session ended: {e}"));
                return None;
            }
        };
        // An eviction ends the session wherever it waits (a TLS handshake, a login
        // check, a write): the whole session is dropped, its socket and slot freed at
        // once.
        let ended = async move {
            let evicted = async {
                evicted.wait().await;
                tracing::debug!("evicted to make room");
            };
            let forced = async {
                shared_drain.forced().await;
                tracing::debug!("closed: the drain's grace period is over");
            };
            futures_lite::future::or(evicted, forced).await;
        };
        // The driver is built here, not in the session's future, and that future works
        // on it in place: an idle session's task holds it once (an async fn keeps room
        // for its arguments beside the locals they are moved into; issue 18).
        let mut d = d;
        let run = async move { d.drive(control_rx, reader).await };
        Some(futures_lite::future::or(run, ended).instrument(span))
    }
}

/// Who a connection is from and how to serve it ([`Server::serve_connection`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The client: the peer for the session caps, the login lockout, the data
    /// connections' peer check, logs and metrics.
    pub peer: SocketAddr,
    /// The address the client connected to (PASV names it unless the configuration
    /// advertises another).
    pub local: SocketAddr,
    /// Explicit (AUTH TLS) or implicit (TLS from the first byte).
    pub mode: TlsMode,
}

impl ConnectionInfo {
    /// A connection from `peer` to `local`, served as `mode`.
    pub fn new(peer: SocketAddr, local: SocketAddr, mode: TlsMode) -> Self {
        ConnectionInfo { peer, local, mode }
    }

    /// A connection from a trusted balancer at `balancer`, for the client its `header`
    /// names (the balancer's own connection, a health check, when it names none).
    fn proxied(balancer: SocketAddr, header: Proxied, mode: TlsMode) -> Self {
        ConnectionInfo {
            peer: header.source.unwrap_or(balancer),
            local: header.destination.unwrap_or(balancer),
            mode,
        }
    }
}

/// How long a control write (a reply, a TLS record, a close_notify) may take during a
/// drain: see [`unless_drained`].
const DRAIN_REPLY_WRITE: Duration = Duration::from_secs(1);

/// `write` (a write to the control connection), unless a drain cuts it: a write under way
/// when the drain starts gets [`DRAIN_REPLY_WRITE`] more, then `None` (the caller abandons
/// the connection). A client that reads nothing must not hold a drain to its grace
/// (review16c, finding 5), whichever write it blocks: a reply, the TLS records a handshake
/// or a read answers, a close_notify. (On the blocking runtime a write under way cannot be
/// raced: there only writes begun during the drain are shortened, by [`write_limit`].)
async fn unless_drained<R: Runtime, T>(
    drain: &crate::drain::Drain,
    write: impl std::future::Future<Output = T>,
) -> Option<T> {
    let cut = async {
        drain.started().await;
        R::sleep_until(Instant::now() + DRAIN_REPLY_WRITE).await;
        None
    };
    futures_lite::future::or(async { Some(write.await) }, cut).await
}

/// How long a control write begun now may take: `configured`, or [`DRAIN_REPLY_WRITE`]
/// at most during a drain.
fn write_limit(drain: &crate::drain::Drain, configured: Duration) -> Duration {
    match drain.is_draining() {
        true => configured.min(DRAIN_REPLY_WRITE),
        false => configured,
    }
}

/// The per-session state of the driver (what the protocol core does not own: sockets,
/// open files, data tasks).
struct Driver<R: Runtime, S: Storage, A> {
    shared: Arc<Shared<S, A>>,
    session: ServerSession,
    control: Control<R::WriteHalf>,
    /// Ends the control connection whole (its reader included) when the session ends.
    close: Closer,
    tls: Option<SessionTls>,
    /// When a control handshake in progress must be done by.
    handshake_deadline: Option<Instant>,
    /// The channel the data tasks report on; made for the first data task, dropped once
    /// none is left (see [`Driver::release_events`]).
    events: Option<(
        async_channel::Sender<IoEvent>,
        async_channel::Receiver<IoEvent>,
    )>,
    desk: DataDesk<S>,
    /// The sockets of the data tasks under way, to shut down when one is aborted.
    kills: HashMap<DataId, Kill>,
    /// Aborted data tasks' sockets, to shut down at these times if the tasks are still
    /// there (see [`Kill`]).
    dying: Vec<(Instant, Kill)>,
    /// The logged-in user's name (counted against the per-user listener cap).
    user_name: String,
    /// The logged-in user, for the storage.
    user: Option<Arc<User>>,
    /// The user the authenticator accepted, until the core says it is logged in.
    checked: Option<Arc<User>>,
    local: SocketAddr,
    peer: SocketAddr,
    /// The passive listener this session holds against its address's and user's caps,
    /// and its id.
    listener_slot: Option<(DataId, ListenerSlot)>,
    /// This session, counted against the session caps.
    slot: SessionSlot,
    /// Control input (clear text) the session has not taken yet.
    input: Vec<u8>,
    closing: bool,
    /// Counted among the open sessions while it lives.
    _counted: observe::SessionCount,
    /// The session's id (its log span's `id`, and what hooks are told).
    session_id: u64,
}

/// A session's driver, its control inbox and the reader task that fills it.
type Started<R, S, A> = (Driver<R, S, A>, control::Inbox, <R as Runtime>::Task<()>);

/// Sets an admitted connection's session up (see [`Driver::drive`]); `None` when the
/// TLS setup failed (logged).
fn start_session<R: Runtime, S: Storage, A: Authenticator>(
    shared: Arc<Shared<S, A>>,
    tcp: R::Tcp,
    close: Closer,
    info: ConnectionInfo,
    slot: SessionSlot,
    session_id: u64,
) -> io::Result<Option<Started<R, S, A>>> {
    // Passive listeners bind where this connection arrived (this node), whatever address
    // the client sees.
    let (local, _) = R::addrs(&tcp)?;
    let ConnectionInfo {
        peer,
        local: seen,
        mode,
    } = info;
    R::set_nodelay(&tcp)?;
    let tls = match shared.tls.as_ref().map(SessionTls::new).transpose() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("TLS setup: {e}");
            return Ok(None);
        }
    };
    let (read, write) = R::split(tcp)?;
    let (control_tx, control_rx) = control::inbox();
    let reader = control::spawn_reader::<R>(read, control_tx);
    let session = ServerSession::new(shared.config.clone(), mode, peer, seen, Instant::now());
    let d = Driver::<R, S, A> {
        shared,
        session,
        control: Control::new(write),
        close,
        tls,
        handshake_deadline: None,
        events: None,
        desk: DataDesk::default(),
        kills: HashMap::new(),
        dying: Vec::new(),
        user_name: String::new(),
        user: None,
        checked: None,
        local,
        peer,
        listener_slot: None,
        slot,
        input: Vec::new(),
        closing: false,
        _counted: observe::SessionCount::open(),
        session_id,
    };
    Ok(Some((d, control_rx, reader)))
}

impl<R: Runtime, S: Storage, A: Authenticator> Driver<R, S, A> {
    /// Runs the session to its end: settles what the core asks, then waits for control
    /// input, the data tasks' reports or the next deadline.
    async fn drive(&mut self, mut control_rx: control::Inbox, reader: R::Task<()>) {
        let d = self;
        let mut control_open = true;
        loop {
            // Boxed: settling (TLS upgrades, logins, data setup) needs a large future for a
            // moment; held inline, every idle session's task would carry its size (about 4 KiB,
            // measured with DHAT).
            Box::pin(d.settle()).await;
            if d.closing {
                break;
            }
            // A drain is seen however much input waits: the wait below takes the control
            // input first, so a client pipelining commands without a pause would never let
            // it look (review16b, finding 6: a NOOP flood held the drain to its grace period).
            if d.notice_drain() {
                continue;
            }
            let dying = d.dying.iter().map(|(t, _)| *t).min();
            let deadline = [d.session.poll_timeout(), d.handshake_deadline, dying]
                .into_iter()
                .flatten()
                .min();
            // A deadline already passed fires now, however much input waits (a busy session
            // must still reach its timeouts).
            if deadline.is_some_and(|t| t <= Instant::now()) {
                d.on_timeout();
                continue;
            }
            // Input the session cannot take yet stays in the channel, then in the kernel:
            // a client that pipelines without reading its replies is slowed, not buffered.
            let can_read = control_open && d.input.len() < MAX_CONTROL_INPUT;
            d.release_idle();
            // Until the session is told the server drains: then it ends as soon as idle.
            let drain = (!d.session.is_shutting_down()).then_some(&*d.shared.drain);
            let events = d.events.as_ref().map(|(_, rx)| rx);
            // Only the bytes wait across the await below, not the whole `Woke`.
            let bytes =
                match control::next::<R, _>(&mut control_rx, can_read, events, deadline, drain)
                    .await
                {
                    Woke::Control(Some(bytes)) if !bytes.is_empty() => bytes,
                    Woke::Control(_) => {
                        control_open = false;
                        d.session.handle_io(IoEvent::ControlClosed, Instant::now());
                        continue;
                    }
                    Woke::Event(Some(event)) => {
                        d.on_event_io(event);
                        continue;
                    }
                    Woke::Timeout => {
                        d.on_timeout();
                        continue;
                    }
                    // A drain is seen at the top of the loop.
                    Woke::Event(None) | Woke::Drain => continue,
                };
            // What the data tasks reported already goes first: a download that ended before
            // the client's ABOR came is whole, not aborted (issue 14's third review, m1: 426
            // for a complete download, most times on tokio).
            while let Some(event) = d.events.as_ref().and_then(|(_, rx)| rx.try_recv().ok()) {
                d.on_event_io(event);
            }
            Box::pin(d.on_control_bytes(&bytes)).await
        }
        drop(reader);
    }
}

impl<R: Runtime, S: Storage, A> Drop for Driver<R, S, A> {
    /// However the session ends — closed, or dropped whole by an eviction — its data
    /// tasks and its control reader end with it (on the blocking runtime a data task in a
    /// socket write would otherwise stream on with no session: issue 14's review, F2).
    fn drop(&mut self) {
        for kill in self.kills.values().chain(self.dying.iter().map(|(_, k)| k)) {
            kill.kill();
        }
        (self.close)();
    }
}

impl<R: Runtime, S: Storage, A: Authenticator> Driver<R, S, A> {
    /// A data task's report, to the session.
    fn on_event_io(&mut self, event: IoEvent) {
        if let IoEvent::DataConnected {
            tls: Some(info), ..
        } = &event
        {
            observe::tls("data", info.version);
        }
        // A data task's last report: its socket is gone.
        let over = match &event {
            IoEvent::UploadFinished { id, .. } | IoEvent::DataFailed { id, .. } => Some(*id),
            IoEvent::DataEnded { id, .. } if self.desk.ended(*id) => Some(*id),
            _ => None,
        };
        if let Some(id) = over {
            self.kills.remove(&id);
        }
        self.session.handle_io(event, Instant::now())
    }

    /// Tells the session the server drains, the first time it is seen: whether it was
    /// told now.
    fn notice_drain(&mut self) -> bool {
        // A closed session has nothing to be told (and telling it changes nothing: were
        // that counted as progress, `settle` would spin).
        if self.session.is_closed()
            || self.session.is_shutting_down()
            || !self.shared.drain.is_draining()
        {
            return false;
        }
        self.session.shut_down(Instant::now());
        // A control TLS handshake under way holds nothing a drain should wait for (and
        // no 421 can be sent into it): it ends now, not at its own deadline (review16b,
        // finding 5: a stalled handshake held the drain to its grace).
        if self.handshake_deadline.take().is_some() {
            let why =
                TransportError::new(TransportErrorKind::Closed, "the server is shutting down");
            self.session
                .handle_io(IoEvent::ControlTlsFailed(why), Instant::now());
        }
        true
    }

    /// Executes actions and answers events until the session has nothing more to say.
    async fn settle(&mut self) {
        loop {
            // Timers fire while the session is busy too: a client that keeps it busy
            // (pipelined commands, replies drained slowly) must not outlive its login or
            // idle timeout (issue 13's second review, finding E). A drain likewise: a
            // session working through a backlog of pipelined commands ends at the next
            // one (review16b, finding 6).
            let mut progressed = self.session.fire_due_timers(Instant::now());
            progressed |= self.notice_drain();
            while let Some(action) = self.session.poll_action() {
                progressed = true;
                self.act(action).await;
            }
            while let Some(event) = self.session.poll_event() {
                progressed = true;
                self.on_event(event).await;
            }
            if !self.input.is_empty() && !self.session.is_closed() {
                let used = self
                    .session
                    .handle_control_input(&self.input, Instant::now());
                if used > 0 {
                    self.input.drain(..used);
                    progressed = true;
                }
            }
            if !progressed {
                return;
            }
        }
    }

    async fn on_control_bytes(&mut self, bytes: &[u8]) {
        let now = Instant::now;
        let drain = self.shared.drain.clone();
        let limit = write_limit(&drain, self.shared.config.timeouts.reply_write);
        let taken = self.control.take::<R>(bytes, &mut self.input, limit);
        let Some(taken) = unless_drained::<R, _>(&drain, taken).await else {
            self.control.abandon();
            return self.session.handle_io(IoEvent::ControlClosed, now());
        };
        match taken {
            Taken::Input => {}
            Taken::Established => {
                self.handshake_deadline = None;
                if let Some(rustls::Connection::Server(conn)) = self.control.tls() {
                    let info = ftps_proto::tls::handshake_info(conn);
                    tracing::debug!(version = ?info.version, resumed = info.resumed, "control TLS established");
                    observe::tls("control", info.version);
                    self.session
                        .handle_io(IoEvent::ControlTlsEstablished(info), now());
                }
            }
            Taken::HandshakeFailed(e) => {
                self.handshake_deadline = None;
                let reason = e.into();
                return self
                    .session
                    .handle_io(IoEvent::ControlTlsFailed(reason), now());
            }
            Taken::Failed => return self.session.handle_io(IoEvent::ControlClosed, now()),
        }
        let used = self.session.handle_control_input(&self.input, now());
        self.input.drain(..used);
    }

    fn on_timeout(&mut self) {
        let now = Instant::now();
        self.dying.retain(|(at, kill)| {
            if *at <= now {
                kill.kill();
            }
            *at > now
        });
        if self.handshake_deadline.is_some_and(|t| t <= now) {
            self.handshake_deadline = None;
            self.session
                .handle_io(IoEvent::ControlTlsFailed("handshake timed out".into()), now);
        }
        self.session.handle_timeout(now);
    }

    /// Before the driver waits: what the last command or transfer left in the session's
    /// collections is given back (see [`ReleaseEmpty`]), the input buffer included.
    fn release_idle(&mut self) {
        self.release_events();
        self.input.release_if_empty();
        self.kills.release_if_empty();
        self.dying.release_if_empty();
        self.desk.release_if_empty();
    }

    /// Drops the data tasks' channel once no task holds it and nothing waits in it: an
    /// idle session does not keep one (768 bytes, measured with heaptrack, issue 18). Only
    /// the driver hands out senders, so none can appear meanwhile.
    fn release_events(&mut self) {
        if self
            .events
            .as_ref()
            .is_some_and(|(tx, rx)| tx.sender_count() == 1 && rx.is_empty())
        {
            self.events = None;
        }
    }

    fn data_tls(&self) -> Option<DataTls> {
        self.tls.as_ref().map(|t| t.data.clone())
    }

    fn data_context(&mut self, id: DataId) -> DataContext<S> {
        let kill = self.kills.entry(id).or_default().clone();
        DataContext {
            kill,
            id,
            events: self
                .events
                .get_or_insert_with(async_channel::unbounded)
                .0
                .clone(),
            storage: self.shared.storage.clone(),
            warnings: self.shared.warnings.clone(),
            transfer_buffers: self.shared.transfer_buffers.clone(),
            handshake_timeout: self.shared.config.timeouts.tls_handshake,
            connect_timeout: self.shared.config.timeouts.data_connect,
            proxies: self.shared.proxies.clone(),
            storage_timeout: self.shared.storage_timeout,
        }
    }

    /// After a control write ([`unless_drained`]): a failed one closes the session, one
    /// cut by a drain abandons the connection too.
    fn after_write(&mut self, written: Option<io::Result<()>>) {
        match written {
            Some(Ok(())) => {}
            Some(Err(_)) => self
                .session
                .handle_io(IoEvent::ControlClosed, Instant::now()),
            None => {
                self.control.abandon();
                self.session
                    .handle_io(IoEvent::ControlClosed, Instant::now());
            }
        }
    }

    async fn act(&mut self, action: Action) {
        let now = Instant::now;
        match action {
            Action::Send(bytes) => {
                observe::replies(&bytes);
                // A peer that does not read must not hold the session: the write has a
                // deadline, and missing it closes the session; during a drain, moments.
                let drain = self.shared.drain.clone();
                let limit = write_limit(&drain, self.shared.config.timeouts.reply_write);
                let send = self.control.send::<R>(&bytes, limit);
                let sent = unless_drained::<R, _>(&drain, send).await;
                self.after_write(sent);
            }
            Action::StartControlTls => {
                // The ClientHello picks the configuration (the order of cipher suites:
                // `ftps_proto::tls::SessionTls::control_for`); a server speaks second.
                let started = match &self.tls {
                    Some(t) => {
                        self.control.accept_tls(t.clone());
                        Ok(())
                    }
                    None => Err(TransportError::from("no TLS")),
                };
                match started {
                    Ok(()) => {
                        self.handshake_deadline =
                            Some(now() + self.shared.config.timeouts.tls_handshake);
                    }
                    Err(e) => self.session.handle_io(IoEvent::ControlTlsFailed(e), now()),
                }
            }
            Action::StopControlTls => {
                // The close_notify is a write like any reply: it has the same deadlines.
                let drain = self.shared.drain.clone();
                let limit = write_limit(&drain, self.shared.config.timeouts.reply_write);
                let stop = self.control.stop_tls::<R>(limit);
                let stopped = unless_drained::<R, _>(&drain, stop).await;
                self.after_write(stopped);
            }
            Action::Listen {
                id,
                ipv6: _,
                accept_from,
            } => {
                let ip = self.local.ip();
                // One address holds at most so many listeners; this session, one (a new
                // PASV replaces the old listener, so its slot goes first).
                self.listener_slot = None;
                let caps = &self.shared.passive_listeners;
                let Some(slot) = caps.admit(self.peer.ip(), &self.user_name) else {
                    tracing::debug!("passive listeners per address or user: cap reached");
                    self.session
                        .handle_io(IoEvent::DataListenFailed { id }, now());
                    return;
                };
                match data::bind::<R>(ip, self.shared.passive_ports.as_ref(), id_seed(id)).await {
                    Ok(listener) => {
                        self.listener_slot = Some((id, slot));
                        let local = R::listener_addr(&listener).unwrap_or(SocketAddr::new(ip, 0));
                        let (tx, rx) = async_channel::unbounded();
                        self.desk.attach(id, tx);
                        let ctx = self.data_context(id);
                        R::spawn_detached(
                            async move {
                                data::passive::<R, S>(ctx, listener, accept_from, rx).await;
                            }
                            .in_current_span(),
                        );
                        self.session
                            .handle_io(IoEvent::DataListening { id, local }, now());
                        // Lets the executor run the tasks just told to end: a client
                        // pipelining PASV must not pile up listeners (smol held 2,000
                        // descriptors for a moment: issue 14's review, F3).
                        futures_lite::future::yield_now().await;
                    }
                    Err(e) => {
                        self.shared.warnings.passive_listener_failed(&e);
                        self.session
                            .handle_io(IoEvent::DataListenFailed { id }, now());
                    }
                }
            }
            Action::OpenData {
                id,
                connect_to,
                tls,
                upload: _,
                ascii,
            } => {
                let acceptor = if tls { self.data_tls() } else { None };
                if tls && acceptor.is_none() {
                    self.session.handle_io(
                        IoEvent::DataFailed {
                            id,
                            reason: "no TLS configured".into(),
                        },
                        now(),
                    );
                    return;
                }
                // Everything the task needs, the opened file with it.
                let job = self.desk.job(id, acceptor, ascii);
                match connect_to {
                    Some(addr) => {
                        let (tx, rx) = async_channel::unbounded();
                        self.desk.attach(id, tx);
                        R::spawn_detached(
                            data::active::<R, S>(self.data_context(id), addr, job, rx)
                                .in_current_span(),
                        );
                    }
                    None => {
                        let sent = self.desk.send(id, Order::Open(job));
                        self.gone_if(id, sent);
                    }
                }
            }
            Action::Transfer { id } => {
                let sent = self.desk.send(id, Order::Transfer);
                self.gone_if(id, sent);
            }
            Action::FinishUpload { id, commit } => {
                let sent = self.desk.finish(id, commit);
                self.gone_if(id, sent);
            }
            Action::AbortData { id } => {
                if self.listener_slot.as_ref().is_some_and(|(d, _)| *d == id) {
                    self.listener_slot = None;
                }
                // Dropping an upload discards it.
                self.desk.abort(id);
                if let Some(kill) = self.kills.remove(&id)
                    && !kill.abort()
                {
                    self.dying.push((now() + data::KILL_GRACE, kill));
                    // An ABOR storm gets no more than a few transfers ending in grace:
                    // past them, the oldest is cut at once (on the blocking runtime each is
                    // a thread in a socket write: issue 14's second review, G1).
                    while self.dying.len() > MAX_DYING {
                        self.dying.remove(0).1.kill();
                    }
                }
            }
            Action::Close => {
                self.control.close::<R>(Duration::from_secs(2)).await;
                self.desk.clear();
                self.closing = true;
            }
            other => tracing::warn!(?other, "unknown action"),
        }
    }

    /// Tells the application's hooks, if any, of `event`, done by this session's user.
    fn hook(&self, event: HookEvent) {
        if let (Some(hooks), Some(user)) = (&self.shared.hooks, &self.user) {
            let actor = Actor::new(user.clone(), self.peer, self.session_id);
            hooks.push(actor, event);
        }
    }

    /// Reports a data task that is gone (it failed, or was never started).
    fn gone_if(&mut self, id: DataId, sent: Result<(), TaskGone>) {
        if sent.is_err() {
            let reason = "data connection gone".into();
            self.session
                .handle_io(IoEvent::DataFailed { id, reason }, Instant::now());
        }
    }

    async fn on_event(&mut self, event: Event) {
        match event {
            Event::Login(request) => {
                let (answer, user) = self.shared.check_login::<R>(&request).await;
                // Kept until the core says the user is logged in (it may still refuse:
                // TLS required for this user).
                self.checked = user.map(Arc::new);
                self.session
                    .answer_login(request.token, answer, Instant::now());
            }
            Event::Storage { token, request } => {
                let id = opened_for(&request);
                let shared = self.shared.clone();
                let Some(user) = self.user.clone() else {
                    // The core asks the storage only for a logged-in user.
                    let e = StorageError::PermissionDenied;
                    self.session.answer_storage(token, Err(e), Instant::now());
                    return;
                };
                // What hooks are told once it succeeded (paths copied only for them).
                let hooked = match self.shared.hooks {
                    Some(_) => HookEvent::of_request(&request),
                    None => None,
                };
                // One hash at a time per user, then a place of the server's: a user with
                // many sessions hashing large files cannot keep every other user's HASH
                // waiting (the second of one user's gets 450 at once).
                let gates = self.shared.clone();
                let mine = match request {
                    StorageRequest::Hash { .. } => match gates.hashing.claim(&user.name) {
                        Some(held) => Some(held),
                        None => {
                            let e = StorageError::Busy;
                            self.session.answer_storage(token, Err(e), Instant::now());
                            return;
                        }
                    },
                    _ => None,
                };
                let permit = match request {
                    StorageRequest::List(_) => Some(self.shared.stat_gate.enter().await),
                    StorageRequest::Hash { .. } => Some(self.shared.hash_gate.enter().await),
                    _ => None,
                };
                let started = Instant::now();
                let op = observe::storage_op(&request);
                // Every call but HASH within the storage timeout: a storage that does not
                // answer must not hold the session (review16a finding 4). One that changes
                // nothing is answered 451 past it; one that changes the tree (a delete, a
                // rename, a directory, a time) may still happen once abandoned (a blocking
                // storage's thread runs on), so no reply could be true: the session ends
                // without one, as if the connection broke (review16b finding 4).
                let bounded = !matches!(request, StorageRequest::Hash { .. });
                let changes = crate::calls::changes(&request);
                let call = crate::calls::execute::<R, _>(&*shared.storage, &user, request);
                let (answer, file) = if bounded {
                    let limit = shared.storage_timeout;
                    match timeout::<R, _>(limit, call).await {
                        Ok(done) => done,
                        Err(_) if changes => {
                            let e = crate::calls::timed_out(limit);
                            self.shared.warnings.storage_failed(op, &e);
                            tracing::warn!(
                                op,
                                "the storage did not answer; its outcome unknown, the session ends unanswered"
                            );
                            self.session
                                .handle_io(IoEvent::ControlClosed, Instant::now());
                            return;
                        }
                        Err(_) => (Err(crate::calls::timed_out(limit)), None),
                    }
                } else {
                    call.await
                };
                observe::storage(op, started.elapsed());
                if let Err(e) = &answer {
                    self.shared.warnings.storage_failed(op, e);
                }
                drop(permit);
                drop(mine);
                if let (Some(id), Some(file)) = (id, file) {
                    self.desk.file_opened(id, file);
                }
                if let (Some(event), true) = (hooked, answer.is_ok()) {
                    self.hook(event);
                }
                self.session.answer_storage(token, answer, Instant::now());
            }
            Event::Site { token, .. } => {
                let r = Reply::new(ReplyCode::NOT_IMPLEMENTED, "SITE not implemented.");
                self.session.answer_site(token, r, Instant::now());
            }
            Event::LoggedIn { ref user, .. } => {
                // From now on every event of the session names its user.
                tracing::Span::current().record("user", tracing::field::display(Printable(user)));
                tracing::debug!(user = %Printable(user), "logged in");
                self.slot.follow(&event);
                self.user_name = user.clone();
                self.user = self.checked.take();
                self.hook(HookEvent::Login);
            }
            Event::LoggedOut => {
                self.user = None;
                self.slot.follow(&event);
            }
            // Debug, not a warning: any peer can cause it once a connection, and warnings
            // a peer can repeat at will would flood the log (issue 13, finding 14's class).
            Event::ProxyHeader => self.shared.warnings.untrusted_proxy_header(self.peer),
            Event::PlaintextDiscarded { bytes } => {
                tracing::debug!(bytes, "plaintext after AUTH discarded")
            }
            Event::TransferDone {
                kind,
                path,
                bytes,
                ok,
            } => {
                observe::transfer(kind, ok, bytes);
                if self.shared.hooks.is_some() {
                    let done = || Transferred::new(path.as_str(), bytes, ok);
                    match kind {
                        TransferKind::Upload => self.hook(HookEvent::UploadFinished(done())),
                        TransferKind::Download => self.hook(HookEvent::DownloadFinished(done())),
                        _ => {}
                    }
                }
                let result = if ok { "ok" } else { "failed" };
                tracing::info!(
                    kind = kind.name(),
                    path = %Printable(path.as_str()),
                    bytes,
                    result,
                    "transfer"
                );
            }
            Event::Closed => tracing::debug!("closed"),
            other => tracing::debug!(?other, "event"),
        }
    }
}

fn id_seed(id: DataId) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&id, &mut h);
    std::hash::Hash::hash(&std::process::id(), &mut h);
    std::hash::Hasher::finish(&h)
}
