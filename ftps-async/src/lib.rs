//! # ftps-async
//!
//! The one FTPS client driver and the one server driver, for every runtime, over
//! futures-io and rustls: every protocol decision is made by
//! [`ftps_proto::ClientSession`] and [`ftps_proto::ServerSession`]; this crate runs them
//! over a [`Runtime`]'s sockets, timer and tasks. `ftps-tokio` binds it to tokio,
//! `ftps-smol` to smol (and so to async-std), and `ftps-blocking` to std threads and
//! blocking sockets (its `Threads` runtime); a runtime binding is one small
//! `impl Runtime`. The drivers never race a socket call against anything (on the blocking
//! runtime a socket call cannot be raced): they wait on channels and timers only.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod blocking;
mod budget;
mod builder;
mod calls;
pub mod client;
mod control;
mod data;
mod desk;
mod drain;
mod ending;
mod forward;
mod gate;
mod hooks;
mod limits;
pub mod lockout;
mod meter;
mod observe;
mod on_pool;
mod order;
pub mod proxy;
pub mod runtime;
pub mod server;
mod shared;
mod socket;
mod stall;
mod stream;
mod tls;
mod trace;
mod warnings;

/// The core, for [`client_calls!`]'s types.
#[doc(hidden)]
pub use ftps_proto as proto;

pub use builder::ServerBuilder;
pub use client::{Client, DataReader, DataWriter, PlaintextOffer};
pub use lockout::{LocalLockout, Lockout};
pub use on_pool::OnPool;
pub use proxy::TrustedProxies;
pub use runtime::{BoxFuture, Runtime, connect_named};
pub use server::{ConnectionInfo, Server};
pub use socket::bound_socket;
