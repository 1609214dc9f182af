//! Review 16c: attacks from outside on the changes since 1df8f0b — the quota ledger's
//! in-place uploads (`Quoted`: `settle_in_place`, the `writing` names refused to DELE and
//! RNTO) and the core's refusal of a client's PROXY header
//! (`ServerSession::handle_control_input`, `proxy::starts_header`), over real sockets on
//! every server runtime (loopback only). Each test asserts what should happen; the ones
//! that fail on the reviewed code are `#[ignore]`d with the finding they show
//! ("review16c finding N"), so the suite stays green and `cargo test -- --ignored` shows
//! them. The tests that are not ignored are attacks that held, kept as guards. Also
//! the drain (a session held from it) and the client's source address.
//!
//! Findings (details on each test):
//! 1. the appended file renamed away, then deleted: the append's bytes stay counted;
//! 2. the same through a rename of the appended file's directory;
//! 3. a failed APPE of a new name keeps its reservation (no identity to settle by);
//! 4. ABOR, or the client gone, mid-append: the upload is dropped without a commit and
//!    keeps bytes counted that the file does not hold (racy; blocking and smol);
//! 5. a client that reads no replies holds a drain to its grace (blocking: past it);
//! 6. (ftps-cli/tests/review16c.rs) `--retry` retries a wrong-family `--interface`;
//! 7. a transfer waiting for its data connection holds a drain to its grace.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::Fixture;
use ftps_conformance::hostile::{
    connect, each_all, end_plain_upload, login_as, plain_allowed, quota_user, start_plain_upload,
    transfer,
};
use ftps_conformance::raw::Raw;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// What the home holds, in bytes (recursively).
fn on_disk(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                on_disk(&e.path())
            } else {
                m.len()
            }
        })
        .sum()
}

/// Checks the user's count against the disk from both sides: what is left of a
/// `quota`-byte quota beside what `home` holds fits exactly (no drift up), and once it is
/// in, one byte more does not (no drift down). Leaves `fill.bin` and `more.bin`.
fn count_is_true(c: &mut Raw, home: &std::path::Path, quota: u64, tag: &str) {
    let used = on_disk(home);
    let left = quota - used;
    let (code, _) = transfer(c, "STOR fill.bin", Some(&vec![4u8; left as usize]));
    assert_eq!(
        code, 226,
        "{tag}: the home holds {used} bytes, yet {left} more do not fit under {quota}: the \
         count drifted up"
    );
    let (code, _) = transfer(c, "STOR more.bin", Some(&[5u8; 1]));
    assert_ne!(
        code, 226,
        "{tag}: the home holds {quota} bytes, yet one more fit: the count drifted down"
    );
}

/// Sends `command`, reads one reply within 10 s: its code.
fn send(c: &mut Raw, command: &str) -> u16 {
    c.cmd(command).unwrap()
}

// ---------------------------------------------------------------------------------------
// Quotas: in-place uploads
// ---------------------------------------------------------------------------------------

/// Finding 1: the 450 guard (`Ledger::writing`) holds the *name* an in-place upload
/// opened, not the file it writes. Renaming the appended file away (RNFR f.bin, RNTO
/// g.bin: the source of a rename is not checked) and then deleting it under its new name
/// (g.bin is not in `writing`) is accepted while the APPE goes on writing into the
/// unlinked file — exactly the case finding 16a/5 closed for a direct DELE. DELE gives
/// back g.bin's size as it was then; every byte the append writes afterwards is reserved
/// and stays counted for good (its end finds no file under f.bin: "renamed away, counted
/// as it was"). Here 20 000 bytes stay counted in an empty home.
/// Cause: `Quoted::rename` checks only `to` with `not_written`, and `Quoted::remove_file`
/// checks the name, not the file. Fix: refuse (450) an RNFR/RNTO whose *source* is a
/// name being written (or any path under a directory containing one — see finding 2), or
/// key `writing` by the file's identity (`Metadata::unique`) and check the identity of
/// what DELE/RNTO would remove.
#[test]
fn renaming_the_appended_file_away_then_deleting_it_leaves_the_count_true() {
    each_all(
        "r16c-appe-rename-dele",
        |s| {
            quota_user(s, 100_000);
            std::fs::write(s.root.join("q/f.bin"), [1u8; 1000]).unwrap();
        },
        |f, r, tag| {
            let home = f.root().join("q");
            let mut a = login_as(r, "q", "pq");
            let mut b = login_as(r, "q", "pq");
            let mut da = start_plain_upload(&mut a, "APPE f.bin").unwrap();
            da.write_all(&[3u8; 1000]).unwrap();
            std::thread::sleep(Duration::from_millis(200));
            let rnfr = send(&mut b, "RNFR f.bin");
            let rnto = if rnfr == 350 {
                send(&mut b, "RNTO g.bin")
            } else {
                rnfr
            };
            let dele = if rnto == 250 {
                send(&mut b, "DELE g.bin")
            } else {
                rnto
            };
            let appended = end_plain_upload(&mut a, da, &[3u8; 19_000]);
            // Whatever was refused or not: clean the home, then the count must be true.
            for name in ["f.bin", "g.bin"] {
                let _ = send(&mut b, &format!("DELE {name}"));
            }
            let left: Vec<_> = std::fs::read_dir(&home)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert!(left.is_empty(), "{tag}: {left:?}");
            let (code, _) = transfer(&mut a, "STOR fill.bin", Some(&vec![4u8; 100_000]));
            assert_eq!(
                code, 226,
                "{tag}: RNFR {rnfr}, RNTO {rnto}, DELE {dele} during APPE {appended}; the \
                 home is empty, yet 100 000 bytes do not fit under a 100 000-byte quota"
            );
        },
    );
}

/// Finding 2: the same hole through the appended file's directory: RNFR d, RNTO e (a
/// directory rename is not checked against `writing`, which holds "d/f.bin"), then DELE
/// e/f.bin (not in `writing`) while the APPE of d/f.bin goes on: its bytes stay counted.
/// Cause and fix as finding 1 (`Quoted::rename`: a rename whose source is, or contains,
/// a name being written should be refused 450; or key the guard by file identity).
#[test]
fn renaming_the_appended_files_directory_then_deleting_it_leaves_the_count_true() {
    each_all(
        "r16c-appe-rename-dir",
        |s| {
            quota_user(s, 100_000);
            std::fs::create_dir_all(s.root.join("q/d")).unwrap();
            std::fs::write(s.root.join("q/d/f.bin"), [1u8; 1000]).unwrap();
        },
        |f, r, tag| {
            let home = f.root().join("q");
            let mut a = login_as(r, "q", "pq");
            let mut b = login_as(r, "q", "pq");
            let mut da = start_plain_upload(&mut a, "APPE d/f.bin").unwrap();
            da.write_all(&[3u8; 1000]).unwrap();
            std::thread::sleep(Duration::from_millis(200));
            let rnfr = send(&mut b, "RNFR d");
            let rnto = if rnfr == 350 {
                send(&mut b, "RNTO e")
            } else {
                rnfr
            };
            let dele = if rnto == 250 {
                send(&mut b, "DELE e/f.bin")
            } else {
                rnto
            };
            let appended = end_plain_upload(&mut a, da, &[3u8; 19_000]);
            for name in ["d/f.bin", "e/f.bin"] {
                let _ = send(&mut b, &format!("DELE {name}"));
            }
            assert_eq!(on_disk(&home), 0, "{tag}");
            let (code, _) = transfer(&mut a, "STOR fill.bin", Some(&vec![4u8; 100_000]));
            assert_eq!(
                code, 226,
                "{tag}: RNFR d {rnfr}, RNTO e {rnto}, DELE e/f.bin {dele} during APPE \
                 {appended}; the home holds no bytes, yet 100 000 do not fit under a \
                 100 000-byte quota"
            );
        },
    );
}

/// Held: the name an append writes cannot be deleted or renamed over by another spelling
/// of it (`./`, `..`, doubled slashes, the absolute path from PWD): the session resolves
/// every spelling to one `VirtualPath` before `Quoted` compares it.
#[test]
fn other_spellings_of_the_appended_name_are_refused_too() {
    each_all(
        "r16c-appe-spellings",
        |s| {
            quota_user(s, 100_000);
            std::fs::create_dir_all(s.root.join("q/sub")).unwrap();
            std::fs::write(s.root.join("q/f.bin"), [1u8; 1000]).unwrap();
            std::fs::write(s.root.join("q/o.bin"), [9u8; 10]).unwrap();
        },
        |f, r, tag| {
            let home = f.root().join("q");
            let mut a = login_as(r, "q", "pq");
            let mut b = login_as(r, "q", "pq");
            b.send_bytes(b"PWD\r\n").unwrap();
            let pwd = b.reply().unwrap().first_line().to_owned();
            let cwd = pwd
                .split('"')
                .nth(1)
                .unwrap()
                .trim_end_matches('/')
                .to_owned();
            let da = start_plain_upload(&mut a, "APPE f.bin").unwrap();
            let spellings = [
                "./f.bin".to_owned(),
                "sub/../f.bin".to_owned(),
                "sub//..//f.bin".to_owned(),
                format!("{cwd}/f.bin"),
                format!("{cwd}//./f.bin"),
                format!("/../..{cwd}/f.bin"),
            ];
            for name in &spellings {
                let code = send(&mut b, &format!("DELE {name}"));
                assert_ne!(code, 250, "{tag}: DELE {name} during the APPE");
                assert_eq!(send(&mut b, "RNFR o.bin"), 350, "{tag}");
                let code = send(&mut b, &format!("RNTO {name}"));
                assert_ne!(code, 250, "{tag}: RNTO {name} during the APPE");
            }
            assert_eq!(end_plain_upload(&mut a, da, &[3u8; 5000]), 226, "{tag}");
            assert_eq!(
                std::fs::metadata(home.join("f.bin")).unwrap().len(),
                6000,
                "{tag}"
            );
            count_is_true(&mut a, &home, 100_000, tag);
        },
    );
}

/// Finding 4: ABOR in the middle of an append leaves bytes counted that the file does
/// not hold. The driver (`ftps-async/src/data.rs`, `run`: "Aborted by the session ... an
/// upload in progress is dropped unpublished") drops the pumping future, and with it the
/// upload — a chunk write possibly in flight — without a commit; the quota's
/// `QuotaUpload::drop` → `Guard::discard` gives nothing back for an in-place upload
/// ("what it wrote stays"), and nothing measures the file (`settle_in_place` runs only
/// from `commit`). Six rounds of: f.bin stored (1000 bytes), APPE of it, 7000 bytes sent,
/// ABOR (answered 426 + 226), f.bin deleted (250: the name itself is freed; f.bin held
/// 1000 bytes when the append was cut in the runs looked at). Then the emptied home
/// refuses 100 000 bytes under its 100 000-byte quota. A race (whether the last chunk
/// was reserved and not yet written when the abort came): smol drifted in two of the
/// last three runs, blocking in earlier ones, tokio in none. Beside it, on blocking, a
/// DELE right after the ABOR's 226 was sometimes refused 450 for about 20 ms (the
/// upload, and its `writing` entry, are let go by the data task after the session has
/// replied): not a lasting refusal, but the reply comes before the upload has ended.
/// Passes in some runs: run it a few times.
/// Mended: an in-place upload dropped without its commit leaves its file to be measured
/// by the ledger's next change of names (`Ledger::unsettled`); the brief 450 after the
/// ABOR's reply on blocking is still there (allowed below, up to 2 s).
/// Suggested fix was: commit an aborted upload with keep = false instead of dropping it (as this change
/// did for a failed storage write: `failed(idle)`), i.e. let the pumping future give its
/// upload back when aborted (hold it outside the future, or make `receive` return it on
/// an abort order); or make `Guard`'s drop hand an in-place guard to the ledger to be
/// measured (under the names lock) by its next operation.
#[test]
fn abor_mid_append_leaves_the_count_true() {
    each_all(
        "r16c-appe-abor",
        |s| quota_user(s, 100_000),
        |f, r, tag| {
            let home = f.root().join("q");
            let mut a = login_as(r, "q", "pq");
            let mut seen = Vec::new();
            // Six rounds: whether a chunk is in flight when the ABOR comes is a race.
            for round in 0..6 {
                let (code, _) = transfer(&mut a, "STOR f.bin", Some(&[1u8; 1000]));
                assert_eq!(code, 226, "{tag}");
                let mut da = start_plain_upload(&mut a, "APPE f.bin").unwrap();
                da.write_all(&[3u8; 7000]).unwrap();
                std::thread::sleep(Duration::from_millis(300));
                a.send_bytes(b"ABOR\r\n").unwrap();
                // 426 then 226, or 226 alone: read until the ABOR's own 226/225.
                let deadline = Instant::now() + Duration::from_secs(10);
                let mut codes = Vec::new();
                while Instant::now() < deadline {
                    let code = a.any_reply().unwrap().code().get();
                    codes.push(code);
                    if code == 225 || code == 226 {
                        break;
                    }
                }
                drop(da);
                let size = std::fs::metadata(home.join("f.bin")).unwrap().len();
                assert!(size >= 1000, "{tag}: {size}");
                // The name is free again (not refused 450) — if not at once, how long
                // it stays refused (10 s at most).
                let refused = Instant::now();
                let mut deletes = Vec::new();
                loop {
                    let code = send(&mut a, "DELE f.bin");
                    deletes.push(code);
                    if code != 450 || refused.elapsed() > Duration::from_secs(10) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                let held = refused.elapsed();
                // The name is free within moments (on blocking, the ABOR's reply still
                // comes some 20 ms before the data task lets the upload go: open, see
                // the note of session 11), never held.
                assert!(
                    deletes.last() == Some(&250) && held < Duration::from_secs(2),
                    "{tag}, round {round}: DELE after ABOR {codes:?}: {} refused 450 \
                     for {held:?}, then {:?}",
                    deletes.len() - 1,
                    deletes.last()
                );
                seen.push((codes, size));
            }
            // The home is empty: its count must be true.
            let what = format!("{tag} (ABOR replies, f.bin's size after: {seen:?})");
            count_is_true(&mut a, &home, 100_000, &what);
        },
    );
}

/// Finding 4 again, by a client that vanishes mid-append (control and data connections
/// dropped): the name is not left refused (a new session deletes the file at once), but
/// the session's end drops the upload without a commit, like ABOR, and the count keeps
/// bytes no file holds: after the DELE, the empty home refuses 100 000 bytes under a
/// 100 000-byte quota. Six rounds of it: failed on smol in each of the last three runs
/// (tokio and blocking held there; with the data connection dropped before the control
/// connection instead, all held in three runs). Same cause and fix as finding 4.
#[test]
fn a_client_gone_mid_append_leaves_the_count_true() {
    each_all(
        "r16c-appe-gone",
        |s| quota_user(s, 100_000),
        |f, r, tag| {
            let home = f.root().join("q");
            let mut b = login_as(r, "q", "pq");
            // Six rounds: whether a chunk is in flight when the client goes is a race.
            for round in 0..6 {
                let (code, _) = transfer(&mut b, "STOR f.bin", Some(&[1u8; 1000]));
                assert_eq!(code, 226, "{tag}");
                let mut a = login_as(r, "q", "pq");
                let mut da = start_plain_upload(&mut a, "APPE f.bin").unwrap();
                da.write_all(&[3u8; 9000]).unwrap();
                std::thread::sleep(Duration::from_millis(300));
                // The control connection's end ends the session; the data connection's,
                // an instant later, starts the last chunk's write, which the session's
                // end may cut. (The other order held in three runs.)
                drop(a);
                drop(da);
                let deadline = Instant::now() + Duration::from_secs(10);
                let mut codes = Vec::new();
                loop {
                    let code = send(&mut b, "DELE f.bin");
                    codes.push(code);
                    if code == 250 || Instant::now() > deadline {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                assert_eq!(codes.last(), Some(&250), "{tag}, round {round}: {codes:?}");
            }
            assert_eq!(on_disk(&home), 0, "{tag}");
            count_is_true(&mut b, &home, 100_000, tag);
        },
    );
}

/// Held: REST + STOR that ends before the old file's end (the file is cut where the
/// upload stopped) gives back what it cut: the count matches the disk both ways.
#[test]
fn a_shortening_rest_stor_counts_the_file_as_it_is() {
    each_all(
        "r16c-rest-shorten",
        |s| {
            quota_user(s, 20_000);
            std::fs::write(s.root.join("q/f.bin"), [1u8; 10_000]).unwrap();
        },
        |f, r, tag| {
            let home = f.root().join("q");
            let mut a = login_as(r, "q", "pq");
            assert_eq!(send(&mut a, "REST 100"), 350, "{tag}");
            let (code, _) = transfer(&mut a, "STOR f.bin", Some(&[2u8; 50]));
            assert_eq!(code, 226, "{tag}");
            let size = std::fs::metadata(home.join("f.bin")).unwrap().len();
            count_is_true(
                &mut a,
                &home,
                20_000,
                &format!("{tag} (f.bin: {size} bytes)"),
            );
        },
    );
}

/// Held: an append whose write fails (the simulated full disk: 50 000 bytes per upload)
/// does not leave its name refused, and the count matches what the file kept.
#[test]
fn a_failed_append_frees_its_name_and_counts_what_it_left() {
    each_all(
        "r16c-appe-fails",
        |s| {
            quota_user(s, 200_000);
            s.upload_quota = Some(50_000);
            std::fs::write(s.root.join("q/f.bin"), [1u8; 1000]).unwrap();
        },
        |f, r, tag| {
            let home = f.root().join("q");
            let mut a = login_as(r, "q", "pq");
            let (code, _) = transfer(&mut a, "APPE f.bin", Some(&vec![2u8; 60_000]));
            assert_ne!(code, 226, "{tag}");
            let mut b = login_as(r, "q", "pq");
            assert_eq!(send(&mut b, "RNFR f.bin"), 350, "{tag}");
            assert_eq!(send(&mut b, "RNTO g.bin"), 250, "{tag}");
            assert_eq!(send(&mut b, "RNFR g.bin"), 350, "{tag}");
            assert_eq!(send(&mut b, "RNTO f.bin"), 250, "{tag}: not refused 450");
            // The rest is checked in 50 000-byte pieces (the simulated disk's limit).
            let used = on_disk(&home);
            let mut left = 200_000 - used;
            let mut n = 0;
            while left > 0 {
                let piece = left.min(50_000);
                let (code, _) = transfer(
                    &mut b,
                    &format!("STOR p{n}.bin"),
                    Some(&vec![4u8; piece as usize]),
                );
                assert_eq!(
                    code, 226,
                    "{tag}: {used} bytes on disk, piece {n} of {piece}"
                );
                left -= piece;
                n += 1;
            }
            let (code, _) = transfer(&mut b, "STOR more.bin", Some(&[5u8; 1]));
            assert_ne!(code, 226, "{tag}: the count drifted down");
        },
    );
}

/// An in-place upload (`commands`, the last one the transfer, of `size` bytes) on a
/// fresh server per runtime whose simulated disk takes 50 000 bytes per upload, with
/// f.bin holding 1000 bytes; then the home is emptied (every name deleted) and must take
/// exactly its 10 files and its 100 000-byte quota (eight empty files, two of 50 000
/// bytes), then not one byte more.
fn in_place_case(name: &str, commands: &[&str], size: usize) {
    each_all(
        name,
        |s| {
            quota_user(s, 100_000);
            s.upload_quota = Some(50_000);
            std::fs::write(s.root.join("q/f.bin"), [1u8; 1000]).unwrap();
        },
        |f, r, tag| {
            let home = f.root().join("q");
            let mut c = login_as(r, "q", "pq");
            let mut codes = Vec::new();
            for command in &commands[..commands.len() - 1] {
                codes.push(send(&mut c, command));
            }
            let last = commands[commands.len() - 1];
            codes.push(transfer(&mut c, last, Some(&vec![2u8; size])).0);
            let sizes: Vec<_> = std::fs::read_dir(&home)
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    (e.file_name(), e.metadata().unwrap().len())
                })
                .collect();
            for name in ["f.bin", "new.bin"] {
                let _ = send(&mut c, &format!("DELE {name}"));
            }
            assert_eq!(on_disk(&home), 0, "{tag}");
            let mut after = Vec::new();
            // Eight empty files, then two of 50 000 bytes (a full quota refuses any
            // new upload, even an empty one).
            for n in 0..10 {
                let piece = if n < 8 { 0 } else { 50_000 };
                after.push(transfer(&mut c, &format!("STOR p{n}.bin"), Some(&vec![4u8; piece])).0);
            }
            // One byte more, over an empty file: the bytes quota is full.
            after.push(transfer(&mut c, "STOR p0.bin", Some(&[5u8; 1])).0);
            let fits = after[..10].iter().all(|&code| code == 226);
            assert!(
                fits && after[10] != 226,
                "{tag}: {commands:?} of {size} bytes: {codes:?}, left {sizes:?}; then the \
                 emptied home took {after:?} (10 files of 100 000 bytes in all should \
                 fit, then no byte more)"
            );
        },
    );
}

/// Finding 3: an in-place upload of a name with no file under it (APPE of a new name)
/// whose write fails keeps its reservation for good: `Guard::settle_in_place` counts the
/// file as it is only when the upload knew the file's identity before it started
/// (`identity: found.and_then(|m| m.unique)`), and a new name had none — so it returns
/// early ("renamed away or replaced") and neither the failed chunk's reservation nor
/// anything else is given back. Here an APPE of 60 000 bytes to a new name, refused by
/// the simulated disk (452), leaves an empty new.bin; after it is deleted the empty home
/// refuses the first 50 000-byte upload (552) under a 100 000-byte quota. The same
/// review16a finding 3, still open for a new name.
/// Fix (`Quoted::guarded`): for an in-place upload of a new name, take the identity from
/// a stat right after `open` (the `writing` guard then holds the name), so that
/// `settle_in_place` measures it; or settle by the name when `new_file` and the name
/// still holds a file created at or after the upload's start.
#[test]
fn a_failed_append_to_a_new_name_gives_its_reservation_back() {
    in_place_case("r16c-appe-new-fails", &["APPE new.bin"], 60_000);
}

/// Held: an APPE of a new name that succeeds counts what it wrote (once deleted, the
/// quota fits again exactly).
#[test]
fn an_append_to_a_new_name_counts_what_it_wrote() {
    in_place_case("r16c-appe-new", &["APPE new.bin"], 500);
}

/// Held: a REST + STOR of the existing file that the simulated disk stops part-way
/// counts the file as it is.
#[test]
fn a_failed_rest_stor_counts_the_file_as_it_is() {
    in_place_case("r16c-rest-fails", &["REST 100", "STOR f.bin"], 60_000);
}

/// Held: REST past the file's end (or of a missing name) is refused, and leaves the
/// count true.
#[test]
fn a_rest_past_the_end_leaves_the_count_true() {
    in_place_case("r16c-rest-past", &["REST 2000", "STOR f.bin"], 500);
    in_place_case("r16c-rest-missing", &["REST 100", "STOR new.bin"], 500);
}

// ---------------------------------------------------------------------------------------
// PROXY headers refused by the core
// ---------------------------------------------------------------------------------------

/// Held: a client that sends the first bytes of a PROXY header ("PRO") and then nothing
/// is not held open past the login timeout (2 s here) because the core takes no bytes
/// until it can tell.
#[test]
fn a_client_stalled_after_pro_is_closed_by_the_login_timeout() {
    each_all(
        "r16c-pro-stall",
        |s| s.config.timeouts.login = Duration::from_secs(2),
        |_, r, tag| {
            let mut c = connect(r);
            c.send_bytes(b"PRO").unwrap();
            let start = Instant::now();
            assert!(
                c.socket_closed_within(Duration::from_secs(8)),
                "{tag}: still open {:?} after \"PRO\" under a 2 s login timeout",
                start.elapsed()
            );
        },
    );
}

/// This process's CPU time (user + system), in clock ticks (Linux).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which is in parentheses): utime is the 12th, stime
    // the 13th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Held: while the core holds back undecided first bytes ("PRO", taking none of them),
/// the driver does not spin on them: ten such sessions idle for 2 s cost this process
/// (server and client, and whatever other tests run beside) less than 1.5 s of CPU — one
/// spinning core would be 2 s, and the machine has two.
#[test]
fn undecided_first_bytes_do_not_spin() {
    each_all(
        "r16c-pro-spin",
        |s| s.config.timeouts.login = Duration::from_secs(30),
        |_, r, tag| {
            let mut held = Vec::new();
            for _ in 0..10 {
                let mut c = connect(r);
                c.send_bytes(b"PRO").unwrap();
                held.push(c);
            }
            std::thread::sleep(Duration::from_millis(300));
            let before = cpu_ticks();
            std::thread::sleep(Duration::from_secs(2));
            let spent = cpu_ticks() - before;
            // 100 ticks a second on Linux.
            assert!(
                spent < 150,
                "{tag}: {spent} ticks of CPU in 2 s of idle sessions"
            );
            // Still waiting for more bytes, not closed.
            for c in &mut held {
                assert!(!c.socket_closed_within(Duration::from_millis(50)), "{tag}");
            }
        },
    );
}

/// Held: first commands that merely start like a PROXY header are answered, not taken
/// for one: "PROT P" (as a client pipelining its setup would send), "PROXY" without its
/// space, "PR" + "OT P" split across segments, and blank lines (a prefix of the v2
/// signature) followed by a command.
#[test]
fn first_commands_that_start_like_a_header_are_answered() {
    each_all(
        "r16c-proxy-lookalikes",
        |s| s.config.timeouts.login = Duration::from_secs(10),
        |_, r, tag| {
            for (parts, what) in [
                (&[&b"PROT P\r\n"[..]][..], "PROT P"),
                (&[&b"PROXY\r\n"[..]][..], "PROXY"),
                (&[&b"PR"[..], &b"OT P\r\n"[..]][..], "PR|OT P"),
                (&[&b"PROX"[..], &b"\r\n"[..]][..], "PROX|CRLF"),
                (&[&b"\r\n"[..], &b"NOOP\r\n"[..]][..], "CRLF|NOOP"),
                (
                    &[&b"\r\n\r\n"[..], &b"\0\r\nNOOP\r\n"[..]][..],
                    "v2 prefix|NOOP",
                ),
            ] {
                let mut c = connect(r);
                for p in parts {
                    c.send_bytes(p).unwrap();
                    std::thread::sleep(Duration::from_millis(150));
                }
                let reply = c.any_reply();
                assert!(
                    reply.is_ok(),
                    "{tag}: {what} as the first input was not answered: {:?}",
                    reply.err()
                );
            }
        },
    );
}

/// Held: in implicit FTPS the first plaintext is inside TLS: a PROXY header there closes
/// the session without a reply, whole or split.
#[test]
fn a_header_inside_implicit_tls_closes_unanswered() {
    each_all(
        "r16c-proxy-implicit",
        |_| {},
        |f, r, tag| {
            for parts in [
                &[&b"PROXY TCP4 127.0.0.9 127.0.0.1 40000 990\r\nNOOP\r\n"[..]][..],
                &[
                    &b"PRO"[..],
                    &b"XY TCP4 127.0.0.9 127.0.0.1 40000 990\r\nNOOP\r\n"[..],
                ][..],
            ] {
                let tcp = std::net::TcpStream::connect(r.implicit()).unwrap();
                tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
                let conn = rustls::ClientConnection::new(f.client_tls(), name).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                // The greeting, up to its end of line.
                let mut greeting = Vec::new();
                let mut byte = [0u8; 1];
                while !greeting.ends_with(b"\r\n") {
                    assert_eq!(tls.read(&mut byte).unwrap(), 1, "{tag}");
                    greeting.push(byte[0]);
                }
                assert!(greeting.starts_with(b"220"), "{tag}");
                for p in parts {
                    tls.write_all(p).unwrap();
                    tls.flush().unwrap();
                    std::thread::sleep(Duration::from_millis(150));
                }
                let mut after = Vec::new();
                let end = tls.read_to_end(&mut after);
                let timed_out = end.as_ref().is_err_and(|e| {
                    matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    )
                });
                assert!(
                    after.is_empty() && !timed_out,
                    "{tag}: a PROXY header inside implicit TLS: answered {:?}, {end:?}",
                    String::from_utf8_lossy(&after)
                );
            }
        },
    );
}

// ---------------------------------------------------------------------------------------
// Drain
// ---------------------------------------------------------------------------------------

/// Held: a session whose first bytes are still undecided ("PRO", held back by the core
/// until it can tell a PROXY header) does not hold a drain: it is closed at once, not at
/// its login timeout (30 s here) or the grace (5 s).
#[test]
fn an_undecided_first_input_does_not_hold_the_drain() {
    each_all(
        "r16c-drain-pro",
        |s| s.config.timeouts.login = Duration::from_secs(30),
        |_, r, tag| {
            let mut c = connect(r);
            c.send_bytes(b"PRO").unwrap();
            std::thread::sleep(Duration::from_millis(300));
            let start = Instant::now();
            let cut = r.drain(Duration::from_secs(5));
            let took = start.elapsed();
            assert!(
                cut == 0 && took < Duration::from_secs(3),
                "{tag}: \"PRO\" held the drain {took:?} ({cut} sessions cut)"
            );
            assert!(c.socket_closed_within(Duration::from_secs(2)), "{tag}");
        },
    );
}

/// Finding 5: a logged-in client that pipelines commands and never reads a reply, until
/// the server's replies fill the socket buffers (the server's reply write blocks), holds
/// a drain for its whole grace (5 s here) and is then cut: the session is inside
/// `Driver::act` (`Action::Send`: `control.send` awaited up to the reply-write timeout,
/// 60 s here), which neither `notice_drain` in `settle` nor the run loop's check can
/// interrupt. Nothing is under way that a drain should wait for, and no 421 can be
/// delivered into a full socket. Seen on every runtime: tokio and smol 5.02 s (the
/// grace), blocking 7.0 s — longer than the grace it was given. One client per node
/// that stops reading stretches every rolling restart to the full grace.
/// Fix (`ftps-async/src/server.rs`, `Driver::act` for `Send`/`StopControlTls`, and
/// `on_control_bytes`' TLS writes): race the blocked write against the drain signal and,
/// once draining, close the connection (`IoEvent::ControlClosed`) instead of waiting for
/// the write's deadline, as the stalled TLS handshake now is (review16b finding 5).
/// Mended on tokio and smol (a reply write is raced against the drain, and a write begun
/// during it has a 1 s deadline); the first version of the mend made `settle` spin on a
/// session closed before it noticed the drain (this test hung): `notice_drain` now
/// leaves a closed session alone. On blocking a socket write under way cannot be raced:
/// still open (the ignored test below).
#[test]
fn a_client_that_reads_no_replies_does_not_hold_the_drain() {
    no_reader_holds_no_drain(false);
}

#[test]
#[ignore = "review16c finding 5, blocking: a reply write under way when the drain starts cannot be raced there (7 s for a 5 s grace)"]
fn a_client_that_reads_no_replies_does_not_hold_the_drain_on_blocking() {
    no_reader_holds_no_drain(true);
}

/// Finding 5's case, on the blocking runtime alone (`blocking`) or on the others.
fn no_reader_holds_no_drain(blocking: bool) {
    each_all(
        "r16c-drain-noread",
        |s| {
            plain_allowed(s);
            s.config.timeouts.reply_write = Duration::from_secs(60);
        },
        |f, r, tag| {
            if (tag == "blocking") != blocking {
                return;
            }
            let (user, password) = f.credentials();
            let mut c = connect(r);
            assert_eq!(send(&mut c, &format!("USER {user}")), 331);
            assert_eq!(send(&mut c, &format!("PASS {password}")), 230);
            let mut tcp = c.plain_socket().unwrap();
            tcp.set_write_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let batch = b"NOOP\r\n".repeat(1000);
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut blocked = false;
            while Instant::now() < deadline {
                if tcp.write_all(&batch).is_err() {
                    blocked = true;
                    break;
                }
            }
            assert!(blocked, "{tag}: the server kept reading for 10 s");
            let start = Instant::now();
            let cut = r.drain(Duration::from_secs(5));
            let took = start.elapsed();
            assert!(
                took < Duration::from_secs(3),
                "{tag}: a client reading no replies held the drain {took:?} ({cut} sessions cut)"
            );
        },
    );
}

/// Finding 7 (a design question more than a bug): a transfer command whose data
/// connection never comes (EPSV, then STOR, and the client connects nothing; the
/// data-connect timeout 30 s here), then a drain with a 5 s grace: nothing is being
/// transferred, yet the session holds the drain to its grace and is cut (every runtime:
/// 5.02 s, 1 session cut). `ServerSession::shut_down` documents waiting for "the
/// transfer in progress", and a STOR still waiting for its data connection counts as
/// one; so any client (or a balancer's health check) that issues a transfer and never
/// connects stretches a rolling restart to its grace (up to the data-connect timeout).
/// Suggested: in the core's drain (`ServerSession::drain` with `shutting_down`), end a
/// transfer whose data connection is not yet established with 425 then 421, as nothing
/// of it was sent or received. Mended: it gets `DRAIN_DATA_CONNECT` (1 s) more, then 425
/// (ended at once, an upload whose connection was made but not yet reported to the
/// session was cut: `drain.rs`'s grace test on blocking caught it).
#[test]
fn a_transfer_waiting_for_its_connection_does_not_hold_the_drain() {
    each_all(
        "r16c-drain-epsv",
        |s| {
            plain_allowed(s);
            s.config.timeouts.data_connect = Duration::from_secs(30);
        },
        |f, r, tag| {
            let (user, password) = f.credentials();
            let mut c = connect(r);
            assert_eq!(send(&mut c, &format!("USER {user}")), 331);
            assert_eq!(send(&mut c, &format!("PASS {password}")), 230);
            assert_eq!(send(&mut c, "EPSV"), 229, "{tag}");
            c.send_bytes(b"STOR never.bin\r\n").unwrap();
            std::thread::sleep(Duration::from_millis(300));
            let start = Instant::now();
            let cut = r.drain(Duration::from_secs(5));
            let took = start.elapsed();
            assert!(
                took < Duration::from_secs(3),
                "{tag}: a STOR waiting for its data connection held the drain {took:?} \
                 ({cut} sessions cut)"
            );
        },
    );
}

// ---------------------------------------------------------------------------------------
// Client source address
// ---------------------------------------------------------------------------------------

/// Held: a connect from a source address that is refused (nothing listens on the port;
/// IPv4 from 127.0.0.2, IPv6 from ::1) fails at once on every client runtime — the
/// non-blocking connect's pending error is read, not taken for a connection — and says
/// it was refused.
#[test]
fn a_refused_connect_from_a_source_address_fails_at_once() {
    use ftps_backend::client::ClientOptions;
    use ftps_conformance::ClientRuntime;
    use ftps_conformance::runtimes::{Blocking, Smol, Tokio};
    static SMOL: Smol = Smol::new();
    let fixture = Fixture::new("r16c-source-refused");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let clients: [&dyn ClientRuntime; 3] = [&Tokio, &Blocking, &SMOL];
    for client in clients {
        for (host, from) in [("127.0.0.1", "127.0.0.2"), ("::1", "::1")] {
            let tag = format!("{} client, {host}:{closed} from {from}", client.name());
            let (user, password) = fixture.credentials();
            let mut o = ClientOptions::new(host, closed, user, password).unwrap();
            o.tls = Some(fixture.client_tls());
            o.source_address = Some(from.parse().unwrap());
            o.connect_timeout = Duration::from_secs(20);
            let started = Instant::now();
            let failed = match client.connect(o) {
                Ok(_) => panic!("{tag}: connected"),
                Err(e) => e.to_string(),
            };
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{tag}: took {:?} ({failed})",
                started.elapsed()
            );
            assert!(failed.to_lowercase().contains("refused"), "{tag}: {failed}");
        }
    }
}
