//! Behaviours that once differed between the runtimes' drivers (issue 14's list of
//! drift), each tested once for every server runtime.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::hostile::{each, plain_allowed, plain_session};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A listener on 127.0.0.1 whose accept queue is full and never drained: a further
/// connection attempt gets no answer (its SYN is dropped), so connecting to it hangs.
/// Returns the address and what keeps it full.
fn black_hole() -> (
    SocketAddr,
    Vec<tokio::net::TcpStream>,
    tokio::runtime::Runtime,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (addr, fillers) = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(1).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut fillers = Vec::new();
        // Fill the queue: attempts that complete, until one does not within a moment.
        for _ in 0..8 {
            match tokio::time::timeout(
                Duration::from_millis(300),
                tokio::net::TcpStream::connect(addr),
            )
            .await
            {
                Ok(Ok(s)) => fillers.push(s),
                _ => break,
            }
        }
        std::mem::forget(listener);
        (addr, fillers)
    });
    (addr, fillers, rt)
}

// Drift: the async servers connected in active mode with a 30 s timeout of their own; the
// blocking server used the configured `data_connect`. Every runtime now uses the
// configured one.
#[test]
fn active_mode_connects_within_the_configured_data_connect_timeout() {
    each(
        "active-connect",
        |s| {
            plain_allowed(s);
            s.config.active_mode = true;
            s.config.timeouts.data_connect = Duration::from_secs(2);
        },
        |f, r, tag| {
            std::fs::write(f.root().join("x.bin"), b"x").unwrap();
            let (addr, _fillers, _rt) = black_hole();
            let mut c = plain_session(f, r);
            let port = addr.port();
            let command = format!("PORT 127,0,0,1,{},{}", port >> 8, port & 0xff);
            assert_eq!(c.cmd(&command).unwrap(), 200, "{tag}");
            let started = Instant::now();
            let code = c.cmd("RETR x.bin").unwrap();
            let took = started.elapsed();
            eprintln!("{tag}: {code} after {took:?}");
            assert_eq!(code, 425, "{tag}");
            assert!(took < Duration::from_secs(8), "{tag}: took {took:?}");
            assert_eq!(c.cmd("NOOP").unwrap(), 200, "{tag}");
        },
    );
}
