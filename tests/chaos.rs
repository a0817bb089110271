//! Chaos soak: nothing is lost. A producer writes N uniquely numbered messages; three consumer
//! units of the real test consumer process and acknowledge them; the agent runs in enforce
//! mode; a seeded chaos driver SIGKILLs consumers mid-batch, SIGSTOPs one past hung_after,
//! restarts Redis (AOF on), restarts the agent, and one message is a poison every consumer
//! rejects. At the end, from Redis and the consumers' own records: every message is
//! acknowledged or dead-lettered (0 lost), duplicates are counted, and the agent kept its rules.
//!
//! Short form (CI): `cargo test --test chaos` (~3 minutes, N = 20 000).
//! Long form: `tests/chaos --long` (N = 200 000, ~15 minutes). `QW_CHAOS_SEED=…` replays a run.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;

const POISON: u64 = 777;
const UNITS: [&str; 3] = [
    "quantum-exec-a.service",
    "quantum-exec-b.service",
    "quantum-exec-c.service",
];
const PREFIX: &str = "exec";
const BUDGET: usize = 4;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn chaos_nothing_lost() {
    in_harness("chaos_nothing_lost", chaos_server(), soak);
}

/// Valkey 8 by default: with 7.2+ semantics a consumer stopped mid-batch while its siblings keep
/// the lag at 0 is seen as hung (no read attempts) and restarted; on 7.0 it is only
/// stale-pending. `QW_CHAOS_SERVER=redis70` runs on Debian's Redis 7.0.
fn chaos_server() -> Server {
    match std::env::var("QW_CHAOS_SERVER").as_deref() {
        Ok("redis70") => Server::Redis70,
        Ok("redis62") => Server::Redis62,
        Ok("redis80") => Server::Redis80,
        _ => Server::Valkey8,
    }
}

fn soak(env: &mut Env) {
    let long = std::env::var("QW_CHAOS").is_ok_and(|v| v == "long");
    let n_total: u64 = if long { 200_000 } else { 20_000 };
    let produce_for = Duration::from_secs(if long { 600 } else { 110 });
    let seed: u64 = std::env::var("QW_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("MEASURE chaos seed={seed} messages={n_total} (replay with QW_CHAOS_SEED={seed})");
    let mut rng = Rng(seed);

    // Redis with AOF, so a restart keeps the data.
    env.redis.stop();
    env.redis.aof = true;
    env.redis.spawn();
    env.create_group();
    for u in UNITS {
        env.consumer_unit(
            u,
            PREFIX,
            &[("QW_WORK_MS", "1"), ("QW_POISON", &POISON.to_string())],
            "Restart=always\nRestartSec=1\n",
        );
        env.start(u);
    }
    let cfg = env
        .config(
            "enforce",
            &UNITS.iter().map(|u| (*u, PREFIX)).collect::<Vec<_>>(),
            "dead_letter_after = 5\n",
        )
        .replace("hung_after = \"4s\"", "hung_after = \"3s\"")
        .replace(
            "max = 3, within = \"10m\"",
            &format!("max = {BUDGET}, within = \"30m\""),
        );
    // The three units share one consumer-name template: each unit's own MainPID tells its
    // consumer apart, and any live consumer of the group is a fine handoff target.
    let mut agent = env.agent(&cfg);

    // The producer: numbered messages, retried through Redis outages until acknowledged.
    let produced = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let producer = {
        let url = env.redis.url();
        let produced = produced.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let per_batch = 100u64;
            let batches = n_total / per_batch;
            let pause = produce_for / batches as u32;
            let mut next = 1u64;
            let mut conn: Option<redis::Connection> = None;
            while next <= n_total {
                let c = match conn.as_mut() {
                    Some(c) => c,
                    None => match redis::Client::open(url.as_str())
                        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
                    {
                        Ok(c) => conn.insert(c),
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(200));
                            continue;
                        }
                    },
                };
                let mut p = redis::pipe();
                for n in next..next + per_batch {
                    p.cmd("XADD").arg(STREAM).arg("*").arg("n").arg(n).ignore();
                }
                match p.query::<()>(c) {
                    Ok(()) => {
                        next += per_batch;
                        produced.store(next - 1, Ordering::SeqCst);
                        std::thread::sleep(pause);
                    }
                    // Retried whole: a batch that did land is then added twice (duplicates,
                    // counted at the end), never lost.
                    Err(_) => {
                        conn = None;
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    // The chaos driver.
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    let started = Instant::now();
    while !done.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(4000 + rng.below(4000)));
        if done.load(Ordering::SeqCst) {
            break;
        }
        let unit = UNITS[rng.below(3) as usize];
        let what = match rng.below(100) {
            0..=39 => "kill",
            40..=64 => "stop",
            65..=79 => "redis",
            _ => "agent",
        };
        let t = started.elapsed().as_secs_f64();
        match what {
            "kill" => {
                let pid = main_pid(unit);
                if pid != 0 {
                    kill("KILL", pid);
                    println!("MEASURE chaos event {t:6.1}s SIGKILL {unit} ({pid})");
                }
            }
            "stop" => {
                let pid = main_pid(unit);
                if pid != 0 {
                    kill("STOP", pid);
                    println!("MEASURE chaos event {t:6.1}s SIGSTOP {unit} ({pid}) for 7s");
                    std::thread::sleep(Duration::from_secs(7));
                    let _ = std::process::Command::new("kill")
                        .args(["-CONT", &pid.to_string()])
                        .status();
                }
            }
            "redis" => {
                println!("MEASURE chaos event {t:6.1}s restart Redis");
                env.redis.signal("TERM");
                let _ = env.redis.child.as_mut().unwrap().wait();
                env.redis.child = None;
                std::thread::sleep(Duration::from_millis(1500));
                env.redis.spawn();
            }
            _ => {
                println!("MEASURE chaos event {t:6.1}s restart the agent");
                kill("TERM", agent.child.id());
                let _ = agent.child.wait();
                agent = env.agent(&cfg);
            }
        }
        *counts.entry(what).or_default() += 1;
    }
    producer.join().unwrap();
    println!(
        "MEASURE chaos produced={} in {:.0}s",
        produced.load(Ordering::SeqCst),
        started.elapsed().as_secs_f64()
    );

    // Settle: everything acknowledged except the poison, which goes to the dead-letter stream.
    let settled = wait_until(Duration::from_secs(120), || {
        env.group_pending() == 0 && !work_waiting(env)
    });
    let dead = dead_lettered(env);
    let mut acked: BTreeMap<u64, u32> = BTreeMap::new();
    for u in UNITS {
        for (n, c) in env.acked(u) {
            *acked.entry(n).or_default() += c;
        }
    }
    let lost: Vec<u64> = (1..=n_total)
        .filter(|n| !acked.contains_key(n) && !dead.contains_key(n))
        .collect();
    let duplicates: u32 = acked.values().map(|c| c - 1).sum();
    let log = all_agent_logs(env);
    let restarts: BTreeMap<&str, usize> = UNITS
        .iter()
        .map(|u| (*u, log.matches(&format!("restarting {u}:")).count()))
        .collect();
    println!(
        "MEASURE chaos summary: messages={n_total} acked={} dead_lettered={} duplicates={duplicates} lost={} \
         kills={} stops={} redis_restarts={} agent_restarts={} agent_restarts_of_units={:?} settled={settled}",
        acked.len(),
        dead.len(),
        lost.len(),
        counts.get("kill").unwrap_or(&0),
        counts.get("stop").unwrap_or(&0),
        counts.get("redis").unwrap_or(&0),
        counts.get("agent").unwrap_or(&0),
        restarts
    );
    assert!(
        lost.is_empty(),
        "lost {} messages, e.g. {:?}; consumers {:?}",
        lost.len(),
        &lost[..lost.len().min(10)],
        env.consumers()
    );
    assert!(
        settled,
        "did not settle: pending {} waiting {}\n{}",
        env.group_pending(),
        work_waiting(env),
        tail(&log, 80)
    );
    // The poison message went to the dead-letter stream, with its evidence, and was never acked.
    let p = dead
        .get(&POISON)
        .unwrap_or_else(|| panic!("poison {POISON} not dead-lettered: {dead:?}"));
    assert!(
        p.get("deliveries")
            .and_then(|d| d.parse::<u64>().ok())
            .unwrap_or(0)
            >= 5,
        "{p:?}"
    );
    assert_eq!(p.get("group").map(String::as_str), Some(GROUP));
    assert!(
        p.contains_key("original-id") && p.contains_key("consumer"),
        "{p:?}"
    );
    assert!(
        !acked.contains_key(&POISON),
        "the poison was never processed"
    );
    // The agent's rules held throughout.
    for (u, n) in &restarts {
        assert!(*n <= BUDGET, "{u} restarted {n} times, budget {BUDGET}");
    }
    for line in log.lines().filter(|l| l.contains("restarting quantum-")) {
        assert!(
            line.contains("while work waits")
                || line.contains("not consuming")
                || line.contains("stopped reading"),
            "a restart without work waiting: {line}"
        );
    }
    for line in log.lines().filter(|l| l.contains("deleted (held")) {
        assert!(
            line.contains("deleted (held 0)"),
            "deleted a consumer holding entries: {line}"
        );
    }
    assert!(agent.alive());
}

/// Entries not yet delivered to the group (lag, or the ID comparison where lag is null).
fn work_waiting(env: &Env) -> bool {
    let mut c = env.redis.conn();
    let s: redis::Value = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(STREAM)
        .query(&mut c)
        .unwrap();
    let g: redis::Value = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(STREAM)
        .query(&mut c)
        .unwrap();
    let stream = quantum_watchdog::adapters::redis::xinfo::stream_info(&s).unwrap();
    let group = quantum_watchdog::adapters::redis::xinfo::groups(&g)
        .unwrap()
        .into_iter()
        .find(|x| x.name == GROUP)
        .unwrap();
    group.work_waiting(&stream)
}

/// `n` → fields of its entry in the dead-letter stream.
fn dead_lettered(env: &Env) -> BTreeMap<u64, BTreeMap<String, String>> {
    let mut c = env.redis.conn();
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(format!("{STREAM}:dead"))
        .arg("-")
        .arg("+")
        .query(&mut c)
        .unwrap_or_default();
    entries
        .into_iter()
        .filter_map(|(_, kv)| {
            let m: BTreeMap<String, String> = kv
                .chunks(2)
                .filter(|c| c.len() == 2)
                .map(|c| (c[0].clone(), c[1].clone()))
                .collect();
            Some((m.get("n")?.parse().ok()?, m))
        })
        .collect()
}

fn all_agent_logs(env: &Env) -> String {
    let mut s = String::new();
    let mut files: Vec<_> = std::fs::read_dir(&env.base)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for f in files.into_iter().filter(|p| {
        p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("agent-")
    }) {
        s.push_str(&std::fs::read_to_string(f).unwrap_or_default());
    }
    s
}
