//! Real FTPS servers for the interop tests: vsftpd (installed), ProFTPD and Pure-FTPd
//! (extracted under `FTPS_PEERS_ROOT` by `cargo xtask ci`), each started on a free
//! loopback port with a fresh certificate and a system user whose home it serves. They
//! log in system users, so they need root; with `FTPS_REQUIRE_PEERS` set, a missing one
//! is a failure, not a skip.

#![allow(clippy::unwrap_used)] // Test support: a broken environment fails loudly.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The system user the servers log in.
pub const USER: &str = "ftpsinterop";
/// Its password.
pub const PASSWORD: &str = "interop-Pass-7391";
/// The file every served home holds.
pub const HELLO: &[u8] = b"hello from a real server\n";

/// Whether the peers are required (`FTPS_REQUIRE_PEERS`): then a missing one fails.
pub fn required() -> bool {
    std::env::var_os("FTPS_REQUIRE_PEERS").is_some()
}

/// Whether this process runs as root (the servers log in system users).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n")
}

/// The binary, if present; a missing one fails the test when peers are required.
pub fn binary(path: PathBuf) -> Option<PathBuf> {
    let ok = path.exists() && is_root();
    assert!(ok || !required(), "{} (and root) required", path.display());
    if !ok {
        eprintln!("{} or root missing: skipped", path.display());
    }
    ok.then_some(path)
}

/// Where `cargo xtask ci` extracted ProFTPD and Pure-FTPd (`FTPS_PEERS_ROOT`).
pub fn peers_root() -> PathBuf {
    std::env::var_os("FTPS_PEERS_ROOT").map_or_else(|| PathBuf::from("/nonexistent"), PathBuf::from)
}

/// Creates the system user the servers log in, with a fresh home holding hello.txt.
pub fn system_user(home_name: &str) -> PathBuf {
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

/// A running server; stopped, with its files removed, when dropped.
pub struct Peer {
    child: Child,
    dir: PathBuf,
    /// The user's home (the directory served).
    pub home: PathBuf,
    /// The control port.
    pub port: u16,
    /// The server's certificate (PEM), to trust.
    pub ca: Vec<u8>,
}

impl Peer {
    /// The server's process id (the leader of its session: it was started under setsid).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
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

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes a certificate for localhost; returns (dir, cert path, key path, PEM).
pub fn workdir(name: &str) -> (PathBuf, PathBuf, PathBuf, Vec<u8>) {
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

/// Starts `program` in its own process group and waits until `port` accepts.
pub fn spawn(program: &Path, args: &[String], port: u16) -> Child {
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

/// vsftpd with `require_ssl_reuse=YES`, explicit or implicit (the implicit one also requires protected data).
pub fn vsftpd(implicit: bool) -> Option<Peer> {
    vsftpd_with(implicit, None)
}

/// vsftpd; with `client_ca`, it requires a client certificate signed by that CA.
pub fn vsftpd_with(implicit: bool, client_ca: Option<&str>) -> Option<Peer> {
    vsftpd_configured(implicit, client_ca, "")
}

/// vsftpd with `extra` lines appended to its configuration (the bench lifts its session
/// caps: `max_clients=0\nmax_per_ip=0\n`).
pub fn vsftpd_configured(implicit: bool, client_ca: Option<&str>, extra: &str) -> Option<Peer> {
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
    std::fs::write(dir.join("vsftpd.conf"), config + extra).unwrap();
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

/// ProFTPD with mod_tls (TLS required on the control connection, session reuse required by default), explicit or implicit.
pub fn proftpd(implicit: bool) -> Option<Peer> {
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

/// Pure-FTPd with TLS required on the control connection (`-Y 2`).
pub fn pure_ftpd() -> Option<Peer> {
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
