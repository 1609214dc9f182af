//! [`Meter`]: a transfer's byte count, and when to report progress.

use std::time::{Duration, Instant};

/// Counts a transfer's bytes and says when to report progress (the session's stall timer
/// runs on those reports): after 8 MiB, or a quarter second after the last report if any
/// byte moved — so a transfer stalls only when no byte moves for the stall time, however
/// slow it is.
#[derive(Debug)]
pub(crate) struct Meter {
    total: u64,
    reported: u64,
    at: Instant,
}

impl Default for Meter {
    fn default() -> Self {
        Meter {
            total: 0,
            reported: 0,
            at: Instant::now(),
        }
    }
}

impl Meter {
    const EVERY: u64 = 8 * 1024 * 1024;
    /// Well under any sensible stall time (a second or more), cheap (four events a second).
    const AT_LEAST_EVERY: Duration = Duration::from_millis(250);

    /// Counts `n` more bytes; returns the total when a progress report is due.
    pub(crate) fn add(&mut self, n: usize) -> Option<u64> {
        self.total += n as u64;
        let moved = self.total - self.reported;
        if moved == 0 {
            return None;
        }
        let due = moved >= Self::EVERY || self.at.elapsed() >= Self::AT_LEAST_EVERY;
        due.then(|| {
            self.reported = self.total;
            self.at = Instant::now();
            self.total
        })
    }

    /// Part of a chunk (counted later by [`add`](Self::add)) moved: returns the total when
    /// a report is due by time, so a chunk that takes long to write still shows progress.
    pub(crate) fn moved(&mut self) -> Option<u64> {
        (self.at.elapsed() >= Self::AT_LEAST_EVERY).then(|| {
            self.reported = self.total;
            self.at = Instant::now();
            self.total
        })
    }

    /// The bytes counted.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }
}
