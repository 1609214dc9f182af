//! What the PROXY-protocol tests share: a server set up behind a "balancer" (this test
//! process on 127.0.0.1), headers naming other loopback clients, and connections made
//! through it.

#![allow(clippy::unwrap_used)] // Test support: a broken step fails the test loudly.

use crate::ServerSetup;
use crate::hostile::plain_allowed;
use crate::raw::Raw;
use ftps_proto::proxy::V2_SIGNATURE;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Trusts 127.0.0.1 (the balancer); plain FTP allowed; a 2 s handshake and a 3 s data
/// connect timeout.
pub fn behind_balancer(s: &mut ServerSetup) {
    plain_allowed(s);
    s.proxies = Some(ftps_async::TrustedProxies::parse("127.0.0.1").unwrap());
    s.config.timeouts.tls_handshake = Duration::from_secs(2);
    s.config.timeouts.data_connect = Duration::from_secs(3);
}

/// A v1 header naming `client` (port 40000) as connected to 127.0.0.1:`port`.
pub fn v1(client: [u8; 4], port: u16) -> Vec<u8> {
    let [a, b, c, d] = client;
    format!("PROXY TCP4 {a}.{b}.{c}.{d} 127.0.0.1 40000 {port}\r\n").into_bytes()
}

/// The same as a v2 header (PROXY, TCP over IPv4).
pub fn v2(client: [u8; 4], port: u16) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&client);
    h.extend_from_slice(&[127, 0, 0, 1]);
    h.extend_from_slice(&40000u16.to_be_bytes());
    h.extend_from_slice(&port.to_be_bytes());
    h
}

/// A connection from the balancer to `addr` that starts with `header`: the session, past
/// its greeting.
pub fn through_balancer(addr: SocketAddr, header: &[u8]) -> Raw {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.write_all(header).unwrap();
    let (raw, greeting) = Raw::over(tcp).unwrap();
    assert_eq!(greeting.code().get(), 220);
    raw
}

/// Whether the server closes `tcp` (EOF or reset) within `wait`, whatever it sent first.
pub fn is_closed(tcp: &mut TcpStream, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 512];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        tcp.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match tcp.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
    false
}

/// EPSV on `c`: the port.
pub fn epsv(c: &mut Raw) -> u16 {
    c.send_bytes(b"EPSV\r\n").unwrap();
    let reply = c.reply().unwrap();
    assert_eq!(reply.code().get(), 229, "{}", reply.first_line());
    ftps_proto::address::parse_epsv_reply(reply.first_line()).unwrap()
}
