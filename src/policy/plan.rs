//! What to read from Redis this cycle ([`FetchPlan`]). The policy decides it from the
//! configuration, the units systemd reported and its memory; the Redis adapter runs the plan
//! and decides nothing.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{Config, FleetConfig};
use crate::model::consumer_name::NameMatch;
use crate::model::hash::HashMap;
use crate::model::plan::{FetchPlan, FleetPublish, GroupFetch, Scan, StreamInfoNeed};
use crate::model::{Clock, GroupKey, RedisSnapshot, UnitState, render_key};

use super::cycle::group_bindings;
use super::fleet::{FORGET_HOST_MS, digest, heartbeat};
use super::memory::Memory;
use super::verdict::Verdict;

/// The units systemd reported, by name.
type Units<'a> = crate::model::hash::HashMap<&'a str, &'a UnitState>;

/// Entries of a group's pending list read per cycle in search of poison entries.
pub const SCAN_CHUNK: usize = 500;

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

/// What to read of one group: its `XINFO` entries every look; its pending list (heads, the
/// poison scan, claim traces) only when it held entries at the last look or a process of it
/// died since.
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
    let died: Vec<String> = idxs
        .iter()
        .filter_map(|&i| died_name(cfg, hostname, units, mem, i))
        .collect();
    let pids = super::reuse::main_pids(cfg, idxs, |u| units.get(u).map_or(0, |u| u.main_pid));
    let known = died
        .is_empty()
        .then(|| super::reuse::offer(gm, &pids, mono_usec, cfg.fleet.enabled))
        .flatten();
    let mut fetch = GroupFetch {
        stream_info: match gm.is_some_and(|g| g.lag_known) {
            true => StreamInfoNeed::IfLagNull,
            false => StreamInfoNeed::Always,
        },
        heads: Vec::new(),
        scan: None,
        recheck: Vec::new(),
        lease: (cfg.fleet.enabled).then(|| FleetConfig::lease_key(&key.stream, &key.group)),
        known,
        claims: None,
        key,
    };
    // A group that held nothing at the last look holds no entry idle for hung_after now
    // (interval < hung_after) and no poison: its pending list waits for a cycle that needs it
    // — unless a process of it died since (what did it hold?).
    if gm.is_some_and(|g| g.quiet) && died.is_empty() {
        return fetch;
    }
    let key = &fetch.key;
    let mut heads: Vec<String> = idxs
        .iter()
        .filter_map(|&i| current_name(cfg, hostname, units, mem, i, key))
        .chain(died)
        .collect();
    heads.sort();
    heads.dedup();
    // Entries are pending: a claim may have reset a consumer's idle time since.
    fetch.claims = Some(crate::config::claims_key(&key.stream, &key.group));
    fetch.heads = heads;
    fetch.scan = Some(Scan {
        after: gm.and_then(|g| g.scan_after),
        count: SCAN_CHUNK,
    });
    fetch.recheck = gm.map_or_else(Vec::new, |g| g.suspects.iter().map(|e| e.id).collect());
    fetch
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

/// Units whose state the next look reads in full (`NeedDaemonReload`, which systemd signals
/// no change of): those in question — a verdict on its way to a restart, or a deploy under
/// way.
pub fn units_in_question(mem: &Memory) -> Vec<String> {
    mem.units
        .iter()
        .filter(|(_, m)| {
            m.deploy_since_usec != 0
                || m.verdict.as_ref().is_some_and(|v| {
                    !matches!(
                        v,
                        Verdict::Healthy
                            | Verdict::Starting
                            | Verdict::Inactive
                            | Verdict::NotFound
                    )
                })
        })
        .map(|(n, _)| n.clone())
        .collect()
}

/// PIDs carried by consumer names that fit a binding's template on this host, other than the
/// MainPID of the template's own unit (a consumer whose PID is its unit's MainPID is live by
/// rule 7 without a probe): the shell checks which of them are live processes before calling
/// [`decide`]. Matched once a look.
pub fn pids_to_probe(
    cfg: &Config,
    hostname: &str,
    redis: &RedisSnapshot,
    units: &[UnitState],
) -> BTreeSet<u32> {
    let mains: HashMap<&str, u32> = units
        .iter()
        .map(|u| (u.name.as_str(), u.main_pid))
        .collect();
    let mut out = BTreeSet::new();
    for w in &cfg.watch {
        let Some(Ok(g)) = redis.groups.get(w.key()) else {
            continue;
        };
        let main = mains.get(w.unit.as_str()).copied().unwrap_or(0);
        for c in &g.consumers {
            if let NameMatch::Pid(p) = w.consumer.matches(&c.name, hostname, &w.unit)
                && p != 0
                && p != main
            {
                out.insert(p);
            }
        }
    }
    out
}

/// The probed PIDs (from [`pids_to_probe`]: none is its own unit's MainPID) found live: the
/// shell asks systemd which unit each runs in (`GetUnitByPID`) before calling [`decide`].
pub fn pids_to_locate(probed: &BTreeSet<u32>, live: &BTreeMap<u32, bool>) -> BTreeSet<u32> {
    probed
        .iter()
        .copied()
        .filter(|p| live.get(p) == Some(&true))
        .collect()
}
