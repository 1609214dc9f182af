//! The hostile suite, part two (continued): finding 17 of the outside review (issue 13),
//! anonymous sessions that could write, over real sockets against every runtime's server.
//! The rule lives in the protocol core (which commands an anonymous session may run) and
//! in the storage (an anonymous upload never replaces a file), so every runtime gets it.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::RunningServer;
use ftps_conformance::hostile::start_plain_upload as start;
use ftps_conformance::hostile::{connect, each, plain_allowed};
use ftps_conformance::raw::Raw;
use ftps_conformance::{Fixture, ServerSetup};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};

/// Anonymous logins allowed, without TLS (the rule under test is not about TLS).
fn anonymous(s: &mut ServerSetup) {
    plain_allowed(s);
    s.config.anonymous = true;
}

/// Anonymous logins with uploads of new files.
fn anonymous_upload(s: &mut ServerSetup) {
    anonymous(s);
    s.config.anonymous_upload = true;
}

/// An anonymous session.
fn anonymous_session(r: &dyn RunningServer) -> Raw {
    let mut c = connect(r);
    assert_eq!(c.cmd("USER anonymous").unwrap(), 331);
    assert_eq!(c.cmd("PASS guest@example.com").unwrap(), 230);
    c
}

/// A session of the fixture's named user.
fn named_session(f: &Fixture, r: &dyn RunningServer) -> Raw {
    let mut c = connect(r);
    let (user, password) = f.credentials();
    assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331);
    assert_eq!(c.cmd(&format!("PASS {password}")).unwrap(), 230);
    c
}

/// Sends `bytes` on a started upload, ends it; the final reply code.
fn finish(c: &mut Raw, mut data: TcpStream, bytes: &[u8]) -> u16 {
    let _ = data.write_all(bytes);
    let _ = data.shutdown(std::net::Shutdown::Write);
    let _ = data.read_to_end(&mut Vec::new());
    drop(data);
    c.reply().unwrap().code().get()
}

/// A whole upload (`STOR`, `APPE`, `STOU`); the final reply code.
fn upload(c: &mut Raw, command: &str, bytes: &[u8]) -> u16 {
    match start(c, command) {
        Ok(data) => finish(c, data, bytes),
        Err(code) => code,
    }
}

/// A whole download; the final reply code and the bytes.
fn download(c: &mut Raw, command: &str) -> (u16, Vec<u8>) {
    match start(c, command) {
        Ok(mut data) => {
            let mut got = Vec::new();
            let _ = data.read_to_end(&mut got);
            drop(data);
            (c.reply().unwrap().code().get(), got)
        }
        Err(code) => (code, Vec::new()),
    }
}

/// Every path under `dir` (directories too) with its contents, sorted.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            if p.is_dir() {
                out.push((rel, b"<dir>".to_vec()));
                stack.push(p);
            } else {
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

// Finding 17: with anonymous logins on, an anonymous session's DELE, STOR and MKD
// succeeded. Anonymous sessions are read-only now: every command that would change the
// tree gets 550 and changes nothing; reading still works; the named user still writes.
#[test]
fn finding_17_anonymous_sessions_are_read_only() {
    each("anon-read-only", anonymous, |f, r, tag| {
        std::fs::write(f.root().join("file.txt"), b"original").unwrap();
        std::fs::create_dir(f.root().join("dir")).unwrap();
        std::fs::write(f.root().join("dir/inner.txt"), b"inner").unwrap();
        std::fs::create_dir(f.root().join("empty")).unwrap();
        let before = tree(&f.root());

        let mut c = anonymous_session(r);
        assert_eq!(
            download(&mut c, "RETR file.txt"),
            (226, b"original".to_vec()),
            "{tag}: anonymous reads"
        );
        assert_eq!(c.cmd("SIZE dir/inner.txt").unwrap(), 213, "{tag}");
        for cmd in [
            "DELE file.txt",
            "DELE dir/inner.txt",
            "RMD empty",
            "MKD made",
            "MKD dir/made",
            "RNFR file.txt",
            "RNTO renamed.txt",
            "MFMT 20000101000000 file.txt",
        ] {
            assert_eq!(c.cmd(cmd).unwrap(), 550, "{tag}: {cmd}");
        }
        for cmd in [
            "STOR new.txt",
            "STOR file.txt",
            "STOR dir/new.txt",
            "APPE file.txt",
            "STOU",
        ] {
            assert_eq!(upload(&mut c, cmd, b"written"), 550, "{tag}: {cmd}");
        }
        // The session is still usable after the refusals.
        assert_eq!(c.cmd("NOOP").unwrap(), 200, "{tag}");
        assert_eq!(tree(&f.root()), before, "{tag}: anonymous changed the tree");
        // MLST and MLSD tell it so (RFC 3659 perm fact): read only.
        c.send_bytes(b"MLST file.txt\r\n").unwrap();
        let reply = c.reply().unwrap();
        assert_eq!(reply.code().get(), 250, "{tag}");
        let mlst = reply.text();
        assert!(mlst.contains("perm=r;"), "{tag}: {mlst}");
        let (code, mlsd) = download(&mut c, "MLSD");
        assert_eq!(code, 226, "{tag}");
        let mlsd = String::from_utf8(mlsd).unwrap();
        for line in mlsd.lines() {
            let perm = line.split(';').find_map(|f| f.strip_prefix("perm="));
            // Letters of a set (RFC 3659 §7.5.5: their order means nothing): read,
            // enter and list only.
            assert!(
                perm.is_some_and(|p| !p.is_empty() && p.chars().all(|c| "rel".contains(c))),
                "{tag}: an anonymous listing offers writes: {line}"
            );
        }

        // The rule is for anonymous sessions only.
        let mut named = named_session(f, r);
        assert_eq!(
            upload(&mut named, "STOR new.txt", b"by alice"),
            226,
            "{tag}"
        );
        assert_eq!(named.cmd("MKD made").unwrap(), 257, "{tag}");
        assert_eq!(named.cmd("DELE file.txt").unwrap(), 250, "{tag}");
    });
}

// Finding 17, with uploads granted (`anonymous_upload`): an anonymous session may add new
// files (STOR to a free name, STOU), and nothing else: no overwrite (also not by a file
// that appeared while its upload ran), no REST + STOR, no APPE, no delete, rename or
// mkdir.
#[test]
fn finding_17_anonymous_uploads_only_add_new_files() {
    each("anon-upload", anonymous_upload, |f, r, tag| {
        std::fs::write(f.root().join("file.txt"), b"original").unwrap();
        let mut c = anonymous_session(r);

        assert_eq!(upload(&mut c, "STOR new.txt", b"first"), 226, "{tag}");
        assert_eq!(std::fs::read(f.root().join("new.txt")).unwrap(), b"first");
        assert_eq!(
            upload(&mut c, "STOR new.txt", b"second"),
            550,
            "{tag}: overwrote its own upload"
        );
        assert_eq!(
            upload(&mut c, "STOR file.txt", b"replaced"),
            550,
            "{tag}: overwrote"
        );
        assert_eq!(c.cmd("REST 3").unwrap(), 350, "{tag}");
        assert_eq!(
            upload(&mut c, "STOR file.txt", b"XX"),
            550,
            "{tag}: REST+STOR"
        );
        assert_eq!(upload(&mut c, "APPE file.txt", b"more"), 550, "{tag}: APPE");
        for cmd in [
            "DELE file.txt",
            "DELE new.txt",
            "MKD made",
            "RNFR new.txt",
            "MFMT 20000101000000 new.txt",
        ] {
            assert_eq!(c.cmd(cmd).unwrap(), 550, "{tag}: {cmd}");
        }
        assert_eq!(upload(&mut c, "STOU", b"unique"), 226, "{tag}: STOU");

        // Two anonymous uploads of one new name at once: the first to finish wins, the
        // other is refused when it would publish, and the winner's bytes stay.
        let mut a = anonymous_session(r);
        let mut b = anonymous_session(r);
        let slow = start(&mut a, "STOR race.txt").unwrap_or_else(|code| {
            panic!("{tag}: the first STOR race.txt got {code}");
        });
        assert_eq!(upload(&mut b, "STOR race.txt", b"from b"), 226, "{tag}");
        let late = finish(&mut a, slow, b"from a, late");
        assert_ne!(late, 226, "{tag}: a late upload replaced a file");
        assert_eq!(late, 550, "{tag}");
        assert_eq!(
            std::fs::read(f.root().join("race.txt")).unwrap(),
            b"from b",
            "{tag}"
        );

        assert_eq!(
            std::fs::read(f.root().join("file.txt")).unwrap(),
            b"original",
            "{tag}"
        );
        assert_eq!(
            std::fs::read(f.root().join("new.txt")).unwrap(),
            b"first",
            "{tag}"
        );
        assert!(!f.root().join("made").exists(), "{tag}");
        let names: Vec<_> = tree(&f.root()).into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            names.len(),
            4,
            "{tag}: file, new, race and the STOU file: {names:?}"
        );
    });
}
