//! `ftps serve --metrics ADDR`: the server's counters (see `ftps_async`'s list: sessions,
//! logins by result, transfers and bytes by kind and result, TLS versions, replies by code,
//! storage latency) as Prometheus text at `http://ADDR/metrics`, and `/health` for a
//! load balancer.
//!
//! The endpoint answers up to [`AT_ONCE`] connections at once (one past that is closed at
//! once), gives each 2 s to send its request line and 5 s in all, and reads at most 1 KiB
//! of a request: a scrape every few seconds needs no more, idle connections cannot hold
//! `/health` from a load balancer (review15c, finding 6: one at a time, three idle
//! connections held it 15 s), and nothing a peer sends holds more of the server than that.
//! Put it on an address only the monitoring can reach.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long one request may take.
const REQUEST_TIME: Duration = Duration::from_secs(5);

/// How long a connection may take to send its request line.
const REQUEST_LINE_TIME: Duration = Duration::from_secs(2);

/// Connections answered at once, at most.
const AT_ONCE: usize = 32;

/// Installs the Prometheus recorder for the whole process.
pub(crate) fn install() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("--metrics: {e}"))
}

/// Whether the server is draining (`/health` then answers 503 `draining`).
pub(crate) type Draining = Arc<dyn Fn() -> bool + Send + Sync>;

/// Answers requests on `listener` for as long as the server runs.
pub(crate) async fn serve(listener: TcpListener, handle: PrometheusHandle, draining: Draining) {
    let places = Arc::new(tokio::sync::Semaphore::new(AT_ONCE));
    loop {
        let Ok((mut tcp, _)) = listener.accept().await else {
            // Out of descriptors, say: try again in a moment rather than spin.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(place) = places.clone().try_acquire_owned() else {
            continue; // Full: this connection is closed at once.
        };
        let (handle, draining) = (handle.clone(), draining.clone());
        tokio::spawn(async move {
            let answered = answer(&mut tcp, &handle, draining.as_ref());
            let _ = tokio::time::timeout(REQUEST_TIME, answered).await;
            drop(place);
        });
    }
}

/// Reads a request line and answers it: 200 for `GET /metrics` and `GET /health` (503
/// `draining` once the server drains, so that a balancer's check takes the node out),
/// 404 for anything else.
async fn answer(
    tcp: &mut TcpStream,
    handle: &PrometheusHandle,
    draining: &(dyn Fn() -> bool + Send + Sync),
) -> std::io::Result<()> {
    let mut buf = [0u8; 1024];
    let mut n = 0;
    let line = async {
        while n < buf.len() && !buf[..n].contains(&b'\n') {
            match tcp.read(&mut buf[n..]).await? {
                0 => break,
                got => n += got,
            }
        }
        Ok::<(), std::io::Error>(())
    };
    tokio::time::timeout(REQUEST_LINE_TIME, line)
        .await
        .map_err(|_| std::io::ErrorKind::TimedOut)??;
    let line = String::from_utf8_lossy(&buf[..n]);
    let mut words = line.split_whitespace();
    let (status, body) = match (words.next(), words.next()) {
        (Some("GET"), Some("/metrics")) => ("200 OK", handle.render()),
        (Some("GET"), Some("/health")) if draining() => {
            ("503 Service Unavailable", "draining\n".to_owned())
        }
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
