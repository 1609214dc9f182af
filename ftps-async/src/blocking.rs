//! File reads and writes and storage calls on the runtime's blocking pool: `ftps-backend`
//! is synchronous, written once for every runtime.

use crate::runtime::Runtime;
use ftps_backend::Storage;
use ftps_proto::server::StorageError;
use std::future::Future;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::Arc;

/// A file and buffer back from the blocking pool, with what the call returned.
pub(crate) struct Chunk<T> {
    pub(crate) io: T,
    pub(crate) buf: Vec<u8>,
    pub(crate) result: io::Result<usize>,
    /// A read that failed after some bytes: `result` has those bytes, this the error that
    /// follows them (the bytes go out, then the transfer fails).
    pub(crate) then: Option<io::Error>,
}

/// A read or write under way on the blocking pool.
pub(crate) type Pending<T> = Pin<Box<dyn Future<Output = Chunk<T>> + Send>>;

/// Reads from `reader` until `buf` (its whole length) is full or the reader ends: a
/// result shorter than `buf` means the end was reached, so a small file takes one trip to
/// the blocking pool, not two.
pub(crate) fn fill<RT: Runtime, R: Read + Send + 'static>(
    mut reader: R,
    mut buf: Vec<u8>,
) -> Pending<R> {
    Box::pin(RT::unblock(move || {
        buf.resize(buf.capacity().max(1), 0);
        let mut filled = 0;
        let mut then = None;
        let result = loop {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => break Ok(filled),
                Ok(n) => {
                    filled += n;
                    if filled == buf.len() {
                        break Ok(filled);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if filled > 0 => {
                    then = Some(e);
                    break Ok(filled);
                }
                Err(e) => break Err(e),
            }
        };
        Chunk {
            io: reader,
            buf,
            result,
            then,
        }
    }))
}

/// Writes all of `buf[..len]` to `writer`; the buffer comes back whole (its length
/// unchanged, so it can be read into again without being cleared or refilled).
pub(crate) fn write<RT: Runtime, W: Write + Send + 'static>(
    mut writer: W,
    buf: Vec<u8>,
    len: usize,
) -> Pending<W> {
    Box::pin(RT::unblock(move || {
        let result = writer.write_all(&buf[..len]).map(|()| len);
        Chunk {
            io: writer,
            buf,
            result,
            then: None,
        }
    }))
}

/// Writes all of `buf` to `writer`, then flushes it.
pub(crate) fn write_and_flush<RT: Runtime, W: Write + Send + 'static>(
    mut writer: W,
    buf: Vec<u8>,
) -> Pending<W> {
    Box::pin(RT::unblock(move || {
        let result = writer
            .write_all(&buf)
            .and_then(|()| writer.flush())
            .map(|()| buf.len());
        Chunk {
            io: writer,
            buf,
            result,
            then: None,
        }
    }))
}

/// Publishes (or discards) an upload.
pub(crate) async fn commit<RT: Runtime, S: Storage>(
    storage: &Arc<S>,
    upload: S::Upload,
    keep: bool,
) -> Result<(), StorageError> {
    let storage = storage.clone();
    RT::unblock(move || storage.commit(upload, keep)).await
}
