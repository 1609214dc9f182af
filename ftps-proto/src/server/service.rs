//! Commands about the service and the session itself: QUIT, NOOP, SYST, FEAT, HELP,
//! OPTS, LANG, STAT without a path, SITE (answered by the application), and the
//! superfluous ALLO and SMNT.

use super::format::FactSelection;
use super::{Event, Pending, ServerSession, TlsMode, reply};
use crate::command::{Command, ProtectionLevel};
use crate::feature::Features;
use crate::reply::{Reply, ReplyCode};
use crate::text::Text;

/// The HELP reply.
fn help() -> Reply {
    Reply::multiline(
        ReplyCode::HELP_MESSAGE,
        [
            "The following commands are recognized.",
            " ABOR ACCT ALLO APPE AUTH CCC CDUP CWD DELE EPRT EPSV FEAT HASH HELP HOST LIST",
            " MDTM MFMT MKD MLSD MLST MODE NLST NOOP OPTS PASS PASV PBSZ PORT PROT PWD QUIT",
            " RANG REIN REST RETR RMD RNFR RNTO SITE SIZE STAT STOR STOU STRU SYST TYPE USER",
            " XCUP XCWD XMKD XPWD XRMD",
            "Help OK.",
        ],
    )
}

impl ServerSession {
    /// QUIT, NOOP, SYST, FEAT, HELP, OPTS, LANG, STAT, SITE, ALLO and SMNT.
    pub(super) fn execute_service(&mut self, cmd: Command) {
        use Command as C;
        match cmd {
            C::Quit => self.cmd_quit(),
            C::Noop => self.send(reply(ReplyCode::COMMAND_OK, "NOOP ok.")),
            C::Syst => self.send(reply(ReplyCode::SYSTEM_TYPE, "UNIX Type: L8")),
            C::Feat => {
                let feat = self.features().to_reply();
                self.send(feat);
            }
            C::Help(_) => self.send(help()),
            C::Opts { name, value } => {
                self.cmd_opts(name.as_str(), value.as_ref().map(|v| v.as_str()));
            }
            C::Lang(_) => self.send(reply(ReplyCode::NOT_IMPLEMENTED, "LANG not implemented.")),
            C::Stat(None) => self.cmd_status(),
            C::Site(command) => self.cmd_site(command),
            C::Allo { .. } => self.send(reply(ReplyCode::SUPERFLUOUS, "ALLO not needed.")),
            C::Smnt(_) => self.send(reply(ReplyCode::NOT_IMPLEMENTED, "SMNT not implemented.")),
            other => self.misrouted(&other),
        }
    }

    fn cmd_quit(&mut self) {
        self.abort_transfer();
        self.send(reply(ReplyCode::CLOSING_CONTROL, "Goodbye."));
        self.close();
    }

    fn cmd_site(&mut self, command: Text) {
        if self.config.site_commands {
            let token = self.new_token();
            self.pending = Some((token, Pending::Site));
            self.events.push_back(Event::Site {
                token,
                command: command.into_inner(),
            });
        } else {
            self.send(reply(ReplyCode::NOT_IMPLEMENTED, "SITE not implemented."));
        }
    }

    fn cmd_opts(&mut self, name: &str, value: Option<&str>) {
        match (name, value.map(str::to_ascii_uppercase).as_deref()) {
            ("UTF8", Some("ON")) => self.send(reply(ReplyCode::COMMAND_OK, "Always in UTF8 mode.")),
            ("UTF8", _) => self.send(reply(
                ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                "UTF8 cannot be turned off.",
            )),
            ("HASH", _) => self.opts_hash(value),
            ("MLST", _) => {
                self.facts = FactSelection::parse(value.unwrap_or(""));
                let names = self.facts.names();
                self.send(reply(ReplyCode::COMMAND_OK, &format!("MLST OPTS {names}")));
            }
            _ => self.send(reply(
                ReplyCode::SYNTAX_ERROR_IN_ARGUMENTS,
                "Option not understood.",
            )),
        }
    }

    fn cmd_status(&mut self) {
        let mut lines = vec![
            "FTP server status:".to_owned(),
            format!(" Connected to {}", self.peer.ip()),
        ];
        if let Some(user) = self.user() {
            lines.push(format!(" Logged in as {user}"));
        }
        lines.push(format!(
            " TYPE: {}, STRUcture: File, MODE: Stream",
            if self.ascii { "ASCII" } else { "BINARY" }
        ));
        lines.push(format!(
            " Control connection is {}",
            if self.is_control_secure() {
                "encrypted"
            } else {
                "plain text"
            }
        ));
        lines.push(format!(
            " Data connections will be {}",
            if self.security.prot == ProtectionLevel::Private {
                "encrypted"
            } else {
                "plain text"
            }
        ));
        match &self.transfer {
            Some(t) => lines.push(format!(
                " Transferring {}: {} bytes so far",
                t.path, t.bytes
            )),
            None => lines.push(" No data connection".to_owned()),
        }
        lines.push("End of status".to_owned());
        self.send(Reply::multiline(ReplyCode::SYSTEM_STATUS, lines));
    }

    /// The features this session supports, exactly.
    fn features(&self) -> Features {
        let mut f = Features::new();
        let mut add = |name: &str, params: &str| {
            let _ = f.push(name, params);
        };
        if self.config.tls_available && self.mode == TlsMode::Explicit {
            add("AUTH", "TLS");
            add("AUTH", "SSL");
        }
        if self.config.tls_available {
            add("PBSZ", "");
            add("PROT", "");
        }
        if self.config.allow_ccc && self.mode == TlsMode::Explicit {
            add("CCC", "");
        }
        if self.config.active_mode {
            add("EPRT", "");
        }
        add("EPSV", "");
        add("HASH", &self.hash_feat());
        add("HOST", "");
        add("MDTM", "");
        if self.config.storage.set_modified {
            add("MFMT", "");
        }
        add("MLST", &self.facts.feat());
        add("PASV", "");
        add("RANG", "");
        add("REST", "STREAM");
        add("SIZE", "");
        add("TVFS", "");
        add("UTF8", "");
        f
    }
}
