//! [`Drain`]: how a server goes away without cutting transfers — every session told at
//! once (gently: it ends with 421 as soon as nothing is under way), then, past the grace
//! period, the rest ended (hard).

use crate::signal::Signal;

/// The server's drain signals, shared by its sessions: each wakes every session waiting
/// for it, on every runtime, and stays set.
#[derive(Debug, Default)]
pub(crate) struct Drain {
    gentle: Signal,
    hard: Signal,
}

impl Drain {
    /// Tells every session to end once idle.
    pub(crate) fn start(&self) {
        self.gentle.set();
    }

    /// Ends every session now.
    pub(crate) fn force(&self) {
        self.hard.set();
    }

    /// Whether the drain has started.
    pub(crate) fn is_draining(&self) -> bool {
        self.gentle.is_set()
    }

    /// Completes once the drain starts.
    pub(crate) async fn started(&self) {
        self.gentle.wait().await;
    }

    /// Completes once the sessions must end now.
    pub(crate) async fn forced(&self) {
        self.hard.wait().await;
    }
}
