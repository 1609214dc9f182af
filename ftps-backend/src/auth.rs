//! Authentication: the trait the server checks logins with ([`Authenticator`], answered
//! by a [`Check`] the server runs where that kind of work belongs), and [`StaticUsers`],
//! a fixed list of users whose passwords are kept as Argon2 hashes.

use crate::user::User;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
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

/// A fixed set of users with Argon2id password hashes (PHC strings), and optionally
/// anonymous access (the core allows it only when its configuration does too).
#[derive(Debug, Clone, Default)]
pub struct StaticUsers {
    /// Each user's PHC hash and what the user is once logged in.
    users: Arc<HashMap<String, (String, User)>>,
    anonymous: bool,
    /// The anonymous user's home.
    anonymous_home: ftps_proto::VirtualPath,
    /// Argon2 working memory (about 19 MiB per check with the default parameters), kept
    /// between checks: allocating and freeing it for every login makes glibc's malloc
    /// raise its mmap threshold and keep the freed blocks (measured: 1.8 GiB resident
    /// after 100 logins; 30 MiB with the threshold pinned).
    memory: Arc<std::sync::Mutex<Vec<Vec<argon2::Block>>>>,
}

/// A PHC string that is not an Argon2 hash.
#[derive(Debug)]
pub struct BadHash;

impl std::fmt::Display for BadHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a valid Argon2 PHC hash string")
    }
}

impl std::error::Error for BadHash {}

/// Hashes a password with Argon2id and a random salt, as a PHC string.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
}

impl StaticUsers {
    /// No users.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a user with a plain password, hashed now.
    pub fn with_password(self, user: &str, password: &str) -> Self {
        let hash = hash_password(password);
        self.insert(User::new(user), hash)
    }

    /// Adds a user with an Argon2 PHC hash string (as [`hash_password`] makes). A PHC
    /// string of another algorithm, or without salt, hash or valid parameters, is refused:
    /// no password could ever match it.
    pub fn with_hash(self, user: &str, phc: &str) -> Result<Self, BadHash> {
        self.with_user(User::new(user), phc)
    }

    /// Adds `user` (its home, permissions and policies as given) with an Argon2 PHC hash
    /// string, checked as [`with_hash`](Self::with_hash) does.
    pub fn with_user(self, user: User, phc: &str) -> Result<Self, BadHash> {
        let hash = PasswordHash::new(phc).map_err(|_| BadHash)?;
        argon2::Algorithm::try_from(hash.algorithm).map_err(|_| BadHash)?;
        argon2::Params::try_from(&hash).map_err(|_| BadHash)?;
        if hash.hash.is_none() || hash.salt.is_none() {
            return Err(BadHash);
        }
        Ok(self.insert(user, phc.to_owned()))
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

    fn insert(self, user: User, hash: String) -> Self {
        let mut users = (*self.users).clone();
        users.insert(user.name.clone(), (hash, user));
        Self {
            users: Arc::new(users),
            ..self
        }
    }

    /// The check of a password (blocking: Argon2).
    fn check(&self, name: &str, password: &[u8]) -> Verdict {
        // Unknown users are checked against a fixed hash so both paths cost the same.
        let known = self.users.get(name);
        let phc = known.map_or(DUMMY_HASH, |(hash, _)| hash.as_str());
        let mut memory = self
            .memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
            .unwrap_or_default();
        let ok = verify(phc, password, &mut memory);
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

/// Checks `password` against an Argon2 PHC string, in `memory` (grown as needed and kept
/// for the next check), comparing in constant time.
fn verify(phc: &str, password: &[u8], memory: &mut Vec<argon2::Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (hash.hash, hash.salt) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(argon2::Version::try_from) {
        None => argon2::Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = argon2::Params::try_from(&hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    memory.resize(params.block_count(), argon2::Block::default());
    let mut out = vec![0u8; expected.len()];
    let argon = argon2::Argon2::new(algorithm, version, params);
    if argon
        .hash_password_into_with_memory(password, salt, &mut out, &mut memory[..])
        .is_err()
    {
        return false;
    }
    // Constant time: every byte is compared whatever the first difference.
    out.iter()
        .zip(expected.as_bytes())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// The Argon2id hash of a random string nobody knows.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$yQp5dsXlHhTX8iaTMUFt3Fq3Wj4Tq3ShxbNwU2Y1Gqk";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_accepts_the_password_and_nothing_else() {
        let phc = hash_password("correct horse");
        let mut memory = Vec::new();
        assert!(verify(&phc, b"correct horse", &mut memory));
        assert!(!verify(&phc, b"correct horsf", &mut memory));
        assert!(!verify(&phc, b"", &mut memory));
        assert!(!verify("not a hash", b"correct horse", &mut memory));
        // The dummy hash matches no password anyone would type.
        assert!(!verify(DUMMY_HASH, b"password", &mut memory));
        // The same working memory serves again.
        assert!(verify(&phc, b"correct horse", &mut memory));
    }

    #[test]
    fn with_hash_takes_argon2_phc_strings_only() {
        let phc = hash_password("correct horse");
        assert!(StaticUsers::new().with_hash("a", &phc).is_ok());
        assert!(StaticUsers::new().with_hash("a", DUMMY_HASH).is_ok());
        for bad in [
            "",
            "correct horse",
            "$argon2id$v=19$m=19456,t=2,p=1",
            "$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$yQp5dsXlHhTX8iaTMUFt3Fq3Wj4Tq3ShxbNwU2Y1Gqk",
        ] {
            assert!(StaticUsers::new().with_hash("a", bad).is_err(), "{bad}");
        }
    }
}
