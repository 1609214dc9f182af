//! `ftps-bench`: our servers and clients against vsftpd, Pure-FTPd, pyftpdlib and curl in
//! one run, on the same machine and the same files; prints Markdown tables of medians and
//! ratios and writes them as JSON (`cargo xtask bench`).
//!
//! Cases: PROT P download and upload and PROT C download of one big file by curl from
//! each server; the same download by curl and by our three clients from our tokio server
//! and from vsftpd; many 4 KiB files in one session; logins per second; the memory of
//! idle logged-in sessions. A plain loopback TCP and a rustls loopback probe give the
//! ceiling of the moment. All servers run for the whole bench and every run goes through
//! all of them in turn, so ratios are of medians of interleaved runs. The peers log in system users, so the bench runs as root, with
//! `FTPS_PEERS_ROOT` (ProFTPD and Pure-FTPd extracted by xtask) and `FTPS_PYTHON` (a Python
//! with pyftpdlib).

/// The allocator the `ftps` binary runs on (see ftps-cli's `main.rs`), so our servers and
/// clients here are measured as `ftps serve` and `ftps get` run.
#[cfg(unix)]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod probe;
mod report;
mod serve;
mod servers;
mod work;

use ftps_conformance::peers;
use report::{Goal, Results};
use servers::{Kind, Running, Start};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use work::{Curl, Ours};

type Fail = Box<dyn std::error::Error>;

/// How much to measure.
#[derive(Debug, Clone)]
struct Options {
    /// Size of the big file, bytes.
    size: u64,
    /// Runs of each transfer case.
    runs: usize,
    /// Small files in the small-files case.
    small: usize,
    /// Seconds of each logins run.
    login_secs: u64,
    /// Concurrent login loops.
    login_workers: usize,
    /// Idle sessions held against our tokio server.
    idle: usize,
    /// Idle sessions held against vsftpd and pyftpdlib.
    peer_idle: usize,
    /// Where the JSON goes.
    json: PathBuf,
    /// Only these servers (keys), if set.
    only: Option<Vec<String>>,
}

const SMALL_SIZE: usize = 4096;
const MB: f64 = 1e6;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => serve::main(&args[1..]),
        Some("fetch") => fetch(&args[1..]),
        Some("hold") => hold(&args[1..]),
        _ => options(&args).and_then(|o| bench(&o)),
    };
    if let Err(e) = result {
        eprintln!("ftps-bench: {e}");
        std::process::exit(1);
    }
}

impl Options {
    fn wants(&self, kind: Kind) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|k| k == kind.key()))
    }
}

fn options(args: &[String]) -> Result<Options, Fail> {
    let mut o = Options {
        size: 1 << 30,
        runs: 5,
        small: 1000,
        login_secs: 5,
        login_workers: 8,
        idle: 10_000,
        peer_idle: 500,
        json: PathBuf::from("target/bench/ftps-bench.json"),
        only: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--quick" => {
                o.size = 32 << 20;
                o.runs = 1;
                o.small = 100;
                o.login_secs = 1;
                o.idle = 200;
                o.peer_idle = 50;
            }
            "--size-mib" => o.size = value()?.parse::<u64>()? << 20,
            "--runs" => o.runs = value()?.parse()?,
            "--small" => o.small = value()?.parse()?,
            "--idle" => o.idle = value()?.parse()?,
            "--json" => o.json = PathBuf::from(value()?),
            "--only" => o.only = Some(value()?.split(',').map(str::to_owned).collect()),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(o)
}

/// `ftps-bench hold KIND [--size-mib N]`: starts one server as the bench does (same files,
/// same configuration), prints how to reach it and keeps it until standard input closes:
/// for profiling by hand (`perf record -p`, `perf stat`, a client in a loop).
fn hold(args: &[String]) -> Result<(), Fail> {
    let (key, rest) = args.split_first().ok_or("hold KIND [--size-mib N]")?;
    let kind = Kind::ALL
        .into_iter()
        .find(|k| k.key() == key)
        .ok_or_else(|| format!("no server {key}"))?;
    let o = options(rest)?;
    let files = Files::prepare(&o)?;
    let data = &files.data;
    let server = files.start().start(kind)?;
    let ca = data.join("ca.pem");
    std::fs::write(&ca, &server.ca)?;
    println!(
        "{} on 127.0.0.1:{}, user {} password {}, CA {}, home {}, pids {:?}",
        kind.name(),
        server.port,
        server.user.0,
        server.user.1,
        ca.display(),
        server.home.display(),
        server.pids()
    );
    println!("until standard input closes");
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    Ok(())
}

/// The bench's files (removed when dropped) and what starts servers on them.
struct Files {
    data: PathBuf,
    exe: PathBuf,
    python: Option<String>,
    _cleanup: Cleanup,
}

impl Files {
    /// Writes the files `o` asks for into a new directory under `TMPDIR`.
    fn prepare(o: &Options) -> Result<Self, Fail> {
        let data = std::env::temp_dir().join(format!("ftps-bench-{}", std::process::id()));
        let cleanup = Cleanup(data.clone());
        prepare(&data, o)?;
        Ok(Files {
            data,
            exe: std::env::current_exe()?,
            python: std::env::var("FTPS_PYTHON").ok(),
            _cleanup: cleanup,
        })
    }

    fn start(&self) -> Start<'_> {
        Start {
            exe: &self.exe,
            data: &self.data,
            python: self.python.as_deref(),
        }
    }
}

fn bench(o: &Options) -> Result<(), Fail> {
    let files = Files::prepare(o)?;
    let data = files.data.clone();
    let start = files.start();
    let mut r = Results::default();
    let cert = std::fs::read(data.join("cert.pem"))?;
    let key = std::fs::read(data.join("key.pem"))?;
    // Every server runs for the whole bench, and each run goes through all of them in
    // turn (the probes first): a machine whose speed drifts over minutes drifts for every
    // server alike, and the ratios are of medians of interleaved runs.
    let mut benched = Vec::new();
    for kind in Kind::ALL {
        if !o.wants(kind) {
            continue;
        }
        println!("starting {}", kind.name());
        let server = start.start(kind)?;
        benched.push(Benched::new(kind, server, &data)?);
    }
    // The logins at equal hash cost: our tokio server again, its user's password checked
    // against the very hash vsftpd checks (its user's /etc/shadow entry, as chpasswd wrote
    // it: yescrypt on this Debian, as Pure-FTPd's user's), instead of our Argon2id.
    let shadow = benched
        .iter()
        .find(|b| b.kind == Kind::Vsftpd)
        .and_then(|b| b.server.shadow.clone());
    let hash_kind = shadow
        .as_deref()
        .map_or_else(|| "not read".to_owned(), describe_hash);
    println!("vsftpd's user's hash: {hash_kind}");
    for b in &mut benched {
        if let (Kind::Tokio, Some(hash)) = (b.kind, &shadow) {
            b.crypt = Some(start.ours_with_hash(b.kind, peers::PASSWORD, hash)?);
        }
    }
    for run in 1..=o.runs {
        println!("run {run} of {}: probes", o.runs);
        r.add(
            "loopback",
            "TCP",
            "-",
            "MB/s",
            mbps(o.size, probe::tcp(o.size)?),
        );
        let secs = probe::rustls(o.size, &cert, &key)?;
        r.add("loopback", "rustls", "-", "MB/s", mbps(o.size, secs));
        let secs = probe::file_write(&data.join("big.bin"), &data.join("probe.bin"))?;
        r.add("loopback", "file write", "-", "MB/s", mbps(o.size, secs));
        for b in &benched {
            println!("run {run} of {}: {}", o.runs, b.kind.name());
            b.transfers(&mut r, o, &data)?;
        }
    }
    for run in 1..=o.runs {
        for b in &benched {
            println!(
                "run {run} of {}: {}, small files and logins",
                o.runs,
                b.kind.name()
            );
            b.small_and_logins(&mut r, o)?;
        }
    }
    for b in &benched {
        b.idle(&mut r, o)?;
    }
    drop(benched);

    let goals = goals(&r);
    let mut machine = machine();
    machine["shadow_hash"] = hash_kind.into();
    let text = report(&r, o, &machine, &goals);
    println!("\n{text}");
    if let Some(dir) = o.json.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let options = serde_json::json!({
        "size_bytes": o.size, "runs": o.runs, "small_files": o.small,
        "small_file_bytes": SMALL_SIZE, "login_seconds": o.login_secs,
        "login_workers": o.login_workers, "idle_sessions": o.idle,
        "peer_idle_sessions": o.peer_idle,
    });
    let json = r.json(machine, options, &goals);
    std::fs::write(&o.json, serde_json::to_string_pretty(&json)?)?;
    std::fs::write(o.json.with_extension("md"), text)?;
    println!(
        "written: {} and {}",
        o.json.display(),
        o.json.with_extension("md").display()
    );
    Ok(())
}

const DOWN_P: &str = "PROT P download";
const UP_P: &str = "PROT P upload";
const DOWN_C: &str = "PROT C download";
const SMALL: &str = "4 KiB files in one session";
const LOGINS: &str = "logins";
const LOGINS_CRYPT: &str = "logins, vsftpd's user's hash";
const IDLE: &str = "idle session memory (PSS)";
const DOWN_P_CPU: &str = "PROT P download, client CPU";
const UP_P_CPU: &str = "PROT P upload, client CPU";
const DOWN_P_SERVER: &str = "PROT P download, server CPU";
const UP_P_SERVER: &str = "PROT P upload, server CPU";
const DOWN_C_SERVER: &str = "PROT C download, server CPU";
const CURL: &str = "curl";
const FTPS_CLI: &str = "ftps (CLI)";
const LFTP: &str = "lftp";
const TOKIO_CLIENT: &str = "ours tokio";
const BLOCKING_CLIENT: &str = "ours blocking";
const SMOL_CLIENT: &str = "ours smol";

/// What a crypt(3) hash is, for the report: "yescrypt j9T", "SHA-512-crypt".
fn describe_hash(hash: &str) -> String {
    let mut parts = hash.split('$').skip(1);
    match (parts.next(), parts.next()) {
        (Some("y"), Some(params)) => format!("yescrypt {params}"),
        (Some("6"), _) => "SHA-512-crypt".into(),
        (Some("5"), _) => "SHA-256-crypt".into(),
        (Some(id), _) => format!("${id}$"),
        (None, _) => "none".into(),
    }
}

/// A server under the bench, with what its runs need.
struct Benched {
    kind: Kind,
    server: Running,
    /// Its CA certificate, as a file for curl and the others.
    ca: PathBuf,
    /// Whether the command-line clients (their CPU too) are measured against it.
    tools: bool,
    /// The command-line clients besides curl: the `ftps` binary (FTPS_CLI, set by xtask)
    /// and lftp, against our tokio server and vsftpd.
    others: Vec<(work::Tool, &'static str)>,
    /// Our tokio server again, its user's hash vsftpd's user's (the logins at equal hash
    /// cost).
    crypt: Option<Running>,
}

impl Benched {
    /// Ready to measure: its CA written, one untimed download made (the first transfer
    /// after a server starts ran at half speed or less here, whichever server it was).
    fn new(kind: Kind, server: Running, data: &Path) -> Result<Self, Fail> {
        let ca = data.join(format!("ca-{}.pem", kind.key()));
        std::fs::write(&ca, &server.ca)?;
        let _ = work::curl(&server, &ca, Curl::Download, data);
        let tools = matches!(kind, Kind::Tokio | Kind::Vsftpd);
        let mut others = Vec::new();
        if tools {
            if let Some(exe) = std::env::var_os("FTPS_CLI") {
                others.push((work::Tool::Ftps(exe.into()), FTPS_CLI));
            }
            if ftps_conformance::peers::installed("lftp") {
                others.push((work::Tool::Lftp, LFTP));
            }
        }
        Ok(Self {
            kind,
            server,
            ca,
            tools,
            others,
            crypt: None,
        })
    }

    /// One run of the big-file transfers: curl's three cases, the other command-line
    /// clients', and a download by each of our clients (the same client for every
    /// server).
    fn transfers(&self, r: &mut Results, o: &Options, data: &Path) -> Result<(), Fail> {
        let (s, ca) = (&self.server, &self.ca);
        for (case, what) in [
            (DOWN_P, Curl::Download),
            (UP_P, Curl::Upload),
            (DOWN_C, Curl::DownloadClear),
        ] {
            self.record(r, o, case, CURL, work::curl_took(s, ca, what, data))?;
        }
        for (tool, label) in &self.others {
            for (case, what) in [(DOWN_P, Curl::Download), (UP_P, Curl::Upload)] {
                self.record(r, o, case, label, work::tool(s, ca, tool, what, data))?;
            }
        }
        for (client, label) in [
            (Ours::Tokio, TOKIO_CLIENT),
            (Ours::Blocking, BLOCKING_CLIENT),
            (Ours::Smol, SMOL_CLIENT),
        ] {
            self.record(r, o, DOWN_P, label, work::download(s, client, o.size))?;
        }
        Ok(())
    }

    /// A transfer's MB/s, and its CPU per GiB: the server's always, the client's for
    /// the command-line clients.
    fn record(
        &self,
        r: &mut Results,
        o: &Options,
        case: &'static str,
        client: &'static str,
        took: Result<work::Took, Fail>,
    ) -> Result<(), Fail> {
        let kind = self.kind;
        let gib = o.size as f64 / f64::from(1u32 << 30);
        if let Ok(t) = &took {
            let client_cpu = match case {
                DOWN_P => Some(DOWN_P_CPU),
                UP_P => Some(UP_P_CPU),
                _ => None,
            };
            if let (true, Some(cpu_case)) = (self.tools, client_cpu) {
                r.add(cpu_case, kind.name(), client, "s/GiB", t.cpu / gib);
            }
            let server_cpu = match case {
                DOWN_P => DOWN_P_SERVER,
                UP_P => UP_P_SERVER,
                _ => DOWN_C_SERVER,
            };
            r.add(server_cpu, kind.name(), client, "s/GiB", t.server / gib);
        }
        r.attempt(
            kind,
            case,
            client,
            "MB/s",
            took.map(|t| mbps(o.size, t.secs)),
        )
    }

    /// One run of the small files and the logins (not against pyftpdlib, whose rates
    /// mean little).
    fn small_and_logins(&self, r: &mut Results, o: &Options) -> Result<(), Fail> {
        if self.kind == Kind::Pyftpdlib {
            return Ok(());
        }
        let s = &self.server;
        let rate = work::small_files(s, o.small, SMALL_SIZE);
        r.attempt(self.kind, SMALL, TOKIO_CLIENT, "files/s", rate)?;
        let time = Duration::from_secs(o.login_secs);
        let rate = work::logins(s, o.login_workers, time);
        r.attempt(self.kind, LOGINS, TOKIO_CLIENT, "logins/s", rate)?;
        if let Some(crypt) = &self.crypt {
            let rate = work::logins(crypt, o.login_workers, time);
            r.attempt(self.kind, LOGINS_CRYPT, TOKIO_CLIENT, "logins/s", rate)?;
        }
        Ok(())
    }

    /// The memory of idle sessions, against our tokio server, vsftpd and pyftpdlib.
    fn idle(&self, r: &mut Results, o: &Options) -> Result<(), Fail> {
        let n = match self.kind {
            Kind::Tokio => o.idle,
            Kind::Vsftpd | Kind::Pyftpdlib => o.peer_idle,
            _ => return Ok(()),
        };
        println!("{}: {n} idle sessions", self.kind.name());
        let kib = work::idle_sessions(&self.server, n);
        r.attempt(self.kind, IDLE, TOKIO_CLIENT, "KiB/session", kib)
    }
}

/// `ftps-bench fetch CLIENT PORT CA USER PASSWORD SIZE|small:N`: one download of big.bin
/// (SIZE bytes) by one of our clients from a server on 127.0.0.1, or N small files
/// (`small/f00000`...) in one session: to profile one case alone.
fn fetch(args: &[String]) -> Result<(), Fail> {
    let [client, port, ca, user, password, size] = args else {
        return Err("fetch tokio|blocking|smol PORT CA USER PASSWORD SIZE".into());
    };
    let client = match client.as_str() {
        "tokio" => Ours::Tokio,
        "blocking" => Ours::Blocking,
        "smol" => Ours::Smol,
        other => return Err(format!("unknown client {other}").into()),
    };
    let ca = std::fs::read(ca)?;
    let mut o =
        ftps_backend::client::ClientOptions::new("localhost", port.parse()?, user, password)?;
    o.tls = Some(std::sync::Arc::new(
        ftps_proto::tls::client_config_from_pem(&ca, ftps_proto::tls::BOTH)?,
    ));
    // `small:N`: the first N small files, in one session (the tokio client).
    if let Some(n) = size.strip_prefix("small:") {
        let rate = work::small_files_with(o, n.parse()?, SMALL_SIZE)?;
        println!("{rate:.0} files/s");
        return Ok(());
    }
    let size: u64 = size.parse()?;
    let took = work::download_with(o, client, size)?;
    println!(
        "{:.0} MB/s; CPU: client {:.2} s, machine less client {:.2} s",
        mbps(size, took.secs),
        took.cpu,
        took.server
    );
    Ok(())
}

fn mbps(size: u64, secs: f64) -> f64 {
    size as f64 / secs / MB
}

/// A goal: `ratio` against `target` (at least, or at most).
fn goal(what: String, ratio: Option<f64>, target: f64, at_most: bool) -> Goal {
    Goal {
        what,
        ratio,
        target,
        at_most,
    }
}

fn goals(r: &Results) -> Vec<Goal> {
    let ours = Kind::Tokio.name();
    let (vsftpd, pure) = (Kind::Vsftpd.name(), Kind::PureFtpd.name());
    let best_peer = |case: &str| {
        [vsftpd, pure]
            .iter()
            .filter_map(|p| r.median(case, p, CURL))
            .reduce(f64::max)
    };
    let over = |case: &str, reference: Option<f64>| Some(r.median(case, ours, CURL)? / reference?);
    let tcp = r.median("loopback", "TCP", "-");
    let mut goals = Vec::new();
    // Issue 7's, with curl as the client.
    for case in [DOWN_P, UP_P] {
        goals.push(goal(
            format!("(7) {case}: ours tokio / fastest peer server (curl)"),
            over(case, best_peer(case)),
            1.5,
            false,
        ));
        goals.push(goal(
            format!("(7) {case}: ours tokio / plain TCP loopback"),
            over(case, tcp),
            0.8,
            false,
        ));
    }
    goals.push(goal(
        format!("(7, 18) {DOWN_C}: ours tokio / vsftpd (curl)"),
        over(DOWN_C, r.median(DOWN_C, vsftpd, CURL)),
        1.0,
        false,
    ));
    // Issue 17's: our clients against curl.
    for server in [ours, vsftpd] {
        goals.push(goal(
            format!("(17) {DOWN_P} from {server}: our tokio client / curl"),
            r.ratio((DOWN_P, server, TOKIO_CLIENT), (DOWN_P, server, CURL)),
            1.2,
            false,
        ));
        goals.push(goal(
            format!("(17) {DOWN_P} from {server}: the ftps binary / curl"),
            r.ratio((DOWN_P, server, FTPS_CLI), (DOWN_P, server, CURL)),
            1.2,
            false,
        ));
        goals.push(goal(
            format!("(17) {DOWN_P_CPU} from {server}: the ftps binary / curl"),
            r.ratio((DOWN_P_CPU, server, FTPS_CLI), (DOWN_P_CPU, server, CURL)),
            1.0,
            true,
        ));
    }
    // Issue 18's: the server's CPU, the same client for every server, our runtimes alike.
    for case in [DOWN_P_SERVER, UP_P_SERVER] {
        for runtime in [Kind::Tokio, Kind::Blocking, Kind::Smol] {
            goals.push(goal(
                format!("(18) {case}, s/GiB (curl): {} / Pure-FTPd", runtime.name()),
                r.ratio((case, runtime.name(), CURL), (case, pure, CURL)),
                0.65,
                true,
            ));
        }
    }
    goals.push(goal(
        format!("(18) {DOWN_P} with our tokio client: from ours tokio / from Pure-FTPd"),
        r.ratio((DOWN_P, ours, TOKIO_CLIENT), (DOWN_P, pure, TOKIO_CLIENT)),
        1.3,
        false,
    ));
    goals.push(goal(
        format!("(18) {DOWN_P}, our tokio client from ours tokio / the rustls loopback probe"),
        r.ratio((DOWN_P, ours, TOKIO_CLIENT), ("loopback", "rustls", "-")),
        0.8,
        false,
    ));
    for (peer, target) in [(vsftpd, 2.0), (pure, 1.5)] {
        goals.push(goal(
            format!("(18) {SMALL}: ours tokio / {peer}"),
            r.ratio((SMALL, ours, TOKIO_CLIENT), (SMALL, peer, TOKIO_CLIENT)),
            target,
            false,
        ));
    }
    // Argon2id (m=19 MiB, t=2, ~16 ms here) against vsftpd's yescrypt j9T (16 MiB, ~18 ms
    // in libxcrypt): memory-hard hashes of about the same cost. The row of ours checking
    // vsftpd's very hash (the yescrypt crate, slower than libxcrypt) is beside it.
    goals.push(goal(
        format!("(18) {LOGINS}: ours tokio / vsftpd"),
        r.ratio((LOGINS, ours, TOKIO_CLIENT), (LOGINS, vsftpd, TOKIO_CLIENT)),
        3.0,
        false,
    ));
    for (case, client) in [
        (DOWN_P, CURL),
        (UP_P, CURL),
        (DOWN_C, CURL),
        (DOWN_P, TOKIO_CLIENT),
        (SMALL, TOKIO_CLIENT),
        (LOGINS, TOKIO_CLIENT),
    ] {
        let best = [Kind::Blocking, Kind::Smol]
            .iter()
            .filter_map(|k| r.median(case, k.name(), client))
            .reduce(f64::max);
        goals.push(goal(
            format!("(18) {case} ({client}): ours tokio / the faster of ours blocking and smol"),
            best.and_then(|b| Some(r.median(case, ours, client)? / b)),
            0.9,
            false,
        ));
    }
    goals.push(goal(
        format!("(18) {IDLE}: ours tokio, KiB per session"),
        r.median(IDLE, ours, TOKIO_CLIENT),
        10.0,
        true,
    ));
    goals
}

fn report(r: &Results, o: &Options, machine: &serde_json::Value, goals: &[Goal]) -> String {
    let servers = [
        Kind::Tokio.name(),
        Kind::Blocking.name(),
        Kind::Smol.name(),
        Kind::Vsftpd.name(),
        Kind::PureFtpd.name(),
        Kind::Pyftpdlib.name(),
    ];
    let peers = [
        Kind::Vsftpd.name(),
        Kind::PureFtpd.name(),
        Kind::Pyftpdlib.name(),
    ];
    let mut t = format!(
        "ftps bench, {date}: {cpu}, {cores} cores, Linux {kernel}; {curl}; vsftpd {vsftpd}, \
         Pure-FTPd {pure}; files in {dir}; file {size} MiB, {runs} run(s), medians; {small} x 4 KiB files; \
         logins {workers} at once for {secs} s (ours' user: Argon2id, m=19 MiB, t=2; vsftpd's \
         user, and ours' in the row of its hash: {crypt}); {idle} idle sessions on ours, {peer_idle} on the \
         peers.\n\nCeiling of the moment: plain TCP loopback {tcp} MB/s, rustls loopback {tls} \
         MB/s; writing a new file of the same size beside the servers' files {write} MB/s.\n\n",
        date = machine["date"].as_str().unwrap_or("?"),
        dir = std::env::temp_dir().display(),
        cpu = machine["cpu"].as_str().unwrap_or("?"),
        cores = machine["cores"],
        kernel = machine["kernel"].as_str().unwrap_or("?"),
        curl = machine["curl"].as_str().unwrap_or("?"),
        vsftpd = machine["vsftpd"].as_str().unwrap_or("?"),
        pure = machine["pure_ftpd"].as_str().unwrap_or("?"),
        size = o.size >> 20,
        runs = o.runs,
        small = o.small,
        workers = o.login_workers,
        secs = o.login_secs,
        crypt = machine["shadow_hash"].as_str().unwrap_or("?"),
        idle = o.idle,
        peer_idle = o.peer_idle,
        tcp = fmt(r.median("loopback", "TCP", "-")),
        tls = fmt(r.median("loopback", "rustls", "-")),
        write = fmt(r.median("loopback", "file write", "-")),
    );
    // Every server with the same client per row: curl, then ours; the server's CPU per
    // GiB (the machine's less the client's) under each transfer.
    t.push_str(&r.server_table(
        &[
            (DOWN_P, CURL),
            (DOWN_P_SERVER, CURL),
            (UP_P, CURL),
            (UP_P_SERVER, CURL),
            (DOWN_C, CURL),
            (DOWN_C_SERVER, CURL),
            (DOWN_P, TOKIO_CLIENT),
            (DOWN_P_SERVER, TOKIO_CLIENT),
            (SMALL, TOKIO_CLIENT),
            (LOGINS, TOKIO_CLIENT),
            (LOGINS_CRYPT, TOKIO_CLIENT),
            (IDLE, TOKIO_CLIENT),
        ],
        Kind::Tokio.name(),
        &servers,
        &peers,
    ));
    t.push('\n');
    t.push_str(&r.client_table(
        DOWN_P,
        &servers[..5],
        &[CURL, TOKIO_CLIENT, BLOCKING_CLIENT, SMOL_CLIENT],
        TOKIO_CLIENT,
        CURL,
    ));
    // The command-line clients as users run them: throughput, and the client's own CPU.
    for case in [DOWN_P, UP_P, DOWN_P_CPU, UP_P_CPU] {
        t.push('\n');
        t.push_str(&r.client_table(
            case,
            &[Kind::Tokio.name(), Kind::Vsftpd.name()],
            &[CURL, FTPS_CLI, LFTP],
            FTPS_CLI,
            CURL,
        ));
    }
    t.push_str("\nGoals (issues 7, 17 and 18):\n\n");
    t.push_str(&Results::goals_text(goals));
    if !r.failures.is_empty() {
        t.push_str("\nPeer failures (not counted):\n\n");
        for f in &r.failures {
            t.push_str(&format!("- {f}\n"));
        }
    }
    t
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.0}"))
}

/// The machine and the peers' versions, for the report.
fn machine() -> serde_json::Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let first_line = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .map(str::to_owned)
            })
            .unwrap_or_default()
    };
    let curl = first_line("curl", &["--version"]);
    let curl = curl
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let vsftpd = first_line("dpkg-query", &["-W", "-f", "${Version}", "vsftpd"]);
    let pure = pure_ftpd_version();
    let date = first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    serde_json::json!({
        "date": date, "cpu": cpu, "cores": cores, "kernel": kernel, "curl": curl,
        "vsftpd": vsftpd, "pure_ftpd": pure,
    })
}

/// Pure-FTPd's version from the package xtask extracted (`pure-ftpd_VERSION_arch.deb`).
fn pure_ftpd_version() -> String {
    let Some(root) = std::env::var_os("FTPS_PEERS_ROOT") else {
        return String::new();
    };
    let debs = PathBuf::from(root).with_file_name("debs");
    std::fs::read_dir(debs)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .find_map(|n| {
            n.strip_prefix("pure-ftpd_")
                .and_then(|v| v.split('_').next())
                .map(|v| v.replace("%3a", ":"))
        })
        .unwrap_or_default()
}

/// Writes the big file (pseudo-random bytes, so nothing compresses it), the small files
/// and a certificate for localhost and 127.0.0.1.
fn prepare(data: &Path, o: &Options) -> Result<(), Fail> {
    let _ = std::fs::remove_dir_all(data);
    std::fs::create_dir_all(data.join("small"))?;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut file = std::io::BufWriter::new(std::fs::File::create(data.join("big.bin"))?);
    let mut block = vec![0u8; 1 << 20];
    let mut left = o.size;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            word.copy_from_slice(&next().to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n])?;
        left -= n as u64;
    }
    file.flush()?;
    for i in 0..o.small {
        let mut small = vec![0u8; SMALL_SIZE];
        for word in small.chunks_exact_mut(8) {
            word.copy_from_slice(&next().to_le_bytes());
        }
        std::fs::write(data.join("small").join(work::small_name(i)), small)?;
    }
    // Readable by the peers' user (it reads through hard links).
    let mode = |p: &Path, m: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m))
    };
    mode(data, 0o755)?;
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?;
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
    let cert = params.self_signed(&key)?;
    std::fs::write(data.join("cert.pem"), cert.pem())?;
    std::fs::write(data.join("key.pem"), key.serialize_pem())?;
    Ok(())
}

/// Removes the bench's directory when dropped.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
