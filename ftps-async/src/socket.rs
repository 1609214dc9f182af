//! A control connection's socket, as a server takes it: kernel buffers bounded.

use std::io;

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
