//! The decision policy: the one place that says why a unit is restarted or a consumer touched.
//!
//! [`decide`] takes a [`Snapshot`] (units from systemd, groups and consumers from Redis, the
//! clock), the configuration and the agent's [`Memory`] of earlier cycles, and returns
//! verdicts and actions. It does no I/O.
//!
//! The rules, in order:
//!
//! 1. **Nothing is done on what cannot be seen.** If systemd or Redis could not be asked this
//!    cycle, bound units are `unknown` and no action is proposed at all.
//! 2. **Work waiting** means the group has entries not yet delivered to anyone: `lag > 0`, or,
//!    when Redis reports `lag` as null, its last-delivered ID is behind the stream's
//!    last-generated ID. With work waiting, every reader's `XREADGROUP … >` returns entries and
//!    resets its `idle` on every Redis version, so idle time is then a reliable signal.
//! 3. **Hung**: the unit is active and running past `startup_grace`, work is waiting, and its
//!    current consumer's `idle` has reached `hung_after` — or no consumer of its current
//!    MainPID has appeared though work has waited `hung_after` ("not consuming").
//! 4. **Stuck in processing**: no work waiting, but the current consumer holds an entry idle
//!    for `hung_after`. On 7.2+ servers (which report `inactive`), if the consumer's own
//!    `idle` (every read attempt) has also reached `hung_after` it stopped reading: hung.
//!    Otherwise it is `stale-pending`, a warning; it restarts only if the binding sets
//!    `restart_on_stale_pending`.
//! 5. An idle consumer with no work waiting and nothing stale pending is **healthy**, however
//!    long it has been idle.
//! 6. A verdict must hold `confirm` consecutive cycles before a restart. At most one restart per
//!    unit per cycle, none while one is in flight, none within `startup_grace` of the last, and
//!    at most `restart_budget.max` within `restart_budget.within`; then the unit "gave up".
//! 7. **Dead consumer**: its name fits the binding's template for this host with a PID that is
//!    no live process here, or that was an earlier MainPID of the unit. Its pending entries go
//!    by `claim_policy` (handoff to the unit's current consumer, park, requeue); once it holds
//!    nothing it is deleted (check-and-delete in one Lua script).
//! 8. **Zombie of unknown liveness**: a consumer no template of the group accounts for (another
//!    host, a name without PID): deleted only when idle ≥ `zombie_after` with nothing pending.
//!    One that still holds entries is reported and kept.
//! 9. Never: take entries from a live consumer, delete a consumer holding entries, acknowledge
//!    an entry (except `requeue`, which acknowledges the original only after copying it), or
//!    act on the agent's own unit.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::config::{ClaimPolicy, Config, PARKED_CONSUMER, Params, Watch};
use crate::glob;
use crate::model::{ConsumerInfo, GroupData, GroupKey, Snapshot, UnitState, fmt_ms};
use crate::pipeline::{
    FlagReport, FlowMemory, GaugeReport, PipelineReport, judge_keys, judge_pipelines,
};
use crate::template::NameMatch;

/// How many earlier MainPIDs of a unit are remembered.
const PID_HISTORY: usize = 32;
/// How many restart times of a unit are remembered (for `restart_budget`).
const RESTART_HISTORY: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl Severity {
    /// Monitoring-plugin exit status.
    pub fn exit_code(self) -> i32 {
        match self {
            Severity::Ok => 0,
            Severity::Warning => 1,
            Severity::Critical => 2,
            Severity::Unknown => 3,
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Healthy,
    /// Activating, or within `startup_grace`.
    Starting,
    /// Stopped (not failed).
    Inactive,
    /// Bound in the configuration but not loaded in systemd.
    NotFound,
    /// Holds entries idle past `hung_after` while still reading (or on a server that cannot tell).
    StalePending,
    Hung,
    /// Hung, but the restart budget is spent.
    GaveUp,
    Failed,
    StartLimitHit,
    Unknown,
}

impl Verdict {
    pub fn severity(self) -> Severity {
        match self {
            Verdict::Healthy | Verdict::Starting | Verdict::Inactive => Severity::Ok,
            Verdict::NotFound | Verdict::StalePending => Severity::Warning,
            Verdict::Hung | Verdict::GaveUp | Verdict::Failed | Verdict::StartLimitHit => {
                Severity::Critical
            }
            Verdict::Unknown => Severity::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Starting => "starting",
            Verdict::Inactive => "inactive",
            Verdict::NotFound => "not-found",
            Verdict::StalePending => "stale-pending",
            Verdict::Hung => "hung",
            Verdict::GaveUp => "gave-up",
            Verdict::Failed => "failed",
            Verdict::StartLimitHit => "start-limit-hit",
            Verdict::Unknown => "unknown",
        }
    }
}

/// What the agent should do. In `observe` mode it only logs "would …".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Action {
    Restart {
        unit: String,
        reason: String,
        /// `idle-with-work`, `not-consuming`, `stopped-reading` or `stale-pending`.
        cause: &'static str,
    },
    /// Claim `from`'s pending entries to `to` (the unit's live consumer, or the parked one).
    Claim {
        unit: String,
        stream: String,
        group: String,
        from: String,
        to: String,
        policy: ClaimPolicy,
        pending: u64,
        reason: String,
    },
    /// Copy `from`'s pending entries to the stream's end and acknowledge the originals.
    Requeue {
        unit: String,
        stream: String,
        group: String,
        from: String,
        pending: u64,
        reason: String,
    },
    /// Move a poison entry (delivered `deliveries` ≥ `dead_letter_after` times) to
    /// `<stream>:dead` and acknowledge the original (checked atomically).
    DeadLetter {
        unit: String,
        stream: String,
        group: String,
        id: String,
        consumer: String,
        deliveries: u64,
        min_deliveries: u64,
        reason: String,
    },
    /// Delete a consumer if (checked atomically) it holds nothing and has been idle `min_idle_ms`.
    Delete {
        unit: Option<String>,
        stream: String,
        group: String,
        consumer: String,
        min_idle_ms: u64,
        reason: String,
    },
}

impl Action {
    /// The `ACTION=` journal field.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Restart { .. } => "restart",
            Action::Claim {
                policy: ClaimPolicy::Park,
                ..
            } => "park",
            Action::Claim { .. } => "handoff",
            Action::Requeue { .. } => "requeue",
            Action::DeadLetter { .. } => "dead-letter",
            Action::Delete { .. } => "delete",
        }
    }

    pub fn unit(&self) -> Option<&str> {
        match self {
            Action::Restart { unit, .. }
            | Action::Claim { unit, .. }
            | Action::Requeue { unit, .. }
            | Action::DeadLetter { unit, .. } => Some(unit),
            Action::Delete { unit, .. } => unit.as_deref(),
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Action::Restart { reason, .. }
            | Action::Claim { reason, .. }
            | Action::Requeue { reason, .. }
            | Action::DeadLetter { reason, .. }
            | Action::Delete { reason, .. } => reason,
        }
    }

    /// One line for logs: `restart quantum-router.service` / `handoff 3 pending from a to b`.
    pub fn describe(&self) -> String {
        match self {
            Action::Restart { unit, .. } => format!("restart {unit}"),
            Action::Claim {
                from,
                to,
                pending,
                group,
                ..
            } => {
                format!("claim {pending} pending of {from} to {to} in {group}")
            }
            Action::Requeue {
                from,
                pending,
                stream,
                ..
            } => {
                format!("requeue {pending} pending of {from} onto {stream}")
            }
            Action::DeadLetter {
                id,
                consumer,
                deliveries,
                stream,
                ..
            } => {
                format!(
                    "dead-letter entry {id} of {consumer} ({deliveries} deliveries) to {stream}:dead"
                )
            }
            Action::Delete {
                consumer, group, ..
            } => format!("delete consumer {consumer} of {group}"),
        }
    }
}

/// One binding of a unit as seen this cycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BindingReport {
    pub stream: String,
    pub group: String,
    /// The name the unit's current process reads under (none without a MainPID).
    pub consumer: Option<String>,
    pub consumer_present: bool,
    pub idle_ms: Option<u64>,
    pub inactive_ms: Option<i64>,
    pub pending: Option<u64>,
    pub group_pending: Option<u64>,
    /// `null` when Redis reports it null, or the group could not be read.
    pub lag: Option<u64>,
    pub work_waiting: Option<bool>,
    pub verdict: Verdict,
    pub reason: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitReport {
    pub unit: String,
    pub active_state: String,
    pub sub_state: String,
    pub main_pid: u32,
    pub verdict: Verdict,
    pub severity: Severity,
    pub reason: String,
    /// Consecutive cycles with this verdict, and how many a restart needs.
    pub streak: u32,
    pub confirm: u32,
    pub restarts_in_window: u32,
    pub restart_budget: u32,
    pub bindings: Vec<BindingReport>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Liveness {
    Live,
    Dead,
    Unknown,
    Parked,
}

/// A consumer that is not some unit's healthy current consumer: dead, zombie, parked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsumerReport {
    pub stream: String,
    pub group: String,
    pub consumer: String,
    pub unit: Option<String>,
    pub liveness: Liveness,
    pub pending: u64,
    pub idle_ms: u64,
    pub severity: Severity,
    pub note: String,
}

/// An entry delivered again and again without being acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoisonReport {
    pub stream: String,
    pub group: String,
    pub id: String,
    pub consumer: String,
    pub deliveries: u64,
    /// Being moved to `<stream>:dead` (`dead_letter_after` is set and reached).
    pub dead_letter: bool,
    pub severity: Severity,
}

/// Deliveries from which an unacknowledged entry is reported as a poison suspect when no
/// `dead_letter_after` is configured.
pub const POISON_REPORT_DELIVERIES: u64 = 10;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub units: Vec<UnitReport>,
    pub consumers: Vec<ConsumerReport>,
    pub pipelines: Vec<PipelineReport>,
    pub gauges: Vec<GaugeReport>,
    pub flags: Vec<FlagReport>,
    pub poison: Vec<PoisonReport>,
    pub actions: Vec<Action>,
    pub systemd_error: Option<String>,
    pub redis_error: Option<String>,
}

impl Decision {
    /// The worst severity: unknown if systemd or Redis could not be asked.
    pub fn severity(&self) -> Severity {
        if self.systemd_error.is_some() || self.redis_error.is_some() {
            return Severity::Unknown;
        }
        let worst = self
            .units
            .iter()
            .map(|u| u.severity)
            .max()
            .unwrap_or(Severity::Ok);
        let consumers = self
            .consumers
            .iter()
            .map(|c| c.severity)
            .max()
            .unwrap_or(Severity::Ok);
        let flow = self
            .pipelines
            .iter()
            .map(|p| p.severity)
            .max()
            .unwrap_or(Severity::Ok);
        let keys = self
            .gauges
            .iter()
            .map(|g| g.severity)
            .max()
            .unwrap_or(Severity::Ok);
        let poison = self
            .poison
            .iter()
            .map(|p| p.severity)
            .max()
            .unwrap_or(Severity::Ok);
        worst.max(consumers).max(flow).max(keys).max(poison)
    }
}

/// The actions to carry out in `mode`: none in observe mode, which only reports.
pub fn to_execute(mode: crate::config::Mode, actions: &[Action]) -> &[Action] {
    match mode {
        crate::config::Mode::Observe => &[],
        crate::config::Mode::Enforce => actions,
    }
}

/// What the agent remembers of a unit between cycles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct UnitMemory {
    pub verdict: Option<Verdict>,
    pub streak: u32,
    /// Realtime µs of restarts the agent issued (kept for the longest budget window).
    pub restarts: Vec<u64>,
    pub last_restart_usec: u64,
    /// A restart job is in flight: no new one until it ends.
    pub restart_in_flight: bool,
    pub main_pid: u32,
    /// Earlier MainPIDs, newest last.
    pub previous_pids: Vec<u32>,
    /// Per binding index: since when work has been waiting (realtime µs).
    pub work_since: BTreeMap<usize, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Memory {
    pub units: BTreeMap<String, UnitMemory>,
    /// Stream and group history for pipeline rates and stalls.
    #[serde(default)]
    pub flow: FlowMemory,
}

impl Memory {
    /// Records a restart the agent issued (enforce mode): it counts against the budget and
    /// starts a new grace period.
    pub fn note_restart(&mut self, unit: &str, now_usec: u64) {
        let m = self.units.entry(unit.to_string()).or_default();
        m.restarts.push(now_usec);
        // Far more than any budget window needs; keeps a flapping unit's history bounded.
        if m.restarts.len() > RESTART_HISTORY {
            m.restarts.remove(0);
        }
        m.last_restart_usec = now_usec;
        m.restart_in_flight = true;
        m.streak = 0;
        m.verdict = None;
    }

    /// The restart job ended (done, failed, or timed out).
    pub fn note_restart_finished(&mut self, unit: &str) {
        if let Some(m) = self.units.get_mut(unit) {
            m.restart_in_flight = false;
        }
    }

    fn restarts_within(&self, unit: &str, now_usec: u64, within_usec: u64) -> u32 {
        self.units.get(unit).map_or(0, |m| {
            m.restarts
                .iter()
                .filter(|&&t| t + within_usec > now_usec)
                .count() as u32
        })
    }
}

/// The unit states systemd counts as "up" for our purposes.
fn is_up(u: &UnitState) -> bool {
    u.active_state == "active" || u.active_state == "reloading"
}

/// PIDs carried by consumer names that fit a binding's template on this host: the shell checks
/// which of them are live processes before calling [`decide`].
pub fn pids_to_probe(
    cfg: &Config,
    snap_hostname: &str,
    redis: &crate::model::RedisSnapshot,
) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    for w in &cfg.watch {
        let key = GroupKey {
            stream: w.stream.clone(),
            group: w.group.clone(),
        };
        if let Some(Ok(g)) = redis.groups.get(&key) {
            for c in &g.consumers {
                if let NameMatch::Pid(p) = w.consumer.matches(&c.name, snap_hostname, &w.unit)
                    && p != 0
                {
                    out.insert(p);
                }
            }
        }
    }
    out
}

/// The distinct `(stream, group)` pairs of the configuration, each with its bindings.
pub fn group_bindings(cfg: &Config) -> BTreeMap<GroupKey, Vec<usize>> {
    let mut m: BTreeMap<GroupKey, Vec<usize>> = BTreeMap::new();
    for (i, w) in cfg.watch.iter().enumerate() {
        m.entry(GroupKey {
            stream: w.stream.clone(),
            group: w.group.clone(),
        })
        .or_default()
        .push(i);
    }
    m
}

/// The consumer name each binding's unit currently reads under (`None`: no MainPID, or unit
/// unknown). Used by the shell to ask `XPENDING` for that consumer.
pub fn current_consumers(cfg: &Config, hostname: &str, units: &[UnitState]) -> Vec<Option<String>> {
    cfg.watch
        .iter()
        .map(|w| {
            let pid = units
                .iter()
                .find(|u| u.name == w.unit)
                .map_or(0, |u| u.main_pid);
            w.consumer.render(hostname, pid, &w.unit)
        })
        .collect()
}

struct BindingEval {
    report: BindingReport,
    restartable: bool,
    cause: &'static str,
}

/// Judges every watched unit and consumer. See the module documentation for the rules.
pub fn decide(cfg: &Config, snap: &Snapshot, mem: &mut Memory) -> Decision {
    let (gauges, flags) = judge_keys(cfg, snap);
    let mut d = Decision {
        units: Vec::new(),
        consumers: Vec::new(),
        // Flow and key gauges are reported only; they never lead to an action.
        pipelines: judge_pipelines(cfg, snap, &mut mem.flow),
        gauges,
        flags,
        poison: Vec::new(),
        actions: Vec::new(),
        systemd_error: snap.units.as_ref().err().cloned(),
        redis_error: snap.redis.as_ref().err().cloned(),
    };
    let is_self = |name: &str| snap.self_unit.as_deref() == Some(name);

    let Ok(units) = &snap.units else {
        // Rule 1: systemd cannot be asked. Report bound units as unknown; act on nothing.
        let mut seen = BTreeSet::new();
        for w in &cfg.watch {
            if seen.insert(w.unit.clone()) && !is_self(&w.unit) {
                d.units
                    .push(unknown_unit(&w.unit, &w.params, "systemd unreachable"));
            }
        }
        return d;
    };

    // Track MainPID changes: an earlier MainPID's consumer is dead even if the PID was reused.
    for u in units {
        let m = mem.units.entry(u.name.clone()).or_default();
        if m.main_pid != 0 && m.main_pid != u.main_pid && !m.previous_pids.contains(&m.main_pid) {
            m.previous_pids.push(m.main_pid);
            if m.previous_pids.len() > PID_HISTORY {
                m.previous_pids.remove(0);
            }
        }
        if u.main_pid != 0 {
            m.main_pid = u.main_pid;
        }
    }

    // Units to report: those matching the patterns plus every bound unit, minus ourselves.
    let mut names: Vec<String> = units
        .iter()
        .filter(|u| glob::matches_any(&cfg.units, &u.name))
        .map(|u| u.name.clone())
        .collect();
    for w in &cfg.watch {
        if !names.contains(&w.unit) {
            names.push(w.unit.clone());
        }
    }
    names.sort();
    names.retain(|n| !is_self(n));

    let mut blocked_handoff: BTreeSet<String> = BTreeSet::new();
    for name in &names {
        let unit = units.iter().find(|u| &u.name == name);
        let bindings: Vec<usize> = (0..cfg.watch.len())
            .filter(|&i| &cfg.watch[i].unit == name)
            .collect();
        let params = bindings
            .first()
            .map_or(&cfg.defaults, |&i| &cfg.watch[i].params);
        let report = judge_unit(
            cfg,
            snap,
            mem,
            name,
            unit,
            &bindings,
            params,
            &mut d.actions,
        );
        if matches!(
            report.verdict,
            Verdict::Hung | Verdict::GaveUp | Verdict::Unknown
        ) || !unit.is_some_and(|u| is_up(u) && u.sub_state == "running" && u.main_pid != 0)
            || d.actions
                .iter()
                .any(|a| matches!(a, Action::Restart { unit, .. } if unit == name))
        {
            // No handoff to a consumer that is hung, about to be restarted, or not running.
            blocked_handoff.insert(name.clone());
        }
        d.units.push(report);
    }

    // Consumers: dead ones are recovered, zombies deleted. Needs both systemd and Redis.
    if let Ok(redis) = &snap.redis {
        for (key, idxs) in group_bindings(cfg) {
            let Some(Ok(g)) = redis.groups.get(&key) else {
                continue;
            };
            judge_consumers(
                cfg,
                snap,
                mem,
                units,
                &key,
                &idxs,
                g,
                &blocked_handoff,
                &mut d,
            );
            judge_poison(cfg, redis, &key, &idxs, &mut d);
        }
    }
    d
}

fn unknown_unit(name: &str, p: &Params, why: &str) -> UnitReport {
    UnitReport {
        unit: name.to_string(),
        active_state: String::new(),
        sub_state: String::new(),
        main_pid: 0,
        verdict: Verdict::Unknown,
        severity: Severity::Unknown,
        reason: why.to_string(),
        streak: 0,
        confirm: p.confirm,
        restarts_in_window: 0,
        restart_budget: p.restart_budget.max,
        bindings: Vec::new(),
    }
}

#[allow(clippy::too_many_arguments)]
fn judge_unit(
    cfg: &Config,
    snap: &Snapshot,
    mem: &mut Memory,
    name: &str,
    unit: Option<&UnitState>,
    bindings: &[usize],
    params: &Params,
    actions: &mut Vec<Action>,
) -> UnitReport {
    let now = snap.now_usec;
    let mut r = unknown_unit(name, params, "");
    let within = params.restart_budget.within.as_micros();
    r.restarts_in_window = mem.restarts_within(name, now, within);

    let Some(u) = unit else {
        r.verdict = Verdict::NotFound;
        r.reason = "bound in the configuration but not loaded in systemd".into();
        r.severity = r.verdict.severity();
        remember(mem, name, r.verdict);
        return r;
    };
    r.active_state = u.active_state.clone();
    r.sub_state = u.sub_state.clone();
    r.main_pid = u.main_pid;

    let (verdict, reason, restartable, evals): (Verdict, String, bool, Vec<BindingEval>) = match u.active_state.as_str() {
        "failed" if u.result == "start-limit-hit" => (
            Verdict::StartLimitHit,
            "systemd refused further starts (start-limit-hit); `systemctl reset-failed` after fixing the cause".to_string(),
            false,
            Vec::new(),
        ),
        "failed" => (Verdict::Failed, format!("failed (result {})", u.result), false, Vec::new()),
        "inactive" => (Verdict::Inactive, "stopped".into(), false, Vec::new()),
        "active" | "reloading" => {
            let since = u.active_enter_usec.max(mem.units.get(name).map_or(0, |m| m.last_restart_usec));
            let grace_end = since.saturating_add(params.startup_grace.as_micros());
            let evals: Vec<BindingEval> = bindings.iter().map(|&i| judge_binding(cfg, snap, mem, i, u)).collect();
            if u.load_state != "loaded" && !u.load_state.is_empty() {
                (Verdict::NotFound, format!("load state {}", u.load_state), false, evals)
            } else if now < grace_end {
                let left = (grace_end - now) / 1000;
                (Verdict::Starting, format!("within startup grace ({} left)", fmt_ms(left)), false, evals)
            } else if let Some(worst) = evals.iter().max_by_key(|e| e.report.verdict.severity()) {
                let restartable = evals.iter().any(|e| e.restartable);
                let why = evals
                    .iter()
                    .filter(|e| e.report.verdict == worst.report.verdict)
                    .map(|e| e.report.reason.clone())
                    .collect::<Vec<_>>()
                    .join("; ");
                (worst.report.verdict, why, restartable, evals)
            } else {
                (Verdict::Healthy, format!("{} ({})", u.active_state, u.sub_state), false, evals)
            }
        }
        other => (Verdict::Starting, format!("{other} ({})", u.sub_state), false, Vec::new()),
    };
    let cause = evals.iter().find(|e| e.restartable).map_or("", |e| e.cause);
    r.bindings = evals.into_iter().map(|e| e.report).collect();
    r.verdict = verdict;
    r.reason = reason;
    r.streak = remember(mem, name, verdict);

    if restartable && r.streak >= params.confirm {
        let m = mem.units.entry(name.to_string()).or_default();
        if m.restart_in_flight {
            r.reason.push_str("; a restart is in flight");
        } else if r.restarts_in_window >= params.restart_budget.max {
            r.verdict = Verdict::GaveUp;
            r.reason = format!(
                "{}; restart budget spent ({} restarts within {}), left to the operator",
                r.reason,
                r.restarts_in_window,
                humantime::format_duration(params.restart_budget.within.0)
            );
        } else {
            actions.push(Action::Restart {
                unit: name.to_string(),
                reason: r.reason.clone(),
                cause,
            });
        }
    }
    r.severity = r.verdict.severity();
    r
}

/// Updates the verdict streak; returns its length.
fn remember(mem: &mut Memory, unit: &str, v: Verdict) -> u32 {
    let m = mem.units.entry(unit.to_string()).or_default();
    if m.verdict == Some(v) {
        m.streak = m.streak.saturating_add(1);
    } else {
        m.verdict = Some(v);
        m.streak = 1;
    }
    m.streak
}

fn judge_binding(
    cfg: &Config,
    snap: &Snapshot,
    mem: &mut Memory,
    idx: usize,
    u: &UnitState,
) -> BindingEval {
    let w: &Watch = &cfg.watch[idx];
    let p = &w.params;
    let now = snap.now_usec;
    let current = w.consumer.render(&snap.hostname, u.main_pid, &w.unit);
    let mut rep = BindingReport {
        stream: w.stream.clone(),
        group: w.group.clone(),
        consumer: current.clone(),
        consumer_present: false,
        idle_ms: None,
        inactive_ms: None,
        pending: None,
        group_pending: None,
        lag: None,
        work_waiting: None,
        verdict: Verdict::Unknown,
        reason: String::new(),
        error: None,
    };
    let unknown = |mut rep: BindingReport, why: String| {
        rep.reason = format!("{}: {why}", w.group);
        rep.error = Some(why);
        BindingEval {
            report: rep,
            restartable: false,
            cause: "",
        }
    };
    let redis = match &snap.redis {
        Ok(r) => r,
        Err(e) => return unknown(rep, format!("redis unreachable: {e}")),
    };
    let key = GroupKey {
        stream: w.stream.clone(),
        group: w.group.clone(),
    };
    let g: &GroupData = match redis.groups.get(&key) {
        Some(Ok(g)) => g,
        Some(Err(e)) => return unknown(rep, e.clone()),
        None => return unknown(rep, "not fetched".into()),
    };
    let consumer: Option<&ConsumerInfo> = current.as_deref().and_then(|c| g.consumer(c));
    rep.consumer_present = consumer.is_some();
    rep.idle_ms = consumer.map(|c| c.idle_ms);
    rep.inactive_ms = consumer.and_then(|c| c.inactive_ms);
    rep.pending = consumer.map(|c| c.pending);
    rep.group_pending = Some(g.group.pending);
    rep.lag = g.group.lag;
    let waiting = g.work_waiting();
    rep.work_waiting = Some(waiting);
    let hung_ms = p.hung_after.as_millis();
    let cname = current.as_deref().unwrap_or("(none)");
    let backlog = match g.group.lag {
        Some(l) => format!("lag {l}"),
        None => format!(
            "lag null, last delivered {} behind stream's last {}",
            g.group.last_delivered_id, g.stream.last_generated_id
        ),
    };

    let m = mem.units.entry(w.unit.clone()).or_default();
    let (verdict, reason, restartable, cause) = if waiting {
        let since = *m.work_since.entry(idx).or_insert(now);
        match consumer {
            Some(c) if c.idle_ms >= hung_ms => (
                Verdict::Hung,
                format!(
                    "consumer {cname} idle {} while work waits ({backlog})",
                    fmt_ms(c.idle_ms)
                ),
                true,
                "idle-with-work",
            ),
            Some(_) => (
                Verdict::Healthy,
                format!("consuming ({backlog})"),
                false,
                "",
            ),
            None => {
                let from = since.max(u.active_enter_usec);
                let waited_ms = now.saturating_sub(from) / 1000;
                if waited_ms >= hung_ms {
                    (
                        Verdict::Hung,
                        format!(
                            "not consuming: no consumer {cname} for MainPID {} while work waits {} ({backlog})",
                            u.main_pid,
                            fmt_ms(waited_ms)
                        ),
                        true,
                        "not-consuming",
                    )
                } else {
                    (
                        Verdict::Healthy,
                        format!("consumer {cname} not seen yet ({backlog})"),
                        false,
                        "",
                    )
                }
            }
        }
    } else {
        m.work_since.remove(&idx);
        match (redis.stale.get(&idx).cloned().flatten(), consumer) {
            (Some(e), Some(c)) => {
                let reads_7_2 = c.inactive_ms.is_some();
                if reads_7_2 && c.idle_ms >= hung_ms {
                    (
                        Verdict::Hung,
                        format!(
                            "consumer {cname} stopped reading ({} since its last attempt) holding {} pending, oldest idle {} (entry {})",
                            fmt_ms(c.idle_ms),
                            c.pending,
                            fmt_ms(e.idle_ms),
                            e.id
                        ),
                        true,
                        "stopped-reading",
                    )
                } else {
                    (
                        Verdict::StalePending,
                        format!(
                            "consumer {cname} holds {} pending; entry {} unacknowledged for {} ({} deliveries){}",
                            c.pending,
                            e.id,
                            fmt_ms(e.idle_ms),
                            e.deliveries,
                            if reads_7_2 {
                                ", but it still reads"
                            } else {
                                ""
                            }
                        ),
                        p.restart_on_stale_pending,
                        "stale-pending",
                    )
                }
            }
            _ => (Verdict::Healthy, "no work waiting".to_string(), false, ""),
        }
    };
    rep.verdict = verdict;
    rep.reason = reason;
    BindingEval {
        report: rep,
        restartable,
        cause,
    }
}

/// Rule 10: an entry delivered `dead_letter_after` times goes to `<stream>:dead`; without that
/// setting it stays pending and, past [`POISON_REPORT_DELIVERIES`], is reported.
fn judge_poison(
    cfg: &Config,
    redis: &crate::model::RedisSnapshot,
    key: &GroupKey,
    idxs: &[usize],
    d: &mut Decision,
) {
    let Some(entries) = redis.oldest_pending.get(key) else {
        return;
    };
    let w = &cfg.watch[idxs[0]];
    let limit = w.params.dead_letter_after.map(u64::from);
    for e in entries {
        let due = limit.is_some_and(|n| e.deliveries >= n);
        if !due && e.deliveries < POISON_REPORT_DELIVERIES {
            continue;
        }
        d.poison.push(PoisonReport {
            stream: key.stream.clone(),
            group: key.group.clone(),
            id: e.id.to_string(),
            consumer: e.consumer.clone(),
            deliveries: e.deliveries,
            dead_letter: due,
            severity: if due { Severity::Ok } else { Severity::Warning },
        });
        if let Some(n) = limit.filter(|_| due) {
            d.actions.push(Action::DeadLetter {
                unit: w.unit.clone(),
                stream: key.stream.clone(),
                group: key.group.clone(),
                id: e.id.to_string(),
                consumer: e.consumer.clone(),
                deliveries: e.deliveries,
                min_deliveries: n,
                reason: format!(
                    "entry {} delivered {} times without acknowledgement (dead_letter_after {n})",
                    e.id, e.deliveries
                ),
            });
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn judge_consumers(
    cfg: &Config,
    snap: &Snapshot,
    mem: &Memory,
    units: &[UnitState],
    key: &GroupKey,
    idxs: &[usize],
    g: &GroupData,
    blocked_handoff: &BTreeSet<String>,
    d: &mut Decision,
) {
    let host = &snap.hostname;
    for c in &g.consumers {
        // `severity`: warning for entries nobody will process without the operator.
        let mut report = |liveness, unit: Option<&str>, severity, note: String| {
            d.consumers.push(ConsumerReport {
                stream: key.stream.clone(),
                group: key.group.clone(),
                consumer: c.name.clone(),
                unit: unit.map(str::to_string),
                liveness,
                pending: c.pending,
                idle_ms: c.idle_ms,
                severity,
                note,
            })
        };
        if c.name == PARKED_CONSUMER {
            report(
                Liveness::Parked,
                None,
                Severity::Ok,
                "parked entries, for the operator".into(),
            );
            continue;
        }
        // Which binding accounts for this name, and what it says of its liveness.
        let mut owner: Option<(usize, Liveness, String)> = None;
        for &i in idxs {
            let w = &cfg.watch[i];
            let u = units.iter().find(|u| u.name == w.unit);
            let main_pid = u.map_or(0, |u| u.main_pid);
            let verdict = match w.consumer.matches(&c.name, host, &w.unit) {
                NameMatch::NoMatch => continue,
                NameMatch::Fixed => (Liveness::Live, "the unit's fixed consumer name".to_string()),
                NameMatch::Pid(pid) if pid == main_pid => {
                    (Liveness::Live, "current MainPID".into())
                }
                NameMatch::Pid(pid) => {
                    let earlier = mem
                        .units
                        .get(&w.unit)
                        .is_some_and(|m| m.previous_pids.contains(&pid));
                    match snap.live_pids.get(&pid) {
                        _ if earlier => (
                            Liveness::Dead,
                            format!("PID {pid} was an earlier MainPID of {}", w.unit),
                        ),
                        Some(false) => (Liveness::Dead, format!("PID {pid} is not running")),
                        Some(true) => (Liveness::Live, format!("PID {pid} is a live process")),
                        None => (
                            Liveness::Unknown,
                            format!("liveness of PID {pid} not checked"),
                        ),
                    }
                }
            };
            owner = Some((i, verdict.0, verdict.1));
            break;
        }
        match owner {
            Some((_, Liveness::Live, _)) => {}
            Some((i, Liveness::Dead, why)) => {
                let w = &cfg.watch[i];
                if c.pending == 0 {
                    report(
                        Liveness::Dead,
                        Some(&w.unit),
                        Severity::Ok,
                        format!("dead ({why}), holds nothing"),
                    );
                    d.actions.push(Action::Delete {
                        unit: Some(w.unit.clone()),
                        stream: key.stream.clone(),
                        group: key.group.clone(),
                        consumer: c.name.clone(),
                        min_idle_ms: 0,
                        reason: format!("dead consumer ({why}) holding nothing"),
                    });
                    continue;
                }
                let reason = format!("dead consumer ({why}) holding {} pending", c.pending);
                match w.params.claim_policy {
                    ClaimPolicy::Handoff => {
                        let target = units
                            .iter()
                            .find(|u| u.name == w.unit)
                            .filter(|_| !blocked_handoff.contains(&w.unit))
                            .and_then(|u| w.consumer.render(host, u.main_pid, &w.unit));
                        match target {
                            Some(to) => {
                                report(
                                    Liveness::Dead,
                                    Some(&w.unit),
                                    Severity::Ok,
                                    format!("dead ({why}), handing off to {to}"),
                                );
                                d.actions.push(Action::Claim {
                                    unit: w.unit.clone(),
                                    stream: key.stream.clone(),
                                    group: key.group.clone(),
                                    from: c.name.clone(),
                                    to,
                                    policy: ClaimPolicy::Handoff,
                                    pending: c.pending,
                                    reason,
                                });
                            }
                            None => report(
                                Liveness::Dead,
                                Some(&w.unit),
                                Severity::Warning,
                                format!(
                                    "dead ({why}), {} pending wait for a live consumer of {}",
                                    c.pending, w.unit
                                ),
                            ),
                        }
                    }
                    ClaimPolicy::Park => {
                        report(
                            Liveness::Dead,
                            Some(&w.unit),
                            Severity::Ok,
                            format!("dead ({why}), parking its entries"),
                        );
                        d.actions.push(Action::Claim {
                            unit: w.unit.clone(),
                            stream: key.stream.clone(),
                            group: key.group.clone(),
                            from: c.name.clone(),
                            to: PARKED_CONSUMER.to_string(),
                            policy: ClaimPolicy::Park,
                            pending: c.pending,
                            reason,
                        });
                    }
                    ClaimPolicy::Requeue => {
                        report(
                            Liveness::Dead,
                            Some(&w.unit),
                            Severity::Ok,
                            format!("dead ({why}), requeueing its entries"),
                        );
                        d.actions.push(Action::Requeue {
                            unit: w.unit.clone(),
                            stream: key.stream.clone(),
                            group: key.group.clone(),
                            from: c.name.clone(),
                            pending: c.pending,
                            reason,
                        });
                    }
                }
            }
            Some((i, _, why)) => {
                report(
                    Liveness::Unknown,
                    Some(&cfg.watch[i].unit),
                    Severity::Ok,
                    why,
                );
            }
            None => {
                // Rule 8: nobody's template accounts for it.
                let zombie_ms = idxs
                    .iter()
                    .map(|&i| cfg.watch[i].params.zombie_after.as_millis())
                    .max()
                    .unwrap_or(cfg.defaults.zombie_after.as_millis());
                if c.idle_ms < zombie_ms {
                    report(
                        Liveness::Unknown,
                        None,
                        Severity::Ok,
                        format!("unknown liveness, idle {}", fmt_ms(c.idle_ms)),
                    );
                } else if c.pending > 0 {
                    report(
                        Liveness::Unknown,
                        None,
                        Severity::Warning,
                        format!(
                            "zombie of unknown liveness idle {}, kept: it holds {} pending",
                            fmt_ms(c.idle_ms),
                            c.pending
                        ),
                    );
                } else {
                    report(
                        Liveness::Unknown,
                        None,
                        Severity::Ok,
                        format!("zombie idle {}, holds nothing", fmt_ms(c.idle_ms)),
                    );
                    d.actions.push(Action::Delete {
                        unit: None,
                        stream: key.stream.clone(),
                        group: key.group.clone(),
                        consumer: c.name.clone(),
                        min_idle_ms: zombie_ms,
                        reason: format!(
                            "zombie of unknown liveness idle {} (zombie_after {}) holding nothing",
                            fmt_ms(c.idle_ms),
                            fmt_ms(zombie_ms)
                        ),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
