//! A TCP stream with or without TLS (client or server side), as one type for the control
//! and data connections of both the server and the client.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsStream;

/// Plain TCP, or TLS over TCP.
#[derive(Debug)]
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Wraps a TLS stream (client or server side).
    pub(crate) fn tls(stream: impl Into<TlsStream<TcpStream>>) -> Self {
        Stream::Tls(Box::new(stream.into()))
    }

    /// Writes and flushes control bytes; false if there is no stream or it failed.
    pub(crate) async fn send(stream: Option<&mut Stream>, bytes: &[u8]) -> bool {
        use tokio::io::AsyncWriteExt;
        match stream {
            Some(s) => s.write_all(bytes).await.is_ok() && s.flush().await.is_ok(),
            None => false,
        }
    }

    /// Ends TLS with close_notify (CCC, REIN) and gives back the TCP stream.
    pub(crate) async fn into_plain(self) -> TcpStream {
        use tokio::io::AsyncWriteExt;
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(mut tls) => {
                tls.get_mut().1.send_close_notify();
                let _ = tls.flush().await;
                match *tls {
                    TlsStream::Server(s) => s.into_inner().0,
                    TlsStream::Client(c) => c.into_inner().0,
                }
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}
