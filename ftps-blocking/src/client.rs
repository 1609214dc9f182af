//! The client on std threads: [`ftps_async::Client`], the one client driver, on
//! [`Threads`]. Each call blocks the calling thread until it is done; the control
//! connection's reader and each data connection being set up have a thread of their own.

use crate::threads::{Inline, Threads, block_on};
use ftps_backend::client::ClientOptions;
use ftps_proto::Reply;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use std::io::{self, Read, Write};

pub use ftps_backend::client::FtpUrl;

/// Why a client call failed.
pub type Error = ftps_backend::client::Error<PlaintextOffer>;

type Inner = ftps_async::Client<Threads>;

/// The async client's result, with its plain-text offer made a blocking one.
fn sync<T>(result: Result<T, ftps_async::client::Error<Threads>>) -> Result<T, Error> {
    result.map_err(|e| e.map_offer(PlaintextOffer))
}

/// Runs one of the async client's calls on this thread.
fn run<T>(
    call: impl Future<Output = Result<T, ftps_async::client::Error<Threads>>>,
) -> Result<T, Error> {
    sync(block_on(call))
}

/// Explicit-if-available found no TLS: logging in would send the password in clear text.
#[derive(Debug)]
pub struct PlaintextOffer(ftps_async::PlaintextOffer<Threads>);

impl PlaintextOffer {
    /// Logs in without TLS.
    pub fn accept(self) -> Result<Client, Error> {
        sync(block_on(self.0.accept())).map(Client)
    }
}

/// A connected, logged-in FTP(S) client.
#[derive(Debug)]
pub struct Client(Inner);

impl Client {
    /// Connects, secures and logs in as the options say.
    pub fn connect(options: ClientOptions) -> Result<Client, Error> {
        sync(block_on(Inner::connect(options))).map(Client)
    }

    ftps_async::client_calls!(blocking run);

    /// Starts a download and returns its data stream: read it to the end, then call
    /// [`DataReader::finish`], which waits for the server's final reply.
    pub fn retrieve_stream(
        &mut self,
        path: impl AsRef<[u8]>,
        offset: u64,
    ) -> Result<DataReader<'_>, Error> {
        sync(block_on(self.0.retrieve_stream(path, offset))).map(DataReader)
    }

    /// Starts an upload (STOR at `offset`, or APPE) and returns its data stream: write to
    /// it, then call [`DataWriter::finish`].
    pub fn store_stream(
        &mut self,
        path: impl AsRef<[u8]>,
        offset: u64,
        append: bool,
    ) -> Result<DataWriter<'_>, Error> {
        sync(block_on(self.0.store_stream(path, offset, append))).map(DataWriter)
    }

    /// Downloads `path` from `offset` into `out`; returns the bytes received.
    pub fn retrieve(
        &mut self,
        path: impl AsRef<[u8]>,
        offset: u64,
        out: &mut (dyn Write + Send),
    ) -> Result<u64, Error> {
        sync(block_on(self.0.retrieve(path, offset, &mut Inline(out))))
    }

    /// Uploads `input` to `path` (STOR at `offset`, or APPE if `append`); returns the bytes
    /// sent.
    pub fn store(
        &mut self,
        path: impl AsRef<[u8]>,
        input: &mut (dyn Read + Send),
        offset: u64,
        append: bool,
    ) -> Result<u64, Error> {
        let mut input = Inline(input);
        sync(block_on(self.0.store(path, &mut input, offset, append)))
    }

    /// STOU: uploads `input` under a name the server picks; returns the bytes sent and the
    /// final reply (which names the file).
    pub fn store_unique(&mut self, input: &mut (dyn Read + Send)) -> Result<(u64, Reply), Error> {
        sync(block_on(self.0.store_unique(&mut Inline(input))))
    }

    /// QUIT and close.
    pub fn quit(self) -> Result<(), Error> {
        sync(block_on(self.0.quit()))
    }
}

/// The data stream of a download started with [`Client::retrieve_stream`] (see
/// [`ftps_async::DataReader`]): read it, then [`finish`](Self::finish) or
/// [`abort`](Self::abort).
pub struct DataReader<'c>(ftps_async::DataReader<'c, Threads>);

impl Read for DataReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        block_on(self.0.read(buf))
    }
}

impl DataReader<'_> {
    /// Reads what is left (if anything), then waits for the server's final reply; returns
    /// the bytes received. Fails if the stream ended without close_notify or the reply is
    /// negative.
    pub fn finish(self) -> Result<u64, Error> {
        sync(block_on(self.0.finish()))
    }

    /// Aborts the download (RFC 959 ABOR); the session goes on.
    pub fn abort(self) -> Result<(), Error> {
        sync(block_on(self.0.abort()))
    }
}

/// The data stream of an upload started with [`Client::store_stream`] (see
/// [`ftps_async::DataWriter`]): write to it, then [`finish`](Self::finish).
pub struct DataWriter<'c>(ftps_async::DataWriter<'c, Threads>);

impl Write for DataWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        block_on(self.0.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        block_on(self.0.flush())
    }
}

impl DataWriter<'_> {
    /// Ends the upload (close_notify, then reading to the server's end), and waits for
    /// the final reply; returns the bytes sent.
    pub fn finish(self) -> Result<u64, Error> {
        sync(block_on(self.0.finish()))
    }

    /// Aborts the upload (RFC 959 ABOR); the session goes on.
    pub fn abort(self) -> Result<(), Error> {
        sync(block_on(self.0.abort()))
    }
}
