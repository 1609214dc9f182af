//! Authentication: the trait the server checks logins with, and [`StaticUsers`], a fixed
//! list of users whose passwords are kept as Argon2 hashes.

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use ftps_proto::server::{LoginAnswer, LoginRequest};
use std::collections::HashMap;
use std::sync::Arc;

/// Checks logins (blocking: password hashes are slow on purpose; async adapters call it
/// on their blocking pool). The answer may carry per-user TLS policy overrides.
pub trait Authenticator: Send + Sync + 'static {
    /// Checks one login.
    fn authenticate(&self, request: &LoginRequest) -> LoginAnswer;
}

/// A fixed set of users with Argon2id password hashes (PHC strings), and optionally
/// anonymous access (the core allows it only when its configuration does too).
#[derive(Debug, Clone, Default)]
pub struct StaticUsers {
    users: Arc<HashMap<String, String>>,
    anonymous: bool,
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
        self.insert(user, hash)
    }

    /// Adds a user with an Argon2 PHC hash string (as [`hash_password`] makes). A PHC
    /// string of another algorithm, or without salt, hash or valid parameters, is refused:
    /// no password could ever match it.
    pub fn with_hash(self, user: &str, phc: &str) -> Result<Self, BadHash> {
        let hash = PasswordHash::new(phc).map_err(|_| BadHash)?;
        argon2::Algorithm::try_from(hash.algorithm).map_err(|_| BadHash)?;
        argon2::Params::try_from(&hash).map_err(|_| BadHash)?;
        if hash.hash.is_none() || hash.salt.is_none() {
            return Err(BadHash);
        }
        Ok(self.insert(user, phc.to_owned()))
    }

    /// Accepts `anonymous` and `ftp` with any password.
    pub fn with_anonymous(mut self, on: bool) -> Self {
        self.anonymous = on;
        self
    }

    fn insert(self, user: &str, hash: String) -> Self {
        let mut users = (*self.users).clone();
        users.insert(user.to_owned(), hash);
        Self {
            users: Arc::new(users),
            anonymous: self.anonymous,
            memory: self.memory,
        }
    }
}

impl Authenticator for StaticUsers {
    fn authenticate(&self, request: &LoginRequest) -> LoginAnswer {
        let anonymous = request.user.eq_ignore_ascii_case("anonymous")
            || request.user.eq_ignore_ascii_case("ftp");
        if anonymous {
            return if self.anonymous {
                LoginAnswer::accepted()
            } else {
                LoginAnswer::Rejected
            };
        }
        // Unknown users are checked against a fixed hash so both paths cost the same.
        let hash = self.users.get(&request.user);
        let known = hash.is_some();
        let phc = hash.map_or(DUMMY_HASH, String::as_str);
        let mut memory = self
            .memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
            .unwrap_or_default();
        let ok = verify(phc, request.password.expose().as_bytes(), &mut memory);
        let mut pool = self
            .memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pool.len() < MAX_POOLED {
            pool.push(memory);
        }
        if ok && known {
            LoginAnswer::accepted()
        } else {
            LoginAnswer::Rejected
        }
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
