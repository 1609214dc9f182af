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
//! - Client-only and server-only builds of the runtime crates (`--features client` or
//!   `server`); a client-only build's normal dependencies (`cargo tree -e normal`) must
//!   hold none of the server's: no Argon2, no `cap-std`, no metrics.
//! - Client-only builds of the runtime crates for Windows (`x86_64-pc-windows-gnu`, on
//!   ring and on aws-lc-rs; `cargo check`, the C parts compiled by MinGW): the client
//!   uses nothing of `std::os::unix`. The target and MinGW are installed here when
//!   missing (rustup, apt). The server is Unix-only.

use crate::run::{cargo, output, root, status};

/// Crates only the server needs: a client-only build that pulls one has a leak.
const SERVER_ONLY: [&str; 4] = ["argon2", "password-hash", "cap-std", "metrics"];

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
    let check = |package: &str, features: &str| {
        status(cargo().args([
            "check",
            "--quiet",
            "-p",
            package,
            "--no-default-features",
            "--features",
            features,
        ]))
    };
    check("ftps-cli", "ring")?;
    for package in ["ftps-tokio", "ftps-blocking", "ftps-smol"] {
        check(package, "ring,client,server")?;
        check(package, "client,server")?;
        check(package, "server,aws-lc-rs")?;
        check(package, "client,aws-lc-rs")?;
        let tree = output(cargo().args([
            "tree",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-p",
            package,
            "--no-default-features",
            "--features",
            "client,aws-lc-rs",
        ]))?;
        let leaked: Vec<&str> = tree
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|name| SERVER_ONLY.contains(name))
            .collect();
        if !leaked.is_empty() {
            return Err(format!(
                "{package} built for the client alone depends on {leaked:?}"
            ));
        }
        println!("{package}, client only: none of {SERVER_ONLY:?} among its dependencies");
    }
    windows()
}

/// The Windows target checked (see the module's documentation).
const WINDOWS: &str = "x86_64-pc-windows-gnu";

/// Client-only builds of the runtime crates, checked for Windows.
fn windows() -> Result<(), String> {
    crate::peers::ensure(&[("x86_64-w64-mingw32-gcc", "gcc-mingw-w64-x86-64")])?;
    status(std::process::Command::new("rustup").args(["target", "add", WINDOWS]))?;
    for package in ["ftps-tokio", "ftps-blocking", "ftps-smol"] {
        for provider in ["ring", "aws-lc-rs"] {
            status(cargo().args([
                "check",
                "--quiet",
                "--target",
                WINDOWS,
                "-p",
                package,
                "--no-default-features",
                "--features",
                &format!("client,{provider}"),
            ]))?;
        }
        println!("{package}, client only: builds for {WINDOWS}");
    }
    Ok(())
}
