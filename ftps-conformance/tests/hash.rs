//! HASH (draft-bryan-ftpext-hash-02), OPTS HASH and RANG over real sockets: our server on
//! every runtime answers with the digests of the stored bytes, whole files and ranges, as
//! digests computed here (the sha1/sha2/md-5/crc32fast crates, not the server's code) and
//! coreutils' `sha256sum` and `md5sum` over the stored file say; our client's `hash()`
//! reads the same answers; Python's ftplib sees the reply form; and our client against
//! ProFTPD with mod_digest. The ProFTPD test needs root and the peers
//! (`FTPS_PEERS_ROOT`, `FTPS_REQUIRE_PEERS=1`), as `real_servers.rs` does.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::Fixture;
use ftps_conformance::hostile::{connect, each, plain_allowed};
use ftps_conformance::peers::{PASSWORD, proftpd};
use ftps_conformance::raw::Raw;
use ftps_proto::client::ClientError;
use ftps_proto::hash::{HashAlgorithm, HashReply};
use ftps_proto::{Features, Reply};
use sha1::Digest as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest of `bytes`, computed here.
fn digest(a: HashAlgorithm, bytes: &[u8]) -> String {
    match a {
        HashAlgorithm::Sha1 => hex(&sha1::Sha1::digest(bytes)),
        HashAlgorithm::Sha256 => hex(&sha2::Sha256::digest(bytes)),
        HashAlgorithm::Sha512 => hex(&sha2::Sha512::digest(bytes)),
        HashAlgorithm::Md5 => hex(&md5::Md5::digest(bytes)),
        HashAlgorithm::Crc32 => format!("{:08x}", crc32fast::hash(bytes)),
        other => panic!("no digest for {other}"),
    }
}

/// What coreutils' `program` (`sha256sum`, `md5sum`) says of the file at `path`.
fn coreutils(program: &str, path: &Path) -> String {
    let out = Command::new(program).arg(path).output().unwrap();
    assert!(out.status.success(), "{program}: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// 700,000 patterned bytes: more than two of the storage's 256 KiB reads.
fn data() -> Vec<u8> {
    (0..700_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect()
}

fn cmd_reply(c: &mut Raw, line: &str) -> Reply {
    c.send_bytes(format!("{line}\r\n").as_bytes()).unwrap();
    c.reply().unwrap()
}

fn hash_of(c: &mut Raw, line: &str, tag: &str) -> HashReply {
    let r = cmd_reply(c, line);
    HashReply::parse(&r).unwrap_or_else(|| panic!("{tag}: {line}: {r:?}"))
}

#[test]
fn hash_answers_are_the_digests_of_the_stored_bytes_on_every_runtime() {
    let data = data();
    each("hash", plain_allowed, |f, r, tag| {
        let root = f.root();
        std::fs::write(root.join("data.bin"), &data).unwrap();
        std::fs::write(root.join("a file.txt"), b"spaces in the name\n").unwrap();
        std::fs::create_dir_all(root.join("dir")).unwrap();
        let (user, password) = f.credentials();
        let mut c = connect(r);
        assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331);
        assert_eq!(c.cmd(&format!("PASS {password}")).unwrap(), 230);

        let feat = Features::from_reply(&cmd_reply(&mut c, "FEAT")).unwrap();
        assert_eq!(
            feat.params("HASH"),
            Some("SHA-1;SHA-256*;SHA-512;MD5;CRC32"),
            "{tag}"
        );
        assert!(feat.supports("RANG"), "{tag}");

        // The whole file, SHA-256 by default: as computed here and as sha256sum says.
        let h = hash_of(&mut c, "HASH data.bin", tag);
        assert_eq!(h.algorithm, HashAlgorithm::Sha256, "{tag}");
        assert_eq!(h.hex, digest(HashAlgorithm::Sha256, &data), "{tag}");
        assert_eq!(
            h.hex,
            coreutils("sha256sum", &root.join("data.bin")),
            "{tag}"
        );
        assert_eq!((h.start, h.end), (0, data.len() as u64), "{tag}");
        assert_eq!(h.path, "data.bin", "{tag}");

        // MD5, as md5sum says.
        assert_eq!(cmd_reply(&mut c, "OPTS HASH MD5").first_line(), "MD5");
        let h = hash_of(&mut c, "HASH /data.bin", tag);
        assert_eq!(h.hex, digest(HashAlgorithm::Md5, &data), "{tag}");
        assert_eq!(h.hex, coreutils("md5sum", &root.join("data.bin")), "{tag}");

        // Every algorithm, whole and over ranges (across the 256 KiB reads, one byte, the
        // last byte).
        let last = data.len() as u64 - 1;
        for a in HashAlgorithm::ALL {
            assert_eq!(c.cmd(&format!("OPTS HASH {a}")).unwrap(), 200, "{tag}");
            let h = hash_of(&mut c, "HASH data.bin", tag);
            assert_eq!(h.hex, digest(a, &data), "{tag} {a}");
            for (start, end) in [(0, 0), (1, 262_144), (262_000, 600_001), (last, last)] {
                assert_eq!(c.cmd(&format!("RANG {start} {end}")).unwrap(), 350);
                let h = hash_of(&mut c, "HASH data.bin", tag);
                let want = &data[start as usize..=end as usize];
                assert_eq!(
                    (h.algorithm, h.start, h.end, h.hex.as_str()),
                    (a, start, end, digest(a, want).as_str()),
                    "{tag} {a} {start}-{end}"
                );
            }
        }
        // A range cut from the stored file by coreutils, hashed by sha256sum.
        assert_eq!(c.cmd("OPTS HASH SHA-256").unwrap(), 200);
        let out = Command::new("sh")
            .arg("-c")
            .arg("tail -c +1001 \"$0\" | head -c 5000 | sha256sum")
            .arg(root.join("data.bin"))
            .output()
            .unwrap();
        let tool = String::from_utf8(out.stdout).unwrap();
        assert_eq!(c.cmd("RANG 1000 5999").unwrap(), 350);
        let h = hash_of(&mut c, "HASH data.bin", tag);
        assert_eq!(
            tool.split_whitespace().next(),
            Some(h.hex.as_str()),
            "{tag}"
        );

        // The pathname is repeated as given, spaces and all.
        let h = hash_of(&mut c, "HASH a file.txt", tag);
        assert_eq!(h.path, "a file.txt", "{tag}");
        assert_eq!(
            h.hex,
            digest(HashAlgorithm::Sha256, b"spaces in the name\n")
        );

        // Refusals: a range past the end (556), a directory, a missing file (550).
        assert_eq!(c.cmd(&format!("RANG 0 {}", data.len())).unwrap(), 350);
        assert_eq!(c.cmd("HASH data.bin").unwrap(), 556, "{tag}");
        assert_eq!(c.cmd("HASH dir").unwrap(), 550, "{tag}");
        assert_eq!(c.cmd("HASH nope.bin").unwrap(), 550, "{tag}");
        assert_eq!(c.cmd("OPTS HASH SHA-3").unwrap(), 501, "{tag}");
        // The session goes on.
        assert_eq!(c.cmd("NOOP").unwrap(), 200, "{tag}");
    });
}

#[test]
fn our_client_reads_our_servers_hashes_on_every_runtime() {
    let data = data();
    each(
        "hash-client",
        |_| {},
        |f, r, tag| {
            std::fs::write(f.root().join("data.bin"), &data).unwrap();
            let (user, password) = f.credentials();
            let mut o =
                ftps_blocking::ClientOptions::new("localhost", r.explicit().port(), user, password)
                    .unwrap();
            o.tls = Some(f.client_tls());
            let mut c = ftps_blocking::Client::connect(o).unwrap();
            let offered = ftps_proto::hash::offered(c.features()).unwrap().0;
            assert_eq!(
                ftps_proto::hash::preferred(&offered),
                Some(HashAlgorithm::Sha256)
            );
            for a in HashAlgorithm::ALL {
                let h = c.hash("data.bin", a, None).unwrap();
                assert_eq!((h.algorithm, h.hex.clone()), (a, digest(a, &data)), "{tag}");
                let h = c.hash("data.bin", a, Some((10, 300_009))).unwrap();
                assert_eq!(h.hex, digest(a, &data[10..=300_009]), "{tag} {a}");
            }
            match c.hash("nope.bin", HashAlgorithm::Md5, None) {
                Err(e) => assert!(e.to_string().contains("550"), "{tag}: {e}"),
                Ok(h) => panic!("{tag}: {h:?}"),
            }
            // Still in step: a whole-file hash after a ranged one covers the whole file.
            let h = c.hash("data.bin", HashAlgorithm::Crc32, None).unwrap();
            assert_eq!(h.hex, digest(HashAlgorithm::Crc32, &data), "{tag}");
            c.quit().unwrap();
        },
    );
}

/// Python's ftplib, a real client, sends HASH and reads our reply (`213 <algorithm>
/// <start>-<end> <hex> <pathname>`, the draft's form).
#[test]
fn ftplib_reads_the_hash_reply() {
    let python = std::env::var("FTPS_PYTHON").unwrap_or_else(|_| "python3".into());
    let have = Command::new(&python)
        .arg("-c")
        .arg("import ftplib, ssl")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(!ftps_conformance::peers::required(), "{python} required");
        eprintln!("{python} missing: skipped");
        return;
    }
    let data = data();
    for server in ftps_conformance::hostile::servers() {
        let f = Fixture::new(&format!("hash-ftplib-{}", server.name()));
        let running = f.start(server, true);
        std::fs::write(f.root().join("data.bin"), &data).unwrap();
        let (user, password) = f.credentials();
        let script = format!(
            r#"
import ftplib, ssl
ctx = ssl.create_default_context(cafile={ca:?})
f = ftplib.FTP_TLS(context=ctx, timeout=10)
f.connect('127.0.0.1', {port})
f.auth(); f.login({user:?}, {password:?})
print(f.sendcmd('HASH data.bin'))
print(f.sendcmd('OPTS HASH MD5'))
print(f.sendcmd('RANG 0 99'))
print(f.sendcmd('HASH data.bin'))
try:
    f.sendcmd('HASH missing.bin')
except ftplib.error_perm as e:
    print(str(e)[:3])
f.quit()
"#,
            ca = f.ca_file().display().to_string(),
            port = running.explicit().port(),
        );
        let out = Command::new(&python)
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {out:?}", server.name());
        let printed = String::from_utf8(out.stdout).unwrap();
        let want = format!(
            "213 SHA-256 0-{} {} data.bin\n200 MD5\n350 Restarting at 0. Ending byte 99.\n213 MD5 0-99 {} data.bin\n550\n",
            data.len(),
            digest(HashAlgorithm::Sha256, &data),
            digest(HashAlgorithm::Md5, &data[..100]),
        );
        assert_eq!(printed, want, "{}", server.name());
    }
}

/// Our client against ProFTPD with mod_digest: its FEAT line read, each algorithm it
/// offers asked for, whole and over a range, the digests compared with ours.
#[test]
fn our_client_against_proftpd_mod_digest() {
    let Some(p) = proftpd(false) else {
        return;
    };
    let data = data();
    std::fs::write(p.home.join("data.bin"), &data).unwrap();
    p.chown_home();
    let config =
        ftps_tokio::client::client_config_from_pem(&p.ca, ftps_tokio::client::BOTH).unwrap();
    let mut o = ftps_blocking::ClientOptions::new("localhost", p.port, &p.user, PASSWORD).unwrap();
    o.tls = Some(Arc::new(config));
    let mut c = ftps_blocking::Client::connect(o).unwrap();
    let hash_line = c.features().params("HASH").map(str::to_owned);
    let (offered, _) = ftps_proto::hash::offered(c.features())
        .unwrap_or_else(|| panic!("ProFTPD offers no HASH: {:?}", c.features()));
    assert!(offered.contains(&HashAlgorithm::Sha256), "{hash_line:?}");
    assert_eq!(
        ftps_proto::hash::preferred(&offered),
        Some(HashAlgorithm::Sha256)
    );
    for a in offered {
        let h = c.hash("data.bin", a, None).unwrap();
        assert_eq!(h.hex, digest(a, &data), "{a}");
        // ProFTPD shows the whole file as 0-<size> (as our server does).
        assert_eq!((h.start, h.end), (0, data.len() as u64), "{a}");
        if c.features().supports("RANG") {
            // ProFTPD's HASH (mod_digest 2.0.0) ignores RANG and answers for the whole
            // file: the client refuses that answer (another range than asked) rather than
            // pass a digest of other bytes off as the range's. A later version that
            // honours RANG must give the range's digest.
            match c.hash("data.bin", a, Some((100, 199_999))) {
                Ok(h) => assert_eq!(h.hex, digest(a, &data[100..=199_999]), "{a} range"),
                Err(ftps_blocking::client::Error::Protocol(ClientError::Unexpected(r))) => {
                    let h = HashReply::parse(&r).unwrap();
                    assert_eq!((h.start, h.end), (0, data.len() as u64), "{a}: {r:?}");
                }
                Err(e) => panic!("{a} range: {e}"),
            }
        }
    }
    // The client reset the range after each ranged HASH: a download is whole (ProFTPD
    // would otherwise send the 199,900 bytes RANG named).
    let mut back = Vec::new();
    c.retrieve("data.bin", 0, &mut back).unwrap();
    assert!(back == data, "{} bytes back", back.len());
    assert!(c.hash("nope.bin", HashAlgorithm::Sha256, None).is_err());
    c.quit().unwrap();
}
