//! Behaviours that once differed between the runtimes' drivers (issue 14's list of
//! drift), each tested once for every server runtime.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::hostile::{each, plain_allowed, plain_session, receiver};
use ftps_conformance::raw::Raw;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A listener on 127.0.0.1 whose accept queue is full and never drained: a further
/// connection attempt gets no answer (its SYN is dropped), so connecting to it hangs.
/// Returns the address and what keeps it full.
fn black_hole() -> (
    SocketAddr,
    Vec<tokio::net::TcpStream>,
    tokio::runtime::Runtime,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (addr, fillers) = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(1).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut fillers = Vec::new();
        // Fill the queue: attempts that complete, until one does not within a moment.
        for _ in 0..8 {
            match tokio::time::timeout(
                Duration::from_millis(300),
                tokio::net::TcpStream::connect(addr),
            )
            .await
            {
                Ok(Ok(s)) => fillers.push(s),
                _ => break,
            }
        }
        std::mem::forget(listener);
        (addr, fillers)
    });
    (addr, fillers, rt)
}

// Drift: the async servers connected in active mode with a 30 s timeout of their own; the
// blocking server used the configured `data_connect`. Every runtime now uses the
// configured one.
#[test]
fn active_mode_connects_within_the_configured_data_connect_timeout() {
    each(
        "active-connect",
        |s| {
            plain_allowed(s);
            s.config.active_mode = true;
            s.config.timeouts.data_connect = Duration::from_secs(2);
        },
        |f, r, tag| {
            std::fs::write(f.root().join("x.bin"), b"x").unwrap();
            let (addr, _fillers, _rt) = black_hole();
            let mut c = plain_session(f, r);
            let port = addr.port();
            let command = format!("PORT 127,0,0,1,{},{}", port >> 8, port & 0xff);
            assert_eq!(c.cmd(&command).unwrap(), 200, "{tag}");
            let started = Instant::now();
            let code = c.cmd("RETR x.bin").unwrap();
            let took = started.elapsed();
            eprintln!("{tag}: {code} after {took:?}");
            assert_eq!(code, 425, "{tag}");
            assert!(took < Duration::from_secs(8), "{tag}: took {took:?}");
            assert_eq!(c.cmd("NOOP").unwrap(), 200, "{tag}");
        },
    );
}

/// Starts downloading `file` over a passive data connection with a 16 KiB receive
/// buffer (the server's writes back up as soon as the test does not read); returns it
/// once the server's 150 came.
fn slow_download(c: &mut Raw, file: &str, tag: &str) -> TcpStream {
    c.send_bytes(b"EPSV\r\n").unwrap();
    let reply = c.reply().unwrap();
    let port = ftps_proto::address::parse_epsv_reply(reply.first_line()).unwrap();
    let data = receiver(SocketAddr::from(([127, 0, 0, 1], port)), 16 * 1024);
    c.send_bytes(format!("RETR {file}\r\n").as_bytes()).unwrap();
    assert!(c.any_reply().unwrap().code().is_preliminary(), "{tag}");
    data
}

// Drift: commands pipelined while a transfer runs wait (the session holds 16), and the
// rest of the input waited in the async servers' kernel buffers (they stop reading) but
// was buffered by the blocking one, which closed the session once 64 KiB waited. Every
// runtime now stops reading: the transfer completes, and every command is answered.
#[test]
fn commands_pipelined_during_a_transfer_are_slowed_not_closed() {
    each("pipeline-flood", plain_allowed, |f, r, tag| {
        let body: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(f.root().join("big.bin"), &body).unwrap();
        let mut c = plain_session(f, r);
        let mut data = slow_download(&mut c, "big.bin", tag);
        // 120 KB of commands while the download waits for us to read it.
        const COMMANDS: usize = 20_000;
        let mut writer = c.plain_socket().unwrap();
        let flood = std::thread::spawn(move || {
            writer
                .set_write_timeout(Some(Duration::from_secs(60)))
                .unwrap();
            writer.write_all(&b"NOOP\r\n".repeat(COMMANDS)).is_ok()
        });
        std::thread::sleep(Duration::from_secs(1));
        data.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut got = Vec::new();
        data.read_to_end(&mut got).unwrap();
        assert!(got == body, "{tag}: {} of {} bytes", got.len(), body.len());
        assert_eq!(c.reply().unwrap().code().get(), 226, "{tag}");
        let started = Instant::now();
        for i in 0..COMMANDS {
            let code = c.reply().map(|r| r.code().get());
            assert_eq!(code.ok(), Some(200), "{tag}: reply {i}");
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{tag}: too slow"
            );
        }
        assert!(
            flood.join().unwrap(),
            "{tag}: the server stopped taking commands"
        );
        assert_eq!(c.cmd("NOOP").unwrap(), 200, "{tag}");
    });
}

// Drift: a download the client stops reading was ended by the core's stall timer on the
// async servers and by socket timeouts on the blocking one. Every runtime now ends it by
// the session's `data_stall` (426), closes the data connection, and goes on.
#[test]
fn a_download_the_client_stops_reading_ends_at_the_data_stall_timeout() {
    each(
        "download-stall",
        |s| {
            plain_allowed(s);
            s.config.timeouts.data_stall = Duration::from_secs(1);
        },
        |f, r, tag| {
            let body = vec![5u8; 16 * 1024 * 1024];
            std::fs::write(f.root().join("big.bin"), &body).unwrap();
            let mut c = plain_session(f, r);
            let mut data = slow_download(&mut c, "big.bin", tag);
            let started = Instant::now();
            let code = c.reply().unwrap().code().get();
            let took = started.elapsed();
            eprintln!("{tag}: {code} after {took:?}");
            assert_eq!(code, 426, "{tag}");
            assert!(took < Duration::from_secs(8), "{tag}: took {took:?}");
            assert_eq!(c.cmd("NOOP").unwrap(), 200, "{tag}");
            // The data connection ends (at once, or once the aborted task's grace is over).
            data.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut buf = vec![0u8; 1 << 20];
            let ended = Instant::now();
            loop {
                match data.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => assert!(
                        ended.elapsed() < Duration::from_secs(10),
                        "{tag}: the data connection goes on"
                    ),
                }
            }
            assert!(
                ended.elapsed() < Duration::from_secs(10),
                "{tag}: still open"
            );
        },
    );
}
