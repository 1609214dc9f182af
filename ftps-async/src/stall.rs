//! [`Stall`]: the session's stall timer over a data stream handed to the caller
//! (`DataReader`, `DataWriter`). The session decides the stall: its data-stall timer,
//! reset by the progress the stream reports ([`IoEvent::DataProgress`]). This arms one
//! runtime timer at the session's deadline, fires the session's timers when it expires,
//! and fails the stream with `TimedOut` once the session has ended the transfer, as the
//! transfers the client runs itself end. One timer per stall period, not one per read:
//! the timer is re-armed at the session's next deadline only when it fires.

use crate::runtime::{BoxFuture, Runtime};
use ftps_proto::ClientSession;
use ftps_proto::boundary::DataId;
use ftps_proto::client::IoEvent;
use std::io;
use std::marker::PhantomData;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// How far ahead socket calls may wait when the session has no timer running (it always
/// has one while a transfer moves).
const NO_TIMER: Duration = Duration::from_secs(3600);

/// Watches one handed data stream for the session's stall decision.
pub(crate) struct Stall<R: Runtime> {
    id: DataId,
    /// The data timeout, for the error's text.
    limit: Duration,
    timer: Option<BoxFuture<'static, ()>>,
    runtime: PhantomData<fn() -> R>,
}

impl<R: Runtime> Stall<R> {
    /// Watches data connection `id`, whose session stalls it after `limit` without
    /// progress.
    pub(crate) fn new(id: DataId, limit: Duration) -> Self {
        Stall {
            id,
            limit,
            timer: None,
            runtime: PhantomData,
        }
    }

    /// When a socket call must be done by (blocking runtimes): the session's next timer.
    pub(crate) fn deadline(session: &ClientSession) -> Instant {
        session
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + NO_TIMER)
    }

    /// Bytes moved: `bytes` so far.
    pub(crate) fn progress(&self, session: &mut ClientSession, bytes: u64) {
        let progress = IoEvent::DataProgress { id: self.id, bytes };
        session.handle_io(progress, Instant::now());
    }

    /// The error a stream fails with once the session ended its transfer.
    fn stalled(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no data moved for {} s", self.limit.as_secs()),
        )
    }

    /// After an IO call returned `Pending`: waits on the session's timer; the error to
    /// fail with once the session ended the transfer (the caller returns it instead of
    /// `Pending`).
    fn poll_stalled(
        &mut self,
        session: &mut ClientSession,
        cx: &mut Context<'_>,
    ) -> Option<io::Error> {
        loop {
            if !session.is_moving(self.id) {
                return Some(self.stalled());
            }
            let deadline = session.poll_timeout()?;
            let timer = self.timer.get_or_insert_with(|| R::sleep_until(deadline));
            if timer.as_mut().poll(cx).is_pending() {
                return None;
            }
            self.timer = None;
            session.handle_timeout(Instant::now());
            // Progress since the timer was set: the session's next deadline is later.
        }
    }
}

/// The result of an IO poll of a handed stream, with the session's stall timer applied.
/// The caller reports the progress of a `Ready(Ok)` ([`Stall::progress`]).
pub(crate) fn watch<R: Runtime, T>(
    stall: &mut Stall<R>,
    session: &mut ClientSession,
    cx: &mut Context<'_>,
    polled: Poll<io::Result<T>>,
) -> Poll<io::Result<T>> {
    match polled {
        Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::TimedOut => {
            // A blocking call that reached the session's deadline: its timers are due.
            session.handle_timeout(Instant::now());
            Poll::Ready(Err(e))
        }
        Poll::Ready(r) => Poll::Ready(r),
        Poll::Pending => match stall.poll_stalled(session, cx) {
            Some(e) => Poll::Ready(Err(e)),
            None => Poll::Pending,
        },
    }
}
