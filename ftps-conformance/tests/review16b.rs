//! Review 16b: attacks from outside on the fleet pieces of issue 16 — the storage call
//! deadline, the drain and the Redis lockout — over real sockets. Each test asserts what
//! should happen; the ones that fail on the reviewed code are `#[ignore]`d with the
//! finding they show ("review16b finding N"), so the suite stays green and
//! `cargo test -- --ignored` shows them. The tests not ignored are attacks that held,
//! kept as guards. (Findings 1-3 are the binary's: `ftps-cli/tests/review16b.rs`.)
//!
//! 4. an upload whose commit outlives the storage deadline is answered 451 (failed),
//!    yet the blocking storage's commit runs on and publishes it (mended: a commit or a
//!    change of the tree past the deadline ends the session without a reply, as a broken
//!    connection would; calls that change nothing are still answered 451);
//! 5. a session mid-TLS-handshake held the drain until the grace period's end (fixed: a
//!    drain ends a control handshake under way);
//! 6. a session flooded with pipelined commands never saw the drain (partly mended: the
//!    session's loop looks at the drain before each wait; still 1 run in 12; ignored).
//! 7. the auth timeout does not bound the lockout's calls: a hung `Lockout` hangs every
//!    login for good (mended: each call bounded by it, failing open).

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_backend::{BlockingStorage, Entries, LocalFs, LocalUpload, User};
use ftps_conformance::hostile::{socket_from, start_plain_upload};
use ftps_conformance::raw::Raw;
use ftps_proto::server::{
    ControlTlsPolicy, DataTlsPolicy, Metadata, ServerConfig, StorageCapabilities, StorageError,
    TlsMode,
};
use ftps_proto::{Timestamp, VirtualPath};
use ftps_tokio::{Server, StaticUsers};
use std::io::Write;
use std::time::{Duration, Instant};

/// `LocalFs` whose commits and file removals take `wait` first (a slow disk flush, an object store's
/// multipart completion): a blocking storage, as `ftps serve` runs.
struct SlowCommit {
    fs: LocalFs,
    wait: Duration,
}

impl BlockingStorage for SlowCommit {
    type Reader = <LocalFs as BlockingStorage>::Reader;
    type Upload = LocalUpload;

    fn capabilities(&self) -> StorageCapabilities {
        self.fs.capabilities()
    }
    fn stat(&self, user: &User, path: &VirtualPath) -> Result<Metadata, StorageError> {
        self.fs.stat(user, path)
    }
    fn list(&self, user: &User, path: &VirtualPath) -> Result<Vec<Metadata>, StorageError> {
        self.fs.list(user, path)
    }
    fn list_entries(&self, user: &User, path: &VirtualPath) -> Result<Entries, StorageError> {
        self.fs.list_entries(user, path)
    }
    fn make_dir(&self, user: &User, path: &VirtualPath) -> Result<(), StorageError> {
        self.fs.make_dir(user, path)
    }
    fn remove_dir(&self, user: &User, path: &VirtualPath) -> Result<(), StorageError> {
        self.fs.remove_dir(user, path)
    }
    fn remove_file(&self, user: &User, path: &VirtualPath) -> Result<(), StorageError> {
        std::thread::sleep(self.wait);
        self.fs.remove_file(user, path)
    }
    fn rename(
        &self,
        user: &User,
        from: &VirtualPath,
        to: &VirtualPath,
    ) -> Result<(), StorageError> {
        self.fs.rename(user, from, to)
    }
    fn set_modified(
        &self,
        user: &User,
        path: &VirtualPath,
        time: Timestamp,
    ) -> Result<(), StorageError> {
        self.fs.set_modified(user, path, time)
    }
    fn open_read(
        &self,
        user: &User,
        path: &VirtualPath,
        offset: u64,
    ) -> Result<(Self::Reader, u64), StorageError> {
        self.fs.open_read(user, path, offset)
    }
    fn open_write(
        &self,
        user: &User,
        path: &VirtualPath,
        offset: u64,
        append: bool,
        unique: bool,
    ) -> Result<(Self::Upload, VirtualPath), StorageError> {
        self.fs.open_write(user, path, offset, append, unique)
    }
    fn commit(&self, upload: Self::Upload, keep: bool) -> Result<(), StorageError> {
        std::thread::sleep(self.wait);
        self.fs.commit(upload, keep)
    }
}

/// A tokio server over `storage` (plain FTP allowed, user `alice:pw`) with a storage
/// deadline of `limit`, serving on its own runtime; its port.
fn slow_server(
    rt: &tokio::runtime::Runtime,
    storage: SlowCommit,
    limit: Duration,
) -> std::net::SocketAddr {
    let config = ServerConfig::default()
        .with_control_tls(ControlTlsPolicy::Allow)
        .with_data_tls(DataTlsPolicy::Allow);
    let server = Server::builder(storage, StaticUsers::new().with_password("alice", "pw"))
        .config(config)
        .storage_timeout(limit)
        .build();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { server.serve(listener, TlsMode::Explicit).await });
        addr
    })
}

/// Finding 4. An upload whose commit takes longer than `storage_timeout` (here a
/// blocking storage whose commit takes 1.5 s, a deadline of 0.5 s): the client hears 451
/// — the upload failed — but the commit's thread runs on, as the builder's documentation
/// says ("a blocking storage's thread runs to its end on the pool"), and publishes the
/// file a second later. The reply lies: a client that believes it (a `--retry`, a
/// script that removes its local copy only on success, an APPE retried) acts on a
/// failure that did not happen; the previous version of the file is replaced by an
/// upload reported failed. Either the commit must not be cut by the deadline (the upload
/// is the one call whose outcome the client must hear), or a commit cut must be undone or
/// reported as unknown (and the file never published after a 4xx).
#[test]
fn a_commit_past_the_deadline_is_not_published_after_a_failure_reply() {
    let root = std::env::temp_dir().join(format!("ftps-r16b-commit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("a.bin"), b"the previous version").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let storage = SlowCommit {
        fs: LocalFs::new(&root).unwrap(),
        wait: Duration::from_millis(1500),
    };
    let addr = slow_server(&rt, storage, Duration::from_millis(500));
    let (mut c, greeting) = Raw::over(socket_from([127, 0, 0, 1], addr.port()).unwrap()).unwrap();
    assert_eq!(greeting.code().get(), 220);
    assert_eq!(c.cmd("USER alice").unwrap(), 331);
    assert_eq!(c.cmd("PASS pw").unwrap(), 230);
    let mut data = start_plain_upload(&mut c, "STOR a.bin").unwrap();
    data.write_all(&[7u8; 10_000]).unwrap();
    data.shutdown(std::net::Shutdown::Write).unwrap();
    drop(data);
    let start = Instant::now();
    // Mended: past the deadline the session ends without a reply (the outcome unknown,
    // as when a connection breaks): nothing false is claimed either way.
    let Ok(reply) = c.reply() else {
        let _ = std::fs::remove_dir_all(&root);
        return;
    };
    let code = reply.code().get();
    let answered = start.elapsed();
    // Let a commit left running finish.
    std::thread::sleep(Duration::from_millis(2500));
    let stored = std::fs::read(root.join("a.bin")).unwrap();
    let _ = std::fs::remove_dir_all(&root);
    if code == 226 {
        assert_eq!(stored, vec![7u8; 10_000], "226, yet not stored");
    } else {
        assert_eq!(
            stored,
            b"the previous version".to_vec(),
            "the upload was answered {code} after {answered:?} (failed), yet it replaced \
             the file: the commit ran on past the deadline and published it"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Drain
// ---------------------------------------------------------------------------------------

use ftps_conformance::hostile::{connect, each, plain_allowed};
use ftps_conformance::{Fixture, RunningServer};

fn login_plain(f: &Fixture, r: &dyn RunningServer) -> Raw {
    let (user, password) = f.credentials();
    let mut c = connect(r);
    assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331);
    assert_eq!(c.cmd(&format!("PASS {password}")).unwrap(), 230);
    c
}

/// Drains `r` with `grace` on a thread of its own: how long it took and how many sessions
/// it had to cut.
fn timed_drain(r: &dyn RunningServer, grace: Duration) -> (Duration, usize) {
    let start = Instant::now();
    let cut = r.drain(grace);
    (start.elapsed(), cut)
}

/// Finding 6. A client flooding NOOPs (pipelined, as fast as it can, reading its replies
/// on another thread) keeps its session from ever seeing the drain: the session's wait
/// polls the control input first, and input is always there, so the drain's signal is
/// never looked at; the session answers NOOPs until the grace period ends and it is cut
/// (8 s here, not the moment it is idle). Any logged-in client stretches every rolling
/// restart of its node to the whole grace period. Partly mended: the session's loop
/// looks at the drain before it waits (before, it failed every run); still, about 1 run
/// in 12 (seen on smol; 1 in 20 on blocking with two busy loops beside it) the session
/// was cut at the grace period's end. Mended: `settle`, which works through the backlog
/// of pipelined commands, looks at the drain on each round too (0 failures in 70 runs
/// with the same two busy loops).
#[test]
fn a_noop_flood_does_not_hold_the_drain() {
    each("r16b-drain-flood", plain_allowed, |f, r, tag| {
        let c = login_plain(f, r);
        let tcp = c.plain_socket().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut writer = c.plain_socket().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let flood = std::thread::spawn(move || {
            let batch = b"NOOP\r\n".repeat(100);
            while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
                if writer.write_all(&batch).is_err() {
                    break;
                }
            }
        });
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            let mut lines = std::io::BufReader::new(tcp).lines();
            loop {
                match lines.next() {
                    Some(Ok(l)) if l.starts_with("421") => return true,
                    Some(Ok(_)) => {}
                    _ => return false,
                }
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        let (took, cut) = timed_drain(r, Duration::from_secs(8));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let told = reader.join().unwrap();
        let _ = flood.join();
        assert_eq!(cut, 0, "{tag}: the flooding session was cut after {took:?}");
        // The 421 itself may be lost: the server closes with the flood's bytes unread,
        // so its kernel resets the connection, and a reset discards what the client had
        // not read yet. That the session ended, and when, is what counts here.
        let _ = told;
        assert!(
            took < Duration::from_secs(4),
            "{tag}: the drain took {took:?}"
        );
    });
}

/// Finding 5. A session in the middle of the control connection's TLS handshake (AUTH
/// TLS answered 234, then the client sends nothing — or a slow ClientHello) holds the
/// drain until the handshake timeout (15 s by default) or the grace period, whichever
/// comes first: the session does not look at the drain while it handshakes, though
/// nothing is under way that a drain should wait for (no transfer, no login; a 421
/// cannot even be sent). Here a grace of 5 s and a handshake timeout of 15 s: the drain
/// waits its whole grace and cuts the session, where it should close it at once. One
/// client per node (or a balancer's health check doing AUTH TLS slowly) stretches every
/// rolling restart to its grace. Fixed: a drain ends a control TLS handshake under way.
#[test]
fn a_stalled_tls_handshake_does_not_hold_the_drain() {
    each(
        "r16b-drain-handshake",
        |s| s.config.timeouts.tls_handshake = Duration::from_secs(15),
        |_f, r, tag| {
            let mut c = connect(r);
            assert_eq!(c.cmd("AUTH TLS").unwrap(), 234);
            // An implicit-TLS connection that never says hello, too.
            let implicit = std::net::TcpStream::connect(r.implicit()).unwrap();
            std::thread::sleep(Duration::from_millis(200));
            let (took, cut) = timed_drain(r, Duration::from_secs(5));
            drop(implicit);
            assert!(
                cut == 0 && took < Duration::from_secs(3),
                "{tag}: a stalled TLS handshake held the drain {took:?} ({cut} sessions cut)"
            );
        },
    );
}

// ---------------------------------------------------------------------------------------
// Storage deadline, other calls; the lockout's deadline
// ---------------------------------------------------------------------------------------

/// Finding 4, on DELE: a delete whose storage call outlives the deadline (a blocking
/// storage taking 1.5 s, a deadline of 0.5 s) is answered 451 — not deleted — and the
/// file is gone a second later. The same holds for RNTO, MKD, RMD and MFMT: every call
/// on a blocking storage runs to its end after the client was told it failed.
#[test]
fn a_delete_past_the_deadline_is_not_done_after_a_failure_reply() {
    let root = std::env::temp_dir().join(format!("ftps-r16b-dele-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("keep.bin"), b"still here?").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let storage = SlowCommit {
        fs: LocalFs::new(&root).unwrap(),
        wait: Duration::from_millis(1500),
    };
    let addr = slow_server(&rt, storage, Duration::from_millis(500));
    let (mut c, greeting) = Raw::over(socket_from([127, 0, 0, 1], addr.port()).unwrap()).unwrap();
    assert_eq!(greeting.code().get(), 220);
    assert_eq!(c.cmd("USER alice").unwrap(), 331);
    assert_eq!(c.cmd("PASS pw").unwrap(), 230);
    // Mended: past the deadline the session ends without a reply (the outcome unknown).
    let Ok(code) = c.cmd("DELE keep.bin") else {
        let _ = std::fs::remove_dir_all(&root);
        return;
    };
    std::thread::sleep(Duration::from_millis(2500));
    let there = root.join("keep.bin").exists();
    let _ = std::fs::remove_dir_all(&root);
    assert!(
        code == 250 || there,
        "DELE answered {code} (not deleted), yet the file is gone"
    );
}

/// A lockout whose calls never answer (a lockout service behind a black-holed route,
/// written without a deadline of its own).
struct HungLockout;

impl ftps_async::Lockout for HungLockout {
    fn allows(&self, _ip: std::net::IpAddr) -> ftps_async::runtime::BoxFuture<'_, bool> {
        Box::pin(std::future::pending())
    }
    fn failed(&self, _ip: std::net::IpAddr) -> ftps_async::runtime::BoxFuture<'_, ()> {
        Box::pin(std::future::pending())
    }
}

/// Finding 7. The login's deadline (`auth_timeout`: "how long a login check may take,
/// whatever the authenticator waits on"; past it, 421) does not cover the lockout's
/// calls: `check_login` awaits `Lockout::allows` before the timed check (and again after,
/// and `failed`) with no deadline. The trait asks implementations to bound their own
/// waits, but one that does not (an application's own lockout service) hangs every
/// login for good: PASS is never answered, not even after the auth timeout, and a drain
/// waits for the "login check under way" to its grace. Shown with a lockout that never
/// answers and an auth timeout of 2 s: no reply to PASS within 6 s.
#[test]
fn a_hung_lockout_is_bounded_by_the_auth_timeout() {
    let root = std::env::temp_dir().join(format!("ftps-r16b-lockout-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = ServerConfig::default()
        .with_control_tls(ControlTlsPolicy::Allow)
        .with_data_tls(DataTlsPolicy::Allow);
    let server = Server::builder(
        LocalFs::new(&root).unwrap(),
        StaticUsers::new().with_password("alice", "pw"),
    )
    .config(config)
    .auth_timeout(Duration::from_secs(2))
    .lockout(HungLockout)
    .build();
    let addr = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { server.serve(listener, TlsMode::Explicit).await });
        addr
    });
    let tcp = socket_from([127, 0, 0, 1], addr.port()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
    let (mut c, greeting) = Raw::over(tcp).unwrap();
    assert_eq!(greeting.code().get(), 220);
    assert_eq!(c.cmd("USER alice").unwrap(), 331);
    let start = Instant::now();
    let answer = c.cmd("PASS pw");
    let _ = std::fs::remove_dir_all(&root);
    assert!(
        answer.is_ok(),
        "PASS unanswered after {:?} with an auth timeout of 2 s: {answer:?}",
        start.elapsed()
    );
}
