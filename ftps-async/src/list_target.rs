//! [`ListTarget`]: what a listing or status command names.

use ftps_proto::{ParseError, Pathname};

/// What LIST, MLSD, NLST, MLST or STAT names: a path — as text, or as the bytes a server
/// sent, so that a name that is not UTF-8 is listed by the same bytes it came as — or
/// nothing (`None`: the current directory, or the server's status for STAT).
///
/// Implemented for `Option<&str>` (so `None` and `Some("dir")`), `&str`, `String`,
/// `&[u8]`, `Vec<u8>` and `Pathname` (and references to them): `client.list(None)`,
/// `client.list("pub")`, `client.nlst(&name)` with a `Pathname` from an earlier listing.
pub trait ListTarget {
    /// The path's bytes, or None for no path.
    fn target(&self) -> Option<&[u8]>;
}

/// The pathname to send, checked (no CR, LF or NUL: RFC 959 §4.1.3's `<pathname>` is any
/// string of characters but those that end a command line).
pub(crate) fn pathname(target: &impl ListTarget) -> Result<Option<Pathname>, ParseError> {
    target.target().map(Pathname::from_bytes).transpose()
}

impl ListTarget for Option<&str> {
    fn target(&self) -> Option<&[u8]> {
        self.map(str::as_bytes)
    }
}

impl ListTarget for str {
    fn target(&self) -> Option<&[u8]> {
        Some(self.as_bytes())
    }
}

impl ListTarget for String {
    fn target(&self) -> Option<&[u8]> {
        Some(self.as_bytes())
    }
}

impl ListTarget for [u8] {
    fn target(&self) -> Option<&[u8]> {
        Some(self)
    }
}

impl ListTarget for Vec<u8> {
    fn target(&self) -> Option<&[u8]> {
        Some(self)
    }
}

impl ListTarget for Pathname {
    fn target(&self) -> Option<&[u8]> {
        Some(self.as_bytes())
    }
}

impl<T: ListTarget + ?Sized> ListTarget for &T {
    fn target(&self) -> Option<&[u8]> {
        (**self).target()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(t: impl ListTarget) -> Option<Vec<u8>> {
        t.target().map(<[u8]>::to_vec)
    }

    #[test]
    fn every_form_names_the_same_bytes() {
        let text = String::from("d\u{e9}j\u{e0}");
        let raw = b"caf\xe9".to_vec();
        assert_eq!(bytes(None), None);
        assert_eq!(bytes("pub"), Some(b"pub".to_vec()));
        assert_eq!(bytes(Some("pub")), Some(b"pub".to_vec()));
        assert_eq!(bytes(&text), Some(text.as_bytes().to_vec()));
        assert_eq!(bytes(&raw[..]), Some(raw.clone()));
        assert_eq!(bytes(&raw), Some(raw.clone()));
        let name = Pathname::from_bytes(raw.clone()).unwrap();
        assert_eq!(pathname(&&name).unwrap(), Some(name.clone()));
        assert_eq!(pathname(&name).unwrap(), Some(name));
        // What ends a command line cannot be in a path.
        assert!(pathname(&"a\r\nDELE b").is_err());
    }
}
