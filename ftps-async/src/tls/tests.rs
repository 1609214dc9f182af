//! [`TlsStream`] against a rustls server that writes each record on its own, as OpenSSL
//! peers do, read by a client that is always faster: the withheld byte.

use super::*;
use futures_lite::AsyncReadExt;
use futures_lite::future::{block_on, poll_once};
use rustls::ServerConnection;
use std::collections::VecDeque;

/// A socket whose far end is a rustls server, driven in place: what the client writes is
/// handed to the server at once; what the server sends comes back one write per read.
struct Peer {
    server: ServerConnection,
    to_client: VecDeque<Vec<u8>>,
    /// The server closed the TCP connection (reads after the last chunk give 0).
    closed: bool,
}

impl Peer {
    /// Moves what the server has to send into one chunk (one socket write).
    fn flush(&mut self) {
        let mut out = Vec::new();
        while self.server.wants_write() {
            self.server.write_tls(&mut out).unwrap();
        }
        if !out.is_empty() {
            self.to_client.push_back(out);
        }
    }

    /// The server sends `data` as records of at most 16 KiB, each its own write.
    fn send(&mut self, data: &[u8]) {
        for record in data.chunks(16384) {
            self.server.writer().write_all(record).unwrap();
            self.flush();
        }
    }
}

impl AsyncRead for Peer {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.to_client.pop_front() {
            Some(mut chunk) => {
                let n = chunk.len().min(buf.len());
                buf[..n].copy_from_slice(&chunk[..n]);
                if n < chunk.len() {
                    this.to_client.push_front(chunk.split_off(n));
                }
                Poll::Ready(Ok(n))
            }
            None if this.closed => Poll::Ready(Ok(0)),
            // Nothing sent yet: the test polls once and looks.
            None => Poll::Pending,
        }
    }
}

impl AsyncWrite for Peer {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut rest = buf;
        while !rest.is_empty() {
            this.server.read_tls(&mut rest)?;
            this.server
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
        this.flush();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// TLS 1.3, then 1.2: the records differ (an inner content type and no explicit nonce,
/// or the other way round).
const VERSIONS: [&rustls::SupportedProtocolVersion; 2] =
    [&rustls::version::TLS13, &rustls::version::TLS12];

/// A connected client over a fresh [`Peer`], on `version`.
fn connected(version: &'static rustls::SupportedProtocolVersion) -> TlsStream<Peer> {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let server_config = ftps_proto::tls::server_config_from_pem(
        cert.pem().as_bytes(),
        key.serialize_pem().as_bytes(),
    )
    .unwrap();
    let client_config =
        ftps_proto::tls::client_config_from_pem(cert.pem().as_bytes(), &[version]).unwrap();
    let peer = Peer {
        server: ServerConnection::new(Arc::new(server_config)).unwrap(),
        to_client: VecDeque::new(),
        closed: false,
    };
    let name = ServerName::try_from("localhost").unwrap();
    block_on(TlsStream::connect(peer, Arc::new(client_config), name)).unwrap()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn a_full_record_waits_for_what_follows_it() {
    for version in VERSIONS {
        let mut c = connected(version);
        c.io.send(&pattern(16384));
        let mut buf = vec![0u8; 1 << 20];
        // The record is whole, but its last byte is kept back: nothing yet.
        let first = block_on(poll_once(c.read(&mut buf)));
        assert!(
            first.is_none(),
            "read {first:?} with nothing after the record"
        );
        assert!(c.withheld);
        // The next record brings it.
        c.io.send(&pattern(100));
        let mut got = Vec::new();
        while got.len() < 16384 {
            let n = block_on(c.read(&mut buf)).unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got.starts_with(&pattern(16384)), "{} bytes", got.len());
    }
}

#[test]
fn every_length_arrives_whole_with_close_notify() {
    for (len, version) in [0, 1, 4096, 4097, 16383, 16384, 16385, 5 * 16384, 300_001]
        .into_iter()
        .flat_map(|len| VERSIONS.map(|v| (len, v)))
    {
        let mut c = connected(version);
        c.io.send(&pattern(len));
        c.io.server.send_close_notify();
        c.io.flush();
        c.io.closed = true;
        let mut got = Vec::new();
        block_on(c.read_to_end(&mut got)).unwrap();
        assert_eq!(got.len(), len);
        assert!(got == pattern(len), "length {len}");
    }
}

#[test]
fn a_withheld_byte_is_given_at_the_end_of_the_socket() {
    // The server closes TCP after a full record, without close_notify: the record is
    // read whole, then the end is reported as not proper.
    for version in VERSIONS {
        let mut c = connected(version);
        c.io.send(&pattern(2 * 16384));
        c.io.closed = true;
        let mut got = Vec::new();
        let end = block_on(c.read_to_end(&mut got)).unwrap_err();
        assert_eq!(end.kind(), io::ErrorKind::UnexpectedEof);
        assert!(got == pattern(2 * 16384));
    }
}
