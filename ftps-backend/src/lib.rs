//! # ftps-backend
//!
//! What an ftps server serves from and what a client or server reads from the host,
//! written once for every runtime adapter (`ftps-tokio`, `ftps-blocking`, `ftps-smol`):
//! what applications implement or configure. How a server runs (its builder, limits and
//! data connections) is the driver's, in `ftps-async`.
//!
//! - [`Storage`] and [`LocalFs`]: the files, confined to a root, uploads published
//!   atomically; [`execute`] answers the protocol core's storage requests with them;
//! - [`Authenticator`] and [`StaticUsers`]: logins checked (against Argon2id hashes, or
//!   by whatever an application's authenticator asks), each making a [`User`]: its home,
//!   permissions and policies;
//! - [`Hooks`]: what an application is told after the fact (logins, uploads and downloads
//!   finished, deletes, renames), to start its own work;
//! - [`files`]: certificates and keys read from PEM files, and the platform's roots;
//! - [`client`]: how a client connects (`ClientOptions`, `FtpUrl`), for every runtime;
//! - [`download`]: where a download's bytes go locally, so that a failed one never
//!   destroys the file it was to replace.
//!
//! [`Storage`] is synchronous: file systems block, so the drivers run its calls on their
//! runtime's blocking pool. An [`Authenticator`] says how its check runs ([`Check`]:
//! awaited, blocking, or CPU-bound), so that logins waiting on a network service are not
//! throttled like password hashes. One implementation serves every runtime.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod auth;
pub mod client;
pub mod download;
pub mod files;
pub mod hash;
mod hooks;
mod listing;
mod local_fs;
mod quota;
mod storage;
mod user;

pub use auth::{
    Authenticator, BadHash, BlockingAuthenticator, BoxFuture, Check, StaticUsers, Unblocked,
    Verdict, hash_password,
};
pub use hooks::{Actor, HOOK_QUEUE, Hooks, Transferred};
pub use listing::{Entries, ListingCut, ListingFailed, ListingReader};
pub use local_fs::{LocalFs, LocalUpload};
pub use quota::{Quota, QuotaUpload, Quoted, Usage};
pub use storage::{Opened, OpenedFile, STAT_ENTRIES, Storage, execute, now_utc};
pub use user::User;
