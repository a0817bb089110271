//! The look, stage by stage. [`decide`] runs the rules (numbered in the module documentation)
//! in the order they depend on one another; each stage is a function with a one-sentence
//! contract, and what one stage leaves for the next travels in one value, [`Look`].

use std::collections::{BTreeMap, BTreeSet};

use crate::config::Config;
use crate::model::fleet::FleetView;
use crate::model::hash::HashMap;
use crate::model::unit_pattern;
use crate::model::{GroupKey, Snapshot, UnitState};

use super::consumers::{self, Judged};
use super::cycle::{Classes, Current, Cycle, Deploy, Groups, Target, Targets, group_bindings};
use super::decision::Decision;
use super::flow::judge_pipelines;
use super::keys::judge_keys;
use super::memory::{self, Memory, UnitMemory};
use super::quarantine::{self, Death};
use super::units::{self, UnitEval};
use super::verdict::Verdict;
use super::{fleet, holds, poison, reuse};

/// What the stages of one look pass on: the cycle's lookups, the watched groups, every
/// consumer's class, and what the units' judgement left for the recovery.
pub struct Look<'a> {
    /// The configuration, the snapshot and their lookups.
    pub cy: Cycle<'a>,
    /// Every watched group with its bindings.
    pub groups: Groups<'a>,
    /// Every consumer of a readable watched group, classified (rule 7).
    pub classes: Classes<'a>,
    /// Per group, the live consumers that may receive a dead consumer's entries (rule 8).
    pub targets: Targets<'a>,
    /// Per group, the consumers the units' rows show.
    pub current: Current<'a>,
}

/// Judges every watched unit and consumer: the rules of the module documentation, stage by
/// stage.
pub fn decide(cfg: &Config, snap: &Snapshot, mem: &mut Memory) -> Decision {
    let mut d = reported_only(cfg, snap, mem);
    let Ok(units) = &snap.units else {
        blind(cfg, snap, mem, &mut d);
        return d;
    };
    let deaths = note_processes(cfg, snap, units, mem);
    let view = fleet::look(cfg, snap, &mut mem.fleet);
    let mut look = look(cfg, snap, (units, view.as_ref()), mem);
    quarantine::judge_deaths(&look.cy, mem, &deaths, &mut d);
    judge_units(&mut look, mem, &mut d);
    recover(&look, mem, &mut d);
    let as_of_ms = remember_quiet(&look, mem, &mut d);
    hold(&look, &mut d);
    if cfg.fleet.enabled {
        let judged = (&look.groups, &look.classes);
        fleet::remember(&look.cy, mem, judged, as_of_ms, &mut d);
    }
    d
}

/// Starts the decision with what is only ever reported — pipelines, gauges, flags, and why
/// systemd or Redis could not be asked.
fn reported_only(cfg: &Config, snap: &Snapshot, mem: &mut Memory) -> Decision {
    let (gauges, flags) = judge_keys(cfg, snap);
    Decision {
        units: Vec::new(),
        consumers: Vec::new(),
        pipelines: judge_pipelines(cfg, snap, &mut mem.flow),
        gauges,
        flags,
        poison: Vec::new(),
        actions: Vec::new(),
        held: Vec::new(),
        systemd_error: snap.units.as_ref().err().map(ToString::to_string),
        redis_error: snap.redis.as_ref().err().map(ToString::to_string),
        fleet: Vec::new(),
    }
}

/// Notes what the units' processes did since the last look — deaths (rule 13) and MainPID
/// changes (rule 7) — forgets write holds of streams no longer watched, and returns the deaths.
fn note_processes(
    cfg: &Config,
    snap: &Snapshot,
    units: &[UnitState],
    mem: &mut Memory,
) -> Vec<Death> {
    let deaths = quarantine::deaths(mem, units, &snap.live_pids);
    track_main_pids(mem, units, snap.mono_usec);
    let watched = |s: &String| cfg.watch.iter().any(|w| &w.stream == s);
    mem.writes_held.retain(|s, _| watched(s));
    mem.writes_held_open.retain(watched);
    deaths
}

/// Builds the look: the units in a deploy's hands (rule 15), whether another agent writes under
/// this host's name (rule 12), and every consumer's class (rule 7).
fn look<'a>(
    cfg: &'a Config,
    snap: &'a Snapshot,
    seen: (&'a [UnitState], Option<&'a FleetView>),
    mem: &mut Memory,
) -> Look<'a> {
    let (units, view) = seen;
    let hold = cfg.deploy_hold.as_micros();
    let deploys = deploys(mem, units, snap.mono_usec, hold);
    let shared =
        cfg.fleet.enabled && fleet::name_shared(view, &mem.fleet, &snap.hostname, &snap.hostname);
    let cy = Cycle::new(cfg, snap, seen, (deploys, shared));
    if cfg.fleet.enabled {
        fleet::observe_silence(cfg, cy.fleet(), &mut mem.fleet);
    }
    let groups = group_bindings(cfg);
    let classes = classify_all(&cy, mem, &groups);
    Look {
        cy,
        groups,
        classes,
        targets: HashMap::default(),
        current: HashMap::default(),
    }
}

/// Rules 2–6 and 15 for every reported unit: its verdict and restart; notes in the look which
/// live consumers may receive a dead consumer's entries and which consumers the rows show.
fn judge_units(look: &mut Look<'_>, mem: &mut Memory, d: &mut Decision) {
    let Look {
        cy,
        classes,
        targets,
        current,
        ..
    } = look;
    let mut of_unit: HashMap<&str, Vec<usize>> = HashMap::default();
    for (i, w) in cy.cfg.watch.iter().enumerate() {
        of_unit.entry(w.unit.as_str()).or_default().push(i);
    }
    let names = reported_units(cy);
    d.units.reserve(names.len());
    // One report a consumer classified: grown once, not doubled a dozen times.
    d.consumers.reserve(classes.values().map(Vec::len).sum());
    for name in names {
        let bindings = of_unit.remove(name).unwrap_or_default();
        let e = units::judge_unit(cy, mem, classes, name, &bindings);
        let um = mem.unit_mut(name);
        note_own_consumers(cy, um, &bindings, &e);
        if can_receive(cy, um.restart_in_flight, &e) {
            for &i in &bindings {
                if let Some(t) = target_of(cy, i, &e) {
                    let key = cy.cfg.watch[i].key();
                    targets.entry(key).or_default().insert(i, t);
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
}

/// Remembers, per binding of a unit, the consumer judged as its own (or that none was).
fn note_own_consumers(cy: &Cycle<'_>, um: &mut UnitMemory, bindings: &[usize], e: &UnitEval) {
    for &i in bindings {
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
}

/// Rules 8–10 and 12 for every watched group: the recovery of dead consumers and zombies, the
/// poison scan; forgets groups no longer watched.
fn recover(look: &Look<'_>, mem: &mut Memory, d: &mut Decision) {
    if look.cy.snap.redis.is_err() {
        return;
    }
    let (none, nobody) = (BTreeMap::new(), BTreeSet::new());
    for (key, idxs) in look.groups.iter() {
        let judged = Judged {
            classes: look.classes.get(key).map_or(&[][..], Vec::as_slice),
            targets: look.targets.get(key).unwrap_or(&none),
            current: look.current.get(key).unwrap_or(&nobody),
        };
        recover_and_scan(&look.cy, mem, key, idxs, &judged, d);
    }
    mem.groups.retain(|k, _| look.groups.contains_key(k));
}

/// Rule 16: remembers the quiet groups' consumers and withholds consumer actions on groups not
/// read in full this look; returns the server's time the look's vouches are as of (rule 12).
fn remember_quiet(look: &Look<'_>, mem: &mut Memory, d: &mut Decision) -> u64 {
    let cy = &look.cy;
    // Before `remember` forgets what a group that stopped being quiet was judged on.
    let as_of_ms = if cy.cfg.fleet.enabled {
        reuse::as_of_ms(cy, mem, &look.groups)
    } else {
        0
    };
    reuse::remember(cy, mem, &look.groups, &look.classes, d);
    reuse::withhold(cy, &look.groups, d);
    as_of_ms
}

/// Rules 14 and 15: moves the actions a pause, an open window or a deploy holds back from
/// `actions` to `held`.
fn hold(look: &Look<'_>, d: &mut Decision) {
    let (cfg, snap) = (look.cy.cfg, look.cy.snap);
    let group_units = |stream: &str, group: &str| cfg.units_of_group(stream, group);
    let (now, offset) = (snap.now_usec, snap.utc_offset_secs);
    holds::apply(&snap.holds, now, offset, group_units, d);
    holds::apply_deploys(&look.cy.deploys, snap, d);
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

/// Rule 15: the units in someone's hands now (see [`Cycle::deploys`]); notes when each
/// deploy began.
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

/// A unit's consumers may receive handoffs: it runs, and is neither hung, unknown, about to be
/// restarted, nor restarting.
fn can_receive(cy: &Cycle<'_>, in_flight: bool, e: &UnitEval) -> bool {
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
fn target_of(cy: &Cycle<'_>, i: usize, e: &UnitEval) -> Option<Target> {
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
    judged: &Judged<'_>,
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

fn is_self(snap: &Snapshot, name: &str) -> bool {
    snap.self_unit.as_deref() == Some(name)
}
