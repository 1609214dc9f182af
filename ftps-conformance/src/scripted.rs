//! A small scripted FTPS server, to test how clients cope with the ways real servers end
//! data connections.
//!
//! Servers differ in the order of three things at the end of a transfer: their TLS
//! close_notify on the data connection, closing its TCP connection, and the final reply
//! on the control connection. vsftpd, for one, sends close_notify and then *waits* for
//! the client's close_notify (or FIN) before it sends 226; a client that waits for 226
//! with the data connection still open hangs. [`ScriptedServer`] ends every data
//! connection the way its [`Ending`] says, so one test can run each client operation
//! against each order.
//!
//! The server runs on std threads and rustls: explicit FTPS only (`AUTH TLS`), on
//! 127.0.0.1, any user name and password. It serves [`FILE`] ([`file_content`]), a fixed
//! listing ([`LISTING_NAMES`]) for NLST and LIST, and keeps uploads in memory
//! ([`ScriptedServer::upload`]). Control and data connections share one
//! `rustls::ServerConfig`, so data connections can resume the control connection's TLS
//! session as FTPS clients do (the server does not insist on it; [`ScriptedServer::log`]
//! says which ones did). Every wait is bounded: a client that never closes shows up as a
//! 426 reply, not a hung test.
//!
//! It can also be hostile, for the clients' security tests ([`Listing`]): a listing that
//! never ends, or names and refusals that carry terminal escape sequences. With
//! [`ScriptedServer::set_hash`] it offers HASH (draft-bryan-ftpext-hash-02) for [`FILE`],
//! truthfully or with a wrong digest ([`HashAnswers`]).

use ftps_backend::client::ClientOptions;
use ftps_proto::ProtectionLevel;
use ftps_proto::hash::HashAlgorithm;
use rustls::{ServerConnection, StreamOwned};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How the server ends each data connection.
///
/// For downloads (RETR) and listings (NLST, LIST) the server sends the data first; for
/// uploads (STOR) it first reads the client's data to its end (close_notify under TLS,
/// FIN in clear), and an upload that ends without close_notify under TLS is refused with
/// 426 and not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ending {
    /// The common order: close_notify (under TLS) and FIN on the data connection, then
    /// 226 at once.
    CloseThenReply,
    /// vsftpd's order: close_notify (a FIN in clear), then nothing until the client has
    /// closed its side (its close_notify, or its FIN); only then FIN and 226. If the client
    /// has not closed within [`CLIENT_CLOSE_WAIT`], 426 instead. For uploads the client
    /// closes first anyway: the server waits for its close_notify *and* its FIN (within
    /// the same bound, else 426), then sends close_notify, FIN and 226.
    WaitForClientClose,
    /// 226 on the control connection first; then, after [`REPLY_FIRST_DELAY`],
    /// close_notify and FIN on the data connection.
    ReplyBeforeClose,
    /// A bare TCP close (FIN) without close_notify, then 226. For a download the client
    /// cannot tell this from a truncation; for an upload the client's own close_notify
    /// already ended the data and 226 confirms it. In clear (PROT C) this is the same as
    /// [`Ending::CloseThenReply`].
    NoCloseNotify,
}

impl Ending {
    /// Every ending.
    pub const ALL: [Ending; 4] = [
        Ending::CloseThenReply,
        Ending::WaitForClientClose,
        Ending::ReplyBeforeClose,
        Ending::NoCloseNotify,
    ];

    /// A short name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Ending::CloseThenReply => "close-then-reply",
            Ending::WaitForClientClose => "wait-for-client-close",
            Ending::ReplyBeforeClose => "reply-before-close",
            Ending::NoCloseNotify => "no-close-notify",
        }
    }
}

/// How long [`Ending::WaitForClientClose`] waits for the client to close its side.
pub const CLIENT_CLOSE_WAIT: Duration = Duration::from_secs(3);

/// How long [`Ending::ReplyBeforeClose`] keeps the data connection open after 226.
pub const REPLY_FIRST_DELAY: Duration = Duration::from_millis(200);

/// The file RETR serves (and SIZE knows).
pub const FILE: &str = "file.bin";

/// The names NLST lists, and LIST lists in `ls -l` form.
pub const LISTING_NAMES: [&str; 3] = [FILE, "docs", "notes.txt"];

/// What LIST and NLST send, and how refusals read (see [`ScriptedServer::set_listing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listing {
    /// [`LISTING_NAMES`] (in `ls -l` form for LIST): the default.
    Fixed,
    /// A listing without end: numbered `ls -l` lines for LIST, names for NLST, as fast as
    /// the data connection takes them, until the client stops taking them (its data
    /// connection closes or fails, or takes no byte for 10 s: then 426) or `cap` bytes
    /// went out (then the transfer ends as the [`Ending`] says). The bytes the data
    /// connection took are counted ([`ScriptedServer::listing_sent`]). `cap` keeps a test
    /// of a client that does not stop bounded.
    Endless {
        /// The most bytes sent.
        cap: u64,
    },
    /// [`HOSTILE_NAMES`], names that carry terminal escape sequences and other control
    /// characters; and RETR and SIZE of anything but [`FILE`] are refused with
    /// [`HOSTILE_REFUSAL`].
    Hostile,
    /// [`Listing::Fixed`]'s listings; RETR and SIZE of anything but [`FILE`] answered
    /// with [`HOSTILE_BUSY`], a transient refusal (a client may retry it) whose text holds
    /// escape sequences, a line that imitates a client's own message, and a literal
    /// backslash escape.
    HostileBusy,
    /// Listings of [`FILE`] alone; its RETR answered `450` (busy, try later), a transient
    /// refusal, every time.
    BusyFile,
}

/// Whether the server offers HASH (draft-bryan-ftpext-hash-02), and how it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAnswers {
    /// No HASH in FEAT; HASH is 502 (the default, as vsftpd and Pure-FTPd).
    None,
    /// FEAT offers `HASH SHA-1;SHA-256*;MD5`; HASH of [`FILE`] gives its true digest.
    True,
    /// As [`HashAnswers::True`], but every digest has its last hex digit changed: a server
    /// (or a path to it) that lies, or a file that differs from what was sent.
    Lying,
}

/// The names of [`Listing::Hostile`]: an OSC that sets the terminal's title, a CSI that
/// clears the screen, an OSC 8 hyperlink, BEL, DEL, a CSI as one C1 character (U+009B),
/// BS, and a bare CR.
pub const HOSTILE_NAMES: [&str; 8] = [
    "\x1b]0;owned\x07title.txt",
    "\x1b[2J\x1b[Hclear.txt",
    "\x1b]8;;http://evil.example/\x1b\\link\x1b]8;;\x1b\\.txt",
    "bell\x07.txt",
    "del\x7f.txt",
    "c1\u{9b}31mcsi.txt",
    "back\x08space.txt",
    "carriage\rreturn.txt",
];

/// The refusal of [`Listing::Hostile`]: a 550 whose text sets the terminal's title and
/// its colour.
pub const HOSTILE_REFUSAL: &str = "550 \x1b]0;owned\x07no such \x1b[31mfile\x1b[0m";

/// The refusal of [`Listing::HostileBusy`]: a multi-line 450 whose text sets the
/// terminal's title, whose middle line reads as the `ftps` client's own message, and whose
/// last line holds the four characters `\xE9` (which must not pass for an escape of the
/// byte 0xE9).
pub const HOSTILE_BUSY: &str =
    "450-\x1b]0;owned\x07busy\nftps: forged: a line of the server's\n450 try \\xE9 later";

/// How long a data connection may take to come, and a transfer may go without a byte.
const DATA_WAIT: Duration = Duration::from_secs(10);

/// How long a control connection may stay idle before the server drops it.
const IDLE: Duration = Duration::from_secs(60);

/// How often blocked reads look at the stop flag.
const POLL: Duration = Duration::from_millis(100);

/// The longest a server runs, even if never dropped.
const LIFETIME: Duration = Duration::from_secs(600);

/// The largest upload kept.
const MAX_UPLOAD: usize = 16 << 20;

/// The content of [`FILE`]: 300 KB of patterned bytes.
pub fn file_content() -> Vec<u8> {
    (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn listing_long() -> String {
    let mut out = String::new();
    for name in LISTING_NAMES {
        let line = match name {
            FILE => format!(
                "-rw-r--r--    1 1000     1000       {:>7} Jan 01 12:00 {name}\r\n",
                file_content().len()
            ),
            "docs" => {
                format!("drwxr-xr-x    2 1000     1000          4096 Jan 01 12:00 {name}\r\n")
            }
            _ => format!("-rw-r--r--    1 1000     1000            42 Mar 15  2024 {name}\r\n"),
        };
        out.push_str(&line);
    }
    out
}

/// The `LIST` line of [`FILE`] alone.
fn file_line() -> String {
    format!(
        "-rw-r--r--    1 1000     1000       {:>7} Jan 01 12:00 {FILE}\r\n",
        file_content().len()
    )
}

fn listing_names() -> String {
    LISTING_NAMES.iter().map(|n| format!("{n}\r\n")).collect()
}

fn hostile_long() -> String {
    HOSTILE_NAMES
        .iter()
        .map(|n| format!("-rw-r--r--    1 1000     1000            42 Mar 15  2024 {n}\r\n"))
        .collect()
}

fn hostile_names() -> String {
    HOSTILE_NAMES.iter().map(|n| format!("{n}\r\n")).collect()
}

/// Line `n` of an endless listing.
fn endless_line(long: bool, n: u64, out: &mut Vec<u8>) {
    let line = if long {
        format!("-rw-r--r--    1 1000     1000          4096 Jan 01 12:00 file-{n:09}\r\n")
    } else {
        format!("file-{n:09}\r\n")
    };
    out.extend_from_slice(line.as_bytes());
}

/// What the sessions share.
struct Shared {
    tls: Arc<rustls::ServerConfig>,
    ending: Mutex<Ending>,
    listing: Mutex<Listing>,
    hash: Mutex<HashAnswers>,
    /// What the data connection of the last endless listing took.
    listing_sent: AtomicU64,
    /// Downloads send this many bytes, then nothing more (a stalled server), if set.
    stall_after: Mutex<Option<usize>>,
    uploads: Mutex<HashMap<String, Vec<u8>>>,
    log: Mutex<Vec<String>>,
    stop: AtomicBool,
    born: Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain values: a panic elsewhere cannot leave them inconsistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn note(&self, line: impl Into<String>) {
        let line = format!("{:>6} ms {}", self.born.elapsed().as_millis(), line.into());
        lock(&self.log).push(line);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.born.elapsed() > LIFETIME
    }
}

/// A running scripted server; it stops when dropped.
pub struct ScriptedServer {
    addr: SocketAddr,
    cert_pem: String,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ScriptedServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedServer")
            .field("addr", &self.addr)
            .field("ending", &self.ending())
            .finish_non_exhaustive()
    }
}

impl ScriptedServer {
    /// Starts a server on 127.0.0.1 (a port of its own) with a fresh self-signed
    /// certificate for `localhost` and 127.0.0.1, ending data connections as `ending` says.
    pub fn start(ending: Ending) -> io::Result<ScriptedServer> {
        let invalid = |e: &dyn std::fmt::Display| io::Error::other(e.to_string());
        let key = rcgen::KeyPair::generate().map_err(|e| invalid(&e))?;
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned()]).map_err(|e| invalid(&e))?;
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
        let cert = params.self_signed(&key).map_err(|e| invalid(&e))?;
        let tls = ftps_proto::tls::server_config_from_pem(
            cert.pem().as_bytes(),
            key.serialize_pem().as_bytes(),
        )
        .map_err(|e| invalid(&e))?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            tls: Arc::new(tls),
            ending: Mutex::new(ending),
            listing: Mutex::new(Listing::Fixed),
            hash: Mutex::new(HashAnswers::None),
            listing_sent: AtomicU64::new(0),
            stall_after: Mutex::new(None),
            uploads: Mutex::new(HashMap::new()),
            log: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            born: Instant::now(),
        });
        let acceptor = shared.clone();
        std::thread::Builder::new()
            .name("scripted-accept".into())
            .spawn(move || accept_loop(listener, acceptor))?;
        Ok(ScriptedServer {
            addr,
            cert_pem: cert.pem(),
            shared,
        })
    }

    /// The control connection's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The ending of the data connections from now on.
    pub fn set_ending(&self, ending: Ending) {
        *lock(&self.shared.ending) = ending;
        self.shared.note(format!("-- ending now {}", ending.name()));
    }

    /// The ending of the data connections.
    pub fn ending(&self) -> Ending {
        *lock(&self.shared.ending)
    }

    /// Makes downloads stall: after `bytes`, the data connection stays open and silent
    /// until the client gives up (or `None`: downloads are whole again).
    pub fn set_stall_after(&self, bytes: Option<usize>) {
        *lock(&self.shared.stall_after) = bytes;
        self.shared
            .note(format!("-- downloads stall after {bytes:?} bytes"));
    }

    /// What LIST and NLST send from now on (and how refusals read).
    pub fn set_listing(&self, listing: Listing) {
        *lock(&self.shared.listing) = listing;
        self.shared.note(format!("-- listing now {listing:?}"));
    }

    /// Whether HASH is offered from now on, and how it answers.
    pub fn set_hash(&self, answers: HashAnswers) {
        *lock(&self.shared.hash) = answers;
        self.shared.note(format!("-- hash now {answers:?}"));
    }

    /// The bytes the data connection of the last [`Listing::Endless`] listing took (a
    /// client cannot have received more).
    pub fn listing_sent(&self) -> u64 {
        self.shared.listing_sent.load(Ordering::Relaxed)
    }

    /// What an upload to `name` stored, if it completed (226).
    pub fn upload(&self, name: &str) -> Option<Vec<u8>> {
        lock(&self.shared.uploads).get(name).cloned()
    }

    /// What happened, in order: commands (`>`), replies (`<`), and what each data
    /// connection did (`data:`), each with the milliseconds since the start.
    pub fn log(&self) -> Vec<String> {
        lock(&self.shared.log).clone()
    }

    /// The server's certificate (PEM), to trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A client TLS configuration trusting this server's certificate: TLS 1.3 and 1.2
    /// (1.3 is chosen), or TLS 1.2 only.
    pub fn client_tls(&self, tls12_only: bool) -> Arc<rustls::ClientConfig> {
        let roots = ftps_proto::tls::roots_from_pem(self.cert_pem.as_bytes())
            .expect("the server's own certificate parses");
        let config = if tls12_only {
            ftps_proto::tls::client_config_with_versions(roots, &[&rustls::version::TLS12])
        } else {
            ftps_proto::tls::client_config(roots)
        };
        Arc::new(config.expect("a client TLS configuration"))
    }

    /// Client options for this server: explicit TLS required, the given data protection,
    /// passive, this server's certificate trusted (see [`client_tls`](Self::client_tls)),
    /// host `127.0.0.1` (in the certificate), and 10 s reply and data timeouts.
    pub fn client_options(&self, protection: ProtectionLevel, tls12_only: bool) -> ClientOptions {
        let mut o = ClientOptions::new("127.0.0.1", self.addr.port(), "tester", "secret")
            .expect("credentials");
        o.tls = Some(self.client_tls(tls12_only));
        o.session.protection = protection;
        o.connect_timeout = Duration::from_secs(5);
        o.session.reply_timeout = Duration::from_secs(10);
        o.session.data_timeout = Duration::from_secs(10);
        o
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while !shared.stopped() {
        match listener.accept() {
            Ok((tcp, _)) => {
                let session = shared.clone();
                let spawned = std::thread::Builder::new()
                    .name("scripted-session".into())
                    .spawn(move || {
                        if let Err(e) = serve(tcp, &session) {
                            session.note(format!("-- session ended: {e}"));
                        }
                    });
                if let Err(e) = spawned {
                    shared.note(format!("-- cannot start a session: {e}"));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => {
                shared.note(format!("-- accept: {e}"));
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

// ----- the control connection -----------------------------------------------------------

enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
    Gone,
}

struct Control {
    conn: Conn,
    pending: Vec<u8>,
}

impl Control {
    fn tcp(&self) -> Option<&TcpStream> {
        match &self.conn {
            Conn::Plain(t) => Some(t),
            Conn::Tls(s) => Some(&s.sock),
            Conn::Gone => None,
        }
    }

    fn reply(&mut self, shared: &Shared, line: &str) -> io::Result<()> {
        shared.note(format!("< {}", line.lines().last().unwrap_or_default()));
        let bytes = format!("{}\r\n", line.replace('\n', "\r\n"));
        match &mut self.conn {
            Conn::Plain(t) => t.write_all(bytes.as_bytes()),
            Conn::Tls(s) => s.write_all(bytes.as_bytes()).and_then(|()| s.flush()),
            Conn::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// The next command line; `None` when the client closed, went idle, or the server
    /// stops.
    fn line(&mut self, shared: &Shared) -> io::Result<Option<String>> {
        let idle = Instant::now() + IDLE;
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line);
                return Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()));
            }
            if self.pending.len() > 4096 || shared.stopped() || Instant::now() > idle {
                return Ok(None);
            }
            let mut buf = [0u8; 4096];
            let read = match &mut self.conn {
                Conn::Plain(t) => t.read(&mut buf),
                Conn::Tls(s) => s.read(&mut buf),
                Conn::Gone => return Ok(None),
            };
            match read {
                Ok(0) => return Ok(None),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if timed_out(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn start_tls(&mut self, config: Arc<rustls::ServerConfig>) -> io::Result<()> {
        match std::mem::replace(&mut self.conn, Conn::Gone) {
            Conn::Plain(tcp) => {
                let conn = ServerConnection::new(config).map_err(io::Error::other)?;
                // The handshake runs on the first read (StreamOwned completes it).
                self.conn = Conn::Tls(Box::new(StreamOwned::new(conn, tcp)));
                Ok(())
            }
            other => {
                self.conn = other;
                Err(io::Error::other("TLS is already on"))
            }
        }
    }

    fn close(&mut self) {
        if let Conn::Tls(s) = &mut self.conn {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
        if let Some(t) = self.tcp() {
            let _ = t.shutdown(Shutdown::Both);
        }
        self.conn = Conn::Gone;
    }
}

/// One session's state.
struct Session {
    logged_in: bool,
    pbsz: bool,
    private: bool,
    tls: bool,
    /// The data connection being set up by the last EPSV/PASV.
    data: Option<Receiver<io::Result<Data>>>,
    /// The offset of the last REST, for the next RETR.
    rest: usize,
    /// OPTS HASH's selection.
    hash: HashAlgorithm,
}

fn serve(tcp: TcpStream, shared: &Shared) -> io::Result<()> {
    tcp.set_nonblocking(false)?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(POLL))?;
    tcp.set_write_timeout(Some(DATA_WAIT))?;
    let mut c = Control {
        conn: Conn::Plain(tcp),
        pending: Vec::new(),
    };
    let mut s = Session {
        logged_in: false,
        pbsz: false,
        private: false,
        tls: false,
        data: None,
        rest: 0,
        hash: HashAlgorithm::Sha256,
    };
    c.reply(shared, "220 scripted FTPS server ready")?;
    while let Some(line) = c.line(shared)? {
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.to_owned()),
            None => (line.to_ascii_uppercase(), String::new()),
        };
        let shown = if verb == "PASS" {
            "PASS ****"
        } else {
            line.as_str()
        };
        shared.note(format!("> {shown}"));
        let tls_needed = !s.tls && !matches!(verb.as_str(), "AUTH" | "FEAT" | "QUIT");
        let login_needed = !s.logged_in
            && !matches!(
                verb.as_str(),
                "AUTH" | "USER" | "PASS" | "FEAT" | "PBSZ" | "PROT" | "QUIT" | "OPTS"
            );
        if tls_needed {
            c.reply(shared, "530 AUTH TLS first")?;
            continue;
        }
        if login_needed {
            c.reply(shared, "530 log in first")?;
            continue;
        }
        match verb.as_str() {
            "AUTH" if arg.eq_ignore_ascii_case("TLS") && !s.tls => {
                c.reply(shared, "234 AUTH TLS successful")?;
                if !c.pending.is_empty() {
                    return Err(io::Error::other("plain bytes after AUTH TLS"));
                }
                c.start_tls(shared.tls.clone())?;
                s.tls = true;
            }
            "AUTH" => c.reply(shared, "504 only AUTH TLS")?,
            "USER" => c.reply(shared, "331 password please")?,
            "PASS" => {
                s.logged_in = true;
                c.reply(shared, "230 logged in")?;
            }
            "FEAT" => {
                let hash = match *lock(&shared.hash) {
                    HashAnswers::None => "",
                    _ => " HASH SHA-1;SHA-256*;MD5\n",
                };
                c.reply(
                    shared,
                    &format!("211-Features:\n EPSV\n PASV\n PBSZ\n PROT\n REST STREAM\n SIZE\n UTF8\n AUTH TLS\n{hash}211 End"),
                )?
            }
            "OPTS"
                if *lock(&shared.hash) != HashAnswers::None
                    && arg.to_ascii_uppercase().starts_with("HASH ") =>
            {
                match HashAlgorithm::from_name(&arg[5..]) {
                    Some(a) => {
                        s.hash = a;
                        c.reply(shared, &format!("200 {a}"))?
                    }
                    None => c.reply(shared, "501 unknown algorithm")?,
                }
            }
            "OPTS" => c.reply(shared, "200 OK")?,
            "HASH" if *lock(&shared.hash) != HashAnswers::None && strip(&arg) == FILE => {
                let mut hasher = ftps_backend::hash::Hasher::new(s.hash);
                let content = file_content();
                hasher.update(&content);
                let mut hex = hasher.finish_hex();
                if *lock(&shared.hash) == HashAnswers::Lying {
                    let last = if hex.ends_with('0') { "1" } else { "0" };
                    hex.pop();
                    hex.push_str(last);
                }
                let reply = format!("213 {} 0-{} {hex} {}", s.hash, content.len(), arg.trim());
                c.reply(shared, &reply)?
            }
            "HASH" if *lock(&shared.hash) != HashAnswers::None => {
                c.reply(shared, refusal(shared))?
            }
            "PBSZ" if arg.trim() == "0" => {
                s.pbsz = true;
                c.reply(shared, "200 PBSZ=0")?;
            }
            "PBSZ" => c.reply(shared, "501 PBSZ 0 only")?,
            "PROT" if !s.pbsz => c.reply(shared, "503 PBSZ first")?,
            "PROT" => match arg.trim().to_ascii_uppercase().as_str() {
                "P" => {
                    s.private = true;
                    c.reply(shared, "200 PROT now Private")?;
                }
                "C" => {
                    s.private = false;
                    c.reply(shared, "200 PROT now Clear")?;
                }
                _ => c.reply(shared, "504 PROT P or C only")?,
            },
            "TYPE" => c.reply(shared, "200 type set")?,
            "PWD" => c.reply(shared, "257 \"/\" is the current directory")?,
            "NOOP" => c.reply(shared, "200 NOOP ok")?,
            "SIZE" if strip(&arg) == FILE => {
                c.reply(shared, &format!("213 {}", file_content().len()))?
            }
            "SIZE" => c.reply(shared, refusal(shared))?,
            "EPSV" if arg.trim().eq_ignore_ascii_case("ALL") => {
                c.reply(shared, "200 EPSV ALL ok")?
            }
            "EPSV" | "PASV" => match listen_data(shared, s.private) {
                Ok((port, rx)) => {
                    s.data = Some(rx);
                    let reply = if verb == "EPSV" {
                        format!("229 Entering Extended Passive Mode (|||{port}|)")
                    } else {
                        format!(
                            "227 Entering Passive Mode (127,0,0,1,{},{})",
                            port >> 8,
                            port & 0xff
                        )
                    };
                    c.reply(shared, &reply)?;
                }
                Err(e) => c.reply(shared, &format!("425 cannot listen: {e}"))?,
            },
            "REST" => match arg.trim().parse() {
                Ok(n) => {
                    s.rest = n;
                    c.reply(shared, &format!("350 restarting at {n}"))?;
                }
                Err(_) => c.reply(shared, "501 bad offset")?,
            },
            "RETR" if strip(&arg) == FILE && *lock(&shared.listing) == Listing::BusyFile => {
                c.reply(shared, "450 the file is busy, try later")?
            }
            "RETR" if strip(&arg) == FILE => {
                let content = file_content();
                let from = std::mem::take(&mut s.rest);
                match content.get(from..) {
                    Some(rest) => send(&mut c, &mut s, shared, rest)?,
                    None => c.reply(shared, "554 offset past the end")?,
                }
            }
            "RETR" => c.reply(shared, refusal(shared))?,
            "NLST" | "LIST" => {
                let long = verb == "LIST";
                let listing = *lock(&shared.listing);
                let body = match listing {
                    Listing::Fixed | Listing::HostileBusy if long => listing_long(),
                    Listing::Fixed | Listing::HostileBusy => listing_names(),
                    Listing::BusyFile if long => file_line(),
                    Listing::BusyFile => format!("{FILE}\r\n"),
                    Listing::Hostile if long => hostile_long(),
                    Listing::Hostile => hostile_names(),
                    Listing::Endless { cap } => {
                        send_endless(&mut c, &mut s, shared, long, cap)?;
                        continue;
                    }
                };
                send(&mut c, &mut s, shared, body.as_bytes())?
            }
            // The transfer a client aborts has ended by the time ABOR is read (426, once
            // its data connection closed): nothing is left to abort (vsftpd's answer).
            "ABOR" => c.reply(shared, "225 no transfer to abort")?,
            "STOR" if !strip(&arg).is_empty() => receive(&mut c, &mut s, shared, strip(&arg))?,
            "QUIT" => {
                c.reply(shared, "221 goodbye")?;
                c.close();
                return Ok(());
            }
            _ => c.reply(shared, "502 not implemented")?,
        }
    }
    c.close();
    Ok(())
}

fn strip(path: &str) -> &str {
    path.trim().trim_start_matches('/')
}

/// A 550 for a missing file, hostile if the listing is.
fn refusal(shared: &Shared) -> &'static str {
    match *lock(&shared.listing) {
        Listing::Hostile => HOSTILE_REFUSAL,
        Listing::HostileBusy => HOSTILE_BUSY,
        _ => "550 no such file",
    }
}

// ----- data connections -----------------------------------------------------------------

enum Data {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Data {
    fn tcp(&self) -> &TcpStream {
        match self {
            Data::Plain(t) => t,
            Data::Tls(s) => &s.sock,
        }
    }

    fn is_tls(&self) -> bool {
        matches!(self, Data::Tls(_))
    }

    /// Sends close_notify (under TLS; nothing in clear).
    fn close_notify(&mut self) -> io::Result<()> {
        if let Data::Tls(s) = self {
            s.conn.send_close_notify();
            s.flush()?;
        }
        Ok(())
    }

    /// Sends FIN.
    fn fin(&self) {
        let _ = self.tcp().shutdown(Shutdown::Write);
    }

    /// Reads until the client ends what it sends: `Ok(true)` at close_notify (or FIN in
    /// clear), `Ok(false)` at a FIN without close_notify under TLS, an error on a reset or
    /// after `limit` without a byte.
    fn read_to_end(&mut self, into: &mut Vec<u8>, limit: Duration) -> io::Result<bool> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut deadline = Instant::now() + limit;
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "no data"))?;
            self.tcp()
                .set_read_timeout(Some(left.clamp(Duration::from_millis(1), POLL)))?;
            match self.read(&mut buf) {
                Ok(0) => return Ok(true),
                Ok(n) => {
                    if into.len() + n > MAX_UPLOAD {
                        return Err(io::Error::other("upload too large"));
                    }
                    into.extend_from_slice(&buf[..n]);
                    deadline = Instant::now() + limit;
                }
                Err(e) if timed_out(&e) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits (at most `limit`) for the client to close its side: its close_notify or its
    /// FIN, or a reset; what arrives before is ignored. How it closed, or `None` if it
    /// did not in time.
    fn client_closed(&mut self, limit: Duration) -> Option<&'static str> {
        let deadline = Instant::now() + limit;
        let mut buf = vec![0u8; 16 * 1024];
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let wait = left.clamp(Duration::from_millis(1), POLL);
            if self.tcp().set_read_timeout(Some(wait)).is_err() {
                return Some("socket error");
            }
            match self.read(&mut buf) {
                Ok(0) if self.is_tls() => return Some("close_notify"),
                Ok(0) => return Some("FIN"),
                Ok(_) => {}
                Err(e) if timed_out(&e) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Some("FIN without close_notify");
                }
                Err(_) => return Some("reset"),
            }
        }
        None
    }

    /// After the client's close_notify: waits (at most `limit`) for its FIN.
    fn client_fin(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 1024];
        let mut tcp = self.tcp();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let wait = left.clamp(Duration::from_millis(1), POLL);
            if tcp.set_read_timeout(Some(wait)).is_err() {
                return true;
            }
            match tcp.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if timed_out(&e) => {}
                Err(_) => return true,
            }
        }
        false
    }
}

impl Read for Data {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Data::Plain(t) => t.read(buf),
            Data::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Data {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Data::Plain(t) => t.write(buf),
            Data::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Data::Plain(t) => t.flush(),
            Data::Tls(s) => s.flush(),
        }
    }
}

/// Listens for one data connection; a thread accepts it (and runs the TLS handshake if
/// `private`) whenever it comes, before or after the transfer command.
fn listen_data(shared: &Shared, private: bool) -> io::Result<(u16, Receiver<io::Result<Data>>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let tls = private.then(|| shared.tls.clone());
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("scripted-data".into())
        .spawn(move || {
            let _ = tx.send(accept_data(&listener, tls));
        })?;
    Ok((port, rx))
}

fn accept_data(listener: &TcpListener, tls: Option<Arc<rustls::ServerConfig>>) -> io::Result<Data> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + DATA_WAIT;
    let tcp = loop {
        match listener.accept() {
            Ok((tcp, _)) => break tcp,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no data connection came",
                    ));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(e),
        }
    };
    tcp.set_nonblocking(false)?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(POLL))?;
    tcp.set_write_timeout(Some(DATA_WAIT))?;
    let Some(config) = tls else {
        return Ok(Data::Plain(tcp));
    };
    let mut conn = ServerConnection::new(config).map_err(io::Error::other)?;
    let mut tcp = tcp;
    while conn.is_handshaking() {
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "data TLS handshake timed out",
            ));
        }
        match conn.complete_io(&mut tcp) {
            Ok(_) => {}
            Err(e) if timed_out(&e) => {}
            Err(e) => return Err(e),
        }
    }
    // Hand out the TLS 1.3 tickets now, as servers do, not with the first data.
    while conn.wants_write() {
        conn.write_tls(&mut tcp)?;
    }
    Ok(Data::Tls(Box::new(StreamOwned::new(conn, tcp))))
}

/// The data connection of the last EPSV/PASV, once it is up; after 150 was sent.
fn take_data(c: &mut Control, s: &mut Session, shared: &Shared) -> io::Result<Option<Data>> {
    let Some(rx) = s.data.take() else {
        c.reply(shared, "425 use EPSV or PASV first")?;
        return Ok(None);
    };
    c.reply(shared, "150 opening data connection")?;
    match rx.recv_timeout(DATA_WAIT) {
        Ok(Ok(data)) => {
            if let Data::Tls(t) = &data {
                let how = match t.conn.handshake_kind() {
                    Some(rustls::HandshakeKind::Resumed) => "resumed",
                    _ => "NOT resumed (full handshake)",
                };
                let version = t.conn.protocol_version().map(|v| format!("{v:?}"));
                shared.note(format!(
                    "data: TLS {}, session {how}",
                    version.unwrap_or_default()
                ));
            } else {
                shared.note("data: clear");
            }
            Ok(Some(data))
        }
        Ok(Err(e)) => {
            c.reply(shared, &format!("425 data connection failed: {e}"))?;
            Ok(None)
        }
        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
            c.reply(shared, "425 no data connection")?;
            Ok(None)
        }
    }
}

/// RETR, NLST, LIST: sends `body`, then ends as the server's [`Ending`] says.
fn send(c: &mut Control, s: &mut Session, shared: &Shared, body: &[u8]) -> io::Result<()> {
    let Some(mut data) = take_data(c, s, shared)? else {
        return Ok(());
    };
    let ending = *lock(&shared.ending);
    let stall = *lock(&shared.stall_after);
    let body = stall.map_or(body, |n| &body[..n.min(body.len())]);
    if let Err(e) = data.write_all(body).and_then(|()| data.flush()) {
        shared.note(format!("data: sending failed: {e}"));
        return c.reply(shared, "426 data connection failed");
    }
    if stall.is_some() {
        // Silent, connection open, until the client closes it (bounded).
        shared.note(format!("data: sent {} bytes, then stalling", body.len()));
        let _ = data.tcp().set_read_timeout(Some(Duration::from_secs(30)));
        let mut sink = [0u8; 1024];
        while matches!(data.tcp().read(&mut sink), Ok(1..)) {}
        return c.reply(shared, "426 data connection closed by the client");
    }
    shared.note(format!(
        "data: sent {} bytes; ending {}",
        body.len(),
        ending.name()
    ));
    end_download(c, shared, data, ending)
}

/// [`Listing::Endless`]: sends numbered lines until the client stops taking them or
/// `cap` bytes went out, counting what the data connection took; at the cap, ends as the
/// server's [`Ending`] says.
fn send_endless(
    c: &mut Control,
    s: &mut Session,
    shared: &Shared,
    long: bool,
    cap: u64,
) -> io::Result<()> {
    shared.listing_sent.store(0, Ordering::Relaxed);
    let Some(mut data) = take_data(c, s, shared)? else {
        return Ok(());
    };
    let ending = *lock(&shared.ending);
    let mut chunk = Vec::with_capacity(ENDLESS_CHUNK + 128);
    let mut line = 0u64;
    let mut sent = 0u64;
    while sent < cap {
        chunk.clear();
        while chunk.len() < ENDLESS_CHUNK {
            line += 1;
            endless_line(long, line, &mut chunk);
        }
        let want = chunk
            .len()
            .min(usize::try_from(cap - sent).unwrap_or(usize::MAX));
        let mut at = 0;
        while at < want {
            match data.write(&chunk[at..want]) {
                Ok(0) => {
                    return endless_failed(c, shared, sent, &io::ErrorKind::WriteZero.into());
                }
                Ok(n) => {
                    at += n;
                    sent += n as u64;
                    shared.listing_sent.store(sent, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return endless_failed(c, shared, sent, &e),
            }
        }
    }
    if let Err(e) = data.flush() {
        return endless_failed(c, shared, sent, &e);
    }
    shared.note(format!(
        "data: sent {sent} bytes of an endless listing (the cap); ending {}",
        ending.name()
    ));
    end_download(c, shared, data, ending)
}

/// How much of an endless listing is made at a time.
const ENDLESS_CHUNK: usize = 64 * 1024;

fn endless_failed(c: &mut Control, shared: &Shared, sent: u64, e: &io::Error) -> io::Result<()> {
    shared.note(format!(
        "data: the endless listing stopped after {sent} bytes: {e}"
    ));
    c.reply(shared, "426 data connection failed")
}

/// Ends a download's data connection as `ending` says, with the final reply.
fn end_download(
    c: &mut Control,
    shared: &Shared,
    mut data: Data,
    ending: Ending,
) -> io::Result<()> {
    match ending {
        Ending::CloseThenReply => {
            let _ = data.close_notify();
            data.fin();
            drop(data);
            c.reply(shared, "226 transfer complete")
        }
        Ending::WaitForClientClose => {
            if data.is_tls() {
                let _ = data.close_notify();
            } else {
                data.fin();
            }
            let started = Instant::now();
            match data.client_closed(CLIENT_CLOSE_WAIT) {
                Some(how) => {
                    shared.note(format!(
                        "data: the client closed ({how}) after {} ms",
                        started.elapsed().as_millis()
                    ));
                    data.fin();
                    drop(data);
                    c.reply(shared, "226 transfer complete")
                }
                None => {
                    shared.note("data: the client did not close its side in time");
                    drop(data);
                    c.reply(
                        shared,
                        "426 the client did not close the data connection (waited 3 s)",
                    )
                }
            }
        }
        Ending::ReplyBeforeClose => {
            c.reply(shared, "226 transfer complete")?;
            std::thread::sleep(REPLY_FIRST_DELAY);
            let _ = data.close_notify();
            data.fin();
            shared.note("data: closed after the reply");
            Ok(())
        }
        Ending::NoCloseNotify => {
            data.fin();
            drop(data);
            c.reply(shared, "226 transfer complete")
        }
    }
}

/// STOR: reads the upload to its end, keeps it, then ends as the server's [`Ending`] says.
fn receive(c: &mut Control, s: &mut Session, shared: &Shared, name: &str) -> io::Result<()> {
    let Some(mut data) = take_data(c, s, shared)? else {
        return Ok(());
    };
    let ending = *lock(&shared.ending);
    let mut upload = Vec::new();
    match data.read_to_end(&mut upload, DATA_WAIT) {
        Ok(true) => {}
        Ok(false) => {
            shared.note(format!(
                "data: upload ended without close_notify after {} bytes",
                upload.len()
            ));
            return c.reply(shared, "426 upload ended without close_notify: refused");
        }
        Err(e) => {
            shared.note(format!(
                "data: upload failed after {} bytes: {e}",
                upload.len()
            ));
            return c.reply(shared, "426 upload failed");
        }
    }
    shared.note(format!(
        "data: received {} bytes to the client's end; ending {}",
        upload.len(),
        ending.name()
    ));
    let keep = |shared: &Shared, upload: Vec<u8>| {
        lock(&shared.uploads).insert(name.to_owned(), upload);
    };
    match ending {
        Ending::CloseThenReply => {
            let _ = data.close_notify();
            data.fin();
            drop(data);
            keep(shared, upload);
            c.reply(shared, "226 upload complete")
        }
        Ending::WaitForClientClose => {
            let started = Instant::now();
            if data.is_tls() && !data.client_fin(CLIENT_CLOSE_WAIT) {
                shared.note("data: the client did not send FIN after close_notify in time");
                drop(data);
                return c.reply(
                    shared,
                    "426 the client did not close the data connection (waited 3 s)",
                );
            }
            shared.note(format!(
                "data: the client closed after {} ms",
                started.elapsed().as_millis()
            ));
            let _ = data.close_notify();
            data.fin();
            drop(data);
            keep(shared, upload);
            c.reply(shared, "226 upload complete")
        }
        Ending::ReplyBeforeClose => {
            keep(shared, upload);
            c.reply(shared, "226 upload complete")?;
            std::thread::sleep(REPLY_FIRST_DELAY);
            let _ = data.close_notify();
            data.fin();
            shared.note("data: closed after the reply");
            Ok(())
        }
        Ending::NoCloseNotify => {
            data.fin();
            drop(data);
            keep(shared, upload);
            c.reply(shared, "226 upload complete")
        }
    }
}
