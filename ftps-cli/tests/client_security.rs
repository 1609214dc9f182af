//! The `ftps` client against a hostile server: the client findings of the outside security
//! review (issue 13), driving the binary against the scripted server of
//! `ftps-conformance` made hostile ([`Listing`]).
//!
//! - Finding 18: a server streaming LIST forever pushed `ftps ls -l` to 1.98 GB. `ls`
//!   now stops at `--max-listing` (default 64 MiB), exits 6 and says why.
//! - Finding 20: names carrying OSC and CSI sequences (and other control characters) were
//!   printed raw by `ftps ls`. Every piece of server text the command prints (names,
//!   `ls -l` lines, replies quoted in errors) now has its control characters escaped, on
//!   a terminal or in a pipe alike.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::scripted::{Ending, FILE, HOSTILE_NAMES, Listing, ScriptedServer};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The longest one command may run.
const TIME_LIMIT: Duration = Duration::from_secs(60);

/// What the kernel may hold between the server and the client once the client stops
/// reading (both sockets' buffers, TLS framing).
const SOCKET_SLACK: u64 = 24 << 20;

/// A directory of its own for one test, with the server's certificate as `ca.pem`.
fn workdir(name: &str, server: &ScriptedServer) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ftps-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), server.cert_pem()).unwrap();
    dir
}

fn ftps(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ftps"));
    cmd.current_dir(dir)
        .args(args)
        .args(["--ca-cert", "ca.pem", "--user", "anyone"])
        .env("FTPS_PASSWORD", "anything")
        .stdin(Stdio::null());
    cmd
}

/// Runs a command to its end within [`TIME_LIMIT`] (killed past it), sampling its peak
/// resident set (`VmHWM`) on the way; standard output is read only if `keep_stdout`.
fn run(mut cmd: Command, keep_stdout: bool) -> (Output, u64) {
    cmd.stdout(if keep_stdout {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let status = format!("/proc/{}/status", child.id());
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .map(|pipe| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut out);
            }
            out
        })
    })
    .collect();
    let deadline = Instant::now() + TIME_LIMIT;
    let mut peak = 0u64;
    let exit = loop {
        if let Some(kib) = std::fs::read_to_string(&status).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        }) {
            peak = peak.max(kib * 1024);
        }
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut outs = readers.into_iter().map(|r| r.join().unwrap());
    let output = Output {
        status: exit,
        stdout: outs.next().unwrap(),
        stderr: outs.next().unwrap(),
    };
    (output, peak)
}

fn url(server: &ScriptedServer, path: &str) -> String {
    format!("ftp://127.0.0.1:{}/{path}", server.addr().port())
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

/// Control characters in printed output: anything but LF that is C0, DEL or C1 (as a
/// byte, or as a character of the UTF-8 text), with where it is.
fn control_characters(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    text.char_indices()
        .filter(|(_, c)| c.is_control() && *c != '\n')
        .map(|(i, c)| {
            let from = text[..i].rfind('\n').map_or(0, |n| n + 1);
            format!("U+{:04X} in {:?}", u32::from(c), &text[from..i])
        })
        .collect()
}

/// The printable tail of each hostile name (after its last control character), which a
/// listing of them must still show.
fn visible_tails() -> Vec<&'static str> {
    HOSTILE_NAMES
        .iter()
        .map(|n| n.rsplit(|c: char| c.is_control()).next().unwrap())
        .collect()
}

fn check_listing(what: &str, out: &Output, lines: usize) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!(
        "{what} -> {}\nstdout:\n{stdout}stderr:\n{stderr}",
        out.status
    );
    assert_eq!(out.status.code(), Some(0), "{what}: {stderr}");
    let raw = control_characters(&out.stdout);
    assert!(
        raw.is_empty(),
        "{what} printed control characters raw: {raw:?}"
    );
    assert!(
        control_characters(&out.stderr).is_empty(),
        "{what}: stderr {stderr:?}"
    );
    assert!(!out.stdout.contains(&0x1b), "{what}: a raw ESC byte");
    assert_eq!(stdout.lines().count(), lines, "{what}: one line per name");
    for tail in visible_tails() {
        assert!(stdout.contains(tail), "{what}: {tail:?} is not shown");
    }
    assert!(
        stdout.contains("\\u{1b}]0;owned"),
        "{what}: the escape is shown, escaped, not dropped"
    );
}

#[test]
fn finding_20_server_text_is_printed_with_control_characters_escaped() {
    let server = ScriptedServer::start(Ending::CloseThenReply).unwrap();
    server.set_listing(Listing::Hostile);
    let dir = workdir("client-security-20", &server);
    assert!(
        HOSTILE_NAMES
            .iter()
            .all(|n| n.chars().any(char::is_control))
    );

    // Names (NLST), to a pipe.
    let (out, _) = run(ftps(&dir, &["ls", &url(&server, "")]), true);
    check_listing("ftps ls", &out, HOSTILE_NAMES.len());

    // `ls -l` lines (LIST).
    let (out, _) = run(ftps(&dir, &["ls", "-l", &url(&server, "")]), true);
    check_listing("ftps ls -l", &out, HOSTILE_NAMES.len());

    // A refusal whose text sets the terminal's title and colour, quoted in the error.
    let (out, _) = run(
        ftps(&dir, &["get", &url(&server, "missing.bin"), "local.bin"]),
        true,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("ftps get missing.bin -> {}\nstderr:\n{stderr}", out.status);
    assert_eq!(out.status.code(), Some(5), "refused: {stderr}");
    assert!(stderr.contains("550"), "the reply is quoted: {stderr}");
    assert!(stderr.contains("\\u{1b}]0;owned"), "escaped: {stderr}");
    let raw = control_characters(&out.stderr);
    assert!(raw.is_empty(), "the refusal was printed raw: {raw:?}");
    assert!(out.stdout.is_empty());
    assert!(!dir.join("local.bin").exists());

    // Names without control characters are printed as they are.
    server.set_listing(Listing::Fixed);
    let (out, _) = run(ftps(&dir, &["ls", &url(&server, "")]), true);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{FILE}\n")));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A transient refusal under `--retry`: the retry line and the final error escape the
/// server's text (an outside review found the retry line printing it raw: ESC, BEL, and a
/// line of the server's reading `ftps: ...` on its own), show the server's literal `\xE9`
/// with its backslash doubled (so it cannot pass for our escape of a byte), and name the
/// file once.
#[test]
fn a_retried_refusal_is_printed_escaped_and_cannot_forge_a_line() {
    let server = ScriptedServer::start(Ending::CloseThenReply).unwrap();
    server.set_listing(Listing::HostileBusy);
    let dir = workdir("client-security-retry", &server);
    let (out, _) = run(
        ftps(
            &dir,
            &[
                "get",
                "--retry",
                "1",
                &url(&server, "busy.bin"),
                "local.bin",
            ],
        ),
        true,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!(
        "ftps get --retry 1 busy.bin -> {}\nstderr:\n{stderr}",
        out.status
    );
    assert_eq!(out.status.code(), Some(5), "refused: {stderr}");
    let raw = control_characters(&out.stderr);
    assert!(raw.is_empty(), "printed raw: {raw:?}");
    assert!(
        stderr.contains("retrying on a fresh connection (0 left)"),
        "{stderr}"
    );
    assert!(
        !stderr.lines().any(|l| l.starts_with("ftps: forged")),
        "a line of the server's passed for ours: {stderr}"
    );
    assert!(stderr.contains("try \\\\xE9 later"), "{stderr}");
    assert!(!stderr.contains("busy.bin: busy.bin"), "{stderr}");
    assert!(!dir.join("local.bin").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn finding_18_ls_stops_a_listing_that_never_ends() {
    let server = ScriptedServer::start(Ending::CloseThenReply).unwrap();
    let dir = workdir("client-security-18", &server);

    // The default bound, 64 MiB: the server would send four times as much.
    let default = 64u64 << 20;
    server.set_listing(Listing::Endless { cap: 4 * default });
    let started = Instant::now();
    let (out, peak) = run(ftps(&dir, &["ls", "-l", &url(&server, "")]), false);
    let sent = server.listing_sent();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!(
        "ftps ls -l (endless) -> {} in {} ms; peak resident set {}; the server sent {}\n{stderr}",
        out.status,
        started.elapsed().as_millis(),
        mib(peak),
        mib(sent)
    );
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains(&format!("larger than {default} bytes")),
        "{stderr}"
    );
    assert!(
        sent <= default + SOCKET_SLACK,
        "the server could send {} (bound {})",
        mib(sent),
        mib(default)
    );
    // The listing's buffer (at most the bound), as much again while it grows, and the
    // program itself; without the bound: four times the bound, several times over.
    assert!(
        peak < 3 * default,
        "peak resident set {} (bound {})",
        mib(peak),
        mib(default)
    );
    assert!(server.log().iter().any(|l| l.contains("> ABOR")));

    // A bound given: names (NLST) too.
    server.set_listing(Listing::Endless { cap: 64 << 20 });
    let (out, _) = run(
        ftps(&dir, &["ls", "--max-listing", "1M", &url(&server, "")]),
        true,
    );
    let sent = server.listing_sent();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!(
        "ftps ls --max-listing 1M -> {}; sent {}\n{stderr}",
        out.status,
        mib(sent)
    );
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("larger than 1048576 bytes"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing listed");
    assert!(sent <= (1 << 20) + SOCKET_SLACK);

    // A listing within the bound is listed.
    server.set_listing(Listing::Endless { cap: 200_000 });
    let (out, _) = run(
        ftps(&dir, &["ls", "--max-listing", "1M", &url(&server, "")]),
        true,
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        200_000 / 16
    );

    // A size that is no size is a usage error.
    let (out, _) = run(
        ftps(&dir, &["ls", "--max-listing", "lots", &url(&server, "")]),
        true,
    );
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}
