//! The work measured: transfers by curl and by our three clients, many small files in one
//! session, logins, and idle sessions' memory.

use crate::servers::Running;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

type Fail = Box<dyn std::error::Error>;

/// A curl transfer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Curl {
    /// RETR big.bin, PROT P.
    Download,
    /// STOR up.bin from big.bin, PROT P.
    Upload,
    /// RETR big.bin, PROT C (only the control connection protected).
    DownloadClear,
}

/// Runs curl once; returns the seconds the whole command took (connect, login, transfer).
pub(crate) fn curl(server: &Running, ca: &Path, what: Curl, data: &Path) -> Result<f64, Fail> {
    curl_took(server, ca, what, data).map(|t| t.secs)
}

/// [`curl`], with its CPU seconds.
pub(crate) fn curl_took(
    server: &Running,
    ca: &Path,
    what: Curl,
    data: &Path,
) -> Result<Took, Fail> {
    let port = server.port;
    let size = std::fs::metadata(data.join("big.bin"))?.len();
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--fail", "--resolve"])
        .arg(format!("localhost:{port}:127.0.0.1"))
        .arg("--cacert")
        .arg(ca)
        .arg("--user")
        .arg(format!("{}:{}", server.user.0, server.user.1));
    let (tls, file, written) = match what {
        Curl::Download => ("--ssl-reqd", "big.bin", "%{size_download}"),
        Curl::DownloadClear => ("--ftp-ssl-control", "big.bin", "%{size_download}"),
        Curl::Upload => ("--ssl-reqd", "up.bin", "%{size_upload}"),
    };
    cmd.arg(tls).args(["-w", written]);
    match what {
        Curl::Upload => cmd.arg("-T").arg(data.join("big.bin")),
        _ => cmd.args(["-o", "/dev/null"]),
    };
    cmd.arg(format!("ftp://localhost:{port}/{file}"));
    if let Curl::Upload = what {
        // Every server gets a new file (its pages just freed by the last run's, alike).
        match std::fs::remove_file(server.home.join("up.bin")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    let (took, out) = timed(cmd, &format!("curl {what:?}"))?;
    let moved: u64 = String::from_utf8_lossy(&out.stdout).trim().parse()?;
    if moved != size {
        return Err(format!("curl {what:?} moved {moved} bytes, not {size}").into());
    }
    if let Curl::Upload = what {
        let stored = std::fs::metadata(server.home.join("up.bin"))?.len();
        if stored != size {
            return Err(format!("the server stored {stored} bytes, not {size}").into());
        }
        // Every server runs all along: one uploaded GiB at a time in memory, not six.
        std::fs::remove_file(server.home.join("up.bin"))?;
    }
    Ok(took)
}

/// A command-line client, as users run it.
#[derive(Debug, Clone)]
pub(crate) enum Tool {
    /// The `ftps` binary (its path).
    Ftps(std::path::PathBuf),
    /// lftp.
    Lftp,
}

/// What one run of a client took: wall seconds, its CPU seconds (user and system), and
/// the server's: the machine's busy CPU seconds over the run less the client's (the
/// bench runs nothing else meanwhile; the kernel's network work on either side is in it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Took {
    pub(crate) secs: f64,
    pub(crate) cpu: f64,
    pub(crate) server: f64,
}

/// The machine's busy CPU seconds since boot: `/proc/stat`'s first line, user, nice,
/// system, irq and softirq (idle, iowait and steal left out), in ticks of 1/100 s.
pub(crate) fn machine_cpu() -> Result<f64, Fail> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().ok_or("/proc/stat: empty")?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    // user nice system idle iowait irq softirq steal ...
    let busy = [0, 1, 2, 5, 6]
        .iter()
        .map(|&i| ticks.get(i).copied().ok_or("/proc/stat: short"))
        .sum::<Result<f64, _>>()?;
    Ok(busy / 100.0)
}

/// This process's own CPU seconds (user + system, `/proc/self/stat` utime and stime).
pub(crate) fn own_cpu() -> Result<f64, Fail> {
    let fields = self_stat()?;
    Ok(stat_ticks(&fields, 14)? + stat_ticks(&fields, 15)?)
}

/// The fields of `/proc/self/stat` after the command name's `)` (state is field 3).
fn self_stat() -> Result<Vec<String>, Fail> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let after = stat.rsplit_once(')').ok_or("/proc/self/stat: no )")?.1;
    Ok(after.split_whitespace().map(str::to_owned).collect())
}

/// Field `i` (numbered as in proc(5)) of [`self_stat`]'s, as seconds.
fn stat_ticks(fields: &[String], i: usize) -> Result<f64, Fail> {
    Ok(fields
        .get(i - 3)
        .ok_or("/proc/self/stat: short")?
        .parse::<f64>()?
        / 100.0)
}

/// CPU counters around a run in this process: the bench's own and the machine's.
struct Meter {
    own: f64,
    machine: f64,
    start: Instant,
}

impl Meter {
    fn start() -> Result<Self, Fail> {
        Ok(Meter {
            own: own_cpu()?,
            machine: machine_cpu()?,
            start: Instant::now(),
        })
    }

    /// What the run took, the client being this process.
    fn took(self) -> Result<Took, Fail> {
        let secs = self.start.elapsed().as_secs_f64();
        let cpu = own_cpu()? - self.own;
        let machine = machine_cpu()? - self.machine;
        Ok(Took {
            secs,
            cpu,
            server: (machine - cpu).max(0.0),
        })
    }
}

/// The CPU seconds (user + system) of this process's children that have been waited for
/// (`/proc/self/stat`, cutime and cstime, in clock ticks of 1/100 s): the difference
/// around one command is that command's CPU (the servers, never waited for while the
/// bench runs, are not in it).
pub(crate) fn children_cpu() -> Result<f64, Fail> {
    let fields = self_stat()?;
    Ok(stat_ticks(&fields, 16)? + stat_ticks(&fields, 17)?)
}

/// Runs `cmd` once, timed: wall and CPU seconds (the command's and the server's), failing
/// with its stderr.
fn timed(mut cmd: Command, what: &str) -> Result<(Took, std::process::Output), Fail> {
    let cpu = children_cpu()?;
    let machine = machine_cpu()?;
    let start = Instant::now();
    let out = cmd.output()?;
    let secs = start.elapsed().as_secs_f64();
    let cpu = children_cpu()? - cpu;
    let server = (machine_cpu()? - machine - cpu).max(0.0);
    if !out.status.success() {
        return Err(format!(
            "{what}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok((Took { secs, cpu, server }, out))
}

/// Runs a command-line client once: a PROT P download of big.bin into /dev/null, or an
/// upload of it as up.bin (checked for its size on the server).
pub(crate) fn tool(
    server: &Running,
    ca: &Path,
    tool: &Tool,
    what: Curl,
    data: &Path,
) -> Result<Took, Fail> {
    let port = server.port;
    let size = std::fs::metadata(data.join("big.bin"))?.len();
    let big = data.join("big.bin");
    let cmd = match tool {
        Tool::Ftps(exe) => {
            let mut cmd = Command::new(exe);
            let url = |f: &str| format!("ftp://localhost:{port}/{f}");
            match what {
                Curl::Upload => cmd.arg("put").arg(&big).arg(url("up.bin")),
                _ => cmd.arg("get").arg(url("big.bin")).arg("/dev/null"),
            };
            if let Curl::DownloadClear = what {
                cmd.args(["--prot", "C"]);
            }
            cmd.arg("--ca-cert")
                .arg(ca)
                .args(["--user", &server.user.0])
                .env("FTPS_PASSWORD", &server.user.1);
            cmd
        }
        Tool::Lftp => {
            let transfer = match what {
                Curl::Upload => format!("put {} -o up.bin", big.display()),
                _ => "get big.bin -o /dev/null".to_owned(),
            };
            let script = format!(
                "set ssl:ca-file {}; set ftp:ssl-force true; set ftp:ssl-protect-data {}; \
                 set dns:order inet; set net:max-retries 1; set xfer:clobber on; {transfer}; bye",
                ca.display(),
                !matches!(what, Curl::DownloadClear)
            );
            let mut cmd = Command::new("lftp");
            cmd.arg("-u")
                .arg(format!("{},{}", server.user.0, server.user.1))
                .args(["-e", &script])
                .arg(format!("ftp://localhost:{port}"));
            cmd
        }
    };
    if let Curl::Upload = what {
        match std::fs::remove_file(server.home.join("up.bin")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    let (took, _) = timed(cmd, &format!("{tool:?} {what:?}"))?;
    if let Curl::Upload = what {
        let stored = std::fs::metadata(server.home.join("up.bin"))?.len();
        if stored != size {
            return Err(format!("the server stored {stored} bytes, not {size}").into());
        }
        // Every server runs all along: one uploaded GiB at a time in memory, not six.
        std::fs::remove_file(server.home.join("up.bin"))?;
    }
    Ok(took)
}

/// Client options for `server`, trusting its certificate, PROT P.
pub(crate) fn options(server: &Running) -> Result<ftps_backend::client::ClientOptions, Fail> {
    let mut o = ftps_backend::client::ClientOptions::new(
        "localhost",
        server.port,
        &server.user.0,
        &server.user.1,
    )?;
    // The peers' certificates are made by `openssl req -x509` (CA:TRUE).
    o.tls = Some(Arc::new(ftps_proto::tls::client_config_from_pem(
        &server.ca,
        ftps_proto::tls::BOTH,
    )?));
    Ok(o)
}

/// One of our clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ours {
    /// ftps-tokio.
    Tokio,
    /// ftps-blocking.
    Blocking,
    /// ftps-smol.
    Smol,
}

/// Downloads big.bin with one of our clients (connect, log in, RETR into nothing, QUIT);
/// returns the seconds.
pub(crate) fn download(server: &Running, client: Ours, size: u64) -> Result<Took, Fail> {
    download_with(options(server)?, client, size)
}

/// [`download`] with the options given (`ftps-bench fetch`, for profiling).
pub(crate) fn download_with(
    o: ftps_backend::client::ClientOptions,
    client: Ours,
    size: u64,
) -> Result<Took, Fail> {
    let meter = Meter::start()?;
    let got = match client {
        Ours::Tokio => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut c = ftps_tokio::Client::connect(o).await?;
                let n = c.retrieve("big.bin", 0, &mut tokio::io::sink()).await?;
                c.quit().await?;
                Ok::<u64, Fail>(n)
            })?
        }
        Ours::Blocking => {
            let mut c = ftps_blocking::Client::connect(o)?;
            let n = c.retrieve("big.bin", 0, &mut std::io::sink())?;
            c.quit()?;
            n
        }
        Ours::Smol => smol::block_on(async {
            let mut c = ftps_smol::Client::connect(o).await?;
            let n = c.retrieve("big.bin", 0, &mut smol::io::sink()).await?;
            c.quit().await?;
            Ok::<u64, Fail>(n)
        })?,
    };
    let took = meter.took()?;
    if got != size {
        return Err(format!("{client:?} client got {got} bytes, not {size}").into());
    }
    Ok(took)
}

/// Downloads the first `count` small files in one session with the tokio client (a data
/// connection each, TLS resumed each time); returns files per second (login excluded).
pub(crate) fn small_files(server: &Running, count: usize, size: usize) -> Result<f64, Fail> {
    small_files_with(options(server)?, count, size)
}

/// [`small_files`] with the options given (`ftps-bench fetch`, for profiling).
pub(crate) fn small_files_with(
    o: ftps_backend::client::ClientOptions,
    count: usize,
    size: usize,
) -> Result<f64, Fail> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut c = ftps_tokio::Client::connect(o).await?;
        let start = Instant::now();
        let mut buf = Vec::with_capacity(size);
        for i in 0..count {
            buf.clear();
            c.retrieve(&format!("small/{}", small_name(i)), 0, &mut buf)
                .await?;
            if buf.len() != size {
                return Err(format!("small file {i}: {} bytes", buf.len()).into());
            }
        }
        let secs = start.elapsed().as_secs_f64();
        c.quit().await?;
        Ok(count as f64 / secs)
    })
}

/// The name of small file `i`.
pub(crate) fn small_name(i: usize) -> String {
    format!("f{i:05}")
}

/// Logins per second: `workers` concurrent loops of connect (AUTH TLS, USER, PASS, PBSZ,
/// PROT), PWD, QUIT with the tokio client, for `time`.
pub(crate) fn logins(server: &Running, workers: usize, time: Duration) -> Result<f64, Fail> {
    let o = options(server)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + time;
    rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let (o, done) = (o.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    let mut c = ftps_tokio::Client::connect(o.clone()).await?;
                    c.pwd().await?;
                    c.quit().await?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<(), ftps_tokio::client::Error>(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        Ok::<(), Fail>(())
    })?;
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

/// The proportional set size of `pids`, in KiB.
pub(crate) fn pss_kib(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok())
        .filter_map(|s| {
            s.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .sum()
}

/// Memory per idle session: logs in `sessions` control sessions (64 at a time), holds
/// them, and returns the growth of the server's proportional set size per session, in
/// KiB.
pub(crate) fn idle_sessions(server: &Running, sessions: usize) -> Result<f64, Fail> {
    let o = options(server)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    std::thread::sleep(Duration::from_millis(300));
    let before = pss_kib(&server.pids());
    let clients = rt.block_on(async {
        let gate = Arc::new(tokio::sync::Semaphore::new(64));
        let mut tasks = Vec::with_capacity(sessions);
        for _ in 0..sessions {
            let (o, gate) = (o.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire_owned().await;
                let mut c = ftps_tokio::Client::connect(o).await?;
                c.pwd().await?;
                Ok::<_, ftps_tokio::client::Error>(c)
            }));
        }
        let mut clients = Vec::with_capacity(sessions);
        for t in tasks {
            clients.push(t.await??);
        }
        Ok::<_, Fail>(clients)
    })?;
    std::thread::sleep(Duration::from_secs(1));
    let pids = server.pids();
    let after = pss_kib(&pids);
    println!(
        "  {sessions} idle sessions: {} process(es), PSS {before} KiB before, {after} KiB with them",
        pids.len()
    );
    // Closing them all at once is enough; the servers see end of file.
    rt.block_on(async move { drop(clients) });
    Ok(after.saturating_sub(before) as f64 / sessions as f64)
}
