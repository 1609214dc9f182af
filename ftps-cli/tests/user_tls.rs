//! Issue 15: a user's own TLS policies from the users file (`:TLS` field) and the
//! configuration file (`control_tls`, `data_tls` in `[[users]]`): on a server that allows
//! plain FTP, `partner` must use TLS on both channels; `free` may go plain. Tried with curl.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

mod support;
use support::{free_port, hash, have, start};

use std::path::Path;
use std::process::{Command, Output};

const PASSWORD: &str = "tls-Pass-8812";

fn curl(dir: &Path, port: u16, user: &str, tls: &[&str], path: &str) -> Output {
    let login = format!("{user}:{PASSWORD}");
    let out = Command::new("timeout")
        .args([
            "30",
            "curl",
            "-sS",
            "--cacert",
            ".ftps/cert.pem",
            "-u",
            &login,
        ])
        .args(tls)
        .arg(format!("ftp://127.0.0.1:{port}{path}"))
        .current_dir(dir)
        .output()
        .unwrap();
    eprintln!(
        "curl {user} {tls:?} -> {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn check(dir: &Path, args: &[&str]) {
    std::fs::create_dir_all(dir.join("root/p")).unwrap();
    std::fs::write(dir.join("root/p/x.txt"), b"partner data").unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut all = vec![
        "--root",
        "root",
        "--no-implicit",
        "--explicit",
        &addr,
        "--control-tls",
        "allow",
        "--data-tls",
        "allow",
    ];
    all.extend_from_slice(args);
    let mut child = start(dir, &all, &[]);
    // partner, plain: refused at login (530); curl says so (67).
    let out = curl(dir, port, "partner", &[], "/x.txt");
    assert_eq!(out.status.code(), Some(67), "a plain login of partner");
    // partner, TLS on control but PROT C: the data connection is refused.
    let out = curl(dir, port, "partner", &["--ftp-ssl-control"], "/x.txt");
    assert!(!out.status.success(), "partner's data in clear");
    // partner, TLS on both: the file.
    let out = curl(dir, port, "partner", &["--ssl-reqd"], "/x.txt");
    assert!(out.status.success());
    assert_eq!(out.stdout, b"partner data");
    // free, plain on both: the server's own policies apply.
    let out = curl(dir, port, "free", &[], "/x.txt");
    assert!(out.status.success(), "a plain login of free");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_users_own_tls_policies_apply() {
    if !have("curl") {
        return;
    }
    let h = hash(PASSWORD);
    let dir = std::env::temp_dir().join(format!("ftps-user-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("users"),
        format!("partner:{h}:/p:all:-:control=require,data=require\nfree:{h}:/p\n"),
    )
    .unwrap();
    check(&dir, &["--users-file", "users"]);

    // The same from the configuration file.
    let conf = dir.join("conf");
    let _ = std::fs::remove_dir_all(&conf);
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("ftps.toml"),
        format!(
            "[[users]]\nname = \"partner\"\nhash = \"{h}\"\nhome = \"/p\"\n\
             control_tls = \"require\"\ndata_tls = \"require\"\n\
             [[users]]\nname = \"free\"\nhash = \"{h}\"\nhome = \"/p\"\n"
        ),
    )
    .unwrap();
    check(&conf, &["--config", "ftps.toml"]);

    // A TLS field that does not parse stops the start (a usage error, exit 2).
    std::fs::write(
        dir.join("bad"),
        format!("partner:{h}:/p:all:-:control=maybe\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .current_dir(&dir)
        .args(["serve", "--root", "root", "--users-file", "bad"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("control=maybe"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
