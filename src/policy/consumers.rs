//! Rules 7–9: whose a consumer is, whether it lives ([`classify`]), and what becomes of its
//! entries ([`recover_group`]).
//!
//! First every consumer of a watched group is classified (select); then the recovery of the
//! dead and the zombies is chosen by `claim_policy` (act). A consumer is a unit's live
//! consumer only if its PID is the unit's MainPID or a process in the unit's cgroup: a live
//! PID elsewhere is a reused PID, and the consumer named after it is dead.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{ClaimPolicy, PARKED_CONSUMER};
use crate::model::consumer_name::NameMatch;
use crate::model::{ConsumerInfo, GroupData, GroupKey, fmt_ms};

use super::action::Action;
use super::cycle::{Cycle, Target};
use super::decision::{Class, ConsumerReport, Decision, Liveness};
use super::memory::Memory;
use super::verdict::Severity;

/// Classifies one consumer of the group whose bindings are `idxs` (rules 7 and 9). Under a
/// host name another agent writes too (`[fleet]`, a cloned machine), a consumer of this name
/// found dead by its PID may be the other machine's live one: of unknown liveness, nothing
/// taken.
pub fn classify(cy: &Cycle<'_>, mem: &Memory, idxs: &[usize], c: &ConsumerInfo) -> Class {
    let class = classify_here(cy, mem, idxs, c);
    if cy.shared_name && class.liveness == Liveness::Dead && class.host.is_none() {
        let why = format!(
            "{}; but host name {} is written by two agents: nothing is taken from it",
            class.why,
            cy.host()
        );
        return Class::new(Liveness::Unknown, class.owner, why);
    }
    class
}

fn classify_here(cy: &Cycle<'_>, mem: &Memory, idxs: &[usize], c: &ConsumerInfo) -> Class {
    if &*c.name == PARKED_CONSUMER {
        return Class::new(Liveness::Parked, None, "parked entries, for the operator");
    }
    let matches: Vec<(usize, NameMatch)> = idxs
        .iter()
        .filter_map(|&i| {
            let w = &cy.cfg.watch[i];
            match w.consumer.matches(&c.name, cy.host(), &w.unit) {
                NameMatch::NoMatch => None,
                m => Some((i, m)),
            }
        })
        .collect();
    let Some(&(first, first_match)) = matches.first() else {
        if let Some(class) = super::fleet::classify_other_host(cy, mem, idxs, c) {
            return class;
        }
        return Class::new(
            Liveness::Unknown,
            None,
            "no template of the group accounts for it",
        );
    };
    if let Some(&(i, _)) = matches.iter().find(|(_, m)| *m == NameMatch::Fixed) {
        return Class::new(Liveness::Live, Some(i), "the unit's fixed consumer name");
    }
    let pids: Vec<(usize, u32, &str)> = matches
        .iter()
        .filter_map(|&(i, m)| match m {
            NameMatch::Pid(p) => Some((i, p, cy.cfg.watch[i].unit.as_str())),
            _ => None,
        })
        .collect();
    if let Some(class) = live_in_a_unit(cy, &pids) {
        return class;
    }
    if let Some(&(i, p, unit)) = pids
        .iter()
        .find(|(_, p, unit)| earlier_main_pid(mem, unit, *p))
    {
        return Class::new(
            Liveness::Dead,
            Some(i),
            format!("PID {p} was an earlier MainPID of {unit}"),
        );
    }
    let NameMatch::Pid(p) = first_match else {
        unreachable!("fixed names returned above")
    };
    let class = by_pid_probe(cy, first, p);
    if class.liveness == Liveness::Dead && cy.cfg.fleet.enabled {
        return unless_it_reads(cy, class, c);
    }
    class
}

/// With `[fleet]`, a consumer of this host's name whose PID runs no process of its unit here
/// is dead only once it has not read for a heartbeat's life: one that reads is a live process
/// somewhere — another machine's of this name (a clone) whose agent has not beaten yet — and
/// is kept until that agent's heartbeat tells (see `fleet::name_shared`).
fn unless_it_reads(cy: &Cycle<'_>, class: Class, c: &ConsumerInfo) -> Class {
    let life = crate::config::FleetConfig::heartbeat_ttl(cy.cfg.interval.0).as_millis() as u64;
    if c.idle_ms >= life {
        return class;
    }
    let why = format!(
        "{}, but it read {} ago: kept for now (another machine of this host name?)",
        class.why,
        fmt_ms(c.idle_ms)
    );
    Class::new(Liveness::Unknown, class.owner, why)
}

/// Rule 7, live: the PID is the MainPID of a bound unit, or a process in its cgroup.
fn live_in_a_unit(cy: &Cycle<'_>, pids: &[(usize, u32, &str)]) -> Option<Class> {
    if let Some(&(i, _, unit)) = pids.iter().find(|(_, p, unit)| cy.main_pid(unit) == *p) {
        return Some(Class::new(
            Liveness::Live,
            Some(i),
            format!("MainPID of {unit}"),
        ));
    }
    pids.iter()
        .find(|(_, p, unit)| cy.unit_of_pid(*p) == Some(Some(*unit)))
        .map(|&(i, p, unit)| Class::new(Liveness::Live, Some(i), format!("PID {p} runs in {unit}")))
}

fn earlier_main_pid(mem: &Memory, unit: &str, pid: u32) -> bool {
    mem.units
        .get(unit)
        .is_some_and(|m| m.previous_pids.contains(&pid))
}

/// Rule 7, dead or unknown, from the PID probe and the unit the PID runs in.
fn by_pid_probe(cy: &Cycle<'_>, i: usize, p: u32) -> Class {
    let unit = &cy.cfg.watch[i].unit;
    let (liveness, why) = match (cy.snap.live_pids.get(&p), cy.unit_of_pid(p)) {
        (Some(false), _) => (Liveness::Dead, format!("PID {p} is not running")),
        (Some(true), Some(Some(other))) => (
            Liveness::Dead,
            format!("PID {p} is a process of {other}, not of {unit}: the PID was reused"),
        ),
        (Some(true), Some(None)) => (
            Liveness::Dead,
            format!("PID {p} is a process outside any unit, not of {unit}: the PID was reused"),
        ),
        (Some(true), None) => (
            Liveness::Unknown,
            format!("PID {p} is a live process; its unit could not be asked"),
        ),
        (None, _) => (
            Liveness::Unknown,
            format!("liveness of PID {p} not checked"),
        ),
    };
    Class::new(liveness, Some(i), why)
}

/// The recipient for a dead consumer of binding `owner`: its own unit's consumer if it can
/// take them, else the live consumer of another binding of the same group holding least.
fn handoff_target(owner: usize, targets: &BTreeMap<usize, Target>) -> Option<&Target> {
    targets
        .get(&owner)
        .or_else(|| targets.values().min_by_key(|t| t.pending))
}

/// At most this many consumers of one group are deleted a cycle: thousands of zombies go
/// over a few cycles, each delete one journal line, within journald's rate limit.
pub const DELETES_PER_GROUP: usize = 1000;

/// What the units' judgement left for the recovery of one group.
pub struct Judged<'a> {
    /// Each consumer's class, in the group's order.
    pub classes: &'a [Class],
    /// Live consumers that may receive entries, by binding.
    pub targets: &'a BTreeMap<usize, Target>,
    /// The consumers the units' rows show.
    pub current: &'a std::collections::BTreeSet<String>,
}

/// Reports every consumer of a group and proposes the recovery of the dead and the zombies.
pub fn recover_group(
    cy: &Cycle<'_>,
    key: &GroupKey,
    idxs: &[usize],
    g: &GroupData,
    judged: &Judged<'_>,
    d: &mut Decision,
) {
    let mut deletes = 0;
    let targets = judged.targets;
    let (stream, group): (Arc<str>, Arc<str>) =
        (key.stream.as_str().into(), key.group.as_str().into());
    for (c, class) in g.consumers.iter().zip(judged.classes) {
        let current = judged.current.contains(&*c.name);
        let (severity, mut note, mut action) = match class.liveness {
            Liveness::Parked | Liveness::Live => (Severity::Ok, class.why.clone(), None),
            Liveness::Dead => owned(dead(cy, key, c, class, targets)),
            Liveness::Unknown if class.owner.is_some() => (Severity::Ok, class.why.clone(), None),
            Liveness::Unknown => zombie(cy, key, idxs, c),
        };
        if let Some(host) = &class.host {
            (note, action) = super::fleet::under_lease(cy, g, host, note, action);
        }
        if matches!(
            action.as_ref().map(Action::inner),
            Some(Action::Delete { .. })
        ) {
            deletes += 1;
            if deletes > DELETES_PER_GROUP {
                action = None;
                note.to_mut().push_str(&format!(
                    "; deleted in a later cycle (at most {DELETES_PER_GROUP} a cycle)"
                ));
            }
        }
        d.consumers.push(ConsumerReport {
            stream: Arc::clone(&stream),
            group: Arc::clone(&group),
            consumer: Arc::clone(&c.name),
            unit: class.owner.map(|i| cy.cfg.watch[i].unit.clone()),
            liveness: class.liveness,
            current,
            pending: c.pending,
            idle_ms: c.idle_ms,
            severity,
            note,
        });
        d.actions.extend(action);
    }
}

type Outcome = (Severity, String, Option<Action>);

/// An outcome whose note may be a phrase of the program's own.
type Noted = (Severity, Cow<'static, str>, Option<Action>);

fn owned((s, note, a): Outcome) -> Noted {
    (s, note.into(), a)
}

/// A dead consumer, with what its recovery needs to know.
struct Dead<'a> {
    w: &'a crate::config::Watch,
    owner: usize,
    key: &'a GroupKey,
    c: &'a ConsumerInfo,
    why: &'a str,
}

impl Dead<'_> {
    fn claim(&self, to: String, policy: ClaimPolicy, to_active_ms: Option<u64>) -> Action {
        Action::Claim {
            unit: self.w.unit.clone(),
            key: self.key.clone(),
            from: self.c.name.to_string(),
            to,
            policy,
            pending: self.c.pending,
            to_active_ms,
            reason: self.reason(),
        }
    }

    fn reason(&self) -> String {
        format!(
            "dead consumer ({}) holding {} pending",
            self.why, self.c.pending
        )
    }
}

/// Rule 8: a dead consumer that holds nothing is deleted; its entries otherwise go by
/// `claim_policy`.
fn dead(
    cy: &Cycle<'_>,
    key: &GroupKey,
    c: &ConsumerInfo,
    class: &Class,
    targets: &BTreeMap<usize, Target>,
) -> Outcome {
    let owner = class.owner.expect("a dead consumer has an owning binding");
    let w = &cy.cfg.watch[owner];
    let why = &class.why;
    // A stop or restart job runs: the service's own stop logic may still be acking.
    if let Some(busy) = cy.deploys.get(&w.unit) {
        return (
            Severity::Ok,
            format!(
                "dead ({why}); {}: {}; recovered after that ends",
                w.unit, busy.why
            ),
            None,
        );
    }
    if c.pending == 0 {
        let a = Action::Delete {
            unit: Some(w.unit.clone()),
            key: key.clone(),
            consumer: c.name.to_string(),
            min_idle_ms: 0,
            reason: format!("dead consumer ({why}) holding nothing"),
        };
        return (
            Severity::Ok,
            format!("dead ({why}), holds nothing"),
            Some(a),
        );
    }
    let d = Dead {
        w,
        owner,
        key,
        c,
        why,
    };
    recovery_for(w.params.claim_policy, &d, targets)
}

/// One arm per claim policy.
fn recovery_for(policy: ClaimPolicy, d: &Dead<'_>, targets: &BTreeMap<usize, Target>) -> Outcome {
    let why = d.why;
    match policy {
        ClaimPolicy::Handoff => match handoff_target(d.owner, targets) {
            Some(t) => (
                Severity::Ok,
                format!("dead ({why}), handing off to {}", t.name),
                Some(d.claim(t.name.clone(), ClaimPolicy::Handoff, t.active_ms)),
            ),
            None => (
                Severity::Warning,
                format!(
                    "dead ({why}), {} pending wait for a live consumer of {}",
                    d.c.pending, d.w.unit
                ),
                None,
            ),
        },
        ClaimPolicy::Park => (
            Severity::Ok,
            format!("dead ({why}), parking its entries"),
            Some(d.claim(PARKED_CONSUMER.to_string(), ClaimPolicy::Park, None)),
        ),
        ClaimPolicy::Requeue => (
            Severity::Ok,
            format!("dead ({why}), requeueing its entries"),
            Some(Action::Requeue {
                unit: d.w.unit.clone(),
                key: d.key.clone(),
                from: d.c.name.to_string(),
                pending: d.c.pending,
                reason: d.reason(),
            }),
        ),
    }
}

/// The `zombie_after` of a group whose bindings are `idxs` (the longest of theirs), in ms.
pub fn zombie_after_ms(cy: &Cycle<'_>, idxs: &[usize]) -> u64 {
    idxs.iter()
        .map(|&i| cy.cfg.watch[i].params.zombie_after.as_millis())
        .max()
        .unwrap_or(cy.cfg.defaults.zombie_after.as_millis())
}

/// Rule 9: nobody's template accounts for it: deleted only when idle `zombie_after` and
/// holding nothing; one that holds entries is reported and kept.
fn zombie(cy: &Cycle<'_>, key: &GroupKey, idxs: &[usize], c: &ConsumerInfo) -> Noted {
    let zombie_ms = zombie_after_ms(cy, idxs);
    if c.idle_ms < zombie_ms {
        // Its idle time is on its row: the note says what would make it a zombie.
        let note = "unknown liveness; a zombie once idle zombie_after with nothing pending";
        return (Severity::Ok, note.into(), None);
    }
    owned(zombie_past(key, c, zombie_ms))
}

/// A consumer of unknown liveness idle `zombie_after` (`zombie_ms`).
fn zombie_past(key: &GroupKey, c: &ConsumerInfo, zombie_ms: u64) -> Outcome {
    let idle = fmt_ms(c.idle_ms);
    if c.pending > 0 {
        return (
            Severity::Warning,
            format!(
                "zombie of unknown liveness idle {idle}, kept: it holds {} pending",
                c.pending
            ),
            None,
        );
    }
    let a = Action::Delete {
        unit: None,
        key: key.clone(),
        consumer: c.name.to_string(),
        min_idle_ms: zombie_ms,
        reason: format!(
            "zombie of unknown liveness idle {idle} (zombie_after {}) holding nothing",
            fmt_ms(zombie_ms)
        ),
    };
    (
        Severity::Ok,
        format!("zombie idle {idle}, holds nothing"),
        Some(a),
    )
}
