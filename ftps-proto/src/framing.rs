//! Control-channel framing: bytes in any chunking to bounded lines.
//!
//! The FTP control connection follows the Telnet protocol (RFC 959 §4.1, §5.3; RFC 854).
//! [`LineFramer`] turns its bytes into lines:
//!
//! - a line ends with CRLF; a bare LF is accepted too (many clients and servers send it),
//!   and the CR before the LF is removed; a CR anywhere else stays in the line, where the
//!   command parser refuses it, so a bare CR or LF can never merge or split two commands;
//! - Telnet commands are handled as RFC 854 defines them: `IAC IAC` is a data byte 0xFF,
//!   `IAC WILL|WONT|DO|DONT <option>` (three bytes) and every other `IAC <command>` (two
//!   bytes, e.g. the `IAC IP IAC DM` that precedes ABOR, RFC 959 §4.1.3) are removed;
//! - a line longer than the limit is an error the moment the limit is passed; the framer
//!   then drops bytes up to the next LF and starts afresh, so memory never exceeds the
//!   limit and the session can answer 500 and go on.
//!
//! The framer never holds more than one partial line: [`LineFramer::decode`] consumes input
//! up to the end of one line and tells the caller how much it took, so a caller can stop at
//! a line boundary (as after `AUTH TLS`, where later plaintext must not be executed).

/// The default line limit in bytes, not counting the line ending (vsftpd uses 4 KiB too).
pub const DEFAULT_MAX_LINE: usize = 4096;

const IAC: u8 = 255;
const WILL: u8 = 251;
const DONT: u8 = 254;

/// A framing failure. The framer has already recovered: the next call starts a new line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// A line grew past the limit; its bytes up to the next LF are dropped. A server
    /// answers 500 (RFC 959 §4.2: syntax error, command line too long).
    LineTooLong {
        /// The limit that was passed, in bytes.
        limit: usize,
    },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LineTooLong { limit } => write!(f, "line longer than {limit} bytes"),
        }
    }
}

impl std::error::Error for FrameError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Telnet {
    /// Plain data.
    Data,
    /// After IAC.
    Command,
    /// After IAC WILL/WONT/DO/DONT: one option byte follows.
    Option,
}

/// Splits a byte stream into bounded lines. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct LineFramer {
    line: Vec<u8>,
    max_line: usize,
    telnet_enabled: bool,
    telnet: Telnet,
    discarding: bool,
}

impl Default for LineFramer {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_LINE)
    }
}

impl LineFramer {
    /// A framer with Telnet handling on and the given line limit (bytes, without the line
    /// ending). A limit of 0 is raised to 1.
    pub fn new(max_line: usize) -> Self {
        Self {
            line: Vec::new(),
            max_line: max_line.max(1),
            telnet_enabled: true,
            telnet: Telnet::Data,
            discarding: false,
        }
    }

    /// Turns Telnet command handling on (the default) or off. With it off, byte 0xFF is
    /// ordinary data.
    pub fn with_telnet(mut self, enabled: bool) -> Self {
        self.telnet_enabled = enabled;
        self
    }

    /// The line limit in bytes.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// How many bytes of an unfinished line are held.
    pub fn buffered(&self) -> usize {
        self.line.len()
    }

    /// True if no partial line or Telnet sequence is pending.
    pub fn is_at_boundary(&self) -> bool {
        self.line.is_empty() && self.telnet == Telnet::Data && !self.discarding
    }

    /// Forgets any partial line (used when the channel changes, e.g. after a TLS upgrade).
    pub fn reset(&mut self) {
        self.line.clear();
        self.telnet = Telnet::Data;
        self.discarding = false;
    }

    /// Consumes bytes from `input` until one line is complete, a line passes the limit, or
    /// the input is used up. Returns how many bytes were consumed and, if a line ended, the
    /// line (without its line ending) or the error. Call it again with the rest of the
    /// input until it returns `None`.
    pub fn decode(&mut self, input: &[u8]) -> (usize, Option<Result<Vec<u8>, FrameError>>) {
        let mut pos = 0;
        while pos < input.len() {
            match self.telnet {
                Telnet::Command => {
                    let byte = input[pos];
                    pos += 1;
                    self.telnet = Telnet::Data;
                    if byte == IAC {
                        if let Some(err) = self.push(&[IAC]) {
                            return (pos, Some(Err(err)));
                        }
                    } else if (WILL..=DONT).contains(&byte) {
                        self.telnet = Telnet::Option;
                    }
                }
                Telnet::Option => {
                    pos += 1;
                    self.telnet = Telnet::Data;
                }
                Telnet::Data => {
                    let rest = &input[pos..];
                    let found = if self.telnet_enabled {
                        memchr::memchr2(b'\n', IAC, rest)
                    } else {
                        memchr::memchr(b'\n', rest)
                    };
                    let Some(offset) = found else {
                        pos = input.len();
                        if let Some(err) = self.push(rest) {
                            return (pos, Some(Err(err)));
                        }
                        break;
                    };
                    pos += offset + 1;
                    let overflow = self.push(&rest[..offset]);
                    if rest[offset] == IAC {
                        self.telnet = Telnet::Command;
                        if let Some(err) = overflow {
                            return (pos, Some(Err(err)));
                        }
                        continue;
                    }
                    // End of line.
                    if let Some(err) = overflow {
                        // The limit was passed by this very chunk: report it; the LF has
                        // ended the oversized line already.
                        self.discarding = false;
                        return (pos, Some(Err(err)));
                    }
                    if self.discarding {
                        self.discarding = false;
                        continue;
                    }
                    if self.line.last() == Some(&b'\r') {
                        self.line.pop();
                    }
                    if self.line.len() > self.max_line {
                        self.line.clear();
                        return (
                            pos,
                            Some(Err(FrameError::LineTooLong {
                                limit: self.max_line,
                            })),
                        );
                    }
                    return (pos, Some(Ok(std::mem::take(&mut self.line))));
                }
            }
        }
        (pos, None)
    }

    /// Appends line bytes; returns the error the moment the line passes the limit.
    fn push(&mut self, bytes: &[u8]) -> Option<FrameError> {
        if self.discarding || bytes.is_empty() {
            return None;
        }
        // One byte of slack for the CR that may precede the LF.
        if self.line.len() + bytes.len() > self.max_line + 1 {
            self.line.clear();
            self.line.shrink_to(self.max_line + 1);
            self.discarding = true;
            return Some(FrameError::LineTooLong {
                limit: self.max_line,
            });
        }
        self.line.extend_from_slice(bytes);
        None
    }

    /// Decodes all of `input`, collecting every result. Meant for tests and tools; a
    /// session should call [`decode`](Self::decode) and act on each line in turn.
    pub fn decode_all(&mut self, mut input: &[u8]) -> Vec<Result<Vec<u8>, FrameError>> {
        let mut out = Vec::new();
        loop {
            let (used, item) = self.decode(input);
            input = &input[used..];
            match item {
                Some(item) => out.push(item),
                None => return out,
            }
        }
    }
}

/// What starts the control connection's bytes right after CCC ended TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterTls {
    /// Too few bytes to tell.
    NeedMore,
    /// A TLS record (the peer's close_notify, sent after the CCC exchange) of this many
    /// bytes: drop it.
    Record(usize),
    /// Plain FTP text.
    Plain,
}

/// The largest TLS record: 2^14 bytes of plaintext plus expansion (RFC 8446 §5.2).
const MAX_TLS_RECORD: usize = (1 << 14) + 256;

/// After CCC (RFC 4217 §6) each side sends close_notify and goes on in clear text; the
/// peer's close_notify can arrive after that, as one TLS record: an alert (type 21), or
/// on TLS 1.3 application data (type 23) hiding it. FTP text never starts with those
/// bytes, so a record header there is the leftover to drop, not a command or reply.
pub fn after_tls(input: &[u8]) -> AfterTls {
    match input {
        [] | [0x15 | 0x17] | [0x15 | 0x17, 0x03, ..] if input.len() < 5 => AfterTls::NeedMore,
        [0x15 | 0x17, 0x03, _, hi, lo, ..] => {
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            if len > MAX_TLS_RECORD {
                AfterTls::Plain
            } else if input.len() < 5 + len {
                AfterTls::NeedMore
            } else {
                AfterTls::Record(5 + len)
            }
        }
        _ => AfterTls::Plain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<Result<Vec<u8>, FrameError>> {
        LineFramer::new(16).decode_all(input)
    }

    #[test]
    fn crlf_and_bare_lf_end_lines() {
        assert_eq!(
            lines(b"NOOP\r\nPWD\nQUIT\r\n"),
            vec![
                Ok(b"NOOP".to_vec()),
                Ok(b"PWD".to_vec()),
                Ok(b"QUIT".to_vec())
            ]
        );
    }

    #[test]
    fn bare_cr_stays_inside_the_line() {
        assert_eq!(
            lines(b"USER a\rPASS b\r\n"),
            vec![Ok(b"USER a\rPASS b".to_vec())]
        );
    }

    #[test]
    fn telnet_sequences_are_removed_and_iac_iac_is_data() {
        // IAC IP IAC DM ABOR, IAC DO 1, IAC IAC.
        let input = b"\xff\xf4\xff\xf2ABOR\r\n\xff\xfd\x01NO\xff\xffOP\r\n";
        assert_eq!(
            lines(input),
            vec![Ok(b"ABOR".to_vec()), Ok(b"NO\xffOP".to_vec())]
        );
    }

    #[test]
    fn oversized_line_is_reported_once_and_framing_resumes() {
        let mut input = vec![b'x'; 100];
        input.extend_from_slice(b"\r\nNOOP\r\n");
        assert_eq!(
            lines(&input),
            vec![
                Err(FrameError::LineTooLong { limit: 16 }),
                Ok(b"NOOP".to_vec())
            ]
        );
    }

    #[test]
    fn limit_is_exact() {
        let ok = [vec![b'a'; 16], b"\r\n".to_vec()].concat();
        assert_eq!(lines(&ok), vec![Ok(vec![b'a'; 16])]);
        let long = [vec![b'a'; 17], b"\r\n".to_vec()].concat();
        assert_eq!(
            lines(&long),
            vec![Err(FrameError::LineTooLong { limit: 16 })]
        );
        let long_lf = [vec![b'a'; 17], b"\n".to_vec()].concat();
        assert_eq!(
            lines(&long_lf),
            vec![Err(FrameError::LineTooLong { limit: 16 })]
        );
    }

    #[test]
    fn one_byte_at_a_time_gives_the_same_lines() {
        let input =
            b"US\xff\xffER x\r\n\xff\xfb\x03PASS y\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\nQUIT\r\n";
        let whole = lines(input);
        let mut framer = LineFramer::new(16);
        let mut split = Vec::new();
        for byte in input.iter() {
            split.extend(framer.decode_all(std::slice::from_ref(byte)));
        }
        assert_eq!(whole, split);
    }

    #[test]
    fn memory_stays_bounded_without_lf() {
        let mut framer = LineFramer::new(16);
        for _ in 0..1000 {
            framer.decode_all(&[b'z'; 1024]);
            assert!(framer.buffered() <= 17);
        }
    }

    #[test]
    fn leftover_tls_records_after_ccc() {
        use super::{AfterTls, after_tls};
        assert_eq!(after_tls(b""), AfterTls::NeedMore);
        assert_eq!(after_tls(b"NOOP\r\n"), AfterTls::Plain);
        assert_eq!(after_tls(b"200 ok\r\n"), AfterTls::Plain);
        assert_eq!(after_tls(&[0x15]), AfterTls::NeedMore);
        assert_eq!(after_tls(&[0x15, 0x03, 0x03, 0x00]), AfterTls::NeedMore);
        let record = [0x17, 0x03, 0x03, 0x00, 0x02, 0xaa, 0xbb, b'N'];
        assert_eq!(after_tls(&record[..6]), AfterTls::NeedMore);
        assert_eq!(after_tls(&record), AfterTls::Record(7));
        assert_eq!(after_tls(&[0x15, 0x01, 0, 0, 0]), AfterTls::Plain);
        assert_eq!(after_tls(&[0x15, 0x03, 0x03, 0xff, 0xff]), AfterTls::Plain);
    }
}
