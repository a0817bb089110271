//! What the policy remembers between cycles. Everything is keyed by names — unit, and
//! `(stream, group)` — never by a binding's position in the configuration, so a reload that
//! reorders `[[watch]]` entries keeps each binding's history with it. Every time in it is
//! CLOCK_MONOTONIC µs (the look's `mono_usec`), so that a wall-clock step changes no duration;
//! [`Memory::rebase`] carries it into another boot.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use crate::model::hash::HashMap;

use serde::{Deserialize, Serialize, Serializer};

use crate::model::plan::KnownConsumers;
use crate::model::{GroupKey, PendingEntry, StreamId};
use crate::model::{hashed_pairs, pairs};

use super::verdict::Verdict;

/// How many earlier MainPIDs of a unit are remembered.
pub const PID_HISTORY: usize = 32;
/// How many restart times of a unit are remembered (for `restart_budget`).
pub const RESTART_HISTORY: usize = 1000;
/// How many poison suspects of a group are remembered between scans.
pub const SUSPECTS: usize = 32;

/// What the agent remembers of a unit between cycles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UnitMemory {
    /// The verdict of the last cycle and how many cycles in a row it has held.
    pub verdict: Option<Verdict>,
    /// Consecutive cycles with `verdict`.
    pub streak: u32,
    /// When the agent issued restarts (kept for the longest budget window).
    pub restarts: Vec<u64>,
    /// The last of them.
    pub last_restart_usec: u64,
    /// The last look that found a systemd job queued or running for the unit (a deploy): its
    /// startup grace counts from then too.
    pub job_seen_usec: u64,
    /// A restart job is in flight: no new one until it ends.
    pub restart_in_flight: bool,
    /// The MainPID of the last look.
    pub main_pid: u32,
    /// Earlier MainPIDs, newest last.
    pub previous_pids: Vec<u32>,
    /// Per binding `(stream, group)`: since when work has been waiting.
    #[serde(with = "pairs")]
    pub work_since: BTreeMap<GroupKey, u64>,
    /// Per binding: the consumer judged as the unit's own at the last look.
    #[serde(with = "pairs")]
    pub consumer: BTreeMap<GroupKey, String>,
    /// `NRestarts` at the last look.
    pub n_restarts: u32,
    /// How its last main process ended, as last seen (`killed KILL`): the look after a quick
    /// restart sees the new process, whose own status is empty.
    pub last_exit_status: String,
    /// When `main_pid` was first seen as the MainPID.
    pub main_since_usec: u64,
    /// The first look of the current deploy (a job, NeedDaemonReload); 0 when none runs.
    pub deploy_since_usec: u64,
    /// The `reset-budget` note last seen (its wall-clock time) and when it was first seen on
    /// the monotonic clock.
    pub budget_reset: Option<(u64, u64)>,
    /// Per binding: the entry at the head of the consumer at the unit's last deaths
    /// (`poison_after_crashes`).
    #[serde(with = "pairs")]
    pub crash_heads: BTreeMap<GroupKey, CrashHead>,
}

/// What the agent remembers of a watched group between cycles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupMemory {
    /// The last `XINFO GROUPS` reported a lag (so `XINFO STREAM` is only needed if it turns null).
    pub lag_known: bool,
    /// The group held no pending entry at the last look.
    pub quiet: bool,
    /// Where the next scan of the group's pending list for poison entries starts (after this
    /// ID; `None`: from the beginning).
    pub scan_after: Option<StreamId>,
    /// Poison suspects found by earlier scans, re-checked every cycle.
    pub suspects: Vec<PendingEntry>,
    /// The group's consumers as last read while it was quiet (see the `reuse` rule); not kept
    /// across agent restarts.
    #[serde(skip)]
    pub known: Option<Known>,
}

/// Everything the policy remembers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Memory {
    /// Per unit (looked up by name several times a look: hashed, written in name order).
    #[serde(serialize_with = "in_key_order")]
    pub units: HashMap<String, UnitMemory>,
    /// Per watched `(stream, group)` (hashed as units are, written in key order).
    #[serde(with = "hashed_pairs")]
    pub groups: HashMap<GroupKey, GroupMemory>,
    /// Stream and group history for pipeline rates and stalls.
    pub flow: FlowMemory,
    /// Per stream: when the agent last found its server holding writes back. No
    /// consumer of it is blamed for the time until then: it could not read either.
    pub writes_held: BTreeMap<String, u64>,
    /// Streams whose server was found holding writes back and not yet seen serving them: the
    /// agent checks them again every cycle, so [`Memory::writes_held`] follows the whole hold.
    #[serde(default)]
    pub writes_held_open: BTreeSet<String>,
    /// What this host's next heartbeat says.
    #[serde(skip)]
    pub fleet: FleetMemory,
}

/// What this host's next heartbeat says: the last look's vouches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetMemory {
    /// This process publishes the host's heartbeat (the agent; not `status`, `recover`, `exec`).
    pub publish: bool,
    /// The server's time (ms) of the look.
    pub as_of_ms: u64,
    /// Per group judged: the consumers of this host not found dead.
    pub vouches: Vec<crate::model::fleet::Vouch>,
    /// Another agent writes under this host's name, as the last look found (published).
    pub shared: bool,
    /// The heartbeats this reader has, by host, and the server's time of the read they are
    /// complete as of (0: none; the next read copies every heartbeat).
    pub beats: BTreeMap<String, std::sync::Arc<crate::model::fleet::Heartbeat>>,
    /// See [`FleetMemory::beats`].
    pub since_ms: u64,
    /// The digest of the heartbeat this agent last wrote and found standing: while it is the
    /// same, only its time to live is renewed.
    pub sent: Option<u64>,
    /// The server's time (ms) of this agent's last read of the heartbeats.
    pub last_read_ms: u64,
    /// Per host whose heartbeat is gone: the server's time (ms) of the first of this agent's
    /// unbroken reads that found it gone.
    pub silent_since: BTreeMap<String, u64>,
    /// This agent process (random at its start), written in its heartbeats.
    pub instance: String,
    /// The agent process before it on this host (from the state file): its heartbeat under
    /// this host's name is no other agent's.
    pub predecessor: String,
    /// Per host (this one included): the instance of its last heartbeat read, and the server's
    /// times (ms) it was seen to change — twice within `fleet::SHARED_WINDOW_BEATS`
    /// intervals, two agents write under that name.
    pub instances: BTreeMap<String, InstanceWatch>,
}

/// Which agent writes a host's heartbeat, as this agent's reads have seen it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceWatch {
    /// The instance last seen.
    pub last: String,
    /// The instances seen lately, with when last (server ms); at most 8.
    pub seen: std::collections::VecDeque<(String, u64)>,
    /// The recent evidence of a second writer (server ms; see `fleet::observe_instances`).
    pub changes: std::collections::VecDeque<u64>,
}

impl InstanceWatch {
    /// `instance` seen at `now`; what is older than `window` ms forgotten.
    pub fn saw(&mut self, instance: &str, now: u64, window: u64) {
        self.last = instance.to_string();
        self.seen.retain(|(i, _)| i != instance);
        self.seen.push_back((instance.to_string(), now));
        if self.seen.len() > 8 {
            self.seen.pop_front();
        }
        let old = |t: &u64| t.saturating_add(window) < now;
        self.seen.retain(|(_, t)| !old(t));
        while self.changes.front().is_some_and(old) {
            self.changes.pop_front();
        }
    }
}

/// A stream's history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamHistory {
    /// (time µs, entries added — or length on servers before 7.0)
    pub samples: VecDeque<(u64, u64)>,
}

/// A group's history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupHistory {
    /// Its last-delivered ID at the last look.
    pub last_delivered: String,
    /// When the delivery position last moved (µs).
    pub moved_usec: u64,
    /// (time µs, entries read — or 0 where the server has no entries-read)
    pub samples: VecDeque<(u64, u64)>,
}

/// Stream and group history for pipeline rates and stalls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlowMemory {
    /// Per stream.
    pub streams: BTreeMap<String, StreamHistory>,
    /// Per `stream\0group`.
    pub groups: BTreeMap<String, GroupHistory>,
}

impl FlowMemory {
    /// Applies `f` to every time in the history (see `Memory::rebase`).
    pub fn rebase(&mut self, f: &impl Fn(&mut u64)) {
        for s in self.streams.values_mut() {
            s.samples.iter_mut().for_each(|(t, _)| f(t));
        }
        for g in self.groups.values_mut() {
            f(&mut g.moved_usec);
            g.samples.iter_mut().for_each(|(t, _)| f(t));
        }
    }
}

/// The entry at the head of a unit's consumer at its last deaths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashHead {
    /// The entry.
    pub id: StreamId,
    /// Consecutive deaths it was the head at, each after a read of it.
    pub deaths: u32,
    /// Its delivery count at the last of them.
    #[serde(default)]
    pub deliveries: u64,
}

/// A quiet group's consumers as last read.
#[derive(Debug, Clone, PartialEq)]
pub struct Known {
    /// What was read.
    pub read: Arc<KnownConsumers>,
    /// They are read again at the first look from then on (realtime µs).
    pub reread_usec: u64,
    /// The MainPIDs of the group's bound units then, in binding order.
    pub main_pids: Vec<u32>,
    /// The server's time (ms) of the look that read them, with `[fleet]`; else 0.
    pub fleet_ms: u64,
}

/// A hashed map written in key order, so the state file reads the same however it was filled.
fn in_key_order<V: Serialize, S: Serializer>(
    m: &HashMap<String, V>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(m.iter().collect::<BTreeMap<_, _>>())
}

impl Memory {
    /// What is remembered of a unit, new if nothing was: the name is copied only then (a look
    /// finds nearly every unit and group remembered already).
    pub fn unit_mut(&mut self, name: &str) -> &mut UnitMemory {
        if !self.units.contains_key(name) {
            self.units.insert(name.to_string(), UnitMemory::default());
        }
        self.units.get_mut(name).expect("inserted above")
    }

    /// What is remembered of a group, new if nothing was.
    pub fn group_mut(&mut self, key: &GroupKey) -> &mut GroupMemory {
        if !self.groups.contains_key(key) {
            self.groups.insert(key.clone(), GroupMemory::default());
        }
        self.groups.get_mut(key).expect("inserted above")
    }

    /// Records a restart the agent issued (enforce mode): it counts against the budget and
    /// starts a new grace period.
    pub fn note_restart(&mut self, unit: &str, now_usec: u64) {
        let m = self.unit_mut(unit);
        m.restarts.push(now_usec);
        // Far more than any budget window needs; keeps a flapping unit's history bounded.
        if m.restarts.len() > RESTART_HISTORY {
            m.restarts.remove(0);
        }
        m.last_restart_usec = now_usec;
        m.restart_in_flight = true;
        m.streak = 0;
        m.verdict = None;
    }

    /// The restart job ended (done, failed, or timed out).
    pub fn note_restart_finished(&mut self, unit: &str) {
        if let Some(m) = self.units.get_mut(unit) {
            m.restart_in_flight = false;
        }
    }

    /// Records that the server of `stream` held writes back at `at_usec` (a restart's check).
    pub fn note_writes_held(&mut self, stream: &str, at_usec: u64) {
        self.writes_held.insert(stream.to_string(), at_usec);
        self.writes_held_open.insert(stream.to_string());
    }

    /// Records that the server of `stream` serves writes again (the hold ended before now).
    pub fn note_writes_served(&mut self, stream: &str) {
        self.writes_held_open.remove(stream);
    }

    /// Forgets what is tied to process IDs: after a reboot the same PIDs name other processes.
    pub fn forget_pids(&mut self) {
        for m in self.units.values_mut() {
            m.main_pid = 0;
            m.previous_pids.clear();
            m.restart_in_flight = false;
            m.consumer.clear();
        }
    }

    /// Moves every time remembered by `shift` µs (a state written in another boot, or as
    /// realtime µs by an earlier version), kept within `[1, now]`: 0 still means "never", and
    /// nothing lies ahead of the clock it is now read by.
    pub fn rebase(&mut self, shift: i128, now: u64) {
        let f = |t: &mut u64| {
            if *t != 0 {
                *t = (i128::from(*t) + shift).clamp(1, i128::from(now.max(1))) as u64;
            }
        };
        for m in self.units.values_mut() {
            m.restarts.iter_mut().for_each(f);
            for t in [
                &mut m.last_restart_usec,
                &mut m.job_seen_usec,
                &mut m.main_since_usec,
                &mut m.deploy_since_usec,
            ] {
                f(t);
            }
            m.work_since.values_mut().for_each(f);
            if let Some((_, mono)) = &mut m.budget_reset {
                f(mono);
            }
        }
        self.writes_held.values_mut().for_each(f);
        self.flow.rebase(&f);
    }

    /// Restarts of `unit` within the last `within_usec`, not counting those up to `reset_usec`
    /// (`reset-budget`).
    pub fn restarts_within(
        &self,
        unit: &str,
        now_usec: u64,
        within_usec: u64,
        reset_usec: u64,
    ) -> u32 {
        self.units.get(unit).map_or(0, |m| {
            m.restarts
                .iter()
                .filter(|&&t| t.saturating_add(within_usec) > now_usec && t > reset_usec)
                .count() as u32
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_round_trips_through_json() {
        let mut m = Memory::default();
        let k = GroupKey {
            stream: "s".into(),
            group: "g".into(),
        };
        m.units
            .entry("u.service".into())
            .or_default()
            .work_since
            .insert(k.clone(), 7);
        m.note_writes_held("s", 5);
        let j = serde_json::to_string(&m).unwrap();
        let back: Memory = serde_json::from_str(&j).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn restart_window_does_not_overflow() {
        let mut m = Memory::default();
        m.note_restart("u", 10);
        assert_eq!(m.restarts_within("u", 20, u64::MAX, 0), 1);
    }
}
