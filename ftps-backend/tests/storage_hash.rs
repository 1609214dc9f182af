//! `Storage::hash`'s default over `LocalFs`: whole files and ranges match digests computed
//! here from the same bytes; ranges not within the file, directories and missing files
//! are refused; a symbolic link out of the root is not followed.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_backend::hash::Hasher;
use ftps_backend::{BlockingStorage, LocalFs};
use ftps_proto::VirtualPath;
use ftps_proto::hash::HashAlgorithm;
use ftps_proto::server::StorageError;

fn u() -> ftps_backend::User {
    ftps_backend::User::new("u")
}

fn p(s: &str) -> VirtualPath {
    VirtualPath::root().resolve(s)
}

fn digest(a: HashAlgorithm, bytes: &[u8]) -> String {
    let mut h = Hasher::new(a);
    h.update(bytes);
    h.finish_hex()
}

#[test]
fn whole_files_and_ranges() {
    let base = std::env::temp_dir().join(format!("ftps-hash-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let root = base.join("root");
    std::fs::create_dir_all(root.join("dir")).unwrap();
    // Larger than a chunk, so the reads are cut in several places.
    let data: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("big.bin"), &data).unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    std::fs::write(base.join("outside"), b"secret").unwrap();
    std::os::unix::fs::symlink(base.join("outside"), root.join("escape")).unwrap();
    let fs = LocalFs::new(&root).unwrap();

    for a in HashAlgorithm::ALL {
        let h = fs.hash(&u(), &p("big.bin"), a, None).unwrap();
        assert_eq!(
            (h.hex, h.bytes),
            (digest(a, &data), data.len() as u64),
            "{a}"
        );
    }
    for (start, end) in [(0, 0), (1, 262_144), (262_143, 599_999), (599_999, 599_999)] {
        let h = fs
            .hash(
                &u(),
                &p("big.bin"),
                HashAlgorithm::Sha256,
                Some((start, end)),
            )
            .unwrap();
        let want = &data[start as usize..=end as usize];
        assert_eq!(
            (h.hex, h.bytes),
            (digest(HashAlgorithm::Sha256, want), want.len() as u64)
        );
    }
    let empty = fs
        .hash(&u(), &p("empty"), HashAlgorithm::Md5, None)
        .unwrap();
    assert_eq!(empty.hex, "d41d8cd98f00b204e9800998ecf8427e");
    let invalid = Err(StorageError::InvalidOffset);
    let range = |s, e| fs.hash(&u(), &p("big.bin"), HashAlgorithm::Md5, Some((s, e)));
    assert_eq!(range(0, 600_000).map(|_| ()), invalid);
    assert_eq!(range(700_000, 800_000).map(|_| ()), invalid);
    assert_eq!(range(5, 4).map(|_| ()), invalid);
    let whole = |path: &str| {
        fs.hash(&u(), &p(path), HashAlgorithm::Md5, None)
            .map(|_| ())
    };
    // 550, whatever the storage calls it (LocalFs: not a regular file).
    assert!(
        matches!(
            whole("dir"),
            Err(StorageError::IsADirectory
                | StorageError::NotFound
                | StorageError::PermissionDenied)
        ),
        "{:?}",
        whole("dir")
    );
    assert_eq!(whole("nope"), Err(StorageError::NotFound));
    assert_eq!(whole("escape"), Err(StorageError::PermissionDenied));
    let _ = std::fs::remove_dir_all(&base);
}
