//! The client findings of the outside security review (issue 13), over real sockets,
//! against the scripted server of this crate made hostile ([`Listing`]), for every client
//! runtime (tokio, blocking, smol).
//!
//! Finding 18: no bound on listing size. A server streaming LIST forever pushed
//! `ftps ls -l` to 1.98 GB in 4 s. Now a listing may bring at most
//! `Client::set_max_listing` bytes (default 64 MiB); past it the listing is aborted (its
//! data connection dropped, ABOR sent) and fails with
//! `ClientError::ListingTooLarge`, and the session goes on. The parsed entries are bounded
//! by the same figure (what they hold in memory), so short lines cannot multiply it.
//!
//! The memory check samples this process's resident set (`VmRSS`) while the listing runs;
//! the tests of this file take turns, so no other test's memory is counted. The server
//! also counts what the data connection took from it: the client cannot have received
//! more.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_backend::client::Error;
use ftps_conformance::hostile::peak_growth_kib;
use ftps_conformance::scripted::{Ending, LISTING_NAMES, Listing, ScriptedServer};
use ftps_proto::ProtectionLevel;
use ftps_proto::client::{ClientError, DEFAULT_MAX_LISTING, ListFormat};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The listing bound the tests set.
const BOUND: u64 = 8 << 20;

/// What the endless listing sends at most: a client without a bound takes all of it.
const CAP: u64 = 16 * BOUND;

/// What the kernel may hold between the server and the client once the client stops
/// reading (both sockets' buffers, TLS framing): the server can have sent this much more
/// than the client kept.
const SOCKET_SLACK: u64 = 24 << 20;

const _: () = assert!(BOUND + SOCKET_SLACK < CAP / 2);

/// How much the resident set may grow while a listing is refused at the bound: the
/// listing's buffer (at most the bound), and as much again, because the allocator may
/// copy a growing buffer into one twice its size and keep the old one for reuse; plus
/// room for the session's own buffers. Without the bound it grows by [`CAP`].
const MEMORY_ALLOWED: u64 = 3 * BOUND;

const _: () = assert!(MEMORY_ALLOWED < CAP / 4);

/// The longest one listing may take.
const TIME_LIMIT: Duration = Duration::from_secs(30);

/// One test at a time: the resident set is the whole process's.
static TURN: Mutex<()> = Mutex::new(());

/// Why a call failed: the protocol's typed error, or anything else in words.
#[derive(Debug)]
enum Failed {
    Protocol(ClientError),
    Other(#[expect(dead_code, reason = "shown by Debug")] String),
}

fn failed<P: std::fmt::Debug>(e: Error<P>) -> Failed {
    match e {
        Error::Protocol(e) => Failed::Protocol(e),
        other => Failed::Other(other.to_string()),
    }
}

type Res<T> = Result<T, Failed>;

/// The calls the tests need, from each runtime's client.
trait Lister {
    fn max_listing(&self) -> u64;
    fn set_max_listing(&mut self, bytes: u64);
    fn list_raw(&mut self, format: ListFormat) -> Res<Vec<u8>>;
    /// LIST, parsed: the names.
    fn list(&mut self) -> Res<Vec<String>>;
    fn nlst(&mut self) -> Res<Vec<ftps_proto::Pathname>>;
    fn noop(&mut self) -> Res<()>;
    fn pwd(&mut self) -> Res<String>;
    fn quit(self: Box<Self>) -> Res<()>;
}

struct TokioLister {
    rt: tokio::runtime::Runtime,
    client: ftps_tokio::Client,
}

impl Lister for TokioLister {
    fn max_listing(&self) -> u64 {
        self.client.max_listing()
    }
    fn set_max_listing(&mut self, bytes: u64) {
        self.client.set_max_listing(bytes);
    }
    fn list_raw(&mut self, format: ListFormat) -> Res<Vec<u8>> {
        let c = &mut self.client;
        self.rt.block_on(c.list_raw(None, format)).map_err(failed)
    }
    fn list(&mut self) -> Res<Vec<String>> {
        let entries = self.rt.block_on(self.client.list(None)).map_err(failed)?;
        Ok(entries.into_iter().map(|e| e.name).collect())
    }
    fn nlst(&mut self) -> Res<Vec<ftps_proto::Pathname>> {
        self.rt
            .block_on(self.client.nlst(None))
            .map(|l| l.entries)
            .map_err(failed)
    }
    fn noop(&mut self) -> Res<()> {
        self.rt.block_on(self.client.noop()).map_err(failed)
    }
    fn pwd(&mut self) -> Res<String> {
        self.rt.block_on(self.client.pwd()).map_err(failed)
    }
    fn quit(self: Box<Self>) -> Res<()> {
        let TokioLister { rt, client } = *self;
        rt.block_on(client.quit()).map_err(failed)
    }
}

struct SmolLister(ftps_smol::Client);

impl Lister for SmolLister {
    fn max_listing(&self) -> u64 {
        self.0.max_listing()
    }
    fn set_max_listing(&mut self, bytes: u64) {
        self.0.set_max_listing(bytes);
    }
    fn list_raw(&mut self, format: ListFormat) -> Res<Vec<u8>> {
        smol::block_on(self.0.list_raw(None, format)).map_err(failed)
    }
    fn list(&mut self) -> Res<Vec<String>> {
        let entries = smol::block_on(self.0.list(None)).map_err(failed)?;
        Ok(entries.into_iter().map(|e| e.name).collect())
    }
    fn nlst(&mut self) -> Res<Vec<ftps_proto::Pathname>> {
        smol::block_on(self.0.nlst(None))
            .map(|l| l.entries)
            .map_err(failed)
    }
    fn noop(&mut self) -> Res<()> {
        smol::block_on(self.0.noop()).map_err(failed)
    }
    fn pwd(&mut self) -> Res<String> {
        smol::block_on(self.0.pwd()).map_err(failed)
    }
    fn quit(self: Box<Self>) -> Res<()> {
        smol::block_on(self.0.quit()).map_err(failed)
    }
}

struct BlockingLister(ftps_blocking::Client);

impl Lister for BlockingLister {
    fn max_listing(&self) -> u64 {
        self.0.max_listing()
    }
    fn set_max_listing(&mut self, bytes: u64) {
        self.0.set_max_listing(bytes);
    }
    fn list_raw(&mut self, format: ListFormat) -> Res<Vec<u8>> {
        self.0.list_raw(None, format).map_err(failed)
    }
    fn list(&mut self) -> Res<Vec<String>> {
        let entries = self.0.list(None).map_err(failed)?;
        Ok(entries.into_iter().map(|e| e.name).collect())
    }
    fn nlst(&mut self) -> Res<Vec<ftps_proto::Pathname>> {
        self.0.nlst(None).map(|l| l.entries).map_err(failed)
    }
    fn noop(&mut self) -> Res<()> {
        self.0.noop().map_err(failed)
    }
    fn pwd(&mut self) -> Res<String> {
        self.0.pwd().map_err(failed)
    }
    fn quit(self: Box<Self>) -> Res<()> {
        self.0.quit().map_err(failed)
    }
}

#[derive(Debug, Clone, Copy)]
enum Runtime {
    Tokio,
    Blocking,
    Smol,
}

fn connect(runtime: Runtime, server: &ScriptedServer) -> Box<dyn Lister> {
    let options = server.client_options(ProtectionLevel::Private, false);
    match runtime {
        Runtime::Tokio => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let client = rt.block_on(ftps_tokio::Client::connect(options)).unwrap();
            Box::new(TokioLister { rt, client })
        }
        Runtime::Blocking => Box::new(BlockingLister(
            ftps_blocking::Client::connect(options).unwrap(),
        )),
        Runtime::Smol => Box::new(SmolLister(
            smol::block_on(ftps_smol::Client::connect(options)).unwrap(),
        )),
    }
}

/// [`peak_growth_kib`] in bytes.
fn peak_growth<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let (out, kib) = peak_growth_kib(f);
    (out, kib * 1024)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

/// The session works after a refused listing: NOOP, PWD, and a listing.
fn still_usable(client: &mut dyn Lister, server: &ScriptedServer, problems: &mut Vec<String>) {
    server.set_listing(Listing::Fixed);
    if let Err(e) = client.noop() {
        problems.push(format!("then NOOP failed: {e:?}"));
    }
    match client.pwd() {
        Ok(p) if p == "/" => {}
        other => problems.push(format!("then PWD gave {other:?} (replies out of step?)")),
    }
    match client.list() {
        Ok(names) if names == LISTING_NAMES => {}
        other => problems.push(format!("then LIST gave {other:?}")),
    }
}

fn expect_too_large<T: std::fmt::Debug>(what: &str, got: &Res<T>, problems: &mut Vec<String>) {
    match got {
        Err(Failed::Protocol(ClientError::ListingTooLarge { limit })) if *limit == BOUND => {}
        Ok(v) => {
            let shown = format!("{v:?}");
            let shown: String = shown.chars().take(120).collect();
            problems.push(format!(
                "{what} succeeded ({shown}...), past the {} bound",
                mib(BOUND)
            ));
        }
        Err(e) => problems.push(format!(
            "{what} failed, but not with ListingTooLarge {{ limit: {BOUND} }}: {e:?}"
        )),
    }
}

/// Finding 18 on one runtime; panics with every problem found and the server's log.
fn finding_18(runtime: Runtime) {
    let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    let server = ScriptedServer::start(Ending::CloseThenReply).unwrap();
    let mut client = connect(runtime, &server);
    let mut problems = Vec::new();
    if client.max_listing() != DEFAULT_MAX_LISTING || DEFAULT_MAX_LISTING != 64 << 20 {
        problems.push(format!(
            "the default bound is {}, not 64 MiB",
            client.max_listing()
        ));
    }
    client.set_max_listing(BOUND);

    // A LIST that never ends: the client stops at the bound, in bounded memory.
    server.set_listing(Listing::Endless { cap: CAP });
    let started = Instant::now();
    let (got, growth) = peak_growth(|| client.list_raw(ListFormat::List));
    let took = started.elapsed();
    let sent = server.listing_sent();
    let got = got.map(|raw| format!("{} bytes", raw.len()));
    expect_too_large("the endless LIST", &got, &mut problems);
    if growth >= MEMORY_ALLOWED {
        problems.push(format!(
            "the resident set grew by {} during the listing (bound {}, allowed < {})",
            mib(growth),
            mib(BOUND),
            mib(MEMORY_ALLOWED)
        ));
    }
    if sent > BOUND + SOCKET_SLACK {
        problems.push(format!(
            "the server could send {} before the client stopped (bound {}, socket slack {})",
            mib(sent),
            mib(BOUND),
            mib(SOCKET_SLACK)
        ));
    }
    if took > TIME_LIMIT {
        problems.push(format!("the listing took {} ms", took.as_millis()));
    }
    println!(
        "{runtime:?}: endless LIST -> {got:?} in {} ms; resident set +{}; the server sent {}",
        took.as_millis(),
        mib(growth),
        mib(sent)
    );
    if server.log().iter().any(|l| l.contains("> ABOR")) {
        println!("{runtime:?}: the client sent ABOR");
    } else {
        problems.push("the client did not send ABOR for the listing it stopped".into());
    }
    still_usable(client.as_mut(), &server, &mut problems);

    // Within the byte bound, but the parsed names would hold more than it: 4 MiB of
    // 16-byte NLST lines are 262,144 names of 24 + 14 bytes each, 9.5 MiB.
    server.set_listing(Listing::Endless { cap: BOUND / 2 });
    let (got, growth) = peak_growth(|| client.nlst().map(|names| names.len()));
    expect_too_large("NLST parsed past the bound", &got, &mut problems);
    println!(
        "{runtime:?}: 4 MiB NLST parsed -> {got:?}; resident set +{}",
        mib(growth)
    );
    server.set_listing(Listing::Endless { cap: BOUND / 2 });
    match client.list_raw(ListFormat::Nlst) {
        Ok(raw) if raw.len() as u64 == BOUND / 2 => {}
        other => problems.push(format!(
            "the same NLST raw (under the byte bound) gave {:?}, not {} bytes",
            other.map(|r| r.len()),
            BOUND / 2
        )),
    }
    still_usable(client.as_mut(), &server, &mut problems);
    if let Err(e) = client.quit() {
        problems.push(format!("QUIT failed: {e:?}"));
    }
    assert!(
        problems.is_empty(),
        "{runtime:?}:\n  {}\n  server log (last 30):\n    {}",
        problems.join("\n  "),
        server
            .log()
            .iter()
            .rev()
            .take(30)
            .rev()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n    ")
    );
}

#[test]
fn finding_18_listing_size_is_bounded_tokio() {
    finding_18(Runtime::Tokio);
}

#[test]
fn finding_18_listing_size_is_bounded_blocking() {
    finding_18(Runtime::Blocking);
}

#[test]
fn finding_18_listing_size_is_bounded_smol() {
    finding_18(Runtime::Smol);
}
