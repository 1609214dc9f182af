//! The session's timers: an enum and a small table of deadlines. `now` is always passed in;
//! a timeout that finds nothing expired does nothing.

use std::time::Instant;

/// The session's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// From connection to login.
    Login,
    /// No command and no transfer.
    Idle,
    /// A control TLS handshake.
    ControlTls,
    /// From OpenData to DataConnected.
    DataConnect,
    /// No progress on a running transfer.
    DataStall,
    /// A failed login's reply is held back until this fires.
    LoginDelay,
    /// A passive listener that no transfer command has used yet: it is closed when this
    /// fires, so that listeners nobody connects to do not hold ports.
    DataUnused,
}

const COUNT: usize = 7;

impl Timer {
    const ALL: [Timer; COUNT] = [
        Timer::Login,
        Timer::Idle,
        Timer::ControlTls,
        Timer::DataConnect,
        Timer::DataStall,
        Timer::LoginDelay,
        Timer::DataUnused,
    ];

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
