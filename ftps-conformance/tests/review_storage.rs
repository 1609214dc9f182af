//! The hostile suite, storage findings of the second review: one test per finding, named
//! after it, over real sockets against every runtime's server. `LocalFs`'s own tests of
//! the same findings are in `ftps-backend/tests/local_fs_writes.rs`.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::hostile::{
    each, end_plain_upload, logged_in_with, plain_allowed, plain_session, start_plain_upload,
    stray_files, transfer,
};
use ftps_conformance::raw::Raw;
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// The name STOU announced in its 1xx reply (RFC 1123 §4.1.2.9: the reply that precedes
/// the transfer names the file), as a path.
fn announced(reply: &ftps_proto::Reply) -> String {
    let line = reply.first_line();
    let start = line
        .find("/ftps-")
        .unwrap_or_else(|| panic!("no name in {line:?}"));
    line[start..].trim_end_matches('.').to_owned()
}

/// STOU on a fresh plain passive data connection: the connection and the announced path.
fn start_plain_stou(c: &mut Raw) -> (TcpStream, String) {
    c.send_bytes(b"EPSV\r\n").unwrap();
    let port = ftps_proto::address::parse_epsv_reply(c.reply().unwrap().first_line()).unwrap();
    let data = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.send_bytes(b"STOU\r\n").unwrap();
    let first = c.any_reply().unwrap();
    assert!(first.code().is_preliminary(), "{}", first.first_line());
    (data, announced(&first))
}

/// Waits (at most 5 s) until `root` holds nothing: an aborted upload is dropped by the
/// server's data task, which may finish just after the reply went out.
fn empty_soon(root: &Path) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = stray_files(root, &[]);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// Finding H: STOU created its random name at once and wrote in place under it, so another
// session saw the partial file (LIST, NLST, MLSD, STAT, SIZE) and could RETR it during the
// upload, and a crash left it. Now STOU writes an unnamed file, like STOR, linked to the
// announced name only when the upload completes; an aborted STOU leaves nothing.
#[test]
fn finding_h_stou_is_invisible_until_complete() {
    each("stou-unnamed", plain_allowed, |f, r, tag| {
        let mut c = plain_session(f, r);
        let (mut data, path) = start_plain_stou(&mut c);
        let name = path.trim_start_matches('/').to_owned();
        let first: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        data.write_all(&first).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let mut other = plain_session(f, r);
        for command in ["NLST", "LIST -a", "MLSD"] {
            let (code, listing) = transfer(&mut other, command, None);
            assert_eq!(code, 226, "{tag}: {command}");
            assert!(
                !String::from_utf8_lossy(&listing).contains(&name),
                "{tag}: {command} lists the STOU in progress"
            );
        }
        other.send_bytes(b"STAT /\r\n").unwrap();
        let stat = other.reply().unwrap();
        assert_eq!(stat.code().get(), 213, "{tag}");
        assert!(!stat.text().contains(&name), "{tag}: STAT shows it");
        assert_eq!(other.cmd(&format!("SIZE {path}")).unwrap(), 550, "{tag}");
        assert_eq!(other.cmd(&format!("MDTM {path}")).unwrap(), 550, "{tag}");
        let (code, got) = transfer(&mut other, &format!("RETR {path}"), None);
        assert_eq!(
            (code, got.len()),
            (550, 0),
            "{tag}: RETR of the STOU in progress"
        );
        assert_eq!(stray_files(&f.root(), &[]), Vec::<String>::new(), "{tag}");

        // Complete: 226, and the file is there under the announced name, whole.
        assert_eq!(end_plain_upload(&mut c, data, b"end"), 226, "{tag}");
        let mut expected = first.clone();
        expected.extend_from_slice(b"end");
        assert!(
            std::fs::read(f.root().join(&name)).unwrap() == expected,
            "{tag}: content"
        );
        assert_eq!(other.cmd(&format!("SIZE {path}")).unwrap(), 213, "{tag}");
        assert_eq!(
            stray_files(&f.root(), &[&name]),
            Vec::<String>::new(),
            "{tag}"
        );
        std::fs::remove_file(f.root().join(&name)).unwrap();

        // ABOR mid-upload: 426, then 226 for the ABOR; nothing left.
        let (mut data, _) = start_plain_stou(&mut c);
        data.write_all(&first).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        c.send_bytes(b"ABOR\r\n").unwrap();
        assert_eq!(c.reply().unwrap().code().get(), 426, "{tag}");
        assert_eq!(c.reply().unwrap().code().get(), 226, "{tag}");
        drop(data);
        assert_eq!(
            empty_soon(&f.root()),
            Vec::<String>::new(),
            "{tag}: after ABOR"
        );

        // The client goes away mid-upload (control and data connection closed).
        let mut gone = plain_session(f, r);
        let (mut data, _) = start_plain_stou(&mut gone);
        data.write_all(&first).unwrap();
        drop(gone);
        std::thread::sleep(Duration::from_millis(100));
        drop(data);
        assert_eq!(
            empty_soon(&f.root()),
            Vec::<String>::new(),
            "{tag}: after the client left"
        );
        assert_eq!(c.cmd("NOOP").unwrap(), 200, "{tag}");
    });
}

// Finding H over TLS: a STOU whose data connection ends without close_notify is a 426 (a
// truncation cannot be told from the end of the file), and is discarded: no file under the
// announced name, nor any other.
#[test]
fn finding_h_a_truncated_tls_stou_leaves_nothing() {
    each("stou-tls", plain_allowed, |f, r, tag| {
        let (mut c, tls) = logged_in_with(f, r);
        c.send_bytes(b"EPSV\r\n").unwrap();
        let port = ftps_proto::address::parse_epsv_reply(c.reply().unwrap().first_line()).unwrap();
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.send_bytes(b"STOU\r\n").unwrap();
        let first = c.any_reply().unwrap();
        assert!(
            first.code().is_preliminary(),
            "{tag}: {}",
            first.first_line()
        );
        let path = announced(&first);
        let mut conn = rustls::ClientConnection::new(tls, "localhost".try_into().unwrap()).unwrap();
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).unwrap();
        }
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        stream.write_all(&[5u8; 100_000]).unwrap();
        stream.flush().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let mut other = plain_session(f, r);
        assert_eq!(other.cmd(&format!("SIZE {path}")).unwrap(), 550, "{tag}");
        // Closed without close_notify.
        let tcp = stream.into_parts().1;
        tcp.shutdown(std::net::Shutdown::Both).unwrap();
        drop(tcp);
        assert_eq!(c.reply().unwrap().code().get(), 426, "{tag}");
        assert_eq!(empty_soon(&f.root()), Vec::<String>::new(), "{tag}");
    });
}

// DELE during an in-place APPE: the bytes went to the unlinked file and the APPE still
// got 226. Now the upload fails (451) when it ends, since no name holds what arrived; an
// APPE to a file renamed meanwhile still lands (under the new name).
#[test]
fn dele_during_an_append_is_not_reported_as_success() {
    each("appe-dele", plain_allowed, |f, r, tag| {
        std::fs::write(f.root().join("log.bin"), b"base").unwrap();
        let mut c = plain_session(f, r);
        let mut other = plain_session(f, r);
        let mut data = start_plain_upload(&mut c, "APPE log.bin").unwrap();
        data.write_all(b"+lost").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(other.cmd("DELE log.bin").unwrap(), 250, "{tag}");
        assert_eq!(end_plain_upload(&mut c, data, b"+more"), 451, "{tag}");
        assert_eq!(stray_files(&f.root(), &[]), Vec::<String>::new(), "{tag}");

        std::fs::write(f.root().join("log.bin"), b"base").unwrap();
        let mut data = start_plain_upload(&mut c, "APPE log.bin").unwrap();
        data.write_all(b"+kept").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(other.cmd("RNFR log.bin").unwrap(), 350, "{tag}");
        assert_eq!(other.cmd("RNTO moved.bin").unwrap(), 250, "{tag}");
        assert_eq!(end_plain_upload(&mut c, data, b"+more"), 226, "{tag}");
        assert_eq!(
            std::fs::read(f.root().join("moved.bin")).unwrap(),
            b"base+kept+more",
            "{tag}"
        );
    });
}
