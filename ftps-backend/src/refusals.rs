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

/// A warning that may repeat fast (a failing accept loop, say): said at most once per
/// interval, with the count of those held back since.
#[derive(Debug)]
pub struct Throttled {
    every: std::time::Duration,
    last: Option<std::time::Instant>,
    held: u64,
}

impl Throttled {
    /// At most one line per `every`.
    pub fn new(every: std::time::Duration) -> Self {
        Throttled {
            every,
            last: None,
            held: 0,
        }
    }

    /// Whether to log now; if so, how many were held back since the last line.
    pub fn allow(&mut self) -> Option<u64> {
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < self.every)
        {
            self.held += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }
}

#[cfg(test)]
mod tests {
    use super::Throttled;
    use std::time::Duration;

    #[test]
    fn a_throttled_warning_is_said_once_an_interval_with_the_count_held_back() {
        let mut t = Throttled::new(Duration::from_millis(200));
        assert_eq!(t.allow(), Some(0));
        assert!((0..1000).all(|_| t.allow().is_none()));
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(t.allow(), Some(1000));
    }
}
