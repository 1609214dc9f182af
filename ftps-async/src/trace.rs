//! The client's protocol trace: every command it sends and every reply line it receives,
//! at debug level under the target `ftps::client` (`ftps -v`, `RUST_LOG=ftps=debug`).
//!
//! The argument of `PASS` and `ACCT` is never traced, at any level: it is written as
//! `****`. Reply text comes from the server and is escaped ([`PrintableBytes`]: a byte that
//! is not UTF-8 shows as `\xNN`, in commands too). Nothing is
//! formatted, split or buffered while the level is off (one cached check per call).

use ftps_proto::PrintableBytes;

/// The longest reply line traced; the rest of a longer line is left out (the session
/// bounds what it takes anyway).
const MAX_LINE: usize = 4096;

/// Whether the trace is on.
fn on() -> bool {
    tracing::enabled!(target: "ftps::client", tracing::Level::DEBUG)
}

/// Traces the command line(s) in `bytes` (encoded, each ending with CRLF).
pub(crate) fn sent(bytes: &[u8]) {
    if !on() {
        return;
    }
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let line = redacted(line.strip_suffix(b"\r").unwrap_or(line));
        tracing::debug!(target: "ftps::client", "> {}", PrintableBytes(&line));
    }
}

/// Traces what a finished client handshake settled, as `curl -v` does: `* control: TLS
/// 1.3, TLS13_AES_128_GCM_SHA256, ALPN ftp` (`what` is `control` or `data`).
pub(crate) fn handshake(what: &str, conn: &rustls::ClientConnection) {
    if !on() {
        return;
    }
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
        _ => "TLS",
    };
    let suite = conn
        .negotiated_cipher_suite()
        .map(|s| format!(", {:?}", s.suite()))
        .unwrap_or_default();
    let alpn = conn
        .alpn_protocol()
        .map(|p| format!(", ALPN {}", PrintableBytes(p)))
        .unwrap_or_default();
    let resumed = if conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
        ", resumed"
    } else {
        ""
    };
    tracing::debug!(target: "ftps::client", "* {what}: {version}{suite}{alpn}{resumed}");
}

/// `line` with the argument of `PASS` or `ACCT` replaced by `****`.
fn redacted(line: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let start = line.len() - line.trim_ascii_start().len();
    let verb_end = line[start..]
        .iter()
        .position(u8::is_ascii_whitespace)
        .map_or(line.len(), |i| start + i);
    let verb = &line[start..verb_end];
    let secret = verb.eq_ignore_ascii_case(b"PASS") || verb.eq_ignore_ascii_case(b"ACCT");
    if secret && verb_end < line.len() {
        [&line[..verb_end], b" ****"].concat().into()
    } else {
        line.into()
    }
}

/// The reply lines received on a control connection, traced as each line completes.
#[derive(Debug, Default)]
pub(crate) struct ReplyTrace {
    /// The start of a line not complete yet (only while the trace is on).
    partial: Vec<u8>,
}

impl ReplyTrace {
    /// Traces the complete lines `bytes` (clear text as received) ends, and keeps the rest.
    pub(crate) fn received(&mut self, bytes: &[u8]) {
        if !on() {
            self.partial = Vec::new();
            return;
        }
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            self.keep(&rest[..end]);
            let line = std::mem::take(&mut self.partial);
            let line = line.strip_suffix(b"\r").unwrap_or(&line);
            tracing::debug!(target: "ftps::client", "< {}", PrintableBytes(line));
            rest = &rest[end + 1..];
        }
        self.keep(rest);
    }

    /// Adds `bytes` to the line under way, up to [`MAX_LINE`].
    fn keep(&mut self, bytes: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.partial.len());
        self.partial
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Forgets a line under way (the control connection was opened again).
    pub(crate) fn reset(&mut self) {
        self.partial = Vec::new();
    }
}

#[cfg(test)]
mod tests {

    fn redacted(line: &str) -> String {
        String::from_utf8(super::redacted(line.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn passwords_and_accounts_are_redacted() {
        assert_eq!(redacted("PASS secret"), "PASS ****");
        assert_eq!(redacted("pass two words"), "pass ****");
        assert_eq!(redacted("ACCT billing"), "ACCT ****");
        assert_eq!(redacted(" Pass x"), " Pass ****");
        assert_eq!(redacted("PASS"), "PASS");
        assert_eq!(redacted("USER alice"), "USER alice");
        assert_eq!(redacted("PASSWORD x"), "PASSWORD x");
        assert_eq!(redacted("RETR PASS x"), "RETR PASS x");
    }
}
