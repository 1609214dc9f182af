//! What the storage behind a session can do ([`StorageCapabilities`]), and the one place
//! commands it cannot do are refused before they reach it. FEAT follows the same facts,
//! so a client is never offered a command it would be refused (RFC 2389 §3: the FEAT
//! reply lists the extensions the server supports).

use super::{INVALID_REST_PARAMETER, ServerSession, reply};
use crate::command::Command;
use crate::reply::{Reply, ReplyCode};

/// What a storage back-end can do beyond reading, writing whole files, listing, making
/// and removing. A local file system can do all of it; an object store (S3 and the like)
/// writes objects whole, so it can neither append to one nor continue an upload in the
/// middle, and it keeps no settable modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StorageCapabilities {
    /// STOR after `REST n` with n > 0 continues an upload (RFC 3659 §5). Without it such
    /// a STOR gets 554 (RFC 3659 §5.3: "invalid REST parameter"); restarted downloads
    /// stay, so FEAT still offers `REST STREAM`.
    pub restart_upload: bool,
    /// APPE (RFC 959 §4.1.3). Without it: 502.
    pub append: bool,
    /// MFMT (draft-somers-ftp-mfxx §3) sets modification times. Without it: 502, and FEAT
    /// does not offer MFMT.
    pub set_modified: bool,
}

impl StorageCapabilities {
    /// Everything (a local file system).
    pub const fn all() -> Self {
        StorageCapabilities {
            restart_upload: true,
            append: true,
            set_modified: true,
        }
    }

    /// Whole objects only: no restarted uploads, no APPE, no MFMT (an object store).
    pub const fn whole_objects() -> Self {
        StorageCapabilities {
            restart_upload: false,
            append: false,
            set_modified: false,
        }
    }
}

impl Default for StorageCapabilities {
    fn default() -> Self {
        Self::all()
    }
}

impl ServerSession {
    /// The refusal of a command the storage cannot do, if `cmd` is one; `rest` is the
    /// REST offset the command takes.
    pub(super) fn capability_refusal(&self, cmd: &Command, rest: u64) -> Option<Reply> {
        let can = self.config.storage;
        match cmd {
            Command::Appe(_) if !can.append => Some(reply(
                ReplyCode::NOT_IMPLEMENTED,
                "APPE is not supported by this storage.",
            )),
            Command::Mfmt { .. } if !can.set_modified => Some(reply(
                ReplyCode::NOT_IMPLEMENTED,
                "MFMT is not supported by this storage.",
            )),
            Command::Stor(_) if rest > 0 && !can.restart_upload => Some(reply(
                INVALID_REST_PARAMETER,
                "Restarted uploads are not supported by this storage.",
            )),
            _ => None,
        }
    }
}
