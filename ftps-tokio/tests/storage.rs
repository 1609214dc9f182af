//! `LocalFs` confinement: nothing outside the root is read, listed, written or renamed
//! onto, whatever symbolic links inside the root point to.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_proto::VirtualPath;
use ftps_proto::server::StorageError;
use ftps_tokio::{LocalFs, Storage};
use tokio::io::AsyncWriteExt;

fn p(s: &str) -> VirtualPath {
    VirtualPath::root().resolve(s)
}

#[tokio::test]
async fn symlinks_out_of_the_root_are_refused() {
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
    std::os::unix::fs::symlink(root.join("inside.txt"), root.join("inside-link")).unwrap();
    std::os::unix::fs::symlink(base.join("nowhere"), root.join("dangling")).unwrap();
    let fs = LocalFs::new(&root).unwrap();
    let denied = Err(StorageError::PermissionDenied);

    assert_eq!(
        fs.stat("u", &p("escape/secret.txt")).await.map(|_| ()),
        denied
    );
    assert_eq!(fs.list("u", &p("escape")).await.map(|_| ()), denied);
    assert_eq!(
        fs.open_read("u", &p("secret-link"), 0).await.map(|_| ()),
        denied
    );
    assert_eq!(
        fs.open_read("u", &p("escape/secret.txt"), 0)
            .await
            .map(|_| ()),
        denied
    );
    assert_eq!(
        fs.open_write("u", &p("escape/new.txt"), 0, false, false)
            .await
            .map(|_| ()),
        denied
    );
    assert_eq!(
        fs.open_write("u", &p("dangling"), 0, false, false)
            .await
            .map(|_| ()),
        denied
    );
    assert_eq!(fs.make_dir("u", &p("escape/newdir")).await, denied);
    assert_eq!(fs.remove_file("u", &p("escape/secret.txt")).await, denied);
    assert_eq!(
        fs.rename("u", &p("inside.txt"), &p("escape/moved.txt"))
            .await,
        denied
    );
    assert_eq!(
        fs.rename("u", &p("inside.txt"), &p("secret-link")).await,
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
    let (mut r, size) = fs.open_read("u", &p("inside-link"), 0).await.unwrap();
    assert_eq!(size, 6);
    let mut s = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut r, &mut s)
        .await
        .unwrap();
    assert_eq!(s, "inside");
    assert_eq!(
        fs.stat("u", &p("../../outside/secret.txt"))
            .await
            .map(|_| ()),
        Err(StorageError::NotFound)
    );

    // Uploads are invisible until committed, and gone if discarded.
    let (mut up, path) = fs
        .open_write("u", &p("sub/new.bin"), 0, false, false)
        .await
        .unwrap();
    assert_eq!(path, p("sub/new.bin"));
    up.write_all(b"data").await.unwrap();
    assert!(!root.join("sub/new.bin").exists());
    let names: Vec<String> = fs
        .list("u", &p("sub"))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert!(names.is_empty(), "{names:?}");
    fs.commit(up, true).await.unwrap();
    assert_eq!(std::fs::read(root.join("sub/new.bin")).unwrap(), b"data");
    let (mut up, _) = fs
        .open_write("u", &p("sub/gone.bin"), 0, false, false)
        .await
        .unwrap();
    up.write_all(b"partial").await.unwrap();
    fs.commit(up, false).await.unwrap();
    assert_eq!(
        std::fs::read_dir(root.join("sub")).unwrap().count(),
        1,
        "no temporary file left"
    );

    // Append and resume start from the existing content.
    let (mut up, _) = fs
        .open_write("u", &p("sub/new.bin"), 0, true, false)
        .await
        .unwrap();
    up.write_all(b"+more").await.unwrap();
    fs.commit(up, true).await.unwrap();
    assert_eq!(
        std::fs::read(root.join("sub/new.bin")).unwrap(),
        b"data+more"
    );
    let (mut up, _) = fs
        .open_write("u", &p("sub/new.bin"), 2, false, false)
        .await
        .unwrap();
    up.write_all(b"TA").await.unwrap();
    fs.commit(up, true).await.unwrap();
    assert_eq!(std::fs::read(root.join("sub/new.bin")).unwrap(), b"daTA");
    let _ = std::fs::remove_dir_all(&base);
}
