//! A storage with a byte quota on uploads, to inject a full disk (ENOSPC) through the
//! storage trait, and listings that fail part-way, to inject a storage failure in the
//! middle of a directory: every other call goes to [`LocalFs`].

use ftps_backend::{BlockingStorage, LocalFs, LocalUpload, User};
use ftps_proto::server::{Metadata, StorageError};
use ftps_proto::{Timestamp, VirtualPath};
use std::io::{self, Write};

/// [`LocalFs`] whose uploads fail with `StorageFull` past `limit` bytes each.
#[derive(Debug, Clone)]
pub struct QuotaFs {
    inner: LocalFs,
    limit: Option<u64>,
    listing_fails_after: Option<usize>,
}

impl QuotaFs {
    /// `root`, with uploads limited to `limit` bytes (none if `None`).
    pub fn new(inner: LocalFs, limit: Option<u64>) -> QuotaFs {
        QuotaFs {
            inner,
            limit,
            listing_fails_after: None,
        }
    }

    /// The same storage, its listings failing (`StorageError::Other`) after `n` entries.
    pub fn with_listing_failure(mut self, n: Option<usize>) -> QuotaFs {
        self.listing_fails_after = n;
        self
    }
}

/// An upload that fails past its quota.
#[derive(Debug)]
pub struct QuotaUpload {
    inner: LocalUpload,
    left: Option<u64>,
}

impl Write for QuotaUpload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(left) = self.left.as_mut() {
            if buf.len() as u64 > *left {
                return Err(io::ErrorKind::StorageFull.into());
            }
            *left -= buf.len() as u64;
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl BlockingStorage for QuotaFs {
    type Reader = ftps_backend::LocalFile;
    type Upload = QuotaUpload;

    fn read_now(
        &self,
        reader: ftps_backend::LocalFile,
        buf: Vec<u8>,
    ) -> Result<
        ftps_backend::Chunk<ftps_backend::LocalFile>,
        ftps_backend::ReadLater<ftps_backend::LocalFile>,
    > {
        self.inner.read_now(reader, buf)
    }

    fn stat(&self, user: &User, path: &VirtualPath) -> Result<Metadata, StorageError> {
        self.inner.stat(user, path)
    }
    fn list(&self, user: &User, path: &VirtualPath) -> Result<Vec<Metadata>, StorageError> {
        self.inner.list(user, path)
    }
    fn list_entries(
        &self,
        user: &User,
        path: &VirtualPath,
    ) -> Result<ftps_backend::Entries, StorageError> {
        let entries = self.inner.list_entries(user, path)?;
        Ok(match self.listing_fails_after {
            None => entries,
            // The entry after the n-th, if there is one, is a failure instead.
            Some(n) => Box::new(entries.enumerate().take(n + 1).map(move |(i, e)| {
                if i < n {
                    e
                } else {
                    Err(StorageError::Other(
                        "the storage failed part-way (injected)".into(),
                    ))
                }
            })),
        })
    }
    fn make_dir(&self, user: &User, path: &VirtualPath) -> Result<(), StorageError> {
        self.inner.make_dir(user, path)
    }
    fn remove_dir(&self, user: &User, path: &VirtualPath) -> Result<(), StorageError> {
        self.inner.remove_dir(user, path)
    }
    fn remove_file(&self, user: &User, path: &VirtualPath) -> Result<(), StorageError> {
        self.inner.remove_file(user, path)
    }
    fn rename(
        &self,
        user: &User,
        from: &VirtualPath,
        to: &VirtualPath,
    ) -> Result<(), StorageError> {
        self.inner.rename(user, from, to)
    }
    fn set_modified(
        &self,
        user: &User,
        path: &VirtualPath,
        time: Timestamp,
    ) -> Result<(), StorageError> {
        self.inner.set_modified(user, path, time)
    }
    fn open_read(
        &self,
        user: &User,
        path: &VirtualPath,
        offset: u64,
    ) -> Result<(ftps_backend::LocalFile, u64), StorageError> {
        self.inner.open_read(user, path, offset)
    }
    fn open_write(
        &self,
        user: &User,
        path: &VirtualPath,
        offset: u64,
        append: bool,
        unique: bool,
    ) -> Result<(QuotaUpload, VirtualPath), StorageError> {
        let (inner, path) = self.inner.open_write(user, path, offset, append, unique)?;
        Ok((
            QuotaUpload {
                inner,
                left: self.limit,
            },
            path,
        ))
    }
    fn open_write_new(
        &self,
        user: &User,
        path: &VirtualPath,
    ) -> Result<(QuotaUpload, VirtualPath), StorageError> {
        let (inner, path) = self.inner.open_write_new(user, path)?;
        Ok((
            QuotaUpload {
                inner,
                left: self.limit,
            },
            path,
        ))
    }
    fn commit(&self, upload: QuotaUpload, keep: bool) -> Result<(), StorageError> {
        self.inner.commit(upload.inner, keep)
    }
}
