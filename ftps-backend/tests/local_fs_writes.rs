//! `LocalFs` uploads, from the second security review: STOU is unnamed until committed
//! (finding H), temporary files are out of every FTP command's reach, in-place writes
//! (APPE, REST+STOR) refuse hard links and do not report a deleted file's append as a
//! success, and the STAT listing stops reading at its bound.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_backend::{BlockingStorage, LocalFs, STAT_ENTRIES};
use ftps_proto::VirtualPath;
use ftps_proto::server::StorageError;
use std::io::Write;
use std::path::{Path, PathBuf};

fn u() -> ftps_backend::User {
    ftps_backend::User::new("u")
}

fn p(s: &str) -> VirtualPath {
    VirtualPath::root().resolve(s)
}

/// A fresh directory `base` with an empty `base/root`.
fn base(name: &str) -> (PathBuf, PathBuf) {
    let base =
        std::env::temp_dir().join(format!("ftps-backend-writes-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let root = base.join("root");
    std::fs::create_dir_all(&root).unwrap();
    (base, root)
}

/// Every name in `dir` as the file system has it (UTF-8 or not).
fn raw_names(dir: &Path) -> Vec<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect();
    out.sort();
    out
}

/// The names `LocalFs` lists in `dir` (what LIST, NLST, MLSD and STAT show).
fn listed(fs: &LocalFs, dir: &str) -> Vec<String> {
    fs.list(&u(), &p(dir))
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect()
}

/// Both ways of writing an upload: unnamed files (`O_TMPFILE`, this machine's file
/// system has them) and the fallback for file systems without.
fn both(root: &Path) -> [(LocalFs, &'static str); 2] {
    [
        (LocalFs::new(root).unwrap(), "O_TMPFILE"),
        (
            LocalFs::new(root).unwrap().without_unnamed_files(),
            "fallback",
        ),
    ]
}

// Finding H: STOU created its random name at once and wrote in place under it, so the
// partial file was listed and retrievable during the upload, and a crash left it. Now
// the name is chosen (and announced) up front but the bytes go to an unnamed file that
// only commit links to it; a failed or aborted STOU leaves nothing.
#[test]
fn finding_h_stou_is_invisible_until_committed() {
    let (base, root) = base("stou");
    std::fs::create_dir_all(root.join("in")).unwrap();
    for (fs, how) in both(&root) {
        let (mut up, shown) = fs.open_write(&u(), &p("in"), 0, false, true).unwrap();
        let name = shown.file_name().unwrap().to_owned();
        assert_eq!(shown, p(&format!("in/{name}")), "{how}");
        up.write_all(b"partial").unwrap();
        up.flush().unwrap();
        assert!(
            listed(&fs, "in").is_empty(),
            "{how}: listed while uploading"
        );
        assert_eq!(
            fs.stat(&u(), &shown).map(|_| ()),
            Err(StorageError::NotFound),
            "{how}: SIZE/MDTM reach the upload"
        );
        assert_eq!(
            fs.open_read(&u(), &shown, 0).map(|_| ()),
            Err(StorageError::NotFound),
            "{how}: RETR reaches the upload"
        );
        assert!(!root.join("in").join(&name).exists(), "{how}");
        up.write_all(b"+rest").unwrap();
        fs.commit(up, true).unwrap();
        assert_eq!(
            std::fs::read(root.join("in").join(&name)).unwrap(),
            b"partial+rest",
            "{how}"
        );
        assert_eq!(listed(&fs, "in"), vec![name.clone()], "{how}");
        std::fs::remove_file(root.join("in").join(&name)).unwrap();

        // Aborted (dropped) or failed (commit without keep): nothing is left.
        let (mut up, _) = fs.open_write(&u(), &p("in"), 0, false, true).unwrap();
        up.write_all(b"partial").unwrap();
        drop(up);
        let (mut up, _) = fs.open_write(&u(), &p("in"), 0, false, true).unwrap();
        up.write_all(b"partial").unwrap();
        fs.commit(up, false).unwrap();
        assert!(raw_names(&root.join("in")).is_empty(), "{how}: left behind");
    }
    let _ = std::fs::remove_dir_all(&base);
}

// Finding H, the name announced in the 150 reply taken while the upload ran: the upload
// fails (451, a storage error of no other kind) and the file under the name stays.
#[test]
fn finding_h_stou_never_replaces_a_file_that_took_its_name() {
    let (base, root) = base("stou-taken");
    for (fs, how) in both(&root) {
        let (mut up, shown) = fs.open_write(&u(), &p("/"), 0, false, true).unwrap();
        let name = shown.file_name().unwrap().to_owned();
        up.write_all(b"from the upload").unwrap();
        std::fs::write(root.join(&name), b"someone else's").unwrap();
        let result = fs.commit(up, true);
        assert!(
            matches!(&result, Err(StorageError::Other(m)) if m.contains("taken")),
            "{how}: {result:?}"
        );
        assert_eq!(
            std::fs::read(root.join(&name)).unwrap(),
            b"someone else's",
            "{how}"
        );
        assert_eq!(raw_names(&root), vec![name.clone().into_bytes()], "{how}");
        std::fs::remove_file(root.join(&name)).unwrap();
    }
    let _ = std::fs::remove_dir_all(&base);
}

// The fallback for file systems without unnamed files used `.ftps-upload-<hex>` in the
// upload's directory: listed, and reachable by RETR, SIZE, DELE, RNFR. Now its name is not
// UTF-8, which no FTP command can produce and no listing shows.
#[test]
fn fallback_temporary_files_are_out_of_reach_of_ftp_commands() {
    let (base, root) = base("fallback");
    std::fs::write(root.join("old.txt"), b"old").unwrap();
    let fs = LocalFs::new(&root).unwrap().without_unnamed_files();
    let (mut up, _) = fs.open_write(&u(), &p("old.txt"), 0, false, false).unwrap();
    up.write_all(b"new").unwrap();
    let names = raw_names(&root);
    assert_eq!(names.len(), 2, "{names:?}");
    let temp = names.iter().find(|n| n.as_slice() != b"old.txt").unwrap();
    assert!(std::str::from_utf8(temp).is_err(), "{temp:?}");
    assert_eq!(listed(&fs, "/"), vec!["old.txt".to_owned()]);
    assert_eq!(
        fs.list_entries(&u(), &p("/")).unwrap().count(),
        1,
        "streamed listings skip it too"
    );
    fs.commit(up, true).unwrap();
    assert_eq!(raw_names(&root), vec![b"old.txt".to_vec()]);
    assert_eq!(std::fs::read(root.join("old.txt")).unwrap(), b"new");
    // Discarded: gone.
    let (mut up, _) = fs
        .open_write(&u(), &p("gone.txt"), 0, false, false)
        .unwrap();
    up.write_all(b"partial").unwrap();
    drop(up);
    assert_eq!(raw_names(&root), vec![b"old.txt".to_vec()]);
    let _ = std::fs::remove_dir_all(&base);
}

// In-place writes followed hard links that a local (non-FTP) user put in the tree: an
// APPE or REST+STOR to one changed a file outside the root. Now a file with more than one
// link is refused (550) for in-place writes; STOR replaces the name and leaves the other
// file alone.
#[test]
fn in_place_writes_refuse_hard_links() {
    let (base, root) = base("hardlink");
    let outside = base.join("outside.txt");
    std::fs::write(&outside, b"outside the root").unwrap();
    std::fs::hard_link(&outside, root.join("link.txt")).unwrap();
    let fs = LocalFs::new(&root).unwrap();
    let denied = Err(StorageError::PermissionDenied);
    assert_eq!(
        fs.open_write(&u(), &p("link.txt"), 0, true, false)
            .map(|_| ()),
        denied,
        "APPE"
    );
    assert_eq!(
        fs.open_write(&u(), &p("link.txt"), 3, false, false)
            .map(|_| ()),
        denied,
        "REST + STOR"
    );
    assert_eq!(std::fs::read(&outside).unwrap(), b"outside the root");
    // A link inside the tree is refused the same way (both names would change).
    std::fs::write(root.join("a.txt"), b"a").unwrap();
    std::fs::hard_link(root.join("a.txt"), root.join("b.txt")).unwrap();
    assert_eq!(
        fs.open_write(&u(), &p("b.txt"), 0, true, false).map(|_| ()),
        denied
    );
    // STOR gives the name a new file; the outside one stays as it was.
    let (mut up, _) = fs
        .open_write(&u(), &p("link.txt"), 0, false, false)
        .unwrap();
    up.write_all(b"replaced").unwrap();
    fs.commit(up, true).unwrap();
    assert_eq!(std::fs::read(root.join("link.txt")).unwrap(), b"replaced");
    assert_eq!(std::fs::read(&outside).unwrap(), b"outside the root");
    // A file with one link still appends in place.
    let (mut up, _) = fs.open_write(&u(), &p("link.txt"), 0, true, false).unwrap();
    up.write_all(b"+more").unwrap();
    fs.commit(up, true).unwrap();
    assert_eq!(
        std::fs::read(root.join("link.txt")).unwrap(),
        b"replaced+more"
    );
    let _ = std::fs::remove_dir_all(&base);
}

// DELE during an in-place APPE (or REST+STOR): the bytes went to an unlinked file and the
// upload still reported success (226). Now commit fails (a storage error the core answers
// with 451). A rename while it runs keeps the file, and the upload succeeds.
#[test]
fn in_place_write_to_a_file_deleted_meanwhile_fails_at_commit() {
    let (base, root) = base("deleted");
    let fs = LocalFs::new(&root).unwrap();
    for (offset, append, what) in [(0, true, "APPE"), (2, false, "REST + STOR")] {
        std::fs::write(root.join("log.txt"), b"base").unwrap();
        let (mut up, _) = fs
            .open_write(&u(), &p("log.txt"), offset, append, false)
            .unwrap();
        up.write_all(b"+lost").unwrap();
        fs.remove_file(&u(), &p("log.txt")).unwrap();
        let result = fs.commit(up, true);
        assert!(
            matches!(&result, Err(StorageError::Other(m)) if m.contains("deleted")),
            "{what}: {result:?}"
        );
        assert!(!root.join("log.txt").exists(), "{what}");
    }
    std::fs::write(root.join("log.txt"), b"base").unwrap();
    let (mut up, _) = fs.open_write(&u(), &p("log.txt"), 0, true, false).unwrap();
    up.write_all(b"+kept").unwrap();
    fs.rename(&u(), &p("log.txt"), &p("moved.txt")).unwrap();
    fs.commit(up, true).unwrap();
    assert_eq!(std::fs::read(root.join("moved.txt")).unwrap(), b"base+kept");
    let _ = std::fs::remove_dir_all(&base);
}

// `LocalFs::list` (what a STAT reply shows) read the whole directory and only then let
// the caller cut it to STAT_ENTRIES. Now it stops reading there.
#[test]
fn list_stops_at_the_stat_bound() {
    let (base, root) = base("list");
    for i in 0..STAT_ENTRIES + 50 {
        std::fs::File::create(root.join(format!("f{i:05}"))).unwrap();
    }
    let entries = listed(&LocalFs::new(&root).unwrap(), "/");
    assert_eq!(entries.len(), STAT_ENTRIES);
    assert!(entries.is_sorted(), "sorted by name");
    // A small directory: every entry, sorted, as before.
    std::fs::create_dir_all(root.join("small")).unwrap();
    for n in ["c", "a", "b"] {
        std::fs::write(root.join("small").join(n), n).unwrap();
    }
    assert_eq!(
        listed(&LocalFs::new(&root).unwrap(), "small"),
        ["a", "b", "c"]
    );
    let _ = std::fs::remove_dir_all(&base);
}
