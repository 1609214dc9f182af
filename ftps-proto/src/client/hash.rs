//! The client's HASH (draft-bryan-ftpext-hash-02): `OPTS HASH <algorithm>` (§4), then
//! for a range `TYPE I` (unless the session is in it already: ProFTPD refuses RANG in
//! ASCII mode, draft-bryan-ftp-range §3) and `RANG <start> <end>` (§3.3), then
//! `HASH <path>` (§3), whose 213 reply becomes [`Output::Hash`]. After a ranged HASH
//! the client sends `RANG 1 0` (the range draft's reset) whatever the answer: a server
//! whose HASH ignores RANG (ProFTPD's mod_digest) would otherwise apply the range to the
//! next RETR. A reply for another range than asked is [`ClientError::Unexpected`], never
//! a digest of the wrong bytes. A server whose FEAT does not offer
//! HASH (or the algorithm, or RANG for a range) fails the operation with
//! [`ClientError::Unsupported`] before anything is sent.

use super::{ClientError, ClientSession, OpId, Output, Running};
use crate::command::{Command, RepresentationType};
use crate::hash::{HashAlgorithm, HashReply, offered};
use crate::reply::{Reply, ReplyClass, ReplyCode};
use crate::text::{Pathname, Text, Token};
use std::time::Instant;

/// Where a HASH operation is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HashRun {
    path: Pathname,
    algorithm: HashAlgorithm,
    range: Option<(u64, u64)>,
    stage: Stage,
}

/// The operation's result, held while `RANG 1 0` resets the range.
type Held = Result<Output, ClientError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Opts,
    Type,
    Rang,
    Hash,
}

/// Where a ranged HASH is once its answer came: resetting the range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Resetting(Held);

impl ClientSession {
    /// Starts a HASH operation, or says why the server cannot do it.
    pub(super) fn start_hash(
        &mut self,
        path: Pathname,
        algorithm: HashAlgorithm,
        range: Option<(u64, u64)>,
        now: Instant,
    ) -> Result<Running, ClientError> {
        let Some((algorithms, _)) = offered(&self.features) else {
            return Err(ClientError::Unsupported(
                "HASH: the server does not offer it (FEAT)",
            ));
        };
        if !algorithms.contains(&algorithm) {
            return Err(ClientError::Unsupported(
                "HASH: the server does not offer this algorithm",
            ));
        }
        if range.is_some() && !self.features.supports("RANG") {
            return Err(ClientError::Unsupported(
                "HASH of a range: the server does not offer RANG",
            ));
        }
        // Always selected: the server's selection is per session, and a renewal of the
        // control connection starts a new one.
        let opts = Command::Opts {
            name: Token::new("HASH").map_err(|_| ClientError::Unsupported("HASH"))?,
            value: Some(Text::new(algorithm.name()).map_err(|_| ClientError::Unsupported("HASH"))?),
        };
        self.send(&opts, now);
        Ok(Running::Hash(Box::new(HashRun {
            path,
            algorithm,
            range,
            stage: Stage::Opts,
        })))
    }

    /// A reply to one of the HASH operation's commands.
    pub(super) fn hash_reply(
        &mut self,
        op: OpId,
        mut run: Box<HashRun>,
        reply: Reply,
        now: Instant,
    ) {
        if reply.code().is_preliminary() {
            self.running = Some((op, Running::Hash(run)));
            return;
        }
        let code = reply.code();
        let next = match run.stage {
            Stage::Opts if code.class() == ReplyClass::PositiveCompletion => match run.range {
                Some(_) if self.ascii != Some(false) => {
                    self.send(&Command::Type(RepresentationType::Image), now);
                    Stage::Type
                }
                Some((start, end)) => {
                    self.send(&Command::Rang { start, end }, now);
                    Stage::Rang
                }
                None => {
                    self.send(&Command::Hash(run.path.clone()), now);
                    Stage::Hash
                }
            },
            Stage::Type if code.class() == ReplyClass::PositiveCompletion => {
                self.ascii = Some(false);
                let (start, end) = run.range.unwrap_or((1, 0));
                self.send(&Command::Rang { start, end }, now);
                Stage::Rang
            }
            Stage::Rang if code == ReplyCode::PENDING_FURTHER_INFORMATION => {
                self.send(&Command::Hash(run.path.clone()), now);
                Stage::Hash
            }
            Stage::Hash => {
                let result = match HashReply::parse(&reply) {
                    _ if code.class() != ReplyClass::PositiveCompletion => {
                        Err(ClientError::Refused(reply))
                    }
                    Some(h) if h.algorithm == run.algorithm && covers(&h, run.range) => {
                        Ok(Output::Hash(h))
                    }
                    _ => Err(ClientError::Unexpected(reply)),
                };
                if run.range.is_some() {
                    self.send(&Command::Rang { start: 1, end: 0 }, now);
                    self.running = Some((op, Running::HashReset(Box::new(Resetting(result)))));
                    return;
                }
                return self.op_done(op, result, now);
            }
            // A refused RANG may still have left a range (or a TYPE I): reset it too.
            Stage::Rang => {
                self.send(&Command::Rang { start: 1, end: 0 }, now);
                let held = Err(ClientError::Refused(reply));
                self.running = Some((op, Running::HashReset(Box::new(Resetting(held)))));
                return;
            }
            _ => return self.op_done(op, Err(ClientError::Refused(reply)), now),
        };
        run.stage = next;
        self.running = Some((op, Running::Hash(run)));
    }
}

impl ClientSession {
    /// The reply to `RANG 1 0` after a ranged HASH: whatever it is, the operation ends
    /// with what HASH gave.
    pub(super) fn hash_reset_reply(
        &mut self,
        op: OpId,
        resetting: Box<Resetting>,
        reply: &Reply,
        now: Instant,
    ) {
        if reply.code().is_preliminary() {
            self.running = Some((op, Running::HashReset(resetting)));
            return;
        }
        self.op_done(op, resetting.0, now);
    }
}

/// Whether a HASH reply is for the range asked: the same start, and the same end
/// (inclusive, as RANG's) or one past it (some servers write the end exclusive); the
/// whole file when no range was asked (from 0).
fn covers(h: &HashReply, range: Option<(u64, u64)>) -> bool {
    match range {
        None => h.start == 0,
        Some((start, end)) => h.start == start && (h.end == end || h.end == end + 1),
    }
}
