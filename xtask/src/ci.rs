//! `cargo xtask ci`: every check CI runs, in order, stopping at the first failure.

use crate::run::{cargo, status, step};
use crate::{fuzz, io_check};

pub(crate) fn run() -> Result<(), String> {
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

    step("tests (unit, known-answer, proptest, doctests, benches in test mode)");
    status(cargo().args(["test", "--workspace", "--all-features", "--all-targets"]))?;
    status(cargo().args(["test", "--workspace", "--all-features", "--doc"]))?;

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
