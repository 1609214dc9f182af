//! How a client connects: [`ClientOptions`] and [`FtpUrl`], shared by every runtime's
//! client, with what they derive (the session configuration, the per-session rustls
//! configuration, the TLS server name).

use ftps_proto::client::{ClientConfig, ClientError, ConnectionMode};
use ftps_proto::server::ALPN_FTP;
use ftps_proto::tls::{
    ClientIdentity, Fingerprint, IdentityError, ServerTrust, SessionStore, TlsConfigError,
    client_config, with_session_store,
};
use ftps_proto::{ParseError, Password, Username};
use rustls::pki_types::ServerName;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// How to connect: what only the connection needs (where, the TLS trust, the connect
/// timeout), and the session's own settings, [`session`](Self::session), a
/// [`ClientConfig`] (mode, credentials, protection, passive/EPSV, timeouts, bounds).
///
/// Build with [`new`](Self::new) (or [`from_url`](Self::from_url)), then `with_` methods or
/// field assignment; the type is `#[non_exhaustive]`, so fields may be added without
/// breaking callers. Its `Debug` never shows the password.
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Host name or IP address; also the TLS server name.
    pub host: String,
    /// Port (21 explicit, 990 implicit by convention).
    pub port: u16,
    /// TLS settings; `None` uses the platform's root certificates.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Trust the server's certificate only if its SHA-256 fingerprint is one of these
    /// (checked out of band, as WinSCP's `-certificate`); no chain is consulted, and `tls`
    /// then gives everything but the certificate check. Empty (the default): `tls` decides.
    pub pins: Vec<Fingerprint>,
    /// A client certificate to present when the server asks for one.
    pub identity: Option<ClientIdentity>,
    /// Connect timeout (TCP; the control TLS handshake is bounded by
    /// [`ClientConfig::reply_timeout`]). Default 20 s.
    pub connect_timeout: Duration,
    /// The local address every connection of the session starts from — the control
    /// connection, each passive data connection, and the listener of an active one (as
    /// curl's `--interface` with an address, lftp's `net:socket-bind-ipv4`, Python
    /// ftplib's `source_address`); the port is the system's choice. Only the server's
    /// addresses of its family are tried. `None` (the default): the system chooses, by
    /// its routes.
    pub source_address: Option<IpAddr>,
    /// The session's settings: TLS mode, user and password, PROT level, passive/EPSV,
    /// the virtual host, the reply and data timeouts, the input bounds.
    pub session: ClientConfig,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The session's `Password` prints itself redacted.
        f.debug_struct("ClientOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("pins", &self.pins.len())
            .field("connect_timeout", &self.connect_timeout)
            .field("source_address", &self.source_address)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl ClientOptions {
    /// Explicit TLS required, PROT P, passive, the platform's trust
    /// (`files::platform_trust`): [`ClientConfig::new`]'s defaults with these credentials.
    /// Fails if the user name or password holds CR, LF or NUL.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<Self, ParseError> {
        let session = ClientConfig::new(Username::new(user)?, Password::new(password)?);
        Ok(Self::for_session(host, port, session))
    }

    /// Options for a session configured already (its credentials validated), platform
    /// roots, a 20 s connect timeout.
    pub fn for_session(host: impl Into<String>, port: u16, session: ClientConfig) -> Self {
        Self {
            host: host.into(),
            port,
            tls: None,
            pins: Vec::new(),
            identity: None,
            connect_timeout: Duration::from_secs(20),
            source_address: None,
            session,
        }
    }

    /// Sets [`tls`](Self::tls).
    #[must_use]
    pub fn with_tls(mut self, tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        self.tls = tls;
        self
    }

    /// Sets [`pins`](Self::pins).
    #[must_use]
    pub fn with_pins(mut self, pins: Vec<Fingerprint>) -> Self {
        self.pins = pins;
        self
    }

    /// Sets [`identity`](Self::identity).
    #[must_use]
    pub fn with_identity(mut self, identity: Option<ClientIdentity>) -> Self {
        self.identity = identity;
        self
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    #[must_use]
    pub fn with_connect_timeout(mut self, connect_timeout: Duration) -> Self {
        self.connect_timeout = connect_timeout;
        self
    }

    /// Sets [`source_address`](Self::source_address).
    #[must_use]
    pub fn with_source_address(mut self, source_address: Option<IpAddr>) -> Self {
        self.source_address = source_address;
        self
    }

    /// Sets [`session`](Self::session).
    #[must_use]
    pub fn with_session(mut self, session: ClientConfig) -> Self {
        self.session = session;
        self
    }

    /// Changes [`session`](Self::session) in place, so that its `with_` methods chain
    /// on: `options.map_session(|s| s.with_mode(ConnectionMode::Implicit))`.
    #[must_use]
    pub fn map_session(mut self, f: impl FnOnce(ClientConfig) -> ClientConfig) -> Self {
        self.session = f(self.session);
        self
    }
}

/// Why a client call failed; `P` is the runtime's offer to go on without TLS.
///
/// `Display` says what failed in a sentence; the cause, where there is one, is the
/// [`source`](std::error::Error::source) (a TLS configuration's, a client identity's, an
/// invalid reply's); [`reply`](Self::reply) is the server's reply where one made the error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error<P> {
    /// The protocol failed: a refusal (with the server's reply), a bad reply, a timeout...
    #[error(transparent)]
    Protocol(#[from] ClientError),
    /// A socket or file error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The TLS configuration could not be built.
    #[error("TLS configuration")]
    TlsConfig(#[source] TlsConfigError),
    /// The client certificate or its key could not be used.
    #[error("client certificate")]
    Identity(#[from] IdentityError),
    /// Explicit-if-available: the server has no TLS. The offer's `accept` logs in in
    /// clear text anyway.
    #[error("the server does not offer TLS; accepting would send the password in clear text")]
    PlaintextOnly(P),
    /// A pathname or argument was not valid (it held CR, LF or NUL, say).
    #[error(transparent)]
    Invalid(#[from] ParseError),
}

impl<P> Error<P> {
    /// The same error with the plain-text offer turned into another runtime's (a blocking
    /// wrapper's, say).
    pub fn map_offer<Q>(self, f: impl FnOnce(P) -> Q) -> Error<Q> {
        match self {
            Error::Protocol(e) => Error::Protocol(e),
            Error::Io(e) => Error::Io(e),
            Error::TlsConfig(e) => Error::TlsConfig(e),
            Error::Identity(e) => Error::Identity(e),
            Error::PlaintextOnly(p) => Error::PlaintextOnly(f(p)),
            Error::Invalid(e) => Error::Invalid(e),
        }
    }

    /// The server's reply that made this error, if a reply did.
    pub fn reply(&self) -> Option<&ftps_proto::Reply> {
        match self {
            Error::Protocol(e) => e.reply(),
            _ => None,
        }
    }
}

impl<P> From<TlsConfigError> for Error<P> {
    fn from(e: TlsConfigError) -> Self {
        Error::TlsConfig(e)
    }
}

/// `error` and its sources, each after a colon: what a user should read of an error chain
/// (`the server sent an invalid reply: reply line too long`).
pub fn report(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        text.push_str(": ");
        text.push_str(&e.to_string());
        next = e.source();
    }
    text
}

/// A parsed FTP URL: where to connect and the path it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FtpUrl {
    /// The host (brackets removed from IPv6 literals).
    pub host: String,
    /// The port (990 for `ftps://`, 21 otherwise, unless given).
    pub port: u16,
    /// The mode the scheme implies: `ftps://` implicit, `ftpes://` explicit required,
    /// `ftp://` explicit required (use the options to go plain).
    pub mode: ConnectionMode,
    /// The user name in the URL, if any.
    pub user: Option<String>,
    /// The password in the URL, if any (`ftp://user:pass@host/`, percent-decoded), as
    /// curl and lftp take it. A command line is visible to the machine's other users
    /// (`ps`, `/proc`), so an application should warn, as `ftps` does. Never shown by
    /// `Debug`.
    pub password: Option<Password>,
    /// The path, percent-decoded, without the leading `/` (FTP paths in URLs are relative
    /// to the login directory, RFC 1738 §3.2.2); empty for the login directory. Where the
    /// decoded bytes are not UTF-8 (`%E9` for a Latin-1 `é`), this text has U+FFFD in
    /// their place: send [`path_bytes`](Self::path_bytes).
    pub path: String,
    /// The path's bytes, percent-decoded: what names the file on the server, UTF-8 or
    /// not (RFC 959 pathnames are bytes; RFC 2640 made UTF-8 the usual, not the only,
    /// encoding). Equal to `path`'s bytes when they are UTF-8.
    pub path_bytes: Vec<u8>,
}

impl FtpUrl {
    /// Whether the path's bytes are UTF-8, so that [`path`](Self::path) names the same
    /// file as [`path_bytes`](Self::path_bytes).
    pub fn path_is_text(&self) -> bool {
        self.path.as_bytes() == self.path_bytes.as_slice()
    }

    /// Parses `ftp://`, `ftpes://` or `ftps://` URLs.
    pub fn parse(input: &str) -> Result<FtpUrl, ParseError> {
        let bad = |why: &'static str| ParseError::new_static("URL", why);
        let url = url::Url::parse(input).map_err(|_| bad("not a URL"))?;
        let (mode, default_port) = match url.scheme() {
            "ftps" => (ConnectionMode::Implicit, 990),
            "ftpes" => (ConnectionMode::ExplicitRequired, 21),
            "ftp" => (ConnectionMode::ExplicitRequired, 21),
            _ => return Err(bad("scheme must be ftp, ftpes or ftps")),
        };
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(h) => h.to_string(),
            None => return Err(bad("no host")),
        };
        let user = Some(url.username())
            .filter(|u| !u.is_empty())
            .map(percent_decode)
            .transpose()?;
        let password = url
            .password()
            .map(percent_decode)
            .transpose()?
            .map(Password::new)
            .transpose()?;
        // FTP URLs have no query and no fragment (RFC 1738 §3.2): a `?` or `#` is a
        // character of the name (a glob's `?`, a file called `a#1`), never dropped.
        let mut raw_path = url.path().to_owned();
        if let Some(q) = url.query() {
            raw_path.push('?');
            raw_path.push_str(q);
        }
        if let Some(f) = url.fragment() {
            raw_path.push('#');
            raw_path.push_str(f);
        }
        let path_bytes: Vec<u8> =
            percent_encoding::percent_decode_str(raw_path.trim_start_matches('/')).collect();
        Ok(FtpUrl {
            host,
            port: url.port().unwrap_or(default_port),
            mode,
            user,
            password,
            path: String::from_utf8_lossy(&path_bytes).into_owned(),
            path_bytes,
        })
    }
}

fn percent_decode(s: &str) -> Result<String, ParseError> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| ParseError::new_static("URL", "user name or password is not UTF-8"))
}

impl ClientOptions {
    /// Options for a URL (`ftps://` implicit, `ftpes://` and `ftp://` explicit required);
    /// the user is the URL's, else `anonymous`. Returns the options and the URL's path.
    /// Fails if the URL does not parse, the user name or password holds CR, LF or NUL, or
    /// the path's bytes are not UTF-8 (`%E9`): text cannot name such a file, so take
    /// [`FtpUrl::parse`]'s [`path_bytes`](FtpUrl::path_bytes) to reach it.
    pub fn from_url(
        url: &str,
        password: impl Into<String>,
    ) -> Result<(ClientOptions, String), ParseError> {
        let url = FtpUrl::parse(url)?;
        if !url.path_is_text() {
            return Err(ParseError::new_static(
                "URL",
                "path is not UTF-8 (FtpUrl::parse gives its bytes: path_bytes)",
            ));
        }
        let user = url.user.clone().unwrap_or_else(|| "anonymous".to_owned());
        let mut options = ClientOptions::new(url.host, url.port, user, password)?;
        options.session.mode = url.mode;
        Ok((options, url.path))
    }
}

impl ClientOptions {
    /// The rustls configuration of one session: the given one (or the platform's trust),
    /// with ALPN `ftp` (which tells servers this client reads data connections to their
    /// end, so they may hand it fresh TLS 1.3 tickets after uploads too), the session's
    /// own resumption `store`, and the client certificate if any.
    pub fn tls_config(
        &self,
        store: Arc<SessionStore>,
    ) -> Result<Arc<rustls::ClientConfig>, TlsConfigError> {
        let base = match (&self.tls, self.pins.is_empty()) {
            (Some(c), _) => c.clone(),
            (None, true) => Arc::new(crate::files::platform_client_config()?),
            (None, false) => Arc::new(client_config(rustls::RootCertStore::empty())?),
        };
        let mut config = with_session_store(&base, store);
        if !self.pins.is_empty() {
            let trust = ServerTrust::pinned(self.pins.clone());
            let provider = config.crypto_provider().clone();
            config
                .dangerous()
                .set_certificate_verifier(trust.verifier(provider));
        }
        if config.alpn_protocols.is_empty() {
            config.alpn_protocols = vec![ALPN_FTP.to_vec()];
        }
        if let Some(identity) = &self.identity {
            identity.apply(&mut config);
        }
        Ok(Arc::new(config))
    }

    /// The name the server's certificate must carry: the host, for the control connection
    /// and every data connection (never a PASV address).
    pub fn server_name(&self) -> Result<ServerName<'static>, TlsConfigError> {
        ServerName::try_from(self.host.clone())
            .map_err(|e| TlsConfigError(format!("{}: {e}", self.host)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftps_proto::client::ConnectionMode;

    #[test]
    fn errors_say_what_failed_and_keep_their_cause_and_reply() {
        use ftps_proto::reply::ReplyError;
        use ftps_proto::{Reply, ReplyCode};
        use std::error::Error as _;
        type E = Error<()>;
        let bad = E::from(ClientError::BadReply(ReplyError::LineTooLong));
        assert_eq!(bad.to_string(), "the server sent an invalid reply");
        assert_eq!(
            bad.source().map(|s| s.to_string()).as_deref(),
            Some("reply line too long")
        );
        assert_eq!(
            report(&bad),
            "the server sent an invalid reply: reply line too long"
        );
        assert!(bad.reply().is_none());
        let refused = E::from(ClientError::Refused(Reply::new(
            ReplyCode::FILE_UNAVAILABLE,
            "No such file.",
        )));
        assert_eq!(refused.reply().map(|r| r.code().get()), Some(550));
        assert_eq!(report(&refused), "the server refused: 550 No such file.");
        let tls = E::from(TlsConfigError("no usable certificate".into()));
        assert_eq!(report(&tls), "TLS configuration: no usable certificate");
        let io = E::from(std::io::Error::new(std::io::ErrorKind::TimedOut, "slow"));
        assert_eq!(report(&io), "slow");
        // An error an application boxes keeps its chain.
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(Error::<u8>::from(
            ClientError::BadReply(ReplyError::TooManyLines),
        ));
        assert!(boxed.source().is_some());
    }

    #[test]
    fn urls() {
        let u = FtpUrl::parse("ftps://alice@example.com/dir/with%20space.txt").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.mode),
            ("example.com", 990, ConnectionMode::Implicit)
        );
        assert_eq!(
            (u.user.as_deref(), u.path.as_str()),
            (Some("alice"), "dir/with space.txt")
        );
        let u = FtpUrl::parse("ftp://[::1]:2121/").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.mode, u.path.as_str()),
            ("::1", 2121, ConnectionMode::ExplicitRequired, "")
        );
        let u = FtpUrl::parse("ftpes://127.0.0.1/%E6%97%A5%E6%9C%AC%E8%AA%9E").unwrap();
        assert_eq!(u.path, "日本語");
        assert_eq!(u.path_bytes, "日本語".as_bytes());
        // A name that is not UTF-8 (Latin-1 `é`): its bytes to send, U+FFFD to show.
        let u = FtpUrl::parse("ftp://h/pub/caf%E9.txt").unwrap();
        assert_eq!(u.path_bytes, b"pub/caf\xe9.txt");
        assert_eq!(u.path, "pub/caf\u{fffd}.txt");
        // No query, no fragment: `?` and `#` are a name's.
        let u = FtpUrl::parse("ftp://h/dir/f?.csv").unwrap();
        assert_eq!(u.path, "dir/f?.csv");
        let u = FtpUrl::parse("ftp://h/a#1?x#y").unwrap();
        assert_eq!(u.path, "a#1?x#y");
        // A password in the URL is taken (percent-decoded), and never shown by Debug.
        let u = FtpUrl::parse("ftp://alice:s%40cret@example.com/").unwrap();
        assert_eq!(u.password.as_ref().map(|p| p.expose()), Some("s@cret"));
        assert!(!format!("{u:?}").contains("cret"));
        assert!(FtpUrl::parse("ftp://alice:a%0Db@example.com/").is_err());
        assert!(FtpUrl::parse("http://example.com/").is_err());
        assert!(FtpUrl::parse("not a url").is_err());
        // Text cannot name a file whose name is not UTF-8: refused, not sent as U+FFFD.
        assert!(ClientOptions::from_url("ftp://h/caf%E9.txt", "pw").is_err());
        let (o, path) = ClientOptions::from_url("ftps://bob@example.com:2990/x", "pw").unwrap();
        assert_eq!(
            (
                o.host.as_str(),
                o.port,
                o.session.user.as_str(),
                o.session.mode,
                path.as_str()
            ),
            ("example.com", 2990, "bob", ConnectionMode::Implicit, "x")
        );
    }

    #[test]
    fn options_hold_the_session_and_never_show_the_password() {
        let o = ClientOptions::new("example.com", 21, "alice", "hunter2")
            .unwrap()
            .with_connect_timeout(Duration::from_secs(3))
            .map_session(|s| s.with_epsv(false));
        assert_eq!(
            (o.connect_timeout, o.session.epsv, o.session.user.as_str()),
            (Duration::from_secs(3), false, "alice")
        );
        let shown = format!("{o:?}");
        assert!(
            shown.contains("alice") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(ClientOptions::new("example.com", 21, "alice\r\nPASS x", "pw").is_err());
        assert!(ClientOptions::new("example.com", 21, "alice", "pw\n").is_err());
    }
}
