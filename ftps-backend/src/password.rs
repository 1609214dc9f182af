//! Stored password hashes: Argon2 PHC strings (what this crate makes, [`hash_password`]),
//! and the crypt(3) strings other servers' users have: yescrypt (`$y$`, `/etc/shadow`'s
//! default on Debian 11+, Ubuntu 22.04+ and Fedora 35+, which vsftpd and Pure-FTPd check
//! through PAM) and SHA-crypt (`$6$`, `$5$`: older `/etc/shadow`, ProFTPD's `AuthUserFile`,
//! Pure-FTPd's `pure-pw`). Each is parsed once when a user is added and checked in
//! constant time. The crypt kinds are checked, never made: they let an operator bring
//! users over from another server without resetting their passwords; new hashes are
//! Argon2id. Not taken: scrypt (`$7$`), gost-yescrypt (`$gy$`), bcrypt, MD5 and DES crypt.
//! Passwords are UTF-8 (the protocol core refuses a PASS that is not), so a user brought
//! over whose password was, say, Latin-1 bytes cannot log in until it is set again.
//!
//! Every check is bounded when its hash is read, not when a login comes: memory
//! ([`MEMORY_PER_CHECK_MAX`]), Argon2 passes, yescrypt's extra time (none taken),
//! SHA-crypt rounds, and the password's length ([`PASSWORD_MAX`]).

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};

/// A hash string that is not a valid Argon2 PHC string, yescrypt or SHA-crypt one, or
/// whose check would cost more than a login may (the bounds of this module).
#[derive(Debug)]
pub struct BadHash;

impl std::fmt::Display for BadHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "not a valid Argon2 PHC string, yescrypt ($y$) or SHA-crypt ($6$, $5$) hash, \
             or one that costs more than a login may",
        )
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

/// The most memory one check may take: 256 MiB (Argon2's `m`, yescrypt's `128 * r * N *
/// p`), 13 times Argon2id's default here and 16 times libxcrypt's yescrypt default (`j9T`).
/// A hash asking for more is refused when read: one login must not be able to take the
/// machine's memory (checks run one per core at once, and [`MEMORY_IN_FLIGHT`] bounds
/// them together).
pub const MEMORY_PER_CHECK_MAX: u64 = 256 << 20;

/// The most memory the checks running at once may take together (each waits its turn
/// beyond it): 1 GiB.
pub const MEMORY_IN_FLIGHT: u64 = 1 << 30;

/// The most work one Argon2 check may take: `m * t`, in bytes: 1 GiB, 27 times the
/// default (19 MiB, 2 passes: 16.5 ms of CPU measured here), so about half a second
/// (estimated from that, not measured).
const ARGON2_WORK_MAX: u64 = 1 << 30;

/// The most rounds a SHA-crypt hash may ask for: 1,000,000 (passlib's default is 656,000,
/// crypt's 5000), about 0.2 s for a short password here; crypt itself allows 999,999,999,
/// about 200 s a check, which would let one user's hash hold a core for minutes at every
/// wrong password.
const SHA_CRYPT_ROUNDS_MAX: usize = 1_000_000;

/// The longest password checked (longer ones are refused at once, whatever the name):
/// SHA-crypt's work grows with the password's length (CVE-2016-20013: 88 ms for 4 KiB at
/// 5000 rounds here), and no one types more.
pub const PASSWORD_MAX: usize = 1024;

/// A stored hash, checked when a user is added: its text and what it is.
#[derive(Clone)]
pub(crate) struct Stored {
    /// The string as given (what the decoy order and key are made of).
    text: String,
    kind: Kind,
}

/// The kinds of hash, with what checking them needs.
#[derive(Clone)]
enum Kind {
    /// An Argon2 PHC string (parsed again at each check: `PasswordHash` borrows it), and
    /// the bytes of working memory it takes.
    Argon2 { memory: u64 },
    /// A SHA-crypt hash.
    ShaCrypt(ShaCrypt),
    /// A yescrypt hash (its parameters checked when parsed), and the memory it takes.
    Yescrypt { memory: u64 },
}

/// The hash stays out of logs and panics.
impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.kind {
            Kind::Argon2 { .. } => "Stored(Argon2, ..)",
            Kind::ShaCrypt(_) => "Stored(SHA-crypt, ..)",
            Kind::Yescrypt { .. } => "Stored(yescrypt, ..)",
        })
    }
}

/// The parts of a SHA-crypt string, `$6$[rounds=N$]SALT$HASH` (SHA-512) or `$5$...`
/// (SHA-256), as Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512" and crypt(3)
/// define them: a salt of at most 16 characters, 5000 rounds unless said, from 1000 to
/// 999,999,999 (crypt clamps the rounds it is asked for into that range and writes the
/// rounds it used, so a string outside it was not made by crypt; this crate takes no more
/// than [`SHA_CRYPT_ROUNDS_MAX`]), the hash in crypt's base64 alphabet, 86 characters for
/// SHA-512 and 43 for SHA-256.
#[derive(Clone)]
struct ShaCrypt {
    sha512: bool,
    rounds: usize,
    salt: String,
    hash: String,
}

/// The rounds of a SHA-crypt string that does not say.
const SHA_CRYPT_DEFAULT_ROUNDS: usize = 5_000;
/// The longest salt crypt writes (a longer one is cut to this).
const SHA_CRYPT_SALT_MAX: usize = 16;

impl Stored {
    /// Parses `text` (an Argon2 PHC string, a yescrypt or a SHA-crypt string), refusing
    /// one whose check would cost more than the bounds above.
    pub(crate) fn parse(text: &str) -> Result<Self, BadHash> {
        let kind = if text.starts_with("$5$") || text.starts_with("$6$") {
            Kind::ShaCrypt(ShaCrypt::parse(text)?)
        } else if text.starts_with("$y$") {
            Kind::Yescrypt {
                memory: parse_yescrypt(text)?,
            }
        } else {
            Kind::Argon2 {
                memory: parse_argon2(text)?,
            }
        };
        Ok(Stored {
            text: text.to_owned(),
            kind,
        })
    }

    /// Whether `password` matches, comparing in constant time. `memory` is Argon2's
    /// working memory, grown as needed and kept for the next check.
    pub(crate) fn verify(&self, password: &[u8], memory: &mut Vec<argon2::Block>) -> bool {
        match &self.kind {
            Kind::Argon2 { .. } => verify_argon2(&self.text, password, memory),
            Kind::ShaCrypt(sha) => sha.verify(password),
            Kind::Yescrypt { .. } => {
                use yescrypt::PasswordVerifier;
                // The crate compares in constant time (ctutils).
                yescrypt::Yescrypt::default()
                    .verify_password(password, self.text.as_str())
                    .is_ok()
            }
        }
    }

    /// Whether checking it needs Argon2's working memory.
    pub(crate) fn is_argon2(&self) -> bool {
        matches!(self.kind, Kind::Argon2 { .. })
    }

    /// The bytes of memory a check takes (SHA-crypt's few hundred count as none).
    pub(crate) fn memory(&self) -> u64 {
        match self.kind {
            Kind::Argon2 { memory } | Kind::Yescrypt { memory } => memory,
            Kind::ShaCrypt(_) => 0,
        }
    }

    /// The string as given.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// [`DUMMY_HASH`].
    pub(crate) fn dummy() -> Self {
        Stored {
            text: DUMMY_HASH.to_owned(),
            kind: Kind::Argon2 {
                memory: 19456 * 1024,
            },
        }
    }
}

/// Checks an Argon2 PHC string: a known variant and version, parameters the crate takes,
/// a salt and a hash, memory within [`MEMORY_PER_CHECK_MAX`] and work within
/// [`ARGON2_WORK_MAX`]; returns the memory it takes.
fn parse_argon2(text: &str) -> Result<u64, BadHash> {
    let hash = PasswordHash::new(text).map_err(|_| BadHash)?;
    argon2::Algorithm::try_from(hash.algorithm).map_err(|_| BadHash)?;
    if let Some(version) = hash.version {
        argon2::Version::try_from(version).map_err(|_| BadHash)?;
    }
    let params = argon2::Params::try_from(&hash).map_err(|_| BadHash)?;
    if hash.hash.is_none() || hash.salt.is_none() {
        return Err(BadHash);
    }
    let memory = u64::from(params.m_cost()) * 1024;
    let work = memory.saturating_mul(u64::from(params.t_cost()));
    if memory > MEMORY_PER_CHECK_MAX || work > ARGON2_WORK_MAX {
        return Err(BadHash);
    }
    Ok(memory)
}

/// Checks a yescrypt string, `$y$PARAMS$SALT$HASH` (libxcrypt's crypt(5)): parameters the
/// crate takes, with no extra time (`t`) or ROM, as libxcrypt's `crypt_gensalt` writes
/// them; memory within [`MEMORY_PER_CHECK_MAX`]; a salt that decodes and a hash of 43
/// characters (32 bytes: a shorter one would match more passwords), nothing after.
/// Returns the memory a check takes.
fn parse_yescrypt(text: &str) -> Result<u64, BadHash> {
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
    let plain = [
        yescrypt::Mode::Rw,
        yescrypt::Mode::Worm,
        yescrypt::Mode::Classic,
    ]
    .into_iter()
    .any(|mode| {
        yescrypt::Params::new(mode, params.n(), params.r(), params.p()).is_ok_and(|p| p == params)
    });
    let memory = 128u64
        .checked_mul(u64::from(params.r()))
        .and_then(|m| m.checked_mul(params.n()))
        .and_then(|m| m.checked_mul(u64::from(params.p().max(1))));
    let decodes = |field: &str| mcf::Base64::Crypt.decode_vec(field).ok();
    let salt_ok = !salt.is_empty() && decodes(salt).is_some();
    let hash_ok = hash.len() == 43 && decodes(hash).is_some_and(|h| h.len() == 32);
    match memory {
        Some(memory) if plain && salt_ok && hash_ok && memory <= MEMORY_PER_CHECK_MAX => Ok(memory),
        _ => Err(BadHash),
    }
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
        if !(1_000..=SHA_CRYPT_ROUNDS_MAX).contains(&rounds) {
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
const DUMMY_HASH: &str =
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
            // N = 2^33 with r = 32: 32 TiB, refused when read rather than at a login; and
            // 512 MiB (jET), past the bound of one check.
            "$y$jUT$c6skqkbmGLiFgLTy67qWR.$uzJ0Xm/y5c366jZbbsr/JiDHWfhirPyo/428pJ5YNE0".into(),
            "$y$jET$c6skqkbmGLiFgLTy67qWR.$uzJ0Xm/y5c366jZbbsr/JiDHWfhirPyo/428pJ5YNE0".into(),
            // Extra time (t = 1,091,060,272: months a check), never written by libxcrypt.
            "$y$j9T/zzzzzz$c6skqkbmGLiFgLTy67qWR.$uzJ0Xm/y5c366jZbbsr/JiDHWfhirPyo/428pJ5YNE0"
                .into(),
            // A hash cut short would match one wrong password in 256 (the crate compares
            // what the field holds); a salt that does not decode can match nothing.
            "$y$j9T$c6skqkbmGLiFgLTy67qWR.$..".into(),
            format!("{head}${}", &hash[..42]),
            format!("$y$j9T$a${hash}"),
        ] {
            assert!(Stored::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_hash_costs_no_more_than_a_login_may() {
        let good = "svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1";
        assert!(Stored::parse(&format!("$6$rounds=1000000$salt${good}")).is_ok());
        // libxcrypt's yescrypt cost 9 (jDT): 256 MiB, the most one check may take.
        let jdt = "$y$jDT$c6skqkbmGLiFgLTy67qWR.$uzJ0Xm/y5c366jZbbsr/JiDHWfhirPyo/428pJ5YNE0";
        assert_eq!(Stored::parse(jdt).unwrap().memory(), 256 << 20);
        assert_eq!(Stored::parse(SHADOW_YESCRYPT).unwrap().memory(), 16 << 20);
        assert_eq!(
            Stored::parse(DUMMY_HASH).unwrap().memory(),
            Stored::dummy().memory()
        );
        let argon = |params: &str| {
            format!(
                "$argon2id$v=19${params}$c2FsdHNhbHRzYWx0$yQp5dsXlHhTX8iaTMUFt3Fq3Wj4Tq3ShxbNwU2Y1Gqk"
            )
        };
        assert!(Stored::parse(&argon("m=262144,t=4,p=1")).is_ok());
        for params in [
            "m=262145,t=1,p=1",
            "m=4294967295,t=1,p=1",
            "m=19456,t=100,p=1",
            "m=262144,t=5,p=1",
        ] {
            assert!(Stored::parse(&argon(params)).is_err(), "{params}");
        }
        // The hash is never shown.
        let shown = format!("{:?}", Stored::parse(DUMMY_HASH).unwrap());
        assert!(!shown.contains("c2FsdHNh"), "{shown}");
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
            // More rounds than a login may cost (200 s a check at crypt's maximum).
            format!("$6$rounds=1000001$salt${good}"),
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
