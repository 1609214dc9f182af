//! Data-connection addresses: the PORT and EPRT arguments and the 227 (PASV) and 229
//! (EPSV) reply texts.
//!
//! - PORT (RFC 959 §4.1.2): `h1,h2,h3,h4,p1,p2`, six decimal bytes, IPv4 only.
//! - EPRT (RFC 2428 §2): `<d><net-prt><d><net-addr><d><tcp-port><d>`, where `<d>` is any
//!   printable ASCII character (`|` recommended), `net-prt` 1 for IPv4 and 2 for IPv6.
//! - 227 (RFC 959 §4.1.2, PASV): the six numbers somewhere in the text; servers disagree
//!   on the wrapping, so the parser looks for the first run of six comma-separated bytes.
//! - 229 (RFC 2428 §3, EPSV): `(<d><d><d><tcp-port><d>)` in the text, any delimiter.

use crate::error::ParseError;
use nom::{
    IResult, Parser,
    bytes::complete::take_while1,
    character::complete::{char, space0, u8 as dec_u8, u16 as dec_u16},
    combinator::{all_consuming, map_res},
    sequence::{delimited, preceded},
};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

/// Why an EPRT argument was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EprtError {
    /// Not of the EPRT form (a server answers 501).
    Syntax(ParseError),
    /// A network protocol other than 1 (IPv4) or 2 (IPv6); a server answers 522
    /// (RFC 2428 §2).
    UnsupportedProtocol(u32),
}

impl std::fmt::Display for EprtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Syntax(e) => e.fmt(f),
            Self::UnsupportedProtocol(p) => write!(f, "unsupported network protocol {p}"),
        }
    }
}

impl std::error::Error for EprtError {}

/// `h1,h2,h3,h4,p1,p2` with optional spaces after the commas.
fn host_port(input: &str) -> IResult<&str, SocketAddrV4> {
    let byte = |i| preceded(space0, dec_u8).parse(i);
    let comma = |i| preceded(space0, char(',')).parse(i);
    let (rest, (a, _, b, _, c, _, d, _, p1, _, p2)) = (
        byte, comma, byte, comma, byte, comma, byte, comma, byte, comma, byte,
    )
        .parse(input)?;
    let port = u16::from(p1) << 8 | u16::from(p2);
    Ok((rest, SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), port)))
}

/// Parses a PORT argument, `h1,h2,h3,h4,p1,p2` (surrounding spaces are ignored).
pub fn parse_port_argument(input: &str) -> Result<SocketAddrV4, ParseError> {
    all_consuming(delimited(space0, host_port, space0))
        .parse(input)
        .map(|(_, addr)| addr)
        .map_err(|_| ParseError::new("PORT argument", "not six comma-separated bytes"))
}

/// Writes a PORT argument for `addr`.
pub fn format_port_argument(addr: SocketAddrV4) -> String {
    let [a, b, c, d] = addr.ip().octets();
    let [p1, p2] = addr.port().to_be_bytes();
    format!("{a},{b},{c},{d},{p1},{p2}")
}

/// Parses an EPRT argument (RFC 2428 §2), any delimiter.
pub fn parse_eprt_argument(input: &str) -> Result<SocketAddr, EprtError> {
    let syntax = |reason| EprtError::Syntax(ParseError::new("EPRT argument", reason));
    let input = input.trim();
    let delim = input.chars().next().ok_or(syntax("is empty"))?;
    if !(delim.is_ascii_graphic()) || delim.is_ascii_alphanumeric() || delim == '.' || delim == ':'
    {
        return Err(syntax(
            "delimiter must be printable ASCII, not a digit or address character",
        ));
    }
    let fields: Vec<&str> = input.split(delim).collect();
    // "" proto addr port "" around four delimiters.
    let [first, proto, addr, port, last] = fields.as_slice() else {
        return Err(syntax("needs four delimiters"));
    };
    if !first.is_empty() || !last.is_empty() {
        return Err(syntax("text outside the delimiters"));
    }
    let proto: u32 = match proto.parse() {
        Ok(p) if proto.bytes().all(|b| b.is_ascii_digit()) => p,
        _ => return Err(syntax("network protocol is not a number")),
    };
    let ip: IpAddr = match proto {
        1 => addr
            .parse::<Ipv4Addr>()
            .map(IpAddr::V4)
            .map_err(|_| syntax("bad IPv4 address"))?,
        2 => addr
            .parse::<std::net::Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| syntax("bad IPv6 address"))?,
        other => return Err(EprtError::UnsupportedProtocol(other)),
    };
    let port: u16 = all_consuming(dec_u16)
        .parse(*port)
        .map(|(_, p)| p)
        .map_err(|_: nom::Err<nom::error::Error<&str>>| syntax("bad port"))?;
    Ok(SocketAddr::new(ip, port))
}

/// Writes an EPRT argument for `addr` with `|` as the delimiter.
pub fn format_eprt_argument(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("|1|{}|{}|", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("|2|{}|{}|", a.ip(), a.port()),
    }
}

/// Finds the address in a 227 reply text: the first six comma-separated bytes anywhere in
/// it, whatever the server wrapped them in (`(h1,...)`, `=h1,...`, or nothing).
pub fn parse_pasv_reply(text: &str) -> Result<SocketAddrV4, ParseError> {
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        let starts_number = b.is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit());
        if starts_number && let Ok((_, addr)) = host_port(&text[i..]) {
            return Ok(addr);
        }
    }
    Err(ParseError::new(
        "PASV reply",
        "no h1,h2,h3,h4,p1,p2 address in the text",
    ))
}

/// The text of a 227 reply for `addr`: `Entering Passive Mode (h1,h2,h3,h4,p1,p2).`
pub fn format_pasv_reply(addr: SocketAddrV4) -> String {
    format!("Entering Passive Mode ({}).", format_port_argument(addr))
}

/// `(<d><d><d><port><d>)`, any delimiter that is printable and not a digit.
fn epsv_port(input: &str) -> IResult<&str, u16> {
    let (rest, _) = char('(').parse(input)?;
    let delim = rest
        .chars()
        .next()
        .filter(|c| c.is_ascii_graphic() && !c.is_ascii_digit());
    let Some(d) = delim else {
        return Err(nom::Err::Error(nom::error::Error::new(
            rest,
            nom::error::ErrorKind::Char,
        )));
    };
    let (rest, (_, _, _, port, _, _)) = (
        char(d),
        char(d),
        char(d),
        map_res(take_while1(|c: char| c.is_ascii_digit()), str::parse::<u16>),
        char(d),
        char(')'),
    )
        .parse(rest)?;
    Ok((rest, port))
}

/// Finds the port in a 229 reply text: `(|||port|)` with any delimiter, anywhere in the
/// text. The host is, by RFC 2428 §3, the one of the control connection.
pub fn parse_epsv_reply(text: &str) -> Result<u16, ParseError> {
    for (i, c) in text.char_indices() {
        if c == '('
            && let Ok((_, port)) = epsv_port(&text[i..])
        {
            return Ok(port);
        }
    }
    Err(ParseError::new("EPSV reply", "no (|||port|) in the text"))
}

/// The text of a 229 reply for `port`: `Entering Extended Passive Mode (|||port|)`.
pub fn format_epsv_reply(port: u16) -> String {
    format!("Entering Extended Passive Mode (|||{port}|)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_argument() {
        let addr = parse_port_argument("127,0,0,1,117,94").unwrap();
        assert_eq!(addr, "127.0.0.1:30046".parse().unwrap());
        assert_eq!(format_port_argument(addr), "127,0,0,1,117,94");
        assert!(parse_port_argument("127,0,0,1,256,1").is_err());
        assert!(parse_port_argument("127,0,0,1,1").is_err());
        assert!(parse_port_argument("127,0,0,1,1,1,1").is_err());
        assert!(parse_port_argument("-1,0,0,1,1,1").is_err());
    }

    #[test]
    fn eprt_argument() {
        assert_eq!(
            parse_eprt_argument("|1|132.235.1.2|6275|").unwrap(),
            "132.235.1.2:6275".parse().unwrap()
        );
        assert_eq!(
            parse_eprt_argument("|2|1080::8:800:200C:417A|5282|").unwrap(),
            "[1080::8:800:200C:417A]:5282".parse().unwrap()
        );
        assert_eq!(
            parse_eprt_argument("!1!127.0.0.2!21!").unwrap(),
            "127.0.0.2:21".parse().unwrap()
        );
        assert_eq!(
            parse_eprt_argument("|3|x|1|"),
            Err(EprtError::UnsupportedProtocol(3))
        );
        assert!(matches!(
            parse_eprt_argument("|1|::1|21|"),
            Err(EprtError::Syntax(_))
        ));
        assert!(matches!(
            parse_eprt_argument("|1|1.2.3.4|70000|"),
            Err(EprtError::Syntax(_))
        ));
        assert!(matches!(
            parse_eprt_argument("|1|1.2.3.4|21"),
            Err(EprtError::Syntax(_))
        ));
        let v6: SocketAddr = "[::1]:2121".parse().unwrap();
        assert_eq!(parse_eprt_argument(&format_eprt_argument(v6)).unwrap(), v6);
    }

    #[test]
    fn pasv_reply_variants() {
        let want: SocketAddrV4 = "127.0.0.1:30046".parse().unwrap();
        for text in [
            "Entering Passive Mode (127,0,0,1,117,94).",
            "Entering Passive Mode (127,0,0,1,117,94)",
            "Entering passive mode (127,0,0,1,117,94).",
            "Entering Passive Mode 127,0,0,1,117,94",
            "Entering Passive Mode=127,0,0,1,117,94",
            "Port 1 then (127, 0, 0, 1, 117, 94)",
        ] {
            assert_eq!(parse_pasv_reply(text).unwrap(), want, "{text}");
        }
        assert!(parse_pasv_reply("Entering Passive Mode (127,0,0,1,117)").is_err());
        assert_eq!(parse_pasv_reply(&format_pasv_reply(want)).unwrap(), want);
    }

    #[test]
    fn epsv_reply_variants() {
        for text in [
            "Entering Extended Passive Mode (|||30099|)",
            "Extended Passive mode OK (|||40970|)",
            "Entering extended passive mode (|||30329|).",
            "Entering Extended Passive Mode (!!!6446!)",
        ] {
            assert!(parse_epsv_reply(text).is_ok(), "{text}");
        }
        assert_eq!(parse_epsv_reply("ok (1) then (|||21|)").unwrap(), 21);
        assert!(parse_epsv_reply("(|||70000|)").is_err());
        assert!(parse_epsv_reply("(||30099|)").is_err());
        assert_eq!(parse_epsv_reply(&format_epsv_reply(2121)).unwrap(), 2121);
    }
}
