//! `ftps serve` against real clients: curl, lftp and Python's ftplib, explicit and
//! implicit, TLS 1.2 and 1.3, with every transferred file compared byte for byte.
//! `cargo xtask ci` installs the clients and sets `FTPS_REQUIRE_PEERS=1`, which turns a
//! missing client into a failure instead of a skip.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::peers::have;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Served {
    child: Child,
    dir: PathBuf,
    explicit: u16,
    implicit: u16,
}

impl Served {
    /// Starts `ftps serve` in a fresh directory with user alice:wonderland and `flags`.
    fn start(name: &str, flags: &[&str]) -> Self {
        Self::start_in(&std::env::temp_dir(), name, flags)
    }

    /// [`start`](Self::start), its directory (and so the served root) under `base`.
    fn start_in(base: &Path, name: &str, flags: &[&str]) -> Self {
        let dir = base.join(format!("ftps-interop-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("ftp-root")).unwrap();
        let (explicit, implicit) = (free_port(), free_port());
        let mut child = Command::new(env!("CARGO_BIN_EXE_ftps"))
            .current_dir(&dir)
            .args(["serve", "--user", "alice:wonderland"])
            .args([
                "--explicit",
                &format!("127.0.0.1:{explicit}"),
                "--implicit",
                &format!("127.0.0.1:{implicit}"),
            ])
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "server did not start");
            match lines.next() {
                Some(Ok(l)) if l.contains("Ctrl-C") => break,
                Some(_) => {}
                None => panic!("server exited"),
            }
        }
        Self {
            child,
            dir,
            explicit,
            implicit,
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.join("ftp-root")
    }

    fn ca(&self) -> String {
        self.dir.join(".ftps/cert.pem").to_str().unwrap().to_owned()
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let out = Command::new("timeout")
            .arg("60")
            .arg(program)
            .args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap();
        eprintln!(
            "{program} {args:?} -> {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn lftp(&self, implicit: bool, settings: &str, script: &str) -> Output {
        let url = if implicit {
            format!("ftps://127.0.0.1:{}", self.implicit)
        } else {
            format!("ftp://127.0.0.1:{}", self.explicit)
        };
        let commands = format!(
            "set ssl:ca-file {}; set ftp:ssl-force true; set net:max-retries 1; set net:timeout 10; {settings}; {script}; bye",
            self.ca()
        );
        self.run("lftp", &["-u", "alice,wonderland", "-e", &commands, &url])
    }

    fn python(&self, script: &str) -> Output {
        let prelude = format!(
            "import ftplib, ssl, io, sys\nctx = ssl.create_default_context(cafile={:?})\nPORT = {}\n",
            self.ca(),
            self.explicit
        );
        self.run("python3", &["-c", &format!("{prelude}{script}")])
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tree with binary files, an empty file, a UTF-8 name and a name with spaces.
fn make_tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("a/b")).unwrap();
    for i in 1..=12u32 {
        let bytes: Vec<u8> = (0..i * 7919)
            .map(|j| (j.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(dir.join(format!("f{i}.bin")), bytes).unwrap();
    }
    std::fs::write(dir.join("a/empty.txt"), b"").unwrap();
    std::fs::write(dir.join("a/b/日本語 name.txt"), "nihongo\n").unwrap();
}

fn same_tree(a: &Path, b: &Path) {
    let mut left: Vec<_> = walk(a);
    let mut right: Vec<_> = walk(b);
    left.sort();
    right.sort();
    assert_eq!(left.len(), right.len(), "{left:?} vs {right:?}");
    for ((pa, ca), (pb, cb)) in left.iter().zip(&right) {
        assert_eq!(pa, pb);
        assert!(ca == cb, "{pa:?} differs");
    }
}

fn walk(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out
}

#[test]
fn lftp_mirror_both_ways_tls13_and_tls12() {
    if !have("lftp") {
        return;
    }
    let s = Served::start("lftp", &["--active"]);
    let local = s.dir.join("local");
    make_tree(&local);
    for (i, (tls, passive)) in [
        ("", true),
        ("set ssl:priority NORMAL:-VERS-TLS1.3", true),
        ("", false),
        // TLS 1.2 without tickets: every data connection resumes the control
        // connection's session by its ID, from the session's own store.
        ("set ssl:priority NORMAL:-VERS-TLS1.3:%NO_TICKETS", true),
    ]
    .iter()
    .enumerate()
    {
        let settings = format!(
            "set ftp:ssl-protect-data true; set ftp:passive-mode {}; {tls}",
            if *passive { "on" } else { "off" }
        );
        let up = format!("up{i}");
        ok(&s.lftp(false, &settings, &format!("mirror -R local {up}")));
        same_tree(&local, &s.root().join(&up));
        let back = format!("back{i}");
        ok(&s.lftp(i == 1, &settings, &format!("mirror {up} {back}")));
        same_tree(&local, &s.dir.join(&back));
    }
}

#[test]
fn lftp_without_data_protection_when_allowed() {
    if !have("lftp") {
        return;
    }
    // Allowed: works in the clear.
    let s = Served::start("lftp-clear", &["--data-tls", "allow"]);
    std::fs::write(s.root().join("x.txt"), "x").unwrap();
    assert!(ok(&s.lftp(false, "set ftp:ssl-protect-data false", "cls -1")).contains("x.txt"));
}

#[test]
fn python_ftplib_gets_522_with_the_reuse_check_and_works_without() {
    if !have("python3") {
        return;
    }
    let s = Served::start("ftplib-522", &[]);
    std::fs::write(s.root().join("x.txt"), "x").unwrap();
    let out = s.python(
        "f = ftplib.FTP_TLS(context=ctx, timeout=10)\nf.connect('127.0.0.1', PORT)\nf.auth(); f.login('alice', 'wonderland'); f.prot_p()\n\
         try:\n    f.nlst()\nexcept ftplib.error_perm as e:\n    print(str(e)[:3])\n\
         print(f.voidcmd('NOOP')[:3])\n\
         try:\n    f.retrbinary('RETR x.txt', print)\nexcept ftplib.error_perm as e:\n    print(str(e)[:3])\n\
         print(f.voidcmd('NOOP')[:3])\n",
    );
    assert_eq!(
        ok(&out),
        "522\n200\n522\n200\n",
        "ftplib does not resume TLS sessions: a clean 522 for the transfer itself, and the control stays in step"
    );

    let s = Served::start(
        "ftplib",
        &["--no-session-reuse-check", "--data-tls", "allow"],
    );
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(s.dir.join("payload.bin"), &payload).unwrap();
    let script = r#"
f = ftplib.FTP_TLS(context=ctx, timeout=10)
f.connect('127.0.0.1', PORT)
f.auth(); f.login('alice', 'wonderland'); f.prot_p()
with open('payload.bin', 'rb') as fh:
    f.storbinary('STOR up load.bin', fh)
buf = io.BytesIO()
f.retrbinary('RETR up load.bin', buf.write)
assert buf.getvalue() == open('payload.bin', 'rb').read()
assert f.size('up load.bin') == 200000
assert f.sendcmd('MDTM up load.bin').startswith('213 ')
f.mkd('日本語')
f.storbinary('STOR 日本語/empty', io.BytesIO(b''))
names = dict(f.mlsd())
assert names['up load.bin']['type'] == 'file' and names['up load.bin']['size'] == '200000', names
assert names['日本語']['type'] == 'dir'
f.rename('up load.bin', 'renamed.bin')
assert 'renamed.bin' in f.nlst()
f.prot_c()
buf = io.BytesIO()
f.retrbinary('RETR renamed.bin', buf.write)
assert buf.getvalue() == open('payload.bin', 'rb').read()
f.delete('renamed.bin')
assert 'renamed.bin' not in f.nlst()
f.quit()
print('ok')
"#;
    assert_eq!(ok(&s.python(script)), "ok\n");
    assert_eq!(std::fs::read(s.root().join("日本語/empty")).unwrap(), b"");
}

#[test]
fn curl_with_the_printed_commands_and_past_4_gib() {
    if !have("curl") {
        return;
    }
    let s = Served::start("curl", &[]);
    // A sparse file just over 4 GiB with known bytes at the end: resuming past 2^32
    // exercises 64-bit REST offsets without moving 4 GiB.
    let big = s.root().join("big.bin");
    let tail: Vec<u8> = (0..1_048_576u32).map(|i| (i % 241) as u8).collect();
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::File::create(&big).unwrap();
        f.seek(SeekFrom::Start(1 << 32)).unwrap();
        f.write_all(&tail).unwrap();
    }
    let part = s.dir.join("part.bin");
    let explicit = format!("ftp://127.0.0.1:{}/big.bin", s.explicit);
    let offset = (1u64 << 32).to_string();
    ok(&s.run(
        "curl",
        &[
            "-sS",
            "--ssl-reqd",
            "--cacert",
            &s.ca(),
            "-u",
            "alice:wonderland",
            "-C",
            &offset,
            "-o",
            part.to_str().unwrap(),
            &explicit,
        ],
    ));
    assert_eq!(std::fs::read(&part).unwrap(), tail);
    // Implicit, as printed.
    std::fs::write(s.root().join("hello.txt"), "hello\n").unwrap();
    let implicit = format!("ftps://127.0.0.1:{}/hello.txt", s.implicit);
    assert_eq!(
        ok(&s.run(
            "curl",
            &[
                "-sS",
                "--cacert",
                &s.ca(),
                "-u",
                "alice:wonderland",
                &implicit
            ]
        )),
        "hello\n"
    );
}

/// Users brought over from another server keep their passwords: `ftps serve --users-file`
/// takes the crypt(3) hashes of `/etc/shadow`, ProFTPD and Pure-FTPd (yescrypt as chpasswd
/// wrote it on this Debian; SHA-crypt `$6$` and `$5$` as `openssl passwd` makes them, and
/// with `rounds=`), beside Argon2id, and curl logs in with each; a wrong password or an
/// unknown name is refused.
#[test]
fn curl_logs_in_with_sha_crypt_hashes_brought_over() {
    if !have("curl") {
        return;
    }
    let openssl_hash = |kind: &str, password: &str| {
        let out = Command::new("openssl")
            .args(["passwd", kind, password])
            .output()
            .unwrap();
        let hash = ok(&out).trim().to_owned();
        assert!(hash.starts_with(&format!("${}$", &kind[1..])), "{hash}");
        hash
    };
    let users_dir =
        std::env::temp_dir().join(format!("ftps-interop-shadow-users-{}", std::process::id()));
    std::fs::create_dir_all(&users_dir).unwrap();
    let users = users_dir.join("users");
    std::fs::write(
        &users,
        format!(
            "sam:{}\ntom:{}\n# glibc crypt(3), rounds=10000\nrose:{}\n# chpasswd (pam_unix yescrypt)\nyves:{}\n",
            openssl_hash("-6", "sam's pass"),
            openssl_hash("-5", "tom:pass"),
            "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
            "$y$j9T$c6skqkbmGLiFgLTy67qWR.$uzJ0Xm/y5c366jZbbsr/JiDHWfhirPyo/428pJ5YNE0",
        ),
    )
    .unwrap();
    std::fs::set_permissions(&users, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let s = Served::start("shadow", &["--users-file", users.to_str().unwrap()]);
    std::fs::write(s.root().join("hello.txt"), b"hello\n").unwrap();
    let ca = s.ca();
    let url = format!("ftp://127.0.0.1:{}/hello.txt", s.explicit);
    let login = |user: &str| {
        s.run(
            "curl",
            &["-sS", "--ssl-reqd", "--cacert", &ca, "-u", user, &url],
        )
    };
    for user in [
        "sam:sam's pass",
        "tom:tom:pass",
        "rose:Hello world!",
        "yves:abc",
        "alice:wonderland",
    ] {
        assert_eq!(ok(&login(user)), "hello\n", "{user}");
    }
    for user in [
        "sam:sam's pasS",
        "tom:tom",
        "rose:Hello world",
        "yves:abd",
        "sam:tom:pass",
        "nobody:sam's pass",
    ] {
        // curl: 67, the login was refused.
        assert_eq!(login(user).status.code(), Some(67), "{user}");
    }
    drop(s);
    // A hash whose check would cost more than a login may (crypt writes up to 999,999,999
    // rounds, 200 s a check; yescrypt with extra time; a yescrypt hash cut short, which
    // would match 1 wrong password in 256) stops the server at start, naming its line.
    let good =
        "svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1";
    for bad in [
        format!("$6$rounds=999999999$saltstring${good}"),
        "$y$j9T/zzzzzz$c6skqkbmGLiFgLTy67qWR.$uzJ0Xm/y5c366jZbbsr/JiDHWfhirPyo/428pJ5YNE0".into(),
        "$y$j9T$c6skqkbmGLiFgLTy67qWR.$..".into(),
    ] {
        std::fs::write(&users, format!("# costly\nsam:{bad}\n")).unwrap();
        let out = Command::new("timeout")
            .args(["30", env!("CARGO_BIN_EXE_ftps"), "serve", "--users-file"])
            .arg(&users)
            .args(["--explicit", "127.0.0.1:0", "--no-implicit"])
            .current_dir(&users_dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{bad}: {err}");
        assert!(
            err.contains("line 2") && err.contains("crypt(3)"),
            "{bad}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&users_dir);
}

/// Files on tmpfs are read on the session's task (`LocalFile`'s plain reads, decided when
/// the file is opened): what users run, `ftps serve` with its root on `/dev/shm`, serves
/// them whole to curl, with PROT P and PROT C, from the start and from a REST offset
/// inside a chunk.
#[test]
fn curl_gets_files_served_from_tmpfs_whole() {
    let shm = Path::new("/dev/shm");
    if !have("curl") || !shm.is_dir() {
        return;
    }
    let s = Served::start_in(shm, "tmpfs", &["--data-tls", "allow"]);
    let sizes = [0usize, 1, 65_536, 5 * 1_048_576 + 7];
    for size in sizes {
        let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        std::fs::write(s.root().join(format!("f{size}.bin")), &bytes).unwrap();
    }
    let (out, ca) = (s.dir.join("out.bin"), s.ca());
    for size in sizes {
        let url = format!("ftp://127.0.0.1:{}/f{size}.bin", s.explicit);
        let want: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        for (tls, from) in [
            ("--ssl-reqd", 0),
            ("--ftp-ssl-control", 0),
            ("--ssl-reqd", size / 3),
        ] {
            let _ = std::fs::remove_file(&out);
            let from_arg = from.to_string();
            let mut args = vec!["-sS", tls, "--cacert", &ca, "-u", "alice:wonderland"];
            if from > 0 {
                args.extend(["-C", &from_arg]);
            }
            args.extend(["-o", out.to_str().unwrap(), &url]);
            ok(&s.run("curl", &args));
            assert_eq!(
                std::fs::read(&out).unwrap(),
                &want[from..],
                "{size} bytes, {tls}, from {from}"
            );
        }
    }
}

#[test]
fn the_printed_commands_work_in_both_modes() {
    if !have("curl") || !have("lftp") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("ftps-interop-printed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("ftp-root")).unwrap();
    std::fs::write(dir.join("ftp-root/readme.txt"), "hi\n").unwrap();
    let (explicit, implicit) = (free_port(), free_port());
    // No --user: the server makes user `ftps` with a random password and prints it.
    let mut child = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .current_dir(&dir)
        .args([
            "serve",
            "--explicit",
            &format!("127.0.0.1:{explicit}"),
            "--implicit",
            &format!("127.0.0.1:{implicit}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut printed = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.contains("Ctrl-C") {
            break;
        }
        printed.push(line);
    }
    let commands: Vec<&str> = printed
        .iter()
        .map(|l| l.trim())
        .filter(|l| l.starts_with("curl ") || l.starts_with("lftp "))
        .collect();
    assert_eq!(commands.len(), 4, "{printed:?}");
    for command in commands {
        let out = Command::new("timeout")
            .args(["30", "bash", "-c", command])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("readme.txt"),
            "{command}"
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    // A second start keeps the certificate, and a port in use is a clear error.
    let blocker = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = blocker.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .current_dir(&dir)
        .args(["serve", "--explicit", &busy, "--no-implicit"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on {busy}")) && err.contains("--explicit"),
        "{err}"
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .args(["serve", "--data-tls", "sometimes"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("sometimes"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn client_commands_against_our_server() {
    let s = Served::start("client-cmds", &[]);
    let ftps = |args: &[&str], password: &str| -> Output {
        support::ftps_with_password(&s.dir, args, password)
    };
    let ca = s.ca();
    let base = format!("ftp://127.0.0.1:{}", s.explicit);
    let implicit = format!("ftps://127.0.0.1:{}", s.implicit);
    let common = |cmd: &str| -> Vec<String> {
        vec![
            cmd.to_owned(),
            "--ca-cert".into(),
            ca.clone(),
            "--user".into(),
            "alice".into(),
        ]
    };
    let run = |cmd: &str, rest: &[&str], password: &str| -> Output {
        let mut args = common(cmd);
        args.extend(rest.iter().map(|s| (*s).to_owned()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        ftps(&refs, password)
    };

    let content: Vec<u8> = (0..1_500_000u32).map(|i| (i % 239) as u8).collect();
    std::fs::write(s.dir.join("a.bin"), &content).unwrap();
    std::fs::write(s.dir.join("b with space.txt"), "bee\n").unwrap();
    // Two files, one session.
    let out = run(
        "put",
        &["a.bin", "b with space.txt", &format!("{base}/")],
        "wonderland",
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(std::fs::read(s.root().join("a.bin")).unwrap(), content);
    let out = run("ls", &[&format!("{implicit}/")], "wonderland");
    let names = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        names.lines().any(|l| l == "a.bin") && names.lines().any(|l| l == "b with space.txt"),
        "{names}"
    );
    let out = run(
        "cat",
        &[&format!("{base}/b%20with%20space.txt")],
        "wonderland",
    );
    assert_eq!(out.stdout, b"bee\n");
    // Get two into a directory, then resume a partial one.
    std::fs::create_dir_all(s.dir.join("dl")).unwrap();
    let out = run(
        "get",
        &[
            &format!("{base}/a.bin"),
            &format!("{base}/b%20with%20space.txt"),
            "dl",
        ],
        "wonderland",
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(std::fs::read(s.dir.join("dl/a.bin")).unwrap(), content);
    std::fs::write(s.dir.join("dl/a.bin"), &content[..700_000]).unwrap();
    let out = run(
        "get",
        &["-C", &format!("{base}/a.bin"), "dl/a.bin"],
        "wonderland",
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(std::fs::read(s.dir.join("dl/a.bin")).unwrap(), content);
    // Resume an upload.
    std::fs::write(s.root().join("partial.bin"), &content[..400_000]).unwrap();
    let out = run(
        "put",
        &["-C", "a.bin", &format!("{base}/partial.bin")],
        "wonderland",
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        std::fs::read(s.root().join("partial.bin")).unwrap(),
        content
    );
    // mkdir, mv, rm.
    assert_eq!(
        run("mkdir", &[&format!("{base}/d")], "wonderland")
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        run(
            "mv",
            &[&format!("{base}/partial.bin"), "d/moved.bin"],
            "wonderland"
        )
        .status
        .code(),
        Some(0)
    );
    assert!(s.root().join("d/moved.bin").is_file());
    assert_eq!(
        run(
            "rm",
            &[&format!("{base}/d/moved.bin"), &format!("{base}/a.bin")],
            "wonderland"
        )
        .status
        .code(),
        Some(0)
    );
    assert!(!s.root().join("a.bin").exists());
    // Exit codes: refused operation 5 (naming the reply), wrong password 4, unknown CA 3.
    let out = run("get", &[&format!("{base}/nope.bin")], "wonderland");
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("550"));
    assert_eq!(run("ls", &[&base], "wrong").status.code(), Some(4));
    let out = ftps(&["ls", "--user", "alice", &base], "wonderland");
    assert_eq!(out.status.code(), Some(3));
    // The password file works, and the password never needs the command line.
    std::fs::write(s.dir.join("pw"), "wonderland\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .current_dir(&s.dir)
        .args([
            "ls",
            "--ca-cert",
            &ca,
            "--user",
            "alice",
            "--password-file",
            "pw",
            &base,
        ])
        .env_remove("FTPS_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        run("ls", &[&format!("http://127.0.0.1:{}/", s.explicit)], "x")
            .status
            .code()
            == Some(2),
        "a bad URL is a usage error"
    );
}
