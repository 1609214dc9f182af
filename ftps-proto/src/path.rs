//! Virtual paths: what a client's pathname means inside its root, resolved without touching
//! a file system.
//!
//! RFC 959 leaves pathname syntax to the server; this crate uses the Unix form: `/`
//! separates components, a leading `/` starts at the user's root, `.` is the current
//! directory and `..` its parent. Resolution is purely textual and clamps at the root, so
//! no sequence of `..` can name anything above it (`CWD ../../etc` from `/` is `/etc`
//! inside the root). Symbolic links are the storage layer's business: it must refuse any
//! that lead outside the root.

use std::fmt;

/// An absolute, normalized path inside a user's root: it starts with `/`, has no empty,
/// `.` or `..` components and no trailing `/` (except the root itself).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VirtualPath(String);

impl Default for VirtualPath {
    fn default() -> Self {
        Self::root()
    }
}

impl VirtualPath {
    /// The root, `/`.
    pub fn root() -> Self {
        Self("/".to_owned())
    }

    /// True for `/`.
    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// Resolves a client's pathname against `self` (the working directory): absolute
    /// pathnames start from the root, `.` and empty components are skipped, `..` goes up
    /// and stops at the root.
    pub fn resolve(&self, pathname: &str) -> Self {
        let mut parts: Vec<&str> = if pathname.starts_with('/') {
            Vec::new()
        } else {
            self.components().collect()
        };
        for part in pathname.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                other => parts.push(other),
            }
        }
        Self(format!("/{}", parts.join("/")))
    }

    /// The parent directory; the root's parent is the root.
    pub fn parent(&self) -> Self {
        self.resolve("..")
    }

    /// The last component, or `None` for the root.
    pub fn file_name(&self) -> Option<&str> {
        if self.is_root() {
            None
        } else {
            self.0.rsplit('/').next()
        }
    }

    /// The components from the root down, none of them empty, `.` or `..`.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|c| !c.is_empty())
    }

    /// The path as a string, starting with `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VirtualPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_clamps_at_root() {
        let root = VirtualPath::root();
        assert_eq!(root.resolve("../../etc").as_str(), "/etc");
        assert_eq!(root.resolve("../../../etc/passwd").as_str(), "/etc/passwd");
        let sub = root.resolve("pub/sub/");
        assert_eq!(sub.as_str(), "/pub/sub");
        assert_eq!(sub.resolve("..").as_str(), "/pub");
        assert_eq!(sub.resolve("./a//b/../c").as_str(), "/pub/sub/a/c");
        assert_eq!(sub.resolve("/x").as_str(), "/x");
        assert_eq!(sub.resolve("*/../*/..").as_str(), "/pub/sub");
        assert_eq!(root.parent(), root);
        assert_eq!(sub.file_name(), Some("sub"));
        assert_eq!(root.file_name(), None);
        assert_eq!(
            root.resolve("with space /日本語")
                .components()
                .collect::<Vec<_>>(),
            ["with space ", "日本語"]
        );
    }
}
