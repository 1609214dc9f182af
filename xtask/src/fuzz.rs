//! Fuzzing with cargo-fuzz (libFuzzer). Installs cargo-fuzz when it is missing; uses the
//! nightly toolchain when rustup has one, else the stable one with `RUSTC_BOOTSTRAP=1`.

use crate::run::{cargo, output, root, status};
use std::path::PathBuf;
use std::process::Command;

/// Runs per target in the CI smoke run, and a time cap in seconds for each.
const SMOKE_RUNS: &str = "200000";
const SMOKE_SECONDS: &str = "30";

fn fuzz_dir() -> PathBuf {
    root().join("fuzz")
}

fn has_nightly() -> bool {
    Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.starts_with("nightly"))
        })
        .unwrap_or(false)
}

/// `cargo +nightly fuzz` (through the rustup proxy), or `cargo fuzz` with
/// `RUSTC_BOOTSTRAP=1` when there is no nightly; run from fuzz/.
fn cargo_fuzz() -> Command {
    let mut cmd = if has_nightly() {
        let mut c = Command::new("cargo");
        c.arg("+nightly");
        c
    } else {
        let mut c = cargo();
        c.env("RUSTC_BOOTSTRAP", "1");
        c
    };
    cmd.current_dir(fuzz_dir()).arg("fuzz");
    cmd
}

fn ensure_cargo_fuzz() -> Result<(), String> {
    let installed = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !installed {
        status(cargo().args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

fn targets() -> Result<Vec<String>, String> {
    let list = output(cargo_fuzz().arg("list"))?;
    Ok(list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Runs one target: its own corpus directory first (written to), then the real-server
/// transcripts as read-only seeds.
fn run_target(target: &str, libfuzzer_args: &[&str]) -> Result<(), String> {
    let corpus = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&corpus).map_err(|e| e.to_string())?;
    let seeds = root().join("ftps-proto").join("tests").join("transcripts");
    let mut cmd = cargo_fuzz();
    cmd.args(["run", target])
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .args(libfuzzer_args);
    status(&mut cmd)
}

/// `cargo xtask fuzz-smoke`: every target for a bounded number of runs.
pub(crate) fn smoke() -> Result<(), String> {
    ensure_cargo_fuzz()?;
    status(cargo_fuzz().arg("build"))?;
    let targets = targets()?;
    if targets.is_empty() {
        return Err("no fuzz targets found".into());
    }
    for target in &targets {
        run_target(
            target,
            &[
                &format!("-runs={SMOKE_RUNS}"),
                &format!("-max_total_time={SMOKE_SECONDS}"),
                "-rss_limit_mb=2048",
                "-print_final_stats=1",
            ],
        )?;
    }
    eprintln!(
        "fuzz smoke: {} targets, up to {SMOKE_RUNS} runs or {SMOKE_SECONDS} s each, no failure",
        targets.len()
    );
    Ok(())
}

/// `cargo xtask fuzz [TARGET] [--time S]`.
pub(crate) fn run_long(args: &[String]) -> Result<(), String> {
    let mut seconds = "60".to_owned();
    let mut only = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--time" => seconds = it.next().ok_or("--time needs seconds")?.clone(),
            t if !t.starts_with('-') => only = Some(t.to_owned()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if seconds.parse::<u64>().is_err() {
        return Err(format!("--time {seconds}: not a number of seconds"));
    }
    ensure_cargo_fuzz()?;
    let targets = match only {
        Some(t) => vec![t],
        None => targets()?,
    };
    for target in &targets {
        run_target(
            target,
            &[&format!("-max_total_time={seconds}"), "-rss_limit_mb=2048"],
        )?;
    }
    Ok(())
}
