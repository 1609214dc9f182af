//! The FEAT reply (RFC 2389 §3): the extensions a server supports.
//!
//! ```text
//! feat-response = "211-" text CRLF 1*( SP feature-label [ SP feature-params ] CRLF ) "211 " text CRLF
//!               / "211" SP text CRLF                  ; no extensions
//! ```
//!
//! Labels are case-insensitive; this type keeps them upper-cased. A label may appear more
//! than once (`AUTH TLS` and `AUTH SSL`).

use crate::error::ParseError;
use crate::reply::{Reply, ReplyCode};

/// One line of a FEAT reply.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Feature {
    /// The label, upper-cased, e.g. `MLST`.
    pub name: String,
    /// The parameters as sent, e.g. `type*;size*;modify*;` (empty if none).
    pub params: String,
}

/// A fact named in the `MLST` feature line (RFC 3659 §7.8), with whether it is on by
/// default (`*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MlstFactName {
    /// The fact name as sent.
    pub name: String,
    /// True if marked with `*`: the server sends it now.
    pub enabled: bool,
}

/// The set of features of a FEAT reply, in the order sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features {
    features: Vec<Feature>,
}

impl Features {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a feature; the label is upper-cased, and a label or parameters holding CR, LF
    /// or NUL are refused, as are labels with spaces.
    pub fn push(&mut self, name: &str, params: &str) -> Result<(), ParseError> {
        let bad = |s: &str| s.contains(['\r', '\n', '\0']);
        if name.is_empty() || name.contains(' ') || bad(name) || bad(params) {
            return Err(ParseError::new(
                "feature",
                "empty label, or a space, CR, LF or NUL",
            ));
        }
        self.features.push(Feature {
            name: name.to_ascii_uppercase(),
            params: params.to_owned(),
        });
        Ok(())
    }

    /// Reads the features from a FEAT reply. A reply other than 211 is an error (a server
    /// that answers 500 or 502 has no FEAT; use [`Features::new`] then).
    pub fn from_reply(reply: &Reply) -> Result<Self, ParseError> {
        if reply.code() != ReplyCode::SYSTEM_STATUS {
            return Err(ParseError::new("FEAT reply", "code is not 211"));
        }
        let mut features = Self::new();
        let lines = reply.lines();
        if lines.len() > 2 {
            for line in &lines[1..lines.len() - 1] {
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                let (name, params) = line.split_once(' ').unwrap_or((line, ""));
                features.push(name, params.trim())?;
            }
        }
        Ok(features)
    }

    /// The 211 reply that lists these features.
    pub fn to_reply(&self) -> Reply {
        if self.features.is_empty() {
            return Reply::new(ReplyCode::SYSTEM_STATUS, "No features");
        }
        let mut lines = vec!["Features:".to_owned()];
        for f in &self.features {
            lines.push(if f.params.is_empty() {
                format!(" {}", f.name)
            } else {
                format!(" {} {}", f.name, f.params)
            });
        }
        lines.push("End".to_owned());
        Reply::multiline(ReplyCode::SYSTEM_STATUS, lines)
    }

    /// Every feature, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Feature> {
        self.features.iter()
    }

    /// True if a feature with this label (any case) is listed.
    pub fn supports(&self, name: &str) -> bool {
        self.features
            .iter()
            .any(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The parameters of the first feature with this label.
    pub fn params(&self, name: &str) -> Option<&str> {
        self.features
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.params.as_str())
    }

    /// The mechanisms of the `AUTH` lines, upper-cased (`TLS`, `SSL`, ...). A single line
    /// may list several, separated by `;` or spaces.
    pub fn auth_mechanisms(&self) -> Vec<String> {
        self.features
            .iter()
            .filter(|f| f.name == "AUTH")
            .flat_map(|f| f.params.split([';', ' ', ',']))
            .filter(|m| !m.is_empty())
            .map(str::to_ascii_uppercase)
            .collect()
    }

    /// True if `REST STREAM` is listed (RFC 3659 §5.1).
    pub fn rest_stream(&self) -> bool {
        self.features
            .iter()
            .any(|f| f.name == "REST" && f.params.eq_ignore_ascii_case("STREAM"))
    }

    /// The facts of the `MLST` line, if there is one.
    pub fn mlst_facts(&self) -> Option<Vec<MlstFactName>> {
        let params = self.params("MLST")?;
        Some(
            params
                .split(';')
                .filter(|f| !f.is_empty())
                .map(|f| match f.strip_suffix('*') {
                    Some(name) => MlstFactName {
                        name: name.to_owned(),
                        enabled: true,
                    },
                    None => MlstFactName {
                        name: f.to_owned(),
                        enabled: false,
                    },
                })
                .collect(),
        )
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Features {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let mut features = Self::new();
        for _ in 0..u.int_in_range(0..=8)? {
            let name: String = u.arbitrary()?;
            let params: String = u.arbitrary()?;
            let name: String = name.chars().filter(|c| c.is_ascii_graphic()).collect();
            let params = params.replace(['\r', '\n', '\0'], "");
            if !name.is_empty() {
                let _ = features.push(&name, params.trim());
            }
        }
        Ok(features)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proftpd_feat() {
        let reply = Reply::parse(
            b"211-Features:\r\n AUTH TLS\r\n LANG C.UTF-8*\r\n MLST modify*;perm*;size*;type*;UNIX.mode;\r\n REST STREAM\r\n UTF8\r\n211 End\r\n",
        )
        .unwrap();
        let f = Features::from_reply(&reply).unwrap();
        assert!(f.supports("utf8") && f.rest_stream());
        assert_eq!(f.auth_mechanisms(), ["TLS"]);
        let facts = f.mlst_facts().unwrap();
        assert_eq!(facts.len(), 5);
        assert!(facts[0].enabled && !facts[4].enabled);
        assert_eq!(Features::from_reply(&f.to_reply()).unwrap(), f);
    }

    #[test]
    fn no_features_and_wrong_code() {
        let none = Reply::parse(b"211 no-features\r\n").unwrap();
        assert_eq!(Features::from_reply(&none).unwrap(), Features::new());
        let refused = Reply::parse(b"500 Unknown command.\r\n").unwrap();
        assert!(Features::from_reply(&refused).is_err());
    }
}
