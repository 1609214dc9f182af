//! # ftps-async
//!
//! The FTPS client for any async runtime, over futures-io and futures-rustls: every
//! protocol decision is made by [`ftps_proto::ClientSession`]; this crate runs it over a
//! [`Runtime`]'s sockets, timer and tasks. `ftps-smol` binds it to smol (and so to
//! async-std); a runtime binding is one small `impl Runtime`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod runtime;
mod stream;

pub use client::{Client, DataReader, DataWriter, PlaintextOffer};
pub use runtime::{BoxFuture, Runtime};
