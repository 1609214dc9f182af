//! What the `ftps serve` tests share: a free port, a password hash made by the binary,
//! a peer client looked for, and a server started and waited for.

#![allow(dead_code)] // Each test binary uses its own part of it.
#![allow(clippy::unwrap_used)] // Test support: a broken step fails the test loudly.

#[allow(unused_imports)] // not every test binary runs a peer
pub(crate) use ftps_conformance::peers::have;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A port free on 127.0.0.1 a moment ago.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A PHC hash of `password`, as `ftps hash-password` prints it.
pub(crate) fn hash(password: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `ftps ARGS` in `dir` with `password` as `FTPS_PASSWORD`, standard input closed; what
/// it did is printed for the test's log.
pub(crate) fn ftps_with_password(dir: &Path, args: &[&str], password: &str) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .current_dir(dir)
        .args(args)
        .env("FTPS_PASSWORD", password)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    eprintln!(
        "ftps {args:?} -> {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `ftps serve` with the files of a peer's work directory (`peers::workdir`): explicit
/// TLS only on `port`, `user:password`, its files under `root`.
pub(crate) fn serve_explicit(
    dir: &Path,
    root: &Path,
    cert: &Path,
    key: &Path,
    user: &str,
    port: u16,
) -> Child {
    start(
        dir,
        &[
            "--root",
            root.to_str().unwrap(),
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--user",
            user,
            "--no-implicit",
            "--explicit",
            &format!("127.0.0.1:{port}"),
        ],
        &[],
    )
}

/// `ftps serve` in `dir` with `args` and `env`, once it says it is ready; its log
/// (standard error) goes to `dir/serve.log`.
pub(crate) fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    let log = std::fs::File::create(dir.join("serve.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .current_dir(dir)
        .arg("serve")
        .args(args)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    wait_ready(&mut child);
    child
}

/// Waits (30 s at most) until `ftps serve`, started with its standard output piped, says
/// it is ready (its last line of the start, on Ctrl-C).
pub(crate) fn wait_ready(child: &mut Child) {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "server did not start");
        match lines.next() {
            Some(Ok(l)) if l.contains("Ctrl-C") => break,
            Some(_) => {}
            None => panic!("server exited"),
        }
    }
}

/// `GET path` on `ip:port` (the metrics listener): the whole response, head and body.
pub(crate) fn http_get(ip: &str, port: u16, path: &str) -> String {
    use std::io::Read;
    let mut tcp = std::net::TcpStream::connect((ip, port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(tcp, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut all = String::new();
    tcp.read_to_string(&mut all).unwrap();
    all
}

/// A plain control connection to 127.0.0.1:`port`, logged in as alice (password `pw`),
/// read a line at a time.
pub(crate) struct PlainControl(BufReader<std::net::TcpStream>);

impl PlainControl {
    /// Connects and logs in.
    pub(crate) fn login(port: u16) -> PlainControl {
        let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut c = PlainControl(BufReader::new(tcp));
        assert!(c.line().starts_with("220"));
        assert!(c.cmd("USER alice").starts_with("331"));
        assert!(c.cmd("PASS pw").starts_with("230"));
        c
    }

    /// The next line the server sends.
    pub(crate) fn line(&mut self) -> String {
        let mut l = String::new();
        self.0.read_line(&mut l).unwrap();
        l
    }

    /// Sends `line`; the first line of the reply.
    pub(crate) fn cmd(&mut self, line: &str) -> String {
        write!(self.0.get_mut(), "{line}\r\n").unwrap();
        self.line()
    }
}
