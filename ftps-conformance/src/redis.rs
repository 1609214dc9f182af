//! A real Redis (Debian's `redis-server`) on loopback for a test: no persistence, a port
//! below the ephemeral range, stopped when dropped.

use crate::peers::required;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`.
#[derive(Debug)]
pub struct Redis {
    child: Option<Child>,
    dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    program: &'static str,
}

impl Redis {
    /// Starts one; `None` (skipped) if `redis-server` is not installed and peers are not
    /// required.
    pub fn start() -> Option<Redis> {
        let program = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).is_file());
        let Some(program) = program else {
            assert!(
                !required(),
                "redis-server required (apt-get install redis-server)"
            );
            eprintln!("redis-server missing: skipped");
            return None;
        };
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ftps-redis-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("redis dir");
        for _ in 0..3 {
            let (port, _, _) = crate::garage::quiet_ports();
            let mut redis = Redis {
                child: None,
                dir: dir.clone(),
                port,
                program,
            };
            if redis.spawn() {
                return Some(redis);
            }
            redis.stop();
        }
        panic!("redis-server did not start");
    }

    /// Starts the server on its port; whether it answers within 10 s.
    fn spawn(&mut self) -> bool {
        let child = Command::new(self.program)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        self.wait_up()
    }

    /// Stops it and starts it again on its port, empty (a Redis restarted).
    pub fn restart(&mut self) {
        self.stop();
        assert!(self.spawn(), "redis-server did not start again");
    }

    /// Sends it `signal` (`-STOP`: a Redis that hangs, the connections open; `-CONT`).
    pub fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("redis-server runs");
        let sent = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
    }

    /// Whether it answers PING within 10 s (false once it exited).
    fn wait_up(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self
                .child
                .as_mut()
                .is_none_or(|c| c.try_wait().is_ok_and(|s| s.is_some()))
            {
                return false;
            }
            if self.ping() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Whether it answers `PING` now.
    pub fn ping(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut tcp) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(2)));
        let mut buf = [0u8; 16];
        tcp.write_all(b"PING\r\n").is_ok()
            && tcp
                .read(&mut buf)
                .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Stops it (a Redis that went down).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
