//! The pure part of one look, at 10 / 100 / 1 000 bindings: the fetch plan, the PIDs to probe,
//! the decision and the metrics' update, on a snapshot shaped like `bench/run`'s section 8
//! (units running, 11 consumers a group, nothing pending, observe mode; a quiet group's known
//! consumers stand for a read as the Redis adapter lets them). Figures, not pass/fail:
//! `cargo bench --bench cycle` (QW_BENCH_LOOKS looks a size, default 300).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use quantum_watchdog::config::{Config, from_fragments};
use quantum_watchdog::model::plan::FetchPlan;
use quantum_watchdog::model::*;
use quantum_watchdog::policy::{self, Memory};
use quantum_watchdog::report::metrics::Metrics;

const HOST: &str = "bench-host";
const S: u64 = 1_000_000;
const NOW: u64 = 1_800_000_000 * S;

fn config(n: usize) -> Config {
    let mut t =
        String::from("mode = \"observe\"\ninterval = \"1s\"\nunits = [\"quantum-z-*.service\"]\n");
    for i in 0..n {
        t.push_str(&format!(
            "[[watch]]\nunit = \"quantum-z-{i:04}.service\"\nstream = \"bench:z:{i:04}\"\ngroup = \"g\"\nconsumer = \"z{i:04}-{{hostname}}-{{pid}}\"\n"
        ));
    }
    from_fragments(&[("bench.toml".into(), t)]).expect("bench configuration")
}

fn pid(i: usize) -> u32 {
    10_000 + i as u32
}

fn unit(i: usize) -> UnitState {
    UnitState::running(&format!("quantum-z-{i:04}.service"), pid(i), NOW - 3600 * S)
}

fn group(i: usize) -> GroupData {
    let mut consumers = vec![ConsumerInfo {
        name: format!("z{i:04}-{HOST}-{}", pid(i)).into(),
        pending: 0,
        idle_ms: 200,
        inactive_ms: None,
    }];
    consumers.extend((0..10).map(|k| ConsumerInfo {
        name: format!("other-{i:04}-{k}").into(),
        pending: 0,
        idle_ms: 60_000,
        inactive_ms: None,
    }));
    let id = StreamId { ms: 1, seq: 0 };
    GroupData {
        stream: StreamInfo {
            length: 1,
            last_generated_id: id,
            entries_added: Some(1),
        },
        group: GroupInfo {
            name: "g".into(),
            consumers: consumers.len() as u64,
            pending: 0,
            last_delivered_id: id,
            entries_read: Some(1),
            lag: Some(0),
        },
        consumers,
        heads: BTreeMap::new(),
        scan: None,
        rechecked: None,
        lease: None,
        consumers_read_usec: None,
        claims: None,
    }
}

fn snapshot(n: usize, now: u64) -> Snapshot {
    let groups = (0..n)
        .map(|i| {
            let key = GroupKey {
                stream: format!("bench:z:{i:04}"),
                group: "g".into(),
            };
            (key, Ok(group(i)))
        })
        .collect();
    Snapshot {
        now_usec: now,
        mono_usec: now,
        hostname: HOST.into(),
        self_unit: Some("quantum-watchdog.service".into()),
        units: Ok((0..n).map(unit).collect()),
        redis: Ok(RedisSnapshot {
            groups,
            ..Default::default()
        }),
        live_pids: (0..n).map(|i| (pid(i), true)).collect(),
        pid_units: BTreeMap::new(),
        utc_offset_secs: 0,
        holds: Default::default(),
    }
}

/// Milliseconds of each phase, one entry a look.
#[derive(Default)]
struct Phases {
    plan: Vec<f64>,
    pids: Vec<f64>,
    decide: Vec<f64>,
    metrics: Vec<f64>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What the Redis adapter does with the plan's known consumers of a quiet group whose
/// `XINFO GROUPS` entry is unchanged: they stand for this look's read.
fn stand_known(plan: &FetchPlan, snap: &mut Snapshot) {
    let Ok(redis) = &mut snap.redis else { return };
    for gf in &plan.groups {
        if let (Some(k), Some(Ok(g))) = (&gf.known, redis.groups.get_mut(&gf.key))
            && k.group == g.group
        {
            g.consumers = k.consumers.clone();
            g.consumers_read_usec = Some(k.read_usec);
        }
    }
}

fn look(cfg: &Config, mem: &mut Memory, metrics: &Metrics, mut snap: Snapshot, p: &mut Phases) {
    let units = snap.units.as_ref().expect("units");
    let t = Instant::now();
    let plan = policy::plan(cfg, HOST, units, mem, snap.clock());
    p.plan.push(ms(t.elapsed()));
    stand_known(&plan, &mut snap);
    let units = snap.units.as_ref().expect("units");
    let t = Instant::now();
    let redis = snap.redis.as_ref().expect("redis");
    let probe = policy::pids_to_probe(cfg, HOST, redis, units);
    let locate = policy::pids_to_locate(&probe, &snap.live_pids);
    p.pids.push(ms(t.elapsed()));
    std::hint::black_box((probe, locate));
    let t = Instant::now();
    let d = policy::decide(cfg, &snap, mem);
    p.decide.push(ms(t.elapsed()));
    let t = Instant::now();
    metrics.observe(cfg, snap, d, Duration::from_millis(1));
    p.metrics.push(ms(t.elapsed()));
}

fn quantiles(v: &mut [f64]) -> String {
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
    format!("{:.2} / {:.2}", q(0.5), q(0.99))
}

fn main() {
    let looks: usize = std::env::var("QW_BENCH_LOOKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let sizes: Vec<usize> = std::env::var("QW_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10, 100, 1000]);
    println!(
        "pure part of a look, {looks} looks a size, ms p50 / p99 (11 consumers a group, observe)"
    );
    println!("| bindings | plan | PIDs | decide | metrics | sum of p50 |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for n in sizes {
        let cfg = config(n);
        let metrics = Metrics::new();
        let mut mem = Memory::default();
        let mut p = Phases::default();
        for k in 0..looks + 5 {
            let snap = snapshot(n, NOW + k as u64 * S);
            look(&cfg, &mut mem, &metrics, snap, &mut p);
        }
        let mut all = [p.plan, p.pids, p.decide, p.metrics];
        let sum: f64 = all
            .iter_mut()
            .map(|v| {
                let v = &mut v[5..];
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            })
            .sum();
        let [a, b, c, d] = &mut all;
        println!(
            "| {n} | {} | {} | {} | {} | {sum:.2} |",
            quantiles(&mut a[5..]),
            quantiles(&mut b[5..]),
            quantiles(&mut c[5..]),
            quantiles(&mut d[5..]),
        );
    }
}
