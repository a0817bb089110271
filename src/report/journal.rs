//! What goes to the journal: one line per verdict change and per action, with structured
//! fields (`UNIT=`, `STREAM=`, `GROUP=`, `CONSUMER=`, `ACTION=`, `REASON=`) and a stable
//! `MESSAGE_ID=` per kind, explained by the catalog shipped in
//! `/usr/lib/systemd/catalog/quantum-watchdog.catalog` (`journalctl -x`).

use std::collections::BTreeMap;

use crate::config::{ClaimPolicy, Mode};
use crate::policy::{Action, Decision, HeldAction, Severity, Verdict};

use super::printable::printable;

/// A unit's verdict changed.
pub const VERDICT: &str = "82b7851358534fb086053f55cb8f42d8";
/// A restart was issued.
pub const RESTART: &str = "2d6daeabfa1b431bbb5a8bbdb4bdf788";
/// An action failed.
pub const ACTION_FAILED: &str = "5d94f5bc677b42a19a8a83bdd1d890d6";
/// Entries were handed off.
pub const HANDOFF: &str = "353e779f982a4b1f85f7a42309808171";
/// Entries were parked.
pub const PARK: &str = "1fc2f83c16f64c7b831b7000645589b0";
/// Entries were requeued.
pub const REQUEUE: &str = "9c642b6d2c424c3c89f05365d728a4ca";
/// A consumer was deleted.
pub const DELETE: &str = "e65f7cd47a66485cad8cf93a64d83b46";
/// An entry was moved to a dead-letter stream.
pub const DEAD_LETTER: &str = "d4168c49b26c49419991b9556b644d92";
/// An entry a unit kept dying on was quarantined.
pub const QUARANTINE: &str = "2f9f1b263d954a57ad91db50cff81043";
/// What observe mode would do.
pub const WOULD: &str = "1f596204e6554886aabe2ef21391bb0c";
/// A pipeline stalled.
pub const STALL: &str = "af2058f446564ce38871eda7aa8edec2";

/// The MESSAGE_ID of an action, by its kind: every kind has its own, so a new kind cannot
/// pass unseen under another's.
pub fn for_action(a: &Action) -> &'static str {
    match a {
        Action::Restart { .. } => RESTART,
        Action::Claim {
            policy: ClaimPolicy::Park,
            ..
        } => PARK,
        Action::Claim { .. } => HANDOFF,
        Action::Requeue { .. } => REQUEUE,
        Action::Delete { .. } => DELETE,
        Action::DeadLetter { .. } => DEAD_LETTER,
        Action::Quarantine { .. } => QUARANTINE,
        Action::Fenced { of, .. } => for_action(of),
    }
}

/// An action in one line, for the journal, `status` and the state file: `restart quantum-router.service` / `claim 3 pending of a to b in g`.
pub fn describe(a: &Action) -> String {
    match a {
        Action::Restart { unit, .. } => format!("restart {unit}"),
        Action::Claim {
            from,
            to,
            pending,
            key,
            ..
        } => format!("claim {pending} pending of {from} to {to} in {}", key.group),
        Action::Requeue {
            from, pending, key, ..
        } => format!("requeue {pending} pending of {from} onto {}", key.stream),
        Action::DeadLetter {
            id,
            consumer,
            deliveries,
            dead,
            ..
        } => {
            format!("dead-letter entry {id} of {consumer} ({deliveries} deliveries) to {dead}")
        }
        Action::Quarantine {
            id,
            consumer,
            crashes,
            dead,
            ..
        } => format!("quarantine entry {id} of {consumer} ({crashes} crashes on it) to {dead}"),
        Action::Delete { consumer, key, .. } => {
            format!("delete consumer {consumer} of {}", key.group)
        }
        Action::Fenced { host, of, .. } => {
            format!("{} (host {host}'s, under the recovery lease)", describe(of))
        }
    }
}

/// A held action as the journal says it: `paused by alice until 14:30: would restart …`.
pub fn held_line(h: &HeldAction) -> String {
    format!("{}: would {}", h.held_by, describe(&h.action))
}

/// Logs one action: `would …` in observe mode, or what happened.
pub fn log_action(a: &Action, mode: Mode, outcome: &str, ok: bool) {
    let (stream, group, consumer) = a.target();
    let unit = a.unit().unwrap_or("");
    let reason = a.reason();
    let described = describe(a);
    let (what, why) = (printable(&described), printable(reason));
    if mode == Mode::Observe {
        let action = format!("would-{}", a.kind());
        tracing::info!(
            unit,
            stream,
            group,
            consumer,
            action,
            reason,
            mode = "observe",
            message_id = WOULD,
            "would {what} (observe mode): {why}"
        );
        return;
    }
    let action = a.kind();
    let outcome = printable(outcome);
    if ok {
        tracing::info!(
            unit,
            stream,
            group,
            consumer,
            action,
            reason,
            mode = "enforce",
            message_id = for_action(a),
            "{what}: {outcome}; {why}"
        );
    } else {
        tracing::error!(
            unit,
            stream,
            group,
            consumer,
            action,
            reason,
            mode = "enforce",
            message_id = ACTION_FAILED,
            "{what} failed: {outcome}; {why}"
        );
    }
}

/// What was last announced, so that only changes are logged.
#[derive(Debug, Default)]
pub struct Announced {
    units: BTreeMap<String, Verdict>,
    stalled: BTreeMap<String, bool>,
    blind: BTreeMap<&'static str, bool>,
}

impl Announced {
    /// Logs what changed since the last cycle: unit verdicts, pipeline stalls, and whether
    /// systemd and Redis could be read.
    pub fn announce(&mut self, d: &Decision) {
        for u in &d.units {
            let before = match self.units.get_mut(&u.unit) {
                Some(v) => Some(std::mem::replace(v, u.verdict)),
                None => self.units.insert(u.unit.clone(), u.verdict),
            };
            if before != Some(u.verdict) {
                verdict_changed(&u.unit, before, u.verdict, u.severity, &u.reason);
            }
        }
        for p in &d.pipelines {
            let now = p.stalled_at.is_some();
            let before = self.stalled.insert(p.name.clone(), now);
            if before != Some(now) && (now || before.is_some()) {
                stall_changed(&p.name, now, &p.message);
            }
        }
        for (what, e) in [("systemd", &d.systemd_error), ("redis", &d.redis_error)] {
            let before = self.blind.insert(what, e.is_some());
            match (before, e) {
                (Some(false) | None, Some(e)) => {
                    tracing::error!("{what}: {e}; reporting unknown, taking no action")
                }
                (Some(true), None) => tracing::info!("{what}: reachable again"),
                _ => {}
            }
        }
    }
}

fn verdict_changed(unit: &str, before: Option<Verdict>, now: Verdict, sev: Severity, reason: &str) {
    let verdict = now.as_str();
    let was = before.map(|v| v.as_str()).unwrap_or("-");
    let text = printable(reason);
    if sev == Severity::Ok {
        tracing::info!(
            unit,
            verdict,
            reason,
            action = "verdict",
            message_id = VERDICT,
            "{unit}: {was} -> {verdict}: {text}"
        );
    } else {
        tracing::warn!(
            unit,
            verdict,
            reason,
            action = "verdict",
            message_id = VERDICT,
            "{unit}: {was} -> {verdict}: {text}"
        );
    }
}

fn stall_changed(pipeline: &str, stalled: bool, reason: &str) {
    if stalled {
        tracing::error!(
            pipeline,
            reason,
            action = "stall",
            message_id = STALL,
            "pipeline {pipeline} stalled: {reason}"
        );
    } else {
        tracing::info!(
            pipeline,
            action = "stall-cleared",
            "pipeline {pipeline} flows again"
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn catalog_explains_every_id() {
        let cat = include_str!("../../packaging/usr/lib/systemd/catalog/quantum-watchdog.catalog");
        for id in [
            super::VERDICT,
            super::RESTART,
            super::ACTION_FAILED,
            super::HANDOFF,
            super::PARK,
            super::REQUEUE,
            super::DELETE,
            super::DEAD_LETTER,
            super::QUARANTINE,
            super::WOULD,
            super::STALL,
        ] {
            assert!(
                cat.contains(&format!("-- {id}\n")),
                "{id} missing from the catalog"
            );
        }
    }
}
