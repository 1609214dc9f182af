//! Where a download's bytes go: a file, a device or standard output, written in batches
//! of [`BATCH`] bytes that a blocking thread writes whole.
//!
//! The TLS reader decrypts straight into the batch being filled, and the batch itself,
//! not a copy of it, goes to the blocking thread; meanwhile the next batch fills. So a
//! byte is copied once in user space (out of rustls) and each MiB costs one trip to the
//! blocking pool. (`BufWriter` over `tokio::fs::File` copied each byte twice more: into
//! the `BufWriter`, then into the `File`'s own buffer; `perf` put those copies at 9 % of
//! `ftps get`'s CPU.)

use std::io::{self, Write};

/// Bytes in one batch: one write, one trip to the blocking pool.
pub(crate) const BATCH: usize = 1 << 20;

/// The output, with the write in flight if there is one.
type Out = Box<dyn Write + Send>;

/// A write handed to the blocking pool: it gives back the output and the emptied batch.
type InFlight = tokio::task::JoinHandle<(Out, Vec<u8>, io::Result<()>)>;

/// A download's destination, written in batches (see the module's documentation).
pub(crate) struct Sink {
    /// The output while no write is in flight.
    out: Option<Out>,
    /// The write in flight.
    writing: Option<InFlight>,
    /// The batch being filled: always [`BATCH`] bytes long, the first `filled` of them
    /// received.
    batch: Vec<u8>,
    filled: usize,
    /// The other batch, once its write is done.
    spare: Option<Vec<u8>>,
}

impl Sink {
    /// A sink writing to `out`.
    pub(crate) fn new(out: impl Write + Send + 'static) -> Self {
        Self {
            out: Some(Box::new(out)),
            writing: None,
            batch: vec![0; BATCH],
            filled: 0,
            spare: None,
        }
    }

    /// Room to receive into: the unfilled part of the batch, never empty. Up to `limit`
    /// bytes of it.
    pub(crate) fn room(&mut self, limit: usize) -> &mut [u8] {
        let end = self
            .batch
            .len()
            .min(self.filled.saturating_add(limit.max(1)));
        &mut self.batch[self.filled..end]
    }

    /// `n` bytes of [`room`](Self::room) were received; a full batch goes to be written.
    pub(crate) async fn received(&mut self, n: usize) -> io::Result<()> {
        self.filled += n;
        if self.filled == self.batch.len() {
            self.send().await?;
        }
        Ok(())
    }

    /// Writes what is received and waits for every write to end.
    pub(crate) async fn finish(&mut self) -> io::Result<()> {
        if self.filled > 0 {
            self.send().await?;
        }
        self.wait().await?;
        let mut out = self.out.take().ok_or_else(gone)?;
        let (out, flushed) = tokio::task::spawn_blocking(move || {
            let flushed = out.flush();
            (out, flushed)
        })
        .await
        .map_err(io::Error::other)?;
        self.out = Some(out);
        flushed
    }

    /// Hands the batch to the blocking pool, once the write before it ended; the next
    /// batch fills meanwhile.
    async fn send(&mut self) -> io::Result<()> {
        self.wait().await?;
        let mut out = self.out.take().ok_or_else(gone)?;
        let next = self.spare.take().unwrap_or_else(|| vec![0; BATCH]);
        let batch = std::mem::replace(&mut self.batch, next);
        let filled = std::mem::take(&mut self.filled);
        self.writing = Some(tokio::task::spawn_blocking(move || {
            let written = out.write_all(&batch[..filled]);
            (out, batch, written)
        }));
        Ok(())
    }

    /// Waits for the write in flight, if any.
    async fn wait(&mut self) -> io::Result<()> {
        if let Some(writing) = self.writing.take() {
            let (out, batch, written) = writing.await.map_err(io::Error::other)?;
            self.out = Some(out);
            self.spare = Some(batch);
            written?;
        }
        Ok(())
    }
}

/// The output was lost with a write that did not come back (its task panicked).
fn gone() -> io::Error {
    io::Error::other("the output was lost with a failed write")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer that keeps what it is given, for the test to read.
    #[derive(Clone, Default)]
    struct Kept(Arc<Mutex<Vec<u8>>>);

    impl Write for Kept {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Bytes in many uneven pieces, across several batches, come out whole and in order.
    #[tokio::test]
    async fn batches_keep_every_byte_in_order() {
        let kept = Kept::default();
        let mut sink = Sink::new(kept.clone());
        let data: Vec<u8> = (0..3 * BATCH + 12345)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let mut at = 0;
        let mut step = 1;
        while at < data.len() {
            let room = sink.room(step.min(data.len() - at));
            let n = room.len();
            room.copy_from_slice(&data[at..at + n]);
            sink.received(n).await.unwrap();
            at += n;
            step = step * 3 % 70_001 + 1;
        }
        sink.finish().await.unwrap();
        assert!(*kept.0.lock().unwrap() == data);
    }

    /// A failed write is told to the one who receives next, or at the end.
    #[tokio::test]
    async fn a_failed_write_is_an_error() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::StorageFull, "full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut sink = Sink::new(Full);
        let n = sink.room(BATCH).len();
        sink.received(n).await.unwrap();
        let e = sink.finish().await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
    }
}
