//! The client's HASH (draft-bryan-ftpext-hash-02): `OPTS HASH <algorithm>` (§4), then
//! `RANG <start> <end>` for a range (§3.3, draft-bryan-ftp-range), then `HASH <path>`
//! (§3), whose 213 reply becomes [`Output::Hash`]. A server whose FEAT does not offer
//! HASH (or the algorithm, or RANG for a range) fails the operation with
//! [`ClientError::Unsupported`] before anything is sent.

use super::{ClientError, ClientSession, OpId, Output, Running};
use crate::command::Command;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Opts,
    Rang,
    Hash,
}

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
                Some((start, end)) => {
                    self.send(&Command::Rang { start, end }, now);
                    Stage::Rang
                }
                None => {
                    self.send(&Command::Hash(run.path.clone()), now);
                    Stage::Hash
                }
            },
            Stage::Rang if code == ReplyCode::PENDING_FURTHER_INFORMATION => {
                self.send(&Command::Hash(run.path.clone()), now);
                Stage::Hash
            }
            Stage::Hash if code.class() == ReplyClass::PositiveCompletion => {
                let result = match HashReply::parse(&reply) {
                    Some(h) if h.algorithm == run.algorithm => Ok(Output::Hash(h)),
                    _ => Err(ClientError::Unexpected(reply)),
                };
                return self.op_done(op, result, now);
            }
            _ => return self.op_done(op, Err(ClientError::Refused(reply)), now),
        };
        run.stage = next;
        self.running = Some((op, Running::Hash(run)));
    }
}
