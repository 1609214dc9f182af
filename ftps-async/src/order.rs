//! What a session tells one of its data tasks: one [`Order`] per data action of the core
//! (`OpenData`, `Transfer`, `FinishUpload`; `AbortData` drops the task's channel).

use ftps_backend::{ListingReader, Opened, OpenedFile, Storage};
use ftps_proto::tls::DataTls;

/// An order to a data task.
pub(crate) enum Order<S: Storage> {
    /// `OpenData` on a passive connection (an active one starts with its [`Job`]).
    Open(Job<S>),
    /// `Transfer`: the session accepted the connection; move the bytes.
    Transfer,
    /// `FinishUpload`: the session's verdict after the upload ended.
    FinishUpload {
        /// Publish the upload.
        commit: bool,
    },
}

/// What a data connection is opened for: everything its task needs, given once.
pub(crate) struct Job<S: Storage> {
    /// The data TLS configurations, under PROT P.
    pub(crate) tls: Option<DataTls>,
    /// What moves once the session says so.
    pub(crate) work: Work<S>,
    /// TYPE A conversion.
    pub(crate) ascii: bool,
}

/// What a data connection moves.
pub(crate) enum Work<S: Storage> {
    /// Receive an upload into this file.
    Receive(S::Upload),
    /// Send this file.
    SendFile(S::Reader),
    /// Send this listing, made as it is sent.
    SendListing(ListingReader),
    /// Nothing was opened for the connection: a failure to report.
    Nothing,
}

impl<S: Storage> Work<S> {
    /// The work of the file (or listing) opened for a transfer.
    pub(crate) fn of(file: Option<OpenedFile<S>>) -> Work<S> {
        match file {
            Some(Opened::Write(up)) => Work::Receive(up),
            Some(Opened::Read(r)) => Work::SendFile(r),
            Some(Opened::Listing(l)) => Work::SendListing(l),
            None => Work::Nothing,
        }
    }

    /// Whether this is an upload (which ends with [`Order::FinishUpload`]).
    pub(crate) fn is_upload(&self) -> bool {
        matches!(self, Work::Receive(_))
    }
}
