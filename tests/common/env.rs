//! One scenario's world: the server, the unit directory, the agent, and the consumers'
//! records — with helpers that read Redis's own state.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::harness::{bin, consumer_bin};
use super::process::{sh, wait_until};
use super::server::{Redis, Server};
use super::systemd::{main_pid, systemctl};
use super::{GROUP, PREFIX, STREAM, UNIT};

pub struct Agent {
    pub child: Child,
    pub log: PathBuf,
}

impl Agent {
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.log().contains(needle))
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the test itself and its consumers reach the data: the server of `Env::redis`, or the
/// master Sentinel names, or a cluster.
#[derive(Debug, Clone)]
pub enum Route {
    /// `Env::redis` on its unix socket.
    Direct,
    /// The master `name` of the Sentinels on these `host:port`s.
    Sentinel { nodes: Vec<String>, master: String },
    /// A cluster of these `host:port` seeds.
    Cluster(Vec<String>),
}

pub struct Env {
    pub base: PathBuf,
    pub unit_dir: PathBuf,
    pub redis: Redis,
    pub hostname: String,
    pub config: PathBuf,
    /// Where the helpers and the consumer units read and write.
    pub route: Route,
    /// The agent's `redis.*` lines in [`Env::config`] (default: `redis.url` of `Env::redis`).
    pub agent_redis: String,
}

impl Env {
    pub fn new(server: Server) -> Env {
        let base = PathBuf::from(std::env::var("QW_BASE").expect("inside the harness"));
        let unit_dir = PathBuf::from(std::env::var("QW_UNIT_DIR").unwrap());
        let redis = Redis::start(server, &base.join("redis"), false);
        Env::on(redis, base, unit_dir)
    }

    fn on(redis: Redis, base: PathBuf, unit_dir: PathBuf) -> Env {
        let hostname = nix::unistd::gethostname()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        Env {
            config: base.join("agent.toml"),
            agent_redis: format!("redis.url = \"{}\"", redis.url()),
            base,
            unit_dir,
            redis,
            hostname,
            route: Route::Direct,
        }
    }

    /// Inside a harness, the world of one more host of a fleet: the server another host
    /// runs (on `sock`), this host's units and agent, its files under `base`.
    pub fn attach(server: Server, sock: PathBuf, base: PathBuf) -> Env {
        std::fs::create_dir_all(&base).unwrap();
        let redis = Redis {
            server,
            bin: server.binary(),
            dir: sock.parent().unwrap().to_path_buf(),
            sock,
            child: None,
            aof: false,
            args: Vec::new(),
        };
        Env::on(
            redis,
            base,
            PathBuf::from(std::env::var("QW_UNIT_DIR").unwrap()),
        )
    }

    /// A connection along [`Env::route`] (to the current master under Sentinel).
    pub fn conn(&self) -> Box<dyn redis::ConnectionLike> {
        match &self.route {
            Route::Direct => Box::new(self.redis.conn()),
            Route::Sentinel { nodes, master } => {
                let urls: Vec<String> = nodes.iter().map(|n| format!("redis://{n}")).collect();
                let mut s = redis::sentinel::Sentinel::build(urls).unwrap();
                let c = s.master_for(master, None).unwrap();
                let c = c
                    .get_connection_with_timeout(Duration::from_secs(2))
                    .unwrap();
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                Box::new(c)
            }
            Route::Cluster(seeds) => {
                let urls: Vec<String> = seeds.iter().map(|n| format!("redis://{n}")).collect();
                let c = redis::cluster::ClusterClient::new(urls).unwrap();
                Box::new(c.get_connection().unwrap())
            }
        }
    }

    /// The consumers' `REDIS_URL` (see examples/qw-consumer.rs).
    pub fn consumer_url(&self) -> String {
        match &self.route {
            Route::Direct => self.redis.url(),
            Route::Sentinel { nodes, master } => format!("sentinel://{}/{master}", nodes.join(",")),
            Route::Cluster(seeds) => format!("cluster://{}", seeds.join(",")),
        }
    }

    pub fn server(&self) -> Server {
        self.redis.server
    }

    pub fn ack_log(&self, unit: &str) -> PathBuf {
        self.base.join(format!("acks-{unit}.log"))
    }

    /// Installs a consumer unit running the real test consumer on STREAM/GROUP.
    pub fn consumer_unit(&self, unit: &str, prefix: &str, env: &[(&str, &str)], extra: &str) {
        self.consumer_unit_on(unit, STREAM, GROUP, prefix, env, extra)
    }

    /// Installs a consumer unit reading `stream` as `group`.
    pub fn consumer_unit_on(
        &self,
        unit: &str,
        stream: &str,
        group: &str,
        prefix: &str,
        env: &[(&str, &str)],
        extra: &str,
    ) {
        let mut envs = String::new();
        for (k, v) in env {
            envs.push_str(&format!("Environment={k}={v}\n"));
        }
        let text = format!(
            "[Unit]\nDescription=test consumer {unit}\nStartLimitIntervalSec=0\n\
             [Service]\nExecStart={} {} {stream} {group} {prefix} {}\n{envs}TimeoutStopSec=5\n{extra}\n",
            consumer_bin().display(),
            self.consumer_url(),
            self.ack_log(unit).display(),
        );
        std::fs::write(self.unit_dir.join(unit), text).unwrap();
        assert_eq!(systemctl(&["daemon-reload"]).0, 0);
    }

    pub fn start(&self, unit: &str) {
        let (rc, out) = systemctl(&["start", unit]);
        assert_eq!(rc, 0, "start {unit}: {out}");
    }

    pub fn write_config(&self, text: &str) -> PathBuf {
        std::fs::write(&self.config, text).unwrap();
        self.config.clone()
    }

    /// A config for the test server with short, test-sized durations.
    /// The scenario configuration (tests/fixtures/scenario.toml) with `watches` bound.
    pub fn config(&self, mode: &str, watches: &[(&str, &str)], extra_defaults: &str) -> String {
        let mut s = include_str!("../fixtures/scenario.toml")
            .replace("@MODE@", mode)
            .replace("@REDIS@", &self.agent_redis)
            .replace("@EXTRA_DEFAULTS@", extra_defaults);
        for (unit, prefix) in watches {
            s.push_str(&format!(
                "[[watch]]\nunit = \"{unit}\"\nstream = \"{STREAM}\"\ngroup = \"{GROUP}\"\nconsumer = \"{prefix}-{{hostname}}-{{pid}}\"\n"
            ));
        }
        s
    }

    pub fn agent(&self, config: &str) -> Agent {
        self.agent_with(config, &[])
    }

    /// As [`Env::agent`], with `vars` in the agent's environment.
    pub fn agent_with(&self, config: &str, vars: &[(&str, &str)]) -> Agent {
        let path = self.write_config(config);
        let log = self.base.join(format!(
            "agent-{}.log",
            Instant::now().elapsed().as_nanos() ^ rand_u32() as u128
        ));
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin())
            .args(["--user", "--config"])
            .arg(&path)
            .arg("agent")
            .env("QUANTUM_WATCHDOG_LOG", "debug")
            .env_remove("QUANTUM_WATCHDOG_MODE")
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap();
        Agent { child, log }
    }

    /// `quantum-watchdog --user --config … status --json`: (JSON, exit code).
    pub fn status(&self) -> (serde_json::Value, i32) {
        let (rc, out, err) = sh(Command::new(bin())
            .args(["--user", "--config"])
            .arg(&self.config)
            .args(["status", "--json"]));
        let v =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("status --json: {e}: {out}{err}"));
        (v, rc)
    }

    pub fn xadd(&self, from: u64, count: u64) {
        let mut c = self.conn();
        if let Route::Cluster(_) = self.route {
            // The crate's cluster connection takes no plain pipeline: one by one.
            for n in from..from + count {
                let _: String = redis::cmd("XADD")
                    .arg(STREAM)
                    .arg("*")
                    .arg("n")
                    .arg(n)
                    .query(c.as_mut())
                    .unwrap();
            }
            return;
        }
        let mut p = redis::pipe();
        for n in from..from + count {
            p.cmd("XADD").arg(STREAM).arg("*").arg("n").arg(n).ignore();
        }
        let _: () = p.query(c.as_mut()).unwrap();
    }

    pub fn consumers(&self) -> BTreeMap<String, (u64, u64)> {
        let mut c = self.conn();
        let r: RedisResultMap = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(STREAM)
            .arg(GROUP)
            .query(c.as_mut())
            .unwrap_or_default();
        r.into_iter()
            .map(|m| {
                let g = |k: &str| {
                    m.get(k)
                        .and_then(|v| redis::from_redis_value::<i64>(v.clone()).ok())
                        .unwrap_or(0) as u64
                };
                let name = m
                    .get("name")
                    .and_then(|v| redis::from_redis_value::<String>(v.clone()).ok())
                    .unwrap_or_default();
                (name, (g("pending"), g("idle")))
            })
            .collect()
    }

    /// How many consumers the group has (`XINFO GROUPS`: cheap however many there are).
    pub fn consumer_count(&self) -> u64 {
        let mut c = self.conn();
        let r: RedisResultMap = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(STREAM)
            .query(c.as_mut())
            .unwrap_or_default();
        r.into_iter()
            .find(|m| {
                m.get("name")
                    .and_then(|v| redis::from_redis_value::<String>(v.clone()).ok())
                    .is_some_and(|n| n == GROUP)
            })
            .and_then(|m| m.get("consumers").cloned())
            .and_then(|v| redis::from_redis_value::<u64>(v).ok())
            .unwrap_or(0)
    }

    pub fn group_pending(&self) -> u64 {
        let mut c = self.conn();
        let v: redis::Value = redis::cmd("XPENDING")
            .arg(STREAM)
            .arg(GROUP)
            .query(c.as_mut())
            .unwrap();
        match v {
            redis::Value::Array(a) => redis::from_redis_value::<u64>(a[0].clone()).unwrap_or(0),
            _ => 0,
        }
    }

    /// The `n` values acknowledged by all consumers of `unit`, with how often each was recorded.
    pub fn acked(&self, unit: &str) -> BTreeMap<u64, u32> {
        let mut m = BTreeMap::new();
        for l in std::fs::read_to_string(self.ack_log(unit))
            .unwrap_or_default()
            .lines()
        {
            if let Some(n) = l.split_whitespace().nth(1).and_then(|n| n.parse().ok()) {
                *m.entry(n).or_insert(0) += 1;
            }
        }
        m
    }

    /// Scrapes the agent's `/metrics` over its unix socket.
    pub fn scrape(&self) -> String {
        use std::io::Write;
        let sock = PathBuf::from(std::env::var("XDG_RUNTIME_DIR").unwrap())
            .join("quantum-watchdog/metrics.sock");
        let mut s = std::os::unix::net::UnixStream::connect(&sock)
            .unwrap_or_else(|e| panic!("{}: {e}", sock.display()));
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
        out
    }

    /// The value of the sample whose line starts with `prefix` (name and labels).
    pub fn metric(&self, text: &str, prefix: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    pub fn consumer_name(&self, prefix: &str, pid: u32) -> String {
        format!("{prefix}-{}-{pid}", self.hostname)
    }

    /// Adds `count` entries and has `name` read them, in one transaction: a live consumer
    /// blocked on the stream is served only after it, so `name` holds all of them.
    pub fn xadd_held(&self, name: &str, count: u64) {
        let mut c = self.conn();
        let mut p = redis::pipe();
        p.atomic();
        for n in 1..=count {
            p.cmd("XADD").arg(STREAM).arg("*").arg("n").arg(n).ignore();
        }
        p.add_command(read_new(name, count)).ignore();
        let _: () = p.query(c.as_mut()).unwrap();
    }

    /// Makes a consumer `name` that holds `count` entries (read, never acknowledged).
    pub fn hold(&self, name: &str, count: u64) {
        let mut c = self.conn();
        let _: redis::Value = read_new(name, count).query(c.as_mut()).unwrap();
    }

    pub fn create_group(&self) {
        let mut c = self.conn();
        let _: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(STREAM)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query(c.as_mut());
    }
}

type RedisResultMap = Vec<std::collections::HashMap<String, redis::Value>>;

fn rand_u32() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

pub fn wait_consumer(env: &Env, pid: u32) {
    let name = env.consumer_name(PREFIX, pid);
    // On 7.0 a consumer appears only after a read returned entries: feed one.
    let ok = wait_until(Duration::from_secs(10), || {
        if env.consumers().contains_key(&name) {
            return true;
        }
        env.xadd(900_000_000 + u64::from(pid) % 1000, 1);
        std::thread::sleep(Duration::from_millis(200));
        false
    });
    assert!(ok, "consumer {name} never appeared: {:?}", env.consumers());
}

pub fn started_consumer(env: &Env, work_ms: &str) -> u32 {
    started_consumer_with(env, &[("QW_WORK_MS", work_ms)])
}

pub fn started_consumer_with(env: &Env, vars: &[(&str, &str)]) -> u32 {
    env.consumer_unit(UNIT, PREFIX, vars, "");
    env.start(UNIT);
    let pid = main_pid(UNIT);
    assert_ne!(pid, 0);
    wait_consumer(env, pid);
    pid
}

impl Env {
    /// Runs `quantum-watchdog --user --config <file> <args…>` once with `config`: (exit, stderr).
    pub fn oneshot(&self, config: &str, args: &[&str]) -> (i32, String) {
        let path = self.base.join("oneshot.toml");
        std::fs::write(&path, config).unwrap();
        let (rc, out, err) = sh(Command::new(bin())
            .args(["--user", "--config"])
            .arg(&path)
            .args(args)
            .env_remove("QUANTUM_WATCHDOG_MODE"));
        (rc, format!("{out}{err}"))
    }

    /// One Redis command, its reply as a `redis::Value`.
    pub fn cmd(&self, args: &[&str]) -> redis::Value {
        let mut c = self.conn();
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(c.as_mut())
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    /// One Redis command with an integer reply.
    pub fn int(&self, args: &[&str]) -> i64 {
        redis::from_redis_value(self.cmd(args)).unwrap()
    }

    /// The entries of `stream`: (ID, fields).
    pub fn entries(&self, stream: &str) -> Vec<(String, BTreeMap<String, String>)> {
        let v: Vec<(String, Vec<String>)> =
            redis::from_redis_value(self.cmd(&["XRANGE", stream, "-", "+"])).unwrap();
        v.into_iter()
            .map(|(id, kv)| {
                let m = kv
                    .chunks(2)
                    .filter(|c| c.len() == 2)
                    .map(|c| (c[0].clone(), c[1].clone()))
                    .collect();
                (id, m)
            })
            .collect()
    }
}

/// `XREADGROUP` of at most `count` new entries of the test group, as `name`.
fn read_new(name: &str, count: u64) -> redis::Cmd {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP")
        .arg(GROUP)
        .arg(name)
        .arg("COUNT")
        .arg(count)
        .arg("STREAMS")
        .arg(STREAM)
        .arg(">");
    cmd
}
