//! Issue 16: a fleet on loopback, for real — HAProxy (Debian's) on 127.0.0.1 balancing
//! three `ftps serve` nodes on 127.0.0.11-13 (the control port round-robin, each node's
//! passive range forwarded to it, both with `send-proxy-v2`), sharing one object store (a
//! Garage node) and a Redis lockout; HAProxy checks each node's `/health`. Clients come
//! from 127.0.0.2 and 127.0.0.3 (curl and `ftps` with `--interface`, lftp with
//! `net:socket-bind-ipv4`): a file uploaded through one node is downloaded through
//! another, byte for byte; wrong passwords from 127.0.0.2 lock 127.0.0.2 out on every
//! node and leave 127.0.0.3 alone; a draining node is taken out by HAProxy's check (503)
//! while its upload finishes; a rolling restart (each node drained with SIGTERM and
//! started again) while clients transfer with `--retry` loses nothing; nodes killed with
//! SIGKILL mid-upload leave nothing of it in the store.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

mod support;
use support::{free_port, have, wait_ready};

use ftps_conformance::garage::Garage;
use ftps_conformance::redis::Redis;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Ports `base..base + n` free on every address the fleet binds (below the ephemeral
/// range, so that no outgoing connection takes one meanwhile).
fn free_range(n: u16) -> u16 {
    let low = ftps_conformance::peers::ephemeral_start();
    let ips = ["127.0.0.1", "127.0.0.11", "127.0.0.12", "127.0.0.13"];
    let mut base = 20_000 + (std::process::id() % 97) as u16 * 100;
    while base + n < low {
        let all = (base..base + n).all(|p| {
            ips.iter()
                .all(|ip| std::net::TcpListener::bind((*ip, p)).is_ok())
        });
        if all {
            return base;
        }
        base += n + 7;
    }
    panic!("no free port range");
}

struct Killed(Vec<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What every node is started with.
struct Fleet<'a> {
    dir: &'a Path,
    port: u16,
    pasv: [u16; 3],
    metrics: u16,
    redis: String,
    cert: &'a Path,
    key: &'a Path,
    garage: &'a Garage,
}

/// `ftps serve` node `n` (its address 127.0.0.1n), waited for.
fn node(f: &Fleet<'_>, n: u16) -> Child {
    let (dir, port, metrics, redis) = (f.dir, f.port, f.metrics, f.redis.as_str());
    let (cert, key, garage) = (f.cert, f.key, f.garage);
    let pasv = f.pasv[usize::from(n - 1)];
    let ip = format!("127.0.0.1{n}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .current_dir(dir)
        .arg("serve")
        .args(["--storage", &garage.address("fleet")])
        .env("AWS_ACCESS_KEY_ID", &garage.key_id)
        .env("AWS_SECRET_ACCESS_KEY", &garage.secret)
        .arg("--state-dir")
        .arg(dir.join(format!("state-{n}")))
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .args(["--user", "alice:pw", "--no-implicit"])
        .args(["--explicit", &format!("{ip}:{port}")])
        .args(["--passive-ports", &format!("{pasv}-{}", pasv + 9)])
        .args(["--advertise", "127.0.0.1", "--proxy-protocol", "127.0.0.1"])
        .args(["--lockout-redis", redis])
        .args(["--metrics", &format!("{ip}:{metrics}")])
        .args(["--drain-grace", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(&mut child);
    child
}

/// HAProxy's configuration: the recipe the README gives, and a stats socket in `dir`.
fn haproxy_config(
    dir: &Path,
    control: u16,
    node_port: u16,
    metrics: u16,
    pasv: &[u16; 3],
) -> String {
    let mut c = format!(
        "global\n  maxconn 2000\n  stats socket {}/haproxy.sock mode 600 level admin\n\
         defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n\
         timeout check 2s\n",
        dir.display()
    );
    c += &format!("frontend control\n  bind 127.0.0.1:{control}\n  default_backend nodes\n");
    // Each node's /health asked every 200 ms: a draining node (503) is out after one
    // answer, a restarted one back after one. A node that is down (restarting) between
    // checks refuses the connection: the next one takes it.
    c += "backend nodes\n  balance roundrobin\n  option redispatch\n  retries 2\n\
          option httpchk GET /health\n  http-check expect status 200\n";
    for n in 1..=3 {
        c += &format!(
            "  server n{n} 127.0.0.1{n}:{node_port} send-proxy-v2 source 127.0.0.1 \
             check port {metrics} inter 200 fall 1 rise 1\n"
        );
    }
    for (i, base) in pasv.iter().enumerate() {
        let n = i + 1;
        c += &format!(
            "frontend pasv{n}\n  bind 127.0.0.1:{base}-{}\n  default_backend pasv{n}\n\
             backend pasv{n}\n  server n{n} 127.0.0.1{n} send-proxy-v2 source 127.0.0.1\n",
            base + 9
        );
    }
    c
}

/// curl through the balancer from `from`, with `args`: whether it succeeded.
fn curl(from: &str, cert: &Path, control: u16, password: &str, args: &[&str], path: &str) -> bool {
    Command::new("curl")
        .args(["-sS", "--ssl-reqd", "--max-time", "30", "--interface", from])
        .arg("--cacert")
        .arg(cert)
        .args(["-u", &format!("alice:{password}")])
        .args(args)
        .arg(format!("ftp://127.0.0.1:{control}/{path}"))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What HAProxy's stats socket says of node `n` in the control backend: its status
/// (`UP`, `DOWN`, ...) and its last check's (`L7OK`, `L7STS` an unwanted HTTP status,
/// `L4CON` refused, ...).
fn node_state(dir: &Path, n: u16) -> Option<(String, String)> {
    use std::io::{Read, Write};
    let mut sock = std::os::unix::net::UnixStream::connect(dir.join("haproxy.sock")).ok()?;
    sock.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    sock.write_all(b"show stat\n").ok()?;
    let mut csv = String::new();
    sock.read_to_string(&mut csv).ok()?;
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (status, check) = (col("status")?, col("check_status")?);
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&"nodes") && f.get(1) == Some(&format!("n{n}").as_str()))
        .map(|f| (f[status].to_owned(), f[check].to_owned()))
}

/// Waits (at most 15 s) until HAProxy's check of node `n` gives `status`; the last
/// state seen.
fn await_state(dir: &Path, n: u16, status: &str) -> Option<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let state = node_state(dir, n);
        if state.as_ref().is_some_and(|(s, _)| s == status) || Instant::now() > deadline {
            return state;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// curl uploading `file` at 1 MB/s from 127.0.0.3, as alice, to the URL still to be
/// added.
fn slow_curl_upload(cert: &Path, file: &Path) -> Command {
    let mut curl = Command::new("curl");
    curl.args(["-sS", "--ssl-reqd", "--limit-rate", "1M"])
        .args(["--interface", "127.0.0.3", "--cacert"])
        .arg(cert)
        .args(["-u", "alice:pw", "-T"])
        .arg(file);
    curl
}

/// `ftps_transfers_total` by kind on a node's metrics listener.
fn transfers(ip: &str, port: u16, kind: &str) -> f64 {
    let all = support::http_get(ip, port, "/metrics");
    all.lines()
        .filter(|l| {
            l.starts_with("ftps_transfers_total{") && l.contains(&format!("kind=\"{kind}\""))
        })
        .filter(|l| l.contains("result=\"ok\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn a_fleet_behind_haproxy() {
    let needed = Path::new("/usr/sbin/haproxy").is_file() && have("curl") && have("lftp");
    assert!(
        needed || std::env::var_os("FTPS_REQUIRE_PEERS").is_none(),
        "haproxy, curl and lftp are required"
    );
    if !needed {
        return;
    }
    let Some(redis) = Redis::start() else {
        return;
    };
    let Some(garage) = Garage::start("fleet") else {
        return;
    };
    let (dir, cert, key, _) = ftps_conformance::peers::workdir("fleet");
    let (control, node_port, metrics) = (free_port(), free_range(1), free_port());
    let base = free_range(30);
    let fleet = Fleet {
        dir: &dir,
        port: node_port,
        pasv: [base, base + 10, base + 20],
        metrics,
        redis: redis.url(),
        cert: &cert,
        key: &key,
        garage: &garage,
    };
    let mut nodes = Killed((1..=3).map(|n| node(&fleet, n)).collect());
    let config = dir.join("haproxy.cfg");
    std::fs::write(
        &config,
        haproxy_config(&dir, control, node_port, metrics, &fleet.pasv),
    )
    .unwrap();
    let balancer = Command::new("/usr/sbin/haproxy")
        .arg("-f")
        .arg(&config)
        .arg("-db")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _balancer = Killed(vec![balancer]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", control)).is_err() {
        assert!(Instant::now() < deadline, "haproxy did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    for n in 1..=3 {
        let state = await_state(&dir, n, "UP");
        assert_eq!(
            state.as_ref().map(|s| s.0.as_str()),
            Some("UP"),
            "node {n}: {state:?}"
        );
    }

    // Uploaded from 127.0.0.2 through one node, downloaded from 127.0.0.3 through the
    // next (round robin), byte for byte.
    let body: Vec<u8> = (0..2_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let local = dir.join("up.bin");
    std::fs::write(&local, &body).unwrap();
    let up = local.to_string_lossy().into_owned();
    assert!(
        curl(
            "127.0.0.2",
            &cert,
            control,
            "pw",
            &["-T", &up],
            "shared.bin"
        ),
        "upload"
    );
    let got = dir.join("got.bin");
    let got_s = got.to_string_lossy().into_owned();
    assert!(
        curl(
            "127.0.0.3",
            &cert,
            control,
            "pw",
            &["-o", &got_s],
            "shared.bin"
        ),
        "download"
    );
    assert!(std::fs::read(&got).unwrap() == body, "the download differs");
    let ups: Vec<f64> = (1..=3)
        .map(|n| transfers(&format!("127.0.0.1{n}"), metrics, "upload"))
        .collect();
    let downs: Vec<f64> = (1..=3)
        .map(|n| transfers(&format!("127.0.0.1{n}"), metrics, "download"))
        .collect();
    let up_node = ups
        .iter()
        .position(|&c| c >= 1.0)
        .expect("no node counted the upload");
    let down_node = downs
        .iter()
        .position(|&c| c >= 1.0)
        .expect("no node counted the download");
    assert_ne!(
        up_node, down_node,
        "one node served both: {ups:?} {downs:?}"
    );

    // Ours alike: put from 127.0.0.2, got back from 127.0.0.3 (`--interface`: the
    // control and data connections both from it, or the node would refuse the data).
    let ours = |from: &str, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ftps"))
            .current_dir(&dir)
            .args(args)
            .arg("--ca-cert")
            .arg(&cert)
            .args(["--user", "alice", "--interface", from])
            .env("FTPS_PASSWORD", "pw")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let ours_url = format!("ftp://127.0.0.1:{control}/ours.bin");
    let put = ours("127.0.0.2", &["put", &up, &ours_url]);
    assert!(
        put.status.success(),
        "ftps put: {}",
        String::from_utf8_lossy(&put.stderr)
    );
    let ours_back = dir.join("ours-back.bin").to_string_lossy().into_owned();
    let get = ours("127.0.0.3", &["get", &ours_url, &ours_back]);
    assert!(
        get.status.success(),
        "ftps get: {}",
        String::from_utf8_lossy(&get.stderr)
    );
    assert!(
        std::fs::read(&ours_back).unwrap() == body,
        "ours: the download differs"
    );

    // lftp from 127.0.0.3: a put and a get through the balancer (each a session of its
    // own node, round robin), byte for byte.
    let back = dir.join("lftp-back.bin");
    let script = format!(
        "set ssl:ca-file {}; set ftp:ssl-force true; set ftp:ssl-protect-data true; \
         set net:socket-bind-ipv4 127.0.0.3; set net:max-retries 1; \
         put {} -o lftp.bin; get lftp.bin -o {}; bye",
        cert.display(),
        local.display(),
        back.display()
    );
    let lftp = Command::new("lftp")
        .args(["-u", "alice,pw", "-e", &script])
        .arg(format!("ftp://127.0.0.1:{control}"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        lftp.status.success(),
        "lftp: {}",
        String::from_utf8_lossy(&lftp.stderr)
    );
    assert!(
        std::fs::read(&back).unwrap() == body,
        "lftp's download differs"
    );
    assert!(garage.object("fleet/lftp.bin").is_some_and(|b| b == body));

    // Wrong passwords from 127.0.0.2, spread over the nodes: 127.0.0.2 locked out on all.
    for _ in 0..10 {
        assert!(!curl(
            "127.0.0.2",
            &cert,
            control,
            "wrong",
            &["-I"],
            "shared.bin"
        ));
    }
    for attempt in 0..3 {
        assert!(
            !curl("127.0.0.2", &cert, control, "pw", &["-I"], "shared.bin"),
            "127.0.0.2 logged in after its lockout (attempt {attempt}, a node that did not count)"
        );
    }
    for attempt in 0..3 {
        assert!(
            curl("127.0.0.3", &cert, control, "pw", &["-I"], "shared.bin"),
            "127.0.0.3 locked out with 127.0.0.2 (attempt {attempt})"
        );
    }

    // Health: node 1 drained (SIGTERM) while curl uploads to it slowly (from 127.0.0.3,
    // straight to the node, no PROXY header: 127.0.0.3 is no balancer; its data
    // connection comes through the balancer's range for node 1). HAProxy's check sees
    // /health answer 503 and takes the node out while the upload finishes; the node
    // then exits 0, the upload complete in the store; started again, it is back in.
    let drained = dir.join("drained.bin");
    std::fs::write(&drained, vec![3u8; 2 << 20]).unwrap();
    let mut slow_up = slow_curl_upload(&cert, &drained)
        // (the certificate names 127.0.0.1)
        .arg("--connect-to")
        .arg(format!("127.0.0.1:{node_port}:127.0.0.11:{node_port}"))
        .arg(format!("ftp://127.0.0.1:{node_port}/drained.bin"))
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let term = Command::new("kill")
        .args(["-TERM", &nodes.0[0].id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let out = await_state(&dir, 1, "DOWN");
    if out.as_ref().is_some_and(|o| o.1 != "L7STS") {
        let _ = slow_up.wait();
        let mut said = String::new();
        let _ = std::io::Read::read_to_string(&mut slow_up.stderr.take().unwrap(), &mut said);
        eprintln!("curl to the draining node: {said}");
    }
    assert_eq!(
        out,
        Some(("DOWN".to_owned(), "L7STS".to_owned())),
        "node 1 draining: HAProxy's check did not see /health say 503"
    );
    assert!(
        slow_up.wait().unwrap().success(),
        "the upload to the draining node failed"
    );
    let status = nodes.0[0].wait().unwrap();
    assert!(status.success(), "node 1 drained with {status}");
    assert_eq!(
        garage.object("fleet/drained.bin").map(|b| b.len()),
        Some(2 << 20),
        "the upload finished during the drain is not in the store whole"
    );
    nodes.0[0] = node(&fleet, 1);
    let back_in = await_state(&dir, 1, "UP");
    assert_eq!(
        back_in.as_ref().map(|s| s.0.as_str()),
        Some("UP"),
        "node 1 restarted: {back_in:?}"
    );

    // A rolling restart while our client moves files through the balancer with --retry:
    // each node drained (SIGTERM: it must exit 0) and started again, in turn.
    let files: Vec<Vec<u8>> = (0..4u32)
        .map(|k| {
            (0..3_000_000u32)
                .map(|i| ((i + k) * 13 % 251) as u8)
                .collect()
        })
        .collect();
    for (k, f) in files.iter().enumerate() {
        std::fs::write(dir.join(format!("roll-{k}.bin")), f).unwrap();
    }
    let ftps = |args: &[String]| {
        Command::new(env!("CARGO_BIN_EXE_ftps"))
            .current_dir(&dir)
            .args(args)
            .arg("--ca-cert")
            .arg(&cert)
            .args([
                "--user",
                "alice",
                "--retry",
                "8",
                "--interface",
                "127.0.0.3",
            ])
            .env("FTPS_PASSWORD", "pw")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    };
    let url = |name: &str| format!("ftp://127.0.0.1:{control}/{name}");
    let (clients, restarts) = std::thread::scope(|scope| {
        let clients = scope.spawn(|| {
            let mut outcomes = Vec::new();
            for round in 0..3 {
                for (k, file) in files.iter().enumerate() {
                    let name = format!("roll-{k}.bin");
                    let put = ftps(&["put".into(), name.clone(), url(&name)]);
                    let got = format!("back-{round}-{k}.bin");
                    let get = ftps(&["get".into(), url(&name), got.clone()]);
                    let same = std::fs::read(dir.join(&got)).is_ok_and(|b| b == *file);
                    let retried = [&put, &get]
                        .iter()
                        .map(|o| {
                            String::from_utf8_lossy(&o.stderr)
                                .matches("retrying")
                                .count()
                        })
                        .sum::<usize>();
                    let said = [&put, &get]
                        .iter()
                        .filter(|o| !o.status.success())
                        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                        .collect::<Vec<_>>()
                        .join(" / ");
                    outcomes.push((
                        put.status.success(),
                        get.status.success(),
                        same,
                        retried,
                        said,
                    ));
                }
            }
            outcomes
        });
        let mut restarts = 0;
        for n in 1..=3u16 {
            std::thread::sleep(Duration::from_millis(700));
            let i = usize::from(n - 1);
            let term = Command::new("kill")
                .args(["-TERM", &nodes.0[i].id().to_string()])
                .status()
                .unwrap();
            assert!(term.success());
            let status = nodes.0[i].wait().unwrap();
            assert!(status.success(), "node {n} drained with {status}");
            nodes.0[i] = node(&fleet, n);
            restarts += 1;
        }
        (clients.join().unwrap(), restarts)
    });
    let failed = clients
        .iter()
        .filter(|(p, g, same, _, _)| !(*p && *g && *same))
        .count();
    let retries: usize = clients.iter().map(|c| c.3).sum();
    eprintln!(
        "fleet: rolling restart: {} transfers, {} MB, {failed} failed, {retries} retries, {restarts} restarts",
        clients.len() * 2,
        clients.len() * 2 * 3,
    );
    assert_eq!(
        failed, 0,
        "transfers lost in the rolling restart: {clients:?}"
    );

    // Every node killed (SIGKILL) while curl uploads slowly through one of them: nothing
    // of the upload is visible in the store.
    let slow = dir.join("slow.bin");
    std::fs::write(&slow, vec![5u8; 8 << 20]).unwrap();
    let mut upload = slow_curl_upload(&cert, &slow)
        .arg(url("killed.bin"))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    for n in &mut nodes.0 {
        let _ = n.kill();
        let _ = n.wait();
    }
    let _ = upload.wait();
    assert!(
        garage.keys("fleet/killed").is_empty(),
        "a killed upload left {:?}",
        garage.keys("fleet/killed")
    );
    assert!(
        garage.object("fleet/shared.bin").is_some(),
        "the store lost a file"
    );
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}
