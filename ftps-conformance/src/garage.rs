//! Garage, a real S3-compatible object store, started on loopback for a test: one node,
//! SQLite metadata, replication factor 1, a bucket and a key allowed on it.
//!
//! The binary is `FTPS_GARAGE` if set, else `garage` on `PATH` or in `~/.cargo/bin`
//! (`cargo xtask garage` installs it there: `cargo install garage --locked
//! --no-default-features --features bundled-libs,sqlite`). Missing, the test is skipped,
//! or fails when peers are required (`FTPS_REQUIRE_PEERS`).

use crate::peers::required;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The payload-hash header Garage insists on (curl 7.88 does not send it): that of an
/// empty body, for GETs.
const EMPTY_PAYLOAD: &str =
    "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The region Garage is configured with.
pub const REGION: &str = "garage";

/// A running Garage node, stopped and its files removed when dropped.
pub struct Garage {
    child: Child,
    dir: PathBuf,
    /// The S3 endpoint (`http://127.0.0.1:PORT`).
    pub endpoint: String,
    /// The bucket made for the test.
    pub bucket: String,
    /// The key's id (`AWS_ACCESS_KEY_ID`).
    pub key_id: String,
    /// The key's secret (`AWS_SECRET_ACCESS_KEY`).
    pub secret: String,
}

impl std::fmt::Debug for Garage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Garage")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

/// The garage binary, if there is one.
pub fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("FTPS_GARAGE") {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let home = std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin"));
    on_path
        .into_iter()
        .chain(home)
        .map(|d| d.join("garage"))
        .find(|p| p.is_file())
}

impl Garage {
    /// Starts a node with a bucket named `bucket`; `None` (skipped) if there is no
    /// binary and peers are not required.
    pub fn start(bucket: &str) -> Option<Garage> {
        let Some(program) = binary() else {
            assert!(
                !required(),
                "garage required (cargo xtask garage installs it)"
            );
            eprintln!("garage missing: skipped");
            return None;
        };
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ftps-garage-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("garage dir");
        // A port another process takes between the pick and garage's bind fails the
        // node at once ("Address already in use", seen under a loaded test run): picked
        // again, a few times.
        let mut attempt = 0;
        let (mut garage, config_path, node) = loop {
            attempt += 1;
            let (rpc, s3, admin) = quiet_ports();
            let secret: String = (0..32)
                .map(|i| format!("{:02x}", (i * 37 + 11) % 256))
                .collect();
            let config = format!(
                "metadata_dir = \"{dir}/meta\"\n\
                 data_dir = \"{dir}/data\"\n\
                 db_engine = \"sqlite\"\n\
                 replication_factor = 1\n\
                 rpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
                 rpc_public_addr = \"127.0.0.1:{rpc}\"\n\
                 rpc_secret = \"{secret}\"\n\
                 [s3_api]\n\
                 s3_region = \"{REGION}\"\n\
                 api_bind_addr = \"127.0.0.1:{s3}\"\n\
                 root_domain = \".s3.garage.localhost\"\n\
                 [admin]\n\
                 api_bind_addr = \"127.0.0.1:{admin}\"\n",
                dir = dir.display()
            );
            let config_path = dir.join("garage.toml");
            std::fs::write(&config_path, config).expect("garage config");
            let log = std::fs::File::create(dir.join("garage.log")).expect("garage log");
            let child = Command::new(&program)
                .arg("-c")
                .arg(&config_path)
                .arg("server")
                .env("RUST_LOG", "garage=warn")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("garage starts");
            let mut garage = Garage {
                child,
                dir: dir.clone(),
                endpoint: format!("http://127.0.0.1:{s3}"),
                bucket: bucket.to_owned(),
                key_id: String::new(),
                secret: String::new(),
            };
            match garage.node_id(&program, &config_path) {
                Ok(node) => break (garage, config_path, node),
                Err(e) if attempt < 3 && garage.log().contains("Address already in use") => {
                    eprintln!("garage: a port was taken, again ({e})");
                    drop(garage);
                    let _ = std::fs::remove_dir_all(dir.join("meta"));
                    let _ = std::fs::remove_dir_all(dir.join("data"));
                }
                Err(e) => panic!("garage did not start: {e}\n{}", garage.log()),
            }
        };
        garage.provision(&program, &config_path, &node);
        Some(garage)
    }

    /// The node's id, once it answers (an error once it died or 30 s passed).
    fn node_id(&mut self, program: &Path, config: &Path) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match garage_cli(program, config, &["node", "id", "-q"]) {
                Ok(id) => {
                    let id = id.trim();
                    return Ok(id.split('@').next().unwrap_or(id).to_owned());
                }
                Err(e) => {
                    if Instant::now() > deadline || self.child.try_wait().is_ok_and(|s| s.is_some())
                    {
                        return Err(e);
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }

    /// Lays the node out, makes the bucket and the key.
    fn provision(&mut self, program: &Path, config: &Path, node: &str) {
        let cli = |args: &[&str]| garage_cli(program, config, args);
        let log = self.dir.join("garage.log");
        let step = |args: &[&str]| {
            cli(args).unwrap_or_else(|e| {
                panic!("{e}\n{}", std::fs::read_to_string(&log).unwrap_or_default())
            })
        };
        // `node id` answers before the node's RPC port takes the other commands
        // (review15d saw `layout assign` refused, connection refused): retried a while.
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Err(e) = cli(&["layout", "assign", "-z", "dc1", "-c", "1G", node]) {
            if Instant::now() > deadline || self.child.try_wait().is_ok_and(|s| s.is_some()) {
                panic!("{e}\n{}", std::fs::read_to_string(&log).unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        step(&["layout", "apply", "--version", "1"]);
        step(&["bucket", "create", &self.bucket]);
        let key = step(&["key", "create", "ftps-test"]);
        let field = |name: &str| {
            key.lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().to_owned())
                })
                .unwrap_or_else(|| panic!("no {name} in: {key}"))
        };
        let (key_id, secret) = (field("Key ID"), field("Secret key"));
        step(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            &self.bucket,
            "--key",
            "ftps-test",
        ]);
        self.key_id = key_id;
        self.secret = secret;
        // The S3 port is up once the layout is.
        let deadline = Instant::now() + Duration::from_secs(30);
        let s3 = self.endpoint.trim_start_matches("http://").to_owned();
        while std::net::TcpStream::connect(&s3).is_err() {
            assert!(
                Instant::now() < deadline,
                "garage's S3 port did not open\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // And it answers S3 requests for the bucket with the key: a port open before then
        // failed a test's first request ("error sending request", seen in CI).
        let url = format!("{}/{}?list-type=2&max-keys=1", self.endpoint, self.bucket);
        let sigv4 = format!("aws:amz:{REGION}:s3");
        let login = format!("{}:{}", self.key_id, self.secret);
        loop {
            let listed = Command::new("curl")
                .args(["-sS", "-m", "5", "--aws-sigv4", &sigv4, "-u", &login, "-H"])
                .arg(EMPTY_PAYLOAD)
                .arg(&url)
                .output()
                .is_ok_and(|o| {
                    o.status.success()
                        && String::from_utf8_lossy(&o.stdout).contains("ListBucketResult")
                });
            if listed {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "garage's S3 API did not answer\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// curl with `args`, its requests signed for this node (AWS SigV4, the key made for
    /// the test): the S3 API read by a client of its own, not through OpenDAL. Garage
    /// insists on the payload's hash, which curl 7.88 does not send: that of an empty body
    /// goes with every request (all are GETs), signed with the rest.
    pub fn s3(&self, args: &[&str]) -> std::process::Output {
        let sigv4 = format!("aws:amz:{REGION}:s3");
        let login = format!("{}:{}", self.key_id, self.secret);
        let out = Command::new("curl")
            .args(["-sS", "-m", "30", "--aws-sigv4", &sigv4, "-u", &login, "-H"])
            .arg(EMPTY_PAYLOAD)
            .args(args)
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "curl (S3): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The object `key` of the bucket, read through the S3 API; `None` if there is none.
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        let url = format!("{}/{}/{key}", self.endpoint, self.bucket);
        let mut body = self.s3(&["-o", "-", "-w", "\n%{http_code}", &url]).stdout;
        let at = body
            .iter()
            .rposition(|b| *b == b'\n')
            .expect("a status line");
        let code = String::from_utf8_lossy(&body[at + 1..]).into_owned();
        body.truncate(at);
        match code.as_str() {
            "200" => Some(body),
            "404" => None,
            other => panic!(
                "S3 GET {key}: HTTP {other}: {}",
                String::from_utf8_lossy(&body)
            ),
        }
    }

    /// The keys of the bucket beneath `prefix`, listed through the S3 API (one page:
    /// up to 1000).
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        // SigV4 signs the query as encoded: `/` must go as %2F.
        let url = format!(
            "{}/{}?list-type=2&prefix={}",
            self.endpoint,
            self.bucket,
            prefix.replace('/', "%2F")
        );
        let text = String::from_utf8_lossy(&self.s3(&[&url]).stdout).into_owned();
        assert!(text.contains("ListBucketResult"), "S3 list: {text}");
        text.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_owned)
            .collect()
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("garage.log")).unwrap_or_default()
    }

    /// The `s3://` address of the bucket (with `prefix` beneath it) for
    /// `ftps_object::Address::parse` and `ftps serve --storage`.
    pub fn address(&self, prefix: &str) -> String {
        format!(
            "s3://{}/{}?endpoint={}&region={REGION}",
            self.bucket,
            prefix.trim_matches('/'),
            self.endpoint
        )
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs the garage CLI with `args` against the node of `config`: its output, or why not.
fn garage_cli(program: &Path, config: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .arg("-c")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "garage {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Three distinct free ports below the kernel's ephemeral range (which outgoing
/// connections draw from, so a port picked there can be taken before the node binds it).
pub(crate) fn quiet_ports() -> (u16, u16, u16) {
    let low = crate::peers::ephemeral_start();
    let (from, to) = (10_000u16, low.max(10_100));
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()) << 32;
    let mut held = Vec::new();
    while held.len() < 3 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let port = from + (seed % u64::from(to - from)) as u16;
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
        }
    }
    let port = |i: usize| held[i].local_addr().map_or(0, |a| a.port());
    (port(0), port(1), port(2))
}
