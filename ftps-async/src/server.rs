//! The server: a builder, the accept loop, and the per-session driver that runs a
//! [`ServerSession`] over any [`Runtime`]'s sockets.

use crate::data::{self, DataContext};
use crate::runtime::{Runtime, timeout};
use crate::stream;
use crate::tls::TlsStream;
use ftps_backend::{
    Authenticator, DataDesk, DataOrder, ListenerSlot, OrderSender, ServerShared, SessionSlot,
    Storage, TaskGone,
};
use ftps_proto::server::{Action, DataId, Event, IoEvent, StorageRequest, TlsMode};
use ftps_proto::tls::{DataTls, SessionTls};
use ftps_proto::{Printable, Reply, ReplyCode, ServerSession};
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;
use tracing::Instrument;

/// How long a refused connection may take to accept its 421.
const REFUSAL_WRITE: Duration = Duration::from_secs(5);

/// Bytes per read of the control connection.
const CONTROL_READ: usize = 1024;

type Stream<R> = stream::Stream<<R as Runtime>::Tcp>;

/// Bytes of control input held before the session takes them, at most.
const MAX_CONTROL_INPUT: usize = 64 * 1024;

/// Builds a [`Server`]: storage, users, configuration, TLS, passive ports, limits.
pub type ServerBuilder<R, S, A> = ftps_backend::ServerBuilder<S, A, Server<R, S, A>>;

type Shared<S, A> = ServerShared<S, A>;

/// An FTPS server. Cheap to clone; all clones serve the same storage and users.
pub struct Server<R, S, A> {
    shared: Arc<Shared<S, A>>,
    /// Closed by [`Server::shutdown`]; every `serve` loop waits on it.
    stop: async_channel::Sender<()>,
    stopped: async_channel::Receiver<()>,
    runtime: PhantomData<fn() -> R>,
}

impl<R, S, A> Clone for Server<R, S, A> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            stop: self.stop.clone(),
            stopped: self.stopped.clone(),
            runtime: PhantomData,
        }
    }
}

impl<R, S, A> From<Arc<ServerShared<S, A>>> for Server<R, S, A> {
    fn from(shared: Arc<ServerShared<S, A>>) -> Self {
        let (stop, stopped) = async_channel::bounded(1);
        Server {
            shared,
            stop,
            stopped,
            runtime: PhantomData,
        }
    }
}

impl<R: Runtime, S: Storage, A: Authenticator> Server<R, S, A> {
    /// Starts building a server on `storage` and `auth`.
    pub fn builder(storage: S, auth: A) -> ServerBuilder<R, S, A> {
        ServerBuilder::new(storage, auth)
    }

    /// Sessions open now.
    pub fn open_sessions(&self) -> usize {
        self.shared.limits.open()
    }

    /// Stops every `serve` loop from accepting; sessions in progress run to their end.
    pub fn shutdown(&self) {
        self.stop.close();
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
        loop {
            if self.stop.is_closed() {
                return Ok(());
            }
            let next = futures_lite::future::or(
                async { Next::Accepted(R::accept(&listener).await) },
                async {
                    let _ = self.stopped.recv().await;
                    Next::Stop
                },
            )
            .await;
            let (tcp, peer) = match next {
                Next::Stop => return Ok(()),
                Next::Accepted(Ok(x)) => x,
                Next::Accepted(Err(e)) => {
                    // Out of descriptors: a session waiting to log in gives way.
                    if ftps_backend::out_of_descriptors(&e) {
                        self.shared.limits.make_room();
                    }
                    self.shared.warnings.accept_failed(&e);
                    R::sleep_until(Instant::now() + Duration::from_millis(50)).await;
                    continue;
                }
            };
            if let Err(e) = ftps_backend::control_socket(R::socket(&tcp)) {
                tracing::debug!(%peer, "control socket: {e}");
                continue;
            }
            // Evicting a session (to make room before it logs in) closes this channel,
            // which its driver watches, also while it waits on a write.
            let (evict_tx, evicted) = async_channel::bounded::<()>(1);
            let evict: ftps_backend::Evict = Arc::new(move || {
                evict_tx.close();
            });
            let Some(slot) = self.shared.limits.admit(peer.ip(), evict) else {
                R::spawn_detached(async move {
                    let mut tcp = tcp;
                    if mode == TlsMode::Explicit {
                        let reply = ftps_proto::server::too_many_sessions_reply().to_bytes();
                        let _ = timeout::<R, _>(REFUSAL_WRITE, tcp.write_all(&reply)).await;
                    }
                });
                continue;
            };
            let shared = self.shared.clone();
            let span = tracing::info_span!("session", %peer, ?mode);
            R::spawn_detached(
                async move {
                    // An eviction ends the session wherever it waits (a TLS handshake, a
                    // login check, a write): the whole session is dropped, its socket and
                    // slot freed at once.
                    let run = run_session::<R, S, A>(shared, tcp, mode, slot);
                    let evicted = async move {
                        let _ = evicted.recv().await;
                        tracing::debug!("evicted to make room");
                        Ok(())
                    };
                    if let Err(e) = futures_lite::future::or(run, evicted).await {
                        tracing::debug!("session ended: {e}");
                    }
                }
                .instrument(span),
            );
        }
    }
}

/// The channel to one data task.
struct Orders<S: Storage>(async_channel::Sender<DataOrder<S>>);

impl<S: Storage> OrderSender<S> for Orders<S> {
    fn deliver(&self, order: DataOrder<S>) -> bool {
        self.0.try_send(order).is_ok()
    }
}

/// The per-session state of the driver (what the protocol core does not own: sockets,
/// open files, data tasks).
struct Driver<R: Runtime, S: Storage, A> {
    shared: Arc<Shared<S, A>>,
    session: ServerSession,
    control: Option<Stream<R>>,
    acceptor: Option<Arc<rustls::ServerConfig>>,
    data_tls: Option<DataTls>,
    events_tx: async_channel::Sender<IoEvent>,
    desk: DataDesk<S, Orders<S>>,
    user: String,
    local: SocketAddr,
    peer: SocketAddr,
    /// The passive listener this session holds against its address's and user's caps,
    /// and its id.
    listener_slot: Option<(DataId, ListenerSlot)>,
    /// This session, counted against the session caps.
    slot: SessionSlot,
    closing: bool,
}

async fn run_session<R: Runtime, S: Storage, A: Authenticator>(
    shared: Arc<Shared<S, A>>,
    tcp: R::Tcp,
    mode: TlsMode,
    slot: SessionSlot,
) -> io::Result<()> {
    let (local, peer) = R::addrs(&tcp)?;
    R::set_nodelay(&tcp)?;
    let session_tls = match shared.tls.as_ref().map(SessionTls::new).transpose() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("TLS setup: {e}");
            return Ok(());
        }
    };
    let acceptor = session_tls.as_ref().map(|t| t.control.clone());
    let data_tls = session_tls.as_ref().map(|t| t.data.clone());
    let session = ServerSession::new(shared.config.clone(), mode, peer, local, Instant::now());
    let (events_tx, events_rx) = async_channel::unbounded();
    let mut d = Driver::<R, S, A> {
        shared,
        session,
        control: Some(stream::Stream::Plain(tcp)),
        acceptor,
        data_tls,
        events_tx,
        desk: DataDesk::default(),
        user: String::new(),
        local,
        peer,
        listener_slot: None,
        slot,
        closing: false,
    };
    // Both stay small: an idle session holds them (commands are short lines; a longer
    // one takes a few reads). `input` holds only a partial line and is freed when empty.
    let mut input: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; CONTROL_READ];
    loop {
        // Boxed: settling (TLS upgrades, logins, data setup) needs a large future for a
        // moment; held inline, every idle session's task would carry its size (about 4 KiB,
        // measured with DHAT).
        Box::pin(d.settle(&mut input)).await;
        if d.closing {
            break;
        }
        use futures_lite::future::{or, pending};
        enum Woke {
            Control(io::Result<usize>),
            Event(Option<IoEvent>),
            Timeout,
        }
        let deadline = d.session.poll_timeout();
        let can_read = input.len() < MAX_CONTROL_INPUT && d.control.is_some();
        let control = &mut d.control;
        let read = async {
            match control.as_mut() {
                Some(c) if can_read => Woke::Control(c.read(&mut buf).await),
                _ => pending().await,
            }
        };
        let event = async { Woke::Event(events_rx.recv().await.ok()) };
        let timer = async {
            match deadline {
                Some(t) => {
                    R::sleep_until(t).await;
                    Woke::Timeout
                }
                None => pending().await,
            }
        };
        match or(read, or(event, timer)).await {
            Woke::Control(Ok(0) | Err(_)) => {
                d.session.handle_io(IoEvent::ControlClosed, Instant::now())
            }
            Woke::Control(Ok(n)) => {
                input.extend_from_slice(&buf[..n]);
                let used = d.session.handle_control_input(&input, Instant::now());
                input.drain(..used);
                if input.is_empty() {
                    input = Vec::new();
                }
            }
            Woke::Event(Some(event)) => d.session.handle_io(event, Instant::now()),
            Woke::Event(None) => {}
            Woke::Timeout => d.session.handle_timeout(Instant::now()),
        }
    }
    Ok(())
}

impl<R: Runtime, S: Storage, A: Authenticator> Driver<R, S, A> {
    /// Executes actions and answers events until the session has nothing more to say.
    async fn settle(&mut self, input: &mut Vec<u8>) {
        loop {
            // Timers fire while the session is busy too: a client that keeps it busy
            // (pipelined commands, replies drained slowly) must not outlive its login or
            // idle timeout (issue 13's second review, finding E).
            let mut progressed = self.session.fire_due_timers(Instant::now());
            while let Some(action) = self.session.poll_action() {
                progressed = true;
                self.act(action).await;
            }
            while let Some(event) = self.session.poll_event() {
                progressed = true;
                self.on_event(event).await;
            }
            if !input.is_empty() && !self.session.is_closed() {
                let used = self.session.handle_control_input(input, Instant::now());
                if used > 0 {
                    input.drain(..used);
                    progressed = true;
                }
            }
            if !progressed {
                return;
            }
        }
    }

    fn data_context(&self, id: DataId) -> DataContext<S> {
        DataContext {
            id,
            events: self.events_tx.clone(),
            storage: self.shared.storage.clone(),
            warnings: self.shared.warnings.clone(),
            transfer_buffers: self.shared.transfer_buffers.clone(),
            handshake_timeout: self.shared.config.timeouts.tls_handshake,
            connect_timeout: self.shared.config.timeouts.data_connect,
        }
    }

    async fn act(&mut self, action: Action) {
        let now = Instant::now;
        match action {
            Action::Send(bytes) => {
                // A peer that does not read must not hold the session: the write has a
                // deadline, and missing it closes the session.
                let limit = self.shared.config.timeouts.reply_write;
                let send = stream::Stream::send(self.control.as_mut(), &bytes);
                if !timeout::<R, _>(limit, send).await.unwrap_or(false) {
                    if let Some(control) = self.control.take() {
                        drop(control);
                    }
                    self.session.handle_io(IoEvent::ControlClosed, now());
                }
            }
            Action::StartControlTls => {
                let (Some(stream::Stream::Plain(tcp)), Some(acceptor)) =
                    (self.control.take(), self.acceptor.clone())
                else {
                    self.session
                        .handle_io(IoEvent::ControlTlsFailed("no TLS".into()), now());
                    return;
                };
                let limit = self.shared.config.timeouts.tls_handshake;
                match timeout::<R, _>(limit, TlsStream::accept(tcp, acceptor)).await {
                    Ok(Ok(tls)) => {
                        let Some(info) = tls.server_info() else {
                            return;
                        };
                        tracing::debug!(?info, "control TLS established");
                        self.control = Some(stream::Stream::tls(tls));
                        self.session
                            .handle_io(IoEvent::ControlTlsEstablished(info), now());
                    }
                    Ok(Err(e)) => self
                        .session
                        .handle_io(IoEvent::ControlTlsFailed(e.to_string()), now()),
                    Err(_) => self.session.handle_io(
                        IoEvent::ControlTlsFailed("handshake timed out".into()),
                        now(),
                    ),
                }
            }
            Action::StopControlTls => {
                // The close_notify is a write like any reply: it has the same deadline.
                let limit = self.shared.config.timeouts.reply_write;
                if let Some(control) = self.control.take() {
                    match timeout::<R, _>(limit, control.into_plain()).await {
                        Ok(Ok(tcp)) => self.control = Some(stream::Stream::Plain(tcp)),
                        _ => self.session.handle_io(IoEvent::ControlClosed, now()),
                    }
                }
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
                let Some(slot) = caps.admit(self.peer.ip(), &self.user) else {
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
                        self.desk.attach(id, Orders(tx));
                        let ctx = self.data_context(id);
                        R::spawn_detached(
                            async move {
                                data::passive::<R, S>(ctx, listener, accept_from, rx).await;
                            }
                            .in_current_span(),
                        );
                        self.session
                            .handle_io(IoEvent::DataListening { id, local }, now());
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
                upload,
                ascii,
            } => {
                let acceptor = if tls { self.data_tls.clone() } else { None };
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
                // An upload starts reading the moment its connection is up.
                let (tls, early) = self.desk.open(id, acceptor, upload, ascii);
                match connect_to {
                    Some(addr) => {
                        let (tx, rx) = async_channel::unbounded();
                        self.desk.attach(id, Orders(tx));
                        R::spawn_detached(
                            data::active::<R, S>(self.data_context(id), addr, tls, early, rx)
                                .in_current_span(),
                        );
                    }
                    None => {
                        let sent = self.desk.send(id, DataOrder::Open { tls, early });
                        self.gone_if(id, sent);
                    }
                }
            }
            Action::Transfer { id, payload, ascii } => {
                let sent = self.desk.transfer(id, payload, ascii);
                self.gone_if(id, sent);
            }
            Action::FinishTransfer { id, commit } => {
                let sent = self.desk.finish(id, commit);
                self.gone_if(id, sent);
            }
            Action::AbortData { id } => {
                if self.listener_slot.as_ref().is_some_and(|(d, _)| *d == id) {
                    self.listener_slot = None;
                }
                // Dropping an upload discards it.
                self.desk.abort(id);
            }
            Action::Close => {
                if let Some(mut c) = self.control.take() {
                    let _ = timeout::<R, _>(Duration::from_secs(2), c.close()).await;
                }
                self.desk.clear();
                self.closing = true;
            }
            other => tracing::warn!(?other, "unknown action"),
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
                let shared = self.shared.clone();
                let check = request.clone();
                let permit = self.shared.login_gate.enter().await;
                let answer = R::unblock(move || shared.check_login(&check)).await;
                drop(permit);
                self.user = request.user.clone();
                self.session
                    .answer_login(request.token, answer, Instant::now());
            }
            Event::Storage { token, request } => {
                let id = ftps_backend::opened_for(&request);
                let shared = self.shared.clone();
                let user = self.user.clone();
                let stat = matches!(request, StorageRequest::List(_));
                let permit = match stat {
                    true => Some(self.shared.stat_gate.enter().await),
                    false => None,
                };
                let (answer, file) =
                    R::unblock(move || ftps_backend::execute(&*shared.storage, &user, request))
                        .await;
                drop(permit);
                if let (Some(id), Some(file)) = (id, file) {
                    self.desk.file_opened(id, file);
                }
                self.session.answer_storage(token, answer, Instant::now());
            }
            Event::Site { token, .. } => {
                let r = Reply::new(ReplyCode::NOT_IMPLEMENTED, "SITE not implemented.");
                self.session.answer_site(token, r, Instant::now());
            }
            Event::LoggedIn { ref user, .. } => {
                tracing::debug!(user = %Printable(user), "logged in");
                self.slot.follow(&event);
                self.user = user.clone();
            }
            Event::LoggedOut => self.slot.follow(&event),
            // Debug, not a warning: any peer can cause it once a connection, and warnings
            // a peer can repeat at will would flood the log (issue 13, finding 14's class).
            Event::PlaintextDiscarded { bytes } => {
                tracing::debug!(bytes, "plaintext after AUTH discarded")
            }
            Event::TransferDone { path, bytes, ok } => {
                tracing::info!(path = %Printable(path.as_str()), bytes, ok, "transfer")
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
