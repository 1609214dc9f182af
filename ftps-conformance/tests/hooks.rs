//! Issue 15 (event hooks): an application's `Hooks` are told, in order and with the right
//! user, of a login, an upload with its path and size (ok only once committed with 226, a
//! failed one as failed), a download, a directory made, a rename, a delete and a
//! directory removed, on every server runtime; a listing tells them nothing.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_backend::{Actor, Hooks, Transferred};
use ftps_conformance::hostile::{connect, each, plain_allowed, transfer};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every call, as a line: what, who, where from (the session's id checked apart).
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(u64, String)>>,
}

impl Recorder {
    fn note(&self, actor: &Actor, what: String) {
        assert_eq!(actor.peer.ip().to_string(), "127.0.0.1");
        let line = format!("{what} by {}", actor.user.name);
        self.seen.lock().unwrap().push((actor.session, line));
    }

    /// What was seen once `n` calls were made (within 10 s), and forgets it.
    fn take(&self, n: usize) -> Vec<(u64, String)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.seen.lock().unwrap().len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        // Anything more would come soon after.
        std::thread::sleep(Duration::from_millis(100));
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

fn transferred(kind: &str, t: &Transferred) -> String {
    match t.ok {
        true => format!("{kind} {} {} ok", t.path, t.bytes),
        false => format!("{kind} {} failed", t.path),
    }
}

impl Hooks for Recorder {
    fn login(&self, actor: &Actor) {
        self.note(actor, "login".into());
    }
    fn upload_finished(&self, actor: &Actor, upload: &Transferred) {
        self.note(actor, transferred("upload", upload));
    }
    fn download_finished(&self, actor: &Actor, download: &Transferred) {
        self.note(actor, transferred("download", download));
    }
    fn deleted(&self, actor: &Actor, path: &str) {
        self.note(actor, format!("delete {path}"));
    }
    fn renamed(&self, actor: &Actor, from: &str, to: &str) {
        self.note(actor, format!("rename {from} {to}"));
    }
    fn dir_made(&self, actor: &Actor, path: &str) {
        self.note(actor, format!("mkdir {path}"));
    }
    fn dir_removed(&self, actor: &Actor, path: &str) {
        self.note(actor, format!("rmdir {path}"));
    }
}

#[test]
fn hooks_see_what_a_user_did_in_order() {
    let recorder = Arc::new(Recorder::default());
    let hooks: Arc<dyn Hooks> = recorder.clone();
    each(
        "hooks",
        |s| {
            plain_allowed(s);
            s.auth_wait = Some(Duration::from_millis(1));
            // A "full disk" past 10,000 bytes, for an upload that fails.
            s.upload_quota = Some(10_000);
            s.hooks = Some(hooks.clone());
        },
        |f, r, tag| {
            let (user, password) = f.credentials();
            let mut c = connect(r);
            assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331, "{tag}");
            assert_eq!(c.cmd(&format!("PASS {password}")).unwrap(), 230, "{tag}");
            let data = vec![5u8; 3000];
            assert_eq!(transfer(&mut c, "STOR up.bin", Some(&data)).0, 226, "{tag}");
            let (code, got) = transfer(&mut c, "RETR up.bin", None);
            assert_eq!((code, got.len()), (226, 3000), "{tag}");
            assert_eq!(transfer(&mut c, "NLST", None).0, 226, "{tag}");
            let big = vec![6u8; 50_000];
            assert_ne!(transfer(&mut c, "STOR big.bin", Some(&big)).0, 226, "{tag}");
            assert_eq!(c.cmd("MKD d").unwrap(), 257, "{tag}");
            assert_eq!(c.cmd("RNFR up.bin").unwrap(), 350, "{tag}");
            assert_eq!(c.cmd("RNTO d/up.bin").unwrap(), 250, "{tag}");
            assert_eq!(c.cmd("DELE d/up.bin").unwrap(), 250, "{tag}");
            // A refused delete tells nothing.
            assert_eq!(c.cmd("DELE d/up.bin").unwrap(), 550, "{tag}");
            assert_eq!(c.cmd("RMD d").unwrap(), 250, "{tag}");
            let seen = recorder.take(8);
            let lines: Vec<&str> = seen.iter().map(|(_, l)| l.as_str()).collect();
            assert_eq!(
                lines,
                [
                    "login by alice",
                    "upload /up.bin 3000 ok by alice",
                    "download /up.bin 3000 ok by alice",
                    "upload /big.bin failed by alice",
                    "mkdir /d by alice",
                    "rename /up.bin /d/up.bin by alice",
                    "delete /d/up.bin by alice",
                    "rmdir /d by alice",
                ],
                "{tag}"
            );
            // One session, named the same in every call.
            assert!(
                seen.iter().all(|(id, _)| *id == seen[0].0 && *id > 0),
                "{tag}"
            );
        },
    );
}

/// A hook that blocks does not stall the sessions: they log in, transfer and quit while
/// it sleeps.
#[test]
fn a_slow_hook_does_not_stall_sessions() {
    struct Slow;
    impl Hooks for Slow {
        fn login(&self, _: &Actor) {
            std::thread::sleep(Duration::from_secs(2));
        }
    }
    each(
        "hooks-slow",
        |s| {
            plain_allowed(s);
            s.auth_wait = Some(Duration::from_millis(1));
            s.hooks = Some(Arc::new(Slow));
        },
        |f, r, tag| {
            let (user, password) = f.credentials();
            let started = Instant::now();
            for _ in 0..3 {
                let mut c = connect(r);
                assert_eq!(c.cmd(&format!("USER {user}")).unwrap(), 331, "{tag}");
                assert_eq!(c.cmd(&format!("PASS {password}")).unwrap(), 230, "{tag}");
                assert_eq!(transfer(&mut c, "NLST", None).0, 226, "{tag}");
            }
            assert!(
                started.elapsed() < Duration::from_millis(1500),
                "{tag}: {:?}",
                started.elapsed()
            );
        },
    );
}
