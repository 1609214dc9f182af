//! The tokio server against curl: explicit and implicit FTPS, list, get, put, resume,
//! mkdir, delete, EPSV and PASV, PROT C policy, TLS 1.2 and 1.3. Skipped (with a message)
//! where curl is not installed; `cargo xtask ci` installs it.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_proto::server::{DataTlsPolicy, ServerConfig, TlsMode};
use ftps_tokio::{LocalFs, Server, StaticUsers, tls};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use tokio::net::TcpListener;

struct Fixture {
    dir: PathBuf,
    root: PathBuf,
    ca: PathBuf,
    explicit: SocketAddr,
    implicit: SocketAddr,
}

/// Whether curl can run. Under `cargo xtask ci` (which installs it and sets
/// `FTPS_REQUIRE_PEERS=1`) a missing curl is a failure, not a skip.
fn curl_available() -> bool {
    let found = std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found || std::env::var_os("FTPS_REQUIRE_PEERS").is_none(),
        "curl is required but not installed"
    );
    found
}

async fn start(name: &str, config: ServerConfig) -> Fixture {
    let dir = std::env::temp_dir().join(format!("ftps-tokio-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("hello.txt"), b"hello from the ftps lab\n").unwrap();
    std::fs::write(root.join("with space.txt"), b"sp").unwrap();
    std::fs::write(root.join("日本語.txt"), b"nihongo").unwrap();

    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let cert = params.self_signed(&key).unwrap();
    let ca = dir.join("cert.pem");
    std::fs::write(&ca, cert.pem()).unwrap();
    let tls =
        tls::server_config_from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap();

    let users = StaticUsers::new().with_password("alice", "wonderland");
    let server = Server::builder(LocalFs::new(&root).unwrap(), users)
        .config(config)
        .tls(tls)
        .build();
    let explicit = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let implicit = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fixture = Fixture {
        dir,
        root,
        ca,
        explicit: explicit.local_addr().unwrap(),
        implicit: implicit.local_addr().unwrap(),
    };
    let s2 = server.clone();
    tokio::spawn(async move { server.serve(explicit, TlsMode::Explicit).await });
    tokio::spawn(async move { s2.serve(implicit, TlsMode::Implicit).await });
    fixture
}

impl Fixture {
    async fn curl(&self, args: &[&str]) -> Output {
        let mut cmd = tokio::process::Command::new("curl");
        cmd.args(["--silent", "--show-error", "--max-time", "20", "--cacert"])
            .arg(&self.ca);
        cmd.args(["--user", "alice:wonderland"]);
        cmd.args(args);
        cmd.output().await.unwrap()
    }

    fn url(&self, implicit: bool, path: &str) -> String {
        if implicit {
            format!("ftps://127.0.0.1:{}/{path}", self.implicit.port())
        } else {
            format!("ftp://127.0.0.1:{}/{path}", self.explicit.port())
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "curl failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_explicit_and_implicit() {
    if !curl_available() {
        eprintln!("curl not installed: skipped");
        return;
    }
    let f = start("basic", ServerConfig::default()).await;
    for implicit in [false, true] {
        let ssl: &[&str] = if implicit { &[] } else { &["--ssl-reqd"] };
        // list
        let listing = ok(&f
            .curl(&[ssl, &[f.url(implicit, "").as_str()]].concat())
            .await);
        assert!(
            listing.contains("hello.txt")
                && listing.contains("with space.txt")
                && listing.contains("日本語.txt"),
            "{listing}"
        );
        // get
        let body = ok(&f
            .curl(&[ssl, &[f.url(implicit, "hello.txt").as_str()]].concat())
            .await);
        assert_eq!(body, "hello from the ftps lab\n");
        // get a name with a space, and a UTF-8 name
        assert_eq!(
            ok(&f
                .curl(&[ssl, &[f.url(implicit, "with%20space.txt").as_str()]].concat())
                .await),
            "sp"
        );
        assert_eq!(
            ok(&f
                .curl(
                    &[
                        ssl,
                        &[f.url(implicit, "%E6%97%A5%E6%9C%AC%E8%AA%9E.txt").as_str()]
                    ]
                    .concat()
                )
                .await),
            "nihongo"
        );
        // PASV instead of EPSV
        let body = ok(&f
            .curl(
                &[
                    ssl,
                    &["--disable-epsv", f.url(implicit, "hello.txt").as_str()],
                ]
                .concat(),
            )
            .await);
        assert_eq!(body, "hello from the ftps lab\n");
    }

    // TYPE A: the server sends CRLF line endings (25 bytes on the wire for the 24-byte
    // file; curl turns them back into LF), and an ASCII upload is stored with LF.
    let ascii = ok(&f
        .curl(&[
            "--ssl-reqd",
            "--use-ascii",
            "-w",
            "|%{size_download}",
            &f.url(false, "hello.txt"),
        ])
        .await);
    assert_eq!(ascii, "hello from the ftps lab\n|25");
    let text = f.dir.join("text.txt");
    write(&text, b"one\ntwo\n"); // curl sends it as one CRLF two CRLF
    ok(&f
        .curl(&[
            "--ssl-reqd",
            "--use-ascii",
            "-T",
            text.to_str().unwrap(),
            &f.url(false, "lf.txt"),
        ])
        .await);
    assert_eq!(std::fs::read(f.path("lf.txt")).unwrap(), b"one\ntwo\n");

    // put, then resume an upload, then download with resume
    let local = f.dir.join("upload.bin");
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    write(&local, &content);
    let local_s = local.to_str().unwrap();
    ok(&f
        .curl(&["--ssl-reqd", "-T", local_s, &f.url(false, "sub/upload.bin")])
        .await);
    assert_eq!(std::fs::read(f.path("sub/upload.bin")).unwrap(), content);
    write(&f.path("sub/partial.bin"), &content[..1_000_000]);
    ok(&f
        .curl(&[
            "--ssl-reqd",
            "-C",
            "-",
            "-T",
            local_s,
            &f.url(false, "sub/partial.bin"),
        ])
        .await);
    assert_eq!(std::fs::read(f.path("sub/partial.bin")).unwrap(), content);
    let down = f.dir.join("down.bin");
    write(&down, &content[..123_456]);
    ok(&f
        .curl(&[
            "--ssl-reqd",
            "-C",
            "-",
            "-o",
            down.to_str().unwrap(),
            &f.url(false, "sub/upload.bin"),
        ])
        .await);
    assert_eq!(std::fs::read(&down).unwrap(), content);

    // empty file round trip
    let empty = f.dir.join("empty");
    write(&empty, b"");
    ok(&f
        .curl(&[
            "--ssl-reqd",
            "-T",
            empty.to_str().unwrap(),
            &f.url(false, "empty.txt"),
        ])
        .await);
    assert_eq!(std::fs::read(f.path("empty.txt")).unwrap(), b"");
    assert_eq!(
        ok(&f.curl(&["--ssl-reqd", &f.url(false, "empty.txt")]).await),
        ""
    );

    // mkdir with --ftp-create-dirs, delete with -Q
    ok(&f
        .curl(&[
            "--ssl-reqd",
            "--ftp-create-dirs",
            "-T",
            local_s,
            &f.url(false, "new/deep/file.bin"),
        ])
        .await);
    assert!(f.path("new/deep/file.bin").is_file());
    ok(&f
        .curl(&[
            "--ssl-reqd",
            "-Q",
            "DELE new/deep/file.bin",
            &f.url(false, ""),
        ])
        .await);
    assert!(!f.path("new/deep/file.bin").exists());

    // TLS 1.2 and 1.3, with session reuse checked (the default): several transfers on one
    // control connection, each data connection resuming the control session.
    for version in [
        ["--tlsv1.2", "--tls-max", "1.2"],
        ["--tlsv1.3", "--tls-max", "1.3"],
    ] {
        let urls = [
            f.url(false, "hello.txt"),
            f.url(false, "with%20space.txt"),
            f.url(false, "hello.txt"),
            f.url(false, "sub/upload.bin"),
        ];
        let args: Vec<&str> = ["--ssl-reqd"]
            .into_iter()
            .chain(version)
            .chain(urls.iter().map(String::as_str))
            .collect();
        let body = f.curl(&args).await;
        let out = ok(&body);
        assert!(
            out.starts_with("hello from the ftps lab\nsphello from the ftps lab\n"),
            "{version:?}"
        );
        assert_eq!(body.stdout.len(), 24 + 2 + 24 + content.len());
    }
    // No partial upload files are left visible.
    let names: Vec<String> = std::fs::read_dir(&f.root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with(".ftps-upload")),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_prot_c_follows_the_data_policy() {
    if !curl_available() {
        eprintln!("curl not installed: skipped");
        return;
    }
    // Default: data TLS required, so PROT C transfers get 521.
    let f = start("protc-require", ServerConfig::default()).await;
    let out = f
        .curl(&["--ftp-ssl-control", &f.url(false, "hello.txt")])
        .await;
    assert!(!out.status.success());
    // Allowed: PROT C works.
    let f = start(
        "protc-allow",
        ServerConfig::default().with_data_tls(DataTlsPolicy::Allow),
    )
    .await;
    assert_eq!(
        ok(&f
            .curl(&["--ftp-ssl-control", &f.url(false, "hello.txt")])
            .await),
        "hello from the ftps lab\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_login_is_refused_by_default() {
    if !curl_available() {
        eprintln!("curl not installed: skipped");
        return;
    }
    let f = start("plain", ServerConfig::default()).await;
    let out = f.curl(&[&f.url(false, "hello.txt")]).await;
    assert!(!out.status.success(), "curl without TLS must not log in");
    let wrong = tokio::process::Command::new("curl")
        .args(["--silent", "--ssl-reqd", "--max-time", "20", "--cacert"])
        .arg(&f.ca)
        .args(["--user", "alice:wrong", &f.url(false, "hello.txt")])
        .output()
        .await
        .unwrap();
    assert!(!wrong.status.success());
}

/// CCC, when the server allows it: curl clears the control connection after login (in
/// both of its shutdown modes) and the transfers still work, data still under TLS. In
/// "passive" mode curl never answers the server's close_notify, and OpenSSL then drops
/// the session as not cleanly closed ("old SSL session ID is stale"), so its data
/// connections cannot resume the control session: that mode needs the reuse check off
/// (on vsftpd too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ccc_with_curl_in_active_and_passive_shutdown_modes() {
    if !curl_available() {
        return;
    }
    for mode in ["active", "passive"] {
        let config = ServerConfig::default()
            .with_allow_ccc(true)
            .with_require_session_reuse(mode == "active");
        let f = start(&format!("ccc-{mode}"), config).await;
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        write(&f.path("big.bin"), &big);
        let ccc = ["--ssl-reqd", "--ftp-ssl-ccc", "--ftp-ssl-ccc-mode", mode];
        let out = f
            .curl(&[&ccc[..], &[&f.url(false, "big.bin")]].concat())
            .await;
        assert!(
            out.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout == big, "{mode}: download differs");
        let upload = f.dir.join(format!("up-{mode}.bin"));
        write(&upload, &big[..1_234_567]);
        let name = format!("up-{mode}.bin");
        let out = f
            .curl(
                &[
                    &ccc[..],
                    &["-T", upload.to_str().unwrap(), &f.url(false, &name)],
                ]
                .concat(),
            )
            .await;
        ok(&out);
        assert_eq!(std::fs::read(f.path(&name)).unwrap(), &big[..1_234_567]);
        let out = f
            .curl(&[&ccc[..], &["--list-only", &f.url(false, "")]].concat())
            .await;
        assert!(ok(&out).contains(&name));
    }
}
