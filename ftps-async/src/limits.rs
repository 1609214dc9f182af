//! Session limits and passive ports: bookkeeping every server adapter needs.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The address a per-address cap counts a client under: its IPv4 address (an IPv4-mapped
/// IPv6 address counts as the IPv4 one), or the /64 prefix of its IPv6 address. One IPv6
/// host is routinely given a whole /64 (RFC 4291 §2.5.1, RFC 7421): counted per address,
/// one client could take every slot by changing the low bits of its source address.
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from(bits))
            }
        },
    }
}

/// How to end a session from outside (tell its driver to close it): called when the
/// session is evicted to make room (see [`SessionLimits::admit`]).
pub(crate) type Evict = Arc<dyn Fn() + Send + Sync>;

/// Caps on concurrent sessions: in total, per client address (see [`client_key`]), and
/// for sessions not yet logged in.
///
/// Sessions that have not logged in are the ones anybody can open, so they are the ones
/// made to give way: when the server is full, or `before_login` sessions are waiting to
/// log in, a new connection evicts the oldest waiting session of the address that has
/// the most of them (a flood from a few addresses loses its own connections first; a
/// client with one connection in progress is evicted only when every address waiting has
/// one). Logged-in sessions are never evicted. A connection beyond its address's cap is
/// refused. An evicted session still counts until it has ended (a moment later), so the
/// total can be passed by the number of evictions in flight.
pub(crate) struct SessionLimits {
    total: usize,
    per_ip: usize,
    before_login: usize,
    open: AtomicUsize,
    state: Mutex<State>,
    /// Connections from a trusted balancer still waiting for their PROXY header (not
    /// sessions yet: whose they are is not known), oldest first, with what closes each.
    headers: Mutex<(VecDeque<(u64, Evict)>, u64)>,
}

/// A connection from a trusted balancer counted among those waiting for their PROXY
/// header ([`SessionLimits::await_header`]) until it is dropped.
pub(crate) struct HeaderSlot {
    limits: Arc<SessionLimits>,
    id: u64,
}

impl Drop for HeaderSlot {
    fn drop(&mut self) {
        let mut headers = self
            .limits
            .headers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        headers.0.retain(|(id, _)| *id != self.id);
    }
}

impl std::fmt::Debug for SessionLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLimits")
            .field("total", &self.total)
            .field("per_ip", &self.per_ip)
            .field("before_login", &self.before_login)
            .field("open", &self.open())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    by_ip: HashMap<IpAddr, usize>,
    /// Sessions not logged in yet, per address, oldest first.
    waiting: HashMap<IpAddr, VecDeque<(u64, Evict)>>,
    waiting_total: usize,
    next_id: u64,
}

impl State {
    /// Removes the waiting session `id` of `ip`, if it is still waiting.
    fn forget(&mut self, ip: IpAddr, id: u64) -> Option<Evict> {
        let queue = self.waiting.get_mut(&ip)?;
        let at = queue.iter().position(|(i, _)| *i == id)?;
        let (_, evict) = queue.remove(at)?;
        if queue.is_empty() {
            self.waiting.remove(&ip);
        }
        self.waiting_total -= 1;
        Some(evict)
    }

    /// Takes the oldest waiting session of the address with the most waiting.
    fn victim(&mut self) -> Option<Evict> {
        let ip = *self
            .waiting
            .iter()
            .max_by_key(|(_, q)| q.len())
            .map(|(ip, _)| ip)?;
        let queue = self.waiting.get_mut(&ip)?;
        let (_, evict) = queue.pop_front()?;
        if queue.is_empty() {
            self.waiting.remove(&ip);
        }
        self.waiting_total -= 1;
        Some(evict)
    }
}

/// A session counted against [`SessionLimits`] for as long as it lives.
pub(crate) struct SessionSlot {
    limits: Arc<SessionLimits>,
    ip: IpAddr,
    id: u64,
    evict: Evict,
}

impl std::fmt::Debug for SessionSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSlot").field("ip", &self.ip).finish()
    }
}

impl SessionLimits {
    /// At most `total` sessions, `per_ip` from one address, and `before_login` not yet
    /// logged in (at least one).
    pub(crate) fn new(total: usize, per_ip: usize, before_login: usize) -> Arc<SessionLimits> {
        Arc::new(SessionLimits {
            total,
            per_ip,
            before_login: before_login.max(1),
            open: AtomicUsize::new(0),
            state: Mutex::new(State::default()),
            headers: Mutex::default(),
        })
    }

    /// Counts a connection from a trusted balancer while it waits for its PROXY header:
    /// at most `before_login` wait at once (they are connections not logged in, which
    /// anybody who reaches the balancer can open, and no other cap counts them yet);
    /// past that, the oldest waiting is closed with `close` to make room, as a session
    /// not logged in is evicted. Without this bound every silent connection held a task
    /// (a thread on the blocking runtime) and a descriptor for the whole handshake
    /// timeout, however many there were (review16a, finding 1).
    pub(crate) fn await_header(self: &Arc<Self>, close: Evict) -> HeaderSlot {
        let (victim, id) = {
            let mut headers = self.headers.lock().unwrap_or_else(PoisonError::into_inner);
            let victim = if headers.0.len() >= self.before_login {
                headers.0.pop_front().map(|(_, close)| close)
            } else {
                None
            };
            let id = headers.1;
            headers.1 += 1;
            headers.0.push_back((id, close));
            (victim, id)
        };
        if let Some(close) = victim {
            tracing::debug!("connection awaiting a PROXY header closed to make room");
            close();
        }
        HeaderSlot {
            limits: self.clone(),
            id,
        }
    }

    /// Connections waiting for their PROXY header now.
    #[cfg(test)]
    pub(crate) fn awaiting_header(&self) -> usize {
        self.headers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .len()
    }

    /// A slot for a session from `ip`, which `evict` ends if it must make room before it
    /// has logged in; or `None` if its address's cap is reached, or the server is full of
    /// logged-in sessions (answer it with
    /// [`ftps_proto::server::too_many_sessions_reply`] and close).
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr, evict: Evict) -> Option<SessionSlot> {
        let ip = client_key(ip);
        let victim = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let here = state.by_ip.get(&ip).copied().unwrap_or(0);
            if here >= self.per_ip {
                return None;
            }
            let full = self.open.load(Ordering::Relaxed) >= self.total;
            let victim = if full || state.waiting_total >= self.before_login {
                match state.victim() {
                    Some(v) => Some(v),
                    None => return None,
                }
            } else {
                None
            };
            state.by_ip.insert(ip, here + 1);
            let id = state.next_id;
            state.next_id += 1;
            state
                .waiting
                .entry(ip)
                .or_default()
                .push_back((id, evict.clone()));
            state.waiting_total += 1;
            self.open.fetch_add(1, Ordering::Relaxed);
            (victim, id)
        };
        let (victim, id) = victim;
        if let Some(evict) = victim {
            tracing::debug!("session evicted to make room: not logged in");
            evict();
        }
        Some(SessionSlot {
            limits: self.clone(),
            ip,
            id,
            evict,
        })
    }

    /// Evicts one session waiting to log in (the oldest of the address with the most), if
    /// there is one: for when the server runs out of something no cap counts (file
    /// descriptors, say) and must make room. Whether one was.
    pub(crate) fn make_room(&self) -> bool {
        let victim = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .victim();
        match victim {
            Some(evict) => {
                tracing::debug!("session evicted to make room: not logged in");
                evict();
                true
            }
            None => false,
        }
    }

    /// Sessions open now.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Sessions open now that have not logged in.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .waiting_total
    }
}

impl SessionSlot {
    /// Follows the session's logins (its [`Event::LoggedIn`] and [`Event::LoggedOut`];
    /// other events are ignored): a named user's session is no longer evicted to make
    /// room; an anonymous one is (it is as cheap to get as a connection), and so is one
    /// that logged out (REIN).
    ///
    /// [`Event::LoggedIn`]: ftps_proto::server::Event::LoggedIn
    /// [`Event::LoggedOut`]: ftps_proto::server::Event::LoggedOut
    pub(crate) fn follow(&self, event: &ftps_proto::server::Event) {
        use ftps_proto::server::Event;
        match event {
            Event::LoggedIn {
                anonymous: false, ..
            } => self.logged_in(),
            Event::LoggedOut => self.logged_out(),
            _ => {}
        }
    }

    /// The session has logged in (not anonymously): it is no longer evicted to make room.
    pub(crate) fn logged_in(&self) {
        let forgotten = self
            .limits
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .forget(self.ip, self.id);
        drop(forgotten);
    }

    /// The session is not logged in any more (REIN): it may be evicted again, as the
    /// newest of its address.
    pub(crate) fn logged_out(&self) {
        let mut state = self
            .limits
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let queue = state.waiting.entry(self.ip).or_default();
        if queue.iter().any(|(id, _)| *id == self.id) {
            return;
        }
        queue.push_back((self.id, self.evict.clone()));
        state.waiting_total += 1;
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.limits.open.fetch_sub(1, Ordering::Relaxed);
        let mut state = self
            .limits
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let forgotten = state.forget(self.ip, self.id);
        if let Some(n) = state.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                state.by_ip.remove(&self.ip);
            }
        }
        drop(state);
        drop(forgotten);
    }
}

/// Counts held per key, under a cap per key.
#[derive(Debug)]
struct Counts<K> {
    cap: usize,
    held: Mutex<HashMap<K, usize>>,
}

impl<K: std::hash::Hash + Eq + Clone> Counts<K> {
    fn take(&self, key: &K) -> bool {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let n = held.entry(key.clone()).or_insert(0);
        if *n >= self.cap {
            return false;
        }
        *n += 1;
        true
    }

    fn give(&self, key: &K) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = held.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(key);
            }
        }
    }
}

/// Caps on open passive listeners: per client address (see [`client_key`]) and per user,
/// so that neither one address nor one account spread over many addresses can hold a
/// passive port range (each session holds at most one listener; one nobody uses is
/// closed after the data-connect timeout).
#[derive(Debug)]
pub(crate) struct ListenerCaps {
    per_ip: Counts<IpAddr>,
    per_user: Counts<String>,
}

/// A passive listener counted against [`ListenerCaps`] for as long as it is held.
#[derive(Debug)]
pub(crate) struct ListenerSlot {
    caps: Arc<ListenerCaps>,
    ip: IpAddr,
    user: String,
}

impl ListenerCaps {
    /// At most `per_ip` listeners for one address and `per_user` for one user.
    pub(crate) fn new(per_ip: usize, per_user: usize) -> Arc<ListenerCaps> {
        Arc::new(ListenerCaps {
            per_ip: Counts {
                cap: per_ip,
                held: Mutex::default(),
            },
            per_user: Counts {
                cap: per_user,
                held: Mutex::default(),
            },
        })
    }

    /// A listener for `user` at `ip`, or `None` if either cap is reached (425).
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr, user: &str) -> Option<ListenerSlot> {
        let ip = client_key(ip);
        if !self.per_ip.take(&ip) {
            return None;
        }
        let user = user.to_owned();
        if !self.per_user.take(&user) {
            self.per_ip.give(&ip);
            return None;
        }
        Some(ListenerSlot {
            caps: self.clone(),
            ip,
            user,
        })
    }
}

impl Drop for ListenerSlot {
    fn drop(&mut self) {
        self.caps.per_ip.give(&self.ip);
        self.caps.per_user.give(&self.user);
    }
}

/// The ports to try, in order, for a passive listener in `range`: from a start spread by
/// `seed` (so concurrent sessions do not all race for the lowest port), wrapping around,
/// at most 2000 of them.
pub(crate) fn passive_ports(range: &RangeInclusive<u16>, seed: u64) -> impl Iterator<Item = u16> {
    let (lo, hi) = (u64::from(*range.start()), u64::from(*range.end()));
    let span = hi.saturating_sub(lo) + 1;
    let start = seed.wrapping_mul(2_654_435_761) % span;
    (0..span.min(2000)).map(move |i| (lo + (start + i) % span) as u16)
}

/// Failed logins remembered per client address (see [`client_key`]), across sessions: after `after` failures
/// within `window` (successful logins in between do not reset the count), logins from that address are refused (the right password too) for
/// `lock`. The core already delays each failure and closes a session after a few; this
/// stops an attacker from simply opening new sessions. Memory is bounded: at most
/// [`LoginGuard::MAX_ADDRESSES`] addresses are tracked (beyond, new ones are not).
#[derive(Debug)]
pub(crate) struct LoginGuard {
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
    pub(crate) const MAX_ADDRESSES: usize = 10_000;

    /// Locks an address out for `lock` after `after` failures within `window`.
    pub(crate) fn new(
        after: u32,
        window: std::time::Duration,
        lock: std::time::Duration,
    ) -> LoginGuard {
        LoginGuard {
            after: after.max(1),
            window,
            lock,
            strikes: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a login from `ip` may be checked now.
    pub(crate) fn allows(&self, ip: IpAddr, now: std::time::Instant) -> bool {
        let ip = client_key(ip);
        let map = self.strikes.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&ip)
            .and_then(|s| s.locked_until)
            .is_none_or(|until| now >= until)
    }

    /// Records the outcome of a login checked from `ip`.
    pub(crate) fn record(&self, ip: IpAddr, now: std::time::Instant, accepted: bool) {
        let ip = client_key(ip);
        // A success does not wipe the address's failures: they expire with their window.
        // Wiped, any login that succeeds (an anonymous one, or the attacker's own account)
        // would reset the count and let the guessing go on without end.
        if accepted {
            return;
        }
        let mut map = self.strikes.lock().unwrap_or_else(PoisonError::into_inner);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    fn flag() -> (Arc<AtomicBool>, Evict) {
        let f = Arc::new(AtomicBool::new(false));
        let g = f.clone();
        (f, Arc::new(move || g.store(true, Ordering::SeqCst)))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn ipv6_clients_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(client_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            client_key(ip("2001:db8:1:2:bbbb::7")),
            client_key(ip("2001:db8:1:2::99"))
        );
        assert_ne!(
            client_key(ip("2001:db8:1:3::1")),
            client_key(ip("2001:db8:1:2::1"))
        );
        assert_eq!(client_key(ip("::ffff:127.0.0.2")), ip("127.0.0.2"));
        assert_eq!(client_key(ip("127.0.0.2")), ip("127.0.0.2"));
    }

    #[test]
    fn a_full_server_evicts_the_oldest_waiting_session_of_the_busiest_address() {
        let limits = SessionLimits::new(4, 10, 4);
        let (a1, e) = flag();
        let s_a1 = limits.admit(ip("127.0.0.2"), e);
        let (a2, e) = flag();
        let _s_a2 = limits.admit(ip("127.0.0.2"), e);
        let (b1, e) = flag();
        let _s_b1 = limits.admit(ip("127.0.0.3"), e);
        let (user, e) = flag();
        let logged = limits.admit(ip("127.0.0.4"), e);
        logged.iter().for_each(SessionSlot::logged_in);
        assert!(s_a1.is_some() && logged.is_some());
        assert_eq!((limits.open(), limits.waiting()), (4, 3));
        // Full: the newcomer evicts 127.0.0.2's oldest, never the logged-in session.
        let (_c, e) = flag();
        let newcomer = limits.admit(ip("127.0.0.5"), e);
        assert!(newcomer.is_some());
        assert!(a1.load(Ordering::SeqCst));
        assert!(!a2.load(Ordering::SeqCst) && !b1.load(Ordering::SeqCst));
        assert!(!user.load(Ordering::SeqCst));
        drop(s_a1);
        assert_eq!(limits.open(), 4);
    }

    #[test]
    fn a_server_full_of_logged_in_sessions_refuses_and_addresses_keep_their_cap() {
        let limits = SessionLimits::new(2, 1, 2);
        let slots: Vec<_> = ["127.0.0.2", "127.0.0.3"]
            .iter()
            .filter_map(|a| limits.admit(ip(a), flag().1))
            .collect();
        assert_eq!(slots.len(), 2);
        assert!(
            limits.admit(ip("127.0.0.2"), flag().1).is_none(),
            "per address"
        );
        slots.iter().for_each(SessionSlot::logged_in);
        assert!(
            limits.admit(ip("127.0.0.4"), flag().1).is_none(),
            "all logged in"
        );
        drop(slots);
        assert_eq!((limits.open(), limits.waiting()), (0, 0));
    }

    #[test]
    fn a_successful_login_does_not_reset_an_address_failures() {
        let guard = LoginGuard::new(
            4,
            std::time::Duration::from_secs(600),
            std::time::Duration::from_secs(300),
        );
        let now = std::time::Instant::now();
        let a = ip("127.0.0.9");
        guard.record(a, now, false);
        guard.record(a, now, false);
        // An anonymous login (or the attacker's own account) in between.
        guard.record(a, now, true);
        guard.record(a, now, false);
        assert!(guard.allows(a, now));
        guard.record(a, now, false);
        assert!(!guard.allows(a, now), "four failures lock the address out");
    }

    #[test]
    fn connections_awaiting_a_header_are_bounded_oldest_closed_first() {
        let limits = SessionLimits::new(100, 100, 2);
        let closed: Vec<Arc<AtomicBool>> = (0..4).map(|_| Arc::default()).collect();
        let close = |i: usize| -> Evict {
            let flag = closed[i].clone();
            Arc::new(move || flag.store(true, Ordering::SeqCst))
        };
        let a = limits.await_header(close(0));
        let b = limits.await_header(close(1));
        assert_eq!(limits.awaiting_header(), 2);
        assert!(!closed[0].load(Ordering::SeqCst));
        // A third closes the oldest.
        let c = limits.await_header(close(2));
        assert!(closed[0].load(Ordering::SeqCst));
        assert!(!closed[1].load(Ordering::SeqCst));
        assert_eq!(limits.awaiting_header(), 2);
        drop(a); // Already gone from the count.
        drop(b);
        assert_eq!(limits.awaiting_header(), 1);
        let _d = limits.await_header(close(3));
        assert!(!closed[2].load(Ordering::SeqCst), "room was left");
        drop(c);
        assert_eq!(limits.awaiting_header(), 1);
        // Sessions are not counted by it, nor it by them.
        assert_eq!(limits.open(), 0);
    }

    #[test]
    fn passive_listeners_are_capped_per_address_and_per_user() {
        let caps = ListenerCaps::new(2, 3);
        let a = caps.admit(ip("127.0.0.2"), "u");
        let b = caps.admit(ip("127.0.0.2"), "u");
        assert!(a.is_some() && b.is_some());
        assert!(caps.admit(ip("127.0.0.2"), "v").is_none(), "address cap");
        let c = caps.admit(ip("127.0.0.3"), "u");
        assert!(c.is_some());
        assert!(caps.admit(ip("127.0.0.4"), "u").is_none(), "user cap");
        assert!(caps.admit(ip("127.0.0.4"), "v").is_some(), "another user");
        drop(a);
        assert!(caps.admit(ip("127.0.0.4"), "u").is_some());
    }
}
