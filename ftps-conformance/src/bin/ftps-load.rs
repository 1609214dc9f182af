//! The load and fault job: N concurrent FTPS sessions against the tokio server, each
//! uploading and downloading a random file and comparing it; every tenth session is
//! killed in the middle of an upload. Afterwards: every completed file matches, no
//! partial or temporary file is visible, every session has ended, no task is left, and
//! the process's resident memory is back near its idle level.
//!
//! `cargo run --release -p ftps-conformance --bin ftps-load -- [--sessions N]`
//! (`cargo xtask load`).

use ftps_conformance::Fixture;
use ftps_proto::server::TlsMode;
use ftps_tokio::{Client, LocalFs, Server, StaticUsers};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut sessions = 1000usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sessions" => sessions = args.next().ok_or("--sessions N")?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if std::env::var_os("FTPS_LOAD_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(sessions))
}

async fn run(sessions: usize) -> Result<(), Box<dyn std::error::Error>> {
    let f = Fixture::new("load");
    let setup = f.setup();
    let (user, password) = f.credentials();
    let server = Server::builder(
        LocalFs::new(f.root())?,
        StaticUsers::new().with_password(user, password),
    )
    .config(setup.config.clone())
    .tls(setup.tls.clone())
    .max_sessions(sessions + 100, sessions + 100)
    .build();
    // A backlog that holds every client connecting at once: FTP servers speak first, so
    // a connection dropped from a full accept queue leaves its client waiting for a
    // greeting that never comes (tokio's default backlog is 1024).
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind("127.0.0.1:0".parse()?)?;
    let listener = socket.listen(4096)?;
    let port = listener.local_addr()?.port();
    let s2 = server.clone();
    let serving = tokio::spawn(async move { s2.serve(listener, TlsMode::Explicit).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle_tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let idle_rss = rss_kib();
    // Two rounds: the first grows the allocator's pools, the second must not grow them
    // further (glibc keeps freed memory, so "back to idle" is read as "no growth").
    let mut rss = Vec::new();
    for round in 0..2 {
        let (done, secs) = one_round(&f, &server, port, sessions, round).await?;
        let tasks = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        if tasks > idle_tasks {
            return Err(format!("round {round}: tasks {idle_tasks} idle, {tasks} after").into());
        }
        rss.push(rss_kib());
        println!(
            "load round {}: {sessions} sessions ({done} completed, {} killed mid-upload) in \
             {secs:.1} s; every file compared, none partial, every session ended; tasks \
             {idle_tasks} -> {tasks}; RSS idle {} MiB, now {} MiB",
            round + 1,
            sessions - done,
            idle_rss / 1024,
            rss[round] / 1024
        );
    }
    let allowed = rss[0] + (rss[0] / 4).max(32 * 1024);
    if rss[1] > allowed {
        return Err(format!(
            "memory grows: RSS {} KiB after round 1, {} KiB after round 2",
            rss[0], rss[1]
        )
        .into());
    }
    server.shutdown();
    let _ = serving.await;
    Ok(())
}

/// One round of `sessions` concurrent sessions; returns how many completed and the time.
async fn one_round(
    f: &Fixture,
    server: &Server<ftps_tokio::OnPool<LocalFs>, StaticUsers>,
    port: u16,
    sessions: usize,
    round: usize,
) -> Result<(usize, f64), Box<dyn std::error::Error>> {
    let (user, password) = f.credentials();
    let tls = f.client_tls();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..sessions {
        let tls = tls.clone();
        let (user, password) = (user.to_owned(), password.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut o = ftps_tokio::ClientOptions::new("localhost", port, user, password)
                .map_err(|e| format!("{i}: options: {e}"))?;
            o.tls = Some(tls);
            o.connect_timeout = Duration::from_secs(120);
            o.session.reply_timeout = Duration::from_secs(
                std::env::var("LOAD_REPLY_TIMEOUT")
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(600),
            );
            let mut c = Client::connect(o)
                .await
                .map_err(|e| format!("{i}: connect: {e}"))?;
            let body = data(
                (round * sessions + i) as u64,
                1024 + (i * 7919) % (256 * 1024),
            );
            let name = format!("r{round}-f{i}.bin");
            if i % 10 == 9 {
                // Killed mid-upload: half the bytes, then the whole connection dropped.
                let mut w = c
                    .store_stream(&name, 0, false)
                    .await
                    .map_err(|e| format!("{i}: {e}"))?;
                w.write_all(&body[..body.len() / 2])
                    .await
                    .map_err(|e| format!("{i}: {e}"))?;
                drop(w);
                drop(c);
                return Ok::<_, String>(None);
            }
            c.store(&name, &mut &body[..], 0, false)
                .await
                .map_err(|e| format!("{i}: store: {e}"))?;
            let mut back = Vec::new();
            c.retrieve(&name, 0, &mut back)
                .await
                .map_err(|e| format!("{i}: retrieve: {e}"))?;
            if back != body {
                return Err(format!("{i}: the download differs"));
            }
            c.quit().await.map_err(|e| format!("{i}: quit: {e}"))?;
            Ok(Some((name, body)))
        }));
    }
    let mut done = Vec::new();
    let mut failures = Vec::new();
    for t in tasks {
        match t.await? {
            Ok(Some(x)) => done.push(x),
            Ok(None) => {}
            Err(e) => failures.push(e),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    if !failures.is_empty() {
        return Err(format!("{} sessions failed, first: {}", failures.len(), failures[0]).into());
    }
    // Every session ends (the killed ones when the server sees their sockets close).
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.open_sessions() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if server.open_sessions() > 0 {
        return Err(format!("{} sessions still open", server.open_sessions()).into());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (name, body) in &done {
        if std::fs::read(f.root().join(name))? != *body {
            return Err(format!("{name}: stored file differs").into());
        }
    }
    let mut names: Vec<String> = std::fs::read_dir(f.root())?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    let mut expected: Vec<String> = done.iter().map(|(n, _)| n.clone()).collect();
    expected.sort();
    if names != expected {
        let extra: Vec<_> = names.iter().filter(|n| !expected.contains(n)).collect();
        return Err(format!("unexpected files in the root: {extra:?}").into());
    }
    for name in names {
        std::fs::remove_file(f.root().join(name))?;
    }
    Ok((done.len(), secs))
}
