//! Property tests: the parsers never panic on any input, and over random sequences of
//! snapshots the policy never proposes deleting a consumer that holds entries, never takes
//! entries from a live consumer, never restarts within grace or past the budget, and nothing
//! is carried out in observe mode.

use std::collections::BTreeMap;

use proptest::prelude::*;
use quantum_watchdog::adapters::redis::xinfo;
use quantum_watchdog::config::{Mode, from_fragments};
use quantum_watchdog::model::*;
use quantum_watchdog::policy::{Action, Memory, decide, to_execute};
use redis::Value;

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Nil),
        any::<i64>().prop_map(Value::Int),
        prop_oneof![
            Just("name".to_string()),
            Just("pending".to_string()),
            Just("idle".to_string()),
            Just("inactive".to_string()),
            Just("lag".to_string()),
            Just("last-delivered-id".to_string()),
            Just("last-generated-id".to_string()),
            Just("length".to_string()),
            Just("entries-added".to_string()),
            Just("consumers".to_string()),
            "[0-9]{1,13}-[0-9]{1,3}",
            ".{0,12}",
        ]
        .prop_map(|s| Value::BulkString(s.into_bytes())),
        Just(Value::Okay),
    ];
    leaf.prop_recursive(4, 64, 10, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..10).prop_map(Value::Array),
            prop::collection::vec((inner.clone(), inner), 0..6).prop_map(Value::Map),
        ]
    })
}

const KEYS: &[&str] = &[
    "mode",
    "interval",
    "units",
    "redis.url",
    "redis.timeout",
    "dbus_timeout",
    "[defaults]",
    "hung_after",
    "startup_grace",
    "confirm",
    "restart_budget",
    "zombie_after",
    "claim_policy",
    "[[watch]]",
    "unit",
    "stream",
    "group",
    "consumer",
    "[metrics]",
    "listen",
    "[[pipeline]]",
    "streams",
    "[[gauge]]",
    "key",
    "limit",
    "warn_at",
];
const VALUES: &[&str] = &[
    "\"enforce\"",
    "\"observe\"",
    "\"5s\"",
    "\"0s\"",
    "5",
    "-1",
    "true",
    "[\"quantum-*.service\"]",
    "\"x-{pid}\"",
    "\"x-{pod}\"",
    "{ max = 3, within = \"30m\" }",
    "{ max = 0 }",
    "\"park\"",
    "\"q.service\"",
    "1e400",
    "\"\"",
    "[]",
    "0.9",
    "\"unix:/x\"",
    "\"redis://127.0.0.1/0\"",
];

fn toml_like() -> impl Strategy<Value = String> {
    prop::collection::vec((0..KEYS.len(), 0..VALUES.len(), any::<bool>()), 0..20).prop_map(
        |lines| {
            lines
                .into_iter()
                .map(|(k, v, bare)| {
                    if KEYS[k].starts_with('[') || bare {
                        KEYS[k].to_string()
                    } else {
                        format!("{} = {}", KEYS[k], VALUES[v])
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn config_parser_never_panics(text in ".{0,300}", t2 in toml_like()) {
        let _ = from_fragments(&[("a.toml".into(), text)]);
        let _ = from_fragments(&[("b.toml".into(), t2)]);
    }

    #[test]
    fn xinfo_parsers_never_panic(v in value()) {
        let _ = xinfo::consumers(&v);
        let _ = xinfo::groups(&v);
        let _ = xinfo::stream_info(&v);
        let _ = xinfo::pending_entries(&v);
    }
}

// ---------------------------------------------------------------------------------------------
// The policy over random snapshot sequences.

const S: u64 = 1_000_000;
const HOST: &str = "h";
const UNIT: &str = "quantum-x.service";

fn cfg() -> quantum_watchdog::config::Config {
    from_fragments(&[(
        "p.toml".into(),
        format!(
            "mode = \"enforce\"\n[defaults]\nhung_after = \"20s\"\nstartup_grace = \"15s\"\nconfirm = 2\npoison_after_crashes = 2\n\
             restart_budget = {{ max = 2, within = \"5m\" }}\nzombie_after = \"60s\"\n\
             [[watch]]\nunit = \"{UNIT}\"\nstream = \"s\"\ngroup = \"g\"\nconsumer = \"x-{{hostname}}-{{pid}}\"\n"
        ),
    )])
    .unwrap()
}

#[derive(Debug, Clone)]
struct Step {
    dt_s: u64,
    state: usize,
    pid: u32,
    restarted_ago_s: u64,
    lag: Option<u64>,
    behind: bool,
    consumers: Vec<(usize, u64, u64, Option<i64>)>,
    stale: bool,
    alive: Vec<bool>,
    /// Per PID 100..104: 0 not asked, 1 a process of the unit, 2 outside it.
    located: Vec<u8>,
}

const NAMES: usize = 8;

fn consumer_name(i: usize) -> String {
    match i {
        0..=4 => format!("x-{HOST}-{}", 100 + i), // PIDs 100..104: maybe MainPIDs
        5 => "x-otherhost-7".into(),              // another host: unknown liveness
        6 => "recover-1".into(),                  // no template: unknown liveness
        _ => "quantum-watchdog:parked".into(),
    }
}

fn step() -> impl Strategy<Value = Step> {
    (
        0u64..15,
        0usize..5,
        100u32..105,
        0u64..120,
        prop::option::of(0u64..5),
        any::<bool>(),
        prop::collection::vec(
            (
                0..NAMES,
                0u64..4,
                0u64..200,
                prop::option::of(-1i64..200_000),
            ),
            0..6,
        ),
        any::<bool>(),
        prop::collection::vec(any::<bool>(), 5),
        prop::collection::vec(0u8..3, 5),
    )
        .prop_map(
            |(dt_s, state, pid, restarted_ago_s, lag, behind, consumers, stale, alive, located)| {
                Step {
                    dt_s,
                    state,
                    pid,
                    restarted_ago_s,
                    lag,
                    behind,
                    consumers,
                    stale,
                    alive,
                    located,
                }
            },
        )
}

fn snapshot(now: u64, st: &Step) -> Snapshot {
    let (active, sub) = [
        ("active", "running"),
        ("active", "running"),
        ("inactive", "dead"),
        ("activating", "start"),
        ("failed", "failed"),
    ][st.state];
    let pid = if active == "active" { st.pid } else { 0 };
    let unit = UnitState {
        active_state: active.into(),
        sub_state: sub.into(),
        ..UnitState::running(UNIT, pid, now.saturating_sub(st.restarted_ago_s * S))
    };
    let mut seen = std::collections::BTreeSet::new();
    let consumers: Vec<ConsumerInfo> = st
        .consumers
        .iter()
        .filter(|(i, ..)| seen.insert(*i))
        .map(|(i, pending, idle_s, inactive)| ConsumerInfo {
            name: consumer_name(*i).into(),
            pending: *pending,
            idle_ms: idle_s * 1000,
            inactive_ms: *inactive,
        })
        .collect();
    let data = GroupData {
        stream: StreamInfo {
            length: 10,
            last_generated_id: StreamId { ms: 10, seq: 0 },
            entries_added: Some(10),
        },
        group: GroupInfo {
            name: "g".into(),
            consumers: consumers.len() as u64,
            pending: consumers.iter().map(|c| c.pending).sum(),
            last_delivered_id: StreamId {
                ms: if st.behind { 5 } else { 10 },
                seq: 0,
            },
            entries_read: Some(10),
            lag: st.lag,
        },
        heads: consumers
            .iter()
            .map(|c| {
                let head = st.stale.then(|| PendingEntry {
                    id: StreamId { ms: 1, seq: 0 },
                    consumer: c.name.to_string(),
                    idle_ms: 30_000,
                    deliveries: 1,
                });
                (c.name.to_string(), head)
            })
            .collect(),
        scan: None,
        rechecked: None,
        lease: None,
        consumers_read_usec: None,
        claims: None,
        consumers,
    };
    let mut r = RedisSnapshot::default();
    r.groups.insert(
        GroupKey {
            stream: "s".into(),
            group: "g".into(),
        },
        Ok(data),
    );
    let live_pids: BTreeMap<u32, bool> = (0..5).map(|i| (100 + i as u32, st.alive[i])).collect();
    let pid_units: BTreeMap<u32, Option<String>> = (0..5)
        .filter(|&i| st.alive[i] && st.located[i] != 0)
        .map(|i| {
            let unit = (st.located[i] == 1).then(|| UNIT.to_string());
            (100 + i as u32, unit)
        })
        .collect();
    Snapshot {
        now_usec: now,
        mono_usec: now,
        hostname: HOST.into(),
        self_unit: None,
        units: Ok(vec![unit]),
        redis: Ok(r),
        live_pids,
        pid_units,
        utc_offset_secs: 0,
        holds: Default::default(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn policy_invariants(steps in prop::collection::vec(step(), 1..60)) {
        let c = cfg();
        let mut mem = Memory::default();
        let mut now = 1_800_000_000 * S;
        let mut restarts: Vec<u64> = Vec::new();
        let mut earlier_pids: Vec<u32> = Vec::new();
        let mut last_pid = 0;
        for st in &steps {
            now += st.dt_s * S + 1;
            let snap = snapshot(now, st);
            let u = &snap.units.as_ref().unwrap()[0];
            if last_pid != 0 && u.main_pid != last_pid && u.main_pid != 0 { earlier_pids.push(last_pid); }
            if u.main_pid != 0 { last_pid = u.main_pid; }
            let d = decide(&c, &snap, &mut mem);
            prop_assert!(to_execute(Mode::Observe, &d.actions).is_empty(), "observe mode carries out nothing");
            let g = snap.redis.as_ref().unwrap().groups.values().next().unwrap().as_ref().unwrap();
            for a in &d.actions {
                match a {
                    Action::DeadLetter { deliveries, min_deliveries, .. } => {
                        prop_assert!(deliveries >= min_deliveries, "dead-lettered an entry before it was due");
                    }
                    Action::Delete { consumer, .. } => {
                        let held = g.consumer(consumer).map_or(0, |c| c.pending);
                        prop_assert_eq!(held, 0, "proposed deleting {} holding {}", consumer, held);
                        prop_assert_ne!(consumer.as_str(), "quantum-watchdog:parked");
                    }
                    Action::Claim { from, .. } | Action::Requeue { from, .. } => {
                        // Only a consumer whose PID is known dead, an earlier MainPID, or a
                        // live process outside the unit; never one of the unit's processes.
                        let pid: u32 = from.rsplit('-').next().unwrap().parse().unwrap();
                        let in_unit = snap.pid_units.get(&pid) == Some(&Some(UNIT.to_string()));
                        let outside = snap.pid_units.get(&pid) == Some(&None);
                        let dead = snap.live_pids.get(&pid) == Some(&false)
                            || earlier_pids.contains(&pid)
                            || outside;
                        prop_assert!(dead, "took entries from live consumer {}", from);
                        prop_assert!(!in_unit, "took entries from {} of the unit's cgroup", from);
                        prop_assert_ne!(pid, u.main_pid);
                    }
                    Action::Quarantine { consumer, .. } => {
                        // Only the consumer of a process that died since the last look.
                        let pid: u32 = consumer.rsplit('-').next().unwrap().parse().unwrap();
                        prop_assert!(earlier_pids.contains(&pid), "quarantined from live {}", consumer);
                        prop_assert_ne!(pid, u.main_pid);
                    }
                    Action::Fenced { .. } => prop_assert!(false, "no fleet here: nothing of another host"),
                    Action::Restart { .. } => {
                        let since = u.active_enter_mono_usec.max(restarts.last().copied().unwrap_or(0));
                        prop_assert!(now >= since + 15 * S, "restart within startup grace");
                        let in_window = restarts.iter().filter(|t| **t + 300 * S > now).count();
                        prop_assert!(in_window < 2, "restart past the budget");
                        prop_assert_eq!(u.active_state.as_str(), "active");
                        restarts.push(now);
                        mem.note_restart(UNIT, now);
                        mem.note_restart_finished(UNIT);
                    }
                }
            }
            let n = d.actions.iter().filter(|a| matches!(a, Action::Restart { .. })).count();
            prop_assert!(n <= 1, "at most one restart per unit per cycle");
        }
    }
}
