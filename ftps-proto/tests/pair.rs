//! The client and server sessions talking to each other in memory (quinn-proto's `Pair`
//! idea): a fake network passes control bytes, simulates TLS handshakes and data
//! connections, and a virtual clock drives timers. This covers the client's mode logic
//! once, against the real server logic.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_proto::boundary;
use ftps_proto::client::{
    self, ClientConfig, ClientError, ConnectionMode, ListFormat, Operation, Output,
};
use ftps_proto::listing::EntryKind;
use ftps_proto::server::{
    self, ControlTlsPolicy, DataTlsPolicy, LoginAnswer, Metadata, ServerConfig, StorageError,
    StorageReply, StorageRequest, TlsInfo, TlsMode, TlsVersion,
};
use ftps_proto::{
    ClientSession, Password, Pathname, ServerSession, Timestamp, Username, VirtualPath,
};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SERVER: &str = "127.0.0.1:2121";
const CLIENT: &str = "127.0.0.1:50000";

struct Pair {
    now: Instant,
    client: ClientSession,
    server: ServerSession,
    fs: BTreeMap<String, Vec<u8>>,
    dirs: Vec<String>,
    /// Bytes each side wrote to the control connection, for inspection.
    client_sent: Vec<u8>,
    server_tls_wanted: bool,
    client_tls_wanted: bool,
    /// Passive listeners: port -> server data id.
    listeners: BTreeMap<u16, boundary::DataId>,
    /// Client active listeners: port -> client data id.
    client_listeners: BTreeMap<u16, boundary::DataId>,
    /// Data connections: client id <-> server id, and what each side asked for.
    links: Vec<(boundary::DataId, Option<boundary::DataId>)>,
    client_connect: BTreeMap<boundary::DataId, u16>,
    server_open: BTreeMap<boundary::DataId, Option<SocketAddr>>,
    client_start: BTreeMap<boundary::DataId, bool>,
    /// The byte limit of each download the client started.
    client_limits: BTreeMap<boundary::DataId, Option<u64>>,
    server_transfer: BTreeSet<boundary::DataId>,
    open_files: BTreeMap<boundary::DataId, (VirtualPath, bool, u64)>,
    /// Listings opened for data connections, already made.
    listings: BTreeMap<boundary::DataId, Vec<u8>>,
    events: Vec<client::Event>,
    downloads: Vec<Vec<u8>>,
    upload: Vec<u8>,
    // Fault injection.
    epsv_unknown: bool,
    pasv_foreign: bool,
    truncate: bool,
    server_never_connects: bool,
    hold_transfers: bool,
    client_stopped_tls: u32,
    next_port: u16,
    server_events: Vec<server::Event>,
}

fn p(s: &str) -> Pathname {
    Pathname::new(s).unwrap()
}

fn tls_info() -> TlsInfo {
    TlsInfo::new(TlsVersion::Tls13, true)
}

impl Pair {
    fn new(client: ClientConfig, server: ServerConfig, mode: TlsMode) -> Self {
        #[allow(clippy::disallowed_methods)] // The virtual clock starts at a real instant.
        let now = Instant::now();
        let server = ServerSession::new(
            Arc::new(server),
            mode,
            CLIENT.parse().unwrap(),
            SERVER.parse().unwrap(),
            now,
        );
        let client = ClientSession::new(Arc::new(client), SERVER.parse().unwrap(), now);
        let mut fs = BTreeMap::new();
        fs.insert(
            "/hello.txt".to_owned(),
            b"hello from the ftps lab\n".to_vec(),
        );
        let mut pair = Self {
            now,
            client,
            server,
            fs,
            dirs: vec!["/".to_owned()],
            client_sent: Vec::new(),
            server_tls_wanted: false,
            client_tls_wanted: false,
            listeners: BTreeMap::new(),
            client_listeners: BTreeMap::new(),
            links: Vec::new(),
            client_connect: BTreeMap::new(),
            server_open: BTreeMap::new(),
            client_start: BTreeMap::new(),
            client_limits: BTreeMap::new(),
            server_transfer: BTreeSet::new(),
            open_files: BTreeMap::new(),
            listings: BTreeMap::new(),
            events: Vec::new(),
            downloads: Vec::new(),
            upload: b"uploaded by the client".to_vec(),
            epsv_unknown: false,
            pasv_foreign: false,
            truncate: false,
            server_never_connects: false,
            hold_transfers: false,
            client_stopped_tls: 0,
            next_port: 40000,
            server_events: Vec::new(),
        };
        pair.run();
        pair
    }

    fn config(mode: ConnectionMode) -> ClientConfig {
        ClientConfig::new(
            Username::new("alice").unwrap(),
            Password::new("secret").unwrap(),
        )
        .with_mode(mode)
    }

    fn secure() -> Self {
        Self::new(
            Self::config(ConnectionMode::ExplicitRequired),
            ServerConfig::default(),
            TlsMode::Explicit,
        )
    }

    fn submit(&mut self, op: Operation) -> Result<Output, ClientError> {
        let id = self.client.submit(op, self.now);
        self.run();
        self.events
            .iter()
            .find_map(|e| match e {
                client::Event::Done { op, result } if *op == id => Some(result.clone()),
                _ => None,
            })
            .expect("operation finished")
    }

    fn ready(&self) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, client::Event::Ready { .. }))
    }

    fn run(&mut self) {
        for _ in 0..10_000 {
            if !self.step() {
                return;
            }
        }
        panic!("pair did not settle");
    }

    fn step(&mut self) -> bool {
        let now = self.now;
        let mut progressed = false;
        while let Some(a) = self.client.poll_action() {
            progressed = true;
            self.client_action(a);
        }
        while let Some(e) = self.client.poll_event() {
            progressed = true;
            self.events.push(e);
        }
        while let Some(a) = self.server.poll_action() {
            progressed = true;
            self.server_action(a);
        }
        while let Some(e) = self.server.poll_event() {
            progressed = true;
            self.server_events.push(e.clone());
            self.server_event(e);
        }
        if self.server_tls_wanted && self.client_tls_wanted {
            self.server_tls_wanted = false;
            self.client_tls_wanted = false;
            self.server.handle_io(
                server::IoEvent::ControlTlsEstablished(tls_info().with_resumed(false)),
                now,
            );
            self.client
                .handle_io(client::IoEvent::ControlTlsEstablished(tls_info()), now);
            progressed = true;
        }
        progressed |= self.link_data();
        progressed
    }

    fn client_action(&mut self, a: client::Action) {
        let now = self.now;
        match a {
            client::Action::Send(bytes) => {
                self.client_sent.extend_from_slice(&bytes);
                if self.epsv_unknown && bytes == b"EPSV\r\n" {
                    self.client
                        .handle_control_input(b"500 Unknown command.\r\n", now);
                    return;
                }
                let used = self.server.handle_control_input(&bytes, now);
                assert_eq!(used, bytes.len());
            }
            client::Action::StartControlTls => self.client_tls_wanted = true,
            client::Action::ConnectData { id, addr, tls } => {
                assert_eq!(
                    addr.ip().to_string(),
                    "127.0.0.1",
                    "the client connects to the control peer"
                );
                assert_eq!(
                    tls,
                    self.sent().contains("PROT P\r\n"),
                    "TLS on data exactly under PROT P"
                );
                self.client_connect.insert(id, addr.port());
            }
            client::Action::ListenData { id, .. } => {
                self.next_port += 1;
                self.client_listeners.insert(self.next_port, id);
                let local = SocketAddr::new("127.0.0.1".parse().unwrap(), self.next_port);
                self.client
                    .handle_io(client::IoEvent::DataListening { id, local }, now);
            }
            client::Action::StartTransfer {
                id, upload, limit, ..
            } => {
                self.client_start.insert(id, upload);
                self.client_limits.insert(id, limit);
            }
            client::Action::StopControlTls => self.client_stopped_tls += 1,
            client::Action::CloseData { .. } | client::Action::Close => {}
            other => panic!("unexpected client action {other:?}"),
        }
    }

    fn server_action(&mut self, a: server::Action) {
        let now = self.now;
        match a {
            server::Action::Send(mut bytes) => {
                if self.pasv_foreign && bytes.starts_with(b"227 ") {
                    let text = String::from_utf8(bytes)
                        .unwrap()
                        .replace("127,0,0,1,", "127,0,0,2,");
                    bytes = text.into_bytes();
                }
                let used = self.client.handle_control_input(&bytes, now);
                assert!(used == bytes.len());
            }
            server::Action::StartControlTls => self.server_tls_wanted = true,
            server::Action::Listen { id, .. } => {
                self.next_port += 1;
                self.listeners.insert(self.next_port, id);
                let local = SocketAddr::new("127.0.0.1".parse().unwrap(), self.next_port);
                self.server
                    .handle_io(server::IoEvent::DataListening { id, local }, now);
            }
            server::Action::OpenData { id, connect_to, .. } => {
                self.server_open.insert(id, connect_to);
            }
            server::Action::Transfer { id } => {
                self.server_transfer.insert(id);
            }
            server::Action::FinishUpload { id, commit } => {
                if let Some((path, true, _)) = self.open_files.remove(&id)
                    && commit
                {
                    let mut content = self.fs.get(path.as_str()).cloned().unwrap_or_default();
                    content.extend_from_slice(&self.upload);
                    self.fs.insert(path.to_string(), content);
                }
                self.server
                    .handle_io(server::IoEvent::UploadFinished { id, result: Ok(()) }, now);
            }
            server::Action::AbortData { .. }
            | server::Action::StopControlTls
            | server::Action::Close => {}
            other => panic!("unexpected server action {other:?}"),
        }
    }

    fn server_event(&mut self, e: server::Event) {
        let now = self.now;
        match e {
            server::Event::Login(req) => {
                let ok = req.user == "alice" && req.password.expose() == "secret";
                self.server.answer_login(
                    req.token,
                    if ok {
                        LoginAnswer::accepted()
                    } else {
                        LoginAnswer::Rejected
                    },
                    now,
                );
            }
            server::Event::Storage { token, request } => {
                let answer = self.storage(request);
                self.server.answer_storage(token, answer, now);
            }
            _ => {}
        }
    }

    fn meta(&self, path: &str) -> Option<Metadata> {
        let name = path.rsplit('/').next().unwrap_or("/").to_owned();
        let (kind, size) = if self.dirs.iter().any(|d| d == path) {
            (EntryKind::Directory, 0)
        } else {
            (EntryKind::File, self.fs.get(path)?.len() as u64)
        };
        Some(Metadata {
            name,
            kind,
            size,
            modified: Some(Timestamp::parse("20190304050607").unwrap()),
            mode: None,
            writable: true,
            unique: None,
        })
    }

    fn storage(&mut self, request: StorageRequest) -> Result<StorageReply, StorageError> {
        match request {
            StorageRequest::Stat(path) => self
                .meta(path.as_str())
                .map(StorageReply::Metadata)
                .ok_or(StorageError::NotFound),
            StorageRequest::List(_) => {
                let entries = self.fs.keys().filter_map(|k| self.meta(k)).collect();
                Ok(StorageReply::Entries {
                    entries,
                    now: Timestamp::parse("20261122030000").unwrap(),
                })
            }
            StorageRequest::OpenListing { id, path, format } => {
                let now = Timestamp::parse("20261122030000").unwrap();
                let bytes: Vec<u8> = self
                    .fs
                    .keys()
                    .filter_map(|k| self.meta(k))
                    .filter_map(|m| format.line(&m, &now))
                    .flat_map(String::into_bytes)
                    .collect();
                self.listings.insert(id, bytes);
                Ok(StorageReply::Opened { path, size: 0 })
            }
            StorageRequest::MakeDir(path) => {
                self.dirs.push(path.to_string());
                Ok(StorageReply::Done)
            }
            StorageRequest::RemoveDir(path) => {
                let before = self.dirs.len();
                self.dirs.retain(|d| d != path.as_str());
                if self.dirs.len() < before {
                    Ok(StorageReply::Done)
                } else {
                    Err(StorageError::NotFound)
                }
            }
            StorageRequest::RemoveFile(path) => self
                .fs
                .remove(path.as_str())
                .map(|_| StorageReply::Done)
                .ok_or(StorageError::NotFound),
            StorageRequest::Rename { from, to } => {
                let content = self
                    .fs
                    .remove(from.as_str())
                    .ok_or(StorageError::NotFound)?;
                self.fs.insert(to.to_string(), content);
                Ok(StorageReply::Done)
            }
            StorageRequest::OpenRead { id, path, offset } => {
                let size = self
                    .fs
                    .get(path.as_str())
                    .ok_or(StorageError::NotFound)?
                    .len() as u64;
                self.open_files.insert(id, (path.clone(), false, offset));
                Ok(StorageReply::Opened { path, size })
            }
            StorageRequest::OpenWrite {
                id,
                path,
                offset,
                append,
                ..
            } => {
                if !append && offset == 0 {
                    self.fs.remove(path.as_str());
                }
                self.open_files.insert(id, (path.clone(), true, offset));
                Ok(StorageReply::Opened { path, size: 0 })
            }
            _ => Err(StorageError::Other("unsupported".into())),
        }
    }

    /// Connects the two ends of data connections once both sides asked, and moves the data
    /// once both sides started the transfer.
    fn link_data(&mut self) -> bool {
        let now = self.now;
        let mut progressed = false;
        // Passive: client connect + server open on the listener's id.
        for (cid, port) in std::mem::take(&mut self.client_connect) {
            match self.listeners.get(&port).copied() {
                Some(sid) if self.server_open.contains_key(&sid) => {
                    self.server_open.remove(&sid);
                    self.links.push((cid, Some(sid)));
                    self.client
                        .handle_io(client::IoEvent::DataConnected { id: cid }, now);
                    let tls = self.server.protection() == ftps_proto::ProtectionLevel::Private;
                    self.server.handle_io(
                        server::IoEvent::DataConnected {
                            id: sid,
                            peer: CLIENT.parse().unwrap(),
                            tls: tls.then(tls_info),
                        },
                        now,
                    );
                    progressed = true;
                }
                _ => {
                    self.client_connect.insert(cid, port);
                }
            }
        }
        // Active: server connects to the client's listener.
        for (sid, target) in std::mem::take(&mut self.server_open) {
            let listener = target.and_then(|t| self.client_listeners.get(&t.port()).copied());
            match listener.filter(|_| !self.server_never_connects) {
                Some(cid) => {
                    self.links.push((cid, Some(sid)));
                    self.client
                        .handle_io(client::IoEvent::DataConnected { id: cid }, now);
                    let tls = self.server.protection() == ftps_proto::ProtectionLevel::Private;
                    self.server.handle_io(
                        server::IoEvent::DataConnected {
                            id: sid,
                            peer: CLIENT.parse().unwrap(),
                            tls: tls.then(tls_info),
                        },
                        now,
                    );
                    progressed = true;
                }
                None => {
                    self.server_open.insert(sid, target);
                }
            }
        }
        // Transfers.
        for (cid, sid) in self.links.clone() {
            let Some(sid) = sid else { continue };
            if self.hold_transfers
                || !self.client_start.contains_key(&cid)
                || !self.server_transfer.contains(&sid)
            {
                continue;
            }
            let upload = self.client_start.remove(&cid).unwrap();
            assert!(self.server_transfer.remove(&sid));
            self.links.retain(|(c, _)| *c != cid);
            let bytes = if upload {
                self.upload.len() as u64
            } else {
                let data = match self.listings.remove(&sid) {
                    Some(listing) => listing,
                    None => {
                        let (path, _, offset) = self.open_files.get(&sid).cloned().unwrap();
                        self.fs[path.as_str()][offset as usize..].to_vec()
                    }
                };
                let n = data.len() as u64;
                self.downloads.push(data);
                n
            };
            let end = boundary::DataEnd::Complete {
                close_notify: !self.truncate,
            };
            self.server.handle_io(
                server::IoEvent::DataEnded {
                    id: sid,
                    bytes,
                    end: boundary::DataEnd::Complete { close_notify: true },
                },
                now,
            );
            self.client.handle_io(
                client::IoEvent::DataEnded {
                    id: cid,
                    bytes,
                    end,
                },
                now,
            );
            progressed = true;
        }
        progressed
    }

    fn sent(&self) -> String {
        String::from_utf8_lossy(&self.client_sent).into_owned()
    }
}

#[test]
fn explicit_required_logs_in_and_runs_every_operation() {
    let mut pair = Pair::secure();
    assert!(pair.ready());
    assert!(pair.client.is_secure());
    let sent = pair.sent();
    assert!(
        sent.starts_with(
            "AUTH TLS\r\nUSER alice\r\nPASS secret\r\nFEAT\r\nOPTS UTF8 ON\r\nPBSZ 0\r\nPROT P\r\n"
        ),
        "{sent}"
    );
    assert!(pair.client.features().supports("MLST"));

    // A raw command the session runs itself is refused before it is sent; others go.
    let before = pair.sent().len();
    for refused in [
        "PROT C",
        "PASV",
        "USER bob",
        "RNFR hello.txt",
        "TYPE A",
        "CCC",
    ] {
        let command = ftps_proto::Command::parse(refused.as_bytes()).unwrap();
        assert!(
            matches!(
                pair.submit(Operation::Raw(command)),
                Err(ClientError::Unsupported(_))
            ),
            "{refused}"
        );
    }
    assert_eq!(pair.sent().len(), before, "a refused raw command was sent");
    let syst = ftps_proto::Command::parse(b"SYST").unwrap();
    assert!(
        matches!(pair.submit(Operation::Raw(syst)), Ok(Output::Reply(r)) if r.code().get() == 215)
    );
    assert!(pair.client.is_secure());

    assert!(matches!(pair.submit(Operation::Pwd), Ok(Output::Path(p)) if p == "/"));
    assert!(matches!(
        pair.submit(Operation::Size(p("hello.txt"))),
        Ok(Output::Size(24))
    ));
    assert!(
        matches!(pair.submit(Operation::Modified(p("hello.txt"))), Ok(Output::Modified(t)) if t.to_string() == "20190304050607")
    );
    match pair.submit(Operation::Retrieve {
        path: p("hello.txt"),
        offset: 0,
        ascii: false,
    }) {
        Ok(Output::Transferred { bytes: 24, reply }) => assert_eq!(reply.code().get(), 226),
        other => panic!("{other:?}"),
    }
    assert_eq!(pair.downloads.last().unwrap(), b"hello from the ftps lab\n");
    assert!(matches!(
        pair.submit(Operation::Retrieve {
            path: p("hello.txt"),
            offset: 6,
            ascii: false
        }),
        Ok(Output::Transferred { bytes: 18, .. })
    ));
    assert!(pair.sent().contains("REST 6\r\nRETR hello.txt\r\n"));
    assert!(matches!(
        pair.submit(Operation::Store {
            path: p("new.bin"),
            offset: 0,
            append: false,
            ascii: false
        }),
        Ok(Output::Transferred { .. })
    ));
    assert_eq!(pair.fs["/new.bin"], b"uploaded by the client");
    assert!(matches!(
        pair.submit(Operation::Store {
            path: p("new.bin"),
            offset: 0,
            append: true,
            ascii: false
        }),
        Ok(Output::Transferred { .. })
    ));
    assert_eq!(pair.fs["/new.bin"].len(), 44);
    assert!(matches!(
        pair.submit(Operation::List {
            path: None,
            format: ListFormat::Mlsd
        }),
        Ok(Output::Transferred { .. })
    ));
    let mlsd = String::from_utf8(pair.downloads.last().unwrap().clone()).unwrap();
    assert!(
        mlsd.contains(" hello.txt\r\n") && mlsd.contains(" new.bin\r\n"),
        "{mlsd}"
    );
    assert!(
        matches!(pair.submit(Operation::Mlst(Some(p("hello.txt")))), Ok(Output::Entry(e)) if e.size() == Some(24))
    );
    assert!(matches!(pair.submit(Operation::Mkd(p("dir"))), Ok(Output::Path(d)) if d == "/dir"));
    assert!(pair.submit(Operation::Cwd(p("dir"))).is_ok());
    assert!(pair.submit(Operation::Cdup).is_ok());
    assert!(pair.submit(Operation::Rmd(p("dir"))).is_ok());
    assert!(
        pair.submit(Operation::Rename {
            from: p("new.bin"),
            to: p("renamed.bin")
        })
        .is_ok()
    );
    assert!(pair.fs.contains_key("/renamed.bin"));
    assert!(pair.submit(Operation::Dele(p("renamed.bin"))).is_ok());
    assert!(matches!(pair.submit(Operation::Noop), Ok(Output::Reply(r)) if r.code().get() == 200));
    // A refusal fails that operation only.
    assert!(
        matches!(pair.submit(Operation::Retrieve { path: p("nope"), offset: 0, ascii: false }), Err(ClientError::Refused(r)) if r.code().get() == 550)
    );
    assert!(
        matches!(pair.submit(Operation::Dele(p("nope"))), Err(ClientError::Refused(r)) if r.code().get() == 550)
    );
    assert!(pair.submit(Operation::Noop).is_ok());
    assert!(pair.submit(Operation::Quit).is_ok());
    assert!(pair.client.is_closed());
    assert!(pair.events.contains(&client::Event::Closed { error: None }));
    // After QUIT nothing runs.
    assert!(matches!(
        pair.submit(Operation::Noop),
        Err(ClientError::Closed)
    ));
}

#[test]
fn implicit_mode_starts_with_tls_and_still_sends_pbsz_prot() {
    let mut pair = Pair::new(
        Pair::config(ConnectionMode::Implicit),
        ServerConfig::default(),
        TlsMode::Implicit,
    );
    assert!(pair.ready() && pair.client.is_secure());
    let sent = pair.sent();
    assert!(
        sent.starts_with("USER alice\r\n") && sent.contains("PBSZ 0\r\nPROT P\r\n"),
        "{sent}"
    );
    assert!(!sent.contains("AUTH"));
    assert!(matches!(
        pair.submit(Operation::Retrieve {
            path: p("hello.txt"),
            offset: 0,
            ascii: false
        }),
        Ok(Output::Transferred { bytes: 24, .. })
    ));
}

fn plain_only_server() -> ServerConfig {
    ServerConfig::default()
        .with_tls_available(false)
        .with_control_tls(ControlTlsPolicy::Allow)
        .with_data_tls(DataTlsPolicy::Allow)
}

#[test]
fn explicit_required_against_a_plain_server_fails_before_user() {
    let pair = Pair::new(
        Pair::config(ConnectionMode::ExplicitRequired),
        plain_only_server(),
        TlsMode::Explicit,
    );
    assert!(!pair.ready());
    assert!(pair.events.contains(&client::Event::Closed {
        error: Some(ClientError::TlsUnavailable)
    }));
    let sent = pair.sent();
    assert_eq!(sent, "AUTH TLS\r\nAUTH SSL\r\n", "no credential was sent");
}

#[test]
fn explicit_if_available_waits_for_the_application_before_plain_login() {
    let mut pair = Pair::new(
        Pair::config(ConnectionMode::ExplicitIfAvailable),
        plain_only_server(),
        TlsMode::Explicit,
    );
    assert!(pair.events.contains(&client::Event::PlaintextOnly));
    assert!(!pair.ready());
    assert_eq!(
        pair.sent(),
        "AUTH TLS\r\nAUTH SSL\r\n",
        "nothing is sent until the application agrees"
    );
    pair.now += Duration::from_secs(3600);
    pair.client.handle_timeout(pair.now);
    pair.run();
    assert!(
        !pair.client.is_closed(),
        "no timeout while the application decides"
    );
    pair.client.accept_plaintext(pair.now);
    pair.run();
    assert!(pair.ready() && !pair.client.is_secure());
    assert!(!pair.sent().contains("PBSZ"), "no PBSZ/PROT without TLS");
    assert!(matches!(
        pair.submit(Operation::Retrieve {
            path: p("hello.txt"),
            offset: 0,
            ascii: false
        }),
        Ok(Output::Transferred { bytes: 24, .. })
    ));
}

#[test]
fn explicit_if_available_uses_tls_when_offered() {
    let pair = Pair::new(
        Pair::config(ConnectionMode::ExplicitIfAvailable),
        ServerConfig::default(),
        TlsMode::Explicit,
    );
    assert!(pair.ready() && pair.client.is_secure());
    assert!(!pair.events.contains(&client::Event::PlaintextOnly));
}

#[test]
fn plain_mode_against_a_server_requiring_tls_is_refused() {
    let pair = Pair::new(
        Pair::config(ConnectionMode::Plain),
        ServerConfig::default(),
        TlsMode::Explicit,
    );
    assert!(!pair.ready());
    assert!(pair.events.iter().any(|e| matches!(e, client::Event::Closed { error: Some(ClientError::Refused(r)) } if r.code().get() == 534)));
}

#[test]
fn epsv_falls_back_to_pasv_once_and_remembers() {
    let mut pair = Pair::secure();
    pair.epsv_unknown = true;
    for _ in 0..2 {
        assert!(matches!(
            pair.submit(Operation::Retrieve {
                path: p("hello.txt"),
                offset: 0,
                ascii: false
            }),
            Ok(Output::Transferred { .. })
        ));
    }
    let sent = pair.sent();
    assert_eq!(sent.matches("EPSV\r\n").count(), 1, "{sent}");
    assert_eq!(sent.matches("PASV\r\n").count(), 2);
}

#[test]
fn pasv_address_is_ignored_by_default() {
    let mut pair = Pair::secure();
    pair.epsv_unknown = true;
    pair.pasv_foreign = true;
    // The 227 names 127.0.0.2; the pair asserts the client connects to 127.0.0.1.
    assert!(matches!(
        pair.submit(Operation::Retrieve {
            path: p("hello.txt"),
            offset: 0,
            ascii: false
        }),
        Ok(Output::Transferred { .. })
    ));
}

#[test]
fn truncated_download_is_an_error_even_after_226() {
    let mut pair = Pair::secure();
    pair.truncate = true;
    assert!(matches!(
        pair.submit(Operation::Retrieve {
            path: p("hello.txt"),
            offset: 0,
            ascii: false
        }),
        Err(ClientError::Truncated { bytes: 24 })
    ));
    pair.truncate = false;
    assert!(pair.submit(Operation::Noop).is_ok(), "the session goes on");
}

#[test]
fn active_mode_with_port() {
    let server = ServerConfig::default().with_active_mode(true);
    let client = Pair::config(ConnectionMode::ExplicitRequired).with_passive(false);
    let mut pair = Pair::new(client, server, TlsMode::Explicit);
    assert!(matches!(
        pair.submit(Operation::Retrieve {
            path: p("hello.txt"),
            offset: 0,
            ascii: false
        }),
        Ok(Output::Transferred { bytes: 24, .. })
    ));
    assert!(pair.sent().contains("PORT 127,0,0,1,"));
}

/// A server that accepts the command (150) but never opens the active-mode connection
/// gets a timeout, not a hang.
#[test]
fn active_connection_that_never_comes_times_out() {
    let server = ServerConfig::default().with_active_mode(true);
    let client = Pair::config(ConnectionMode::ExplicitRequired)
        .with_passive(false)
        .with_data_timeout(Duration::from_secs(60));
    let mut pair = Pair::new(client, server, TlsMode::Explicit);
    pair.server_never_connects = true;
    let id = pair.client.submit(
        Operation::Retrieve {
            path: p("hello.txt"),
            offset: 0,
            ascii: false,
        },
        pair.now,
    );
    pair.run();
    assert!(!pair.client.is_closed());
    let deadline = pair.client.poll_timeout().expect("a data deadline");
    assert_eq!(deadline, pair.now + Duration::from_secs(60));
    pair.client.handle_timeout(deadline);
    pair.run();
    assert!(
        pair.events.iter().any(|e| matches!(
            e,
            client::Event::Done { op, result: Err(ClientError::Timeout) } if *op == id
        )),
        "{:?}",
        pair.events
    );
}

#[test]
fn abort_ends_a_running_transfer_and_the_session_goes_on() {
    let mut pair = Pair::new(
        Pair::config(ConnectionMode::ExplicitRequired),
        ServerConfig::default(),
        TlsMode::Explicit,
    );
    pair.run();
    assert!(!pair.client.abort(pair.now), "nothing to abort");
    pair.hold_transfers = true;
    let id = pair.client.submit(
        Operation::Retrieve {
            path: p("hello.txt"),
            offset: 0,
            ascii: false,
        },
        pair.now,
    );
    pair.run();
    assert!(pair.client_start.values().any(|upload| !upload), "started");
    assert!(pair.client.abort(pair.now));
    pair.run();
    let result = pair.events.iter().find_map(|e| match e {
        client::Event::Done { op, result } if *op == id => Some(result.clone()),
        _ => None,
    });
    assert_eq!(result, Some(Err(ClientError::Aborted)));
    assert!(pair.sent().contains("ABOR\r\n"));
    pair.hold_transfers = false;
    assert!(pair.submit(Operation::Noop).is_ok(), "the session goes on");
    assert!(matches!(
        pair.submit(Operation::Retrieve {
            path: p("hello.txt"),
            offset: 0,
            ascii: false
        }),
        Ok(Output::Transferred { bytes: 24, .. })
    ));
}

/// A listing that reaches `max_listing` while the server still sends is aborted (ABOR)
/// and fails with the bound; downloads carry no limit; the session goes on.
#[test]
fn a_listing_past_its_bound_is_aborted_and_the_session_goes_on() {
    let client = Pair::config(ConnectionMode::ExplicitRequired).with_max_listing(1000);
    let mut pair = Pair::new(client, ServerConfig::default(), TlsMode::Explicit);
    pair.hold_transfers = true;
    let id = pair.client.submit(
        Operation::List {
            path: None,
            format: ListFormat::List,
        },
        pair.now,
    );
    pair.run();
    let (&data, &limit) = pair.client_limits.iter().next().expect("started");
    assert_eq!(limit, Some(1000), "the adapter is told the bound");
    pair.client.handle_io(
        client::IoEvent::DataOverLimit {
            id: data,
            bytes: 1000,
        },
        pair.now,
    );
    pair.run();
    let result = pair.events.iter().find_map(|e| match e {
        client::Event::Done { op, result } if *op == id => Some(result.clone()),
        _ => None,
    });
    assert_eq!(
        result,
        Some(Err(ClientError::ListingTooLarge { limit: 1000 }))
    );
    assert!(pair.sent().contains("ABOR\r\n"));
    pair.hold_transfers = false;
    assert!(pair.submit(Operation::Noop).is_ok(), "the session goes on");
    assert!(matches!(
        pair.submit(Operation::Retrieve {
            path: p("hello.txt"),
            offset: 0,
            ascii: false
        }),
        Ok(Output::Transferred { bytes: 24, .. })
    ));
    assert_eq!(
        pair.client_limits.values().last(),
        Some(&None),
        "downloads are not bounded"
    );
}

/// An adapter that reports a listing longer than the bound (it did not stop) gets the
/// same error: the core does not take the bytes.
#[test]
fn a_listing_that_ended_past_its_bound_is_refused() {
    let client = Pair::config(ConnectionMode::ExplicitRequired).with_max_listing(10);
    let mut pair = Pair::new(client, ServerConfig::default(), TlsMode::Explicit);
    let listing = Operation::List {
        path: None,
        format: ListFormat::List,
    };
    assert_eq!(
        pair.submit(listing.clone()),
        Err(ClientError::ListingTooLarge { limit: 10 })
    );
    pair.client.set_max_listing(1 << 20);
    assert!(matches!(
        pair.submit(listing),
        Ok(Output::Transferred { .. })
    ));
}

#[test]
fn ccc_clears_the_control_connection_and_data_stays_protected() {
    let server = ServerConfig::default().with_allow_ccc(true);
    let mut pair = Pair::new(
        Pair::config(ConnectionMode::ExplicitRequired),
        server,
        TlsMode::Explicit,
    );
    pair.run();
    assert!(pair.submit(Operation::ClearControl).is_ok());
    assert_eq!(pair.client_stopped_tls, 1);
    assert!(!pair.client.is_secure());
    // The data connection still uses TLS (asserted by the harness under PROT P).
    let r = pair.submit(Operation::Retrieve {
        path: p("hello.txt"),
        offset: 0,
        ascii: false,
    });
    assert!(
        matches!(r, Ok(Output::Transferred { bytes: 24, .. })),
        "{r:?}"
    );
    // A second CCC has no TLS to clear: refused locally.
    assert!(matches!(
        pair.submit(Operation::ClearControl),
        Err(ClientError::Unsupported(_))
    ));

    // By default the server refuses CCC (534); the session stays protected.
    let mut pair = Pair::new(
        Pair::config(ConnectionMode::ExplicitRequired),
        ServerConfig::default(),
        TlsMode::Explicit,
    );
    pair.run();
    assert!(matches!(
        pair.submit(Operation::ClearControl),
        Err(ClientError::Refused(r)) if r.code().get() == 534
    ));
    assert_eq!(pair.client_stopped_tls, 0);
    assert!(pair.client.is_secure());
}

#[test]
fn prot_c_when_asked() {
    let server = ServerConfig::default().with_data_tls(DataTlsPolicy::Allow);
    let client = Pair::config(ConnectionMode::ExplicitRequired)
        .with_protection(ftps_proto::ProtectionLevel::Clear);
    let mut pair = Pair::new(client, server, TlsMode::Explicit);
    assert!(pair.sent().contains("PROT C\r\n"));
    assert!(matches!(
        pair.submit(Operation::Retrieve {
            path: p("hello.txt"),
            offset: 0,
            ascii: false
        }),
        Ok(Output::Transferred { .. })
    ));
}

#[test]
fn wrong_password_closes_with_the_servers_reply() {
    let mut config = Pair::config(ConnectionMode::ExplicitRequired);
    config.password = Password::new("wrong").unwrap();
    let mut pair = Pair::new(config, ServerConfig::default(), TlsMode::Explicit);
    pair.now += Duration::from_secs(2);
    pair.server.handle_timeout(pair.now);
    pair.run();
    assert!(pair.events.iter().any(|e| matches!(e, client::Event::Closed { error: Some(ClientError::Refused(r)) } if r.code().get() == 530)));
}

#[test]
fn hostile_replies_are_typed_errors() {
    let config = Arc::new(Pair::config(ConnectionMode::ExplicitRequired));
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let mut c = ClientSession::new(config.clone(), SERVER.parse().unwrap(), now);
    c.handle_control_input(b"999 hello\r\n", now);
    let events: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(
        matches!(
            &events[..],
            [client::Event::Closed {
                error: Some(ClientError::BadReply(_))
            }]
        ),
        "{events:?}"
    );

    // An endless multi-line reply stops at the size cap.
    let mut c = ClientSession::new(config.clone(), SERVER.parse().unwrap(), now);
    c.handle_control_input(b"220-welcome\r\n", now);
    let line = vec![b'x'; 1000];
    for _ in 0..2000 {
        let mut chunk = line.clone();
        chunk.extend_from_slice(b"\r\n");
        c.handle_control_input(&chunk, now);
        if c.is_closed() {
            break;
        }
    }
    assert!(c.is_closed());

    // Silence: the reply timeout fires.
    let mut c = ClientSession::new(config, SERVER.parse().unwrap(), now);
    c.handle_timeout(now + Duration::from_secs(29));
    assert!(!c.is_closed());
    c.handle_timeout(now + Duration::from_secs(31));
    assert!(c.is_closed());
    let events: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(events.contains(&client::Event::Closed {
        error: Some(ClientError::Timeout)
    }));
}
