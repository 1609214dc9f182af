//! The server: a builder, the accept loop, and a thread per session running a
//! [`ServerSession`] over std sockets.

use crate::control::Control;
use crate::data::{self, DataContext};
use crate::inbox::Msg;
use ftps_backend::{
    Authenticator, DataDesk, DataOrder, ListenerSlot, OrderSender, ServerShared, SessionSlot,
    Storage, TaskGone,
};
use ftps_proto::server::{Action, DataId, Event, IoEvent, StorageRequest, TlsMode};
use ftps_proto::tls::{DataTls, SessionTls, handshake_info};
use ftps_proto::{Printable, Reply, ReplyCode, ServerSession};
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

/// Control input held before the session takes it, at most; a client that pipelines
/// more without reading its replies is closed.
const MAX_CONTROL_INPUT: usize = 64 * 1024;
/// How often an idle accept loop looks at the shutdown flag.
const ACCEPT_POLL: Duration = Duration::from_millis(20);

/// Builds a [`Server`]: storage, users, configuration, TLS, passive ports, limits.
pub type ServerBuilder<S, A> = ftps_backend::ServerBuilder<S, A, Server<S, A>>;

type Shared<S, A> = ServerShared<S, A>;

/// An FTPS server on threads. Cheap to clone; all clones serve the same storage and
/// users.
pub struct Server<S, A> {
    shared: Arc<Shared<S, A>>,
    shutdown: Arc<AtomicBool>,
}

impl<S, A> Clone for Server<S, A> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            shutdown: self.shutdown.clone(),
        }
    }
}

impl<S, A> From<Arc<ServerShared<S, A>>> for Server<S, A> {
    fn from(shared: Arc<ServerShared<S, A>>) -> Self {
        Server {
            shared,
            shutdown: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl<S: Storage, A: Authenticator> Server<S, A> {
    /// Starts building a server on `storage` and `auth`.
    pub fn builder(storage: S, auth: A) -> ServerBuilder<S, A> {
        ServerBuilder::new(storage, auth)
    }

    /// Stops every `serve` loop from accepting; sessions in progress run to their end.
    pub fn shutdown(&self) {
        self.shutdown.store(true, Ordering::Relaxed);
    }

    /// Accepts connections on `listener` as `mode` sessions, a thread each, until
    /// [`shutdown`](Self::shutdown). Blocks.
    pub fn serve(&self, listener: TcpListener, mode: TlsMode) -> io::Result<()> {
        listener.set_nonblocking(true)?;
        while !self.shutdown.load(Ordering::Relaxed) {
            let (tcp, peer) = match listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(ACCEPT_POLL);
                    continue;
                }
                Err(e) => {
                    // Out of descriptors: a session waiting to log in gives way.
                    if ftps_backend::out_of_descriptors(&e) {
                        self.shared.limits.make_room();
                    }
                    self.shared.warnings.accept_failed(&e);
                    std::thread::sleep(ACCEPT_POLL);
                    continue;
                }
            };
            if let Err(e) = tcp.set_nonblocking(false) {
                tracing::debug!(%peer, "control socket: {e}");
                continue;
            }
            if let Err(e) = ftps_backend::control_socket(socket2::SockRef::from(&tcp)) {
                tracing::debug!(%peer, "control socket: {e}");
                continue;
            }
            // The control reader's clone of the socket, shared with the eviction (to make
            // room before the session logs in): shutting it down ends the session at once,
            // even one blocked writing to a peer that does not read.
            let reader = match tcp.try_clone() {
                Ok(r) => Arc::new(r),
                Err(e) => {
                    tracing::debug!(%peer, "control socket: {e}");
                    continue;
                }
            };
            let (events, inbox) = mpsc::sync_channel(64);
            let socket = reader.clone();
            let evict: ftps_backend::Evict = Arc::new(move || {
                let _ = socket.shutdown(std::net::Shutdown::Both);
            });
            let Some(slot) = self.shared.limits.admit(peer.ip(), evict) else {
                if mode == TlsMode::Explicit {
                    let reply = ftps_proto::server::too_many_sessions_reply();
                    let _ = (&tcp).write_all(&reply.to_bytes());
                }
                continue;
            };
            let shared = self.shared.clone();
            std::thread::Builder::new()
                .name(format!("ftps-session-{peer}"))
                .spawn(move || {
                    let span = tracing::info_span!("session", %peer, ?mode);
                    let _entered = span.enter();
                    let channel = (events, inbox, reader);
                    if let Err(e) = run_session(shared, tcp, mode, slot, channel) {
                        tracing::debug!("session ended: {e}");
                    }
                })?;
        }
        Ok(())
    }
}

/// The channel to one data thread.
struct Orders<S: Storage>(mpsc::Sender<DataOrder<S>>);

impl<S: Storage> OrderSender<S> for Orders<S> {
    fn deliver(&self, order: DataOrder<S>) -> bool {
        self.0.send(order).is_ok()
    }
}

/// The per-session state of the driver: what the protocol core does not own.
struct Driver<S: Storage, A> {
    shared: Arc<Shared<S, A>>,
    session: ServerSession,
    control: Control,
    tls: Option<SessionTls>,
    /// When a control handshake in progress must be done by.
    handshake_deadline: Option<Instant>,
    events: SyncSender<Msg>,
    desk: DataDesk<S, Orders<S>>,
    user: String,
    local: SocketAddr,
    peer: SocketAddr,
    /// The passive listener this session holds against its address's and user's caps,
    /// and its id.
    listener_slot: Option<(DataId, ListenerSlot)>,
    /// This session, counted against the session caps.
    slot: SessionSlot,
    input: Vec<u8>,
    closing: bool,
}

fn run_session<S: Storage, A: Authenticator>(
    shared: Arc<Shared<S, A>>,
    tcp: TcpStream,
    mode: TlsMode,
    slot: SessionSlot,
    (events, inbox, reader): (SyncSender<Msg>, mpsc::Receiver<Msg>, Arc<TcpStream>),
) -> io::Result<()> {
    let control = Control::new(tcp, shared.config.timeouts.reply_write)?;
    let (local, peer) = control.addrs()?;
    let tls = match shared.tls.as_ref().map(SessionTls::new).transpose() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("TLS setup: {e}");
            return Ok(());
        }
    };
    Control::spawn_reader_on(reader, events.clone(), Msg::Control)?;
    let session = ServerSession::new(shared.config.clone(), mode, peer, local, Instant::now());
    let mut d = Driver {
        shared,
        session,
        control,
        tls,
        handshake_deadline: None,
        events,
        desk: DataDesk::default(),
        user: String::new(),
        local,
        peer,
        listener_slot: None,
        slot,
        input: Vec::new(),
        closing: false,
    };
    loop {
        d.settle();
        if d.closing {
            break;
        }
        let deadline = [d.session.poll_timeout(), d.handshake_deadline]
            .into_iter()
            .flatten()
            .min();
        let wait = deadline.map_or(Duration::from_secs(3600), |t| {
            t.saturating_duration_since(Instant::now())
        });
        // A deadline already passed fires now, however much input waits (a busy
        // session must still reach its timeouts).
        if wait.is_zero() {
            d.on_timeout();
            continue;
        }
        match inbox.recv_timeout(wait) {
            Ok(Msg::Control(bytes)) if bytes.is_empty() => {
                d.session.handle_io(IoEvent::ControlClosed, Instant::now());
            }
            Ok(Msg::Control(bytes)) => d.on_control_bytes(&bytes),
            Ok(Msg::Data(event)) => d.session.handle_io(event, Instant::now()),
            Err(RecvTimeoutError::Timeout) => d.on_timeout(),
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    d.control.close();
    Ok(())
}

impl<S: Storage, A: Authenticator> Driver<S, A> {
    /// Executes actions and answers events until the session has nothing more to say.
    fn settle(&mut self) {
        loop {
            // Timers fire while the session is busy too: a client that keeps it busy
            // (pipelined commands, replies drained slowly) must not outlive its login or
            // idle timeout (issue 13's second review, finding E).
            let mut progressed = self.session.fire_due_timers(Instant::now());
            while let Some(action) = self.session.poll_action() {
                progressed = true;
                self.act(action);
            }
            while let Some(event) = self.session.poll_event() {
                progressed = true;
                self.on_event(event);
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

    fn on_control_bytes(&mut self, bytes: &[u8]) {
        let now = Instant::now();
        let was_handshaking = self.control.handshaking();
        let mut plain = Vec::new();
        if let Err(e) = self.control.receive(bytes, &mut plain) {
            if was_handshaking {
                self.handshake_deadline = None;
                self.session
                    .handle_io(IoEvent::ControlTlsFailed(e.to_string()), now);
            } else {
                self.session.handle_io(IoEvent::ControlClosed, now);
            }
            return;
        }
        if was_handshaking && !self.control.handshaking() {
            self.handshake_deadline = None;
            if let Some(rustls::Connection::Server(conn)) = self.control.tls() {
                let info = handshake_info(conn);
                tracing::debug!(?info, "control TLS established");
                self.session
                    .handle_io(IoEvent::ControlTlsEstablished(info), now);
            }
        }
        self.input.extend_from_slice(&plain);
        let used = self.session.handle_control_input(&self.input, now);
        self.input.drain(..used);
        if self.input.len() > MAX_CONTROL_INPUT {
            // Debug: a peer causes it at will (a warning would let it flood the log).
            tracing::debug!("control input flood: closing");
            self.session.handle_io(IoEvent::ControlClosed, now);
        }
    }

    fn on_timeout(&mut self) {
        let now = Instant::now();
        if self.handshake_deadline.is_some_and(|t| t <= now) {
            self.handshake_deadline = None;
            self.session
                .handle_io(IoEvent::ControlTlsFailed("handshake timed out".into()), now);
        }
        self.session.handle_timeout(now);
    }

    fn data_context(&self, id: DataId) -> DataContext<S> {
        let t = &self.shared.config.timeouts;
        DataContext {
            id,
            events: self.events.clone(),
            storage: self.shared.storage.clone(),
            warnings: self.shared.warnings.clone(),
            transfer_buffers: self.shared.transfer_buffers.clone(),
            handshake_timeout: t.tls_handshake,
            connect_timeout: t.data_connect,
            stall_timeout: t.data_stall,
        }
    }

    fn data_tls(&self) -> Option<DataTls> {
        self.tls.as_ref().map(|t| t.data.clone())
    }

    fn act(&mut self, action: Action) {
        let now = Instant::now;
        match action {
            Action::Send(bytes) => {
                if self.control.send(&bytes).is_err() {
                    self.session.handle_io(IoEvent::ControlClosed, now());
                }
            }
            Action::StartControlTls => {
                let started = match &self.tls {
                    Some(t) => rustls::ServerConnection::new(t.control.clone())
                        .map_err(|e| e.to_string())
                        .and_then(|c| {
                            self.control
                                .start_tls(rustls::Connection::Server(c))
                                .map_err(|e| e.to_string())
                        }),
                    None => Err("no TLS".to_owned()),
                };
                match started {
                    Ok(()) => {
                        self.handshake_deadline =
                            Some(now() + self.shared.config.timeouts.tls_handshake);
                    }
                    Err(e) => self.session.handle_io(IoEvent::ControlTlsFailed(e), now()),
                }
            }
            Action::StopControlTls => self.control.stop_tls(),
            Action::Listen {
                id, accept_from, ..
            } => {
                let ip = self.local.ip();
                let seed = id_seed(id);
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
                match data::bind(ip, self.shared.passive_ports.as_ref(), seed) {
                    Ok(listener) => {
                        self.listener_slot = Some((id, slot));
                        let local = listener.local_addr().unwrap_or(SocketAddr::new(ip, 0));
                        let (tx, rx) = mpsc::channel();
                        self.desk.attach(id, Orders(tx));
                        let ctx = self.data_context(id);
                        spawn("ftps-data", move || {
                            data::passive(ctx, listener, accept_from, rx);
                        });
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
                let data_tls = if tls { self.data_tls() } else { None };
                if tls && data_tls.is_none() {
                    let reason = "no TLS configured".into();
                    self.session
                        .handle_io(IoEvent::DataFailed { id, reason }, now());
                    return;
                }
                // An upload starts reading the moment its connection is up.
                let (data_tls, early) = self.desk.open(id, data_tls, upload, ascii);
                match connect_to {
                    Some(addr) => {
                        let (tx, rx) = mpsc::channel();
                        self.desk.attach(id, Orders(tx));
                        let ctx = self.data_context(id);
                        spawn("ftps-data", move || {
                            data::active(ctx, addr, data_tls, early, rx)
                        });
                    }
                    None => {
                        let order = DataOrder::Open {
                            tls: data_tls,
                            early,
                        };
                        let sent = self.desk.send(id, order);
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
                // Dropping the sender stops the thread; dropping an upload discards it.
                self.desk.abort(id);
            }
            Action::Close => {
                self.control.close();
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

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Login(request) => {
                let permit = self.shared.login_gate.enter_blocking();
                let answer = self.shared.check_login(&request);
                drop(permit);
                self.user = request.user.clone();
                self.session
                    .answer_login(request.token, answer, Instant::now());
            }
            Event::Storage { token, request } => {
                let id = ftps_backend::opened_for(&request);
                let storage = &*self.shared.storage;
                let (answer, file) = match request {
                    // STAT builds a whole listing for its reply: a few at once server-wide.
                    StorageRequest::List(_) => {
                        let _permit = self.shared.stat_gate.enter_blocking();
                        ftps_backend::execute(storage, &self.user, request)
                    }
                    _ => ftps_backend::execute(storage, &self.user, request),
                };
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
            Event::TransferDone { path, bytes, ok } => {
                tracing::info!(path = %Printable(path.as_str()), bytes, ok, "transfer")
            }
            other => tracing::debug!(?other, "event"),
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) {
    if let Err(e) = std::thread::Builder::new().name(name.into()).spawn(f) {
        tracing::error!("cannot start a thread: {e}");
    }
}

fn id_seed(id: DataId) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&id, &mut h);
    std::hash::Hash::hash(&std::process::id(), &mut h);
    std::hash::Hasher::finish(&h)
}
