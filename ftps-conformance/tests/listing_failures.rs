//! A storage that fails part-way through a directory: the listing ends with 451, never
//! with a 226 that passes a cut listing off as whole (a mirroring client would take the
//! entries past the cut for deleted), on every server runtime. The session goes on.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::hostile::{connect, each, plain_allowed, transfer};

#[test]
fn a_listing_that_fails_part_way_ends_with_451() {
    each(
        "listing-fails",
        |s| {
            plain_allowed(s);
            s.listing_fails_after = Some(5);
            std::fs::create_dir_all(s.root.join("many")).unwrap();
            for i in 0..20 {
                std::fs::write(s.root.join(format!("many/f{i:02}")), b"x").unwrap();
            }
            std::fs::create_dir_all(s.root.join("few")).unwrap();
            for i in 0..3 {
                std::fs::write(s.root.join(format!("few/g{i}")), b"x").unwrap();
            }
        },
        |f, r, tag| {
            let (user, password) = f.credentials();
            let mut c = connect(r);
            assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331, "{tag}");
            assert_eq!(c.cmd(&format!("PASS {password}")).unwrap(), 230, "{tag}");
            for cmd in ["NLST many", "LIST many", "MLSD many"] {
                let (code, body) = transfer(&mut c, cmd, None);
                assert_eq!(code, 451, "{tag} {cmd}");
                let lines = body
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .count();
                assert!(lines <= 5, "{tag} {cmd}: {lines} lines");
            }
            // STAT over the control connection: an error reply, not a short listing.
            assert_ne!(c.cmd("STAT many").unwrap() / 100, 2, "{tag} STAT");
            // A directory within the bound lists whole, on the same session.
            let (code, body) = transfer(&mut c, "NLST few", None);
            assert_eq!(code, 226, "{tag}");
            assert_eq!(String::from_utf8_lossy(&body).lines().count(), 3, "{tag}");
        },
    );
}
