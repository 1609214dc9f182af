//! A server that goes silent never holds a client: every phase has a deadline, on every
//! client runtime. A listener that accepts and never speaks TLS (implicit FTPS), a server
//! that accepts AUTH TLS and then says nothing, and a download whose data stops moving
//! through the data-stream types (`DataReader`) all end in an error within the client's
//! timeouts (set to 2 s here), not in a hang. Found by trying the `ftps` CLI as an outsider.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::ClientRuntime;
use ftps_conformance::runtimes::{Blocking, Smol, Tokio};
use ftps_conformance::scripted::{Ending, FILE, ScriptedServer};
use ftps_proto::ProtectionLevel;
use ftps_proto::client::ConnectionMode;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

fn runtimes() -> [&'static dyn ClientRuntime; 3] {
    static SMOL: Smol = Smol::new();
    [&Tokio, &Blocking, &SMOL]
}

const LIMIT: Duration = Duration::from_secs(2);
/// The longest a phase may take to fail: its timeout and some.
const BOUND: Duration = Duration::from_secs(8);

/// A listener whose connections are accepted and then left silent, each held open; with
/// `explicit`, it greets, takes AUTH TLS with 234, and goes silent.
fn silent(explicit: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().take(8) {
            let Ok(mut conn) = conn else { continue };
            if explicit {
                let _ = conn.write_all(b"220 hello\r\n");
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                let _ = conn.write_all(b"234 go ahead\r\n");
            }
            held.push(conn);
        }
        std::thread::sleep(Duration::from_secs(60));
    });
    port
}

fn options(
    server: &ScriptedServer,
    port: u16,
    mode: ConnectionMode,
) -> ftps_backend::client::ClientOptions {
    let mut o = server.client_options(ProtectionLevel::Private, false);
    o.port = port;
    o.session.mode = mode;
    o.connect_timeout = LIMIT;
    o.session.reply_timeout = LIMIT;
    o.session.data_timeout = LIMIT;
    o
}

#[test]
fn a_silent_tls_handshake_times_out() {
    let server = ScriptedServer::start(Ending::CloseThenReply).unwrap();
    for client in runtimes() {
        for (explicit, mode) in [
            (false, ConnectionMode::Implicit),
            (true, ConnectionMode::ExplicitRequired),
        ] {
            let port = silent(explicit);
            let started = Instant::now();
            let result = client.connect(options(&server, port, mode));
            let took = started.elapsed();
            assert!(
                result.is_err(),
                "{}: {mode:?} connected to a silent server",
                client.name()
            );
            assert!(took < BOUND, "{} {mode:?}: {took:?}", client.name());
        }
    }
}

#[test]
fn a_stalled_streamed_download_times_out_and_the_session_goes_on() {
    let server = ScriptedServer::start(Ending::CloseThenReply).unwrap();
    let port = server.addr().port();
    for client in runtimes() {
        server.set_stall_after(Some(10_000));
        let mut session = client
            .connect(options(&server, port, ConnectionMode::ExplicitRequired))
            .unwrap();
        let started = Instant::now();
        let result = session.retrieve_streamed(FILE);
        let took = started.elapsed();
        assert!(
            result.is_err(),
            "{}: a stalled download succeeded",
            client.name()
        );
        assert!(took < BOUND, "{}: {took:?}", client.name());
        let started = Instant::now();
        let result = session.retrieve(FILE, 0);
        assert!(result.is_err(), "{}: buffered, stalled", client.name());
        assert!(started.elapsed() < BOUND, "{}", client.name());
        server.set_stall_after(None);
        // The session may have ended with the stall; a new one works.
        let mut fresh = client
            .connect(options(&server, port, ConnectionMode::ExplicitRequired))
            .unwrap();
        assert!(fresh.retrieve_streamed(FILE).is_ok(), "{}", client.name());
    }
}
