//! Storage: the trait the server reads and writes files through, and [`LocalFs`], a
//! directory on the local file system confined to its root.

use ftps_proto::listing::EntryKind;
use ftps_proto::server::{Metadata, StorageError};
use ftps_proto::{Timestamp, VirtualPath};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncSeekExt, AsyncWrite};

/// Where files live. Every path is a [`VirtualPath`] already resolved inside the user's
/// root by the protocol core; an implementation must still refuse paths that leave the
/// root by a symbolic link. `user` is the logged-in user name.
pub trait Storage: Send + Sync + 'static {
    /// A file opened for reading.
    type Reader: AsyncRead + Send + Unpin + 'static;
    /// A file opened for writing, published by [`commit`](Self::commit).
    type Upload: AsyncWrite + Send + Unpin + 'static;

    /// Facts about a path.
    fn stat(
        &self,
        user: &str,
        path: &VirtualPath,
    ) -> impl Future<Output = Result<Metadata, StorageError>> + Send;
    /// A directory's entries, or the one entry of a file.
    fn list(
        &self,
        user: &str,
        path: &VirtualPath,
    ) -> impl Future<Output = Result<Vec<Metadata>, StorageError>> + Send;
    /// Makes a directory.
    fn make_dir(
        &self,
        user: &str,
        path: &VirtualPath,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Removes an empty directory.
    fn remove_dir(
        &self,
        user: &str,
        path: &VirtualPath,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Removes a file.
    fn remove_file(
        &self,
        user: &str,
        path: &VirtualPath,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Renames.
    fn rename(
        &self,
        user: &str,
        from: &VirtualPath,
        to: &VirtualPath,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Sets a file's modification time.
    fn set_modified(
        &self,
        user: &str,
        path: &VirtualPath,
        time: Timestamp,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Opens a file to read from `offset`; returns it and its size.
    fn open_read(
        &self,
        user: &str,
        path: &VirtualPath,
        offset: u64,
    ) -> impl Future<Output = Result<(Self::Reader, u64), StorageError>> + Send;
    /// Opens a file to write (at `offset`, at the end for `append`, or under a new unique
    /// name in the directory `path` for `unique`); returns it and the final path.
    fn open_write(
        &self,
        user: &str,
        path: &VirtualPath,
        offset: u64,
        append: bool,
        unique: bool,
    ) -> impl Future<Output = Result<(Self::Upload, VirtualPath), StorageError>> + Send;
    /// Publishes a finished upload, or removes it if `keep` is false.
    fn commit(
        &self,
        upload: Self::Upload,
        keep: bool,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
}

fn map_io(e: &io::Error) -> StorageError {
    match e.kind() {
        io::ErrorKind::NotFound => StorageError::NotFound,
        io::ErrorKind::PermissionDenied => StorageError::PermissionDenied,
        io::ErrorKind::AlreadyExists => StorageError::AlreadyExists,
        io::ErrorKind::NotADirectory => StorageError::NotADirectory,
        io::ErrorKind::IsADirectory => StorageError::IsADirectory,
        io::ErrorKind::DirectoryNotEmpty => StorageError::DirectoryNotEmpty,
        io::ErrorKind::StorageFull => StorageError::InsufficientStorage,
        io::ErrorKind::InvalidFilename => StorageError::InvalidName,
        _ => StorageError::Other(e.to_string()),
    }
}

/// A directory of the local file system. Paths are joined under the root component by
/// component; then the nearest existing ancestor is canonicalized and must still lie under
/// the canonical root, so a symbolic link pointing outside is refused (`PermissionDenied`).
/// Uploads are written to a hidden temporary name and renamed into place on commit, so a
/// failed upload never leaves a partial file visible.
#[derive(Debug, Clone)]
pub struct LocalFs {
    root: PathBuf,
}

/// An upload in progress under [`LocalFs`].
#[derive(Debug)]
pub struct LocalUpload {
    file: tokio::fs::File,
    temp: PathBuf,
    target: PathBuf,
}

impl AsyncWrite for LocalUpload {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().file).poll_write(cx, buf)
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().file).poll_flush(cx)
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().file).poll_shutdown(cx)
    }
}

static UPLOAD_COUNTER: AtomicU64 = AtomicU64::new(0);

fn timestamp(t: SystemTime) -> Option<Timestamp> {
    let secs = t.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Timestamp::from_unix(i64::try_from(secs).ok()?)
}

/// The current UTC time, for listings.
pub(crate) fn now_utc() -> Timestamp {
    timestamp(SystemTime::now()).unwrap_or_else(|| Timestamp::from_unix(0).expect("epoch is valid"))
}

fn metadata(name: &str, m: &std::fs::Metadata) -> Metadata {
    use std::os::unix::fs::MetadataExt;
    let ft = m.file_type();
    let kind = if ft.is_symlink() {
        EntryKind::Symlink
    } else if ft.is_dir() {
        EntryKind::Directory
    } else if ft.is_file() {
        EntryKind::File
    } else {
        EntryKind::Other
    };
    Metadata {
        name: name.to_owned(),
        kind,
        size: m.len(),
        modified: m.modified().ok().and_then(timestamp),
        mode: Some(m.mode() & 0o7777),
        writable: !m.permissions().readonly(),
        unique: Some(format!("{:x}g{:x}", m.dev(), m.ino())),
    }
}

impl LocalFs {
    /// Serves `root`, which must exist.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = std::fs::canonicalize(root.into())?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "storage root is not a directory",
            ));
        }
        Ok(Self { root })
    }

    /// The canonical root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The real path of `path`, refused if any existing part of it leads outside the root.
    async fn real(&self, path: &VirtualPath) -> Result<PathBuf, StorageError> {
        let mut real = self.root.clone();
        for c in path.components() {
            real.push(c);
        }
        // The deepest existing ancestor, resolved, must stay inside the root.
        let mut probe = real.clone();
        loop {
            match tokio::fs::canonicalize(&probe).await {
                Ok(resolved) => {
                    if resolved.starts_with(&self.root) {
                        return Ok(real);
                    }
                    return Err(StorageError::PermissionDenied);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // A dangling symlink also lands here; refuse it if it is one.
                    if tokio::fs::symlink_metadata(&probe).await.is_ok() {
                        return Err(StorageError::PermissionDenied);
                    }
                    if !probe.pop() {
                        return Err(StorageError::PermissionDenied);
                    }
                }
                Err(e) => return Err(map_io(&e)),
            }
        }
    }
}

impl Storage for LocalFs {
    type Reader = tokio::fs::File;
    type Upload = LocalUpload;

    async fn stat(&self, _user: &str, path: &VirtualPath) -> Result<Metadata, StorageError> {
        let real = self.real(path).await?;
        let m = tokio::fs::metadata(&real).await.map_err(|e| map_io(&e))?;
        Ok(metadata(path.file_name().unwrap_or("/"), &m))
    }

    async fn list(&self, _user: &str, path: &VirtualPath) -> Result<Vec<Metadata>, StorageError> {
        let real = self.real(path).await?;
        let m = tokio::fs::metadata(&real).await.map_err(|e| map_io(&e))?;
        if !m.is_dir() {
            return Ok(vec![metadata(path.file_name().unwrap_or("/"), &m)]);
        }
        let mut dir = tokio::fs::read_dir(&real).await.map_err(|e| map_io(&e))?;
        let mut out = Vec::new();
        while let Some(entry) = dir.next_entry().await.map_err(|e| map_io(&e))? {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with(".ftps-upload-") {
                continue;
            }
            if let Ok(m) = tokio::fs::symlink_metadata(entry.path()).await {
                out.push(metadata(&name, &m));
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn make_dir(&self, _user: &str, path: &VirtualPath) -> Result<(), StorageError> {
        let real = self.real(path).await?;
        tokio::fs::create_dir(&real).await.map_err(|e| map_io(&e))
    }

    async fn remove_dir(&self, _user: &str, path: &VirtualPath) -> Result<(), StorageError> {
        let real = self.real(path).await?;
        tokio::fs::remove_dir(&real).await.map_err(|e| map_io(&e))
    }

    async fn remove_file(&self, _user: &str, path: &VirtualPath) -> Result<(), StorageError> {
        let real = self.real(path).await?;
        let m = tokio::fs::symlink_metadata(&real)
            .await
            .map_err(|e| map_io(&e))?;
        if m.is_dir() {
            return Err(StorageError::IsADirectory);
        }
        tokio::fs::remove_file(&real).await.map_err(|e| map_io(&e))
    }

    async fn rename(
        &self,
        _user: &str,
        from: &VirtualPath,
        to: &VirtualPath,
    ) -> Result<(), StorageError> {
        let from = self.real(from).await?;
        let to = self.real(to).await?;
        if tokio::fs::symlink_metadata(&to)
            .await
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            return Err(StorageError::PermissionDenied);
        }
        tokio::fs::rename(&from, &to).await.map_err(|e| map_io(&e))
    }

    async fn set_modified(
        &self,
        _user: &str,
        path: &VirtualPath,
        time: Timestamp,
    ) -> Result<(), StorageError> {
        let real = self.real(path).await?;
        let when =
            UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(time.to_unix()).unwrap_or(0));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&real)
            .map_err(|e| map_io(&e))?;
        file.set_modified(when).map_err(|e| map_io(&e))
    }

    async fn open_read(
        &self,
        _user: &str,
        path: &VirtualPath,
        offset: u64,
    ) -> Result<(tokio::fs::File, u64), StorageError> {
        let real = self.real(path).await?;
        let mut file = tokio::fs::File::open(&real).await.map_err(|e| map_io(&e))?;
        let m = file.metadata().await.map_err(|e| map_io(&e))?;
        if m.is_dir() {
            return Err(StorageError::IsADirectory);
        }
        if offset > 0 && offset <= m.len() {
            file.seek(io::SeekFrom::Start(offset))
                .await
                .map_err(|e| map_io(&e))?;
        }
        Ok((file, m.len()))
    }

    async fn open_write(
        &self,
        _user: &str,
        path: &VirtualPath,
        offset: u64,
        append: bool,
        unique: bool,
    ) -> Result<(LocalUpload, VirtualPath), StorageError> {
        let (target_path, target) = if unique {
            let dir = self.real(path).await?;
            let mut n = 0u32;
            loop {
                let name = format!("ftps-{}-{n}", std::process::id());
                if tokio::fs::symlink_metadata(dir.join(&name)).await.is_err() {
                    break (path.resolve(&name), dir.join(name));
                }
                n += 1;
            }
        } else {
            (path.clone(), self.real(path).await?)
        };
        if tokio::fs::symlink_metadata(&target)
            .await
            .is_ok_and(|m| m.is_dir())
        {
            return Err(StorageError::IsADirectory);
        }
        let parent = target.parent().ok_or(StorageError::PermissionDenied)?;
        let name = format!(
            ".ftps-upload-{}-{}",
            std::process::id(),
            UPLOAD_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let temp = parent.join(name);
        // Resume and append start from a copy of the existing file.
        if (append || offset > 0) && tokio::fs::metadata(&target).await.is_ok() {
            tokio::fs::copy(&target, &temp)
                .await
                .map_err(|e| map_io(&e))?;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&temp)
            .await
            .map_err(|e| map_io(&e))?;
        let len = file.metadata().await.map_err(|e| map_io(&e))?.len();
        let start = if append { len } else { offset.min(len) };
        file.set_len(start).await.map_err(|e| map_io(&e))?;
        file.seek(io::SeekFrom::Start(start))
            .await
            .map_err(|e| map_io(&e))?;
        Ok((LocalUpload { file, temp, target }, target_path))
    }

    async fn commit(&self, upload: LocalUpload, keep: bool) -> Result<(), StorageError> {
        let LocalUpload {
            mut file,
            temp,
            target,
        } = upload;
        if !keep {
            drop(file);
            let _ = tokio::fs::remove_file(&temp).await;
            return Ok(());
        }
        use tokio::io::AsyncWriteExt;
        let synced = async {
            file.flush().await?;
            file.sync_data().await
        }
        .await;
        drop(file);
        if let Err(e) = synced {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(map_io(&e));
        }
        tokio::fs::rename(&temp, &target)
            .await
            .map_err(|e| map_io(&e))
    }
}
