//! The proof that ftps-proto does no IO:
//!
//! 1. its normal dependency tree (all features) holds no runtime, socket or filesystem
//!    crate;
//! 2. clippy, with `ftps-proto/clippy.toml`'s `disallowed-methods` / `disallowed-types`
//!    (sockets, files, threads, processes, clocks), passes on it with those lints denied;
//! 3. a canary: the same clippy config on a scratch crate that does each forbidden thing
//!    must fail, once per kind, so a config that silently stopped working is caught.

use crate::run::{cargo, output, root, status};
use std::fs;

/// Crates that would mean IO, a runtime or the file system in the core's tree.
const FORBIDDEN_CRATES: &[&str] = &[
    "tokio",
    "tokio-util",
    "mio",
    "socket2",
    "async-std",
    "async-io",
    "async-net",
    "async-fs",
    "smol",
    "polling",
    "futures-io",
    "nix",
    "rustix",
    "tempfile",
    "walkdir",
    "fs-err",
    "notify",
    "hyper",
    "reqwest",
    "ureq",
];

/// The crate names in `cargo tree --prefix none` output that are forbidden.
fn forbidden_in_tree(tree: &str) -> Vec<String> {
    let mut found: Vec<String> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| FORBIDDEN_CRATES.contains(name))
        .map(str::to_owned)
        .collect();
    found.sort();
    found.dedup();
    found
}

/// What the canary crate does, and the lint each line must trip.
const CANARY: &[(&str, &str)] = &[
    (
        "let _ = std::net::TcpStream::connect(\"127.0.0.1:9\");",
        "std::net::TcpStream",
    ),
    (
        "let _ = std::net::UdpSocket::bind(\"127.0.0.1:0\");",
        "std::net::UdpSocket",
    ),
    ("let _ = std::fs::read(\"x\");", "std::fs::read"),
    ("let _ = std::fs::File::open(\"x\");", "std::fs::File"),
    (
        "let _ = std::time::Instant::now();",
        "std::time::Instant::now",
    ),
    (
        "let _ = std::time::SystemTime::now();",
        "std::time::SystemTime::now",
    ),
    ("std::thread::spawn(|| ());", "std::thread::spawn"),
    (
        "let _ = std::process::Command::new(\"true\");",
        "std::process::Command",
    ),
];

pub(crate) fn run() -> Result<(), String> {
    let tree = output(cargo().args([
        "tree",
        "-p",
        "ftps-proto",
        "-e",
        "normal",
        "--all-features",
        "--prefix",
        "none",
    ]))?;
    let found = forbidden_in_tree(&tree);
    if !found.is_empty() {
        return Err(format!(
            "ftps-proto's dependency tree holds IO crates: {found:?}"
        ));
    }
    eprintln!(
        "dependency tree: {} crates, none forbidden",
        tree.lines().count()
    );

    status(cargo().args([
        "clippy",
        "-p",
        "ftps-proto",
        "--all-features",
        "--lib",
        "--",
        "-D",
        "clippy::disallowed_methods",
        "-D",
        "clippy::disallowed_types",
    ]))?;

    canary()
}

/// Runs clippy with ftps-proto's config on a crate that does IO; every forbidden call must
/// be reported.
fn canary() -> Result<(), String> {
    let dir = root().join("target").join("xtask-io-canary");
    fs::create_dir_all(dir.join("src")).map_err(|e| e.to_string())?;
    fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"io-canary\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n[workspace]\n",
    )
    .map_err(|e| e.to_string())?;
    let config = fs::read_to_string(root().join("ftps-proto").join("clippy.toml"))
        .map_err(|e| format!("ftps-proto/clippy.toml: {e}"))?;
    fs::write(dir.join("clippy.toml"), config).map_err(|e| e.to_string())?;
    let body: String = CANARY
        .iter()
        .map(|(line, _)| format!("    {line}\n"))
        .collect();
    fs::write(
        dir.join("src").join("lib.rs"),
        format!(
            "//! IO canary.\n\n/// Does every forbidden thing.\npub fn forbidden() {{\n{body}}}\n"
        ),
    )
    .map_err(|e| e.to_string())?;

    let out = cargo()
        .current_dir(&dir)
        .args([
            "clippy",
            "--quiet",
            "--",
            "-D",
            "clippy::disallowed_methods",
            "-D",
            "clippy::disallowed_types",
        ])
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .output()
        .map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return Err(
            "IO canary: clippy passed on code that does IO; the disallowed config is not in force"
                .into(),
        );
    }
    let missed: Vec<&str> = CANARY
        .iter()
        .filter(|(_, path)| !stderr.contains(&format!("`{path}`")))
        .map(|(_, path)| *path)
        .collect();
    if !missed.is_empty() {
        return Err(format!(
            "IO canary: clippy did not flag {missed:?}:\n{stderr}"
        ));
    }
    eprintln!(
        "IO canary: clippy refused all {} kinds of IO, as it must",
        CANARY.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_crates_are_found_in_a_tree() {
        let tree = "ftps-proto v0.1.0 (/x)\nmemchr v2.7.4\ntokio v1.40.0\nmio v1.0.0\nnom v8.0.0\n";
        assert_eq!(forbidden_in_tree(tree), ["mio", "tokio"]);
        assert!(forbidden_in_tree("ftps-proto v0.1.0\nnom v8.0.0\nmemchr v2.7.4\n").is_empty());
    }
}
