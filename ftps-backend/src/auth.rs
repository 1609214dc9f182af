//! Authentication: the trait the server checks logins with, and [`StaticUsers`], a fixed
//! list of users whose passwords are kept as Argon2 hashes.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
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

    /// Adds a user with an Argon2 PHC hash string.
    pub fn with_hash(self, user: &str, phc: &str) -> Result<Self, BadHash> {
        PasswordHash::new(phc).map_err(|_| BadHash)?;
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
        let ok = PasswordHash::new(hash.map_or(DUMMY_HASH, String::as_str))
            .map(|parsed| {
                argon2::Argon2::default()
                    .verify_password(request.password.expose().as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false);
        if ok && known {
            LoginAnswer::accepted()
        } else {
            LoginAnswer::Rejected
        }
    }
}

/// The Argon2id hash of a random string nobody knows.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$yQp5dsXlHhTX8iaTMUFt3Fq3Wj4Tq3ShxbNwU2Y1Gqk";
