//! [`ListingReader`]: a directory listing streamed to a data connection. The storage hands
//! out the entries as it reads them ([`Storage::list_entries`](crate::Storage::list_entries)),
//! and each becomes a line (the session's [`ListingFormat`]) only when the connection takes
//! it, so a listing costs a few buffers however large the directory.

use ftps_proto::Timestamp;
use ftps_proto::server::{ListingFormat, Metadata};
use std::io::{self, Read};

/// Entries as a storage reads them.
pub type Entries = Box<dyn Iterator<Item = Metadata> + Send>;

/// The lines of a listing, made as they are read.
pub struct ListingReader {
    entries: Entries,
    format: ListingFormat,
    now: Timestamp,
    /// Entries still allowed (the session's cap).
    left: usize,
    line: Vec<u8>,
    at: usize,
}

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
            format,
            now,
            left: format.max_entries(),
            line: Vec::new(),
            at: 0,
        }
    }

    /// The next line into `self.line`; false at the end.
    fn next_line(&mut self) -> bool {
        while self.left > 0 {
            let Some(entry) = self.entries.next() else {
                return false;
            };
            self.left -= 1;
            if let Some(line) = self.format.line(&entry, &self.now) {
                self.line = line.into_bytes();
                self.at = 0;
                return true;
            }
        }
        false
    }
}

impl Read for ListingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
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
        Ok(filled)
    }
}
