//! A control connection's socket, as a server takes it: kernel buffers bounded.

use std::io;
use std::net::{IpAddr, SocketAddr};

/// The kernel send and receive buffers asked for on a control connection, in bytes
/// (Linux doubles the figure for its bookkeeping, so about 32 KiB each).
///
/// Left to the kernel, a socket's buffers grow to several MiB each (Linux `tcp_wmem`:
/// 4 MiB): a client that pipelines short commands and never reads their longer replies
/// (FEAT: 6 bytes in, about 220 out) had the server queue ~3.8 MB of replies per socket,
/// and 400 such sockets held 1.5 GiB of the host's memory (issue 13's second review,
/// finding B, as that review measured it; this crate's test saw 1.6 MB with the bounds
/// off). Bounded, the replies stop fitting after a few KiB, the session's next
/// write blocks — so it reads no further commands — and the reply-write deadline
/// ([`ftps_proto::server::Timeouts::reply_write`]) closes it. Control replies are small;
/// a large one (STAT of a directory) is written as the client reads it.
pub(crate) const CONTROL_BUFFER: usize = 16 * 1024;

/// Bounds a newly accepted control connection's kernel buffers (see [`CONTROL_BUFFER`]).
pub(crate) fn control_socket(sock: socket2::SockRef<'_>) -> io::Result<()> {
    sock.set_send_buffer_size(CONTROL_BUFFER)?;
    sock.set_recv_buffer_size(CONTROL_BUFFER)
}

/// Whether an accept failed for want of file descriptors (the process's or the
/// system's): the server should then make room (see
/// [`SessionLimits::make_room`](crate::limits::SessionLimits::make_room)).
pub(crate) fn out_of_descriptors(e: &io::Error) -> bool {
    // EMFILE and ENFILE on Linux and the BSDs.
    matches!(e.raw_os_error(), Some(23 | 24))
}

/// A TCP socket for a connection to `addr`, bound to `from` (port 0: the system's
/// choice) and not yet connected: what each runtime's [`Runtime::connect`] with a source
/// address starts from, before connecting it its own way. Fails with `InvalidInput` when
/// the families differ (an IPv4 source cannot reach an IPv6 address), and as `bind(2)`
/// fails when `from` is no address of this host (`AddrNotAvailable`).
///
/// [`Runtime::connect`]: crate::Runtime::connect
pub fn bound_socket(addr: SocketAddr, from: IpAddr) -> io::Result<socket2::Socket> {
    if addr.is_ipv4() != from.is_ipv4() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot reach {addr} from {from}: the address families differ"),
        ));
    }
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket
        .bind(&SocketAddr::new(from, 0).into())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind to {from}: {e}")))?;
    Ok(socket)
}
