//! Lists a directory through a SOCKS5 proxy: every TCP connection of the session (the
//! control connection and each passive data connection) is opened by the proxy, with
//! `Client::connect_via`.
//!
//! ```text
//! FTPS_PASSWORD=secret cargo run -p ftps-tokio --example socks5 -- \
//!     127.0.0.1:1080 ftp://alice@ftp.example.com/ [cert.pem]
//! ```
//!
//! The server's name goes to the proxy unresolved (SOCKS5 `DOMAINNAME`), as curl's
//! `socks5h://` does: the proxy resolves it. Passive mode only (the server cannot connect
//! back through the proxy). The SOCKS5 client below is the smallest that works (RFC 1928
//! `CONNECT`, no authentication); a proxy that needs a user and password, or HTTP CONNECT,
//! is the same shape: a function from a `Target` to a connected `TcpStream`.

use ftps_tokio::{Client, ClientOptions, Target, client};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Opens a TCP connection to `target` through the SOCKS5 proxy at `proxy` (RFC 1928:
/// greeting with "no authentication", then `CONNECT` to the host name and port).
pub(crate) async fn socks5_connect(proxy: SocketAddr, target: Target) -> io::Result<TcpStream> {
    let refused = |why: String| io::Error::new(io::ErrorKind::ConnectionRefused, why);
    let mut tcp = TcpStream::connect(proxy).await?;
    // Version 5, one method: 0x00, no authentication (RFC 1928 §3).
    tcp.write_all(&[5, 1, 0]).await?;
    let mut chosen = [0u8; 2];
    tcp.read_exact(&mut chosen).await?;
    if chosen != [5, 0] {
        return Err(refused(format!("SOCKS5 proxy wants method {}", chosen[1])));
    }
    // CONNECT (1) to a DOMAINNAME (3): the proxy resolves it (RFC 1928 §4, §5).
    let host = target.host.as_bytes();
    let len = u8::try_from(host.len()).map_err(|_| refused("host name too long".into()))?;
    let mut request = vec![5, 1, 0, 3, len];
    request.extend_from_slice(host);
    request.extend_from_slice(&target.port.to_be_bytes());
    tcp.write_all(&request).await?;
    // Reply: VER REP RSV ATYP BND.ADDR BND.PORT (RFC 1928 §6).
    let mut head = [0u8; 4];
    tcp.read_exact(&mut head).await?;
    if head[0] != 5 || head[1] != 0 {
        return Err(refused(format!(
            "SOCKS5 CONNECT refused: reply {}",
            head[1]
        )));
    }
    let bound = match head[3] {
        1 => 4,
        4 => 16,
        3 => usize::from(tcp.read_u8().await?),
        other => return Err(refused(format!("SOCKS5 address type {other}"))),
    };
    let mut rest = vec![0u8; bound + 2];
    tcp.read_exact(&mut rest).await?;
    Ok(tcp)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: socks5 PROXY-ADDRESS URL [CA.pem]";
    let proxy: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let url = args.next().ok_or(usage)?;
    let password = std::env::var("FTPS_PASSWORD").unwrap_or_default();
    let (mut options, dir) = ClientOptions::from_url(&url, password)?;
    if let Some(ca) = args.next() {
        options.tls = Some(Arc::new(client::client_config_from_pem_file(ca.as_ref())?));
    }
    let mut c = Client::connect_via(options, move |target| socks5_connect(proxy, target)).await?;
    let dir = (!dir.is_empty()).then_some(dir.as_str());
    for entry in &c.list(dir).await? {
        println!("{:>12} {}", entry.size.unwrap_or(0), entry.name);
    }
    c.quit().await?;
    Ok(())
}
