//! The storage trait and the one place that answers the core's storage requests with it.

use crate::hash::{FileHash, hash_reader};
use crate::listing::{Entries, ListingReader};
use crate::quota::Usage;
use crate::user::User;
use ftps_proto::hash::HashAlgorithm;
use ftps_proto::listing::EntryKind;
use ftps_proto::server::{
    Metadata, StorageCapabilities, StorageError, StorageReply, StorageRequest,
};
use ftps_proto::{Timestamp, VirtualPath};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where files live. Every path is a [`VirtualPath`] already resolved inside the user's
/// root by the protocol core, and relative to the user's [`home`](User::home): an
/// implementation must serve `path` from within the home and refuse what leaves the home
/// by a symbolic link. `user` is the logged-in user, as the authenticator made it; the
/// protocol core has already checked its permissions. Calls block; async adapters make
/// them on a blocking pool.
pub trait Storage: Send + Sync + 'static {
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

/// At most this many entries in a STAT reply (the listing comes over the control
/// connection, held whole, and clients bound the lines of a reply: ours at 10,000);
/// listings over data connections stream and are not bound by it.
pub const STAT_ENTRIES: usize = 1_000;

/// A file [`execute`] opened for a transfer; the adapter keeps it for the data connection
/// the request named.
#[derive(Debug)]
pub enum Opened<R, W> {
    /// For a download.
    Read(R),
    /// For an upload.
    Write(W),
    /// A listing, streamed.
    Listing(ListingReader),
}

/// A file of storage `S`, as [`execute`] opened it.
pub type OpenedFile<S> = Opened<<S as Storage>::Reader, <S as Storage>::Upload>;

/// Answers one storage request of the protocol core (blocking). For `OpenRead` and
/// `OpenWrite` it also returns the file, for the adapter to hand to the data connection.
pub fn execute<S: Storage>(
    storage: &S,
    user: &User,
    request: StorageRequest,
) -> (Result<StorageReply, StorageError>, Option<OpenedFile<S>>) {
    let done = |r: Result<(), StorageError>| (r.map(|()| StorageReply::Done), None);
    match request {
        StorageRequest::Stat(p) => (storage.stat(user, &p).map(StorageReply::Metadata), None),
        // STAT over the control connection: a reply held whole, so a bounded one.
        StorageRequest::List(p) => (
            storage.list_entries(user, &p).and_then(|entries| {
                Ok(StorageReply::Entries {
                    entries: entries.take(STAT_ENTRIES).collect::<Result<_, _>>()?,
                    now: now_utc(),
                })
            }),
            None,
        ),
        StorageRequest::MakeDir(p) => done(storage.make_dir(user, &p)),
        StorageRequest::RemoveDir(p) => done(storage.remove_dir(user, &p)),
        StorageRequest::RemoveFile(p) => done(storage.remove_file(user, &p)),
        StorageRequest::Rename { from, to } => done(storage.rename(user, &from, &to)),
        StorageRequest::SetModified { path, modified } => {
            done(storage.set_modified(user, &path, modified))
        }
        StorageRequest::OpenListing { path, format, .. } => {
            match storage.list_entries(user, &path) {
                Ok(entries) => (
                    Ok(StorageReply::Opened { path, size: 0 }),
                    Some(Opened::Listing(ListingReader::new(
                        entries,
                        format,
                        now_utc(),
                    ))),
                ),
                Err(e) => (Err(e), None),
            }
        }
        StorageRequest::OpenRead { path, offset, .. } => {
            match storage.open_read(user, &path, offset) {
                Ok((reader, size)) => (
                    Ok(StorageReply::Opened { path, size }),
                    Some(Opened::Read(reader)),
                ),
                Err(e) => (Err(e), None),
            }
        }
        StorageRequest::OpenWrite {
            path,
            offset,
            append,
            unique,
            create_new,
            ..
        } => match if create_new && (offset > 0 || append || unique) {
            Err(StorageError::PermissionDenied)
        } else if create_new {
            storage.open_write_new(user, &path)
        } else {
            storage.open_write(user, &path, offset, append, unique)
        } {
            Ok((upload, path)) => (
                Ok(StorageReply::Opened { path, size: 0 }),
                Some(Opened::Write(upload)),
            ),
            Err(e) => (Err(e), None),
        },
        StorageRequest::Hash {
            path,
            algorithm,
            start,
            end,
        } => {
            let range = match end {
                Some(end) => Some((start, end)),
                None if start == 0 => None,
                // To the end from `start`: not a request the core makes.
                None => return (Err(StorageError::InvalidOffset), None),
            };
            (
                storage
                    .hash(user, &path, algorithm, range)
                    .map(|h| StorageReply::Hash {
                        hex: h.hex,
                        bytes: h.bytes,
                    }),
                None,
            )
        }
        _ => (
            Err(StorageError::Other("unsupported storage request".into())),
            None,
        ),
    }
}

/// A file system time as a [`Timestamp`].
pub(crate) fn timestamp(t: SystemTime) -> Option<Timestamp> {
    let secs = t.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Timestamp::from_unix(i64::try_from(secs).ok()?)
}

/// The current UTC time, for listings (which show the year only for old files).
pub fn now_utc() -> Timestamp {
    timestamp(SystemTime::now()).unwrap_or_else(|| Timestamp::from_unix(0).expect("epoch is valid"))
}
