//! Review 16b: the Redis lockout attacked from outside, with a redis-server of the test's
//! own on loopback (so it can be stopped, restarted on its port, or frozen with SIGSTOP).
//! Tests not ignored are attacks that held, kept as guards; findings are ignored with
//! their number ("review16b finding N"; the list is in
//! `ftps-conformance/tests/review16b.rs`).

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

mod common;
use common::{login, node, place};

use ftps_conformance::redis::Redis;
use std::time::{Duration, Instant};

/// Held: Redis restarted (on its port, empty) — once each node has met the broken
/// connection, the nodes count together in Redis again: two failures through node a and
/// one through node b (neither node's own count reaches 3) lock the address out on both.
#[test]
fn after_a_redis_restart_the_nodes_count_together_again() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let (rt, dir) = place("restart");
    let url = redis.url();
    let (a, b) = (
        node(&rt, &dir.join("root"), &url),
        node(&rt, &dir.join("root"), &url),
    );
    redis.restart();
    // Each node's first call after the restart meets the old connection (and fails open).
    for node in [a, b] {
        for _ in 0..2 {
            assert_eq!(login([127, 0, 0, 9], node, "right"), 230);
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(login([127, 0, 0, 5], a, "wrong"), 530);
    assert_eq!(login([127, 0, 0, 5], b, "wrong"), 530);
    assert_eq!(login([127, 0, 0, 5], a, "wrong"), 530);
    let locked = login([127, 0, 0, 5], b, "right");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        locked, 530,
        "after a Redis restart, node b no longer saw node a's failures"
    );
}

/// Held: a Redis that hangs (SIGSTOP: the connection open, no answer) holds no login
/// long — each call gives up after 500 ms and the lockout fails open — and while it hangs
/// a node still locks a guesser out on its own (3 failures), so fail-open is not
/// unbounded guessing; once Redis answers again (SIGCONT), logins are as before.
#[test]
fn a_hung_redis_holds_no_login_and_the_node_still_locks_out() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let (rt, dir) = place("hung");
    let a = node(&rt, &dir.join("root"), &redis.url());
    redis.signal("-STOP");
    let start = Instant::now();
    let ok = login([127, 0, 0, 6], a, "right");
    let took = start.elapsed();
    let wrong: Vec<u16> = (0..3).map(|_| login([127, 0, 0, 7], a, "wrong")).collect();
    let after = login([127, 0, 0, 7], a, "right");
    redis.signal("-CONT");
    std::thread::sleep(Duration::from_millis(300));
    let again = login([127, 0, 0, 6], a, "right");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(ok, 230, "a login while Redis hangs");
    assert!(took < Duration::from_secs(3), "a login waited {took:?}");
    assert_eq!(wrong, [530, 530, 530]);
    assert_eq!(after, 530, "guessing went on unbounded while Redis hung");
    assert_eq!(again, 230, "after Redis answered again");
}
