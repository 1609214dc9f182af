//! [`LocalFs`]: a directory of the local file system, confined to its root.
//!
//! Confinement is by construction, not by checking: the root is opened once as a directory
//! handle, and every operation resolves its path *beneath that handle* (cap-std: on Linux
//! `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`, elsewhere its own resolution
//! one component at a time), then acts on what it resolved — `mkdirat`, `unlinkat` and
//! `renameat` relative to the resolved parent directory, `fstat` and IO on the opened file.
//! No path is checked and then opened again by name, so swapping a directory for a
//! symbolic link between two commands (or during one) cannot lead outside the root.
//! Symbolic links that stay inside the root are followed; those that leave it, absolute
//! ones included, are refused (550), as are `..` components (the protocol core never
//! produces them anyway).
//!
//! Only regular files and directories are served: a FIFO, socket or device is opened
//! without blocking, seen for what it is, and refused.
//!
//! Uploads: a new or replaced file (STOR) is written as an unnamed file (`O_TMPFILE`) in
//! its directory and given its name on commit — it cannot be reached by any FTP command
//! while in progress, and a crash leaves nothing behind. Where the file system has no
//! unnamed files, a randomly named one in the same directory stands in (visible, not
//! guessable, removed when the upload fails). APPE and REST+STOR write in place, under an
//! exclusive lock (a second writer of the same file gets 450), so they cost no disk
//! beyond the bytes they receive; a broken one keeps what arrived, ready to resume. STOU
//! creates its random name exclusively. An upload that must not replace anything
//! ([`Storage::open_write_new`], for anonymous uploads) is refused if the name exists,
//! and is published by `linkat` (or `link`) to the name, which fails rather than replace
//! a file that appeared meanwhile.

use crate::listing::Entries;
use crate::storage::{Storage, timestamp};
use argon2::password_hash::rand_core::{OsRng, RngCore};
use cap_std::ambient_authority;
use cap_std::fs::{Dir, Metadata as CapMetadata, MetadataExt, OpenOptions, OpenOptionsExt};
use ftps_proto::listing::EntryKind;
use ftps_proto::server::{Metadata, StorageError};
use ftps_proto::{Timestamp, VirtualPath};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// A directory of the local file system: every path is resolved beneath an open handle
/// of the root (no check-then-open by name; symbolic links that leave the root refused),
/// uploads are unnamed until committed, appends write in place under a lock, and only
/// regular files and directories are served.
#[derive(Debug, Clone)]
pub struct LocalFs {
    root: Arc<Dir>,
    path: PathBuf,
}

/// An upload in progress under [`LocalFs`]. Dropped without [`Storage::commit`], a new
/// file is discarded; an in-place write keeps what arrived.
#[derive(Debug)]
pub struct LocalUpload {
    file: fs::File,
    dir: Dir,
    name: OsString,
    how: Publish,
    /// Publishing may replace a file of the same name (not for
    /// [`Storage::open_write_new`]).
    replace: bool,
    done: bool,
}

/// How an upload becomes visible under its name.
#[derive(Debug)]
enum Publish {
    /// An unnamed file (`O_TMPFILE`), linked in on commit.
    Link,
    /// A randomly named file in the same directory, renamed over the target on commit.
    Rename { temp: OsString },
    /// Written in place (APPE, REST+STOR, STOU). `truncate`: cut the file at the end of
    /// what was written (REST+STOR replaces the rest). `created`: a file this upload made
    /// (STOU), removed if the upload fails.
    InPlace { truncate: bool, created: bool },
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
        if self.done {
            return;
        }
        match &self.how {
            // Unnamed: closing the file discards it.
            Publish::Link | Publish::InPlace { created: false, .. } => {}
            Publish::Rename { temp } => {
                let _ = self.dir.remove_file(temp);
            }
            Publish::InPlace { created: true, .. } => {
                let _ = self.dir.remove_file(&self.name);
            }
        }
    }
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
        io::ErrorKind::WouldBlock => StorageError::Busy,
        // `RESOLVE_BENEATH` refusing a way out, and a symlink loop.
        _ if e.raw_os_error() == Some(rustix::io::Errno::XDEV.raw_os_error()) => {
            StorageError::PermissionDenied
        }
        _ if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            StorageError::PermissionDenied
        }
        // Opening a FIFO for writing without a reader, or a device without its driver:
        // not a regular file, not served.
        _ if [rustix::io::Errno::NXIO, rustix::io::Errno::NODEV]
            .iter()
            .any(|n| e.raw_os_error() == Some(n.raw_os_error())) =>
        {
            StorageError::PermissionDenied
        }
        _ => StorageError::Other(e.to_string()),
    }
}

fn io_err(e: io::Error) -> StorageError {
    map_io(&e)
}

fn metadata(name: &str, m: &CapMetadata) -> Metadata {
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
        modified: m
            .modified()
            .ok()
            .map(cap_std::time::SystemTime::into_std)
            .and_then(timestamp),
        mode: Some(m.mode() & 0o7777),
        writable: !m.permissions().readonly(),
        unique: Some(format!("{:x}g{:x}", m.dev(), m.ino())),
    }
}

/// The path of `path` relative to the root (`.` for the root itself).
fn relative(path: &VirtualPath) -> PathBuf {
    let rel: PathBuf = path.components().collect();
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    }
}

/// `O_NONBLOCK`, so that opening a FIFO cannot hang; cleared once the file is known to be
/// a regular one.
fn nonblocking() -> i32 {
    rustix::fs::OFlags::NONBLOCK.bits() as i32
}

/// A random name component (64 bits from the OS).
fn random_name(prefix: &str) -> OsString {
    format!("{prefix}{:016x}", OsRng.next_u64()).into()
}

impl LocalFs {
    /// Serves `root`, which must be an existing directory.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Self> {
        let path = fs::canonicalize(root.into())?;
        let dir = Dir::open_ambient_dir(&path, ambient_authority())?;
        Ok(Self {
            root: Arc::new(dir),
            path,
        })
    }

    /// The canonical root.
    pub fn root(&self) -> &Path {
        &self.path
    }

    /// The parent directory of `path` (opened beneath the root) and its last name.
    fn parent(&self, path: &VirtualPath) -> Result<(Dir, OsString), StorageError> {
        let mut components: Vec<&str> = path.components().collect();
        let name = components.pop().ok_or(StorageError::PermissionDenied)?;
        let dir = if components.is_empty() {
            self.root.try_clone().map_err(io_err)?
        } else {
            let rel: PathBuf = components.into_iter().collect();
            self.root.open_dir(rel).map_err(io_err)?
        };
        Ok((dir, OsString::from(name)))
    }

    /// Opens a regular file beneath the root with `options` (FIFOs, sockets and devices
    /// are refused without blocking); the file and its metadata.
    fn open_regular(
        dir: &Dir,
        path: &Path,
        options: &mut OpenOptions,
    ) -> Result<(fs::File, CapMetadata), StorageError> {
        let file = dir
            .open_with(path, options.custom_flags(nonblocking()))
            .map_err(io_err)?
            .into_std();
        let m = CapMetadata::from_file(&file).map_err(io_err)?;
        if m.is_dir() {
            return Err(StorageError::IsADirectory);
        }
        if !m.is_file() {
            return Err(StorageError::PermissionDenied);
        }
        rustix::fs::fcntl_setfl(&file, rustix::fs::OFlags::empty())
            .map_err(|e| io_err(e.into()))?;
        Ok((file, m))
    }

    /// A new file in `dir` for an upload: unnamed (`O_TMPFILE`) where the file system has
    /// them, else under a random name.
    fn unnamed(dir: &Dir) -> Result<(fs::File, Publish), StorageError> {
        match rustix::fs::openat(
            dir,
            ".",
            rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::TMPFILE | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::from_raw_mode(0o666),
        ) {
            Ok(fd) => Ok((fs::File::from(fd), Publish::Link)),
            Err(_) => {
                let temp = random_name(".ftps-upload-");
                let mut options = OpenOptions::new();
                options.write(true).create_new(true);
                let file = dir.open_with(&temp, &options).map_err(io_err)?.into_std();
                Ok((file, Publish::Rename { temp }))
            }
        }
    }

    /// Whether `name` in `dir` is a symbolic link (uploads and renames never replace one).
    fn is_symlink(dir: &Dir, name: &OsStr) -> bool {
        dir.symlink_metadata(name)
            .is_ok_and(|m| m.file_type().is_symlink())
    }
}

/// Listings of directories up to this size come sorted; larger ones stream unsorted.
pub(crate) const SORTED_UP_TO: usize = 1024;

/// A directory's entries as they are read (names that are not UTF-8 are skipped: no FTP
/// command could name them).
struct Streamed {
    dir: Dir,
    read: cap_std::fs::ReadDir,
}

impl Iterator for Streamed {
    type Item = Metadata;

    fn next(&mut self) -> Option<Metadata> {
        loop {
            let entry = self.read.next()?.ok()?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if let Ok(m) = self.dir.symlink_metadata(&name) {
                return Some(metadata(&name, &m));
            }
        }
    }
}

/// Takes the exclusive write lock of an upload's file, or says another write holds it.
fn lock(file: &fs::File) -> Result<(), StorageError> {
    rustix::fs::flock(file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(|e| {
        if e == rustix::io::Errno::WOULDBLOCK {
            StorageError::Busy
        } else {
            io_err(e.into())
        }
    })
}

/// Whether another upload is writing `name` in `dir` in place (450 for a second writer).
fn busy(dir: &Dir, name: &OsStr) -> Result<(), StorageError> {
    let mut options = OpenOptions::new();
    options.read(true).custom_flags(nonblocking());
    match dir.open_with(name, &options) {
        Ok(f) => {
            let f = f.into_std();
            if CapMetadata::from_file(&f).is_ok_and(|m| m.is_file()) {
                lock(&f)?;
            }
            Ok(())
        }
        Err(_) => Ok(()),
    }
}

impl Storage for LocalFs {
    type Reader = fs::File;
    type Upload = LocalUpload;

    fn stat(&self, _user: &str, path: &VirtualPath) -> Result<Metadata, StorageError> {
        let m = self.root.metadata(relative(path)).map_err(io_err)?;
        Ok(metadata(path.file_name().unwrap_or("/"), &m))
    }

    fn list(&self, _user: &str, path: &VirtualPath) -> Result<Vec<Metadata>, StorageError> {
        let rel = relative(path);
        let dir = match self.root.open_dir(&rel) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
                let m = self.root.metadata(&rel).map_err(io_err)?;
                return Ok(vec![metadata(path.file_name().unwrap_or("/"), &m)]);
            }
            Err(e) => return Err(io_err(e)),
        };
        let mut out = Vec::new();
        for entry in dir.entries().map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if let Ok(m) = dir.symlink_metadata(&name) {
                out.push(metadata(&name, &m));
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Streams the directory as it is read: a directory of up to 1024
    /// entries comes sorted by name; a larger one in the order the file system gives,
    /// so that no listing holds more than that many entries at once.
    fn list_entries(&self, _user: &str, path: &VirtualPath) -> Result<Entries, StorageError> {
        let rel = relative(path);
        let dir = match self.root.open_dir(&rel) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
                let m = self.root.metadata(&rel).map_err(io_err)?;
                let one = metadata(path.file_name().unwrap_or("/"), &m);
                return Ok(Box::new(std::iter::once(one)));
            }
            Err(e) => return Err(io_err(e)),
        };
        let read = dir.entries().map_err(io_err)?;
        let mut streamed = Streamed { dir, read };
        let mut first: Vec<Metadata> = streamed.by_ref().take(SORTED_UP_TO).collect();
        if first.len() < SORTED_UP_TO {
            first.sort_by(|a, b| a.name.cmp(&b.name));
            return Ok(Box::new(first.into_iter()));
        }
        Ok(Box::new(first.into_iter().chain(streamed)))
    }

    fn make_dir(&self, _user: &str, path: &VirtualPath) -> Result<(), StorageError> {
        let (dir, name) = self.parent(path)?;
        dir.create_dir(name).map_err(io_err)
    }

    fn remove_dir(&self, _user: &str, path: &VirtualPath) -> Result<(), StorageError> {
        let (dir, name) = self.parent(path)?;
        dir.remove_dir(name).map_err(io_err)
    }

    fn remove_file(&self, _user: &str, path: &VirtualPath) -> Result<(), StorageError> {
        let (dir, name) = self.parent(path)?;
        // unlinkat on a directory fails with EISDIR (Linux) or EPERM; say which it is.
        dir.remove_file(&name)
            .map_err(|e| match dir.symlink_metadata(&name) {
                Ok(m) if m.is_dir() => StorageError::IsADirectory,
                _ => io_err(e),
            })
    }

    fn rename(
        &self,
        _user: &str,
        from: &VirtualPath,
        to: &VirtualPath,
    ) -> Result<(), StorageError> {
        let (from_dir, from_name) = self.parent(from)?;
        let (to_dir, to_name) = self.parent(to)?;
        if Self::is_symlink(&to_dir, &to_name) {
            return Err(StorageError::PermissionDenied);
        }
        from_dir
            .rename(&from_name, &to_dir, &to_name)
            .map_err(io_err)
    }

    fn set_modified(
        &self,
        _user: &str,
        path: &VirtualPath,
        time: Timestamp,
    ) -> Result<(), StorageError> {
        let when = UNIX_EPOCH + Duration::from_secs(u64::try_from(time.to_unix()).unwrap_or(0));
        let (file, _) =
            Self::open_regular(&self.root, &relative(path), OpenOptions::new().write(true))?;
        file.set_modified(when).map_err(io_err)
    }

    fn open_read(
        &self,
        _user: &str,
        path: &VirtualPath,
        offset: u64,
    ) -> Result<(fs::File, u64), StorageError> {
        let (mut file, m) =
            Self::open_regular(&self.root, &relative(path), OpenOptions::new().read(true))?;
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
        if unique {
            let dir = self.root.open_dir(relative(path)).map_err(io_err)?;
            for _ in 0..16 {
                let name = random_name("ftps-");
                let mut options = OpenOptions::new();
                options.write(true).create_new(true);
                match dir.open_with(&name, &options) {
                    Ok(file) => {
                        let file = file.into_std();
                        lock(&file)?;
                        let shown = path.resolve(&name.to_string_lossy());
                        let how = Publish::InPlace {
                            truncate: false,
                            created: true,
                        };
                        let upload = LocalUpload {
                            file,
                            dir,
                            name,
                            how,
                            replace: true,
                            done: false,
                        };
                        return Ok((upload, shown));
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(io_err(e)),
                }
            }
            return Err(StorageError::Other("no unique name found".into()));
        }
        let (dir, name) = self.parent(path)?;
        if Self::is_symlink(&dir, &name) {
            // An upload never replaces (or writes through) a symbolic link.
            return Err(StorageError::PermissionDenied);
        }
        if append || offset > 0 {
            // In place, from the end (APPE) or from `offset` (REST + STOR), which must lie
            // within the file (RFC 3659 §5.3: a REST past the end is 554).
            let mut options = OpenOptions::new();
            options.write(true).create(append);
            let (mut file, m) = match Self::open_regular(&dir, Path::new(&name), &mut options) {
                Ok(opened) => opened,
                Err(StorageError::NotFound) if !append => return Err(StorageError::InvalidOffset),
                Err(e) => return Err(e),
            };
            lock(&file)?;
            let start = if append { m.len() } else { offset };
            if start > m.len() {
                return Err(StorageError::InvalidOffset);
            }
            file.seek(io::SeekFrom::Start(start)).map_err(io_err)?;
            let how = Publish::InPlace {
                truncate: !append,
                created: false,
            };
            let upload = LocalUpload {
                file,
                dir,
                name,
                how,
                replace: true,
                done: false,
            };
            return Ok((upload, path.clone()));
        }
        match dir.symlink_metadata(&name) {
            Ok(m) if m.is_dir() => return Err(StorageError::IsADirectory),
            Ok(_) => busy(&dir, &name)?,
            Err(_) => {}
        }
        let (file, how) = Self::unnamed(&dir)?;
        let upload = LocalUpload {
            file,
            dir,
            name,
            how,
            replace: true,
            done: false,
        };
        Ok((upload, path.clone()))
    }

    fn open_write_new(
        &self,
        _user: &str,
        path: &VirtualPath,
    ) -> Result<(LocalUpload, VirtualPath), StorageError> {
        let (dir, name) = self.parent(path)?;
        if dir.symlink_metadata(&name).is_ok() {
            // Whatever it is (file, directory, link), the name is taken.
            return Err(StorageError::AlreadyExists);
        }
        let (file, how) = Self::unnamed(&dir)?;
        let upload = LocalUpload {
            file,
            dir,
            name,
            how,
            replace: false,
            done: false,
        };
        Ok((upload, path.clone()))
    }

    fn commit(&self, mut upload: LocalUpload, keep: bool) -> Result<(), StorageError> {
        if !keep {
            return Ok(()); // Dropping discards it (see `LocalUpload`'s Drop).
        }
        upload
            .file
            .flush()
            .and_then(|()| upload.file.sync_data())
            .map_err(io_err)?;
        match &upload.how {
            Publish::InPlace { truncate, .. } => {
                if *truncate {
                    let end = upload.file.stream_position().map_err(io_err)?;
                    upload.file.set_len(end).map_err(io_err)?;
                }
            }
            Publish::Rename { temp } if !upload.replace => {
                // link(2) fails on an existing name; then the temporary name goes.
                let linked = upload.dir.hard_link(temp, &upload.dir, &upload.name);
                let _ = upload.dir.remove_file(temp);
                linked.map_err(io_err)?;
            }
            Publish::Rename { temp } => {
                busy(&upload.dir, &upload.name)?;
                upload
                    .dir
                    .rename(temp, &upload.dir, &upload.name)
                    .map_err(io_err)?;
            }
            Publish::Link => {
                // Without `replace`, link the unnamed file to its name directly (linkat
                // fails on an existing name). Else give it a random name, then rename it
                // over the target (linkat cannot replace a name).
                let temp = if upload.replace {
                    busy(&upload.dir, &upload.name)?;
                    random_name(".ftps-commit-")
                } else {
                    upload.name.clone()
                };
                let proc_path = format!("/proc/self/fd/{}", {
                    use std::os::fd::AsRawFd;
                    upload.file.as_raw_fd()
                });
                rustix::fs::linkat(
                    rustix::fs::CWD,
                    proc_path.as_str(),
                    &upload.dir,
                    &temp,
                    rustix::fs::AtFlags::SYMLINK_FOLLOW,
                )
                .or_else(|e| {
                    if e == rustix::io::Errno::EXIST {
                        return Err(e); // The name is taken (without `replace`).
                    }
                    rustix::fs::linkat(
                        &upload.file,
                        "",
                        &upload.dir,
                        &temp,
                        rustix::fs::AtFlags::EMPTY_PATH,
                    )
                })
                .map_err(|e| io_err(e.into()))?;
                if upload.replace
                    && let Err(e) = upload.dir.rename(&temp, &upload.dir, &upload.name)
                {
                    let _ = upload.dir.remove_file(&temp);
                    return Err(io_err(e));
                }
            }
        }
        upload.done = true;
        Ok(())
    }
}
