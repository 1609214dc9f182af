//! Issue 15: users as values — homes, permissions, and authenticators of every kind —
//! over real sockets, on every server runtime.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_backend::User;
use ftps_conformance::hostile::{connect, each, plain_allowed, transfer};
use ftps_conformance::raw::Raw;
use ftps_conformance::{RunningServer, ServerSetup};
use ftps_proto::VirtualPath;
use ftps_proto::server::{Grants, Permission, Permissions};
use std::time::{Duration, Instant};

fn home(p: &str) -> VirtualPath {
    VirtualPath::root().resolve(p)
}

/// alice: everything in /alice; bob: read-only in /shared; drop: upload only, in /inbox.
fn three_users(s: &mut ServerSetup) {
    plain_allowed(s);
    for dir in ["alice", "shared", "inbox"] {
        std::fs::create_dir_all(s.root.join(dir)).unwrap();
    }
    std::fs::write(s.root.join("shared/report.csv"), b"a,b\n1,2\n").unwrap();
    std::fs::write(s.root.join("inbox/old.txt"), b"already here").unwrap();
    std::fs::write(s.root.join("top-secret.txt"), b"outside every home").unwrap();
    s.users = vec![
        (User::new("alice").with_home(home("/alice")), "pa".into()),
        (
            User::new("bob")
                .with_home(home("/shared"))
                .with_grants(Grants::new(Permissions::READ_ONLY)),
            "pb".into(),
        ),
        (
            User::new("drop")
                .with_home(home("/inbox"))
                .with_grants(Grants::new(Permissions::NONE.with(Permission::Upload))),
            "pd".into(),
        ),
    ];
}

fn login(r: &dyn RunningServer, user: &str, password: &str) -> Raw {
    let mut c = connect(r);
    assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331);
    assert_eq!(c.cmd(&format!("PASS {password}")).unwrap(), 230, "{user}");
    c
}

#[test]
fn each_user_has_a_home_and_its_permissions() {
    each("users-homes", three_users, |f, r, tag| {
        let root = f.root();
        // alice writes in her home, which is her `/`; nothing outside it is reachable.
        let mut a = login(r, "alice", "pa");
        assert_eq!(
            transfer(&mut a, "STOR /notes.txt", Some(b"mine")).0,
            226,
            "{tag}"
        );
        assert_eq!(
            std::fs::read(root.join("alice/notes.txt")).unwrap(),
            b"mine"
        );
        assert_eq!(
            transfer(&mut a, "RETR ../top-secret.txt", None).0,
            550,
            "{tag}"
        );
        assert_eq!(
            transfer(&mut a, "RETR /../shared/report.csv", None).0,
            550,
            "{tag}"
        );
        assert_eq!(a.cmd("MKD sub").unwrap(), 257, "{tag}");
        assert!(root.join("alice/sub").is_dir());
        assert_eq!(a.cmd("DELE notes.txt").unwrap(), 250, "{tag}");

        // bob reads in /shared; every write is 550, and nothing changes.
        let mut b = login(r, "bob", "pb");
        let (code, got) = transfer(&mut b, "RETR report.csv", None);
        assert_eq!((code, got.as_slice()), (226, &b"a,b\n1,2\n"[..]), "{tag}");
        let (code, listing) = transfer(&mut b, "NLST", None);
        assert_eq!(
            (code, listing.as_slice()),
            (226, &b"report.csv\r\n"[..]),
            "{tag}"
        );
        for cmd in [
            "DELE report.csv",
            "MKD x",
            "RMD x",
            "RNFR report.csv",
            "MFMT 20200101000000 report.csv",
        ] {
            assert_eq!(b.cmd(cmd).unwrap(), 550, "{tag}: bob {cmd}");
        }
        assert_eq!(transfer(&mut b, "STOR new.csv", Some(b"x")).0, 550, "{tag}");
        assert_eq!(
            transfer(&mut b, "APPE report.csv", Some(b"x")).0,
            550,
            "{tag}"
        );
        assert!(!root.join("shared/new.csv").exists());
        assert_eq!(
            std::fs::read(root.join("shared/report.csv")).unwrap(),
            b"a,b\n1,2\n"
        );

        // drop uploads new files; it can neither list, nor read, nor replace.
        let mut d = login(r, "drop", "pd");
        assert_eq!(
            transfer(&mut d, "STOR new.txt", Some(b"delivered")).0,
            226,
            "{tag}"
        );
        assert_eq!(
            std::fs::read(root.join("inbox/new.txt")).unwrap(),
            b"delivered"
        );
        for cmd in ["LIST", "NLST", "MLSD", "RETR new.txt", "STOR old.txt"] {
            let (code, got) = transfer(&mut d, cmd, Some(b"overwritten"));
            assert_eq!(code, 550, "{tag}: drop {cmd}");
            assert!(got.is_empty(), "{tag}: drop {cmd} received {got:?}");
        }
        for cmd in [
            "SIZE new.txt",
            "MDTM new.txt",
            "MLST new.txt",
            "STAT new.txt",
            "DELE new.txt",
        ] {
            assert_eq!(d.cmd(cmd).unwrap(), 550, "{tag}: drop {cmd}");
        }
        assert_eq!(
            std::fs::read(root.join("inbox/old.txt")).unwrap(),
            b"already here"
        );
        assert_eq!(
            std::fs::read(root.join("inbox/new.txt")).unwrap(),
            b"delivered"
        );
    });
}

/// A home that is a symbolic link's target, or holds one leading out: the user stays in
/// the home (the storage opens every path beneath it).
#[test]
fn a_symbolic_link_does_not_lead_out_of_a_home() {
    each("users-symlink", three_users, |f, r, tag| {
        let root = f.root();
        std::os::unix::fs::symlink("../shared", root.join("alice/to-shared")).unwrap();
        std::os::unix::fs::symlink("../top-secret.txt", root.join("alice/secret")).unwrap();
        let mut a = login(r, "alice", "pa");
        assert_eq!(transfer(&mut a, "RETR secret", None).0, 550, "{tag}");
        assert_eq!(
            transfer(&mut a, "RETR to-shared/report.csv", None).0,
            550,
            "{tag}"
        );
        assert_eq!(a.cmd("CWD to-shared").unwrap(), 550, "{tag}");
    });
}

/// Logins waiting on a slow service (100 ms each, an async wait) are not run one per
/// core: 50 at once end together, in about one wait (serially they take 5 s; one per
/// core, 2.5 s here).
#[test]
fn fifty_slow_async_logins_run_at_once() {
    each(
        "users-slow",
        |s| {
            plain_allowed(s);
            s.auth_wait = Some(Duration::from_millis(100));
        },
        |f, r, tag| {
            let (user, password) = f.credentials();
            // Connected and asked for the password first, so only the checks are timed.
            let mut sessions: Vec<Raw> = (0..50)
                .map(|_| {
                    let mut c = connect(r);
                    assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331);
                    c
                })
                .collect();
            let start = Instant::now();
            for c in &mut sessions {
                c.send_bytes(format!("PASS {password}\r\n").as_bytes())
                    .unwrap();
            }
            for c in &mut sessions {
                assert_eq!(c.reply().unwrap().code().get(), 230, "{tag}");
            }
            let took = start.elapsed();
            eprintln!("{tag}: 50 logins of 100 ms each in {took:?}");
            assert!(
                took < Duration::from_millis(1000),
                "{tag}: 50 slow logins took {took:?}: they ran one after another"
            );
        },
    );
}

/// An authenticator that does not answer within the timeout: 421 and the session closes
/// (not a failed login: the address is not locked out after it).
#[test]
fn an_authenticator_past_its_timeout_is_421_and_no_lockout() {
    each(
        "users-timeout",
        |s| {
            plain_allowed(s);
            s.auth_wait = Some(Duration::from_secs(5));
            s.auth_timeout = Some(Duration::from_millis(200));
            // One failure would lock the address out.
            s.login_lockout = Some((1, Duration::from_secs(60), Duration::from_secs(60)));
        },
        |f, r, tag| {
            let (user, password) = f.credentials();
            for round in 0..3 {
                let mut c = connect(r);
                assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331);
                let start = Instant::now();
                assert_eq!(
                    c.cmd(&format!("PASS {password}")).unwrap(),
                    421,
                    "{tag} round {round}"
                );
                assert!(start.elapsed() < Duration::from_secs(3), "{tag}");
                assert!(c.reply().is_err(), "{tag}: the session goes on after 421");
            }
        },
    );
}
