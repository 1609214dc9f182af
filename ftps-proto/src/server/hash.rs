//! File hashes: HASH, OPTS HASH and RANG (draft-bryan-ftpext-hash-02; RANG from
//! draft-bryan-ftp-range). The session chooses the algorithm and the range and words the
//! replies; the storage reads and hashes ([`StorageRequest::Hash`]), so a back-end that
//! keeps checksums can answer from them.

use super::files::FileOp;
use super::{
    ServerSession, StorageError, StorageReply, StorageRequest, reply, storage_error_reply,
};
use crate::hash::{HashAlgorithm, HashReply, feat_params};
use crate::reply::{Reply, ReplyCode};

/// 556: the requested byte range is not within the file (ProFTPD's mod_digest answers a
/// HASH over such a range with it; draft-bryan-ftpext-hash-02 §3.2 leaves a 5yz code to
/// the server).
const INVALID_RANGE: ReplyCode = match ReplyCode::new(556) {
    Some(code) => code,
    None => ReplyCode::FILE_UNAVAILABLE,
};

/// A session's HASH settings: the algorithm OPTS HASH selected and the range RANG set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct HashState {
    /// The algorithm HASH uses (§4: OPTS HASH; SHA-256 until changed).
    pub(super) selected: HashAlgorithm,
    /// RANG's range, both ends inclusive, for the next HASH only.
    pub(super) range: Option<(u64, u64)>,
}

impl Default for HashState {
    fn default() -> Self {
        HashState {
            selected: HashAlgorithm::Sha256,
            range: None,
        }
    }
}

/// A HASH waiting for its storage answer: what its reply shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PendingHash {
    /// The algorithm asked for.
    algorithm: HashAlgorithm,
    /// The range asked for, if RANG set one.
    range: Option<(u64, u64)>,
    /// The pathname as the client gave it (§3.2: the reply repeats it).
    shown: String,
}

impl ServerSession {
    /// The parameters of the FEAT line `HASH` (§3.1): every algorithm, the selected one
    /// starred.
    pub(super) fn hash_feat(&self) -> String {
        feat_params(&HashAlgorithm::ALL, self.hash.selected)
    }

    /// OPTS HASH (§4): without an argument, the selected algorithm; with one, selects it
    /// (200) or, unknown, keeps the selection (501).
    pub(super) fn opts_hash(&mut self, value: Option<&str>) {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            None => {
                let name = self.hash.selected.name();
                self.send(reply(ReplyCode::COMMAND_OK, name));
            }
            Some(name) => match HashAlgorithm::from_name(name) {
                Some(a) => {
                    self.hash.selected = a;
                    self.send(reply(ReplyCode::COMMAND_OK, a.name()));
                }
                None => self.send(reply(
                    ReplyCode::SYNTAX_ERROR_IN_ARGUMENTS,
                    "Unknown algorithm, current selection not changed.",
                )),
            },
        }
    }

    /// RANG (draft-bryan-ftp-range §3): sets the range the next HASH covers (350), or
    /// resets it with `RANG 1 0`; a start past the end is refused (501).
    pub(super) fn cmd_rang(&mut self, start: u64, end: u64) {
        if (start, end) == (1, 0) {
            self.hash.range = None;
            self.send(reply(
                ReplyCode::PENDING_FURTHER_INFORMATION,
                "Restarting at 0. Ending byte EOF.",
            ));
        } else if start > end {
            self.send(reply(
                ReplyCode::SYNTAX_ERROR_IN_ARGUMENTS,
                "Range start is past its end.",
            ));
        } else {
            self.hash.range = Some((start, end));
            self.send(reply(
                ReplyCode::PENDING_FURTHER_INFORMATION,
                &format!("Restarting at {start}. Ending byte {end}."),
            ));
        }
    }

    /// A command other than HASH after RANG: the range is for HASH alone here, so a
    /// transfer command would ignore it. It is refused (504, the range forgotten) rather
    /// than sending or writing more than the client asked for.
    pub(super) fn range_refusal(&mut self, transfer: bool) -> Option<Reply> {
        if transfer && self.hash.range.take().is_some() {
            return Some(reply(
                ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                "RANG applies to HASH only; range reset.",
            ));
        }
        None
    }

    /// HASH (§3): asks the storage for the hash of the file, over RANG's range if one was
    /// set (and forgets the range: it covers one HASH).
    pub(super) fn cmd_hash(&mut self, shown: &str) {
        let path = self.cwd.resolve(shown);
        let algorithm = self.hash.selected;
        let range = self.hash.range.take();
        let (start, end) = match range {
            Some((s, e)) => (s, Some(e)),
            None => (0, None),
        };
        let pending = PendingHash {
            algorithm,
            range,
            shown: shown.to_owned(),
        };
        self.request(
            super::Pending::File(FileOp::Hash(pending)),
            StorageRequest::Hash {
                path,
                algorithm,
                start,
                end,
            },
        );
    }

    /// HASH's continuation: `213 <algorithm> <start>-<end> <hex> <pathname>` (§3.2). The
    /// range shown is RANG's, as asked (both ends inclusive), or `0-<size>` for the whole
    /// file, as the draft's examples and ProFTPD's mod_digest show it.
    pub(super) fn hash_answered(
        pending: PendingHash,
        answer: Result<StorageReply, StorageError>,
    ) -> Reply {
        match answer {
            Ok(StorageReply::Hash { hex, bytes }) => {
                let (start, end) = pending.range.unwrap_or((0, bytes));
                HashReply {
                    algorithm: pending.algorithm,
                    start,
                    end,
                    hex,
                    path: pending.shown,
                }
                .to_reply()
            }
            Err(StorageError::InvalidOffset) => {
                reply(INVALID_RANGE, "Invalid byte range: not within the file.")
            }
            Err(e) => storage_error_reply(&e),
            Ok(_) => super::local_error(),
        }
    }
}
