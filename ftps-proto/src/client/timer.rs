//! The client session's timers, as the server's: an enum and a deadline each. `now` is
//! always passed in; a timeout that finds nothing expired does nothing.

use std::time::Instant;

/// The session's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// A reply (or the control TLS handshake, or a data connection once the transfer
    /// command was accepted, or the end of the data once the final reply is in) is due.
    Reply,
    /// No data progress on a running transfer.
    DataStall,
}

const COUNT: usize = 2;

impl Timer {
    const ALL: [Timer; COUNT] = [Timer::Reply, Timer::DataStall];

    fn index(self) -> usize {
        self as usize
    }
}

/// A deadline per timer.
#[derive(Debug, Clone, Default)]
pub(crate) struct TimerTable {
    deadlines: [Option<Instant>; COUNT],
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer.index()] = Some(at);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    /// Stops every timer.
    pub(crate) fn clear(&mut self) {
        self.deadlines = [None; COUNT];
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Removes and returns the timers expired at `now`, earliest first.
    pub(crate) fn expired(&mut self, now: Instant) -> Vec<Timer> {
        let mut due: Vec<(Instant, Timer)> = Timer::ALL
            .iter()
            .filter_map(|&t| {
                self.deadlines[t.index()]
                    .filter(|&d| d <= now)
                    .map(|d| (d, t))
            })
            .collect();
        due.sort_by_key(|(d, _)| *d);
        for (_, t) in &due {
            self.stop(*t);
        }
        due.into_iter().map(|(_, t)| t).collect()
    }
}
