//! [`Budget`]: memory that sessions share, so that what they hold together is bounded
//! whatever their number.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes that sessions take from and give back to, server-wide. A transfer's buffers
/// are large (a download's grow to 1 MiB, an upload's are 1 MiB) only with bytes from
/// the budget: a thousand stalled downloads held 2 GB with 1 MiB buffers each, 950 stalled
/// uploads 465 MB (issue 13's fourth and fifth reviews); with the budget the large buffers
/// of all of them together stay within it, and the rest keep to 64 KiB ones (slower only
/// when many transfers run at once).
#[derive(Debug)]
pub(crate) struct Budget {
    left: AtomicUsize,
}

impl Budget {
    /// A budget of `bytes`.
    pub(crate) fn new(bytes: usize) -> Arc<Budget> {
        Arc::new(Budget {
            left: AtomicUsize::new(bytes),
        })
    }

    /// Takes `bytes` if that many are left.
    pub(crate) fn take(self: &Arc<Self>, bytes: usize) -> Option<Taken> {
        self.left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(bytes)
            })
            .ok()
            .map(|_| Taken {
                budget: self.clone(),
                bytes,
            })
    }

    /// Bytes left.
    #[cfg(test)]
    pub(crate) fn left(&self) -> usize {
        self.left.load(Ordering::Acquire)
    }
}

/// Bytes taken from a [`Budget`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Taken {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Drop for Taken {
    fn drop(&mut self) {
        self.budget.left.fetch_add(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::Budget;

    #[test]
    fn bytes_taken_come_back_when_dropped() {
        let b = Budget::new(100);
        let a = b.take(60);
        assert!(a.is_some());
        assert!(b.take(50).is_none());
        let c = b.take(40);
        assert_eq!(b.left(), 0);
        drop((a, c));
        assert_eq!(b.left(), 100);
    }
}
