//! `ftps serve --metrics ADDR`: the server's counters (see `ftps_async`'s list: sessions,
//! logins by result, transfers and bytes by kind and result, TLS versions, replies by code,
//! storage latency) as Prometheus text at `http://ADDR/metrics`, and `/health` for a
//! load balancer.
//!
//! The endpoint answers one GET at a time, each within 5 s, and reads at most 1 KiB of a
//! request: a scrape every few seconds needs no more, and nothing a peer sends can hold
//! more of the server than that. Put it on an address only the monitoring can reach.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long one request may take.
const REQUEST_TIME: Duration = Duration::from_secs(5);

/// Installs the Prometheus recorder for the whole process.
pub(crate) fn install() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("--metrics: {e}"))
}

/// Answers requests on `listener` for as long as the server runs.
pub(crate) async fn serve(listener: TcpListener, handle: PrometheusHandle) {
    loop {
        let Ok((mut tcp, _)) = listener.accept().await else {
            // Out of descriptors, say: try again in a moment rather than spin.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let _ = tokio::time::timeout(REQUEST_TIME, answer(&mut tcp, &handle)).await;
    }
}

/// Reads a request line and answers it: 200 for `GET /metrics` and `GET /health`, 404
/// for anything else.
async fn answer(tcp: &mut TcpStream, handle: &PrometheusHandle) -> std::io::Result<()> {
    let mut buf = [0u8; 1024];
    let mut n = 0;
    while n < buf.len() && !buf[..n].contains(&b'\n') {
        match tcp.read(&mut buf[n..]).await? {
            0 => break,
            got => n += got,
        }
    }
    let line = String::from_utf8_lossy(&buf[..n]);
    let mut words = line.split_whitespace();
    let (status, body) = match (words.next(), words.next()) {
        (Some("GET"), Some("/metrics")) => ("200 OK", handle.render()),
        (Some("GET"), Some("/health")) => ("200 OK", "ok\n".to_owned()),
        _ => ("404 Not Found", "not found\n".to_owned()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await?;
    tcp.write_all(body.as_bytes()).await?;
    tcp.shutdown().await
}
