//! The session's timers: an enum, kept in the [`TimerTable`] both cores use. `now` is
//! always passed in; a timeout that finds nothing expired does nothing.

use crate::boundary::Timers;

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

impl Timers for Timer {
    const ALL: &'static [Timer] = &[
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

/// A deadline per timer of the session (see [`crate::boundary::TimerTable`]).
pub(crate) type TimerTable = crate::boundary::TimerTable<Timer, COUNT>;
