//! MLSx facts (RFC 3659 §7): the entries of MLSD listings and of MLST replies.
//!
//! ```text
//! entry = [ facts ] SP pathname
//! facts = 1*( fact ";" )
//! fact  = factname "=" value
//! ```
//!
//! Fact names are case-insensitive. The facts this crate types are `type`, `size`,
//! `modify`, `create`, `perm`, `unique` and `UNIX.mode`; any other fact (`sizd`, `lang`,
//! `media-type`, `UNIX.owner`, ...) is kept as a name and value. A value of a typed fact
//! that does not parse (a `size` that is not a number) is kept as an untyped fact rather
//! than failing the whole entry.

use crate::error::ParseError;
use crate::time::Timestamp;
use std::fmt;

/// The value of the `type` fact (RFC 3659 §7.5.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FileType {
    /// `file`.
    File,
    /// `dir`.
    Dir,
    /// `cdir`: the listed directory itself.
    Cdir,
    /// `pdir`: its parent.
    Pdir,
    /// Anything else, such as `OS.unix=symlink` (kept as sent).
    Other(String),
}

impl FileType {
    fn parse(value: &str) -> Self {
        match value.to_ascii_lowercase().as_str() {
            "file" => Self::File,
            "dir" => Self::Dir,
            "cdir" => Self::Cdir,
            "pdir" => Self::Pdir,
            _ => Self::Other(value.to_owned()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Self::File => "file",
            Self::Dir => "dir",
            Self::Cdir => "cdir",
            Self::Pdir => "pdir",
            Self::Other(s) => s,
        }
    }

    /// True for `dir`, `cdir` and `pdir`.
    pub fn is_dir(&self) -> bool {
        matches!(self, Self::Dir | Self::Cdir | Self::Pdir)
    }

    /// True for the `OS.unix=symlink` and `OS.unix=slink:...` forms servers use for links.
    pub fn is_symlink(&self) -> bool {
        match self {
            Self::Other(s) => {
                let s = s.to_ascii_lowercase();
                s.starts_with("os.unix=symlink") || s.starts_with("os.unix=slink")
            }
            _ => false,
        }
    }
}

/// One fact of an MLSx entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fact {
    /// `type`.
    Type(FileType),
    /// `size`: bytes.
    Size(u64),
    /// `modify`: last modification, UTC.
    Modify(Timestamp),
    /// `create`: creation, UTC.
    Create(Timestamp),
    /// `perm`: the permission letters (RFC 3659 §7.5.5), e.g. `adfrw`.
    Perm(String),
    /// `unique`: an identifier unique to the file on the server.
    Unique(String),
    /// `UNIX.mode`: the permission bits, octal on the wire.
    UnixMode(u32),
    /// Any other fact, name as sent.
    Other {
        /// The fact name.
        name: String,
        /// The value.
        value: String,
    },
}

impl Fact {
    fn parse(name: &str, value: &str) -> Self {
        let other = || Self::Other {
            name: name.to_owned(),
            value: value.to_owned(),
        };
        let number = |v: &str| v.bytes().all(|b| b.is_ascii_digit()) && !v.is_empty();
        match name.to_ascii_lowercase().as_str() {
            "type" => Self::Type(FileType::parse(value)),
            "size" if number(value) => value.parse().map_or_else(|_| other(), Self::Size),
            "modify" => Timestamp::parse(value).map_or_else(|_| other(), Self::Modify),
            "create" => Timestamp::parse(value).map_or_else(|_| other(), Self::Create),
            "perm" => Self::Perm(value.to_owned()),
            "unique" => Self::Unique(value.to_owned()),
            "unix.mode"
                if value.bytes().all(|b| (b'0'..=b'7').contains(&b)) && !value.is_empty() =>
            {
                u32::from_str_radix(value, 8).map_or_else(|_| other(), Self::UnixMode)
            }
            _ => other(),
        }
    }
}

impl fmt::Display for Fact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Type(t) => write!(f, "type={}", t.as_str()),
            Self::Size(n) => write!(f, "size={n}"),
            Self::Modify(t) => write!(f, "modify={t}"),
            Self::Create(t) => write!(f, "create={t}"),
            Self::Perm(p) => write!(f, "perm={p}"),
            Self::Unique(u) => write!(f, "unique={u}"),
            Self::UnixMode(m) => write!(f, "UNIX.mode={m:04o}"),
            Self::Other { name, value } => write!(f, "{name}={value}"),
        }
    }
}

/// One MLSx entry: facts and a pathname.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlsxEntry {
    /// The facts in the order given.
    pub facts: Vec<Fact>,
    /// The pathname: a name in MLSD, usually a full path in MLST.
    pub pathname: String,
    /// The pathname's bytes as the server sent them, when they are not UTF-8 (`pathname`
    /// then holds them decoded lossily): what fetches the file back. Set by the client's
    /// listing parser ([`crate::client::listing::parse_mlsd`]), which sees the bytes.
    pub raw_pathname: Option<Vec<u8>>,
}

impl MlsxEntry {
    /// Parses one entry line of an MLSD listing (without its line ending).
    pub fn parse(line: &str) -> Result<Self, ParseError> {
        let err = |reason| ParseError::new("MLSx entry", reason);
        let line = line.trim_end_matches(['\r', '\n']);
        let (facts, pathname) = line
            .split_once(' ')
            .ok_or(err("no space before the pathname"))?;
        if pathname.is_empty() {
            return Err(err("no pathname"));
        }
        if pathname.contains(['\r', '\n', '\0']) {
            return Err(err("pathname contains CR, LF or NUL"));
        }
        let mut parsed = Vec::new();
        if !facts.is_empty() {
            let body = facts
                .strip_suffix(';')
                .ok_or(err("facts do not end with ';'"))?;
            for fact in body.split(';') {
                let (name, value) = fact.split_once('=').ok_or(err("fact without '='"))?;
                if name.is_empty() {
                    return Err(err("empty fact name"));
                }
                parsed.push(Fact::parse(name, value));
            }
        }
        Ok(Self {
            facts: parsed,
            pathname: pathname.to_owned(),
            raw_pathname: None,
        })
    }

    /// Parses the entry line of an MLST reply's inner line, which RFC 3659 §7.2 starts with
    /// one space.
    pub fn parse_mlst_line(line: &str) -> Result<Self, ParseError> {
        Self::parse(line.strip_prefix(' ').unwrap_or(line))
    }

    /// The pathname as the server sent it: [`raw_pathname`](Self::raw_pathname) if set,
    /// else `pathname`. Give it to the client's calls to reach the entry.
    pub fn pathname_bytes(&self) -> &[u8] {
        self.raw_pathname
            .as_deref()
            .unwrap_or(self.pathname.as_bytes())
    }

    /// The `type` fact.
    pub fn file_type(&self) -> Option<&FileType> {
        self.facts.iter().find_map(|f| match f {
            Fact::Type(t) => Some(t),
            _ => None,
        })
    }

    /// The `size` fact.
    pub fn size(&self) -> Option<u64> {
        self.facts.iter().find_map(|f| match f {
            Fact::Size(n) => Some(*n),
            _ => None,
        })
    }

    /// The `modify` fact.
    pub fn modified(&self) -> Option<Timestamp> {
        self.facts.iter().find_map(|f| match f {
            Fact::Modify(t) => Some(*t),
            _ => None,
        })
    }

    /// The `perm` fact.
    pub fn perm(&self) -> Option<&str> {
        self.facts.iter().find_map(|f| match f {
            Fact::Perm(p) => Some(p.as_str()),
            _ => None,
        })
    }

    /// The `unique` fact.
    pub fn unique(&self) -> Option<&str> {
        self.facts.iter().find_map(|f| match f {
            Fact::Unique(u) => Some(u.as_str()),
            _ => None,
        })
    }

    /// The `UNIX.mode` fact.
    pub fn unix_mode(&self) -> Option<u32> {
        self.facts.iter().find_map(|f| match f {
            Fact::UnixMode(m) => Some(*m),
            _ => None,
        })
    }
}

/// Writes the entry line, without a line ending: `fact=value;...; pathname`.
impl fmt::Display for MlsxEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for fact in &self.facts {
            write!(f, "{fact};")?;
        }
        write!(f, " {}", self.pathname)
    }
}

/// Parses an MLSD listing: one entry per non-empty line.
pub fn parse_mlsd(text: &str) -> impl Iterator<Item = Result<MlsxEntry, ParseError>> + '_ {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(MlsxEntry::parse)
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for MlsxEntry {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let clean = |s: String, forbidden: &[char]| -> String {
            s.chars()
                .filter(|c| !forbidden.contains(c) && !matches!(c, '\r' | '\n' | '\0'))
                .collect()
        };
        let value_forbidden = [';', ' '];
        let mut facts = Vec::new();
        for _ in 0..u.int_in_range(0..=6)? {
            let fact = match u.int_in_range(0..=7)? {
                0 => Fact::Type(match u.int_in_range(0..=4)? {
                    0 => FileType::File,
                    1 => FileType::Dir,
                    2 => FileType::Cdir,
                    3 => FileType::Pdir,
                    _ => FileType::Other(format!("OS.{}", clean(u.arbitrary()?, &value_forbidden))),
                }),
                1 => Fact::Size(u.arbitrary()?),
                2 => Fact::Modify(u.arbitrary()?),
                3 => Fact::Create(u.arbitrary()?),
                4 => Fact::Perm(clean(u.arbitrary()?, &value_forbidden)),
                5 => Fact::Unique(clean(u.arbitrary()?, &value_forbidden)),
                6 => Fact::UnixMode(u.int_in_range(0..=0o7777)?),
                _ => Fact::Other {
                    name: format!("x.{}", clean(u.arbitrary()?, &['=', ';', ' '])),
                    value: clean(u.arbitrary()?, &value_forbidden),
                },
            };
            facts.push(fact);
        }
        let name = clean(u.arbitrary()?, &[]);
        if name.is_empty() {
            return Err(arbitrary::Error::IncorrectFormat);
        }
        Ok(Self {
            facts,
            pathname: name,
            raw_pathname: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proftpd_entry() {
        let e = MlsxEntry::parse("modify=20190304050607;perm=adfrw;size=24;type=file;unique=FE00U5108DE;UNIX.group=1001;UNIX.mode=0644; hello.txt").unwrap();
        assert_eq!(e.pathname, "hello.txt");
        assert_eq!(e.size(), Some(24));
        assert_eq!(e.file_type(), Some(&FileType::File));
        assert_eq!(e.unix_mode(), Some(0o644));
        assert_eq!(e.modified().unwrap().to_string(), "20190304050607");
        assert_eq!(e.perm(), Some("adfrw"));
        assert_eq!(e.unique(), Some("FE00U5108DE"));
    }

    #[test]
    fn symlink_types_and_spaces() {
        let e = MlsxEntry::parse("type=OS.unix=slink:;size=9; link-to-hello").unwrap();
        assert!(e.file_type().unwrap().is_symlink());
        let s = MlsxEntry::parse("type=file;size=3; with space.txt").unwrap();
        assert_eq!(s.pathname, "with space.txt");
        let n = MlsxEntry::parse(" bare-name").unwrap();
        assert!(n.facts.is_empty());
    }

    #[test]
    fn format_round_trips() {
        let line =
            "type=dir;size=4096;modify=20261122024025;perm=flcdmpe;UNIX.mode=0755;x.y=z; 日本語";
        let e = MlsxEntry::parse(line).unwrap();
        assert_eq!(e.to_string(), line);
        assert_eq!(MlsxEntry::parse(&e.to_string()).unwrap(), e);
    }

    #[test]
    fn malformed_entries() {
        for line in [
            "type=file;size=1;",
            "type=file;size=1 ",
            "type=file size=1; x",
            "=1; x",
        ] {
            assert!(MlsxEntry::parse(line).is_err(), "{line}");
        }
        // A bad typed value is kept, not fatal.
        let e = MlsxEntry::parse("size=big;modify=yesterday; x").unwrap();
        assert_eq!(e.size(), None);
        assert_eq!(e.facts.len(), 2);
    }
}
