//! rustls glue shared by the runtime adapters (feature `rustls`).
//!
//! rustls is itself sans-IO, so what every adapter would otherwise repeat around it lives
//! here once: configuration builders, the server's per-session configurations that bind
//! data connections to their control connection, the client's per-session resumption
//! store, and the client certificate. Reading PEM files and the platform's roots is IO and
//! lives in `ftps-backend`.

mod bound_tickets;
mod config;
mod handshake;
mod identity;
mod resumed_only;
mod server_session;
mod session_ids;
mod session_store;
mod suite_choice;
mod trust;

pub use config::{
    BOTH, ReloadableCert, TlsConfigError, aes_128_gcm_first, client_config, client_config_from_pem,
    client_config_with_trust, client_config_with_versions, insecure_client_config,
    insecure_client_config_with_versions, provider, roots_from_pem, server_config,
    server_config_from_pem, server_config_with_resolver,
};
pub use handshake::{client_handshake_info, handshake_info};
pub use identity::{ClientIdentity, IdentityError};
pub use server_session::{DataTls, SessionTls};
pub use session_store::{SessionStore, with_session_store};
pub use trust::{Fingerprint, ServerTrust};
