//! `ftps serve`.

use clap::{Args, ValueEnum};
use ftps_proto::server::{ControlTlsPolicy, DataTlsPolicy, ServerConfig, TlsMode};
use ftps_tokio::{LocalFs, Server, StaticUsers, tls};
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use tokio::net::TcpListener;

/// Control-channel TLS policy.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ControlTls {
    /// Plain text allowed.
    Allow,
    /// Credentials only after AUTH TLS.
    Credentials,
    /// Nothing but AUTH, FEAT, HOST, QUIT before TLS.
    Require,
}

/// Data-channel TLS policy.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum DataTls {
    /// PROT C and PROT P.
    Allow,
    /// PROT P only.
    Require,
    /// PROT C only.
    Deny,
}

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// The directory to serve (created if missing).
    #[arg(long, default_value = "./ftp-root")]
    root: PathBuf,
    /// Where to listen for explicit FTPS (AUTH TLS).
    #[arg(long, default_value = "127.0.0.1:2121")]
    explicit: SocketAddr,
    /// Where to listen for implicit FTPS (TLS from the first byte).
    #[arg(long, default_value = "127.0.0.1:9990")]
    implicit: SocketAddr,
    /// Do not listen for explicit FTPS.
    #[arg(long)]
    no_explicit: bool,
    /// Do not listen for implicit FTPS.
    #[arg(long)]
    no_implicit: bool,
    /// Certificate chain, PEM (default: a self-signed one kept in ./.ftps/).
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Private key, PEM.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// A user as NAME:PASSWORD (repeatable; default: user `ftps` with a random password).
    #[arg(long = "user", value_name = "NAME:PASSWORD")]
    users: Vec<String>,
    /// Allow anonymous logins (`anonymous` or `ftp`, any password).
    #[arg(long)]
    anonymous: bool,
    /// Passive ports, LO-HI.
    #[arg(long, value_name = "LO-HI", value_parser = parse_ports)]
    passive_ports: Option<RangeInclusive<u16>>,
    /// The address announced in PASV replies (for NAT).
    #[arg(long, value_name = "IP")]
    advertise: Option<IpAddr>,
    /// Control-channel TLS policy.
    #[arg(long, value_enum, default_value = "require")]
    control_tls: ControlTls,
    /// Data-channel TLS policy.
    #[arg(long, value_enum, default_value = "require")]
    data_tls: DataTls,
    /// Accept data connections whose TLS session does not resume the control session.
    #[arg(long)]
    no_session_reuse_check: bool,
    /// Enable active mode (PORT/EPRT), to the client's own address and ports >= 1024 only.
    #[arg(long)]
    active: bool,
    /// Allow CCC after login (RFC 4217 §6): the client may clear the control connection;
    /// data connections keep their protection.
    #[arg(long)]
    allow_ccc: bool,
}

fn parse_ports(s: &str) -> Result<RangeInclusive<u16>, String> {
    let (lo, hi) = s
        .split_once('-')
        .ok_or("expected LO-HI, e.g. 50000-50100")?;
    let lo: u16 = lo.trim().parse().map_err(|_| format!("bad port {lo:?}"))?;
    let hi: u16 = hi.trim().parse().map_err(|_| format!("bad port {hi:?}"))?;
    if lo == 0 || lo > hi {
        return Err("expected 1 <= LO <= HI".into());
    }
    Ok(lo..=hi)
}

/// A random password of 20 letters and digits from the OS random source.
fn random_password() -> Result<String, String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| "no OS random source".to_owned())?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect())
}

/// Loads the self-signed certificate kept in `dir`, or makes one (for localhost and the
/// listening addresses) and keeps it there.
fn self_signed(dir: &Path, addrs: &[IpAddr]) -> Result<(PathBuf, PathBuf), String> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    if cert.is_file() && key.is_file() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let pair = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let mut names = vec!["localhost".to_owned()];
    names.extend(addrs.iter().map(ToString::to_string));
    names.push("127.0.0.1".into());
    names.push("::1".into());
    names.sort();
    names.dedup();
    let params = rcgen::CertificateParams::new(names).map_err(|e| e.to_string())?;
    let made = params.self_signed(&pair).map_err(|e| e.to_string())?;
    std::fs::write(&cert, made.pem()).map_err(|e| format!("{}: {e}", cert.display()))?;
    write_private(&key, pair.serialize_pem().as_bytes())?;
    Ok((cert, key))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(bytes)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Listens with a backlog of 4096: FTP servers speak first, so a connection dropped from
/// a full accept queue leaves its client waiting for a greeting that never comes (seen
/// with 900 clients connecting at once and tokio's default backlog of 1024).
async fn listen(addr: SocketAddr, flag: &str) -> Result<TcpListener, String> {
    let fail = |e: std::io::Error| {
        format!("cannot listen on {addr}: {e} (choose another with --{flag} ADDR, or --no-{flag})")
    };
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(fail)?;
    socket.set_reuseaddr(true).map_err(fail)?;
    socket.bind(addr).map_err(fail)?;
    socket.listen(4096).map_err(fail)
}

pub(crate) async fn run(args: ServeArgs) -> Result<(), String> {
    if args.no_explicit && args.no_implicit {
        return Err("--no-explicit and --no-implicit leave nothing to serve".into());
    }
    std::fs::create_dir_all(&args.root).map_err(|e| format!("{}: {e}", args.root.display()))?;
    let storage = LocalFs::new(&args.root).map_err(|e| format!("{}: {e}", args.root.display()))?;

    let mut users = StaticUsers::new().with_anonymous(args.anonymous);
    let mut shown_password = None;
    if args.users.is_empty() {
        let password = random_password()?;
        users = users.with_password("ftps", &password);
        shown_password = Some(("ftps".to_owned(), password));
    }
    for spec in &args.users {
        let (name, password) = spec
            .split_once(':')
            .ok_or_else(|| format!("--user {spec:?}: expected NAME:PASSWORD"))?;
        if name.is_empty() {
            return Err(format!("--user {spec:?}: empty name"));
        }
        users = users.with_password(name, password);
    }

    let (cert, key) = match (&args.cert, &args.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => self_signed(
            Path::new(".ftps"),
            &[args.explicit.ip(), args.implicit.ip()],
        )?,
    };
    let tls = tls::server_config_from_pem_files(&cert, &key).map_err(|e| e.to_string())?;

    let config = ServerConfig {
        control_tls: match args.control_tls {
            ControlTls::Allow => ControlTlsPolicy::Allow,
            ControlTls::Credentials => ControlTlsPolicy::RequireForCredentials,
            ControlTls::Require => ControlTlsPolicy::Require,
        },
        data_tls: match args.data_tls {
            DataTls::Allow => DataTlsPolicy::Allow,
            DataTls::Require => DataTlsPolicy::Require,
            DataTls::Deny => DataTlsPolicy::Deny,
        },
        require_session_reuse: !args.no_session_reuse_check,
        active_mode: args.active,
        allow_ccc: args.allow_ccc,
        anonymous: args.anonymous,
        advertised_address: args.advertise,
        ..ServerConfig::default()
    };
    let mut builder = Server::builder(storage, users).config(config).tls(tls);
    if let Some(ports) = args.passive_ports.clone() {
        builder = builder.passive_ports(ports);
    }
    let server = builder.build();

    let explicit = if args.no_explicit {
        None
    } else {
        Some(listen(args.explicit, "explicit").await?)
    };
    let implicit = if args.no_implicit {
        None
    } else {
        Some(listen(args.implicit, "implicit").await?)
    };

    let (user, password) = match &shown_password {
        Some((u, p)) => (u.clone(), p.clone()),
        None => {
            let first = &args.users[0];
            let (u, _) = first.split_once(':').unwrap_or((first, ""));
            (u.to_owned(), "PASSWORD".to_owned())
        }
    };
    let root = std::fs::canonicalize(&args.root).unwrap_or(args.root.clone());
    println!("ftps: serving {}", root.display());
    if let Some((u, p)) = &shown_password {
        println!("user: {u}   password: {p}");
    }
    println!("certificate: {}", cert.display());
    let host = |a: SocketAddr| match a.ip() {
        IpAddr::V6(ip) => format!("[{ip}]:{}", a.port()),
        IpAddr::V4(ip) => format!("{ip}:{}", a.port()),
    };
    let ca = cert.display();
    if explicit.is_some() {
        let h = host(args.explicit);
        println!("\nexplicit FTPS (AUTH TLS) on {h}:");
        println!("  curl --ssl-reqd --cacert {ca} -u {user}:{password} ftp://{h}/");
        println!(
            "  lftp -u {user},{password} -e 'set ssl:ca-file {ca}; set ftp:ssl-force true; set ftp:ssl-protect-data true; ls; bye' ftp://{h}"
        );
    }
    if implicit.is_some() {
        let h = host(args.implicit);
        println!("\nimplicit FTPS on {h}:");
        println!("  curl --cacert {ca} -u {user}:{password} ftps://{h}/");
        println!(
            "  lftp -u {user},{password} -e 'set ssl:ca-file {ca}; set ftp:ssl-protect-data true; ls; bye' ftps://{h}"
        );
    }
    println!("\nCtrl-C stops the server.");

    let serve = |listener: Option<TcpListener>, mode: TlsMode| {
        let server = server.clone();
        async move {
            match listener {
                Some(l) => server.serve(l, mode).await,
                None => Ok(()),
            }
        }
    };
    let stopper = server.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("ftps: stopping");
            stopper.shutdown();
        }
    });
    let (a, b) = tokio::join!(
        serve(explicit, TlsMode::Explicit),
        serve(implicit, TlsMode::Implicit)
    );
    a.and(b).map_err(|e| e.to_string())
}
