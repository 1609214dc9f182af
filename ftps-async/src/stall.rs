//! [`Stall`]: the stall timeout of a data stream handed to the caller (`DataReader`,
//! `DataWriter`): a read or write that moves no byte for the data timeout fails with
//! `TimedOut`, as the transfers the client runs itself do. One timer per stall period,
//! not one per read: the timer is re-armed from the last progress only when it fires.

use crate::runtime::{BoxFuture, Runtime};
use std::io;
use std::marker::PhantomData;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Watches one data stream for stalls.
pub(crate) struct Stall<R: Runtime> {
    limit: Duration,
    last: Instant,
    timer: Option<BoxFuture<'static, ()>>,
    runtime: PhantomData<fn() -> R>,
}

impl<R: Runtime> Stall<R> {
    /// A stream that fails after `limit` without progress, from now.
    pub(crate) fn new(limit: Duration) -> Self {
        Stall {
            limit,
            last: Instant::now(),
            timer: None,
            runtime: PhantomData,
        }
    }

    /// When the stream stalls if no byte moves before.
    pub(crate) fn deadline(&self) -> Instant {
        self.last + self.limit
    }

    /// Bytes moved.
    pub(crate) fn progress(&mut self) {
        self.last = Instant::now();
    }

    /// After an IO call returned `Pending`: the error to fail with if no byte moved for
    /// the limit (the caller returns it instead of `Pending`).
    pub(crate) fn poll_stalled(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        loop {
            let deadline = self.last + self.limit;
            let timer = self.timer.get_or_insert_with(|| R::sleep_until(deadline));
            if timer.as_mut().poll(cx).is_pending() {
                return None;
            }
            self.timer = None;
            if Instant::now() >= self.last + self.limit {
                return Some(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no data moved for {} s", self.limit.as_secs()),
                ));
            }
            // Progress since the timer was set: wait from the last of it.
        }
    }
}

/// The result of an IO poll, with the stall watch applied.
pub(crate) fn watch<R: Runtime, T>(
    stall: &mut Stall<R>,
    cx: &mut Context<'_>,
    polled: Poll<io::Result<T>>,
) -> Poll<io::Result<T>> {
    match polled {
        Poll::Ready(r) => {
            stall.progress();
            Poll::Ready(r)
        }
        Poll::Pending => match stall.poll_stalled(cx) {
            Some(e) => Poll::Ready(Err(e)),
            None => Poll::Pending,
        },
    }
}
