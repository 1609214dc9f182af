//! Review of issue 15, step 1 (users as values): attacks on homes, permissions and the
//! authenticator's timeout, over real sockets, on every server runtime.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_backend::User;
use ftps_conformance::hostile::{connect, each, plain_allowed, transfer};
use ftps_conformance::raw::Raw;
use ftps_proto::VirtualPath;
use ftps_proto::server::{Grants, Permission, Permissions};
use std::time::{Duration, Instant};

fn path(p: &str) -> VirtualPath {
    VirtualPath::root().resolve(p)
}

fn login(r: &dyn ftps_conformance::RunningServer, user: &str, password: &str) -> Raw {
    let mut c = connect(r);
    assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331);
    assert_eq!(c.cmd(&format!("PASS {password}")).unwrap(), 230, "{user}");
    c
}

/// Finding 1: a per-directory rule names a path, so renaming a directory above the rule's
/// directory carried the directory out from under its rule: carol (everything, but only
/// reading in /a/locked) renamed /a to /b, then deleted and replaced /b/locked's files.
#[test]
fn renaming_a_directory_above_a_rule_does_not_carry_it_out() {
    each(
        "review-users-rename-rule",
        |s| {
            plain_allowed(s);
            std::fs::create_dir_all(s.root.join("carol/a/locked")).unwrap();
            std::fs::write(s.root.join("carol/a/locked/keep.txt"), b"kept").unwrap();
            std::fs::create_dir_all(s.root.join("carol/pass")).unwrap();
            std::fs::write(s.root.join("carol/pass/keep.txt"), b"kept").unwrap();
            s.users = vec![(
                User::new("carol").with_home(path("/carol")).with_grants(
                    Grants::new(Permissions::ALL)
                        .with_dir(path("/a/locked"), Permissions::READ_ONLY)
                        .with_dir(
                            path("/pass"),
                            Permissions::READ_ONLY.with(Permission::Rename),
                        ),
                ),
                "pc".into(),
            )];
        },
        |f, r, tag| {
            let root = f.root();
            let mut c = login(r, "carol", "pc");
            // The rule holds at its directory.
            assert_eq!(c.cmd("DELE a/locked/keep.txt").unwrap(), 550, "{tag}");
            // Renaming a directory that holds a rule's directory is refused, whichever
            // name it would get (RNFR /a, or RNTO of anything over it).
            assert_eq!(c.cmd("RNFR a").unwrap(), 550, "{tag}: RNFR a");
            assert_eq!(c.cmd("RNTO b").unwrap(), 503, "{tag}: RNTO b");
            assert_eq!(c.cmd("RNFR /").unwrap(), 550, "{tag}: RNFR /");
            assert_eq!(c.cmd("DELE b/locked/keep.txt").unwrap(), 550, "{tag}");
            assert_eq!(
                std::fs::read(root.join("carol/a/locked/keep.txt")).unwrap(),
                b"kept",
                "{tag}"
            );
            // Nor the rule's directory itself, even where its rule grants rename (it would
            // leave its rule behind: /pass2 has the default, everything).
            assert_eq!(c.cmd("RNFR pass").unwrap(), 550, "{tag}: RNFR pass");
            assert_eq!(c.cmd("RNTO pass2").unwrap(), 503, "{tag}");
            assert_eq!(c.cmd("DELE pass2/keep.txt").unwrap(), 550, "{tag}");
            // Nor another directory renamed to a rule's name, or above it.
            assert_eq!(c.cmd("MKD mine").unwrap(), 257, "{tag}");
            assert_eq!(c.cmd("RNFR mine").unwrap(), 350, "{tag}");
            assert_eq!(c.cmd("RNTO a").unwrap(), 550, "{tag}: RNTO a");
            // Left alone (see the report, finding 1): MLSx perm still offers `f` on a rule's
            // directory (server_session.rs' grants_decide_every_command asserts it).
            // A directory beside the rule's renames as before.
            assert_eq!(c.cmd("MKD other").unwrap(), 257, "{tag}");
            assert_eq!(c.cmd("RNFR other").unwrap(), 350, "{tag}");
            assert_eq!(c.cmd("RNTO other2").unwrap(), 250, "{tag}");
        },
    );
}

/// Finding 2: RNTO onto an existing file replaces it (rename(2)), so a user with
/// `rename` but neither `overwrite` nor `delete` destroys any file it can name. It should
/// need `overwrite`: without it, RNTO renames only to a name that does not exist.
#[test]
fn renaming_over_a_file_needs_overwrite() {
    each(
        "review-users-rename-over",
        |s| {
            plain_allowed(s);
            std::fs::create_dir_all(s.root.join("dave")).unwrap();
            std::fs::write(s.root.join("dave/precious.txt"), b"precious").unwrap();
            let p = Permissions::READ_ONLY
                .with(Permission::Upload)
                .with(Permission::Rename);
            s.users = vec![(
                User::new("dave")
                    .with_home(path("/dave"))
                    .with_grants(Grants::new(p)),
                "pd".into(),
            )];
        },
        |f, r, tag| {
            let root = f.root();
            let mut d = login(r, "dave", "pd");
            // dave may not replace precious.txt by STOR, nor delete it...
            assert_eq!(
                transfer(&mut d, "STOR precious.txt", Some(b"x")).0,
                550,
                "{tag}"
            );
            assert_eq!(d.cmd("DELE precious.txt").unwrap(), 550, "{tag}");
            // ...but may upload a new file and rename it over precious.txt.
            assert_eq!(
                transfer(&mut d, "STOR mine.txt", Some(b"gone")).0,
                226,
                "{tag}"
            );
            assert_eq!(d.cmd("RNFR mine.txt").unwrap(), 350, "{tag}");
            let code = d.cmd("RNTO precious.txt").unwrap();
            assert_eq!(
                std::fs::read(root.join("dave/precious.txt")).unwrap(),
                b"precious",
                "{tag}: RNTO answered {code} and replaced a file dave may not overwrite"
            );
            assert_eq!(code, 550, "{tag}");
            // A new name is still fine, and a user with overwrite still replaces.
            assert_eq!(d.cmd("RNFR mine.txt").unwrap(), 350, "{tag}");
            assert_eq!(d.cmd("RNTO other.txt").unwrap(), 250, "{tag}");
            assert_eq!(std::fs::read(root.join("dave/other.txt")).unwrap(), b"gone");
        },
    );
}

/// Finding 3: MLSx `perm` offered `a` and `w` (append, store) on a file to a user with
/// `overwrite` but not `upload`, and the server refuses both (STOR and APPE need
/// `upload`): a client is never to be offered what it would be refused.
#[test]
fn perm_offers_no_store_without_upload() {
    each(
        "review-users-perm",
        |s| {
            plain_allowed(s);
            std::fs::create_dir_all(s.root.join("erin")).unwrap();
            std::fs::write(s.root.join("erin/f.txt"), b"file").unwrap();
            let p = Permissions::READ_ONLY.with(Permission::Overwrite);
            s.users = vec![(
                User::new("erin")
                    .with_home(path("/erin"))
                    .with_grants(Grants::new(p)),
                "pe".into(),
            )];
        },
        |f, r, tag| {
            let root = f.root();
            let mut e = login(r, "erin", "pe");
            e.send_bytes(b"MLST f.txt\r\n").unwrap();
            let reply = e.reply().unwrap();
            assert_eq!(reply.code().get(), 250, "{tag}");
            let text = reply.lines().join("\n");
            let perm = text
                .split(';')
                .find_map(|f| f.trim().strip_prefix("perm="))
                .unwrap()
                .to_owned();
            let stor = transfer(&mut e, "STOR f.txt", Some(b"x")).0;
            let appe = transfer(&mut e, "APPE f.txt", Some(b"x")).0;
            assert_eq!(std::fs::read(root.join("erin/f.txt")).unwrap(), b"file");
            assert!(
                !(perm.contains('w') && stor == 550),
                "{tag}: perm={perm} offers w, STOR answered {stor}"
            );
            assert!(
                !(perm.contains('a') && appe == 550),
                "{tag}: perm={perm} offers a, APPE answered {appe}"
            );
        },
    );
}

/// Finding 4: "every check bounded by auth_timeout, whatever its kind": a blocking check
/// (a synchronous directory client) that does not answer in time should be 421 at the
/// timeout on every runtime.
#[test]
fn a_blocking_check_past_its_timeout_is_421_on_every_runtime() {
    each(
        "review-users-blocking-timeout",
        |s| {
            plain_allowed(s);
            s.auth_wait = Some(Duration::from_secs(3));
            s.auth_blocking = true;
            s.auth_timeout = Some(Duration::from_millis(200));
        },
        |f, r, tag| {
            let (user, password) = f.credentials();
            let mut c = connect(r);
            assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331);
            let start = Instant::now();
            let code = c.cmd(&format!("PASS {password}")).unwrap();
            let took = start.elapsed();
            eprintln!("{tag}: PASS answered {code} in {took:?}");
            assert_eq!(code, 421, "{tag}");
            assert!(
                took < Duration::from_millis(1500),
                "{tag}: the 421 came after {took:?}, not at the 200 ms timeout"
            );
        },
    );
}

/// A panic in the authenticator (a bug in an application's check, async or blocking)
/// costs the session it ran for and nothing else: its slot is given back, the server
/// keeps serving.
#[test]
fn a_panicking_authenticator_costs_one_session() {
    for blocking in [false, true] {
        each(
            "review-users-panic",
            |s| {
                plain_allowed(s);
                s.auth_wait = Some(Duration::from_millis(10));
                s.auth_blocking = blocking;
                s.max_sessions = (1000, 3);
            },
            |f, r, tag| {
                let (user, password) = f.credentials();
                for round in 0..8 {
                    let mut c = connect(r);
                    assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331);
                    c.send_bytes(b"PASS panic!\r\n").unwrap();
                    // Whatever the answer (none, or 421), the session ends.
                    let mut ended = false;
                    for _ in 0..3 {
                        match c.reply() {
                            Ok(r) if r.code().get() == 230 => {
                                panic!("{tag}: a panicking check logged in")
                            }
                            Ok(_) => {}
                            Err(_) => {
                                ended = true;
                                break;
                            }
                        }
                    }
                    assert!(ended, "{tag} blocking={blocking} round {round}");
                }
                let start = Instant::now();
                let mut c = connect(r);
                assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331);
                assert_eq!(
                    c.cmd(&format!("PASS {password}")).unwrap(),
                    230,
                    "{tag} blocking={blocking}: after panics"
                );
                assert!(start.elapsed() < Duration::from_secs(5), "{tag}");
            },
        );
    }
}

/// Finding 5: the lockout was checked before a login's check waited (for the CPU gate, or
/// for a slow service), and not after: sessions from one address sending their passwords
/// together each got a guess checked and answered past the lockout's bound (before this
/// change, the lockout was checked inside the gate, one check at a time). A password that
/// arrives while other guesses are in flight, answered after the address was locked out,
/// must not log in.
#[test]
fn guesses_in_flight_do_not_outrun_the_lockout() {
    each(
        "review-users-lockout-race",
        |s| {
            plain_allowed(s);
            s.auth_wait = Some(Duration::from_millis(300));
            // Three failures lock the address out.
            s.login_lockout = Some((3, Duration::from_secs(60), Duration::from_secs(60)));
        },
        |f, r, tag| {
            let (user, password) = f.credentials();
            let mut wrong: Vec<Raw> = (0..8)
                .map(|_| {
                    let mut c = connect(r);
                    assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331);
                    c
                })
                .collect();
            let mut right = connect(r);
            assert_eq!(right.cmd(&format!("USER {user}")).unwrap(), 331);
            for c in &mut wrong {
                c.send_bytes(b"PASS wrong\r\n").unwrap();
            }
            // The right password arrives while the wrong ones are checked: it is answered
            // after they have locked the address out.
            std::thread::sleep(Duration::from_millis(100));
            right
                .send_bytes(format!("PASS {password}\r\n").as_bytes())
                .unwrap();
            for c in &mut wrong {
                assert_eq!(c.reply().unwrap().code().get(), 530, "{tag}");
            }
            let code = right.reply().unwrap().code().get();
            assert_eq!(
                code, 530,
                "{tag}: a guess answered after the lockout logged in"
            );
        },
    );
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// Finding 6: a blocking check past its timeout is 421 and its session closes, but the
/// check keeps its thread until it ends (threads cannot be cancelled): a client that logs
/// in again and again against a directory service that hangs holds a blocking-pool thread
/// per attempt, beyond every session limit (here 2 sessions per address, 20 threads);
/// once the pool is full (tokio: 512), every file operation waits behind the hung checks.
/// Blocking checks should be bounded (a gate, as CPU-bound ones are).
#[test]
fn timed_out_blocking_checks_hold_no_threads_beyond_the_session_limits() {
    each(
        "review-users-threads",
        |s| {
            plain_allowed(s);
            s.auth_wait = Some(Duration::from_secs(4));
            s.auth_blocking = true;
            s.auth_timeout = Some(Duration::from_millis(100));
            s.max_sessions = (1000, 2);
            s.blocking_auth_checks = Some(4);
        },
        |f, r, tag| {
            let (user, password) = f.credentials();
            let before = threads();
            let start = Instant::now();
            let mut attempts = 0;
            while attempts < 20 && start.elapsed() < Duration::from_secs(3) {
                let mut c = connect(r);
                assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331);
                let _ = c.cmd(&format!("PASS {password}"));
                attempts += 1;
            }
            let held = threads().saturating_sub(before);
            eprintln!(
                "{tag}: {attempts} logins in {:?}, {held} more threads",
                start.elapsed()
            );
            // Let the hung checks end before the next runtime's turn.
            std::thread::sleep(Duration::from_secs(4));
            // The gate's 4 places, and on the blocking runtime (a thread per session)
            // the 2 sessions the address may hold: not a thread per attempt.
            assert!(held <= 6, "{tag}: {held} threads held by {attempts} logins");
        },
    );
}

/// Finding 7 (low): a rule's directory is governed by its own rule, not its parent's (the
/// rule "covers /pub itself"): with a read-only root and everything in /pub, the user
/// removes /pub from the read-only root, then stores a file named `pub` there. SFTPGo
/// checks making, removing and creating an entry against its parent directory's
/// permissions.
#[test]
fn a_rule_directory_is_not_removed_from_a_read_only_parent() {
    each(
        "review-users-rule-itself",
        |s| {
            plain_allowed(s);
            std::fs::create_dir_all(s.root.join("fay/pub")).unwrap();
            s.users = vec![(
                User::new("fay").with_home(path("/fay")).with_grants(
                    Grants::new(Permissions::READ_ONLY).with_dir(path("/pub"), Permissions::ALL),
                ),
                "pf".into(),
            )];
        },
        |f, r, tag| {
            let root = f.root();
            let mut c = login(r, "fay", "pf");
            assert_eq!(
                transfer(&mut c, "STOR /new.txt", Some(b"x")).0,
                550,
                "{tag}"
            );
            let rmd = c.cmd("RMD /pub").unwrap();
            let stor = transfer(&mut c, "STOR /pub", Some(b"a file in the read-only root")).0;
            assert!(
                root.join("fay/pub").is_dir(),
                "{tag}: RMD /pub answered {rmd}, STOR /pub {stor}"
            );
        },
    );
}

/// Finding 8 (low; needs a local account that writes in the home): per-directory rules
/// name virtual paths, and the storage follows symbolic links that stay in the home, so a
/// link from a permissive directory into a restricted one carries the permissive rule:
/// gus (read-only in /locked, everything in /out) deletes /locked's file through
/// /out/lk -> ../locked.
#[test]
#[ignore = "finding 8 (review15): a symlink inside the home leads around a per-directory rule"]
fn a_symbolic_link_does_not_lead_around_a_rule() {
    each(
        "review-users-rule-symlink",
        |s| {
            plain_allowed(s);
            std::fs::create_dir_all(s.root.join("gus/locked")).unwrap();
            std::fs::create_dir_all(s.root.join("gus/out")).unwrap();
            std::fs::write(s.root.join("gus/locked/keep.txt"), b"kept").unwrap();
            std::os::unix::fs::symlink("../locked", s.root.join("gus/out/lk")).unwrap();
            s.users = vec![(
                User::new("gus").with_home(path("/gus")).with_grants(
                    Grants::new(Permissions::READ_ONLY).with_dir(path("/out"), Permissions::ALL),
                ),
                "pg".into(),
            )];
        },
        |f, r, tag| {
            let root = f.root();
            let mut c = login(r, "gus", "pg");
            assert_eq!(c.cmd("DELE /locked/keep.txt").unwrap(), 550, "{tag}");
            let code = c.cmd("DELE /out/lk/keep.txt").unwrap();
            assert!(
                root.join("gus/locked/keep.txt").exists(),
                "{tag}: DELE through the link answered {code}"
            );
        },
    );
}
