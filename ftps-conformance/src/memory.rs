//! [`MemoryStorage`]: a native async [`Storage`] (every call a future, none run on a
//! blocking pool), kept in memory, whose calls can each wait a while on a timer — a
//! stand-in for a storage behind a network service, to test the server's async seam on
//! every runtime.

use ftps_backend::{BoxFuture, Chunk, Entries, Storage, StorageFuture, Usage, User, now_utc};
use ftps_proto::listing::EntryKind;
use ftps_proto::server::{Metadata, StorageCapabilities, StorageError};
use ftps_proto::{Timestamp, VirtualPath};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

#[derive(Debug, Clone)]
enum Node {
    Dir,
    File {
        data: Arc<Vec<u8>>,
        modified: Timestamp,
    },
}

/// Files and directories in memory, by full path (the user's home joined with the path).
#[derive(Debug, Default)]
struct Tree(BTreeMap<String, Node>);

/// Calls of a [`MemoryStorage`] that waited, counted.
#[derive(Debug, Default)]
pub struct Waits {
    running: AtomicUsize,
    most: AtomicUsize,
    total: AtomicUsize,
}

impl Waits {
    /// The most calls that were waiting at once.
    pub fn most_at_once(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }
    /// Calls that waited, in all.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }
}

/// An async storage in memory (see the module docs). Whole-object uploads only (no
/// restarts or appends, as an object store); times can be set.
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    tree: Arc<Mutex<Tree>>,
    wait: Option<Duration>,
    waits: Arc<Waits>,
    /// The next unique name's number (STOU): two uploads at once never share one.
    unique: Arc<AtomicUsize>,
}

/// A file being read.
#[derive(Debug)]
pub struct MemoryReader {
    data: Arc<Vec<u8>>,
    at: usize,
}

/// A file being written: kept whole until its commit.
#[derive(Debug)]
pub struct MemoryUpload {
    key: String,
    data: Vec<u8>,
    create_new: bool,
}

fn key(user: &User, path: &VirtualPath) -> String {
    let rel = path.as_str().trim_start_matches('/');
    let home = user.home.as_str().trim_end_matches('/');
    match (home.is_empty(), rel.is_empty()) {
        (true, true) => "/".to_owned(),
        (false, true) => home.to_owned(),
        _ => format!("{home}/{rel}"),
    }
}

fn parent_of(key: &str) -> &str {
    match key.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &key[..i],
    }
}

fn meta(name: &str, node: &Node) -> Metadata {
    let (kind, size, modified) = match node {
        Node::Dir => (EntryKind::Directory, 0, None),
        Node::File { data, modified } => (EntryKind::File, data.len() as u64, Some(*modified)),
    };
    Metadata {
        name: name.to_owned(),
        kind,
        size,
        modified,
        mode: None,
        writable: true,
        unique: None,
    }
}

impl MemoryStorage {
    /// An empty storage (its root directory only).
    pub fn new() -> Self {
        Self::default()
    }

    /// Every call that asks the tree (not reads and writes of open files) first waits
    /// `wait` on a timer: a service at that distance.
    #[must_use]
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = Some(wait);
        self
    }

    /// The calls that waited.
    pub fn waits(&self) -> Arc<Waits> {
        self.waits.clone()
    }

    /// The bytes of the file at `path` (a full path, from the storage's root).
    pub fn file(&self, path: &str) -> Option<Vec<u8>> {
        match self.lock().0.get(path) {
            Some(Node::File { data, .. }) => Some(data.to_vec()),
            _ => None,
        }
    }

    /// Puts a file at `path` (a full path; its parent must exist).
    pub fn put(&self, path: &str, data: &[u8]) {
        self.lock().0.insert(
            path.to_owned(),
            Node::File {
                data: Arc::new(data.to_vec()),
                modified: now_utc(),
            },
        );
    }

    /// Makes the directory `path` (a full path).
    pub fn make(&self, path: &str) {
        self.lock().0.insert(path.to_owned(), Node::Dir);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tree> {
        self.tree.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits (if the storage does), counted.
    async fn wait(&self) {
        let Some(wait) = self.wait else { return };
        let running = self.waits.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.waits.most.fetch_max(running, Ordering::SeqCst);
        self.waits.total.fetch_add(1, Ordering::SeqCst);
        async_io::Timer::after(wait).await;
        self.waits.running.fetch_sub(1, Ordering::SeqCst);
    }

    fn node(&self, key: &str) -> Result<Node, StorageError> {
        if key == "/" {
            return Ok(Node::Dir);
        }
        self.lock()
            .0
            .get(key)
            .cloned()
            .ok_or(StorageError::NotFound)
    }

    fn parent_is_dir(tree: &Tree, key: &str) -> Result<(), StorageError> {
        let parent = parent_of(key);
        match tree.0.get(parent) {
            _ if parent == "/" => Ok(()),
            Some(Node::Dir) => Ok(()),
            Some(_) => Err(StorageError::NotADirectory),
            None => Err(StorageError::NotFound),
        }
    }

    fn children(tree: &Tree, dir: &str) -> Vec<Metadata> {
        let prefix = if dir == "/" {
            "/".to_owned()
        } else {
            format!("{dir}/")
        };
        tree.0
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| !k[prefix.len()..].contains('/') && k.len() > prefix.len())
            .map(|(k, n)| meta(&k[prefix.len()..], n))
            .collect()
    }
}

impl Storage for MemoryStorage {
    type Reader = MemoryReader;
    type Upload = MemoryUpload;

    fn capabilities(&self) -> StorageCapabilities {
        let mut c = StorageCapabilities::whole_objects();
        c.set_modified = true;
        c
    }
    fn stat<'a>(&'a self, user: &'a User, path: &'a VirtualPath) -> StorageFuture<'a, Metadata> {
        Box::pin(async move {
            self.wait().await;
            let key = key(user, path);
            let node = self.node(&key)?;
            Ok(meta(path.file_name().unwrap_or("/"), &node))
        })
    }
    fn list_entries<'a>(
        &'a self,
        user: &'a User,
        path: &'a VirtualPath,
    ) -> StorageFuture<'a, Entries> {
        Box::pin(async move {
            self.wait().await;
            let key = key(user, path);
            let entries = match self.node(&key)? {
                Node::Dir => Self::children(&self.lock(), &key),
                file => vec![meta(path.file_name().unwrap_or("/"), &file)],
            };
            Ok(Box::new(entries.into_iter().map(Ok)) as Entries)
        })
    }
    fn make_dir<'a>(&'a self, user: &'a User, path: &'a VirtualPath) -> StorageFuture<'a, ()> {
        Box::pin(async move {
            self.wait().await;
            let key = key(user, path);
            let mut tree = self.lock();
            Self::parent_is_dir(&tree, &key)?;
            if key == "/" || tree.0.contains_key(&key) {
                return Err(StorageError::AlreadyExists);
            }
            tree.0.insert(key, Node::Dir);
            Ok(())
        })
    }
    fn remove_dir<'a>(&'a self, user: &'a User, path: &'a VirtualPath) -> StorageFuture<'a, ()> {
        Box::pin(async move {
            self.wait().await;
            let key = key(user, path);
            let mut tree = self.lock();
            match tree.0.get(&key) {
                Some(Node::Dir) if Self::children(&tree, &key).is_empty() => {
                    tree.0.remove(&key);
                    Ok(())
                }
                Some(Node::Dir) => Err(StorageError::DirectoryNotEmpty),
                Some(_) => Err(StorageError::NotADirectory),
                None => Err(StorageError::NotFound),
            }
        })
    }
    fn remove_file<'a>(&'a self, user: &'a User, path: &'a VirtualPath) -> StorageFuture<'a, ()> {
        Box::pin(async move {
            self.wait().await;
            let key = key(user, path);
            let mut tree = self.lock();
            match tree.0.get(&key) {
                Some(Node::File { .. }) => {
                    tree.0.remove(&key);
                    Ok(())
                }
                Some(Node::Dir) => Err(StorageError::IsADirectory),
                None => Err(StorageError::NotFound),
            }
        })
    }
    fn rename<'a>(
        &'a self,
        user: &'a User,
        from: &'a VirtualPath,
        to: &'a VirtualPath,
    ) -> StorageFuture<'a, ()> {
        Box::pin(async move {
            self.wait().await;
            let (from, to) = (key(user, from), key(user, to));
            let mut tree = self.lock();
            Self::parent_is_dir(&tree, &to)?;
            match tree.0.get(&from) {
                Some(Node::File { .. }) => {}
                // Directories are prefixes here, as in an object store: not renamed.
                Some(Node::Dir) => return Err(StorageError::PermissionDenied),
                None => return Err(StorageError::NotFound),
            }
            if matches!(tree.0.get(&to), Some(Node::Dir)) {
                return Err(StorageError::IsADirectory);
            }
            if let Some(node) = tree.0.remove(&from) {
                tree.0.insert(to, node);
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
        Box::pin(async move {
            self.wait().await;
            let key = key(user, path);
            match self.lock().0.get_mut(&key) {
                Some(Node::File { modified, .. }) => {
                    *modified = time;
                    Ok(())
                }
                Some(Node::Dir) => Err(StorageError::IsADirectory),
                None => Err(StorageError::NotFound),
            }
        })
    }
    fn open_read<'a>(
        &'a self,
        user: &'a User,
        path: &'a VirtualPath,
        offset: u64,
    ) -> StorageFuture<'a, (MemoryReader, u64)> {
        Box::pin(async move {
            self.wait().await;
            match self.node(&key(user, path))? {
                Node::File { data, .. } => {
                    let size = data.len() as u64;
                    let at = usize::try_from(offset).map_err(|_| StorageError::InvalidOffset)?;
                    if at > data.len() {
                        return Err(StorageError::InvalidOffset);
                    }
                    Ok((MemoryReader { data, at }, size))
                }
                Node::Dir => Err(StorageError::IsADirectory),
            }
        })
    }
    fn read(
        &self,
        mut reader: MemoryReader,
        mut buf: Vec<u8>,
    ) -> BoxFuture<'_, Chunk<MemoryReader>> {
        if buf.is_empty() {
            buf.resize(buf.capacity().max(1), 0);
        }
        let n = buf.len().min(reader.data.len() - reader.at);
        buf[..n].copy_from_slice(&reader.data[reader.at..reader.at + n]);
        reader.at += n;
        Box::pin(std::future::ready(Chunk {
            io: reader,
            buf,
            result: Ok(n),
            then: None,
        }))
    }
    fn open_write<'a>(
        &'a self,
        user: &'a User,
        path: &'a VirtualPath,
        offset: u64,
        append: bool,
        unique: bool,
    ) -> StorageFuture<'a, (MemoryUpload, VirtualPath)> {
        Box::pin(async move {
            self.wait().await;
            if offset > 0 || append {
                return Err(StorageError::PermissionDenied);
            }
            let path = if unique {
                loop {
                    let n = self.unique.fetch_add(1, Ordering::SeqCst);
                    let candidate = path.resolve(&format!("upload.{n}"));
                    if self.node(&key(user, &candidate)).is_err() {
                        break candidate;
                    }
                }
            } else {
                path.clone()
            };
            let key = key(user, &path);
            Self::parent_is_dir(&self.lock(), &key)?;
            if matches!(self.node(&key), Ok(Node::Dir)) {
                return Err(StorageError::IsADirectory);
            }
            let upload = MemoryUpload {
                key,
                data: Vec::new(),
                create_new: unique,
            };
            Ok((upload, path))
        })
    }
    fn open_write_new<'a>(
        &'a self,
        user: &'a User,
        path: &'a VirtualPath,
    ) -> StorageFuture<'a, (MemoryUpload, VirtualPath)> {
        Box::pin(async move {
            self.wait().await;
            let key = key(user, path);
            Self::parent_is_dir(&self.lock(), &key)?;
            if self.node(&key).is_ok() {
                return Err(StorageError::AlreadyExists);
            }
            let upload = MemoryUpload {
                key,
                data: Vec::new(),
                create_new: true,
            };
            Ok((upload, path.clone()))
        })
    }
    fn write(
        &self,
        mut upload: MemoryUpload,
        buf: Vec<u8>,
        len: usize,
        _flush: bool,
    ) -> BoxFuture<'_, Chunk<MemoryUpload>> {
        let result = match buf.get(..len) {
            Some(bytes) => {
                upload.data.extend_from_slice(bytes);
                Ok(len)
            }
            None => Err(std::io::Error::other("chunk longer than its buffer")),
        };
        Box::pin(std::future::ready(Chunk {
            io: upload,
            buf,
            result,
            then: None,
        }))
    }
    fn commit(&self, upload: MemoryUpload, keep: bool) -> StorageFuture<'_, ()> {
        Box::pin(async move {
            self.wait().await;
            if !keep {
                return Ok(());
            }
            let mut tree = self.lock();
            match tree.0.get(&upload.key) {
                Some(_) if upload.create_new => return Err(StorageError::AlreadyExists),
                Some(Node::Dir) => return Err(StorageError::IsADirectory),
                _ => {}
            }
            let node = Node::File {
                data: Arc::new(upload.data),
                modified: now_utc(),
            };
            tree.0.insert(upload.key, node);
            Ok(())
        })
    }
    fn usage<'a>(&'a self, user: &'a User) -> StorageFuture<'a, Usage> {
        Box::pin(async move {
            self.wait().await;
            let home = user.home.as_str();
            let prefix = if home == "/" {
                "/".to_owned()
            } else {
                format!("{home}/")
            };
            let mut usage = Usage::default();
            for (k, n) in self.lock().0.iter() {
                if let (true, Node::File { data, .. }) = (k.starts_with(&prefix), n) {
                    usage.bytes += data.len() as u64;
                    usage.files += 1;
                }
            }
            Ok(usage)
        })
    }
}
