//! The sans-IO FTP/FTPS server session.
//!
//! One [`ServerSession`] per control connection. It never touches a socket, a file or a
//! clock: the adapter feeds it bytes and IO events with the current `Instant`, executes
//! the [`Action`]s it asks for, and the application answers its [`Event`] requests (login
//! checks, storage operations) by token. Every protocol decision is made here: TLS modes
//! and policies, AUTH/PBSZ/PROT/CCC/REIN rules, which data peer is acceptable, whether a
//! data connection's TLS session binds to this session, path resolution, reply codes,
//! listing formats, timeouts.
//!
//! # Driving a session
//!
//! 1. Inputs: [`handle_control_input`](ServerSession::handle_control_input) (plaintext of
//!    the control connection; the adapter owns TLS), [`handle_io`](ServerSession::handle_io),
//!    [`handle_timeout`](ServerSession::handle_timeout).
//! 2. Answers: [`answer_login`](ServerSession::answer_login),
//!    [`answer_storage`](ServerSession::answer_storage),
//!    [`answer_site`](ServerSession::answer_site), each exactly once per token.
//! 3. Outputs, drained after every input in this order: [`poll_action`](ServerSession::poll_action)
//!    until `None`, [`poll_event`](ServerSession::poll_event) until `None`, then
//!    [`poll_timeout`](ServerSession::poll_timeout) for when to call `handle_timeout`.
//!
//! `handle_control_input` returns how many bytes it took. It takes fewer than offered
//! while a bounded number of commands wait (behind a login check, a storage operation or
//! a transfer); offer the rest again after the next answer or event.
//!
//! # TLS upgrade
//!
//! `AUTH TLS` is answered with 234, then [`Action::StartControlTls`]. Any plaintext after
//! the AUTH line (in the same read or queued) is discarded, never executed
//! ([`Event::PlaintextDiscarded`]); input offered before
//! [`IoEvent::ControlTlsEstablished`] is discarded too.

pub mod config;
mod format;
pub mod io;
mod timer;

/// Shared with the client (see [`crate::boundary`]); re-exported here as before.
pub use crate::boundary::{ALPN_FTP, TlsInfo, TlsVersion};
pub use config::{ControlTlsPolicy, DataTlsPolicy, ServerConfig, Timeouts, TlsMode};
pub use format::ListingFormat;
pub use io::{
    Action, DataEnd, DataId, Event, IoEvent, LoginAnswer, LoginRequest, Metadata, RequestToken,
    StorageError, StorageReply, StorageRequest,
};

use crate::address::{format_epsv_reply, format_pasv_reply};
use crate::command::{
    Command, CommandErrorKind, EpsvMode, FileStructure, ProtectionLevel, RepresentationType,
    TextFormat, TransferMode,
};
use crate::feature::Features;
use crate::framing::{AfterTls, FrameError, LineFramer};
use crate::listing::EntryKind;
use crate::path::VirtualPath;
use crate::reply::{Reply, ReplyCode};
use crate::time::Timestamp;
use format::{Access, FactSelection, ListKind};
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Instant;
use timer::{Timer, TimerTable};

/// Commands held while the session waits, at most.
const MAX_QUEUED: usize = 16;

/// Successful logins in one session (REIN and log in again), at most; the next REIN
/// closes the session.
const MAX_LOGINS: u32 = 16;

/// Reply bytes waiting for the adapter to send, past which the session takes no more
/// control input: a client that pipelines commands and does not read the replies is held
/// by its own backlog (the adapter's write blocks, and its deadline closes the session)
/// instead of making the session queue replies without end (issue 13's second review,
/// finding B: FEAT is 6 bytes in and about 220 out).
const MAX_UNSENT: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ControlState {
    Plain,
    Handshaking,
    Secure,
    /// TLS ended by an allowed CCC (RFC 4217 §6): the session was authenticated under TLS
    /// and its data protection level stays, so policies that require TLS are satisfied.
    Cleared,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Login {
    None,
    UserGiven { user: String, anonymous: bool },
    LoggedIn { user: String, access: Access },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TransferKind {
    Download,
    Upload,
    Listing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Login,
    Site,
    Listen { id: DataId, extended: bool },
    Cwd(VirtualPath),
    Size(VirtualPath),
    Mdtm(VirtualPath),
    Mlst(VirtualPath, String),
    Rnfr(VirtualPath),
    Done(Reply),
    Mkd(VirtualPath),
    Stat(VirtualPath),
    OpenRead { id: DataId, offset: u64 },
    OpenWrite { id: DataId },
    List { id: DataId, path: VirtualPath },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DataSetup {
    None,
    Passive { id: DataId },
    Active { id: DataId, addr: SocketAddr },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Connecting,
    Moving,
    Finishing { ok: bool, reply: Reply },
}

#[derive(Debug, Clone)]
struct Transfer {
    id: DataId,
    kind: TransferKind,
    path: VirtualPath,
    tls: bool,
    payload: Option<Vec<u8>>,
    phase: Phase,
    bytes: u64,
}

/// One control connection's protocol state. See the [module documentation](self).
#[derive(Debug)]
pub struct ServerSession {
    config: Arc<ServerConfig>,
    mode: TlsMode,
    peer: SocketAddr,
    local: SocketAddr,
    framer: LineFramer,
    /// Framed lines (or framing errors) waiting to run.
    queue: VecDeque<Result<Vec<u8>, FrameError>>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    timers: TimerTable,
    closed: bool,

    control: ControlState,
    /// After CCC: whether the client's leftover close_notify record was looked for.
    tls_leftover_checked: bool,
    login: Login,
    failures: u32,
    /// Successful logins so far (see [`MAX_LOGINS`]).
    logins: u32,
    /// Reply bytes queued as actions the adapter has not taken yet (see [`MAX_UNSENT`]).
    unsent: usize,
    delayed: Option<(Reply, bool)>,
    host: Option<String>,
    sni: Option<String>,
    control_policy: ControlTlsPolicy,
    data_policy: DataTlsPolicy,

    pbsz: bool,
    prot: ProtectionLevel,
    ascii: bool,
    rest: u64,
    rename_from: Option<VirtualPath>,
    cwd: VirtualPath,
    epsv_all: bool,
    facts: FactSelection,

    next_id: u64,
    data: DataSetup,
    transfer: Option<Transfer>,
    next_token: u64,
    pending: Option<(RequestToken, Pending)>,
}

fn reply(code: ReplyCode, text: &str) -> Reply {
    Reply::new(code, text)
}

/// The reply to a connection turned away before any session starts because the server
/// is full (RFC 959 §4.2: 421 closes the control connection).
pub fn too_many_sessions_reply() -> Reply {
    reply(
        ReplyCode::SERVICE_NOT_AVAILABLE,
        "Too many connections, try later.",
    )
}

/// True for an HTTP request line (`GET / HTTP/1.1` and the like). No FTP verb is an HTTP
/// method, so this never matches a command.
fn looks_like_http(line: &[u8]) -> bool {
    const METHODS: [&[u8]; 8] = [
        b"GET ",
        b"POST ",
        b"HEAD ",
        b"PUT ",
        b"DELETE ",
        b"OPTIONS ",
        b"CONNECT ",
        b"PATCH ",
    ];
    METHODS
        .iter()
        .any(|m| line.len() >= m.len() && line[..m.len()].eq_ignore_ascii_case(m))
        && memchr::memmem::find(line, b" HTTP/").is_some()
}

fn storage_error_reply(err: &StorageError) -> Reply {
    use StorageError as E;
    match err {
        E::NotFound => reply(ReplyCode::FILE_UNAVAILABLE, "No such file or directory."),
        E::PermissionDenied => reply(ReplyCode::FILE_UNAVAILABLE, "Permission denied."),
        E::AlreadyExists => reply(ReplyCode::FILE_UNAVAILABLE, "File exists."),
        E::NotADirectory => reply(ReplyCode::FILE_UNAVAILABLE, "Not a directory."),
        E::IsADirectory => reply(ReplyCode::FILE_UNAVAILABLE, "Is a directory."),
        E::DirectoryNotEmpty => reply(ReplyCode::FILE_UNAVAILABLE, "Directory not empty."),
        E::InvalidName => reply(ReplyCode::FILE_NAME_NOT_ALLOWED, "File name not allowed."),
        E::InsufficientStorage => reply(
            ReplyCode::INSUFFICIENT_STORAGE,
            "Insufficient storage space.",
        ),
        E::QuotaExceeded => reply(ReplyCode::EXCEEDED_STORAGE_ALLOCATION, "Quota exceeded."),
        E::Busy => reply(ReplyCode::FILE_BUSY, "File busy, try again later."),
        E::InvalidOffset => reply(
            ReplyCode::new(554).unwrap_or(ReplyCode::FILE_UNAVAILABLE),
            "Restart offset past the end of the file.",
        ),
        E::ListingTooLong { max } => reply(
            ReplyCode::LOCAL_ERROR,
            &format!("Listing stopped after {max} entries: the server lists no more at once."),
        ),
        _ => reply(ReplyCode::LOCAL_ERROR, "Local error in processing."),
    }
}

impl ServerSession {
    /// A session for a new control connection from `peer` to `local`. An explicit session
    /// starts by sending the greeting; an implicit one by [`Action::StartControlTls`], with
    /// the greeting after the handshake.
    pub fn new(
        config: Arc<ServerConfig>,
        mode: TlsMode,
        peer: SocketAddr,
        local: SocketAddr,
        now: Instant,
    ) -> Self {
        let mut s = Self {
            framer: LineFramer::new(config.max_line),
            control_policy: config.control_tls,
            data_policy: config.data_tls,
            config,
            mode,
            peer,
            local,
            queue: VecDeque::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            timers: TimerTable::default(),
            closed: false,
            control: ControlState::Plain,
            tls_leftover_checked: true,
            login: Login::None,
            failures: 0,
            logins: 0,
            unsent: 0,
            delayed: None,
            host: None,
            sni: None,
            pbsz: false,
            prot: ProtectionLevel::Clear,
            ascii: false,
            rest: 0,
            rename_from: None,
            cwd: VirtualPath::root(),
            epsv_all: false,
            facts: FactSelection::default(),
            next_id: 0,
            data: DataSetup::None,
            transfer: None,
            next_token: 0,
            pending: None,
        };
        s.timers.set(Timer::Login, now + s.config.timeouts.login);
        match mode {
            TlsMode::Explicit => s.greet(),
            TlsMode::Implicit => s.start_tls(now),
        }
        s
    }

    // ----- outputs -------------------------------------------------------------------

    /// The next action for the adapter.
    pub fn poll_action(&mut self) -> Option<Action> {
        let action = self.actions.pop_front();
        if let Some(Action::Send(bytes)) = &action {
            self.unsent -= bytes.len();
        }
        action
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            None
        } else {
            self.timers.next()
        }
    }

    /// True once the session has asked to close.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The logged-in user.
    pub fn user(&self) -> Option<&str> {
        match &self.login {
            Login::LoggedIn { user, .. } => Some(user),
            _ => None,
        }
    }

    /// True while the control channel is protected by TLS.
    pub fn is_control_secure(&self) -> bool {
        self.control == ControlState::Secure
    }

    /// The data protection level set by PROT.
    pub fn protection(&self) -> ProtectionLevel {
        self.prot
    }

    /// The working directory.
    pub fn cwd(&self) -> &VirtualPath {
        &self.cwd
    }

    /// The server name the client sent in the control TLS handshake.
    pub fn sni(&self) -> Option<&str> {
        self.sni.as_deref()
    }

    /// The HOST the client asked for.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    // ----- inputs --------------------------------------------------------------------

    /// Takes control-channel plaintext; returns how many bytes were taken (see the module
    /// documentation).
    pub fn handle_control_input(&mut self, input: &[u8], now: Instant) -> usize {
        if self.closed {
            return input.len();
        }
        if self.control == ControlState::Handshaking {
            self.discard(input.len());
            return input.len();
        }
        if self.control == ControlState::Cleared && !self.tls_leftover_checked {
            match crate::framing::after_tls(input) {
                AfterTls::NeedMore => return 0,
                AfterTls::Record(n) => {
                    self.tls_leftover_checked = true;
                    return n + self.handle_control_input(&input[n..], now);
                }
                AfterTls::Plain => self.tls_leftover_checked = true,
            }
        }
        let mut used = 0;
        while used < input.len() {
            if self.queue.len() >= MAX_QUEUED || self.unsent >= MAX_UNSENT {
                break;
            }
            let (n, line) = self.framer.decode(&input[used..]);
            used += n;
            match line {
                None => {}
                Some(Err(e)) => self.queue.push_back(Err(e)),
                Some(Ok(line)) if line.is_empty() => {}
                Some(Ok(line)) => self.queue.push_back(Ok(line)),
            }
            self.drain(now);
            if self.control == ControlState::Handshaking {
                // AUTH was executed: what follows it is plaintext that must not run.
                let rest = input.len() - used + self.framer.buffered();
                self.framer.reset();
                self.discard(rest);
                return input.len();
            }
            if self.closed {
                return input.len();
            }
        }
        used
    }

    /// Takes an IO event from the adapter.
    pub fn handle_io(&mut self, event: IoEvent, now: Instant) {
        if self.closed {
            return;
        }
        match event {
            IoEvent::ControlTlsEstablished(info) => self.on_control_tls(info, now),
            IoEvent::ControlTlsFailed(_) => self.close(),
            IoEvent::ControlClosed => {
                if let Some(t) = self.transfer.take() {
                    self.actions.push_back(Action::AbortData { id: t.id });
                }
                self.close();
            }
            IoEvent::DataListening { id, local } => self.on_listening(id, Some(local), now),
            IoEvent::DataListenFailed { id } => self.on_listening(id, None, now),
            IoEvent::DataConnected { id, peer, tls } => self.on_data_connected(id, peer, tls, now),
            IoEvent::DataFailed { id, .. } => {
                if self.transfer_id() == Some(id) {
                    self.fail_transfer(
                        reply(
                            ReplyCode::CANT_OPEN_DATA_CONNECTION,
                            "Failed to establish connection.",
                        ),
                        now,
                    );
                }
            }
            IoEvent::DataProgress { id, bytes } => {
                if let Some(t) = self.transfer.as_mut().filter(|t| t.id == id) {
                    t.bytes = bytes;
                    self.timers
                        .set(Timer::DataStall, now + self.config.timeouts.data_stall);
                }
            }
            IoEvent::DataEnded { id, bytes, end } => self.on_data_ended(id, bytes, end, now),
            IoEvent::TransferFinished { id, result } => self.on_transfer_finished(id, result, now),
        }
    }

    /// Fires the timers due at `now`, if any; whether one was. A driver calls this
    /// between pieces of work as well as when its wait for input times out: a session
    /// kept busy (commands pipelined, replies drained slowly) must still reach its login
    /// and idle deadlines.
    pub fn fire_due_timers(&mut self, now: Instant) -> bool {
        if self.poll_timeout().is_some_and(|t| t <= now) {
            self.handle_timeout(now);
            return true;
        }
        false
    }

    /// Fires the timers that are due at `now`; a call with nothing due does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        for timer in self.timers.expired(now) {
            if self.closed {
                return;
            }
            match timer {
                Timer::Login => {
                    if self.user().is_none() {
                        self.send(reply(ReplyCode::SERVICE_NOT_AVAILABLE, "Login timeout."));
                        self.close();
                    }
                }
                Timer::Idle => {
                    if self.transfer.is_some() || self.pending.is_some() {
                        self.timers
                            .set(Timer::Idle, now + self.config.timeouts.idle);
                    } else {
                        self.send(reply(ReplyCode::SERVICE_NOT_AVAILABLE, "Timeout."));
                        self.close();
                    }
                }
                Timer::ControlTls => self.close(),
                Timer::DataConnect => self.fail_transfer(
                    reply(
                        ReplyCode::CANT_OPEN_DATA_CONNECTION,
                        "Failed to establish connection.",
                    ),
                    now,
                ),
                Timer::DataStall => self.fail_transfer(
                    reply(
                        ReplyCode::TRANSFER_ABORTED,
                        "Data connection stalled; transfer aborted.",
                    ),
                    now,
                ),
                // Nothing to say: a transfer command now gets 425 (PASV first).
                Timer::DataUnused => self.close_data_setup(),
                Timer::LoginDelay => {
                    if let Some((r, close)) = self.delayed.take() {
                        self.send(r);
                        if close {
                            self.close();
                        } else {
                            self.drain(now);
                        }
                    }
                }
            }
        }
    }

    // ----- answers -------------------------------------------------------------------

    fn take_pending(&mut self, token: RequestToken) -> Option<Pending> {
        match &self.pending {
            Some((t, _)) if *t == token => self.pending.take().map(|(_, p)| p),
            _ => None,
        }
    }

    /// Answers an [`Event::Login`]. A token that is not pending is ignored.
    pub fn answer_login(&mut self, token: RequestToken, answer: LoginAnswer, now: Instant) {
        if self.closed || self.take_pending(token) != Some(Pending::Login) {
            return;
        }
        let Login::UserGiven { user, anonymous } = std::mem::replace(&mut self.login, Login::None)
        else {
            return;
        };
        match answer {
            LoginAnswer::Accepted {
                control_tls,
                data_tls,
            } => {
                let control = control_tls.unwrap_or(self.control_policy);
                let needs_tls = match control {
                    ControlTlsPolicy::Allow => false,
                    ControlTlsPolicy::RequireForCredentials => !anonymous,
                    ControlTlsPolicy::Require => true,
                };
                if needs_tls && self.control != ControlState::Secure {
                    self.send(reply(
                        ReplyCode::NOT_LOGGED_IN,
                        "TLS is required for this user.",
                    ));
                } else {
                    self.control_policy = control;
                    self.data_policy = data_tls.unwrap_or(self.data_policy);
                    self.failures = 0;
                    self.timers.stop(Timer::Login);
                    self.timers
                        .set(Timer::Idle, now + self.config.timeouts.idle);
                    let access = match (anonymous, self.config.anonymous_upload) {
                        (false, _) => Access::Full,
                        (true, false) => Access::ReadOnly,
                        (true, true) => Access::UploadNew,
                    };
                    self.login = Login::LoggedIn {
                        user: user.clone(),
                        access,
                    };
                    self.logins += 1;
                    self.events.push_back(Event::LoggedIn { user, anonymous });
                    self.send(reply(ReplyCode::LOGGED_IN, "Login successful."));
                }
            }
            _ => {
                self.failures += 1;
                let close = self.failures >= self.config.max_login_failures;
                let r = if close {
                    reply(
                        ReplyCode::SERVICE_NOT_AVAILABLE,
                        "Too many failed logins; closing.",
                    )
                } else {
                    reply(ReplyCode::NOT_LOGGED_IN, "Login incorrect.")
                };
                self.delayed = Some((r, close));
                self.timers
                    .set(Timer::LoginDelay, now + self.config.failed_login_delay);
                return;
            }
        }
        self.drain(now);
    }

    /// Answers an [`Event::Site`] with the reply to send. A token that is not pending is
    /// ignored.
    pub fn answer_site(&mut self, token: RequestToken, answer: Reply, now: Instant) {
        if self.closed || self.take_pending(token) != Some(Pending::Site) {
            return;
        }
        self.send(answer);
        self.drain(now);
    }

    /// Answers an [`Event::Storage`]. A token that is not pending is ignored.
    pub fn answer_storage(
        &mut self,
        token: RequestToken,
        answer: Result<StorageReply, StorageError>,
        now: Instant,
    ) {
        if self.closed {
            return;
        }
        let Some(pending) = self.take_pending(token) else {
            return;
        };
        match (pending, answer) {
            (
                Pending::OpenRead { id, .. } | Pending::OpenWrite { id } | Pending::List { id, .. },
                Err(e),
            ) => {
                self.release_data(id);
                self.send(storage_error_reply(&e));
            }
            (_, Err(e)) => self.send(storage_error_reply(&e)),
            (Pending::Cwd(path), Ok(StorageReply::Metadata(m))) => {
                if m.kind == EntryKind::Directory {
                    self.cwd = path;
                    self.send(reply(
                        ReplyCode::FILE_ACTION_OK,
                        "Directory successfully changed.",
                    ));
                } else {
                    self.send(reply(ReplyCode::FILE_UNAVAILABLE, "Not a directory."));
                }
            }
            (Pending::Size(_), Ok(StorageReply::Metadata(m))) => {
                if m.kind == EntryKind::Directory {
                    self.send(reply(
                        ReplyCode::FILE_UNAVAILABLE,
                        "Could not get file size.",
                    ));
                } else {
                    self.send(reply(ReplyCode::FILE_STATUS, &m.size.to_string()));
                }
            }
            (Pending::Mdtm(_), Ok(StorageReply::Metadata(m))) => match m.modified {
                Some(t) if m.kind != EntryKind::Directory => {
                    let t = Timestamp::new(
                        t.year(),
                        t.month(),
                        t.day(),
                        t.hour(),
                        t.minute(),
                        t.second(),
                        0,
                    )
                    .unwrap_or(t);
                    self.send(reply(ReplyCode::FILE_STATUS, &t.to_string()));
                }
                _ => self.send(reply(
                    ReplyCode::FILE_UNAVAILABLE,
                    "Could not get file modification time.",
                )),
            },
            (Pending::Mlst(_, shown), Ok(StorageReply::Metadata(m))) => {
                let entry = format::mlsx_entry(&m, &shown, self.facts, self.access());
                self.send(Reply::multiline(
                    ReplyCode::FILE_ACTION_OK,
                    [
                        format!("Listing {shown}"),
                        format!(" {entry}"),
                        "End".to_owned(),
                    ],
                ));
            }
            (Pending::Rnfr(path), Ok(StorageReply::Metadata(_))) => {
                self.rename_from = Some(path);
                self.send(reply(
                    ReplyCode::PENDING_FURTHER_INFORMATION,
                    "Ready for RNTO.",
                ));
            }
            (Pending::Done(r), Ok(StorageReply::Done)) => self.send(r),
            (Pending::Mkd(path), Ok(StorageReply::Done)) => self.send(reply(
                ReplyCode::PATHNAME_CREATED,
                &format!("{} created", format::quote_path(path.as_str())),
            )),
            (Pending::Stat(path), Ok(StorageReply::Entries { entries, now: wall })) => {
                let mut lines = vec![format!("Status of {path}:")];
                lines.extend(
                    entries
                        .iter()
                        .take(self.config.max_listing_entries)
                        .map(|m| format::list_line(m, &wall)),
                );
                lines.push("End of status".to_owned());
                self.send(Reply::multiline(ReplyCode::FILE_STATUS, lines));
            }
            (Pending::OpenRead { id, offset }, Ok(StorageReply::Opened { path, size })) => {
                if offset > size {
                    self.release_data(id);
                    self.send(reply(
                        ReplyCode::new(554).unwrap_or(ReplyCode::FILE_UNAVAILABLE),
                        "Restart offset past the end of the file.",
                    ));
                } else {
                    let text = format!(
                        "Opening {} mode data connection for {} ({size} bytes).",
                        if self.ascii { "ASCII" } else { "BINARY" },
                        path
                    );
                    self.begin_transfer(id, TransferKind::Download, path, None, &text, now);
                }
            }
            (Pending::OpenWrite { id }, Ok(StorageReply::Opened { path, .. })) => {
                let text = format!("Ok to send data for {path}.");
                self.begin_transfer(id, TransferKind::Upload, path, None, &text, now);
            }
            (Pending::List { id, path }, Ok(StorageReply::Opened { .. })) => {
                self.begin_transfer(
                    id,
                    TransferKind::Listing,
                    path,
                    None,
                    "Here comes the directory listing.",
                    now,
                );
            }
            (other, Ok(_)) => {
                // The application answered with the wrong kind of reply.
                if let Pending::OpenRead { id, .. }
                | Pending::OpenWrite { id }
                | Pending::List { id, .. } = other
                {
                    self.release_data(id);
                }
                self.send(reply(ReplyCode::LOCAL_ERROR, "Local error in processing."));
            }
        }
        self.drain(now);
    }

    // ----- internals -----------------------------------------------------------------

    fn send(&mut self, r: Reply) {
        let bytes = r.to_bytes();
        self.unsent += bytes.len();
        self.actions.push_back(Action::Send(bytes));
    }

    fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            if let Some(t) = self.transfer.take() {
                self.actions.push_back(Action::AbortData { id: t.id });
            }
            self.actions.push_back(Action::Close);
            self.events.push_back(Event::Closed);
        }
    }

    fn discard(&mut self, bytes: usize) {
        if bytes > 0 {
            self.events.push_back(Event::PlaintextDiscarded { bytes });
        }
    }

    fn greet(&mut self) {
        let text = self.config.greeting.clone();
        self.send(reply(ReplyCode::SERVICE_READY, &text));
    }

    fn start_tls(&mut self, now: Instant) {
        self.control = ControlState::Handshaking;
        self.timers
            .set(Timer::ControlTls, now + self.config.timeouts.tls_handshake);
        self.actions.push_back(Action::StartControlTls);
    }

    fn on_control_tls(&mut self, info: TlsInfo, now: Instant) {
        if self.control != ControlState::Handshaking {
            return;
        }
        self.timers.stop(Timer::ControlTls);
        if info.alpn.as_deref().is_some_and(|p| p != ALPN_FTP) {
            self.close();
            return;
        }
        self.control = ControlState::Secure;
        self.sni = info.sni;
        if self.mode == TlsMode::Implicit
            && self.pending.is_none()
            && self.user().is_none()
            && !self.pbsz
        {
            self.greet();
        }
        self.drain(now);
    }

    fn new_token(&mut self) -> RequestToken {
        self.next_token += 1;
        RequestToken(self.next_token)
    }

    fn new_id(&mut self) -> DataId {
        self.next_id += 1;
        DataId(self.next_id)
    }

    fn request(&mut self, pending: Pending, request: StorageRequest) {
        let token = self.new_token();
        self.pending = Some((token, pending));
        self.events.push_back(Event::Storage { token, request });
    }

    fn transfer_id(&self) -> Option<DataId> {
        self.transfer.as_ref().map(|t| t.id)
    }

    fn blocked(&self) -> bool {
        self.pending.is_some()
            || self.delayed.is_some()
            || self.transfer.is_some()
            || self.control == ControlState::Handshaking
    }

    /// Executes queued lines while nothing blocks; during a transfer only ABOR, STAT and
    /// QUIT run.
    fn drain(&mut self, now: Instant) {
        while !self.closed && self.control != ControlState::Handshaking {
            if self.pending.is_none() && self.delayed.is_none() && self.transfer.is_some() {
                let urgent = self.queue.iter().position(|l| {
                    l.as_ref().is_ok_and(|l| {
                        matches!(
                            Command::parse(l),
                            Ok(Command::Abor | Command::Stat(None) | Command::Quit)
                        )
                    })
                });
                match urgent {
                    Some(i) => {
                        if let Some(line) = self.queue.remove(i) {
                            self.execute_line(line, now);
                        }
                        continue;
                    }
                    None => return,
                }
            }
            if self.blocked() {
                return;
            }
            let Some(line) = self.queue.pop_front() else {
                return;
            };
            self.execute_line(line, now);
        }
    }

    fn execute_line(&mut self, line: Result<Vec<u8>, FrameError>, now: Instant) {
        if self.user().is_some() && self.transfer.is_none() {
            self.timers
                .set(Timer::Idle, now + self.config.timeouts.idle);
        }
        let line = match line {
            Ok(line) => line,
            Err(FrameError::LineTooLong { .. }) => {
                self.send(reply(ReplyCode::SYNTAX_ERROR, "Command line too long."));
                return;
            }
        };
        let line = &line[..];
        if looks_like_http(line) {
            // ALPACA (cross-protocol attacks): an HTTP request on the control connection is
            // never answered, so no reply text can be reflected into a browser.
            self.close();
            return;
        }
        match Command::parse(line) {
            Ok(cmd) => self.execute(cmd, now),
            Err(e) => {
                let text = match e.kind() {
                    CommandErrorKind::UnknownVerb | CommandErrorKind::Syntax => {
                        "Unknown command.".to_owned()
                    }
                    CommandErrorKind::UnsupportedNetworkProtocol => {
                        "Network protocol not supported, use (1,2).".to_owned()
                    }
                    _ => format!("{e}."),
                };
                self.send(reply(e.reply_code(), &text));
            }
        }
    }

    /// The control-policy gate: the reply refusing `cmd`, if any.
    fn gate(&self, cmd: &Command) -> Option<Reply> {
        use Command as C;
        let secure = matches!(self.control, ControlState::Secure | ControlState::Cleared);
        if !secure
            && self.control_policy == ControlTlsPolicy::Require
            && !matches!(cmd, C::Auth(_) | C::Feat | C::Host(_) | C::Quit)
        {
            return Some(reply(
                ReplyCode::DENIED_FOR_POLICY,
                "Policy requires TLS: use AUTH TLS first.",
            ));
        }
        let needs_login = !matches!(
            cmd,
            C::User(_)
                | C::Pass(_)
                | C::Acct(_)
                | C::Auth(_)
                | C::Pbsz(_)
                | C::Prot(_)
                | C::Ccc
                | C::Feat
                | C::Host(_)
                | C::Quit
                | C::Noop
                | C::Syst
                | C::Help(_)
                | C::Opts { .. }
                | C::Rein
                | C::Adat(_)
                | C::Mic(_)
                | C::Conf(_)
                | C::Enc(_)
                | C::Lang(_)
        );
        if needs_login && self.user().is_none() {
            return Some(reply(
                ReplyCode::NOT_LOGGED_IN,
                "Please login with USER and PASS.",
            ));
        }
        None
    }

    /// What the logged-in user may change (everything before login: nothing is shown then).
    fn access(&self) -> Access {
        match &self.login {
            Login::LoggedIn { access, .. } => *access,
            _ => Access::Full,
        }
    }

    /// The refusal of a command that would change the storage, for a user who may not
    /// (anonymous users; see [`Access`]). `rest` is the REST offset the command would use.
    fn write_refusal(&self, cmd: &Command, rest: u64) -> Option<Reply> {
        use Command as C;
        let access = match &self.login {
            Login::LoggedIn { access, .. } => *access,
            _ => return None,
        };
        let text = match (access, cmd) {
            (Access::Full, _) => return None,
            // New files only: a STOR that neither resumes nor (see `cmd_store`) replaces,
            // and STOU, whose name is new by construction.
            (Access::UploadNew, C::Stor(_)) if rest == 0 => return None,
            (Access::UploadNew, C::Stou(_)) => return None,
            (Access::UploadNew, C::Stor(_) | C::Appe(_)) => {
                "Permission denied: anonymous uploads may only create new files."
            }
            (
                _,
                C::Stor(_)
                | C::Appe(_)
                | C::Stou(_)
                | C::Dele(_)
                | C::Rmd(_)
                | C::Mkd(_)
                | C::Rnfr(_)
                | C::Rnto(_)
                | C::Mfmt { .. }
                | C::Site(_),
            ) => "Permission denied: anonymous users may not change files.",
            _ => return None,
        };
        Some(reply(ReplyCode::FILE_UNAVAILABLE, text))
    }

    fn execute(&mut self, cmd: Command, now: Instant) {
        use Command as C;
        if let Some(refusal) = self.gate(&cmd) {
            self.send(refusal);
            return;
        }
        // A REST offset is used by the next transfer command (clients send PASV, EPSV or
        // TYPE between the two, so those keep it, as vsftpd does).
        let rest = if matches!(
            cmd,
            C::Retr(_)
                | C::Stor(_)
                | C::Appe(_)
                | C::Stou(_)
                | C::List(_)
                | C::Nlst(_)
                | C::Mlsd(_)
        ) {
            std::mem::take(&mut self.rest)
        } else {
            0
        };
        // RNFR must be followed directly by RNTO.
        let rename_from = self.rename_from.take();
        if let Some(refusal) = self.write_refusal(&cmd, rest) {
            if matches!(cmd, C::Stor(_) | C::Appe(_) | C::Stou(_)) {
                self.close_data_setup();
            }
            self.send(refusal);
            return;
        }
        match cmd {
            C::User(user) => self.cmd_user(user.into_inner()),
            C::Pass(password) => self.cmd_pass(password),
            C::Acct(_) => self.send(reply(ReplyCode::SUPERFLUOUS, "ACCT not needed.")),
            C::Auth(mechanism) => self.cmd_auth(mechanism.as_str(), now),
            C::Pbsz(_) => {
                if self.control == ControlState::Secure {
                    self.pbsz = true;
                    // RFC 4217 §8: TLS has no buffer size; the answer is always PBSZ=0.
                    self.send(reply(ReplyCode::COMMAND_OK, "PBSZ=0"));
                } else {
                    self.send(reply(ReplyCode::BAD_SEQUENCE, "PBSZ needs a secure control connection (AUTH TLS first)."));
                }
            }
            C::Prot(level) => self.cmd_prot(level),
            C::Ccc => {
                if self.user().is_none() || !self.config.allow_ccc {
                    self.send(reply(ReplyCode::DENIED_FOR_POLICY, "CCC refused by policy."));
                } else if self.control != ControlState::Secure || self.mode == TlsMode::Implicit {
                    self.send(reply(ReplyCode::PROTECTION_LEVEL_DENIED, "Control connection is not protected by AUTH TLS."));
                } else {
                    self.send(reply(ReplyCode::COMMAND_OK, "CCC ok; control connection in clear text."));
                    self.actions.push_back(Action::StopControlTls);
                    self.control = ControlState::Cleared;
                    self.tls_leftover_checked = false;
                }
            }
            C::Adat(_) | C::Mic(_) | C::Conf(_) | C::Enc(_) => {
                self.send(reply(ReplyCode::NOT_IMPLEMENTED, "Not used with TLS."))
            }
            C::Rein => self.cmd_rein(now),
            C::Quit => {
                if let Some(t) = self.transfer.take() {
                    self.actions.push_back(Action::AbortData { id: t.id });
                }
                self.send(reply(ReplyCode::CLOSING_CONTROL, "Goodbye."));
                self.close();
            }
            C::Feat => {
                let feat = self.features().to_reply();
                self.send(feat);
            }
            C::Host(host) => {
                if self.user().is_some() || matches!(self.login, Login::UserGiven { .. }) {
                    self.send(reply(ReplyCode::BAD_SEQUENCE, "HOST must come before USER."));
                } else {
                    self.host = Some(host.into_inner());
                    self.send(reply(ReplyCode::SERVICE_READY, "Host accepted."));
                }
            }
            C::Opts { name, value } => self.cmd_opts(name.as_str(), value.as_ref().map(|v| v.as_str())),
            C::Lang(_) => self.send(reply(ReplyCode::NOT_IMPLEMENTED, "LANG not implemented.")),
            C::Syst => self.send(reply(ReplyCode::SYSTEM_TYPE, "UNIX Type: L8")),
            C::Noop => self.send(reply(ReplyCode::COMMAND_OK, "NOOP ok.")),
            C::Help(_) => self.send(Reply::multiline(
                ReplyCode::HELP_MESSAGE,
                [
                    "The following commands are recognized.",
                    " ABOR ACCT ALLO APPE AUTH CCC CDUP CWD DELE EPRT EPSV FEAT HELP HOST LIST MDTM",
                    " MFMT MKD MLSD MLST MODE NLST NOOP OPTS PASS PASV PBSZ PORT PROT PWD QUIT REIN",
                    " REST RETR RMD RNFR RNTO SITE SIZE STAT STOR STOU STRU SYST TYPE USER XCUP XCWD",
                    " XMKD XPWD XRMD",
                    "Help OK.",
                ],
            )),
            C::Site(command) => {
                if self.config.site_commands {
                    let token = self.new_token();
                    self.pending = Some((token, Pending::Site));
                    self.events.push_back(Event::Site { token, command: command.into_inner() });
                } else {
                    self.send(reply(ReplyCode::NOT_IMPLEMENTED, "SITE not implemented."));
                }
            }
            C::Smnt(_) => self.send(reply(ReplyCode::NOT_IMPLEMENTED, "SMNT not implemented.")),
            C::Allo { .. } => self.send(reply(ReplyCode::SUPERFLUOUS, "ALLO not needed.")),
            C::Type(t) => self.cmd_type(t),
            C::Mode(m) => match m {
                TransferMode::Stream => self.send(reply(ReplyCode::COMMAND_OK, "Mode set to S.")),
                _ => self.send(reply(ReplyCode::PARAMETER_NOT_IMPLEMENTED, "Only MODE S is supported.")),
            },
            C::Stru(s) => match s {
                FileStructure::File => self.send(reply(ReplyCode::COMMAND_OK, "Structure set to F.")),
                _ => self.send(reply(ReplyCode::PARAMETER_NOT_IMPLEMENTED, "Only STRU F is supported.")),
            },
            C::Pwd => {
                let text = format!("{} is the current directory", format::quote_path(self.cwd.as_str()));
                self.send(reply(ReplyCode::PATHNAME_CREATED, &text));
            }
            C::Cwd(path) => {
                let path = self.cwd.resolve(path.as_str());
                self.request(Pending::Cwd(path.clone()), StorageRequest::Stat(path));
            }
            C::Cdup => {
                self.cwd = self.cwd.parent();
                self.send(reply(ReplyCode::FILE_ACTION_OK, "Directory successfully changed."));
            }
            C::Size(path) => {
                let path = self.cwd.resolve(path.as_str());
                self.request(Pending::Size(path.clone()), StorageRequest::Stat(path));
            }
            C::Mdtm(path) => {
                let path = self.cwd.resolve(path.as_str());
                self.request(Pending::Mdtm(path.clone()), StorageRequest::Stat(path));
            }
            C::Mlst(arg) => {
                let shown = arg.as_ref().map_or_else(|| self.cwd.to_string(), |p| p.as_str().to_owned());
                let path = self.cwd.resolve(&shown);
                self.request(Pending::Mlst(path.clone(), path.to_string()), StorageRequest::Stat(path));
            }
            C::Mfmt { modified, path } => {
                let path = self.cwd.resolve(path.as_str());
                let done = reply(ReplyCode::FILE_STATUS, &format!("Modify={modified}; {path}"));
                self.request(Pending::Done(done), StorageRequest::SetModified { path, modified });
            }
            C::Dele(path) => {
                let path = self.cwd.resolve(path.as_str());
                self.request(Pending::Done(reply(ReplyCode::FILE_ACTION_OK, "Delete operation successful.")), StorageRequest::RemoveFile(path));
            }
            C::Rmd(path) => {
                let path = self.cwd.resolve(path.as_str());
                if path.is_root() {
                    self.send(reply(ReplyCode::FILE_UNAVAILABLE, "Cannot remove the root."));
                } else {
                    self.request(Pending::Done(reply(ReplyCode::FILE_ACTION_OK, "Remove directory operation successful.")), StorageRequest::RemoveDir(path));
                }
            }
            C::Mkd(path) => {
                let path = self.cwd.resolve(path.as_str());
                self.request(Pending::Mkd(path.clone()), StorageRequest::MakeDir(path));
            }
            C::Rnfr(path) => {
                let path = self.cwd.resolve(path.as_str());
                self.request(Pending::Rnfr(path.clone()), StorageRequest::Stat(path));
            }
            C::Rnto(path) => match rename_from {
                Some(from) => {
                    let to = self.cwd.resolve(path.as_str());
                    self.request(Pending::Done(reply(ReplyCode::FILE_ACTION_OK, "Rename successful.")), StorageRequest::Rename { from, to });
                }
                None => self.send(reply(ReplyCode::BAD_SEQUENCE, "RNFR required first.")),
            },
            C::Rest(offset) => {
                if self.ascii && offset != 0 {
                    self.send(reply(ReplyCode::PARAMETER_NOT_IMPLEMENTED, "REST is not supported in ASCII mode."));
                } else {
                    self.rest = offset;
                    self.send(reply(ReplyCode::PENDING_FURTHER_INFORMATION, &format!("Restarting at {offset}. Send STORE or RETRIEVE.")));
                }
            }
            C::Stat(None) => self.cmd_status(),
            C::Stat(Some(path)) => {
                let path = self.cwd.resolve(path.as_str());
                self.request(Pending::Stat(path.clone()), StorageRequest::List(path));
            }
            C::Abor => match self.transfer.take() {
                Some(t) => {
                    self.timers.stop(Timer::DataConnect);
                    self.timers.stop(Timer::DataStall);
                    self.actions.push_back(Action::AbortData { id: t.id });
                    self.data = DataSetup::None;
                    self.events.push_back(Event::TransferDone { path: t.path, bytes: t.bytes, ok: false });
                    self.send(reply(ReplyCode::TRANSFER_ABORTED, "Transfer aborted."));
                    self.send(reply(ReplyCode::CLOSING_DATA_CONNECTION, "ABOR successful."));
                }
                None => {
                    self.close_data_setup();
                    self.send(reply(ReplyCode::DATA_CONNECTION_OPEN, "No transfer to ABOR."));
                }
            },
            C::Pasv => self.cmd_passive(false, now),
            C::Epsv(EpsvMode::All) => {
                self.epsv_all = true;
                self.send(reply(ReplyCode::COMMAND_OK, "EPSV ALL ok."));
            }
            C::Epsv(mode) => {
                let v6 = self.local.is_ipv6();
                if (mode == EpsvMode::Ipv4 && v6) || (mode == EpsvMode::Ipv6 && !v6) {
                    self.send(reply(ReplyCode::NETWORK_PROTOCOL_NOT_SUPPORTED, "Network protocol not supported, use (1,2)."));
                } else {
                    self.cmd_passive(true, now);
                }
            }
            C::Port(addr) => self.cmd_active(SocketAddr::V4(addr)),
            C::Eprt(addr) => self.cmd_active(addr),
            C::Retr(path) => {
                let path = self.cwd.resolve(path.as_str());
                if let Some(id) = self.data_for_transfer() {
                    self.request(Pending::OpenRead { id, offset: rest }, StorageRequest::OpenRead { id, path, offset: rest });
                }
            }
            C::Stor(path) => self.cmd_store(Some(path.as_str()), rest, false, false),
            C::Appe(path) => self.cmd_store(Some(path.as_str()), 0, true, false),
            C::Stou(path) => self.cmd_store(path.as_ref().map(|p| p.as_str()), 0, false, true),
            C::List(arg) => self.cmd_list(arg.as_ref().map(|a| a.as_str()), None),
            C::Nlst(arg) => self.cmd_list(arg.as_ref().map(|a| a.as_str()), Some(ListKind::Nlst)),
            C::Mlsd(arg) => self.cmd_list(arg.as_ref().map(|a| a.as_str()), Some(ListKind::Mlsd)),
        }
    }

    fn cmd_user(&mut self, user: String) {
        if self.user().is_some() {
            self.send(reply(ReplyCode::BAD_SEQUENCE, "Already logged in."));
            return;
        }
        let anonymous = user.eq_ignore_ascii_case("anonymous") || user.eq_ignore_ascii_case("ftp");
        // Every spelling of the anonymous user is one user ("anonymous"), for the
        // authenticator, the storage and every per-user count (passive listeners, say).
        let user = if anonymous {
            "anonymous".to_owned()
        } else {
            user
        };
        if anonymous && !self.config.anonymous {
            self.send(reply(
                ReplyCode::NOT_LOGGED_IN,
                "Anonymous login is not allowed.",
            ));
            return;
        }
        if !anonymous
            && self.control_policy != ControlTlsPolicy::Allow
            && self.control != ControlState::Secure
        {
            self.send(reply(
                ReplyCode::DENIED_FOR_POLICY,
                "Policy requires TLS for credentials: use AUTH TLS first.",
            ));
            return;
        }
        self.login = Login::UserGiven { user, anonymous };
        self.send(reply(
            ReplyCode::NEED_PASSWORD,
            "Please specify the password.",
        ));
    }

    fn cmd_pass(&mut self, password: crate::text::Password) {
        let Login::UserGiven { user, .. } = self.login.clone() else {
            let text = if self.user().is_some() {
                "Already logged in."
            } else {
                "Login with USER first."
            };
            self.send(reply(ReplyCode::BAD_SEQUENCE, text));
            return;
        };
        let token = self.new_token();
        let request = LoginRequest {
            token,
            user,
            password,
            host: self.host.clone(),
            secure: self.control == ControlState::Secure,
            peer: self.peer,
        };
        self.pending = Some((token, Pending::Login));
        self.events.push_back(Event::Login(request));
    }

    fn cmd_auth(&mut self, mechanism: &str, now: Instant) {
        if !self.config.tls_available {
            self.send(reply(ReplyCode::NOT_IMPLEMENTED, "TLS is not configured."));
        } else if self.control != ControlState::Plain || self.mode == TlsMode::Implicit {
            self.send(reply(ReplyCode::BAD_SEQUENCE, "Already using TLS."));
        } else if !matches!(mechanism, "TLS" | "TLS-C" | "SSL" | "TLS-P") {
            self.send(reply(
                ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                "Unknown AUTH type.",
            ));
        } else {
            self.send(reply(ReplyCode::AUTH_OK, "Proceed with negotiation."));
            self.start_tls(now);
        }
    }

    fn cmd_prot(&mut self, level: ProtectionLevel) {
        if self.control != ControlState::Secure || !self.pbsz {
            self.send(reply(ReplyCode::BAD_SEQUENCE, "PROT needs PBSZ first."));
            return;
        }
        match level {
            ProtectionLevel::Safe | ProtectionLevel::Confidential => self.send(reply(
                ReplyCode::PROT_LEVEL_NOT_SUPPORTED,
                "PROT S and E are not supported with TLS.",
            )),
            ProtectionLevel::Private if self.data_policy == DataTlsPolicy::Deny => {
                self.send(reply(
                    ReplyCode::DENIED_FOR_POLICY,
                    "Policy denies TLS on data connections.",
                ))
            }
            ProtectionLevel::Private => {
                self.prot = level;
                self.send(reply(ReplyCode::COMMAND_OK, "PROT now Private."));
            }
            ProtectionLevel::Clear => {
                self.prot = level;
                self.send(reply(ReplyCode::COMMAND_OK, "PROT now Clear."));
            }
        }
    }

    fn cmd_rein(&mut self, now: Instant) {
        // Each login is logged and checked: a session that logs in and out without end
        // (anonymous, pipelined) would write tens of thousands of log lines a second.
        if self.logins >= MAX_LOGINS {
            self.send(reply(
                ReplyCode::SERVICE_NOT_AVAILABLE,
                "Too many logins in one session; closing.",
            ));
            self.close();
            return;
        }
        let was_logged_in = self.user().is_some();
        if let Some(t) = self.transfer.take() {
            self.actions.push_back(Action::AbortData { id: t.id });
        }
        self.close_data_setup();
        self.login = Login::None;
        self.control_policy = self.config.control_tls;
        self.data_policy = self.config.data_tls;
        self.pbsz = false;
        self.prot = ProtectionLevel::Clear;
        self.ascii = false;
        self.rest = 0;
        self.rename_from = None;
        self.cwd = VirtualPath::root();
        self.epsv_all = false;
        self.host = None;
        self.facts = FactSelection::default();
        self.timers.stop(Timer::Idle);
        // The login timeout starts again only for a session that had logged in: before a
        // login, REIN must not extend it (a session could otherwise stay forever without
        // logging in).
        if was_logged_in {
            self.timers
                .set(Timer::Login, now + self.config.timeouts.login);
            self.events.push_back(Event::LoggedOut);
        }
        self.send(reply(ReplyCode::SERVICE_READY, "Session reinitialized."));
        // RFC 4217 §11 / RFC 2228: REIN flushes the security state; an explicit session
        // returns to plain text and may AUTH again. An implicit one stays in TLS.
        if self.mode == TlsMode::Explicit && self.control == ControlState::Secure {
            self.actions.push_back(Action::StopControlTls);
        }
        if self.mode == TlsMode::Explicit {
            self.control = ControlState::Plain;
        }
    }

    fn cmd_opts(&mut self, name: &str, value: Option<&str>) {
        match (name, value.map(str::to_ascii_uppercase).as_deref()) {
            ("UTF8", Some("ON")) => self.send(reply(ReplyCode::COMMAND_OK, "Always in UTF8 mode.")),
            ("UTF8", _) => self.send(reply(
                ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                "UTF8 cannot be turned off.",
            )),
            ("MLST", _) => {
                self.facts = FactSelection::parse(value.unwrap_or(""));
                let names = self.facts.names();
                self.send(reply(ReplyCode::COMMAND_OK, &format!("MLST OPTS {names}")));
            }
            _ => self.send(reply(
                ReplyCode::SYNTAX_ERROR_IN_ARGUMENTS,
                "Option not understood.",
            )),
        }
    }

    fn cmd_type(&mut self, t: RepresentationType) {
        match t {
            RepresentationType::Ascii(TextFormat::NonPrint) => {
                self.ascii = true;
                self.send(reply(ReplyCode::COMMAND_OK, "Switching to ASCII mode."));
            }
            RepresentationType::Image | RepresentationType::Local(8) => {
                self.ascii = false;
                self.send(reply(ReplyCode::COMMAND_OK, "Switching to Binary mode."));
            }
            _ => self.send(reply(
                ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                "Type not supported.",
            )),
        }
    }

    fn cmd_status(&mut self) {
        let mut lines = vec![
            "FTP server status:".to_owned(),
            format!(" Connected to {}", self.peer.ip()),
        ];
        if let Some(user) = self.user() {
            lines.push(format!(" Logged in as {user}"));
        }
        lines.push(format!(
            " TYPE: {}, STRUcture: File, MODE: Stream",
            if self.ascii { "ASCII" } else { "BINARY" }
        ));
        lines.push(format!(
            " Control connection is {}",
            if self.control == ControlState::Secure {
                "encrypted"
            } else {
                "plain text"
            }
        ));
        lines.push(format!(
            " Data connections will be {}",
            if self.prot == ProtectionLevel::Private {
                "encrypted"
            } else {
                "plain text"
            }
        ));
        match &self.transfer {
            Some(t) => lines.push(format!(
                " Transferring {}: {} bytes so far",
                t.path, t.bytes
            )),
            None => lines.push(" No data connection".to_owned()),
        }
        lines.push("End of status".to_owned());
        self.send(Reply::multiline(ReplyCode::SYSTEM_STATUS, lines));
    }

    /// The features this session supports, exactly.
    fn features(&self) -> Features {
        let mut f = Features::new();
        let mut add = |name: &str, params: &str| {
            let _ = f.push(name, params);
        };
        if self.config.tls_available && self.mode == TlsMode::Explicit {
            add("AUTH", "TLS");
            add("AUTH", "SSL");
        }
        if self.config.tls_available {
            add("PBSZ", "");
            add("PROT", "");
        }
        if self.config.allow_ccc && self.mode == TlsMode::Explicit {
            add("CCC", "");
        }
        if self.config.active_mode {
            add("EPRT", "");
        }
        add("EPSV", "");
        add("HOST", "");
        add("MDTM", "");
        add("MFMT", "");
        add("MLST", &self.facts.feat());
        add("PASV", "");
        add("REST", "STREAM");
        add("SIZE", "");
        add("TVFS", "");
        add("UTF8", "");
        f
    }

    fn close_data_setup(&mut self) {
        self.timers.stop(Timer::DataUnused);
        match std::mem::replace(&mut self.data, DataSetup::None) {
            DataSetup::Passive { id } | DataSetup::Active { id, .. } => {
                self.actions.push_back(Action::AbortData { id });
            }
            DataSetup::None => {}
        }
    }

    fn release_data(&mut self, id: DataId) {
        self.actions.push_back(Action::AbortData { id });
        if matches!(self.data, DataSetup::Passive { id: d } | DataSetup::Active { id: d, .. } if d == id)
        {
            self.data = DataSetup::None;
        }
    }

    fn cmd_passive(&mut self, extended: bool, _now: Instant) {
        if self.epsv_all && !extended {
            self.send(reply(
                ReplyCode::BAD_SEQUENCE,
                "Only EPSV is allowed after EPSV ALL.",
            ));
            return;
        }
        if !extended
            && self.local.is_ipv6()
            && !matches!(self.config.advertised_address, Some(IpAddr::V4(_)))
        {
            self.send(reply(
                ReplyCode::NETWORK_PROTOCOL_NOT_SUPPORTED,
                "PASV needs IPv4; use EPSV.",
            ));
            return;
        }
        // At most one listener per session: a new PASV replaces the old one.
        self.close_data_setup();
        let id = self.new_id();
        let accept_from = self.config.check_data_peer.then(|| self.peer.ip());
        let token = self.new_token();
        self.pending = Some((token, Pending::Listen { id, extended }));
        self.actions.push_back(Action::Listen {
            id,
            ipv6: self.local.is_ipv6(),
            accept_from,
        });
    }

    fn on_listening(&mut self, id: DataId, local: Option<SocketAddr>, now: Instant) {
        let Some((_, Pending::Listen { id: want, extended })) = &self.pending else {
            return;
        };
        if *want != id {
            return;
        }
        let extended = *extended;
        self.pending = None;
        match local {
            None => self.send(reply(
                ReplyCode::CANT_OPEN_DATA_CONNECTION,
                "No free passive port.",
            )),
            Some(local) => {
                self.data = DataSetup::Passive { id };
                self.timers
                    .set(Timer::DataUnused, now + self.config.timeouts.data_connect);
                if extended {
                    self.send(reply(
                        ReplyCode::ENTERING_EXTENDED_PASSIVE_MODE,
                        &format_epsv_reply(local.port()),
                    ));
                } else {
                    let ip = match (self.config.advertised_address, local.ip()) {
                        (Some(IpAddr::V4(a)), _) => a,
                        (_, IpAddr::V4(a)) => a,
                        (_, IpAddr::V6(a)) => a
                            .to_ipv4_mapped()
                            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
                    };
                    self.send(reply(
                        ReplyCode::ENTERING_PASSIVE_MODE,
                        &format_pasv_reply(SocketAddrV4::new(ip, local.port())),
                    ));
                }
            }
        }
        self.drain(now);
    }

    fn cmd_active(&mut self, addr: SocketAddr) {
        if !self.config.active_mode {
            self.send(reply(
                ReplyCode::NOT_IMPLEMENTED,
                "Active mode is disabled; use PASV or EPSV.",
            ));
            return;
        }
        if self.epsv_all {
            self.send(reply(
                ReplyCode::BAD_SEQUENCE,
                "Only EPSV is allowed after EPSV ALL.",
            ));
            return;
        }
        if addr.is_ipv6() != self.peer.is_ipv6() {
            self.send(reply(
                ReplyCode::NETWORK_PROTOCOL_NOT_SUPPORTED,
                "Network protocol not supported, use (1,2).",
            ));
            return;
        }
        // RFC 2577 §3: no bounce to other hosts or privileged ports.
        if (self.config.check_data_peer && addr.ip() != self.peer.ip()) || addr.port() < 1024 {
            self.send(reply(
                ReplyCode::SYNTAX_ERROR_IN_ARGUMENTS,
                "Illegal PORT command: address or port refused.",
            ));
            return;
        }
        self.close_data_setup();
        let id = self.new_id();
        self.data = DataSetup::Active { id, addr };
        self.send(reply(
            ReplyCode::COMMAND_OK,
            "PORT command successful. Consider using PASV.",
        ));
    }

    /// The data connection for a transfer command, or the refusal already sent.
    fn data_for_transfer(&mut self) -> Option<DataId> {
        let id = match &self.data {
            DataSetup::None => {
                self.send(reply(
                    ReplyCode::CANT_OPEN_DATA_CONNECTION,
                    "Use PORT, PASV or EPSV first.",
                ));
                return None;
            }
            DataSetup::Passive { id } | DataSetup::Active { id, .. } => *id,
        };
        let refusal = match (self.data_policy, self.prot) {
            (DataTlsPolicy::Require, p) if p != ProtectionLevel::Private => {
                Some("Data connections must be encrypted: use PROT P.")
            }
            (DataTlsPolicy::Deny, ProtectionLevel::Private) => {
                Some("Data connections must not be encrypted: use PROT C.")
            }
            _ => None,
        };
        if let Some(text) = refusal {
            self.send(reply(ReplyCode::PROT_SETTING_REFUSED, text));
            return None;
        }
        Some(id)
    }

    fn cmd_store(&mut self, path: Option<&str>, offset: u64, append: bool, unique: bool) {
        // Users who may only add files never replace one (the storage refuses a name
        // that exists, when it opens the file and when it publishes it).
        let create_new = !unique
            && matches!(
                self.login,
                Login::LoggedIn {
                    access: Access::UploadNew,
                    ..
                }
            );
        let path = match path {
            Some(p) => self.cwd.resolve(p),
            None => self.cwd.clone(),
        };
        if let Some(id) = self.data_for_transfer() {
            self.request(
                Pending::OpenWrite { id },
                StorageRequest::OpenWrite {
                    id,
                    path,
                    offset,
                    append,
                    unique,
                    create_new,
                },
            );
        }
    }

    fn cmd_list(&mut self, arg: Option<&str>, kind: Option<ListKind>) {
        // LIST takes `ls` options before the path ("-a", "-la dir"); only -a matters.
        let (options, path) = match arg {
            Some(a) if a.starts_with('-') && kind.is_none() => match a.split_once(' ') {
                Some((o, p)) => (o, Some(p)),
                None => (a, None),
            },
            other => ("", other),
        };
        let kind = kind.unwrap_or(ListKind::List {
            hidden: options.contains('a'),
        });
        let path = path.map_or_else(|| self.cwd.clone(), |p| self.cwd.resolve(p));
        if let Some(id) = self.data_for_transfer() {
            let format = ListingFormat {
                kind,
                facts: self.facts,
                access: self.access(),
                max_entries: self.config.max_listing_entries,
            };
            self.request(
                Pending::List {
                    id,
                    path: path.clone(),
                },
                StorageRequest::OpenListing { id, path, format },
            );
        }
    }

    fn begin_transfer(
        &mut self,
        id: DataId,
        kind: TransferKind,
        path: VirtualPath,
        payload: Option<Vec<u8>>,
        text: &str,
        now: Instant,
    ) {
        let connect_to = match &self.data {
            DataSetup::Active { id: d, addr } if *d == id => Some(*addr),
            DataSetup::Passive { id: d } if *d == id => None,
            _ => {
                self.actions.push_back(Action::AbortData { id });
                self.send(reply(
                    ReplyCode::CANT_OPEN_DATA_CONNECTION,
                    "Data connection was closed.",
                ));
                return;
            }
        };
        // One transfer per PASV/PORT.
        self.data = DataSetup::None;
        let tls = self.prot == ProtectionLevel::Private;
        let upload = kind == TransferKind::Upload;
        let ascii = self.ascii && kind != TransferKind::Listing;
        self.transfer = Some(Transfer {
            id,
            kind,
            path,
            tls,
            payload,
            phase: Phase::Connecting,
            bytes: 0,
        });
        self.timers.stop(Timer::Idle);
        self.timers.stop(Timer::DataUnused);
        self.timers
            .set(Timer::DataConnect, now + self.config.timeouts.data_connect);
        self.send(reply(ReplyCode::FILE_STATUS_OK, text));
        self.actions.push_back(Action::OpenData {
            id,
            connect_to,
            tls,
            upload,
            ascii,
        });
    }

    fn fail_transfer(&mut self, r: Reply, now: Instant) {
        if let Some(t) = self.transfer.take() {
            self.timers.stop(Timer::DataConnect);
            self.timers.stop(Timer::DataStall);
            self.actions.push_back(Action::AbortData { id: t.id });
            self.events.push_back(Event::TransferDone {
                path: t.path,
                bytes: t.bytes,
                ok: false,
            });
            self.send(r);
            self.after_transfer(now);
        }
    }

    fn after_transfer(&mut self, now: Instant) {
        if self.user().is_some() {
            self.timers
                .set(Timer::Idle, now + self.config.timeouts.idle);
        }
        self.drain(now);
    }

    fn on_data_connected(
        &mut self,
        id: DataId,
        peer: SocketAddr,
        tls: Option<TlsInfo>,
        now: Instant,
    ) {
        let Some(t) = self
            .transfer
            .as_ref()
            .filter(|t| t.id == id && t.phase == Phase::Connecting)
        else {
            // A connection for a listener with no transfer yet, or a stale one: ignore.
            return;
        };
        if self.config.check_data_peer && peer.ip() != self.peer.ip() {
            self.fail_transfer(
                reply(
                    ReplyCode::CANT_OPEN_DATA_CONNECTION,
                    "Data connection from a foreign address refused.",
                ),
                now,
            );
            return;
        }
        if t.tls {
            match &tls {
                None => {
                    self.fail_transfer(
                        reply(
                            ReplyCode::CANT_OPEN_DATA_CONNECTION,
                            "TLS required on the data connection.",
                        ),
                        now,
                    );
                    return;
                }
                Some(info) if self.config.require_session_reuse && !info.resumed => {
                    self.fail_transfer(
                        reply(
                            ReplyCode::NETWORK_PROTOCOL_NOT_SUPPORTED,
                            "Data connection must reuse the control connection's TLS session.",
                        ),
                        now,
                    );
                    return;
                }
                Some(info) if info.alpn.as_deref().is_some_and(|p| p != ALPN_FTP) => {
                    self.fail_transfer(
                        reply(
                            ReplyCode::CANT_OPEN_DATA_CONNECTION,
                            "Wrong ALPN protocol on the data connection.",
                        ),
                        now,
                    );
                    return;
                }
                Some(_) => {}
            }
        }
        self.timers.stop(Timer::DataConnect);
        self.timers
            .set(Timer::DataStall, now + self.config.timeouts.data_stall);
        let ascii = self.ascii && t.kind != TransferKind::Listing;
        let payload = self.transfer.as_mut().and_then(|t| {
            t.phase = Phase::Moving;
            t.payload.take()
        });
        self.actions
            .push_back(Action::Transfer { id, payload, ascii });
    }

    fn on_data_ended(&mut self, id: DataId, bytes: u64, end: DataEnd, _now: Instant) {
        let Some(t) = self
            .transfer
            .as_mut()
            .filter(|t| t.id == id && t.phase == Phase::Moving)
        else {
            return;
        };
        t.bytes = bytes;
        self.timers.stop(Timer::DataStall);
        let (ok, r) = match (&t.kind, end) {
            (_, DataEnd::Storage(e)) => (false, storage_error_reply(&e)),
            (_, DataEnd::Failed(_)) => (
                false,
                reply(
                    ReplyCode::TRANSFER_ABORTED,
                    "Connection closed; transfer aborted.",
                ),
            ),
            // RFC 4217 §10.2 and the truncation attack: an upload over TLS is complete only
            // if the client ended it with close_notify.
            (
                TransferKind::Upload,
                DataEnd::Complete {
                    close_notify: false,
                },
            ) if t.tls => (
                false,
                reply(
                    ReplyCode::TRANSFER_ABORTED,
                    "Upload ended without TLS close_notify; transfer aborted.",
                ),
            ),
            (_, DataEnd::Complete { .. }) => (
                true,
                reply(ReplyCode::CLOSING_DATA_CONNECTION, "Transfer complete."),
            ),
        };
        t.phase = Phase::Finishing { ok, reply: r };
        self.actions
            .push_back(Action::FinishTransfer { id, commit: ok });
    }

    fn on_transfer_finished(&mut self, id: DataId, result: Result<(), StorageError>, now: Instant) {
        let Some(t) = self
            .transfer
            .take_if(|t| t.id == id && matches!(t.phase, Phase::Finishing { .. }))
        else {
            return;
        };
        let Phase::Finishing { ok, reply: r } = t.phase else {
            return;
        };
        let (ok, r) = match result {
            Err(e) if ok => (false, storage_error_reply(&e)),
            _ => (ok, r),
        };
        self.events.push_back(Event::TransferDone {
            path: t.path,
            bytes: t.bytes,
            ok,
        });
        self.send(r);
        self.after_transfer(now);
    }
}
