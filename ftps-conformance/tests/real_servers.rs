//! Our clients against real servers: the tokio client in full, the other runtimes'
//! clients through the conformance traits against vsftpd. The tokio client against
//! vsftpd (`require_ssl_reuse=YES`), ProFTPD with mod_tls (session reuse required by default) and Pure-FTPd (`-Y 2`, TLS required on
//! the control connection). On each, on TLS 1.3 and on TLS 1.2: 50 mixed transfers in one
//! session, plus listing, SIZE, MDTM, MKD, rename, DELE, RMD, resume and append; active
//! mode; PROT C. Implicit FTPS on vsftpd and ProFTPD; PROT C refused with 522 by a vsftpd
//! that requires protected data. Every file compared.
//!
//! `cargo xtask ci` installs vsftpd, extracts ProFTPD and Pure-FTPd (they conflict as
//! Debian packages) under target/interop-peers/root, passes that in `FTPS_PEERS_ROOT` and
//! sets `FTPS_REQUIRE_PEERS=1`. The servers log in system users, so the test needs root.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::ClientRuntime;
use ftps_conformance::peers::{HELLO, PASSWORD, Peer, proftpd, pure_ftpd, vsftpd, vsftpd_with};
use ftps_conformance::runtimes::{Blocking, Smol};
use ftps_proto::ProtectionLevel;
use ftps_proto::client::ConnectionMode;
use ftps_proto::tls::ClientIdentity;
use ftps_tokio::{Client, ClientOptions};
use std::sync::Arc;

fn options(p: &Peer, versions: &[&'static rustls::SupportedProtocolVersion]) -> ClientOptions {
    // The peers' certificates are made by `openssl req -x509` (CA:TRUE, as admins make them).
    let config = ftps_tokio::client::client_config_from_pem(&p.ca, versions).unwrap();
    let mut o = ClientOptions::new("localhost", p.port, &p.user, PASSWORD).unwrap();
    o.session.mode = ConnectionMode::ExplicitRequired;
    o.tls = Some(Arc::new(config));
    o
}

async fn exercise(
    p: &Peer,
    name: &str,
    all_versions: &[&[&'static rustls::SupportedProtocolVersion]],
) {
    for &versions in all_versions {
        let tag = format!("{name} {:?}", versions[0].version);
        let mut c = Client::connect(options(p, versions))
            .await
            .unwrap_or_else(|e| panic!("{tag}: {e}"));
        assert!(c.is_secure());
        for i in 0..50u32 {
            let file = format!("up{}.bin", i % 7);
            let data: Vec<u8> = (0..(i * 4099 + 1))
                .map(|j| (j.wrapping_mul(31) ^ i) as u8)
                .collect();
            match i % 3 {
                0 => {
                    c.store(&file, &mut &data[..], 0, false)
                        .await
                        .unwrap_or_else(|e| panic!("{tag} {i}: {e}"));
                    let mut back = Vec::new();
                    c.retrieve(&file, 0, &mut back)
                        .await
                        .unwrap_or_else(|e| panic!("{tag} {i}: {e}"));
                    assert_eq!(back, data, "{tag} transfer {i}");
                }
                1 => {
                    let mut out = Vec::new();
                    c.retrieve("hello.txt", 0, &mut out)
                        .await
                        .unwrap_or_else(|e| panic!("{tag} {i}: {e}"));
                    assert_eq!(out, HELLO, "{tag} transfer {i}");
                }
                _ => {
                    let names = c
                        .nlst(None)
                        .await
                        .unwrap_or_else(|e| panic!("{tag} {i}: {e}"));
                    assert!(
                        names.iter().any(|n| n.as_str().ends_with("hello.txt")),
                        "{tag} {i}: {names:?}"
                    );
                }
            }
        }
        assert_eq!(
            c.size("hello.txt").await.unwrap(),
            HELLO.len() as u64,
            "{tag}"
        );
        c.modified("hello.txt").await.unwrap();
        c.mkdir("d").await.unwrap();
        c.rename("up0.bin", "d/moved.bin").await.unwrap();
        c.delete("d/moved.bin").await.unwrap();
        c.rmdir("d").await.unwrap();
        c.store("resume.bin", &mut &b"01234"[..], 0, false)
            .await
            .unwrap();
        c.store("resume.bin", &mut &b"56789"[..], 5, false)
            .await
            .unwrap();
        let mut tail = Vec::new();
        c.retrieve("resume.bin", 7, &mut tail).await.unwrap();
        assert_eq!(tail, b"789", "{tag}");
        c.store("resume.bin", &mut &b"+app"[..], 0, true)
            .await
            .unwrap();
        assert_eq!(c.size("resume.bin").await.unwrap(), 14, "{tag}");
        assert!(
            c.list(None)
                .await
                .unwrap()
                .iter()
                .any(|e| e.name == "hello.txt"),
            "{tag}"
        );
        if c.features().supports("MLST") {
            let facts = c.mlsd(None).await.unwrap();
            assert!(
                facts
                    .iter()
                    .any(|e| e.pathname == "hello.txt" && e.size() == Some(HELLO.len() as u64)),
                "{tag}"
            );
        }
        let renewals = c.session_renewals();
        eprintln!("{tag}: control connection renewed {renewals} times");
        if name != "proftpd" {
            assert_eq!(renewals, 0, "{tag}: the server renews tickets");
        }
        c.quit().await.unwrap();

        // Active mode: the server connects back to the client's listener.
        let mut o = options(p, versions);
        o.session.passive = false;
        let mut c = Client::connect(o)
            .await
            .unwrap_or_else(|e| panic!("{tag} active: {e}"));
        for i in 0..5u32 {
            let data: Vec<u8> = (0..(i * 70_001 + 3)).map(|j| (j ^ (i * 7)) as u8).collect();
            c.store("active.bin", &mut &data[..], 0, false)
                .await
                .unwrap_or_else(|e| panic!("{tag} active {i}: {e}"));
            let mut back = Vec::new();
            c.retrieve("active.bin", 0, &mut back)
                .await
                .unwrap_or_else(|e| panic!("{tag} active {i}: {e}"));
            assert_eq!(back, data, "{tag} active transfer {i}");
        }
        c.quit().await.unwrap();

        // PASV instead of EPSV.
        let mut o = options(p, versions);
        o.session.epsv = false;
        let mut c = Client::connect(o)
            .await
            .unwrap_or_else(|e| panic!("{tag} PASV: {e}"));
        for i in 0..3u32 {
            let data: Vec<u8> = (0..(i * 50_001 + 7)).map(|j| (j ^ (i * 5)) as u8).collect();
            c.store("pasv.bin", &mut &data[..], 0, false)
                .await
                .unwrap_or_else(|e| panic!("{tag} PASV {i}: {e}"));
            let mut back = Vec::new();
            c.retrieve("pasv.bin", 0, &mut back)
                .await
                .unwrap_or_else(|e| panic!("{tag} PASV {i}: {e}"));
            assert_eq!(back, data, "{tag} PASV transfer {i}");
        }
        c.quit().await.unwrap();

        // PROT C: data in clear (the servers here allow it), the control connection in TLS.
        let mut o = options(p, versions);
        o.session.protection = ProtectionLevel::Clear;
        let mut c = Client::connect(o)
            .await
            .unwrap_or_else(|e| panic!("{tag} PROT C: {e}"));
        assert!(c.is_secure());
        for i in 0..3u32 {
            let data: Vec<u8> = (0..(i * 100_003 + 5))
                .map(|j| (j ^ (i * 3)) as u8)
                .collect();
            c.store("clear.bin", &mut &data[..], 0, false)
                .await
                .unwrap_or_else(|e| panic!("{tag} PROT C {i}: {e}"));
            let mut back = Vec::new();
            c.retrieve("clear.bin", 0, &mut back)
                .await
                .unwrap_or_else(|e| panic!("{tag} PROT C {i}: {e}"));
            assert_eq!(back, data, "{tag} PROT C transfer {i}");
        }
        assert!(
            c.nlst(None)
                .await
                .unwrap()
                .iter()
                .any(|n| n.as_str().ends_with("clear.bin")),
            "{tag} PROT C"
        );
        c.quit().await.unwrap();
    }
}

const TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
const TLS12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
const BOTH: &[&[&rustls::SupportedProtocolVersion]] = &[TLS13, TLS12];

/// Names that are not UTF-8 (RFC 2640 came after these file systems): a Latin-1 name put
/// on disk beside the server is listed with its bytes (LIST, NLST, and MLSD where the
/// server has it), fetched back by them, and a file uploaded by bytes lands under exactly
/// those bytes, reachable by SIZE and DELE.
async fn names_as_bytes(p: &Peer, name: &str) {
    use std::os::unix::ffi::OsStrExt;
    let on_disk: &[u8] = b"caf\xe9 \xe0 la carte.txt";
    let content = b"latin-1 named\n";
    let local = p.home.join(std::ffi::OsStr::from_bytes(on_disk));
    std::fs::write(&local, content).unwrap();
    let mut c = Client::connect(options(p, TLS13)).await.unwrap();

    let listing = c.list(None).await.unwrap();
    let entry = listing
        .iter()
        .find(|e| e.name_bytes() == on_disk)
        .unwrap_or_else(|| panic!("{name}: LIST: {listing:?}"));
    assert_eq!(entry.name, "caf\u{fffd} \u{fffd} la carte.txt", "{name}");
    let mut back = Vec::new();
    c.retrieve(entry.name_bytes(), 0, &mut back).await.unwrap();
    assert_eq!(back, content, "{name}: RETR by the listed bytes");

    let names = c.nlst(None).await.unwrap();
    let listed = names
        .iter()
        .find(|n| n.as_bytes().ends_with(on_disk))
        .unwrap_or_else(|| panic!("{name}: NLST: {names:?}"));
    assert_eq!(
        c.size(listed).await.unwrap(),
        content.len() as u64,
        "{name}"
    );

    if c.features().supports("MLST") {
        let facts = c.mlsd(None).await.unwrap();
        let entry = facts
            .iter()
            .find(|e| e.pathname_bytes() == on_disk)
            .unwrap_or_else(|| panic!("{name}: MLSD: {facts:?}"));
        assert_eq!(entry.size(), Some(content.len() as u64), "{name}");
    }

    // A directory whose name is not UTF-8 is listed by its bytes (LIST, NLST, MLSD).
    let dir: &[u8] = b"r\xe9pertoire";
    let local_dir = p.home.join(std::ffi::OsStr::from_bytes(dir));
    std::fs::create_dir(&local_dir).unwrap();
    std::fs::write(local_dir.join("inside.txt"), content).unwrap();
    let names = c.nlst(dir).await.unwrap();
    assert!(
        names.iter().any(|n| n.as_bytes().ends_with(b"inside.txt")),
        "{name}: NLST of a Latin-1 directory: {names:?}"
    );
    let listing = c.list(dir).await.unwrap();
    assert!(
        listing.iter().any(|e| e.name == "inside.txt"),
        "{name}: LIST of a Latin-1 directory: {listing:?}"
    );
    if c.features().supports("MLST") {
        let facts = c.mlsd(dir).await.unwrap();
        assert!(
            facts.iter().any(|e| e.pathname_bytes() == b"inside.txt"),
            "{name}: MLSD of a Latin-1 directory: {facts:?}"
        );
    }
    std::fs::remove_dir_all(&local_dir).unwrap();

    let uploaded: &[u8] = b"t\xe9l\xe9charg\xe9.bin";
    c.store(uploaded, &mut &content[..], 0, false)
        .await
        .unwrap();
    let there = p.home.join(std::ffi::OsStr::from_bytes(uploaded));
    assert_eq!(
        std::fs::read(&there).unwrap(),
        content,
        "{name}: STOR by bytes"
    );
    c.delete(uploaded).await.unwrap();
    assert!(!there.exists(), "{name}: DELE by bytes");
    c.quit().await.unwrap();
    std::fs::remove_file(local).unwrap();
}

/// Implicit FTPS: transfers and a listing on TLS 1.3 and 1.2.
async fn implicit(p: &Peer, name: &str) {
    for versions in BOTH {
        let tag = format!("{name} implicit {:?}", versions[0].version);
        let mut o = options(p, versions);
        o.session.mode = ConnectionMode::Implicit;
        let mut c = Client::connect(o)
            .await
            .unwrap_or_else(|e| panic!("{tag}: {e}"));
        assert!(c.is_secure());
        for i in 0..10u32 {
            let data: Vec<u8> = (0..(i * 3001 + 1)).map(|j| (j ^ i) as u8).collect();
            c.store("imp.bin", &mut &data[..], 0, false)
                .await
                .unwrap_or_else(|e| panic!("{tag} {i}: {e}"));
            let mut back = Vec::new();
            c.retrieve("imp.bin", 0, &mut back)
                .await
                .unwrap_or_else(|e| panic!("{tag} {i}: {e}"));
            assert_eq!(back, data, "{tag} transfer {i}");
        }
        assert!(
            c.list(None)
                .await
                .unwrap()
                .iter()
                .any(|e| e.name == "hello.txt"),
            "{tag}"
        );
        c.quit().await.unwrap();
    }
}

/// Another runtime's client (through the conformance traits): 50 mixed transfers in
/// one session on TLS 1.3 and on TLS 1.2, every file compared, then a listing.
fn runtime_against(p: &Peer, client: &dyn ClientRuntime, name: &str) {
    for &versions in BOTH {
        let tag = format!("{} client, {name} {:?}", client.name(), versions[0].version);
        let mut s = client
            .connect(options(p, versions))
            .unwrap_or_else(|e| panic!("{tag}: {e}"));
        assert!(s.is_secure());
        for i in 0..50u32 {
            let file = format!("rt{}.bin", i % 5);
            let data: Vec<u8> = (0..(i * 3001 + 1)).map(|j| (j ^ (i * 13)) as u8).collect();
            match i % 3 {
                0 => {
                    s.store(&file, &data, 0, false)
                        .unwrap_or_else(|e| panic!("{tag} {i}: {e}"));
                    let back = s
                        .retrieve(&file, 0)
                        .unwrap_or_else(|e| panic!("{tag} {i}: {e}"));
                    assert_eq!(back, data, "{tag} transfer {i}");
                }
                1 => {
                    let back = s
                        .retrieve("hello.txt", 0)
                        .unwrap_or_else(|e| panic!("{tag} {i}: {e}"));
                    assert_eq!(back, HELLO, "{tag} transfer {i}");
                }
                _ => {
                    let names = s.nlst().unwrap_or_else(|e| panic!("{tag} {i}: {e}"));
                    assert!(
                        names.iter().any(|n| n.as_str().ends_with("hello.txt")),
                        "{tag}"
                    );
                }
            }
        }
        assert!(s.list().unwrap().iter().any(|n| n == "hello.txt"), "{tag}");
        s.quit().unwrap();
    }
}

// One test, so the servers run one after the other (the machine has two cores).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_against_vsftpd_proftpd_and_pure_ftpd() {
    if let Some(p) = vsftpd(false) {
        exercise(&p, "vsftpd", BOTH).await;
        names_as_bytes(&p, "vsftpd").await;
        tokio::task::block_in_place(|| runtime_against(&p, &Blocking, "vsftpd"));
        tokio::task::block_in_place(|| runtime_against(&p, &Smol::new(), "vsftpd"));
    }
    // Implicit FTPS (TLS from the first byte) on a second vsftpd, which also requires
    // protected data connections.
    if let Some(p) = vsftpd(true) {
        implicit(&p, "vsftpd").await;
        let mut o = options(&p, TLS13);
        o.session.mode = ConnectionMode::Implicit;
        o.session.protection = ProtectionLevel::Clear;
        let mut c = Client::connect(o).await.unwrap();
        let err = c
            .retrieve("hello.txt", 0, &mut Vec::new())
            .await
            .unwrap_err();
        eprintln!("vsftpd implicit, PROT C refused: {err}");
        assert!(
            matches!(
                &err,
                ftps_tokio::client::Error::Protocol(ftps_proto::client::ClientError::Refused(r))
                    if r.code().get() == 522
            ),
            "{err:?}"
        );
        c.noop().await.unwrap();
    }
    // A client certificate, required by vsftpd.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ftps test client CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let client_key = rcgen::KeyPair::generate().unwrap();
    let mut client_params = rcgen::CertificateParams::new(Vec::new()).unwrap();
    client_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ftps test client");
    let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();
    if let Some(p) = vsftpd_with(false, Some(&ca.pem())) {
        let err = Client::connect(options(&p, TLS13)).await.unwrap_err();
        eprintln!("vsftpd require_cert, no client certificate: {err}");
        for versions in BOTH {
            let mut o = options(&p, versions);
            o.identity = Some(
                ClientIdentity::from_pem(
                    client_cert.pem().as_bytes(),
                    client_key.serialize_pem().as_bytes(),
                )
                .unwrap(),
            );
            let mut c = Client::connect(o)
                .await
                .unwrap_or_else(|e| panic!("vsftpd require_cert {versions:?}: {e}"));
            for i in 0..4u32 {
                let data: Vec<u8> = (0..(i * 5003 + 1)).map(|j| (j ^ i) as u8).collect();
                c.store("cert.bin", &mut &data[..], 0, false).await.unwrap();
                let mut back = Vec::new();
                c.retrieve("cert.bin", 0, &mut back).await.unwrap();
                assert_eq!(back, data, "vsftpd require_cert transfer {i}");
            }
            c.quit().await.unwrap();
        }
    }
    if let Some(p) = proftpd(true) {
        implicit(&p, "proftpd").await;
    }
    if let Some(p) = proftpd(false) {
        // On TLS 1.3, ProFTPD 1.3.8 hands out no ticket on upload data connections, so the
        // client renews its control connection when the tickets run out.
        exercise(&p, "proftpd", BOTH).await;
        names_as_bytes(&p, "proftpd").await;
        // CCC: this ProFTPD requires TLS on the control connection, so it refuses (534);
        // the refusal is typed and the session stays protected and usable.
        let mut c = Client::connect(options(&p, TLS13)).await.unwrap();
        let err = c.clear_control_channel().await.unwrap_err();
        assert!(
            matches!(
                &err,
                ftps_tokio::client::Error::Protocol(ftps_proto::client::ClientError::Refused(r))
                    if r.code().get() == 534
            ),
            "{err:?}"
        );
        assert!(c.is_secure());
        let mut out = Vec::new();
        c.retrieve("hello.txt", 0, &mut out).await.unwrap();
        assert_eq!(out, HELLO);
        c.quit().await.unwrap();
    }
    if let Some(p) = pure_ftpd() {
        exercise(&p, "pure-ftpd", BOTH).await;
        names_as_bytes(&p, "pure-ftpd").await;
    }
}
