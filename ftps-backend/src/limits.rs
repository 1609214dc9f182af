//! Session limits and passive ports: bookkeeping every server adapter needs.

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Caps on concurrent sessions, in total and per client address.
#[derive(Debug)]
pub struct SessionLimits {
    total: usize,
    per_ip: usize,
    open: AtomicUsize,
    by_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// A session counted against [`SessionLimits`] for as long as it lives.
#[derive(Debug)]
pub struct SessionSlot {
    limits: Arc<SessionLimits>,
    ip: IpAddr,
}

impl SessionLimits {
    /// At most `total` sessions, and `per_ip` from one address.
    pub fn new(total: usize, per_ip: usize) -> Arc<SessionLimits> {
        Arc::new(SessionLimits {
            total,
            per_ip,
            open: AtomicUsize::new(0),
            by_ip: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a session from `ip`, or `None` if a cap is reached (answer it with
    /// [`ftps_proto::server::too_many_sessions_reply`] and close).
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<SessionSlot> {
        let mut map = self.by_ip.lock().unwrap_or_else(PoisonError::into_inner);
        let here = map.get(&ip).copied().unwrap_or(0);
        if here >= self.per_ip || self.open.load(Ordering::Relaxed) >= self.total {
            return None;
        }
        map.insert(ip, here + 1);
        self.open.fetch_add(1, Ordering::Relaxed);
        Some(SessionSlot {
            limits: self.clone(),
            ip,
        })
    }

    /// Sessions open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.limits.open.fetch_sub(1, Ordering::Relaxed);
        let mut map = self
            .limits
            .by_ip
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// The ports to try, in order, for a passive listener in `range`: from a start spread by
/// `seed` (so concurrent sessions do not all race for the lowest port), wrapping around,
/// at most 2000 of them.
pub fn passive_ports(range: &RangeInclusive<u16>, seed: u64) -> impl Iterator<Item = u16> {
    let (lo, hi) = (u64::from(*range.start()), u64::from(*range.end()));
    let span = hi.saturating_sub(lo) + 1;
    let start = seed.wrapping_mul(2_654_435_761) % span;
    (0..span.min(2000)).map(move |i| (lo + (start + i) % span) as u16)
}
