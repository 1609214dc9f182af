//! [`TransportError`]: why a connection under the protocol failed (a TLS handshake, a
//! data connection's connect, accept, handshake or stream), with its cause kept typed.
//!
//! The sans-IO core never makes one of these from IO itself: the runtime adapters report
//! them ([`client::IoEvent`](crate::client::IoEvent),
//! [`server::IoEvent`](crate::server::IoEvent)), and the client hands them on in
//! [`ClientError::Tls`](crate::client::ClientError::Tls) and
//! [`ClientError::Data`](crate::client::ClientError::Data).

use std::borrow::Cow;
use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// What kind of failure a [`TransportError`] is: what an application may act on (a
/// certificate not trusted is not worth a retry; a timeout may be).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The peer's certificate was not accepted: an unknown issuer, expired, another
    /// name, none sent. Retrying does not help; the certificate or the trust does.
    Certificate,
    /// TLS failed otherwise: an alert from the peer, a protocol error, nothing in common
    /// (versions, cipher suites), a record that did not decrypt.
    Tls,
    /// A socket failed (refused, reset, unreachable); [`io_kind`](TransportError::io_kind)
    /// says how.
    Io,
    /// A step did not finish within its time limit.
    TimedOut,
    /// The peer closed the connection before the step was done.
    Closed,
    /// Anything else; the text says what.
    Other,
}

/// Why a TLS handshake or a data connection failed.
///
/// `Display` is a sentence for a user; [`kind`](Self::kind) is what a program matches on;
/// [`cause`](Self::cause) is the typed error underneath, where there is one (a
/// [`std::io::Error`], or — from the rustls glue — a `rustls::Error`), to downcast.
/// Built from a cause alone ([`from_cause`](Self::from_cause)), it reads as the cause
/// does and its [`source`](Error::source) is the cause's source; built with a text, it
/// reads as the text and its source is the cause.
///
/// Two errors are equal when their kind and their full text (sources included) are.
#[derive(Clone)]
pub struct TransportError {
    kind: TransportErrorKind,
    text: Option<Cow<'static, str>>,
    cause: Option<Arc<dyn Error + Send + Sync>>,
}

impl TransportError {
    /// An error of `kind` that `text` explains, without a cause.
    pub fn new(kind: TransportErrorKind, text: impl Into<Cow<'static, str>>) -> Self {
        TransportError {
            kind,
            text: Some(text.into()),
            cause: None,
        }
    }

    /// An error that `cause` explains: it reads as `cause` does.
    pub fn from_cause(kind: TransportErrorKind, cause: impl Error + Send + Sync + 'static) -> Self {
        TransportError {
            kind,
            text: None,
            cause: Some(Arc::new(cause)),
        }
    }

    /// The same error, `text` first, its cause after.
    #[must_use]
    pub fn context(mut self, text: impl Into<Cow<'static, str>>) -> Self {
        if let Some(old) = self.text.take() {
            // The old text stays, as the cause's sentence.
            let old = TransportError {
                kind: self.kind,
                text: Some(old),
                cause: self.cause.take(),
            };
            self.cause = Some(Arc::new(old));
        }
        self.text = Some(text.into());
        self
    }

    /// An IO error, its kind told by its [`std::io::ErrorKind`] (a timeout, an
    /// unexpected end, else [`TransportErrorKind::Io`]). With the `rustls` feature, a
    /// rustls error inside it (as rustls' and our TLS streams wrap them) is unwrapped
    /// and classed as [`Certificate`](TransportErrorKind::Certificate) or
    /// [`Tls`](TransportErrorKind::Tls).
    pub fn from_io(e: std::io::Error) -> Self {
        #[cfg(feature = "rustls")]
        if let Some(tls) = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Self::from_rustls(tls.clone());
        }
        let kind = match e.kind() {
            std::io::ErrorKind::TimedOut => TransportErrorKind::TimedOut,
            std::io::ErrorKind::UnexpectedEof => TransportErrorKind::Closed,
            _ => TransportErrorKind::Io,
        };
        Self::from_cause(kind, e)
    }

    /// A rustls error: [`Certificate`](TransportErrorKind::Certificate) where the
    /// peer's certificate (or its absence) is the reason, else
    /// [`Tls`](TransportErrorKind::Tls).
    #[cfg(feature = "rustls")]
    pub fn from_rustls(e: rustls::Error) -> Self {
        let kind = match e {
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                TransportErrorKind::Certificate
            }
            _ => TransportErrorKind::Tls,
        };
        Self::from_cause(kind, e)
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// The typed error underneath, if any (downcast it: `std::io::Error`,
    /// `rustls::Error`, or another `TransportError` after [`context`](Self::context)).
    pub fn cause(&self) -> Option<&(dyn Error + Send + Sync + 'static)> {
        self.cause.as_deref()
    }

    /// The socket error's kind, where an IO error is the cause.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        self.cause()?
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
    }

    fn full_text(&self) -> String {
        let mut text = self.to_string();
        let mut next = self.source();
        while let Some(e) = next {
            text.push_str(": ");
            text.push_str(&e.to_string());
            next = e.source();
        }
        text
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.text, &self.cause) {
            (Some(text), _) => f.write_str(text),
            (None, Some(cause)) => fmt::Display::fmt(&**cause, f),
            (None, None) => f.write_str("the connection failed"),
        }
    }
}

impl fmt::Debug for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportError")
            .field("kind", &self.kind)
            .field("text", &self.text)
            .field("cause", &self.cause)
            .finish()
    }
}

impl Error for TransportError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        let cause = self.cause.as_deref()?;
        if self.text.is_some() {
            Some(cause)
        } else {
            // It reads as its cause: the chain goes on from the cause's source.
            cause.source()
        }
    }
}

impl PartialEq for TransportError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.full_text() == other.full_text()
    }
}

impl Eq for TransportError {}

impl From<std::io::Error> for TransportError {
    fn from(e: std::io::Error) -> Self {
        Self::from_io(e)
    }
}

/// A text alone: [`TransportErrorKind::Other`].
impl From<&'static str> for TransportError {
    fn from(text: &'static str) -> Self {
        Self::new(TransportErrorKind::Other, text)
    }
}

/// A text alone: [`TransportErrorKind::Other`].
impl From<String> for TransportError {
    fn from(text: String) -> Self {
        Self::new(TransportErrorKind::Other, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(e: &dyn Error) -> String {
        let mut text = e.to_string();
        let mut next = e.source();
        while let Some(s) = next {
            text = format!("{text}: {s}");
            next = s.source();
        }
        text
    }

    #[test]
    fn an_io_error_reads_as_itself_and_keeps_its_kind() {
        let e = TransportError::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused",
        ));
        assert_eq!(e.kind(), TransportErrorKind::Io);
        assert_eq!(e.io_kind(), Some(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(chain(&e), "refused");
        let timed = TransportError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert_eq!(timed.kind(), TransportErrorKind::TimedOut);
        let eof = TransportError::from(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        assert_eq!(eof.kind(), TransportErrorKind::Closed);
    }

    #[test]
    fn context_goes_first_and_the_cause_stays_in_the_chain() {
        let e = TransportError::from(std::io::Error::other("reset"))
            .context("connecting to 127.0.0.1:1");
        assert_eq!(e.to_string(), "connecting to 127.0.0.1:1");
        assert_eq!(chain(&e), "connecting to 127.0.0.1:1: reset");
        let twice = e.context("the data connection");
        assert_eq!(
            chain(&twice),
            "the data connection: connecting to 127.0.0.1:1: reset"
        );
        assert_eq!(twice.kind(), TransportErrorKind::Io);
    }

    #[test]
    fn equal_means_same_kind_and_text() {
        let a = TransportError::from("x");
        assert_eq!(a, TransportError::from("x".to_string()));
        assert_ne!(a, TransportError::new(TransportErrorKind::TimedOut, "x"));
        assert_ne!(a, TransportError::from("y"));
    }

    #[cfg(feature = "rustls")]
    #[test]
    fn rustls_errors_inside_io_errors_are_unwrapped_and_classed() {
        let bad_cert = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let e = TransportError::from(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            bad_cert.clone(),
        ));
        assert_eq!(e.kind(), TransportErrorKind::Certificate);
        assert_eq!(
            e.cause().and_then(|c| c.downcast_ref::<rustls::Error>()),
            Some(&bad_cert)
        );
        assert_eq!(e.to_string(), bad_cert.to_string());
        let alert = TransportError::from(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure),
        ));
        assert_eq!(alert.kind(), TransportErrorKind::Tls);
    }
}
