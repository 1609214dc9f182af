//! Real FTP peers the tests run against, installed from Debian's packages when missing.

use crate::run::status;
use std::process::Command;

/// The real clients the server is tested with: (program, Debian package).
pub(crate) const CLIENTS: &[(&str, &str)] =
    &[("curl", "curl"), ("lftp", "lftp"), ("python3", "python3")];

/// The real servers the client is tested against: (program, Debian package).
pub(crate) const SERVERS: &[(&str, &str)] = &[("/usr/sbin/vsftpd", "vsftpd")];

/// `cargo xtask interop`: our server against curl, lftp and Python's ftplib, and our
/// client against vsftpd.
pub(crate) fn interop() -> Result<(), String> {
    ensure(CLIENTS)?;
    ensure(SERVERS)?;
    let python = python_servers()?;
    status(
        crate::run::cargo()
            .args([
                "test",
                "-p",
                "ftps-tokio",
                "--test",
                "curl",
                "--test",
                "vsftpd",
                "--test",
                "pyftpdlib",
                "-p",
                "ftps-cli",
                "--test",
                "interop",
            ])
            .env("FTPS_REQUIRE_PEERS", "1")
            .env("FTPS_PYTHON", python),
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
