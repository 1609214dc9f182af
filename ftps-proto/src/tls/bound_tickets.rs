//! Session tickets bound to one control connection, under a ticket key shared by all.
//!
//! RFC 4217 §10.2 asks a server to make sure a data connection belongs to the control
//! connection that set it up; binding the data connection's TLS session to the control
//! connection's (a data connection must resume a session of its own control connection)
//! does that. Each session used to get a ticketer of its own for this: its own keys, about
//! 2.3 KiB in every idle session (measured with heaptrack). A [`BoundTickets`] instead
//! seals, inside the shared ticketer's authenticated encryption, a random tag made for its
//! control connection, and accepts back only tickets that carry its tag. A ticket from any
//! other session (another user's, or an earlier one of the same client) decrypts under the
//! shared key but is refused as if it did not decrypt: a full handshake follows, which a
//! data connection that must resume is refused. Per session this costs the tag and a
//! reference, not a key schedule.
//!
//! The key outlives the session: it lives as rustls rotates it (the aws-lc-rs and ring
//! ticketers make a new key every 6 hours and keep the previous one as long), as any TLS
//! server's ticket key does. What that costs: a TLS 1.2 ticket travels in the clear and
//! holds the session's master secret, so whoever later takes the key from the process's
//! memory within those hours can decrypt recorded TLS 1.2 sessions that received tickets
//! (TLS 1.3 resumption keeps forward secrecy: rustls resumes with a fresh key exchange).
//!
//! The shared ticketer must be authenticated encryption (rustls' own are): the tag binds
//! only because a ticket cannot be altered without failing to open.

use rustls::server::ProducesTickets;
use std::sync::{Arc, OnceLock};

/// Bytes of the per-session tag (random, from the configuration's provider).
const TAG: usize = 16;

/// A ticketer that seals its session's tag into every ticket and accepts only tickets
/// carrying it (see the module's documentation).
pub(crate) struct BoundTickets {
    shared: Arc<dyn ProducesTickets>,
    tag: [u8; TAG],
}

/// Without the tag: a configuration printed for a log does not carry it.
impl std::fmt::Debug for BoundTickets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundTickets")
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

impl BoundTickets {
    /// A ticketer for one control connection: tickets sealed by `shared` (the server's
    /// configured ticketer, or one made for the process), tagged with fresh random bytes
    /// from `random`.
    pub(crate) fn new(
        shared: Arc<dyn ProducesTickets>,
        random: &dyn rustls::crypto::SecureRandom,
    ) -> Result<Self, rustls::Error> {
        let mut tag = [0; TAG];
        random.fill(&mut tag).map_err(rustls::Error::from)?;
        Ok(BoundTickets { shared, tag })
    }
}

impl ProducesTickets for BoundTickets {
    fn enabled(&self) -> bool {
        self.shared.enabled()
    }

    fn lifetime(&self) -> u32 {
        self.shared.lifetime()
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let mut tagged = Vec::with_capacity(TAG + plain.len());
        tagged.extend_from_slice(&self.tag);
        tagged.extend_from_slice(plain);
        self.shared.encrypt(&tagged)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        let mut plain = self.shared.decrypt(cipher)?;
        // The tag was sealed with the rest: only a ticket the shared key produced gets
        // here, so comparing it leaks nothing an attacker could use.
        if plain.get(..TAG)? != self.tag {
            return None;
        }
        plain.drain(..TAG);
        Some(plain)
    }
}

/// The process's ticketer for servers whose configuration has none enabled, made once
/// (keys rotated by rustls); `None` when this crate was built with no provider.
pub(crate) fn process_ticketer() -> Result<Option<Arc<dyn ProducesTickets>>, rustls::Error> {
    static SHARED: OnceLock<Option<Arc<dyn ProducesTickets>>> = OnceLock::new();
    if let Some(shared) = SHARED.get() {
        return Ok(shared.clone());
    }
    let made = super::config::ticketer()?;
    Ok(SHARED.get_or_init(|| made).clone())
}

#[cfg(all(test, any(feature = "aws-lc-rs", feature = "ring")))]
#[allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
mod tests {
    use super::*;

    fn bound() -> BoundTickets {
        let shared = process_ticketer().unwrap().unwrap();
        let provider = crate::tls::config::provider();
        BoundTickets::new(shared, provider.secure_random).unwrap()
    }

    #[test]
    fn a_ticket_opens_only_in_the_session_that_sealed_it() {
        let (a, b) = (bound(), bound());
        let ticket = a.encrypt(b"session state").unwrap();
        assert_eq!(a.decrypt(&ticket).as_deref(), Some(&b"session state"[..]));
        assert_eq!(b.decrypt(&ticket), None, "another session's ticket");
        // The shared key opens it, and finds the tag in front: sealed, not appended.
        let shared = process_ticketer().unwrap().unwrap();
        let opened = shared.decrypt(&ticket).unwrap();
        assert_eq!(&opened[..TAG], &a.tag);
        assert_eq!(&opened[TAG..], b"session state");
    }

    #[test]
    fn altered_or_short_tickets_are_refused() {
        let a = bound();
        let mut ticket = a.encrypt(b"x").unwrap();
        let last = ticket.len() - 1;
        ticket[last] ^= 1;
        assert_eq!(a.decrypt(&ticket), None);
        assert_eq!(a.decrypt(&[]), None);
        // Sealed by the shared key without a tag (shorter than one): refused.
        let shared = process_ticketer().unwrap().unwrap();
        assert_eq!(a.decrypt(&shared.encrypt(b"short").unwrap()), None);
        assert_ne!(bound().tag, a.tag, "each session draws its own tag");
    }
}
