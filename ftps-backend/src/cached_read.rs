//! A download's file read where the session runs, when the bytes are in memory already:
//! [`LocalFs`](crate::LocalFs)'s [`read_now`](crate::BlockingStorage::read_now).
//!
//! Linux's `preadv2` with `RWF_NOWAIT` (Linux 4.14) reads what the page cache holds and
//! fails with `EAGAIN` rather than wait for the disk; whatever it cannot read at once, the
//! blocking pool reads. Elsewhere every read goes to the pool.

use crate::blocking_storage::ReadLater;
use crate::storage::Chunk;
use std::fs::File;

/// Fills `buf` from `file` at its position, as far as the page cache allows (see the
/// module's documentation): the chunk if it is full or the file ended, else what is left
/// for the pool.
#[cfg(target_os = "linux")]
pub(crate) fn fill_cached(file: File, buf: Vec<u8>) -> Result<Chunk<File>, ReadLater<File>> {
    use rustix::io::{Errno, ReadWriteFlags, preadv2};
    use std::io::IoSliceMut;

    let mut later = ReadLater {
        reader: file,
        buf,
        filled: 0,
    };
    if later.buf.is_empty() {
        return Err(later);
    }
    loop {
        let rest = &mut later.buf[later.filled..];
        // u64::MAX: at the file's position, which the read advances.
        match preadv2(
            &later.reader,
            &mut [IoSliceMut::new(rest)],
            u64::MAX,
            ReadWriteFlags::NOWAIT,
        ) {
            Ok(0) => {
                // The end, unless a kernel answers 0 for "not cached" (RWF_NOWAIT has had
                // such bugs): the pool's plain read decides when the position is short of
                // the size.
                return if at_end(&later.reader) {
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
            // EAGAIN (not in memory), EOPNOTSUPP (a file system without RWF_NOWAIT), or a
            // failure, which the pool's read meets again and reports.
            Err(_) => return Err(later),
        }
    }
}

/// Every read goes to the pool where `RWF_NOWAIT` is not known.
#[cfg(not(target_os = "linux"))]
pub(crate) fn fill_cached(file: File, buf: Vec<u8>) -> Result<Chunk<File>, ReadLater<File>> {
    Err(ReadLater {
        reader: file,
        buf,
        filled: 0,
    })
}

/// `later`'s read as a finished chunk.
#[cfg(target_os = "linux")]
fn full(later: ReadLater<File>) -> Chunk<File> {
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
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut file = tempfile_in_tmp();
        file.write_all(&bytes).unwrap();
        file.seek(SeekFrom::Start(0)).unwrap();
        (file, bytes)
    }

    /// An unnamed file in the temporary directory (removed at once: the handle keeps it).
    fn tempfile_in_tmp() -> File {
        let path = std::env::temp_dir().join(format!(
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

    /// Reads the whole file in chunks of `size`, at once where the cache allows and with
    /// `fill_from` where not; gives the bytes and how many chunks were read at once.
    fn read_all(mut file: File, size: usize) -> (Vec<u8>, usize) {
        let (mut out, mut now) = (Vec::new(), 0);
        loop {
            let chunk = match fill_cached(file, vec![0; size]) {
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
    fn a_read_continues_from_its_position() {
        let (mut file, bytes) = file_of(10_000);
        file.seek(SeekFrom::Start(9_000)).unwrap();
        let (got, _) = read_all(file, 4096);
        assert_eq!(got, &bytes[9_000..]);
    }
}
