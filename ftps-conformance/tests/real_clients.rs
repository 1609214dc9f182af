//! Every runtime's server with real clients: curl (explicit and implicit FTPS, upload,
//! download, listing; data connections resume the control session, as required) and
//! Python's ftplib (which cannot resume TLS sessions, so with the reuse check off).
//! Under `cargo xtask ci` (`FTPS_REQUIRE_PEERS`) a missing client fails the test.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::peers::have;
use ftps_conformance::runtimes::{Blocking, Smol, Tokio};
use ftps_conformance::{Fixture, ServerRuntime};
use std::process::{Command, Output};

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn with_curl(server: &dyn ServerRuntime) {
    if !have("curl") {
        return;
    }
    let f = Fixture::new(&format!("curl-{}", server.name()));
    let running = f.start(server, true);
    let (user, password) = f.credentials();
    let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let local = f.root().parent().unwrap().join("payload.bin");
    std::fs::write(&local, &payload).unwrap();
    let curl = |args: &[&str]| {
        Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "30", "--cacert"])
            .arg(f.ca_file())
            .args(["--user", &format!("{user}:{password}")])
            .args(args)
            .output()
            .unwrap()
    };
    let explicit = format!("ftp://127.0.0.1:{}/", running.explicit().port());
    let implicit = format!("ftps://127.0.0.1:{}/", running.implicit().port());
    for (base, extra) in [(&explicit, &["--ssl-reqd"][..]), (&implicit, &[][..])] {
        let up = format!("{base}up.bin");
        ok(&curl(
            &[extra, &["-T", local.to_str().unwrap(), &up]].concat(),
        ));
        assert_eq!(std::fs::read(f.root().join("up.bin")).unwrap(), payload);
        let out = curl(&[extra, &[up.as_str()]].concat());
        assert!(
            out.status.success() && out.stdout == payload,
            "{}: download",
            server.name()
        );
        let listing = ok(&curl(&[extra, &["--list-only", base.as_str()]].concat()));
        assert!(listing.lines().any(|l| l == "up.bin"), "{listing}");
        std::fs::remove_file(f.root().join("up.bin")).unwrap();
    }
}

fn with_ftplib(server: &dyn ServerRuntime) {
    let python = std::env::var("FTPS_PYTHON").unwrap_or_else(|_| "python3".into());
    if !have(&python) {
        return;
    }
    let f = Fixture::new(&format!("ftplib-{}", server.name()));
    let running = f.start(server, false);
    let (user, password) = f.credentials();
    let script = format!(
        r#"
import ftplib, ssl, io
ctx = ssl.create_default_context(cafile={ca:?})
f = ftplib.FTP_TLS(context=ctx, timeout=10)
f.connect('127.0.0.1', {port})
f.auth(); f.login({user:?}, {password:?}); f.prot_p()
payload = bytes(i % 253 for i in range(300000))
f.storbinary('STOR py.bin', io.BytesIO(payload))
buf = io.BytesIO()
f.retrbinary('RETR py.bin', buf.write)
assert buf.getvalue() == payload
assert f.size('py.bin') == 300000
assert 'py.bin' in f.nlst()
f.rename('py.bin', 'moved.bin')
f.delete('moved.bin')
f.quit()
print('ok')
"#,
        ca = f.ca_file().display().to_string(),
        port = running.explicit().port(),
    );
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert_eq!(ok(&out), "ok\n", "{}", server.name());

    // With session reuse required, ftplib (which never resumes) gets a clean 522 for the
    // transfer itself, and its control connection stays in step (issue 13: it read the
    // 522 as the answer to its next command).
    drop(running);
    let running = f.start(server, true);
    std::fs::write(f.root().join("x.txt"), b"x").unwrap();
    let script = format!(
        r#"
import ftplib, ssl
ctx = ssl.create_default_context(cafile={ca:?})
f = ftplib.FTP_TLS(context=ctx, timeout=10)
f.connect('127.0.0.1', {port})
f.auth(); f.login({user:?}, {password:?}); f.prot_p()
import io
attempts = (
    lambda: f.nlst(),
    lambda: f.retrbinary('RETR x.txt', print),
    lambda: f.storbinary('STOR y.txt', io.BytesIO(b'y' * 100000)),
    lambda: f.storbinary('APPE x.txt', io.BytesIO(b'more')),
    lambda: f.storbinary('STOU', io.BytesIO(b'unique')),
)
for attempt in attempts:
    try:
        attempt()
        print('accepted')
    except ftplib.error_perm as e:
        print(str(e)[:3])
    print(f.voidcmd('NOOP')[:3])
f.quit()
"#,
        ca = f.ca_file().display().to_string(),
        port = running.explicit().port(),
    );
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert_eq!(
        ok(&out),
        "522\n200\n".repeat(5),
        "{}: every transfer refused cleanly, the control connection in step (uploads too:
         issue 13's second review, finding G)",
        server.name()
    );
    // Nothing of the refused uploads was stored.
    assert_eq!(std::fs::read(f.root().join("x.txt")).unwrap(), b"x");
    assert!(!f.root().join("y.txt").exists());
}

#[test]
fn tokio_server_with_curl() {
    with_curl(&Tokio);
}

#[test]
fn blocking_server_with_curl() {
    with_curl(&Blocking);
}

#[test]
fn tokio_server_with_ftplib() {
    with_ftplib(&Tokio);
}

#[test]
fn blocking_server_with_ftplib() {
    with_ftplib(&Blocking);
}

#[test]
fn smol_server_with_curl() {
    with_curl(&Smol::new());
}

#[test]
fn smol_server_with_ftplib() {
    with_ftplib(&Smol::new());
}
