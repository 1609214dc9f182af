//! Where a download's bytes go on the local disk, written once for every client (the
//! libraries' `get_file` and the `ftps` command): a failed download never destroys the
//! file it was to replace.
//!
//! A regular file (or a name not there yet) is written through a temporary file created
//! beside it — under a random name, exclusively, so nothing planted there (a symbolic link,
//! say) is ever opened — and renamed over it only once the download is complete, with the
//! old file's owner, group and mode kept where allowed; through a symbolic link, the file
//! it points at is the one replaced. Anything else that exists (a device, a FIFO) is
//! written through: it cannot be replaced. A resumed download continues a partial file in
//! place (appending loses nothing).

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// Where a download to a local path goes (see the module documentation).
#[derive(Debug)]
pub enum Destination {
    /// A regular file, or nothing yet: written beside it and renamed over it once complete
    /// (`path` with symbolic links followed), keeping `keep`'s owner, group and mode.
    File {
        /// The file to replace or create.
        path: PathBuf,
        /// The file it replaces, if one is there.
        keep: Option<Metadata>,
    },
    /// Something else that exists (`/dev/null`, a FIFO, a terminal): written through.
    Through(PathBuf),
}

impl Destination {
    /// Where a download to `local` goes.
    pub fn of(local: &Path) -> Destination {
        match std::fs::metadata(local) {
            Ok(m) if m.is_file() => Destination::File {
                path: std::fs::canonicalize(local).unwrap_or_else(|_| local.to_path_buf()),
                keep: Some(m),
            },
            Ok(_) => Destination::Through(local.to_path_buf()),
            // Absent; or a dangling symbolic link, whose target is where the file goes.
            Err(_) => {
                let path = match std::fs::read_link(local) {
                    Ok(to) => local.parent().unwrap_or(Path::new("")).join(to),
                    Err(_) => local.to_path_buf(),
                };
                Destination::File { path, keep: None }
            }
        }
    }
}

/// A download's temporary file beside the file it will replace. Dropped without
/// [`publish`](Self::publish), it is removed: a failed download leaves the old file as it
/// was and nothing beside it.
#[derive(Debug)]
pub struct Partial {
    temp: PathBuf,
    path: PathBuf,
    keep: Option<Metadata>,
    published: bool,
}

impl Partial {
    /// Creates the temporary file for a download that will replace (or create) `path`,
    /// keeping `keep`'s owner and mode: under a random name beside it, exclusively
    /// (`O_CREAT | O_EXCL`: a name planted there is never opened or followed; another
    /// name is drawn instead).
    pub fn create(path: &Path, keep: Option<Metadata>) -> io::Result<(Partial, File)> {
        use std::hash::{BuildHasher, Hasher};
        let name = path
            .file_name()
            .map_or_else(|| "download".into(), |n| n.to_string_lossy().into_owned());
        let mut last = io::Error::other("no free temporary name");
        for attempt in 0..16u32 {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(attempt);
            h.write_u32(std::process::id());
            let temp = path.with_file_name(format!(".{name}.ftps-{:016x}.tmp", h.finish()));
            match OpenOptions::new().write(true).create_new(true).open(&temp) {
                Ok(file) => {
                    let partial = Partial {
                        temp,
                        path: path.to_path_buf(),
                        keep,
                        published: false,
                    };
                    return Ok((partial, file));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// The temporary file's path (removed on Ctrl-C by the `ftps` command, say).
    pub fn temp(&self) -> &Path {
        &self.temp
    }

    /// The download is complete (its file flushed and closed): gives it the old file's
    /// owner, group and mode, and renames it over the file it replaces.
    pub fn publish(mut self) -> io::Result<()> {
        if let Some(old) = &self.keep {
            keep_owner_and_mode(&self.temp, old);
        }
        std::fs::rename(&self.temp, &self.path)?;
        self.published = true;
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Opens `part` to continue a download at `offset`, moving `from` there first if it is
/// another file, never through a symbolic link planted in its place (`O_NOFOLLOW`).
pub fn open_part(from: Option<&Path>, part: &Path, offset: u64) -> io::Result<File> {
    use std::io::Seek;
    if let Some(from) = from.filter(|f| *f != part) {
        std::fs::rename(from, part)?;
    }
    let mut options = OpenOptions::new();
    options.write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    let mut file = options.open(part)?;
    file.seek(io::SeekFrom::Start(offset))?;
    Ok(file)
}

/// Gives a finished download the owner, group and mode of the file it replaces, as far
/// as allowed; set-user-ID and set-group-ID bits are kept only with the owner and group
/// they belonged to (as `cp -p` does).
fn keep_owner_and_mode(temp: &Path, old: &Metadata) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        if std::os::unix::fs::chown(temp, Some(old.uid()), Some(old.gid())).is_err() {
            let _ = std::os::unix::fs::chown(temp, None, Some(old.gid()));
        }
        let mut mode = old.permissions().mode() & 0o7777;
        if let Ok(now) = std::fs::metadata(temp) {
            if now.uid() != old.uid() {
                mode &= !0o4000;
            }
            if now.gid() != old.gid() {
                mode &= !0o2000;
            }
        }
        let _ = std::fs::set_permissions(temp, std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    {
        let _ = std::fs::set_permissions(temp, old.permissions());
    }
}
