//! How the client trusts a server's certificate (`ServerTrust`), through real rustls
//! handshakes in memory: a self-signed certificate marked CA:TRUE (as `openssl req -x509`
//! makes them) is trusted when the user gave exactly it, and still refused when expired,
//! not yet valid, for another name, or merely similar; pins accept only their certificate,
//! within its dates and for its name; every refusal names the server's fingerprint. The
//! default trust is the platform's verifier, else (no system roots) the bundled roots.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_proto::tls::{
    BOTH, Fingerprint, ServerTrust, client_config_from_pem, client_config_with_trust, server_config,
};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, date_time_ymd};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::process::Command;
use std::sync::Arc;

/// A server certificate: its PEM, DER and key.
struct Made {
    pem: String,
    der: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

/// A self-signed certificate for `name`; `ca` marks it CA:TRUE; `years` bound its dates.
fn self_signed(name: &str, ca: bool, years: (i32, i32)) -> Made {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    params.not_before = date_time_ymd(years.0, 1, 1);
    params.not_after = date_time_ymd(years.1, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    Made {
        pem: cert.pem(),
        der: cert.der().clone(),
        key: PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    }
}

const VALID: (i32, i32) = (2020, 2090);

/// A private CA (its PEM) and a certificate it signed for `localhost` (with its key's
/// PEM).
fn private_ca_and_leaf() -> (String, Made, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let made = Made {
        pem: leaf.pem(),
        der: leaf.der().clone(),
        key: PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap(),
    };
    (ca.pem(), made, leaf_key.serialize_pem())
}

/// Runs a handshake in memory; the client's error, if any.
fn handshake(client: rustls::ClientConfig, server: &Made, name: &str) -> Result<(), String> {
    let server_cfg = server_config(vec![server.der.clone()], server.key.clone_key()).unwrap();
    let mut c = rustls::ClientConnection::new(
        Arc::new(client),
        ServerName::try_from(name.to_owned()).unwrap(),
    )
    .unwrap();
    let mut s = rustls::ServerConnection::new(Arc::new(server_cfg)).unwrap();
    for _ in 0..20 {
        let mut buf = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        let mut input = &buf[..];
        while !input.is_empty() {
            s.read_tls(&mut input).unwrap();
        }
        // The server's own errors (an alert from the client) are not what is tested.
        let _ = s.process_new_packets();
        let mut buf = Vec::new();
        while s.wants_write() {
            s.write_tls(&mut buf).unwrap();
        }
        let mut input = &buf[..];
        while !input.is_empty() {
            c.read_tls(&mut input).unwrap();
        }
        c.process_new_packets().map_err(|e| e.to_string())?;
        if !c.is_handshaking() && !s.is_handshaking() {
            return Ok(());
        }
    }
    Err("the handshake did not finish".into())
}

fn from_pem(pem: &str) -> rustls::ClientConfig {
    client_config_from_pem(pem.as_bytes(), BOTH).unwrap()
}

fn pinned(pins: Vec<Fingerprint>) -> rustls::ClientConfig {
    client_config_with_trust(ServerTrust::pinned(pins), BOTH).unwrap()
}

fn fingerprint(made: &Made) -> Fingerprint {
    Fingerprint::of(&ftps_proto::tls::provider(), &made.der).unwrap()
}

#[test]
fn a_ca_true_self_signed_certificate_given_as_trusted_is_accepted_on_both_versions() {
    let server = self_signed("localhost", true, VALID);
    handshake(from_pem(&server.pem), &server, "localhost").unwrap();
    let tls12 = client_config_from_pem(server.pem.as_bytes(), &[&rustls::version::TLS12]).unwrap();
    handshake(tls12, &server, "localhost").unwrap();
    // Without the exception webpki refuses it: the same roots through rustls' own verifier.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.der.clone()).unwrap();
    let plain = rustls::ClientConfig::builder_with_provider(ftps_proto::tls::provider())
        .with_protocol_versions(BOTH)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let refused = handshake(plain, &server, "localhost").unwrap_err();
    assert!(refused.contains("CaUsedAsEndEntity"), "{refused}");
}

#[test]
fn a_given_ca_true_certificate_is_still_checked_for_dates_name_and_identity() {
    let expired = self_signed("localhost", true, (2001, 2002));
    let e = handshake(from_pem(&expired.pem), &expired, "localhost").unwrap_err();
    assert!(e.contains("certificate expired"), "{e}");
    assert!(e.contains(&fingerprint(&expired).to_string()), "{e}");

    let future = self_signed("localhost", true, (2080, 2090));
    let e = handshake(from_pem(&future.pem), &future, "localhost").unwrap_err();
    assert!(e.contains("not valid yet"), "{e}");

    let server = self_signed("localhost", true, VALID);
    let e = handshake(from_pem(&server.pem), &server, "ftp.example.com").unwrap_err();
    assert!(e.contains("not valid for name"), "{e}");

    // Another certificate with the same name (another key) is not the one given.
    let other = self_signed("localhost", true, VALID);
    let e = handshake(from_pem(&server.pem), &other, "localhost").unwrap_err();
    assert!(e.contains(&fingerprint(&other).to_string()), "{e}");
}

#[test]
fn a_private_ca_still_works_and_its_leaf_must_name_the_host() {
    let (ca, server, _) = private_ca_and_leaf();
    handshake(from_pem(&ca), &server, "localhost").unwrap();
    assert!(handshake(from_pem(&ca), &server, "other.example").is_err());
    // A pinned leaf from a CA: no chain needed.
    handshake(pinned(vec![fingerprint(&server)]), &server, "localhost").unwrap();
}

#[test]
fn pins_accept_only_their_certificate_within_its_dates_and_name() {
    let server = self_signed("localhost", true, VALID);
    let plain = self_signed("localhost", false, VALID);
    handshake(pinned(vec![fingerprint(&server)]), &server, "localhost").unwrap();
    handshake(
        pinned(vec![fingerprint(&server), fingerprint(&plain)]),
        &plain,
        "localhost",
    )
    .unwrap();

    let e = handshake(pinned(vec![fingerprint(&plain)]), &server, "localhost").unwrap_err();
    assert!(e.contains("not one of the pinned"), "{e}");
    assert!(e.contains(&fingerprint(&server).to_string()), "{e}");

    for ca in [true, false] {
        let expired = self_signed("localhost", ca, (2001, 2002));
        let e = handshake(pinned(vec![fingerprint(&expired)]), &expired, "localhost").unwrap_err();
        assert!(e.contains("certificate expired"), "{e}");
        let future = self_signed("localhost", ca, (2080, 2090));
        let e = handshake(pinned(vec![fingerprint(&future)]), &future, "localhost").unwrap_err();
        assert!(e.contains("not valid yet"), "{e}");
    }
    let e = handshake(pinned(vec![fingerprint(&server)]), &server, "elsewhere").unwrap_err();
    assert!(e.contains("not valid for name"), "{e}");
}

/// The certificate as FTPS admins make it: `openssl req -x509` with its defaults.
#[test]
fn an_openssl_req_x509_certificate_given_as_trusted_is_accepted() {
    let dir = std::env::temp_dir().join(format!("ftps-trust-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output();
    let Ok(out) = made else {
        assert!(
            std::env::var_os("FTPS_REQUIRE_PEERS").is_none(),
            "openssl is required"
        );
        eprintln!("openssl not installed: skipped");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = std::fs::read_to_string(dir.join("cert.pem")).unwrap();
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-fingerprint", "-sha256", "-in"])
        .arg(dir.join("cert.pem"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(text.contains("CA:TRUE"), "{text}");
    use rustls::pki_types::pem::PemObject;
    let server = Made {
        der: CertificateDer::from_pem_slice(pem.as_bytes()).unwrap(),
        key: PrivateKeyDer::from_pem_file(dir.join("key.pem")).unwrap(),
        pem,
    };
    handshake(from_pem(&server.pem), &server, "localhost").unwrap();
    let from_file =
        ftps_backend::files::client_config_from_pem_file(&dir.join("cert.pem")).unwrap();
    handshake(from_file, &server, "localhost").unwrap();
    // The fingerprint as openssl prints it pins the same certificate.
    let line = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("sha256 Fingerprint=")
                .or_else(|| l.strip_prefix("SHA256 Fingerprint="))
        })
        .unwrap();
    let pin: Fingerprint = line.parse().unwrap();
    assert_eq!(pin, fingerprint(&server));
    handshake(pinned(vec![pin]), &server, "localhost").unwrap();
    // As the vsftpd and ProFTPD guides make them: the host in the common name only.
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        ])
        .args(["-subj", "/CN=localhost"])
        .arg("-keyout")
        .arg(dir.join("cn-key.pem"))
        .arg("-out")
        .arg(dir.join("cn.pem"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let pem = std::fs::read_to_string(dir.join("cn.pem")).unwrap();
    let cn = Made {
        der: CertificateDer::from_pem_slice(pem.as_bytes()).unwrap(),
        key: PrivateKeyDer::from_pem_file(dir.join("cn-key.pem")).unwrap(),
        pem,
    };
    handshake(from_pem(&cn.pem), &cn, "localhost").unwrap();
    assert!(handshake(from_pem(&cn.pem), &cn, "127.0.0.1").is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A self-signed CA:TRUE certificate with the host in its common name only, no
/// subjectAltName: `openssl req -x509 -subj /CN=host`, as the vsftpd and ProFTPD guides
/// make them.
fn cn_only(cn: &str) -> Made {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let cert = params.self_signed(&key).unwrap();
    Made {
        pem: cert.pem(),
        der: cert.der().clone(),
        key: PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    }
}

#[test]
fn a_certificate_trusted_as_itself_may_name_the_host_in_its_common_name_only() {
    let server = cn_only("localhost");
    handshake(from_pem(&server.pem), &server, "localhost").unwrap();
    handshake(pinned(vec![fingerprint(&server)]), &server, "localhost").unwrap();
    let e = handshake(from_pem(&server.pem), &server, "other.example").unwrap_err();
    assert!(e.contains("not valid for name"), "{e}");
    let by_ip = cn_only("127.0.0.1");
    handshake(from_pem(&by_ip.pem), &by_ip, "127.0.0.1").unwrap();
    assert!(handshake(from_pem(&by_ip.pem), &by_ip, "localhost").is_err());

    // Through a chain, a certificate must carry a subjectAltName (no common-name rule).
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf_params.distinguished_name = rcgen::DistinguishedName::new();
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    let leaf = Made {
        pem: leaf.pem(),
        der: leaf.der().clone(),
        key: PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap(),
    };
    assert!(handshake(from_pem(&ca.pem()), &leaf, "localhost").is_err());
}

#[test]
fn a_certificate_from_a_ca_given_as_itself_is_trusted_without_its_ca() {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "the leaf");
    let leaf = params.signed_by(&leaf_key, &issuer).unwrap();
    let leaf = Made {
        pem: leaf.pem(),
        der: leaf.der().clone(),
        key: PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap(),
    };
    handshake(from_pem(&leaf.pem), &leaf, "localhost").unwrap();
    assert!(handshake(from_pem(&leaf.pem), &leaf, "other.example").is_err());
    // Expired, it is refused all the same.
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_before = date_time_ymd(2001, 1, 1);
    params.not_after = date_time_ymd(2002, 1, 1);
    let old = params.signed_by(&leaf_key, &issuer).unwrap();
    let old = Made {
        pem: old.pem(),
        der: old.der().clone(),
        key: PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap(),
    };
    let e = handshake(from_pem(&old.pem), &old, "localhost").unwrap_err();
    assert!(e.contains("certificate expired"), "{e}");
}

/// The default trust (`files::platform_trust`), in a child process of this test binary
/// whose `SSL_CERT_FILE` and `SSL_CERT_DIR` (which the system's trust store is read from
/// on Linux) hold a private CA, then nothing: the CA's server is trusted through the
/// platform's verifier; with no system roots the bundled Mozilla roots are used, which
/// refuse it and name its fingerprint.
#[test]
fn the_default_trust_is_the_platform_else_the_bundled_roots() {
    let dir = std::env::temp_dir().join(format!("ftps-platform-trust-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    let (ca, leaf, leaf_key) = private_ca_and_leaf();
    std::fs::write(dir.join("ca.pem"), ca).unwrap();
    std::fs::write(dir.join("none.pem"), "").unwrap();
    std::fs::write(dir.join("leaf.pem"), leaf.pem).unwrap();
    std::fs::write(dir.join("leaf.key"), leaf_key).unwrap();
    for (file, case) in [("ca.pem", "platform"), ("none.pem", "bundled")] {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "default_trust_in_a_child"])
            .env("SSL_CERT_FILE", dir.join(file))
            .env("SSL_CERT_DIR", dir.join("empty"))
            .env("FTPS_TRUST_CASE", case)
            .env("FTPS_TRUST_DIR", &dir)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{case}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "run by the_default_trust_is_the_platform_else_the_bundled_roots, in a child"]
fn default_trust_in_a_child() {
    use ftps_backend::files::{TrustSource, platform_trust};
    use rustls::pki_types::pem::PemObject;
    let (Ok(case), Ok(dir)) = (
        std::env::var("FTPS_TRUST_CASE"),
        std::env::var("FTPS_TRUST_DIR"),
    ) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let pem = std::fs::read_to_string(dir.join("leaf.pem")).unwrap();
    let server = Made {
        der: CertificateDer::from_pem_slice(pem.as_bytes()).unwrap(),
        pem,
        key: PrivateKeyDer::from_pem_file(dir.join("leaf.key")).unwrap(),
    };
    let (trust, source) = platform_trust();
    let shook = handshake(
        client_config_with_trust(trust, BOTH).unwrap(),
        &server,
        "localhost",
    );
    match case.as_str() {
        "platform" => {
            assert_eq!(source, TrustSource::Platform);
            shook.unwrap();
        }
        _ => {
            assert_eq!(source, TrustSource::Bundled);
            let refused = shook.unwrap_err();
            assert!(refused.contains("fingerprint is sha256:"), "{refused}");
        }
    }
}
