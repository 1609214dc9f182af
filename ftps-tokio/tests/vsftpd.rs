//! The tokio client against vsftpd with `require_ssl_reuse=YES`: 50 mixed transfers on
//! one session, on TLS 1.3 and on TLS 1.2, every file compared. The test installs nothing
//! itself: `cargo xtask ci` installs vsftpd and sets `FTPS_REQUIRE_PEERS=1`; it needs root
//! (vsftpd logs in system users). Without vsftpd or root it is skipped, unless required.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_proto::client::ConnectionMode;
use ftps_tokio::{Client, ClientOptions};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USER: &str = "ftpsinterop";
const PASSWORD: &str = "interop-Pass-7391";

fn available() -> bool {
    let vsftpd = std::path::Path::new("/usr/sbin/vsftpd").exists();
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    let ok = vsftpd && root;
    assert!(
        ok || std::env::var_os("FTPS_REQUIRE_PEERS").is_none(),
        "vsftpd (and root) required"
    );
    if !ok {
        eprintln!("vsftpd or root missing: skipped");
    }
    ok
}

struct Vsftpd {
    child: Child,
    dir: std::path::PathBuf,
    port: u16,
    ca: Vec<u8>,
}

impl Drop for Vsftpd {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start() -> Vsftpd {
    let dir = std::env::temp_dir().join(format!("ftps-vsftpd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    Command::new("chmod")
        .args(["555"])
        .arg(dir.join("empty"))
        .status()
        .unwrap();
    let home = format!("/home/{USER}");
    if !std::path::Path::new(&home).exists() {
        let status = Command::new("useradd")
            .args(["-m", "-s", "/bin/bash", USER])
            .status()
            .unwrap();
        assert!(status.success(), "useradd");
    }
    let mut chpasswd = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    chpasswd
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{USER}:{PASSWORD}\n").as_bytes())
        .unwrap();
    assert!(chpasswd.wait().unwrap().success());
    std::fs::write(format!("{home}/hello.txt"), "hello from vsftpd\n").unwrap();

    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        "listen=YES\nlisten_address=127.0.0.1\nlisten_port={port}\nbackground=NO\nlocal_enable=YES\nwrite_enable=YES\n\
         chroot_local_user=YES\nallow_writeable_chroot=YES\nsecure_chroot_dir={empty}\npam_service_name=vsftpd\n\
         pasv_min_port=31000\npasv_max_port=31999\nssl_enable=YES\nrsa_cert_file={cert}\nrsa_private_key_file={key}\n\
         ssl_ciphers=HIGH:!aNULL:!MD5\nrequire_ssl_reuse=YES\nforce_local_logins_ssl=YES\nforce_local_data_ssl=YES\n\
         seccomp_sandbox=NO\nlocal_umask=022\n",
        empty = dir.join("empty").display(),
        cert = dir.join("cert.pem").display(),
        key = dir.join("key.pem").display(),
    );
    std::fs::write(dir.join("vsftpd.conf"), config).unwrap();
    let child = Command::new("setsid")
        .arg("/usr/sbin/vsftpd")
        .arg(dir.join("vsftpd.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "vsftpd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Vsftpd {
        child,
        dir,
        port,
        ca: cert.pem().into_bytes(),
    }
}

fn options(v: &Vsftpd, versions: &[&'static rustls::SupportedProtocolVersion]) -> ClientOptions {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(&v.ca) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut o = ClientOptions::new("localhost", v.port, USER, PASSWORD);
    o.mode = ConnectionMode::ExplicitRequired;
    o.tls = Some(Arc::new(config));
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_transfers_against_vsftpd_with_reuse_required() {
    if !available() {
        return;
    }
    let v = start();
    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        let mut c = Client::connect(options(&v, versions)).await.unwrap();
        assert!(c.is_secure());
        for i in 0..50u32 {
            let name = format!("up{}.bin", i % 7);
            let data: Vec<u8> = (0..(i * 4099 + 1))
                .map(|j| (j.wrapping_mul(31) ^ i) as u8)
                .collect();
            match i % 3 {
                0 => {
                    c.store(&name, &mut &data[..], 0, false).await.unwrap();
                    let mut back = Vec::new();
                    c.retrieve(&name, 0, &mut back).await.unwrap();
                    assert_eq!(back, data, "transfer {i}");
                }
                1 => {
                    let mut out = Vec::new();
                    c.retrieve("hello.txt", 0, &mut out).await.unwrap();
                    assert_eq!(out, b"hello from vsftpd\n", "transfer {i}");
                }
                _ => {
                    let names = c.nlst(None).await.unwrap();
                    assert!(
                        names.iter().any(|n| n == "hello.txt"),
                        "transfer {i}: {names:?}"
                    );
                }
            }
        }
        // The other operations, against vsftpd's replies.
        assert_eq!(c.size("hello.txt").await.unwrap(), 18);
        c.modified("hello.txt").await.unwrap();
        c.mkdir("d").await.unwrap();
        c.rename("up0.bin", "d/moved.bin").await.unwrap();
        c.delete("d/moved.bin").await.unwrap();
        c.rmdir("d").await.unwrap();
        let partial = b"0123456789".to_vec();
        c.store("resume.bin", &mut &partial[..5], 0, false)
            .await
            .unwrap();
        c.store("resume.bin", &mut &partial[5..], 5, false)
            .await
            .unwrap();
        let mut all = Vec::new();
        c.retrieve("resume.bin", 0, &mut all).await.unwrap();
        assert_eq!(all, partial);
        let mut tail = Vec::new();
        c.retrieve("resume.bin", 7, &mut tail).await.unwrap();
        assert_eq!(tail, b"789");
        c.store("resume.bin", &mut &b"+app"[..], 0, true)
            .await
            .unwrap();
        assert_eq!(c.size("resume.bin").await.unwrap(), 14);
        assert!(
            c.list(None)
                .await
                .unwrap()
                .iter()
                .any(|e| e.name == "hello.txt" && e.size == Some(18))
        );
        c.quit().await.unwrap();
    }
}
