//! Review 16b: the Redis lockout attacked from outside, with a redis-server of the test's
//! own on loopback (so it can be stopped, restarted on its port, or frozen with SIGSTOP).
//! Tests not ignored are attacks that held, kept as guards; findings are ignored with
//! their number ("review16b finding N"; the list is in
//! `ftps-conformance/tests/review16b.rs`).

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::hostile::socket_from;
use ftps_conformance::raw::Raw;
use ftps_fleet::RedisLockout;
use ftps_proto::server::{ControlTlsPolicy, DataTlsPolicy, ServerConfig, TlsMode};
use ftps_tokio::{LocalFs, Server, StaticUsers};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REDIS: &str = "/usr/bin/redis-server";

/// A redis-server of the test's own on `port` (no persistence), once it answers.
fn redis_on(port: u16, dir: &Path) -> Child {
    let child = Command::new(REDIS)
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn signal(child: &Child, sig: &str) {
    let sent = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// A node sharing the lockout at `url` (3 failures in 60 s lock for 30 s).
fn node(rt: &tokio::runtime::Runtime, root: &Path, url: &str) -> u16 {
    let lockout =
        RedisLockout::connect(url, 3, Duration::from_secs(60), Duration::from_secs(30)).unwrap();
    let config = ServerConfig::default()
        .with_control_tls(ControlTlsPolicy::Allow)
        .with_data_tls(DataTlsPolicy::Allow);
    let server = Server::builder(
        LocalFs::new(root).unwrap(),
        StaticUsers::new().with_password("alice", "right"),
    )
    .config(config)
    .lockout(lockout)
    .build();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { server.serve(listener, TlsMode::Explicit).await });
        port
    })
}

/// A login from `ip`: the PASS reply's code.
fn login(ip: [u8; 4], port: u16, password: &str) -> u16 {
    let (mut c, greeting) = Raw::over(socket_from(ip, port).unwrap()).unwrap();
    assert_eq!(greeting.code().get(), 220);
    assert_eq!(c.cmd("USER alice").unwrap(), 331);
    c.cmd(&format!("PASS {password}")).unwrap()
}

struct Setup {
    rt: tokio::runtime::Runtime,
    dir: std::path::PathBuf,
    port: u16,
}

fn setup(name: &str) -> Option<Setup> {
    if !Path::new(REDIS).is_file() {
        eprintln!("redis-server missing: skipped");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("ftps-r16b-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("root")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    Some(Setup { rt, dir, port })
}

/// Held: Redis restarted (on its port, empty) — once each node has met the broken
/// connection, the nodes count together in Redis again: two failures through node a and
/// one through node b (neither node's own count reaches 3) lock the address out on both.
#[test]
fn after_a_redis_restart_the_nodes_count_together_again() {
    let Some(s) = setup("restart") else { return };
    let mut redis = redis_on(s.port, &s.dir);
    let url = format!("redis://127.0.0.1:{}/", s.port);
    let (a, b) = (
        node(&s.rt, &s.dir.join("root"), &url),
        node(&s.rt, &s.dir.join("root"), &url),
    );
    let _ = redis.kill();
    let _ = redis.wait();
    let mut redis = redis_on(s.port, &s.dir);
    // Each node's first call after the restart meets the old connection (and fails open).
    for node in [a, b] {
        for _ in 0..2 {
            assert_eq!(login([127, 0, 0, 9], node, "right"), 230);
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(login([127, 0, 0, 5], a, "wrong"), 530);
    assert_eq!(login([127, 0, 0, 5], b, "wrong"), 530);
    assert_eq!(login([127, 0, 0, 5], a, "wrong"), 530);
    let locked = login([127, 0, 0, 5], b, "right");
    let _ = redis.kill();
    let _ = redis.wait();
    let _ = std::fs::remove_dir_all(&s.dir);
    assert_eq!(
        locked, 530,
        "after a Redis restart, node b no longer saw node a's failures"
    );
}

/// Held: a Redis that hangs (SIGSTOP: the connection open, no answer) holds no login
/// long — each call gives up after 500 ms and the lockout fails open — and while it hangs
/// a node still locks a guesser out on its own (3 failures), so fail-open is not
/// unbounded guessing; once Redis answers again (SIGCONT), logins are as before.
#[test]
fn a_hung_redis_holds_no_login_and_the_node_still_locks_out() {
    let Some(s) = setup("hung") else { return };
    let mut redis = redis_on(s.port, &s.dir);
    let url = format!("redis://127.0.0.1:{}/", s.port);
    let a = node(&s.rt, &s.dir.join("root"), &url);
    signal(&redis, "-STOP");
    let start = Instant::now();
    let ok = login([127, 0, 0, 6], a, "right");
    let took = start.elapsed();
    let wrong: Vec<u16> = (0..3).map(|_| login([127, 0, 0, 7], a, "wrong")).collect();
    let after = login([127, 0, 0, 7], a, "right");
    signal(&redis, "-CONT");
    std::thread::sleep(Duration::from_millis(300));
    let again = login([127, 0, 0, 6], a, "right");
    let _ = redis.kill();
    let _ = redis.wait();
    let _ = std::fs::remove_dir_all(&s.dir);
    assert_eq!(ok, 230, "a login while Redis hangs");
    assert!(took < Duration::from_secs(3), "a login waited {took:?}");
    assert_eq!(wrong, [530, 530, 530]);
    assert_eq!(after, 530, "guessing went on unbounded while Redis hung");
    assert_eq!(again, 230, "after Redis answered again");
}
