//! A client's source address (`ClientOptions::source_address`, `ftps --interface`): every
//! connection of the session starts from it, on every client runtime. The server (ours,
//! which refuses a data connection from any address but its control connection's) sees
//! the login from 127.0.0.2 and takes uploads and downloads over EPSV, PASV and active
//! data connections — so each data connection came from 127.0.0.2 too. A host name is
//! reached by its addresses of the source's family; an IPv6 source for an IPv4 server, or
//! an address this host does not have, fails at once with an error that says so.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_backend::client::ClientOptions;
use ftps_backend::{Actor, Hooks, Transferred};
use ftps_conformance::Fixture;
use ftps_conformance::runtimes::{Blocking, Smol, Tokio};
use ftps_conformance::{ClientRuntime, ServerRuntime};
use ftps_proto::client::ConnectionMode;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn clients() -> [&'static dyn ClientRuntime; 3] {
    static SMOL: Smol = Smol::new();
    [&Tokio, &Blocking, &SMOL]
}

/// The peer of every login and finished transfer the server saw.
#[derive(Default)]
struct Peers(Mutex<Vec<(String, IpAddr)>>);

impl Hooks for Peers {
    fn login(&self, actor: &Actor) {
        self.0
            .lock()
            .unwrap()
            .push(("login".into(), actor.peer.ip()));
    }
    fn upload_finished(&self, actor: &Actor, upload: &Transferred) {
        let what = format!("upload {} {}", upload.path, upload.ok);
        self.0.lock().unwrap().push((what, actor.peer.ip()));
    }
    fn download_finished(&self, actor: &Actor, download: &Transferred) {
        let what = format!("download {} {}", download.path, download.ok);
        self.0.lock().unwrap().push((what, actor.peer.ip()));
    }
}

impl Peers {
    /// What was seen once `n` events came (within 10 s), and forgets it.
    fn take(&self, n: usize) -> Vec<(String, IpAddr)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.0.lock().unwrap().len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn options(fixture: &Fixture, host: &str, port: u16, from: &str) -> ClientOptions {
    let (user, password) = fixture.credentials();
    let mut o = ClientOptions::new(host, port, user, password).unwrap();
    o.tls = Some(fixture.client_tls());
    o.session.mode = ConnectionMode::ExplicitRequired;
    o.source_address = Some(from.parse().unwrap());
    o.connect_timeout = Duration::from_secs(5);
    o
}

#[test]
fn every_connection_starts_from_the_source_address() {
    let fixture = Fixture::new("source-address");
    let peers = Arc::new(Peers::default());
    let mut setup = fixture.setup();
    setup.hooks = Some(peers.clone());
    let server = Tokio.start(setup);
    let port = server.explicit().port();
    let from: IpAddr = "127.0.0.2".parse().unwrap();
    for client in clients() {
        // (how the data connections are made, the host named)
        let ways = [
            ("EPSV", true, true, "127.0.0.1"),
            ("PASV", true, false, "localhost"),
            ("active", false, true, "127.0.0.1"),
        ];
        for (way, passive, epsv, host) in ways {
            let tag = format!("{} client, {way}, {host}", client.name());
            let mut o = options(&fixture, host, port, "127.0.0.2");
            o.session.passive = passive;
            o.session.epsv = epsv;
            let mut s = client.connect(o).unwrap_or_else(|e| panic!("{tag}: {e}"));
            let data = vec![7u8; 200_000];
            let name = format!("{}-{way}.bin", client.name());
            s.store(&name, &data, 0, false)
                .unwrap_or_else(|e| panic!("{tag}: {e}"));
            let back = s
                .retrieve(&name, 0)
                .unwrap_or_else(|e| panic!("{tag}: {e}"));
            assert!(back == data, "{tag}: the bytes came back changed");
            s.quit().unwrap();
            let seen = peers.take(3);
            let expected = [
                ("login".to_owned(), from),
                (format!("upload /{name} true"), from),
                (format!("download /{name} true"), from),
            ];
            assert_eq!(seen, expected, "{tag}");
        }
    }
}

#[test]
fn an_unusable_source_address_fails_at_once_and_says_why() {
    let fixture = Fixture::new("source-address-bad");
    let server = Tokio.start(fixture.setup());
    let port = server.explicit().port();
    for client in clients() {
        // An IPv6 source for an IPv4 server; an IPv4 source for an IPv6-only name
        // ("::1" is no host name: it is tried as it is); an address no interface has.
        let cases = [
            ("127.0.0.1", "::1", "families differ"),
            ("::1", "127.0.0.2", "families differ"),
            ("127.0.0.1", "192.0.2.1", "cannot bind to 192.0.2.1"),
        ];
        for (host, from, says) in cases {
            let tag = format!("{} client, {host} from {from}", client.name());
            let started = Instant::now();
            let failed = match client.connect(options(&fixture, host, port, from)) {
                Ok(_) => panic!("{tag}: connected"),
                Err(e) => e.to_string(),
            };
            assert!(failed.contains(says), "{tag}: {failed}");
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "{tag}: took {:?}",
                started.elapsed()
            );
        }
    }
}
