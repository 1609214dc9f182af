//! Listings parsed within a memory bound.
//!
//! A listing's raw bytes are bounded while they arrive ([`ClientConfig::max_listing`]);
//! its parsed entries must be bounded too, because they can take far more memory than the
//! bytes they came from: a two-byte NLST line (`x` CRLF) becomes a `String` of 25 bytes,
//! a four-byte EPLF line a [`ListEntry`] of some 200. These functions parse a raw listing
//! line by line (never converting the whole listing to text at once, which could triple
//! it: every byte that is not UTF-8 becomes a three-byte U+FFFD) and charge each entry
//! its size in memory (the value plus the bytes of its strings); past `limit` they stop
//! with [`ClientError::ListingTooLarge`]. With the default 64 MiB that is about 350,000
//! LIST entries (some 190 bytes each), 200,000 MLSD entries of five facts, or 1.7 million
//! NLST names of 15 bytes; the raw listing itself may hold about a million lines.
//!
//! Lines are split at LF (a CR before it is dropped, RFC 959 §3.1.1.1 ends lines with
//! CRLF); each is decoded on its own, lossily (RFC 2640 names are UTF-8). A line longer
//! than [`MAX_LINE`] is no file name any server keeps and is skipped, as lines in no
//! known form are.
//!
//! [`ClientConfig::max_listing`]: super::ClientConfig::max_listing

use super::ClientError;
use crate::facts::{Fact, FileType, MlsxEntry};
use crate::listing::ListEntry;
use std::mem::size_of;

/// The longest listing line parsed (64 KiB); longer ones are skipped.
pub const MAX_LINE: usize = 64 << 10;

/// The lines of `raw`, CR LF or LF ended, without their endings; over-long ones left out.
fn lines(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    raw.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| line.len() <= MAX_LINE)
}

/// Adds up what entries hold, against a limit.
struct Budget {
    used: u64,
    limit: u64,
}

impl Budget {
    fn new(limit: u64) -> Self {
        Self { used: 0, limit }
    }

    fn charge(&mut self, bytes: usize) -> Result<(), ClientError> {
        self.used = self.used.saturating_add(bytes as u64);
        if self.used > self.limit {
            Err(ClientError::ListingTooLarge { limit: self.limit })
        } else {
            Ok(())
        }
    }
}

fn optional(s: &Option<String>) -> usize {
    s.as_ref().map_or(0, String::len)
}

/// What a [`ListEntry`] holds in memory: its size and its strings' bytes.
pub fn list_entry_size(e: &ListEntry) -> usize {
    size_of::<ListEntry>()
        + e.name.len()
        + optional(&e.permissions)
        + optional(&e.owner)
        + optional(&e.group)
        + optional(&e.link_target)
}

/// What an [`MlsxEntry`] holds in memory: its size, its facts and its strings' bytes.
pub fn mlsx_entry_size(e: &MlsxEntry) -> usize {
    let facts: usize = e
        .facts
        .iter()
        .map(|f| {
            size_of::<Fact>()
                + match f {
                    Fact::Type(FileType::Other(s)) | Fact::Perm(s) | Fact::Unique(s) => s.len(),
                    Fact::Other { name, value } => name.len() + value.len(),
                    _ => 0,
                }
        })
        .sum();
    size_of::<MlsxEntry>() + e.pathname.len() + facts
}

/// A LIST listing (RFC 959 §4.1.3), parsed as [`crate::listing::parse_listing`] does
/// (lines in no known form, blank lines and `total N` skipped), its entries holding at
/// most `limit` bytes ([`list_entry_size`]).
pub fn parse_list(raw: &[u8], limit: u64) -> Result<Vec<ListEntry>, ClientError> {
    let mut budget = Budget::new(limit);
    let mut entries = Vec::new();
    for line in lines(raw) {
        let text = String::from_utf8_lossy(line);
        for entry in crate::listing::parse_listing(&text).filter_map(Result::ok) {
            budget.charge(list_entry_size(&entry))?;
            entries.push(entry);
        }
    }
    Ok(entries)
}

/// An MLSD listing (RFC 3659 §7), parsed as [`crate::facts::parse_mlsd`] does (entries
/// that do not parse skipped), its entries holding at most `limit` bytes
/// ([`mlsx_entry_size`]).
pub fn parse_mlsd(raw: &[u8], limit: u64) -> Result<Vec<MlsxEntry>, ClientError> {
    let mut budget = Budget::new(limit);
    let mut entries = Vec::new();
    for line in lines(raw) {
        let text = String::from_utf8_lossy(line);
        for entry in crate::facts::parse_mlsd(&text).filter_map(Result::ok) {
            budget.charge(mlsx_entry_size(&entry))?;
            entries.push(entry);
        }
    }
    Ok(entries)
}

/// An NLST listing (RFC 959 §4.1.3): one name per line, blank lines skipped, the names
/// holding at most `limit` bytes (each `String` and its bytes).
pub fn parse_nlst(raw: &[u8], limit: u64) -> Result<Vec<String>, ClientError> {
    let mut budget = Budget::new(limit);
    let mut names = Vec::new();
    for line in lines(raw).filter(|l| !l.is_empty()) {
        let name = String::from_utf8_lossy(line).into_owned();
        budget.charge(size_of::<String>() + name.len())?;
        names.push(name);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIX: &str = "-rw-r--r--    1 1000     1000            42 Mar 15  2024 notes.txt\r\n";

    #[test]
    fn parses_as_the_unbounded_parsers_do() {
        let raw = format!("total 8\r\n{UNIX}\r\ndrwxr-xr-x 2 a b 4096 Jan 01 12:00 docs\n");
        let got = parse_list(raw.as_bytes(), u64::MAX).unwrap();
        let want: Vec<ListEntry> = crate::listing::parse_listing(&raw)
            .filter_map(Result::ok)
            .collect();
        assert_eq!(got, want);
        assert_eq!(got.len(), 2);

        let mlsd = "type=file;size=5; a b\r\ntype=dir; docs\r\nnot an entry\r\n";
        let got = parse_mlsd(mlsd.as_bytes(), u64::MAX).unwrap();
        let want: Vec<MlsxEntry> = crate::facts::parse_mlsd(mlsd)
            .filter_map(Result::ok)
            .collect();
        assert_eq!(got, want);

        let nlst = b"a\r\n\r\nb c\nlast";
        assert_eq!(parse_nlst(nlst, u64::MAX).unwrap(), ["a", "b c", "last"]);
        assert_eq!(
            parse_nlst(nlst, u64::MAX).unwrap(),
            crate::listing::parse_nlst(nlst)
        );
    }

    #[test]
    fn entries_past_the_limit_are_an_error() {
        let one = list_entry_size(&ListEntry::parse(UNIX).unwrap()) as u64;
        let raw = UNIX.repeat(10);
        assert_eq!(parse_list(raw.as_bytes(), 10 * one).unwrap().len(), 10);
        assert_eq!(
            parse_list(raw.as_bytes(), 10 * one - 1),
            Err(ClientError::ListingTooLarge {
                limit: 10 * one - 1
            })
        );
        // Two bytes a line, 25 or more in memory: the names are bounded, not the bytes.
        let raw = b"x\n".repeat(1000);
        let limit = 2000;
        assert_eq!(
            parse_nlst(&raw, limit),
            Err(ClientError::ListingTooLarge { limit })
        );
        let mlsd = "type=file;size=5;unique=abc; name\r\n".repeat(10);
        let one = mlsx_entry_size(&MlsxEntry::parse("type=file;size=5;unique=abc; name").unwrap());
        assert!(parse_mlsd(mlsd.as_bytes(), 10 * one as u64).is_ok());
        assert!(parse_mlsd(mlsd.as_bytes(), 10 * one as u64 - 1).is_err());
    }

    #[test]
    fn over_long_and_non_utf8_lines() {
        let mut raw = vec![b'y'; MAX_LINE + 1];
        raw.extend_from_slice(b"\r\nkept\xff\r\n");
        assert_eq!(parse_nlst(&raw, u64::MAX).unwrap(), ["kept\u{fffd}"]);
    }
}
