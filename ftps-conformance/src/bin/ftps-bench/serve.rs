//! `ftps-bench serve RUNTIME ROOT CERT KEY USER PASSWORD`: one of our servers in a process of
//! its own, as a user runs it (explicit FTPS, PROT C allowed as on the peers, session reuse
//! required), so its memory and CPU are its own. Prints `ready PORT` and serves until its
//! standard input closes (the bench holds the other end).

use ftps_proto::server::{DataTlsPolicy, ServerConfig, Timeouts, TlsMode};
use std::io::{BufRead, Write};
use std::time::Duration;

type Fail = Box<dyn std::error::Error>;

/// The variable that gives the user a password hash of its own (a crypt(3) string, as the
/// peers' users have) instead of the Argon2id hash of PASSWORD.
pub(crate) const HASH_ENV: &str = "FTPS_BENCH_HASH";

pub(crate) fn main(args: &[String]) -> Result<(), Fail> {
    let [runtime, root, cert, key, user, password] = args else {
        return Err("serve RUNTIME ROOT CERT KEY USER PASSWORD".into());
    };
    let tls = ftps_proto::tls::server_config_from_pem(&std::fs::read(cert)?, &std::fs::read(key)?)?;
    // The idle case holds thousands of sessions while more log in.
    let config = ServerConfig::default()
        .with_data_tls(DataTlsPolicy::Allow)
        .with_timeouts(Timeouts::default().with_idle(Duration::from_secs(3600)));
    let storage = ftps_backend::LocalFs::new(root)?;
    let users = match std::env::var(HASH_ENV) {
        Ok(hash) => ftps_backend::StaticUsers::new().with_hash(user, &hash)?,
        Err(_) => ftps_backend::StaticUsers::new().with_password(user, password),
    };
    // Enough for the idle case's sessions, all from one address.
    let cap = 20_000;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    match runtime.as_str() {
        "tokio" => {
            let server = ftps_tokio::Server::builder(storage, users)
                .config(config)
                .tls(tls)
                .max_sessions(cap, cap)
                .build();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            listener.set_nonblocking(true)?;
            let listener = rt.block_on(async { tokio::net::TcpListener::from_std(listener) })?;
            rt.spawn(async move { server.serve(listener, TlsMode::Explicit).await });
            ready_then_wait(port)
        }
        "blocking" => {
            let server = ftps_blocking::Server::builder(storage, users)
                .config(config)
                .tls(tls)
                .max_sessions(cap, cap)
                .build();
            std::thread::spawn(move || server.serve(listener, TlsMode::Explicit));
            ready_then_wait(port)
        }
        "smol" => {
            let server = ftps_smol::Server::builder(storage, users)
                .config(config)
                .tls(tls)
                .max_sessions(cap, cap)
                .build();
            let listener = smol::net::TcpListener::try_from(listener)?;
            std::thread::spawn(move || smol::block_on(server.serve(listener, TlsMode::Explicit)));
            ready_then_wait(port)
        }
        other => Err(format!("unknown runtime {other}").into()),
    }
}

fn ready_then_wait(port: u16) -> Result<(), Fail> {
    let mut out = std::io::stdout();
    writeln!(out, "ready {port}")?;
    out.flush()?;
    // Serves until the bench closes our standard input (or dies).
    let mut line = String::new();
    while std::io::stdin().lock().read_line(&mut line)? > 0 {
        line.clear();
    }
    Ok(())
}
