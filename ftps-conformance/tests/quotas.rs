//! Issue 15: quotas in bytes and files, enforced for every storage by the server (552
//! before an upload when the quota is full, 552 during one that would pass it, nothing
//! of it left), on every server runtime.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_backend::{Quota, User};
use ftps_conformance::hostile::{
    connect, each, plain_allowed, start_plain_upload, stray_files, transfer,
};
use ftps_conformance::raw::Raw;
use ftps_conformance::{RunningServer, ServerSetup};
use ftps_proto::VirtualPath;
use std::io::Write;
use std::path::Path;

/// User `q` in /q, at most 1000 bytes and 3 files; /q holds old.bin (200 bytes) already.
fn quota_user(s: &mut ServerSetup) {
    plain_allowed(s);
    std::fs::create_dir_all(s.root.join("q")).unwrap();
    std::fs::write(s.root.join("q/old.bin"), [7u8; 200]).unwrap();
    let user = User::new("q")
        .with_home(VirtualPath::root().resolve("/q"))
        .with_quota(Quota::new(Some(1000), Some(3)));
    s.users = vec![(user, "pq".into())];
}

fn login(r: &dyn RunningServer) -> Raw {
    let mut c = connect(r);
    assert_eq!(c.cmd("USER q").unwrap(), 331);
    assert_eq!(c.cmd("PASS pq").unwrap(), 230);
    c
}

fn size(home: &Path, name: &str) -> Option<u64> {
    std::fs::metadata(home.join(name)).ok().map(|m| m.len())
}

#[test]
fn quotas_in_bytes_and_files() {
    each("quota", quota_user, |f, r, tag| {
        let home = f.root().join("q");
        let mut c = login(r);
        let up = |c: &mut Raw, cmd: &str, n: usize| transfer(c, cmd, Some(&vec![1u8; n])).0;
        // A full quota is 552 before the upload starts: no 150, no data connection used.
        let at_once = |c: &mut Raw, cmd: &str| start_plain_upload(c, cmd).err();
        // 200 + 600: fits.
        assert_eq!(up(&mut c, "STOR a.bin", 600), 226, "{tag}");
        // 800 + 300 > 1000: stopped during the upload, nothing of it left.
        assert_eq!(up(&mut c, "STOR b.bin", 300), 552, "{tag}");
        assert_eq!(size(&home, "b.bin"), None, "{tag}");
        assert_eq!(up(&mut c, "STOR b.bin", 150), 226, "{tag}");
        // Three files: a fourth is refused before any data moves.
        assert_eq!(at_once(&mut c, "STOR c.bin"), Some(552), "{tag}");
        // Replacing a file is no new file, and its bytes count as room: 950 - 600 + 100.
        assert_eq!(up(&mut c, "STOR a.bin", 100), 226, "{tag}");
        assert_eq!(size(&home, "a.bin"), Some(100), "{tag}");
        assert_eq!(at_once(&mut c, "STOR d.bin"), Some(552), "{tag}");
        // A delete gives back a file and its bytes: 250 bytes, 2 files.
        assert_eq!(c.cmd("DELE old.bin").unwrap(), 250, "{tag}");
        assert_eq!(up(&mut c, "STOR d.bin", 700), 226, "{tag}");
        // 950: an append of 100 would pass the quota; the file keeps what it had.
        assert_eq!(up(&mut c, "APPE d.bin", 100), 552, "{tag}");
        assert_eq!(size(&home, "d.bin"), Some(700), "{tag}");
        // A replacement may grow into what is left: 950 - 100 + 150 = 1000.
        assert_eq!(up(&mut c, "STOR a.bin", 150), 226, "{tag}");
        // Down to 2 files and 850 bytes, then an append to exactly 1000.
        assert_eq!(c.cmd("DELE b.bin").unwrap(), 250, "{tag}");
        assert_eq!(up(&mut c, "APPE a.bin", 150), 226, "{tag}");
        assert_eq!(size(&home, "a.bin"), Some(300), "{tag}");
        // Bytes full (files are not): refused at once.
        assert_eq!(at_once(&mut c, "STOR e.bin"), Some(552), "{tag}");
        let mut left = stray_files(&home, &[]);
        left.sort();
        assert_eq!(left, ["a.bin", "d.bin"], "{tag}");
    });
}

/// Two uploads at once, each of 800 bytes under a 1000-byte quota: both cannot finish,
/// and what the home holds never passes the quota.
#[test]
fn uploads_at_once_share_one_quota() {
    each("quota-race", quota_user, |f, r, tag| {
        let home = f.root().join("q");
        assert_eq!(login(r).cmd("DELE old.bin").unwrap(), 250, "{tag}");
        for round in 0..5 {
            let mut c1 = login(r);
            let mut c2 = login(r);
            let mut d1 = start_plain_upload(&mut c1, "STOR x1.bin").unwrap();
            let mut d2 = start_plain_upload(&mut c2, "STOR x2.bin").unwrap();
            let half = [2u8; 400];
            let _ = d1.write_all(&half);
            let _ = d2.write_all(&half);
            std::thread::sleep(std::time::Duration::from_millis(50));
            let codes = [
                end_plain_upload_lenient(&mut c1, d1, &half),
                end_plain_upload_lenient(&mut c2, d2, &half),
            ];
            assert!(
                codes.contains(&552) && codes.iter().all(|c| [226, 552].contains(c)),
                "{tag} round {round}: {codes:?}"
            );
            let total: u64 = ["x1.bin", "x2.bin"]
                .iter()
                .filter_map(|n| size(&home, n))
                .sum();
            assert!(total <= 1000, "{tag} round {round}: {total} bytes held");
            let mut c = login(r);
            for n in ["x1.bin", "x2.bin"] {
                let _ = c.cmd(&format!("DELE {n}"));
            }
            assert!(stray_files(&home, &[]).is_empty(), "{tag} round {round}");
        }
    });
}

/// Sends the rest of an upload the server may have stopped already (its connection
/// closed under the write) and ends it; the final reply code.
fn end_plain_upload_lenient(c: &mut Raw, mut data: std::net::TcpStream, rest: &[u8]) -> u16 {
    let _ = data.write_all(rest);
    let _ = data.shutdown(std::net::Shutdown::Write);
    drop(data);
    c.reply().unwrap().code().get()
}
