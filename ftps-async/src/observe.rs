//! What the server counts, through the `metrics` facade: an application that installs a
//! recorder (`ftps serve --metrics ADDR` installs Prometheus') sees them; one that does
//! not pays an atomic load per count.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `ftps_sessions_open` | gauge | |
//! | `ftps_sessions_total` | counter | |
//! | `ftps_logins_total` | counter | `result`: accepted, rejected, unavailable, locked_out |
//! | `ftps_transfers_total` | counter | `kind`: download, upload, listing; `result`: ok, failed |
//! | `ftps_transfer_bytes_total` | counter | `kind` |
//! | `ftps_tls_handshakes_total` | counter | `channel`: control, data; `version`: 1.2, 1.3 |
//! | `ftps_replies_total` | counter | `code`: the reply code |
//! | `ftps_storage_seconds` | histogram | `op`: the storage request |

use ftps_proto::server::{StorageRequest, TlsVersion, TransferKind};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A session, counted open until dropped.
#[derive(Debug)]
pub(crate) struct SessionCount(());

impl SessionCount {
    /// Counts a new session.
    pub(crate) fn open() -> Self {
        metrics::counter!("ftps_sessions_total").increment(1);
        metrics::gauge!("ftps_sessions_open").increment(1.0);
        SessionCount(())
    }
}

impl Drop for SessionCount {
    fn drop(&mut self) {
        metrics::gauge!("ftps_sessions_open").decrement(1.0);
    }
}

/// A new session's id: unique in the process, from 1 (the `id` of its log span, and of
/// what hooks are told).
pub(crate) fn session_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A login's outcome.
pub(crate) fn login(result: &'static str) {
    metrics::counter!("ftps_logins_total", "result" => result).increment(1);
}

/// A transfer ended.
pub(crate) fn transfer(kind: TransferKind, ok: bool, bytes: u64) {
    let result = if ok { "ok" } else { "failed" };
    metrics::counter!("ftps_transfers_total", "kind" => kind.name(), "result" => result)
        .increment(1);
    metrics::counter!("ftps_transfer_bytes_total", "kind" => kind.name()).increment(bytes);
}

/// A TLS handshake completed on `channel` (control or data).
pub(crate) fn tls(channel: &'static str, version: TlsVersion) {
    let version = match version {
        TlsVersion::Tls12 => "1.2",
        TlsVersion::Tls13 => "1.3",
    };
    metrics::counter!("ftps_tls_handshakes_total", "channel" => channel, "version" => version)
        .increment(1);
}

/// The reply codes in `bytes` (encoded replies: a reply's last line is its code and a
/// space).
pub(crate) fn replies(bytes: &[u8]) {
    for line in bytes.split(|b| *b == b'\n') {
        if let [a, b, c, b' ', ..] = *line
            && let Some(code) = code_label(a, b, c)
        {
            metrics::counter!("ftps_replies_total", "code" => code).increment(1);
        }
    }
}

/// The label of reply code `abc` (digits), without an allocation per reply.
fn code_label(a: u8, b: u8, c: u8) -> Option<&'static str> {
    static CODES: LazyLock<Vec<String>> =
        LazyLock::new(|| (100..600).map(|c: u16| c.to_string()).collect());
    if !(b'1'..=b'5').contains(&a) || !b.is_ascii_digit() || !c.is_ascii_digit() {
        return None;
    }
    let code = usize::from(a - b'0') * 100 + usize::from(b - b'0') * 10 + usize::from(c - b'0');
    CODES.get(code - 100).map(String::as_str)
}

/// The name of a storage request, for [`storage`].
pub(crate) fn storage_op(request: &StorageRequest) -> &'static str {
    match request {
        StorageRequest::Stat(_) => "stat",
        StorageRequest::List(_) => "list",
        StorageRequest::MakeDir(_) => "make_dir",
        StorageRequest::RemoveDir(_) => "remove_dir",
        StorageRequest::RemoveFile(_) => "remove_file",
        StorageRequest::Rename { .. } => "rename",
        StorageRequest::SetModified { .. } => "set_modified",
        StorageRequest::OpenListing { .. } => "open_listing",
        StorageRequest::OpenRead { .. } => "open_read",
        StorageRequest::OpenWrite { .. } => "open_write",
        StorageRequest::Hash { .. } => "hash",
        _ => "other",
    }
}

/// A storage request (`op`, from [`storage_op`]) took `took`.
pub(crate) fn storage(op: &'static str, took: Duration) {
    metrics::histogram!("ftps_storage_seconds", "op" => op).record(took.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::code_label;

    #[test]
    fn codes_are_labelled_without_allocating() {
        assert_eq!(code_label(b'2', b'2', b'6'), Some("226"));
        assert_eq!(code_label(b'1', b'0', b'0'), Some("100"));
        assert_eq!(code_label(b'5', b'9', b'9'), Some("599"));
        assert_eq!(code_label(b'6', b'0', b'0'), None);
        assert_eq!(code_label(b'0', b'0', b'0'), None);
        assert_eq!(code_label(b'2', b'x', b'0'), None);
    }
}
