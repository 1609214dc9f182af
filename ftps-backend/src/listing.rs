//! [`ListingReader`]: a directory listing streamed to a data connection. The storage hands
//! out the entries as it reads them ([`Storage::list_entries`](crate::Storage::list_entries)),
//! and each becomes a line (the session's [`ListingFormat`]) only when the connection takes
//! it, so a listing costs a few buffers however large the directory.

use ftps_proto::Timestamp;
use ftps_proto::server::{ListingFormat, Metadata, StorageError};
use std::io::{self, Read};

/// Entries as a storage reads them. A failure part-way is an item too: the listing then
/// ends with it (451), never silently short (a mirroring client would take what was cut
/// for deleted).
pub type Entries = Box<dyn Iterator<Item = Result<Metadata, StorageError>> + Send>;

/// The lines of a listing, made as they are read.
pub struct ListingReader {
    entries: Entries,
    format: ListingFormat,
    now: Timestamp,
    /// Entries still allowed (the session's cap).
    left: usize,
    line: Vec<u8>,
    at: usize,
    /// More entries came than the cap allows: the next read fails.
    cut: bool,
    /// The storage failed part-way: the next read fails with it.
    failed: Option<StorageError>,
}

/// The error a [`ListingReader`] reads once its directory has more entries than the
/// session lists (the server driver turns it into
/// [`StorageError::ListingTooLong`](ftps_proto::server::StorageError::ListingTooLong)).
#[derive(Debug)]
pub struct ListingCut {
    /// The session's bound.
    pub max: usize,
}

impl std::fmt::Display for ListingCut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "listing stopped after {} entries", self.max)
    }
}

impl std::error::Error for ListingCut {}

/// The error a [`ListingReader`] reads once the storage failed part-way through the
/// directory (the server driver turns it back into the storage error it carries).
#[derive(Debug)]
pub struct ListingFailed(pub StorageError);

impl std::fmt::Display for ListingFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "listing failed: {:?}", self.0)
    }
}

impl std::error::Error for ListingFailed {}

impl std::fmt::Debug for ListingReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListingReader")
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

impl ListingReader {
    /// The listing of `entries` in `format`, dated against `now` (UTC).
    pub fn new(entries: Entries, format: ListingFormat, now: Timestamp) -> Self {
        ListingReader {
            entries,
            left: format.max_entries(),
            format,
            now,
            line: Vec::new(),
            at: 0,
            cut: false,
            failed: None,
        }
    }

    /// The next line into `self.line`; false at the end (or at the cap, with `cut` set
    /// if an entry remained).
    fn next_line(&mut self) -> bool {
        loop {
            let entry = match self.entries.next() {
                None => return false,
                Some(Ok(entry)) => entry,
                Some(Err(e)) => {
                    self.failed = Some(e);
                    return false;
                }
            };
            if self.left == 0 {
                self.cut = true;
                return false;
            }
            self.left -= 1;
            if let Some(line) = self.format.line(&entry, &self.now) {
                self.line = line.into_bytes();
                self.at = 0;
                return true;
            }
        }
    }
}

impl Read for ListingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.failed.take() {
            return Err(io::Error::other(ListingFailed(e)));
        }
        if self.cut {
            let max = self.format.max_entries();
            return Err(io::Error::other(ListingCut { max }));
        }
        let mut filled = 0;
        while filled < buf.len() {
            if self.at == self.line.len() && !self.next_line() {
                break;
            }
            let n = (self.line.len() - self.at).min(buf.len() - filled);
            buf[filled..filled + n].copy_from_slice(&self.line[self.at..self.at + n]);
            self.at += n;
            filled += n;
        }
        if filled == 0 && (self.cut || self.failed.is_some()) {
            return self.read(buf);
        }
        Ok(filled)
    }
}
