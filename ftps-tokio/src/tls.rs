//! TLS configuration builders, shared by every runtime (`ftps_proto::tls`,
//! `ftps_backend::files`), re-exported for tokio users.

pub use ftps_backend::files::server_config_from_pem_files;
pub use ftps_proto::tls::{
    ReloadableCert, TlsConfigError, server_config, server_config_from_pem,
    server_config_with_resolver,
};
