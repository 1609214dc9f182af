//! `Client::connect_via` through a real SOCKS5 proxy (microsocks, from Debian's packages;
//! `cargo xtask ci` installs it): the example's dialer (`examples/socks5.rs`) opens the
//! control connection and every passive data connection through the proxy, TLS runs over
//! them (PROT P, the server requiring resumed data sessions), and with the proxy gone no
//! data connection can be made. Active mode is refused with a dialer.
//!
//! Uploads too: microsocks has no half-close (at the client's FIN it closes both of its
//! sockets, and the server's unread bytes there make that a reset, which destroyed upload
//! bytes the server had not read yet: 426 for at least 9 of 60 uploads before the
//! client waited for the server's end; see `end_upload` in ftps-async).

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

#[allow(dead_code)] // Its `main` is the example's.
#[path = "../examples/socks5.rs"]
mod socks5;

use ftps_proto::server::{ServerConfig, TlsMode};
use ftps_tokio::client::{self, Client, ClientOptions, Error};
use ftps_tokio::{LocalFs, Server, StaticUsers, Target, tls};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// microsocks on 127.0.0.1, once it accepts connections; killed on drop.
struct Proxy {
    child: Child,
    addr: SocketAddr,
}

impl Proxy {
    fn start() -> Option<Proxy> {
        let found = Command::new("microsocks")
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        assert!(
            found || std::env::var_os("FTPS_REQUIRE_PEERS").is_none(),
            "microsocks is required but not installed"
        );
        if !found {
            eprintln!("microsocks not installed: skipped");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("microsocks")
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "microsocks did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Proxy { child, addr })
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Our server (explicit TLS, alice, a certificate for `localhost`) on `root`: its port and
/// its certificate (PEM).
async fn serve(root: &std::path::Path) -> (u16, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let users = StaticUsers::new().with_password("alice", "wonderland");
    let server = Server::builder(LocalFs::new(root).unwrap(), users)
        .config(ServerConfig::default())
        .tls(
            tls::server_config_from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
                .unwrap(),
        )
        .build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { server.serve(listener, TlsMode::Explicit).await });
    (port, cert.pem())
}

/// alice's options for the server on `port`, trusting `cert`.
fn alice(port: u16, cert: &str) -> ClientOptions {
    let mut o = ClientOptions::new("localhost", port, "alice", "wonderland").unwrap();
    o.tls = Some(Arc::new(
        client::client_config_from_pem(cert.as_bytes(), client::BOTH).unwrap(),
    ));
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_goes_through_the_proxy() {
    let Some(mut proxy) = Proxy::start() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("ftps-socks5-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("root")).unwrap();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("root/data.bin"), &body).unwrap();
    let (port, cert) = serve(&dir.join("root")).await;

    let options = || alice(port, &cert);
    let dialed: Arc<Mutex<Vec<Target>>> = Arc::default();
    let seen = dialed.clone();
    let at = proxy.addr;
    let mut c = Client::connect_via(options(), move |target: Target| {
        seen.lock().unwrap().push(target.clone());
        socks5::socks5_connect(at, target)
    })
    .await
    .unwrap();
    let names: Vec<String> = c
        .list(None)
        .await
        .unwrap()
        .iter()
        .map(|e| e.name.clone())
        .collect();
    assert_eq!(names, ["data.bin"]);
    let mut got = Vec::new();
    c.retrieve("data.bin", 0, &mut got).await.unwrap();
    assert!(got == body);
    {
        let dialed = dialed.lock().unwrap();
        // The control connection, then a data connection for each transfer, each to the
        // server's name as the options give it (the proxy resolves it).
        assert_eq!(dialed.len(), 3, "{dialed:?}");
        assert!(
            !dialed[0].data && dialed[1..].iter().all(|t| t.data),
            "{dialed:?}"
        );
        assert!(dialed.iter().all(|t| t.host == "localhost"), "{dialed:?}");
        assert_eq!(dialed[0].port, port);
    }
    // The proxy gone: the next data connection cannot be made.
    let _ = proxy.child.kill();
    let _ = proxy.child.wait();
    assert!(c.list(None).await.is_err(), "a listing without the proxy");
    drop(c);

    // Active mode cannot go through a dialer: refused before connecting.
    let active = options().map_session(|s| s.with_passive(false));
    match Client::connect_via(active, move |target| socks5::socks5_connect(at, target)).await {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput),
        other => panic!("active mode through a dialer: {:?}", other.map(|_| ())),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Uploads through a proxy without half-close (microsocks closes both of its sockets at
/// the client's FIN, and a reset follows where the server's bytes are still unread
/// there): every one arrives whole, because the client sends its FIN only after the
/// server's end of the data connection (see `end_upload`). 60 uploads of sizes from 0
/// to 400 KB, each compared on the server's disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_through_the_proxy_arrive_whole() {
    let Some(proxy) = Proxy::start() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("ftps-socks5-up-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("root")).unwrap();
    let (port, cert) = serve(&dir.join("root")).await;
    let options = alice(port, &cert);
    let at = proxy.addr;
    let mut c = Client::connect_via(options, move |target| socks5::socks5_connect(at, target))
        .await
        .unwrap();
    let mut failures = Vec::new();
    for i in 0..60u32 {
        let len = (i as usize * 6_733) % 400_000;
        let body: Vec<u8> = (0..len as u32).map(|j| (j * 13 + i) as u8).collect();
        let name = format!("up-{i}.bin");
        let stored = tokio::time::timeout(
            Duration::from_secs(30),
            c.store(&name, &mut &body[..], 0, false),
        )
        .await;
        match stored {
            Ok(Ok(n)) if n == len as u64 => {}
            other => failures.push(format!("{name}: {other:?}")),
        }
        match std::fs::read(dir.join("root").join(&name)) {
            Ok(on_disk) if on_disk == body => {}
            Ok(on_disk) => failures.push(format!("{name}: {} of {len} bytes", on_disk.len())),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}
