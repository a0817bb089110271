//! Table-driven tests of the decision policy: snapshots in, verdicts and actions out. Those of
//! several looks in a row live here; a single look's whole decision is a golden case of
//! `tests/golden/decide/`.

use std::collections::BTreeMap;

use super::*;
use crate::config::Config;
use crate::config::{PARKED_CONSUMER, from_fragments};
use crate::model::*;

const HOST: &str = "qt-1";
const UNIT: &str = "quantum-execution.service";
const STREAM: &str = "quantum:stream:trade.intent";
const GROUP: &str = "quantum:group:execution:trade.intent";
const S: u64 = 1_000_000; // one second in µs
const T0: u64 = 1_800_000_000 * S;

thread_local! {
    /// The configuration `cfg` last built, for a capture.
    static CAPTURE_TOML: std::cell::RefCell<String> = Default::default();
    /// Looks captured by this test so far.
    static CAPTURE_N: std::cell::Cell<u32> = Default::default();
}

/// `decide`, and with `QW_CAPTURE=DIR` each look's inputs and decision written to
/// `DIR/<test>/<NN>/`: the makings of a case of `tests/golden/decide/` (a configuration built
/// by `cfg`; copy `config.toml`, `snapshot.json` and `memory.json`, then bless).
fn decide(c: &Config, s: &Snapshot, m: &mut Memory) -> Decision {
    let before = serde_json::to_string_pretty(m).unwrap();
    let d = super::decide(c, s, m);
    if let Ok(root) = std::env::var("QW_CAPTURE") {
        capture(&root, (s, &before), &d);
    }
    d
}

/// Writes one look's inputs and decision (see [`decide`]).
fn capture(root: &str, (s, memory): (&Snapshot, &str), d: &Decision) {
    let t = std::thread::current();
    let test = t
        .name()
        .unwrap_or("test")
        .rsplit("::")
        .next()
        .unwrap_or("test");
    let n = CAPTURE_N.with(|n| n.replace(n.get() + 1));
    let dir = std::path::Path::new(root).join(format!("{test}/{n:02}"));
    std::fs::create_dir_all(&dir).unwrap();
    let toml = CAPTURE_TOML.with(|t| t.borrow().trim_start().to_string());
    for (name, text) in [
        ("config.toml", toml),
        ("snapshot.json", pretty(s)),
        ("memory.json", format!("{memory}\n")),
        ("decision.json", pretty(d)),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

/// Pretty JSON with a final newline.
fn pretty<T: serde::Serialize>(v: &T) -> String {
    format!("{}\n", serde_json::to_string_pretty(v).unwrap())
}

fn cfg(extra: &str) -> Config {
    let text = cfg_text(extra);
    CAPTURE_TOML.with(|t| *t.borrow_mut() = text.clone());
    from_fragments(&[("test.toml".into(), text)]).unwrap()
}

fn cfg_text(extra: &str) -> String {
    format!(
        r#"
mode = "enforce"
[defaults]
hung_after = "60s"
startup_grace = "30s"
confirm = 2
restart_budget = {{ max = 2, within = "10m" }}
zombie_after = "1h"
[[watch]]
unit = "{UNIT}"
stream = "{STREAM}"
group = "{GROUP}"
consumer = "execution-{{hostname}}-{{pid}}"
{extra}
"#
    )
}

fn unit(pid: u32, active_since: u64) -> UnitState {
    UnitState::running(UNIT, pid, active_since)
}

fn consumer(name: &str, pending: u64, idle_s: u64, inactive: Option<i64>) -> ConsumerInfo {
    ConsumerInfo {
        name: name.into(),
        pending,
        idle_ms: idle_s * 1000,
        inactive_ms: inactive,
    }
}

fn me(pid: u32) -> String {
    format!("execution-{HOST}-{pid}")
}

fn group(lag: Option<u64>, consumers: Vec<ConsumerInfo>) -> GroupData {
    let pending = consumers.iter().map(|c| c.pending).sum();
    GroupData {
        stream: StreamInfo {
            length: 100,
            last_generated_id: StreamId { ms: 100, seq: 0 },
            entries_added: Some(100),
        },
        group: GroupInfo {
            name: GROUP.into(),
            consumers: consumers.len() as u64,
            pending,
            last_delivered_id: StreamId {
                ms: 100 - lag.unwrap_or(10),
                seq: 0,
            },
            entries_read: Some(100),
            lag,
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

/// `stale`: the oldest pending entry of every consumer of the group, as the plan's heads read it.
fn snap(
    now: u64,
    units: Vec<UnitState>,
    mut g: GroupData,
    stale: Option<PendingEntry>,
) -> Snapshot {
    for c in &g.consumers {
        let head = stale.clone().map(|e| PendingEntry {
            consumer: c.name.to_string(),
            ..e
        });
        g.heads.insert(c.name.to_string(), head);
    }
    let mut groups = BTreeMap::new();
    groups.insert(
        GroupKey {
            stream: STREAM.into(),
            group: GROUP.into(),
        },
        Ok(g),
    );
    Snapshot {
        now_usec: now,
        mono_usec: now,
        hostname: HOST.into(),
        self_unit: Some("quantum-watchdog.service".into()),
        units: Ok(units),
        redis: Ok(RedisSnapshot {
            groups,
            ..Default::default()
        }),
        live_pids: BTreeMap::new(),
        pid_units: BTreeMap::new(),
        utc_offset_secs: 0,
        holds: Default::default(),
    }
}

fn key() -> GroupKey {
    GroupKey {
        stream: STREAM.into(),
        group: GROUP.into(),
    }
}

fn group_mut(s: &mut Snapshot) -> &mut GroupData {
    match &mut s.redis {
        Ok(r) => r.groups.get_mut(&key()).unwrap().as_mut().unwrap(),
        Err(_) => panic!("no redis"),
    }
}

/// The scan window of this cycle: `entries` read after `after` (the plan's default size).
fn set_scan(s: &mut Snapshot, after: Option<StreamId>, entries: Vec<PendingEntry>) {
    let g = group_mut(s);
    g.scan = Some(ScanReply {
        after,
        count: crate::policy::plan::SCAN_CHUNK,
        entries,
    });
    g.rechecked = Some(Vec::new());
}

fn stale_entry(idle_s: u64) -> Option<PendingEntry> {
    Some(PendingEntry {
        id: StreamId { ms: 5, seq: 0 },
        consumer: String::new(),
        idle_ms: idle_s * 1000,
        deliveries: 1,
    })
}

fn restarts(d: &Decision) -> usize {
    d.actions
        .iter()
        .filter(|a| matches!(a, Action::Restart { .. }))
        .count()
}

/// One cycle, many cases: (name, snapshot, expected verdict, expected restart after `confirm` cycles).
#[test]
fn verdict_table() {
    let since = T0 - 3600 * S; // active for an hour
    let now = T0;
    let v70 = None;
    let v72 = Some(0);
    let cases: Vec<(&str, Config, Snapshot, Verdict, bool)> = vec![
        (
            "idle for hours with no work waiting is healthy (7.0)",
            cfg(""),
            snap(
                now,
                vec![unit(10, since)],
                group(Some(0), vec![consumer(&me(10), 0, 36000, v70)]),
                None,
            ),
            Verdict::Healthy,
            false,
        ),
        (
            "idle for hours with no work waiting is healthy (7.2+)",
            cfg(""),
            snap(
                now,
                vec![unit(10, since)],
                group(Some(0), vec![consumer(&me(10), 0, 36000, Some(36_000_000))]),
                None,
            ),
            Verdict::Healthy,
            false,
        ),
        (
            "work waiting and consumer idle past hung_after: hung",
            cfg(""),
            snap(
                now,
                vec![unit(10, since)],
                group(Some(3), vec![consumer(&me(10), 3, 61, v70)]),
                None,
            ),
            Verdict::Hung,
            true,
        ),
        (
            "work waiting, consumer idle below warn_percent of hung_after: healthy",
            cfg(""),
            snap(
                now,
                vec![unit(10, since)],
                group(Some(3), vec![consumer(&me(10), 3, 29, v70)]),
                None,
            ),
            Verdict::Healthy,
            false,
        ),
        (
            "work waiting, consumer idle past warn_percent of hung_after: lagging, no restart",
            cfg(""),
            snap(
                now,
                vec![unit(10, since)],
                group(Some(3), vec![consumer(&me(10), 3, 59, v70)]),
                None,
            ),
            Verdict::Lagging,
            false,
        ),
        (
            "warn_percent = 100: no warning stage",
            cfg("warn_percent = 100"),
            snap(
                now,
                vec![unit(10, since)],
                group(Some(3), vec![consumer(&me(10), 3, 59, v70)]),
                None,
            ),
            Verdict::Healthy,
            false,
        ),
        (
            "no work waiting, consumer idle past warn_percent: healthy",
            cfg(""),
            snap(
                now,
                vec![unit(10, since)],
                group(Some(0), vec![consumer(&me(10), 0, 59, v70)]),
                None,
            ),
            Verdict::Healthy,
            false,
        ),
        (
            "null lag, last delivered behind the stream: work waiting",
            cfg(""),
            snap(
                now,
                vec![unit(10, since)],
                group(None, vec![consumer(&me(10), 0, 120, v70)]),
                None,
            ),
            Verdict::Hung,
            true,
        ),
        (
            "within startup grace nothing is judged",
            cfg(""),
            snap(
                now,
                vec![unit(10, now - 10 * S)],
                group(Some(3), vec![consumer(&me(10), 3, 600, v70)]),
                None,
            ),
            Verdict::Starting,
            false,
        ),
        (
            "stale pending on 7.0: a warning, no restart",
            cfg(""),
            snap(
                now,
                vec![unit(10, since)],
                group(Some(0), vec![consumer(&me(10), 1709, 7200, v70)]),
                stale_entry(7200),
            ),
            Verdict::StalePending,
            false,
        ),
        (
            "stale pending, opted in: restart",
            cfg("restart_on_stale_pending = true"),
            snap(
                now,
                vec![unit(10, since)],
                group(Some(0), vec![consumer(&me(10), 3, 7200, v70)]),
                stale_entry(7200),
            ),
            Verdict::StalePending,
            true,
        ),
        (
            "stale pending on 7.2+ but the consumer still reads: warning",
            cfg(""),
            snap(
                now,
                vec![unit(10, since)],
                group(Some(0), vec![consumer(&me(10), 3, 1, Some(7_200_000))]),
                stale_entry(7200),
            ),
            Verdict::StalePending,
            false,
        ),
        (
            "stale pending on 7.2+ and no read attempt for hung_after: hung (the router of the seeds)",
            cfg(""),
            snap(
                now,
                vec![unit(10, since)],
                group(Some(0), vec![consumer(&me(10), 3, 11776, Some(11_776_068))]),
                stale_entry(11776),
            ),
            Verdict::Hung,
            true,
        ),
        (
            "pending but none stale: healthy",
            cfg(""),
            snap(
                now,
                vec![unit(10, since)],
                group(Some(0), vec![consumer(&me(10), 3, 5, v72)]),
                None,
            ),
            Verdict::Healthy,
            false,
        ),
        (
            "failed unit",
            cfg(""),
            snap(
                now,
                vec![UnitState {
                    active_state: "failed".into(),
                    sub_state: "failed".into(),
                    main_pid: 0,
                    result: "exit-code".into(),
                    ..unit(0, since)
                }],
                group(Some(0), vec![]),
                None,
            ),
            Verdict::Failed,
            false,
        ),
        (
            "start-limit-hit is reported",
            cfg(""),
            snap(
                now,
                vec![UnitState {
                    active_state: "failed".into(),
                    sub_state: "failed".into(),
                    main_pid: 0,
                    result: "start-limit-hit".into(),
                    ..unit(0, since)
                }],
                group(Some(5), vec![]),
                None,
            ),
            Verdict::StartLimitHit,
            false,
        ),
        (
            "stopped unit",
            cfg(""),
            snap(
                now,
                vec![UnitState {
                    active_state: "inactive".into(),
                    sub_state: "dead".into(),
                    main_pid: 0,
                    ..unit(0, since)
                }],
                group(Some(5), vec![]),
                None,
            ),
            Verdict::Inactive,
            false,
        ),
        (
            "bound unit not loaded",
            cfg(""),
            snap(now, vec![], group(Some(5), vec![]), None),
            Verdict::NotFound,
            false,
        ),
        (
            "activating unit",
            cfg(""),
            snap(
                now,
                vec![UnitState {
                    active_state: "activating".into(),
                    sub_state: "start-pre".into(),
                    main_pid: 0,
                    ..unit(0, since)
                }],
                group(Some(5), vec![]),
                None,
            ),
            Verdict::Starting,
            false,
        ),
    ];
    for (name, cfg, snap, want, restart) in cases {
        let mut mem = Memory::default();
        let d1 = decide(&cfg, &snap, &mut mem);
        let u = d1
            .units
            .iter()
            .find(|u| u.unit == UNIT)
            .unwrap_or_else(|| panic!("{name}: no report"));
        assert_eq!(u.verdict, want, "{name}: {}", u.reason);
        assert_eq!(
            restarts(&d1),
            0,
            "{name}: confirm=2 means no restart on the first cycle"
        );
        let d2 = decide(
            &cfg,
            &Snapshot {
                now_usec: snap.now_usec + 5 * S,
                mono_usec: snap.mono_usec + 5 * S,
                ..snap.clone()
            },
            &mut mem,
        );
        assert_eq!(
            restarts(&d2),
            usize::from(restart),
            "{name}: restart on the second cycle? {d2:#?}"
        );
        // The severity table: an idle healthy consumer never raises anything.
        if want == Verdict::Healthy {
            assert_eq!(d2.severity(), Severity::Ok, "{name}");
        }
    }
}

#[test]
fn not_consuming_needs_work_to_wait_hung_after() {
    let c = cfg("");
    let since = T0 - 3600 * S;
    let mut mem = Memory::default();
    // Work waits, the unit's consumer never appears (only an old one of another host is there).
    let mk = |now| snap(now, vec![unit(10, since)], group(Some(4), vec![]), None);
    for (t, want) in [
        (0, Verdict::Healthy),
        (29, Verdict::Healthy),
        (30, Verdict::Lagging),
        (59, Verdict::Lagging),
        (60, Verdict::Hung),
        (65, Verdict::Hung),
    ] {
        let d = decide(&c, &mk(T0 + t * S), &mut mem);
        assert_eq!(d.units[0].verdict, want, "at +{t}s: {}", d.units[0].reason);
        if t == 65 {
            assert_eq!(restarts(&d), 1);
            assert!(
                d.units[0].reason.contains("not consuming"),
                "{}",
                d.units[0].reason
            );
        }
    }
}

/// The wall clock steps back or forward an hour between looks; the monotonic one goes on.
/// Every duration the policy measures follows the monotonic clock: a hang is found and
/// restarted on time, a grace is neither stretched nor cut, "not consuming" waits hung_after,
/// and a restart counts against the budget for its window.
#[test]
fn a_wall_clock_step_changes_no_duration() {
    let c = cfg("");
    let hour = 3600 * S;
    for step in [-(hour as i64), hour as i64, 0] {
        let wall = |mono: u64| mono.saturating_add_signed(step);
        let at = |mono: u64, units: Vec<UnitState>, g: GroupData| {
            let mut s = snap(mono, units, g, None);
            s.now_usec = wall(mono);
            s
        };
        // A unit active an hour, its consumer idle 10 min while work waits: restarted after
        // `confirm` looks, whichever way the wall clock went.
        let mut mem = Memory::default();
        let hung = |m| {
            at(
                m,
                vec![unit(10, T0 - hour)],
                group(Some(3), vec![consumer(&me(10), 3, 600, None)]),
            )
        };
        decide(&c, &hung(T0), &mut mem);
        let d = decide(&c, &hung(T0 + 5 * S), &mut mem);
        assert_eq!(restarts(&d), 1, "step {step}: {}", d.units[0].reason);
        // A unit active 10 s (grace 30 s): starting, still 20 s left.
        let mut mem = Memory::default();
        let fresh = at(T0, vec![unit(10, T0 - 10 * S)], group(Some(3), vec![]));
        let d = decide(&c, &fresh, &mut mem);
        assert_eq!(d.units[0].verdict, Verdict::Starting, "step {step}");
        assert!(
            d.units[0].reason.contains("20s left"),
            "step {step}: {}",
            d.units[0].reason
        );
        // Work waits and no consumer appears: hung at 60 s of waiting, not before.
        let mut mem = Memory::default();
        let none = |m| at(m, vec![unit(10, T0 - hour)], group(Some(4), vec![]));
        decide(&c, &none(T0), &mut mem);
        let d = decide(&c, &none(T0 + 59 * S), &mut mem);
        assert_eq!(
            d.units[0].verdict,
            Verdict::Lagging,
            "step {step}: {}",
            d.units[0].reason
        );
        let d = decide(&c, &none(T0 + 60 * S), &mut mem);
        assert_eq!(
            d.units[0].verdict,
            Verdict::Hung,
            "step {step}: {}",
            d.units[0].reason
        );
        // A restart issued on the monotonic clock counts for its window.
        let mut mem = Memory::default();
        mem.note_restart(UNIT, T0 - 60 * S);
        mem.note_restart_finished(UNIT);
        let d = decide(&c, &hung(T0), &mut mem);
        assert_eq!(d.units[0].restarts_in_window, 1, "step {step}");
    }
}

/// A `reset-budget` note is pinned to the monotonic clock when first seen: a wall-clock step
/// afterwards neither frees the budget again nor counts the cleared restarts again.
#[test]
fn a_budget_reset_survives_a_wall_clock_step() {
    let c = cfg("");
    let hour = 3600 * S;
    let mut mem = Memory::default();
    for k in 0..3 {
        mem.note_restart(UNIT, T0 - (30 - k) * S);
        mem.note_restart_finished(UNIT);
    }
    let mut holds = crate::model::holds::Holds::default();
    holds.budget_resets.insert(UNIT.into(), T0 - 10 * S);
    let look = |wall_step: i64, mono: u64| {
        let mut s = snap(
            mono,
            vec![unit(10, T0 - hour)],
            group(Some(0), vec![consumer(&me(10), 0, 1, None)]),
            None,
        );
        s.now_usec = mono.saturating_add_signed(wall_step);
        s.holds = holds.clone();
        s
    };
    let d = decide(&c, &look(0, T0), &mut mem);
    assert_eq!(d.units[0].restarts_in_window, 0, "cleared by the reset");
    mem.note_restart(UNIT, T0 + S);
    mem.note_restart_finished(UNIT);
    for step in [-(hour as i64), hour as i64] {
        let d = decide(&c, &look(step, T0 + 2 * S), &mut mem.clone());
        assert_eq!(d.units[0].restarts_in_window, 1, "wall step {step}");
    }
}

#[test]
fn restart_budget_then_gave_up_then_window_frees() {
    let c = cfg("");
    let since = T0 - 3600 * S;
    let mut mem = Memory::default();
    let hung = |now| {
        snap(
            now,
            vec![unit(10, since)],
            group(Some(3), vec![consumer(&me(10), 3, 600, None)]),
            None,
        )
    };
    let mut t = T0;
    let mut issued = 0;
    for _ in 0..40 {
        let d = decide(&c, &hung(t), &mut mem);
        for a in &d.actions {
            if let Action::Restart { unit, .. } = a {
                issued += 1;
                mem.note_restart(unit, t);
                mem.note_restart_finished(unit);
            }
        }
        t += 5 * S;
    }
    // grace after a restart is measured from the restart: the snapshot still shows the old
    // active_enter, so grace comes from memory.
    assert_eq!(issued, 2, "budget max = 2 within 10m");
    let d = decide(&c, &hung(t), &mut mem);
    assert_eq!(d.units[0].verdict, Verdict::GaveUp);
    assert_eq!(d.units[0].severity, Severity::Critical);
    assert_eq!(restarts(&d), 0);
    // Eleven minutes later the window is free again.
    let d = decide(&c, &hung(t + 660 * S), &mut mem);
    assert_eq!(restarts(&d), 1, "{:?}", d.units[0]);
}

#[test]
fn no_restart_while_one_is_in_flight_nor_within_grace_of_it() {
    let c = cfg("");
    let since = T0 - 3600 * S;
    let mut mem = Memory::default();
    let hung = |now| {
        snap(
            now,
            vec![unit(10, since)],
            group(Some(3), vec![consumer(&me(10), 3, 600, None)]),
            None,
        )
    };
    decide(&c, &hung(T0), &mut mem);
    let d = decide(&c, &hung(T0 + 5 * S), &mut mem);
    assert_eq!(restarts(&d), 1);
    mem.note_restart(UNIT, T0 + 5 * S);
    // Still in flight, and within the grace of the restart.
    for k in 2..7 {
        let d = decide(&c, &hung(T0 + k * 5 * S), &mut mem);
        assert_eq!(restarts(&d), 0, "cycle {k}");
        assert_eq!(
            d.units[0].verdict,
            Verdict::Starting,
            "grace after our own restart"
        );
    }
    // Past grace but the job never finished: still nothing.
    let d1 = decide(&c, &hung(T0 + 60 * S), &mut mem);
    let d2 = decide(&c, &hung(T0 + 65 * S), &mut mem);
    assert_eq!(restarts(&d1) + restarts(&d2), 0);
    assert!(d2.units[0].reason.contains("in flight"));
}

#[test]
fn unreachable_redis_or_systemd_means_no_action() {
    let c = cfg("");
    let since = T0 - 3600 * S;
    let mut s = snap(
        T0,
        vec![unit(10, since)],
        group(
            Some(3),
            vec![
                consumer(&me(10), 3, 600, None),
                consumer(&me(77), 5, 600, None),
            ],
        ),
        None,
    );
    s.live_pids.insert(77, false);
    let mut mem = Memory::default();
    let mut no_redis = s.clone();
    no_redis.redis = Err(ReadError::Server("connection refused".into()));
    for _ in 0..3 {
        let d = decide(&c, &no_redis, &mut mem);
        assert!(d.actions.is_empty());
        assert_eq!(d.severity(), Severity::Unknown);
        assert_eq!(d.severity().exit_code(), 3);
        assert_eq!(d.units[0].verdict, Verdict::Unknown);
    }
    let mut no_dbus = s.clone();
    no_dbus.units = Err(ReadError::Server("no bus".into()));
    let d = decide(&c, &no_dbus, &mut mem);
    assert!(d.actions.is_empty());
    assert_eq!(d.units[0].verdict, Verdict::Unknown);
    assert_eq!(d.severity(), Severity::Unknown);
}

#[test]
fn binding_errors_are_per_binding() {
    let c = from_fragments(&[(
        "t".into(),
        format!(
            r#"
[[watch]]
unit = "{UNIT}"
stream = "{STREAM}"
group = "{GROUP}"
consumer = "execution-{{pid}}"
[[watch]]
unit = "quantum-router.service"
stream = "missing"
group = "g"
consumer = "router"
"#
        ),
    )])
    .unwrap();
    let mut s = snap(
        T0,
        vec![
            unit(10, T0 - 3600 * S),
            UnitState {
                name: "quantum-router.service".into(),
                ..unit(11, T0 - 3600 * S)
            },
        ],
        group(Some(0), vec![]),
        None,
    );
    if let Ok(r) = &mut s.redis {
        r.groups.insert(
            GroupKey {
                stream: "missing".into(),
                group: "g".into(),
            },
            Err(ReadError::Server("NOGROUP no such key".into())),
        );
    }
    let d = decide(&c, &s, &mut Memory::default());
    let by = |n: &str| d.units.iter().find(|u| u.unit == n).unwrap();
    assert_eq!(by(UNIT).verdict, Verdict::Healthy);
    assert_eq!(by("quantum-router.service").verdict, Verdict::Unknown);
    assert!(by("quantum-router.service").reason.contains("NOGROUP"));
}

fn claim_targets(d: &Decision) -> Vec<(String, String)> {
    d.actions
        .iter()
        .filter_map(|a| match a {
            Action::Claim { from, to, .. } => Some((from.clone(), to.clone())),
            _ => None,
        })
        .collect()
}

fn deletes(d: &Decision) -> Vec<(String, u64)> {
    d.actions
        .iter()
        .filter_map(|a| match a {
            Action::Delete {
                consumer,
                min_idle_ms,
                ..
            } => Some((consumer.clone(), *min_idle_ms)),
            _ => None,
        })
        .collect()
}

#[test]
fn handoff_waits_for_a_live_consumer() {
    let c = cfg("");
    let since = T0 - 3600 * S;
    for u in [
        UnitState {
            active_state: "activating".into(),
            sub_state: "start-pre".into(),
            main_pid: 0,
            ..unit(0, since)
        },
        UnitState {
            active_state: "inactive".into(),
            sub_state: "dead".into(),
            main_pid: 0,
            ..unit(0, since)
        },
    ] {
        let mut s = snap(
            T0,
            vec![u],
            group(Some(0), vec![consumer(&me(66), 12, 100, None)]),
            None,
        );
        s.live_pids.insert(66, false);
        let d = decide(&c, &s, &mut Memory::default());
        assert!(d.actions.is_empty(), "{:?}", d.actions);
        assert_eq!(d.consumers[0].liveness, Liveness::Dead);
        assert_eq!(d.consumers[0].severity, Severity::Warning);
        assert!(d.consumers[0].note.contains("wait for a live consumer"));
    }
    // A hung unit's consumer gets no handoff either: it is about to be restarted.
    let mut s = snap(
        T0,
        vec![unit(10, since)],
        group(
            Some(9),
            vec![
                consumer(&me(10), 3, 600, None),
                consumer(&me(66), 12, 100, None),
            ],
        ),
        None,
    );
    s.live_pids.insert(66, false);
    let mut mem = Memory::default();
    decide(&c, &s, &mut mem);
    let d = decide(&c, &s, &mut mem);
    assert_eq!(restarts(&d), 1);
    assert!(claim_targets(&d).is_empty());
}

#[test]
fn never_touches_a_live_consumer() {
    let c = cfg("");
    let since = T0 - 3600 * S;
    // 777 is alive (another instance, or EPERM): untouched whatever it holds or however idle.
    let mut s = snap(
        T0,
        vec![unit(10, since)],
        group(
            Some(0),
            vec![
                consumer(&me(10), 0, 1, None),
                consumer(&me(777), 40, 99999, None),
                consumer(&me(778), 0, 99999, None),
            ],
        ),
        None,
    );
    s.live_pids.insert(777, true);
    s.live_pids.insert(778, true);
    let d = decide(&c, &s, &mut Memory::default());
    assert!(d.actions.is_empty(), "{:?}", d.actions);
}

#[test]
fn earlier_main_pid_is_dead_even_if_the_pid_was_reused() {
    let c = cfg("");
    let since = T0 - 3600 * S;
    let mut mem = Memory::default();
    decide(
        &c,
        &snap(
            T0,
            vec![unit(10, since)],
            group(Some(0), vec![consumer(&me(10), 0, 1, None)]),
            None,
        ),
        &mut mem,
    );
    let mut s = snap(
        T0 + 5 * S,
        vec![unit(11, T0)],
        group(
            Some(0),
            vec![consumer(&me(10), 4, 1, None), consumer(&me(11), 0, 1, None)],
        ),
        None,
    );
    s.live_pids.insert(10, true); // reused by some other process
    let d = decide(&c, &s, &mut mem);
    assert_eq!(claim_targets(&d), vec![(me(10), me(11))]);
}

#[test]
fn claim_policies() {
    let since = T0 - 3600 * S;
    let mk = || {
        let mut s = snap(
            T0,
            vec![unit(10, since)],
            group(
                Some(0),
                vec![
                    consumer(&me(10), 0, 1, None),
                    consumer(&me(66), 12, 100, None),
                ],
            ),
            None,
        );
        s.live_pids.insert(66, false);
        s
    };
    let d = decide(
        &cfg("claim_policy = \"park\""),
        &mk(),
        &mut Memory::default(),
    );
    assert_eq!(
        claim_targets(&d),
        vec![(me(66), PARKED_CONSUMER.to_string())]
    );
    assert_eq!(d.actions[0].kind(), "park");
    let d = decide(
        &cfg("claim_policy = \"requeue\""),
        &mk(),
        &mut Memory::default(),
    );
    assert!(
        matches!(&d.actions[..], [Action::Requeue { from, pending: 12, .. }] if *from == me(66))
    );
}

#[test]
fn consumers_of_other_bindings_of_the_same_group_are_not_zombies() {
    let c = from_fragments(&[(
        "t".into(),
        format!(
            r#"
[[watch]]
unit = "{UNIT}"
stream = "{STREAM}"
group = "{GROUP}"
consumer = "execution-{{hostname}}-{{pid}}"
zombie_after = "1m"
[[watch]]
unit = "quantum-execution-b.service"
stream = "{STREAM}"
group = "{GROUP}"
consumer = "execb"
"#
        ),
    )])
    .unwrap();
    let since = T0 - 3600 * S;
    let s = snap(
        T0,
        vec![
            unit(10, since),
            UnitState {
                name: "quantum-execution-b.service".into(),
                ..unit(20, since)
            },
        ],
        group(
            Some(0),
            vec![
                consumer(&me(10), 0, 1, None),
                consumer("execb", 0, 99999, None),
            ],
        ),
        None,
    );
    let d = decide(&c, &s, &mut Memory::default());
    assert!(d.actions.is_empty(), "{:?}", d.actions);
}

#[test]
fn own_unit_is_never_judged_or_acted_on() {
    let mut c = cfg("");
    c.units = vec!["quantum-*.service".into()];
    let since = T0 - 3600 * S;
    let s = snap(
        T0,
        vec![
            unit(10, since),
            UnitState {
                name: "quantum-watchdog.service".into(),
                active_state: "failed".into(),
                ..unit(1, since)
            },
            UnitState {
                name: "quantum-ai-engine.service".into(),
                ..unit(12, since)
            },
        ],
        group(Some(0), vec![]),
        None,
    );
    let d = decide(&c, &s, &mut Memory::default());
    let names: Vec<_> = d.units.iter().map(|u| u.unit.as_str()).collect();
    assert_eq!(names, ["quantum-ai-engine.service", UNIT]);
    assert_eq!(
        d.units[0].verdict,
        Verdict::Healthy,
        "an unbound active unit is judged by systemd alone"
    );
}

#[test]
fn pids_to_probe_come_from_matching_names_only() {
    let c = cfg("");
    let consumers = || {
        group(
            Some(0),
            vec![
                consumer(&me(10), 0, 1, None),
                consumer(&me(13), 0, 1, None),
                consumer("execution-otherhost-11", 0, 1, None),
                consumer("x-12", 0, 1, None),
            ],
        )
    };
    let probe = |units: Vec<UnitState>| {
        let s = snap(T0, units, consumers(), None);
        pids_to_probe(
            &c,
            HOST,
            s.redis.as_ref().unwrap(),
            s.units.as_ref().unwrap(),
        )
        .into_iter()
        .collect::<Vec<_>>()
    };
    // The unit's MainPID is live by rule 7 without a probe; an earlier process's PID is probed.
    assert_eq!(probe(vec![unit(10, T0 - 60 * S)]), vec![13]);
    // Not reported by systemd: every PID of a matching name is probed.
    assert_eq!(probe(vec![]), vec![10, 13]);
}

#[test]
fn poison_entries_are_dead_lettered_only_when_configured() {
    let since = T0 - 3600 * S;
    let poison = PendingEntry {
        id: StreamId { ms: 7, seq: 0 },
        consumer: me(10),
        idle_ms: 10,
        deliveries: 25,
    };
    let young = PendingEntry {
        id: StreamId { ms: 8, seq: 0 },
        consumer: me(10),
        idle_ms: 10,
        deliveries: 3,
    };
    let mk = || {
        let mut s = snap(
            T0,
            vec![unit(10, since)],
            group(Some(0), vec![consumer(&me(10), 2, 1, None)]),
            None,
        );
        set_scan(&mut s, None, vec![poison.clone(), young.clone()]);
        s
    };
    // Not configured: reported (warning), never acknowledged.
    let d = decide(&cfg(""), &mk(), &mut Memory::default());
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    assert_eq!(d.poison.len(), 1);
    assert!(!d.poison[0].dead_letter);
    assert_eq!(d.severity(), Severity::Warning);
    // Configured: the due entry, and only that one, goes to the dead-letter stream.
    let d = decide(
        &cfg("dead_letter_after = 20"),
        &mk(),
        &mut Memory::default(),
    );
    assert!(
        matches!(&d.actions[..], [Action::DeadLetter { id, deliveries: 25, min_deliveries: 20, .. }] if id == "7-0"),
        "{:?}",
        d.actions
    );
    assert_eq!(d.actions[0].kind(), "dead-letter");
}

// ---------------------------------------------------------------------------------------------
// Trust at the edges.

/// Two bindings of one unit; the second is broken (WRONGTYPE). The first hangs: the unit is
/// hung (critical, not unknown) and restarted for the first binding's reason alone.
#[test]
fn a_broken_binding_counts_for_nothing_else() {
    let c = cfg(
        "[[watch]]\nunit = \"quantum-execution.service\"\nstream = \"broken\"\ngroup = \"g\"\nconsumer = \"b-{pid}\"",
    );
    let since = T0 - 3600 * S;
    let mk = |lag, idle| {
        let mut s = snap(
            T0,
            vec![unit(10, since)],
            group(Some(lag), vec![consumer(&me(10), 0, idle, None)]),
            None,
        );
        if let Ok(r) = &mut s.redis {
            r.groups.insert(
                GroupKey {
                    stream: "broken".into(),
                    group: "g".into(),
                },
                Err(ReadError::Server("XINFO GROUPS broken: WRONGTYPE Operation against a key holding the wrong kind of value".into())),
            );
        }
        s
    };
    let d = decide(&c, &mk(0, 1), &mut Memory::default());
    assert_eq!(
        d.units[0].verdict,
        Verdict::Healthy,
        "{}",
        d.units[0].reason
    );
    assert_eq!(
        d.units[0].severity,
        Severity::Warning,
        "the error is the binding's own"
    );
    assert_eq!(d.severity().exit_code(), 1);
    assert!(
        d.units[0].bindings[1]
            .error
            .as_deref()
            .unwrap()
            .contains("WRONGTYPE")
    );
    let mut mem = Memory::default();
    decide(&c, &mk(5, 600), &mut mem);
    let d = decide(&c, &mk(5, 600), &mut mem);
    assert_eq!(d.units[0].verdict, Verdict::Hung);
    assert_eq!(
        d.severity(),
        Severity::Critical,
        "critical is never hidden behind unknown"
    );
    let [Action::Restart { reason, cause, .. }] = &d.actions[..] else {
        panic!("{:?}", d.actions)
    };
    assert_eq!(*cause, RestartCause::IdleWithWork);
    assert!(!reason.contains("WRONGTYPE"), "{reason}");
    // A dead consumer of the healthy binding is still handed off.
    let mut s = mk(0, 1);
    group_mut(&mut s)
        .consumers
        .push(consumer(&me(66), 4, 100, None));
    s.live_pids.insert(66, false);
    let d = decide(&c, &s, &mut Memory::default());
    assert_eq!(claim_targets(&d), vec![(me(66), me(10))]);
}

/// Every binding broken: the unit is unknown and nothing is restarted.
#[test]
fn a_unit_whose_every_binding_errs_is_unknown() {
    let c = cfg("");
    let mut s = snap(
        T0,
        vec![unit(10, T0 - 3600 * S)],
        group(Some(5), vec![]),
        None,
    );
    if let Ok(r) = &mut s.redis {
        r.groups
            .insert(key(), Err(ReadError::Server("NOGROUP no such key".into())));
    }
    let mut mem = Memory::default();
    for k in 0..5 {
        let d = decide(
            &c,
            &Snapshot {
                now_usec: T0 + k * 5 * S,
                mono_usec: T0 + k * 5 * S,
                ..s.clone()
            },
            &mut mem,
        );
        assert_eq!(d.units[0].verdict, Verdict::Unknown);
        assert!(
            d.actions.is_empty(),
            "an erroring binding never causes a restart"
        );
    }
}

/// A live PID that does not run in the unit is a reused PID: its consumer is dead and its
/// entries are recovered; one that runs in the unit's cgroup is the unit's, never touched.
#[test]
fn a_live_pid_outside_the_unit_is_a_reused_pid() {
    let c = cfg("");
    let since = T0 - 3600 * S;
    let mut s = snap(
        T0,
        vec![unit(10, since)],
        group(
            Some(0),
            vec![
                consumer(&me(10), 0, 1, None),
                consumer(&me(300), 7, 900, None), // reused by an unrelated process
                consumer(&me(301), 5, 1, None),   // a worker process of the unit
                consumer(&me(302), 3, 900, None), // another unit's process now
                consumer(&me(303), 2, 900, None), // live, its unit not asked: unknown
            ],
        ),
        None,
    );
    for p in [300, 301, 302, 303] {
        s.live_pids.insert(p, true);
    }
    s.pid_units.insert(300, None);
    s.pid_units.insert(301, Some(UNIT.into()));
    s.pid_units.insert(302, Some("cron.service".into()));
    let d = decide(&c, &s, &mut Memory::default());
    assert_eq!(
        claim_targets(&d),
        vec![(me(300), me(10)), (me(302), me(10))],
        "{:#?}",
        d.consumers
    );
    let by = |n: &str| {
        d.consumers
            .iter()
            .find(|c| c.consumer.as_ref() == n)
            .unwrap()
    };
    assert_eq!(by(&me(301)).liveness, Liveness::Live);
    assert_eq!(by(&me(303)).liveness, Liveness::Unknown);
    assert!(
        by(&me(300)).note.contains("reused"),
        "{}",
        by(&me(300)).note
    );
    assert!(by(&me(302)).note.contains("cron.service"));
    // Every consumer of the group is reported; only the unit's own is its row's.
    assert_eq!(d.consumers.len(), 5);
    assert_eq!(
        d.consumers
            .iter()
            .filter(|c| c.current)
            .map(|c| c.consumer.to_string())
            .collect::<Vec<_>>(),
        vec![me(10)]
    );
    assert_eq!(
        pids_to_locate(
            &pids_to_probe(
                &c,
                HOST,
                s.redis.as_ref().unwrap(),
                s.units.as_ref().unwrap()
            ),
            &s.live_pids
        ),
        [300, 301, 302, 303].into_iter().collect(),
        "the MainPID needs no lookup"
    );
}

/// A unit whose consumer runs in a child process (not the MainPID) is judged by that consumer.
#[test]
fn the_consumer_of_a_child_process_is_the_units() {
    let c = cfg("");
    let since = T0 - 3600 * S;
    let mut s = snap(
        T0,
        vec![unit(10, since)],
        group(Some(3), vec![consumer(&me(11), 1, 600, None)]),
        None,
    );
    s.live_pids.insert(11, true);
    s.pid_units.insert(11, Some(UNIT.into()));
    let mut mem = Memory::default();
    let d = decide(&c, &s, &mut mem);
    let b = &d.units[0].bindings[0];
    assert_eq!(b.consumer.as_deref(), Some(me(11).as_str()));
    assert!(b.consumer_present);
    assert_eq!(d.units[0].verdict, Verdict::Hung, "{}", d.units[0].reason);
    assert!(d.actions.iter().all(|a| !matches!(a, Action::Claim { .. })));
    // Next cycle the plan asks for that consumer's oldest entry.
    let p = plan(&c, HOST, s.units.as_ref().unwrap(), &mem, s.clock());
    assert_eq!(p.groups[0].heads, vec![me(11)]);
}

/// Claims reset the recipient's idle time; they are not its progress, whoever made them: the
/// group's claim traces (server ms) say when entries were claimed to it and when it last
/// really read before.
#[test]
fn claims_do_not_count_as_progress() {
    use crate::model::{ClaimTrace, ClaimTraces};
    let c = cfg("");
    let since = T0 - 3600 * S;
    let mut mem = Memory::default();
    // Server time: T0 / 1000 ms at the first look. The consumer last read 20 s before; claims
    // (recover's, a wrapper's, another host's) reach it at +0.1 s and at +30 s.
    let server = T0 / 1000;
    let at = |now: u64, idle_s: u64, claimed_at_ms: Option<u64>| {
        let mut g = group(Some(4), vec![consumer(&me(10), 3, idle_s, None)]);
        g.claims = Some(ClaimTraces {
            now_ms: server + (now - T0) / 1000,
            by_consumer: claimed_at_ms
                .map(|at_ms| {
                    let t = ClaimTrace {
                        at_ms,
                        active_ms: server - 20_000,
                    };
                    (me(10), t)
                })
                .into_iter()
                .collect(),
            error: None,
        });
        snap(now, vec![unit(10, since)], g, None)
    };
    let d = decide(&c, &at(T0, 20, None), &mut mem);
    assert_eq!(d.units[0].verdict, Verdict::Healthy);
    // 29 s later its idle says 29 s (since the claim); its progress says 49 s.
    let d = decide(&c, &at(T0 + 29 * S, 29, Some(server + 100)), &mut mem);
    assert_eq!(
        d.units[0].verdict,
        Verdict::Lagging,
        "49 s < hung_after 60 s"
    );
    let d = decide(&c, &at(T0 + 45 * S, 15, Some(server + 30_000)), &mut mem);
    assert_eq!(d.units[0].verdict, Verdict::Hung, "{}", d.units[0].reason);
    assert!(d.units[0].reason.contains("1m05s"), "{}", d.units[0].reason);
    assert!(d.units[0].reason.contains("claims"));
    // A real read after the claim: its idle counts again.
    let d = decide(&c, &at(T0 + 50 * S, 1, Some(server + 30_000)), &mut mem);
    assert_eq!(d.units[0].verdict, Verdict::Healthy);
    // Traces no claim of ours leaves (another client's): a claim dated ahead of the server's
    // clock, a last read after the claim, a recipient holding nothing. A reading consumer is
    // never made to look hung by them.
    for (at_ms, active_ms, pending) in [
        (server + 3_600_000, server - 20_000, 3),
        (server + 45_000, server + 45_000 + 1, 3),
        (server + 30_000, server - 20_000, 0),
    ] {
        let mut g = group(Some(4), vec![consumer(&me(10), pending, 15, None)]);
        g.claims = Some(ClaimTraces {
            now_ms: server + 45_000,
            by_consumer: [(me(10), ClaimTrace { at_ms, active_ms })].into(),
            error: None,
        });
        let d = decide(
            &c,
            &snap(T0 + 45 * S, vec![unit(10, since)], g, None),
            &mut mem.clone(),
        );
        assert_eq!(
            d.units[0].verdict,
            Verdict::Healthy,
            "{at_ms} {active_ms} {pending}: {}",
            d.units[0].reason
        );
    }
    // Traces that could not be read (another client's key there): idle as Redis says.
    let mut s = at(T0 + 45 * S, 15, Some(server + 30_000));
    group_mut(&mut s).claims.as_mut().unwrap().error = Some("not a hash".into());
    let d = decide(&c, &s, &mut mem);
    assert_eq!(
        d.units[0].verdict,
        Verdict::Healthy,
        "{}",
        d.units[0].reason
    );
}

/// Same template on two units of one group: a dead consumer nobody's earlier MainPID names
/// goes to the unit that can take it; an earlier MainPID's goes to its own unit.
#[test]
fn shared_templates_hand_off_to_a_unit_that_runs() {
    let c = from_fragments(&[(
        "t".into(),
        format!(
            r#"
mode = "enforce"
[[watch]]
unit = "quantum-a.service"
stream = "{STREAM}"
group = "{GROUP}"
consumer = "execution-{{hostname}}-{{pid}}"
[[watch]]
unit = "quantum-b.service"
stream = "{STREAM}"
group = "{GROUP}"
consumer = "execution-{{hostname}}-{{pid}}"
"#
        ),
    )])
    .unwrap();
    let since = T0 - 3600 * S;
    let a_stopped = UnitState {
        name: "quantum-a.service".into(),
        active_state: "inactive".into(),
        sub_state: "dead".into(),
        main_pid: 0,
        ..unit(0, since)
    };
    let b = UnitState {
        name: "quantum-b.service".into(),
        ..unit(20, since)
    };
    let mut s = snap(
        T0,
        vec![a_stopped, b.clone()],
        group(
            Some(0),
            vec![
                consumer(&me(20), 0, 1, None),
                consumer(&me(66), 9, 100, None),
            ],
        ),
        None,
    );
    s.live_pids.insert(66, false);
    let d = decide(&c, &s, &mut Memory::default());
    assert_eq!(claim_targets(&d), vec![(me(66), me(20))]);
    // Both run: an earlier MainPID of B goes to B's consumer, though A is listed first.
    let a = UnitState {
        name: "quantum-a.service".into(),
        ..unit(30, since)
    };
    let mut mem = Memory::default();
    mem.units
        .entry("quantum-b.service".into())
        .or_default()
        .previous_pids = vec![66];
    s.units = Ok(vec![a, b]);
    group_mut(&mut s)
        .consumers
        .push(consumer(&me(30), 5, 1, None));
    let d = decide(&c, &s, &mut mem);
    assert_eq!(claim_targets(&d), vec![(me(66), me(20))]);
    let Action::Claim { unit, .. } = &d.actions[0] else {
        panic!()
    };
    assert_eq!(unit, "quantum-b.service");
}

/// Memory is keyed by names: swapping two [[watch]] entries (a reload) keeps each binding's
/// history with it.
#[test]
fn a_reload_that_reorders_bindings_keeps_their_history() {
    let w = |unit: &str, stream: &str| {
        format!(
            "[[watch]]\nunit = \"{unit}\"\nstream = \"{stream}\"\ngroup = \"g\"\nconsumer = \"c-{{hostname}}-{{pid}}\"\n"
        )
    };
    let head = "[defaults]\nhung_after = \"10s\"\nstartup_grace = \"1s\"\nconfirm = 1\n";
    let ab = from_fragments(&[(
        "t".into(),
        format!(
            "{head}{}{}",
            w("quantum-a.service", "sa"),
            w("quantum-b.service", "sb")
        ),
    )])
    .unwrap();
    let ba = from_fragments(&[(
        "t".into(),
        format!(
            "{head}{}{}",
            w("quantum-b.service", "sb"),
            w("quantum-a.service", "sa")
        ),
    )])
    .unwrap();
    let since = T0 - 3600 * S;
    let mk = |now: u64, a_lag: u64, b_lag: u64| {
        let mut groups = BTreeMap::new();
        for (stream, lag) in [("sa", a_lag), ("sb", b_lag)] {
            let mut g = group(Some(lag), vec![]);
            g.group.name = "g".into();
            groups.insert(
                GroupKey {
                    stream: stream.into(),
                    group: "g".into(),
                },
                Ok(g),
            );
        }
        Snapshot {
            now_usec: now,
            mono_usec: now,
            hostname: HOST.into(),
            self_unit: None,
            units: Ok(vec![
                UnitState {
                    name: "quantum-a.service".into(),
                    ..unit(10, since)
                },
                UnitState {
                    name: "quantum-b.service".into(),
                    ..unit(11, since)
                },
            ]),
            redis: Ok(RedisSnapshot {
                groups,
                ..Default::default()
            }),
            live_pids: BTreeMap::new(),
            pid_units: BTreeMap::new(),
            utc_offset_secs: 0,
            holds: Default::default(),
        }
    };
    let mut mem = Memory::default();
    // A's work has waited since T0 with no consumer; B's since T0 + 5 s.
    decide(&ab, &mk(T0, 3, 0), &mut mem);
    decide(&ab, &mk(T0 + 5 * S, 3, 3), &mut mem);
    // Reload with the order swapped; 8 s after B's work began waiting, 13 s after A's.
    let d = decide(&ba, &mk(T0 + 13 * S, 3, 3), &mut mem);
    let by = |n: &str| d.units.iter().find(|u| u.unit == n).unwrap();
    assert_eq!(
        by("quantum-a.service").verdict,
        Verdict::Hung,
        "{}",
        by("quantum-a.service").reason
    );
    assert_eq!(
        by("quantum-b.service").verdict,
        Verdict::Lagging,
        "{}",
        by("quantum-b.service").reason
    );
}

/// The scan walks a long pending list over cycles: an entry past the limit anywhere in it is
/// found at a bounded cost per cycle, and stays reported (re-checked) after the scan moved on.
#[test]
fn the_poison_scan_walks_the_whole_list() {
    let c = cfg("dead_letter_after = 5");
    let since = T0 - 3600 * S;
    let entry = |ms: u64, deliveries: u64| PendingEntry {
        id: StreamId { ms, seq: 0 },
        consumer: PARKED_CONSUMER.into(),
        idle_ms: 1000,
        deliveries,
    };
    let mut mem = Memory::default();
    let mut cycle =
        |after: Option<StreamId>, entries: Vec<PendingEntry>, rechecked: Vec<PendingEntry>| {
            let mut s = snap(
                T0,
                vec![unit(10, since)],
                group(Some(0), vec![consumer(PARKED_CONSUMER, 1300, 1, None)]),
                None,
            );
            set_scan(&mut s, after, entries);
            group_mut(&mut s).rechecked = Some(rechecked);
            let d = decide(&c, &s, &mut mem);
            (
                d,
                plan(&c, HOST, s.units.as_ref().unwrap(), &mem, s.clock()),
            )
        };
    let full = |from: u64| {
        (from..from + crate::policy::plan::SCAN_CHUNK as u64)
            .map(|ms| entry(ms, 1))
            .collect::<Vec<_>>()
    };
    let (d, p) = cycle(None, full(1), vec![]);
    assert!(d.poison.is_empty());
    let scan = p.groups[0].scan.unwrap();
    assert_eq!(
        scan.after,
        Some(StreamId {
            ms: crate::policy::plan::SCAN_CHUNK as u64,
            seq: 0
        })
    );
    let mut second = full(1 + crate::policy::plan::SCAN_CHUNK as u64);
    second[7] = entry(second[7].id.ms, 25);
    let (d, p) = cycle(scan.after, second.clone(), vec![]);
    assert!(
        matches!(&d.actions[..], [Action::DeadLetter { deliveries: 25, .. }]),
        "{:?}",
        d.actions
    );
    assert_eq!(p.groups[0].recheck, vec![second[7].id]);
    // A short window wraps the scan to the beginning; the suspect is re-checked meanwhile.
    let (d, p) = cycle(
        p.groups[0].scan.unwrap().after,
        vec![entry(5000, 1)],
        vec![second[7].clone()],
    );
    assert_eq!(d.poison.len(), 1);
    assert_eq!(p.groups[0].scan.unwrap().after, None);
    // Once it is gone (moved or acknowledged), it is no longer reported.
    let (d, p) = cycle(None, full(1), vec![]);
    assert!(d.poison.is_empty());
    assert!(p.groups[0].recheck.is_empty());
}

/// A unit running several workers (`bash -c 'w & w & wait'`): one worker hung holding an entry
/// while its sibling keeps reading is a hung unit, not hidden behind the sibling.
#[test]
fn a_hung_worker_is_not_hidden_behind_a_busy_sibling() {
    let c = cfg("");
    let since = T0 - 3600 * S;
    let workers_at = |main_idle_s: u64, hung_idle_s: u64, hung_pending: u64| {
        let mut s = snap(
            T0,
            vec![unit(10, since)],
            group(
                Some(50),
                vec![
                    consumer(&me(11), 2, main_idle_s, None),
                    consumer(&me(12), hung_pending, hung_idle_s, None),
                ],
            ),
            None,
        );
        for p in [11, 12] {
            s.live_pids.insert(p, true);
            s.pid_units.insert(p, Some(UNIT.into()));
        }
        s
    };
    let workers = |hung_idle_s, hung_pending| workers_at(0, hung_idle_s, hung_pending);
    // A slow main worker (lagging: idle past warn_percent) does not hide a hung sibling.
    let d = decide(&c, &workers_at(35, 600, 1), &mut Memory::default());
    assert_eq!(d.units[0].verdict, Verdict::Hung, "{}", d.units[0].reason);
    assert!(d.units[0].reason.contains(&me(12)), "{}", d.units[0].reason);
    for (idle, pending, want) in [
        (600, 1, Verdict::Hung),    // holds an entry, reads nothing while work waits
        (20, 1, Verdict::Healthy),  // within warn_percent of hung_after
        (30, 1, Verdict::Lagging),  // past it, within hung_after
        (600, 0, Verdict::Healthy), // holds nothing: the sibling takes the work
    ] {
        let d = decide(&c, &workers(idle, pending), &mut Memory::default());
        assert_eq!(
            d.units[0].verdict, want,
            "{idle}s {pending}: {}",
            d.units[0].reason
        );
        if want == Verdict::Hung {
            assert!(d.units[0].reason.contains(&me(12)), "{}", d.units[0].reason);
        }
    }
    let mut mem = Memory::default();
    decide(&c, &workers(600, 1), &mut mem);
    let d = decide(&c, &workers(600, 1), &mut mem);
    assert_eq!(restarts(&d), 1, "restarted after confirm cycles");
}

/// Thousands of empty zombies go a thousand a cycle, the rest reported for later.
#[test]
fn zombie_deletes_are_bounded_per_cycle() {
    let c = cfg("");
    let since = T0 - 3600 * S;
    let zombies: Vec<ConsumerInfo> = (0..2500)
        .map(|i| consumer(&format!("zombie-{i}"), 0, 7200, None))
        .collect();
    let d = decide(
        &c,
        &snap(T0, vec![unit(10, since)], group(Some(0), zombies), None),
        &mut Memory::default(),
    );
    assert_eq!(deletes(&d).len(), consumers::DELETES_PER_GROUP);
    let later = d
        .consumers
        .iter()
        .filter(|r| r.note.contains("later cycle"))
        .count();
    assert_eq!(later, 2500 - consumers::DELETES_PER_GROUP);
}

/// A number no Linux PID can be is no PID: such a consumer holding entries is a zombie of
/// unknown liveness (kept, a warning, past zombie_after), never "liveness not checked".
#[test]
fn impossible_pids_are_unknown_liveness() {
    let c = cfg("");
    let since = T0 - 3600 * S;
    for name in [
        format!("execution-{HOST}-3000000000"),
        format!("execution-{HOST}-2147483648"),
        format!("execution-{HOST}-4294967295"),
        format!("execution-{HOST}-0"),
    ] {
        let d = decide(
            &c,
            &snap(
                T0,
                vec![unit(10, since)],
                group(Some(0), vec![consumer(&name, 2, 7200, None)]),
                None,
            ),
            &mut Memory::default(),
        );
        let r = d
            .consumers
            .iter()
            .find(|r| r.consumer.as_ref() == name)
            .unwrap();
        assert_eq!(r.liveness, Liveness::Unknown, "{name}");
        assert_eq!(r.severity, Severity::Warning, "{name}: {}", r.note);
        assert_eq!(d.severity(), Severity::Warning, "{name}");
    }
}

/// A unit that dies again and again with the same entry at the head of its consumer: after
/// `poison_after_crashes` consecutive deaths the entry is quarantined, before the handoff of
/// the rest; a death on another head starts the count again.
#[test]
fn crash_loop_on_one_entry_is_quarantined() {
    let c = cfg("poison_after_crashes = 3\n");
    let since = T0 - 3600 * S;
    // Each process that died read its head: the delivery count grows with every look.
    let head = |id: u64, deliveries: u64| PendingEntry {
        id: StreamId { ms: id, seq: 0 },
        consumer: String::new(),
        idle_ms: 1000,
        deliveries,
    };
    // One look: the unit runs as `pid`, the consumer of `dead` holds `id` at its head.
    let look = |pid: u32, dead: u32, id: u64, restarts: u32| {
        let mut u = unit(pid, since);
        u.n_restarts = restarts;
        u.exit_status = "killed KILL".into();
        let g = group(
            Some(0),
            vec![
                consumer(&me(dead), 5, 1, None),
                consumer(&me(pid), 0, 0, None),
            ],
        );
        let mut s = snap(T0, vec![u], g, None);
        let key = GroupKey {
            stream: STREAM.into(),
            group: GROUP.into(),
        };
        let heads = &mut s
            .redis
            .as_mut()
            .unwrap()
            .groups
            .get_mut(&key)
            .unwrap()
            .as_mut()
            .unwrap()
            .heads;
        heads.insert(me(dead), Some(head(id, u64::from(pid))));
        s.live_pids.insert(pid, true);
        s.pid_units.insert(pid, Some(UNIT.into()));
        s
    };
    let quarantines = |d: &Decision| -> Vec<(String, u32)> {
        d.actions
            .iter()
            .filter_map(|a| match a {
                Action::Quarantine { id, crashes, .. } => Some((id.clone(), *crashes)),
                _ => None,
            })
            .collect()
    };
    let mut mem = Memory::default();
    decide(&c, &look(10, 9, 7, 0), &mut mem); // first look: no death seen yet
    let d = decide(&c, &look(11, 10, 7, 1), &mut mem); // death 1 on entry 7
    assert!(quarantines(&d).is_empty());
    let d = decide(&c, &look(12, 11, 8, 2), &mut mem); // death on entry 8: count starts again
    assert!(quarantines(&d).is_empty());
    let d = decide(&c, &look(13, 12, 8, 3), &mut mem); // 2 on entry 8
    assert!(quarantines(&d).is_empty());
    let d = decide(&c, &look(14, 13, 8, 4), &mut mem); // 3 on entry 8: quarantined
    assert_eq!(quarantines(&d), vec![("8-0".to_string(), 3)]);
    let q = d
        .actions
        .iter()
        .position(|a| matches!(a, Action::Quarantine { .. }))
        .unwrap();
    let claim = d
        .actions
        .iter()
        .position(|a| matches!(a, Action::Claim { .. }));
    assert!(
        claim.is_none_or(|c| q < c),
        "quarantine before the handoff: {:?}",
        d.actions
    );
    // systemd restarted it twice between two looks (NRestarts 4 → 6): one death, as the
    // process in between never held the entry the last one held.
    let mut mem = Memory::default();
    decide(&c, &look(20, 19, 5, 4), &mut mem);
    decide(&c, &look(21, 20, 5, 6), &mut mem);
    let d = decide(&c, &look(22, 21, 5, 7), &mut mem);
    assert!(quarantines(&d).is_empty());
    let d = decide(&c, &look(23, 22, 5, 8), &mut mem);
    assert_eq!(quarantines(&d), vec![("5-0".to_string(), 3)]);
    // An operator's restarts (NRestarts unchanged, not the agent's) are no deaths; nor is a
    // MainPID change whose old process lives on.
    let mut mem = Memory::default();
    decide(&c, &look(40, 39, 5, 2), &mut mem);
    for pid in 41..46 {
        let d = decide(&c, &look(pid, pid - 1, 5, 2), &mut mem);
        assert!(quarantines(&d).is_empty());
    }
    let mut mem = Memory::default();
    decide(&c, &look(50, 49, 5, 2), &mut mem);
    for (i, pid) in (51..56).enumerate() {
        let mut s = look(pid, pid - 1, 5, 3 + i as u32);
        s.live_pids.insert(pid - 1, true);
        let d = decide(&c, &s, &mut mem);
        assert!(quarantines(&d).is_empty());
    }
    // The agent's own restarts count (a hang on the entry).
    let mut mem = Memory::default();
    decide(&c, &look(60, 59, 5, 0), &mut mem);
    let mut last = Vec::new();
    for pid in 61..64 {
        mem.note_restart(UNIT, T0);
        mem.note_restart_finished(UNIT);
        last = quarantines(&decide(&c, &look(pid, pid - 1, 5, 0), &mut mem));
    }
    assert_eq!(last, vec![("5-0".to_string(), 3)]);
    // Without the setting: never.
    let plain = cfg("");
    let mut mem = Memory::default();
    for (i, pid) in (30..36).enumerate() {
        let d = decide(&plain, &look(pid, pid - 1, 5, i as u32), &mut mem);
        assert!(quarantines(&d).is_empty());
    }
}

/// A pause or an open window: the unit is judged and shown, nothing is done to it or its
/// consumers; the actions are reported as held. A budget reset frees a gave-up unit.
#[test]
fn holds_keep_actions_back_and_resets_free_the_budget() {
    use crate::model::holds::{Holds, OpenWindow, Pause};
    let c = cfg("");
    let since = T0 - 3600 * S;
    let hung = |holds: Holds| {
        let mut s = snap(
            T0,
            vec![unit(10, since)],
            group(
                Some(5),
                vec![
                    consumer(&me(10), 1, 600, None),
                    consumer(&me(9), 3, 600, None),
                ],
            ),
            None,
        );
        s.holds = holds;
        s
    };
    let paused = Holds {
        pauses: vec![Pause {
            unit: Some(UNIT.into()),
            by: "root".into(),
            reason: "deploy".into(),
            since_usec: T0 - S,
            until_usec: Some(T0 + 600 * S),
        }],
        ..Default::default()
    };
    let window = Holds {
        windows: vec![OpenWindow {
            name: "nightly".into(),
            units: vec!["quantum-*.service".into()],
            until_usec: T0 + 600 * S,
        }],
        ..Default::default()
    };
    for (what, holds) in [("pause", paused), ("window", window)] {
        let mut mem = Memory::default();
        decide(&c, &hung(holds.clone()), &mut mem);
        let d = decide(&c, &hung(holds), &mut mem);
        assert_eq!(d.units[0].verdict, Verdict::Hung, "{what}: still judged");
        assert!(d.units[0].hold.is_some(), "{what}");
        assert!(d.actions.is_empty(), "{what}: {:?}", d.actions);
        assert!(
            d.held
                .iter()
                .any(|h| matches!(h.action, Action::Restart { .. })),
            "{what}"
        );
    }
    // An expired pause holds nothing.
    let mut expired = Holds::default();
    expired.pauses.push(Pause {
        unit: Some(UNIT.into()),
        by: "root".into(),
        reason: String::new(),
        since_usec: T0 - 100 * S,
        until_usec: Some(T0 - S),
    });
    let mut mem = Memory::default();
    decide(&c, &hung(expired.clone()), &mut mem);
    assert_eq!(restarts(&decide(&c, &hung(expired), &mut mem)), 1);
    // Budget spent (max 2): gave up; a reset after those restarts frees it.
    let mut mem = Memory::default();
    mem.note_restart(UNIT, T0 - 60 * S);
    mem.note_restart_finished(UNIT);
    mem.note_restart(UNIT, T0 - 50 * S);
    mem.note_restart_finished(UNIT);
    decide(&c, &hung(Holds::default()), &mut mem);
    let d = decide(&c, &hung(Holds::default()), &mut mem);
    assert_eq!(d.units[0].verdict, Verdict::GaveUp);
    let mut reset = Holds::default();
    reset.budget_resets.insert(UNIT.into(), T0 - 40 * S);
    decide(&c, &hung(reset.clone()), &mut mem);
    let d = decide(&c, &hung(reset), &mut mem);
    assert_eq!(restarts(&d), 1, "{}", d.units[0].reason);
}

/// A unit with a systemd job (a deploy's restart, a slow stop) is not restarted, and its dead
/// consumers are left to the service's own stop logic until the job ends and the grace passes.
/// A hang under the job is shown as one, its restart held — a warning at least, never fine.
#[test]
fn a_running_job_means_hands_off() {
    let c = cfg("");
    let since = T0 - 3600 * S;
    let mut u = unit(10, since);
    u.job = Some("restart".into());
    let g = group(
        Some(5),
        vec![
            consumer(&me(10), 1, 600, None),
            consumer(&me(9), 3, 600, None),
        ],
    );
    let mut mem = Memory::default();
    decide(&c, &snap(T0, vec![u.clone()], g.clone(), None), &mut mem);
    let d = decide(&c, &snap(T0 + S, vec![u], g.clone(), None), &mut mem);
    assert_eq!(d.units[0].verdict, Verdict::Hung, "{}", d.units[0].reason);
    let hold = d.units[0].hold.as_deref().unwrap_or_default();
    assert!(
        hold.contains("restart job") && hold.contains("deploy_hold"),
        "{hold}"
    );
    assert!(d.units[0].severity.rank() >= Severity::Warning.rank());
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    assert!(
        matches!(&d.held[..], [h] if matches!(h.action, Action::Restart { .. })),
        "{:?}",
        d.held
    );
    // The job ended: still within startup grace (30 s) of it.
    let d = decide(
        &c,
        &snap(T0 + 10 * S, vec![unit(10, since)], g, None),
        &mut mem,
    );
    assert_eq!(
        d.units[0].verdict,
        Verdict::Starting,
        "{}",
        d.units[0].reason
    );
}

/// Two agents write under one host name (a cloned machine). To this host's agent, another
/// agent's heartbeat stood under its name before it wrote its own (not its own, nor its
/// predecessor's): a consumer of its name whose PID is not running here may be the other
/// machine's live one — of unknown liveness, nothing taken, none named dead, the host shown
/// shared. To another host's agent, the name's heartbeat changed hands twice: the same.
/// A restart (the predecessor's heartbeat, or one change of hands) is no twin.
#[test]
fn a_host_name_two_agents_write_under_is_taken_from_by_none() {
    use crate::model::fleet::{FleetView, Heartbeat, HostBeat};
    let c = cfg("[fleet]\nenabled = true\nhost_dead_after = \"30s\"");
    let since = T0 - 3600 * S;
    let now_ms = T0 / 1000;
    let beat = |host: &str, instance: &str| Heartbeat {
        host: host.into(),
        as_of_ms: now_ms - 1000,
        instance: instance.into(),
        ..Default::default()
    };
    let view = |own_before: &str, other: &str, at: u64| FleetView {
        now_ms: now_ms + at,
        hosts: vec![
            HostBeat::with_beat(HOST, now_ms + at, Some(beat(HOST, "mine"))),
            HostBeat::with_beat("qt-2", now_ms + at, Some(beat("qt-2", other))),
        ],
        own_before: own_before.into(),
        resend: false,
        written: None,
    };
    // A consumer of this host's name whose PID is not running here (the twin's live one), and
    // one of qt-2's that qt-2 says nothing of.
    let look = |v: FleetView| {
        let consumers = vec![
            consumer(&me(10), 0, 1, None),
            consumer(&me(77), 3, 60, None),
            consumer(&me(78), 1, 5, None),
            consumer("execution-qt-2-9", 2, 7200, None),
        ];
        let mut s = snap(T0, vec![unit(10, since)], group(Some(0), consumers), None);
        s.live_pids.insert(77, false);
        s.live_pids.insert(78, false);
        s.redis.as_mut().unwrap().fleet = Some(Ok(v));
        s
    };
    let liveness = |d: &Decision, name: &str| {
        let r = d
            .consumers
            .iter()
            .find(|r| r.consumer.as_ref() == name)
            .unwrap();
        (r.liveness, r.note.to_string())
    };
    let mut mem = Memory::default();
    mem.fleet.publish = true;
    mem.fleet.instance = "mine".into();
    mem.fleet.predecessor = "before-restart".into();
    // First look after a restart: the predecessor's heartbeat stood there. Not shared; nor
    // after looks that find this agent's own heartbeat there, even one that says "shared"
    // (this agent's own word is no evidence), nor after one unknown writer seen once (an
    // agent before this one whose state file was lost).
    let d = decide(&c, &look(view("before-restart", "b1", 0)), &mut mem);
    assert_eq!(liveness(&d, &me(77)).0, Liveness::Dead);
    let mut said = view("mine", "b1", 200);
    let mut own = beat(HOST, "mine");
    own.shared = true;
    said.hosts[0] = HostBeat::with_beat(HOST, now_ms + 200, Some(own));
    let d = decide(&c, &look(said), &mut mem);
    assert!(!d.fleet.iter().find(|h| h.this).unwrap().shared);
    let d = decide(&c, &look(view("lost-state", "b1", 400)), &mut mem);
    assert!(!d.fleet.iter().find(|h| h.this).unwrap().shared);
    assert_eq!(liveness(&d, &me(77)).0, Liveness::Dead);
    // Its PID runs nothing here, but it read 5 s ago (a heartbeat lives 15 s): a live process
    // of another machine of this name, whose agent has not beaten yet, is kept.
    let (l, note) = liveness(&d, &me(78));
    assert_eq!(l, Liveness::Unknown, "{note}");
    assert!(note.contains("it read 5s ago"), "{note}");
    assert!(d.fleet.iter().all(|h| !h.shared));
    // Another agent's heartbeat under this name again: shared; nothing taken.
    let d = decide(&c, &look(view("twin", "b1", 1000)), &mut mem);
    let (l, note) = liveness(&d, &me(77));
    assert_eq!(l, Liveness::Unknown, "{note}");
    assert!(note.contains("written by two agents"), "{note}");
    assert!(
        d.actions.iter().all(|a| a.target().2 != me(77)),
        "{:?}",
        d.actions
    );
    assert!(mem.fleet.vouches.iter().all(|v| v.dead.is_empty()));
    assert!(mem.fleet.shared);
    let mine = d.fleet.iter().find(|h| h.this).unwrap();
    assert!(mine.shared);
    assert_eq!(d.severity(), Severity::Critical);
    // qt-2's heartbeat changed hands once (a restart): its consumers as before.
    assert!(!d.fleet.iter().find(|h| h.host == "qt-2").unwrap().shared);
    // Twice more within the window: two agents write as qt-2; nothing of it is taken.
    decide(&c, &look(view("mine", "b2", 2000)), &mut mem);
    let d = decide(&c, &look(view("mine", "b1", 3000)), &mut mem);
    assert!(d.fleet.iter().find(|h| h.host == "qt-2").unwrap().shared);
    let (l, note) = liveness(&d, "execution-qt-2-9");
    assert_eq!(l, Liveness::Unknown, "{note}");
    assert!(note.contains("written by two agents"), "{note}");
    // Ten quiet intervals (5 s) later, nothing foreign seen: this host's name is its own again.
    let d = decide(&c, &look(view("mine", "b1", 60_000)), &mut mem);
    assert!(!d.fleet.iter().find(|h| h.this).unwrap().shared);
    assert_eq!(liveness(&d, &me(77)).0, Liveness::Dead);
}

/// Rule 12: another host's consumers, judged by that host's heartbeat.
#[test]
fn other_hosts_are_judged_by_their_heartbeats() {
    use crate::model::fleet::{FleetView, Heartbeat, HostBeat, Vouch};
    let c = cfg("[fleet]\nenabled = true\nhost_dead_after = \"30s\"");
    let since = T0 - 3600 * S;
    let now_ms = T0 / 1000;
    let beat = |host: &str, live: &[&str], dead: &[&str]| Heartbeat {
        host: host.into(),
        as_of_ms: now_ms - 1000,
        groups: vec![Vouch {
            stream: STREAM.into(),
            group: GROUP.into(),
            live: live.iter().map(|s| s.to_string()).collect(),
            dead: dead.iter().map(|s| s.to_string()).collect(),
        }],
        ..Default::default()
    };
    let host = |h: &str, age_s: u64, b: Option<Heartbeat>| {
        HostBeat::with_beat(h, now_ms - age_s * 1000, b)
    };
    let view = FleetView {
        now_ms,
        hosts: vec![
            host(HOST, 0, Some(beat(HOST, &[], &[]))),
            host(
                "qt-2",
                1,
                Some(beat("qt-2", &["execution-qt-2-7"], &["execution-qt-2-8"])),
            ),
            host("qt-3", 10, None),
            host("qt-4", 60, None),
        ],
        own_before: String::new(),
        resend: false,
        written: None,
    };
    let consumers = vec![
        consumer(&me(10), 0, 1, None),
        consumer("execution-qt-2-7", 3, 7200, None), // vouched for: live, however idle
        consumer("execution-qt-2-8", 2, 50, None),   // its host found it dead
        consumer("execution-qt-2-9", 0, 7200, None), // its host says nothing: zombie rule
        consumer("execution-qt-3-5", 4, 7200, None), // silent host: kept
        consumer("execution-qt-4-6", 5, 7200, None), // dead host
        consumer("execution-qt-4-7", 5, 2, None),    // dead host, but it reads: kept
        consumer("execution-qt-5-1", 1, 7200, None), // never ran an agent: zombie, kept
    ];
    let table = [
        ("execution-qt-2-7", Liveness::Live, "vouches"),
        ("execution-qt-2-8", Liveness::Dead, "found it dead"),
        ("execution-qt-2-9", Liveness::Unknown, "zombie"),
        ("execution-qt-3-5", Liveness::Unknown, "silent"),
        ("execution-qt-4-6", Liveness::Dead, "is dead"),
        ("execution-qt-4-7", Liveness::Unknown, "it read 2s ago"),
        ("execution-qt-5-1", Liveness::Unknown, "kept"),
    ];
    let mut s = snap(T0, vec![unit(10, since)], group(Some(0), consumers), None);
    s.redis.as_mut().unwrap().fleet = Some(Ok(view));
    // This agent has watched qt-3 and qt-4 silent, its reads unbroken.
    let mut mem = Memory::default();
    mem.fleet.last_read_ms = now_ms - 1000;
    mem.fleet.silent_since.insert("qt-3".into(), now_ms - 8_000);
    mem.fleet
        .silent_since
        .insert("qt-4".into(), now_ms - 40_000);
    let fresh = mem.clone();
    let d = decide(&c, &s, &mut mem);
    for (name, liveness, note) in table {
        let r = d
            .consumers
            .iter()
            .find(|r| r.consumer.as_ref() == name)
            .unwrap();
        assert_eq!(r.liveness, liveness, "{name}: {}", r.note);
        assert!(r.note.contains(note), "{name}: {}", r.note);
    }
    let fenced: Vec<(String, String)> = d
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Fenced { host, of, .. } => match of.as_ref() {
                Action::Claim { from, to, .. } => Some((host.clone(), format!("{from}>{to}"))),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(
        fenced,
        vec![
            ("qt-2".into(), format!("execution-qt-2-8>{}", me(10))),
            ("qt-4".into(), format!("execution-qt-4-6>{}", me(10))),
        ],
        "another host's dead consumers go to this host's live one, under the lease"
    );
    assert_eq!(
        deletes(&d),
        vec![("execution-qt-2-9".to_string(), 3_600_000)]
    );
    assert_eq!(
        mem.fleet.vouches[0].live,
        vec![me(10)],
        "this host vouches for its own"
    );
    let states: Vec<&str> = d.fleet.iter().map(|h| h.state.as_str()).collect();
    assert_eq!(states, ["alive", "alive", "silent", "dead"]);

    // After a gap in this agent's reads (it was cut off, the server came back) it watches
    // again before it finds anyone dead.
    let mut gap = fresh.clone();
    gap.fleet.last_read_ms = now_ms - 60_000;
    let d = decide(&c, &s, &mut gap);
    let r = d
        .consumers
        .iter()
        .find(|r| r.consumer.as_ref() == "execution-qt-4-6")
        .unwrap();
    assert_eq!(r.liveness, Liveness::Unknown, "{}", r.note);
    assert_eq!(gap.fleet.silent_since.get("qt-4"), Some(&now_ms));

    // Another agent holds the group's lease: nothing of another host is touched.
    group_mut(&mut s).lease = Some("qt-3/17".into());
    let d = decide(&c, &s, &mut fresh.clone());
    assert!(!d.actions.iter().any(|a| matches!(a, Action::Fenced { .. })));
    let r = d
        .consumers
        .iter()
        .find(|r| r.consumer.as_ref() == "execution-qt-4-6")
        .unwrap();
    assert!(r.note.contains("left to qt-3"), "{}", r.note);
    // Our own lease: acted on (the scripts check its token).
    group_mut(&mut s).lease = Some(format!("{HOST}/18"));
    let d = decide(&c, &s, &mut fresh.clone());
    assert_eq!(
        d.actions
            .iter()
            .filter(|a| matches!(a, Action::Fenced { .. }))
            .count(),
        2
    );
}

/// A config with `interval` 1 s (the reuse of quiet groups' consumers counts looks).
fn cfg_1s() -> Config {
    let mut c = cfg("");
    c.interval = crate::config::HumanDuration(std::time::Duration::from_secs(1));
    c
}

/// What the next look's plan offers instead of reading the group's consumers.
fn offered(c: &Config, s: &Snapshot, mem: &Memory, now: u64) -> Option<Vec<ConsumerInfo>> {
    let clock = crate::model::Clock {
        now_usec: now,
        mono_usec: now,
        utc_offset_secs: 0,
    };
    let p = plan(c, HOST, s.units.as_ref().unwrap(), mem, clock);
    p.groups[0].known.as_ref().map(|k| k.consumers.clone())
}

/// A quiet group's consumers stand for the next looks' only while nothing that could matter
/// changed: read again when due (every `reread_after` the interval), when the clock stepped
/// back past their reading, when a bound unit's MainPID changed, or when the group was not quiet.
#[test]
fn quiet_groups_consumers_are_reused_until_due() {
    for secs in [1, 5] {
        let mut c = cfg("");
        c.interval = crate::config::HumanDuration(std::time::Duration::from_secs(secs));
        reused_until_due(&c);
    }
}

fn reused_until_due(c: &Config) {
    let since = T0 - 3600 * S;
    let quiet = snap(
        T0,
        vec![unit(10, since)],
        group(Some(0), vec![consumer(&me(10), 0, 5, None)]),
        None,
    );
    let period = reuse::reread_after(c.interval.0).as_micros() as u64;
    let step = c.interval.0.as_micros() as u64;
    let mut mem = Memory::default();
    decide(c, &quiet, &mut mem);
    let listed = Some(group_mut(&mut quiet.clone()).consumers.clone());
    // The first group's place in the rotation is a whole period.
    assert_eq!(offered(c, &quiet, &mem, T0 + step), listed);
    assert_eq!(offered(c, &quiet, &mem, T0 + period - step), listed);
    assert_eq!(offered(c, &quiet, &mem, T0 + period), None);
    // The clock stepped back: read now.
    assert_eq!(offered(c, &quiet, &mem, T0 - 3600 * S), None);
    // Read again when due: another period.
    let mut again = quiet.clone();
    again.now_usec = T0 + period;
    again.mono_usec = T0 + period;
    decide(c, &again, &mut mem);
    assert_eq!(offered(c, &again, &mem, T0 + 2 * period - step), listed);
    assert_eq!(offered(c, &again, &mem, T0 + 2 * period), None);
    // A new MainPID: read now.
    let mut restarted = again.clone();
    restarted.units = Ok(vec![unit(11, T0)]);
    assert_eq!(offered(c, &restarted, &mem, T0 + period + S), None);
    // Work waiting, entries pending, or no lag known: not quiet, forgotten.
    for g in [
        group(Some(2), vec![consumer(&me(10), 0, 5, None)]),
        group(Some(0), vec![consumer(&me(10), 1, 5, None)]),
        group(None, vec![consumer(&me(10), 0, 5, None)]),
    ] {
        let mut m = mem.clone();
        let s = snap(T0 + period + S, vec![unit(10, since)], g, None);
        decide(c, &s, &mut m);
        assert_eq!(offered(c, &s, &m, T0 + period + 2 * S), None);
    }
}

/// A quiet group's consumers stand unread for 10 s, or 4 intervals where that is longer.
#[test]
fn reread_after_by_interval() {
    let d = std::time::Duration::from_millis;
    for (interval, after) in [
        (d(100), d(10_000)),
        (d(1_000), d(10_000)),
        (d(2_500), d(10_000)),
        (d(5_000), d(20_000)),
        (d(60_000), d(240_000)),
        (std::time::Duration::MAX, std::time::Duration::MAX),
    ] {
        assert_eq!(reuse::reread_after(interval), after, "{interval:?}");
    }
}

/// A consumer of unknown liveness in a quiet group is read again no later than it could reach
/// zombie_after; a delete the reused consumers would lead to is withheld, and the group read at
/// the next look.
#[test]
fn reused_consumers_lead_to_no_consumer_action() {
    let c = cfg_1s();
    let since = T0 - 3600 * S;
    let other = "execution-otherhost-4242";
    let quiet = snap(
        T0,
        vec![unit(10, since)],
        group(
            Some(0),
            vec![
                consumer(&me(10), 0, 5, None),
                consumer(other, 0, 3598, None),
            ],
        ),
        None,
    );
    let mut mem = Memory::default();
    decide(&c, &quiet, &mut mem);
    let mut next = quiet.clone();
    next.now_usec = T0 + S;
    next.mono_usec = T0 + S;
    decide(&c, &next, &mut mem);
    let due = mem.groups[&key()].known.as_ref().unwrap().reread_usec;
    assert_eq!(due, T0 + 3 * S, "2 s before zombie_after, not REREAD_AFTER");
    assert_eq!(
        offered(&c, &next, &mem, T0 + 2 * S),
        Some(group_mut(&mut next.clone()).consumers.clone())
    );
    // A worker's process died since they were read (its consumer holds nothing): the delete
    // waits for a look that reads the consumers, and the next look does.
    let worker = me(77);
    let mut late = next.clone();
    late.now_usec = T0 + 2 * S;
    late.mono_usec = T0 + 2 * S;
    group_mut(&mut late)
        .consumers
        .push(consumer(&worker, 0, 2, None));
    group_mut(&mut late).consumers_read_usec = Some(T0 + S);
    late.live_pids.insert(77, false);
    let d = decide(&c, &late, &mut mem);
    assert!(deletes(&d).is_empty(), "{:?}", d.actions);
    assert_eq!(offered(&c, &late, &mem, T0 + 3 * S), None);
    group_mut(&mut late).consumers_read_usec = None;
    let d = decide(&c, &late, &mut mem);
    assert_eq!(deletes(&d).first().map(|(n, _)| n.clone()), Some(worker));
}

/// A reader copies a heartbeat only when it changed since its last read: the ones the read
/// skips come from memory; one that memory lacks makes the next read copy them all.
#[test]
fn unchanged_heartbeats_come_from_memory() {
    use crate::model::fleet::{FleetView, Heartbeat, HostBeat};
    let beat = |host: &str, v: &str| Heartbeat {
        host: host.into(),
        version: v.into(),
        ..Default::default()
    };
    let skipped = |host: &str| HostBeat {
        beat: None,
        unchanged: true,
        ..HostBeat::with_beat(host, 5, None)
    };
    let mut f = crate::policy::memory::FleetMemory::default();
    let first = FleetView {
        now_ms: 100,
        hosts: vec![
            HostBeat::with_beat("a", 99, Some(beat("a", "1"))),
            HostBeat::with_beat("b", 99, Some(beat("b", "1"))),
        ],
        own_before: String::new(),
        resend: false,
        written: None,
    };
    let v = super::fleet::merge_beats(&first, &mut f);
    assert_eq!(v, first);
    assert_eq!(f.since_ms, 100);
    // b changed, a did not; c left the fleet's read.
    let second = FleetView {
        now_ms: 200,
        hosts: vec![
            skipped("a"),
            HostBeat::with_beat("b", 199, Some(beat("b", "2"))),
        ],
        own_before: String::new(),
        resend: false,
        written: None,
    };
    let v = super::fleet::merge_beats(&second, &mut f);
    assert_eq!(
        v.hosts[0].beat.as_deref().map(|b| b.version.as_str()),
        Some("1")
    );
    assert_eq!(
        v.hosts[1].beat.as_deref().map(|b| b.version.as_str()),
        Some("2")
    );
    assert_eq!(f.since_ms, 200);
    // A host memory does not have: the next read copies every heartbeat.
    let third = FleetView {
        now_ms: 300,
        hosts: vec![skipped("a"), skipped("z")],
        own_before: String::new(),
        resend: false,
        written: None,
    };
    let v = super::fleet::merge_beats(&third, &mut f);
    assert!(v.hosts[1].beat.is_none());
    assert_eq!(f.since_ms, 0);
    assert!(f.beats.contains_key("a") && !f.beats.contains_key("b"));
}

/// The package's own units match `quantum-*.service` but are never watched by a pattern: a
/// failed recovery sweep is not a failed trading unit. A `[[watch]]` still binds one.
#[test]
fn the_packages_own_units_are_not_watched_by_a_pattern() {
    let since = T0 - 3600 * S;
    let own = |name: &str| UnitState {
        name: name.into(),
        active_state: "failed".into(),
        ..unit(0, since)
    };
    let s = snap(
        T0,
        vec![
            unit(10, since),
            own("quantum-stream-recover.service"),
            own("quantum-watchdog.service"),
        ],
        group(Some(0), vec![consumer(&me(10), 0, 1, None)]),
        None,
    );
    let c = cfg("");
    assert_eq!(c.units, vec!["quantum-*.service".to_string()]);
    let d = decide(&c, &s, &mut Memory::default());
    let names: Vec<&str> = d.units.iter().map(|u| u.unit.as_str()).collect();
    assert_eq!(names, vec![UNIT], "{names:?}");
    let bound = cfg(
        "[[watch]]\nunit = \"quantum-stream-recover.service\"\nstream = \"s2\"\ngroup = \"g\"\nconsumer = \"x\"",
    );
    let d = decide(&bound, &s, &mut Memory::default());
    assert!(
        d.units
            .iter()
            .any(|u| u.unit == "quantum-stream-recover.service"),
        "bound explicitly: watched"
    );
}
