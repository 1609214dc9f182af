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
    /// The connection, once made (a node starts while Redis is down: it connects in the
    /// background meanwhile, counting locally).
    conn: Arc<std::sync::RwLock<Option<ConnectionManager>>>,
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
    /// Connects to Redis at `url` (`redis://127.0.0.1:6379/`). A URL that is not one is
    /// an error; a Redis that does not answer is not (review16b finding 3: a node could
    /// not start while Redis was down, so a rolling restart during an outage took the
    /// fleet down): the lockout warns, counts on this node, and connects in the background
    /// (every 2 s) until Redis answers.
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
        let first = runtime.block_on(open(client.clone()));
        let conn = Arc::new(std::sync::RwLock::new(first.as_ref().ok().cloned()));
        if let Err(e) = first {
            tracing::warn!(
                "login lockout: Redis at {url}: {e}; counting on this node, connecting in the background"
            );
            let slot = conn.clone();
            runtime.spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    if let Ok(c) = open(client.clone()).await {
                        *slot.write().unwrap_or_else(|e| e.into_inner()) = Some(c);
                        tracing::info!("login lockout: connected to Redis");
                        return;
                    }
                }
            });
        }
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

    /// The connection, if made.
    fn current(&self) -> Option<ConnectionManager> {
        self.conn.read().unwrap_or_else(|e| e.into_inner()).clone()
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

/// A connection to `client`, answering PING, within 5 s.
async fn open(client: redis::Client) -> Result<ConnectionManager, String> {
    let connect = async {
        let mut conn = ConnectionManager::new(client).await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        Ok::<_, redis::RedisError>(conn)
    };
    match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer".into()),
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
        let Some(mut conn) = self.current() else {
            self.warn("is not connected");
            return Box::pin(std::future::ready(self.local.allows_now(ip)));
        };
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
        let Some(mut conn) = self.current() else {
            self.warn("is not connected");
            return Box::pin(std::future::ready(()));
        };
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
