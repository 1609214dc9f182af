//! Lists a directory and downloads one file.
//!
//! ```text
//! FTPS_PASSWORD=secret cargo run -p ftps-smol --example smol_client -- \
//!     ftp://alice@localhost:2121/ notes.txt cert.pem
//! ```
//!
//! The URL's scheme picks the mode (`ftp://`/`ftpes://` explicit FTPS, `ftps://`
//! implicit); the optional PEM file is a certificate to trust (else the platform's roots).

use ftps_smol::{Client, ClientOptions};
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    smol::block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or("usage: client URL [FILE] [CA.pem]")?;
    let file = args.next();
    let password = std::env::var("FTPS_PASSWORD").unwrap_or_default();
    let (mut options, dir) = ClientOptions::from_url(&url, password)?;
    if let Some(ca) = args.next() {
        options.tls = Some(Arc::new(ftps_backend::files::client_config_from_pem_file(
            ca.as_ref(),
        )?));
    }
    let mut c = Client::connect(options).await?;
    let dir = (!dir.is_empty()).then_some(dir.as_str());
    for entry in c.list(dir).await? {
        println!("{:>12} {}", entry.size.unwrap_or(0), entry.name);
    }
    if let Some(file) = file {
        let n = c
            .get_file(
                &file,
                file.rsplit('/').next().unwrap_or("download").as_ref(),
                false,
            )
            .await?;
        println!("downloaded {file}: {n} bytes");
    }
    c.quit().await?;
    Ok(())
}
