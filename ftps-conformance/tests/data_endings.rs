//! Every way an FTPS data connection can end, against every client runtime.
//!
//! Servers differ in the order of their close_notify, their FIN and the final reply at the
//! end of a transfer; vsftpd sends 226 only once the client has closed its side of the
//! data connection too. The scripted server ([`ftps_conformance::scripted`]) ends each data
//! connection in one [`Ending`]; each test here is one client runtime, one ending and one
//! mode (PROT P over TLS 1.3, PROT P over TLS 1.2, PROT C; a missing close_notify means
//! nothing in clear, so PROT C skips that ending), and runs every transfer operation
//! (RETR, NLST, LIST, STOR, through the calls that take a buffer and through the
//! data-stream types) on a session of its own, all at once. Each operation must
//!
//! - end as it should: the bytes whole, or for a download that ended without close_notify
//!   (maybe truncated) an error that says so;
//! - end within [`BOUND`], well under the server's 3 s wait for the client's close and the
//!   client's own 10 s timeouts, so a client that waits for a reply the server will not
//!   send before the client closes fails here (also by the 426 the server then sends);
//! - leave the session usable: a download and PWD after it succeed.
//!
//! A failure prints the scripted server's log (commands, replies, and how each data
//! connection ended, in milliseconds); `DATA_ENDINGS_LOG=1` prints it for every case.

use ftps_conformance::runtimes::{Blocking, Smol, Tokio};
use ftps_conformance::scripted::{
    CLIENT_CLOSE_WAIT, Ending, FILE, LISTING_NAMES, ScriptedServer, file_content,
};
use ftps_conformance::{ClientRuntime, Session};
use ftps_proto::ProtectionLevel;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The longest one operation may take.
const BOUND: Duration = Duration::from_millis(2500);

// A client that waits for the server to close first must exceed the bound.
const _: () = assert!(BOUND.as_millis() < CLIENT_CLOSE_WAIT.as_millis());

/// The longest a whole case (server, login, operation, checks, QUIT) may take before it
/// counts as hung.
const CASE_LIMIT: Duration = Duration::from_secs(40);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Retrieve,
    RetrieveStreamed,
    Nlst,
    List,
    Store,
    StoreStreamed,
}

const OPS: [Op; 6] = [
    Op::Retrieve,
    Op::RetrieveStreamed,
    Op::Nlst,
    Op::List,
    Op::Store,
    Op::StoreStreamed,
];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Retrieve => "retrieve",
            Op::RetrieveStreamed => "retrieve_streamed",
            Op::Nlst => "nlst",
            Op::List => "list",
            Op::Store => "store",
            Op::StoreStreamed => "store_streamed",
        }
    }

    fn upload(self) -> bool {
        matches!(self, Op::Store | Op::StoreStreamed)
    }
}

#[derive(Debug, Clone, Copy)]
enum Runtime {
    Tokio,
    Blocking,
    Smol,
}

impl Runtime {
    fn client(self) -> Box<dyn ClientRuntime> {
        match self {
            Runtime::Tokio => Box::new(Tokio),
            Runtime::Blocking => Box::new(Blocking),
            Runtime::Smol => Box::new(Smol::new()),
        }
    }
}

/// The data connections' protection, and the TLS version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// PROT P, TLS 1.3.
    Private,
    /// PROT P, TLS 1.2 only.
    PrivateTls12,
    /// PROT C (the control connection still under TLS 1.3).
    Clear,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Private => "PROT P TLS 1.3",
            Mode::PrivateTls12 => "PROT P TLS 1.2",
            Mode::Clear => "PROT C",
        }
    }

    fn protection(self) -> ProtectionLevel {
        match self {
            Mode::Private | Mode::PrivateTls12 => ProtectionLevel::Private,
            Mode::Clear => ProtectionLevel::Clear,
        }
    }
}

/// What the operation should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Succeed with the bytes whole.
    Success,
    /// Fail, saying that the data may be cut short (no close_notify).
    Truncated,
}

fn expect(op: Op, ending: Ending, mode: Mode) -> Expect {
    let tls = mode.protection() == ProtectionLevel::Private;
    if ending == Ending::NoCloseNotify && tls && !op.upload() {
        Expect::Truncated
    } else {
        // Uploads: the client's close_notify ended the data and 226 confirmed it; how the
        // server closes its side afterwards does not matter (as for curl and lftp).
        Expect::Success
    }
}

fn upload_data() -> Vec<u8> {
    (0..200_003u32)
        .map(|i| (i.wrapping_mul(40_503) >> 7) as u8 ^ 0x5a)
        .collect()
}

/// What an operation brought back.
enum Got {
    Bytes(Vec<u8>),
    Names(Vec<String>),
    Sent(u64),
}

fn perform(session: &mut dyn Session, op: Op) -> Result<Got, String> {
    let data = upload_data();
    match op {
        Op::Retrieve => session.retrieve(FILE, 0).map(Got::Bytes),
        Op::RetrieveStreamed => session.retrieve_streamed(FILE).map(Got::Bytes),
        Op::Nlst => session.nlst().map(|n| {
            Got::Names(
                n.into_iter()
                    .map(ftps_proto::Pathname::into_inner)
                    .collect(),
            )
        }),
        Op::List => session.list().map(Got::Names),
        Op::Store => session
            .store("up-store.bin", &data, 0, false)
            .map(Got::Sent),
        Op::StoreStreamed => session
            .store_streamed("up-streamed.bin", &data)
            .map(Got::Sent),
    }
}

/// Whether the result is the right one; why not, if not.
fn judge(
    server: &ScriptedServer,
    op: Op,
    expected: Expect,
    got: Result<Got, String>,
) -> Result<String, String> {
    match (expected, got) {
        (Expect::Truncated, Err(e)) => {
            if e.contains("close_notify") || e.to_lowercase().contains("truncat") {
                Ok(format!("error as expected ({e})"))
            } else {
                Err(format!("failed, but not for the missing close_notify: {e}"))
            }
        }
        (Expect::Truncated, Ok(_)) => {
            Err("succeeded, but the download ended without close_notify (maybe truncated)".into())
        }
        (Expect::Success, Err(e)) => Err(format!("failed: {e}")),
        (Expect::Success, Ok(Got::Bytes(bytes))) => {
            let want = file_content();
            if bytes == want {
                Ok(format!("{} bytes", bytes.len()))
            } else {
                Err(format!(
                    "got {} bytes, not the {} served",
                    bytes.len(),
                    want.len()
                ))
            }
        }
        (Expect::Success, Ok(Got::Names(names))) => {
            if names == LISTING_NAMES {
                Ok(format!("{} names", names.len()))
            } else {
                Err(format!("got names {names:?}, not {LISTING_NAMES:?}"))
            }
        }
        (Expect::Success, Ok(Got::Sent(n))) => {
            let want = upload_data();
            let name = if op == Op::Store {
                "up-store.bin"
            } else {
                "up-streamed.bin"
            };
            match server.upload(name) {
                Some(stored) if stored == want && n == want.len() as u64 => {
                    Ok(format!("{n} bytes"))
                }
                Some(stored) => Err(format!(
                    "sent {n} bytes; the server stored {} bytes, not the {} given",
                    stored.len(),
                    want.len()
                )),
                None => Err(format!(
                    "reported {n} bytes sent, but the server kept no upload"
                )),
            }
        }
    }
}

/// One operation on a fresh server and session, with every check; the outcome in words.
fn case(runtime: Runtime, ending: Ending, mode: Mode, op: Op) -> Result<String, String> {
    let server = ScriptedServer::start(ending).map_err(|e| format!("server: {e}"))?;
    let client = runtime.client();
    let mut session = client
        .connect(server.client_options(mode.protection(), mode == Mode::PrivateTls12))
        .map_err(|e| format!("connect: {e}"))?;
    let started = Instant::now();
    let got = perform(session.as_mut(), op);
    let took = started.elapsed();
    let log = || server.log().join("\n    ");
    let verdict = judge(&server, op, expect(op, ending, mode), got);
    let mut problems = Vec::new();
    if took > BOUND {
        problems.push(format!(
            "took {} ms (bound {} ms)",
            took.as_millis(),
            BOUND.as_millis()
        ));
    }
    let outcome = match verdict {
        Ok(what) => what,
        Err(why) => {
            problems.push(why);
            String::new()
        }
    };
    // The session must go on: the next transfer (ended the common way) and PWD.
    server.set_ending(Ending::CloseThenReply);
    let started = Instant::now();
    match session.retrieve(FILE, 0) {
        Ok(bytes) if bytes == file_content() => {}
        Ok(bytes) => problems.push(format!("then a download got {} bytes", bytes.len())),
        Err(e) => problems.push(format!("then a download failed: {e}")),
    }
    match session.pwd() {
        Ok(p) if p == "/" => {}
        Ok(p) => problems.push(format!("then PWD said {p:?} (replies out of step?)")),
        Err(e) => problems.push(format!("then PWD failed: {e}")),
    }
    if started.elapsed() > BOUND {
        problems.push(format!(
            "the download and PWD after took {} ms",
            started.elapsed().as_millis()
        ));
    }
    if let Err(e) = session.quit() {
        problems.push(format!("QUIT failed: {e}"));
    }
    if problems.is_empty() {
        if std::env::var_os("DATA_ENDINGS_LOG").is_some() {
            println!(
                "{runtime:?} {} {} {}:\n    {}",
                ending.name(),
                mode.name(),
                op.name(),
                log()
            );
        }
        Ok(format!("{outcome}, {} ms", took.as_millis()))
    } else {
        Err(format!(
            "{} (in {} ms)\n    server log:\n    {}",
            problems.join("; "),
            took.as_millis(),
            log()
        ))
    }
}

/// Runs every operation for one runtime, ending and mode, at once; fails with every
/// operation that went wrong.
fn row(runtime: Runtime, ending: Ending, mode: Mode) {
    let (tx, rx) = mpsc::channel();
    for op in OPS {
        let tx = tx.clone();
        std::thread::Builder::new()
            .name(format!("case-{}", op.name()))
            .spawn(move || {
                let _ = tx.send((op, case(runtime, ending, mode, op)));
            })
            .expect("a thread");
    }
    drop(tx);
    let deadline = Instant::now() + CASE_LIMIT;
    let mut results: Vec<(Op, Result<String, String>)> = Vec::new();
    while results.len() < OPS.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(r) => results.push(r),
            Err(_) => break,
        }
    }
    for op in OPS {
        if !results.iter().any(|(o, _)| *o == op) {
            results.push((
                op,
                Err(format!("hung: no result within {} s", CASE_LIMIT.as_secs())),
            ));
        }
    }
    results.sort_by_key(|(op, _)| OPS.iter().position(|o| o == op));
    let mut failures = Vec::new();
    for (op, result) in &results {
        let tag = format!(
            "{runtime:?} {} {} {}",
            ending.name(),
            mode.name(),
            op.name()
        );
        match result {
            Ok(what) => println!("PASS {tag}: {what}"),
            Err(why) => {
                println!("FAIL {tag}: {why}");
                failures.push(format!("{tag}: {why}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        OPS.len(),
        failures.join("\n")
    );
}

macro_rules! rows {
    ($($name:ident: $runtime:ident, $ending:ident, $mode:ident;)*) => {
        $(
            #[test]
            fn $name() {
                row(Runtime::$runtime, Ending::$ending, Mode::$mode);
            }
        )*
    };
}

rows! {
    tokio_close_then_reply_prot_p: Tokio, CloseThenReply, Private;
    tokio_wait_for_client_close_prot_p: Tokio, WaitForClientClose, Private;
    tokio_reply_before_close_prot_p: Tokio, ReplyBeforeClose, Private;
    tokio_no_close_notify_prot_p: Tokio, NoCloseNotify, Private;
    tokio_close_then_reply_prot_p_tls12: Tokio, CloseThenReply, PrivateTls12;
    tokio_wait_for_client_close_prot_p_tls12: Tokio, WaitForClientClose, PrivateTls12;
    tokio_reply_before_close_prot_p_tls12: Tokio, ReplyBeforeClose, PrivateTls12;
    tokio_no_close_notify_prot_p_tls12: Tokio, NoCloseNotify, PrivateTls12;
    tokio_close_then_reply_prot_c: Tokio, CloseThenReply, Clear;
    tokio_wait_for_client_close_prot_c: Tokio, WaitForClientClose, Clear;
    tokio_reply_before_close_prot_c: Tokio, ReplyBeforeClose, Clear;

    blocking_close_then_reply_prot_p: Blocking, CloseThenReply, Private;
    blocking_wait_for_client_close_prot_p: Blocking, WaitForClientClose, Private;
    blocking_reply_before_close_prot_p: Blocking, ReplyBeforeClose, Private;
    blocking_no_close_notify_prot_p: Blocking, NoCloseNotify, Private;
    blocking_close_then_reply_prot_p_tls12: Blocking, CloseThenReply, PrivateTls12;
    blocking_wait_for_client_close_prot_p_tls12: Blocking, WaitForClientClose, PrivateTls12;
    blocking_reply_before_close_prot_p_tls12: Blocking, ReplyBeforeClose, PrivateTls12;
    blocking_no_close_notify_prot_p_tls12: Blocking, NoCloseNotify, PrivateTls12;
    blocking_close_then_reply_prot_c: Blocking, CloseThenReply, Clear;
    blocking_wait_for_client_close_prot_c: Blocking, WaitForClientClose, Clear;
    blocking_reply_before_close_prot_c: Blocking, ReplyBeforeClose, Clear;

    smol_close_then_reply_prot_p: Smol, CloseThenReply, Private;
    smol_wait_for_client_close_prot_p: Smol, WaitForClientClose, Private;
    smol_reply_before_close_prot_p: Smol, ReplyBeforeClose, Private;
    smol_no_close_notify_prot_p: Smol, NoCloseNotify, Private;
    smol_close_then_reply_prot_p_tls12: Smol, CloseThenReply, PrivateTls12;
    smol_wait_for_client_close_prot_p_tls12: Smol, WaitForClientClose, PrivateTls12;
    smol_reply_before_close_prot_p_tls12: Smol, ReplyBeforeClose, PrivateTls12;
    smol_no_close_notify_prot_p_tls12: Smol, NoCloseNotify, PrivateTls12;
    smol_close_then_reply_prot_c: Smol, CloseThenReply, Clear;
    smol_wait_for_client_close_prot_c: Smol, WaitForClientClose, Clear;
    smol_reply_before_close_prot_c: Smol, ReplyBeforeClose, Clear;
}
