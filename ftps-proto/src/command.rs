//! Commands, client to server: the typed form, the parser and the encoder.
//!
//! Grammar (RFC 959 §5.3, extended by RFC 775, 2228, 2389, 2428, 2640, 3659, 7151 and the
//! MFMT draft, draft-bryan-ftpext-hash-02's HASH and draft-bryan-ftp-range's RANG):
//!
//! ```text
//! command  = verb [ SP argument ] CRLF       ; the framer removes CRLF
//! verb     = 3*4ALPHA                        ; case-insensitive
//! argument = *<any byte but CR, LF, NUL>     ; UTF-8 (RFC 2640)
//! ```
//!
//! Exactly one space separates the verb from a pathname or text argument; everything after
//! it belongs to the argument, so names with leading or trailing spaces survive. Keyword
//! and number arguments (TYPE, MODE, STRU, PROT, PBSZ, REST, ALLO, EPSV, PORT, EPRT) are
//! trimmed. The RFC 775 aliases XCWD, XCUP, XMKD, XRMD and XPWD parse to the same values
//! as CWD, CDUP, MKD, RMD and PWD.

use crate::address::{self, EprtError};
use crate::error::ParseError;
use crate::reply::ReplyCode;
use crate::text::{Password, Pathname, Text, Token, Username};
use crate::time::Timestamp;
use nom::{
    Parser,
    bytes::complete::{tag, take_while1},
    combinator::{opt, rest},
    sequence::preceded,
};
use std::fmt;
use std::net::{SocketAddr, SocketAddrV4};

/// The text format of an ASCII or EBCDIC representation type (RFC 959 §3.1.1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum TextFormat {
    /// `N`, the default.
    NonPrint,
    /// `T`, Telnet format effectors.
    Telnet,
    /// `C`, ASA carriage control.
    CarriageControl,
}

/// The argument of TYPE (RFC 959 §4.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum RepresentationType {
    /// `A [N|T|C]`: ASCII text, line endings converted.
    Ascii(TextFormat),
    /// `E [N|T|C]`: EBCDIC text.
    Ebcdic(TextFormat),
    /// `I`: image (binary), bytes unchanged.
    Image,
    /// `L n`: local byte size `n`.
    Local(u8),
}

/// The argument of STRU (RFC 959 §3.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum FileStructure {
    /// `F`, the default.
    File,
    /// `R`.
    Record,
    /// `P`.
    Page,
}

/// The argument of MODE (RFC 959 §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum TransferMode {
    /// `S`, the default.
    Stream,
    /// `B`.
    Block,
    /// `C`.
    Compressed,
}

/// The data-channel protection level of PROT (RFC 2228 §3; RFC 4217 §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum ProtectionLevel {
    /// `C`: clear, no TLS on data connections.
    Clear,
    /// `S`: safe (integrity only); RFC 4217 servers refuse it with 536.
    Safe,
    /// `E`: confidential; RFC 4217 servers refuse it with 536.
    Confidential,
    /// `P`: private, TLS on data connections.
    Private,
}

/// The argument of EPSV (RFC 2428 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum EpsvMode {
    /// No argument: any protocol, that of the control connection.
    Any,
    /// `1`: IPv4.
    Ipv4,
    /// `2`: IPv6.
    Ipv6,
    /// `ALL`: from now on only EPSV; PORT, PASV and EPRT are refused.
    All,
}

/// A control-channel command. Build one with the variants, send it with
/// [`encode`](Self::encode), and read one with [`parse`](Self::parse).
///
/// `Debug` and `Display` never show a PASS argument.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub enum Command {
    /// USER: the user name (RFC 959).
    User(Username),
    /// PASS: the password (RFC 959).
    Pass(Password),
    /// ACCT: account information (RFC 959).
    Acct(Text),
    /// CWD / XCWD: change working directory (RFC 959, RFC 775).
    Cwd(Pathname),
    /// CDUP / XCUP: change to the parent directory.
    Cdup,
    /// SMNT: structure mount.
    Smnt(Pathname),
    /// REIN: reinitialize the session (RFC 959; RFC 4217 §11 for its TLS effect).
    Rein,
    /// QUIT: log out and close.
    Quit,
    /// PORT: active data connection to an IPv4 address (RFC 959).
    Port(SocketAddrV4),
    /// PASV: passive data connection, IPv4 (RFC 959).
    Pasv,
    /// TYPE: representation type.
    Type(RepresentationType),
    /// STRU: file structure.
    Stru(FileStructure),
    /// MODE: transfer mode.
    Mode(TransferMode),
    /// RETR: retrieve a file.
    Retr(Pathname),
    /// STOR: store a file.
    Stor(Pathname),
    /// STOU: store under a unique name; the optional argument is a name hint some servers
    /// accept.
    Stou(Option<Pathname>),
    /// APPE: append to a file.
    Appe(Pathname),
    /// ALLO: allocate storage, with an optional record size (`ALLO n R m`).
    Allo {
        /// Bytes to allocate.
        size: u64,
        /// The maximum record or page size.
        record_size: Option<u64>,
    },
    /// REST: restart the next transfer at a byte offset (stream mode, RFC 3659 §5).
    Rest(u64),
    /// RNFR: rename from.
    Rnfr(Pathname),
    /// RNTO: rename to.
    Rnto(Pathname),
    /// ABOR: abort the transfer in progress.
    Abor,
    /// DELE: delete a file.
    Dele(Pathname),
    /// RMD / XRMD: remove a directory.
    Rmd(Pathname),
    /// MKD / XMKD: make a directory.
    Mkd(Pathname),
    /// PWD / XPWD: print the working directory.
    Pwd,
    /// LIST: a human-readable listing (the argument may carry options such as `-a`).
    List(Option<Pathname>),
    /// NLST: a list of names.
    Nlst(Option<Pathname>),
    /// SITE: a site-specific command.
    Site(Text),
    /// SYST: the system type.
    Syst,
    /// STAT: status, or a listing over the control channel when given a path.
    Stat(Option<Pathname>),
    /// HELP: help, optionally about one command.
    Help(Option<Text>),
    /// NOOP.
    Noop,
    /// AUTH: start a security mechanism, `TLS` or `SSL` (RFC 2228 §3, RFC 4217 §4).
    Auth(Token),
    /// ADAT: security data (RFC 2228).
    Adat(Text),
    /// PROT: data-channel protection level (RFC 2228, RFC 4217 §9).
    Prot(ProtectionLevel),
    /// PBSZ: protection buffer size; 0 for TLS (RFC 4217 §8).
    Pbsz(u32),
    /// CCC: clear the control channel (RFC 2228, RFC 4217 §6).
    Ccc,
    /// MIC: an integrity-protected command (RFC 2228).
    Mic(Text),
    /// CONF: a confidentiality-protected command (RFC 2228).
    Conf(Text),
    /// ENC: a privacy-protected command (RFC 2228).
    Enc(Text),
    /// FEAT: list the extensions (RFC 2389).
    Feat,
    /// OPTS: set options of a command, e.g. `OPTS UTF8 ON` (RFC 2389, RFC 2640).
    Opts {
        /// The command whose options are set.
        name: Token,
        /// The options, verbatim.
        value: Option<Text>,
    },
    /// EPRT: active data connection, IPv4 or IPv6 (RFC 2428).
    Eprt(#[cfg_attr(feature = "arbitrary", arbitrary(with = arbitrary_socket_addr))] SocketAddr),
    /// EPSV: extended passive mode (RFC 2428).
    Epsv(EpsvMode),
    /// SIZE: the size of a file (RFC 3659 §4).
    Size(Pathname),
    /// MDTM: the modification time of a file (RFC 3659 §3).
    Mdtm(Pathname),
    /// MLST: facts about one path, over the control channel (RFC 3659 §7).
    Mlst(Option<Pathname>),
    /// MLSD: a machine-readable directory listing (RFC 3659 §7).
    Mlsd(Option<Pathname>),
    /// MFMT: set a file's modification time (draft-somers-ftp-mfxx).
    Mfmt {
        /// The new modification time, UTC.
        modified: Timestamp,
        /// The file.
        path: Pathname,
    },
    /// LANG: the language of reply texts (RFC 2640 §4).
    Lang(Option<Text>),
    /// HOST: the virtual host wanted (RFC 7151).
    Host(Text),
    /// HASH: a file's hash, over the control connection (draft-bryan-ftpext-hash-02 §3).
    Hash(Pathname),
    /// RANG: the byte range, both ends inclusive, the next HASH covers
    /// (draft-bryan-ftp-range; draft-bryan-ftpext-hash-02 §3.3). `RANG 1 0` resets it.
    Rang {
        /// The first byte.
        start: u64,
        /// The last byte.
        end: u64,
    },
}

#[cfg(feature = "arbitrary")]
fn arbitrary_socket_addr(u: &mut arbitrary::Unstructured<'_>) -> arbitrary::Result<SocketAddr> {
    let port: u16 = u.arbitrary()?;
    Ok(if u.arbitrary()? {
        SocketAddr::new(std::net::IpAddr::V6(u.arbitrary()?), port)
    } else {
        SocketAddr::new(std::net::IpAddr::V4(u.arbitrary()?), port)
    })
}

/// What was wrong with a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandErrorKind {
    /// The line does not start with a verb (500).
    Syntax,
    /// The verb is not one this codec knows (500).
    UnknownVerb,
    /// The verb needs an argument and got none (501).
    MissingArgument,
    /// The verb takes no argument and got one (501).
    UnexpectedArgument,
    /// The argument is malformed (501).
    InvalidArgument(ParseError),
    /// The argument is not UTF-8 (501; RFC 2640 makes pathnames UTF-8).
    NotUtf8,
    /// A well-formed argument whose value is not implemented, such as `TYPE X` or
    /// `PROT Z` (504).
    UnsupportedParameter,
    /// EPRT or EPSV named a network protocol other than 1 or 2 (522, RFC 2428).
    UnsupportedNetworkProtocol,
}

/// A command line that could not be parsed. [`reply_code`](Self::reply_code) gives the
/// reply a server sends for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError {
    verb: Option<String>,
    kind: CommandErrorKind,
}

impl CommandError {
    fn new(verb: &str, kind: CommandErrorKind) -> Self {
        Self {
            verb: Some(verb.to_owned()),
            kind,
        }
    }

    /// The verb, upper-cased and cut to 16 characters, when the line had one.
    pub fn verb(&self) -> Option<&str> {
        self.verb.as_deref()
    }

    /// What was wrong.
    pub fn kind(&self) -> &CommandErrorKind {
        &self.kind
    }

    /// The reply code a server answers with (RFC 959 §4.2, §5.4; RFC 2428 §2).
    pub fn reply_code(&self) -> ReplyCode {
        match self.kind {
            CommandErrorKind::Syntax | CommandErrorKind::UnknownVerb => ReplyCode::SYNTAX_ERROR,
            CommandErrorKind::UnsupportedParameter => ReplyCode::PARAMETER_NOT_IMPLEMENTED,
            CommandErrorKind::UnsupportedNetworkProtocol => {
                ReplyCode::NETWORK_PROTOCOL_NOT_SUPPORTED
            }
            _ => ReplyCode::SYNTAX_ERROR_IN_ARGUMENTS,
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = self.verb.as_deref().unwrap_or("command");
        match &self.kind {
            CommandErrorKind::Syntax => write!(f, "syntax error: no command verb"),
            CommandErrorKind::UnknownVerb => write!(f, "unknown command {verb}"),
            CommandErrorKind::MissingArgument => write!(f, "{verb} needs an argument"),
            CommandErrorKind::UnexpectedArgument => write!(f, "{verb} takes no argument"),
            CommandErrorKind::InvalidArgument(e) => write!(f, "{verb}: {e}"),
            CommandErrorKind::NotUtf8 => write!(f, "{verb}: argument is not UTF-8"),
            CommandErrorKind::UnsupportedParameter => {
                write!(f, "{verb}: parameter not implemented")
            }
            CommandErrorKind::UnsupportedNetworkProtocol => {
                write!(f, "{verb}: network protocol not supported")
            }
        }
    }
}

impl std::error::Error for CommandError {}

/// The longest verb kept in an error.
const MAX_VERB_IN_ERROR: usize = 16;

/// A parsed argument, still raw, with the helpers that turn it into typed values.
struct Arg<'a> {
    verb: &'a str,
    raw: Option<&'a str>,
}

impl<'a> Arg<'a> {
    fn err(&self, kind: CommandErrorKind) -> CommandError {
        CommandError::new(self.verb, kind)
    }

    fn invalid(&self, e: ParseError) -> CommandError {
        self.err(CommandErrorKind::InvalidArgument(e))
    }

    /// The argument verbatim, if present and non-empty.
    fn verbatim(&self) -> Option<&'a str> {
        self.raw.filter(|s| !s.is_empty())
    }

    /// The argument trimmed, if present and not blank.
    fn trimmed(&self) -> Option<&'a str> {
        self.raw.map(str::trim).filter(|s| !s.is_empty())
    }

    fn none(&self) -> Result<(), CommandError> {
        match self.trimmed() {
            None => Ok(()),
            Some(_) => Err(self.err(CommandErrorKind::UnexpectedArgument)),
        }
    }

    fn required(&self) -> Result<&'a str, CommandError> {
        self.verbatim()
            .ok_or_else(|| self.err(CommandErrorKind::MissingArgument))
    }

    fn required_trimmed(&self) -> Result<&'a str, CommandError> {
        self.trimmed()
            .ok_or_else(|| self.err(CommandErrorKind::MissingArgument))
    }

    fn path(&self) -> Result<Pathname, CommandError> {
        Pathname::new(self.required()?).map_err(|e| self.invalid(e))
    }

    fn optional_path(&self) -> Result<Option<Pathname>, CommandError> {
        match self.verbatim() {
            None => Ok(None),
            Some(_) => self.path().map(Some),
        }
    }

    fn text(&self) -> Result<Text, CommandError> {
        Text::new(self.required()?).map_err(|e| self.invalid(e))
    }

    fn optional_text(&self) -> Result<Option<Text>, CommandError> {
        match self.verbatim() {
            None => Ok(None),
            Some(_) => self.text().map(Some),
        }
    }

    fn number<T: std::str::FromStr>(&self, s: &str, what: &'static str) -> Result<T, CommandError> {
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.invalid(ParseError::new(what, "not a decimal number")));
        }
        s.parse()
            .map_err(|_| self.invalid(ParseError::new(what, "out of range")))
    }

    /// A one-letter keyword argument, upper-cased.
    fn letter(&self) -> Result<u8, CommandError> {
        match self.required_trimmed()?.as_bytes() {
            [b] => Ok(b.to_ascii_uppercase()),
            _ => Err(self.err(CommandErrorKind::UnsupportedParameter)),
        }
    }
}

fn text_format(arg: &Arg<'_>, rest: Option<&str>) -> Result<TextFormat, CommandError> {
    match rest.map(|s| s.trim().to_ascii_uppercase()).as_deref() {
        None | Some("N") => Ok(TextFormat::NonPrint),
        Some("T") => Ok(TextFormat::Telnet),
        Some("C") => Ok(TextFormat::CarriageControl),
        Some(_) => Err(arg.err(CommandErrorKind::UnsupportedParameter)),
    }
}

fn representation_type(arg: &Arg<'_>) -> Result<RepresentationType, CommandError> {
    let value = arg.required_trimmed()?;
    let (code, rest) = match value.split_once(' ') {
        Some((c, r)) => (c, Some(r)),
        None => (value, None),
    };
    match code.to_ascii_uppercase().as_str() {
        "A" => Ok(RepresentationType::Ascii(text_format(arg, rest)?)),
        "E" => Ok(RepresentationType::Ebcdic(text_format(arg, rest)?)),
        "I" if rest.is_none() => Ok(RepresentationType::Image),
        "L" => {
            let size = rest.ok_or_else(|| arg.err(CommandErrorKind::MissingArgument))?;
            Ok(RepresentationType::Local(
                arg.number(size.trim(), "byte size")?,
            ))
        }
        "I" => Err(arg.err(CommandErrorKind::UnexpectedArgument)),
        _ => Err(arg.err(CommandErrorKind::UnsupportedParameter)),
    }
}

impl Command {
    /// Parses one command line, without its line ending (the [`LineFramer`] removes it).
    ///
    /// [`LineFramer`]: crate::LineFramer
    pub fn parse(line: &[u8]) -> Result<Self, CommandError> {
        type VerbAndArgument<'a> = (&'a [u8], Option<&'a [u8]>);
        let parsed: nom::IResult<&[u8], VerbAndArgument<'_>> = (
            take_while1(|b: u8| b.is_ascii_alphabetic()),
            opt(preceded(tag(&b" "[..]), rest)),
        )
            .parse(line);
        let (tail, (verb_bytes, raw_arg)) = parsed.map_err(|_| CommandError {
            verb: None,
            kind: CommandErrorKind::Syntax,
        })?;
        let mut verb = String::from_utf8_lossy(verb_bytes).to_ascii_uppercase();
        verb.truncate(MAX_VERB_IN_ERROR);
        if !tail.is_empty() {
            // Something other than a space follows the verb ("USER\tx", "NO0P").
            return Err(CommandError::new(&verb, CommandErrorKind::Syntax));
        }
        let raw = match raw_arg.map(std::str::from_utf8) {
            None => None,
            Some(Ok(s)) => Some(s),
            Some(Err(_)) => return Err(CommandError::new(&verb, CommandErrorKind::NotUtf8)),
        };
        let arg = Arg { verb: &verb, raw };
        Self::from_parts(&arg)
    }

    fn from_parts(arg: &Arg<'_>) -> Result<Self, CommandError> {
        use Command as C;
        let cmd = match arg.verb {
            "USER" => C::User(Username::new(arg.required()?).map_err(|e| arg.invalid(e))?),
            "PASS" => C::Pass(Password::new(arg.raw.unwrap_or("")).map_err(|e| arg.invalid(e))?),
            "ACCT" => C::Acct(arg.text()?),
            "CWD" | "XCWD" => C::Cwd(arg.path()?),
            "CDUP" | "XCUP" => arg.none().map(|()| C::Cdup)?,
            "SMNT" => C::Smnt(arg.path()?),
            "REIN" => arg.none().map(|()| C::Rein)?,
            "QUIT" => arg.none().map(|()| C::Quit)?,
            "PORT" => C::Port(
                address::parse_port_argument(arg.required_trimmed()?)
                    .map_err(|e| arg.invalid(e))?,
            ),
            "PASV" => arg.none().map(|()| C::Pasv)?,
            "TYPE" => C::Type(representation_type(arg)?),
            "STRU" => C::Stru(match arg.letter()? {
                b'F' => FileStructure::File,
                b'R' => FileStructure::Record,
                b'P' => FileStructure::Page,
                _ => return Err(arg.err(CommandErrorKind::UnsupportedParameter)),
            }),
            "MODE" => C::Mode(match arg.letter()? {
                b'S' => TransferMode::Stream,
                b'B' => TransferMode::Block,
                b'C' => TransferMode::Compressed,
                _ => return Err(arg.err(CommandErrorKind::UnsupportedParameter)),
            }),
            "RETR" => C::Retr(arg.path()?),
            "STOR" => C::Stor(arg.path()?),
            "STOU" => C::Stou(arg.optional_path()?),
            "APPE" => C::Appe(arg.path()?),
            "ALLO" => {
                let value = arg.required_trimmed()?;
                let mut parts = value.split_ascii_whitespace();
                let size = arg.number(parts.next().unwrap_or(""), "allocation size")?;
                let record_size = match (parts.next(), parts.next(), parts.next()) {
                    (None, _, _) => None,
                    (Some(r), Some(n), None) if r.eq_ignore_ascii_case("R") => {
                        Some(arg.number(n, "record size")?)
                    }
                    _ => return Err(arg.invalid(ParseError::new("ALLO argument", "not n [R m]"))),
                };
                C::Allo { size, record_size }
            }
            "REST" => C::Rest(arg.number(arg.required_trimmed()?, "restart offset")?),
            "RNFR" => C::Rnfr(arg.path()?),
            "RNTO" => C::Rnto(arg.path()?),
            "ABOR" => arg.none().map(|()| C::Abor)?,
            "DELE" => C::Dele(arg.path()?),
            "RMD" | "XRMD" => C::Rmd(arg.path()?),
            "MKD" | "XMKD" => C::Mkd(arg.path()?),
            "PWD" | "XPWD" => arg.none().map(|()| C::Pwd)?,
            "LIST" => C::List(arg.optional_path()?),
            "NLST" => C::Nlst(arg.optional_path()?),
            "SITE" => C::Site(arg.text()?),
            "SYST" => arg.none().map(|()| C::Syst)?,
            "STAT" => C::Stat(arg.optional_path()?),
            "HELP" => C::Help(arg.optional_text()?),
            "NOOP" => arg.none().map(|()| C::Noop)?,
            "AUTH" => C::Auth(Token::new(arg.required_trimmed()?).map_err(|e| arg.invalid(e))?),
            "ADAT" => C::Adat(arg.text()?),
            "PROT" => C::Prot(match arg.letter()? {
                b'C' => ProtectionLevel::Clear,
                b'S' => ProtectionLevel::Safe,
                b'E' => ProtectionLevel::Confidential,
                b'P' => ProtectionLevel::Private,
                _ => return Err(arg.err(CommandErrorKind::UnsupportedParameter)),
            }),
            "PBSZ" => C::Pbsz(arg.number(arg.required_trimmed()?, "buffer size")?),
            "CCC" => arg.none().map(|()| C::Ccc)?,
            "MIC" => C::Mic(arg.text()?),
            "CONF" => C::Conf(arg.text()?),
            "ENC" => C::Enc(arg.text()?),
            "FEAT" => arg.none().map(|()| C::Feat)?,
            "OPTS" => {
                let value = arg.required()?;
                let (name, options) = match value.split_once(' ') {
                    Some((n, o)) => (n, Some(o).filter(|o| !o.is_empty())),
                    None => (value, None),
                };
                C::Opts {
                    name: Token::new(name).map_err(|e| arg.invalid(e))?,
                    value: options
                        .map(Text::new)
                        .transpose()
                        .map_err(|e| arg.invalid(e))?,
                }
            }
            "EPRT" => C::Eprt(
                address::parse_eprt_argument(arg.required_trimmed()?).map_err(|e| match e {
                    EprtError::UnsupportedProtocol(_) => {
                        arg.err(CommandErrorKind::UnsupportedNetworkProtocol)
                    }
                    EprtError::Syntax(e) => arg.invalid(e),
                })?,
            ),
            "EPSV" => C::Epsv(match arg.trimmed() {
                None => EpsvMode::Any,
                Some("1") => EpsvMode::Ipv4,
                Some("2") => EpsvMode::Ipv6,
                Some(s) if s.eq_ignore_ascii_case("ALL") => EpsvMode::All,
                Some(s) if s.bytes().all(|b| b.is_ascii_digit()) => {
                    return Err(arg.err(CommandErrorKind::UnsupportedNetworkProtocol));
                }
                Some(_) => {
                    return Err(arg.invalid(ParseError::new("EPSV argument", "not 1, 2 or ALL")));
                }
            }),
            "SIZE" => C::Size(arg.path()?),
            "MDTM" => C::Mdtm(arg.path()?),
            "MLST" => C::Mlst(arg.optional_path()?),
            "MLSD" => C::Mlsd(arg.optional_path()?),
            "MFMT" => {
                let value = arg.required()?;
                let (time, path) = value
                    .split_once(' ')
                    .ok_or_else(|| arg.err(CommandErrorKind::MissingArgument))?;
                C::Mfmt {
                    modified: Timestamp::parse(time).map_err(|e| arg.invalid(e))?,
                    path: Pathname::new(path).map_err(|e| arg.invalid(e))?,
                }
            }
            "LANG" => C::Lang(arg.optional_text()?),
            "HOST" => C::Host(arg.text()?),
            "HASH" => C::Hash(arg.path()?),
            "RANG" => {
                let value = arg.required_trimmed()?;
                let mut parts = value.split_ascii_whitespace();
                let (Some(start), Some(end), None) = (parts.next(), parts.next(), parts.next())
                else {
                    return Err(arg.invalid(ParseError::new("RANG argument", "not start end")));
                };
                C::Rang {
                    start: arg.number(start, "range start")?,
                    end: arg.number(end, "range end")?,
                }
            }
            _ => return Err(arg.err(CommandErrorKind::UnknownVerb)),
        };
        Ok(cmd)
    }

    /// The canonical verb, e.g. `"RETR"` (aliases give their RFC 959 name).
    pub fn verb(&self) -> &'static str {
        use Command as C;
        match self {
            C::User(_) => "USER",
            C::Pass(_) => "PASS",
            C::Acct(_) => "ACCT",
            C::Cwd(_) => "CWD",
            C::Cdup => "CDUP",
            C::Smnt(_) => "SMNT",
            C::Rein => "REIN",
            C::Quit => "QUIT",
            C::Port(_) => "PORT",
            C::Pasv => "PASV",
            C::Type(_) => "TYPE",
            C::Stru(_) => "STRU",
            C::Mode(_) => "MODE",
            C::Retr(_) => "RETR",
            C::Stor(_) => "STOR",
            C::Stou(_) => "STOU",
            C::Appe(_) => "APPE",
            C::Allo { .. } => "ALLO",
            C::Rest(_) => "REST",
            C::Rnfr(_) => "RNFR",
            C::Rnto(_) => "RNTO",
            C::Abor => "ABOR",
            C::Dele(_) => "DELE",
            C::Rmd(_) => "RMD",
            C::Mkd(_) => "MKD",
            C::Pwd => "PWD",
            C::List(_) => "LIST",
            C::Nlst(_) => "NLST",
            C::Site(_) => "SITE",
            C::Syst => "SYST",
            C::Stat(_) => "STAT",
            C::Help(_) => "HELP",
            C::Noop => "NOOP",
            C::Auth(_) => "AUTH",
            C::Adat(_) => "ADAT",
            C::Prot(_) => "PROT",
            C::Pbsz(_) => "PBSZ",
            C::Ccc => "CCC",
            C::Mic(_) => "MIC",
            C::Conf(_) => "CONF",
            C::Enc(_) => "ENC",
            C::Feat => "FEAT",
            C::Opts { .. } => "OPTS",
            C::Eprt(_) => "EPRT",
            C::Epsv(_) => "EPSV",
            C::Size(_) => "SIZE",
            C::Mdtm(_) => "MDTM",
            C::Mlst(_) => "MLST",
            C::Mlsd(_) => "MLSD",
            C::Mfmt { .. } => "MFMT",
            C::Lang(_) => "LANG",
            C::Host(_) => "HOST",
            C::Hash(_) => "HASH",
            C::Rang { .. } => "RANG",
        }
    }

    /// Writes the argument, if any, without the separating space.
    fn write_argument(&self, f: &mut dyn fmt::Write, redact: bool) -> fmt::Result {
        use Command as C;
        let format_letter = |t: &TextFormat| match t {
            TextFormat::NonPrint => "N",
            TextFormat::Telnet => "T",
            TextFormat::CarriageControl => "C",
        };
        if let Some(path) = self.pathname() {
            if let C::Mfmt { modified, .. } = self {
                write!(f, "{modified} ")?;
            }
            return f.write_str(path.as_str());
        }
        match self {
            C::User(u) => f.write_str(u.as_str()),
            C::Pass(p) if redact => f.write_str(if p.expose().is_empty() { "" } else { "****" }),
            C::Pass(p) => f.write_str(p.expose()),
            C::Acct(t)
            | C::Site(t)
            | C::Adat(t)
            | C::Mic(t)
            | C::Conf(t)
            | C::Enc(t)
            | C::Host(t) => f.write_str(t.as_str()),
            // Written above when there is a pathname.
            C::Cwd(_)
            | C::Smnt(_)
            | C::Retr(_)
            | C::Stor(_)
            | C::Appe(_)
            | C::Rnfr(_)
            | C::Rnto(_)
            | C::Dele(_)
            | C::Rmd(_)
            | C::Mkd(_)
            | C::Size(_)
            | C::Mdtm(_)
            | C::Hash(_)
            | C::Mfmt { .. }
            | C::Stou(_)
            | C::List(_)
            | C::Nlst(_)
            | C::Stat(_)
            | C::Mlst(_)
            | C::Mlsd(_) => Ok(()),
            C::Help(t) | C::Lang(t) => t.as_ref().map_or(Ok(()), |t| f.write_str(t.as_str())),
            C::Port(addr) => f.write_str(&address::format_port_argument(*addr)),
            C::Eprt(addr) => f.write_str(&address::format_eprt_argument(*addr)),
            C::Type(t) => match t {
                RepresentationType::Ascii(TextFormat::NonPrint) => f.write_str("A"),
                RepresentationType::Ascii(fmt) => write!(f, "A {}", format_letter(fmt)),
                RepresentationType::Ebcdic(TextFormat::NonPrint) => f.write_str("E"),
                RepresentationType::Ebcdic(fmt) => write!(f, "E {}", format_letter(fmt)),
                RepresentationType::Image => f.write_str("I"),
                RepresentationType::Local(n) => write!(f, "L {n}"),
            },
            C::Stru(s) => f.write_str(match s {
                FileStructure::File => "F",
                FileStructure::Record => "R",
                FileStructure::Page => "P",
            }),
            C::Mode(m) => f.write_str(match m {
                TransferMode::Stream => "S",
                TransferMode::Block => "B",
                TransferMode::Compressed => "C",
            }),
            C::Prot(p) => f.write_str(match p {
                ProtectionLevel::Clear => "C",
                ProtectionLevel::Safe => "S",
                ProtectionLevel::Confidential => "E",
                ProtectionLevel::Private => "P",
            }),
            C::Allo {
                size,
                record_size: None,
            } => write!(f, "{size}"),
            C::Allo {
                size,
                record_size: Some(r),
            } => write!(f, "{size} R {r}"),
            C::Rest(n) => write!(f, "{n}"),
            C::Rang { start, end } => write!(f, "{start} {end}"),
            C::Pbsz(n) => write!(f, "{n}"),
            C::Auth(t) => f.write_str(t.as_str()),
            C::Opts { name, value: None } => f.write_str(name.as_str()),
            C::Opts {
                name,
                value: Some(v),
            } => write!(f, "{} {}", name.as_str(), v.as_str()),
            C::Epsv(EpsvMode::Any) => Ok(()),
            C::Epsv(EpsvMode::Ipv4) => f.write_str("1"),
            C::Epsv(EpsvMode::Ipv6) => f.write_str("2"),
            C::Epsv(EpsvMode::All) => f.write_str("ALL"),
            C::Cdup
            | C::Rein
            | C::Quit
            | C::Pasv
            | C::Abor
            | C::Pwd
            | C::Syst
            | C::Noop
            | C::Ccc
            | C::Feat => Ok(()),
        }
    }

    fn write_line(&self, f: &mut dyn fmt::Write, redact: bool) -> fmt::Result {
        let mut arg = String::new();
        self.write_argument(&mut arg, redact)?;
        f.write_str(self.verb())?;
        // PASS always carries its space: an empty password is still an argument.
        if !arg.is_empty() || matches!(self, Command::Pass(_)) {
            f.write_char(' ')?;
            f.write_str(&arg)?;
        }
        Ok(())
    }

    /// The pathname argument, for the commands that take one.
    pub fn pathname(&self) -> Option<&Pathname> {
        use Command as C;
        match self {
            C::Cwd(p)
            | C::Smnt(p)
            | C::Retr(p)
            | C::Stor(p)
            | C::Appe(p)
            | C::Rnfr(p)
            | C::Rnto(p)
            | C::Dele(p)
            | C::Rmd(p)
            | C::Mkd(p)
            | C::Size(p)
            | C::Mdtm(p)
            | C::Hash(p)
            | C::Mfmt { path: p, .. } => Some(p),
            C::Stou(p) | C::List(p) | C::Nlst(p) | C::Stat(p) | C::Mlst(p) | C::Mlsd(p) => {
                p.as_ref()
            }
            _ => None,
        }
    }

    /// Appends the command line, CRLF included, to `out`. A pathname that is not UTF-8
    /// ([`Pathname::from_bytes`]) goes out as its bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut line = String::new();
        match (self.pathname(), self) {
            (Some(path), _) if !path.is_utf8() => {
                line.push_str(self.verb());
                line.push(' ');
                if let Command::Mfmt { modified, .. } = self {
                    line.push_str(&format!("{modified} "));
                }
                out.extend_from_slice(line.as_bytes());
                out.extend_from_slice(path.as_bytes());
            }
            _ => {
                // Writing to a String cannot fail.
                let _ = self.write_line(&mut line, false);
                out.extend_from_slice(line.as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
    }

    /// The command line, CRLF included.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// The command line without CRLF, with a PASS argument shown as `****`: safe for logs.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_line(f, true)
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Command({self})")
    }
}
