//! `cargo xtask ci`: every check CI runs, in order, stopping at the first failure.

use crate::run::{cargo, status, step};
use crate::{fuzz, io_check, peers};

pub(crate) fn run() -> Result<(), String> {
    peers::ensure(peers::BUILD)?;
    step("format");
    status(cargo().args(["fmt", "--all", "--check"]))?;

    step("clippy");
    status(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]))?;

    step("tests (unit, known-answer, proptest, in-memory sessions, real peers, doctests)");
    // The server's tests run real clients; missing ones are installed, and a test that
    // finds one missing fails instead of skipping.
    peers::ensure(peers::CLIENTS)?;
    peers::ensure(peers::SERVERS)?;
    peers::ensure(peers::FLEET)?;
    let python = peers::python_servers()?;
    let peers_root = peers::extracted_servers()?;
    let garage = crate::garage::ensure()?;
    status(
        cargo()
            .args(["test", "--workspace", "--all-features", "--all-targets"])
            .env("FTPS_REQUIRE_PEERS", "1")
            .env("FTPS_GARAGE", garage)
            .env("FTPS_PYTHON", python)
            .env("FTPS_PEERS_ROOT", peers_root),
    )?;
    status(cargo().args(["test", "--workspace", "--all-features", "--doc"]))?;

    step("crypto providers as users meet them");
    crate::downstream::run()?;

    step("load and faults");
    crate::load::run_with(crate::load::CI_SESSIONS, false)?;

    step("bench, quick (so it cannot rot; figures from a debug build mean nothing)");
    crate::bench::peers(true, &[])?;

    step("docs");
    status(
        cargo()
            .args(["doc", "--workspace", "--all-features", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;

    step("ftps-proto does no IO");
    io_check::run()?;

    step("fuzz smoke run");
    fuzz::smoke()?;

    eprintln!("\nci: all checks passed");
    Ok(())
}
