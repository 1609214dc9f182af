//! Issue 15: `ftps serve --metrics ADDR` — the counters move during a transfer, read the
//! way Prometheus reads them (`GET /metrics`), and `/health` answers.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

mod support;
use support::free_port;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `GET path` on `port`: the status line and the body.
fn get(port: u16, path: &str) -> (String, String) {
    let all = support::http_get("127.0.0.1", port, path);
    let (head, body) = all.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// The value of the sample `name{labels}` (exactly as Prometheus text writes it), or 0.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

#[test]
fn counters_move_during_a_transfer() {
    if !support::have("curl") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("ftps-metrics-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("ftp-root")).unwrap();
    let (port, metrics) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .current_dir(&dir)
        .args(["serve", "--user", "alice:pw", "--no-implicit"])
        .args(["--explicit", &format!("127.0.0.1:{port}")])
        .args(["--metrics", &format!("127.0.0.1:{metrics}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lines.next().unwrap().unwrap().contains("Ctrl-C") {
        assert!(Instant::now() < deadline, "server did not start");
    }
    assert_eq!(
        get(metrics, "/health"),
        ("HTTP/1.1 200 OK".into(), "ok\n".into())
    );
    assert_eq!(get(metrics, "/nothing").0, "HTTP/1.1 404 Not Found");

    let (status, before) = get(metrics, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    std::fs::write(dir.join("up.bin"), vec![7u8; 100_000]).unwrap();
    let ca = dir.join(".ftps/cert.pem");
    let url = format!("ftp://127.0.0.1:{port}/up.bin");
    let ok = Command::new("timeout")
        .args(["60", "curl", "-sS", "--ssl-reqd", "--cacert"])
        .arg(&ca)
        .args(["-u", "alice:pw", "-T"])
        .arg(dir.join("up.bin"))
        .arg(&url)
        .status()
        .unwrap();
    assert!(ok.success());
    let wrong = Command::new("timeout")
        .args(["60", "curl", "-sS", "--ssl-reqd", "--cacert"])
        .arg(&ca)
        .args(["-u", "alice:wrong", &url, "-o", "/dev/null"])
        .status()
        .unwrap();
    assert!(!wrong.success());
    let (_, after) = get(metrics, "/metrics");
    eprintln!("{after}");
    let moved = |series: &str| sample(&after, series) - sample(&before, series);
    assert_eq!(
        moved(r#"ftps_transfers_total{kind="upload",result="ok"}"#),
        1.0
    );
    assert_eq!(
        moved(r#"ftps_transfer_bytes_total{kind="upload"}"#),
        100_000.0
    );
    assert_eq!(moved(r#"ftps_logins_total{result="accepted"}"#), 1.0);
    assert_eq!(moved(r#"ftps_logins_total{result="rejected"}"#), 1.0);
    assert_eq!(moved("ftps_sessions_total"), 2.0);
    assert!(moved(r#"ftps_tls_handshakes_total{channel="control",version="1.3"}"#) >= 2.0);
    assert_eq!(
        moved(r#"ftps_tls_handshakes_total{channel="data",version="1.3"}"#),
        1.0
    );
    assert_eq!(moved(r#"ftps_replies_total{code="226"}"#), 1.0);
    assert_eq!(moved(r#"ftps_replies_total{code="530"}"#), 1.0);
    assert!(after.contains("ftps_storage_seconds"), "{after}");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
