//! Issue 15: SIGHUP makes `ftps serve` read its users and its certificate again, without
//! dropping sessions; a reload that fails changes nothing.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

mod support;
use support::{free_port, hash};

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A self-signed certificate for 127.0.0.1 and its key, as PEM files in `dir`.
fn certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let pair = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".into()]).unwrap();
    let cert = params.self_signed(&pair).unwrap();
    let (c, k) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, pair.serialize_pem()).unwrap();
    (c, k)
}

/// A plain control session (the server allows it here), past its greeting.
fn control(port: u16) -> (TcpStream, BufReader<TcpStream>) {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(tcp.try_clone().unwrap());
    let mut greeting = String::new();
    reader.read_line(&mut greeting).unwrap();
    assert!(greeting.starts_with("220"), "{greeting}");
    (tcp, reader)
}

/// Sends `line`, returns the reply's code (its last line's).
fn cmd(c: &mut (TcpStream, BufReader<TcpStream>), line: &str) -> u16 {
    write!(c.0, "{line}\r\n").unwrap();
    loop {
        let mut reply = String::new();
        c.1.read_line(&mut reply).unwrap();
        if reply.as_bytes().get(3) == Some(&b' ') {
            return reply[..3].parse().unwrap();
        }
    }
}

/// Whether `user:password` logs in (USER, PASS on a new session).
fn logs_in(port: u16, user: &str, password: &str) -> bool {
    let mut c = control(port);
    assert_eq!(cmd(&mut c, &format!("USER {user}")), 331);
    cmd(&mut c, &format!("PASS {password}")) == 230
}

/// Whether a TLS handshake on the explicit port succeeds when trusting `ca` only.
fn trusts(port: u16, ca: &Path) -> bool {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-starttls",
            "ftp",
            "-verify_return_error",
            "-CAfile",
        ])
        .arg(ca)
        .args(["-connect", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    out.status.success()
}

fn hangup(child: &Child) {
    let ok = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Polls `f` until it holds, for at most 10 s.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn sighup_reloads_users_and_certificate_and_keeps_sessions() {
    let dir = std::env::temp_dir().join(format!("ftps-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("ftp-root")).unwrap();
    let users = dir.join("users");
    std::fs::write(&users, format!("alice:{}\n", hash("alice-pw"))).unwrap();
    let (cert, key) = certificate(&dir, "served");
    let (old_cert, _) = (dir.join("old.crt"), ());
    std::fs::copy(&cert, &old_cert).unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .current_dir(&dir)
        .args(["serve", "--users-file", "users", "--no-implicit"])
        .args(["--explicit", &format!("127.0.0.1:{port}")])
        .args(["--control-tls", "allow", "--data-tls", "allow"])
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lines.next().unwrap().unwrap().contains("Ctrl-C") {
        assert!(Instant::now() < deadline, "server did not start");
    }
    assert!(logs_in(port, "alice", "alice-pw"));
    assert!(!logs_in(port, "bob", "bob-pw"));
    assert!(trusts(port, &old_cert));
    // A session logged in before the reload.
    let mut before = control(port);
    assert_eq!(cmd(&mut before, "USER alice"), 331);
    assert_eq!(cmd(&mut before, "PASS alice-pw"), 230);

    // bob in, alice out, a new certificate.
    std::fs::write(&users, format!("bob:{}\n", hash("bob-pw"))).unwrap();
    let (new_cert, new_key) = certificate(&dir, "renewed");
    std::fs::copy(&new_cert, &cert).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    hangup(&child);
    assert!(
        eventually(|| logs_in(port, "bob", "bob-pw")),
        "bob never got in"
    );
    assert!(!logs_in(port, "alice", "alice-pw"));
    assert!(trusts(port, &new_cert));
    assert!(!trusts(port, &old_cert));
    // The session of before goes on.
    assert_eq!(cmd(&mut before, "PWD"), 257);
    assert_eq!(cmd(&mut before, "NOOP"), 200);

    // A reload that fails (a broken users file) changes nothing.
    std::fs::write(&users, "bob:not-a-hash\n").unwrap();
    hangup(&child);
    std::thread::sleep(Duration::from_secs(1));
    assert!(logs_in(port, "bob", "bob-pw"));
    assert!(trusts(port, &new_cert));
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Settings a reload does not apply (listeners, ports, policies...) are named when the
/// file changes them, never silently ignored; the users it does apply are.
#[test]
fn a_reload_names_the_settings_that_need_a_restart() {
    let dir = std::env::temp_dir().join(format!("ftps-reload-names-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("conf")).unwrap();
    let port = free_port();
    let h = hash("first-Pass-1");
    let write_conf = |ports: &str| {
        std::fs::write(
            dir.join("conf/ftps.toml"),
            format!(
                "root = \"../srv\"\nexplicit = \"127.0.0.1:{port}\"\nimplicit = false\n\
                 passive_ports = \"{ports}\"\n\
                 [[users]]\nname = \"ann\"\nhash = \"{h}\"\n"
            ),
        )
        .unwrap();
    };
    write_conf("41000-41010");
    let log = dir.join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .current_dir(&dir)
        .args(["serve", "--config", "conf/ftps.toml"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    support::wait_ready(&mut child);
    let said = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(line) = text.lines().rev().find(|l| l.contains(what)) {
                return line.to_owned();
            }
            assert!(Instant::now() < deadline, "no {what:?} in: {text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // Unchanged: a reload says nothing of restarts.
    let hup = || {
        assert!(
            Command::new("kill")
                .args(["-HUP", &child.id().to_string()])
                .status()
                .unwrap()
                .success()
        );
    };
    hup();
    assert!(!said("reloaded").contains("restart"));
    std::fs::write(&log, "").unwrap();
    write_conf("42000-42010");
    hup();
    let line = said("reloaded");
    assert!(
        line.contains("not applied until a restart: passive_ports"),
        "{line}"
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
