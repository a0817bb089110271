//! Rule 13: crash-loop poison quarantine (opt-in: `poison_after_crashes`). An entry that kills or
//! hangs its consumer every time it is read never reaches `dead_letter_after`: the service dies,
//! restarts, is handed the entry again, dies again — until its restart budget or systemd's start
//! limit stops the pipeline. So at each death of a unit the agent notes the oldest unacknowledged
//! entry of the consumer the dead process read under; when the same entry was that head at
//! `poison_after_crashes` consecutive deaths, and each of those processes read it, it is moved to
//! the dead-letter stream (with its crash count and the last exit status) and acknowledged, and the
//! service comes up clean. A death with another head, or with nothing pending, starts the count
//! again; so does a death whose process never read the head (its delivery count did not grow since
//! the last death: the entry was handed to it and lay there while something else killed it — a
//! dependency that does not answer, say).

use std::collections::BTreeMap;

use crate::model::{GroupKey, UnitState};

use super::action::Action;
use super::cycle::Cycle;
use super::decision::Decision;
use super::memory::{CrashHead, Memory, UnitMemory};

/// The streak of `head` after one more death, given the streak at the last death (`last`): one
/// more if the dead process read it (its delivery count grew), none if it lay unread — that
/// death had another cause. The first death it is the head at counts: it was delivered to the
/// consumer that died.
pub fn streak_after(last: Option<&CrashHead>, head: &crate::model::PendingEntry) -> u32 {
    match last {
        Some(c) if c.id == head.id && head.deliveries > c.deliveries => c.deaths.saturating_add(1),
        Some(c) if c.id == head.id => 0,
        _ => 1,
    }
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
            let streak = streak_after(m.crash_heads.get(key), head);
            m.crash_heads.insert(
                key.clone(),
                CrashHead {
                    id: head.id,
                    deaths: streak,
                    deliveries: head.deliveries,
                },
            );
            if streak < limit {
                continue;
            }
            m.crash_heads.remove(key);
            let dead = cy.cfg.redis.dead_letter_key(&key.stream);
            let at = Crash {
                consumer: &name,
                head,
                death,
            };
            d.actions.push(quarantine(key, dead, &at, streak, limit));
        }
    }
}

/// One death of a unit's process with the entry at the head of its consumer.
#[derive(Clone, Copy)]
pub struct Crash<'a> {
    /// The consumer the dead process read under.
    pub consumer: &'a str,
    /// Its oldest unacknowledged entry.
    pub head: &'a crate::model::PendingEntry,
    /// The death.
    pub death: &'a Death,
}

/// A wrapped unit's child died (`exec`; the wrapper ends with it, so the streak lives in
/// Redis as `last`): the streak to keep after this death (`None`: none) and the quarantine of
/// the head once it reaches `poison_after_crashes` — the rule of [`judge_deaths`].
pub fn judge_wrapped_death(
    w: &crate::config::Watch,
    dead: String,
    at: &Crash<'_>,
    last: Option<&CrashHead>,
) -> (Option<CrashHead>, Option<Action>) {
    let Some(limit) = w.params.poison_after_crashes else {
        return (None, None);
    };
    let streak = streak_after(last, at.head);
    if streak < limit {
        let keep = CrashHead {
            id: at.head.id,
            deaths: streak,
            deliveries: at.head.deliveries,
        };
        return (Some(keep), None);
    }
    (None, Some(quarantine(w.key(), dead, at, streak, limit)))
}

fn quarantine(key: &GroupKey, dead: String, at: &Crash<'_>, crashes: u32, limit: u32) -> Action {
    let Crash {
        consumer,
        head,
        death,
    } = *at;
    Action::Quarantine {
        unit: death.unit.clone(),
        key: key.clone(),
        dead,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PendingEntry;

    fn entry(id: &str, deliveries: u64) -> PendingEntry {
        PendingEntry {
            id: id.parse().unwrap(),
            consumer: "c".into(),
            idle_ms: 0,
            deliveries,
        }
    }

    fn last(id: &str, deaths: u32, deliveries: u64) -> CrashHead {
        CrashHead {
            id: id.parse().unwrap(),
            deaths,
            deliveries,
        }
    }

    /// A death counts toward an entry's streak only if the process that died read it.
    #[test]
    fn only_a_read_entry_is_blamed() {
        for (before, head, streak, why) in [
            (None, entry("1-1", 1), 1, "first death it is the head at"),
            (
                Some(last("1-1", 1, 1)),
                entry("1-1", 2),
                2,
                "read again, died again",
            ),
            (
                Some(last("1-1", 2, 2)),
                entry("1-1", 3),
                3,
                "a third reading death",
            ),
            (
                Some(last("1-1", 1, 1)),
                entry("1-1", 1),
                0,
                "handed over, never read",
            ),
            (
                Some(last("1-1", 0, 1)),
                entry("1-1", 1),
                0,
                "still never read",
            ),
            (
                Some(last("1-1", 0, 1)),
                entry("1-1", 2),
                1,
                "read at last: counts from 1",
            ),
            (Some(last("1-1", 2, 2)), entry("2-1", 1), 1, "another head"),
            (
                Some(last("1-1", 2, 5)),
                entry("1-1", 4),
                0,
                "a count that went back",
            ),
            (
                Some(last("1-1", u32::MAX, 1)),
                entry("1-1", 2),
                u32::MAX,
                "saturates",
            ),
        ] {
            assert_eq!(streak_after(before.as_ref(), &head), streak, "{why}");
        }
    }

    /// Under `exec` the streak comes from Redis and goes back there: kept below the limit,
    /// the quarantine at it, nothing without the setting.
    #[test]
    fn a_wrapped_units_streak_is_kept_then_quarantined() {
        let toml = "[[watch]]\nunit = \"quantum-x.service\"\nstream = \"s\"\ngroup = \"g\"\n\
                    consumer = \"x-{pid}\"\npoison_after_crashes = 3\n";
        let cfg = crate::config::from_fragments(&[("t.toml".into(), toml.into())]).unwrap();
        let w = &cfg.watch[0];
        let death = Death {
            unit: "quantum-x.service".into(),
            old_pid: 7,
            exit_status: "killed KILL".into(),
        };
        let head = entry("5-0", 4);
        let at = Crash {
            consumer: "x-7",
            head: &head,
            death: &death,
        };
        let (keep, a) = judge_wrapped_death(w, "s:dead".into(), &at, Some(&last("5-0", 1, 2)));
        assert_eq!(keep, Some(last("5-0", 2, 4)));
        assert!(a.is_none());
        let (keep, a) = judge_wrapped_death(w, "s:dead".into(), &at, Some(&last("5-0", 2, 3)));
        assert_eq!(keep, None);
        match a {
            Some(Action::Quarantine {
                id, crashes, dead, ..
            }) => assert_eq!((id.as_str(), crashes, dead.as_str()), ("5-0", 3, "s:dead")),
            other => panic!("{other:?}"),
        }
        // Not read since the last death: no streak, nothing moved.
        let (keep, a) = judge_wrapped_death(w, "s:dead".into(), &at, Some(&last("5-0", 2, 4)));
        assert_eq!((keep.map(|k| k.deaths), a.is_none()), (Some(0), true));
        let plain = crate::config::from_fragments(&[(
            "t.toml".into(),
            toml.replace("poison_after_crashes = 3\n", ""),
        )])
        .unwrap();
        assert_eq!(
            judge_wrapped_death(&plain.watch[0], "s:dead".into(), &at, None),
            (None, None)
        );
    }
}
