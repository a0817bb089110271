//! The snapshot the policy judges: what systemd and Redis said in one cycle, and the clock.
//! Plain data, filled by the adapters, read by the policy.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why something could not be read this cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", content = "message", rename_all = "kebab-case")]
pub enum ReadError {
    /// The bus or the server cannot be reached (refused, dropped, reconnecting).
    #[error("{0}")]
    Unreachable(String),
    /// A call took longer than its timeout.
    #[error("{0}")]
    Timeout(String),
    /// Refused for lack of rights (polkit, ACL `NOPERM`).
    #[error("{0}")]
    Denied(String),
    /// The server answered with an error (`NOGROUP`, `WRONGTYPE`, no such key, …).
    #[error("{0}")]
    Server(String),
    /// The reply had an unexpected shape.
    #[error("{0}")]
    Reply(String),
}

/// A stream entry ID `ms-seq`, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    /// The millisecond part.
    pub ms: u64,
    /// The sequence part.
    pub seq: u64,
}

impl FromStr for StreamId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (ms, seq) = s.split_once('-').unwrap_or((s, "0"));
        Ok(StreamId {
            ms: ms.parse().map_err(|_| format!("bad stream ID {s:?}"))?,
            seq: seq.parse().map_err(|_| format!("bad stream ID {s:?}"))?,
        })
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl Serialize for StreamId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StreamId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A systemd string that names one of a few states, kept as its own word where systemd adds
/// one this code does not know.
macro_rules! systemd_state {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
            /// A state this code does not know, as systemd said it.
            Other(String),
        }

        impl $name {
            /// The word systemd uses.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $($text => $name::$variant,)+
                    other => $name::Other(other.to_string()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok(String::deserialize(d)?.as_str().into())
            }
        }
    };
}

systemd_state! {
    /// A unit's `ActiveState`.
    ActiveState {
        /// Started and running.
        Active = "active",
        /// Reloading its configuration (still up).
        Reloading = "reloading",
        /// Stopped.
        Inactive = "inactive",
        /// Stopped after a failure.
        Failed = "failed",
        /// Starting.
        Activating = "activating",
        /// Stopping.
        Deactivating = "deactivating",
    }
}

systemd_state! {
    /// A unit's `LoadState`.
    LoadState {
        /// Its unit file was loaded.
        Loaded = "loaded",
        /// No unit file.
        NotFound = "not-found",
        /// Masked.
        Masked = "masked",
        /// Loading failed.
        Error = "error",
    }
}

impl ActiveState {
    /// Up for our purposes: active, or reloading.
    pub fn is_up(&self) -> bool {
        matches!(self, ActiveState::Active | ActiveState::Reloading)
    }
}

/// One unit as systemd reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitState {
    /// The unit's name.
    pub name: String,
    /// `LoadState`.
    pub load_state: LoadState,
    /// `ActiveState`.
    pub active_state: ActiveState,
    /// `SubState` (`running`, `start-pre`, …).
    pub sub_state: String,
    /// 0 when the unit has no main process.
    pub main_pid: u32,
    /// `ActiveEnterTimestampMonotonic`: CLOCK_MONOTONIC microseconds, the clock of
    /// [`Snapshot::mono_usec`]; 0 if never active. Monotonic so that a step of the wall clock
    /// neither stretches nor cuts the startup grace.
    pub active_enter_mono_usec: u64,
    /// The service's `Result` (`success`, `start-limit-hit`, `watchdog`, …); empty for non-services.
    pub result: String,
    /// The type of the job queued or running for it (`restart`, `stop`, `start`, …): a
    /// deploy, an operator, or the agent's own restart.
    #[serde(default)]
    pub job: Option<String>,
    /// `NRestarts`: restarts by systemd's `Restart=` (each one a death of the service).
    #[serde(default)]
    pub n_restarts: u32,
    /// How its last main process ended (`ExecMainCode`/`ExecMainStatus`): `exited 1`,
    /// `killed KILL`, `dumped ABRT`; empty while it runs its first.
    #[serde(default)]
    pub exit_status: String,
    /// `NeedDaemonReload`: its unit file changed on disk and systemd has not reloaded it (a
    /// deploy under way). Read for bound units that are up.
    #[serde(default)]
    pub need_daemon_reload: bool,
    /// It runs under `quantum-watchdog exec` with `WatchdogSec=`: systemd's watchdog restarts
    /// it, never the agent.
    #[serde(default)]
    pub exec_watchdog: bool,
}

impl UnitState {
    /// A loaded unit, active and running with `main_pid` since `active_enter_mono_usec`, and
    /// nothing else to tell: no job, no restart, no exit yet.
    pub fn running(name: &str, main_pid: u32, active_enter_mono_usec: u64) -> UnitState {
        UnitState {
            name: name.to_string(),
            load_state: LoadState::Loaded,
            active_state: ActiveState::Active,
            sub_state: "running".into(),
            main_pid,
            active_enter_mono_usec,
            result: "success".into(),
            job: None,
            n_restarts: 0,
            exit_status: String::new(),
            need_daemon_reload: false,
            exec_watchdog: false,
        }
    }

    /// Why the unit is in someone's hands now, if it is: a systemd job queued or running (a
    /// deploy's restart, an operator's stop, the agent's own restart) or a unit file changed
    /// and not reloaded yet. Such a unit is not judged, and its consumers are not recovered.
    pub fn deploying(&self) -> Option<String> {
        match (&self.job, self.need_daemon_reload) {
            (Some(job), _) => Some(format!("a {job} job is queued or running")),
            (None, true) => Some(
                "its unit file changed on disk and is not reloaded yet (NeedDaemonReload)".into(),
            ),
            (None, false) => None,
        }
    }

    /// Active, running, with a main process: its consumers can take work.
    pub fn is_running(&self) -> bool {
        self.active_state.is_up() && self.sub_state == "running" && self.main_pid != 0
    }
}

/// How a systemd job ended (`JobRemoved`'s result): only `done` is a success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobResult {
    /// The job ran to its end.
    Done,
    /// Another job replaced it, or it was cancelled.
    Canceled,
    /// It took longer than the unit allows.
    Timeout,
    /// The unit failed.
    Failed,
    /// A unit it depends on failed.
    Dependency,
    /// It did not apply (a stop of a stopped unit).
    Skipped,
    /// A result this build does not know, as systemd said it.
    Other(String),
}

impl JobResult {
    /// systemd's word for it.
    pub fn parse(s: &str) -> JobResult {
        match s {
            "done" => JobResult::Done,
            "canceled" => JobResult::Canceled,
            "timeout" => JobResult::Timeout,
            "failed" => JobResult::Failed,
            "dependency" => JobResult::Dependency,
            "skipped" => JobResult::Skipped,
            other => JobResult::Other(other.to_string()),
        }
    }

    /// The word systemd uses.
    pub fn as_str(&self) -> &str {
        match self {
            JobResult::Done => "done",
            JobResult::Canceled => "canceled",
            JobResult::Timeout => "timeout",
            JobResult::Failed => "failed",
            JobResult::Dependency => "dependency",
            JobResult::Skipped => "skipped",
            JobResult::Other(s) => s,
        }
    }
}

impl std::fmt::Display for JobResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `XINFO STREAM` (the fields the policy needs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamInfo {
    /// 0 when not asked (the group's lag was known).
    pub length: u64,
    /// The group's last-delivered ID when not asked: then the lag is known and decides.
    pub last_generated_id: StreamId,
    /// From Redis 7.0.
    pub entries_added: Option<u64>,
}

/// One entry of `XINFO GROUPS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    /// The group's name.
    pub name: String,
    /// Its consumers.
    pub consumers: u64,
    /// Entries delivered and not acknowledged.
    pub pending: u64,
    /// The last ID delivered to any of its consumers.
    pub last_delivered_id: StreamId,
    /// From Redis 7.0; may be null.
    pub entries_read: Option<u64>,
    /// From Redis 7.0; null when Redis cannot tell (arbitrary SETID, deleted or trimmed entries).
    pub lag: Option<u64>,
}

/// One entry of `XINFO CONSUMERS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerInfo {
    /// The consumer's name (shared: reports and reused reads refer to it, not copy it).
    pub name: std::sync::Arc<str>,
    /// Entries it holds.
    pub pending: u64,
    /// Before 7.2: since the last read that returned entries. From 7.2: since the last attempt.
    pub idle_ms: u64,
    /// From 7.2: since the last read that returned entries (-1: never). `None` on older servers.
    pub inactive_ms: Option<i64>,
}

/// One pending entry (extended `XPENDING`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingEntry {
    /// The entry.
    pub id: StreamId,
    /// Who holds it.
    pub consumer: String,
    /// Since its last delivery.
    pub idle_ms: u64,
    /// How often it was delivered.
    pub deliveries: u64,
}

/// A window of a group's pending list, as the plan asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanReply {
    /// The window started after this ID (`None`: at the beginning).
    pub after: Option<StreamId>,
    /// It asked for at most this many entries.
    pub count: usize,
    /// What the list held there.
    pub entries: Vec<PendingEntry>,
}

/// Everything Redis said about one `(stream, group)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupData {
    /// The stream.
    pub stream: StreamInfo,
    /// The group.
    pub group: GroupInfo,
    /// Its consumers.
    pub consumers: Vec<ConsumerInfo>,
    /// The oldest pending entry of each consumer the plan asked about (`None`: it holds none).
    #[serde(default)]
    pub heads: BTreeMap<String, Option<PendingEntry>>,
    /// The window of the pending list read for poison entries, if the plan asked for one.
    #[serde(default)]
    pub scan: Option<ScanReply>,
    /// The suspects the plan asked to re-check that are still pending (`None`: not asked).
    #[serde(default)]
    pub rechecked: Option<Vec<PendingEntry>>,
    /// The group's recovery lease (`<host>/<token>`), when the plan asked and one is held.
    #[serde(default)]
    pub lease: Option<String>,
    /// When `consumers` were read (realtime µs) if not in this look: a quiet group's earlier
    /// `XINFO CONSUMERS`, used because its `XINFO GROUPS` entry is still what it was then
    /// (see [`crate::model::plan::KnownConsumers`]). `None`: read in this look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumers_read_usec: Option<u64>,
    /// The group's claim traces, by recipient, when the plan asked for them: whoever claimed
    /// entries to a live consumer (the agent, `recover`, a wrapper, another host's agent) left
    /// when, and when the recipient last really read before it. `None`: not read this look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<ClaimTraces>,
}

/// A group's claim traces with the server's time they were read at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimTraces {
    /// The server's time (ms) of the read: the clock of the traces and of `idle`.
    pub now_ms: u64,
    /// By recipient.
    pub by_consumer: BTreeMap<String, ClaimTrace>,
    /// Why the traces could not be read (another client's key there, too many fields):
    /// claims are then not told from progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One recipient's last claim (server ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimTrace {
    /// When entries were last claimed to it.
    pub at_ms: u64,
    /// When it last read before the first of the claims since its last read.
    pub active_ms: u64,
}

impl GroupInfo {
    /// Entries of `stream` not yet delivered to any consumer of the group: the lag, or where
    /// Redis reports it null, the last-delivered ID behind the stream's last ID.
    pub fn work_waiting(&self, stream: &StreamInfo) -> bool {
        match self.lag {
            Some(lag) => lag > 0,
            None => self.last_delivered_id < stream.last_generated_id,
        }
    }
}

impl GroupData {
    /// Entries not yet delivered to any consumer of the group.
    pub fn work_waiting(&self) -> bool {
        self.group.work_waiting(&self.stream)
    }

    /// A consumer of the group by name.
    pub fn consumer(&self, name: &str) -> Option<&ConsumerInfo> {
        self.consumers.iter().find(|c| &*c.name == name)
    }
}

/// A stream and one of its consumer groups: what a binding reads.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupKey {
    /// The stream.
    pub stream: String,
    /// The group.
    pub group: String,
}

/// What Redis said in one pipelined round trip.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedisSnapshot {
    /// Per distinct `(stream, group)`: its data, or the error that binding gets (NOGROUP, …).
    #[serde(with = "pairs")]
    pub groups: BTreeMap<GroupKey, Result<GroupData, ReadError>>,
    /// Per pipeline stream: `XINFO STREAM` and all its groups (`XINFO GROUPS`).
    #[serde(default)]
    pub streams: BTreeMap<String, Result<(StreamInfo, Vec<GroupInfo>), ReadError>>,
    /// Per key of `[[gauge]]`/`[[flag]]` (placeholders expanded): its value, `None` if absent.
    #[serde(default)]
    pub keys: BTreeMap<String, Result<Option<String>, ReadError>>,
    /// The fleet's heartbeats (`[fleet]` enabled), or why they could not be read.
    #[serde(default)]
    pub fleet: Option<Result<super::fleet::FleetView, ReadError>>,
}

/// One cycle's view of the world.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Realtime clock, microseconds since the epoch: for what is wall-clock time by nature
    /// (maintenance windows, pauses until a time, `{date}` in key names, what a person reads).
    pub now_usec: u64,
    /// CLOCK_MONOTONIC, microseconds (systemd's `…TimestampMonotonic` clock): every duration
    /// the policy measures (grace, streaks, claim marks, write holds, budgets, deploys), so
    /// that a step of the wall clock in either direction changes none of them.
    pub mono_usec: u64,
    /// This host's name (`{hostname}`).
    pub hostname: String,
    /// The agent's own unit: never acted on.
    pub self_unit: Option<String>,
    /// Units matching the watched patterns, or why systemd could not be asked.
    pub units: Result<Vec<UnitState>, ReadError>,
    /// What Redis said, or why it could not be read.
    pub redis: Result<RedisSnapshot, ReadError>,
    /// Liveness of the PIDs found in consumer names (true: a process exists, EPERM included).
    #[serde(default)]
    pub live_pids: BTreeMap<u32, bool>,
    /// The unit each live PID asked about runs in (`None`: none); a PID systemd could not be
    /// asked about is absent.
    #[serde(default)]
    pub pid_units: BTreeMap<u32, Option<String>>,
    /// The local time zone's offset from UTC, seconds (for `{date}` in key names).
    #[serde(default)]
    pub utc_offset_secs: i64,
    /// Pauses, open maintenance windows, budget resets.
    #[serde(default)]
    pub holds: crate::model::holds::Holds,
}

impl Snapshot {
    /// The look's clocks.
    pub fn clock(&self) -> super::Clock {
        super::Clock {
            now_usec: self.now_usec,
            mono_usec: self.mono_usec,
            utc_offset_secs: self.utc_offset_secs,
        }
    }

    /// The fleet's heartbeats as read this cycle (`[fleet]` and Redis read), or why not.
    pub fn fleet_read(&self) -> Option<Result<&super::fleet::FleetView, &ReadError>> {
        Some(self.redis.as_ref().ok()?.fleet.as_ref()?.as_ref())
    }

    /// The fleet's heartbeats as read this cycle (`[fleet]`), if they could be read.
    pub fn fleet(&self) -> Option<&super::fleet::FleetView> {
        self.redis.as_ref().ok()?.fleet.as_ref()?.as_ref().ok()
    }
}

/// Serialises a map with structured keys as a list of `[key, value]` pairs (JSON object keys
/// must be strings).
pub mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Writes the map as pairs.
    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        m: &BTreeMap<K, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter())
    }

    /// Reads pairs back into a map.
    pub fn deserialize<'de, K, V, D>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

/// [`pairs`] for a hashed map: written in key order, so the file reads the same however the map
/// was filled.
pub mod hashed_pairs {
    use crate::model::hash::HashMap;
    use std::hash::Hash;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Writes the map as pairs, in key order.
    pub fn serialize<K: Serialize + Ord, V: Serialize, S: Serializer>(
        m: &HashMap<K, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut v: Vec<(&K, &V)> = m.iter().collect();
        v.sort_unstable_by(|a, b| a.0.cmp(b.0));
        s.collect_seq(v)
    }

    /// Reads pairs back into a map.
    pub fn deserialize<'de, K, V, D>(d: D) -> Result<HashMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Eq + Hash,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_order_numerically() {
        let a: StreamId = "1700000000000-9".parse().unwrap();
        let b: StreamId = "1700000000000-10".parse().unwrap();
        assert!(a < b);
        assert_eq!(b.to_string(), "1700000000000-10");
        assert_eq!("5".parse::<StreamId>().unwrap(), StreamId { ms: 5, seq: 0 });
        assert!("x-1".parse::<StreamId>().is_err());
    }

    #[test]
    fn work_waiting_uses_lag_then_ids() {
        let mut g = GroupData {
            stream: StreamInfo {
                length: 3,
                last_generated_id: StreamId { ms: 3, seq: 0 },
                entries_added: Some(3),
            },
            group: GroupInfo {
                name: "g".into(),
                consumers: 0,
                pending: 0,
                last_delivered_id: StreamId { ms: 3, seq: 0 },
                entries_read: Some(3),
                lag: Some(0),
            },
            consumers: vec![],
            heads: BTreeMap::new(),
            scan: None,
            rechecked: None,
            lease: None,
            consumers_read_usec: None,
            claims: None,
        };
        assert!(!g.work_waiting());
        g.group.lag = Some(2);
        assert!(g.work_waiting());
        g.group.lag = None;
        assert!(!g.work_waiting(), "null lag, delivered up to the last id");
        g.group.last_delivered_id = StreamId { ms: 2, seq: 0 };
        assert!(
            g.work_waiting(),
            "null lag, last delivered behind the stream"
        );
    }

    #[test]
    fn systemd_states_keep_words_they_do_not_know() {
        assert_eq!(ActiveState::from("active"), ActiveState::Active);
        assert!(ActiveState::from("reloading").is_up());
        let odd = ActiveState::from("refreshing");
        assert_eq!(odd, ActiveState::Other("refreshing".into()));
        assert_eq!(odd.to_string(), "refreshing");
        assert_eq!(
            serde_json::to_string(&LoadState::NotFound).unwrap(),
            "\"not-found\""
        );
    }

    #[test]
    fn snapshots_round_trip_through_json() {
        let mut r = RedisSnapshot::default();
        r.groups.insert(
            GroupKey {
                stream: "s".into(),
                group: "g".into(),
            },
            Err(ReadError::Server("NOGROUP".into())),
        );
        let s = Snapshot {
            now_usec: 1,
            mono_usec: 1,
            hostname: "h".into(),
            self_unit: None,
            units: Err(ReadError::Unreachable("no bus".into())),
            redis: Ok(r),
            live_pids: BTreeMap::new(),
            pid_units: BTreeMap::new(),
            utc_offset_secs: 0,
            holds: Default::default(),
        };
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Snapshot>(&j).unwrap(), s);
    }
}
