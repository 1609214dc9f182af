//! Each runtime's client and server behind the suite's traits.

use crate::auth::SuiteAuth;
use crate::quota::QuotaFs;
use crate::{ClientRuntime, Failure, RunningServer, ServerRuntime, ServerSetup, Session};
use ftps_backend::LocalFs;
use ftps_backend::client::ClientOptions;
use ftps_proto::Pathname;
use ftps_proto::client::listing::Listing;
use ftps_proto::server::TlsMode;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;

fn fail(e: impl std::fmt::Display) -> Failure {
    e.to_string()
}

fn users(setup: &ServerSetup) -> SuiteAuth {
    SuiteAuth::new(setup)
}

fn storage(setup: &ServerSetup) -> QuotaFs {
    let local = LocalFs::new(&setup.root).expect("the root exists");
    QuotaFs::new(local, setup.upload_quota).with_listing_failure(setup.listing_fails_after)
}

/// Applies `setup`'s configuration, TLS and limits to any runtime's server builder.
fn configure<R, S, T>(
    builder: ftps_async::ServerBuilder<R, S, SuiteAuth, T>,
    setup: &ServerSetup,
) -> ftps_async::ServerBuilder<R, S, SuiteAuth, T> {
    let mut builder = builder
        .config(setup.config.clone())
        .tls(setup.tls.clone())
        .max_sessions(setup.max_sessions.0, setup.max_sessions.1);
    if let Some((failures, window, lock)) = setup.login_lockout {
        builder = builder.login_lockout(failures, window, lock);
    }
    if let Some(n) = setup.max_sessions_before_login {
        builder = builder.max_sessions_before_login(n);
    }
    if let Some(n) = setup.max_passive_per_user {
        builder = builder.max_passive_listeners_per_user(n);
    }
    if let Some(ports) = &setup.passive_ports {
        builder = builder.passive_ports(ports.clone());
    }
    if let Some(bytes) = setup.transfer_buffers {
        builder = builder.max_transfer_buffers(bytes);
    }
    if let Some(limit) = setup.auth_timeout {
        builder = builder.auth_timeout(limit);
    }
    if let Some(n) = setup.blocking_auth_checks {
        builder = builder.max_blocking_auth_checks(n);
    }
    if let Some(hooks) = &setup.hooks {
        builder = builder.hooks(hooks.clone());
    }
    if let Some(trusted) = &setup.proxies {
        builder = builder.proxy_protocol(trusted.clone());
    }
    if let Some(limit) = setup.storage_timeout {
        builder = builder.storage_timeout(limit);
    }
    builder
}

// ----- tokio ---------------------------------------------------------------------------

/// The tokio client and server.
pub struct Tokio;

struct TokioSession {
    rt: tokio::runtime::Runtime,
    client: ftps_tokio::Client,
}

struct TokioServer {
    explicit: SocketAddr,
    implicit: SocketAddr,
    drain: Drainer,
    _rt: tokio::runtime::Runtime,
}

/// Drains a running server (see [`RunningServer::drain`]).
type Drainer = Box<dyn Fn(std::time::Duration) -> usize + Send>;

impl RunningServer for TokioServer {
    fn explicit(&self) -> SocketAddr {
        self.explicit
    }
    fn implicit(&self) -> SocketAddr {
        self.implicit
    }
    fn drain(&self, grace: std::time::Duration) -> usize {
        (self.drain)(grace)
    }
}

impl ServerRuntime for Tokio {
    fn name(&self) -> &'static str {
        "tokio"
    }

    fn start(&self, setup: ServerSetup) -> Box<dyn RunningServer> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let (explicit, implicit, drain) = match setup.memory.clone() {
            Some(memory) => {
                let builder = ftps_tokio::Server::builder_async(memory, users(&setup));
                tokio_serve(&rt, configure(builder, &setup).build())
            }
            None => {
                let builder = ftps_tokio::Server::builder(storage(&setup), users(&setup));
                tokio_serve(&rt, configure(builder, &setup).build())
            }
        };
        Box::new(TokioServer {
            explicit,
            implicit,
            drain,
            _rt: rt,
        })
    }
}

/// Serves explicit and implicit FTPS with `server` on `rt`; their addresses.
fn tokio_serve<S: ftps_backend::Storage>(
    rt: &tokio::runtime::Runtime,
    server: ftps_tokio::Server<S, SuiteAuth>,
) -> (SocketAddr, SocketAddr, Drainer) {
    let (handle, draining) = (rt.handle().clone(), server.clone());
    let drain: Drainer = Box::new(move |grace| handle.block_on(draining.drain(grace)));
    let (e, i) = rt.block_on(async {
        let e = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let i = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addrs = (e.local_addr().expect("addr"), i.local_addr().expect("addr"));
        let s2 = server.clone();
        tokio::spawn(async move { server.serve(e, TlsMode::Explicit).await });
        tokio::spawn(async move { s2.serve(i, TlsMode::Implicit).await });
        addrs
    });
    (e, i, drain)
}

impl ClientRuntime for Tokio {
    fn name(&self) -> &'static str {
        "tokio"
    }

    fn connect(&self, options: ClientOptions) -> Result<Box<dyn Session>, Failure> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(fail)?;
        let client = rt
            .block_on(ftps_tokio::Client::connect(options))
            .map_err(fail)?;
        Ok(Box::new(TokioSession { rt, client }))
    }
}

impl Session for TokioSession {
    fn store(
        &mut self,
        path: &str,
        data: &[u8],
        offset: u64,
        append: bool,
    ) -> Result<u64, Failure> {
        let mut input = data;
        self.rt
            .block_on(self.client.store(path, &mut input, offset, append))
            .map_err(fail)
    }
    fn retrieve(&mut self, path: &str, offset: u64) -> Result<Vec<u8>, Failure> {
        let mut out = Vec::new();
        self.rt
            .block_on(self.client.retrieve(path, offset, &mut out))
            .map_err(fail)?;
        Ok(out)
    }
    fn get_file(&mut self, path: &str, local: &Path, resume: bool) -> Result<u64, Failure> {
        self.rt
            .block_on(self.client.get_file(path, local, resume))
            .map_err(fail)
    }
    fn retrieve_streamed(&mut self, path: &str) -> Result<Vec<u8>, Failure> {
        self.rt.block_on(async {
            use tokio::io::AsyncReadExt;
            let mut reader = self.client.retrieve_stream(path, 0).await.map_err(fail)?;
            let mut out = Vec::new();
            reader.read_to_end(&mut out).await.map_err(fail)?;
            reader.finish().await.map_err(fail)?;
            Ok(out)
        })
    }
    fn store_streamed(&mut self, path: &str, data: &[u8]) -> Result<u64, Failure> {
        self.rt.block_on(async {
            use tokio::io::AsyncWriteExt;
            let mut writer = self
                .client
                .store_stream(path, 0, false)
                .await
                .map_err(fail)?;
            writer.write_all(data).await.map_err(fail)?;
            writer.finish().await.map_err(fail)
        })
    }
    fn abort_download(&mut self, path: &str, first: usize) -> Result<(), Failure> {
        self.rt.block_on(async {
            use tokio::io::AsyncReadExt;
            let mut reader = self.client.retrieve_stream(path, 0).await.map_err(fail)?;
            let mut buf = vec![0u8; first];
            reader.read_exact(&mut buf).await.map_err(fail)?;
            reader.abort().await.map_err(fail)
        })
    }
    fn nlst(&mut self) -> Result<Vec<Pathname>, Failure> {
        self.rt
            .block_on(self.client.nlst(None))
            .map(Listing::into_entries)
            .map_err(fail)
    }
    fn list(&mut self) -> Result<Vec<String>, Failure> {
        let entries = self.rt.block_on(self.client.list(None)).map_err(fail)?;
        Ok(entries.into_iter().map(|e| e.name).collect())
    }
    fn mlsd(&mut self) -> Result<Vec<(String, Option<u64>)>, Failure> {
        let entries = self.rt.block_on(self.client.mlsd(None)).map_err(fail)?;
        Ok(entries
            .into_iter()
            .map(|e| {
                let size = e.size();
                (e.pathname, size)
            })
            .collect())
    }
    fn size(&mut self, path: &str) -> Result<u64, Failure> {
        self.rt.block_on(self.client.size(path)).map_err(fail)
    }
    fn modified(&mut self, path: &str) -> Result<String, Failure> {
        let t = self.rt.block_on(self.client.modified(path)).map_err(fail)?;
        Ok(t.to_string())
    }
    fn mkdir(&mut self, path: &str) -> Result<(), Failure> {
        self.rt.block_on(self.client.mkdir(path)).map_err(fail)
    }
    fn rmdir(&mut self, path: &str) -> Result<(), Failure> {
        self.rt.block_on(self.client.rmdir(path)).map_err(fail)
    }
    fn delete(&mut self, path: &str) -> Result<(), Failure> {
        self.rt.block_on(self.client.delete(path)).map_err(fail)
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), Failure> {
        self.rt.block_on(self.client.rename(from, to)).map_err(fail)
    }
    fn cwd(&mut self, path: &str) -> Result<(), Failure> {
        self.rt.block_on(self.client.cwd(path)).map_err(fail)
    }
    fn pwd(&mut self) -> Result<String, Failure> {
        self.rt.block_on(self.client.pwd()).map_err(fail)
    }
    fn is_secure(&self) -> bool {
        self.client.is_secure()
    }
    fn quit(self: Box<Self>) -> Result<(), Failure> {
        let TokioSession { rt, client } = *self;
        rt.block_on(client.quit()).map_err(fail)
    }
}

// ----- blocking ------------------------------------------------------------------------

/// The std-threads client and server.
pub struct Blocking;

struct BlockingServer {
    explicit: SocketAddr,
    implicit: SocketAddr,
    /// Stops the server's accept loops.
    shutdown: Box<dyn Fn() + Send>,
    drain: Drainer,
}

impl RunningServer for BlockingServer {
    fn explicit(&self) -> SocketAddr {
        self.explicit
    }
    fn implicit(&self) -> SocketAddr {
        self.implicit
    }
    fn drain(&self, grace: std::time::Duration) -> usize {
        (self.drain)(grace)
    }
}

impl Drop for BlockingServer {
    fn drop(&mut self) {
        (self.shutdown)();
    }
}

impl ServerRuntime for Blocking {
    fn name(&self) -> &'static str {
        "blocking"
    }

    fn start(&self, setup: ServerSetup) -> Box<dyn RunningServer> {
        match setup.memory.clone() {
            Some(memory) => {
                let builder = ftps_blocking::Server::builder_async(memory, users(&setup));
                blocking_serve(configure(builder, &setup).build())
            }
            None => {
                let builder = ftps_blocking::Server::builder(storage(&setup), users(&setup));
                blocking_serve(configure(builder, &setup).build())
            }
        }
    }
}

/// Serves explicit and implicit FTPS with `server`, a thread each.
fn blocking_serve<S: ftps_backend::Storage>(
    server: ftps_blocking::Server<S, SuiteAuth>,
) -> Box<dyn RunningServer> {
    let e = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let i = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let (explicit, implicit) = (e.local_addr().expect("addr"), i.local_addr().expect("addr"));
    let (s1, s2) = (server.clone(), server.clone());
    std::thread::spawn(move || s1.serve(e, TlsMode::Explicit));
    std::thread::spawn(move || s2.serve(i, TlsMode::Implicit));
    let draining = server.clone();
    Box::new(BlockingServer {
        explicit,
        implicit,
        shutdown: Box::new(move || server.shutdown()),
        drain: Box::new(move |grace| draining.drain(grace)),
    })
}

impl ClientRuntime for Blocking {
    fn name(&self) -> &'static str {
        "blocking"
    }

    fn connect(&self, options: ClientOptions) -> Result<Box<dyn Session>, Failure> {
        let client = ftps_blocking::Client::connect(options).map_err(fail)?;
        Ok(Box::new(BlockingSession(client)))
    }
}

struct BlockingSession(ftps_blocking::Client);

impl Session for BlockingSession {
    fn store(
        &mut self,
        path: &str,
        data: &[u8],
        offset: u64,
        append: bool,
    ) -> Result<u64, Failure> {
        let mut input = data;
        self.0.store(path, &mut input, offset, append).map_err(fail)
    }
    fn retrieve(&mut self, path: &str, offset: u64) -> Result<Vec<u8>, Failure> {
        let mut out = Vec::new();
        self.0.retrieve(path, offset, &mut out).map_err(fail)?;
        Ok(out)
    }
    fn get_file(&mut self, path: &str, local: &Path, resume: bool) -> Result<u64, Failure> {
        self.0.get_file(path, local, resume).map_err(fail)
    }
    fn retrieve_streamed(&mut self, path: &str) -> Result<Vec<u8>, Failure> {
        let mut reader = self.0.retrieve_stream(path, 0).map_err(fail)?;
        let mut out = Vec::new();
        reader.read_to_end(&mut out).map_err(fail)?;
        reader.finish().map_err(fail)?;
        Ok(out)
    }
    fn store_streamed(&mut self, path: &str, data: &[u8]) -> Result<u64, Failure> {
        let mut writer = self.0.store_stream(path, 0, false).map_err(fail)?;
        writer.write_all(data).map_err(fail)?;
        writer.finish().map_err(fail)
    }
    fn abort_download(&mut self, path: &str, first: usize) -> Result<(), Failure> {
        let mut reader = self.0.retrieve_stream(path, 0).map_err(fail)?;
        let mut buf = vec![0u8; first];
        reader.read_exact(&mut buf).map_err(fail)?;
        reader.abort().map_err(fail)
    }
    fn nlst(&mut self) -> Result<Vec<Pathname>, Failure> {
        self.0.nlst(None).map(Listing::into_entries).map_err(fail)
    }
    fn list(&mut self) -> Result<Vec<String>, Failure> {
        let entries = self.0.list(None).map_err(fail)?;
        Ok(entries.into_iter().map(|e| e.name).collect())
    }
    fn mlsd(&mut self) -> Result<Vec<(String, Option<u64>)>, Failure> {
        let entries = self.0.mlsd(None).map_err(fail)?;
        Ok(entries
            .into_iter()
            .map(|e| {
                let size = e.size();
                (e.pathname, size)
            })
            .collect())
    }
    fn size(&mut self, path: &str) -> Result<u64, Failure> {
        self.0.size(path).map_err(fail)
    }
    fn modified(&mut self, path: &str) -> Result<String, Failure> {
        Ok(self.0.modified(path).map_err(fail)?.to_string())
    }
    fn mkdir(&mut self, path: &str) -> Result<(), Failure> {
        self.0.mkdir(path).map_err(fail)
    }
    fn rmdir(&mut self, path: &str) -> Result<(), Failure> {
        self.0.rmdir(path).map_err(fail)
    }
    fn delete(&mut self, path: &str) -> Result<(), Failure> {
        self.0.delete(path).map_err(fail)
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), Failure> {
        self.0.rename(from, to).map_err(fail)
    }
    fn cwd(&mut self, path: &str) -> Result<(), Failure> {
        self.0.cwd(path).map_err(fail)
    }
    fn pwd(&mut self) -> Result<String, Failure> {
        self.0.pwd().map_err(fail)
    }
    fn is_secure(&self) -> bool {
        self.0.is_secure()
    }
    fn quit(self: Box<Self>) -> Result<(), Failure> {
        self.0.quit().map_err(fail)
    }
}

// ----- smol (and any executor that drives async-io: async-std's) ------------------------

/// An executor that runs a future to its end on the calling thread.
pub trait Executor: 'static {
    /// Runs `future` to its end.
    fn block_on<F: std::future::Future>(future: F) -> F::Output;
}

/// smol's own `block_on`.
pub struct SmolExecutor;

impl Executor for SmolExecutor {
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        smol::block_on(future)
    }
}

/// The smol client, its futures driven by executor `E`.
pub struct Smol<E = SmolExecutor>(std::marker::PhantomData<E>);

impl Smol {
    /// The smol client under smol's executor.
    pub const fn new() -> Self {
        Smol(std::marker::PhantomData)
    }
}

impl Default for Smol {
    fn default() -> Self {
        Smol::new()
    }
}

impl<E: Executor> Smol<E> {
    /// The smol client under executor `E`.
    pub const fn with_executor() -> Self {
        Smol(std::marker::PhantomData)
    }
}

struct SmolServer {
    explicit: SocketAddr,
    implicit: SocketAddr,
    /// Stops the server's accept loops.
    shutdown: Box<dyn Fn() + Send>,
    drain: Drainer,
}

impl RunningServer for SmolServer {
    fn explicit(&self) -> SocketAddr {
        self.explicit
    }
    fn implicit(&self) -> SocketAddr {
        self.implicit
    }
    fn drain(&self, grace: std::time::Duration) -> usize {
        (self.drain)(grace)
    }
}

impl Drop for SmolServer {
    fn drop(&mut self) {
        (self.shutdown)();
    }
}

impl<E: Executor> ServerRuntime for Smol<E> {
    fn name(&self) -> &'static str {
        "smol"
    }

    fn start(&self, setup: ServerSetup) -> Box<dyn RunningServer> {
        match setup.memory.clone() {
            Some(memory) => {
                let builder = ftps_smol::Server::builder_async(memory, users(&setup));
                smol_serve::<E, _>(configure(builder, &setup).build())
            }
            None => {
                let builder = ftps_smol::Server::builder(storage(&setup), users(&setup));
                smol_serve::<E, _>(configure(builder, &setup).build())
            }
        }
    }
}

/// Serves explicit and implicit FTPS with `server`, a thread each running executor `E`.
fn smol_serve<E: Executor, S: ftps_backend::Storage>(
    server: ftps_smol::Server<S, SuiteAuth>,
) -> Box<dyn RunningServer> {
    let bind = || E::block_on(smol::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let (e, i) = (bind(), bind());
    let (explicit, implicit) = (e.local_addr().expect("addr"), i.local_addr().expect("addr"));
    let (s1, s2) = (server.clone(), server.clone());
    std::thread::spawn(move || E::block_on(s1.serve(e, TlsMode::Explicit)));
    std::thread::spawn(move || E::block_on(s2.serve(i, TlsMode::Implicit)));
    let draining = server.clone();
    Box::new(SmolServer {
        explicit,
        implicit,
        shutdown: Box::new(move || server.shutdown()),
        drain: Box::new(move |grace| E::block_on(draining.drain(grace))),
    })
}

struct SmolSession<E> {
    client: ftps_smol::Client,
    executor: std::marker::PhantomData<E>,
}

impl<E: Executor> ClientRuntime for Smol<E> {
    fn name(&self) -> &'static str {
        "smol"
    }

    fn connect(&self, options: ClientOptions) -> Result<Box<dyn Session>, Failure> {
        let client = E::block_on(ftps_smol::Client::connect(options)).map_err(fail)?;
        Ok(Box::new(SmolSession::<E> {
            client,
            executor: std::marker::PhantomData,
        }))
    }
}

impl<E: Executor> Session for SmolSession<E> {
    fn store(
        &mut self,
        path: &str,
        data: &[u8],
        offset: u64,
        append: bool,
    ) -> Result<u64, Failure> {
        let mut input = data;
        E::block_on(self.client.store(path, &mut input, offset, append)).map_err(fail)
    }
    fn retrieve(&mut self, path: &str, offset: u64) -> Result<Vec<u8>, Failure> {
        let mut out = Vec::new();
        E::block_on(self.client.retrieve(path, offset, &mut out)).map_err(fail)?;
        Ok(out)
    }
    fn get_file(&mut self, path: &str, local: &Path, resume: bool) -> Result<u64, Failure> {
        E::block_on(self.client.get_file(path, local, resume)).map_err(fail)
    }
    fn retrieve_streamed(&mut self, path: &str) -> Result<Vec<u8>, Failure> {
        E::block_on(async {
            use smol::io::AsyncReadExt;
            let mut reader = self.client.retrieve_stream(path, 0).await.map_err(fail)?;
            let mut out = Vec::new();
            reader.read_to_end(&mut out).await.map_err(fail)?;
            reader.finish().await.map_err(fail)?;
            Ok(out)
        })
    }
    fn store_streamed(&mut self, path: &str, data: &[u8]) -> Result<u64, Failure> {
        E::block_on(async {
            use smol::io::AsyncWriteExt;
            let mut writer = self
                .client
                .store_stream(path, 0, false)
                .await
                .map_err(fail)?;
            writer.write_all(data).await.map_err(fail)?;
            writer.finish().await.map_err(fail)
        })
    }
    fn abort_download(&mut self, path: &str, first: usize) -> Result<(), Failure> {
        E::block_on(async {
            use smol::io::AsyncReadExt;
            let mut reader = self.client.retrieve_stream(path, 0).await.map_err(fail)?;
            let mut buf = vec![0u8; first];
            reader.read_exact(&mut buf).await.map_err(fail)?;
            reader.abort().await.map_err(fail)
        })
    }
    fn nlst(&mut self) -> Result<Vec<Pathname>, Failure> {
        E::block_on(self.client.nlst(None))
            .map(Listing::into_entries)
            .map_err(fail)
    }
    fn list(&mut self) -> Result<Vec<String>, Failure> {
        let entries = E::block_on(self.client.list(None)).map_err(fail)?;
        Ok(entries.into_iter().map(|e| e.name).collect())
    }
    fn mlsd(&mut self) -> Result<Vec<(String, Option<u64>)>, Failure> {
        let entries = E::block_on(self.client.mlsd(None)).map_err(fail)?;
        Ok(entries
            .into_iter()
            .map(|e| {
                let size = e.size();
                (e.pathname, size)
            })
            .collect())
    }
    fn size(&mut self, path: &str) -> Result<u64, Failure> {
        E::block_on(self.client.size(path)).map_err(fail)
    }
    fn modified(&mut self, path: &str) -> Result<String, Failure> {
        Ok(E::block_on(self.client.modified(path))
            .map_err(fail)?
            .to_string())
    }
    fn mkdir(&mut self, path: &str) -> Result<(), Failure> {
        E::block_on(self.client.mkdir(path)).map_err(fail)
    }
    fn rmdir(&mut self, path: &str) -> Result<(), Failure> {
        E::block_on(self.client.rmdir(path)).map_err(fail)
    }
    fn delete(&mut self, path: &str) -> Result<(), Failure> {
        E::block_on(self.client.delete(path)).map_err(fail)
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), Failure> {
        E::block_on(self.client.rename(from, to)).map_err(fail)
    }
    fn cwd(&mut self, path: &str) -> Result<(), Failure> {
        E::block_on(self.client.cwd(path)).map_err(fail)
    }
    fn pwd(&mut self) -> Result<String, Failure> {
        E::block_on(self.client.pwd()).map_err(fail)
    }
    fn is_secure(&self) -> bool {
        self.client.is_secure()
    }
    fn quit(self: Box<Self>) -> Result<(), Failure> {
        E::block_on(self.client.quit()).map_err(fail)
    }
}
