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
//!
//! # Inside
//!
//! This module holds the session's state, its inputs, answers and outputs, and `execute`,
//! which passes each command to the concept it belongs to, a module with its own `impl
//! ServerSession` block: `login` (HOST, USER, PASS, ACCT, failed-login delay and
//! lockout), `security` (AUTH, PBSZ, PROT, CCC, REIN, the TLS and login gate), `data`
//! (PASV, EPSV, PORT, EPRT), `transfer` (TYPE, MODE, STRU, REST, the transfer commands,
//! ABOR, a transfer from 150 to 226), `files` (the file commands), `hash` (HASH, OPTS
//! HASH, RANG) and `service` (QUIT, FEAT, HELP, OPTS, STAT, SITE, ...). A command that
//! asks the application (storage, login, SITE) leaves a `Pending` with its token; the
//! answer continues it in the same module as the request.

mod capabilities;
pub mod config;
mod data;
mod files;
mod format;
mod hash;
pub mod io;
mod login;
pub mod permissions;
mod security;
mod service;
mod timer;
mod transfer;

/// Shared with the client (see [`crate::boundary`]); re-exported here for the
/// applications that implement storage (`ftps_backend::Storage`).
pub use crate::boundary::StorageError;
/// Shared with the client (see [`crate::boundary`]); re-exported here as before.
pub use crate::boundary::{ALPN_FTP, TlsInfo, TlsVersion};
pub use capabilities::StorageCapabilities;
pub use config::{ControlTlsPolicy, DataTlsPolicy, ServerConfig, Timeouts, TlsMode};
pub use format::ListingFormat;
pub use io::{
    Action, Event, IoEvent, LoginAnswer, LoginRequest, Metadata, RequestToken, StorageReply,
    StorageRequest, TransferKind,
};
pub use permissions::{Grants, Permission, Permissions};

use crate::boundary::{DataEnd, DataId};
use crate::command::{Command, CommandErrorKind, ProtectionLevel};
use crate::framing::{AfterTls, FrameError, LineFramer};
use crate::path::VirtualPath;
use crate::reply::{Reply, ReplyCode};
use data::DataSetup;
use files::FileOp;
use format::FactSelection;
use login::{Login, LoginState};
use security::{ControlState, Security};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use timer::{Timer, TimerTable};
use transfer::{Open, Transfer};

/// Commands held while the session waits, at most.
const MAX_QUEUED: usize = 16;

/// Reply bytes waiting for the adapter to send, past which the session takes no more
/// control input: a client that pipelines commands and does not read the replies is held
/// by its own backlog (the adapter's write blocks, and its deadline closes the session)
/// instead of making the session queue replies without end (issue 13's second review,
/// finding B: FEAT is 6 bytes in and about 220 out).
const MAX_UNSENT: usize = 16 * 1024;

/// 554 Requested action not taken: invalid REST parameter (RFC 3659 §5.3).
const INVALID_REST_PARAMETER: ReplyCode = match ReplyCode::new(554) {
    Some(code) => code,
    None => ReplyCode::FILE_UNAVAILABLE,
};

/// What the session waits for (at most one thing at a time), by request token.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    /// [`Event::Login`]: answered by [`ServerSession::answer_login`].
    Login,
    /// [`Event::Site`]: answered by [`ServerSession::answer_site`].
    Site,
    /// [`Action::Listen`] for PASV (`extended`: EPSV): answered by an [`IoEvent`].
    Listen { id: DataId, extended: bool },
    /// A file command's [`Event::Storage`] (see `files`).
    File(FileOp),
    /// A transfer command's [`Event::Storage`] (see `transfer`).
    Open(Open),
}

/// How long a transfer still waiting for its data connection when the server starts to
/// drain may wait for it ([`ServerSession::shut_down`]).
pub const DRAIN_DATA_CONNECT: Duration = Duration::from_secs(1);

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
    /// Whether the first command bytes were seen not to start a PROXY header
    /// ([`Event::ProxyHeader`]).
    first_checked: bool,
    /// The server is going away ([`shut_down`](Self::shut_down)): the session ends, with
    /// 421, as soon as nothing is under way.
    shutting_down: bool,

    /// AUTH, PBSZ, PROT, CCC and the TLS policies.
    security: Security,
    /// HOST, USER, PASS: who is logged in, failures, logins.
    login: LoginState,
    /// Reply bytes queued as actions the adapter has not taken yet (see [`MAX_UNSENT`]).
    unsent: usize,

    /// TYPE A: the transfers convert line endings.
    ascii: bool,
    /// REST: the offset the next transfer command uses.
    rest: u64,
    /// RNFR's name, for the RNTO directly after it.
    rename_from: Option<VirtualPath>,
    cwd: VirtualPath,
    /// EPSV ALL: no data setup but EPSV from now on.
    epsv_all: bool,
    /// OPTS MLST: the facts MLST and MLSD show.
    facts: FactSelection,
    /// OPTS HASH and RANG: the algorithm and range of HASH.
    hash: hash::HashState,

    /// The last data id handed out.
    next_id: u64,
    /// The listener or active address the next transfer command uses.
    data: DataSetup,
    transfer: Option<Transfer>,
    /// The last request token handed out.
    next_token: u64,
    /// What the session waits for, and the token its answer carries.
    pending: Option<(RequestToken, Pending)>,
}

/// Gives a drained queue's allocation back: a session spends most of its life idle with
/// its queues empty, and their capacity (four events of ~200 bytes after a login, the
/// lines a client pipelined) would stay with each idle session otherwise (measured with
/// heaptrack, issue 18). A busy session allocates again, a few hundred bytes a command.
fn release_if_empty<T>(queue: &mut VecDeque<T>) {
    if queue.is_empty() && queue.capacity() > 0 {
        *queue = VecDeque::new();
    }
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
            INVALID_REST_PARAMETER,
            "Restart offset past the end of the file.",
        ),
        E::ListingTooLong { max } => reply(
            ReplyCode::LOCAL_ERROR,
            &format!("Listing stopped after {max} entries: the server lists no more at once."),
        ),
        _ => local_error(),
    }
}

/// 451, for what the session cannot say more about.
fn local_error() -> Reply {
    reply(ReplyCode::LOCAL_ERROR, "Local error in processing.")
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
            security: Security::new(&config),
            config,
            mode,
            peer,
            local,
            queue: VecDeque::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            timers: TimerTable::default(),
            closed: false,
            first_checked: false,
            shutting_down: false,
            login: LoginState::default(),
            unsent: 0,
            ascii: false,
            rest: 0,
            rename_from: None,
            cwd: VirtualPath::root(),
            epsv_all: false,
            facts: FactSelection::default(),
            hash: hash::HashState::default(),
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
        release_if_empty(&mut self.actions);
        action
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        release_if_empty(&mut self.events);
        event
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
        match &self.login.state {
            Login::LoggedIn { user, .. } => Some(user),
            _ => None,
        }
    }

    /// True while the control channel is protected by TLS.
    pub fn is_control_secure(&self) -> bool {
        self.security.control == ControlState::Secure
    }

    /// The data protection level set by PROT.
    pub fn protection(&self) -> ProtectionLevel {
        self.security.prot
    }

    /// The working directory.
    pub fn cwd(&self) -> &VirtualPath {
        &self.cwd
    }

    /// The server name the client sent in the control TLS handshake.
    pub fn sni(&self) -> Option<&str> {
        self.security.tls.as_ref().and_then(|t| t.sni.as_deref())
    }

    /// The HOST the client asked for.
    pub fn host(&self) -> Option<&str> {
        self.login.host.as_deref()
    }

    // ----- inputs --------------------------------------------------------------------

    /// Takes control-channel plaintext; returns how many bytes were taken (see the module
    /// documentation).
    pub fn handle_control_input(&mut self, input: &[u8], now: Instant) -> usize {
        if self.closed {
            return input.len();
        }
        if self.security.control == ControlState::Handshaking {
            self.discard(input.len());
            return input.len();
        }
        if !self.first_checked {
            // A PROXY header as the first input: refused, however the bytes were split
            // ("PRO", then "XY ..."): until there are enough to tell, none is taken
            // (review16a, finding 2). The login timeout bounds the wait.
            if input.is_empty() {
                return 0;
            }
            match crate::proxy::starts_header(input) {
                None => return 0,
                Some(true) => {
                    self.events.push_back(Event::ProxyHeader);
                    self.close();
                    return input.len();
                }
                Some(false) => self.first_checked = true,
            }
        }
        if self.security.control == ControlState::Cleared && !self.security.leftover_checked {
            match crate::framing::after_tls(input) {
                AfterTls::NeedMore => return 0,
                AfterTls::Record(n) => {
                    self.security.leftover_checked = true;
                    return n + self.handle_control_input(&input[n..], now);
                }
                AfterTls::Plain => self.security.leftover_checked = true,
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
            if self.security.control == ControlState::Handshaking {
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

    /// The server is going away (a drain before a restart): the session ends with 421
    /// ("Service not available, closing control connection", RFC 959 §4.2) as soon as
    /// nothing is under way — at once if idle; after the transfer, the login check or the
    /// storage request in progress otherwise (a transfer finishes with its own final reply
    /// first, so nothing the client sent is lost). A transfer whose data connection has not
    /// come yet gets [`DRAIN_DATA_CONNECT`] more for it, then ends with 425 (review16c,
    /// finding 7: one waiting for a client that never connects held the drain to its
    /// grace; ended at once, a connection made but not yet reported was cut). Commands
    /// that arrive meanwhile are not run, but for ABOR, STAT and QUIT during a transfer.
    pub fn shut_down(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        self.shutting_down = true;
        if self.transfer_connecting() {
            self.timers
                .shorten(Timer::DataConnect, now + DRAIN_DATA_CONNECT);
        }
        self.drain(now);
    }

    /// Whether the session was told the server is going away.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
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
                self.abort_transfer();
                self.close();
            }
            IoEvent::DataListening { id, local } => self.on_listening(id, Some(local), now),
            IoEvent::DataListenFailed { id } => self.on_listening(id, None, now),
            IoEvent::DataConnected { id, peer, tls } => self.on_data_connected(id, peer, tls, now),
            IoEvent::DataFailed { id, .. } => self.on_data_failed(id, now),
            IoEvent::DataProgress { id, bytes } => self.on_data_progress(id, bytes, now),
            IoEvent::DataEnded { id, bytes, end } => self.on_data_ended(id, bytes, end, now),
            IoEvent::UploadFinished { id, result } => self.on_upload_finished(id, result, now),
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
                Timer::Login if self.user().is_none() => {
                    self.send(reply(ReplyCode::SERVICE_NOT_AVAILABLE, "Login timeout."));
                    self.close();
                }
                Timer::Login => {}
                Timer::Idle if self.transfer.is_some() || self.pending.is_some() => {
                    self.timers
                        .set(Timer::Idle, now + self.config.timeouts.idle);
                }
                Timer::Idle => {
                    self.send(reply(ReplyCode::SERVICE_NOT_AVAILABLE, "Timeout."));
                    self.close();
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
                Timer::LoginDelay => self.on_login_delay(now),
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
        if self.login_answered(answer, now) {
            self.drain(now);
        }
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
        match pending {
            Pending::File(op) => self.file_answered(op, answer),
            Pending::Open(open) => self.open_answered(open, answer, now),
            // Not a storage request: the application answered the wrong token.
            Pending::Login | Pending::Site | Pending::Listen { .. } => match answer {
                Err(e) => self.send(storage_error_reply(&e)),
                Ok(_) => self.send(local_error()),
            },
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
            self.abort_transfer();
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

    fn new_token(&mut self) -> RequestToken {
        self.next_token += 1;
        RequestToken(self.next_token)
    }

    /// Asks the application for `request`; `pending` is what its answer continues.
    fn request(&mut self, pending: Pending, request: StorageRequest) {
        let token = self.new_token();
        self.pending = Some((token, pending));
        self.events.push_back(Event::Storage { token, request });
    }

    fn blocked(&self) -> bool {
        self.pending.is_some()
            || self.login.delayed.is_some()
            || self.transfer.is_some()
            || self.security.control == ControlState::Handshaking
    }

    /// Executes queued lines while nothing blocks; during a transfer only ABOR, STAT and
    /// QUIT run.
    fn drain(&mut self, now: Instant) {
        self.run_queued(now);
        release_if_empty(&mut self.queue);
    }

    /// [`drain`](Self::drain)'s loop.
    fn run_queued(&mut self, now: Instant) {
        while !self.closed && self.security.control != ControlState::Handshaking {
            if self.pending.is_none() && self.login.delayed.is_none() && self.transfer.is_some() {
                // Once an upload's commit is ordered, ABOR and QUIT wait for its end: the
                // file is being published, so its reply must say so, never 426 (issue 14's
                // third review, F1: an upload answered 426 replaced the file).
                let committing = self.upload_committing();
                let urgent = self.queue.iter().position(|l| {
                    l.as_ref().is_ok_and(|l| match Command::parse(l) {
                        Ok(Command::Stat(None)) => true,
                        Ok(Command::Abor | Command::Quit) => !committing,
                        _ => false,
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
            if self.shutting_down {
                self.send(reply(
                    ReplyCode::SERVICE_NOT_AVAILABLE,
                    "Server shutting down; please reconnect.",
                ));
                self.close();
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
        // RNFR must be followed directly by RNTO: any other line ends it, one that does
        // not parse or is refused as well (issue 14's third review, m3).
        let rename_from = self.rename_from.take();
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
            Ok(cmd) => self.execute(cmd, rename_from, now),
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

    /// Runs a command: the gate (TLS policy, login) and the write refusal first, then
    /// the concept it belongs to.
    fn execute(&mut self, cmd: Command, rename_from: Option<VirtualPath>, now: Instant) {
        use Command as C;
        if let Some(refusal) = self.gate(&cmd) {
            self.send(refusal);
            return;
        }
        let transfer = matches!(cmd, C::Retr(_) | C::Stor(_) | C::Appe(_) | C::Stou(_));
        if let Some(refusal) = self.range_refusal(transfer) {
            self.send(refusal);
            return;
        }
        let rest = self.take_rest(&cmd);
        if let Some(refusal) = self
            .capability_refusal(&cmd, rest)
            .or_else(|| self.permission_refusal(&cmd, rest))
        {
            // The data setup stays for the next transfer command, as vsftpd's does: curl
            // has connected to the passive port by now, and a listener closed under it
            // makes it retry with PASV and misread this 550 as PASV's answer ("Bad
            // PASV/EPSV response"). An unused listener still closes at the data-connect
            // timeout.
            self.send(refusal);
            return;
        }
        match cmd {
            C::Host(_) | C::User(_) | C::Pass(_) | C::Acct(_) => self.execute_login(cmd),
            C::Auth(_)
            | C::Pbsz(_)
            | C::Prot(_)
            | C::Ccc
            | C::Rein
            | C::Adat(_)
            | C::Mic(_)
            | C::Conf(_)
            | C::Enc(_) => self.execute_security(cmd, now),
            C::Pasv | C::Epsv(_) | C::Port(_) | C::Eprt(_) => self.execute_data_setup(cmd),
            C::Type(_)
            | C::Mode(_)
            | C::Stru(_)
            | C::Rest(_)
            | C::Retr(_)
            | C::Stor(_)
            | C::Appe(_)
            | C::Stou(_)
            | C::List(_)
            | C::Nlst(_)
            | C::Mlsd(_)
            | C::Abor => self.execute_transfer(cmd, rest),
            C::Pwd
            | C::Cwd(_)
            | C::Cdup
            | C::Size(_)
            | C::Mdtm(_)
            | C::Mlst(_)
            | C::Mfmt { .. }
            | C::Dele(_)
            | C::Rmd(_)
            | C::Mkd(_)
            | C::Rnfr(_)
            | C::Rnto(_)
            | C::Hash(_)
            | C::Rang { .. }
            | C::Stat(Some(_)) => self.execute_file(cmd, rename_from),
            C::Quit
            | C::Noop
            | C::Syst
            | C::Feat
            | C::Help(_)
            | C::Opts { .. }
            | C::Lang(_)
            | C::Stat(None)
            | C::Site(_)
            | C::Allo { .. }
            | C::Smnt(_) => self.execute_service(cmd),
        }
    }

    /// A command [`execute`](Self::execute) sent to a concept that does not handle it: a
    /// bug, caught by debug builds; release builds refuse the command.
    fn misrouted(&mut self, cmd: &Command) {
        debug_assert!(false, "{} was sent to the wrong concept", cmd.verb());
        self.send(reply(
            ReplyCode::NOT_IMPLEMENTED,
            "Command not implemented.",
        ));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
mod idle_memory_tests {
    use super::*;

    #[test]
    fn a_session_that_went_idle_keeps_no_queue_capacity() {
        #[allow(clippy::disallowed_methods)] // The test's clock starts at a real instant.
        let now = Instant::now();
        let config = ServerConfig::default().with_control_tls(ControlTlsPolicy::Allow);
        let (peer, local) = (
            "127.0.0.1:40000".parse().unwrap(),
            "127.0.0.1:21".parse().unwrap(),
        );
        let mut s = ServerSession::new(Arc::new(config), TlsMode::Explicit, peer, local, now);
        // A pipelined burst (lines queued at once, replies) and a login (an event).
        let mut burst = b"NOOP\r\n".repeat(8);
        burst.extend_from_slice(b"USER alice\r\nPASS secret\r\n");
        assert_eq!(s.handle_control_input(&burst, now), burst.len());
        let mut replies = 0;
        while let Some(action) = s.poll_action() {
            replies += usize::from(matches!(action, Action::Send(_)));
        }
        let mut logins = 0;
        while let Some(event) = s.poll_event() {
            logins += usize::from(matches!(event, Event::Login(_)));
        }
        assert_eq!(
            (replies, logins),
            (10, 1),
            "greeting, 8 NOOPs, USER; then PASS"
        );
        let capacities = (
            s.queue.capacity(),
            s.actions.capacity(),
            s.events.capacity(),
        );
        assert_eq!(capacities, (0, 0, 0));
    }
}
