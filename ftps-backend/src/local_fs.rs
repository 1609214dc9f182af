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
//! Uploads: a new or replaced file (STOR, STOU) is written as an unnamed file
//! (`O_TMPFILE`) in its directory and given its name on commit — it cannot be reached by
//! any FTP command while in progress, and a crash leaves nothing behind. Where the file
//! system has no unnamed files, a randomly named one in the same directory stands in,
//! under a name that is not UTF-8 (see [`unreachable_name`]): no FTP command can name it
//! and no listing shows it, but a crash leaves it behind (and a file system that refuses
//! such names gets a visible, unguessable `.ftps-upload-*` name instead). It is removed
//! when the upload fails. APPE and REST+STOR write in place, under an exclusive lock (a
//! second writer of the same file gets 450), so they cost no disk beyond the bytes they
//! receive; a broken one keeps what arrived, ready to resume. They write only to a
//! regular file with one link: a hard link that a local user put in the tree may lead to
//! a file outside it, and is refused (550). An in-place write whose file was deleted
//! while it ran (DELE, or a local `rm`) fails at commit (451) instead of reporting
//! success for bytes no name holds. An upload that must not replace anything
//! ([`BlockingStorage::open_write_new`], for anonymous uploads; STOU) is published by `linkat`
//! (or `link`) to the name, which fails rather than replace a file that appeared
//! meanwhile.
//!
//! STOU: RFC 1123 §4.1.2.9 has the server name the file in the 1xx reply that *precedes*
//! the transfer ("150 FILE: pppp"), and the core names the path [`BlockingStorage::open_write`]
//! returns in its 150 reply. So the random name is chosen when the upload opens
//! (one that does not exist then), the bytes go to an unnamed file like STOR's, and only
//! commit gives the file that name, with a `linkat` that never replaces: a name that was
//! taken while the upload ran (64 random bits: in practice only by someone who saw the
//! 150 reply) fails the upload with 451 and nothing is overwritten. Picking another name
//! at commit is not an option: the client was told the first one, and the final 226
//! names none. Reserving the name up front would need a file under it, visible during
//! the upload and left by a crash: what this design avoids.

use crate::blocking_storage::BlockingStorage;
use crate::cached_read::LocalFile;
use crate::listing::Entries;
use crate::storage::{STAT_ENTRIES, timestamp};
use crate::user::User;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use cap_std::ambient_authority;
use cap_std::fs::{Dir, Metadata as CapMetadata, MetadataExt, OpenOptions, OpenOptionsExt};
use ftps_proto::listing::EntryKind;
use ftps_proto::server::{Metadata, StorageError};
use ftps_proto::{Timestamp, VirtualPath};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Seek, Write};
use std::os::unix::ffi::OsStringExt;
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
    /// Uploads use unnamed files (`O_TMPFILE`) where the file system has them; false
    /// only in tests of the fallback ([`LocalFs::without_unnamed_files`]).
    unnamed_files: bool,
}

/// An upload in progress under [`LocalFs`]. Dropped without [`BlockingStorage::commit`], a new
/// file is discarded; an in-place write keeps what arrived.
#[derive(Debug)]
pub struct LocalUpload {
    file: fs::File,
    dir: Dir,
    name: OsString,
    how: Publish,
    /// Publishing may replace a file of the same name (not for
    /// [`BlockingStorage::open_write_new`] nor STOU).
    replace: bool,
    /// STOU: the name was announced to the client before the transfer, so a file that
    /// took it meanwhile fails the upload (451) rather than being replaced or the upload
    /// landing under another name.
    announced: bool,
    done: bool,
}

/// How an upload becomes visible under its name.
#[derive(Debug)]
enum Publish {
    /// An unnamed file (`O_TMPFILE`), linked in on commit.
    Link,
    /// A randomly named file in the same directory (named so that no FTP command can
    /// reach it, where the file system allows), renamed over the target (or linked to
    /// it, without `replace`) on commit.
    Rename { temp: OsString },
    /// Written in place (APPE, REST+STOR). `truncate`: cut the file at the end of what
    /// was written (REST+STOR replaces the rest).
    InPlace { truncate: bool },
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
            // Unnamed: closing the file discards it. In place: what arrived stays.
            Publish::Link | Publish::InPlace { .. } => {}
            Publish::Rename { temp } => {
                let _ = self.dir.remove_file(temp);
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

/// A random name that no FTP command can produce, for temporary files: paths reach the
/// storage as UTF-8 (`VirtualPath`), and this name is not (a 0xFF byte after `prefix`),
/// so no RETR, SIZE, DELE, RNFR or STOR can name it, and listings skip it (see
/// [`Streamed`]). A crash still leaves it behind, invisible to FTP users.
fn unreachable_name(prefix: &str) -> OsString {
    let mut bytes = prefix.as_bytes().to_vec();
    bytes.push(0xff);
    bytes.extend_from_slice(format!("{:016x}", OsRng.next_u64()).as_bytes());
    OsString::from_vec(bytes)
}

/// Runs `make` with an [`unreachable_name`] with `prefix`; if the file system refuses
/// names that are not UTF-8 (`EILSEQ`, or `EINVAL` as vfat and exfat say it), with a
/// random UTF-8 one instead: visible and reachable by FTP commands, but not guessable.
fn with_temp_name<T>(
    prefix: &str,
    mut make: impl FnMut(&OsStr) -> io::Result<T>,
) -> io::Result<(T, OsString)> {
    let name = unreachable_name(prefix);
    match make(&name) {
        Err(e)
            if [rustix::io::Errno::ILSEQ, rustix::io::Errno::INVAL]
                .iter()
                .any(|n| e.raw_os_error() == Some(n.raw_os_error())) =>
        {
            let name = random_name(prefix);
            make(&name).map(|t| (t, name))
        }
        other => other.map(|t| (t, name)),
    }
}

/// Refuses to write in place to a file with more than one link: a hard link that a local
/// user put in the served tree may lead to a file outside it (or to another user's file
/// inside), and writing through it would change that file. (STOR is not affected: it
/// publishes a new file under the name, leaving the other names' file as it was.)
fn single_link(m: &CapMetadata) -> Result<(), StorageError> {
    if m.nlink() > 1 {
        return Err(StorageError::PermissionDenied);
    }
    Ok(())
}

impl LocalFs {
    /// Serves `root`, which must be an existing directory.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Self> {
        let path = fs::canonicalize(root.into())?;
        let dir = Dir::open_ambient_dir(&path, ambient_authority())?;
        Ok(Self {
            root: Arc::new(dir),
            path,
            unnamed_files: true,
        })
    }

    /// Makes uploads use the fallback for file systems without unnamed files (a
    /// randomly named temporary file) even where they exist. For tests of that fallback.
    #[doc(hidden)]
    #[must_use]
    pub fn without_unnamed_files(mut self) -> Self {
        self.unnamed_files = false;
        self
    }

    /// The canonical root.
    pub fn root(&self) -> &Path {
        &self.path
    }

    /// The user's home: the directory every path of `user` is beneath (the root, or its
    /// [`home`](User::home) opened beneath the root). Paths are opened beneath it, so a
    /// symbolic link cannot lead out of the home either.
    fn home<'a>(&'a self, user: &User) -> Result<Home<'a>, StorageError> {
        if user.home.is_root() {
            return Ok(Home::Root(&self.root));
        }
        self.root
            .open_dir(relative(&user.home))
            .map(Home::Own)
            .map_err(io_err)
    }

    /// The parent directory of `path` (opened beneath `home`) and its last name.
    fn parent(home: &Dir, path: &VirtualPath) -> Result<(Dir, OsString), StorageError> {
        let mut components: Vec<&str> = path.components().collect();
        let name = components.pop().ok_or(StorageError::PermissionDenied)?;
        let dir = if components.is_empty() {
            home.try_clone().map_err(io_err)?
        } else {
            let rel: PathBuf = components.into_iter().collect();
            home.open_dir(rel).map_err(io_err)?
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
    /// them, else under a random name no FTP command can produce ([`with_temp_name`]).
    fn unnamed(&self, dir: &Dir) -> Result<(fs::File, Publish), StorageError> {
        if self.unnamed_files
            && let Ok(fd) = rustix::fs::openat(
                dir,
                ".",
                rustix::fs::OFlags::WRONLY
                    | rustix::fs::OFlags::TMPFILE
                    | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::from_raw_mode(0o666),
            )
        {
            return Ok((fs::File::from(fd), Publish::Link));
        }
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        let (file, temp) = with_temp_name(".ftps-upload-", |name| dir.open_with(name, &options))
            .map_err(io_err)?;
        Ok((file.into_std(), Publish::Rename { temp }))
    }

    /// Whether `name` in `dir` is a symbolic link (uploads and renames never replace one).
    fn is_symlink(dir: &Dir, name: &OsStr) -> bool {
        dir.symlink_metadata(name)
            .is_ok_and(|m| m.file_type().is_symlink())
    }
}

/// A user's home: the root itself, or a directory opened beneath it.
enum Home<'a> {
    Root(&'a Dir),
    Own(Dir),
}

impl std::ops::Deref for Home<'_> {
    type Target = Dir;

    fn deref(&self) -> &Dir {
        match self {
            Home::Root(d) => d,
            Home::Own(d) => d,
        }
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
    type Item = Result<Metadata, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let entry = match self.read.next()? {
                Ok(entry) => entry,
                Err(e) => return Some(Err(io_err(e))),
            };
            // A name that is not UTF-8 cannot be shown in a listing of this server.
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            match self.dir.symlink_metadata(&name) {
                Ok(m) => return Some(Ok(metadata(&name, &m))),
                // Removed since the directory was read: not an entry any more.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Some(Err(io_err(e))),
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

impl BlockingStorage for LocalFs {
    type Reader = LocalFile;
    type Upload = LocalUpload;

    /// A file on tmpfs or ramfs, and on Linux what the page cache holds of others
    /// (`preadv2` with `RWF_NOWAIT`), is read at once; the rest on the pool (see
    /// [`LocalFile`]).
    fn read_now(
        &self,
        reader: LocalFile,
        buf: Vec<u8>,
    ) -> Result<crate::Chunk<LocalFile>, crate::ReadLater<LocalFile>> {
        crate::cached_read::read_now(reader, buf)
    }

    fn stat(&self, user: &User, path: &VirtualPath) -> Result<Metadata, StorageError> {
        let home = self.home(user)?;
        let m = home.metadata(relative(path)).map_err(io_err)?;
        Ok(metadata(path.file_name().unwrap_or("/"), &m))
    }

    /// At most [`STAT_ENTRIES`] entries, sorted by name: what a STAT reply can show.
    /// Reading stops there, so a huge directory costs no more time or memory than that;
    /// of a larger directory, which entries come is the file system's order. A listing
    /// of every entry is [`list_entries`](BlockingStorage::list_entries).
    fn list(&self, user: &User, path: &VirtualPath) -> Result<Vec<Metadata>, StorageError> {
        let home = self.home(user)?;
        let rel = relative(path);
        let dir = match home.open_dir(&rel) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
                let m = home.metadata(&rel).map_err(io_err)?;
                return Ok(vec![metadata(path.file_name().unwrap_or("/"), &m)]);
            }
            Err(e) => return Err(io_err(e)),
        };
        let mut out = Vec::new();
        for entry in dir.entries().map_err(io_err)? {
            if out.len() >= STAT_ENTRIES {
                break; // Reading on would only cost time: no STAT shows more.
            }
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
    fn list_entries(&self, user: &User, path: &VirtualPath) -> Result<Entries, StorageError> {
        let home = self.home(user)?;
        let rel = relative(path);
        let dir = match home.open_dir(&rel) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
                let m = home.metadata(&rel).map_err(io_err)?;
                let one = metadata(path.file_name().unwrap_or("/"), &m);
                return Ok(Box::new(std::iter::once(Ok(one))));
            }
            Err(e) => return Err(io_err(e)),
        };
        let read = dir.entries().map_err(io_err)?;
        let mut streamed = Streamed { dir, read };
        let mut first: Vec<Metadata> = streamed
            .by_ref()
            .take(SORTED_UP_TO)
            .collect::<Result<_, _>>()?;
        if first.len() < SORTED_UP_TO {
            first.sort_by(|a, b| a.name.cmp(&b.name));
            return Ok(Box::new(first.into_iter().map(Ok)));
        }
        Ok(Box::new(first.into_iter().map(Ok).chain(streamed)))
    }

    fn make_dir(&self, user: &User, path: &VirtualPath) -> Result<(), StorageError> {
        let home = self.home(user)?;
        let (dir, name) = Self::parent(&home, path)?;
        dir.create_dir(name).map_err(io_err)
    }

    fn remove_dir(&self, user: &User, path: &VirtualPath) -> Result<(), StorageError> {
        let home = self.home(user)?;
        let (dir, name) = Self::parent(&home, path)?;
        dir.remove_dir(name).map_err(io_err)
    }

    fn remove_file(&self, user: &User, path: &VirtualPath) -> Result<(), StorageError> {
        let home = self.home(user)?;
        let (dir, name) = Self::parent(&home, path)?;
        // unlinkat on a directory fails with EISDIR (Linux) or EPERM; say which it is.
        dir.remove_file(&name)
            .map_err(|e| match dir.symlink_metadata(&name) {
                Ok(m) if m.is_dir() => StorageError::IsADirectory,
                _ => io_err(e),
            })
    }

    fn rename(
        &self,
        user: &User,
        from: &VirtualPath,
        to: &VirtualPath,
    ) -> Result<(), StorageError> {
        let home = self.home(user)?;
        let (from_dir, from_name) = Self::parent(&home, from)?;
        let (to_dir, to_name) = Self::parent(&home, to)?;
        if Self::is_symlink(&to_dir, &to_name) {
            return Err(StorageError::PermissionDenied);
        }
        from_dir
            .rename(&from_name, &to_dir, &to_name)
            .map_err(io_err)
    }

    fn set_modified(
        &self,
        user: &User,
        path: &VirtualPath,
        time: Timestamp,
    ) -> Result<(), StorageError> {
        let home = self.home(user)?;
        let when = UNIX_EPOCH + Duration::from_secs(u64::try_from(time.to_unix()).unwrap_or(0));
        let (file, _) = Self::open_regular(&home, &relative(path), OpenOptions::new().write(true))?;
        file.set_modified(when).map_err(io_err)
    }

    fn open_read(
        &self,
        user: &User,
        path: &VirtualPath,
        offset: u64,
    ) -> Result<(LocalFile, u64), StorageError> {
        let home = self.home(user)?;
        let (mut file, m) =
            Self::open_regular(&home, &relative(path), OpenOptions::new().read(true))?;
        if offset > 0 && offset <= m.len() {
            file.seek(io::SeekFrom::Start(offset)).map_err(io_err)?;
        }
        Ok((LocalFile::new(file), m.len()))
    }

    fn open_write(
        &self,
        user: &User,
        path: &VirtualPath,
        offset: u64,
        append: bool,
        unique: bool,
    ) -> Result<(LocalUpload, VirtualPath), StorageError> {
        let home = self.home(user)?;
        if unique {
            // The name is chosen now, for the 150 reply that precedes the transfer (RFC
            // 1123 §4.1.2.9), and taken only at commit, where a name that appeared
            // meanwhile fails the upload instead of being replaced (see the module docs).
            let dir = home.open_dir(relative(path)).map_err(io_err)?;
            let mut free = None;
            for _ in 0..16 {
                let candidate = random_name("ftps-");
                match dir.symlink_metadata(&candidate) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        free = Some(candidate);
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => return Err(io_err(e)),
                }
            }
            let name = free.ok_or_else(|| StorageError::Other("no unique name found".into()))?;
            let (file, how) = self.unnamed(&dir)?;
            let shown = path.resolve(&name.to_string_lossy());
            let upload = LocalUpload {
                file,
                dir,
                name,
                how,
                replace: false,
                announced: true,
                done: false,
            };
            return Ok((upload, shown));
        }
        let (dir, name) = Self::parent(&home, path)?;
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
            single_link(&m)?;
            lock(&file)?;
            let start = if append { m.len() } else { offset };
            if start > m.len() {
                return Err(StorageError::InvalidOffset);
            }
            file.seek(io::SeekFrom::Start(start)).map_err(io_err)?;
            let how = Publish::InPlace { truncate: !append };
            let upload = LocalUpload {
                file,
                dir,
                name,
                how,
                replace: true,
                announced: false,
                done: false,
            };
            return Ok((upload, path.clone()));
        }
        match dir.symlink_metadata(&name) {
            Ok(m) if m.is_dir() => return Err(StorageError::IsADirectory),
            Ok(_) => busy(&dir, &name)?,
            Err(_) => {}
        }
        let (file, how) = self.unnamed(&dir)?;
        let upload = LocalUpload {
            file,
            dir,
            name,
            how,
            replace: true,
            announced: false,
            done: false,
        };
        Ok((upload, path.clone()))
    }

    fn open_write_new(
        &self,
        user: &User,
        path: &VirtualPath,
    ) -> Result<(LocalUpload, VirtualPath), StorageError> {
        let home = self.home(user)?;
        let (dir, name) = Self::parent(&home, path)?;
        if dir.symlink_metadata(&name).is_ok() {
            // Whatever it is (file, directory, link), the name is taken.
            return Err(StorageError::AlreadyExists);
        }
        let (file, how) = self.unnamed(&dir)?;
        let upload = LocalUpload {
            file,
            dir,
            name,
            how,
            replace: false,
            announced: false,
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
        let published = Self::publish(&upload);
        if published.is_ok() {
            upload.done = true;
        }
        match published {
            // STOU's name, announced in the 150 reply, was taken while the upload ran:
            // nothing is replaced, and the client may try again (a new name).
            Err(StorageError::AlreadyExists) if upload.announced => {
                Err(StorageError::Other(format!(
                    "STOU: the name {} was taken while the upload ran; upload discarded",
                    upload.name.to_string_lossy()
                )))
            }
            other => other,
        }
    }
}

impl LocalFs {
    /// Gives a committed upload its name (or, in place, its end).
    fn publish(upload: &LocalUpload) -> Result<(), StorageError> {
        match &upload.how {
            Publish::InPlace { truncate } => {
                if *truncate {
                    let end = (&upload.file).stream_position().map_err(io_err)?;
                    upload.file.set_len(end).map_err(io_err)?;
                }
                // Deleted while the upload ran (DELE, or a local rm; a rename keeps the
                // link): no name holds what arrived, so this is no success.
                let m = CapMetadata::from_file(&upload.file).map_err(io_err)?;
                if m.nlink() == 0 {
                    return Err(StorageError::Other(format!(
                        "{} was deleted while the upload ran; what arrived is lost",
                        upload.name.to_string_lossy()
                    )));
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
                // fails on an existing name). Else give it a temporary name no FTP
                // command can reach, then rename it over the target (linkat cannot
                // replace a name).
                let link = |temp: &OsStr| -> io::Result<()> {
                    let proc_path = format!("/proc/self/fd/{}", {
                        use std::os::fd::AsRawFd;
                        upload.file.as_raw_fd()
                    });
                    rustix::fs::linkat(
                        rustix::fs::CWD,
                        proc_path.as_str(),
                        &upload.dir,
                        temp,
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
                            temp,
                            rustix::fs::AtFlags::EMPTY_PATH,
                        )
                    })
                    .map_err(io::Error::from)
                };
                if !upload.replace {
                    return link(&upload.name).map_err(io_err);
                }
                busy(&upload.dir, &upload.name)?;
                let ((), temp) = with_temp_name(".ftps-commit-", link).map_err(io_err)?;
                if let Err(e) = upload.dir.rename(&temp, &upload.dir, &upload.name) {
                    let _ = upload.dir.remove_file(&temp);
                    return Err(io_err(e));
                }
            }
        }
        Ok(())
    }
}
