//! The control connection of a blocking session. A reader thread turns socket bytes into
//! messages on the session's channel, so the session thread waits on one channel for
//! everything (control input, data-connection events, its timer); the session thread
//! writes, and drives TLS itself — rustls is sans-IO, so the reader thread never touches
//! it.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::time::Duration;

/// The session side of the control connection.
pub(crate) struct Control {
    tcp: TcpStream,
    tls: Option<rustls::Connection>,
    /// A write failed (or missed its deadline): the connection is over.
    failed: bool,
}

impl Control {
    /// Wraps a control connection whose writes may block for at most `write_timeout` (a
    /// peer that does not read gets its session closed).
    pub(crate) fn new(tcp: TcpStream, write_timeout: Duration) -> io::Result<Control> {
        tcp.set_nodelay(true)?;
        tcp.set_write_timeout(Some(write_timeout.max(Duration::from_millis(1))))?;
        Ok(Control {
            tcp,
            tls: None,
            failed: false,
        })
    }

    /// Starts the reader thread: every chunk read goes to `tx` through `wrap`; an empty
    /// chunk means the connection closed.
    pub(crate) fn spawn_reader<M: Send + 'static>(
        &self,
        tx: SyncSender<M>,
        wrap: fn(Vec<u8>) -> M,
    ) -> io::Result<()> {
        Self::spawn_reader_on(Arc::new(self.tcp.try_clone()?), tx, wrap)
    }

    /// [`spawn_reader`](Self::spawn_reader) on `reader`, a clone of this connection's
    /// socket that others may hold too (to shut it down from outside: eviction).
    pub(crate) fn spawn_reader_on<M: Send + 'static>(
        reader: Arc<TcpStream>,
        tx: SyncSender<M>,
        wrap: fn(Vec<u8>) -> M,
    ) -> io::Result<()> {
        std::thread::Builder::new()
            .name("ftps-control-reader".into())
            .spawn(move || {
                // Small reads: what waits in the session's channel (64 messages) stays
                // within 64 KiB while the session is busy (a peer that pipelines and does
                // not read made it hold 1 MiB a session); the rest waits in the kernel.
                let mut buf = vec![0u8; 1024];
                loop {
                    match (&*reader).read(&mut buf) {
                        Ok(0) | Err(_) => {
                            let _ = tx.send(wrap(Vec::new()));
                            return;
                        }
                        Ok(n) => {
                            if tx.send(wrap(buf[..n].to_vec())).is_err() {
                                return;
                            }
                        }
                    }
                }
            })?;
        Ok(())
    }

    /// Switches to TLS (the first flight, for a client, goes out now).
    pub(crate) fn start_tls(&mut self, conn: rustls::Connection) -> io::Result<()> {
        self.tls = Some(conn);
        self.flush_tls()
    }

    /// The TLS connection, if any.
    pub(crate) fn tls(&self) -> Option<&rustls::Connection> {
        self.tls.as_ref()
    }

    /// Whether a TLS handshake is under way.
    pub(crate) fn handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|c| c.is_handshaking())
    }

    /// Sends application bytes (through TLS if on).
    pub(crate) fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.failed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let sent = match self.tls.as_mut() {
            Some(conn) => conn
                .writer()
                .write_all(bytes)
                .and_then(|()| self.flush_tls()),
            None => self.tcp.write_all(bytes),
        };
        if sent.is_err() {
            // A write that failed or missed its deadline ends the connection: replies
            // still queued must not each wait out the deadline again.
            self.failed = true;
            let _ = self.tcp.shutdown(Shutdown::Both);
        }
        sent
    }

    /// Takes bytes from the socket; appends the application bytes they carry to `plain`.
    pub(crate) fn receive(&mut self, mut bytes: &[u8], plain: &mut Vec<u8>) -> io::Result<()> {
        let Some(conn) = self.tls.as_mut() else {
            plain.extend_from_slice(bytes);
            return Ok(());
        };
        while !bytes.is_empty() {
            conn.read_tls(&mut bytes)?;
            let state = conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let n = state.plaintext_bytes_to_read();
            if n > 0 {
                let start = plain.len();
                plain.resize(start + n, 0);
                conn.reader().read_exact(&mut plain[start..])?;
            }
        }
        self.flush_tls()
    }

    /// Ends TLS (close_notify) and goes on in clear text (CCC, REIN).
    pub(crate) fn stop_tls(&mut self) {
        if let Some(conn) = self.tls.as_mut() {
            conn.send_close_notify();
            let _ = self.flush_tls();
        }
        self.tls = None;
    }

    /// Closes politely (close_notify under TLS) and ends the reader thread.
    pub(crate) fn close(&mut self) {
        self.stop_tls();
        let _ = self.tcp.shutdown(Shutdown::Both);
    }

    fn flush_tls(&mut self) -> io::Result<()> {
        if let Some(conn) = self.tls.as_mut() {
            while conn.wants_write() {
                conn.write_tls(&mut self.tcp)?;
            }
        }
        Ok(())
    }

    /// The socket's addresses: (local, peer).
    pub(crate) fn addrs(&self) -> io::Result<(std::net::SocketAddr, std::net::SocketAddr)> {
        Ok((self.tcp.local_addr()?, self.tcp.peer_addr()?))
    }
}
