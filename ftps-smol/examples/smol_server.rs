//! Serves a directory over explicit FTPS on 127.0.0.1:2121 with a fresh self-signed
//! certificate (written to `cert.pem` in the current directory, for clients to trust).
//!
//! ```text
//! FTPS_PASSWORD=secret cargo run -p ftps-smol --example smol_server -- ./some-dir
//! curl --ssl-reqd --cacert cert.pem -u alice:secret ftp://localhost:2121/
//! ```

use ftps_proto::server::TlsMode;
use ftps_smol::{LocalFs, Server, StaticUsers};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    smol::block_on(serve())
}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".into());
    let password = std::env::var("FTPS_PASSWORD").map_err(|_| "set FTPS_PASSWORD")?;
    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?.self_signed(&key)?;
    std::fs::write("cert.pem", cert.pem())?;
    let tls = ftps_proto::tls::server_config_from_pem(
        cert.pem().as_bytes(),
        key.serialize_pem().as_bytes(),
    )?;
    let users = StaticUsers::new().with_password("alice", &password);
    let server = Server::builder(LocalFs::new(&dir)?, users).tls(tls).build();
    let listener = smol::net::TcpListener::bind("127.0.0.1:2121").await?;
    println!("serving {dir} as alice on ftp://localhost:2121 (explicit FTPS; trust cert.pem)");
    server.serve(listener, TlsMode::Explicit).await?;
    Ok(())
}
