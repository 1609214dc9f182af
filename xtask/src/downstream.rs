//! `cargo xtask downstream`: the crypto providers as users meet them.
//!
//! - `downstream/`, an application outside the workspace (so that its features are not
//!   unified with ours) that depends on ftps-tokio with its default features beside
//!   rustls with rustls' own defaults, and builds its own `ClientConfig::builder()`:
//!   that panics when two providers are compiled in (rustls issue 1877). It runs with
//!   the workspace's lock file and target directory (nothing built twice).
//! - The runtime crates and the CLI on ring alone (`--no-default-features --features
//!   ring`), and with no provider at all (the process default then), so that neither
//!   rots.

use crate::run::{cargo, root, status};

pub(crate) fn run() -> Result<(), String> {
    let dir = root().join("downstream");
    std::fs::copy(root().join("Cargo.lock"), dir.join("Cargo.lock"))
        .map_err(|e| format!("downstream/Cargo.lock: {e}"))?;
    status(
        cargo()
            .current_dir(&dir)
            .args(["run", "--quiet"])
            .env("CARGO_TARGET_DIR", root().join("target")),
    )?;
    for package in ["ftps-tokio", "ftps-blocking", "ftps-smol", "ftps-cli"] {
        status(cargo().args([
            "check",
            "--quiet",
            "-p",
            package,
            "--no-default-features",
            "--features",
            "ring",
        ]))?;
    }
    for package in ["ftps-tokio", "ftps-blocking", "ftps-smol"] {
        status(cargo().args(["check", "--quiet", "-p", package, "--no-default-features"]))?;
    }
    Ok(())
}
