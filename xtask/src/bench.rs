//! `cargo xtask bench [--quick] [-- BENCH OPTIONS]`: ftps-bench, our servers and clients
//! (the `ftps` binary among them) against vsftpd, Pure-FTPd, pyftpdlib, curl and lftp in
//! one run (the peers installed as the
//! interop job installs them); `--quick` is CI's small variant. `cargo xtask bench
//! --parsers [--quick]`: the criterion benchmarks of the parsers.

use crate::peers;
use crate::run::{cargo, status};

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    if args.iter().any(|a| a == "--parsers") {
        return parsers(quick);
    }
    let extra: Vec<&String> = match args.iter().position(|a| a == "--") {
        Some(i) => args[i + 1..].iter().collect(),
        None => {
            if let Some(other) = args.iter().find(|a| a.as_str() != "--quick") {
                return Err(format!("unknown option {other}"));
            }
            Vec::new()
        }
    };
    peers(quick, &extra)
}

/// The peer bench. Quick runs reuse the test build (dev profile); full runs are release.
pub(crate) fn peers(quick: bool, extra: &[&String]) -> Result<(), String> {
    peers::ensure(peers::BUILD)?;
    peers::ensure(peers::CLIENTS)?;
    peers::ensure(peers::SERVERS)?;
    let python = peers::python_servers()?;
    let peers_root = peers::extracted_servers()?;
    let json = crate::run::root()
        .join("target")
        .join("bench")
        .join(if quick {
            "quick.json"
        } else {
            "ftps-bench.json"
        });
    // The bench and the `ftps` binary (measured as users run it, beside curl and lftp),
    // built in one invocation: their dependencies' features unified, built once.
    let mut build = cargo();
    build.args(["build", "-p", "ftps-conformance", "--bin", "ftps-bench"]);
    build.args(["-p", "ftps-cli", "--bin", "ftps"]);
    if !quick {
        build.arg("--release");
    }
    status(&mut build)?;
    let bin = crate::run::root()
        .join("target")
        .join(if quick { "debug" } else { "release" });
    let mut cmd = std::process::Command::new(bin.join("ftps-bench"));
    cmd.current_dir(crate::run::root())
        .env("FTPS_CLI", bin.join("ftps"));
    if quick {
        cmd.arg("--quick");
    }
    // Files in memory (tmpfs): the bench measures the servers, not this machine's disk,
    // whose write-back throttled uploads to 100-300 MB/s here.
    if std::path::Path::new("/dev/shm").is_dir() {
        cmd.env("TMPDIR", "/dev/shm");
    }
    cmd.arg("--json")
        .arg(json)
        .args(extra)
        .env("FTPS_PYTHON", python)
        .env("FTPS_PEERS_ROOT", peers_root);
    status(&mut cmd)
}

fn parsers(quick: bool) -> Result<(), String> {
    let mut cmd = cargo();
    cmd.args(["bench", "-p", "ftps-proto", "--bench", "codec", "--"]);
    if quick {
        cmd.arg("--quick");
    }
    status(&mut cmd)
}
