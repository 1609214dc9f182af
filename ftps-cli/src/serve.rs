//! `ftps serve`.

use crate::config;
use clap::{Args, ValueEnum};
use ftps_object::{Address, ObjectStore};
use ftps_proto::VirtualPath;
use ftps_proto::server::LoginRequest;
use ftps_proto::server::{
    ControlTlsPolicy, DataTlsPolicy, Grants, Permissions, ServerConfig, TlsMode,
};
use ftps_tokio::{
    Authenticator, BlockingStorage, Check, LocalFs, Quota, Server, StaticUsers, TrustedProxies,
    User, Verdict, tls,
};
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;

/// The environment variable holding users as `NAME:HASH` lines, like `--users-file`.
const USERS_ENV: &str = "FTPS_USERS";

/// How to make a hash, for messages.
const HASH_HINT: &str = "`ftps hash-password` prints one";

/// Control-channel TLS policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ControlTls {
    /// Plain text allowed.
    Allow,
    /// Credentials only after AUTH TLS.
    Credentials,
    /// Nothing but AUTH, FEAT, HOST, QUIT before TLS.
    Require,
}

/// Data-channel TLS policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DataTls {
    /// PROT C and PROT P.
    Allow,
    /// PROT P only.
    Require,
    /// PROT C only.
    Deny,
}

/// `ftps serve`'s flags. Each has an environment variable (`FTPS_` and its name, e.g.
/// `FTPS_ROOT`) and a key of the configuration file (`--config`); a flag or variable given
/// wins over the file, the file over the default.
#[derive(Args, Clone)]
pub(crate) struct ServeArgs {
    /// Settings from FILE (TOML): the keys are the flags' names with `_` for `-` (`root`,
    /// `explicit`, `passive_ports`, `control_tls`...; `explicit = false` for
    /// --no-explicit, `session_reuse_check = false` for --no-session-reuse-check), and
    /// users as `[[users]]` tables of `name`, `hash`, `home`, `permissions`, `rules` and
    /// `quota`. Relative paths in it are taken from the file's directory.
    #[arg(long, value_name = "FILE", env = "FTPS_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// The directory to serve (created if missing) [default: ./ftp-root].
    #[arg(long, env = "FTPS_ROOT")]
    root: Option<PathBuf>,
    /// Serve an object store instead of a directory: `s3://BUCKET[/PREFIX]?endpoint=URL&
    /// region=NAME` (S3 or an S3-compatible service such as Garage or MinIO), each user's
    /// home a key prefix. The credentials come from AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY (never from the address). Uploads appear whole when they end
    /// (226) or not at all; restarted uploads, APPE and MFMT are refused.
    #[arg(
        long,
        value_name = "URL",
        env = "FTPS_STORAGE",
        conflicts_with = "root"
    )]
    storage: Option<String>,
    /// Where to listen for explicit FTPS (AUTH TLS) [default: 127.0.0.1:2121].
    #[arg(long, env = "FTPS_EXPLICIT")]
    explicit: Option<SocketAddr>,
    /// Where to listen for implicit FTPS (TLS from the first byte) [default:
    /// 127.0.0.1:9990].
    #[arg(long, env = "FTPS_IMPLICIT")]
    implicit: Option<SocketAddr>,
    /// Do not listen for explicit FTPS.
    #[arg(long, env = "FTPS_NO_EXPLICIT")]
    no_explicit: bool,
    /// Do not listen for implicit FTPS.
    #[arg(long, env = "FTPS_NO_IMPLICIT")]
    no_implicit: bool,
    /// Certificate chain, PEM (default: a self-signed one kept in --state-dir). Must lie
    /// outside --root; needs --key.
    #[arg(long, env = "FTPS_CERT")]
    cert: Option<PathBuf>,
    /// Private key, PEM. Must lie outside --root; needs --cert.
    #[arg(long, env = "FTPS_KEY")]
    key: Option<PathBuf>,
    /// Where the self-signed certificate and its private key are kept (made on first
    /// start). Must lie outside --root: the server refuses to start otherwise [default:
    /// ./.ftps].
    #[arg(long, value_name = "DIR", env = "FTPS_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Users from FILE: one `NAME:HASH[:HOME[:PERMISSIONS[:QUOTA]]]` per line, HASH an
    /// Argon2id PHC string (`ftps hash-password` prints one) or a crypt(3) hash brought
    /// from another server (yescrypt `$y$...`, SHA-crypt `$6$...` or `$5$...`, as in
    /// /etc/shadow), HOME the user's `/` within --root (an existing directory; default: --root itself), PERMISSIONS a
    /// comma-separated list of list, download, upload, overwrite, delete, rename, mkdir,
    /// rmdir, settime (or all, none; default: all), then per-directory rules
    /// `;/DIR=PERMISSIONS` (the deepest rule holding a path decides), QUOTA what the home
    /// may hold, `BYTES[,FILES]` (BYTES with K, M, G or T; `-` for no bound: 552 past
    /// it). E.g. `bob:HASH:/shared:list,download` or `drop:HASH:/inbox:upload:1G,1000`.
    /// Blank lines and lines starting with # are skipped. The environment variable
    /// FTPS_USERS may hold the same lines. Default, with no users given at all: user
    /// `ftps` with a random password, printed.
    #[arg(long, value_name = "FILE", env = "FTPS_USERS_FILE")]
    users_file: Option<PathBuf>,
    /// A user as NAME:PASSWORD, for quick tries (repeatable). Other users of this machine
    /// can read it (ps, /proc): prefer --users-file or FTPS_USERS.
    #[arg(long = "user", value_name = "NAME:PASSWORD")]
    users: Vec<String>,
    /// Allow anonymous logins (`anonymous` or `ftp`, any password), read-only: no upload,
    /// delete, rename or mkdir.
    #[arg(long, env = "FTPS_ANONYMOUS")]
    anonymous: bool,
    /// Also let anonymous users upload new files (STOR to a name that does not exist,
    /// STOU); they still cannot overwrite, append, resume, delete, rename or mkdir. Needs
    /// --anonymous.
    #[arg(long, env = "FTPS_ANONYMOUS_UPLOAD")]
    anonymous_upload: bool,
    /// Passive ports, LO-HI.
    #[arg(long, value_name = "LO-HI", value_parser = parse_ports, env = "FTPS_PASSIVE_PORTS")]
    passive_ports: Option<RangeInclusive<u16>>,
    /// The address announced in PASV replies (for NAT).
    #[arg(long, value_name = "IP", env = "FTPS_ADVERTISE")]
    advertise: Option<IpAddr>,
    /// Behind a load balancer: accept PROXY protocol headers (v1 and v2) from these
    /// addresses and networks (`127.0.0.1,10.0.0.0/8`), on control and passive data
    /// connections; the client a header names is the peer for limits, lockout and logs.
    #[arg(long, value_name = "ADDRS", value_parser = TrustedProxies::parse, env = "FTPS_PROXY_PROTOCOL")]
    proxy_protocol: Option<TrustedProxies>,
    /// Count failed logins in Redis (`redis://HOST:PORT/`), shared by every node of a
    /// fleet: an address locked out through one node is locked out on all (10 failures in
    /// 10 minutes lock it out for 5).
    #[arg(long, value_name = "URL", env = "FTPS_LOCKOUT_REDIS")]
    lockout_redis: Option<String>,
    /// Control-channel TLS policy [default: require].
    #[arg(long, value_enum, env = "FTPS_CONTROL_TLS")]
    control_tls: Option<ControlTls>,
    /// Data-channel TLS policy [default: require].
    #[arg(long, value_enum, env = "FTPS_DATA_TLS")]
    data_tls: Option<DataTls>,
    /// Accept data connections whose TLS session does not resume the control session.
    #[arg(long, env = "FTPS_NO_SESSION_REUSE_CHECK")]
    no_session_reuse_check: bool,
    /// Enable active mode (PORT/EPRT), to the client's own address and ports >= 1024 only.
    #[arg(long, env = "FTPS_ACTIVE")]
    active: bool,
    /// Allow CCC after login (RFC 4217 §6): the client may clear the control connection;
    /// data connections keep their protection.
    #[arg(long, env = "FTPS_ALLOW_CCC")]
    allow_ccc: bool,
    /// Pick the TLS cipher suite in the client's order of preference. By default the
    /// server picks AES-128-GCM when the client offers it (cheaper per byte than the
    /// AES-256-GCM most clients list first, as strong as the key exchange), unless the
    /// client lists ChaCha20 first (a machine without AES instructions).
    #[arg(long, env = "FTPS_CLIENT_CIPHER_ORDER")]
    client_cipher_order: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics (and /health), on an address only
    /// the monitoring reaches.
    #[arg(long, value_name = "ADDR", env = "FTPS_METRICS")]
    metrics: Option<SocketAddr>,
    /// On SIGTERM (or Ctrl-C), stop accepting, let transfers under way finish for at most
    /// this many seconds (idle sessions get 421 at once, /health says `draining`), then
    /// close the rest and exit 0 [default: 30].
    #[arg(long, value_name = "SECS", env = "FTPS_DRAIN_GRACE")]
    drain_grace: Option<u64>,
    /// The longest one storage call may take (a file opened, a chunk read or written, a
    /// listing's page, a commit; not HASH) before the client is told 451, or, for a
    /// change to the tree or a commit, the session is closed [default: 120].
    #[arg(long, value_name = "SECS", env = "FTPS_STORAGE_TIMEOUT", value_parser = clap::value_parser!(u64).range(1..))]
    storage_timeout: Option<u64>,
}

/// The settings in force: flags and variables, then the configuration file, then the
/// defaults.
#[derive(Clone, PartialEq)]
struct Settings {
    root: PathBuf,
    storage: Option<String>,
    explicit: Option<SocketAddr>,
    implicit: Option<SocketAddr>,
    cert: Option<(PathBuf, PathBuf)>,
    state_dir: PathBuf,
    users_file: Option<PathBuf>,
    anonymous: bool,
    anonymous_upload: bool,
    passive_ports: Option<RangeInclusive<u16>>,
    advertise: Option<IpAddr>,
    proxy_protocol: Option<TrustedProxies>,
    lockout_redis: Option<String>,
    control_tls: ControlTls,
    data_tls: DataTls,
    session_reuse_check: bool,
    active: bool,
    allow_ccc: bool,
    client_cipher_order: bool,
    metrics: Option<SocketAddr>,
    drain_grace: Duration,
    storage_timeout: Duration,
}

impl Settings {
    fn resolve(args: &ServeArgs, file: Option<&config::Loaded>) -> Result<Settings, String> {
        let empty = config::FileConfig::default();
        let c = file.map_or(&empty, |f| &f.config);
        // Paths in the file are taken from its directory.
        let base = file
            .and_then(|f| f.path.parent())
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let from_file = |p: &Option<PathBuf>| p.as_ref().map(|p| base.join(p));
        // Errors of settings the file may hold name it ("FILE: " before them).
        let in_file = file
            .map(|f| format!("{}: ", f.path.display()))
            .unwrap_or_default();
        let listen = |off: bool,
                      flag: Option<SocketAddr>,
                      key: Option<config::Listen>,
                      name: &str,
                      default: &str|
         -> Result<Option<SocketAddr>, String> {
            if off {
                return Ok(None);
            }
            if let Some(a) = flag {
                return Ok(Some(a));
            }
            match key {
                Some(config::Listen::At(a)) => Ok(Some(a)),
                Some(config::Listen::Off(false)) => Ok(None),
                Some(config::Listen::Off(true)) => Err(format!(
                    "{in_file}{name} = true: give an address (\"0.0.0.0:21\"), or false"
                )),
                None => Ok(Some(default.parse().map_err(|_| "bad default address")?)),
            }
        };
        let cert = match (
            args.cert.clone().or_else(|| from_file(&c.cert)),
            args.key.clone().or_else(|| from_file(&c.key)),
        ) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                let at = if c.cert.is_some() || c.key.is_some() {
                    in_file.as_str()
                } else {
                    ""
                };
                return Err(format!(
                    "{at}--cert and --key (cert and key) go together (a certificate and \
                     its key)"
                ));
            }
        };
        let passive_ports = match (&args.passive_ports, &c.passive_ports) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(p)) => {
                let at = file.map(|f| f.at(p.span().start)).unwrap_or_default();
                Some(parse_ports(p.get_ref()).map_err(|e| format!("{at}: passive_ports: {e}"))?)
            }
            (None, None) => None,
        };
        let anonymous = switch(args.anonymous, "FTPS_ANONYMOUS", c.anonymous);
        let anonymous_upload = switch(
            args.anonymous_upload,
            "FTPS_ANONYMOUS_UPLOAD",
            c.anonymous_upload,
        );
        if args.root.is_none() && args.storage.is_none() && c.root.is_some() && c.storage.is_some()
        {
            return Err(format!(
                "{in_file}root and storage: serve a directory or an object store, not both"
            ));
        }
        if anonymous_upload && !anonymous {
            let at = if c.anonymous_upload.is_some() || c.anonymous.is_some() {
                in_file.as_str()
            } else {
                ""
            };
            return Err(format!("{at}--anonymous-upload needs --anonymous"));
        }
        Ok(Settings {
            root: args
                .root
                .clone()
                .or_else(|| from_file(&c.root))
                .unwrap_or_else(|| PathBuf::from("./ftp-root")),
            storage: match (&args.root, &args.storage) {
                // A directory given as a flag wins over the file's object store.
                (Some(_), None) => None,
                _ => args.storage.clone().or_else(|| c.storage.clone()),
            },
            explicit: listen(
                args.no_explicit,
                args.explicit,
                c.explicit,
                "explicit",
                "127.0.0.1:2121",
            )?,
            implicit: listen(
                args.no_implicit,
                args.implicit,
                c.implicit,
                "implicit",
                "127.0.0.1:9990",
            )?,
            cert,
            state_dir: args
                .state_dir
                .clone()
                .or_else(|| from_file(&c.state_dir))
                .unwrap_or_else(|| PathBuf::from("./.ftps")),
            users_file: args.users_file.clone().or_else(|| from_file(&c.users_file)),
            anonymous,
            anonymous_upload,
            passive_ports,
            advertise: args.advertise.or(c.advertise),
            proxy_protocol: match (&args.proxy_protocol, &c.proxy_protocol) {
                (Some(t), _) => Some(t.clone()),
                (None, Some(list)) => {
                    let at = file.map(|f| f.at(list.span().start)).unwrap_or_default();
                    Some(
                        TrustedProxies::parse(list.get_ref())
                            .map_err(|e| format!("{at}: proxy_protocol: {e}"))?,
                    )
                }
                (None, None) => None,
            },
            lockout_redis: args
                .lockout_redis
                .clone()
                .or_else(|| c.lockout_redis.clone()),
            control_tls: args
                .control_tls
                .or(c.control_tls)
                .unwrap_or(ControlTls::Require),
            data_tls: args.data_tls.or(c.data_tls).unwrap_or(DataTls::Require),
            session_reuse_check: !args.no_session_reuse_check
                && (given_false("FTPS_NO_SESSION_REUSE_CHECK")
                    || c.session_reuse_check.unwrap_or(true)),
            active: switch(args.active, "FTPS_ACTIVE", c.active),
            allow_ccc: switch(args.allow_ccc, "FTPS_ALLOW_CCC", c.allow_ccc),
            client_cipher_order: switch(
                args.client_cipher_order,
                "FTPS_CLIENT_CIPHER_ORDER",
                c.client_cipher_order,
            ),
            metrics: args.metrics.or(c.metrics),
            drain_grace: Duration::from_secs(args.drain_grace.or(c.drain_grace).unwrap_or(30)),
            storage_timeout: Duration::from_secs(
                match args.storage_timeout.or(c.storage_timeout) {
                    Some(0) => return Err("storage_timeout: at least 1 second".into()),
                    t => t.unwrap_or(120),
                },
            ),
        })
    }
}

/// Whether the environment variable `name` says `false`: clap reads that as a switch not
/// given, but it was given, and a variable given wins over the file (review15c finding 1:
/// `FTPS_ANONYMOUS=false` left a file's `anonymous = true` in force).
fn given_false(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "false")
}

/// A switch: on if its flag or variable says so, off if its variable says `false`, else
/// as the file's key (off without one).
fn switch(flag: bool, var: &str, key: Option<bool>) -> bool {
    flag || (!given_false(var) && key.unwrap_or(false))
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
    ftps_proto::tls::provider()
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
fn outside_root(
    root: Option<&Path>,
    what: &str,
    flag: &str,
    path: &Path,
) -> Result<PathBuf, String> {
    let real = resolved(path)?;
    if let Some(root) = root
        && real.starts_with(root)
    {
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
    root: Option<&Path>,
    mut users: StaticUsers,
    names: &mut Vec<String>,
) -> Result<StaticUsers, String> {
    for (i, line) in text.lines().enumerate() {
        let at = format!("{source}, line {}", i + 1);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // No PHC or crypt(3) string holds a ':', so the fields split on it.
        let mut fields = line.split(':').map(str::trim);
        let (Some(name), Some(hash)) = (fields.next(), fields.next()) else {
            return Err(format!(
                "{at}: expected NAME:HASH[:HOME[:PERMISSIONS[:QUOTA[:TLS]]]], HASH an Argon2id \
                 PHC string ({HASH_HINT}) or a crypt(3) hash ($y$, $6$, $5$)"
            ));
        };
        let home = fields.next().filter(|h| !h.is_empty());
        let permissions = fields.next();
        let quota = fields.next();
        let (control_tls, data_tls) = match fields.next() {
            Some(tls) => parse_user_tls(tls).map_err(|e| format!("{at}: {e}"))?,
            None => (None, None),
        };
        let given = UserFields {
            name,
            hash,
            home,
            permissions,
            quota,
            control_tls,
            data_tls,
        };
        if fields.next().is_some() {
            return Err(format!(
                "{at}: too many fields: expected NAME:HASH[:HOME[:PERMISSIONS[:QUOTA[:TLS]]]]"
            ));
        }
        users = add_user(users, names, root, &given).map_err(|e| format!("{at}: {e}"))?;
    }
    Ok(users)
}

/// Where the users come from, read at the start and again on SIGHUP.
struct UserSources {
    users_file: Option<PathBuf>,
    config: Option<PathBuf>,
    cli: Vec<String>,
    anonymous: bool,
    /// The served directory (`None`: an object store, no directory of this machine).
    root: Option<PathBuf>,
}

impl UserSources {
    /// The users of every source (`file`: the configuration file, read already);
    /// `generated`, the user made when none is given (kept across reloads). Returns the
    /// users, their names, and the generated user and password if there is one.
    #[allow(clippy::type_complexity)]
    fn load(
        &self,
        file: Option<&config::Loaded>,
        generated: Option<&(String, String)>,
    ) -> Result<(StaticUsers, Vec<String>, Option<(String, String)>), String> {
        let root = self.root.as_deref();
        let mut users = StaticUsers::new().with_anonymous(self.anonymous);
        let mut names = Vec::new();
        if let Some(file) = &self.users_file {
            // Its hashes are for the server alone, as its key is.
            outside_root(root, "users file", "--users-file FILE", file)?;
            let text = read_users_file(file)?;
            users = parse_users(&text, &file.display().to_string(), root, users, &mut names)?;
        }
        if let Some(text) = std::env::var_os(USERS_ENV) {
            let text = text
                .into_string()
                .map_err(|_| format!("{USERS_ENV}: not UTF-8"))?;
            users = parse_users(&text, USERS_ENV, root, users, &mut names)?;
        }
        if let Some(file) = file {
            users = config_users(file, root, users, &mut names)?;
        }
        for spec in &self.cli {
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
        let mut shown = None;
        if names.is_empty() {
            let (name, password) = match generated {
                Some(g) => g.clone(),
                None => ("ftps".to_owned(), random_password()?),
            };
            users = users.with_password(&name, &password);
            shown = Some((name, password));
        }
        Ok((users, names, shown))
    }
}

/// The users of a configuration file's `[[users]]` tables, added to `users`.
fn config_users(
    file: &config::Loaded,
    root: Option<&Path>,
    mut users: StaticUsers,
    names: &mut Vec<String>,
) -> Result<StaticUsers, String> {
    // Its hashes are for the server alone, as its key is; and a user who could upload it
    // would choose the next start's settings (the root, anonymous...): outside the root
    // even without users (review15c finding 3).
    outside_root(root, "configuration file", "--config FILE", &file.path)?;
    if file.config.users.is_empty() {
        return Ok(users);
    }
    warn_if_readable(&file.path, "--config");
    for entry in &file.config.users {
        let u = entry.get_ref();
        let at = file.at(entry.span().start);
        // The rules go with the permissions, as a users file's line writes them.
        let mut permissions = u.permissions.clone();
        for (dir, p) in &u.rules {
            if dir.contains([';', '=']) {
                return Err(format!("{at}: rule {dir:?}: a directory with ; or ="));
            }
            // A value with ; would add rules of its own (review15c finding 4:
            // `{ "/in" = "upload;/=all" }` granted all in the whole home).
            if p.contains([';', '=']) {
                return Err(format!(
                    "{at}: rule {dir:?} = {p:?}: permissions with ; or ="
                ));
            }
            let all = permissions.get_or_insert_with(|| "all".to_owned());
            all.push_str(&format!(";{dir}={p}"));
        }
        let given = UserFields {
            name: &u.name,
            hash: &u.hash,
            home: u.home.as_deref(),
            permissions: permissions.as_deref(),
            quota: u.quota.as_deref(),
            control_tls: u.control_tls,
            data_tls: u.data_tls,
        };
        users = add_user(users, names, root, &given)
            .map_err(|e| format!("{at}: [[users]] {:?}: {e}", u.name))?;
    }
    Ok(users)
}

/// The users in force, replaced whole on SIGHUP: sessions logged in keep their user; the
/// next login is checked against the new list.
#[derive(Debug, Clone)]
struct LiveUsers(Arc<RwLock<StaticUsers>>);

impl Authenticator for LiveUsers {
    fn authenticate<'a>(&'a self, login: &'a LoginRequest) -> Check<'a> {
        let users = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        // StaticUsers answers at once or with a hash to compute, both owned: nothing of
        // the list borrowed here outlives this call.
        match users.authenticate(login) {
            Check::Done(v) => Check::Done(v),
            Check::Compute(f) => Check::Compute(f),
            Check::Blocking(f) => Check::Blocking(f),
            _ => Check::Done(Verdict::Unavailable),
        }
    }
}

/// What SIGHUP reloads: the users, and the certificate and key from their files.
struct Reload {
    /// The flags and variables of the start, and the settings they and the file made:
    /// a reload says which settings changed in the file and need a restart.
    args: ServeArgs,
    settings: Settings,
    sources: UserSources,
    generated: Option<(String, String)>,
    users: LiveUsers,
    cert: Arc<tls::ReloadableCert>,
    cert_files: (PathBuf, PathBuf),
}

impl Reload {
    /// Reads everything again; on any error nothing changes. Says what it did.
    fn run(&self) -> Result<String, String> {
        let file = self
            .sources
            .config
            .as_deref()
            .map(config::load)
            .transpose()?;
        let (users, names, _) = self.sources.load(file.as_ref(), self.generated.as_ref())?;
        // What else the file says now: applied at the next start, and said so, never
        // silently ignored.
        let unapplied = match Settings::resolve(&self.args, file.as_ref()) {
            Ok(now) => self.settings.changed(&now),
            Err(e) => vec![format!("(the file's settings: {e})")],
        };
        let (cert, key) = &self.cert_files;
        let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        let (chain, key_pem) = (read(cert)?, read(key)?);
        // Checked whole before anything is replaced.
        tls::ReloadableCert::from_pem(&chain, &key_pem).map_err(|e| cert_error(cert, key, &e))?;
        self.cert
            .reload_pem(&chain, &key_pem)
            .map_err(|e| cert_error(cert, key, &e))?;
        *self
            .users
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = users;
        let mut said = format!(
            "{} users, certificate {}",
            names.len().max(usize::from(self.generated.is_some())),
            cert.display()
        );
        if !unapplied.is_empty() {
            said.push_str(&format!(
                "; changed but not applied until a restart: {}",
                unapplied.join(", ")
            ));
        }
        Ok(said)
    }
}

/// A certificate or key that would not load, with the files named (review15c finding 7:
/// "keys may not be consistent: KeyMismatch" said neither).
fn cert_error(cert: &Path, key: &Path, e: &impl std::fmt::Display) -> String {
    format!(
        "certificate {} and private key {}: {e}",
        cert.display(),
        key.display()
    )
}

/// One user as a users file's line or a configuration file's `[[users]]` gives it.
pub(crate) struct UserFields<'a> {
    pub(crate) name: &'a str,
    pub(crate) hash: &'a str,
    pub(crate) home: Option<&'a str>,
    /// PERMISSIONS[;/DIR=PERMISSIONS...].
    pub(crate) permissions: Option<&'a str>,
    pub(crate) quota: Option<&'a str>,
    /// The user's own control-channel TLS policy, in place of the server's.
    pub(crate) control_tls: Option<ControlTls>,
    /// The user's own data-channel TLS policy, in place of the server's.
    pub(crate) data_tls: Option<DataTls>,
}

/// A users file's TLS field: `control=POLICY`, `data=POLICY` or both, comma-separated
/// (`control=require,data=require` for a partner who must use TLS on both channels
/// whatever the server's policies allow others).
fn parse_user_tls(field: &str) -> Result<(Option<ControlTls>, Option<DataTls>), String> {
    let (mut control, mut data) = (None, None);
    for part in field.split(',').map(str::trim) {
        let bad = || {
            format!(
                "TLS {part:?}: expected control=allow|credentials|require and/or \
                 data=allow|require|deny, comma-separated"
            )
        };
        let (key, value) = part.split_once('=').ok_or_else(bad)?;
        match key.trim() {
            "control" if control.is_none() => {
                control = Some(ControlTls::from_str(value.trim(), false).map_err(|_| bad())?);
            }
            "data" if data.is_none() => {
                data = Some(DataTls::from_str(value.trim(), false).map_err(|_| bad())?);
            }
            _ => return Err(bad()),
        }
    }
    Ok((control, data))
}

/// The core's control-channel policy for `--control-tls`'s value.
fn control_policy(c: ControlTls) -> ControlTlsPolicy {
    match c {
        ControlTls::Allow => ControlTlsPolicy::Allow,
        ControlTls::Credentials => ControlTlsPolicy::RequireForCredentials,
        ControlTls::Require => ControlTlsPolicy::Require,
    }
}

/// The core's data-channel policy for `--data-tls`'s value.
fn data_policy(d: DataTls) -> DataTlsPolicy {
    match d {
        DataTls::Allow => DataTlsPolicy::Allow,
        DataTls::Require => DataTlsPolicy::Require,
        DataTls::Deny => DataTlsPolicy::Deny,
    }
}

/// Checks `given` and adds it to `users` (its name to `names`).
pub(crate) fn add_user(
    users: StaticUsers,
    names: &mut Vec<String>,
    root: Option<&Path>,
    given: &UserFields<'_>,
) -> Result<StaticUsers, String> {
    let name = given.name;
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err("the user name is empty or holds control characters".into());
    }
    if name.eq_ignore_ascii_case("anonymous") || name.eq_ignore_ascii_case("ftp") {
        return Err(format!(
            "{name:?} is the anonymous login (see --anonymous), not a user name"
        ));
    }
    if names.iter().any(|n| n == name) {
        return Err(format!("user {name:?} is given twice"));
    }
    let mut user = User::new(name);
    // The home on disk, for a served directory (an object store's homes are prefixes,
    // there as soon as a file is).
    let mut home_dir = root.map(Path::to_path_buf);
    if let Some(home) = given.home {
        let home = home_path(home)?;
        let Some(root) = root else {
            user = user.with_home(home);
            return finish_user(users, names, user, None, given);
        };
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
                "the home of {name:?}, {home}, is not a directory under --root ({})",
                dir.display()
            ));
        }
        user = user.with_home(home);
        home_dir = Some(dir);
    }
    finish_user(users, names, user, home_dir, given)
}

/// The rest of [`add_user`]: permissions, quota, the hash.
fn finish_user(
    users: StaticUsers,
    names: &mut Vec<String>,
    mut user: User,
    home_dir: Option<PathBuf>,
    given: &UserFields<'_>,
) -> Result<StaticUsers, String> {
    let name = given.name;
    if let Some(rules) = given.permissions {
        if rules.is_empty() {
            return Err(
                "PERMISSIONS is empty: write all, none or a list (list,download...)".into(),
            );
        }
        let grants = parse_grants(rules)?;
        // Rules name paths within the home: one written from --root (or misspelled)
        // silently restricts nothing. It may name a directory made later, so warn.
        for (dir, _) in grants.dirs().filter(|_| home_dir.is_some()) {
            let on_disk = home_dir
                .as_deref()
                .unwrap_or(Path::new(""))
                .join(dir.components().collect::<PathBuf>());
            if !on_disk.is_dir() {
                say!(
                    "ftps: warning: user {name:?}: the rule for {dir} names no directory in \
                     the home ({}); rules are paths within the home",
                    on_disk.display()
                );
            }
        }
        user = user.with_grants(grants);
    }
    if let Some(quota) = given.quota {
        user = user.with_quota(parse_quota(quota)?);
    }
    user = user
        .with_control_tls(given.control_tls.map(control_policy))
        .with_data_tls(given.data_tls.map(data_policy));
    let users = users.with_user(user, given.hash).map_err(|_| {
        format!(
            "the hash of {name:?} is neither an Argon2 PHC string ({HASH_HINT}) nor a \
             crypt(3) hash ($y$, $6$, $5$) within the cost a login may take"
        )
    })?;
    names.push(name.to_owned());
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
    let text = read_secret_file(path, "--users-file")?;
    warn_if_readable(path, "--users-file");
    Ok(text)
}

/// Reads a regular file named by `flag` (a users or configuration file).
pub(crate) fn read_secret_file(path: &Path, flag: &str) -> Result<String, String> {
    let fail = |e: std::io::Error| format!("{flag} {}: {e}", path.display());
    let meta = std::fs::metadata(path).map_err(fail)?;
    if !meta.is_file() {
        return Err(format!("{flag} {}: not a file", path.display()));
    }
    std::fs::read_to_string(path).map_err(fail)
}

/// Warns (as ssh does for keys) if others may read `path`, which holds password hashes.
pub(crate) fn warn_if_readable(path: &Path, flag: &str) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        say!(
            "warning: {flag} {} can be read by other users (mode {mode:04o}), who could \
             attack its hashes offline; chmod 600 {}",
            path.display(),
            path.display()
        );
    }
}

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
        let or_not = if flag == "metrics" {
            String::new()
        } else {
            format!(", or --no-{flag}")
        };
        format!("cannot listen on {addr}: {e} (choose another with --{flag} ADDR{or_not})")
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

impl Settings {
    /// The names of the settings that differ in `now` (as the configuration file's keys).
    fn changed(&self, now: &Settings) -> Vec<String> {
        let mut out = Vec::new();
        let mut differs = |name: &str, same: bool| {
            if !same {
                out.push(name.to_owned());
            }
        };
        differs("root", self.root == now.root);
        differs("storage", self.storage == now.storage);
        differs("explicit", self.explicit == now.explicit);
        differs("implicit", self.implicit == now.implicit);
        differs("cert/key", self.cert == now.cert);
        differs("state_dir", self.state_dir == now.state_dir);
        differs("users_file", self.users_file == now.users_file);
        differs("anonymous", self.anonymous == now.anonymous);
        differs(
            "anonymous_upload",
            self.anonymous_upload == now.anonymous_upload,
        );
        differs("passive_ports", self.passive_ports == now.passive_ports);
        differs("advertise", self.advertise == now.advertise);
        differs("proxy_protocol", self.proxy_protocol == now.proxy_protocol);
        differs("lockout_redis", self.lockout_redis == now.lockout_redis);
        differs("control_tls", self.control_tls == now.control_tls);
        differs("data_tls", self.data_tls == now.data_tls);
        differs(
            "session_reuse_check",
            self.session_reuse_check == now.session_reuse_check,
        );
        differs("active", self.active == now.active);
        differs("allow_ccc", self.allow_ccc == now.allow_ccc);
        differs(
            "client_cipher_order",
            self.client_cipher_order == now.client_cipher_order,
        );
        differs("metrics", self.metrics == now.metrics);
        differs("drain_grace", self.drain_grace == now.drain_grace);
        differs(
            "storage_timeout",
            self.storage_timeout == now.storage_timeout,
        );
        out
    }
}

/// A `serve` invocation whose flags, variables and configuration file agree.
pub(crate) struct Prepared {
    args: ServeArgs,
    file: Option<config::Loaded>,
    settings: Settings,
}

/// Reads the configuration file and settles the settings: an error here is a usage error
/// (exit 2, as clap's), before anything is made or served.
pub(crate) fn prepare(args: ServeArgs) -> Result<Prepared, String> {
    let file = args.config.as_deref().map(config::load).transpose()?;
    let settings = Settings::resolve(&args, file.as_ref())?;
    if settings.explicit.is_none() && settings.implicit.is_none() {
        return Err("--no-explicit and --no-implicit leave nothing to serve".into());
    }
    Ok(Prepared {
        args,
        file,
        settings,
    })
}

pub(crate) async fn run(prepared: Prepared) -> Result<(), String> {
    let Prepared {
        args,
        file,
        settings: s,
    } = prepared;
    // SIGHUP is taken from now on: its default action ends the process, and the listeners
    // take connections before the reloading task would otherwise have registered (review15c
    // finding 2: a reload sent as the server said "serving" stopped it).
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| format!("cannot take SIGHUP: {e}"))?;
    match s.storage.clone() {
        None => {
            std::fs::create_dir_all(&s.root).map_err(|e| format!("{}: {e}", s.root.display()))?;
            let storage =
                LocalFs::new(&s.root).map_err(|e| format!("{}: {e}", s.root.display()))?;
            // The server never serves its own key or certificate: they must lie outside
            // the root (compared as canonical paths, symbolic links resolved), checked
            // before anything is made and again on the files themselves.
            let root = storage.root().to_path_buf();
            let serving = root.display().to_string();
            serve_on(storage, Some(root), serving, args, file, s, hangups).await
        }
        Some(url) => {
            let address = Address::parse(&url)
                .map_err(|e| format!("--storage {url}: {e}"))?
                .with_env_credentials();
            if address.access_key_id.is_none() || address.secret_access_key.is_none() {
                return Err(format!(
                    "--storage {url}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                ));
            }
            let store = ObjectStore::s3(&address).map_err(|e| format!("--storage {url}: {e}"))?;
            // A bucket that does not answer stops the start, not the first login.
            let checked = store.clone();
            tokio::task::spawn_blocking(move || checked.check())
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("--storage {url}: {e}"))?;
            serve_on(store, None, url, args, file, s, hangups).await
        }
    }
}

/// The rest of [`run`], on the storage chosen; `root` is the served directory (`None`
/// for an object store), `serving` what the start message names.
async fn serve_on<S: BlockingStorage>(
    storage: S,
    root: Option<PathBuf>,
    serving: String,
    args: ServeArgs,
    file: Option<config::Loaded>,
    s: Settings,
    hangups: tokio::signal::unix::Signal,
) -> Result<(), String> {
    let root_dir = root.as_deref();

    if !args.users.is_empty() {
        say!(
            "warning: --user puts a password on the command line, where other users of this \
             machine can read it (ps, /proc/PID/cmdline); use --users-file FILE or \
             {USERS_ENV} with NAME:HASH lines ({HASH_HINT})"
        );
    }
    let sources = UserSources {
        users_file: s.users_file.clone(),
        config: args.config.clone(),
        cli: args.users.clone(),
        anonymous: s.anonymous,
        root: root.clone(),
    };
    let (users, names, shown_password) = sources.load(file.as_ref(), None)?;
    let live = LiveUsers(Arc::new(RwLock::new(users)));

    let (cert, key) = match &s.cert {
        Some((c, k)) => (c.clone(), k.clone()),
        None => {
            outside_root(
                root_dir,
                "certificate state directory",
                "--state-dir DIR",
                &s.state_dir,
            )?;
            let addrs: Vec<IpAddr> = [s.explicit, s.implicit]
                .into_iter()
                .flatten()
                .map(|a| a.ip())
                .collect();
            self_signed(&s.state_dir, &addrs)?
        }
    };
    let cert = outside_root(root_dir, "certificate", "--cert FILE", &cert)?;
    let key = outside_root(root_dir, "private key", "--key FILE", &key)?;
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let resolver = Arc::new(
        tls::ReloadableCert::from_pem(&read(&cert)?, &read(&key)?)
            .map_err(|e| cert_error(&cert, &key, &e))?,
    );
    let mut tls = tls::server_config_with_resolver(resolver.clone()).map_err(|e| e.to_string())?;
    if s.client_cipher_order {
        tls.ignore_client_order = false;
    }

    let config = ServerConfig::default()
        .with_control_tls(control_policy(s.control_tls))
        .with_data_tls(data_policy(s.data_tls))
        .with_require_session_reuse(s.session_reuse_check)
        .with_active_mode(s.active)
        .with_allow_ccc(s.allow_ccc)
        .with_anonymous(s.anonymous)
        .with_anonymous_upload(s.anonymous_upload)
        .with_advertised_address(s.advertise);
    let mut builder = Server::builder(storage, live.clone())
        .config(config)
        .tls(tls)
        .storage_timeout(s.storage_timeout);
    // Sessions are bounded by the open files allowed as well as by the cap: each takes
    // about three descriptors (control, data, a file). Out of descriptors, accept fails
    // before any cap is reached, and no session would make room.
    let sessions = sessions_for(raise_open_files());
    if sessions < DEFAULT_SESSIONS {
        say!(
            "ftps: warning: the open-file limit allows about {sessions} sessions; raise it \
             (ulimit -n, LimitNOFILE=) for more"
        );
    }
    builder = builder.max_sessions(sessions, DEFAULT_SESSIONS_PER_ADDRESS.min(sessions));
    if let Some(ports) = s.passive_ports.clone() {
        builder = builder.passive_ports(ports);
    }
    if let Some(trusted) = s.proxy_protocol.clone() {
        builder = builder.proxy_protocol(trusted);
    }
    if let Some(url) = s.lockout_redis.clone() {
        // A URL that is not one stops the start; a Redis that does not answer does not
        // (the lockout counts locally and connects in the background).
        let lockout = tokio::task::spawn_blocking(move || {
            let (window, lock) = (Duration::from_secs(600), Duration::from_secs(300));
            ftps_fleet::RedisLockout::connect(&url, 10, window, lock)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("--lockout-redis {e}"))?;
        builder = builder.lockout(lockout);
    }
    let server = builder.build();
    if let Some(addr) = s.metrics {
        let handle = crate::metrics::install()?;
        let listener = listen(addr, "metrics").await?;
        let watched = server.clone();
        let draining = Arc::new(move || watched.is_draining());
        tokio::spawn(crate::metrics::serve(listener, handle, draining));
        println!("metrics: http://{addr}/metrics");
    }

    let explicit = match s.explicit {
        Some(addr) => Some((addr, listen(addr, "explicit").await?)),
        None => None,
    };
    let implicit = match s.implicit {
        Some(addr) => Some((addr, listen(addr, "implicit").await?)),
        None => None,
    };

    let (user, password) = match &shown_password {
        Some((u, p)) => (u.clone(), p.clone()),
        None => (names[0].clone(), "PASSWORD".to_owned()),
    };
    println!("ftps: serving {serving}");
    if let Some((u, p)) = &shown_password {
        println!("user: {u}   password: {p}");
    }
    println!(
        "users: NAME:HASH lines in --users-file FILE or {USERS_ENV}; `ftps hash-password` \
         makes a HASH (asking for the password, never on a command line)"
    );
    if s.anonymous {
        let what = if s.anonymous_upload {
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
    if let Some((addr, _)) = &explicit {
        let h = host(*addr);
        println!("\nexplicit FTPS (AUTH TLS) on {h}:");
        println!("  curl --ssl-reqd --cacert {ca} -u {user}:{password} ftp://{h}/");
        println!(
            "  lftp -u {user},{password} -e 'set ssl:ca-file {ca}; set ftp:ssl-force true; set ftp:ssl-protect-data true; ls; bye' ftp://{h}"
        );
    }
    if let Some((addr, _)) = &implicit {
        let h = host(*addr);
        println!("\nimplicit FTPS on {h}:");
        println!("  curl --cacert {ca} -u {user}:{password} ftps://{h}/");
        println!(
            "  lftp -u {user},{password} -e 'set ssl:ca-file {ca}; set ftp:ssl-protect-data true; ls; bye' ftps://{h}"
        );
    }
    println!(
        "\nSIGHUP reloads the users and the certificate; SIGTERM or Ctrl-C drains and stops \
         the server."
    );

    let serve = |listener: Option<TcpListener>, mode: TlsMode| {
        let server = server.clone();
        async move {
            match listener {
                Some(l) => server.serve(l, mode).await,
                None => Ok(()),
            }
        }
    };
    let reload = Arc::new(Reload {
        args: args.clone(),
        settings: s.clone(),
        sources,
        generated: shown_password.clone(),
        users: live,
        cert: resolver,
        cert_files: (cert.clone(), key.clone()),
    });
    let mut hangups = hangups;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let reload = reload.clone();
            match tokio::task::spawn_blocking(move || reload.run()).await {
                Ok(Ok(what)) => say!("ftps: reloaded: {what}"),
                Ok(Err(e)) => say!("ftps: reload failed, nothing changed: {e}"),
                Err(e) => say!("ftps: reload failed, nothing changed: {e}"),
            }
        }
    });
    // SIGTERM (a service manager, a rolling restart) or Ctrl-C: drain, then exit 0.
    let mut terms = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("SIGTERM: {e}"))?;
    let stopper = server.clone();
    let grace = s.drain_grace;
    let drained = tokio::spawn(async move {
        tokio::select! {
            _ = terms.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        say!(
            "ftps: draining: no new sessions; transfers under way have {} s to finish",
            grace.as_secs()
        );
        // A second signal ends the grace period at once: the sessions left are closed
        // (an unfinished upload discarded), as at its end (review16b, finding 2: it was
        // ignored, and only SIGKILL, which skips that, cut the wait short).
        let cut = tokio::select! {
            cut = stopper.drain(grace) => cut,
            _ = async {
                tokio::select! {
                    _ = terms.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            } => {
                say!("ftps: signalled again: closing the sessions left now");
                stopper.drain(Duration::ZERO).await
            }
        };
        match cut {
            0 => say!("ftps: drained"),
            n => say!("ftps: drained; {n} sessions closed at the end of the grace period"),
        }
    });
    let (a, b) = tokio::join!(
        serve(explicit.map(|(_, l)| l), TlsMode::Explicit),
        serve(implicit.map(|(_, l)| l), TlsMode::Implicit)
    );
    // The listeners stop when the drain starts; the sessions end with it.
    if server.is_draining() {
        let _ = drained.await;
    }
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
