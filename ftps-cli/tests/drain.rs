//! Issue 16, item 5: `ftps serve` on SIGTERM drains — `/health` says `draining` (503) so a
//! balancer stops sending, an idle session gets 421, an upload under way finishes whole
//! (226, then 421) — and exits 0.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

mod support;
use support::{PlainControl, free_port, http_get, start};

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn get(port: u16, path: &str) -> String {
    http_get("127.0.0.1", port, path)
}

#[test]
fn sigterm_drains_then_exits_zero() {
    let dir = std::env::temp_dir().join(format!("ftps-drain-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("ftp-root")).unwrap();
    let (port, metrics) = (free_port(), free_port());
    let mut child = start(
        &dir,
        &[
            "--user",
            "alice:pw",
            "--no-implicit",
            "--explicit",
            &format!("127.0.0.1:{port}"),
            "--metrics",
            &format!("127.0.0.1:{metrics}"),
            "--control-tls",
            "allow",
            "--data-tls",
            "allow",
            "--drain-grace",
            "20",
        ],
        &[],
    );
    assert!(get(metrics, "/health").contains("200 OK"));
    let mut idle = PlainControl::login(port);
    let mut up = PlainControl::login(port);
    let epsv = up.cmd("EPSV");
    let data_port: u16 = epsv
        .split("|||")
        .nth(1)
        .and_then(|s| s.split('|').next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    let mut data = TcpStream::connect(("127.0.0.1", data_port)).unwrap();
    assert!(up.cmd("STOR drained.bin").starts_with("150"));
    let body: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
    data.write_all(&body[..1_000_000]).unwrap();

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // The idle session is told at once; the balancer's check sees the node drain.
    assert!(
        idle.line().starts_with("421"),
        "the idle session was not told"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !get(metrics, "/health").contains("503 Service Unavailable\r\n") {
        assert!(Instant::now() < deadline, "/health never said draining");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(get(metrics, "/health").ends_with("draining\n"));
    // The upload goes on to its end.
    data.write_all(&body[1_000_000..]).unwrap();
    drop(data);
    assert!(up.line().starts_with("226"), "the upload under way was cut");
    assert!(up.line().starts_with("421"));
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    let stored = std::fs::read(dir.join("ftp-root/drained.bin")).unwrap();
    assert!(stored == body, "the drained upload is not whole");
    let _ = std::fs::remove_dir_all(&dir);
}
