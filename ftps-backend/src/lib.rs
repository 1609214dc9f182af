//! # ftps-backend
//!
//! What an ftps server serves from and what a client or server reads from the host,
//! written once for every runtime adapter (`ftps-tokio`, `ftps-blocking`, `ftps-smol`):
//!
//! - [`Storage`] and [`LocalFs`]: the files, confined to a root, uploads published
//!   atomically; [`execute`] answers the protocol core's storage requests with them;
//! - [`Authenticator`] and [`StaticUsers`]: logins checked against Argon2id hashes;
//! - [`files`]: certificates and keys read from PEM files, and the platform's roots;
//! - [`ServerBuilder`], [`SessionLimits`], [`passive_ports`], [`DataOrder`]: what every
//!   runtime's server is built from and tells its data connections;
//! - [`client`]: how a client connects (`ClientOptions`, `FtpUrl`), for every runtime;
//! - [`download`]: where a download's bytes go locally, so that a failed one never
//!   destroys the file it was to replace.
//!
//! The traits are synchronous: file systems and password hashing block, so the async
//! adapters run these calls on their blocking pools (`spawn_blocking`, `unblock`) and the
//! blocking adapter calls them directly. One implementation then serves all three.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod auth;
mod budget;
pub mod client;
mod desk;
pub mod download;
pub mod files;
mod limits;
mod listing;
mod local_fs;
mod server;
mod socket;
mod storage;
mod warnings;

pub use auth::{Authenticator, BadHash, StaticUsers, hash_password};
pub use budget::{Budget, Taken};
pub use desk::{DataDesk, OrderSender, TaskGone};
pub use limits::{
    Evict, ListenerCaps, ListenerSlot, LoginGuard, SessionLimits, SessionSlot, client_key,
    passive_ports,
};
pub use listing::{Entries, ListingCut, ListingReader};
pub use local_fs::{LocalFs, LocalUpload};
pub use server::{
    DataOrder, Gate, Meter, Permit, ServerBuilder, ServerShared, Work, opened_for, read_error,
    upload_read_end, write_error,
};
pub use socket::{CONTROL_BUFFER, control_socket, out_of_descriptors};
pub use storage::{Opened, OpenedFile, STAT_ENTRIES, Storage, execute, now_utc};
pub use warnings::{Throttled, Warnings};
