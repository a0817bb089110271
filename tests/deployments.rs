//! The agent against the Redis deployments of production: TLS (server verification and
//! mutual TLS), a least-rights ACL user, a Sentinel failover and a Redis Cluster with a slot
//! migration — real servers on 127.0.0.1 (tests/common/deploy.rs), a real systemd user
//! manager, the real binary. Each runs the core scenarios: a dead consumer's entries handed to
//! the live one, and a hung consumer restarted.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;

/// The upstream stage: a second binding on another stream.
const ROUTER: &str = "quantum-router.service";
const ROUTER_PREFIX: &str = "router";
const ROUTER_GROUP: &str = "quantum:group:router:ai.decision.made";

/// The least an agent in enforce mode (and `recover`) needs — documented in the README; the
/// test users get exactly this, and the deployment's extra below.
const AGENT_ACL: &str = "+ping +client|setname +xinfo|stream +xinfo|groups +xinfo|consumers \
     +xpending +get +time +hlen +hrandfield +evalsha +script|load +xclaim +xrange +xadd +xack \
     +xgroup|delconsumer +hget +hset +hdel +pexpire";
/// Under Sentinel, on the data nodes.
const SENTINEL_DATA_ACL: &str = "+role";
/// On the Sentinels, for an agent that authenticates to them.
const SENTINEL_ACL: &str = "+role +sentinel|masters";
/// On a cluster's nodes.
const CLUSTER_ACL: &str = "+cluster|slots +asking";
const AGENT_USER: &str = "qw-agent";
const AGENT_PASSWORD: &str = "s3cret-Agent";

/// The server's `--user` directive for the agent: `AGENT_ACL` and `extra` on `keys`.
fn acl_user_args(keys: &str, extra: &str) -> Vec<String> {
    let mut a = vec!["--user".to_string(), AGENT_USER.into(), "on".into()];
    a.push(format!(">{AGENT_PASSWORD}"));
    a.push("resetchannels".into());
    a.extend(keys.split_whitespace().map(String::from));
    a.extend(AGENT_ACL.split_whitespace().map(String::from));
    a.extend(extra.split_whitespace().map(String::from));
    a
}

/// The agent's `redis.username` and `redis.password_file` lines (the file written).
fn acl_lines(env: &Env) -> String {
    let pw = env.base.join("agent.password");
    std::fs::write(&pw, format!("{AGENT_PASSWORD}\n")).unwrap();
    format!(
        "redis.username = \"{AGENT_USER}\"\nredis.password_file = \"{}\"",
        pw.display()
    )
}

/// Entries `n` in `from..=to` missing from `unit`'s ack log (the first ten).
fn missing(env: &Env, unit: &str, from: u64, to: u64) -> Vec<u64> {
    let acked = env.acked(unit);
    (from..=to)
        .filter(|n| !acked.contains_key(n))
        .take(10)
        .collect()
}

/// `XPENDING stream group`: the group's pending count (0 if it cannot be read).
fn pending_of(env: &Env, stream: &str, group: &str) -> u64 {
    match env.cmd(&["XPENDING", stream, group]) {
        redis::Value::Array(a) => redis::from_redis_value(a[0].clone()).unwrap_or(0),
        _ => 0,
    }
}

/// The consumer names of `group` (none while its reader has not created the stream yet).
fn consumers_of(env: &Env, stream: &str, group: &str) -> Vec<String> {
    let mut c = env.conn();
    let v: Vec<BTreeMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(stream)
        .arg(group)
        .query(c.as_mut())
        .unwrap_or_default();
    v.iter()
        .filter_map(|m| redis::from_redis_value(m.get("name")?.clone()).ok())
        .collect()
}

fn xadd_to(env: &Env, stream: &str, from: u64, count: u64) {
    for n in from..from + count {
        env.cmd(&["XADD", stream, "*", "n", &n.to_string()]);
    }
}

/// Starts `unit` reading `stream` and waits until its consumer exists (fed one entry at a
/// time, as 7.0 shows a consumer only after a read returned entries). Returns its MainPID.
fn start_reader(env: &Env, unit: &str, stream: &str, group: &str, prefix: &str) -> u32 {
    env.consumer_unit_on(unit, stream, group, prefix, &[], "");
    env.start(unit);
    let pid = main_pid(unit);
    let name = env.consumer_name(prefix, pid);
    let ok = wait_until(Duration::from_secs(15), || {
        if consumers_of(env, stream, group).contains(&name) {
            return true;
        }
        env.cmd(&["XADD", stream, "*", "n", &format!("{}", 900_000_000 + pid)]);
        std::thread::sleep(Duration::from_millis(200));
        false
    });
    assert!(ok, "{name} never appeared");
    pid
}

/// Waits until `unit` runs with another MainPID than `old`.
fn restarted(unit: &str, old: u32, within: Duration) -> bool {
    wait_until(within, || {
        let p = main_pid(unit);
        p != 0 && p != old && show(unit, "ActiveState") == "active"
    })
}

/// The core scenarios on the deployment `env` is set up for: a dead consumer's 2 000 entries
/// are handed to the live consumer and the dead one deleted; then the live one hangs with
/// work waiting and is restarted. Nothing is lost. Returns the agent, still running.
fn core(env: &Env, extra_defaults: &str, tail_cfg: &str) -> Agent {
    env.create_group();
    env.xadd(1, 2000);
    let dead = env.consumer_name(PREFIX, dead_pid());
    env.hold(&dead, 2000);
    let pid = started_consumer(env, "0");
    let cfg = env.config("enforce", &[(UNIT, PREFIX)], extra_defaults) + tail_cfg;
    let agent = env.agent(&cfg);
    assert!(
        wait_until(Duration::from_secs(30), || !env
            .consumers()
            .contains_key(&dead)
            && env.group_pending() == 0
            && missing(env, UNIT, 1, 2000).is_empty()),
        "handoff: consumers {:?}, pending {}, missing {:?}\n{}",
        env.consumers(),
        env.group_pending(),
        missing(env, UNIT, 1, 2000),
        tail(&agent.log(), 60)
    );
    assert_eq!(main_pid(UNIT), pid, "a handoff is no reason to restart");
    kill("STOP", pid);
    env.xadd(2001, 20);
    assert!(
        restarted(UNIT, pid, Duration::from_secs(20)),
        "hung consumer not restarted\n{}",
        tail(&agent.log(), 60)
    );
    assert!(
        wait_until(Duration::from_secs(20), || env.group_pending() == 0
            && missing(env, UNIT, 2001, 2020).is_empty()),
        "after the restart: pending {}, missing {:?}\n{}",
        env.group_pending(),
        missing(env, UNIT, 2001, 2020),
        tail(&agent.log(), 60)
    );
    agent
}

fn quoted(list: &[String]) -> String {
    list.iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// TLS: the core scenarios over `rediss://` with mutual TLS; then a client without a
/// certificate, a wrong CA and a wrong name each fail clearly and act on nothing.
fn tls(env: &mut Env) {
    let certs = Certs::make(&env.base.join("tls"));
    let port = free_port();
    env.redis.stop();
    env.redis.args = certs.server_args(port, true);
    env.redis.spawn();
    let url = format!("rediss://127.0.0.1:{port}");
    let tls_lines = |url: &str, ca: &PathBuf, client: bool| {
        let mut s = format!(
            "redis.url = \"{url}\"\nredis.tls.ca_file = \"{}\"",
            ca.display()
        );
        if client {
            s += &format!(
                "\nredis.tls.cert_file = \"{}\"\nredis.tls.key_file = \"{}\"",
                certs.client_cert.display(),
                certs.client_key.display()
            );
        }
        s
    };
    env.agent_redis = tls_lines(&url, &certs.ca, true);
    let agent = core(env, "", "");
    assert!(
        agent.log().contains(&format!("redis standalone {url}")),
        "{}",
        agent.log()
    );
    drop(agent);
    let pid = main_pid(UNIT);
    // Past the restarted unit's startup grace: a verdict of its own.
    std::thread::sleep(Duration::from_secs(3));
    let cases = [
        (
            "no client certificate",
            tls_lines(&url, &certs.ca, false),
            vec!["redis.tls.cert_file".to_string()],
        ),
        (
            "wrong CA",
            tls_lines(&url, &certs.other_ca, true),
            vec![certs.other_ca.display().to_string()],
        ),
        (
            "wrong name",
            tls_lines(&format!("rediss://127.0.0.2:{port}"), &certs.ca, true),
            vec!["connect by a name the server's certificate lists".to_string()],
        ),
    ];
    for (what, lines, needles) in cases {
        env.agent_redis = lines;
        let cfg = env.config("enforce", &[(UNIT, PREFIX)], "");
        let (rc, out) = env.oneshot(&cfg, &["status"]);
        println!(
            "MEASURE tls {what}: status exit {rc}: {}",
            out.lines().find(|l| l.contains("redis")).unwrap_or("")
        );
        assert_eq!(rc, 3, "{what}: unknown is exit 3:\n{out}");
        assert!(out.contains("unknown"), "{what}:\n{out}");
        for n in needles {
            assert!(out.contains(&n), "{what}: {n:?} not named:\n{out}");
        }
    }
    // An agent that cannot verify the server acts on nothing, even with a hung consumer.
    env.agent_redis = tls_lines(&url, &certs.other_ca, true);
    kill("STOP", pid);
    env.xadd(3001, 5);
    let agent = env.agent(&env.config("enforce", &[(UNIT, PREFIX)], ""));
    std::thread::sleep(Duration::from_secs(9));
    assert_eq!(main_pid(UNIT), pid, "acted blind:\n{}", agent.log());
    assert!(
        agent.log().contains(&certs.other_ca.display().to_string()),
        "{}",
        agent.log()
    );
    kill("CONT", pid);
}
on_redis70!(tls);

/// ACL: a user with exactly [`AGENT_ACL`] on `~quantum:*` runs the core scenarios; without
/// `xpending` the binding reports NOPERM naming it, while the rest (the flag key, systemd)
/// keeps working and nothing is done.
fn acl(env: &mut Env) {
    let pw = env.base.join("agent.password");
    std::fs::write(&pw, "s3cret-Agent\n").unwrap();
    let mut args = vec![
        "ACL",
        "SETUSER",
        "qw-agent",
        "reset",
        "on",
        ">s3cret-Agent",
        "~quantum:*",
        "~{quantum:*",
    ];
    args.extend(AGENT_ACL.split_whitespace());
    env.cmd(&args);
    env.agent_redis = format!(
        "redis.url = \"{}\"\nredis.username = \"qw-agent\"\nredis.password_file = \"{}\"",
        env.redis.url(),
        pw.display()
    );
    env.cmd(&["SET", "quantum:kill", "off"]);
    let flag = "[[flag]]\nname = \"kill switch\"\nkey = \"quantum:kill\"\n";
    let agent = core(env, "", flag);
    assert!(!agent.log().contains("NOPERM"), "{}", agent.log());
    // And the server denied it nothing on the way.
    let denied: Vec<BTreeMap<String, redis::Value>> =
        redis::from_redis_value(env.cmd(&["ACL", "LOG"])).unwrap();
    let denied: Vec<_> = denied
        .iter()
        .filter(|e| {
            e.get("username")
                .is_some_and(|u| *u == redis::Value::BulkString(b"qw-agent".to_vec()))
        })
        .collect();
    assert!(denied.is_empty(), "ACL LOG: {denied:?}");
    let (st, _) = env.status();
    assert_eq!(st["flags"][0]["value"], "off", "{st:#}");
    // One command taken away.
    env.cmd(&["ACL", "SETUSER", "qw-agent", "-xpending"]);
    let pid = main_pid(UNIT);
    kill("STOP", pid);
    env.xadd(3001, 5);
    let ok = wait_until(Duration::from_secs(10), || {
        let (st, _) = env.status();
        st["units"][0]["bindings"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("NOPERM") && e.contains("xpending"))
    });
    let (st, rc) = env.status();
    assert!(ok, "{st:#}");
    println!(
        "MEASURE acl without xpending: {} (status exit {rc})",
        st["units"][0]["bindings"][0]["error"]
    );
    assert_eq!(
        st["flags"][0]["value"], "off",
        "the rest keeps working: {st:#}"
    );
    assert_eq!(st["units"][0]["active_state"], "active", "{st:#}");
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        main_pid(UNIT),
        pid,
        "acted without reading:\n{}",
        agent.log()
    );
    kill("CONT", pid);
}
on_redis70!(acl);

/// Sentinel: a Sentinel failover while the router is hung and a dead consumer holds entries.
/// Nothing read from the old master is used after it was demoted; on the new master the hung
/// unit is restarted, the entries handed off, none lost; the agent (under systemd's
/// watchdog) is never restarted.
fn sentinel(env: &mut Env) {
    // ACL users on the data nodes and on the Sentinels, each with the least it needs.
    let sentinel_user = format!("user qw-sentinel on >s3cret-Sentinel {SENTINEL_ACL}");
    let set = SentinelSet::start(
        &env.base.join("sentinel"),
        &SentinelOpts {
            data_args: acl_user_args("~quantum:* ~{quantum:*", SENTINEL_DATA_ACL),
            sentinel_conf: sentinel_user,
            tls: None,
        },
    );
    let nodes = set.nodes();
    env.route = Route::Sentinel {
        nodes: nodes.clone(),
        master: MASTER.into(),
    };
    let spw = env.base.join("sentinel.password");
    std::fs::write(&spw, "s3cret-Sentinel\n").unwrap();
    env.agent_redis = format!(
        "redis.sentinel.master = \"{MASTER}\"\nredis.sentinel.nodes = [{}]\n\
         redis.sentinel.username = \"qw-sentinel\"\nredis.sentinel.password_file = \"{}\"\n{}",
        quoted(&nodes),
        spw.display(),
        acl_lines(env)
    );
    let up = "quantum:stream:ai.decision.made";
    env.create_group();
    env.xadd(1, 500);
    let dead = env.consumer_name(PREFIX, dead_pid());
    env.hold(&dead, 500);
    let router = start_reader(env, ROUTER, up, ROUTER_GROUP, ROUTER_PREFIX);
    env.consumer_unit(UNIT, PREFIX, &[], "");
    let watches = [(UNIT, PREFIX)];
    let mut cfg = env.config("enforce", &watches, "");
    cfg += &format!(
        "[[watch]]\nunit = \"{ROUTER}\"\nstream = \"{up}\"\ngroup = \"{ROUTER_GROUP}\"\nconsumer = \"{ROUTER_PREFIX}-{{hostname}}-{{pid}}\"\n"
    );
    let log = agent_unit(env, &cfg);
    let agent_pid = main_pid("quantum-watchdog.service");
    let read = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("(read)")
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(10), || read() >= 2),
        "{}",
        text(&log)
    );
    // The router hangs with work waiting; the execution unit starts as the failover begins.
    kill("STOP", router);
    xadd_to(env, up, 1, 10);
    let old = set.master();
    let t0 = Instant::now();
    env.start(UNIT);
    let new = set.failover();
    println!(
        "MEASURE sentinel failover {old} -> {new} took {} ms",
        t0.elapsed().as_millis()
    );
    assert!(
        restarted(ROUTER, router, Duration::from_secs(30)),
        "router not restarted\n{}",
        tail(&text(&log), 80)
    );
    assert!(
        wait_until(Duration::from_secs(30), || !env
            .consumers()
            .contains_key(&dead)
            && env.group_pending() == 0
            && pending_of(env, up, ROUTER_GROUP) == 0
            && missing(env, UNIT, 1, 500).is_empty()
            && missing(env, ROUTER, 1, 10).is_empty()),
        "consumers {:?}, pending {} / {}, missing {:?} / {:?}\n{}",
        env.consumers(),
        env.group_pending(),
        pending_of(env, up, ROUTER_GROUP),
        missing(env, UNIT, 1, 500),
        missing(env, ROUTER, 1, 10),
        tail(&text(&log), 80)
    );
    let log_text = text(&log);
    assert!(
        log_text.contains(&format!("is now served by {new} (was {old})")),
        "{log_text}"
    );
    // The gap: the last cycle that read the old master → the first that read the new one.
    let (last_old, first_new) = failover_gap(&log_text, &new);
    println!(
        "MEASURE sentinel failover gap {} ms (last read of the old master at {last_old:?}, first of the new at {first_new:?})",
        (first_new - last_old).as_millis()
    );
    assert_eq!(main_pid("quantum-watchdog.service"), agent_pid);
    assert_eq!(show("quantum-watchdog.service", "NRestarts"), "0");
}
on_redis70!(sentinel);

fn text(p: &PathBuf) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// The agent as a `Type=notify` unit with `WatchdogSec=3`, logging (debug) to a file.
fn agent_unit(env: &Env, cfg: &str) -> PathBuf {
    let path = env.write_config(cfg);
    let log = env.base.join("agent-unit.log");
    let unit = format!(
        "[Unit]\nDescription=quantum-watchdog under test\n[Service]\nType=notify\nWatchdogSec=3\n\
         Restart=always\nRestartSec=1\nEnvironment=QUANTUM_WATCHDOG_LOG=debug\n\
         StandardOutput=append:{}\nStandardError=append:{}\nExecStart={} --user --config {} agent\n",
        log.display(),
        log.display(),
        bin().display(),
        path.display()
    );
    std::fs::write(env.unit_dir.join("quantum-watchdog.service"), unit).unwrap();
    systemctl(&["daemon-reload"]);
    let (rc, out) = systemctl(&["start", "quantum-watchdog.service"]);
    assert_eq!(rc, 0, "{out}");
    log
}

/// From the agent's log: the time of the last snapshot read before the switch to `new` was
/// logged, and of the first read after it (as offsets from the log's first line).
fn failover_gap(log: &str, new: &str) -> (Duration, Duration) {
    let at = |l: &str| -> Option<f64> {
        // 2026-12-01T21:13:25.123456Z: seconds within the day.
        let t = l.split_whitespace().next()?;
        let hms = t.split('T').nth(1)?.trim_end_matches('Z');
        let mut p = hms.split(':');
        let (h, m, s): (f64, f64, f64) = (
            p.next()?.parse().ok()?,
            p.next()?.parse().ok()?,
            p.next()?.parse().ok()?,
        );
        Some(h * 3600.0 + m * 60.0 + s)
    };
    let lines: Vec<&str> = log.lines().collect();
    let switch = lines
        .iter()
        .position(|l| l.contains(&format!("is now served by {new}")))
        .expect("switch logged");
    let start = lines.iter().find_map(|l| at(l)).unwrap();
    let last_old = lines[..switch]
        .iter()
        .rev()
        .filter(|l| l.contains("(read)"))
        .find_map(|l| at(l))
        .expect("a read before the switch");
    let first_new = lines[switch..]
        .iter()
        .filter(|l| l.contains("(read)"))
        .find_map(|l| at(l))
        .expect("a read after the switch");
    let d = |t: f64| Duration::from_secs_f64(t - start);
    (d(last_old), d(first_new))
}

/// Cluster: two bindings on streams owned by different nodes. A dead consumer's entries handed
/// off, an empty zombie deleted, a poison entry dead-lettered to `{<stream>}:dead`, the hung
/// router restarted; then the execution stream's slot migrates to another node mid-run and a
/// new dead consumer's entries are still handed off — none lost.
fn cluster(env: &mut Env) {
    // The dead-letter stream `{<stream>}:dead` needs the second key pattern.
    let cl = Cluster::start(
        &env.base.join("cluster"),
        &acl_user_args("~quantum:* ~{quantum:*", CLUSTER_ACL),
    );
    let seeds = cl.seeds();
    env.route = Route::Cluster(seeds.clone());
    env.agent_redis = format!("redis.cluster = [{}]\n{}", quoted(&seeds), acl_lines(env));
    let exec_node = cl.owner(cl.slot(STREAM));
    let up = [
        "quantum:stream:ai.decision.made",
        "quantum:stream:ai.signal",
        "quantum:stream:market.tick",
        "quantum:stream:risk.check",
    ]
    .into_iter()
    .find(|s| cl.owner(cl.slot(s)) != exec_node)
    .expect("a stream on another node");
    println!(
        "MEASURE cluster {STREAM} slot {} on node {exec_node}, {up} slot {} on node {}",
        cl.slot(STREAM),
        cl.slot(up),
        cl.owner(cl.slot(up))
    );
    env.create_group();
    env.xadd(1, 500);
    let dead = env.consumer_name(PREFIX, dead_pid());
    env.hold(&dead, 500);
    let router = start_reader(env, ROUTER, up, ROUTER_GROUP, ROUTER_PREFIX);
    env.cmd(&[
        "XGROUP",
        "CREATECONSUMER",
        up,
        ROUTER_GROUP,
        "router-otherhost-4242",
    ]);
    env.consumer_unit(UNIT, PREFIX, &[("QW_POISON", "3")], "");
    env.start(UNIT);
    let mut cfg = env.config("enforce", &[(UNIT, PREFIX)], "dead_letter_after = 5\n");
    cfg += &format!(
        "[[watch]]\nunit = \"{ROUTER}\"\nstream = \"{up}\"\ngroup = \"{ROUTER_GROUP}\"\nconsumer = \"{ROUTER_PREFIX}-{{hostname}}-{{pid}}\"\n"
    );
    let agent = env.agent(&cfg);
    let dead_stream = format!("{{{STREAM}}}:dead");
    let done = |env: &Env, dead: &str, to: u64| {
        !env.consumers().contains_key(dead)
            && env.group_pending() == 0
            && missing(env, UNIT, 1, to).iter().all(|n| *n == 3)
    };
    assert!(
        wait_until(Duration::from_secs(40), || done(env, &dead, 500)
            && !consumers_of(env, up, ROUTER_GROUP)
                .contains(&"router-otherhost-4242".to_string())),
        "consumers {:?} / {:?}, pending {}, missing {:?}\n{}",
        env.consumers(),
        consumers_of(env, up, ROUTER_GROUP),
        env.group_pending(),
        missing(env, UNIT, 1, 500),
        tail(&agent.log(), 80)
    );
    let dl = env.entries(&dead_stream);
    assert_eq!(dl.len(), 1, "{dl:?}");
    assert_eq!(dl[0].1.get("n").map(String::as_str), Some("3"), "{dl:?}");
    // The router hangs with work waiting.
    kill("STOP", router);
    xadd_to(env, up, 1, 10);
    assert!(
        restarted(ROUTER, router, Duration::from_secs(20)),
        "router not restarted\n{}",
        tail(&agent.log(), 80)
    );
    assert!(
        wait_until(Duration::from_secs(20), || pending_of(
            env,
            up,
            ROUTER_GROUP
        ) == 0
            && missing(env, ROUTER, 1, 10).is_empty()),
        "{}",
        tail(&agent.log(), 80)
    );
    // The execution stream's slot (and its dead-letter stream with it) moves mid-run.
    let to = (exec_node + 1) % 3;
    let moved = cl.migrate_slot(cl.slot(STREAM), to);
    assert_eq!(cl.owner(cl.slot(STREAM)), to);
    println!(
        "MEASURE cluster migrated slot {} with {moved} key(s) to node {to}",
        cl.slot(STREAM)
    );
    env.xadd(501, 300);
    let dead2 = env.consumer_name(PREFIX, dead_pid());
    env.hold(&dead2, 300);
    assert!(
        wait_until(Duration::from_secs(40), || done(env, &dead2, 800)),
        "after the migration: consumers {:?}, pending {}, missing {:?}\n{}",
        env.consumers(),
        env.group_pending(),
        missing(env, UNIT, 1, 800),
        tail(&agent.log(), 80)
    );
    assert_eq!(env.entries(&dead_stream).len(), 1);
    assert!(
        agent.log().contains("redis cluster of 3 seed(s)"),
        "{}",
        agent.log()
    );
}
on_redis70!(cluster);

/// Sentinel over TLS, with ACL users on the Sentinels and on the data nodes: the agent finds
/// the master through TLS Sentinels and reads it over TLS; with a wrong CA it reads nothing
/// and says which file it checked against.
fn sentinel_tls(env: &mut Env) {
    let certs = Certs::make(&env.base.join("tls"));
    let set = SentinelSet::start(
        &env.base.join("sentinel"),
        &SentinelOpts {
            data_args: acl_user_args("~quantum:* ~{quantum:*", SENTINEL_DATA_ACL),
            sentinel_conf: format!("user qw-sentinel on >s3cret-Sentinel {SENTINEL_ACL}"),
            tls: Some(&certs),
        },
    );
    // The test's own writes go to the master's unix socket.
    let master = set.master();
    let mut c = set.server_at(&master).conn();
    let dead = env.consumer_name(PREFIX, dead_pid());
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(STREAM)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query(&mut c)
        .unwrap();
    for n in 1..=5 {
        let _: String = redis::cmd("XADD")
            .arg(STREAM)
            .arg("*")
            .arg("n")
            .arg(n)
            .query(&mut c)
            .unwrap();
    }
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg(&["GROUP", GROUP, &dead, "STREAMS", STREAM, ">"])
        .query(&mut c)
        .unwrap();
    let spw = env.base.join("sentinel.password");
    std::fs::write(&spw, "s3cret-Sentinel\n").unwrap();
    let acl = acl_lines(env);
    let lines = |ca: &PathBuf| {
        format!(
            "redis.sentinel.master = \"{MASTER}\"\nredis.sentinel.nodes = [{}]\n\
             redis.sentinel.username = \"qw-sentinel\"\nredis.sentinel.password_file = \"{}\"\n\
             redis.tls.enabled = true\nredis.tls.ca_file = \"{}\"\n{}",
            quoted(&set.nodes()),
            spw.display(),
            ca.display(),
            acl
        )
    };
    env.agent_redis = lines(&certs.ca);
    let cfg = env.config("observe", &[(UNIT, PREFIX)], "");
    let (rc, out) = env.oneshot(&cfg, &["check-config"]);
    assert_eq!(rc, 0, "{out}");
    assert!(
        out.contains("# redis: sentinel master mymaster via 3 sentinel(s) over TLS"),
        "{out}"
    );
    let (rc, out) = env.oneshot(&cfg, &["status", "--json"]);
    let st: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(st["redis_error"].is_null(), "rc {rc}: {st:#}");
    let held = st["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["consumer"] == dead.as_str())
        .unwrap_or_else(|| panic!("{st:#}"));
    assert_eq!(held["pending"], 5, "{st:#}");
    env.agent_redis = lines(&certs.other_ca);
    let cfg = env.config("observe", &[(UNIT, PREFIX)], "");
    let (rc, out) = env.oneshot(&cfg, &["status"]);
    println!(
        "MEASURE sentinel tls wrong CA: status exit {rc}: {}",
        out.lines().find(|l| l.starts_with("redis")).unwrap_or("")
    );
    assert_eq!(rc, 3, "{out}");
    assert!(out.contains(&certs.other_ca.display().to_string()), "{out}");
}
on_redis70!(sentinel_tls);
