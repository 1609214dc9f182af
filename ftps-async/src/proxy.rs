//! The PROXY protocol at the driver: which peers are trusted to send a header
//! ([`TrustedProxies`]), and reading one header from a connection, exactly
//! (`read_header`, over `ftps_proto::proxy`'s decoder).

use crate::runtime::{Runtime, timeout};
use ftps_proto::proxy::{Proxied, ProxyDecoder, ProxyError, Step};
use futures_lite::io::AsyncReadExt;
use std::io;
use std::net::IpAddr;
use std::time::Duration;

/// The addresses (single addresses or CIDR networks) trusted to send a PROXY protocol
/// header (HAProxy's `send-proxy` / `send-proxy-v2`): a load balancer. On a server built
/// with them ([`ServerBuilder::proxy_protocol`](crate::ServerBuilder::proxy_protocol)), a
/// connection from one of them — control or passive data — must start with a header,
/// and the client it names is the peer for everything (the per-address caps, the login
/// lockout, the data connections' peer check, logs and metrics); without a valid header
/// within the handshake timeout, the connection is closed unanswered. Connections waiting
/// for their header are counted: at most as many as the cap of sessions not logged in,
/// the oldest closed to make room. A connection from anyone else is served as it is, and
/// one that starts with a header (however its first bytes are split) is closed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Trusts these networks (an address and its prefix length).
    pub fn new(networks: impl IntoIterator<Item = (IpAddr, u8)>) -> Self {
        TrustedProxies(networks.into_iter().collect())
    }

    /// Parses a comma-separated list of addresses and networks: `127.0.0.1`,
    /// `10.0.0.0/8`, `::1`, `fd00::/8`.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (ip, bits) = match item.split_once('/') {
                Some((ip, bits)) => (ip, Some(bits)),
                None => (item, None),
            };
            let ip: IpAddr = ip
                .parse()
                .map_err(|_| format!("{item}: not an IP address or network"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(b) => b
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("{item}: the prefix length must be 0-{max}"))?,
                None => max,
            };
            nets.push((ip, bits));
        }
        if nets.is_empty() {
            return Err("no trusted address given".into());
        }
        Ok(TrustedProxies(nets))
    }

    /// Whether `ip` may send a header.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0
            .iter()
            .any(|&(net, bits)| match (net.to_canonical(), ip) {
                (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), bits),
                (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), bits),
                _ => false,
            })
    }
}

/// Whether the first `bits` bits of `a` and `b` agree.
fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits);
    let (whole, rest) = (bits / 8, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[whole] & mask == b[whole] & mask
}

/// Reads one PROXY header from `stream`, taking exactly its bytes, within `limit`.
pub(crate) async fn read_header<R: Runtime, T: futures_io::AsyncRead + Unpin + Send>(
    stream: &mut T,
    limit: Duration,
) -> io::Result<Proxied> {
    let read = async {
        let mut decoder = ProxyDecoder::new();
        let mut want = decoder.first();
        // On the heap: the session's future would otherwise carry the buffer for life.
        let mut buf = vec![0u8; ftps_proto::proxy::V2_MAX];
        loop {
            stream.read_exact(&mut buf[..want]).await?;
            match decoder.feed(&buf[..want]).map_err(invalid)? {
                Step::Read(n) => want = n,
                Step::Done(p) => return Ok(p),
            }
        }
    };
    match timeout::<R, _>(limit, read).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no PROXY protocol header in time",
        )),
    }
}

fn invalid(e: ProxyError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_and_addresses() {
        let t = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8,fd00::/8").unwrap();
        assert!(t.trusts("127.0.0.1".parse().unwrap()));
        assert!(t.trusts("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!t.trusts("127.0.0.2".parse().unwrap()));
        assert!(t.trusts("10.200.3.4".parse().unwrap()));
        assert!(!t.trusts("11.0.0.1".parse().unwrap()));
        assert!(t.trusts("fd12::1".parse().unwrap()));
        assert!(!t.trusts("fe80::1".parse().unwrap()));
        let odd = TrustedProxies::parse("192.168.4.0/22").unwrap();
        assert!(odd.trusts("192.168.7.255".parse().unwrap()));
        assert!(!odd.trusts("192.168.8.0".parse().unwrap()));
        assert!(TrustedProxies::parse("").is_err());
        assert!(TrustedProxies::parse("1.2.3.4/33").is_err());
        assert!(TrustedProxies::parse("example.com").is_err());
    }
}
