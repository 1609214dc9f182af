//! Issue 17: `ftps put -r` and `ftps get -r` (lftp's `mirror -R` and `mirror`) round-trip
//! a tree of 1,000 files in 50 directories (mixed sizes, empty ones among them, a name
//! with spaces, a non-ASCII one) with `-j 4` against our server, vsftpd, ProFTPD and
//! Pure-FTPd: the server's copy and the downloaded copy are compared with the source
//! byte for byte, and a second run of each moves nothing. `--delete` then removes a file
//! the source no longer has, on both sides. (The names a listing may give are checked in
//! the mirror module's unit tests.)

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

mod support;
use support::{free_port, start};

use ftps_conformance::peers::{self, PASSWORD, Peer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Instant;

const FTPS: &str = env!("CARGO_BIN_EXE_ftps");
const OUR_PASSWORD: &str = "Mirror-Pass-3";

/// Where to mirror to: a URL's parts and the directory the server serves.
struct Target {
    name: &'static str,
    host: &'static str,
    port: u16,
    user: String,
    password: String,
    cert: PathBuf,
    home: PathBuf,
    _guard: Guard,
}

enum Guard {
    Peer(#[allow(dead_code)] Peer),
    Ours(Child, PathBuf),
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Guard::Ours(child, dir) = self {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn ours() -> Target {
    let dir = std::env::temp_dir().join(format!("ftps-mirror-ours-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("ftp-root")).unwrap();
    let port = free_port();
    let user = format!("alice:{OUR_PASSWORD}");
    let explicit = format!("127.0.0.1:{port}");
    let child = start(
        &dir,
        &["--no-implicit", "--user", &user, "--explicit", &explicit],
        &[],
    );
    Target {
        name: "ours",
        host: "127.0.0.1",
        port,
        user: "alice".into(),
        password: OUR_PASSWORD.into(),
        cert: dir.join(".ftps/cert.pem"),
        home: dir.join("ftp-root"),
        _guard: Guard::Ours(child, dir),
    }
}

fn peer(name: &'static str, p: Peer) -> Target {
    Target {
        name,
        host: "localhost",
        port: p.port,
        user: p.user.clone(),
        password: PASSWORD.into(),
        cert: p.cert.clone(),
        home: p.home.clone(),
        _guard: Guard::Peer(p),
    }
}

impl Target {
    fn url(&self, path: &str) -> String {
        format!("ftp://{}:{}/{path}", self.host, self.port)
    }

    /// `ftps ARGS` against this server, within 300 s.
    fn ftps(&self, args: &[&str]) -> Output {
        let out = Command::new("timeout")
            .arg("300")
            .arg(FTPS)
            .args(args)
            .arg("--ca-cert")
            .arg(&self.cert)
            .args(["--user", &self.user])
            .env("FTPS_PASSWORD", &self.password)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        if !out.status.success() {
            eprintln!(
                "{}: ftps {args:?} -> {}\n{}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        out
    }
}

/// The source tree: 1,000 files in 50 directories (some nested), sizes from 0 to about
/// 1 MB and one of 3 MiB + 12,345 bytes, one name with spaces, one non-ASCII.
fn make_tree(root: &Path) {
    let _ = std::fs::remove_dir_all(root);
    let mut n = 0u32;
    for d in 0..50u32 {
        let dir = match d {
            0..=39 => root.join(format!("d{d:02}")),
            _ => root
                .join(format!("d{:02}", d - 40))
                .join(format!("sub {d}")),
        };
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..20u32 {
            let name = match (d, f) {
                (3, 0) => "a file with spaces.txt".to_owned(),
                (4, 0) => "naïve-日本語.txt".to_owned(),
                _ => format!("f{f:02}.bin"),
            };
            let size = match n % 50 {
                0 => 0,
                // d00/f01.bin spans several of the downloader's 1 MiB batches.
                1 if n == 1 => (3 << 20) + 12_345,
                1 => 1_000_000 + n as usize,
                k => (k as usize * 997 + n as usize * 13) % 40_000,
            };
            let bytes: Vec<u8> = (0..size)
                .map(|i| (i as u32).wrapping_mul(2_654_435_761).wrapping_add(n) as u8)
                .collect();
            std::fs::write(dir.join(name), bytes).unwrap();
            n += 1;
        }
    }
    assert_eq!(n, 1000);
}

/// Every regular file below `root`, by relative path, with its bytes.
fn read_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                let rel = e
                    .path()
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

/// The "N moved" of a mirror's summary line.
fn moved(out: &Output) -> Option<usize> {
    let text = String::from_utf8_lossy(&out.stderr);
    let line = text.lines().find(|l| l.contains(" moved, "))?;
    line.split(": ").nth(2)?.split(' ').next()?.parse().ok()
}

/// One server: put -r, compare, get -r, compare, both again (nothing moved), --delete.
fn round_trip(t: &Target, source: &Path, work: &Path) -> Result<String, String> {
    let started = Instant::now();
    let url = t.url("tree/");
    let src = source.to_str().unwrap();
    let want = read_tree(source);
    let put = t.ftps(&["put", "-r", "-j", "4", src, &url]);
    if !put.status.success() {
        return Err(format!("put -r exit {:?}", put.status.code()));
    }
    if moved(&put) != Some(1000) {
        return Err(format!("put -r moved {:?}", moved(&put)));
    }
    let served = read_tree(&t.home.join("tree"));
    if served != want {
        let missing = want.keys().filter(|k| !served.contains_key(*k)).count();
        return Err(format!("the server's tree differs ({missing} missing)"));
    }
    let back = work.join(format!("back-{}", t.name));
    let _ = std::fs::remove_dir_all(&back);
    let get = t.ftps(&["get", "-r", "-j", "4", &url, back.to_str().unwrap()]);
    if !get.status.success() || moved(&get) != Some(1000) {
        return Err(format!(
            "get -r exit {:?}, moved {:?}",
            get.status.code(),
            moved(&get)
        ));
    }
    if read_tree(&back) != want {
        return Err("the downloaded tree differs".into());
    }
    // The same bytes through standard output, across batch boundaries.
    let piped = t.ftps(&["get", &t.url("tree/d00/f01.bin"), "-"]);
    if !piped.status.success() || piped.stdout != want["d00/f01.bin"] {
        return Err(format!(
            "get to - exit {:?}, {} bytes",
            piped.status.code(),
            piped.stdout.len()
        ));
    }
    let again = t.ftps(&["put", "-r", "-j", "4", src, &url]);
    if !again.status.success() || moved(&again) != Some(0) {
        return Err(format!("put -r again moved {:?}", moved(&again)));
    }
    let again = t.ftps(&["get", "-r", "-j", "4", &url, back.to_str().unwrap()]);
    if !again.status.success() || moved(&again) != Some(0) {
        return Err(format!("get -r again moved {:?}", moved(&again)));
    }
    // A name that is not UTF-8 on a peer's disk (they list bytes as they are): the command
    // line cannot name it, so the mirror skips it with a warning and copies the rest.
    if t.name != "ours" {
        use std::os::unix::ffi::OsStrExt;
        let latin1 = t
            .home
            .join("tree/d02")
            .join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt"));
        std::fs::write(&latin1, b"x").unwrap();
        let again = t.ftps(&["get", "-r", &url, back.to_str().unwrap()]);
        std::fs::remove_file(&latin1).unwrap();
        let said = String::from_utf8_lossy(&again.stderr);
        if !again.status.success()
            || moved(&again) != Some(0)
            || !(said.contains("d02: 1 name(s) that are not UTF-8 skipped")
                && said.contains("caf\\xE9.txt"))
        {
            return Err(format!("get -r with a Latin-1 name: {said}"));
        }
    }
    // The other client commands that list or quote, against the same server: ls --json,
    // a remote glob, quote.
    let listed = t.ftps(&["ls", "--json", &t.url("tree/d03/")]);
    let entries: serde_json::Value =
        serde_json::from_slice(&listed.stdout).map_err(|e| format!("ls --json: {e}"))?;
    let spaced = entries
        .as_array()
        .and_then(|a| a.iter().find(|e| e["name"] == "a file with spaces.txt"))
        .ok_or("ls --json: no 'a file with spaces.txt'")?;
    let size = want["d03/a file with spaces.txt"].len();
    if spaced["type"] != "file" || spaced["size"] != size {
        return Err(format!("ls --json: {spaced}"));
    }
    let globbed = work.join(format!("glob-{}", t.name));
    let _ = std::fs::remove_dir_all(&globbed);
    std::fs::create_dir_all(&globbed).unwrap();
    let glob = t.ftps(&[
        "get",
        &t.url("tree/d04/f1*.bin"),
        &format!("{}/", globbed.display()),
    ]);
    let got = read_tree(&globbed);
    let expected: BTreeMap<String, Vec<u8>> = want
        .iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("d04/")?;
            (name.starts_with("f1") && !name.contains('/')).then(|| (name.to_owned(), v.clone()))
        })
        .collect();
    if !glob.status.success() || got != expected || expected.len() != 10 {
        return Err(format!(
            "get glob: {} files, {} wanted",
            got.len(),
            expected.len()
        ));
    }
    let quoted = t.ftps(&["quote", &t.url("tree/d03/"), "MDTM f01.bin", "NOOP"]);
    let said = String::from_utf8_lossy(&quoted.stdout).into_owned();
    if !quoted.status.success() || !said.contains("213 ") || !said.contains("200") {
        return Err(format!("quote: {said}"));
    }

    // --delete: a file gone from the source goes from the server, then from the copy.
    let gone = source.join("d05").join("f07.bin");
    let kept = std::fs::read(&gone).unwrap();
    std::fs::remove_file(&gone).unwrap();
    let put = t.ftps(&["put", "-r", "--delete", src, &url]);
    std::fs::write(&gone, kept).unwrap();
    if !put.status.success() || t.home.join("tree/d05/f07.bin").exists() {
        return Err("put -r --delete left the file".into());
    }
    let get = t.ftps(&["get", "-r", "--delete", &url, back.to_str().unwrap()]);
    if !get.status.success() || back.join("d05/f07.bin").exists() {
        return Err("get -r --delete left the file".into());
    }
    let _ = std::fs::remove_dir_all(&back);
    Ok(format!("{:.1} s", started.elapsed().as_secs_f64()))
}

#[test]
fn mirrors_round_trip_a_tree_with_every_server() {
    let work = std::env::temp_dir().join(format!("ftps-mirror-{}", std::process::id()));
    let source = work.join("source");
    make_tree(&source);
    let mut targets = vec![ours()];
    let required = peers::required();
    if let Some(p) = peers::vsftpd(false) {
        targets.push(peer("vsftpd", p));
    }
    if let Some(p) = peers::proftpd(false) {
        targets.push(peer("ProFTPD", p));
    }
    if let Some(p) = peers::pure_ftpd() {
        targets.push(peer("Pure-FTPd", p));
    }
    assert!(
        !required || targets.len() == 4,
        "peers are required and some did not start"
    );
    let mut report = Vec::new();
    let mut failed = false;
    for t in &targets {
        let result = round_trip(t, &source, &work);
        failed |= result.is_err();
        report.push(format!("{}: {result:?}", t.name));
    }
    eprintln!("mirror round trips:\n{}", report.join("\n"));
    let _ = std::fs::remove_dir_all(&work);
    assert!(!failed, "{}", report.join("\n"));
}
