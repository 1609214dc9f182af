//! The conformance matrix: every runtime's client against every runtime's server, in all
//! sixteen mode combinations (explicit/implicit, PROT P/C, passive/active, TLS 1.3/1.2),
//! with the server requiring data connections to resume the control session.

use ftps_conformance::runtimes::{Blocking, Tokio};
use ftps_conformance::{ClientRuntime, ServerRuntime, run};

fn pair(client: &dyn ClientRuntime, server: &dyn ServerRuntime) {
    if let Err(e) = run(server, client) {
        panic!("{e}");
    }
}

#[test]
fn tokio_client_tokio_server() {
    pair(&Tokio, &Tokio);
}

#[test]
fn tokio_client_blocking_server() {
    pair(&Tokio, &Blocking);
}

#[test]
fn blocking_client_tokio_server() {
    pair(&Blocking, &Tokio);
}

#[test]
fn blocking_client_blocking_server() {
    pair(&Blocking, &Blocking);
}
