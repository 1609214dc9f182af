//! Data connection setup: PASV, EPSV (and EPSV ALL), PORT and EPRT; the one listener or
//! active address a session holds at a time, and the checks a transfer command makes
//! before it may use it (a setup exists, the data TLS policy allows the PROT level).

use super::timer::Timer;
use super::{Action, DataId, DataTlsPolicy, Pending, ServerSession, reply};
use crate::address::{format_epsv_reply, format_pasv_reply};
use crate::command::{Command, EpsvMode, ProtectionLevel};
use crate::reply::{Reply, ReplyCode};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Instant;

/// The data connection the next transfer command will use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DataSetup {
    None,
    Passive { id: DataId },
    Active { id: DataId, addr: SocketAddr },
}

fn only_epsv() -> Reply {
    reply(
        ReplyCode::BAD_SEQUENCE,
        "Only EPSV is allowed after EPSV ALL.",
    )
}

fn protocol_not_supported() -> Reply {
    reply(
        ReplyCode::NETWORK_PROTOCOL_NOT_SUPPORTED,
        "Network protocol not supported, use (1,2).",
    )
}

impl ServerSession {
    /// PASV, EPSV, PORT and EPRT.
    pub(super) fn execute_data_setup(&mut self, cmd: Command) {
        match cmd {
            Command::Pasv => self.cmd_passive(false),
            Command::Epsv(EpsvMode::All) => {
                self.epsv_all = true;
                self.send(reply(ReplyCode::COMMAND_OK, "EPSV ALL ok."));
            }
            Command::Epsv(mode) => {
                let v6 = self.local.is_ipv6();
                if (mode == EpsvMode::Ipv4 && v6) || (mode == EpsvMode::Ipv6 && !v6) {
                    self.send(protocol_not_supported());
                } else {
                    self.cmd_passive(true);
                }
            }
            Command::Port(addr) => self.cmd_active(SocketAddr::V4(addr)),
            Command::Eprt(addr) => self.cmd_active(addr),
            other => self.misrouted(&other),
        }
    }

    fn new_id(&mut self) -> DataId {
        self.next_id += 1;
        DataId(self.next_id)
    }

    /// Closes the listener or forgets the active address, if any.
    pub(super) fn close_data_setup(&mut self) {
        self.timers.stop(Timer::DataUnused);
        match std::mem::replace(&mut self.data, DataSetup::None) {
            DataSetup::Passive { id } | DataSetup::Active { id, .. } => {
                self.actions.push_back(Action::AbortData { id });
            }
            DataSetup::None => {}
        }
    }

    fn cmd_passive(&mut self, extended: bool) {
        if self.epsv_all && !extended {
            self.send(only_epsv());
            return;
        }
        if !extended
            && self.local.is_ipv6()
            && !matches!(self.config.advertised_address, Some(IpAddr::V4(_)))
        {
            self.send(reply(
                ReplyCode::NETWORK_PROTOCOL_NOT_SUPPORTED,
                "PASV needs IPv4; use EPSV.",
            ));
            return;
        }
        // At most one listener per session: a new PASV replaces the old one.
        self.close_data_setup();
        let id = self.new_id();
        let accept_from = self.config.check_data_peer.then(|| self.peer.ip());
        let token = self.new_token();
        self.pending = Some((token, Pending::Listen { id, extended }));
        self.actions.push_back(Action::Listen {
            id,
            ipv6: self.local.is_ipv6(),
            accept_from,
        });
    }

    /// The adapter's answer to [`Action::Listen`]: the listener's address, or `None` if it
    /// could not listen.
    pub(super) fn on_listening(&mut self, id: DataId, local: Option<SocketAddr>, now: Instant) {
        let Some((_, Pending::Listen { id: want, extended })) = &self.pending else {
            return;
        };
        if *want != id {
            return;
        }
        let extended = *extended;
        self.pending = None;
        match local {
            None => self.send(reply(
                ReplyCode::CANT_OPEN_DATA_CONNECTION,
                "No free passive port.",
            )),
            Some(local) => {
                self.data = DataSetup::Passive { id };
                self.timers
                    .set(Timer::DataUnused, now + self.config.timeouts.data_connect);
                let r = if extended {
                    reply(
                        ReplyCode::ENTERING_EXTENDED_PASSIVE_MODE,
                        &format_epsv_reply(local.port()),
                    )
                } else {
                    self.pasv_reply(local)
                };
                self.send(r);
            }
        }
        self.drain(now);
    }

    /// 227 for a listener on `local`: the advertised IPv4 address if one is configured.
    fn pasv_reply(&self, local: SocketAddr) -> Reply {
        let ip = match (self.config.advertised_address, local.ip()) {
            (Some(IpAddr::V4(a)), _) => a,
            (_, IpAddr::V4(a)) => a,
            (_, IpAddr::V6(a)) => a.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
        };
        reply(
            ReplyCode::ENTERING_PASSIVE_MODE,
            &format_pasv_reply(SocketAddrV4::new(ip, local.port())),
        )
    }

    fn cmd_active(&mut self, addr: SocketAddr) {
        if !self.config.active_mode {
            self.send(reply(
                ReplyCode::NOT_IMPLEMENTED,
                "Active mode is disabled; use PASV or EPSV.",
            ));
            return;
        }
        if self.epsv_all {
            self.send(only_epsv());
            return;
        }
        if addr.is_ipv6() != self.peer.is_ipv6() {
            self.send(protocol_not_supported());
            return;
        }
        // RFC 2577 §3: no bounce to other hosts or privileged ports.
        if (self.config.check_data_peer && addr.ip() != self.peer.ip()) || addr.port() < 1024 {
            self.send(reply(
                ReplyCode::SYNTAX_ERROR_IN_ARGUMENTS,
                "Illegal PORT command: address or port refused.",
            ));
            return;
        }
        self.close_data_setup();
        let id = self.new_id();
        self.data = DataSetup::Active { id, addr };
        self.send(reply(
            ReplyCode::COMMAND_OK,
            "PORT command successful. Consider using PASV.",
        ));
    }

    /// The data connection for a transfer command, or the refusal already sent.
    pub(super) fn data_for_transfer(&mut self) -> Option<DataId> {
        let id = match &self.data {
            DataSetup::None => {
                self.send(reply(
                    ReplyCode::CANT_OPEN_DATA_CONNECTION,
                    "Use PORT, PASV or EPSV first.",
                ));
                return None;
            }
            DataSetup::Passive { id } | DataSetup::Active { id, .. } => *id,
        };
        let refusal = match (self.security.data_policy, self.security.prot) {
            (DataTlsPolicy::Require, p) if p != ProtectionLevel::Private => {
                Some("Data connections must be encrypted: use PROT P.")
            }
            (DataTlsPolicy::Deny, ProtectionLevel::Private) => {
                Some("Data connections must not be encrypted: use PROT C.")
            }
            _ => None,
        };
        if let Some(text) = refusal {
            self.send(reply(ReplyCode::PROT_SETTING_REFUSED, text));
            return None;
        }
        Some(id)
    }
}
