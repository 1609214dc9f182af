//! The vocabulary between a [`ClientSession`](super::ClientSession), its adapter and its
//! application: operations in, actions and events out, IO events in.

use crate::boundary::{DataEnd, DataId, TlsInfo};
use crate::command::Command;
use crate::facts::MlsxEntry;
use crate::feature::Features;
use crate::hash::{HashAlgorithm, HashReply};
use crate::reply::{Reply, ReplyError};
use crate::text::{Pathname, Text};
use crate::time::Timestamp;
use crate::transport::TransportError;
use std::net::SocketAddr;
use std::time::Duration;

/// Names one submitted operation; its result comes back in [`Event::Done`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub(crate) u64);

/// Which listing command to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListFormat {
    /// LIST: human-readable lines.
    List,
    /// NLST: names only.
    Nlst,
    /// MLSD: machine-readable facts (RFC 3659).
    Mlsd,
}

/// Something the application asks the client to do. Operations run one at a time, in the
/// order submitted, once the session is logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// A directory listing over a data connection.
    List {
        /// The directory (or file); the working directory if `None`.
        path: Option<Pathname>,
        /// The command.
        format: ListFormat,
    },
    /// Download a file, from `offset` (REST) if not 0.
    Retrieve {
        /// The file.
        path: Pathname,
        /// Where to start.
        offset: u64,
        /// TYPE A instead of TYPE I.
        ascii: bool,
    },
    /// Upload a file: STOR (from `offset` with REST), or APPE if `append`.
    Store {
        /// The file.
        path: Pathname,
        /// Where to start writing (REST + STOR).
        offset: u64,
        /// APPE instead of STOR.
        append: bool,
        /// TYPE A instead of TYPE I.
        ascii: bool,
    },
    /// STOU: upload under a name the server picks.
    StoreUnique,
    /// SIZE.
    Size(Pathname),
    /// MDTM.
    Modified(Pathname),
    /// MFMT.
    SetModified {
        /// The file.
        path: Pathname,
        /// The time.
        time: Timestamp,
    },
    /// MLST.
    Mlst(Option<Pathname>),
    /// PWD.
    Pwd,
    /// CWD.
    Cwd(Pathname),
    /// CDUP.
    Cdup,
    /// MKD.
    Mkd(Pathname),
    /// RMD.
    Rmd(Pathname),
    /// DELE.
    Dele(Pathname),
    /// RNFR then RNTO.
    Rename {
        /// The existing name.
        from: Pathname,
        /// The new name.
        to: Pathname,
    },
    /// SITE.
    Site(Text),
    /// NOOP.
    Noop,
    /// STAT over the control connection.
    Stat(Option<Pathname>),
    /// CCC (RFC 4217 §6): end TLS on the control connection and go on in clear text, for
    /// firewalls that must read it. Opt-in only; data connections keep their protection
    /// level. On 200 the session asks the adapter for [`Action::StopControlTls`].
    ClearControl,
    /// HASH (draft-bryan-ftpext-hash-02): `OPTS HASH <algorithm>`, `RANG <start> <end>`
    /// for a range (both inclusive), then `HASH <path>`; the result is
    /// [`Output::Hash`]. Fails with [`ClientError::Unsupported`], sending nothing, when
    /// the server's FEAT does not offer HASH, the algorithm, or (for a range) RANG.
    Hash {
        /// The file.
        path: Pathname,
        /// The algorithm (see [`crate::hash::preferred`] to pick one the server offers).
        algorithm: HashAlgorithm,
        /// The first and last byte, for a part of the file.
        range: Option<(u64, u64)>,
    },
    /// Any command without a data connection; the final reply is the result, whatever its
    /// code. Commands the session runs itself are refused ([`raw_refusal`]).
    Raw(Command),
    /// QUIT, then close.
    Quit,
}

impl Operation {
    /// Whether the operation opens a data connection (listings and transfers).
    pub fn uses_data_connection(&self) -> bool {
        matches!(
            self,
            Operation::List { .. }
                | Operation::Retrieve { .. }
                | Operation::Store { .. }
                | Operation::StoreUnique
        )
    }
}

/// The result of a successful operation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// The final reply of a command with nothing more to report.
    Reply(Reply),
    /// A transfer completed: the data stream ended cleanly and the final reply was
    /// positive.
    Transferred {
        /// Bytes the adapter moved.
        bytes: u64,
        /// The final reply (226 or 250).
        reply: Reply,
    },
    /// SIZE.
    Size(u64),
    /// MDTM.
    Modified(Timestamp),
    /// PWD, or the directory MKD created.
    Path(String),
    /// MLST.
    Entry(MlsxEntry),
    /// HASH.
    Hash(HashReply),
}

/// Typed views of an [`Output`], for the adapters' client methods: the output an
/// operation does not produce is [`ClientError::Unsupported`].
impl Output {
    fn mismatch<T>() -> Result<T, ClientError> {
        Err(ClientError::Unsupported(
            "the operation gave another kind of result",
        ))
    }

    /// The byte count of a transfer.
    pub fn into_bytes(self) -> Result<u64, ClientError> {
        match self {
            Output::Transferred { bytes, .. } => Ok(bytes),
            _ => Self::mismatch(),
        }
    }

    /// The byte count and final reply of a transfer.
    pub fn into_transfer(self) -> Result<(u64, Reply), ClientError> {
        match self {
            Output::Transferred { bytes, reply } => Ok((bytes, reply)),
            _ => Self::mismatch(),
        }
    }

    /// SIZE's answer.
    pub fn into_size(self) -> Result<u64, ClientError> {
        match self {
            Output::Size(n) => Ok(n),
            _ => Self::mismatch(),
        }
    }

    /// MDTM's answer.
    pub fn into_modified(self) -> Result<Timestamp, ClientError> {
        match self {
            Output::Modified(t) => Ok(t),
            _ => Self::mismatch(),
        }
    }

    /// PWD's (or MKD's) path.
    pub fn into_path(self) -> Result<String, ClientError> {
        match self {
            Output::Path(p) => Ok(p),
            _ => Self::mismatch(),
        }
    }

    /// MLST's entry.
    pub fn into_entry(self) -> Result<MlsxEntry, ClientError> {
        match self {
            Output::Entry(e) => Ok(e),
            _ => Self::mismatch(),
        }
    }

    /// HASH's answer.
    pub fn into_hash(self) -> Result<HashReply, ClientError> {
        match self {
            Output::Hash(h) => Ok(h),
            _ => Self::mismatch(),
        }
    }

    /// The final reply, whatever the operation.
    pub fn into_reply(self) -> Result<Reply, ClientError> {
        match self {
            Output::Reply(r) | Output::Transferred { reply: r, .. } => Ok(r),
            _ => Self::mismatch(),
        }
    }
}

/// Why [`Operation::Raw`] will not send `command`, if it will not: the command needs a
/// data connection (the session opens those for its transfers and listings), or changes
/// what the session keeps track of — the login (USER, PASS, ACCT, REIN, QUIT), the
/// security (AUTH, ADAT, PBSZ, PROT, CCC, MIC, CONF, ENC: RFC 2228 and 4217's states),
/// the transfer parameters (TYPE, MODE, STRU, REST, OPTS, HOST) or a rename (RNFR must be
/// followed by RNTO, RFC 959 §4.1.3). Sent behind the session's back, any of these would
/// leave it believing what is no longer true (PROT P after a raw `PROT C`, say).
/// Refused with [`ClientError::Unsupported`] before anything is sent.
pub fn raw_refusal(command: &Command) -> Option<&'static str> {
    use Command as C;
    match command {
        C::Port(_)
        | C::Pasv
        | C::Eprt(_)
        | C::Epsv(_)
        | C::Retr(_)
        | C::Stor(_)
        | C::Stou(_)
        | C::Appe(_)
        | C::List(_)
        | C::Nlst(_)
        | C::Mlsd(_)
        | C::Rest(_)
        | C::Abor => Some("needs a data connection: use a transfer or listing operation"),
        C::User(_) | C::Pass(_) | C::Acct(_) | C::Rein | C::Quit => {
            Some("changes the login, which the session manages")
        }
        C::Auth(_)
        | C::Adat(_)
        | C::Pbsz(_)
        | C::Prot(_)
        | C::Ccc
        | C::Mic(_)
        | C::Conf(_)
        | C::Enc(_) => Some("changes the security of the session, which it manages"),
        C::Type(_) | C::Mode(_) | C::Stru(_) | C::Opts { .. } | C::Host(_) | C::Rnfr(_) => {
            Some("changes the session's state: use the operation that does it")
        }
        _ => None,
    }
}

/// Why an operation or the session failed. Its `Display` is a sentence for a user; an
/// invalid reply's cause is its [`source`](std::error::Error::source); the server's reply,
/// where there is one, is [`reply`](Self::reply).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server answered with a negative reply.
    #[error("the server refused: {} {}", .0.code(), .0.text())]
    Refused(Reply),
    /// The server's bytes were not a valid reply.
    #[error("the server sent an invalid reply")]
    BadReply(#[source] ReplyError),
    /// A positive reply that cannot be understood (a 227 without an address, say).
    #[error("unexpected reply: {} {}", .0.code(), .0.text())]
    Unexpected(Reply),
    /// TLS is required but the server refused AUTH TLS and AUTH SSL; no credentials were
    /// sent.
    #[error(
        "the server does not offer TLS (AUTH TLS and AUTH SSL refused); no credentials were sent"
    )]
    TlsUnavailable,
    /// The control connection's TLS handshake failed; why is the
    /// [`source`](std::error::Error::source) (its [`kind`](TransportError::kind) says
    /// whether the server's certificate was the reason).
    #[error("TLS handshake failed")]
    Tls(#[source] TransportError),
    /// The data connection failed: connecting, accepting, its TLS handshake, or the
    /// stream once running; why is the [`source`](std::error::Error::source).
    #[error("data connection failed")]
    Data(#[source] TransportError),
    /// A TLS download ended without close_notify: the data may be truncated.
    #[error("the download ended without TLS close_notify after {bytes} bytes: it may be truncated")]
    Truncated {
        /// Bytes received.
        bytes: u64,
    },
    /// No reply, or no data progress, within the timeout.
    #[error("the server did not answer in time")]
    Timeout,
    /// The control connection closed.
    #[error("the connection closed")]
    Closed,
    /// The operation needs a feature the server does not have (e.g. MLSD), or one the
    /// session cannot run (the text says which).
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    /// The application aborted the transfer ([`ClientSession::abort`](super::ClientSession::abort)).
    #[error("the transfer was aborted")]
    Aborted,
    /// A listing (LIST, NLST, MLSD) brought more than
    /// [`ClientConfig::max_listing`](super::ClientConfig::max_listing) bytes, or its
    /// parsed entries would hold more than that in memory. A listing still arriving is
    /// aborted (ABOR, RFC 959 §4.1.3) and its data connection closed; the session goes on.
    #[error("the listing is larger than {limit} bytes: it was stopped")]
    ListingTooLarge {
        /// The bound, in bytes.
        limit: u64,
    },
}

impl ClientError {
    /// The server's reply that made this error, if a reply did (a refusal, a reply that
    /// could not be understood).
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            ClientError::Refused(r) | ClientError::Unexpected(r) => Some(r),
            _ => None,
        }
    }
}

/// What the adapter must do; execute in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Write these bytes to the control connection.
    Send(Vec<u8>),
    /// Start TLS (client side) on the control connection, verifying the configured server
    /// name; report [`IoEvent::ControlTlsEstablished`] or [`IoEvent::ControlTlsFailed`].
    StartControlTls,
    /// End TLS on the control connection (send close_notify, read the server's) and go on
    /// in clear text on the same TCP connection (after CCC, RFC 4217 §6).
    StopControlTls,
    /// Connect a data connection to `addr` (passive mode), with TLS if `tls` (same server
    /// name as the control connection, and resuming its TLS session); report
    /// [`IoEvent::DataConnected`] or [`IoEvent::DataFailed`].
    ConnectData {
        /// The data connection.
        id: DataId,
        /// Where to connect.
        addr: SocketAddr,
        /// TLS on it (PROT P).
        tls: bool,
    },
    /// Listen for an active data connection on the control connection's local address;
    /// report [`IoEvent::DataListening`]. Accept only from `accept_from` (other peers are
    /// closed, RFC 2577), then TLS (client side) if `tls`; report
    /// [`IoEvent::DataConnected`].
    ListenData {
        /// The data connection.
        id: DataId,
        /// The only address to accept a connection from: the server's.
        accept_from: std::net::IpAddr,
        /// TLS on it (PROT P).
        tls: bool,
    },
    /// The transfer command was accepted: move the data (the application's stream),
    /// report [`IoEvent::DataProgress`] as bytes move, and [`IoEvent::DataEnded`] at the
    /// end. The session times the stall: stop moving once
    /// [`ClientSession::is_moving`](super::ClientSession::is_moving) says so. After a download, close our end too (close_notify,
    /// FIN) before waiting for the final reply: servers such as vsftpd send it only then.
    /// After an upload, end with close_notify and FIN, and read (bounded) to the server's
    /// end, which may bring a TLS 1.3 ticket. `ending` bounds both.
    StartTransfer {
        /// The data connection.
        id: DataId,
        /// The client sends (STOR, APPE, STOU) rather than receives.
        upload: bool,
        /// The most bytes the download may bring (listings:
        /// [`ClientConfig::max_listing`](super::ClientConfig::max_listing)); `None` for no
        /// bound. The adapter stops reading *before* it would keep a byte past it, drops
        /// the data connection and reports [`IoEvent::DataOverLimit`].
        limit: Option<u64>,
        /// How long ending the data connection may take.
        ending: DataEnding,
    },
    /// Drop data connection `id` and anything about it.
    CloseData {
        /// The data connection.
        id: DataId,
    },
    /// Close the control connection.
    Close,
    /// Renew the control connection (see [`ClientSession::renewals`](super::ClientSession::renewals)):
    /// end the old one, open a fresh one to the same server with a fresh TLS session
    /// store, and report [`IoEvent::ControlReconnected`] (or
    /// [`IoEvent::ControlClosed`]). The session then replays greeting, TLS, login,
    /// PBSZ/PROT and the working directory on it.
    Reconnect,
}

/// How long the adapter may take to end a data connection, as the session decided
/// ([`ClientConfig::data_close_timeout`](super::ClientConfig::data_close_timeout),
/// [`ClientConfig::upload_end_wait`](super::ClientConfig::upload_end_wait),
/// [`ClientConfig::upload_half_close_wait`](super::ClientConfig::upload_half_close_wait)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataEnding {
    /// Closing our end: close_notify (TLS) and FIN, after a download or an upload.
    pub close: Duration,
    /// After an upload's close: reading on to the server's end of the connection.
    pub upload_drain: Duration,
    /// After an upload's close_notify to a server on ALPN `ftp`: how long the FIN waits
    /// for the server's end (part of `upload_drain`; see
    /// [`ClientConfig::upload_half_close_wait`](super::ClientConfig::upload_half_close_wait)).
    pub half_close: Duration,
}

/// What happened, reported by the adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoEvent {
    /// The control TLS handshake completed, with what it settled.
    ControlTlsEstablished(TlsInfo),
    /// The control TLS handshake failed.
    ControlTlsFailed(TransportError),
    /// An active-mode listener is up.
    DataListening {
        /// The data connection.
        id: DataId,
        /// Its local address, sent in PORT/EPRT.
        local: SocketAddr,
    },
    /// The data connection is up (TLS done, if asked).
    DataConnected {
        /// The data connection.
        id: DataId,
    },
    /// The data connection failed.
    DataFailed {
        /// The data connection.
        id: DataId,
        /// Why.
        reason: TransportError,
    },
    /// The data stream ended.
    DataEnded {
        /// The data connection.
        id: DataId,
        /// Bytes moved.
        bytes: u64,
        /// How it ended. Only [`DataEnd::Complete`] with `close_notify` is a proper end:
        /// a download with the server's close_notify (under TLS; a bare FIN may mean the
        /// data was cut short, [`ClientError::Truncated`]), an upload with our
        /// close_notify and FIN sent (the final reply then confirms it); on plain
        /// connections, at the FIN. Any other end is not proper: a download may
        /// be cut short, an upload's end did not go out.
        end: DataEnd,
    },
    /// Bytes moved on a running transfer: now and then while it runs (at least once per
    /// [`ClientConfig::data_timeout`](super::ClientConfig::data_timeout) while bytes
    /// move). Resets the session's stall timer; a transfer without it for the data
    /// timeout fails.
    DataProgress {
        /// The data connection.
        id: DataId,
        /// Bytes moved so far.
        bytes: u64,
    },
    /// A download reached the `limit` of its [`Action::StartTransfer`]: the adapter
    /// stopped reading and dropped the data connection.
    DataOverLimit {
        /// The data connection.
        id: DataId,
        /// Bytes kept (at most the limit).
        bytes: u64,
    },
    /// The control connection closed.
    ControlClosed,
    /// What the adapter's TLS session store says, reported before an operation: `true`
    /// if the control connection runs TLS 1.3, the server hands out tickets, and none is
    /// left for the next data connection to resume (a server that requires resumption
    /// would refuse it). An operation that needs a protected data connection then waits
    /// for a renewal of the control connection ([`Action::Reconnect`]).
    Resumption {
        /// No ticket is left.
        exhausted: bool,
    },
    /// The fresh control connection [`Action::Reconnect`] asked for is up (TCP only; the
    /// session starts over from the greeting, or from TLS in implicit mode).
    ControlReconnected {
        /// The server's address on it.
        peer: SocketAddr,
    },
}

/// What the client tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// `ExplicitIfAvailable`: the server refused TLS. Nothing more is sent until the
    /// application calls [`ClientSession::accept_plaintext`](super::ClientSession::accept_plaintext)
    /// (or drops the session).
    PlaintextOnly,
    /// Logged in and set up; operations run from now on.
    Ready {
        /// What FEAT listed (empty if the server has no FEAT).
        features: Features,
        /// Whether the control connection is protected.
        secure: bool,
    },
    /// An operation finished.
    Done {
        /// The operation.
        op: OpId,
        /// Its result.
        result: Result<Output, ClientError>,
    },
    /// The session is over; pending operations failed with the same error.
    Closed {
        /// Why, if not by QUIT.
        error: Option<ClientError>,
    },
}
