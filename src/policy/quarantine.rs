//! Crash-loop poison quarantine (opt-in: `poison_after_crashes`). An entry that kills or hangs
//! its consumer every time it is read never reaches `dead_letter_after`: the service dies,
//! restarts, is handed the entry again, dies again — until its restart budget or systemd's
//! start limit stops the pipeline. So at each death of a unit the agent notes the oldest
//! unacknowledged entry of the consumer the dead process read under; when the same entry was
//! that head at `poison_after_crashes` consecutive deaths, it is moved to the dead-letter
//! stream (with its crash count and the last exit status) and acknowledged, and the service
//! comes up clean. A death with another head, or with nothing pending, starts the count again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{GroupKey, StreamId, UnitState};

use super::action::Action;
use super::memory::{Memory, UnitMemory};
use super::{Cycle, Decision};

/// The entry at the head of a unit's consumer at its last deaths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashHead {
    /// The entry.
    pub id: StreamId,
    /// Consecutive deaths it was the head at.
    pub deaths: u32,
}

/// A unit that died since the last look: the MainPID it had, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Death {
    /// The unit.
    pub unit: String,
    /// Its MainPID at the last look.
    pub old_pid: u32,
    /// How it ended.
    pub exit_status: String,
}

/// Whether the MainPID change of `u` since the last look (`m`) is a death that counts: the old
/// process is gone, and systemd restarted the unit by `Restart=` (`NRestarts` went up) or the
/// agent restarted it while that process was the MainPID. A restart by an operator or a
/// deploy is no crash; neither is a MainPID handed over to a process that lives on.
fn is_death(m: &UnitMemory, u: &UnitState, live_pids: &BTreeMap<u32, bool>) -> bool {
    let changed = m.main_pid != 0 && u.main_pid != 0 && u.main_pid != m.main_pid;
    let gone = live_pids.get(&m.main_pid) != Some(&true);
    let by_systemd = u.n_restarts > m.n_restarts;
    let by_agent = m.last_restart_usec != 0 && m.last_restart_usec >= m.main_since_usec;
    changed && gone && (by_systemd || by_agent)
}

/// Deaths since the last look (at most one a unit: processes that came and went between two
/// looks never held the entry the last one held). Called before the memory of MainPIDs is
/// updated.
pub fn deaths(mem: &Memory, units: &[UnitState], live_pids: &BTreeMap<u32, bool>) -> Vec<Death> {
    units
        .iter()
        .filter_map(|u| {
            let m = mem.units.get(&u.name)?;
            is_death(m, u, live_pids).then(|| Death {
                unit: u.name.clone(),
                old_pid: m.main_pid,
                exit_status: if u.exit_status.is_empty() {
                    m.last_exit_status.clone()
                } else {
                    u.exit_status.clone()
                },
            })
        })
        .collect()
}

/// Counts each death's head toward its entry's streak and proposes the quarantine of an entry
/// whose streak reached `poison_after_crashes`. The proposal comes before any handoff of the
/// dead consumer's entries (the daemon keeps the order), so the entry goes aside, not back.
pub fn judge_deaths(cy: &Cycle<'_>, mem: &mut Memory, deaths: &[Death], d: &mut Decision) {
    for death in deaths {
        for w in cy.cfg.watch.iter().filter(|w| w.unit == death.unit) {
            let Some(limit) = w.params.poison_after_crashes else {
                continue;
            };
            let key = w.key();
            let Some(name) = w.consumer.render(cy.host(), death.old_pid, &w.unit) else {
                continue;
            };
            // Not read this cycle (the group could not be read): the streak stands.
            let Some(head) = cy.group(key).ok().and_then(|g| g.heads.get(&name)) else {
                continue;
            };
            let m = mem.unit_mut(&w.unit);
            let Some(head) = head else {
                m.crash_heads.remove(key);
                continue;
            };
            let streak = match m.crash_heads.get(key) {
                Some(c) if c.id == head.id => c.deaths.saturating_add(1),
                _ => 1,
            };
            m.crash_heads.insert(
                key.clone(),
                CrashHead {
                    id: head.id,
                    deaths: streak,
                },
            );
            if streak < limit {
                continue;
            }
            m.crash_heads.remove(key);
            d.actions
                .push(quarantine(cy, key, &name, head, streak, death, limit));
        }
    }
}

fn quarantine(
    cy: &Cycle<'_>,
    key: &GroupKey,
    consumer: &str,
    head: &crate::model::PendingEntry,
    crashes: u32,
    death: &Death,
    limit: u32,
) -> Action {
    Action::Quarantine {
        unit: death.unit.clone(),
        stream: key.stream.clone(),
        dead: cy.cfg.redis.dead_letter_key(&key.stream),
        group: key.group.clone(),
        id: head.id.to_string(),
        consumer: consumer.to_string(),
        crashes,
        exit_status: death.exit_status.clone(),
        reason: format!(
            "entry {} was the oldest unacknowledged one of {consumer} at {crashes} consecutive deaths of {} (poison_after_crashes {limit}; last {})",
            head.id,
            death.unit,
            if death.exit_status.is_empty() {
                "exit unknown"
            } else {
                &death.exit_status
            }
        ),
    }
}

/// The streaks a unit's bindings are on, for its report.
pub fn note(mem: &Memory, unit: &str, key: &GroupKey, limit: Option<u32>) -> Option<String> {
    let c = mem.units.get(unit)?.crash_heads.get(key)?;
    Some(format!(
        "entry {} was the oldest unacknowledged at {} consecutive death(s){}",
        c.id,
        c.deaths,
        limit
            .map(|n| format!(" (quarantined at {n})"))
            .unwrap_or_default()
    ))
}
