//! The vocabulary between a [`ServerSession`](super::ServerSession) and its adapter and
//! application: actions out, IO events in, requests out and their answers in. What the
//! client shares (data ids, data ends, storage errors) is in [`crate::boundary`].

use crate::boundary::{DataEnd, DataId, StorageError, TlsInfo};
use crate::hash::HashAlgorithm;
use crate::listing::EntryKind;
use crate::path::VirtualPath;
use crate::reply::Reply;
use crate::server::config::{ControlTlsPolicy, DataTlsPolicy};
use crate::server::permissions::Grants;
use crate::text::Password;
use crate::time::Timestamp;
use crate::transport::TransportError;
use std::net::{IpAddr, SocketAddr};

/// Names one request to the application; answer it exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestToken(pub(crate) u64);

/// What the adapter must do. Execute actions in the order they come.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Write these bytes (encoded replies) to the control connection.
    Send(Vec<u8>),
    /// Start TLS (server side) on the control connection, after writing everything sent
    /// before; then report [`IoEvent::ControlTlsEstablished`] or
    /// [`IoEvent::ControlTlsFailed`]. Plaintext read until then must not be passed in.
    StartControlTls,
    /// End TLS on the control connection (close_notify) and go on in plain text (CCC,
    /// REIN), after writing everything sent before.
    StopControlTls,
    /// Listen for a passive data connection for `id`, on the control connection's local
    /// address family (`ipv6` says which), in the configured port range; accept only from
    /// `accept_from` when given. Report [`IoEvent::DataListening`].
    Listen {
        /// The data connection.
        id: DataId,
        /// IPv6 rather than IPv4.
        ipv6: bool,
        /// The only peer address to accept; connections from others are closed.
        accept_from: Option<IpAddr>,
    },
    /// Establish data connection `id` for the transfer whose file (or listing)
    /// [`StorageRequest::OpenRead`] / [`StorageRequest::OpenWrite`] /
    /// [`StorageRequest::OpenListing`] just opened: take the connection accepted on its
    /// listener, or connect to `connect_to` (active mode), then do a TLS handshake if
    /// `tls`. Report [`IoEvent::DataConnected`] or [`IoEvent::DataFailed`]. This action
    /// carries everything the transfer needs; no byte moves before [`Action::Transfer`].
    OpenData {
        /// The data connection.
        id: DataId,
        /// Active mode: the address to connect to.
        connect_to: Option<SocketAddr>,
        /// Whether to run TLS on it (PROT P).
        tls: bool,
        /// The client sends (STOR, APPE, STOU): the adapter receives into the opened
        /// upload, and the transfer ends with [`Action::FinishUpload`]. Otherwise the
        /// adapter sends the opened file or listing, and the transfer ends with
        /// [`IoEvent::DataEnded`].
        upload: bool,
        /// TYPE A line-ending conversion applies (see [`crate::ascii`]).
        ascii: bool,
    },
    /// The data connection `id` is accepted: move the bytes [`Action::OpenData`] described.
    /// Until this comes, the adapter moves nothing (the session may still refuse the
    /// connection: TLS session not resumed, a foreign peer; an append or a resumed upload
    /// writes in place, so bytes taken before the verdict would stay in the file). When
    /// the stream ends, report [`IoEvent::DataEnded`]; [`IoEvent::DataProgress`] now and
    /// then while it runs. A download (or listing) is over then: the adapter closes its
    /// connection (with close_notify under TLS) before reporting the end.
    Transfer {
        /// The data connection.
        id: DataId,
    },
    /// Finish an upload after its [`IoEvent::DataEnded`]: close the data connection (with
    /// close_notify under TLS), then publish the file (`commit`) or remove what was
    /// written. Report [`IoEvent::UploadFinished`].
    FinishUpload {
        /// The data connection.
        id: DataId,
        /// Keep the upload.
        commit: bool,
    },
    /// Drop everything about `id` at once: listener, connection, open file (an upload is
    /// removed). No event follows; late events for `id` are ignored.
    AbortData {
        /// The data connection.
        id: DataId,
    },
    /// Close the control connection after writing everything sent before. The session is
    /// over.
    Close,
}

/// What happened, reported by the adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoEvent {
    /// The control TLS handshake completed.
    ControlTlsEstablished(TlsInfo),
    /// The control TLS handshake failed; the session closes.
    ControlTlsFailed(TransportError),
    /// A passive listener is up at this local address.
    DataListening {
        /// The data connection.
        id: DataId,
        /// The local address (its port goes into the 227/229 reply).
        local: SocketAddr,
    },
    /// No listener could be opened (no free port).
    DataListenFailed {
        /// The data connection.
        id: DataId,
    },
    /// The data connection is up (and its TLS handshake done, if asked).
    DataConnected {
        /// The data connection.
        id: DataId,
        /// The peer's address.
        peer: SocketAddr,
        /// The handshake, if TLS was asked for.
        tls: Option<TlsInfo>,
    },
    /// The data connection could not be made, or its TLS handshake failed.
    DataFailed {
        /// The data connection.
        id: DataId,
        /// Why, for the log.
        reason: TransportError,
    },
    /// Bytes moved; resets the stall timer.
    DataProgress {
        /// The data connection.
        id: DataId,
        /// Bytes moved so far.
        bytes: u64,
    },
    /// The data stream ended.
    DataEnded {
        /// The data connection.
        id: DataId,
        /// Bytes moved in all.
        bytes: u64,
        /// How it ended.
        end: DataEnd,
    },
    /// [`Action::FinishUpload`] is done.
    UploadFinished {
        /// The data connection.
        id: DataId,
        /// Whether closing and publishing worked.
        result: Result<(), StorageError>,
    },
    /// The client closed the control connection.
    ControlClosed,
}

/// Facts about one file or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The name (the last component).
    pub name: String,
    /// File, directory, symlink or other.
    pub kind: EntryKind,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, UTC.
    pub modified: Option<Timestamp>,
    /// Unix permission bits, if known.
    pub mode: Option<u32>,
    /// Whether the user may write it (drives MLSx `perm`).
    pub writable: bool,
    /// An identifier unique on the server (MLSx `unique`).
    pub unique: Option<String>,
}

/// A storage operation the application performs and answers with
/// [`ServerSession::answer_storage`](super::ServerSession::answer_storage).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageRequest {
    /// Facts about a path; answer [`StorageReply::Metadata`].
    Stat(VirtualPath),
    /// The entries of a directory (or the one entry of a file), for STAT over the control
    /// connection; answer [`StorageReply::Entries`].
    List(VirtualPath),
    /// Make a directory; answer [`StorageReply::Done`].
    MakeDir(VirtualPath),
    /// Remove an empty directory; answer [`StorageReply::Done`].
    RemoveDir(VirtualPath),
    /// Remove a file; answer [`StorageReply::Done`].
    RemoveFile(VirtualPath),
    /// Rename; answer [`StorageReply::Done`].
    Rename {
        /// The existing path.
        from: VirtualPath,
        /// The new path.
        to: VirtualPath,
    },
    /// Set a file's modification time; answer [`StorageReply::Done`].
    SetModified {
        /// The file.
        path: VirtualPath,
        /// The time.
        modified: Timestamp,
    },
    /// Open the listing of a directory (or of one file) for data connection `id`: the
    /// adapter streams the entries through `format` as the connection takes them, in
    /// bounded memory; answer [`StorageReply::Opened`] (size 0) once the path is known
    /// to exist.
    OpenListing {
        /// The transfer.
        id: DataId,
        /// The directory or file.
        path: VirtualPath,
        /// How each entry becomes a line.
        format: super::ListingFormat,
    },
    /// Open a file for a download on data connection `id`; answer
    /// [`StorageReply::Opened`] with its size.
    OpenRead {
        /// The transfer.
        id: DataId,
        /// The file.
        path: VirtualPath,
        /// Where to start (REST).
        offset: u64,
    },
    /// Open a file for an upload on `id` (write to a temporary name if the adapter
    /// publishes on commit); answer [`StorageReply::Opened`] with the final path.
    OpenWrite {
        /// The transfer.
        id: DataId,
        /// The file, or the directory for `unique`.
        path: VirtualPath,
        /// Where to start writing (REST); 0 truncates.
        offset: u64,
        /// APPE: append to the end.
        append: bool,
        /// STOU: pick a new unique name in `path`.
        unique: bool,
        /// The file must not exist: create it, and never replace a file, not even one
        /// that appeared while the upload ran (for users who may only add files:
        /// [`ServerConfig::anonymous_upload`](super::ServerConfig::anonymous_upload)).
        /// Never set with `unique` or an offset.
        create_new: bool,
    },
    /// A file's hash (HASH, draft-bryan-ftpext-hash-02 §3): the bytes `start..=end` of
    /// the file (to its end when `end` is `None`), read from the storage and hashed with
    /// `algorithm`; answer [`StorageReply::Hash`]. A range that does not lie within the
    /// file is [`StorageError::InvalidOffset`] (556); a directory
    /// [`StorageError::IsADirectory`].
    Hash {
        /// The file.
        path: VirtualPath,
        /// The algorithm.
        algorithm: HashAlgorithm,
        /// The first byte (0 without RANG).
        start: u64,
        /// The last byte (RANG's end), or `None` for the end of the file.
        end: Option<u64>,
    },
}

/// A successful answer to a [`StorageRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageReply {
    /// Done.
    Done,
    /// Facts about the path.
    Metadata(Metadata),
    /// Directory entries, and the current time (for the `ls -l` date form).
    Entries {
        /// The entries.
        entries: Vec<Metadata>,
        /// The current UTC time.
        now: Timestamp,
    },
    /// A file opened for a transfer.
    Opened {
        /// The path actually used (STOU's unique name).
        path: VirtualPath,
        /// The file's size when opened.
        size: u64,
    },
    /// The hash [`StorageRequest::Hash`] asked for.
    Hash {
        /// The digest, lower-case hex.
        hex: String,
        /// How many bytes were hashed (from the request's `start`).
        bytes: u64,
    },
}

/// A login to check, answered with
/// [`ServerSession::answer_login`](super::ServerSession::answer_login).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRequest {
    /// Answer with this.
    pub token: RequestToken,
    /// The user name.
    pub user: String,
    /// The password.
    pub password: Password,
    /// The HOST the client asked for (RFC 7151), if any.
    pub host: Option<String>,
    /// Whether the control channel is protected.
    pub secure: bool,
    /// The client's address.
    pub peer: SocketAddr,
    /// What the control connection's TLS handshake did (its SNI, the client's
    /// certificate chain), if the control connection is or was protected.
    pub tls: Option<TlsInfo>,
}

/// The answer to a [`LoginRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginAnswer {
    /// Accepted, with optional per-user policy overrides.
    Accepted {
        /// Replaces the configured control policy for this user.
        control_tls: Option<ControlTlsPolicy>,
        /// Replaces the configured data policy for this user.
        data_tls: Option<DataTlsPolicy>,
        /// What the user may do where (`None`: everything). Anonymous users get no more
        /// than reading (and adding files with
        /// [`ServerConfig::anonymous_upload`](super::ServerConfig::anonymous_upload)),
        /// whatever this says.
        grants: Option<Grants>,
    },
    /// Wrong user or password: a failed login (held back by the delay, counted towards
    /// closing the session and the address's lockout).
    Rejected,
    /// The login could not be checked (the service that checks it is down or did not
    /// answer in time): 421 and the session closes (RFC 959 §4.2: "Service not
    /// available, closing control connection"). Not a failed login: no delay, not
    /// counted.
    Unavailable,
}

impl LoginAnswer {
    /// Accepted with the configured policies, allowed everything.
    pub fn accepted() -> Self {
        Self::Accepted {
            control_tls: None,
            data_tls: None,
            grants: None,
        }
    }
}

/// What the session tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Check a login; answer with [`ServerSession::answer_login`](super::ServerSession::answer_login).
    Login(LoginRequest),
    /// Perform a storage operation; answer with
    /// [`ServerSession::answer_storage`](super::ServerSession::answer_storage).
    Storage {
        /// Answer with this.
        token: RequestToken,
        /// The operation, on the logged-in user's storage.
        request: StorageRequest,
    },
    /// A SITE command; answer with [`ServerSession::answer_site`](super::ServerSession::answer_site).
    Site {
        /// Answer with this.
        token: RequestToken,
        /// The argument of SITE.
        command: String,
    },
    /// A user logged in.
    LoggedIn {
        /// The user name (`anonymous` for every spelling of the anonymous user).
        user: String,
        /// An anonymous login: as cheap to get as a connection, so the adapter should let
        /// such a session give way like one that has not logged in.
        anonymous: bool,
    },
    /// The connection's first command bytes were a PROXY protocol header (v1 or v2):
    /// only a balancer the server trusts may send one, and the adapter reads that before
    /// the session starts; here it came from the client (or from a balancer not trusted,
    /// or to a server that expects none) and would name any address it likes. The
    /// session closed without a reply: a protocol error, not a command.
    ProxyHeader,
    /// A logged-in session was reinitialized (REIN): it is not logged in any more.
    LoggedOut,
    /// Plaintext that followed `AUTH` in the same read was dropped unexecuted.
    PlaintextDiscarded {
        /// How many bytes.
        bytes: usize,
    },
    /// A transfer ended.
    TransferDone {
        /// A download, an upload or a listing.
        kind: TransferKind,
        /// The file, or the listed directory.
        path: VirtualPath,
        /// Bytes moved.
        bytes: u64,
        /// Whether it succeeded.
        ok: bool,
    },
    /// The session is over.
    Closed,
}

/// What a transfer moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransferKind {
    /// A file to the client (RETR).
    Download,
    /// A file from the client (STOR, APPE, STOU).
    Upload,
    /// A listing to the client (LIST, NLST, MLSD).
    Listing,
}

impl TransferKind {
    /// `download`, `upload` or `listing` (for logs and metrics).
    pub fn name(self) -> &'static str {
        match self {
            TransferKind::Download => "download",
            TransferKind::Upload => "upload",
            TransferKind::Listing => "listing",
        }
    }
}

/// A site reply answering [`Event::Site`].
pub type SiteAnswer = Reply;
