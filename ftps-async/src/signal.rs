//! [`Signal`]: a flag set once that tasks can wait for, on every runtime.

use event_listener::Event;
use std::sync::atomic::{AtomicBool, Ordering};

/// A flag set once; whoever waits wakes when it is set, and every later wait completes at
/// once. Small while nobody waits (a flag and a null pointer; the waiters' list is
/// allocated with the first waiter): every session holds one, where a closed
/// `async_channel` took 768 bytes (measured with heaptrack, issue 18).
#[derive(Debug, Default)]
pub(crate) struct Signal {
    set: AtomicBool,
    event: Event,
}

impl Signal {
    /// Sets the flag and wakes every waiter.
    pub(crate) fn set(&self) {
        self.set.store(true, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }

    /// Whether the flag is set.
    pub(crate) fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    /// Completes once the flag is set.
    pub(crate) async fn wait(&self) {
        while !self.is_set() {
            let listener = self.event.listen();
            // Set between the check and the listen: the notification came before the
            // listener and would not reach it.
            if self.is_set() {
                return;
            }
            listener.await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn waiters_wake_when_set_and_later_waits_complete_at_once() {
        let signal = Arc::new(Signal::default());
        assert!(!signal.is_set());
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let signal = signal.clone();
                std::thread::spawn(move || futures_lite::future::block_on(signal.wait()))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            waiters.iter().all(|w| !w.is_finished()),
            "nobody woke early"
        );
        signal.set();
        for w in waiters {
            w.join().unwrap();
        }
        assert!(signal.is_set());
        futures_lite::future::block_on(signal.wait());
    }
}
