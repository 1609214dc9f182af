//! One suite of storage operations for every storage back-end (`LocalFs`, the object
//! store on Garage, an application's own): what the server relies on, called directly,
//! each result checked. What a back-end's
//! [capabilities](BlockingStorage::capabilities) leave out is not asked of it. An async
//! [`Storage`] runs it through [`Blocked`].

use crate::Failure;
use ftps_backend::{BlockingStorage, Entries, Storage, Usage, User};
use ftps_proto::VirtualPath;
use ftps_proto::listing::EntryKind;
use ftps_proto::server::StorageError;
use std::io::{self, Read, Write};
use std::sync::Arc;

fn path(p: &str) -> VirtualPath {
    VirtualPath::root().resolve(p)
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), Failure> {
    if ok { Ok(()) } else { Err(what()) }
}

fn fail(what: &str) -> impl FnOnce(StorageError) -> Failure + '_ {
    move |e| format!("{what}: {e:?}")
}

/// Bytes that differ from one `seed` to another.
pub fn data(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 8) as u8
        })
        .collect()
}

/// Uploads `body` to `p` and commits it (`keep`); the path the storage chose.
pub fn put<S: BlockingStorage>(
    s: &S,
    user: &User,
    p: &str,
    body: &[u8],
) -> Result<VirtualPath, Failure> {
    let (mut upload, at) = s
        .open_write(user, &path(p), 0, false, false)
        .map_err(|e| format!("open_write {p}: {e:?}"))?;
    write_all(&mut upload, body)?;
    s.commit(upload, true)
        .map_err(|e| format!("commit {p}: {e:?}"))?;
    Ok(at)
}

/// The digest `tool` (`sha256sum`, `md5sum`) prints for `bytes`.
fn coreutils(tool: &str, bytes: &[u8]) -> Result<String, Failure> {
    let mut child = std::process::Command::new(tool)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("{tool}: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let body = bytes.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&body));
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{tool}: {e}"))?;
    let _ = feeder.join();
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned())
}

fn write_all<W: Write>(w: &mut W, body: &[u8]) -> Result<(), Failure> {
    // In pieces, as a data connection hands them over.
    for piece in body.chunks(64 * 1024 + 7) {
        w.write_all(piece).map_err(|e| format!("write: {e}"))?;
    }
    Ok(())
}

/// The bytes of `p` from `offset`, and the size the storage gave.
pub fn get<S: BlockingStorage>(
    s: &S,
    user: &User,
    p: &str,
    offset: u64,
) -> Result<(Vec<u8>, u64), Failure> {
    let (mut reader, size) = s
        .open_read(user, &path(p), offset)
        .map_err(|e| format!("open_read {p}@{offset}: {e:?}"))?;
    let mut out = Vec::new();
    reader
        .read_to_end(&mut out)
        .map_err(|e| format!("read {p}: {e}"))?;
    Ok((out, size))
}

fn names<S: BlockingStorage>(
    s: &S,
    user: &User,
    p: &str,
) -> Result<Vec<(String, EntryKind, u64)>, Failure> {
    let mut v: Vec<_> = s
        .list_entries(user, &path(p))
        .map_err(fail("list"))?
        .map(|m| m.map(|m| (m.name, m.kind, m.size)))
        .collect::<Result<_, _>>()
        .map_err(fail("list, part-way"))?;
    v.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(v)
}

/// Runs every operation against `storage` as `user` (whose home must exist and be
/// empty) and `other` (another user, another empty home). `entries` is how many files
/// the long listing holds (more than a page of the service: S3 pages by 1000).
pub fn run<S: BlockingStorage>(
    storage: &S,
    user: &User,
    other: &User,
    entries: usize,
) -> Result<(), Failure> {
    let s = storage;
    let can = s.capabilities();

    // The home's top is a directory, and empty.
    let top = s.stat(user, &VirtualPath::root()).map_err(fail("stat /"))?;
    check(top.kind == EntryKind::Directory, || {
        format!("stat / {top:?}")
    })?;
    check(names(s, user, "/")?.is_empty(), || {
        "the home is not empty".into()
    })?;

    // Directories.
    s.make_dir(user, &path("a")).map_err(fail("mkdir a"))?;
    check(
        s.make_dir(user, &path("a")) == Err(StorageError::AlreadyExists),
        || "mkdir a twice".into(),
    )?;
    check(s.make_dir(user, &path("x/y")).is_err(), || {
        "mkdir in a missing directory".into()
    })?;
    check(
        s.stat(user, &path("a")).map(|m| m.kind) == Ok(EntryKind::Directory),
        || "stat a".into(),
    )?;
    check(
        s.stat(user, &path("missing")) == Err(StorageError::NotFound),
        || "stat missing".into(),
    )?;

    // Uploads: small, larger than a multipart part, empty; each read back whole and
    // from offsets.
    let small = data(1, 200_003);
    let big = data(2, 20 * 1024 * 1024 + 5);
    put(s, user, "a/small.bin", &small)?;
    put(s, user, "a/big.bin", &big)?;
    put(s, user, "a/empty.bin", b"")?;
    let (bytes, size) = get(s, user, "a/small.bin", 0)?;
    check(bytes == small && size == small.len() as u64, || {
        "small read back".into()
    })?;
    let (bytes, _) = get(s, user, "a/big.bin", 0)?;
    check(bytes == big, || "big read back".into())?;
    let (bytes, _) = get(s, user, "a/big.bin", 12_345_678)?;
    check(bytes == big[12_345_678..], || {
        "big read from an offset".into()
    })?;
    let (bytes, size) = get(s, user, "a/empty.bin", 0)?;
    check(bytes.is_empty() && size == 0, || "empty read back".into())?;
    let (bytes, _) = get(s, user, "a/small.bin", small.len() as u64)?;
    check(bytes.is_empty(), || "a read from the end".into())?;
    // Past the end: refused, or opened with a size that shows it (the server refuses).
    let past = small.len() as u64 + 1;
    check(
        match s.open_read(user, &path("a/small.bin"), past) {
            Err(StorageError::InvalidOffset) => true,
            Ok((_, size)) => size < past,
            Err(_) => false,
        },
        || "a read past the end".into(),
    )?;
    check(s.open_read(user, &path("a"), 0).is_err(), || {
        "a directory read as a file".into()
    })?;
    check(
        s.open_read(user, &path("nope.bin"), 0).err() == Some(StorageError::NotFound),
        || "a missing file read".into(),
    )?;
    check(
        s.stat(user, &path("a/small.bin")).map(|m| (m.kind, m.size))
            == Ok((EntryKind::File, small.len() as u64)),
        || "stat a/small.bin".into(),
    )?;

    // HASH's digests, of the whole file and of a range, as coreutils computes them from
    // the same bytes.
    use ftps_proto::hash::HashAlgorithm as H;
    let range = (1_000u64, 5_000_000u64);
    for (algorithm, tool) in [(H::Sha256, "sha256sum"), (H::Md5, "md5sum")] {
        let whole = s
            .hash(user, &path("a/big.bin"), algorithm, None)
            .map_err(fail("hash"))?;
        check(
            whole.hex == coreutils(tool, &big)? && whole.bytes == big.len() as u64,
            || format!("{tool} of a/big.bin"),
        )?;
        let part = s
            .hash(user, &path("a/big.bin"), algorithm, Some(range))
            .map_err(fail("hash of a range"))?;
        let slice = &big[range.0 as usize..=range.1 as usize];
        check(part.hex == coreutils(tool, slice)?, || {
            format!("{tool} of a range of a/big.bin")
        })?;
    }
    check(
        s.hash(
            user,
            &path("a/small.bin"),
            H::Sha256,
            Some((0, small.len() as u64)),
        )
        .err()
            == Some(StorageError::InvalidOffset),
        || "a hash range past the end".into(),
    )?;

    // Replacing a file.
    let again = data(3, 1000);
    put(s, user, "a/small.bin", &again)?;
    check(get(s, user, "a/small.bin", 0)?.0 == again, || {
        "replaced".into()
    })?;

    // Nothing partial: an upload not kept, or dropped, leaves nothing.
    let (mut upload, _) = s
        .open_write(user, &path("a/partial.bin"), 0, false, false)
        .map_err(fail("open partial"))?;
    write_all(&mut upload, &data(4, 9 * 1024 * 1024))?;
    s.commit(upload, false).map_err(fail("discard"))?;
    let (mut dropped, _) = s
        .open_write(user, &path("a/dropped.bin"), 0, false, false)
        .map_err(fail("open dropped"))?;
    write_all(&mut dropped, &data(5, 100_000))?;
    drop(dropped);
    let listed = names(s, user, "a")?;
    check(
        !listed
            .iter()
            .any(|(n, ..)| n == "partial.bin" || n == "dropped.bin"),
        || format!("an upload not committed is visible: {listed:?}"),
    )?;
    check(
        s.stat(user, &path("a/partial.bin")) == Err(StorageError::NotFound),
        || "a discarded upload is visible".into(),
    )?;
    // An upload to a replaced file that fails leaves the old bytes.
    let (mut failed, _) = s
        .open_write(user, &path("a/small.bin"), 0, false, false)
        .map_err(fail("open over small"))?;
    write_all(&mut failed, b"half")?;
    s.commit(failed, false)
        .map_err(fail("discard over small"))?;
    check(get(s, user, "a/small.bin", 0)?.0 == again, || {
        "a discarded upload changed the file it was to replace".into()
    })?;

    // New names only (drop-box users): a taken name is refused; of two uploads of one
    // new name, one lands and the other does not replace it.
    check(
        s.open_write_new(user, &path("a/small.bin")).err() == Some(StorageError::AlreadyExists),
        || "open_write_new over a file".into(),
    )?;
    let first = data(6, 5000);
    let (mut u1, _) = s
        .open_write_new(user, &path("a/new.bin"))
        .map_err(fail("open_write_new"))?;
    let u2 = s.open_write_new(user, &path("a/new.bin"));
    write_all(&mut u1, &first)?;
    s.commit(u1, true).map_err(fail("commit new"))?;
    if let Ok((mut u2, _)) = u2 {
        write_all(&mut u2, b"second")?;
        check(
            s.commit(u2, true) == Err(StorageError::AlreadyExists),
            || "a second new upload replaced the first".into(),
        )?;
    }
    check(get(s, user, "a/new.bin", 0)?.0 == first, || {
        "the first new upload".into()
    })?;

    // Unique names (STOU).
    let (mut u1, p1) = s
        .open_write(user, &path("a"), 0, false, true)
        .map_err(fail("unique 1"))?;
    let (mut u2, p2) = s
        .open_write(user, &path("a"), 0, false, true)
        .map_err(fail("unique 2"))?;
    write_all(&mut u1, b"one")?;
    write_all(&mut u2, b"two")?;
    s.commit(u1, true).map_err(fail("commit unique 1"))?;
    s.commit(u2, true).map_err(fail("commit unique 2"))?;
    check(p1 != p2 && p1.parent() == path("a"), || {
        format!("unique names {p1} {p2}")
    })?;
    check(get(s, user, p1.as_str(), 0)?.0 == b"one", || {
        "unique 1 bytes".into()
    })?;
    check(get(s, user, p2.as_str(), 0)?.0 == b"two", || {
        "unique 2 bytes".into()
    })?;
    s.remove_file(user, &p1).map_err(fail("rm unique 1"))?;
    s.remove_file(user, &p2).map_err(fail("rm unique 2"))?;

    // What only some storages can do.
    if can.restart_upload {
        let (mut u, _) = s
            .open_write(user, &path("a/new.bin"), 5000, false, false)
            .map_err(fail("restart"))?;
        write_all(&mut u, b"tail")?;
        s.commit(u, true).map_err(fail("commit restart"))?;
        check(
            get(s, user, "a/new.bin", 4998)?.0 == [&first[4998..], b"tail"].concat(),
            || "restarted upload".into(),
        )?;
    }
    if can.append {
        let before = s
            .stat(user, &path("a/empty.bin"))
            .map_err(fail("stat"))?
            .size;
        let (mut u, _) = s
            .open_write(user, &path("a/empty.bin"), 0, true, false)
            .map_err(fail("append"))?;
        write_all(&mut u, b"more")?;
        s.commit(u, true).map_err(fail("commit append"))?;
        check(get(s, user, "a/empty.bin", before)?.0 == b"more", || {
            "append".into()
        })?;
    }
    if can.set_modified {
        let t = ftps_proto::Timestamp::from_unix(1_600_000_000).ok_or("a timestamp")?;
        s.set_modified(user, &path("a/new.bin"), t)
            .map_err(fail("set_modified"))?;
        check(
            s.stat(user, &path("a/new.bin"))
                .ok()
                .and_then(|m| m.modified)
                == Some(t),
            || "set_modified".into(),
        )?;
    }

    // Listings: names, kinds and sizes; a file listed alone; a long one, whole.
    s.make_dir(user, &path("a/sub"))
        .map_err(fail("mkdir a/sub"))?;
    let listed = names(s, user, "a")?;
    let want_small = ("small.bin".to_owned(), EntryKind::File, again.len() as u64);
    let want_sub = ("sub".to_owned(), EntryKind::Directory);
    check(listed.contains(&want_small), || {
        format!("listing a: {listed:?}")
    })?;
    check(
        listed.iter().any(|(n, k, _)| (n.clone(), *k) == want_sub),
        || format!("listing a: {listed:?}"),
    )?;
    check(
        names(s, user, "a/small.bin")? == vec![want_small.clone()],
        || "a file listed alone".into(),
    )?;
    check(s.list_entries(user, &path("nothere")).is_err(), || {
        "a missing directory listed".into()
    })?;
    s.make_dir(user, &path("long"))
        .map_err(fail("mkdir long"))?;
    for i in 0..entries {
        put(s, user, &format!("long/f{i:05}"), &[(i % 251) as u8])?;
    }
    let long = names(s, user, "long")?;
    check(long.len() == entries, || {
        format!("long listing: {} of {entries}", long.len())
    })?;
    check(
        long.iter().enumerate().all(|(i, (n, k, size))| {
            *n == format!("f{i:05}") && *k == EntryKind::File && *size == 1
        }),
        || "long listing entries".into(),
    )?;
    check(
        s.list(user, &path("long")).map(|v| v.len()).ok()
            == Some(entries.min(ftps_backend::STAT_ENTRIES)),
        || "list (bounded)".into(),
    )?;

    // Usage: every file of the home, in bytes and files.
    let usage = s.usage(user).map_err(fail("usage"))?;
    let files = 4 + entries as u64; // small, big, empty, new
    let mut bytes = (again.len() + big.len() + first.len() + entries) as u64;
    if can.append {
        bytes += 4;
    }
    if can.restart_upload {
        bytes += 4;
    }
    check(usage.files == files && usage.bytes == bytes, || {
        format!("usage {usage:?}, want {files} files, {bytes} bytes")
    })?;

    // Homes: the other user sees none of it, and its files are its own.
    check(names(s, other, "/")?.is_empty(), || {
        "another home shows files".into()
    })?;
    put(s, other, "mine.txt", b"other")?;
    check(
        s.stat(user, &path("mine.txt")) == Err(StorageError::NotFound),
        || "a file of another home is visible".into(),
    )?;

    // Renames: a file, to a new name and over another file.
    s.rename(user, &path("a/small.bin"), &path("a/sub/moved.bin"))
        .map_err(fail("rename"))?;
    check(
        s.stat(user, &path("a/small.bin")) == Err(StorageError::NotFound),
        || "renamed file still there".into(),
    )?;
    check(get(s, user, "a/sub/moved.bin", 0)?.0 == again, || {
        "renamed bytes".into()
    })?;
    s.rename(user, &path("a/sub/moved.bin"), &path("a/new.bin"))
        .map_err(fail("rename over"))?;
    check(get(s, user, "a/new.bin", 0)?.0 == again, || {
        "renamed over a file".into()
    })?;
    check(
        s.rename(user, &path("a/gone.bin"), &path("a/x.bin")) == Err(StorageError::NotFound),
        || "rename of a missing file".into(),
    )?;

    // Removal: a non-empty directory stays; files, then directories go.
    check(
        s.remove_dir(user, &path("a")) == Err(StorageError::DirectoryNotEmpty),
        || "rmdir of a non-empty directory".into(),
    )?;
    check(s.remove_file(user, &path("a")).is_err(), || {
        "rm of a directory".into()
    })?;
    check(s.remove_dir(user, &path("a/new.bin")).is_err(), || {
        "rmdir of a file".into()
    })?;
    check(
        s.remove_file(user, &path("a/none.bin")) == Err(StorageError::NotFound),
        || "rm of a missing file".into(),
    )?;
    for f in ["a/new.bin", "a/big.bin", "a/empty.bin"] {
        s.remove_file(user, &path(f))
            .map_err(|e| format!("rm {f}: {e:?}"))?;
    }
    s.remove_dir(user, &path("a/sub"))
        .map_err(fail("rmdir a/sub"))?;
    s.remove_dir(user, &path("a")).map_err(fail("rmdir a"))?;
    check(
        s.stat(user, &path("a")) == Err(StorageError::NotFound),
        || "a removed directory is there".into(),
    )?;
    let left = names(s, user, "/")?;
    check(left.len() == 1 && left[0].0 == "long", || {
        format!("left: {left:?}")
    })?;
    Ok(())
}

/// An async [`Storage`] called as a [`BlockingStorage`]: each call run to its end on the
/// calling thread, so that the suite (and any synchronous caller) can drive it.
pub struct Blocked<S>(pub Arc<S>);

/// A file of a [`Blocked`] storage, read through its storage's `read`.
pub struct BlockedReader<S: Storage> {
    storage: Arc<S>,
    reader: Option<S::Reader>,
}

/// An upload of a [`Blocked`] storage, written through its storage's `write`.
pub struct BlockedUpload<S: Storage> {
    storage: Arc<S>,
    upload: Option<S::Upload>,
}

impl<S: Storage> Read for BlockedReader<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let reader = self
            .reader
            .take()
            .ok_or_else(|| io::Error::other("read failed"))?;
        let chunk = smol::block_on(self.storage.read(reader, vec![0; buf.len()]));
        let n = chunk.result?;
        buf[..n].copy_from_slice(&chunk.buf[..n]);
        self.reader = Some(chunk.io);
        match chunk.then {
            Some(e) if n == 0 => Err(e),
            _ => Ok(n),
        }
    }
}

impl<S: Storage> BlockedUpload<S> {
    fn send(&mut self, bytes: &[u8], flush: bool) -> io::Result<()> {
        let upload = self
            .upload
            .take()
            .ok_or_else(|| io::Error::other("write failed"))?;
        let chunk = smol::block_on(
            self.storage
                .write(upload, bytes.to_vec(), bytes.len(), flush),
        );
        self.upload = Some(chunk.io);
        chunk.result.map(drop)
    }
}

impl<S: Storage> Write for BlockedUpload<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send(buf, false).map(|()| buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send(&[], true)
    }
}

impl<S: Storage> BlockingStorage for Blocked<S> {
    type Reader = BlockedReader<S>;
    type Upload = BlockedUpload<S>;

    fn capabilities(&self) -> ftps_proto::server::StorageCapabilities {
        self.0.capabilities()
    }
    fn stat(
        &self,
        user: &User,
        path: &VirtualPath,
    ) -> Result<ftps_proto::server::Metadata, StorageError> {
        smol::block_on(self.0.stat(user, path))
    }
    fn list(
        &self,
        user: &User,
        path: &VirtualPath,
    ) -> Result<Vec<ftps_proto::server::Metadata>, StorageError> {
        self.list_entries(user, path)?
            .take(ftps_backend::STAT_ENTRIES)
            .collect()
    }
    fn list_entries(&self, user: &User, path: &VirtualPath) -> Result<Entries, StorageError> {
        smol::block_on(self.0.list_entries(user, path))
    }
    fn make_dir(&self, user: &User, path: &VirtualPath) -> Result<(), StorageError> {
        smol::block_on(self.0.make_dir(user, path))
    }
    fn remove_dir(&self, user: &User, path: &VirtualPath) -> Result<(), StorageError> {
        smol::block_on(self.0.remove_dir(user, path))
    }
    fn remove_file(&self, user: &User, path: &VirtualPath) -> Result<(), StorageError> {
        smol::block_on(self.0.remove_file(user, path))
    }
    fn rename(
        &self,
        user: &User,
        from: &VirtualPath,
        to: &VirtualPath,
    ) -> Result<(), StorageError> {
        smol::block_on(self.0.rename(user, from, to))
    }
    fn set_modified(
        &self,
        user: &User,
        path: &VirtualPath,
        time: ftps_proto::Timestamp,
    ) -> Result<(), StorageError> {
        smol::block_on(self.0.set_modified(user, path, time))
    }
    fn open_read(
        &self,
        user: &User,
        path: &VirtualPath,
        offset: u64,
    ) -> Result<(Self::Reader, u64), StorageError> {
        let (reader, size) = smol::block_on(self.0.open_read(user, path, offset))?;
        let storage = self.0.clone();
        let reader = Some(reader);
        Ok((BlockedReader { storage, reader }, size))
    }
    fn open_write(
        &self,
        user: &User,
        path: &VirtualPath,
        offset: u64,
        append: bool,
        unique: bool,
    ) -> Result<(Self::Upload, VirtualPath), StorageError> {
        let opened = self.0.open_write(user, path, offset, append, unique);
        let (upload, path) = smol::block_on(opened)?;
        let (storage, upload) = (self.0.clone(), Some(upload));
        Ok((BlockedUpload { storage, upload }, path))
    }
    fn open_write_new(
        &self,
        user: &User,
        path: &VirtualPath,
    ) -> Result<(Self::Upload, VirtualPath), StorageError> {
        let (upload, path) = smol::block_on(self.0.open_write_new(user, path))?;
        let (storage, upload) = (self.0.clone(), Some(upload));
        Ok((BlockedUpload { storage, upload }, path))
    }
    fn commit(&self, mut upload: Self::Upload, keep: bool) -> Result<(), StorageError> {
        match upload.upload.take() {
            Some(u) => smol::block_on(self.0.commit(u, keep)),
            None => Err(StorageError::Other("the upload failed".into())),
        }
    }
    fn hash(
        &self,
        user: &User,
        path: &VirtualPath,
        algorithm: ftps_proto::hash::HashAlgorithm,
        range: Option<(u64, u64)>,
    ) -> Result<ftps_backend::hash::FileHash, StorageError> {
        smol::block_on(self.0.hash(user, path, algorithm, range))
    }
    fn usage(&self, user: &User) -> Result<Usage, StorageError> {
        smol::block_on(self.0.usage(user))
    }
}
