//! Login: HOST, USER, PASS, ACCT; the application's answer (per-user TLS policies, the
//! anonymous user's access), failed logins held back by a delay and counted to a
//! lockout, and what a logged-in user may change.

use super::format::Access;
use super::security::ControlState;
use super::timer::Timer;
use super::{ControlTlsPolicy, Event, LoginAnswer, LoginRequest, Pending, ServerSession, reply};
use crate::command::Command;
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
        access: Access,
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
                self.logged_in(user, anonymous, now);
                true
            }
            _ => {
                self.login_failed(now);
                false
            }
        }
    }

    fn logged_in(&mut self, user: String, anonymous: bool, now: Instant) {
        self.login.failures = 0;
        self.timers.stop(Timer::Login);
        self.timers
            .set(Timer::Idle, now + self.config.timeouts.idle);
        let access = match (anonymous, self.config.anonymous_upload) {
            (false, _) => Access::Full,
            (true, false) => Access::ReadOnly,
            (true, true) => Access::UploadNew,
        };
        self.login.state = Login::LoggedIn {
            user: user.clone(),
            access,
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

    /// What the logged-in user may change (everything before login: nothing is shown then).
    pub(super) fn access(&self) -> Access {
        match &self.login.state {
            Login::LoggedIn { access, .. } => *access,
            _ => Access::Full,
        }
    }

    /// The refusal of a command that would change the storage, for a user who may not
    /// (anonymous users; see [`Access`]). `rest` is the REST offset the command would use.
    pub(super) fn write_refusal(&self, cmd: &Command, rest: u64) -> Option<Reply> {
        use Command as C;
        let access = match &self.login.state {
            Login::LoggedIn { access, .. } => *access,
            _ => return None,
        };
        let text = match (access, cmd) {
            (Access::Full, _) => return None,
            // New files only: a STOR that neither resumes nor (see `cmd_store`) replaces,
            // and STOU, whose name is new by construction.
            (Access::UploadNew, C::Stor(_)) if rest == 0 => return None,
            (Access::UploadNew, C::Stou(_)) => return None,
            (Access::UploadNew, C::Stor(_) | C::Appe(_)) => {
                "Permission denied: anonymous uploads may only create new files."
            }
            (
                _,
                C::Stor(_)
                | C::Appe(_)
                | C::Stou(_)
                | C::Dele(_)
                | C::Rmd(_)
                | C::Mkd(_)
                | C::Rnfr(_)
                | C::Rnto(_)
                | C::Mfmt { .. }
                | C::Site(_),
            ) => "Permission denied: anonymous users may not change files.",
            _ => return None,
        };
        Some(reply(ReplyCode::FILE_UNAVAILABLE, text))
    }
}
