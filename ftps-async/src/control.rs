//! The control connection, as client and server drive it: a reader task turns socket
//! bytes into messages on a small channel, so that the driver waits on channels and its
//! timer only (never on a socket read it would have to race: on the blocking runtime a
//! read cannot be raced); the driver writes, and runs TLS itself on rustls' sans-IO
//! connection, fed the bytes the reader passes on.

use crate::runtime::{Runtime, timeout};
use futures_io::AsyncWrite;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// Bytes per read of the control connection. Small reads: what waits in the channel
/// ([`INBOX`] chunks) stays within a few KiB while the session is busy; the rest waits
/// in the kernel, whose buffers are small too (`ftps_backend::control_socket`).
pub(crate) const CONTROL_READ: usize = 1024;

/// Bytes per read of an idle control connection (see [`spawn_reader`]): a command
/// (or the TLS record that carries it) fits.
const CONTROL_READ_IDLE: usize = 128;

/// Chunks of control input that may wait for the driver.
pub(crate) const INBOX: usize = 4;

/// The driver's end of a control connection's [`inbox`].
pub(crate) type Inbox = futures_channel::mpsc::Receiver<Vec<u8>>;

/// The reader task's end of a control connection's [`inbox`].
pub(crate) type InboxSender = futures_channel::mpsc::Sender<Vec<u8>>;

/// The channel from a control connection's reader task to its driver: at most [`INBOX`]
/// chunks wait. futures-channel's channel is small while empty; `async_channel`'s took 768
/// bytes, 128 for its buffer and one listener, and idle sessions measured 0.83 KiB smaller
/// each with this one (issue 18).
pub(crate) fn inbox() -> (InboxSender, Inbox) {
    // futures-channel holds `buffer` messages plus one for each sender.
    futures_channel::mpsc::channel(INBOX - 1)
}

/// Sends `chunk` once there is room; false if the driver is gone.
async fn deliver(tx: &mut InboxSender, chunk: Vec<u8>) -> bool {
    futures_lite::future::poll_fn(|cx| tx.poll_ready(cx))
        .await
        .is_ok()
        && tx.start_send(chunk).is_ok()
}

/// Starts the reader task: every chunk read goes to `tx`; an empty chunk means the
/// connection ended. The task ends then, or when the driver drops the receiver.
pub(crate) fn spawn_reader<R: Runtime>(mut read: R::ReadHalf, mut tx: InboxSender) -> R::Task<()> {
    R::spawn(async move {
        // Waits with a small buffer in the task itself; a read that fills it is followed
        // by reads of CONTROL_READ until one comes back short. An idle session (the most
        // common kind) holds no 1 KiB buffer.
        let mut small = [0u8; CONTROL_READ_IDLE];
        let mut large = Vec::new();
        loop {
            let buf = match large.is_empty() {
                true => &mut small[..],
                false => &mut large[..],
            };
            let n = match read.read(buf).await {
                Ok(0) | Err(_) => {
                    deliver(&mut tx, Vec::new()).await;
                    return;
                }
                Ok(n) => n,
            };
            let (chunk, full) = (buf[..n].to_vec(), n == buf.len());
            match full {
                true if large.is_empty() => large = vec![0u8; CONTROL_READ],
                true => {}
                false => large = Vec::new(),
            }
            if !deliver(&mut tx, chunk).await {
                return;
            }
        }
    })
}

/// What woke a driver (see [`next`]).
pub(crate) enum Woke<E> {
    /// A chunk from the control reader (None or empty: the connection ended).
    Control(Option<Vec<u8>>),
    /// An event from a data task (None: none can come).
    Event(Option<E>),
    /// The deadline passed.
    Timeout,
    /// The server is draining (see [`Drain`](crate::drain::Drain)).
    Drain,
}

/// Waits for a driver's next input: a chunk of control input (if `reading`), an event
/// from its data tasks (if it has their channel), or its `deadline`. Channels and the
/// timer only, so that it works on every runtime.
pub(crate) async fn next<R: Runtime, E>(
    control: &mut Inbox,
    reading: bool,
    events: Option<&async_channel::Receiver<E>>,
    deadline: Option<Instant>,
    drain: Option<&crate::drain::Drain>,
) -> Woke<E> {
    use futures_lite::future::{or, pending};
    let read = async {
        match reading {
            true => Woke::Control(futures_lite::StreamExt::next(control).await),
            false => pending().await,
        }
    };
    let event = async {
        match events {
            Some(events) => Woke::Event(events.recv().await.ok()),
            None => pending().await,
        }
    };
    let timer = async {
        match deadline {
            Some(t) => {
                R::sleep_until(t).await;
                Woke::Timeout
            }
            None => pending().await,
        }
    };
    let drained = async {
        match drain {
            Some(d) => {
                d.started().await;
                Woke::Drain
            }
            None => pending().await,
        }
    };
    or(read, or(event, or(timer, drained))).await
}

/// A server's control handshake before its ClientHello (see [`Control::accept_tls`]).
#[cfg(feature = "server")]
struct Accepting {
    acceptor: rustls::server::Acceptor,
    session: ftps_proto::tls::SessionTls,
    /// Replies sent meanwhile, for the connection (see [`Control::send`]).
    held: Vec<u8>,
}

/// Reply bytes held during a server's handshake, at most: rustls' own bound on plaintext
/// written before a handshake's end (`ConnectionCommon::set_buffer_limit`'s default).
#[cfg(feature = "server")]
const HELD_MAX: usize = 64 * 1024;

/// What a chunk of control bytes did (see [`Control::take`]).
pub(crate) enum Taken {
    /// Clear text (if any) was added to the input.
    Input,
    /// It completed the TLS handshake; clear text (if any) was added to the input.
    Established,
    /// TLS failed during the handshake.
    HandshakeFailed(io::Error),
    /// The connection failed (TLS after the handshake, or a write).
    Failed,
}

/// The driver's side of the control connection: writes, and TLS.
pub(crate) struct Control<W> {
    write: W,
    tls: Option<rustls::Connection>,
    /// A server's handshake waiting for its ClientHello, which picks the configuration
    /// (see [`Control::accept_tls`]); `tls` is None meanwhile.
    #[cfg(feature = "server")]
    accepting: Option<Box<Accepting>>,
    /// A write failed or missed its deadline: the connection is over.
    failed: bool,
}

impl<W: AsyncWrite + Unpin + Send> Control<W> {
    /// Wraps the write half.
    pub(crate) fn new(write: W) -> Self {
        Control {
            write,
            tls: None,
            #[cfg(feature = "server")]
            accepting: None,
            failed: false,
        }
    }

    /// The TLS connection, if any.
    pub(crate) fn tls(&self) -> Option<&rustls::Connection> {
        self.tls.as_ref()
    }

    /// Whether a TLS handshake is under way.
    pub(crate) fn handshaking(&self) -> bool {
        #[cfg(feature = "server")]
        if self.accepting.is_some() {
            return true;
        }
        self.tls.as_ref().is_some_and(|c| c.is_handshaking())
    }

    /// Switches to TLS as a server: the client's ClientHello, when it has come, picks the
    /// configuration from `session` ([`SessionTls::control_for`]).
    ///
    /// [`SessionTls::control_for`]: ftps_proto::tls::SessionTls::control_for
    #[cfg(feature = "server")]
    pub(crate) fn accept_tls(&mut self, session: ftps_proto::tls::SessionTls) {
        self.tls = None;
        self.accepting = Some(Box::new(Accepting {
            acceptor: rustls::server::Acceptor::default(),
            session,
            held: Vec::new(),
        }));
    }

    /// Switches to TLS; a client's first flight goes out now (within `limit`).
    pub(crate) async fn start_tls<R: Runtime>(
        &mut self,
        conn: rustls::Connection,
        limit: Duration,
    ) -> io::Result<()> {
        self.tls = Some(conn);
        self.flush::<R>(limit).await
    }

    /// Sends application bytes (through TLS if on) within `limit`; a write that fails or
    /// misses it ends the connection (the replies queued after it must not each wait out
    /// the deadline again).
    pub(crate) async fn send<R: Runtime>(
        &mut self,
        bytes: &[u8],
        limit: Duration,
    ) -> io::Result<()> {
        if self.failed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        #[cfg(feature = "server")]
        if let Some(accepting) = self.accepting.as_mut() {
            // Replies before the handshake's end wait for it, as rustls holds them in a
            // connection under way: never in clear text after AUTH TLS (a timer's 421).
            if accepting.held.len() + bytes.len() > HELD_MAX {
                return Err(io::ErrorKind::WriteZero.into());
            }
            accepting.held.extend_from_slice(bytes);
            return Ok(());
        }
        match self.tls.as_mut() {
            Some(conn) => {
                conn.writer().write_all(bytes)?;
                self.flush::<R>(limit).await
            }
            None => {
                let write = self.write.write_all(bytes);
                let sent = timeout::<R, _>(limit, write).await;
                self.failed_unless(sent)
            }
        }
    }

    /// Takes bytes from the socket; appends the application bytes they carry to
    /// `plain`. What TLS answers (handshake messages) goes out within `limit`.
    async fn receive<R: Runtime>(
        &mut self,
        mut bytes: &[u8],
        plain: &mut Vec<u8>,
        limit: Duration,
    ) -> io::Result<()> {
        // A connection the ClientHello just made holds what came with the hello, to be
        // processed now even if nothing follows in `bytes`.
        #[cfg(feature = "server")]
        let mut fresh = match self.accepting.is_some() {
            true => self.hello::<R>(&mut bytes, limit).await?,
            false => false,
        };
        #[cfg(not(feature = "server"))]
        let mut fresh = false;
        let Some(conn) = self.tls.as_mut() else {
            #[cfg(feature = "server")]
            if self.accepting.is_some() {
                return Ok(());
            }
            plain.extend_from_slice(bytes);
            return Ok(());
        };
        while !bytes.is_empty() || std::mem::take(&mut fresh) {
            // rustls takes nothing more once the peer's close_notify is in: what follows
            // it ends the connection (a loop waiting for it to be taken would never end:
            // issue 14's review, F1).
            if !bytes.is_empty() && conn.read_tls(&mut bytes)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "bytes after the peer's close_notify",
                ));
            }
            let state = match conn.process_new_packets() {
                Ok(state) => state,
                Err(e) => {
                    // The alert rustls queued goes out if it can.
                    let _ = self.flush::<R>(limit).await;
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            };
            let n = state.plaintext_bytes_to_read();
            if n > 0 {
                let start = plain.len();
                plain.resize(start + n, 0);
                conn.reader().read_exact(&mut plain[start..])?;
            }
        }
        self.flush::<R>(limit).await
    }

    /// Feeds `bytes` to the server's acceptor; once the ClientHello is in, the connection
    /// it chose takes over, with the replies held meanwhile, and `true` comes back: what
    /// the acceptor took after the hello is in the connection, to be processed. `bytes` is
    /// left with what the acceptor did not take.
    #[cfg(feature = "server")]
    async fn hello<R: Runtime>(&mut self, bytes: &mut &[u8], limit: Duration) -> io::Result<bool> {
        let Some(accepting) = self.accepting.as_mut() else {
            return Ok(false);
        };
        while !bytes.is_empty() && accepting.acceptor.read_tls(bytes)? > 0 {}
        let refused = match accepting.acceptor.accept() {
            Ok(None) => return Ok(false),
            Ok(Some(accepted)) => {
                let config = accepting.session.control_for(&accepted.client_hello());
                match accepted.into_connection(config) {
                    Ok(conn) => {
                        let mut conn = rustls::Connection::from(conn);
                        conn.writer().write_all(&accepting.held)?;
                        self.accepting = None;
                        self.tls = Some(conn);
                        return Ok(true);
                    }
                    Err(refused) => refused,
                }
            }
            Err(refused) => refused,
        };
        self.accepting = None;
        let (e, mut alert) = refused;
        let mut out = Vec::new();
        let _ = alert.write_all(&mut out);
        let sent = timeout::<R, _>(limit, self.write.write_all(&out)).await;
        let _ = self.failed_unless(sent);
        Err(io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Takes a chunk from the reader: its clear text goes to `input`; what TLS answers
    /// goes out within `limit`.
    pub(crate) async fn take<R: Runtime>(
        &mut self,
        bytes: &[u8],
        input: &mut Vec<u8>,
        limit: Duration,
    ) -> Taken {
        let was_handshaking = self.handshaking();
        match self.receive::<R>(bytes, input, limit).await {
            Err(e) if was_handshaking => Taken::HandshakeFailed(e),
            Err(e) => {
                tracing::debug!("control connection: {e}");
                Taken::Failed
            }
            Ok(()) if was_handshaking && !self.handshaking() => Taken::Established,
            Ok(()) => Taken::Input,
        }
    }

    /// Ends TLS (close_notify, within `limit`) and goes on in clear text (CCC, REIN).
    pub(crate) async fn stop_tls<R: Runtime>(&mut self, limit: Duration) -> io::Result<()> {
        #[cfg(feature = "server")]
        {
            self.accepting = None;
        }
        if let Some(conn) = self.tls.as_mut() {
            conn.send_close_notify();
        }
        let flushed = self.flush::<R>(limit).await;
        self.tls = None;
        flushed
    }

    /// A write given up before its end (a drain that would not wait for it): the
    /// connection is over, and nothing more is written to it.
    pub(crate) fn abandon(&mut self) {
        self.failed = true;
    }

    /// Closes politely: close_notify under TLS, then FIN, within `limit`.
    pub(crate) async fn close<R: Runtime>(&mut self, limit: Duration) {
        if !self.failed {
            let _ = self.stop_tls::<R>(limit).await;
            let _ = timeout::<R, _>(limit, self.write.close()).await;
        }
    }

    /// Writes what TLS has to send.
    async fn flush<R: Runtime>(&mut self, limit: Duration) -> io::Result<()> {
        let mut out = Vec::new();
        if let Some(conn) = self.tls.as_mut() {
            while conn.wants_write() {
                conn.write_tls(&mut out)?;
            }
        }
        if out.is_empty() {
            return Ok(());
        }
        let write = self.write.write_all(&out);
        let sent = timeout::<R, _>(limit, write).await;
        self.failed_unless(sent)
    }

    fn failed_unless(
        &mut self,
        sent: Result<io::Result<()>, crate::runtime::Elapsed>,
    ) -> io::Result<()> {
        let result = match sent {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer did not take its reply in time",
            )),
        };
        if result.is_err() {
            self.failed = true;
        }
        result
    }
}
