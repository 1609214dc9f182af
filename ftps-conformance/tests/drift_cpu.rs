//! One behaviour from issue 14's list of drift, in a test binary of its own because it
//! reads the process's CPU time (other tests in the same process would add theirs): the
//! blocking server used to poll a waiting passive listener every 2 ms (40 listeners:
//! 0.20 s of CPU in 2 s, measured on 16d8586); a listener waiting for its client now
//! costs nothing on every server runtime.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::hostile::{each, plain_allowed, plain_session_from};
use std::time::Duration;

/// The process's user and system CPU time.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Past the command name (in parentheses): utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // Linux reports them in USER_HZ, 100 a second.
    Duration::from_millis(ticks * 10)
}

#[test]
fn passive_listeners_waiting_for_their_client_cost_no_cpu() {
    const LISTENERS: u8 = 40;
    each(
        "waiting-listeners",
        |s| {
            plain_allowed(s);
            s.max_passive_per_user = Some(usize::from(LISTENERS));
        },
        |f, r, tag| {
            let mut sessions = Vec::new();
            for i in 0..LISTENERS {
                // One address each: the per-address listener cap stays out of the way.
                let mut c = plain_session_from(f, r, [127, 0, 1, i + 1]);
                assert_eq!(c.cmd("PASV").unwrap(), 227, "{tag}");
                sessions.push(c);
            }
            std::thread::sleep(Duration::from_millis(300));
            let before = cpu();
            std::thread::sleep(Duration::from_secs(2));
            let used = cpu() - before;
            eprintln!("{tag}: {LISTENERS} waiting listeners used {used:?} of CPU in 2 s");
            assert!(used <= Duration::from_millis(60), "{tag}: {used:?}");
        },
    );
}
