//! A data connection, plain or TLS (client or server side), as one `Read + Write` type.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// A data connection's socket with a read buffer under TLS. rustls reads records from its
/// transport 4 KiB at a time (`READ_SIZE` in rustls 0.23's deframer); through this buffer
/// each socket read takes up to 64 KiB, so a protected upload costs a syscall per 64 KiB,
/// not per 4 KiB. Writes go straight to the socket.
pub(crate) struct BufferedTcp(io::BufReader<TcpStream>);

impl BufferedTcp {
    /// Wraps `tcp`.
    pub(crate) fn new(tcp: TcpStream) -> BufferedTcp {
        BufferedTcp(io::BufReader::with_capacity(64 * 1024, tcp))
    }

    fn tcp(&self) -> &TcpStream {
        self.0.get_ref()
    }
}

impl Read for BufferedTcp {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for BufferedTcp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.get_mut().write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.get_mut().write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.get_mut().flush()
    }
}

/// Plain TCP, or TLS over TCP.
pub(crate) enum DataStream {
    Plain(TcpStream),
    Client(Box<rustls::StreamOwned<rustls::ClientConnection, BufferedTcp>>),
    Server(Box<rustls::StreamOwned<rustls::ServerConnection, BufferedTcp>>),
}

impl DataStream {
    fn tcp(&self) -> &TcpStream {
        match self {
            DataStream::Plain(t) => t,
            DataStream::Client(s) => s.sock.tcp(),
            DataStream::Server(s) => s.sock.tcp(),
        }
    }

    /// Bounds every read and write (a stalled peer becomes a `TimedOut` error).
    pub(crate) fn set_timeouts(&self, limit: Duration) -> io::Result<()> {
        let limit = Some(limit.max(Duration::from_millis(1)));
        self.tcp().set_read_timeout(limit)?;
        self.tcp().set_write_timeout(limit)
    }

    /// Sends close_notify (under TLS) and FIN: the end of what this side sends.
    pub(crate) fn finish_sending(&mut self) -> io::Result<()> {
        match self {
            DataStream::Plain(_) => {}
            DataStream::Client(s) => {
                s.conn.send_close_notify();
                s.flush()?;
            }
            DataStream::Server(s) => {
                s.conn.send_close_notify();
                s.flush()?;
            }
        }
        self.tcp().shutdown(Shutdown::Write)
    }

    /// Ends an upload: close_notify and FIN, the end of the data that the final reply
    /// then confirms. Then reads to the server's end for at most `wait`, so that a TLS 1.3
    /// ticket sent there is taken in for the next transfer. How the server ends its side
    /// (close_notify or a bare FIN) does not matter: our data went out whole, and the
    /// final reply says whether it arrived (curl and lftp judge uploads so too). Returns
    /// whether our end went out cleanly.
    pub(crate) fn end_upload(&mut self, wait: Duration) -> bool {
        if self.finish_sending().is_err() {
            return false;
        }
        let deadline = Instant::now() + wait;
        let mut buf = vec![0u8; 16 * 1024];
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let _ = self
                .tcp()
                .set_read_timeout(Some(left.max(Duration::from_millis(1))));
            if !matches!(self.read(&mut buf), Ok(1..)) {
                break;
            }
        }
        true
    }

    /// Closes our end of a download once the server's end has arrived: close_notify
    /// (TLS) and FIN, within `wait`. Servers that end TLS with a two-way shutdown (vsftpd)
    /// send the final reply only after this.
    pub(crate) fn end_download(&mut self, wait: Duration) {
        let _ = self.tcp().set_write_timeout(Some(wait));
        let _ = self.finish_sending();
    }
}

impl Read for DataStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            DataStream::Plain(s) => s.read(buf),
            DataStream::Client(s) => s.read(buf),
            DataStream::Server(s) => s.read(buf),
        }
    }
}

impl Write for DataStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            DataStream::Plain(s) => s.write(buf),
            DataStream::Client(s) => s.write(buf),
            DataStream::Server(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            DataStream::Plain(s) => s.flush(),
            DataStream::Client(s) => s.flush(),
            DataStream::Server(s) => s.flush(),
        }
    }
}
