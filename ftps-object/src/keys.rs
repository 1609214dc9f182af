//! Paths as keys: a user's path beneath the home, as the object key it names.

use ftps_backend::User;
use ftps_proto::VirtualPath;

/// The key of `path` in `user`'s home: its components joined by `/`, no leading `/`;
/// empty for the store's root.
pub(crate) fn key(user: &User, path: &VirtualPath) -> String {
    let mut key = String::new();
    for part in user.home.components().chain(path.components()) {
        if !key.is_empty() {
            key.push('/');
        }
        key.push_str(part);
    }
    key
}

/// The prefix of the directory `key` (`key/`), or `/` (OpenDAL's root) for the root.
pub(crate) fn dir(key: &str) -> String {
    if key.is_empty() {
        "/".to_owned()
    } else {
        format!("{key}/")
    }
}

/// The last component of an entry's path (`a/b/` gives `b`, `a/b` gives `b`).
pub(crate) fn name(path: &str) -> &str {
    let path = path.strip_suffix('/').unwrap_or(path);
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_join_home_and_path() {
        let mut user = User::new("u");
        user.home = VirtualPath::root().resolve("homes/u");
        assert_eq!(
            key(&user, &VirtualPath::root().resolve("a/b.txt")),
            "homes/u/a/b.txt"
        );
        assert_eq!(key(&user, &VirtualPath::root()), "homes/u");
        let top = User::new("t");
        assert_eq!(key(&top, &VirtualPath::root()), "");
        assert_eq!(dir(""), "/");
        assert_eq!(dir("a/b"), "a/b/");
        assert_eq!(name("a/b/"), "b");
        assert_eq!(name("a/b"), "b");
        assert_eq!(name("b"), "b");
    }
}
