//! The server: [`ftps_async::Server`], the one server driver, on [`Threads`] — a thread
//! per session (and per data connection), blocking sockets.

use crate::threads::{Threads, block_on};
use ftps_async::{ConnectionInfo, OnPool};
use ftps_backend::{Authenticator, BlockingStorage, Storage};
use ftps_proto::server::TlsMode;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

/// Builds a [`Server`]: storage, users, configuration, TLS, passive ports, limits.
pub type ServerBuilder<S, A> = ftps_async::ServerBuilder<Threads, S, A, Server<S, A>>;

/// An FTPS server on threads. Cheap to clone; all clones serve the same storage and
/// users.
pub struct Server<S, A>(ftps_async::Server<Threads, S, A>);

impl<S, A> Clone for Server<S, A> {
    fn clone(&self) -> Self {
        Server(self.0.clone())
    }
}

impl<S, A> From<ftps_async::Server<Threads, S, A>> for Server<S, A> {
    /// The one server driver on threads.
    fn from(server: ftps_async::Server<Threads, S, A>) -> Self {
        Server(server)
    }
}

impl<S: BlockingStorage, A: Authenticator> Server<OnPool<Threads, S>, A> {
    /// Starts building a server on `storage`, whose calls block (a file system:
    /// [`LocalFs`](crate::LocalFs)), and `auth`.
    pub fn builder(storage: S, auth: A) -> ServerBuilder<OnPool<Threads, S>, A> {
        ServerBuilder::new(OnPool::new(storage), auth)
    }
}

impl<S: Storage, A: Authenticator> Server<S, A> {
    /// Starts building a server on an async `storage` and `auth` (its futures are run on
    /// the sessions' threads).
    pub fn builder_async(storage: S, auth: A) -> ServerBuilder<S, A> {
        ServerBuilder::new(storage, auth)
    }

    /// Sessions open now.
    pub fn open_sessions(&self) -> usize {
        self.0.open_sessions()
    }

    /// Stops every `serve` loop from accepting (their listeners are shut down); sessions
    /// in progress run to their end.
    pub fn shutdown(&self) {
        self.0.shutdown();
    }

    /// Accepts connections on `listener` as `mode` sessions, a thread each, until
    /// [`shutdown`](Self::shutdown). Blocks.
    ///
    /// Give the listener a backlog as large as the clients that may connect at once
    /// (`std`'s `TcpListener::bind` gives 128): FTP servers speak first, so a connection
    /// the kernel drops from a full accept queue leaves its client waiting for a greeting
    /// until its own timeout.
    pub fn serve(&self, listener: TcpListener, mode: TlsMode) -> io::Result<()> {
        block_on(self.0.serve(Arc::new(listener), mode))
    }

    /// Drains the server before it goes away (see [`ftps_async::Server::drain`]): blocks
    /// until every session has ended or `grace` has passed; how many had to be closed.
    pub fn drain(&self, grace: std::time::Duration) -> usize {
        block_on(self.0.drain(grace))
    }

    /// Whether [`drain`](Self::drain) has started.
    pub fn is_draining(&self) -> bool {
        self.0.is_draining()
    }

    /// Serves one connection the application accepted itself, as `info` describes it
    /// (see [`ftps_async::Server::serve_connection`]). Blocks until the session ends.
    pub fn serve_connection(&self, tcp: TcpStream, info: ConnectionInfo) -> io::Result<()> {
        block_on(self.0.serve_connection(crate::threads::Tcp::new(tcp), info))
    }
}
