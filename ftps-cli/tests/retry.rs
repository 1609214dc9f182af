//! Issue 16, item 5: `ftps get|put --retry N` — a transfer that fails because the server
//! is not there (restarting) is retried on a fresh connection and completes; without
//! `--retry` it fails at once with exit 3.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

mod support;
use support::{free_port, serve_explicit};

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_server_back_after_a_restart_gets_the_retried_transfers() {
    let (dir, cert, key, _) = ftps_conformance::peers::workdir("retry");
    std::fs::create_dir_all(dir.join("root")).unwrap();
    let body: Vec<u8> = (0..500_000u32).map(|i| (i % 241) as u8).collect();
    std::fs::write(dir.join("root/file.bin"), &body).unwrap();
    std::fs::write(dir.join("local.bin"), &body).unwrap();
    let port = free_port();
    let client = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ftps"));
        cmd.current_dir(&dir)
            .args(args)
            .arg("--ca-cert")
            .arg(&cert)
            .args(["--user", "alice"])
            .env("FTPS_PASSWORD", "pw")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    };
    let url = format!("ftp://127.0.0.1:{port}/file.bin");
    let up = format!("ftp://127.0.0.1:{port}/up.bin");

    // Nobody there, no retry: exit 3 at once.
    let out = client(&["get", &url, "none.bin"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));

    // The server comes up while the clients retry.
    let get = client(&["get", "--retry", "5", &url, "got.bin"])
        .spawn()
        .unwrap();
    let put = client(&["put", "--retry", "5", "local.bin", &up])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let mut server = serve_explicit(&dir, &dir.join("root"), &cert, &key, "alice:pw", port);
    let deadline = Instant::now() + Duration::from_secs(60);
    for (what, mut child) in [("get", get), ("put", put)] {
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "{what} did not finish");
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(status.success(), "{what}: {status}: {err}");
        assert!(err.contains("retrying"), "{what} did not retry: {err}");
    }
    assert!(std::fs::read(dir.join("got.bin")).unwrap() == body);
    assert!(std::fs::read(dir.join("root/up.bin")).unwrap() == body);
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 17, typed errors: a server whose certificate is not trusted is a permanent
/// failure. `--retry` does not retry it, and the message says what to do.
#[test]
fn an_untrusted_certificate_is_not_retried() {
    let (dir, cert, key, _) = ftps_conformance::peers::workdir("retry-cert");
    let (other, other_cert, _, _) = ftps_conformance::peers::workdir("retry-cert-other");
    std::fs::create_dir_all(dir.join("root")).unwrap();
    std::fs::write(dir.join("root/file.bin"), b"hello").unwrap();
    let port = free_port();
    let mut server = serve_explicit(&dir, &dir.join("root"), &cert, &key, "alice:pw", port);
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .current_dir(&dir)
        .args(["get", "--retry", "5"])
        .arg(format!("ftp://127.0.0.1:{port}/file.bin"))
        .arg("got.bin")
        .arg("--ca-cert")
        .arg(&other_cert)
        .args(["--user", "alice"])
        .env("FTPS_PASSWORD", "pw")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        !err.contains("retrying"),
        "a certificate failure was retried: {err}"
    );
    assert!(
        err.contains("not trusted") && err.contains("--ca-cert"),
        "{err}"
    );
    // Five retries would have paused 1 + 2 + 4 + 8 + 10 s.
    assert!(took < Duration::from_secs(20), "took {took:?}: {err}");
    assert!(!dir.join("got.bin").exists());
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&other);
}

/// `get -r --retry N`: a file the server refuses for now (450) is tried again on a fresh
/// connection, N times, as a single `get` is. An outside review found `--retry` taken
/// and silently ignored with `-r`.
#[test]
fn a_mirror_retries_each_file_as_get_does() {
    use ftps_conformance::scripted::{Ending, Listing, ScriptedServer};
    let server = ScriptedServer::start(Ending::CloseThenReply).unwrap();
    server.set_listing(Listing::BusyFile);
    let dir = std::env::temp_dir().join(format!("ftps-retry-mirror-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), server.cert_pem()).unwrap();
    let out = Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_ftps"))
        .current_dir(&dir)
        .args(["get", "-r", "--retry", "2"])
        .arg(format!("ftp://127.0.0.1:{}/", server.addr().port()))
        .arg("tree")
        .args(["--ca-cert", "ca.pem", "--user", "anyone"])
        .env("FTPS_PASSWORD", "anything")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    println!("ftps get -r --retry 2 -> {}\nstderr:\n{err}", out.status);
    assert!(
        err.contains("retrying on a fresh connection (1 left)"),
        "{err}"
    );
    assert!(
        err.contains("retrying on a fresh connection (0 left)"),
        "{err}"
    );
    assert!(!err.contains("(2 left)"), "{err}");
    assert!(err.contains("1 failed"), "{err}");
    assert_eq!(
        out.status.code(),
        Some(5),
        "still refused in the end: {err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
