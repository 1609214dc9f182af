//! Hostile input against the servers of every runtime, over real sockets: one test per
//! case of the security suite, each asserting the reply code, the connection's state and
//! that nothing stored is lost or exposed.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::ServerSetup;
use ftps_conformance::hostile::{
    connect, each, logged_in, logged_in_using, logged_in_with, plain_allowed, retrieve_with,
    socket_from, start_upload, stray_files,
};
use ftps_conformance::raw::read_until_closed;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

// 1. A 1 MiB line with no LF: 500 (or 421 and close), bounded; a fresh connection works.
#[test]
fn a_mebibyte_line_is_refused_and_the_server_goes_on() {
    each("long-line", plain_allowed, |_, r, tag| {
        let mut c = connect(r);
        let _ = c.send_bytes(&vec![b'A'; 1 << 20]);
        let _ = c.send_bytes(b"\r\n");
        match c.reply() {
            Ok(reply) => {
                let code = reply.code().get();
                assert!(code == 500 || code == 421, "{tag}: {code}");
            }
            Err(_) => assert!(c.closed(), "{tag}: neither refused nor closed"),
        }
        let mut fresh = connect(r);
        assert_eq!(fresh.cmd("NOOP").unwrap(), 200, "{tag}");
    });
}

// 2. NUL and invalid UTF-8 in arguments: 501; bare CR / bare LF never merge commands.
#[test]
fn nul_and_bad_utf8_are_501_and_bare_cr_lf_do_not_merge_commands() {
    each("nul", plain_allowed, |f, r, tag| {
        let mut c = connect(r);
        let (user, password) = f.credentials();
        assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331);
        assert_eq!(c.cmd(&format!("PASS {password}")).unwrap(), 230);
        c.send_bytes(b"MKD a\0b\r\n").unwrap();
        assert_eq!(c.reply().unwrap().code().get(), 501, "{tag}: NUL");
        c.send_bytes(b"MKD \xff\xfe\r\n").unwrap();
        assert_eq!(c.reply().unwrap().code().get(), 501, "{tag}: invalid UTF-8");
        // "NOOP\rDELE x": a bare CR is not a line end, so this is one (bad) line, never
        // a NOOP and a DELE.
        std::fs::write(f.root().join("x"), b"keep").unwrap();
        c.send_bytes(b"NOOP\rDELE x\r\n").unwrap();
        assert_ne!(c.reply().unwrap().code().get(), 250, "{tag}");
        assert!(
            f.root().join("x").exists(),
            "{tag}: bare CR merged two commands"
        );
        assert_eq!(c.cmd("NOOP").unwrap(), 200, "{tag}");
    });
}

// 3. 10,000 bytes of Telnet IAC commands (IAC IP, IAC DM: the Synch before ABOR),
// then NOOP: 200. (IAC IAC would be an escaped 0xFF data byte, not a command.)
#[test]
fn ten_thousand_iac_bytes_then_noop() {
    each("iac", plain_allowed, |_, r, tag| {
        let mut c = connect(r);
        let mut bytes = [0xff_u8, 0xf4].repeat(4_999);
        bytes.extend_from_slice(&[0xff, 0xf2]);
        bytes.extend_from_slice(b"NOOP\r\n");
        c.send_bytes(&bytes).unwrap();
        assert_eq!(c.reply().unwrap().code().get(), 200, "{tag}");
    });
}

// 4. "AUTH TLS\r\nUSER x\r\n" in one segment: USER is never executed (CVE-2011-1575).
#[test]
fn plaintext_pipelined_after_auth_is_never_executed() {
    each(
        "auth-pipeline",
        |_| {},
        |f, r, tag| {
            let mut c = connect(r);
            let (user, password) = f.credentials();
            c.send_bytes(format!("AUTH TLS\r\nUSER {user}\r\n").as_bytes())
                .unwrap();
            assert_eq!(c.reply().unwrap().code().get(), 234, "{tag}");
            c.start_tls(f.client_tls()).unwrap();
            // Had USER run, PASS would log in; it must be out of sequence instead.
            assert_eq!(c.cmd(&format!("PASS {password}")).unwrap(), 503, "{tag}");
        },
    );
}

// 5. AUTH twice, PBSZ before AUTH, PROT before PBSZ: 503; PROT S: 536.
#[test]
fn security_command_order() {
    each("order", plain_allowed, |f, r, tag| {
        let mut c = connect(r);
        assert_eq!(c.cmd("PBSZ 0").unwrap(), 503, "{tag}: PBSZ before AUTH");
        c.auth_tls(f.client_tls()).unwrap();
        assert_eq!(c.cmd("AUTH TLS").unwrap(), 503, "{tag}: AUTH twice");
        let (user, password) = f.credentials();
        assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331);
        assert_eq!(c.cmd(&format!("PASS {password}")).unwrap(), 230);
        assert_eq!(c.cmd("PROT P").unwrap(), 503, "{tag}: PROT before PBSZ");
        assert_eq!(c.cmd("PBSZ 0").unwrap(), 200);
        assert_eq!(c.cmd("PROT S").unwrap(), 536, "{tag}: PROT S");
    });
}

// 6. RETR under PROT C with data TLS required: 521, no data connection, no byte sent.
#[test]
fn prot_c_transfer_is_refused_when_data_tls_is_required() {
    let require = |s: &mut ServerSetup| {
        s.config.data_tls = ftps_proto::server::DataTlsPolicy::Require;
    };
    each("protc", require, |f, r, tag| {
        std::fs::write(f.root().join("secret.bin"), b"secret").unwrap();
        let mut c = logged_in(f, r);
        assert_eq!(c.cmd("PROT C").unwrap(), 200);
        c.send_bytes(b"EPSV\r\n").unwrap();
        let epsv = c.reply().unwrap();
        let port = ftps_proto::address::parse_epsv_reply(epsv.first_line()).unwrap();
        let mut data = TcpStream::connect(("127.0.0.1", port)).ok();
        assert_eq!(c.cmd("RETR secret.bin").unwrap(), 521, "{tag}");
        if let Some(d) = data.as_mut() {
            d.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let mut buf = [0u8; 16];
            let got = std::io::Read::read(d, &mut buf).unwrap_or(0);
            assert_eq!(got, 0, "{tag}: bytes sent in clear");
        }
        assert_eq!(c.cmd("NOOP").unwrap(), 200, "{tag}");
    });
}

// 8. `GET / HTTP/1.1` on the control port: closed without an answer (ALPACA).
#[test]
fn http_on_the_control_port_is_closed() {
    each(
        "http",
        |_| {},
        |_, r, tag| {
            let mut c = connect(r);
            c.send_bytes(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            assert!(c.closed(), "{tag}: the connection stayed open");
        },
    );
}

// 9. PORT/EPRT to a foreign host or to port 22: 501, and no connection is attempted.
#[test]
fn port_bounce_is_refused_without_connecting() {
    each(
        "bounce",
        |s| s.config.active_mode = true,
        |f, r, tag| {
            let foreign = TcpListener::bind("127.0.0.2:0").unwrap();
            let fport = foreign.local_addr().unwrap().port();
            let mut c = logged_in(f, r);
            let port_cmd = format!("PORT 127,0,0,2,{},{}", fport >> 8, fport & 255);
            assert_eq!(
                c.cmd(&port_cmd).unwrap(),
                501,
                "{tag}: PORT to another host"
            );
            assert_eq!(
                c.cmd("PORT 127,0,0,1,0,22").unwrap(),
                501,
                "{tag}: PORT to 22"
            );
            let eprt = format!("EPRT |1|127.0.0.2|{fport}|");
            assert_eq!(c.cmd(&eprt).unwrap(), 501, "{tag}: EPRT to another host");
            foreign.set_nonblocking(true).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            assert!(foreign.accept().is_err(), "{tag}: the server connected out");
        },
    );
}

// 10. PASV, then a connection from another address: refused, and the listener still
// serves the real client; 200 PASV in a row leave at most one listener.
#[test]
fn passive_listener_accepts_only_the_client() {
    each(
        "pasv-foreign",
        |_| {},
        |f, r, tag| {
            std::fs::write(f.root().join("f.bin"), b"data for the client").unwrap();
            let (mut c, tls) = logged_in_with(f, r);
            let mut first_port = None;
            for _ in 0..200 {
                c.send_bytes(b"EPSV\r\n").unwrap();
                let reply = c.reply().unwrap();
                let port = ftps_proto::address::parse_epsv_reply(reply.first_line()).unwrap();
                first_port.get_or_insert(port);
            }
            std::thread::sleep(Duration::from_millis(200));
            let first = first_port.unwrap();
            c.send_bytes(b"EPSV\r\n").unwrap();
            let port =
                ftps_proto::address::parse_epsv_reply(c.reply().unwrap().first_line()).unwrap();
            if first != port {
                assert!(
                    TcpStream::connect_timeout(
                        &SocketAddr::from(([127, 0, 0, 1], first)),
                        Duration::from_millis(300)
                    )
                    .is_err(),
                    "{tag}: an old passive listener is still open"
                );
            }
            // From 127.0.0.2: dropped.
            let foreign = socket_from([127, 0, 0, 2], port);
            assert!(foreign.is_some(), "{tag}: could not connect from 127.0.0.2");
            // The real client (127.0.0.1) still gets the data.
            let data = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.send_bytes(b"RETR f.bin\r\n").unwrap();
            let mut conn =
                rustls::ClientConnection::new(tls, "localhost".try_into().unwrap()).unwrap();
            let mut data = data;
            data.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            while conn.is_handshaking() {
                conn.complete_io(&mut data).unwrap();
            }
            let mut s = rustls::StreamOwned::new(conn, data);
            let mut got = Vec::new();
            let _ = std::io::Read::read_to_end(&mut s, &mut got);
            assert_eq!(got, b"data for the client", "{tag}");
            assert_eq!(c.reply().unwrap().code().get(), 226, "{tag}");
            if let Some(mut foreign) = foreign {
                foreign
                    .set_read_timeout(Some(Duration::from_millis(300)))
                    .unwrap();
                let mut buf = [0u8; 8];
                assert_eq!(
                    std::io::Read::read(&mut foreign, &mut buf).unwrap_or(0),
                    0,
                    "{tag}"
                );
            }
        },
    );
}

// 11. Wrong password 4 times: each 530 comes after a delay, then 421 and close; while the
// address is locked out, the right password is refused too.
#[test]
fn repeated_wrong_passwords_lock_the_address_out() {
    let strict = |s: &mut ServerSetup| {
        s.config.max_login_failures = 4;
        s.config.failed_login_delay = Duration::from_millis(200);
        s.login_lockout = Some((4, Duration::from_secs(60), Duration::from_secs(30)));
    };
    each("lockout", strict, |f, r, tag| {
        let (user, password) = f.credentials();
        let mut c = connect(r);
        c.auth_tls(f.client_tls()).unwrap();
        for i in 0..4 {
            assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331);
            let start = Instant::now();
            c.send_bytes(b"PASS wrong\r\n").unwrap();
            let code = c.reply().unwrap().code().get();
            // The fourth failure ends the session: 421 instead of 530.
            assert_eq!(code, if i < 3 { 530 } else { 421 }, "{tag}: attempt {i}");
            assert!(
                start.elapsed() >= Duration::from_millis(150),
                "{tag}: no delay"
            );
        }
        assert!(c.closed(), "{tag}: the session stays open");
        // A new session from the same address: the right password is refused.
        let mut again = connect(r);
        again.auth_tls(f.client_tls()).unwrap();
        assert_eq!(again.cmd(&format!("USER {user}")).unwrap(), 331);
        assert_eq!(
            again.cmd(&format!("PASS {password}")).unwrap(),
            530,
            "{tag}"
        );
    });
}

// 12. Paths out of the root: clamped or refused; nothing outside read or touched.
#[test]
fn paths_and_links_out_of_the_root_are_refused() {
    each(
        "escape",
        |_| {},
        |f, r, tag| {
            let outside = f.root().parent().unwrap().join("outside");
            std::fs::create_dir_all(&outside).unwrap();
            std::fs::write(outside.join("secret.txt"), b"secret").unwrap();
            let _ = std::os::unix::fs::symlink(&outside, f.root().join("link"));
            let _ = std::os::unix::fs::symlink(outside.join("secret.txt"), f.root().join("slink"));
            std::fs::write(f.root().join("mine.txt"), b"mine").unwrap();
            let mut c = logged_in(f, r);
            assert_eq!(c.cmd("CWD ../../etc").unwrap(), 550, "{tag}: CWD ../../etc");
            assert_eq!(c.cmd("SIZE ../../../etc/passwd").unwrap(), 550, "{tag}");
            assert_eq!(
                c.cmd("SIZE link/secret.txt").unwrap(),
                550,
                "{tag}: through a link"
            );
            assert_eq!(
                c.cmd("SIZE slink").unwrap(),
                550,
                "{tag}: a link to a file outside"
            );
            assert_eq!(c.cmd("RNFR mine.txt").unwrap(), 350);
            assert_eq!(c.cmd("RNTO slink").unwrap(), 550, "{tag}: RNTO onto a link");
            assert_eq!(c.cmd("DELE link/secret.txt").unwrap(), 550, "{tag}");
            assert_eq!(
                std::fs::read(outside.join("secret.txt")).unwrap(),
                b"secret"
            );
            assert_eq!(std::fs::read(f.root().join("mine.txt")).unwrap(), b"mine");
        },
    );
}

// 13. REST -1 and REST 2^64: 501.
#[test]
fn bad_rest_offsets_are_501() {
    each(
        "rest",
        |_| {},
        |f, r, tag| {
            let mut c = logged_in(f, r);
            assert_eq!(c.cmd("REST -1").unwrap(), 501, "{tag}");
            assert_eq!(c.cmd("REST 18446744073709551616").unwrap(), 501, "{tag}");
            assert_eq!(c.cmd("REST 5").unwrap(), 350, "{tag}");
        },
    );
}

// 15. STAT and LIST with glob-like patterns: answered in bounded time (CVE-2011-0762).
#[test]
fn glob_patterns_are_answered_quickly() {
    each(
        "glob",
        |_| {},
        |f, r, tag| {
            let mut c = logged_in(f, r);
            let pattern = "*/../*/..".repeat(400);
            let start = Instant::now();
            let code = c.cmd(&format!("STAT {pattern}")).unwrap();
            assert!(code >= 200, "{tag}: {code}");
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "{tag}: {:?}",
                start.elapsed()
            );
            assert_eq!(c.cmd("NOOP").unwrap(), 200, "{tag}");
        },
    );
}

// 16. A 1 byte/s drip before login: 421 at the login timeout.
#[test]
fn a_slow_drip_before_login_gets_421() {
    each(
        "drip",
        |s| s.config.timeouts.login = Duration::from_secs(2),
        |_, r, tag| {
            let mut c = connect(r);
            let start = Instant::now();
            let mut closed_by_server = false;
            for b in b"USER slow-client-dripping-bytes".iter() {
                if c.send_bytes(&[*b]).is_err() {
                    closed_by_server = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(250));
                if start.elapsed() > Duration::from_secs(6) {
                    break;
                }
            }
            if !closed_by_server {
                let reply = c.reply().unwrap();
                assert_eq!(reply.code().get(), 421, "{tag}");
            }
            assert!(start.elapsed() < Duration::from_secs(8), "{tag}");
        },
    );
}

// 18. CCC before login: 534.
#[test]
fn ccc_before_login_is_534() {
    each(
        "ccc",
        |s| s.config.allow_ccc = true,
        |f, r, tag| {
            let mut c = connect(r);
            c.auth_tls(f.client_tls()).unwrap();
            assert_eq!(c.cmd("CCC").unwrap(), 534, "{tag}");
        },
    );
}

// 14a. STOR ended by a FIN without close_notify: 426, and the file is not published.
#[test]
fn an_upload_cut_without_close_notify_is_not_published() {
    each(
        "cut-upload",
        |_| {},
        |f, r, tag| {
            let (mut c, tls) = logged_in_with(f, r);
            let mut s = start_upload(&mut c, tls, "cut.bin");
            std::io::Write::write_all(&mut s, &vec![7u8; 200_000]).unwrap();
            std::io::Write::flush(&mut s).unwrap();
            // FIN without close_notify: a truncation attack, or a crashed client.
            s.sock.shutdown(std::net::Shutdown::Write).unwrap();
            let code = c.reply().unwrap().code().get();
            assert_eq!(code, 426, "{tag}");
            drop(s);
            std::thread::sleep(Duration::from_millis(200));
            assert!(
                stray_files(&f.root(), &[]).is_empty(),
                "{tag}: {:?}",
                stray_files(&f.root(), &[])
            );
            assert_eq!(c.cmd("NOOP").unwrap(), 200, "{tag}");
        },
    );
}

// 14b. STOR hitting a full disk (injected through the storage trait): 452, and no partial
// file is left visible.
#[test]
fn an_upload_on_a_full_disk_is_452_and_leaves_nothing() {
    each(
        "full-disk",
        |s| s.upload_quota = Some(10_000),
        |f, r, tag| {
            let (mut c, tls) = logged_in_with(f, r);
            let mut s = start_upload(&mut c, tls, "big.bin");
            let _ = std::io::Write::write_all(&mut s, &vec![7u8; 300_000]);
            s.conn.send_close_notify();
            let _ = std::io::Write::flush(&mut s);
            let _ = s.sock.shutdown(std::net::Shutdown::Write);
            let code = c.reply().unwrap().code().get();
            assert_eq!(code, 452, "{tag}");
            drop(s);
            std::thread::sleep(Duration::from_millis(200));
            assert!(
                stray_files(&f.root(), &[]).is_empty(),
                "{tag}: {:?}",
                stray_files(&f.root(), &[])
            );
            assert_eq!(c.cmd("NOOP").unwrap(), 200, "{tag}");
        },
    );
}

// 7. A data connection that does not resume the control session (a fresh one, or another
// client's): 522, nothing sent, and the control session stays usable.
#[test]
fn data_tls_must_resume_this_control_session() {
    each(
        "reuse",
        |_| {},
        |f, r, tag| {
            std::fs::write(f.root().join("s.bin"), b"secret bytes").unwrap();
            let (mut a, tls_a) = logged_in_with(f, r);
            let (mut b, tls_b) = logged_in_with(f, r);
            // Fresh: no session at all.
            let (code, got) = retrieve_with(&mut a, f.client_tls(), "s.bin");
            assert_eq!((code, got.len()), (522, 0), "{tag}: fresh TLS session");
            // B's session, offered on A's data connection.
            assert_eq!(
                retrieve_with(&mut b, tls_b.clone(), "s.bin").0,
                226,
                "{tag}: B itself"
            );
            let (code, got) = retrieve_with(&mut a, tls_b, "s.bin");
            assert_eq!(
                (code, got.len()),
                (522, 0),
                "{tag}: another client's session"
            );
            // A's own session works, and A's control session was never disturbed.
            let (code, got) = retrieve_with(&mut a, tls_a, "s.bin");
            assert_eq!((code, got.as_slice()), (226, &b"secret bytes"[..]), "{tag}");
        },
    );
}

// 7b. Someone who wins the race to A's data port with a full handshake gets 522, and no
// TLS session of A's to resume on the next race: the full handshake issues no ticket (TLS
// 1.3 or 1.2) and stores no session ID (TLS 1.2). Only a data connection that resumed
// passes a session on.
#[test]
fn a_refused_data_handshake_gets_nothing_to_resume() {
    each(
        "reuse-race",
        |_| {},
        |f, r, tag| {
            std::fs::write(f.root().join("s.bin"), b"secret bytes").unwrap();
            for versions in [ftps_proto::tls::BOTH, &[&rustls::version::TLS12]] {
                let (mut a, tls_a) = logged_in_with(f, r);
                let racer = std::sync::Arc::new(f.client_tls_for(versions));
                for attempt in ["first race", "second race"] {
                    let (code, got) = retrieve_with(&mut a, racer.clone(), "s.bin");
                    assert_eq!((code, got.len()), (522, 0), "{tag} {versions:?}: {attempt}");
                }
                // A's own session still works, twice (each resumption passes one on).
                for _ in 0..2 {
                    let (code, got) = retrieve_with(&mut a, tls_a.clone(), "s.bin");
                    assert_eq!((code, got.as_slice()), (226, &b"secret bytes"[..]), "{tag}");
                }
            }
        },
    );
}

// 7c. A TLS 1.2 client that resumes by session ID only (no tickets: the server stores
// the session, in a store of this FTP session's own) resumes its control connection's
// session on every data connection, the same ID each time; another session's ID is not
// in this session's store.
#[test]
fn tls12_session_ids_resume_every_data_connection() {
    each(
        "session-ids",
        |_| {},
        |f, r, tag| {
            std::fs::write(f.root().join("s.bin"), b"secret bytes").unwrap();
            let by_id_only = || {
                let mut config = f.client_tls_for(&[&rustls::version::TLS12]);
                config.resumption = rustls::client::Resumption::in_memory_sessions(8)
                    .tls12_resumption(rustls::client::Tls12Resumption::SessionIdOnly);
                std::sync::Arc::new(config)
            };
            let (mut a, tls_a) = logged_in_using(f, r, by_id_only());
            for transfer in 0..6 {
                let (code, got) = retrieve_with(&mut a, tls_a.clone(), "s.bin");
                assert_eq!(
                    (code, got.as_slice()),
                    (226, &b"secret bytes"[..]),
                    "{tag}: transfer {transfer}"
                );
            }
            // B's sessions are B's own: A's data connection cannot resume them.
            let (_b, tls_b) = logged_in_using(f, r, by_id_only());
            let (code, got) = retrieve_with(&mut a, tls_b, "s.bin");
            assert_eq!((code, got.len()), (522, 0), "{tag}: another session's ID");
        },
    );
}

// 8. ALPN `h2` or `http/1.1`: the handshake is refused (ALPACA).
#[test]
fn alpn_other_than_ftp_fails_the_handshake() {
    each(
        "alpn",
        |_| {},
        |f, r, tag| {
            for alpn in [&b"h2"[..], b"http/1.1"] {
                let mut config = (*f.client_tls()).clone();
                config.alpn_protocols = vec![alpn.to_vec()];
                let mut c = connect(r);
                let refused =
                    c.auth_tls(std::sync::Arc::new(config)).is_err() || c.cmd("NOOP").is_err();
                assert!(
                    refused,
                    "{tag}: ALPN {:?} accepted",
                    String::from_utf8_lossy(alpn)
                );
            }
        },
    );
}

// 13b. REST past the end of the file, then RETR: 554, nothing sent.
#[test]
fn rest_past_the_end_is_554() {
    each(
        "rest-eof",
        |_| {},
        |f, r, tag| {
            std::fs::write(f.root().join("five.bin"), b"12345").unwrap();
            let (mut c, tls) = logged_in_with(f, r);
            assert_eq!(c.cmd("REST 1000").unwrap(), 350);
            let (code, got) = retrieve_with(&mut c, tls, "five.bin");
            assert_eq!((code, got.len()), (554, 0), "{tag}");
        },
    );
}

// The server's control handshake waits for the ClientHello (rustls' Acceptor: the hello
// picks the cipher order). A reply due meanwhile (the login timer's 421) is never sent in
// clear text after AUTH TLS; the session closes.
#[test]
fn nothing_goes_out_in_clear_while_the_hello_is_awaited() {
    each(
        "hello-awaited",
        |s| {
            s.config.timeouts.login = Duration::from_secs(2);
            s.config.timeouts.tls_handshake = Duration::from_secs(30);
        },
        |_, r, tag| {
            let mut c = connect(r);
            assert_eq!(c.cmd("AUTH TLS").unwrap(), 234, "{tag}");
            // Half a record header: the hello has begun.
            c.send_bytes(&[0x16, 0x03]).unwrap();
            let start = Instant::now();
            let sent = c
                .bytes_until_closed(Duration::from_secs(15))
                .unwrap_or_else(|| panic!("{tag}: still open after 15 s"));
            assert!(start.elapsed() < Duration::from_secs(10), "{tag}");
            assert!(
                !sent.windows(3).any(|w| w == b"421"),
                "{tag}: a reply in clear text during the handshake: {:?}",
                String::from_utf8_lossy(&sent)
            );
        },
    );
}

/// A client's ClientHello under `tls` and, in the same segment, a fatal alert
/// (handshake_failure).
fn hello_then_alert(tls: std::sync::Arc<rustls::ClientConfig>) -> Vec<u8> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut client = rustls::ClientConnection::new(tls, name).unwrap();
    let mut flight = Vec::new();
    client.write_tls(&mut flight).unwrap();
    // An alert record: fatal (2), handshake_failure (40).
    flight.extend_from_slice(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);
    flight
}

// Bytes that come in the same segment as the ClientHello are processed at once: a fatal
// alert right behind the hello ends the connection now, not at the handshake timeout.
#[test]
fn an_alert_behind_the_hello_ends_the_handshake_at_once() {
    each(
        "hello-alert",
        |s| s.config.timeouts.tls_handshake = Duration::from_secs(30),
        |f, r, tag| {
            let mut c = connect(r);
            assert_eq!(c.cmd("AUTH TLS").unwrap(), 234, "{tag}");
            c.send_bytes(&hello_then_alert(f.client_tls())).unwrap();
            let start = Instant::now();
            assert!(
                c.bytes_until_closed(Duration::from_secs(20)).is_some(),
                "{tag}: still open after 20 s"
            );
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{tag}: closed only after {:?}",
                start.elapsed()
            );
        },
    );
}

// The same on a data connection: an alert right behind the ClientHello ends the data
// handshake at once (the data socket closes, the transfer fails), not at its timeout.
#[test]
fn an_alert_behind_a_data_hello_ends_that_handshake_at_once() {
    each(
        "data-hello-alert",
        |s| s.config.timeouts.tls_handshake = Duration::from_secs(30),
        |f, r, tag| {
            std::fs::write(f.root().join("s.bin"), b"secret bytes").unwrap();
            let (mut c, tls) = logged_in_with(f, r);
            c.send_bytes(b"EPSV\r\n").unwrap();
            let port =
                ftps_proto::address::parse_epsv_reply(c.reply().unwrap().first_line()).unwrap();
            let mut data = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.send_bytes(b"RETR s.bin\r\n").unwrap();
            std::io::Write::write_all(&mut data, &hello_then_alert(tls)).unwrap();
            let start = Instant::now();
            assert!(
                read_until_closed(&mut data, Duration::from_secs(20)).is_some(),
                "{tag}: data connection still open after 20 s"
            );
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{tag}: data connection closed only after {:?}",
                start.elapsed()
            );
            let code = c.reply().unwrap().code().get();
            assert!((400..600).contains(&code), "{tag}: RETR answered {code}");
            assert_eq!(c.cmd("NOOP").unwrap(), 200, "{tag}: the session goes on");
        },
    );
}
