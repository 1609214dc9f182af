//! The conformance matrix: every runtime's client against every runtime's server, in all
//! sixteen mode combinations (explicit/implicit, PROT P/C, passive/active, TLS 1.3/1.2),
//! with the server requiring data connections to resume the control session.

use ftps_conformance::runtimes::{Blocking, Executor, Smol, Tokio};
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

#[test]
fn smol_client_tokio_server() {
    pair(&Smol::new(), &Tokio);
}

#[test]
fn smol_client_blocking_server() {
    pair(&Smol::new(), &Blocking);
}

/// async-std's executor (the crate is discontinued; this proves the smol client runs
/// under it, as its users need).
struct AsyncStd;

impl Executor for AsyncStd {
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        async_std::task::block_on(future)
    }
}

#[test]
fn smol_client_under_async_std_tokio_server() {
    pair(&Smol::<AsyncStd>::with_executor(), &Tokio);
}
