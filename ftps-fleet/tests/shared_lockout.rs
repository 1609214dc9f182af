//! Issue 16, item 4: two nodes sharing a `RedisLockout` (a real redis-server on loopback)
//! count one address's failures together — wrong passwords from 127.0.0.2 through both
//! nodes lock 127.0.0.2 out on both, and leave 127.0.0.3 alone — and a Redis that goes
//! down does not stop logins.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

mod common;
use common::{login, node, place};

use ftps_conformance::redis::Redis;
use std::time::{Duration, Instant};

#[test]
fn nodes_sharing_redis_lock_an_address_out_together() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let (rt, dir) = place("lockout");
    let root = dir.join("root");
    let (a, b) = (
        node(&rt, &root, &redis.url()),
        node(&rt, &root, &redis.url()),
    );

    // Three failures from 127.0.0.2, through both nodes: none reaches the bound alone.
    assert_eq!(login([127, 0, 0, 2], a, "wrong"), 530);
    assert_eq!(login([127, 0, 0, 2], b, "wrong"), 530);
    assert_eq!(login([127, 0, 0, 2], a, "wrong"), 530);
    // Locked out on both, the right password too.
    assert_eq!(
        login([127, 0, 0, 2], b, "right"),
        530,
        "node b did not count node a's"
    );
    assert_eq!(login([127, 0, 0, 2], a, "right"), 530);
    // Another address is not.
    assert_eq!(login([127, 0, 0, 3], b, "right"), 230);
    assert_eq!(login([127, 0, 0, 3], a, "right"), 230);

    // Redis goes down: logins go on (within the call's bound), counted per node.
    redis.stop();
    let start = Instant::now();
    assert_eq!(login([127, 0, 0, 4], a, "right"), 230);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "a login waited {:?} on a Redis that is down",
        start.elapsed()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
