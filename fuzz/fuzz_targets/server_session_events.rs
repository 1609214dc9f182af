//! Random sequences of inputs and IO events into a `ServerSession` (explicit or implicit,
//! any policy): command lines from the FTP vocabulary and raw bytes, TLS handshakes that
//! succeed (resumed or not) or fail, data-connection events for the connections the
//! session opened, storage and login answers, time passing. Invariants: no panic, every
//! byte the session sends decodes as valid replies, each reply line ends in CRLF, and the
//! data connections it asks for stay few.
#![no_main]

use arbitrary::Arbitrary;
use ftps_proto::boundary::{DataEnd, DataId};
use ftps_proto::listing::EntryKind;
use ftps_proto::server::{
    Action, ControlTlsPolicy, DataTlsPolicy, Event, IoEvent, LoginAnswer,
    Metadata, ServerConfig, StorageError, StorageReply, StorageRequest, TlsInfo, TlsMode,
    TlsVersion,
};
use ftps_proto::{ReplyDecoder, ServerSession, Timestamp};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LINES: &[&str] = &[
    "USER alice", "PASS secret", "PASS wrong", "USER anonymous", "AUTH TLS", "AUTH SSL",
    "PBSZ 0", "PROT P", "PROT C", "PROT S", "PASV", "EPSV", "EPSV ALL",
    "PORT 127,0,0,1,200,10", "PORT 10,0,0,1,0,22", "EPRT |1|127.0.0.1|5000|",
    "EPRT |2|::1|5000|", "RETR f", "STOR f", "APPE f", "STOU", "LIST", "NLST", "MLSD",
    "MLST f", "REST 5", "REST -1", "ABOR", "CCC", "REIN", "QUIT", "TYPE A", "TYPE I",
    "FEAT", "STAT", "STAT f", "SIZE f", "MDTM f", "DELE f", "RNFR a", "RNTO b", "MKD d",
    "RMD d", "CWD d", "CDUP", "PWD", "NOOP", "HOST localhost", "OPTS UTF8 ON", "SITE x",
    "SYST", "HELP", "ALLO 5", "MODE S", "STRU F", "ACCT x", "GET / HTTP/1.1",
];

#[derive(Arbitrary, Debug)]
enum Input {
    Line(u8),
    Raw(Vec<u8>),
    TlsUp { resumed: bool, tls12: bool },
    TlsFailed,
    Advance(u16),
    DataConnected { which: u8, tls: bool, resumed: bool },
    DataEnded { which: u8, bytes: u16, clean: bool, notify: bool },
    DataFailed { which: u8 },
    DataProgress { which: u8 },
    UploadFinished { which: u8, ok: bool },
    ListenFailed { which: u8 },
    Closed,
}

#[derive(Arbitrary, Debug)]
struct Case {
    implicit: bool,
    control: u8,
    data: u8,
    active: bool,
    storage_fails: bool,
    inputs: Vec<Input>,
}

struct Harness {
    session: ServerSession,
    decoder: ReplyDecoder,
    now: Instant,
    data: Vec<DataId>,
    handshaking: bool,
    storage_fails: bool,
}

impl Harness {
    fn pump(&mut self) {
        for _ in 0..1000 {
            let mut progressed = false;
            while let Some(action) = self.session.poll_action() {
                progressed = true;
                match action {
                    Action::Send(bytes) => {
                        assert!(bytes.ends_with(b"\r\n"), "a reply ends in CRLF");
                        let mut input = &bytes[..];
                        while !input.is_empty() {
                            let (used, reply) = self.decoder.decode(input);
                            input = &input[used..];
                            if let Some(r) = reply {
                                r.expect("the server's replies decode");
                            }
                            if used == 0 {
                                break;
                            }
                        }
                    }
                    Action::StartControlTls => self.handshaking = true,
                    Action::Listen { id, .. } | Action::OpenData { id, .. } => {
                        if !self.data.contains(&id) {
                            self.data.push(id);
                        }
                        assert!(self.data.len() < 1000, "data connections stay few");
                    }
                    _ => {}
                }
            }
            while let Some(event) = self.session.poll_event() {
                progressed = true;
                self.answer(event);
            }
            if !progressed {
                return;
            }
        }
        panic!("the session does not settle");
    }

    fn answer(&mut self, event: Event) {
        let now = self.now;
        match event {
            Event::Login(req) => {
                let answer = if req.password.expose() == "secret" || req.user == "anonymous" {
                    LoginAnswer::accepted()
                } else {
                    LoginAnswer::Rejected
                };
                self.session.answer_login(req.token, answer, now);
            }
            Event::Storage { token, request } => {
                let reply = if self.storage_fails {
                    Err(StorageError::NotFound)
                } else {
                    Ok(match request {
                        StorageRequest::Stat(p) => StorageReply::Metadata(meta(p.file_name())),
                        StorageRequest::List(_) => StorageReply::Entries {
                            entries: vec![meta(Some("f")), meta(Some("d"))],
                            now: Timestamp::from_unix(1_700_000_000).expect("valid"),
                        },
                        StorageRequest::OpenRead { path, .. } => {
                            StorageReply::Opened { path, size: 5 }
                        }
                        StorageRequest::OpenListing { path, format, .. } => {
                            // The adapter's side of a listing: each entry through the format.
                            let now = Timestamp::from_unix(1_700_000_000).expect("valid");
                            for m in [meta(Some("f")), meta(Some("d"))] {
                                let _ = format.line(&m, &now);
                            }
                            StorageReply::Opened { path, size: 0 }
                        }
                        StorageRequest::OpenWrite { path, .. } => {
                            StorageReply::Opened { path, size: 0 }
                        }
                        _ => StorageReply::Done,
                    })
                };
                self.session.answer_storage(token, reply, now);
            }
            Event::Site { token, .. } => {
                let reply = ftps_proto::Reply::new(ftps_proto::ReplyCode::COMMAND_OK, "ok");
                self.session.answer_site(token, reply, now);
            }
            _ => {}
        }
    }

    fn pick(&self, which: u8) -> Option<DataId> {
        (!self.data.is_empty()).then(|| self.data[usize::from(which) % self.data.len()])
    }
}

fn meta(name: Option<&str>) -> Metadata {
    Metadata {
        name: name.unwrap_or("/").to_owned(),
        kind: EntryKind::File,
        size: 5,
        modified: Timestamp::from_unix(1_600_000_000),
        mode: Some(0o644),
        writable: true,
        unique: None,
    }
}

fn tls(resumed: bool, tls12: bool) -> TlsInfo {
    TlsInfo::new(if tls12 { TlsVersion::Tls12 } else { TlsVersion::Tls13 }, resumed)
}

fuzz_target!(|case: Case| {
    let config = ServerConfig::default()
        .with_control_tls(match case.control % 3 {
            0 => ControlTlsPolicy::Require,
            1 => ControlTlsPolicy::RequireForCredentials,
            _ => ControlTlsPolicy::Allow,
        })
        .with_data_tls(match case.data % 3 {
            0 => DataTlsPolicy::Require,
            1 => DataTlsPolicy::Allow,
            _ => DataTlsPolicy::Deny,
        })
        .with_active_mode(case.active)
        .with_allow_ccc(case.active)
        .with_tls_available(true);
    let mode = if case.implicit { TlsMode::Implicit } else { TlsMode::Explicit };
    let now = Instant::now();
    let session = ServerSession::new(
        Arc::new(config),
        mode,
        "127.0.0.1:50000".parse().expect("addr"),
        "127.0.0.1:21".parse().expect("addr"),
        now,
    );
    let mut h = Harness {
        session,
        decoder: ReplyDecoder::default(),
        now,
        data: Vec::new(),
        handshaking: false,
        storage_fails: case.storage_fails,
    };
    h.pump();
    for input in case.inputs.into_iter().take(200) {
        let now = h.now;
        match input {
            Input::Line(i) => {
                let line = format!("{}\r\n", LINES[usize::from(i) % LINES.len()]);
                h.session.handle_control_input(line.as_bytes(), now);
            }
            Input::Raw(bytes) => {
                h.session.handle_control_input(&bytes, now);
            }
            Input::TlsUp { resumed, tls12 } if h.handshaking => {
                h.handshaking = false;
                let event = IoEvent::ControlTlsEstablished(tls(resumed, tls12));
                h.session.handle_io(event, now);
            }
            Input::TlsUp { .. } => {}
            Input::TlsFailed => {
                h.handshaking = false;
                h.session.handle_io(IoEvent::ControlTlsFailed("x".into()), now);
            }
            Input::Advance(ms) => {
                h.now += Duration::from_millis(u64::from(ms) * 100);
                h.session.handle_timeout(h.now);
            }
            Input::DataConnected { which, tls: t, resumed } => {
                if let Some(id) = h.pick(which) {
                    let event = IoEvent::DataConnected {
                        id,
                        peer: "127.0.0.1:50001".parse().expect("addr"),
                        tls: t.then(|| tls(resumed, false)),
                    };
                    h.session.handle_io(event, now);
                }
            }
            Input::DataEnded { which, bytes, clean, notify } => {
                if let Some(id) = h.pick(which) {
                    let end = if clean {
                        DataEnd::Complete { close_notify: notify }
                    } else {
                        DataEnd::Failed("reset".into())
                    };
                    let event = IoEvent::DataEnded { id, bytes: u64::from(bytes), end };
                    h.session.handle_io(event, now);
                }
            }
            Input::DataFailed { which } => {
                if let Some(id) = h.pick(which) {
                    h.session.handle_io(IoEvent::DataFailed { id, reason: "x".into() }, now);
                }
            }
            Input::DataProgress { which } => {
                if let Some(id) = h.pick(which) {
                    h.session.handle_io(IoEvent::DataProgress { id, bytes: 1 }, now);
                }
            }
            Input::UploadFinished { which, ok } => {
                if let Some(id) = h.pick(which) {
                    let result = if ok { Ok(()) } else { Err(StorageError::InsufficientStorage) };
                    h.session.handle_io(IoEvent::UploadFinished { id, result }, now);
                }
            }
            Input::ListenFailed { which } => {
                if let Some(id) = h.pick(which) {
                    h.session.handle_io(IoEvent::DataListenFailed { id }, now);
                }
            }
            Input::Closed => h.session.handle_io(IoEvent::ControlClosed, now),
        }
        h.pump();
    }
});
