//! Names that are not UTF-8, through the `ftps` binary: a URL's `%E9` is the byte 0xE9 (a
//! Latin-1 `é`), sent to the server as it is (RFC 959 pathnames are bytes; RFC 2640 made
//! UTF-8 the usual encoding, not the only one), so a file stored under a Latin-1 name can
//! be fetched (`get`, to a directory and to a name of its own; `cat`), a directory so
//! named listed (`ls`, `ls -l`), made (`mkdir`), renamed (`mv`) and removed (`rm`).
//! Against vsftpd, ProFTPD and Pure-FTPd (root and the peers, as `real_servers.rs`; a
//! missing peer is skipped unless `FTPS_REQUIRE_PEERS` is set), and against our own
//! `ftps serve`, which takes UTF-8 pathnames only: there the same commands run on UTF-8
//! names, and a Latin-1 one is refused clearly (501, exit 5). The commands that still
//! take the path as text refuse such a URL (exit 2) instead of sending other bytes.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::peers::{self, PASSWORD};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Output};

mod support;

/// Names the commands work on, as bytes and in URLs.
struct Names {
    /// A file (`café.txt`).
    file: &'static [u8],
    file_url: &'static str,
    /// A directory (`répertoire`).
    dir: &'static [u8],
    dir_url: &'static str,
    /// A directory `mkdir` makes (`déjà`).
    made: &'static [u8],
    made_url: &'static str,
}

/// Latin-1, as a server on a Latin-1 disk has them.
const LATIN1: Names = Names {
    file: b"caf\xe9.txt",
    file_url: "caf%E9.txt",
    dir: b"r\xe9pertoire",
    dir_url: "r%E9pertoire",
    made: b"d\xe9j\xe0",
    made_url: "d%E9j%E0",
};

/// UTF-8 (RFC 2640), which is all our server takes.
const UTF8: Names = Names {
    file: "café.txt".as_bytes(),
    file_url: "caf%C3%A9.txt",
    dir: "répertoire".as_bytes(),
    dir_url: "r%C3%A9pertoire",
    made: "déjà".as_bytes(),
    made_url: "d%C3%A9j%C3%A0",
};

fn name(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

fn fresh(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ftps-bytes-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Our server, stopped when dropped.
struct Ours(Child);

impl Drop for Ours {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ftps serve` on a fresh directory: (server, port, home, certificate).
fn serve() -> (Ours, u16, PathBuf, PathBuf) {
    let (dir, cert, key, _) = peers::workdir("ftps-bytes-serve");
    let home = dir.join("root");
    std::fs::create_dir_all(&home).unwrap();
    let port = support::free_port();
    let user = format!("alice:{PASSWORD}");
    let child = support::serve_explicit(&dir, &home, &cert, &key, &user, port);
    (Ours(child), port, home, cert)
}

/// The server a test runs the commands against.
struct Server<'a> {
    label: &'a str,
    port: u16,
    user: &'a str,
    /// Its login directory on disk.
    home: &'a Path,
    cert: &'a Path,
    /// Gives what the test put in `home` to the server's user.
    chown: &'a dyn Fn(),
}

impl<'a> Server<'a> {
    /// Our server (see [`serve`]) as alice; what the test puts in its home is its own.
    fn ours(port: u16, home: &'a Path, cert: &'a Path) -> Server<'a> {
        Server {
            label: "ours",
            port,
            user: "alice",
            home,
            cert,
            chown: &|| {},
        }
    }

    /// Runs `ftps ARGS[0] --ca-cert ... --user ... ARGS[1..]` in `local`.
    fn ftps(&self, local: &Path, args: &[&str]) -> Output {
        let cert = self.cert.display().to_string();
        let mut all = vec![args[0], "--ca-cert", cert.as_str(), "--user", self.user];
        all.extend_from_slice(&args[1..]);
        support::ftps_with_password(local, &all, PASSWORD)
    }
}

/// Runs every command against `server` on the names `n`.
fn exercise(server: &Server<'_>, n: &Names) {
    let Server {
        label, port, home, ..
    } = *server;
    let content: Vec<u8> = (0..70_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(home.join(name(n.file)), &content).unwrap();
    std::fs::create_dir_all(home.join(name(n.dir))).unwrap();
    std::fs::write(home.join(name(n.dir)).join("inside.txt"), b"inside\n").unwrap();
    (server.chown)();
    let local = fresh(label);
    let base = format!("ftp://127.0.0.1:{port}");
    let with = |args: &[&str]| server.ftps(&local, args);
    let ok = |out: &Output, what: &str| {
        assert_eq!(out.status.code(), Some(0), "{label}: {what}");
    };

    // get, to the file's own name (its bytes, as on the server) and into a directory.
    let url = format!("{base}/{}", n.file_url);
    ok(&with(&["get", &url]), "get");
    assert!(
        std::fs::read(local.join(name(n.file))).unwrap() == content,
        "{label}: get"
    );
    std::fs::create_dir(local.join("into")).unwrap();
    ok(&with(&["get", &url, "into/"]), "get into/");
    assert!(
        std::fs::read(local.join("into").join(name(n.file))).unwrap() == content,
        "{label}: get into/"
    );

    // cat.
    let out = with(&["cat", &url]);
    ok(&out, "cat");
    assert!(out.stdout == content, "{label}: cat");

    // ls and ls -l of a directory named in Latin-1.
    let dir_url = format!("{base}/{}/", n.dir_url);
    for args in [vec!["ls"], vec!["ls", "-l"]] {
        let mut args = args;
        args.push(&dir_url);
        let out = with(&args);
        ok(&out, "ls");
        let listed = String::from_utf8_lossy(&out.stdout);
        assert!(listed.contains("inside.txt"), "{label}: {args:?}: {listed}");
    }

    // mkdir, mv, rm: checked on the server's disk.
    ok(
        &with(&["mkdir", &format!("{base}/{}/", n.made_url)]),
        "mkdir",
    );
    assert!(home.join(name(n.made)).is_dir(), "{label}: mkdir");
    ok(&with(&["mv", &url, "renamed.txt"]), "mv");
    assert!(
        std::fs::read(home.join("renamed.txt")).unwrap() == content,
        "{label}: mv"
    );
    assert!(!home.join(name(n.file)).exists(), "{label}: mv");
    std::fs::write(home.join(name(n.file)), b"again").unwrap();
    (server.chown)();
    ok(&with(&["rm", &url]), "rm");
    assert!(!home.join(name(n.file)).exists(), "{label}: rm");
    let _ = std::fs::remove_dir_all(&local);
}

/// Our server takes UTF-8 pathnames only (RFC 2640): a Latin-1 name is refused with a
/// clear 501, exit 5, and nothing is left behind; the same commands on UTF-8 names work.
#[test]
fn names_against_our_server() {
    let (_ours, port, home, cert) = serve();
    let server = Server::ours(port, &home, &cert);
    exercise(&server, &UTF8);
    let local = fresh("ours-latin1");
    let out = server.ftps(
        &local,
        &["get", "-v", &format!("ftp://127.0.0.1:{port}/caf%E9.txt")],
    );
    assert_eq!(out.status.code(), Some(5));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("501") && stderr.contains("not UTF-8"),
        "{stderr}"
    );
    // The trace (-v) shows the byte that went out as `\xE9`, not as U+FFFD.
    assert!(stderr.contains("> RETR caf\\xE9.txt"), "{stderr}");
    // So does the error message (it printed `caf\u{FFFD}.txt`, a name no URL can give).
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("ftps: caf\\xE9.txt: ")),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{FFFD}'), "{stderr}");
    assert_eq!(
        std::fs::read_dir(&local).unwrap().count(),
        0,
        "nothing kept"
    );
    let _ = std::fs::remove_dir_all(&local);
}

#[test]
fn latin1_names_against_real_servers() {
    type Start = fn() -> Option<peers::Peer>;
    let peers: [(&str, Start); 3] = [
        ("vsftpd", || peers::vsftpd(false)),
        ("proftpd", || peers::proftpd(false)),
        ("pure-ftpd", peers::pure_ftpd),
    ];
    for (label, start) in peers {
        let Some(p) = start() else {
            eprintln!("{label}: not installed, skipped");
            continue;
        };
        let server = Server {
            label,
            port: p.port,
            user: &p.user,
            home: &p.home,
            cert: &p.cert,
            chown: &|| p.chown_home(),
        };
        exercise(&server, &LATIN1);
    }
}

/// The commands that take the URL's path as text (`put`, `put -`, a glob, `ls --json`,
/// `get -r`, `put -r`) refuse a path that is not UTF-8 (exit 2) and send nothing in its
/// place: before, `put` stored the file under U+FFFD's bytes and said it succeeded.
#[test]
fn text_only_commands_refuse_names_that_are_not_utf8() {
    let (_ours, port, home, cert) = serve();
    let server = Server::ours(port, &home, &cert);
    let local = fresh("text-only");
    std::fs::write(local.join("up.txt"), b"upload").unwrap();
    std::fs::create_dir(local.join("tree")).unwrap();
    std::fs::write(local.join("tree/f.txt"), b"f").unwrap();
    let base = format!("ftp://127.0.0.1:{port}");
    let cases: [Vec<String>; 6] = [
        vec!["put".into(), "up.txt".into(), format!("{base}/new%E9.txt")],
        vec!["put".into(), "up.txt".into(), format!("{base}/d%E9/")],
        vec!["ls".into(), "--json".into(), format!("{base}/d%E9/")],
        vec!["get".into(), format!("{base}/d%E9/*.txt"), "into/".into()],
        vec![
            "get".into(),
            "-r".into(),
            format!("{base}/d%E9/"),
            "mirror".into(),
        ],
        vec![
            "put".into(),
            "-r".into(),
            "tree".into(),
            format!("{base}/d%E9/"),
        ],
    ];
    std::fs::create_dir(local.join("into")).unwrap();
    for args in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = server.ftps(&local, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("not UTF-8"), "{args:?}: {stderr}");
    }
    assert_eq!(
        std::fs::read_dir(&home).unwrap().count(),
        0,
        "nothing made on the server"
    );
    assert!(!local.join("mirror").exists());
    assert_eq!(std::fs::read_dir(local.join("into")).unwrap().count(), 0);
    // `put -` too (standard input is closed here: refused before it is read).
    let out = server.ftps(&local, &["put", "-", &format!("{base}/std%E9.txt")]);
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&local);
}

/// A URL whose path holds CR, LF or NUL is a usage error (exit 2) before anything is sent;
/// a remote file named `-` is saved as `./-`, not written to standard output.
#[test]
fn control_bytes_are_refused_and_a_dash_is_a_file() {
    let (_ours, port, home, cert) = serve();
    let server = Server::ours(port, &home, &cert);
    let local = fresh("dash");
    let base = format!("ftp://127.0.0.1:{port}");
    std::fs::write(home.join("a.txt"), b"keep me").unwrap();
    for bad in ["a%0D%0ADELE%20a.txt", "a%0A", "a%00.txt"] {
        for command in ["get", "cat", "rm"] {
            let out = server.ftps(&local, &[command, &format!("{base}/{bad}")]);
            assert_eq!(out.status.code(), Some(2), "{command} {bad}");
        }
    }
    assert_eq!(std::fs::read(home.join("a.txt")).unwrap(), b"keep me");
    std::fs::write(home.join("-"), b"dash").unwrap();
    let out = server.ftps(&local, &["get", &format!("{base}/-")]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty(), "nothing on standard output");
    assert_eq!(std::fs::read(local.join("-")).unwrap(), b"dash");
    let _ = std::fs::remove_dir_all(&local);
}
