//! Issue 15: `ftps serve --config FILE` (TOML), its users, the `FTPS_*` variables that
//! win over it, and a bad file stopping the start with one error naming file, line and
//! key. The server is tried with curl (skipped without it unless `FTPS_REQUIRE_PEERS`).

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

mod support;
use support::{free_port, hash, have, start};

use std::path::{Path, PathBuf};
use std::process::Command;

fn fresh(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ftps-config-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn curl(ca: &Path, port: u16, user: &str, path: &str, args: &[&str]) -> (i32, Vec<u8>) {
    let url = format!("ftp://127.0.0.1:{port}{path}");
    let out = Command::new("timeout")
        .args(["60", "curl", "-sS", "--ssl-reqd", "--cacert"])
        .arg(ca)
        .args(["-u", user])
        .args(args)
        .arg(&url)
        .output()
        .unwrap();
    eprintln!(
        "curl {url} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), out.stdout)
}

#[test]
fn a_configuration_file_with_users_serves() {
    if !have("curl") {
        return;
    }
    let dir = fresh("serve");
    let etc = dir.join("etc");
    std::fs::create_dir_all(dir.join("srv/alice")).unwrap();
    std::fs::create_dir_all(dir.join("srv/shared")).unwrap();
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(dir.join("srv/shared/report.csv"), b"a,b\n").unwrap();
    let port = free_port();
    // Relative paths are the file's directory's: `../srv` is dir/srv.
    let config = format!(
        r#"
        root = "../srv"
        state_dir = "../state"
        explicit = "127.0.0.1:{port}"
        implicit = false
        passive_ports = "40000-40100"

        [[users]]
        name = "alice"
        hash = "{}"
        home = "/alice"
        quota = "1K"

        [[users]]
        name = "bob"
        hash = "{}"
        home = "/shared"
        permissions = "list,download"
        "#,
        hash("alice-pw"),
        hash("bob-pw")
    );
    std::fs::write(etc.join("ftps.toml"), config).unwrap();
    let mut server = start(&dir, &["--config", "etc/ftps.toml"], &[]);
    let ca = dir.join("state/cert.pem");
    let up = dir.join("up.txt");
    std::fs::write(&up, b"hello").unwrap();
    let up = up.to_str().unwrap();
    assert_eq!(
        curl(&ca, port, "alice:alice-pw", "/a.txt", &["-T", up]).0,
        0
    );
    assert_eq!(
        std::fs::read(dir.join("srv/alice/a.txt")).unwrap(),
        b"hello"
    );
    let (code, got) = curl(&ca, port, "bob:bob-pw", "/report.csv", &[]);
    assert_eq!((code, got.as_slice()), (0, &b"a,b\n"[..]));
    assert_eq!(curl(&ca, port, "bob:bob-pw", "/x.txt", &["-T", up]).0, 25);
    // alice's quota (1 KiB): 2 KiB is refused and leaves nothing.
    let big = dir.join("big.bin");
    std::fs::write(&big, vec![0u8; 2048]).unwrap();
    let big = big.to_str().unwrap();
    assert_eq!(
        curl(&ca, port, "alice:alice-pw", "/big.bin", &["-T", big]).0,
        70
    );
    assert!(!dir.join("srv/alice/big.bin").exists());
    let _ = server.kill();
    let _ = server.wait();

    // A variable wins over the file: FTPS_EXPLICIT moves the listener.
    let other = free_port();
    let mut server = start(
        &dir,
        &["--config", "etc/ftps.toml"],
        &[("FTPS_EXPLICIT", &format!("127.0.0.1:{other}"))],
    );
    let (code, _) = curl(&ca, other, "bob:bob-pw", "/report.csv", &[]);
    assert_eq!(code, 0);
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_configuration_file_names_file_line_and_key() {
    let dir = fresh("bad");
    std::fs::create_dir_all(dir.join("ftp-root/alice")).unwrap();
    let h = hash("x-pw");
    for (text, says) in [
        (
            "root = \"r\"\nroott = \"x\"\n",
            "ftps.toml, line 2: unknown field `roott`",
        ),
        (
            "explicit = \"nowhere\"\n",
            "ftps.toml, line 1: an address such as",
        ),
        (
            "\n\ncontrol_tls = \"sometimes\"\n",
            "ftps.toml, line 3: unknown variant `sometimes`",
        ),
        (
            "passive_ports = \"9-1\"\n",
            "ftps.toml, line 1: passive_ports: expected 1 <= LO <= HI",
        ),
        ("explicit = true\n", "explicit = true: give an address"),
        (
            &format!(
                "\n[[users]]\nname = \"alice\"\nhash = \"{h}\"\npermissions = \"list,write\"\n"
            ),
            "ftps.toml, line 2: [[users]] \"alice\": unknown permission \"write\"",
        ),
        (
            &format!("[[users]]\nname = \"alice\"\nhash = \"{h}\"\nhome = \"/nowhere\"\n"),
            "ftps.toml, line 1: [[users]] \"alice\": the home of \"alice\"",
        ),
        ("[[users]]\nname = \"alice\"\n", "missing field `hash`"),
    ] {
        std::fs::write(dir.join("ftps.toml"), text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_ftps"))
            .current_dir(&dir)
            .args(["serve", "--config", "ftps.toml"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "started with {text:?}: {err}");
        assert!(err.contains(says), "{says:?} not in {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
