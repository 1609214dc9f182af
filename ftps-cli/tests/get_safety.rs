//! `ftps get` never destroys what the user has: a download cut short (the server ends the
//! data connection without TLS close_notify, so the data may be truncated) exits 6 and
//! leaves an existing local file as it was and no temporary file behind; with `-C` the
//! partial data stays in `NAME.part`, and the next `-C` finishes it from there. Against
//! the scripted server of `ftps-conformance`, whose way of ending data connections the
//! test chooses.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::scripted::{Ending, FILE, ScriptedServer, file_content};
use std::path::Path;
use std::process::{Command, Output};

fn get(dir: &Path, server: &ScriptedServer, extra: &[&str], local: &str) -> Output {
    let url = format!("ftp://127.0.0.1:{}/{FILE}", server.addr().port());
    let out = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .current_dir(dir)
        .args(["get", "--ca-cert", "ca.pem", "--user", "anyone"])
        .args(extra)
        .args([&url, local])
        .env("FTPS_PASSWORD", "anything")
        .output()
        .unwrap();
    eprintln!(
        "ftps get {extra:?} -> {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    out.sort();
    out
}

#[test]
fn a_truncated_download_keeps_the_old_file_and_resume_keeps_the_part() {
    let dir = std::env::temp_dir().join(format!("ftps-get-safety-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let server = ScriptedServer::start(Ending::NoCloseNotify).unwrap();
    std::fs::write(dir.join("ca.pem"), server.cert_pem()).unwrap();
    std::fs::write(dir.join("report.bin"), b"the user's old report").unwrap();

    // Cut short: exit 6, the old file as it was, nothing else left.
    let out = get(&dir, &server, &[], "report.bin");
    assert_eq!(out.status.code(), Some(6));
    assert_eq!(
        std::fs::read(dir.join("report.bin")).unwrap(),
        b"the user's old report"
    );
    assert_eq!(names(&dir), ["ca.pem", "report.bin"]);

    // With -C, onto a name with no partial file yet: the partial data is kept as .part,
    // the target is not created.
    let out = get(&dir, &server, &["-C"], "new.bin");
    assert_eq!(out.status.code(), Some(6));
    assert!(!dir.join("new.bin").exists());
    let part = std::fs::read(dir.join("new.bin.part")).unwrap();
    assert!(!part.is_empty() && file_content().starts_with(&part));

    // The next -C continues from the .part (REST) and publishes the whole file.
    std::fs::write(dir.join("new.bin.part"), &file_content()[..100_000]).unwrap();
    server.set_ending(Ending::CloseThenReply);
    let out = get(&dir, &server, &["-C"], "new.bin");
    assert_eq!(out.status.code(), Some(0));
    assert!(std::fs::read(dir.join("new.bin")).unwrap() == file_content());
    assert!(!dir.join("new.bin.part").exists());
    assert!(
        server.log().iter().any(|l| l.contains("REST 100000")),
        "resumed from the part"
    );

    // And a download that completes replaces the old file.
    let out = get(&dir, &server, &[], "report.bin");
    assert_eq!(out.status.code(), Some(0));
    assert!(std::fs::read(dir.join("report.bin")).unwrap() == file_content());
    assert_eq!(names(&dir), ["ca.pem", "new.bin", "report.bin"]);
    let _ = std::fs::remove_dir_all(&dir);
}
