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

/// Failed logins remembered per client address, across sessions: after `after` failures
/// within `window`, logins from that address are refused (the right password too) for
/// `lock`. The core already delays each failure and closes a session after a few; this
/// stops an attacker from simply opening new sessions. Memory is bounded: at most
/// [`LoginGuard::MAX_ADDRESSES`] addresses are tracked (beyond, new ones are not).
#[derive(Debug)]
pub struct LoginGuard {
    after: u32,
    window: std::time::Duration,
    lock: std::time::Duration,
    strikes: Mutex<HashMap<IpAddr, Strikes>>,
}

#[derive(Debug, Clone, Copy)]
struct Strikes {
    count: u32,
    since: std::time::Instant,
    locked_until: Option<std::time::Instant>,
}

impl LoginGuard {
    /// The most addresses tracked at once.
    pub const MAX_ADDRESSES: usize = 10_000;

    /// Locks an address out for `lock` after `after` failures within `window`.
    pub fn new(after: u32, window: std::time::Duration, lock: std::time::Duration) -> LoginGuard {
        LoginGuard {
            after: after.max(1),
            window,
            lock,
            strikes: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a login from `ip` may be checked now.
    pub fn allows(&self, ip: IpAddr, now: std::time::Instant) -> bool {
        let map = self.strikes.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&ip)
            .and_then(|s| s.locked_until)
            .is_none_or(|until| now >= until)
    }

    /// Records the outcome of a login checked from `ip`.
    pub fn record(&self, ip: IpAddr, now: std::time::Instant, accepted: bool) {
        let mut map = self.strikes.lock().unwrap_or_else(PoisonError::into_inner);
        if accepted {
            map.remove(&ip);
            return;
        }
        if map.len() >= Self::MAX_ADDRESSES && !map.contains_key(&ip) {
            let (window, lock) = (self.window, self.lock);
            map.retain(|_, s| {
                now.duration_since(s.since) < window
                    || s.locked_until.is_some_and(|u| now < u + lock)
            });
            if map.len() >= Self::MAX_ADDRESSES {
                return;
            }
        }
        let s = map.entry(ip).or_insert(Strikes {
            count: 0,
            since: now,
            locked_until: None,
        });
        if now.duration_since(s.since) > self.window {
            *s = Strikes {
                count: 0,
                since: now,
                locked_until: None,
            };
        }
        s.count += 1;
        if s.count >= self.after {
            s.locked_until = Some(now + self.lock);
        }
    }
}

impl Default for LoginGuard {
    /// 10 failures within 10 minutes lock an address out for 5 minutes.
    fn default() -> Self {
        LoginGuard::new(
            10,
            std::time::Duration::from_secs(600),
            std::time::Duration::from_secs(300),
        )
    }
}
