//! [`Hooks`]: what an application is told about its users' sessions after the fact — a
//! login, an upload or a download finished, a file deleted, a rename, a directory made or
//! removed — to start processing a partner's upload, say, or to keep an audit trail.
//!
//! The server (`ftps_async::ServerBuilder::hooks`) calls them in the order they happened,
//! one at a time, from a task of their own on the runtime's blocking pool, never from a
//! session: a slow hook delays the hooks after it, never a session. The events wait in a
//! queue of [`HOOK_QUEUE`] events; past it (a hook far slower than the server's traffic), new
//! events are dropped with a warning in the log. So a hook must return quickly: hand long
//! work (a conversion, an upload elsewhere) to a queue or a thread of your own.

use crate::User;
use std::net::SocketAddr;
use std::sync::Arc;

/// How many events may wait for the hooks before new ones are dropped.
pub const HOOK_QUEUE: usize = 4096;

/// Who did what a hook is told: the user, the client's address, and the session (its id
/// is the `id` of the session's log span).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Actor {
    /// The logged-in user, as the authenticator made it.
    pub user: Arc<User>,
    /// The client's address.
    pub peer: SocketAddr,
    /// The session's id, unique in the process.
    pub session: u64,
}

impl Actor {
    /// An actor (for tests of an application's hooks).
    pub fn new(user: Arc<User>, peer: SocketAddr, session: u64) -> Self {
        Actor {
            user,
            peer,
            session,
        }
    }
}

/// A finished transfer of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transferred {
    /// The file, as the user sees it (from the user's `/`).
    pub path: String,
    /// Bytes moved over the data connection.
    pub bytes: u64,
    /// Whether it succeeded: for an upload, whether the file was committed and the client
    /// told so (226); a failed or aborted upload left nothing (or, for APPE and REST+STOR,
    /// what arrived).
    pub ok: bool,
}

impl Transferred {
    /// A transfer (for tests of an application's hooks).
    pub fn new(path: impl Into<String>, bytes: u64, ok: bool) -> Self {
        Transferred {
            path: path.into(),
            bytes,
            ok,
        }
    }
}

/// What an application is told about its users' sessions, after the fact. Every method
/// does nothing unless implemented; paths are as the user sees them (from the user's `/`,
/// within the user's home).
///
/// The server calls them in the order things happened, one at a time, from a task of its
/// own on the runtime's blocking pool, never from a session: a slow hook delays the hooks
/// after it, never a session, and past [`HOOK_QUEUE`] waiting events new ones are dropped
/// (with a warning in the log). So a hook **must return quickly; spawn your own work**
/// for anything long.
pub trait Hooks: Send + Sync + 'static {
    /// A user logged in.
    fn login(&self, actor: &Actor) {
        let _ = actor;
    }

    /// An upload (STOR, APPE, STOU) ended, committed or not.
    fn upload_finished(&self, actor: &Actor, upload: &Transferred) {
        let _ = (actor, upload);
    }

    /// A download (RETR) ended, whole or not.
    fn download_finished(&self, actor: &Actor, download: &Transferred) {
        let _ = (actor, download);
    }

    /// A file was deleted (DELE).
    fn deleted(&self, actor: &Actor, path: &str) {
        let _ = (actor, path);
    }

    /// A file or directory was renamed (RNFR/RNTO).
    fn renamed(&self, actor: &Actor, from: &str, to: &str) {
        let _ = (actor, from, to);
    }

    /// A directory was made (MKD).
    fn dir_made(&self, actor: &Actor, path: &str) {
        let _ = (actor, path);
    }

    /// A directory was removed (RMD).
    fn dir_removed(&self, actor: &Actor, path: &str) {
        let _ = (actor, path);
    }
}

impl<H: Hooks + ?Sized> Hooks for Arc<H> {
    fn login(&self, actor: &Actor) {
        (**self).login(actor);
    }
    fn upload_finished(&self, actor: &Actor, upload: &Transferred) {
        (**self).upload_finished(actor, upload);
    }
    fn download_finished(&self, actor: &Actor, download: &Transferred) {
        (**self).download_finished(actor, download);
    }
    fn deleted(&self, actor: &Actor, path: &str) {
        (**self).deleted(actor, path);
    }
    fn renamed(&self, actor: &Actor, from: &str, to: &str) {
        (**self).renamed(actor, from, to);
    }
    fn dir_made(&self, actor: &Actor, path: &str) {
        (**self).dir_made(actor, path);
    }
    fn dir_removed(&self, actor: &Actor, path: &str) {
        (**self).dir_removed(actor, path);
    }
}
