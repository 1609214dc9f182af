//! [`Storage`]: where files live, as the server drives it — every call a future, so that
//! storage doing its IO asynchronously (an object store's HTTP client, a database) costs
//! no thread while it waits. Storage whose calls block implements
//! [`BlockingStorage`](crate::BlockingStorage) instead, and the server runs it on its
//! runtime's blocking pool.

use crate::auth::BoxFuture;
use crate::hash::{FileHash, HASH_CHUNK, Hasher};
use crate::listing::{Entries, ListingReader};
use crate::quota::Usage;
use crate::user::User;
use ftps_proto::hash::HashAlgorithm;
use ftps_proto::server::{Metadata, StorageCapabilities, StorageError};
use ftps_proto::{Timestamp, VirtualPath};
use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

/// What a storage call gives: a future of its result.
pub type StorageFuture<'a, T> = BoxFuture<'a, Result<T, StorageError>>;

/// A file (or upload) and its buffer back from one read or write ([`Storage::read`],
/// [`Storage::write`]), with what the call did. The buffer travels with the call, so a
/// chunk is read into and sent from one buffer, never copied between them.
#[derive(Debug)]
pub struct Chunk<T> {
    /// The file, for the next call.
    pub io: T,
    /// The buffer.
    pub buf: Vec<u8>,
    /// Bytes read (fewer than the buffer's length: the file ended) or written (all asked).
    pub result: io::Result<usize>,
    /// A read that failed after some bytes: `result` has those bytes, this the error that
    /// follows them (the bytes go out, then the transfer fails).
    pub then: Option<io::Error>,
}

/// Where files live, as the server drives it: every call returns a future, which the
/// session awaits on its own task (any number at once, no thread held while one waits).
/// For storage whose calls block, implement [`BlockingStorage`](crate::BlockingStorage):
/// the server builder runs it on the runtime's blocking pool (`ftps_async::OnPool`).
///
/// Every path is a [`VirtualPath`] already resolved inside the user's root by the protocol
/// core, and relative to the user's [`home`](User::home): an implementation must serve
/// `path` from within the home and refuse what leaves it. `user` is the logged-in user, as
/// the authenticator made it; the protocol core has already checked its permissions, and
/// the server enforces its quota around the storage ([`Quoted`](crate::Quoted)).
///
/// A future must not block its thread for long: it runs on the runtime's workers, beside
/// other sessions. [`read`](Self::read) and [`write`](Self::write) should start their IO
/// when called, not when first polled: the server reads the next chunk of a download
/// while it sends the last one, and writes a chunk of an upload while the next arrives.
pub trait Storage: Send + Sync + 'static {
    /// A file opened for reading.
    type Reader: Send + 'static;
    /// A file opened for writing, published by [`commit`](Self::commit). Dropping one
    /// without committing it must discard it (an aborted transfer does that).
    type Upload: Send + 'static;

    /// What this storage can do beyond whole-file reads and writes (see
    /// [`BlockingStorage::capabilities`](crate::BlockingStorage::capabilities)). The
    /// default: all of it.
    fn capabilities(&self) -> StorageCapabilities {
        StorageCapabilities::all()
    }
    /// Facts about a path.
    fn stat<'a>(&'a self, user: &'a User, path: &'a VirtualPath) -> StorageFuture<'a, Metadata>;
    /// A directory's entries (or the one entry of a file), as they are read: for a
    /// listing streamed to a data connection, and for STAT (of which the server shows the
    /// first [`STAT_ENTRIES`]). The server pulls the entries on its blocking pool, so
    /// their `next` may block (fetching the next page of a large listing, say).
    fn list_entries<'a>(
        &'a self,
        user: &'a User,
        path: &'a VirtualPath,
    ) -> StorageFuture<'a, Entries>;
    /// Makes a directory.
    fn make_dir<'a>(&'a self, user: &'a User, path: &'a VirtualPath) -> StorageFuture<'a, ()>;
    /// Removes an empty directory.
    fn remove_dir<'a>(&'a self, user: &'a User, path: &'a VirtualPath) -> StorageFuture<'a, ()>;
    /// Removes a file.
    fn remove_file<'a>(&'a self, user: &'a User, path: &'a VirtualPath) -> StorageFuture<'a, ()>;
    /// Renames.
    fn rename<'a>(
        &'a self,
        user: &'a User,
        from: &'a VirtualPath,
        to: &'a VirtualPath,
    ) -> StorageFuture<'a, ()>;
    /// Sets a file's modification time (called only with the `set_modified` capability).
    fn set_modified<'a>(
        &'a self,
        user: &'a User,
        path: &'a VirtualPath,
        time: Timestamp,
    ) -> StorageFuture<'a, ()>;
    /// Opens a file to read from `offset`; returns it and its size.
    fn open_read<'a>(
        &'a self,
        user: &'a User,
        path: &'a VirtualPath,
        offset: u64,
    ) -> StorageFuture<'a, (Self::Reader, u64)>;
    /// Reads the next bytes of `reader` into `buf`, filling all of its length unless the
    /// file ends first (a chunk shorter than the buffer means the end), as
    /// [`fill`](crate::fill) does for a blocking reader.
    fn read(&self, reader: Self::Reader, buf: Vec<u8>) -> BoxFuture<'_, Chunk<Self::Reader>>;
    /// Opens a file to write (at `offset`, at the end for `append`, or under a new unique
    /// name in the directory `path` for `unique`); returns it and the final path. The
    /// capabilities bound what is asked (see
    /// [`BlockingStorage::open_write`](crate::BlockingStorage::open_write)).
    fn open_write<'a>(
        &'a self,
        user: &'a User,
        path: &'a VirtualPath,
        offset: u64,
        append: bool,
        unique: bool,
    ) -> StorageFuture<'a, (Self::Upload, VirtualPath)>;
    /// Opens a new file to write at `path` for a user who may only add files; see
    /// [`BlockingStorage::open_write_new`](crate::BlockingStorage::open_write_new) for
    /// what it must guarantee. The default refuses every such upload.
    fn open_write_new<'a>(
        &'a self,
        user: &'a User,
        path: &'a VirtualPath,
    ) -> StorageFuture<'a, (Self::Upload, VirtualPath)> {
        let _ = (user, path);
        Box::pin(async { Err(StorageError::PermissionDenied) })
    }
    /// Writes all of `buf[..len]` to `upload` (then flushes it if `flush`: the last chunk);
    /// the buffer comes back whole, as [`write_all`](crate::write_all) does for a
    /// blocking writer.
    fn write(
        &self,
        upload: Self::Upload,
        buf: Vec<u8>,
        len: usize,
        flush: bool,
    ) -> BoxFuture<'_, Chunk<Self::Upload>>;
    /// Publishes a finished upload, or removes it if `keep` is false.
    fn commit(&self, upload: Self::Upload, keep: bool) -> StorageFuture<'_, ()>;

    /// The hash of a file (HASH, draft-bryan-ftpext-hash-02 §3): of the bytes
    /// `start..=end` for `range` (RANG's, both inclusive), else of the whole file. A range
    /// not within the file is [`StorageError::InvalidOffset`].
    ///
    /// The default reads the file through [`read`](Self::read) in 256 KiB chunks and
    /// hashes them as they come; a storage that keeps checksums may answer from them.
    fn hash<'a>(
        &'a self,
        user: &'a User,
        path: &'a VirtualPath,
        algorithm: HashAlgorithm,
        range: Option<(u64, u64)>,
    ) -> StorageFuture<'a, FileHash> {
        Box::pin(async move {
            let start = range.map_or(0, |(start, _)| start);
            let (mut reader, size) = self.open_read(user, path, start).await?;
            let limit = match range {
                Some((start, end)) if start > end || end >= size => {
                    return Err(StorageError::InvalidOffset);
                }
                Some((start, end)) => Some(end - start + 1),
                None => None,
            };
            let mut hasher = Hasher::new(algorithm);
            let mut bytes = 0u64;
            let mut buf = Vec::with_capacity(HASH_CHUNK);
            while let Some(want) = crate::hash::next_read(limit, bytes) {
                buf.resize(want, 0);
                let chunk = self.read(reader, buf).await;
                (reader, buf) = (chunk.io, chunk.buf);
                let failed = |e: io::Error| StorageError::Other(format!("reading to hash: {e}"));
                let n = chunk.result.map_err(failed)?;
                hasher.update(&buf[..n]);
                bytes += n as u64;
                if let Some(e) = chunk.then {
                    return Err(failed(e));
                }
                if n < want {
                    if limit.is_some() {
                        return Err(StorageError::InvalidOffset);
                    }
                    break;
                }
            }
            Ok(FileHash::new(hasher.finish_hex(), bytes))
        })
    }

    /// What `user`'s home holds, for its [`Quota`](crate::Quota): asked once per user,
    /// when a quota first needs it; the server keeps the count from then on.
    fn usage<'a>(&'a self, user: &'a User) -> StorageFuture<'a, Usage>;
}

/// At most this many entries in a STAT reply (the listing comes over the control
/// connection, held whole, and clients bound the lines of a reply: ours at 10,000);
/// listings over data connections stream and are not bound by it.
pub const STAT_ENTRIES: usize = 1_000;

/// A file opened for a transfer, kept for the data connection the request named.
#[derive(Debug)]
pub enum Opened<R, W> {
    /// For a download.
    Read(R),
    /// For an upload.
    Write(W),
    /// A listing, streamed.
    Listing(ListingReader),
}

/// A file of storage `S`, opened for a transfer.
pub type OpenedFile<S> = Opened<<S as Storage>::Reader, <S as Storage>::Upload>;

/// A file system time as a [`Timestamp`].
pub(crate) fn timestamp(t: SystemTime) -> Option<Timestamp> {
    let secs = t.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Timestamp::from_unix(i64::try_from(secs).ok()?)
}

/// The current UTC time, for listings (which show the year only for old files).
pub fn now_utc() -> Timestamp {
    timestamp(SystemTime::now()).unwrap_or_else(|| Timestamp::from_unix(0).expect("epoch is valid"))
}
