//! The tokio client against the tokio server: every operation, all four TLS modes, active
//! and passive, PROT P and C, TLS 1.2 and 1.3, and 50 mixed transfers in one session with
//! the server requiring every data connection to resume the control session.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_proto::ProtectionLevel;
use ftps_proto::client::ConnectionMode;
use ftps_proto::server::{ControlTlsPolicy, DataTlsPolicy, ServerConfig, TlsMode};
use ftps_tokio::client::{self, Client, ClientOptions, Error};
use ftps_tokio::{LocalFs, Server, StaticUsers, tls};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;

struct Fixture {
    dir: PathBuf,
    ca: PathBuf,
    explicit: u16,
    implicit: u16,
}

async fn start(name: &str, config: ServerConfig, with_tls: bool) -> Fixture {
    let dir = std::env::temp_dir().join(format!("ftps-client-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("root")).unwrap();
    std::fs::write(dir.join("root/hello.txt"), b"hello from the ftps lab\n").unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, cert.pem()).unwrap();
    let users = StaticUsers::new().with_password("alice", "wonderland");
    let mut builder =
        Server::builder(LocalFs::new(dir.join("root")).unwrap(), users).config(config);
    if with_tls {
        builder = builder.tls(
            tls::server_config_from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
                .unwrap(),
        );
    }
    let server = builder.build();
    let explicit = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let implicit = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let f = Fixture {
        dir,
        ca,
        explicit: explicit.local_addr().unwrap().port(),
        implicit: implicit.local_addr().unwrap().port(),
    };
    let s2 = server.clone();
    tokio::spawn(async move { server.serve(explicit, TlsMode::Explicit).await });
    tokio::spawn(async move { s2.serve(implicit, TlsMode::Implicit).await });
    f
}

impl Fixture {
    fn options(
        &self,
        mode: ConnectionMode,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> ClientOptions {
        let roots = ftps_tokio::client::roots_from_pem(&std::fs::read(&self.ca).unwrap()).unwrap();
        let config = ftps_tokio::client::client_config_with_versions(roots, versions).unwrap();
        let port = if mode == ConnectionMode::Implicit {
            self.implicit
        } else {
            self.explicit
        };
        // The certificate is for "localhost", which resolves to the loopback address.
        let mut o = ClientOptions::new("localhost", port, "alice", "wonderland").unwrap();
        o.session.mode = mode;
        o.tls = Some(Arc::new(config));
        o
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_against_our_server() {
    let f = start("ops", ServerConfig::default(), true).await;
    let mut c = Client::connect(f.options(ConnectionMode::ExplicitRequired, BOTH))
        .await
        .unwrap();
    assert!(c.is_secure());
    assert_eq!(c.pwd().await.unwrap(), "/");
    let mut body = Vec::new();
    assert_eq!(c.retrieve("hello.txt", 0, &mut body).await.unwrap(), 24);
    assert_eq!(body, b"hello from the ftps lab\n");
    let payload: Vec<u8> = (0..2_500_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(
        c.store("big.bin", &mut &payload[..], 0, false)
            .await
            .unwrap(),
        payload.len() as u64
    );
    assert_eq!(std::fs::read(f.dir.join("root/big.bin")).unwrap(), payload);
    assert_eq!(c.size("big.bin").await.unwrap(), payload.len() as u64);
    assert!(c.modified("big.bin").await.unwrap().year() >= 2026);
    // Resume both ways.
    let mut tail = Vec::new();
    c.retrieve("big.bin", 2_000_000, &mut tail).await.unwrap();
    assert_eq!(tail, &payload[2_000_000..]);
    c.store("big.bin", &mut &b"+appended"[..], 0, true)
        .await
        .unwrap();
    assert!(
        std::fs::read(f.dir.join("root/big.bin"))
            .unwrap()
            .ends_with(b"+appended")
    );
    c.mkdir("日本語 dir").await.unwrap();
    c.cwd("日本語 dir").await.unwrap();
    assert_eq!(c.pwd().await.unwrap(), "/日本語 dir");
    c.store("empty", &mut &b""[..], 0, false).await.unwrap();
    c.cwd("/").await.unwrap();
    let names = c.nlst(None).await.unwrap();
    assert!(
        names.iter().any(|n| n == "big.bin") && names.iter().any(|n| n == "日本語 dir"),
        "{names:?}"
    );
    let entries = c.list(None).await.unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.name == "hello.txt" && e.size == Some(24))
    );
    let facts = c.mlsd(Some("日本語 dir")).await.unwrap();
    assert_eq!(facts.len(), 1);
    assert_eq!(facts[0].size(), Some(0));
    c.rename("big.bin", "renamed.bin").await.unwrap();
    c.delete("renamed.bin").await.unwrap();
    c.delete("日本語 dir/empty").await.unwrap();
    c.rmdir("日本語 dir").await.unwrap();
    // Refusals name the reply and leave the session usable.
    match c.size("nope").await {
        Err(Error::Protocol(ftps_proto::client::ClientError::Refused(r))) => {
            assert_eq!(r.code().get(), 550)
        }
        other => panic!("{other:?}"),
    }
    assert!(c.retrieve("nope", 0, &mut Vec::new()).await.is_err());
    c.noop().await.unwrap();
    // A path with CR LF is refused locally, nothing sent.
    assert!(matches!(
        c.delete("x\r\nDELE hello.txt").await,
        Err(Error::Invalid(_))
    ));
    assert!(f.dir.join("root/hello.txt").exists());
    c.quit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_mixed_transfers_resume_the_session_on_tls13_and_tls12() {
    let f = start("fifty", ServerConfig::default(), true).await;
    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        let mut c = Client::connect(f.options(ConnectionMode::ExplicitRequired, versions))
            .await
            .unwrap();
        for i in 0..50u32 {
            eprintln!("STEP {:?} {i}", versions[0].version);
            let name = format!("f{}.bin", i % 5);
            let data: Vec<u8> = (0..(i * 997 + 1)).map(|j| (j ^ i) as u8).collect();
            match i % 3 {
                0 => {
                    c.store(&name, &mut &data[..], 0, false).await.unwrap();
                }
                1 => {
                    let mut out = Vec::new();
                    c.retrieve("hello.txt", 0, &mut out).await.unwrap();
                    assert_eq!(out, b"hello from the ftps lab\n");
                }
                _ => {
                    c.nlst(None).await.unwrap();
                }
            }
        }
        assert_eq!(c.session_renewals(), 0, "our server renews TLS 1.3 tickets");
        c.quit().await.unwrap();
    }
}

/// Two sessions built from one rustls configuration: each data connection resumes its own
/// control connection's session (the server refuses another's with 522), because every
/// client keeps its own session store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_sharing_a_tls_config_resume_only_their_own() {
    let f = start("shared-config", ServerConfig::default(), true).await;
    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        let o = f.options(ConnectionMode::ExplicitRequired, versions);
        let mut a = Client::connect(o.clone()).await.unwrap();
        let mut b = Client::connect(o).await.unwrap();
        for i in 0..6u32 {
            let data = vec![i as u8; 1000 + i as usize];
            let (first, second) = if i % 2 == 0 {
                (&mut a, &mut b)
            } else {
                (&mut b, &mut a)
            };
            first
                .store(&format!("s{i}.bin"), &mut &data[..], 0, false)
                .await
                .unwrap_or_else(|e| panic!("{versions:?} {i}: {e}"));
            let mut back = Vec::new();
            second
                .retrieve(&format!("s{i}.bin"), 0, &mut back)
                .await
                .unwrap_or_else(|e| panic!("{versions:?} {i}: {e}"));
            assert_eq!(back, data);
        }
        a.quit().await.unwrap();
        b.quit().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_active_and_prot_c() {
    let config = ServerConfig::default()
        .with_active_mode(true)
        .with_data_tls(DataTlsPolicy::Allow);
    let f = start("modes", config, true).await;
    let mut c = Client::connect(f.options(ConnectionMode::Implicit, BOTH))
        .await
        .unwrap();
    let mut out = Vec::new();
    c.retrieve("hello.txt", 0, &mut out).await.unwrap();
    assert_eq!(out.len(), 24);
    c.quit().await.unwrap();

    let mut o = f.options(ConnectionMode::ExplicitRequired, BOTH);
    o.session.passive = false;
    let mut c = Client::connect(o).await.unwrap();
    let mut out = Vec::new();
    c.retrieve("hello.txt", 0, &mut out).await.unwrap();
    c.store("active.bin", &mut &b"active"[..], 0, false)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(f.dir.join("root/active.bin")).unwrap(),
        b"active"
    );
    c.quit().await.unwrap();

    let mut o = f.options(ConnectionMode::ExplicitRequired, BOTH);
    o.session.protection = ProtectionLevel::Clear;
    let mut c = Client::connect(o).await.unwrap();
    let mut out = Vec::new();
    c.retrieve("hello.txt", 0, &mut out).await.unwrap();
    assert_eq!(out.len(), 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_only_server_downgrade_is_explicit() {
    let config = ServerConfig::default()
        .with_control_tls(ControlTlsPolicy::Allow)
        .with_data_tls(DataTlsPolicy::Allow);
    let f = start("plain", config, false).await;
    match Client::connect(f.options(ConnectionMode::ExplicitRequired, BOTH)).await {
        Err(Error::Protocol(ftps_proto::client::ClientError::TlsUnavailable)) => {}
        other => panic!("{other:?}"),
    }
    let offer = match Client::connect(f.options(ConnectionMode::ExplicitIfAvailable, BOTH)).await {
        Err(Error::PlaintextOnly(offer)) => offer,
        other => panic!("{other:?}"),
    };
    let mut c = offer.accept().await.unwrap();
    assert!(!c.is_secure());
    let mut out = Vec::new();
    c.retrieve("hello.txt", 0, &mut out).await.unwrap();
    assert_eq!(out.len(), 24);
    let mut c = Client::connect(f.options(ConnectionMode::Plain, BOTH))
        .await
        .unwrap();
    c.noop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_for_another_name_is_refused() {
    let f = start("cert", ServerConfig::default(), true).await;
    let mut o = f.options(ConnectionMode::ExplicitRequired, BOTH);
    o.host = "127.0.0.1".into(); // the certificate names only localhost
    match Client::connect(o).await {
        Err(Error::Protocol(ftps_proto::client::ClientError::Tls(why))) => {
            assert_eq!(
                why.kind(),
                ftps_proto::TransportErrorKind::Certificate,
                "{why:?}"
            );
        }
        other => panic!("not refused for the certificate: {:?}", other.err()),
    }
    // Platform roots do not know the self-signed certificate either.
    let mut o = f.options(ConnectionMode::Implicit, BOTH);
    o.tls = client::platform_client_config().ok().map(Arc::new);
    if o.tls.is_some() {
        assert!(Client::connect(o).await.is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_fingerprints_decide_trust_and_a_refusal_names_the_certificate() {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let f = start("pins", ServerConfig::default(), true).await;
    let der = CertificateDer::from_pem_file(&f.ca).unwrap();
    let right = client::Fingerprint::of(&ftps_proto::tls::provider(), &der).unwrap();
    let wrong: client::Fingerprint = "00".repeat(32).parse().unwrap();
    // Pins alone (no roots, no configuration given), and pins over a configuration that
    // would not trust the certificate (platform roots).
    for tls in [None, client::platform_client_config().ok().map(Arc::new)] {
        let mut o = f.options(ConnectionMode::ExplicitRequired, BOTH);
        o.tls = tls.clone();
        o.pins = vec![wrong, right];
        let mut c = Client::connect(o).await.unwrap();
        let mut out = Vec::new();
        c.retrieve("hello.txt", 0, &mut out).await.unwrap();
        assert_eq!(out, b"hello from the ftps lab\n");
        c.quit().await.unwrap();
    }
    let mut o = f.options(ConnectionMode::ExplicitRequired, BOTH);
    o.pins = vec![wrong];
    let e = client::report(&Client::connect(o).await.unwrap_err());
    assert!(e.contains(&right.to_string()), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_reader_and_writer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let f = start("stream", ServerConfig::default(), true).await;
    let mut c = Client::connect(f.options(ConnectionMode::ExplicitRequired, BOTH))
        .await
        .unwrap();
    let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    for round in 0..3 {
        let name = format!("s{round}.bin");
        let mut w = c.store_stream(&name, 0, false).await.unwrap();
        for chunk in payload.chunks(100_000) {
            w.write_all(chunk).await.unwrap();
        }
        assert_eq!(w.finish().await.unwrap(), payload.len() as u64);
        let mut r = c.retrieve_stream(&name, 0).await.unwrap();
        let mut back = Vec::new();
        r.read_to_end(&mut back).await.unwrap();
        assert_eq!(r.finish().await.unwrap(), payload.len() as u64);
        assert_eq!(back, payload);
    }
    // Finishing early reads the rest; the session goes on.
    let mut r = c.retrieve_stream("hello.txt", 6).await.unwrap();
    let mut first = [0u8; 4];
    r.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"from");
    assert_eq!(r.finish().await.unwrap(), 18);
    // A refused transfer fails at the start.
    assert!(c.retrieve_stream("nope", 0).await.is_err());
    c.noop().await.unwrap();
    c.quit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_other_than_ftp_is_refused() {
    // ALPACA: a TLS client that asks for HTTP gets no FTP session.
    let f = start("alpn", ServerConfig::default(), true).await;
    for (alpn, accepted) in [(&b"h2"[..], false), (b"http/1.1", false), (b"ftp", true)] {
        let mut o = f.options(ConnectionMode::Implicit, BOTH);
        let mut config = (*o.tls.take().unwrap()).clone();
        config.alpn_protocols = vec![alpn.to_vec()];
        o.tls = Some(Arc::new(config));
        assert_eq!(
            Client::connect(o).await.is_ok(),
            accepted,
            "{}",
            String::from_utf8_lossy(alpn)
        );
    }
}

/// MLST, MFMT, CDUP, STAT, STOU, ABOR mid-download and mid-upload, and CCC (the control
/// connection goes clear, data stays TLS) against our server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlst_mfmt_stou_abort_and_ccc() {
    let config = ServerConfig::default().with_allow_ccc(true);
    let f = start("more-ops", config, true).await;
    let big: Vec<u8> = (0..8_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(f.dir.join("root/big.bin"), &big).unwrap();
    let mut c = Client::connect(f.options(ConnectionMode::ExplicitRequired, BOTH))
        .await
        .unwrap();
    let entry = c.mlst(Some("hello.txt")).await.unwrap();
    assert_eq!(entry.size(), Some(24));
    let when = ftps_proto::Timestamp::parse("20200102030405").unwrap();
    c.set_modified("hello.txt", when).await.unwrap();
    assert_eq!(c.modified("hello.txt").await.unwrap(), when);
    c.mkdir("sub").await.unwrap();
    c.cwd("sub").await.unwrap();
    c.cdup().await.unwrap();
    assert_eq!(c.pwd().await.unwrap(), "/");
    let status = c.stat(None).await.unwrap();
    assert!(status.code().is_positive(), "{status:?}");
    let (n, reply) = c.store_unique(&mut &b"unique"[..]).await.unwrap();
    assert_eq!(n, 6);
    assert!(reply.code().is_positive());

    // ABOR in the middle of a download: the session goes on.
    let mut reader = c.retrieve_stream("big.bin", 0).await.unwrap();
    let mut first = vec![0u8; 64 * 1024];
    tokio::io::AsyncReadExt::read_exact(&mut reader, &mut first)
        .await
        .unwrap();
    reader.abort().await.unwrap();
    c.noop().await.unwrap();
    // ABOR in the middle of an upload: the partial file is not published.
    let mut writer = c.store_stream("partial.bin", 0, false).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut writer, &big[..1_000_000])
        .await
        .unwrap();
    writer.abort().await.unwrap();
    assert!(!f.dir.join("root/partial.bin").exists());
    let mut out = Vec::new();
    c.retrieve("hello.txt", 0, &mut out).await.unwrap();
    assert_eq!(out, b"hello from the ftps lab\n");

    // CCC: the control connection in clear text, data connections still TLS.
    c.clear_control_channel().await.unwrap();
    assert!(!c.is_secure());
    for _ in 0..3 {
        let mut out = Vec::new();
        c.retrieve("big.bin", 0, &mut out).await.unwrap();
        assert!(out == big);
        c.store("after-ccc.bin", &mut &big[..100_000], 0, false)
            .await
            .unwrap();
    }
    assert_eq!(c.size("after-ccc.bin").await.unwrap(), 100_000);
    c.quit().await.unwrap();
}

/// TYPE A: the server sends CRLF line ends, the client gives back local ones (and sends
/// CRLF for an upload's bare LF); PASV only; HOST before login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ascii_transfers_pasv_only_and_host() {
    let f = start("ascii", ServerConfig::default(), true).await;
    std::fs::write(f.dir.join("root/lines.txt"), b"one\ntwo\nthree\n").unwrap();
    let mut o = f.options(ConnectionMode::ExplicitRequired, BOTH);
    o.session.epsv = false;
    o.session.host = Some(ftps_proto::Text::new("localhost").unwrap());
    let mut c = Client::connect(o).await.unwrap();
    c.set_ascii(true);
    let mut text = Vec::new();
    c.retrieve("lines.txt", 0, &mut text).await.unwrap();
    assert_eq!(text, b"one\ntwo\nthree\n", "no CR left after TYPE A");
    c.store("up.txt", &mut &b"a\nb\n"[..], 0, false)
        .await
        .unwrap();
    assert_eq!(std::fs::read(f.dir.join("root/up.txt")).unwrap(), b"a\nb\n");
    // Larger than the server's upload chunks (it writes per 128 KiB or more): line ends
    // fall on every chunk boundary somewhere, and every byte must come back.
    let text: Vec<u8> = (0..60_000u32)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    c.store("big.txt", &mut &text[..], 0, false).await.unwrap();
    assert_eq!(std::fs::read(f.dir.join("root/big.txt")).unwrap(), text);
    let mut back = Vec::new();
    c.retrieve("big.txt", 0, &mut back).await.unwrap();
    assert_eq!(back, text);
    c.set_ascii(false);
    let mut wire = Vec::new();
    c.retrieve("big.txt", 0, &mut wire).await.unwrap();
    assert_eq!(wire, text, "stored with local line ends");
    let binary: Vec<u8> = (0..700_001u32).map(|i| (i * 7 + i / 251) as u8).collect();
    c.store("big.bin", &mut &binary[..], 0, false)
        .await
        .unwrap();
    assert_eq!(std::fs::read(f.dir.join("root/big.bin")).unwrap(), binary);
    let mut raw = Vec::new();
    c.retrieve("lines.txt", 0, &mut raw).await.unwrap();
    assert_eq!(raw, b"one\ntwo\nthree\n");
    c.quit().await.unwrap();
}

/// A certificate for the right name but expired is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_is_refused() {
    let dir = std::env::temp_dir().join(format!("ftps-expired-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    let server = Server::builder(
        LocalFs::new(&dir).unwrap(),
        StaticUsers::new().with_password("alice", "wonderland"),
    )
    .tls(
        tls::server_config_from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap(),
    )
    .build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { server.serve(listener, TlsMode::Explicit).await });
    let roots = client::roots_from_pem(cert.pem().as_bytes()).unwrap();
    let mut o = ClientOptions::new("localhost", port, "alice", "wonderland").unwrap();
    o.tls = Some(Arc::new(client::client_config(roots).unwrap()));
    let err = Client::connect(o).await.unwrap_err();
    // Typed: the control TLS handshake failed because of the certificate, and the cause
    // is rustls' own error; the report reads the whole chain.
    let Error::Protocol(ftps_proto::client::ClientError::Tls(why)) = &err else {
        panic!("not a TLS failure: {err:?}");
    };
    assert_eq!(why.kind(), ftps_proto::TransportErrorKind::Certificate);
    assert!(
        matches!(
            why.cause().and_then(|c| c.downcast_ref::<rustls::Error>()),
            Some(rustls::Error::InvalidCertificate(_))
        ),
        "{why:?}"
    );
    let text = client::report(&err);
    assert!(text.contains("certificate expired"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
