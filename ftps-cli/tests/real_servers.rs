//! The `ftps` binary's client commands against real servers: vsftpd (session reuse
//! required and not, explicit and implicit), ProFTPD (reuse required, explicit and
//! implicit), Pure-FTPd, pyftpdlib, and our own `ftps serve` (explicit and implicit), each
//! on TLS 1.3 and on TLS 1.2 (`--tls-max`). Every server has a certificate made as admins
//! make them, `openssl req -x509` (which marks it CA:TRUE), trusted with `--ca-cert`.
//!
//! The commands: `ls`, `ls -l`, `get` (one file; several in one session into a directory;
//! `-C` resuming a partial local file; into a directory; `--active`; a missing file, which
//! exits 5 and leaves the local side as it was), `put` (one file, several), `cat`, `rm`,
//! `mkdir`, `mv`. Every transfer is compared byte for byte with its source, on the
//! server's disk or the local one, and every command must finish within 5 s (a client
//! waiting on a data connection's TLS shutdown shows as 10 or 30 s). The servers run in
//! parallel threads; every result is collected and one table reports them all.
//!
//! `cargo xtask ci` and `cargo xtask interop` install the peers and set
//! `FTPS_REQUIRE_PEERS`, `FTPS_PEERS_ROOT` and `FTPS_PYTHON`; without them a missing peer
//! is skipped. The C servers log in system users, so they need root.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::peers::{self, HELLO, PASSWORD, Peer, Spec};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const FTPS: &str = env!("CARGO_BIN_EXE_ftps");
/// Every command must finish within this.
const LIMIT: Duration = Duration::from_secs(5);
/// A command still running after this many seconds is killed: long enough to tell a
/// 30 s hang from a 10 s one.
const KILL_AFTER_SECS: u64 = 40;

/// The table's columns, in the order each leg runs them.
const COLUMNS: &[&str] = &[
    "ls", "ls-l", "get", "get*", "get-C", "get>dir", "get-act", "miss-old", "miss-new", "put",
    "put*", "cat", "rm", "mkdir", "mv",
];

/// What the columns mean, printed under the table.
const LEGEND: &str = "ls: NLST of a directory; ls-l: LIST; get: one file to a file name; get*: three files \
in one session into a directory; get-C: resuming a partial local file; get>dir: into an existing directory \
named without a slash; get-act: --active; miss-old: a missing file onto an existing local file (exit 5, \
local file untouched); miss-new: a missing file to a new name (exit 5, no file left); put: one file; \
put*: two files into a directory; cat: a file to stdout; rm, mkdir, mv: checked on the server's disk.\n\
cells: seconds when it passed; SLOW n: right result but n s (limit 5 s); xN: exit code N; DIFF: wrong \
result; T/O: killed after 40 s; n/a: not run";

/// The files the legs transfer.
struct Data {
    /// A few hundred KB, patterned.
    big: Vec<u8>,
    /// A few hundred KB, pseudo-random.
    random: Vec<u8>,
    /// A small text file.
    small: Vec<u8>,
    /// Uploads: a pseudo-random one and a small one.
    up_a: Vec<u8>,
    up_b: Vec<u8>,
}

impl Data {
    fn new() -> Self {
        Data {
            big: (0..300_000u32)
                .map(|i| (i.wrapping_mul(31) ^ (i >> 8) ^ (i >> 16)) as u8)
                .collect(),
            random: pseudo_random(200_003, 0x9e37_79b9_7f4a_7c15),
            small: b"small file\r\nwith a CRLF and a last line without one".to_vec(),
            up_a: pseudo_random(250_001, 0x2545_f491_4f6c_dd1d),
            up_b: b"seventeen bytes!\n".to_vec(),
        }
    }
}

/// xorshift64* bytes.
fn pseudo_random(len: usize, mut state: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// What the binary offers (it gains `--tls-max` and `--pin` in the same issue).
struct Caps {
    tls_max: bool,
    pin: bool,
}

impl Caps {
    fn probe() -> Self {
        let out = Command::new(FTPS)
            .args(["get", "--help"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        Caps {
            tls_max: help.contains("--tls-max"),
            pin: help.contains("--pin"),
        }
    }
}

/// One run of the binary.
struct Ran {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
    took: Duration,
}

/// Runs `ftps ARGS` in `cwd`, killed after [`KILL_AFTER_SECS`].
fn run(cwd: &Path, args: &[String]) -> Ran {
    let start = Instant::now();
    let out = Command::new("timeout")
        .args(["-k", "5", &KILL_AFTER_SECS.to_string(), FTPS])
        .args(args)
        .current_dir(cwd)
        .env("FTPS_PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Ran {
        code: out.status.code(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: start.elapsed(),
    }
}

/// One command's result.
enum Cell {
    /// Right result in time.
    Passed(Duration),
    /// Right result, too slow.
    Slow(Duration, String),
    /// Wrong result: the cell's short text and the details.
    Failed(String, String),
}

impl Cell {
    fn short(&self) -> String {
        match self {
            Cell::Passed(d) => format!("{:.2}", d.as_secs_f64()),
            Cell::Slow(d, _) => format!("SLOW {:.0}", d.as_secs_f64()),
            Cell::Failed(short, _) => short.clone(),
        }
    }

    fn failure(&self) -> Option<String> {
        match self {
            Cell::Passed(_) => None,
            Cell::Slow(d, cmd) => Some(format!(
                "took {:.1} s (limit {} s): {cmd}",
                d.as_secs_f64(),
                LIMIT.as_secs()
            )),
            Cell::Failed(_, detail) => Some(detail.clone()),
        }
    }
}

/// Judges a run: the exit code, then `verify`, then the time.
fn judge(
    args: &[String],
    ran: &Ran,
    expect: i32,
    verify: impl FnOnce(&Ran) -> Result<(), String>,
) -> Cell {
    let cmd = format!("ftps {}", args.join(" "));
    let stderr = tail(&ran.stderr);
    let secs = ran.took.as_secs_f64();
    match ran.code {
        Some(124 | 137) | None => {
            return Cell::Failed(
                "T/O".into(),
                format!("killed after {secs:.0} s: {cmd}\n      stderr: {stderr}"),
            );
        }
        Some(code) if code != expect => {
            return Cell::Failed(
                format!("x{code}"),
                format!(
                    "exit {code}, expected {expect}, after {secs:.1} s: {cmd}\n      stderr: {stderr}"
                ),
            );
        }
        Some(_) => {}
    }
    if let Err(why) = verify(ran) {
        return Cell::Failed(
            "DIFF".into(),
            format!("{why} (exit {expect} after {secs:.1} s): {cmd}\n      stderr: {stderr}"),
        );
    }
    if ran.took > LIMIT {
        Cell::Slow(ran.took, cmd)
    } else {
        Cell::Passed(ran.took)
    }
}

/// The end of a command's stderr, on one line.
fn tail(stderr: &str) -> String {
    let one_line = stderr.trim().replace('\n', " | ");
    let chars: Vec<char> = one_line.chars().collect();
    if chars.len() > 400 {
        format!(
            "...{}",
            chars[chars.len() - 400..].iter().collect::<String>()
        )
    } else {
        one_line
    }
}

/// Whether `path` holds exactly `want`.
fn same(path: &Path, want: &[u8]) -> Result<(), String> {
    match std::fs::read(path) {
        Ok(got) if got == want => Ok(()),
        Ok(got) => Err(format!(
            "{}: {} bytes, expected {}, first difference at byte {}",
            path.display(),
            got.len(),
            want.len(),
            got.iter()
                .zip(want)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(want.len()))
        )),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// The names in `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `ftps serve` on two free ports with an openssl-made certificate, as root.
struct Served {
    child: Child,
    dir: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `ftps serve` (explicit and implicit, active mode allowed) serving `dir/root` as
/// alice; returns it with its ports and certificate.
fn serve() -> (Served, u16, u16, PathBuf) {
    let (dir, cert, key, _) = peers::workdir("ftps-serve");
    std::fs::create_dir_all(dir.join("root")).unwrap();
    let (explicit, implicit) = (peers::free_port(), peers::free_port());
    let child = Command::new(FTPS)
        .current_dir(&dir)
        .arg("serve")
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .args([
            "--explicit",
            &format!("127.0.0.1:{explicit}"),
            "--implicit",
            &format!("127.0.0.1:{implicit}"),
            "--user",
            &format!("alice:{PASSWORD}"),
            "--active",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut served = Served { child, dir };
    let deadline = Instant::now() + Duration::from_secs(30);
    for port in [explicit, implicit] {
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline && served.child.try_wait().unwrap().is_none(),
                "ftps serve did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    (served, explicit, implicit, cert)
}

/// A server to run the commands against.
struct Target {
    /// The table's row label.
    name: &'static str,
    /// `ftp` (explicit) or `ftps` (implicit).
    scheme: &'static str,
    /// `localhost` or `127.0.0.1`, both in the certificate.
    host: &'static str,
    port: u16,
    user: String,
    /// The login directory on disk.
    home: PathBuf,
    /// The server's certificate, for `--ca-cert`.
    cert: PathBuf,
    /// Prefixes the legs' directories, for targets sharing one server.
    prefix: &'static str,
}

/// Keeps a server running while its targets are exercised.
enum Guard {
    Peer(Peer),
    /// Held only to be dropped (which stops it).
    Ours(#[allow(dead_code)] Served),
}

impl Guard {
    fn chown_home(&self) {
        if let Guard::Peer(p) = self {
            p.chown_home();
        }
    }
}

fn peer_target(
    p: Peer,
    name: &'static str,
    implicit: bool,
    host: &'static str,
) -> (Vec<Target>, Guard) {
    let t = Target {
        name,
        scheme: if implicit { "ftps" } else { "ftp" },
        host,
        port: p.port,
        user: p.user.clone(),
        home: p.home.clone(),
        cert: p.cert.clone(),
        prefix: "",
    };
    (vec![t], Guard::Peer(p))
}

/// A server to start: its label, whether its legs may run at the same time, and how to
/// start it.
struct Setup {
    label: &'static str,
    parallel: bool,
    start: fn() -> Option<(Vec<Target>, Guard)>,
}

/// Every server, each started in its own thread.
const SETUPS: &[Setup] = &[
    Setup {
        label: "vsftpd reuse=YES explicit",
        parallel: true,
        start: || {
            let p = peers::vsftpd_spec(Spec::default())?;
            Some(peer_target(
                p,
                "vsftpd reuse=YES explicit",
                false,
                "localhost",
            ))
        },
    },
    Setup {
        label: "vsftpd reuse=YES implicit",
        parallel: true,
        start: || {
            let p = peers::vsftpd_spec(Spec {
                implicit: true,
                ..Spec::default()
            })?;
            Some(peer_target(
                p,
                "vsftpd reuse=YES implicit",
                true,
                "localhost",
            ))
        },
    },
    Setup {
        label: "vsftpd reuse=NO explicit",
        parallel: true,
        start: || {
            let p = peers::vsftpd_spec(Spec {
                reuse: false,
                ..Spec::default()
            })?;
            Some(peer_target(
                p,
                "vsftpd reuse=NO explicit",
                false,
                "127.0.0.1",
            ))
        },
    },
    Setup {
        label: "vsftpd reuse=NO implicit",
        parallel: true,
        start: || {
            let p = peers::vsftpd_spec(Spec {
                implicit: true,
                reuse: false,
                ..Spec::default()
            })?;
            Some(peer_target(
                p,
                "vsftpd reuse=NO implicit",
                true,
                "127.0.0.1",
            ))
        },
    },
    Setup {
        label: "ProFTPD explicit",
        parallel: true,
        start: || {
            let p = peers::proftpd(false)?;
            Some(peer_target(p, "ProFTPD explicit", false, "localhost"))
        },
    },
    Setup {
        label: "ProFTPD implicit",
        parallel: true,
        start: || {
            let p = peers::proftpd(true)?;
            Some(peer_target(p, "ProFTPD implicit", true, "localhost"))
        },
    },
    Setup {
        label: "Pure-FTPd explicit",
        parallel: true,
        start: || {
            let p = peers::pure_ftpd()?;
            Some(peer_target(p, "Pure-FTPd explicit", false, "localhost"))
        },
    },
    // pyftpdlib's event loop, with two sessions at once, now and then leaves an active-mode
    // data connection's TLS handshake unread in its socket (lftp hangs on it too): its
    // legs run one after the other.
    Setup {
        label: "pyftpdlib explicit",
        parallel: false,
        start: || {
            let p = peers::pyftpdlib()?;
            Some(peer_target(p, "pyftpdlib explicit", false, "127.0.0.1"))
        },
    },
    Setup {
        label: "ftps serve",
        parallel: true,
        start: || {
            let (served, explicit, implicit, cert) = serve();
            let home = served.dir.join("root");
            let target = |name, scheme, host, port, prefix| Target {
                name,
                scheme,
                host,
                port,
                user: "alice".into(),
                home: home.clone(),
                cert: cert.clone(),
                prefix,
            };
            Some((
                vec![
                    target("ftps serve explicit", "ftp", "localhost", explicit, "exp-"),
                    target("ftps serve implicit", "ftps", "127.0.0.1", implicit, "imp-"),
                ],
                Guard::Ours(served),
            ))
        },
    },
];

#[derive(Clone, Copy)]
enum Tls {
    V13,
    V12,
}

impl Tls {
    fn label(self) -> &'static str {
        match self {
            Tls::V13 => "1.3",
            Tls::V12 => "1.2",
        }
    }

    fn dir(self) -> &'static str {
        match self {
            Tls::V13 => "t13",
            Tls::V12 => "t12",
        }
    }
}

/// One row of the table.
struct Row {
    server: String,
    tls: &'static str,
    /// One per column, or none when the whole row did not run.
    cells: Vec<(&'static str, Cell)>,
    /// Failures outside the columns.
    notes: Vec<String>,
}

const KEEP: &[u8] = b"a local file that a failed download must not touch\n";
const OLD: &[u8] = b"the file mv renames\n";

/// Puts the files a leg needs on the server's disk and the local one.
fn seed(t: &Target, tls: Tls, data: &Data, local: &Path) {
    let served = t.home.join(format!("{}{}", t.prefix, tls.dir()));
    std::fs::create_dir_all(served.join("updir")).unwrap();
    std::fs::write(served.join("big.bin"), &data.big).unwrap();
    std::fs::write(served.join("rand.bin"), &data.random).unwrap();
    std::fs::write(served.join("small.txt"), &data.small).unwrap();
    std::fs::write(served.join("del.bin"), b"delete me").unwrap();
    std::fs::write(served.join("old.bin"), OLD).unwrap();
    let _ = std::fs::remove_dir_all(local);
    for d in ["src", "many", "intodir", "miss", "miss2"] {
        std::fs::create_dir_all(local.join(d)).unwrap();
    }
    std::fs::write(local.join("src/up-a.bin"), &data.up_a).unwrap();
    std::fs::write(local.join("src/up-b.bin"), &data.up_b).unwrap();
    std::fs::write(local.join("resume.bin"), &data.big[..100_000]).unwrap();
    std::fs::write(local.join("miss/keep.bin"), KEEP).unwrap();
}

/// Runs every command against `t` on `tls`.
fn leg(t: &Target, tls: Tls, caps: &Caps, data: &Data, local: &Path) -> Row {
    let mut row = Row {
        server: t.name.into(),
        tls: tls.label(),
        cells: Vec::new(),
        notes: Vec::new(),
    };
    let mut conn = vec![
        "--user".to_owned(),
        t.user.clone(),
        "--ca-cert".into(),
        t.cert.display().to_string(),
    ];
    if caps.tls_max {
        conn.extend(["--tls-max".into(), tls.label().into()]);
    } else if let Tls::V12 = tls {
        row.notes
            .push("the binary has no --tls-max: TLS 1.2 not run".into());
        return row;
    } else {
        row.notes.push(
            "the binary has no --tls-max: ran without it (the version the server picks)".into(),
        );
    }
    let tag = format!("{}{}", t.prefix, tls.dir());
    let served = t.home.join(&tag);
    let url = |path: &str| format!("{}://{}:{}/{tag}/{path}", t.scheme, t.host, t.port);
    let at = |p: &str| local.join(p).display().to_string();
    let mut cmd = |column: &'static str,
                   sub: &[&str],
                   rest: Vec<String>,
                   expect: i32,
                   verify: &dyn Fn(&Ran) -> Result<(), String>| {
        let args: Vec<String> = sub
            .iter()
            .map(|s| (*s).to_owned())
            .chain(conn.iter().cloned())
            .chain(rest)
            .collect();
        let ran = run(local, &args);
        row.cells.push((column, judge(&args, &ran, expect, verify)));
    };
    let names = ["big.bin", "rand.bin", "small.txt"];

    cmd("ls", &["ls"], vec![url("")], 0, &|r| {
        let out = String::from_utf8_lossy(&r.stdout);
        match names
            .iter()
            .find(|n| !out.lines().any(|l| l.trim_end().ends_with(*n)))
        {
            Some(n) => Err(format!("{n} not listed: {out:?}")),
            None => Ok(()),
        }
    });
    cmd("ls-l", &["ls", "-l"], vec![url("")], 0, &|r| {
        let out = String::from_utf8_lossy(&r.stdout);
        if let Some(n) = names.iter().find(|n| !out.contains(*n)) {
            return Err(format!("{n} not listed: {out:?}"));
        }
        let size = data.big.len().to_string();
        match out.lines().find(|l| l.contains("big.bin")) {
            Some(l) if l.split_whitespace().any(|w| w == size) => Ok(()),
            line => Err(format!("no size {size} on big.bin's line: {line:?}")),
        }
    });
    cmd(
        "get",
        &["get"],
        vec![url("big.bin"), at("one.bin")],
        0,
        &|_| same(&local.join("one.bin"), &data.big),
    );
    cmd(
        "get*",
        &["get"],
        vec![
            url("big.bin"),
            url("rand.bin"),
            url("small.txt"),
            at("many") + "/",
        ],
        0,
        &|_| {
            same(&local.join("many/big.bin"), &data.big)?;
            same(&local.join("many/rand.bin"), &data.random)?;
            same(&local.join("many/small.txt"), &data.small)
        },
    );
    cmd(
        "get-C",
        &["get", "-C"],
        vec![url("big.bin"), at("resume.bin")],
        0,
        &|_| same(&local.join("resume.bin"), &data.big),
    );
    cmd(
        "get>dir",
        &["get"],
        vec![url("rand.bin"), at("intodir")],
        0,
        &|_| same(&local.join("intodir/rand.bin"), &data.random),
    );
    cmd(
        "get-act",
        &["get", "--active"],
        vec![url("rand.bin"), at("active.bin")],
        0,
        &|_| same(&local.join("active.bin"), &data.random),
    );
    cmd(
        "miss-old",
        &["get"],
        vec![url("missing.bin"), at("miss/keep.bin")],
        5,
        &|_| {
            same(&local.join("miss/keep.bin"), KEEP)?;
            match entries(&local.join("miss")) {
                e if e == ["keep.bin"] => Ok(()),
                e => Err(format!("the directory now holds {e:?}")),
            }
        },
    );
    cmd(
        "miss-new",
        &["get"],
        vec![url("missing.bin"), at("miss2/absent.bin")],
        5,
        &|_| match entries(&local.join("miss2")) {
            e if e.is_empty() => Ok(()),
            e => Err(format!("left behind: {e:?}")),
        },
    );
    cmd(
        "put",
        &["put"],
        vec![at("src/up-a.bin"), url("up-one.bin")],
        0,
        &|_| same(&served.join("up-one.bin"), &data.up_a),
    );
    cmd(
        "put*",
        &["put"],
        vec![at("src/up-a.bin"), at("src/up-b.bin"), url("updir/")],
        0,
        &|_| {
            same(&served.join("updir/up-a.bin"), &data.up_a)?;
            same(&served.join("updir/up-b.bin"), &data.up_b)
        },
    );
    cmd("cat", &["cat"], vec![url("rand.bin")], 0, &|r| {
        if r.stdout == data.random {
            Ok(())
        } else {
            Err(format!(
                "stdout: {} bytes, expected {} (or different bytes)",
                r.stdout.len(),
                data.random.len()
            ))
        }
    });
    cmd("rm", &["rm"], vec![url("del.bin")], 0, &|_| {
        if served.join("del.bin").exists() {
            Err("del.bin is still there".into())
        } else {
            Ok(())
        }
    });
    cmd("mkdir", &["mkdir"], vec![url("newdir")], 0, &|_| {
        if served.join("newdir").is_dir() {
            Ok(())
        } else {
            Err("no directory newdir".into())
        }
    });
    cmd(
        "mv",
        &["mv"],
        vec![url("old.bin"), format!("{tag}/new.bin")],
        0,
        &|_| {
            same(&served.join("new.bin"), OLD)?;
            if served.join("old.bin").exists() {
                Err("old.bin is still there".into())
            } else {
                Ok(())
            }
        },
    );
    row
}

/// Prints the table and the failures; returns how many cells and notes failed.
fn report(rows: &[Row], setup_failures: &[String], skipped: &[String]) -> usize {
    let name_width = rows
        .iter()
        .map(|r| r.server.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let widths: Vec<usize> = COLUMNS
        .iter()
        .map(|c| {
            rows.iter()
                .flat_map(|r| r.cells.iter().filter(|(k, _)| k == c))
                .map(|(_, cell)| cell.short().len())
                .chain([c.len()])
                .max()
                .unwrap_or(4)
        })
        .collect();
    let mut table = format!("{:name_width$}  TLS", "server");
    for (c, w) in COLUMNS.iter().zip(&widths) {
        let _ = write!(table, "  {c:>w$}");
    }
    table.push('\n');
    let mut details = String::new();
    let mut failed = 0;
    for row in rows {
        let _ = write!(table, "{:name_width$}  {:>3}", row.server, row.tls);
        for (c, w) in COLUMNS.iter().zip(&widths) {
            let text = row
                .cells
                .iter()
                .find(|(k, _)| k == c)
                .map_or_else(|| "n/a".to_owned(), |(_, cell)| cell.short());
            let _ = write!(table, "  {text:>w$}");
        }
        table.push('\n');
        for (c, cell) in &row.cells {
            if let Some(why) = cell.failure() {
                failed += 1;
                let _ = writeln!(details, "  {} TLS {} {c}: {why}", row.server, row.tls);
            }
        }
        for note in &row.notes {
            failed += 1;
            let _ = writeln!(details, "  {} TLS {}: {note}", row.server, row.tls);
        }
    }
    for f in setup_failures {
        failed += 1;
        let _ = writeln!(details, "  {f}");
    }
    let passed: usize = rows
        .iter()
        .flat_map(|r| &r.cells)
        .filter(|(_, c)| matches!(c, Cell::Passed(_)))
        .count();
    eprintln!("\nftps CLI against real servers\n\n{table}\n{LEGEND}\n");
    for s in skipped {
        eprintln!("skipped (not installed, FTPS_REQUIRE_PEERS unset): {s}");
    }
    eprintln!("{passed} commands passed; {failed} failures");
    if !details.is_empty() {
        eprintln!("\nfailures:\n{details}");
    }
    failed
}

/// The text of a panic.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(no message)".into())
}

/// How many legs run at once: the machine has two cores, and each command's time is
/// asserted, so the legs must not starve each other (20 at once made a 1 s command take 6).
const LEGS_AT_ONCE: usize = 4;

static RUNNING: std::sync::Mutex<usize> = std::sync::Mutex::new(0);
static FREED: std::sync::Condvar = std::sync::Condvar::new();

/// A place among the legs running at once, held while it lives.
struct Permit;

impl Permit {
    fn take() -> Permit {
        let mut running = RUNNING.lock().unwrap();
        while *running >= LEGS_AT_ONCE {
            running = FREED.wait(running).unwrap();
        }
        *running += 1;
        Permit
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        *RUNNING.lock().unwrap() -= 1;
        FREED.notify_one();
    }
}

#[test]
fn every_command_against_every_server() {
    let caps = Caps::probe();
    let data = Data::new();
    let base = std::env::temp_dir().join(format!("ftps-cli-real-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let rows = Mutex::new(Vec::<Row>::new());
    let setup_failures = Mutex::new(Vec::<String>::new());
    let skipped = Mutex::new(Vec::<String>::new());
    let start = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = SETUPS
            .iter()
            .map(|setup| {
                let (caps, data, base, rows, skipped) = (&caps, &data, &base, &rows, &skipped);
                let label = setup.label;
                let handle = s.spawn(move || {
                    let Some((targets, guard)) = (setup.start)() else {
                        skipped.lock().unwrap().push(label.to_owned());
                        return;
                    };
                    let mut legs = Vec::new();
                    for (i, t) in targets.iter().enumerate() {
                        for tls in [Tls::V13, Tls::V12] {
                            let local =
                                base.join(format!("{}-{i}-{}", label.replace(' ', "_"), tls.dir()));
                            seed(t, tls, data, &local);
                            legs.push((t, tls, local));
                        }
                    }
                    guard.chown_home();
                    let record = |t: &Target, tls: Tls, joined: std::thread::Result<Row>| {
                        let row = joined.unwrap_or_else(|p| Row {
                            server: t.name.into(),
                            tls: tls.label(),
                            cells: Vec::new(),
                            notes: vec![format!("the leg panicked: {}", panic_text(&*p))],
                        });
                        rows.lock().unwrap().push(row);
                    };
                    std::thread::scope(|s2| {
                        let mut running = Vec::new();
                        for (t, tls, local) in &legs {
                            let h = s2.spawn(move || {
                                let _permit = Permit::take();
                                leg(t, *tls, caps, data, local)
                            });
                            if setup.parallel {
                                running.push((t, *tls, h));
                            } else {
                                record(t, *tls, h.join());
                            }
                        }
                        for (t, tls, h) in running {
                            record(t, tls, h.join());
                        }
                    });
                    drop(guard);
                });
                (label, handle)
            })
            .collect();
        for (label, h) in handles {
            if let Err(p) = h.join() {
                setup_failures
                    .lock()
                    .unwrap()
                    .push(format!("{label}: {}", panic_text(&*p)));
            }
        }
    });
    let _ = std::fs::remove_dir_all(&base);
    let mut rows = rows.into_inner().unwrap();
    let order = |r: &Row| {
        (
            SETUPS
                .iter()
                .position(|setup| r.server.starts_with(setup.label))
                .unwrap_or(usize::MAX),
            r.server.clone(),
            std::cmp::Reverse(r.tls),
        )
    };
    rows.sort_by_key(order);
    let failed = report(
        &rows,
        &setup_failures.into_inner().unwrap(),
        &skipped.into_inner().unwrap(),
    );
    eprintln!(
        "the whole matrix took {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(failed, 0, "{failed} failures: see the table above");
}

/// The SHA-256 fingerprint of a PEM certificate as openssl prints it (`AB:CD:...`).
fn fingerprint(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    text.trim()
        .split_once('=')
        .map(|(_, fp)| fp.to_owned())
        .unwrap()
}

/// `--pin` trusts vsftpd's own openssl-made certificate by its fingerprint, without
/// `--ca-cert`, as openssl prints it or as bare lower-case hex; a wrong pin exits 3 and
/// names the server's real fingerprint.
#[test]
fn pin_against_vsftpd() {
    let caps = Caps::probe();
    assert!(caps.pin, "the binary has no --pin");
    let Some(p) = peers::vsftpd(false) else {
        return;
    };
    let local = std::env::temp_dir().join(format!("ftps-cli-pin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&local);
    std::fs::create_dir_all(&local).unwrap();
    let colons = fingerprint(&p.cert);
    let bare = colons.replace(':', "").to_lowercase();
    assert_eq!(bare.len(), 64, "{colons}");
    let mut wrong = bare.clone();
    wrong.replace_range(..1, if bare.starts_with('0') { "1" } else { "0" });
    let url = format!("ftp://localhost:{}/", p.port);
    let conn = |pin: &str| {
        vec![
            "--user".to_owned(),
            p.user.clone(),
            "--pin".into(),
            format!("sha256:{pin}"),
        ]
    };
    let mut cells = Vec::new();
    let mut cmd =
        |what: &str, args: Vec<String>, expect, verify: &dyn Fn(&Ran) -> Result<(), String>| {
            let ran = run(&local, &args);
            cells.push((what.to_owned(), judge(&args, &ran, expect, verify)));
        };
    let listed = |r: &Ran| {
        if String::from_utf8_lossy(&r.stdout).contains("hello.txt") {
            Ok(())
        } else {
            Err(format!(
                "hello.txt not listed: {:?}",
                String::from_utf8_lossy(&r.stdout)
            ))
        }
    };
    cmd(
        "ls, pin as openssl prints it",
        [vec!["ls".to_owned()], conn(&colons), vec![url.clone()]].concat(),
        0,
        &listed,
    );
    cmd(
        "ls, pin in bare lower-case hex",
        [vec!["ls".to_owned()], conn(&bare), vec![url.clone()]].concat(),
        0,
        &listed,
    );
    let to = local.join("hello.txt");
    cmd(
        "get, pinned",
        [
            vec!["get".to_owned()],
            conn(&colons),
            vec![format!("{url}hello.txt"), to.display().to_string()],
        ]
        .concat(),
        0,
        &|_| same(&to, HELLO),
    );
    cmd(
        "ls, wrong pin",
        [vec!["ls".to_owned()], conn(&wrong), vec![url.clone()]].concat(),
        3,
        &|r| {
            let normal: String = r.stderr.to_lowercase().replace(':', "");
            if normal.contains(&bare) {
                Ok(())
            } else {
                Err(format!(
                    "stderr does not name the real fingerprint {colons}"
                ))
            }
        },
    );
    let _ = std::fs::remove_dir_all(&local);
    let failures: Vec<String> = cells
        .iter()
        .filter_map(|(what, cell)| cell.failure().map(|why| format!("  {what}: {why}")))
        .collect();
    for (what, cell) in &cells {
        eprintln!("pin, vsftpd: {what}: {}", cell.short());
    }
    assert!(
        failures.is_empty(),
        "--pin against vsftpd:\n{}",
        failures.join("\n")
    );
}

/// `--tls-max 1.2` really limits the client to TLS 1.2 (so the matrix's TLS 1.2 rows are
/// TLS 1.2): a vsftpd whose only TLS 1.2 cipher suite needs an ECDSA key, which its RSA
/// certificate cannot serve, so that it speaks TLS 1.3 only, refuses the client with
/// `--tls-max 1.2` (exit 3) and accepts it with `--tls-max 1.3`.
#[test]
fn tls_max_12_is_tls_12() {
    let caps = Caps::probe();
    assert!(caps.tls_max, "the binary has no --tls-max");
    let Some(p) = peers::vsftpd_spec(Spec {
        extra: "ssl_ciphers=ECDHE-ECDSA-AES128-GCM-SHA256\n",
        ..Spec::default()
    }) else {
        return;
    };
    let local = std::env::temp_dir().join(format!("ftps-cli-tls-max-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&local);
    std::fs::create_dir_all(&local).unwrap();
    let ls = |max: &str| {
        vec![
            "ls".to_owned(),
            "--user".into(),
            p.user.clone(),
            "--ca-cert".into(),
            p.cert.display().to_string(),
            "--tls-max".into(),
            max.into(),
            format!("ftp://localhost:{}/", p.port),
        ]
    };
    let mut cells = Vec::new();
    for (max, expect) in [("1.3", 0), ("1.2", 3)] {
        let args = ls(max);
        let ran = run(&local, &args);
        cells.push((max, judge(&args, &ran, expect, |_| Ok(()))));
    }
    let _ = std::fs::remove_dir_all(&local);
    for (max, cell) in &cells {
        eprintln!("vsftpd TLS 1.3 only, --tls-max {max}: {}", cell.short());
    }
    let failures: Vec<String> = cells
        .iter()
        .filter_map(|(max, cell)| {
            cell.failure()
                .map(|why| format!("  --tls-max {max}: {why}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
