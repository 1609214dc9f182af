//! Issue 15 (observability) and issue 17 (`-v`, `RUST_LOG`): `ftps -v` shows the protocol
//! trace on standard error, never the password; `ftps serve` logs its sessions' logins and
//! transfers at info; `RUST_LOG` wins over both, and `RUST_LOG=off` silences them.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

mod support;
use support::{free_port, have};

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const PASSWORD: &str = "Verbose-Secret-9";

/// `ftps serve` with one user, its log (stderr) read when it stops.
struct Served {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Served {
    fn start(name: &str, env: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(format!("ftps-verbose-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("ftp-root")).unwrap();
        std::fs::write(dir.join("ftp-root/hello.txt"), b"hello").unwrap();
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ftps"))
            .current_dir(&dir)
            .args(["serve", "--no-implicit"])
            .args(["--user", &format!("alice:{PASSWORD}")])
            .args(["--explicit", &format!("127.0.0.1:{port}")])
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        support::wait_ready(&mut child);
        Self { child, dir, port }
    }

    fn url(&self, path: &str) -> String {
        format!("ftp://127.0.0.1:{}/{path}", self.port)
    }

    fn ca(&self) -> PathBuf {
        self.dir.join(".ftps/cert.pem")
    }

    /// `ftps ARGS` as alice (the password from the environment), within 60 s.
    fn ftps(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let ca = self.ca();
        let out = Command::new("timeout")
            .arg("60")
            .arg(env!("CARGO_BIN_EXE_ftps"))
            .args(args)
            .args(["--ca-cert", ca.to_str().unwrap(), "--user", "alice"])
            .current_dir(&self.dir)
            .env_remove("RUST_LOG")
            .env("FTPS_PASSWORD", PASSWORD)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        eprintln!(
            "ftps {args:?} -> {}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Uploads `bytes` as `name` with curl; whether curl succeeded.
    fn curl_upload(&self, name: &str, bytes: &[u8]) -> bool {
        let local = self.dir.join("upload.bin");
        std::fs::write(&local, bytes).unwrap();
        let out = Command::new("timeout")
            .arg("60")
            .arg("curl")
            .args(["-sS", "--ssl-reqd", "--cacert", self.ca().to_str().unwrap()])
            .args(["-u", &format!("alice:{PASSWORD}")])
            .args(["-T", local.to_str().unwrap(), &self.url(name)])
            .output()
            .unwrap();
        eprintln!(
            "curl -> {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out.status.success()
    }

    /// Stops the server; its log.
    fn log(mut self) -> String {
        // The session's last lines are written as it ends, just after the client's.
        std::thread::sleep(Duration::from_millis(300));
        let _ = self.child.kill();
        let mut log = Vec::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_end(&mut log)
            .unwrap();
        String::from_utf8_lossy(&log).into_owned()
    }

    fn root(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn verbose_shows_commands_and_replies_never_the_password() {
    let s = Served::start("client", &[]);
    for args in [["-v", "ls"], ["ls", "-v"]] {
        let out = s.ftps(&[args[0], args[1], &s.url("")], &[]);
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello.txt");
        let err = String::from_utf8_lossy(&out.stderr);
        for shown in [
            "> USER alice",
            "> PASS ****",
            "< 331 ",
            "< 230 ",
            "> NLST",
            "< 226 ",
            // What each handshake settled: AES-128-GCM, which our client offers first.
            "* control: TLS 1.3, TLS13_AES_128_GCM_SHA256, ALPN ftp\n",
            "* data: TLS 1.3, TLS13_AES_128_GCM_SHA256, ALPN ftp, resumed\n",
        ] {
            assert!(err.contains(shown), "{args:?}: no {shown:?} in:\n{err}");
        }
        assert!(
            !err.contains(PASSWORD),
            "{args:?}: the password is shown:\n{err}"
        );
    }
    // -vv: more, still without the password.
    let out = s.ftps(&["-vv", "ls", &s.url("")], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("> PASS ****") && !err.contains(PASSWORD),
        "{err}"
    );

    // Without -v: no trace.
    let out = s.ftps(&["ls", &s.url("")], &[]);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("USER"));

    // RUST_LOG wins: on without -v, off with it.
    let out = s.ftps(&["ls", &s.url("")], &[("RUST_LOG", "ftps=debug")]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("> USER alice"));
    let out = s.ftps(&["-v", "ls", &s.url("")], &[("RUST_LOG", "off")]);
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!s.log().contains(PASSWORD));
}

#[test]
fn serve_logs_logins_and_transfers() {
    if !have("curl") {
        return;
    }
    let s = Served::start("serve", &[]);
    assert!(s.curl_upload("up.bin", &[7u8; 1234]));
    assert_eq!(
        std::fs::read(s.root().join("ftp-root/up.bin"))
            .unwrap()
            .len(),
        1234
    );
    let log = s.log();
    let login = log
        .lines()
        .find(|l| l.contains("login") && l.contains("alice"))
        .unwrap_or_else(|| panic!("no login line:\n{log}"));
    assert!(login.contains("accepted"), "{login}");
    let transfer = log
        .lines()
        .find(|l| l.contains("transfer"))
        .unwrap_or_else(|| panic!("no transfer line:\n{log}"));
    for part in ["upload", "up.bin", "1234", "ok", "user=alice", "id="] {
        assert!(transfer.contains(part), "no {part:?} in {transfer}");
    }
    assert!(
        !log.contains(PASSWORD),
        "the password is in the log:\n{log}"
    );

    // RUST_LOG=off: nothing but the start-up warning about --user.
    let s = Served::start("serve-off", &[("RUST_LOG", "off")]);
    assert!(s.curl_upload("up.bin", b"quiet"));
    let log = s.log();
    let logged: Vec<&str> = log.lines().filter(|l| !l.contains("warning")).collect();
    assert!(logged.is_empty(), "{log}");
}

/// Our client offers AES-128-GCM first (`ftps_proto::tls::aes_128_gcm_first`: as fast as
/// anything here and as strong as the key exchange), and `-v` names the suite of every
/// handshake. vsftpd follows the client's order, as OpenSSL does by default, and picks
/// it; Pure-FTPd imposes its own order (AES-256-GCM first), which the trace shows too.
/// Skipped where a server is not installed, unless `FTPS_REQUIRE_PEERS` is set.
#[test]
fn real_servers_pick_the_suite_our_client_offers_first() {
    use ftps_conformance::peers::{self, PASSWORD};
    type Start = fn() -> Option<peers::Peer>;
    let servers: [(&str, Start, &str); 2] = [
        (
            "vsftpd",
            || peers::vsftpd(false),
            "TLS13_AES_128_GCM_SHA256",
        ),
        ("pure-ftpd", peers::pure_ftpd, "TLS13_AES_256_GCM_SHA384"),
    ];
    let dir = std::env::temp_dir().join(format!("ftps-verbose-suites-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (label, start, suite) in servers {
        let Some(p) = start() else {
            eprintln!("{label}: not installed, skipped");
            continue;
        };
        let url = format!("ftp://127.0.0.1:{}/", p.port);
        let cert = p.cert.display().to_string();
        let args = ["ls", "-v", "--ca-cert", &cert, "--user", &p.user, &url];
        let out = support::ftps_with_password(&dir, &args, PASSWORD);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{label}: {err}");
        for what in ["control", "data"] {
            let line = err
                .lines()
                .find(|l| l.contains(&format!("* {what}: TLS 1.3, ")))
                .unwrap_or_else(|| panic!("{label}: no {what} handshake in:\n{err}"));
            assert!(line.contains(suite), "{label}: {line}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `ftps serve` picks the cipher suite (RFC 8446 §4.1.1 leaves it to the server): curl,
/// like every OpenSSL client, lists AES-256-GCM first, and gets AES-128-GCM, the cheaper
/// of two suites as strong as the key exchange; a client offering only AES-256-GCM still
/// gets it, one listing ChaCha20 first (no AES instructions) gets ChaCha20, on TLS 1.3
/// and 1.2. The data connection settles on the control connection's suite, or it could
/// not resume its session and the listing would be refused (425/522).
/// `--client-cipher-order` follows the client's order instead.
#[test]
fn serve_picks_aes_128_gcm_unless_the_client_needs_otherwise() {
    if !have("curl") {
        return;
    }
    /// The suites curl names for the control and the data connection of a listing.
    fn suites(s: &Served, options: &[&str]) -> Vec<String> {
        let out = Command::new("timeout")
            .arg("60")
            .arg("curl")
            .args([
                "-sS",
                "-v",
                "--ssl-reqd",
                "--cacert",
                s.ca().to_str().unwrap(),
            ])
            .args(["-u", &format!("alice:{PASSWORD}")])
            .args(options)
            .arg(s.url(""))
            .output()
            .unwrap();
        let (listing, err) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "curl {options:?}: {err}");
        assert!(listing.contains("hello.txt"), "curl {options:?}: {listing}");
        let used: Vec<String> = err
            .lines()
            .filter_map(|l| l.split_once("SSL connection using ").map(|(_, u)| u.into()))
            .collect();
        assert_eq!(used.len(), 2, "curl {options:?}: {err}");
        used
    }
    let chacha_first = "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256";
    let chacha_first_12 = "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:\
                           ECDHE-ECDSA-AES128-GCM-SHA256";
    let cases: [(&[&str], &str); 5] = [
        (&[], "TLSv1.3 / TLS_AES_128_GCM_SHA256"),
        (
            &["--tls13-ciphers", "TLS_AES_256_GCM_SHA384"],
            "TLSv1.3 / TLS_AES_256_GCM_SHA384",
        ),
        (
            &["--tls13-ciphers", chacha_first],
            "TLSv1.3 / TLS_CHACHA20_POLY1305_SHA256",
        ),
        (
            &["--tls-max", "1.2"],
            "TLSv1.2 / ECDHE-ECDSA-AES128-GCM-SHA256",
        ),
        (
            &["--tls-max", "1.2", "--ciphers", chacha_first_12],
            "TLSv1.2 / ECDHE-ECDSA-CHACHA20-POLY1305",
        ),
    ];
    let s = Served::start("cipher-order", &[]);
    for (options, want) in cases {
        let got = suites(&s, options);
        assert!(
            got.iter().all(|u| u.starts_with(want)),
            "{options:?}: {got:?}"
        );
    }
    drop(s);
    let s = Served::start(
        "cipher-order-client",
        &[("FTPS_CLIENT_CIPHER_ORDER", "true")],
    );
    let got = suites(&s, &[]);
    let want = "TLSv1.3 / TLS_AES_256_GCM_SHA384";
    assert!(got.iter().all(|u| u.starts_with(want)), "{got:?}");
}
