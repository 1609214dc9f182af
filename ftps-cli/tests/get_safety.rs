//! `ftps get` never destroys what the user has: a download cut short (the server ends the
//! data connection without TLS close_notify, so the data may be truncated) exits 6 and
//! leaves an existing local file as it was and no temporary file behind; with `-C` the
//! partial data stays in `NAME.part`, and the next `-C` finishes it from there. Against
//! the scripted server of `ftps-conformance`, whose way of ending data connections the
//! test chooses.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::scripted::{Ending, FILE, ScriptedServer, file_content};
use std::path::Path;

mod support;
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

fn ftps(dir: &Path, args: &[&str]) -> Output {
    support::ftps_with_password(dir, args, "anything")
}

fn fresh_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ftps-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Found by an outsider's trial: `get` renamed its temporary file over whatever the target
/// was — as root, `/dev/null` became a regular file. Now only a regular file (or nothing)
/// is replaced, keeping its permissions; through a symbolic link the file it points at is;
/// a FIFO (or device) is written through; `-` is standard output.
#[test]
fn get_replaces_only_regular_files_and_keeps_their_mode() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let dir = fresh_dir("get-targets");
    let server = ScriptedServer::start(Ending::CloseThenReply).unwrap();
    std::fs::write(dir.join("ca.pem"), server.cert_pem()).unwrap();
    let content = file_content();

    // A private file stays private.
    std::fs::write(dir.join("private.bin"), b"old").unwrap();
    std::fs::set_permissions(
        dir.join("private.bin"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    assert_eq!(
        get(&dir, &server, &[], "private.bin").status.code(),
        Some(0)
    );
    let m = std::fs::metadata(dir.join("private.bin")).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read(dir.join("private.bin")).unwrap() == content);

    // Through a symbolic link: the link stays, its file is updated.
    std::fs::write(dir.join("real.bin"), b"old").unwrap();
    std::os::unix::fs::symlink("real.bin", dir.join("link.bin")).unwrap();
    assert_eq!(get(&dir, &server, &[], "link.bin").status.code(), Some(0));
    assert!(
        std::fs::symlink_metadata(dir.join("link.bin"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(std::fs::read(dir.join("real.bin")).unwrap() == content);

    // A FIFO is written through, not replaced.
    let fifo = dir.join("pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    assert_eq!(get(&dir, &server, &[], "pipe").status.code(), Some(0));
    assert!(reader.join().unwrap() == content);
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());

    // `-`: standard output.
    let out = get(&dir, &server, &[], "-");
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout == content);
    assert!(!dir.join("-").exists());

    // A -C part larger than the remote file is not a part of it: refused, kept.
    std::fs::write(dir.join("big.bin.part"), vec![7u8; content.len() + 10]).unwrap();
    let out = get(&dir, &server, &["-C"], "big.bin");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        std::fs::metadata(dir.join("big.bin.part")).unwrap().len(),
        content.len() as u64 + 10
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Found by an outsider's trial: `put a b URL` without a trailing slash glued the names
/// to the directory (`dira`), a local directory truncated the remote file of its name
/// (STOR went out before the read failed), and a password in a URL was printed back.
#[test]
fn put_checks_its_files_first_and_joins_names_with_a_slash() {
    let dir = fresh_dir("put-checks");
    let server = ScriptedServer::start(Ending::CloseThenReply).unwrap();
    std::fs::write(dir.join("ca.pem"), server.cert_pem()).unwrap();
    std::fs::write(dir.join("a.bin"), b"first").unwrap();
    std::fs::write(dir.join("b.bin"), b"second").unwrap();
    std::fs::create_dir_all(dir.join("adir")).unwrap();
    let base = format!("ftp://127.0.0.1:{}", server.addr().port());
    let common = ["--ca-cert", "ca.pem", "--user", "anyone"];

    let url = format!("{base}/sub");
    let mut args = vec!["put"];
    args.extend(common);
    args.extend(["a.bin", "b.bin", &url]);
    assert_eq!(ftps(&dir, &args).status.code(), Some(0));
    assert_eq!(server.upload("sub/a.bin").as_deref(), Some(&b"first"[..]));
    assert_eq!(server.upload("sub/b.bin").as_deref(), Some(&b"second"[..]));

    let url = format!("{base}/adir");
    let mut args = vec!["put"];
    args.extend(common);
    args.extend(["a.bin", "adir", &url]);
    let out = ftps(&dir, &args);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a regular file"));
    assert!(server.upload("adir").is_none() && server.upload("adir/a.bin").is_none());

    let secret = format!("ftp://anyone:S3cr3tPw@127.0.0.1:{}/x", server.addr().port());
    // A password in the URL is taken (issue 17, as curl and lftp), with a warning that
    // never repeats it.
    let out = ftps(&dir, &["ls", "--ca-cert", "ca.pem", &secret]);
    assert_eq!(out.status.code(), Some(0));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("visible to other users") && !said.contains("S3cr3tPw"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Found by an outsider's trial: Ctrl-C or SIGTERM during `get` left the hidden temporary
/// file behind. Now it is removed and `ftps` exits 130.
#[test]
fn an_interrupted_get_leaves_no_temporary_file() {
    let dir = fresh_dir("get-interrupted");
    let server = ScriptedServer::start(Ending::CloseThenReply).unwrap();
    server.set_stall_after(Some(100_000));
    std::fs::write(dir.join("ca.pem"), server.cert_pem()).unwrap();
    let url = format!("ftp://127.0.0.1:{}/{FILE}", server.addr().port());
    let child = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .current_dir(&dir)
        .args([
            "get",
            "--ca-cert",
            "ca.pem",
            "--user",
            "anyone",
            &url,
            "out.bin",
        ])
        .env("FTPS_PASSWORD", "anything")
        .spawn()
        .unwrap();
    // Until the partial download is on disk (bounded).
    let started = std::time::Instant::now();
    while names(&dir).len() < 2 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no temporary file"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert_eq!(names(&dir), ["ca.pem"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Found by a second outsider's trial: the temporary file had a predictable name and was
/// opened through a symbolic link planted there, so a local user could make root's `get`
/// overwrite any file; the replaced file lost its owner and group (a set-user-ID file
/// came back root's); `put` of a FIFO waited forever in open().
#[test]
fn get_never_writes_through_a_planted_link_and_keeps_owner_and_group() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = fresh_dir("get-planted");
    let server = ScriptedServer::start(Ending::CloseThenReply).unwrap();
    std::fs::write(dir.join("ca.pem"), server.cert_pem()).unwrap();
    let victim = dir.join("victim");
    std::fs::write(&victim, b"precious").unwrap();

    // A link planted at NAME.part is not followed by -C.
    std::os::unix::fs::symlink(&victim, dir.join("out.bin.part")).unwrap();
    let out = get(&dir, &server, &["-C"], "out.bin");
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    std::fs::remove_file(dir.join("out.bin.part")).unwrap();

    // Owner, group and mode kept (as root, the owner can be another user's).
    let owned = dir.join("owned.bin");
    std::fs::write(&owned, b"old").unwrap();
    let root = std::fs::metadata(&dir).unwrap().uid() == 0
        && Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    if root {
        std::os::unix::fs::chown(&owned, Some(65534), Some(65534)).unwrap();
    }
    std::fs::set_permissions(&owned, std::fs::Permissions::from_mode(0o4750)).unwrap();
    let before = std::fs::metadata(&owned).unwrap();
    assert_eq!(get(&dir, &server, &[], "owned.bin").status.code(), Some(0));
    let after = std::fs::metadata(&owned).unwrap();
    assert!(std::fs::read(&owned).unwrap() == file_content());
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    assert_eq!(after.permissions().mode() & 0o7777, 0o4750);

    // A FIFO to upload is refused at once.
    let fifo = dir.join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let url = format!("ftp://127.0.0.1:{}/", server.addr().port());
    let started = std::time::Instant::now();
    let out = ftps(
        &dir,
        &[
            "put",
            "--ca-cert",
            "ca.pem",
            "--user",
            "anyone",
            "fifo",
            &url,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(&dir);
}
