//! `ftps get --checksum`: after a download, the server's HASH (draft-bryan-ftpext-hash-02)
//! is compared with the hash of the bytes written. A server that lies about the hash (or a
//! download that does not match) exits 6, says why, and leaves no file at the target (or
//! the old file as it was); a server without HASH is said so and the download goes on
//! unchecked; a server
//! that tells the truth gets the file. Against the scripted server of `ftps-conformance`
//! and ProFTPD with mod_digest (root and the peers, as `real_servers.rs`).

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::peers::{self, PASSWORD};
use ftps_conformance::scripted::{Ending, FILE, HashAnswers, ScriptedServer, file_content};
use std::path::{Path, PathBuf};

mod support;
use support::ftps_with_password as run;

fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    out.sort();
    out
}

fn fresh(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ftps-checksum-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_lying_server_fails_the_download_and_keeps_nothing() {
    let dir = fresh("scripted");
    let server = ScriptedServer::start(Ending::CloseThenReply).unwrap();
    std::fs::write(dir.join("ca.pem"), server.cert_pem()).unwrap();
    let url = format!("ftp://127.0.0.1:{}/{FILE}", server.addr().port());
    let get = |extra: &[&str], local: &str| {
        let args: Vec<&str> = ["get", "--ca-cert", "ca.pem", "--user", "anyone"]
            .into_iter()
            .chain(extra.iter().copied())
            .chain([url.as_str(), local])
            .collect();
        run(&dir, &args, "anything")
    };

    // No HASH offered: said so, and the download goes on unchecked (issue 15: "vsftpd
    // and Pure-FTPd do not: say so and go on").
    let out = get(&["--checksum"], "new.bin");
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not offer HASH"), "{stderr}");
    assert_eq!(names(&dir), ["ca.pem", "new.bin"]);
    assert!(!server.log().iter().any(|l| l.contains("> HASH")));
    std::fs::remove_file(dir.join("new.bin")).unwrap();

    // A lying server: exit 6, the reason given, no file left at the target.
    server.set_hash(HashAnswers::Lying);
    let out = get(&["--checksum"], "new.bin");
    assert_eq!(out.status.code(), Some(6));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("checksum mismatch") && stderr.contains("SHA-256"),
        "{stderr}"
    );
    assert_eq!(names(&dir), ["ca.pem"], "no file, no temporary file");
    assert!(server.log().iter().any(|l| l.contains("> HASH")));

    // An existing file stays as it was.
    std::fs::write(dir.join("report.bin"), b"the user's old report").unwrap();
    let out = get(&["--checksum"], "report.bin");
    assert_eq!(out.status.code(), Some(6));
    assert_eq!(
        std::fs::read(dir.join("report.bin")).unwrap(),
        b"the user's old report"
    );
    assert_eq!(names(&dir), ["ca.pem", "report.bin"]);

    // With -C the part is not kept either: it does not hash as the file does.
    std::fs::write(dir.join("part.bin.part"), &file_content()[..1000]).unwrap();
    let out = get(&["--checksum", "-C"], "part.bin");
    assert_eq!(out.status.code(), Some(6));
    assert_eq!(names(&dir), ["ca.pem", "report.bin"]);

    // Standard output cannot be taken back: refused before anything is sent.
    let out = get(&["--checksum"], "-");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());

    // A truthful server: the file arrives, whole; without --checksum no HASH is asked.
    server.set_hash(HashAnswers::True);
    let out = get(&["--checksum"], "report.bin");
    assert_eq!(out.status.code(), Some(0));
    assert!(std::fs::read(dir.join("report.bin")).unwrap() == file_content());
    assert_eq!(names(&dir), ["ca.pem", "report.bin"]);
    let hashes = server.log().iter().filter(|l| l.contains("> HASH")).count();
    let out = get(&[], "plain.bin");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        server.log().iter().filter(|l| l.contains("> HASH")).count(),
        hashes
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn checksum_against_proftpd_mod_digest() {
    let Some(p) = peers::proftpd(false) else {
        return;
    };
    let data: Vec<u8> = (0..500_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 9) as u8)
        .collect();
    std::fs::write(p.home.join("data.bin"), &data).unwrap();
    p.chown_home();
    let dir = fresh("proftpd");
    let url = format!("ftp://127.0.0.1:{}/data.bin", p.port);
    let ca = p.cert.display().to_string();
    let out = run(
        &dir,
        &[
            "get",
            "--checksum",
            "--ca-cert",
            &ca,
            "--user",
            &p.user,
            &url,
            "got.bin",
        ],
        PASSWORD,
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(std::fs::read(dir.join("got.bin")).unwrap() == data);
    assert_eq!(names(&dir), ["got.bin"]);
    let _ = std::fs::remove_dir_all(&dir);
}
