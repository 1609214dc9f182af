//! Real FTP peers the tests run against, installed from Debian's packages when missing.

use crate::run::status;
use std::process::Command;

fn present(program: &str) -> bool {
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
