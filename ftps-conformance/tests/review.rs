//! The hostile suite, part two: the findings of the outside review (issue 13), one test
//! each, named after the finding, over real sockets against every runtime's server.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::RunningServer;
use ftps_conformance::hostile::{
    each, end_plain_upload, plain_allowed, plain_session, plain_session_from, receiver,
    start_plain_upload, transfer,
};
use ftps_conformance::raw::Raw;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The names in `dir` with their contents.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let content = std::fs::read(e.path()).unwrap_or_default();
            (e.file_name().into_string().unwrap(), content)
        })
        .collect();
    out.sort();
    out
}

// Finding 1 (high): escape from the root with FTP commands alone. A directory holding a
// symbolic link out of the root (`pub/…/releases -> outside`) is swapped in and out
// under the name `cur` by one session (RNFR pub / RNTO cur / RNFR cur / RNTO pub / MKD cur)
// while another works through `cur/…/releases/`. Before, the path check saw the empty
// `cur` and the open that followed resolved the swapped-in link: RETR, SIZE, MKD, STOR and
// DELE reached outside within a second. Now every path is resolved beneath the root
// handle, so no command through the link may succeed, however the swaps fall. With the
// link one and three levels below `pub`, absolute and relative.
#[test]
fn finding_01_root_escape_by_swapping_directories_is_impossible() {
    each("swap-race", plain_allowed, |f, r, tag| {
        let outside = f.root().parent().unwrap().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret.txt"), b"TOP SECRET, OUTSIDE THE ROOT").unwrap();
        std::fs::write(outside.join("victim.txt"), b"must survive").unwrap();
        let before = snapshot(&outside);
        for (depth, absolute) in [(1, true), (3, false)] {
            let _ = std::fs::remove_dir_all(f.root().join("pub"));
            let _ = std::fs::remove_dir_all(f.root().join("cur"));
            let inner: Vec<String> = (1..depth).map(|i| format!("d{i}")).collect();
            let mut holder = f.root().join("pub");
            for d in &inner {
                holder.push(d);
            }
            std::fs::create_dir_all(&holder).unwrap();
            std::fs::create_dir_all(f.root().join("cur")).unwrap();
            let target = if absolute {
                outside.clone()
            } else {
                // From root/pub/d1/d2 up to the fixture's directory, where `outside` is.
                Path::new(&"../".repeat(depth + 1)).join("outside")
            };
            std::os::unix::fs::symlink(&target, holder.join("releases")).unwrap();
            let through: String = std::iter::once("cur".to_owned())
                .chain(inner.iter().cloned())
                .chain(std::iter::once("releases".to_owned()))
                .collect::<Vec<_>>()
                .join("/");

            let stop = Arc::new(AtomicBool::new(false));
            let swaps = Arc::new(AtomicU64::new(0));
            let mut attacker = plain_session(f, r);
            let swapper = {
                let (stop, swaps) = (stop.clone(), swaps.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        for cmd in ["RNFR pub", "RNTO cur", "RNFR cur", "RNTO pub", "MKD cur"] {
                            if attacker.cmd(cmd).is_err() {
                                return;
                            }
                        }
                        swaps.fetch_add(1, Ordering::Relaxed);
                    }
                })
            };
            let mut c = plain_session(f, r);
            let started = Instant::now();
            let mut rounds = 0u32;
            let mut escaped = Vec::new();
            while (swaps.load(Ordering::Relaxed) < 1500 || rounds < 200)
                && started.elapsed() < Duration::from_secs(15)
            {
                rounds += 1;
                let mut check = |what: &str, code: u16, bad: bool| {
                    if bad {
                        escaped.push(format!("{what}: {code}"));
                    }
                };
                let code = c.cmd(&format!("SIZE {through}/secret.txt")).unwrap();
                check("SIZE", code, code == 213);
                let code = c.cmd(&format!("MLST {through}/secret.txt")).unwrap();
                check("MLST", code, code == 250);
                let code = c.cmd(&format!("MKD {through}/made")).unwrap();
                check("MKD", code, code == 257);
                let code = c.cmd(&format!("DELE {through}/victim.txt")).unwrap();
                check("DELE", code, code == 250);
                if c.cmd(&format!("RNFR {through}/victim.txt")).unwrap() == 350 {
                    let code = c.cmd("RNTO stolen.txt").unwrap();
                    check("RNFR/RNTO", code, code == 250);
                }
                if rounds.is_multiple_of(4) {
                    let (code, got) = transfer(&mut c, &format!("RETR {through}/secret.txt"), None);
                    check("RETR", code, code == 226 || !got.is_empty());
                    let (code, _) =
                        transfer(&mut c, &format!("STOR {through}/evil.txt"), Some(b"evil"));
                    check("STOR", code, code == 226);
                }
            }
            stop.store(true, Ordering::Relaxed);
            swapper.join().unwrap();
            let swaps = swaps.load(Ordering::Relaxed);
            eprintln!("{tag}: depth {depth}: {swaps} swaps, {rounds} rounds of 7 commands");
            assert!(
                escaped.is_empty(),
                "{tag} depth {depth}: escaped: {escaped:?}"
            );
            assert_eq!(
                snapshot(&outside),
                before,
                "{tag} depth {depth}: outside changed"
            );
            assert!(!f.root().join("stolen.txt").exists(), "{tag}");
            assert!(
                swaps >= 1500 && rounds >= 200,
                "{tag} depth {depth}: too few swaps ({swaps}) or rounds ({rounds}) to mean much"
            );
        }
    });
}

/// The names in `dir`.
fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    out.sort();
    out
}

// Finding 6: two concurrent STOUs got 226 for the same name (`ftps-<pid>-0`), and one
// upload was lost. Now each name is random and created exclusively.
#[test]
fn finding_06_concurrent_stou_get_distinct_names_and_both_land() {
    each("stou", plain_allowed, |f, r, tag| {
        let mut a = plain_session(f, r);
        let mut b = plain_session(f, r);
        let da = start_plain_upload(&mut a, "STOU").unwrap();
        let db = start_plain_upload(&mut b, "STOU").unwrap();
        assert_eq!(end_plain_upload(&mut a, da, b"from a"), 226, "{tag}");
        assert_eq!(end_plain_upload(&mut b, db, b"from b"), 226, "{tag}");
        let made = names(&f.root());
        assert_eq!(made.len(), 2, "{tag}: {made:?}");
        let pid = std::process::id().to_string();
        assert!(made.iter().all(|n| !n.contains(&pid)), "{tag}: {made:?}");
        let mut contents: Vec<Vec<u8>> = made
            .iter()
            .map(|n| std::fs::read(f.root().join(n)).unwrap())
            .collect();
        contents.sort();
        assert_eq!(
            contents,
            vec![b"from a".to_vec(), b"from b".to_vec()],
            "{tag}"
        );
    });
}

// Findings 7 and 8: two concurrent APPEs both got 226 and one append was lost; and each
// APPE first copied the whole file to a temporary one. Now an append writes in place
// under an exclusive lock: no copy, no new name, and a second writer gets 450 while the
// first is open, then lands once it is done.
#[test]
fn finding_07_08_appends_write_in_place_and_a_second_writer_waits() {
    each("appe", plain_allowed, |f, r, tag| {
        let base: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(f.root().join("log.bin"), &base).unwrap();
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let before = inode(&f.root().join("log.bin"));
        let mut a = plain_session(f, r);
        let mut b = plain_session(f, r);
        let mut da = start_plain_upload(&mut a, "APPE log.bin").unwrap();
        da.write_all(b"first-").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        // No copy and no temporary name while the append runs.
        assert_eq!(names(&f.root()), vec!["log.bin".to_owned()], "{tag}");
        // Another writer of the same file, by APPE, REST+STOR or STOR: 450.
        assert_eq!(
            start_plain_upload(&mut b, "APPE log.bin").err(),
            Some(450),
            "{tag}"
        );
        assert_eq!(b.cmd("REST 10").unwrap(), 350);
        assert_eq!(
            start_plain_upload(&mut b, "STOR log.bin").err(),
            Some(450),
            "{tag}"
        );
        assert_eq!(
            start_plain_upload(&mut b, "STOR log.bin").err(),
            Some(450),
            "{tag}"
        );
        assert_eq!(end_plain_upload(&mut a, da, b"append"), 226, "{tag}");
        let db = start_plain_upload(&mut b, "APPE log.bin").unwrap();
        assert_eq!(end_plain_upload(&mut b, db, b"+second"), 226, "{tag}");
        let mut expected = base.clone();
        expected.extend_from_slice(b"first-append+second");
        assert!(
            std::fs::read(f.root().join("log.bin")).unwrap() == expected,
            "{tag}"
        );
        assert_eq!(
            inode(&f.root().join("log.bin")),
            before,
            "{tag}: replaced, not appended"
        );
        assert_eq!(names(&f.root()), vec!["log.bin".to_owned()], "{tag}");
    });
}

// Finding 9: REST past the end of the file then STOR was silently an append at the end,
// and REST into a missing file wrote at 0. Both are 554 now, and nothing changes.
#[test]
fn finding_09_rest_past_the_end_on_stor_is_554() {
    each("rest-stor", plain_allowed, |f, r, tag| {
        std::fs::write(f.root().join("ten.bin"), b"0123456789").unwrap();
        let mut c = plain_session(f, r);
        assert_eq!(c.cmd("REST 100").unwrap(), 350);
        assert_eq!(
            start_plain_upload(&mut c, "STOR ten.bin").err(),
            Some(554),
            "{tag}"
        );
        assert_eq!(c.cmd("REST 5").unwrap(), 350);
        assert_eq!(
            start_plain_upload(&mut c, "STOR missing.bin").err(),
            Some(554),
            "{tag}"
        );
        assert_eq!(
            std::fs::read(f.root().join("ten.bin")).unwrap(),
            b"0123456789"
        );
        assert!(!f.root().join("missing.bin").exists(), "{tag}");
        // Within the file, REST + STOR replaces from the offset on.
        assert_eq!(c.cmd("REST 4").unwrap(), 350);
        let d = start_plain_upload(&mut c, "STOR ten.bin").unwrap();
        assert_eq!(end_plain_upload(&mut c, d, b"xy"), 226, "{tag}");
        assert_eq!(std::fs::read(f.root().join("ten.bin")).unwrap(), b"0123xy");
    });
}

// Findings 10 and 11: uploads in progress were `.ftps-upload-*` files — hidden from
// listings yet retrievable (a stash), reachable by SIZE/RETR/DELE from another session,
// and left behind by a crash. Now an upload has no name until it is committed (nothing to
// reach, nothing to orphan), and no name is hidden from listings.
#[test]
fn finding_10_11_uploads_in_progress_have_no_name_and_no_name_is_hidden() {
    each("unnamed", plain_allowed, |f, r, tag| {
        std::fs::write(f.root().join(".ftps-upload-stash"), b"stash").unwrap();
        let mut c = plain_session(f, r);
        // Dot files follow `ls`: shown by LIST -a and MLSD, as every other.
        for command in ["LIST -a", "MLSD"] {
            let (code, listing) = transfer(&mut c, command, None);
            assert_eq!(code, 226, "{tag}");
            assert!(
                String::from_utf8_lossy(&listing).contains(".ftps-upload-stash"),
                "{tag}: a user's file hidden from {command}"
            );
        }
        let mut d = start_plain_upload(&mut c, "STOR big.bin").unwrap();
        d.write_all(&vec![1u8; 1_000_000]).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            names(&f.root()),
            vec![".ftps-upload-stash".to_owned()],
            "{tag}: the upload in progress has a name"
        );
        let mut other = plain_session(f, r);
        assert_eq!(other.cmd("SIZE big.bin").unwrap(), 550, "{tag}");
        assert_eq!(end_plain_upload(&mut c, d, b"end"), 226, "{tag}");
        assert_eq!(
            std::fs::metadata(f.root().join("big.bin")).unwrap().len(),
            1_000_003,
            "{tag}"
        );
    });
}

// Finding 12: RETR of a FIFO never answered and held a storage thread. Only regular files
// and directories are served; a FIFO is refused at once, for reading and for writing.
#[test]
fn finding_12_a_fifo_is_refused_at_once() {
    each("fifo", plain_allowed, |f, r, tag| {
        let fifo = f.root().join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let mut c = plain_session(f, r);
        let started = Instant::now();
        let (code, got) = transfer(&mut c, "RETR pipe", None);
        assert_eq!((code, got.len()), (550, 0), "{tag}");
        assert_eq!(
            start_plain_upload(&mut c, "APPE pipe").err(),
            Some(550),
            "{tag}"
        );
        assert_eq!(c.cmd("REST 0").unwrap(), 350);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{tag}: it waited"
        );
        assert_eq!(c.cmd("NOOP").unwrap(), 200, "{tag}");
    });
}

/// The greeting code of a new connection (421 when refused for the session cap).
fn greeting(r: &dyn RunningServer) -> u16 {
    Raw::connect(r.explicit()).map_or(0, |(_, g)| g.code().get())
}

// Finding 2 (high): a client that never reads pinned its session slot forever. It sent
// FEAT 20,000 times through a 1 KiB receive buffer; the reply write blocked with no
// deadline, so neither the login nor the idle timeout fired, and every new client from
// that address got 421. Now every reply write has a deadline (`reply_write`); missing it
// closes the session and frees its slot.
#[test]
fn finding_02_a_client_that_never_reads_loses_its_session_and_slot() {
    each(
        "never-reads",
        |s| {
            plain_allowed(s);
            s.max_sessions = (10, 1);
            s.config.timeouts.reply_write = Duration::from_secs(2);
        },
        |_, r, tag| {
            let mut attacker = receiver(r.explicit(), 1024);
            attacker
                .set_write_timeout(Some(Duration::from_secs(1)))
                .unwrap();
            let flood = "FEAT\r\n".repeat(20_000);
            let _ = attacker.write_all(flood.as_bytes());
            // The slot is taken while the session waits on its write...
            assert_eq!(greeting(r), 421, "{tag}: the cap is 1 per address");
            // ...and freed once the write misses its deadline.
            let started = Instant::now();
            loop {
                if greeting(r) == 220 {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "{tag}: the slot is still pinned"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
            eprintln!("{tag}: slot freed after {:?}", started.elapsed());
            drop(attacker);
        },
    );
}

// Finding 3: slow but healthy transfers were killed after the stall time, because only
// progress reports every 8 MiB re-armed the stall timer. A stall is now no byte moved for
// the stall time, whatever the rate: transfers that keep moving for several times the
// stall time of 1 s complete, both ways (10 MiB read at about 2.5 MB/s through a 64 KiB
// window; 3 MiB sent at about 640 KB/s).
#[test]
fn finding_03_slow_transfers_that_keep_moving_are_not_stalled() {
    each(
        "slow",
        |s| {
            plain_allowed(s);
            s.config.timeouts.data_stall = Duration::from_secs(1);
        },
        |f, r, tag| {
            let body: Vec<u8> = (0..10 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
            std::fs::write(f.root().join("slow.bin"), &body).unwrap();
            let mut c = plain_session(f, r);
            // Download, read slowly.
            c.send_bytes(b"EPSV\r\n").unwrap();
            let reply = c.reply().unwrap();
            let port = ftps_proto::address::parse_epsv_reply(reply.first_line()).unwrap();
            let mut data = receiver(std::net::SocketAddr::from(([127, 0, 0, 1], port)), 65536);
            data.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            c.send_bytes(b"RETR slow.bin\r\n").unwrap();
            assert!(c.any_reply().unwrap().code().is_preliminary(), "{tag}");
            let started = Instant::now();
            let mut got = Vec::new();
            let mut buf = vec![0u8; 128 * 1024];
            loop {
                let n = data.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                std::thread::sleep(Duration::from_millis(50));
            }
            let code = c.reply().unwrap().code().get();
            eprintln!("{tag}: download took {:?}: {code}", started.elapsed());
            assert_eq!(code, 226, "{tag}: download");
            assert!(got == body, "{tag}: download bytes");
            // Upload, sent slowly.
            let body = &body[..3 * 1024 * 1024];
            let mut up = start_plain_upload(&mut c, "STOR back.bin").unwrap();
            let started = Instant::now();
            for piece in body.chunks(64 * 1024) {
                up.write_all(piece).unwrap();
                std::thread::sleep(Duration::from_millis(100));
            }
            assert!(
                started.elapsed() > Duration::from_secs(3),
                "{tag}: not slow"
            );
            assert_eq!(end_plain_upload(&mut c, up, b""), 226, "{tag}: upload");
            assert!(
                std::fs::read(f.root().join("back.bin")).unwrap() == body,
                "{tag}"
            );
        },
    );
}

// Finding 13: one user could take every passive port: 50 sessions each doing PASV and
// never connecting left everyone else `425 No free passive port`, and the listeners never
// expired. Now one address holds at most 16 listeners (each session one: a new PASV
// closes the old), and a listener no transfer uses within the data-connect timeout is
// closed.
#[test]
fn finding_13_passive_listeners_are_capped_per_address_and_expire() {
    each(
        "pasv-hog",
        |s| {
            plain_allowed(s);
            s.config.timeouts.data_connect = Duration::from_secs(2);
        },
        |f, r, tag| {
            let mut hogs: Vec<Raw> = (0..16).map(|_| plain_session(f, r)).collect();
            for c in &mut hogs {
                assert_eq!(c.cmd("EPSV").unwrap(), 229, "{tag}");
                // A new EPSV replaces the session's listener: still one.
                assert_eq!(c.cmd("EPSV").unwrap(), 229, "{tag}");
            }
            let mut one_more = plain_session(f, r);
            assert_eq!(one_more.cmd("EPSV").unwrap(), 425, "{tag}: over the cap");
            // Another address is not affected.
            let mut other = plain_session_from(f, r, [127, 0, 0, 2]);
            assert_eq!(other.cmd("EPSV").unwrap(), 229, "{tag}: another address");
            // Unused listeners expire and free the address's share.
            std::thread::sleep(Duration::from_millis(3500));
            assert_eq!(one_more.cmd("EPSV").unwrap(), 229, "{tag}: after expiry");
            assert_eq!(hogs[0].cmd("RETR nothing").unwrap(), 425, "{tag}: expired");
            // A listener that is used works as ever.
            std::fs::write(f.root().join("x.bin"), b"x").unwrap();
            let (code, got) = transfer(&mut hogs[1], "RETR x.bin", None);
            assert_eq!((code, got.as_slice()), (226, &b"x"[..]), "{tag}");
        },
    );
}
