//! What to read from Redis in one cycle: the policy writes the plan, the Redis adapter runs it
//! in one pipelined round trip.
//!
//! Every command a plan holds is bounded in server time whatever the length of a pending
//! list: `XPENDING … - + 1 <consumer>` (a consumer's oldest entry) and `XPENDING … (after + N`
//! (a window of the group's pending list) seek in the list rather than walk it.

use std::sync::Arc;

use super::snapshot::{ConsumerInfo, GroupInfo, GroupKey, StreamId};

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

/// A quiet group's consumers as an earlier look read them: used instead of `XINFO CONSUMERS`
/// while the group's `XINFO GROUPS` entry is the same as then — nothing pending, nothing
/// delivered, no consumer created or deleted. Otherwise its consumers are read at once (a
/// second round trip, for that group alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownConsumers {
    /// The group's `XINFO GROUPS` entry when they were read.
    pub group: GroupInfo,
    /// Its `XINFO CONSUMERS` then.
    pub consumers: Vec<ConsumerInfo>,
    /// When (realtime µs).
    pub read_usec: u64,
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
    /// The group's recovery lease key, to read (`GET`), with `[fleet]`.
    pub lease: Option<String>,
    /// The group's claim traces key, to read with the server's time (see
    /// [`crate::model::ClaimTraces`]).
    pub claims: Option<String>,
    /// Its consumers as last read, if they may stand for this look's (see [`KnownConsumers`]);
    /// `None`: `XINFO CONSUMERS`.
    pub known: Option<Arc<KnownConsumers>>,
}

/// This host's heartbeat, written and every host's read in the cycle's round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetPublish {
    /// This host.
    pub host: String,
    /// The heartbeat, JSON; `None`: only read the others' (`status`, `recover`, `exec`).
    pub payload: Option<String>,
    /// Its time to live (ms).
    pub ttl_ms: u64,
    /// A host silent this long (ms) is forgotten.
    pub forget_ms: u64,
    /// This agent process (the heartbeat's meta).
    pub instance: String,
    /// The server's time of the look the heartbeat speaks of (the heartbeat's meta).
    pub as_of_ms: u64,
    /// The server's time of this reader's last complete read: heartbeats unchanged since are
    /// not copied (0: every one).
    pub since_ms: u64,
    /// The heartbeat is the one this agent last wrote: only its time to live is renewed.
    pub unchanged: bool,
    /// The heartbeat's digest (FNV-1a), kept in its meta.
    pub digest: u64,
}

/// The whole cycle's read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchPlan {
    /// Per watched group (`XINFO GROUPS`; `XINFO CONSUMERS` unless known).
    pub groups: Vec<GroupFetch>,
    /// Streams of `[[pipeline]]`s (`XINFO STREAM`, `XINFO GROUPS`).
    pub pipeline_streams: Vec<String>,
    /// Keys of `[[gauge]]`/`[[flag]]`, placeholders expanded (`GET`).
    pub keys: Vec<String>,
    /// The heartbeat to publish, with `[fleet]`.
    pub fleet: Option<FleetPublish>,
}
