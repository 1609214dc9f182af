//! Issue 17 (the client for daily use), through the binary as users run it, against our
//! server: a password in the URL (taken, with a warning), `--netrc` / `-n` /
//! `--netrc-file`, `--connect-timeout`, `put --create-dirs`, `ftps quote`,
//! `--interface`, `--limit-rate`, `--account` and `--help`'s groups; `cat` of a directory
//! (a usage error), and an error message written to standard error in one piece.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

mod support;
use support::{free_port, start};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "Daily-Pass-7";

/// `ftps serve` with alice, on a fresh directory.
struct Served {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Served {
    fn start(name: &str) -> Served {
        let dir = std::env::temp_dir().join(format!("ftps-daily-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("ftp-root")).unwrap();
        std::fs::write(dir.join("ftp-root/hello.txt"), b"hello").unwrap();
        let port = free_port();
        let user = format!("alice:{PASSWORD}");
        let explicit = format!("127.0.0.1:{port}");
        let child = start(
            &dir,
            &[
                "--no-implicit",
                "--active",
                "--user",
                &user,
                "--explicit",
                &explicit,
            ],
            &[],
        );
        Served { child, dir, port }
    }

    fn url(&self, path: &str) -> String {
        format!("ftp://127.0.0.1:{}/{path}", self.port)
    }

    fn root(&self) -> PathBuf {
        self.dir.join("ftp-root")
    }

    /// `ftps ARGS --ca-cert ...` with `env` (no password given otherwise), within 60 s.
    fn ftps(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        ftps(&self.dir, args, Some(&self.dir.join(".ftps/cert.pem")), env)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `ftps ARGS` in `dir`, trusting `ca` if given, with no password from the environment
/// but `env`'s, stdin closed, within 60 s.
fn ftps(dir: &Path, args: &[&str], ca: Option<&Path>, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("timeout");
    cmd.arg("60").arg(env!("CARGO_BIN_EXE_ftps")).args(args);
    if let Some(ca) = ca {
        cmd.arg("--ca-cert").arg(ca);
    }
    let out = cmd
        .current_dir(dir)
        .env_remove("FTPS_PASSWORD")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    eprintln!(
        "ftps {args:?} -> {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_password_in_the_url_is_taken_with_a_warning() {
    let s = Served::start("url-password");
    let url = format!("ftp://alice:{PASSWORD}@127.0.0.1:{}/", s.port);
    let out = s.ftps(&["ls", &url], &[]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("hello.txt"));
    assert!(stderr(&out).contains("visible to other users"));
    assert!(!stderr(&out).contains(PASSWORD));
    // With -v too, the trace never shows it.
    let out = s.ftps(&["-v", "ls", &url], &[]);
    assert!(out.status.success());
    assert!(stderr(&out).contains("PASS"), "no trace: {}", stderr(&out));
    assert!(!stderr(&out).contains(PASSWORD));
    // A wrong one is a refused login.
    let wrong = format!("ftp://alice:nope@127.0.0.1:{}/", s.port);
    assert_eq!(s.ftps(&["ls", &wrong], &[]).status.code(), Some(4));
}

#[test]
fn netrc_gives_the_user_and_password() {
    let s = Served::start("netrc");
    let netrc = s.dir.join("netrc");
    std::fs::write(
        &netrc,
        format!(
            "machine other.example login bob password x\n\
             machine 127.0.0.1\n  login alice\n  password {PASSWORD}\n"
        ),
    )
    .unwrap();
    let file = netrc.to_str().unwrap();
    let out = s.ftps(&["ls", "--netrc-file", file, &s.url("")], &[]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("hello.txt"));
    // -n reads ~/.netrc; one given to others is warned about.
    let home = s.dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::copy(&netrc, home.join(".netrc")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::Permissions::from_mode(0o644);
    std::fs::set_permissions(home.join(".netrc"), mode).unwrap();
    let home = home.to_str().unwrap();
    let out = s.ftps(&["ls", "-n", &s.url("")], &[("HOME", home)]);
    assert!(out.status.success());
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
    // A user given picks that user's entry; there is none for mallory, whose password is
    // then asked for (no terminal here: exit 1), never alice's sent for mallory.
    let out = s.ftps(
        &["ls", "--netrc-file", file, "--user", "mallory", &s.url("")],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // A wrong password in the file: the login is refused.
    std::fs::write(&netrc, "machine 127.0.0.1 login alice password wrong\n").unwrap();
    let out = s.ftps(&["ls", "--netrc-file", file, &s.url("")], &[]);
    assert_eq!(out.status.code(), Some(4));
}

#[test]
fn connect_timeout_bounds_a_connection_that_does_not_complete() {
    // A listener whose accept queue is full: the kernel drops further SYNs, so a connect
    // neither completes nor fails until the client gives up.
    let listener =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    listener
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let mut held = Vec::new();
    for _ in 0..8 {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&addr.into());
        held.push(s);
    }
    std::thread::sleep(Duration::from_millis(300));
    let dir = std::env::temp_dir();
    let url = format!("ftp://127.0.0.1:{}/", addr.port());
    let started = Instant::now();
    let out = ftps(
        &dir,
        &["ls", "--connect-timeout", "1.5", "--user", "a", &url],
        None,
        &[("FTPS_PASSWORD", "x")],
    );
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(6),
        "took {took:?}"
    );
    for bad in ["0", "-1", "soon"] {
        let out = ftps(&dir, &["ls", "--connect-timeout", bad, &url], None, &[]);
        assert_eq!(out.status.code(), Some(2), "--connect-timeout {bad}");
    }
}

#[test]
fn put_create_dirs_makes_the_missing_directories() {
    let s = Served::start("create-dirs");
    let local = s.dir.join("f.txt");
    std::fs::write(&local, b"deep").unwrap();
    let local = local.to_str().unwrap();
    let env = [("FTPS_PASSWORD", PASSWORD)];
    let deep = s.url("a/b c/d/f.txt");
    // Without the flag: the directory is missing, the server refuses (exit 5).
    let out = s.ftps(&["put", "--user", "alice", local, &deep], &env);
    assert_eq!(out.status.code(), Some(5));
    let out = s.ftps(
        &["put", "--user", "alice", "--create-dirs", local, &deep],
        &env,
    );
    assert!(out.status.success());
    assert_eq!(
        std::fs::read(s.root().join("a/b c/d/f.txt")).unwrap(),
        b"deep"
    );
    // Again, the directories existing: fine; into a directory URL too.
    let out = s.ftps(
        &[
            "put",
            "--user",
            "alice",
            "--create-dirs",
            local,
            &s.url("a/b c/e/"),
        ],
        &env,
    );
    assert!(out.status.success());
    assert_eq!(
        std::fs::read(s.root().join("a/b c/e/f.txt")).unwrap(),
        b"deep"
    );
}

#[test]
fn quote_sends_commands_and_prints_replies() {
    let s = Served::start("quote");
    let env = [("FTPS_PASSWORD", PASSWORD)];
    let out = s.ftps(
        &[
            "quote",
            "--user",
            "alice",
            &s.url(""),
            "MKD made",
            "SIZE hello.txt",
        ],
        &env,
    );
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("257 "), "{text}");
    assert!(text.contains("213 5"), "{text}");
    assert!(s.root().join("made").is_dir());
    // In the URL's directory.
    std::fs::write(s.root().join("made/x.bin"), b"12345678").unwrap();
    let out = s.ftps(
        &["quote", "--user", "alice", &s.url("made/"), "SIZE x.bin"],
        &env,
    );
    assert!(stdout(&out).contains("213 8"), "{}", stdout(&out));
    // A refusal stops there: exit 5, the later command not sent.
    let out = s.ftps(
        &[
            "quote",
            "--user",
            "alice",
            &s.url(""),
            "SIZE nothing",
            "MKD never",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(5));
    assert!(stdout(&out).contains("550"), "{}", stdout(&out));
    assert!(!s.root().join("never").exists());
    // Commands ftps manages are refused before anything is sent.
    for refused in [
        "PASV",
        "RETR hello.txt",
        "PROT C",
        "USER bob",
        "AUTH TLS",
        "NOSUCH x",
    ] {
        let out = s.ftps(&["quote", "--user", "alice", &s.url(""), refused], &env);
        assert_eq!(out.status.code(), Some(2), "{refused}");
    }
}

#[test]
fn interface_starts_the_session_from_that_address() {
    let s = Served::start("interface");
    let env = [("FTPS_PASSWORD", PASSWORD)];
    for mode in [&[][..], &["--active"][..]] {
        let mut args = vec!["get", "--user", "alice", "--interface", "127.0.0.2"];
        args.extend_from_slice(mode);
        let got = s.dir.join("got.txt");
        let url = s.url("hello.txt");
        args.extend([url.as_str(), got.to_str().unwrap()]);
        let out = s.ftps(&args, &env);
        assert!(out.status.success(), "{mode:?}");
        assert_eq!(std::fs::read(&got).unwrap(), b"hello");
        std::fs::remove_file(&got).unwrap();
    }
    // The server saw both sessions come from 127.0.0.2 (it refuses a data connection from
    // any other address than its control connection's, so the data came from there too).
    std::thread::sleep(Duration::from_millis(300));
    let log = std::fs::read_to_string(s.dir.join("serve.log")).unwrap();
    let logins: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("result=\"accepted\""))
        .collect();
    assert_eq!(logins.len(), 2, "{log}");
    assert!(
        logins.iter().all(|l| l.contains("peer=127.0.0.2")),
        "not from 127.0.0.2: {logins:?}"
    );
    // The wrong family, an address this host lacks: exit 3, saying why; a name: exit 2.
    let out = s.ftps(
        &["ls", "--user", "alice", "--interface", "::1", &s.url("")],
        &env,
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("families differ"), "{}", stderr(&out));
    let out = s.ftps(
        &[
            "ls",
            "--user",
            "alice",
            "--interface",
            "192.0.2.1",
            &s.url(""),
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("cannot bind"), "{}", stderr(&out));
    let out = s.ftps(
        &["ls", "--user", "alice", "--interface", "eth0", &s.url("")],
        &env,
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn put_dash_uploads_standard_input() {
    let s = Served::start("stdin");
    let ca = s.dir.join(".ftps/cert.pem");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .args([
            "put",
            "--user",
            "alice",
            "--ca-cert",
            ca.to_str().unwrap(),
            "-",
        ])
        .arg(s.url("from-stdin.bin"))
        .env("FTPS_PASSWORD", PASSWORD)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 253) as u8).collect();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read(s.root().join("from-stdin.bin")).unwrap() == body);
    // Standard input has no name, and cannot be read twice.
    let env = [("FTPS_PASSWORD", PASSWORD)];
    let out = s.ftps(&["put", "--user", "alice", "-", &s.url("")], &env);
    assert_eq!(out.status.code(), Some(2));
    let out = s.ftps(
        &["put", "--user", "alice", "--retry", "2", "-", &s.url("x")],
        &env,
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn get_expands_remote_globs() {
    let s = Served::start("globs");
    std::fs::create_dir_all(s.root().join("data/sub.csv")).unwrap();
    for name in ["a.csv", "b.csv", "c.txt", "d?.csv"] {
        std::fs::write(s.root().join("data").join(name), name.as_bytes()).unwrap();
    }
    let env = [("FTPS_PASSWORD", PASSWORD)];
    let into = s.dir.join("into");
    std::fs::create_dir_all(&into).unwrap();
    let into_s = into.to_str().unwrap();
    let out = s.ftps(
        &["get", "--user", "alice", &s.url("data/*.csv"), into_s],
        &env,
    );
    assert!(out.status.success());
    let mut got: Vec<String> = std::fs::read_dir(&into)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    got.sort();
    // Files only (not the directory sub.csv); `?` is a name's character, not a query.
    assert_eq!(got, ["a.csv", "b.csv", "d?.csv"]);
    assert_eq!(std::fs::read(into.join("b.csv")).unwrap(), b"b.csv");
    let out = s.ftps(
        &["get", "--user", "alice", &s.url("data/?.txt"), into_s],
        &env,
    );
    assert!(out.status.success());
    assert!(into.join("c.txt").is_file());
    // Nothing matches: exit 5, as a missing file.
    let out = s.ftps(
        &["get", "--user", "alice", &s.url("data/*.zip"), into_s],
        &env,
    );
    assert_eq!(out.status.code(), Some(5));
    // Several matches into one file: refused.
    let one = s.dir.join("one.csv");
    let out = s.ftps(
        &[
            "get",
            "--user",
            "alice",
            &s.url("data/*.csv"),
            one.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(!one.exists());
}

#[test]
fn ls_json_lists_for_scripts() {
    let s = Served::start("json");
    std::fs::create_dir_all(s.root().join("dir")).unwrap();
    std::fs::write(s.root().join("esc\u{1b}[31mape.txt"), b"12345").unwrap();
    let env = [("FTPS_PASSWORD", PASSWORD)];
    let out = s.ftps(&["ls", "--json", "--user", "alice", &s.url("")], &env);
    assert!(out.status.success());
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = listed.as_array().unwrap();
    let find = |name: &str| {
        entries
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in {listed}"))
    };
    assert_eq!(find("hello.txt")["type"], "file");
    assert_eq!(find("hello.txt")["size"], 5);
    assert!(find("hello.txt")["modified"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(find("dir")["type"], "dir");
    // A name's control characters are JSON escapes, never raw bytes on the terminal.
    assert_eq!(find("esc\u{1b}[31mape.txt")["size"], 5);
    assert!(!out.stdout.contains(&0x1b));
}

/// `--limit-rate` (as curl's): 600 KiB at 200 KiB/s take three seconds each way, on
/// loopback where they would take milliseconds; the bytes arrive whole.
#[test]
fn limit_rate_holds_transfers_to_the_rate() {
    let s = Served::start("rate");
    let body: Vec<u8> = (0..600 * 1024u32).map(|i| (i * 13 % 251) as u8).collect();
    std::fs::write(s.root().join("big.bin"), &body).unwrap();
    let env = [("FTPS_PASSWORD", PASSWORD)];
    let local = s.dir.join("big.bin");
    let (local, remote, uploaded) = (local.to_str().unwrap(), s.url("big.bin"), s.url("up.bin"));
    for (args, arrived) in [
        (["get", &remote, local], s.dir.join("big.bin")),
        (["put", local, &uploaded], s.root().join("up.bin")),
    ] {
        let started = Instant::now();
        let all = [
            args[0],
            "--user",
            "alice",
            "--limit-rate",
            "200K",
            args[1],
            args[2],
        ];
        let out = s.ftps(&all, &env);
        let took = started.elapsed();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(std::fs::read(arrived).unwrap() == body);
        assert!(
            took >= Duration::from_millis(2800),
            "{} took {took:?}",
            args[0]
        );
    }
    // A rate of nothing is a usage error.
    let out = s.ftps(&["get", "--limit-rate", "0", &s.url("big.bin"), "-"], &env);
    assert_eq!(out.status.code(), Some(2));
}

/// A plain-FTP server that asks for an account after the password (332, RFC 959 §4.1.1)
/// and logs in only with `account`: the lines it got, once the client has quit.
fn account_server(account: &'static str) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut out = tcp.try_clone().unwrap();
        let mut lines = Vec::new();
        out.write_all(b"220 ready\r\n").unwrap();
        for line in BufReader::new(tcp).lines() {
            let Ok(line) = line else { break };
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            let reply = match verb.as_str() {
                "USER" => "331 password".to_owned(),
                "PASS" => "332 account, please".to_owned(),
                "ACCT" if line[5..] == *account => "230 in".to_owned(),
                "ACCT" => "530 wrong account".to_owned(),
                "PWD" => "257 \"/\"".to_owned(),
                "FEAT" | "OPTS" | "HOST" => "502 no".to_owned(),
                "QUIT" => "221 bye".to_owned(),
                _ => "200 ok".to_owned(),
            };
            lines.push(line);
            out.write_all(format!("{reply}\r\n").as_bytes()).unwrap();
            if verb == "QUIT" {
                break;
            }
        }
        lines
    });
    (port, served)
}

/// `--account` answers a server's 332 with ACCT (curl's --ftp-account); `-v` shows the
/// command with its argument hidden, as a password's.
#[test]
fn account_is_sent_when_the_server_asks() {
    let dir = std::env::temp_dir().join(format!("ftps-daily-acct-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (port, served) = account_server("dept-42");
    let url = format!("ftp://127.0.0.1:{port}/");
    let env = [("FTPS_PASSWORD", "pw")];
    let args = [
        "-v",
        "quote",
        "--tls",
        "none",
        "--user",
        "bob",
        "--account",
        "dept-42",
        &url,
        "NOOP",
    ];
    let out = ftps(&dir, &args, None, &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = served.join().unwrap();
    assert!(lines.iter().any(|l| l == "ACCT dept-42"), "{lines:?}");
    assert!(lines.iter().any(|l| l == "NOOP"), "{lines:?}");
    assert!(!stderr(&out).contains("dept-42"), "the account was traced");
    assert!(stderr(&out).contains("ACCT ****"), "no ACCT in the trace");
    // The wrong account: the login fails, and says so.
    let (port, served) = account_server("dept-42");
    let url = format!("ftp://127.0.0.1:{port}/");
    let out = ftps(
        &dir,
        &[
            "quote",
            "--tls",
            "none",
            "--user",
            "bob",
            "--account",
            "x",
            &url,
            "NOOP",
        ],
        None,
        &env,
    );
    assert!(!out.status.success());
    assert!(!served.join().unwrap().iter().any(|l| l == "NOOP"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--help` groups the options as curl's does: login, connection, TLS, transfer, mirror.
#[test]
fn help_groups_the_options() {
    let dir = std::env::temp_dir();
    for (command, headings) in [
        (
            "get",
            &["Login:", "Connection:", "TLS:", "Transfer:", "Mirror:"][..],
        ),
        (
            "put",
            &["Login:", "Connection:", "TLS:", "Transfer:", "Mirror:"][..],
        ),
        ("ls", &["Login:", "Connection:", "TLS:", "Transfer:"][..]),
    ] {
        let out = ftps(&dir, &[command, "--help"], None, &[]);
        assert!(out.status.success());
        let help = stdout(&out);
        let at: Vec<usize> = headings
            .iter()
            .map(|h| {
                help.lines()
                    .position(|l| l == *h)
                    .unwrap_or_else(|| panic!("{command}: no {h}"))
            })
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{command}: {at:?}");
        let under = |flag: &str| {
            let line = help
                .lines()
                .position(|l| l.trim_start().starts_with(flag) || l.contains(&format!(" {flag}")))
                .unwrap_or_else(|| panic!("{command}: no {flag}"));
            headings[..at.iter().filter(|&&h| h < line).count()]
                .last()
                .copied()
                .unwrap_or("")
        };
        assert_eq!(under("--netrc-file"), "Login:", "{command}");
        assert_eq!(under("--account"), "Login:", "{command}");
        assert_eq!(under("--interface"), "Connection:", "{command}");
        assert_eq!(under("--ca-cert"), "TLS:", "{command}");
        assert_eq!(under("--limit-rate"), "Transfer:", "{command}");
        if command != "ls" {
            assert_eq!(under("--jobs"), "Mirror:", "{command}");
        }
    }
}

/// `ftps cat` and `ftps get` take files: a URL that names a directory is a usage error
/// (exit 2), said before connecting.
#[test]
fn cat_needs_a_file() {
    let s = Served::start("cat");
    let env = [("FTPS_PASSWORD", PASSWORD)];
    let out = s.ftps(&["cat", "--user", "alice", &s.url("hello.txt")], &env);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, b"hello");
    for dir in ["", "sub/"] {
        let out = s.ftps(&["cat", "--user", "alice", &s.url(dir)], &env);
        assert_eq!(out.status.code(), Some(2), "cat /{dir}");
        assert!(
            stderr(&out).contains("names a directory"),
            "{}",
            stderr(&out)
        );
    }
    // So does get (`sub/..` is the login directory: it went out as an empty RETR, exit 1).
    for dir in ["", "sub/", "sub/.."] {
        let out = s.ftps(&["get", "--user", "alice", &s.url(dir), "got"], &env);
        assert_eq!(out.status.code(), Some(2), "get /{dir}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("names a directory; get fetches files"),
            "{}",
            stderr(&out)
        );
        assert!(!s.dir.join("got").exists());
    }
}

/// A message on standard error reaches it in one `write`, whole (it used to go a byte per
/// write, through the escaping of server text): read off `strace`. strace is installed by
/// `cargo xtask ci`; without it (and without `FTPS_REQUIRE_PEERS`) this is skipped.
#[test]
fn an_error_is_written_in_one_piece() {
    if !support::have("strace") {
        return;
    }
    let s = Served::start("one-write");
    let ca = s.dir.join(".ftps/cert.pem");
    let trace = s.dir.join("trace");
    let out = Command::new("timeout")
        .arg("60")
        .args(["strace", "-f", "-s", "4096", "-e", "trace=write", "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_ftps"))
        .args(["cat", "--user", "alice", "--ca-cert", ca.to_str().unwrap()])
        .arg(s.url("no-such-file.txt"))
        .env("FTPS_PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let trace = std::fs::read_to_string(&trace).unwrap();
    let to_stderr: Vec<&str> = trace.lines().filter(|l| l.contains("write(2, ")).collect();
    assert_eq!(to_stderr.len(), 1, "{trace}");
    assert!(
        to_stderr[0].contains("no-such-file.txt") && to_stderr[0].contains("550"),
        "{}",
        to_stderr[0]
    );
}
