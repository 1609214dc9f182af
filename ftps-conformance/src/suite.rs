//! The suite: every case, every operation, every file compared.

use crate::{ClientRuntime, Failure, RunningServer, ServerRuntime, ServerSetup, Session};
use ftps_backend::client::ClientOptions;
use ftps_proto::ProtectionLevel;
use ftps_proto::client::ConnectionMode;
use ftps_proto::server::{DataTlsPolicy, ServerConfig};
use std::path::PathBuf;
use std::sync::Arc;

/// One combination of modes.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Implicit FTPS instead of explicit.
    pub implicit: bool,
    /// PROT C instead of PROT P.
    pub clear_data: bool,
    /// Active (PORT/EPRT) instead of passive.
    pub active: bool,
    /// TLS 1.2 instead of 1.3.
    pub tls12: bool,
}

impl Case {
    /// All sixteen combinations.
    pub fn all() -> Vec<Case> {
        let mut cases = Vec::new();
        for bits in 0..16u8 {
            cases.push(Case {
                implicit: bits & 1 != 0,
                clear_data: bits & 2 != 0,
                active: bits & 4 != 0,
                tls12: bits & 8 != 0,
            });
        }
        cases
    }

    fn tag(&self) -> String {
        format!(
            "{}-{}-{}-{}",
            if self.implicit {
                "implicit"
            } else {
                "explicit"
            },
            if self.clear_data { "protc" } else { "protp" },
            if self.active { "active" } else { "passive" },
            if self.tls12 { "tls12" } else { "tls13" },
        )
    }
}

/// A served directory, its certificate, and the user.
pub struct Fixture {
    dir: PathBuf,
    cert_pem: String,
    key_pem: String,
}

const USER: &str = "alice";
const PASSWORD: &str = "conformance-Pass-1";

impl Fixture {
    /// A fresh directory and a certificate for `localhost`.
    pub fn new(name: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("ftps-conf-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("root")).expect("temp dir");
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
        let cert = params.self_signed(&key).expect("cert");
        std::fs::write(dir.join("cert.pem"), cert.pem()).expect("cert file");
        Fixture {
            dir,
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// The directory served.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// The server's certificate as a PEM file, to trust.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    /// The user name and password the server accepts.
    pub fn credentials(&self) -> (&'static str, &'static str) {
        (USER, PASSWORD)
    }

    /// Starts `server` on this fixture; `reuse` says whether data connections must resume
    /// the control session (Python's ftplib cannot).
    pub fn start(&self, server: &dyn ServerRuntime, reuse: bool) -> Box<dyn RunningServer> {
        let mut setup = self.setup();
        setup.config.require_session_reuse = reuse;
        server.start(setup)
    }

    /// A client TLS configuration trusting this fixture's certificate.
    pub fn client_tls(&self) -> Arc<rustls::ClientConfig> {
        let roots = ftps_proto::tls::roots_from_pem(self.cert_pem.as_bytes()).expect("roots");
        Arc::new(ftps_proto::tls::client_config(roots).expect("TLS"))
    }

    /// [`client_tls`](Self::client_tls) limited to `versions`, for the caller to adjust.
    pub fn client_tls_for(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> rustls::ClientConfig {
        let roots = ftps_proto::tls::roots_from_pem(self.cert_pem.as_bytes()).expect("roots");
        ftps_proto::tls::client_config_with_versions(roots, versions).expect("TLS")
    }

    /// The server setup of this fixture (to adjust, then start with the runtime).
    pub fn setup(&self) -> ServerSetup {
        ServerSetup {
            root: self.root(),
            // PROT C is allowed (the matrix tests it); reuse stays required.
            config: ServerConfig::default()
                .with_data_tls(DataTlsPolicy::Allow)
                .with_active_mode(true),
            tls: ftps_proto::tls::server_config_from_pem(
                self.cert_pem.as_bytes(),
                self.key_pem.as_bytes(),
            )
            .expect("server TLS"),
            user: (USER.into(), PASSWORD.into()),
            max_sessions: (1000, 50),
            login_lockout: None,
            upload_quota: None,
            listing_fails_after: None,
            max_sessions_before_login: None,
            max_passive_per_user: None,
            passive_ports: None,
            transfer_buffers: None,
            users: Vec::new(),
            auth_wait: None,
            auth_blocking: false,
            auth_timeout: None,
            blocking_auth_checks: None,
            hooks: None,
            memory: None,
            proxies: None,
            storage_timeout: None,
        }
    }

    fn options(&self, server: &dyn RunningServer, case: Case) -> ClientOptions {
        let versions: &[&'static rustls::SupportedProtocolVersion] = if case.tls12 {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13]
        };
        let tls = self.client_tls_for(versions);
        let addr = if case.implicit {
            server.implicit()
        } else {
            server.explicit()
        };
        let mut o =
            ClientOptions::new("localhost", addr.port(), USER, PASSWORD).expect("credentials");
        o.session.mode = if case.implicit {
            ConnectionMode::Implicit
        } else {
            ConnectionMode::ExplicitRequired
        };
        o.session.protection = if case.clear_data {
            ProtectionLevel::Clear
        } else {
            ProtectionLevel::Private
        };
        o.session.passive = !case.active;
        o.tls = Some(Arc::new(tls));
        o
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn data(seed: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ seed) as u8)
        .collect()
}

/// `body` with the four bytes the suite appends to it.
fn body_and_tail(body: &[u8]) -> Vec<u8> {
    [body, b"tail"].concat()
}

/// Sets a local file's permission bits (Unix).
fn set_mode(path: &std::path::Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
}

/// A local file's permission bits (Unix).
fn mode(path: &std::path::Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .ok()
            .map(|m| m.permissions().mode() & 0o7777)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Some(0o640)
    }
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), Failure> {
    if ok { Ok(()) } else { Err(what()) }
}

/// Runs every [`Case`] of `client` against `server`; the first failure names the pair, the
/// case and the step.
pub fn run(server: &dyn ServerRuntime, client: &dyn ClientRuntime) -> Result<(), Failure> {
    let name = format!("{}-{}", client.name(), server.name());
    let fixture = Fixture::new(&name);
    std::fs::write(fixture.root().join("big.bin"), data(7, 4 << 20)).map_err(|e| e.to_string())?;
    let running = server.start(fixture.setup());
    for case in Case::all() {
        let tag = format!("{name} {}", case.tag());
        let session = client
            .connect(fixture.options(running.as_ref(), case))
            .map_err(|e| format!("{tag}: connect: {e}"))?;
        one_case(session, &case.tag()).map_err(|e| format!("{tag}: {e}"))?;
    }
    Ok(())
}

fn one_case(mut s: Box<dyn Session>, tag: &str) -> Result<(), Failure> {
    check(s.is_secure(), || "control connection not secure".into())?;
    let dir = format!("d-{tag}");
    s.mkdir(&dir)?;
    s.cwd(&dir)?;
    check(s.pwd()? == format!("/{dir}"), || "PWD after CWD".into())?;

    // Transfers, mixed, each compared: the data connections resume the control session.
    for i in 0..6u32 {
        let body = data(i, (i as usize) * 40_009 + 1);
        let file = format!("f{}.bin", i % 3);
        match i % 3 {
            0 => {
                s.store(&file, &body, 0, false)?;
                check(s.retrieve(&file, 0)? == body, || format!("transfer {i}"))?;
            }
            1 => {
                s.store_streamed(&file, &body)?;
                check(s.retrieve_streamed(&file)? == body, || {
                    format!("stream {i}")
                })?;
            }
            _ => {
                let names = s.nlst()?;
                check(names.iter().any(|n| n.as_str().ends_with("f0.bin")), || {
                    format!("NLST {names:?}")
                })?;
            }
        }
    }

    // Resume, append, partial download.
    let body = data(99, 100_000);
    s.store("r.bin", &body[..60_000], 0, false)?;
    s.store("r.bin", &body[60_000..], 60_000, false)?;
    check(s.retrieve("r.bin", 0)? == body, || "resumed upload".into())?;
    check(s.retrieve("r.bin", 99_000)? == body[99_000..], || {
        "REST download".into()
    })?;
    s.store("r.bin", b"tail", 0, true)?;
    check(s.size("r.bin")? == 100_004, || "APPE size".into())?;
    check(s.modified("r.bin")?.len() >= 14, || "MDTM".into())?;

    // `get_file`: a failed download leaves the local file it was to replace as it was,
    // and nothing beside it; a complete one replaces it, keeping its mode; a resumed one
    // continues it.
    let local_dir = std::env::temp_dir().join(format!(
        "ftps-get-file-{}-{}-{:?}",
        tag.replace(' ', "_"),
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&local_dir);
    std::fs::create_dir_all(&local_dir).map_err(|e| e.to_string())?;
    let local = local_dir.join("r.bin");
    std::fs::write(&local, b"precious").map_err(|e| e.to_string())?;
    set_mode(&local, 0o640);
    check(s.get_file("missing.bin", &local, false).is_err(), || {
        "get_file of a missing file succeeded".into()
    })?;
    check(
        std::fs::read(&local).ok().as_deref() == Some(b"precious"),
        || "a failed get_file changed the local file".into(),
    )?;
    let n = s.get_file("r.bin", &local, false)?;
    check(
        n == 100_004 && std::fs::read(&local).ok().as_deref() == Some(&body_and_tail(&body)[..]),
        || "get_file bytes".into(),
    )?;
    check(mode(&local) == Some(0o640), || {
        "get_file kept no mode".into()
    })?;
    std::fs::write(&local, &body[..50_000]).map_err(|e| e.to_string())?;
    s.get_file("r.bin", &local, true)?;
    check(
        std::fs::read(&local).ok().as_deref() == Some(&body_and_tail(&body)[..]),
        || "resumed get_file".into(),
    )?;
    let left: Vec<_> = std::fs::read_dir(&local_dir)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    check(left.len() == 1, || format!("get_file left {left:?}"))?;
    let _ = std::fs::remove_dir_all(&local_dir);

    // Listings.
    let names = s.list()?;
    check(names.iter().any(|n| n == "r.bin"), || {
        format!("LIST {names:?}")
    })?;
    let facts = s.mlsd()?;
    check(
        facts
            .iter()
            .any(|(n, size)| n == "r.bin" && *size == Some(100_004)),
        || format!("MLSD {facts:?}"),
    )?;

    // Names.
    s.rename("r.bin", "moved.bin")?;
    s.delete("moved.bin")?;
    check(
        !s.nlst()?.iter().any(|n| n.as_str().ends_with("moved.bin")),
        || "DELE".into(),
    )?;
    s.mkdir("sub")?;
    s.rmdir("sub")?;

    // ABOR in the middle of a download; the session goes on.
    s.cwd("/")?;
    s.abort_download("big.bin", 64 * 1024)?;
    check(s.retrieve("big.bin", 0)?.len() == 4 << 20, || {
        "download after ABOR".into()
    })?;
    s.quit()
}

/// Server behaviours that live in the adapter's wiring rather than in the core: the
/// per-address session cap (the last of N+1 sessions gets 421 and is closed) and the idle
/// timer (421 after the configured idle time), over plain control connections.
pub fn behaviours(server: &dyn ServerRuntime) -> Result<(), Failure> {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};
    let fixture = Fixture::new(&format!("behaviours-{}", server.name()));
    let mut setup = fixture.setup();
    setup.config.control_tls = ftps_proto::server::ControlTlsPolicy::Allow;
    setup.config.data_tls = DataTlsPolicy::Allow;
    setup.config.timeouts.idle = Duration::from_secs(1);
    setup.max_sessions = (100, 2);
    let running = server.start(setup);
    let addr = running.explicit();
    let line = |r: &mut BufReader<TcpStream>| -> Result<String, Failure> {
        let mut l = String::new();
        r.read_line(&mut l).map_err(|e| e.to_string())?;
        Ok(l)
    };
    let connect = || -> Result<BufReader<TcpStream>, Failure> {
        let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        Ok(BufReader::new(tcp))
    };
    let tag = server.name();
    let mut one = connect()?;
    let mut two = connect()?;
    check(line(&mut one)?.starts_with("220 "), || {
        format!("{tag}: greeting")
    })?;
    check(line(&mut two)?.starts_with("220 "), || {
        format!("{tag}: greeting")
    })?;
    let mut three = connect()?;
    let refused = line(&mut three)?;
    check(refused.starts_with("421 "), || {
        format!("{tag}: the third session from one address got {refused:?}")
    })?;

    // Idle: log in, say nothing; 421 comes after about a second.
    let w = one.get_mut();
    w.write_all(format!("USER {USER}\r\nPASS {PASSWORD}\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    check(line(&mut one)?.starts_with("331 "), || {
        format!("{tag}: USER")
    })?;
    check(line(&mut one)?.starts_with("230 "), || {
        format!("{tag}: PASS")
    })?;
    let start = Instant::now();
    let idle = line(&mut one)?;
    check(idle.starts_with("421 "), || {
        format!("{tag}: idle session got {idle:?}")
    })?;
    check(start.elapsed() < Duration::from_secs(5), || {
        format!("{tag}: idle timeout took {:?}", start.elapsed())
    })?;
    // The closed session frees its slot.
    drop(one);
    std::thread::sleep(Duration::from_millis(300));
    let mut four = connect()?;
    let greeting = line(&mut four)?;
    check(greeting.starts_with("220 "), || {
        format!("{tag}: after a session ended, a new one got {greeting:?}")
    })
}
