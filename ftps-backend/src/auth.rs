//! Authentication: the trait the server checks logins with ([`Authenticator`], answered
//! by a [`Check`] the server runs where that kind of work belongs), and [`StaticUsers`],
//! a fixed list of users whose passwords are kept as hashes (Argon2, or SHA-crypt brought
//! from another server: [`crate::password`]).

use crate::password::{BadHash, Stored, hash_password};
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
/// makes, or crypt(3) strings brought from another server: [`crate::password`]), and
/// optionally anonymous access (the core allows it only when its configuration does too).
///
/// A login as a name nobody has costs what a real user's does: its password is checked
/// against the hash of a user picked by a keyed hash of the name, and refused whatever the
/// result; so the time a refusal takes does not tell which names exist, even when users'
/// hashes differ in kind or cost. The key is made of the users' hashes themselves (secret
/// as they are), so the same name costs the same after a restart and on every node that
/// has the same users.
///
/// Bounded: a password longer than [`PASSWORD_MAX`](crate::password::PASSWORD_MAX) is
/// refused at once, whatever the name; a hash is refused when added if one check would
/// cost more than the bounds of [`crate::password`]; the checks running at once take no
/// more than [`MEMORY_IN_FLIGHT`](crate::password::MEMORY_IN_FLIGHT) together (a check
/// waits its turn beyond it).
#[derive(Debug, Clone, Default)]
pub struct StaticUsers {
    /// Each user's hash and what the user is once logged in.
    users: Arc<HashMap<String, (Stored, User)>>,
    /// Every user's hash, ordered by its text (the same order on every node): unknown
    /// names are checked against one.
    decoys: Arc<Vec<Stored>>,
    /// The key that picks an unknown name's decoy: the XOR of the SHA-256 of every user's
    /// hash (as secret as they are, the same whatever the order users were added in).
    decoy_key: [u8; 32],
    anonymous: bool,
    /// The anonymous user's home.
    anonymous_home: ftps_proto::VirtualPath,
    /// Argon2 working memory (about 19 MiB per check with the default parameters), kept
    /// between checks: allocating and freeing it for every login makes glibc's malloc
    /// raise its mmap threshold and keep the freed blocks (measured: 1.8 GiB resident
    /// after 100 logins; 30 MiB with the threshold pinned).
    memory: Arc<std::sync::Mutex<Vec<Vec<argon2::Block>>>>,
    /// The bytes of memory the checks running now take together.
    in_flight: Arc<(std::sync::Mutex<u64>, std::sync::Condvar)>,
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
        use sha2::Digest;
        let mut users = (*self.users).clone();
        let mut decoys = (*self.decoys).clone();
        let mut decoy_key = self.decoy_key;
        // A user added again replaces its hash: its old one leaves the decoys and the key.
        let replaced = users.insert(user.name.clone(), (hash.clone(), user));
        for (old, sign) in replaced
            .map(|(old, _)| (old, false))
            .into_iter()
            .chain([(hash, true)])
        {
            let digest = sha2::Sha256::digest(old.text().as_bytes());
            decoy_key.iter_mut().zip(digest).for_each(|(k, d)| *k ^= d);
            let at = decoys.binary_search_by(|d| d.text().cmp(old.text()));
            match (at, sign) {
                (Ok(i), false) => {
                    decoys.remove(i);
                }
                (Ok(i) | Err(i), true) => decoys.insert(i, old),
                (Err(_), false) => {}
            }
        }
        Self {
            users: Arc::new(users),
            decoys: Arc::new(decoys),
            decoy_key,
            ..self
        }
    }

    /// The hash an unknown name's password is checked against: a user's, picked by the
    /// keyed hash of the name (the fixed dummy when there are no users).
    fn decoy(&self, name: &str) -> std::borrow::Cow<'_, Stored> {
        use sha2::Digest;
        let count = self.decoys.len() as u64;
        if count == 0 {
            return std::borrow::Cow::Owned(dummy());
        }
        let digest = sha2::Sha256::new()
            .chain_update(self.decoy_key)
            .chain_update(name.as_bytes())
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        let pick = u64::from_le_bytes(first) % count;
        let index = usize::try_from(pick).unwrap_or_default();
        self.decoys.get(index).map_or_else(
            || std::borrow::Cow::Owned(dummy()),
            std::borrow::Cow::Borrowed,
        )
    }

    /// The check of a password (blocking: a password hash).
    fn check(&self, name: &str, password: &[u8]) -> Verdict {
        // Refused before the name is looked at: the refusal tells nothing about it.
        if password.len() > crate::password::PASSWORD_MAX {
            return Verdict::Rejected;
        }
        // Unknown users are checked against a user's hash so both paths cost the same.
        let known = self.users.get(name);
        let hash = match known {
            Some((hash, _)) => std::borrow::Cow::Borrowed(hash),
            None => self.decoy(name),
        };
        let Some(_turn) = self.memory_turn(hash.memory()) else {
            return Verdict::Unavailable;
        };
        let ok = self.verify(&hash, password);
        match known {
            Some((_, user)) if ok => Verdict::Accepted(user.clone()),
            _ => Verdict::Rejected,
        }
    }

    /// Checks `password` against `hash`, an Argon2 one in a working memory from the pool
    /// (given back if it is of about the default's size).
    fn verify(&self, hash: &Stored, password: &[u8]) -> bool {
        if !hash.is_argon2() {
            return hash.verify(password, &mut Vec::new());
        }
        let lock = || {
            self.memory
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let mut memory = lock().pop().unwrap_or_default();
        let ok = hash.verify(password, &mut memory);
        // Only memories of about the default's size are kept: a few users with costly
        // hashes must not leave hundreds of MiB behind.
        let kept = (memory.len() * std::mem::size_of::<argon2::Block>()) as u64;
        let mut pool = lock();
        if pool.len() < MAX_POOLED && kept <= POOLED_MEMORY_MAX {
            pool.push(memory);
        }
        ok
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

/// The largest working memory kept between checks: 32 MiB (the default's 19 fit).
const POOLED_MEMORY_MAX: u64 = 32 << 20;

/// How long a check waits for its turn at the memory bound before it answers
/// [`Verdict::Unavailable`] (the server has given up on it long before, at its
/// authentication timeout).
const MEMORY_TURN_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// A check's share of [`MEMORY_IN_FLIGHT`](crate::password::MEMORY_IN_FLIGHT), given back
/// when dropped.
struct MemoryTurn<'a> {
    in_flight: &'a (std::sync::Mutex<u64>, std::sync::Condvar),
    bytes: u64,
}

impl Drop for MemoryTurn<'_> {
    fn drop(&mut self) {
        let (used, freed) = self.in_flight;
        let mut used = used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *used = used.saturating_sub(self.bytes);
        freed.notify_all();
    }
}

impl StaticUsers {
    /// Waits (at most [`MEMORY_TURN_WAIT`]) until `bytes` more fit within the memory bound
    /// of the checks running at once; `None` past the wait.
    fn memory_turn(&self, bytes: u64) -> Option<MemoryTurn<'_>> {
        let (used, freed) = &*self.in_flight;
        let deadline = std::time::Instant::now() + MEMORY_TURN_WAIT;
        let mut now_used = used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while *now_used + bytes > crate::password::MEMORY_IN_FLIGHT {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            now_used = freed
                .wait_timeout(now_used, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        *now_used += bytes;
        Some(MemoryTurn {
            in_flight: &self.in_flight,
            bytes,
        })
    }
}

/// The fixed dummy hash.
fn dummy() -> Stored {
    Stored::dummy()
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
    fn an_unknown_name_costs_the_same_after_a_restart_and_on_every_node() {
        let a = StaticUsers::new()
            .with_hash("a", SHA512)
            .unwrap()
            .with_password("b", "pw")
            .with_password("c", "pw");
        // Another process (node) reading the same users in another order.
        let (b_hash, c_hash) = (a.users["b"].0.text(), a.users["c"].0.text());
        let other = StaticUsers::new()
            .with_hash("c", c_hash)
            .unwrap()
            .with_hash("b", b_hash)
            .unwrap()
            .with_hash("a", SHA512)
            .unwrap();
        for i in 0..200 {
            let name = format!("user{i}");
            assert_eq!(a.decoy(&name).text(), other.decoy(&name).text(), "{name}");
        }
        // A user whose hash is replaced leaves no trace of the old one.
        let replaced = a
            .clone()
            .with_hash("a", b_hash)
            .unwrap()
            .with_hash("a", SHA512)
            .unwrap();
        assert_eq!(replaced.decoy_key, a.decoy_key);
        assert_eq!(replaced.decoys.len(), 3);
    }

    #[test]
    fn an_overlong_password_is_refused_at_once_whatever_the_name() {
        let long = "x".repeat(crate::password::PASSWORD_MAX + 1);
        let users = StaticUsers::new()
            .with_hash("shadow", SHA512)
            .unwrap()
            .with_password(&long[..10], &long);
        for name in ["shadow", "nobody", &long[..10]] {
            let started = std::time::Instant::now();
            assert!(matches!(
                users.check(name, long.as_bytes()),
                Verdict::Rejected
            ));
            assert!(
                started.elapsed() < std::time::Duration::from_millis(5),
                "{name}"
            );
        }
        // The longest allowed still logs in.
        let most = "y".repeat(crate::password::PASSWORD_MAX);
        let users = users.with_password("most", &most);
        assert!(matches!(
            users.check("most", most.as_bytes()),
            Verdict::Accepted(_)
        ));
    }

    #[test]
    fn checks_wait_their_turn_beyond_the_memory_bound() {
        let users = StaticUsers::new();
        let all = users
            .memory_turn(crate::password::MEMORY_IN_FLIGHT)
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let turn = users.memory_turn(16 << 20);
                tx.send(turn.is_some()).unwrap();
            });
            assert!(
                rx.recv_timeout(std::time::Duration::from_millis(200))
                    .is_err()
            );
            drop(all);
            assert!(rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap());
        });
        assert_eq!(*users.in_flight.0.lock().unwrap(), 0);
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
