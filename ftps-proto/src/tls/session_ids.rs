//! One FTP session's TLS 1.2 server sessions, by session ID (RFC 5246 §7.4.1.2): what
//! its data connections resume when the client resumes by ID rather than by ticket.
//!
//! A store of its own per FTP session keeps a data connection from resuming another
//! control connection's session (RFC 4217 §10.2; see `server_session`). rustls'
//! `ServerSessionMemoryCache` allocates its table up front (about 600 bytes for four
//! entries, measured with heaptrack), and every session would carry it idle; most clients
//! speak TLS 1.3 and never store a session ID. This store allocates with its first entry.

use rustls::server::StoresServerSessions;
use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

/// The most sessions kept; the oldest goes first. A client resumes the control
/// connection's session on each data connection, so one or two are in use at a time.
pub(crate) const MAX_SESSION_IDS: usize = 4;

/// The TLS 1.2 sessions of one FTP session, by ID (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct SessionIds {
    entries: Mutex<VecDeque<(Vec<u8>, Vec<u8>)>>,
}

impl SessionIds {
    fn entries(&self) -> std::sync::MutexGuard<'_, VecDeque<(Vec<u8>, Vec<u8>)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl StoresServerSessions for SessionIds {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let mut entries = self.entries();
        entries.retain(|(k, _)| *k != key);
        if entries.len() >= MAX_SESSION_IDS {
            entries.pop_front();
        }
        entries.push_back((key, value));
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let entries = self.entries();
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let mut entries = self.entries();
        let at = entries.iter().position(|(k, _)| k == key)?;
        entries.remove(at).map(|(_, v)| v)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_entries_and_allocates_only_with_the_first() {
        let ids = SessionIds::default();
        assert_eq!(ids.entries().capacity(), 0, "nothing allocated while empty");
        assert_eq!(ids.get(b"a"), None);
        for i in 0..=MAX_SESSION_IDS as u8 {
            assert!(ids.put(vec![i], vec![i, i]));
        }
        assert_eq!(ids.get(&[0]), None, "the oldest went");
        assert_eq!(ids.get(&[1]), Some(vec![1, 1]));
        assert_eq!(ids.get(&[1]), Some(vec![1, 1]), "get leaves it");
        assert!(ids.put(vec![1], vec![9]));
        assert_eq!(ids.get(&[1]), Some(vec![9]), "a put replaces");
        assert_eq!(ids.entries().len(), MAX_SESSION_IDS);
        assert_eq!(ids.take(&[2]), Some(vec![2, 2]));
        assert_eq!(ids.take(&[2]), None, "take removes");
        assert!(ids.can_cache());
    }
}
