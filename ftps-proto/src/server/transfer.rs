//! Transfers: the parameters (TYPE, MODE, STRU, REST), the transfer commands (RETR, STOR,
//! APPE, STOU, LIST, NLST, MLSD) with their storage continuations, ABOR, and a transfer's
//! life from 150 to 226: connect, move, and for an upload finish (commit or discard), each
//! step a report from the adapter.

use super::TransferKind;
use super::data::DataSetup;
use super::format::ListKind;
use super::permissions::Permission;
use super::timer::Timer;
use super::{
    ALPN_FTP, Action, DataEnd, DataId, Event, INVALID_REST_PARAMETER, ListingFormat, Pending,
    ServerSession, StorageError, StorageReply, StorageRequest, TlsInfo, local_error, reply,
    storage_error_reply,
};
use crate::command::{
    Command, FileStructure, ProtectionLevel, RepresentationType, TextFormat, TransferMode,
};
use crate::path::VirtualPath;
use crate::reply::{Reply, ReplyCode};
use std::net::SocketAddr;
use std::time::Instant;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Connecting,
    Moving,
    Finishing { ok: bool, reply: Reply },
}

/// The running transfer (at most one per session).
#[derive(Debug, Clone)]
pub(super) struct Transfer {
    pub(super) id: DataId,
    kind: TransferKind,
    pub(super) path: VirtualPath,
    tls: bool,
    phase: Phase,
    pub(super) bytes: u64,
}

/// A transfer command waiting for the storage to open its file or listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Open {
    /// RETR, from `offset` (REST).
    Read { id: DataId, offset: u64 },
    /// STOR, APPE, STOU.
    Write { id: DataId },
    /// LIST, NLST, MLSD.
    Listing { id: DataId, path: VirtualPath },
}

/// How a transfer's data connection ended: whether the transfer succeeded, and the reply.
fn end_reply(kind: &TransferKind, tls: bool, end: DataEnd) -> (bool, Reply) {
    match (kind, end) {
        (_, DataEnd::Storage(e)) => (false, storage_error_reply(&e)),
        (_, DataEnd::Failed(_)) => (
            false,
            reply(
                ReplyCode::TRANSFER_ABORTED,
                "Connection closed; transfer aborted.",
            ),
        ),
        // RFC 4217 §10.2 and the truncation attack: an upload over TLS is complete only if
        // the client ended it with close_notify.
        (
            TransferKind::Upload,
            DataEnd::Complete {
                close_notify: false,
            },
        ) if tls => (
            false,
            reply(
                ReplyCode::TRANSFER_ABORTED,
                "Upload ended without TLS close_notify; transfer aborted.",
            ),
        ),
        (_, DataEnd::Complete { .. }) => (
            true,
            reply(ReplyCode::CLOSING_DATA_CONNECTION, "Transfer complete."),
        ),
    }
}

fn cant_open(text: &str) -> Reply {
    reply(ReplyCode::CANT_OPEN_DATA_CONNECTION, text)
}

impl ServerSession {
    /// The REST offset `cmd` uses, taken: a REST offset is used by the next transfer
    /// command (clients send PASV, EPSV or TYPE between the two, so those keep it, as
    /// vsftpd does).
    pub(super) fn take_rest(&mut self, cmd: &Command) -> u64 {
        use Command as C;
        let transfer = matches!(
            cmd,
            C::Retr(_)
                | C::Stor(_)
                | C::Appe(_)
                | C::Stou(_)
                | C::List(_)
                | C::Nlst(_)
                | C::Mlsd(_)
        );
        if transfer {
            std::mem::take(&mut self.rest)
        } else {
            0
        }
    }

    /// TYPE, MODE, STRU, REST, the transfer commands and ABOR; `rest` is the offset
    /// [`take_rest`](Self::take_rest) took for this command.
    pub(super) fn execute_transfer(&mut self, cmd: Command, rest: u64) {
        use Command as C;
        match cmd {
            C::Type(t) => self.cmd_type(t),
            C::Mode(m) => self.cmd_mode(m),
            C::Stru(s) => self.cmd_stru(s),
            C::Rest(offset) => self.cmd_rest(offset),
            C::Retr(path) => self.cmd_retr(path.as_str(), rest),
            C::Stor(path) => self.cmd_store(Some(path.as_str()), rest, false, false),
            C::Appe(path) => self.cmd_store(Some(path.as_str()), 0, true, false),
            C::Stou(path) => self.cmd_store(path.as_ref().map(|p| p.as_str()), 0, false, true),
            C::List(a) => self.cmd_list(a.as_ref().map(|a| a.as_str()), None),
            C::Nlst(a) => self.cmd_list(a.as_ref().map(|a| a.as_str()), Some(ListKind::Nlst)),
            C::Mlsd(a) => self.cmd_list(a.as_ref().map(|a| a.as_str()), Some(ListKind::Mlsd)),
            C::Abor => self.cmd_abor(),
            other => self.misrouted(&other),
        }
    }

    // ----- parameters -----------------------------------------------------------------

    fn cmd_type(&mut self, t: RepresentationType) {
        match t {
            RepresentationType::Ascii(TextFormat::NonPrint) => {
                self.ascii = true;
                self.send(reply(ReplyCode::COMMAND_OK, "Switching to ASCII mode."));
            }
            RepresentationType::Image | RepresentationType::Local(8) => {
                self.ascii = false;
                self.send(reply(ReplyCode::COMMAND_OK, "Switching to Binary mode."));
            }
            _ => self.send(reply(
                ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                "Type not supported.",
            )),
        }
    }

    fn cmd_mode(&mut self, mode: TransferMode) {
        self.send(match mode {
            TransferMode::Stream => reply(ReplyCode::COMMAND_OK, "Mode set to S."),
            _ => reply(
                ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                "Only MODE S is supported.",
            ),
        });
    }

    fn cmd_stru(&mut self, structure: FileStructure) {
        self.send(match structure {
            FileStructure::File => reply(ReplyCode::COMMAND_OK, "Structure set to F."),
            _ => reply(
                ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                "Only STRU F is supported.",
            ),
        });
    }

    fn cmd_rest(&mut self, offset: u64) {
        if self.ascii && offset != 0 {
            self.send(reply(
                ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                "REST is not supported in ASCII mode.",
            ));
        } else {
            self.rest = offset;
            self.send(reply(
                ReplyCode::PENDING_FURTHER_INFORMATION,
                &format!("Restarting at {offset}. Send STORE or RETRIEVE."),
            ));
        }
    }

    // ----- transfer commands and their storage continuations --------------------------

    fn cmd_retr(&mut self, path: &str, offset: u64) {
        let path = self.cwd.resolve(path);
        if let Some(id) = self.data_for_transfer() {
            let request = StorageRequest::OpenRead { id, path, offset };
            self.request(Pending::Open(Open::Read { id, offset }), request);
        }
    }

    fn cmd_store(&mut self, path: Option<&str>, offset: u64, append: bool, unique: bool) {
        let path = match path {
            Some(p) => self.cwd.resolve(p),
            None => self.cwd.clone(),
        };
        // Users who may not change files only add them: they never replace one (the
        // storage refuses a name that exists, when it opens the file and when it
        // publishes it). STOU's name is new by construction.
        let create_new = !unique
            && !self
                .permissions_at(&path.parent())
                .allows(Permission::Overwrite);
        if let Some(id) = self.data_for_transfer() {
            let request = StorageRequest::OpenWrite {
                id,
                path,
                offset,
                append,
                unique,
                create_new,
            };
            self.request(Pending::Open(Open::Write { id }), request);
        }
    }

    fn cmd_list(&mut self, arg: Option<&str>, kind: Option<ListKind>) {
        let (options, path) = match kind {
            None => list_path(arg),
            Some(_) => ("", arg),
        };
        let kind = kind.unwrap_or(ListKind::List {
            hidden: options.contains('a'),
        });
        let path = path.map_or_else(|| self.cwd.clone(), |p| self.cwd.resolve(p));
        if let Some(id) = self.data_for_transfer() {
            let format = ListingFormat {
                kind,
                facts: self.facts,
                dir: path.clone(),
                grants: self.grants(),
                max_entries: self.config.max_listing_entries,
            };
            let open = Open::Listing {
                id,
                path: path.clone(),
            };
            self.request(
                Pending::Open(open),
                StorageRequest::OpenListing { id, path, format },
            );
        }
    }

    /// The storage's answer to a transfer command: 150 and the transfer, or a refusal.
    pub(super) fn open_answered(
        &mut self,
        open: Open,
        answer: Result<StorageReply, StorageError>,
        now: Instant,
    ) {
        let (path, size) = match answer {
            Ok(StorageReply::Opened { path, size }) => (path, size),
            refused => {
                // Refused before its 150: the data setup stays for the next transfer
                // command (see `execute`: curl is connected to it by now).
                self.send(match refused {
                    Err(e) => storage_error_reply(&e),
                    // The application answered with the wrong kind of reply.
                    Ok(_) => local_error(),
                });
                return;
            }
        };
        match open {
            Open::Read { offset, .. } if offset > size => {
                self.send(reply(
                    INVALID_REST_PARAMETER,
                    "Restart offset past the end of the file.",
                ));
            }
            Open::Read { id, .. } => {
                let mode = if self.ascii { "ASCII" } else { "BINARY" };
                let text =
                    format!("Opening {mode} mode data connection for {path} ({size} bytes).");
                self.begin_transfer(id, TransferKind::Download, path, &text, now);
            }
            Open::Write { id } => {
                let text = format!("Ok to send data for {path}.");
                self.begin_transfer(id, TransferKind::Upload, path, &text, now);
            }
            // A listing is reported under the path the command named.
            Open::Listing { id, path } => {
                let text = "Here comes the directory listing.";
                self.begin_transfer(id, TransferKind::Listing, path, text, now);
            }
        }
    }

    // ----- a transfer's life ----------------------------------------------------------

    fn begin_transfer(
        &mut self,
        id: DataId,
        kind: TransferKind,
        path: VirtualPath,
        text: &str,
        now: Instant,
    ) {
        let connect_to = match &self.data {
            DataSetup::Active { id: d, addr } if *d == id => Some(*addr),
            DataSetup::Passive { id: d } if *d == id => None,
            _ => {
                self.actions.push_back(Action::AbortData { id });
                self.send(cant_open("Data connection was closed."));
                return;
            }
        };
        // One transfer per PASV/PORT.
        self.data = DataSetup::None;
        let tls = self.security.prot == ProtectionLevel::Private;
        let upload = kind == TransferKind::Upload;
        let ascii = self.ascii && kind != TransferKind::Listing;
        self.transfer = Some(Transfer {
            id,
            kind,
            path,
            tls,
            phase: Phase::Connecting,
            bytes: 0,
        });
        self.timers.stop(Timer::Idle);
        self.timers.stop(Timer::DataUnused);
        self.timers
            .set(Timer::DataConnect, now + self.config.timeouts.data_connect);
        self.send(reply(ReplyCode::FILE_STATUS_OK, text));
        self.actions.push_back(Action::OpenData {
            id,
            connect_to,
            tls,
            upload,
            ascii,
        });
    }

    /// Whether the running transfer is an upload whose commit or discard is ordered
    /// ([`Action::FinishUpload`]) and not yet done.
    pub(super) fn upload_committing(&self) -> bool {
        self.transfer
            .as_ref()
            .is_some_and(|t| matches!(t.phase, Phase::Finishing { .. }))
    }

    pub(super) fn transfer_id(&self) -> Option<DataId> {
        self.transfer.as_ref().map(|t| t.id)
    }

    /// Why the data connection of a transfer on TLS is refused, if it is: TLS missing, a
    /// session that does not resume the control connection's (when required), or another
    /// ALPN protocol.
    fn data_tls_refusal(&self, tls: Option<&TlsInfo>) -> Option<Reply> {
        match tls {
            None => Some(cant_open("TLS required on the data connection.")),
            Some(info) if self.config.require_session_reuse && !info.resumed => Some(reply(
                ReplyCode::NETWORK_PROTOCOL_NOT_SUPPORTED,
                "Data connection must reuse the control connection's TLS session.",
            )),
            Some(info) if info.alpn.as_deref().is_some_and(|p| p != ALPN_FTP) => {
                Some(cant_open("Wrong ALPN protocol on the data connection."))
            }
            Some(_) => None,
        }
    }

    /// [`IoEvent::DataConnected`](super::IoEvent::DataConnected).
    pub(super) fn on_data_connected(
        &mut self,
        id: DataId,
        peer: SocketAddr,
        tls: Option<TlsInfo>,
        now: Instant,
    ) {
        let Some(t) = self
            .transfer
            .as_ref()
            .filter(|t| t.id == id && t.phase == Phase::Connecting)
        else {
            // A connection for a listener with no transfer yet, or a stale one: ignore.
            return;
        };
        let refusal = if self.config.check_data_peer && peer.ip() != self.peer.ip() {
            Some(cant_open("Data connection from a foreign address refused."))
        } else if t.tls {
            self.data_tls_refusal(tls.as_ref())
        } else {
            None
        };
        if let Some(r) = refusal {
            self.fail_transfer(r, now);
            return;
        }
        self.timers.stop(Timer::DataConnect);
        self.timers
            .set(Timer::DataStall, now + self.config.timeouts.data_stall);
        if let Some(t) = self.transfer.as_mut() {
            t.phase = Phase::Moving;
        }
        self.actions.push_back(Action::Transfer { id });
    }

    /// [`IoEvent::DataFailed`](super::IoEvent::DataFailed).
    pub(super) fn on_data_failed(&mut self, id: DataId, now: Instant) {
        if self.transfer_id() == Some(id) {
            self.fail_transfer(cant_open("Failed to establish connection."), now);
        }
    }

    /// [`IoEvent::DataProgress`](super::IoEvent::DataProgress).
    pub(super) fn on_data_progress(&mut self, id: DataId, bytes: u64, now: Instant) {
        if let Some(t) = self.transfer.as_mut().filter(|t| t.id == id) {
            t.bytes = bytes;
            self.timers
                .set(Timer::DataStall, now + self.config.timeouts.data_stall);
        }
    }

    /// [`IoEvent::DataEnded`](super::IoEvent::DataEnded): the final reply of a download
    /// or listing (its connection is closed already); an upload is committed or discarded
    /// first ([`Action::FinishUpload`]).
    pub(super) fn on_data_ended(&mut self, id: DataId, bytes: u64, end: DataEnd, now: Instant) {
        let Some(mut t) = self
            .transfer
            .take_if(|t| t.id == id && t.phase == Phase::Moving)
        else {
            return;
        };
        t.bytes = bytes;
        self.timers.stop(Timer::DataStall);
        let (ok, r) = end_reply(&t.kind, t.tls, end);
        if t.kind == TransferKind::Upload {
            t.phase = Phase::Finishing { ok, reply: r };
            self.transfer = Some(t);
            self.actions
                .push_back(Action::FinishUpload { id, commit: ok });
        } else {
            self.end_transfer(t, ok, r, now);
        }
    }

    /// [`IoEvent::UploadFinished`](super::IoEvent::UploadFinished): the final reply of an
    /// upload.
    pub(super) fn on_upload_finished(
        &mut self,
        id: DataId,
        result: Result<(), StorageError>,
        now: Instant,
    ) {
        let Some(t) = self
            .transfer
            .take_if(|t| t.id == id && matches!(t.phase, Phase::Finishing { .. }))
        else {
            return;
        };
        let Phase::Finishing { ok, reply: r } = t.phase.clone() else {
            return;
        };
        let (ok, r) = match result {
            Err(e) if ok => (false, storage_error_reply(&e)),
            _ => (ok, r),
        };
        self.end_transfer(t, ok, r, now);
    }

    /// Ends transfer `t` with reply `r`: `ok` says whether it succeeded.
    fn end_transfer(&mut self, t: Transfer, ok: bool, r: Reply, now: Instant) {
        self.events.push_back(Event::TransferDone {
            kind: t.kind,
            path: t.path,
            bytes: t.bytes,
            ok,
        });
        self.send(r);
        self.after_transfer(now);
    }

    /// Ends the running transfer, if any, with reply `r` (a timer or the data connection
    /// failed).
    /// Whether a transfer waits for its data connection (nothing moved yet).
    pub(super) fn transfer_connecting(&self) -> bool {
        self.transfer
            .as_ref()
            .is_some_and(|t| matches!(t.phase, Phase::Connecting))
    }

    pub(super) fn fail_transfer(&mut self, r: Reply, now: Instant) {
        if let Some(t) = self.transfer.take() {
            self.timers.stop(Timer::DataConnect);
            self.timers.stop(Timer::DataStall);
            self.actions.push_back(Action::AbortData { id: t.id });
            self.events.push_back(Event::TransferDone {
                kind: t.kind,
                path: t.path,
                bytes: t.bytes,
                ok: false,
            });
            self.send(r);
            self.after_transfer(now);
        }
    }

    fn after_transfer(&mut self, now: Instant) {
        if self.user().is_some() {
            self.timers
                .set(Timer::Idle, now + self.config.timeouts.idle);
        }
        self.drain(now);
    }

    /// Aborts the running transfer, if any, without a reply (QUIT, REIN, the control
    /// connection closing).
    pub(super) fn abort_transfer(&mut self) {
        if let Some(t) = self.transfer.take() {
            self.actions.push_back(Action::AbortData { id: t.id });
        }
    }

    fn cmd_abor(&mut self) {
        match self.transfer.take() {
            Some(t) => {
                self.timers.stop(Timer::DataConnect);
                self.timers.stop(Timer::DataStall);
                self.actions.push_back(Action::AbortData { id: t.id });
                self.data = DataSetup::None;
                self.events.push_back(Event::TransferDone {
                    kind: t.kind,
                    path: t.path,
                    bytes: t.bytes,
                    ok: false,
                });
                self.send(reply(ReplyCode::TRANSFER_ABORTED, "Transfer aborted."));
                self.send(reply(
                    ReplyCode::CLOSING_DATA_CONNECTION,
                    "ABOR successful.",
                ));
            }
            None => {
                self.close_data_setup();
                self.send(reply(
                    ReplyCode::DATA_CONNECTION_OPEN,
                    "No transfer to ABOR.",
                ));
            }
        }
    }
}

/// LIST's and NLST's argument: `ls` options before the path ("-a", "-la dir"; only `-a`
/// matters), and the path.
pub(super) fn list_path(arg: Option<&str>) -> (&str, Option<&str>) {
    match arg {
        Some(a) if a.starts_with('-') => match a.split_once(' ') {
            Some((o, p)) => (o, Some(p)),
            None => (a, None),
        },
        other => ("", other),
    }
}
