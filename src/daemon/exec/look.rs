//! One look for `exec`, without D-Bus: the unit as we know it (we are its main process; the
//! child's PID is the one its consumer name carries), Redis by the policy's plan, PID liveness,
//! and which PIDs run in our cgroup.

use std::collections::BTreeMap;

use crate::adapters::cgroup;
use crate::adapters::clock::{mono_usec, now_usec, utc_offset_secs};
use crate::adapters::liveness::pid_alive;
use crate::config::Mode;
use crate::model::{ActiveState, Clock, LoadState, Snapshot, UnitState};
use crate::policy::{self, Decision, UnitReport};

use super::Exec;

/// The unit as systemd would show it: active and running with the child as its process, or
/// stopping once the child ended.
fn unit_state(x: &Exec) -> UnitState {
    let (active, sub, pid) = if x.ended {
        (ActiveState::Deactivating, "stop-post", 0)
    } else {
        (ActiveState::Active, "running", x.child)
    };
    UnitState {
        name: x.unit.clone(),
        load_state: LoadState::Loaded,
        active_state: active,
        sub_state: sub.into(),
        main_pid: pid,
        active_enter_mono_usec: x.started_mono_usec,
        result: String::new(),
        job: None,
        n_restarts: 0,
        exit_status: String::new(),
        need_daemon_reload: false,
        // The policy proposes the restart as it would for the agent: that proposal is our
        // trigger.
        exec_watchdog: false,
    }
}

/// The unit `pid` runs in, as GetUnitByPID would say it: ours if it runs in our cgroup, else
/// the unit its cgroup names (a sibling unit sharing our template: its consumer lives), else
/// none (a reused PID). `None` when `/proc` does not tell.
fn unit_of_pid(x: &Exec, pid: u32) -> Option<Option<String>> {
    let theirs = cgroup::cgroup_of(pid)?;
    let ours = x.cgroup.as_deref().unwrap_or("/");
    if cgroup::is_within(&theirs, ours) {
        return Some(Some(x.unit.clone()));
    }
    Some(cgroup::unit_of_cgroup(&theirs))
}

/// The look the policy decides on.
pub async fn snapshot(x: &mut Exec) -> Snapshot {
    let clock = Clock {
        now_usec: now_usec(),
        mono_usec: mono_usec(),
        utc_offset_secs: utc_offset_secs(),
    };
    let host = crate::adapters::clock::hostname();
    let units = vec![unit_state(x)];
    let plan = policy::plan(&x.cfg, &host, &units, &x.mem, clock);
    let redis = x.world.streams.snapshot(&plan).await;
    let mut live_pids = BTreeMap::new();
    let mut pid_units = BTreeMap::new();
    if let Ok(r) = &redis {
        let probe = policy::pids_to_probe(&x.cfg, &host, r, &units);
        for &pid in &probe {
            if let Some(alive) = pid_alive(pid) {
                live_pids.insert(pid, alive);
            }
        }
        for pid in policy::pids_to_locate(&probe, &live_pids) {
            if let Some(unit) = unit_of_pid(x, pid) {
                pid_units.insert(pid, unit);
            }
        }
    }
    Snapshot {
        now_usec: clock.now_usec,
        mono_usec: clock.mono_usec,
        hostname: host,
        self_unit: None,
        units: Ok(units),
        redis: redis.map_err(Into::into),
        live_pids,
        pid_units,
        utc_offset_secs: clock.utc_offset_secs,
        holds: super::super::gather::read_holds(&x.cfg, x.opts.user, clock.now_usec),
    }
}

/// Our unit's report: the decision also judges the sibling units of our groups, which the
/// wrapper only classifies consumers against.
pub fn ours<'d>(d: &'d Decision, unit: &str) -> Option<&'d UnitReport> {
    d.units.iter().find(|u| u.unit == unit)
}

/// `STATUS=`: the verdict and each binding's consumer, idle, pending and lag.
/// It starts `exec <mode>:`: the agent leaves the restart of the unit to systemd only when it
/// reads `exec enforce:` there.
pub fn status_line(u: Option<&UnitReport>, mode: Mode, redis_error: Option<&str>) -> String {
    let Some(u) = u.filter(|u| !u.bindings.is_empty()) else {
        return format!("exec {mode}: no binding: supervising the process only");
    };
    if let Some(e) = redis_error {
        return format!(
            "exec {mode}: {}: redis unreachable ({e}); watchdog pings go on",
            u.verdict.as_str()
        );
    }
    let bindings: Vec<String> = u
        .bindings
        .iter()
        .map(|b| {
            format!(
                "{} idle {} pending {} lag {}",
                match (&b.consumer, b.consumer_present) {
                    (Some(c), true) => crate::report::printable::printable(c),
                    _ => "(consumer not seen yet)".into(),
                },
                b.idle_ms.map(crate::model::fmt_ms).unwrap_or("-".into()),
                b.pending.map(|p| p.to_string()).unwrap_or("-".into()),
                b.lag.map(|l| l.to_string()).unwrap_or("null".into()),
            )
        })
        .collect();
    format!(
        "exec {mode}: {}: {}",
        u.verdict.as_str(),
        bindings.join("; ")
    )
}

/// The restart's evidence, as the agent logs it.
pub fn evidence(d: &Decision, unit: &str) -> String {
    super::super::act::evidence(d, unit)
}
