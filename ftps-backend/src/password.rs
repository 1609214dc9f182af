//! Stored password hashes: Argon2 PHC strings (what this crate makes, [`hash_password`]),
//! and the crypt(3) strings other servers' users have: yescrypt (`$y$`, `/etc/shadow`'s
//! default on Debian 11+, Ubuntu 22.04+ and Fedora 35+, which vsftpd and Pure-FTPd check
//! through PAM) and SHA-crypt (`$6$`, `$5$`: older `/etc/shadow`, ProFTPD's `AuthUserFile`,
//! Pure-FTPd's `pure-pw`). Each is parsed once when a user is added and checked in
//! constant time. The crypt kinds are checked, never made: they let an operator bring
//! users over from another server without resetting their passwords; new hashes are
//! Argon2id.

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};

/// A hash string that is neither a valid Argon2 PHC string nor a SHA-crypt one.
#[derive(Debug)]
pub struct BadHash;

impl std::fmt::Display for BadHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a valid Argon2 PHC string, yescrypt ($y$) or SHA-crypt ($6$, $5$) hash")
    }
}

impl std::error::Error for BadHash {}

/// Hashes a password with Argon2id (its default parameters: 19 MiB, 2 passes, OWASP's
/// minimum) and a random salt, as a PHC string.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
}

/// A stored hash, checked when a user is added.
#[derive(Debug, Clone)]
pub(crate) enum Stored {
    /// An Argon2 PHC string (parsed again at each check: `PasswordHash` borrows it).
    Argon2(String),
    /// A SHA-crypt hash.
    ShaCrypt(ShaCrypt),
    /// A yescrypt hash (its parameters checked when parsed).
    Yescrypt(String),
}

/// The parts of a SHA-crypt string, `$6$[rounds=N$]SALT$HASH` (SHA-512) or `$5$...`
/// (SHA-256), as Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512" and crypt(3)
/// define them: a salt of at most 16 characters, 5000 rounds unless said, from 1000 to
/// 999,999,999 (crypt clamps the rounds it is asked for into that range and writes the
/// rounds it used, so a string outside it was not made by crypt), the hash in crypt's
/// base64 alphabet, 86 characters for SHA-512 and 43 for SHA-256.
#[derive(Debug, Clone)]
pub(crate) struct ShaCrypt {
    sha512: bool,
    rounds: usize,
    salt: String,
    hash: String,
}

/// The most memory a yescrypt hash may ask for (`128 * r * N * p` bytes): 1 GiB, 64 times
/// the 16 MiB of libxcrypt's default (`j9T`); a larger one is refused when read.
const YESCRYPT_MEMORY_MAX: u64 = 1 << 30;

/// The rounds of a SHA-crypt string that does not say.
const SHA_CRYPT_DEFAULT_ROUNDS: usize = 5_000;
/// The longest salt crypt writes (a longer one is cut to this).
const SHA_CRYPT_SALT_MAX: usize = 16;

impl Stored {
    /// Parses `text` (an Argon2 PHC string or a SHA-crypt string).
    pub(crate) fn parse(text: &str) -> Result<Self, BadHash> {
        if text.starts_with("$5$") || text.starts_with("$6$") {
            return ShaCrypt::parse(text).map(Stored::ShaCrypt);
        }
        if text.starts_with("$y$") {
            return parse_yescrypt(text).map(|()| Stored::Yescrypt(text.to_owned()));
        }
        let hash = PasswordHash::new(text).map_err(|_| BadHash)?;
        argon2::Algorithm::try_from(hash.algorithm).map_err(|_| BadHash)?;
        argon2::Params::try_from(&hash).map_err(|_| BadHash)?;
        if hash.hash.is_none() || hash.salt.is_none() {
            return Err(BadHash);
        }
        Ok(Stored::Argon2(text.to_owned()))
    }

    /// Whether `password` matches, comparing in constant time. `memory` is Argon2's
    /// working memory, grown as needed and kept for the next check.
    pub(crate) fn verify(&self, password: &[u8], memory: &mut Vec<argon2::Block>) -> bool {
        match self {
            Stored::Argon2(phc) => verify_argon2(phc, password, memory),
            Stored::ShaCrypt(sha) => sha.verify(password),
            Stored::Yescrypt(text) => {
                use yescrypt::PasswordVerifier;
                // The crate compares in constant time (ctutils).
                yescrypt::Yescrypt::default()
                    .verify_password(password, text.as_str())
                    .is_ok()
            }
        }
    }

    /// Whether checking it needs Argon2's working memory.
    pub(crate) fn is_argon2(&self) -> bool {
        matches!(self, Stored::Argon2(_))
    }
}

/// Checks a yescrypt string, `$y$PARAMS$SALT$HASH` (libxcrypt's crypt(5)): parameters
/// the crate takes, memory within [`YESCRYPT_MEMORY_MAX`], a salt and a hash in crypt's
/// base64, nothing after.
fn parse_yescrypt(text: &str) -> Result<(), BadHash> {
    let mut parts = text.split('$');
    let (Some(""), Some("y"), Some(params), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(BadHash);
    };
    let params: yescrypt::Params = params.parse().map_err(|_| BadHash)?;
    let memory = 128u64
        .checked_mul(u64::from(params.r()))
        .and_then(|m| m.checked_mul(params.n()))
        .and_then(|m| m.checked_mul(u64::from(params.p().max(1))));
    if memory.is_none_or(|m| m > YESCRYPT_MEMORY_MAX)
        || salt.is_empty()
        || hash.is_empty()
        || !crypt64(salt)
        || !crypt64(hash)
    {
        return Err(BadHash);
    }
    Ok(())
}

/// Whether `s` holds only crypt's base64 characters (`./0-9A-Za-z`).
fn crypt64(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
}

impl ShaCrypt {
    fn parse(text: &str) -> Result<Self, BadHash> {
        let mut parts = text.split('$');
        let (Some(""), Some(id)) = (parts.next(), parts.next()) else {
            return Err(BadHash);
        };
        let sha512 = id == "6";
        let mut next = parts.next().ok_or(BadHash)?;
        let rounds = match next.strip_prefix("rounds=") {
            Some(n) => {
                next = parts.next().ok_or(BadHash)?;
                // Digits only (`parse` would take a sign).
                if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(BadHash);
                }
                n.parse::<usize>().map_err(|_| BadHash)?
            }
            None => SHA_CRYPT_DEFAULT_ROUNDS,
        };
        if !(1_000..=999_999_999).contains(&rounds) {
            return Err(BadHash);
        }
        let salt = next;
        let hash = parts.next().ok_or(BadHash)?;
        let hash_len = if sha512 { 86 } else { 43 };
        if parts.next().is_some()
            || salt.len() > SHA_CRYPT_SALT_MAX
            || salt.contains([':', '\n'])
            || hash.len() != hash_len
            || !crypt64(hash)
        {
            return Err(BadHash);
        }
        Ok(ShaCrypt {
            sha512,
            rounds,
            salt: salt.to_owned(),
            hash: hash.to_owned(),
        })
    }

    fn verify(&self, password: &[u8]) -> bool {
        let salt = self.salt.as_bytes();
        let computed = if self.sha512 {
            sha_crypt::Sha512Params::new(self.rounds)
                .and_then(|p| sha_crypt::sha512_crypt_b64(password, salt, &p))
        } else {
            sha_crypt::Sha256Params::new(self.rounds)
                .and_then(|p| sha_crypt::sha256_crypt_b64(password, salt, &p))
        };
        computed.is_ok_and(|c| constant_time_eq(c.as_bytes(), self.hash.as_bytes()))
    }
}

/// Whether `a` and `b` are equal, every byte compared whatever the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks `password` against an Argon2 PHC string, in `memory`.
fn verify_argon2(phc: &str, password: &[u8], memory: &mut Vec<argon2::Block>) -> bool {
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
    constant_time_eq(&out, expected.as_bytes())
}

/// The Argon2id hash of a random string nobody knows: what an unknown user's password is
/// checked against when there are no users at all.
pub(crate) const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$yQp5dsXlHhTX8iaTMUFt3Fq3Wj4Tq3ShxbNwU2Y1Gqk";

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
mod tests {
    use super::*;

    fn check(text: &str, password: &str) -> bool {
        Stored::parse(text)
            .unwrap()
            .verify(password.as_bytes(), &mut Vec::new())
    }

    #[test]
    fn argon2_accepts_the_password_and_nothing_else() {
        let phc = hash_password("correct horse");
        let stored = Stored::parse(&phc).unwrap();
        let mut memory = Vec::new();
        assert!(stored.verify(b"correct horse", &mut memory));
        assert!(!stored.verify(b"correct horsf", &mut memory));
        assert!(!stored.verify(b"", &mut memory));
        // The dummy hash matches no password anyone would type.
        assert!(
            !Stored::parse(DUMMY_HASH)
                .unwrap()
                .verify(b"password", &mut memory)
        );
        // The same working memory serves again.
        assert!(stored.verify(b"correct horse", &mut memory));
    }

    /// Known answers of the SHA-crypt specification (Drepper), as `openssl passwd -5`/`-6`
    /// (no rounds written: 5000) and glibc's crypt(3) (`rounds=10000`) make them here.
    #[test]
    fn sha_crypt_known_answers() {
        assert!(check(
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
            "Hello world!"
        ));
        assert!(check(
            "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
            "Hello world!"
        ));
        assert!(check(
            "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
            "Hello world!"
        ));
        assert!(check(
            "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA",
            "Hello world!"
        ));
        assert!(!check(
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
            "Hello world?"
        ));
        assert!(!check(
            "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
            ""
        ));
    }

    /// A user's entry in this machine's /etc/shadow as chpasswd wrote it (libxcrypt,
    /// `pam_unix.so yescrypt`, the default cost `j9T`), password "abc".
    const SHADOW_YESCRYPT: &str =
        "$y$j9T$c6skqkbmGLiFgLTy67qWR.$uzJ0Xm/y5c366jZbbsr/JiDHWfhirPyo/428pJ5YNE0";

    #[test]
    fn yescrypt_as_libxcrypt_writes_it() {
        assert!(check(SHADOW_YESCRYPT, "abc"));
        assert!(!check(SHADOW_YESCRYPT, "abd"));
        assert!(!check(SHADOW_YESCRYPT, ""));
        let (head, hash) = SHADOW_YESCRYPT.rsplit_once('$').unwrap();
        for bad in [
            format!("{head}$"),
            format!("{head}${hash}$"),
            format!("{head}${hash}!"),
            "$y$j9T$$uzJ0Xm/y5c366jZbbsr/JiDHWfhirPyo/428pJ5YNE0".into(),
            "$y$$c6skqkbmGLiFgLTy67qWR.$uzJ0Xm/y5c366jZbbsr/JiDHWfhirPyo/428pJ5YNE0".into(),
            "$y$zzz$c6skqkbmGLiFgLTy67qWR.$uzJ0Xm/y5c366jZbbsr/JiDHWfhirPyo/428pJ5YNE0".into(),
            // N = 2^30 with r = 32: 4 TiB, refused when read rather than at a login.
            "$y$jUT$c6skqkbmGLiFgLTy67qWR.$uzJ0Xm/y5c366jZbbsr/JiDHWfhirPyo/428pJ5YNE0".into(),
        ] {
            assert!(Stored::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_well_formed_hashes_are_taken() {
        assert!(Stored::parse(&hash_password("x")).is_ok());
        assert!(Stored::parse(DUMMY_HASH).is_ok());
        let good = "svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1";
        for bad in [
            String::new(),
            "correct horse".into(),
            "$argon2id$v=19$m=19456,t=2,p=1".into(),
            "$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$yQp5dsXlHhTX8iaTMUFt3Fq3Wj4Tq3ShxbNwU2Y1Gqk".into(),
            // MD5-crypt and DES crypt: too weak to accept.
            "$1$saltstri$YMyguxXMBpd2TEZ.vS/3q1".into(),
            "saQ7BhHsvXzY.".into(),
            // Rounds crypt would never write, a salt too long, a hash cut short or
            // with a character outside crypt's alphabet, trailing parts.
            format!("$6$rounds=999$salt${good}"),
            format!("$6$rounds=1000000000$salt${good}"),
            format!("$6$rounds=+5000$salt${good}"),
            format!("$6$rounds=$salt${good}"),
            format!("$6$saltstringsaltstr${good}"),
            format!("$6$salt${}", &good[1..]),
            format!("$6$salt${}!", &good[1..]),
            format!("$6$salt${good}$"),
            format!("$5$salt${good}"),
            "$6$salt".into(),
        ] {
            assert!(Stored::parse(&bad).is_err(), "{bad}");
        }
    }
}
