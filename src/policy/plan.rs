//! What to read from Redis this cycle. The policy decides it from the configuration, the
//! units systemd reported and its memory; the Redis adapter runs the plan in one pipelined
//! round trip and decides nothing.
//!
//! Every command in a plan is bounded in server time whatever the size of a pending list:
//! `XPENDING … - + 1 <consumer>` (a consumer's oldest entry) and `XPENDING … (after + N` (a
//! window of the group's pending list) seek in the list rather than walk it.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::model::{GroupKey, StreamId, UnitState};

use super::memory::Memory;

/// Entries of a group's pending list read per cycle in search of poison entries.
pub const SCAN_CHUNK: usize = 500;

/// When `XINFO STREAM` is needed for a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamInfoNeed {
    /// The lag was null (or not seen yet): the stream's last ID decides "work waiting".
    Always,
    /// The lag was known: only if this cycle's `XINFO GROUPS` reports it null.
    IfLagNull,
}

/// A window of a group's pending list: `XPENDING key group (after + count` (`-` without after).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// Start after this ID; `None`: from the beginning.
    pub after: Option<StreamId>,
    /// At most this many entries.
    pub count: usize,
}

/// What to read of one watched `(stream, group)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFetch {
    /// The group.
    pub key: GroupKey,
    /// `XINFO STREAM`.
    pub stream_info: StreamInfoNeed,
    /// Consumers whose oldest pending entry to read (`XPENDING key group - + 1 consumer`).
    pub heads: Vec<String>,
    /// A window of the group's pending list, for poison entries.
    pub scan: Option<Scan>,
    /// Suspects to re-check (`XPENDING key group id id 1`).
    pub recheck: Vec<StreamId>,
}

/// The whole cycle's read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchPlan {
    /// Per watched group (`XINFO GROUPS`, `XINFO CONSUMERS` always).
    pub groups: Vec<GroupFetch>,
    /// Streams of `[[pipeline]]`s (`XINFO STREAM`, `XINFO GROUPS`).
    pub pipeline_streams: Vec<String>,
    /// Keys of `[[gauge]]`/`[[flag]]`, placeholders expanded (`GET`).
    pub keys: Vec<String>,
}

/// The distinct `(stream, group)` pairs of the configuration, each with its bindings.
pub fn group_bindings(cfg: &Config) -> BTreeMap<GroupKey, Vec<usize>> {
    let mut m: BTreeMap<GroupKey, Vec<usize>> = BTreeMap::new();
    for (i, w) in cfg.watch.iter().enumerate() {
        m.entry(w.key()).or_default().push(i);
    }
    m
}

/// The plan for this cycle. `units`: what systemd reported (empty if it could not be asked).
pub fn plan(
    cfg: &Config,
    hostname: &str,
    units: &[UnitState],
    mem: &Memory,
    now_usec: u64,
    utc_offset_secs: i64,
) -> FetchPlan {
    let groups = group_bindings(cfg)
        .into_iter()
        .map(|(key, idxs)| group_fetch(cfg, hostname, units, mem, key, &idxs))
        .collect();
    FetchPlan {
        groups,
        pipeline_streams: crate::pipeline::pipeline_streams(cfg),
        keys: crate::pipeline::keys_to_fetch(cfg, now_usec, utc_offset_secs),
    }
}

fn group_fetch(
    cfg: &Config,
    hostname: &str,
    units: &[UnitState],
    mem: &Memory,
    key: GroupKey,
    idxs: &[usize],
) -> GroupFetch {
    let gm = mem.groups.get(&key);
    let stream_info = if gm.is_some_and(|g| g.lag_known) {
        StreamInfoNeed::IfLagNull
    } else {
        StreamInfoNeed::Always
    };
    // A group that held nothing at the last look holds no entry idle for hung_after now
    // (interval < hung_after) and no poison: its pending list waits for a cycle that needs it.
    if gm.is_some_and(|g| g.quiet) {
        return GroupFetch {
            key,
            stream_info,
            heads: Vec::new(),
            scan: None,
            recheck: Vec::new(),
        };
    }
    let mut heads: Vec<String> = idxs
        .iter()
        .filter_map(|&i| current_name(cfg, hostname, units, mem, i, &key))
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
        key,
    }
}

/// The consumer binding `i` is expected to read under: the one judged last cycle if the
/// MainPID is unchanged, else the template rendered with the MainPID.
fn current_name(
    cfg: &Config,
    hostname: &str,
    units: &[UnitState],
    mem: &Memory,
    i: usize,
    key: &GroupKey,
) -> Option<String> {
    let w = &cfg.watch[i];
    let u = units.iter().find(|u| u.name == w.unit)?;
    let um = mem.units.get(&w.unit);
    match um.and_then(|m| m.consumer.get(key)) {
        Some(c) if um.is_some_and(|m| m.main_pid == u.main_pid) => Some(c.clone()),
        _ => w.consumer.render(hostname, u.main_pid, &w.unit),
    }
}
