//! Project automation. Run `cargo xtask help` for the tasks.

mod bench;
mod ci;
mod downstream;
mod fuzz;
mod garage;
mod io_check;
mod load;
mod peers;
mod run;

use std::process::ExitCode;

const HELP: &str = "\
cargo xtask <task>

tasks:
  ci                      everything CI checks, in order: fmt, clippy, tests, docs,
                          the ftps-proto no-IO proof, a fuzz smoke run of every target
  fuzz [TARGET] [--time S]
                          run one fuzz target (or all) for S seconds each (default 60)
  fuzz-smoke              every fuzz target for a bounded number of runs (part of ci)
  io-check                the ftps-proto no-IO proof alone (part of ci)
  garage                  the S3 object store the object-store back-end is tested on,
                          built with cargo install if missing (part of ci)
  interop                 our server against curl, lftp and Python's ftplib (part of ci's tests)
  fleet                   HAProxy, Redis, Garage and three ftps serve nodes on loopback:
                          transfers through the balancer, the shared lockout, a rolling
                          restart, nodes killed mid-upload (part of ci's tests)
  downstream              an application with rustls' defaults beside ftps-tokio's (its own
                          ClientConfig::builder() must not panic); ring-only and
                          provider-less builds checked (part of ci)
  bench [--quick] [-- OPTIONS]
                          ftps-bench: our servers and clients against vsftpd, Pure-FTPd,
                          pyftpdlib and curl in one run; tables and JSON in target/bench
                          (--quick: small files, one run; part of ci)
  bench --parsers [--quick]
                          criterion benchmarks of the parsers
  load [--sessions N] [--release]
                          the load and fault job: N concurrent sessions (default 1000)
                          against the tokio server, twice (ci runs it with 200)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(),
        Some("fuzz") => fuzz::run_long(&args[1..]),
        Some("fuzz-smoke") => fuzz::smoke(),
        Some("io-check") => io_check::run(),
        Some("interop") => peers::interop(),
        Some("garage") => garage::run(),
        Some("fleet") => peers::fleet(),
        Some("downstream") => downstream::run(),
        Some("bench") => bench::run(&args[1..]),
        Some("load") => load::run(&args[1..]),
        Some("help" | "--help" | "-h") | None => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => Err(format!("unknown task {other:?}\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
