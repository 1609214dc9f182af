//! Garage, the S3-compatible object store the object-store back-end is tested on: found,
//! or built once with `cargo install` (about 12 minutes on two cores) into
//! `~/.cargo/bin`. Tests start their own nodes on loopback
//! (`ftps_conformance::garage`).

use crate::run::status;
use std::path::PathBuf;
use std::process::Command;

/// The version built when none is installed.
const VERSION: &str = "2.5.0";

/// The garage binary: `FTPS_GARAGE`, `garage` on `PATH`, or `~/.cargo/bin/garage`;
/// built when there is none.
pub(crate) fn ensure() -> Result<PathBuf, String> {
    if let Some(found) = find() {
        return Ok(found);
    }
    eprintln!("garage is missing: building it (cargo install garage {VERSION}, ~12 minutes)");
    status(Command::new("cargo").args([
        "install",
        "garage",
        "--version",
        VERSION,
        "--locked",
        "--no-default-features",
        "--features",
        "bundled-libs,sqlite",
    ]))?;
    find().ok_or_else(|| "cargo install garage succeeded but no garage binary is found".into())
}

fn find() -> Option<PathBuf> {
    let works = |p: &PathBuf| {
        Command::new(p)
            .arg("--help")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if let Some(path) = std::env::var_os("FTPS_GARAGE") {
        return Some(PathBuf::from(path)).filter(works);
    }
    let dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin"));
    dirs.into_iter()
        .chain(home)
        .map(|d| d.join("garage"))
        .find(|p| p.is_file() && works(p))
}

/// `cargo xtask garage`: installs it if missing and says where it is.
pub(crate) fn run() -> Result<(), String> {
    let path = ensure()?;
    println!("{}", path.display());
    Ok(())
}
