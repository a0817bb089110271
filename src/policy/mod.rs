//! The decision policy: the one place that says why a unit is restarted or a consumer touched.
//!
//! [`plan`] says what to read this cycle; [`decide`] takes the [`Snapshot`] read (units from
//! systemd, groups and consumers from Redis, the clock), the configuration and the agent's
//! [`Memory`] of earlier cycles, and returns verdicts and actions. Neither does any I/O.
//!
//! The rules, in order:
//!
//! 1. **Nothing is done on what cannot be seen.** If systemd or Redis could not be asked this
//!    cycle, bound units are `unknown` and no action is proposed at all. A binding whose
//!    stream or group cannot be read (NOGROUP, WRONGTYPE, NOPERM, …) reports its error with
//!    its own severity and counts for nothing else: the unit's other bindings are judged as
//!    usual, and an erroring binding never causes a restart.
//! 2. **Work waiting** means the group has entries not yet delivered to anyone: `lag > 0`, or,
//!    when Redis reports `lag` as null, its last-delivered ID is behind the stream's
//!    last-generated ID. With work waiting, every reader's `XREADGROUP … >` returns entries and
//!    resets its `idle` on every Redis version, so idle time is then a reliable signal.
//! 3. **Hung**: the unit is active and running past `startup_grace`, work is waiting, and its
//!    consumer's `idle` has reached `hung_after` — not counting claims to it, whoever made
//!    them (their traces in Redis say when), which reset `idle` too, nor the time until its stream's server was last found holding
//!    writes back — or no consumer of the unit has appeared though work has waited
//!    `hung_after` ("not consuming"). Every other consumer of the unit that holds entries (a
//!    worker of a multi-process unit) is judged the same way.
//! 4. **Stuck in processing**: no work waiting, but the oldest entry the consumer holds has
//!    been unacknowledged for `hung_after`. On 7.2+ servers (which report `inactive`), if the
//!    consumer's own `idle` (every read attempt) has also reached `hung_after` it stopped
//!    reading: hung. Otherwise it is `stale-pending`, a warning; it restarts only if the
//!    binding sets `restart_on_stale_pending`.
//! 5. An idle consumer with no work waiting and nothing stale pending is **healthy**, however
//!    long it has been idle.
//! 6. A verdict must hold `confirm` consecutive cycles before a restart. At most one restart per
//!    unit per cycle, none while one is in flight, none within `startup_grace` of the last, and
//!    at most `restart_budget.max` within `restart_budget.within`; then the unit "gave up".
//!    A restart names the streams it was judged on: it goes ahead only if their servers serve
//!    writes then (checked by the daemon; a paused server is no hang).
//! 7. **Whose a consumer is.** Its name fits a binding's template for this host. It is
//!    **live** if its PID is the MainPID of a bound unit or a process in that unit's cgroup.
//!    It is **dead** if the PID was an earlier MainPID of the unit, is no process, or is a
//!    process outside the unit (the PID was reused). A number above Linux's `PID_MAX_LIMIT`
//!    is no PID (unknown liveness).
//! 8. **Recovery.** A dead consumer's entries go by `claim_policy`: handed off to its unit's
//!    consumer or, when that cannot take them, to the live consumer of another binding of the
//!    same group holding least; parked; or requeued. The sweep that empties it deletes it
//!    (check-and-delete in one Lua script).
//! 9. **Zombie of unknown liveness**: a consumer no template of the group accounts for (another
//!    host, a name without PID): deleted only when idle ≥ `zombie_after` with nothing pending.
//!    One that still holds entries is reported and kept. At most
//!    [`consumers::DELETES_PER_GROUP`] deletes of a group a cycle.
//! 10. **Poison entries** (see [`poison`]): an entry delivered `dead_letter_after` times goes
//!     to the dead-letter stream (`redis.dead_letter_stream`); without that setting it is
//!     reported from 10 deliveries on.
//! 11. Never: take entries from a live consumer, delete a consumer holding entries, acknowledge
//!     an entry (except `requeue` and the dead-letter policy, which acknowledge the original
//!     only after copying it), or act on the agent's own unit.

pub mod action;
pub mod consumers;
pub mod fleet;
pub mod flow;
pub mod holds;
pub mod keys;
pub mod memory;
pub mod plan;
pub mod poison;
pub mod quarantine;
pub mod reuse;
pub mod units;
pub mod verdict;

use std::collections::{BTreeMap, BTreeSet};

use crate::model::hash::HashMap;

use serde::Serialize;

pub use action::{Action, RestartCause, to_execute};
pub use consumers::{Class, ConsumerReport, Liveness};
pub use memory::{GroupMemory, Memory, UnitMemory};
pub use plan::{Groups, group_bindings, plan};
pub use poison::{POISON_REPORT_DELIVERIES, PoisonReport};
pub use units::{BindingReport, UnitReport};
pub use verdict::{Severity, Verdict};

use crate::config::Config;
use crate::model::consumer_name::NameMatch;
use crate::model::unit_pattern;
use crate::model::{GroupData, GroupKey, ReadError, RedisSnapshot, Snapshot, UnitState};

use flow::{PipelineReport, judge_pipelines};
use keys::{FlagReport, GaugeReport, judge_keys};

use consumers::Target;

/// Everything one cycle decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// Every watched unit.
    pub units: Vec<UnitReport>,
    /// Every consumer of a watched group.
    pub consumers: Vec<ConsumerReport>,
    /// Every `[[pipeline]]`.
    pub pipelines: Vec<PipelineReport>,
    /// Every `[[gauge]]`.
    pub gauges: Vec<GaugeReport>,
    /// Every `[[flag]]`.
    pub flags: Vec<FlagReport>,
    /// Poison entries seen this cycle.
    pub poison: Vec<PoisonReport>,
    /// What to do.
    pub actions: Vec<Action>,
    /// What would be done but for a pause or a maintenance window.
    pub held: Vec<holds::HeldAction>,
    /// Why systemd could not be asked.
    pub systemd_error: Option<String>,
    /// Why Redis could not be read.
    pub redis_error: Option<String>,
    /// The hosts of the fleet (`[fleet]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fleet: Vec<fleet::HostReport>,
}

impl Decision {
    /// The worst severity of everything reported (a critical one is never hidden behind an
    /// unknown one); unknown as well if systemd or Redis could not be asked.
    pub fn severity(&self) -> Severity {
        let blind = (self.systemd_error.is_some() || self.redis_error.is_some())
            .then_some(Severity::Unknown);
        // A host name two agents write under: recovery of its consumers waits on the operator.
        let shared = self
            .fleet
            .iter()
            .any(|h| h.shared)
            .then_some(Severity::Critical);
        Severity::worst_of(
            self.units
                .iter()
                .map(|u| u.severity)
                .chain(self.consumers.iter().map(|c| c.severity))
                .chain(self.pipelines.iter().map(|p| p.severity))
                .chain(self.gauges.iter().map(|g| g.severity))
                .chain(self.poison.iter().map(|p| p.severity))
                .chain(shared)
                .chain(blind),
        )
    }
}

/// What one cycle looks at: the configuration and the snapshot, with the lookups the rules
/// share.
pub struct Cycle<'a> {
    /// The configuration.
    pub cfg: &'a Config,
    /// The snapshot.
    pub snap: &'a Snapshot,
    /// The units systemd reported.
    pub units: &'a [UnitState],
    /// Units in a deploy's or an operator's hands (a job, NeedDaemonReload) for less than
    /// `deploy_hold`: not restarted, their consumers not recovered.
    pub deploys: BTreeMap<String, Deploy>,
    /// `units` by name.
    pub by_name: HashMap<&'a str, &'a UnitState>,
    /// The fleet's hosts by name, as read this cycle (`[fleet]`).
    pub hosts: HashMap<&'a str, &'a crate::model::fleet::HostBeat>,
    /// The groups read, hashed (each is looked up several times a look).
    pub groups: HashMap<&'a GroupKey, &'a Result<GroupData, ReadError>>,
    /// Another agent writes under this host's name (`[fleet]`, a cloned machine): no consumer
    /// of this name is dead to this agent.
    pub shared_name: bool,
    /// The fleet's heartbeats as read this cycle, with those unchanged since the last read
    /// taken from memory (`[fleet]`).
    pub fleet: Option<&'a crate::model::fleet::FleetView>,
}

/// A unit in a deploy's or an operator's hands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deploy {
    /// What systemd shows of it (a job, NeedDaemonReload).
    pub why: String,
    /// Until when it is held (`deploy_hold` after the agent first saw it; monotonic µs).
    pub until_mono_usec: u64,
}

/// The units in someone's hands now (see [`Cycle::deploys`]); notes when each deploy began.
fn deploys(mem: &mut Memory, units: &[UnitState], now: u64, hold: u64) -> BTreeMap<String, Deploy> {
    let mut out = BTreeMap::new();
    for u in units {
        let m = mem.unit_mut(&u.name);
        let Some(why) = u.deploying() else {
            m.deploy_since_usec = 0;
            continue;
        };
        if m.deploy_since_usec == 0 {
            m.deploy_since_usec = now;
        }
        if now.saturating_sub(m.deploy_since_usec) < hold {
            m.job_seen_usec = now;
            let until_mono_usec = m.deploy_since_usec.saturating_add(hold);
            out.insert(
                u.name.clone(),
                Deploy {
                    why,
                    until_mono_usec,
                },
            );
        }
    }
    out
}

impl<'a> Cycle<'a> {
    /// The look at `units` (those of `snap`), with its lookups; notes when deploys began.
    fn new(
        cfg: &'a Config,
        snap: &'a Snapshot,
        (units, fleet): (&'a [UnitState], Option<&'a crate::model::fleet::FleetView>),
        mem: &mut Memory,
    ) -> Self {
        Cycle {
            cfg,
            snap,
            units,
            deploys: deploys(mem, units, snap.mono_usec, cfg.deploy_hold.as_micros()),
            by_name: units.iter().map(|u| (u.name.as_str(), u)).collect(),
            hosts: fleet_hosts(fleet),
            groups: snap
                .redis
                .as_ref()
                .map_or_else(|_| HashMap::default(), |r| r.groups.iter().collect()),
            shared_name: cfg.fleet.enabled
                && fleet::name_shared(fleet, &mem.fleet, &snap.hostname, &snap.hostname),
            fleet,
        }
    }

    /// This host's name (`{hostname}`).
    pub fn host(&self) -> &str {
        &self.snap.hostname
    }

    /// The clock every duration is measured by: the snapshot's CLOCK_MONOTONIC µs. Wall-clock
    /// time (windows, pauses, key names) is `snap.now_usec`, read where it is meant.
    pub fn now(&self) -> u64 {
        self.snap.mono_usec
    }

    /// A unit systemd reported.
    pub fn unit(&self, name: &str) -> Option<&UnitState> {
        self.by_name.get(name).copied()
    }

    /// A unit's MainPID (0: none, or not loaded).
    pub fn main_pid(&self, name: &str) -> u32 {
        self.unit(name).map_or(0, |u| u.main_pid)
    }

    /// The unit a live PID runs in: `Some(None)` for none, `None` if it was not asked.
    pub fn unit_of_pid(&self, pid: u32) -> Option<Option<&str>> {
        self.snap.pid_units.get(&pid).map(|u| u.as_deref())
    }

    /// The fleet's heartbeats as read this cycle (`[fleet]`), if they could be read.
    pub fn fleet(&self) -> Option<&crate::model::fleet::FleetView> {
        self.fleet
    }

    /// A watched group's data, or why it cannot be read.
    pub fn group(&self, key: &GroupKey) -> Result<&GroupData, String> {
        match &self.snap.redis {
            Err(e) => Err(e.to_string()),
            Ok(_) => match self.groups.get(key) {
                Some(Ok(g)) => Ok(g),
                Some(Err(e)) => Err(e.to_string()),
                None => Err("not fetched".into()),
            },
        }
    }
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
        held: Vec::new(),
        systemd_error: snap.units.as_ref().err().map(ToString::to_string),
        redis_error: snap.redis.as_ref().err().map(ToString::to_string),
        fleet: Vec::new(),
    };
    let Ok(units) = &snap.units else {
        blind(cfg, snap, mem, &mut d);
        return d;
    };
    let deaths = quarantine::deaths(mem, units, &snap.live_pids);
    track_main_pids(mem, units, snap.mono_usec);
    mem.writes_held
        .retain(|s, _| cfg.watch.iter().any(|w| &w.stream == s));
    mem.writes_held_open
        .retain(|s| cfg.watch.iter().any(|w| &w.stream == s));
    let view = fleet::look(cfg, snap, &mut mem.fleet);
    let cy = Cycle::new(cfg, snap, (units, view.as_ref()), mem);
    if cfg.fleet.enabled {
        fleet::observe_silence(cfg, cy.fleet(), &mut mem.fleet);
    }
    let groups = group_bindings(cfg);
    let classes = classify_all(&cy, mem, &groups);
    // One report a consumer classified: grown once, not doubled a dozen times.
    d.consumers.reserve(classes.values().map(Vec::len).sum());
    quarantine::judge_deaths(&cy, mem, &deaths, &mut d);
    let (targets, current) = judge_units(&cy, mem, &classes, &mut d);
    if snap.redis.is_ok() {
        recover_all(&cy, mem, &groups, &classes, &targets, &current, &mut d);
    }
    // Before `remember` forgets what a group that stopped being quiet was judged on.
    let as_of_ms = if cfg.fleet.enabled {
        reuse::as_of_ms(&cy, mem, &groups)
    } else {
        0
    };
    reuse::remember(&cy, mem, &groups, &classes, &d);
    reuse::withhold(&cy, &groups, &mut d);
    let group_units = |stream: &str, group: &str| cfg.units_of_group(stream, group);
    holds::apply(
        &snap.holds,
        snap.now_usec,
        snap.utc_offset_secs,
        group_units,
        &mut d,
    );
    holds::apply_deploys(&cy.deploys, snap, &mut d);
    if cfg.fleet.enabled {
        fleet::remember(&cy, mem, (&groups, &classes), as_of_ms, &mut d);
    }
    d
}

/// Rule 1: systemd cannot be asked. Bound units are reported unknown; nothing is acted on,
/// nothing vouched for (the host's heartbeat goes unwritten until a complete look).
fn blind(cfg: &Config, snap: &Snapshot, mem: &mut Memory, d: &mut Decision) {
    mem.fleet.as_of_ms = 0;
    mem.fleet.vouches.clear();
    let mut seen = BTreeSet::new();
    for w in &cfg.watch {
        if seen.insert(w.unit.clone()) && !is_self(snap, &w.unit) {
            d.units.push(units::unknown_unit(
                &w.unit,
                &w.params,
                "systemd unreachable",
            ));
        }
    }
}

/// Rules 8–10 for every watched group.
fn recover_all(
    cy: &Cycle<'_>,
    mem: &mut Memory,
    groups: &Groups<'_>,
    classes: &Classes<'_>,
    targets: &Targets<'_>,
    current: &Current<'_>,
    d: &mut Decision,
) {
    let (none, nobody) = (BTreeMap::new(), BTreeSet::new());
    for (key, idxs) in groups.iter() {
        let judged = consumers::Judged {
            classes: classes.get(key).map_or(&[][..], Vec::as_slice),
            targets: targets.get(key).unwrap_or(&none),
            current: current.get(key).unwrap_or(&nobody),
        };
        recover_and_scan(cy, mem, key, idxs, &judged, d);
    }
    mem.groups.retain(|k, _| groups.contains_key(k));
}

/// Units whose state the next look reads in full (`NeedDaemonReload`, which systemd signals
/// no change of): those in question — a verdict on its way to a restart, or a deploy under
/// way.
pub fn units_in_question(mem: &Memory) -> Vec<String> {
    mem.units
        .iter()
        .filter(|(_, m)| {
            m.deploy_since_usec != 0
                || m.verdict.as_ref().is_some_and(|v| {
                    !matches!(
                        v,
                        Verdict::Healthy
                            | Verdict::Starting
                            | Verdict::Inactive
                            | Verdict::NotFound
                    )
                })
        })
        .map(|(n, _)| n.clone())
        .collect()
}

/// The hosts of the heartbeats read, by name.
fn fleet_hosts(
    fleet: Option<&crate::model::fleet::FleetView>,
) -> HashMap<&str, &crate::model::fleet::HostBeat> {
    fleet
        .into_iter()
        .flat_map(|v| &v.hosts)
        .map(|h| (h.host.as_str(), h))
        .collect()
}

fn is_self(snap: &Snapshot, name: &str) -> bool {
    snap.self_unit.as_deref() == Some(name)
}

/// Remembers MainPID changes: an earlier MainPID's consumer is dead even if the PID was reused.
fn track_main_pids(mem: &mut Memory, units: &[UnitState], now_usec: u64) {
    for u in units {
        let m = mem.unit_mut(&u.name);
        if u.main_pid != 0 && u.main_pid != m.main_pid {
            m.main_since_usec = now_usec;
        }
        if !u.exit_status.is_empty() {
            m.last_exit_status = u.exit_status.clone();
        }
        if m.main_pid != 0 && m.main_pid != u.main_pid && !m.previous_pids.contains(&m.main_pid) {
            m.previous_pids.push(m.main_pid);
            if m.previous_pids.len() > memory::PID_HISTORY {
                m.previous_pids.remove(0);
            }
        }
        if u.main_pid != 0 {
            m.main_pid = u.main_pid;
        }
        m.n_restarts = u.n_restarts;
    }
}

/// Every consumer of every readable watched group, classified (rule 7).
fn classify_all<'c>(cy: &Cycle<'_>, mem: &Memory, groups: &Groups<'c>) -> Classes<'c> {
    groups
        .iter()
        .filter_map(|(key, idxs)| {
            let g = cy.group(key).ok()?;
            let classes = g
                .consumers
                .iter()
                .map(|c| consumers::classify(cy, mem, idxs, c))
                .collect();
            Some((key, classes))
        })
        .collect()
}

/// Units to report: those matching the patterns (but the package's own) plus every bound
/// unit, minus ourselves.
fn reported_units<'c>(cy: &Cycle<'c>) -> Vec<&'c str> {
    let mut names: Vec<&str> = cy
        .units
        .iter()
        .filter(|u| {
            unit_pattern::matches_any(&cy.cfg.units, &u.name) && !unit_pattern::is_own(&u.name)
        })
        .map(|u| u.name.as_str())
        .chain(cy.cfg.watch.iter().map(|w| w.unit.as_str()))
        .filter(|n| !is_self(cy.snap, n))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Per watched group read, each consumer's class, in the group's order.
pub type Classes<'c> = HashMap<&'c GroupKey, Vec<Class>>;

/// Per group, the live consumers that may receive a dead consumer's entries, by binding.
type Targets<'c> = HashMap<&'c GroupKey, BTreeMap<usize, Target>>;

/// Per group, the consumers the units' rows show (listed in the group).
type Current<'c> = HashMap<&'c GroupKey, BTreeSet<String>>;

/// Rules 1–6 for every reported unit; returns, per group, the live consumers that may receive
/// a dead consumer's entries and the consumers the units' rows show.
fn judge_units<'c>(
    cy: &Cycle<'c>,
    mem: &mut Memory,
    classes: &Classes<'_>,
    d: &mut Decision,
) -> (Targets<'c>, Current<'c>) {
    let mut targets: Targets = HashMap::default();
    let mut current: Current = HashMap::default();
    let mut of_unit: HashMap<&str, Vec<usize>> = HashMap::default();
    for (i, w) in cy.cfg.watch.iter().enumerate() {
        of_unit.entry(w.unit.as_str()).or_default().push(i);
    }
    let names = reported_units(cy);
    d.units.reserve(names.len());
    for name in names {
        let bindings = of_unit.remove(name).unwrap_or_default();
        let e = units::judge_unit(cy, mem, classes, name, &bindings);
        let um = mem.unit_mut(name);
        for &i in &bindings {
            let key = cy.cfg.watch[i].key();
            match e.own.get(&i) {
                Some(c) if um.consumer.get(key).map(String::as_str) != Some(&*c.name) => {
                    um.consumer.insert(key.clone(), c.name.to_string());
                }
                Some(_) => {}
                None => {
                    um.consumer.remove(key);
                }
            }
        }
        let in_flight = um.restart_in_flight;
        if can_receive(cy, in_flight, &e) {
            for &i in &bindings {
                if let Some(t) = target_of(cy, i, &e) {
                    targets
                        .entry(cy.cfg.watch[i].key())
                        .or_default()
                        .insert(i, t);
                }
            }
        }
        // A unit's rows follow its bindings' order (none while it is not up).
        for (&i, b) in bindings.iter().zip(&e.report.bindings) {
            if let Some(c) = b.consumer.as_ref().filter(|_| b.consumer_present) {
                let key = cy.cfg.watch[i].key();
                current.entry(key).or_default().insert(c.clone());
            }
        }
        d.actions.extend(e.restart);
        d.units.push(e.report);
    }
    (targets, current)
}

/// A unit's consumers may receive handoffs: it runs, and is neither hung, unknown, about to be
/// restarted, nor restarting.
fn can_receive(cy: &Cycle<'_>, in_flight: bool, e: &units::UnitEval) -> bool {
    let running = cy
        .unit(&e.report.unit)
        .is_some_and(|u| u.is_running() && !cy.deploys.contains_key(&u.name));
    running
        && !in_flight
        && e.restart.is_none()
        && !matches!(
            e.report.verdict,
            Verdict::Hung | Verdict::GaveUp | Verdict::Unknown
        )
}

/// The consumer of binding `i` that may receive entries: the one judged as the unit's own, or
/// (not listed yet: before 7.2 a reader of a quiet stream is not) the name its MainPID renders.
fn target_of(cy: &Cycle<'_>, i: usize, e: &units::UnitEval) -> Option<Target> {
    let w = &cy.cfg.watch[i];
    let binding = e
        .report
        .bindings
        .iter()
        .find(|b| b.stream == w.stream && b.group == w.group)?;
    if binding.error.is_some() {
        return None;
    }
    match e.own.get(&i) {
        Some(c) => {
            let g = cy.group(w.key()).ok()?;
            let (idle, _) = units::progress_idle_ms(g, c);
            let now = g.claims.as_ref().filter(|t| t.error.is_none());
            Some(Target {
                name: c.name.to_string(),
                pending: c.pending,
                active_ms: now.map(|t| t.now_ms.saturating_sub(idle)),
            })
        }
        None => w
            .consumer
            .render(cy.host(), cy.main_pid(&w.unit), &w.unit)
            .map(|name| Target {
                name,
                pending: 0,
                active_ms: None,
            }),
    }
}

/// Rules 8–10 for one group, then what the group's memory keeps of this look.
fn recover_and_scan(
    cy: &Cycle<'_>,
    mem: &mut Memory,
    key: &GroupKey,
    idxs: &[usize],
    judged: &consumers::Judged<'_>,
    d: &mut Decision,
) {
    let gm = mem.group_mut(key);
    let Ok(g) = cy.group(key) else {
        gm.lag_known = false;
        gm.quiet = false;
        return;
    };
    consumers::recover_group(cy, key, idxs, g, judged, d);
    gm.lag_known = g.group.lag.is_some();
    gm.quiet = g.group.pending == 0;
    poison::judge_poison(cy, gm, key, idxs, g, d);
}

/// PIDs carried by consumer names that fit a binding's template on this host, other than the
/// MainPID of the template's own unit (a consumer whose PID is its unit's MainPID is live by
/// rule 7 without a probe): the shell checks which of them are live processes before calling
/// [`decide`]. Matched once a look.
pub fn pids_to_probe(
    cfg: &Config,
    hostname: &str,
    redis: &RedisSnapshot,
    units: &[UnitState],
) -> BTreeSet<u32> {
    let mains: HashMap<&str, u32> = units
        .iter()
        .map(|u| (u.name.as_str(), u.main_pid))
        .collect();
    let mut out = BTreeSet::new();
    for w in &cfg.watch {
        let Some(Ok(g)) = redis.groups.get(w.key()) else {
            continue;
        };
        let main = mains.get(w.unit.as_str()).copied().unwrap_or(0);
        for c in &g.consumers {
            if let NameMatch::Pid(p) = w.consumer.matches(&c.name, hostname, &w.unit)
                && p != 0
                && p != main
            {
                out.insert(p);
            }
        }
    }
    out
}

/// The probed PIDs (from [`pids_to_probe`]: none is its own unit's MainPID) found live: the
/// shell asks systemd which unit each runs in (`GetUnitByPID`) before calling [`decide`].
pub fn pids_to_locate(probed: &BTreeSet<u32>, live: &BTreeMap<u32, bool>) -> BTreeSet<u32> {
    probed
        .iter()
        .copied()
        .filter(|p| live.get(p) == Some(&true))
        .collect()
}

#[cfg(test)]
mod tests;
