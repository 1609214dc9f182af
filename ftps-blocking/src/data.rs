//! One thread per server data connection: listen or connect, TLS, move the bytes,
//! finish. It only executes what the session decided and reports back as [`IoEvent`]s.

use crate::inbox::Msg;
use crate::stream::{BufferedTcp, DataStream};
use ftps_backend::{DataOrder, Meter, Storage, Warnings, Work};
use ftps_proto::ascii::{FromNetwork, ToNetwork};
use ftps_proto::server::{DataEnd, DataId, IoEvent};
use ftps_proto::tls::{DataTls, handshake_info};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::time::{Duration, Instant};

/// Bytes per read and write: large, so TLS records are full and syscalls few.
const BUFFER: usize = 256 * 1024;

/// A transfer's buffer when the server-wide budget has no room for a [`BUFFER`]-sized one.
const BUFFER_SMALL: usize = 64 * 1024;

/// A transfer's buffer: [`BUFFER`] bytes from the server-wide budget, else
/// [`BUFFER_SMALL`]; the bytes taken go back when the second value is dropped.
fn buffer<S>(ctx: &DataContext<S>) -> (Vec<u8>, Option<ftps_backend::Taken>) {
    match ctx.transfer_buffers.take(BUFFER - BUFFER_SMALL) {
        Some(taken) => (vec![0u8; BUFFER], Some(taken)),
        None => (vec![0u8; BUFFER_SMALL], None),
    }
}
/// How often a passive listener looks for its connection and its orders.
const POLL: Duration = Duration::from_millis(2);

/// How long an upload the session refused or aborted is read (and discarded) to its end.
const REFUSED_DRAIN: Duration = Duration::from_secs(2);

/// What a data thread needs from its session.
pub(crate) struct DataContext<S> {
    pub(crate) id: DataId,
    pub(crate) events: SyncSender<Msg>,
    pub(crate) storage: Arc<S>,
    pub(crate) warnings: Arc<Warnings>,
    /// What transfers' large buffers may hold together, server-wide.
    pub(crate) transfer_buffers: Arc<ftps_backend::Budget>,
    pub(crate) handshake_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) stall_timeout: Duration,
}

impl<S> DataContext<S> {
    fn report(&self, event: IoEvent) {
        let _ = self.events.send(Msg::Data(event));
    }

    fn fail(&self, reason: impl Into<String>) {
        self.report(IoEvent::DataFailed {
            id: self.id,
            reason: reason.into(),
        });
    }
}

/// Binds a listener on `ip`, in `ports` if given, else on any free port.
pub(crate) fn bind(
    ip: IpAddr,
    ports: Option<&RangeInclusive<u16>>,
    seed: u64,
) -> io::Result<TcpListener> {
    let Some(range) = ports else {
        return TcpListener::bind(SocketAddr::new(ip, 0));
    };
    let mut last = io::Error::new(io::ErrorKind::AddrInUse, "no free passive port");
    for port in ftps_backend::passive_ports(range, seed) {
        match TcpListener::bind(SocketAddr::new(ip, port)) {
            Ok(l) => return Ok(l),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A passive data connection: accept (only from `accept_from`) and wait for the order to
/// open, then run. Ends when the session drops its sender.
pub(crate) fn passive<S: Storage>(
    ctx: DataContext<S>,
    listener: TcpListener,
    accept_from: Option<IpAddr>,
    cmds: Receiver<DataOrder<S>>,
) {
    if listener.set_nonblocking(true).is_err() {
        return ctx.fail("listener setup failed");
    }
    let deadline = Instant::now() + ctx.connect_timeout + ctx.handshake_timeout;
    let mut accepted: Option<(TcpStream, SocketAddr)> = None;
    let mut open = None;
    while accepted.is_none() || open.is_none() {
        let mut idle = true;
        if accepted.is_none() {
            match listener.accept() {
                Ok((_, peer)) if accept_from.is_some_and(|ip| ip != peer.ip()) => {
                    ctx.warnings.foreign_data_connection(peer);
                    idle = false;
                }
                Ok(conn) => {
                    accepted = Some(conn);
                    idle = false;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => tracing::debug!("accept failed: {e}"),
            }
        }
        if open.is_none() {
            match cmds.try_recv() {
                Ok(DataOrder::Open { tls, early }) => {
                    open = Some((tls, early));
                    idle = false;
                }
                Ok(_) | Err(TryRecvError::Disconnected) => return,
                Err(TryRecvError::Empty) => {}
            }
        }
        if Instant::now() > deadline {
            return;
        }
        if idle {
            std::thread::sleep(POLL);
        }
    }
    drop(listener);
    if let (Some((stream, peer)), Some((tls, early))) = (accepted, open) {
        if stream.set_nonblocking(false).is_err() {
            return ctx.fail("socket setup failed");
        }
        run(ctx, stream, peer, tls, early, cmds);
    }
}

/// An active data connection: connect to `addr`, then run.
pub(crate) fn active<S: Storage>(
    ctx: DataContext<S>,
    addr: SocketAddr,
    tls: Option<DataTls>,
    early: Option<(S::Upload, bool)>,
    cmds: Receiver<DataOrder<S>>,
) {
    match TcpStream::connect_timeout(&addr, ctx.connect_timeout) {
        Ok(stream) => run(ctx, stream, addr, tls, early, cmds),
        Err(e) => ctx.fail(e.to_string()),
    }
}

/// The server side of the data connection's TLS handshake: the ClientHello picks the
/// configuration (see [`ftps_proto::tls::SessionTls`]).
fn accept_tls(tcp: TcpStream, tls: &DataTls, upload: bool) -> io::Result<DataStream> {
    let mut tcp = BufferedTcp::new(tcp);
    let mut acceptor = rustls::server::Acceptor::default();
    let accepted = loop {
        if acceptor.read_tls(&mut tcp)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => break accepted,
            Ok(None) => {}
            Err((e, _)) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    };
    let config = tls.choose(&accepted.client_hello(), upload);
    let mut conn = accepted
        .into_connection(config)
        .map_err(|(e, _)| io::Error::new(io::ErrorKind::InvalidData, e))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)?;
    }
    Ok(DataStream::Server(Box::new(rustls::StreamOwned::new(
        conn, tcp,
    ))))
}

fn run<S: Storage>(
    ctx: DataContext<S>,
    tcp: TcpStream,
    peer: SocketAddr,
    data_tls: Option<DataTls>,
    early: Option<(S::Upload, bool)>,
    cmds: Receiver<DataOrder<S>>,
) {
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(ctx.handshake_timeout));
    let _ = tcp.set_write_timeout(Some(ctx.handshake_timeout));
    let tls = data_tls.is_some();
    let (mut stream, info) = match data_tls {
        Some(data_tls) => match accept_tls(tcp, &data_tls, early.is_some()) {
            Ok(stream) => {
                let info = match &stream {
                    DataStream::Server(s) => Some(handshake_info(&s.conn)),
                    _ => None,
                };
                (stream, info)
            }
            Err(e) => return ctx.fail(format!("TLS: {e}")),
        },
        None => (DataStream::Plain(tcp), None),
    };
    if stream.set_timeouts(ctx.stall_timeout).is_err() {
        return ctx.fail("socket setup failed");
    }
    ctx.report(IoEvent::DataConnected {
        id: ctx.id,
        peer,
        tls: info,
    });

    // Nothing moves before the session's go-ahead (see `Work::start`). Refused (a
    // session not resumed, say) or aborted: end the connection properly (our close_notify,
    // then the client's bytes read to their end for a moment), so that the client reads a
    // clean end and then the reply that says why.
    let upload = early.is_some();
    let first = cmds.recv().ok();
    let Some((work, ascii)) = Work::start(early, first) else {
        let _ = stream.end_upload(REFUSED_DRAIN);
        return;
    };
    let pumped = match work {
        Work::Receive(up) => receive(&ctx, &mut stream, up, ascii, tls, &cmds),
        Work::SendBytes(bytes) => send(&ctx, &mut stream, &mut &bytes[..], ascii, &cmds),
        Work::SendFile(mut reader) => send(&ctx, &mut stream, &mut reader, ascii, &cmds),
        Work::SendListing(mut listing) => send(&ctx, &mut stream, &mut listing, ascii, &cmds),
        Work::Nothing => Some((None, 0, DataEnd::Failed("nothing to transfer".into()))),
    };
    // Aborted by the session (ABOR, or a refusal such as a TLS session not resumed): an
    // upload in progress was dropped, which discards it. An upload's connection still ends
    // properly — our close_notify, then what the client sends read to its end, for a
    // moment — so that the client finishes cleanly and reads the reply that says why
    // (dropped at once, Python's ftplib got a reset and then read that reply as the
    // answer to its next command: issue 13's second review, finding G).
    let Some((upload, bytes, end)) = pumped else {
        if upload {
            let _ = stream.end_upload(REFUSED_DRAIN);
        }
        return;
    };
    ctx.report(IoEvent::DataEnded {
        id: ctx.id,
        bytes,
        end,
    });
    let commit = loop {
        match cmds.recv() {
            Ok(DataOrder::Finish { commit }) => break commit,
            Ok(DataOrder::Transfer { .. }) => continue,
            _ => break false,
        }
    };
    let result = match upload {
        Some(up) => {
            // Answer the client's close_notify with ours before closing.
            let _ = stream.finish_sending();
            ctx.storage.commit(up, commit)
        }
        None => Ok(()),
    };
    ctx.report(IoEvent::TransferFinished { id: ctx.id, result });
}

/// Whether the session still wants this transfer (it drops its sender to abort).
fn aborted<S: Storage>(cmds: &Receiver<DataOrder<S>>) -> bool {
    matches!(cmds.try_recv(), Err(TryRecvError::Disconnected))
}

type Pumped<U> = Option<(Option<U>, u64, DataEnd)>;

/// Writes `bytes` a piece at a time (each write bounded by the stall timeout), reporting
/// progress by time as pieces go (see [`Meter::moved`]): a slow client that keeps taking
/// bytes is not a stalled one.
fn write_counted<S: Storage>(
    ctx: &DataContext<S>,
    stream: &mut DataStream,
    mut bytes: &[u8],
    meter: &mut Meter,
) -> io::Result<()> {
    const PIECE: usize = 64 * 1024;
    while !bytes.is_empty() {
        let piece = &bytes[..bytes.len().min(PIECE)];
        stream.write_all(piece)?;
        bytes = &bytes[piece.len()..];
        if let Some(total) = meter.moved() {
            ctx.report(IoEvent::DataProgress {
                id: ctx.id,
                bytes: total,
            });
        }
    }
    Ok(())
}

fn send<S: Storage>(
    ctx: &DataContext<S>,
    stream: &mut DataStream,
    source: &mut dyn Read,
    ascii: bool,
    cmds: &Receiver<DataOrder<S>>,
) -> Pumped<S::Upload> {
    let mut meter = Meter::default();
    let mut conv = ascii.then(ToNetwork::default);
    let mut converted = Vec::new();
    let (mut buf, _taken) = buffer(ctx);
    let result = loop {
        let n = match source.read(&mut buf) {
            Ok(0) => break stream.flush().map_err(Failure::Net),
            Ok(n) => n,
            Err(e) => break Err(Failure::Storage(e)),
        };
        let written = match conv.as_mut() {
            Some(c) => {
                converted.clear();
                c.convert(&buf[..n], &mut converted);
                write_counted(ctx, stream, &converted, &mut meter)
            }
            None => write_counted(ctx, stream, &buf[..n], &mut meter),
        };
        if let Err(e) = written {
            break Err(Failure::Net(e));
        }
        if let Some(bytes) = meter.add(n) {
            if aborted(cmds) {
                return None;
            }
            ctx.report(IoEvent::DataProgress { id: ctx.id, bytes });
        }
    };
    let end = match result {
        Ok(()) => {
            // close_notify and FIN; a client that counted the bytes may have closed
            // already, which loses nothing.
            let _ = stream.finish_sending();
            DataEnd::Complete { close_notify: true }
        }
        Err(Failure::Storage(e)) => {
            // The connection is sound: what was sent arrives whole, and the final reply
            // says it is not all (a listing cut at its bound, say).
            let _ = stream.flush().and_then(|()| stream.finish_sending());
            DataEnd::Storage(ftps_backend::read_error(&e))
        }
        Err(Failure::Net(e)) => DataEnd::Failed(e.to_string()),
    };
    Some((None, meter.total(), end))
}

enum Failure {
    Storage(io::Error),
    Net(io::Error),
}

fn receive<S: Storage>(
    ctx: &DataContext<S>,
    stream: &mut DataStream,
    mut upload: S::Upload,
    ascii: bool,
    tls: bool,
    cmds: &Receiver<DataOrder<S>>,
) -> Pumped<S::Upload> {
    let (mut buf, _taken) = buffer(ctx);
    let mut meter = Meter::default();
    let mut conv = ascii.then(FromNetwork::default);
    let mut converted = Vec::new();
    let end = loop {
        match stream.read(&mut buf) {
            Ok(0) => break DataEnd::Complete { close_notify: true },
            Ok(n) => {
                let due = meter.add(n);
                let chunk = match conv.as_mut() {
                    Some(c) => {
                        converted.clear();
                        c.convert(&buf[..n], &mut converted);
                        &converted[..]
                    }
                    None => &buf[..n],
                };
                if let Err(e) = upload.write_all(chunk) {
                    return Some((
                        None,
                        meter.total(),
                        DataEnd::Storage(ftps_backend::write_error(&e)),
                    ));
                }
                if let Some(bytes) = due {
                    if aborted(cmds) {
                        return None;
                    }
                    ctx.report(IoEvent::DataProgress { id: ctx.id, bytes });
                }
            }
            Err(e) => break ftps_backend::upload_read_end(&e, tls),
        }
    };
    converted.clear();
    if let Some(c) = conv.as_mut() {
        c.finish(&mut converted);
    }
    if let Err(e) = upload.write_all(&converted).and_then(|()| upload.flush()) {
        return Some((
            None,
            meter.total(),
            DataEnd::Storage(ftps_backend::write_error(&e)),
        ));
    }
    Some((Some(upload), meter.total(), end))
}
