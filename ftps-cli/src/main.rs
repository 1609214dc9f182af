//! `ftps`: an FTPS server in one command. `ftps serve` with no arguments starts a working
//! server with secure defaults; `ftps serve --help` lists the flags.

#![forbid(unsafe_code)]

/// `eprintln!` as one `write` of the whole line: a message put together from many pieces
/// (server text escaped character by character) reaches standard error whole, not a
/// byte per write, and a standard error that is closed or full does not panic.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::say_line(::std::format!($($arg)*))
    };
}

/// Writes `line` and a newline to standard error in one call (see [`say!`]).
fn say_line(mut line: String) {
    use std::io::Write;
    line.push('\n');
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

mod config;
mod metrics;
mod mirror;
mod netrc;
mod remote;
mod remote_path;
mod serve;
mod sink;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// jemalloc, not the C library's allocator, on Unix. rustls (0.23) copies every record it
/// decrypts into a new `Vec`, from 5 bytes into its own record buffer. With glibc's
/// allocator the two buffers often lie a few bytes apart modulo 4096, and on AMD Zen
/// glibc's `rep movsb` copy is then some 30 times slower (measured: 0.36 s/GiB against
/// 0.012); that copy was a third of `ftps get`'s CPU. jemalloc puts buffers of that size on
/// page boundaries, which keeps the copy on its fast path: `ftps get` of 1 GiB PROT P went
/// from 1.2 to 0.8 CPU seconds. See ARCHITECTURE.md, "Allocator".
#[cfg(unix)]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// FTP over TLS: server and client in one binary.
///
/// Exit codes: 0 success, 1 local error, 2 usage, 3 connection or TLS failure, 4 login
/// refused, 5 the server refused an operation, 6 a
/// transfer did not complete (or, with --checksum, its bytes do not match the server's
/// hash), 130 interrupted.
#[derive(Parser)]
#[command(name = "ftps", version, about)]
struct Cli {
    /// Log more on standard error: -v the protocol trace (every command and reply, never
    /// a password), -vv everything ftps traces. RUST_LOG, when set, wins (e.g.
    /// RUST_LOG=ftps=debug, or RUST_LOG=off for nothing).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// What is logged: `RUST_LOG` when set; otherwise info (`ftps serve`'s sessions, logins
/// and transfers; the client's notices), and with `-v` ftps' debug events (the client's
/// commands and replies, target `ftps::client`), with `-vv` its trace events.
fn log_filter(verbose: u8) -> tracing_subscriber::EnvFilter {
    use tracing_subscriber::EnvFilter;
    match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::builder().parse_lossy(spec),
        _ => EnvFilter::new(match verbose {
            0 => "info",
            1 => "info,ftps=debug",
            _ => "info,ftps=trace",
        }),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve a directory over FTPS (explicit and implicit).
    Serve(serve::ServeArgs),
    /// Print the Argon2id hash (PHC string) of a password, for `ftps serve --users-file`
    /// or FTPS_USERS (NAME:HASH lines). The password is asked for twice on the terminal,
    /// or read as the first line of standard input; never from the command line.
    HashPassword,
    /// List a directory: names, or `ls -l` lines with -l.
    Ls {
        #[command(flatten)]
        conn: remote::Connection,
        /// ftp://, ftpes:// or ftps:// URL.
        url: String,
        /// The server's long listing (LIST) instead of names (NLST).
        #[arg(short = 'l', long)]
        long: bool,
        /// A JSON array for scripts: each entry's name, type (file, dir, link, other),
        /// size in bytes and modified time (Unix seconds, where the server gives it to
        /// the second: MLSD), null where unknown.
        #[arg(long, conflicts_with = "long")]
        json: bool,
    },
    /// Download files: URL... [LOCAL|DIR/]. Several URLs share one session.
    Get {
        #[command(flatten)]
        conn: remote::Connection,
        /// URLs (the last path component may be a glob: `*.csv`), then optionally a
        /// local file or directory (`-`: standard output).
        #[arg(required = true, num_args = 1..)]
        args: Vec<String>,
        /// Resume a partial local file.
        #[arg(short = 'C', long = "continue", help_heading = "Transfer")]
        resume: bool,
        /// Check each download against the server's hash (HASH; SHA-256 if offered, else
        /// the strongest of SHA-512, SHA-1, MD5, CRC32): a file whose bytes do not match
        /// is not kept (exit 6); a server without HASH (vsftpd, Pure-FTPd) is said so and
        /// the download goes on unchecked.
        #[arg(long, help_heading = "Transfer")]
        checksum: bool,
        /// Retry a file whose transfer failed (the connection lost, the server gone or
        /// draining) up to N times, each on a fresh connection after a pause (1 s,
        /// doubling to 10 s); with -C a retry continues from the partial file, else it
        /// starts over (a failed download never leaves a partial file then). With -r,
        /// each file of the tree.
        #[arg(long, value_name = "N", default_value_t = 0, help_heading = "Transfer")]
        retry: u32,
        #[command(flatten)]
        mirror: MirrorArgs,
    },
    /// Upload files: LOCAL... URL|URL/. Several files share one session.
    Put {
        #[command(flatten)]
        conn: remote::Connection,
        /// Local files (`-`: standard input, to the file the URL names), then the URL
        /// (ending in / for a directory).
        #[arg(required = true, num_args = 2..)]
        args: Vec<String>,
        /// Resume from the remote file's size.
        #[arg(short = 'C', long = "continue", help_heading = "Transfer")]
        resume: bool,
        /// Retry a file whose upload failed up to N times, each on a fresh connection
        /// after a pause (1 s, doubling to 10 s); with -C a retry continues from the
        /// remote file's size, else it uploads the file again (the server publishes only
        /// complete uploads). With -r, each file of the tree.
        #[arg(long, value_name = "N", default_value_t = 0, help_heading = "Transfer")]
        retry: u32,
        /// Make the remote directories the URL names that do not exist yet (MKD each, as
        /// curl's --ftp-create-dirs).
        #[arg(long, help_heading = "Transfer")]
        create_dirs: bool,
        #[command(flatten)]
        mirror: MirrorArgs,
    },
    /// Delete files.
    Rm {
        #[command(flatten)]
        conn: remote::Connection,
        /// URLs.
        #[arg(required = true, num_args = 1..)]
        urls: Vec<String>,
    },
    /// Make a directory.
    Mkdir {
        #[command(flatten)]
        conn: remote::Connection,
        /// URL of the new directory.
        url: String,
    },
    /// Rename: URL NEWPATH (NEWPATH relative to the login directory).
    Mv {
        #[command(flatten)]
        conn: remote::Connection,
        /// The existing file.
        url: String,
        /// The new path on the server.
        to: String,
    },
    /// Send commands as they are (as curl's -Q, lftp's quote) and print their replies:
    /// URL COMMAND... (`ftps quote URL "SITE CHMOD 600 f" "MDTM f"`). Commands that need
    /// a data connection or change the session's state are refused; the first reply
    /// that is not a success stops with exit 5.
    Quote {
        #[command(flatten)]
        conn: remote::Connection,
        /// URL (its path, if any, is the directory the commands run in).
        url: String,
        /// Commands, each one argument.
        #[arg(required = true, num_args = 1..)]
        commands: Vec<String>,
    },
    /// Write a file to standard output.
    Cat {
        #[command(flatten)]
        conn: remote::Connection,
        /// URL.
        url: String,
    },
}

/// `-r`, `-j`, `--delete`: mirrors (lftp's `mirror`).
#[derive(clap::Args, Clone, Copy)]
struct MirrorArgs {
    /// Recursive, as lftp's mirror: `get -r URL/ [DIR]` makes DIR (default: the remote
    /// directory's name) hold the remote tree, `put -r DIR URL/` the reverse; only files
    /// missing, of another size or older on the receiving side are moved.
    #[arg(short = 'r', long = "recursive", help_heading = "Mirror")]
    recursive: bool,
    /// With -r, move N files at once over N sessions.
    #[arg(short = 'j', long = "jobs", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=64), requires = "recursive", help_heading = "Mirror")]
    jobs: u16,
    /// With -r, delete the files the source does not have.
    #[arg(long, requires = "recursive", help_heading = "Mirror")]
    delete: bool,
}

impl MirrorArgs {
    fn mirror(self, retry: u32) -> mirror::Mirror {
        mirror::Mirror {
            jobs: usize::from(self.jobs),
            delete: self.delete,
            retry,
        }
    }
}

/// A mirror's arguments: `[URL, DIR?]` for get, `[DIR, URL]` for put.
fn mirror_args(args: &[String], get: bool) -> Result<(&str, Option<&str>), remote::Failure> {
    match (args, get) {
        ([url], true) => Ok((url, None)),
        ([a, b], _) => Ok((a, Some(b))),
        _ => Err(remote::Failure::usage(if get {
            "get -r takes one URL and, optionally, a local directory"
        } else {
            "put -r takes one local directory and one URL"
        })),
    }
}

/// Runs a client command until it ends or the user interrupts it (Ctrl-C, SIGTERM, SIGHUP
/// when the terminal goes away): then a
/// download's temporary file is removed and `ftps` exits 130, as shells expect.
async fn interruptible(
    command: impl std::future::Future<Output = Result<(), remote::Failure>>,
) -> Result<(), remote::Failure> {
    let interrupt = async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match (
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            ) {
                (Ok(mut term), Ok(mut hup)) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                        _ = hup.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    };
    tokio::select! {
        done = command => done,
        () = interrupt => {
            remote::interrupted();
            Err(remote::Failure {
                code: 130,
                message: "interrupted".into(),
                transient: false,
                permanent: false,
            })
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Colours only on a terminal: in a file or a pipe they are raw escape bytes.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(log_filter(cli.verbose))
        .with_target(false)
        .with_ansi(colour)
        .with_writer(std::io::stderr)
        .init();
    // The server's sessions run on every core; a client command moves one transfer at a
    // time, and on one thread its data's wake-ups cost no cross-thread hand-offs (a
    // 1 GiB download: ~3,000 futex calls and more CPU than curl on two threads).
    let built = match &cli.command {
        Command::Serve(_) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        // Several transfers at once share the cores.
        Command::Get { mirror, .. } | Command::Put { mirror, .. } if mirror.jobs > 1 => {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
        }
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    };
    let runtime = match built {
        Ok(r) => r,
        Err(e) => {
            say!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let remote = match cli.command {
        Command::HashPassword => {
            return match serve::hash_password() {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    say!("error: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Serve(args) => {
            let prepared = match serve::prepare(args) {
                Ok(p) => p,
                Err(e) => {
                    say!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            return match runtime.block_on(serve::run(prepared)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    say!("error: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Ls {
            conn,
            url,
            long,
            json,
        } => runtime.block_on(interruptible(remote::ls(&conn, &url, long, json))),
        Command::Get {
            conn,
            args,
            mirror,
            retry,
            ..
        } if mirror.recursive => match mirror_args(&args, true) {
            Ok((url, dir)) => runtime.block_on(interruptible(mirror::get(
                &conn,
                url,
                dir,
                mirror.mirror(retry),
            ))),
            Err(f) => Err(f),
        },
        Command::Get {
            conn,
            args,
            resume,
            checksum,
            retry,
            ..
        } => runtime.block_on(interruptible(remote::get(
            &conn, &args, resume, checksum, retry,
        ))),
        Command::Put {
            conn,
            args,
            mirror,
            retry,
            ..
        } if mirror.recursive => match mirror_args(&args, false) {
            Ok((dir, Some(url))) => runtime.block_on(interruptible(mirror::put(
                &conn,
                dir,
                url,
                mirror.mirror(retry),
            ))),
            Ok(_) => unreachable!("put -r's arguments are two"),
            Err(f) => Err(f),
        },
        Command::Put {
            conn,
            args,
            resume,
            retry,
            create_dirs,
            ..
        } => runtime.block_on(interruptible(remote::put(
            &conn,
            &args,
            remote::PutOptions {
                resume,
                retry,
                create_dirs,
            },
        ))),
        Command::Rm { conn, urls } => runtime.block_on(interruptible(remote::rm(&conn, &urls))),
        Command::Mkdir { conn, url } => runtime.block_on(interruptible(remote::mkdir(&conn, &url))),
        Command::Mv { conn, url, to } => {
            runtime.block_on(interruptible(remote::mv(&conn, &url, &to)))
        }
        Command::Cat { conn, url } => runtime.block_on(interruptible(remote::cat(&conn, &url))),
        Command::Quote {
            conn,
            url,
            commands,
        } => runtime.block_on(interruptible(remote::quote(&conn, &url, &commands))),
    };
    // A blocking file operation (opening a FIFO nobody reads, say) must not keep the
    // process from ending.
    runtime.shutdown_background();
    let result: Result<(), String> = match remote {
        Ok(()) => Ok(()),
        Err(failure) => return failure.into(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
