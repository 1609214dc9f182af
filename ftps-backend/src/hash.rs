//! Computing file hashes (HASH, draft-bryan-ftpext-hash-02): a streaming [`Hasher`] of
//! every [`HashAlgorithm`], and [`hash_reader`], which reads a file in 256 KiB chunks up to
//! a bound. The server's storages use it ([`BlockingStorage::hash`](crate::BlockingStorage::hash)'s
//! default), and so does a client checking what it downloaded.

use ftps_proto::hash::HashAlgorithm;
use ftps_proto::server::StorageError;
use sha1::Digest as _;
use std::io::{self, Read};

/// Bytes read at a time.
pub const HASH_CHUNK: usize = 256 << 10;

/// A file's hash, as a storage computed it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileHash {
    /// The digest, lower-case hex (CRC32: 8 digits, big-endian, as `crc32` prints it).
    pub hex: String,
    /// How many bytes were hashed.
    pub bytes: u64,
}

impl FileHash {
    /// A hash of `bytes` bytes whose digest is `hex`.
    pub fn new(hex: String, bytes: u64) -> Self {
        FileHash { hex, bytes }
    }
}

/// A running hash of one of the algorithms.
#[derive(Clone)]
pub struct Hasher(State);

#[derive(Clone)]
enum State {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
    Md5(md5::Md5),
    Crc32(crc32fast::Hasher),
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Hasher").field(&self.algorithm()).finish()
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

impl Hasher {
    /// A hash of nothing yet.
    pub fn new(algorithm: HashAlgorithm) -> Self {
        Hasher(match algorithm {
            HashAlgorithm::Sha1 => State::Sha1(sha1::Sha1::new()),
            HashAlgorithm::Sha512 => State::Sha512(sha2::Sha512::new()),
            HashAlgorithm::Md5 => State::Md5(md5::Md5::new()),
            HashAlgorithm::Crc32 => State::Crc32(crc32fast::Hasher::new()),
            // SHA-256, and any algorithm added later until it has its own state.
            _ => State::Sha256(sha2::Sha256::new()),
        })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> HashAlgorithm {
        match self.0 {
            State::Sha1(_) => HashAlgorithm::Sha1,
            State::Sha256(_) => HashAlgorithm::Sha256,
            State::Sha512(_) => HashAlgorithm::Sha512,
            State::Md5(_) => HashAlgorithm::Md5,
            State::Crc32(_) => HashAlgorithm::Crc32,
        }
    }

    /// Hashes `bytes` too.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.0 {
            State::Sha1(h) => h.update(bytes),
            State::Sha256(h) => h.update(bytes),
            State::Sha512(h) => h.update(bytes),
            State::Md5(h) => h.update(bytes),
            State::Crc32(h) => h.update(bytes),
        }
    }

    /// The digest, lower-case hex.
    pub fn finish_hex(self) -> String {
        match self.0 {
            State::Sha1(h) => hex(&h.finalize()),
            State::Sha256(h) => hex(&h.finalize()),
            State::Sha512(h) => hex(&h.finalize()),
            State::Md5(h) => hex(&h.finalize()),
            State::Crc32(h) => format!("{:08x}", h.finalize()),
        }
    }
}

/// How many bytes to read next for a hash of `limit` bytes (or to the end) of which
/// `done` are hashed: at most [`HASH_CHUNK`]; `None` once the limit is reached. Shared by
/// [`hash_reader`] and the async storage's default hash.
pub(crate) fn next_read(limit: Option<u64>, done: u64) -> Option<usize> {
    match limit {
        Some(l) if done >= l => None,
        Some(l) => Some(usize::try_from(l - done).map_or(HASH_CHUNK, |n| n.min(HASH_CHUNK))),
        None => Some(HASH_CHUNK),
    }
}

/// Hashes what `reader` gives, in [`HASH_CHUNK`] reads: `limit` bytes exactly (a shorter
/// file is [`StorageError::InvalidOffset`]: the range no longer lies within it), or to
/// the end when `limit` is `None`.
pub fn hash_reader(
    mut reader: impl Read,
    algorithm: HashAlgorithm,
    limit: Option<u64>,
) -> Result<FileHash, StorageError> {
    let mut hasher = Hasher::new(algorithm);
    let mut buf = vec![0u8; HASH_CHUNK];
    let mut bytes = 0u64;
    while let Some(want) = next_read(limit, bytes) {
        let n = match reader.read(&mut buf[..want]) {
            Ok(0) if limit.is_some() => return Err(StorageError::InvalidOffset),
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(StorageError::Other(format!("reading to hash: {e}"))),
        };
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(FileHash::new(hasher.finish_hex(), bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        let abc = |a| {
            let mut h = Hasher::new(a);
            h.update(b"abc");
            h.finish_hex()
        };
        assert_eq!(
            abc(HashAlgorithm::Sha256),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            abc(HashAlgorithm::Sha1),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(abc(HashAlgorithm::Md5), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(abc(HashAlgorithm::Crc32), "352441c2");
        assert!(abc(HashAlgorithm::Sha512).starts_with("ddaf35a193617aba"));
        for a in HashAlgorithm::ALL {
            assert_eq!(abc(a).len(), a.hex_len(), "{a}");
        }
    }

    #[test]
    fn reader_bounds() {
        let data = vec![7u8; HASH_CHUNK * 2 + 5];
        let whole = hash_reader(&data[..], HashAlgorithm::Md5, None).unwrap();
        assert_eq!(whole.bytes, data.len() as u64);
        let part = hash_reader(&data[..], HashAlgorithm::Md5, Some(10)).unwrap();
        let mut h = Hasher::new(HashAlgorithm::Md5);
        h.update(&data[..10]);
        assert_eq!((part.hex, part.bytes), (h.finish_hex(), 10));
        assert_eq!(
            hash_reader(&data[..3], HashAlgorithm::Md5, Some(10)),
            Err(StorageError::InvalidOffset)
        );
    }
}
