//! The sans-IO FTP/FTPS client session.
//!
//! One [`ClientSession`] per control connection. It decides every protocol step: the TLS
//! mode (implicit, explicit required, explicit if available, plain), AUTH TLS with AUTH SSL
//! as fallback, HOST, login, FEAT, OPTS UTF8, PBSZ/PROT, TYPE, EPSV with PASV as fallback
//! (remembered), PORT/EPRT, REST, and when a transfer is complete: only when the data
//! stream ended cleanly *and* the final reply was positive. The adapter moves bytes and
//! reports [`IoEvent`]s; the application submits [`Operation`]s and reads [`Event`]s.
//!
//! Drain order after every input: [`poll_action`](ClientSession::poll_action) until
//! `None`, then [`poll_event`](ClientSession::poll_event), then
//! [`poll_timeout`](ClientSession::poll_timeout).
//!
//! Security rules kept here: no credential is sent before TLS unless the mode is `Plain`
//! or the application accepted the downgrade ([`Event::PlaintextOnly`] then
//! [`accept_plaintext`](ClientSession::accept_plaintext)); the address in a 227 reply is
//! ignored by default and the control peer's used instead (curl's CVE-2020-8284).

mod hash;
pub mod io;
pub mod listing;
mod renewal;
#[cfg(test)]
mod tests;
mod timer;

pub use io::{
    Action, ClientError, DataEnding, Event, IoEvent, ListFormat, OpId, Operation, Output,
    raw_refusal,
};

use crate::address::{
    format_eprt_argument, format_port_argument, parse_epsv_reply, parse_pasv_reply,
};
use crate::boundary::{DataEnd, DataId};
use crate::command::{Command, EpsvMode, ProtectionLevel, RepresentationType, TextFormat};
use crate::facts::MlsxEntry;
use crate::feature::Features;
use crate::framing::AfterTls;
use crate::reply::{Reply, ReplyClass, ReplyCode, ReplyDecoder, ReplyError, ReplyLimits};
use crate::text::{Password, Pathname, Text, Token, Username};
use crate::time::Timestamp;
use crate::transport::{TransportError, TransportErrorKind};
use renewal::Renewal;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use timer::{Timer, TimerTable};

/// The default of [`ClientConfig::max_listing`]: 64 MiB, about a million `ls -l` lines.
pub const DEFAULT_MAX_LISTING: u64 = 64 << 20;

/// The default of [`ClientConfig::max_control_input`]: 64 KiB, the server driver's bound
/// too ([`boundary::MAX_CONTROL_INPUT`](crate::boundary::MAX_CONTROL_INPUT)).
pub const DEFAULT_MAX_CONTROL_INPUT: usize = crate::boundary::MAX_CONTROL_INPUT;

/// How the client protects the control connection (the choices FileZilla offers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectionMode {
    /// TLS from the first byte (port 990 style).
    Implicit,
    /// AUTH TLS (then AUTH SSL); if both are refused, fail before sending any credential.
    ExplicitRequired,
    /// AUTH TLS (then AUTH SSL); if both are refused, stop and report
    /// [`Event::PlaintextOnly`], and go on in plain text only after
    /// [`ClientSession::accept_plaintext`].
    ExplicitIfAvailable,
    /// No TLS at all.
    Plain,
}

/// The client's settings: [`ClientConfig::new`], then `with_` methods or field
/// assignment (the type is `#[non_exhaustive]`: settings may be added without breaking
/// callers).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// TLS mode.
    pub mode: ConnectionMode,
    /// USER.
    pub user: Username,
    /// PASS.
    pub password: Password,
    /// ACCT, if the server asks for one.
    pub account: Option<Text>,
    /// HOST (RFC 7151) to send before USER.
    pub host: Option<Text>,
    /// PROT P (the default) or PROT C for data connections when TLS is on.
    pub protection: ProtectionLevel,
    /// Passive (the default) or active data connections.
    pub passive: bool,
    /// Use the address of a 227 reply instead of the control peer's.
    pub trust_pasv_address: bool,
    /// Try EPSV first (RFC 2428; the default), falling back to PASV; false: PASV only,
    /// for servers or middleboxes that mishandle EPSV.
    pub epsv: bool,
    /// Reply size caps.
    pub limits: ReplyLimits,
    /// How long to wait for a reply (and for the control TLS handshake). Default 30 s.
    pub reply_timeout: Duration,
    /// How long a data connection may take to be connected or accepted once the server
    /// accepted the command (150), and how long a transfer may go without moving a byte
    /// (the session's stall timer, re-armed by [`IoEvent::DataProgress`]). Default 60 s.
    pub data_timeout: Duration,
    /// The most bytes a listing (LIST, NLST, MLSD) may bring, and the most its parsed
    /// entries may hold in memory ([`listing`]). Listings come whole into memory, and
    /// RFC 959 §4.1.3 puts no end to them: without a bound a hostile server can stream
    /// one forever. Past it the listing is aborted (ABOR, the data connection closed) and
    /// fails with [`ClientError::ListingTooLarge`]; the session goes on. Default
    /// [`DEFAULT_MAX_LISTING`] (64 MiB). Downloads are not bounded: their bytes go where
    /// the application says.
    pub max_listing: u64,
    /// The most control-connection bytes that may wait, read but not yet taken by
    /// [`ClientSession::handle_control_input`]. The adapter reads the control connection
    /// only while less than this waits ([`ClientSession::max_control_input`]); bytes the
    /// session leaves untaken up to this bound will never be taken (no reply is that
    /// long before the decoder's own limits), so the session then fails with
    /// [`ClientError::BadReply`] instead of waiting for its reply timeout. Default
    /// [`DEFAULT_MAX_CONTROL_INPUT`] (64 KiB).
    pub max_control_input: usize,
    /// How long the adapter may take to close our end of a data connection
    /// (close_notify, FIN): a server that stopped reading must not hold the transfer.
    /// Default 2 s. Passed on in [`Action::StartTransfer`].
    pub data_close_timeout: Duration,
    /// After an upload's close: how long the adapter reads on to the server's end of the
    /// data connection, which may bring the TLS 1.3 ticket the next transfer resumes
    /// with. Default 10 s. Passed on in [`Action::StartTransfer`].
    pub upload_end_wait: Duration,
    /// After an upload's close_notify, where the server settled on ALPN `ftp` (which
    /// tells a server that ends an upload at the client's close_notify and answers it
    /// with its own): how long the client's FIN waits for the server's end. A proxy
    /// without half-close (microsocks) closes both sides at the client's FIN, and where
    /// the server's bytes are still unread there, the reset that follows can cut the
    /// upload before the server has read it. (RFC 8446 §6.1: a close_notify closes only
    /// the sender's write side, so the peer may still send after it; when the TCP FIN
    /// follows is the application's choice.) A server that waits for the FIN as well gets
    /// it after this. Default 1 s, within [`upload_end_wait`](Self::upload_end_wait).
    /// Passed on in [`Action::StartTransfer`].
    pub upload_half_close_wait: Duration,
}

impl ClientConfig {
    /// Explicit TLS required, PROT P, passive, the given credentials.
    pub fn new(user: Username, password: Password) -> Self {
        Self {
            mode: ConnectionMode::ExplicitRequired,
            user,
            password,
            account: None,
            host: None,
            protection: ProtectionLevel::Private,
            passive: true,
            trust_pasv_address: false,
            epsv: true,
            limits: ReplyLimits::default(),
            reply_timeout: Duration::from_secs(30),
            data_timeout: Duration::from_secs(60),
            max_listing: DEFAULT_MAX_LISTING,
            max_control_input: DEFAULT_MAX_CONTROL_INPUT,
            data_close_timeout: Duration::from_secs(2),
            upload_end_wait: Duration::from_secs(10),
            upload_half_close_wait: Duration::from_secs(1),
        }
    }
}

with_fields!(ClientConfig {
    with_mode: mode: ConnectionMode,
    with_user: user: Username,
    with_password: password: Password,
    with_account: account: Option<Text>,
    with_host: host: Option<Text>,
    with_protection: protection: ProtectionLevel,
    with_passive: passive: bool,
    with_trust_pasv_address: trust_pasv_address: bool,
    with_epsv: epsv: bool,
    with_limits: limits: ReplyLimits,
    with_reply_timeout: reply_timeout: Duration,
    with_data_timeout: data_timeout: Duration,
    with_max_listing: max_listing: u64,
    with_max_control_input: max_control_input: usize,
    with_data_close_timeout: data_close_timeout: Duration,
    with_upload_end_wait: upload_end_wait: Duration,
    with_upload_half_close_wait: upload_half_close_wait: Duration,
});

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    Greeting,
    Auth { ssl: bool },
    Tls,
    Downgrade,
    Host,
    User,
    Pass,
    Acct,
    Feat,
    Utf8,
    Pbsz,
    Prot,
}

/// The commands that prepare a transfer, before the transfer command itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Type,
    Epsv,
    Pasv,
    Listen,
    Port,
    Rest,
    /// The transfer command is next.
    Command,
}

/// The states a transfer goes through, in order (any of them may end in failure).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Preparing: TYPE, EPSV/PASV or PORT/EPRT, REST; the transfer command not sent yet.
    Preparing(Step),
    /// The transfer command is out; the server has not accepted it yet.
    Sent,
    /// The server accepted the command (1yz, or a positive final reply); the data waits
    /// for its connection.
    Accepted,
    /// The adapter moves the data ([`Action::StartTransfer`]).
    Moving,
    /// ABOR is out (see [`ClientSession::abort`]).
    Aborting {
        /// How many final replies may still come.
        replies_left: u8,
        /// What the operation fails with once they are in (the application's abort:
        /// [`ClientError::Aborted`]).
        error: ClientError,
    },
}

impl Phase {
    /// The transfer command has been sent.
    fn command_sent(&self) -> bool {
        !matches!(self, Phase::Preparing(_))
    }
}

#[derive(Debug, Clone)]
struct Transfer {
    id: DataId,
    command: Command,
    upload: bool,
    ascii: bool,
    offset: u64,
    phase: Phase,
    /// The data connection is up (it may come up in any phase after EPSV/PASV/PORT).
    connected: bool,
    /// How the data ended: bytes and whether properly (see [`IoEvent::DataEnded`]).
    data_end: Option<(u64, bool)>,
    final_reply: Option<Reply>,
    failure: Option<ClientError>,
    /// The most bytes the data may bring (listings), see [`ClientConfig::max_listing`].
    limit: Option<u64>,
    /// Bytes moved so far, as the adapter reported them ([`IoEvent::DataProgress`]).
    moved: u64,
}

impl Transfer {
    fn aborting(&self) -> bool {
        matches!(self.phase, Phase::Aborting { .. })
    }
}

#[derive(Debug, Clone)]
enum Running {
    Simple(Operation),
    Rename { to: Pathname, stage_rnto: bool },
    Hash(Box<hash::HashRun>),
    HashReset(Box<hash::Resetting>),
    Transfer(Box<Transfer>),
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Setup(Setup),
    Ready,
    Closed,
}

/// One control connection's client state. See the [module documentation](self).
#[derive(Debug)]
pub struct ClientSession {
    config: Arc<ClientConfig>,
    peer: SocketAddr,
    decoder: ReplyDecoder,
    state: State,
    secure: bool,
    /// PBSZ/PROT were negotiated under TLS: data connections follow the protection level,
    /// even after CCC cleared the control connection.
    data_tls: bool,
    /// After CCC: the server's close_notify record may still come; see
    /// [`crate::framing::after_tls`].
    tls_leftover_pending: bool,
    features: Features,
    ascii: Option<bool>,
    epsv_failed: bool,
    queue: VecDeque<(OpId, Operation)>,
    running: Option<(OpId, Running)>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    timers: TimerTable,
    /// The adapter's session store has no TLS 1.3 ticket left for a data connection
    /// ([`IoEvent::Resumption`]).
    tickets_exhausted: bool,
    /// A renewal of the control connection in progress (see [`renewal`]).
    renewal: Option<Renewal>,
    /// How many renewals completed.
    renewals: u32,
    next_op: u64,
    next_data: u64,
}

fn quoted_path(text: &str) -> Option<String> {
    let start = text.find('"')? + 1;
    let mut out = String::new();
    let mut chars = text[start..].chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            if chars.peek() == Some(&'"') {
                chars.next();
                out.push('"');
            } else {
                return Some(out);
            }
        } else {
            out.push(c);
        }
    }
    None
}

impl ClientSession {
    /// A session for a control connection to `peer` (already connected by the adapter).
    pub fn new(config: Arc<ClientConfig>, peer: SocketAddr, now: Instant) -> Self {
        let mut s = Self {
            decoder: ReplyDecoder::new(config.limits),
            config,
            peer,
            state: State::Setup(Setup::Greeting),
            secure: false,
            data_tls: false,
            tls_leftover_pending: false,
            features: Features::new(),
            ascii: None,
            epsv_failed: false,
            queue: VecDeque::new(),
            running: None,
            actions: VecDeque::new(),
            events: VecDeque::new(),
            timers: TimerTable::default(),
            tickets_exhausted: false,
            renewal: None,
            renewals: 0,
            next_op: 0,
            next_data: 0,
        };
        if s.config.mode == ConnectionMode::Implicit {
            s.state = State::Setup(Setup::Tls);
            s.actions.push_back(Action::StartControlTls);
        }
        s.timers.set(Timer::Reply, now + s.config.reply_timeout);
        s
    }

    /// The next action for the adapter.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            None
        } else {
            self.timers.next()
        }
    }

    /// True once the session is over.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// True while the control connection is protected.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// What FEAT listed.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// The listing bound of [`ClientConfig::max_listing`].
    pub fn max_listing(&self) -> u64 {
        self.config.max_listing
    }

    /// How many times the session renewed its control connection because the TLS 1.3
    /// session had no ticket left for the next data connection (see
    /// [`IoEvent::Resumption`] and [`Action::Reconnect`]).
    pub fn renewals(&self) -> u32 {
        self.renewals
    }

    /// The control input bound of [`ClientConfig::max_control_input`]: the adapter reads
    /// the control connection only while fewer bytes than this wait for
    /// [`handle_control_input`](Self::handle_control_input).
    pub fn max_control_input(&self) -> usize {
        self.config.max_control_input
    }

    /// Changes [`ClientConfig::max_listing`] for the listings that start from now on.
    pub fn set_max_listing(&mut self, bytes: u64) {
        Arc::make_mut(&mut self.config).max_listing = bytes;
    }

    /// Queues an operation; it runs when the session is ready and the earlier ones are done.
    pub fn submit(&mut self, op: Operation, now: Instant) -> OpId {
        self.next_op += 1;
        let id = OpId(self.next_op);
        if self.state == State::Closed {
            self.events.push_back(Event::Done {
                op: id,
                result: Err(ClientError::Closed),
            });
        } else {
            self.queue.push_back((id, op));
            self.run_next(now);
        }
        id
    }

    /// After [`Event::PlaintextOnly`]: go on without TLS (credentials in clear text).
    pub fn accept_plaintext(&mut self, now: Instant) {
        if self.state == State::Setup(Setup::Downgrade) {
            self.after_tls(now);
        }
    }

    /// Aborts the running transfer (RFC 959 §4.1.3 ABOR): sends ABOR, closes the data
    /// connection, and ends the operation with [`ClientError::Aborted`] once the server
    /// answered — 426 for the transfer then 226 for ABOR, or 226 twice if the transfer had
    /// just completed, or a lone 225 if nothing was in progress. Returns false (and does
    /// nothing) if no transfer command is out.
    pub fn abort(&mut self, now: Instant) -> bool {
        self.abort_with(ClientError::Aborted, now)
    }

    /// [`abort`](Self::abort), ending the operation with `error` instead.
    fn abort_with(&mut self, error: ClientError, now: Instant) -> bool {
        let Some((_, Running::Transfer(t))) = &mut self.running else {
            return false;
        };
        if !t.phase.command_sent() || t.aborting() {
            return false;
        }
        t.phase = Phase::Aborting {
            replies_left: if t.final_reply.is_some() { 1 } else { 2 },
            error,
        };
        let id = t.id;
        self.timers.stop(Timer::DataStall);
        self.actions.push_back(Action::CloseData { id });
        self.send(&Command::Abor, now);
        true
    }

    /// Takes control-connection bytes (plaintext; the adapter owns TLS). Returns how many
    /// were taken: all of them, unless the session closed, or the start of a TLS record
    /// left after CCC is not whole yet. Untaken bytes that reach
    /// [`ClientConfig::max_control_input`] fail the session ([`ClientError::BadReply`]).
    pub fn handle_control_input(&mut self, input: &[u8], now: Instant) -> usize {
        let used = self.take_control_input(input, now);
        let left = input.len() - used;
        if self.state != State::Closed && left > 0 && left >= self.config.max_control_input {
            self.fail_session(ClientError::BadReply(ReplyError::TooLarge));
            return input.len();
        }
        used
    }

    fn take_control_input(&mut self, input: &[u8], now: Instant) -> usize {
        if self.tls_leftover_pending {
            match crate::framing::after_tls(input) {
                AfterTls::NeedMore => return 0,
                AfterTls::Record(n) => {
                    self.tls_leftover_pending = false;
                    return n + self.take_control_input(&input[n..], now);
                }
                AfterTls::Plain => self.tls_leftover_pending = false,
            }
        }
        let mut used = 0;
        while used < input.len() && self.state != State::Closed {
            let (n, reply) = self.decoder.decode(&input[used..]);
            used += n;
            match reply {
                None => {}
                Some(Ok(r)) => self.on_reply(r, now),
                Some(Err(e)) => self.fail_session(ClientError::BadReply(e)),
            }
        }
        if self.state == State::Closed {
            input.len()
        } else {
            used
        }
    }

    /// Takes an IO event from the adapter.
    pub fn handle_io(&mut self, event: IoEvent, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        match event {
            IoEvent::ControlTlsEstablished(_) => {
                if self.state == State::Setup(Setup::Tls) {
                    self.secure = true;
                    self.data_tls = true;
                    if self.config.mode == ConnectionMode::Implicit {
                        self.state = State::Setup(Setup::Greeting);
                        self.timers
                            .set(Timer::Reply, now + self.config.reply_timeout);
                    } else {
                        self.after_tls(now);
                    }
                }
            }
            IoEvent::ControlTlsFailed(reason) => self.fail_session(ClientError::Tls(reason)),
            IoEvent::ControlClosed => self.fail_session(ClientError::Closed),
            IoEvent::Resumption { exhausted } => self.tickets_exhausted = exhausted,
            IoEvent::ControlReconnected { peer } => self.on_reconnected(peer, now),
            IoEvent::DataListening { id, local } => {
                if let Some(t) = self
                    .transfer_mut(id)
                    .filter(|t| t.phase == Phase::Preparing(Step::Listen))
                {
                    t.phase = Phase::Preparing(Step::Port);
                    let cmd = match local {
                        SocketAddr::V4(v4) => format!("PORT {}", format_port_argument(v4)),
                        SocketAddr::V6(_) => format!("EPRT {}", format_eprt_argument(local)),
                    };
                    self.send_raw(&cmd, now);
                }
            }
            IoEvent::DataConnected { id } => {
                if let Some(t) = self.transfer_mut(id) {
                    t.connected = true;
                }
                self.maybe_start(now);
            }
            IoEvent::DataFailed { id, reason } => {
                let Some(t) = self.transfer_mut(id) else {
                    return;
                };
                t.failure.get_or_insert(ClientError::Data(reason));
                let sent = t.phase.command_sent();
                self.timers.stop(Timer::DataStall);
                self.actions.push_back(Action::CloseData { id });
                if sent {
                    // The server's final reply is still due.
                    self.timers
                        .set(Timer::Reply, now + self.config.reply_timeout);
                } else {
                    self.finish_transfer(now);
                }
            }
            IoEvent::DataEnded { id, bytes, end } => {
                if let Some(t) = self.transfer_mut(id) {
                    let clean = matches!(end, DataEnd::Complete { close_notify: true });
                    t.data_end = Some((bytes, clean));
                    t.moved = bytes;
                    self.timers.stop(Timer::DataStall);
                    self.timers
                        .set(Timer::Reply, now + self.config.reply_timeout);
                }
                self.maybe_finish(now);
            }
            IoEvent::DataProgress { id, bytes } => {
                if let Some(t) = self.transfer_mut(id).filter(|t| t.phase == Phase::Moving) {
                    t.moved = bytes;
                    self.timers
                        .set(Timer::DataStall, now + self.config.data_timeout);
                }
            }
            IoEvent::DataOverLimit { id, .. } => {
                let default = self.config.max_listing;
                if self.transfer_mut(id).is_none() {
                    return;
                }
                self.timers.stop(Timer::DataStall);
                let Some(t) = self.transfer_mut(id) else {
                    return;
                };
                if t.aborting() {
                    return; // Already aborted: the replies to ABOR end it.
                }
                let error = ClientError::ListingTooLarge {
                    limit: t.limit.unwrap_or(default),
                };
                // The server is still sending: stop it (RFC 959 §4.1.3 ABOR) and count its
                // replies, so that the next command's reply is the next one read. If it
                // already ended the transfer (226 before the data's end), there is nothing
                // to abort: the data connection is dropped with the operation.
                if t.final_reply.is_some() || !self.abort_with(error.clone(), now) {
                    if let Some(t) = self.transfer_mut(id) {
                        t.failure = Some(error);
                    }
                    self.finish_transfer(now);
                }
            }
        }
    }

    /// Fires the timers that are due: a reply that did not come fails the session
    /// ([`ClientError::Timeout`]); a transfer that moved no byte for
    /// [`ClientConfig::data_timeout`] fails (the session goes on: its data connection is
    /// closed and the final reply awaited). Does nothing if none is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        for timer in self.timers.expired(now) {
            match timer {
                Timer::Reply => {
                    if !self.renewal_timeout() {
                        self.fail_session(ClientError::Timeout)
                    }
                }
                Timer::DataStall => self.on_stall(now),
            }
        }
    }

    /// Whether the adapter should go on moving the bytes of data connection `id`: false
    /// once the session ended its transfer (a stall, an abort, a failure). An adapter
    /// that waits for the data reports [`IoEvent::DataProgress`] and calls
    /// [`handle_timeout`](Self::handle_timeout) at [`poll_timeout`](Self::poll_timeout),
    /// then asks this.
    pub fn is_moving(&self, id: DataId) -> bool {
        match &self.running {
            Some((_, Running::Transfer(t))) => {
                t.id == id && t.phase == Phase::Moving && t.failure.is_none()
            }
            _ => false,
        }
    }

    /// The stall timer fired: no byte moved for the data timeout.
    fn on_stall(&mut self, now: Instant) {
        let Some((_, Running::Transfer(t))) = &self.running else {
            return;
        };
        if t.phase != Phase::Moving || t.data_end.is_some() {
            return;
        }
        let reason = format!(
            "no data moved for {} s (after {} bytes)",
            self.config.data_timeout.as_secs(),
            t.moved
        );
        let id = t.id;
        let reason = TransportError::new(TransportErrorKind::TimedOut, reason);
        self.handle_io(IoEvent::DataFailed { id, reason }, now);
    }

    // ----- internals -----------------------------------------------------------------

    fn send(&mut self, cmd: &Command, now: Instant) {
        self.actions.push_back(Action::Send(cmd.to_bytes()));
        self.timers
            .set(Timer::Reply, now + self.config.reply_timeout);
    }

    /// Sends a line built here from validated parts (PORT/EPRT).
    fn send_raw(&mut self, line: &str, now: Instant) {
        self.actions
            .push_back(Action::Send(format!("{line}\r\n").into_bytes()));
        self.timers
            .set(Timer::Reply, now + self.config.reply_timeout);
    }

    fn transfer_mut(&mut self, id: DataId) -> Option<&mut Transfer> {
        match &mut self.running {
            Some((_, Running::Transfer(t))) if t.id == id => Some(t),
            _ => None,
        }
    }

    fn fail_session(&mut self, error: ClientError) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        self.timers.clear();
        if let Some((op, running)) = self.running.take() {
            let mut result = error.clone();
            if let Running::Transfer(t) = &running {
                self.actions.push_back(Action::CloseData { id: t.id });
                // A listing aborted for its size fails for its size, even if the server
                // then never answered the ABOR.
                if let Phase::Aborting {
                    error: e @ ClientError::ListingTooLarge { .. },
                    ..
                } = &t.phase
                {
                    result = e.clone();
                }
            }
            self.events.push_back(Event::Done {
                op,
                result: Err(result),
            });
        }
        for (op, _) in self.queue.drain(..) {
            self.events.push_back(Event::Done {
                op,
                result: Err(error.clone()),
            });
        }
        self.actions.push_back(Action::Close);
        self.events.push_back(Event::Closed { error: Some(error) });
    }

    fn setup(&mut self, step: Setup, cmd: Option<Command>, now: Instant) {
        self.state = State::Setup(step);
        if let Some(cmd) = cmd {
            self.send(&cmd, now);
        }
    }

    fn after_greeting(&mut self, now: Instant) {
        match self.config.mode {
            ConnectionMode::ExplicitRequired | ConnectionMode::ExplicitIfAvailable => {
                let tls = Token::new("TLS").unwrap_or_else(|_| unreachable_token());
                self.setup(Setup::Auth { ssl: false }, Some(Command::Auth(tls)), now);
            }
            _ => self.after_tls(now),
        }
    }

    fn after_tls(&mut self, now: Instant) {
        match self.config.host.clone() {
            Some(host) => self.setup(Setup::Host, Some(Command::Host(host)), now),
            None => self.login(now),
        }
    }

    fn login(&mut self, now: Instant) {
        let user = self.config.user.clone();
        self.setup(Setup::User, Some(Command::User(user)), now);
    }

    fn after_login(&mut self, now: Instant) {
        self.setup(Setup::Feat, Some(Command::Feat), now);
    }

    fn after_feat(&mut self, now: Instant) {
        if self.features.supports("UTF8") {
            let opts = Command::Opts {
                name: Token::new("UTF8").unwrap_or_else(|_| unreachable_token()),
                value: Text::new("ON").ok(),
            };
            self.setup(Setup::Utf8, Some(opts), now);
        } else {
            self.after_utf8(now);
        }
    }

    fn after_utf8(&mut self, now: Instant) {
        if self.secure {
            self.setup(Setup::Pbsz, Some(Command::Pbsz(0)), now);
        } else {
            self.ready(now);
        }
    }

    fn ready(&mut self, now: Instant) {
        if self.renewed_login(now) {
            return;
        }
        self.state = State::Ready;
        self.timers.stop(Timer::Reply);
        self.events.push_back(Event::Ready {
            features: self.features.clone(),
            secure: self.secure,
        });
        self.run_next(now);
    }

    fn on_reply(&mut self, reply: Reply, now: Instant) {
        let code = reply.code();
        match self.state {
            State::Closed => {}
            State::Setup(step) => self.on_setup_reply(step, reply, now),
            State::Ready if self.renewal.is_some() => {
                if let Some(step) = self.renewal.take() {
                    self.on_renewal_reply(step, reply, now);
                }
            }
            State::Ready => match self.running.take() {
                Some((op, running)) => self.on_op_reply(op, running, reply, now),
                None if code == ReplyCode::SERVICE_NOT_AVAILABLE => {
                    self.fail_session(ClientError::Refused(reply))
                }
                None => {} // An unsolicited reply; nothing waits for it.
            },
        }
    }

    fn on_setup_reply(&mut self, step: Setup, reply: Reply, now: Instant) {
        let code = reply.code();
        if reply.code().is_preliminary() {
            return;
        }
        let positive = done_or_intermediate(code);
        match step {
            Setup::Greeting if code == ReplyCode::SERVICE_READY => self.after_greeting(now),
            Setup::Auth { .. } if code == ReplyCode::AUTH_OK => {
                self.state = State::Setup(Setup::Tls);
                self.actions.push_back(Action::StartControlTls);
            }
            Setup::Auth { ssl: false }
                if !code.is_positive() && code != ReplyCode::SERVICE_NOT_AVAILABLE =>
            {
                let ssl = Token::new("SSL").unwrap_or_else(|_| unreachable_token());
                self.setup(Setup::Auth { ssl: true }, Some(Command::Auth(ssl)), now);
            }
            Setup::Auth { ssl: true }
                if !code.is_positive() && code != ReplyCode::SERVICE_NOT_AVAILABLE =>
            {
                match self.config.mode {
                    // A session that had TLS never goes on without it: a renewal's fresh
                    // connection that offers none fails (issue 14's third review, F2: the
                    // offer to downgrade waited for an answer nobody gives mid-operation).
                    ConnectionMode::ExplicitIfAvailable if self.renewal.is_none() => {
                        self.state = State::Setup(Setup::Downgrade);
                        self.timers.stop(Timer::Reply);
                        self.events.push_back(Event::PlaintextOnly);
                    }
                    _ => self.fail_session(ClientError::TlsUnavailable),
                }
            }
            Setup::Host => self.login(now),
            Setup::User if code == ReplyCode::NEED_PASSWORD => {
                let pass = self.config.password.clone();
                self.setup(Setup::Pass, Some(Command::Pass(pass)), now);
            }
            Setup::User | Setup::Pass | Setup::Acct
                if code == ReplyCode::LOGGED_IN
                    || (code == ReplyCode::SUPERFLUOUS && step != Setup::User) =>
            {
                self.after_login(now)
            }
            Setup::User | Setup::Pass if code == ReplyCode::NEED_ACCOUNT => {
                match self.config.account.clone() {
                    Some(acct) => self.setup(Setup::Acct, Some(Command::Acct(acct)), now),
                    None => self.fail_session(ClientError::Refused(reply)),
                }
            }
            Setup::Feat => {
                self.features = Features::from_reply(&reply).unwrap_or_default();
                self.after_feat(now);
            }
            Setup::Utf8 => self.after_utf8(now),
            Setup::Pbsz if positive => {
                let level = self.config.protection;
                self.setup(Setup::Prot, Some(Command::Prot(level)), now);
            }
            Setup::Prot if positive => self.ready(now),
            _ => self.fail_session(ClientError::Refused(reply)),
        }
    }

    fn run_next(&mut self, now: Instant) {
        if self.state != State::Ready || self.running.is_some() {
            return;
        }
        if self.renewal.is_some() || self.renew_if_needed(now) {
            return;
        }
        let Some((op, operation)) = self.queue.pop_front() else {
            return;
        };
        use Operation as O;
        let running = match operation {
            O::ClearControl if !self.secure => {
                let why = "CCC needs a TLS control connection";
                return self.op_done(op, Err(ClientError::Unsupported(why)), now);
            }
            O::Raw(ref command) if let Some(why) = raw_refusal(command) => {
                return self.op_done(op, Err(ClientError::Unsupported(why)), now);
            }
            O::List { path, format } => {
                let command = match format {
                    ListFormat::List => Command::List(path),
                    ListFormat::Nlst => Command::Nlst(path),
                    ListFormat::Mlsd => Command::Mlsd(path),
                };
                self.transfer(command, false, false, 0)
            }
            O::Retrieve {
                path,
                offset,
                ascii,
            } => self.transfer(Command::Retr(path), false, ascii, offset),
            O::Store {
                path,
                offset,
                append: false,
                ascii,
            } => self.transfer(Command::Stor(path), true, ascii, offset),
            O::Store {
                path,
                append: true,
                ascii,
                ..
            } => self.transfer(Command::Appe(path), true, ascii, 0),
            O::StoreUnique => self.transfer(Command::Stou(None), true, false, 0),
            O::Rename { from, to } => {
                self.send(&Command::Rnfr(from), now);
                Running::Rename {
                    to,
                    stage_rnto: false,
                }
            }
            O::Quit => {
                self.send(&Command::Quit, now);
                Running::Quit
            }
            O::Hash {
                path,
                algorithm,
                range,
            } => match self.start_hash(path, algorithm, range, now) {
                Ok(running) => running,
                Err(e) => return self.op_done(op, Err(e), now),
            },
            other => {
                let command = match &other {
                    O::Size(p) => Command::Size(p.clone()),
                    O::Modified(p) => Command::Mdtm(p.clone()),
                    O::SetModified { path, time } => Command::Mfmt {
                        modified: *time,
                        path: path.clone(),
                    },
                    O::Mlst(p) => Command::Mlst(p.clone()),
                    O::Pwd => Command::Pwd,
                    O::Cwd(p) => Command::Cwd(p.clone()),
                    O::Cdup => Command::Cdup,
                    O::Mkd(p) => Command::Mkd(p.clone()),
                    O::Rmd(p) => Command::Rmd(p.clone()),
                    O::Dele(p) => Command::Dele(p.clone()),
                    O::Site(t) => Command::Site(t.clone()),
                    O::Stat(p) => Command::Stat(p.clone()),
                    O::ClearControl => Command::Ccc,
                    O::Raw(c) => c.clone(),
                    _ => Command::Noop,
                };
                self.send(&command, now);
                Running::Simple(other)
            }
        };
        self.running = Some((op, running));
        if let Some((_, Running::Transfer(_))) = &self.running {
            self.advance_transfer(now);
        }
    }

    fn transfer(&mut self, command: Command, upload: bool, ascii: bool, offset: u64) -> Running {
        self.next_data += 1;
        let listing = matches!(
            command,
            Command::List(_) | Command::Nlst(_) | Command::Mlsd(_)
        );
        Running::Transfer(Box::new(Transfer {
            id: DataId(self.next_data),
            command,
            upload,
            ascii,
            offset,
            phase: Phase::Preparing(Step::Type),
            connected: false,
            data_end: None,
            final_reply: None,
            failure: None,
            limit: listing.then_some(self.config.max_listing),
            moved: 0,
        }))
    }

    /// How the next data connection is set up: active, or EPSV (PASV once EPSV failed).
    fn data_step(&self) -> Step {
        if !self.config.passive {
            Step::Listen
        } else if self.epsv_failed || !self.config.epsv {
            Step::Pasv
        } else {
            Step::Epsv
        }
    }

    /// Sends the next command of the running transfer, from its current step on.
    fn advance_transfer(&mut self, now: Instant) {
        let data_step = self.data_step();
        let Some((_, Running::Transfer(t))) = &mut self.running else {
            return;
        };
        let tls = self.data_tls && self.config.protection == ProtectionLevel::Private;
        loop {
            let Phase::Preparing(step) = t.phase else {
                return;
            };
            match step {
                Step::Type => {
                    if self.ascii != Some(t.ascii) {
                        let ty = if t.ascii {
                            RepresentationType::Ascii(TextFormat::NonPrint)
                        } else {
                            RepresentationType::Image
                        };
                        let bytes = Command::Type(ty).to_bytes();
                        self.actions.push_back(Action::Send(bytes));
                        self.timers
                            .set(Timer::Reply, now + self.config.reply_timeout);
                        return;
                    }
                    t.phase = Phase::Preparing(data_step);
                }
                Step::Epsv => {
                    self.actions
                        .push_back(Action::Send(Command::Epsv(EpsvMode::Any).to_bytes()));
                    self.timers
                        .set(Timer::Reply, now + self.config.reply_timeout);
                    return;
                }
                Step::Pasv => {
                    self.actions
                        .push_back(Action::Send(Command::Pasv.to_bytes()));
                    self.timers
                        .set(Timer::Reply, now + self.config.reply_timeout);
                    return;
                }
                Step::Listen => {
                    self.actions.push_back(Action::ListenData {
                        id: t.id,
                        accept_from: self.peer.ip(),
                        tls,
                    });
                    return;
                }
                Step::Port => return,
                Step::Rest => {
                    if t.offset > 0 {
                        self.actions
                            .push_back(Action::Send(Command::Rest(t.offset).to_bytes()));
                        self.timers
                            .set(Timer::Reply, now + self.config.reply_timeout);
                        return;
                    }
                    t.phase = Phase::Preparing(Step::Command);
                }
                Step::Command => {
                    t.phase = Phase::Sent;
                    self.actions.push_back(Action::Send(t.command.to_bytes()));
                    self.timers
                        .set(Timer::Reply, now + self.config.reply_timeout);
                    return;
                }
            }
        }
    }

    fn on_op_reply(&mut self, op: OpId, running: Running, reply: Reply, now: Instant) {
        let code = reply.code();
        match running {
            Running::Transfer(mut t) if t.aborting() => {
                if reply.code().is_preliminary() {
                    self.running = Some((op, Running::Transfer(t)));
                    return;
                }
                let Phase::Aborting {
                    replies_left,
                    error,
                } = &mut t.phase
                else {
                    return;
                };
                if *replies_left > 1 && code != ReplyCode::DATA_CONNECTION_OPEN {
                    *replies_left -= 1;
                    self.timers
                        .set(Timer::Reply, now + self.config.reply_timeout);
                    self.running = Some((op, Running::Transfer(t)));
                } else {
                    let error = error.clone();
                    self.op_done(op, Err(error), now)
                }
            }
            Running::Transfer(mut t) => {
                let id = t.id;
                let tls = self.data_tls && self.config.protection == ProtectionLevel::Private;
                let ok = done_or_intermediate(code);
                let step = match t.phase {
                    Phase::Preparing(step) => Some(step),
                    _ => None,
                };
                match step {
                    _ if code == ReplyCode::SERVICE_NOT_AVAILABLE => {
                        self.running = Some((op, Running::Transfer(t)));
                        self.fail_session(ClientError::Refused(reply));
                        return;
                    }
                    Some(Step::Type) if ok => {
                        self.ascii = Some(t.ascii);
                        t.phase = Phase::Preparing(self.data_step());
                    }
                    Some(Step::Epsv) if code == ReplyCode::ENTERING_EXTENDED_PASSIVE_MODE => {
                        match parse_epsv_reply(reply.first_line()) {
                            Ok(port) => {
                                self.actions.push_back(Action::ConnectData {
                                    id,
                                    addr: SocketAddr::new(self.peer.ip(), port),
                                    tls,
                                });
                                t.phase = Phase::Preparing(Step::Rest);
                            }
                            Err(_) => {
                                return self.op_done(op, Err(ClientError::Unexpected(reply)), now);
                            }
                        }
                    }
                    Some(Step::Epsv)
                        if matches!(
                            code,
                            ReplyCode::SYNTAX_ERROR
                                | ReplyCode::SYNTAX_ERROR_IN_ARGUMENTS
                                | ReplyCode::NOT_IMPLEMENTED
                                | ReplyCode::PARAMETER_NOT_IMPLEMENTED
                                | ReplyCode::NETWORK_PROTOCOL_NOT_SUPPORTED
                        ) =>
                    {
                        self.epsv_failed = true;
                        t.phase = Phase::Preparing(Step::Pasv);
                    }
                    Some(Step::Pasv) if code == ReplyCode::ENTERING_PASSIVE_MODE => {
                        match parse_pasv_reply(reply.first_line()) {
                            Ok(addr) => {
                                let ip = if self.config.trust_pasv_address {
                                    std::net::IpAddr::V4(*addr.ip())
                                } else {
                                    self.peer.ip()
                                };
                                self.actions.push_back(Action::ConnectData {
                                    id,
                                    addr: SocketAddr::new(ip, addr.port()),
                                    tls,
                                });
                                t.phase = Phase::Preparing(Step::Rest);
                            }
                            Err(_) => {
                                return self.op_done(op, Err(ClientError::Unexpected(reply)), now);
                            }
                        }
                    }
                    Some(Step::Port) if ok => t.phase = Phase::Preparing(Step::Rest),
                    Some(Step::Rest) if code == ReplyCode::PENDING_FURTHER_INFORMATION => {
                        t.phase = Phase::Preparing(Step::Command)
                    }
                    None if reply.code().is_preliminary() => {
                        if t.phase == Phase::Sent {
                            t.phase = Phase::Accepted;
                        }
                        // The transfer may take long: no reply timeout until the data ends,
                        // but the data connection must come up in time.
                        match t.connected {
                            false => self
                                .timers
                                .set(Timer::Reply, now + self.config.data_timeout),
                            true => self.timers.stop(Timer::Reply),
                        }
                        self.running = Some((op, Running::Transfer(t)));
                        self.maybe_start(now);
                        return;
                    }
                    None => {
                        t.final_reply = Some(reply);
                        self.running = Some((op, Running::Transfer(t)));
                        self.maybe_start(now);
                        self.maybe_finish(now);
                        return;
                    }
                    _ => {
                        self.actions.push_back(Action::CloseData { id });
                        return self.op_done(op, Err(ClientError::Refused(reply)), now);
                    }
                }
                self.running = Some((op, Running::Transfer(t)));
                self.advance_transfer(now);
            }
            Running::Rename {
                to,
                stage_rnto: false,
            } if code == ReplyCode::PENDING_FURTHER_INFORMATION => {
                self.send(&Command::Rnto(to.clone()), now);
                self.running = Some((
                    op,
                    Running::Rename {
                        to,
                        stage_rnto: true,
                    },
                ));
            }
            Running::Hash(run) => self.hash_reply(op, run, reply, now),
            Running::HashReset(r) => self.hash_reset_reply(op, r, &reply, now),
            Running::Rename { .. } => {
                let result = if code.class() == ReplyClass::PositiveCompletion {
                    Ok(Output::Reply(reply))
                } else {
                    Err(ClientError::Refused(reply))
                };
                self.op_done(op, result, now);
            }
            Running::Quit => {
                self.op_done(op, Ok(Output::Reply(reply)), now);
                self.state = State::Closed;
                self.timers.clear();
                for (op, _) in self.queue.drain(..) {
                    self.events.push_back(Event::Done {
                        op,
                        result: Err(ClientError::Closed),
                    });
                }
                self.actions.push_back(Action::Close);
                self.events.push_back(Event::Closed { error: None });
            }
            Running::Simple(operation) => {
                if reply.code().is_preliminary() {
                    self.running = Some((op, Running::Simple(operation)));
                    return;
                }
                if code == ReplyCode::SERVICE_NOT_AVAILABLE {
                    self.running = Some((op, Running::Simple(operation)));
                    self.fail_session(ClientError::Refused(reply));
                    return;
                }
                let result = Self::simple_result(&operation, reply);
                if operation == Operation::ClearControl && result.is_ok() {
                    // RFC 4217 §6: both sides end TLS; the control connection goes on in
                    // clear text.
                    self.secure = false;
                    self.tls_leftover_pending = true;
                    self.actions.push_back(Action::StopControlTls);
                }
                self.op_done(op, result, now);
            }
        }
    }

    fn simple_result(operation: &Operation, reply: Reply) -> Result<Output, ClientError> {
        let code = reply.code();
        if let Operation::Raw(_) = operation {
            return Ok(Output::Reply(reply));
        }
        if code.class() != ReplyClass::PositiveCompletion {
            return Err(ClientError::Refused(reply));
        }
        let unexpected = |r: &Reply| ClientError::Unexpected(r.clone());
        match operation {
            Operation::Size(_) => reply
                .first_line()
                .trim()
                .parse()
                .map(Output::Size)
                .map_err(|_| unexpected(&reply)),
            Operation::Modified(_) => Timestamp::parse(reply.first_line().trim())
                .map(Output::Modified)
                .map_err(|_| unexpected(&reply)),
            Operation::Pwd | Operation::Mkd(_) if code == ReplyCode::PATHNAME_CREATED => {
                quoted_path(reply.first_line())
                    .map(Output::Path)
                    .ok_or_else(|| unexpected(&reply))
            }
            Operation::Mlst(_) => reply
                .lines()
                .get(1)
                .and_then(|l| MlsxEntry::parse_mlst_line(l).ok())
                .map(Output::Entry)
                .ok_or_else(|| unexpected(&reply)),
            _ => Ok(Output::Reply(reply)),
        }
    }

    /// Tells the adapter to move data once the command is accepted and the data connection
    /// is up.
    fn maybe_start(&mut self, now: Instant) {
        let Some((_, Running::Transfer(t))) = &mut self.running else {
            return;
        };
        if t.phase == Phase::Sent
            && t.final_reply
                .as_ref()
                .is_some_and(|r| r.code().is_positive())
        {
            t.phase = Phase::Accepted;
        }
        if t.phase == Phase::Accepted && t.connected && t.failure.is_none() {
            t.phase = Phase::Moving;
            // The transfer may take long: no reply is due, but the data must keep moving
            // (the adapter reports its progress).
            self.timers.stop(Timer::Reply);
            self.timers
                .set(Timer::DataStall, now + self.config.data_timeout);
            self.actions.push_back(Action::StartTransfer {
                id: t.id,
                upload: t.upload,
                limit: t.limit,
                ending: DataEnding {
                    close: self.config.data_close_timeout,
                    upload_drain: self.config.upload_end_wait,
                    half_close: self.config.upload_half_close_wait,
                },
            });
        }
    }

    /// Completes the running transfer when both the final reply and the end of the data
    /// (or a failure) are in.
    fn maybe_finish(&mut self, now: Instant) {
        let Some((_, Running::Transfer(t))) = &self.running else {
            return;
        };
        if t.aborting() {
            return; // The replies to ABOR end it.
        }
        let Some(reply) = &t.final_reply else { return };
        let negative = !reply.code().is_positive();
        if negative || t.failure.is_some() || t.data_end.is_some() {
            self.finish_transfer(now);
        } else {
            // The reply is in; the data must end within the reply timeout.
            self.timers
                .set(Timer::Reply, now + self.config.reply_timeout);
        }
    }

    fn finish_transfer(&mut self, now: Instant) {
        let Some((op, Running::Transfer(t))) = self.running.take() else {
            return;
        };
        let mut failure = t.failure;
        if let (Some(limit), Some((bytes, _))) = (t.limit, t.data_end)
            && bytes > limit
        {
            // An adapter that did not stop at the bound: the listing is refused all the same.
            failure.get_or_insert(ClientError::ListingTooLarge { limit });
        }
        let result = match (&t.final_reply, failure, t.data_end) {
            (Some(r), _, _) if !r.code().is_positive() => Err(ClientError::Refused(r.clone())),
            (_, Some(failure), _) => Err(failure),
            (Some(r), None, Some((bytes, true))) => Ok(Output::Transferred {
                bytes,
                reply: r.clone(),
            }),
            (Some(_), None, Some((bytes, false))) if !t.upload => {
                Err(ClientError::Truncated { bytes })
            }
            (Some(_), None, Some(_)) => Err(ClientError::Data(
                "the upload could not be ended cleanly (its data connection failed while closing)"
                    .into(),
            )),
            (Some(r), None, None) => Err(ClientError::Unexpected(r.clone())),
            (None, None, _) => Err(ClientError::Closed),
        };
        if result.is_err() {
            self.actions.push_back(Action::CloseData { id: t.id });
        }
        self.op_done(op, result, now);
    }

    fn op_done(&mut self, op: OpId, result: Result<Output, ClientError>, now: Instant) {
        self.running = None;
        self.timers.clear();
        self.events.push_back(Event::Done { op, result });
        self.run_next(now);
    }
}

/// 2yz or 3yz: the command was done, or the server waits for the next one.
fn done_or_intermediate(code: ReplyCode) -> bool {
    matches!(
        code.class(),
        ReplyClass::PositiveCompletion | ReplyClass::PositiveIntermediate
    )
}

fn unreachable_token() -> Token {
    // "TLS", "SSL" and "UTF8" are valid tokens; this is never reached.
    Token::new("X").expect("a one-letter token is valid")
}
