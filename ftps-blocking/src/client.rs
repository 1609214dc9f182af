//! The client on std threads: [`ftps_async::Client`], the one client driver, on
//! [`Threads`]. Each call blocks the calling thread until it is done; the control
//! connection's reader and each data connection being set up have a thread of their own.

use crate::threads::{Inline, Threads, block_on};
use ftps_backend::client::ClientOptions;
use ftps_proto::client::ListFormat;
use ftps_proto::{ListEntry, MlsxEntry, Reply, Timestamp};
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use std::io::{self, Read, Write};
use std::path::Path;

pub use ftps_backend::client::FtpUrl;

/// Why a client call failed.
pub type Error = ftps_backend::client::Error<PlaintextOffer>;

type Inner = ftps_async::Client<Threads>;

/// The async client's result, with its plain-text offer made a blocking one.
fn sync<T>(result: Result<T, ftps_async::client::Error<Threads>>) -> Result<T, Error> {
    result.map_err(|e| e.map_offer(PlaintextOffer))
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

    /// Transfers in TYPE A (ASCII: line endings converted to CRLF on the wire and back,
    /// RFC 959 §3.1.1.1) from now on, or TYPE I (binary, the default).
    pub fn set_ascii(&mut self, on: bool) {
        self.0.set_ascii(on);
    }

    /// Whether the control connection is protected by TLS.
    pub fn is_secure(&self) -> bool {
        self.0.is_secure()
    }

    /// The server's FEAT features.
    pub fn features(&self) -> &ftps_proto::Features {
        self.0.features()
    }

    /// How many times the control connection was opened again because the TLS 1.3
    /// session had no ticket left (see [`ftps_async::Client::session_renewals`]).
    pub fn session_renewals(&self) -> u32 {
        self.0.session_renewals()
    }

    /// Starts a download and returns its data stream: read it to the end, then call
    /// [`DataReader::finish`], which waits for the server's final reply.
    pub fn retrieve_stream(&mut self, path: &str, offset: u64) -> Result<DataReader<'_>, Error> {
        sync(block_on(self.0.retrieve_stream(path, offset))).map(DataReader)
    }

    /// Starts an upload (STOR at `offset`, or APPE) and returns its data stream: write to
    /// it, then call [`DataWriter::finish`].
    pub fn store_stream(
        &mut self,
        path: &str,
        offset: u64,
        append: bool,
    ) -> Result<DataWriter<'_>, Error> {
        sync(block_on(self.0.store_stream(path, offset, append))).map(DataWriter)
    }

    /// The listing bound (see [`Client::set_max_listing`]).
    pub fn max_listing(&self) -> u64 {
        self.0.max_listing()
    }

    /// Bounds what a listing may hold, from now on (see
    /// [`ftps_async::Client::set_max_listing`]).
    pub fn set_max_listing(&mut self, bytes: u64) {
        self.0.set_max_listing(bytes);
    }

    /// Lists a directory in the given format; returns the raw listing, within the
    /// listing bound.
    pub fn list_raw(&mut self, path: Option<&str>, format: ListFormat) -> Result<Vec<u8>, Error> {
        sync(block_on(self.0.list_raw(path, format)))
    }

    /// LIST, parsed (lines that do not parse are skipped), within the listing bound.
    pub fn list(&mut self, path: Option<&str>) -> Result<Vec<ListEntry>, Error> {
        sync(block_on(self.0.list(path)))
    }

    /// MLSD, parsed, within the listing bound.
    pub fn mlsd(&mut self, path: Option<&str>) -> Result<Vec<MlsxEntry>, Error> {
        sync(block_on(self.0.mlsd(path)))
    }

    /// NLST: names, within the listing bound.
    pub fn nlst(&mut self, path: Option<&str>) -> Result<Vec<String>, Error> {
        sync(block_on(self.0.nlst(path)))
    }

    /// Downloads `path` from `offset` into `out`; returns the bytes received.
    pub fn retrieve(
        &mut self,
        path: &str,
        offset: u64,
        out: &mut (dyn Write + Send),
    ) -> Result<u64, Error> {
        sync(block_on(self.0.retrieve(path, offset, &mut Inline(out))))
    }

    /// Uploads `input` to `path` (STOR at `offset`, or APPE if `append`); returns the bytes
    /// sent.
    pub fn store(
        &mut self,
        path: &str,
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

    /// Downloads to a local file; with `resume`, continues a partial file. A failed
    /// download never destroys the file it was to replace (see
    /// [`ftps_async::Client::get_file`]).
    pub fn get_file(&mut self, path: &str, local: &Path, resume: bool) -> Result<u64, Error> {
        sync(block_on(self.0.get_file(path, local, resume)))
    }

    /// Uploads a local file; with `resume`, continues from the remote file's size.
    pub fn put_file(&mut self, local: &Path, path: &str, resume: bool) -> Result<u64, Error> {
        sync(block_on(self.0.put_file(local, path, resume)))
    }

    /// SIZE.
    pub fn size(&mut self, path: &str) -> Result<u64, Error> {
        sync(block_on(self.0.size(path)))
    }

    /// MDTM.
    pub fn modified(&mut self, path: &str) -> Result<Timestamp, Error> {
        sync(block_on(self.0.modified(path)))
    }

    /// MFMT: sets a file's modification time.
    pub fn set_modified(&mut self, path: &str, time: Timestamp) -> Result<(), Error> {
        sync(block_on(self.0.set_modified(path, time)))
    }

    /// MLST (RFC 3659 §7): the facts of one file or directory.
    pub fn mlst(&mut self, path: Option<&str>) -> Result<MlsxEntry, Error> {
        sync(block_on(self.0.mlst(path)))
    }

    /// PWD.
    pub fn pwd(&mut self) -> Result<String, Error> {
        sync(block_on(self.0.pwd()))
    }

    /// CWD.
    pub fn cwd(&mut self, path: &str) -> Result<(), Error> {
        sync(block_on(self.0.cwd(path)))
    }

    /// CDUP.
    pub fn cdup(&mut self) -> Result<(), Error> {
        sync(block_on(self.0.cdup()))
    }

    /// MKD.
    pub fn mkdir(&mut self, path: &str) -> Result<(), Error> {
        sync(block_on(self.0.mkdir(path)))
    }

    /// RMD.
    pub fn rmdir(&mut self, path: &str) -> Result<(), Error> {
        sync(block_on(self.0.rmdir(path)))
    }

    /// DELE.
    pub fn delete(&mut self, path: &str) -> Result<(), Error> {
        sync(block_on(self.0.delete(path)))
    }

    /// RNFR + RNTO.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), Error> {
        sync(block_on(self.0.rename(from, to)))
    }

    /// SITE: a server-specific command; returns the reply.
    pub fn site(&mut self, command: &str) -> Result<Reply, Error> {
        sync(block_on(self.0.site(command)))
    }

    /// STAT over the control connection: the server's status, or a listing of `path`.
    pub fn stat(&mut self, path: Option<&str>) -> Result<Reply, Error> {
        sync(block_on(self.0.stat(path)))
    }

    /// CCC (RFC 4217 §6): ends TLS on the control connection; data connections keep their
    /// protection level. Opt-in.
    pub fn clear_control_channel(&mut self) -> Result<(), Error> {
        sync(block_on(self.0.clear_control_channel()))
    }

    /// NOOP.
    pub fn noop(&mut self) -> Result<(), Error> {
        sync(block_on(self.0.noop()))
    }

    /// Sends any command without a data connection; returns the final reply, whatever its
    /// code.
    pub fn raw(&mut self, command: ftps_proto::Command) -> Result<Reply, Error> {
        sync(block_on(self.0.raw(command)))
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
