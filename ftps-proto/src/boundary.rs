//! The vocabulary of the boundary between the protocol cores and their adapters, one for
//! the client and the server: what a TLS handshake did ([`TlsInfo`]), the ALPN id of FTP,
//! the control input an adapter holds ([`MAX_CONTROL_INPUT`]), a data connection's id
//! ([`DataId`]) and how its stream ended ([`DataEnd`], with [`StorageError`] for the file
//! side), and the cores' timer table.

use crate::transport::TransportError;
use std::marker::PhantomData;
use std::time::Instant;

/// TLS protocol versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// What a completed TLS handshake did, as the adapter saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsInfo {
    /// The negotiated version.
    pub version: TlsVersion,
    /// True if the handshake resumed a session of *this* control connection (the adapter
    /// keeps a session cache per control connection, so a resumption can only be of it).
    pub resumed: bool,
    /// The ALPN protocol agreed, if any.
    pub alpn: Option<Vec<u8>>,
    /// The server name the client sent (SNI), if any.
    pub sni: Option<String>,
    /// The certificate chain the peer presented (DER, its own certificate first); empty
    /// when it presented none (a server's clients usually do not; the server's
    /// `rustls::ServerConfig` decides whether to ask for and verify one).
    pub peer_certificates: Vec<Vec<u8>>,
}

impl TlsInfo {
    /// A handshake of `version`, resumed or not, with no ALPN and no SNI.
    pub fn new(version: TlsVersion, resumed: bool) -> Self {
        Self {
            version,
            resumed,
            alpn: None,
            sni: None,
            peer_certificates: Vec::new(),
        }
    }
}

with_fields!(TlsInfo {
    with_version: version: TlsVersion,
    with_resumed: resumed: bool,
    with_alpn: alpn: Option<Vec<u8>>,
    with_sni: sni: Option<String>,
    with_peer_certificates: peer_certificates: Vec<Vec<u8>>,
});

/// The ALPN protocol id of FTP (RFC 7301; "ftp" is registered for FTP). The server
/// advertises and requires it; a client offering ALPN without it must fail the handshake
/// (ALPACA).
pub const ALPN_FTP: &[u8] = b"ftp";

/// Bytes of control input an adapter holds before its core takes them, at most: the
/// server driver's bound, and the default of the client's
/// ([`ClientConfig::max_control_input`](crate::client::ClientConfig::max_control_input)).
pub const MAX_CONTROL_INPUT: usize = 64 << 10;

/// Names one data connection (a listener, an active target, and the transfer on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataId(pub(crate) u64);

/// How a data stream ended, as an adapter reports it to its core (either side).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataEnd {
    /// The stream ended: the peer closed what it sent to us, or our end of what we sent
    /// went out; `close_notify` says whether a TLS stream ended with close_notify (always
    /// true for plain streams).
    Complete {
        /// TLS ended properly (true for plain connections).
        close_notify: bool,
    },
    /// The connection failed (reset, TLS error, timeout in the adapter).
    Failed(TransportError),
    /// Reading or writing the file failed (the server's; the client's streams are the
    /// application's, whose failures are the client adapter's IO errors).
    Storage(StorageError),
}

/// A storage failure: of a storage operation, or of the file a transfer reads or writes.
/// The server session maps each to its reply code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageError {
    /// No such file or directory (550).
    NotFound,
    /// Not allowed, including paths that escape the root by a link (550).
    PermissionDenied,
    /// The name exists already (550).
    AlreadyExists,
    /// A directory was needed (550).
    NotADirectory,
    /// A file was needed (550).
    IsADirectory,
    /// A directory to remove is not empty (550).
    DirectoryNotEmpty,
    /// The name is not allowed (553).
    InvalidName,
    /// No space left (452).
    InsufficientStorage,
    /// Over quota (552).
    QuotaExceeded,
    /// Busy, try later (450).
    Busy,
    /// A restart offset (REST) past the end of the file, or into a file that does not
    /// exist (554, RFC 3659 §5.3).
    InvalidOffset,
    /// A listing longer than the session lists at once
    /// ([`ServerConfig::max_listing_entries`](crate::server::ServerConfig::max_listing_entries)):
    /// the entries up to the bound were sent, and the transfer ends with 451 rather than
    /// a 226 that would pass a cut listing off as whole (a mirroring client would take
    /// the files beyond the cut for deleted).
    ListingTooLong {
        /// The bound.
        max: usize,
    },
    /// Anything else (451), with a text for the log.
    Other(String),
}

/// A core's set of timers: a small enum, each member with its own deadline in a
/// [`TimerTable`].
pub(crate) trait Timers: Copy + 'static {
    /// Every timer, each once.
    const ALL: &'static [Self];
    /// The timer's place in [`ALL`](Self::ALL) (below `N` of its table).
    fn index(self) -> usize;
}

/// A deadline per timer of `T` (which has `N` members). `now` is always passed in; a core
/// asks for the expired timers when its adapter's wait times out.
#[derive(Debug, Clone)]
pub(crate) struct TimerTable<T, const N: usize> {
    deadlines: [Option<Instant>; N],
    timers: PhantomData<T>,
}

impl<T, const N: usize> Default for TimerTable<T, N> {
    fn default() -> Self {
        TimerTable {
            deadlines: [None; N],
            timers: PhantomData,
        }
    }
}

impl<T: Timers, const N: usize> TimerTable<T, N> {
    /// Sets `timer` to fire at `at`.
    pub(crate) fn set(&mut self, timer: T, at: Instant) {
        self.deadlines[timer.index()] = Some(at);
    }

    /// Brings `timer`, if set, forward to `at` if that is sooner.
    pub(crate) fn shorten(&mut self, timer: T, at: Instant) {
        if let Some(d) = self.deadlines[timer.index()].as_mut() {
            *d = (*d).min(at);
        }
    }

    /// Stops `timer`.
    pub(crate) fn stop(&mut self, timer: T) {
        self.deadlines[timer.index()] = None;
    }

    /// Stops every timer.
    pub(crate) fn clear(&mut self) {
        self.deadlines = [None; N];
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Removes and returns the timers expired at `now`, earliest first.
    pub(crate) fn expired(&mut self, now: Instant) -> Vec<T> {
        let mut due: Vec<(Instant, T)> = T::ALL
            .iter()
            .filter_map(|&t| {
                self.deadlines[t.index()]
                    .filter(|&d| d <= now)
                    .map(|d| (d, t))
            })
            .collect();
        due.sort_by_key(|(d, _)| *d);
        for (_, t) in &due {
            self.stop(*t);
        }
        due.into_iter().map(|(_, t)| t).collect()
    }
}
