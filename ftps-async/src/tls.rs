//! [`TlsStream`]: TLS over any async byte stream, on rustls' own connection types.
//!
//! It reads from the socket only when it needs bytes: for the handshake while it is under
//! way, for application data when the caller reads and rustls holds none. Nothing is read
//! on speculation. That is what lets one driver run on every runtime, the blocking one
//! included: there a socket read blocks until bytes come, so a read made "in case" (as
//! futures-rustls' handshake makes after the last handshake message, waiting for
//! `Pending`) would hang the session. On an async runtime the behaviour is the same as
//! futures-rustls'.
//!
//! Reads from the socket go through a buffer of [`READ_BUFFER`] bytes: rustls takes
//! records 4 KiB at a time, and a protected upload then costs a syscall per 64 KiB, not
//! per 4 KiB.
//!
//! One exception to "nothing on speculation", after the handshake only: when the bytes
//! read end exactly where a record longer than [`WITHHOLD_ABOVE`] ends, the last byte is
//! kept back until the socket brings more (or ends). rustls (0.23) shrinks its receive
//! buffer to 4 KiB whenever it has taken every byte, then grows it back 4 KiB per read:
//! a peer that writes each 16 KiB record on its own (OpenSSL does: vsftpd, curl) met by a
//! reader faster than it would cost four reallocations and five passes per record. A
//! byte kept back keeps rustls' buffer from emptying. The record it ends waits for the
//! next bytes; on an FTP data connection something always follows the data (the
//! sender's close_notify, or its FIN), so the wait ends with the transfer's own end.

use futures_io::{AsyncRead, AsyncWrite};
use rustls::pki_types::ServerName;
use rustls::server::{Acceptor, ClientHello};
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig};
use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use crate::records::Records;

#[cfg(test)]
mod tests;

/// Bytes read from the socket at a time, at most.
pub(crate) const READ_BUFFER: usize = 64 * 1024;

/// A record whose body is longer than this, read to its last byte, has that byte kept
/// back from rustls until more comes (see the module's doc): rustls would take it in
/// several 4 KiB reads.
pub(crate) const WITHHOLD_ABOVE: usize = 4096;

/// A TLS connection (client or server side) over `T`.
pub(crate) struct TlsStream<T> {
    io: T,
    conn: Connection,
    /// Bytes read from `io` that rustls has not taken yet: `buf[start..end]`.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Record boundaries in everything read from `io`.
    records: Records,
    /// `buf[end - 1]` is kept from rustls until `io` brings more or ends.
    withheld: bool,
    /// `io` ended (rustls has been told).
    eof: bool,
    /// Our close_notify is queued.
    closing: bool,
}

impl<T: AsyncRead + AsyncWrite + Unpin> TlsStream<T> {
    /// The client side: handshakes with `name` under `config`.
    pub(crate) async fn connect(
        io: T,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<Self> {
        let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        let buf = vec![0u8; READ_BUFFER].into_boxed_slice();
        let mut stream = Self::new(io, conn.into(), buf, 0..0, Records::default());
        stream.handshake().await?;
        // A client's TLS connections made here are its data connections (the control
        // connection's handshake goes through the core).
        #[cfg(feature = "client")]
        if let Connection::Client(c) = &stream.conn {
            crate::trace::handshake("data", c);
        }
        Ok(stream)
    }

    /// The server side, the configuration chosen by `choose` from the ClientHello (what
    /// it asked for: SNI, ALPN, resumption).
    pub(crate) async fn accept_choosing(
        mut io: T,
        choose: impl FnOnce(&ClientHello<'_>) -> Arc<ServerConfig>,
    ) -> io::Result<Self> {
        let mut acceptor = Acceptor::default();
        // One buffer: what follows the ClientHello stays in it for the handshake.
        let mut buf = vec![0u8; READ_BUFFER].into_boxed_slice();
        let (mut start, mut end) = (0, 0);
        let mut records = Records::default();
        let accepted = loop {
            if end == buf.len() {
                // rustls took nothing from a full buffer: no ClientHello is this long.
                if start == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "ClientHello too long",
                    ));
                }
                buf.copy_within(start..end, 0);
                (start, end) = (0, end - start);
            }
            let n = read_some(&mut io, &mut buf[end..]).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the connection closed before its ClientHello",
                ));
            }
            records.scan(&buf[end..end + n]);
            end += n;
            let mut rest = &buf[start..end];
            while !rest.is_empty() && acceptor.read_tls(&mut rest)? > 0 {}
            start = end - rest.len();
            match acceptor.accept() {
                Ok(None) => {}
                Ok(Some(accepted)) => break accepted,
                Err((e, alert)) => return Err(refuse(&mut io, e, alert).await),
            }
        };
        let config = choose(&accepted.client_hello());
        match accepted.into_connection(config) {
            Ok(conn) => {
                let mut stream = Self::new(io, conn.into(), buf, start..end, records);
                // What came with the hello is in the connection already (an alert, say):
                // processed now, not with the socket's next bytes.
                if let Err(e) = stream.process() {
                    let _ = poll_fn(|cx| stream.poll_write_tls(cx)).await;
                    return Err(e);
                }
                stream.handshake().await?;
                Ok(stream)
            }
            Err((e, alert)) => Err(refuse(&mut io, e, alert).await),
        }
    }

    /// A stream over `io` whose first socket bytes, `buf[held]`, were read already
    /// (`records` has seen all that was read).
    fn new(
        io: T,
        conn: Connection,
        buf: Box<[u8]>,
        held: std::ops::Range<usize>,
        records: Records,
    ) -> Self {
        TlsStream {
            io,
            conn,
            buf,
            start: held.start,
            end: held.end,
            records,
            withheld: false,
            eof: false,
            closing: false,
        }
    }

    /// What a server side's handshake settled (version, resumption, ALPN, SNI); None on
    /// a client side.
    pub(crate) fn server_info(&self) -> Option<ftps_proto::boundary::TlsInfo> {
        match &self.conn {
            Connection::Server(c) => Some(ftps_proto::tls::handshake_info(c)),
            Connection::Client(_) => None,
        }
    }

    /// The protocol ALPN settled on, if any.
    #[cfg(feature = "client")]
    pub(crate) fn alpn(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// Sends our close_notify (RFC 8446 §6.1) and leaves the TCP stream open: a half
    /// close in TLS alone, after which the peer's bytes are still read. A later
    /// `poll_close` sends no second close_notify, only the FIN.
    #[cfg(feature = "client")]
    pub(crate) fn poll_close_notify(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.closing {
            self.closing = true;
            self.conn.send_close_notify();
        }
        ready!(self.poll_write_tls(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Runs the handshake to its end.
    async fn handshake(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_handshake(cx)).await
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.poll_write_tls(cx))?;
            if !self.conn.is_handshaking() {
                return Poll::Ready(Ok(()));
            }
            match ready!(self.poll_feed(cx)) {
                Ok(true) => {}
                Ok(false) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the connection closed during the TLS handshake",
                    )));
                }
                Err(e) => {
                    // The alert rustls queued goes out if the socket takes it now.
                    let _ = self.poll_write_tls(cx);
                    return Poll::Ready(Err(e));
                }
            }
        }
    }

    /// Gives rustls more bytes from the socket (reading it if none can be given). False
    /// once the socket has ended (rustls is told so).
    fn poll_feed(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        if self.eof {
            return Poll::Ready(Ok(false));
        }
        if self.start == self.end - usize::from(self.withheld) {
            // Nothing to give: read after what is kept back (moved to the front).
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
            let n = ready!(Pin::new(&mut self.io).poll_read(cx, &mut self.buf[self.end..]))?;
            if n == 0 {
                if self.withheld {
                    self.withheld = false;
                    self.give()?;
                }
                self.eof = true;
                // An empty read tells rustls the transport ended.
                self.conn.read_tls(&mut io::empty())?;
                self.process()?;
                return Poll::Ready(Ok(false));
            }
            self.records.scan(&self.buf[self.end..self.end + n]);
            self.end += n;
            self.withheld = !self.conn.is_handshaking()
                && self.end - self.start > 1
                && self
                    .records
                    .ended_record()
                    .is_some_and(|len| len > WITHHOLD_ABOVE);
        }
        self.give()?;
        Poll::Ready(Ok(true))
    }

    /// Gives rustls what it takes of the held bytes (all but a withheld one), and
    /// processes it.
    fn give(&mut self) -> io::Result<()> {
        let mut held = &self.buf[self.start..self.end - usize::from(self.withheld)];
        let taken = self.conn.read_tls(&mut held)?;
        if taken == 0 {
            return Err(io::Error::other("TLS: no room for more input"));
        }
        self.start += taken;
        self.process()
    }

    /// Processes what rustls took; a TLS error queues its alert, sent with what follows.
    fn process(&mut self) -> io::Result<()> {
        self.conn
            .process_new_packets()
            .map(drop)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Writes what rustls has to send.
    fn poll_write_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.conn.wants_write() {
            let mut out = Writer {
                io: &mut self.io,
                cx,
            };
            match self.conn.write_tls(&mut out) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.conn.is_handshaking() {
            ready!(this.poll_handshake(cx))?;
        }
        loop {
            match this.conn.reader().read(buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            let fed = ready!(this.poll_feed(cx));
            // Whatever rustls answers (a key update, an alert) goes out now.
            ready!(this.poll_write_tls(cx))?;
            if !fed? {
                // The end, told to rustls: the next read says how it ended.
                return Poll::Ready(match this.conn.reader().read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        Err(io::ErrorKind::UnexpectedEof.into())
                    }
                    other => other,
                });
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.conn.is_handshaking() {
            ready!(this.poll_handshake(cx))?;
        }
        loop {
            let n = this.conn.writer().write(buf)?;
            match this.poll_write_tls(cx) {
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                // Taken by rustls: it goes out with the next write or flush.
                Poll::Pending if n > 0 => return Poll::Ready(Ok(n)),
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) if n > 0 || buf.is_empty() => return Poll::Ready(Ok(n)),
                Poll::Ready(Ok(())) => {}
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_tls(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.closing {
            this.closing = true;
            this.conn.send_close_notify();
        }
        ready!(this.poll_write_tls(cx))?;
        Pin::new(&mut this.io).poll_close(cx)
    }
}

/// `std::io::Write` over an async writer inside a poll: `Pending` becomes `WouldBlock`.
struct Writer<'a, 'b, T> {
    io: &'a mut T,
    cx: &'a mut Context<'b>,
}

impl<T: AsyncWrite + Unpin> Write for Writer<'_, '_, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.io).poll_write(self.cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match Pin::new(&mut *self.io).poll_write_vectored(self.cx, bufs) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Sends the alert of a refused ClientHello (if the socket takes it) and gives the error.
async fn refuse<T: AsyncWrite + Unpin>(
    io: &mut T,
    e: rustls::Error,
    mut alert: rustls::server::AcceptedAlert,
) -> io::Error {
    let mut out = Vec::new();
    let _ = alert.write_all(&mut out);
    let _ = write_all(io, &out).await;
    io::Error::new(io::ErrorKind::InvalidData, e)
}

async fn read_some<T: AsyncRead + Unpin>(io: &mut T, buf: &mut [u8]) -> io::Result<usize> {
    poll_fn(|cx| Pin::new(&mut *io).poll_read(cx, buf)).await
}

async fn write_all<T: AsyncWrite + Unpin>(io: &mut T, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        let n = poll_fn(|cx| Pin::new(&mut *io).poll_write(cx, bytes)).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
    }
    Ok(())
}
