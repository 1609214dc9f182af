//! Issue 16, item 5: a server drained before it goes away (`Server::drain`), on every
//! runtime: idle sessions get 421 at once, a transfer under way finishes (its 226) before
//! its session gets 421, nothing new is accepted, and past the grace period what is left
//! is closed (an unfinished upload not published).

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::hostile::{connect, each, plain_allowed, start_plain_upload};
use ftps_conformance::raw::Raw;
use ftps_conformance::{Fixture, RunningServer};
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn login(f: &Fixture, r: &dyn RunningServer) -> Raw {
    let (user, password) = f.credentials();
    let mut c = connect(r);
    assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331);
    assert_eq!(c.cmd(&format!("PASS {password}")).unwrap(), 230);
    c
}

#[test]
fn idle_sessions_get_421_and_nothing_new_is_accepted() {
    each("drain-idle", plain_allowed, |f, r, tag| {
        let mut a = login(f, r);
        let mut b = login(f, r);
        let mut waiting = connect(r); // not logged in
        let start = Instant::now();
        assert_eq!(
            r.drain(Duration::from_secs(10)),
            0,
            "{tag}: sessions were cut"
        );
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{tag}: idle sessions waited"
        );
        for (who, c) in [("a", &mut a), ("b", &mut b), ("waiting", &mut waiting)] {
            assert_eq!(c.reply().unwrap().code().get(), 421, "{tag}: {who}");
            assert!(c.closed(), "{tag}: {who} stays open");
        }
        // The listener is gone: a new client is not served.
        let served = TcpStream::connect(r.explicit())
            .ok()
            .and_then(|tcp| Raw::over(tcp).ok())
            .is_some_and(|(_, greeting)| greeting.code().get() == 220);
        assert!(!served, "{tag}: a new session was accepted while draining");
    });
}

#[test]
fn an_upload_under_way_finishes_before_its_session_ends() {
    each("drain-upload", plain_allowed, |f, r, tag| {
        let mut c = login(f, r);
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        let mut data = start_plain_upload(&mut c, "STOR drained.bin").unwrap();
        data.write_all(&body[..1_000_000]).unwrap();
        // The client goes on while the server drains: the rest, then its replies.
        let rest = body[1_000_000..].to_vec();
        let client = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            data.write_all(&rest).unwrap();
            drop(data);
            let done = c.reply().unwrap().code().get();
            let then = c.reply().unwrap().code().get();
            (done, then, c.closed())
        });
        let cut = r.drain(Duration::from_secs(20));
        let (done, then, closed) = client.join().unwrap();
        assert_eq!(cut, 0, "{tag}: the uploading session was cut");
        assert_eq!((done, then, closed), (226, 421, true), "{tag}");
        let stored = std::fs::read(f.root().join("drained.bin")).unwrap();
        assert!(stored == body, "{tag}: the upload is not whole");
    });
}

#[test]
fn past_the_grace_period_the_rest_is_closed_and_nothing_partial_kept() {
    each("drain-grace", plain_allowed, |f, r, tag| {
        let mut c = login(f, r);
        let mut data = start_plain_upload(&mut c, "STOR stuck.bin").unwrap();
        data.write_all(&[7u8; 100_000]).unwrap();
        // The client never finishes.
        let start = Instant::now();
        let cut = r.drain(Duration::from_secs(1));
        let took = start.elapsed();
        assert_eq!(cut, 1, "{tag}");
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(6),
            "{tag}: drained in {took:?}"
        );
        assert!(
            c.closed() || c.reply().is_err(),
            "{tag}: the session stays open"
        );
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !f.root().join("stuck.bin").exists(),
            "{tag}: an unfinished upload was published"
        );
        drop(data);
    });
}
