//! The PROXY protocol (HAProxy's "PROXY protocol" specification, versions 1 and 2): the
//! header a load balancer sends first on a connection it relays, naming the client it
//! relays for. [`ProxyDecoder`] takes a header from exactly the bytes it asks for, never
//! one more, so what follows the header on the connection stays there for whoever reads
//! next (an implicit-TLS ClientHello, a data connection's first bytes).
//!
//! Parsing is the `ppp` crate's; the decoder adds the bounds (a v1 line of at most 107
//! bytes, spec §2.1; a v2 header of at most [`V2_MAX`] bytes) and what the server takes
//! from a header: the client's address, or none for a connection the balancer made for
//! itself (v1 `UNKNOWN`, v2 `LOCAL`: "the receiver must use the real connection
//! endpoints", spec §2.1 and §2.2). A v2 `PROXY` header without an IP address (`UNSPEC`,
//! a UNIX socket) or not for a stream is refused: the server would otherwise count the
//! balancer's own address as the client's (spec §2.2 lets a receiver reject it).

use std::net::{IpAddr, SocketAddr};

/// The most bytes of a version 1 header, its CRLF included (spec §2.1).
pub const V1_MAX: usize = 107;

/// The twelve bytes that start a version 2 header (spec §2.2).
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The most bytes of a version 2 header this decoder takes: the 16 fixed bytes, the
/// longest addresses (216, UNIX sockets) and 800 bytes of TLVs (HAProxy's SSL and unique-id
/// ones fit many times over). A longer one is refused before it is read.
pub const V2_MAX: usize = 16 + 216 + 800;

/// Bytes a header is read in first: fewer than either version's shortest header
/// (`PROXY UNKNOWN\r\n`, 15; a v2 header, 16), enough to tell the versions apart.
const FIRST: usize = 8;

/// What a header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proxied {
    /// The client the balancer relays for; `None` for a connection the balancer made
    /// for itself (a health check): its own address is the peer then.
    pub source: Option<SocketAddr>,
    /// The address the client connected to (the balancer's), when named.
    pub destination: Option<SocketAddr>,
}

/// Why a header was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyError {
    /// The bytes are not a PROXY header at all.
    NotAHeader,
    /// Longer than the bound ([`V1_MAX`], [`V2_MAX`]).
    TooLong,
    /// A header, but not a valid one (or one that names no client: see the module docs).
    Malformed(String),
}

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxyError::NotAHeader => f.write_str("no PROXY protocol header"),
            ProxyError::TooLong => f.write_str("PROXY protocol header too long"),
            ProxyError::Malformed(why) => write!(f, "malformed PROXY protocol header: {why}"),
        }
    }
}

impl std::error::Error for ProxyError {}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Read exactly this many more bytes and [`feed`](ProxyDecoder::feed) them.
    Read(usize),
    /// The header, whole.
    Done(Proxied),
}

/// Takes one header from the bytes it asks for (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct ProxyDecoder {
    buf: Vec<u8>,
}

impl ProxyDecoder {
    /// A decoder at the start of a connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many bytes to read first.
    pub fn first(&self) -> usize {
        FIRST - self.buf.len().min(FIRST)
    }

    /// Takes the bytes read (at most what the last [`Step::Read`] asked for; fewer is
    /// allowed) and says what comes next.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Step, ProxyError> {
        self.buf.extend_from_slice(bytes);
        let b = &self.buf;
        if b.len() < FIRST {
            // Not even the start yet: refuse what cannot become a header, else read on.
            let v1 = b"PROXY ".starts_with(&b[..b.len().min(6)]);
            let v2 = V2_SIGNATURE.starts_with(b);
            return match v1 || v2 {
                true => Ok(Step::Read(FIRST - b.len())),
                false => Err(ProxyError::NotAHeader),
            };
        }
        if b.starts_with(b"PROXY ") {
            return self.v1();
        }
        if b.starts_with(&V2_SIGNATURE[..FIRST]) {
            return self.v2();
        }
        Err(ProxyError::NotAHeader)
    }

    /// A text header: read a byte at a time up to its CRLF.
    fn v1(&self) -> Result<Step, ProxyError> {
        let b = &self.buf;
        if let Some(lf) = b.iter().position(|&c| c == b'\n') {
            if lf + 1 != b.len() || lf == 0 || b[lf - 1] != b'\r' {
                return Err(ProxyError::Malformed("a line without its CRLF".into()));
            }
            let header = ppp::v1::Header::try_from(&b[..])
                .map_err(|e| ProxyError::Malformed(e.to_string()))?;
            return Ok(Step::Done(match header.addresses {
                ppp::v1::Addresses::Tcp4(a) => Proxied {
                    source: Some(SocketAddr::new(a.source_address.into(), a.source_port)),
                    destination: Some(SocketAddr::new(
                        a.destination_address.into(),
                        a.destination_port,
                    )),
                },
                // A mapped address names the IPv4 client (see `v2`).
                ppp::v1::Addresses::Tcp6(a) => Proxied {
                    source: Some(SocketAddr::new(
                        IpAddr::V6(a.source_address).to_canonical(),
                        a.source_port,
                    )),
                    destination: Some(SocketAddr::new(
                        IpAddr::V6(a.destination_address).to_canonical(),
                        a.destination_port,
                    )),
                },
                ppp::v1::Addresses::Unknown => Proxied {
                    source: None,
                    destination: None,
                },
            }));
        }
        if b.len() >= V1_MAX {
            return Err(ProxyError::TooLong);
        }
        if b.iter()
            .any(|&c| !(c == b'\r' || c.is_ascii_graphic() || c == b' '))
        {
            return Err(ProxyError::Malformed("not a text line".into()));
        }
        Ok(Step::Read(1))
    }

    /// A binary header: its 16 fixed bytes, then the length they give.
    fn v2(&self) -> Result<Step, ProxyError> {
        let b = &self.buf;
        if b.len() < 16 {
            return Ok(Step::Read(16 - b.len()));
        }
        if b[..12] != V2_SIGNATURE {
            return Err(ProxyError::NotAHeader);
        }
        let total = 16 + usize::from(u16::from_be_bytes([b[14], b[15]]));
        if total > V2_MAX {
            return Err(ProxyError::TooLong);
        }
        if b.len() < total {
            return Ok(Step::Read(total - b.len()));
        }
        let header =
            ppp::v2::Header::try_from(&b[..]).map_err(|e| ProxyError::Malformed(e.to_string()))?;
        if header.command == ppp::v2::Command::Local {
            return Ok(Step::Done(Proxied {
                source: None,
                destination: None,
            }));
        }
        if header.protocol != ppp::v2::Protocol::Stream {
            return Err(ProxyError::Malformed("not a stream".into()));
        }
        let (source, destination) = match header.addresses {
            ppp::v2::Addresses::IPv4(a) => (
                SocketAddr::new(IpAddr::V4(a.source_address), a.source_port),
                SocketAddr::new(IpAddr::V4(a.destination_address), a.destination_port),
            ),
            // An IPv4-mapped address (`::ffff:a.b.c.d`, from a balancer's dual-stack
            // socket) names the IPv4 client: as its IPv4 address, so that the same client
            // named by a TCP4 header on another connection is the same peer (the data
            // connections' peer check compares addresses as they are; review16a,
            // finding 6).
            ppp::v2::Addresses::IPv6(a) => (
                SocketAddr::new(IpAddr::V6(a.source_address).to_canonical(), a.source_port),
                SocketAddr::new(
                    IpAddr::V6(a.destination_address).to_canonical(),
                    a.destination_port,
                ),
            ),
            _ => return Err(ProxyError::Malformed("no client address".into())),
        };
        Ok(Step::Done(Proxied {
            source: Some(source),
            destination: Some(destination),
        }))
    }
}

/// Whether `input`, the first bytes a client sent, starts like a PROXY header (either
/// version): on a connection not trusted to send one, the server refuses it.
pub fn looks_like_header(input: &[u8]) -> bool {
    input.starts_with(b"PROXY ")
        || (input.len() >= FIRST && input.starts_with(&V2_SIGNATURE[..FIRST]))
}

/// Whether `input`, the first bytes a client sent (however they were split into
/// segments), starts a PROXY header: `Some(true)` it does ([`looks_like_header`]),
/// `Some(false)` it does not, `None` too few bytes to tell (`input` is a strict prefix of
/// a header's start: "PRO", say). A check that decided on the first segment alone would
/// let "PRO" then "XY TCP4 ..." through.
pub fn starts_header(input: &[u8]) -> Option<bool> {
    if looks_like_header(input) {
        return Some(true);
    }
    let undecided =
        |start: &[u8]| !input.is_empty() && input.len() < start.len() && start.starts_with(input);
    if undecided(b"PROXY ") || undecided(&V2_SIGNATURE[..FIRST]) {
        None
    } else {
        Some(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapped_address_names_the_ipv4_client() {
        let v1 = b"PROXY TCP6 ::ffff:192.0.2.7 ::ffff:198.51.100.1 50123 21\r\n";
        let p = decode(v1).unwrap().0;
        assert_eq!(p.source, Some("192.0.2.7:50123".parse().unwrap()));
        assert_eq!(p.destination, Some("198.51.100.1:21".parse().unwrap()));
        let mut v2 = V2_SIGNATURE.to_vec();
        v2.extend_from_slice(&[0x21, 0x21, 0, 36]);
        let mapped = |ip: [u8; 4]| {
            [
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ip[0], ip[1], ip[2], ip[3],
            ]
        };
        v2.extend_from_slice(&mapped([192, 0, 2, 7]));
        v2.extend_from_slice(&mapped([198, 51, 100, 1]));
        v2.extend_from_slice(&50123u16.to_be_bytes());
        v2.extend_from_slice(&21u16.to_be_bytes());
        let p = decode(&v2).unwrap().0;
        assert_eq!(p.source, Some("192.0.2.7:50123".parse().unwrap()));
        assert_eq!(p.destination, Some("198.51.100.1:21".parse().unwrap()));
        // A real IPv6 client stays one.
        let six = b"PROXY TCP6 2001:db8::7 2001:db8::1 50123 21\r\n";
        assert_eq!(
            decode(six).unwrap().0.source,
            Some("[2001:db8::7]:50123".parse().unwrap())
        );
    }

    #[test]
    fn a_header_start_is_told_whatever_the_split() {
        assert_eq!(starts_header(b"PRO"), None);
        assert_eq!(starts_header(b"PROXY"), None);
        assert_eq!(starts_header(b"PROXY "), Some(true));
        assert_eq!(starts_header(b"PROXY TCP4 1.2.3.4"), Some(true));
        assert_eq!(starts_header(b"PROT P\r\n"), Some(false));
        assert_eq!(starts_header(b"PROXZ"), Some(false));
        assert_eq!(starts_header(b"USER a\r\n"), Some(false));
        assert_eq!(starts_header(&V2_SIGNATURE[..3]), None);
        assert_eq!(starts_header(&V2_SIGNATURE[..FIRST]), Some(true));
        assert_eq!(starts_header(b"\r\n\r\n\0x"), Some(false));
        assert_eq!(starts_header(b""), Some(false));
    }

    /// Feeds `bytes` as a reader would, in the sizes asked for.
    fn decode(bytes: &[u8]) -> Result<(Proxied, usize), ProxyError> {
        let mut d = ProxyDecoder::new();
        let mut at = 0;
        let mut want = d.first();
        loop {
            let end = (at + want).min(bytes.len());
            if end == at {
                return Err(ProxyError::Malformed("ended early".into()));
            }
            match d.feed(&bytes[at..end])? {
                Step::Read(n) => {
                    at = end;
                    want = n;
                }
                Step::Done(p) => return Ok((p, end)),
            }
        }
    }

    #[test]
    fn v1_headers_end_at_their_crlf() {
        let input = b"PROXY TCP4 192.0.2.7 127.0.0.1 50123 21\r\n\x16\x03\x01";
        let (p, used) = decode(input).unwrap();
        assert_eq!(used, input.len() - 3, "nothing past the header is taken");
        assert_eq!(p.source, Some("192.0.2.7:50123".parse().unwrap()));
        assert_eq!(p.destination, Some("127.0.0.1:21".parse().unwrap()));
        let six = b"PROXY TCP6 2001:db8::1 ::1 40000 990\r\n";
        assert_eq!(
            decode(six).unwrap().0.source,
            Some("[2001:db8::1]:40000".parse().unwrap())
        );
        let unknown = decode(b"PROXY UNKNOWN\r\nUSER x").unwrap();
        assert_eq!((unknown.0.source, unknown.1), (None, 15));
    }

    #[test]
    fn v1_refusals() {
        assert_eq!(decode(b"USER anonymous\r\n"), Err(ProxyError::NotAHeader));
        assert!(matches!(
            decode(b"PROXY TCP4 1.2.3.4\r\n"),
            Err(ProxyError::Malformed(_))
        ));
        assert!(matches!(
            decode(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"),
            Err(ProxyError::Malformed(_))
        ));
        let long = [b"PROXY TCP4 ".as_slice(), &[b'1'; 200]].concat();
        assert_eq!(decode(&long), Err(ProxyError::TooLong));
        assert!(matches!(
            decode(b"PROXY TCP4 \x00\x01"),
            Err(ProxyError::Malformed(_))
        ));
    }

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&(body.len() as u16).to_be_bytes());
        h.extend_from_slice(body);
        h
    }

    #[test]
    fn v2_headers_take_their_length_and_no_more() {
        let mut body = vec![192, 0, 2, 7, 127, 0, 0, 1];
        body.extend_from_slice(&50123u16.to_be_bytes());
        body.extend_from_slice(&21u16.to_be_bytes());
        body.extend_from_slice(&[4, 0, 1, 0]); // a NOOP TLV
        let mut input = v2(1, 0x11, &body);
        let len = input.len();
        input.extend_from_slice(b"\x16\x03\x01");
        let (p, used) = decode(&input).unwrap();
        assert_eq!(used, len);
        assert_eq!(p.source, Some("192.0.2.7:50123".parse().unwrap()));
        // LOCAL: the balancer's own connection.
        let (local, _) = decode(&v2(0, 0x00, &[])).unwrap();
        assert_eq!(local.source, None);
    }

    #[test]
    fn v2_refusals() {
        // A length past the bound is refused before it is read.
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert_eq!(decode(&huge), Err(ProxyError::TooLong));
        // A length shorter than the addresses it announces.
        assert!(matches!(
            decode(&v2(1, 0x11, &[1, 2, 3])),
            Err(ProxyError::Malformed(_))
        ));
        // PROXY without an address, and over UDP.
        assert!(matches!(
            decode(&v2(1, 0x00, &[])),
            Err(ProxyError::Malformed(_))
        ));
        let udp = [[1, 2, 3, 4, 5, 6, 7, 8].as_slice(), &[0, 1, 0, 2]].concat();
        assert!(matches!(
            decode(&v2(1, 0x12, &udp)),
            Err(ProxyError::Malformed(_))
        ));
        // A wrong version.
        let mut v3 = v2(1, 0x11, &[0; 12]);
        v3[12] = 0x31;
        assert!(decode(&v3).is_err());
        // The signature's start, then something else.
        let mut bad = V2_SIGNATURE[..8].to_vec();
        bad.extend_from_slice(b"HELLO!!!");
        assert_eq!(decode(&bad), Err(ProxyError::NotAHeader));
    }

    #[test]
    fn what_looks_like_a_header() {
        assert!(looks_like_header(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"));
        assert!(looks_like_header(&V2_SIGNATURE));
        assert!(!looks_like_header(b"USER alice\r\n"));
        assert!(!looks_like_header(b"\r\n"));
    }
}
