//! A data connection, plain or TLS (client or server side), as one `Read + Write` type.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

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

    /// Whether TLS protects the connection.
    pub(crate) fn is_tls(&self) -> bool {
        !matches!(self, DataStream::Plain(_))
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

    /// Reads to the peer's end (bounded by the timeouts): after an upload, the server's
    /// close_notify confirms it, and a TLS 1.3 ticket it sent is taken in. Returns whether
    /// the end was clean.
    pub(crate) fn drain_to_end(&mut self) -> bool {
        let tls = self.is_tls();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match self.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(_) => return !tls,
            }
        }
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
