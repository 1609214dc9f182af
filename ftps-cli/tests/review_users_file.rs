//! Review of issue 15 (review15): `ftps serve --users-file` lines that started the server
//! with other rights than written. Finding 9: a HOME that is a symbolic link leading out of
//! --root was accepted (the user logged in, then every command was 550). Finding 10: a
//! per-directory rule naming no directory in the home (written from --root, say) restricted
//! nothing, silently: now a warning at start.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

mod support;
use support::hash;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ftps-r15-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("ftp-root")).unwrap();
    dir
}

/// Starts `ftps serve` in `dir` with `users`; returns whether it started, and its stderr.
fn serve(dir: &PathBuf, users: &str) -> (bool, String) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(dir.join("users"), users).unwrap();
    std::fs::set_permissions(dir.join("users"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .current_dir(dir)
        .args(["serve", "--users-file", "users", "--no-implicit"])
        .args(["--explicit", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut started = false;
    while Instant::now() < deadline {
        match lines.next() {
            Some(Ok(l)) if l.contains("Ctrl-C") => {
                started = true;
                break;
            }
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (started, err)
}

#[test]
fn a_home_leading_out_of_the_root_is_refused() {
    let d = dir("home-link");
    std::fs::create_dir_all(d.join("outside")).unwrap();
    std::os::unix::fs::symlink("../outside", d.join("ftp-root/escape")).unwrap();
    let (started, err) = serve(&d, &format!("esc:{}:/escape\n", hash("pw")));
    assert!(!started, "started with a home outside --root: {err}");
    assert!(err.contains("not a directory under --root"), "{err}");
    // A home that is a link staying inside the root is served as before.
    std::fs::create_dir_all(d.join("ftp-root/real")).unwrap();
    std::os::unix::fs::symlink("real", d.join("ftp-root/alias")).unwrap();
    let (started, err) = serve(&d, &format!("al:{}:/alias\n", hash("pw")));
    assert!(started, "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_rule_naming_no_directory_in_the_home_is_warned_about() {
    let d = dir("rule-dir");
    std::fs::create_dir_all(d.join("ftp-root/home/bob/private")).unwrap();
    // Written from --root: the rule names /home/bob/private within bob's home.
    let line = format!(
        "bob:{}:/home/bob:all;/home/bob/private=list;/private=list,download\n",
        hash("pw")
    );
    let (started, err) = serve(&d, &line);
    assert!(started, "{err}");
    assert!(
        err.contains("warning") && err.contains("/home/bob/private"),
        "{err}"
    );
    // The rule that names a directory of the home is not warned about.
    assert!(!err.contains("rule for /private "), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}
