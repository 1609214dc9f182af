//! [`Lockout`]: where failed logins are counted per client address — in this process
//! ([`LocalLockout`], the default) or shared by a fleet's nodes (`ftps_fleet::RedisLockout`),
//! so that an address locked out through one node is locked out on every node.

use crate::limits::LoginGuard;
use crate::runtime::BoxFuture;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Counts failed logins per client address and says which addresses are locked out.
/// The server asks [`allows`](Self::allows) before it checks a login (and again after,
/// so that parallel sessions cannot each get a guess past the bound) and tells
/// [`failed`](Self::failed) of every failure; a success is not reported (failures expire
/// with their window, never reset by a login that succeeds). Addresses come as the
/// server counts clients: an IPv6 client by its /64.
///
/// An implementation that asks a network service must bound its own waits, and should
/// fail open (allow) when the service does not answer, counting locally meanwhile: a
/// lockout store that is down must not lock every user out.
pub trait Lockout: Send + Sync + 'static {
    /// Whether a login from `ip` may be checked now.
    fn allows(&self, ip: IpAddr) -> BoxFuture<'_, bool>;
    /// A login from `ip` failed.
    fn failed(&self, ip: IpAddr) -> BoxFuture<'_, ()>;
}

/// The lockout of one process: after `failures` failed logins within `window`, an
/// address is locked out for `lock` (the right password too). At most 10,000 addresses
/// are tracked at once.
#[derive(Debug)]
pub struct LocalLockout(LoginGuard);

impl LocalLockout {
    /// Locks an address out for `lock` after `failures` failures within `window`.
    pub fn new(failures: u32, window: Duration, lock: Duration) -> Self {
        LocalLockout(LoginGuard::new(failures, window, lock))
    }

    /// Whether a login from `ip` may be checked now (without waiting).
    pub fn allows_now(&self, ip: IpAddr) -> bool {
        self.0.allows(ip, Instant::now())
    }

    /// Records a failed login from `ip` (without waiting).
    pub fn failed_now(&self, ip: IpAddr) {
        self.0.record(ip, Instant::now(), false);
    }
}

impl Default for LocalLockout {
    /// 10 failures within 10 minutes lock an address out for 5 minutes.
    fn default() -> Self {
        LocalLockout(LoginGuard::default())
    }
}

impl Lockout for LocalLockout {
    fn allows(&self, ip: IpAddr) -> BoxFuture<'_, bool> {
        Box::pin(std::future::ready(self.allows_now(ip)))
    }
    fn failed(&self, ip: IpAddr) -> BoxFuture<'_, ()> {
        self.failed_now(ip);
        Box::pin(std::future::ready(()))
    }
}
