//! The session's timers: an enum, kept in the [`TimerTable`] both cores use. `now` is
//! always passed in; a timeout that finds nothing expired does nothing.

use crate::boundary::Timers;

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

impl Timers for Timer {
    const ALL: &'static [Timer] = &[Timer::Reply, Timer::DataStall];

    fn index(self) -> usize {
        self as usize
    }
}

/// A deadline per timer of the session (see [`crate::boundary::TimerTable`]).
pub(crate) type TimerTable = crate::boundary::TimerTable<Timer, COUNT>;
