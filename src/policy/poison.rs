//! Rule 10, poison entries: delivered again and again, never acknowledged.
//!
//! Each cycle reads one window of a group's pending list (the plan's scan, after the ID where
//! the last window ended), so an entry anywhere in a list of any length is found at a bounded
//! cost per cycle. Entries past the limit are remembered as suspects and re-checked every
//! cycle until they are acknowledged or moved. With `dead_letter_after = N`, an entry
//! delivered N times goes to the dead-letter stream (`<stream>:dead`, `{<stream>}:dead` on a cluster) (checked again in the script); without it, an
//! entry delivered [`POISON_REPORT_DELIVERIES`] times is reported and stays pending.

use crate::model::{GroupData, GroupKey, PendingEntry};

use super::action::Action;
use super::cycle::Cycle;
use super::decision::{Decision, PoisonReport};
use super::memory::{GroupMemory, SUSPECTS};
use super::verdict::Severity;

/// Deliveries from which an unacknowledged entry is reported as a poison suspect when no
/// `dead_letter_after` is configured.
pub const POISON_REPORT_DELIVERIES: u64 = 10;

/// Reports the group's poison entries seen this cycle, proposes dead-lettering the due ones,
/// and moves the scan on.
pub fn judge_poison(
    cy: &Cycle<'_>,
    gm: &mut GroupMemory,
    key: &GroupKey,
    idxs: &[usize],
    g: &GroupData,
    d: &mut Decision,
) {
    let w = &cy.cfg.watch[idxs[0]];
    let limit = w.params.dead_letter_after.map(u64::from);
    let threshold = limit.map_or(POISON_REPORT_DELIVERIES, |n| {
        n.min(POISON_REPORT_DELIVERIES)
    });
    let mut seen: Vec<PendingEntry> = g.rechecked.clone().unwrap_or_default();
    if let Some(scan) = &g.scan {
        gm.scan_after = (scan.entries.len() >= scan.count)
            .then(|| scan.entries.last().map(|e| e.id))
            .flatten();
        for e in scan.entries.iter().filter(|e| e.deliveries >= threshold) {
            if !seen.iter().any(|s| s.id == e.id) {
                seen.push(e.clone());
            }
        }
    }
    seen.sort_by_key(|e| e.id);
    seen.truncate(SUSPECTS);
    for e in &seen {
        let due = limit.is_some_and(|n| e.deliveries >= n);
        d.poison.push(PoisonReport {
            stream: key.stream.clone(),
            group: key.group.clone(),
            id: e.id.to_string(),
            consumer: e.consumer.clone(),
            deliveries: e.deliveries,
            dead_letter: due,
            dead_stream: cy.cfg.redis.dead_letter_key(&key.stream),
            severity: if due { Severity::Ok } else { Severity::Warning },
        });
        if let Some(n) = limit.filter(|_| due) {
            d.actions.push(Action::DeadLetter {
                unit: w.unit.clone(),
                key: key.clone(),
                dead: cy.cfg.redis.dead_letter_key(&key.stream),
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
    gm.suspects = seen;
}
