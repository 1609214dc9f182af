//! File hashes over the control connection: the vocabulary of draft-bryan-ftpext-hash-02
//! ("File Transfer Protocol HASH Command for Cryptographic Hashes") that the server and
//! the client share: the algorithms ([`HashAlgorithm`]), the FEAT line that offers them
//! (§3.1: `HASH SHA-1;SHA-256*;SHA-512;MD5;CRC32`, the selected one starred) and the
//! HASH reply (§3.2: `213 <algorithm> <start>-<end> <hex digest> <pathname>`).
//!
//! Byte ranges come from the RANG command of draft-bryan-ftp-range (`RANG <start> <end>`,
//! both inclusive; `RANG 1 0` resets), which the hash draft reuses for partial hashes
//! (§3.3). The core never hashes: it asks its storage (`StorageRequest::Hash`).

use crate::feature::Features;
use crate::reply::{Reply, ReplyCode};
use std::fmt;

/// A hash algorithm of draft-bryan-ftpext-hash-02 §5 (the IANA "Hash Function Textual
/// Names" registry, plus CRC32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// SHA-1 (FIPS 180-4).
    Sha1,
    /// SHA-256 (FIPS 180-4), the server's default.
    Sha256,
    /// SHA-512 (FIPS 180-4).
    Sha512,
    /// MD5 (RFC 1321).
    Md5,
    /// CRC-32 (ISO 3309, as zlib computes it), shown as 8 hex digits.
    Crc32,
}

impl HashAlgorithm {
    /// Every algorithm, in the order the server's FEAT line lists them.
    pub const ALL: [HashAlgorithm; 5] = [
        HashAlgorithm::Sha1,
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha512,
        HashAlgorithm::Md5,
        HashAlgorithm::Crc32,
    ];

    /// From the strongest to the weakest: the order a client picks one in when the
    /// server does not offer SHA-256.
    pub const STRONGEST_FIRST: [HashAlgorithm; 5] = [
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha512,
        HashAlgorithm::Sha1,
        HashAlgorithm::Md5,
        HashAlgorithm::Crc32,
    ];

    /// The textual name (`SHA-1`, `SHA-256`, `SHA-512`, `MD5`, `CRC32`).
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha1 => "SHA-1",
            HashAlgorithm::Sha256 => "SHA-256",
            HashAlgorithm::Sha512 => "SHA-512",
            HashAlgorithm::Md5 => "MD5",
            HashAlgorithm::Crc32 => "CRC32",
        }
    }

    /// The algorithm of a textual name, case-insensitive; `CRC-32` is taken for `CRC32`.
    pub fn from_name(name: &str) -> Option<HashAlgorithm> {
        let name = name.trim();
        if name.eq_ignore_ascii_case("CRC-32") {
            return Some(HashAlgorithm::Crc32);
        }
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// The digest's length in hex digits.
    pub fn hex_len(self) -> usize {
        match self {
            HashAlgorithm::Sha1 => 40,
            HashAlgorithm::Sha256 => 64,
            HashAlgorithm::Sha512 => 128,
            HashAlgorithm::Md5 => 32,
            HashAlgorithm::Crc32 => 8,
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The parameters of the FEAT line `HASH` (§3.1): every algorithm in `offered`, `;`
/// between them, the `selected` one followed by `*`.
pub fn feat_params(offered: &[HashAlgorithm], selected: HashAlgorithm) -> String {
    offered
        .iter()
        .map(|a| {
            if *a == selected {
                format!("{}*", a.name())
            } else {
                a.name().to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// What a server's FEAT reply offers for HASH (§3.1): the algorithms this crate knows, in
/// the server's order (names it does not know are skipped), and the one selected (starred)
/// if any. `None` when the server does not offer HASH.
pub fn offered(features: &Features) -> Option<(Vec<HashAlgorithm>, Option<HashAlgorithm>)> {
    let params = features.params("HASH")?;
    let mut algorithms = Vec::new();
    let mut selected = None;
    for name in params.split(';').map(str::trim).filter(|n| !n.is_empty()) {
        let (name, starred) = match name.strip_suffix('*') {
            Some(n) => (n, true),
            None => (name, false),
        };
        if let Some(a) = HashAlgorithm::from_name(name) {
            if starred {
                selected = Some(a);
            }
            if !algorithms.contains(&a) {
                algorithms.push(a);
            }
        }
    }
    Some((algorithms, selected))
}

/// The algorithm a client asks for among those offered: SHA-256 if offered, else the
/// strongest of SHA-512, SHA-1, MD5 and CRC32.
pub fn preferred(offered: &[HashAlgorithm]) -> Option<HashAlgorithm> {
    HashAlgorithm::STRONGEST_FIRST
        .into_iter()
        .find(|a| offered.contains(a))
}

/// A HASH reply (§3.2): `213 <algorithm> <start>-<end> <hex> <pathname>`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HashReply {
    /// The algorithm the server used.
    pub algorithm: HashAlgorithm,
    /// The first byte hashed.
    pub start: u64,
    /// The end of the range, as the server wrote it. This server writes the last byte
    /// hashed (inclusive, as RANG's end is); some servers write the end exclusive.
    pub end: u64,
    /// The digest in hex, lower-cased.
    pub hex: String,
    /// The pathname, as the server wrote it (it may contain spaces).
    pub path: String,
}

impl HashReply {
    /// The reply a server sends (code 213).
    pub fn to_reply(&self) -> Reply {
        Reply::new(
            ReplyCode::FILE_STATUS,
            &format!(
                "{} {}-{} {} {}",
                self.algorithm, self.start, self.end, self.hex, self.path
            ),
        )
    }

    /// Parses a 213 reply to HASH; `None` if it is another reply or malformed (an unknown
    /// algorithm, a range that is not `n-m`, a digest that is not hex of the algorithm's
    /// length). In a multi-line reply the last line of that form counts: ProFTPD's
    /// mod_digest says `213-Computing CRC32 digest` first.
    pub fn parse(reply: &Reply) -> Option<HashReply> {
        if reply.code() != ReplyCode::FILE_STATUS {
            return None;
        }
        reply.lines().iter().rev().find_map(|l| Self::parse_line(l))
    }

    /// One line: `<algorithm> <start>-<end> <hex> <pathname>`.
    fn parse_line(line: &str) -> Option<HashReply> {
        let line = line.trim_start();
        let mut parts = line.splitn(4, ' ');
        let algorithm = HashAlgorithm::from_name(parts.next()?)?;
        let (start, end) = parts.next()?.split_once('-')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(start) || !digits(end) {
            return None;
        }
        let (start, end) = (start.parse().ok()?, end.parse().ok()?);
        let hex = parts.next()?;
        if hex.len() != algorithm.hex_len() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let path = parts.next().unwrap_or("").to_owned();
        Some(HashReply {
            algorithm,
            start,
            end,
            hex: hex.to_ascii_lowercase(),
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in HashAlgorithm::ALL {
            assert_eq!(HashAlgorithm::from_name(a.name()), Some(a));
            assert_eq!(
                HashAlgorithm::from_name(&a.name().to_ascii_lowercase()),
                Some(a)
            );
        }
        assert_eq!(
            HashAlgorithm::from_name("crc-32"),
            Some(HashAlgorithm::Crc32)
        );
        assert_eq!(HashAlgorithm::from_name("SHA-3"), None);
    }

    #[test]
    fn feat_line_and_offer() {
        let p = feat_params(&HashAlgorithm::ALL, HashAlgorithm::Sha256);
        assert_eq!(p, "SHA-1;SHA-256*;SHA-512;MD5;CRC32");
        let mut f = Features::new();
        f.push("HASH", &p).unwrap();
        let (algos, selected) = offered(&f).unwrap();
        assert_eq!(algos, HashAlgorithm::ALL.to_vec());
        assert_eq!(selected, Some(HashAlgorithm::Sha256));
        assert_eq!(preferred(&algos), Some(HashAlgorithm::Sha256));
        assert_eq!(
            preferred(&[HashAlgorithm::Md5, HashAlgorithm::Sha1]),
            Some(HashAlgorithm::Sha1)
        );
        assert_eq!(preferred(&[]), None);
        assert!(offered(&Features::new()).is_none());
    }

    #[test]
    fn reply_round_trip() {
        let r = HashReply {
            algorithm: HashAlgorithm::Md5,
            start: 0,
            end: 9,
            hex: "d41d8cd98f00b204e9800998ecf8427e".into(),
            path: "a file.txt".into(),
        };
        assert_eq!(HashReply::parse(&r.to_reply()), Some(r));
        let bad = Reply::new(ReplyCode::FILE_STATUS, "MD5 0-9 xyz f");
        assert_eq!(HashReply::parse(&bad), None);
        let other = Reply::new(ReplyCode::FILE_UNAVAILABLE, "No such file.");
        assert_eq!(HashReply::parse(&other), None);
        // ProFTPD's mod_digest: a line of its own first.
        let proftpd = Reply::multiline(
            ReplyCode::FILE_STATUS,
            ["Computing CRC32 digest", "CRC32 0-700000 e40bd125 data.bin"],
        );
        let h = HashReply::parse(&proftpd).unwrap();
        assert_eq!((h.end, h.hex.as_str()), (700_000, "e40bd125"));
    }
}
