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
// The modules both halves share hold each half's helpers: with one half built, the
// other's are unused.
#![cfg_attr(
    not(all(feature = "client", feature = "server")),
    allow(dead_code, unused_imports)
)]

#[cfg(feature = "server")]
mod blocking;
#[cfg(feature = "server")]
mod budget;
#[cfg(feature = "server")]
mod builder;
#[cfg(feature = "server")]
mod calls;
#[cfg(feature = "client")]
pub mod client;
mod control;
#[cfg(feature = "server")]
mod data;
#[cfg(feature = "server")]
mod desk;
mod drain;
mod ending;
#[cfg(feature = "client")]
mod forward;
#[cfg(feature = "server")]
mod gate;
#[cfg(feature = "server")]
mod hooks;
#[cfg(feature = "server")]
mod limits;
#[cfg(feature = "client")]
mod list_target;
#[cfg(feature = "server")]
pub mod lockout;
#[cfg(feature = "server")]
mod meter;
#[cfg(feature = "server")]
mod observe;
#[cfg(feature = "server")]
mod on_pool;
#[cfg(feature = "server")]
mod order;
#[cfg(feature = "server")]
pub mod proxy;
mod records;
#[cfg(feature = "server")]
mod release;
pub mod runtime;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
mod shared;
mod signal;
mod socket;
mod stall;
mod stream;
mod tls;
#[cfg(feature = "client")]
mod trace;
#[cfg(feature = "server")]
mod warnings;

/// The core, for [`client_calls!`]'s types.
#[doc(hidden)]
pub use ftps_proto as proto;

#[cfg(feature = "server")]
pub use builder::ServerBuilder;
#[cfg(feature = "client")]
pub use client::{Client, DataReader, DataWriter, Dialer, PlaintextOffer, Target};
#[cfg(feature = "server")]
pub use lockout::{LocalLockout, Lockout};
#[cfg(feature = "server")]
pub use on_pool::OnPool;
#[cfg(feature = "server")]
pub use proxy::TrustedProxies;
pub use runtime::{BoxFuture, Runtime, connect_named};
#[cfg(feature = "server")]
pub use server::{ConnectionInfo, Server};
pub use socket::bound_socket;
