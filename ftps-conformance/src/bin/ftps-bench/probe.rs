//! The ceilings of the moment: the same bytes through a plain loopback TCP connection,
//! through rustls over one, and into a new file beside the servers' files, in this
//! process, so every transfer can be read against them.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Instant;

type Fail = Box<dyn std::error::Error>;

const CHUNK: usize = 256 * 1024;

/// Sends `size` bytes over loopback TCP, 256 KiB per write; returns seconds.
pub(crate) fn tcp(size: u64) -> Result<f64, Fail> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let sender = std::thread::spawn(move || -> std::io::Result<()> {
        let mut s = TcpStream::connect(addr)?;
        send(&mut s, size)
    });
    let (mut r, _) = listener.accept()?;
    timed_receive(&mut r, sender, size)
}

/// Sends `size` bytes through rustls (TLS 1.3, the default suites, both ends in this
/// process) over loopback TCP; returns seconds, the handshake excluded.
pub(crate) fn rustls(size: u64, cert_pem: &[u8], key_pem: &[u8]) -> Result<f64, Fail> {
    let server_config = Arc::new(ftps_proto::tls::server_config_from_pem(cert_pem, key_pem)?);
    let roots = ftps_proto::tls::roots_from_pem(cert_pem)?;
    let mut client_config = ftps_proto::tls::client_config(roots)?;
    // Our server requires ALPN "ftp" when a client offers ALPN at all; offer it.
    client_config.alpn_protocols = vec![b"ftp".to_vec()];
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let sender = std::thread::spawn(move || -> Result<(), String> {
        let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        let conn = rustls::ServerConnection::new(server_config).map_err(|e| e.to_string())?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        send(&mut s, size).map_err(|e| e.to_string())?;
        s.conn.send_close_notify();
        s.flush().map_err(|e| e.to_string())
    });
    let (tcp, _) = listener.accept()?;
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let conn = rustls::ClientConnection::new(Arc::new(client_config), name)?;
    let mut r = rustls::StreamOwned::new(conn, tcp);
    // Finish the handshake before timing.
    while r.conn.is_handshaking() {
        r.conn.complete_io(&mut r.sock)?;
    }
    timed_receive(&mut r, sender, size)
}

/// Receives to the end, then checks the sender's outcome and the byte count; returns the
/// seconds the receiving took.
fn timed_receive<E: Into<Fail>>(
    r: &mut impl Read,
    sender: std::thread::JoinHandle<Result<(), E>>,
    size: u64,
) -> Result<f64, Fail> {
    let start = Instant::now();
    let got = receive(r)?;
    let secs = start.elapsed().as_secs_f64();
    sender
        .join()
        .map_err(|_| "sender panicked")?
        .map_err(Into::into)?;
    check(got, size)?;
    Ok(secs)
}

fn send(w: &mut impl Write, size: u64) -> std::io::Result<()> {
    let buf = vec![0x5au8; CHUNK];
    let mut left = size;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        w.write_all(&buf[..n])?;
        left -= n as u64;
    }
    w.flush()
}

fn receive(r: &mut impl Read) -> std::io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0u64;
    loop {
        match r.read(&mut buf)? {
            0 => return Ok(got),
            n => got += n as u64,
        }
    }
}

fn check(got: u64, size: u64) -> Result<(), Fail> {
    if got == size {
        Ok(())
    } else {
        Err(format!("probe received {got} bytes, not {size}").into())
    }
}

/// Copies the file `from` into a new file `to` (256 KiB reads and writes), then removes
/// it; returns seconds. An upload cannot beat it: every upload writes a new file.
pub(crate) fn file_write(from: &std::path::Path, to: &std::path::Path) -> Result<f64, Fail> {
    let mut input = std::fs::File::open(from)?;
    let start = Instant::now();
    let mut out = std::fs::File::create(to)?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        match input.read(&mut buf)? {
            0 => break,
            n => out.write_all(&buf[..n])?,
        }
    }
    out.flush()?;
    drop(out);
    let secs = start.elapsed().as_secs_f64();
    std::fs::remove_file(to)?;
    Ok(secs)
}
