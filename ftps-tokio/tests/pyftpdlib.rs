//! The tokio client against pyftpdlib's TLS_FTPHandler (TLS required on control and data),
//! passive and active, PROT P and C, TLS 1.3 and 1.2, MLSD, every file compared.
//! `cargo xtask ci` makes a virtualenv with pyftpdlib and pyOpenSSL and passes its python in
//! `FTPS_PYTHON`; without it the test is skipped, unless `FTPS_REQUIRE_PEERS` is set.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_proto::ProtectionLevel;
use ftps_proto::client::ConnectionMode;
use ftps_tokio::{Client, ClientOptions};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

const SERVER: &str = r#"
import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import TLS_FTPHandler
from pyftpdlib.servers import FTPServer
root, port, cert, key = sys.argv[1:5]
auth = DummyAuthorizer()
auth.add_user("alice", "wonderland", root, perm="elradfmwMT")
handler = TLS_FTPHandler
handler.certfile = cert
handler.keyfile = key
handler.authorizer = auth
handler.tls_control_required = True
handler.tls_data_required = False
server = FTPServer(("127.0.0.1", int(port)), handler)
print("ready", flush=True)
server.serve_forever()
"#;

fn python() -> Option<String> {
    let candidate = std::env::var("FTPS_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&candidate)
        .args(["-c", "import pyftpdlib, OpenSSL"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok || std::env::var_os("FTPS_REQUIRE_PEERS").is_none(),
        "pyftpdlib is required but not installed"
    );
    if !ok {
        eprintln!("pyftpdlib not installed: skipped");
    }
    ok.then_some(candidate)
}

struct Py {
    child: Child,
    dir: std::path::PathBuf,
    port: u16,
    ca: Vec<u8>,
}

impl Drop for Py {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start(python: &str) -> Py {
    let dir = std::env::temp_dir().join(format!("ftps-pyftpdlib-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("root")).unwrap();
    std::fs::write(dir.join("root/hello.txt"), "hello from pyftpdlib\n").unwrap();
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
    let mut child = Command::new(python)
        .args(["-c", SERVER])
        .arg(dir.join("root"))
        .arg(port.to_string())
        .arg(dir.join("cert.pem"))
        .arg(dir.join("key.pem"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    Py {
        child,
        dir,
        port,
        ca: cert.pem().into_bytes(),
    }
}

fn options(p: &Py, versions: &[&'static rustls::SupportedProtocolVersion]) -> ClientOptions {
    let roots = ftps_tokio::client::roots_from_pem(&p.ca).unwrap();
    let config = ftps_tokio::client::client_config_with_versions(roots, versions).unwrap();
    let mut o = ClientOptions::new("localhost", p.port, "alice", "wonderland").unwrap();
    o.session.mode = ConnectionMode::ExplicitRequired;
    o.tls = Some(Arc::new(config));
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_against_pyftpdlib() {
    let Some(python) = python() else { return };
    let p = start(&python);
    let cases: [(&[&rustls::SupportedProtocolVersion], bool, ProtectionLevel); 4] = [
        (&[&rustls::version::TLS13], true, ProtectionLevel::Private),
        (&[&rustls::version::TLS12], true, ProtectionLevel::Private),
        (&[&rustls::version::TLS13], false, ProtectionLevel::Private),
        (&[&rustls::version::TLS13], true, ProtectionLevel::Clear),
    ];
    for (i, (versions, passive, protection)) in cases.into_iter().enumerate() {
        let mut o = options(&p, versions);
        o.session.passive = passive;
        o.session.protection = protection;
        let mut c = Client::connect(o).await.unwrap();
        assert!(c.features().supports("MLST"));
        for j in 0..10u32 {
            let data: Vec<u8> = (0..(j * 10_007 + 1)).map(|k| (k ^ j) as u8).collect();
            let name = format!("f{i}-{j}.bin");
            c.store(&name, &mut &data[..], 0, false).await.unwrap();
            let mut back = Vec::new();
            c.retrieve(&name, 0, &mut back).await.unwrap();
            assert_eq!(back, data, "case {i} transfer {j}");
        }
        let facts = c.mlsd(None).await.unwrap();
        assert!(
            facts
                .iter()
                .any(|e| e.pathname == "hello.txt" && e.size() == Some(21))
        );
        assert_eq!(c.size("hello.txt").await.unwrap(), 21);
        c.modified("hello.txt").await.unwrap();
        let dir = format!("d{i}");
        c.mkdir(&dir).await.unwrap();
        c.rename(&format!("f{i}-0.bin"), &format!("{dir}/moved.bin"))
            .await
            .unwrap();
        c.delete(&format!("{dir}/moved.bin")).await.unwrap();
        c.rmdir(&dir).await.unwrap();
        c.store(&format!("r{i}.bin"), &mut &b"01234"[..], 0, false)
            .await
            .unwrap();
        c.store(&format!("r{i}.bin"), &mut &b"56789"[..], 5, false)
            .await
            .unwrap();
        c.store(&format!("r{i}.bin"), &mut &b"+"[..], 0, true)
            .await
            .unwrap();
        let mut tail = Vec::new();
        c.retrieve(&format!("r{i}.bin"), 7, &mut tail)
            .await
            .unwrap();
        assert_eq!(tail, b"789+");
        c.quit().await.unwrap();
    }
}
