//! What the hostile-input suites share (`tests/hostile.rs`, `tests/review.rs`): every
//! runtime's server, raw logged-in control connections, and data connections made by
//! hand.

#![allow(clippy::unwrap_used)] // Test support: a broken step fails the test loudly.

use crate::raw::Raw;
use crate::runtimes::{Blocking, Smol, Tokio};
use crate::{Fixture, RunningServer, ServerRuntime, ServerSetup};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The server of every runtime.
pub fn servers() -> [&'static dyn ServerRuntime; 3] {
    static SMOL: Smol = Smol::new();
    [&Tokio, &Blocking, &SMOL]
}

/// Runs `case` against every runtime's server, with the fixture's setup adjusted by
/// `adjust`.
pub fn each(
    name: &str,
    adjust: impl Fn(&mut ServerSetup),
    case: impl Fn(&Fixture, &dyn RunningServer, &str),
) {
    for server in servers() {
        let f = Fixture::new(&format!("hostile-{name}-{}", server.name()));
        let mut setup = f.setup();
        adjust(&mut setup);
        let running = server.start(setup);
        case(&f, running.as_ref(), server.name());
    }
}

/// Lets clients in without TLS (control and data).
pub fn plain_allowed(s: &mut ServerSetup) {
    s.config.control_tls = ftps_proto::server::ControlTlsPolicy::Allow;
    s.config.data_tls = ftps_proto::server::DataTlsPolicy::Allow;
}

/// A raw connection to the explicit listener, past its greeting.
pub fn connect(r: &dyn RunningServer) -> Raw {
    let (raw, greeting) = Raw::connect(r.explicit()).unwrap();
    assert_eq!(greeting.code().get(), 220);
    raw
}

/// AUTH TLS, USER, PASS, PBSZ 0, PROT P; also gives the TLS configuration whose
/// session cache data connections must use to resume the control session.
pub fn logged_in_with(
    f: &Fixture,
    r: &dyn RunningServer,
) -> (Raw, std::sync::Arc<rustls::ClientConfig>) {
    logged_in_using(f, r, f.client_tls())
}

/// [`logged_in_with`] a TLS configuration of the caller's.
pub fn logged_in_using(
    f: &Fixture,
    r: &dyn RunningServer,
    tls: std::sync::Arc<rustls::ClientConfig>,
) -> (Raw, std::sync::Arc<rustls::ClientConfig>) {
    let mut c = connect(r);
    c.auth_tls(tls.clone()).unwrap();
    let (user, password) = f.credentials();
    assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331);
    assert_eq!(c.cmd(&format!("PASS {password}")).unwrap(), 230);
    assert_eq!(c.cmd("PBSZ 0").unwrap(), 200);
    assert_eq!(c.cmd("PROT P").unwrap(), 200);
    (c, tls)
}

/// [`logged_in_with`], without the TLS configuration.
pub fn logged_in(f: &Fixture, r: &dyn RunningServer) -> Raw {
    logged_in_with(f, r).0
}

/// A connection to 127.0.0.1:`port` from source address `ip` (std cannot bind before
/// connecting; tokio's `TcpSocket` can).
pub fn socket_from(ip: [u8; 4], port: u16) -> Option<TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().ok()?;
        socket.bind(SocketAddr::from((ip, 0))).ok()?;
        let stream = socket
            .connect(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .ok()?;
        let std = stream.into_std().ok()?;
        std.set_nonblocking(false).ok()?;
        Some(std)
    })
}

/// A connection to `addr` with a fixed receive buffer of `size` bytes (no autotuning), so
/// that the server's writes back up as soon as it does not read.
pub fn receiver(addr: SocketAddr, size: u32) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(size).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let std = stream.into_std().unwrap();
        std.set_nonblocking(false).unwrap();
        std
    })
}

/// A plain (clear-text) session logged in from source address `ip` (another loopback
/// address).
pub fn plain_session_from(f: &Fixture, r: &dyn RunningServer, ip: [u8; 4]) -> Raw {
    let tcp = socket_from(ip, r.explicit().port()).unwrap();
    let (mut c, greeting) = Raw::over(tcp).unwrap();
    assert_eq!(greeting.code().get(), 220, "greeted from {ip:?}");
    let (user, password) = f.credentials();
    assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331);
    assert_eq!(c.cmd(&format!("PASS {password}")).unwrap(), 230);
    c
}

/// Starts an upload of `name` on a fresh passive data connection that resumes the control
/// session; returns the data stream once the server's TLS handshake is done.
pub fn start_upload(
    c: &mut Raw,
    tls: std::sync::Arc<rustls::ClientConfig>,
    name: &str,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    c.send_bytes(b"EPSV\r\n").unwrap();
    let port = ftps_proto::address::parse_epsv_reply(c.reply().unwrap().first_line()).unwrap();
    let mut data = TcpStream::connect(("127.0.0.1", port)).unwrap();
    data.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    c.send_bytes(format!("STOR {name}\r\n").as_bytes()).unwrap();
    assert!(c.any_reply().unwrap().code().is_preliminary());
    let mut conn = rustls::ClientConnection::new(tls, "localhost".try_into().unwrap()).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut data).unwrap();
    }
    rustls::StreamOwned::new(conn, data)
}

/// Whether `root` holds anything but `keep` (temporary upload files included).
pub fn stray_files(root: &std::path::Path, keep: &[&str]) -> Vec<String> {
    std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

/// A TLS data connection for a RETR of `name` made with `tls` (whose session cache decides
/// what it resumes); returns the final reply code and the bytes received.
pub fn retrieve_with(
    c: &mut Raw,
    tls: std::sync::Arc<rustls::ClientConfig>,
    name: &str,
) -> (u16, Vec<u8>) {
    c.send_bytes(b"EPSV\r\n").unwrap();
    let port = ftps_proto::address::parse_epsv_reply(c.reply().unwrap().first_line()).unwrap();
    let mut data = TcpStream::connect(("127.0.0.1", port)).unwrap();
    data.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    c.send_bytes(format!("RETR {name}\r\n").as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut conn = rustls::ClientConnection::new(tls, "localhost".try_into().unwrap()).unwrap();
    let mut ok = true;
    while conn.is_handshaking() && ok {
        ok = conn.complete_io(&mut data).is_ok();
    }
    if ok {
        let mut s = rustls::StreamOwned::new(conn, data);
        let _ = std::io::Read::read_to_end(&mut s, &mut got);
    }
    (c.reply().unwrap().code().get(), got)
}

/// USER and PASS without TLS (the server allows it here): the race tests need many
/// commands a second, not TLS.
pub fn plain_session(f: &Fixture, r: &dyn RunningServer) -> Raw {
    let mut c = connect(r);
    let (user, password) = f.credentials();
    assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331);
    assert_eq!(c.cmd(&format!("PASS {password}")).unwrap(), 230);
    c
}

/// A transfer command on a fresh passive plain data connection; sends `upload` (if any),
/// reads what comes; the final reply code and the bytes received.
pub fn transfer(c: &mut Raw, command: &str, upload: Option<&[u8]>) -> (u16, Vec<u8>) {
    c.send_bytes(b"EPSV\r\n").unwrap();
    let reply = c.reply().unwrap();
    assert_eq!(reply.code().get(), 229, "{}", reply.first_line());
    let port = ftps_proto::address::parse_epsv_reply(reply.first_line()).unwrap();
    let mut data = TcpStream::connect(("127.0.0.1", port)).unwrap();
    data.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    c.send_bytes(format!("{command}\r\n").as_bytes()).unwrap();
    let first = c.any_reply().unwrap();
    let mut got = Vec::new();
    if first.code().is_preliminary() {
        if let Some(bytes) = upload {
            let _ = data.write_all(bytes);
            let _ = data.shutdown(std::net::Shutdown::Write);
        }
        let _ = data.read_to_end(&mut got);
        drop(data);
        (c.reply().unwrap().code().get(), got)
    } else {
        (first.code().get(), got)
    }
}

/// A transfer (an upload, or any command) started on a plain passive data connection:
/// the connection, once the server's 1xx arrived, or the refusal's code.
pub fn start_plain_upload(c: &mut Raw, command: &str) -> Result<TcpStream, u16> {
    start_plain_on(c, command, |port| {
        TcpStream::connect(("127.0.0.1", port)).unwrap()
    })
}

/// A transfer `command` started on a plain passive data connection made from source
/// address `ip` (another loopback address): the connection, once the server's 1xx
/// arrived, or the refusal's code.
pub fn start_plain_from(c: &mut Raw, ip: [u8; 4], command: &str) -> Result<TcpStream, u16> {
    start_plain_on(c, command, |port| socket_from(ip, port).unwrap())
}

fn start_plain_on(
    c: &mut Raw,
    command: &str,
    connect: impl FnOnce(u16) -> TcpStream,
) -> Result<TcpStream, u16> {
    c.send_bytes(b"EPSV\r\n").unwrap();
    let reply = c.reply().unwrap();
    assert_eq!(reply.code().get(), 229, "{}", reply.first_line());
    let port = ftps_proto::address::parse_epsv_reply(reply.first_line()).unwrap();
    let data = connect(port);
    data.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    c.send_bytes(format!("{command}\r\n").as_bytes()).unwrap();
    let first = c.any_reply().unwrap();
    if first.code().is_preliminary() {
        Ok(data)
    } else {
        Err(first.code().get())
    }
}

/// Ends an upload started by [`start_plain_upload`]; the final reply code.
pub fn end_plain_upload(c: &mut Raw, mut data: TcpStream, rest: &[u8]) -> u16 {
    data.write_all(rest).unwrap();
    data.shutdown(std::net::Shutdown::Write).unwrap();
    drop(data);
    c.reply().unwrap().code().get()
}

/// Runs `f` while a thread samples this process's resident set every 2 ms; returns `f`'s
/// result and the largest growth seen over the resident set before, in KiB.
pub fn peak_growth_kib<T>(f: impl FnOnce() -> T) -> (T, u64) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let before = rss_kib();
    let peak = Arc::new(AtomicU64::new(before));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let out = f();
    peak.fetch_max(rss_kib(), Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    (out, peak.load(Ordering::Relaxed).saturating_sub(before))
}

/// This process's resident memory, in KiB (the servers under test run in it).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The resident part of this process's thread stacks, in KiB: the anonymous mappings of
/// exactly 2 MiB, the size Rust gives a thread's stack.
pub fn stack_rss_kib() -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut stack = false;
    let mut total = 0;
    for line in smaps.lines() {
        let kib = |v: &str| -> u64 { v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0) };
        if let Some(v) = line.strip_prefix("Size:") {
            stack = kib(v) == 2048;
        } else if let Some(v) = line.strip_prefix("Rss:")
            && stack
        {
            total += kib(v);
        }
    }
    total
}

/// [`each`], going on to the next runtime when a case fails, then failing with the
/// runtimes that did (each one's panic printed above).
pub fn each_all(
    name: &str,
    adjust: impl Fn(&mut ServerSetup),
    case: impl Fn(&Fixture, &dyn RunningServer, &str),
) {
    let failed = std::sync::Mutex::new(Vec::new());
    each(name, adjust, |f, r, tag| {
        let run = std::panic::AssertUnwindSafe(|| case(f, r, tag));
        if std::panic::catch_unwind(run).is_err() {
            failed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(tag.to_owned());
        }
    });
    let failed = failed.into_inner().unwrap_or_else(|e| e.into_inner());
    assert!(
        failed.is_empty(),
        "failed on {failed:?} (each one's panic above)"
    );
}

/// A clear-text session logged in as `name`.
pub fn login_as(r: &dyn RunningServer, name: &str, password: &str) -> Raw {
    let mut c = connect(r);
    assert_eq!(c.cmd(&format!("USER {name}")).ok(), Some(331), "{name}");
    assert_eq!(c.cmd(&format!("PASS {password}")).ok(), Some(230), "{name}");
    c
}

/// Clear text allowed, and one user, `q` (password `pq`), in /q: at most `bytes` and 10
/// files.
pub fn quota_user(s: &mut ServerSetup, bytes: u64) {
    plain_allowed(s);
    std::fs::create_dir_all(s.root.join("q")).expect("the home");
    s.users = vec![(
        ftps_backend::User::new("q")
            .with_home(ftps_proto::VirtualPath::root().resolve("/q"))
            .with_quota(ftps_backend::Quota::new(Some(bytes), Some(10))),
        "pq".into(),
    )];
}
