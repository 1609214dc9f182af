//! [`ReleaseEmpty`]: collections that give their allocation back once empty.
//!
//! A session spends most of its life idle, and what its last command or transfer left in
//! its collections' capacity (a data task's entry, an aborted task in its grace, a
//! command's input) would stay with it, in every idle session: after one refused listing,
//! about 330 bytes (measured with heaptrack, issue 18). The driver releases them before it
//! waits (`Driver::release_idle` in `server.rs`); a busy session allocates again.

use std::collections::{HashMap, HashSet};

/// A collection that can give its allocation back when it is empty.
pub(crate) trait ReleaseEmpty {
    /// Frees the allocation if nothing is in it.
    fn release_if_empty(&mut self);
}

impl<T> ReleaseEmpty for Vec<T> {
    fn release_if_empty(&mut self) {
        if self.is_empty() && self.capacity() > 0 {
            *self = Vec::new();
        }
    }
}

impl<K, V> ReleaseEmpty for HashMap<K, V> {
    fn release_if_empty(&mut self) {
        if self.is_empty() && self.capacity() > 0 {
            *self = HashMap::new();
        }
    }
}

impl<K> ReleaseEmpty for HashSet<K> {
    fn release_if_empty(&mut self) {
        if self.is_empty() && self.capacity() > 0 {
            *self = HashSet::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_collections_give_their_allocation_back_and_others_keep_it() {
        let mut v = vec![1, 2, 3];
        v.release_if_empty();
        assert_eq!(v.len(), 3);
        v.clear();
        v.release_if_empty();
        assert_eq!(v.capacity(), 0);
        let mut m: HashMap<u8, u8> = HashMap::from([(1, 1)]);
        m.release_if_empty();
        assert_eq!(m.get(&1), Some(&1));
        m.remove(&1);
        m.release_if_empty();
        assert_eq!(m.capacity(), 0);
        let mut s: HashSet<u8> = HashSet::from([1]);
        s.remove(&1);
        s.release_if_empty();
        assert_eq!(s.capacity(), 0);
    }
}
