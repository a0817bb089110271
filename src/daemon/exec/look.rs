//! `exec`'s seat for the one look (`gather::World::look`), without D-Bus: the unit as we know
//! it (we are its main process; the child's PID is the one its consumer name carries), and
//! which PIDs run in our cgroup; and the `STATUS=` line it sends.

use crate::config::Mode;
use crate::model::exec_protocol::status_prefix;
use crate::model::{ActiveState, Snapshot, UnitState};
use crate::policy::{Decision, UnitReport};

use super::super::gather::Seat;

use super::Exec;

/// The unit as systemd would show it: active and running with the child as its process, or
/// stopping once the child ended.
fn unit_state(x: &Exec) -> UnitState {
    // The policy proposes the restart as it would for the agent (`exec_watchdog` stays
    // false): that proposal is our trigger.
    let running = UnitState {
        result: String::new(),
        ..UnitState::running(&x.unit, x.child, x.started_mono_usec)
    };
    match x.ended {
        false => running,
        true => UnitState {
            active_state: ActiveState::Deactivating,
            sub_state: "stop-post".into(),
            main_pid: 0,
            ..running
        },
    }
}

/// The look the policy decides on: the agent's look, seated in the wrapper.
pub async fn snapshot(x: &mut Exec) -> Snapshot {
    let seat = Seat::Wrapper {
        unit: Box::new(unit_state(x)),
        cgroup: x.cgroup.clone(),
    };
    x.world.look(&x.cfg, &x.mem, &seat).await
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
    let prefix = status_prefix(mode);
    let Some(u) = u.filter(|u| !u.bindings.is_empty()) else {
        return format!("{prefix} no binding: supervising the process only");
    };
    if let Some(e) = redis_error {
        return format!(
            "{prefix} {}: redis unreachable ({e}); watchdog pings go on",
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
    format!("{prefix} {}: {}", u.verdict.as_str(), bindings.join("; "))
}

/// The restart's evidence, as the agent logs it.
pub fn evidence(d: &Decision, unit: &str) -> String {
    super::super::act::evidence(d, unit)
}
