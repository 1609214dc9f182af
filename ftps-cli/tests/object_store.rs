//! Issue 15: `ftps serve --storage s3://...` on a real object store (Garage, started on
//! loopback): curl, lftp and `ftps` upload and download through it, and what landed is
//! read back through the S3 API itself (curl signing its requests with AWS SigV4), byte
//! for byte; an upload cut off midway leaves no object. `cargo xtask ci` sets
//! `FTPS_REQUIRE_PEERS=1`, which turns a missing Garage or client into a failure.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

mod support;
use support::{free_port, hash, have, start};

use ftps_conformance::garage::Garage;
use ftps_conformance::storage::data;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "s3-Pass-5521";

struct Served {
    garage: Garage,
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Served {
    fn start(name: &str) -> Option<Served> {
        let garage = Garage::start("ftp")?;
        let dir = std::env::temp_dir().join(format!("ftps-s3-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let h = hash(PASSWORD);
        std::fs::write(
            dir.join("users"),
            format!("alice:{h}:/alice\ndrop:{h}:/inbox:upload\n"),
        )
        .unwrap();
        let port = free_port();
        let storage = garage.address("served");
        let child = start(
            &dir,
            &[
                "--storage",
                &storage,
                "--users-file",
                "users",
                "--no-implicit",
                "--explicit",
                &format!("127.0.0.1:{port}"),
            ],
            &[
                ("AWS_ACCESS_KEY_ID", &garage.key_id),
                ("AWS_SECRET_ACCESS_KEY", &garage.secret),
            ],
        );
        Some(Served {
            garage,
            child,
            dir,
            port,
        })
    }

    fn ca(&self) -> PathBuf {
        self.dir.join(".ftps/cert.pem")
    }

    fn url(&self, path: &str) -> String {
        format!("ftp://127.0.0.1:{}{path}", self.port)
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let out = Command::new("timeout")
            .arg("120")
            .arg(program)
            .args(args)
            .current_dir(&self.dir)
            .env("FTPS_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        eprintln!(
            "{program} {args:?} -> {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn curl(&self, user: &str, args: &[&str]) -> Output {
        let ca = self.ca().display().to_string();
        let login = format!("{user}:{PASSWORD}");
        let mut all = vec!["-sS", "--ssl-reqd", "--cacert", &ca, "-u", &login];
        all.extend_from_slice(args);
        self.run("curl", &all)
    }

    fn lftp(&self, user: &str, script: &str) -> Output {
        let ca = self.ca().display().to_string();
        let script = format!(
            "set ssl:ca-file {ca}; set ftp:ssl-force true; set ftp:ssl-protect-data true; \
             set net:max-retries 1; {script}; bye"
        );
        let login = format!("{user},{PASSWORD}");
        self.run("lftp", &["-u", &login, "-e", &script, &self.url("")])
    }

    fn ftps(&self, args: &[&str]) -> Output {
        let ca = self.ca().display().to_string();
        let mut all = vec![args[0], "--ca-cert", &ca, "--user", "alice"];
        all.extend_from_slice(&args[1..]);
        self.run(env!("CARGO_BIN_EXE_ftps"), &all)
    }

    /// The object `key` (beneath the served prefix) read through the S3 API; `None` if
    /// the store has no such object.
    fn object(&self, key: &str) -> Option<Vec<u8>> {
        self.garage.object(&format!("served/{key}"))
    }

    /// The keys beneath `prefix` (of the served prefix), through the S3 API.
    fn keys(&self, prefix: &str) -> Vec<String> {
        self.garage.keys(&format!("served/{prefix}"))
    }
}

fn write(dir: &Path, name: &str, body: &[u8]) -> String {
    std::fs::write(dir.join(name), body).unwrap();
    name.to_owned()
}

#[test]
fn curl_lftp_and_ftps_store_and_fetch_through_garage() {
    if !(have("curl") && have("lftp")) {
        return;
    }
    let Some(s) = Served::start("clients") else {
        return;
    };
    // curl: a small file and one of several multipart parts, then both back.
    let small = data(11, 300_001);
    let big = data(12, 19 * 1024 * 1024 + 3);
    let f = write(&s.dir, "small.bin", &small);
    assert!(
        s.curl("alice", &["-T", &f, &s.url("/small.bin")])
            .status
            .success()
    );
    let f = write(&s.dir, "big.bin", &big);
    assert!(
        s.curl("alice", &["-T", &f, &s.url("/big.bin")])
            .status
            .success()
    );
    assert_eq!(s.object("alice/small.bin").as_deref(), Some(&small[..]));
    assert_eq!(s.object("alice/big.bin").as_deref(), Some(&big[..]));
    let got = s.curl("alice", &[&s.url("/big.bin")]);
    assert!(got.status.success());
    assert!(got.stdout == big, "curl download of big.bin differs");
    // A restarted download is a ranged read.
    let got = s.curl("alice", &["-C", "1000000", &s.url("/big.bin")]);
    assert!(got.stdout == big[1_000_000..], "curl -C download differs");

    // lftp: a directory, an upload into it, a listing, a download, a rename, a delete.
    let lf = data(13, 2_000_000);
    write(&s.dir, "lftp.bin", &lf);
    let out = s.lftp(
        "alice",
        "mkdir docs; put lftp.bin -o docs/lftp.bin; cls -l docs; get docs/lftp.bin -o lftp-back.bin; \
         mv docs/lftp.bin docs/moved.bin; rm small.bin",
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("lftp.bin"));
    assert!(std::fs::read(s.dir.join("lftp-back.bin")).unwrap() == lf);
    assert_eq!(s.object("alice/docs/moved.bin").as_deref(), Some(&lf[..]));
    assert_eq!(s.object("alice/docs/lftp.bin"), None);
    assert_eq!(s.object("alice/small.bin"), None);

    // ftps: put and get.
    let ours = data(14, 5_000_000);
    write(&s.dir, "ours.bin", &ours);
    assert!(
        s.ftps(&["put", "ours.bin", &s.url("/docs/")])
            .status
            .success()
    );
    assert_eq!(s.object("alice/docs/ours.bin").as_deref(), Some(&ours[..]));
    assert!(
        s.ftps(&["get", &s.url("/docs/ours.bin"), "ours-back.bin"])
            .status
            .success()
    );
    assert!(std::fs::read(s.dir.join("ours-back.bin")).unwrap() == ours);
    // --checksum: the server's HASH of the object matches the bytes downloaded.
    let out = s.ftps(&["get", "--checksum", &s.url("/docs/ours.bin"), "checked.bin"]);
    assert!(out.status.success());
    assert!(std::fs::read(s.dir.join("checked.bin")).unwrap() == ours);
    let listed = s.ftps(&["ls", &s.url("/docs/")]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("ours.bin") && listed.contains("moved.bin"),
        "{listed}"
    );

    // What an object store cannot do is refused, not half done: APPE gets 502 (curl
    // --append), and the object stays as it was.
    let out = s.curl(
        "alice",
        &["--append", "-T", "ours.bin", &s.url("/docs/moved.bin")],
    );
    assert!(!out.status.success());
    assert_eq!(s.object("alice/docs/moved.bin").as_deref(), Some(&lf[..]));

    // The drop-box user uploads a new name, never over one, and lists nothing.
    write(&s.dir, "report.txt", b"report");
    assert!(
        s.curl("drop", &["-T", "report.txt", &s.url("/report.txt")])
            .status
            .success()
    );
    assert_eq!(
        s.object("inbox/report.txt").as_deref(),
        Some(&b"report"[..])
    );
    write(&s.dir, "other.txt", b"other");
    let again = s.curl("drop", &["-T", "other.txt", &s.url("/report.txt")]);
    assert_eq!(
        again.status.code(),
        Some(25),
        "an overwrite by the drop-box user"
    );
    assert_eq!(
        s.object("inbox/report.txt").as_deref(),
        Some(&b"report"[..])
    );
    assert!(
        !s.curl("drop", &[&s.url("/")]).status.success(),
        "drop listed"
    );
}

#[test]
fn an_upload_cut_off_leaves_no_object() {
    if !have("curl") {
        return;
    }
    let Some(s) = Served::start("cut") else {
        return;
    };
    let body = data(21, 40 * 1024 * 1024);
    write(&s.dir, "cut.bin", &body);
    // Slowly, so that parts go up before it is killed.
    let ca = s.ca().display().to_string();
    let login = format!("alice:{PASSWORD}");
    let mut curl = Command::new("curl")
        .args(["-sS", "--ssl-reqd", "--cacert", &ca, "-u", &login])
        .args(["--limit-rate", "8M", "-T", "cut.bin", &s.url("/cut.bin")])
        .current_dir(&s.dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        curl.try_wait().unwrap().is_none(),
        "the upload ended before it was cut"
    );
    curl.kill().unwrap();
    let _ = curl.wait();
    // The server sees the connection end and aborts the upload; nothing appears, then
    // or later.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        assert_eq!(
            s.keys("alice/"),
            Vec::<String>::new(),
            "a cut upload is visible"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // And the session's user can upload the name afresh.
    let small = write(&s.dir, "whole.bin", b"whole");
    assert!(
        s.curl("alice", &["-T", &small, &s.url("/cut.bin")])
            .status
            .success()
    );
    assert_eq!(s.object("alice/cut.bin").as_deref(), Some(&b"whole"[..]));
    // The listing that showed nothing above shows what is there.
    assert_eq!(s.keys("alice/"), ["served/alice/cut.bin"]);
}
