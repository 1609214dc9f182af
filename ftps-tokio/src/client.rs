//! The FTPS client on tokio: [`ftps_async::Client`] on the [`Tokio`] runtime, with tokio's
//! IO traits at its edges. Every call submits one operation and drives the session until
//! it is done; data connections resume the control connection's TLS session (servers
//! such as vsftpd with `require_ssl_reuse` demand it); after an upload the client sends
//! close_notify and reads to the end, which also collects the TLS 1.3 tickets the next
//! transfer needs.

use crate::runtime::Tokio;
use ftps_proto::Reply;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

pub use ftps_async::Target;
/// What a listing or STAT names: text, bytes, a `Pathname`, or `None`.
pub use ftps_async::client::ListTarget;
pub use ftps_backend::client::{ClientOptions, FtpUrl, report};
pub use ftps_backend::files::{
    TrustSource, client_config_from_pem_file, platform_client_config, platform_roots,
    platform_trust,
};
pub use ftps_proto::client::listing::Listing;
pub use ftps_proto::tls::{
    BOTH, Fingerprint, ServerTrust, client_config, client_config_from_pem,
    client_config_with_trust, client_config_with_versions, insecure_client_config,
    insecure_client_config_with_versions, roots_from_pem,
};

type Inner = ftps_async::Client<Tokio>;

/// Why a client call failed.
pub type Error = ftps_async::client::Error<Tokio>;

/// Explicit-if-available found no TLS: logging in would send the password in clear text.
/// [`Client::accept_plaintext`] goes on anyway.
pub type PlaintextOffer = ftps_async::PlaintextOffer<Tokio>;

/// A connected, logged-in FTP(S) client on tokio: every operation of
/// [`ftps_async::Client`] (listings, SIZE, MDTM, MKD, rename, `get_file`, CCC, ...), with
/// tokio's IO types where data goes in or out.
#[derive(Debug)]
pub struct Client(Inner);

impl From<Inner> for Client {
    fn from(inner: Inner) -> Self {
        Client(inner)
    }
}

impl Client {
    /// Connects, secures and logs in as the options say.
    pub async fn connect(options: ClientOptions) -> Result<Client, Error> {
        Inner::connect(options).await.map(Client)
    }

    /// As [`connect`](Self::connect), each TCP connection (control, passive data) opened
    /// by `dial` instead of directly: through a SOCKS5 or HTTP CONNECT proxy, say
    /// (`examples/socks5.rs`). `dial` gets each [`Target`] (the server's host as the
    /// options name it, unresolved, and the port) and returns the connected stream; TLS
    /// runs over it. Active mode is refused: the server could not connect back through it.
    pub async fn connect_via<F, Fut>(options: ClientOptions, dial: F) -> Result<Client, Error>
    where
        F: Fn(Target) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = io::Result<tokio::net::TcpStream>> + Send + 'static,
    {
        let dialer: ftps_async::Dialer<Tokio> = std::sync::Arc::new(move |target| {
            let dialing = dial(target);
            Box::pin(async move { dialing.await.map(crate::Tcp::from) })
        });
        Inner::connect_via(options, dialer).await.map(Client)
    }

    /// After [`Error::PlaintextOnly`]: logs in without TLS.
    pub async fn accept_plaintext(offer: PlaintextOffer) -> Result<Client, Error> {
        offer.accept().await.map(Client)
    }

    ftps_async::client_calls!(async);

    /// Downloads `path` from `offset` into `out`; returns the bytes received.
    pub async fn retrieve(
        &mut self,
        path: impl AsRef<[u8]>,
        offset: u64,
        out: &mut (impl AsyncWrite + Unpin + Send),
    ) -> Result<u64, Error> {
        let mut out = (&mut *out).compat_write();
        self.0.retrieve(path, offset, &mut out).await
    }

    /// Uploads tokio reader `input` to `path` (STOR at `offset`, or APPE if `append`);
    /// returns the bytes sent.
    pub async fn store(
        &mut self,
        path: impl AsRef<[u8]>,
        input: &mut (impl AsyncRead + Unpin + Send),
        offset: u64,
        append: bool,
    ) -> Result<u64, Error> {
        let mut input = (&mut *input).compat();
        self.0.store(path, &mut input, offset, append).await
    }

    /// STOU: uploads `input` under a name the server picks; returns the bytes sent and the
    /// final reply (which names the file).
    pub async fn store_unique<I: AsyncRead + Unpin + Send>(
        &mut self,
        input: &mut I,
    ) -> Result<(u64, Reply), Error> {
        let mut input = (&mut *input).compat();
        self.0.store_unique(&mut input).await
    }

    /// Starts a download and returns its data stream: read it to the end, then call
    /// [`DataReader::finish`], which waits for the server's final reply.
    pub async fn retrieve_stream(
        &mut self,
        path: impl AsRef<[u8]>,
        offset: u64,
    ) -> Result<DataReader<'_>, Error> {
        self.0.retrieve_stream(path, offset).await.map(DataReader)
    }

    /// Starts an upload (STOR at `offset`, or APPE) and returns its data stream: write to
    /// it, then call [`DataWriter::finish`].
    pub async fn store_stream(
        &mut self,
        path: impl AsRef<[u8]>,
        offset: u64,
        append: bool,
    ) -> Result<DataWriter<'_>, Error> {
        self.0
            .store_stream(path, offset, append)
            .await
            .map(DataWriter)
    }

    /// QUIT and close.
    pub async fn quit(self) -> Result<(), Error> {
        self.0.quit().await
    }
}

/// The data stream of a download started with [`Client::retrieve_stream`], as a tokio
/// `AsyncRead`. A TLS stream that ends without close_notify is an error (the data may be
/// cut short), never a quiet end of file.
pub struct DataReader<'c>(ftps_async::DataReader<'c, Tokio>);

impl AsyncRead for DataReader<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let inner = Pin::new(&mut self.get_mut().0);
        match futures_io::AsyncRead::poll_read(inner, cx, buf.initialize_unfilled()) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl DataReader<'_> {
    /// Reads what is left (if anything), then waits for the server's final reply; returns
    /// the bytes received.
    pub async fn finish(self) -> Result<u64, Error> {
        self.0.finish().await
    }

    /// Aborts the download (RFC 959 ABOR); the session goes on.
    pub async fn abort(self) -> Result<(), Error> {
        self.0.abort().await
    }
}

/// The data stream of an upload started with [`Client::store_stream`], as a tokio
/// `AsyncWrite`. Call [`finish`](Self::finish): dropping it without does not complete the
/// upload.
pub struct DataWriter<'c>(ftps_async::DataWriter<'c, Tokio>);

impl AsyncWrite for DataWriter<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        futures_io::AsyncWrite::poll_write(Pin::new(&mut self.get_mut().0), cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures_io::AsyncWrite::poll_flush(Pin::new(&mut self.get_mut().0), cx)
    }

    /// Flushes only: the stream is ended by [`DataWriter::finish`].
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures_io::AsyncWrite::poll_flush(Pin::new(&mut self.get_mut().0), cx)
    }
}

impl DataWriter<'_> {
    /// Ends the upload (close_notify, then reading to the server's end), and waits for
    /// the final reply; returns the bytes sent.
    pub async fn finish(self) -> Result<u64, Error> {
        self.0.finish().await
    }

    /// Aborts the upload (RFC 959 ABOR); the session goes on.
    pub async fn abort(self) -> Result<(), Error> {
        self.0.abort().await
    }
}
