//! [`OnPool`]: a [`BlockingStorage`] as a [`Storage`], each call run on the runtime's
//! blocking pool — how a file system (`LocalFs`) or a synchronous client serves on every
//! runtime without stalling a session's task.

use crate::runtime::{BoxFuture, Runtime};
use ftps_backend::hash::FileHash;
use ftps_backend::{BlockingStorage, Chunk, Entries, Storage, StorageFuture, Usage, User};
use ftps_proto::hash::HashAlgorithm;
use ftps_proto::server::{Metadata, StorageCapabilities};
use ftps_proto::{Timestamp, VirtualPath};
use std::marker::PhantomData;
use std::sync::Arc;

/// A [`BlockingStorage`] whose calls run on runtime `R`'s blocking pool, one hop each
/// (an upload's chunk is one write there), except a download's reads that the storage can
/// make at once ([`BlockingStorage::read_now`]: a file in the page cache or on tmpfs),
/// made on the session's task, which then pauses as its runtime wants
/// ([`Runtime::pause`]). Pool calls start when they are called, so the next chunk is read
/// (or the last one written) while the session's task moves the bytes of the one before.
/// `Server::builder` wraps the storage it is given in one.
pub struct OnPool<R, S> {
    inner: Arc<S>,
    runtime: PhantomData<fn() -> R>,
}

impl<R, S> OnPool<R, S> {
    /// `storage`, run on `R`'s blocking pool.
    pub fn new(storage: S) -> Self {
        OnPool {
            inner: Arc::new(storage),
            runtime: PhantomData,
        }
    }

    /// The storage inside.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<R, S: std::fmt::Debug> std::fmt::Debug for OnPool<R, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("OnPool").field(&self.inner).finish()
    }
}

impl<R: Runtime, S: BlockingStorage> OnPool<R, S> {
    /// Runs `call` with the storage, the user and a path, on the pool.
    fn run<'a, T: Send + 'static>(
        &self,
        user: &User,
        path: &VirtualPath,
        call: impl FnOnce(&S, &User, &VirtualPath) -> T + Send + 'static,
    ) -> BoxFuture<'a, T> {
        let (storage, user, path) = (self.inner.clone(), user.clone(), path.clone());
        R::unblock(move || call(&storage, &user, &path))
    }
}

impl<R: Runtime, S: BlockingStorage> Storage for OnPool<R, S> {
    type Reader = S::Reader;
    type Upload = S::Upload;

    fn capabilities(&self) -> StorageCapabilities {
        self.inner.capabilities()
    }
    fn stat<'a>(&'a self, user: &'a User, path: &'a VirtualPath) -> StorageFuture<'a, Metadata> {
        self.run(user, path, |s, u, p| s.stat(u, p))
    }
    fn list_entries<'a>(
        &'a self,
        user: &'a User,
        path: &'a VirtualPath,
    ) -> StorageFuture<'a, Entries> {
        self.run(user, path, |s, u, p| s.list_entries(u, p))
    }
    fn make_dir<'a>(&'a self, user: &'a User, path: &'a VirtualPath) -> StorageFuture<'a, ()> {
        self.run(user, path, |s, u, p| s.make_dir(u, p))
    }
    fn remove_dir<'a>(&'a self, user: &'a User, path: &'a VirtualPath) -> StorageFuture<'a, ()> {
        self.run(user, path, |s, u, p| s.remove_dir(u, p))
    }
    fn remove_file<'a>(&'a self, user: &'a User, path: &'a VirtualPath) -> StorageFuture<'a, ()> {
        self.run(user, path, |s, u, p| s.remove_file(u, p))
    }
    fn rename<'a>(
        &'a self,
        user: &'a User,
        from: &'a VirtualPath,
        to: &'a VirtualPath,
    ) -> StorageFuture<'a, ()> {
        let to = to.clone();
        self.run(user, from, move |s, u, from| s.rename(u, from, &to))
    }
    fn set_modified<'a>(
        &'a self,
        user: &'a User,
        path: &'a VirtualPath,
        time: Timestamp,
    ) -> StorageFuture<'a, ()> {
        self.run(user, path, move |s, u, p| s.set_modified(u, p, time))
    }
    fn open_read<'a>(
        &'a self,
        user: &'a User,
        path: &'a VirtualPath,
        offset: u64,
    ) -> StorageFuture<'a, (S::Reader, u64)> {
        self.run(user, path, move |s, u, p| s.open_read(u, p, offset))
    }
    /// At once what the storage can read without waiting
    /// ([`read_now`](BlockingStorage::read_now)), the rest on the pool. A chunk read at
    /// once is handed over after a [`Runtime::pause`]: a download whose reads and socket
    /// writes never wait would otherwise never give its thread back (smol's executor runs
    /// every session on one thread, and async-io has no budget that forces a pause, as
    /// tokio's has), and every other session would stall until it ended.
    fn read(&self, reader: S::Reader, buf: Vec<u8>) -> BoxFuture<'_, Chunk<S::Reader>> {
        match self.inner.read_now(reader, buf) {
            Ok(chunk) => Box::pin(async move {
                R::pause().await;
                chunk
            }),
            Err(later) => {
                R::unblock(move || ftps_backend::fill_from(later.reader, later.buf, later.filled))
            }
        }
    }
    fn open_write<'a>(
        &'a self,
        user: &'a User,
        path: &'a VirtualPath,
        offset: u64,
        append: bool,
        unique: bool,
    ) -> StorageFuture<'a, (S::Upload, VirtualPath)> {
        self.run(user, path, move |s, u, p| {
            s.open_write(u, p, offset, append, unique)
        })
    }
    fn open_write_new<'a>(
        &'a self,
        user: &'a User,
        path: &'a VirtualPath,
    ) -> StorageFuture<'a, (S::Upload, VirtualPath)> {
        self.run(user, path, |s, u, p| s.open_write_new(u, p))
    }
    fn write(
        &self,
        upload: S::Upload,
        buf: Vec<u8>,
        len: usize,
        flush: bool,
    ) -> BoxFuture<'_, Chunk<S::Upload>> {
        R::unblock(move || ftps_backend::write_all(upload, buf, len, flush))
    }
    fn commit(&self, upload: S::Upload, keep: bool) -> StorageFuture<'_, ()> {
        let storage = self.inner.clone();
        R::unblock(move || storage.commit(upload, keep))
    }
    /// The blocking storage's own hash, in one hop to the pool.
    fn hash<'a>(
        &'a self,
        user: &'a User,
        path: &'a VirtualPath,
        algorithm: HashAlgorithm,
        range: Option<(u64, u64)>,
    ) -> StorageFuture<'a, FileHash> {
        self.run(user, path, move |s, u, p| s.hash(u, p, algorithm, range))
    }
    fn usage<'a>(&'a self, user: &'a User) -> StorageFuture<'a, Usage> {
        let (storage, user) = (self.inner.clone(), user.clone());
        R::unblock(move || storage.usage(&user))
    }
}
