//! Issue 16, item 4: two nodes sharing a `RedisLockout` (a real redis-server on loopback)
//! count one address's failures together — wrong passwords from 127.0.0.2 through both
//! nodes lock 127.0.0.2 out on both, and leave 127.0.0.3 alone — and a Redis that goes
//! down does not stop logins.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::hostile::socket_from;
use ftps_conformance::raw::Raw;
use ftps_conformance::redis::Redis;
use ftps_fleet::RedisLockout;
use ftps_proto::server::{ControlTlsPolicy, DataTlsPolicy, ServerConfig, TlsMode};
use ftps_tokio::{LocalFs, Server, StaticUsers};
use std::time::{Duration, Instant};

/// A node: a tokio server on its own runtime, sharing `redis`'s lockout (3 failures).
fn node(rt: &tokio::runtime::Runtime, root: &std::path::Path, url: &str) -> u16 {
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

/// A login from `ip` to the node on `port`: the PASS reply's code.
fn login(ip: [u8; 4], port: u16, password: &str) -> u16 {
    let (mut c, greeting) = Raw::over(socket_from(ip, port).unwrap()).unwrap();
    assert_eq!(greeting.code().get(), 220);
    assert_eq!(c.cmd("USER alice").unwrap(), 331);
    c.cmd(&format!("PASS {password}")).unwrap()
}

#[test]
fn nodes_sharing_redis_lock_an_address_out_together() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let root = std::env::temp_dir().join(format!("ftps-fleet-lockout-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (a, b) = (
        node(&rt, &root, &redis.url()),
        node(&rt, &root, &redis.url()),
    );

    // Three failures from 127.0.0.2, through both nodes: none reaches the bound alone.
    assert_eq!(login([127, 0, 0, 2], a, "wrong"), 530);
    assert_eq!(login([127, 0, 0, 2], b, "wrong"), 530);
    assert_eq!(login([127, 0, 0, 2], a, "wrong"), 530);
    // Locked out on both, the right password too.
    assert_eq!(
        login([127, 0, 0, 2], b, "right"),
        530,
        "node b did not count node a's"
    );
    assert_eq!(login([127, 0, 0, 2], a, "right"), 530);
    // Another address is not.
    assert_eq!(login([127, 0, 0, 3], b, "right"), 230);
    assert_eq!(login([127, 0, 0, 3], a, "right"), 230);

    // Redis goes down: logins go on (within the call's bound), counted per node.
    redis.stop();
    let start = Instant::now();
    assert_eq!(login([127, 0, 0, 4], a, "right"), 230);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "a login waited {:?} on a Redis that is down",
        start.elapsed()
    );
    let _ = std::fs::remove_dir_all(&root);
}
