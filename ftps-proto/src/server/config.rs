//! Server configuration: TLS policies (as IIS FTP names them), limits and timeouts.

use super::StorageCapabilities;
use std::net::IpAddr;
use std::time::Duration;

/// How a listener starts its sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsMode {
    /// Plain connection; the client may upgrade with `AUTH TLS` (RFC 4217 §4).
    Explicit,
    /// TLS from the first byte (the deprecated port-990 form).
    Implicit,
}

/// What the control channel must be protected for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ControlTlsPolicy {
    /// Plain text is allowed throughout.
    Allow,
    /// USER and PASS only after TLS (anonymous logins excepted); 534 otherwise.
    RequireForCredentials,
    /// Nothing but AUTH, FEAT, HOST and QUIT before TLS; 534 otherwise.
    Require,
}

/// What data connections must be protected for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DataTlsPolicy {
    /// PROT C and PROT P both allowed.
    Allow,
    /// Transfers only under PROT P; under PROT C they get 521 and no data.
    Require,
    /// Transfers only under PROT C; PROT P is refused with 534.
    Deny,
}

/// Timeouts; each is one entry of the session's timer table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// From connection to a successful login. Default 60 s.
    pub login: Duration,
    /// With no command and no transfer, after login. Default 300 s.
    pub idle: Duration,
    /// From a TLS start to its end, control or data. Default 15 s.
    pub tls_handshake: Duration,
    /// From the 150 reply until the data connection is up. Default 30 s.
    pub data_connect: Duration,
    /// With no byte moved on a running transfer, whatever its rate. Default 60 s.
    pub data_stall: Duration,
    /// For the client to take a reply written to the control connection (a client that
    /// never reads would otherwise hold its session, and its slot, forever); then the
    /// session is closed. Default 30 s.
    pub reply_write: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            login: Duration::from_secs(60),
            idle: Duration::from_secs(300),
            tls_handshake: Duration::from_secs(15),
            data_connect: Duration::from_secs(30),
            data_stall: Duration::from_secs(60),
            reply_write: Duration::from_secs(30),
        }
    }
}

/// Everything a [`ServerSession`](super::ServerSession) decides by. The defaults are the
/// secure ones: TLS required on control and data, session reuse checked on data
/// connections, active mode off, no anonymous login, no CCC.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The text of the 220 greeting.
    pub greeting: String,
    /// Whether the adapter can do TLS at all (a certificate is configured).
    pub tls_available: bool,
    /// The control-channel policy.
    pub control_tls: ControlTlsPolicy,
    /// The data-channel policy.
    pub data_tls: DataTlsPolicy,
    /// Require every data connection's TLS session to resume this control session
    /// (vsftpd's `require_ssl_reuse`); otherwise 522.
    pub require_session_reuse: bool,
    /// Allow CCC after login (RFC 4217 §6); otherwise 534.
    pub allow_ccc: bool,
    /// Allow `anonymous` and `ftp` logins with any password. Anonymous sessions are
    /// read-only: STOR, STOU, APPE, DELE, RMD, MKD, RNFR, RNTO, MFMT and SITE get 550
    /// (unless [`anonymous_upload`](Self::anonymous_upload)).
    pub anonymous: bool,
    /// Let anonymous sessions upload new files: STOR to a name that does not exist (the
    /// storage creates it without ever replacing a file:
    /// [`StorageRequest::OpenWrite`](super::StorageRequest::OpenWrite)'s `create_new`)
    /// and STOU. Everything else that changes files stays refused (550): overwriting,
    /// REST + STOR, APPE, DELE, RMD, MKD, RNFR/RNTO, MFMT, SITE.
    pub anonymous_upload: bool,
    /// Allow PORT and EPRT (active mode).
    pub active_mode: bool,
    /// Refuse a data connection whose peer address differs from the control peer's
    /// (passive: the listener accepts only it; active: PORT/EPRT may name only it).
    pub check_data_peer: bool,
    /// The address a 227 reply announces instead of the control connection's local one
    /// (for NAT). A 229 reply carries no address.
    pub advertised_address: Option<IpAddr>,
    /// Failed logins before the session is closed with 421.
    pub max_login_failures: u32,
    /// How long a failed login waits before its 530.
    pub failed_login_delay: Duration,
    /// The control line limit in bytes.
    pub max_line: usize,
    /// The most directory entries one listing reply holds.
    pub max_listing_entries: usize,
    /// Whether SITE commands are passed to the application; otherwise 502.
    pub site_commands: bool,
    /// The timer table.
    pub timeouts: Timeouts,
    /// What the storage can do; commands it cannot are refused and FEAT does not offer
    /// them. Server builders set it from the storage they are given.
    pub storage: StorageCapabilities,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            greeting: "ftps ready.".to_owned(),
            tls_available: true,
            control_tls: ControlTlsPolicy::Require,
            data_tls: DataTlsPolicy::Require,
            require_session_reuse: true,
            allow_ccc: false,
            anonymous: false,
            anonymous_upload: false,
            active_mode: false,
            check_data_peer: true,
            advertised_address: None,
            max_login_failures: 3,
            failed_login_delay: Duration::from_secs(1),
            max_line: crate::framing::DEFAULT_MAX_LINE,
            max_listing_entries: 100_000,
            site_commands: false,
            timeouts: Timeouts::default(),
            storage: StorageCapabilities::all(),
        }
    }
}

with_fields!(Timeouts {
    with_login: login: Duration,
    with_idle: idle: Duration,
    with_tls_handshake: tls_handshake: Duration,
    with_data_connect: data_connect: Duration,
    with_data_stall: data_stall: Duration,
    with_reply_write: reply_write: Duration,
});

with_fields!(ServerConfig {
    with_greeting: greeting: String,
    with_tls_available: tls_available: bool,
    with_control_tls: control_tls: ControlTlsPolicy,
    with_data_tls: data_tls: DataTlsPolicy,
    with_require_session_reuse: require_session_reuse: bool,
    with_allow_ccc: allow_ccc: bool,
    with_anonymous: anonymous: bool,
    with_anonymous_upload: anonymous_upload: bool,
    with_active_mode: active_mode: bool,
    with_check_data_peer: check_data_peer: bool,
    with_advertised_address: advertised_address: Option<IpAddr>,
    with_max_login_failures: max_login_failures: u32,
    with_failed_login_delay: failed_login_delay: Duration,
    with_max_line: max_line: usize,
    with_max_listing_entries: max_listing_entries: usize,
    with_site_commands: site_commands: bool,
    with_timeouts: timeouts: Timeouts,
    with_storage: storage: StorageCapabilities,
});
