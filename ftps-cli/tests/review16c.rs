//! Review 16c: `ftps --interface ADDRESS` (the client's source address) from outside:
//! what a bad address says and which exit code it gives (`remote.rs`, `mod exit`: 2 a
//! usage error, 3 the server could not be reached). No server is needed: every case
//! fails before a byte is exchanged (loopback only; a port nobody listens on).

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port nobody listens on (bound, then let go).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `ftps get ARGS... URL got.bin` (user alice) in a scratch directory, killed after
/// 30 s: its exit code, its stderr, how long it took.
fn get(args: &[&str], url: &str) -> (Option<i32>, String, Duration) {
    let dir = std::env::temp_dir().join(format!("ftps-r16c-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .current_dir(&dir)
        .arg("get")
        .args(args)
        .args(["--user", "alice"])
        .arg(url)
        .arg("got.bin")
        .env("FTPS_PASSWORD", "pw")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = started + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status.and_then(|s| s.code()), err, started.elapsed())
}

/// Held: an interface name (which curl takes) or a non-address is a usage error (exit 2)
/// that says an IP address is wanted.
#[test]
fn an_interface_name_is_a_usage_error() {
    let url = format!("ftp://127.0.0.1:{}/f.bin", closed_port());
    for bad in ["lo", "eth0", "127.0.0.1:21", "", "[::1]"] {
        let (code, err, _) = get(&["--interface", bad], &url);
        assert_eq!(code, Some(2), "--interface {bad:?}: {err}");
        assert!(err.contains("IP address"), "--interface {bad:?}: {err}");
    }
}

/// Held: a source of the other family than the server's address, and a refused
/// connection from a good source, fail at once with exit 3 (could not reach the server),
/// saying why.
#[test]
fn an_unusable_source_fails_with_exit_3_and_says_why() {
    let port = closed_port();
    let cases = [
        ("::1", format!("ftp://127.0.0.1:{port}/f.bin"), "famil"),
        ("127.0.0.2", format!("ftp://[::1]:{port}/f.bin"), "famil"),
        (
            "127.0.0.2",
            format!("ftp://127.0.0.1:{port}/f.bin"),
            "refused",
        ),
    ];
    for (from, url, says) in cases {
        let (code, err, took) = get(&["--interface", from], &url);
        assert_eq!(code, Some(3), "--interface {from} {url}: {err}");
        assert!(
            err.to_lowercase().contains(says),
            "--interface {from} {url}: {err}"
        );
        assert!(took < Duration::from_secs(5), "{from} {url}: {took:?}");
    }
}

/// Finding 6 (of review16c; the others are in ftps-conformance/tests/review16c.rs): a
/// source address of the wrong family is a mistake in the command, not a server that is
/// away, yet `ftps get --retry 3 --interface ::1 ftp://127.0.0.1:PORT/...` retries it
/// three times with its back-off ("the address families differ; retrying (2 left)" ...),
/// 7.1 s before the same exit 3 it could give at once. Cause: `Failure::from_client`
/// (ftps-cli/src/remote.rs) makes every `Error::Io` while connecting `exit::CONNECT`, and
/// the retry loop retries every `CONNECT`. Fix: an `io::ErrorKind::InvalidInput` from
/// `ftps_async::bound_socket` (families differ) — and likely its `AddrNotAvailable` (no
/// such local address; not run here) — is not transient: fail at once (or exit 2, as
/// the usage error it is).
#[test]
fn a_wrong_family_source_is_not_retried() {
    let url = format!("ftp://127.0.0.1:{}/f.bin", closed_port());
    let (code, err, took) = get(&["--retry", "3", "--interface", "::1"], &url);
    assert_eq!(code, Some(3), "{err}");
    assert!(
        !err.contains("retrying"),
        "a families-differ error was retried ({took:?}): {err}"
    );
}
