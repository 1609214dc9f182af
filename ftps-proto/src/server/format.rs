//! What the server writes about files: `ls -l` lines for LIST, names for NLST, MLSx facts
//! for MLSD and MLST (RFC 3659 §7), and quoted pathnames for 257 replies.

use crate::facts::{Fact, FileType, MlsxEntry};
use crate::listing::EntryKind;
use crate::path::VirtualPath;
use crate::server::io::Metadata;
use crate::server::permissions::{Grants, Permission, Permissions};
use crate::time::Timestamp;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Six months, roughly, in seconds: `ls` shows the time of day for newer files and the
/// year for older ones (or ones in the future).
const SIX_MONTHS: i64 = 182 * 86_400;

fn mode_string(meta: &Metadata) -> String {
    let kind = match meta.kind {
        EntryKind::Directory => 'd',
        EntryKind::Symlink => 'l',
        EntryKind::File => '-',
        _ => '?',
    };
    let mode = meta.mode.unwrap_or(match meta.kind {
        EntryKind::Directory => 0o755,
        _ => 0o644,
    });
    let mut s = String::with_capacity(10);
    s.push(kind);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

/// One `ls -l` line (without line ending), in the form vsftpd writes, with numeric-free
/// `ftp ftp` owner columns.
pub(crate) fn list_line(meta: &Metadata, now: &Timestamp) -> String {
    let date = match meta.modified {
        Some(t) => {
            let age = now.to_unix() - t.to_unix();
            let month = MONTHS[usize::from(t.month() - 1)];
            if (0..SIX_MONTHS).contains(&age) {
                format!("{month} {:02} {:02}:{:02}", t.day(), t.hour(), t.minute())
            } else {
                format!("{month} {:02}  {:04}", t.day(), t.year())
            }
        }
        None => "Jan 01  1970".to_owned(),
    };
    format!(
        "{} 1 ftp ftp {:>12} {date} {}",
        mode_string(meta),
        meta.size,
        meta.name
    )
}

/// What a user may do with an entry: `entry` in the directory that holds it (rename,
/// delete, store, retrieve), `inside` in the entry itself if it is a directory (list,
/// create, make directories, delete its entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Allowed {
    pub(crate) entry: Permissions,
    pub(crate) inside: Permissions,
}

impl Allowed {
    /// The same permissions for the entry and inside it.
    #[cfg(test)]
    fn both(p: Permissions) -> Self {
        Allowed {
            entry: p,
            inside: p,
        }
    }
}

/// The MLSx `perm` fact (RFC 3659 §7.5.5) for what the user may do: what the storage
/// allows (`writable`), narrowed by the user's permissions ([`Allowed`]), so a client is
/// never offered what it would be refused. Directories: `f` rename, `l` list, `c` create
/// files, `d` remove, `m` make directories, `p` delete entries, `e` enter; files: `a`
/// append, `d` delete, `f` rename, `r` retrieve, `w` store.
fn perm(meta: &Metadata, allowed: Allowed) -> String {
    use Permission as P;
    let w = meta.writable;
    let (entry, inside) = (allowed.entry, allowed.inside);
    let letters: &[(char, bool)] = if meta.kind == EntryKind::Directory {
        &[
            ('f', w && entry.allows(P::Rename)),
            ('l', inside.allows(P::List)),
            ('c', w && inside.allows(P::Upload)),
            ('d', w && entry.allows(P::RemoveDir)),
            ('m', w && inside.allows(P::MakeDir)),
            ('p', w && inside.allows(P::Delete)),
            ('e', true),
        ]
    } else {
        &[
            // APPE and a STOR over the file need both (see `permission_refusal`).
            (
                'a',
                w && entry.allows(P::Upload) && entry.allows(P::Overwrite),
            ),
            ('d', w && entry.allows(P::Delete)),
            ('f', w && entry.allows(P::Rename)),
            ('r', entry.allows(P::Download)),
            (
                'w',
                w && entry.allows(P::Upload) && entry.allows(P::Overwrite),
            ),
        ]
    };
    letters
        .iter()
        .filter(|(_, on)| *on)
        .map(|(c, _)| *c)
        .collect()
}

/// Which MLSx facts to send (OPTS MLST selects them, RFC 3659 §7.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FactSelection {
    pub(crate) kind: bool,
    pub(crate) size: bool,
    pub(crate) modify: bool,
    pub(crate) perm: bool,
    pub(crate) unique: bool,
    pub(crate) unix_mode: bool,
}

impl Default for FactSelection {
    fn default() -> Self {
        Self {
            kind: true,
            size: true,
            modify: true,
            perm: true,
            unique: true,
            unix_mode: true,
        }
    }
}

/// The facts this server can send, as FEAT lists them.
pub(crate) const FACT_NAMES: [&str; 6] = ["type", "size", "modify", "perm", "unique", "UNIX.mode"];

impl FactSelection {
    /// Parses `OPTS MLST fact;fact;`: unknown facts are ignored (RFC 3659 §7.9).
    pub(crate) fn parse(list: &str) -> Self {
        let has = |name: &str| list.split(';').any(|f| f.eq_ignore_ascii_case(name));
        Self {
            kind: has("type"),
            size: has("size"),
            modify: has("modify"),
            perm: has("perm"),
            unique: has("unique"),
            unix_mode: has("UNIX.mode"),
        }
    }

    fn flags(&self) -> [bool; 6] {
        [
            self.kind,
            self.size,
            self.modify,
            self.perm,
            self.unique,
            self.unix_mode,
        ]
    }

    /// `type;size;...;` of the selected facts.
    pub(crate) fn names(&self) -> String {
        FACT_NAMES
            .iter()
            .zip(self.flags())
            .filter(|(_, on)| *on)
            .map(|(n, _)| format!("{n};"))
            .collect()
    }

    /// The FEAT parameter: every fact, `*` on the selected ones.
    pub(crate) fn feat(&self) -> String {
        FACT_NAMES
            .iter()
            .zip(self.flags())
            .map(|(n, on)| {
                if on {
                    format!("{n}*;")
                } else {
                    format!("{n};")
                }
            })
            .collect()
    }
}

/// One MLSx entry for `meta`, named `pathname`, with the selected facts; `kind_override`
/// gives `cdir`/`pdir`.
pub(crate) fn mlsx_entry(
    meta: &Metadata,
    pathname: &str,
    select: FactSelection,
    allowed: Allowed,
) -> MlsxEntry {
    let mut facts = Vec::new();
    if select.kind {
        facts.push(Fact::Type(match meta.kind {
            EntryKind::Directory => FileType::Dir,
            EntryKind::File => FileType::File,
            EntryKind::Symlink => FileType::Other("OS.unix=symlink".to_owned()),
            _ => FileType::Other("OS.unix=special".to_owned()),
        }));
    }
    if select.size && meta.kind != EntryKind::Directory {
        facts.push(Fact::Size(meta.size));
    }
    if select.modify
        && let Some(t) = meta.modified
    {
        facts.push(Fact::Modify(t));
    }
    if select.perm {
        facts.push(Fact::Perm(perm(meta, allowed)));
    }
    if select.unique
        && let Some(u) = &meta.unique
    {
        facts.push(Fact::Unique(u.replace([';', ' ', '\r', '\n'], "_")));
    }
    if select.unix_mode
        && let Some(m) = meta.mode
    {
        facts.push(Fact::UnixMode(m & 0o7777));
    }
    MlsxEntry {
        facts,
        pathname: pathname.to_owned(),
        raw_pathname: None,
    }
}

/// A pathname in double quotes with embedded quotes doubled (RFC 959 Appendix II).
pub(crate) fn quote_path(path: &str) -> String {
    format!("\"{}\"", path.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listing::ListEntry;

    fn meta(name: &str, kind: EntryKind, modified: &str) -> Metadata {
        Metadata {
            name: name.to_owned(),
            kind,
            size: 24,
            modified: Some(Timestamp::parse(modified).unwrap()),
            mode: Some(0o644),
            writable: true,
            unique: Some("fe00g1".to_owned()),
        }
    }

    #[test]
    fn list_lines_parse_back() {
        let now = Timestamp::parse("20261122030000").unwrap();
        for (m, year) in [
            (
                meta("hello.txt", EntryKind::File, "20190304050607"),
                Some(2019),
            ),
            (
                meta("with space.txt", EntryKind::File, "20261122024025"),
                None,
            ),
            (meta("日本語", EntryKind::Directory, "20261001000000"), None),
        ] {
            let line = list_line(&m, &now);
            let parsed = ListEntry::parse(&line).unwrap();
            assert_eq!(parsed.name, m.name, "{line}");
            assert_eq!(parsed.kind, m.kind);
            assert_eq!(parsed.modified.unwrap().year, year, "{line}");
        }
    }

    #[test]
    fn mlsx_and_selection() {
        let m = meta("a;b c", EntryKind::File, "20190304050607");
        let e = mlsx_entry(
            &m,
            "a;b c",
            FactSelection::default(),
            Allowed::both(Permissions::ALL),
        );
        assert_eq!(
            e.to_string(),
            "type=file;size=24;modify=20190304050607;perm=adfrw;unique=fe00g1;UNIX.mode=0644; a;b c"
        );
        assert_eq!(MlsxEntry::parse(&e.to_string()).unwrap(), e);
        let only = FactSelection::parse("size;TYPE;bogus;");
        assert_eq!(only.names(), "type;size;");
        assert_eq!(
            mlsx_entry(&m, "x", only, Allowed::both(Permissions::ALL)).to_string(),
            "type=file;size=24; x"
        );
        assert_eq!(quote_path("/a\"b"), "\"/a\"\"b\"");
    }

    #[test]
    fn perm_tells_a_user_only_what_it_may_do() {
        let file = meta("f", EntryKind::File, "20190304050607");
        let dir = meta("d", EntryKind::Directory, "20190304050607");
        let perm = |m: &Metadata, a| {
            let only = FactSelection::parse("perm;");
            mlsx_entry(m, "x", only, Allowed::both(a)).to_string()
        };
        let upload = Permissions::READ_ONLY.with(Permission::Upload);
        let drop_box = Permissions::NONE.with(Permission::Upload);
        assert_eq!(perm(&file, Permissions::ALL), "perm=adfrw; x");
        assert_eq!(perm(&dir, Permissions::ALL), "perm=flcdmpe; x");
        assert_eq!(perm(&file, Permissions::READ_ONLY), "perm=r; x");
        assert_eq!(perm(&dir, Permissions::READ_ONLY), "perm=le; x");
        assert_eq!(perm(&file, upload), "perm=r; x");
        assert_eq!(perm(&dir, upload), "perm=lce; x");
        assert_eq!(perm(&file, drop_box), "perm=; x");
        assert_eq!(perm(&dir, drop_box), "perm=ce; x");
        // STOR over a file and APPE need upload as well as overwrite (review15, 3).
        let overwrite_only = Permissions::READ_ONLY.with(Permission::Overwrite);
        assert_eq!(perm(&file, overwrite_only), "perm=r; x");
        // A directory's own name is its parent's to rename or remove; what is inside it,
        // its own.
        let rule_dir = Allowed {
            entry: Permissions::READ_ONLY,
            inside: Permissions::ALL,
        };
        assert_eq!(
            mlsx_entry(&dir, "x", FactSelection::parse("perm;"), rule_dir).to_string(),
            "perm=lcmpe; x"
        );
        // What the storage does not allow is never offered.
        let mut locked = file.clone();
        locked.writable = false;
        assert_eq!(perm(&locked, Permissions::ALL), "perm=r; x");
    }
}

/// Which listing a data connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListKind {
    /// LIST: `ls -l` lines; dot files only with `-a`.
    List { hidden: bool },
    /// NLST: names, without dot files.
    Nlst,
    /// MLSD: facts (RFC 3659 §7), every entry.
    Mlsd,
}

/// How a listing on a data connection (LIST, NLST, MLSD) writes the entries of a
/// directory, one line each: the session decides it, the adapter streams the directory's
/// entries through [`line`](Self::line) as the data connection takes them, so a listing
/// costs bounded memory whatever the directory's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingFormat {
    pub(crate) kind: ListKind,
    pub(crate) facts: FactSelection,
    /// The listed directory, and what the user may do where (MLSD's `perm`).
    pub(crate) dir: VirtualPath,
    pub(crate) grants: Grants,
    pub(crate) max_entries: usize,
}

impl ListingFormat {
    /// The line for `entry`, CRLF included, or `None` when it is not shown: a dot file in
    /// LIST without `-a` or in NLST, or a name holding CR or LF (which no line can carry
    /// safely). `now` is the current UTC time (for the `ls -l` date form).
    pub fn line(&self, entry: &Metadata, now: &Timestamp) -> Option<String> {
        let hidden = entry.name.starts_with('.');
        let mut line = match self.kind {
            ListKind::List { hidden: all } if all || !hidden => list_line(entry, now),
            ListKind::Nlst if !hidden => entry.name.clone(),
            ListKind::Mlsd => {
                let here = self.grants.at(&self.dir);
                let inside = match entry.kind {
                    EntryKind::Directory => self.grants.at(&self.dir.resolve(&entry.name)),
                    _ => here,
                };
                let allowed = Allowed {
                    entry: here,
                    inside,
                };
                mlsx_entry(entry, &entry.name, self.facts, allowed).to_string()
            }
            _ => return None,
        };
        if line.contains(['\r', '\n']) {
            return None;
        }
        line.push_str("\r\n");
        Some(line)
    }

    /// At most this many entries are listed
    /// ([`ServerConfig::max_listing_entries`](super::ServerConfig::max_listing_entries)).
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }
}
