//! Real FTPS servers for the interop tests: vsftpd (installed), ProFTPD and Pure-FTPd
//! (extracted under `FTPS_PEERS_ROOT` by `cargo xtask ci`) and pyftpdlib (`FTPS_PYTHON`),
//! each started on a free loopback port with a fresh certificate made the way admins make
//! them (`openssl req -x509`, which marks it `CA:TRUE`). The C servers log in system users,
//! so they need root: each [`Peer`] gets a system user of its own (created for it, deleted
//! when it stops), so servers may run in parallel threads, and in parallel test
//! processes. With `FTPS_REQUIRE_PEERS` set, a missing peer is a failure, not a skip.

#![allow(clippy::unwrap_used)] // Test support: a broken environment fails loudly.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The password of every peer's user.
pub const PASSWORD: &str = "interop-Pass-7391";
/// The file every served home holds.
pub const HELLO: &[u8] = b"hello from a real server\n";
/// The prefix of the system users made for peers: `ftpsp-PID-N`.
const USER_PREFIX: &str = "ftpsp-";

/// Whether the peers are required (`FTPS_REQUIRE_PEERS`): then a missing one fails.
pub fn required() -> bool {
    std::env::var_os("FTPS_REQUIRE_PEERS").is_some()
}

/// Whether `program` is installed: it runs and `program --version` succeeds.
pub fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `program` (a client the tests run: curl, lftp, ...) is installed; a missing
/// one fails the test when peers are [`required`], else the test is skipped, saying so.
pub fn have(program: &str) -> bool {
    let found = installed(program);
    assert!(
        found || !required(),
        "{program} is required but not installed"
    );
    if !found {
        eprintln!("{program} not installed: skipped");
    }
    found
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

/// A number unique in this process, for names.
fn unique() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Serialises this process's changes to the user database (the tools lock it, and fail
/// rather than wait when another one holds the lock).
static USER_DB: Mutex<()> = Mutex::new(());

/// Runs a user-database tool, retrying for a while when another process holds the lock.
fn user_tool(program: &str, args: &[&str], stdin: Option<&str>) -> bool {
    let _guard = USER_DB
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut child = Command::new(program)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            return true;
        }
        if Instant::now() > deadline {
            eprintln!(
                "{program} {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Deletes the peer users left by test processes that no longer run (killed ones).
fn remove_stale_users() {
    let Ok(passwd) = std::fs::read_to_string("/etc/passwd") else {
        return;
    };
    for name in passwd.lines().filter_map(|l| l.split(':').next()) {
        let Some(pid) = name
            .strip_prefix(USER_PREFIX)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            user_tool("userdel", &["-f", name], None);
        }
    }
}

/// Creates a system user of its own for a peer, with a fresh home holding hello.txt;
/// returns (user, home). [`Peer`] deletes the user when it is dropped.
pub fn system_user(home_name: &str) -> (String, PathBuf) {
    static CLEANED: std::sync::Once = std::sync::Once::new();
    CLEANED.call_once(remove_stale_users);
    let user = format!("{USER_PREFIX}{}-{}", std::process::id(), unique());
    let home = std::env::temp_dir().join(format!(
        "ftps-peer-home-{home_name}-{}-{}",
        std::process::id(),
        unique()
    ));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("hello.txt"), HELLO).unwrap();
    let home_arg = home.display().to_string();
    assert!(
        user_tool(
            "useradd",
            &["-M", "-d", &home_arg, "-s", "/bin/bash", &user],
            None
        ),
        "useradd {user} failed"
    );
    assert!(
        user_tool("chpasswd", &[], Some(&format!("{user}:{PASSWORD}\n"))),
        "chpasswd {user} failed"
    );
    chown(&user, &home);
    (user, home)
}

/// Gives `user` everything under `dir`.
fn chown(user: &str, dir: &Path) {
    assert!(
        Command::new("chown")
            .args(["-R", &format!("{user}:")])
            .arg(dir)
            .status()
            .unwrap()
            .success()
    );
}

/// A running server; stopped, with its files (and its system user) removed, when dropped.
pub struct Peer {
    child: Child,
    dir: PathBuf,
    /// Whether `user` is a system user made for this peer (deleted on drop).
    system_user: bool,
    /// The user to log in as (with [`PASSWORD`]).
    pub user: String,
    /// The user's home (the directory served).
    pub home: PathBuf,
    /// The control port.
    pub port: u16,
    /// The server's certificate (PEM), to trust.
    pub ca: Vec<u8>,
    /// The file holding `ca`.
    pub cert: PathBuf,
}

impl Peer {
    /// The server's process id (the leader of its session: it was started under setsid).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Gives the peer's user what a test wrote into its home as root.
    pub fn chown_home(&self) {
        if self.system_user {
            chown(&self.user, &self.home);
        }
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
        if self.system_user {
            user_tool("userdel", &["-f", &self.user], None);
        }
    }
}

/// The first port of the kernel's ephemeral range (outgoing connections draw from it, so
/// a port picked below it is not taken by one between the pick and its bind).
pub fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768)
}

/// A free loopback port.
///
/// The peers' passive ranges (vsftpd 31000-31999, ProFTPD 30000-30999, Pure-FTPd
/// 29000-29999) lie below Linux's ephemeral range (32768-60999 by default): a passive
/// port inside it can be held by some outgoing connection, and the peer then answers
/// `425 Address already in use` (seen once in CI from ProFTPD at 32400-32999).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh directory with a certificate for localhost and 127.0.0.1, made as server
/// guides (vsftpd's, ProFTPD's) tell admins to make one:
/// `openssl req -x509 -newkey rsa:2048 -nodes`, whose defaults mark it `CA:TRUE`.
/// Returns (dir, cert path, key path, PEM).
pub fn workdir(name: &str) -> (PathBuf, PathBuf, PathBuf, Vec<u8>) {
    let dir = std::env::temp_dir().join(format!(
        "ftps-peer-{name}-{}-{}",
        std::process::id(),
        unique()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdin(Stdio::null())
        .output()
        .expect("the openssl command (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = std::fs::read(&cert).unwrap();
    (dir, cert, key, pem)
}

/// Starts `program` in its own process group and waits until `port` accepts.
pub fn spawn(program: &Path, args: &[String], port: u16) -> Child {
    let mut child = Command::new("setsid")
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline || child.try_wait().is_ok_and(|s| s.is_some()) {
            let _ = Command::new("kill")
                .arg("--")
                .arg(format!("-{}", child.id()))
                .status();
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} did not start", program.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// How a peer is set up.
#[derive(Clone, Copy, Debug)]
pub struct Spec<'a> {
    /// Implicit FTPS (TLS from the first byte) instead of explicit (`AUTH TLS`).
    pub implicit: bool,
    /// Whether data connections must resume the control connection's TLS session
    /// (vsftpd's `require_ssl_reuse`; ProFTPD's default, `NoSessionReuseRequired` when
    /// false). Pure-FTPd and pyftpdlib never require it.
    pub reuse: bool,
    /// vsftpd only: require a client certificate signed by this CA (PEM).
    pub client_ca: Option<&'a str>,
    /// vsftpd only: lines appended to its configuration.
    pub extra: &'a str,
}

impl Default for Spec<'_> {
    fn default() -> Self {
        Spec {
            implicit: false,
            reuse: true,
            client_ca: None,
            extra: "",
        }
    }
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
    vsftpd_spec(Spec {
        implicit,
        client_ca,
        extra,
        ..Spec::default()
    })
}

/// vsftpd as `spec` says (the implicit one also requires protected data).
pub fn vsftpd_spec(spec: Spec<'_>) -> Option<Peer> {
    let program = binary(PathBuf::from("/usr/sbin/vsftpd"))?;
    let name = format!(
        "vsftpd{}{}{}",
        if spec.implicit { "-implicit" } else { "" },
        if spec.reuse { "" } else { "-noreuse" },
        if spec.client_ca.is_some() {
            "-cert"
        } else {
            ""
        },
    );
    let (user, home) = system_user(&name);
    let (dir, cert, key, ca) = workdir(&name);
    std::process::Command::new("chmod")
        .arg("555")
        .arg(dir.join("empty"))
        .status()
        .unwrap();
    let port = free_port();
    let yes = |b: bool| if b { "YES" } else { "NO" };
    let config = format!(
        "listen=YES\nlisten_address=127.0.0.1\nlisten_port={port}\nbackground=NO\nlocal_enable=YES\nwrite_enable=YES\n\
         chroot_local_user=YES\nallow_writeable_chroot=YES\nsecure_chroot_dir={}\npam_service_name=vsftpd\n\
         pasv_min_port=31000\npasv_max_port=31999\nssl_enable=YES\nrsa_cert_file={}\nrsa_private_key_file={}\n\
         ssl_ciphers=HIGH:!aNULL:!MD5\nrequire_ssl_reuse={}\nforce_local_logins_ssl=YES\nforce_local_data_ssl={}\n\
         seccomp_sandbox=NO\nlocal_umask=022\nimplicit_ssl={}\n",
        dir.join("empty").display(),
        cert.display(),
        key.display(),
        yes(spec.reuse),
        // The explicit one allows PROT C (tested); the implicit one refuses it (tested).
        yes(spec.implicit),
        yes(spec.implicit),
    );
    let config = match spec.client_ca {
        Some(ca) => {
            std::fs::write(dir.join("client-ca.pem"), ca).unwrap();
            format!(
                "{config}require_cert=YES\nvalidate_cert=YES\nca_certs_file={}\n",
                dir.join("client-ca.pem").display()
            )
        }
        None => config,
    };
    std::fs::write(dir.join("vsftpd.conf"), config + spec.extra).unwrap();
    let child = spawn(
        &program,
        &[dir.join("vsftpd.conf").display().to_string()],
        port,
    );
    Some(Peer {
        child,
        dir,
        system_user: true,
        user,
        home,
        port,
        ca,
        cert,
    })
}

/// ProFTPD with mod_tls (TLS required on the control connection, session reuse required by default), explicit or implicit.
pub fn proftpd(implicit: bool) -> Option<Peer> {
    proftpd_spec(Spec {
        implicit,
        ..Spec::default()
    })
}

/// ProFTPD with mod_tls (TLS required on the control connection) and mod_digest (HASH) as
/// `spec` says.
pub fn proftpd_spec(spec: Spec<'_>) -> Option<Peer> {
    let root = peers_root();
    let program = binary(root.join("usr/sbin/proftpd"))?;
    let name = format!(
        "proftpd{}{}",
        if spec.implicit { "-implicit" } else { "" },
        if spec.reuse { "" } else { "-noreuse" },
    );
    let (user, home) = system_user(&name);
    let (dir, cert, key, ca) = workdir(&name);
    let port = free_port();
    let options: Vec<&str> = [
        spec.implicit.then_some("UseImplicitSSL"),
        (!spec.reuse).then_some("NoSessionReuseRequired"),
    ]
    .into_iter()
    .flatten()
    .collect();
    // mod_digest (Debian ships it with proftpd-mod-crypto): HASH, OPTS HASH and RANG for
    // partial hashes (draft-bryan-ftpext-hash), XCRC/XMD5/XSHA*. Its cache is off, so
    // every HASH reads the file as it is.
    let digest = if root.join("usr/lib/proftpd/mod_digest.so").exists() {
        "LoadModule mod_digest.c\nDigestEngine on\nDigestCache off\n"
    } else {
        ""
    };
    let config = format!(
        "ServerName \"ftps interop\"\nServerType standalone\nPort {port}\nDefaultAddress 127.0.0.1\nSocketBindTight on\n\
         User nobody\nGroup nogroup\nModulePath {modules}\nLoadModule mod_tls.c\n{digest}AuthOrder mod_auth_unix.c\n\
         RequireValidShell off\nDefaultRoot ~\nPassivePorts 30000 30999\nScoreboardFile {dir}/scoreboard\n\
         PidFile {dir}/pid\nWtmpLog off\nUseIPv6 off\nDelayTable none\n<Directory />\n  AllowOverwrite on\n  AllowStoreRestart on\n</Directory>\n\
         TLSEngine on\nTLSProtocol TLSv1.2 TLSv1.3\nTLSRSACertificateFile {cert}\nTLSRSACertificateKeyFile {key}\n\
         TLSRequired ctrl\nTLSVerifyClient off\n{options}",
        options = if options.is_empty() {
            String::new()
        } else {
            format!("TLSOptions {}\n", options.join(" "))
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
        system_user: true,
        user,
        home,
        port,
        ca,
        cert,
    })
}

/// Pure-FTPd with TLS required on the control connection (`-Y 2`).
pub fn pure_ftpd() -> Option<Peer> {
    let program = binary(peers_root().join("usr/sbin/pure-ftpd"))?;
    let (user, home) = system_user("pureftpd");
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
        "29000:29999".into(),
        "-P".into(),
        "127.0.0.1".into(),
    ]
    .into();
    let child = spawn(&program, &args, port);
    Some(Peer {
        child,
        dir,
        system_user: true,
        user,
        home,
        port,
        ca,
        cert,
    })
}

/// The Python with pyftpdlib and pyOpenSSL (`FTPS_PYTHON`, else `python3`), if it has
/// them; missing ones fail the test when peers are required.
pub fn pyftpdlib_python() -> Option<String> {
    let candidate = std::env::var("FTPS_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&candidate)
        .args(["-c", "import pyftpdlib, OpenSSL"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok || !required(),
        "pyftpdlib is required but not installed (FTPS_PYTHON)"
    );
    if !ok {
        eprintln!("pyftpdlib not installed: skipped");
    }
    ok.then_some(candidate)
}

/// pyftpdlib's `TLS_FTPHandler`: TLS required on control and data connections.
const PYFTPDLIB: &str = r#"
import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import TLS_FTPHandler
from pyftpdlib.servers import FTPServer
root, port, cert, key, user, password = sys.argv[1:7]
auth = DummyAuthorizer()
auth.add_user(user, password, root, perm="elradfmwMT")
handler = TLS_FTPHandler
handler.certfile = cert
handler.keyfile = key
handler.authorizer = auth
handler.tls_control_required = True
handler.tls_data_required = True
server = FTPServer(("127.0.0.1", int(port)), handler)
server.serve_forever()
"#;

/// pyftpdlib (explicit FTPS only; it has no implicit mode and does not require session
/// reuse), user `alice` with [`PASSWORD`], serving a fresh directory holding hello.txt.
pub fn pyftpdlib() -> Option<Peer> {
    let python = pyftpdlib_python()?;
    let (dir, cert, key, ca) = workdir("pyftpdlib");
    let home = dir.join("root");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("hello.txt"), HELLO).unwrap();
    let port = free_port();
    let args: Vec<String> = [
        "-c".to_owned(),
        PYFTPDLIB.to_owned(),
        home.display().to_string(),
        port.to_string(),
        cert.display().to_string(),
        key.display().to_string(),
        "alice".into(),
        PASSWORD.into(),
    ]
    .into();
    let child = spawn(Path::new(&python), &args, port);
    Some(Peer {
        child,
        dir,
        system_user: false,
        user: "alice".into(),
        home,
        port,
        ca,
        cert,
    })
}
