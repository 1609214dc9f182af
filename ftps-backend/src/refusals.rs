//! [`ForeignRefusals`]: the warnings of one passive listener about data connections from
//! foreign addresses, said once and then counted, so that a flood of such connections
//! cannot flood the log.

use std::net::SocketAddr;

/// Logs the first data connection from a foreign address that a passive listener refuses,
/// counts the rest, and says how many there were when the listener closes: two lines per
/// listener at most, however many connections come.
#[derive(Debug, Default)]
pub struct ForeignRefusals {
    count: u64,
}

impl ForeignRefusals {
    /// One refused connection from `peer`.
    pub fn refused(&mut self, peer: SocketAddr) {
        self.count += 1;
        if self.count == 1 {
            tracing::warn!(%peer, "data connection from a foreign address refused");
        }
    }
}

impl Drop for ForeignRefusals {
    fn drop(&mut self) {
        if self.count > 1 {
            tracing::warn!(
                more = self.count - 1,
                "more data connections from foreign addresses refused on this listener"
            );
        }
    }
}
