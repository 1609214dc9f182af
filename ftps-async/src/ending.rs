//! How a data stream's failures become what the cores judge: the end of a connection
//! the peer sends on (the server's uploads, the client's downloads), and the storage
//! errors of a file read or written.

#[cfg(feature = "server")]
use ftps_backend::{ListingCut, ListingFailed};
use ftps_proto::TransportError;
use ftps_proto::boundary::DataEnd;
use ftps_proto::server::StorageError;
use std::io;

/// How a data connection the peer sends on ended, from the error its read gave: rustls
/// reports a TCP close without close_notify as `UnexpectedEof`, which the core judges
/// (the data may be cut short); anything else is a failed connection.
pub(crate) fn read_end(e: &io::Error, tls: bool) -> DataEnd {
    if tls && e.kind() == io::ErrorKind::UnexpectedEof {
        DataEnd::Complete {
            close_notify: false,
        }
    } else {
        // The stream keeps its error; the core gets its cause, typed where it is TLS's.
        DataEnd::Failed(
            match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                Some(tls) => TransportError::from_rustls(tls.clone()),
                None => TransportError::from_io(io::Error::new(e.kind(), e.to_string())),
            },
        )
    }
}

/// The storage error for a failed read of what a download sends (a file, or a listing
/// cut at the session's bound: [`ListingCut`]).
#[cfg(feature = "server")]
pub(crate) fn read_error(e: &io::Error) -> StorageError {
    let inner = e.get_ref();
    if let Some(cut) = inner.and_then(|i| i.downcast_ref::<ListingCut>()) {
        return StorageError::ListingTooLong { max: cut.max };
    }
    if let Some(ListingFailed(failure)) = inner.and_then(|i| i.downcast_ref::<ListingFailed>()) {
        return failure.clone();
    }
    StorageError::Other(format!("reading the file: {e}"))
}

/// The storage error for a failed write of an upload.
#[cfg(feature = "server")]
pub(crate) fn write_error(e: &io::Error) -> StorageError {
    match e.kind() {
        io::ErrorKind::StorageFull => StorageError::InsufficientStorage,
        io::ErrorKind::QuotaExceeded => StorageError::QuotaExceeded,
        _ => StorageError::Other(e.to_string()),
    }
}
