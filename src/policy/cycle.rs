//! What one look sees, with the lookups every rule shares: the [`Cycle`], the watched groups
//! with their bindings ([`Groups`]), and the per-group tables the stages pass on. Data only: it
//! imports no rule.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::Config;
use crate::model::fleet::{FleetView, HostBeat};
use crate::model::hash::HashMap;
use crate::model::{GroupData, GroupKey, ReadError, Snapshot, UnitState};

use super::decision::Class;

/// What one cycle looks at: the configuration and the snapshot, with the lookups the rules
/// share.
pub struct Cycle<'a> {
    /// The configuration.
    pub cfg: &'a Config,
    /// The snapshot.
    pub snap: &'a Snapshot,
    /// The units systemd reported.
    pub units: &'a [UnitState],
    /// Units in a deploy's or an operator's hands (a job, NeedDaemonReload) for less than
    /// `deploy_hold`: not restarted, their consumers not recovered.
    pub deploys: BTreeMap<String, Deploy>,
    /// `units` by name.
    pub by_name: HashMap<&'a str, &'a UnitState>,
    /// The fleet's hosts by name, as read this cycle (`[fleet]`).
    pub hosts: HashMap<&'a str, &'a HostBeat>,
    /// The groups read, hashed (each is looked up several times a look).
    pub groups: HashMap<&'a GroupKey, &'a Result<GroupData, ReadError>>,
    /// Another agent writes under this host's name (`[fleet]`, a cloned machine): no consumer
    /// of this name is dead to this agent.
    pub shared_name: bool,
    /// The fleet's heartbeats as read this cycle, with those unchanged since the last read
    /// taken from memory (`[fleet]`).
    pub fleet: Option<&'a FleetView>,
}

/// A unit in a deploy's or an operator's hands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deploy {
    /// What systemd shows of it (a job, NeedDaemonReload).
    pub why: String,
    /// Until when it is held (`deploy_hold` after the agent first saw it; monotonic µs).
    pub until_mono_usec: u64,
}

impl<'a> Cycle<'a> {
    /// The look at `units` (those of `snap`) and the fleet's heartbeats, with their lookups;
    /// `deploys` and `shared_name` as the look's first stage found them.
    pub fn new(
        cfg: &'a Config,
        snap: &'a Snapshot,
        (units, fleet): (&'a [UnitState], Option<&'a FleetView>),
        (deploys, shared_name): (BTreeMap<String, Deploy>, bool),
    ) -> Self {
        Cycle {
            cfg,
            snap,
            units,
            deploys,
            by_name: units.iter().map(|u| (u.name.as_str(), u)).collect(),
            hosts: fleet_hosts(fleet),
            groups: snap
                .redis
                .as_ref()
                .map_or_else(|_| HashMap::default(), |r| r.groups.iter().collect()),
            shared_name,
            fleet,
        }
    }

    /// This host's name (`{hostname}`).
    pub fn host(&self) -> &str {
        &self.snap.hostname
    }

    /// The clock every duration is measured by: the snapshot's CLOCK_MONOTONIC µs. Wall-clock
    /// time (windows, pauses, key names) is `snap.now_usec`, read where it is meant.
    pub fn now(&self) -> u64 {
        self.snap.mono_usec
    }

    /// A unit systemd reported.
    pub fn unit(&self, name: &str) -> Option<&UnitState> {
        self.by_name.get(name).copied()
    }

    /// A unit's MainPID (0: none, or not loaded).
    pub fn main_pid(&self, name: &str) -> u32 {
        self.unit(name).map_or(0, |u| u.main_pid)
    }

    /// The unit a live PID runs in: `Some(None)` for none, `None` if it was not asked.
    pub fn unit_of_pid(&self, pid: u32) -> Option<Option<&str>> {
        self.snap.pid_units.get(&pid).map(|u| u.as_deref())
    }

    /// The fleet's heartbeats as read this cycle (`[fleet]`), if they could be read.
    pub fn fleet(&self) -> Option<&FleetView> {
        self.fleet
    }

    /// A watched group's data, or why it cannot be read: Redis's error, the group's own, or
    /// that the plan did not ask for it.
    pub fn group(&self, key: &GroupKey) -> Result<&GroupData, ReadError> {
        match &self.snap.redis {
            Err(e) => Err(e.clone()),
            Ok(_) => match self.groups.get(key) {
                Some(Ok(g)) => Ok(g),
                Some(Err(e)) => Err(e.clone()),
                None => Err(ReadError::Reply("not fetched".into())),
            },
        }
    }
}

/// The hosts of the heartbeats read, by name.
fn fleet_hosts(fleet: Option<&FleetView>) -> HashMap<&str, &HostBeat> {
    fleet
        .into_iter()
        .flat_map(|v| &v.hosts)
        .map(|h| (h.host.as_str(), h))
        .collect()
}

/// Per watched group read, each consumer's class, in the group's order.
pub type Classes<'c> = HashMap<&'c GroupKey, Vec<Class>>;

/// Per group, the live consumers that may receive a dead consumer's entries, by binding.
pub type Targets<'c> = HashMap<&'c GroupKey, BTreeMap<usize, Target>>;

/// Per group, the consumers the units' rows show (listed in the group).
pub type Current<'c> = HashMap<&'c GroupKey, BTreeSet<String>>;

/// Per watched `(stream, group)` (the configuration's own), its bindings; in key order, so a
/// reload that reorders the configuration changes no look's order.
#[derive(Debug, Default)]
pub struct Groups<'c>(Vec<(&'c GroupKey, Vec<usize>)>);

impl<'c> Groups<'c> {
    /// Each group with its bindings, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&'c GroupKey, &[usize])> + '_ {
        self.0.iter().map(|(k, v)| (*k, v.as_slice()))
    }

    /// The groups, in key order.
    pub fn keys(&self) -> impl Iterator<Item = &'c GroupKey> + '_ {
        self.0.iter().map(|(k, _)| *k)
    }

    /// Whether `key` is watched.
    pub fn contains_key(&self, key: &GroupKey) -> bool {
        self.0.binary_search_by(|(k, _)| (*k).cmp(key)).is_ok()
    }
}

/// The distinct `(stream, group)` pairs of the configuration, each with its bindings.
pub fn group_bindings(cfg: &Config) -> Groups<'_> {
    let mut all: Vec<(&GroupKey, usize)> = cfg.watch.iter().map(|w| w.key()).zip(0..).collect();
    // Stable: a group's bindings stay in the configuration's order.
    all.sort_by(|a, b| a.0.cmp(b.0));
    let mut out: Vec<(&GroupKey, Vec<usize>)> = Vec::new();
    for (key, i) in all {
        match out.last_mut() {
            Some((k, idxs)) if *k == key => idxs.push(i),
            _ => out.push((key, vec![i])),
        }
    }
    Groups(out)
}

/// A live consumer entries can be handed to: the current consumer of a unit that is running
/// and neither hung nor about to be restarted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Its name.
    pub name: String,
    /// Entries it holds (0 if it is not listed yet).
    pub pending: u64,
    /// When it last really read (the server's ms), not counting claims to it; `None`: the
    /// claim traces were not read this look.
    pub active_ms: Option<u64>,
}
