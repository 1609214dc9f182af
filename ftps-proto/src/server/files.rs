//! File commands: PWD, CWD, CDUP, SIZE, MDTM, MLST, MFMT, DELE, RMD, MKD, RNFR, RNTO,
//! STAT with a path, and HASH and RANG (worded in `hash`). Each command that asks the
//! storage has its request and its continuation (what the answer becomes) side by side;
//! [`FileOp`] carries what the continuation needs from the request.

use super::permissions::Permission;
use super::{
    Metadata, Pending, ServerSession, StorageError, StorageReply, StorageRequest, format,
    local_error, reply, storage_error_reply,
};
use crate::command::Command;
use crate::listing::EntryKind;
use crate::path::VirtualPath;
use crate::reply::{Reply, ReplyCode};
use crate::time::Timestamp;

/// A file command waiting for its storage answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FileOp {
    /// CWD: the directory to change to.
    Cwd(VirtualPath),
    /// SIZE.
    Size,
    /// MDTM.
    Mdtm,
    /// MLST: the path as shown in the reply.
    Mlst(String),
    /// RNFR: the name to rename.
    Rnfr(VirtualPath),
    /// MKD: the directory made.
    Mkd(VirtualPath),
    /// STAT with a path.
    Stat(VirtualPath),
    /// HASH (see `hash`).
    Hash(super::hash::PendingHash),
    /// MFMT, DELE, RMD, RNTO: the reply once the storage has done it.
    Done(Reply),
    /// RNTO by a user who may not overwrite its target: the target's metadata was asked
    /// for; the rename goes on only if there is none (rename(2) replaces a file).
    RntoNew {
        /// What RNFR named.
        from: VirtualPath,
        /// The new name.
        to: VirtualPath,
    },
}

fn changed_directory() -> Reply {
    reply(ReplyCode::FILE_ACTION_OK, "Directory successfully changed.")
}

impl ServerSession {
    /// The file commands; `rename_from` is what a directly preceding RNFR named.
    pub(super) fn execute_file(&mut self, cmd: Command, rename_from: Option<VirtualPath>) {
        use Command as C;
        match cmd {
            C::Pwd => self.cmd_pwd(),
            C::Cdup => self.cmd_cdup(),
            C::Cwd(path) => self.cmd_cwd(path.as_str()),
            C::Size(path) => self.stat_file(FileOp::Size, path.as_str()),
            C::Mdtm(path) => self.stat_file(FileOp::Mdtm, path.as_str()),
            C::Mlst(path) => self.cmd_mlst(path.as_ref().map(|p| p.as_str())),
            C::Mfmt { modified, path } => self.cmd_mfmt(modified, path.as_str()),
            C::Dele(path) => self.cmd_dele(path.as_str()),
            C::Rmd(path) => self.cmd_rmd(path.as_str()),
            C::Mkd(path) => self.cmd_mkd(path.as_str()),
            C::Rnfr(path) => self.cmd_rnfr(path.as_str()),
            C::Rnto(path) => self.cmd_rnto(path.as_str(), rename_from),
            C::Stat(Some(path)) => self.cmd_stat(path.as_str()),
            C::Hash(path) => self.cmd_hash(path.as_str()),
            C::Rang { start, end } => self.cmd_rang(start, end),
            other => self.misrouted(&other),
        }
    }

    fn file_request(&mut self, op: FileOp, request: StorageRequest) {
        self.request(Pending::File(op), request);
    }

    /// The storage's answer to a file command: its continuation's reply.
    pub(super) fn file_answered(&mut self, op: FileOp, answer: Result<StorageReply, StorageError>) {
        use StorageReply as R;
        if let FileOp::Hash(pending) = op {
            let r = Self::hash_answered(pending, answer);
            self.send(r);
            return;
        }
        if let FileOp::RntoNew { from, to } = op {
            match answer {
                Err(StorageError::NotFound) => self.rename(from, to),
                // The name is taken (whatever it is): not replaced.
                Ok(R::Metadata(_)) => self.send(storage_error_reply(&StorageError::AlreadyExists)),
                Err(e) => self.send(storage_error_reply(&e)),
                Ok(_) => self.send(local_error()),
            }
            return;
        }
        let r = match (op, answer) {
            (_, Err(e)) => storage_error_reply(&e),
            (FileOp::Cwd(path), Ok(R::Metadata(m))) => self.cwd_answered(path, &m),
            (FileOp::Size, Ok(R::Metadata(m))) => Self::size_answered(&m),
            (FileOp::Mdtm, Ok(R::Metadata(m))) => Self::mdtm_answered(&m),
            (FileOp::Mlst(shown), Ok(R::Metadata(m))) => self.mlst_answered(&shown, &m),
            (FileOp::Rnfr(path), Ok(R::Metadata(_))) => self.rnfr_answered(path),
            (FileOp::Mkd(path), Ok(R::Done)) => Self::mkd_answered(&path),
            (FileOp::Stat(path), Ok(R::Entries { entries, now })) => {
                self.stat_answered(&path, &entries, &now)
            }
            (FileOp::Done(r), Ok(R::Done)) => r,
            // The application answered with the wrong kind of reply.
            (_, Ok(_)) => local_error(),
        };
        self.send(r);
    }

    // ----- PWD, CDUP, CWD -------------------------------------------------------------

    fn cmd_pwd(&mut self) {
        let text = format!(
            "{} is the current directory",
            format::quote_path(self.cwd.as_str())
        );
        self.send(reply(ReplyCode::PATHNAME_CREATED, &text));
    }

    fn cmd_cdup(&mut self) {
        self.cwd = self.cwd.parent();
        self.send(changed_directory());
    }

    fn cmd_cwd(&mut self, path: &str) {
        let path = self.cwd.resolve(path);
        self.file_request(FileOp::Cwd(path.clone()), StorageRequest::Stat(path));
    }

    fn cwd_answered(&mut self, path: VirtualPath, m: &Metadata) -> Reply {
        if m.kind == EntryKind::Directory {
            self.cwd = path;
            changed_directory()
        } else {
            reply(ReplyCode::FILE_UNAVAILABLE, "Not a directory.")
        }
    }

    // ----- SIZE, MDTM, MFMT ------------------------------------------------------------

    /// SIZE or MDTM: both ask for the file's metadata.
    fn stat_file(&mut self, op: FileOp, path: &str) {
        let path = self.cwd.resolve(path);
        self.file_request(op, StorageRequest::Stat(path));
    }

    /// SIZE's continuation.
    fn size_answered(m: &Metadata) -> Reply {
        if m.kind == EntryKind::Directory {
            reply(ReplyCode::FILE_UNAVAILABLE, "Could not get file size.")
        } else {
            reply(ReplyCode::FILE_STATUS, &m.size.to_string())
        }
    }

    /// MDTM's continuation: the time to the second.
    fn mdtm_answered(m: &Metadata) -> Reply {
        match m.modified {
            Some(t) if m.kind != EntryKind::Directory => {
                let t = Timestamp::new(
                    t.year(),
                    t.month(),
                    t.day(),
                    t.hour(),
                    t.minute(),
                    t.second(),
                    0,
                )
                .unwrap_or(t);
                reply(ReplyCode::FILE_STATUS, &t.to_string())
            }
            _ => reply(
                ReplyCode::FILE_UNAVAILABLE,
                "Could not get file modification time.",
            ),
        }
    }

    fn cmd_mfmt(&mut self, modified: Timestamp, path: &str) {
        let path = self.cwd.resolve(path);
        let done = reply(
            ReplyCode::FILE_STATUS,
            &format!("Modify={modified}; {path}"),
        );
        self.file_request(
            FileOp::Done(done),
            StorageRequest::SetModified { path, modified },
        );
    }

    // ----- MLST -----------------------------------------------------------------------

    fn cmd_mlst(&mut self, path: Option<&str>) {
        let shown = path.map_or_else(|| self.cwd.to_string(), str::to_owned);
        let path = self.cwd.resolve(&shown);
        self.file_request(FileOp::Mlst(path.to_string()), StorageRequest::Stat(path));
    }

    fn mlst_answered(&self, shown: &str, m: &Metadata) -> Reply {
        let path = self.cwd.resolve(shown);
        let allowed = format::Allowed {
            entry: self.permissions_at(&path.parent()),
            inside: self.permissions_at(&path),
        };
        let entry = format::mlsx_entry(m, shown, self.facts, allowed);
        Reply::multiline(
            ReplyCode::FILE_ACTION_OK,
            [
                format!("Listing {shown}"),
                format!(" {entry}"),
                "End".to_owned(),
            ],
        )
    }

    // ----- DELE, RMD, MKD -------------------------------------------------------------

    fn cmd_dele(&mut self, path: &str) {
        let path = self.cwd.resolve(path);
        let done = reply(ReplyCode::FILE_ACTION_OK, "Delete operation successful.");
        self.file_request(FileOp::Done(done), StorageRequest::RemoveFile(path));
    }

    fn cmd_rmd(&mut self, path: &str) {
        let path = self.cwd.resolve(path);
        if path.is_root() {
            self.send(reply(
                ReplyCode::FILE_UNAVAILABLE,
                "Cannot remove the root.",
            ));
            return;
        }
        let done = reply(
            ReplyCode::FILE_ACTION_OK,
            "Remove directory operation successful.",
        );
        self.file_request(FileOp::Done(done), StorageRequest::RemoveDir(path));
    }

    fn cmd_mkd(&mut self, path: &str) {
        let path = self.cwd.resolve(path);
        self.file_request(FileOp::Mkd(path.clone()), StorageRequest::MakeDir(path));
    }

    /// MKD's continuation.
    fn mkd_answered(path: &VirtualPath) -> Reply {
        reply(
            ReplyCode::PATHNAME_CREATED,
            &format!("{} created", format::quote_path(path.as_str())),
        )
    }

    // ----- RNFR, RNTO -----------------------------------------------------------------

    fn cmd_rnfr(&mut self, path: &str) {
        let path = self.cwd.resolve(path);
        self.file_request(FileOp::Rnfr(path.clone()), StorageRequest::Stat(path));
    }

    fn rnfr_answered(&mut self, path: VirtualPath) -> Reply {
        self.rename_from = Some(path);
        reply(ReplyCode::PENDING_FURTHER_INFORMATION, "Ready for RNTO.")
    }

    fn cmd_rnto(&mut self, path: &str, rename_from: Option<VirtualPath>) {
        let Some(from) = rename_from else {
            self.send(reply(ReplyCode::BAD_SEQUENCE, "RNFR required first."));
            return;
        };
        let to = self.cwd.resolve(path);
        if !self
            .permissions_at(&to.parent())
            .allows(Permission::Overwrite)
        {
            // rename(2) replaces an existing file: a user who may not overwrite it renames
            // only to a name that does not exist (else RNTO would destroy any file the user
            // may neither overwrite nor delete). The name is asked for first.
            let op = FileOp::RntoNew {
                from,
                to: to.clone(),
            };
            self.file_request(op, StorageRequest::Stat(to));
            return;
        }
        self.rename(from, to);
    }

    /// RNTO's rename.
    fn rename(&mut self, from: VirtualPath, to: VirtualPath) {
        let done = reply(ReplyCode::FILE_ACTION_OK, "Rename successful.");
        self.file_request(FileOp::Done(done), StorageRequest::Rename { from, to });
    }

    // ----- STAT with a path -----------------------------------------------------------

    fn cmd_stat(&mut self, path: &str) {
        let path = self.cwd.resolve(path);
        self.file_request(FileOp::Stat(path.clone()), StorageRequest::List(path));
    }

    fn stat_answered(&self, path: &VirtualPath, entries: &[Metadata], wall: &Timestamp) -> Reply {
        let mut lines = vec![format!("Status of {path}:")];
        lines.extend(
            entries
                .iter()
                .take(self.config.max_listing_entries)
                .map(|m| format::list_line(m, wall)),
        );
        lines.push("End of status".to_owned());
        Reply::multiline(ReplyCode::FILE_STATUS, lines)
    }
}
