//! A TCP stream with or without TLS (client or server side), as one type for the control
//! and data connections.

use crate::tls::TlsStream;
use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::io::AsyncWriteExt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Plain TCP, or TLS over TCP.
pub(crate) enum Stream<T> {
    Plain(T),
    Tls(Box<TlsStream<T>>),
}

impl<T: AsyncRead + AsyncWrite + Unpin> Stream<T> {
    /// Wraps a TLS stream (client or server side).
    pub(crate) fn tls(stream: TlsStream<T>) -> Self {
        Stream::Tls(Box::new(stream))
    }

    /// Writes and flushes control bytes; false if there is no stream or it failed.
    pub(crate) async fn send(stream: Option<&mut Self>, bytes: &[u8]) -> bool {
        match stream {
            Some(s) => s.write_all(bytes).await.is_ok() && s.flush().await.is_ok(),
            None => false,
        }
    }

    /// Ends TLS with close_notify (CCC, REIN) and gives back the TCP stream.
    pub(crate) async fn into_plain(self) -> io::Result<T> {
        match self {
            Stream::Plain(tcp) => Ok(tcp),
            Stream::Tls(tls) => tls.into_plain().await,
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<T> {
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

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_close(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}
