//! `ftps serve`.

use clap::{Args, ValueEnum};
use ftps_proto::VirtualPath;
use ftps_proto::server::{
    ControlTlsPolicy, DataTlsPolicy, Grants, Permissions, ServerConfig, TlsMode,
};
use ftps_tokio::{LocalFs, Quota, Server, StaticUsers, User, tls};
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Component, Path, PathBuf};
use tokio::net::TcpListener;

/// The environment variable holding users as `NAME:HASH` lines, like `--users-file`.
const USERS_ENV: &str = "FTPS_USERS";

/// How to make a hash, for messages.
const HASH_HINT: &str = "`ftps hash-password` prints one";

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
    /// Certificate chain, PEM (default: a self-signed one kept in --state-dir). Must lie
    /// outside --root.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Private key, PEM. Must lie outside --root.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Where the self-signed certificate and its private key are kept (made on first
    /// start). Must lie outside --root: the server refuses to start otherwise.
    #[arg(long, value_name = "DIR", default_value = "./.ftps")]
    state_dir: PathBuf,
    /// Users from FILE: one `NAME:HASH[:HOME[:PERMISSIONS[:QUOTA]]]` per line, HASH an Argon2id
    /// PHC string (`ftps hash-password` prints one), HOME the user's `/` within --root
    /// (an existing directory; default: --root itself), PERMISSIONS a comma-separated
    /// list of list, download, upload, overwrite, delete, rename, mkdir, rmdir, settime
    /// (or all, none; default: all), then per-directory rules `;/DIR=PERMISSIONS` (the
    /// deepest rule holding a path decides), QUOTA what the home may hold, `BYTES[,FILES]`
    /// (BYTES with K, M, G or T; `-` for no bound: 552 past it). E.g.
    /// `bob:HASH:/shared:list,download` or `drop:HASH:/inbox:upload:1G,1000`. Blank lines and lines starting with # are skipped. The
    /// environment variable FTPS_USERS may hold the same lines. Default, with no users
    /// given at all: user `ftps` with a random password, printed.
    #[arg(long, value_name = "FILE")]
    users_file: Option<PathBuf>,
    /// A user as NAME:PASSWORD, for quick tries (repeatable). Other users of this machine
    /// can read it (ps, /proc): prefer --users-file or FTPS_USERS.
    #[arg(long = "user", value_name = "NAME:PASSWORD")]
    users: Vec<String>,
    /// Allow anonymous logins (`anonymous` or `ftp`, any password), read-only: no upload,
    /// delete, rename or mkdir.
    #[arg(long)]
    anonymous: bool,
    /// Also let anonymous users upload new files (STOR to a name that does not exist,
    /// STOU); they still cannot overwrite, append, resume, delete, rename or mkdir.
    #[arg(long, requires = "anonymous")]
    anonymous_upload: bool,
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

/// `path` made absolute, with symbolic links resolved as far as it exists (the rest
/// appended as written, `..` taken lexically), to compare with the canonical root.
fn resolved(path: &Path) -> Result<PathBuf, String> {
    let absolute = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
    for existing in absolute.ancestors() {
        let Ok(mut out) = std::fs::canonicalize(existing) else {
            continue;
        };
        let rest = absolute.strip_prefix(existing).unwrap_or(Path::new(""));
        for c in rest.components() {
            match c {
                Component::ParentDir => {
                    out.pop();
                }
                Component::Normal(name) => out.push(name),
                _ => {}
            }
        }
        return Ok(out);
    }
    Ok(absolute)
}

/// Refuses `path` (`what`, given as `flag`) if it lies inside the served `root`
/// (canonical): anyone who can log in could download it.
fn outside_root(root: &Path, what: &str, flag: &str, path: &Path) -> Result<PathBuf, String> {
    let real = resolved(path)?;
    if real.starts_with(root) {
        return Err(format!(
            "the {what} {} ({}) lies inside the served directory {}: anyone who can log \
             in could download it. Keep it outside the served directory ({flag}), or serve \
             another directory (--root DIR).",
            path.display(),
            real.display(),
            root.display()
        ));
    }
    Ok(real)
}

/// Users from `NAME:HASH` lines (`source` names them in messages) added to `users`, their
/// names to `names`.
fn parse_users(
    text: &str,
    source: &str,
    root: &Path,
    mut users: StaticUsers,
    names: &mut Vec<String>,
) -> Result<StaticUsers, String> {
    for (i, line) in text.lines().enumerate() {
        let at = format!("{source}, line {}", i + 1);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // A PHC string holds no ':', so the fields split on it.
        let mut fields = line.split(':').map(str::trim);
        let (Some(name), Some(hash)) = (fields.next(), fields.next()) else {
            return Err(format!(
                "{at}: expected NAME:HASH[:HOME[:PERMISSIONS[:QUOTA]]], HASH an Argon2id PHC \
                 string ({HASH_HINT})"
            ));
        };
        let mut user = User::new(name);
        let mut home_dir = root.to_path_buf();
        if let Some(home) = fields.next().filter(|h| !h.is_empty()) {
            let home = home_path(home).map_err(|e| format!("{at}: {e}"))?;
            let dir: PathBuf = root.join(home.components().collect::<PathBuf>());
            // A home that is a symbolic link leading out of --root passes `is_dir`, and the
            // storage (which opens it beneath the root) then refuses every command.
            let inside = dir
                .canonicalize()
                .ok()
                .zip(root.canonicalize().ok())
                .is_some_and(|(d, r)| d.starts_with(r));
            if !dir.is_dir() || !inside {
                return Err(format!(
                    "{at}: the home of {name:?}, {home}, is not a directory under --root ({})",
                    dir.display()
                ));
            }
            user = user.with_home(home);
            home_dir = dir;
        }
        if let Some(rules) = fields.next() {
            if rules.is_empty() {
                return Err(format!(
                    "{at}: PERMISSIONS is empty: write all, none or a list (list,download...)"
                ));
            }
            let grants = parse_grants(rules).map_err(|e| format!("{at}: {e}"))?;
            // Rules name paths within the home: one written from --root (or misspelled)
            // silently restricts nothing. It may name a directory made later, so warn.
            for (dir, _) in grants.dirs() {
                let on_disk = home_dir.join(dir.components().collect::<PathBuf>());
                if !on_disk.is_dir() {
                    eprintln!(
                        "ftps: warning: {at}: the rule for {dir} names no directory in the home of \
                         {name:?} ({}); rules are paths within the home",
                        on_disk.display()
                    );
                }
            }
            user = user.with_grants(grants);
        }
        if let Some(quota) = fields.next() {
            user = user.with_quota(parse_quota(quota).map_err(|e| format!("{at}: {e}"))?);
        }
        if fields.next().is_some() {
            return Err(format!(
                "{at}: too many fields: expected NAME:HASH[:HOME[:PERMISSIONS[:QUOTA]]]"
            ));
        }
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(format!(
                "{at}: the user name is empty or holds control characters"
            ));
        }
        if name.eq_ignore_ascii_case("anonymous") || name.eq_ignore_ascii_case("ftp") {
            return Err(format!(
                "{at}: {name:?} is the anonymous login (see --anonymous), not a user name"
            ));
        }
        if names.iter().any(|n| n == name) {
            return Err(format!("{at}: user {name:?} is given twice"));
        }
        users = users.with_user(user, hash).map_err(|_| {
            format!("{at}: the hash of {name:?} is not an Argon2 PHC string ({HASH_HINT})")
        })?;
        names.push(name.to_owned());
    }
    Ok(users)
}

/// A home directory as the users file gives it: an absolute path within --root, with no
/// `.` or `..` (a home is not resolved, it is named).
fn home_path(home: &str) -> Result<VirtualPath, String> {
    let path = VirtualPath::root().resolve(home);
    let named: Vec<&str> = home.split('/').filter(|c| !c.is_empty()).collect();
    if !home.starts_with('/') || named.iter().any(|c| *c == "." || *c == "..") {
        return Err(format!(
            "home {home:?}: expected an absolute path within --root, without . or .."
        ));
    }
    Ok(path)
}

/// `BYTES[,FILES]` as the users file gives a quota: BYTES a number with an optional K, M,
/// G or T (powers of 1024), `-` for no bound.
fn parse_quota(quota: &str) -> Result<Quota, String> {
    let bad = || format!("quota {quota:?}: expected BYTES[,FILES], e.g. 10G,1000 or -,50");
    let (bytes, files) = match quota.split_once(',') {
        Some((b, f)) => (b.trim(), Some(f.trim())),
        None => (quota.trim(), None),
    };
    let bytes = match bytes {
        "-" => None,
        // An empty field is no bound said by mistake as often as on purpose (a trailing
        // colon): as for PERMISSIONS, write it out.
        "" => {
            return Err(format!(
                "quota {quota:?}: BYTES is empty (write - for no bound)"
            ));
        }
        b => {
            let (digits, unit) = match b.char_indices().last() {
                Some((i, c)) if c.is_ascii_alphabetic() => (&b[..i], c.to_ascii_uppercase()),
                _ => (b, 'B'),
            };
            let shift = match unit {
                'B' => 0,
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(bad()),
            };
            let n: u64 = digits.parse().map_err(|_| bad())?;
            Some(n.checked_mul(1 << shift).ok_or_else(bad)?)
        }
    };
    let files = match files {
        None | Some("-") => None,
        Some(f) => Some(f.parse::<u64>().map_err(|_| bad())?),
    };
    Ok(Quota::new(bytes, files))
}

/// PERMISSIONS[;/DIR=PERMISSIONS...] as the users file gives them.
fn parse_grants(rules: &str) -> Result<Grants, String> {
    let mut parts = rules.split(';');
    let default = parts.next().unwrap_or_default();
    let mut grants = Grants::new(Permissions::parse(default).map_err(|e| e.to_string())?);
    for rule in parts {
        let (dir, permissions) = rule
            .split_once('=')
            .ok_or_else(|| format!("rule {rule:?}: expected /DIR=PERMISSIONS"))?;
        let dir = home_path(dir.trim()).map_err(|_| {
            format!(
                "rule {rule:?}: the directory must be absolute (within the home), without . or .."
            )
        })?;
        let permissions = Permissions::parse(permissions).map_err(|e| e.to_string())?;
        grants = grants.with_dir(dir, permissions);
    }
    Ok(grants)
}

/// Reads a users file, warning (as ssh does for keys) if others may read it.
fn read_users_file(path: &Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |e: std::io::Error| format!("--users-file {}: {e}", path.display());
    let meta = std::fs::metadata(path).map_err(fail)?;
    if !meta.is_file() {
        return Err(format!("--users-file {}: not a file", path.display()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        eprintln!(
            "warning: --users-file {} can be read by other users (mode {mode:04o}), who could \
             attack its hashes offline; chmod 600 {}",
            path.display(),
            path.display()
        );
    }
    std::fs::read_to_string(path).map_err(fail)
}

/// `ftps hash-password`: reads a password from the terminal (twice, not echoed) or, when
/// standard input is not a terminal, its first line; prints its Argon2id PHC string.
pub(crate) fn hash_password() -> Result<(), String> {
    use std::io::{BufRead, IsTerminal, Read};
    let password = if std::io::stdin().is_terminal() {
        let ask = |prompt: &str| {
            rpassword::prompt_password(prompt).map_err(|e| format!("cannot read the password: {e}"))
        };
        let first = ask("Password: ")?;
        if ask("Again: ")? != first {
            return Err("the two passwords differ".into());
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .take(64 * 1024)
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
        let line = line.strip_suffix('\n').unwrap_or(&line);
        line.strip_suffix('\r').unwrap_or(line).to_owned()
    };
    if password.is_empty() {
        return Err("empty password".into());
    }
    if password
        .chars()
        .any(|c| c == '\r' || c == '\n' || c == '\0')
    {
        return Err("the password holds CR, LF or NUL, which FTP cannot send".into());
    }
    let phc = ftps_tokio::hash_password(&password);
    if phc.is_empty() {
        return Err("hashing failed".into());
    }
    println!("{phc}");
    Ok(())
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

/// Sessions at most, when the open-file limit allows them (the library's default).
const DEFAULT_SESSIONS: usize = 1000;

/// Sessions from one address at most (the library's default).
const DEFAULT_SESSIONS_PER_ADDRESS: usize = 50;

/// Raises the soft limit on open files to the hard limit (a login shell or a service
/// often starts at 1024); returns the limit in force.
fn raise_open_files() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    // `None` is no limit.
    let raise = match (limit.current, limit.maximum) {
        (Some(current), Some(maximum)) => current < maximum,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if raise {
        limit.current = limit.maximum;
        if setrlimit(Resource::Nofile, limit).is_err() {
            limit = getrlimit(Resource::Nofile);
        }
    }
    limit.current.unwrap_or(u64::MAX)
}

/// The sessions `open_files` descriptors can serve: three each (control, data, a file),
/// after 64 kept for listeners, logs and the rest.
fn sessions_for(open_files: u64) -> usize {
    let sessions = open_files.saturating_sub(64) / 3;
    usize::try_from(sessions)
        .unwrap_or(usize::MAX)
        .clamp(1, DEFAULT_SESSIONS)
}

pub(crate) async fn run(args: ServeArgs) -> Result<(), String> {
    if args.no_explicit && args.no_implicit {
        return Err("--no-explicit and --no-implicit leave nothing to serve".into());
    }
    std::fs::create_dir_all(&args.root).map_err(|e| format!("{}: {e}", args.root.display()))?;
    let storage = LocalFs::new(&args.root).map_err(|e| format!("{}: {e}", args.root.display()))?;
    // The server never serves its own key or certificate: they must lie outside the root
    // (compared as canonical paths, symbolic links resolved), checked before anything is
    // made and again on the files themselves.
    let root = storage.root().to_path_buf();

    let mut users = StaticUsers::new().with_anonymous(args.anonymous);
    let mut names = Vec::new();
    if let Some(file) = &args.users_file {
        // Its hashes are for the server alone, as its key is.
        outside_root(&root, "users file", "--users-file FILE", file)?;
        let text = read_users_file(file)?;
        users = parse_users(&text, &file.display().to_string(), &root, users, &mut names)?;
    }
    if let Some(text) = std::env::var_os(USERS_ENV) {
        let text = text
            .into_string()
            .map_err(|_| format!("{USERS_ENV}: not UTF-8"))?;
        users = parse_users(&text, USERS_ENV, &root, users, &mut names)?;
    }
    if !args.users.is_empty() {
        eprintln!(
            "warning: --user puts a password on the command line, where other users of this \
             machine can read it (ps, /proc/PID/cmdline); use --users-file FILE or \
             {USERS_ENV} with NAME:HASH lines ({HASH_HINT})"
        );
    }
    for spec in &args.users {
        let (name, password) = spec
            .split_once(':')
            .ok_or_else(|| "--user: expected NAME:PASSWORD".to_owned())?;
        if name.is_empty() {
            return Err("--user: empty name".into());
        }
        if names.iter().any(|n| n == name) {
            return Err(format!("--user: user {name:?} is given twice"));
        }
        users = users.with_password(name, password);
        names.push(name.to_owned());
    }
    let mut shown_password = None;
    if names.is_empty() {
        let password = random_password()?;
        users = users.with_password("ftps", &password);
        shown_password = Some(("ftps".to_owned(), password));
    }

    let (cert, key) = match (&args.cert, &args.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => {
            outside_root(
                &root,
                "certificate state directory",
                "--state-dir DIR",
                &args.state_dir,
            )?;
            self_signed(&args.state_dir, &[args.explicit.ip(), args.implicit.ip()])?
        }
    };
    let cert = outside_root(&root, "certificate", "--cert FILE", &cert)?;
    let key = outside_root(&root, "private key", "--key FILE", &key)?;
    let tls = tls::server_config_from_pem_files(&cert, &key).map_err(|e| e.to_string())?;

    let config = ServerConfig::default()
        .with_control_tls(match args.control_tls {
            ControlTls::Allow => ControlTlsPolicy::Allow,
            ControlTls::Credentials => ControlTlsPolicy::RequireForCredentials,
            ControlTls::Require => ControlTlsPolicy::Require,
        })
        .with_data_tls(match args.data_tls {
            DataTls::Allow => DataTlsPolicy::Allow,
            DataTls::Require => DataTlsPolicy::Require,
            DataTls::Deny => DataTlsPolicy::Deny,
        })
        .with_require_session_reuse(!args.no_session_reuse_check)
        .with_active_mode(args.active)
        .with_allow_ccc(args.allow_ccc)
        .with_anonymous(args.anonymous)
        .with_anonymous_upload(args.anonymous_upload)
        .with_advertised_address(args.advertise);
    let mut builder = Server::builder(storage, users).config(config).tls(tls);
    // Sessions are bounded by the open files allowed as well as by the cap: each takes
    // about three descriptors (control, data, a file). Out of descriptors, accept fails
    // before any cap is reached, and no session would make room.
    let sessions = sessions_for(raise_open_files());
    if sessions < DEFAULT_SESSIONS {
        eprintln!(
            "ftps: warning: the open-file limit allows about {sessions} sessions; raise it \
             (ulimit -n, LimitNOFILE=) for more"
        );
    }
    builder = builder.max_sessions(sessions, DEFAULT_SESSIONS_PER_ADDRESS.min(sessions));
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
        None => (names[0].clone(), "PASSWORD".to_owned()),
    };
    println!("ftps: serving {}", root.display());
    if let Some((u, p)) = &shown_password {
        println!("user: {u}   password: {p}");
    }
    println!(
        "users: NAME:HASH lines in --users-file FILE or {USERS_ENV}; `ftps hash-password` \
         makes a HASH (asking for the password, never on a command line)"
    );
    if args.anonymous {
        let what = if args.anonymous_upload {
            "read and upload new files"
        } else {
            "read only"
        };
        println!("anonymous: allowed, {what}");
    }
    println!("certificate: {}", cert.display());
    println!(
        "private key: {} (outside the served directory)",
        key.display()
    );
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

#[cfg(test)]
mod tests {
    use super::parse_quota;
    use ftps_tokio::Quota;

    #[test]
    fn quotas_as_the_users_file_writes_them() {
        let ok = |q: &str, bytes, files| assert_eq!(parse_quota(q), Ok(Quota::new(bytes, files)));
        ok("1K,2", Some(1024), Some(2));
        ok(" 10g , 3 ", Some(10 << 30), Some(3));
        ok("-,50", None, Some(50));
        ok("-", None, None);
        ok("0", Some(0), None);
        ok(
            "18446744073709551615,18446744073709551615",
            Some(u64::MAX),
            Some(u64::MAX),
        );
        // Empty (a trailing colon, or no BYTES), past u64, negative, a space inside a
        // number, a suffix the files take not: errors, never silently no bound.
        for bad in [
            "",
            " ",
            ",5",
            "1K,",
            "16777216T",
            "-1",
            "1 K",
            "1KB",
            "5,1K",
            "1,2,3",
        ] {
            assert!(parse_quota(bad).is_err(), "{bad:?}");
        }
    }
}
