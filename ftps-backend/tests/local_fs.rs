//! `LocalFs` confinement: nothing outside the root is read, listed, written or renamed
//! onto, whatever symbolic links inside the root point to.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_backend::{BlockingStorage, LocalFs};
use ftps_proto::VirtualPath;
use ftps_proto::server::StorageError;
use std::io::{Read, Write};

fn u() -> ftps_backend::User {
    ftps_backend::User::new("u")
}

fn p(s: &str) -> VirtualPath {
    VirtualPath::root().resolve(s)
}

#[test]
fn symlinks_out_of_the_root_are_refused() {
    let base = std::env::temp_dir().join(format!("ftps-storage-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let root = base.join("root");
    let outside = base.join("outside");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "secret").unwrap();
    std::fs::write(root.join("inside.txt"), "inside").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("escape")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("secret-link")).unwrap();
    std::os::unix::fs::symlink("inside.txt", root.join("inside-link")).unwrap();
    std::fs::create_dir_all(root.join("other")).unwrap();
    std::os::unix::fs::symlink("../inside.txt", root.join("other/up-link")).unwrap();
    // Absolute, even though it points inside: the served tree is not the host's.
    std::os::unix::fs::symlink(root.join("inside.txt"), root.join("absolute-link")).unwrap();
    std::os::unix::fs::symlink(base.join("nowhere"), root.join("dangling")).unwrap();
    let fs = LocalFs::new(&root).unwrap();
    let denied = Err(StorageError::PermissionDenied);

    assert_eq!(fs.stat(&u(), &p("escape/secret.txt")).map(|_| ()), denied);
    assert_eq!(fs.list(&u(), &p("escape")).map(|_| ()), denied);
    assert_eq!(fs.open_read(&u(), &p("secret-link"), 0).map(|_| ()), denied);
    assert_eq!(
        fs.open_read(&u(), &p("escape/secret.txt"), 0).map(|_| ()),
        denied
    );
    assert_eq!(
        fs.open_write(&u(), &p("escape/new.txt"), 0, false, false)
            .map(|_| ()),
        denied
    );
    assert_eq!(
        fs.open_write(&u(), &p("dangling"), 0, false, false)
            .map(|_| ()),
        denied
    );
    assert_eq!(fs.make_dir(&u(), &p("escape/newdir")), denied);
    assert_eq!(fs.remove_file(&u(), &p("escape/secret.txt")), denied);
    assert_eq!(
        fs.rename(&u(), &p("inside.txt"), &p("escape/moved.txt")),
        denied
    );
    assert_eq!(
        fs.rename(&u(), &p("inside.txt"), &p("secret-link")),
        denied,
        "RNTO onto a symlink"
    );
    assert!(
        outside.join("secret.txt").is_file()
            && !outside.join("new.txt").exists()
            && !outside.join("moved.txt").exists()
    );
    assert_eq!(
        std::fs::read_to_string(outside.join("secret.txt")).unwrap(),
        "secret"
    );

    // Links that stay inside the root work; `..` cannot leave it (the core clamps it).
    let (mut r, size) = fs.open_read(&u(), &p("inside-link"), 0).unwrap();
    assert_eq!(size, 6);
    let mut s = String::new();
    r.read_to_string(&mut s).unwrap();
    assert_eq!(s, "inside");
    assert_eq!(fs.open_read(&u(), &p("other/up-link"), 0).unwrap().1, 6);
    assert_eq!(
        fs.open_read(&u(), &p("absolute-link"), 0).map(|_| ()),
        denied
    );
    assert_eq!(
        fs.stat(&u(), &p("../../outside/secret.txt")).map(|_| ()),
        Err(StorageError::NotFound)
    );

    // Uploads are invisible until committed, and gone if discarded.
    let (mut up, path) = fs
        .open_write(&u(), &p("sub/new.bin"), 0, false, false)
        .unwrap();
    assert_eq!(path, p("sub/new.bin"));
    up.write_all(b"data").unwrap();
    assert!(!root.join("sub/new.bin").exists());
    let names: Vec<String> = fs
        .list(&u(), &p("sub"))
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert!(names.is_empty(), "{names:?}");
    fs.commit(up, true).unwrap();
    assert_eq!(std::fs::read(root.join("sub/new.bin")).unwrap(), b"data");
    let (mut up, _) = fs
        .open_write(&u(), &p("sub/gone.bin"), 0, false, false)
        .unwrap();
    up.write_all(b"partial").unwrap();
    fs.commit(up, false).unwrap();
    assert_eq!(
        std::fs::read_dir(root.join("sub")).unwrap().count(),
        1,
        "no temporary file left"
    );

    // An upload dropped without commit (an aborted transfer) is removed too.
    let (mut up, _) = fs
        .open_write(&u(), &p("sub/dropped.bin"), 0, false, false)
        .unwrap();
    up.write_all(b"partial").unwrap();
    drop(up);
    assert_eq!(std::fs::read_dir(root.join("sub")).unwrap().count(), 1);

    // Append and resume start from the existing content.
    let (mut up, _) = fs
        .open_write(&u(), &p("sub/new.bin"), 0, true, false)
        .unwrap();
    up.write_all(b"+more").unwrap();
    fs.commit(up, true).unwrap();
    assert_eq!(
        std::fs::read(root.join("sub/new.bin")).unwrap(),
        b"data+more"
    );
    let (mut up, _) = fs
        .open_write(&u(), &p("sub/new.bin"), 2, false, false)
        .unwrap();
    up.write_all(b"TA").unwrap();
    fs.commit(up, true).unwrap();
    assert_eq!(std::fs::read(root.join("sub/new.bin")).unwrap(), b"daTA");
    let _ = std::fs::remove_dir_all(&base);
}
