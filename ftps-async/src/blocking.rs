//! Reads of a listing on the runtime's blocking pool (its entries may block: a storage's
//! next page).

use crate::runtime::{BoxFuture, Runtime};
pub(crate) use ftps_backend::Chunk;
use std::io::Read;

/// A read under way.
pub(crate) type Pending<'a, T> = BoxFuture<'a, Chunk<T>>;

/// Fills `buf` from `reader` on the pool (see [`ftps_backend::fill`]).
pub(crate) fn fill<'a, RT: Runtime, R: Read + Send + 'static>(
    reader: R,
    buf: Vec<u8>,
) -> Pending<'a, R> {
    RT::unblock(move || ftps_backend::fill(reader, buf))
}
