//! Which side's order of cipher suites a server's handshake follows.
//!
//! The server configurations built here pick in the server's order, AES-128-GCM first
//! (see `config::server_provider`): it costs the server less per byte than the
//! AES-256-GCM that OpenSSL-based clients put first. A client that puts ChaCha20-Poly1305
//! before every AES-GCM suite says it has no AES instructions (BoringSSL and Go order
//! their suites so on such machines), and there AES in software costs it several times
//! ChaCha20: such a client's order is followed. RFC 8446 §4.1.1 leaves the choice to the
//! server; this is the rule Go's `crypto/tls` server applies.

use rustls::CipherSuite as C;
use rustls::server::ClientHello;
use std::sync::Arc;

/// The client's first choice among the AEAD families it offers is ChaCha20-Poly1305
/// (suites of neither family, such as GREASE values, are skipped).
pub(crate) fn prefers_chacha20(hello: &ClientHello<'_>) -> bool {
    hello
        .cipher_suites()
        .iter()
        .find_map(|suite| match suite {
            C::TLS13_CHACHA20_POLY1305_SHA256
            | C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
            | C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => Some(true),
            C::TLS13_AES_128_GCM_SHA256
            | C::TLS13_AES_256_GCM_SHA384
            | C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            | C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
            | C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
            | C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => Some(false),
            _ => None,
        })
        .unwrap_or(false)
}

/// `config` as it should meet the client of `hello`: the same one, or, when `config`
/// picks in the server's order and the client prefers ChaCha20, a copy that follows the
/// client's. The control connection and its data connections decide alike from the same
/// client's hellos, so they settle on the same suite, which resumption needs.
pub(crate) fn for_hello(
    config: &Arc<rustls::ServerConfig>,
    hello: &ClientHello<'_>,
) -> Arc<rustls::ServerConfig> {
    if config.ignore_client_order && prefers_chacha20(hello) {
        let mut follows = (**config).clone();
        follows.ignore_client_order = false;
        Arc::new(follows)
    } else {
        config.clone()
    }
}
