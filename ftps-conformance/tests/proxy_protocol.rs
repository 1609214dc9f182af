//! Issue 16, item 1: the PROXY protocol (v1 and v2) from a trusted balancer, on control
//! and passive data connections, on every runtime; and every way a header can be wrong.
//! The "balancer" is this test on 127.0.0.1; the clients it names are other loopback
//! addresses (127.0.0.2, 127.0.0.3); an untrusted peer connects from 127.0.0.2.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::balancer::{behind_balancer, epsv, through_balancer, v1, v2};
use ftps_conformance::hostile::{each, plain_allowed, socket_from};
use ftps_conformance::raw::Raw;
use ftps_proto::proxy::V2_SIGNATURE;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Whether the server closes `tcp` within `wait` without sending a byte.
fn closed_unanswered(mut tcp: TcpStream, wait: Duration) -> bool {
    tcp.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 256];
    match tcp.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// Whether the server closes `tcp` within `wait` (after whatever it sent before).
fn closed_within(mut tcp: TcpStream, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 256];
    while Instant::now() < deadline {
        tcp.set_read_timeout(Some(deadline - Instant::now() + Duration::from_millis(1)))
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

/// The real client drives the login lockout: four wrong passwords from the client at
/// 127.0.0.2 (through the balancer, v1 and v2 headers) lock 127.0.0.2 out, and 127.0.0.3
/// — through the same balancer — still logs in.
#[test]
fn the_client_a_header_names_is_the_peer() {
    each(
        "proxy-lockout",
        |s| {
            behind_balancer(s);
            s.login_lockout = Some((4, Duration::from_secs(60), Duration::from_secs(30)));
        },
        |f, r, tag| {
            let (user, password) = f.credentials();
            let port = r.explicit().port();
            for i in 0..4 {
                let header = if i % 2 == 0 {
                    v1([127, 0, 0, 2], port)
                } else {
                    v2([127, 0, 0, 2], port)
                };
                let mut c = through_balancer(r.explicit(), &header);
                assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331, "{tag}");
                let code = c.cmd("PASS wrong").unwrap();
                assert!(code == 530 || code == 421, "{tag}: attempt {i}: {code}");
            }
            let mut locked = through_balancer(r.explicit(), &v1([127, 0, 0, 2], port));
            assert_eq!(locked.cmd(&format!("USER {user}")).unwrap(), 331, "{tag}");
            assert_eq!(
                locked.cmd(&format!("PASS {password}")).unwrap(),
                530,
                "{tag}: 127.0.0.2 is not locked out"
            );
            // Another client through the same balancer is not.
            let mut other = through_balancer(r.explicit(), &v2([127, 0, 0, 3], port));
            assert_eq!(other.cmd(&format!("USER {user}")).unwrap(), 331, "{tag}");
            assert_eq!(
                other.cmd(&format!("PASS {password}")).unwrap(),
                230,
                "{tag}: the balancer's other clients were locked out too"
            );
            // A health check (LOCAL) is served as the balancer itself.
            let mut local = V2_SIGNATURE.to_vec();
            local.extend_from_slice(&[0x20, 0x00, 0, 0]);
            let mut check = through_balancer(r.explicit(), &local);
            assert_eq!(check.cmd("NOOP").unwrap(), 200, "{tag}");
        },
    );
}

/// A passive data connection through the balancer carries its own header: the session's
/// client gets its listing; a header naming another client is refused as a foreign peer.
#[test]
fn data_connections_through_the_balancer_name_the_same_client() {
    each("proxy-data", behind_balancer, |f, r, tag| {
        let (user, password) = f.credentials();
        let port = r.explicit().port();
        let mut c = through_balancer(r.explicit(), &v1([127, 0, 0, 2], port));
        assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331);
        assert_eq!(c.cmd(&format!("PASS {password}")).unwrap(), 230, "{tag}");
        // The right client: the listing comes.
        let data_port = epsv(&mut c);
        let mut data = TcpStream::connect(("127.0.0.1", data_port)).unwrap();
        data.write_all(&v2([127, 0, 0, 2], data_port)).unwrap();
        c.send_bytes(b"NLST\r\n").unwrap();
        assert_eq!(c.any_reply().unwrap().code().get(), 150, "{tag}");
        let mut listing = Vec::new();
        data.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        data.read_to_end(&mut listing).unwrap();
        assert_eq!(c.reply().unwrap().code().get(), 226, "{tag}");
        // The header after the transfer's command (the balancer was slow): the listing
        // still comes, at once (a client found after the order came once waited for the
        // data-connection timeout, then got 425).
        let data_port = epsv(&mut c);
        let mut data = TcpStream::connect(("127.0.0.1", data_port)).unwrap();
        c.send_bytes(b"NLST\r\n").unwrap();
        assert_eq!(c.any_reply().unwrap().code().get(), 150, "{tag}");
        std::thread::sleep(Duration::from_millis(200));
        let started = Instant::now();
        data.write_all(&v1([127, 0, 0, 2], data_port)).unwrap();
        data.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut late = Vec::new();
        data.read_to_end(&mut late).unwrap();
        let end = c.reply().unwrap();
        assert_eq!(end.code().get(), 226, "{tag}: {end:?}");
        assert_eq!(late, listing, "{tag}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{tag}: {:?}",
            started.elapsed()
        );
        // Another client's header on this session's listener: closed, and the transfer
        // finds no connection.
        let data_port = epsv(&mut c);
        let mut foreign = TcpStream::connect(("127.0.0.1", data_port)).unwrap();
        foreign.write_all(&v1([127, 0, 0, 3], data_port)).unwrap();
        assert!(
            closed_unanswered(foreign, Duration::from_secs(5)),
            "{tag}: a data connection for another client was kept"
        );
        c.send_bytes(b"NLST\r\n").unwrap();
        let code = c.any_reply().unwrap().code().get();
        let code = if code == 150 {
            c.reply().unwrap().code().get()
        } else {
            code
        };
        assert_eq!(code, 425, "{tag}: a foreign data connection was used");
    });
}

/// Every wrong header from the balancer closes the connection before the greeting: a
/// malformed v1 line, a v2 header longer than the bound, one shorter than its addresses,
/// FTP instead of a header, and nothing at all (past the handshake timeout).
#[test]
fn a_wrong_or_missing_header_from_the_balancer_is_refused_unanswered() {
    each("proxy-malformed", behind_balancer, |_, r, tag| {
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        let mut short = V2_SIGNATURE.to_vec();
        short.extend_from_slice(&[0x21, 0x11, 0, 3, 1, 2, 3]);
        let cases: [(&str, Vec<u8>); 5] = [
            (
                "malformed v1",
                b"PROXY TCP4 127.0.0.2 nonsense\r\n".to_vec(),
            ),
            (
                "v1 without CRLF",
                b"PROXY TCP4 127.0.0.2 127.0.0.1 1 21\n".to_vec(),
            ),
            ("v2 too long", huge),
            ("v2 shorter than its addresses", short),
            ("no header", b"USER anonymous\r\n".to_vec()),
        ];
        for (what, bytes) in cases {
            let mut tcp = TcpStream::connect(r.explicit()).unwrap();
            tcp.write_all(&bytes).unwrap();
            assert!(
                closed_unanswered(tcp, Duration::from_secs(5)),
                "{tag}: {what}: not closed unanswered"
            );
        }
        // Silence: closed once the handshake timeout (2 s here) passes, unanswered.
        let start = Instant::now();
        let tcp = TcpStream::connect(r.explicit()).unwrap();
        assert!(
            closed_unanswered(tcp, Duration::from_secs(6)),
            "{tag}: silence"
        );
        assert!(
            start.elapsed() >= Duration::from_secs(1),
            "{tag}: closed at once"
        );
        // Implicit TLS: the same header rule before the ClientHello.
        let tcp = TcpStream::connect(r.implicit()).unwrap();
        let mut tcp = tcp;
        tcp.write_all(b"PROXY TCP4 127.0.0.2 nonsense\r\n").unwrap();
        assert!(
            closed_unanswered(tcp, Duration::from_secs(5)),
            "{tag}: implicit"
        );
    });
}

/// A header from a peer not trusted to send one (127.0.0.2), and a header on a server
/// that trusts no balancer: a protocol error, the connection closed (after the greeting,
/// which a server that speaks first has sent by then).
#[test]
fn a_header_from_anyone_else_closes_the_connection() {
    each("proxy-untrusted", behind_balancer, |_, r, tag| {
        for header in [v1([127, 0, 0, 9], 21), v2([127, 0, 0, 9], 21)] {
            let tcp = socket_from([127, 0, 0, 2], r.explicit().port()).unwrap();
            let (mut raw, greeting) = Raw::over(tcp.try_clone().unwrap()).unwrap();
            assert_eq!(greeting.code().get(), 220, "{tag}");
            raw.send_bytes(&header).unwrap();
            assert!(
                closed_within(tcp, Duration::from_secs(5)),
                "{tag}: kept open"
            );
        }
        // The untrusted peer without a header is served as itself.
        let tcp = socket_from([127, 0, 0, 2], r.explicit().port()).unwrap();
        let (mut raw, _) = Raw::over(tcp).unwrap();
        assert_eq!(raw.cmd("NOOP").unwrap(), 200, "{tag}");
    });
    each("proxy-none", plain_allowed, |_, r, tag| {
        let tcp = TcpStream::connect(r.explicit()).unwrap();
        let (mut raw, _) = Raw::over(tcp.try_clone().unwrap()).unwrap();
        raw.send_bytes(&v1([127, 0, 0, 9], 21)).unwrap();
        assert!(
            closed_within(tcp, Duration::from_secs(5)),
            "{tag}: kept open"
        );
    });
}
