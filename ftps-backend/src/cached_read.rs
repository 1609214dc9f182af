//! A download's file read where the session runs, when the bytes are in memory already:
//! [`LocalFs`](crate::LocalFs)'s [`read_now`](crate::BlockingStorage::read_now) of a
//! [`LocalFile`].
//!
//! How a file can be read without waiting is decided once, when it is opened (on the
//! blocking pool, where a slow `fstatfs` on NFS or FUSE does no harm):
//!
//! - On tmpfs and ramfs (`/dev/shm`, `/tmp` on many systems) the file is in memory: plain
//!   reads, at once (unless tmpfs swapped the pages out, the one case they wait).
//! - Elsewhere on Linux, `preadv2` with `RWF_NOWAIT` (Linux 4.14) reads what the page cache
//!   holds and fails with `EAGAIN` rather than wait for the disk; the blocking pool reads
//!   the rest. A file system that refuses `RWF_NOWAIT` (`EOPNOTSUPP`; a kernel without
//!   it, `ENOSYS`; any other failure) is not asked again for this file.
//! - Elsewhere every read goes to the pool.

use crate::blocking_storage::ReadLater;
use crate::storage::Chunk;
use std::fs::File;

/// A file opened for a download by [`LocalFs`](crate::LocalFs): the file, and how a chunk
/// of it is read without waiting (see the module's documentation).
#[derive(Debug)]
pub struct LocalFile {
    file: File,
    now: ReadNow,
}

/// How [`LocalFile`]'s chunks are read where the session runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadNow {
    /// A file system in memory: plain reads.
    InMemory,
    /// What the page cache holds (`RWF_NOWAIT`), the rest on the pool.
    Cached,
    /// Every read on the pool.
    Never,
}

impl LocalFile {
    /// `file`, for reads that wait for nothing where its file system allows (for a storage
    /// of one's own that reads local files as [`LocalFs`](crate::LocalFs) does). Calls
    /// `fstatfs`, which can wait (a network file system): call it on the blocking pool.
    pub fn new(file: File) -> Self {
        let now = if in_memory(&file) {
            ReadNow::InMemory
        } else if cfg!(target_os = "linux") {
            ReadNow::Cached
        } else {
            ReadNow::Never
        };
        LocalFile { file, now }
    }

    /// The file, at the position the reads reached.
    pub fn into_file(self) -> File {
        self.file
    }
}

impl std::io::Read for LocalFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.file.read(buf)
    }
}

/// tmpfs and ramfs: file systems in memory (`statfs`'s magic numbers, 32 bits).
#[cfg(target_os = "linux")]
const IN_MEMORY: [u32; 2] = [0x0102_1994, 0x8584_58f6];

/// `file` is on a file system in memory ([`IN_MEMORY`]).
#[cfg(target_os = "linux")]
// `f_type` is 64 bits on 64-bit targets, a signed 32 on some 32-bit ones (where ramfs's
// magic is negative): its low 32 bits are the magic number either way.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn in_memory(file: &File) -> bool {
    rustix::fs::fstatfs(file).is_ok_and(|fs| IN_MEMORY.contains(&(fs.f_type as u32)))
}

/// Not known elsewhere: no file is read on the session's task.
#[cfg(not(target_os = "linux"))]
fn in_memory(_: &File) -> bool {
    false
}

/// Fills `buf` from `file` at its position, as far as it can without waiting (see the
/// module's documentation): the chunk if it is full or the file ended, else what is left
/// for the pool.
pub(crate) fn read_now(
    file: LocalFile,
    buf: Vec<u8>,
) -> Result<Chunk<LocalFile>, ReadLater<LocalFile>> {
    let later = ReadLater {
        reader: file,
        buf,
        filled: 0,
    };
    if later.buf.is_empty() {
        return Err(later);
    }
    match later.reader.now {
        // In memory: the pool's plain reads, here.
        ReadNow::InMemory => Ok(crate::fill_from(later.reader, later.buf, 0)),
        ReadNow::Cached => fill_cached(later),
        ReadNow::Never => Err(later),
    }
}

/// Fills the rest of `later`'s buffer from the page cache (`RWF_NOWAIT`).
#[cfg(target_os = "linux")]
fn fill_cached(mut later: ReadLater<LocalFile>) -> Result<Chunk<LocalFile>, ReadLater<LocalFile>> {
    use rustix::io::{Errno, ReadWriteFlags, preadv2};
    use std::io::IoSliceMut;
    loop {
        let rest = &mut later.buf[later.filled..];
        // u64::MAX: at the file's position, which the read advances.
        match preadv2(
            &later.reader.file,
            &mut [IoSliceMut::new(rest)],
            u64::MAX,
            ReadWriteFlags::NOWAIT,
        ) {
            Ok(0) => {
                // The end, unless a kernel answers 0 for "not cached" (RWF_NOWAIT has had
                // such bugs): the pool's plain read decides when the position is short of
                // the size.
                return if at_end(&later.reader.file) {
                    Ok(full(later))
                } else {
                    Err(later)
                };
            }
            Ok(n) => {
                later.filled += n;
                if later.filled == later.buf.len() {
                    return Ok(full(later));
                }
            }
            Err(Errno::INTR) => {}
            // Not in the page cache: this part goes to the pool.
            Err(Errno::AGAIN) => return Err(later),
            Err(_) => {
                // No RWF_NOWAIT here (EOPNOTSUPP, ENOSYS), or a failure, which the pool's
                // read meets again and reports: the pool reads this file from now on.
                later.reader.now = ReadNow::Never;
                return Err(later);
            }
        }
    }
}

/// Never chosen elsewhere ([`LocalFile::new`]).
#[cfg(not(target_os = "linux"))]
fn fill_cached(later: ReadLater<LocalFile>) -> Result<Chunk<LocalFile>, ReadLater<LocalFile>> {
    Err(later)
}

/// `later`'s read as a finished chunk.
fn full(later: ReadLater<LocalFile>) -> Chunk<LocalFile> {
    Chunk {
        io: later.reader,
        result: Ok(later.filled),
        buf: later.buf,
        then: None,
    }
}

/// The file's position is at (or past) its size.
#[cfg(target_os = "linux")]
fn at_end(mut file: &File) -> bool {
    use std::io::Seek;
    match (file.stream_position(), file.metadata()) {
        (Ok(position), Ok(meta)) => position >= meta.len(),
        _ => false,
    }
}

#[cfg(all(test, target_os = "linux"))]
#[allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    fn file_of(len: usize) -> (File, Vec<u8>) {
        file_in(&std::env::temp_dir(), len)
    }

    fn file_in(dir: &std::path::Path, len: usize) -> (File, Vec<u8>) {
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut file = unnamed_in(dir);
        file.write_all(&bytes).unwrap();
        file.seek(SeekFrom::Start(0)).unwrap();
        (file, bytes)
    }

    /// An unnamed file in `dir` (removed at once: the handle keeps it).
    fn unnamed_in(dir: &std::path::Path) -> File {
        let path = dir.join(format!(
            "ftps-cached-read-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }

    /// tmpfs, if this machine has it at `/dev/shm`.
    fn tmpfs() -> Option<&'static std::path::Path> {
        let shm = std::path::Path::new("/dev/shm");
        (shm.is_dir() && in_memory(&unnamed_in(shm))).then_some(shm)
    }

    /// Reads the whole file in chunks of `size`, at once where the cache allows and with
    /// `fill_from` where not; gives the bytes and how many chunks were read at once.
    fn read_all(file: File, size: usize) -> (Vec<u8>, usize) {
        let (mut out, mut now) = (Vec::new(), 0);
        let mut file = LocalFile::new(file);
        loop {
            let chunk = match read_now(file, vec![0; size]) {
                Ok(chunk) => {
                    now += 1;
                    chunk
                }
                Err(later) => crate::fill_from(later.reader, later.buf, later.filled),
            };
            let n = chunk.result.unwrap();
            out.extend_from_slice(&chunk.buf[..n]);
            file = chunk.io;
            if n < size {
                return (out, now);
            }
        }
    }

    #[test]
    fn a_cached_file_reads_whole_in_chunks_and_ends_short() {
        for (len, size) in [(0, 4096), (1, 4096), (4096, 4096), (300_001, 65_536)] {
            let (file, bytes) = file_of(len);
            let (got, now) = read_all(file, size);
            assert_eq!(got, bytes, "{len} bytes in chunks of {size}");
            // A file just written is in the page cache: every chunk is read at once,
            // unless this file system has no RWF_NOWAIT (then none is, and the pool's
            // reads still give every byte).
            let chunks = len / size + 1;
            assert!(now == chunks || now == 0, "{now} of {chunks} read at once");
        }
    }

    #[test]
    fn the_pool_finishes_a_chunk_begun_at_once() {
        use std::io::Read;
        let (mut file, bytes) = file_of(10_000);
        // What `read_now` hands over when the cache held only the first 3000 bytes.
        let mut buf = vec![0; 8192];
        file.read_exact(&mut buf[..3000]).unwrap();
        let chunk = crate::fill_from(file, buf, 3000);
        assert_eq!(chunk.result.unwrap(), 8192);
        assert_eq!(chunk.buf, &bytes[..8192]);
        // The last chunk: begun, then the end.
        let (mut file, mut buf) = (chunk.io, vec![0; 8192]);
        file.read_exact(&mut buf[..1000]).unwrap();
        let chunk = crate::fill_from(file, buf, 1000);
        assert_eq!(chunk.result.unwrap(), 10_000 - 8192, "short: the end");
        assert_eq!(&chunk.buf[..10_000 - 8192], &bytes[8192..]);
    }

    #[test]
    fn a_file_on_tmpfs_is_read_at_once() {
        let Some(shm) = tmpfs() else {
            return; // No tmpfs here to try.
        };
        for (len, size) in [(0, 4096), (4096, 4096), (200_000, 65_536)] {
            let (file, bytes) = file_in(shm, len);
            let (got, now) = read_all(file, size);
            assert_eq!(got, bytes, "{len} bytes in chunks of {size}");
            assert_eq!(now, len / size + 1, "every chunk read at once");
        }
    }

    #[test]
    fn a_file_system_that_refuses_nowait_is_not_asked_again() {
        let Some(shm) = tmpfs() else {
            return;
        };
        let (file, bytes) = file_in(shm, 10_000);
        // Read as a disk file would be: some kernels' tmpfs refuses RWF_NOWAIT.
        let file = LocalFile {
            file,
            now: ReadNow::Cached,
        };
        match read_now(file, vec![0; 4096]) {
            Ok(_) => {} // This kernel's tmpfs takes RWF_NOWAIT: nothing to learn.
            Err(later) => {
                assert_eq!(later.reader.now, ReadNow::Never, "learnt on the first try");
                let chunk = crate::fill_from(later.reader, later.buf, later.filled);
                assert_eq!(chunk.buf, &bytes[..4096]);
            }
        }
    }

    #[test]
    fn a_read_continues_from_its_position() {
        let (mut file, bytes) = file_of(10_000);
        file.seek(SeekFrom::Start(9_000)).unwrap();
        let (got, _) = read_all(file, 4096);
        assert_eq!(got, &bytes[9_000..]);
    }
}
