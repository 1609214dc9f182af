//! The client on std threads: [`Client`] runs a [`ClientSession`] over blocking sockets.
//! Each call submits one operation and drives the session until it is done; a reader
//! thread feeds control bytes, and data connections are made on threads of their own,
//! all reporting on one channel the calling thread waits on.

use crate::control::Control;
use crate::stream::{BufferedTcp, DataStream};
use ftps_backend::client::ClientOptions;
use ftps_proto::client::{
    Action, ClientError, DataId, Event, IoEvent, ListFormat, OpId, Operation, Output, listing,
};
use ftps_proto::tls::SessionStore;
use ftps_proto::{
    ClientSession, ListEntry, MlsxEntry, Pathname, ProtectionLevel, Reply, Text, Timestamp,
};
use rustls::pki_types::ServerName;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

pub use ftps_backend::client::FtpUrl;

/// Bytes per read and write of a transfer.
const BUFFER: usize = 256 * 1024;

/// Why a client call failed.
pub type Error = ftps_backend::client::Error<PlaintextOffer>;

/// What wakes the calling thread.
enum Msg {
    Control(Vec<u8>),
    Data(DataId, io::Result<DataStream>),
}

/// Where a transfer's bytes go or come from.
enum Sink<'a> {
    None,
    Write(&'a mut dyn Write),
    Read(&'a mut dyn Read),
    /// Hand the data connection to the caller ([`DataReader`], [`DataWriter`]).
    Stream,
}

/// How driving an operation stopped.
enum Drive {
    Done(Output),
    Handed(DataId, DataStream),
}

/// Explicit-if-available found no TLS: logging in would send the password in clear text.
#[derive(Debug)]
pub struct PlaintextOffer {
    client: Box<Client>,
}

impl PlaintextOffer {
    /// Logs in without TLS.
    pub fn accept(mut self) -> Result<Client, Error> {
        self.client.session.accept_plaintext(Instant::now());
        match self.client.until_ready()? {
            true => Ok(*self.client),
            false => Err(Error::Protocol(ClientError::TlsUnavailable)),
        }
    }
}

/// A connected, logged-in FTP(S) client.
pub struct Client {
    session: ClientSession,
    options: ClientOptions,
    store: Arc<SessionStore>,
    tls: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
    control: Control,
    inbox: Receiver<Msg>,
    events: SyncSender<Msg>,
    local: SocketAddr,
    ready_data: HashMap<DataId, DataStream>,
    input: Vec<u8>,
    done: HashMap<OpId, Result<Output, ClientError>>,
    closed: Option<ClientError>,
    secure: bool,
    tls13: bool,
    renewals: u32,
    /// TYPE A for transfers (see `set_ascii`).
    ascii: bool,
    handed: Option<(DataId, DataStream)>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("local", &self.local)
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects, secures and logs in as the options say.
    pub fn connect(options: ClientOptions) -> Result<Client, Error> {
        // Data connections resume this control connection's session and no other's.
        let store = SessionStore::new();
        let tls = options.tls_config(store.clone())?;
        let server_name = options.server_name()?;
        let addr =
            std::net::ToSocketAddrs::to_socket_addrs(&(options.host.as_str(), options.port))?
                .next()
                .ok_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, "no address for the host")
                })?;
        let tcp = TcpStream::connect_timeout(&addr, options.connect_timeout)?;
        let control = Control::new(tcp, options.reply_timeout)?;
        let (local, peer) = control.addrs()?;
        let config = options.session_config()?;
        let session = ClientSession::new(Arc::new(config), peer, Instant::now());
        let (events, inbox) = mpsc::sync_channel(64);
        control.spawn_reader(events.clone(), Msg::Control)?;
        let mut client = Client {
            session,
            options,
            store,
            tls,
            server_name,
            control,
            inbox,
            events,
            local,
            ready_data: HashMap::new(),
            input: Vec::new(),
            done: HashMap::new(),
            closed: None,
            secure: false,
            tls13: false,
            renewals: 0,
            ascii: false,
            handed: None,
        };
        match client.until_ready()? {
            true => Ok(client),
            false => Err(Error::PlaintextOnly(PlaintextOffer {
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

    /// How many times the control connection was opened again because the TLS 1.3
    /// session had no ticket left (see `ftps_tokio::Client::session_renewals`).
    pub fn session_renewals(&self) -> u32 {
        self.renewals
    }

    /// Drives the setup; true when logged in, false if the application must accept a
    /// plain-text session first.
    fn until_ready(&mut self) -> Result<bool, Error> {
        loop {
            self.execute(&mut Sink::None)?;
            while let Some(event) = self.session.poll_event() {
                match event {
                    Event::Ready { secure, .. } => {
                        self.secure = secure;
                        return Ok(true);
                    }
                    Event::PlaintextOnly => {
                        tracing::warn!("the server does not offer TLS");
                        return Ok(false);
                    }
                    Event::Closed { error } => {
                        return Err(Error::Protocol(error.unwrap_or(ClientError::Closed)));
                    }
                    _ => {}
                }
            }
            self.wait();
        }
    }

    /// Renews the control connection if `op` needs a protected data connection the TLS
    /// 1.3 session can no longer resume.
    fn keep_resumable(&mut self, op: &Operation) -> Result<(), Error> {
        let protected = self.options.protection == ProtectionLevel::Private;
        if !(op.uses_data_connection() && protected && self.store.needs_renewal(self.tls13)) {
            return Ok(());
        }
        tracing::info!("TLS 1.3 tickets used up: opening the control connection again");
        let cwd = Pathname::new(self.run_now(Operation::Pwd, &mut Sink::None)?.into_path()?)?;
        let mut fresh = Client::connect(self.options.clone())?;
        fresh.run_now(Operation::Cwd(cwd), &mut Sink::None)?;
        fresh.renewals = self.renewals + 1;
        fresh.ascii = self.ascii;
        fresh.set_max_listing(self.max_listing());
        let mut old = std::mem::replace(self, fresh);
        let _ = old.run_now(Operation::Quit, &mut Sink::None);
        Ok(())
    }

    fn run(&mut self, op: Operation, sink: &mut Sink<'_>) -> Result<Output, Error> {
        self.keep_resumable(&op)?;
        self.run_now(op, sink)
    }

    fn run_now(&mut self, op: Operation, sink: &mut Sink<'_>) -> Result<Output, Error> {
        let id = self.session.submit(op, Instant::now());
        match self.drive(id, sink)? {
            Drive::Done(output) => Ok(output),
            Drive::Handed(..) => Err(Error::Protocol(ClientError::Closed)),
        }
    }

    fn drive(&mut self, id: OpId, sink: &mut Sink<'_>) -> Result<Drive, Error> {
        loop {
            self.execute(sink)?;
            if let Some((data, stream)) = self.handed.take() {
                return Ok(Drive::Handed(data, stream));
            }
            while let Some(event) = self.session.poll_event() {
                match event {
                    Event::Done { op, result } => {
                        self.done.insert(op, result);
                    }
                    Event::Closed { error } => {
                        self.closed = Some(error.unwrap_or(ClientError::Closed));
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
            self.wait();
        }
    }

    /// Executes the session's actions.
    fn execute(&mut self, sink: &mut Sink<'_>) -> Result<(), Error> {
        while let Some(action) = self.session.poll_action() {
            let now = Instant::now;
            match action {
                Action::Send(bytes) => {
                    if self.control.send(&bytes).is_err() {
                        self.session.handle_io(IoEvent::ControlClosed, now());
                    }
                }
                Action::StartTls => {
                    let conn =
                        rustls::ClientConnection::new(self.tls.clone(), self.server_name.clone());
                    let started = conn.map_err(|e| e.to_string()).and_then(|c| {
                        self.control
                            .start_tls(rustls::Connection::Client(c))
                            .map_err(|e| e.to_string())
                    });
                    if let Err(e) = started {
                        self.session.handle_io(IoEvent::TlsFailed(e), now());
                    }
                }
                Action::StopTls => {
                    self.control.stop_tls();
                    self.secure = false;
                }
                Action::ConnectData { id, addr, tls } => {
                    let tls = tls.then(|| (self.tls.clone(), self.server_name.clone()));
                    let events = self.events.clone();
                    let limit = self.options.data_timeout;
                    spawn(move || {
                        let stream = TcpStream::connect_timeout(&addr, limit)
                            .and_then(|tcp| secure(tcp, tls, limit));
                        let _ = events.send(Msg::Data(id, stream));
                    });
                }
                Action::ListenData {
                    id,
                    accept_from,
                    tls,
                } => match TcpListener::bind(SocketAddr::new(self.local.ip(), 0)) {
                    Ok(listener) => {
                        let local = listener.local_addr()?;
                        let tls = tls.then(|| (self.tls.clone(), self.server_name.clone()));
                        let events = self.events.clone();
                        let limit = self.options.data_timeout;
                        spawn(move || {
                            let stream = accept_one(&listener, accept_from, limit)
                                .and_then(|tcp| secure(tcp, tls, limit));
                            let _ = events.send(Msg::Data(id, stream));
                        });
                        self.session
                            .handle_io(IoEvent::DataListening { id, local }, now());
                    }
                    Err(e) => {
                        let reason = e.to_string();
                        self.session
                            .handle_io(IoEvent::DataFailed { id, reason }, now());
                    }
                },
                Action::StartTransfer { id, upload, limit } => {
                    let Some(stream) = self.ready_data.remove(&id) else {
                        let reason = "no data connection".into();
                        self.session
                            .handle_io(IoEvent::DataFailed { id, reason }, now());
                        continue;
                    };
                    if let Sink::Stream = sink {
                        self.handed = Some((id, stream));
                        return Ok(());
                    }
                    let event = pump(
                        stream,
                        upload,
                        sink,
                        id,
                        self.options.data_timeout,
                        self.ascii,
                        limit,
                    )?;
                    self.session.handle_io(event, now());
                }
                Action::CloseData { id } => {
                    self.ready_data.remove(&id);
                }
                Action::Close => self.control.close(),
                other => tracing::warn!(?other, "unknown client action"),
            }
        }
        Ok(())
    }

    /// Waits for the next input: control bytes, a data connection, or the timeout.
    fn wait(&mut self) {
        let deadline = self.session.poll_timeout();
        let wait = deadline.map_or(Duration::from_secs(3600), |t| {
            t.saturating_duration_since(Instant::now())
        });
        let now = Instant::now;
        match self.inbox.recv_timeout(wait) {
            Ok(Msg::Control(bytes)) if bytes.is_empty() => {
                self.session.handle_io(IoEvent::ControlClosed, now());
            }
            Ok(Msg::Control(bytes)) => self.on_control_bytes(&bytes),
            Ok(Msg::Data(id, Ok(stream))) => {
                self.ready_data.insert(id, stream);
                self.session.handle_io(IoEvent::DataConnected { id }, now());
            }
            Ok(Msg::Data(id, Err(e))) => {
                let reason = e.to_string();
                self.session
                    .handle_io(IoEvent::DataFailed { id, reason }, now());
            }
            Err(RecvTimeoutError::Timeout) => self.session.handle_timeout(now()),
            Err(RecvTimeoutError::Disconnected) => {
                self.session.handle_io(IoEvent::ControlClosed, now());
            }
        }
    }

    fn on_control_bytes(&mut self, bytes: &[u8]) {
        let now = Instant::now();
        let was_handshaking = self.control.handshaking();
        let mut plain = Vec::new();
        if let Err(e) = self.control.receive(bytes, &mut plain) {
            let event = if was_handshaking {
                IoEvent::TlsFailed(e.to_string())
            } else {
                IoEvent::ControlClosed
            };
            self.session.handle_io(event, now);
            return;
        }
        if was_handshaking && !self.control.handshaking() {
            self.tls13 = self.control.tls().and_then(|c| c.protocol_version())
                == Some(rustls::ProtocolVersion::TLSv1_3);
            self.session.handle_io(IoEvent::TlsEstablished, now);
        }
        self.input.extend_from_slice(&plain);
        let used = self.session.handle_control_input(&self.input, now);
        self.input.drain(..used);
    }

    /// Reports the end of a handed-over data connection and drives the operation to its end.
    fn finish_handed(
        &mut self,
        op: OpId,
        id: DataId,
        bytes: u64,
        clean: bool,
    ) -> Result<u64, Error> {
        let event = IoEvent::DataEnded { id, bytes, clean };
        self.session.handle_io(event, Instant::now());
        match self.drive(op, &mut Sink::None)? {
            Drive::Done(output) => Ok(output.into_bytes()?),
            Drive::Handed(..) => Err(Error::Protocol(ClientError::Closed)),
        }
    }

    /// Drops a handed-over data connection, sends ABOR and waits for the server's replies.
    fn abort_handed(&mut self, op: OpId, stream: Option<DataStream>) -> Result<(), Error> {
        drop(stream);
        self.session.abort(Instant::now());
        match self.drive(op, &mut Sink::None) {
            Ok(_) | Err(Error::Protocol(ClientError::Aborted)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn start_stream(&mut self, op: Operation) -> Result<(OpId, DataId, DataStream), Error> {
        self.keep_resumable(&op)?;
        let id = self.session.submit(op, Instant::now());
        match self.drive(id, &mut Sink::Stream)? {
            Drive::Handed(data, stream) => Ok((id, data, stream)),
            Drive::Done(_) => Err(Error::Protocol(ClientError::Closed)),
        }
    }

    // ----- operations ----------------------------------------------------------------

    /// Starts a download and returns its data stream: read it to the end, then call
    /// [`DataReader::finish`], which waits for the server's final reply.
    pub fn retrieve_stream(&mut self, path: &str, offset: u64) -> Result<DataReader<'_>, Error> {
        let op = Operation::Retrieve {
            path: Pathname::new(path)?,
            offset,
            ascii: self.ascii,
        };
        let (op, data, stream) = self.start_stream(op)?;
        Ok(DataReader {
            client: self,
            op,
            data,
            stream: Some(stream),
            bytes: 0,
            ended: None,
            settled: false,
        })
    }

    /// Starts an upload (STOR at `offset`, or APPE) and returns its data stream: write to
    /// it, then call [`DataWriter::finish`].
    pub fn store_stream(
        &mut self,
        path: &str,
        offset: u64,
        append: bool,
    ) -> Result<DataWriter<'_>, Error> {
        let op = Operation::Store {
            path: Pathname::new(path)?,
            offset,
            append,
            ascii: self.ascii,
        };
        let (op, data, stream) = self.start_stream(op)?;
        Ok(DataWriter {
            client: self,
            op,
            data,
            stream,
            bytes: 0,
        })
    }

    /// The listing bound (see [`Client::set_max_listing`]).
    pub fn max_listing(&self) -> u64 {
        self.session.max_listing()
    }

    /// Bounds what a listing may hold, from now on: at most `bytes` bytes may arrive
    /// ([`list_raw`](Self::list_raw)), and the parsed entries ([`list`](Self::list),
    /// [`mlsd`](Self::mlsd), [`nlst`](Self::nlst)) may hold at most that much memory
    /// ([`ftps_proto::client::listing`]). Past it the listing fails with
    /// [`ClientError::ListingTooLarge`]; one still arriving is aborted (ABOR) and its data
    /// connection closed, and the session goes on. Default
    /// [`ftps_proto::client::DEFAULT_MAX_LISTING`] (64 MiB).
    pub fn set_max_listing(&mut self, bytes: u64) {
        self.session.set_max_listing(bytes);
    }

    /// Lists a directory in the given format; returns the raw listing, at most
    /// [`max_listing`](Self::max_listing) bytes (more is
    /// [`ClientError::ListingTooLarge`]).
    pub fn list_raw(&mut self, path: Option<&str>, format: ListFormat) -> Result<Vec<u8>, Error> {
        let path = path.map(Pathname::new).transpose()?;
        let mut out = Vec::new();
        self.run(Operation::List { path, format }, &mut Sink::Write(&mut out))?;
        Ok(out)
    }

    /// LIST, parsed (lines that do not parse are skipped), within the listing bound.
    pub fn list(&mut self, path: Option<&str>) -> Result<Vec<ListEntry>, Error> {
        let raw = self.list_raw(path, ListFormat::List)?;
        Ok(listing::parse_list(&raw, self.max_listing())?)
    }

    /// MLSD, parsed, within the listing bound.
    pub fn mlsd(&mut self, path: Option<&str>) -> Result<Vec<MlsxEntry>, Error> {
        let raw = self.list_raw(path, ListFormat::Mlsd)?;
        Ok(listing::parse_mlsd(&raw, self.max_listing())?)
    }

    /// NLST: names, within the listing bound.
    pub fn nlst(&mut self, path: Option<&str>) -> Result<Vec<String>, Error> {
        let raw = self.list_raw(path, ListFormat::Nlst)?;
        Ok(listing::parse_nlst(&raw, self.max_listing())?)
    }

    /// Downloads `path` from `offset` into `out`; returns the bytes received.
    pub fn retrieve(&mut self, path: &str, offset: u64, out: &mut dyn Write) -> Result<u64, Error> {
        let op = Operation::Retrieve {
            path: Pathname::new(path)?,
            offset,
            ascii: self.ascii,
        };
        Ok(self.run(op, &mut Sink::Write(out))?.into_bytes()?)
    }

    /// Uploads `input` to `path` (STOR at `offset`, or APPE if `append`); returns the bytes
    /// sent.
    pub fn store(
        &mut self,
        path: &str,
        input: &mut dyn Read,
        offset: u64,
        append: bool,
    ) -> Result<u64, Error> {
        let op = Operation::Store {
            path: Pathname::new(path)?,
            offset,
            append,
            ascii: self.ascii,
        };
        Ok(self.run(op, &mut Sink::Read(input))?.into_bytes()?)
    }

    /// STOU: uploads `input` under a name the server picks; returns the bytes sent and the
    /// final reply (which names the file).
    pub fn store_unique(&mut self, input: &mut dyn Read) -> Result<(u64, Reply), Error> {
        Ok(self
            .run(Operation::StoreUnique, &mut Sink::Read(input))?
            .into_transfer()?)
    }

    /// Downloads to a local file; with `resume`, continues a partial file.
    ///
    /// A failed download never destroys the file it was to replace (see
    /// [`ftps_backend::download`]): without `resume` the bytes go to a temporary file
    /// beside `local`, renamed over it only once the download is complete (keeping the
    /// old file's owner, group and mode), and removed otherwise; a device or FIFO is
    /// written through. With `resume`, `local` is continued in place.
    pub fn get_file(&mut self, path: &str, local: &Path, resume: bool) -> Result<u64, Error> {
        use ftps_backend::download::{Destination, Partial};
        if resume {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(false)
                .open(local)?;
            let offset = file.metadata()?.len();
            std::io::Seek::seek(&mut file, io::SeekFrom::Start(offset))?;
            let n = self.retrieve(path, offset, &mut file)?;
            file.flush()?;
            return Ok(n);
        }
        match Destination::of(local) {
            Destination::Through(device) => {
                let mut file = std::fs::OpenOptions::new().write(true).open(device)?;
                let n = self.retrieve(path, 0, &mut file)?;
                file.flush()?;
                Ok(n)
            }
            Destination::File { path: target, keep } => {
                let (partial, mut file) = Partial::create(&target, keep)?;
                let n = self.retrieve(path, 0, &mut file)?;
                file.flush()?;
                drop(file);
                partial.publish()?;
                Ok(n)
            }
        }
    }

    /// Uploads a local file; with `resume`, continues from the remote file's size.
    pub fn put_file(&mut self, local: &Path, path: &str, resume: bool) -> Result<u64, Error> {
        let mut file = std::fs::File::open(local)?;
        let offset = if resume {
            self.size(path).unwrap_or(0)
        } else {
            0
        };
        std::io::Seek::seek(&mut file, io::SeekFrom::Start(offset))?;
        self.store(path, &mut file, offset, false)
    }

    fn simple(&mut self, op: Operation) -> Result<Output, Error> {
        self.run(op, &mut Sink::None)
    }

    /// SIZE.
    pub fn size(&mut self, path: &str) -> Result<u64, Error> {
        Ok(self
            .simple(Operation::Size(Pathname::new(path)?))?
            .into_size()?)
    }

    /// MDTM.
    pub fn modified(&mut self, path: &str) -> Result<Timestamp, Error> {
        Ok(self
            .simple(Operation::Modified(Pathname::new(path)?))?
            .into_modified()?)
    }

    /// MFMT: sets a file's modification time.
    pub fn set_modified(&mut self, path: &str, time: Timestamp) -> Result<(), Error> {
        let path = Pathname::new(path)?;
        self.simple(Operation::SetModified { path, time }).map(drop)
    }

    /// MLST (RFC 3659 §7): the facts of one file or directory.
    pub fn mlst(&mut self, path: Option<&str>) -> Result<MlsxEntry, Error> {
        let path = path.map(Pathname::new).transpose()?;
        Ok(self.simple(Operation::Mlst(path))?.into_entry()?)
    }

    /// PWD.
    pub fn pwd(&mut self) -> Result<String, Error> {
        Ok(self.simple(Operation::Pwd)?.into_path()?)
    }

    /// CWD.
    pub fn cwd(&mut self, path: &str) -> Result<(), Error> {
        self.simple(Operation::Cwd(Pathname::new(path)?)).map(drop)
    }

    /// CDUP.
    pub fn cdup(&mut self) -> Result<(), Error> {
        self.simple(Operation::Cdup).map(drop)
    }

    /// MKD.
    pub fn mkdir(&mut self, path: &str) -> Result<(), Error> {
        self.simple(Operation::Mkd(Pathname::new(path)?)).map(drop)
    }

    /// RMD.
    pub fn rmdir(&mut self, path: &str) -> Result<(), Error> {
        self.simple(Operation::Rmd(Pathname::new(path)?)).map(drop)
    }

    /// DELE.
    pub fn delete(&mut self, path: &str) -> Result<(), Error> {
        self.simple(Operation::Dele(Pathname::new(path)?)).map(drop)
    }

    /// RNFR + RNTO.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), Error> {
        let (from, to) = (Pathname::new(from)?, Pathname::new(to)?);
        self.simple(Operation::Rename { from, to }).map(drop)
    }

    /// SITE: a server-specific command; returns the reply.
    pub fn site(&mut self, command: &str) -> Result<Reply, Error> {
        Ok(self
            .simple(Operation::Site(Text::new(command)?))?
            .into_reply()?)
    }

    /// STAT over the control connection: the server's status, or a listing of `path`.
    pub fn stat(&mut self, path: Option<&str>) -> Result<Reply, Error> {
        let path = path.map(Pathname::new).transpose()?;
        Ok(self.simple(Operation::Stat(path))?.into_reply()?)
    }

    /// CCC (RFC 4217 §6): ends TLS on the control connection; data connections keep their
    /// protection level. Opt-in.
    pub fn clear_control_channel(&mut self) -> Result<(), Error> {
        self.simple(Operation::ClearControl).map(drop)
    }

    /// NOOP.
    pub fn noop(&mut self) -> Result<(), Error> {
        self.simple(Operation::Noop).map(drop)
    }

    /// Sends any command without a data connection; returns the final reply, whatever its
    /// code.
    pub fn raw(&mut self, command: ftps_proto::Command) -> Result<Reply, Error> {
        Ok(self.simple(Operation::Raw(command))?.into_reply()?)
    }

    /// QUIT and close.
    pub fn quit(mut self) -> Result<(), Error> {
        self.simple(Operation::Quit).map(drop)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.control.close();
    }
}

fn spawn(f: impl FnOnce() + Send + 'static) {
    if let Err(e) = std::thread::Builder::new()
        .name("ftps-data".into())
        .spawn(f)
    {
        tracing::error!("cannot start a thread: {e}");
    }
}

/// Accepts the one connection an active-mode listener waits for, from `from` only.
fn accept_one(listener: &TcpListener, from: IpAddr, limit: Duration) -> io::Result<TcpStream> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match listener.accept() {
            Ok((tcp, peer)) if peer.ip() == from => {
                tcp.set_nonblocking(false)?;
                return Ok(tcp);
            }
            Ok((_, peer)) => {
                tracing::warn!(%peer, "data connection from a foreign address refused")
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        "no data connection came",
    ))
}

/// The client side of a data connection: TLS with the control connection's configuration
/// (and so its session) and server name, if asked; every read and write bounded.
fn secure(
    tcp: TcpStream,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    limit: Duration,
) -> io::Result<DataStream> {
    tcp.set_nodelay(true)?;
    let stream = match tls {
        None => DataStream::Plain(tcp),
        Some((config, name)) => {
            let mut conn = rustls::ClientConnection::new(config, name)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            tcp.set_read_timeout(Some(limit))?;
            tcp.set_write_timeout(Some(limit))?;
            let mut tcp = BufferedTcp::new(tcp);
            while conn.is_handshaking() {
                conn.complete_io(&mut tcp)?;
            }
            DataStream::Client(Box::new(rustls::StreamOwned::new(conn, tcp)))
        }
    };
    stream.set_timeouts(limit)?;
    Ok(stream)
}

/// How long closing our end of a data connection may take.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How long an upload waits for the server to end its side of the data connection.
const UPLOAD_END_WAIT: Duration = Duration::from_secs(10);

/// Moves one transfer's bytes; returns the event that reports its end. A download that
/// would pass `max` bytes (see [`Action::StartTransfer`]) stops before the byte that
/// passes it: the data connection is dropped and [`IoEvent::DataOverLimit`] reported (the
/// session then aborts the transfer).
fn pump(
    mut stream: DataStream,
    upload: bool,
    sink: &mut Sink<'_>,
    id: DataId,
    limit: Duration,
    ascii: bool,
    max: Option<u64>,
) -> Result<IoEvent, Error> {
    let mut buf = vec![0u8; BUFFER];
    let mut converted = Vec::new();
    let mut bytes = 0u64;
    let stalled = |bytes: u64| IoEvent::DataFailed {
        id,
        reason: format!(
            "no data moved for {} s (after {bytes} bytes)",
            limit.as_secs()
        ),
    };
    let timed_out = |e: &io::Error| {
        matches!(
            e.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        )
    };
    if upload {
        let Sink::Read(input) = sink else {
            return Ok(IoEvent::DataEnded {
                id,
                bytes: 0,
                clean: false,
            });
        };
        let mut to_network = ascii.then(ftps_proto::ascii::ToNetwork::default);
        loop {
            let n = input.read(&mut buf)?;
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
            match stream.write_all(chunk) {
                Ok(()) => bytes += n as u64,
                Err(e) if timed_out(&e) => return Ok(stalled(bytes)),
                Err(_) => {
                    return Ok(IoEvent::DataEnded {
                        id,
                        bytes,
                        clean: false,
                    });
                }
            }
        }
        let clean = stream.end_upload(UPLOAD_END_WAIT);
        Ok(IoEvent::DataEnded { id, bytes, clean })
    } else {
        let mut from_network = ascii.then(ftps_proto::ascii::FromNetwork::default);
        loop {
            match stream.read(&mut buf) {
                Ok(0) => {
                    stream.end_download(CLOSE_WAIT);
                    if let (Some(c), Sink::Write(out)) = (from_network.as_mut(), &mut *sink) {
                        converted.clear();
                        c.finish(&mut converted);
                        out.write_all(&converted)?;
                    }
                    return Ok(IoEvent::DataEnded {
                        id,
                        bytes,
                        clean: true,
                    });
                }
                Ok(n) => {
                    if max.is_some_and(|max| bytes + n as u64 > max) {
                        return Ok(IoEvent::DataOverLimit { id, bytes });
                    }
                    bytes += n as u64;
                    if let Sink::Write(out) = sink {
                        match from_network.as_mut() {
                            Some(c) => {
                                converted.clear();
                                c.convert(&buf[..n], &mut converted);
                                out.write_all(&converted)?;
                            }
                            None => out.write_all(&buf[..n])?,
                        }
                    }
                }
                Err(e) if timed_out(&e) => return Ok(stalled(bytes)),
                // Without close_notify (TLS) or with a reset: maybe cut short.
                Err(_) => {
                    return Ok(IoEvent::DataEnded {
                        id,
                        bytes,
                        clean: false,
                    });
                }
            }
        }
    }
}

/// The data stream of a download started with [`Client::retrieve_stream`]. A TLS stream
/// that ends without close_notify is an error (the data may be cut short), never a quiet
/// end of file. Call [`finish`](Self::finish) (or [`abort`](Self::abort)); dropped
/// without either (say, by `?` after a read error), the download ends as failed — or as
/// complete, if it was read to a clean end — and the session goes on with the next call.
pub struct DataReader<'c> {
    client: &'c mut Client,
    op: OpId,
    data: DataId,
    stream: Option<DataStream>,
    bytes: u64,
    ended: Option<bool>,
    /// The session was told how the data ended (by finish or abort).
    settled: bool,
}

impl Read for DataReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(stream) = self.stream.as_mut().filter(|_| self.ended.is_none()) else {
            return Ok(0);
        };
        match stream.read(buf) {
            Ok(0) => {
                self.ended = Some(true);
                Ok(0)
            }
            Ok(n) => {
                self.bytes += n as u64;
                Ok(n)
            }
            Err(e) => {
                self.ended = Some(false);
                Err(e)
            }
        }
    }
}

impl DataReader<'_> {
    /// Reads what is left (if anything), then waits for the server's final reply; returns
    /// the bytes received. Fails if the stream ended without close_notify or the reply is
    /// negative.
    ///
    /// Our end of the data connection is closed (close_notify, then FIN) before the wait:
    /// servers such as vsftpd end a TLS data connection with a two-way shutdown and send
    /// the final reply only once the client has closed too.
    pub fn finish(mut self) -> Result<u64, Error> {
        if self.ended.is_none() {
            let _ = io::copy(&mut self, &mut io::sink());
        }
        if let Some(mut stream) = self.stream.take() {
            stream.end_download(CLOSE_WAIT);
        }
        self.settled = true;
        let clean = self.ended == Some(true);
        self.client
            .finish_handed(self.op, self.data, self.bytes, clean)
    }

    /// Aborts the download (RFC 959 ABOR); the session goes on.
    pub fn abort(mut self) -> Result<(), Error> {
        self.settled = true;
        let stream = self.stream.take();
        self.client.abort_handed(self.op, stream)
    }
}

impl Drop for DataReader<'_> {
    fn drop(&mut self) {
        if !self.settled {
            let end = IoEvent::DataEnded {
                id: self.data,
                bytes: self.bytes,
                clean: self.ended == Some(true),
            };
            self.client.session.handle_io(end, Instant::now());
        }
    }
}

/// The data stream of an upload started with [`Client::store_stream`]. Call
/// [`finish`](Self::finish): dropping it without does not complete the upload.
pub struct DataWriter<'c> {
    client: &'c mut Client,
    op: OpId,
    data: DataId,
    stream: DataStream,
    bytes: u64,
}

impl Write for DataWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.stream.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl DataWriter<'_> {
    /// Ends the upload (close_notify, then reading to the server's end), and waits for
    /// the final reply; returns the bytes sent.
    pub fn finish(mut self) -> Result<u64, Error> {
        let clean = self.stream.end_upload(UPLOAD_END_WAIT);
        self.client
            .finish_handed(self.op, self.data, self.bytes, clean)
    }

    /// Aborts the upload (RFC 959 ABOR); the session goes on.
    pub fn abort(self) -> Result<(), Error> {
        self.client.abort_handed(self.op, Some(self.stream))
    }
}
