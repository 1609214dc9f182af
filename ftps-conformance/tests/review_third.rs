//! Issue 14's third review (an outside attack on session 7's change), each finding that
//! failed tested on every server runtime.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::hostile::{each, plain_allowed, plain_session, start_plain_upload};
use std::io::Write;
use std::time::Duration;

/// F1: ABOR right after an upload's last byte and end. The session may answer either
/// way — 226 (the upload was whole and is kept) or 426 (aborted in time, nothing kept) —
/// but what it says must be what happened: before the fix, an upload answered 426 had
/// replaced the file anyway (every time, on every runtime; QUIT the same), because the
/// abort came after the commit was ordered.
#[test]
fn f1_an_upload_answered_426_never_replaces_the_file() {
    each("third-f1", plain_allowed, |f, r, tag| {
        let victim = f.root().join("victim.txt");
        let mut c = plain_session(f, r);
        let (mut kept, mut aborted) = (0, 0);
        for run in 0..20 {
            std::fs::write(&victim, b"original").unwrap();
            let mut data = start_plain_upload(&mut c, "STOR victim.txt").unwrap();
            data.write_all(b"NEW CONTENT").unwrap();
            data.shutdown(std::net::Shutdown::Write).unwrap();
            c.send_bytes(b"ABOR\r\n").unwrap();
            let upload = c.reply().unwrap().code().get();
            let abor = c.reply().unwrap().code().get();
            drop(data);
            // Whatever the server does after its reply is done well within this.
            std::thread::sleep(Duration::from_millis(100));
            let content = std::fs::read(&victim).unwrap();
            match upload {
                226 => {
                    kept += 1;
                    assert_eq!(content, b"NEW CONTENT", "{tag} run {run}: 226, not kept");
                }
                426 => {
                    aborted += 1;
                    assert_eq!(content, b"original", "{tag} run {run}: 426, yet kept");
                }
                other => panic!("{tag} run {run}: upload answered {other}"),
            }
            assert!(
                matches!(abor, 225 | 226),
                "{tag} run {run}: ABOR answered {abor}"
            );
        }
        eprintln!("{tag}: {kept} kept (226), {aborted} aborted (426)");
    });
}
