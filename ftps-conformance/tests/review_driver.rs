//! The outside review of the one driver (issue 14, session 6: 25 attacks on the tokio,
//! blocking and smol servers over loopback; 3 failed). Each failure, over real sockets,
//! on every server runtime.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::hostile::{
    connect, each, logged_in_with, plain_allowed, plain_session, receiver,
};
use std::io::Read;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

// F1: a client that sent close_notify on the control connection and then one more byte
// in a later segment made the driver loop forever (rustls takes nothing after a
// close_notify, and the loop waited for the byte to be taken): a core pinned, and on
// tokio and smol every other session stalled; the session never ended. No password
// needed. Now the connection ends, and everyone else is served.
#[test]
fn f1_bytes_after_close_notify_end_the_session_and_nobody_else_waits() {
    each(
        "f1-close-notify",
        |_| {},
        |f, r, tag| {
            let (tls, _) = {
                let (c, tls) = logged_in_with(f, r);
                (tls, c)
            };
            let mut attacker = connect(r);
            attacker.auth_tls(tls.clone()).unwrap();
            attacker.close_notify_then(b"X").unwrap();
            // Everyone else is served at once.
            let started = Instant::now();
            let (mut other, _) = logged_in_with(f, r);
            assert_eq!(other.cmd("NOOP").unwrap(), 200, "{tag}");
            let took = started.elapsed();
            assert!(
                took < Duration::from_secs(3),
                "{tag}: another login took {took:?}"
            );
            // The attacker's session ends.
            assert!(
                attacker.socket_closed_within(Duration::from_secs(5)),
                "{tag}: the session goes on"
            );
        },
    );
}

// F2: an anonymous session with a download its client did not read was evicted to make
// room; on the blocking runtime its data task (in a socket write, with no deadline) went
// on streaming the whole file with no session around it: a thread, a socket and an open
// file held outside every cap. Now the session's data tasks end with it, however it ends.
#[test]
fn f2_an_evicted_session_takes_its_transfers_with_it() {
    each(
        "f2-evicted-download",
        |s| {
            plain_allowed(s);
            s.config.anonymous = true;
            s.max_sessions = (1, 10);
        },
        |f, r, tag| {
            let body = vec![9u8; 32 * 1024 * 1024];
            std::fs::write(f.root().join("big.bin"), &body).unwrap();
            let mut anon = connect(r);
            assert_eq!(anon.cmd("USER anonymous").unwrap(), 331, "{tag}");
            assert_eq!(anon.cmd("PASS guest@").unwrap(), 230, "{tag}");
            anon.send_bytes(b"EPSV\r\n").unwrap();
            let reply = anon.reply().unwrap();
            let port = ftps_proto::address::parse_epsv_reply(reply.first_line()).unwrap();
            let mut data = receiver(SocketAddr::from(([127, 0, 0, 1], port)), 16 * 1024);
            anon.send_bytes(b"RETR big.bin\r\n").unwrap();
            assert!(anon.any_reply().unwrap().code().is_preliminary(), "{tag}");
            std::thread::sleep(Duration::from_millis(500));
            // The named user takes the only slot: the anonymous session is evicted.
            let mut user = plain_session(f, r);
            assert_eq!(user.cmd("NOOP").unwrap(), 200, "{tag}");
            // Its data connection ends too, however fast its client reads.
            data.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let started = Instant::now();
            let mut got = 0usize;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                match data.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "{tag}: streams on"
                );
            }
            eprintln!(
                "{tag}: {got} bytes after the eviction, ended in {:?}",
                started.elapsed()
            );
            assert!(
                got < body.len(),
                "{tag}: the whole file came after the eviction"
            );
        },
    );
}

// F3: PASV after PASV: a replaced listener whose task had not started yet when the next
// PASV aborted it lived on for the abort's 3 s grace on the blocking runtime (10,000
// pipelined PASV held 9,500 threads and descriptors; three sessions ran the process out
// of descriptors); smol held 2,000 descriptors for a moment. Now each session holds
// about one.
#[test]
fn f3_pipelined_pasv_leave_about_one_listener() {
    each("f3-pasv-flood", plain_allowed, |f, r, tag| {
        let mut c = plain_session(f, r);
        let before = open_descriptors();
        const PASV: usize = 2000;
        c.send_bytes(&b"PASV\r\n".repeat(PASV)).unwrap();
        let mut peak = 0;
        for i in 0..PASV {
            assert_eq!(c.reply().unwrap().code().get(), 227, "{tag}: reply {i}");
            if i % 100 == 0 {
                peak = peak.max(open_descriptors().saturating_sub(before));
            }
        }
        peak = peak.max(open_descriptors().saturating_sub(before));
        eprintln!("{tag}: {PASV} pipelined PASV: at most {peak} more descriptors");
        assert!(peak < 200, "{tag}: {peak} descriptors held");
        assert_eq!(c.cmd("NOOP").unwrap(), 200, "{tag}");
    });
}

/// This process's open descriptors (the servers under test run in it).
fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

// G1 (second review): a client that repeats PASV, RETR, connect and ABOR without reading
// any data left every aborted transfer alive for the abort's 3 s grace; on the blocking
// runtime each was a thread in a socket write (1,600 cycles in 5 s: 429 threads, 207 MB;
// three sessions: 1,262 threads). Now a session lets at most a few end in grace; the
// oldest past them is cut at once.
#[test]
fn g1_an_abor_storm_holds_a_few_aborted_transfers_at_most() {
    each("g1-abor-storm", plain_allowed, |f, r, tag| {
        std::fs::write(f.root().join("big.bin"), vec![3u8; 32 * 1024 * 1024]).unwrap();
        let mut c = plain_session(f, r);
        let before = threads();
        let mut peak = 0;
        let mut held = Vec::new();
        for i in 0..100 {
            c.send_bytes(b"EPSV\r\n").unwrap();
            let reply = c.reply().unwrap();
            let port = ftps_proto::address::parse_epsv_reply(reply.first_line()).unwrap();
            held.push(receiver(SocketAddr::from(([127, 0, 0, 1], port)), 4096));
            c.send_bytes(b"RETR big.bin\r\n").unwrap();
            assert!(c.any_reply().unwrap().code().is_preliminary(), "{tag}: {i}");
            // Long enough for the server's writes to fill the buffers and block.
            std::thread::sleep(Duration::from_millis(25));
            c.send_bytes(b"ABOR\r\n").unwrap();
            let first = c.reply().unwrap().code().get();
            if first == 426 {
                assert_eq!(c.reply().unwrap().code().get(), 226, "{tag}: {i}");
            }
            peak = peak.max(threads().saturating_sub(before));
        }
        eprintln!("{tag}: 100 RETR + ABOR, data never read: at most {peak} more threads");
        assert!(peak < 40, "{tag}: {peak} threads held");
        assert_eq!(c.cmd("NOOP").unwrap(), 200, "{tag}");
        drop(held);
    });
}

/// This process's threads (the servers under test run in it).
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}
