//! The client commands: `ftps ls | get | put | rm | mkdir | mv | cat`.
//!
//! Text that comes from the server (listed names, `ls -l` lines, the replies quoted in
//! error messages) is printed through [`Printable`], on a terminal or not: its control
//! characters (C0, DEL, C1; ESC, and so every CSI and OSC sequence, among them) are shown
//! as `\u{1b}`-style escapes and can neither drive the terminal nor forge an output line.
//! Progress-bar labels and every error message go the same way. `ftps cat` alone writes
//! the server's bytes as they are: they are the file asked for.

use crate::remote_path::RemotePath;
use crate::sink::Sink;
use clap::{Args, ValueEnum};
use ftps_proto::client::{ClientError, ConnectionMode, DEFAULT_MAX_LISTING};
use ftps_proto::hash::HashAlgorithm;
use ftps_proto::tls::{ClientIdentity, Fingerprint, ServerTrust};
use ftps_proto::{Printable, PrintableBytes, ProtectionLevel, TransportErrorKind};
use ftps_tokio::client::{self, Error};
use ftps_tokio::download::{Destination, Partial, open_part};
use ftps_tokio::{Client, ClientOptions, FtpUrl};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Exit codes scripts can rely on (2 is a usage error, from the argument parser).
pub(crate) mod exit {
    /// A local problem: a file could not be read or written.
    pub(crate) const LOCAL: u8 = 1;
    /// A usage error: bad arguments or URLs.
    pub(crate) const USAGE: u8 = 2;
    /// The server could not be reached or secured (connection, TLS, certificate, no TLS).
    pub(crate) const CONNECT: u8 = 3;
    /// The login was refused.
    pub(crate) const LOGIN: u8 = 4;
    /// The server refused an operation (the message names its reply), or cannot do what
    /// was asked (`--checksum` of a server without HASH).
    pub(crate) const REFUSED: u8 = 5;
    /// A transfer did not complete (cut off, or not confirmed), or, with `--checksum`,
    /// the bytes downloaded do not have the server's hash.
    pub(crate) const TRANSFER: u8 = 6;
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum TlsArg {
    /// AUTH TLS, required.
    Explicit,
    /// TLS from the first byte.
    Implicit,
    /// AUTH TLS if the server has it, else clear text (with a warning).
    IfAvailable,
    /// No TLS: credentials and data in clear text.
    None,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum TlsVersion {
    /// TLS 1.2 only.
    #[value(name = "1.2")]
    V1_2,
    /// TLS 1.3 or 1.2.
    #[value(name = "1.3")]
    V1_3,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ProtArg {
    /// Data connections in clear text.
    #[value(name = "C")]
    C,
    /// Data connections over TLS.
    #[value(name = "P")]
    P,
}

/// How to reach and log in to the server.
#[derive(Args, Clone)]
pub(crate) struct Connection {
    /// User name (default: the URL's, else `anonymous`).
    #[arg(long, help_heading = "Login")]
    user: Option<String>,
    /// Read the password from the first line of this file (else from the URL, else
    /// `FTPS_PASSWORD`, else `--netrc`, else a prompt).
    #[arg(long, value_name = "FILE", help_heading = "Login")]
    password_file: Option<PathBuf>,
    /// Take the user and password for the host from ~/.netrc (as curl's -n).
    #[arg(short = 'n', long, help_heading = "Login")]
    netrc: bool,
    /// Take the user and password for the host from this .netrc file.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "netrc",
        help_heading = "Login"
    )]
    netrc_file: Option<PathBuf>,
    /// Send this account after the password when the server asks for one (ACCT, RFC 959
    /// §4.1.1: reply 332; as curl's --ftp-account).
    #[arg(long, value_name = "ACCOUNT", help_heading = "Login")]
    account: Option<String>,
    /// The longest the TCP connection to the server may take, in seconds [default: 20].
    #[arg(long, value_name = "SECS", value_parser = parse_secs, help_heading = "Connection")]
    connect_timeout: Option<std::time::Duration>,
    /// Trust the certificates in this PEM file (a private CA, or the server's own
    /// self-signed certificate, even one `openssl req -x509` marked CA:TRUE).
    #[arg(long, value_name = "PEM", help_heading = "TLS")]
    ca_cert: Option<PathBuf>,
    /// Trust the server's certificate only if its SHA-256 fingerprint is this one
    /// (`sha256:HEX`, colons allowed, as `openssl x509 -noout -fingerprint -sha256`
    /// prints it); may be given several times. No certificate authority is consulted.
    #[arg(long, value_name = "sha256:HEX", conflicts_with_all = ["ca_cert", "insecure"], help_heading = "TLS")]
    pin: Vec<Fingerprint>,
    /// Do not verify the server's certificate: anyone on the path could impersonate it.
    #[arg(long, conflicts_with = "ca_cert", help_heading = "TLS")]
    insecure: bool,
    /// The newest TLS version to use (1.2 or 1.3; the oldest is always 1.2).
    #[arg(long, value_enum, value_name = "VERSION", help_heading = "TLS")]
    tls_max: Option<TlsVersion>,
    /// Present this client certificate chain (PEM) to servers that ask for one.
    #[arg(long, value_name = "PEM", requires = "key", help_heading = "TLS")]
    cert: Option<PathBuf>,
    /// The private key (PEM) of `--cert`.
    #[arg(long, value_name = "PEM", requires = "cert", help_heading = "TLS")]
    key: Option<PathBuf>,
    /// TLS mode, overriding the URL's scheme (ftps:// implicit, ftp:// and ftpes:// explicit).
    #[arg(long, value_enum, help_heading = "TLS")]
    tls: Option<TlsArg>,
    /// Active mode (PORT/EPRT) instead of passive.
    #[arg(long, help_heading = "Connection")]
    active: bool,
    /// Start every connection (control and data, and an active-mode listener) from this
    /// local IP address, as curl's `--interface` with an address: for a host with
    /// several addresses, or a server that allows only some. Only the server's addresses
    /// of its family (IPv4 or IPv6) are tried.
    #[arg(long, value_name = "ADDRESS", value_parser = parse_interface, help_heading = "Connection")]
    interface: Option<std::net::IpAddr>,
    /// Data protection level.
    #[arg(long, value_enum, help_heading = "TLS")]
    prot: Option<ProtArg>,
    /// The most a listing (`ls`) may bring: bytes, or with K, M or G (KiB, MiB, GiB). The
    /// names parsed from it may hold as much memory. A listing past it is stopped (ABOR)
    /// and the command fails (exit 6); a hostile server cannot fill memory with one.
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = parse_size, help_heading = "Transfer")]
    max_listing: u64,
    /// Move each file's bytes at most this fast, in bytes a second, or with K, M or G
    /// (as curl's; each transfer of `-j N` on its own).
    #[arg(long, value_name = "SPEED", value_parser = parse_size, help_heading = "Transfer")]
    limit_rate: Option<u64>,
}

/// A positive number of seconds (fractions allowed, as curl's).
fn parse_secs(s: &str) -> Result<std::time::Duration, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0 && *v < 1e9)
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| format!("{s:?}: a positive number of seconds"))
}

/// `--interface`: an IP address (an interface's name, which curl also takes, is not).
fn parse_interface(s: &str) -> Result<std::net::IpAddr, String> {
    s.parse().map_err(|_| {
        format!("{s:?}: an IP address of this host (interface names are not supported)")
    })
}

/// A byte count: digits, optionally followed by K, M or G (powers of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, shift) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 10),
        Some((i, 'm' | 'M')) => (&s[..i], 20),
        Some((i, 'g' | 'G')) => (&s[..i], 30),
        _ => (s, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?}: a number of bytes, optionally with K, M or G"))?;
    n.checked_mul(1 << shift)
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{s:?}: out of range"))
}

const _: () = assert!(
    DEFAULT_MAX_LISTING == 64 << 20,
    "--max-listing's default is 64M"
);

pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
    /// The server refused with a 4xx reply: "the error condition is temporary, and the
    /// action may be requested again" (RFC 959 §4.2.1) — 421 from a draining node, 450,
    /// 451. `--retry` retries it.
    pub(crate) transient: bool,
    /// A failure no retry can mend (a source address of the wrong family, or one this
    /// host does not have): `--retry` gives up at once (review16c, finding 6).
    pub(crate) permanent: bool,
}

impl Failure {
    /// A usage error (exit 2).
    pub(crate) fn usage(e: impl std::fmt::Display) -> Self {
        Failure {
            code: exit::USAGE,
            message: e.to_string(),
            transient: false,
            permanent: false,
        }
    }

    pub(crate) fn local(e: impl std::fmt::Display) -> Self {
        Failure {
            code: exit::LOCAL,
            message: e.to_string(),
            transient: false,
            permanent: false,
        }
    }

    fn from_client(e: Error, connecting: bool) -> Self {
        let code = match &e {
            Error::Io(_) | Error::TlsConfig(_) | Error::Identity(_) | Error::PlaintextOnly(_) => {
                if connecting {
                    exit::CONNECT
                } else {
                    exit::LOCAL
                }
            }
            Error::Invalid(_) => exit::LOCAL,
            Error::Protocol(ClientError::Refused(r))
                if connecting && matches!(r.code().get(), 530 | 331 | 332) =>
            {
                exit::LOGIN
            }
            // 426: the transfer was aborted (the connection broke); not a refusal.
            Error::Protocol(ClientError::Refused(r)) if !connecting && r.code().get() == 426 => {
                exit::TRANSFER
            }
            // 421: the server is closing the control connection (going away: a drain, a
            // restart). Not a refusal of the operation: the server is not there for it,
            // as when connecting, and a retry on a fresh connection is what the reply asks
            // for (review16b, finding 1: `put --retry` gave up on a draining node).
            Error::Protocol(ClientError::Refused(r)) if r.code().get() == 421 => exit::CONNECT,
            Error::Protocol(ClientError::Refused(_)) if !connecting => exit::REFUSED,
            Error::Protocol(
                ClientError::Truncated { .. }
                | ClientError::Data(_)
                | ClientError::ListingTooLarge { .. },
            ) => exit::TRANSFER,
            Error::Protocol(_) => exit::CONNECT,
            _ => exit::CONNECT,
        };
        // The server's certificate not accepted: no retry changes that; the trust does.
        let certificate = matches!(
            &e,
            Error::Protocol(ClientError::Tls(t) | ClientError::Data(t))
                if t.kind() == TransportErrorKind::Certificate
        );
        let message = match &e {
            Error::Protocol(ClientError::ListingTooLarge { limit }) => {
                format!("the listing is larger than {limit} bytes (--max-listing): it was stopped")
            }
            _ if certificate => format!(
                "{}; to trust it, give its CA with --ca-cert or pin it with --pin",
                escaped_lines(&client::report(&e))
            ),
            // The report quotes the server (its reply, its certificate's names): escaped
            // here, once, backslashes too, so that the server's own `\xE9` cannot pass
            // for an escape of ours (see [`Shown`]).
            _ => escaped_lines(&client::report(&e)),
        };
        let transient = matches!(
            &e,
            Error::Protocol(ClientError::Refused(r)) if r.code().get() / 100 == 4
        );
        let permanent = certificate
            || matches!(
                &e,
                Error::Io(io) if matches!(
                    io.kind(),
                    std::io::ErrorKind::InvalidInput | std::io::ErrorKind::AddrNotAvailable
                )
            );
        Failure {
            code,
            message,
            transient,
            permanent,
        }
    }
}

/// `text`'s lines, each through [`Printable`] (a multi-line reply stays several lines, each
/// shown indented under the first).
fn escaped_lines(text: &str) -> String {
    text.split('\n')
        .map(|line| Printable(line).to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A line of a message as shown on standard error: [`Printable`]'s escapes of control and
/// bidirectional characters, but a backslash as it is. What a message quotes from
/// elsewhere comes escaped already, backslashes doubled: a server's reply
/// ([`Failure::from_client`]), a remote path ([`RemotePath`]'s `\xNN` for a byte that is
/// not UTF-8); escaping it again showed `\\xE9`. The control characters escaped here are
/// a second guard, for text that reached a message some other way.
pub(crate) struct Shown<'a>(pub(crate) &'a str);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, part) in self.0.split('\\').enumerate() {
            if i > 0 {
                f.write_str("\\")?;
            }
            std::fmt::Display::fmt(&Printable(part), f)?;
        }
        Ok(())
    }
}

impl From<Failure> for ExitCode {
    fn from(f: Failure) -> Self {
        // Messages quote the server's replies: control characters escaped, and the lines
        // of a multi-line reply indented, so none can pass for a line of ours.
        let mut lines = f.message.split('\n');
        say!("ftps: {}", Shown(lines.next().unwrap_or_default()));
        for line in lines {
            say!("  {}", Shown(line));
        }
        let names_or_dates = ["not valid for name", "expired", "not valid yet"]
            .iter()
            .any(|m| f.message.contains(m));
        if f.message.contains("its fingerprint is sha256:") && !names_or_dates {
            say!(
                "ftps: if that fingerprint is the server's (ask its administrator, or read it on the server with `openssl x509 -noout -fingerprint -sha256 -in CERT`), trust it with --pin, or give its certificate with --ca-cert"
            );
        }
        ExitCode::from(f.code)
    }
}

impl Connection {
    /// How transfers move: no longer without a byte than the library's data timeout, and
    /// at most `--limit-rate`.
    pub(crate) fn pace(&self) -> Pace {
        let stall = ClientOptions::new("", 0, "anonymous", "")
            .expect("a constant, valid user name and password")
            .session
            .data_timeout;
        Pace {
            stall,
            limit: self.limit_rate,
        }
    }
}

/// The `.netrc` entry for `url`'s host (`--netrc`, `--netrc-file`), for `user` if one was
/// given; `None` without those flags.
fn netrc_entry(
    conn: &Connection,
    url: &FtpUrl,
    user: Option<&str>,
) -> Result<Option<crate::netrc::Entry>, Failure> {
    let file = match (&conn.netrc_file, conn.netrc) {
        (Some(file), _) => file.clone(),
        (None, true) => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".netrc"),
            None => return Err(Failure::local("--netrc: no HOME to find .netrc in")),
        },
        (None, false) => return Ok(None),
    };
    let text = std::fs::read_to_string(&file)
        .map_err(|e| Failure::local(format!("{}: {e}", file.display())))?;
    let entry = crate::netrc::lookup(&text, &url.host, user);
    #[cfg(unix)]
    if entry.as_ref().is_some_and(|e| e.password.is_some()) {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::metadata(&file).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
            say!(
                "ftps: warning: {} holds a password and other users may read it (chmod 600 it)",
                file.display()
            );
        }
    }
    Ok(entry)
}

fn password(
    conn: &Connection,
    url: &FtpUrl,
    user: &str,
    netrc: Option<&crate::netrc::Entry>,
) -> Result<String, Failure> {
    if let Some(file) = &conn.password_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Failure::local(format!("{}: {e}", file.display())))?;
        return Ok(text.lines().next().unwrap_or("").to_owned());
    }
    if let Some(p) = &url.password {
        say!(
            "ftps: warning: a password in the URL is visible to other users of this machine (ps, /proc) and stays in the shell's history; prefer --password-file, FTPS_PASSWORD or --netrc"
        );
        return Ok(p.expose().to_owned());
    }
    if let Ok(p) = std::env::var("FTPS_PASSWORD") {
        return Ok(p);
    }
    if let Some(p) = netrc.and_then(|e| e.password.clone()) {
        return Ok(p);
    }
    if user == "anonymous" || user == "ftp" {
        return Ok("anonymous@".to_owned());
    }
    rpassword::prompt_password(format!("Password for {user}: ")).map_err(|_| {
        Failure::local("no password: use --password-file or FTPS_PASSWORD (no terminal to ask on)")
    })
}

/// Connects and logs in for `url`.
pub(crate) async fn connect(conn: &Connection, url: &FtpUrl) -> Result<Client, Failure> {
    let given = conn.user.clone().or_else(|| url.user.clone());
    let netrc = netrc_entry(conn, url, given.as_deref())?;
    let user = given
        .or_else(|| netrc.as_ref().and_then(|e| e.login.clone()))
        .unwrap_or_else(|| "anonymous".to_owned());
    let password = password(conn, url, &user, netrc.as_ref())?;
    let mut options = ClientOptions::new(url.host.clone(), url.port, user, password)
        .map_err(|e| Failure::from_client(Error::Invalid(e), true))?;
    options.session.mode = match conn.tls {
        Some(TlsArg::Explicit) => ConnectionMode::ExplicitRequired,
        Some(TlsArg::Implicit) => ConnectionMode::Implicit,
        Some(TlsArg::IfAvailable) => ConnectionMode::ExplicitIfAvailable,
        Some(TlsArg::None) => ConnectionMode::Plain,
        None => url.mode,
    };
    options.session.passive = !conn.active;
    if let Some(account) = &conn.account {
        let account = ftps_proto::Text::new(account.as_str())
            .map_err(|e| Failure::usage(format!("--account: {e}")))?;
        options.session.account = Some(account);
    }
    options.source_address = conn.interface;
    if let Some(limit) = conn.connect_timeout {
        options.connect_timeout = limit;
    }
    options.session.protection = match conn.prot {
        Some(ProtArg::C) => ProtectionLevel::Clear,
        _ => ProtectionLevel::Private,
    };
    let versions: &[&'static rustls::SupportedProtocolVersion] = match conn.tls_max {
        Some(TlsVersion::V1_2) => &[&rustls::version::TLS12],
        Some(TlsVersion::V1_3) | None => client::BOTH,
    };
    let tls = if conn.insecure {
        say!(
            "ftps: WARNING: --insecure: the server's certificate is not checked; anyone on the path can impersonate it"
        );
        client::insecure_client_config_with_versions(versions)
    } else if !conn.pin.is_empty() {
        client::client_config_with_trust(ServerTrust::pinned(conn.pin.clone()), versions)
    } else if let Some(ca) = &conn.ca_cert {
        let pem =
            std::fs::read(ca).map_err(|e| Failure::local(format!("{}: {e}", ca.display())))?;
        client::client_config_from_pem(&pem, versions)
    } else {
        client::client_config_with_trust(client::platform_trust().0, versions)
    };
    if let (Some(cert), Some(key)) = (&conn.cert, &conn.key) {
        let read = |p: &PathBuf| {
            std::fs::read(p).map_err(|e| Failure {
                code: 2,
                message: format!("{}: {e}", p.display()),
                transient: false,
                permanent: false,
            })
        };
        let identity =
            ClientIdentity::from_pem(&read(cert)?, &read(key)?).map_err(|e| Failure {
                code: 2,
                message: e.to_string(),
                transient: false,
                permanent: false,
            })?;
        options.identity = Some(identity);
    }
    if options.session.mode != ConnectionMode::Plain {
        options.tls = Some(Arc::new(
            tls.map_err(|e| Failure::from_client(Error::from(e), true))?,
        ));
    } else {
        say!("ftps: WARNING: --tls none: the password and all data travel in clear text");
    }
    let mut client = match Client::connect(options).await {
        Ok(c) => c,
        Err(Error::PlaintextOnly(offer)) => {
            say!(
                "ftps: WARNING: {} offers no TLS; continuing in clear text as --tls if-available allows",
                Printable(&url.host)
            );
            Client::accept_plaintext(offer)
                .await
                .map_err(|e| Failure::from_client(e, true))?
        }
        Err(e) => return Err(Failure::from_client(e, true)),
    };
    client.set_max_listing(conn.max_listing);
    Ok(client)
}

/// Parses a command-line URL; a bad one is a usage error (exit 2), and the message never
/// repeats a password the URL may hold.
pub(crate) fn parse(url: &str) -> Result<FtpUrl, Failure> {
    let parsed = FtpUrl::parse(url).map_err(|e| Failure {
        code: exit::USAGE,
        message: format!("{}: {e}", redacted(url)),
        transient: false,
        permanent: false,
    })?;
    // A command line ends at CR LF: no pathname holds CR, LF or NUL (RFC 959 §4.1.3).
    if parsed
        .path_bytes
        .iter()
        .any(|b| matches!(b, b'\r' | b'\n' | 0))
    {
        return Err(Failure::usage(format!(
            "{}: the path holds %0D, %0A or %00 (CR, LF, NUL), which no FTP pathname can",
            redacted(url)
        )));
    }
    Ok(parsed)
}

/// [`parse`], for the commands that take the URL's path as text (`put`, `put -`, a glob,
/// `ls --json`, `get -r`, `put -r`): a path whose bytes are not UTF-8 (`%E9`) is refused
/// (exit 2), not sent with U+FFFD in their place. `get`, `cat`, `ls`, `ls -l`, `mkdir`,
/// `mv` and `rm` send any bytes.
pub(crate) fn parse_text(url: &str, command: &str) -> Result<FtpUrl, Failure> {
    let parsed = parse(url)?;
    require_text(&parsed, command)?;
    Ok(parsed)
}

/// Refuses `url` (a usage error, before connecting) if its path names a directory: empty
/// (the login directory, `dir/..` too once the URL is normalised) or ending in `/`; `why`
/// says what the command takes instead.
fn require_file(url: &FtpUrl, why: &str) -> Result<(), Failure> {
    if url.path_bytes.is_empty() || url.path_bytes.ends_with(b"/") {
        return Err(Failure::usage(format!(
            "/{}: names a directory; {why}",
            PrintableBytes(&url.path_bytes)
        )));
    }
    Ok(())
}

/// Refuses `url` for `command` if its path is not UTF-8 (see [`parse_text`]).
fn require_text(url: &FtpUrl, command: &str) -> Result<(), Failure> {
    if url.path_is_text() {
        return Ok(());
    }
    Err(Failure::usage(format!(
        "{}: the path is not UTF-8 (a percent-encoded byte such as %E9); {command} takes \
         UTF-8 paths only (get, cat, ls, mkdir, mv and rm take any bytes)",
        PrintableBytes(&url.path_bytes)
    )))
}

/// `url` with the password of its user part, if any, replaced by `***`, whatever the
/// URL's shape (no scheme, one slash, a password holding `/` or `@`): everything between
/// the first `:` of the user part and the last `@` goes.
fn redacted(url: &str) -> String {
    let Some(at) = url.rfind('@') else {
        return url.to_owned();
    };
    // The user part starts after the scheme's `:` and any slashes, if there is a scheme.
    let start = match url.find("://") {
        Some(i) if i < at => i + 3,
        _ => match url.find(':') {
            Some(i) if i < at && url[..i].chars().all(|c| c.is_ascii_alphanumeric()) => {
                let rest = &url[i + 1..at];
                if rest.contains(':') {
                    i + 1 + (rest.len() - rest.trim_start_matches(['/', '\\']).len())
                } else {
                    0
                }
            }
            _ => 0,
        },
    };
    match url[start..at].find(':') {
        Some(colon) => format!("{}:***{}", &url[..start + colon], &url[at..]),
        None => url.to_owned(),
    }
}

fn same_server(urls: &[FtpUrl]) -> Result<(), Failure> {
    if let Some(first) = urls.first()
        && urls
            .iter()
            .any(|u| (&u.host, u.port, &u.user) != (&first.host, first.port, &first.user))
    {
        return Err(Failure {
            code: exit::USAGE,
            message: "all URLs of one command must name the same server and user".into(),
            transient: false,
            permanent: false,
        });
    }
    Ok(())
}

pub(crate) fn op<T>(r: Result<T, Error>) -> Result<T, Failure> {
    r.map_err(|e| Failure::from_client(e, false))
}

/// A progress bar on stderr when it is a terminal; hidden otherwise (scripts, CI).
/// `name` is shown as its `Display` writes it: a [`RemotePath`] escapes itself; a local
/// name is passed through [`Printable`] by the caller.
fn progress(name: impl std::fmt::Display, total: Option<u64>) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = match total {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    let style = indicatif::ProgressStyle::with_template(
        "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(name.to_string());
    bar
}

/// Which side of a copy failed.
enum CopyError {
    /// Reading the source.
    Read(std::io::Error),
    /// Writing the destination.
    Write(std::io::Error),
}

/// How a copy moves: how long it may go without moving a byte, and at most how fast.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pace {
    /// Each read and each write must move a byte within this.
    pub(crate) stall: std::time::Duration,
    /// At most so many bytes a second (`--limit-rate`), averaged from the start.
    pub(crate) limit: Option<u64>,
}

impl Pace {
    /// A read or write that moved nothing for [`stall`](Self::stall).
    fn stalled(self) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no data moved for {} s", self.stall.as_secs()),
        )
    }

    /// `io`, unless it moves nothing for [`stall`](Self::stall).
    async fn within<T>(
        self,
        io: impl std::future::Future<Output = std::io::Result<T>>,
    ) -> std::io::Result<T> {
        tokio::time::timeout(self.stall, io)
            .await
            .unwrap_or_else(|_| Err(self.stalled()))
    }

    /// How many bytes one read may ask for, at most `most`: under a rate limit, a tenth
    /// of a second's bytes, so the pauses stay short and the rate even (the sender is
    /// held back by TCP's window, as curl's is).
    fn chunk(self, most: usize) -> usize {
        self.limit.map_or(most, |rate| {
            usize::try_from(rate / 10).map_or(most, |c| c.clamp(1024, most))
        })
    }

    /// Under a rate limit, waits until `total` bytes since `started` keep to it.
    async fn keep(self, started: tokio::time::Instant, total: u64) {
        if let Some(rate) = self.limit {
            let due = std::time::Duration::from_secs_f64(total as f64 / rate as f64);
            tokio::time::sleep_until(started + due).await;
        }
    }
}

/// Copies `from` into `to`, moving the bar, at `pace`.
async fn copy_with_progress<R, W>(
    from: &mut R,
    to: &mut W,
    bar: &indicatif::ProgressBar,
    pace: Pace,
) -> Result<u64, CopyError>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 256 * 1024];
    let chunk = pace.chunk(buf.len());
    let started = tokio::time::Instant::now();
    let mut total = 0u64;
    loop {
        let n = pace
            .within(from.read(&mut buf[..chunk]))
            .await
            .map_err(CopyError::Read)?;
        if n == 0 {
            break;
        }
        pace.within(to.write_all(&buf[..n]))
            .await
            .map_err(CopyError::Write)?;
        total += n as u64;
        bar.inc(n as u64);
        pace.keep(started, total).await;
    }
    to.flush().await.map_err(CopyError::Write)?;
    Ok(total)
}

/// Receives `from` into `to` until its end, moving the bar, at `pace`; `to` is finished
/// (every byte written and flushed) before this returns.
async fn receive_with_progress<R>(
    from: &mut R,
    to: &mut Sink,
    bar: &indicatif::ProgressBar,
    pace: Pace,
) -> Result<u64, CopyError>
where
    R: tokio::io::AsyncRead + Unpin,
{
    use tokio::io::AsyncReadExt;
    let chunk = pace.chunk(crate::sink::BATCH);
    let started = tokio::time::Instant::now();
    let mut total = 0u64;
    // A read that fails still leaves what came before it written (a `-C` part keeps it).
    let read = loop {
        let n = match pace.within(from.read(to.room(chunk))).await {
            Ok(0) => break Ok(total),
            Ok(n) => n,
            Err(e) => break Err(CopyError::Read(e)),
        };
        pace.within(to.received(n))
            .await
            .map_err(CopyError::Write)?;
        total += n as u64;
        bar.inc(n as u64);
        pace.keep(started, total).await;
    };
    let written = pace.within(to.finish()).await.map_err(CopyError::Write);
    read.and_then(|total| written.map(|()| total))
}

/// The temporary file of the download in progress, removed if the user interrupts
/// `ftps` (see [`interrupted`]).
static IN_PROGRESS: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);

fn in_progress(path: Option<PathBuf>) {
    *IN_PROGRESS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = path;
}

/// Ctrl-C or SIGTERM arrived: removes the temporary file of a download in progress (a
/// `-C` download's `NAME.part` is kept, to be continued).
pub(crate) fn interrupted() {
    let taken = IN_PROGRESS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(temp) = taken {
        let _ = std::fs::remove_file(temp);
    }
}

/// A failure that names `what` (a local or remote path) first; an empty path (a URL that
/// names the login directory) is not named (it printed `ftps: : ...`).
pub(crate) fn about(what: impl std::fmt::Display, f: Failure) -> Failure {
    let what = what.to_string();
    // Named once: a failure from a step that named the file already keeps its message.
    if what.is_empty()
        || f.message
            .strip_prefix(what.as_str())
            .is_some_and(|m| m.starts_with(": "))
    {
        return f;
    }
    Failure {
        code: f.code,
        message: format!("{what}: {}", f.message),
        transient: f.transient,
        permanent: f.permanent,
    }
}

/// Downloads `remote` to `local` (resuming if asked) with a progress bar.
///
/// Nothing local is touched until the server has accepted the transfer, and a regular
/// file is replaced only by a complete download: the bytes go to a file beside it, renamed
/// over it at the end (keeping its permissions; through a symbolic link, the file it
/// points at). A failed download leaves an existing file as it was. Without `-C` the
/// temporary file is removed on failure (and on Ctrl-C); with `-C` the partial data stays
/// in `NAME.part`, which the next `-C` continues (or, when there is no `NAME.part`, `NAME`
/// itself is taken as the partial file, moved to `NAME.part` once the transfer starts). A
/// device, FIFO or standard output (`-`) is written through.
///
/// With `checksum` (`--checksum`), a complete download is published only if its bytes,
/// read back from the temporary file (or the whole `-C` part), have the hash the server
/// gives for the remote file (HASH, draft-bryan-ftpext-hash-02); on a mismatch the
/// temporary file (or the part) is removed and the target left as it was.
pub(crate) async fn download(
    c: &mut Client,
    remote: RemotePath<'_>,
    local: &Path,
    resume: bool,
    checksum: Option<HashAlgorithm>,
    pace: Pace,
) -> Result<(), Failure> {
    let size = c.size(remote).await.ok();
    if local == Path::new("-") {
        if resume {
            return Err(Failure::local("-: -C needs a regular file to continue"));
        }
        if checksum.is_some() {
            return Err(checksum_needs_a_file("-"));
        }
        return download_through(c, remote, standard_output()?, size, pace).await;
    }
    let (local, keep) = match Destination::of(local) {
        Destination::File { path, keep } => (path, keep),
        Destination::Through(path) => {
            if checksum.is_some() {
                return Err(checksum_needs_a_file(&path.display().to_string()));
            }
            if resume {
                return Err(Failure::local(format!(
                    "{}: -C needs a regular file to continue",
                    path.display()
                )));
            }
            let file = tokio::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .await
                .map_err(|e| Failure::local(format!("{}: {e}", path.display())))?
                .into_std()
                .await;
            return download_through(c, remote, file, size, pace).await;
        }
    };
    let local = local.as_path();
    let part = with_suffix(local, ".part");
    let (offset, from) = if resume {
        match (std::fs::metadata(&part), std::fs::metadata(local)) {
            (Ok(m), _) => (m.len(), Some(part.clone())),
            (Err(_), Ok(m)) if m.is_file() => (m.len(), Some(local.to_path_buf())),
            _ => (0, None),
        }
    } else {
        (0, None)
    };
    if let (Some(from), Some(size)) = (&from, size) {
        if offset > size {
            return Err(Failure::local(format!(
                "{}: {offset} bytes, more than the remote file's {size}: not a part of it (remove it, or get without -C)",
                from.display()
            )));
        }
        if offset == size {
            // Complete already.
            if let Some(algorithm) = checksum {
                verify(c, remote, from, algorithm).await?;
            }
            if *from != local {
                tokio::fs::rename(from, local)
                    .await
                    .map_err(|e| Failure::local(format!("{}: {e}", local.display())))?;
            }
            return Ok(());
        }
    }
    let mut stream = op(c.retrieve_stream(remote, offset).await).map_err(|f| about(remote, f))?;
    let opened = if resume {
        open_part(from.as_deref(), &part, offset).map(|f| (f, None))
    } else {
        Partial::create(local, keep).map(|(p, f)| (f, Some(p)))
    };
    let (file, partial) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            let _ = stream.abort().await;
            return Err(Failure::local(format!("{}: {e}", local.display())));
        }
    };
    let temp = partial.as_ref().map_or(part, |p| p.temp().to_path_buf());
    if partial.is_some() {
        in_progress(Some(temp.clone()));
    }
    let mut file = Sink::new(file);
    let bar = progress(remote.file_name(), size);
    bar.set_position(offset);
    let copied = receive_with_progress(&mut stream, &mut file, &bar, pace).await;
    let finished = stream.finish().await;
    bar.finish_and_clear();
    drop(file);
    let outcome = match (copied, finished) {
        (Err(CopyError::Read(e)), _) => Err(Failure {
            code: exit::TRANSFER,
            message: format!("{remote}: {e}"),
            transient: false,
            permanent: false,
        }),
        (Err(CopyError::Write(e)), _) => Err(Failure::local(format!("{}: {e}", temp.display()))),
        (Ok(_), Err(e)) => Err(about(remote, Failure::from_client(e, false))),
        (Ok(_), Ok(_)) => match checksum {
            Some(algorithm) => verify(c, remote, &temp, algorithm).await,
            None => Ok(()),
        }
        .inspect_err(|f| {
            // A part that does not hash as the file does is not worth continuing.
            if partial.is_none() && f.code == exit::TRANSFER {
                let _ = std::fs::remove_file(&temp);
            }
        })
        .and_then(|()| {
            // A resumed download's part is complete: it becomes the file.
            match partial {
                Some(partial) => partial.publish(),
                None => std::fs::rename(&temp, local),
            }
            .map_err(|e| Failure::local(format!("{}: {e}", local.display())))
        }),
    };
    // A failed download's temporary file goes with its `Partial`; a part stays.
    in_progress(None);
    outcome
}

/// `--checksum` with a destination that is not a regular file: what was written there
/// could not be taken back.
fn checksum_needs_a_file(what: &str) -> Failure {
    Failure {
        code: exit::USAGE,
        message: format!(
            "{what}: --checksum needs a regular file (bytes written to a pipe or device cannot be taken back if they do not match)"
        ),
        transient: false,
        permanent: false,
    }
}

/// The algorithm `--checksum` uses: SHA-256 if the server offers it, else the strongest
/// it offers of SHA-512, SHA-1, MD5 and CRC32 (its FEAT reply's HASH line). A server
/// without HASH (vsftpd, Pure-FTPd) cannot check a download: that is said, and the
/// download goes on unchecked (`None`), as issue 15 asks.
fn checksum_algorithm(c: &Client) -> Option<HashAlgorithm> {
    let offered = ftps_proto::hash::offered(c.features());
    let chosen = offered.and_then(|(algorithms, _)| ftps_proto::hash::preferred(&algorithms));
    if chosen.is_none() {
        say!(
            "ftps: warning: --checksum: the server does not offer HASH (no HASH line in its \
             FEAT reply; vsftpd and Pure-FTPd have none): the download is not checked"
        );
    }
    chosen
}

/// Asks the server for the hash of `remote` and compares it with the hash of the local
/// file `local`. A mismatch is [`exit::TRANSFER`].
async fn verify(
    c: &mut Client,
    remote: RemotePath<'_>,
    local: &Path,
    algorithm: HashAlgorithm,
) -> Result<(), Failure> {
    let theirs = op(c.hash(remote, algorithm, None).await).map_err(|f| {
        about(
            remote,
            Failure {
                message: format!("--checksum: HASH failed: {}", f.message),
                ..f
            },
        )
    })?;
    let path = local.to_path_buf();
    let ours = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path)?;
        ftps_tokio::hash::hash_reader(file, algorithm, None).map_err(|e| match e {
            ftps_proto::server::StorageError::Other(m) => std::io::Error::other(m),
            e => std::io::Error::other(format!("{e:?}")),
        })
    })
    .await
    .map_err(Failure::local)?
    .map_err(|e| Failure::local(format!("{}: {e}", local.display())))?;
    if !ours.hex.eq_ignore_ascii_case(&theirs.hex) {
        return Err(Failure {
            code: exit::TRANSFER,
            message: format!(
                "{remote}: checksum mismatch: the server's {algorithm} is {}, the downloaded bytes' is {}; the download is corrupt and was not kept",
                theirs.hex, ours.hex
            ),
            transient: false,
            permanent: false,
        });
    }
    Ok(())
}

/// Downloads `remote` straight into `out` (a device, a FIFO, standard output). A reader
/// of a pipe that went away (`| head`) ends the download quietly.
async fn download_through(
    c: &mut Client,
    remote: RemotePath<'_>,
    out: impl std::io::Write + Send + 'static,
    size: Option<u64>,
    pace: Pace,
) -> Result<(), Failure> {
    let mut out = Sink::new(out);
    let mut stream = op(c.retrieve_stream(remote, 0).await).map_err(|f| about(remote, f))?;
    let bar = progress(remote.file_name(), size);
    let copied = receive_with_progress(&mut stream, &mut out, &bar, pace).await;
    bar.finish_and_clear();
    match copied {
        Ok(_) => op(stream.finish().await)
            .map(drop)
            .map_err(|f| about(remote, f)),
        Err(CopyError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            let _ = stream.abort().await;
            Ok(())
        }
        Err(CopyError::Write(e)) => {
            let _ = stream.abort().await;
            Err(Failure::local(format!("output: {e}")))
        }
        Err(CopyError::Read(e)) => {
            let _ = stream.finish().await;
            Err(Failure {
                code: exit::TRANSFER,
                message: format!("{remote}: {e}"),
                transient: false,
                permanent: false,
            })
        }
    }
}

/// Standard output, to write a download or a listing to. On Unix it is a file of its own
/// (a duplicate of descriptor 1), written straight, without `Stdout`'s line buffering,
/// and a write that fails says so (`Stdout` drops bytes written to a closed descriptor).
/// A descriptor 1 closed before `ftps` started (`>&-`) cannot be told from `>/dev/null`:
/// Rust's runtime opens `/dev/null` in its place before `main`.
fn standard_output() -> Result<Box<dyn std::io::Write + Send>, Failure> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map(|fd| Box::new(std::fs::File::from(fd)) as Box<dyn std::io::Write + Send>)
            .map_err(|e| Failure::local(format!("standard output: {e}")))
    }
    #[cfg(not(unix))]
    {
        Ok(Box::new(std::io::stdout()))
    }
}

/// `path` with `suffix` added to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Opens a local file to upload: it must be a regular file we can read (a directory, say,
/// is refused before anything is sent, so no remote file is touched).
fn open_upload(local: &Path) -> Result<std::fs::File, Failure> {
    // Looked at before opening: opening a FIFO would wait for a writer.
    match std::fs::metadata(local) {
        Ok(m) if !m.is_file() => {
            return Err(Failure::local(format!(
                "{}: not a regular file",
                local.display()
            )));
        }
        Err(e) => return Err(Failure::local(format!("{}: {e}", local.display()))),
        Ok(_) => {}
    }
    let file = std::fs::File::open(local)
        .map_err(|e| Failure::local(format!("{}: {e}", local.display())))?;
    let m = file
        .metadata()
        .map_err(|e| Failure::local(format!("{}: {e}", local.display())))?;
    if !m.is_file() {
        return Err(Failure::local(format!(
            "{}: not a regular file",
            local.display()
        )));
    }
    Ok(file)
}

/// Uploads `local` to `remote` (resuming from the remote size if asked) with a progress bar.
pub(crate) async fn upload(
    c: &mut Client,
    file: std::fs::File,
    local: &Path,
    remote: &str,
    resume: bool,
    pace: Pace,
) -> Result<(), Failure> {
    use tokio::io::AsyncSeekExt;
    let mut file = tokio::fs::File::from_std(file);
    let size = file.metadata().await.map_err(Failure::local)?.len();
    let offset = if resume {
        let there = c.size(remote).await.unwrap_or(0);
        if there > size {
            return Err(Failure::local(format!(
                "{remote}: the remote file has {there} bytes, more than {}'s {size}: not a part of it (put without -C)",
                local.display()
            )));
        }
        there
    } else {
        0
    };
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(Failure::local)?;
    let bar = progress(Printable(&local.display().to_string()), Some(size));
    bar.set_position(offset);
    let mut stream =
        op(c.store_stream(remote, offset, false).await).map_err(|f| about(remote, f))?;
    let copied = copy_with_progress(&mut file, &mut stream, &bar, pace).await;
    bar.finish_and_clear();
    end_upload(stream, copied, remote, &local.display().to_string()).await
}

/// Ends an upload's data stream after its copy: its final reply when the copy went
/// through, else ABOR and the failure (of reading `local`, or of sending to `remote`).
async fn end_upload(
    stream: ftps_tokio::DataWriter<'_>,
    copied: Result<u64, CopyError>,
    remote: &str,
    local: &str,
) -> Result<(), Failure> {
    match copied {
        Ok(_) => op(stream.finish().await)
            .map(drop)
            .map_err(|f| about(remote, f)),
        Err(CopyError::Read(e)) => {
            let _ = stream.abort().await;
            Err(Failure::local(format!("{local}: {e}")))
        }
        Err(CopyError::Write(e)) => {
            let _ = stream.abort().await;
            Err(Failure {
                code: exit::TRANSFER,
                message: format!("{remote}: {e}"),
                transient: false,
                permanent: false,
            })
        }
    }
}

/// `ftps ls URL [-l]`: names (NLST), or the server's `ls -l` lines (LIST), one a line,
/// each shown through [`Printable`] (see the module documentation).
pub(crate) async fn ls(
    conn: &Connection,
    url: &str,
    long: bool,
    json: bool,
) -> Result<(), Failure> {
    let url = parse(url)?;
    if json {
        require_text(&url, "ls --json")?;
    }
    let mut c = connect(conn, &url).await?;
    let path = RemotePath::from(url.path_bytes.as_slice());
    let printed = if json {
        let entries = crate::mirror::list_dir(&mut c, &url.path).await?;
        // JSON escapes every control character a name holds: written as it is.
        let text = serde_json::to_string_pretty(&entries)
            .map_err(|e| Failure::local(format!("JSON: {e}")))?;
        use std::io::Write;
        match writeln!(standard_output()?, "{text}") {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(Failure::local(format!("standard output: {e}")))
            }
            _ => Ok(()),
        }
    } else if long {
        let raw = op(c.list_raw(path, ftps_proto::client::ListFormat::List).await)
            .map_err(|f| about(PrintableBytes(&url.path_bytes), f))?;
        let mut lines: Vec<&[u8]> = raw.split(|&b| b == b'\n').collect();
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop(); // After the last line's end.
        }
        print_lines(lines.into_iter().map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            String::from_utf8_lossy(line)
        }))
    } else {
        // Names, then the lines no pathname can be (a CR in a name), all shown escaped.
        let names =
            op(c.nlst(path).await).map_err(|f| about(PrintableBytes(&url.path_bytes), f))?;
        print_lines(
            names
                .entries
                .iter()
                .map(|n| std::borrow::Cow::Borrowed(n.as_str()))
                .chain(names.unparsed.iter().map(|l| String::from_utf8_lossy(l))),
        )
    };
    let _ = c.quit().await;
    printed
}

/// Writes server-provided lines to standard output, each through [`Printable`]. A reader
/// that went away (`ftps ls | head`) ends the output quietly.
fn print_lines<S: AsRef<str>>(mut lines: impl Iterator<Item = S>) -> Result<(), Failure> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(standard_output()?);
    let written = lines
        .try_for_each(|line| writeln!(out, "{}", Printable(line.as_ref())))
        .and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::local(format!("standard output: {e}")))
        }
        _ => Ok(()),
    }
}

/// Whether a URL's last path component is a glob (`*`, `?` or `[`).
fn is_glob(url: &FtpUrl) -> bool {
    RemotePath::from(url.path_bytes.as_slice())
        .file_name()
        .as_ref()
        .iter()
        .any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// The files of `pattern`'s directory whose names match its last component (a glob:
/// `*`, `?`, `[a-z]`, `{a,b}`), as paths; none is an error (exit 5), as a missing file is.
async fn expand_glob(c: &mut Client, pattern: &str) -> Result<Vec<String>, Failure> {
    let (dir, glob) = match pattern.rsplit_once('/') {
        Some((dir, glob)) => (dir, glob),
        None => ("", pattern),
    };
    let matcher = globset::GlobBuilder::new(glob)
        .literal_separator(true)
        .build()
        .map_err(|e| Failure::usage(format!("{}: {e}", Printable(pattern))))?
        .compile_matcher();
    let mut found: Vec<String> = crate::mirror::list_dir(c, dir)
        .await?
        .into_iter()
        .filter(|e| e.kind == ftps_proto::listing::EntryKind::File && matcher.is_match(&e.name))
        .filter(|e| !e.name.contains(['/', '\\']))
        .map(|e| match dir {
            "" => e.name,
            dir => format!("{dir}/{}", e.name),
        })
        .collect();
    found.sort();
    if found.is_empty() {
        return Err(Failure {
            code: exit::REFUSED,
            message: format!("{}: no file matches", Printable(pattern)),
            transient: false,
            permanent: false,
        });
    }
    Ok(found)
}

/// `ftps get URL... [LOCAL|DIR/]`; with `checksum`, each file is checked against the
/// server's HASH before it takes its place (see [`download`]).
pub(crate) async fn get(
    conn: &Connection,
    args: &[String],
    resume: bool,
    checksum: bool,
    retry: u32,
) -> Result<(), Failure> {
    let (urls, dest): (Vec<&String>, Option<&String>) = match args.split_last() {
        Some((last, rest)) if !rest.is_empty() && !last.contains("://") => {
            (rest.iter().collect(), Some(last))
        }
        _ => (args.iter().collect(), None),
    };
    let urls: Vec<FtpUrl> = urls.iter().map(|u| parse(u)).collect::<Result<_, _>>()?;
    same_server(&urls)?;
    // Refused before connecting, as `cat` does (an empty path, `dir/..` among them, went
    // out as an empty RETR and came back as "invalid pathname: is empty", exit 1).
    for url in &urls {
        require_file(url, "get fetches files (get -r copies a directory)")?;
    }
    let mut retries = Retries::new(retry);
    let mut c = retries.connect(conn, &urls[0]).await?;
    // Remote globs (`*.csv`): each expanded to the files of its directory that match.
    let globbed = urls.iter().any(is_glob);
    let mut expanded = Vec::new();
    for url in urls {
        if !is_glob(&url) {
            expanded.push(url);
            continue;
        }
        require_text(&url, "a glob")?;
        for path in expand_glob(&mut c, &url.path).await? {
            expanded.push(FtpUrl {
                path_bytes: path.as_bytes().to_vec(),
                path,
                ..url.clone()
            });
        }
    }
    let urls = expanded;
    let many = urls.len() > 1 || globbed;
    let into_dir = dest.is_none_or(|d| d.ends_with('/') || Path::new(d).is_dir()) || many;
    if many && dest.is_some_and(|d| !Path::new(d).is_dir()) {
        let _ = c.quit().await;
        return Err(Failure::local("several files need a directory to go into"));
    }
    let checksum = if checksum {
        checksum_algorithm(&c)
    } else {
        None
    };
    for url in &urls {
        let remote = RemotePath::from(url.path_bytes.as_slice());
        let local = match dest {
            Some(d) if !into_dir => PathBuf::from(d),
            Some(d) => Path::new(d).join(remote.file_name().local()),
            // A remote file named `-` goes to `./-`, not to standard output.
            None if remote.file_name().as_ref() == b"-" => PathBuf::from("./-"),
            None => remote.file_name().local(),
        };
        loop {
            match download(&mut c, remote, &local, resume, checksum, conn.pace()).await {
                Ok(()) => break,
                Err(f) => c = retries.after(f, conn, url).await?,
            }
        }
    }
    let _ = c.quit().await;
    Ok(())
}

/// Retries of failed transfers (`--retry N`): each on a fresh connection, after a pause
/// that doubles from 1 s to 10 s. Only what may go better another time is retried: a
/// connection that failed, a transfer that did not complete (exit 3 and 6), a refusal
/// the server says is temporary (4xx: a draining node's 421); never a refused login, a
/// permanent refusal (5xx), a server certificate not trusted, a usage or local error.
pub(crate) struct Retries {
    left: u32,
    pause: std::time::Duration,
}

impl Retries {
    pub(crate) fn new(times: u32) -> Self {
        Retries {
            left: times,
            pause: std::time::Duration::from_secs(1),
        }
    }

    /// Whether `f` may be retried, and a retry is left (counted).
    fn take(&mut self, f: &Failure) -> bool {
        if self.left == 0
            || f.permanent
            || !(f.transient || matches!(f.code, exit::CONNECT | exit::TRANSFER))
        {
            return false;
        }
        self.left -= 1;
        true
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(std::time::Duration::from_secs(10));
    }

    /// Connects, retrying a connection that fails.
    async fn connect(&mut self, conn: &Connection, url: &FtpUrl) -> Result<Client, Failure> {
        loop {
            match connect(conn, url).await {
                Ok(c) => return Ok(c),
                Err(f) if self.take(&f) => {
                    say!("ftps: {}; retrying ({} left)", Shown(&f.message), self.left);
                    self.wait().await;
                }
                Err(f) => return Err(f),
            }
        }
    }

    /// After a transfer failed with `f` (whose message names the file): a fresh
    /// connection to retry on, or the failure.
    pub(crate) async fn after(
        &mut self,
        f: Failure,
        conn: &Connection,
        url: &FtpUrl,
    ) -> Result<Client, Failure> {
        if !self.take(&f) {
            return Err(f);
        }
        say!(
            "ftps: {}; retrying on a fresh connection ({} left)",
            Shown(&f.message),
            self.left
        );
        self.wait().await;
        self.connect(conn, url).await
    }
}

/// `ftps put LOCAL... URL|URL/`. Every local file is opened (and must be a regular file)
/// before anything is sent.
/// How `ftps put` uploads.
pub(crate) struct PutOptions {
    /// `-C`: continue from the remote file's size.
    pub(crate) resume: bool,
    /// `--retry N`.
    pub(crate) retry: u32,
    /// `--create-dirs`.
    pub(crate) create_dirs: bool,
}

/// Makes every directory of `dir` (a path relative to the login directory, `/`
/// separated) that is missing: MKD of each prefix, whose refusal (it exists, mostly) is
/// left for the upload to report if it matters.
pub(crate) async fn create_dirs(c: &mut Client, dir: &str, made: &mut Vec<String>) {
    let mut prefix = String::new();
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        if !prefix.is_empty() || dir.starts_with('/') {
            prefix.push('/');
        }
        prefix.push_str(part);
        if made.contains(&prefix) {
            continue;
        }
        let _ = c.mkdir(&prefix).await;
        made.push(prefix.clone());
    }
}

pub(crate) async fn put(
    conn: &Connection,
    args: &[String],
    how: PutOptions,
) -> Result<(), Failure> {
    let PutOptions {
        resume,
        retry,
        create_dirs: make_dirs,
    } = how;
    let Some((url, locals)) = args.split_last() else {
        return Err(Failure::local("nothing to upload"));
    };
    if locals.is_empty() {
        return Err(Failure::local("give the local files, then the URL"));
    }
    let url = parse_text(url, "put")?;
    if locals.iter().any(|l| l == "-") {
        return put_stdin(conn, &url, locals, resume || retry > 0).await;
    }
    let into_dir = url.path.is_empty() || url.path.ends_with('/') || locals.len() > 1;
    let mut files = Vec::new();
    for local in locals {
        let local = Path::new(local);
        let name = local
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Failure::local(format!("{}: not a file name", local.display())))?;
        files.push((local, name, open_upload(local)?));
    }
    let mut retries = Retries::new(retry);
    let mut c = retries.connect(conn, &url).await?;
    let mut made = Vec::new();
    for (local, name, file) in files {
        let remote = if !into_dir {
            url.path.clone()
        } else if url.path.is_empty() || url.path.ends_with('/') {
            format!("{}{name}", url.path)
        } else {
            format!("{}/{name}", url.path)
        };
        if make_dirs && let Some((dir, _)) = remote.rsplit_once('/') {
            create_dirs(&mut c, dir, &mut made).await;
        }
        loop {
            // Each attempt reads the file from its own handle (the last one moved on).
            let file = file.try_clone().map_err(Failure::local)?;
            match upload(&mut c, file, local, &remote, resume, conn.pace()).await {
                Ok(()) => break,
                Err(f) => c = retries.after(f, conn, &url).await?,
            }
        }
    }
    let _ = c.quit().await;
    Ok(())
}

/// `ftps put - URL`: standard input uploaded as the file the URL names (read as it
/// comes, so it cannot be resumed or retried).
async fn put_stdin(
    conn: &Connection,
    url: &FtpUrl,
    locals: &[String],
    again: bool,
) -> Result<(), Failure> {
    if locals.len() > 1 {
        return Err(Failure::usage("-: standard input is uploaded alone"));
    }
    if url.path.is_empty() || url.path.ends_with('/') {
        return Err(Failure::usage(
            "-: standard input has no name: give the URL of the file to write",
        ));
    }
    if again {
        return Err(Failure::usage(
            "-: standard input cannot be read twice (-C, --retry)",
        ));
    }
    let mut c = connect(conn, url).await?;
    let mut input = tokio::io::stdin();
    let remote = url.path.as_str();
    let mut stream = op(c.store_stream(remote, 0, false).await).map_err(|f| about(remote, f))?;
    let bar = progress("-", None);
    let copied = copy_with_progress(&mut input, &mut stream, &bar, conn.pace()).await;
    bar.finish_and_clear();
    let done = end_upload(stream, copied, remote, "-").await;
    let _ = c.quit().await;
    done
}

/// `ftps rm URL...`.
pub(crate) async fn rm(conn: &Connection, urls: &[String]) -> Result<(), Failure> {
    let urls: Vec<FtpUrl> = urls.iter().map(|u| parse(u)).collect::<Result<_, _>>()?;
    same_server(&urls)?;
    let Some(first) = urls.first() else {
        return Ok(());
    };
    let mut c = connect(conn, first).await?;
    for url in &urls {
        op(c.delete(&url.path_bytes).await)
            .map_err(|f| about(PrintableBytes(&url.path_bytes), f))?;
    }
    let _ = c.quit().await;
    Ok(())
}

/// `ftps mkdir URL`.
pub(crate) async fn mkdir(conn: &Connection, url: &str) -> Result<(), Failure> {
    let url = parse(url)?;
    let mut c = connect(conn, &url).await?;
    op(c.mkdir(without_trailing_slashes(&url.path_bytes)).await)
        .map_err(|f| about(PrintableBytes(&url.path_bytes), f))?;
    let _ = c.quit().await;
    Ok(())
}

/// `path` without the `/`s it ends with (`dir/` names `dir`).
fn without_trailing_slashes(mut path: &[u8]) -> &[u8] {
    while let Some(rest) = path.strip_suffix(b"/") {
        path = rest;
    }
    path
}

/// `ftps mv URL NEWPATH`.
pub(crate) async fn mv(conn: &Connection, url: &str, to: &str) -> Result<(), Failure> {
    let url = parse(url)?;
    let mut c = connect(conn, &url).await?;
    op(c.rename(&url.path_bytes, to).await)
        .map_err(|f| about(PrintableBytes(&url.path_bytes), f))?;
    let _ = c.quit().await;
    Ok(())
}

/// `ftps quote URL COMMAND...` (curl's -Q, lftp's quote): each command sent as it is on
/// the control connection, its reply printed (server text made printable); the first
/// reply that is not a success (4xx, 5xx) stops there with exit 5. Commands that need a
/// data connection or change the session's state are refused (exit 2) before anything is
/// sent.
pub(crate) async fn quote(
    conn: &Connection,
    url: &str,
    commands: &[String],
) -> Result<(), Failure> {
    let url = parse(url)?;
    let mut parsed = Vec::new();
    for line in commands {
        let usage = |why: String| Failure {
            code: exit::USAGE,
            message: format!("quote {}: {why}", Printable(line)),
            transient: false,
            permanent: false,
        };
        let command =
            ftps_proto::Command::parse(line.as_bytes()).map_err(|e| usage(e.to_string()))?;
        // Refused before connecting, for the reason the session would refuse it.
        if let Some(why) = ftps_proto::client::raw_refusal(&command) {
            return Err(usage(why.to_owned()));
        }
        parsed.push(command);
    }
    let mut c = connect(conn, &url).await?;
    if !url.path.is_empty() {
        op(c.cwd(without_trailing_slashes(&url.path_bytes)).await)
            .map_err(|f| about(PrintableBytes(&url.path_bytes), f))?;
    }
    for (line, command) in commands.iter().zip(parsed) {
        let reply = op(c.raw(command).await).map_err(|f| about(line, f))?;
        for text in reply.lines() {
            println!("{} {}", reply.code().get(), Printable(text));
        }
        if reply.code().get() >= 400 {
            let _ = c.quit().await;
            return Err(Failure {
                code: exit::REFUSED,
                message: format!(
                    "{}: the server answered {}",
                    Printable(line),
                    reply.code().get()
                ),
                transient: false,
                permanent: false,
            });
        }
    }
    let _ = c.quit().await;
    Ok(())
}

/// `ftps cat URL`: the file's bytes as they are (a reader that went away, as with
/// `| head`, ends it quietly).
pub(crate) async fn cat(conn: &Connection, url: &str) -> Result<(), Failure> {
    let url = parse(url)?;
    require_file(&url, "cat writes a file (ftps ls lists a directory)")?;
    // Looked at before connecting: nothing is fetched for an output that cannot be had.
    let out = standard_output()?;
    let mut c = connect(conn, &url).await?;
    let remote = RemotePath::from(url.path_bytes.as_slice());
    let done = download_through(&mut c, remote, out, None, conn.pace()).await;
    let _ = c.quit().await;
    done
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_failure_about_the_login_directory_has_no_empty_label() {
        let f = |m: &str| super::Failure {
            code: 1,
            message: m.to_owned(),
            transient: false,
            permanent: false,
        };
        assert_eq!(super::about("", f("refused")).message, "refused");
        assert_eq!(
            super::about("a.txt", f("refused")).message,
            "a.txt: refused"
        );
    }

    #[test]
    fn messages_escape_control_characters_once_and_keep_a_remote_path_s_escapes() {
        use super::{RemotePath, Shown};
        let path = RemotePath::from(&b"caf\xe9\x1b[2J.txt"[..]);
        let message = format!("{path}: refused: 550 no\x1b]0;title\x07 such file");
        assert_eq!(
            Shown(&message).to_string(),
            "caf\\xE9\\u{1b}[2J.txt: refused: 550 no\\u{1b}]0;title\\u{7} such file"
        );
        assert_eq!(Shown("a\\b").to_string(), "a\\b");
    }

    use super::redacted;

    #[test]
    fn passwords_in_urls_are_redacted_whatever_their_shape() {
        for (given, shown) in [
            ("ftp://u:S3cret@host/x", "ftp://u:***@host/x"),
            ("ftp://u:pa/ss@host/", "ftp://u:***@host/"),
            ("ftp://u:p@ss@host/", "ftp://u:***@host/"),
            ("ftp:/u:S3cret@host/", "ftp:/u:***@host/"),
            ("ftp:u:S3cret@host/", "ftp:u:***@host/"),
            ("ftp:\\\\u:S3cret@host\\", "ftp:\\\\u:***@host\\"),
            ("u:S3cret@host/", "u:***@host/"),
            ("ftp://host/a@b", "ftp://host/a@b"),
            ("ftp://u@host/", "ftp://u@host/"),
        ] {
            assert_eq!(redacted(given), shown, "{given}");
        }
    }
}
