//! # ftps-proto
//!
//! The sans-IO core of [ftps](https://example.invalid/ftps): FTP over TLS as RFC 959,
//! RFC 2228 and RFC 4217 define it, with the extensions of RFC 2389, 2428, 2640, 3659 and
//! 7151. This crate never opens a socket or a file, never spawns a thread and never reads
//! a clock; runtime adapters do that and feed it bytes.
//!
//! It holds the stateless codec and the server and client sessions:
//!
//! | module | what it reads and writes |
//! |---|---|
//! | [`framing`] | control-channel bytes to bounded lines (CRLF, Telnet IAC, resync) |
//! | [`command`] | every command verb, typed; parse and encode |
//! | [`reply`] | reply codes, single- and multi-line replies, a bounded decoder |
//! | [`address`] | PORT/EPRT arguments, 227 and 229 reply texts |
//! | [`listing`] | LIST lines: Unix `ls -l`, MS-DOS (IIS), EPLF |
//! | [`facts`] | MLSD/MLST entries and facts |
//! | [`feature`] | the FEAT reply |
//! | [`time`] | `YYYYMMDDHHMMSS[.f]` timestamps |
//! | [`path`] | virtual paths resolved inside a root, `..` clamped |
//! | [`ascii`] | TYPE A line-ending conversion |
//! | [`server`] | the server session state machine |
//! | [`client`] | the client session state machine |
//! | `tls` | rustls glue for the adapters (feature `rustls`) |
//!
//! ```
//! use ftps_proto::{Command, LineFramer, Reply, ReplyDecoder};
//!
//! // Server side: frame the bytes, parse each line.
//! let mut framer = LineFramer::default();
//! let lines = framer.decode_all(b"USER alice\r\nRETR notes.txt\r\n");
//! let cmd = Command::parse(lines[1].as_ref().unwrap()).unwrap();
//! assert_eq!(cmd.verb(), "RETR");
//!
//! // Client side: decode replies as they arrive, in any chunking.
//! let mut decoder = ReplyDecoder::default();
//! let mut input: &[u8] = b"211-Features:\r\n EPSV\r\n211 End\r\n";
//! let mut replies = Vec::new();
//! while let (used, Some(reply)) = decoder.decode(input) {
//!     input = &input[used..];
//!     replies.push(reply.unwrap());
//! }
//! assert_eq!(replies[0].lines().len(), 3);
//! ```
//!
//! Every parser returns a typed error for bad input and never panics; every buffer is
//! bounded (see [`LineFramer`] and [`ReplyLimits`]).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

// First: the modules below use its macros.
#[macro_use]
mod config_macros;

pub mod address;
pub mod ascii;
pub mod boundary;
pub mod client;
pub mod command;
mod error;
pub mod facts;
pub mod feature;
pub mod framing;
pub mod hash;
pub mod listing;
pub mod path;
pub mod proxy;
pub mod reply;
pub mod server;
mod text;
pub mod time;
#[cfg(feature = "rustls")]
pub mod tls;
pub mod transport;

pub use client::ClientSession;
pub use command::{Command, CommandError, CommandErrorKind, ProtectionLevel, RepresentationType};
pub use error::ParseError;
pub use facts::{Fact, MlsxEntry};
pub use feature::Features;
pub use framing::{FrameError, LineFramer};
pub use listing::{EntryKind, ListEntry};
pub use path::VirtualPath;
pub use reply::{Reply, ReplyCode, ReplyDecoder, ReplyError, ReplyLimits};
pub use server::ServerSession;
pub use text::{Password, Pathname, Printable, PrintableBytes, Text, Token, Username};
pub use time::Timestamp;
pub use transport::{TransportError, TransportErrorKind};
