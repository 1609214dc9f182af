//! What `ftps serve` writes to its log cannot be steered by a peer (issue 13, findings 14
//! and 15): control characters from a peer (here ANSI escapes in a user name) are
//! escaped, and a flood of refused data connections makes a line a second, not thousands.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `ftps serve` with clear-text logins allowed; its log (stderr) is read at the end.
struct Serve {
    child: Child,
    dir: std::path::PathBuf,
    port: u16,
}

impl Serve {
    fn start(name: &str) -> Serve {
        Self::start_with(name, &[])
    }

    /// [`start`](Self::start) with more arguments.
    fn start_with(name: &str, more: &[&str]) -> Serve {
        let dir = std::env::temp_dir().join(format!("ftps-log-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("ftp-root")).unwrap();
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ftps"))
            .current_dir(&dir)
            .args(["serve", "--user", "alice:wonderland", "--no-implicit"])
            .args(["--explicit", &format!("127.0.0.1:{port}")])
            .args(["--control-tls", "allow", "--data-tls", "allow"])
            .args(more)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "server did not start");
            match lines.next() {
                Some(Ok(l)) if l.contains("Ctrl-C") => break,
                Some(_) => {}
                None => panic!("server exited"),
            }
        }
        Serve { child, dir, port }
    }

    fn control(&self) -> (TcpStream, BufReader<TcpStream>) {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut reader = BufReader::new(tcp.try_clone().unwrap());
        let mut greeting = String::new();
        reader.read_line(&mut greeting).unwrap();
        assert!(greeting.starts_with("220"), "{greeting}");
        (tcp, reader)
    }

    /// Stops the server; its log.
    fn log(mut self) -> Vec<u8> {
        let _ = self.child.kill();
        let mut log = Vec::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_end(&mut log)
            .unwrap();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        log
    }
}

/// Sends a command, returns the first line of its final reply.
fn cmd(tcp: &mut TcpStream, reader: &mut BufReader<TcpStream>, line: &[u8]) -> String {
    tcp.write_all(line).unwrap();
    tcp.write_all(b"\r\n").unwrap();
    loop {
        let mut reply = String::new();
        reader.read_line(&mut reply).unwrap();
        if reply.len() > 3 && reply.as_bytes()[3] == b' ' && !reply.starts_with('1') {
            return reply;
        }
    }
}

// Finding 15: an unauthenticated USER with ANSI escapes was written raw into the log.
#[test]
fn finding_15_peer_text_is_escaped_in_the_log() {
    let s = Serve::start("inject");
    let (mut tcp, mut reader) = s.control();
    let evil = b"USER \x1b[2J\x1b[1;1Hforged\x1b]0;title\x07\xc2\x9b31m";
    assert!(cmd(&mut tcp, &mut reader, evil).starts_with("331"));
    assert!(cmd(&mut tcp, &mut reader, b"PASS wrong").starts_with("530"));
    // A path with escapes, logged by a transfer.
    assert!(cmd(&mut tcp, &mut reader, b"USER alice").starts_with("331"));
    assert!(cmd(&mut tcp, &mut reader, b"PASS wonderland").starts_with("230"));
    drop(tcp);
    std::thread::sleep(Duration::from_millis(300));
    let log = s.log();
    let text = String::from_utf8_lossy(&log);
    assert!(text.contains("forged"), "the login was not logged:\n{text}");
    assert!(
        !log.contains(&0x1b) && !log.contains(&0x07),
        "raw control characters in the log:\n{text}"
    );
}

// Finding 14: 5000 connections from 127.0.0.2 to an open passive port wrote 5000 WARN
// lines. Such warnings are now said at most once a second server-wide, each with the count
// held back since the last.
#[test]
fn finding_14_a_flood_of_foreign_data_connections_makes_a_line_a_second() {
    let s = Serve::start("flood");
    let (mut tcp, mut reader) = s.control();
    assert!(cmd(&mut tcp, &mut reader, b"USER alice").starts_with("331"));
    assert!(cmd(&mut tcp, &mut reader, b"PASS wonderland").starts_with("230"));
    let epsv = cmd(&mut tcp, &mut reader, b"EPSV");
    let port = ftps_proto::address::parse_epsv_reply(epsv.trim_end()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let refused = rt.block_on(async {
        let mut n = 0;
        for _ in 0..500 {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(SocketAddr::from(([127, 0, 0, 2], 0))).unwrap();
            if socket
                .connect(SocketAddr::from(([127, 0, 0, 1], port)))
                .await
                .is_ok()
            {
                n += 1;
            }
        }
        n
    });
    let secs = started.elapsed().as_secs() as usize;
    assert!(refused > 400, "only {refused} connections made");
    std::thread::sleep(Duration::from_millis(300));
    drop(tcp);
    let log = String::from_utf8_lossy(&s.log()).into_owned();
    let lines = log.lines().filter(|l| l.contains("foreign")).count();
    assert!(
        lines >= 1 && lines <= secs + 2,
        "{lines} lines about {refused} foreign connections in {secs} s:\n{log}"
    );
}

// Issue 13's third and fourth reviews: one connection pipelining anonymous logins and REIN
// wrote ~39,000 log lines a second; many connections each logging in 16 times, ~5,500.
// `ftps serve --anonymous` now closes a session after 16 logins and says anonymous logins
// a line a second, with the count held back.
#[test]
fn anonymous_logins_cannot_flood_the_log() {
    let s = Serve::start_with("anon-flood", &["--anonymous"]);
    let started = Instant::now();
    let mut logins = 0;
    for _ in 0..20 {
        let (mut tcp, mut reader) = s.control();
        let flood = "USER anonymous\r\nPASS x@y\r\nREIN\r\n".repeat(40);
        tcp.write_all(flood.as_bytes()).unwrap();
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            if line.starts_with("230 ") {
                logins += 1;
            }
            if line.starts_with("421 ") {
                break;
            }
        }
    }
    let secs = started.elapsed().as_secs() as usize;
    std::thread::sleep(Duration::from_millis(300));
    let log = String::from_utf8_lossy(&s.log()).into_owned();
    let lines = log.lines().filter(|l| l.contains("anonymous")).count();
    assert_eq!(logins, 20 * 16, "16 logins a session:\n{log}");
    assert!(
        lines >= 1 && lines <= secs + 2,
        "{lines} log lines for {logins} anonymous logins in {secs} s:\n{log}"
    );
}
