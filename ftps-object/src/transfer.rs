//! The two ends of a transfer: [`ObjectReader`] (a ranged read, streamed) and
//! [`ObjectUpload`] (a multipart upload, committed whole or aborted).

use crate::store::Reservation;
use futures_lite::StreamExt;
use std::io::{self, Read, Write};
use tokio::runtime::Handle;

/// An object being read from an offset to its end, as the service sends it. Its reads
/// block (the server makes them on its blocking pool).
pub struct ObjectReader {
    pub(crate) stream: Option<opendal::FuturesBytesStream>,
    pub(crate) current: bytes::Bytes,
    pub(crate) handle: Handle,
}

impl std::fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectReader").finish_non_exhaustive()
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            let Some(stream) = self.stream.as_mut() else {
                return Ok(0);
            };
            match self.handle.block_on(stream.next()) {
                Some(Ok(bytes)) => self.current = bytes,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Bytes gathered before they go to the writer (which gathers a part of
/// [`PART_SIZE`](crate::PART_SIZE) before it sends one).
const BATCH: usize = 1 << 20;

/// An upload under way: a multipart upload the service keeps out of sight until
/// [`commit`](ftps_backend::Storage::commit) completes it. Dropped without a commit (a
/// failed or aborted transfer), it is aborted.
pub struct ObjectUpload {
    pub(crate) writer: Option<opendal::Writer>,
    pub(crate) batch: Vec<u8>,
    pub(crate) handle: Handle,
    /// The key, for the log and the no-replace check.
    pub(crate) key: String,
    /// For an upload that must not replace anything: its name, held.
    pub(crate) reservation: Option<Reservation>,
}

impl std::fmt::Debug for ObjectUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectUpload")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl ObjectUpload {
    /// Sends what is gathered to the writer.
    fn send_batch(&mut self) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| io::Error::other("the upload is finished"))?;
        self.handle
            .block_on(writer.write(batch))
            .map_err(crate::store::io_error)
    }

    /// Completes the upload: the object appears, whole.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        self.send_batch()?;
        let mut writer = self
            .writer
            .take()
            .ok_or_else(|| io::Error::other("the upload is finished"))?;
        match self.handle.block_on(writer.close()) {
            Ok(_) => Ok(()),
            Err(e) => {
                let _ = self.handle.block_on(writer.abort());
                Err(crate::store::io_error(e))
            }
        }
    }

    /// Aborts the upload: nothing of it stays.
    pub(crate) fn abort(&mut self) {
        self.batch = Vec::new();
        if let Some(mut writer) = self.writer.take() {
            let _ = self.handle.block_on(writer.abort());
        }
    }
}

impl Write for ObjectUpload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.batch.capacity() == 0 {
            self.batch.reserve_exact(BATCH);
        }
        let n = buf.len().min(BATCH - self.batch.len());
        self.batch.extend_from_slice(&buf[..n]);
        if self.batch.len() == BATCH {
            self.send_batch()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Nothing is visible before the commit; a flush has nothing to make visible.
        Ok(())
    }
}

impl Drop for ObjectUpload {
    fn drop(&mut self) {
        // Dropped where blocking is not allowed (an async task): the abort runs on the
        // store's own runtime.
        if let Some(mut writer) = self.writer.take() {
            self.handle.spawn(async move {
                let _ = writer.abort().await;
            });
        }
    }
}
