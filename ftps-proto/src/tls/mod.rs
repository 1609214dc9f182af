//! rustls glue shared by the runtime adapters (feature `rustls`).
//!
//! rustls is itself sans-IO, so what every adapter would otherwise repeat around it lives
//! here once: the per-FTP-session resumption store that pins data connections to their
//! control connection, and the client certificate.

mod identity;
mod session_store;

pub use identity::{ClientIdentity, IdentityError};
pub use session_store::{SessionStore, with_session_store};
