//! Issue 15, item 1: a native async storage (every call a future, awaited on the session's
//! task) served on every runtime — every command end to end, quotas enforced around it,
//! and slow calls that wait together without taking threads.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_backend::hash::Hasher;
use ftps_backend::{Quota, User};
use ftps_conformance::hostile::{connect, each, plain_allowed, transfer};
use ftps_conformance::memory::MemoryStorage;
use ftps_conformance::raw::Raw;
use ftps_conformance::{Fixture, RunningServer, ServerSetup};
use ftps_proto::hash::HashAlgorithm;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The storage the last `adjust` made, for the case to look into.
static CURRENT: Mutex<Option<MemoryStorage>> = Mutex::new(None);

fn on_memory(s: &mut ServerSetup, memory: MemoryStorage) {
    plain_allowed(s);
    *CURRENT.lock().unwrap() = Some(memory.clone());
    s.memory = Some(memory);
}

fn current() -> MemoryStorage {
    CURRENT.lock().unwrap().clone().unwrap()
}

fn login(f: &Fixture, r: &dyn RunningServer) -> Raw {
    let (user, password) = f.credentials();
    login_as(r, user, password)
}

fn login_as(r: &dyn RunningServer, user: &str, password: &str) -> Raw {
    let mut c = connect(r);
    assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331);
    assert_eq!(c.cmd(&format!("PASS {password}")).unwrap(), 230, "{user}");
    c
}

fn body(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

fn sha256(bytes: &[u8]) -> String {
    let mut h = Hasher::new(HashAlgorithm::Sha256);
    h.update(bytes);
    h.finish_hex()
}

// The tests share `CURRENT`: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn every_command_works_on_an_async_storage() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    each(
        "async-storage",
        |s| on_memory(s, MemoryStorage::new()),
        |f, r, tag| {
            let m = current();
            let mut c = login(f, r);
            let data = body(3 << 20);
            assert_eq!(c.cmd("MKD /d").unwrap(), 257, "{tag}");
            assert_eq!(
                transfer(&mut c, "STOR /d/a.bin", Some(&data)).0,
                226,
                "{tag}"
            );
            assert!(
                m.file("/d/a.bin") == Some(data.clone()),
                "{tag}: stored bytes"
            );
            c.send_bytes(b"SIZE /d/a.bin\r\n").unwrap();
            let size = c.reply().unwrap();
            let size = (size.code().get(), size.first_line().to_owned());
            assert_eq!(size, (213, data.len().to_string()), "{tag}");
            let (code, got) = transfer(&mut c, "RETR /d/a.bin", None);
            assert!(code == 226 && got == data, "{tag}: RETR {code}");
            assert_eq!(c.cmd("REST 1000").unwrap(), 350, "{tag}");
            let (code, got) = transfer(&mut c, "RETR /d/a.bin", None);
            assert!(code == 226 && got[..] == data[1000..], "{tag}: REST + RETR");
            let (code, names) = transfer(&mut c, "NLST /d", None);
            assert_eq!(code, 226, "{tag}");
            assert!(String::from_utf8_lossy(&names).contains("a.bin"), "{tag}");
            // HASH through the trait's default: the storage's own reads, hashed.
            assert_eq!(c.cmd("OPTS HASH SHA-256").unwrap(), 200, "{tag}");
            c.send_bytes(b"HASH /d/a.bin\r\n").unwrap();
            let hash = c.reply().unwrap();
            assert!(
                hash.first_line().contains(&sha256(&data)),
                "{tag}: {}",
                hash.first_line()
            );
            // What the storage cannot do is refused before it is asked.
            assert_eq!(
                transfer(&mut c, "APPE /d/a.bin", Some(b"x")).0,
                502,
                "{tag}"
            );
            assert_eq!(c.cmd("MFMT 20200102030405 /d/a.bin").unwrap(), 213, "{tag}");
            assert_eq!(c.cmd("RNFR /d/a.bin").unwrap(), 350, "{tag}");
            assert_eq!(c.cmd("RNTO /d/b.bin").unwrap(), 250, "{tag}");
            assert!(m.file("/d/a.bin").is_none() && m.file("/d/b.bin").is_some());
            assert_eq!(c.cmd("RMD /d").unwrap(), 550, "{tag}: not empty");
            assert_eq!(c.cmd("DELE /d/b.bin").unwrap(), 250, "{tag}");
            assert_eq!(c.cmd("RMD /d").unwrap(), 250, "{tag}");
            assert_eq!(c.cmd("SIZE /d/b.bin").unwrap(), 550, "{tag}");
            assert_eq!(c.cmd("QUIT").unwrap(), 221, "{tag}");
        },
    );
}

#[test]
fn quotas_hold_around_an_async_storage() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    each(
        "async-quota",
        |s| {
            on_memory(s, MemoryStorage::new());
            let quota = Quota::new(Some(1 << 20), Some(3));
            s.users = vec![(User::new("q").with_quota(quota), "pq".into())];
        },
        |_, r, tag| {
            let m = current();
            let mut c = login_as(r, "q", "pq");
            // Past the bytes: 552, and nothing of it stored.
            let (code, _) = transfer(&mut c, "STOR big", Some(&body(2 << 20)));
            assert_eq!(code, 552, "{tag}");
            assert!(
                m.file("/big").is_none(),
                "{tag}: a refused upload left bytes"
            );
            for name in ["a", "b", "c"] {
                let (code, _) = transfer(&mut c, &format!("STOR {name}"), Some(&body(1000)));
                assert_eq!(code, 226, "{tag}: {name}");
            }
            // Past the files: refused before any data connection is used.
            assert_eq!(transfer(&mut c, "STOR d", Some(b"x")).0, 552, "{tag}");
            assert!(m.file("/d").is_none(), "{tag}");
            // Room again once a file goes.
            assert_eq!(c.cmd("DELE a").unwrap(), 250, "{tag}");
            assert_eq!(transfer(&mut c, "STOR d", Some(b"x")).0, 226, "{tag}");
        },
    );
}

/// The threads this process runs now.
fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
    line[8..].trim().parse().unwrap()
}

/// 50 sessions ask a storage whose every call waits 100 ms, at once: the calls wait
/// together (all 50 at once, answered in about one wait, not 50 × 100 ms or 100 ms per
/// pool thread), and no thread is started for them: they are awaited, not run on a
/// blocking pool.
#[test]
fn fifty_slow_storage_calls_wait_together_without_threads() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    each(
        "async-slow",
        |s| {
            let m = MemoryStorage::new().with_wait(Duration::from_millis(100));
            m.put("/f", b"hello");
            on_memory(s, m);
        },
        |f, r, tag| {
            let m = current();
            let mut sessions: Vec<Raw> = (0..50).map(|_| login(f, r)).collect();
            // Settled: threads that logging in started (password checks) are running.
            std::thread::sleep(Duration::from_millis(200));
            let before = threads();
            let waited_before = m.waits().total();
            let start = Instant::now();
            for c in &mut sessions {
                c.send_bytes(b"SIZE /f\r\n").unwrap();
            }
            for c in &mut sessions {
                let reply = c.reply().unwrap();
                assert_eq!(
                    (reply.code().get(), reply.first_line()),
                    (213, "5"),
                    "{tag}"
                );
            }
            let took = start.elapsed();
            let after = threads();
            let waited = m.waits().total() - waited_before;
            eprintln!(
                "{tag}: 50 SIZE of 100 ms each in {took:?}; {} waiting at most at once; \
                 threads {before} -> {after}",
                m.waits().most_at_once()
            );
            assert!(waited >= 50, "{tag}: only {waited} storage calls waited");
            assert!(
                m.waits().most_at_once() >= 40,
                "{tag}: at most {} calls waited at once",
                m.waits().most_at_once()
            );
            assert!(
                took < Duration::from_millis(1500),
                "{tag}: 50 slow storage calls took {took:?}: they ran one after another"
            );
            assert!(
                after <= before + 5,
                "{tag}: threads grew from {before} to {after} for awaited storage calls"
            );
        },
    );
}
