//! Rule 16: quiet groups' consumers are read less often.
//!
//! A group that holds nothing, has no work waiting and gives nothing to do about any of its
//! consumers changes, as far as any rule can tell, only by what its `XINFO GROUPS` entry shows:
//! an entry delivered or acknowledged, a consumer created or deleted. While that entry is the
//! same as at the group's last `XINFO CONSUMERS`, and its units' MainPIDs are too, the
//! consumers read then stand for this look's, for at most [`reread_after`]; the entry is read
//! every look, and a group whose entry changed has its consumers read in the same look. What
//! such a look does not see is idle times going on: in a quiet group only the zombie rule
//! (`zombie_after`, an hour) looks at them, and no consumer action is taken on consumers not
//! read in this look ([`withhold`]): the group is read at the next look and the action
//! proposed again if it still stands.

use crate::model::hash::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::model::plan::KnownConsumers;
use crate::model::{GroupData, GroupKey};

use super::consumers::zombie_after_ms;
use super::cycle::{Classes, Cycle, Groups};
use super::decision::{Class, Decision, Liveness};
use super::memory::{GroupMemory, Known, Memory};
use super::verdict::Severity;

/// The longest a quiet group's consumers stand unread at short intervals.
pub const REREAD_AFTER: Duration = Duration::from_secs(10);

/// At long intervals, the looks a quiet group's consumers stand unread for.
pub const REREAD_LOOKS: u32 = 4;

/// The longest a quiet group's consumers stand unread at `interval`: [`REREAD_AFTER`], or
/// [`REREAD_LOOKS`] intervals if that is longer, so that no more than a quarter of the quiet
/// groups is read in any look.
pub fn reread_after(interval: Duration) -> Duration {
    REREAD_AFTER.max(interval.saturating_mul(REREAD_LOOKS))
}

/// The MainPIDs of the units of bindings `idxs`, in binding order.
pub fn main_pids(cfg: &Config, idxs: &[usize], main_pid: impl Fn(&str) -> u32) -> Vec<u32> {
    idxs.iter().map(|&i| main_pid(&cfg.watch[i].unit)).collect()
}

/// The known consumers that may stand for this look's; `None` when they must be read: none
/// known, due for a re-read (or the clock stepped back past their reading), a bound unit's
/// MainPID changed, or (with `[fleet]`) read without the fleet's clock.
pub fn offer(
    gm: Option<&GroupMemory>,
    main_pids: &[u32],
    now_usec: u64,
    fleet: bool,
) -> Option<Arc<KnownConsumers>> {
    let k = gm?.known.as_ref()?;
    let due = now_usec >= k.reread_usec || now_usec < k.read.read_usec;
    let fresh = !due && k.main_pids == main_pids;
    (fresh && (!fleet || k.fleet_ms > 0)).then(|| Arc::clone(&k.read))
}

/// Groups this look proposes an action for or warns of a consumer of.
fn busy(d: &Decision) -> HashSet<(&str, &str)> {
    let acted = d.actions.iter().map(|a| a.target()).map(|(s, g, _)| (s, g));
    let warned = d
        .consumers
        .iter()
        .filter(|c| c.severity != Severity::Ok)
        .map(|c| (&*c.stream, &*c.group));
    acted.chain(warned).collect()
}

/// Quiet: nothing pending, a known lag of 0.
fn quiet(g: &GroupData) -> bool {
    g.group.pending == 0 && g.group.lag == Some(0)
}

/// How long (ms) until the first consumer of unknown liveness among `classes` could reach
/// `zombie_after` (the zombie rule): `None` if there is none.
fn zombie_due_ms(g: &GroupData, classes: &[Class], zombie_ms: u64) -> Option<u64> {
    g.consumers
        .iter()
        .zip(classes)
        .filter(|(_, k)| k.liveness == Liveness::Unknown)
        .map(|(c, _)| zombie_ms.saturating_sub(c.idle_ms))
        .min()
}

/// Keeps, per quiet group read in this look, its consumers for the looks to come; forgets
/// them for every group that is not quiet. Re-reads are spread over [`reread_after`] from
/// the first (group by group), so that no look reads them all, and come no later than a
/// consumer of unknown liveness could reach `zombie_after`.
pub fn remember(
    cy: &Cycle<'_>,
    mem: &mut Memory,
    groups: &Groups<'_>,
    classes: &Classes<'_>,
    d: &Decision,
) {
    let busy = busy(d);
    let fleet_ms = cy.fleet().map_or(0, |v| v.now_ms);
    let every = cy.cfg.interval.0.max(Duration::from_millis(1));
    let looks = (reread_after(every).as_micros() / every.as_micros()).max(1) as u64;
    let every = every.as_micros() as u64;
    for (j, (key, idxs)) in groups.iter().enumerate() {
        let gm = mem.group_mut(key);
        let g = match cy.group(key) {
            Ok(g)
                if quiet(g)
                    && !busy.contains(&(key.stream.as_str(), key.group.as_str()))
                    && (fleet_ms > 0 || !cy.cfg.fleet.enabled) =>
            {
                g
            }
            _ => {
                gm.known = None;
                continue;
            }
        };
        if g.consumers_read_usec.is_some() && gm.known.is_some() {
            continue;
        }
        // The first time in a row: a place in the rotation; after that, a whole period.
        let after = match gm.known {
            None => looks - j as u64 % looks,
            Some(_) => looks,
        };
        let mut reread = cy
            .now()
            .saturating_add(after.saturating_mul(every))
            .saturating_sub(every / 2);
        let of = classes.get(key).map_or(&[][..], Vec::as_slice);
        if let Some(due) = zombie_due_ms(g, of, zombie_after_ms(cy, idxs)) {
            reread = reread.min(cy.now().saturating_add(due.saturating_mul(1000)));
        }
        gm.known = Some(Known {
            read: Arc::new(KnownConsumers {
                group: g.group.clone(),
                consumers: g.consumers.clone(),
                read_usec: g.consumers_read_usec.unwrap_or(cy.now()),
            }),
            reread_usec: reread,
            main_pids: main_pids(cy.cfg, idxs, |u| cy.main_pid(u)),
            fleet_ms,
        });
    }
}

/// The groups whose consumers were not read in this look (known ones stood for them).
fn unread<'g>(cy: &Cycle<'_>, groups: &'g Groups<'_>) -> impl Iterator<Item = &'g GroupKey> {
    groups
        .keys()
        .filter(|k| cy.group(k).is_ok_and(|g| g.consumers_read_usec.is_some()))
}

/// Withholds the consumer actions on groups whose consumers were not read in this look.
pub fn withhold(cy: &Cycle<'_>, groups: &Groups<'_>, d: &mut Decision) {
    let unread: HashSet<(&str, &str)> = unread(cy, groups)
        .map(|k| (k.stream.as_str(), k.group.as_str()))
        .collect();
    if unread.is_empty() {
        return;
    }
    d.actions.retain(|a| {
        let (s, g, _) = a.target();
        !unread.contains(&(s, g))
    });
}

/// The server's time (ms) the heartbeat speaks for: this look's, or the oldest read of the
/// consumers it stood on (so other hosts' idle rule counts from when they were read).
pub fn as_of_ms(cy: &Cycle<'_>, mem: &Memory, groups: &Groups<'_>) -> u64 {
    let now = cy.fleet().map_or(0, |v| v.now_ms);
    unread(cy, groups)
        .filter_map(|k| mem.groups.get(k)?.known.as_ref().map(|n| n.fleet_ms))
        .fold(now, u64::min)
}
