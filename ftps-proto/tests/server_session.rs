//! The server session driven in memory: a fake adapter executes its actions, a fake
//! application answers logins and storage requests from an in-memory tree, and a virtual
//! clock drives the timers. Every reply-code rule of the server is checked here.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_proto::boundary::{DataEnd, DataId};
use ftps_proto::listing::EntryKind;
use ftps_proto::server::{
    Action, ControlTlsPolicy, DataTlsPolicy, Event, Grants, IoEvent, LoginAnswer, Metadata,
    Permission, Permissions, ServerConfig, StorageCapabilities, StorageError, StorageReply,
    StorageRequest, TlsInfo, TlsMode, TlsVersion,
};
use ftps_proto::{MlsxEntry, Reply, ReplyDecoder, ServerSession, Timestamp, VirtualPath};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone)]
enum Node {
    File(Vec<u8>),
    Dir,
}

/// How the fake adapter answers data-connection actions.
#[derive(Clone)]
struct DataBehaviour {
    peer: SocketAddr,
    resumed: bool,
    /// What an upload receives, and whether it ends with close_notify.
    upload: Vec<u8>,
    close_notify: bool,
    /// Stop after OpenData (for timeouts, ABOR and STAT during a transfer).
    hold: bool,
}

struct Harness {
    session: ServerSession,
    now: Instant,
    decoder: ReplyDecoder,
    replies: Vec<Reply>,
    actions: Vec<Action>,
    events: Vec<Event>,
    fs: BTreeMap<String, Node>,
    data: DataBehaviour,
    /// Open transfers: id -> (path, is upload, offset).
    open: BTreeMap<DataId, (VirtualPath, bool, u64)>,
    /// Listings opened for data connections, already made.
    listings: BTreeMap<DataId, Vec<u8>>,
    /// Every listing sent, in order.
    sent_listings: Vec<Vec<u8>>,
    auto_tls: bool,
    alpn: Option<Vec<u8>>,
    next_port: u16,
    closed: bool,
    /// What a login's answer grants (`None`: everything).
    grants: Option<Grants>,
}

const PEER: &str = "127.0.0.1:50000";
const LOCAL: &str = "127.0.0.1:2121";

fn meta(name: &str, node: &Node) -> Metadata {
    let (kind, size) = match node {
        Node::File(b) => (EntryKind::File, b.len() as u64),
        Node::Dir => (EntryKind::Directory, 4096),
    };
    Metadata {
        name: name.to_owned(),
        kind,
        size,
        modified: Some(Timestamp::parse("20190304050607").unwrap()),
        mode: Some(if kind == EntryKind::Directory {
            0o755
        } else {
            0o644
        }),
        writable: true,
        unique: None,
    }
}

impl Harness {
    fn new(config: ServerConfig, mode: TlsMode) -> Self {
        // The virtual clock starts at a real instant; only the test reads it.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let session = ServerSession::new(
            Arc::new(config),
            mode,
            PEER.parse().unwrap(),
            LOCAL.parse().unwrap(),
            now,
        );
        let mut fs = BTreeMap::new();
        fs.insert("/".to_owned(), Node::Dir);
        fs.insert(
            "/hello.txt".to_owned(),
            Node::File(b"hello from the ftps lab\n".to_vec()),
        );
        fs.insert("/.hidden".to_owned(), Node::File(b"x".to_vec()));
        fs.insert("/sub".to_owned(), Node::Dir);
        fs.insert(
            "/sub/日本語.txt".to_owned(),
            Node::File(b"nihongo".to_vec()),
        );
        let mut h = Self {
            session,
            now,
            decoder: ReplyDecoder::default(),
            replies: Vec::new(),
            actions: Vec::new(),
            events: Vec::new(),
            fs,
            data: DataBehaviour {
                peer: "127.0.0.1:50001".parse().unwrap(),
                resumed: true,
                upload: b"uploaded bytes".to_vec(),
                close_notify: true,
                hold: false,
            },
            open: BTreeMap::new(),
            listings: BTreeMap::new(),
            sent_listings: Vec::new(),
            auto_tls: true,
            alpn: Some(b"ftp".to_vec()),
            next_port: 40000,
            closed: false,
            grants: None,
        };
        h.pump();
        h
    }

    /// A session with the secure defaults, explicit mode.
    fn secure() -> Self {
        Self::new(ServerConfig::default(), TlsMode::Explicit)
    }

    /// Sends each line as its own segment (as a client that waits for replies would) and
    /// returns the codes of the replies they caused.
    fn send(&mut self, lines: &str) -> Vec<u16> {
        let before = self.replies.len();
        for line in lines.split('\n').filter(|l| !l.is_empty()) {
            self.offer(format!("{line}\r\n").as_bytes());
        }
        self.replies[before..]
            .iter()
            .map(|r| r.code().get())
            .collect()
    }

    /// Sends all lines in one segment (a pipelining or hostile client).
    fn send_segment(&mut self, lines: &str) -> Vec<u16> {
        let before = self.replies.len();
        let mut input = lines.replace('\n', "\r\n");
        if !input.ends_with("\r\n") {
            input.push_str("\r\n");
        }
        self.offer(input.as_bytes());
        self.replies[before..]
            .iter()
            .map(|r| r.code().get())
            .collect()
    }

    fn offer(&mut self, mut rest: &[u8]) {
        for _ in 0..100 {
            let used = self.session.handle_control_input(rest, self.now);
            rest = &rest[used..];
            self.pump();
            if rest.is_empty() {
                break;
            }
        }
    }

    fn last(&self) -> &Reply {
        self.replies.last().unwrap()
    }

    fn advance(&mut self, by: Duration) -> Vec<u16> {
        let before = self.replies.len();
        self.now += by;
        self.session.handle_timeout(self.now);
        self.pump();
        self.replies[before..]
            .iter()
            .map(|r| r.code().get())
            .collect()
    }

    fn tls_info(&self) -> TlsInfo {
        TlsInfo::new(TlsVersion::Tls13, self.data.resumed)
            .with_alpn(self.alpn.clone())
            .with_sni(Some("localhost".into()))
    }

    fn pump(&mut self) {
        for _ in 0..1000 {
            let mut progressed = false;
            while let Some(action) = self.session.poll_action() {
                progressed = true;
                self.actions.push(action.clone());
                self.act(action);
            }
            while let Some(event) = self.session.poll_event() {
                progressed = true;
                self.events.push(event.clone());
                self.answer(event);
            }
            if !progressed {
                return;
            }
        }
        panic!("session did not settle");
    }

    fn act(&mut self, action: Action) {
        let now = self.now;
        match action {
            Action::Send(bytes) => {
                let mut input = &bytes[..];
                while let (used, Some(r)) = self.decoder.decode(input) {
                    input = &input[used..];
                    self.replies.push(r.unwrap());
                }
                assert!(input.is_empty() || self.decoder.decode(input).1.is_none());
            }
            Action::StartControlTls => {
                if self.auto_tls {
                    let info = self.tls_info().with_resumed(false);
                    self.session
                        .handle_io(IoEvent::ControlTlsEstablished(info), now);
                }
            }
            Action::Listen { id, .. } => {
                self.next_port += 1;
                let local = SocketAddr::new("127.0.0.1".parse().unwrap(), self.next_port);
                self.session
                    .handle_io(IoEvent::DataListening { id, local }, now);
            }
            Action::OpenData { id, tls, .. } => {
                if self.data.hold {
                    return;
                }
                let tls = tls.then(|| self.tls_info());
                self.session.handle_io(
                    IoEvent::DataConnected {
                        id,
                        peer: self.data.peer,
                        tls,
                    },
                    now,
                );
            }
            Action::Transfer { id } => {
                let (path, upload, offset) =
                    self.open
                        .get(&id)
                        .cloned()
                        .unwrap_or((VirtualPath::root(), false, 0));
                let (bytes, end) = if let Some(listing) = self.listings.remove(&id) {
                    let n = listing.len() as u64;
                    self.sent_listings.push(listing);
                    (n, DataEnd::Complete { close_notify: true })
                } else if upload {
                    let mut content = match self.fs.get(path.as_str()) {
                        Some(Node::File(b)) => b[..(offset as usize).min(b.len())].to_vec(),
                        _ => Vec::new(),
                    };
                    content.extend_from_slice(&self.data.upload);
                    self.open.insert(id, (path.clone(), true, offset));
                    self.fs
                        .insert(format!("{}.part", path), Node::File(content));
                    (
                        self.data.upload.len() as u64,
                        DataEnd::Complete {
                            close_notify: self.data.close_notify,
                        },
                    )
                } else {
                    let Some(Node::File(b)) = self.fs.get(path.as_str()) else {
                        panic!("no file {path}")
                    };
                    (
                        (b.len() as u64).saturating_sub(offset),
                        DataEnd::Complete { close_notify: true },
                    )
                };
                self.session
                    .handle_io(IoEvent::DataEnded { id, bytes, end }, now);
            }
            Action::FinishUpload { id, commit } => {
                if let Some((path, true, _)) = self.open.remove(&id) {
                    let part = self.fs.remove(&format!("{}.part", path));
                    if commit {
                        self.fs.insert(path.to_string(), part.unwrap());
                    }
                }
                self.session
                    .handle_io(IoEvent::UploadFinished { id, result: Ok(()) }, now);
            }
            Action::AbortData { id } => {
                if let Some((path, true, _)) = self.open.remove(&id) {
                    self.fs.remove(&format!("{}.part", path));
                }
            }
            Action::StopControlTls => {}
            Action::Close => self.closed = true,
            other => panic!("unexpected action {other:?}"),
        }
    }

    fn answer(&mut self, event: Event) {
        let now = self.now;
        match event {
            Event::Login(req) => {
                let ok = (req.user == "alice" && req.password.expose() == "secret")
                    || req.user == "anonymous";
                let answer = if ok {
                    LoginAnswer::Accepted {
                        control_tls: None,
                        data_tls: None,
                        grants: self.grants.clone(),
                    }
                } else {
                    LoginAnswer::Rejected
                };
                self.session.answer_login(req.token, answer, now);
            }
            Event::Storage { token, request } => {
                let result = self.storage(request);
                self.session.answer_storage(token, result, now);
            }
            Event::Site { token, command } => {
                let r = Reply::new(
                    ftps_proto::ReplyCode::COMMAND_OK,
                    &format!("SITE {command} ok"),
                );
                self.session.answer_site(token, r, now);
            }
            _ => {}
        }
    }

    fn entries(&self, dir: &str) -> Vec<Metadata> {
        let prefix = if dir == "/" {
            "/".to_owned()
        } else {
            format!("{dir}/")
        };
        self.fs
            .iter()
            .filter(|(p, _)| {
                p.starts_with(&prefix) && p.len() > prefix.len() && !p[prefix.len()..].contains('/')
            })
            .map(|(p, n)| meta(&p[prefix.len()..], n))
            .collect()
    }

    fn storage(&mut self, request: StorageRequest) -> Result<StorageReply, StorageError> {
        let name = |p: &VirtualPath| p.file_name().unwrap_or("/").to_owned();
        match request {
            StorageRequest::Stat(p) => {
                let node = self.fs.get(p.as_str()).ok_or(StorageError::NotFound)?;
                Ok(StorageReply::Metadata(meta(&name(&p), node)))
            }
            StorageRequest::List(p) => match self.fs.get(p.as_str()) {
                Some(Node::Dir) => Ok(StorageReply::Entries {
                    entries: self.entries(p.as_str()),
                    now: Timestamp::parse("20261122030000").unwrap(),
                }),
                Some(n) => Ok(StorageReply::Entries {
                    entries: vec![meta(&name(&p), n)],
                    now: Timestamp::parse("20261122030000").unwrap(),
                }),
                None => Err(StorageError::NotFound),
            },
            StorageRequest::OpenListing { id, path, format } => {
                let entries = match self.fs.get(path.as_str()) {
                    Some(Node::Dir) => self.entries(path.as_str()),
                    Some(n) => vec![meta(&name(&path), n)],
                    None => return Err(StorageError::NotFound),
                };
                let now = Timestamp::parse("20261122030000").unwrap();
                let bytes = entries
                    .iter()
                    .filter_map(|m| format.line(m, &now))
                    .flat_map(String::into_bytes)
                    .collect();
                self.listings.insert(id, bytes);
                Ok(StorageReply::Opened { path, size: 0 })
            }
            StorageRequest::MakeDir(p) => {
                if self.fs.contains_key(p.as_str()) {
                    return Err(StorageError::AlreadyExists);
                }
                self.fs.insert(p.to_string(), Node::Dir);
                Ok(StorageReply::Done)
            }
            StorageRequest::RemoveDir(p) => match self.fs.get(p.as_str()) {
                Some(Node::Dir) if self.entries(p.as_str()).is_empty() => {
                    self.fs.remove(p.as_str());
                    Ok(StorageReply::Done)
                }
                Some(Node::Dir) => Err(StorageError::DirectoryNotEmpty),
                Some(_) => Err(StorageError::NotADirectory),
                None => Err(StorageError::NotFound),
            },
            StorageRequest::RemoveFile(p) => match self.fs.get(p.as_str()) {
                Some(Node::File(_)) => {
                    self.fs.remove(p.as_str());
                    Ok(StorageReply::Done)
                }
                Some(_) => Err(StorageError::IsADirectory),
                None => Err(StorageError::NotFound),
            },
            StorageRequest::Rename { from, to } => {
                let node = self
                    .fs
                    .remove(from.as_str())
                    .ok_or(StorageError::NotFound)?;
                self.fs.insert(to.to_string(), node);
                Ok(StorageReply::Done)
            }
            StorageRequest::SetModified { path, .. } => {
                self.fs.get(path.as_str()).ok_or(StorageError::NotFound)?;
                Ok(StorageReply::Done)
            }
            StorageRequest::OpenRead { id, path, offset } => match self.fs.get(path.as_str()) {
                Some(Node::File(b)) => {
                    let size = b.len() as u64;
                    self.open.insert(id, (path.clone(), false, offset));
                    Ok(StorageReply::Opened { path, size })
                }
                Some(Node::Dir) => Err(StorageError::IsADirectory),
                None => Err(StorageError::NotFound),
            },
            StorageRequest::OpenWrite {
                id,
                path,
                offset,
                unique,
                create_new,
                ..
            } => {
                let path = if unique {
                    path.resolve("unique.1")
                } else {
                    path
                };
                if create_new && self.fs.contains_key(path.as_str()) {
                    return Err(StorageError::AlreadyExists);
                }
                if matches!(self.fs.get(path.as_str()), Some(Node::Dir)) {
                    return Err(StorageError::IsADirectory);
                }
                if !self.fs.contains_key(path.parent().as_str()) {
                    return Err(StorageError::NotFound);
                }
                self.open.insert(id, (path.clone(), true, offset));
                Ok(StorageReply::Opened { path, size: 0 })
            }
            // A stand-in digest: the algorithm's length of zeros; the tests check what was
            // asked (the request is among the events) and how the reply is worded.
            StorageRequest::Hash {
                path,
                algorithm,
                start,
                end,
            } => match self.fs.get(path.as_str()) {
                Some(Node::File(b)) => {
                    let size = b.len() as u64;
                    let last = end.unwrap_or(size.saturating_sub(1));
                    if end.is_some() && (start > last || last >= size) {
                        return Err(StorageError::InvalidOffset);
                    }
                    let bytes = if end.is_some() {
                        last - start + 1
                    } else {
                        size
                    };
                    Ok(StorageReply::Hash {
                        hex: "0".repeat(algorithm.hex_len()),
                        bytes,
                    })
                }
                Some(Node::Dir) => Err(StorageError::IsADirectory),
                None => Err(StorageError::NotFound),
            },
            other => panic!("unexpected storage request {other:?}"),
        }
    }

    fn login(&mut self) {
        assert_eq!(
            self.send("AUTH TLS\nUSER alice\nPASS secret\nPBSZ 0\nPROT P"),
            [234, 331, 230, 200, 200]
        );
    }

    fn file(&self, path: &str) -> Option<&[u8]> {
        match self.fs.get(path) {
            Some(Node::File(b)) => Some(b),
            _ => None,
        }
    }

    fn count(&self, f: impl Fn(&Action) -> bool) -> usize {
        self.actions.iter().filter(|a| f(a)).count()
    }
}

fn allow_all() -> ServerConfig {
    ServerConfig::default()
        .with_control_tls(ControlTlsPolicy::Allow)
        .with_data_tls(DataTlsPolicy::Allow)
}

// ----- TLS modes -----------------------------------------------------------------

#[test]
fn explicit_greets_then_auth_upgrades() {
    let mut h = Harness::secure();
    assert_eq!(h.replies[0].code().get(), 220);
    assert!(!h.actions.contains(&Action::StartControlTls));
    assert_eq!(h.send("AUTH TLS"), [234]);
    assert!(h.session.is_control_secure());
    let auth_reply = h
        .actions
        .iter()
        .position(|a| matches!(a, Action::Send(b) if b.starts_with(b"234")))
        .unwrap();
    assert_eq!(
        h.actions[auth_reply + 1],
        Action::StartControlTls,
        "234 goes out before TLS starts"
    );
}

#[test]
fn implicit_starts_with_tls_and_greets_after_handshake() {
    let mut h = Harness::new(ServerConfig::default(), TlsMode::Implicit);
    assert_eq!(h.actions[0], Action::StartControlTls);
    assert_eq!(h.replies.len(), 1);
    assert_eq!(h.replies[0].code().get(), 220);
    assert!(matches!(h.actions[1], Action::Send(_)));
    assert_eq!(h.send("AUTH TLS"), [503]);
    assert_eq!(
        h.send("USER alice\nPASS secret\nPBSZ 0\nPROT P"),
        [331, 230, 200, 200]
    );
    let feat = h.send("FEAT");
    assert_eq!(feat, [211]);
    assert!(
        !h.last().text().contains("AUTH"),
        "implicit sessions do not offer AUTH"
    );
}

#[test]
fn plaintext_after_auth_is_never_executed() {
    let mut h = Harness::secure();
    h.auto_tls = false;
    // Pure-FTPd CVE-2011-1575: commands injected behind AUTH in the same segment.
    assert_eq!(h.send_segment("AUTH TLS\nUSER alice\nPASS secret\n"), [234]);
    assert!(
        h.events.contains(&Event::PlaintextDiscarded { bytes: 25 }),
        "{:?}",
        h.events
    );
    // Input offered during the handshake is dropped too.
    assert_eq!(h.send("USER alice\n"), Vec::<u16>::new());
    h.session
        .handle_io(IoEvent::ControlTlsEstablished(h.tls_info()), h.now);
    h.pump();
    assert_eq!(
        h.send("USER alice"),
        [331],
        "only commands sent after the handshake run"
    );
}

#[test]
fn auth_pbsz_prot_ordering() {
    let mut h = Harness::new(allow_all(), TlsMode::Explicit);
    assert_eq!(h.send("PBSZ 0\nPROT P"), [503, 503]);
    assert_eq!(h.send("AUTH XYZ"), [504]);
    assert_eq!(h.send("AUTH TLS\nAUTH TLS\nAUTH SSL"), [234, 503, 503]);
    assert_eq!(h.send("PROT P"), [503], "PROT before PBSZ");
    assert_eq!(h.send("PBSZ 0"), [200]);
    assert_eq!(h.last().first_line(), "PBSZ=0");
    assert_eq!(
        h.send("PROT S\nPROT E\nPROT X\nPROT C\nPROT P"),
        [536, 536, 504, 200, 200]
    );
    assert_eq!(h.session.protection(), ftps_proto::ProtectionLevel::Private);
}

#[test]
fn no_tls_configured_refuses_auth() {
    let mut h = Harness::new(allow_all().with_tls_available(false), TlsMode::Explicit);
    assert_eq!(h.send("AUTH TLS"), [502]);
    assert_eq!(h.send("USER alice\nPASS secret\nPWD"), [331, 230, 257]);
}

#[test]
fn alpn_other_than_ftp_closes_the_session() {
    let mut h = Harness::secure();
    h.alpn = Some(b"http/1.1".to_vec());
    assert_eq!(h.send("AUTH TLS"), [234]);
    assert!(h.closed);
    assert!(h.session.is_closed());
}

// ----- policies ------------------------------------------------------------------

#[test]
fn control_require_allows_only_auth_feat_host_quit() {
    let mut h = Harness::secure();
    assert_eq!(
        h.send("USER alice\nPASS secret\nNOOP\nSYST\nPBSZ 0"),
        [534, 534, 534, 534, 534]
    );
    assert_eq!(h.send("FEAT\nHOST ftp.example.com"), [211, 220]);
    assert_eq!(h.send("QUIT"), [221]);
    assert!(h.closed);
}

#[test]
fn control_require_for_credentials() {
    let config = allow_all().with_control_tls(ControlTlsPolicy::RequireForCredentials);
    let mut h = Harness::new(config, TlsMode::Explicit);
    assert_eq!(h.send("NOOP\nSYST"), [200, 215]);
    assert_eq!(h.send("USER alice"), [534]);
    assert_eq!(h.send("PASS secret"), [503]);
    assert_eq!(h.send("AUTH TLS\nUSER alice\nPASS secret"), [234, 331, 230]);
}

#[test]
fn control_allow_permits_plain_login_and_per_user_override_tightens_it() {
    let mut h = Harness::new(allow_all(), TlsMode::Explicit);
    assert_eq!(h.send("USER alice\nPASS secret\nPWD"), [331, 230, 257]);

    // An authenticator that requires TLS for this user, on a plain session.
    let mut h2 = Harness::new(allow_all(), TlsMode::Explicit);
    h2.send("USER alice");
    h2.session.handle_control_input(b"PASS secret\r\n", h2.now);
    let token = match h2.session.poll_event() {
        Some(Event::Login(req)) => req.token,
        other => panic!("{other:?}"),
    };
    let answer = LoginAnswer::Accepted {
        control_tls: Some(ControlTlsPolicy::Require),
        data_tls: None,
        grants: None,
    };
    h2.session.answer_login(token, answer, h2.now);
    h2.pump();
    assert_eq!(h2.last().code().get(), 530);
    assert_eq!(h2.session.user(), None);
}

#[test]
fn data_require_refuses_transfers_under_prot_c() {
    let mut h = Harness::secure();
    assert_eq!(
        h.send("AUTH TLS\nUSER alice\nPASS secret\nPBSZ 0\nPROT C\nPASV"),
        [234, 331, 230, 200, 200, 227]
    );
    assert_eq!(h.send("RETR hello.txt\nLIST"), [521, 521]);
    assert_eq!(
        h.count(|a| matches!(a, Action::OpenData { .. })),
        0,
        "no data is sent"
    );
    assert_eq!(h.send("PROT P\nRETR hello.txt"), [200, 150, 226]);
}

#[test]
fn data_deny_refuses_prot_p() {
    let config = ServerConfig::default().with_data_tls(DataTlsPolicy::Deny);
    let mut h = Harness::new(config, TlsMode::Explicit);
    assert_eq!(
        h.send("AUTH TLS\nUSER alice\nPASS secret\nPBSZ 0\nPROT P\nPROT C"),
        [234, 331, 230, 200, 534, 200]
    );
    assert_eq!(h.send("EPSV\nRETR hello.txt"), [229, 150, 226]);
    assert!(h.actions.iter().any(|a| matches!(a, Action::OpenData { id, connect_to: None, tls: false, upload: false, ascii: false } if *id == data_id_of(&h))));
}

fn data_id_of(h: &Harness) -> DataId {
    h.actions
        .iter()
        .rev()
        .find_map(|a| match a {
            Action::OpenData { id, .. } => Some(*id),
            _ => None,
        })
        .unwrap()
}

#[test]
fn data_tls_must_resume_the_control_session() {
    let mut h = Harness::secure();
    h.login();
    h.data.resumed = false;
    assert_eq!(h.send("PASV\nRETR hello.txt"), [227, 150, 522]);
    assert!(
        h.actions
            .iter()
            .any(|a| matches!(a, Action::AbortData { .. }))
    );
    assert_eq!(h.send("NOOP"), [200], "the control session stays usable");
    h.data.resumed = true;
    assert_eq!(h.send("PASV\nRETR hello.txt"), [227, 150, 226]);

    // With the check off, a fresh session is accepted.
    let mut h = Harness::new(
        ServerConfig::default().with_require_session_reuse(false),
        TlsMode::Explicit,
    );
    h.login();
    h.data.resumed = false;
    assert_eq!(h.send("EPSV\nRETR hello.txt"), [229, 150, 226]);
}

// ----- login ---------------------------------------------------------------------

#[test]
fn failed_logins_are_delayed_then_the_session_closes() {
    let mut h = Harness::new(allow_all(), TlsMode::Explicit);
    assert_eq!(h.send("USER alice\nPASS wrong"), [331]);
    assert_eq!(
        h.send("NOOP"),
        Vec::<u16>::new(),
        "nothing runs during the delay"
    );
    assert_eq!(h.advance(Duration::from_millis(500)), Vec::<u16>::new());
    assert_eq!(h.advance(Duration::from_millis(600)), [530, 200]);
    assert_eq!(h.send("USER alice\nPASS wrong"), [331]);
    assert_eq!(h.advance(Duration::from_secs(2)), [530]);
    assert_eq!(
        h.send("USER alice\nPASS secret"),
        [331, 230],
        "the right password works before the limit"
    );
    let mut h = Harness::new(allow_all(), TlsMode::Explicit);
    for _ in 0..2 {
        h.send("USER alice\nPASS wrong");
        h.advance(Duration::from_secs(2));
    }
    h.send("USER alice\nPASS wrong");
    assert_eq!(h.advance(Duration::from_secs(2)), [421]);
    assert!(h.closed);
}

#[test]
fn anonymous_only_when_configured() {
    let mut h = Harness::new(allow_all(), TlsMode::Explicit);
    assert_eq!(h.send("USER anonymous"), [530]);
    let mut h = Harness::new(
        ServerConfig::default().with_anonymous(true),
        TlsMode::Explicit,
    );
    // Anonymous needs no TLS for credentials, but Require still applies to USER.
    assert_eq!(h.send("USER anonymous"), [534]);
    let mut h = Harness::new(
        allow_all()
            .with_anonymous(true)
            .with_control_tls(ControlTlsPolicy::RequireForCredentials),
        TlsMode::Explicit,
    );
    assert_eq!(h.send("USER anonymous\nPASS me@example.com"), [331, 230]);
}

#[test]
fn commands_need_login() {
    let mut h = Harness::new(allow_all(), TlsMode::Explicit);
    assert_eq!(
        h.send("PWD\nCWD /\nLIST\nRETR x\nPASV\nSIZE x"),
        [530, 530, 530, 530, 530, 530]
    );
    assert_eq!(h.send("PASS x"), [503]);
    assert_eq!(h.send("ACCT x\nSYST\nNOOP\nHELP"), [202, 215, 200, 214]);
}

#[test]
fn host_comes_before_user() {
    let mut h = Harness::secure();
    assert_eq!(
        h.send("HOST ftp.example.com\nAUTH TLS\nUSER alice"),
        [220, 234, 331]
    );
    assert_eq!(h.session.host(), Some("ftp.example.com"));
    assert_eq!(h.send("HOST other"), [503]);
    match h.events.iter().find(|e| matches!(e, Event::Login(_))) {
        None => {}
        Some(e) => panic!("{e:?}"),
    }
    h.send("PASS secret");
    let login = h.events.iter().find_map(|e| match e {
        Event::Login(r) => Some(r.clone()),
        _ => None,
    });
    assert_eq!(login.unwrap().host.as_deref(), Some("ftp.example.com"));
}

// ----- CCC and REIN --------------------------------------------------------------

#[test]
fn ccc_is_refused_by_default_and_before_login() {
    let mut h = Harness::secure();
    assert_eq!(h.send("AUTH TLS\nCCC"), [234, 534]);
    assert_eq!(h.send("USER alice\nPASS secret\nCCC"), [331, 230, 534]);
    let config = ServerConfig::default().with_allow_ccc(true);
    let mut h = Harness::new(config, TlsMode::Explicit);
    assert_eq!(h.send("AUTH TLS\nCCC"), [234, 534], "CCC before login");
    assert_eq!(h.send("USER alice\nPASS secret\nCCC"), [331, 230, 200]);
    assert_eq!(h.actions.last(), Some(&Action::StopControlTls));
    assert!(!h.session.is_control_secure());
    // The client's close_notify record arrives after the switch: it is dropped, not read
    // as a command (a TLS 1.3 alert record: outer type 23, 19 bytes), even when split.
    let mut record = vec![0x17, 0x03, 0x03, 0x00, 0x13];
    record.extend_from_slice(&[0xab; 19]);
    assert_eq!(h.session.handle_control_input(&record[..3], h.now), 0);
    let mut input = record.clone();
    input.extend_from_slice(b"NOOP\r\n");
    let before = h.replies.len();
    h.offer(&input);
    assert_eq!(h.replies.len(), before + 1);
    assert_eq!(h.last().code().get(), 200);
    // TLS was required and CCC allowed: the cleared session may still work, and data
    // connections keep PROT P.
    assert_eq!(h.send("PWD\nPBSZ 0"), [257, 503]);

    // A client that sends no close_notify goes on in plain text at once.
    let config = ServerConfig::default().with_allow_ccc(true);
    let mut h = Harness::new(config, TlsMode::Explicit);
    assert_eq!(
        h.send("AUTH TLS\nUSER alice\nPASS secret\nCCC\nNOOP"),
        [234, 331, 230, 200, 200]
    );
}

#[test]
fn rein_resets_login_and_tls() {
    let mut h = Harness::new(allow_all(), TlsMode::Explicit);
    h.login();
    assert_eq!(h.send("REIN"), [220]);
    assert_eq!(h.actions.last(), Some(&Action::StopControlTls));
    assert!(!h.session.is_control_secure());
    assert_eq!(h.send("PWD\nPROT P"), [530, 503]);
    assert_eq!(
        h.send("AUTH TLS\nUSER alice\nPASS secret\nPWD"),
        [234, 331, 230, 257]
    );
}

// ----- data connections ----------------------------------------------------------

#[test]
fn pasv_and_epsv_replies() {
    let mut h = Harness::secure();
    h.login();
    assert_eq!(h.send("PASV"), [227]);
    let addr = ftps_proto::address::parse_pasv_reply(h.last().first_line()).unwrap();
    assert_eq!(addr.ip().octets(), [127, 0, 0, 1]);
    assert_eq!(h.send("EPSV"), [229]);
    assert!(ftps_proto::address::parse_epsv_reply(h.last().first_line()).is_ok());
    assert_eq!(h.send("EPSV 2"), [522]);
    // Every new PASV drops the previous listener: at most one per session.
    for _ in 0..200 {
        h.send("PASV");
    }
    let listens = h.count(|a| matches!(a, Action::Listen { .. }));
    let aborts = h.count(|a| matches!(a, Action::AbortData { .. }));
    assert_eq!(listens, 202);
    assert_eq!(aborts, 201);
    assert!(h.actions.iter().any(|a| matches!(a, Action::Listen { accept_from: Some(ip), .. } if ip.to_string() == "127.0.0.1")));
    assert_eq!(h.send("EPSV ALL\nPASV\nEPSV"), [200, 503, 229]);
}

#[test]
fn advertised_address_goes_into_227() {
    let config =
        ServerConfig::default().with_advertised_address(Some("127.0.0.9".parse().unwrap()));
    let mut h = Harness::new(config, TlsMode::Explicit);
    h.login();
    h.send("PASV");
    let addr = ftps_proto::address::parse_pasv_reply(h.last().first_line()).unwrap();
    assert_eq!(addr.ip().octets(), [127, 0, 0, 9]);
}

#[test]
fn active_mode_is_off_by_default_and_guarded_when_on() {
    let mut h = Harness::secure();
    h.login();
    assert_eq!(
        h.send("PORT 127,0,0,1,200,10\nEPRT |1|127.0.0.1|51210|"),
        [502, 502]
    );
    let mut h = Harness::new(
        ServerConfig::default().with_active_mode(true),
        TlsMode::Explicit,
    );
    h.login();
    // RFC 2577: no bounce to another host or a privileged port, nothing attempted.
    assert_eq!(
        h.send("PORT 127,0,0,2,200,10\nPORT 127,0,0,1,0,22\nEPRT |1|127.0.0.2|51210|"),
        [501, 501, 501]
    );
    assert_eq!(h.send("EPRT |2|::1|51210|"), [522]);
    assert_eq!(h.count(|a| matches!(a, Action::OpenData { .. })), 0);
    assert_eq!(
        h.send("PORT 127,0,0,1,200,10\nRETR hello.txt"),
        [200, 150, 226]
    );
    let target: SocketAddr = "127.0.0.1:51210".parse().unwrap();
    assert!(h.actions.iter().any(
        |a| matches!(a, Action::OpenData { connect_to: Some(t), tls: true, .. } if *t == target)
    ));
}

#[test]
fn data_from_a_foreign_peer_is_refused() {
    let mut h = Harness::secure();
    h.login();
    h.data.peer = "127.0.0.2:50001".parse().unwrap();
    assert_eq!(h.send("PASV\nRETR hello.txt"), [227, 150, 425]);
    assert_eq!(h.send("NOOP"), [200]);
}

#[test]
fn transfer_needs_a_data_setup() {
    let mut h = Harness::secure();
    h.login();
    assert_eq!(h.send("RETR hello.txt\nSTOR x\nLIST"), [425, 425, 425]);
    assert_eq!(
        h.send("PASV\nRETR hello.txt\nRETR hello.txt"),
        [227, 150, 226, 425],
        "one transfer per PASV"
    );
}

// ----- transfers -----------------------------------------------------------------

#[test]
fn retrieve_with_and_without_rest() {
    let mut h = Harness::secure();
    h.login();
    assert_eq!(h.send("TYPE I\nPASV\nRETR hello.txt"), [200, 227, 150, 226]);
    assert!(
        h.replies[h.replies.len() - 2]
            .first_line()
            .contains("(24 bytes)")
    );
    assert!(h.actions.iter().any(|a| matches!(
        a,
        Action::OpenData {
            upload: false,
            ascii: false,
            ..
        }
    )));
    assert!(
        h.actions
            .iter()
            .any(|a| matches!(a, Action::Transfer { .. }))
    );
    assert_eq!(h.send("REST 5\nEPSV\nRETR hello.txt"), [350, 229, 150, 226]);
    assert_eq!(h.send("REST 25\nEPSV\nRETR hello.txt"), [350, 229, 554]);
    assert_eq!(
        h.send("EPSV\nRETR nope.txt\nEPSV\nRETR sub"),
        [229, 550, 229, 550]
    );
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::TransferDone {
            ok: true,
            bytes: 24,
            ..
        }
    )));
}

#[test]
fn rest_applies_to_the_next_transfer_only() {
    let mut h = Harness::secure();
    h.login();
    let offsets = |h: &Harness| -> Vec<u64> {
        h.events
            .iter()
            .filter_map(|e| match e {
                Event::Storage {
                    request: StorageRequest::OpenRead { offset, .. },
                    ..
                } => Some(*offset),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        h.send("REST 5\nTYPE I\nEPSV\nRETR hello.txt"),
        [350, 200, 229, 150, 226]
    );
    assert_eq!(h.send("EPSV\nRETR hello.txt"), [229, 150, 226]);
    assert_eq!(offsets(&h), [5, 0]);
    assert_eq!(h.send("TYPE A\nREST 5\nREST 0"), [200, 504, 350]);
}

#[test]
fn store_append_unique() {
    let mut h = Harness::secure();
    h.login();
    assert_eq!(h.send("EPSV\nSTOR new.bin"), [229, 150, 226]);
    assert_eq!(h.file("/new.bin"), Some(&b"uploaded bytes"[..]));
    assert_eq!(h.send("EPSV\nSTOU"), [229, 150, 226]);
    assert!(h.file("/unique.1").is_some());
    assert_eq!(
        h.send("EPSV\nSTOR nodir/x.bin\nEPSV\nSTOR sub"),
        [229, 550, 229, 550]
    );
    assert_eq!(h.send("REST 5\nEPSV\nSTOR hello.txt"), [350, 229, 150, 226]);
    assert_eq!(h.file("/hello.txt"), Some(&b"hellouploaded bytes"[..]));
}

#[test]
fn upload_without_close_notify_is_not_published() {
    let mut h = Harness::secure();
    h.login();
    h.data.close_notify = false;
    assert_eq!(h.send("EPSV\nSTOR truncated.bin"), [229, 150, 426]);
    assert_eq!(h.file("/truncated.bin"), None);
    assert!(
        h.actions
            .iter()
            .any(|a| matches!(a, Action::FinishUpload { commit: false, .. }))
    );
    // Under PROT C there is no close_notify to expect.
    let mut h = Harness::new(allow_all(), TlsMode::Explicit);
    h.data.close_notify = false;
    assert_eq!(
        h.send("USER alice\nPASS secret\nEPSV\nSTOR plain.bin"),
        [331, 230, 229, 150, 226]
    );
    assert!(h.file("/plain.bin").is_some());
}

#[test]
fn abor_and_stat_during_a_transfer() {
    let mut h = Harness::secure();
    h.login();
    h.data.hold = true;
    assert_eq!(h.send("EPSV\nRETR hello.txt"), [229, 150]);
    // Other commands wait for the transfer; STAT and ABOR do not.
    assert_eq!(h.send("PWD\nSTAT"), [211]);
    assert!(h.last().text().contains("Transferring /hello.txt"));
    assert_eq!(h.send("ABOR"), [426, 226, 257], "ABOR, then the queued PWD");
    assert_eq!(h.send("ABOR"), [225]);
}

#[test]
fn data_connect_and_stall_timeouts() {
    let mut h = Harness::secure();
    h.login();
    h.data.hold = true;
    assert_eq!(h.send("EPSV\nRETR hello.txt"), [229, 150]);
    assert_eq!(h.advance(Duration::from_secs(31)), [425]);
    assert_eq!(h.send("NOOP"), [200]);
}

#[test]
fn login_and_idle_timeouts() {
    let mut h = Harness::secure();
    assert_eq!(h.advance(Duration::from_secs(61)), [421]);
    assert!(h.closed);
    let mut h = Harness::secure();
    h.login();
    assert_eq!(h.advance(Duration::from_secs(200)), Vec::<u16>::new());
    assert_eq!(h.send("NOOP"), [200]);
    assert_eq!(
        h.advance(Duration::from_secs(200)),
        Vec::<u16>::new(),
        "NOOP reset the idle timer"
    );
    assert_eq!(h.advance(Duration::from_secs(101)), [421]);
    assert!(h.closed);
    // A spurious timeout does nothing.
    let mut h = Harness::secure();
    h.session.handle_timeout(h.now);
    h.pump();
    assert!(!h.closed);
}

#[test]
fn tls_handshake_timeout_closes() {
    let mut h = Harness::secure();
    h.auto_tls = false;
    assert_eq!(h.send("AUTH TLS"), [234]);
    h.advance(Duration::from_secs(16));
    assert!(h.closed);
}

// ----- listings and file commands ------------------------------------------------

#[test]
fn listings() {
    let mut h = Harness::secure();
    h.login();
    let payload = |h: &Harness| String::from_utf8(h.sent_listings.last().unwrap().clone()).unwrap();
    assert_eq!(h.send("EPSV\nLIST"), [229, 150, 226]);
    let list = payload(&h);
    assert!(
        list.contains(" hello.txt\r\n") && list.contains(" sub\r\n") && !list.contains(".hidden"),
        "{list}"
    );
    let entries: Vec<_> = ftps_proto::listing::parse_listing(&list)
        .map(Result::unwrap)
        .collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(h.send("EPSV\nLIST -a"), [229, 150, 226]);
    assert!(payload(&h).contains(".hidden"));
    assert_eq!(h.send("EPSV\nNLST sub"), [229, 150, 226]);
    assert_eq!(payload(&h), "日本語.txt\r\n");
    assert_eq!(h.send("EPSV\nMLSD"), [229, 150, 226]);
    let mlsd = payload(&h);
    let parsed: Vec<MlsxEntry> = ftps_proto::facts::parse_mlsd(&mlsd)
        .map(Result::unwrap)
        .collect();
    assert!(
        parsed
            .iter()
            .any(|e| e.pathname == "hello.txt" && e.size() == Some(24))
    );
    assert_eq!(h.send("OPTS MLST size;\nEPSV\nMLSD"), [200, 229, 150, 226]);
    assert!(payload(&h).starts_with("size="), "{}", payload(&h));
    assert_eq!(h.send("EPSV\nLIST nope"), [229, 550]);
}

#[test]
fn file_commands() {
    let mut h = Harness::secure();
    h.login();
    assert_eq!(
        h.send("SIZE hello.txt\nSIZE sub\nSIZE nope"),
        [213, 550, 550]
    );
    assert_eq!(h.replies[h.replies.len() - 3].first_line(), "24");
    assert_eq!(h.send("MDTM hello.txt"), [213]);
    assert_eq!(h.last().first_line(), "20190304050607");
    assert_eq!(h.send("MLST hello.txt"), [250]);
    let entry = MlsxEntry::parse_mlst_line(&h.last().lines()[1]).unwrap();
    assert_eq!(
        (entry.pathname.as_str(), entry.size()),
        ("/hello.txt", Some(24))
    );
    assert_eq!(
        h.send("MFMT 20200101000000 hello.txt\nMFMT 20200101000000 nope"),
        [213, 550]
    );
    assert_eq!(h.send("MKD newdir\nMKD newdir"), [257, 550]);
    assert_eq!(
        h.replies[h.replies.len() - 2].first_line(),
        "\"/newdir\" created"
    );
    assert_eq!(h.send("RMD newdir\nRMD sub\nRMD /"), [250, 550, 550]);
    assert_eq!(
        h.send("RNTO x\nRNFR nope\nRNFR hello.txt\nNOOP\nRNTO x"),
        [503, 550, 350, 200, 503]
    );
    // A line that does not parse ends a pending RNFR too (issue 14's third review, m3).
    assert_eq!(
        h.send("RNFR hello.txt\nFOO\nRNTO x\nRNFR hello.txt\nRNTO\nRNTO x"),
        [350, 500, 503, 350, 501, 503]
    );
    assert_eq!(h.send("RNFR hello.txt\nRNTO renamed.txt"), [350, 250]);
    assert!(h.file("/renamed.txt").is_some() && h.file("/hello.txt").is_none());
    assert_eq!(
        h.send("DELE renamed.txt\nDELE renamed.txt\nDELE sub"),
        [250, 550, 550]
    );
}

#[test]
fn navigation_stays_inside_the_root() {
    let mut h = Harness::secure();
    h.login();
    assert_eq!(h.send("CWD sub\nPWD"), [250, 257]);
    assert_eq!(h.last().first_line(), "\"/sub\" is the current directory");
    assert_eq!(h.send("CDUP\nCDUP\nXPWD"), [250, 250, 257]);
    assert_eq!(h.last().first_line(), "\"/\" is the current directory");
    assert_eq!(h.send("CWD ../../etc\nXCWD hello.txt"), [550, 550]);
    let asked: Vec<String> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Storage {
                request: StorageRequest::Stat(p),
                ..
            } => Some(p.to_string()),
            _ => None,
        })
        .collect();
    assert!(asked.contains(&"/etc".to_owned()), "{asked:?}");
    assert_eq!(h.send("EPSV\nRETR ../../../etc/passwd"), [229, 550]);
    assert!(h.events.iter().any(|e| matches!(e, Event::Storage { request: StorageRequest::OpenRead { path, .. }, .. } if path.as_str() == "/etc/passwd")));
}

#[test]
fn parameters_and_errors() {
    let mut h = Harness::secure();
    h.login();
    assert_eq!(
        h.send("TYPE A\nTYPE I\nTYPE L 8\nTYPE E\nTYPE L 7"),
        [200, 200, 200, 504, 504]
    );
    assert_eq!(
        h.send("MODE S\nMODE B\nSTRU F\nSTRU R"),
        [200, 504, 200, 504]
    );
    assert_eq!(
        h.send("XYZZY\nREST -1\nREST 18446744073709551616\nEPSV 3"),
        [500, 501, 501, 522]
    );
    let long = format!("NOOP {}\nNOOP", "x".repeat(5000));
    assert_eq!(h.send_segment(&long), [500, 200]);
    assert_eq!(
        h.send("OPTS UTF8 ON\nOPTS UTF8 OFF\nOPTS FOO"),
        [200, 504, 501]
    );
    assert_eq!(
        h.send("SITE CHMOD 644 x\nSMNT /x\nALLO 10\nLANG en"),
        [502, 502, 202, 502]
    );
    assert_eq!(h.send("RETR a\u{0}b"), [501]);
}

#[test]
fn feat_lists_what_is_supported() {
    let mut h = Harness::secure();
    assert_eq!(h.send("FEAT"), [211]);
    let f = ftps_proto::Features::from_reply(h.last()).unwrap();
    for name in [
        "AUTH", "PBSZ", "PROT", "EPSV", "PASV", "MDTM", "MFMT", "MLST", "SIZE", "UTF8", "HOST",
        "TVFS",
    ] {
        assert!(f.supports(name), "{name}");
    }
    assert!(f.rest_stream());
    assert!(!f.supports("EPRT") && !f.supports("CCC"), "off by default");
    assert_eq!(f.auth_mechanisms(), ["TLS", "SSL"]);
    assert!(f.mlst_facts().unwrap().iter().all(|f| f.enabled));
    let mut h = Harness::new(
        ServerConfig::default()
            .with_active_mode(true)
            .with_allow_ccc(true),
        TlsMode::Explicit,
    );
    h.send("FEAT");
    let f = ftps_proto::Features::from_reply(h.last()).unwrap();
    assert!(f.supports("EPRT") && f.supports("CCC"));
}

/// A storage that writes objects whole: FEAT leaves MFMT out, APPE and MFMT get 502,
/// REST + STOR 554 (RFC 3659 §5.3); restarted downloads, whole uploads, REST STREAM stay.
#[test]
fn capabilities_the_storage_lacks_are_refused_and_not_offered() {
    let mut h = Harness::new(
        ServerConfig::default().with_storage(StorageCapabilities::whole_objects()),
        TlsMode::Explicit,
    );
    h.login();
    h.send("FEAT");
    let f = ftps_proto::Features::from_reply(h.last()).unwrap();
    assert!(!f.supports("MFMT"), "MFMT offered");
    assert!(f.rest_stream() && f.supports("MDTM") && f.supports("SIZE"));
    let before = h.file("/hello.txt").map(<[u8]>::to_vec);
    assert_eq!(h.send("EPSV\nAPPE hello.txt"), [229, 502]);
    assert_eq!(h.send("MFMT 20200101000000 hello.txt"), [502]);
    assert_eq!(h.send("REST 5\nSTOR hello.txt"), [350, 554]);
    assert_eq!(h.file("/hello.txt").map(<[u8]>::to_vec), before);
    // The data setup stays for the next transfer, as for any refused one.
    assert_eq!(h.send("STOR new.bin"), [150, 226]);
    assert_eq!(h.send("REST 3\nEPSV\nRETR hello.txt"), [350, 229, 150, 226]);
    // Everything, by default.
    let mut h = Harness::secure();
    h.login();
    h.send("FEAT");
    let f = ftps_proto::Features::from_reply(h.last()).unwrap();
    assert!(f.supports("MFMT"));
}

#[test]
fn site_is_pluggable() {
    let mut h = Harness::new(
        ServerConfig::default().with_site_commands(true),
        TlsMode::Explicit,
    );
    h.login();
    assert_eq!(h.send("SITE CHMOD 644 x"), [200]);
    assert_eq!(h.last().first_line(), "SITE CHMOD 644 x ok");
}

#[test]
fn pipelined_commands_run_in_order_and_input_is_bounded() {
    let mut h = Harness::secure();
    assert_eq!(h.send("AUTH TLS"), [234]);
    assert_eq!(
        h.send_segment(
            "USER alice\nPASS secret\nPBSZ 0\nPROT P\nTYPE I\nPWD\nCWD sub\nPWD\nEPSV\nNLST"
        ),
        [331, 230, 200, 200, 200, 257, 250, 257, 229, 150, 226]
    );
    // While a login check is outstanding, at most 16 lines are taken.
    let mut h = Harness::new(allow_all(), TlsMode::Explicit);
    h.session
        .handle_control_input(b"USER alice\r\nPASS secret\r\n", h.now);
    let flood = "NOOP\r\n".repeat(100);
    let used = h.session.handle_control_input(flood.as_bytes(), h.now);
    assert!(used <= 17 * 6, "took {used} bytes while blocked");
}

#[test]
fn a_client_that_does_not_take_its_replies_stops_being_read() {
    // Issue 13's second review, finding B: FEAT pipelined without reading. The session
    // takes input only while its unsent replies are under a bound; once the adapter has
    // sent them, it takes more, in order, and every command is answered.
    let mut h = Harness::new(allow_all(), TlsMode::Explicit);
    let flood = "FEAT\r\n".repeat(10_000);
    let used = h.session.handle_control_input(flood.as_bytes(), h.now);
    let unsent: usize = std::iter::from_fn(|| h.session.poll_action())
        .map(|a| match a {
            Action::Send(b) => b.len(),
            _ => 0,
        })
        .sum();
    assert!(used < 2_000, "took {used} bytes with its replies unsent");
    assert!(unsent < 32 * 1024, "queued {unsent} reply bytes");
    let mut rest = &flood.as_bytes()[used..];
    let mut answered = used / 6;
    for _ in 0..100_000 {
        if rest.is_empty() {
            break;
        }
        let n = h.session.handle_control_input(rest, h.now);
        assert!(n > 0, "input taken again once the replies went out");
        rest = &rest[n..];
        answered += n / 6;
        while h.session.poll_action().is_some() {}
    }
    assert!(rest.is_empty());
    assert_eq!(answered, 10_000);
}

#[test]
fn quit_during_transfer_aborts_it() {
    let mut h = Harness::secure();
    h.login();
    h.data.hold = true;
    assert_eq!(h.send("EPSV\nSTOR big.bin\nQUIT"), [229, 150, 221]);
    assert!(h.closed);
    assert!(
        h.actions
            .iter()
            .any(|a| matches!(a, Action::AbortData { .. }))
    );
}

#[test]
fn late_and_unknown_events_are_ignored() {
    let mut h = Harness::secure();
    h.login();
    let ghost = data_id_of_any(&mut h);
    h.session.handle_io(
        IoEvent::DataEnded {
            id: ghost,
            bytes: 1,
            end: DataEnd::Complete { close_notify: true },
        },
        h.now,
    );
    h.session.handle_io(
        IoEvent::UploadFinished {
            id: ghost,
            result: Ok(()),
        },
        h.now,
    );
    h.pump();
    assert_eq!(h.send("NOOP"), [200]);
}

fn data_id_of_any(h: &mut Harness) -> DataId {
    h.send("EPSV\nRETR hello.txt");
    data_id_of(h)
}

#[test]
fn http_requests_on_the_control_connection_are_not_answered() {
    // ALPACA: a browser tricked into talking to the FTP port gets no reply to render.
    for request in ["GET / HTTP/1.1", "POST /login HTTP/1.0", "get /x HTTP/1.1"] {
        let mut h = Harness::secure();
        assert_eq!(
            h.send_segment(&format!("{request}\nHost: example\n\nNOOP")),
            Vec::<u16>::new(),
            "{request}"
        );
        assert!(h.closed, "{request}");
    }
    // An FTP line that merely contains the text is a normal command.
    let mut h = Harness::secure();
    assert_eq!(h.send("FEAT\nHOST GET-HTTP/1.1"), [211, 220]);
    assert!(!h.closed);
}

#[test]
fn a_proxy_header_from_the_client_closes_the_session_unanswered() {
    // v1 and v2 as the first bytes, whole or split anywhere in their first bytes: the
    // session takes nothing until it can tell, then closes without a reply.
    let v2: &[u8] = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c";
    let v1: &[u8] = b"PROXY TCP4 10.1.1.1 127.0.0.1 1111 21\r\nUSER a\r\n";
    // (decided on "PROXY " and on v2's first 8 bytes)
    for (header, decided) in [(v1, 6), (v2, 8)] {
        for split in 1..decided {
            let mut h = Harness::secure();
            let before = h.replies.len();
            assert_eq!(
                h.session.handle_control_input(&header[..split], h.now),
                0,
                "{split}"
            );
            h.pump();
            assert!(!h.closed, "decided on {split} bytes");
            h.offer(header);
            assert!(h.closed, "{header:?} split at {split}");
            assert_eq!(h.replies.len(), before, "answered");
            assert!(h.events.contains(&Event::ProxyHeader));
        }
    }
    // Only the first bytes: later, "PROXY" is an unknown command like any other.
    let mut h = Harness::new(allow_all(), TlsMode::Explicit);
    assert_eq!(
        h.send("NOOP\nPROXY TCP4 1.2.3.4 127.0.0.1 1 21"),
        [200, 500]
    );
    assert!(!h.closed);
    // A first command that merely starts alike is a command.
    let mut h = Harness::new(allow_all(), TlsMode::Explicit);
    assert_eq!(h.send("PROT P"), [503]);
    assert!(!h.closed);
}

#[test]
fn telnet_floods_long_lines_and_stray_line_ends() {
    // 10k bytes of Telnet IAC IP / IAC DM, then a command: the command runs.
    let mut h = Harness::new(allow_all(), TlsMode::Explicit);
    let mut input = b"\xff\xf4\xff\xf2".repeat(2500);
    input.extend_from_slice(b"NOOP\r\n");
    h.offer(&input);
    assert_eq!(h.last().code().get(), 200);
    // A 1 MiB line with no line end: one 500, then the next command works.
    let before = h.replies.len();
    h.offer(&vec![b'x'; 1 << 20]);
    h.offer(b"\r\nNOOP\r\n");
    let codes: Vec<u16> = h.replies[before..].iter().map(|r| r.code().get()).collect();
    assert_eq!(codes, [500, 200]);
    // A bare CR never splits a line (the CR makes the argument invalid), a bare LF ends one.
    assert_eq!(h.send_segment("USER a\rPASS b"), [501]);
    assert_eq!(h.send_segment("NOOP\nNOOP"), [200, 200]);
}

// Issue 13, finding 17: anonymous sessions change nothing, unless uploads are granted, and
// then only new files (the core refuses before any storage request or data connection).
#[test]
fn anonymous_is_read_only_and_uploads_only_add_files() {
    let writes = "STOR x\nAPPE x\nSTOU\nDELE x\nRMD d\nMKD d\nRNFR x\nRNTO y\nMFMT 20200101000000 x\nSITE CHMOD 777 x";
    let config = allow_all().with_anonymous(true).with_site_commands(true);
    let mut h = Harness::new(config.clone(), TlsMode::Explicit);
    assert_eq!(h.send("USER anonymous\nPASS me@example.com"), [331, 230]);
    assert_eq!(h.send(writes), [550; 10]);
    // Reading still works (no data connection yet: 425).
    assert_eq!(h.send("PWD\nRETR x"), [257, 425]);

    let mut h = Harness::new(
        config.clone().with_anonymous_upload(true),
        TlsMode::Explicit,
    );
    assert_eq!(h.send("USER anonymous\nPASS me@example.com"), [331, 230]);
    // STOR and STOU go on (to the data connection check); the rest is refused.
    assert_eq!(
        h.send("STOR x\nSTOU\nREST 5\nSTOR x\nAPPE x\nDELE x\nMKD d\nRNFR x"),
        [425, 425, 350, 550, 550, 550, 550, 550]
    );

    // A named user on the same server is not limited.
    let mut h = Harness::new(config, TlsMode::Explicit);
    assert_eq!(h.send("USER alice\nPASS secret\nMKD d"), [331, 230, 257]);
}

// Issue 15: what a user may do is the authenticator's answer, enforced by the core for
// every command before anything reaches the storage or a data connection.
#[test]
fn grants_decide_every_command() {
    let writes = "STOR x\nAPPE x\nSTOU\nDELE x\nRMD d\nMKD d\nRNFR x\nRNTO y\nMFMT 20200101000000 x\nSITE CHMOD 777 x";
    let config = allow_all().with_site_commands(true);

    // Read-only: every write 550; reading goes on (to the data connection check: 425).
    let mut h = Harness::new(config.clone(), TlsMode::Explicit);
    h.grants = Some(Grants::new(Permissions::READ_ONLY));
    assert_eq!(h.send("USER alice\nPASS secret"), [331, 230]);
    assert_eq!(h.send(writes), [550; 10]);
    assert!(
        h.last().text().contains("Permission denied"),
        "{:?}",
        h.last()
    );
    assert_eq!(
        h.send("SIZE hello.txt\nRETR hello.txt\nLIST\nMLSD"),
        [213, 425, 425, 425]
    );

    // A drop box: upload only. No listing, no reading, no facts; new files only.
    let mut h = Harness::new(config.clone(), TlsMode::Explicit);
    h.grants = Some(Grants::new(Permissions::NONE.with(Permission::Upload)));
    assert_eq!(h.send("USER alice\nPASS secret"), [331, 230]);
    assert_eq!(
        h.send("LIST\nLIST -la /sub\nNLST\nMLSD sub\nMLST hello.txt\nSTAT hello.txt\nRETR hello.txt\nSIZE hello.txt\nMDTM hello.txt"),
        [550; 9]
    );
    assert_eq!(
        h.send("STOR new.txt\nSTOU\nREST 5\nSTOR x\nAPPE x\nDELE hello.txt\nRNFR hello.txt"),
        [425, 425, 350, 550, 550, 550, 550]
    );
    // A STOR of a name that exists is refused by the storage (create_new), not replaced.
    assert_eq!(h.send("PASV\nSTOR hello.txt"), [227, 550]);
    assert_eq!(
        h.file("/hello.txt"),
        Some(&b"hello from the ftps lab\n"[..])
    );
    // A new name goes through.
    assert_eq!(h.send("PASV\nSTOR new.txt"), [227, 150, 226]);
    assert_eq!(h.file("/new.txt"), Some(&b"uploaded bytes"[..]));

    // Per directory: read-only at the root, everything in /sub and beneath.
    let mut h = Harness::new(config, TlsMode::Explicit);
    h.grants = Some(
        Grants::new(Permissions::READ_ONLY)
            .with_dir(VirtualPath::root().resolve("/sub"), Permissions::ALL),
    );
    assert_eq!(h.send("USER alice\nPASS secret"), [331, 230]);
    assert_eq!(h.send("MKD /d\nMKD /sub/d\nMKD sub/e"), [550, 257, 257]);
    assert_eq!(h.send("CWD sub\nMKD f\nCWD /\nMKD f"), [250, 257, 250, 550]);
    // A rename needs the permission at both names.
    assert_eq!(h.send("RNFR /hello.txt"), [550]);
    assert_eq!(h.send("RNFR /sub/d\nRNTO /d"), [350, 550]);
    assert_eq!(h.send("RNFR /sub/d\nRNTO /sub/g"), [350, 250]);
    // MLST tells what is allowed where.
    h.send("MLST /hello.txt");
    assert!(
        h.last().lines().iter().any(|l| l.contains("perm=r;")),
        "{:?}",
        h.last()
    );
    // /sub's own name is the read-only root's: no rename (f) or removal (d) of it.
    h.send("MLST /sub");
    assert!(
        h.last().lines().iter().any(|l| l.contains("perm=lcmpe;")),
        "{:?}",
        h.last()
    );
    assert_eq!(h.send("RMD /sub\nRNFR /sub"), [550, 550]);
}

// Issue 15: an authenticator that cannot check a login makes the session end with 421,
// at once (no delay), and it is not a failed login.
#[test]
fn an_unavailable_authenticator_is_421_and_not_a_failure() {
    let mut h = Harness::new(allow_all(), TlsMode::Explicit);
    h.send("USER alice");
    h.session.handle_control_input(b"PASS secret\r\n", h.now);
    let token = match h.session.poll_event() {
        Some(Event::Login(req)) => req.token,
        other => panic!("{other:?}"),
    };
    h.session
        .answer_login(token, LoginAnswer::Unavailable, h.now);
    h.pump();
    assert_eq!(h.last().code().get(), 421);
    assert!(h.closed);
}

// Issue 13's third review: REIN before a login re-armed the login timer (a session could
// stay forever without logging in); a session could log in and out without end (40,000
// log lines a second); every spelling of "anonymous" counted as a user of its own.
#[test]
fn rein_does_not_extend_the_login_timeout() {
    let mut h = Harness::new(allow_all(), TlsMode::Explicit);
    assert!(h.advance(Duration::from_secs(40)).is_empty());
    assert_eq!(h.send("REIN"), [220]);
    assert_eq!(h.advance(Duration::from_secs(25)), [421]);
    assert!(h.closed);
}

#[test]
fn anonymous_is_one_user_and_logins_per_session_are_bounded() {
    let config = allow_all().with_anonymous(true);
    let mut h = Harness::new(config, TlsMode::Explicit);
    assert_eq!(h.send("USER AnOnYmOuS\nPASS guest"), [331, 230]);
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::LoggedIn { user, anonymous: true } if user == "anonymous"
    )));
    for _ in 1..16 {
        assert_eq!(h.send("REIN\nUSER ftp\nPASS guest"), [220, 331, 230]);
    }
    let outs = h
        .events
        .iter()
        .filter(|e| matches!(e, Event::LoggedOut))
        .count();
    assert_eq!(outs, 15);
    // Sixteen logins in one session: the next REIN closes it.
    assert_eq!(h.send("REIN"), [421]);
    assert!(h.closed);
}

// draft-bryan-ftpext-hash-02: HASH asks the storage (the core never hashes) and words its
// reply `213 <algorithm> <start>-<end> <hex> <pathname>`; OPTS HASH selects; RANG ranges.
#[test]
fn hash_opts_hash_and_rang() {
    use ftps_proto::hash::{HashAlgorithm, HashReply};
    let mut h = Harness::secure();
    h.login();
    let hashes = |h: &Harness| -> Vec<(String, HashAlgorithm, u64, Option<u64>)> {
        h.events
            .iter()
            .filter_map(|e| match e {
                Event::Storage {
                    request:
                        StorageRequest::Hash {
                            path,
                            algorithm,
                            start,
                            end,
                        },
                    ..
                } => Some((path.to_string(), *algorithm, *start, *end)),
                _ => None,
            })
            .collect()
    };

    // FEAT offers every algorithm, SHA-256 selected, and RANG.
    assert_eq!(h.send("FEAT"), [211]);
    let f = ftps_proto::Features::from_reply(h.last()).unwrap();
    assert_eq!(f.params("HASH"), Some("SHA-1;SHA-256*;SHA-512;MD5;CRC32"));
    assert!(f.supports("RANG"));

    // The whole file, with the default algorithm.
    assert_eq!(h.send("HASH hello.txt"), [213]);
    let r = HashReply::parse(h.last()).unwrap();
    assert_eq!(
        (r.algorithm, r.start, r.end, r.path.as_str()),
        (HashAlgorithm::Sha256, 0, 24, "hello.txt")
    );
    assert_eq!(r.hex.len(), 64);
    assert_eq!(
        hashes(&h).last().unwrap(),
        &("/hello.txt".to_owned(), HashAlgorithm::Sha256, 0, None)
    );

    // OPTS HASH: query, select, refuse an unknown one (the selection stays).
    assert_eq!(h.send("OPTS HASH"), [200]);
    assert_eq!(h.last().first_line(), "SHA-256");
    assert_eq!(
        h.send("OPTS HASH md5\nOPTS HASH SHA-3\nOPTS HASH"),
        [200, 501, 200]
    );
    assert_eq!(h.last().first_line(), "MD5");
    h.send("FEAT");
    let f = ftps_proto::Features::from_reply(h.last()).unwrap();
    assert_eq!(f.params("HASH"), Some("SHA-1;SHA-256;SHA-512;MD5*;CRC32"));

    // RANG covers the next HASH only; the reply shows the range asked for.
    assert_eq!(h.send("RANG 2 9\nHASH hello.txt"), [350, 213]);
    assert_eq!(
        h.replies[h.replies.len() - 2].first_line(),
        "Restarting at 2. Ending byte 9."
    );
    let r = HashReply::parse(h.last()).unwrap();
    assert_eq!((r.algorithm, r.start, r.end), (HashAlgorithm::Md5, 2, 9));
    assert_eq!(
        hashes(&h).last().unwrap(),
        &("/hello.txt".to_owned(), HashAlgorithm::Md5, 2, Some(9))
    );
    assert_eq!(h.send("HASH hello.txt"), [213]);
    assert_eq!(hashes(&h).last().unwrap().3, None);
    // RANG 1 0 resets; a start past the end is a syntax error; so is a lone number.
    assert_eq!(
        h.send("RANG 0 3\nRANG 1 0\nHASH hello.txt"),
        [350, 350, 213]
    );
    assert_eq!(hashes(&h).last().unwrap().3, None);
    assert_eq!(h.send("RANG 5 4\nRANG 5\nRANG a b"), [501, 501, 501]);
    // A range past the end of the file: 556.
    assert_eq!(h.send("RANG 0 24\nHASH hello.txt"), [350, 556]);
    assert_eq!(h.send("RANG 30 40\nHASH hello.txt"), [350, 556]);
    // A directory, a missing file, no argument.
    assert_eq!(h.send("HASH sub\nHASH nope\nHASH"), [550, 550, 501]);
    // A transfer command after RANG is refused (the range is for HASH), and the range
    // is forgotten.
    assert_eq!(
        h.send("RANG 0 3\nRETR hello.txt\nHASH hello.txt"),
        [350, 504, 213]
    );
    assert_eq!(hashes(&h).last().unwrap().3, None);
    // REIN forgets the selection.
    assert_eq!(h.send("REIN"), [220]);
    h.login();
    assert_eq!(h.send("OPTS HASH"), [200]);
    assert_eq!(h.last().first_line(), "SHA-256");
}

// HASH reads the file: it needs the download permission where the file is.
#[test]
fn hash_needs_the_download_permission() {
    let mut h = Harness::new(allow_all(), TlsMode::Explicit);
    h.grants = Some(Grants::new(Permissions::NONE.with(Permission::List)));
    assert_eq!(h.send("USER alice\nPASS secret"), [331, 230]);
    assert_eq!(h.send("HASH hello.txt\nSIZE hello.txt"), [550, 213]);
    assert!(!h.events.iter().any(|e| matches!(
        e,
        Event::Storage {
            request: StorageRequest::Hash { .. },
            ..
        }
    )));
    let mut h = Harness::new(allow_all(), TlsMode::Explicit);
    h.grants = Some(Grants::new(Permissions::READ_ONLY));
    assert_eq!(h.send("USER alice\nPASS secret"), [331, 230]);
    assert_eq!(h.send("HASH hello.txt"), [213]);
}
