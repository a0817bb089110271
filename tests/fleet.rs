//! Many hosts, one Redis: three hosts on this machine, each its own UTS, PID and mount
//! namespace with its own host name, `systemd --user` manager, agent and consumer unit, all
//! on one server's unix socket. Host A is the test itself (tests/common/harness.rs); B and C
//! are started by it (`fleet_host`, below) and take orders through files in a shared
//! directory. See tests/common/mod.rs for what the harness needs.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A host's consumer that reads nothing itself: what it holds ([`b_holds`]) it keeps, as a
/// consumer of a host that dies mid-work (woken by `wake-consumer`).
const QUIET: (&str, &str) = ("QW_FLEET_QUIET", "1");

/// A fleet scenario: on Redis 7.0, this test's host named `qw-a`.
macro_rules! scenario_fleet {
    ($name:ident) => {
        scenario!(with as_qw_a; $name: redis70 = Redis70);
    };
}

/// The harness, this test's agent on host `qw-a`.
fn as_qw_a(name: &str, server: Server, body: impl FnOnce(&mut Env)) {
    in_harness_as(name, server, "qw-a", body)
}

/// The fleet's agents: enforce, interval 1 s, `[fleet]` with `extra` lines.
fn fleet_config(env: &Env, extra: &str) -> String {
    env.config("enforce", &[(UNIT, PREFIX)], "").replace(
        "[defaults]",
        &format!("[fleet]\nenabled = true\n{extra}\n[defaults]"),
    )
}

/// One more host, in namespaces of its own, running `fleet_host`.
struct Host {
    name: String,
    dir: PathBuf,
    child: Child,
}

impl Host {
    fn start(a: &Env, dir: &Path, name: &str, vars: &[(&str, &str)]) -> Host {
        let hd = dir.join(name);
        std::fs::create_dir_all(&hd).unwrap();
        let log = std::fs::File::create(hd.join("harness.log")).unwrap();
        let mut cmd = Command::new(manifest().join("tests/support/sd-harness.sh"));
        cmd.env_remove("QW_IN_NS")
            .env("QW_HOSTNAME", name)
            .env("QW_FLEET_DIR", &hd)
            .env("QW_FLEET_SOCK", &a.redis.sock)
            .env("QW_FLEET_SERVER", format!("{:?}", a.server()));
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let child = cmd
            .arg("--")
            .arg(std::env::current_exe().unwrap())
            .args(["fleet_host", "--exact", "--nocapture", "--include-ignored"])
            .args(["--test-threads", "1"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let h = Host {
            name: name.to_string(),
            dir: hd,
            child,
        };
        assert!(
            wait_until(Duration::from_secs(60), || h.file("up").is_some()),
            "host {name} did not come up:\n{}",
            tail(&h.file("harness.log").unwrap_or_default(), 60)
        );
        h
    }

    fn file(&self, f: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join(f)).ok()
    }

    /// Its consumer's name.
    fn consumer(&self) -> String {
        self.file("up").unwrap().trim().to_string()
    }

    /// Everything its agents logged.
    fn agent_log(&self) -> String {
        let mut s = String::new();
        for e in std::fs::read_dir(&self.dir).unwrap().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("agent-") && n.ends_with(".log") {
                s.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        s
    }

    /// Values of `n` its consumer acknowledged.
    fn acked(&self) -> Vec<u64> {
        std::fs::read_to_string(self.dir.join(format!("acks-{UNIT}.log")))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
            .collect()
    }

    /// An order to the host (`stop-agent`, `start-agent`, `hide-redis`, `show-redis`,
    /// `wake-consumer`); waits
    /// until it is carried out.
    fn order(&self, what: &str) {
        let n = std::fs::read_dir(&self.dir).unwrap().count();
        let id = format!("{what}.{n}");
        std::fs::write(self.dir.join("order.tmp"), &id).unwrap();
        std::fs::rename(self.dir.join("order.tmp"), self.dir.join("order")).unwrap();
        assert!(
            wait_until(Duration::from_secs(30), || self.file("done").as_deref()
                == Some(id.as_str())),
            "host {} did not carry out {what}",
            self.name
        );
    }

    /// The whole host dies at once: its manager, agent and consumers (its PID namespace).
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join("order"), "exit");
        if !wait_until(Duration::from_secs(15), || {
            self.child.try_wait().ok().flatten().is_some()
        }) {
            self.kill();
        }
    }
}

/// One host of a fleet scenario, inside its own harness: a consumer unit (`QW_FLEET_QUIET`:
/// one that reads nothing) and an agent; then orders from the scenario until `exit`.
#[test]
#[ignore = "one host of the fleet scenarios, started by them in namespaces of its own"]
fn fleet_host() {
    let Ok(dir) = std::env::var("QW_FLEET_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let server = match std::env::var("QW_FLEET_SERVER").unwrap().as_str() {
        "Valkey8" => Server::Valkey8,
        _ => Server::Redis70,
    };
    let sock = PathBuf::from(std::env::var("QW_FLEET_SOCK").unwrap());
    let env = Env::attach(server, sock.clone(), dir.clone());
    let quiet = std::env::var("QW_FLEET_QUIET").is_ok_and(|v| v == "1");
    let q = if quiet { "1" } else { "0" };
    env.consumer_unit(UNIT, PREFIX, &[("QW_QUIET", q)], "");
    env.start(UNIT);
    if !quiet {
        wait_consumer(&env, main_pid(UNIT));
    }
    let extra = std::env::var("QW_FLEET_EXTRA").unwrap_or_default();
    let config = fleet_config(&env, &extra);
    let mut agent = Some(env.agent(&config));
    let name = env.consumer_name(PREFIX, main_pid(UNIT));
    std::fs::write(dir.join("up"), format!("{name}\n")).unwrap();
    let mut seen = String::new();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let order = std::fs::read_to_string(dir.join("order")).unwrap_or_default();
        if order == seen {
            continue;
        }
        seen = order.clone();
        let what = order.split('.').next().unwrap_or_default();
        let hidden = sock.parent().unwrap();
        match what {
            "exit" => return,
            "stop-agent" => agent = None,
            "start-agent" => agent = Some(env.agent(&config)),
            "wake-consumer" => kill("USR2", main_pid(UNIT)),
            "hide-redis" => {
                let (rc, _, err) = sh(Command::new("mount")
                    .args(["-t", "tmpfs", "tmpfs"])
                    .arg(hidden));
                assert_eq!(rc, 0, "hide {}: {err}", hidden.display());
            }
            "show-redis" => {
                let (rc, _, err) = sh(Command::new("umount").arg(hidden));
                assert_eq!(rc, 0, "show {}: {err}", hidden.display());
            }
            other => panic!("unknown order {other:?}"),
        }
        let _ = &agent;
        std::fs::write(dir.join("done"), &order).unwrap();
    }
}

/// The fleet of a scenario: A (this harness), B and C.
struct Fleet {
    b: Host,
    c: Host,
    a_agent: Agent,
}

fn fleet(env: &Env, a: &[(&str, &str)], b: &[(&str, &str)], c: &[(&str, &str)]) -> Fleet {
    env.create_group();
    started_consumer(env, "0");
    let get = |k: &str| a.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    // SAFETY: the test is one thread here; the variable is for A's agent only.
    let stall = get("QUANTUM_WATCHDOG_TEST_STALL_AFTER_LEASE_MS");
    if let Some(ms) = stall {
        unsafe { std::env::set_var("QUANTUM_WATCHDOG_TEST_STALL_AFTER_LEASE_MS", ms) };
    }
    let a_agent = env.agent(&fleet_config(env, get("QW_FLEET_EXTRA").unwrap_or("")));
    unsafe { std::env::remove_var("QUANTUM_WATCHDOG_TEST_STALL_AFTER_LEASE_MS") };
    let dir = env.base.join("fleet");
    let b = Host::start(env, &dir, "qw-b", b);
    let c = Host::start(env, &dir, "qw-c", c);
    // Every agent has published (and read the others').
    assert!(
        wait_until(Duration::from_secs(20), || {
            let n = env.int(&["ZCARD", "{quantum-watchdog}:hosts"]);
            n == 3
        }),
        "three heartbeats, found {:?}:\nA:\n{}\nB:\n{}",
        env.cmd(&["ZRANGE", "{quantum-watchdog}:hosts", "0", "-1"]),
        tail(&a_agent.log(), 30),
        tail(&b.agent_log(), 30)
    );
    Fleet { b, c, a_agent }
}

/// Makes B's consumer hold entries `from..from + n`: added and read under its name in one
/// transaction, so no other reader gets any of them.
fn b_holds(env: &Env, f: &Fleet, from: u64, n: u64) {
    holds(env, &f.b.consumer(), from, n);
}

/// Makes consumer `name` hold entries `from..from + n` (see [`b_holds`]).
fn holds(env: &Env, name: &str, from: u64, n: u64) {
    let mut c = env.conn();
    let mut p = redis::pipe();
    p.atomic();
    for i in from..from + n {
        p.cmd("XADD").arg(STREAM).arg("*").arg("n").arg(i).ignore();
    }
    p.cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg(name)
        .arg("COUNT")
        .arg(n)
        .arg("STREAMS")
        .arg(STREAM)
        .arg(">")
        .ignore();
    let _: () = p.query(c.as_mut()).unwrap();
    assert_eq!(env.consumers().get(name).map(|c| c.0), Some(n));
}

/// Every value of `from..to` acknowledged exactly once, by any host.
fn acked_once(env: &Env, f: &Fleet, from: u64, to: u64) -> bool {
    let mut all: Vec<u64> = env.acked(UNIT).into_keys().collect();
    let a_counts = env.acked(UNIT);
    let dup_a = a_counts.values().any(|&n| n > 1);
    all.extend(f.b.acked());
    all.extend(f.c.acked());
    all.retain(|n| (from..to).contains(n));
    all.sort();
    let expected: Vec<u64> = (from..to).collect();
    !dup_a && all == expected
}

/// `status --json`'s row of `consumer`.
fn consumer_row(env: &Env, consumer: &str) -> serde_json::Value {
    let (st, _) = env.status();
    st["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["consumer"] == consumer)
        .unwrap_or_else(|| panic!("{consumer} in {st}"))
        .clone()
}

/// Recovery lines for `consumer` in an agent's log.
fn claims_of(log: &str, consumer: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("claimed") && l.contains(consumer))
        .count()
}

/// Scenario 1: host B dies whole while its consumer holds entries → within host_dead_after +
/// 2 intervals they are handed to a live consumer on A or C and B's consumer is deleted, by
/// exactly one agent; nothing lost.
fn host_dies(env: &mut Env) {
    let dead_after = ("QW_FLEET_EXTRA", "host_dead_after = \"5s\"");
    let mut f = fleet(env, &[dead_after], &[QUIET, dead_after], &[dead_after]);
    let b = f.b.consumer();
    b_holds(env, &f, 1, 5);
    let t = Instant::now();
    f.b.kill();
    let gone = wait_until(Duration::from_secs(30), || {
        !env.consumers().contains_key(&b) && acked_once(env, &f, 1, 6)
    });
    let took = t.elapsed();
    println!(
        "MEASURE fleet host death → its entries consumed elsewhere: {:.2} s (host_dead_after 5 s, interval 1 s)",
        took.as_secs_f64()
    );
    let (la, lc) = (f.a_agent.log(), f.c.agent_log());
    assert!(
        gone,
        "B's entries recovered and B's consumer deleted:\n{la}"
    );
    assert!(took < Duration::from_secs(5 + 2 + 2), "took {took:?}");
    assert_eq!(
        claims_of(&la, &b) + claims_of(&lc, &b),
        1,
        "exactly one agent claimed:\nA:\n{la}\nC:\n{lc}"
    );
    // And the fleet shows B dead.
    let (st, _) = env.status();
    let hosts = st["fleet"]
        .as_array()
        .expect("status --json lists the fleet");
    let b_row = hosts.iter().find(|h| h["host"] == "qw-b").unwrap();
    assert_eq!(b_row["state"], "dead", "{st}");
}
scenario_fleet!(host_dies);

/// Scenario 2: B's agent alive, its consumer idle with no work for 3 × zombie_after → never
/// touched (without heartbeats the zombie rule would delete it after zombie_after).
fn idle_host_untouched(env: &mut Env) {
    let f = fleet(env, &[], &[QUIET], &[]);
    let b = f.b.consumer();
    // Listed, holding nothing, never reading: its idle time only grows.
    let _ = env.cmd(&["XGROUP", "CREATECONSUMER", STREAM, GROUP, &b]);
    std::thread::sleep(Duration::from_secs(10));
    assert!(env.consumers().contains_key(&b), "{:?}", env.consumers());
    let (la, lc) = (f.a_agent.log(), f.c.agent_log());
    assert!(!la.contains(&format!("delete consumer {b}")), "{la}");
    assert!(!lc.contains(&format!("delete consumer {b}")), "{lc}");
    let row = consumer_row(env, &b);
    assert_eq!(row["liveness"], "live", "{row}");
}
scenario_fleet!(idle_host_untouched);

/// Scenario 3: B's agent restarted (an upgrade) with the shipped `host_dead_after` while its
/// consumer holds entries → nothing recovered from the live host.
fn agent_restart_recovers_nothing(env: &mut Env) {
    let f = fleet(env, &[], &[QUIET], &[]);
    let b = f.b.consumer();
    b_holds(env, &f, 1, 3);
    f.b.order("stop-agent");
    std::thread::sleep(Duration::from_secs(6));
    // Its heartbeat expired (3 intervals): B is silent, its consumer kept.
    let row = consumer_row(env, &b);
    assert_eq!(row["liveness"], "unknown", "{row}");
    assert!(row["note"].as_str().unwrap().contains("silent"), "{row}");
    std::thread::sleep(Duration::from_secs(4));
    f.b.order("start-agent");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        env.consumers().get(&b).map(|c| c.0),
        Some(3),
        "B keeps its entries"
    );
    let (la, lc) = (f.a_agent.log(), f.c.agent_log());
    assert_eq!(
        claims_of(&la, &b) + claims_of(&lc, &b),
        0,
        "A:\n{la}\nC:\n{lc}"
    );
    // A quick restart, within the heartbeat's life: its predecessor's heartbeat is no twin's.
    f.b.order("stop-agent");
    f.b.order("start-agent");
    std::thread::sleep(Duration::from_secs(5));
    let alarm = "is written by two agents";
    for (who, log) in [
        ("A", f.a_agent.log()),
        ("B", f.b.agent_log()),
        ("C", f.c.agent_log()),
    ] {
        assert!(
            !log.contains(alarm),
            "{who} took a restart for a twin:\n{}",
            tail(&log, 20)
        );
    }
    let (st, _) = env.status();
    assert!(
        st["fleet"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["shared"] == false),
        "{st}"
    );
}
scenario_fleet!(agent_restart_recovers_nothing);

#[cfg(debug_assertions)]
/// Scenario 4 (debug builds: the stall is their test hook): A and C race for dead B; A takes the lease and stalls past it (the test hook
/// of debug builds), C takes over and recovers; A's late script is refused by the fencing
/// token; nothing claimed twice.
fn stalled_leaseholder_is_fenced(env: &mut Env) {
    // A finds B dead first (5 s), C three seconds later, when A's 2 s lease has expired.
    let a = ("QW_FLEET_EXTRA", "host_dead_after = \"5s\"");
    let c = ("QW_FLEET_EXTRA", "host_dead_after = \"8s\"");
    let stall = ("QUANTUM_WATCHDOG_TEST_STALL_AFTER_LEASE_MS", "6000");
    let mut f = fleet(env, &[a, stall], &[QUIET, a], &[c]);
    let b = f.b.consumer();
    b_holds(env, &f, 1, 5);
    f.b.kill();
    let done = wait_until(Duration::from_secs(40), || {
        !env.consumers().contains_key(&b)
            && acked_once(env, &f, 1, 6)
            && f.a_agent.log().contains("FENCED")
    });
    let (la, lc) = (f.a_agent.log(), f.c.agent_log());
    assert!(done, "A:\n{la}\nC:\n{lc}");
    assert_eq!(claims_of(&lc, &b), 1, "C recovered B:\n{lc}");
    assert_eq!(claims_of(&la, &b), 0, "A's late claim moved nothing:\n{la}");
}
#[cfg(debug_assertions)]
scenario_fleet!(stalled_leaseholder_is_fenced);

/// Scenario 5: B cut off from Redis (its socket hidden in its namespace, its connections
/// dropped) longer than host_dead_after, then back → its entries recovered elsewhere once,
/// its consumer registered again and vouched for; nothing lost.
fn partitioned_host_comes_back(env: &mut Env) {
    let dead_after = ("QW_FLEET_EXTRA", "host_dead_after = \"5s\"");
    let f = fleet(env, &[dead_after], &[QUIET, dead_after], &[dead_after]);
    let b = f.b.consumer();
    b_holds(env, &f, 1, 4);
    f.b.order("hide-redis");
    let _ = env.cmd(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
    let recovered = wait_until(Duration::from_secs(30), || {
        !env.consumers().contains_key(&b) && acked_once(env, &f, 1, 5)
    });
    assert!(recovered, "A:\n{}", f.a_agent.log());
    f.b.order("show-redis");
    f.b.order("wake-consumer");
    // B's consumer reads again: registered anew, vouched for by B's agent, left alone.
    env.xadd(100, 30);
    let back = wait_until(Duration::from_secs(30), || env.consumers().contains_key(&b));
    assert!(back, "B's consumer is back: {:?}", env.consumers());
    std::thread::sleep(Duration::from_secs(8));
    assert!(env.consumers().contains_key(&b), "B's consumer kept");
    let (la, lc) = (f.a_agent.log(), f.c.agent_log());
    assert_eq!(
        claims_of(&la, &b) + claims_of(&lc, &b),
        1,
        "one recovery:\nA:\n{la}\nC:\n{lc}"
    );
    assert!(acked_once(env, &f, 1, 5), "nothing processed twice");
    assert!(
        wait_until(Duration::from_secs(10), || acked_once(env, &f, 100, 130)),
        "the entries after the partition, each processed once"
    );
}
scenario_fleet!(partitioned_host_comes_back);

/// A cloned machine kept its host name: a second host `qw-a` beside A, each with its agent and
/// a consumer. To A's agent the twin's consumer (its PID runs nowhere here) would be a dead
/// consumer of its own; the heartbeat under `qw-a` changes hands between the two agents, so
/// both say it loudly and neither takes anything: the twin's entries stay with the twin.
fn a_cloned_host_takes_nothing(env: &mut Env) {
    env.create_group();
    // A's consumer with a PID the twin's, started first in a fresh namespace, will not have.
    for _ in 0..40 {
        dead_pid();
    }
    started_consumer(env, "0");
    let a_agent = env.agent(&fleet_config(env, ""));
    let dir = env.base.join("fleet");
    let twin = Host::start(env, &dir, "qw-a", &[QUIET]);
    let theirs = twin.consumer();
    let ours = env.consumer_name(PREFIX, main_pid(UNIT));
    assert_ne!(
        theirs, ours,
        "the twin's consumer name must differ from A's"
    );
    holds(env, &theirs, 1, 5);
    let alarm = "is written by two agents";
    assert!(
        wait_until(Duration::from_secs(20), || a_agent.log().contains(alarm)
            && twin.agent_log().contains(alarm)),
        "A:\n{}\ntwin:\n{}",
        tail(&a_agent.log(), 30),
        tail(&twin.agent_log(), 30)
    );
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        env.consumers().get(&theirs).map(|c| c.0),
        Some(5),
        "the twin's entries were taken:\nA:\n{}",
        tail(&a_agent.log(), 40)
    );
    assert_eq!(claims_of(&a_agent.log(), &theirs), 0);
    let (st, rc) = env.status();
    let me = st["fleet"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["this"] == true)
        .cloned()
        .unwrap_or_default();
    assert_eq!(me["shared"], true, "{st}");
    assert_eq!(rc, 2, "a shared host name is critical: {st}");
    let row = consumer_row(env, &theirs);
    assert_eq!(row["liveness"], "unknown", "{row}");
    println!("MEASURE cloned host: both agents alarmed, 5 entries kept by the twin");
}
scenario_fleet!(a_cloned_host_takes_nothing);

/// The server's time in ms.
fn server_ms(env: &Env) -> u64 {
    let t: Vec<String> = redis::from_redis_value(env.cmd(&["TIME"])).unwrap();
    t[0].parse::<u64>().unwrap() * 1000 + t[1].parse::<u64>().unwrap() / 1000
}

/// Another Redis client writes the fleet's keys (a bug, an operator's script): what the agent
/// reads is checked, not trusted, and what it cannot read is said loudly.
/// - A recovery lease without a time to live (no agent's) does not keep a dead host's entries
///   from being recovered: it counts as free and is replaced.
/// - 1 000 hosts scored ahead of the server's clock do not push the real hosts out of the read.
/// - A 64 MiB "heartbeat" is not copied by any look (no call of ours reaches 5 ms).
/// - The hosts set turned into a string: an error in the journal, `status --fleet` and a
///   metric, and the end of it said when the key is right again.
fn foreign_writes_to_the_fleets_keys(env: &mut Env) {
    env.create_group();
    started_consumer(env, "0");
    // A dead host: gone a minute ago, its consumer holding 3 entries.
    let now = server_ms(env);
    let hosts = "{quantum-watchdog}:hosts";
    env.cmd(&["ZADD", hosts, &(now - 60_000).to_string(), "qw-gone"]);
    holds(env, "execution-qw-gone-123", 1, 3);
    let lease = format!("{{{STREAM}}}:quantum-watchdog:lease:{GROUP}");
    env.cmd(&["SET", &lease, "qw-other/1"]);
    let agent = env.agent(&fleet_config(env, "host_dead_after = \"3s\""));
    assert!(
        wait_until(Duration::from_secs(20), || !env
            .consumers()
            .contains_key("execution-qw-gone-123")
            && env.group_pending() == 0),
        "a lease without a time to live kept the dead host's entries: {:?}\n{}",
        env.consumers(),
        tail(&agent.log(), 30)
    );
    // 1 000 members scored in the future, and one 64 MiB heartbeat.
    let ahead = (server_ms(env) + 3_600_000).to_string();
    let mut c = env.conn();
    let mut p = redis::pipe();
    for i in 0..1000 {
        p.cmd("ZADD")
            .arg(hosts)
            .arg(&ahead)
            .arg(format!("fake-{i}"))
            .ignore();
    }
    p.cmd("SET")
        .arg("{quantum-watchdog}:host:big")
        .arg(vec![b'x'; 64 << 20])
        .ignore();
    p.cmd("ZADD")
        .arg(hosts)
        .arg(server_ms(env))
        .arg("big")
        .ignore();
    let _: () = p.query(c.as_mut()).unwrap();
    env.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "5000"]);
    env.cmd(&["SLOWLOG", "RESET"]);
    std::thread::sleep(Duration::from_secs(3));
    let slow: Vec<redis::Value> =
        redis::from_redis_value(env.cmd(&["SLOWLOG", "GET", "10"])).unwrap();
    assert!(slow.is_empty(), "calls of 5 ms or more: {slow:?}");
    let (st, _) = env.status();
    let fleet = st["fleet"].as_array().unwrap();
    assert!(
        fleet
            .iter()
            .any(|h| h["this"] == true && h["state"] == "alive"),
        "the real host pushed out: {st}"
    );
    assert!(
        fleet
            .iter()
            .all(|h| !h["host"].as_str().unwrap().starts_with("fake-"))
    );
    // The hosts set turned into a string.
    env.cmd(&["DEL", hosts]);
    env.cmd(&["SET", hosts, "not a sorted set"]);
    assert!(
        agent.wait_log(
            "the fleet's heartbeats cannot be read",
            Duration::from_secs(10)
        ),
        "{}",
        tail(&agent.log(), 20)
    );
    let (st, _) = env.status();
    assert!(
        st["fleet_error"]
            .as_str()
            .is_some_and(|e| e.contains("WRONGTYPE")),
        "{st}"
    );
    env.cmd(&["DEL", hosts]);
    assert!(
        agent.wait_log("no longer: the fleet's heartbeats", Duration::from_secs(10)),
        "{}",
        tail(&agent.log(), 20)
    );
    println!(
        "MEASURE fleet keys written by another client: lease replaced, no slow call, alarm said"
    );
}
scenario_fleet!(foreign_writes_to_the_fleets_keys);
