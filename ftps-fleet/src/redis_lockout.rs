//! [`RedisLockout`]: failed logins per address counted in Redis, shared by every node.

use ftps_async::runtime::BoxFuture;
use ftps_async::{LocalLockout, Lockout};
use redis::aio::ConnectionManager;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long one Redis call may take before the lockout answers without it.
const CALL_TIMEOUT: Duration = Duration::from_millis(500);

/// The login lockout in Redis: after `failures` failed logins from an address within
/// `window` (on any node), the address is locked out for `lock` on every node.
///
/// Two keys per address, both expiring on their own (nothing to clean up):
/// `{prefix}fail:{ip}`, the failures, counted with `INCR` and given the window with
/// `EXPIRE ... NX` when first set (in one transaction); and `{prefix}lock:{ip}`, set with
/// the lock's lifetime (`SET ... EX`) by the failure that reaches the bound. A login is
/// allowed while the lock key does not exist.
///
/// Redis that does not answer within 500 ms (down, unreachable) does not stop logins:
/// the lockout fails open, and counts on this node meanwhile (a [`LocalLockout`] with the
/// same bounds), so a node still locks out one address's guessing on its own. Such
/// failures are warned of, at most once a second.
///
/// The calls run on a small runtime of the lockout's own, so it serves a server on any
/// runtime.
pub struct RedisLockout {
    conn: ConnectionManager,
    /// The lockout's own runtime (taken and shut down in the background when dropped: a
    /// runtime dropped inside another one's task would panic).
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    failures: u32,
    window: Duration,
    lock: Duration,
    prefix: String,
    local: Arc<LocalLockout>,
    /// When the last warning was said (ms since `start`), for the throttle.
    warned: Arc<AtomicU64>,
    start: Instant,
}

impl std::fmt::Debug for RedisLockout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLockout")
            .field("failures", &self.failures)
            .field("window", &self.window)
            .field("lock", &self.lock)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisLockout {
    /// Connects to Redis at `url` (`redis://127.0.0.1:6379/`), checking it answers.
    pub fn connect(
        url: &str,
        failures: u32,
        window: Duration,
        lock: Duration,
    ) -> Result<RedisLockout, String> {
        let client = redis::Client::open(url).map_err(|e| format!("{url}: {e}"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ftps-redis")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let conn = runtime.block_on(async {
            let connect = ConnectionManager::new(client);
            let mut conn = tokio::time::timeout(Duration::from_secs(5), connect)
                .await
                .map_err(|_| format!("{url}: no answer"))?
                .map_err(|e| format!("{url}: {e}"))?;
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            Ok::<_, String>(conn)
        })?;
        Ok(RedisLockout {
            conn,
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            failures: failures.max(1),
            window,
            lock,
            prefix: "ftps:".into(),
            local: Arc::new(LocalLockout::new(failures, window, lock)),
            warned: Arc::new(AtomicU64::new(0)),
            start: Instant::now(),
        })
    }

    /// Keys start with `prefix` (default `ftps:`): fleets sharing one Redis keep apart.
    #[must_use]
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_owned();
        self
    }

    fn key(&self, kind: &str, ip: IpAddr) -> String {
        format!("{}{kind}:{ip}", self.prefix)
    }

    /// Warns that Redis failed, at most once a second.
    fn warn(&self, what: &str) {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.warned.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= 1000)
            && self
                .warned
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!("login lockout: Redis {what}; counting on this node meanwhile");
        }
    }
}

impl Drop for RedisLockout {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Lockout for RedisLockout {
    fn allows(&self, ip: IpAddr) -> BoxFuture<'_, bool> {
        let mut conn = self.conn.clone();
        let key = self.key("lock", ip);
        let task = self.handle.spawn(async move {
            let mut exists = redis::cmd("EXISTS");
            exists.arg(&key);
            let asked = exists.query_async::<bool>(&mut conn);
            tokio::time::timeout(CALL_TIMEOUT, asked).await
        });
        Box::pin(async move {
            let locally = self.local.allows_now(ip);
            match task.await {
                Ok(Ok(Ok(locked))) => !locked && locally,
                Ok(Ok(Err(e))) => {
                    self.warn(&format!("failed: {e}"));
                    locally
                }
                _ => {
                    self.warn("did not answer");
                    locally
                }
            }
        })
    }

    fn failed(&self, ip: IpAddr) -> BoxFuture<'_, ()> {
        self.local.failed_now(ip);
        let mut conn = self.conn.clone();
        let (fail, lock) = (self.key("fail", ip), self.key("lock", ip));
        let (window, lock_for, failures) = (
            self.window.as_secs().max(1),
            self.lock.as_secs().max(1),
            u64::from(self.failures),
        );
        let task = self.handle.spawn(async move {
            let count = async {
                let (count,): (u64,) = redis::pipe()
                    .atomic()
                    .cmd("INCR")
                    .arg(&fail)
                    .cmd("EXPIRE")
                    .arg(&fail)
                    .arg(window)
                    .arg("NX")
                    .ignore()
                    .query_async(&mut conn)
                    .await?;
                if count >= failures {
                    redis::cmd("SET")
                        .arg(&lock)
                        .arg(1)
                        .arg("EX")
                        .arg(lock_for)
                        .query_async::<()>(&mut conn)
                        .await?;
                }
                Ok::<_, redis::RedisError>(())
            };
            tokio::time::timeout(CALL_TIMEOUT, count).await
        });
        Box::pin(async move {
            match task.await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => self.warn(&format!("failed: {e}")),
                _ => self.warn("did not answer"),
            }
        })
    }
}
