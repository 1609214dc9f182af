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
//! CRLF); each is decoded on its own. Names are UTF-8 by RFC 2640, but servers that predate
//! it list whatever bytes their file system holds; such a name is kept twice, as text with
//! U+FFFD for each byte that is not UTF-8 (`name`, `pathname`) and as its bytes
//! (`raw_name`, `raw_pathname`, or a [`Pathname`] from NLST), which fetch the file back.
//! (While such a line is parsed, each of those bytes stands as one private-use character,
//! U+10FF80 to U+10FFFF; a line that also holds one of those characters itself is parsed
//! lossily, without bytes.) LIST and MLSD
//! lines that parse in no known form, and lines longer than [`MAX_LINE`] (no file name any
//! server keeps), are not dropped: a [`Listing`] returns them as they came, in
//! [`Listing::unparsed`], charged to the same bound.
//!
//! [`ClientConfig::max_listing`]: super::ClientConfig::max_listing

use super::ClientError;
use crate::facts::{Fact, FileType, MlsxEntry};
use crate::listing::ListEntry;
use crate::text::Pathname;
use std::mem::size_of;

/// The longest listing line parsed (64 KiB); longer ones are returned unparsed (LIST,
/// MLSD) or skipped (NLST).
pub const MAX_LINE: usize = 64 << 10;

/// The lines of `raw`, CR LF or LF ended, without their endings.
fn lines(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    raw.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
}

/// A parsed listing: its entries, and the lines that parsed in no known form, as the
/// server sent them (without their line ends), in order. Blank lines and `ls`'s `total N`
/// are neither. It derefs to the entries: `listing.iter()`, `listing.len()`, `for e in
/// &listing` see the entries only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing<T> {
    /// The entries that parsed.
    pub entries: Vec<T>,
    /// The lines that did not, byte for byte (a server's own format, a line too long).
    pub unparsed: Vec<Vec<u8>>,
}

impl<T> Default for Listing<T> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            unparsed: Vec::new(),
        }
    }
}

impl<T> Listing<T> {
    /// The entries, without the unparsed lines.
    pub fn into_entries(self) -> Vec<T> {
        self.entries
    }
}

impl<T> std::ops::Deref for Listing<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.entries
    }
}

impl<T> IntoIterator for Listing<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a, T> IntoIterator for &'a Listing<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

/// The character that stands for the byte 0x80 while a line that is not UTF-8 is parsed;
/// the bytes 0x80 to 0xFF (the only ones that can be invalid) map to the 128 characters
/// from here, the last of Unicode's private-use plane 16.
const STAND_IN: u32 = 0x10_FF00;

/// Whether `c` stands for a byte (see [`STAND_IN`]).
fn is_stand_in(c: char) -> bool {
    (STAND_IN + 0x80..=STAND_IN + 0xFF).contains(&u32::from(c))
}

/// A line as text for the parsers: itself if UTF-8; else with each byte that is not part of
/// a UTF-8 character as its stand-in, and `true`; `None` when the line already holds a
/// stand-in character (its bytes could not be told back).
fn decode(line: &[u8]) -> Option<(std::borrow::Cow<'_, str>, bool)> {
    if let Ok(text) = std::str::from_utf8(line) {
        return Some((text.into(), false));
    }
    let mut text = String::with_capacity(line.len() + 8);
    for chunk in line.utf8_chunks() {
        if chunk.valid().chars().any(is_stand_in) {
            return None;
        }
        text.push_str(chunk.valid());
        for &b in chunk.invalid() {
            // Invalid bytes are 0x80..=0xFF, so the character exists.
            text.extend(char::from_u32(STAND_IN + u32::from(b)));
        }
    }
    Some((text.into(), true))
}

/// Turns the stand-ins in `text` into U+FFFD; returns the bytes `text` stood for, if it
/// held any stand-in.
fn restore(text: &mut String) -> Option<Vec<u8>> {
    if !text.chars().any(is_stand_in) {
        return None;
    }
    let mut bytes = Vec::with_capacity(text.len());
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        if is_stand_in(c) {
            // Within 0x80..=0xFF: the byte it stands for.
            bytes.push((u32::from(c) - STAND_IN) as u8);
            shown.push(char::REPLACEMENT_CHARACTER);
        } else {
            let mut utf8 = [0; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            shown.push(c);
        }
    }
    *text = shown;
    Some(bytes)
}

/// [`restore`] for text whose bytes are not needed.
fn restore_text(text: &mut String) {
    restore(text);
}

/// Puts back what a [`ListEntry`] parsed from a line that is not UTF-8 holds.
fn restore_list_entry(e: &mut ListEntry) {
    e.raw_name = restore(&mut e.name);
    for field in [
        &mut e.permissions,
        &mut e.owner,
        &mut e.group,
        &mut e.link_target,
    ] {
        field.iter_mut().for_each(restore_text);
    }
}

/// Puts back what an [`MlsxEntry`] parsed from a line that is not UTF-8 holds.
fn restore_mlsx_entry(e: &mut MlsxEntry) {
    e.raw_pathname = restore(&mut e.pathname);
    for fact in &mut e.facts {
        match fact {
            Fact::Type(FileType::Other(s)) | Fact::Perm(s) | Fact::Unique(s) => restore_text(s),
            Fact::Other { name, value } => {
                restore_text(name);
                restore_text(value);
            }
            _ => {}
        }
    }
}

/// Parses each line of `raw` with `parse` (`None`: a line that is no entry, as a blank
/// one) into a [`Listing`], within `limit` bytes of memory: entries charged by `size`,
/// unparsed lines by their bytes. An entry from a line that is not UTF-8 goes through
/// `restore` (see the module's documentation).
fn parse_lines<T, E>(
    raw: &[u8],
    limit: u64,
    parse: impl Fn(&str) -> Option<Result<T, E>>,
    restore: fn(&mut T),
    size: impl Fn(&T) -> usize,
) -> Result<Listing<T>, ClientError> {
    let mut budget = Budget::new(limit);
    let mut listing = Listing::default();
    for line in lines(raw) {
        // None: no entry (a blank line); Some(None): a line that did not parse.
        let parsed = match (line.len() <= MAX_LINE).then(|| decode(line)) {
            Some(Some((text, stood_in))) => parse(&text).map(|entry| {
                entry.ok().map(|mut entry| {
                    if stood_in {
                        restore(&mut entry);
                    }
                    entry
                })
            }),
            Some(None) => parse(&String::from_utf8_lossy(line)).map(Result::ok),
            None => Some(None),
        };
        match parsed {
            None => {}
            Some(Some(entry)) => {
                budget.charge(size(&entry))?;
                listing.entries.push(entry);
            }
            Some(None) => {
                budget.charge(size_of::<Vec<u8>>() + line.len())?;
                listing.unparsed.push(line.to_vec());
            }
        }
    }
    Ok(listing)
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
        + e.raw_name.as_ref().map_or(0, Vec::len)
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
    size_of::<MlsxEntry>() + e.pathname.len() + e.raw_pathname.as_ref().map_or(0, Vec::len) + facts
}

/// A LIST listing (RFC 959 §4.1.3), parsed as [`crate::listing::parse_listing`] does
/// (blank lines and `total N` skipped; lines in no known form kept in
/// [`Listing::unparsed`]), holding at most `limit` bytes ([`list_entry_size`]).
pub fn parse_list(raw: &[u8], limit: u64) -> Result<Listing<ListEntry>, ClientError> {
    let parse = |line: &str| crate::listing::parse_listing(line).next();
    parse_lines(raw, limit, parse, restore_list_entry, list_entry_size)
}

/// An MLSD listing (RFC 3659 §7), parsed as [`crate::facts::parse_mlsd`] does (blank
/// lines skipped; entries that do not parse kept in [`Listing::unparsed`]), holding at
/// most `limit` bytes ([`mlsx_entry_size`]).
pub fn parse_mlsd(raw: &[u8], limit: u64) -> Result<Listing<MlsxEntry>, ClientError> {
    let parse = |line: &str| crate::facts::parse_mlsd(line).next();
    parse_lines(raw, limit, parse, restore_mlsx_entry, mlsx_entry_size)
}

/// An NLST listing (RFC 959 §4.1.3): one name per line, each a [`Pathname`] as sent
/// (bytes kept where they are not UTF-8); blank lines skipped; a line no pathname can be
/// (one holding CR or NUL, which no command could name, or longer than [`MAX_LINE`]) kept
/// in [`Listing::unparsed`]; at most `limit` bytes (each `Pathname` and its bytes).
pub fn parse_nlst(raw: &[u8], limit: u64) -> Result<Listing<Pathname>, ClientError> {
    let mut budget = Budget::new(limit);
    let mut listing = Listing::default();
    for line in lines(raw).filter(|l| !l.is_empty()) {
        match Pathname::from_bytes(line)
            .ok()
            .filter(|_| line.len() <= MAX_LINE)
        {
            Some(name) => {
                budget.charge(size_of::<Pathname>() + name.as_str().len() + line.len())?;
                listing.entries.push(name);
            }
            None => {
                budget.charge(size_of::<Vec<u8>>() + line.len())?;
                listing.unparsed.push(line.to_vec());
            }
        }
    }
    Ok(listing)
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
        assert_eq!(got.entries, want);
        assert_eq!(got.len(), 2);
        assert!(got.unparsed.is_empty());

        let mlsd = "type=file;size=5; a b\r\ntype=dir; docs\r\nnot an entry\r\n";
        let got = parse_mlsd(mlsd.as_bytes(), u64::MAX).unwrap();
        let want: Vec<MlsxEntry> = crate::facts::parse_mlsd(mlsd)
            .filter_map(Result::ok)
            .collect();
        assert_eq!(got.entries, want);
        assert_eq!(got.unparsed, [b"not an entry".to_vec()]);

        let nlst = b"a\r\n\r\nb c\nlast";
        assert_eq!(*parse_nlst(nlst, u64::MAX).unwrap(), ["a", "b c", "last"]);
        let names: Vec<String> = parse_nlst(nlst, u64::MAX)
            .unwrap()
            .into_iter()
            .map(Pathname::into_inner)
            .collect();
        assert_eq!(names, crate::listing::parse_nlst(nlst));
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
    fn lines_in_no_known_form_are_returned_as_sent() {
        // A server's own format (not UNIX, DOS or EPLF), with a byte that is not UTF-8.
        let odd = b"VOL001 3390 2024/03/15 1 5 FB 80 3120 PS DATA.\xffSET".to_vec();
        let mut raw = UNIX.as_bytes().to_vec();
        raw.extend_from_slice(&odd);
        raw.extend_from_slice(b"\r\n\r\ntotal 8\r\n");
        raw.extend_from_slice(&vec![b'z'; MAX_LINE + 1]);
        raw.extend_from_slice(b"\n");
        let got = parse_list(&raw, u64::MAX).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got.unparsed, [odd.clone(), vec![b'z'; MAX_LINE + 1]]);
        // Unparsed lines count against the bound as entries do.
        let small = (size_of::<Vec<u8>>() + odd.len()) as u64;
        assert!(parse_list(&odd, small).is_ok());
        assert_eq!(
            parse_list(&odd, small - 1),
            Err(ClientError::ListingTooLarge { limit: small - 1 })
        );
    }

    #[test]
    fn over_long_and_non_utf8_lines() {
        let mut raw = vec![b'y'; MAX_LINE + 1];
        raw.extend_from_slice(b"\r\nkept\xff\r\nnul\0\r\ncarriage\rreturn\r\n");
        let names = parse_nlst(&raw, u64::MAX).unwrap();
        assert_eq!(names.len(), 1);
        assert_eq!(names[0].as_bytes(), b"kept\xff");
        assert_eq!(names[0].as_str(), "kept\u{fffd}");
        // No command could name these: returned as they came, not dropped.
        assert_eq!(
            names.unparsed,
            [
                vec![b'y'; MAX_LINE + 1],
                b"nul\0".to_vec(),
                b"carriage\rreturn".to_vec()
            ]
        );
    }

    #[test]
    fn names_that_are_not_utf8_keep_their_bytes() {
        // Latin-1 names as vsftpd lists them, in every form, beside a UTF-8 one.
        let raw =
            b"-rw-r--r--    1 1000     1000      42 Mar 15  2024 caf\xe9 \xe0 la carte.txt\r\n\
            lrwxrwxrwx    1 0        0          3 Mar 15  2024 l\xefen -> cibl\xe9\r\n\
            -rw-r--r--    1 1000     1000      42 Mar 15  2024 na\xc3\xafve.txt\r\n";
        let got = parse_list(raw, u64::MAX).unwrap();
        assert!(got.unparsed.is_empty());
        assert_eq!(got[0].name, "caf\u{fffd} \u{fffd} la carte.txt");
        assert_eq!(got[0].name_bytes(), b"caf\xe9 \xe0 la carte.txt");
        assert_eq!(got[0].size, Some(42));
        assert_eq!(got[1].name_bytes(), b"l\xefen");
        assert_eq!(got[1].link_target.as_deref(), Some("cibl\u{fffd}"));
        assert_eq!(got[2].name, "naïve.txt");
        assert_eq!(got[2].raw_name, None);

        let mlsd = b"type=file;size=3;unique=\xfe1; r\xe9sum\xe9 final.pdf\r\ntype=dir; ok\r\n";
        let got = parse_mlsd(mlsd, u64::MAX).unwrap();
        assert_eq!(got[0].pathname_bytes(), b"r\xe9sum\xe9 final.pdf");
        assert_eq!(got[0].pathname, "r\u{fffd}sum\u{fffd} final.pdf");
        assert_eq!(got[0].unique(), Some("\u{fffd}1"));
        assert_eq!(got[1].raw_pathname, None);
        // The bytes make a pathname that goes out unchanged.
        let path = Pathname::from_bytes(got[0].pathname_bytes()).unwrap();
        let line = crate::Command::Retr(path).to_bytes();
        assert_eq!(line, b"RETR r\xe9sum\xe9 final.pdf\r\n");
    }

    #[test]
    fn a_line_holding_a_stand_in_itself_is_parsed_lossily() {
        // U+10FFE9 is the stand-in for 0xE9: its bytes could not be told from 0xE9.
        let raw = "type=file; a\u{10ffe9}b"
            .as_bytes()
            .iter()
            .chain(b"\xe9")
            .copied();
        let got = parse_mlsd(&raw.collect::<Vec<u8>>(), u64::MAX).unwrap();
        assert_eq!(got[0].pathname, "a\u{10ffe9}b\u{fffd}");
        assert_eq!(got[0].raw_pathname, None);
        // In a UTF-8 line the character is only a character.
        let got = parse_mlsd("type=file; a\u{10ffe9}".as_bytes(), u64::MAX).unwrap();
        assert_eq!(got[0].pathname, "a\u{10ffe9}");
    }
}
