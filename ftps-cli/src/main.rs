//! `ftps`: an FTPS server in one command. `ftps serve` with no arguments starts a working
//! server with secure defaults; `ftps serve --help` lists the flags.

#![forbid(unsafe_code)]

mod serve;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// FTP over TLS: server (and, soon, client) in one binary.
#[derive(Parser)]
#[command(name = "ftps", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a directory over FTPS (explicit and implicit).
    Serve(serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(serve::run(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
