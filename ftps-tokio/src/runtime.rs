//! tokio as an [`ftps_async`] runtime: tokio's sockets, timer, tasks and blocking pool,
//! seen through futures-io (`tokio_util::compat`).

use ftps_async::runtime::{BoxFuture, Runtime};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

/// The tokio runtime, for [`ftps_async`].
#[derive(Debug, Clone, Copy)]
pub struct Tokio;

/// A tokio task that is cancelled when dropped.
#[derive(Debug)]
pub struct Task<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for Task<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match Pin::new(&mut self.0).poll(cx) {
            Poll::Ready(Ok(v)) => Poll::Ready(v),
            Poll::Ready(Err(e)) => std::panic::resume_unwind(e.into_panic()),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Runtime for Tokio {
    type Tcp = Compat<tokio::net::TcpStream>;
    type Listener = tokio::net::TcpListener;
    type Task<T: Send + 'static> = Task<T>;
    type File = Compat<tokio::fs::File>;

    fn connect(addr: SocketAddr) -> BoxFuture<'static, io::Result<Self::Tcp>> {
        Box::pin(async move { Ok(tokio::net::TcpStream::connect(addr).await?.compat()) })
    }

    fn connect_host(host: String, port: u16) -> BoxFuture<'static, io::Result<Self::Tcp>> {
        Box::pin(async move {
            Ok(tokio::net::TcpStream::connect((host.as_str(), port))
                .await?
                .compat())
        })
    }

    fn bind(addr: SocketAddr) -> BoxFuture<'static, io::Result<Self::Listener>> {
        Box::pin(tokio::net::TcpListener::bind(addr))
    }

    fn accept(listener: &Self::Listener) -> BoxFuture<'_, io::Result<(Self::Tcp, SocketAddr)>> {
        Box::pin(async move {
            let (tcp, peer) = listener.accept().await?;
            Ok((tcp.compat(), peer))
        })
    }

    fn listener_addr(listener: &Self::Listener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    fn addrs(tcp: &Self::Tcp) -> io::Result<(SocketAddr, SocketAddr)> {
        Ok((tcp.get_ref().local_addr()?, tcp.get_ref().peer_addr()?))
    }

    fn set_nodelay(tcp: &Self::Tcp) -> io::Result<()> {
        tcp.get_ref().set_nodelay(true)
    }

    fn socket(tcp: &Self::Tcp) -> socket2::SockRef<'_> {
        socket2::SockRef::from(tcp.get_ref())
    }

    fn sleep_until(deadline: Instant) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }

    fn spawn<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> Self::Task<T> {
        Task(tokio::spawn(future))
    }

    fn spawn_detached(future: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(future);
    }

    fn unblock<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> BoxFuture<'static, T> {
        Box::pin(async move {
            match tokio::task::spawn_blocking(f).await {
                Ok(v) => v,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        })
    }

    fn file_from_std(file: std::fs::File) -> Self::File {
        tokio::fs::File::from_std(file).compat()
    }

    fn open_file(
        path: PathBuf,
        write: bool,
        truncate: bool,
    ) -> BoxFuture<'static, io::Result<Self::File>> {
        Box::pin(async move {
            let mut options = tokio::fs::OpenOptions::new();
            if write {
                options.write(true).create(true).truncate(truncate);
            } else {
                options.read(true);
            }
            Ok(options.open(path).await?.compat())
        })
    }
}
