//! Authentication: the trait the server checks logins with ([`Authenticator`], answered
//! by a [`Check`] the server runs where that kind of work belongs), and [`StaticUsers`],
//! a fixed list of users whose passwords are kept as hashes (Argon2, or SHA-crypt brought
//! from another server: [`crate::password`]).

use crate::password::{BadHash, DUMMY_HASH, Stored, hash_password};
use crate::user::User;
use ftps_proto::server::LoginRequest;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed future an authenticator returns (see [`Check::Wait`]).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An authenticator's answer to one login.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Verdict {
    /// The user, logged in.
    Accepted(User),
    /// Wrong user or password: a failed login (delayed, counted by the session and the
    /// address's lockout).
    Rejected,
    /// The login could not be checked (the directory service is down): the client gets
    /// 421 and the session closes; not counted as a failed login.
    Unavailable,
}

/// How an [`Authenticator`] answers a login: the server runs each kind where it belongs,
/// and bounds every kind by its authentication timeout (past it: [`Verdict::Unavailable`]).
pub enum Check<'a> {
    /// The answer, known at once.
    Done(Verdict),
    /// An answer that waits on something else (a database, LDAP, a REST service): the
    /// session awaits it, and any number of them run at once.
    Wait(BoxFuture<'a, Verdict>),
    /// Blocking calls (a synchronous database client): run on the runtime's blocking
    /// pool, any number at once.
    Blocking(Box<dyn FnOnce() -> Verdict + Send + 'static>),
    /// CPU-bound work (a password hash): run on the blocking pool, at most one per core at
    /// once, so a burst of logins cannot take the machine's memory and cores (an Argon2id
    /// check takes about 19 MiB and 50 ms).
    Compute(Box<dyn FnOnce() -> Verdict + Send + 'static>),
}

impl std::fmt::Debug for Check<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Check::Done(_) => "Check::Done",
            Check::Wait(_) => "Check::Wait",
            Check::Blocking(_) => "Check::Blocking",
            Check::Compute(_) => "Check::Compute",
        })
    }
}

/// Checks logins. The request carries the user name, the password, the client's address,
/// the HOST it asked for (RFC 7151) and what the control connection's TLS handshake did
/// (SNI, the client's certificate chain). An implementation says how its check runs
/// ([`Check`]): an async one returns [`Check::Wait`], a blocking one [`Check::Blocking`]
/// (or wraps a [`BlockingAuthenticator`] in [`Unblocked`]), a password hash
/// [`Check::Compute`]. Every kind works on every runtime.
pub trait Authenticator: Send + Sync + 'static {
    /// Checks one login.
    fn authenticate<'a>(&'a self, login: &'a LoginRequest) -> Check<'a>;
}

/// A synchronous authenticator whose check blocks (a database or LDAP client without
/// async): [`Unblocked`] makes it an [`Authenticator`] run on the blocking pool.
pub trait BlockingAuthenticator: Send + Sync + 'static {
    /// Checks one login (blocking).
    fn authenticate(&self, login: &LoginRequest) -> Verdict;
}

/// A [`BlockingAuthenticator`] run on the runtime's blocking pool ([`Check::Blocking`]).
#[derive(Debug, Default)]
pub struct Unblocked<A>(pub Arc<A>);

impl<A> Unblocked<A> {
    /// Wraps `auth`.
    pub fn new(auth: A) -> Self {
        Unblocked(Arc::new(auth))
    }
}

impl<A: BlockingAuthenticator> Authenticator for Unblocked<A> {
    fn authenticate<'a>(&'a self, login: &'a LoginRequest) -> Check<'a> {
        let auth = self.0.clone();
        let login = login.clone();
        Check::Blocking(Box::new(move || auth.authenticate(&login)))
    }
}

/// A fixed set of users with password hashes (Argon2id PHC strings as [`hash_password`]
/// makes, or SHA-crypt strings brought from another server), and optionally anonymous
/// access (the core allows it only when its configuration does too).
///
/// A login as a name nobody has costs what a real user's does: its password is checked
/// against the hash of a user picked by a keyed hash of the name (the same user for the
/// same name, a random key per process), and refused whatever the result; so the time a
/// refusal takes does not tell which names exist, even when users' hashes differ in
/// kind or cost.
#[derive(Debug, Clone, Default)]
pub struct StaticUsers {
    /// Each user's hash and what the user is once logged in.
    users: Arc<HashMap<String, (Stored, User)>>,
    /// Every user's hash, in the order added: unknown names are checked against one.
    decoys: Arc<Vec<Stored>>,
    /// The key that picks an unknown name's decoy.
    decoy_key: std::collections::hash_map::RandomState,
    anonymous: bool,
    /// The anonymous user's home.
    anonymous_home: ftps_proto::VirtualPath,
    /// Argon2 working memory (about 19 MiB per check with the default parameters), kept
    /// between checks: allocating and freeing it for every login makes glibc's malloc
    /// raise its mmap threshold and keep the freed blocks (measured: 1.8 GiB resident
    /// after 100 logins; 30 MiB with the threshold pinned).
    memory: Arc<std::sync::Mutex<Vec<Vec<argon2::Block>>>>,
}

impl StaticUsers {
    /// No users.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a user with a plain password, hashed now.
    pub fn with_password(self, user: &str, password: &str) -> Self {
        let hash = Stored::parse(&hash_password(password)).unwrap_or_else(|_| dummy());
        self.insert(User::new(user), hash)
    }

    /// Adds a user with a password hash: an Argon2 PHC string (as [`hash_password`]
    /// makes), or a SHA-crypt string (`$6$...` or `$5$...`, as in `/etc/shadow`, made by
    /// `openssl passwd -6` or `mkpasswd -m sha-512`). A PHC string of another algorithm or
    /// without salt, hash or valid parameters, a SHA-crypt string crypt(3) could not have
    /// written, and the weak crypt kinds (DES, MD5 `$1$`) are refused.
    pub fn with_hash(self, user: &str, hash: &str) -> Result<Self, BadHash> {
        self.with_user(User::new(user), hash)
    }

    /// Adds `user` (its home, permissions and policies as given) with a password hash,
    /// taken as [`with_hash`](Self::with_hash) takes it.
    pub fn with_user(self, user: User, hash: &str) -> Result<Self, BadHash> {
        Ok(self.insert(user, Stored::parse(hash)?))
    }

    /// The anonymous user (`anonymous` and `ftp`): at home in `home`. The protocol core
    /// limits it to reading (and to adding files, with `anonymous_upload`) whatever its
    /// grants say.
    pub fn with_anonymous_home(mut self, home: ftps_proto::VirtualPath) -> Self {
        self.anonymous = true;
        self.anonymous_home = home;
        self
    }

    /// Accepts `anonymous` and `ftp` with any password.
    pub fn with_anonymous(mut self, on: bool) -> Self {
        self.anonymous = on;
        self
    }

    fn insert(self, user: User, hash: Stored) -> Self {
        let mut users = (*self.users).clone();
        let mut decoys = (*self.decoys).clone();
        decoys.push(hash.clone());
        users.insert(user.name.clone(), (hash, user));
        Self {
            users: Arc::new(users),
            decoys: Arc::new(decoys),
            ..self
        }
    }

    /// The hash an unknown name's password is checked against: a user's, picked by the
    /// keyed hash of the name (the fixed dummy when there are no users).
    fn decoy(&self, name: &str) -> std::borrow::Cow<'_, Stored> {
        use std::hash::BuildHasher;
        let count = self.decoys.len() as u64;
        if count == 0 {
            return std::borrow::Cow::Owned(dummy());
        }
        let pick = self.decoy_key.hash_one(name) % count;
        let index = usize::try_from(pick).unwrap_or_default();
        self.decoys.get(index).map_or_else(
            || std::borrow::Cow::Owned(dummy()),
            std::borrow::Cow::Borrowed,
        )
    }

    /// The check of a password (blocking: a password hash).
    fn check(&self, name: &str, password: &[u8]) -> Verdict {
        // Unknown users are checked against a user's hash so both paths cost the same.
        let known = self.users.get(name);
        let hash = match known {
            Some((hash, _)) => std::borrow::Cow::Borrowed(hash),
            None => self.decoy(name),
        };
        if !hash.is_argon2() {
            let ok = hash.verify(password, &mut Vec::new());
            return match known {
                Some((_, user)) if ok => Verdict::Accepted(user.clone()),
                _ => Verdict::Rejected,
            };
        }
        let mut memory = self
            .memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
            .unwrap_or_default();
        let ok = hash.verify(password, &mut memory);
        let mut pool = self
            .memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pool.len() < MAX_POOLED {
            pool.push(memory);
        }
        match known {
            Some((_, user)) if ok => Verdict::Accepted(user.clone()),
            _ => Verdict::Rejected,
        }
    }
}

impl Authenticator for StaticUsers {
    fn authenticate<'a>(&'a self, request: &'a LoginRequest) -> Check<'a> {
        let anonymous = request.user.eq_ignore_ascii_case("anonymous")
            || request.user.eq_ignore_ascii_case("ftp");
        if anonymous {
            return Check::Done(if self.anonymous {
                Verdict::Accepted(User::new("anonymous").with_home(self.anonymous_home.clone()))
            } else {
                Verdict::Rejected
            });
        }
        let users = self.clone();
        let name = request.user.clone();
        let password = request.password.clone();
        Check::Compute(Box::new(move || {
            users.check(&name, password.expose().as_bytes())
        }))
    }
}

/// Working memories kept between checks (the server runs at most as many checks at once
/// as it has cores).
const MAX_POOLED: usize = 8;

/// The fixed dummy hash, parsed.
fn dummy() -> Stored {
    Stored::Argon2(DUMMY_HASH.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
mod tests {
    use super::*;

    /// `openssl passwd -6 -salt saltstring 'Hello world!'` (5000 rounds).
    const SHA512: &str = "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1";

    #[test]
    fn users_log_in_with_either_kind_of_hash() {
        let users = StaticUsers::new()
            .with_hash("shadow", SHA512)
            .unwrap()
            .with_password("argon", "correct horse");
        assert!(
            matches!(users.check("shadow", b"Hello world!"), Verdict::Accepted(u) if u.name == "shadow")
        );
        assert!(
            matches!(users.check("argon", b"correct horse"), Verdict::Accepted(u) if u.name == "argon")
        );
        assert!(matches!(
            users.check("shadow", b"correct horse"),
            Verdict::Rejected
        ));
        assert!(matches!(
            users.check("argon", b"Hello world!"),
            Verdict::Rejected
        ));
        // A name nobody has is refused even with a user's password (it may be checked
        // against that user's hash, and the result is thrown away).
        for name in ["nobody", "shadow ", "SHADOW", "x", ""] {
            assert!(
                matches!(users.check(name, b"Hello world!"), Verdict::Rejected),
                "{name}"
            );
            assert!(
                matches!(users.check(name, b"correct horse"), Verdict::Rejected),
                "{name}"
            );
        }
    }

    #[test]
    fn an_unknown_name_costs_a_users_hash() {
        // Only SHA-crypt users: an unknown name must not cost an Argon2 check (which takes
        // ten times as long and would tell the names apart).
        let users = StaticUsers::new()
            .with_hash("a", SHA512)
            .unwrap()
            .with_hash("b", SHA512)
            .unwrap();
        for name in ["nobody", "root", "admin", "c"] {
            assert!(!users.decoy(name).is_argon2(), "{name}");
        }
        // The same name gets the same user's hash each time; with both kinds, unknown
        // names spread over both.
        let mixed = StaticUsers::new()
            .with_hash("a", SHA512)
            .unwrap()
            .with_password("b", "pw");
        let kinds: Vec<bool> = (0..64)
            .map(|i| mixed.decoy(&format!("user{i}")).is_argon2())
            .collect();
        assert!(
            kinds.iter().any(|&k| k) && kinds.iter().any(|&k| !k),
            "{kinds:?}"
        );
        for (i, kind) in kinds.iter().enumerate() {
            assert_eq!(mixed.decoy(&format!("user{i}")).is_argon2(), *kind);
        }
        // No users: the fixed dummy.
        assert!(StaticUsers::new().decoy("anyone").is_argon2());
    }
}
