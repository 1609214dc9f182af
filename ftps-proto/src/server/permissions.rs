//! What a logged-in user may do, per directory ([`Grants`] of [`Permissions`]), and the
//! one place every command is checked against it (for every storage back-end).
//!
//! The permission names follow SFTPGo's (list, download, upload, overwrite, delete,
//! rename, make and remove directories, set times); the MLSx `perm` fact (RFC 3659
//! §7.5.5) is derived from them, so a client is never offered what it would be refused.

use crate::path::VirtualPath;
use std::fmt;

/// One thing a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Permission {
    /// List directories (LIST, NLST, MLSD, MLST, STAT with a path) and read facts about
    /// files (SIZE, MDTM).
    List,
    /// Download files (RETR).
    Download,
    /// Upload new files (STOR to a name that does not exist, STOU).
    Upload,
    /// Change existing files: replace one by STOR, resume an upload (REST + STOR),
    /// append (APPE); each needs [`Upload`](Self::Upload) as well. Without it, RNTO
    /// renames only to a name that does not exist.
    Overwrite,
    /// Delete files (DELE).
    Delete,
    /// Rename files and directories (RNFR/RNTO; needed at both names). A name that is,
    /// or holds, a per-directory rule's directory is never renamed (see
    /// [`Grants::has_rule_within`]).
    Rename,
    /// Make directories (MKD).
    MakeDir,
    /// Remove directories (RMD).
    RemoveDir,
    /// Set modification times (MFMT).
    SetTime,
}

impl Permission {
    /// Every permission, in the order of [`Permissions`]' display.
    pub const ALL: [Permission; 9] = [
        Permission::List,
        Permission::Download,
        Permission::Upload,
        Permission::Overwrite,
        Permission::Delete,
        Permission::Rename,
        Permission::MakeDir,
        Permission::RemoveDir,
        Permission::SetTime,
    ];

    /// The permission's name in configuration files (`list`, `download`, `upload`,
    /// `overwrite`, `delete`, `rename`, `mkdir`, `rmdir`, `settime`).
    pub fn name(self) -> &'static str {
        match self {
            Permission::List => "list",
            Permission::Download => "download",
            Permission::Upload => "upload",
            Permission::Overwrite => "overwrite",
            Permission::Delete => "delete",
            Permission::Rename => "rename",
            Permission::MakeDir => "mkdir",
            Permission::RemoveDir => "rmdir",
            Permission::SetTime => "settime",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of [`Permission`]s.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permissions(u16);

impl Permissions {
    /// Nothing.
    pub const NONE: Permissions = Permissions(0);
    /// Everything.
    pub const ALL: Permissions = Permissions((1 << Permission::ALL.len()) - 1);
    /// List and download.
    pub const READ_ONLY: Permissions = Permissions(0b11);

    /// This set and `p`.
    #[must_use]
    pub fn with(self, p: Permission) -> Self {
        Permissions(self.0 | p.bit())
    }

    /// This set without `p`.
    #[must_use]
    pub fn without(self, p: Permission) -> Self {
        Permissions(self.0 & !p.bit())
    }

    /// What both sets allow.
    #[must_use]
    pub fn and(self, other: Permissions) -> Self {
        Permissions(self.0 & other.0)
    }

    /// Whether the set holds `p`.
    pub fn allows(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    /// Whether the set holds every permission that changes the storage (SITE needs them:
    /// an application's SITE command may change anything).
    pub fn allows_every_write(self) -> bool {
        let writes = Permissions(Self::ALL.0 & !Self::READ_ONLY.0);
        self.and(writes) == writes
    }

    /// Parses a comma-separated list of permission names (see [`Permission::name`]), or
    /// `*` / `all` for every permission, `none` or the empty string for none.
    pub fn parse(s: &str) -> Result<Permissions, UnknownPermission> {
        let s = s.trim();
        if s == "*" || s.eq_ignore_ascii_case("all") {
            return Ok(Self::ALL);
        }
        if s.is_empty() || s.eq_ignore_ascii_case("none") {
            return Ok(Self::NONE);
        }
        s.split(',')
            .map(str::trim)
            .try_fold(Self::NONE, |set, name| {
                Permission::ALL
                    .into_iter()
                    .find(|p| p.name().eq_ignore_ascii_case(name))
                    .map(|p| set.with(p))
                    .ok_or_else(|| UnknownPermission(name.to_owned()))
            })
    }
}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Permissions({self})")
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Self::ALL {
            return f.write_str("all");
        }
        let names: Vec<&str> = Permission::ALL
            .into_iter()
            .filter(|p| self.allows(*p))
            .map(Permission::name)
            .collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

/// A name that is not a permission's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPermission(pub String);

impl fmt::Display for UnknownPermission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown permission {:?} (known: list, download, upload, overwrite, delete, \
             rename, mkdir, rmdir, settime, all, none)",
            self.0
        )
    }
}

impl std::error::Error for UnknownPermission {}

/// A user's permissions: a default and per-directory overrides. The deepest directory
/// with a rule that holds a path decides for it (as SFTPGo's per-directory permissions);
/// the default decides where no rule does. A rule for `/in` covers `/in` itself, and
/// everything beneath it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Grants {
    default: Permissions,
    dirs: Vec<(VirtualPath, Permissions)>,
}

impl Default for Grants {
    /// Everything, everywhere.
    fn default() -> Self {
        Grants::new(Permissions::ALL)
    }
}

impl Grants {
    /// `default` everywhere.
    pub fn new(default: Permissions) -> Self {
        Grants {
            default,
            dirs: Vec::new(),
        }
    }

    /// `permissions` in `dir` and beneath it (a later rule for the same directory replaces
    /// an earlier one).
    #[must_use]
    pub fn with_dir(mut self, dir: VirtualPath, permissions: Permissions) -> Self {
        self.dirs.retain(|(d, _)| *d != dir);
        self.dirs.push((dir, permissions));
        // Deepest first, so `at` takes the first rule that holds a path.
        self.dirs
            .sort_by_key(|(d, _)| std::cmp::Reverse(d.components().count()));
        self
    }

    /// The permissions everywhere no rule covers.
    pub fn default_permissions(&self) -> Permissions {
        self.default
    }

    /// The per-directory rules, deepest first.
    pub fn dirs(&self) -> impl Iterator<Item = (&VirtualPath, Permissions)> {
        self.dirs.iter().map(|(d, p)| (d, *p))
    }

    /// What the user may do at `path`.
    pub fn at(&self, path: &VirtualPath) -> Permissions {
        self.dirs
            .iter()
            .find(|(dir, _)| holds(dir, path))
            .map_or(self.default, |(_, p)| *p)
    }

    /// Whether `path` is a rule's directory or holds one. Renaming such a path would
    /// carry the rule's directory out from under its rule (rules name paths), or move
    /// another directory under it: RNFR and RNTO refuse it (as SFTPGo does).
    pub fn has_rule_within(&self, path: &VirtualPath) -> bool {
        self.dirs.iter().any(|(dir, _)| holds(path, dir))
    }

    /// These grants with nothing beyond `cap` anywhere (anonymous users: see
    /// [`ServerConfig::anonymous_upload`](super::ServerConfig::anonymous_upload)).
    #[must_use]
    pub fn limited_to(mut self, cap: Permissions) -> Self {
        self.default = self.default.and(cap);
        for (_, p) in &mut self.dirs {
            *p = p.and(cap);
        }
        self
    }
}

/// Whether directory `dir` is `path` or holds it.
fn holds(dir: &VirtualPath, path: &VirtualPath) -> bool {
    let mut inside = path.components();
    dir.components().all(|c| inside.next() == Some(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> VirtualPath {
        VirtualPath::root().resolve(s)
    }

    #[test]
    fn parse_and_display_round_trip() {
        for s in ["list,download", "upload", "all", "none", "rename,settime"] {
            assert_eq!(Permissions::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(Permissions::parse("*").unwrap(), Permissions::ALL);
        assert_eq!(Permissions::parse("").unwrap(), Permissions::NONE);
        assert_eq!(
            Permissions::parse(" List , DOWNLOAD ").unwrap(),
            Permissions::READ_ONLY
        );
        assert_eq!(
            Permissions::parse("list,write").unwrap_err(),
            UnknownPermission("write".into())
        );
    }

    #[test]
    fn the_deepest_rule_decides() {
        let g = Grants::new(Permissions::READ_ONLY)
            .with_dir(p("/in"), Permissions::NONE.with(Permission::Upload))
            .with_dir(p("/in/checked"), Permissions::ALL);
        assert_eq!(g.at(&p("/")), Permissions::READ_ONLY);
        assert_eq!(g.at(&p("/out/a.txt")), Permissions::READ_ONLY);
        assert_eq!(g.at(&p("/in")), Permissions::NONE.with(Permission::Upload));
        assert_eq!(
            g.at(&p("/in/a")),
            Permissions::NONE.with(Permission::Upload)
        );
        assert_eq!(g.at(&p("/in/checked/x/y")), Permissions::ALL);
        // A name that only starts like a rule's directory is not in it.
        assert_eq!(g.at(&p("/inbox")), Permissions::READ_ONLY);
        assert_eq!(
            g.at(&p("/in/checkedx")),
            Permissions::NONE.with(Permission::Upload)
        );
    }

    #[test]
    fn a_rule_within_a_path() {
        let g = Grants::default().with_dir(p("/a/locked"), Permissions::READ_ONLY);
        for holds in ["/", "/a", "/a/locked"] {
            assert!(g.has_rule_within(&p(holds)), "{holds}");
        }
        for beside in ["/a/locked/x", "/a/lockedx", "/b", "/ab"] {
            assert!(!g.has_rule_within(&p(beside)), "{beside}");
        }
        assert!(!Grants::default().has_rule_within(&p("/")));
    }

    #[test]
    fn limited_to_caps_every_rule() {
        let g = Grants::default()
            .with_dir(p("/pub"), Permissions::ALL)
            .limited_to(Permissions::READ_ONLY);
        assert_eq!(g.at(&p("/")), Permissions::READ_ONLY);
        assert_eq!(g.at(&p("/pub/x")), Permissions::READ_ONLY);
    }

    #[test]
    fn every_write_needs_all_writes() {
        assert!(Permissions::ALL.allows_every_write());
        assert!(!Permissions::READ_ONLY.allows_every_write());
        assert!(
            !Permissions::ALL
                .without(Permission::Delete)
                .allows_every_write()
        );
        assert!(
            Permissions::ALL
                .without(Permission::List)
                .without(Permission::Download)
                .allows_every_write()
        );
    }
}
