//! `ftps serve --config FILE`: the server's settings in TOML, every one of which is also a
//! flag and an environment variable (`FTPS_*`); a flag or variable given wins over the
//! file. Users may be listed in the file as well (`[[users]]`), beside `--users-file`.
//!
//! A file that does not parse, holds a key the server does not know or a value of the
//! wrong kind stops the start with one error naming the file, the line and the key.

use crate::serve::{ControlTls, DataTls};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The settings a configuration file may hold (each optional: a flag, a variable or the
/// default fills what is missing).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    /// `--root`.
    pub(crate) root: Option<PathBuf>,
    /// `--storage`.
    pub(crate) storage: Option<String>,
    /// `--explicit` / `--no-explicit`.
    pub(crate) explicit: Option<Listen>,
    /// `--implicit` / `--no-implicit`.
    pub(crate) implicit: Option<Listen>,
    /// `--cert`.
    pub(crate) cert: Option<PathBuf>,
    /// `--key`.
    pub(crate) key: Option<PathBuf>,
    /// `--state-dir`.
    pub(crate) state_dir: Option<PathBuf>,
    /// `--users-file`.
    pub(crate) users_file: Option<PathBuf>,
    /// `--anonymous`.
    pub(crate) anonymous: Option<bool>,
    /// `--anonymous-upload`.
    pub(crate) anonymous_upload: Option<bool>,
    /// `--passive-ports`, as `"LO-HI"`.
    pub(crate) passive_ports: Option<Spanned<String>>,
    /// `--advertise`.
    pub(crate) advertise: Option<IpAddr>,
    /// `--proxy-protocol`, as `"127.0.0.1,10.0.0.0/8"`.
    pub(crate) proxy_protocol: Option<Spanned<String>>,
    /// `--lockout-redis`.
    pub(crate) lockout_redis: Option<String>,
    /// `--control-tls`.
    pub(crate) control_tls: Option<ControlTls>,
    /// `--data-tls`.
    pub(crate) data_tls: Option<DataTls>,
    /// `false`: `--no-session-reuse-check`.
    pub(crate) session_reuse_check: Option<bool>,
    /// `--active`.
    pub(crate) active: Option<bool>,
    /// `--allow-ccc`.
    pub(crate) allow_ccc: Option<bool>,
    /// `--client-cipher-order`.
    pub(crate) client_cipher_order: Option<bool>,
    /// `--metrics`.
    pub(crate) metrics: Option<SocketAddr>,
    /// `--drain-grace`, in seconds.
    pub(crate) drain_grace: Option<u64>,
    /// `--storage-timeout`, in seconds.
    pub(crate) storage_timeout: Option<u64>,
    /// Users, as a users file's lines would give them.
    #[serde(default)]
    pub(crate) users: Vec<Spanned<UserEntry>>,
}

/// Where to listen: an address, or `false` for not at all.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged, expecting = "an address such as \"0.0.0.0:21\", or false")]
pub(crate) enum Listen {
    /// Not at all (`false`; `true` is refused).
    Off(bool),
    /// At this address.
    At(SocketAddr),
}

/// One user of the file: `[[users]]` with `name`, `hash` (an Argon2id PHC string or a
/// crypt(3) hash brought from another server: yescrypt, SHA-crypt),
/// optional `home`, `permissions`, `rules` (`{ "/dir" = "list,upload" }`) and `quota`
/// (`"10G,1000"`), as the users file's fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserEntry {
    pub(crate) name: String,
    pub(crate) hash: String,
    pub(crate) home: Option<String>,
    pub(crate) permissions: Option<String>,
    #[serde(default)]
    pub(crate) rules: BTreeMap<String, String>,
    pub(crate) quota: Option<String>,
    /// The user's own control-channel policy (as `control_tls` above).
    pub(crate) control_tls: Option<ControlTls>,
    /// The user's own data-channel policy (as `data_tls` above).
    pub(crate) data_tls: Option<DataTls>,
}

/// A configuration file, read and parsed, with its text (for line numbers).
pub(crate) struct Loaded {
    /// The file's path, for messages.
    pub(crate) path: PathBuf,
    text: String,
    /// The settings.
    pub(crate) config: FileConfig,
}

impl Loaded {
    /// "FILE, line N" for a byte offset of the file.
    pub(crate) fn at(&self, offset: usize) -> String {
        let line = self.text[..offset.min(self.text.len())]
            .bytes()
            .filter(|b| *b == b'\n')
            .count()
            + 1;
        format!("{}, line {line}", self.path.display())
    }
}

/// Reads and parses `path`; a failure names the file, the line and the key.
pub(crate) fn load(path: &Path) -> Result<Loaded, String> {
    let text = crate::serve::read_secret_file(path, "--config")?;
    let config = toml::from_str(&text).map_err(|e| {
        // toml's message gives the line, the column and the key; the file is ours to add.
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        match line {
            Some(n) => format!("{}, line {n}: {}", path.display(), e.message()),
            None => format!("{}: {}", path.display(), e.message()),
        }
    })?;
    Ok(Loaded {
        path: path.to_owned(),
        text,
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FileConfig, String> {
        toml::from_str(text).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn every_setting_parses() {
        let c = parse(
            r#"
            root = "/srv/ftp"
            explicit = "0.0.0.0:21"
            implicit = false
            cert = "/etc/ftps/cert.pem"
            key = "/etc/ftps/key.pem"
            state_dir = "/var/lib/ftps"
            users_file = "/etc/ftps/users"
            anonymous = true
            anonymous_upload = false
            passive_ports = "50000-50100"
            advertise = "192.0.2.7"
            control_tls = "credentials"
            data_tls = "allow"
            session_reuse_check = false
            active = true
            allow_ccc = true
            client_cipher_order = true
            metrics = "127.0.0.1:9100"

            [[users]]
            name = "alice"
            hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"
            home = "/alice"
            permissions = "list,download"
            rules = { "/alice/in" = "upload" }
            quota = "10G,1000"
            "#,
        )
        .unwrap();
        assert!(matches!(c.explicit, Some(Listen::At(a)) if a.port() == 21));
        assert!(matches!(c.implicit, Some(Listen::Off(false))));
        assert!(matches!(c.control_tls, Some(ControlTls::Credentials)));
        assert_eq!(c.client_cipher_order, Some(true));
        assert_eq!(c.users.len(), 1);
        assert_eq!(c.users[0].get_ref().rules["/alice/in"], "upload");
    }

    #[test]
    fn mistakes_are_named() {
        let e = parse("roott = \"/srv\"").unwrap_err();
        assert!(e.contains("unknown field `roott`"), "{e}");
        let e = parse("explicit = \"nowhere\"").unwrap_err();
        assert!(e.contains("an address such as"), "{e}");
        let e = parse("control_tls = \"sometimes\"").unwrap_err();
        assert!(e.contains("sometimes"), "{e}");
        let e = parse("[[users]]\nname = \"a\"\n").unwrap_err();
        assert!(e.contains("missing field `hash`"), "{e}");
    }
}
