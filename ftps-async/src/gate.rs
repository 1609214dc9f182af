//! [`Gate`]: a counting semaphore the sessions of a server share.

/// A counting semaphore: at most `n` holders of a [`Permit`] at once. The driver waits in
/// [`enter`](Self::enter) without holding a thread (a thousand logins arriving together
/// must not take a thousand blocking threads).
#[derive(Debug)]
pub(crate) struct Gate {
    tx: async_channel::Sender<()>,
    rx: async_channel::Receiver<()>,
}

/// A place in a [`Gate`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Permit<'a>(&'a Gate);

impl Gate {
    /// At most `n` holders (at least one).
    pub(crate) fn new(n: usize) -> Gate {
        let (tx, rx) = async_channel::bounded(n.max(1));
        Gate { tx, rx }
    }

    /// Waits for a place.
    pub(crate) async fn enter(&self) -> Permit<'_> {
        let _ = self.tx.send(()).await;
        Permit(self)
    }
}

/// A place in a [`Gate`] that owns its gate, so that it can go with work that outlives
/// the one who waited for it (a blocking check whose waiter timed out keeps its place
/// until the check ends).
#[derive(Debug)]
pub(crate) struct OwnedPermit(std::sync::Arc<Gate>);

impl Gate {
    /// Waits for a place that owns the gate.
    pub(crate) async fn enter_owned(self: std::sync::Arc<Self>) -> OwnedPermit {
        let _ = self.tx.send(()).await;
        OwnedPermit(self)
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        let _ = self.0.rx.try_recv();
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let _ = self.0.rx.try_recv();
    }
}

/// Names that hold something one at a time: each user computes at most one file hash at
/// once, so that one user (with many sessions) cannot take every place of the server's
/// hash gate and keep everyone else's HASH waiting (review15d finding 2).
#[derive(Debug, Default)]
pub(crate) struct OnePerName {
    held: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// A name held in a [`OnePerName`], let go when dropped.
#[derive(Debug)]
pub(crate) struct NameHeld<'a> {
    set: &'a OnePerName,
    name: String,
}

impl OnePerName {
    /// Holds `name`, or `None` if it is held already.
    pub(crate) fn claim(&self, name: &str) -> Option<NameHeld<'_>> {
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.insert(name.to_owned()).then(|| NameHeld {
            set: self,
            name: name.to_owned(),
        })
    }
}

impl Drop for NameHeld<'_> {
    fn drop(&mut self) {
        self.set
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.name);
    }
}
