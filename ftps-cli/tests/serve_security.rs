//! `ftps serve` against the findings of the outside review (issue 13) that are about the
//! command itself, one test each, named after the finding, over real sockets: 5 (its own
//! private key inside the served directory), 16 (passwords on the command line) and 17
//! (anonymous sessions that could write).

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::hostile::transfer;
use ftps_conformance::raw::Raw;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long `ftps serve` may take to start or to refuse.
const START: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh working directory for one `ftps serve`.
fn workdir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("ftps-serve-security-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running `ftps serve`.
struct Served {
    child: Child,
    dir: PathBuf,
    explicit: SocketAddr,
    /// What it printed before it was ready.
    stdout: Vec<String>,
}

/// How a start ended when the server did not come up: its exit status and its stderr.
#[derive(Debug)]
struct Refused {
    status: ExitStatus,
    stderr: String,
}

impl Served {
    /// Runs `ftps serve ARGS` in `dir` (explicit FTPS on a free port, no implicit
    /// listener) with `env` added, until it prints that it is ready, or exits.
    fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<Served, Refused> {
        Self::start_with(dir, args, env, None)
    }

    /// [`start`](Self::start), with the open-file limit (soft and hard) set to
    /// `open_files` if given.
    fn start_with(
        dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        open_files: Option<u32>,
    ) -> Result<Served, Refused> {
        let explicit: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let mut command = match open_files {
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(env!("CARGO_BIN_EXE_ftps"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_ftps")),
        };
        let mut child = command
            .current_dir(dir)
            .env_remove("FTPS_USERS")
            .envs(env.iter().copied())
            .arg("serve")
            .args(["--explicit", &explicit.to_string(), "--no-implicit"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.unwrap_or_default()).is_err() {
                    return;
                }
            }
        });
        let deadline = Instant::now() + START;
        let mut printed = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("Ctrl-C") => {
                    return Ok(Served {
                        child,
                        dir: dir.to_path_buf(),
                        explicit,
                        stdout: printed,
                    });
                }
                Ok(line) => printed.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = wait_bounded(&mut child);
                    return Err(Refused {
                        status,
                        stderr: std::fs::read_to_string(dir.join("stderr.log")).unwrap(),
                    });
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("ftps serve neither started nor exited within {START:?}");
                }
            }
        }
    }

    /// What the server wrote to stderr so far.
    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap()
    }

    /// A client TLS configuration trusting the certificate in `cert`.
    fn tls(cert: &Path) -> Arc<rustls::ClientConfig> {
        let pem = std::fs::read(cert).unwrap();
        Arc::new(ftps_proto::tls::client_config_from_pem(&pem, rustls::ALL_VERSIONS).unwrap())
    }

    /// A control connection past the greeting.
    fn connect(&self) -> Raw {
        let (raw, greeting) = Raw::connect(self.explicit).unwrap();
        assert_eq!(greeting.code().get(), 220);
        raw
    }

    /// AUTH TLS (trusting `cert`), USER and PASS; the code of the reply to PASS.
    fn login_tls(&self, cert: &Path, user: &str, password: &str) -> u16 {
        let mut c = self.connect();
        c.auth_tls(Self::tls(cert)).unwrap();
        assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331);
        c.cmd(&format!("PASS {password}")).unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits at most 10 s for an exited child's status.
fn wait_bounded(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every file under `dir` with its contents, directories as `<dir>`, sorted.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            if p.is_dir() {
                out.push((rel, b"<dir>".to_vec()));
                stack.push(p);
            } else {
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

// Finding 5: `ftps serve --root .` kept its self-signed key in ./.ftps/, inside the
// served directory, and `RETR .ftps/key.pem` returned it. Now the server refuses to start
// when its certificate state (--state-dir, default ./.ftps) or a given --cert/--key lies
// inside the root (canonical paths: a symbolic link into the root counts), naming both
// paths and the fix; with the state kept outside, the same root serves, the key is out of
// reach, and the start-up output says where it is.
#[test]
fn finding_05_serve_never_serves_its_own_key() {
    let dir = workdir("f05");
    let cwd = std::fs::canonicalize(&dir).unwrap();

    // The reviewer's command. Before: it started, and RETR .ftps/key.pem returned the key.
    match Served::start(&dir, &["--root", "."], &[]) {
        Ok(s) => {
            let mut c = s.connect();
            c.auth_tls(Served::tls(&dir.join(".ftps/cert.pem")))
                .unwrap();
            let password = s
                .stdout
                .iter()
                .find_map(|l| l.split("password: ").nth(1))
                .unwrap_or_default()
                .to_owned();
            let _ = c.cmd("USER ftps");
            let size = c
                .cmd(&format!("PASS {password}"))
                .and_then(|_| c.cmd("SIZE .ftps/key.pem"));
            panic!("ftps serve --root . started; SIZE .ftps/key.pem over FTP got {size:?}");
        }
        Err(refused) => {
            assert_eq!(refused.status.code(), Some(1), "{refused:?}");
            for expected in [
                "./.ftps",
                cwd.join(".ftps").to_str().unwrap(),
                cwd.to_str().unwrap(),
                "--state-dir",
                "--root",
            ] {
                assert!(
                    refused.stderr.contains(expected),
                    "{expected} in {}",
                    refused.stderr
                );
            }
        }
    }
    assert!(!dir.join(".ftps").exists(), "nothing made inside the root");

    // A state directory reached through a symbolic link into the root.
    std::fs::create_dir_all(dir.join("ftp-root/pub")).unwrap();
    std::os::unix::fs::symlink(dir.join("ftp-root/pub"), dir.join("link")).unwrap();
    let refused = Served::start(&dir, &["--state-dir", "link/state"], &[])
        .err()
        .unwrap();
    assert!(
        refused
            .stderr
            .contains(cwd.join("ftp-root/pub/state").to_str().unwrap()),
        "{}",
        refused.stderr
    );
    assert!(!dir.join("ftp-root/pub/state").exists());

    // A given key (or certificate) inside the root.
    let outside = workdir("f05-outside");
    let made = Served::start(&outside, &["--root", "served"], &[]).unwrap();
    drop(made);
    std::fs::copy(outside.join(".ftps/key.pem"), dir.join("ftp-root/key.pem")).unwrap();
    std::fs::copy(
        outside.join(".ftps/cert.pem"),
        dir.join("ftp-root/cert.pem"),
    )
    .unwrap();
    let cert = outside.join(".ftps/cert.pem");
    let key = outside.join(".ftps/key.pem");
    for (c, k, named) in [
        (cert.to_str().unwrap(), "ftp-root/key.pem", "private key"),
        ("ftp-root/cert.pem", key.to_str().unwrap(), "certificate"),
    ] {
        let refused = Served::start(&dir, &["--cert", c, "--key", k], &[])
            .err()
            .unwrap();
        assert_eq!(refused.status.code(), Some(1), "{refused:?}");
        assert!(refused.stderr.contains(named), "{}", refused.stderr);
    }

    // Serving the working directory works with the state kept elsewhere: the key is not
    // reachable over FTP, and the output names its path.
    let state = outside.join("state");
    std::fs::write(dir.join("hello.txt"), b"hello").unwrap();
    let s = Served::start(
        &dir,
        &["--root", ".", "--state-dir", state.to_str().unwrap()],
        &[],
    )
    .unwrap();
    let key = std::fs::canonicalize(state.join("key.pem")).unwrap();
    assert!(
        s.stdout
            .iter()
            .any(|l| l.starts_with("private key: ") && l.contains(key.to_str().unwrap())),
        "{:?}",
        s.stdout
    );
    let password = s
        .stdout
        .iter()
        .find_map(|l| l.split("password: ").nth(1))
        .unwrap()
        .to_owned();
    let mut c = s.connect();
    c.auth_tls(Served::tls(&state.join("cert.pem"))).unwrap();
    assert_eq!(c.cmd("USER ftps").unwrap(), 331);
    assert_eq!(c.cmd(&format!("PASS {password}")).unwrap(), 230);
    assert_eq!(c.cmd("SIZE .ftps/key.pem").unwrap(), 550);
    assert_eq!(c.cmd("SIZE hello.txt").unwrap(), 213, "the root is served");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&outside);
}

// Finding 16: `ftps serve --user NAME:PASSWORD` put the password where `ps` and
// /proc/PID/cmdline show it. Now users come from a file or FTPS_USERS as NAME:HASH lines
// (Argon2id PHC strings that `ftps hash-password` makes, reading the password from the
// terminal or standard input), `--user` warns, a users file others can read warns, and a
// malformed one is a clear error with its line number.
#[test]
fn finding_16_users_without_passwords_on_the_command_line() {
    let dir = workdir("f16");
    let hash = |password: &str| -> String {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ftps"))
            .arg("hash-password")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let phc = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(!phc.contains(password));
        phc
    };
    let alice = hash("wonderland");
    let bob = hash("builder");
    assert_ne!(hash("wonderland"), alice, "salted");

    let users = dir.join("users");
    std::fs::write(&users, format!("# our users\nalice:{alice}\n\n")).unwrap();
    std::fs::set_permissions(&users, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let env_users = format!("bob:{bob}\n");
    let s = Served::start(
        &dir,
        &["--users-file", "users"],
        &[("FTPS_USERS", &env_users)],
    )
    .unwrap();
    let cert = dir.join(".ftps/cert.pem");
    assert_eq!(s.login_tls(&cert, "alice", "wonderland"), 230);
    assert_eq!(s.login_tls(&cert, "bob", "builder"), 230);
    assert_eq!(s.login_tls(&cert, "alice", "builder"), 530);
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", s.child.id())).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline);
    assert!(!cmdline.contains("wonderland") && !cmdline.contains("builder"));
    assert!(
        s.stdout.iter().any(|l| l.contains("ftps hash-password")),
        "serve tells how to make a hash: {:?}",
        s.stdout
    );
    assert!(!s.stderr().contains("warning"), "{}", s.stderr());
    drop(s);

    // --user still works for quick tries, with a warning.
    let s = Served::start(&dir, &["--user", "carol:secret"], &[]).unwrap();
    assert_eq!(s.login_tls(&cert, "carol", "secret"), 230);
    let err = s.stderr();
    assert!(
        err.contains("warning") && err.contains("--user") && err.contains("command line"),
        "{err}"
    );
    drop(s);

    // A users file others can read: a warning naming the fix.
    std::fs::set_permissions(&users, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let s = Served::start(&dir, &["--users-file", "users"], &[]).unwrap();
    assert!(s.stderr().contains("chmod 600"), "{}", s.stderr());
    drop(s);

    // Malformed files and variables: a clear error with the line, never a panic.
    for (text, expected) in [
        (format!("alice:{alice}\n\nno colon here\n"), "line 3"),
        ("alice:not-a-hash\n".to_owned(), "line 1"),
        (format!("alice:{alice}\nalice:{bob}\n"), "line 2"),
        (format!(":{alice}\n"), "line 1"),
    ] {
        std::fs::write(&users, &text).unwrap();
        let refused = Served::start(&dir, &["--users-file", "users"], &[])
            .err()
            .unwrap();
        assert_eq!(refused.status.code(), Some(1), "{text}: {refused:?}");
        assert!(
            refused.stderr.contains(expected),
            "{text}: {}",
            refused.stderr
        );
        assert!(!refused.stderr.contains("panicked"), "{}", refused.stderr);
    }
    let refused = Served::start(&dir, &[], &[("FTPS_USERS", "bob builder")])
        .err()
        .unwrap();
    assert!(
        refused.stderr.contains("FTPS_USERS, line 1"),
        "{}",
        refused.stderr
    );
    let missing = Served::start(&dir, &["--users-file", "nope"], &[])
        .err()
        .unwrap();
    assert!(missing.stderr.contains("nope"), "{}", missing.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}

// Finding 17: with --anonymous, anonymous DELE, STOR and MKD succeeded, and the help did
// not say anonymous could write. Now anonymous is read-only (550 for every change), the
// help says so, and --anonymous-upload adds uploads of new files only.
#[test]
fn finding_17_serve_anonymous_is_read_only() {
    let help = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("read-only"), "{help}");
    assert!(help.contains("--anonymous-upload"), "{help}");

    let dir = workdir("f17");
    let root = dir.join("ftp-root");
    std::fs::create_dir_all(root.join("pub")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::write(root.join("pub/readme.txt"), b"read me").unwrap();
    let plain = [
        "--anonymous",
        "--control-tls",
        "allow",
        "--data-tls",
        "allow",
    ];
    let s = Served::start(&dir, &plain, &[]).unwrap();
    let before = tree(&root);
    let mut c = s.connect();
    assert_eq!(c.cmd("USER anonymous").unwrap(), 331);
    assert_eq!(c.cmd("PASS guest@example.com").unwrap(), 230);
    assert_eq!(
        transfer(&mut c, "RETR pub/readme.txt", None),
        (226, b"read me".to_vec())
    );
    for cmd in [
        "DELE pub/readme.txt",
        "MKD pub/new",
        "RMD empty",
        "RNFR pub/readme.txt",
    ] {
        assert_eq!(c.cmd(cmd).unwrap(), 550, "{cmd}");
    }
    for cmd in [
        "STOR pub/new.txt",
        "STOR pub/readme.txt",
        "APPE pub/readme.txt",
    ] {
        assert_eq!(transfer(&mut c, cmd, Some(b"written")).0, 550, "{cmd}");
    }
    assert_eq!(tree(&root), before, "anonymous changed the served tree");
    drop(s);

    // Uploads granted: new files only.
    let mut flags = plain.to_vec();
    flags.push("--anonymous-upload");
    let s = Served::start(&dir, &flags, &[]).unwrap();
    let mut c = s.connect();
    assert_eq!(c.cmd("USER ftp").unwrap(), 331);
    assert_eq!(c.cmd("PASS guest@example.com").unwrap(), 230);
    assert_eq!(transfer(&mut c, "STOR pub/new.txt", Some(b"new")).0, 226);
    assert_eq!(std::fs::read(root.join("pub/new.txt")).unwrap(), b"new");
    assert_eq!(transfer(&mut c, "STOR pub/new.txt", Some(b"again")).0, 550);
    assert_eq!(transfer(&mut c, "STOR pub/readme.txt", Some(b"x")).0, 550);
    assert_eq!(c.cmd("DELE pub/new.txt").unwrap(), 550);
    assert_eq!(c.cmd("MKD pub/dir").unwrap(), 550);
    assert_eq!(std::fs::read(root.join("pub/new.txt")).unwrap(), b"new");
    assert_eq!(
        std::fs::read(root.join("pub/readme.txt")).unwrap(),
        b"read me"
    );
    drop(s);

    // --anonymous-upload alone is a usage error.
    let out = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .current_dir(&dir)
        .args(["serve", "--anonymous-upload"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Found by a second outsider's trial: a users file inside the served root was served,
/// hashes and all, to anyone who could log in (anonymous too). It is refused like the key.
#[test]
fn a_users_file_inside_the_root_is_refused() {
    let dir = workdir("users-inside");
    std::fs::create_dir_all(dir.join("root")).unwrap();
    std::fs::write(
        dir.join("root/users"),
        "alice:$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\n",
    )
    .unwrap();
    match Served::start(
        &dir,
        &[
            "--root",
            "root",
            "--users-file",
            "root/users",
            "--anonymous",
        ],
        &[],
    ) {
        Ok(_) => panic!("ftps serve started with its users file inside the root"),
        Err(refused) => {
            assert_eq!(refused.status.code(), Some(1), "{refused:?}");
            assert!(refused.stderr.contains("users file"), "{refused:?}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// Third review, finding D's class: with the usual open-file limit (1024), 550 connections
// that never logged in kept everyone out: accept failed for want of descriptors before the
// session cap (1000) was reached, so no session was evicted. `ftps serve` now raises the
// soft limit to the hard one, bounds its sessions by what the limit allows (about three
// descriptors each), and a failing accept makes room. Here the limit is 256 (both), so
// at most 64 sessions: 300 idle connections from six addresses must not keep a user out.
#[test]
fn connections_that_never_log_in_cannot_keep_users_out_at_the_open_file_limit() {
    let dir = workdir("fd-limit");
    let s = Served::start_with(
        &dir,
        &["--user", "alice:wonderland", "--control-tls", "allow"],
        &[],
        Some(256),
    )
    .unwrap();
    assert!(
        s.stderr().contains("allows about 64 sessions"),
        "{}",
        s.stderr()
    );
    let port = s.explicit.port();
    let mut idle = Vec::new();
    for last in 2..8u8 {
        for _ in 0..50 {
            if let Some(tcp) = ftps_conformance::hostile::socket_from([127, 0, 0, last], port) {
                idle.push(tcp);
            }
        }
    }
    assert!(idle.len() >= 250, "only {} connections made", idle.len());
    let mut c = s.connect();
    assert_eq!(c.cmd("USER alice").unwrap(), 331);
    assert_eq!(c.cmd("PASS wonderland").unwrap(), 230);
    assert_eq!(c.cmd("NOOP").unwrap(), 200);
    drop(idle);
}
