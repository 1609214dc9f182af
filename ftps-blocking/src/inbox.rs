//! What wakes a server session's thread: one channel carries its control input and its
//! data threads' reports (so the data threads and the session need not know each other's
//! modules).

use ftps_proto::server::IoEvent;

/// What wakes a session thread.
pub(crate) enum Msg {
    /// Control bytes (empty: the connection closed).
    Control(Vec<u8>),
    /// A data thread's report.
    Data(IoEvent),
}
