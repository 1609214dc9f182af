//! The tokio client against real servers: vsftpd (`require_ssl_reuse=YES`), ProFTPD with
//! mod_tls (session reuse required by default) and Pure-FTPd (`-Y 2`, TLS required on
//! the control connection). On each, on TLS 1.3 and on TLS 1.2: 50 mixed transfers in one
//! session, plus listing, SIZE, MDTM, MKD, rename, DELE, RMD, resume and append; active
//! mode; PROT C. Implicit FTPS on vsftpd and ProFTPD; PROT C refused with 522 by a vsftpd
//! that requires protected data. Every file compared.
//!
//! `cargo xtask ci` installs vsftpd, extracts ProFTPD and Pure-FTPd (they conflict as
//! Debian packages) under target/interop-peers/root, passes that in `FTPS_PEERS_ROOT` and
//! sets `FTPS_REQUIRE_PEERS=1`. The servers log in system users, so the test needs root.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_proto::ProtectionLevel;
use ftps_proto::client::ConnectionMode;
use ftps_proto::tls::ClientIdentity;
use ftps_tokio::{Client, ClientOptions};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USER: &str = "ftpsinterop";
const PASSWORD: &str = "interop-Pass-7391";
const HELLO: &[u8] = b"hello from a real server\n";

fn required() -> bool {
    std::env::var_os("FTPS_REQUIRE_PEERS").is_some()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n")
}

/// The binary, if present; a missing one fails the test when peers are required.
fn binary(path: PathBuf) -> Option<PathBuf> {
    let ok = path.exists() && is_root();
    assert!(ok || !required(), "{} (and root) required", path.display());
    if !ok {
        eprintln!("{} or root missing: skipped", path.display());
    }
    ok.then_some(path)
}

fn peers_root() -> PathBuf {
    std::env::var_os("FTPS_PEERS_ROOT").map_or_else(|| PathBuf::from("/nonexistent"), PathBuf::from)
}

/// Creates the system user the servers log in, with a fresh home holding hello.txt.
fn system_user(home_name: &str) -> PathBuf {
    if Command::new("id")
        .arg(USER)
        .output()
        .is_ok_and(|o| !o.status.success())
    {
        assert!(
            Command::new("useradd")
                .args(["-M", "-s", "/bin/bash", USER])
                .status()
                .unwrap()
                .success()
        );
    }
    let mut chpasswd = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    chpasswd
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{USER}:{PASSWORD}\n").as_bytes())
        .unwrap();
    assert!(chpasswd.wait().unwrap().success());
    let home =
        std::env::temp_dir().join(format!("ftps-peer-home-{home_name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("hello.txt"), HELLO).unwrap();
    assert!(
        Command::new("usermod")
            .args(["-d"])
            .arg(&home)
            .arg(USER)
            .status()
            .unwrap()
            .success()
    );
    assert!(
        Command::new("chown")
            .args(["-R", &format!("{USER}:")])
            .arg(&home)
            .status()
            .unwrap()
            .success()
    );
    home
}

struct Peer {
    child: Child,
    dir: PathBuf,
    home: PathBuf,
    port: u16,
    ca: Vec<u8>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Started under setsid: the group id is the child's pid.
        let _ = Command::new("kill")
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes a certificate for localhost; returns (dir, cert path, key path, PEM).
fn workdir(name: &str) -> (PathBuf, PathBuf, PathBuf, Vec<u8>) {
    let dir = std::env::temp_dir().join(format!("ftps-peer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    (
        dir.clone(),
        dir.join("cert.pem"),
        dir.join("key.pem"),
        cert.pem().into_bytes(),
    )
}

fn spawn(program: &Path, args: &[String], port: u16) -> Child {
    let child = Command::new("setsid")
        .arg(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{} did not start",
            program.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn vsftpd(implicit: bool) -> Option<Peer> {
    vsftpd_with(implicit, None)
}

/// vsftpd; with `client_ca`, it requires a client certificate signed by that CA.
fn vsftpd_with(implicit: bool, client_ca: Option<&str>) -> Option<Peer> {
    let program = binary(PathBuf::from("/usr/sbin/vsftpd"))?;
    let name = match (implicit, client_ca.is_some()) {
        (true, _) => "vsftpd-implicit",
        (false, true) => "vsftpd-cert",
        (false, false) => "vsftpd",
    };
    let home = system_user(name);
    let (dir, cert, key, ca) = workdir(name);
    std::process::Command::new("chmod")
        .arg("555")
        .arg(dir.join("empty"))
        .status()
        .unwrap();
    let port = free_port();
    let config = format!(
        "listen=YES\nlisten_address=127.0.0.1\nlisten_port={port}\nbackground=NO\nlocal_enable=YES\nwrite_enable=YES\n\
         chroot_local_user=YES\nallow_writeable_chroot=YES\nsecure_chroot_dir={}\npam_service_name=vsftpd\n\
         pasv_min_port=31000\npasv_max_port=31999\nssl_enable=YES\nrsa_cert_file={}\nrsa_private_key_file={}\n\
         ssl_ciphers=HIGH:!aNULL:!MD5\nrequire_ssl_reuse=YES\nforce_local_logins_ssl=YES\nforce_local_data_ssl={}\n\
         seccomp_sandbox=NO\nlocal_umask=022\nimplicit_ssl={}\n",
        dir.join("empty").display(),
        cert.display(),
        key.display(),
        // The explicit one allows PROT C (tested); the implicit one refuses it (tested).
        if implicit { "YES" } else { "NO" },
        if implicit { "YES" } else { "NO" },
    );
    let config = match client_ca {
        Some(ca) => {
            std::fs::write(dir.join("client-ca.pem"), ca).unwrap();
            format!(
                "{config}require_cert=YES\nvalidate_cert=YES\nca_certs_file={}\n",
                dir.join("client-ca.pem").display()
            )
        }
        None => config,
    };
    std::fs::write(dir.join("vsftpd.conf"), config).unwrap();
    let child = spawn(
        &program,
        &[dir.join("vsftpd.conf").display().to_string()],
        port,
    );
    Some(Peer {
        child,
        dir,
        home,
        port,
        ca,
    })
}

fn proftpd(implicit: bool) -> Option<Peer> {
    let root = peers_root();
    let program = binary(root.join("usr/sbin/proftpd"))?;
    let name = if implicit {
        "proftpd-implicit"
    } else {
        "proftpd"
    };
    let home = system_user(name);
    let (dir, cert, key, ca) = workdir(name);
    let port = free_port();
    let config = format!(
        "ServerName \"ftps interop\"\nServerType standalone\nPort {port}\nDefaultAddress 127.0.0.1\nSocketBindTight on\n\
         User nobody\nGroup nogroup\nModulePath {modules}\nLoadModule mod_tls.c\nAuthOrder mod_auth_unix.c\n\
         RequireValidShell off\nDefaultRoot ~\nPassivePorts 32400 32999\nScoreboardFile {dir}/scoreboard\n\
         PidFile {dir}/pid\nWtmpLog off\nUseIPv6 off\nDelayTable none\n<Directory />\n  AllowOverwrite on\n  AllowStoreRestart on\n</Directory>\n\
         TLSEngine on\nTLSProtocol TLSv1.2 TLSv1.3\nTLSECCertificateFile {cert}\nTLSECCertificateKeyFile {key}\n\
         TLSRequired ctrl\nTLSVerifyClient off\n{implicit}",
        implicit = if implicit {
            "TLSOptions UseImplicitSSL\n"
        } else {
            ""
        },
        modules = root.join("usr/lib/proftpd").display(),
        dir = dir.display(),
        cert = cert.display(),
        key = key.display(),
    );
    std::fs::write(dir.join("proftpd.conf"), config).unwrap();
    let child = spawn(
        &program,
        &[
            "-n".into(),
            "-c".into(),
            dir.join("proftpd.conf").display().to_string(),
        ],
        port,
    );
    Some(Peer {
        child,
        dir,
        home,
        port,
        ca,
    })
}

fn pure_ftpd() -> Option<Peer> {
    let program = binary(peers_root().join("usr/sbin/pure-ftpd"))?;
    let home = system_user("pureftpd");
    let (dir, cert, key, ca) = workdir("pureftpd");
    let port = free_port();
    let args: Vec<String> = [
        "-S".to_owned(),
        format!("127.0.0.1,{port}"),
        "-l".into(),
        "unix".into(),
        "-A".into(),
        "-E".into(),
        "-Y".into(),
        "2".into(),
        "-2".into(),
        format!("{},{}", cert.display(), key.display()),
        "-J".into(),
        "HIGH:!aNULL:!MD5".into(),
        "-p".into(),
        "33000:33999".into(),
        "-P".into(),
        "127.0.0.1".into(),
    ]
    .into();
    let child = spawn(&program, &args, port);
    Some(Peer {
        child,
        dir,
        home,
        port,
        ca,
    })
}

fn options(p: &Peer, versions: &[&'static rustls::SupportedProtocolVersion]) -> ClientOptions {
    let roots = ftps_tokio::client::roots_from_pem(&p.ca).unwrap();
    let config = ftps_tokio::client::client_config_with_versions(roots, versions).unwrap();
    let mut o = ClientOptions::new("localhost", p.port, USER, PASSWORD);
    o.mode = ConnectionMode::ExplicitRequired;
    o.tls = Some(Arc::new(config));
    o
}

async fn exercise(
    p: &Peer,
    name: &str,
    all_versions: &[&[&'static rustls::SupportedProtocolVersion]],
) {
    for &versions in all_versions {
        let tag = format!("{name} {:?}", versions[0].version);
        let mut c = Client::connect(options(p, versions))
            .await
            .unwrap_or_else(|e| panic!("{tag}: {e}"));
        assert!(c.is_secure());
        for i in 0..50u32 {
            let file = format!("up{}.bin", i % 7);
            let data: Vec<u8> = (0..(i * 4099 + 1))
                .map(|j| (j.wrapping_mul(31) ^ i) as u8)
                .collect();
            match i % 3 {
                0 => {
                    c.store(&file, &mut &data[..], 0, false)
                        .await
                        .unwrap_or_else(|e| panic!("{tag} {i}: {e}"));
                    let mut back = Vec::new();
                    c.retrieve(&file, 0, &mut back)
                        .await
                        .unwrap_or_else(|e| panic!("{tag} {i}: {e}"));
                    assert_eq!(back, data, "{tag} transfer {i}");
                }
                1 => {
                    let mut out = Vec::new();
                    c.retrieve("hello.txt", 0, &mut out)
                        .await
                        .unwrap_or_else(|e| panic!("{tag} {i}: {e}"));
                    assert_eq!(out, HELLO, "{tag} transfer {i}");
                }
                _ => {
                    let names = c
                        .nlst(None)
                        .await
                        .unwrap_or_else(|e| panic!("{tag} {i}: {e}"));
                    assert!(
                        names.iter().any(|n| n.ends_with("hello.txt")),
                        "{tag} {i}: {names:?}"
                    );
                }
            }
        }
        assert_eq!(
            c.size("hello.txt").await.unwrap(),
            HELLO.len() as u64,
            "{tag}"
        );
        c.modified("hello.txt").await.unwrap();
        c.mkdir("d").await.unwrap();
        c.rename("up0.bin", "d/moved.bin").await.unwrap();
        c.delete("d/moved.bin").await.unwrap();
        c.rmdir("d").await.unwrap();
        c.store("resume.bin", &mut &b"01234"[..], 0, false)
            .await
            .unwrap();
        c.store("resume.bin", &mut &b"56789"[..], 5, false)
            .await
            .unwrap();
        let mut tail = Vec::new();
        c.retrieve("resume.bin", 7, &mut tail).await.unwrap();
        assert_eq!(tail, b"789", "{tag}");
        c.store("resume.bin", &mut &b"+app"[..], 0, true)
            .await
            .unwrap();
        assert_eq!(c.size("resume.bin").await.unwrap(), 14, "{tag}");
        assert!(
            c.list(None)
                .await
                .unwrap()
                .iter()
                .any(|e| e.name == "hello.txt"),
            "{tag}"
        );
        if c.features().supports("MLST") {
            let facts = c.mlsd(None).await.unwrap();
            assert!(
                facts
                    .iter()
                    .any(|e| e.pathname == "hello.txt" && e.size() == Some(HELLO.len() as u64)),
                "{tag}"
            );
        }
        let renewals = c.session_renewals();
        eprintln!("{tag}: control connection renewed {renewals} times");
        if name != "proftpd" {
            assert_eq!(renewals, 0, "{tag}: the server renews tickets");
        }
        c.quit().await.unwrap();

        // Active mode: the server connects back to the client's listener.
        let mut o = options(p, versions);
        o.passive = false;
        let mut c = Client::connect(o)
            .await
            .unwrap_or_else(|e| panic!("{tag} active: {e}"));
        for i in 0..5u32 {
            let data: Vec<u8> = (0..(i * 70_001 + 3)).map(|j| (j ^ (i * 7)) as u8).collect();
            c.store("active.bin", &mut &data[..], 0, false)
                .await
                .unwrap_or_else(|e| panic!("{tag} active {i}: {e}"));
            let mut back = Vec::new();
            c.retrieve("active.bin", 0, &mut back)
                .await
                .unwrap_or_else(|e| panic!("{tag} active {i}: {e}"));
            assert_eq!(back, data, "{tag} active transfer {i}");
        }
        c.quit().await.unwrap();

        // PROT C: data in clear (the servers here allow it), the control connection in TLS.
        let mut o = options(p, versions);
        o.protection = ProtectionLevel::Clear;
        let mut c = Client::connect(o)
            .await
            .unwrap_or_else(|e| panic!("{tag} PROT C: {e}"));
        assert!(c.is_secure());
        for i in 0..3u32 {
            let data: Vec<u8> = (0..(i * 100_003 + 5))
                .map(|j| (j ^ (i * 3)) as u8)
                .collect();
            c.store("clear.bin", &mut &data[..], 0, false)
                .await
                .unwrap_or_else(|e| panic!("{tag} PROT C {i}: {e}"));
            let mut back = Vec::new();
            c.retrieve("clear.bin", 0, &mut back)
                .await
                .unwrap_or_else(|e| panic!("{tag} PROT C {i}: {e}"));
            assert_eq!(back, data, "{tag} PROT C transfer {i}");
        }
        assert!(
            c.nlst(None)
                .await
                .unwrap()
                .iter()
                .any(|n| n.ends_with("clear.bin")),
            "{tag} PROT C"
        );
        c.quit().await.unwrap();
    }
}

const TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
const TLS12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
const BOTH: &[&[&rustls::SupportedProtocolVersion]] = &[TLS13, TLS12];

/// Implicit FTPS: transfers and a listing on TLS 1.3 and 1.2.
async fn implicit(p: &Peer, name: &str) {
    for versions in BOTH {
        let tag = format!("{name} implicit {:?}", versions[0].version);
        let mut o = options(p, versions);
        o.mode = ConnectionMode::Implicit;
        let mut c = Client::connect(o)
            .await
            .unwrap_or_else(|e| panic!("{tag}: {e}"));
        assert!(c.is_secure());
        for i in 0..10u32 {
            let data: Vec<u8> = (0..(i * 3001 + 1)).map(|j| (j ^ i) as u8).collect();
            c.store("imp.bin", &mut &data[..], 0, false)
                .await
                .unwrap_or_else(|e| panic!("{tag} {i}: {e}"));
            let mut back = Vec::new();
            c.retrieve("imp.bin", 0, &mut back)
                .await
                .unwrap_or_else(|e| panic!("{tag} {i}: {e}"));
            assert_eq!(back, data, "{tag} transfer {i}");
        }
        assert!(
            c.list(None)
                .await
                .unwrap()
                .iter()
                .any(|e| e.name == "hello.txt"),
            "{tag}"
        );
        c.quit().await.unwrap();
    }
}

// One test, so the servers (which share the system user) run one after the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_against_vsftpd_proftpd_and_pure_ftpd() {
    if let Some(p) = vsftpd(false) {
        exercise(&p, "vsftpd", BOTH).await;
    }
    // Implicit FTPS (TLS from the first byte) on a second vsftpd, which also requires
    // protected data connections.
    if let Some(p) = vsftpd(true) {
        implicit(&p, "vsftpd").await;
        let mut o = options(&p, TLS13);
        o.mode = ConnectionMode::Implicit;
        o.protection = ProtectionLevel::Clear;
        let mut c = Client::connect(o).await.unwrap();
        let err = c
            .retrieve("hello.txt", 0, &mut Vec::new())
            .await
            .unwrap_err();
        eprintln!("vsftpd implicit, PROT C refused: {err}");
        assert!(
            matches!(
                &err,
                ftps_tokio::client::Error::Protocol(ftps_proto::client::ClientError::Refused(r))
                    if r.code().get() == 522
            ),
            "{err:?}"
        );
        c.noop().await.unwrap();
    }
    // A client certificate, required by vsftpd.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ftps test client CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let client_key = rcgen::KeyPair::generate().unwrap();
    let mut client_params = rcgen::CertificateParams::new(Vec::new()).unwrap();
    client_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, USER);
    let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();
    if let Some(p) = vsftpd_with(false, Some(&ca.pem())) {
        let err = Client::connect(options(&p, TLS13)).await.unwrap_err();
        eprintln!("vsftpd require_cert, no client certificate: {err}");
        for versions in BOTH {
            let mut o = options(&p, versions);
            o.identity = Some(
                ClientIdentity::from_pem(
                    client_cert.pem().as_bytes(),
                    client_key.serialize_pem().as_bytes(),
                )
                .unwrap(),
            );
            let mut c = Client::connect(o)
                .await
                .unwrap_or_else(|e| panic!("vsftpd require_cert {versions:?}: {e}"));
            for i in 0..4u32 {
                let data: Vec<u8> = (0..(i * 5003 + 1)).map(|j| (j ^ i) as u8).collect();
                c.store("cert.bin", &mut &data[..], 0, false).await.unwrap();
                let mut back = Vec::new();
                c.retrieve("cert.bin", 0, &mut back).await.unwrap();
                assert_eq!(back, data, "vsftpd require_cert transfer {i}");
            }
            c.quit().await.unwrap();
        }
    }
    if let Some(p) = proftpd(true) {
        implicit(&p, "proftpd").await;
    }
    if let Some(p) = proftpd(false) {
        // On TLS 1.3, ProFTPD 1.3.8 hands out no ticket on upload data connections, so the
        // client renews its control connection when the tickets run out.
        exercise(&p, "proftpd", BOTH).await;
        // CCC: this ProFTPD requires TLS on the control connection, so it refuses (534);
        // the refusal is typed and the session stays protected and usable.
        let mut c = Client::connect(options(&p, TLS13)).await.unwrap();
        let err = c.clear_control_channel().await.unwrap_err();
        assert!(
            matches!(
                &err,
                ftps_tokio::client::Error::Protocol(ftps_proto::client::ClientError::Refused(r))
                    if r.code().get() == 534
            ),
            "{err:?}"
        );
        assert!(c.is_secure());
        let mut out = Vec::new();
        c.retrieve("hello.txt", 0, &mut out).await.unwrap();
        assert_eq!(out, HELLO);
        c.quit().await.unwrap();
    }
    if let Some(p) = pure_ftpd() {
        exercise(&p, "pure-ftpd", BOTH).await;
    }
}
