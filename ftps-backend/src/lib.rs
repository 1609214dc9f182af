//! # ftps-backend
//!
//! What an ftps server serves from and what a client or server reads from the host,
//! written once for every runtime adapter (`ftps-tokio`, `ftps-blocking`, `ftps-smol`):
//! what applications implement or configure. How a server runs (its builder, limits and
//! data connections) is the driver's, in `ftps-async`.
//!
//! - [`Storage`] (async) and [`BlockingStorage`] (calls that block, run on the runtime's
//!   blocking pool), and [`LocalFs`]: the files, confined to a root, uploads published
//!   atomically; [`Quoted`]: every user's quota enforced around any storage;
//! - [`Authenticator`] and [`StaticUsers`]: logins checked (against Argon2id hashes, or
//!   by whatever an application's authenticator asks), each making a [`User`]: its home,
//!   permissions and policies;
//! - [`Hooks`]: what an application is told after the fact (logins, uploads and downloads
//!   finished, deletes, renames), to start its own work;
//! - [`files`]: certificates and keys read from PEM files, and the platform's trust (the
//!   OS's verifier, else the Mozilla roots compiled in);
//! - [`client`]: how a client connects (`ClientOptions`, `FtpUrl`), for every runtime;
//! - [`download`]: where a download's bytes go locally, so that a failed one never
//!   destroys the file it was to replace.
//!
//! A [`Storage`] answers every call with a future, awaited on the session's task: an
//! object store's HTTP client or a database waits without holding a thread. A file
//! system blocks, so [`LocalFs`] is a [`BlockingStorage`], whose calls the drivers run on
//! their runtime's blocking pool (`ftps_async::OnPool`). An [`Authenticator`] says how its check runs ([`Check`]:
//! awaited, blocking, or CPU-bound), so that logins waiting on a network service are not
//! throttled like password hashes. One implementation serves every runtime.

//!
//! Features: `server` (on by default) builds the server's part (storage, users, hooks,
//! quotas: Argon2 and `cap-std` with it); without it only what a client needs is built
//! ([`client`], [`download`], [`files`], [`hash`]), which also builds where
//! `std::os::unix` does not exist (the Unix-only steps, as `O_NOFOLLOW` and keeping a
//! replaced file's owner, are left out there).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "server")]
mod auth;
#[cfg(feature = "server")]
mod blocking_storage;
#[cfg(feature = "server")]
mod cached_read;
pub mod client;
pub mod download;
pub mod files;
pub mod hash;
#[cfg(feature = "server")]
mod hooks;
#[cfg(feature = "server")]
mod listing;
#[cfg(feature = "server")]
mod local_fs;
#[cfg(feature = "server")]
pub mod password;
#[cfg(feature = "server")]
mod quota;
#[cfg(feature = "server")]
mod storage;
#[cfg(feature = "server")]
mod user;

#[cfg(feature = "server")]
pub use auth::{
    Authenticator, BlockingAuthenticator, BoxFuture, Check, StaticUsers, Unblocked, Verdict,
};
#[cfg(feature = "server")]
pub use blocking_storage::{BlockingStorage, ReadLater, fill, fill_from, write_all};
#[cfg(feature = "server")]
pub use cached_read::LocalFile;
#[cfg(feature = "server")]
pub use hooks::{Actor, HOOK_QUEUE, Hooks, Transferred};
#[cfg(feature = "server")]
pub use listing::{Entries, ListingCut, ListingFailed, ListingReader};
#[cfg(feature = "server")]
pub use local_fs::{LocalFs, LocalUpload};
#[cfg(feature = "server")]
pub use password::{BadHash, hash_password};
#[cfg(feature = "server")]
pub use quota::{Quota, QuotaUpload, Quoted, Usage};
#[cfg(feature = "server")]
pub use storage::{Chunk, Opened, OpenedFile, STAT_ENTRIES, Storage, StorageFuture, now_utc};
#[cfg(feature = "server")]
pub use user::User;
