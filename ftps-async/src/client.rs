//! The FTPS client: a [`ClientSession`] driven over any [`Runtime`]'s sockets and rustls.
//!
//! Every call submits one operation and drives the session until it is done; transfers
//! stream between the data connection and the caller's reader or writer with large
//! buffers. Data connections use the control connection's rustls configuration and server
//! name, so they resume its TLS session (servers that require that, such as vsftpd with
//! `require_ssl_reuse`, accept them); after an upload the client sends close_notify and
//! reads to the end, which also collects the TLS 1.3 tickets the next transfer needs.

use crate::control::{self, Control, Taken, Woke};
use crate::ending::read_end;
use crate::runtime::{Closer, Runtime, timeout};
use crate::stall::{self, Stall};
use crate::stream;
use crate::tls::TlsStream;
use ftps_proto::boundary::{ALPN_FTP, DataEnd, DataId, TlsVersion};
use ftps_proto::client::{self, Action, DataEnding, Event, IoEvent, ListFormat, Operation, Output};
use ftps_proto::hash::{HashAlgorithm, HashReply};
use ftps_proto::tls::SessionStore;
use ftps_proto::{ClientSession, ListEntry, MlsxEntry, Pathname, Reply, Timestamp};
use ftps_proto::{TransportError, TransportErrorKind};
use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use rustls::pki_types::ServerName;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Why a client call failed.
pub type Error<R> = ftps_backend::client::Error<PlaintextOffer<R>>;

/// A data connection.
type Stream<R> = stream::Stream<<R as Runtime>::Tcp>;

pub use crate::list_target::ListTarget;
pub use ftps_backend::client::{ClientOptions, FtpUrl, report};
pub use ftps_backend::files::{
    TrustSource, client_config_from_pem_file, platform_client_config, platform_roots,
    platform_trust,
};
pub use ftps_proto::client::listing::Listing;
pub use ftps_proto::tls::{
    BOTH, Fingerprint, ServerTrust, client_config, client_config_from_pem,
    client_config_with_trust, client_config_with_versions, insecure_client_config,
    insecure_client_config_with_versions, roots_from_pem,
};

/// Where a transfer's bytes go or come from.
enum Sink<'a> {
    None,
    Write(&'a mut (dyn AsyncWrite + Unpin + Send)),
    Read(&'a mut (dyn AsyncRead + Unpin + Send)),
    /// Hand the data connection to the caller ([`DataReader`], [`DataWriter`]).
    Stream,
}

/// How driving an operation stopped.
enum Drive<R: Runtime> {
    Done(Output),
    /// The data connection, and how long ending it may take.
    Handed(DataId, Stream<R>, DataEnding),
}

/// Explicit-if-available found no TLS: logging in would send the password in clear text.
pub struct PlaintextOffer<R: Runtime> {
    client: Box<Client<R>>,
}

impl<R: Runtime> std::fmt::Debug for PlaintextOffer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaintextOffer").finish_non_exhaustive()
    }
}

impl<R: Runtime> PlaintextOffer<R> {
    /// Logs in without TLS.
    pub async fn accept(mut self) -> Result<Client<R>, Error<R>> {
        self.client.session.accept_plaintext(Instant::now());
        match self.client.until_ready().await? {
            Setup::Ready => Ok(*self.client),
            Setup::PlaintextOffered => Err(Error::Protocol(client::ClientError::TlsUnavailable)),
        }
    }
}

/// How setting up a session ended.
enum Setup {
    Ready,
    PlaintextOffered,
}

/// Where a client's TCP connection is to go, for a [`Dialer`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Target {
    /// The host: the options' host as given (a name is not resolved here, so that a proxy
    /// may resolve it) for the control connection and for a data connection to the same
    /// server; the address a PASV reply named, when the options trust it.
    pub host: String,
    /// The port.
    pub port: u16,
    /// A data connection (passive mode), not the control connection.
    pub data: bool,
}

/// Opens the client's TCP connections in place of a direct connect: through a SOCKS5 or
/// HTTP CONNECT proxy, say (`ftps-tokio`'s `examples/socks5.rs`). Called for the
/// control connection and for each passive data connection; TLS runs over what it
/// returns, as over a direct connection. Active mode (the server connecting back) does
/// not go through it and is refused with one. The options' `source_address` is not
/// applied: the dialer decides where its connections start.
pub type Dialer<R> =
    Arc<dyn Fn(Target) -> crate::BoxFuture<'static, io::Result<<R as Runtime>::Tcp>> + Send + Sync>;

/// A connected, logged-in FTP(S) client.
pub struct Client<R: Runtime> {
    session: ClientSession,
    /// How the session was opened (to open it again, see [`Client::session_renewals`]).
    options: ClientOptions,
    /// Opens the TCP connections, if the application gave one ([`Client::connect_via`]).
    dialer: Option<Dialer<R>>,
    /// The TLS sessions data connections may resume.
    store: Arc<SessionStore>,
    /// Whether the control connection runs TLS 1.3.
    tls13: bool,
    /// TYPE A for transfers (see `set_ascii`).
    ascii: bool,
    /// Writes to the control connection, and its TLS.
    control: Control<R::WriteHalf>,
    /// What the control connection's reader task passes on (see [`crate::control`]).
    control_rx: crate::control::Inbox,
    /// The reader task (dropping it cancels it where the runtime can).
    _reader: R::Task<()>,
    /// Ends the control connection whole, its reader included.
    close: Closer,
    /// The reader has reported the end of the connection.
    control_ended: bool,
    /// When a control handshake in progress must be done by.
    handshake_deadline: Option<Instant>,
    connector: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
    peer: SocketAddr,
    local: SocketAddr,
    /// Data connections being set up: connecting, or listening and accepting (active
    /// mode). Dropping one's task cancels it where the runtime can; its socket calls are
    /// bounded in time everywhere.
    data: HashMap<DataId, R::Task<()>>,
    /// Where those tasks report.
    data_tx: async_channel::Sender<(DataId, io::Result<Stream<R>>)>,
    data_rx: async_channel::Receiver<(DataId, io::Result<Stream<R>>)>,
    ready_data: HashMap<DataId, Stream<R>>,
    input: Vec<u8>,
    done: HashMap<client::OpId, Result<Output, client::ClientError>>,
    closed: Option<client::ClientError>,
    secure: bool,
    handed: Option<(DataId, Stream<R>, DataEnding)>,
    /// The protocol trace of the replies (debug level; see [`crate::trace`]).
    trace: crate::trace::ReplyTrace,
}

impl<R: Runtime> Drop for Client<R> {
    /// Ends the control connection whole: its reader task with it, on every runtime.
    fn drop(&mut self) {
        (self.close)();
    }
}

impl<R: Runtime> std::fmt::Debug for Client<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("peer", &self.peer)
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Client<R> {
    /// Connects, secures and logs in as the options say.
    pub async fn connect(options: ClientOptions) -> Result<Client<R>, Error<R>> {
        Self::open(options, None).await
    }

    /// As [`connect`](Self::connect), its TCP connections (control, passive data) opened
    /// by `dialer` (a proxy's, say). Active mode is refused (`InvalidInput`): the server
    /// could not connect back through the dialer.
    pub async fn connect_via(
        options: ClientOptions,
        dialer: Dialer<R>,
    ) -> Result<Client<R>, Error<R>> {
        if !options.session.passive {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "active mode cannot go through a dialer: use passive mode",
            )));
        }
        Self::open(options, Some(dialer)).await
    }

    async fn open(
        options: ClientOptions,
        dialer: Option<Dialer<R>>,
    ) -> Result<Client<R>, Error<R>> {
        let server_name = options.server_name()?;
        let link = open_control::<R>(&options, dialer.as_ref()).await?;
        let peer = link.peer;
        let (data_tx, data_rx) = async_channel::unbounded();
        let config = options.session.clone();
        let session = ClientSession::new(Arc::new(config), peer, Instant::now());
        let mut client = Client {
            session,
            options,
            dialer,
            store: link.store,
            tls13: false,
            ascii: false,
            control: Control::new(link.write),
            control_rx: link.control_rx,
            _reader: link.reader,
            close: link.close,
            control_ended: false,
            handshake_deadline: None,
            connector: link.connector,
            server_name,
            peer,
            local: link.local,
            data: HashMap::new(),
            data_tx,
            data_rx,
            ready_data: HashMap::new(),
            input: Vec::new(),
            done: HashMap::new(),
            closed: None,
            secure: false,
            handed: None,
            trace: crate::trace::ReplyTrace::default(),
        };
        match client.until_ready().await? {
            Setup::Ready => Ok(client),
            Setup::PlaintextOffered => Err(Error::PlaintextOnly(PlaintextOffer {
                client: Box::new(client),
            })),
        }
    }

    /// Transfers in TYPE A (ASCII: line endings converted to CRLF on the wire and back,
    /// RFC 959 §3.1.1.1) from now on, or TYPE I (binary, the default).
    pub fn set_ascii(&mut self, on: bool) {
        self.ascii = on;
    }

    /// Whether the control connection is protected by TLS.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The server's FEAT features.
    pub fn features(&self) -> &ftps_proto::Features {
        self.session.features()
    }

    async fn until_ready(&mut self) -> Result<Setup, Error<R>> {
        loop {
            Box::pin(self.execute(&mut Sink::None)).await?;
            while let Some(event) = self.session.poll_event() {
                match event {
                    Event::Ready { secure, .. } => {
                        self.secure = secure;
                        return Ok(Setup::Ready);
                    }
                    Event::PlaintextOnly => {
                        tracing::warn!("the server does not offer TLS");
                        return Ok(Setup::PlaintextOffered);
                    }
                    Event::Closed { error } => {
                        return Err(Error::Protocol(
                            error.unwrap_or(client::ClientError::Closed),
                        ));
                    }
                    _ => {}
                }
            }
            Box::pin(self.wait()).await?;
        }
    }

    /// How many times the control connection was opened again because the TLS 1.3
    /// session had no ticket left for the next data connection.
    ///
    /// Servers that require data connections to resume the control session (RFC 4217
    /// §10.2) and hand out no new TLS 1.3 ticket after an upload (ProFTPD 1.3.8) let a
    /// session run out of tickets: rustls uses each ticket once. Before a data connection
    /// that could not be resumed, the session logs in again on a fresh control connection
    /// and returns to the working directory (see [`ftps_proto::client`]'s renewal),
    /// instead of failing the transfer. Servers that renew tickets (vsftpd, Pure-FTPd,
    /// ours) never need it.
    pub fn session_renewals(&self) -> u32 {
        self.session.renewals()
    }

    /// Submits `op`, telling the session first whether the TLS session has a ticket left
    /// for its data connection (the session decides whether to renew).
    fn submit(&mut self, op: Operation) -> client::OpId {
        let exhausted = self.store.needs_renewal(self.tls13);
        let now = Instant::now();
        self.session
            .handle_io(IoEvent::Resumption { exhausted }, now);
        self.session.submit(op, now)
    }

    /// Runs one operation to its end, moving data through `sink`.
    async fn run(&mut self, op: Operation, sink: &mut Sink<'_>) -> Result<Output, Error<R>> {
        let id = self.submit(op);
        match self.drive(id, sink).await? {
            Drive::Done(output) => Ok(output),
            Drive::Handed(..) => Err(Error::Protocol(client::ClientError::Closed)),
        }
    }

    /// Drives the session until operation `id` is done, or (with [`Sink::Stream`]) until its
    /// data connection is ready to hand over.
    async fn drive(&mut self, id: client::OpId, sink: &mut Sink<'_>) -> Result<Drive<R>, Error<R>> {
        loop {
            Box::pin(self.execute(sink)).await?;
            if let Some((data, stream, ending)) = self.handed.take() {
                return Ok(Drive::Handed(data, stream, ending));
            }
            while let Some(event) = self.session.poll_event() {
                match event {
                    Event::Done { op, result } => {
                        self.done.insert(op, result);
                    }
                    Event::Closed { error } => {
                        self.closed = Some(error.unwrap_or(client::ClientError::Closed))
                    }
                    _ => {}
                }
            }
            if let Some(result) = self.done.remove(&id) {
                return result.map(Drive::Done).map_err(Error::Protocol);
            }
            if let Some(e) = &self.closed {
                return Err(Error::Protocol(e.clone()));
            }
            Box::pin(self.wait()).await?;
        }
    }

    /// Reports the end of a handed-over data connection and drives the operation to its end.
    async fn finish_handed(
        &mut self,
        op: client::OpId,
        data: DataId,
        bytes: u64,
        end: DataEnd,
    ) -> Result<u64, Error<R>> {
        self.session.handle_io(
            IoEvent::DataEnded {
                id: data,
                bytes,
                end,
            },
            Instant::now(),
        );
        match self.drive(op, &mut Sink::None).await? {
            Drive::Done(output) => transferred(output),
            Drive::Handed(..) => Err(Error::Protocol(client::ClientError::Closed)),
        }
    }

    /// Drops a handed-over data connection, sends ABOR and waits for the server's replies.
    async fn abort_handed(
        &mut self,
        op: client::OpId,
        stream: Option<Stream<R>>,
    ) -> Result<(), Error<R>> {
        drop(stream);
        self.session.abort(Instant::now());
        match self.drive(op, &mut Sink::None).await {
            Ok(_) | Err(Error::Protocol(client::ClientError::Aborted)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Starts a download and returns its data stream: read it to the end, then call
    /// [`DataReader::finish`], which waits for the server's final reply.
    pub async fn retrieve_stream(
        &mut self,
        path: impl AsRef<[u8]>,
        offset: u64,
    ) -> Result<DataReader<'_, R>, Error<R>> {
        let op = Operation::Retrieve {
            path: Pathname::from_bytes(path.as_ref())?,
            offset,
            ascii: self.ascii,
        };
        let id = self.submit(op);
        match self.drive(id, &mut Sink::Stream).await? {
            Drive::Handed(data, stream, ending) => Ok(DataReader {
                stall: Stall::new(data, self.options.session.data_timeout),
                client: self,
                op: id,
                data,
                ending,
                stream: Some(stream),
                bytes: 0,
                ended: None,
                settled: false,
            }),
            Drive::Done(_) => Err(Error::Protocol(client::ClientError::Closed)),
        }
    }

    /// Starts an upload (STOR at `offset`, or APPE) and returns its data stream: write to
    /// it, then call [`DataWriter::finish`], which ends the stream properly and waits for
    /// the server's final reply.
    pub async fn store_stream(
        &mut self,
        path: impl AsRef<[u8]>,
        offset: u64,
        append: bool,
    ) -> Result<DataWriter<'_, R>, Error<R>> {
        let op = Operation::Store {
            path: Pathname::from_bytes(path.as_ref())?,
            offset,
            append,
            ascii: self.ascii,
        };
        let id = self.submit(op);
        match self.drive(id, &mut Sink::Stream).await? {
            Drive::Handed(data, stream, ending) => Ok(DataWriter {
                stall: Stall::new(data, self.options.session.data_timeout),
                client: self,
                op: id,
                data,
                ending,
                stream,
                bytes: 0,
            }),
            Drive::Done(_) => Err(Error::Protocol(client::ClientError::Closed)),
        }
    }

    /// Executes the session's actions.
    async fn execute(&mut self, sink: &mut Sink<'_>) -> Result<(), Error<R>> {
        while let Some(action) = self.session.poll_action() {
            let now = Instant::now;
            match action {
                Action::Send(bytes) => {
                    crate::trace::sent(&bytes);
                    let limit = self.options.session.reply_timeout;
                    if self.control.send::<R>(&bytes, limit).await.is_err() {
                        self.session.handle_io(IoEvent::ControlClosed, now());
                    }
                }
                Action::StartControlTls => {
                    // A server that accepts the connection (or AUTH TLS) and then says
                    // nothing must not hold the client: the handshake has a deadline.
                    let limit = self.options.session.reply_timeout;
                    let started = match rustls::ClientConnection::new(
                        self.connector.clone(),
                        self.server_name.clone(),
                    ) {
                        Ok(c) => self
                            .control
                            .start_tls::<R>(rustls::Connection::Client(c), limit)
                            .await
                            .map_err(TransportError::from),
                        Err(e) => Err(TransportError::from_rustls(e)),
                    };
                    match started {
                        Ok(()) => self.handshake_deadline = Some(now() + limit),
                        Err(e) => self.session.handle_io(IoEvent::ControlTlsFailed(e), now()),
                    }
                }
                Action::StopControlTls => {
                    // The close_notify has the deadline of any write to the server.
                    let limit = self.options.session.reply_timeout;
                    if self.control.stop_tls::<R>(limit).await.is_err() {
                        self.session.handle_io(IoEvent::ControlClosed, now());
                    }
                    self.secure = false;
                }
                Action::ConnectData { id, addr, tls } => {
                    let connector = tls.then(|| (self.connector.clone(), self.server_name.clone()));
                    let limit = self.options.session.data_timeout;
                    let from = self.options.source_address;
                    // Through a dialer: the server's host as the options name it when the
                    // address is the control connection's peer's (the dialer's end, not
                    // the server, when it is a proxy).
                    let dial = self.dialer.clone().map(|dialer| {
                        let host = match addr.ip() == self.peer.ip() {
                            true => self.options.host.clone(),
                            false => addr.ip().to_string(),
                        };
                        let target = Target {
                            host,
                            port: addr.port(),
                            data: true,
                        };
                        (dialer, target)
                    });
                    let report = self.data_tx.clone();
                    let task = R::spawn(async move {
                        let connecting = match dial {
                            Some((dialer, target)) => dialer(target),
                            None => R::connect(addr, from),
                        };
                        let connected = connect_data::<R>(connecting, connector, limit).await;
                        let _ = report.send((id, connected)).await;
                    });
                    self.data.insert(id, task);
                }
                Action::ListenData {
                    id,
                    accept_from,
                    tls,
                } => match R::bind(SocketAddr::new(self.local.ip(), 0)).await {
                    Ok(listener) => {
                        let local = R::listener_addr(&listener)?;
                        let connector =
                            tls.then(|| (self.connector.clone(), self.server_name.clone()));
                        let limit = self.options.session.data_timeout;
                        let report = self.data_tx.clone();
                        let task = R::spawn(async move {
                            let accepted =
                                accept_data::<R>(listener, accept_from, connector, limit).await;
                            let _ = report.send((id, accepted)).await;
                        });
                        self.data.insert(id, task);
                        self.session
                            .handle_io(IoEvent::DataListening { id, local }, now());
                    }
                    Err(e) => self.session.handle_io(
                        IoEvent::DataFailed {
                            id,
                            reason: e.into(),
                        },
                        now(),
                    ),
                },
                Action::StartTransfer {
                    id,
                    upload,
                    limit,
                    ending,
                } => {
                    let Some(stream) = self.ready_data.remove(&id) else {
                        self.session.handle_io(
                            IoEvent::DataFailed {
                                id,
                                reason: "no data connection".into(),
                            },
                            now(),
                        );
                        continue;
                    };
                    if let Sink::Stream = sink {
                        self.handed = Some((id, stream, ending));
                        return Ok(());
                    }
                    let how = Pump {
                        id,
                        upload,
                        limit,
                        ending,
                        ascii: self.ascii,
                    };
                    match pump::<R>(stream, how, sink, &mut self.session).await? {
                        Pumped::Ended(bytes, end) => self
                            .session
                            .handle_io(IoEvent::DataEnded { id, bytes, end }, now()),
                        Pumped::OverLimit(bytes) => self
                            .session
                            .handle_io(IoEvent::DataOverLimit { id, bytes }, now()),
                        // The session ended the transfer (its stall timer) and said what
                        // comes next.
                        Pumped::Stopped => {}
                    }
                }
                Action::CloseData { id } => {
                    // Dropping a task cancels it.
                    self.data.remove(&id);
                    self.ready_data.remove(&id);
                }
                Action::Close => {
                    self.control.close::<R>(Duration::from_secs(2)).await;
                    (self.close)();
                }
                Action::Reconnect => match Box::pin(self.reconnect()).await {
                    Ok(peer) => self
                        .session
                        .handle_io(IoEvent::ControlReconnected { peer }, now()),
                    Err(e) => {
                        tracing::warn!("renewing the control connection failed: {e:?}");
                        self.session.handle_io(IoEvent::ControlClosed, now());
                    }
                },
                other => tracing::warn!(?other, "unknown client action"),
            }
        }
        Ok(())
    }

    /// Ends the control connection and opens a fresh one to the same server, with a fresh
    /// TLS session store ([`Action::Reconnect`]); the session sets it up.
    async fn reconnect(&mut self) -> Result<SocketAddr, Error<R>> {
        tracing::info!("TLS 1.3 tickets used up: opening the control connection again");
        self.control.close::<R>(Duration::from_secs(2)).await;
        (self.close)();
        let link = open_control::<R>(&self.options, self.dialer.as_ref()).await?;
        self._reader = link.reader;
        self.control_rx = link.control_rx;
        self.control = Control::new(link.write);
        self.close = link.close;
        self.store = link.store;
        self.connector = link.connector;
        self.tls13 = false;
        self.control_ended = false;
        self.handshake_deadline = None;
        self.input.clear();
        self.trace.reset();
        (self.local, self.peer) = (link.local, link.peer);
        Ok(link.peer)
    }

    /// Waits for the next input: control bytes, a data connection, a timeout. Only
    /// channels and the timer are waited on (see [`crate::control`]).
    async fn wait(&mut self) -> Result<(), Error<R>> {
        let deadline = [self.session.poll_timeout(), self.handshake_deadline]
            .into_iter()
            .flatten()
            .min();
        if deadline.is_some_and(|t| t <= Instant::now()) {
            self.on_timeout();
            return Ok(());
        }
        // Backpressure: no more control input while the session's bound of it waits.
        let waiting = self.input.len();
        let reading =
            !self.control_ended && (waiting == 0 || waiting < self.session.max_control_input());
        let data = Some(&self.data_rx);
        let woke = control::next::<R, _>(&mut self.control_rx, reading, data, deadline, None).await;
        let now = Instant::now();
        match woke {
            Woke::Control(Some(bytes)) if !bytes.is_empty() => self.on_control_bytes(&bytes).await,
            Woke::Control(_) => {
                self.control_ended = true;
                self.session.handle_io(IoEvent::ControlClosed, now);
            }
            Woke::Event(Some((id, result))) => {
                // A task the session has dropped since (CloseData) reports no more.
                if self.data.remove(&id).is_some() {
                    match result {
                        Ok(stream) => {
                            self.ready_data.insert(id, stream);
                            self.session.handle_io(IoEvent::DataConnected { id }, now);
                        }
                        Err(e) => self.session.handle_io(
                            IoEvent::DataFailed {
                                id,
                                reason: e.into(),
                            },
                            now,
                        ),
                    }
                }
            }
            // The client never waits on a drain (`None` above).
            Woke::Event(None) | Woke::Drain => {}
            Woke::Timeout => self.on_timeout(),
        }
        Ok(())
    }

    async fn on_control_bytes(&mut self, bytes: &[u8]) {
        let now = Instant::now;
        let limit = self.options.session.reply_timeout;
        let before = self.input.len();
        let taken = self.control.take::<R>(bytes, &mut self.input, limit).await;
        self.trace
            .received(self.input.get(before..).unwrap_or_default());
        match taken {
            Taken::Input => {}
            Taken::Established => {
                self.handshake_deadline = None;
                let event = match self.control.tls() {
                    Some(rustls::Connection::Client(conn)) => {
                        let sni = match &self.server_name {
                            ServerName::DnsName(name) if self.connector.enable_sni => {
                                Some(name.as_ref())
                            }
                            _ => None,
                        };
                        let info = ftps_proto::tls::client_handshake_info(conn, sni);
                        crate::trace::handshake("control", conn);
                        self.tls13 = info.version == TlsVersion::Tls13;
                        IoEvent::ControlTlsEstablished(info)
                    }
                    _ => {
                        IoEvent::ControlTlsFailed("no client TLS on the control connection".into())
                    }
                };
                self.session.handle_io(event, now());
            }
            Taken::HandshakeFailed(e) => {
                self.handshake_deadline = None;
                return self
                    .session
                    .handle_io(IoEvent::ControlTlsFailed(e.into()), now());
            }
            Taken::Failed => return self.session.handle_io(IoEvent::ControlClosed, now()),
        }
        let used = self.session.handle_control_input(&self.input, now());
        self.input.drain(..used);
    }

    fn on_timeout(&mut self) {
        let now = Instant::now();
        if self.handshake_deadline.is_some_and(|t| t <= now) {
            self.handshake_deadline = None;
            let reason =
                TransportError::new(TransportErrorKind::TimedOut, "the TLS handshake timed out");
            self.session
                .handle_io(IoEvent::ControlTlsFailed(reason), now);
        }
        self.session.handle_timeout(now);
    }

    // ----- operations ----------------------------------------------------------------

    /// The listing bound (see [`Client::set_max_listing`]).
    pub fn max_listing(&self) -> u64 {
        self.session.max_listing()
    }

    /// Bounds what a listing may hold, from now on: at most `bytes` bytes may arrive
    /// ([`list_raw`](Self::list_raw)), and the parsed entries ([`list`](Self::list),
    /// [`mlsd`](Self::mlsd), [`nlst`](Self::nlst)) may hold at most that much memory
    /// ([`ftps_proto::client::listing`]). Past it the listing fails with
    /// [`client::ClientError::ListingTooLarge`]; one still arriving is aborted (ABOR) and
    /// its data connection closed, and the session goes on. Default
    /// [`ftps_proto::client::DEFAULT_MAX_LISTING`] (64 MiB).
    pub fn set_max_listing(&mut self, bytes: u64) {
        self.session.set_max_listing(bytes);
    }

    /// Lists a directory in the given format; returns the raw listing, at most
    /// [`max_listing`](Self::max_listing) bytes (more is
    /// [`client::ClientError::ListingTooLarge`]).
    pub async fn list_raw(
        &mut self,
        path: impl ListTarget,
        format: ListFormat,
    ) -> Result<Vec<u8>, Error<R>> {
        let path = crate::list_target::pathname(&path)?;
        let mut out = Vec::new();
        self.run(Operation::List { path, format }, &mut Sink::Write(&mut out))
            .await?;
        Ok(out)
    }

    /// LIST, parsed, within the listing bound: the entries, and the lines that parsed in
    /// no known form as the server sent them ([`Listing::unparsed`]); the listing derefs
    /// to its entries.
    pub async fn list(&mut self, path: impl ListTarget) -> Result<Listing<ListEntry>, Error<R>> {
        let raw = self.list_raw(path, ListFormat::List).await?;
        Ok(client::listing::parse_list(&raw, self.max_listing())?)
    }

    /// MLSD, parsed, within the listing bound: the entries, and the lines that did not
    /// parse ([`Listing::unparsed`]); the listing derefs to its entries.
    pub async fn mlsd(&mut self, path: impl ListTarget) -> Result<Listing<MlsxEntry>, Error<R>> {
        let raw = self.list_raw(path, ListFormat::Mlsd).await?;
        Ok(client::listing::parse_mlsd(&raw, self.max_listing())?)
    }

    /// NLST, within the listing bound: the names, each a [`Pathname`] that reaches its file
    /// (bytes where they are not UTF-8), and the lines no pathname can be (CR or NUL in
    /// them), as sent (`Listing::unparsed`).
    pub async fn nlst(&mut self, path: impl ListTarget) -> Result<Listing<Pathname>, Error<R>> {
        let raw = self.list_raw(path, ListFormat::Nlst).await?;
        Ok(client::listing::parse_nlst(&raw, self.max_listing())?)
    }

    /// Downloads `path` from `offset` into `out`; returns the bytes received.
    pub async fn retrieve<W: AsyncWrite + Unpin + Send>(
        &mut self,
        path: impl AsRef<[u8]>,
        offset: u64,
        out: &mut W,
    ) -> Result<u64, Error<R>> {
        let op = Operation::Retrieve {
            path: Pathname::from_bytes(path.as_ref())?,
            offset,
            ascii: self.ascii,
        };
        transferred(self.run(op, &mut Sink::Write(out)).await?)
    }

    /// Uploads `input` to `path` (STOR at `offset`, or APPE if `append`); returns the bytes
    /// sent.
    pub async fn store<I: AsyncRead + Unpin + Send>(
        &mut self,
        path: impl AsRef<[u8]>,
        input: &mut I,
        offset: u64,
        append: bool,
    ) -> Result<u64, Error<R>> {
        let op = Operation::Store {
            path: Pathname::from_bytes(path.as_ref())?,
            offset,
            append,
            ascii: self.ascii,
        };
        transferred(self.run(op, &mut Sink::Read(input)).await?)
    }

    /// Downloads to a local file; with `resume`, continues a partial file.
    ///
    /// A failed download never destroys the file it was to replace (see
    /// [`ftps_backend::download`]): without `resume` the bytes go to a temporary file
    /// beside `local`, renamed over it only once the download is complete (keeping the
    /// old file's owner, group and mode), and removed otherwise; a device or FIFO is
    /// written through. With `resume`, `local` is continued in place.
    pub async fn get_file(
        &mut self,
        path: impl AsRef<[u8]>,
        local: &Path,
        resume: bool,
    ) -> Result<u64, Error<R>> {
        use ftps_backend::download::{Destination, Partial};
        if resume {
            let mut file = R::open_file(local.to_path_buf(), true, false).await?;
            let offset = file.seek(io::SeekFrom::End(0)).await?;
            let n = self.retrieve(path, offset, &mut file).await?;
            file.flush().await?;
            return Ok(n);
        }
        let local = local.to_path_buf();
        let destination = R::unblock(move || Destination::of(&local)).await;
        let (target, keep) = match destination {
            Destination::Through(device) => {
                let mut file = R::open_file(device, true, false).await?;
                let n = self.retrieve(path, 0, &mut file).await?;
                file.flush().await?;
                return Ok(n);
            }
            Destination::File { path, keep } => (path, keep),
        };
        let (partial, file) = R::unblock(move || Partial::create(&target, keep)).await?;
        let mut file = R::file_from_std(file);
        let n = self.retrieve(path, 0, &mut file).await?;
        file.flush().await?;
        file.close().await?;
        R::unblock(move || partial.publish()).await?;
        Ok(n)
    }

    /// Uploads a local file; with `resume`, continues from the remote file's size.
    pub async fn put_file(
        &mut self,
        local: &Path,
        path: impl AsRef<[u8]>,
        resume: bool,
    ) -> Result<u64, Error<R>> {
        let mut file = R::open_file(local.to_path_buf(), false, false).await?;
        let offset = if resume {
            self.size(path.as_ref()).await.unwrap_or(0)
        } else {
            0
        };
        if offset > 0 {
            file.seek(io::SeekFrom::Start(offset)).await?;
        }
        self.store(path, &mut file, offset, false).await
    }

    /// SIZE.
    pub async fn size(&mut self, path: impl AsRef<[u8]>) -> Result<u64, Error<R>> {
        Ok(self
            .run(
                Operation::Size(Pathname::from_bytes(path.as_ref())?),
                &mut Sink::None,
            )
            .await?
            .into_size()?)
    }

    /// HASH (draft-bryan-ftpext-hash-02): `OPTS HASH`, `RANG` for a range (`start..=end`),
    /// then `HASH`; the server's 213 reply, parsed. A server whose FEAT does not offer
    /// HASH, the algorithm, or RANG for a range fails with
    /// [`ClientError::Unsupported`](ftps_proto::client::ClientError::Unsupported),
    /// having sent nothing (see [`ftps_proto::hash::offered`] and
    /// [`ftps_proto::hash::preferred`] to choose an algorithm the server offers).
    pub async fn hash(
        &mut self,
        path: impl AsRef<[u8]>,
        algorithm: HashAlgorithm,
        range: Option<(u64, u64)>,
    ) -> Result<HashReply, Error<R>> {
        let op = Operation::Hash {
            path: Pathname::from_bytes(path.as_ref())?,
            algorithm,
            range,
        };
        Ok(self.run(op, &mut Sink::None).await?.into_hash()?)
    }

    /// MDTM.
    pub async fn modified(&mut self, path: impl AsRef<[u8]>) -> Result<Timestamp, Error<R>> {
        Ok(self
            .run(
                Operation::Modified(Pathname::from_bytes(path.as_ref())?),
                &mut Sink::None,
            )
            .await?
            .into_modified()?)
    }

    /// PWD.
    pub async fn pwd(&mut self) -> Result<String, Error<R>> {
        Ok(self
            .run(Operation::Pwd, &mut Sink::None)
            .await?
            .into_path()?)
    }

    /// CWD.
    pub async fn cwd(&mut self, path: impl AsRef<[u8]>) -> Result<(), Error<R>> {
        self.on_path(Operation::Cwd, path).await
    }

    /// MKD.
    pub async fn mkdir(&mut self, path: impl AsRef<[u8]>) -> Result<(), Error<R>> {
        self.on_path(Operation::Mkd, path).await
    }

    /// RMD.
    pub async fn rmdir(&mut self, path: impl AsRef<[u8]>) -> Result<(), Error<R>> {
        self.on_path(Operation::Rmd, path).await
    }

    /// DELE.
    pub async fn delete(&mut self, path: impl AsRef<[u8]>) -> Result<(), Error<R>> {
        self.on_path(Operation::Dele, path).await
    }

    /// Runs the operation `op` makes of `path`, with no output but its success.
    async fn on_path(
        &mut self,
        op: fn(Pathname) -> Operation,
        path: impl AsRef<[u8]>,
    ) -> Result<(), Error<R>> {
        let op = op(Pathname::from_bytes(path.as_ref())?);
        self.run(op, &mut Sink::None).await.map(drop)
    }

    /// RNFR + RNTO.
    pub async fn rename(
        &mut self,
        from: impl AsRef<[u8]>,
        to: impl AsRef<[u8]>,
    ) -> Result<(), Error<R>> {
        let op = Operation::Rename {
            from: Pathname::from_bytes(from.as_ref())?,
            to: Pathname::from_bytes(to.as_ref())?,
        };
        self.run(op, &mut Sink::None).await.map(drop)
    }

    /// CDUP.
    pub async fn cdup(&mut self) -> Result<(), Error<R>> {
        self.run(Operation::Cdup, &mut Sink::None).await.map(drop)
    }

    /// MLST (RFC 3659 §7): the facts of one file or directory.
    pub async fn mlst(&mut self, path: impl ListTarget) -> Result<MlsxEntry, Error<R>> {
        let path = crate::list_target::pathname(&path)?;
        Ok(self
            .run(Operation::Mlst(path), &mut Sink::None)
            .await?
            .into_entry()?)
    }

    /// MFMT: sets a file's modification time.
    pub async fn set_modified(
        &mut self,
        path: impl AsRef<[u8]>,
        time: Timestamp,
    ) -> Result<(), Error<R>> {
        let op = Operation::SetModified {
            path: Pathname::from_bytes(path.as_ref())?,
            time,
        };
        self.run(op, &mut Sink::None).await.map(drop)
    }

    /// SITE: a server-specific command; returns the reply.
    pub async fn site(&mut self, command: &str) -> Result<Reply, Error<R>> {
        let op = Operation::Site(ftps_proto::Text::new(command)?);
        Ok(self.run(op, &mut Sink::None).await?.into_reply()?)
    }

    /// STAT over the control connection: the server's status, or a listing of `path`.
    pub async fn stat(&mut self, path: impl ListTarget) -> Result<Reply, Error<R>> {
        let path = crate::list_target::pathname(&path)?;
        Ok(self
            .run(Operation::Stat(path), &mut Sink::None)
            .await?
            .into_reply()?)
    }

    /// STOU: uploads `input` under a name the server picks; returns the bytes sent and the
    /// final reply (which names the file).
    pub async fn store_unique<I: AsyncRead + Unpin + Send>(
        &mut self,
        input: &mut I,
    ) -> Result<(u64, Reply), Error<R>> {
        let mut sink = Sink::Read(input);
        let output = self.run(Operation::StoreUnique, &mut sink).await?;
        Ok(output.into_transfer()?)
    }

    /// CCC (RFC 4217 §6): ends TLS on the control connection, for firewalls that must read
    /// it; data connections keep their protection level. Opt-in: commands, and anything a
    /// later login sends, travel in clear text afterwards.
    pub async fn clear_control_channel(&mut self) -> Result<(), Error<R>> {
        self.run(Operation::ClearControl, &mut Sink::None)
            .await
            .map(drop)
    }

    /// NOOP.
    pub async fn noop(&mut self) -> Result<(), Error<R>> {
        self.run(Operation::Noop, &mut Sink::None).await.map(drop)
    }

    /// Sends any command without a data connection; returns the final reply, whatever its
    /// code.
    pub async fn raw(&mut self, command: ftps_proto::Command) -> Result<Reply, Error<R>> {
        Ok(self
            .run(Operation::Raw(command), &mut Sink::None)
            .await?
            .into_reply()?)
    }

    /// QUIT and close.
    pub async fn quit(mut self) -> Result<(), Error<R>> {
        self.run(Operation::Quit, &mut Sink::None).await.map(drop)
    }
}

fn transferred<R: Runtime>(output: Output) -> Result<u64, Error<R>> {
    Ok(output.into_bytes()?)
}

/// A passive-mode data connection: `connecting` (a direct connect, from the session's
/// source address if it has one, or the application's dialer) within `limit`, then
/// secured.
async fn connect_data<R: Runtime>(
    connecting: crate::BoxFuture<'static, io::Result<R::Tcp>>,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    limit: Duration,
) -> io::Result<Stream<R>> {
    let tcp = timeout::<R, _>(limit, connecting)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "data connection timed out"))??;
    secure_data::<R>(tcp, tls, limit).await
}

async fn secure_data<R: Runtime>(
    tcp: R::Tcp,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    limit: Duration,
) -> io::Result<Stream<R>> {
    R::set_nodelay(&tcp)?;
    match tls {
        None => Ok(stream::Stream::Plain(tcp)),
        Some((connector, name)) => {
            let s = timeout::<R, _>(limit, TlsStream::connect(tcp, connector, name))
                .await
                .map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "data TLS handshake timed out")
                })??;
            Ok(stream::Stream::tls(s))
        }
    }
}

/// An active-mode data connection: accepts on `listener` until `accept_from` connects
/// (others are dropped), for at most `limit`; then secures it.
async fn accept_data<R: Runtime>(
    listener: R::Listener,
    accept_from: std::net::IpAddr,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    limit: Duration,
) -> io::Result<Stream<R>> {
    let accepting = async {
        loop {
            let (tcp, from) = R::accept(&listener).await?;
            // The session named the one peer to accept.
            if from.ip() == accept_from {
                return Ok::<_, io::Error>(tcp);
            }
            tracing::debug!(%from, "data connection from another address dropped");
        }
    };
    let tcp = timeout::<R, _>(limit, accepting)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no data connection came"))??;
    drop(listener);
    secure_data::<R>(tcp, tls, limit).await
}

/// Moves one transfer's bytes; returns the count and how the data ended. A
/// download that would pass its `limit` (see [`Action::StartTransfer`]) stops before the
/// byte that passes it: the data connection is dropped (the session then aborts the
/// transfer).
async fn pump<R: Runtime>(
    mut stream: Stream<R>,
    how: Pump,
    sink: &mut Sink<'_>,
    session: &mut ClientSession,
) -> Result<Pumped, Error<R>> {
    let Pump {
        id,
        upload,
        limit,
        ending,
        ascii,
    } = how;
    let mut buf = vec![0u8; crate::stream::BUFFER];
    let mut converted = Vec::new();
    let mut total = 0u64;
    if upload {
        let Sink::Read(input) = sink else {
            let end = DataEnd::Failed("no stream to upload from".into());
            return Ok(Pumped::Ended(0, end));
        };
        let mut to_network = ascii.then(ftps_proto::ascii::ToNetwork::default);
        // Bytes on the wire (with line endings converted), for the session's progress.
        let mut wire = 0u64;
        loop {
            let n = input.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            let chunk = match to_network.as_mut() {
                Some(c) => {
                    converted.clear();
                    c.convert(&buf[..n], &mut converted);
                    &converted[..]
                }
                None => &buf[..n],
            };
            let mut rest = chunk;
            while !rest.is_empty() {
                match timeout::<R, _>(wait_limit(session), stream.write(rest)).await {
                    Ok(Ok(0)) => {
                        let end = DataEnd::Failed("the data connection took no bytes".into());
                        return Ok(Pumped::Ended(total, end));
                    }
                    Ok(Err(e)) => return Ok(Pumped::Ended(total, DataEnd::Failed(e.into()))),
                    Ok(Ok(k)) => {
                        rest = &rest[k..];
                        wire += k as u64;
                        let progress = IoEvent::DataProgress { id, bytes: wire };
                        session.handle_io(progress, Instant::now());
                    }
                    Err(_) if still_moving(session, id) => {}
                    Err(_) => return Ok(Pumped::Stopped),
                }
            }
            total += n as u64;
        }
        Ok(Pumped::Ended(
            total,
            end_upload::<R>(&mut stream, ending).await,
        ))
    } else {
        let mut from_network = ascii.then(ftps_proto::ascii::FromNetwork::default);
        loop {
            let read = loop {
                match timeout::<R, _>(wait_limit(session), stream.read(&mut buf)).await {
                    Ok(read) => break read,
                    Err(_) if still_moving(session, id) => {}
                    Err(_) => return Ok(Pumped::Stopped),
                }
            };
            match read {
                Ok(0) => {
                    end_download::<R>(&mut stream, ending).await;
                    if let (Some(c), Sink::Write(out)) = (from_network.as_mut(), &mut *sink) {
                        converted.clear();
                        c.finish(&mut converted);
                        out.write_all(&converted).await?;
                    }
                    return Ok(Pumped::Ended(
                        total,
                        DataEnd::Complete { close_notify: true },
                    ));
                }
                Ok(n) => {
                    if limit.is_some_and(|limit| total + n as u64 > limit) {
                        return Ok(Pumped::OverLimit(total));
                    }
                    total += n as u64;
                    let progress = IoEvent::DataProgress { id, bytes: total };
                    session.handle_io(progress, Instant::now());
                    if let Sink::Write(out) = sink {
                        match from_network.as_mut() {
                            Some(c) => {
                                converted.clear();
                                c.convert(&buf[..n], &mut converted);
                                out.write_all(&converted).await?;
                            }
                            None => out.write_all(&buf[..n]).await?,
                        }
                    }
                }
                // Without close_notify (TLS) or with a reset: maybe cut short.
                Err(e) => return Ok(Pumped::Ended(total, read_end(&e, stream.is_tls()))),
            }
        }
    }
}

/// How long a data socket call may wait: until the session's next timer (its stall
/// timer, while the transfer moves).
fn wait_limit(session: &ClientSession) -> Duration {
    session
        .poll_timeout()
        .map_or(Duration::from_secs(3600), |deadline| {
            deadline.saturating_duration_since(Instant::now())
        })
}

/// After a data socket call outlasted [`wait_limit`]: fires the session's timers, and
/// says whether the session still wants the transfer's bytes moved (no stall).
fn still_moving(session: &mut ClientSession, id: DataId) -> bool {
    session.handle_timeout(Instant::now());
    session.is_moving(id)
}

/// A fresh control connection, before any byte: what [`Client::connect`] starts from and
/// a renewal ([`Action::Reconnect`]) replaces the old one with.
struct ControlLink<R: Runtime> {
    /// The TLS sessions data connections may resume: this connection's, and no other's.
    store: Arc<SessionStore>,
    /// The rustls configuration of this connection (with `store`).
    connector: Arc<rustls::ClientConfig>,
    local: SocketAddr,
    peer: SocketAddr,
    close: Closer,
    write: R::WriteHalf,
    control_rx: crate::control::Inbox,
    reader: R::Task<()>,
}

/// Connects to the server the options name, within their connect timeout, and starts the
/// control connection's reader.
async fn open_control<R: Runtime>(
    options: &ClientOptions,
    dialer: Option<&Dialer<R>>,
) -> Result<ControlLink<R>, Error<R>> {
    let store = SessionStore::new();
    let connector = options.tls_config(store.clone())?;
    let connecting = match dialer {
        Some(dial) => dial(Target {
            host: options.host.clone(),
            port: options.port,
            data: false,
        }),
        None => Box::pin(crate::connect_named::<R>(
            options.host.clone(),
            options.port,
            options.source_address,
        )),
    };
    let tcp = timeout::<R, _>(options.connect_timeout, connecting)
        .await
        .map_err(|_| Error::Protocol(client::ClientError::Timeout))??;
    R::set_nodelay(&tcp)?;
    let (local, peer) = R::addrs(&tcp)?;
    let close = R::closer(&tcp)?;
    let (read, write) = R::split(tcp)?;
    let (control_tx, control_rx) = crate::control::inbox();
    let reader = crate::control::spawn_reader::<R>(read, control_tx);
    Ok(ControlLink {
        store,
        connector,
        local,
        peer,
        close,
        write,
        control_rx,
        reader,
    })
}

/// What the session asked of one transfer ([`Action::StartTransfer`]).
struct Pump {
    /// The data connection.
    id: DataId,
    /// TYPE A: convert line endings.
    ascii: bool,
    /// The client sends.
    upload: bool,
    /// The most bytes a download may bring.
    limit: Option<u64>,
    /// How long ending the data connection may take.
    ending: DataEnding,
}

/// How a transfer's data connection ended.
enum Pumped {
    /// At its end (bytes, and how).
    Ended(u64, DataEnd),
    /// The session ended the transfer: no byte moved for its data timeout.
    Stopped,
    /// A download would have passed its limit (bytes kept).
    OverLimit(u64),
}

/// The data stream of a download started with [`Client::retrieve_stream`]. A TLS stream
/// that ends without close_notify is an error (the data may be cut short), never a quiet
/// end of file. Call [`finish`](Self::finish) (or [`abort`](Self::abort)); dropped
/// without either (say, by `?` after a read error), the download ends as failed — or as
/// complete, if it was read to a clean end — and the session goes on with the next call.
pub struct DataReader<'c, R: Runtime> {
    client: &'c mut Client<R>,
    op: client::OpId,
    data: DataId,
    /// How long ending the data connection may take (the session's decision).
    ending: DataEnding,
    stream: Option<Stream<R>>,
    bytes: u64,
    ended: Option<DataEnd>,
    /// The session was told how the data ended (by finish or abort).
    settled: bool,
    /// No byte for the data timeout is an error, as in the transfers the client runs
    /// (the session's stall timer decides).
    stall: Stall<R>,
}

impl<R: Runtime> AsyncRead for DataReader<'_, R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(stream) = this.stream.as_mut().filter(|_| this.ended.is_none()) else {
            return Poll::Ready(Ok(0));
        };
        let tls = stream.is_tls();
        let session = &mut this.client.session;
        let polled = R::poll_until(Stall::<R>::deadline(session), || {
            Pin::new(stream).poll_read(cx, buf)
        });
        match stall::watch(&mut this.stall, session, cx, polled) {
            Poll::Ready(Ok(n)) => {
                if n == 0 {
                    this.ended = Some(DataEnd::Complete { close_notify: true });
                } else {
                    this.bytes += n as u64;
                    this.stall.progress(session, this.bytes);
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => {
                this.ended = Some(read_end(&e, tls));
                Poll::Ready(Err(e))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<R: Runtime> DataReader<'_, R> {
    /// Aborts the download (RFC 959 ABOR): the data connection is dropped and the server
    /// told; the session goes on.
    pub async fn abort(mut self) -> Result<(), Error<R>> {
        self.settled = true;
        let stream = self.stream.take();
        self.client.abort_handed(self.op, stream).await
    }

    /// Reads what is left (if anything), then waits for the server's final reply; returns
    /// the bytes received. Fails if the stream ended without close_notify or the reply is
    /// negative.
    ///
    /// Our end of the data connection is closed (close_notify, then FIN) before the wait:
    /// servers such as vsftpd end a TLS data connection with a two-way shutdown and send
    /// the final reply only once the client has closed too (RFC 4217 §10.2 leaves the
    /// order to them).
    pub async fn finish(mut self) -> Result<u64, Error<R>> {
        if self.ended.is_none()
            && let Err(e) = futures_lite::io::copy(&mut self, &mut futures_lite::io::sink()).await
        {
            tracing::debug!("data stream: {e}");
        }
        if let Some(mut stream) = self.stream.take() {
            end_download::<R>(&mut stream, self.ending).await;
        }
        self.settled = true;
        let end = self.ended.take().unwrap_or_else(not_read_to_end);
        self.client
            .finish_handed(self.op, self.data, self.bytes, end)
            .await
    }
}

impl<R: Runtime> Drop for DataReader<'_, R> {
    fn drop(&mut self) {
        if !self.settled {
            let end = IoEvent::DataEnded {
                id: self.data,
                bytes: self.bytes,
                end: self.ended.take().unwrap_or_else(not_read_to_end),
            };
            self.client.session.handle_io(end, Instant::now());
        }
    }
}

/// The data stream of an upload started with [`Client::store_stream`]. Call
/// [`finish`](Self::finish): dropping it without does not complete the upload.
pub struct DataWriter<'c, R: Runtime> {
    client: &'c mut Client<R>,
    op: client::OpId,
    data: DataId,
    /// How long ending the data connection may take (the session's decision).
    ending: DataEnding,
    stream: Stream<R>,
    bytes: u64,
    /// No byte taken for the data timeout is an error (the session's stall timer
    /// decides).
    stall: Stall<R>,
}

impl<R: Runtime> AsyncWrite for DataWriter<'_, R> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let session = &mut this.client.session;
        let polled = R::poll_until(Stall::<R>::deadline(session), || {
            Pin::new(&mut this.stream).poll_write(cx, buf)
        });
        match stall::watch(&mut this.stall, session, cx, polled) {
            Poll::Ready(Ok(n)) => {
                this.bytes += n as u64;
                this.stall.progress(session, this.bytes);
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let session = &mut this.client.session;
        let polled = R::poll_until(Stall::<R>::deadline(session), || {
            Pin::new(&mut this.stream).poll_flush(cx)
        });
        let flushed = stall::watch(&mut this.stall, session, cx, polled);
        if let Poll::Ready(Ok(())) = flushed {
            this.stall.progress(session, this.bytes);
        }
        flushed
    }
    /// Flushes only: the stream is ended by [`DataWriter::finish`].
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }
}

impl<R: Runtime> DataWriter<'_, R> {
    /// Aborts the upload (RFC 959 ABOR): the data connection is dropped and the server
    /// told; the operation ends with [`client::ClientError::Aborted`], the session goes
    /// on. Servers keep or drop the partial file as they do for any broken upload (ours
    /// drops it).
    pub async fn abort(self) -> Result<(), Error<R>> {
        let DataWriter {
            client, op, stream, ..
        } = self;
        client.abort_handed(op, Some(stream)).await
    }

    /// Ends the upload (close_notify, then reading to the server's end), and waits for
    /// the final reply; returns the bytes sent.
    pub async fn finish(self) -> Result<u64, Error<R>> {
        let DataWriter {
            client,
            op,
            data,
            ending,
            mut stream,
            bytes,
            ..
        } = self;
        let end = end_upload::<R>(&mut stream, ending).await;
        client.finish_handed(op, data, bytes, end).await
    }
}

/// Closes our end of a download's data connection once the server's end has arrived:
/// close_notify (TLS) and FIN, within the session's `ending.close`. Servers that end TLS
/// with a two-way shutdown (vsftpd) send the final reply only after this.
async fn end_download<R: Runtime>(stream: &mut Stream<R>, ending: DataEnding) {
    let _ = timeout::<R, _>(ending.close, stream.close()).await;
}

/// Ends an upload: close_notify and FIN, the end of the data that the final reply then
/// confirms. Then reads to the server's end, so that a TLS 1.3 ticket sent there is taken
/// in for the next transfer; the session bounds both steps (`ending`). How the server
/// ends its side (with close_notify or a bare FIN) does not matter: our data went out
/// whole, and the final reply says whether it arrived (curl and lftp judge uploads so
/// too). Returns how our end went out: [`DataEnd::Complete`] if cleanly.
///
/// With a server that settled on ALPN `ftp` (ours, which ends an upload at our
/// close_notify and answers it with its own), the FIN waits for the server's end, for at
/// most `ending.half_close` (`ClientConfig::upload_half_close_wait`). A connection through a proxy without half-close
/// (microsocks) is closed whole at our FIN, and where the server's bytes (its ticket) are
/// still unread by the proxy then, its kernel resets the server's side, which throws
/// away what of the upload the server had not read yet (`ftps-tokio/tests/socks5.rs`:
/// 426 for at least 9 of 60 uploads). A server that waits for the FIN as well (RFC 959's
/// end of data) gets it after the grace; one without ALPN `ftp`, at once.
async fn end_upload<R: Runtime>(stream: &mut Stream<R>, ending: DataEnding) -> DataEnd {
    let half_close = stream.alpn() == Some(ALPN_FTP);
    // The close_notify is a write like any: a server that stopped reading gets the
    // same bound as the download's close.
    let closed = match half_close {
        true => timeout::<R, _>(ending.close, stream.close_notify()).await,
        false => timeout::<R, _>(ending.close, stream.close()).await,
    };
    match closed {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return DataEnd::Failed(TransportError::from(e).context("closing the data connection"));
        }
        Err(_) => {
            return DataEnd::Failed(TransportError::new(
                TransportErrorKind::TimedOut,
                "closing the data connection timed out",
            ));
        }
    }
    let mut buf = vec![0u8; 16 * 1024];
    let mut drain_for = ending.upload_drain;
    if half_close {
        let grace = ending.half_close.min(drain_for);
        let ended = timeout::<R, _>(grace, read_to_end::<R>(stream, &mut buf))
            .await
            .is_ok();
        // Our data is out: how the FIN goes changes nothing.
        let _ = timeout::<R, _>(ending.close, stream.close()).await;
        drain_for = if ended {
            Duration::ZERO
        } else {
            drain_for.saturating_sub(grace)
        };
    }
    if !drain_for.is_zero() {
        let _ = timeout::<R, _>(drain_for, read_to_end::<R>(stream, &mut buf)).await;
    }
    DataEnd::Complete { close_notify: true }
}

/// Reads and drops what `stream` brings until its end (or an error).
async fn read_to_end<R: Runtime>(stream: &mut Stream<R>, buf: &mut [u8]) {
    while let Ok(1..) = stream.read(buf).await {}
}

/// The end of a handed download that was neither read to its end nor failed: the data
/// may be cut short.
fn not_read_to_end() -> DataEnd {
    DataEnd::Failed("the download was not read to its end".into())
}
