//! [`BlockingStorage`]: storage whose calls block (a file system, a synchronous client),
//! as the server runs it on its runtime's blocking pool; and [`fill`] and [`write_all`],
//! its reads and writes as chunks.

use crate::hash::{FileHash, hash_reader};
use crate::listing::Entries;
use crate::quota::Usage;
use crate::storage::Chunk;
use crate::user::User;
use ftps_proto::hash::HashAlgorithm;
use ftps_proto::listing::EntryKind;
use ftps_proto::server::{Metadata, StorageCapabilities, StorageError};
use ftps_proto::{Timestamp, VirtualPath};
use std::io::{self, Read, Write};

/// Where files live, for storage whose calls block (a file system; a synchronous
/// client): the server runs each call on its runtime's blocking pool (`ftps_async::OnPool`),
/// so that it never stalls a session's task. Storage that does its IO asynchronously
/// implements [`Storage`](crate::Storage) instead.
///
/// Every path is a [`VirtualPath`] already resolved inside the user's
/// root by the protocol core, and relative to the user's [`home`](User::home): an
/// implementation must serve `path` from within the home and refuse what leaves the home
/// by a symbolic link. `user` is the logged-in user, as the authenticator made it; the
/// protocol core has already checked its permissions.
pub trait BlockingStorage: Send + Sync + 'static {
    /// A file opened for reading.
    type Reader: std::io::Read + Send + 'static;
    /// A file opened for writing, published by [`commit`](Self::commit). Dropping one
    /// without committing it must discard it (an aborted transfer does that).
    type Upload: std::io::Write + Send + 'static;

    /// What this storage can do beyond whole-file reads and writes; the server refuses
    /// the rest before calling it, and FEAT offers only what it can. The default: all of
    /// it (a file system). A storage that answers `false` for something is not called
    /// for it: `open_write` gets no `offset` > 0 without `restart_upload`, no `append`
    /// without `append`; `set_modified` is not called without `set_modified`.
    fn capabilities(&self) -> StorageCapabilities {
        StorageCapabilities::all()
    }

    /// Reads `reader`'s next chunk into `buf`, as [`fill`] does, on the caller's thread,
    /// if it can be done without waiting for a device: the server calls this on the
    /// session's task before it sends a chunk to the pool, so a file already in memory is
    /// read where its bytes are then encrypted and sent (on the tokio server, reading on
    /// the pool put every chunk in another core's cache: the copy into rustls and the
    /// context switches cost more than the read). `Err` gives back the reader and the
    /// buffer with what was read so far (bytes `..filled`): the pool reads the rest.
    ///
    /// The default reads nothing here. [`LocalFs`](crate::LocalFs) reads what Linux has in
    /// its page cache (`preadv2` with `RWF_NOWAIT`) and files on tmpfs or ramfs, which are
    /// in memory unless swapped out (see [`LocalFile`](crate::LocalFile)). The server yields
    /// to the runtime after each chunk read here, so a download whose socket never fills
    /// does not hold a runtime thread to itself.
    fn read_now(
        &self,
        reader: Self::Reader,
        buf: Vec<u8>,
    ) -> Result<Chunk<Self::Reader>, ReadLater<Self::Reader>> {
        Err(ReadLater {
            reader,
            buf,
            filled: 0,
        })
    }
    /// Facts about a path.
    fn stat(&self, user: &User, path: &VirtualPath) -> Result<Metadata, StorageError>;
    /// A directory's entries, or the one entry of a file (STAT over the control
    /// connection; the session caps how many it shows).
    fn list(&self, user: &User, path: &VirtualPath) -> Result<Vec<Metadata>, StorageError>;
    /// The same entries as they are read, for a listing streamed to a data connection.
    /// The default collects [`list`](Self::list); a storage that can should stream them,
    /// so that listing a directory costs bounded memory whatever its size (`LocalFs`
    /// does).
    fn list_entries(&self, user: &User, path: &VirtualPath) -> Result<Entries, StorageError> {
        Ok(Box::new(self.list(user, path)?.into_iter().map(Ok)))
    }
    /// Makes a directory.
    fn make_dir(&self, user: &User, path: &VirtualPath) -> Result<(), StorageError>;
    /// Removes an empty directory.
    fn remove_dir(&self, user: &User, path: &VirtualPath) -> Result<(), StorageError>;
    /// Removes a file.
    fn remove_file(&self, user: &User, path: &VirtualPath) -> Result<(), StorageError>;
    /// Renames.
    fn rename(&self, user: &User, from: &VirtualPath, to: &VirtualPath)
    -> Result<(), StorageError>;
    /// Sets a file's modification time.
    fn set_modified(
        &self,
        user: &User,
        path: &VirtualPath,
        time: Timestamp,
    ) -> Result<(), StorageError>;
    /// Opens a file to read from `offset`; returns it and its size.
    fn open_read(
        &self,
        user: &User,
        path: &VirtualPath,
        offset: u64,
    ) -> Result<(Self::Reader, u64), StorageError>;
    /// Opens a file to write (at `offset`, at the end for `append`, or under a new unique
    /// name in the directory `path` for `unique`); returns it and the final path.
    fn open_write(
        &self,
        user: &User,
        path: &VirtualPath,
        offset: u64,
        append: bool,
        unique: bool,
    ) -> Result<(Self::Upload, VirtualPath), StorageError>;
    /// Opens a new file to write at `path` for a user who may only add files (anonymous
    /// uploads, `ServerConfig::anonymous_upload`): a name that exists is refused
    /// ([`StorageError::AlreadyExists`]), and [`commit`](Self::commit) must not replace a
    /// file that appeared under the name while the upload ran (it fails with
    /// `AlreadyExists` and discards the upload instead). Returns the upload and its path.
    ///
    /// The default refuses every such upload ([`StorageError::PermissionDenied`]): a
    /// storage that cannot create a file without the risk of replacing one never lets
    /// such users write at all.
    fn open_write_new(
        &self,
        user: &User,
        path: &VirtualPath,
    ) -> Result<(Self::Upload, VirtualPath), StorageError> {
        let _ = (user, path);
        Err(StorageError::PermissionDenied)
    }
    /// Publishes a finished upload, or removes it if `keep` is false.
    fn commit(&self, upload: Self::Upload, keep: bool) -> Result<(), StorageError>;

    /// The hash of a file (HASH, draft-bryan-ftpext-hash-02 §3): of the bytes
    /// `start..=end` for `range` (RANG's, both inclusive), else of the whole file. A range
    /// not within the file is [`StorageError::InvalidOffset`].
    ///
    /// The default reads the file through [`open_read`](Self::open_read) in 256 KiB
    /// chunks up to the range's end ([`hash_reader`](crate::hash::hash_reader)), so every
    /// storage has it; one that keeps checksums may answer from them instead.
    fn hash(
        &self,
        user: &User,
        path: &VirtualPath,
        algorithm: HashAlgorithm,
        range: Option<(u64, u64)>,
    ) -> Result<FileHash, StorageError> {
        let start = range.map_or(0, |(start, _)| start);
        let (reader, size) = self.open_read(user, path, start)?;
        let limit = match range {
            Some((start, end)) if start > end || end >= size => {
                return Err(StorageError::InvalidOffset);
            }
            Some((start, end)) => Some(end - start + 1),
            None => None,
        };
        hash_reader(reader, algorithm, limit)
    }

    /// What `user`'s home holds, for its [`Quota`](crate::Quota): asked once per user,
    /// when a quota first needs it; the server keeps the count from then on. The default
    /// walks the home ([`list_entries`](Self::list_entries), symbolic links not followed);
    /// a storage that keeps the figures should answer from them.
    fn usage(&self, user: &User) -> Result<Usage, StorageError> {
        let mut usage = Usage::default();
        let mut dirs = vec![VirtualPath::root()];
        while let Some(dir) = dirs.pop() {
            for m in self.list_entries(user, &dir)? {
                let m = m?;
                match m.kind {
                    EntryKind::File => {
                        usage.bytes = usage.bytes.saturating_add(m.size);
                        usage.files += 1;
                    }
                    EntryKind::Directory => dirs.push(dir.resolve(&m.name)),
                    _ => {}
                }
            }
        }
        Ok(usage)
    }
}

/// Reads from `reader` until `buf` (its whole length; an empty one is grown to its
/// capacity, at least one byte) is full or the reader ends: a result shorter than `buf`
/// means the end was reached, so a small file takes one call, not two. A read that fails
/// after some bytes gives those bytes, and the error in [`Chunk::then`].
pub fn fill<R: Read>(reader: R, buf: Vec<u8>) -> Chunk<R> {
    fill_from(reader, buf, 0)
}

/// What [`BlockingStorage::read_now`] could not read at once: the reader, its buffer, and
/// how much of it is filled (`buf[..filled]`); [`fill_from`] reads the rest.
#[derive(Debug)]
pub struct ReadLater<R> {
    /// The file.
    pub reader: R,
    /// The chunk's buffer.
    pub buf: Vec<u8>,
    /// Bytes of `buf` read already.
    pub filled: usize,
}

/// [`fill`], with the first `filled` bytes of `buf` read already (they count in the
/// result).
pub fn fill_from<R: Read>(mut reader: R, mut buf: Vec<u8>, filled: usize) -> Chunk<R> {
    if buf.is_empty() {
        buf.resize(buf.capacity().max(1), 0);
    }
    let mut filled = filled.min(buf.len());
    if filled == buf.len() {
        return Chunk {
            io: reader,
            buf,
            result: Ok(filled),
            then: None,
        };
    }
    let mut then = None;
    let result = loop {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break Ok(filled),
            Ok(n) => {
                filled += n;
                if filled == buf.len() {
                    break Ok(filled);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if filled > 0 => {
                then = Some(e);
                break Ok(filled);
            }
            Err(e) => break Err(e),
        }
    };
    Chunk {
        io: reader,
        buf,
        result,
        then,
    }
}

/// Writes all of `buf[..len]` to `writer` (then flushes it if `flush`); the buffer comes
/// back whole, its length unchanged.
pub fn write_all<W: Write>(mut writer: W, buf: Vec<u8>, len: usize, flush: bool) -> Chunk<W> {
    let result = buf
        .get(..len)
        .ok_or_else(|| io::Error::other("chunk longer than its buffer"))
        .and_then(|bytes| writer.write_all(bytes))
        .and_then(|()| if flush { writer.flush() } else { Ok(()) })
        .map(|()| len);
    Chunk {
        io: writer,
        buf,
        result,
        then: None,
    }
}
