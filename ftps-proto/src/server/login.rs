//! Login: HOST, USER, PASS, ACCT; the application's answer (per-user TLS policies, the
//! anonymous user's access), failed logins held back by a delay and counted to a
//! lockout, and what a logged-in user may change.

use super::permissions::{Grants, Permission, Permissions};
use super::security::ControlState;
use super::timer::Timer;
use super::{ControlTlsPolicy, Event, LoginAnswer, LoginRequest, Pending, ServerSession, reply};
use crate::command::Command;
use crate::path::VirtualPath;
use crate::reply::{Reply, ReplyCode};
use crate::text::Password;
use std::time::Instant;

/// Successful logins in one session (REIN and log in again), at most; the next REIN
/// closes the session.
pub(super) const MAX_LOGINS: u32 = 16;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) enum Login {
    #[default]
    None,
    UserGiven {
        user: String,
        anonymous: bool,
    },
    LoggedIn {
        user: String,
        grants: Grants,
    },
}

/// Who is logged in, and how logins went so far.
#[derive(Debug, Default)]
pub(super) struct LoginState {
    pub(super) state: Login,
    /// The HOST the client asked for.
    pub(super) host: Option<String>,
    /// Failed logins in a row.
    pub(super) failures: u32,
    /// Successful logins so far (see [`MAX_LOGINS`]).
    pub(super) count: u32,
    /// A failed login's reply, held back until [`Timer::LoginDelay`], and whether the
    /// session closes after it.
    pub(super) delayed: Option<(Reply, bool)>,
}

impl LoginState {
    /// REIN: nobody logged in, no HOST; the counts stay.
    pub(super) fn log_out(&mut self) {
        self.state = Login::None;
        self.host = None;
    }
}

impl ServerSession {
    /// HOST, USER, PASS and ACCT.
    pub(super) fn execute_login(&mut self, cmd: Command) {
        match cmd {
            Command::Host(host) => self.cmd_host(host.into_inner()),
            Command::User(user) => self.cmd_user(user.into_inner()),
            Command::Pass(password) => self.cmd_pass(password),
            Command::Acct(_) => self.send(reply(ReplyCode::SUPERFLUOUS, "ACCT not needed.")),
            other => self.misrouted(&other),
        }
    }

    fn cmd_host(&mut self, host: String) {
        if self.login.state != Login::None {
            self.send(reply(
                ReplyCode::BAD_SEQUENCE,
                "HOST must come before USER.",
            ));
        } else {
            self.login.host = Some(host);
            self.send(reply(ReplyCode::SERVICE_READY, "Host accepted."));
        }
    }

    fn cmd_user(&mut self, user: String) {
        if self.user().is_some() {
            self.send(reply(ReplyCode::BAD_SEQUENCE, "Already logged in."));
            return;
        }
        let anonymous = user.eq_ignore_ascii_case("anonymous") || user.eq_ignore_ascii_case("ftp");
        // Every spelling of the anonymous user is one user ("anonymous"), for the
        // authenticator, the storage and every per-user count (passive listeners, say).
        let user = if anonymous {
            "anonymous".to_owned()
        } else {
            user
        };
        if anonymous && !self.config.anonymous {
            self.send(reply(
                ReplyCode::NOT_LOGGED_IN,
                "Anonymous login is not allowed.",
            ));
            return;
        }
        if !anonymous
            && self.security.control_policy != ControlTlsPolicy::Allow
            && self.security.control != ControlState::Secure
        {
            self.send(reply(
                ReplyCode::DENIED_FOR_POLICY,
                "Policy requires TLS for credentials: use AUTH TLS first.",
            ));
            return;
        }
        self.login.state = Login::UserGiven { user, anonymous };
        self.send(reply(
            ReplyCode::NEED_PASSWORD,
            "Please specify the password.",
        ));
    }

    fn cmd_pass(&mut self, password: Password) {
        let Login::UserGiven { user, .. } = self.login.state.clone() else {
            let text = if self.user().is_some() {
                "Already logged in."
            } else {
                "Login with USER first."
            };
            self.send(reply(ReplyCode::BAD_SEQUENCE, text));
            return;
        };
        let token = self.new_token();
        let request = LoginRequest {
            token,
            user,
            password,
            host: self.login.host.clone(),
            secure: self.security.control == ControlState::Secure,
            peer: self.peer,
            tls: self.security.tls.clone(),
        };
        self.pending = Some((token, Pending::Login));
        self.events.push_back(Event::Login(request));
    }

    /// PASS's continuation: the application's answer. Returns whether queued commands may
    /// run now (not while a failed login's reply is held back).
    pub(super) fn login_answered(&mut self, answer: LoginAnswer, now: Instant) -> bool {
        let Login::UserGiven { user, anonymous } =
            std::mem::replace(&mut self.login.state, Login::None)
        else {
            return false;
        };
        match answer {
            LoginAnswer::Accepted {
                control_tls,
                data_tls,
                grants,
            } => {
                let control = control_tls.unwrap_or(self.security.control_policy);
                let needs_tls = match control {
                    ControlTlsPolicy::Allow => false,
                    ControlTlsPolicy::RequireForCredentials => !anonymous,
                    ControlTlsPolicy::Require => true,
                };
                if needs_tls && self.security.control != ControlState::Secure {
                    self.send(reply(
                        ReplyCode::NOT_LOGGED_IN,
                        "TLS is required for this user.",
                    ));
                    return true;
                }
                self.security.control_policy = control;
                self.security.data_policy = data_tls.unwrap_or(self.security.data_policy);
                self.logged_in(user, anonymous, grants.unwrap_or_default(), now);
                true
            }
            LoginAnswer::Unavailable => {
                // Not a failed login: no delay, not counted; the client may come back.
                self.send(reply(
                    ReplyCode::SERVICE_NOT_AVAILABLE,
                    "Login service unavailable; try again later.",
                ));
                self.close();
                false
            }
            _ => {
                self.login_failed(now);
                false
            }
        }
    }

    fn logged_in(&mut self, user: String, anonymous: bool, grants: Grants, now: Instant) {
        self.login.failures = 0;
        self.timers.stop(Timer::Login);
        self.timers
            .set(Timer::Idle, now + self.config.timeouts.idle);
        // Anonymous users never get more than reading, and adding new files with
        // `anonymous_upload`, whatever the authenticator granted.
        let grants = match (anonymous, self.config.anonymous_upload) {
            (false, _) => grants,
            (true, false) => grants.limited_to(Permissions::READ_ONLY),
            (true, true) => grants.limited_to(Permissions::READ_ONLY.with(Permission::Upload)),
        };
        self.login.state = Login::LoggedIn {
            user: user.clone(),
            grants,
        };
        self.login.count += 1;
        self.events.push_back(Event::LoggedIn { user, anonymous });
        self.send(reply(ReplyCode::LOGGED_IN, "Login successful."));
    }

    /// A refused login: its reply waits for [`Timer::LoginDelay`]; the last one allowed
    /// closes the session.
    fn login_failed(&mut self, now: Instant) {
        self.login.failures += 1;
        let close = self.login.failures >= self.config.max_login_failures;
        let r = if close {
            reply(
                ReplyCode::SERVICE_NOT_AVAILABLE,
                "Too many failed logins; closing.",
            )
        } else {
            reply(ReplyCode::NOT_LOGGED_IN, "Login incorrect.")
        };
        self.login.delayed = Some((r, close));
        self.timers
            .set(Timer::LoginDelay, now + self.config.failed_login_delay);
    }

    /// [`Timer::LoginDelay`] fired: the held-back reply goes out.
    pub(super) fn on_login_delay(&mut self, now: Instant) {
        if let Some((r, close)) = self.login.delayed.take() {
            self.send(r);
            if close {
                self.close();
            } else {
                self.drain(now);
            }
        }
    }

    /// What the logged-in user may do at `path` (before login: everything, as nothing
    /// reaches the storage then).
    pub(super) fn permissions_at(&self, path: &VirtualPath) -> Permissions {
        match &self.login.state {
            Login::LoggedIn { grants, .. } => grants.at(path),
            _ => Permissions::ALL,
        }
    }

    /// The logged-in user's grants, once logged in.
    fn grants_ref(&self) -> Option<&Grants> {
        match &self.login.state {
            Login::LoggedIn { grants, .. } => Some(grants),
            _ => None,
        }
    }

    /// The logged-in user's grants (everything before login).
    pub(super) fn grants(&self) -> Grants {
        match &self.login.state {
            Login::LoggedIn { grants, .. } => grants.clone(),
            _ => Grants::default(),
        }
    }

    /// The refusal of a command the user may not run on its path (550), checked before
    /// the command reaches its concept: the one place permissions are enforced, for every
    /// storage. `rest` is the REST offset the command would use (resuming an upload
    /// changes a file: it needs [`Permission::Overwrite`]). A STOR without `overwrite`
    /// passes here and may only create a file (see `cmd_store`).
    pub(super) fn permission_refusal(&self, cmd: &Command, rest: u64) -> Option<Reply> {
        use Command as C;
        use Permission as P;
        if !matches!(self.login.state, Login::LoggedIn { .. }) {
            return None;
        }
        let at = |p: &str| self.cwd.resolve(p);
        // What changes or reads an entry (a file, a directory as a name) is decided by the
        // directory that holds it: a rule's directory is made, removed or renamed under
        // its parent's permissions, not its own (review15, finding 7).
        let entry = |p: &str| self.cwd.resolve(p).parent();
        let here = || self.cwd.clone();
        let (needed, path): (&[Permission], VirtualPath) = match cmd {
            C::Retr(p) | C::Hash(p) => (&[P::Download], entry(p.as_str())),
            C::Stor(p) if rest > 0 => (&[P::Upload, P::Overwrite], entry(p.as_str())),
            C::Stor(p) => (&[P::Upload], entry(p.as_str())),
            C::Stou(p) => (
                &[P::Upload],
                p.as_ref().map_or_else(here, |p| at(p.as_str())),
            ),
            C::Appe(p) => (&[P::Upload, P::Overwrite], entry(p.as_str())),
            C::Dele(p) => (&[P::Delete], entry(p.as_str())),
            C::Rmd(p) => (&[P::RemoveDir], entry(p.as_str())),
            C::Mkd(p) => (&[P::MakeDir], entry(p.as_str())),
            // Rules name paths: a rename that would carry a rule's directory out from
            // under its rule, or put another directory under it, is refused.
            C::Rnfr(p) | C::Rnto(p)
                if self
                    .grants_ref()
                    .is_some_and(|g| g.has_rule_within(&at(p.as_str()))) =>
            {
                return Some(denied());
            }
            C::Rnfr(p) | C::Rnto(p) => (&[P::Rename], entry(p.as_str())),
            C::Mfmt { path, .. } => (&[P::SetTime], entry(path.as_str())),
            C::Size(p) | C::Mdtm(p) => (&[P::List], entry(p.as_str())),
            C::Stat(Some(p)) => (&[P::List], at(p.as_str())),
            C::Mlst(p) | C::Mlsd(p) | C::Nlst(p) => {
                (&[P::List], p.as_ref().map_or_else(here, |p| at(p.as_str())))
            }
            C::List(p) => {
                let path = super::transfer::list_path(p.as_ref().map(|p| p.as_str())).1;
                (&[P::List], path.map_or_else(here, at))
            }
            // An application's SITE command may change anything.
            C::Site(_) if !self.permissions_at(&self.cwd).allows_every_write() => {
                return Some(denied());
            }
            _ => return None,
        };
        let allowed = self.permissions_at(&path);
        (!needed.iter().all(|p| allowed.allows(*p))).then(denied)
    }
}

fn denied() -> Reply {
    reply(ReplyCode::FILE_UNAVAILABLE, "Permission denied.")
}
