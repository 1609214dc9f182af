//! Issue 15 (observability) and issue 17 (`-v`): the client traces every command it sends
//! and every reply it receives at debug level, and never the password.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_backend::client::ClientOptions;
use ftps_conformance::Fixture;
use ftps_conformance::runtimes::Tokio;
use std::sync::{Arc, Mutex};

/// A log writer into memory.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

/// What the client logs at `level` while it logs in to our server, lists and quits.
fn client_log(level: tracing::Level) -> (String, &'static str) {
    let f = Fixture::new(&format!("client-trace-{level}"));
    std::fs::write(f.root().join("a.txt"), b"a").unwrap();
    let server = f.start(&Tokio, true);
    let (user, password) = f.credentials();
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_max_level(level)
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut o =
                ClientOptions::new("localhost", server.explicit().port(), user, password).unwrap();
            o.tls = Some(f.client_tls());
            let mut c = ftps_tokio::Client::connect(o).await.unwrap();
            assert_eq!(*c.nlst(None).await.unwrap(), ["a.txt"]);
            c.quit().await.unwrap();
        });
    });
    let log = buffer.0.lock().unwrap().clone();
    (String::from_utf8(log).unwrap(), password)
}

#[test]
fn commands_and_replies_are_traced_without_the_password() {
    let (log, password) = client_log(tracing::Level::DEBUG);
    for line in [
        "< 220 ",
        "> AUTH TLS",
        "< 234 ",
        "> USER alice",
        "< 331 ",
        "> PASS ****",
        "< 230 ",
        "> NLST",
        "< 226 ",
        "> QUIT",
        "< 221 ",
    ] {
        assert!(log.contains(line), "no {line:?} in the trace:\n{log}");
    }
    assert!(log.contains("ftps::client"), "{log}");
    assert!(
        !log.contains(password),
        "the password is in the trace:\n{log}"
    );
}

#[test]
fn the_password_is_not_traced_at_any_level() {
    let (log, password) = client_log(tracing::Level::TRACE);
    assert!(log.contains("> PASS ****"), "{log}");
    assert!(
        !log.contains(password),
        "the password is in the trace:\n{log}"
    );
    // Off below debug.
    let (log, _) = client_log(tracing::Level::INFO);
    assert!(!log.contains("> USER"), "traced at info:\n{log}");
}
