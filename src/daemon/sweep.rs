//! `quantum-watchdog recover`: one sweep of consumer recovery (hand off or park the entries of
//! dead consumers, delete dead and zombie consumers that hold nothing), for the timer and for
//! `ExecStartPre=`/`ExecStopPost=` hooks. It never restarts anything.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::adapters::state_file::{READ_MAX, read_regular, write_atomically};
use crate::config::{Config, Mode};
use crate::model::GroupKey;
use crate::policy::{self, Action, Decision, Memory};
use crate::report::journal;
use crate::report::metrics::{Metrics, RECOVER_TEXTFILE};
use crate::report::printable::printable;
use crate::report::state::Totals;

use super::act::{self, Act};
use super::gather::World;

/// The consumer actions of one sweep, limited to the bindings of `units` (all if empty).
pub fn select(cfg: &Config, actions: Vec<Action>, units: &[String]) -> Vec<Action> {
    let groups: BTreeSet<GroupKey> = cfg
        .watch
        .iter()
        .filter(|w| units.is_empty() || units.contains(&w.unit))
        .map(|w| GroupKey {
            stream: w.stream.clone(),
            group: w.group.clone(),
        })
        .collect();
    actions
        .into_iter()
        .filter(|a| match a {
            Action::Restart { .. } => false,
            Action::Delete {
                key, unit: None, ..
            } => groups.contains(key),
            _ => units.is_empty() || a.unit().is_some_and(|u| units.iter().any(|x| x == u)),
        })
        .collect()
}

/// One look and the policy's decision for the sweep, or `None` (logged) when Redis or
/// systemd cannot be read.
async fn decide(
    full: &Config,
    cfg: &Config,
    world: &mut World,
    units: &[String],
) -> Option<Decision> {
    let mut mem = Memory::default();
    let mut snap = world.snapshot(cfg, &mem).await;
    // As a hook, this process runs inside the unit it recovers for: that is not "our own unit",
    // and the unit's start or stop job that runs the hook is no deploy to keep out of.
    snap.self_unit = None;
    if let Ok(listed) = &mut snap.units {
        for u in listed.iter_mut().filter(|u| units.contains(&u.name)) {
            u.job = None;
        }
    }
    if let Err(e) = &snap.redis {
        tracing::warn!("recover: {e}; nothing done");
        return None;
    }
    if let Err(e) = &snap.units {
        tracing::warn!("recover: systemd: {e}; nothing done");
        return None;
    }
    let mut d = policy::decide(cfg, &snap, &mut mem);
    // A pause of a unit the narrowing left out still holds the groups it reads.
    let group_units = |stream: &str, group: &str| full.units_of_group(stream, group);
    policy::holds::apply(
        &snap.holds,
        snap.now_usec,
        snap.utc_offset_secs,
        group_units,
        &mut d,
    );
    for h in &d.held {
        tracing::info!(action = "held", "{}", printable(&journal::held_line(h)));
    }
    warn_stranded(&d);
    Some(d)
}

/// Runs one sweep. Returns the totals; an unreachable Redis or D-Bus is a warning, not an error.
pub async fn sweep(full: &Config, world: &mut World, units: &[String], mode: Mode) -> Totals {
    let mut totals = Totals::default();
    let cfg = narrowed(full, units);
    let Some(d) = decide(full, &cfg, world, units).await else {
        return totals;
    };
    let mut mem = Memory::default();
    let actions = select(&cfg, d.actions, units);
    let (metrics, textfile) = recover_metrics(&cfg);
    let mut x = Act {
        world,
        mode,
        deadline: Instant::now() + Duration::from_secs(20),
        totals: &mut totals,
        metrics: Some(&metrics),
        mem: &mut mem,
        jobs: None,
        held_back: None,
    };
    for (i, a) in actions.iter().enumerate() {
        if Instant::now() >= x.deadline {
            tracing::warn!(
                "recover: stopped after 20 s with {} action(s) left for the next run",
                actions.len() - i
            );
            break;
        }
        act::consumer_action(&mut x, a).await;
    }
    if let Some(f) = textfile.filter(|_| mode == Mode::Enforce)
        && let Err(e) = write_atomically(&f, &metrics.recover_textfile())
    {
        tracing::warn!("metrics.textfile_dir {}: {e}", f.display());
    }
    let taken = match mode {
        Mode::Observe => "proposed (observe mode)",
        Mode::Enforce => "taken",
    };
    tracing::info!(
        "recover: {} action(s) {taken}; claimed {}, requeued {}, deleted {}",
        actions.len(),
        totals.claimed,
        totals.requeued,
        totals.deleted
    );
    totals
}

/// The oneshot's metrics, its bindings' counters at 0 (the first handoff is an increase) and
/// the counts of its earlier runs read back from its textfile, with that file's path.
fn recover_metrics(cfg: &Config) -> (Metrics, Option<std::path::PathBuf>) {
    let metrics = Metrics::new();
    metrics.zero_bindings(cfg);
    let textfile = (cfg.metrics.textfile_dir.as_ref()).map(|d| d.join(RECOVER_TEXTFILE));
    // The textfile directory may belong to node_exporter's user: read as a note is read.
    if let Some((prev, _)) = textfile
        .as_ref()
        .and_then(|f| read_regular(f, READ_MAX).ok())
    {
        metrics.seed(&prev);
    }
    (metrics, textfile)
}

/// The configuration limited to what the groups of `units` need (all of it if empty): every
/// binding of those groups, the named units' and their siblings' alike. A consumer is
/// classified against every binding of its group, so a PID that runs in a sibling unit
/// sharing the template is that unit's live consumer, never a dead one of ours; only the
/// actions are narrowed to `units` (see [`select`]). Groups of other units are left out: an
/// `exec` wrapper beside every consumer reading every watched group each look would cost N
/// wrappers times all groups.
pub fn narrowed(cfg: &Config, units: &[String]) -> Config {
    for u in units {
        if !cfg.watch.iter().any(|w| &w.unit == u) {
            tracing::warn!(
                unit = u.as_str(),
                "{u} has no [[watch]] binding; nothing to recover for it"
            );
        }
    }
    let mut c = cfg.clone();
    if !units.is_empty() {
        let groups: BTreeSet<GroupKey> = cfg
            .watch
            .iter()
            .filter(|w| units.contains(&w.unit))
            .map(|w| w.key().clone())
            .collect();
        c.watch.retain(|w| groups.contains(w.key()));
        c.units = units.to_vec();
        for w in &c.watch {
            if !c.units.contains(&w.unit) {
                c.units.push(w.unit.clone());
            }
        }
        c.pipeline.clear();
        c.gauge.clear();
        c.flag.clear();
    }
    c
}

/// Consumers whose entries nobody will process without the operator.
fn warn_stranded(d: &Decision) {
    for c in d
        .consumers
        .iter()
        .filter(|c| c.severity != policy::Severity::Ok)
    {
        tracing::warn!(
            stream = &*c.stream,
            group = &*c.group,
            consumer = &*c.consumer,
            "{}: {}",
            printable(&c.consumer),
            printable(&c.note)
        );
    }
}
