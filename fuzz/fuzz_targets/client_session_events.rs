//! Random sequences of server replies (from a vocabulary of real ones, and raw bytes), IO
//! events and operations into a `ClientSession` in every connection mode. Invariants: no
//! panic; no transfer is reported complete unless a data connection ended cleanly and
//! the final reply was positive; the control bytes the client sends are command lines.
#![no_main]

use arbitrary::Arbitrary;
use ftps_proto::boundary::{DataEnd, DataId, TlsInfo, TlsVersion};
use ftps_proto::client::{
    Action, ClientConfig, ConnectionMode, Event, IoEvent, ListFormat, Operation, Output,
};
use ftps_proto::{ClientSession, Password, Pathname, ProtectionLevel, Username};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;
use std::time::{Duration, Instant};

const REPLIES: &[&str] = &[
    "220 hi", "234 go", "331 password", "230 in", "332 account", "530 no",
    "211-Features:\r\n EPSV\r\n MLST size*;modify*;type*;\r\n UTF8\r\n REST STREAM\r\n211 End",
    "200 ok", "229 Entering Extended Passive Mode (|||5000|)",
    "227 Entering Passive Mode (127,0,0,1,19,136)", "227 nonsense", "150 here", "125 go",
    "226 done", "250 done", "425 no data", "426 aborted", "451 error", "550 no",
    "552 full", "421 bye", "350 ok", "213 5", "213 20200102030405", "257 \"/d\" created",
    "500 unknown", "502 no", "504 no", "522 TLS", "534 policy", "225 no transfer",
    "250-Listing\r\n type=file;size=5; f\r\n250 End", "999 strange", "2xx bad",
];

#[derive(Arbitrary, Debug)]
enum Op {
    List(u8),
    Retrieve(u16),
    Store(u16, bool),
    StoreUnique,
    Size,
    Modified,
    Mlst,
    Pwd,
    Cwd,
    Rename,
    Noop,
    Stat,
    Ccc,
    Quit,
}

#[derive(Arbitrary, Debug)]
enum Input {
    Reply(u8),
    Raw(Vec<u8>),
    Submit(Op),
    TlsUp,
    TlsFailed,
    DataConnected { which: u8 },
    DataEnded { which: u8, bytes: u16, clean: bool },
    DataFailed { which: u8 },
    DataOverLimit { which: u8, bytes: u16 },
    Listening { which: u8 },
    Advance(u16),
    AcceptPlain,
    Abort,
    Closed,
}

#[derive(Arbitrary, Debug)]
struct Case {
    mode: u8,
    clear: bool,
    active: bool,
    inputs: Vec<Input>,
}

/// What the control TLS handshake settled, as an adapter reports it.
fn tls() -> TlsInfo {
    TlsInfo::new(TlsVersion::Tls13, false)
}

fuzz_target!(|case: Case| {
    let mut config = ClientConfig::new(
        Username::new("alice").expect("valid"),
        Password::new("secret").expect("valid"),
    );
    config.mode = match case.mode % 4 {
        0 => ConnectionMode::ExplicitRequired,
        1 => ConnectionMode::ExplicitIfAvailable,
        2 => ConnectionMode::Implicit,
        _ => ConnectionMode::Plain,
    };
    config.protection = if case.clear { ProtectionLevel::Clear } else { ProtectionLevel::Private };
    config.passive = !case.active;
    let mut now = Instant::now();
    let mut c = ClientSession::new(Arc::new(config), "127.0.0.1:21".parse().expect("addr"), now);
    let mut data: Vec<DataId> = Vec::new();
    let mut clean_ends = 0u32;
    let mut completed = 0u32;
    let p = |s: &str| Pathname::new(s).expect("valid");
    for input in case.inputs.into_iter().take(200) {
        match input {
            Input::Reply(i) => {
                let text = format!("{}\r\n", REPLIES[usize::from(i) % REPLIES.len()]);
                c.handle_control_input(text.as_bytes(), now);
            }
            Input::Raw(bytes) => {
                c.handle_control_input(&bytes, now);
            }
            Input::Submit(op) => {
                let op = match op {
                    Op::List(f) => Operation::List {
                        path: None,
                        format: match f % 3 {
                            0 => ListFormat::List,
                            1 => ListFormat::Nlst,
                            _ => ListFormat::Mlsd,
                        },
                    },
                    Op::Retrieve(o) => Operation::Retrieve {
                        path: p("f"),
                        offset: u64::from(o),
                        ascii: o % 2 == 1,
                    },
                    Op::Store(o, append) => Operation::Store {
                        path: p("f"),
                        offset: u64::from(o),
                        append,
                        ascii: false,
                    },
                    Op::StoreUnique => Operation::StoreUnique,
                    Op::Size => Operation::Size(p("f")),
                    Op::Modified => Operation::Modified(p("f")),
                    Op::Mlst => Operation::Mlst(None),
                    Op::Pwd => Operation::Pwd,
                    Op::Cwd => Operation::Cwd(p("d")),
                    Op::Rename => Operation::Rename { from: p("a"), to: p("b") },
                    Op::Noop => Operation::Noop,
                    Op::Stat => Operation::Stat(None),
                    Op::Ccc => Operation::ClearControl,
                    Op::Quit => Operation::Quit,
                };
                c.submit(op, now);
            }
            Input::TlsUp => c.handle_io(IoEvent::ControlTlsEstablished(tls()), now),
            Input::TlsFailed => c.handle_io(IoEvent::ControlTlsFailed("x".into()), now),
            Input::DataConnected { which } => {
                if !data.is_empty() {
                    let id = data[usize::from(which) % data.len()];
                    c.handle_io(IoEvent::DataConnected { id }, now);
                }
            }
            Input::DataEnded { which, bytes, clean } => {
                if !data.is_empty() {
                    let id = data[usize::from(which) % data.len()];
                    clean_ends += u32::from(clean);
                    let end = DataEnd::Complete { close_notify: clean };
                    let event = IoEvent::DataEnded { id, bytes: u64::from(bytes), end };
                    c.handle_io(event, now);
                }
            }
            Input::DataFailed { which } => {
                if !data.is_empty() {
                    let id = data[usize::from(which) % data.len()];
                    c.handle_io(IoEvent::DataFailed { id, reason: "x".into() }, now);
                }
            }
            Input::DataOverLimit { which, bytes } => {
                if !data.is_empty() {
                    let id = data[usize::from(which) % data.len()];
                    c.handle_io(IoEvent::DataOverLimit { id, bytes: u64::from(bytes) }, now);
                }
            }
            Input::Listening { which } => {
                if !data.is_empty() {
                    let id = data[usize::from(which) % data.len()];
                    let local = "127.0.0.1:40000".parse().expect("addr");
                    c.handle_io(IoEvent::DataListening { id, local }, now);
                }
            }
            Input::Advance(ms) => {
                now += Duration::from_millis(u64::from(ms) * 100);
                c.handle_timeout(now);
            }
            Input::AcceptPlain => c.accept_plaintext(now),
            Input::Abort => {
                c.abort(now);
            }
            Input::Closed => c.handle_io(IoEvent::ControlClosed, now),
        }
        while let Some(action) = c.poll_action() {
            match action {
                Action::Send(bytes) => {
                    assert!(bytes.ends_with(b"\r\n"), "a command line ends in CRLF");
                    let body = &bytes[..bytes.len() - 2];
                    assert!(!body.contains(&b'\n') && !body.contains(&b'\r'), "one line");
                }
                Action::ConnectData { id, .. }
                | Action::ListenData { id, .. }
                | Action::StartTransfer { id, .. } => {
                    if !data.contains(&id) {
                        data.push(id);
                    }
                }
                _ => {}
            }
        }
        while let Some(event) = c.poll_event() {
            if let Event::Done { result: Ok(Output::Transferred { reply, .. }), .. } = event {
                completed += 1;
                assert!(reply.code().is_positive(), "a completed transfer has a positive reply");
                assert!(completed <= clean_ends, "a completed transfer had a clean data end");
            }
        }
    }
});
