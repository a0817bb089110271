//! `quantum-watchdog recover`: one sweep of consumer recovery (hand off or park the entries of
//! dead consumers, delete dead and zombie consumers that hold nothing), for the timer and for
//! `ExecStartPre=`/`ExecStopPost=` hooks. It never restarts anything.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::collect::World;
use crate::config::{Config, Mode};
use crate::execute::{self, Act, Totals};
use crate::metrics::Metrics;
use crate::model::GroupKey;
use crate::policy::{self, Action, Memory};

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
                stream,
                group,
                unit: None,
                ..
            } => groups.contains(&GroupKey {
                stream: stream.clone(),
                group: group.clone(),
            }),
            _ => units.is_empty() || a.unit().is_some_and(|u| units.iter().any(|x| x == u)),
        })
        .collect()
}

/// Runs one sweep. Returns the totals; an unreachable Redis or D-Bus is a warning, not an error.
pub async fn sweep(cfg: &Config, world: &mut World, units: &[String], mode: Mode) -> Totals {
    let mut totals = Totals::default();
    for u in units {
        if !cfg.watch.iter().any(|w| &w.unit == u) {
            tracing::warn!(
                unit = u.as_str(),
                "{u} has no [[watch]] binding; nothing to recover for it"
            );
        }
    }
    // Only the selected units' bindings are looked at.
    let narrowed;
    let cfg = if units.is_empty() {
        cfg
    } else {
        let mut c = cfg.clone();
        c.watch.retain(|w| units.contains(&w.unit));
        c.units = units.to_vec();
        c.pipeline.clear();
        c.gauge.clear();
        c.flag.clear();
        narrowed = c;
        &narrowed
    };
    let mut mem = Memory::default();
    let mut snap = world.snapshot(cfg, &mem).await;
    // As a hook, this process runs inside the unit it recovers for: that is not "our own unit".
    snap.self_unit = None;
    if let Err(e) = &snap.redis {
        tracing::warn!("recover: {e}; nothing done");
        return totals;
    }
    if let Err(e) = &snap.units {
        tracing::warn!("recover: systemd: {e}; nothing done");
        return totals;
    }
    let d = policy::decide(cfg, &snap, &mut mem);
    let actions = select(cfg, d.actions, units);
    for c in d
        .consumers
        .iter()
        .filter(|c| c.severity != policy::Severity::Ok)
    {
        tracing::warn!(
            stream = c.stream.as_str(),
            group = c.group.as_str(),
            consumer = c.consumer.as_str(),
            "{}: {}",
            execute::printable(&c.consumer),
            execute::printable(&c.note)
        );
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    // The oneshot keeps its counters across runs in its textfile.
    let metrics = Metrics::new();
    let textfile = cfg.metrics.textfile_dir.as_ref();
    if let Some(dir) = textfile
        && let Ok(prev) = std::fs::read_to_string(dir.join("quantum-watchdog-recover.prom"))
    {
        metrics.seed(&prev);
    }
    let mut act = Act {
        streams: &mut world.streams,
        mode,
        deadline,
        totals: &mut totals,
        metrics: &metrics,
        mem: &mut mem,
    };
    for a in &actions {
        execute::consumer_action(&mut act, a).await;
    }
    if let Some(dir) = textfile
        && mode == Mode::Enforce
        && let Err(e) = metrics.write_recover_textfile(dir)
    {
        tracing::warn!("metrics.textfile_dir {}: {e}", dir.display());
    }
    tracing::info!(
        "recover: {} action(s) {}; claimed {}, requeued {}, deleted {}",
        actions.len(),
        if mode == Mode::Observe {
            "proposed (observe mode)"
        } else {
            "taken"
        },
        totals.claimed,
        totals.requeued,
        totals.deleted
    );
    totals
}
