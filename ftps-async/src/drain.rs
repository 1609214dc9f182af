//! [`Drain`]: how a server goes away without cutting transfers — every session told at
//! once (gently: it ends with 421 as soon as nothing is under way), then, past the grace
//! period, the rest ended (hard).

use std::sync::atomic::{AtomicBool, Ordering};

/// The server's drain signals, shared by its sessions. Each is a channel whose sender is
/// closed to signal: every receiver wakes, on every runtime, and stays woken.
#[derive(Debug)]
pub(crate) struct Drain {
    draining: AtomicBool,
    gentle: (async_channel::Sender<()>, async_channel::Receiver<()>),
    hard: (async_channel::Sender<()>, async_channel::Receiver<()>),
}

impl Default for Drain {
    fn default() -> Self {
        Drain {
            draining: AtomicBool::new(false),
            gentle: async_channel::bounded(1),
            hard: async_channel::bounded(1),
        }
    }
}

impl Drain {
    /// Tells every session to end once idle.
    pub(crate) fn start(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.gentle.0.close();
    }

    /// Ends every session now.
    pub(crate) fn force(&self) {
        self.hard.0.close();
    }

    /// Whether the drain has started.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Completes once the drain starts.
    pub(crate) async fn started(&self) {
        let _ = self.gentle.1.recv().await;
    }

    /// Completes once the sessions must end now.
    pub(crate) async fn forced(&self) {
        let _ = self.hard.1.recv().await;
    }
}
