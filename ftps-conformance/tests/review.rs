//! The hostile suite, part two: the findings of the outside review (issue 13), one test
//! each, named after the finding, over real sockets against every runtime's server.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::hostile::{connect, each, plain_allowed};
use ftps_conformance::raw::Raw;
use ftps_conformance::{Fixture, RunningServer};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// USER and PASS without TLS (the server allows it here): the race tests need many
/// commands a second, not TLS.
fn plain_session(f: &Fixture, r: &dyn RunningServer) -> Raw {
    let mut c = connect(r);
    let (user, password) = f.credentials();
    assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331);
    assert_eq!(c.cmd(&format!("PASS {password}")).unwrap(), 230);
    c
}

/// A transfer command on a fresh passive plain data connection; sends `upload` (if any),
/// reads what comes; the final reply code and the bytes received.
fn transfer(c: &mut Raw, command: &str, upload: Option<&[u8]>) -> (u16, Vec<u8>) {
    c.send_bytes(b"EPSV\r\n").unwrap();
    let reply = c.reply().unwrap();
    assert_eq!(reply.code().get(), 229, "{}", reply.first_line());
    let port = ftps_proto::address::parse_epsv_reply(reply.first_line()).unwrap();
    let mut data = TcpStream::connect(("127.0.0.1", port)).unwrap();
    data.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    c.send_bytes(format!("{command}\r\n").as_bytes()).unwrap();
    let first = c.any_reply().unwrap();
    let mut got = Vec::new();
    if first.code().is_preliminary() {
        if let Some(bytes) = upload {
            let _ = data.write_all(bytes);
            let _ = data.shutdown(std::net::Shutdown::Write);
        }
        let _ = data.read_to_end(&mut got);
        drop(data);
        (c.reply().unwrap().code().get(), got)
    } else {
        (first.code().get(), got)
    }
}

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
