//! The tokio client against real servers: vsftpd (`require_ssl_reuse=YES`), ProFTPD with
//! mod_tls (session reuse required by default) and Pure-FTPd (`-Y 3`, TLS required on
//! control and data). On each: 50 mixed transfers in one session on TLS 1.3 and on TLS 1.2
//! (ProFTPD: TLS 1.2 only so far),
//! plus listing, SIZE, MDTM, MKD, rename, DELE, RMD, resume and append, every file
//! compared.
//!
//! `cargo xtask ci` installs vsftpd, extracts ProFTPD and Pure-FTPd (they conflict as
//! Debian packages) under target/interop-peers/root, passes that in `FTPS_PEERS_ROOT` and
//! sets `FTPS_REQUIRE_PEERS=1`. The servers log in system users, so the test needs root.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_proto::client::ConnectionMode;
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
    let program = binary(PathBuf::from("/usr/sbin/vsftpd"))?;
    let name = if implicit {
        "vsftpd-implicit"
    } else {
        "vsftpd"
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
         ssl_ciphers=HIGH:!aNULL:!MD5\nrequire_ssl_reuse=YES\nforce_local_logins_ssl=YES\nforce_local_data_ssl=YES\n\
         seccomp_sandbox=NO\nlocal_umask=022\nimplicit_ssl={}\n",
        dir.join("empty").display(),
        cert.display(),
        key.display(),
        if implicit { "YES" } else { "NO" },
    );
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

fn proftpd() -> Option<Peer> {
    let root = peers_root();
    let program = binary(root.join("usr/sbin/proftpd"))?;
    let home = system_user("proftpd");
    let (dir, cert, key, ca) = workdir("proftpd");
    let port = free_port();
    let config = format!(
        "ServerName \"ftps interop\"\nServerType standalone\nPort {port}\nDefaultAddress 127.0.0.1\nSocketBindTight on\n\
         User nobody\nGroup nogroup\nModulePath {modules}\nLoadModule mod_tls.c\nAuthOrder mod_auth_unix.c\n\
         RequireValidShell off\nDefaultRoot ~\nPassivePorts 32400 32999\nScoreboardFile {dir}/scoreboard\n\
         PidFile {dir}/pid\nWtmpLog off\nUseIPv6 off\nDelayTable none\n<Directory />\n  AllowOverwrite on\n  AllowStoreRestart on\n</Directory>\n\
         TLSEngine on\nTLSProtocol TLSv1.2 TLSv1.3\nTLSECCertificateFile {cert}\nTLSECCertificateKeyFile {key}\n\
         TLSRequired on\nTLSVerifyClient off\n",
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
        "3".into(),
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
    }
}

const TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
const TLS12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
const BOTH: &[&[&rustls::SupportedProtocolVersion]] = &[TLS13, TLS12];

// One test, so the servers (which share the system user) run one after the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_against_vsftpd_proftpd_and_pure_ftpd() {
    if let Some(p) = vsftpd(false) {
        exercise(&p, "vsftpd", BOTH).await;
    }
    // Implicit FTPS (TLS from the first byte) on a second vsftpd.
    if let Some(p) = vsftpd(true) {
        for versions in BOTH {
            let mut o = options(&p, versions);
            o.mode = ConnectionMode::Implicit;
            let mut c = Client::connect(o)
                .await
                .unwrap_or_else(|e| panic!("vsftpd implicit: {e}"));
            for i in 0..10u32 {
                let data: Vec<u8> = (0..(i * 3001 + 1)).map(|j| (j ^ i) as u8).collect();
                c.store("imp.bin", &mut &data[..], 0, false).await.unwrap();
                let mut back = Vec::new();
                c.retrieve("imp.bin", 0, &mut back).await.unwrap();
                assert_eq!(back, data, "vsftpd implicit transfer {i}");
            }
            assert!(
                c.list(None)
                    .await
                    .unwrap()
                    .iter()
                    .any(|e| e.name == "hello.txt")
            );
            c.quit().await.unwrap();
        }
    }
    if let Some(p) = proftpd() {
        // TLS 1.2 only for now: on TLS 1.3, the data connection after an upload is not
        // resumed as ProFTPD wants ("client did not reuse TLS session"); under study.
        exercise(&p, "proftpd", &[TLS12]).await;
    }
    if let Some(p) = pure_ftpd() {
        exercise(&p, "pure-ftpd", BOTH).await;
    }
}
