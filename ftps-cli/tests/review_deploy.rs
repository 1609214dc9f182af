//! Review of issue 15's deployment features (review15c): `--config`, `--metrics` and the
//! reload on SIGHUP, attacked from outside over loopback. Each test names its finding.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

mod support;
use support::{free_port, hash, start};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn fresh(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ftps-review15c-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("srv")).unwrap();
    dir
}

/// `ftps serve` in `dir` expected to stop at once: its output.
fn refused(dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .current_dir(dir)
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the server started: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// The code of the reply to `line` (its last line's).
fn cmd(tcp: &mut TcpStream, reader: &mut BufReader<TcpStream>, line: &str) -> u16 {
    write!(tcp, "{line}\r\n").unwrap();
    loop {
        let mut reply = String::new();
        reader.read_line(&mut reply).unwrap();
        if reply.as_bytes().get(3) == Some(&b' ') {
            return reply[..3].parse().unwrap();
        }
    }
}

/// The reply code to PASS after `USER user` on a plain control connection.
fn login(port: u16, user: &str, password: &str) -> u16 {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(tcp.try_clone().unwrap());
    let mut greeting = String::new();
    reader.read_line(&mut greeting).unwrap();
    assert!(greeting.starts_with("220"), "{greeting}");
    cmd(&mut tcp, &mut reader, &format!("USER {user}"));
    cmd(&mut tcp, &mut reader, &format!("PASS {password}"))
}

/// Finding 1 (medium): `FTPS_ANONYMOUS=false` did not win over the file's `anonymous =
/// true` (the switch was `flag || file`): the server admitted anonymous logins the
/// operator's variable refused. The same for FTPS_ACTIVE, FTPS_ALLOW_CCC,
/// FTPS_ANONYMOUS_UPLOAD and FTPS_NO_SESSION_REUSE_CHECK.
#[test]
fn finding1_a_variable_saying_false_wins_over_the_file() {
    let dir = fresh("envfalse");
    let port = free_port();
    std::fs::write(
        dir.join("ftps.toml"),
        format!(
            "root = \"srv\"\nanonymous = true\nexplicit = \"127.0.0.1:{port}\"\n\
             implicit = false\ncontrol_tls = \"allow\"\n"
        ),
    )
    .unwrap();
    let mut child = start(
        &dir,
        &["--config", "ftps.toml"],
        &[("FTPS_ANONYMOUS", "false")],
    );
    let code = login(port, "anonymous", "guest@");
    let _ = child.kill();
    let _ = child.wait();
    // And without the variable, the file's `true` holds.
    let mut child = start(&dir, &["--config", "ftps.toml"], &[]);
    let by_file = login(port, "anonymous", "guest@");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    // USER anonymous is refused (530), so PASS is out of sequence (503).
    assert_ne!(code, 230, "FTPS_ANONYMOUS=false, yet anonymous logged in");
    assert_eq!(by_file, 230);
}

/// Finding 2 (medium): the SIGHUP handler was registered by a task spawned after the
/// listeners took connections and the banner was printed: a reload sent as the server
/// said it serves (a deploy script, `systemctl reload` right after start) killed it
/// (SIGHUP's default action): 2 starts in 10 died.
#[test]
fn finding2_a_sighup_as_the_server_starts_does_not_stop_it() {
    let dir = fresh("earlyhup");
    for _ in 0..10 {
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ftps"))
            .current_dir(&dir)
            .args(["serve", "--root", "srv", "--no-implicit", "--explicit"])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "server did not start");
            match lines.next() {
                Some(Ok(l)) if l.starts_with("ftps: serving") => break,
                Some(_) => {}
                None => panic!("server exited"),
            }
        }
        let ok = Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        std::thread::sleep(Duration::from_millis(300));
        let status = child.try_wait().unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            status.is_none(),
            "SIGHUP at start stopped the server: {status:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Finding 3 (medium): a configuration file inside the served directory was refused only
/// when it listed users. Without users it was served, and a user who may overwrite it
/// chose the next start's settings (`root = "/"`, `anonymous = true`, a users file of
/// theirs).
#[test]
fn finding3_a_configuration_file_inside_the_root_is_refused() {
    let dir = fresh("inroot");
    std::fs::write(
        dir.join("srv/ftps.toml"),
        "root = \".\"\nstate_dir = \"../state\"\nexplicit = \"127.0.0.1:1\"\nimplicit = false\n",
    )
    .unwrap();
    let out = refused(&dir, &["--config", "srv/ftps.toml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    assert!(err.contains("configuration file"), "{err}");
    assert!(err.contains("inside the served directory"), "{err}");
}

/// Finding 4 (low): a `rules` value was pasted after `;DIR=`, so one holding `;` added
/// rules of its own: `rules = { "/in" = "upload;/=all" }` under `permissions = "list"`
/// granted every right in the whole home, silently.
#[test]
fn finding4_a_rule_value_with_a_semicolon_is_refused() {
    let dir = fresh("ruleinject");
    std::fs::create_dir_all(dir.join("srv/in")).unwrap();
    std::fs::write(
        dir.join("ftps.toml"),
        format!(
            "root = \"srv\"\nexplicit = \"127.0.0.1:1\"\nimplicit = false\n\n\
             [[users]]\nname = \"bob\"\nhash = \"{}\"\npermissions = \"list\"\n\
             rules = {{ \"/in\" = \"upload;/=all\" }}\n",
            hash("bob-pw")
        ),
    )
    .unwrap();
    let out = refused(&dir, &["--config", "ftps.toml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    assert!(err.contains("ftps.toml, line 5"), "{err}");
    assert!(err.contains("permissions with ; or ="), "{err}");
}

/// Finding 5 (low): three errors of settings the file gave did not name the file:
/// `explicit = true`, a `key` without `cert`, `anonymous_upload` without `anonymous`.
#[test]
fn finding5_errors_of_file_settings_name_the_file() {
    let dir = fresh("errname");
    for text in [
        "explicit = true\n",
        "implicit = true\n",
        "key = \"k.pem\"\n",
        "anonymous_upload = true\n",
    ] {
        std::fs::write(dir.join("ftps.toml"), text).unwrap();
        let out = refused(&dir, &["--config", "ftps.toml", "--root", "srv"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text:?}: {err}");
        assert!(err.contains("ftps.toml: "), "{text:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Finding 6 (medium): the metrics endpoint answered one connection at a time and gave
/// each 5 s: three idle connections (anyone who reaches the port) held `/health` for
/// 15 s, so a load balancer would mark the server down. Now connections are answered at
/// once (up to 32).
#[test]
fn finding6_idle_connections_do_not_hold_the_metrics_endpoint() {
    let dir = fresh("metricshold");
    let (port, metrics) = (free_port(), free_port());
    let mut child = start(
        &dir,
        &[
            "--root",
            "srv",
            "--no-implicit",
            "--explicit",
            &format!("127.0.0.1:{port}"),
            "--metrics",
            &format!("127.0.0.1:{metrics}"),
        ],
        &[],
    );
    let idle: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", metrics)).unwrap())
        .collect();
    let started = Instant::now();
    let mut tcp = TcpStream::connect(("127.0.0.1", metrics)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(tcp, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut all = String::new();
    let _ = tcp.read_to_string(&mut all);
    let took = started.elapsed();
    drop(idle);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(all.starts_with("HTTP/1.1 200"), "{all}");
    assert!(took < Duration::from_secs(2), "/health took {took:?}");
}

/// Finding 7 (low): a certificate whose key does not match it, or PEM that holds none,
/// stopped the start (and failed a reload) with "keys may not be consistent:
/// KeyMismatch" or "no certificate in the PEM data", naming neither file.
#[test]
fn finding7_a_bad_certificate_or_key_is_named() {
    let dir = fresh("certname");
    let pair = |name: &str| {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    };
    pair("one");
    pair("two");
    std::fs::write(dir.join("garbage.crt"), "garbage\n").unwrap();
    for (cert, key) in [("one.crt", "two.key"), ("garbage.crt", "one.key")] {
        let out = refused(
            &dir,
            &[
                "--root",
                "srv",
                "--no-implicit",
                "--explicit",
                "127.0.0.1:1",
                "--cert",
                cert,
                "--key",
                key,
            ],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains(cert) && err.contains(key), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
