//! The server: a builder, the accept loop, and the per-session driver that runs a
//! [`ServerSession`] over tokio sockets.

use crate::blocking;
use crate::data::{self, DataContext};
use crate::stream::Stream;
use ftps_backend::{Authenticator, DataOrder, Opened, OpenedFile, ServerShared, Storage};
use ftps_proto::server::{Action, DataId, Event, IoEvent, TlsMode};
use ftps_proto::tls::{DataTls, SessionTls};
use ftps_proto::{Reply, ReplyCode, ServerSession};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

/// Bytes of control input held before the session takes them, at most.
const MAX_CONTROL_INPUT: usize = 64 * 1024;

/// Builds a [`Server`]: storage, users, configuration, TLS, passive ports, limits.
pub type ServerBuilder<S, A> = ftps_backend::ServerBuilder<S, A, Server<S, A>>;

type Shared<S, A> = ServerShared<S, A>;

/// An FTPS server. Cheap to clone; all clones serve the same storage and users.
pub struct Server<S, A> {
    shared: Arc<Shared<S, A>>,
    shutdown: Arc<watch::Sender<bool>>,
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
        let (shutdown, _) = watch::channel(false);
        Server {
            shared,
            shutdown: Arc::new(shutdown),
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
        let _ = self.shutdown.send(true);
    }

    /// Accepts connections on `listener` as `mode` sessions until [`shutdown`](Self::shutdown).
    pub async fn serve(&self, listener: TcpListener, mode: TlsMode) -> io::Result<()> {
        let mut stop = self.shutdown.subscribe();
        if *stop.borrow_and_update() {
            return Ok(());
        }
        loop {
            let (tcp, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!("accept: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stop.changed() => return Ok(()),
            };
            let Some(slot) = self.shared.limits.admit(peer.ip()) else {
                tokio::spawn(async move {
                    let mut tcp = tcp;
                    if mode == TlsMode::Explicit {
                        let _ = tcp
                            .write_all(&ftps_proto::server::too_many_sessions_reply().to_bytes())
                            .await;
                    }
                });
                continue;
            };
            let shared = self.shared.clone();
            let span = tracing::info_span!("session", %peer, ?mode);
            tokio::spawn(
                async move {
                    let _slot = slot;
                    if let Err(e) = run_session(shared, tcp, mode).await {
                        tracing::debug!("session ended: {e}");
                    }
                }
                .instrument(span),
            );
        }
    }
}

/// The per-session state of the driver (what the protocol core does not own: sockets,
/// open files, data tasks).
struct Driver<S: Storage, A> {
    shared: Arc<Shared<S, A>>,
    session: ServerSession,
    control: Option<Stream>,
    acceptor: Option<TlsAcceptor>,
    data_tls: Option<DataTls>,
    events_tx: mpsc::UnboundedSender<IoEvent>,
    data: HashMap<DataId, mpsc::UnboundedSender<DataOrder<S>>>,
    files: HashMap<DataId, OpenedFile<S>>,
    user: String,
    local: SocketAddr,
    closing: bool,
}

async fn run_session<S: Storage, A: Authenticator>(
    shared: Arc<Shared<S, A>>,
    tcp: TcpStream,
    mode: TlsMode,
) -> io::Result<()> {
    let peer = tcp.peer_addr()?;
    let local = tcp.local_addr()?;
    tcp.set_nodelay(true)?;
    let session_tls = match shared.tls.as_ref().map(SessionTls::new).transpose() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("TLS setup: {e}");
            return Ok(());
        }
    };
    let acceptor = session_tls
        .as_ref()
        .map(|t| TlsAcceptor::from(t.control.clone()));
    let data_tls = session_tls.as_ref().map(|t| t.data.clone());
    let session = ServerSession::new(shared.config.clone(), mode, peer, local, Instant::now());
    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
    let mut d = Driver {
        shared,
        session,
        control: Some(Stream::Plain(tcp)),
        acceptor,
        data_tls,
        events_tx,
        data: HashMap::new(),
        files: HashMap::new(),
        user: String::new(),
        local,
        closing: false,
    };
    let mut input: Vec<u8> = Vec::with_capacity(4096);
    let mut buf = vec![0u8; 4096];
    loop {
        d.settle(&mut input).await;
        if d.closing {
            break;
        }
        let deadline = d.session.poll_timeout().map(tokio::time::Instant::from_std);
        let can_read = input.len() < MAX_CONTROL_INPUT && d.control.is_some();
        tokio::select! {
            r = async { d.control.as_mut().expect("checked").read(&mut buf).await }, if can_read => match r {
                Ok(0) | Err(_) => d.session.handle_io(IoEvent::ControlClosed, Instant::now()),
                Ok(n) => {
                    input.extend_from_slice(&buf[..n]);
                    let used = d.session.handle_control_input(&input, Instant::now());
                    input.drain(..used);
                }
            },
            Some(event) = events_rx.recv() => d.session.handle_io(event, Instant::now()),
            _ = async { tokio::time::sleep_until(deadline.expect("checked")).await }, if deadline.is_some() => {
                d.session.handle_timeout(Instant::now());
            }
        }
    }
    Ok(())
}

impl<S: Storage, A: Authenticator> Driver<S, A> {
    /// Executes actions and answers events until the session has nothing more to say.
    async fn settle(&mut self, input: &mut Vec<u8>) {
        loop {
            let mut progressed = false;
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
            handshake_timeout: self.shared.config.timeouts.tls_handshake,
        }
    }

    async fn act(&mut self, action: Action) {
        let now = Instant::now;
        match action {
            Action::Send(bytes) => {
                if !Stream::send(self.control.as_mut(), &bytes).await {
                    self.session.handle_io(IoEvent::ControlClosed, now());
                }
            }
            Action::StartControlTls => {
                let (Some(Stream::Plain(tcp)), Some(acceptor)) =
                    (self.control.take(), self.acceptor.clone())
                else {
                    self.session
                        .handle_io(IoEvent::ControlTlsFailed("no TLS".into()), now());
                    return;
                };
                let timeout = self.shared.config.timeouts.tls_handshake;
                match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let info = ftps_proto::tls::handshake_info(tls.get_ref().1);
                        tracing::debug!(?info, "control TLS established");
                        self.control = Some(Stream::tls(tls));
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
                if let Some(control) = self.control.take() {
                    self.control = Some(Stream::Plain(control.into_plain().await));
                }
            }
            Action::Listen {
                id,
                ipv6: _,
                accept_from,
            } => {
                let ip = self.local.ip();
                match data::bind(ip, self.shared.passive_ports.as_ref(), id_seed(id)).await {
                    Ok(listener) => {
                        let local = listener.local_addr().unwrap_or(SocketAddr::new(ip, 0));
                        let (tx, rx) = mpsc::unbounded_channel();
                        self.data.insert(id, tx);
                        tokio::spawn(
                            data::passive(self.data_context(id), listener, accept_from, rx)
                                .in_current_span(),
                        );
                        self.session
                            .handle_io(IoEvent::DataListening { id, local }, now());
                    }
                    Err(e) => {
                        tracing::warn!("passive listener: {e}");
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
                // An upload starts reading the moment its connection is up.
                let early = match (upload, self.files.remove(&id)) {
                    (true, Some(Opened::Write(up))) => Some((up, ascii)),
                    (_, Some(other)) => {
                        self.files.insert(id, other);
                        None
                    }
                    _ => None,
                };
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
                let tls = acceptor;
                match connect_to {
                    Some(addr) => {
                        let (tx, rx) = mpsc::unbounded_channel();
                        self.data.insert(id, tx);
                        tokio::spawn(
                            data::active(self.data_context(id), addr, tls, early, rx)
                                .in_current_span(),
                        );
                    }
                    None => self.command(id, DataOrder::Open { tls, early }),
                }
            }
            Action::Transfer { id, payload, ascii } => {
                let file = self.files.remove(&id);
                self.command(
                    id,
                    DataOrder::Transfer {
                        payload,
                        file,
                        ascii,
                    },
                );
            }
            Action::FinishTransfer { id, commit } => {
                self.command(id, DataOrder::Finish { commit });
                self.data.remove(&id);
            }
            Action::AbortData { id } => {
                self.data.remove(&id);
                if let Some(Opened::Write(up)) = self.files.remove(&id) {
                    let _ = blocking::commit(&self.shared.storage, up, false).await;
                }
            }
            Action::Close => {
                if let Some(mut c) = self.control.take() {
                    let _ =
                        tokio::time::timeout(std::time::Duration::from_secs(2), c.shutdown()).await;
                }
                self.data.clear();
                self.closing = true;
            }
            other => tracing::warn!(?other, "unknown action"),
        }
    }

    fn command(&mut self, id: DataId, cmd: DataOrder<S>) {
        let sent = self.data.get(&id).is_some_and(|tx| tx.send(cmd).is_ok());
        if !sent {
            self.session.handle_io(
                IoEvent::DataFailed {
                    id,
                    reason: "data task gone".into(),
                },
                Instant::now(),
            );
        }
    }

    async fn on_event(&mut self, event: Event) {
        match event {
            Event::Login(request) => {
                let shared = self.shared.clone();
                let check = request.clone();
                let answer = blocking::run(move || shared.auth.authenticate(&check)).await;
                tracing::info!(user = %request.user, ?answer, "login");
                self.user = request.user.clone();
                self.session
                    .answer_login(request.token, answer, Instant::now());
            }
            Event::Storage { token, request } => {
                let id = ftps_backend::opened_for(&request);
                let shared = self.shared.clone();
                let user = self.user.clone();
                let (answer, file) =
                    blocking::run(move || ftps_backend::execute(&*shared.storage, &user, request))
                        .await;
                if let (Some(id), Some(file)) = (id, file) {
                    self.files.insert(id, file);
                }
                self.session.answer_storage(token, answer, Instant::now());
            }
            Event::Site { token, .. } => {
                let r = Reply::new(ReplyCode::NOT_IMPLEMENTED, "SITE not implemented.");
                self.session.answer_site(token, r, Instant::now());
            }
            Event::LoggedIn { user } => {
                tracing::info!(%user, "logged in");
                self.user = user;
            }
            Event::PlaintextDiscarded { bytes } => {
                tracing::warn!(bytes, "plaintext after AUTH discarded")
            }
            Event::TransferDone { path, bytes, ok } => tracing::info!(%path, bytes, ok, "transfer"),
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
