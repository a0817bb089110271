//! What to read from Redis this cycle ([`FetchPlan`]). The policy decides it from the
//! configuration, the units systemd reported and its memory; the Redis adapter runs the plan
//! and decides nothing.

use crate::config::{Config, FleetConfig};
use crate::model::fleet::Heartbeat;
use crate::model::plan::{FetchPlan, FleetPublish, GroupFetch, Scan, StreamInfoNeed};
use crate::model::{Clock, GroupKey, UnitState, render_key};

use super::memory::Memory;

/// The units systemd reported, by name.
type Units<'a> = crate::model::hash::HashMap<&'a str, &'a UnitState>;

/// Entries of a group's pending list read per cycle in search of poison entries.
pub const SCAN_CHUNK: usize = 500;

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

/// The plan for this cycle. `units`: what systemd reported (empty if it could not be asked).
pub fn plan(
    cfg: &Config,
    hostname: &str,
    units: &[UnitState],
    mem: &Memory,
    clock: Clock,
) -> FetchPlan {
    let by_name: Units<'_> = units.iter().map(|u| (u.name.as_str(), u)).collect();
    let mono = clock.mono_usec;
    let groups = group_bindings(cfg)
        .iter()
        .map(|(key, idxs)| group_fetch(cfg, hostname, &by_name, mem, key.clone(), idxs, mono))
        .collect();
    FetchPlan {
        groups,
        pipeline_streams: pipeline_streams(cfg),
        keys: keys_to_fetch(cfg, clock.now_usec, clock.utc_offset_secs),
        fleet: cfg.fleet.enabled.then(|| fleet_publish(cfg, hostname, mem)),
    }
}

/// A host silent this long is dropped from the fleet's list of hosts.
pub const FORGET_HOST_MS: u64 = 7 * 24 * 3600 * 1000;

/// This host's heartbeat, as JSON: what the last look found of its own consumers. What changes
/// every look (its time) goes in the meta, so the heartbeat changes only when its word does.
pub fn heartbeat(cfg: &Config, hostname: &str, mem: &Memory) -> String {
    let beat = Heartbeat {
        host: hostname.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        interval_ms: cfg.interval.as_millis(),
        as_of_ms: 0,
        groups: mem.fleet.vouches.clone(),
        instance: mem.fleet.instance.clone(),
        shared: mem.fleet.shared,
    };
    serde_json::to_string(&beat).expect("a heartbeat serialises")
}

/// The digest of a heartbeat: whether it is the one last written.
pub fn digest(text: &str) -> u64 {
    crate::model::hash::fnv1a(text.as_bytes())
}

/// This host's heartbeat to publish (only after a complete look: one that vouches for nothing
/// would leave this host's consumers to the others' zombie rule), and what to read.
fn fleet_publish(cfg: &Config, hostname: &str, mem: &Memory) -> FleetPublish {
    let payload =
        (mem.fleet.publish && mem.fleet.as_of_ms > 0).then(|| heartbeat(cfg, hostname, mem));
    let digest = payload.as_deref().map_or(0, digest);
    FleetPublish {
        host: hostname.to_string(),
        unchanged: payload.is_some() && mem.fleet.sent == Some(digest),
        payload,
        digest,
        ttl_ms: FleetConfig::heartbeat_ttl(cfg.interval.0).as_millis() as u64,
        forget_ms: FORGET_HOST_MS,
        instance: mem.fleet.instance.clone(),
        as_of_ms: mem.fleet.as_of_ms,
        since_ms: mem.fleet.since_ms,
    }
}

/// The keys of `[[gauge]]`/`[[flag]]` to read (placeholders expanded).
pub fn keys_to_fetch(cfg: &Config, now_usec: u64, utc_offset_secs: i64) -> Vec<String> {
    let mut v: Vec<String> = cfg
        .gauge
        .iter()
        .map(|g| &g.key)
        .chain(cfg.flag.iter().map(|f| &f.key))
        .map(|k| render_key(k, now_usec, utc_offset_secs))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The streams of all pipelines.
pub fn pipeline_streams(cfg: &Config) -> Vec<String> {
    let mut v: Vec<String> = cfg
        .pipeline
        .iter()
        .flat_map(|p| p.streams.iter().cloned())
        .collect();
    v.sort();
    v.dedup();
    v
}

fn group_fetch(
    cfg: &Config,
    hostname: &str,
    units: &Units<'_>,
    mem: &Memory,
    key: GroupKey,
    idxs: &[usize],
    mono_usec: u64,
) -> GroupFetch {
    let gm = mem.groups.get(&key);
    let lease = cfg
        .fleet
        .enabled
        .then(|| FleetConfig::lease_key(&key.stream, &key.group));
    let stream_info = if gm.is_some_and(|g| g.lag_known) {
        StreamInfoNeed::IfLagNull
    } else {
        StreamInfoNeed::Always
    };
    let died: Vec<String> = idxs
        .iter()
        .filter_map(|&i| died_name(cfg, hostname, units, mem, i))
        .collect();
    let pids = super::reuse::main_pids(cfg, idxs, |u| units.get(u).map_or(0, |u| u.main_pid));
    let known = died
        .is_empty()
        .then(|| super::reuse::offer(gm, &pids, mono_usec, cfg.fleet.enabled))
        .flatten();
    // A group that held nothing at the last look holds no entry idle for hung_after now
    // (interval < hung_after) and no poison: its pending list waits for a cycle that needs it
    // — unless a process of it died since (what did it hold?).
    if gm.is_some_and(|g| g.quiet) && died.is_empty() {
        return GroupFetch {
            key,
            stream_info,
            heads: Vec::new(),
            scan: None,
            recheck: Vec::new(),
            lease,
            known,
            claims: None,
        };
    }
    let mut heads: Vec<String> = idxs
        .iter()
        .filter_map(|&i| current_name(cfg, hostname, units, mem, i, &key))
        .chain(died)
        .collect();
    heads.sort();
    heads.dedup();
    GroupFetch {
        stream_info,
        heads,
        scan: Some(Scan {
            after: gm.and_then(|g| g.scan_after),
            count: SCAN_CHUNK,
        }),
        recheck: gm.map_or_else(Vec::new, |g| g.suspects.iter().map(|e| e.id).collect()),
        lease,
        known,
        // Entries are pending: a claim may have reset a consumer's idle time since.
        claims: Some(crate::config::claims_key(&key.stream, &key.group)),
        key,
    }
}

/// With `poison_after_crashes`: the consumer the unit's process of the last look read under,
/// if that process has died since (its head is the entry it may have died on).
fn died_name(
    cfg: &Config,
    hostname: &str,
    units: &Units<'_>,
    mem: &Memory,
    i: usize,
) -> Option<String> {
    let w = &cfg.watch[i];
    w.params.poison_after_crashes?;
    let u = *units.get(w.unit.as_str())?;
    let old = mem.units.get(&w.unit)?.main_pid;
    (old != 0 && u.main_pid != 0 && old != u.main_pid)
        .then(|| w.consumer.render(hostname, old, &w.unit))
        .flatten()
}

/// The consumer binding `i` is expected to read under: the one judged last cycle if the
/// MainPID is unchanged, else the template rendered with the MainPID.
fn current_name(
    cfg: &Config,
    hostname: &str,
    units: &Units<'_>,
    mem: &Memory,
    i: usize,
    key: &GroupKey,
) -> Option<String> {
    let w = &cfg.watch[i];
    let u = *units.get(w.unit.as_str())?;
    let um = mem.units.get(&w.unit);
    match um.and_then(|m| m.consumer.get(key)) {
        Some(c) if um.is_some_and(|m| m.main_pid == u.main_pid) => Some(c.clone()),
        _ => w.consumer.render(hostname, u.main_pid, &w.unit),
    }
}
