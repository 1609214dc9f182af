//! `cargo xtask load [--sessions N] [--release]`: the load and fault job (ftps-load):
//! N concurrent sessions against the tokio server, two rounds, files compared, a tenth
//! killed mid-upload; then no partial file, every session ended, no task left, memory not
//! growing between rounds.

use crate::run::{cargo, status};

/// Sessions in CI's run: enough to exercise the limits and the faults in seconds.
pub(crate) const CI_SESSIONS: usize = 200;

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut sessions = 1000usize;
    let mut release = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--sessions" => {
                sessions = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--sessions needs a number")?;
            }
            "--release" => release = true,
            other => return Err(format!("unknown option {other}")),
        }
    }
    run_with(sessions, release)
}

pub(crate) fn run_with(sessions: usize, release: bool) -> Result<(), String> {
    let mut cmd = cargo();
    cmd.args(["run", "-p", "ftps-conformance", "--bin", "ftps-load"]);
    if release {
        cmd.arg("--release");
    }
    cmd.args(["--", "--sessions", &sessions.to_string()])
        // A session that waits longer than this failed; bounds the job's time.
        .env("LOAD_REPLY_TIMEOUT", "120");
    status(&mut cmd)
}
