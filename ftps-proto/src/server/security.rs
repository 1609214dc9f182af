//! The security state: AUTH (and the control TLS handshake), PBSZ, PROT, CCC, REIN, the
//! RFC 2228 commands TLS does not use, and the gate every command passes first (the
//! control TLS policy, then login).

use super::format::FactSelection;
use super::login::MAX_LOGINS;
use super::timer::Timer;
use super::{
    ALPN_FTP, Action, ControlTlsPolicy, DataTlsPolicy, Event, ServerConfig, ServerSession, TlsInfo,
    TlsMode, reply,
};
use crate::command::{Command, ProtectionLevel};
use crate::path::VirtualPath;
use crate::reply::{Reply, ReplyCode};
use std::time::Instant;

/// The control connection's protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ControlState {
    Plain,
    Handshaking,
    Secure,
    /// TLS ended by an allowed CCC (RFC 4217 §6): the session was authenticated under TLS
    /// and its data protection level stays, so policies that require TLS are satisfied.
    Cleared,
}

/// The security state of a session.
#[derive(Debug)]
pub(super) struct Security {
    pub(super) control: ControlState,
    /// After CCC: whether the client's leftover close_notify record was looked for.
    pub(super) leftover_checked: bool,
    /// The control TLS policy: the server's, then the logged-in user's.
    pub(super) control_policy: ControlTlsPolicy,
    /// The data TLS policy: the server's, then the logged-in user's.
    pub(super) data_policy: DataTlsPolicy,
    /// PBSZ was accepted (PROT needs it).
    pub(super) pbsz: bool,
    pub(super) prot: ProtectionLevel,
    /// What the control connection's TLS handshake did (its SNI, the client's
    /// certificates), for the authenticator.
    pub(super) tls: Option<TlsInfo>,
}

impl Security {
    pub(super) fn new(config: &ServerConfig) -> Self {
        Self {
            control: ControlState::Plain,
            leftover_checked: true,
            control_policy: config.control_tls,
            data_policy: config.data_tls,
            pbsz: false,
            prot: ProtectionLevel::Clear,
            tls: None,
        }
    }

    /// True while the control connection is protected by TLS or was cleared by CCC after
    /// it: the session was authenticated under TLS.
    fn authenticated_under_tls(&self) -> bool {
        matches!(self.control, ControlState::Secure | ControlState::Cleared)
    }

    /// REIN: the policies back to the server's, PBSZ and PROT forgotten. The control
    /// connection's state is REIN's to change (an implicit session stays in TLS).
    fn reset(&mut self, config: &ServerConfig) {
        self.control_policy = config.control_tls;
        self.data_policy = config.data_tls;
        self.pbsz = false;
        self.prot = ProtectionLevel::Clear;
    }
}

impl ServerSession {
    /// AUTH, PBSZ, PROT, CCC, REIN, ADAT, MIC, CONF and ENC.
    pub(super) fn execute_security(&mut self, cmd: Command, now: Instant) {
        use Command as C;
        match cmd {
            C::Auth(mechanism) => self.cmd_auth(mechanism.as_str(), now),
            C::Pbsz(_) => self.cmd_pbsz(),
            C::Prot(level) => self.cmd_prot(level),
            C::Ccc => self.cmd_ccc(),
            C::Rein => self.cmd_rein(now),
            C::Adat(_) | C::Mic(_) | C::Conf(_) | C::Enc(_) => {
                self.send(reply(ReplyCode::NOT_IMPLEMENTED, "Not used with TLS."));
            }
            other => self.misrouted(&other),
        }
    }

    /// The gate: the reply refusing `cmd` under the control TLS policy or before login, if
    /// any.
    pub(super) fn gate(&self, cmd: &Command) -> Option<Reply> {
        use Command as C;
        if !self.security.authenticated_under_tls()
            && self.security.control_policy == ControlTlsPolicy::Require
            && !matches!(cmd, C::Auth(_) | C::Feat | C::Host(_) | C::Quit)
        {
            return Some(reply(
                ReplyCode::DENIED_FOR_POLICY,
                "Policy requires TLS: use AUTH TLS first.",
            ));
        }
        let needs_login = !matches!(
            cmd,
            C::User(_)
                | C::Pass(_)
                | C::Acct(_)
                | C::Auth(_)
                | C::Pbsz(_)
                | C::Prot(_)
                | C::Ccc
                | C::Feat
                | C::Host(_)
                | C::Quit
                | C::Noop
                | C::Syst
                | C::Help(_)
                | C::Opts { .. }
                | C::Rein
                | C::Adat(_)
                | C::Mic(_)
                | C::Conf(_)
                | C::Enc(_)
                | C::Lang(_)
        );
        if needs_login && self.user().is_none() {
            return Some(reply(
                ReplyCode::NOT_LOGGED_IN,
                "Please login with USER and PASS.",
            ));
        }
        None
    }

    // ----- AUTH and the control TLS handshake -----------------------------------------

    fn cmd_auth(&mut self, mechanism: &str, now: Instant) {
        if !self.config.tls_available {
            self.send(reply(ReplyCode::NOT_IMPLEMENTED, "TLS is not configured."));
        } else if self.security.control != ControlState::Plain || self.mode == TlsMode::Implicit {
            self.send(reply(ReplyCode::BAD_SEQUENCE, "Already using TLS."));
        } else if !matches!(mechanism, "TLS" | "TLS-C" | "SSL" | "TLS-P") {
            self.send(reply(
                ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                "Unknown AUTH type.",
            ));
        } else {
            self.send(reply(ReplyCode::AUTH_OK, "Proceed with negotiation."));
            self.start_tls(now);
        }
    }

    /// Asks the adapter for the control TLS handshake; until it is done, control input is
    /// discarded.
    pub(super) fn start_tls(&mut self, now: Instant) {
        self.security.control = ControlState::Handshaking;
        self.timers
            .set(Timer::ControlTls, now + self.config.timeouts.tls_handshake);
        self.actions.push_back(Action::StartControlTls);
    }

    /// [`IoEvent::ControlTlsEstablished`](super::IoEvent::ControlTlsEstablished).
    pub(super) fn on_control_tls(&mut self, info: TlsInfo, now: Instant) {
        if self.security.control != ControlState::Handshaking {
            return;
        }
        self.timers.stop(Timer::ControlTls);
        if info.alpn.as_deref().is_some_and(|p| p != ALPN_FTP) {
            self.close();
            return;
        }
        self.security.control = ControlState::Secure;
        self.security.tls = Some(info);
        if self.mode == TlsMode::Implicit
            && self.pending.is_none()
            && self.user().is_none()
            && !self.security.pbsz
        {
            self.greet();
        }
        self.drain(now);
    }

    // ----- PBSZ, PROT, CCC ------------------------------------------------------------

    fn cmd_pbsz(&mut self) {
        if self.security.control == ControlState::Secure {
            self.security.pbsz = true;
            // RFC 4217 §8: TLS has no buffer size; the answer is always PBSZ=0.
            self.send(reply(ReplyCode::COMMAND_OK, "PBSZ=0"));
        } else {
            self.send(reply(
                ReplyCode::BAD_SEQUENCE,
                "PBSZ needs a secure control connection (AUTH TLS first).",
            ));
        }
    }

    fn cmd_prot(&mut self, level: ProtectionLevel) {
        if self.security.control != ControlState::Secure || !self.security.pbsz {
            self.send(reply(ReplyCode::BAD_SEQUENCE, "PROT needs PBSZ first."));
            return;
        }
        match level {
            ProtectionLevel::Safe | ProtectionLevel::Confidential => self.send(reply(
                ReplyCode::PROT_LEVEL_NOT_SUPPORTED,
                "PROT S and E are not supported with TLS.",
            )),
            ProtectionLevel::Private if self.security.data_policy == DataTlsPolicy::Deny => self
                .send(reply(
                    ReplyCode::DENIED_FOR_POLICY,
                    "Policy denies TLS on data connections.",
                )),
            ProtectionLevel::Private => {
                self.security.prot = level;
                self.send(reply(ReplyCode::COMMAND_OK, "PROT now Private."));
            }
            ProtectionLevel::Clear => {
                self.security.prot = level;
                self.send(reply(ReplyCode::COMMAND_OK, "PROT now Clear."));
            }
        }
    }

    fn cmd_ccc(&mut self) {
        if self.user().is_none() || !self.config.allow_ccc {
            self.send(reply(
                ReplyCode::DENIED_FOR_POLICY,
                "CCC refused by policy.",
            ));
        } else if self.security.control != ControlState::Secure || self.mode == TlsMode::Implicit {
            self.send(reply(
                ReplyCode::PROTECTION_LEVEL_DENIED,
                "Control connection is not protected by AUTH TLS.",
            ));
        } else {
            self.send(reply(
                ReplyCode::COMMAND_OK,
                "CCC ok; control connection in clear text.",
            ));
            self.actions.push_back(Action::StopControlTls);
            self.security.control = ControlState::Cleared;
            self.security.leftover_checked = false;
        }
    }

    // ----- REIN -----------------------------------------------------------------------

    fn cmd_rein(&mut self, now: Instant) {
        // Each login is logged and checked: a session that logs in and out without end
        // (anonymous, pipelined) would write tens of thousands of log lines a second.
        if self.login.count >= MAX_LOGINS {
            self.send(reply(
                ReplyCode::SERVICE_NOT_AVAILABLE,
                "Too many logins in one session; closing.",
            ));
            self.close();
            return;
        }
        let was_logged_in = self.user().is_some();
        self.abort_transfer();
        self.close_data_setup();
        self.reset_user_state();
        self.timers.stop(Timer::Idle);
        // The login timeout starts again only for a session that had logged in: before a
        // login, REIN must not extend it (a session could otherwise stay forever without
        // logging in).
        if was_logged_in {
            self.timers
                .set(Timer::Login, now + self.config.timeouts.login);
            self.events.push_back(Event::LoggedOut);
        }
        self.send(reply(ReplyCode::SERVICE_READY, "Session reinitialized."));
        // RFC 4217 §11 / RFC 2228: REIN flushes the security state; an explicit session
        // returns to plain text and may AUTH again. An implicit one stays in TLS.
        if self.mode == TlsMode::Explicit && self.security.control == ControlState::Secure {
            self.actions.push_back(Action::StopControlTls);
        }
        if self.mode == TlsMode::Explicit {
            self.security.control = ControlState::Plain;
        }
    }

    /// Everything a login, PBSZ/PROT and the commands since set, back to how a new session
    /// starts (REIN).
    fn reset_user_state(&mut self) {
        self.login.log_out();
        self.security.reset(&self.config);
        self.ascii = false;
        self.rest = 0;
        self.rename_from = None;
        self.cwd = VirtualPath::root();
        self.epsv_all = false;
        self.facts = FactSelection::default();
        self.hash = Default::default();
    }
}
