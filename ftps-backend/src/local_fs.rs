//! [`LocalFs`]: a directory of the local file system, confined to its root.

use crate::storage::{Storage, timestamp};
use ftps_proto::listing::EntryKind;
use ftps_proto::server::{Metadata, StorageError};
use ftps_proto::{Timestamp, VirtualPath};
use std::fs;
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

/// Hidden names of uploads in progress; listings skip them.
const UPLOAD_PREFIX: &str = ".ftps-upload-";

/// A directory of the local file system. Paths are joined under the root component by
/// component; then the nearest existing ancestor is canonicalized and must still lie under
/// the canonical root, so a symbolic link pointing outside is refused (`PermissionDenied`).
/// Uploads are written to a hidden temporary name and renamed into place on commit, so a
/// failed upload never leaves a partial file visible.
#[derive(Debug, Clone)]
pub struct LocalFs {
    root: PathBuf,
}

/// An upload in progress under [`LocalFs`], written under a hidden temporary name.
/// Dropped without [`Storage::commit`], it is removed.
#[derive(Debug)]
pub struct LocalUpload {
    file: fs::File,
    temp: PathBuf,
    target: PathBuf,
    done: bool,
}

impl Write for LocalUpload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for LocalUpload {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

static UPLOAD_COUNTER: AtomicU64 = AtomicU64::new(0);

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

fn io_err(e: io::Error) -> StorageError {
    map_io(&e)
}

fn metadata(name: &str, m: &fs::Metadata) -> Metadata {
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
        let root = fs::canonicalize(root.into())?;
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
    fn real(&self, path: &VirtualPath) -> Result<PathBuf, StorageError> {
        let mut real = self.root.clone();
        for c in path.components() {
            real.push(c);
        }
        // The deepest existing ancestor, resolved, must stay inside the root.
        let mut probe = real.clone();
        loop {
            match fs::canonicalize(&probe) {
                Ok(resolved) if resolved.starts_with(&self.root) => return Ok(real),
                Ok(_) => return Err(StorageError::PermissionDenied),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // A dangling symlink also lands here; refuse it if it is one.
                    if fs::symlink_metadata(&probe).is_ok() || !probe.pop() {
                        return Err(StorageError::PermissionDenied);
                    }
                }
                Err(e) => return Err(map_io(&e)),
            }
        }
    }
}

impl Storage for LocalFs {
    type Reader = fs::File;
    type Upload = LocalUpload;

    fn stat(&self, _user: &str, path: &VirtualPath) -> Result<Metadata, StorageError> {
        let m = fs::metadata(self.real(path)?).map_err(io_err)?;
        Ok(metadata(path.file_name().unwrap_or("/"), &m))
    }

    fn list(&self, _user: &str, path: &VirtualPath) -> Result<Vec<Metadata>, StorageError> {
        let real = self.real(path)?;
        let m = fs::metadata(&real).map_err(io_err)?;
        if !m.is_dir() {
            return Ok(vec![metadata(path.file_name().unwrap_or("/"), &m)]);
        }
        let mut out = Vec::new();
        for entry in fs::read_dir(&real).map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with(UPLOAD_PREFIX) {
                continue;
            }
            if let Ok(m) = fs::symlink_metadata(entry.path()) {
                out.push(metadata(&name, &m));
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn make_dir(&self, _user: &str, path: &VirtualPath) -> Result<(), StorageError> {
        fs::create_dir(self.real(path)?).map_err(io_err)
    }

    fn remove_dir(&self, _user: &str, path: &VirtualPath) -> Result<(), StorageError> {
        fs::remove_dir(self.real(path)?).map_err(io_err)
    }

    fn remove_file(&self, _user: &str, path: &VirtualPath) -> Result<(), StorageError> {
        let real = self.real(path)?;
        if fs::symlink_metadata(&real).map_err(io_err)?.is_dir() {
            return Err(StorageError::IsADirectory);
        }
        fs::remove_file(&real).map_err(io_err)
    }

    fn rename(
        &self,
        _user: &str,
        from: &VirtualPath,
        to: &VirtualPath,
    ) -> Result<(), StorageError> {
        let from = self.real(from)?;
        let to = self.real(to)?;
        if fs::symlink_metadata(&to).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(StorageError::PermissionDenied);
        }
        fs::rename(&from, &to).map_err(io_err)
    }

    fn set_modified(
        &self,
        _user: &str,
        path: &VirtualPath,
        time: Timestamp,
    ) -> Result<(), StorageError> {
        let real = self.real(path)?;
        let when = UNIX_EPOCH + Duration::from_secs(u64::try_from(time.to_unix()).unwrap_or(0));
        let file = fs::OpenOptions::new()
            .write(true)
            .open(&real)
            .map_err(io_err)?;
        file.set_modified(when).map_err(io_err)
    }

    fn open_read(
        &self,
        _user: &str,
        path: &VirtualPath,
        offset: u64,
    ) -> Result<(fs::File, u64), StorageError> {
        let mut file = fs::File::open(self.real(path)?).map_err(io_err)?;
        let m = file.metadata().map_err(io_err)?;
        if m.is_dir() {
            return Err(StorageError::IsADirectory);
        }
        if offset > 0 && offset <= m.len() {
            file.seek(io::SeekFrom::Start(offset)).map_err(io_err)?;
        }
        Ok((file, m.len()))
    }

    fn open_write(
        &self,
        _user: &str,
        path: &VirtualPath,
        offset: u64,
        append: bool,
        unique: bool,
    ) -> Result<(LocalUpload, VirtualPath), StorageError> {
        let (target_path, target) = if unique {
            let dir = self.real(path)?;
            let mut n = 0u32;
            loop {
                let name = format!("ftps-{}-{n}", std::process::id());
                if fs::symlink_metadata(dir.join(&name)).is_err() {
                    break (path.resolve(&name), dir.join(name));
                }
                n += 1;
            }
        } else {
            (path.clone(), self.real(path)?)
        };
        if fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
            return Err(StorageError::IsADirectory);
        }
        let parent = target.parent().ok_or(StorageError::PermissionDenied)?;
        let name = format!(
            "{UPLOAD_PREFIX}{}-{}",
            std::process::id(),
            UPLOAD_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let temp = parent.join(name);
        // Resume and append start from a copy of the existing file.
        if (append || offset > 0) && fs::metadata(&target).is_ok() {
            fs::copy(&target, &temp).map_err(io_err)?;
        }
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&temp)
            .map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        let start = if append { len } else { offset.min(len) };
        file.set_len(start).map_err(io_err)?;
        file.seek(io::SeekFrom::Start(start)).map_err(io_err)?;
        let upload = LocalUpload {
            file,
            temp,
            target,
            done: false,
        };
        Ok((upload, target_path))
    }

    fn commit(&self, mut upload: LocalUpload, keep: bool) -> Result<(), StorageError> {
        if !keep {
            return Ok(()); // Dropping removes the temporary file.
        }
        upload
            .file
            .flush()
            .and_then(|()| upload.file.sync_data())
            .map_err(io_err)?;
        fs::rename(&upload.temp, &upload.target).map_err(io_err)?;
        upload.done = true;
        Ok(())
    }
}
