//! Issue 15: `ftps serve --users-file` with homes and permissions, tried with curl and
//! lftp: `alice` read-write in her home, `bob` read-only, `drop` upload-only, `small`
//! under a quota. Refusals come with 550 (552 past the quota) and leave nothing behind. `cargo xtask ci` sets `FTPS_REQUIRE_PEERS=1`,
//! which turns a missing client into a failure instead of a skip.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

mod support;
use support::{free_port, hash, have};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Served {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Served {
    fn start(name: &str, users: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ftps-users-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("ftp-root");
        for home in ["alice", "shared", "inbox", "small"] {
            std::fs::create_dir_all(root.join(home)).unwrap();
        }
        std::fs::write(root.join("shared/report.csv"), b"a,b\n1,2\n").unwrap();
        std::fs::write(root.join("inbox/old.txt"), b"already here").unwrap();
        std::fs::write(dir.join("users"), users).unwrap();
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ftps"))
            .current_dir(&dir)
            .args(["serve", "--users-file", "users", "--no-implicit"])
            .args(["--explicit", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
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
        Self { child, dir, port }
    }

    fn root(&self) -> PathBuf {
        self.dir.join("ftp-root")
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let out = Command::new("timeout")
            .arg("60")
            .arg(program)
            .args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap();
        eprintln!(
            "{program} {args:?} -> {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// curl as `user:password` with `args`, over explicit FTPS; (exit code, stdout).
    fn curl(&self, user: &str, path: &str, args: &[&str]) -> (i32, Vec<u8>) {
        let ca = self.dir.join(".ftps/cert.pem");
        let url = format!("ftp://127.0.0.1:{}{path}", self.port);
        let mut all = vec![
            "-sS",
            "--ssl-reqd",
            "--cacert",
            ca.to_str().unwrap(),
            "-u",
            user,
        ];
        all.extend_from_slice(args);
        all.push(&url);
        let out = self.run("curl", &all);
        (out.status.code().unwrap_or(-1), out.stdout)
    }

    /// lftp as `user,password` running `script`; (success, stdout + stderr).
    fn lftp(&self, user: &str, script: &str) -> (bool, String) {
        let commands = format!(
            "set ssl:ca-file {}; set ftp:ssl-force true; set ftp:ssl-protect-data true; \
             set net:max-retries 1; set net:timeout 10; set cmd:fail-exit true; {script}; bye",
            self.dir.join(".ftps/cert.pem").display()
        );
        let url = format!("ftp://127.0.0.1:{}", self.port);
        let out = self.run("lftp", &["-u", user, "-e", &commands, &url]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn users_file() -> String {
    format!(
        "# name:hash:home:permissions\n\
         alice:{}:/alice\n\
         bob:{}:/shared:list,download\n\
         drop:{}:/inbox:upload\n\
         small:{}:/small:all:1K,2\n",
        hash("alice-pw"),
        hash("bob-pw"),
        hash("drop-pw"),
        hash("small-pw")
    )
}

/// Files in `dir` (temporary upload files would show here).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn curl_with_three_users() {
    if !have("curl") {
        return;
    }
    let s = Served::start("curl", &users_file());
    let root = s.root();
    let upload = s.dir.join("upload.txt");
    std::fs::write(&upload, b"from curl").unwrap();
    let up = upload.to_str().unwrap();

    // alice: her home is her `/`.
    assert_eq!(s.curl("alice:alice-pw", "/notes.txt", &["-T", up]).0, 0);
    assert_eq!(
        std::fs::read(root.join("alice/notes.txt")).unwrap(),
        b"from curl"
    );
    let (code, got) = s.curl("alice:alice-pw", "/notes.txt", &[]);
    assert_eq!((code, got.as_slice()), (0, &b"from curl"[..]));

    // bob: reads; an upload is refused (curl: 25, "upload failed": the server's 550).
    let (code, got) = s.curl("bob:bob-pw", "/report.csv", &[]);
    assert_eq!((code, got.as_slice()), (0, &b"a,b\n1,2\n"[..]));
    assert_eq!(s.curl("bob:bob-pw", "/new.csv", &["-T", up]).0, 25);
    assert_eq!(s.curl("bob:bob-pw", "/", &["-Q", "DELE report.csv"]).0, 21);
    assert_eq!(names(&root.join("shared")), ["report.csv"]);

    // drop: uploads a new file; cannot list, read or replace (curl: 19 for a refused
    // RETR, 9 for a refused LIST — "access denied to remote resource").
    assert_eq!(s.curl("drop:drop-pw", "/delivery.txt", &["-T", up]).0, 0);
    assert_eq!(
        std::fs::read(root.join("inbox/delivery.txt")).unwrap(),
        b"from curl"
    );
    assert_ne!(s.curl("drop:drop-pw", "/delivery.txt", &[]).0, 0);
    let (code, listing) = s.curl("drop:drop-pw", "/", &["-l"]);
    assert_ne!(code, 0);
    assert!(listing.is_empty(), "{listing:?}");
    assert_eq!(s.curl("drop:drop-pw", "/old.txt", &["-T", up]).0, 25);
    assert_eq!(
        std::fs::read(root.join("inbox/old.txt")).unwrap(),
        b"already here"
    );
    assert_eq!(names(&root.join("inbox")), ["delivery.txt", "old.txt"]);

    // small: at most 1 KiB and 2 files; an upload that passes it is stopped with 552
    // (curl: 70, "disk full or allocation exceeded") and leaves nothing; a third file is
    // refused with 552 before it starts (curl: 25, "failed FTP upload").
    let big = s.dir.join("big.bin");
    std::fs::write(&big, vec![1u8; 4096]).unwrap();
    assert_eq!(
        s.curl("small:small-pw", "/big.bin", &["-T", big.to_str().unwrap()])
            .0,
        70
    );
    assert!(names(&root.join("small")).is_empty());
    assert_eq!(s.curl("small:small-pw", "/a.txt", &["-T", up]).0, 0);
    assert_eq!(s.curl("small:small-pw", "/b.txt", &["-T", up]).0, 0);
    assert_eq!(s.curl("small:small-pw", "/c.txt", &["-T", up]).0, 25);
    assert_eq!(names(&root.join("small")), ["a.txt", "b.txt"]);
}

#[test]
fn lftp_with_three_users() {
    if !have("lftp") {
        return;
    }
    let s = Served::start("lftp", &users_file());
    let root = s.root();
    std::fs::write(s.dir.join("local.txt"), b"from lftp").unwrap();

    let (ok, out) = s.lftp(
        "alice,alice-pw",
        "put local.txt -o a.txt; mkdir sub; cls -1",
    );
    assert!(ok, "{out}");
    assert!(out.contains("a.txt") && out.contains("sub"), "{out}");
    assert_eq!(
        std::fs::read(root.join("alice/a.txt")).unwrap(),
        b"from lftp"
    );

    let (ok, out) = s.lftp("bob,bob-pw", "cls -1; get report.csv -o got.csv");
    assert!(ok, "{out}");
    assert_eq!(std::fs::read(s.dir.join("got.csv")).unwrap(), b"a,b\n1,2\n");
    let (ok, out) = s.lftp("bob,bob-pw", "put local.txt -o x.txt");
    assert!(!ok && out.contains("550"), "{out}");
    let (ok, out) = s.lftp("bob,bob-pw", "rm report.csv");
    assert!(!ok && out.contains("550"), "{out}");
    assert_eq!(names(&root.join("shared")), ["report.csv"]);

    let (ok, out) = s.lftp("drop,drop-pw", "put local.txt -o in.txt");
    assert!(ok, "{out}");
    assert_eq!(
        std::fs::read(root.join("inbox/in.txt")).unwrap(),
        b"from lftp"
    );
    let (ok, out) = s.lftp("drop,drop-pw", "cls -1");
    assert!(!ok && out.contains("550"), "{out}");
    let (ok, out) = s.lftp("drop,drop-pw", "put local.txt -o old.txt");
    assert!(!ok && out.contains("550"), "{out}");
    assert_eq!(
        std::fs::read(root.join("inbox/old.txt")).unwrap(),
        b"already here"
    );
    assert_eq!(names(&root.join("inbox")), ["in.txt", "old.txt"]);

    std::fs::write(s.dir.join("big.bin"), vec![1u8; 4096]).unwrap();
    let (ok, out) = s.lftp("small,small-pw", "put big.bin");
    assert!(!ok && out.contains("552"), "{out}");
    assert!(names(&root.join("small")).is_empty());
}

#[test]
fn a_bad_users_file_names_the_line() {
    let dir = std::env::temp_dir().join(format!("ftps-users-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("ftp-root/alice")).unwrap();
    let h = hash("x-pw");
    for (users, says) in [
        (
            format!("alice:{h}:/nowhere\n"),
            "users, line 1: the home of \"alice\"",
        ),
        (
            format!("\nalice:{h}:/alice:list,write\n"),
            "users, line 2: unknown permission \"write\"",
        ),
        (
            format!("alice:{h}:alice\n"),
            "users, line 1: home \"alice\"",
        ),
        (
            format!("alice:{h}:/alice:all;in=upload\n"),
            "users, line 1: rule \"in=upload\"",
        ),
        (
            format!("alice:{h}:/alice:all:extra\n"),
            "users, line 1: quota \"extra\"",
        ),
        (
            format!("alice:{h}:/alice::1K\n"),
            "users, line 1: PERMISSIONS is empty",
        ),
        (
            format!("alice:{h}:/alice:all:1K,2:extra\n"),
            "users, line 1: TLS \"extra\"",
        ),
        (
            format!("alice:{h}:/alice:all:1K,2:data=require:extra\n"),
            "users, line 1: too many fields",
        ),
    ] {
        std::fs::write(dir.join("users"), users).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_ftps"))
            .current_dir(&dir)
            .args([
                "serve",
                "--users-file",
                "users",
                "--explicit",
                "127.0.0.1:0",
            ])
            .args(["--no-implicit"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "started with a bad file: {err}");
        assert!(err.contains(says), "{says:?} not in {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
