//! A raw FTPS control connection for the hostile-input tests: it sends exactly the bytes
//! a test names (pipelined, malformed, oversized) and reads replies with the project's
//! decoder, optionally upgrading to TLS (AUTH TLS, or implicit).

use ftps_proto::{Reply, ReplyDecoder};
use rustls::pki_types::ServerName;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    Gone,
}

/// A raw control connection.
pub struct Raw {
    conn: Conn,
    decoder: ReplyDecoder,
    pending: Vec<u8>,
}

/// How long a read may wait.
const WAIT: Duration = Duration::from_secs(10);

impl Raw {
    /// Connects (plain) and reads the greeting.
    pub fn connect(addr: SocketAddr) -> io::Result<(Raw, Reply)> {
        Raw::over(TcpStream::connect_timeout(&addr, WAIT)?)
    }

    /// Takes over a connected stream (one made from another source address, say) and
    /// reads the greeting.
    pub fn over(tcp: TcpStream) -> io::Result<(Raw, Reply)> {
        tcp.set_read_timeout(Some(WAIT))?;
        let mut raw = Raw {
            conn: Conn::Plain(tcp),
            decoder: ReplyDecoder::default(),
            pending: Vec::new(),
        };
        let greeting = raw.reply()?;
        Ok((raw, greeting))
    }

    /// A second handle on a plain connection's socket (to write from another thread while
    /// this one reads).
    pub fn plain_socket(&self) -> io::Result<TcpStream> {
        match &self.conn {
            Conn::Plain(t) => t.try_clone(),
            _ => Err(io::ErrorKind::Unsupported.into()),
        }
    }

    /// Sends bytes as they are.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.conn {
            Conn::Plain(t) => t.write_all(bytes),
            Conn::Tls(s) => s.write_all(bytes).and_then(|()| s.flush()),
            Conn::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Sends one command line and returns the code of its final reply.
    pub fn cmd(&mut self, line: &str) -> io::Result<u16> {
        self.send_bytes(format!("{line}\r\n").as_bytes())?;
        Ok(self.reply()?.code().get())
    }

    /// The next final reply (preliminary 1xx replies are skipped).
    pub fn reply(&mut self) -> io::Result<Reply> {
        loop {
            let r = self.any_reply()?;
            if !r.code().is_preliminary() {
                return Ok(r);
            }
        }
    }

    /// The next reply, preliminary or not.
    pub fn any_reply(&mut self) -> io::Result<Reply> {
        let deadline = Instant::now() + WAIT;
        loop {
            let (used, reply) = self.decoder.decode(&self.pending);
            self.pending.drain(..used);
            if let Some(r) = reply {
                return r.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()));
            }
            if Instant::now() > deadline {
                return Err(io::ErrorKind::TimedOut.into());
            }
            let mut buf = [0u8; 4096];
            let n = match &mut self.conn {
                Conn::Plain(t) => t.read(&mut buf)?,
                Conn::Tls(s) => s.read(&mut buf)?,
                Conn::Gone => 0,
            };
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.pending.extend_from_slice(&buf[..n]);
        }
    }

    /// Sends TLS close_notify on the control connection and then, in a later segment,
    /// `after` in clear (a client ending TLS out of turn).
    pub fn close_notify_then(&mut self, after: &[u8]) -> io::Result<()> {
        let Conn::Tls(s) = &mut self.conn else {
            return Err(io::ErrorKind::InvalidInput.into());
        };
        s.conn.send_close_notify();
        s.flush()?;
        std::thread::sleep(Duration::from_millis(200));
        s.sock.write_all(after)
    }

    /// Whether the server closed the connection's socket (EOF or a reset) within
    /// `wait`, whatever bytes (TLS records included) came before.
    pub fn socket_closed_within(&mut self, wait: Duration) -> bool {
        match &mut self.conn {
            Conn::Plain(t) => read_until_closed(t, wait).is_some(),
            Conn::Tls(s) => read_until_closed(&mut s.sock, wait).is_some(),
            Conn::Gone => true,
        }
    }

    /// Everything the server sends on a plain connection's socket until it closes it
    /// (EOF or a reset), within `wait` (see [`read_until_closed`]).
    pub fn bytes_until_closed(&mut self, wait: Duration) -> Option<Vec<u8>> {
        match &mut self.conn {
            Conn::Plain(t) => read_until_closed(t, wait),
            _ => None,
        }
    }

    /// Whether the server closed the connection (EOF, or a reset) within the wait.
    pub fn closed(&mut self) -> bool {
        loop {
            match self.any_reply() {
                Ok(_) => continue,
                Err(e) => {
                    return e.kind() != io::ErrorKind::TimedOut
                        && e.kind() != io::ErrorKind::WouldBlock;
                }
            }
        }
    }

    /// Starts TLS on the connection (after a 234, or at once for implicit FTPS).
    pub fn start_tls(&mut self, config: Arc<rustls::ClientConfig>) -> io::Result<()> {
        let Conn::Plain(tcp) = std::mem::replace(&mut self.conn, Conn::Gone) else {
            return Err(io::ErrorKind::InvalidInput.into());
        };
        let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
        let mut conn = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
        let mut tcp = tcp;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp)?;
        }
        self.conn = Conn::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)));
        Ok(())
    }

    /// AUTH TLS and the handshake.
    pub fn auth_tls(&mut self, config: Arc<rustls::ClientConfig>) -> io::Result<()> {
        let code = self.cmd("AUTH TLS")?;
        if code != 234 {
            return Err(io::Error::other(format!("AUTH TLS got {code}")));
        }
        self.start_tls(config)
    }
}

/// Everything read from `tcp` until the peer closes it (EOF or a reset) within `wait`;
/// None if it was still open then.
pub fn read_until_closed(tcp: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let _ = tcp.set_read_timeout(Some(left.max(Duration::from_millis(1))));
        match tcp.read(&mut buf) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            Err(_) => return Some(got),
        }
    }
    None
}
