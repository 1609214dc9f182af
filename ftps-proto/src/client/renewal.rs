//! Renewing the control connection when the TLS 1.3 session has no ticket left.
//!
//! Servers that require data connections to resume the control connection's TLS session
//! (RFC 4217 §10.2) and hand out no new TLS 1.3 ticket after an upload (ProFTPD 1.3.8)
//! let a session run out of tickets: rustls uses each ticket once. The adapter reports
//! the state of its session store ([`IoEvent::Resumption`](super::IoEvent::Resumption));
//! before an operation that needs a protected data connection that could not be resumed,
//! the session renews itself instead of failing the transfer: PWD, QUIT on the old
//! connection, a fresh control connection from the adapter
//! ([`Action::Reconnect`](super::Action::Reconnect)), then greeting, TLS, login, FEAT,
//! PBSZ/PROT replayed on it, and CWD back to the working directory; then the operation
//! runs. Servers that renew tickets (vsftpd, Pure-FTPd, ours) never need it.

use super::{Action, ClientError, ClientSession, ConnectionMode, Setup, State, quoted_path};
use crate::command::{Command, ProtectionLevel};
use crate::feature::Features;
use crate::reply::{Reply, ReplyClass, ReplyCode, ReplyDecoder};
use crate::text::Pathname;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long the old connection's QUIT may go unanswered before the session goes on to
/// the fresh connection anyway: the old connection is ended either way.
pub(super) const QUIT_WAIT: Duration = Duration::from_secs(2);

/// Where a renewal of the control connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Renewal {
    /// PWD is out: the working directory to return to.
    Pwd,
    /// QUIT is out on the old connection.
    Quit {
        /// The working directory.
        cwd: Pathname,
    },
    /// The adapter opens a fresh control connection.
    Connecting {
        /// The working directory.
        cwd: Pathname,
    },
    /// Greeting, TLS, login, FEAT, PBSZ/PROT on the fresh connection.
    Login {
        /// The working directory.
        cwd: Pathname,
    },
    /// CWD back to the working directory is out.
    Cwd,
}

impl ClientSession {
    /// Starts a renewal if the next operation needs a protected data connection that
    /// could not be resumed. Returns whether it did.
    pub(super) fn renew_if_needed(&mut self, now: Instant) -> bool {
        // (After CCC the control connection is clear but data connections keep TLS.)
        let protected = self.data_tls && self.config.protection == ProtectionLevel::Private;
        let needed = self.tickets_exhausted
            && protected
            && self.renewal.is_none()
            && self
                .queue
                .front()
                .is_some_and(|(_, op)| op.uses_data_connection());
        if needed {
            self.renewal = Some(Renewal::Pwd);
            self.send(&Command::Pwd, now);
        }
        needed
    }

    /// A reply while a renewal runs on a ready connection (PWD, QUIT, CWD).
    pub(super) fn on_renewal_reply(&mut self, step: Renewal, reply: Reply, now: Instant) {
        let code = reply.code();
        if code.is_preliminary() {
            self.renewal = Some(step);
            return;
        }
        if code == ReplyCode::SERVICE_NOT_AVAILABLE && !matches!(step, Renewal::Quit { .. }) {
            return self.fail_session(ClientError::Refused(reply));
        }
        match step {
            Renewal::Pwd => {
                let cwd = (code == ReplyCode::PATHNAME_CREATED)
                    .then(|| quoted_path(reply.first_line()))
                    .flatten()
                    .and_then(|p| Pathname::new(p).ok());
                match cwd {
                    Some(cwd) => {
                        self.renewal = Some(Renewal::Quit { cwd });
                        self.send(&Command::Quit, now);
                        self.timers.set(super::Timer::Reply, now + QUIT_WAIT);
                    }
                    None if code.is_positive() => {
                        self.renewal_failed(ClientError::Unexpected(reply), now)
                    }
                    None => self.renewal_failed(ClientError::Refused(reply), now),
                }
            }
            Renewal::Quit { cwd } => self.reconnect(cwd),
            Renewal::Cwd => {
                self.renewals += 1;
                if code.class() == ReplyClass::PositiveCompletion {
                    self.timers.stop(super::Timer::Reply);
                    self.run_next(now);
                } else {
                    self.renewal_failed(ClientError::Refused(reply), now);
                }
            }
            // No reply is due on the old connection, nor in setup (on_setup_reply).
            other @ (Renewal::Connecting { .. } | Renewal::Login { .. }) => {
                self.renewal = Some(other);
            }
        }
    }

    /// The reply timer fired during a renewal: true if the renewal took it (an old
    /// connection that did not answer QUIT is given up).
    pub(super) fn renewal_timeout(&mut self) -> bool {
        match self.renewal.take() {
            Some(Renewal::Quit { cwd }) => {
                self.reconnect(cwd);
                true
            }
            other => {
                self.renewal = other;
                false
            }
        }
    }

    /// Asks the adapter for the fresh control connection.
    fn reconnect(&mut self, cwd: Pathname) {
        self.renewal = Some(Renewal::Connecting { cwd });
        // The adapter bounds the connect with its own timeout; it reports
        // ControlReconnected or ControlClosed.
        self.timers.stop(super::Timer::Reply);
        self.actions.push_back(Action::Reconnect);
    }

    /// The adapter's fresh control connection to `peer` is up: the setup starts again on
    /// it, from the greeting.
    pub(super) fn on_reconnected(&mut self, peer: SocketAddr, now: Instant) {
        let Some(Renewal::Connecting { cwd }) = self.renewal.take() else {
            return;
        };
        self.peer = peer;
        self.decoder = ReplyDecoder::new(self.config.limits);
        self.secure = false;
        self.data_tls = false;
        self.tls_leftover_pending = false;
        self.features = Features::new();
        // A new connection: TYPE is sent again; the new TLS session has its own tickets.
        self.ascii = None;
        self.tickets_exhausted = false;
        self.renewal = Some(Renewal::Login { cwd });
        if self.config.mode == ConnectionMode::Implicit {
            self.state = State::Setup(Setup::Tls);
            self.actions.push_back(Action::StartControlTls);
        } else {
            self.state = State::Setup(Setup::Greeting);
        }
        self.timers
            .set(super::Timer::Reply, now + self.config.reply_timeout);
    }

    /// Logged in again on the fresh connection: back to the working directory. Returns
    /// false if no renewal was running (the first login).
    pub(super) fn renewed_login(&mut self, now: Instant) -> bool {
        let Some(Renewal::Login { cwd }) = self.renewal.take() else {
            return false;
        };
        self.state = State::Ready;
        self.renewal = Some(Renewal::Cwd);
        self.send(&Command::Cwd(cwd), now);
        true
    }

    /// The renewal failed on a working connection: the operation waiting for it fails;
    /// the session goes on.
    fn renewal_failed(&mut self, error: ClientError, now: Instant) {
        self.renewal = None;
        self.timers.stop(super::Timer::Reply);
        if let Some((op, _)) = self.queue.pop_front() {
            self.events.push_back(super::Event::Done {
                op,
                result: Err(error),
            });
        }
        self.run_next(now);
    }
}
