//! Validated text arguments: pathnames, free text, tokens and passwords.
//!
//! Every type here refuses CR, LF and NUL, so no value that reaches the encoder can end a
//! command line early and smuggle in a second command (RFC 959 §4.1.3: `<pathname>` and
//! `<string>` are made of `<char>`, any ASCII except CR and LF; NUL is refused as well,
//! because the Telnet NVT gives it a meaning and file systems refuse it).

use crate::error::ParseError;
use std::fmt;

/// True if `s` holds no byte that could end or corrupt a control-channel line.
fn is_line_safe(s: &str) -> bool {
    !s.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

fn check_text(what: &'static str, s: &str, allow_empty: bool) -> Result<(), ParseError> {
    if !allow_empty && s.is_empty() {
        return Err(ParseError::new(what, "is empty"));
    }
    if !is_line_safe(s) {
        return Err(ParseError::new(what, "contains CR, LF or NUL"));
    }
    Ok(())
}

/// Defines a newtype over `String` whose constructor runs a validation function.
macro_rules! validated_string {
    ($(#[$meta:meta])* $name:ident, $what:literal, $check:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Validates `value`; see the type's documentation for the rules.
            pub fn new(value: impl Into<String>) -> Result<Self, ParseError> {
                let value = value.into();
                let check: fn(&str) -> Result<String, ParseError> = $check;
                check(&value).map(Self)
            }

            /// The value as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Gives the inner string back.
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<&str> for $name {
            type Error = ParseError;
            fn try_from(value: &str) -> Result<Self, ParseError> {
                Self::new(value)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(value: String) -> Result<Self, ParseError> {
                Self::new(value)
            }
        }

        #[cfg(feature = "arbitrary")]
        impl<'a> arbitrary::Arbitrary<'a> for $name {
            fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
                let raw: String = u.arbitrary()?;
                let cleaned: String = raw
                    .chars()
                    .filter(|c| !matches!(c, '\r' | '\n' | '\0'))
                    .collect();
                Self::new(cleaned).map_err(|_| arbitrary::Error::IncorrectFormat)
            }
        }
    };
}

/// A pathname argument (RFC 959 §4.1.3 `<pathname>`): non-empty, with no CR, LF or NUL.
/// Any other character, leading and trailing spaces included, is kept as it is: file names
/// may contain them.
///
/// Pathnames are UTF-8 (RFC 2640 §2.2) when made from text ([`Pathname::new`]); a server
/// parses only those. A client may also need one that is not: servers that predate RFC
/// 2640 list names in whatever bytes their file system holds (vsftpd, for one, passes
/// Latin-1 names through), and such a file can only be fetched back by the same bytes.
/// [`Pathname::from_bytes`] keeps them: they go on the wire unchanged, while
/// [`as_str`](Self::as_str) and `Display` show them decoded lossily (U+FFFD for each byte
/// that is not UTF-8).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pathname {
    /// The text: the pathname itself, or its lossy decoding when `bytes` is set.
    text: String,
    /// The bytes, only when they are not UTF-8.
    bytes: Option<Box<[u8]>>,
}

impl Pathname {
    /// Validates `value`: non-empty, no CR, LF or NUL.
    pub fn new(value: impl Into<String>) -> Result<Self, ParseError> {
        let text = value.into();
        check_text("pathname", &text, false)?;
        Ok(Self { text, bytes: None })
    }

    /// A pathname from bytes, UTF-8 or not (see the type's documentation): non-empty, no
    /// CR, LF or NUL.
    pub fn from_bytes(value: impl Into<Vec<u8>>) -> Result<Self, ParseError> {
        match String::from_utf8(value.into()) {
            Ok(text) => Self::new(text),
            Err(e) => {
                let bytes = e.into_bytes();
                if bytes.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
                    return Err(ParseError::new("pathname", "contains CR, LF or NUL"));
                }
                Ok(Self {
                    text: String::from_utf8_lossy(&bytes).into_owned(),
                    bytes: Some(bytes.into_boxed_slice()),
                })
            }
        }
    }

    /// The pathname as text: lossily decoded if it is not UTF-8 (see
    /// [`is_utf8`](Self::is_utf8)).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The bytes sent on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.as_deref().unwrap_or(self.text.as_bytes())
    }

    /// Whether the pathname is UTF-8 (so [`as_str`](Self::as_str) is exact).
    pub fn is_utf8(&self) -> bool {
        self.bytes.is_none()
    }

    /// Gives the text back (lossily decoded if the pathname is not UTF-8).
    pub fn into_inner(self) -> String {
        self.text
    }
}

/// Equal when the bytes are.
impl PartialEq<str> for Pathname {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

/// Equal when the bytes are.
impl PartialEq<&str> for Pathname {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl AsRef<str> for Pathname {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl AsRef<[u8]> for Pathname {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl TryFrom<&str> for Pathname {
    type Error = ParseError;
    fn try_from(value: &str) -> Result<Self, ParseError> {
        Self::new(value)
    }
}

impl TryFrom<String> for Pathname {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, ParseError> {
        Self::new(value)
    }
}

/// Text pathnames only: what a server parses (commands round-trip through it).
#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Pathname {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let raw: String = u.arbitrary()?;
        Self::new(raw.replace(['\r', '\n', '\0'], ""))
            .map_err(|_| arbitrary::Error::IncorrectFormat)
    }
}

validated_string!(
    /// A free-text argument (RFC 959 `<string>`), as taken by SITE, HELP, ACCT, ADAT, MIC,
    /// CONF, ENC, LANG, HOST and OPTS: non-empty, no CR, LF or NUL.
    Text,
    "text argument",
    |s| check_text("text argument", s, false).map(|()| s.to_owned())
);

validated_string!(
    /// A user name for USER: non-empty, no CR, LF or NUL.
    Username,
    "user name",
    |s| check_text("user name", s, false).map(|()| s.to_owned())
);

validated_string!(
    /// A keyword such as an AUTH mechanism (`TLS`, `SSL`) or the command named by OPTS:
    /// non-empty printable ASCII without spaces, stored in upper case (keywords are
    /// case-insensitive, RFC 959 §5.3).
    Token,
    "keyword",
    |s| {
        if s.is_empty() {
            return Err(ParseError::new("keyword", "is empty"));
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ParseError::new("keyword", "is not printable ASCII without spaces"));
        }
        Ok(s.to_ascii_uppercase())
    }
);

impl fmt::Debug for Pathname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.bytes {
            None => write!(f, "Pathname({:?})", self.text),
            Some(bytes) => write!(f, "Pathname({:?})", bytes.escape_ascii().to_string()),
        }
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Text({:?})", self.0)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Username({:?})", self.0)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({:?})", self.0)
    }
}

impl fmt::Display for Pathname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A password for PASS. It may be empty (anonymous logins send one), must hold no CR, LF
/// or NUL, and is never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Validates `value`: no CR, LF or NUL.
    pub fn new(value: impl Into<String>) -> Result<Self, ParseError> {
        let value = value.into();
        check_text("password", &value, true)?;
        Ok(Self(value))
    }

    /// The secret itself. Call this only where the password must be used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Password {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let raw: String = u.arbitrary()?;
        Self::new(raw.replace(['\r', '\n', '\0'], ""))
            .map_err(|_| arbitrary::Error::IncorrectFormat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pathname_refuses_line_breaks_and_nul() {
        assert!(Pathname::new("a\r\nDELE b").is_err());
        assert!(Pathname::new("a\nb").is_err());
        assert!(Pathname::new("a\0b").is_err());
        assert!(Pathname::new("").is_err());
        assert_eq!(
            Pathname::new(" spaced name ").unwrap().as_str(),
            " spaced name "
        );
    }

    #[test]
    fn pathname_keeps_bytes_that_are_not_utf8() {
        let latin1 = Pathname::from_bytes(&b"caf\xe9 menu.txt"[..]).unwrap();
        assert_eq!(latin1.as_bytes(), b"caf\xe9 menu.txt");
        assert_eq!(latin1.as_str(), "caf\u{fffd} menu.txt");
        assert!(!latin1.is_utf8());
        assert_ne!(latin1, Pathname::new("caf\u{fffd} menu.txt").unwrap());
        let utf8 = Pathname::from_bytes("café".as_bytes()).unwrap();
        assert_eq!(utf8, Pathname::new("café").unwrap());
        assert!(utf8.is_utf8());
        assert!(Pathname::from_bytes(&b"\xe9\r\nDELE x"[..]).is_err());
        assert!(Pathname::from_bytes(&b"\xe9\0"[..]).is_err());
        assert!(Pathname::from_bytes(Vec::new()).is_err());
    }

    #[test]
    fn token_is_upper_case() {
        assert_eq!(Token::new("tls").unwrap().as_str(), "TLS");
        assert!(Token::new("T LS").is_err());
    }

    #[test]
    fn password_is_redacted() {
        let p = Password::new("hunter2").unwrap();
        assert_eq!(format!("{p:?}"), "Password(<redacted>)");
        assert!(Password::new("").is_ok());
        assert!(Password::new("x\r\nUSER y").is_err());
    }
}

/// Text from a peer (a user name, a path, a reply), made safe to log or print: control
/// characters — C0, DEL and C1, which include ESC and so every ANSI/OSC sequence — and
/// the Unicode bidirectional controls (U+061C, U+200E/F, U+202A–U+202E, U+2066–U+2069,
/// which reorder what a reader sees: "Trojan Source", CVE-2021-42574) are written as
/// `\u{..}` escapes, and a backslash as `\\`, so the text can neither drive a terminal,
/// disguise itself, nor forge an escape or split a log line. Everything else is written
/// as it is.
#[derive(Debug, Clone, Copy)]
pub struct Printable<'a>(pub &'a str);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        for c in self.0.chars() {
            if c.is_control() || is_bidi_control(c) {
                write!(f, "\\u{{{:x}}}", u32::from(c))?;
            } else if c == '\\' {
                f.write_str("\\\\")?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

/// Bytes from a peer or for one (a command line, a reply line, a pathname), shown as
/// [`Printable`] text where they are UTF-8; a byte that is not part of valid UTF-8 is
/// written `\xNN`, so a Latin-1 `é` (0xE9) shows as `\xE9`, not as U+FFFD, and cannot be
/// taken for the bytes of U+FFFD itself (a backslash in the text is `\\`, so the escape
/// cannot be forged).
#[derive(Debug, Clone, Copy)]
pub struct PrintableBytes<'a>(pub &'a [u8]);

impl fmt::Display for PrintableBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            fmt::Display::fmt(&Printable(chunk.valid()), f)?;
            for b in chunk.invalid() {
                write!(f, "\\x{b:02X}")?;
            }
        }
        Ok(())
    }
}

/// The Unicode bidirectional formatting characters (UAX #9): marks, embeddings,
/// overrides and isolates.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod printable_tests {
    use super::{Printable, PrintableBytes};

    #[test]
    fn bytes_that_are_not_utf8_are_escaped() {
        let show = |b: &[u8]| PrintableBytes(b).to_string();
        assert_eq!(show(b"RETR caf\xe9.txt"), "RETR caf\\xE9.txt");
        assert_eq!(show("RETR café".as_bytes()), "RETR café");
        assert_eq!(show("\u{fffd}".as_bytes()), "\u{fffd}");
        assert_eq!(show(b"a\\xE9\x1b"), "a\\\\xE9\\u{1b}");
    }

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        let shown = Printable("a\u{1b}[2Jb\u{9b}c\u{7f}\t日本").to_string();
        assert_eq!(shown, "a\\u{1b}[2Jb\\u{9b}c\\u{7f}\\u{9}日本");
        assert!(!shown.chars().any(char::is_control));
    }

    #[test]
    fn bidi_controls_and_backslashes_cannot_disguise_text() {
        // "Trojan Source": U+202E shows "exe.txt" as "txt.exe".
        let shown = Printable("evil\u{202e}txt.exe \u{2066}x\u{2069}").to_string();
        assert_eq!(shown, "evil\\u{202e}txt.exe \\u{2066}x\\u{2069}");
        // A peer's literal "\u{1b}" cannot pass for an escaped ESC.
        assert_eq!(Printable("a\\u{1b}").to_string(), "a\\\\u{1b}");
        assert_ne!(
            Printable("a\\u{1b}").to_string(),
            Printable("a\u{1b}").to_string()
        );
    }
}
