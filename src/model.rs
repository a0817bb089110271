//! The snapshot the policy judges: what systemd and Redis said in one cycle, and the clock.
//! Plain data, filled by the adapters, read by [`crate::policy`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A stream entry ID `ms-seq`, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
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

/// One unit as systemd reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitState {
    pub name: String,
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    /// 0 when the unit has no main process.
    pub main_pid: u32,
    /// `ActiveEnterTimestamp`, realtime microseconds; 0 if never active.
    pub active_enter_usec: u64,
    /// The service's `Result` (`success`, `start-limit-hit`, `watchdog`, …); empty for non-services.
    pub result: String,
}

/// `XINFO STREAM` (the fields the policy needs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamInfo {
    /// 0 when not asked (the group's lag was known).
    pub length: u64,
    /// The group's last-delivered ID when not asked: then the lag is known and decides.
    pub last_generated_id: StreamId,
    /// From Redis 7.0.
    pub entries_added: Option<u64>,
}

/// One entry of `XINFO GROUPS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupInfo {
    pub name: String,
    pub consumers: u64,
    pub pending: u64,
    pub last_delivered_id: StreamId,
    /// From Redis 7.0; may be null.
    pub entries_read: Option<u64>,
    /// From Redis 7.0; null when Redis cannot tell (arbitrary SETID, deleted or trimmed entries).
    pub lag: Option<u64>,
}

/// One entry of `XINFO CONSUMERS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsumerInfo {
    pub name: String,
    pub pending: u64,
    /// Before 7.2: since the last read that returned entries. From 7.2: since the last attempt.
    pub idle_ms: u64,
    /// From 7.2: since the last read that returned entries (-1: never). `None` on older servers.
    pub inactive_ms: Option<i64>,
}

/// One pending entry (extended `XPENDING`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingEntry {
    pub id: StreamId,
    pub consumer: String,
    pub idle_ms: u64,
    pub deliveries: u64,
}

/// A window of a group's pending list, as the plan asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanReply {
    /// The window started after this ID (`None`: at the beginning).
    pub after: Option<StreamId>,
    /// It asked for at most this many entries.
    pub count: usize,
    /// What the list held there.
    pub entries: Vec<PendingEntry>,
}

/// Everything Redis said about one `(stream, group)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupData {
    pub stream: StreamInfo,
    pub group: GroupInfo,
    pub consumers: Vec<ConsumerInfo>,
    /// The oldest pending entry of each consumer the plan asked about (`None`: it holds none).
    pub heads: BTreeMap<String, Option<PendingEntry>>,
    /// The window of the pending list read for poison entries, if the plan asked for one.
    pub scan: Option<ScanReply>,
    /// The suspects the plan asked to re-check that are still pending (`None`: not asked).
    pub rechecked: Option<Vec<PendingEntry>>,
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

    pub fn consumer(&self, name: &str) -> Option<&ConsumerInfo> {
        self.consumers.iter().find(|c| c.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupKey {
    pub stream: String,
    pub group: String,
}

/// What Redis said in one pipelined round trip.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisSnapshot {
    /// Per distinct `(stream, group)`: its data, or the error that binding gets (NOGROUP, …).
    pub groups: BTreeMap<GroupKey, Result<GroupData, String>>,
    /// Per pipeline stream: `XINFO STREAM` and all its groups (`XINFO GROUPS`).
    pub streams: BTreeMap<String, Result<(StreamInfo, Vec<GroupInfo>), String>>,
    /// Per key of `[[gauge]]`/`[[flag]]` (placeholders expanded): its value, `None` if absent.
    pub keys: BTreeMap<String, Result<Option<String>, String>>,
}

/// One cycle's view of the world.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Realtime clock, microseconds since the epoch.
    pub now_usec: u64,
    pub hostname: String,
    /// The agent's own unit: never acted on.
    pub self_unit: Option<String>,
    /// Units matching the watched patterns, or why systemd could not be asked.
    pub units: Result<Vec<UnitState>, String>,
    pub redis: Result<RedisSnapshot, String>,
    /// Liveness of the PIDs found in consumer names (true: a process exists, EPERM included).
    pub live_pids: BTreeMap<u32, bool>,
    /// The unit each live PID asked about runs in (`None`: none); a PID systemd could not be
    /// asked about is absent.
    pub pid_units: BTreeMap<u32, Option<String>>,
    /// The local time zone's offset from UTC, seconds (for `{date}` in key names).
    pub utc_offset_secs: i64,
}

/// `YYYY-MM-DD` of a day number since 1970-01-01 (proleptic Gregorian).
pub fn civil_date(days: i64) -> String {
    // Howard Hinnant's days_from_civil, inverted.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Expands `{utcdate}` and `{date}` (local) in a key name.
pub fn render_key(template: &str, now_usec: u64, utc_offset_secs: i64) -> String {
    let secs = (now_usec / 1_000_000) as i64;
    template
        .replace("{utcdate}", &civil_date(secs.div_euclid(86_400)))
        .replace(
            "{date}",
            &civil_date((secs + utc_offset_secs).div_euclid(86_400)),
        )
}

pub fn now_usec() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// `1h 2m 3s`-style rendering of milliseconds, for logs and tables.
pub fn fmt_ms(ms: u64) -> String {
    let s = ms / 1000;
    if s == 0 {
        return format!("{ms}ms");
    }
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s:02}s"),
        _ => format!("{h}h{m:02}m"),
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
    fn dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(19_739), "2024-01-17");
        assert_eq!(civil_date(11_016), "2000-02-29");
        // 2026-01-17 23:30 UTC is already the 18th at UTC+1.
        let t = (20_470 * 86_400 + 23 * 3600 + 1800) as u64 * 1_000_000;
        assert_eq!(render_key("k:{utcdate}", t, 3600), "k:2026-01-17");
        assert_eq!(render_key("k:{date}", t, 3600), "k:2026-01-18");
    }

    #[test]
    fn durations_render_short() {
        assert_eq!(fmt_ms(250), "250ms");
        assert_eq!(fmt_ms(61_000), "1m01s");
        assert_eq!(fmt_ms(11_776_068), "3h16m");
    }
}
