//! Core-level tests of the client's own decisions, in memory: scripted replies in,
//! actions and events out, time passed in.

use super::*;
use crate::boundary::{TlsInfo, TlsVersion};
use crate::text::{Password, Username};

const PEER: &str = "127.0.0.1:21";

/// What the control TLS handshake settled, as an adapter reports it.
fn tls_info() -> TlsInfo {
    TlsInfo::new(TlsVersion::Tls13, false)
}

/// A session and the script's clock.
struct Script {
    session: ClientSession,
    now: Instant,
    actions: Vec<Action>,
    events: Vec<Event>,
}

impl Script {
    fn new(config: ClientConfig) -> Self {
        #[allow(clippy::disallowed_methods)] // The script's clock starts at a real instant.
        let now = Instant::now();
        let session = ClientSession::new(Arc::new(config), PEER.parse().unwrap(), now);
        let mut s = Script {
            session,
            now,
            actions: Vec::new(),
            events: Vec::new(),
        };
        s.drain();
        s
    }

    fn config() -> ClientConfig {
        ClientConfig::new(
            Username::new("alice").unwrap(),
            Password::new("secret").unwrap(),
        )
    }

    /// Logged in with explicit TLS, PBSZ/PROT done.
    fn ready(config: ClientConfig) -> Self {
        let mut s = Script::new(config);
        s.reply("220 hi");
        s.reply("234 go");
        s.io(IoEvent::ControlTlsEstablished(tls_info()));
        s.reply("331 password");
        s.reply("230 in");
        s.reply("211 no features");
        s.reply("200 PBSZ=0");
        s.reply("200 PROT P");
        assert!(
            s.events.iter().any(|e| matches!(e, Event::Ready { .. })),
            "{:?}",
            s.events
        );
        s.actions.clear();
        s.events.clear();
        s
    }

    fn drain(&mut self) {
        while let Some(a) = self.session.poll_action() {
            self.actions.push(a);
        }
        while let Some(e) = self.session.poll_event() {
            self.events.push(e);
        }
    }

    fn reply(&mut self, line: &str) {
        let bytes = format!("{line}\r\n");
        let used = self
            .session
            .handle_control_input(bytes.as_bytes(), self.now);
        assert_eq!(used, bytes.len());
        self.drain();
    }

    fn io(&mut self, event: IoEvent) {
        self.session.handle_io(event, self.now);
        self.drain();
    }

    fn submit(&mut self, op: Operation) -> OpId {
        let id = self.session.submit(op, self.now);
        self.drain();
        id
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.session.handle_timeout(self.now);
        self.drain();
    }

    /// The commands sent so far, one per line, without CRLF.
    fn sent(&self) -> Vec<String> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(b) => Some(String::from_utf8_lossy(b).trim_end().to_string()),
                _ => None,
            })
            .collect()
    }

    fn closed(&self) -> Option<&Option<ClientError>> {
        self.events.iter().find_map(|e| match e {
            Event::Closed { error } => Some(error),
            _ => None,
        })
    }
}

#[test]
fn untaken_control_input_at_the_cap_fails_the_session() {
    let config = ClientConfig {
        max_control_input: 64,
        ..Script::config()
    };
    let mut s = Script::ready(config);
    assert_eq!(s.session.max_control_input(), 64);
    s.submit(Operation::ClearControl);
    s.reply("200 CCC");
    assert!(s.actions.contains(&Action::StopControlTls));
    // The start of a TLS record of 16 KiB: the session waits for the rest of it.
    let mut record = vec![0x17, 0x03, 0x03, 0x40, 0x00];
    record.extend_from_slice(&[0u8; 40]);
    assert_eq!(s.session.handle_control_input(&record, s.now), 0);
    assert!(!s.session.is_closed());
    // The adapter kept reading: what waits reaches the bound, which nothing will take.
    record.extend_from_slice(&[0u8; 19]);
    assert_eq!(record.len(), 64);
    assert_eq!(s.session.handle_control_input(&record, s.now), 64);
    s.drain();
    assert!(s.session.is_closed());
    assert_eq!(
        s.closed(),
        Some(&Some(ClientError::BadReply(ReplyError::TooLarge)))
    );
}

#[test]
fn input_taken_whole_is_never_over_the_cap() {
    let config = ClientConfig {
        max_control_input: 0,
        ..Script::config()
    };
    let mut s = Script::ready(config);
    s.submit(Operation::Noop);
    s.reply("200 ok");
    assert!(!s.session.is_closed());
}

#[test]
fn the_input_cap_defaults_to_the_servers_bound() {
    let s = Script::new(Script::config());
    assert_eq!(s.session.max_control_input(), DEFAULT_MAX_CONTROL_INPUT);
    assert_eq!(DEFAULT_MAX_CONTROL_INPUT, 64 * 1024);
}

/// Runs a passive download up to its start: EPSV, the data connection, RETR accepted.
fn start_download(s: &mut Script) -> (OpId, DataId) {
    let op = s.submit(Operation::Retrieve {
        path: Pathname::new("f").unwrap(),
        offset: 0,
        ascii: false,
    });
    s.reply("200 TYPE I");
    s.reply("229 Entering Extended Passive Mode (|||5000|)");
    let id = s
        .actions
        .iter()
        .find_map(|a| match a {
            Action::ConnectData { id, .. } => Some(*id),
            _ => None,
        })
        .expect("a data connection");
    s.io(IoEvent::DataConnected { id });
    s.reply("150 here it comes");
    (op, id)
}

#[test]
fn the_session_bounds_the_end_of_a_transfer() {
    let config = ClientConfig {
        data_close_timeout: Duration::from_millis(300),
        upload_end_wait: Duration::from_secs(4),
        upload_half_close_wait: Duration::from_millis(700),
        ..Script::config()
    };
    let mut s = Script::ready(config);
    let (_, id) = start_download(&mut s);
    let start = s.actions.iter().find_map(|a| match a {
        Action::StartTransfer { id: i, ending, .. } if *i == id => Some(*ending),
        _ => None,
    });
    assert_eq!(
        start,
        Some(DataEnding {
            close: Duration::from_millis(300),
            upload_drain: Duration::from_secs(4),
            half_close: Duration::from_millis(700),
        })
    );
    let defaults = Script::config();
    assert_eq!(defaults.data_close_timeout, Duration::from_secs(2));
    assert_eq!(defaults.upload_end_wait, Duration::from_secs(10));
    assert_eq!(defaults.upload_half_close_wait, Duration::from_secs(1));
}

fn stall_config() -> ClientConfig {
    ClientConfig {
        data_timeout: Duration::from_secs(5),
        ..Script::config()
    }
}

fn done(s: &Script, op: OpId) -> Option<&Result<Output, ClientError>> {
    s.events.iter().find_map(|e| match e {
        Event::Done { op: o, result } if *o == op => Some(result),
        _ => None,
    })
}

#[test]
fn the_stall_timer_fires_when_no_data_moves() {
    let mut s = Script::ready(stall_config());
    let (op, id) = start_download(&mut s);
    assert!(s.session.is_moving(id));
    // Moving: the stall timer is the one running.
    assert_eq!(
        s.session.poll_timeout(),
        Some(s.now + Duration::from_secs(5))
    );
    s.io(IoEvent::DataProgress { id, bytes: 1000 });
    s.advance(Duration::from_millis(4999));
    assert!(s.session.is_moving(id), "not yet");
    assert!(!s.actions.contains(&Action::CloseData { id }));
    s.advance(Duration::from_millis(1));
    // Stalled: the data connection is dropped and the final reply awaited; the session
    // goes on.
    assert!(!s.session.is_moving(id));
    assert!(s.actions.contains(&Action::CloseData { id }));
    assert!(!s.session.is_closed());
    assert_eq!(done(&s, op), None);
    s.reply("426 connection closed; transfer aborted");
    assert!(
        matches!(done(&s, op), Some(Err(ClientError::Refused(r))) if r.code().get() == 426),
        "{:?}",
        s.events
    );
    assert!(!s.session.is_closed());
    assert_eq!(s.session.poll_timeout(), None, "no timer left");
}

#[test]
fn the_stall_message_says_how_far_the_data_came() {
    let mut s = Script::ready(stall_config());
    let (op, id) = start_download(&mut s);
    s.io(IoEvent::DataProgress { id, bytes: 4096 });
    s.advance(Duration::from_secs(5));
    assert!(!s.session.is_moving(id));
    // The server answers 226 although the data never came whole: the failure stands.
    s.reply("226 done");
    let expected = crate::TransportError::new(
        crate::TransportErrorKind::TimedOut,
        "no data moved for 5 s (after 4096 bytes)",
    );
    assert_eq!(done(&s, op), Some(&Err(ClientError::Data(expected))));
}

#[test]
fn progress_keeps_the_stall_timer_from_firing() {
    let mut s = Script::ready(stall_config());
    let (op, id) = start_download(&mut s);
    for i in 1..=20 {
        s.advance(Duration::from_secs(4));
        s.io(IoEvent::DataProgress { id, bytes: i * 100 });
        assert!(s.session.is_moving(id), "after {} s", i * 4);
    }
    assert!(!s.actions.contains(&Action::CloseData { id }));
    // The end of the data stops the stall timer; the final reply completes the transfer.
    s.io(IoEvent::DataEnded {
        id,
        bytes: 2000,
        end: DataEnd::Complete { close_notify: true },
    });
    s.advance(Duration::from_secs(6));
    assert!(!s.session.is_closed());
    s.reply("226 done");
    assert!(
        matches!(
            done(&s, op),
            Some(Ok(Output::Transferred { bytes: 2000, .. }))
        ),
        "{:?}",
        s.events
    );
}

#[test]
fn the_stall_timer_runs_only_while_data_moves() {
    let mut s = Script::ready(stall_config());
    let op = s.submit(Operation::Retrieve {
        path: Pathname::new("f").unwrap(),
        offset: 0,
        ascii: false,
    });
    // Before the transfer starts only the reply timer runs (30 s by default): a long
    // wait for a reply is not a stall.
    s.advance(Duration::from_secs(10));
    assert!(!s.session.is_closed());
    s.reply("200 TYPE I");
    s.reply("229 Entering Extended Passive Mode (|||5000|)");
    assert_eq!(done(&s, op), None);
    assert_eq!(
        s.session.poll_timeout(),
        Some(s.now + Script::config().reply_timeout)
    );
}

fn retrieve() -> Operation {
    Operation::Retrieve {
        path: Pathname::new("f").unwrap(),
        offset: 0,
        ascii: false,
    }
}

#[test]
fn used_up_tickets_renew_the_control_connection_before_a_data_connection() {
    let mut s = Script::ready(Script::config());
    s.io(IoEvent::Resumption { exhausted: true });
    let op = s.submit(retrieve());
    s.reply("257 \"/in/there\" is the current directory");
    s.reply("221 bye");
    assert_eq!(s.actions.last(), Some(&Action::Reconnect));
    assert!(!s.session.is_closed());
    // The adapter opened a fresh connection: the setup starts over on it.
    s.io(IoEvent::ControlReconnected {
        peer: "127.0.0.2:21".parse().unwrap(),
    });
    s.reply("220 hi again");
    s.reply("234 go");
    s.io(IoEvent::ControlTlsEstablished(tls_info()));
    s.reply("331 password");
    s.reply("230 in");
    s.reply("211 no features");
    s.reply("200 PBSZ=0");
    s.reply("200 PROT P");
    s.reply("250 back");
    assert_eq!(s.session.renewals(), 1);
    s.reply("200 TYPE I");
    s.reply("229 Entering Extended Passive Mode (|||5000|)");
    assert_eq!(
        s.sent(),
        [
            "PWD",
            "QUIT",
            "AUTH TLS",
            "USER alice",
            "PASS secret",
            "FEAT",
            "PBSZ 0",
            "PROT P",
            "CWD /in/there",
            "TYPE I",
            "EPSV",
            "RETR f",
        ]
    );
    // The data connection goes to the fresh connection's peer.
    assert!(s.actions.iter().any(|a| matches!(
        a,
        Action::ConnectData { addr, tls: true, .. } if addr.to_string() == "127.0.0.2:5000"
    )));
    // The renewal is the session's own business: no second Ready, the operation goes on.
    assert!(!s.events.iter().any(|e| matches!(e, Event::Ready { .. })));
    assert_eq!(done(&s, op), None);
}

#[test]
fn an_old_connection_that_does_not_answer_quit_is_given_up() {
    let mut s = Script::ready(Script::config());
    s.io(IoEvent::Resumption { exhausted: true });
    s.submit(retrieve());
    s.reply("257 \"/\"");
    assert_eq!(s.sent().last().map(String::as_str), Some("QUIT"));
    s.advance(renewal::QUIT_WAIT);
    assert_eq!(s.actions.last(), Some(&Action::Reconnect));
    assert!(!s.session.is_closed());
}

#[test]
fn no_renewal_while_tickets_are_left_or_without_protected_data() {
    // Tickets left.
    let mut s = Script::ready(Script::config());
    s.io(IoEvent::Resumption { exhausted: false });
    s.submit(retrieve());
    assert_eq!(s.sent(), ["TYPE I"]);
    // No data connection.
    let mut s = Script::ready(Script::config());
    s.io(IoEvent::Resumption { exhausted: true });
    s.submit(Operation::Noop);
    assert_eq!(s.sent(), ["NOOP"]);
    // PROT C: data connections do not resume anything.
    let config = ClientConfig {
        protection: ProtectionLevel::Clear,
        ..Script::config()
    };
    let mut s = Script::new(config);
    for line in ["220 hi", "234 go"] {
        s.reply(line);
    }
    s.io(IoEvent::ControlTlsEstablished(tls_info()));
    for line in ["331 p", "230 in", "211 none", "200 PBSZ=0", "200 PROT C"] {
        s.reply(line);
    }
    s.actions.clear();
    s.io(IoEvent::Resumption { exhausted: true });
    s.submit(retrieve());
    assert_eq!(s.sent(), ["TYPE I"]);
}

#[test]
fn a_failed_pwd_fails_the_operation_and_the_session_goes_on() {
    let mut s = Script::ready(Script::config());
    s.io(IoEvent::Resumption { exhausted: true });
    let op = s.submit(retrieve());
    s.reply("550 no");
    assert!(matches!(done(&s, op), Some(Err(ClientError::Refused(_)))));
    assert!(!s.session.is_closed());
    let op = s.submit(Operation::Noop);
    s.reply("200 ok");
    assert!(matches!(done(&s, op), Some(Ok(_))));
}

/// Issue 14's third review, F2: with explicit-if-available, a renewal's fresh connection
/// that refuses TLS used to stop at an offer to go on in clear text that nobody answers
/// mid-operation (the client hung). A session that had TLS never goes on without it:
/// the operation fails with `TlsUnavailable`, nothing is sent in clear.
#[test]
fn a_renewal_to_a_server_that_refuses_tls_fails_and_never_downgrades() {
    let config = Script::config().with_mode(ConnectionMode::ExplicitIfAvailable);
    let mut s = Script::ready(config);
    s.io(IoEvent::Resumption { exhausted: true });
    let op = s.submit(retrieve());
    s.reply("257 \"/\"");
    s.reply("221 bye");
    s.io(IoEvent::ControlReconnected {
        peer: "127.0.0.2:21".parse().unwrap(),
    });
    s.reply("220 hi again");
    s.reply("504 no TLS here");
    s.reply("504 no SSL either");
    assert!(
        matches!(done(&s, op), Some(Err(ClientError::TlsUnavailable))),
        "{:?}",
        s.events
    );
    assert!(!s.events.iter().any(|e| matches!(e, Event::PlaintextOnly)));
    assert!(s.session.is_closed());
    assert_eq!(s.sent(), ["PWD", "QUIT", "AUTH TLS", "AUTH SSL"]);
}

/// Logged in against a server whose FEAT lists `features` (one line each).
fn ready_with_features(features: &[&str]) -> Script {
    let mut s = Script::new(Script::config());
    s.reply("220 hi");
    s.reply("234 go");
    s.io(IoEvent::ControlTlsEstablished(tls_info()));
    s.reply("331 password");
    s.reply("230 in");
    s.reply("211-Features:");
    for f in features {
        s.reply(&format!(" {f}"));
    }
    s.reply("211 End");
    s.reply("200 PBSZ=0");
    s.reply("200 PROT P");
    s.actions.clear();
    s.events.clear();
    s
}

fn last_done(s: &Script) -> Option<&Result<Output, ClientError>> {
    s.events.iter().find_map(|e| match e {
        Event::Done { result, .. } => Some(result),
        _ => None,
    })
}

fn hash_op(algorithm: HashAlgorithm, range: Option<(u64, u64)>) -> Operation {
    Operation::Hash {
        path: Pathname::new("f.bin").unwrap(),
        algorithm,
        range,
    }
}

use crate::hash::HashAlgorithm;

// draft-bryan-ftpext-hash-02: no HASH in FEAT (or not the algorithm, or no RANG for a
// range) is a typed error, and nothing is sent.
#[test]
fn hash_needs_the_servers_offer() {
    let mut s = Script::ready(Script::config());
    s.submit(hash_op(HashAlgorithm::Sha256, None));
    assert!(
        matches!(last_done(&s), Some(Err(ClientError::Unsupported(_)))),
        "{:?}",
        s.events
    );
    assert!(s.sent().is_empty(), "{:?}", s.sent());

    let mut s = ready_with_features(&["HASH SHA-1;MD5*"]);
    s.submit(hash_op(HashAlgorithm::Sha256, None));
    assert!(matches!(
        last_done(&s),
        Some(Err(ClientError::Unsupported(_)))
    ));
    s.events.clear();
    s.submit(hash_op(HashAlgorithm::Md5, Some((0, 9))));
    assert!(matches!(
        last_done(&s),
        Some(Err(ClientError::Unsupported(_)))
    ));
    assert!(s.sent().is_empty(), "{:?}", s.sent());
}

#[test]
fn hash_selects_ranges_and_parses_the_reply() {
    let mut s = ready_with_features(&["HASH SHA-1;SHA-256*;MD5", "RANG"]);
    s.submit(hash_op(HashAlgorithm::Md5, Some((2, 9))));
    s.reply("200 MD5");
    s.reply("200 Type set to I");
    s.reply("350 Restarting at 2. Ending byte 9.");
    s.reply("213 MD5 2-9 0123456789ABCDEF0123456789abcdef f.bin");
    assert!(last_done(&s).is_none(), "the range is reset first");
    s.reply("350 Restarting at 0. Ending byte EOF.");
    assert_eq!(
        s.sent(),
        [
            "OPTS HASH MD5",
            "TYPE I",
            "RANG 2 9",
            "HASH f.bin",
            "RANG 1 0"
        ]
    );
    match last_done(&s) {
        Some(Ok(Output::Hash(h))) => {
            assert_eq!(
                (h.algorithm, h.start, h.end, h.hex.as_str(), h.path.as_str()),
                (
                    HashAlgorithm::Md5,
                    2,
                    9,
                    "0123456789abcdef0123456789abcdef",
                    "f.bin"
                )
            );
        }
        other => panic!("{other:?}"),
    }

    // In TYPE I already: no TYPE before RANG.
    s.actions.clear();
    s.events.clear();
    s.submit(hash_op(HashAlgorithm::Md5, Some((0, 0))));
    s.reply("200 MD5");
    s.reply("350 Restarting at 0. Ending byte 0.");
    s.reply("213 MD5 0-0 0123456789abcdef0123456789abcdef f.bin");
    s.reply("350 reset");
    assert_eq!(
        s.sent(),
        ["OPTS HASH MD5", "RANG 0 0", "HASH f.bin", "RANG 1 0"]
    );
    assert!(matches!(last_done(&s), Some(Ok(Output::Hash(_)))));

    // A server whose HASH ignored RANG (ProFTPD's mod_digest answers for the whole file):
    // not the digest asked for; the range is reset all the same.
    s.actions.clear();
    s.events.clear();
    s.submit(hash_op(HashAlgorithm::Md5, Some((100, 199))));
    s.reply("200 MD5");
    s.reply("350 Transferring byte range of 100 bytes starting from 100");
    s.reply("213 MD5 0-700000 0123456789abcdef0123456789abcdef f.bin");
    s.reply("350 reset");
    assert_eq!(
        s.sent(),
        ["OPTS HASH MD5", "RANG 100 199", "HASH f.bin", "RANG 1 0"]
    );
    assert!(matches!(
        last_done(&s),
        Some(Err(ClientError::Unexpected(_)))
    ));
    // An exclusive end is taken for the same range.
    s.actions.clear();
    s.events.clear();
    s.submit(hash_op(HashAlgorithm::Md5, Some((100, 199))));
    s.reply("200 MD5");
    s.reply("350 ok");
    s.reply("213 MD5 100-200 0123456789abcdef0123456789abcdef f.bin");
    s.reply("350 reset");
    assert!(matches!(last_done(&s), Some(Ok(Output::Hash(_)))));

    // Another algorithm than asked, or a malformed digest: unexpected; a refusal: refused.
    for (answer, unexpected) in [
        (
            "213 SHA-1 0-3 a9993e364706816aba3e25717850c26c9cd0d89d f.bin",
            true,
        ),
        ("213 SHA-256 0-3 abc f.bin", true),
        ("550 No such file.", false),
    ] {
        s.actions.clear();
        s.events.clear();
        s.submit(hash_op(HashAlgorithm::Sha256, None));
        s.reply("200 SHA-256");
        s.reply(answer);
        assert_eq!(s.sent(), ["OPTS HASH SHA-256", "HASH f.bin"]);
        match (last_done(&s), unexpected) {
            (Some(Err(ClientError::Unexpected(_))), true)
            | (Some(Err(ClientError::Refused(_))), false) => {}
            other => panic!("{answer}: {other:?}"),
        }
    }
    // An algorithm refused by OPTS HASH fails the operation; the session goes on.
    s.actions.clear();
    s.events.clear();
    s.submit(hash_op(HashAlgorithm::Sha1, None));
    s.reply("501 Unknown algorithm");
    assert_eq!(s.sent(), ["OPTS HASH SHA-1"]);
    assert!(matches!(last_done(&s), Some(Err(ClientError::Refused(_)))));
    assert!(!s.session.is_closed());
}
