//! `cargo xtask bench [--quick]`: the criterion benchmarks of the parsers.

use crate::run::{cargo, status};

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    if let Some(other) = args.iter().find(|a| a.as_str() != "--quick") {
        return Err(format!("unknown option {other}"));
    }
    let mut cmd = cargo();
    cmd.args(["bench", "-p", "ftps-proto", "--bench", "codec", "--"]);
    if quick {
        cmd.arg("--quick");
    }
    status(&mut cmd)
}
