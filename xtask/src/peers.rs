//! Real FTP peers the tests run against, installed from Debian's packages when missing.

use crate::run::status;
use std::process::Command;

/// What the build itself needs beyond a C compiler: `make` runs jemalloc's build (the
/// binaries' allocator, `tikv-jemalloc-sys`).
pub(crate) const BUILD: &[(&str, &str)] = &[("make", "make")];

/// The real clients the server is tested with: (program, Debian package); the SOCKS5
/// proxy our client is tested through (`Client::connect_via`); strace.
pub(crate) const CLIENTS: &[(&str, &str)] = &[
    ("curl", "curl"),
    ("lftp", "lftp"),
    ("python3", "python3"),
    ("/usr/bin/microsocks", "microsocks"),
    // How the `ftps` binary writes (one write per message on standard error) is read
    // off strace.
    ("strace", "strace"),
];

/// The real servers the client is tested against, installed as Debian packages:
/// (program, package). ProFTPD and Pure-FTPd conflict with vsftpd as packages, so they are
/// extracted instead (see [`extracted_servers`]); these are their libraries.
pub(crate) const SERVERS: &[(&str, &str)] = &[
    ("/usr/sbin/vsftpd", "vsftpd"),
    // The peers' certificates are made with `openssl req -x509`, as admins make them.
    ("/usr/bin/openssl", "openssl"),
    (
        "/usr/lib/x86_64-linux-gnu/libhiredis.so.0.14",
        "libhiredis0.14",
    ),
    (
        "/usr/lib/x86_64-linux-gnu/libmemcached.so.11",
        "libmemcached11",
    ),
    (
        "/usr/lib/x86_64-linux-gnu/libmemcachedutil.so.2",
        "libmemcachedutil2",
    ),
    (
        "/usr/lib/x86_64-linux-gnu/libpcre2-posix.so.3",
        "libpcre2-posix3",
    ),
];

/// What a fleet's tests run beside the server nodes: (program, Debian package). Redis for
/// the shared login lockout, HAProxy as the load balancer.
pub(crate) const FLEET: &[(&str, &str)] = &[
    ("/usr/bin/redis-server", "redis-server"),
    ("/usr/sbin/haproxy", "haproxy"),
];

/// Downloads ProFTPD (with mod_tls) and Pure-FTPd and extracts them under
/// target/interop-peers/root; returns that directory.
pub(crate) fn extracted_servers() -> Result<String, String> {
    let base = crate::run::root().join("target").join("interop-peers");
    let root = base.join("root");
    let ready = [
        "usr/sbin/proftpd",
        "usr/sbin/pure-ftpd",
        "usr/lib/proftpd/mod_tls.so",
    ]
    .iter()
    .all(|p| root.join(p).exists());
    if !ready {
        let debs = base.join("debs");
        std::fs::create_dir_all(&debs).map_err(|e| e.to_string())?;
        let packages = ["proftpd-core", "proftpd-mod-crypto", "pure-ftpd"];
        let download = |debs: &std::path::Path| {
            Command::new("apt-get")
                .arg("download")
                .args(packages)
                .current_dir(debs)
                .status()
                .is_ok_and(|s| s.success())
        };
        if !download(&debs) {
            status(Command::new("apt-get").args(["update", "-qq"]))?;
            if !download(&debs) {
                return Err(format!("apt-get download {packages:?} failed"));
            }
        }
        for entry in std::fs::read_dir(&debs).map_err(|e| e.to_string())? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.extension().is_some_and(|e| e == "deb") {
                status(Command::new("dpkg").arg("-x").arg(&path).arg(&root))?;
            }
        }
    }
    Ok(root.to_string_lossy().into_owned())
}

/// `cargo xtask fleet`: installs HAProxy and Redis (Debian's) and Garage if missing, then
/// runs the fleet test (`ftps-cli/tests/fleet.rs`) with its report.
pub(crate) fn fleet() -> Result<(), String> {
    ensure(CLIENTS)?;
    ensure(SERVERS)?;
    ensure(FLEET)?;
    let garage = crate::garage::ensure()?;
    status(
        crate::run::cargo()
            .args([
                "test",
                "-p",
                "ftps-cli",
                "--test",
                "fleet",
                "--",
                "--nocapture",
            ])
            .env("FTPS_REQUIRE_PEERS", "1")
            .env("FTPS_GARAGE", garage),
    )
}

/// `cargo xtask interop`: our server against curl, lftp and Python's ftplib, our
/// clients against vsftpd, ProFTPD, Pure-FTPd and pyftpdlib, and the `ftps` binary's
/// client commands against all of them and `ftps serve`.
pub(crate) fn interop() -> Result<(), String> {
    ensure(CLIENTS)?;
    ensure(SERVERS)?;
    let python = python_servers()?;
    let peers_root = extracted_servers()?;
    status(
        crate::run::cargo()
            .args([
                "test",
                "-p",
                "ftps-tokio",
                "--test",
                "curl",
                "--test",
                "pyftpdlib",
                "-p",
                "ftps-conformance",
                "--test",
                "real_servers",
                "--test",
                "real_clients",
                "-p",
                "ftps-cli",
                "--test",
                "interop",
                // ftps-cli's tests/real_servers.rs (the flag names the target in every
                // package given; ftps-conformance has one of that name too).
                "--test",
                "real_servers",
            ])
            .env("FTPS_REQUIRE_PEERS", "1")
            .env("FTPS_PYTHON", python)
            .env("FTPS_PEERS_ROOT", peers_root),
    )
}

fn present(program: &str) -> bool {
    if program.starts_with('/') {
        return std::path::Path::new(program).exists();
    }
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs the Debian packages for the programs that are missing.
pub(crate) fn ensure(programs: &[(&str, &str)]) -> Result<(), String> {
    let missing: Vec<&str> = programs
        .iter()
        .filter(|(p, _)| !present(p))
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing {missing:?}");
    status(Command::new("apt-get").arg("update").arg("-qq"))?;
    status(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    for (program, _) in programs {
        if !present(program) {
            return Err(format!("{program} is still missing after installing it"));
        }
    }
    Ok(())
}

/// A virtualenv (in target/) with pyftpdlib and pyOpenSSL; returns its python.
pub(crate) fn python_servers() -> Result<String, String> {
    let venv = crate::run::root().join("target").join("interop-venv");
    let python = venv.join("bin").join("python");
    let ready = Command::new(&python)
        .args(["-c", "import pyftpdlib, OpenSSL"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready {
        status(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        status(Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "pyftpdlib",
            "pyopenssl",
        ]))?;
    }
    Ok(python.to_string_lossy().into_owned())
}
