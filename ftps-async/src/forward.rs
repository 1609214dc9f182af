//! The client calls that take no IO type, listed once for the adapters' client types
//! (`ftps_tokio::Client`, `ftps_blocking::Client`), which wrap [`crate::Client`] and give
//! their own IO types at the edges: each invokes [`client_calls!`](crate::client_calls)
//! inside its `impl`, and every call below becomes a method of its, without a `Deref`.

/// Makes the client calls that take no IO type methods of an adapter's client, a newtype
/// over [`crate::Client`] (field `0`) with an `Error` type in scope:
///
/// - `client_calls!(async)`: `async` methods that await the inner client's;
/// - `client_calls!(blocking run)`: methods that call `run(future)`, which blocks until
///   the inner client's future is done and gives the adapter's result.
#[macro_export]
macro_rules! client_calls {
    (async) => {
        $crate::client_calls!(@all [async]);
    };
    (blocking $run:path) => {
        $crate::client_calls!(@all [blocking $run]);
    };
    (@all $how:tt) => {
        $crate::client_calls!(@each $how
            /// Lists a directory in the given format; returns the raw listing, within the
            /// listing bound.
            fn list_raw(path: impl $crate::client::ListTarget, format: $crate::proto::client::ListFormat) -> Vec<u8>;
            /// LIST, parsed, within the listing bound: the entries, and the lines that
            /// parsed in no known form, as sent (`Listing::unparsed`).
            fn list(path: impl $crate::client::ListTarget) -> $crate::proto::client::listing::Listing<$crate::proto::ListEntry>;
            /// MLSD, parsed, within the listing bound: the entries, and the lines that did
            /// not parse, as sent (`Listing::unparsed`).
            fn mlsd(path: impl $crate::client::ListTarget) -> $crate::proto::client::listing::Listing<$crate::proto::MlsxEntry>;
            /// NLST, within the listing bound: the names, each a `Pathname` that reaches
            /// its file, and the lines no pathname can be, as sent (`Listing::unparsed`).
            fn nlst(path: impl $crate::client::ListTarget) -> $crate::proto::client::listing::Listing<$crate::proto::Pathname>;
            /// Downloads to a local file; with `resume`, continues a partial file. A failed
            /// download never destroys the file it was to replace (see
            /// [`ftps_async::Client::get_file`]).
            fn get_file(path: impl AsRef<[u8]>, local: &std::path::Path, resume: bool) -> u64;
            /// Uploads a local file; with `resume`, continues from the remote file's size.
            fn put_file(local: &std::path::Path, path: impl AsRef<[u8]>, resume: bool) -> u64;
            /// SIZE.
            fn size(path: impl AsRef<[u8]>) -> u64;
            /// HASH (draft-bryan-ftpext-hash-02): the server's hash of a file, or of the
            /// bytes `start..=end` of it; a server whose FEAT does not offer HASH, the
            /// algorithm, or RANG for a range is `Unsupported`, nothing sent.
            fn hash(path: impl AsRef<[u8]>, algorithm: $crate::proto::hash::HashAlgorithm, range: Option<(u64, u64)>) -> $crate::proto::hash::HashReply;
            /// MDTM.
            fn modified(path: impl AsRef<[u8]>) -> $crate::proto::Timestamp;
            /// MFMT: sets a file's modification time.
            fn set_modified(path: impl AsRef<[u8]>, time: $crate::proto::Timestamp) -> ();
            /// MLST (RFC 3659 §7): the facts of one file or directory.
            fn mlst(path: impl $crate::client::ListTarget) -> $crate::proto::MlsxEntry;
            /// PWD.
            fn pwd() -> String;
            /// CWD.
            fn cwd(path: impl AsRef<[u8]>) -> ();
            /// CDUP.
            fn cdup() -> ();
            /// MKD.
            fn mkdir(path: impl AsRef<[u8]>) -> ();
            /// RMD.
            fn rmdir(path: impl AsRef<[u8]>) -> ();
            /// DELE.
            fn delete(path: impl AsRef<[u8]>) -> ();
            /// RNFR + RNTO.
            fn rename(from: impl AsRef<[u8]>, to: impl AsRef<[u8]>) -> ();
            /// SITE: a server-specific command; returns the reply.
            fn site(command: &str) -> $crate::proto::Reply;
            /// STAT over the control connection: the server's status, or a listing of `path`.
            fn stat(path: impl $crate::client::ListTarget) -> $crate::proto::Reply;
            /// CCC (RFC 4217 §6): ends TLS on the control connection; data connections keep
            /// their protection level. Opt-in.
            fn clear_control_channel() -> ();
            /// NOOP.
            fn noop() -> ();
            /// Sends any command without a data connection; returns the final reply,
            /// whatever its code.
            fn raw(command: $crate::proto::Command) -> $crate::proto::Reply;
        );

        /// Transfers in TYPE A (ASCII: line endings converted to CRLF on the wire and
        /// back, RFC 959 §3.1.1.1) from now on, or TYPE I (binary, the default).
        pub fn set_ascii(&mut self, on: bool) {
            self.0.set_ascii(on);
        }

        /// Whether the control connection is protected by TLS.
        pub fn is_secure(&self) -> bool {
            self.0.is_secure()
        }

        /// The server's FEAT features.
        pub fn features(&self) -> &$crate::proto::Features {
            self.0.features()
        }

        /// How many times the control connection was opened again because the TLS 1.3
        /// session had no ticket left (see [`ftps_async::Client::session_renewals`]).
        pub fn session_renewals(&self) -> u32 {
            self.0.session_renewals()
        }

        /// The listing bound (see [`ftps_async::Client::set_max_listing`]).
        pub fn max_listing(&self) -> u64 {
            self.0.max_listing()
        }

        /// Bounds what a listing may hold, from now on (see
        /// [`ftps_async::Client::set_max_listing`]).
        pub fn set_max_listing(&mut self, bytes: u64) {
            self.0.set_max_listing(bytes);
        }
    };
    (@each $how:tt $($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {
        $($crate::client_calls!(@one $how $(#[$doc])* $name ($($arg: $ty),*) $out);)*
    };
    (@one [async] $(#[$doc:meta])* $name:ident ($($arg:ident: $ty:ty),*) $out:ty) => {
        $(#[$doc])*
        pub async fn $name(&mut self, $($arg: $ty),*) -> Result<$out, Error> {
            self.0.$name($($arg),*).await
        }
    };
    (@one [blocking $run:path] $(#[$doc:meta])* $name:ident ($($arg:ident: $ty:ty),*) $out:ty) => {
        $(#[$doc])*
        pub fn $name(&mut self, $($arg: $ty),*) -> Result<$out, Error> {
            $run(self.0.$name($($arg),*))
        }
    };
}
