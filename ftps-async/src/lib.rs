//! # ftps-async
//!
//! The FTPS client and server for any async runtime, over futures-io and rustls: every
//! protocol decision is made by [`ftps_proto::ClientSession`] and
//! [`ftps_proto::ServerSession`]; this crate runs them over a
//! [`Runtime`]'s sockets, timer and tasks. `ftps-smol` binds it to smol (and so to
//! async-std); a runtime binding is one small `impl Runtime`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod blocking;
pub mod client;
mod control;
mod data;
pub mod runtime;
pub mod server;
mod stall;
mod stream;
mod tls;

pub use client::{Client, DataReader, DataWriter, PlaintextOffer};
pub use runtime::{BoxFuture, Runtime};
pub use server::{Server, ServerBuilder};
