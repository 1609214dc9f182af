//! A TCP stream with or without TLS (client or server side), as one type for the control
//! and data connections.

use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::io::AsyncWriteExt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A data connection's socket with a read buffer under TLS. rustls reads records from its
/// transport 4 KiB at a time (`READ_SIZE` in rustls 0.23's deframer); through this buffer
/// each socket read takes up to [`DATA_READ_BUFFER`] bytes, so a protected upload costs a
/// syscall per 64 KiB, not per 4 KiB. (The bench showed no clear change on its own here,
/// where uploads are bound by allocating the file's pages.) Writes pass through.
pub(crate) type Buffered<T> = futures_lite::io::BufReader<T>;

/// The read buffer of a data connection (see [`Buffered`]).
pub(crate) const DATA_READ_BUFFER: usize = 64 * 1024;

/// Wraps a data connection's socket (see [`Buffered`]).
pub(crate) fn buffered<T: AsyncRead>(tcp: T) -> Buffered<T> {
    futures_lite::io::BufReader::with_capacity(DATA_READ_BUFFER, tcp)
}

/// Plain TCP, or TLS over TCP.
pub(crate) enum Stream<T> {
    Plain(T),
    Tls(Box<futures_rustls::TlsStream<T>>),
}

impl<T: AsyncRead + AsyncWrite + Unpin> Stream<T> {
    /// Wraps a TLS stream (client or server side).
    pub(crate) fn tls(stream: impl Into<futures_rustls::TlsStream<T>>) -> Self {
        Stream::Tls(Box::new(stream.into()))
    }

    /// Writes and flushes control bytes; false if there is no stream or it failed.
    pub(crate) async fn send(stream: Option<&mut Self>, bytes: &[u8]) -> bool {
        match stream {
            Some(s) => s.write_all(bytes).await.is_ok() && s.flush().await.is_ok(),
            None => false,
        }
    }

    /// Ends TLS with close_notify (CCC, REIN) and gives back the TCP stream.
    pub(crate) async fn into_plain(self) -> T {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => match *tls {
                futures_rustls::TlsStream::Server(mut s) => {
                    s.get_mut().1.send_close_notify();
                    let _ = s.flush().await;
                    s.into_inner().0
                }
                futures_rustls::TlsStream::Client(mut c) => {
                    c.get_mut().1.send_close_notify();
                    let _ = c.flush().await;
                    c.into_inner().0
                }
            },
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
