//! The conformance matrix: every runtime's client against every runtime's server, in all
//! sixteen mode combinations (explicit/implicit, PROT P/C, passive/active, TLS 1.3/1.2),
//! with the server requiring data connections to resume the control session.

use ftps_conformance::runtimes::{Blocking, Executor, Smol, Tokio};
use ftps_conformance::{ClientRuntime, ServerRuntime, behaviours, run};

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
fn tokio_client_smol_server() {
    pair(&Tokio, &Smol::new());
}

#[test]
fn blocking_client_smol_server() {
    pair(&Blocking, &Smol::new());
}

#[test]
fn smol_client_smol_server() {
    pair(&Smol::new(), &Smol::new());
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

/// The smol client and server, both driven by async-std's executor.
#[test]
fn smol_under_async_std() {
    pair(
        &Smol::<AsyncStd>::with_executor(),
        &Smol::<AsyncStd>::with_executor(),
    );
}

#[test]
fn server_behaviours_on_every_runtime() {
    for server in [&Tokio as &dyn ServerRuntime, &Blocking, &Smol::new()] {
        if let Err(e) = behaviours(server) {
            panic!("{e}");
        }
    }
}
