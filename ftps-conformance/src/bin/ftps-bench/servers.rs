//! The servers under test: ours (a child process per runtime, `ftps-bench serve`) and the
//! real peers (vsftpd, Pure-FTPd, pyftpdlib), each serving the same files.

use crate::serve;
use ftps_conformance::peers::{self, Peer};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

type Fail = Box<dyn std::error::Error>;

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// Our tokio server.
    Tokio,
    /// Our blocking (std threads) server.
    Blocking,
    /// Our smol server.
    Smol,
    /// vsftpd.
    Vsftpd,
    /// Pure-FTPd.
    PureFtpd,
    /// pyftpdlib (idle memory only).
    Pyftpdlib,
}

impl Kind {
    /// Every server, in the bench's order.
    pub(crate) const ALL: [Kind; 6] = [
        Kind::Tokio,
        Kind::Blocking,
        Kind::Smol,
        Kind::Vsftpd,
        Kind::PureFtpd,
        Kind::Pyftpdlib,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Tokio => "ours tokio",
            Kind::Blocking => "ours blocking",
            Kind::Smol => "ours smol",
            Kind::Vsftpd => "vsftpd",
            Kind::PureFtpd => "Pure-FTPd",
            Kind::Pyftpdlib => "pyftpdlib",
        }
    }

    pub(crate) fn ours(self) -> bool {
        matches!(self, Kind::Tokio | Kind::Blocking | Kind::Smol)
    }

    pub(crate) fn key(self) -> &'static str {
        match self {
            Kind::Tokio => "tokio",
            Kind::Blocking => "blocking",
            Kind::Smol => "smol",
            Kind::Vsftpd => "vsftpd",
            Kind::PureFtpd => "pure-ftpd",
            Kind::Pyftpdlib => "pyftpdlib",
        }
    }
}

enum Process {
    Ours { child: Child, _stdin: ChildStdin },
    Peer(Peer),
    Python(Child),
}

/// A running server; stopped when dropped.
pub(crate) struct Running {
    process: Process,
    /// The control port on 127.0.0.1.
    pub(crate) port: u16,
    /// The user and password it accepts.
    pub(crate) user: (String, String),
    /// Its certificate (PEM), to trust.
    pub(crate) ca: Vec<u8>,
    /// The directory it serves (uploads land here).
    pub(crate) home: PathBuf,
    /// The hash its user's password is checked against, where the bench can read it: a
    /// peer's system user's entry in /etc/shadow (written by chpasswd).
    pub(crate) shadow: Option<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        match &mut self.process {
            Process::Ours { child, .. } | Process::Python(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Process::Peer(_) => {}
        }
    }
}

impl Running {
    /// The processes the server runs in: the peers fork per session (vsftpd's session
    /// processes leave the session they were started in), so every descendant counts.
    pub(crate) fn pids(&self) -> Vec<u32> {
        let leader = match &self.process {
            Process::Ours { child, .. } | Process::Python(child) => return vec![child.id()],
            Process::Peer(peer) => peer.pid(),
        };
        let mut parents = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // After the command (which may hold spaces): state, ppid, ...
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|s| s.parse::<u32>().ok());
            if let Some(parent) = parent {
                parents.push((pid, parent));
            }
        }
        let mut family = vec![leader];
        // Each pass adds the children of those found; bounded by the number of processes.
        for _ in 0..parents.len() {
            let before = family.len();
            for (pid, parent) in &parents {
                if family.contains(parent) && !family.contains(pid) {
                    family.push(*pid);
                }
            }
            if family.len() == before {
                break;
            }
        }
        family
    }
}

/// What every server serves: the files of `data` (hard-linked into its home).
pub(crate) struct Start<'a> {
    /// The bench's own program, to run our servers.
    pub(crate) exe: &'a Path,
    /// The bench's directory: big.bin, small/, cert.pem, key.pem.
    pub(crate) data: &'a Path,
    /// The Python with pyftpdlib.
    pub(crate) python: Option<&'a str>,
}

const USER: &str = "bench";
const PASSWORD: &str = "bench-Pass-5521";

impl Start<'_> {
    pub(crate) fn start(&self, kind: Kind) -> Result<Running, Fail> {
        match kind {
            Kind::Tokio | Kind::Blocking | Kind::Smol => self.ours(kind),
            Kind::Vsftpd | Kind::PureFtpd => {
                let peer = if kind == Kind::Vsftpd {
                    // Its defaults cap sessions per address; the idle case holds hundreds.
                    peers::vsftpd_configured(false, None, "max_clients=0\nmax_per_ip=0\n")
                } else {
                    peers::pure_ftpd()
                }
                .ok_or("the peer is missing (run as root with FTPS_PEERS_ROOT)")?;
                link_files(self.data, &peer.home)?;
                chown(&peer.home, &peer.user)?;
                Ok(Running {
                    port: peer.port,
                    user: (peer.user.clone(), peers::PASSWORD.into()),
                    ca: peer.ca.clone(),
                    home: peer.home.clone(),
                    shadow: shadow_hash(&peer.user),
                    process: Process::Peer(peer),
                })
            }
            Kind::Pyftpdlib => self.python(),
        }
    }

    fn ours(&self, kind: Kind) -> Result<Running, Fail> {
        self.ours_as(kind, "", PASSWORD, None)
    }

    /// One of our servers whose user's password is checked against `hash` (a crypt(3)
    /// string, as the peers' users have) instead of an Argon2id hash; `password` matches it.
    pub(crate) fn ours_with_hash(
        &self,
        kind: Kind,
        password: &str,
        hash: &str,
    ) -> Result<Running, Fail> {
        self.ours_as(kind, "-crypt", password, Some(hash))
    }

    fn ours_as(
        &self,
        kind: Kind,
        suffix: &str,
        password: &str,
        hash: Option<&str>,
    ) -> Result<Running, Fail> {
        let home = self.data.join(format!("home-{}{suffix}", kind.key()));
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home)?;
        link_files(self.data, &home)?;
        let mut command = Command::new(self.exe);
        if let Some(hash) = hash {
            command.env(serve::HASH_ENV, hash);
        }
        let mut child = command
            .arg("serve")
            .arg(kind.key())
            .arg(&home)
            .arg(self.data.join("cert.pem"))
            .arg(self.data.join("key.pem"))
            .args([USER, password])
            // smol's executor runs one thread unless told; the others use both cores.
            .env("SMOL_THREADS", "2")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let port = ready_port(&mut child)?;
        Ok(Running {
            process: Process::Ours {
                child,
                _stdin: stdin,
            },
            port,
            user: (USER.into(), password.into()),
            ca: std::fs::read(self.data.join("cert.pem"))?,
            home,
            shadow: None,
        })
    }

    fn python(&self) -> Result<Running, Fail> {
        let python = self.python.ok_or("pyftpdlib is missing")?;
        let home = self.data.join("home-pyftpdlib");
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home)?;
        link_files(self.data, &home)?;
        let mut child = Command::new(python)
            .args(["-c", PYFTPDLIB])
            .arg(&home)
            .arg(self.data.join("cert.pem"))
            .arg(self.data.join("key.pem"))
            .args([USER, PASSWORD])
            .stdout(Stdio::piped())
            // It logs every command.
            .stderr(Stdio::null())
            .spawn()?;
        let port = ready_port(&mut child)?;
        Ok(Running {
            process: Process::Python(child),
            port,
            user: (USER.into(), PASSWORD.into()),
            ca: std::fs::read(self.data.join("cert.pem"))?,
            home,
            shadow: None,
        })
    }
}

const PYFTPDLIB: &str = r#"
import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import TLS_FTPHandler
from pyftpdlib.servers import FTPServer
root, cert, key, user, password = sys.argv[1:6]
auth = DummyAuthorizer()
auth.add_user(user, password, root, perm="elradfmwMT")
handler = TLS_FTPHandler
handler.certfile = cert
handler.keyfile = key
handler.authorizer = auth
handler.tls_control_required = True
server = FTPServer(("127.0.0.1", 0), handler)
server.max_cons = 20000
server.max_cons_per_ip = 0
print("ready", server.address[1], flush=True)
server.serve_forever()
"#;

/// `user`'s password hash in /etc/shadow (readable by root, as the peers run).
fn shadow_hash(user: &str) -> Option<String> {
    let shadow = std::fs::read_to_string("/etc/shadow").ok()?;
    shadow.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next() == Some(user))
            .then(|| fields.next().map(str::to_owned))
            .flatten()
    })
}

/// Reads `ready PORT` from the child's output.
fn ready_port(child: &mut Child) -> Result<u16, Fail> {
    let out = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line)?;
    line.trim()
        .strip_prefix("ready ")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("server did not start: {line:?}").into())
}

/// Hard-links big.bin and small/* into `home` (one copy of the bytes for every server).
fn link_files(data: &Path, home: &Path) -> Result<(), Fail> {
    std::fs::hard_link(data.join("big.bin"), home.join("big.bin"))?;
    std::fs::create_dir_all(home.join("small"))?;
    for entry in std::fs::read_dir(data.join("small"))? {
        let entry = entry?;
        std::fs::hard_link(entry.path(), home.join("small").join(entry.file_name()))?;
    }
    Ok(())
}

/// Gives the peers' user its home (uploads), leaving the linked files readable.
fn chown(home: &Path, user: &str) -> Result<(), Fail> {
    let ok = Command::new("chown")
        .arg(format!("{user}:"))
        .arg(home)
        .arg(home.join("small"))
        .status()?
        .success();
    if ok {
        Ok(())
    } else {
        Err("chown failed".into())
    }
}
