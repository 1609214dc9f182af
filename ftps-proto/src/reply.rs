//! Replies, server to client: reply codes, the single- and multi-line forms, their safe
//! encoding, and an incremental, bounded decoder.
//!
//! RFC 959 §4.2:
//!
//! ```text
//! single-line = code SP text CRLF
//! multi-line  = code "-" text CRLF *(line CRLF) code SP text CRLF
//! ```
//!
//! Inner lines of a multi-line reply are free text, except that they must not begin with
//! the code followed by a space; RFC 959 asks servers to pad an inner line that begins with
//! a 3-digit number, and [`Reply`] does so for every such line, when it is built and when
//! it is parsed, so that encoding and parsing are inverse. For tolerance of real servers, a
//! single line holding only a code (`226`) ends a reply too, and any byte that is not UTF-8
//! is decoded as U+FFFD.

use crate::framing::{FrameError, LineFramer};
use std::fmt;

/// A three-digit reply code whose first digit is 1 to 6 (RFC 959 §4.2 defines 1 to 5;
/// RFC 2228 §4 adds 6 for protected replies). The second and third digits are free.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplyCode(u16);

/// The meaning of a reply code's first digit (RFC 959 §4.2.1, RFC 2228 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyClass {
    /// 1yz: positive preliminary; another reply follows.
    PositivePreliminary,
    /// 2yz: positive completion.
    PositiveCompletion,
    /// 3yz: positive intermediate; the server waits for another command.
    PositiveIntermediate,
    /// 4yz: transient negative completion; the command may succeed later.
    TransientNegative,
    /// 5yz: permanent negative completion.
    PermanentNegative,
    /// 6yz: protected reply (RFC 2228).
    Protected,
}

macro_rules! reply_codes {
    ($($(#[$doc:meta])* $name:ident = $value:literal;)*) => {
        impl ReplyCode {
            $($(#[$doc])* pub const $name: ReplyCode = ReplyCode($value);)*
        }
    };
}

reply_codes! {
    /// 110 Restart marker reply.
    RESTART_MARKER = 110;
    /// 120 Service ready in nnn minutes.
    SERVICE_READY_SOON = 120;
    /// 125 Data connection already open; transfer starting.
    DATA_CONNECTION_ALREADY_OPEN = 125;
    /// 150 File status okay; about to open data connection.
    FILE_STATUS_OK = 150;
    /// 200 Command okay.
    COMMAND_OK = 200;
    /// 202 Command not implemented, superfluous at this site.
    SUPERFLUOUS = 202;
    /// 211 System status, or system help reply (also FEAT, RFC 2389).
    SYSTEM_STATUS = 211;
    /// 212 Directory status.
    DIRECTORY_STATUS = 212;
    /// 213 File status (also SIZE and MDTM, RFC 3659).
    FILE_STATUS = 213;
    /// 214 Help message.
    HELP_MESSAGE = 214;
    /// 215 NAME system type.
    SYSTEM_TYPE = 215;
    /// 220 Service ready for new user.
    SERVICE_READY = 220;
    /// 221 Service closing control connection.
    CLOSING_CONTROL = 221;
    /// 225 Data connection open; no transfer in progress.
    DATA_CONNECTION_OPEN = 225;
    /// 226 Closing data connection; requested file action successful.
    CLOSING_DATA_CONNECTION = 226;
    /// 227 Entering Passive Mode.
    ENTERING_PASSIVE_MODE = 227;
    /// 229 Entering Extended Passive Mode (RFC 2428).
    ENTERING_EXTENDED_PASSIVE_MODE = 229;
    /// 230 User logged in, proceed.
    LOGGED_IN = 230;
    /// 234 Security data exchange complete: AUTH accepted (RFC 2228, RFC 4217 §4).
    AUTH_OK = 234;
    /// 250 Requested file action okay, completed.
    FILE_ACTION_OK = 250;
    /// 257 "PATHNAME" created.
    PATHNAME_CREATED = 257;
    /// 331 User name okay, need password.
    NEED_PASSWORD = 331;
    /// 332 Need account for login.
    NEED_ACCOUNT = 332;
    /// 350 Requested file action pending further information.
    PENDING_FURTHER_INFORMATION = 350;
    /// 421 Service not available, closing control connection.
    SERVICE_NOT_AVAILABLE = 421;
    /// 425 Can't open data connection.
    CANT_OPEN_DATA_CONNECTION = 425;
    /// 426 Connection closed; transfer aborted.
    TRANSFER_ABORTED = 426;
    /// 431 Need some unavailable resource to process security (RFC 2228).
    SECURITY_RESOURCE_UNAVAILABLE = 431;
    /// 450 Requested file action not taken; file unavailable (busy).
    FILE_BUSY = 450;
    /// 451 Requested action aborted: local error in processing.
    LOCAL_ERROR = 451;
    /// 452 Requested action not taken: insufficient storage space.
    INSUFFICIENT_STORAGE = 452;
    /// 500 Syntax error, command unrecognized (also: command line too long).
    SYNTAX_ERROR = 500;
    /// 501 Syntax error in parameters or arguments.
    SYNTAX_ERROR_IN_ARGUMENTS = 501;
    /// 502 Command not implemented.
    NOT_IMPLEMENTED = 502;
    /// 503 Bad sequence of commands.
    BAD_SEQUENCE = 503;
    /// 504 Command not implemented for that parameter.
    PARAMETER_NOT_IMPLEMENTED = 504;
    /// 521 Data connection cannot be opened with this PROT setting (RFC 4217 §9).
    PROT_SETTING_REFUSED = 521;
    /// 522 Network protocol not supported (RFC 2428); also used by servers to refuse a
    /// data connection whose TLS session does not resume the control session.
    NETWORK_PROTOCOL_NOT_SUPPORTED = 522;
    /// 530 Not logged in.
    NOT_LOGGED_IN = 530;
    /// 532 Need account for storing files.
    NEED_ACCOUNT_FOR_STORING = 532;
    /// 533 Command protection level denied for policy reasons (RFC 2228).
    PROTECTION_LEVEL_DENIED = 533;
    /// 534 Request denied for policy reasons (RFC 2228, RFC 4217).
    DENIED_FOR_POLICY = 534;
    /// 535 Failed security check (RFC 2228).
    FAILED_SECURITY_CHECK = 535;
    /// 536 Requested PROT level not supported by mechanism (RFC 2228).
    PROT_LEVEL_NOT_SUPPORTED = 536;
    /// 550 Requested action not taken; file unavailable.
    FILE_UNAVAILABLE = 550;
    /// 551 Requested action aborted: page type unknown.
    PAGE_TYPE_UNKNOWN = 551;
    /// 552 Requested file action aborted: exceeded storage allocation.
    EXCEEDED_STORAGE_ALLOCATION = 552;
    /// 553 Requested action not taken: file name not allowed.
    FILE_NAME_NOT_ALLOWED = 553;
}

impl ReplyCode {
    /// The code if it is three digits with a first digit of 1 to 6.
    pub const fn new(code: u16) -> Option<Self> {
        if code >= 100 && code <= 699 {
            Some(Self(code))
        } else {
            None
        }
    }

    /// The numeric value.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// What the first digit says.
    pub const fn class(self) -> ReplyClass {
        match self.0 / 100 {
            1 => ReplyClass::PositivePreliminary,
            2 => ReplyClass::PositiveCompletion,
            3 => ReplyClass::PositiveIntermediate,
            4 => ReplyClass::TransientNegative,
            5 => ReplyClass::PermanentNegative,
            _ => ReplyClass::Protected,
        }
    }

    /// True for 1yz, 2yz and 3yz.
    pub const fn is_positive(self) -> bool {
        self.0 < 400
    }

    /// True for 1yz: a further reply follows.
    pub const fn is_preliminary(self) -> bool {
        self.0 < 200
    }

    /// True for 4yz and 5yz.
    pub const fn is_negative(self) -> bool {
        self.0 >= 400 && self.0 < 600
    }

    /// The code as three ASCII digits.
    pub fn digits(self) -> [u8; 3] {
        [
            b'0' + (self.0 / 100) as u8,
            b'0' + (self.0 / 10 % 10) as u8,
            b'0' + (self.0 % 10) as u8,
        ]
    }
}

impl fmt::Debug for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReplyCode({})", self.0)
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for ReplyCode {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Self(u.int_in_range(100..=699)?))
    }
}

/// A reply: a code and one or more lines of text. The text is always safe to send: CR, LF
/// and NUL are replaced by U+FFFD, and inner lines of a multi-line reply that begin with a
/// digit are padded with a space (RFC 959 §4.2), so no text (a file name, say) can end the
/// reply early or forge another one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    code: ReplyCode,
    lines: Vec<String>,
}

fn sanitize(text: &str) -> String {
    text.replace(['\r', '\n', '\0'], "\u{FFFD}")
}

/// Pads an inner line that begins with a digit, as RFC 959 §4.2 asks.
fn pad_inner(line: String) -> String {
    if line.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        format!(" {line}")
    } else {
        line
    }
}

impl Reply {
    /// A single-line reply.
    pub fn new(code: ReplyCode, text: &str) -> Self {
        Self {
            code,
            lines: vec![sanitize(text)],
        }
    }

    /// A reply of the given lines; one line gives the single-line form, none gives one
    /// empty line.
    pub fn multiline<I, S>(code: ReplyCode, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut lines: Vec<String> = lines.into_iter().map(|l| sanitize(l.as_ref())).collect();
        if lines.is_empty() {
            lines.push(String::new());
        }
        Self::normalized(code, lines)
    }

    fn normalized(code: ReplyCode, mut lines: Vec<String>) -> Self {
        let last = lines.len().saturating_sub(1);
        for line in lines.iter_mut().take(last).skip(1) {
            *line = pad_inner(std::mem::take(line));
        }
        Self { code, lines }
    }

    /// The reply code.
    pub fn code(&self) -> ReplyCode {
        self.code
    }

    /// The lines of text, without codes or separators (inner lines as sent, padding
    /// included); never empty.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The text of a single-line reply, or of the first line of a multi-line one.
    pub fn first_line(&self) -> &str {
        self.lines.first().map_or("", String::as_str)
    }

    /// True if the reply has more than one line.
    pub fn is_multiline(&self) -> bool {
        self.lines.len() > 1
    }

    /// All lines joined by `\n`.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// Appends the reply, CRLF line endings included, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let digits = self.code.digits();
        let last = self.lines.len() - 1;
        for (i, line) in self.lines.iter().enumerate() {
            if i == 0 || i == last {
                out.extend_from_slice(&digits);
                out.push(if i == last { b' ' } else { b'-' });
            }
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The encoded reply.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Parses exactly one complete reply (with its final line ending) with the default
    /// limits. Input that holds less, or more, than one reply is an error.
    pub fn parse(input: &[u8]) -> Result<Self, ReplyError> {
        let mut decoder = ReplyDecoder::new(ReplyLimits::default());
        let (used, item) = decoder.decode(input);
        match item {
            Some(Ok(_)) if used != input.len() => Err(ReplyError::TrailingData),
            Some(result) => result,
            None => Err(ReplyError::Incomplete),
        }
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Reply {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let code = u.arbitrary()?;
        let count = u.int_in_range(1..=8)?;
        let mut lines = Vec::with_capacity(count);
        for _ in 0..count {
            let line: String = u.arbitrary()?;
            // Keep each line inside the default line limit.
            lines.push(line.chars().take(256).collect::<String>());
        }
        Ok(Self::multiline(code, lines))
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.lines.join(" / "))
    }
}

/// Caps on one reply, so a hostile or broken server cannot make the client buffer without
/// end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplyLimits {
    /// The longest line, in bytes, without its line ending. Default 8 KiB.
    pub max_line: usize,
    /// The most lines in one reply. Default 10,000.
    pub max_lines: usize,
    /// The most bytes of text in one reply. Default 1 MiB.
    pub max_bytes: usize,
}

impl ReplyLimits {
    /// Limits of `max_line` bytes a line, `max_lines` lines and `max_bytes` bytes a reply.
    pub const fn new(max_line: usize, max_lines: usize, max_bytes: usize) -> Self {
        Self {
            max_line,
            max_lines,
            max_bytes,
        }
    }
}

impl Default for ReplyLimits {
    fn default() -> Self {
        Self::new(8192, 10_000, 1 << 20)
    }
}

/// Why a reply could not be read. After any of these but [`Incomplete`](Self::Incomplete)
/// and [`TrailingData`](Self::TrailingData) the decoder has dropped the reply it was
/// reading; a client should treat the control connection as broken.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplyError {
    /// A line passed [`ReplyLimits::max_line`].
    LineTooLong,
    /// A reply passed [`ReplyLimits::max_lines`].
    TooManyLines,
    /// A reply passed [`ReplyLimits::max_bytes`].
    TooLarge,
    /// A reply's first line does not start with a code of 100 to 699 followed by a space,
    /// a hyphen or the end of the line. Holds the start of the line.
    InvalidCode(String),
    /// The input ended before the reply did ([`Reply::parse`] only).
    Incomplete,
    /// More bytes followed the reply ([`Reply::parse`] only).
    TrailingData,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LineTooLong => f.write_str("reply line too long"),
            Self::TooManyLines => f.write_str("reply has too many lines"),
            Self::TooLarge => f.write_str("reply too large"),
            Self::InvalidCode(line) => write!(f, "reply line without a valid code: {line:?}"),
            Self::Incomplete => f.write_str("reply incomplete"),
            Self::TrailingData => f.write_str("data after the reply"),
        }
    }
}

impl std::error::Error for ReplyError {}

#[derive(Debug, Clone)]
struct Pending {
    code: ReplyCode,
    lines: Vec<String>,
    bytes: usize,
}

/// Reads replies from control-channel bytes in any chunking, holding at most one reply
/// within [`ReplyLimits`].
#[derive(Debug, Clone)]
pub struct ReplyDecoder {
    framer: LineFramer,
    limits: ReplyLimits,
    pending: Option<Pending>,
}

impl Default for ReplyDecoder {
    fn default() -> Self {
        Self::new(ReplyLimits::default())
    }
}

/// How a reply line starts.
enum Head {
    /// `ddd ` or a bare `ddd`: a single line, or the last line of a multi-line reply.
    Last(ReplyCode),
    /// `ddd-`: the first line of a multi-line reply.
    First(ReplyCode),
}

fn head(line: &[u8]) -> Option<(Head, &[u8])> {
    use nom::{Parser, bytes::complete::take_while_m_n, combinator::opt, number::complete::u8};
    let parsed: nom::IResult<&[u8], (&[u8], Option<u8>)> =
        (take_while_m_n(3, 3, |b: u8| b.is_ascii_digit()), opt(u8)).parse(line);
    let (rest, (digits, sep)) = parsed.ok()?;
    let value = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    let code = ReplyCode::new(value)?;
    match sep {
        None => Some((Head::Last(code), rest)),
        Some(b' ') => Some((Head::Last(code), rest)),
        Some(b'-') => Some((Head::First(code), rest)),
        Some(_) => None,
    }
}

impl ReplyDecoder {
    /// A decoder with the given limits.
    pub fn new(limits: ReplyLimits) -> Self {
        Self {
            framer: LineFramer::new(limits.max_line),
            limits,
            pending: None,
        }
    }

    /// How many bytes of partial replies are held: never more than
    /// `max_line + 1 + max_bytes` of the limits.
    pub fn held_bytes(&self) -> usize {
        self.framer.buffered() + self.pending.as_ref().map_or(0, |p| p.bytes)
    }

    /// True if no partial reply is held.
    pub fn is_idle(&self) -> bool {
        self.pending.is_none() && self.framer.is_at_boundary()
    }

    /// Consumes bytes until one reply is complete or fails, or the input is used up; returns
    /// the bytes consumed and the reply, if one ended. Call again with the rest of the
    /// input until it returns `None`.
    pub fn decode(&mut self, input: &[u8]) -> (usize, Option<Result<Reply, ReplyError>>) {
        let mut used = 0;
        while used < input.len() {
            let (n, line) = self.framer.decode(&input[used..]);
            used += n;
            let result = match line {
                None => continue,
                Some(Err(FrameError::LineTooLong { .. })) => {
                    self.pending = None;
                    Some(Err(ReplyError::LineTooLong))
                }
                Some(Ok(line)) => self.on_line(&line),
            };
            if result.is_some() {
                return (used, result);
            }
        }
        (used, None)
    }

    fn on_line(&mut self, line: &[u8]) -> Option<Result<Reply, ReplyError>> {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        match self.pending.take() {
            None => match head(line) {
                Some((Head::Last(code), rest)) => Some(Ok(Reply {
                    code,
                    lines: vec![text(rest)],
                })),
                Some((Head::First(code), rest)) => {
                    self.pending = Some(Pending {
                        code,
                        lines: vec![text(rest)],
                        bytes: rest.len(),
                    });
                    None
                }
                None => {
                    let start: String = String::from_utf8_lossy(line).chars().take(32).collect();
                    Some(Err(ReplyError::InvalidCode(start)))
                }
            },
            Some(mut pending) => {
                let digits = pending.code.digits();
                let is_last =
                    line.len() >= 3 && line[..3] == digits && (line.len() == 3 || line[3] == b' ');
                if pending.lines.len() >= self.limits.max_lines {
                    return Some(Err(ReplyError::TooManyLines));
                }
                pending.bytes += line.len();
                if pending.bytes > self.limits.max_bytes {
                    return Some(Err(ReplyError::TooLarge));
                }
                if is_last {
                    pending.lines.push(text(line.get(4..).unwrap_or_default()));
                    Some(Ok(Reply {
                        code: pending.code,
                        lines: pending.lines,
                    }))
                } else {
                    pending.lines.push(pad_inner(text(line)));
                    self.pending = Some(pending);
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(n: u16) -> ReplyCode {
        ReplyCode::new(n).unwrap()
    }

    #[test]
    fn single_and_multi_line() {
        let r = Reply::parse(b"220 (vsFTPd 3.0.3)\r\n").unwrap();
        assert_eq!(r.code(), code(220));
        assert_eq!(r.lines(), ["(vsFTPd 3.0.3)"]);
        let m = Reply::parse(b"211-Features:\r\n EPSV\r\n211 End\r\n").unwrap();
        assert_eq!(m.lines(), ["Features:", " EPSV", "End"]);
        assert_eq!(m.to_bytes(), b"211-Features:\r\n EPSV\r\n211 End\r\n");
    }

    #[test]
    fn inner_lines_with_digits_and_other_codes_do_not_end_the_reply() {
        let input =
            b"214-Help\r\n200 is not the end\r\n214-nor this\r\n2140 nor this\r\n214 End\r\n";
        let r = Reply::parse(input).unwrap();
        assert_eq!(r.lines().len(), 5);
        assert_eq!(r.lines()[1], " 200 is not the end");
        assert_eq!(Reply::parse(&r.to_bytes()).unwrap(), r);
    }

    #[test]
    fn bare_code_ends_a_reply() {
        assert_eq!(Reply::parse(b"226\r\n").unwrap().lines(), [""]);
        assert_eq!(
            Reply::parse(b"226-a\r\n226\r\n").unwrap().lines(),
            ["a", ""]
        );
    }

    #[test]
    fn invalid_codes_are_errors() {
        for input in [
            &b"999 no\r\n"[..],
            b"099 no\r\n",
            b"22 no\r\n",
            b"220Welcome\r\n",
            b"hello\r\n",
        ] {
            assert!(
                matches!(Reply::parse(input), Err(ReplyError::InvalidCode(_))),
                "{input:?}"
            );
        }
        assert_eq!(
            Reply::parse(b"220 ok\r\n221 x\r\n"),
            Err(ReplyError::TrailingData)
        );
        assert_eq!(Reply::parse(b"220-ok\r\n"), Err(ReplyError::Incomplete));
    }

    #[test]
    fn text_cannot_forge_reply_lines() {
        let r = Reply::new(code(257), "\"/evil\r\n230 Logged in\"");
        assert_eq!(r.to_bytes().iter().filter(|&&b| b == b'\n').count(), 1);
        let m = Reply::multiline(code(211), ["start", "211 End", "end"]);
        assert_eq!(Reply::parse(&m.to_bytes()).unwrap().lines().len(), 3);
    }

    #[test]
    fn limits_hold() {
        let limits = ReplyLimits {
            max_line: 64,
            max_lines: 4,
            max_bytes: 100,
        };
        let mut d = ReplyDecoder::new(limits);
        let (_, r) = d.decode(b"211-a\r\nb\r\nc\r\nd\r\ne\r\n211 End\r\n");
        assert_eq!(r, Some(Err(ReplyError::TooManyLines)));
        let mut d = ReplyDecoder::new(limits);
        let long = [
            b"211-a\r\n".to_vec(),
            vec![b'x'; 60],
            b"\r\n".to_vec(),
            vec![b'y'; 60],
            b"\r\n".to_vec(),
        ]
        .concat();
        assert_eq!(d.decode(&long).1, Some(Err(ReplyError::TooLarge)));
        let mut d = ReplyDecoder::new(limits);
        assert_eq!(d.decode(&[b'2'; 100]).1, Some(Err(ReplyError::LineTooLong)));
    }
}
