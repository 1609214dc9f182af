//! Quotas: what a user's home may hold ([`Quota`], in bytes and in files), enforced for
//! every storage by [`Quoted`], which the server wraps around the storage it is given.
//!
//! A user's usage is counted once (the storage's [`usage`](Storage::usage): by default a
//! walk of the home) and then kept by the server as uploads commit and files are deleted.
//! An upload is checked before it starts (a full quota is 552 at once, with no data
//! connection used) and while it runs: every byte written is reserved first (and a new
//! file's place when it opens), so two uploads at once cannot together pass the quota;
//! one that would is stopped with 552 and discarded, nothing of it left. What an upload
//! replaces is measured as it commits (not as it opened: the file may have been deleted,
//! renamed away or replaced meanwhile), with the user's deletes, renames and other
//! commits held off while it does; what the replaced file no longer covers must then fit,
//! or the upload stops with 552. (An append or a resumed upload writes in place: what
//! it wrote before the quota stopped it stays, as for any broken resumable upload; once
//! it ends, kept or not, the file is measured and counted as it is — one that ends
//! without its commit (an ABOR, a client gone) by the next change of the user's names.
//! While it writes, its file (or a directory above it) cannot be deleted, renamed, or
//! renamed over: 450.)
//! Changes made to the home by other means than this server are not seen until the
//! server restarts.

use crate::auth::BoxFuture;
use crate::storage::{Chunk, Storage, StorageFuture};
use crate::user::User;
use ftps_proto::listing::EntryKind;
use ftps_proto::server::{Metadata, StorageError};
use ftps_proto::{Timestamp, VirtualPath};
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

/// What a user's home may hold; `None`: no bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Quota {
    /// Bytes in all files.
    pub bytes: Option<u64>,
    /// Files.
    pub files: Option<u64>,
}

impl Quota {
    /// No bounds.
    pub const UNLIMITED: Quota = Quota {
        bytes: None,
        files: None,
    };

    /// At most `bytes` in all and `files` files.
    pub fn new(bytes: Option<u64>, files: Option<u64>) -> Self {
        Quota { bytes, files }
    }

    /// Whether anything is bounded.
    pub fn is_limited(&self) -> bool {
        self.bytes.is_some() || self.files.is_some()
    }
}

/// What a home holds, as a quota counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes in all files (and, while uploads run, what they have reserved).
    pub bytes: u64,
    /// Files.
    pub files: u64,
}

/// A user's usage, shared by its sessions.
#[derive(Debug, Default)]
struct Ledger {
    usage: Mutex<Usage>,
    /// Held while a change to the home's names (a commit, a delete, a rename) is
    /// measured and made, so that what one replaces or removes is what it found there:
    /// two of them at once would each give back the same file.
    names: async_lock::Mutex<()>,
    /// The names in-place uploads (APPE, REST + STOR) are writing, each with how many:
    /// a delete of one, or a rename over it, is refused (450) while they write, since the
    /// bytes they go on writing would land in a file no name holds, counted for good
    /// (review16a, finding 5).
    writing: Mutex<HashMap<VirtualPath, usize>>,
    /// In-place uploads that ended without a commit (an ABOR, a client gone): what they
    /// left in their files is measured by the next change of the user's names, which
    /// counts each file as it is then (review16c, finding 4).
    unsettled: Mutex<Vec<Unsettled>>,
}

/// An in-place upload that ended without its commit, to be measured.
#[derive(Debug)]
struct Unsettled {
    user: User,
    target: VirtualPath,
    identity: String,
    /// The file's end as counted.
    end: u64,
}

impl Ledger {
    fn new(usage: Usage) -> Self {
        Ledger {
            usage: Mutex::new(usage),
            names: async_lock::Mutex::default(),
            writing: Mutex::default(),
            unsettled: Mutex::default(),
        }
    }

    fn unsettled(&self) -> std::sync::MutexGuard<'_, Vec<Unsettled>> {
        self.unsettled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn writing(&self) -> std::sync::MutexGuard<'_, HashMap<VirtualPath, usize>> {
        self.writing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Refused with [`StorageError::Busy`] (450) if an in-place upload writes `path`, or
    /// a file below it: a rename of the file, or of a directory it is in, would let a
    /// delete of its new name give back bytes the upload goes on writing (review16c,
    /// findings 1 and 2).
    fn not_written(&self, path: &VirtualPath) -> Result<(), StorageError> {
        let dir = format!("{}/", path.as_str().trim_end_matches('/'));
        let busy = self
            .writing()
            .keys()
            .any(|w| w == path || w.as_str().starts_with(&dir));
        match busy {
            true => Err(StorageError::Busy),
            false => Ok(()),
        }
    }

    fn usage(&self) -> std::sync::MutexGuard<'_, Usage> {
        self.usage.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn names(&self) -> async_lock::MutexGuard<'_, ()> {
        self.names.lock().await
    }

    /// Reserves `n` bytes if they fit under `max`.
    fn reserve(&self, n: u64, max: Option<u64>) -> bool {
        let mut usage = self.usage();
        match max {
            Some(max) if usage.bytes.saturating_add(n) > max => false,
            _ => {
                usage.bytes = usage.bytes.saturating_add(n);
                true
            }
        }
    }

    /// Reserves `n` bytes and, if `file`, a file's place, if both fit under `quota`.
    fn reserve_room(&self, n: u64, file: bool, quota: Quota) -> bool {
        let mut usage = self.usage();
        let bytes = quota
            .bytes
            .is_some_and(|max| usage.bytes.saturating_add(n) > max);
        let files = file && quota.files.is_some_and(|max| usage.files >= max);
        if bytes || files {
            return false;
        }
        usage.bytes = usage.bytes.saturating_add(n);
        usage.files += u64::from(file);
        true
    }
}

/// A storage with every user's [`Quota`] enforced (see the module docs). The server wraps
/// the storage it is built with in one; users without a quota pass straight through.
pub struct Quoted<S> {
    inner: S,
    /// The usage of each home a limited user has, by home, counted when first needed:
    /// users sharing a home share its count (each held to its own quota).
    ledgers: Mutex<HashMap<String, Arc<Ledger>>>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Quoted<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quoted")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S: Storage> Quoted<S> {
    /// `inner`, with quotas enforced.
    pub fn new(inner: S) -> Self {
        Quoted {
            inner,
            ledgers: Mutex::default(),
        }
    }

    /// The storage inside.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The ledger of `user`'s home: counted now if the user has a quota and the home is
    /// not counted yet; for a user without a quota, the home's ledger if a limited user
    /// shares the home (its writes count there too), else `None`.
    async fn ledger(&self, user: &User) -> Result<Option<Arc<Ledger>>, StorageError> {
        let home = user.home.as_str();
        if let Some(l) = self.lock().get(home) {
            return Ok(Some(l.clone()));
        }
        if !user.quota.is_limited() {
            return Ok(None);
        }
        // Counted outside the lock (a walk may take a while); the first count kept wins.
        let usage = self.inner.usage(user).await?;
        let ledger = Arc::new(Ledger::new(usage));
        Ok(Some(
            self.lock().entry(home.to_owned()).or_insert(ledger).clone(),
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Ledger>>> {
        self.ledgers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The size of the file at `path`, if there is one.
    async fn file_size(
        &self,
        user: &User,
        path: &VirtualPath,
    ) -> Result<Option<u64>, StorageError> {
        Ok(self.file(user, path).await?.map(|m| m.size))
    }

    /// Measures the files of in-place uploads that ended without a commit
    /// ([`Ledger::unsettled`]) and counts each as it is, if it is still the file written.
    /// Called with the names lock held, before a change of names is measured.
    async fn settle(&self, ledger: &Ledger) {
        let pending = std::mem::take(&mut *ledger.unsettled());
        for u in pending {
            let Ok(Some(now)) = self.file(&u.user, &u.target).await else {
                continue; // Gone or renamed away: counted as it was.
            };
            if now.unique.as_deref() == Some(u.identity.as_str()) {
                let mut usage = ledger.usage();
                usage.bytes = usage.bytes.saturating_sub(u.end).saturating_add(now.size);
            }
        }
    }

    /// The file at `path`, if there is one.
    async fn file(
        &self,
        user: &User,
        path: &VirtualPath,
    ) -> Result<Option<Metadata>, StorageError> {
        match self.inner.stat(user, path).await {
            Ok(m) if m.kind == EntryKind::File => Ok(Some(m)),
            Ok(_) | Err(StorageError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Checks an upload to `path` (written as [`Storage::open_write`] says) against the
    /// quota before it starts, and wraps it. A user without a quota pays nothing.
    async fn guarded<'a>(
        &'a self,
        user: &'a User,
        path: &'a VirtualPath,
        (offset, append, unique): (u64, bool, bool),
        open: impl FnOnce() -> StorageFuture<'a, (S::Upload, VirtualPath)>,
    ) -> Result<(QuotaUpload<S::Upload>, VirtualPath), StorageError> {
        let Some(ledger) = self.ledger(user).await? else {
            let (upload, path) = open().await?;
            return Ok((QuotaUpload::free(upload), path));
        };
        if !ledger.unsettled().is_empty() {
            let _names = ledger.names().await;
            self.settle(&ledger).await;
        }
        // STOU names a directory: its upload is always a new file.
        let found = if unique {
            None
        } else {
            self.file(user, path).await?
        };
        let old = found.as_ref().map(|m| m.size);
        let in_place = match (unique, append, offset) {
            (true, ..) | (false, false, 0) => None,
            (false, true, _) => Some(old.unwrap_or(0)),
            (false, false, offset) => Some(offset),
        };
        let new_file = old.is_none();
        {
            let mut usage = ledger.usage();
            // A file the upload replaces gives its bytes back (as SFTPGo counts): the
            // quota is full only if even those would not make room.
            let credit = if in_place.is_some() {
                0
            } else {
                old.unwrap_or(0)
            };
            let full = user
                .quota
                .bytes
                .is_some_and(|max| usage.bytes >= max.saturating_add(credit));
            let too_many = new_file && user.quota.files.is_some_and(|max| usage.files >= max);
            if full || too_many {
                return Err(StorageError::QuotaExceeded);
            }
            // A new file takes its place in the count now, so that uploads of new files
            // at once cannot together pass the files quota.
            if new_file {
                usage.files += 1;
            }
        }
        let opened = open().await;
        let (upload, path) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                if new_file {
                    let mut usage = ledger.usage();
                    usage.files = usage.files.saturating_sub(1);
                }
                return Err(e);
            }
        };
        let old_size = old.unwrap_or(0);
        let writing = in_place.map(|_| Writing::new(ledger.clone(), path.clone()));
        // In place, the file written is known by its identity, to be measured when the
        // upload ends; a new name's file exists only now (review16c, finding 3).
        let identity = match (in_place, found.and_then(|m| m.unique)) {
            (None, _) => None,
            (Some(_), Some(unique)) => Some(unique),
            (Some(_), None) => self
                .file(user, &path)
                .await
                .ok()
                .flatten()
                .and_then(|m| m.unique),
        };
        Ok((
            QuotaUpload {
                inner: Some(upload),
                guard: Some(Guard {
                    _writing: writing,
                    ledger,
                    max: user.quota.bytes,
                    reserved: 0,
                    in_place: in_place.is_some(),
                    // Bytes up to the old file's end are counted already: in place they
                    // are overwritten, and a replaced file gives them back on commit.
                    end: old_size,
                    position: in_place.unwrap_or(0),
                    new_file,
                    identity,
                    user: user.clone(),
                    target: path.clone(),
                }),
            },
            path,
        ))
    }
}

/// An in-place upload's name in its ledger's [`writing`](Ledger::writing), while the
/// upload lives.
struct Writing {
    ledger: Arc<Ledger>,
    path: VirtualPath,
}

impl Writing {
    fn new(ledger: Arc<Ledger>, path: VirtualPath) -> Self {
        *ledger.writing().entry(path.clone()).or_insert(0) += 1;
        Writing { ledger, path }
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        let mut writing = self.ledger.writing();
        if let Some(n) = writing.get_mut(&self.path) {
            *n -= 1;
            if *n == 0 {
                writing.remove(&self.path);
            }
        }
    }
}

/// An upload under a quota: every byte reserved before it is written.
pub struct QuotaUpload<U> {
    /// The storage's upload (taken out by the commit).
    inner: Option<U>,
    guard: Option<Guard>,
}

impl<U> std::fmt::Debug for QuotaUpload<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuotaUpload")
            .field("limited", &self.guard.is_some())
            .finish_non_exhaustive()
    }
}

struct Guard {
    /// In place, the name written, held against deletes and renames over it.
    _writing: Option<Writing>,
    ledger: Arc<Ledger>,
    max: Option<u64>,
    /// Bytes this upload added to the usage so far (past the old file's end).
    reserved: u64,
    /// Writing into an existing file (APPE, REST + STOR): what is written stays even if
    /// the upload is not committed.
    in_place: bool,
    /// The end of the file as counted (at first the old file's): bytes below it cost
    /// nothing more.
    end: u64,
    /// Where the next byte goes.
    position: u64,
    /// Whether the upload was counted as a new file when it opened.
    new_file: bool,
    /// Whose upload, and the file it writes: what it replaces there is measured when it
    /// commits (the file it found when it opened may have gone or changed since).
    user: User,
    target: VirtualPath,
    /// In place, the identity of the file written ([`Metadata::unique`]), if it had one
    /// when the upload opened.
    identity: Option<String>,
}

impl<U> QuotaUpload<U> {
    fn free(inner: U) -> Self {
        QuotaUpload {
            inner: Some(inner),
            guard: None,
        }
    }
}

impl Guard {
    /// The upload is over without being kept (or its commit failed): what it reserved goes
    /// back and so does its place as a new file, unless it wrote in place (what it wrote
    /// stays in the file, and counts: [`settle_in_place`](Self::settle_in_place) then
    /// counts what the file holds, where the upload's end is known; dropped without a
    /// commit, nothing can be measured, and its reservations stay).
    fn discard(self) {
        if self.in_place {
            if let Some(identity) = self.identity.clone() {
                self.ledger.unsettled().push(Unsettled {
                    user: self.user.clone(),
                    target: self.target.clone(),
                    identity,
                    end: self.end,
                });
            }
            return;
        }
        let mut usage = self.ledger.usage();
        usage.bytes = usage.bytes.saturating_sub(self.reserved);
        if self.new_file {
            usage.files = usage.files.saturating_sub(1);
        }
    }

    /// An upload in place is over, kept or not, and `now` is the file under its name
    /// after its commit: if it is the file written, its size is what counts instead of
    /// what the upload reserved — REST + STOR may cut the file at the end of what it
    /// wrote, giving back the rest, and a write that failed (a full disk, an I/O error)
    /// wrote less than it reserved (review16a, finding 3).
    fn settle_in_place(self, now: Option<Metadata>) {
        let Some(now) = now else { return };
        if self.identity.is_none() || now.unique != self.identity {
            return; // Renamed away, or replaced: what it wrote is counted as it was.
        }
        let mut usage = self.ledger.usage();
        usage.bytes = usage
            .bytes
            .saturating_sub(self.end)
            .saturating_add(now.size);
    }

    /// The upload was kept. In place, see [`settle_in_place`](Self::settle_in_place). A new file replaced
    /// `replaced` (the size of the file under its name when it committed, if any): that
    /// file's bytes and place go back, the upload's bytes (`position`) count instead of
    /// what it reserved.
    fn kept(self, replaced: Option<u64>) {
        if self.in_place {
            return;
        }
        let mut usage = self.ledger.usage();
        usage.bytes = usage
            .bytes
            .saturating_add(self.position)
            .saturating_sub(self.reserved)
            .saturating_sub(replaced.unwrap_or(0));
        match (replaced.is_some(), self.new_file) {
            (true, true) => usage.files = usage.files.saturating_sub(1),
            (false, false) => usage.files += 1,
            _ => {}
        }
    }
}

impl<U> Drop for QuotaUpload<U> {
    /// An upload dropped without its commit is discarded: what it reserved goes back
    /// (in place, what it wrote stays in the file, and counts).
    fn drop(&mut self) {
        if let Some(g) = self.guard.take() {
            g.discard();
        }
    }
}

impl<S: Storage> Storage for Quoted<S> {
    type Reader = S::Reader;
    type Upload = QuotaUpload<S::Upload>;

    fn capabilities(&self) -> ftps_proto::server::StorageCapabilities {
        self.inner.capabilities()
    }
    fn stat<'a>(&'a self, user: &'a User, path: &'a VirtualPath) -> StorageFuture<'a, Metadata> {
        self.inner.stat(user, path)
    }
    fn list_entries<'a>(
        &'a self,
        user: &'a User,
        path: &'a VirtualPath,
    ) -> StorageFuture<'a, crate::Entries> {
        self.inner.list_entries(user, path)
    }
    fn make_dir<'a>(&'a self, user: &'a User, path: &'a VirtualPath) -> StorageFuture<'a, ()> {
        self.inner.make_dir(user, path)
    }
    fn remove_dir<'a>(&'a self, user: &'a User, path: &'a VirtualPath) -> StorageFuture<'a, ()> {
        self.inner.remove_dir(user, path)
    }
    fn remove_file<'a>(&'a self, user: &'a User, path: &'a VirtualPath) -> StorageFuture<'a, ()> {
        Box::pin(async move {
            let Some(ledger) = self.ledger(user).await? else {
                return self.inner.remove_file(user, path).await;
            };
            let _names = ledger.names().await;
            self.settle(&ledger).await;
            ledger.not_written(path)?;
            let size = self.file_size(user, path).await?;
            self.inner.remove_file(user, path).await?;
            if let Some(size) = size {
                let mut usage = ledger.usage();
                usage.bytes = usage.bytes.saturating_sub(size);
                usage.files = usage.files.saturating_sub(1);
            }
            Ok(())
        })
    }
    fn rename<'a>(
        &'a self,
        user: &'a User,
        from: &'a VirtualPath,
        to: &'a VirtualPath,
    ) -> StorageFuture<'a, ()> {
        Box::pin(async move {
            let Some(ledger) = self.ledger(user).await? else {
                return self.inner.rename(user, from, to).await;
            };
            let _names = ledger.names().await;
            self.settle(&ledger).await;
            ledger.not_written(to)?;
            ledger.not_written(from)?;
            // A rename over a file removes that file, unless it is the file renamed (the
            // same name, or another link to it: rename(2) then does nothing).
            let replaced = match self.inner.stat(user, to).await {
                Ok(m) if m.kind != EntryKind::File => None,
                Ok(_) if from == to => None,
                Ok(m)
                    if m.unique.is_some()
                        && self.inner.stat(user, from).await?.unique == m.unique =>
                {
                    None
                }
                Ok(m) => Some(m.size),
                Err(StorageError::NotFound) => None,
                Err(e) => return Err(e),
            };
            self.inner.rename(user, from, to).await?;
            if let Some(size) = replaced {
                let mut usage = ledger.usage();
                usage.bytes = usage.bytes.saturating_sub(size);
                usage.files = usage.files.saturating_sub(1);
            }
            Ok(())
        })
    }
    fn set_modified<'a>(
        &'a self,
        user: &'a User,
        path: &'a VirtualPath,
        time: Timestamp,
    ) -> StorageFuture<'a, ()> {
        self.inner.set_modified(user, path, time)
    }
    fn open_read<'a>(
        &'a self,
        user: &'a User,
        path: &'a VirtualPath,
        offset: u64,
    ) -> StorageFuture<'a, (S::Reader, u64)> {
        self.inner.open_read(user, path, offset)
    }
    fn read(&self, reader: S::Reader, buf: Vec<u8>) -> BoxFuture<'_, Chunk<S::Reader>> {
        self.inner.read(reader, buf)
    }
    fn open_write<'a>(
        &'a self,
        user: &'a User,
        path: &'a VirtualPath,
        offset: u64,
        append: bool,
        unique: bool,
    ) -> StorageFuture<'a, (Self::Upload, VirtualPath)> {
        let open = move || self.inner.open_write(user, path, offset, append, unique);
        Box::pin(self.guarded(user, path, (offset, append, unique), open))
    }
    fn open_write_new<'a>(
        &'a self,
        user: &'a User,
        path: &'a VirtualPath,
    ) -> StorageFuture<'a, (Self::Upload, VirtualPath)> {
        let open = move || self.inner.open_write_new(user, path);
        Box::pin(self.guarded(user, path, (0, false, false), open))
    }
    /// Every byte is reserved before it is written: past the quota, the chunk fails with
    /// `QuotaExceeded` and nothing of it is written. The inner write starts at once (the
    /// server writes a chunk while the next arrives).
    fn write(
        &self,
        mut upload: Self::Upload,
        buf: Vec<u8>,
        len: usize,
        flush: bool,
    ) -> BoxFuture<'_, Chunk<Self::Upload>> {
        let refused = |upload, buf, e: io::Error| {
            let chunk = Chunk {
                io: upload,
                buf,
                result: Err(e),
                then: None,
            };
            Box::pin(std::future::ready(chunk)) as BoxFuture<'_, Chunk<Self::Upload>>
        };
        let Some(inner) = upload.inner.take() else {
            return refused(upload, buf, io::Error::other("the upload was committed"));
        };
        if let Some(g) = upload.guard.as_mut() {
            let n = len as u64;
            let end = g.end.max(g.position.saturating_add(n));
            let growth = end - g.end;
            if !g.ledger.reserve(growth, g.max) {
                upload.inner = Some(inner);
                return refused(upload, buf, io::ErrorKind::QuotaExceeded.into());
            }
            // Counted as written now: a write that fails fails the upload, which gives
            // back what it reserved when it is discarded.
            g.reserved += growth;
            g.end = end;
            g.position = g.position.saturating_add(n);
        }
        let writing = self.inner.write(inner, buf, len, flush);
        Box::pin(async move {
            let chunk = writing.await;
            upload.inner = Some(chunk.io);
            Chunk {
                io: upload,
                buf: chunk.buf,
                result: chunk.result,
                then: chunk.then,
            }
        })
    }
    fn commit(&self, mut upload: Self::Upload, keep: bool) -> StorageFuture<'_, ()> {
        Box::pin(async move {
            // Both leave the wrapper, whose Drop then has nothing to do.
            let guard = upload.guard.take();
            let Some(inner) = upload.inner.take() else {
                return Err(StorageError::Other("upload committed twice".into()));
            };
            let Some(g) = guard else {
                return self.inner.commit(inner, keep).await;
            };
            if !keep && !g.in_place {
                let done = self.inner.commit(inner, keep).await;
                g.discard();
                return done;
            }
            // What the upload replaces (or, in place, what the file holds) is measured as
            // it commits, with the user's other changes of names held off meanwhile.
            let names = g.ledger.clone();
            let _names = names.names().await;
            self.settle(&names).await;
            if g.in_place {
                // Kept or not, what it wrote is in the file: counted as the file is.
                let done = self.inner.commit(inner, keep).await;
                let now = self.file(&g.user, &g.target).await.unwrap_or(None);
                g.settle_in_place(now);
                return done;
            }
            // A name that cannot be measured replaces nothing: its bytes stay counted.
            let replaced = self.file_size(&g.user, &g.target).await.unwrap_or(None);
            // What the upload wrote below the old file's end was not reserved: the file it
            // replaces held those bytes. What that file no longer covers (it was deleted,
            // renamed away or replaced by a shorter one meanwhile) needs room now, and so
            // does its place if it went: without it the upload would pass the quota, and
            // stops.
            let mut g = g;
            let unbacked = g
                .position
                .saturating_sub(g.reserved)
                .saturating_sub(replaced.unwrap_or(0));
            let place = replaced.is_none() && !g.new_file;
            if !g.ledger.reserve_room(unbacked, place, g.user.quota) {
                let _ = self.inner.commit(inner, false).await;
                g.discard();
                return Err(StorageError::QuotaExceeded);
            }
            g.reserved += unbacked;
            g.new_file |= place;
            let done = self.inner.commit(inner, keep).await;
            match done {
                Ok(()) => g.kept(replaced),
                Err(_) => g.discard(),
            }
            done
        })
    }
    fn usage<'a>(&'a self, user: &'a User) -> StorageFuture<'a, Usage> {
        self.inner.usage(user)
    }

    // Forwarded, so that an inner storage that answers from stored checksums still does.
    fn hash<'a>(
        &'a self,
        user: &'a User,
        path: &'a VirtualPath,
        algorithm: ftps_proto::hash::HashAlgorithm,
        range: Option<(u64, u64)>,
    ) -> StorageFuture<'a, crate::hash::FileHash> {
        self.inner.hash(user, path, algorithm, range)
    }
}
