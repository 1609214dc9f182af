//! The tokio client against a scripted, misbehaving server (plain FTP, so the script can
//! be written by hand): every misbehaviour ends in a typed error within the timeouts,
//! never a hang, and nothing is reported complete that was not.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_proto::client::{ClientError, ConnectionMode};
use ftps_tokio::client::Error;
use ftps_tokio::{Client, ClientOptions};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What the scripted server does after login.
#[derive(Clone, Copy)]
enum Script {
    /// Opens the data connection, sends some bytes and 150, then neither moves data nor
    /// replies.
    StallData,
    /// Answers PASV naming 127.0.0.2 (EPSV unknown); listens on 127.0.0.1 only.
    ForeignPasv,
    /// Answers NOOP with a multi-line reply that never ends.
    EndlessReply,
    /// Answers NOOP with code 999.
    BadCode,
}

async fn serve(script: Script) -> (u16, tokio::task::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut control = BufReader::new(tcp);
        let mut seen = Vec::new();
        let mut data_listener: Option<TcpListener> = None;
        let mut _data: Option<TcpStream> = None;
        control.get_mut().write_all(b"220 hi\r\n").await.unwrap();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(Duration::from_secs(20), control.read_line(&mut line));
            match read.await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return seen,
            }
            let line = line.trim_end().to_owned();
            seen.push(line.clone());
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            let reply: Vec<u8> = match (verb.as_str(), script) {
                ("USER", _) => b"331 pw\r\n".to_vec(),
                ("PASS", _) => b"230 in\r\n".to_vec(),
                ("FEAT", _) => b"211-f\r\n SIZE\r\n211 end\r\n".to_vec(),
                ("EPSV", _) => b"500 unknown\r\n".to_vec(),
                ("PASV", Script::ForeignPasv) => {
                    // The real listener is on 127.0.0.1; the reply names another host.
                    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
                    let p = l.local_addr().unwrap().port();
                    data_listener = Some(l);
                    format!(
                        "227 Entering Passive Mode (127,0,0,2,{},{})\r\n",
                        p >> 8,
                        p & 255
                    )
                    .into_bytes()
                }
                ("NLST", Script::ForeignPasv) => {
                    let l = data_listener.take().unwrap();
                    let accepted = tokio::time::timeout(Duration::from_secs(5), l.accept()).await;
                    let (mut d, from) = accepted.unwrap().unwrap();
                    seen.push(format!("data from {}", from.ip()));
                    control.get_mut().write_all(b"150 list\r\n").await.unwrap();
                    d.write_all(b"a.txt\r\n").await.unwrap();
                    drop(d);
                    b"226 done\r\n".to_vec()
                }
                ("PASV", _) => {
                    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
                    let p = l.local_addr().unwrap().port();
                    data_listener = Some(l);
                    format!(
                        "227 Entering Passive Mode (127,0,0,1,{},{})\r\n",
                        p >> 8,
                        p & 255
                    )
                    .into_bytes()
                }
                ("RETR" | "NLST" | "LIST", Script::StallData) => {
                    let (mut d, _) = data_listener.take().unwrap().accept().await.unwrap();
                    d.write_all(b"partial").await.unwrap();
                    _data = Some(d);
                    b"150 here it comes\r\n".to_vec()
                }
                ("NOOP", Script::EndlessReply) => {
                    control.get_mut().write_all(b"200-start\r\n").await.unwrap();
                    let line = vec![b'x'; 1024];
                    for _ in 0..20_000 {
                        let mut l = line.clone();
                        l.extend_from_slice(b"\r\n");
                        if control.get_mut().write_all(&l).await.is_err() {
                            return seen;
                        }
                    }
                    Vec::new()
                }
                ("NOOP", Script::BadCode) => b"999 what\r\n".to_vec(),
                ("TYPE" | "NOOP" | "OPTS", _) => b"200 ok\r\n".to_vec(),
                ("QUIT", _) => b"221 bye\r\n".to_vec(),
                _ => b"502 no\r\n".to_vec(),
            };
            if !reply.is_empty() && control.get_mut().write_all(&reply).await.is_err() {
                return seen;
            }
        }
    });
    (port, task)
}

async fn client(port: u16) -> Client {
    let mut o = ClientOptions::new("127.0.0.1", port, "u", "p").unwrap();
    o.session.mode = ConnectionMode::Plain;
    o.session.reply_timeout = Duration::from_secs(2);
    o.session.data_timeout = Duration::from_secs(1);
    Client::connect(o).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_download_is_an_error_within_the_data_timeout() {
    let (port, _server) = serve(Script::StallData).await;
    let mut c = client(port).await;
    let start = Instant::now();
    let mut out = Vec::new();
    let err = tokio::time::timeout(Duration::from_secs(10), c.retrieve("f", 0, &mut out))
        .await
        .expect("no hang")
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(8));
    assert!(
        matches!(
            err,
            Error::Protocol(ClientError::Data(_) | ClientError::Timeout)
        ),
        "{err:?}"
    );
    assert_eq!(
        out, b"partial",
        "what arrived is delivered, but not called complete"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_227_naming_another_host_is_not_followed() {
    let (port, server) = serve(Script::ForeignPasv).await;
    let mut c = client(port).await;
    // The client takes the port from the 227 but connects to the control peer, 127.0.0.1
    // (CVE-2020-8284): the server listens there only.
    let names = tokio::time::timeout(Duration::from_secs(10), c.nlst(None))
        .await
        .expect("no hang")
        .unwrap();
    assert_eq!(*names, ["a.txt"]);
    c.quit().await.unwrap();
    let seen = server.await.unwrap();
    assert!(seen.iter().any(|l| l == "data from 127.0.0.1"), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_multi_line_reply_is_cut_off() {
    let (port, _server) = serve(Script::EndlessReply).await;
    let mut c = client(port).await;
    let err = tokio::time::timeout(Duration::from_secs(10), c.noop())
        .await
        .expect("no hang")
        .unwrap_err();
    assert!(
        matches!(err, Error::Protocol(ClientError::BadReply(_))),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_code_999_is_a_typed_error() {
    let (port, _server) = serve(Script::BadCode).await;
    let mut c = client(port).await;
    let err = tokio::time::timeout(Duration::from_secs(10), c.noop())
        .await
        .expect("no hang")
        .unwrap_err();
    assert!(
        matches!(err, Error::Protocol(ClientError::BadReply(_))),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_with_crlf_is_refused_before_sending() {
    let (port, server) = serve(Script::BadCode).await;
    let mut c = client(port).await;
    let err = c.delete("a\r\nDELE b").await.unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    c.quit().await.unwrap();
    let seen = server.await.unwrap();
    assert!(!seen.iter().any(|l| l.starts_with("DELE")), "{seen:?}");
}

/// A greeting without CRLF, then silence: a timeout error within the reply timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_without_crlf_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        tcp.write_all(b"220 no line end").await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let mut o = ClientOptions::new("127.0.0.1", port, "u", "p").unwrap();
    o.session.mode = ConnectionMode::Plain;
    o.session.reply_timeout = Duration::from_secs(1);
    let start = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(10), Client::connect(o))
        .await
        .expect("no hang")
        .unwrap_err();
    assert!(
        matches!(err, Error::Protocol(ClientError::Timeout)),
        "{err:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
}
