//! Session limits and shutdown of the tokio server, over raw TCP.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_proto::server::{ControlTlsPolicy, DataTlsPolicy, ServerConfig, TlsMode};
use ftps_tokio::{LocalFs, Server, StaticUsers};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

async fn first_line(stream: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_cap_refuses_the_extra_session_and_shutdown_stops_accepting() {
    let root = std::env::temp_dir().join(format!("ftps-limits-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let config = ServerConfig::default()
        .with_control_tls(ControlTlsPolicy::Allow)
        .with_data_tls(DataTlsPolicy::Allow);
    let server = Server::builder(
        LocalFs::new(&root).unwrap(),
        StaticUsers::new().with_password("a", "b"),
    )
    .config(config)
    .max_sessions(100, 2)
    .build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let s = server.clone();
    let serving = tokio::spawn(async move { s.serve(listener, TlsMode::Explicit).await });

    let mut one = BufReader::new(TcpStream::connect(addr).await.unwrap());
    let mut two = BufReader::new(TcpStream::connect(addr).await.unwrap());
    assert!(first_line(&mut one).await.starts_with("220 "));
    assert!(first_line(&mut two).await.starts_with("220 "));
    let mut three = BufReader::new(TcpStream::connect(addr).await.unwrap());
    assert!(
        first_line(&mut three).await.starts_with("421 "),
        "the third session from one IP is refused"
    );

    // Closing one frees its slot.
    one.get_mut().write_all(b"QUIT\r\n").await.unwrap();
    assert!(first_line(&mut one).await.starts_with("221 "));
    drop(one);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut four = BufReader::new(TcpStream::connect(addr).await.unwrap());
    assert!(first_line(&mut four).await.starts_with("220 "));

    // TLS is not configured: AUTH is refused, not half-done.
    four.get_mut().write_all(b"AUTH TLS\r\n").await.unwrap();
    assert!(first_line(&mut four).await.starts_with("502 "));

    server.shutdown();
    tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // Sessions in progress go on after shutdown.
    two.get_mut().write_all(b"NOOP\r\n").await.unwrap();
    assert!(first_line(&mut two).await.starts_with("200 "));
    let _ = std::fs::remove_dir_all(&root);
}

/// An application's own accept loop hands connections over (`serve_connection`) with the
/// client it says they are from: that address is the peer for the per-address cap (two
/// connections "from" 127.0.0.9 fill its cap of 2; one from 127.0.0.10 is served), and
/// each session runs until it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_connection_takes_the_callers_peer() {
    use ftps_tokio::ConnectionInfo;
    let root = std::env::temp_dir().join(format!("ftps-serve-conn-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let config = ServerConfig::default()
        .with_control_tls(ControlTlsPolicy::Allow)
        .with_data_tls(DataTlsPolicy::Allow);
    let server = Server::builder(
        LocalFs::new(&root).unwrap(),
        StaticUsers::new().with_password("a", "b"),
    )
    .config(config)
    .max_sessions(100, 2)
    .build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let s = server.clone();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((tcp, _)) = listener.accept().await {
            // The first three "from" 127.0.0.9, the next from 127.0.0.10.
            let ip = if n < 3 {
                [127, 0, 0, 9]
            } else {
                [127, 0, 0, 10]
            };
            n += 1;
            let peer = std::net::SocketAddr::from((ip, 40000));
            let info = ConnectionInfo::new(peer, addr, TlsMode::Explicit);
            let s = s.clone();
            tokio::spawn(async move { s.serve_connection(tcp.into(), info).await });
        }
    });
    let mut one = BufReader::new(TcpStream::connect(addr).await.unwrap());
    assert!(first_line(&mut one).await.starts_with("220 "));
    let mut two = BufReader::new(TcpStream::connect(addr).await.unwrap());
    assert!(first_line(&mut two).await.starts_with("220 "));
    let mut three = BufReader::new(TcpStream::connect(addr).await.unwrap());
    assert!(
        first_line(&mut three).await.starts_with("421 "),
        "the third session of 127.0.0.9 is refused"
    );
    let mut four = BufReader::new(TcpStream::connect(addr).await.unwrap());
    assert!(
        first_line(&mut four).await.starts_with("220 "),
        "127.0.0.10 is not 127.0.0.9"
    );
    four.get_mut().write_all(b"USER a\r\n").await.unwrap();
    assert!(first_line(&mut four).await.starts_with("331 "));
    four.get_mut().write_all(b"PASS b\r\n").await.unwrap();
    assert!(first_line(&mut four).await.starts_with("230 "));
    assert_eq!(server.open_sessions(), 3);
    let _ = std::fs::remove_dir_all(&root);
}
