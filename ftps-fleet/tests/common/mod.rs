//! What the fleet's lockout tests share: a node (a tokio server sharing a Redis lockout:
//! 3 failures in 60 s lock an address out for 30 s) and a login from a loopback address.

#![allow(dead_code)] // Each test binary uses its own part of it.
#![allow(clippy::unwrap_used)] // Test support: a broken step fails the test loudly.

use ftps_conformance::hostile::socket_from;
use ftps_conformance::raw::Raw;
use ftps_fleet::RedisLockout;
use ftps_proto::server::{ControlTlsPolicy, DataTlsPolicy, ServerConfig, TlsMode};
use ftps_tokio::{LocalFs, Server, StaticUsers};
use std::path::Path;
use std::time::Duration;

/// A node on `rt` serving `root`, sharing the lockout in Redis at `url`: its port.
pub(crate) fn node(rt: &tokio::runtime::Runtime, root: &Path, url: &str) -> u16 {
    let (window, lock) = (Duration::from_secs(60), Duration::from_secs(30));
    let lockout = RedisLockout::connect(url, 3, window, lock).unwrap();
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

/// A login as alice from `ip` to the node on `port`: the PASS reply's code.
pub(crate) fn login(ip: [u8; 4], port: u16, password: &str) -> u16 {
    let (mut c, greeting) = Raw::over(socket_from(ip, port).unwrap()).unwrap();
    assert_eq!(greeting.code().get(), 220);
    assert_eq!(c.cmd("USER alice").unwrap(), 331);
    c.cmd(&format!("PASS {password}")).unwrap()
}

/// A tokio runtime for the nodes, and a fresh directory with an empty `root`.
pub(crate) fn place(name: &str) -> (tokio::runtime::Runtime, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("ftps-fleet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("root")).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    (rt, dir)
}
